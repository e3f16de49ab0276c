//! Part of step 3 of a bucket's reconcile: carry out the bucket's pending ClipRestores,
//! after the region proof, the claim and the clock check, before the sweep (so that the
//! sweep lists the restored clips). For each key: find its soft-deleted version in the
//! hot or cool tier, record the intent, remove the delete markers (the same version is
//! current again: same bytes, same version id, same tags, so the retention clock is
//! unchanged), put the corrected category on it when the restore gives one, record the
//! outcome, and report it all in the ClipRestore's status. A key with nothing to restore
//! is reported, not an error; a failure leaves the restore pending for the next sweep.

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, ResourceExt, runtime::events::EventType};

use crate::{
    api::{
        ClipRestore, EvidenceBucket,
        clip::{Clip, TAG_CATEGORY, Tag, Tier},
        clip_restore::{ClipRestoreStatus, NotRestored, RestoredClip},
    },
    audit::{AuditAction, AuditSink, ClipRef, Entry},
    controller::{
        Context, Error,
        audit::managers,
        key_of,
        status::{Cond, apply_status, merge_conditions},
    },
    storage::{DeletedClip, StorageError, TierStore},
};

/// The condition type that says a ClipRestore was carried out.
pub const COMPLETE: &str = "Complete";

/// What happened to one key.
enum KeyOutcome {
    Restored(RestoredClip),
    Nothing(NotRestored),
    Failed(NotRestored),
}

/// Carry out `restores` (pending ClipRestores of `eb`); one status write each.
pub async fn restore_all(
    ctx: &Context,
    eb: &EvidenceBucket,
    restores: &[&ClipRestore],
    store: &dyn TierStore,
    sink: &dyn AuditSink,
) -> Result<(), Error> {
    for r in restores {
        if ctx.draining.is_cancelled() {
            return Ok(());
        }
        restore_one(ctx, eb, r, store, sink).await?;
    }
    Ok(())
}

/// The soft-deleted version of `key`, in hot or cool (`None`: none there).
async fn find(store: &dyn TierStore, key: &str) -> Result<Option<DeletedClip>, StorageError> {
    for tier in [Tier::Hot, Tier::Cool] {
        let mut found = store.list_deleted(tier, Some(key));
        while let Some(d) = found.next().await {
            let d = d?;
            if d.key == key {
                return Ok(Some(d));
            }
        }
    }
    Ok(None)
}

async fn restore_one(
    ctx: &Context,
    eb: &EvidenceBucket,
    r: &ClipRestore,
    store: &dyn TierStore,
    sink: &dyn AuditSink,
) -> Result<(), Error> {
    let bucket = key_of(eb);
    let audit = |source| Error::Audit {
        bucket: bucket.clone(),
        source,
    };
    let (_, changed_by) = managers(&r.metadata);
    let who = changed_by.map_or_else(String::new, |m| format!(", applied by {m}"));
    let why = format!(
        "ClipRestore {} (reference {:?}{who}): {}",
        key_of(r),
        r.spec.reference,
        r.spec.reason
    );
    let mut outcomes = Vec::with_capacity(r.spec.keys.len());
    for key in &r.spec.keys {
        let found = match find(store, key).await {
            Ok(found) => found,
            Err(e) => {
                outcomes.push(KeyOutcome::Failed(NotRestored {
                    key: key.clone(),
                    reason: "Failed".into(),
                    message: format!(
                        "looking for its deleted version: {e}; retried at the next sweep"
                    ),
                }));
                continue;
            }
        };
        let Some(d) = found.filter(|d| d.data.is_some()) else {
            outcomes.push(KeyOutcome::Nothing(NotRestored {
                key: key.clone(),
                reason: "NotFound".into(),
                message: "no deleted, unpurged version of this key in the hot or cool tier: it was never deleted, is already restored, or was purged".into(),
            }));
            continue;
        };
        let Some(data) = d.data.clone() else {
            continue;
        };
        let mut intent = Entry::clip(
            AuditAction::Intended,
            ClipRef::from(&d),
            Some(d.tier),
            format!("restore intended: {why}"),
        );
        intent.sha256 = data.sha256.clone();
        sink.record(vec![intent]).await.map_err(audit)?;
        let result = restore_and_recategorise(store, &d, &data, r.spec.category.as_deref()).await;
        let mut e = Entry::clip(
            AuditAction::Restored,
            ClipRef::from(&d),
            Some(d.tier),
            String::new(),
        );
        e.sha256 = data.sha256.clone();
        match result {
            Ok(()) => {
                e.reason = format!(
                    "deleted at {}, restored (delete marker removed; same version, retention clock unchanged){}; {why}",
                    d.deleted_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    r.spec
                        .category
                        .as_deref()
                        .map(|c| format!(", category set to {c}"))
                        .unwrap_or_default()
                );
                outcomes.push(KeyOutcome::Restored(RestoredClip {
                    key: key.clone(),
                    tier: d.tier.to_string(),
                    version_id: data.version_id.clone().unwrap_or_default(),
                    deleted_at: d.deleted_at,
                }));
            }
            Err(err) => {
                e.action = AuditAction::Failed;
                e.reason = format!("restore failed: {err}; {why}");
                outcomes.push(KeyOutcome::Failed(NotRestored {
                    key: key.clone(),
                    reason: "Failed".into(),
                    message: format!("{err}; retried at the next sweep"),
                }));
            }
        }
        sink.record(vec![e]).await.map_err(audit)?;
    }
    report(ctx, r, outcomes).await
}

/// Remove the markers, then (when asked) the corrected category on the version.
async fn restore_and_recategorise(
    store: &dyn TierStore,
    d: &DeletedClip,
    data: &Clip,
    category: Option<&str>,
) -> Result<(), StorageError> {
    store.restore_clip(d).await?;
    if let Some(category) = category {
        let mut tags: Vec<Tag> = data
            .tags
            .iter()
            .filter(|t| t.key != TAG_CATEGORY)
            .cloned()
            .collect();
        tags.push(Tag::new(TAG_CATEGORY, category));
        store.set_tags(data, &tags).await?;
    }
    Ok(())
}

/// The ClipRestore's status: what was restored, what was not and why, and `Complete`.
async fn report(ctx: &Context, r: &ClipRestore, outcomes: Vec<KeyOutcome>) -> Result<(), Error> {
    let mut restored = Vec::new();
    let mut nothing = Vec::new();
    let mut failed = Vec::new();
    for o in outcomes {
        match o {
            KeyOutcome::Restored(c) => restored.push(c),
            KeyOutcome::Nothing(n) => nothing.push(n),
            KeyOutcome::Failed(n) => failed.push(n),
        }
    }
    let total = r.spec.keys.len();
    let cond = if !failed.is_empty() {
        Cond::no(
            COMPLETE,
            "RestoreFailed",
            format!(
                "{} of {total} keys could not be restored yet (see notRestored); retried at the next sweep",
                failed.len()
            ),
        )
    } else if nothing.is_empty() {
        Cond::yes(COMPLETE, "Restored", format!("all {total} keys restored"))
    } else if restored.is_empty() {
        Cond::yes(
            COMPLETE,
            "NothingRestored",
            "no key had a deleted, unpurged version to restore (see notRestored)",
        )
    } else {
        Cond::yes(
            COMPLETE,
            "PartlyRestored",
            format!(
                "{} of {total} keys restored; the others had nothing to restore (see notRestored)",
                restored.len()
            ),
        )
    };
    let event = (cond.reason.clone(), cond.message.clone());
    let previous = r
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    // Keys restored by an earlier attempt of the same generation stay reported.
    let mut all_restored: Vec<RestoredClip> = r
        .status
        .as_ref()
        .filter(|s| s.observed_generation == r.metadata.generation)
        .map(|s| s.restored.clone())
        .unwrap_or_default();
    for c in restored {
        if !all_restored.iter().any(|p| p.key == c.key) {
            all_restored.push(c);
        }
    }
    nothing.retain(|n| !all_restored.iter().any(|p| p.key == n.key));
    nothing.extend(failed);
    let status = ClipRestoreStatus {
        restored_clips: Some(all_restored.len() as u64),
        restored: all_restored,
        not_restored: nothing,
        conditions: merge_conditions(previous, &[cond], r.metadata.generation, Timestamp::now()),
        observed_generation: r.metadata.generation,
    };
    let ns = r.namespace().unwrap_or_default();
    let api: Api<ClipRestore> = Api::namespaced(ctx.client.clone(), &ns);
    apply_status(&api, r, &status).await?;
    let type_ = if event.0 == "RestoreFailed" {
        EventType::Warning
    } else {
        EventType::Normal
    };
    ctx.event(r, type_, &event.0, "Restore", event.1).await;
    Ok(())
}
