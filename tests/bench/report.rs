//! The report: medians, ratios to the operator, requests per clip, the goals of issue 8,
//! as JSON and as a Markdown table.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use serde::{Deserialize, Serialize};

use crate::{data::Scenario, operate::OperateReport};

/// S3 APIs that are listing (finding the clips and reading their tags), not acting.
/// MinIO counts a listing with its metadata extension (`metadata=true`) under its own
/// name, with an `M`.
const LISTING: [&str; 7] = [
    "ListObjectsV2",
    "ListObjectsV2M",
    "ListObjectsV1",
    "ListObjectVersions",
    "ListObjectVersionsM",
    "GetObjectTagging",
    "GetBucketVersioning",
];

/// One run of one tool.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// Wall time, seconds (process start to exit, for the operator and the peers).
    pub seconds: f64,
    /// Requests counted at the server, by API.
    pub requests: BTreeMap<String, u64>,
    /// Whether exactly the expected clips were acted on.
    pub correct: bool,
    /// Peak RSS, KiB, where measured.
    pub peak_rss_kib: Option<u64>,
    /// The operator's own report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<OperateReport>,
}

/// All runs of one tool on one dataset.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolResult {
    /// The tool.
    pub tool: String,
    /// Median wall time, seconds.
    pub median_seconds: f64,
    /// Requests (median run) per clip acted on.
    pub requests_per_acted_clip: f64,
    /// Requests beyond listing and tag reads, per clip acted on.
    pub beyond_listing_per_acted_clip: f64,
    /// Requests of the median run, by API.
    pub requests: BTreeMap<String, u64>,
    /// Whether every run acted on exactly the expected clips.
    pub correct: bool,
    /// Highest peak RSS over the runs, KiB.
    pub peak_rss_kib: Option<u64>,
    /// Every run.
    pub runs: Vec<RunResult>,
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

impl ToolResult {
    /// Summarise the runs; `acted` clips were to be acted on.
    pub fn new(tool: &str, runs: Vec<RunResult>, acted: usize) -> Self {
        let median_seconds = median(runs.iter().map(|r| r.seconds).collect());
        let mut by_time: Vec<&RunResult> = runs.iter().collect();
        by_time.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        let mid = by_time
            .get(by_time.len() / 2)
            .map(|r| r.requests.clone())
            .unwrap_or_default();
        let total: u64 = mid.values().sum();
        let listing: u64 = mid
            .iter()
            .filter(|(k, _)| LISTING.contains(&k.as_str()))
            .map(|(_, v)| v)
            .sum();
        let acted = acted.max(1) as f64;
        ToolResult {
            tool: tool.to_string(),
            median_seconds,
            requests_per_acted_clip: total as f64 / acted,
            beyond_listing_per_acted_clip: (total - listing) as f64 / acted,
            requests: mid,
            correct: runs.iter().all(|r| r.correct),
            peak_rss_kib: runs.iter().filter_map(|r| r.peak_rss_kib).max(),
            runs,
        }
    }
}

/// One dataset (scenario, clip count, size) and every tool's result on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dataset {
    /// `expire` or `move`.
    pub scenario: String,
    /// Clips in the hot tier before the run.
    pub clips: usize,
    /// Clips acted on (deleted or moved).
    pub acted: usize,
    /// Bytes per clip.
    pub clip_bytes: usize,
    /// Per tool.
    pub tools: Vec<ToolResult>,
    /// Peer median time divided by the operator's (above 1: the operator is faster),
    /// keyed by peer.
    pub speedup_vs: BTreeMap<String, f64>,
}

impl Dataset {
    /// Build a dataset's summary and ratios.
    pub fn new(
        scenario: Scenario,
        clips: usize,
        clip_bytes: usize,
        tools: Vec<ToolResult>,
    ) -> Self {
        let op = tools
            .iter()
            .find(|t| t.tool == "operator")
            .map(|t| t.median_seconds);
        let speedup_vs = tools
            .iter()
            .filter(|t| t.tool != "operator")
            .filter_map(|t| {
                op.filter(|o| *o > 0.0)
                    .map(|o| (t.tool.clone(), t.median_seconds / o))
            })
            .collect();
        Dataset {
            scenario: scenario.as_str().to_string(),
            clips,
            acted: clips / 2 + clips % 2,
            clip_bytes,
            tools,
            speedup_vs,
        }
    }

    fn tool(&self, name: &str) -> Option<&ToolResult> {
        self.tools.iter().find(|t| t.tool == name)
    }
}

/// The operator's peak RSS at one clip count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RssPoint {
    /// Clips in the bucket.
    pub clips: usize,
    /// Peak RSS, KiB.
    pub peak_rss_kib: u64,
}

/// Planning alone (the engine, no storage).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Planning {
    /// Clips planned.
    pub clips: usize,
    /// Best of three rounds, seconds.
    pub seconds: f64,
    /// Clips a second.
    pub clips_per_second: f64,
    /// Decisions by action.
    pub actions: BTreeMap<String, u64>,
}

/// The command a report names: the one `make bench` passed (`--command-line`), else this
/// process's own arguments.
pub fn command_line(given: &str) -> String {
    if given.is_empty() {
        std::env::args().collect::<Vec<_>>().join(" ")
    } else {
        given.to_string()
    }
}

/// The machine the run was on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// CPUs available.
    pub cpus: usize,
    /// `uname -srm`-like description.
    pub os: String,
}

impl Machine {
    /// This machine.
    pub fn here() -> Self {
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// Tool versions, from the binaries' names (pinned in `tests/servers/versions.env`).
pub fn versions(rclone: &Path, s5cmd: &Path, minio: &Path) -> BTreeMap<String, String> {
    [("rclone", rclone), ("s5cmd", s5cmd), ("minio", minio)]
        .iter()
        .map(|(k, p)| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (
                k.to_string(),
                name.trim_start_matches(&format!("{k}-")).to_string(),
            )
        })
        .collect()
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The command that produced it.
    pub command: String,
    /// The machine.
    pub machine: Machine,
    /// Peer and server versions.
    pub versions: BTreeMap<String, String>,
    /// Clips per small dataset.
    pub clips: usize,
    /// Runs per tool and dataset.
    pub runs: usize,
    /// Whether clips were uploaded with their SHA-256 (`x-amz-checksum-sha256`).
    pub upload_checksum: bool,
    /// Whether the SHA-256 was also recorded in `evidence-sha256` at upload.
    #[serde(default)]
    pub upload_recorded_sha256: bool,
    /// The datasets.
    pub datasets: Vec<Dataset>,
    /// Operator peak RSS by clip count.
    pub rss: Vec<RssPoint>,
    /// Planning alone.
    pub planning: Planning,
}

fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**not met**" }
}

impl Report {
    /// The Markdown summary.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Command: `{}`  ", self.command);
        let _ = writeln!(
            s,
            "Machine: {} CPUs, {}; MinIO {}, rclone {}, s5cmd {}; median of {} runs per tool; clips uploaded {}.\n",
            self.machine.cpus,
            self.machine.os,
            self.versions.get("minio").map_or("?", String::as_str),
            self.versions.get("rclone").map_or("?", String::as_str),
            self.versions.get("s5cmd").map_or("?", String::as_str),
            self.runs,
            match (self.upload_checksum, self.upload_recorded_sha256) {
                (_, true) =>
                    "with a SHA-256 checksum, also recorded in `evidence-sha256` (hashed at ingest)",
                (true, false) => "with a SHA-256 checksum",
                (false, false) => "without a SHA-256 checksum",
            }
        );
        let _ = writeln!(
            s,
            "| job | tool | time ÷ operator's | requests / clip acted on | beyond listing / clip | peak RSS | correct |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|:---:|");
        for d in &self.datasets {
            let op = d.tool("operator").map_or(0.0, |t| t.median_seconds);
            let job = format!(
                "{} {} × {} ({} acted on)",
                d.scenario,
                d.clips,
                size(d.clip_bytes),
                d.acted
            );
            for t in &d.tools {
                let ratio = if op > 0.0 { t.median_seconds / op } else { 0.0 };
                let _ = writeln!(
                    s,
                    "| {job} | {} | {ratio:.2} | {:.3} | {:.3} | {} | {} |",
                    t.tool,
                    t.requests_per_acted_clip,
                    t.beyond_listing_per_acted_clip,
                    t.peak_rss_kib
                        .map_or("—".into(), |k| format!("{} MiB", k / 1024)),
                    if t.correct { "yes" } else { "**no**" }
                );
            }
        }
        let _ = writeln!(
            s,
            "\n\"time ÷ operator's\" is the tool's median wall time ÷ the operator's: above 1, the operator is that many times faster. \
\"beyond listing\" leaves out list requests and per-clip tag reads. The operator runs in its own process \
(`evidence-bench operate`: the controller's sweep over `S3TierStore`, with its audit chain), timed from process start."
        );
        if !self.rss.is_empty() {
            let _ = writeln!(s, "\n| operator peak RSS | clips | MiB |\n|---|---:|---:|");
            for p in &self.rss {
                let _ = writeln!(
                    s,
                    "| expire sweep | {} | {:.1} |",
                    p.clips,
                    p.peak_rss_kib as f64 / 1024.0
                );
            }
        }
        if self.planning.clips > 0 {
            let sweep_rate = self
                .datasets
                .first()
                .and_then(|d| {
                    d.tool("operator")
                        .map(|t| d.clips as f64 / t.median_seconds.max(1e-9))
                })
                .unwrap_or(0.0);
            let _ = writeln!(
                s,
                "\nPlanning alone (the engine, Met policy, no storage): {} clips at {:.0} clips/s, {:.0}× the operator's end-to-end expire rate ({:.0} clips/s).",
                self.planning.clips,
                self.planning.clips_per_second,
                self.planning.clips_per_second / sweep_rate.max(1e-9),
                sweep_rate
            );
        }
        // The goals of issue 8.
        let _ = writeln!(s, "\n| goal (issue 8) | figure | |\n|---|---:|---|");
        for d in &self.datasets {
            let label = format!("{} {} × {}", d.scenario, d.clips, size(d.clip_bytes));
            let r = |peer: &str| d.speedup_vs.get(peer).copied().unwrap_or(0.0);
            match d.scenario.as_str() {
                "expire" => {
                    let _ = writeln!(
                        s,
                        "| {label}: ≥ 10× faster than rclone | {:.2}× | {} |",
                        r("rclone"),
                        verdict(r("rclone") >= 10.0)
                    );
                    let _ = writeln!(
                        s,
                        "| {label}: at least as fast as s5cmd | {:.2}× | {} |",
                        r("s5cmd"),
                        verdict(r("s5cmd") >= 1.0)
                    );
                    if let Some(op) = d.tool("operator") {
                        let _ = writeln!(
                            s,
                            "| {label}: ≤ 0.01 requests per deleted clip beyond listing | {:.4} | {} |",
                            op.beyond_listing_per_acted_clip,
                            verdict(op.beyond_listing_per_acted_clip <= 0.01)
                        );
                    }
                }
                _ => {
                    let _ = writeln!(
                        s,
                        "| {label}: ≥ 2× faster than rclone | {:.2}× | {} |",
                        r("rclone"),
                        verdict(r("rclone") >= 2.0)
                    );
                    if let Some(op) = d.tool("operator") {
                        let _ = writeln!(
                            s,
                            "| {label}: ≤ 2 requests per moved clip (beyond listing) | {:.2} | {} |",
                            op.beyond_listing_per_acted_clip,
                            verdict(op.beyond_listing_per_acted_clip <= 2.0)
                        );
                    }
                }
            }
            let share = r("ceiling");
            let _ = writeln!(
                s,
                "| {label}: within 80% of the ceiling | {:.0}% | {} |",
                share * 100.0,
                verdict(share >= 0.8)
            );
        }
        if let (Some(first), Some(last)) = (self.rss.first(), self.rss.last())
            && last.clips > first.clips
        {
            let growth = last.peak_rss_kib as f64 / first.peak_rss_kib.max(1) as f64;
            let _ = writeln!(
                s,
                "| peak memory independent of N ({} → {} clips) | {:.2}× | {} |",
                first.clips,
                last.clips,
                growth,
                verdict(growth <= 1.25)
            );
        }
        s
    }
}

/// Write a run's `results.json` and `results.md` into `out`, print the markdown, and
/// say where both went.
pub fn write_results(out: &Path, json: &str, md: &str) -> anyhow::Result<()> {
    std::fs::write(out.join("results.json"), json)?;
    std::fs::write(out.join("results.md"), md)?;
    println!("{md}");
    eprintln!(
        "wrote {:?} and {:?}",
        out.join("results.json"),
        out.join("results.md")
    );
    Ok(())
}
