//! `evidence-bench operate`: one sweep of one bucket by the operator's own code, in a
//! child process of the driver so that its peak memory is its own.
//!
//! This is the sweep the `EvidenceBucket` controller runs (`controller::sweep::sweep`
//! over an `S3TierStore`, with the audit chain written to the legal-hold bucket), with
//! the Met policy of `deploy/examples/`, no legal holds, and the clock two days ahead
//! (as the operator integration test does) so that just-uploaded clips have passed the
//! 24 h safety floor that counts from upload. What is left out: the Kubernetes side
//! (reading the resources, status patch, events), which is a constant per sweep.
//!
//! For the `steady` job it can also sweep through the clip catalogue (`--catalogue-dir`:
//! a `CataloguedStore` over the `S3TierStore`, and quiet cool and legal-hold tiers
//! skipped by their memos), at an explicit planner clock (`--planner-now`), with the
//! listing extension off (`--list-metadata false`, as on AWS) and a declared region for
//! a store that reports none (`--endpoint-region`, SeaweedFS).

use std::{
    collections::{BTreeMap, HashSet},
    path::PathBuf,
    sync::Arc,
    time::Instant,
};

use anyhow::{Context, Result};
use chrono::{DateTime, TimeDelta, Utc};
use clap::{ArgAction, Args};
use evidence_operator::{
    api::{RetentionPolicySpec, clip::Tier},
    audit::{Actor, AuditLog, AuditTarget, BucketAudit},
    catalogue::{Catalogue, CatalogueMetrics, CatalogueOptions, CataloguedStore},
    controller::sweep::{SweepAudit, SweepOptions, sweep},
    engine::Planner,
    storage::{
        BucketConfig, S3TierStore, StaticCredentials, StorageMetrics, StoreOptions, TierLocation,
        TierStore, Tiers,
        region::{EndpointRegion, EndpointRegions},
    },
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Where the audit chain goes in the legal-hold bucket.
pub const AUDIT_PREFIX: &str = "audit/bench/";

/// Arguments of `evidence-bench operate` (credentials from `AWS_ACCESS_KEY_ID` and
/// `AWS_SECRET_ACCESS_KEY`).
#[derive(Debug, Args)]
pub struct OperateArgs {
    /// The S3 endpoint.
    #[arg(long)]
    pub endpoint: String,
    /// The hot tier bucket.
    #[arg(long)]
    pub hot: String,
    /// The cool tier bucket.
    #[arg(long)]
    pub cool: String,
    /// The legal-hold tier bucket (Object Lock).
    #[arg(long)]
    pub legal_hold: String,
    /// Moves in flight at once (the operator's `--move-concurrency`).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Per-object listing calls (tag reads) in flight; the store's default when unset.
    #[arg(long)]
    pub list_concurrency: Option<usize>,
    /// The RetentionPolicy manifest whose `spec` is used.
    #[arg(long)]
    pub policy: PathBuf,
    /// Days the planner's clock runs ahead of the real one.
    #[arg(long, default_value_t = 2)]
    pub clock_offset_days: i64,
    /// The planner's clock (RFC 3339), instead of the real one plus
    /// `--clock-offset-days`.
    #[arg(long)]
    pub planner_now: Option<DateTime<Utc>>,
    /// Sweep through the clip catalogue kept in this directory (created when missing).
    #[arg(long)]
    pub catalogue_dir: Option<PathBuf>,
    /// The catalogue's page cache (redb), MiB; the catalogue's default when unset.
    #[arg(long)]
    pub catalogue_cache_mib: Option<usize>,
    /// What the plan depends on besides storage and the clock: a tier memo holds only
    /// for the same string.
    #[arg(long, default_value = "evidence-bench")]
    pub inputs: String,
    /// Ask for the tags inside the listing (MinIO's `metadata=true`); `false` reads them
    /// object by object, as on AWS S3.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub list_metadata: bool,
    /// `HOST:PORT=REGION` for a store that reports no region (SeaweedFS).
    #[arg(long)]
    pub endpoint_region: Vec<EndpointRegion>,
}

/// What the child prints (one JSON line on stdout).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OperateReport {
    /// Clips deleted.
    pub deleted: u64,
    /// Clips moved.
    pub moved: u64,
    /// Actions that failed.
    pub failed: u64,
    /// Audit records written.
    pub audit_records: u64,
    /// Seconds the sweep took (inside the process).
    pub sweep_seconds: f64,
    /// Peak resident set size of the process (`VmHWM`), KiB.
    pub peak_rss_kib: u64,
    /// HTTP requests the store sent (the store's own count).
    pub store_http_requests: u64,
    /// `GetObjectTagging` requests that succeeded.
    #[serde(default)]
    pub tag_reads: u64,
    /// The catalogue's lookups by result (`hit`, `new`, `changed`, `refresh`,
    /// `listed`), when swept through it.
    #[serde(default)]
    pub catalogue_lookups: BTreeMap<String, u64>,
    /// Clips the catalogue learned from `ingested` audit records before the sweep.
    #[serde(default)]
    pub learned: usize,
    /// Tiers not listed because their memo held.
    #[serde(default)]
    pub unlisted: Vec<String>,
    /// Clips counted per tier (listed, or from a memo).
    #[serde(default)]
    pub clips_by_tier: BTreeMap<String, i64>,
    /// Clips flagged for review.
    #[serde(default)]
    pub flagged: u64,
}

/// Load the `spec` of a RetentionPolicy manifest.
pub fn load_policy(path: &PathBuf) -> Result<RetentionPolicySpec> {
    let yaml = std::fs::read_to_string(path).with_context(|| format!("reading {path:?}"))?;
    let value: serde_yaml::Value = serde_yaml::from_str(&yaml)?;
    Ok(serde_yaml::from_value(value["spec"].clone())?)
}

/// The peak resident set size of this process, KiB (0 where `/proc` is missing).
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Run one sweep and print its [`OperateReport`].
pub async fn operate(args: OperateArgs) -> Result<()> {
    let policy = load_policy(&args.policy)?;
    let cfg = BucketConfig {
        name: "bench/unit".into(),
        declared_region: crate::minio::REGION.into(),
        endpoint: Some(args.endpoint.clone()),
        force_path_style: true,
        credentials: Some(StaticCredentials {
            access_key_id: std::env::var("AWS_ACCESS_KEY_ID").context("AWS_ACCESS_KEY_ID")?,
            secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY")
                .context("AWS_SECRET_ACCESS_KEY")?,
            session_token: None,
        }),
        tiers: Tiers {
            hot: TierLocation::bucket(&args.hot),
            cool: TierLocation::bucket(&args.cool),
            legal_hold: TierLocation::bucket(&args.legal_hold),
        },
        allowed_regions: vec![crate::minio::REGION.into()],
    };
    let metrics = StorageMetrics::unregistered();
    let log = AuditLog::connect(
        &cfg,
        AuditTarget {
            bucket: args.legal_hold.clone(),
            prefix: AUDIT_PREFIX.into(),
            retention: Some(TimeDelta::days(1)),
        },
    )
    .await?;
    let mut store_opts = StoreOptions {
        list_metadata: args.list_metadata,
        endpoint_regions: EndpointRegions::new(args.endpoint_region.clone()),
        ..StoreOptions::default()
    };
    if let Some(n) = args.list_concurrency {
        store_opts.list_concurrency = n;
    }
    let s3 = S3TierStore::new(cfg.clone(), store_opts, metrics.clone()).await?;
    let catalogue = match &args.catalogue_dir {
        Some(dir) => {
            let mut opts = CatalogueOptions::default();
            if let Some(mib) = args.catalogue_cache_mib {
                opts.cache_bytes = mib << 20;
            }
            Some(Catalogue::open(
                dir,
                opts,
                CatalogueMetrics::unregistered(),
            )?)
        }
        None => None,
    };
    let bucket_catalogue = catalogue.as_ref().map(|c| c.bucket("bench/unit", &cfg));
    // As the operator does before each sweep: learn the clips docks ingested from their
    // audit records.
    let learned = match &bucket_catalogue {
        Some(b) => {
            b.learn_ingested(&log, "bench/unit", Utc::now())
                .await?
                .entries
        }
        None => 0,
    };
    let store: Box<dyn TierStore> = match &bucket_catalogue {
        Some(b) => Box::new(CataloguedStore::new(Arc::new(s3), b.clone())),
        None => Box::new(s3),
    };
    let sink = BucketAudit {
        log: &log,
        actor: Actor {
            operator: "evidence-bench".into(),
            lease: None,
            lease_holder: None,
        },
        bucket: "bench/unit".into(),
    };
    let now = args
        .planner_now
        .unwrap_or_else(|| Utc::now() + TimeDelta::days(args.clock_offset_days));
    let planner = Planner::new(&policy, &[], now)?;
    let flagged_before = HashSet::new();
    let audit = SweepAudit {
        sink: &sink,
        cases: Default::default(),
        releasing: None,
        flagged_before: &flagged_before,
    };
    let opts = SweepOptions {
        concurrency: args.concurrency,
        skip: vec![(Tier::LegalHold, AUDIT_PREFIX.into())],
        integrity_sample: 0,
        catalogue: bucket_catalogue,
        inputs: args.inputs.clone(),
    };
    let started = Instant::now();
    let out = sweep(
        store.as_ref(),
        &planner,
        &opts,
        &CancellationToken::new(),
        &audit,
        None,
    )
    .await?;
    let report = OperateReport {
        deleted: out.deleted,
        moved: out.moved,
        failed: out.failed,
        audit_records: out.audit_records,
        sweep_seconds: started.elapsed().as_secs_f64(),
        peak_rss_kib: peak_rss_kib(),
        store_http_requests: metrics.http_requests_total(),
        tag_reads: metrics.requests("get_object_tagging", "ok"),
        catalogue_lookups: catalogue
            .as_ref()
            .map(|c| {
                ["hit", "ingested", "new", "changed", "refresh", "listed"]
                    .into_iter()
                    .map(|r| (r.to_string(), c.metrics().lookups(r)))
                    .collect()
            })
            .unwrap_or_default(),
        learned,
        unlisted: out.unlisted.iter().map(ToString::to_string).collect(),
        clips_by_tier: out
            .totals
            .iter()
            .map(|(tier, t)| (tier.to_string(), t.clips))
            .collect(),
        flagged: out.flagged,
    };
    println!("{}", serde_json::to_string(&report)?);
    if out.failed > 0 {
        eprintln!("sweep failures: {:?}", out.messages);
    }
    Ok(())
}
