//! Tiers a sweep need not list (the catalogue's tier memos, `crate::catalogue::memo`):
//! whether a cool or legal-hold tier can go unlisted, counted from its memo, and what a
//! listing of it counted, to record as its next memo.

use std::collections::BTreeMap;

use chrono::Utc;

use super::{MAX_UNKNOWN_CATEGORIES, SweepOptions, SweepOutcome};
use crate::{
    api::clip::Tier,
    catalogue::{BucketCatalogue, TierSummary},
    engine::Planner,
    storage::TierStore,
};

/// Whether `tier` can go unlisted this sweep (its memo holds, and refreshing its clips'
/// facts from the catalogue found no change); if so, its counts from the memo are added
/// to `out`.
pub(super) async fn unlisted(
    store: &dyn TierStore,
    cat: &BucketCatalogue,
    tier: Tier,
    planner: &Planner<'_>,
    opts: &SweepOptions,
    out: &mut SweepOutcome,
) -> bool {
    // Clips this sweep moved into the tier are seen only by listing it.
    let moved_in = match tier {
        Tier::Hot => true,
        Tier::Cool => out.moved > 0,
        Tier::LegalHold => out.held > 0,
    };
    // Open access requests are counted clip by clip: every tier is listed while any is.
    if moved_in || !planner.preserves().is_empty() {
        cat.set_memo(tier, None).await;
        return false;
    }
    let Some(memo) = cat.memo(tier).await else {
        return false;
    };
    if !memo.holds(
        &opts.inputs,
        planner.now(),
        Utc::now(),
        cat.relist_interval(),
    ) {
        return false;
    }
    match cat.refresh_unlisted(store, tier, Utc::now()).await {
        Ok(r) if r.changed == 0 => {}
        Ok(r) => {
            tracing::info!(%tier, changed = r.changed, "clips changed since the tier was last listed; listing it");
            cat.set_memo(tier, None).await;
            return false;
        }
        Err(e) => {
            tracing::warn!(%tier, error = %e, "refreshing the tier's clips failed; listing it");
            return false;
        }
    }
    let s = memo.summary;
    out.add(tier, s.clips, s.bytes);
    out.flagged += s.flagged;
    out.malformed += s.malformed;
    for (name, n) in s.held_by {
        *out.held_by.entry(name).or_default() += n;
    }
    for (name, n) in s.selected_by {
        *out.selected_by.entry(name).or_default() += n;
    }
    out.unknown_category_clips += s.unknown_category_clips;
    for (name, n) in s.unknown_categories {
        if let Some(m) = out.unknown_categories.get_mut(&name) {
            *m += n;
        } else if out.unknown_categories.len() < MAX_UNKNOWN_CATEGORIES {
            out.unknown_categories.insert(name, n);
        }
    }
    out.due(memo.next_due);
    out.unlisted.push(tier);
    true
}

/// The counters of a sweep before a tier is listed: what the listing changed tells
/// whether it was quiet, and what it counted.
pub(super) struct Counts {
    acted: [u64; 6],
    clips: i64,
    bytes: i64,
    flagged: u64,
    malformed: u64,
    held_by: BTreeMap<String, u64>,
    selected_by: BTreeMap<String, u64>,
    failed_by: BTreeMap<String, u64>,
    unknown_categories: BTreeMap<String, u64>,
    unknown_category_clips: u64,
}

impl Counts {
    pub(super) fn of(out: &SweepOutcome, tier: Tier) -> Self {
        let totals = out.totals.get(&tier).copied().unwrap_or_default();
        Counts {
            acted: [
                out.moved,
                out.held,
                out.released,
                out.deleted,
                out.failed,
                out.retagged,
            ],
            clips: totals.clips,
            bytes: totals.bytes,
            flagged: out.flagged,
            malformed: out.malformed,
            held_by: out.held_by.clone(),
            selected_by: out.selected_by.clone(),
            failed_by: out.failed_by.clone(),
            unknown_categories: out.unknown_categories.clone(),
            unknown_category_clips: out.unknown_category_clips,
        }
    }

    /// Nothing acted on, failed, re-tagged or interrupted since.
    pub(super) fn quiet(&self, out: &SweepOutcome) -> bool {
        let now = Counts::of(out, Tier::Hot);
        now.acted == self.acted && now.failed_by == self.failed_by && !out.interrupted
    }

    /// What was counted in `tier` since.
    pub(super) fn summary(&self, out: &SweepOutcome, tier: Tier) -> TierSummary {
        let totals = out.totals.get(&tier).copied().unwrap_or_default();
        let since = |after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>| {
            after
                .iter()
                .filter_map(|(k, v)| {
                    let d = v.saturating_sub(before.get(k).copied().unwrap_or(0));
                    (d > 0).then(|| (k.clone(), d))
                })
                .collect()
        };
        TierSummary {
            clips: totals.clips - self.clips,
            bytes: totals.bytes - self.bytes,
            flagged: out.flagged - self.flagged,
            malformed: out.malformed - self.malformed,
            held_by: since(&out.held_by, &self.held_by),
            selected_by: since(&out.selected_by, &self.selected_by),
            unknown_categories: since(&out.unknown_categories, &self.unknown_categories),
            unknown_category_clips: out.unknown_category_clips - self.unknown_category_clips,
        }
    }
}
