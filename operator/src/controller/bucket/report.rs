//! Step 4 of a bucket's reconcile: say what happened. The EvidenceBucket's status
//! (typed [`EvidenceBucketStatus`], written by server-side apply), its events, the
//! metrics, and each LegalHold's count of held clips. The conditions and status are
//! built by pure functions; only [`refused`], [`swept`] and [`failed`] do I/O.

use chrono::{DateTime, Utc};
use k8s_openapi::jiff::Timestamp;
use kube::{Api, ResourceExt, runtime::events::EventType};
use tracing::warn;

use super::{apply::SweepReport, export::Answer, refusal::Refusal, validate::ValidatedBucket};
use crate::{
    api::{
        AccessRequest, AccessRequestStatus, EvidenceBucket, LegalHold,
        clip::Tier,
        duration::{DurationUnit, RetentionDuration},
        evidence_bucket::{EvidenceBucketStatus, SweepSummary, TierCount, TierCounts},
        legal_hold::LegalHoldStatus,
    },
    controller::{
        Context, Error,
        audit::{AUDIT_TRAIL, integrity_condition},
        key_of,
        status::{
            CATEGORIES_KNOWN, Cond, POLICY_RESOLVED, READY, RECONCILING, REGION_VERIFIED, STALLED,
            apply_status, merge_conditions, stalled,
        },
        sweep::{self, SweepOutcome},
    },
};

/// Report a refusal: conditions (nothing else in status: the last sweep's counts no
/// longer describe a bucket the operator does not act on), its event, and for a region
/// refusal the violation metric and a warning in the log.
pub async fn refused(ctx: &Context, eb: &EvidenceBucket, refusal: &Refusal) -> Result<(), Error> {
    let key = key_of(eb);
    let message = refusal.to_string();
    if refusal.is_region_violation() {
        warn!(bucket = %key, %message, "refusing bucket outside the allowed UK regions");
        ctx.metrics
            .region_violations
            .with_label_values(&[&key])
            .inc();
    }
    let conds = refusal.conditions(&eb.spec.retention_policy_ref.name);
    write_status(ctx, eb, conditions_only(eb, &conds)).await?;
    if let Some(ev) = refusal.event() {
        ctx.event(eb, ev.type_, ev.reason, ev.action, message).await;
    }
    Ok(())
}

/// Report a failed reconcile that people must see at once (the error itself is counted
/// and logged by the error policy): an audit trail that cannot be written stalls the
/// bucket (`Stalled`, `AuditTrail=False`) with a warning event, since nothing is done
/// to its clips until every action can be recorded first.
pub async fn failed(ctx: &Context, eb: &EvidenceBucket, error: &Error) -> Result<(), Error> {
    let Some((reason, action, note)) = error_event(error) else {
        return Ok(());
    };
    let mut conds = stalled(reason, &note).to_vec();
    conds.push(Cond::no(AUDIT_TRAIL, "WriteFailed", &note));
    conds.push(Cond::yes(
        POLICY_RESOLVED,
        "PolicyFound",
        format!(
            "using RetentionPolicy {}",
            eb.spec.retention_policy_ref.name
        ),
    ));
    write_status(ctx, eb, conditions_only(eb, &conds)).await?;
    ctx.event(eb, EventType::Warning, reason, action, note)
        .await;
    Ok(())
}

/// The warning event an error raises, if any: the audit trail could not be written,
/// before the sweep (its policy records) or during it (pure).
pub fn error_event(error: &Error) -> Option<(&'static str, &'static str, String)> {
    match error {
        Error::Sweep {
            source: e @ sweep::SweepError::Audit(_),
            ..
        } => Some((
            "AuditWriteFailed",
            "Audit",
            format!("{e}; the sweep stopped so that no action goes unrecorded"),
        )),
        Error::Audit { source, .. } => Some((
            "AuditWriteFailed",
            "Audit",
            format!(
                "writing the audit trail: {source}; nothing is done to this bucket's clips until it can be written"
            ),
        )),
        _ => None,
    }
}

/// Report a sweep: metrics, one event per action class, the status with the sweep's
/// counts and `next` (when the next sweep is due), and each live hold's held count.
pub async fn swept(
    ctx: &Context,
    eb: &EvidenceBucket,
    valid: &ValidatedBucket<'_>,
    report: &SweepReport,
    next: DateTime<Utc>,
) -> Result<(), Error> {
    let key = key_of(eb);
    let o = &report.outcome;
    report_metrics(ctx, &key, o);
    publish_events(ctx, eb, o).await;

    let mut conds = sweep_conditions(
        eb,
        &eb.spec.retention_policy_ref.name,
        o,
        report.audit.clone(),
    );
    conds.extend(report.integrity.as_ref().map(integrity_condition));
    let mut status = conditions_only(eb, &conds);
    status.tiers = Some(tier_counts(o));
    status.pending_review = Some(o.flagged);
    status.malformed = Some(o.malformed);
    status.last_sweep = Some(SweepSummary {
        start_time: Some(report.started),
        end_time: Some(report.finished),
        moved: o.moved,
        deleted: o.deleted,
        purged: o.purged,
        restorable: o.restorable,
        held: o.held,
        released: o.released,
        flagged: o.flagged + o.malformed,
        failed: o.failed,
        retagged: o.retagged,
        unlisted_tiers: o.unlisted.iter().map(|t| t.as_str().to_string()).collect(),
    });
    status.next_sweep_time = Some(next);
    write_status(ctx, eb, status).await?;

    // Each hold in force: what it selects, holds and failed to hold.
    let ns = eb.namespace().unwrap_or_default();
    let holds: Api<LegalHold> = Api::namespaced(ctx.client.clone(), &ns);
    let in_force = |h: &&&LegalHold| valid.active.iter().any(|a| a.name == h.name_any());
    for hold in valid.holds.iter().filter(in_force) {
        let (conds, event) = hold_conditions(hold, &eb.name_any(), o);
        let name = hold.name_any();
        let count = |by: &std::collections::BTreeMap<String, u64>| by.get(&name).copied();
        let status = LegalHoldStatus {
            held_clips: Some(count(&o.held_by).unwrap_or(0)),
            selected_clips: Some(count(&o.selected_by).unwrap_or(0)),
            failed_clips: Some(count(&o.failed_by).unwrap_or(0)),
            conditions: merge_conditions(
                hold.status
                    .as_ref()
                    .map(|s| s.conditions.as_slice())
                    .unwrap_or_default(),
                &conds,
                hold.metadata.generation,
                Timestamp::now(),
            ),
            observed_generation: hold.metadata.generation,
        };
        apply_status(&holds, *hold, &status).await?;
        if let Some((reason, note)) = event {
            ctx.event(*hold, EventType::Warning, reason, "Hold", note)
                .await;
        }
    }

    // Each AccessRequest: what it found, when its answer is due, whether it preserves.
    let requests: Api<AccessRequest> = Api::namespaced(ctx.client.clone(), &ns);
    for r in &valid.requests {
        if r.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let status = request_status(r, o, report.answers.get(&r.name_any()));
        let labels = [key_of(eb), r.name_any()];
        let labels = [labels[0].as_str(), labels[1].as_str()];
        match status.due_by.filter(|_| !r.spec.closed) {
            Some(due) => ctx
                .metrics
                .access_request_due
                .with_label_values(&labels)
                .set(due.timestamp()),
            None => {
                let _ = ctx.metrics.access_request_due.remove_label_values(&labels);
            }
        }
        apply_status(&requests, *r, &status).await?;
    }
    Ok(())
}

/// An AccessRequest's status after a sweep of its bucket (pure): the clips and bytes
/// its selector covers (while open; kept as last found once closed), its statutory due
/// date (received + one calendar month), its `Preserving` condition, and, given this
/// sweep's `answer` (none: the last one stands), its manifest and `Ready` condition.
pub fn request_status(
    r: &AccessRequest,
    o: &SweepOutcome,
    answer: Option<&Answer>,
) -> AccessRequestStatus {
    let previous = r.status.clone().unwrap_or_default();
    let found = o.found_by.get(&r.name_any()).copied().unwrap_or_default();
    let month = RetentionDuration::Finite {
        amount: 1,
        unit: DurationUnit::Months,
    };
    let (clips, bytes, cond) = if r.spec.closed {
        (
            previous.clips_found,
            previous.bytes,
            Cond::no(
                PRESERVING,
                "Closed",
                "the request is closed: its clips are under their normal retention again",
            ),
        )
    } else {
        let n = u64::try_from(found.clips.max(0)).unwrap_or(0);
        let b = u64::try_from(found.bytes.max(0)).unwrap_or(0);
        let cond = if n == 0 {
            Cond::yes(
                PRESERVING,
                "NoClipsFound",
                "the selector matches no clip in the bucket (yet); any clip it comes to match is preserved",
            )
        } else {
            Cond::yes(
                PRESERVING,
                "ClipsPreserved",
                format!(
                    "{n} clip(s), {b} bytes, preserved: not deleted and not moved while the request is open"
                ),
            )
        };
        (Some(n), Some(b), cond)
    };
    let mut conds = vec![cond];
    let mut manifest = previous.manifest.clone();
    let mut copies = previous.copies;
    let mut closed_at = previous.closed_at;
    let mut copies_deleted_at = previous.copies_deleted_at;
    let last_ready = || {
        previous
            .conditions
            .iter()
            .find(|c| c.type_ == READY)
            .map(|c| match c.status.as_str() {
                "True" => Cond::yes(READY, &c.reason, c.message.clone()),
                "False" => Cond::no(READY, &c.reason, c.message.clone()),
                _ => Cond::unknown(READY, &c.reason, c.message.clone()),
            })
    };
    match (answer, &r.spec.export) {
        (
            Some(Answer::Written {
                manifest: m,
                copies: n,
            }),
            _,
        ) => {
            conds.push(Cond::yes(
                READY,
                "ManifestWritten",
                format!(
                    "the manifest of {} clip(s), {} bytes, is at {} (SHA-256 {}, in the audit chain){}",
                    m.clips,
                    m.bytes,
                    m.location,
                    m.sha256,
                    n.map(|n| format!("; {n} export copies, each verified"))
                        .unwrap_or_default()
                ),
            ));
            manifest = Some(m.clone());
            copies = *n;
        }
        (Some(Answer::NotWritten { reason, message }), _) => {
            conds.push(Cond::no(READY, reason, message.clone()));
        }
        (
            Some(Answer::Closed {
                closed_at: at,
                copies_deleted_at: deleted,
            }),
            _,
        ) => {
            closed_at = Some(*at);
            if deleted.is_some() {
                copies_deleted_at = *deleted;
                copies = Some(0);
            }
            conds.extend(last_ready());
        }
        (None, None) if !r.spec.closed => conds.push(Cond::yes(
            READY,
            "Searched",
            "the clips are counted and preserved; name spec.export for a manifest",
        )),
        // No new answer: the last one stands (the status lists only what it is given).
        (None, _) => conds.extend(last_ready()),
    }
    AccessRequestStatus {
        clips_found: clips,
        bytes,
        due_by: month.after(r.spec.received_at),
        manifest,
        copies,
        closed_at,
        copies_deleted_at,
        conditions: merge_conditions(
            &previous.conditions,
            &conds,
            r.metadata.generation,
            Timestamp::now(),
        ),
        observed_generation: r.metadata.generation,
    }
}

/// The condition type of an AccessRequest that says its clips are preserved.
pub const PRESERVING: &str = "Preserving";

/// A hold's conditions after a sweep of its bucket, and the warning event to publish
/// (only when its `Ready` reason changes to one that needs a person) (pure).
///
/// `Ready` is `True` ("Held") only when every clip the hold selects is verified held;
/// "HoldIncomplete" while some are not (failed, or the sweep was interrupted);
/// "NoClipsSelected" when the selector matches nothing in the bucket.
pub fn hold_conditions(
    hold: &LegalHold,
    bucket: &str,
    o: &SweepOutcome,
) -> (Vec<Cond>, Option<(&'static str, String)>) {
    let name = hold.name_any();
    let get = |by: &std::collections::BTreeMap<String, u64>| by.get(&name).copied().unwrap_or(0);
    let (held, selected, failed) = (get(&o.held_by), get(&o.selected_by), get(&o.failed_by));
    let case = &hold.spec.case_reference;
    let (reason, message, ready, reconciling) = if selected == 0 && !o.interrupted {
        (
            "NoClipsSelected",
            format!(
                "the selector matches no clip in EvidenceBucket {bucket}, so nothing is held for case {case}; \
                 check spec.selector (keys are relative to the tier prefix, e.g. 2026/03/01/BWV-0042/clip-0001.mp4)"
            ),
            false,
            false,
        )
    } else if held == selected && !o.interrupted {
        (
            "Held",
            format!(
                "{held} clip(s) of EvidenceBucket {bucket} are under legal hold for case {case}"
            ),
            true,
            false,
        )
    } else {
        let why = if failed > 0 {
            format!(
                "{failed} could not be held this sweep and stay where they are; retried at the next sweep"
            )
        } else {
            "the sweep was interrupted; the rest are held at the next sweep".to_string()
        };
        (
            "HoldIncomplete",
            format!(
                "{held} of {selected} selected clip(s) of EvidenceBucket {bucket} are under legal hold for case {case}; {why}"
            ),
            false,
            true,
        )
    };
    let conds = vec![
        if ready {
            Cond::yes(READY, reason, &message)
        } else {
            Cond::no(READY, reason, &message)
        },
        if reconciling {
            Cond::yes(RECONCILING, reason, "holding the remaining selected clips")
        } else {
            Cond::no(RECONCILING, reason, "nothing pending")
        },
        Cond::no(STALLED, reason, "making progress"),
    ];
    let was = hold
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY))
        .map(|c| c.reason.as_str());
    let event = (reason != "Held" && was != Some(reason)).then_some((reason, message));
    (conds, event)
}

async fn write_status(
    ctx: &Context,
    eb: &EvidenceBucket,
    status: EvidenceBucketStatus,
) -> Result<(), Error> {
    let api: Api<EvidenceBucket> =
        Api::namespaced(ctx.client.clone(), &eb.namespace().unwrap_or_default());
    apply_status(&api, eb, &status).await
}

/// A status of just these conditions (merged with the previous ones, so unchanged
/// conditions keep their transition time) and the observed generation (pure).
pub fn conditions_only(eb: &EvidenceBucket, conds: &[Cond]) -> EvidenceBucketStatus {
    let previous = eb
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    EvidenceBucketStatus {
        conditions: merge_conditions(previous, conds, eb.metadata.generation, Timestamp::now()),
        observed_generation: eb.metadata.generation,
        ..EvidenceBucketStatus::default()
    }
}

/// The conditions after a sweep that ran (pure).
pub fn sweep_conditions(
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
    let (ready, reconciling, stalled) = if outcome.failed == 0 && !outcome.interrupted {
        (
            Cond::yes(
                READY,
                "SweepComplete",
                format!("storage matches policy: {summary}"),
            ),
            Cond::no(RECONCILING, "SweepComplete", "waiting for the next sweep"),
            Cond::no(STALLED, "SweepComplete", "making progress"),
        )
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
        (
            Cond::no(READY, "SweepIncomplete", format!("{summary}; {why}")),
            Cond::yes(RECONCILING, "RetryPending", why),
            Cond::no(STALLED, "RetryPending", "retrying"),
        )
    };
    vec![
        ready,
        reconciling,
        stalled,
        region_ok,
        policy_ok,
        audit_cond,
        categories,
    ]
}

/// `CategoriesKnown`: whether every tagged category is one the policy names (pure).
pub fn categories_condition(policy_name: &str, outcome: &SweepOutcome) -> Cond {
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

/// Clips and bytes per tier, as the sweep counted them (pure).
pub fn tier_counts(o: &SweepOutcome) -> TierCounts {
    let mut counts = TierCounts::default();
    for tier in Tier::ALL {
        let t = o.totals.get(&tier).copied().unwrap_or_default();
        *counts.get_mut(tier) = TierCount {
            clips: u64::try_from(t.clips).unwrap_or(0),
            bytes: u64::try_from(t.bytes).unwrap_or(0),
        };
    }
    counts
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

/// The events of a sweep: one per action class with the count (not one per clip), and
/// warnings for failures, unknown categories and checksum mismatches (pure).
pub fn sweep_events(o: &SweepOutcome) -> Vec<(EventType, &'static str, &'static str, String)> {
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
            "clip(s) deleted: retention ran out and no hold applies (soft-deleted, restorable, where the policy has a restoreWindow)",
        ),
        (
            o.purged,
            "Purged",
            "Purge",
            "soft-deleted clip(s) purged: their restoreWindow passed and, planned again, the policy still deletes them",
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
    let mut events: Vec<_> = classes
        .into_iter()
        .filter(|(n, ..)| *n > 0)
        .map(|(n, reason, action, text)| (EventType::Normal, reason, action, format!("{n} {text}")))
        .collect();
    if o.failed > 0 {
        events.push((
            EventType::Warning,
            "ActionsFailed",
            "Sweep",
            format!(
                "{} action(s) failed and will be retried; nothing was lost: {}",
                o.failed,
                o.messages.join("; ")
            ),
        ));
    }
    if o.unknown_category_clips > 0 {
        events.push((
            EventType::Warning,
            "UnknownCategories",
            "Plan",
            format!(
                "{} clip(s) carry a category the policy does not name; the default rule applies: {}",
                o.unknown_category_clips,
                unknown_categories_text(o)
            ),
        ));
    }
    if o.checksum_mismatches > 0 {
        events.push((
            EventType::Warning,
            "ChecksumMismatch",
            "Verify",
            format!(
                "{} copy/copies did not match the source's SHA-256; the sources were kept",
                o.checksum_mismatches
            ),
        ));
    }
    events
}

async fn publish_events(ctx: &Context, eb: &EvidenceBucket, o: &SweepOutcome) {
    for (type_, reason, action, note) in sweep_events(o) {
        ctx.event(eb, type_, reason, action, note).await;
    }
}
