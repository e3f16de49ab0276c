//! The report of `evidence-bench ingest`: per job the tools' median wall times as ratios
//! to the operator's, requests per clip counted at MinIO, and the goals of issue 19
//! (item 8), as JSON and as Markdown.

use std::{collections::BTreeMap, fmt::Write as _};

use serde::{Deserialize, Serialize};

use crate::{
    dock::IngestOneReport,
    report::{Dataset, Machine, ToolResult},
};

/// One ingest dataset (a dock folder) and every tool's result on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestDataset {
    /// `small` or `large`.
    pub name: String,
    /// Clips in the dock.
    pub clips: usize,
    /// Bytes per clip.
    pub clip_bytes: usize,
    /// Uploads in flight, for every tool (the ingest's `--concurrency`, rclone's
    /// `--transfers`, s5cmd's `--numworkers`).
    pub concurrency: usize,
    /// Per tool; requests are per clip of the dock.
    pub tools: Vec<ToolResult>,
    /// Peer median time ÷ the operator's (above 1: the operator is faster), by peer.
    pub speedup_vs: BTreeMap<String, f64>,
    /// The operator's own report of each run.
    pub operator_runs: Vec<IngestOneReport>,
}

impl IngestDataset {
    /// Summarise, with the ratios to the operator.
    pub fn new(
        name: &str,
        clips: usize,
        clip_bytes: usize,
        concurrency: usize,
        tools: Vec<ToolResult>,
        operator_runs: Vec<IngestOneReport>,
    ) -> Self {
        let op = tools
            .iter()
            .find(|t| t.tool == "operator")
            .map(|t| t.median_seconds)
            .filter(|o| *o > 0.0);
        let speedup_vs = tools
            .iter()
            .filter(|t| t.tool != "operator")
            .filter_map(|t| op.map(|o| (t.tool.clone(), t.median_seconds / o)))
            .collect();
        IngestDataset {
            name: name.to_string(),
            clips,
            clip_bytes,
            concurrency,
            tools,
            speedup_vs,
            operator_runs,
        }
    }

    fn tool(&self, name: &str) -> Option<&ToolResult> {
        self.tools.iter().find(|t| t.tool == name)
    }
}

/// A goal of the issue and where this run stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Goal {
    /// What is asked.
    pub goal: String,
    /// The measured figure.
    pub value: f64,
    /// How it is stated (`1.23×`, `2.01 requests`).
    pub figure: String,
    /// Whether it is met.
    pub met: bool,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestBenchReport {
    /// The command that produced it.
    pub command: String,
    /// When it finished.
    pub finished: chrono::DateTime<chrono::Utc>,
    /// The machine.
    pub machine: Machine,
    /// Peer and server versions.
    pub versions: BTreeMap<String, String>,
    /// Runs per tool and job (the median is reported).
    pub runs: usize,
    /// The machine's 1-minute load average at the start of each measured run (other
    /// work on the machine makes times noisy; request counts are not affected).
    pub load_averages: Vec<f64>,
    /// The `ingest` job: a dock into an empty hot tier.
    pub ingest: Vec<IngestDataset>,
    /// The `expire` and `move` jobs on ingested clips.
    pub sweeps: Vec<Dataset>,
    /// The goals.
    pub goals: Vec<Goal>,
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

/// `API count, …` of a run's requests, largest first.
fn by_api(requests: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<(&String, &u64)> = requests.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn rss(t: &ToolResult) -> String {
    t.peak_rss_kib
        .map_or("—".into(), |k| format!("{:.0} MiB", k as f64 / 1024.0))
}

impl IngestBenchReport {
    /// The goals of issue 19, item 8, from the measured datasets.
    pub fn judge(&mut self) {
        let mut goals = Vec::new();
        let mut push = |goal: String, value: f64, figure: String, met: bool| {
            goals.push(Goal {
                goal,
                value,
                figure,
                met,
            });
        };
        for d in &self.ingest {
            let label = format!("ingest {} × {}", d.clips, size(d.clip_bytes));
            let r = |peer: &str| d.speedup_vs.get(peer).copied();
            if d.name == "small"
                && let Some(v) = r("rclone")
            {
                push(
                    format!("{label}: ≥ 1× rclone copy"),
                    v,
                    format!("{v:.2}×"),
                    v >= 1.0,
                );
            }
            if d.name == "large" {
                let faster = match (r("rclone"), r("s5cmd")) {
                    (Some(a), Some(b)) => Some((a.min(b), if a <= b { "rclone" } else { "s5cmd" })),
                    (Some(a), None) => Some((a, "rclone")),
                    (None, Some(b)) => Some((b, "s5cmd")),
                    (None, None) => None,
                };
                if let Some((v, peer)) = faster {
                    push(
                        format!("{label}: ≥ 0.9× the faster of rclone and s5cmd ({peer})"),
                        v,
                        format!("{v:.2}×"),
                        v >= 0.9,
                    );
                }
            }
        }
        for d in &self.sweeps {
            let label = format!(
                "{} {} ingested × {}",
                d.scenario,
                d.clips,
                size(d.clip_bytes)
            );
            let r = |peer: &str| d.speedup_vs.get(peer).copied();
            match d.scenario.as_str() {
                "expire" => {
                    if let Some(v) = r("s5cmd") {
                        push(
                            format!("{label}: ≥ 1× s5cmd"),
                            v,
                            format!("{v:.2}×"),
                            v >= 1.0,
                        );
                    }
                }
                _ => {
                    if let Some(v) = r("rclone") {
                        push(
                            format!("{label}: ≥ 2× rclone"),
                            v,
                            format!("{v:.2}×"),
                            v >= 2.0,
                        );
                    }
                    if let Some(op) = d.tools.iter().find(|t| t.tool == "operator") {
                        let v = op.beyond_listing_per_acted_clip;
                        push(
                            format!("{label}: ≤ 1 request per moved clip (beyond listing)"),
                            v,
                            format!("{v:.3} ({:.3} with listing)", op.requests_per_acted_clip),
                            v <= 1.0,
                        );
                    }
                }
            }
        }
        self.goals = goals;
    }

    /// The Markdown summary.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Command: `{}`  ", self.command);
        let loads = &self.load_averages;
        let (lo, hi) = loads
            .iter()
            .fold((f64::MAX, 0.0_f64), |(lo, hi), l| (lo.min(*l), hi.max(*l)));
        let _ = writeln!(
            s,
            "Finished {}; machine: {} CPUs, {}; MinIO {}, rclone {}, s5cmd {}; median of {} runs per tool and job; \
load average at the runs' start {:.1}–{:.1}.\n",
            self.finished.format("%Y-%m-%d %H:%M UTC"),
            self.machine.cpus,
            self.machine.os,
            self.versions.get("minio").map_or("?", String::as_str),
            self.versions.get("rclone").map_or("?", String::as_str),
            self.versions.get("s5cmd").map_or("?", String::as_str),
            self.runs,
            if loads.is_empty() { 0.0 } else { lo },
            hi,
        );
        if !self.ingest.is_empty() {
            let _ = writeln!(s, "## ingest: a dock folder into an empty hot tier\n");
            let _ = writeln!(
                s,
                "| dock | tool | median s | time ÷ operator's | MiB/s | requests / clip | peak RSS | correct |"
            );
            let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|:---:|");
            for d in &self.ingest {
                let op = d.tool("operator").map_or(0.0, |t| t.median_seconds);
                let job = format!(
                    "{} × {} ({} in flight)",
                    d.clips,
                    size(d.clip_bytes),
                    d.concurrency
                );
                let mib = (d.clips * d.clip_bytes) as f64 / f64::from(1 << 20);
                for t in &d.tools {
                    let ratio = if op > 0.0 { t.median_seconds / op } else { 0.0 };
                    let _ = writeln!(
                        s,
                        "| {job} | {} | {:.2} | {ratio:.2} | {:.0} | {:.3} | {} | {} |",
                        t.tool,
                        t.median_seconds,
                        mib / t.median_seconds.max(1e-9),
                        t.requests_per_acted_clip,
                        rss(t),
                        if t.correct { "yes" } else { "**no**" }
                    );
                }
            }
            let _ = writeln!(s, "\nRequests at MinIO by API (the median run):\n");
            for d in &self.ingest {
                for t in &d.tools {
                    let _ = writeln!(
                        s,
                        "- {} × {}, {}: {}",
                        d.clips,
                        size(d.clip_bytes),
                        t.tool,
                        by_api(&t.requests)
                    );
                }
            }
        }
        if !self.sweeps.is_empty() {
            let _ = writeln!(
                s,
                "\n## expire and move: a sweep of clips ingested by the operator\n"
            );
            let _ = writeln!(
                s,
                "| job | tool | median s | time ÷ operator's | requests / clip acted on | beyond listing / clip | peak RSS | correct |"
            );
            let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|:---:|");
            for d in &self.sweeps {
                let op = d
                    .tools
                    .iter()
                    .find(|t| t.tool == "operator")
                    .map_or(0.0, |t| t.median_seconds);
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
                        "| {job} | {} | {:.2} | {ratio:.2} | {:.3} | {:.3} | {} | {} |",
                        t.tool,
                        t.median_seconds,
                        t.requests_per_acted_clip,
                        t.beyond_listing_per_acted_clip,
                        rss(t),
                        if t.correct { "yes" } else { "**no**" }
                    );
                }
            }
            let _ = writeln!(s, "\nRequests at MinIO by API (the median run):\n");
            for d in &self.sweeps {
                for t in &d.tools {
                    let _ = writeln!(s, "- {} {}: {}", d.scenario, t.tool, by_api(&t.requests));
                }
            }
        }
        let _ = writeln!(
            s,
            "\n\"time ÷ operator's\" is the tool's median wall time ÷ the operator's: above 1, the operator is that many \
times faster. Every tool is timed from its process's start to its exit; the operator runs in a child process \
(`evidence-bench ingest-one`: the ingest library, hashing, tagging, verifying and recording every clip; \
`evidence-bench operate`: the controller's sweep with its audit chain). \"beyond listing\" leaves out list \
requests and per-clip tag reads."
        );
        if !self.goals.is_empty() {
            let _ = writeln!(
                s,
                "\n| goal (issue 19, item 8) | figure | |\n|---|---:|---|"
            );
            for g in &self.goals {
                let _ = writeln!(s, "| {} | {} | {} |", g.goal, g.figure, verdict(g.met));
            }
        }
        s
    }
}
