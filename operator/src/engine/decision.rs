//! What the planner decides for one clip ([`Decision`]): an [`Action`] and the
//! structured [`Reason`] for it, whose `Display` is the sentence that goes into events,
//! logs and the audit trail. [`PlanSummary`] counts decisions for status and events.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::api::{clip::Tier, duration::RetentionDuration, retention_policy::ExpiryAction};

/// What should happen to one clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Nothing to do.
    Keep,
    /// Hot to cool: copy, verify, delete the source.
    MoveToCool,
    /// Hot or cool to the legal-hold tier: copy, verify, set the S3 legal hold ON,
    /// delete the source.
    MoveToLegalHold,
    /// Already in the legal-hold tier with the S3 hold OFF, and a hold selects it: set
    /// the hold ON.
    Hold,
    /// In the legal-hold tier and no active hold selects it: set the S3 hold OFF and
    /// move the clip back to cool.
    Release,
    /// Retention ran out, the rule says Delete, no hold, older than `minimumAge`.
    Delete,
    /// Retention ran out and the rule says Review: kept, reported for a person.
    FlagForReview,
    /// Metadata malformed (unparseable time, duplicate, oversized or too many tags):
    /// kept, reported.
    FlagMalformed,
}

impl Action {
    /// Every action, in reporting order.
    pub const ALL: [Action; 8] = [
        Action::Keep,
        Action::MoveToCool,
        Action::MoveToLegalHold,
        Action::Hold,
        Action::Release,
        Action::Delete,
        Action::FlagForReview,
        Action::FlagMalformed,
    ];

    /// A stable snake_case name for logs, metric labels and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::MoveToCool => "move_to_cool",
            Action::MoveToLegalHold => "move_to_legal_hold",
            Action::Hold => "hold",
            Action::Release => "release",
            Action::Delete => "delete",
            Action::FlagForReview => "flag_for_review",
            Action::FlagMalformed => "flag_malformed",
        }
    }

    /// Whether the action changes storage (everything but keep and the two flags).
    pub fn changes_storage(self) -> bool {
        !matches!(
            self,
            Action::Keep | Action::FlagForReview | Action::FlagMalformed
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which rule of the policy applied to a clip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CategoryMatch {
    /// A category listed in the policy (its name as written there).
    Named(String),
    /// The policy's default rule: the clip has no category tag (`None`) or one the
    /// policy does not list (`Some`, as tagged).
    Default {
        /// The unknown category as tagged, if there was a tag.
        tagged: Option<String>,
    },
}

impl fmt::Display for CategoryMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CategoryMatch::Named(name) => write!(f, "category {name}"),
            CategoryMatch::Default { tagged: None } => f.write_str("no category (default rule)"),
            CategoryMatch::Default { tagged: Some(t) } => {
                write!(f, "unknown category {t:?} (default rule)")
            }
        }
    }
}

/// Which clock a clip's retention was counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClockUsed {
    /// The `evidence.bwv.io/recorded-at` tag.
    RecordedAt,
    /// The upload time (policy clock `Upload`).
    Upload,
    /// The upload time, because the policy counts from recording time but the clip has
    /// no `recorded-at` tag (upload is later than recording, so this is the safe side).
    UploadNoRecordedAt,
}

impl fmt::Display for ClockUsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClockUsed::RecordedAt => "recorded-at",
            ClockUsed::Upload => "upload",
            ClockUsed::UploadNoRecordedAt => "upload (no recorded-at tag)",
        })
    }
}

/// The retention rule that applied to a clip and the clock it counted from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleContext {
    /// Which rule applied.
    pub category: CategoryMatch,
    /// Its retention.
    pub retention: RetentionDuration,
    /// What it does at expiry.
    pub on_expiry: ExpiryAction,
    /// Which clock.
    pub clock: ClockUsed,
    /// When the clock started.
    pub start: DateTime<Utc>,
}

impl fmt::Display for RuleContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, retention {} from {} {}",
            self.category,
            self.retention,
            self.clock,
            ts(self.start)
        )
    }
}

/// What is wrong with a clip's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataProblem {
    /// More tags than S3 allows.
    TooManyTags {
        /// How many.
        count: usize,
    },
    /// A tag key longer than S3 allows.
    KeyTooLong {
        /// The key's first characters.
        key: String,
    },
    /// A tag value longer than S3 allows.
    ValueTooLong {
        /// The tag's key.
        key: String,
    },
    /// The same tag key more than once: the metadata is ambiguous.
    DuplicateTag {
        /// The key.
        key: String,
    },
    /// A time tag that is not RFC 3339.
    BadTime {
        /// The tag's key.
        key: String,
        /// The value, as found.
        value: String,
    },
}

impl fmt::Display for MetadataProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataProblem::TooManyTags { count } => write!(
                f,
                "{count} tags, more than the {} S3 allows",
                crate::api::clip::tag_limits::MAX_TAGS
            ),
            MetadataProblem::KeyTooLong { key } => write!(
                f,
                "tag key {key:?}... is longer than {} characters",
                crate::api::clip::tag_limits::MAX_KEY_CHARS
            ),
            MetadataProblem::ValueTooLong { key } => write!(
                f,
                "the value of tag {key} is longer than {} characters",
                crate::api::clip::tag_limits::MAX_VALUE_CHARS
            ),
            MetadataProblem::DuplicateTag { key } => write!(f, "tag {key} appears more than once"),
            MetadataProblem::BadTime { key, value } => {
                write!(f, "tag {key} is {value:?}, not an RFC 3339 time")
            }
        }
    }
}

/// Why the planner decided what it did. `Display` gives a human sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// In the legal-hold tier, S3 hold ON, selected by these holds.
    Held {
        /// Names of the holds selecting the clip.
        holds: Vec<String>,
    },
    /// In the legal-hold tier, selected, but the S3 hold is OFF.
    HoldMissing {
        /// Names of the holds selecting the clip.
        holds: Vec<String>,
    },
    /// Outside the legal-hold tier and selected by these holds.
    SelectedByHold {
        /// The tier the clip is in.
        tier: Tier,
        /// Names of the holds selecting the clip.
        holds: Vec<String>,
    },
    /// In the legal-hold tier and no active hold selects it.
    NoActiveHold {
        /// Whether the S3 hold is still ON.
        locked: bool,
    },
    /// The S3 legal hold is ON outside the legal-hold tier and no active hold selects
    /// the clip: someone else locked it; the operator does not touch it.
    LockedOutsideLegalHoldTier {
        /// The tier the clip is in.
        tier: Tier,
    },
    /// The clip's metadata is malformed.
    Malformed(MetadataProblem),
    /// Retention has not run out (`until` is `None` for `Forever`).
    Retained {
        /// The rule and clock.
        rule: RuleContext,
        /// When retention runs out.
        until: Option<DateTime<Utc>>,
    },
    /// Kept, and older than `coolAfter`: leaves the hot tier.
    CoolAfter {
        /// The rule and clock.
        rule: RuleContext,
        /// The policy's `coolAfter`.
        cool_after: RetentionDuration,
        /// When the clip became due to cool.
        due: DateTime<Utc>,
    },
    /// Retention ran out and the rule says Delete.
    Expired {
        /// The rule and clock.
        rule: RuleContext,
        /// When retention ran out.
        expired: DateTime<Utc>,
    },
    /// Retention ran out and the rule says Delete, but the clip is younger than the
    /// safety floor.
    SafetyFloor {
        /// The rule and clock.
        rule: RuleContext,
        /// When retention ran out.
        expired: DateTime<Utc>,
        /// The policy's `minimumAge`.
        minimum_age: RetentionDuration,
        /// When the clip is old enough by both clocks (`None`: never).
        deletable_at: Option<DateTime<Utc>>,
    },
    /// Retention ran out and the rule says Review.
    ReviewDue {
        /// The rule and clock.
        rule: RuleContext,
        /// When retention ran out.
        expired: DateTime<Utc>,
    },
    /// Retention ran out and the rule says Review, and the clip, kept for a person's
    /// decision, is older than `coolAfter`: it leaves the hot tier like any kept clip
    /// (and is flagged for review in the cool tier).
    ReviewDueCooling {
        /// The rule and clock.
        rule: RuleContext,
        /// When retention ran out.
        expired: DateTime<Utc>,
        /// The policy's `coolAfter`.
        cool_after: RetentionDuration,
    },
    /// The rule's retention ran out (or runs out earlier), but the clip carries a
    /// `retain-until` (its case closed with `retainAfterRelease`) that has not passed.
    RetainedAfterRelease {
        /// The rule and clock.
        rule: RuleContext,
        /// When the rule's retention runs out (`None`: `Forever`).
        expires: Option<DateTime<Utc>>,
        /// The clip's `retain-until`.
        retain_until: DateTime<Utc>,
    },
    /// Preserved by an open access request (or disclosure): not deleted, not moved,
    /// whatever the policy would otherwise do.
    Preserved {
        /// Names of the requests preserving the clip.
        requests: Vec<String>,
        /// What the policy would otherwise have done.
        instead: Action,
    },
}

impl Reason {
    /// The retention rule behind the decision, when one applied.
    pub fn rule(&self) -> Option<&RuleContext> {
        match self {
            Reason::Retained { rule, .. }
            | Reason::CoolAfter { rule, .. }
            | Reason::Expired { rule, .. }
            | Reason::SafetyFloor { rule, .. }
            | Reason::ReviewDue { rule, .. }
            | Reason::ReviewDueCooling { rule, .. }
            | Reason::RetainedAfterRelease { rule, .. } => Some(rule),
            _ => None,
        }
    }

    /// The category as tagged, when the policy does not name it and the default rule
    /// applied (a misspelt or new category: worth telling a person).
    pub fn unknown_category(&self) -> Option<&str> {
        match &self.rule()?.category {
            CategoryMatch::Default { tagged: Some(t) } => Some(t),
            _ => None,
        }
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn names(holds: &[String]) -> String {
    holds.join(", ")
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Held { holds } => write!(f, "held by legal hold {}", names(holds)),
            Reason::HoldMissing { holds } => write!(
                f,
                "selected by legal hold {} but the S3 legal hold is off",
                names(holds)
            ),
            Reason::SelectedByHold { tier, holds } => write!(
                f,
                "selected by legal hold {} while in the {tier} tier",
                names(holds)
            ),
            Reason::NoActiveHold { locked: true } => f.write_str(
                "in the legal-hold tier, S3 legal hold on, but no active legal hold selects it",
            ),
            Reason::NoActiveHold { locked: false } => {
                f.write_str("in the legal-hold tier but no active legal hold selects it")
            }
            Reason::LockedOutsideLegalHoldTier { tier } => write!(
                f,
                "S3 legal hold is on in the {tier} tier and no legal hold of this operator selects it: left untouched"
            ),
            Reason::Malformed(problem) => write!(f, "malformed metadata: {problem}; kept"),
            Reason::Retained {
                rule,
                until: Some(until),
            } => {
                write!(f, "{rule} runs until {}", ts(*until))
            }
            Reason::Retained { rule, until: None } => write!(f, "{rule}: kept"),
            Reason::CoolAfter {
                rule,
                cool_after,
                due,
            } => write!(
                f,
                "{rule}: kept, older than coolAfter {cool_after} since {}",
                ts(*due)
            ),
            Reason::Expired { rule, expired } => write!(f, "{rule} expired {}", ts(*expired)),
            Reason::SafetyFloor {
                rule,
                expired,
                minimum_age,
                deletable_at,
            } => {
                write!(
                    f,
                    "{rule} expired {}, but the clip is younger than minimumAge {minimum_age}",
                    ts(*expired)
                )?;
                match deletable_at {
                    Some(t) => write!(f, " until {}", ts(*t)),
                    None => Ok(()),
                }
            }
            Reason::ReviewDue { rule, expired } => write!(
                f,
                "{rule} expired {}: kept for review by a person",
                ts(*expired)
            ),
            Reason::ReviewDueCooling {
                rule,
                expired,
                cool_after,
            } => write!(
                f,
                "{rule} expired {}: kept for review by a person, and older than coolAfter {cool_after}",
                ts(*expired)
            ),
            Reason::RetainedAfterRelease {
                rule,
                expires,
                retain_until,
            } => {
                match expires {
                    Some(t) => write!(f, "{rule} ran until {}", ts(*t))?,
                    None => write!(f, "{rule}")?,
                }
                write!(
                    f,
                    ", but its case closed with retention to {} (retain-until): kept",
                    ts(*retain_until)
                )
            }
            Reason::Preserved { requests, instead } => write!(
                f,
                "preserved by access request {} (the policy would {instead}): kept as it is",
                names(requests)
            ),
        }
    }
}

/// The planner's decision for one clip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The clip's key.
    pub key: String,
    /// The tier the clip is in.
    pub tier: Tier,
    /// What to do.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// Names of the active holds selecting the clip (sorted, no duplicates).
    pub holds: Vec<String>,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({}): {}",
            self.action, self.key, self.tier, self.reason
        )
    }
}

/// Counts of decisions per action, for status and events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanSummary {
    /// [`Action::Keep`] decisions.
    pub keep: u64,
    /// [`Action::MoveToCool`] decisions.
    pub move_to_cool: u64,
    /// [`Action::MoveToLegalHold`] decisions.
    pub move_to_legal_hold: u64,
    /// [`Action::Hold`] decisions.
    pub hold: u64,
    /// [`Action::Release`] decisions.
    pub release: u64,
    /// [`Action::Delete`] decisions.
    pub delete: u64,
    /// [`Action::FlagForReview`] decisions.
    pub flag_for_review: u64,
    /// [`Action::FlagMalformed`] decisions.
    pub flag_malformed: u64,
}

impl PlanSummary {
    /// Count one decision.
    pub fn add(&mut self, decision: &Decision) {
        *self.count_mut(decision.action) += 1;
    }

    /// The count for one action.
    pub fn count(&self, action: Action) -> u64 {
        match action {
            Action::Keep => self.keep,
            Action::MoveToCool => self.move_to_cool,
            Action::MoveToLegalHold => self.move_to_legal_hold,
            Action::Hold => self.hold,
            Action::Release => self.release,
            Action::Delete => self.delete,
            Action::FlagForReview => self.flag_for_review,
            Action::FlagMalformed => self.flag_malformed,
        }
    }

    fn count_mut(&mut self, action: Action) -> &mut u64 {
        match action {
            Action::Keep => &mut self.keep,
            Action::MoveToCool => &mut self.move_to_cool,
            Action::MoveToLegalHold => &mut self.move_to_legal_hold,
            Action::Hold => &mut self.hold,
            Action::Release => &mut self.release,
            Action::Delete => &mut self.delete,
            Action::FlagForReview => &mut self.flag_for_review,
            Action::FlagMalformed => &mut self.flag_malformed,
        }
    }

    /// All decisions counted.
    pub fn total(&self) -> u64 {
        Action::ALL.iter().map(|a| self.count(*a)).sum()
    }

    /// Decisions that change storage (moves, holds, releases, deletes).
    pub fn changes(&self) -> u64 {
        Action::ALL
            .iter()
            .filter(|a| a.changes_storage())
            .map(|a| self.count(*a))
            .sum()
    }

    /// Add another summary's counts (e.g. from a parallel shard).
    pub fn merge(&mut self, other: &PlanSummary) {
        for a in Action::ALL {
            *self.count_mut(a) += other.count(a);
        }
    }
}

impl fmt::Display for PlanSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Action::ALL
            .iter()
            .filter(|a| self.count(**a) > 0)
            .map(|a| format!("{} {}", self.count(*a), a.as_str()))
            .collect();
        if parts.is_empty() {
            f.write_str("no clips")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}
