//! One sweep of one evidence bucket: list every tier, plan each clip with the engine,
//! and carry the plan out through the storage layer, a chunk at a time, so memory does
//! not grow with the number of clips.
//!
//! The sweep never decides anything itself: the engine's [`Decision`] says what to do and
//! why; the sweep only executes, counts and reports. Every failure is counted and the
//! clip is left where it is, to be retried at the next sweep.
//!
//! Audit, write-ahead: before the first action of a chunk starts, every action the
//! chunk will take (each delete, move, hold, release, with the engine's reason) is
//! recorded as an `intended` record, in one batch. If that write fails, nothing in the
//! chunk is done and the sweep stops with [`SweepError::Audit`]. After the chunk's
//! actions ran, their outcomes (moved with the verified SHA-256, held/released with the
//! case references, deleted with the rule and retention, flagged, failed, refused) are
//! written as a second batch before the chunk is counted; if that write fails the sweep
//! stops too (the outcomes go to the error log, and the intents already say what was
//! about to happen).
//!
//! | file | what |
//! |---|---|
//! | `fence.rs` | what the sweep reads again before each point of no return, and how a chunk is planned with it |
//! | `memo.rs` | the catalogue's tier memo: when a cool or legal-hold tier need not be listed |
//! | `outcome.rs` | [`SweepOutcome`]: what a sweep did |
//! | `purge.rs` | the restore window's purge pass |
//! | `records.rs` | the audit records of a sweep |

mod fence;
mod memo;
mod outcome;
mod purge;
mod records;
#[cfg(test)]
mod tests;

use self::fence::{Chunk, FenceRead, StickyFence};
use self::memo::{Counts, unlisted};
use self::outcome::{count_holds, count_selected};
use self::records::clip_ref;
pub use self::{
    fence::{FencedHolds, HoldFence},
    outcome::{MAX_UNKNOWN_CATEGORIES, SweepOutcome, TierTotals},
    records::SweepAudit,
};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use tokio_util::sync::CancellationToken;

use crate::{
    api::clip::{Clip, TAG_RETAIN_UNTIL, Tier, same_tags, with_retain_until},
    audit::{AuditAction, AuditError, Entry},
    catalogue::{BucketCatalogue, TierMemo},
    engine::{Action, Decision, Planner},
    storage::{DeleteFailure, MoveOutcome, StorageError, TierStore},
};

/// Clips listed per chunk: the unit of planning and of batched deletes.
const CHUNK: usize = 1000;
/// Settings of a sweep.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Moves in flight at once.
    pub concurrency: usize,
    /// Key prefixes (relative to the tier's prefix) that are not clips, per tier: the
    /// audit chain's prefix where it lies inside a tier's listing.
    pub skip: Vec<(Tier, String)>,
    /// Clips of the cool and legal-hold tiers to sample for the integrity sweep.
    pub integrity_sample: usize,
    /// The bucket's clip catalogue, when the operator keeps one: a cool or legal-hold
    /// tier whose memo holds is not listed.
    pub catalogue: Option<BucketCatalogue>,
    /// What the plan depends on besides storage and the clock (the bucket's
    /// `ValidatedBucket::inputs`): a tier memo holds only for the same inputs.
    pub inputs: String,
}

/// Errors that stop a sweep (per-clip failures do not: they are counted).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Listing a tier failed, so the sweep could not see every clip.
    #[error("listing the {tier} tier: {source}")]
    List {
        /// The tier being listed.
        tier: Tier,
        /// The storage error.
        source: StorageError,
    },
    /// The holds could not be read before acting on a chunk: the sweep stops rather than
    /// act without knowing whether a hold was applied meanwhile.
    #[error("reading the LegalHolds before acting: {0}")]
    Fence(String),
    /// The audit records of a chunk could not be written: the sweep stops rather than
    /// act unrecorded.
    #[error("writing the audit trail: {0}")]
    Audit(AuditError),
}

/// Run one sweep: plan every clip of every tier and carry the plan out.
///
/// `draining` is cancelled when the operator shuts down: no new action starts after
/// that; actions already in flight finish (each is safe to abandon anyway).
///
/// `fence`, when given, is read before each chunk is acted on; a chunk is re-planned
/// with the holds it reports.
pub async fn sweep(
    store: &dyn TierStore,
    planner: &Planner<'_>,
    opts: &SweepOptions,
    draining: &CancellationToken,
    audit: &SweepAudit<'_>,
    fence: Option<&dyn HoldFence>,
) -> Result<SweepOutcome, SweepError> {
    let mut out = SweepOutcome::default();
    for tier in Tier::ALL {
        out.totals.entry(tier).or_default();
    }
    // What the fence once found protects every later chunk of this sweep.
    let sticky = fence.map(StickyFence::new);
    let fence: Option<&dyn HoldFence> = sticky.as_ref().map(|f| f as &dyn HoldFence);
    for tier in Tier::ALL {
        let memo = opts.catalogue.as_ref().filter(|_| tier != Tier::Hot);
        if let Some(cat) = memo
            && unlisted(store, cat, tier, planner, opts, &mut out).await
        {
            continue;
        }
        let before = Counts::of(&out, tier);
        let listed_at = Utc::now();
        out.tier_due = None;
        let mut chunks = store.list(tier).chunks(CHUNK);
        let mut next = chunks.next().await;
        while let Some(chunk) = next.take() {
            let mut clips = Vec::with_capacity(chunk.len());
            for item in chunk {
                let clip = item.map_err(|source| SweepError::List { tier, source })?;
                let skipped = opts
                    .skip
                    .iter()
                    .any(|(t, prefix)| *t == tier && clip.key.starts_with(prefix.as_str()));
                if !skipped {
                    if tier != Tier::Hot {
                        out.offer_sample(&clip, opts.integrity_sample);
                    }
                    clips.push(clip);
                }
            }
            if draining.is_cancelled() {
                out.interrupted = true;
                return Ok(out);
            }
            // The fence: holds and policy as they are now, just before this chunk's
            // point of no return.
            let read = FenceRead::read(fence, planner).await?;
            let (replanned, newer) = read.planners(planner)?;
            let fenced = &read.fenced;
            let chunk = Chunk {
                planner: replanned.as_ref().unwrap_or(planner),
                pending: fenced.as_ref().map(|f| &f.pending),
                newer: newer.as_ref(),
            };
            // Holds the fence found since the start name their cases in the records too.
            let fenced_audit = fenced.as_ref().map(|f| audit.with_cases_of(&f.holds));
            let chunk_audit = fenced_audit.as_ref().unwrap_or(audit);
            // List the next chunk (its tag reads) while this one is acted on, so that
            // listing and actions overlap instead of taking turns; at most two chunks are
            // in memory.
            let (done, following) = futures::join!(
                execute_chunk(store, &chunk, opts, draining, chunk_audit, clips, &mut out),
                chunks.next()
            );
            done?;
            next = following;
        }
        if let Some(cat) = memo {
            let memo = before.quiet(&out).then(|| TierMemo {
                inputs: opts.inputs.clone(),
                term: 0,
                listed_at,
                next_due: out.tier_due,
                summary: before.summary(&out, tier),
            });
            cat.set_memo(tier, memo).await;
        }
    }
    // The restore window: soft-deleted clips whose window passed are purged, each
    // planned again first.
    if planner.policy().restore_window.is_some() && !draining.is_cancelled() {
        purge::purge_pass(store, planner, opts, draining, audit, fence, &mut out).await?;
    }
    Ok(out)
}

/// What an action on one clip came to.
pub(super) enum Done {
    /// The action succeeded; for moves, what the move did.
    Ok(Option<MoveOutcome>),
    /// The store refused it (the clip stays; a person may need to look).
    Refused(String),
    /// It failed (the clip stays; retried next sweep).
    Failed(StorageError),
    /// A batch delete failed as a whole.
    FailedMsg(String),
}

#[allow(clippy::too_many_arguments)]
async fn execute_chunk(
    store: &dyn TierStore,
    chunk: &Chunk<'_, '_>,
    opts: &SweepOptions,
    draining: &CancellationToken,
    audit: &SweepAudit<'_>,
    clips: Vec<Clip>,
    out: &mut SweepOutcome,
) -> Result<(), SweepError> {
    let mut deletes: Vec<(Clip, Decision)> = Vec::new();
    let mut work: Vec<(Clip, Decision)> = Vec::new();
    let mut flags: Vec<(Clip, Decision)> = Vec::new();
    let mut counts: Vec<(Clip, Decision)> = Vec::new();
    for clip in clips {
        let decision = chunk.plan(&clip);
        out.due(chunk.planner.next_due(&clip));
        if let Some(c) = decision.reason.unknown_category() {
            out.unknown_category(c);
        }
        let size = i64::try_from(clip.size).unwrap_or(i64::MAX);
        out.add(clip.tier, 1, size);
        for name in chunk.planner.preserved_by(&clip) {
            let found = out.found_by.entry(name.to_string()).or_default();
            found.clips += 1;
            found.bytes += size;
        }
        route(clip, decision, out, &mut deletes, &mut work, &mut flags);
    }

    // The point of no return of a delete: each clip's tags are read again and the clip
    // re-planned with them, so that a clip re-categorised since it was listed is
    // deleted only if its current tags still say so.
    if !deletes.is_empty() && !draining.is_cancelled() {
        let listed = std::mem::take(&mut deletes);
        let clips: Vec<Clip> = listed.iter().map(|(c, _)| c.clone()).collect();
        match store.current_tags(&clips).await {
            Ok(now) => {
                for ((mut clip, decision), now) in listed.into_iter().zip(now) {
                    match now {
                        Some(tags) if same_tags(&tags, &clip.tags) => {
                            deletes.push((clip, decision))
                        }
                        Some(tags) => {
                            out.retagged += 1;
                            tracing::info!(key = %clip.key, "re-tagged since it was listed; planned again");
                            clip.tags = tags;
                            let again = chunk.plan(&clip);
                            route(clip, again, out, &mut deletes, &mut work, &mut flags);
                        }
                        // Gone since it was listed: nothing to delete.
                        None => {
                            let size = i64::try_from(clip.size).unwrap_or(i64::MAX);
                            out.add(clip.tier, -1, -size);
                        }
                    }
                }
            }
            Err(e) => {
                for (clip, decision) in listed {
                    count_selected(out, &decision, false);
                    out.fail(format!(
                        "re-reading the tags of {} before deleting it: {e}; kept",
                        clip.key
                    ));
                }
            }
        }
    }

    // Write-ahead: every action of this chunk, with its reason, is recorded before the
    // first one starts. If that record cannot be written, nothing in the chunk is done.
    if draining.is_cancelled() && !(deletes.is_empty() && work.is_empty()) {
        out.interrupted = true;
        deletes.clear();
        work.clear();
    }
    let intents: Vec<Entry> = deletes
        .iter()
        .chain(&work)
        .map(|(clip, decision)| audit.intent(clip, decision))
        .collect();
    if !intents.is_empty() {
        audit.write(intents, out).await.map_err(SweepError::Audit)?;
    }

    // Act.
    let mut done: Vec<(Clip, Decision, Done)> = Vec::new();
    // With a restore window (in the policy the sweep started with, or in the one the
    // fence found), a deletion is a soft delete: undoable until the purge.
    let window = chunk
        .planner
        .policy()
        .restore_window
        .or_else(|| chunk.newer.and_then(|n| n.policy().restore_window));
    if !deletes.is_empty() && !draining.is_cancelled() {
        let batch: Vec<Clip> = deletes.iter().map(|(c, _)| c.clone()).collect();
        let report = match window {
            Some(_) => store.soft_delete_clips(&batch).await,
            None => store.delete_clips(&batch).await,
        };
        match report {
            Ok(report) => {
                let failed: BTreeMap<&str, &DeleteFailure> = report
                    .failed
                    .iter()
                    .map(|f| (f.clip.key.as_str(), f))
                    .collect();
                for (clip, decision) in deletes {
                    let result = match failed.get(clip.key.as_str()) {
                        Some(f) if !f.retryable => {
                            Done::Refused(format!("{}: {}", f.code, f.message))
                        }
                        Some(f) => Done::FailedMsg(format!("{}: {}", f.code, f.message)),
                        None => Done::Ok(None),
                    };
                    done.push((clip, decision, result));
                }
            }
            Err(e) => {
                for (clip, decision) in deletes {
                    done.push((clip, decision, Done::FailedMsg(e.to_string())));
                }
            }
        }
    } else if !deletes.is_empty() {
        out.interrupted = true;
    }

    // Moves go to the store in two groups (to cool, to legal hold), so that it can delete
    // the sources of verified copies in batches; holds and releases one by one.
    let (mut to_cool, mut to_hold, mut others) = (Vec::new(), Vec::new(), Vec::new());
    for (clip, decision) in work {
        match decision.action {
            Action::MoveToCool => to_cool.push((clip, decision)),
            Action::MoveToLegalHold => to_hold.push((clip, decision)),
            _ => others.push((clip, decision)),
        }
    }
    let moves = |group: Vec<(Clip, Decision)>, to: Tier| async move {
        if group.is_empty() {
            return Vec::new();
        }
        let clips: Vec<Clip> = group.iter().map(|(c, _)| c.clone()).collect();
        let results = store
            .move_clips(&clips, to, opts.concurrency.max(1), draining)
            .await;
        group
            .into_iter()
            .zip(results)
            .filter_map(|((clip, decision), r)| {
                r.map(|r| {
                    let done = match r {
                        Ok(m) => Done::Ok(Some(m)),
                        Err(e) => Done::Failed(e),
                    };
                    (clip, decision, done)
                })
            })
            .collect::<Vec<_>>()
    };
    let one_by_one = stream::iter(others)
        .map(|(clip, decision)| async move {
            if draining.is_cancelled() {
                return (clip, decision, None);
            }
            let result = match decision.action {
                Action::Hold => store.set_legal_hold(&clip, true).await.map(|()| None),
                Action::Release => release(store, &clip, audit.retain_until(&clip))
                    .await
                    .map(Some),
                _ => Ok(None),
            };
            let result = match result {
                Ok(m) => Done::Ok(m),
                Err(e) => Done::Failed(e),
            };
            (clip, decision, Some(result))
        })
        .buffer_unordered(opts.concurrency.max(1))
        .filter_map(|(clip, decision, result)| async move { result.map(|r| (clip, decision, r)) })
        .collect::<Vec<_>>();
    let (cooled, held, rest) = futures::join!(
        moves(to_cool, Tier::Cool),
        moves(to_hold, Tier::LegalHold),
        one_by_one
    );
    let results = cooled.into_iter().chain(held).chain(rest);
    done.extend(results);

    // Record, before anything is counted as done.
    let mut entries: Vec<Entry> = Vec::new();
    let mut newly_flagged = Vec::new();
    for (clip, decision) in flags {
        let action = if decision.action == Action::FlagForReview {
            AuditAction::FlaggedForReview
        } else {
            AuditAction::FlaggedMalformed
        };
        let seen_key = format!("{}:{}:{}", action.as_str(), clip.key, clip.tier);
        if !audit.flagged_before.contains(&seen_key) {
            let mut e = Entry::clip(
                action,
                clip_ref(&clip),
                Some(clip.tier),
                decision.reason.to_string(),
            );
            e.sha256 = clip.sha256.clone();
            entries.push(e);
            newly_flagged.push(seen_key);
        }
        counts.push((clip, decision));
    }
    for (clip, decision, result) in &done {
        let mut e = audit.entry(clip, decision, result);
        if let Some(w) = window
            && e.action == AuditAction::Deleted
        {
            e.action = AuditAction::SoftDeleted;
            e.reason = format!(
                "{}; soft delete: restorable with a ClipRestore for restoreWindow {w}, then purged",
                e.reason
            );
        }
        entries.push(e);
    }
    if !entries.is_empty() {
        if let Err(e) = audit.write(entries.clone(), out).await {
            for entry in &entries {
                tracing::error!(error = %e, record = ?entry, "audit write failed; action done but unrecorded");
            }
            return Err(SweepError::Audit(e));
        }
        out.flags_recorded.extend(newly_flagged);
    }

    // Count.
    for (clip, decision) in counts {
        if decision.action == Action::FlagForReview {
            out.flagged += 1;
        } else {
            out.malformed += 1;
        }
        count_holds(out, &clip, &decision);
        count_selected(out, &decision, false);
    }
    for (clip, decision, result) in done {
        let size = i64::try_from(clip.size).unwrap_or(i64::MAX);
        match result {
            Done::Ok(_) => match decision.action {
                Action::Delete => {
                    out.deleted += 1;
                    out.add(clip.tier, -1, -size);
                }
                Action::MoveToCool => {
                    out.moved += 1;
                    // listed again when the cool tier is listed (after hot)
                    out.add(clip.tier, -1, -size);
                }
                Action::MoveToLegalHold => {
                    out.held += 1;
                    out.add(clip.tier, -1, -size);
                    // counted by hold (and by request) when the legal-hold tier is listed
                    for name in chunk.planner.preserved_by(&clip) {
                        if let Some(found) = out.found_by.get_mut(name) {
                            found.clips -= 1;
                            found.bytes -= size;
                        }
                    }
                }
                Action::Hold => {
                    out.held += 1;
                    count_holds(out, &clip, &decision);
                    count_selected(out, &decision, false);
                }
                Action::Release => {
                    out.released += 1;
                    out.add(clip.tier, -1, -size);
                    // the cool tier was listed before the legal-hold tier
                    out.add(Tier::Cool, 1, size);
                }
                _ => {}
            },
            Done::Failed(e) => {
                if matches!(e, StorageError::ChecksumMismatch { .. }) {
                    out.checksum_mismatches += 1;
                }
                out.fail(format!("{:?} {}: {e}", decision.action, clip.key));
                if clip.legal_hold {
                    count_holds(out, &clip, &decision);
                }
                count_selected(out, &decision, true);
            }
            Done::Refused(msg) | Done::FailedMsg(msg) => {
                out.fail(format!("{:?} {}: {msg}", decision.action, clip.key));
                if clip.legal_hold {
                    count_holds(out, &clip, &decision);
                }
                count_selected(out, &decision, true);
            }
        }
    }
    if draining.is_cancelled() {
        out.interrupted = true;
    }
    Ok(())
}

/// Put a planned clip on the list of its kind of action (counting a kept one now).
fn route(
    clip: Clip,
    decision: Decision,
    out: &mut SweepOutcome,
    deletes: &mut Vec<(Clip, Decision)>,
    work: &mut Vec<(Clip, Decision)>,
    flags: &mut Vec<(Clip, Decision)>,
) {
    match decision.action {
        Action::Keep => {
            count_holds(out, &clip, &decision);
            count_selected(out, &decision, false);
        }
        Action::FlagForReview | Action::FlagMalformed => flags.push((clip, decision)),
        Action::Delete => deletes.push((clip, decision)),
        Action::MoveToCool | Action::MoveToLegalHold | Action::Hold | Action::Release => {
            work.push((clip, decision))
        }
    }
}

/// Release a clip: when its case closed with a retention of its own, the
/// `retain-until` tag first (while the clip is still held: if that write fails, the clip
/// stays held); then legal hold OFF, then back to the cool tier (normal retention, and
/// never deleted before its `retain-until`).
async fn release(
    store: &dyn TierStore,
    clip: &Clip,
    retain_until: Option<DateTime<Utc>>,
) -> Result<MoveOutcome, StorageError> {
    let mut clip = clip.clone();
    if let Some(until) = retain_until {
        let tags = with_retain_until(&clip.tags, until).ok_or_else(|| {
            StorageError::InvalidInput(format!(
                "clip {} has {} tags: no room for {TAG_RETAIN_UNTIL}; kept under legal hold",
                clip.key,
                clip.tags.len()
            ))
        })?;
        if !same_tags(&tags, &clip.tags) {
            store.set_tags(&clip, &tags).await?;
            clip.tags = tags;
        }
    }
    if clip.legal_hold {
        store.set_legal_hold(&clip, false).await?;
    }
    clip.legal_hold = false;
    store.move_clip(&clip, Tier::Cool).await
}
