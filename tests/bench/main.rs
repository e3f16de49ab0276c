//! `evidence-bench`: the operator against the tools a platform team would otherwise use
//! (rclone, s5cmd) and against the ceiling (a bare loop of the necessary S3 calls), in
//! one run on the same machine, the same MinIO and the same synthetic clips.
//!
//! ```text
//! make bench                                   # N = 10,000, 3 runs, + RSS at 100,000
//! cargo run --release -p evidence-operator-tests --bin evidence-bench -- run --help
//! make bench BENCH_JOB=steady BENCH_CLIPS=100000   # the catalogue's steady sweep
//! make bench BENCH_JOB=ingest                      # the dock ingest, then expire and move
//! make bench BENCH_JOB=request                     # answering an AccessRequest, 100,000 clips
//! ```
//!
//! Results: `target/bench/results.json` and `target/bench/results.md`. Every figure is
//! reported as a ratio to the operator (median wall time of the runs); requests are
//! counted at the server (MinIO's `minio_api_requests_total`), per clip acted on.
//!
//! The `steady` job ([`steady`]) measures instead what a sweep costs once the clip
//! catalogue knows the bucket, on MinIO and SeaweedFS, over datasets seeded once and
//! reused: results in `target/bench/steady/`.
//!
//! The `ingest` job ([`ingest`]) measures the dock ingest against `rclone copy` and
//! `s5cmd cp`, and the expire and move sweeps of ingested clips against the peers above:
//! results in `target/bench/ingest/`.
//!
//! The `request` job ([`request`]) measures the answer to an AccessRequest (search,
//! SHA-256 of the clips found, manifest) over N clips with and without the catalogue, on
//! MinIO and SeaweedFS: results in `target/bench/request/`.

mod data;
mod dock;
mod ingest;
mod ingest_report;
mod kept;
mod minio;
mod operate;
mod report;
mod request;
mod seaweedfs;
mod steady;
mod tools;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use clap::{Parser, Subcommand};
use evidence_operator::engine::Planner;

use crate::{
    data::Scenario,
    minio::Minio,
    report::{Dataset, Planning, Report, RssPoint, RunResult, ToolResult},
    tools::{Binaries, Buckets, Tool},
};

/// The benchmark driver.
#[derive(Debug, Parser)]
#[command(
    name = "evidence-bench",
    about = "Benchmark the operator against rclone, s5cmd and the S3 ceiling",
    // `make bench` passes its defaults first and `BENCH_ARGS` after them: a flag given
    // again there wins.
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the whole benchmark and write the report.
    Run(RunArgs),
    /// The catalogue's steady sweep: cold, steady, changed and today's sweeps of N clips
    /// on MinIO and SeaweedFS, over datasets kept between runs.
    Steady(steady::SteadyArgs),
    /// One operator sweep of one bucket (the driver runs this as a child process).
    Operate(operate::OperateArgs),
    /// The dock ingest against rclone and s5cmd, then expire and move sweeps of the
    /// ingested clips against rclone, s5cmd and the ceiling.
    Ingest(ingest::IngestArgs),
    /// One ingest of a dock by the operator's library (the driver runs this as a child
    /// process).
    IngestOne(dock::IngestOneArgs),
    /// The answer to an AccessRequest over N clips (search, SHA-256 of the clips found,
    /// manifest), without and with the catalogue, on MinIO and SeaweedFS.
    Request(request::RequestArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Clips per dataset (half of them are acted on).
    #[arg(long, default_value_t = 10_000)]
    clips: usize,
    /// Size of the small clips, bytes.
    #[arg(long, default_value_t = 4096)]
    small_size: usize,
    /// Clips in the large-object run (moves only; 0 to skip).
    #[arg(long, default_value_t = 16)]
    large_clips: usize,
    /// Size of the large clips, MiB.
    #[arg(long, default_value_t = 64)]
    large_size_mib: usize,
    /// Runs of each tool on each dataset (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Further clip counts at which to measure the operator's peak RSS (one expire sweep
    /// each), e.g. `--rss-at 100000`.
    #[arg(long, value_delimiter = ',')]
    rss_at: Vec<usize>,
    /// Clips for the planning-alone measurement (no storage).
    #[arg(long, default_value_t = 1_000_000)]
    plan_clips: usize,
    /// Upload the clips without a SHA-256 checksum (the operator then reads each
    /// source once to hash it on its first move).
    #[arg(long)]
    no_upload_checksum: bool,
    /// Also record each clip's SHA-256 in its `evidence-sha256` metadata at upload (an
    /// uploader that hashes at ingest): the operator's first move then needs no HEAD.
    #[arg(long)]
    record_sha256: bool,
    /// Extra arguments passed to every `evidence-bench operate` child (tuning
    /// experiments), e.g. `--operate-arg=--list-concurrency --operate-arg=64`.
    #[arg(long = "operate-arg", allow_hyphen_values = true)]
    operate_args: Vec<String>,
    /// Only these tools (comma-separated: operator, rclone, s5cmd, ceiling).
    #[arg(long, value_delimiter = ',')]
    tools: Vec<String>,
    /// Where results go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// The command line to record in the report (what produced it).
    #[arg(long, default_value = "")]
    command_line: String,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Operate(args) => operate::operate(args).await,
        Cmd::Run(args) => run(args).await,
        Cmd::IngestOne(args) => dock::ingest_one(args).await,
        Cmd::Ingest(args) => {
            ingest::run(
                args,
                ingest::Paths {
                    root: repo_root(),
                    driver: std::env::current_exe()?,
                },
            )
            .await
        }
        Cmd::Request(args) => {
            request::run(
                args,
                steady::Paths {
                    root: repo_root(),
                    driver: std::env::current_exe()?,
                },
            )
            .await
        }
        Cmd::Steady(args) => {
            steady::run(
                args,
                steady::Paths {
                    root: repo_root(),
                    driver: std::env::current_exe()?,
                },
            )
            .await
        }
    }
}

async fn run(args: RunArgs) -> Result<()> {
    if args.runs == 0 || args.clips < 2 {
        bail!("need at least 1 run and 2 clips");
    }
    let root = repo_root();
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        std::env::current_dir()?.join(&args.out)
    };
    std::fs::create_dir_all(&out)?;
    let scratch = out.join("scratch");
    std::fs::create_dir_all(&scratch)?;
    let gnu_time = Path::new("/usr/bin/time");
    let bins = Binaries {
        rclone: minio::tool_path(&root, "rclone")?,
        s5cmd: minio::tool_path(&root, "s5cmd")?,
        driver: std::env::current_exe()?,
        policy: root.join("deploy/examples/retentionpolicy-met.yaml"),
        gnu_time: gnu_time.exists().then(|| gnu_time.to_path_buf()),
        scratch: scratch.clone(),
        operate_args: args.operate_args.clone(),
    };
    let minio_bin = minio::tool_path(&root, "minio")?;
    let server = Minio::start(&minio_bin, &out.join("minio")).await?;
    let result = measure(&args, &server, &bins, &minio_bin).await;
    server.stop().await?;
    let mut report = result?;
    report.command = crate::report::command_line(&args.command_line);
    let written = report::write_results(
        &out,
        &serde_json::to_string_pretty(&report)?,
        &report.markdown(),
    );
    std::fs::remove_dir_all(&scratch).ok();
    written
}

async fn measure(
    args: &RunArgs,
    server: &Minio,
    bins: &Binaries,
    minio_bin: &Path,
) -> Result<Report> {
    let client = server.client();
    let mut seq = 0usize;
    let mut datasets = Vec::new();
    let plans: Vec<(Scenario, usize, usize)> = {
        let mut p = vec![
            (Scenario::Expire, args.clips, args.small_size),
            (Scenario::Move, args.clips, args.small_size),
        ];
        if args.large_clips >= 2 {
            p.push((Scenario::Move, args.large_clips, args.large_size_mib << 20));
        }
        p
    };
    for (scenario, n, size) in plans {
        let large = size > args.small_size;
        let mut tools: BTreeMap<Tool, Vec<RunResult>> = BTreeMap::new();
        for run in 0..args.runs {
            // Rotate the order each run so no tool always goes first.
            let mut order: Vec<Tool> = Tool::ALL
                .into_iter()
                .filter(|t| args.tools.is_empty() || args.tools.iter().any(|n| n == t.as_str()))
                .collect();
            let len = order.len().max(1);
            order.rotate_left(run % len);
            for tool in order {
                seq += 1;
                eprintln!(
                    "[bench] {} {} clips of {} B: {} run {}/{}",
                    scenario.as_str(),
                    n,
                    size,
                    tool.as_str(),
                    run + 1,
                    args.runs
                );
                let r = one_run(
                    server,
                    &client,
                    bins,
                    scenario,
                    n,
                    size,
                    tool,
                    seq,
                    !args.no_upload_checksum,
                    args.record_sha256,
                )
                .await?;
                if large {
                    tools::empty(&client, &r.1.hot).await?;
                    tools::empty(&client, &r.1.cool).await?;
                }
                tools.entry(tool).or_default().push(r.0);
            }
        }
        datasets.push(Dataset::new(
            scenario,
            n,
            size,
            tools
                .into_iter()
                .map(|(tool, runs)| ToolResult::new(tool.as_str(), runs, n / 2 + n % 2))
                .collect(),
        ));
    }

    // Peak RSS of the operator at further clip counts (one expire sweep each).
    let mut rss = Vec::new();
    if let Some(d) = datasets.first()
        && let Some(op) = d.tools.iter().find(|t| t.tool == "operator")
    {
        rss.push(RssPoint {
            clips: d.clips,
            peak_rss_kib: op.peak_rss_kib.unwrap_or(0),
        });
    }
    for &n in &args.rss_at {
        seq += 1;
        eprintln!("[bench] peak RSS: operator expire sweep of {n} clips");
        let (r, _) = one_run(
            server,
            &client,
            bins,
            Scenario::Expire,
            n,
            args.small_size,
            Tool::Operator,
            seq,
            !args.no_upload_checksum,
            args.record_sha256,
        )
        .await?;
        if !r.correct {
            bail!("the operator's sweep of {n} clips left the wrong clips");
        }
        rss.push(RssPoint {
            clips: n,
            peak_rss_kib: r.peak_rss_kib.unwrap_or(0),
        });
    }

    // Planning alone.
    let planning = plan_alone(args.plan_clips, &bins.policy)?;

    Ok(Report {
        command: String::new(),
        machine: report::Machine::here(),
        versions: report::versions(&bins.rclone, &bins.s5cmd, minio_bin),
        clips: args.clips,
        runs: args.runs,
        upload_checksum: !args.no_upload_checksum,
        upload_recorded_sha256: args.record_sha256,
        datasets,
        rss,
        planning,
    })
}

#[allow(clippy::too_many_arguments)]
async fn one_run(
    server: &Minio,
    client: &aws_sdk_s3::Client,
    bins: &Binaries,
    scenario: Scenario,
    n: usize,
    size: usize,
    tool: Tool,
    seq: usize,
    checksum: bool,
    record: bool,
) -> Result<(RunResult, Buckets)> {
    let buckets = Buckets {
        hot: format!("bench-{seq:04}-hot"),
        cool: format!("bench-{seq:04}-cool"),
        legal_hold: format!("bench-{seq:04}-lock"),
    };
    server.create_bucket(client, &buckets.hot, false).await?;
    server.create_bucket(client, &buckets.cool, false).await?;
    server
        .create_bucket(client, &buckets.legal_hold, true)
        .await?;
    let clips = data::dataset(scenario, n, Utc::now());
    let concurrency = if size > 1 << 20 { 4 } else { 64 };
    data::seed(
        client,
        &buckets.hot,
        &clips,
        size,
        concurrency,
        checksum,
        record,
    )
    .await?;
    let acted: Vec<String> = clips
        .iter()
        .filter(|c| c.acted)
        .map(|c| c.key.clone())
        .collect();

    let before = server.requests().await?;
    let started = Instant::now();
    let ran = tools::run_tool(tool, scenario, server, client, &buckets, &acted, bins)
        .await
        .with_context(|| format!("{} on {}", tool.as_str(), scenario.as_str()))?;
    let seconds = tools::secs(started);
    let after = server.requests().await?;

    let hot_left = tools::count(client, &buckets.hot).await?;
    let cool_now = tools::count(client, &buckets.cool).await?;
    let kept = n - acted.len();
    let correct = match scenario {
        Scenario::Expire => hot_left == kept && cool_now == 0,
        Scenario::Move => hot_left == kept && cool_now == acted.len(),
    };
    if !correct {
        eprintln!(
            "[bench] WARNING {} {}: hot has {hot_left} (expected {kept}), cool {cool_now}",
            tool.as_str(),
            scenario.as_str()
        );
    }
    Ok((
        RunResult {
            seconds,
            requests: minio::diff(&before, &after),
            correct,
            peak_rss_kib: ran.peak_rss_kib,
            operator: ran.operator,
        },
        buckets,
    ))
}

fn plan_alone(n: usize, policy_path: &PathBuf) -> Result<Planning> {
    if n == 0 {
        return Ok(Planning::default());
    }
    let policy = operate::load_policy(policy_path)?;
    let now = Utc::now();
    let clips = data::planning_clips(n, now);
    let planner = Planner::new(&policy, &[], now)?;
    let mut best = f64::MAX;
    let mut actions: BTreeMap<String, u64> = BTreeMap::new();
    for round in 0..3 {
        let started = Instant::now();
        for clip in &clips {
            let d = std::hint::black_box(planner.plan_clip(std::hint::black_box(clip)));
            if round == 0 {
                *actions.entry(format!("{:?}", d.action)).or_default() += 1;
            }
        }
        best = best.min(tools::secs(started));
    }
    Ok(Planning {
        clips: n,
        seconds: best,
        clips_per_second: n as f64 / best,
        actions,
    })
}
