//! The purge pass of a sweep, for a policy with a `restoreWindow`: after the tiers are
//! swept, the soft-deleted clips of the hot and cool tiers are listed and each is
//! decided by the engine ([`Planner::plan_purge`]): still restorable, kept (planned
//! again, the policy would not delete it now; or its version is held), or purged.
//!
//! Purging is the point of no return, so it is fenced like a deletion: the holds and
//! policy are read again just before, and a clip is purged only if the planners of the
//! sweep's start and of now both say so. Audit, write-ahead: an `intended` record per
//! purge before the first one, a `purged` (or `failed`) record after.

use futures::{StreamExt, stream};
use tokio_util::sync::CancellationToken;

use super::{
    CHUNK, HoldFence, SweepAudit, SweepError, SweepOptions, SweepOutcome, fence::FenceRead,
};
use crate::{
    api::clip::Tier,
    audit::{AuditAction, ClipRef, Entry},
    engine::{Planner, PurgeDecision},
    storage::{DeletedClip, TierStore},
};

/// The record of a purge (intended, done or failed).
fn purge_entry(action: AuditAction, d: &DeletedClip, reason: String) -> Entry {
    let mut e = Entry::clip(action, ClipRef::from(d), Some(d.tier), reason);
    e.sha256 = d.data.as_ref().and_then(|c| c.sha256.clone());
    e
}

/// Whether `planner` purges `d` now (an orphan marker, with no data beneath, always).
fn purges(planner: &Planner<'_>, d: &DeletedClip) -> bool {
    d.data.as_ref().is_none_or(|data| {
        matches!(
            planner.plan_purge(data, d.deleted_at),
            PurgeDecision::Purge { .. }
        )
    })
}

/// List the soft-deleted clips of hot and cool, purge those due, count the rest.
pub(super) async fn purge_pass(
    store: &dyn TierStore,
    planner: &Planner<'_>,
    opts: &SweepOptions,
    draining: &CancellationToken,
    audit: &SweepAudit<'_>,
    fence: Option<&dyn HoldFence>,
    out: &mut SweepOutcome,
) -> Result<(), SweepError> {
    for tier in [Tier::Hot, Tier::Cool] {
        let mut chunks = store.list_deleted(tier, None).chunks(CHUNK);
        while let Some(chunk) = chunks.next().await {
            let mut due: Vec<(DeletedClip, String)> = Vec::new();
            for item in chunk {
                let d = item.map_err(|source| SweepError::List { tier, source })?;
                let skipped = opts
                    .skip
                    .iter()
                    .any(|(t, prefix)| *t == tier && d.key.starts_with(prefix.as_str()));
                if skipped {
                    continue;
                }
                let Some(data) = &d.data else {
                    due.push((
                        d,
                        "an orphan delete marker: its data version was purged before".into(),
                    ));
                    continue;
                };
                match planner.plan_purge(data, d.deleted_at) {
                    PurgeDecision::Purge { reason } => due.push((d, reason)),
                    PurgeDecision::Restorable { until } => {
                        out.restorable += 1;
                        out.due(Some(until));
                    }
                    PurgeDecision::Kept { reason } => {
                        out.restorable += 1;
                        tracing::info!(key = %d.key, %tier, %reason, "soft-deleted clip kept past its restore window");
                    }
                }
            }
            if due.is_empty() {
                continue;
            }
            if draining.is_cancelled() {
                out.interrupted = true;
                return Ok(());
            }
            // The fence: the holds and policy as they are now, just before the purge.
            let read = FenceRead::read(fence, planner).await?;
            let (now_holds, now_policy) = read.planners(planner)?;
            let mut purge = Vec::new();
            for (d, reason) in due {
                let fenced_keep = now_holds
                    .iter()
                    .chain(now_policy.iter())
                    .any(|p| !purges(p, &d));
                // (The fenced holds include those still waiting for their finalizer: a
                // clip they select is kept too.)
                if fenced_keep {
                    out.restorable += 1;
                    tracing::info!(key = %d.key, %tier, "a hold or policy change since the sweep started keeps a soft-deleted clip");
                } else {
                    purge.push((d, reason));
                }
            }
            if purge.is_empty() {
                continue;
            }
            let intents: Vec<Entry> = purge
                .iter()
                .map(|(d, reason)| {
                    purge_entry(
                        AuditAction::Intended,
                        d,
                        format!("purge intended: {reason}"),
                    )
                })
                .collect();
            audit.write(intents, out).await.map_err(SweepError::Audit)?;
            let results: Vec<_> = stream::iter(purge)
                .map(|(d, reason)| async move {
                    let r = store.purge_clip(&d).await;
                    (d, reason, r)
                })
                .buffer_unordered(opts.concurrency.max(1))
                .collect()
                .await;
            let mut entries = Vec::with_capacity(results.len());
            for (d, reason, r) in &results {
                match r {
                    Ok(()) => {
                        out.purged += 1;
                        entries.push(purge_entry(AuditAction::Purged, d, reason.clone()));
                    }
                    Err(e) => {
                        out.restorable += 1;
                        out.fail(format!("purging {}: {e}", d.key));
                        entries.push(purge_entry(
                            AuditAction::Failed,
                            d,
                            format!("purge failed: {e}; still restorable; {reason}"),
                        ));
                    }
                }
            }
            audit.write(entries, out).await.map_err(SweepError::Audit)?;
        }
    }
    Ok(())
}
