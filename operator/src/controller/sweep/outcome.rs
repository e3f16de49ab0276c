//! What a sweep did: [`SweepOutcome`], its counts per tier, action, hold and request,
//! the failures it keeps for status and events, and the sample it draws for the
//! integrity sweep; filled in by the sweep as it lists and acts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rand::Rng;

use crate::{
    api::clip::{Clip, Tier},
    engine::Decision,
};

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
    pub(super) tier_due: Option<DateTime<Utc>>,
}

/// How many distinct unknown category names a sweep reports.
pub const MAX_UNKNOWN_CATEGORIES: usize = 10;

impl SweepOutcome {
    pub(super) fn add(&mut self, tier: Tier, clips: i64, bytes: i64) {
        let t = self.totals.entry(tier).or_default();
        t.clips += clips;
        t.bytes += bytes;
    }

    pub(super) fn unknown_category(&mut self, category: &str) {
        self.unknown_category_clips += 1;
        if let Some(n) = self.unknown_categories.get_mut(category) {
            *n += 1;
        } else if self.unknown_categories.len() < MAX_UNKNOWN_CATEGORIES {
            self.unknown_categories.insert(category.to_string(), 1);
        }
    }

    pub(super) fn fail(&mut self, what: String) {
        self.failed += 1;
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(what);
        }
    }

    /// Reservoir sampling: keep each clip offered with probability `n / offered`.
    pub(super) fn offer_sample(&mut self, clip: &Clip, n: usize) {
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

    pub(super) fn due(&mut self, at: Option<DateTime<Utc>>) {
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

/// Count a clip for each hold in force that selects it, where its sweep left it: a clip
/// moved into the legal-hold tier is counted when that tier is listed, later in the
/// same sweep, so not here.
pub(super) fn count_selected(out: &mut SweepOutcome, decision: &Decision, failed: bool) {
    for hold in &decision.holds {
        *out.selected_by.entry(hold.clone()).or_default() += 1;
        if failed {
            *out.failed_by.entry(hold.clone()).or_default() += 1;
        }
    }
}

pub(super) fn count_holds(out: &mut SweepOutcome, clip: &Clip, decision: &Decision) {
    if clip.tier == Tier::LegalHold {
        for hold in &decision.holds {
            *out.held_by.entry(hold.clone()).or_default() += 1;
        }
    }
}
