//! Datasets kept between runs of a bench job (`steady`, `request`): one directory per
//! server and N (`<data>/<server>-<N>/`: the server's own data, its secret, and
//! `marker.json` saying what was seeded there), reused by a later run whose marker
//! matches and seeded again otherwise; and the report, written as `results.*` (the
//! latest run) and `results-<N>.*` (kept when runs at another N follow).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, Result, bail};
use serde::{Serialize, de::DeserializeOwned};

use crate::steady::Server;

/// What a dataset's marker says was seeded: dataset version, server, clips, bytes per
/// clip. A run reuses a dataset only when all four are what it asks for.
pub trait Seeded {
    /// The four, as seeded.
    fn seeded(&self) -> (u32, &str, usize, usize);
}

/// A kept dataset's directory, opened for one run.
pub struct Kept<M> {
    /// `<data>/<server>-<N>/`.
    pub dir: PathBuf,
    /// Its marker, when it was there and matched: the dataset is reused.
    pub marker: Option<M>,
    /// The server's secret for this directory's data.
    pub secret: String,
}

/// Open the dataset of `kind` at `n` clips of `clip_bytes` in `data`: its marker if it
/// says `version`, `kind`, `n` and `clip_bytes` were seeded; otherwise the directory
/// emptied and a new secret (`job` names the job in messages).
pub fn open<M: DeserializeOwned + Seeded>(
    data: &Path,
    (version, kind, n, clip_bytes): (u32, &str, usize, usize),
    job: &str,
) -> Result<Kept<M>> {
    let dir = data.join(format!("{kind}-{n}"));
    let secret_path = dir.join("secret");
    let marker: Option<M> = std::fs::read_to_string(dir.join("marker.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .filter(|m: &M| m.seeded() == (version, kind, n, clip_bytes));
    let secret = match (&marker, std::fs::read_to_string(&secret_path)) {
        (Some(_), Ok(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => {
            if dir.exists() {
                eprintln!("[{job}] {kind}: no matching dataset in {dir:?}: seeding it again");
                std::fs::remove_dir_all(&dir).with_context(|| format!("emptying {dir:?}"))?;
            }
            std::fs::create_dir_all(&dir)?;
            let s = crate::minio::random_secret();
            std::fs::write(&secret_path, &s)?;
            s
        }
    };
    Ok(Kept {
        dir,
        marker,
        secret,
    })
}

/// A kept dataset's server, up, and what its data holds.
pub struct Started<M> {
    /// The server, over the dataset's directory.
    pub server: Server,
    /// What the dataset holds: its marker, reused or just seeded.
    pub marker: M,
    /// Whether the dataset was reused (not seeded by this run).
    pub reused: bool,
    /// Seconds the server took to start.
    pub start_seconds: f64,
}

impl<M: Serialize> Kept<M> {
    /// Start `kind`'s server (`binary`) over this dataset and, when its marker did not
    /// match, seed it with `seed` and record the new marker. The server is stopped
    /// again when that fails.
    pub async fn start(
        self,
        kind: &str,
        binary: &Path,
        job: &str,
        seed: impl AsyncFnOnce(&Server) -> Result<M>,
    ) -> Result<Started<M>> {
        let started = Instant::now();
        let server = Server::start_keeping(kind, binary, &self.dir, &self.secret).await?;
        let start_seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "[{job}] {kind} up on {} in {start_seconds:.1} s",
            server.endpoint()
        );
        let reused = self.marker.is_some();
        let marker = match self.marker {
            Some(m) => Ok(m),
            None => seed(&server).await,
        };
        let marker = marker.and_then(|m| {
            std::fs::write(
                self.dir.join("marker.json"),
                serde_json::to_string_pretty(&m)?,
            )?;
            Ok(m)
        });
        match marker {
            Ok(marker) => Ok(Started {
                server,
                marker,
                reused,
                start_seconds,
            }),
            Err(e) => {
                server.stop().await?;
                Err(e)
            }
        }
    }
}

/// The version a server binary's file name carries (`minio-<v>`, `weed-<v>`).
pub fn server_version(binary: &Path) -> String {
    binary
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .trim_start_matches("minio-")
        .trim_start_matches("weed-")
        .to_string()
}

/// Write a report (and its Markdown) as `results.{json,md}` and `results-<n>.{json,md}`
/// in `out`.
pub fn write_results(out: &Path, n: usize, report: &impl Serialize, md: &str) -> Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    for name in ["results".to_string(), format!("results-{n}")] {
        std::fs::write(out.join(format!("{name}.json")), &json)?;
        std::fs::write(out.join(format!("{name}.md")), md)?;
    }
    Ok(())
}

/// Measure each server of `kinds` (`minio`, `seaweedfs`) in turn with `bench` (given the
/// kind and its binary under `root`), writing the report of those measured so far after
/// each with `report` (given each server's version and the results): a long run stopped
/// later keeps what it measured. The last report's Markdown is printed.
pub async fn each_server<R>(
    kinds: &[String],
    root: &Path,
    out: &Path,
    clips: usize,
    mut bench: impl AsyncFnMut(&str, &Path) -> Result<R>,
    report: impl Fn(&BTreeMap<String, String>, &[R]) -> Result<String>,
) -> Result<()> {
    let mut versions = BTreeMap::new();
    let mut results = Vec::new();
    for kind in kinds {
        if !["minio", "seaweedfs"].contains(&kind.as_str()) {
            bail!("unknown server {kind:?} (minio, seaweedfs)");
        }
        let binary = crate::minio::tool_path(root, kind)?;
        versions.insert(kind.clone(), server_version(&binary));
        results.push(bench(kind, &binary).await?);
        let md = report(&versions, &results)?;
        if results.len() == kinds.len() {
            println!("{md}");
        }
    }
    eprintln!(
        "wrote {:?} and {:?} (and results-{clips}.*)",
        out.join("results.json"),
        out.join("results.md"),
    );
    Ok(())
}
