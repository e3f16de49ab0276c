//! `evidence-bench request` (issue 21): the time to answer an AccessRequest over N clips,
//! with and without the clip catalogue, on MinIO and on SeaweedFS.
//!
//! ```text
//! make bench BENCH_JOB=request                       # N = 100,000
//! cargo run --release -p evidence-operator-tests --bin evidence-bench -- request --help
//! ```
//!
//! **An answer** is what the operator does for a request after a sweep
//! (`controller::bucket::export::answer_all`, the Kubernetes side left out): the search
//! of every tier ([`disclosure::search`]), the SHA-256 of each clip found that the
//! listing did not carry ([`disclosure::manifest_clips`]), the manifest built and written
//! to a new place in the export bucket ([`disclosure::write_manifest`], after the export
//! store's region proof, as for every request answered). Each request is answered alone.
//!
//! **The dataset** is seeded once per server and N into `<data>/<server>-<N>/` (the
//! server's data, its credentials, `marker.json`) with the bench's own seeding
//! ([`data::seed`]) and reused by later runs whose marker matches: ~78% of the clips in
//! hot, ~20% in cool, 2% in legal-hold (held), 256-byte bodies with a recorded SHA-256
//! (`evidence-sha256`, as the dock ingest records it), tagged with a category, recording
//! time (the 300 days before seeding), camera and officer (one officer per camera, 200
//! cameras at 100,000 clips: N/500, at least 1). Nothing ever falls due: no sweep runs.
//!
//! **The requests**, fixed by the dataset (the expected clips are computed from the
//! generator, and every answer is checked against them):
//!
//! | request | selector | clips at N = 100,000 |
//! |---|---|---|
//! | `sar-officer` | one officer, recorded in the last 180 days | ~300 |
//! | `disclosure-month` | recorded in a 30-day window | ~10,000 (10%) |
//!
//! **The answers**, each run of each request:
//!
//! | answer | store |
//! |---|---|
//! | `plain` | `S3TierStore`, tags read per clip (as on AWS S3 and SeaweedFS): the operator with `--catalogue` off |
//! | `plain-extension` | MinIO only: `S3TierStore` with MinIO's listing extension (the operator's default there) |
//! | `catalogue` | `CataloguedStore` over the `plain` store, its catalogue filled once before the runs (the fill is reported apart) |
//!
//! The catalogue is emptied at the start of each run of the job, so the fill is always
//! measured. Answers are interleaved (the order rotates each run) and the median of the
//! runs is reported. Requests are counted by the store (its SDK interceptor) and, on
//! MinIO, at the server by API. Results: `<out>/results.{json,md}` (the latest run) and
//! `<out>/results-<N>.{json,md}`.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use anyhow::{Context, Result, bail};
use aws_sdk_s3::types::{ObjectLockLegalHold, ObjectLockLegalHoldStatus};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use evidence_operator::{
    api::{
        AccessRequest,
        access_request::{AccessSelector, ExportLocation},
        clip::Tier,
    },
    catalogue::{Catalogue, CatalogueMetrics, CatalogueOptions, CataloguedStore},
    disclosure::{self, Manifest},
    engine::Preserve,
    storage::{
        BucketConfig, S3TierStore, StaticCredentials, StorageMetrics, StoreOptions, TierLocation,
        TierStore, Tiers,
        region::{EndpointRegion, EndpointRegions},
    },
};
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};

use crate::{
    data::{self, SeedClip, SplitMix},
    minio,
    report::{Machine, median},
    steady::{KEPT, Paths, Server, absolute, delete_prefix, du, load_average},
};

/// Bump when the layout of the dataset changes: older datasets are seeded again.
const DATASET_VERSION: u32 = 1;

/// The buckets of the dataset, and the export bucket the manifests go to.
const HOT: &str = "request-hot";
const COOL: &str = "request-cool";
const LOCK: &str = "request-lock";
const EXPORT: &str = "request-export";

/// The EvidenceBucket the answers name (`namespace/name`).
const BUCKET: &str = "bench/request";

/// Recording times lie in the this many days before seeding.
const SPAN_DAYS: u64 = 300;

/// Where an audit chain would be in the legal-hold tier (skipped by the search, as the
/// operator skips its own).
const AUDIT_PREFIX: &str = "audit/";

/// Arguments of `evidence-bench request`.
#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    /// Clips in the dataset (~78% hot, ~20% cool, 2% legal-hold).
    #[arg(long, default_value_t = 100_000)]
    pub clips: usize,
    /// Servers, comma-separated: minio, seaweedfs.
    #[arg(long, value_delimiter = ',', default_value = "minio,seaweedfs")]
    pub servers: Vec<String>,
    /// Runs of each answer (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Where the datasets are kept between runs (one directory per server and N).
    #[arg(long, default_value = "target/bench/request-data")]
    pub data: PathBuf,
    /// Where the results go.
    #[arg(long, default_value = "target/bench/request")]
    pub out: PathBuf,
    /// Bytes per clip.
    #[arg(long, default_value_t = 256)]
    pub clip_bytes: usize,
    /// Uploads in flight while seeding.
    #[arg(long, default_value_t = 128)]
    pub seed_concurrency: usize,
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
    /// Clips.
    pub clips: usize,
    /// Bytes per clip.
    pub clip_bytes: usize,
    /// Clips in each tier.
    pub hot: usize,
    /// See `hot`.
    pub cool: usize,
    /// See `hot` (each with its legal hold on).
    pub legal_hold: usize,
    /// Cameras (one officer each).
    pub cameras: u32,
    /// Recording times lie in the [`SPAN_DAYS`] before it; the requests' windows count
    /// back from it.
    pub reference: DateTime<Utc>,
    /// When seeding finished.
    pub seeded_at: DateTime<Utc>,
    /// Seconds seeding took (uploads and legal holds).
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

/// One answer of one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnswerRun {
    /// The whole answer, seconds.
    pub seconds: f64,
    /// The search of every tier.
    pub search_seconds: f64,
    /// The SHA-256 of the clips found that the listing did not carry.
    pub sha_seconds: f64,
    /// The manifest built, the export store made and region-proved, the manifest written.
    pub write_seconds: f64,
    /// Clips found.
    pub found: usize,
    /// The manifest's size, bytes.
    pub manifest_bytes: u64,
    /// The requests it cost (the stores': evidence and export; the HEADs read the hold
    /// and recorded SHA-256 in the legal-hold tier's listing, and the SHA-256 of clips
    /// found).
    #[serde(flatten)]
    pub spent: Spent,
    /// Facts read again by the catalogue's spread refresh.
    pub refresh_reads: u64,
    /// Whether it found exactly the expected clips and wrote their manifest.
    pub correct: bool,
    /// The machine's 1-minute load average as it started.
    pub load_average: f64,
}

/// Every run of one answer of one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnswerResult {
    /// `plain`, `plain-extension`, `catalogue`.
    pub answer: String,
    /// Whether it searched through the catalogue.
    pub catalogue: bool,
    /// Whether the listing asked for MinIO's extension.
    pub list_metadata: bool,
    /// Median seconds of the runs.
    pub median_seconds: f64,
    /// Median requests of the runs.
    pub median_requests: f64,
    /// Whether every run was correct.
    pub correct: bool,
    /// The runs.
    pub runs: Vec<AnswerRun>,
}

/// One request's answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseResult {
    /// The request's name.
    pub request: String,
    /// What it selects.
    pub selects: String,
    /// The clips it covers (from the generator).
    pub expected: usize,
    /// Each answer.
    pub answers: Vec<AnswerResult>,
    /// Each answer without the catalogue ÷ the catalogued one: `seconds`, `requests`.
    pub over_catalogue: BTreeMap<String, BTreeMap<String, f64>>,
}

/// What one step (an answer, the catalogue's fill) cost in requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spent {
    /// HTTP requests the stores sent.
    pub requests: u64,
    /// Requests counted at the server, by API (MinIO only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_requests: Option<BTreeMap<String, u64>>,
    /// `GetObjectTagging` requests.
    pub tag_reads: u64,
    /// `HeadObject` requests.
    pub head_reads: u64,
}

/// The catalogue's one-off fill: a listing of every tier through it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fill {
    /// Seconds.
    pub seconds: f64,
    /// Clips listed.
    pub clips: usize,
    /// The requests it cost.
    #[serde(flatten)]
    pub spent: Spent,
    /// The catalogue's size on disk after it, bytes.
    pub catalogue_bytes: u64,
    /// The 1-minute load average as it started.
    pub load_average: f64,
}

/// One server's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerResult {
    /// `minio` or `seaweedfs`.
    pub server: String,
    /// Clips.
    pub clips: usize,
    /// The dataset.
    pub dataset: Marker,
    /// Whether this run reused a dataset seeded earlier.
    pub reused: bool,
    /// Seconds to start the server.
    pub start_seconds: f64,
    /// The catalogue's fill.
    pub fill: Fill,
    /// The requests.
    pub cases: Vec<CaseResult>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestReport {
    /// The command that produced it.
    pub command: String,
    /// The machine.
    pub machine: Machine,
    /// Server versions.
    pub versions: BTreeMap<String, String>,
    /// Clips.
    pub clips: usize,
    /// Bytes per clip.
    pub clip_bytes: usize,
    /// Runs of each answer.
    pub runs: usize,
    /// Per server.
    pub servers: Vec<ServerResult>,
}

/// Run the job and write the report.
pub async fn run(args: RequestArgs, ctx: Paths) -> Result<()> {
    if args.clips < 10 || args.runs == 0 {
        bail!("need at least 10 clips and 1 run");
    }
    let out = absolute(&args.out)?;
    let data = absolute(&args.data)?;
    std::fs::create_dir_all(&out)?;
    crate::kept::each_server(
        &args.servers,
        &ctx.root,
        &out,
        args.clips,
        async |kind, binary| bench_server(kind, binary, &args, &data).await,
        |versions, servers| write_report(&args, &out, versions, servers),
    )
    .await
}

/// Write the report of the servers measured so far (the latest run, and a copy per N);
/// its Markdown.
fn write_report(
    args: &RequestArgs,
    out: &Path,
    versions: &BTreeMap<String, String>,
    servers: &[ServerResult],
) -> Result<String> {
    let report = RequestReport {
        command: crate::report::command_line(&args.command_line),
        machine: Machine::here(),
        versions: versions.clone(),
        clips: args.clips,
        clip_bytes: args.clip_bytes,
        runs: args.runs,
        servers: servers.to_vec(),
    };
    let md = report.markdown();
    crate::kept::write_results(out, args.clips, &report, &md)?;
    Ok(md)
}

/// The dataset of `kind` at N (seeded when its marker does not match), then this run.
async fn bench_server(
    kind: &str,
    binary: &Path,
    args: &RequestArgs,
    data: &Path,
) -> Result<ServerResult> {
    let n = args.clips;
    let kept = crate::kept::open(data, (DATASET_VERSION, kind, n, args.clip_bytes), "request")?;
    let dir = kept.dir.clone();
    let s = kept
        .start(kind, binary, "request", async |server| {
            seed(server, kind, args).await
        })
        .await?;
    let result = answers(
        &s.server,
        kind,
        args,
        &dir,
        s.marker,
        s.reused,
        s.start_seconds,
    )
    .await;
    s.server.stop().await?;
    result
}

/// One clip of the dataset: its tier and what is uploaded (deterministic in `i`).
fn clip(i: usize, cameras: u32, reference: DateTime<Utc>) -> (Tier, SeedClip) {
    let mut rng = SplitMix::new(0x05A2_0000_0000_0000 ^ i as u64);
    let category = KEPT[i % KEPT.len()];
    let age = i64::try_from(rng.range(86_400, SPAN_DAYS * 86_400)).unwrap_or(86_400);
    let recorded = reference - TimeDelta::seconds(age);
    let camera = u32::try_from(rng.range(0, u64::from(cameras))).unwrap_or(0);
    let tier = if i % 50 == 49 {
        Tier::LegalHold
    } else if i % 5 == 2 {
        Tier::Cool
    } else {
        Tier::Hot
    };
    (tier, SeedClip::new(i, category, recorded, camera, false))
}

/// Cameras (and officers) of a dataset of `n` clips: about 500 clips each.
fn cameras(n: usize) -> u32 {
    u32::try_from(n / 500).unwrap_or(u32::MAX).clamp(1, 200)
}

fn bucket_of(tier: Tier) -> &'static str {
    match tier {
        Tier::Hot => HOT,
        Tier::Cool => COOL,
        Tier::LegalHold => LOCK,
    }
}

/// Create the buckets, upload the clips (with their recorded SHA-256) and put the
/// legal-hold tier's clips under legal hold.
async fn seed(server: &Server, kind: &str, args: &RequestArgs) -> Result<Marker> {
    let client = server.client();
    minio::create_bucket(&client, HOT, false).await?;
    minio::create_bucket(&client, COOL, false).await?;
    minio::create_bucket(&client, LOCK, true).await?;
    minio::create_bucket(&client, EXPORT, false).await?;
    let n = args.clips;
    let cameras = cameras(n);
    let reference = Utc::now().duration_trunc(TimeDelta::seconds(1))?;
    let mut by_tier: BTreeMap<Tier, Vec<SeedClip>> = BTreeMap::new();
    for i in 0..n {
        let (tier, c) = clip(i, cameras, reference);
        by_tier.entry(tier).or_default().push(c);
    }
    let count = |t: Tier| by_tier.get(&t).map_or(0, Vec::len);
    eprintln!(
        "[request] {kind}: seeding {n} clips of {} B ({} hot, {} cool, {} legal-hold), {} in flight",
        args.clip_bytes,
        count(Tier::Hot),
        count(Tier::Cool),
        count(Tier::LegalHold),
        args.seed_concurrency
    );
    let started = Instant::now();
    for (tier, clips) in &by_tier {
        data::seed(
            &client,
            bucket_of(*tier),
            clips,
            args.clip_bytes,
            args.seed_concurrency,
            true,
            true,
        )
        .await?;
        eprintln!(
            "[request] {kind}: {} {tier} clips uploaded ({:.0} s)",
            clips.len(),
            started.elapsed().as_secs_f64()
        );
    }
    let held = by_tier.get(&Tier::LegalHold).cloned().unwrap_or_default();
    stream::iter(&held)
        .map(|c| {
            let client = &client;
            async move {
                client
                    .put_object_legal_hold()
                    .bucket(LOCK)
                    .key(&c.key)
                    .legal_hold(
                        ObjectLockLegalHold::builder()
                            .status(ObjectLockLegalHoldStatus::On)
                            .build(),
                    )
                    .send()
                    .await
                    .with_context(|| format!("holding {LOCK}/{}", c.key))
                    .map(|_| ())
            }
        })
        .buffer_unordered(args.seed_concurrency.max(1))
        .try_collect::<()>()
        .await?;
    let seed_seconds = started.elapsed().as_secs_f64();
    eprintln!("[request] {kind}: seeded in {seed_seconds:.0} s");
    Ok(Marker {
        version: DATASET_VERSION,
        server: kind.to_string(),
        clips: n,
        clip_bytes: args.clip_bytes,
        hot: count(Tier::Hot),
        cool: count(Tier::Cool),
        legal_hold: count(Tier::LegalHold),
        cameras,
        reference,
        seeded_at: Utc::now(),
        seed_seconds,
        seed_rate: n as f64 / seed_seconds.max(1e-9),
        seed_concurrency: args.seed_concurrency,
    })
}

/// One request of the run: its AccessRequest, its preserve and the clips it must find.
struct Case {
    name: &'static str,
    selects: String,
    request: AccessRequest,
    preserve: Preserve,
    expected: BTreeSet<(Tier, String)>,
}

/// The two requests over a dataset, with the clips each covers.
fn cases(m: &Marker) -> Result<Vec<Case>> {
    let day = TimeDelta::days(1);
    let camera = m.cameras / 3;
    let officer = format!("{}", 100_000 + camera * 7);
    let all: Vec<(Tier, SeedClip)> = (0..m.clips)
        .map(|i| clip(i, m.cameras, m.reference))
        .collect();
    let within = |c: &SeedClip, after: DateTime<Utc>, before: DateTime<Utc>| {
        after <= c.recorded && c.recorded <= before
    };
    let mut out = Vec::new();
    let (after, before) = (m.reference - day * 180, m.reference);
    out.push((
        "sar-officer",
        "SubjectAccess",
        format!("officer {officer}, recorded in the last 180 days"),
        AccessSelector {
            officer: Some(officer.clone()),
            recorded_after: Some(after),
            recorded_before: Some(before),
            ..AccessSelector::default()
        },
        all.iter()
            .filter(|(_, c)| c.camera == camera && within(c, after, before))
            .map(|(t, c)| (*t, c.key.clone()))
            .collect(),
    ));
    let (after, before) = (m.reference - day * 60, m.reference - day * 30);
    out.push((
        "disclosure-month",
        "Disclosure",
        "recorded 60 to 30 days before seeding: a 30-day window".to_string(),
        AccessSelector {
            recorded_after: Some(after),
            recorded_before: Some(before),
            ..AccessSelector::default()
        },
        all.iter()
            .filter(|(_, c)| within(c, after, before))
            .map(|(t, c)| (*t, c.key.clone()))
            .collect(),
    ));
    out.into_iter()
        .map(|(name, kind, selects, selector, expected)| {
            let request: AccessRequest = serde_json::from_value(serde_json::json!({
                "apiVersion": "evidence.bwv.io/v1alpha1", "kind": "AccessRequest",
                "metadata": {"name": name, "namespace": "bench", "generation": 1},
                "spec": {
                    "bucketRef": {"name": "request"}, "kind": kind,
                    "reference": format!("BENCH-{name}"), "receivedAt": m.reference,
                    "selector": selector,
                    "export": {"bucket": EXPORT},
                },
            }))?;
            let preserve =
                Preserve::from_request(&request).with_context(|| format!("{name} is not open"))?;
            Ok(Case {
                name,
                selects,
                request,
                preserve,
                expected,
            })
        })
        .collect()
}

/// One way of answering.
struct Answerer {
    name: &'static str,
    catalogue: Option<CatalogueMetrics>,
    list_metadata: bool,
    store: Box<dyn TierStore>,
    metrics: StorageMetrics,
}

/// Counters of a store, to take differences of.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    requests: u64,
    tags: u64,
    heads: u64,
    refresh: u64,
}

impl Counts {
    /// What was spent from `before` to these counts (and from `server_before` to
    /// `server_after`, the server's own counts).
    fn since(
        &self,
        before: &Counts,
        server_before: Option<BTreeMap<String, u64>>,
        server_after: Option<BTreeMap<String, u64>>,
    ) -> Spent {
        Spent {
            requests: self.requests - before.requests,
            server_requests: match (server_before, server_after) {
                (Some(b), Some(a)) => Some(minio::diff(&b, &a)),
                _ => None,
            },
            tag_reads: self.tags - before.tags,
            head_reads: self.heads - before.heads,
        }
    }
}

impl Answerer {
    fn counts(&self) -> Counts {
        Counts {
            requests: self.metrics.http_requests_total(),
            tags: self.metrics.requests("get_object_tagging", "ok"),
            heads: self.metrics.requests("head_object", "ok"),
            refresh: self.catalogue.as_ref().map_or(0, |c| c.lookups("refresh")),
        }
    }
}

/// What every answer of a server shares.
struct Bench<'a> {
    server: &'a Server,
    cfg: BucketConfig,
    opts: StoreOptions,
    skip: Vec<(Tier, String)>,
    /// This run's place in the export bucket.
    stamp: String,
}

impl Bench<'_> {
    async fn store(&self, list_metadata: bool, metrics: &StorageMetrics) -> Result<S3TierStore> {
        let opts = StoreOptions {
            list_metadata,
            ..self.opts.clone()
        };
        Ok(S3TierStore::new(self.cfg.clone(), opts, metrics.clone()).await?)
    }

    /// Answer `case` with `a`, the manifest written under `<stamp>/bench/<case>-<answer>-<run>/`.
    async fn answer(&self, a: &Answerer, case: &Case, run: usize) -> Result<AnswerRun> {
        let before = (a.counts(), self.server.requests().await?);
        let load = load_average();
        let started = Instant::now();
        let found = disclosure::search(
            a.store.as_ref(),
            std::slice::from_ref(&case.preserve),
            &self.skip,
        )
        .await?
        .remove(case.name)
        .unwrap_or_default();
        let search_seconds = started.elapsed().as_secs_f64();
        let got: BTreeSet<(Tier, String)> = found.iter().map(|c| (c.tier, c.key.clone())).collect();
        let n = found.len();
        let t = Instant::now();
        let entries = disclosure::manifest_clips(a.store.as_ref(), found).await?;
        let sha_seconds = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let export: ExportLocation = serde_json::from_value(serde_json::json!({
            "bucket": EXPORT, "prefix": format!("{}/", self.stamp),
        }))?;
        let name = format!("bench/{}-{}-{run}", case.name, a.name);
        let export_store = S3TierStore::new(
            disclosure::export_config(&self.cfg, &name, &export, None),
            self.opts.clone(),
            a.metrics.clone(),
        )
        .await?;
        let manifest = Manifest::new(
            &case.request,
            BUCKET,
            entries.into_iter().map(|(_, e)| e).collect(),
        );
        let bytes = manifest
            .to_bytes()
            .map(|(b, _)| b.len() as u64)
            .unwrap_or(0);
        let written = disclosure::write_manifest(&export_store, &manifest).await?;
        let write_seconds = t.elapsed().as_secs_f64();
        let seconds = started.elapsed().as_secs_f64();
        let (after, server_after) = (a.counts(), self.server.requests().await?);
        let correct = got == case.expected && written.created && manifest.clips_found == n as u64;
        if !correct {
            eprintln!(
                "[request] WARNING {} {}: found {n} (expected {}), {} missing, {} extra, manifest created {}",
                case.name,
                a.name,
                case.expected.len(),
                case.expected.difference(&got).count(),
                got.difference(&case.expected).count(),
                written.created
            );
        }
        let r = AnswerRun {
            seconds,
            search_seconds,
            sha_seconds,
            write_seconds,
            found: n,
            manifest_bytes: bytes,
            spent: after.since(&before.0, before.1, server_after),
            refresh_reads: after.refresh - before.0.refresh,
            correct,
            load_average: load,
        };
        eprintln!(
            "[request] {} {} run {}: {:.2} s (search {:.2}, SHA {:.2}, write {:.2}), {} found, {} requests, {} tag reads, {} HEAD, {} refresh",
            case.name,
            a.name,
            run + 1,
            r.seconds,
            r.search_seconds,
            r.sha_seconds,
            r.write_seconds,
            r.found,
            r.spent.requests,
            r.spent.tag_reads,
            r.spent.head_reads,
            r.refresh_reads
        );
        Ok(r)
    }
}

/// This run: the answerers, the catalogue's fill, every request answered `runs` times.
async fn answers(
    server: &Server,
    kind: &str,
    args: &RequestArgs,
    dir: &Path,
    dataset: Marker,
    reused: bool,
    start_seconds: f64,
) -> Result<ServerResult> {
    let (access, secret) = server.credentials();
    let cfg = BucketConfig {
        name: BUCKET.into(),
        declared_region: minio::REGION.into(),
        endpoint: Some(server.endpoint().to_string()),
        force_path_style: true,
        credentials: Some(StaticCredentials {
            access_key_id: access.to_string(),
            secret_access_key: secret.to_string(),
            session_token: None,
        }),
        tiers: Tiers {
            hot: TierLocation::bucket(HOT),
            cool: TierLocation::bucket(COOL),
            legal_hold: TierLocation::bucket(LOCK),
        },
        allowed_regions: vec![minio::REGION.into()],
    };
    let declared: Vec<EndpointRegion> = server
        .endpoint_region()
        .map(|d| d.parse::<EndpointRegion>())
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .collect();
    let stamp = format!("run-{}", Utc::now().format("%Y%m%dT%H%M%SZ"));
    let bench = Bench {
        server,
        cfg,
        opts: StoreOptions {
            endpoint_regions: EndpointRegions::new(declared),
            ..StoreOptions::default()
        },
        skip: vec![(Tier::LegalHold, AUDIT_PREFIX.into())],
        stamp: stamp.clone(),
    };
    let cases = cases(&dataset)?;
    for c in &cases {
        eprintln!(
            "[request] {kind}: {} selects {} clips ({})",
            c.name,
            c.expected.len(),
            c.selects
        );
    }

    // The answerers: plain, with MinIO's extension, through the catalogue.
    let mut answerers = Vec::new();
    let metrics = StorageMetrics::unregistered();
    answerers.push(Answerer {
        name: "plain",
        catalogue: None,
        list_metadata: false,
        store: Box::new(bench.store(false, &metrics).await?),
        metrics,
    });
    if kind == "minio" {
        let metrics = StorageMetrics::unregistered();
        answerers.push(Answerer {
            name: "plain-extension",
            catalogue: None,
            list_metadata: true,
            store: Box::new(bench.store(true, &metrics).await?),
            metrics,
        });
    }
    let catalogue_dir = dir.join("catalogue");
    if catalogue_dir.exists() {
        std::fs::remove_dir_all(&catalogue_dir)?;
    }
    let cat_metrics = CatalogueMetrics::unregistered();
    let catalogue = Catalogue::open(
        &catalogue_dir,
        CatalogueOptions::default(),
        cat_metrics.clone(),
    )?;
    let metrics = StorageMetrics::unregistered();
    let inner = bench.store(false, &metrics).await?;
    let catalogued = Answerer {
        name: "catalogue",
        catalogue: Some(cat_metrics),
        list_metadata: false,
        store: Box::new(CataloguedStore::new(
            Arc::new(inner),
            catalogue
                .bucket(BUCKET, &bench.cfg)
                .with_skip(bench.skip.clone()),
        )),
        metrics,
    };

    // The fill: every tier listed once through the catalogue (as the first sweep does).
    let before = (catalogued.counts(), server.requests().await?);
    let load = load_average();
    let started = Instant::now();
    let mut clips = 0;
    for tier in Tier::ALL {
        let mut listed = catalogued.store.list(tier);
        while let Some(c) = listed.next().await {
            let c = c?;
            if !bench
                .skip
                .iter()
                .any(|(t, p)| *t == tier && c.key.starts_with(p.as_str()))
            {
                clips += 1;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let (after, server_after) = (catalogued.counts(), server.requests().await?);
    let fill = Fill {
        seconds,
        clips,
        spent: after.since(&before.0, before.1, server_after),
        catalogue_bytes: du(&catalogue_dir),
        load_average: load,
    };
    eprintln!(
        "[request] {kind}: catalogue filled in {seconds:.1} s ({clips} clips, {} requests, {} tag reads, {} HEAD)",
        fill.spent.requests, fill.spent.tag_reads, fill.spent.head_reads
    );
    if clips != dataset.clips {
        bail!(
            "the fill listed {clips} clips, the dataset has {}",
            dataset.clips
        );
    }
    answerers.push(catalogued);

    let mut runs: BTreeMap<(&str, &str), Vec<AnswerRun>> = BTreeMap::new();
    for run in 0..args.runs {
        for case in &cases {
            // Rotate the order each run so no answer always goes first.
            let mut order: Vec<&Answerer> = answerers.iter().collect();
            let len = order.len();
            order.rotate_left(run % len);
            for a in order {
                let r = bench.answer(a, case, run).await?;
                runs.entry((case.name, a.name)).or_default().push(r);
            }
        }
    }
    // The manifests of this run: not kept.
    delete_prefix(&server.client(), EXPORT, &format!("{stamp}/")).await?;

    let results = cases
        .iter()
        .map(|case| {
            let answers: Vec<AnswerResult> = answerers
                .iter()
                .map(|a| {
                    let runs = runs.remove(&(case.name, a.name)).unwrap_or_default();
                    AnswerResult {
                        answer: a.name.to_string(),
                        catalogue: a.catalogue.is_some(),
                        list_metadata: a.list_metadata,
                        median_seconds: median(runs.iter().map(|r| r.seconds).collect()),
                        median_requests: median(
                            runs.iter().map(|r| r.spent.requests as f64).collect(),
                        ),
                        correct: runs.iter().all(|r| r.correct),
                        runs,
                    }
                })
                .collect();
            let over_catalogue = match answers.iter().find(|a| a.catalogue) {
                None => BTreeMap::new(),
                Some(c) => answers
                    .iter()
                    .filter(|a| !a.catalogue)
                    .map(|a| {
                        let r: BTreeMap<String, f64> = [
                            (
                                "seconds".to_string(),
                                a.median_seconds / c.median_seconds.max(1e-9),
                            ),
                            (
                                "requests".to_string(),
                                a.median_requests / c.median_requests.max(1.0),
                            ),
                        ]
                        .into();
                        (a.answer.clone(), r)
                    })
                    .collect(),
            };
            CaseResult {
                request: case.name.to_string(),
                selects: case.selects.clone(),
                expected: case.expected.len(),
                answers,
                over_catalogue,
            }
        })
        .collect();
    Ok(ServerResult {
        server: kind.to_string(),
        clips: dataset.clips,
        dataset,
        reused,
        start_seconds,
        fill,
        cases: results,
    })
}

/// `1,234` for 1234.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A ratio, to two significant figures or so: `725×`, `8.2×`, `0.04×`.
fn times(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}×")
    } else if r >= 1.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.2}×")
    }
}

/// Requests at the server, by API, largest first.
fn by_api(m: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<(&String, &u64)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(k, n)| format!("{} {k}", thousands(**n)))
        .collect::<Vec<_>>()
        .join(", ")
}

impl RequestReport {
    /// The Markdown summary.
    pub fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "Command: `{}`  ", self.command);
        let _ = writeln!(
            s,
            "Machine: {} CPUs, {}; {}; {} clips of {} B; median of {} run(s) per answer.\n",
            self.machine.cpus,
            self.machine.os,
            self.versions
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            thousands(self.clips as u64),
            self.clip_bytes,
            self.runs
        );
        for r in &self.servers {
            let d = &r.dataset;
            let _ = writeln!(
                s,
                "### {} — {} clips ({} hot, {} cool, {} legal-hold)\n\nDataset: {} (seeded {} at {:.0} clips/s, {} in flight, {:.0} s); server start {:.1} s.\n",
                r.server,
                thousands(r.clips as u64),
                thousands(d.hot as u64),
                thousands(d.cool as u64),
                thousands(d.legal_hold as u64),
                if r.reused {
                    "reused"
                } else {
                    "seeded by this run"
                },
                d.seeded_at.format("%Y-%m-%d %H:%M UTC"),
                d.seed_rate,
                d.seed_concurrency,
                d.seed_seconds,
                r.start_seconds
            );
            let f = &r.fill;
            let _ = writeln!(
                s,
                "Catalogue fill (once, before the answers): {:.1} s, {} clips listed, {} requests{}, {} tag reads, {} HEAD; catalogue {:.1} MiB; load {:.1}.\n",
                f.seconds,
                thousands(f.clips as u64),
                thousands(f.spent.requests),
                f.spent
                    .server_requests
                    .as_ref()
                    .map_or(String::new(), |m| format!(
                        " (at the server: {})",
                        by_api(m)
                    )),
                thousands(f.spent.tag_reads),
                thousands(f.spent.head_reads),
                f.catalogue_bytes as f64 / (1024.0 * 1024.0),
                f.load_average
            );
            let _ = writeln!(
                s,
                "| request | found | answer | median s | search s | SHA s | write s | requests | at the server | tag reads | HEAD | refresh | correct | load |"
            );
            let _ = writeln!(
                s,
                "|---|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|:---:|---:|"
            );
            for c in &r.cases {
                for a in &c.answers {
                    // The figures of the median run (by time).
                    let mut by_time: Vec<&AnswerRun> = a.runs.iter().collect();
                    by_time.sort_by(|x, y| x.seconds.total_cmp(&y.seconds));
                    let Some(m) = by_time.get(by_time.len() / 2) else {
                        continue;
                    };
                    let _ = writeln!(
                        s,
                        "| {} | {} | {}{} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} | {:.1} |",
                        c.request,
                        thousands(m.found as u64),
                        a.answer,
                        if a.catalogue { " (warm)" } else { "" },
                        a.median_seconds,
                        m.search_seconds,
                        m.sha_seconds,
                        m.write_seconds,
                        thousands(a.median_requests as u64),
                        m.spent
                            .server_requests
                            .as_ref()
                            .map_or("—".to_string(), by_api),
                        thousands(m.spent.tag_reads),
                        thousands(m.spent.head_reads),
                        thousands(m.refresh_reads),
                        if a.correct { "yes" } else { "**no**" },
                        m.load_average
                    );
                }
            }
            let _ = writeln!(s);
            for c in &r.cases {
                let parts: Vec<String> = c
                    .over_catalogue
                    .iter()
                    .map(|(answer, ratio)| {
                        let get = |k: &str| ratio.get(k).copied().unwrap_or(0.0);
                        format!(
                            "{answer} ÷ catalogue: time {}, requests {}",
                            times(get("seconds")),
                            times(get("requests"))
                        )
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    "- `{}` ({}; {} clips expected): {}.",
                    c.request,
                    c.selects,
                    thousands(c.expected as u64),
                    parts.join("; ")
                );
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(
            s,
            "An answer: the search of every tier, the SHA-256 of the clips found that the listing did not carry, the manifest written to a new place in the export bucket (its store made and region-proved). \
\"requests\": HTTP requests the stores sent (their SDK interceptor's count); \"at the server\": MinIO's own count by API (`minio_api_requests_total`). \
\"refresh\": facts read again by the catalogue's spread refresh (each clip once per 24 h at a phase of its own). \
\"load\": the machine's 1-minute load average as the median run started (times are noisy when it is above the cores)."
        );
        s
    }
}
