//! A second kube-apiserver over the same etcd, for tests that stop one apiserver
//! (SIGSTOP) while clients of the other go on: an HA control plane, on loopback. It is
//! the test servers' own kube-apiserver started again with the same flags, certificates
//! and etcd, on another port (so the shared apiserver, which every other test uses, is
//! never stopped). Killed when dropped.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::Servers;

/// A running second kube-apiserver.
pub struct SecondApiServer {
    child: Child,
    /// Its admin client configuration.
    pub config: kube::Config,
}

impl Servers {
    /// Start a second kube-apiserver over the test servers' etcd.
    pub async fn second_apiserver(&self) -> Result<SecondApiServer> {
        let pids = std::fs::read_to_string(self.dir.join("pids")).context("the servers' pids")?;
        let pid = pids
            .lines()
            .find_map(|l| l.strip_prefix("kube-apiserver "))
            .context("no kube-apiserver in the servers' pids")?
            .trim()
            .to_string();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .with_context(|| format!("reading the kube-apiserver's command line (pid {pid})"))?;
        let argv: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let (bin, args) = argv.split_first().context("empty command line")?;
        let base = self.kube_config().await?;
        let mut last = String::new();
        for attempt in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let mut args = args.to_vec();
            let at = args
                .iter()
                .position(|a| a == "--secure-port")
                .context("no --secure-port")?;
            args[at + 1] = port.to_string();
            let log = std::fs::File::create(self.dir.join(format!("apiserver-2-{port}.log")))?;
            let mut child = Command::new(bin)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {bin}"))?;
            let mut config = base.clone();
            config.cluster_url = format!("https://127.0.0.1:{port}").parse()?;
            let client = kube::Client::try_from(config.clone())?;
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                if let Some(status) = child.try_wait()? {
                    last = format!("attempt {attempt}: exited with {status} (port {port} taken?)");
                    break;
                }
                let ready = client
                    .request_text(http::Request::get("/readyz").body(Vec::new())?)
                    .await;
                if ready.is_ok_and(|t| t.trim() == "ok") {
                    return Ok(SecondApiServer { child, config });
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("the second kube-apiserver on :{port} was not ready within 90 s");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        bail!("could not start a second kube-apiserver: {last}")
    }
}

impl SecondApiServer {
    /// A client of this apiserver only.
    pub fn client(&self) -> Result<kube::Client> {
        Ok(kube::Client::try_from(self.config.clone())?)
    }

    /// Stop the process (SIGSTOP): it keeps its connections open and answers nothing.
    pub fn stop(&self) -> Result<()> {
        self.signal("-STOP")
    }

    /// Let it go on (SIGCONT).
    pub fn resume(&self) -> Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, sig: &str) -> Result<()> {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()?
            .success();
        if !ok {
            bail!("kill {sig} {} failed", self.child.id());
        }
        Ok(())
    }
}

impl Drop for SecondApiServer {
    fn drop(&mut self) {
        let _ = self.resume();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
