//! `evidence-bench operate`: one sweep of one bucket by the operator's own code, in a
//! child process of the driver so that its peak memory is its own.
//!
//! This is the sweep the `EvidenceBucket` controller runs (`controller::sweep::sweep`
//! over an `S3TierStore`, with the audit chain written to the legal-hold bucket), with
//! the Met policy of `deploy/examples/`, no legal holds, and the clock two days ahead
//! (as the operator integration test does) so that just-uploaded clips have passed the
//! 24 h safety floor that counts from upload. What is left out: the Kubernetes side
//! (reading the resources, status patch, events), which is a constant per sweep.

use std::{collections::HashSet, path::PathBuf, time::Instant};

use anyhow::{Context, Result};
use chrono::{TimeDelta, Utc};
use clap::Args;
use evidence_operator::{
    api::{RetentionPolicySpec, clip::Tier},
    audit::{Actor, AuditLog, AuditTarget, BucketAudit},
    controller::sweep::{SweepAudit, SweepOptions, sweep},
    engine::Planner,
    storage::{
        BucketConfig, S3TierStore, StaticCredentials, StorageMetrics, StoreOptions, TierLocation,
        Tiers,
    },
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Where the audit chain goes in the legal-hold bucket.
const AUDIT_PREFIX: &str = "audit/bench/";

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
    let mut store_opts = StoreOptions::default();
    if let Some(n) = args.list_concurrency {
        store_opts.list_concurrency = n;
    }
    let store = S3TierStore::new(cfg, store_opts, metrics.clone()).await?;
    let sink = BucketAudit {
        log: &log,
        actor: Actor {
            operator: "evidence-bench".into(),
            lease: None,
            lease_holder: None,
        },
        bucket: "bench/unit".into(),
    };
    let now = Utc::now() + TimeDelta::days(args.clock_offset_days);
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
        catalogue: None,
        inputs: String::new(),
    };
    let started = Instant::now();
    let out = sweep(
        &store,
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
    };
    println!("{}", serde_json::to_string(&report)?);
    if out.failed > 0 {
        eprintln!("sweep failures: {:?}", out.messages);
    }
    Ok(())
}
