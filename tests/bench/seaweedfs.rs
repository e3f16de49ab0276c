//! The benchmark's own SeaweedFS: the pinned `weed` from `tests/servers/install.sh`,
//! started as `tests/servers/up.sh` starts it (`weed server` with all eight listeners on
//! explicit loopback ports, one volume per bucket, 64 MB volumes, telemetry, Iceberg and
//! Lance off, an identities file for its one S3 user; see `docs/seaweedfs.md`), over a
//! data directory that is kept across runs (`evidence-bench steady` reuses its dataset).
//!
//! SeaweedFS reports no region (a store over it needs `--endpoint-region`), has no
//! listing extension (tags are read per clip), keeps no per-API request count the bench
//! reads, and takes 15 s or more to stop on SIGTERM: it is stopped with SIGKILL.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use aws_sdk_s3::Client;
use tokio::process::{Child, Command};

use crate::minio::{free_port, s3_client};

/// The access key of the bench's SeaweedFS user.
const ACCESS_KEY: &str = "evidence-bench";

/// Listeners: master, master gRPC, volume, volume gRPC, filer, filer gRPC, S3, S3 gRPC.
const PORTS: usize = 8;

/// A running SeaweedFS, killed on [`Seaweedfs::stop_keeping`] or drop; its data stays.
pub struct Seaweedfs {
    child: Option<Child>,
    /// `http://127.0.0.1:<s3 port>`.
    pub endpoint: String,
    /// `127.0.0.1:<s3 port>`.
    pub addr: String,
    /// The S3 user's access key.
    pub access_key: String,
    /// Its secret.
    pub secret_key: String,
    ports: Vec<u16>,
}

impl Seaweedfs {
    /// Start SeaweedFS over the data in `dir` (created when missing, kept) with the S3
    /// user's `secret_key`, and wait until S3 accepts it.
    ///
    /// The ports of the last successful start (`dir/ports`) are tried first, so that the
    /// master finds its own state again; when one of them is taken, or SeaweedFS exits
    /// with "address already in use", it is started again on fresh free ports (at most 8
    /// attempts).
    pub async fn start_keeping(binary: &Path, dir: &Path, secret_key: &str) -> Result<Self> {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).with_context(|| format!("creating {data:?}"))?;
        let identities = dir.join("s3.json");
        std::fs::write(
            &identities,
            serde_json::json!({"identities": [{
                "name": ACCESS_KEY,
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }]})
            .to_string(),
        )?;
        let saved = dir.join("ports");
        let mut previous: Option<Vec<u16>> = std::fs::read_to_string(&saved).ok().and_then(|s| {
            let p: Vec<u16> = s
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            (p.len() == PORTS
                && p.iter()
                    .all(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok()))
            .then_some(p)
        });
        for _ in 0..8 {
            let ports = match previous.take() {
                Some(p) => p,
                None => (0..PORTS).map(|_| free_port()).collect::<Result<_>>()?,
            };
            if let Some(s) = Self::start_once(binary, dir, &identities, secret_key, ports).await? {
                let line: Vec<String> = s.ports.iter().map(u16::to_string).collect();
                std::fs::write(&saved, line.join(" "))?;
                return Ok(s);
            }
        }
        bail!("SeaweedFS could not get free ports in 8 attempts (log: {dir:?}/weed.log)")
    }

    /// One attempt on `ports`: `None` when SeaweedFS exited because a port was taken.
    async fn start_once(
        binary: &Path,
        dir: &Path,
        identities: &Path,
        secret_key: &str,
        ports: Vec<u16>,
    ) -> Result<Option<Self>> {
        let data = dir.join("data");
        let log_path = dir.join("weed.log");
        let log = std::fs::File::create(&log_path)?;
        let p = |i: usize| ports[i].to_string();
        let path = |name: &str| data.join(name).to_string_lossy().into_owned();
        let mut child = Command::new(binary)
            .arg("server")
            .arg(format!("-dir={}", data.to_string_lossy()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-master.port={}", p(0)))
            .arg(format!("-master.port.grpc={}", p(1)))
            .args(["-master.telemetry=false", "-master.volumeSizeLimitMB=64"])
            .arg(format!("-volume.port={}", p(2)))
            .arg(format!("-volume.port.grpc={}", p(3)))
            .args(["-volume.max=0", "-volume.preStopSeconds=0", "-filer"])
            .arg(format!("-filer.port={}", p(4)))
            .arg(format!("-filer.port.grpc={}", p(5)))
            .arg(format!("-filer.localSocket={}", path("filer.sock")))
            .arg("-s3")
            .arg(format!("-s3.port={}", p(6)))
            .arg(format!("-s3.port.grpc={}", p(7)))
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
            .arg(format!("-s3.config={}", identities.to_string_lossy()))
            .arg(format!("-s3.localSocket={}", path("s3.sock")))
            // One volume per bucket (the default, 7, runs out of slots); a soft memory
            // limit well above its working set at a million objects.
            .env("WEED_MASTER_VOLUME_GROWTH_COPY_1", "1")
            .env("GOMEMLIMIT", "1GiB")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting SeaweedFS")?;
        let addr = format!("127.0.0.1:{}", ports[6]);
        let mut server = Seaweedfs {
            child: None,
            endpoint: format!("http://{addr}"),
            addr,
            access_key: ACCESS_KEY.into(),
            secret_key: secret_key.to_string(),
            ports,
        };
        let client = server.client();
        for _ in 0..600 {
            if let Some(status) = child.try_wait()? {
                let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                server.remove_sockets();
                if text.contains("address already in use") {
                    return Ok(None);
                }
                bail!("SeaweedFS exited ({status}) before answering (log: {log_path:?})");
            }
            if client.list_buckets().send().await.is_ok() {
                server.child = Some(child);
                return Ok(Some(server));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        child.kill().await.ok();
        server.remove_sockets();
        bail!("SeaweedFS did not answer within 60 s (log: {log_path:?})")
    }

    /// An S3 client for this SeaweedFS.
    pub fn client(&self) -> Client {
        s3_client(&self.endpoint, &self.access_key, &self.secret_key)
    }

    /// The `--endpoint-region` declaration that puts it in the UK region.
    pub fn declaration(&self) -> String {
        format!("{}={}", self.addr, crate::minio::REGION)
    }

    /// Kill it (SIGKILL: SIGTERM takes 15 s or more) and keep its data.
    pub async fn stop_keeping(mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await.ok();
        }
        self.remove_sockets();
        Ok(())
    }

    /// The gRPC unix sockets it leaves in /tmp, named by port.
    fn remove_sockets(&self) {
        for kind in ["master", "volume", "filer", "s3"] {
            for port in &self.ports {
                let p = PathBuf::from(format!("/tmp/seaweedfs-{kind}-grpc-{port}.sock"));
                if p.exists() {
                    std::fs::remove_file(p).ok();
                }
            }
        }
    }
}
