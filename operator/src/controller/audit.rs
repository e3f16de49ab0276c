//! The EvidenceBucket controller's audit wiring: where a bucket's chain lives, the
//! records of policy and hold changes, the opt-in integrity sweep, and the
//! `AuditTrail` / `IntegrityVerified` conditions. The chain itself (format, writer,
//! verifier) is [`crate::audit`]; the sweep writes clip records through [`CountingSink`].

use kube::{ResourceExt, runtime::events::EventType};
use tracing::warn;

use super::{Context, Error, key_of, status::Cond};
use crate::{
    api::{
        EvidenceBucket, LegalHold, RetentionPolicy,
        clip::{Clip, Tier},
    },
    audit::{
        AuditAction, AuditLog, AuditSink, AuditTarget, BucketAudit, Entry, ObjectInfo, Receipt,
        integrity::{Integrity, measure},
    },
};

/// Where a bucket's audit chain lives: `<audit prefix><namespace>/<name>/` in its
/// legal-hold bucket, with COMPLIANCE retention.
pub(super) fn audit_target(eb: &EvidenceBucket, ctx: &Context) -> AuditTarget {
    audit_target_for(
        eb,
        &ctx.settings.audit_prefix,
        Some(ctx.settings.audit_retention),
    )
}

/// Where the audit chain of an EvidenceBucket lives under a root prefix (ending in `/`).
pub fn audit_target_for(
    eb: &EvidenceBucket,
    root: &str,
    retention: Option<chrono::TimeDelta>,
) -> AuditTarget {
    AuditTarget {
        bucket: eb.spec.tiers.legal_hold.bucket.clone(),
        prefix: format!(
            "{root}{}/{}/",
            eb.namespace().unwrap_or_default(),
            eb.name_any()
        ),
        retention,
    }
}

/// The head (batch, hash) an EvidenceBucket's `AuditTrail` condition reports, if any.
pub fn reported_head(eb: &EvidenceBucket) -> Option<(u64, String)> {
    let cond = eb
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == AUDIT_TRAIL && c.reason == "Recorded")?;
    let batch = cond
        .message
        .split("batch=")
        .nth(1)?
        .split_whitespace()
        .next()?;
    let hash = cond
        .message
        .split("hash=")
        .nth(1)?
        .split_whitespace()
        .next()?;
    Some((batch.parse().ok()?, hash.to_string()))
}

/// The key prefixes (relative to each tier's prefix) that hold the operator's own
/// objects, not clips: the audit root `root`, in every tier that shares the legal-hold
/// bucket, and the storage claims (`.evidence-claims/`) in every tier whose prefix
/// includes them. The sweep and `evidence-operator plan` skip them alike.
pub(crate) fn audit_skips(eb: &EvidenceBucket, root: &str) -> Vec<(Tier, String)> {
    let mut skips = audit_chain_skips(eb, root);
    let tiers = &eb.spec.tiers;
    for (tier, t) in [
        (Tier::Hot, &tiers.hot),
        (Tier::Cool, &tiers.cool),
        (Tier::LegalHold, &tiers.legal_hold),
    ] {
        let prefix = t.prefix.clone().unwrap_or_default();
        if let Some(rel) = crate::storage::claim::CLAIMS_PREFIX.strip_prefix(prefix.as_str()) {
            skips.push((tier, rel.to_string()));
        }
    }
    skips
}

/// The audit chain part of [`audit_skips`].
fn audit_chain_skips(eb: &EvidenceBucket, root: &str) -> Vec<(Tier, String)> {
    let tiers = &eb.spec.tiers;
    [
        (Tier::Hot, &tiers.hot),
        (Tier::Cool, &tiers.cool),
        (Tier::LegalHold, &tiers.legal_hold),
    ]
    .into_iter()
    .filter(|(_, t)| t.bucket == tiers.legal_hold.bucket)
    .filter_map(|(tier, t)| {
        let prefix = t.prefix.clone().unwrap_or_default();
        root.strip_prefix(prefix.as_str())
            .map(|rel| (tier, rel.to_string()))
    })
    .collect()
}

/// Condition type: the audit trail records this bucket's actions; the message names the
/// chain and its head (`batch=<n> hash=<sha256>`), which `audit verify --bucket` checks.
pub const AUDIT_TRAIL: &str = "AuditTrail";
/// Condition type: the last integrity sweep's sample matched the recorded SHA-256s.
pub const INTEGRITY_VERIFIED: &str = "IntegrityVerified";

/// An [`AuditSink`] that also counts what it wrote.
pub(super) struct CountingSink<'a> {
    /// The bucket's chain writer.
    pub(super) inner: BucketAudit<'a>,
    /// For the audit metrics.
    pub(super) ctx: &'a Context,
}

#[async_trait::async_trait]
impl AuditSink for CountingSink<'_> {
    async fn record(
        &self,
        entries: Vec<Entry>,
    ) -> Result<Option<Receipt>, crate::audit::AuditError> {
        let actions: Vec<AuditAction> = entries.iter().map(|e| e.action).collect();
        let result = self.inner.record(entries).await;
        match &result {
            Ok(Some(_)) => {
                for a in actions {
                    self.ctx
                        .audit_metrics
                        .records
                        .with_label_values(&[a.as_str()])
                        .inc();
                }
                self.ctx
                    .audit_metrics
                    .batches
                    .with_label_values(&[&self.inner.bucket])
                    .inc();
            }
            Ok(None) => {}
            Err(_) => self
                .ctx
                .audit_metrics
                .write_failures
                .with_label_values(&[&self.inner.bucket])
                .inc(),
        }
        result
    }
}

/// Who manages an object's spec, from `metadata.managedFields`: every manager of a
/// non-status field, and the one with the latest change to `spec`.
pub(super) fn managers(meta: &kube::api::ObjectMeta) -> (Vec<String>, Option<String>) {
    let mut all = Vec::new();
    let mut latest: Option<(String, String)> = None;
    for mf in meta.managed_fields.iter().flatten() {
        if mf.subresource.as_deref().is_some_and(|s| !s.is_empty()) {
            continue;
        }
        let Some(name) = mf.manager.clone() else {
            continue;
        };
        let touches_spec = mf
            .fields_v1
            .as_ref()
            .and_then(|f| serde_json::to_string(&f.0).ok())
            .is_some_and(|f| f.contains("\"f:spec\""));
        if !touches_spec {
            continue;
        }
        if !all.contains(&name) {
            all.push(name.clone());
        }
        let time = mf
            .time
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default();
        if latest.as_ref().is_none_or(|(t, _)| time >= *t) {
            latest = Some((time, name));
        }
    }
    all.sort();
    (all, latest.map(|(_, n)| n))
}

/// Audit entries for the policy and holds whose current generation this replica has not
/// recorded yet; and the (uid, generation) pairs to remember once they are written.
pub(super) async fn policy_entries(
    ctx: &Context,
    key: &str,
    policy: &RetentionPolicy,
    holds: &[&LegalHold],
) -> (Vec<Entry>, Vec<(String, i64)>) {
    let recorded = ctx
        .policies_recorded
        .lock()
        .await
        .get(key)
        .cloned()
        .unwrap_or_default();
    let mut objects: Vec<(&kube::api::ObjectMeta, &str, Option<&str>)> =
        vec![(&policy.metadata, "RetentionPolicy", None)];
    for h in holds {
        objects.push((
            &h.metadata,
            "LegalHold",
            Some(h.spec.case_reference.as_str()),
        ));
    }
    let mut entries = Vec::new();
    let mut seen = Vec::new();
    for (meta, kind, case) in objects {
        let Some(uid) = meta.uid.clone() else {
            continue;
        };
        let generation = meta.generation.unwrap_or(0);
        let name = format!(
            "{}/{}",
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default()
        );
        let (all, changed_by) = managers(meta);
        let before = recorded.get(&uid).copied();
        let first_seen = |generation: i64| {
            if generation <= 1 {
                (
                    AuditAction::PolicyCreated,
                    format!("{kind} {name} in force (generation {generation})"),
                )
            } else {
                (
                    AuditAction::PolicyChanged,
                    format!(
                        "{kind} {name} in force at generation {generation} (first seen by this replica)"
                    ),
                )
            }
        };
        let (steps, mark) = if let Some(t) = &meta.deletion_timestamp {
            if before == Some(-1) {
                continue;
            }
            let deleted = (
                AuditAction::PolicyDeleted,
                format!(
                    "{kind} {name} deleted at {} (the API server's audit log names the requester)",
                    t.0
                ),
            );
            // One that came and went between two looks (created and deleted while a
            // sweep ran) is in the chain as in force before it is deleted: at the
            // generation before its deletion (which counts as a change of a custom
            // resource's generation).
            match before {
                None => (vec![first_seen((generation - 1).max(1)), deleted], -1),
                Some(_) => (vec![deleted], -1),
            }
        } else {
            match before {
                Some(g) if g == generation => continue,
                Some(g) => (
                    vec![(
                        AuditAction::PolicyChanged,
                        format!("{kind} {name} changed: generation {g} -> {generation}"),
                    )],
                    generation,
                ),
                None => (vec![first_seen(generation)], generation),
            }
        };
        for (action, reason) in steps {
            let mut e = Entry::policy(
                action,
                ObjectInfo {
                    kind: kind.to_string(),
                    name: name.clone(),
                    uid: Some(uid.clone()),
                    generation: meta.generation,
                    managers: all.clone(),
                    changed_by: changed_by.clone(),
                },
                reason,
            );
            if let Some(case) = case {
                e.holds = vec![meta.name.clone().unwrap_or_default()];
                e.cases = vec![case.to_string()];
            }
            entries.push(e);
        }
        seen.push((uid, mark));
    }
    (entries, seen)
}

/// Remember, for the bucket `key`, the policy and hold generations [`policy_entries`]
/// returned, once their records are written.
pub(super) async fn remember_recorded(ctx: &Context, key: &str, seen: Vec<(String, i64)>) {
    ctx.policies_recorded
        .lock()
        .await
        .entry(key.to_string())
        .or_default()
        .extend(seen);
}

/// What the integrity sweep found.
#[derive(Debug, Default)]
pub struct IntegrityFound {
    /// Clips re-read and compared.
    pub checked: u64,
    /// Keys whose content no longer matches.
    pub mismatches: Vec<String>,
    /// The chain head after the results were recorded.
    pub head: Option<(u64, String)>,
}

/// Re-read the sampled clips, compare their SHA-256 with the recorded one, record the
/// results in the audit trail; a mismatch raises an event and the alert metric. Nothing
/// is ever deleted or moved here.
pub(super) async fn integrity_sweep(
    log: &AuditLog,
    sink: &dyn AuditSink,
    ctx: &Context,
    eb: &EvidenceBucket,
    sample: &[Clip],
) -> Result<IntegrityFound, Error> {
    let key = key_of(eb);
    let mut found = IntegrityFound {
        checked: 0,
        mismatches: Vec::new(),
        head: None,
    };
    let mut entries = Vec::new();
    for clip in sample {
        let loc = match clip.tier {
            Tier::Hot => &eb.spec.tiers.hot,
            Tier::Cool => &eb.spec.tiers.cool,
            Tier::LegalHold => &eb.spec.tiers.legal_hold,
        };
        let object = format!("{}{}", loc.prefix.clone().unwrap_or_default(), clip.key);
        let result = measure(log, &loc.bucket, &object, clip.version_id.as_deref()).await;
        let clip_ref = crate::audit::ClipRef {
            key: clip.key.clone(),
            version_id: clip.version_id.clone(),
            size: clip.size,
        };
        let label = match result {
            Ok(Integrity::Match { sha256 }) => {
                found.checked += 1;
                let mut e = Entry::clip(
                    AuditAction::IntegrityVerified,
                    clip_ref,
                    Some(clip.tier),
                    "integrity sweep: content re-read; its SHA-256 matches the recorded one",
                );
                e.sha256 = Some(sha256);
                entries.push(e);
                "match"
            }
            Ok(Integrity::Mismatch { recorded, actual }) => {
                found.checked += 1;
                found.mismatches.push(clip.key.clone());
                let mut e = Entry::clip(
                    AuditAction::IntegrityMismatch,
                    clip_ref,
                    Some(clip.tier),
                    format!(
                        "integrity sweep: content re-read hashes to {actual}, but {recorded} is recorded; \
                         the clip is kept (never deleted for this) and an alert raised"
                    ),
                );
                e.sha256 = Some(actual);
                entries.push(e);
                "mismatch"
            }
            Ok(Integrity::NotRecorded { .. }) => "unrecorded",
            Ok(Integrity::Gone) => "gone",
            Err(e) => {
                warn!(bucket = %key, clip = %clip.key, error = %e, "integrity re-read failed");
                "error"
            }
        };
        ctx.audit_metrics
            .integrity_checks
            .with_label_values(&[label])
            .inc();
    }
    if !entries.is_empty() {
        let receipt = sink.record(entries).await.map_err(|source| Error::Audit {
            bucket: key.clone(),
            source,
        })?;
        found.head = receipt.map(|r| (r.batch, r.head));
    }
    ctx.audit_metrics
        .integrity_mismatches
        .with_label_values(&[&key])
        .set(i64::try_from(found.mismatches.len()).unwrap_or(i64::MAX));
    if !found.mismatches.is_empty() {
        ctx.event(
            eb,
            EventType::Warning,
            "IntegrityMismatch",
            "Verify",
            format!(
                "{} clip(s) no longer match their recorded SHA-256 (kept; investigate): {}",
                found.mismatches.len(),
                found.mismatches.join(", ")
            ),
        )
        .await;
    }
    Ok(found)
}

/// The `AuditTrail` condition: where the chain is and its head.
pub(super) async fn audit_condition(log: &AuditLog, written: Option<(u64, String)>) -> Cond {
    let t = log.target();
    let head = match written {
        Some(h) => Ok(h),
        None => log
            .head()
            .await
            .map(|h| (h.next_batch.saturating_sub(1), h.hash)),
    };
    match head {
        Ok((_, hash)) if hash == crate::audit::record::GENESIS => Cond::yes(
            AUDIT_TRAIL,
            "Empty",
            format!("chain s3://{}/{} has no record yet", t.bucket, t.prefix),
        ),
        Ok((batch, hash)) => Cond::yes(
            AUDIT_TRAIL,
            "Recorded",
            format!(
                "chain s3://{}/{} head batch={batch} hash={hash}",
                t.bucket, t.prefix
            ),
        ),
        Err(e) => Cond::unknown(AUDIT_TRAIL, "HeadUnknown", e.to_string()),
    }
}

/// The `IntegrityVerified` condition for what the integrity sweep found.
pub(super) fn integrity_condition(found: &IntegrityFound) -> Cond {
    if found.mismatches.is_empty() {
        Cond::yes(
            INTEGRITY_VERIFIED,
            "SampleMatched",
            format!(
                "{} sampled clip(s) re-read; every SHA-256 matched the recorded one",
                found.checked
            ),
        )
    } else {
        Cond::no(
            INTEGRITY_VERIFIED,
            "ChecksumMismatch",
            format!(
                "{} of {} sampled clip(s) do not match their recorded SHA-256 (kept, never deleted for this): {}",
                found.mismatches.len(),
                found.checked,
                found.mismatches.join(", ")
            ),
        )
    }
}
