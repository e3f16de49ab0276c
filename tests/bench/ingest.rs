//! `evidence-bench ingest` (issue 19, item 8): the dock ingest against `rclone copy` and
//! `s5cmd cp`, and the sweeps that follow it (expire, move) on ingested clips against
//! the peers of the `compare` job, in one run on the same machine and the same MinIO.
//!
//! ```text
//! make bench BENCH_JOB=ingest                      # 10,000 × 4 KiB, 64 × 64 MiB, sweeps of 10,000
//! make bench BENCH_JOB=ingest BENCH_CLIPS=1000 BENCH_ARGS="--large-clips 8 --runs 1"   # quick
//! cargo run --release -p evidence-operator-tests --bin evidence-bench -- ingest --help
//! ```
//!
//! **`ingest`**: a plain dock folder (`dock::plain_dock`: minimal MP4s with their
//! recording time in `mvhd`, the camera, officer and category as folder flags) into
//! the empty hot bucket of a fresh evidence bucket, per tool and run: the operator's
//! ingest library (`evidence-bench ingest-one`, a child process: SHA-256 of every clip,
//! tags, metadata, conditional checksummed uploads, the audit records), `rclone copy
//! DOCK bench:HOT` and `s5cmd cp 'DOCK/*' s3://HOT/`, with the same uploads in flight
//! (`--small-concurrency`, `--large-concurrency`). The peers neither hash nor tag.
//!
//! **`expire`, `move`**: a sidecar dock (`dock::sidecar_dock`, the clips of
//! `data::dataset`: half acted on) is ingested by the operator's library into a fresh
//! evidence bucket (not timed), then one tool acts: the operator's sweep
//! (`evidence-bench operate`, as in the `compare` job), `rclone delete` / `rclone move`
//! of the acted-on cameras' keys (an `--include` rule: ingested clips carry no
//! `mtime` metadata, so rclone's `--min-age` cannot select them by recording time),
//! `s5cmd rm` / `cp` + `rm` handed the key list, and the ceiling (a bare loop of the
//! necessary S3 calls).
//!
//! Every run gets fresh, empty buckets; the tool order rotates from run to run; the
//! median of `--runs` runs is reported. Requests are counted at MinIO
//! (`minio_api_requests_total`) around each tool's run. Results:
//! `<out>/results.{json,md}`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, Result, bail};
use aws_sdk_s3::Client;
use chrono::Utc;
use evidence_operator::{api::RetentionPolicySpec, storage::StaticCredentials};

use crate::{
    data::Scenario,
    dock::{self, ACTED_CAMERA, IngestOneReport},
    ingest_report::{IngestBenchReport, IngestDataset},
    minio::{self, Minio},
    operate::load_policy,
    report::{self, Dataset, RunResult, ToolResult},
    tools::{self, Binaries, Buckets, Tool},
};

/// Arguments of `evidence-bench ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Jobs, comma-separated: ingest, expire, move.
    #[arg(long, value_delimiter = ',', default_value = "ingest,expire,move")]
    pub jobs: Vec<String>,
    /// Clips in the small dock (0 to skip).
    #[arg(long, default_value_t = 10_000)]
    pub small_clips: usize,
    /// Bytes per small clip.
    #[arg(long, default_value_t = 4096)]
    pub small_bytes: usize,
    /// Clips in the large dock (0 to skip).
    #[arg(long, default_value_t = 64)]
    pub large_clips: usize,
    /// MiB per large clip (64: one `PutObject` each for the operator, whose multipart
    /// threshold is above 64 MiB).
    #[arg(long, default_value_t = 64)]
    pub large_mib: usize,
    /// Uploads in flight for the small dock, for every tool.
    #[arg(long, default_value_t = 16)]
    pub small_concurrency: usize,
    /// Uploads in flight for the large dock, for every tool.
    #[arg(long, default_value_t = 8)]
    pub large_concurrency: usize,
    /// Clips ingested for each expire and move run (half are acted on).
    #[arg(long, default_value_t = 10_000)]
    pub sweep_clips: usize,
    /// Bytes per clip of the expire and move runs.
    #[arg(long, default_value_t = 4096)]
    pub sweep_bytes: usize,
    /// Runs of each tool on each job (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Only these tools (comma-separated: operator, rclone, s5cmd, ceiling).
    #[arg(long, value_delimiter = ',')]
    pub tools: Vec<String>,
    /// Extra arguments for every `evidence-bench operate` child (the sweeps).
    #[arg(long = "operate-arg", allow_hyphen_values = true)]
    pub operate_args: Vec<String>,
    /// Where the plain docks are kept between runs.
    #[arg(long, default_value = "target/bench/ingest-data")]
    pub data: PathBuf,
    /// Where the results go.
    #[arg(long, default_value = "target/bench/ingest")]
    pub out: PathBuf,
    /// The command line to record in the report.
    #[arg(long, default_value = "")]
    pub command_line: String,
}

/// Where the driver finds the repository and itself.
pub struct Paths {
    /// The repository root.
    pub root: PathBuf,
    /// This driver (for its `ingest-one` and `operate` children).
    pub driver: PathBuf,
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// The 1-minute load average (0 where `/proc` is missing).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// What every run needs.
struct Ctx<'a> {
    args: &'a IngestArgs,
    server: &'a Minio,
    client: Client,
    bins: &'a Binaries,
    policy: RetentionPolicySpec,
    seq: usize,
    loads: Vec<f64>,
}

/// Run the jobs and write the report.
pub async fn run(args: IngestArgs, paths: Paths) -> Result<()> {
    if args.runs == 0 {
        bail!("need at least 1 run");
    }
    for job in &args.jobs {
        if !["ingest", "expire", "move"].contains(&job.as_str()) {
            bail!("unknown job {job:?}: ingest, expire or move");
        }
    }
    let out = absolute(&args.out)?;
    let data = absolute(&args.data)?;
    std::fs::create_dir_all(&out)?;
    std::fs::create_dir_all(&data)?;
    let scratch = out.join("scratch");
    std::fs::create_dir_all(&scratch)?;
    let job = |j: &str| args.jobs.iter().any(|x| x == j);

    // The docks first: the large one is written once (GiBs), before any server runs.
    let mut docks = Vec::new();
    if job("ingest") && args.small_clips > 0 {
        let name = format!("small-{}x{}", args.small_clips, args.small_bytes);
        let dir = dock::plain_dock(&data, &name, args.small_clips, args.small_bytes)?;
        docks.push((
            "small",
            dir,
            args.small_clips,
            args.small_bytes,
            args.small_concurrency,
        ));
    }
    if job("ingest") && args.large_clips > 0 {
        let bytes = args.large_mib << 20;
        let name = format!("large-{}x{}", args.large_clips, bytes);
        let dir = dock::plain_dock(&data, &name, args.large_clips, bytes)?;
        docks.push((
            "large",
            dir,
            args.large_clips,
            bytes,
            args.large_concurrency,
        ));
    }

    let gnu_time = Path::new("/usr/bin/time");
    let bins = Binaries {
        rclone: minio::tool_path(&paths.root, "rclone")?,
        s5cmd: minio::tool_path(&paths.root, "s5cmd")?,
        driver: paths.driver.clone(),
        policy: paths.root.join("deploy/examples/retentionpolicy-met.yaml"),
        gnu_time: gnu_time.exists().then(|| gnu_time.to_path_buf()),
        scratch: scratch.clone(),
        operate_args: args.operate_args.clone(),
    };
    let minio_bin = minio::tool_path(&paths.root, "minio")?;
    let server = Minio::start(&minio_bin, &out.join("minio")).await?;
    let mut ctx = Ctx {
        args: &args,
        server: &server,
        client: server.client(),
        bins: &bins,
        policy: load_policy(&bins.policy)?,
        seq: 0,
        loads: Vec::new(),
    };
    let measured = measure(&mut ctx, &docks, &data).await;
    let loads = std::mem::take(&mut ctx.loads);
    server.stop().await?;
    let (ingest, sweeps) = measured?;

    let mut report = IngestBenchReport {
        command: crate::report::command_line(&args.command_line),
        finished: Utc::now(),
        machine: report::Machine::here(),
        versions: report::versions(&bins.rclone, &bins.s5cmd, &minio_bin),
        runs: args.runs,
        load_averages: loads,
        ingest,
        sweeps,
        goals: Vec::new(),
    };
    report.judge();
    let written = crate::report::write_results(
        &out,
        &serde_json::to_string_pretty(&report)?,
        &report.markdown(),
    );
    std::fs::remove_dir_all(&scratch).ok();
    written
}

type Dock<'a> = (&'a str, PathBuf, usize, usize, usize);

async fn measure(
    ctx: &mut Ctx<'_>,
    docks: &[Dock<'_>],
    data: &Path,
) -> Result<(Vec<IngestDataset>, Vec<Dataset>)> {
    let mut ingest = Vec::new();
    for (name, dir, clips, bytes, concurrency) in docks {
        let peers = [Tool::Operator, Tool::Rclone, Tool::S5cmd];
        let mut results: BTreeMap<Tool, Vec<RunResult>> = BTreeMap::new();
        let mut operator_runs = Vec::new();
        for run in 0..ctx.args.runs {
            for tool in order(ctx.args, &peers, run) {
                eprintln!(
                    "[bench] ingest {clips} × {bytes} B: {} run {}/{}",
                    tool.as_str(),
                    run + 1,
                    ctx.args.runs
                );
                let (r, op) = one_ingest(ctx, tool, dir, *clips, *concurrency).await?;
                operator_runs.extend(op);
                results.entry(tool).or_default().push(r);
            }
        }
        ingest.push(IngestDataset::new(
            name,
            *clips,
            *bytes,
            *concurrency,
            results
                .into_iter()
                .map(|(tool, runs)| ToolResult::new(tool.as_str(), runs, *clips))
                .collect(),
            operator_runs,
        ));
    }

    let mut sweeps = Vec::new();
    for scenario in [Scenario::Expire, Scenario::Move] {
        if !ctx.args.jobs.iter().any(|j| j == scenario.as_str()) || ctx.args.sweep_clips < 2 {
            continue;
        }
        let n = ctx.args.sweep_clips;
        let dir = data.join(format!("sweep-{}", scenario.as_str()));
        dock::sidecar_dock(&dir, scenario, n, ctx.args.sweep_bytes, Utc::now())?;
        let mut results: BTreeMap<Tool, Vec<RunResult>> = BTreeMap::new();
        for run in 0..ctx.args.runs {
            for tool in order(ctx.args, &Tool::ALL, run) {
                eprintln!(
                    "[bench] {} {n} ingested clips: {} run {}/{}",
                    scenario.as_str(),
                    tool.as_str(),
                    run + 1,
                    ctx.args.runs
                );
                let r = one_sweep(ctx, scenario, &dir, n, tool).await?;
                results.entry(tool).or_default().push(r);
            }
        }
        std::fs::remove_dir_all(&dir).ok();
        sweeps.push(Dataset::new(
            scenario,
            n,
            ctx.args.sweep_bytes,
            results
                .into_iter()
                .map(|(tool, runs)| ToolResult::new(tool.as_str(), runs, n / 2 + n % 2))
                .collect(),
        ));
    }
    Ok((ingest, sweeps))
}

/// The tools of `from` the arguments allow, rotated by the run so no tool always goes
/// first.
fn order(args: &IngestArgs, from: &[Tool], run: usize) -> Vec<Tool> {
    let mut v: Vec<Tool> = from
        .iter()
        .copied()
        .filter(|t| args.tools.is_empty() || args.tools.iter().any(|n| n == t.as_str()))
        .collect();
    let len = v.len().max(1);
    v.rotate_left(run % len);
    v
}

/// A fresh evidence bucket (hot, cool, legal-hold with Object Lock) for one run.
async fn fresh_buckets(ctx: &mut Ctx<'_>, kind: &str) -> Result<Buckets> {
    ctx.seq += 1;
    let seq = ctx.seq;
    let buckets = Buckets {
        hot: format!("{kind}-{seq:04}-hot"),
        cool: format!("{kind}-{seq:04}-cool"),
        legal_hold: format!("{kind}-{seq:04}-lock"),
    };
    let (server, client) = (ctx.server, &ctx.client);
    server.create_bucket(client, &buckets.hot, false).await?;
    server.create_bucket(client, &buckets.cool, false).await?;
    server
        .create_bucket(client, &buckets.legal_hold, true)
        .await?;
    Ok(buckets)
}

/// One tool's ingest of a dock into a fresh, empty hot bucket.
async fn one_ingest(
    ctx: &mut Ctx<'_>,
    tool: Tool,
    dock: &Path,
    clips: usize,
    concurrency: usize,
) -> Result<(RunResult, Option<IngestOneReport>)> {
    let buckets = fresh_buckets(ctx, "ing").await?;
    let (server, bins) = (ctx.server, ctx.bins);
    let c = concurrency.to_string();
    let dock_s = dock.to_string_lossy().into_owned();
    ctx.loads.push(load_average());
    let before = server.requests().await?;
    let started = Instant::now();
    let (rss, op) = match tool {
        Tool::Operator => {
            let args: Vec<String> = [
                "ingest-one",
                "--dock",
                &dock_s,
                "--endpoint",
                &server.endpoint,
                "--hot",
                &buckets.hot,
                "--cool",
                &buckets.cool,
                "--legal-hold",
                &buckets.legal_hold,
                "--policy",
                &bins.policy.to_string_lossy(),
                "--concurrency",
                &c,
            ]
            .map(String::from)
            .to_vec();
            let (stdout, rss) =
                tools::run_cmd(bins, &bins.driver, &args, &tools::aws_env(server)).await?;
            let report: IngestOneReport = stdout
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str(l).ok())
                .with_context(|| format!("no report from the ingest child: {stdout}"))?;
            (rss.or(Some(report.peak_rss_kib)), Some(report))
        }
        Tool::Rclone => {
            let (env, mut args) = tools::rclone_setup(server, bins)?;
            args.extend([
                "copy".to_string(),
                dock_s.clone(),
                format!("bench:{}", buckets.hot),
                "--transfers".into(),
                c.clone(),
                "--checkers".into(),
                c.clone(),
            ]);
            let (_, rss) = tools::run_cmd(bins, &bins.rclone, &args, &env).await?;
            (rss, None)
        }
        Tool::S5cmd => {
            let args: Vec<String> = vec![
                "--endpoint-url".into(),
                server.endpoint.clone(),
                "--numworkers".into(),
                c.clone(),
                "cp".into(),
                format!("{dock_s}/*"),
                format!("s3://{}/", buckets.hot),
            ];
            let (_, rss) =
                tools::run_cmd(bins, &bins.s5cmd, &args, &tools::aws_env(server)).await?;
            (rss, None)
        }
        Tool::Ceiling => bail!("the ingest job has no ceiling"),
    };
    let seconds = tools::secs(started);
    let after = server.requests().await?;
    let landed = tools::count(&ctx.client, &buckets.hot).await?;
    let correct = landed == clips && op.as_ref().is_none_or(|r| r.ingested == clips);
    if !correct {
        eprintln!(
            "[bench] WARNING ingest by {}: {landed} objects in the hot tier, expected {clips} ({op:?})",
            tool.as_str()
        );
    }
    tools::empty(&ctx.client, &buckets.hot).await?;
    Ok((
        RunResult {
            seconds,
            requests: minio::diff(&before, &after),
            correct,
            peak_rss_kib: rss,
            operator: None,
        },
        op,
    ))
}

/// One tool's sweep (expire or move) of a dock ingested into a fresh evidence bucket.
async fn one_sweep(
    ctx: &mut Ctx<'_>,
    scenario: Scenario,
    dock: &Path,
    n: usize,
    tool: Tool,
) -> Result<RunResult> {
    let buckets = fresh_buckets(ctx, "swp").await?;
    let (server, bins) = (ctx.server, ctx.bins);
    let credentials = StaticCredentials {
        access_key_id: server.access_key.clone(),
        secret_access_key: server.secret_key.clone(),
        session_token: None,
    };
    let target = dock::target(&server.endpoint, credentials, &buckets, &ctx.policy);
    let seeded = dock::ingest_all(&target, dock, 32).await?;
    let acted: Vec<String> = seeded
        .clips
        .iter()
        .filter_map(|c| c.key.clone())
        .filter(|k| dock::acted_key(k))
        .collect();
    if acted.len() != n / 2 + n % 2 {
        bail!(
            "the ingested dock has {} acted-on clips, expected {}",
            acted.len(),
            n / 2 + n % 2
        );
    }

    ctx.loads.push(load_average());
    let before = server.requests().await?;
    let started = Instant::now();
    let ran = match tool {
        Tool::Rclone => rclone_sweep(scenario, server, &buckets, bins).await?,
        _ => tools::run_tool(tool, scenario, server, &ctx.client, &buckets, &acted, bins)
            .await
            .with_context(|| format!("{} on {}", tool.as_str(), scenario.as_str()))?,
    };
    let seconds = tools::secs(started);
    let after = server.requests().await?;

    let hot_left = tools::count(&ctx.client, &buckets.hot).await?;
    let cool_now = tools::count(&ctx.client, &buckets.cool).await?;
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
    Ok(RunResult {
        seconds,
        requests: minio::diff(&before, &after),
        correct,
        peak_rss_kib: ran.peak_rss_kib,
        operator: ran.operator,
    })
}

/// rclone on ingested clips: `delete`, or `move` to the cool bucket, of the keys on the
/// acted-on cameras (`<yyyy>/<mm>/<dd>/BWV-A…/…`), with the `compare` job's
/// concurrency.
async fn rclone_sweep(
    scenario: Scenario,
    server: &Minio,
    buckets: &Buckets,
    bins: &Binaries,
) -> Result<tools::ToolRun> {
    let (env, mut args) = tools::rclone_setup(server, bins)?;
    let include = format!("/*/*/*/{ACTED_CAMERA}*/**");
    match scenario {
        Scenario::Expire => args.extend(["delete".to_string(), format!("bench:{}", buckets.hot)]),
        Scenario::Move => args.extend([
            "move".to_string(),
            format!("bench:{}", buckets.hot),
            format!("bench:{}", buckets.cool),
        ]),
    }
    args.extend(["--include".to_string(), include]);
    args.extend(["--checkers", "16", "--transfers", "16"].map(String::from));
    let (_, rss) = tools::run_cmd(bins, &bins.rclone, &args, &env).await?;
    Ok(tools::ToolRun {
        peak_rss_kib: rss,
        operator: None,
    })
}
