//! Test harness: access to the real servers (kube-apiserver + etcd, two MinIOs,
//! SeaweedFS) that the integration tests run against.
//!
//! [`servers()`] finds them, in this order:
//! 1. `EVIDENCE_SERVERS_ENV` names an env file written by `tests/servers/up.sh` (this is
//!    what `make test` does: one set of servers for all test binaries);
//! 2. `target/servers/env` exists and its processes are alive (after `make servers-up`);
//! 3. otherwise it starts a private set with `tests/servers/up.sh --watch <this pid>`,
//!    whose watchdog stops them when this test process exits, however it exits.
//!
//! There is no skipping: when no server can be had, the test fails with the reason.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
};

use anyhow::{Context, Result, bail};

pub mod apiserver;
pub mod operator;
pub mod tenant;
pub use operator::RunningOperator;
pub use tenant::{Backend, DAY, Tenant};

/// Where the servers are and how to reach them.
#[derive(Debug, Clone)]
pub struct Servers {
    /// Path of the admin kubeconfig for the test kube-apiserver.
    pub kubeconfig: PathBuf,
    /// S3 endpoint of the UK MinIO (region `eu-west-2`).
    pub s3_endpoint: String,
    /// S3 access key (shared by both MinIO servers).
    pub s3_access_key: String,
    /// S3 secret key (shared by both MinIO servers).
    pub s3_secret_key: String,
    /// Region of the UK MinIO.
    pub s3_region: String,
    /// S3 endpoint of the second MinIO, configured with a non-UK region.
    pub non_uk_endpoint: String,
    /// Region of the second MinIO (`us-east-1`).
    pub non_uk_region: String,
    /// S3 endpoint of SeaweedFS (the same access key). It reports no region: a store
    /// over it needs the endpoint's region declared ([`Servers::seaweedfs_declaration`]).
    pub seaweedfs_endpoint: String,
    /// Path of the kubectl binary matching the apiserver.
    pub kubectl: PathBuf,
    /// The directory holding the servers' data, logs and env file.
    pub dir: PathBuf,
}

/// The repository root (the workspace directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The shared servers for this test process, started on first use.
///
/// # Panics
/// When no servers can be found or started: a test that needs them must fail.
pub fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| match acquire() {
        Ok(s) => s,
        Err(e) => {
            panic!("the integration tests need the real test servers, and none could be had: {e:#}")
        }
    })
}

fn acquire() -> Result<Servers> {
    if let Ok(file) = std::env::var("EVIDENCE_SERVERS_ENV") {
        return Servers::from_env_file(Path::new(&file))
            .with_context(|| format!("reading EVIDENCE_SERVERS_ENV={file}"));
    }
    let shared = repo_root().join("target/servers");
    if shared.join("env").exists() && pids_alive(&shared.join("pids")) {
        return Servers::from_env_file(&shared.join("env"));
    }
    let dir = repo_root()
        .join("target")
        .join(format!("servers-test-{}", std::process::id()));
    let script = repo_root().join("tests/servers/up.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg("--dir")
        .arg(&dir)
        .arg("--watch")
        .arg(std::process::id().to_string())
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!(
            "{} failed ({status}); see its messages above",
            script.display()
        );
    }
    Servers::from_env_file(&dir.join("env"))
}

fn pids_alive(pids: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(pids) else {
        return false;
    };
    let mut any = false;
    for line in text.lines().filter(|l| !l.starts_with("watchdog ")) {
        let Some(pid) = line.split_whitespace().nth(1) else {
            continue;
        };
        any = true;
        if !Path::new("/proc").join(pid).exists() {
            return false;
        }
    }
    any
}

impl Servers {
    /// Parse an env file written by `tests/servers/up.sh`.
    pub fn from_env_file(path: &Path) -> Result<Servers> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let vars: HashMap<&str, &str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .collect();
        let get = |k: &str| -> Result<String> {
            vars.get(k)
                .map(|v| (*v).to_string())
                .with_context(|| format!("{} does not set {k}", path.display()))
        };
        Ok(Servers {
            kubeconfig: get("KUBECONFIG")?.into(),
            s3_endpoint: get("AWS_ENDPOINT_URL")?,
            s3_access_key: get("AWS_ACCESS_KEY_ID")?,
            s3_secret_key: get("AWS_SECRET_ACCESS_KEY")?,
            s3_region: get("AWS_REGION")?,
            non_uk_endpoint: get("EVIDENCE_TEST_NON_UK_ENDPOINT")?,
            non_uk_region: get("EVIDENCE_TEST_NON_UK_REGION")?,
            seaweedfs_endpoint: get("EVIDENCE_TEST_SEAWEEDFS_ENDPOINT")?,
            kubectl: get("EVIDENCE_TEST_KUBECTL")?.into(),
            dir: get("EVIDENCE_TEST_SERVERS_DIR")?.into(),
        })
    }

    /// A kube client with admin rights on the test apiserver.
    pub async fn kube_client(&self) -> Result<kube::Client> {
        Ok(kube::Client::try_from(self.kube_config().await?)?)
    }

    /// A client that authenticates with `token` only (the admin kubeconfig's server and
    /// CA), its kubeconfig written under `dir`.
    pub async fn client_with_token(&self, token: &str, dir: &Path) -> Result<kube::Client> {
        let admin: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&self.kubeconfig)?)?;
        let cluster = &admin["clusters"][0]["cluster"];
        let config = serde_json::json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{ "name": "test", "cluster": {
                "server": cluster["server"].as_str().context("server")?,
                "certificate-authority": cluster["certificate-authority"].as_str().context("CA")?,
            }}],
            "users": [{ "name": "user", "user": { "token": token } }],
            "contexts": [{ "name": "user", "context": { "cluster": "test", "user": "user" } }],
            "current-context": "user",
        });
        let path = dir.join("kubeconfig");
        std::fs::write(&path, serde_yaml::to_string(&config)?)?;
        let kc = kube::config::Kubeconfig::read_from(&path)?;
        let cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?;
        Ok(kube::Client::try_from(cfg)?)
    }

    /// The admin client configuration of the test apiserver.
    pub async fn kube_config(&self) -> Result<kube::Config> {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        Ok(kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await?)
    }

    /// An S3 client for the UK MinIO.
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        self.s3_client_for(&self.s3_endpoint, &self.s3_region)
    }

    /// An S3 client for the non-UK MinIO.
    pub fn non_uk_s3_client(&self) -> aws_sdk_s3::Client {
        self.s3_client_for(&self.non_uk_endpoint, &self.non_uk_region)
    }

    /// An S3 client for SeaweedFS (signing for `eu-west-2`; it checks no region).
    pub fn seaweedfs_s3_client(&self) -> aws_sdk_s3::Client {
        self.s3_client_for(&self.seaweedfs_endpoint, &self.s3_region)
    }

    /// The `--endpoint-region` declaration that puts SeaweedFS in the UK region
    /// (`127.0.0.1:<port>=eu-west-2`).
    pub fn seaweedfs_declaration(&self) -> String {
        format!(
            "{}={}",
            evidence_operator::storage::region::endpoint_authority(&self.seaweedfs_endpoint),
            self.s3_region
        )
    }

    fn s3_client_for(&self, endpoint: &str, region: &str) -> aws_sdk_s3::Client {
        let creds = aws_sdk_s3::config::Credentials::new(
            &self.s3_access_key,
            &self.s3_secret_key,
            None,
            None,
            "evidence-operator-tests",
        );
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_sdk_s3::config::Region::new(region.to_string()))
            .credentials_provider(creds)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Run kubectl against the test apiserver; returns (success, stdout, stderr).
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<(bool, String, String)> {
        use std::io::Write;
        let mut child = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("spawning {}", self.kubectl.display()))?;
        if let (Some(mut pipe), Some(input)) = (child.stdin.take(), stdin) {
            pipe.write_all(input.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

/// Install (server-side apply, idempotent) the operator's CRDs, generated from the Rust
/// types, and wait until the API server serves them.
pub async fn ensure_crds(client: &kube::Client) -> Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Patch, PatchParams};
    let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    for crd in evidence_operator::api::crds::all() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply("evidence-operator-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .with_context(|| format!("applying CRD {name}"))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let current = api.get(&name).await?;
            let established = current
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                });
            if established {
                break;
            }
            if std::time::Instant::now() > deadline {
                bail!("CRD {name} not established after 30s");
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// A name unique to this test process and call, safe for namespaces and bucket names
/// (lower case, digits and dashes, at most 63 characters).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut name = format!("{prefix}-{}-{n}-{:x}", std::process::id(), nanos % 0xfffff);
    name.truncate(63);
    name.trim_end_matches('-').to_string()
}

/// Poll `f` every 300 ms until it returns `Some`, or fail after `timeout` naming what was
/// awaited and the last error seen.
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let start = std::time::Instant::now();
    let mut last_err = None;
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what} (last error: {last_err:?})");
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}
