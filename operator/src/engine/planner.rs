//! The planner: one policy, the active holds and `now`, compiled once per sweep; then a
//! decision per clip, in any order, with no state carried from one clip to the next.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{
    decision::{Action, CategoryMatch, ClockUsed, Decision, MetadataProblem, Reason, RuleContext},
    holds::{ActiveHold, CompiledHold},
    preserve::{CompiledPreserve, Preserve},
};
use crate::api::{
    clip::{
        Clip, TAG_CATEGORY, TAG_RECORDED_AT, TAG_RETAIN_UNTIL, TAG_UPLOADED_AT, Tier,
        tag_limits::{MAX_KEY_CHARS, MAX_TAGS, MAX_VALUE_CHARS},
    },
    duration::RetentionDuration,
    retention_policy::{ExpiryAction, RetentionClock, RetentionPolicySpec},
};

/// The `retain-until` written for a `retainAfterRelease: Forever`: the last moment RFC
/// 3339 can write with a four-digit year.
pub const RETAIN_FOREVER: DateTime<Utc> = match DateTime::from_timestamp(253_402_300_799, 0) {
    Some(t) => t,
    None => DateTime::<Utc>::MIN_UTC,
};

/// Why a policy could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// Two categories have the same name (ignoring case and blanks).
    #[error("retention policy lists category {name:?} more than once")]
    DuplicateCategory {
        /// The duplicated name.
        name: String,
    },
    /// A category name is blank.
    #[error("retention policy has a category with a blank name")]
    BlankCategory,
}

/// A compiled retention rule.
#[derive(Debug, Clone, Copy)]
struct Rule<'a> {
    name: Option<&'a str>,
    retention: RetentionDuration,
    on_expiry: ExpiryAction,
}

/// Decides, clip by clip, what should happen. Built once per sweep; [`Planner::plan_clip`]
/// is pure and per clip, so a sweep streams clips through it with memory independent
/// of how many there are.
#[derive(Debug)]
pub struct Planner<'a> {
    policy: &'a RetentionPolicySpec,
    categories: HashMap<String, Rule<'a>>,
    holds: Vec<CompiledHold<'a>>,
    /// The preserves in force (open access requests), as given and compiled.
    preserve_src: &'a [Preserve],
    preserves: Vec<CompiledPreserve<'a>>,
    now: DateTime<Utc>,
}

/// The planner's full view of one clip: the decision and when it next changes.
struct Evaluation {
    action: Action,
    reason: Reason,
    holds: Vec<String>,
    next_due: Option<DateTime<Utc>>,
}

/// The clip's times as the policy reads them.
struct Times {
    recorded_at: Option<DateTime<Utc>>,
    upload: DateTime<Utc>,
    /// The `retain-until` tag: no deletion before it.
    retain_until: Option<DateTime<Utc>>,
}

impl<'a> Planner<'a> {
    /// Compile a policy and the active holds for planning at `now`.
    pub fn new(
        policy: &'a RetentionPolicySpec,
        holds: &'a [ActiveHold],
        now: DateTime<Utc>,
    ) -> Result<Self, EngineError> {
        let mut categories = HashMap::with_capacity(policy.categories.len());
        for c in &policy.categories {
            let key = normalise(&c.name);
            if key.is_empty() {
                return Err(EngineError::BlankCategory);
            }
            let rule = Rule {
                name: Some(c.name.as_str()),
                retention: c.retention,
                on_expiry: c.on_expiry,
            };
            if categories.insert(key, rule).is_some() {
                return Err(EngineError::DuplicateCategory {
                    name: c.name.clone(),
                });
            }
        }
        Ok(Planner {
            policy,
            categories,
            holds: holds.iter().map(CompiledHold::new).collect(),
            preserve_src: &[],
            preserves: Vec::new(),
            now,
        })
    }

    /// The same planner with these preserves in force: a clip a preserve selects (an
    /// open access request or disclosure) is neither deleted nor moved (a move rewrites
    /// it), whatever the policy says; a legal hold still takes it into the legal-hold
    /// tier (a verified copy into Object Lock), and it is not released from there while
    /// preserved.
    pub fn preserving(mut self, preserves: &'a [Preserve]) -> Self {
        self.preserve_src = preserves;
        self.preserves = preserves.iter().map(CompiledPreserve::new).collect();
        self
    }

    /// The preserves in force.
    pub fn preserves(&self) -> &'a [Preserve] {
        self.preserve_src
    }

    /// The names of the preserves (open access requests) that cover `clip`, sorted.
    pub fn preserved_by(&self, clip: &Clip) -> Vec<&'a str> {
        let mut names: Vec<&'a str> = self
            .preserves
            .iter()
            .filter(|p| p.selects(clip))
            .map(|p| p.name)
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Another policy with the same holds, preserves and `now` (the fence's changed
    /// policy): protection by requests is never lost by a policy change.
    pub fn with_policy<'b>(
        &self,
        policy: &'b RetentionPolicySpec,
        holds: &'b [ActiveHold],
    ) -> Result<Planner<'b>, EngineError>
    where
        'a: 'b,
    {
        Ok(Planner::new(policy, holds, self.now)?.preserving(self.preserve_src))
    }

    /// The moment this planner plans for.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The policy this planner plans with.
    pub fn policy(&self) -> &'a RetentionPolicySpec {
        self.policy
    }

    /// The same policy at the same time with other holds: a sweep re-plans a chunk with
    /// the holds it reads just before acting on it.
    pub fn with_holds<'b>(&self, holds: &'b [ActiveHold]) -> Result<Planner<'b>, EngineError>
    where
        'a: 'b,
    {
        Ok(Planner::new(self.policy, holds, self.now)?.preserving(self.preserve_src))
    }

    /// Until when `clip` is to be kept once the holds of this planner that select it are
    /// released: the latest of their `retainAfterRelease` counted from `now` (`Forever`:
    /// [`RETAIN_FOREVER`]); `None` when none of them has one.
    pub fn retain_after_release(&self, clip: &Clip) -> Option<DateTime<Utc>> {
        self.holds
            .iter()
            .filter(|h| h.selects(clip))
            .filter_map(|h| h.retain_after_release)
            .map(|d| d.after(self.now).unwrap_or(RETAIN_FOREVER))
            .max()
    }

    /// The decision for one clip. Pure: depends only on the policy, the holds, `now`
    /// and this clip.
    pub fn plan_clip(&self, clip: &Clip) -> Decision {
        let e = self.evaluate(clip);
        Decision {
            key: clip.key.clone(),
            tier: clip.tier,
            action: e.action,
            reason: e.reason,
            holds: e.holds,
        }
    }

    /// [`Planner::plan_clip`] and [`Planner::next_due`] in one evaluation (half the work
    /// of calling both).
    pub fn plan_with_due(&self, clip: &Clip) -> (Decision, Option<DateTime<Utc>>) {
        let e = self.evaluate(clip);
        let decision = Decision {
            key: clip.key.clone(),
            tier: clip.tier,
            action: e.action,
            reason: e.reason,
            holds: e.holds,
        };
        (decision, e.next_due)
    }

    /// When this clip's decision next changes by the passing of time alone (it cools,
    /// its retention runs out, it passes the safety floor); `None` when only a change of
    /// policy, holds or storage can change it.
    pub fn next_due(&self, clip: &Clip) -> Option<DateTime<Utc>> {
        self.evaluate(clip).next_due
    }

    /// The evaluation, with the preserves applied: a preserved clip is kept where and as
    /// it is unless a legal hold takes it into the legal-hold tier.
    fn evaluate(&self, clip: &Clip) -> Evaluation {
        let e = self.evaluate_policy(clip);
        if !matches!(
            e.action,
            Action::Delete | Action::MoveToCool | Action::Release
        ) {
            return e;
        }
        let mut requests: Vec<String> = self
            .preserves
            .iter()
            .filter(|p| p.selects(clip))
            .map(|p| p.name.to_string())
            .collect();
        if requests.is_empty() {
            return e;
        }
        requests.sort_unstable();
        requests.dedup();
        Evaluation {
            action: Action::Keep,
            reason: Reason::Preserved {
                requests,
                instead: e.action,
            },
            holds: e.holds,
            next_due: None,
        }
    }

    /// The evaluation by the legal holds, the metadata and the policy.
    fn evaluate_policy(&self, clip: &Clip) -> Evaluation {
        let mut holds: Vec<String> = self
            .holds
            .iter()
            .filter(|h| h.selects(clip))
            .map(|h| h.name.to_string())
            .collect();
        holds.sort_unstable();
        holds.dedup();

        let fixed = |action, reason, holds| Evaluation {
            action,
            reason,
            holds,
            next_due: None,
        };

        // 1. Legal holds come first: a selected clip goes to (and stays in) the
        //    legal-hold tier, locked, whatever its metadata and retention say.
        if !holds.is_empty() {
            return match (clip.tier, clip.legal_hold) {
                (Tier::LegalHold, true) => fixed(
                    Action::Keep,
                    Reason::Held {
                        holds: holds.clone(),
                    },
                    holds,
                ),
                (Tier::LegalHold, false) => fixed(
                    Action::Hold,
                    Reason::HoldMissing {
                        holds: holds.clone(),
                    },
                    holds,
                ),
                (tier, _) => fixed(
                    Action::MoveToLegalHold,
                    Reason::SelectedByHold {
                        tier,
                        holds: holds.clone(),
                    },
                    holds,
                ),
            };
        }
        if clip.tier == Tier::LegalHold {
            return fixed(
                Action::Release,
                Reason::NoActiveHold {
                    locked: clip.legal_hold,
                },
                holds,
            );
        }
        if clip.legal_hold {
            return fixed(
                Action::Keep,
                Reason::LockedOutsideLegalHoldTier { tier: clip.tier },
                holds,
            );
        }

        // 2. Malformed metadata: kept and flagged, never deleted.
        let times = match check_metadata(clip) {
            Ok(times) => times,
            Err(problem) => return fixed(Action::FlagMalformed, Reason::Malformed(problem), holds),
        };

        // 3. Retention.
        let rule = self.rule_for(clip);
        let (clock, start) = match (self.policy.retention_clock, times.recorded_at) {
            (RetentionClock::RecordedAt, Some(t)) => (ClockUsed::RecordedAt, t),
            (RetentionClock::RecordedAt, None) => (ClockUsed::UploadNoRecordedAt, times.upload),
            (RetentionClock::Upload, _) => (ClockUsed::Upload, times.upload),
        };
        let context = RuleContext {
            category: match rule.name {
                Some(name) => CategoryMatch::Named(name.to_string()),
                None => CategoryMatch::Default {
                    tagged: clip
                        .tag(TAG_CATEGORY)
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                },
            },
            retention: rule.retention,
            on_expiry: rule.on_expiry,
            clock,
            start,
        };
        let expiry = rule.retention.after(start);
        // When the decision can next change by expiry: the later of the rule's end and
        // the clip's retain-until.
        let effective_expiry = expiry.map(|e| times.retain_until.map_or(e, |u| e.max(u)));
        // When a kept clip leaves the hot tier.
        let cool_at = match clip.tier {
            Tier::Hot => self.policy.cool_after.after(start),
            _ => None,
        };
        let now = self.now;

        match expiry {
            // The case closed with a retention of its own that runs later: kept.
            Some(expired) if expired <= now && times.retain_until.is_some_and(|u| u > now) => {
                let retain_until = times.retain_until.unwrap_or(expired);
                self.kept(
                    context,
                    cool_at,
                    holds,
                    |rule| Reason::RetainedAfterRelease {
                        rule,
                        expires: Some(expired),
                        retain_until,
                    },
                    Some(retain_until),
                )
            }
            Some(expired) if expired <= now => match rule.on_expiry {
                // Kept for a person's decision, and like any kept clip it leaves the hot
                // tier once older than coolAfter (flagged there).
                ExpiryAction::Review => match cool_at {
                    Some(due) if due <= now => Evaluation {
                        action: Action::MoveToCool,
                        reason: Reason::ReviewDueCooling {
                            rule: context,
                            expired,
                            cool_after: self.policy.cool_after,
                        },
                        holds,
                        next_due: None,
                    },
                    _ => Evaluation {
                        action: Action::FlagForReview,
                        reason: Reason::ReviewDue {
                            rule: context,
                            expired,
                        },
                        holds,
                        next_due: cool_at,
                    },
                },
                ExpiryAction::Delete => {
                    let floor = self.deletable_at(&times);
                    match floor {
                        Some(t) if t <= now => fixed(
                            Action::Delete,
                            Reason::Expired {
                                rule: context,
                                expired,
                            },
                            holds,
                        ),
                        _ => Evaluation {
                            action: Action::Keep,
                            reason: Reason::SafetyFloor {
                                rule: context,
                                expired,
                                minimum_age: self.policy.minimum_age,
                                deletable_at: floor,
                            },
                            holds,
                            next_due: floor,
                        },
                    }
                }
            },
            _ => self.kept(
                context,
                cool_at,
                holds,
                |rule| Reason::Retained {
                    rule,
                    until: expiry,
                },
                effective_expiry,
            ),
        }
    }

    /// A kept clip: moved out of the hot tier once older than `coolAfter` (`cool_at`,
    /// `None` outside hot), its decision next changing at `next_due`; otherwise kept
    /// for the reason `keep` gives, next changing at the earlier of the two.
    fn kept(
        &self,
        rule: RuleContext,
        cool_at: Option<DateTime<Utc>>,
        holds: Vec<String>,
        keep: impl FnOnce(RuleContext) -> Reason,
        next_due: Option<DateTime<Utc>>,
    ) -> Evaluation {
        match cool_at {
            Some(due) if due <= self.now => Evaluation {
                action: Action::MoveToCool,
                reason: Reason::CoolAfter {
                    rule,
                    cool_after: self.policy.cool_after,
                    due,
                },
                holds,
                next_due,
            },
            _ => Evaluation {
                action: Action::Keep,
                reason: keep(rule),
                holds,
                next_due: earliest(cool_at, next_due),
            },
        }
    }

    /// The rule for a clip: its category's, matched ignoring case and surrounding
    /// blanks, or the default.
    fn rule_for(&self, clip: &Clip) -> Rule<'a> {
        clip.tag(TAG_CATEGORY)
            .and_then(|c| self.categories.get(&normalise(c)).copied())
            .unwrap_or(Rule {
                name: None,
                retention: self.policy.default.retention,
                on_expiry: self.policy.default.on_expiry,
            })
    }

    /// When the clip is at least `minimumAge` old by both its recording time (when
    /// known) and its upload time; `None` when never.
    fn deletable_at(&self, times: &Times) -> Option<DateTime<Utc>> {
        let by_upload = self.policy.minimum_age.after(times.upload)?;
        match times.recorded_at {
            Some(r) => {
                let by_recording = self.policy.minimum_age.after(r)?;
                Some(by_upload.max(by_recording))
            }
            None => Some(by_upload),
        }
    }
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Category names match ignoring case and surrounding blanks.
fn normalise(s: &str) -> String {
    s.trim().to_lowercase()
}

fn parse_time(key: &str, value: &str) -> Result<DateTime<Utc>, MetadataProblem> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| MetadataProblem::BadTime {
            key: key.to_string(),
            value: value.chars().take(64).collect(),
        })
}

/// Check a clip's tags against the S3 limits and for ambiguity, and read its times.
///
/// Upload time, never earlier than the real upload:
/// - in the hot tier, `LastModified` (the upload itself; any upload-time metadata there
///   was written by the uploader and is not believed);
/// - elsewhere, the upload time the mover recorded on the first move out of hot
///   ([`Clip::uploaded_at`], carried forward by every later move), or, where none is
///   known, `LastModified` (the copy's time, later than the upload: errs on keeping).
///
/// An `uploaded-at` tag (anyone with tagging rights can set it) only ever makes the
/// upload time later, never earlier: the clock is the later of the above and the tag.
fn check_metadata(clip: &Clip) -> Result<Times, MetadataProblem> {
    if clip.tags.len() > MAX_TAGS {
        return Err(MetadataProblem::TooManyTags {
            count: clip.tags.len(),
        });
    }
    for (i, tag) in clip.tags.iter().enumerate() {
        if tag.key.chars().count() > MAX_KEY_CHARS {
            return Err(MetadataProblem::KeyTooLong {
                key: tag.key.chars().take(32).collect(),
            });
        }
        if tag.value.chars().count() > MAX_VALUE_CHARS {
            return Err(MetadataProblem::ValueTooLong {
                key: tag.key.clone(),
            });
        }
        if clip.tags[..i].iter().any(|t| t.key == tag.key) {
            return Err(MetadataProblem::DuplicateTag {
                key: tag.key.clone(),
            });
        }
    }
    let recorded_at = clip
        .tag(TAG_RECORDED_AT)
        .map(|v| parse_time(TAG_RECORDED_AT, v))
        .transpose()?;
    let uploaded_at = clip
        .tag(TAG_UPLOADED_AT)
        .map(|v| parse_time(TAG_UPLOADED_AT, v))
        .transpose()?;
    let retain_until = clip
        .tag(TAG_RETAIN_UNTIL)
        .map(|v| parse_time(TAG_RETAIN_UNTIL, v))
        .transpose()?;
    let recorded = clip.recorded_upload();
    let upload = uploaded_at.map_or(recorded, |t| t.max(recorded));
    Ok(Times {
        recorded_at,
        upload,
        retain_until,
    })
}
