//! `evidence-operator plan --bucket <namespace/name>`: what the operator would do to one
//! EvidenceBucket now (or at `--now`), read from the live cluster and storage, without
//! doing any of it.
//!
//! It runs the controller's own first two steps, [`dereference`] (the bucket's
//! RetentionPolicy, the LegalHolds that reference it, the credentials Secret) and
//! [`validate`] (suspension, declared and endpoint region, policy, credentials, the
//! holds in force), so it refuses what the sweep refuses and sees the holds the sweep
//! sees; then it proves the buckets' real regions (read-only calls), lists every tier,
//! and plans each clip with the same engine. It prints counts per action and one line per clip that would
//! be moved, held, released, flagged or deleted, with the engine's reason. It writes
//! nothing: no S3 write, no status, no event, no Lease.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, ValueEnum};
use futures::StreamExt;
use kube::{Api, Client};
use serde_json::json;

use crate::{
    api::{EvidenceBucket, clip::Tier},
    controller::{
        self,
        audit::audit_skips,
        bucket::{Refusal, dereference, validate},
    },
    engine::{Action, PurgeDecision},
    storage::{S3TierStore, StorageError, StorageMetrics, StoreOptions, TierStore},
};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A summary and one line per clip that something would happen to.
    Text,
    /// The same as one JSON document.
    Json,
}

/// Flags of `evidence-operator plan`.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// The EvidenceBucket: `namespace/name`, or `name` with --namespace.
    #[arg(long)]
    pub bucket: String,
    /// Namespace of the bucket when --bucket has none (default: the kubeconfig's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Plan as of this time (RFC 3339), e.g. to see what a sweep next month would do.
    #[arg(long, value_parser = parse_time)]
    pub now: Option<DateTime<Utc>>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
    /// Also list the clips that are kept as they are.
    #[arg(long)]
    pub all: bool,
    /// What the installation allows, as the operator's flags of the same names.
    #[command(flatten)]
    pub installation: super::InstallationArgs,
    /// The audit chain's key prefix in the legal-hold bucket (not clips), as the
    /// operator's --audit-prefix.
    #[arg(long, env = "EVIDENCE_AUDIT_PREFIX", default_value = "evidence-audit/")]
    pub audit_prefix: String,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2026-06-01T00:00:00Z: {e}"))
}

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The EvidenceBucket does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// Reading what the bucket refers to failed.
    #[error("{0}")]
    Read(#[from] controller::Error),
    /// The operator refuses this bucket (as its status says), so there is nothing to plan.
    #[error("EvidenceBucket {bucket} is refused ({}): {refusal}; the operator takes no action on it, and plan shows none", refusal.reason())]
    Refused {
        /// `namespace/name`.
        bucket: String,
        /// Why.
        refusal: Refusal,
    },
    /// A storage call failed.
    #[error("EvidenceBucket {bucket}: storage: {source}")]
    Storage {
        /// `namespace/name`.
        bucket: String,
        /// The storage error.
        source: StorageError,
    },
    /// An installation setting (`--endpoint-region`) that the operator would refuse
    /// to start with.
    #[error("{0}")]
    Settings(String),
    /// Metrics registry setup failed.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// One clip the plan would act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedClip {
    /// The clip's key (relative to the tier prefix).
    pub key: String,
    /// Where it is.
    pub tier: Tier,
    /// What would happen.
    pub action: Action,
    /// The engine's reason.
    pub reason: String,
    /// Holds selecting it.
    pub holds: Vec<String>,
}

/// A soft-deleted clip (a policy with a `restoreWindow`), restorable with a ClipRestore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestorableClip {
    /// The clip's key.
    pub key: String,
    /// Its tier.
    pub tier: Tier,
    /// Its version (what a restore brings back).
    pub version_id: Option<String>,
    /// When it was deleted.
    pub deleted_at: DateTime<Utc>,
    /// What happens next: `purged at <time>`, `purged at the next sweep`, or why it is
    /// kept past its window.
    pub next: String,
}

/// A plan.
#[derive(Debug, Clone)]
pub struct PlanReport {
    /// `namespace/name` of the EvidenceBucket.
    pub bucket: String,
    /// Name of its RetentionPolicy.
    pub policy: String,
    /// The declared (and proven) region.
    pub region: String,
    /// The time planned at.
    pub now: DateTime<Utc>,
    /// Active holds referencing the bucket.
    pub holds: Vec<String>,
    /// Clips per tier, as listed.
    pub clips: BTreeMap<Tier, u64>,
    /// Clips per action.
    pub counts: BTreeMap<Action, u64>,
    /// Clips something would happen to (all clips with `--all`), by tier and key.
    pub items: Vec<PlannedClip>,
    /// Soft-deleted clips still restorable (policies with a `restoreWindow`).
    pub restorable: Vec<RestorableClip>,
}

/// Make the plan: read-only against the cluster and storage.
pub async fn plan(client: Client, args: &PlanArgs) -> Result<PlanReport, PlanError> {
    let (ns, name) = match args.bucket.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => (
            args.namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_string()),
            args.bucket.clone(),
        ),
    };
    let key = format!("{ns}/{name}");
    let eb = Api::<EvidenceBucket>::namespaced(client.clone(), &ns)
        .get_opt(&name)
        .await
        .map_err(controller::Error::read(format!("EvidenceBucket {key}")))?
        .ok_or_else(|| PlanError::NotFound(format!("EvidenceBucket {key}")))?;
    let allowed = args.installation.regions();
    let now = args.now.unwrap_or_else(Utc::now);
    let refused = |refusal| PlanError::Refused {
        bucket: key.clone(),
        refusal,
    };
    let found = dereference(&client, &eb).await?;
    let grants = args.installation.grants(&ns);
    let valid = validate(&eb, &found, &allowed, &grants, now).map_err(refused)?;
    let planner = valid.planner(now).map_err(refused)?;

    let storage = |source| PlanError::Storage {
        bucket: key.clone(),
        source,
    };
    let registry = prometheus::Registry::new();
    let endpoint_regions = args.installation.endpoint_regions();
    endpoint_regions
        .check(&allowed)
        .map_err(PlanError::Settings)?;
    let store = S3TierStore::new(
        valid.config.clone(),
        StoreOptions {
            endpoint_regions,
            ..StoreOptions::default()
        },
        StorageMetrics::new(&registry)?,
    )
    .await
    .map_err(|e| Refusal::from_storage(e).map_or_else(storage, refused))?;
    // UK only, by proof (GetBucketLocation and friends: reads).
    store
        .verify_region()
        .await
        .map_err(|e| Refusal::from_storage(e).map_or_else(storage, refused))?;

    let skip = audit_skips(&eb, &args.audit_prefix);
    let mut report = PlanReport {
        bucket: key.clone(),
        policy: eb.spec.retention_policy_ref.name.clone(),
        region: eb.spec.region.clone(),
        now,
        holds: valid.active.iter().map(|h| h.name.clone()).collect(),
        clips: BTreeMap::new(),
        counts: BTreeMap::new(),
        items: Vec::new(),
        restorable: Vec::new(),
    };
    for tier in Tier::ALL {
        report.clips.entry(tier).or_default();
        let mut clips = store.list(tier);
        while let Some(clip) = clips.next().await {
            let clip = clip.map_err(storage)?;
            if skip
                .iter()
                .any(|(t, p)| *t == tier && clip.key.starts_with(p.as_str()))
            {
                continue;
            }
            *report.clips.entry(tier).or_default() += 1;
            let d = planner.plan_clip(&clip);
            *report.counts.entry(d.action).or_default() += 1;
            if args.all || d.action != Action::Keep {
                report.items.push(PlannedClip {
                    key: d.key,
                    tier: d.tier,
                    action: d.action,
                    reason: d.reason.to_string(),
                    holds: d.holds,
                });
            }
        }
    }
    if planner.policy().restore_window.is_some() {
        for tier in [Tier::Hot, Tier::Cool] {
            let mut deleted = store.list_deleted(tier, None);
            while let Some(d) = deleted.next().await {
                let d = d.map_err(storage)?;
                let Some(data) = &d.data else { continue };
                if skip
                    .iter()
                    .any(|(t, p)| *t == tier && d.key.starts_with(p.as_str()))
                {
                    continue;
                }
                let next = match planner.plan_purge(data, d.deleted_at) {
                    PurgeDecision::Purge { .. } => "purged at the next sweep".to_string(),
                    PurgeDecision::Restorable { until } => format!(
                        "purged at {}",
                        until.to_rfc3339_opts(SecondsFormat::Secs, true)
                    ),
                    PurgeDecision::Kept { reason } => format!("kept: {reason}"),
                };
                report.restorable.push(RestorableClip {
                    key: d.key.clone(),
                    tier,
                    version_id: data.version_id.clone(),
                    deleted_at: d.deleted_at,
                    next,
                });
            }
        }
    }
    Ok(report)
}

impl PlanReport {
    /// Human-readable form.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "EvidenceBucket {} (region {}, RetentionPolicy {}), planned at {} (read-only: nothing was changed)\n",
            self.bucket,
            self.region,
            self.policy,
            self.now.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        let tiers: Vec<String> = self.clips.iter().map(|(t, n)| format!("{t} {n}")).collect();
        s += &format!("clips: {}\n", tiers.join(", "));
        if !self.holds.is_empty() {
            s += &format!("active legal holds: {}\n", self.holds.join(", "));
        }
        let counts: Vec<String> = Action::ALL
            .iter()
            .map(|a| {
                format!(
                    "{} {}",
                    a.as_str(),
                    self.counts.get(a).copied().unwrap_or(0)
                )
            })
            .collect();
        s += &format!("actions: {}\n", counts.join(", "));
        for c in &self.items {
            let holds = if c.holds.is_empty() {
                String::new()
            } else {
                format!(" [holds: {}]", c.holds.join(", "))
            };
            s += &format!(
                "{:<18} {:<10} {}: {}{holds}\n",
                c.action.as_str(),
                c.tier.to_string(),
                c.key,
                c.reason
            );
        }
        if !self.restorable.is_empty() {
            s += &format!(
                "restorable (soft-deleted; bring back with a ClipRestore): {}\n",
                self.restorable.len()
            );
            for r in &self.restorable {
                s += &format!(
                    "{:<18} {:<10} {}: deleted at {}, {}\n",
                    "restorable",
                    r.tier.to_string(),
                    r.key,
                    r.deleted_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    r.next
                );
            }
        }
        s
    }

    /// JSON form.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "bucket": self.bucket,
            "policy": self.policy,
            "region": self.region,
            "now": self.now.to_rfc3339_opts(SecondsFormat::Secs, true),
            "holds": self.holds,
            "clips": self.clips.iter().map(|(t, n)| (t.to_string(), *n)).collect::<BTreeMap<_, _>>(),
            "counts": Action::ALL.iter().map(|a| (a.as_str(), self.counts.get(a).copied().unwrap_or(0))).collect::<BTreeMap<_, _>>(),
            "clipsToActOn": self.items.iter().map(|c| json!({
                "key": c.key, "tier": c.tier.to_string(), "action": c.action.as_str(),
                "reason": c.reason, "holds": c.holds,
            })).collect::<Vec<_>>(),
            "restorable": self.restorable.iter().map(|r| json!({
                "key": r.key, "tier": r.tier.to_string(), "versionId": r.version_id,
                "deletedAt": r.deleted_at.to_rfc3339_opts(SecondsFormat::Secs, true), "next": r.next,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Run `evidence-operator plan`.
pub fn main(args: PlanArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        let client = Client::try_default().await?;
        anyhow::Ok(plan(client, &args).await?)
    })?;
    match args.output {
        Output::Text => print!("{}", report.to_text()),
        Output::Json => println!("{}", serde_json::to_string_pretty(&report.to_json())?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn times_parse() {
        assert!(parse_time("2026-06-01T00:00:00Z").is_ok());
        assert!(parse_time("2026-06-01T01:00:00+01:00").is_ok());
        assert!(parse_time("next week").is_err());
    }

    #[test]
    fn report_prints_counts_and_reasons() {
        let mut r = PlanReport {
            bucket: "ns/unit".into(),
            policy: "met".into(),
            region: "eu-west-2".into(),
            now: parse_time("2026-06-01T00:00:00Z").unwrap(),
            holds: vec!["case".into()],
            clips: BTreeMap::from([(Tier::Hot, 2), (Tier::Cool, 0), (Tier::LegalHold, 0)]),
            counts: BTreeMap::from([(Action::Delete, 1), (Action::Keep, 1)]),
            items: vec![PlannedClip {
                key: "a.mp4".into(),
                tier: Tier::Hot,
                action: Action::Delete,
                reason: "retention ran out".into(),
                holds: vec![],
            }],
            restorable: vec![RestorableClip {
                key: "b.mp4".into(),
                tier: Tier::Cool,
                version_id: Some("v1".into()),
                deleted_at: parse_time("2026-05-30T00:00:00Z").unwrap(),
                next: "purged at 2026-06-06T00:00:00Z".into(),
            }],
        };
        let text = r.to_text();
        assert!(
            text.contains("b.mp4: deleted at 2026-05-30T00:00:00Z, purged at 2026-06-06T00:00:00Z"),
            "{text}"
        );
        assert!(text.contains("delete 1"), "{text}");
        assert!(text.contains("keep 1"), "{text}");
        assert!(text.contains("a.mp4: retention ran out"), "{text}");
        r.items.clear();
        let j = r.to_json();
        assert_eq!(j["counts"]["delete"], 1);
        assert_eq!(j["clips"]["hot"], 2);
    }
}
