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

mod fence;
mod memo;
mod purge;
mod records;
#[cfg(test)]
mod tests;

use self::fence::{Chunk, FenceRead, StickyFence};
use self::memo::{Counts, unlisted};
use self::records::clip_ref;
pub use self::{
    fence::{FencedHolds, HoldFence},
    records::SweepAudit,
};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use rand::Rng;
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
/// At most this many failure messages are kept for status and events.
const MAX_MESSAGES: usize = 5;

/// Clips and bytes in one tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierTotals {
    /// Number of clips.
    pub clips: i64,
    /// Total size in bytes.
    pub bytes: i64,
}

/// What a sweep did.
#[derive(Debug, Clone, Default)]
pub struct SweepOutcome {
    /// Totals per tier after the sweep.
    pub totals: BTreeMap<Tier, TierTotals>,
    /// Clips moved between tiers (hot to cool, and released back to cool).
    pub moved: u64,
    /// Clips moved into the legal-hold tier or put under hold there.
    pub held: u64,
    /// Clips released from legal hold.
    pub released: u64,
    /// Clips deleted because their retention ran out (soft-deleted where the policy
    /// has a restore window).
    pub deleted: u64,
    /// Soft-deleted clips purged for good (their window passed; planned again, still
    /// deleted).
    pub purged: u64,
    /// Soft-deleted clips still restorable after this sweep.
    pub restorable: u64,
    /// Clips flagged for a person's review (kept).
    pub flagged: u64,
    /// Clips kept because their metadata is malformed (kept and flagged).
    pub malformed: u64,
    /// Actions that failed (the clip stays where it is; retried next sweep).
    pub failed: u64,
    /// Clips under hold (in the legal-hold tier with the S3 hold on), by LegalHold name.
    pub held_by: BTreeMap<String, u64>,
    /// Clips each LegalHold in force selects, wherever they are, by name: a LegalHold is
    /// honestly `Ready` only when this equals its `held_by`.
    pub selected_by: BTreeMap<String, u64>,
    /// Clips each LegalHold in force selects whose hold or move into the legal-hold tier
    /// failed this sweep (retried next sweep), by name.
    pub failed_by: BTreeMap<String, u64>,
    /// The earliest time at which some clip's decision changes.
    pub next_due: Option<DateTime<Utc>>,
    /// The first few failure messages.
    pub messages: Vec<String>,
    /// Whether the sweep stopped early because the operator is shutting down.
    pub interrupted: bool,
    /// Whether any move failed a checksum verification.
    pub checksum_mismatches: u64,
    /// Audit records written by this sweep.
    pub audit_records: u64,
    /// The audit chain head after this sweep's last batch (batch number, hash).
    pub audit_head: Option<(u64, String)>,
    /// Flags recorded by this sweep (`action:key:tier`), to add to the replica's set.
    pub flags_recorded: Vec<String>,
    /// A uniform random sample of the cool and legal-hold clips listed, for the
    /// integrity sweep (at most `SweepOptions::integrity_sample`).
    pub sample: Vec<Clip>,
    /// Clips offered to the sample so far.
    seen_for_sample: u64,
    /// Categories tagged on clips that the policy does not name (the default rule
    /// applied), with how many clips carry each; at most [`MAX_UNKNOWN_CATEGORIES`]
    /// names, the rest counted in `unknown_category_clips` only.
    pub unknown_categories: BTreeMap<String, u64>,
    /// Clips whose category the policy does not name.
    pub unknown_category_clips: u64,
    /// Clips due for deletion whose tags had changed since they were listed (read again
    /// just before the delete): re-planned with their current tags.
    pub retagged: u64,
    /// Tiers not listed because their memo held (counted from it; see
    /// [`crate::catalogue::memo`]).
    pub unlisted: Vec<Tier>,
    /// Clips (and bytes) each open AccessRequest covers, by name, as listed.
    pub found_by: BTreeMap<String, TierTotals>,
    /// The earliest due time among the clips of the tier being listed.
    tier_due: Option<DateTime<Utc>>,
}

/// How many distinct unknown category names a sweep reports.
pub const MAX_UNKNOWN_CATEGORIES: usize = 10;

impl SweepOutcome {
    fn add(&mut self, tier: Tier, clips: i64, bytes: i64) {
        let t = self.totals.entry(tier).or_default();
        t.clips += clips;
        t.bytes += bytes;
    }

    fn unknown_category(&mut self, category: &str) {
        self.unknown_category_clips += 1;
        if let Some(n) = self.unknown_categories.get_mut(category) {
            *n += 1;
        } else if self.unknown_categories.len() < MAX_UNKNOWN_CATEGORIES {
            self.unknown_categories.insert(category.to_string(), 1);
        }
    }

    fn fail(&mut self, what: String) {
        self.failed += 1;
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(what);
        }
    }

    /// Reservoir sampling: keep each clip offered with probability `n / offered`.
    fn offer_sample(&mut self, clip: &Clip, n: usize) {
        if n == 0 {
            return;
        }
        self.seen_for_sample += 1;
        if self.sample.len() < n {
            self.sample.push(clip.clone());
            return;
        }
        let j = rand::rng().random_range(0..self.seen_for_sample);
        if let Ok(j) = usize::try_from(j)
            && j < n
        {
            self.sample[j] = clip.clone();
        }
    }

    fn due(&mut self, at: Option<DateTime<Utc>>) {
        if let Some(at) = at {
            self.next_due = Some(self.next_due.map_or(at, |n| n.min(at)));
            self.tier_due = Some(self.tier_due.map_or(at, |n| n.min(at)));
        }
    }

    /// The counts by action class, with stable names (for events and metrics).
    pub fn action_counts(&self) -> [(&'static str, u64); 7] {
        [
            ("moved", self.moved),
            ("held", self.held),
            ("released", self.released),
            ("deleted", self.deleted),
            ("purged", self.purged),
            ("flagged", self.flagged + self.malformed),
            ("failed", self.failed),
        ]
    }
}

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

/// Count a clip for each hold in force that selects it, where its sweep left it: a clip
/// moved into the legal-hold tier is counted when that tier is listed, later in the
/// same sweep, so not here.
fn count_selected(out: &mut SweepOutcome, decision: &Decision, failed: bool) {
    for hold in &decision.holds {
        *out.selected_by.entry(hold.clone()).or_default() += 1;
        if failed {
            *out.failed_by.entry(hold.clone()).or_default() += 1;
        }
    }
}

fn count_holds(out: &mut SweepOutcome, clip: &Clip, decision: &Decision) {
    if clip.tier == Tier::LegalHold {
        for hold in &decision.holds {
            *out.held_by.entry(hold.clone()).or_default() += 1;
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
