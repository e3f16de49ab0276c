//! The EvidenceBucket controller: a thin driver.
//!
//! read (bucket, policy, holds, credentials) → check region → list tiers → plan (engine)
//! → apply (storage) → report (status by server-side apply, events, metrics) → requeue at
//! the next moment something becomes due.
//!
//! Deleting an EvidenceBucket never deletes evidence: the bucket carries no finalizer,
//! and once it is gone the operator simply stops managing its storage.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::{api::core::v1::Secret, jiff::Timestamp};
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{Controller, controller::Action, events::EventType, reflector::ObjectRef, watcher},
};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{
    Context, Error, MANAGER, api_for,
    audit::{
        CountingSink, audit_condition, audit_skips, audit_target, integrity_condition,
        integrity_sweep, policy_entries,
    },
    error_policy, key_of,
    status::{
        self, CATEGORIES_KNOWN, Cond, POLICY_RESOLVED, READY, RECONCILING, REGION_VERIFIED, STALLED,
    },
    sweep::{self, SweepAudit, SweepOptions, SweepOutcome},
};
use crate::{
    api::{EvidenceBucket, LegalHold, RetentionPolicy, clip::Tier},
    audit::{AuditLog, AuditSink, BucketAudit},
    engine::{ActiveHold, Planner},
    storage::{
        BucketConfig, S3TierStore, StaticCredentials, StorageError, TierLocation, TierStore, Tiers,
    },
};

const CONTROLLER: &str = "evidencebucket";

/// Run the EvidenceBucket controller for one namespace (or all) until `stop`.
pub async fn controller(ctx: Arc<Context>, ns: Option<String>, stop: CancellationToken) {
    let client = ctx.client.clone();
    let buckets = api_for::<EvidenceBucket>(client.clone(), ns.as_deref());
    let policies = api_for::<RetentionPolicy>(client.clone(), ns.as_deref());
    let holds = api_for::<LegalHold>(client.clone(), ns.as_deref());
    let ctrl = Controller::new(buckets, watcher::Config::default());
    let store = ctrl.store();
    let by_policy = store.clone();
    ctrl.watches(
        policies,
        watcher::Config::default(),
        move |policy: RetentionPolicy| {
            let ns = policy.namespace();
            let name = policy.name_any();
            by_policy
                .state()
                .into_iter()
                .filter(|b| b.namespace() == ns && b.spec.retention_policy_ref.name == name)
                .map(|b| ObjectRef::from_obj(&*b))
                .collect::<Vec<_>>()
        },
    )
    .watches(holds, watcher::Config::default(), |hold: LegalHold| {
        hold.namespace()
            .map(|ns| ObjectRef::<EvidenceBucket>::new(&hold.spec.bucket_ref.name).within(&ns))
    })
    .graceful_shutdown_on(async move { stop.cancelled().await })
    .run(reconcile, error_policy(CONTROLLER), ctx)
    .for_each(|result| async move {
        if let Err(e) = result {
            tracing::debug!(error = %e, "evidencebucket reconcile result");
        }
    })
    .await;
}

async fn reconcile(eb: Arc<EvidenceBucket>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started(CONTROLLER);
    if eb.metadata.deletion_timestamp.is_some() {
        // No finalizer on buckets: deleting one stops management, never deletes evidence.
        return Ok(Action::await_change());
    }
    let lock = ctx.bucket_lock(&key_of(&*eb)).await;
    let _guard = lock.lock().await;
    Ok(sweep_bucket(&eb, &ctx, false).await?.action)
}

/// The result of [`sweep_bucket`].
pub struct Swept {
    /// When to reconcile again.
    pub action: Action,
    /// Whether a sweep ran to the end with every action done (no failure, no interruption).
    pub complete: bool,
}

impl Swept {
    fn incomplete(action: Action) -> Self {
        Swept {
            action,
            complete: false,
        }
    }
}

/// Everything the operator does to one bucket, under the bucket's lock. Also called by
/// the LegalHold finalizer to release a deleted hold's clips.
///
/// `force` sweeps even when the inputs are unchanged and nothing is due yet.
pub async fn sweep_bucket(eb: &EvidenceBucket, ctx: &Context, force: bool) -> Result<Swept, Error> {
    let ns = eb.namespace().unwrap_or_default();
    let name = eb.name_any();
    let key = key_of(eb);
    let buckets: Api<EvidenceBucket> = Api::namespaced(ctx.client.clone(), &ns);
    let interval = eb.spec.sweep_interval.as_std();

    if eb.spec.suspend {
        let message = "spec.suspend is true: the operator takes no action on this bucket";
        patch_status(
            &buckets,
            eb,
            &[
                Cond::no(READY, "Suspended", message),
                Cond::no(RECONCILING, "Suspended", message),
                Cond::no(STALLED, "Suspended", message),
            ],
            None,
        )
        .await?;
        return Ok(Swept::incomplete(Action::await_change()));
    }

    // UK only, by declaration: refused before any storage call.
    if !ctx.settings.allowed_regions.contains(&eb.spec.region) {
        let message = format!(
            "declared region {:?} is not an allowed UK region (allowed: {}); nothing will be written to this bucket",
            eb.spec.region, ctx.settings.allowed_regions
        );
        return refuse_region(&buckets, eb, ctx, &key, message, interval)
            .await
            .map(Swept::incomplete);
    }

    // The policy.
    let policies: Api<RetentionPolicy> = Api::namespaced(ctx.client.clone(), &ns);
    let policy_name = &eb.spec.retention_policy_ref.name;
    let Some(policy) = policies.get_opt(policy_name).await? else {
        let message = format!(
            "RetentionPolicy {ns}/{policy_name} does not exist; no clip is touched until it does"
        );
        let mut conds = status::stalled("PolicyNotFound", &message).to_vec();
        conds.push(Cond::no(POLICY_RESOLVED, "PolicyNotFound", &message));
        patch_status(&buckets, eb, &conds, None).await?;
        ctx.event(eb, EventType::Warning, "PolicyNotFound", "Resolve", message)
            .await;
        return Ok(Swept::incomplete(Action::requeue(Duration::from_secs(300))));
    };

    // Active holds: those referencing this bucket and not being deleted.
    let holds_api: Api<LegalHold> = Api::namespaced(ctx.client.clone(), &ns);
    let all_holds = holds_api.list(&Default::default()).await?;
    let mine: Vec<&LegalHold> = all_holds
        .items
        .iter()
        .filter(|h| h.spec.bucket_ref.name == name)
        .collect();
    // A hold takes effect once it carries the release finalizer (added by the LegalHold
    // controller): the finalizer exists before the external state it protects, so every
    // clip held for a case is released, and recorded as released for that case.
    let active: Vec<ActiveHold> = mine
        .iter()
        .filter(|h| has_release_finalizer(h))
        .filter_map(|h| ActiveHold::from_legal_hold(h))
        .collect();

    // Skip the sweep when nothing it depends on changed and nothing is due yet.
    let inputs = sweep_inputs(eb, &policy, &mine);
    let not_due = if force {
        None
    } else {
        ctx.sweep_not_due(&key, &inputs).await
    };
    if let Some(wait) = not_due {
        return Ok(Swept::incomplete(Action::requeue(wait)));
    }

    let now = ctx.settings.now();
    let planner = match Planner::new(&policy.spec, &active, now) {
        Ok(p) => p,
        Err(e) => {
            let message = format!(
                "RetentionPolicy {ns}/{policy_name} cannot be used: {e}; no clip is touched"
            );
            let mut conds = status::stalled("PolicyInvalid", &message).to_vec();
            conds.push(Cond::no(POLICY_RESOLVED, "PolicyInvalid", &message));
            patch_status(&buckets, eb, &conds, None).await?;
            ctx.event(eb, EventType::Warning, "PolicyInvalid", "Resolve", message)
                .await;
            return Ok(Swept::incomplete(Action::requeue(Duration::from_secs(300))));
        }
    };

    let (store, audit_log) = match store_for(eb, ctx).await {
        Ok(found) => found,
        Err(Error::Invalid { reason, message }) => {
            let mut conds = status::stalled(reason, &message).to_vec();
            conds.push(Cond::yes(
                POLICY_RESOLVED,
                "PolicyFound",
                format!("using RetentionPolicy {policy_name}"),
            ));
            patch_status(&buckets, eb, &conds, None).await?;
            ctx.event(eb, EventType::Warning, reason, "Configure", message)
                .await;
            return Ok(Swept::incomplete(Action::requeue(Duration::from_secs(60))));
        }
        Err(Error::Storage(e @ StorageError::EndpointNotAllowed { .. })) => {
            return refuse_region(&buckets, eb, ctx, &key, e.to_string(), interval)
                .await
                .map(Swept::incomplete);
        }
        Err(e) => return Err(e),
    };

    // UK only, by proof: every tier bucket's actual location.
    match store.verify_region().await {
        Ok(_) => {}
        Err(e @ StorageError::RegionNotAllowed { .. }) => {
            return refuse_region(&buckets, eb, ctx, &key, e.to_string(), interval)
                .await
                .map(Swept::incomplete);
        }
        Err(e @ StorageError::ObjectLockMissing { .. }) => {
            let message =
                format!("{e}; nothing is moved until the legal-hold bucket has Object Lock");
            let mut conds = status::stalled("ObjectLockMissing", &message).to_vec();
            conds.push(Cond::yes(
                POLICY_RESOLVED,
                "PolicyFound",
                format!("using RetentionPolicy {policy_name}"),
            ));
            patch_status(&buckets, eb, &conds, None).await?;
            ctx.event(
                eb,
                EventType::Warning,
                "ObjectLockMissing",
                "Verify",
                message,
            )
            .await;
            return Ok(Swept::incomplete(Action::requeue(interval)));
        }
        Err(e) => return Err(e.into()),
    }

    // Policy changes seen since the last record (written before any action they cause).
    let sink = CountingSink {
        inner: BucketAudit {
            log: audit_log.as_ref(),
            actor: ctx.settings.actor(),
            bucket: key.clone(),
        },
        ctx,
    };
    let mut audit_head = None;
    let (policy_entries, seen) = policy_entries(ctx, &key, &policy, &mine).await;
    if !policy_entries.is_empty() {
        match sink.record(policy_entries).await {
            Ok(receipt) => {
                audit_head = receipt.map(|r| (r.batch, r.head));
                ctx.policies_recorded
                    .lock()
                    .await
                    .entry(key.clone())
                    .or_default()
                    .extend(seen);
            }
            Err(e) => return Err(e.into()),
        }
    }

    // Sweep.
    let started = Timestamp::now();
    let opts = SweepOptions {
        concurrency: ctx.settings.move_concurrency,
        skip: audit_skips(eb, &ctx.settings.audit_prefix),
        integrity_sample: ctx.settings.integrity_sample,
    };
    let releasing_holds: Vec<ActiveHold> = mine
        .iter()
        .filter(|h| h.metadata.deletion_timestamp.is_some())
        .map(|h| ActiveHold {
            name: h.name_any(),
            case_reference: h.spec.case_reference.clone(),
            selector: h.spec.selector.clone(),
        })
        .collect();
    let releasing = if releasing_holds.is_empty() {
        None
    } else {
        Planner::new(&policy.spec, &releasing_holds, now).ok()
    };
    let flagged_before = ctx
        .flags_recorded
        .lock()
        .await
        .get(&key)
        .cloned()
        .unwrap_or_default();
    let sweep_audit = SweepAudit {
        sink: &sink,
        cases: mine
            .iter()
            .map(|h| (h.name_any(), h.spec.case_reference.clone()))
            .collect(),
        releasing: releasing.as_ref(),
        flagged_before: &flagged_before,
    };
    let swept = sweep::sweep(store.as_ref(), &planner, &opts, &ctx.draining, &sweep_audit).await;
    let mut outcome = match swept {
        Ok(o) => o,
        Err(e) => {
            if matches!(e, sweep::SweepError::Audit(_)) {
                let message = format!("{e}; the sweep stopped so that no action goes unrecorded");
                ctx.event(eb, EventType::Warning, "AuditWriteFailed", "Audit", message)
                    .await;
            }
            return Err(e.into());
        }
    };
    if !outcome.flags_recorded.is_empty() {
        ctx.flags_recorded
            .lock()
            .await
            .entry(key.clone())
            .or_default()
            .extend(outcome.flags_recorded.drain(..));
    }
    if let Some(h) = outcome.audit_head.clone() {
        audit_head = Some(h);
    }

    // Integrity sweep (opt-in): re-read a sample, compare, record; never delete.
    let integrity = if ctx.settings.integrity_sample > 0 && !ctx.draining.is_cancelled() {
        let found = integrity_sweep(&audit_log, &sink, ctx, eb, &outcome.sample).await?;
        if let Some(h) = found.head.clone() {
            audit_head = Some(h);
        }
        Some(found)
    } else {
        None
    };
    let finished = Timestamp::now();
    info!(bucket = %key, moved = outcome.moved, held = outcome.held, released = outcome.released,
          deleted = outcome.deleted, flagged = outcome.flagged, failed = outcome.failed,
          interrupted = outcome.interrupted, "sweep finished");

    report_metrics(ctx, &key, &outcome);
    publish_events(ctx, eb, &outcome).await;

    // When next: the earliest due clip, the sweep interval, sooner after failures.
    let mut wait = interval;
    if let Some(due) = outcome.next_due {
        let until = (due - ctx.settings.now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        wait = wait.min(until);
    }
    if outcome.failed > 0 || outcome.interrupted {
        wait = wait.min(Duration::from_secs(30));
    }
    let wait = wait.max(ctx.settings.min_requeue);
    let next = Timestamp::now()
        .checked_add(jiff_span(wait))
        .unwrap_or(Timestamp::MAX);

    let audit_cond = audit_condition(&audit_log, audit_head).await;
    let mut conds = sweep_conditions(eb, policy_name, &outcome, audit_cond);
    conds.extend(integrity.as_ref().map(integrity_condition));
    let sweep_status = sweep_status(&outcome, started, finished, next);
    patch_status(&buckets, eb, &conds, Some(sweep_status)).await?;

    // Each hold's count of held clips.
    for hold in mine
        .iter()
        .filter(|h| h.metadata.deletion_timestamp.is_none())
    {
        let held = outcome.held_by.get(&hold.name_any()).copied().unwrap_or(0);
        super::legal_hold::patch_held(
            &holds_api,
            hold,
            held,
            &format!(
                "{held} clip(s) of EvidenceBucket {name} are under legal hold for case {}",
                hold.spec.case_reference
            ),
        )
        .await?;
    }
    ctx.record_sweep(&key, inputs, wait).await;
    Ok(Swept {
        action: Action::requeue(wait),
        complete: outcome.failed == 0 && !outcome.interrupted,
    })
}

/// The conditions after a sweep that ran (pure).
fn sweep_conditions(
    eb: &EvidenceBucket,
    policy_name: &str,
    outcome: &SweepOutcome,
    audit_cond: Cond,
) -> Vec<Cond> {
    let region_ok = Cond::yes(
        REGION_VERIFIED,
        "RegionVerified",
        format!(
            "every tier bucket is in region {} (allowed UK region)",
            eb.spec.region
        ),
    );
    let policy_ok = Cond::yes(
        POLICY_RESOLVED,
        "PolicyFound",
        format!("using RetentionPolicy {policy_name}"),
    );
    let categories = categories_condition(policy_name, outcome);
    let summary = summary_text(outcome);
    if outcome.failed == 0 && !outcome.interrupted {
        vec![
            Cond::yes(
                READY,
                "SweepComplete",
                format!("storage matches policy: {summary}"),
            ),
            Cond::no(RECONCILING, "SweepComplete", "waiting for the next sweep"),
            Cond::no(STALLED, "SweepComplete", "making progress"),
            region_ok,
            policy_ok,
            audit_cond,
            categories,
        ]
    } else {
        let why = if outcome.interrupted {
            "interrupted by shutdown".to_string()
        } else {
            format!(
                "{} action(s) failed and will be retried; the clips stay where they are: {}",
                outcome.failed,
                outcome.messages.join("; ")
            )
        };
        vec![
            Cond::no(READY, "SweepIncomplete", format!("{summary}; {why}")),
            Cond::yes(RECONCILING, "RetryPending", why.clone()),
            Cond::no(STALLED, "RetryPending", "retrying"),
            region_ok,
            policy_ok,
            audit_cond,
            categories,
        ]
    }
}

/// `CategoriesKnown`: whether every tagged category is one the policy names (pure).
fn categories_condition(policy_name: &str, outcome: &SweepOutcome) -> Cond {
    if outcome.unknown_category_clips == 0 {
        return Cond::yes(
            CATEGORIES_KNOWN,
            "AllCategoriesKnown",
            format!("every tagged category is named by RetentionPolicy {policy_name}"),
        );
    }
    Cond::no(
        CATEGORIES_KNOWN,
        "UnknownCategories",
        format!(
            "{} clip(s) carry a category RetentionPolicy {policy_name} does not name, so its \
             default rule applies to them; fix the tag or add the category: {}",
            outcome.unknown_category_clips,
            unknown_categories_text(outcome)
        ),
    )
}

fn unknown_categories_text(outcome: &SweepOutcome) -> String {
    let mut names: Vec<String> = outcome
        .unknown_categories
        .iter()
        .map(|(c, n)| format!("{c:?} ({n})"))
        .collect();
    let listed: u64 = outcome.unknown_categories.values().sum();
    if listed < outcome.unknown_category_clips {
        names.push(format!(
            "and {} more clip(s) in other categories",
            outcome.unknown_category_clips - listed
        ));
    }
    names.join(", ")
}

/// The status fields a sweep reports besides the conditions (pure).
fn sweep_status(
    outcome: &SweepOutcome,
    started: Timestamp,
    finished: Timestamp,
    next: Timestamp,
) -> serde_json::Value {
    json!({
        "lastSweep": {
            "startTime": started.to_string(),
            "endTime": finished.to_string(),
            "moved": outcome.moved,
            "deleted": outcome.deleted,
            "held": outcome.held,
            "released": outcome.released,
            "flagged": outcome.flagged + outcome.malformed,
            "failed": outcome.failed,
        },
        "nextSweepTime": next.to_string(),
        "pendingReview": outcome.flagged,
        "malformed": outcome.malformed,
        "tiers": tier_status(outcome),
    })
}

/// Whether a LegalHold carries the finalizer that guarantees its clips' release.
fn has_release_finalizer(hold: &LegalHold) -> bool {
    hold.finalizers()
        .iter()
        .any(|f| f == crate::api::legal_hold::FINALIZER)
}

/// What a sweep's plan depends on, besides storage and the clock: the bucket's spec,
/// the policy's spec, and the holds that reference the bucket.
fn sweep_inputs(eb: &EvidenceBucket, policy: &RetentionPolicy, holds: &[&LegalHold]) -> String {
    let mut parts = vec![
        format!("bucket {:?}/{:?}", eb.metadata.uid, eb.metadata.generation),
        format!(
            "policy {:?}/{:?}",
            policy.metadata.uid, policy.metadata.generation
        ),
    ];
    let mut hs: Vec<String> = holds
        .iter()
        .map(|h| {
            format!(
                "hold {:?}/{:?}/{}/{}",
                h.metadata.uid,
                h.metadata.generation,
                h.metadata.deletion_timestamp.is_some(),
                has_release_finalizer(h)
            )
        })
        .collect();
    hs.sort();
    parts.extend(hs);
    parts.join(";")
}

fn jiff_span(d: Duration) -> k8s_openapi::jiff::SignedDuration {
    k8s_openapi::jiff::SignedDuration::try_from(d).unwrap_or(k8s_openapi::jiff::SignedDuration::MAX)
}

fn summary_text(o: &SweepOutcome) -> String {
    let t = |tier| o.totals.get(&tier).copied().unwrap_or_default().clips;
    format!(
        "{} hot, {} cool, {} in legal hold; last sweep moved {}, held {}, released {}, deleted {}, flagged {}",
        t(Tier::Hot),
        t(Tier::Cool),
        t(Tier::LegalHold),
        o.moved,
        o.held,
        o.released,
        o.deleted,
        o.flagged + o.malformed
    )
}

fn tier_status(o: &SweepOutcome) -> serde_json::Value {
    let t = |tier| {
        let v = o.totals.get(&tier).copied().unwrap_or_default();
        json!({ "clips": v.clips.max(0), "bytes": v.bytes.max(0) })
    };
    json!({ "hot": t(Tier::Hot), "cool": t(Tier::Cool), "legalHold": t(Tier::LegalHold) })
}

fn report_metrics(ctx: &Context, key: &str, o: &SweepOutcome) {
    for (tier, totals) in &o.totals {
        ctx.metrics
            .clips
            .with_label_values(&[key, tier.as_str()])
            .set(totals.clips.max(0));
        ctx.metrics
            .bytes
            .with_label_values(&[key, tier.as_str()])
            .set(totals.bytes.max(0));
    }
    ctx.metrics
        .pending_review
        .with_label_values(&[key])
        .set(i64::try_from(o.flagged).unwrap_or(i64::MAX));
    for (kind, n) in o.action_counts() {
        if n > 0 {
            let outcome = if kind == "failed" { "failed" } else { "ok" };
            ctx.metrics
                .actions
                .with_label_values(&[kind, outcome])
                .inc_by(n);
        }
    }
}

/// One event per action class per sweep, with the count (not one per clip).
async fn publish_events(ctx: &Context, eb: &EvidenceBucket, o: &SweepOutcome) {
    let classes = [
        (
            o.moved,
            "Moved",
            "Move",
            "clip(s) moved from hot to cool (copied, SHA-256 verified, source deleted)",
        ),
        (o.held, "Held", "Hold", "clip(s) placed under legal hold"),
        (
            o.released,
            "Released",
            "Release",
            "clip(s) released from legal hold back to the cool tier",
        ),
        (
            o.deleted,
            "Deleted",
            "Delete",
            "clip(s) deleted: retention ran out and no hold applies",
        ),
        (
            o.flagged,
            "FlaggedForReview",
            "Review",
            "clip(s) past their retention period await a person's review decision (kept)",
        ),
        (
            o.malformed,
            "MalformedMetadata",
            "Review",
            "clip(s) have malformed metadata tags (kept and flagged)",
        ),
    ];
    for (n, reason, action, text) in classes {
        if n > 0 {
            ctx.event(eb, EventType::Normal, reason, action, format!("{n} {text}"))
                .await;
        }
    }
    if o.failed > 0 {
        ctx.event(
            eb,
            EventType::Warning,
            "ActionsFailed",
            "Sweep",
            format!(
                "{} action(s) failed and will be retried; nothing was lost: {}",
                o.failed,
                o.messages.join("; ")
            ),
        )
        .await;
    }
    if o.unknown_category_clips > 0 {
        ctx.event(
            eb,
            EventType::Warning,
            "UnknownCategories",
            "Plan",
            format!(
                "{} clip(s) carry a category the policy does not name; the default rule applies: {}",
                o.unknown_category_clips,
                unknown_categories_text(o)
            ),
        )
        .await;
    }
    if o.checksum_mismatches > 0 {
        ctx.event(
            eb,
            EventType::Warning,
            "ChecksumMismatch",
            "Verify",
            format!(
                "{} copy/copies did not match the source's SHA-256; the sources were kept",
                o.checksum_mismatches
            ),
        )
        .await;
    }
}

async fn refuse_region(
    buckets: &Api<EvidenceBucket>,
    eb: &EvidenceBucket,
    ctx: &Context,
    key: &str,
    message: String,
    interval: Duration,
) -> Result<Action, Error> {
    warn!(bucket = %key, %message, "refusing bucket outside the allowed UK regions");
    ctx.metrics
        .region_violations
        .with_label_values(&[key])
        .inc();
    let mut conds = status::stalled("RegionNotAllowed", &message).to_vec();
    conds.push(Cond::no(REGION_VERIFIED, "RegionNotAllowed", &message));
    patch_status(buckets, eb, &conds, None).await?;
    ctx.event(eb, EventType::Warning, "RegionRefused", "Verify", message)
        .await;
    Ok(Action::requeue(interval))
}

/// Server-side apply of the status: the given conditions plus any other status fields.
async fn patch_status(
    api: &Api<EvidenceBucket>,
    eb: &EvidenceBucket,
    conds: &[Cond],
    extra: Option<serde_json::Value>,
) -> Result<(), Error> {
    let previous = eb
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let conditions =
        status::merge_conditions(&previous, conds, eb.metadata.generation, Timestamp::now());
    let mut status = json!({
        "observedGeneration": eb.metadata.generation,
        "conditions": conditions,
    });
    if let (Some(serde_json::Value::Object(fields)), Some(obj)) = (extra, status.as_object_mut()) {
        obj.extend(fields);
    }
    let patch = json!({
        "apiVersion": "evidence.bwv.io/v1alpha1",
        "kind": "EvidenceBucket",
        "status": status,
    });
    api.patch_status(
        &eb.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// The storage of a bucket: built once, rebuilt when its spec or credentials change.
async fn store_for(
    eb: &EvidenceBucket,
    ctx: &Context,
) -> Result<(Arc<dyn TierStore>, Arc<AuditLog>), Error> {
    let cfg = bucket_config(&ctx.client, eb, ctx.settings.allowed_regions.as_slice()).await?;
    let fingerprint = format!("{cfg:?}");
    let key = key_of(eb);
    let mut stores = ctx.stores.lock().await;
    if let Some((_, store, audit)) = stores.get(&key).filter(|(fp, _, _)| *fp == fingerprint) {
        return Ok((store.clone(), audit.clone()));
    }
    let audit = Arc::new(AuditLog::connect(&cfg, audit_target(eb, ctx)).await?);
    let store: Arc<dyn TierStore> = Arc::new(
        S3TierStore::new(
            cfg,
            ctx.settings.store_options.clone(),
            ctx.storage_metrics.clone(),
        )
        .await?,
    );
    stores.insert(key, (fingerprint, store.clone(), audit.clone()));
    Ok((store, audit))
}

/// The storage configuration of an EvidenceBucket: its spec plus the credentials from
/// its Secret (also used by `evidence-operator audit` to reach a bucket's chain).
pub async fn bucket_config(
    client: &kube::Client,
    eb: &EvidenceBucket,
    allowed_regions: &[String],
) -> Result<BucketConfig, Error> {
    let ns = eb.namespace().unwrap_or_default();
    let credentials = match &eb.spec.credentials_secret_ref {
        None => None,
        Some(r) => {
            let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
            let Some(secret) = secrets.get_opt(&r.name).await? else {
                return Err(Error::Invalid {
                    reason: "CredentialsNotFound",
                    message: format!(
                        "Secret {ns}/{} named in spec.credentialsSecretRef does not exist",
                        r.name
                    ),
                });
            };
            let read = |k: &str| -> Result<String, Error> {
                secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(k))
                    .map(|v| String::from_utf8_lossy(&v.0).trim().to_string())
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| Error::Invalid {
                        reason: "CredentialsInvalid",
                        message: format!("Secret {ns}/{} has no key {k:?}", r.name),
                    })
            };
            Some(StaticCredentials {
                access_key_id: read(&r.access_key_id_key)?,
                secret_access_key: read(&r.secret_access_key_key)?,
                session_token: None,
            })
        }
    };
    let loc = |t: &crate::api::evidence_bucket::TierLocation| TierLocation {
        bucket: t.bucket.clone(),
        prefix: t.prefix.clone().unwrap_or_default(),
        storage_class: t.storage_class.clone(),
    };
    let cfg = BucketConfig {
        name: key_of(eb),
        declared_region: eb.spec.region.clone(),
        endpoint: eb.spec.endpoint.clone(),
        force_path_style: eb
            .spec
            .force_path_style
            .unwrap_or(eb.spec.endpoint.is_some()),
        credentials,
        tiers: Tiers {
            hot: loc(&eb.spec.tiers.hot),
            cool: loc(&eb.spec.tiers.cool),
            legal_hold: loc(&eb.spec.tiers.legal_hold),
        },
        allowed_regions: allowed_regions.to_vec(),
    };
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_categories_are_named_counted_and_capped() {
        let mut o = SweepOutcome::default();
        assert_eq!(categories_condition("met", &o).status, "True");
        o.unknown_categories = (0..sweep::MAX_UNKNOWN_CATEGORIES)
            .map(|i| (format!("cat-{i:02}"), 2))
            .collect();
        o.unknown_category_clips = 2 * sweep::MAX_UNKNOWN_CATEGORIES as u64 + 3;
        let c = categories_condition("met", &o);
        assert_eq!(
            (c.status, c.reason.as_str()),
            ("False", "UnknownCategories")
        );
        assert!(c.message.starts_with("23 clip(s)"), "{}", c.message);
        assert!(c.message.contains("\"cat-00\" (2)"), "{}", c.message);
        assert!(
            c.message
                .ends_with("and 3 more clip(s) in other categories"),
            "{}",
            c.message
        );
    }
}
