//! The benchmark's own MinIO: the pinned binary from `tests/servers/install.sh`, on a
//! free loopback port, region `eu-west-2`, with its Prometheus metrics public so that
//! requests are counted at the server, per API, for each tool.

use std::{
    collections::BTreeMap,
    net::TcpListener,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use aws_sdk_s3::{
    Client,
    config::{BehaviorVersion, Credentials, Region},
    types::{BucketLocationConstraint, CreateBucketConfiguration},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    process::{Child, Command},
};

/// The region the benchmark's MinIO declares (London).
pub const REGION: &str = "eu-west-2";

/// A running MinIO, stopped (and its data removed) on [`Minio::stop`] or drop.
pub struct Minio {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    /// Root user.
    pub access_key: String,
    /// Root password.
    pub secret_key: String,
    dir: PathBuf,
}

/// The path of a pinned tool, installed (built or downloaded, cached) when missing.
pub fn tool_path(root: &Path, tool: &str) -> Result<PathBuf> {
    let out = std::process::Command::new(root.join("tests/servers/install.sh"))
        .arg(tool)
        .stderr(Stdio::inherit())
        .output()
        .context("running tests/servers/install.sh")?;
    if !out.status.success() {
        bail!("tests/servers/install.sh {tool} failed");
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{tool}=")))
        .map(PathBuf::from)
        .with_context(|| format!("install.sh printed no path for {tool}"))
}

pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Minio {
    /// Start MinIO with its data in `dir` (emptied first) and wait until it answers.
    ///
    /// A free port is only free until somebody binds it, so MinIO is started again on a
    /// new port when it exits with "address already in use"; and it is known to be up
    /// only when it accepts this run's own (random) credentials, so another server that
    /// holds the port cannot be mistaken for it.
    pub async fn start(binary: &Path, dir: &Path) -> Result<Minio> {
        for _ in 0..8 {
            if dir.exists() {
                std::fs::remove_dir_all(dir).with_context(|| format!("emptying {dir:?}"))?;
            }
            if let Some(minio) = Self::start_once(binary, dir, &random_secret()).await? {
                return Ok(minio);
            }
        }
        bail!("MinIO could not get a free port in 8 attempts (log: {dir:?}/minio.log)")
    }

    /// Start MinIO over the data already in `dir` (kept, and kept on
    /// [`Minio::stop_keeping`]) with the given root password, which must be the one the
    /// data was written with: datasets reused across runs (`evidence-bench steady`).
    pub async fn start_keeping(binary: &Path, dir: &Path, secret_key: &str) -> Result<Minio> {
        for _ in 0..8 {
            if let Some(minio) = Self::start_once(binary, dir, secret_key).await? {
                return Ok(minio);
            }
        }
        bail!("MinIO could not get a free port in 8 attempts (log: {dir:?}/minio.log)")
    }

    /// One attempt on a fresh port: `None` when MinIO exited because the port was taken
    /// between choosing and binding it.
    async fn start_once(binary: &Path, dir: &Path, secret_key: &str) -> Result<Option<Minio>> {
        std::fs::create_dir_all(dir.join("data"))?;
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let secret_key = secret_key.to_string();
        let log_path = dir.join("minio.log");
        let log = std::fs::File::create(&log_path)?;
        let mut child = Command::new(binary)
            .args(["server", "--quiet", "--address", &addr])
            .arg(dir.join("data"))
            .env("MINIO_ROOT_USER", "evidence-bench")
            .env("MINIO_ROOT_PASSWORD", &secret_key)
            .env("MINIO_SITE_REGION", REGION)
            .env("MINIO_BROWSER", "off")
            .env("MINIO_UPDATE", "off")
            .env("MINIO_CI_CD", "1")
            .env("MINIO_PROMETHEUS_AUTH_TYPE", "public")
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting MinIO")?;
        let mut minio = Minio {
            child: None,
            endpoint: format!("http://{addr}"),
            addr,
            access_key: "evidence-bench".into(),
            secret_key,
            dir: dir.to_path_buf(),
        };
        let client = minio.client();
        for _ in 0..300 {
            if let Some(status) = child.try_wait()? {
                let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                if text.contains("address already in use")
                    || text.contains("port is already in use")
                {
                    return Ok(None);
                }
                bail!("MinIO exited ({status}) before answering (log: {log_path:?})");
            }
            if client.list_buckets().send().await.is_ok() {
                minio.child = Some(child);
                return Ok(Some(minio));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("MinIO did not answer within 30 s (log: {log_path:?})")
    }

    /// An S3 client for this MinIO.
    pub fn client(&self) -> Client {
        s3_client(&self.endpoint, &self.access_key, &self.secret_key)
    }

    /// Create a bucket in the UK region, optionally with Object Lock (and so versioning).
    pub async fn create_bucket(
        &self,
        client: &Client,
        name: &str,
        object_lock: bool,
    ) -> Result<()> {
        create_bucket(client, name, object_lock).await
    }

    /// S3 requests served so far, by API name (MinIO's `minio_api_requests_total`).
    pub async fn requests(&self) -> Result<BTreeMap<String, u64>> {
        let mut stream = TcpStream::connect(&self.addr).await?;
        let req = format!(
            "GET /minio/metrics/v3/api/requests HTTP/1.0\r\nHost: {}\r\n\r\n",
            self.addr
        );
        stream.write_all(req.as_bytes()).await?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await?;
        let mut out = BTreeMap::new();
        for line in body.lines() {
            let Some(rest) = line.strip_prefix("minio_api_requests_total{") else {
                continue;
            };
            if !rest.contains("type=\"s3\"") {
                continue;
            }
            let name = rest
                .split("name=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or("unknown");
            let value = line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            *out.entry(name.to_string()).or_insert(0) += value as u64;
        }
        if out.is_empty() && !body.starts_with("HTTP/1.1 200") && !body.starts_with("HTTP/1.0 200")
        {
            bail!(
                "MinIO metrics unavailable: {}",
                body.lines().next().unwrap_or("")
            );
        }
        Ok(out)
    }

    /// Stop MinIO and remove its data.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await.ok();
        }
        std::fs::remove_dir_all(&self.dir).ok();
        Ok(())
    }

    /// Stop MinIO and keep its data (a dataset reused by the next run).
    pub async fn stop_keeping(mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await.ok();
        }
        Ok(())
    }
}

/// A random secret for a server's root user (not cryptographic: loopback test servers).
pub fn random_secret() -> String {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ (u64::from(std::process::id()) << 32);
    format!("bench-{:016x}", crate::data::SplitMix::new(seed).next_u64())
}

/// An S3 client for a loopback server (path style, signing for the UK region).
pub fn s3_client(endpoint: &str, access_key: &str, secret_key: &str) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            access_key, secret_key, None, None, "bench",
        ))
        .force_path_style(true)
        .build();
    Client::from_conf(config)
}

/// Create a bucket in the UK region, optionally with Object Lock (and so versioning).
pub async fn create_bucket(client: &Client, name: &str, object_lock: bool) -> Result<()> {
    client
        .create_bucket()
        .bucket(name)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(REGION))
                .build(),
        )
        .object_lock_enabled_for_bucket(object_lock)
        .send()
        .await
        .with_context(|| format!("creating bucket {name}"))?;
    Ok(())
}

/// `after - before`, per API, dropping zeros.
pub fn diff(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}
