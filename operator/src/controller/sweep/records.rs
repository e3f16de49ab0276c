//! The sweep's audit records: what it writes about each clip, the write-ahead intent
//! before an action and the outcome after, with the holds and case references
//! concerned.

use std::collections::{BTreeMap, HashSet};

use super::Done;
use crate::{
    api::clip::{Clip, Tier},
    audit::{AuditAction, AuditError, AuditSink, ClipRef, Entry},
    engine::{Action, ActiveHold, Decision, Planner},
};

pub(super) fn clip_ref(clip: &Clip) -> ClipRef {
    ClipRef {
        key: clip.key.clone(),
        version_id: clip.version_id.clone(),
        size: clip.size,
    }
}

/// What the sweep needs to write its audit records.
pub struct SweepAudit<'a> {
    /// Where the records go.
    pub sink: &'a dyn AuditSink,
    /// Case reference of every LegalHold of the bucket (active or being deleted).
    pub cases: BTreeMap<String, String>,
    /// A planner that sees only the holds being deleted: which of them selected a clip
    /// that is released (so that its record names the case).
    pub releasing: Option<&'a Planner<'a>>,
    /// Flags already recorded by this replica (`action:key:tier`): a clip flagged at
    /// every sweep is recorded once per replica lifetime, not once per sweep.
    pub flagged_before: &'a HashSet<String>,
}

impl<'a> SweepAudit<'a> {
    /// The same, also naming the cases of `holds` (holds the fence found mid-sweep).
    pub(super) fn with_cases_of(&self, holds: &[ActiveHold]) -> SweepAudit<'a> {
        let mut cases = self.cases.clone();
        cases.extend(
            holds
                .iter()
                .map(|h| (h.name.clone(), h.case_reference.clone())),
        );
        SweepAudit {
            sink: self.sink,
            cases,
            releasing: self.releasing,
            flagged_before: self.flagged_before,
        }
    }

    /// Write one batch of records, and count it and the chain's head after it in `out`.
    pub(super) async fn write(
        &self,
        entries: Vec<Entry>,
        out: &mut super::SweepOutcome,
    ) -> Result<(), AuditError> {
        let n = entries.len() as u64;
        let receipt = self.sink.record(entries).await?;
        out.audit_records += n;
        if let Some(r) = receipt {
            out.audit_head = Some((r.batch, r.head));
        }
        Ok(())
    }

    /// Until when a released clip is to be kept: the `retainAfterRelease` of the holds
    /// being deleted that selected it, from now (`None`: none has one).
    pub(super) fn retain_until(&self, clip: &Clip) -> Option<chrono::DateTime<chrono::Utc>> {
        self.releasing.and_then(|p| p.retain_after_release(clip))
    }

    fn with_holds(&self, e: &mut Entry, holds: Vec<String>) {
        e.cases = holds
            .iter()
            .filter_map(|h| self.cases.get(h).cloned())
            .collect();
        e.cases.sort();
        e.cases.dedup();
        e.holds = holds;
    }

    /// A record about an action on a clip, before its outcome is known: its tiers, its
    /// recorded checksum and the holds (and cases) it concerns.
    fn about(
        &self,
        action: AuditAction,
        clip: &Clip,
        decision: &Decision,
        reason: String,
    ) -> Entry {
        let mut e = Entry::clip(action, clip_ref(clip), Some(clip.tier), reason);
        e.sha256 = clip.sha256.clone();
        e.to_tier = match decision.action {
            Action::MoveToCool | Action::Release => Some(Tier::Cool),
            Action::MoveToLegalHold | Action::Hold => Some(Tier::LegalHold),
            _ => None,
        };
        let holds = if decision.action == Action::Release {
            self.releasing
                .map(|p| p.plan_clip(clip).holds)
                .unwrap_or_default()
        } else {
            decision.holds.clone()
        };
        self.with_holds(&mut e, holds);
        if decision.action == Action::Release
            && let Some(until) = self.retain_until(clip)
        {
            e.reason = format!(
                "{}; its case closed with retainAfterRelease: kept at least until {} (tag {} written before the S3 legal hold is cleared)",
                e.reason,
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                crate::api::clip::TAG_RETAIN_UNTIL
            );
        }
        e
    }

    /// The write-ahead record of an action about to start.
    pub(super) fn intent(&self, clip: &Clip, decision: &Decision) -> Entry {
        self.about(
            AuditAction::Intended,
            clip,
            decision,
            format!("{} intended: {}", decision.action, decision.reason),
        )
    }

    pub(super) fn entry(&self, clip: &Clip, decision: &Decision, result: &Done) -> Entry {
        let reason = decision.reason.to_string();
        let mut e = self.about(AuditAction::Failed, clip, decision, reason.clone());
        match result {
            Done::Ok(moved) => {
                e.action = match decision.action {
                    Action::MoveToCool => AuditAction::Moved,
                    Action::MoveToLegalHold | Action::Hold => AuditAction::Held,
                    Action::Release => AuditAction::Released,
                    Action::Delete => AuditAction::Deleted,
                    _ => AuditAction::Failed,
                };
                if let Some(m) = moved {
                    e.sha256 = Some(m.sha256.clone());
                    e.reason = format!(
                        "{}; copy SHA-256 verified ({}){}{}",
                        e.reason,
                        m.verification.as_str(),
                        m.dst_version_id
                            .as_deref()
                            .map(|v| format!(", now version {v}"))
                            .unwrap_or_default(),
                        if m.source_deleted {
                            ", source version deleted"
                        } else {
                            ""
                        }
                    );
                }
                if decision.action == Action::Delete {
                    e.to_tier = None;
                }
            }
            Done::Refused(msg) => {
                e.action = AuditAction::Refused;
                e.reason = format!("{} refused by the store: {msg}; {reason}", decision.action);
            }
            Done::Failed(err) => {
                e.reason = format!("{} failed: {err}; {reason}", decision.action);
            }
            Done::FailedMsg(msg) => {
                e.reason = format!("{} failed: {msg}; {reason}", decision.action);
            }
        }
        e
    }
}
