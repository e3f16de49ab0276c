//! The restore window: when a soft-deleted clip (a policy with `restoreWindow` deleted
//! it, and its data version stays beneath a delete marker) may be purged for good.
//!
//! A purge is a second deletion, and it is decided like the first one, again: the clip's
//! data version is planned as if it were live, with the policy, holds and preserves in
//! force now, and is purged only if that plan still says [`Action::Delete`] (so a clip
//! re-categorised, selected by a legal hold or an open access request, or given a
//! `retain-until` since it was deleted, is kept), only once the window has passed since
//! its deletion, and never while its version has an S3 legal hold.

use chrono::{DateTime, Utc};

use super::{Action, Planner};
use crate::api::clip::Clip;

/// What to do with one soft-deleted clip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeDecision {
    /// Purge it now: its window has passed and the policy still deletes it.
    Purge {
        /// Why, for the audit record.
        reason: String,
    },
    /// Still restorable: purged at `until` at the earliest.
    Restorable {
        /// When its window ends.
        until: DateTime<Utc>,
    },
    /// Kept: restorable until a person restores it (or the reason goes away).
    Kept {
        /// Why it is kept.
        reason: String,
    },
}

impl Planner<'_> {
    /// The decision for a soft-deleted clip: `data` is its data version (as a clip),
    /// `deleted_at` the time of its delete marker. Without a `restoreWindow` in the
    /// policy nothing is purged (a policy that had one and lost it leaves its deleted
    /// clips restorable; see docs/resources.md).
    pub fn plan_purge(&self, data: &Clip, deleted_at: DateTime<Utc>) -> PurgeDecision {
        if data.legal_hold {
            return PurgeDecision::Kept {
                reason: "its version is under an S3 legal hold".into(),
            };
        }
        let Some(window) = self.policy().restore_window else {
            return PurgeDecision::Kept {
                reason: "the policy has no restoreWindow now".into(),
            };
        };
        let Some(until) = window.after(deleted_at) else {
            return PurgeDecision::Kept {
                reason: format!("restoreWindow {window} never ends"),
            };
        };
        if self.now() < until {
            return PurgeDecision::Restorable { until };
        }
        let d = self.plan_clip(data);
        if d.action != Action::Delete {
            return PurgeDecision::Kept {
                reason: format!(
                    "planned again before its purge, it would not be deleted now ({}: {})",
                    d.action, d.reason
                ),
            };
        }
        PurgeDecision::Purge {
            reason: format!(
                "deleted at {} and not restored within restoreWindow {window}; planned again: {}",
                deleted_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                d.reason
            ),
        }
    }
}
