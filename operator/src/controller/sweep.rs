//! One sweep of one evidence bucket: list every tier, plan each clip with the engine,
//! and carry the plan out through the storage layer, a chunk at a time, so memory does
//! not grow with the number of clips.
//!
//! The sweep never decides anything itself: the engine's [`Decision`] says what to do and
//! why; the sweep only executes, counts and reports. Every failure is counted and the
//! clip is left where it is, to be retried at the next sweep.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use tokio_util::sync::CancellationToken;

use crate::{
    api::clip::{Clip, Tier},
    engine::{Action, Decision, Planner},
    storage::{StorageError, TierStore},
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
    /// Clips deleted because their retention ran out.
    pub deleted: u64,
    /// Clips flagged for a person's review (kept).
    pub flagged: u64,
    /// Clips kept because their metadata is malformed (kept and flagged).
    pub malformed: u64,
    /// Actions that failed (the clip stays where it is; retried next sweep).
    pub failed: u64,
    /// Clips under hold, by LegalHold name.
    pub held_by: BTreeMap<String, u64>,
    /// The earliest time at which some clip's decision changes.
    pub next_due: Option<DateTime<Utc>>,
    /// The first few failure messages.
    pub messages: Vec<String>,
    /// Whether the sweep stopped early because the operator is shutting down.
    pub interrupted: bool,
    /// Whether any move failed a checksum verification.
    pub checksum_mismatches: u64,
}

impl SweepOutcome {
    fn add(&mut self, tier: Tier, clips: i64, bytes: i64) {
        let t = self.totals.entry(tier).or_default();
        t.clips += clips;
        t.bytes += bytes;
    }

    fn fail(&mut self, what: String) {
        self.failed += 1;
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(what);
        }
    }

    fn due(&mut self, at: Option<DateTime<Utc>>) {
        if let Some(at) = at {
            self.next_due = Some(self.next_due.map_or(at, |n| n.min(at)));
        }
    }

    /// The counts by action class, with stable names (for events and metrics).
    pub fn action_counts(&self) -> [(&'static str, u64); 6] {
        [
            ("moved", self.moved),
            ("held", self.held),
            ("released", self.released),
            ("deleted", self.deleted),
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
}

/// Run one sweep: plan every clip of every tier and carry the plan out.
///
/// `draining` is cancelled when the operator shuts down: no new action starts after
/// that; actions already in flight finish (each is safe to abandon anyway).
pub async fn sweep(
    store: &dyn TierStore,
    planner: &Planner<'_>,
    opts: &SweepOptions,
    draining: &CancellationToken,
) -> Result<SweepOutcome, SweepError> {
    let mut out = SweepOutcome::default();
    for tier in Tier::ALL {
        out.totals.entry(tier).or_default();
    }
    for tier in Tier::ALL {
        let mut chunks = store.list(tier).chunks(CHUNK);
        while let Some(chunk) = chunks.next().await {
            let mut clips = Vec::with_capacity(chunk.len());
            for item in chunk {
                clips.push(item.map_err(|source| SweepError::List { tier, source })?);
            }
            if draining.is_cancelled() {
                out.interrupted = true;
                return Ok(out);
            }
            execute_chunk(store, planner, opts, draining, clips, &mut out).await;
        }
    }
    Ok(out)
}

async fn execute_chunk(
    store: &dyn TierStore,
    planner: &Planner<'_>,
    opts: &SweepOptions,
    draining: &CancellationToken,
    clips: Vec<Clip>,
    out: &mut SweepOutcome,
) {
    let mut deletes: Vec<(Clip, Decision)> = Vec::new();
    let mut work: Vec<(Clip, Decision)> = Vec::new();
    for clip in clips {
        let decision = planner.plan_clip(&clip);
        out.due(planner.next_due(&clip));
        let size = i64::try_from(clip.size).unwrap_or(i64::MAX);
        out.add(clip.tier, 1, size);
        match decision.action {
            Action::Keep => count_holds(out, &clip, &decision),
            Action::FlagForReview => {
                out.flagged += 1;
                count_holds(out, &clip, &decision);
            }
            Action::FlagMalformed => {
                out.malformed += 1;
                count_holds(out, &clip, &decision);
            }
            Action::Delete => deletes.push((clip, decision)),
            Action::MoveToCool | Action::MoveToLegalHold | Action::Hold | Action::Release => {
                work.push((clip, decision))
            }
        }
    }

    if !deletes.is_empty() && !draining.is_cancelled() {
        let batch: Vec<Clip> = deletes.iter().map(|(c, _)| c.clone()).collect();
        match store.delete_clips(&batch).await {
            Ok(report) => {
                let failed: BTreeMap<&str, String> = report
                    .failed
                    .iter()
                    .map(|f| (f.clip.key.as_str(), f.message.clone()))
                    .collect();
                for (clip, _) in &deletes {
                    match failed.get(clip.key.as_str()) {
                        Some(msg) => out.fail(format!("delete {}: {msg}", clip.key)),
                        None => {
                            out.deleted += 1;
                            out.add(clip.tier, -1, -i64::try_from(clip.size).unwrap_or(i64::MAX));
                        }
                    }
                }
            }
            Err(e) => {
                for (clip, _) in &deletes {
                    out.fail(format!("delete {}: {e}", clip.key));
                }
            }
        }
    } else if !deletes.is_empty() {
        out.interrupted = true;
    }

    let results: Vec<(Clip, Decision, Result<(), StorageError>)> = stream::iter(work)
        .map(|(clip, decision)| async move {
            if draining.is_cancelled() {
                return (clip, decision, None);
            }
            let result = match decision.action {
                Action::MoveToCool => store.move_clip(&clip, Tier::Cool).await.map(drop),
                Action::MoveToLegalHold => store.move_clip(&clip, Tier::LegalHold).await.map(drop),
                Action::Hold => store.set_legal_hold(&clip, true).await,
                Action::Release => release(store, &clip).await,
                _ => Ok(()),
            };
            (clip, decision, Some(result))
        })
        .buffer_unordered(opts.concurrency.max(1))
        .filter_map(|(clip, decision, result)| async move { result.map(|r| (clip, decision, r)) })
        .collect()
        .await;
    for (clip, decision, result) in results {
        let size = i64::try_from(clip.size).unwrap_or(i64::MAX);
        match result {
            Ok(()) => match decision.action {
                Action::MoveToCool => {
                    out.moved += 1;
                    // listed again when the cool tier is listed (after hot)
                    out.add(clip.tier, -1, -size);
                }
                Action::MoveToLegalHold => {
                    out.held += 1;
                    out.add(clip.tier, -1, -size);
                    // counted by hold when the legal-hold tier is listed
                }
                Action::Hold => {
                    out.held += 1;
                    count_holds(out, &clip, &decision);
                }
                Action::Release => {
                    out.released += 1;
                    out.add(clip.tier, -1, -size);
                    // the cool tier was listed before the legal-hold tier
                    out.add(Tier::Cool, 1, size);
                }
                _ => {}
            },
            Err(e) => {
                if matches!(e, StorageError::ChecksumMismatch { .. }) {
                    out.checksum_mismatches += 1;
                }
                out.fail(format!("{:?} {}: {e}", decision.action, clip.key));
                count_holds(out, &clip, &decision);
            }
        }
    }
    if draining.is_cancelled() {
        out.interrupted = true;
    }
}

fn count_holds(out: &mut SweepOutcome, clip: &Clip, decision: &Decision) {
    if clip.tier == Tier::LegalHold {
        for hold in &decision.holds {
            *out.held_by.entry(hold.clone()).or_default() += 1;
        }
    }
}

/// Release a clip: legal hold OFF, then back to the cool tier (normal retention).
async fn release(store: &dyn TierStore, clip: &Clip) -> Result<(), StorageError> {
    if clip.legal_hold {
        store.set_legal_hold(clip, false).await?;
    }
    let released = Clip {
        legal_hold: false,
        ..clip.clone()
    };
    store.move_clip(&released, Tier::Cool).await.map(drop)
}
