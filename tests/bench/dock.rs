//! The dock folders of `evidence-bench ingest`, and the operator's ingest as the
//! contender: the library (`evidence_operator::ingest::ingest`) in a child process of the
//! driver (`evidence-bench ingest-one`), so that its wall time and peak memory are its
//! own, as rclone's and s5cmd's are.
//!
//! Two kinds of dock:
//! - **plain** (the `ingest` job): `clip-<i>.mp4` files of a given size, minimal MP4s
//!   whose `mvhd` holds the recording time, no sidecars (camera, officer and category
//!   come from the folder's flags, as at a dock that knows its camera). Kept between
//!   runs in `<data>/<name>/`, with a marker beside it (`<data>/<name>.json`, outside
//!   the folder so that no peer copies it); generated again when the marker differs.
//! - **sidecar** (the `expire` and `move` jobs): the clips of `data::dataset` (categories
//!   and recording times relative to now), each with a JSON sidecar; the clips a job
//!   acts on are on cameras `BWV-A…`, the others on `BWV-K…`, so that a tool which
//!   cannot read tags (rclone, s5cmd) can select the same clips by key. Generated for
//!   every bench run (the ages are relative to the run's clock).

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use clap::Args;
use evidence_operator::{
    api::RetentionPolicySpec,
    audit::AuditTarget,
    ingest::{
        Categories, Defaults, IngestOptions, IngestReport, IngestTarget, Outcome, Quiet, ingest,
        mp4::minimal_mp4,
    },
    storage::{BucketConfig, StaticCredentials, StoreOptions, TierLocation, Tiers},
};
use serde::{Deserialize, Serialize};

use crate::{
    data::{Scenario, SplitMix},
    minio::REGION,
    operate::{AUDIT_PREFIX, load_policy, peak_rss_kib},
    tools::Buckets,
};

/// The camera prefix of the clips a sweep job acts on (deletes or moves).
pub const ACTED_CAMERA: &str = "BWV-A";
/// The camera prefix of the clips a sweep job leaves alone.
pub const KEPT_CAMERA: &str = "BWV-K";

/// The folder flags of a plain dock (the `ingest` job).
pub const PLAIN_CAMERA: &str = "BWV-0042";
/// See [`PLAIN_CAMERA`].
pub const PLAIN_OFFICER: &str = "PC 4567";
/// See [`PLAIN_CAMERA`].
pub const PLAIN_CATEGORY: &str = "non-evidential";

/// Bump when the content of a plain dock changes: older docks are generated again.
const DOCK_VERSION: u32 = 1;

/// What a plain dock's marker records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Marker {
    version: u32,
    clips: usize,
    clip_bytes: usize,
}

/// One clip file: a minimal MP4 recorded at `recorded`, exactly `bytes` long (or its
/// headers' length when that is more), its payload deterministic per `seed`.
fn clip_file(recorded: DateTime<Utc>, bytes: usize, seed: u64) -> Vec<u8> {
    let overhead = minimal_mp4(Some(recorded), &[]).len();
    let len = bytes.saturating_sub(overhead);
    let mut payload = Vec::with_capacity(len + 8);
    let mut rng = SplitMix::new(seed);
    while payload.len() < len {
        payload.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    payload.truncate(len);
    minimal_mp4(Some(recorded), &payload)
}

/// The plain dock `<data>/<name>/` of `clips` files of `clip_bytes`, generated unless
/// its marker says it is already there. Returns the folder.
pub fn plain_dock(data: &Path, name: &str, clips: usize, clip_bytes: usize) -> Result<PathBuf> {
    let dir = data.join(name);
    let marker_path = data.join(format!("{name}.json"));
    let want = Marker {
        version: DOCK_VERSION,
        clips,
        clip_bytes,
    };
    let have: Option<Marker> = std::fs::read(&marker_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if have.as_ref() == Some(&want) && dir.is_dir() {
        eprintln!(
            "[bench] dock {} kept ({clips} × {clip_bytes} B)",
            dir.display()
        );
        return Ok(dir);
    }
    std::fs::remove_file(&marker_path).ok();
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("emptying {dir:?}"))?;
    }
    std::fs::create_dir_all(&dir)?;
    eprintln!(
        "[bench] generating dock {} ({clips} × {clip_bytes} B)",
        dir.display()
    );
    let started = Instant::now();
    // Recorded over the four days before the dock was made: a few `<date>/<camera>/`
    // folders, as a dock that holds a few shifts of one camera.
    let base = Utc::now() - TimeDelta::days(1);
    for i in 0..clips {
        let days = i64::try_from(i % 4).unwrap_or(0);
        let secs = i64::try_from(i).unwrap_or(0);
        let recorded = base - TimeDelta::days(days) - TimeDelta::seconds(secs);
        std::fs::write(
            dir.join(format!("clip-{i:06}.mp4")),
            clip_file(recorded, clip_bytes, 0xD0C ^ i as u64),
        )?;
    }
    std::fs::write(&marker_path, serde_json::to_vec(&want)?)?;
    eprintln!(
        "[bench] dock generated in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(dir)
}

/// The sidecar dock of a sweep job, generated afresh in `dir`: the clips of
/// `data::dataset(scenario, clips, now)`, each `clip_bytes` long with a JSON sidecar
/// (category, camera, officer, recording time).
pub fn sidecar_dock(
    dir: &Path,
    scenario: Scenario,
    clips: usize,
    clip_bytes: usize,
    now: DateTime<Utc>,
) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("emptying {dir:?}"))?;
    }
    std::fs::create_dir_all(dir)?;
    for (i, c) in crate::data::dataset(scenario, clips, now)
        .iter()
        .enumerate()
    {
        let stem = format!("clip-{i:07}");
        let camera = format!(
            "{}{:04}",
            if c.acted { ACTED_CAMERA } else { KEPT_CAMERA },
            c.camera
        );
        let recorded = c.recorded;
        std::fs::write(
            dir.join(format!("{stem}.mp4")),
            clip_file(recorded, clip_bytes, 0x51DE ^ i as u64),
        )?;
        let sidecar = serde_json::json!({
            "schema": "evidence.bwv.io/ingest-sidecar/v1",
            "category": c.category,
            "camera": camera,
            "officer": format!("PC {}", 100_000 + c.camera * 7),
            "recordedAt": recorded.to_rfc3339_opts(SecondsFormat::Secs, true),
        });
        std::fs::write(dir.join(format!("{stem}.json")), sidecar.to_string())?;
    }
    Ok(())
}

/// Whether a key (`<yyyy>/<mm>/<dd>/<camera>/<name>.mp4`) is on an acted-on camera.
pub fn acted_key(key: &str) -> bool {
    key.split('/')
        .nth(3)
        .is_some_and(|camera| camera.starts_with(ACTED_CAMERA))
}

/// The bench's evidence bucket as an ingest target: the run's three buckets, its audit
/// chain where the bench sweep writes its own (`operate::AUDIT_PREFIX` in the
/// legal-hold bucket, which the sweep skips), the policy's categories.
pub fn target(
    endpoint: &str,
    credentials: StaticCredentials,
    buckets: &Buckets,
    policy: &RetentionPolicySpec,
) -> IngestTarget {
    IngestTarget {
        config: BucketConfig {
            name: "bench/unit".into(),
            declared_region: REGION.into(),
            endpoint: Some(endpoint.to_string()),
            force_path_style: true,
            credentials: Some(credentials),
            tiers: Tiers {
                hot: TierLocation::bucket(&buckets.hot),
                cool: TierLocation::bucket(&buckets.cool),
                legal_hold: TierLocation::bucket(&buckets.legal_hold),
            },
            allowed_regions: vec![REGION.into()],
        },
        store_options: StoreOptions::default(),
        audit: Some((
            AuditTarget {
                bucket: buckets.legal_hold.clone(),
                prefix: AUDIT_PREFIX.into(),
                retention: Some(TimeDelta::days(1)),
            },
            "bench/unit".into(),
        )),
        categories: Categories::Known(policy.categories.iter().map(|c| c.name.clone()).collect()),
    }
}

/// Ingest `dock` into `target` in this process (the sweep jobs' seeding, not timed):
/// every clip must land.
pub async fn ingest_all(
    target: &IngestTarget,
    dock: &Path,
    concurrency: usize,
) -> Result<IngestReport> {
    let mut opts = IngestOptions::new(dock);
    opts.concurrency = concurrency.max(1);
    opts.dock_host = "evidence-bench".into();
    opts.user = "evidence-bench".into();
    let report = ingest(target, &opts, &Quiet).await?;
    if !report.ok() || report.count(Outcome::Ingested) != report.clips.len() {
        bail!(
            "seeding by ingest: not every clip was ingested: {}",
            report.summary()
        );
    }
    Ok(report)
}

/// Arguments of `evidence-bench ingest-one` (credentials from `AWS_ACCESS_KEY_ID` and
/// `AWS_SECRET_ACCESS_KEY`): one ingest of a dock, with the folder flags of a plain dock.
#[derive(Debug, Args)]
pub struct IngestOneArgs {
    /// The dock folder.
    #[arg(long)]
    pub dock: PathBuf,
    /// The S3 endpoint.
    #[arg(long)]
    pub endpoint: String,
    /// The hot tier bucket (written).
    #[arg(long)]
    pub hot: String,
    /// The cool tier bucket (its region is proved).
    #[arg(long)]
    pub cool: String,
    /// The legal-hold tier bucket (the audit chain).
    #[arg(long)]
    pub legal_hold: String,
    /// The RetentionPolicy manifest whose categories a clip may carry.
    #[arg(long)]
    pub policy: PathBuf,
    /// Clips uploaded at once (the ingest's `--concurrency`).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

/// What `evidence-bench ingest-one` prints (one JSON line on stdout).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IngestOneReport {
    /// Clips ingested.
    pub ingested: usize,
    /// Clips found already present.
    pub already_present: usize,
    /// Clips refused, in conflict or failed.
    pub not_ingested: usize,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// Audit records written.
    pub audit_records: usize,
    /// Seconds the ingest took (inside the process).
    pub ingest_seconds: f64,
    /// Peak resident set size of the process (`VmHWM`), KiB.
    pub peak_rss_kib: u64,
}

/// One ingest of a dock by the operator's library; prints its [`IngestOneReport`].
pub async fn ingest_one(args: IngestOneArgs) -> Result<()> {
    let policy = load_policy(&args.policy)?;
    let credentials = StaticCredentials {
        access_key_id: std::env::var("AWS_ACCESS_KEY_ID").context("AWS_ACCESS_KEY_ID")?,
        secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY")
            .context("AWS_SECRET_ACCESS_KEY")?,
        session_token: None,
    };
    let buckets = Buckets {
        hot: args.hot.clone(),
        cool: args.cool.clone(),
        legal_hold: args.legal_hold.clone(),
    };
    let bench_target = target(&args.endpoint, credentials, &buckets, &policy);
    let mut opts = IngestOptions::new(&args.dock);
    opts.concurrency = args.concurrency.max(1);
    opts.defaults = Defaults {
        category: Some(PLAIN_CATEGORY.into()),
        camera: Some(PLAIN_CAMERA.into()),
        officer: Some(PLAIN_OFFICER.into()),
        case: None,
    };
    opts.dock_host = "evidence-bench".into();
    opts.user = "evidence-bench".into();
    let started = Instant::now();
    let report = ingest(&bench_target, &opts, &Quiet).await?;
    let ingested = report.count(Outcome::Ingested);
    let already_present = report.count(Outcome::AlreadyPresent);
    let out = IngestOneReport {
        ingested,
        already_present,
        not_ingested: report.clips.len() - ingested - already_present,
        bytes_uploaded: report.bytes_uploaded,
        audit_records: report.audit_records,
        ingest_seconds: started.elapsed().as_secs_f64(),
        peak_rss_kib: peak_rss_kib(),
    };
    println!("{}", serde_json::to_string(&out)?);
    if !report.ok() {
        eprintln!("{}", report.to_text());
    }
    Ok(())
}
