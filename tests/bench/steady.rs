//! `evidence-bench steady` (issue 18, item 4): what a sweep costs once the clip
//! catalogue knows the bucket, on MinIO and on SeaweedFS, at N clips.
//!
//! ```text
//! make bench BENCH_JOB=steady BENCH_CLIPS=100000
//! cargo run --release -p evidence-operator-tests --bin evidence-bench -- steady --help
//! ```
//!
//! **The dataset** is seeded once per server and N into `<data>/<server>-<N>/` (the
//! server's own data directory, its credentials, and `marker.json` recording the dataset
//! version, N and when it was seeded) and reused by every later run whose marker
//! matches. It never falls due on its own (`tests/bench/steady-policy.yaml`: the base
//! categories are kept 100 years and never cool), so it can be reused any day: ~90% of
//! the base clips in hot, ~10% in cool, 256-byte bodies tagged with a category and a
//! recording time.
//!
//! **Each run** clears the catalogue, uploads 0.5% clips that fall due between the two
//! planner clocks (non-evidential, 31 days; 90% hot, 10% cool) and runs these sweeps,
//! each in its own `evidence-bench operate` child (its peak RSS is its own):
//!
//! | sweep | planner clock | catalogue | what it measures |
//! |---|---|---|---|
//! | `cold` | P1 | empty | today's cost on a store without the listing extension, and the rebuild |
//! | `steady` | P1 | warm | nothing due: the headline |
//! | `changed` | P2 = P1 + 1 d | warm | after 1% new clips (hot, kept): must delete exactly the 0.5% due ones |
//! | `today` | P1 | none | the steady sweep before the catalogue |
//! | `today-extension` | P1 | none | MinIO only: today's sweep with MinIO's listing extension |
//!
//! P1 is the run's start + 2 d 1 h, so every clip of the run is past the 24 h safety
//! floor that counts from upload. The run's new clips are deleted after `changed`, so
//! the base set is intact for the next run; anything a broken run left behind (its
//! `run-` prefix) is deleted first.
//!
//! Requests are counted by the store (the SDK interceptor's count of HTTP requests) and,
//! on MinIO, at the server by API. Results: `<out>/results.{json,md}` (the latest run)
//! and `<out>/results-<N>.{json,md}`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    sync::atomic::{AtomicUsize, Ordering},
    time::Instant,
};

use anyhow::{Context, Result, bail};
use aws_sdk_s3::{
    Client,
    primitives::ByteStream,
    types::{Delete, ObjectIdentifier},
};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use clap::ArgAction;
use evidence_operator::{
    api::clip::{TAG_CATEGORY, TAG_RECORDED_AT},
    storage::tagging_query,
};
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use tokio::process::Command;

use crate::{
    data::SplitMix,
    minio::{self, Minio},
    operate::OperateReport,
    report::Machine,
    seaweedfs::Seaweedfs,
};

/// Bump when the layout of the base dataset changes: older datasets are seeded again.
const DATASET_VERSION: u32 = 1;

/// The buckets of the dataset.
const HOT: &str = "steady-hot";
const COOL: &str = "steady-cool";
const LOCK: &str = "steady-lock";

/// The base clips' categories (kept 100 years, never cooled, by the bench policy).
pub(crate) const KEPT: [&str; 5] = [
    "murder",
    "domestic-abuse",
    "stop-and-search",
    "use-of-force",
    "mopi-group-3",
];

/// The plan inputs of every sweep of a run (a tier memo holds only for the same).
const INPUTS: &str = "evidence-bench steady: tests/bench/steady-policy.yaml";

/// The goal for peak RSS, and the N it is set at.
const RSS_GOAL_MIB: f64 = 64.0;
const GOAL_CLIPS: usize = 1_000_000;

/// Arguments of `evidence-bench steady`.
#[derive(Debug, clap::Args)]
pub struct SteadyArgs {
    /// Clips in the base dataset: the whole bucket (~90% hot, ~10% cool).
    #[arg(long, default_value_t = 100_000)]
    pub clips: usize,
    /// Servers, comma-separated: minio, seaweedfs.
    #[arg(long, value_delimiter = ',', default_value = "minio,seaweedfs")]
    pub servers: Vec<String>,
    /// Where the datasets are kept between runs (one directory per server and N).
    #[arg(long, default_value = "target/bench/steady-data")]
    pub data: PathBuf,
    /// Where the results go.
    #[arg(long, default_value = "target/bench/steady")]
    pub out: PathBuf,
    /// Bytes per clip.
    #[arg(long, default_value_t = 256)]
    pub clip_bytes: usize,
    /// Uploads in flight while seeding.
    #[arg(long, default_value_t = 128)]
    pub seed_concurrency: usize,
    /// Ask for tags inside the listing (MinIO's extension) in the catalogued sweeps and
    /// `today`; `false` (the default) reads them per clip, as on AWS S3 and SeaweedFS.
    #[arg(long, default_value_t = false, action = ArgAction::Set)]
    pub list_metadata: bool,
    /// Extra arguments for every `evidence-bench operate` child, e.g.
    /// `--operate-arg=--catalogue-cache-mib --operate-arg=4`.
    #[arg(long = "operate-arg", allow_hyphen_values = true)]
    pub operate_args: Vec<String>,
    /// The command line to record in the report.
    #[arg(long, default_value = "")]
    pub command_line: String,
}

/// What a dataset directory records about its data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Marker {
    /// [`DATASET_VERSION`] when seeded.
    pub version: u32,
    /// The server.
    pub server: String,
    /// Base clips.
    pub clips: usize,
    /// Bytes per clip.
    pub clip_bytes: usize,
    /// Base clips in hot and in cool.
    pub hot: usize,
    /// See `hot`.
    pub cool: usize,
    /// When seeding finished.
    pub seeded_at: DateTime<Utc>,
    /// Seconds seeding took.
    pub seed_seconds: f64,
    /// Uploads a second.
    pub seed_rate: f64,
    /// Uploads in flight.
    pub seed_concurrency: usize,
}

impl crate::kept::Seeded for Marker {
    fn seeded(&self) -> (u32, &str, usize, usize) {
        (self.version, &self.server, self.clips, self.clip_bytes)
    }
}

/// One sweep's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepResult {
    /// `cold`, `steady`, `changed`, `today`, `today-extension`.
    pub sweep: String,
    /// Whether it swept through the catalogue.
    pub catalogue: bool,
    /// Whether the listing asked for MinIO's extension.
    pub list_metadata: bool,
    /// The planner's clock.
    pub planner_now: DateTime<Utc>,
    /// The child process, start to exit, seconds.
    pub process_seconds: f64,
    /// The sweep inside it, seconds.
    pub sweep_seconds: f64,
    /// HTTP requests the store sent.
    pub requests: u64,
    /// Requests counted at the server, by API (MinIO only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_requests: Option<BTreeMap<String, u64>>,
    /// `GetObjectTagging` requests.
    pub tag_reads: u64,
    /// Facts read again by the catalogue's periodic refresh (listed or unlisted tiers).
    pub refresh_reads: u64,
    /// The catalogue's lookups by result.
    pub lookups: BTreeMap<String, u64>,
    /// Peak RSS of the child (`VmHWM`), KiB.
    pub peak_rss_kib: u64,
    /// The catalogue directory's size on disk after the sweep, bytes.
    pub catalogue_bytes: u64,
    /// Clips deleted.
    pub deleted: u64,
    /// Clips moved.
    pub moved: u64,
    /// Actions that failed.
    pub failed: u64,
    /// Tiers not listed (their memo held).
    pub unlisted: Vec<String>,
    /// Clips counted per tier.
    pub clips_by_tier: BTreeMap<String, i64>,
    /// Whether the sweep saw and did what was expected (counts, deletions).
    pub correct: bool,
    /// The machine's 1-minute load average when the sweep started (other work on the
    /// machine makes times noisy; counts and memory are not affected).
    #[serde(default)]
    pub load_average: f64,
}

/// The 1-minute load average (`/proc/loadavg`; 0 where missing).
pub(crate) fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// A goal of the issue and how this run measured against it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Goal {
    /// The goal.
    pub goal: String,
    /// The figure measured.
    pub figure: String,
    /// Whether it is met.
    pub met: bool,
    /// Whether the goal is set at this N and server (otherwise the verdict is only
    /// indicative).
    pub applies: bool,
}

/// One server's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerResult {
    /// `minio` or `seaweedfs`.
    pub server: String,
    /// Base clips.
    pub clips: usize,
    /// The dataset (when and how fast it was seeded).
    pub dataset: Marker,
    /// Whether this run reused a dataset seeded earlier.
    pub reused: bool,
    /// Seconds to start the server (over the kept data).
    pub start_seconds: f64,
    /// Clips left by an earlier, broken run and deleted first.
    pub leftovers_deleted: usize,
    /// Clips uploaded to fall due between P1 and P2, in hot and in cool.
    pub due_hot: usize,
    /// See `due_hot`.
    pub due_cool: usize,
    /// New clips uploaded before `changed` (hot).
    pub new_clips: usize,
    /// The sweeps.
    pub sweeps: Vec<SweepResult>,
    /// The issue's goals.
    pub goals: Vec<Goal>,
    /// `today` ÷ `steady`: requests and process seconds.
    pub today_over_steady: BTreeMap<String, f64>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SteadyReport {
    /// The command that produced it.
    pub command: String,
    /// The machine.
    pub machine: Machine,
    /// Server versions.
    pub versions: BTreeMap<String, String>,
    /// Base clips.
    pub clips: usize,
    /// Bytes per clip.
    pub clip_bytes: usize,
    /// Whether the listing extension was asked for.
    pub list_metadata: bool,
    /// Per server.
    pub servers: Vec<ServerResult>,
}

/// A running server of either kind.
pub(crate) enum Server {
    Minio(Minio),
    Seaweedfs(Seaweedfs),
}

impl Server {
    /// Start a server of `kind` (`minio`, else SeaweedFS) over the data kept in `dir`
    /// (its `minio/` or `seaweedfs/`), with the root secret the data was written with.
    pub(crate) async fn start_keeping(
        kind: &str,
        binary: &Path,
        dir: &Path,
        secret: &str,
    ) -> Result<Server> {
        Ok(match kind {
            "minio" => {
                Server::Minio(Minio::start_keeping(binary, &dir.join("minio"), secret).await?)
            }
            _ => Server::Seaweedfs(
                Seaweedfs::start_keeping(binary, &dir.join("seaweedfs"), secret).await?,
            ),
        })
    }

    pub(crate) fn endpoint(&self) -> &str {
        match self {
            Server::Minio(m) => &m.endpoint,
            Server::Seaweedfs(s) => &s.endpoint,
        }
    }

    pub(crate) fn credentials(&self) -> (&str, &str) {
        match self {
            Server::Minio(m) => (&m.access_key, &m.secret_key),
            Server::Seaweedfs(s) => (&s.access_key, &s.secret_key),
        }
    }

    pub(crate) fn client(&self) -> Client {
        match self {
            Server::Minio(m) => m.client(),
            Server::Seaweedfs(s) => s.client(),
        }
    }

    /// Requests served so far by API, where the server counts them (MinIO).
    pub(crate) async fn requests(&self) -> Result<Option<BTreeMap<String, u64>>> {
        match self {
            Server::Minio(m) => Ok(Some(m.requests().await?)),
            Server::Seaweedfs(_) => Ok(None),
        }
    }

    /// The `--endpoint-region` a store over it needs (SeaweedFS reports no region).
    pub(crate) fn endpoint_region(&self) -> Option<String> {
        match self {
            Server::Minio(_) => None,
            Server::Seaweedfs(s) => Some(s.declaration()),
        }
    }

    pub(crate) async fn stop(self) -> Result<()> {
        match self {
            Server::Minio(m) => m.stop_keeping().await,
            Server::Seaweedfs(s) => s.stop_keeping().await,
        }
    }
}

/// What the run needs from the driver.
pub struct Paths {
    /// The repository.
    pub root: PathBuf,
    /// This binary (for `operate`).
    pub driver: PathBuf,
}

pub(crate) fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// Run the job and write the report.
pub async fn run(args: SteadyArgs, ctx: Paths) -> Result<()> {
    if args.clips < 10 {
        bail!("need at least 10 clips");
    }
    let out = absolute(&args.out)?;
    let data = absolute(&args.data)?;
    std::fs::create_dir_all(&out)?;
    crate::kept::each_server(
        &args.servers,
        &ctx.root,
        &out,
        args.clips,
        async |kind, binary| bench_server(kind, binary, &args, &data, &ctx).await,
        |versions, servers| write_report(&args, &out, versions, servers),
    )
    .await
}

/// Write the report of the servers measured so far: the latest run, and a copy per N
/// (runs at another N do not overwrite it). Its Markdown.
fn write_report(
    args: &SteadyArgs,
    out: &Path,
    versions: &BTreeMap<String, String>,
    servers: &[ServerResult],
) -> Result<String> {
    let report = SteadyReport {
        command: crate::report::command_line(&args.command_line),
        machine: Machine::here(),
        versions: versions.clone(),
        clips: args.clips,
        clip_bytes: args.clip_bytes,
        list_metadata: args.list_metadata,
        servers: servers.to_vec(),
    };
    let md = report.markdown();
    crate::kept::write_results(out, args.clips, &report, &md)?;
    Ok(md)
}

/// The dataset of `kind` at N (seeded when its marker does not match), this run's
/// sweeps, and the goals.
async fn bench_server(
    kind: &str,
    binary: &Path,
    args: &SteadyArgs,
    data: &Path,
    ctx: &Paths,
) -> Result<ServerResult> {
    let n = args.clips;
    let kept = crate::kept::open(data, (DATASET_VERSION, kind, n, args.clip_bytes), "steady")?;
    let dir = kept.dir.clone();
    let s = kept
        .start(kind, binary, "steady", async |server| {
            seed_base(server, kind, args).await
        })
        .await?;
    let result = sweeps(
        &s.server,
        kind,
        args,
        &dir,
        ctx,
        s.marker,
        s.reused,
        s.start_seconds,
    )
    .await;
    s.server.stop().await?;
    result
}

/// One base clip: its tier, key, category and recording time (deterministic in `i`).
fn base_clip(i: usize, seeded_at: DateTime<Utc>) -> Upload {
    let mut rng = SplitMix::new(0x57EA_D000_0000_0000 ^ i as u64);
    let category = KEPT[i % KEPT.len()];
    let age = i64::try_from(rng.range(2 * 86_400, 5 * 365 * 86_400)).unwrap_or(86_400);
    let recorded = seeded_at - TimeDelta::seconds(age);
    let camera = rng.range(0, 2000);
    Upload {
        bucket: if i % 10 == 9 { COOL } else { HOT },
        key: format!(
            "base/{category}/{}/cam-{camera:04}/clip-{i:07}.mp4",
            recorded.format("%Y/%m/%d")
        ),
        category,
        recorded,
    }
}

/// One object to upload.
struct Upload {
    bucket: &'static str,
    key: String,
    category: &'static str,
    recorded: DateTime<Utc>,
}

/// Upload `items`, `concurrency` at a time, `size` bytes each, tagged with category and
/// recording time; progress on stderr every tenth of `total`.
async fn upload(
    client: &Client,
    items: impl Iterator<Item = Upload>,
    total: usize,
    size: usize,
    concurrency: usize,
    what: &str,
) -> Result<()> {
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    // Progress every tenth, for the long uploads only.
    let step = if total >= 10_000 {
        total / 10
    } else {
        usize::MAX
    };
    stream::iter(items)
        .map(|u| {
            let done = &done;
            async move {
                let mut body = Vec::with_capacity(size);
                body.extend_from_slice(u.key.as_bytes());
                let mut rng = SplitMix::new(body.len() as u64);
                while body.len() < size {
                    body.extend_from_slice(&rng.next_u64().to_le_bytes());
                }
                body.truncate(size);
                client
                    .put_object()
                    .bucket(u.bucket)
                    .key(&u.key)
                    .body(ByteStream::from(body))
                    .tagging(tagging_query([
                        (TAG_CATEGORY, u.category.to_string()),
                        (TAG_RECORDED_AT, u.recorded.to_rfc3339()),
                    ]))
                    .send()
                    .await
                    .with_context(|| format!("uploading {}/{}", u.bucket, u.key))?;
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if d.is_multiple_of(step) {
                    let secs = started.elapsed().as_secs_f64();
                    eprintln!(
                        "[steady] {what}: {d}/{total} in {secs:.0} s ({:.0}/s)",
                        d as f64 / secs.max(1e-9)
                    );
                }
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await
}

/// Create the buckets and seed the base clips.
async fn seed_base(server: &Server, kind: &str, args: &SteadyArgs) -> Result<Marker> {
    let client = server.client();
    minio::create_bucket(&client, HOT, false).await?;
    minio::create_bucket(&client, COOL, false).await?;
    minio::create_bucket(&client, LOCK, true).await?;
    let n = args.clips;
    let now = Utc::now().duration_trunc(TimeDelta::seconds(1))?;
    eprintln!(
        "[steady] {kind}: seeding {n} clips of {} B, {} in flight",
        args.clip_bytes, args.seed_concurrency
    );
    let started = Instant::now();
    upload(
        &client,
        (0..n).map(|i| base_clip(i, now)),
        n,
        args.clip_bytes,
        args.seed_concurrency,
        &format!("{kind} seed"),
    )
    .await?;
    let seed_seconds = started.elapsed().as_secs_f64();
    let cool = (0..n).filter(|i| i % 10 == 9).count();
    Ok(Marker {
        version: DATASET_VERSION,
        server: kind.to_string(),
        clips: n,
        clip_bytes: args.clip_bytes,
        hot: n - cool,
        cool,
        seeded_at: Utc::now(),
        seed_seconds,
        seed_rate: n as f64 / seed_seconds.max(1e-9),
        seed_concurrency: args.seed_concurrency,
    })
}

/// Keys under `prefix` in `bucket`.
pub(crate) async fn keys(client: &Client, bucket: &str, prefix: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.try_next().await? {
        out.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key())
                .map(String::from),
        );
    }
    Ok(out)
}

/// Delete every object under `prefix` in `bucket` (unversioned); how many.
pub(crate) async fn delete_prefix(client: &Client, bucket: &str, prefix: &str) -> Result<usize> {
    let all = keys(client, bucket, prefix).await?;
    for batch in all.chunks(1000) {
        let objects = batch
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<Result<Vec<_>, _>>()?;
        client
            .delete_objects()
            .bucket(bucket)
            .delete(
                Delete::builder()
                    .set_objects(Some(objects))
                    .quiet(true)
                    .build()?,
            )
            .send()
            .await?;
    }
    Ok(all.len())
}

/// Bytes of the files under `dir`.
pub(crate) fn du(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => du(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// One sweep to run.
struct Sweep<'a> {
    name: &'a str,
    planner_now: DateTime<Utc>,
    catalogue: Option<&'a Path>,
    list_metadata: bool,
}

/// Run one sweep in an `operate` child and gather its figures.
async fn run_sweep(
    server: &Server,
    ctx: &Paths,
    args: &SteadyArgs,
    policy: &Path,
    s: &Sweep<'_>,
) -> Result<SweepResult> {
    let mut argv: Vec<String> = [
        "operate",
        "--endpoint",
        server.endpoint(),
        "--hot",
        HOT,
        "--cool",
        COOL,
        "--legal-hold",
        LOCK,
        "--concurrency",
        "16",
        "--policy",
        &policy.to_string_lossy(),
        "--planner-now",
        &s.planner_now.to_rfc3339(),
        "--inputs",
        INPUTS,
        "--list-metadata",
        if s.list_metadata { "true" } else { "false" },
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    if let Some(d) = s.catalogue {
        argv.extend(["--catalogue-dir".into(), d.to_string_lossy().into_owned()]);
    }
    if let Some(r) = server.endpoint_region() {
        argv.extend(["--endpoint-region".into(), r]);
    }
    argv.extend(args.operate_args.iter().cloned());
    let (access, secret) = server.credentials();
    let before = server.requests().await?;
    let load = load_average();
    let started = Instant::now();
    let out = Command::new(&ctx.driver)
        .args(&argv)
        .env("AWS_ACCESS_KEY_ID", access)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", minio::REGION)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .context("running evidence-bench operate")?;
    let process_seconds = started.elapsed().as_secs_f64();
    let after = server.requests().await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "the {} sweep failed ({}): {}",
            s.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .chars()
                .take(2000)
                .collect::<String>()
        );
    }
    let r: OperateReport = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .with_context(|| format!("no report from the operate child: {stdout}"))?;
    let server_requests = match (before, after) {
        (Some(b), Some(a)) => Some(minio::diff(&b, &a)),
        _ => None,
    };
    let result = SweepResult {
        sweep: s.name.to_string(),
        catalogue: s.catalogue.is_some(),
        list_metadata: s.list_metadata,
        planner_now: s.planner_now,
        process_seconds,
        sweep_seconds: r.sweep_seconds,
        requests: r.store_http_requests,
        server_requests,
        tag_reads: r.tag_reads,
        refresh_reads: r.catalogue_lookups.get("refresh").copied().unwrap_or(0),
        lookups: r.catalogue_lookups.clone(),
        peak_rss_kib: r.peak_rss_kib,
        catalogue_bytes: s.catalogue.map_or(0, du),
        deleted: r.deleted,
        moved: r.moved,
        failed: r.failed,
        unlisted: r.unlisted.clone(),
        clips_by_tier: r.clips_by_tier.clone(),
        correct: r.failed == 0 && r.moved == 0,
        load_average: load,
    };
    eprintln!(
        "[steady] {}: {:.1} s, {} requests, {} tag reads ({} refresh), {} deleted, peak RSS {:.1} MiB, unlisted {:?}",
        s.name,
        result.process_seconds,
        result.requests,
        result.tag_reads,
        result.refresh_reads,
        result.deleted,
        result.peak_rss_kib as f64 / 1024.0,
        result.unlisted
    );
    Ok(result)
}

/// Whether a sweep counted the expected clips per tier; a warning when not.
fn counted(r: &SweepResult, hot: usize, cool: usize) -> bool {
    let got = |t: &str| r.clips_by_tier.get(t).copied().unwrap_or(0);
    let ok = got("hot") == hot as i64 && got("cool") == cool as i64;
    if !ok {
        eprintln!(
            "[steady] WARNING {}: counted {:?}, expected hot {hot}, cool {cool}",
            r.sweep, r.clips_by_tier
        );
    }
    ok
}

/// This run: due clips, the sweeps, the new clips, the goals.
#[allow(clippy::too_many_arguments)]
async fn sweeps(
    server: &Server,
    kind: &str,
    args: &SteadyArgs,
    dir: &Path,
    ctx: &Paths,
    dataset: Marker,
    reused: bool,
    start_seconds: f64,
) -> Result<ServerResult> {
    let client = server.client();
    let n = args.clips;
    let policy = ctx.root.join("tests/bench/steady-policy.yaml");
    // What a broken run left behind.
    let mut leftovers = 0;
    for bucket in [HOT, COOL] {
        leftovers += delete_prefix(&client, bucket, "run-").await?;
    }
    if leftovers > 0 {
        eprintln!("[steady] {kind}: deleted {leftovers} clips left by an earlier run");
    }
    let catalogue = dir.join("catalogue");
    if catalogue.exists() {
        std::fs::remove_dir_all(&catalogue)?;
    }

    let start = Utc::now().duration_trunc(TimeDelta::seconds(1))?;
    let run = format!("run-{}", start.format("%Y%m%dT%H%M%SZ"));
    let p1 = start + TimeDelta::days(2) + TimeDelta::hours(1);
    let p2 = p1 + TimeDelta::days(1);
    // 0.5% due between P1 and P2 (non-evidential, 31 days), a tenth of them in cool.
    let due = (n / 200).max(2);
    let due_cool = (due / 10).max(1);
    let due_hot = due - due_cool;
    let window = (p2 - p1 - TimeDelta::hours(2)).num_seconds();
    let due_clips = (0..due).map(|j| {
        let due_at = p1 + TimeDelta::hours(1) + TimeDelta::seconds(window * j as i64 / due as i64);
        Upload {
            bucket: if j < due_cool { COOL } else { HOT },
            key: format!("{run}/due/non-evidential/clip-{j:07}.mp4"),
            category: "non-evidential",
            recorded: due_at - TimeDelta::days(31),
        }
    });
    upload(
        &client,
        due_clips,
        due,
        args.clip_bytes,
        args.seed_concurrency,
        "due clips",
    )
    .await?;
    let (hot, cool) = (dataset.hot + due_hot, dataset.cool + due_cool);
    let lm = args.list_metadata;
    let cat = Some(catalogue.as_path());
    let mut results = Vec::new();

    let mut cold = run_sweep(
        server,
        ctx,
        args,
        &policy,
        &Sweep {
            name: "cold",
            planner_now: p1,
            catalogue: cat,
            list_metadata: lm,
        },
    )
    .await?;
    cold.correct &= counted(&cold, hot, cool) && cold.deleted == 0;
    results.push(cold);

    let mut steady = run_sweep(
        server,
        ctx,
        args,
        &policy,
        &Sweep {
            name: "steady",
            planner_now: p1,
            catalogue: cat,
            list_metadata: lm,
        },
    )
    .await?;
    steady.correct &= counted(&steady, hot, cool) && steady.deleted == 0;
    results.push(steady);

    // 1% new clips (hot, a kept category) since the steady sweep.
    let new = (n / 100).max(1);
    let new_clips = (0..new).map(|j| {
        let mut u = base_clip(j, start);
        u.bucket = HOT;
        u.key = format!("{run}/new/{}/clip-{j:07}.mp4", u.category);
        u
    });
    upload(
        &client,
        new_clips,
        new,
        args.clip_bytes,
        args.seed_concurrency,
        "new clips",
    )
    .await?;
    let mut changed = run_sweep(
        server,
        ctx,
        args,
        &policy,
        &Sweep {
            name: "changed",
            planner_now: p2,
            catalogue: cat,
            list_metadata: lm,
        },
    )
    .await?;
    let due_left = keys(&client, HOT, &format!("{run}/due/")).await?.len()
        + keys(&client, COOL, &format!("{run}/due/")).await?.len();
    let new_left = keys(&client, HOT, &format!("{run}/new/")).await?.len();
    changed.correct &= changed.deleted == due as u64 && due_left == 0 && new_left == new;
    if !changed.correct {
        eprintln!(
            "[steady] WARNING changed: deleted {} (expected {due}), {due_left} due clips left, {new_left} of {new} new clips left",
            changed.deleted
        );
    }
    results.push(changed);
    // The base set only, for the next run.
    delete_prefix(&client, HOT, &format!("{run}/")).await?;

    let mut today = run_sweep(
        server,
        ctx,
        args,
        &policy,
        &Sweep {
            name: "today",
            planner_now: p1,
            catalogue: None,
            list_metadata: lm,
        },
    )
    .await?;
    today.correct &= counted(&today, dataset.hot, dataset.cool) && today.deleted == 0;
    results.push(today);
    if kind == "minio" && !lm {
        let mut ext = run_sweep(
            server,
            ctx,
            args,
            &policy,
            &Sweep {
                name: "today-extension",
                planner_now: p1,
                catalogue: None,
                list_metadata: true,
            },
        )
        .await?;
        ext.correct &= counted(&ext, dataset.hot, dataset.cool) && ext.deleted == 0;
        results.push(ext);
    }

    let mut result = ServerResult {
        server: kind.to_string(),
        clips: n,
        dataset,
        reused,
        start_seconds,
        leftovers_deleted: leftovers,
        due_hot,
        due_cool,
        new_clips: new,
        sweeps: results,
        goals: Vec::new(),
        today_over_steady: BTreeMap::new(),
    };
    result.evaluate();
    Ok(result)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl ServerResult {
    fn sweep(&self, name: &str) -> Option<&SweepResult> {
        self.sweeps.iter().find(|s| s.sweep == name)
    }

    /// The goals of issue 18 and the ratios.
    fn evaluate(&mut self) {
        let mut goals = Vec::new();
        let at_goal_n = self.clips >= GOAL_CLIPS;
        if let Some(s) = self.sweep("steady") {
            let clips: i64 = s.clips_by_tier.values().sum();
            let bound = clips.max(0) as u64 / 1000 + 20;
            let beyond = s.requests.saturating_sub(s.refresh_reads);
            goals.push(Goal {
                goal: format!(
                    "steady sweep ≤ N/1,000 + 20 requests (N = {clips}: ≤ {bound}), the spread refresh apart"
                ),
                figure: format!(
                    "{beyond} (+ {} refresh reads; {} in all)",
                    s.refresh_reads, s.requests
                ),
                met: beyond <= bound,
                applies: true,
            });
            let extra = s.tag_reads.saturating_sub(s.refresh_reads);
            goals.push(Goal {
                goal: "steady sweep: no tag read beyond the spread refresh".into(),
                figure: format!("{extra} beyond {} refresh reads", s.refresh_reads),
                met: extra == 0,
                applies: true,
            });
            if self.server == "minio" {
                goals.push(Goal {
                    goal: format!("{GOAL_CLIPS}-clip steady sweep on MinIO < 60 s"),
                    figure: format!(
                        "{:.1} s at {} clips (process; sweep {:.1} s)",
                        s.process_seconds, self.clips, s.sweep_seconds
                    ),
                    met: s.process_seconds
                        < 60.0 * (self.clips as f64 / GOAL_CLIPS as f64).max(1.0),
                    applies: at_goal_n,
                });
            }
        }
        if let Some(c) = self.sweep("changed") {
            let allowed = self.new_clips as u64 + c.deleted;
            let reads = c.tag_reads.saturating_sub(c.refresh_reads);
            goals.push(Goal {
                goal: format!(
                    "changed sweep: tag reads ≤ one per new clip + one per clip acted on (≤ {} + {})",
                    self.new_clips, c.deleted
                ),
                figure: format!("{reads} (+ {} refresh reads)", c.refresh_reads),
                met: reads <= allowed,
                applies: true,
            });
            goals.push(Goal {
                goal: format!(
                    "changed sweep deletes exactly the {} clips due",
                    self.due_hot + self.due_cool
                ),
                figure: format!("{} deleted", c.deleted),
                met: c.correct,
                applies: true,
            });
        }
        let catalogued: Vec<&SweepResult> = self.sweeps.iter().filter(|s| s.catalogue).collect();
        if let Some(worst) = catalogued.iter().max_by_key(|s| s.peak_rss_kib) {
            goals.push(Goal {
                goal: format!(
                    "peak RSS ≤ {RSS_GOAL_MIB:.0} MiB at {GOAL_CLIPS} clips (catalogued sweeps)"
                ),
                figure: format!(
                    "{:.1} MiB ({}) at {} clips",
                    mib(worst.peak_rss_kib),
                    worst.sweep,
                    self.clips
                ),
                met: mib(worst.peak_rss_kib) <= RSS_GOAL_MIB,
                applies: at_goal_n,
            });
        }
        goals.push(Goal {
            goal: "every sweep counted and did what was expected".into(),
            figure: self
                .sweeps
                .iter()
                .filter(|s| !s.correct)
                .map(|s| s.sweep.clone())
                .collect::<Vec<_>>()
                .join(", "),
            met: self.sweeps.iter().all(|s| s.correct),
            applies: true,
        });
        if let Some(g) = goals.last_mut()
            && g.figure.is_empty()
        {
            g.figure = "all".into();
        }
        self.goals = goals;
        if let (Some(t), Some(s)) = (self.sweep("today"), self.sweep("steady")) {
            let mut r = BTreeMap::new();
            r.insert(
                "requests".to_string(),
                t.requests as f64 / s.requests.max(1) as f64,
            );
            r.insert(
                "process_seconds".to_string(),
                t.process_seconds / s.process_seconds.max(1e-9),
            );
            r.insert(
                "sweep_seconds".to_string(),
                t.sweep_seconds / s.sweep_seconds.max(1e-9),
            );
            if let Some(e) = self.sweep("today-extension") {
                r.insert(
                    "extension_requests".to_string(),
                    e.requests as f64 / s.requests.max(1) as f64,
                );
                r.insert(
                    "extension_process_seconds".to_string(),
                    e.process_seconds / s.process_seconds.max(1e-9),
                );
            }
            self.today_over_steady = r;
        }
    }
}

fn verdict(g: &Goal) -> &'static str {
    match (g.met, g.applies) {
        (true, true) => "met",
        (false, true) => "**not met**",
        (true, false) => "met here (goal set at 1,000,000)",
        (false, false) => "not met here (goal set at 1,000,000)",
    }
}

impl SteadyReport {
    /// The Markdown summary.
    pub fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "Command: `{}`  ", self.command);
        let _ = writeln!(
            s,
            "Machine: {} CPUs, {}; {}; {} base clips of {} B (~90% hot, ~10% cool); listing extension {}.\n",
            self.machine.cpus,
            self.machine.os,
            self.versions
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.clips,
            self.clip_bytes,
            if self.list_metadata {
                "on (MinIO's metadata=true)"
            } else {
                "off (tags read per clip, as on AWS S3)"
            }
        );
        for r in &self.servers {
            let _ = writeln!(
                s,
                "### {} — {} clips\n\nDataset: {} (seeded {} at {:.0} clips/s, {} in flight, {:.0} s); server start {:.1} s; this run: {} due clips ({} hot, {} cool), {} new clips{}.\n",
                r.server,
                r.clips,
                if r.reused {
                    "reused"
                } else {
                    "seeded by this run"
                },
                r.dataset.seeded_at.format("%Y-%m-%d %H:%M UTC"),
                r.dataset.seed_rate,
                r.dataset.seed_concurrency,
                r.dataset.seed_seconds,
                r.start_seconds,
                r.due_hot + r.due_cool,
                r.due_hot,
                r.due_cool,
                r.new_clips,
                if r.leftovers_deleted > 0 {
                    format!(
                        "; {} clips of a broken run deleted first",
                        r.leftovers_deleted
                    )
                } else {
                    String::new()
                }
            );
            let _ = writeln!(
                s,
                "| sweep | catalogue | process s | sweep s | requests | at the server | tag reads | of which refresh | peak RSS MiB | catalogue MiB | deleted | unlisted | correct | load |"
            );
            let _ = writeln!(
                s,
                "|---|:---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|:---:|---:|"
            );
            for w in &r.sweeps {
                let _ = writeln!(
                    s,
                    "| {}{} | {} | {:.2} | {:.2} | {} | {} | {} | {} | {:.1} | {:.1} | {} | {} | {} | {:.1} |",
                    w.sweep,
                    if w.list_metadata {
                        " (metadata=true)"
                    } else {
                        ""
                    },
                    if w.catalogue { "yes" } else { "no" },
                    w.process_seconds,
                    w.sweep_seconds,
                    w.requests,
                    w.server_requests
                        .as_ref()
                        .map_or("—".to_string(), |m| m.values().sum::<u64>().to_string()),
                    w.tag_reads,
                    w.refresh_reads,
                    mib(w.peak_rss_kib),
                    w.catalogue_bytes as f64 / (1024.0 * 1024.0),
                    w.deleted,
                    if w.unlisted.is_empty() {
                        "—".to_string()
                    } else {
                        w.unlisted.join(", ")
                    },
                    if w.correct { "yes" } else { "**no**" },
                    w.load_average
                );
            }
            let ratios = &r.today_over_steady;
            let get = |k: &str| ratios.get(k).copied().unwrap_or(0.0);
            let _ = writeln!(
                s,
                "\ntoday ÷ steady: requests {:.0}×, process time {:.1}×, sweep time {:.1}×{}.\n",
                get("requests"),
                get("process_seconds"),
                get("sweep_seconds"),
                if ratios.contains_key("extension_requests") {
                    format!(
                        "; today with MinIO's listing extension ÷ steady: requests {:.1}×, process time {:.1}×",
                        get("extension_requests"),
                        get("extension_process_seconds")
                    )
                } else {
                    String::new()
                }
            );
            let _ = writeln!(s, "| goal (issue 18) | figure | |\n|---|---|---|");
            for g in &r.goals {
                let _ = writeln!(s, "| {} | {} | {} |", g.goal, g.figure, verdict(g));
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(
            s,
            "\"requests\": HTTP requests the operator's store sent (its SDK interceptor's count); \"at the server\": MinIO's own count (`minio_api_requests_total`), which also includes the audit log's requests. \
\"of which refresh\": facts read again by the catalogue's spread refresh (each clip once per 24 h at a phase of its own, so a sweep re-reads the share of clips whose phase passed since the last one, by design). \
Each sweep is an `evidence-bench operate` child: \"process s\" is its wall time from start to exit, \"peak RSS\" its VmHWM; \"load\" is the machine's 1-minute load average as it started (times are noisy when it is above the cores)."
        );
        s
    }
}
