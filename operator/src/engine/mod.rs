//! The retention engine: given a policy, the active legal holds, a stream of clips and
//! `now`, decide for every clip what should happen and why. Pure: no I/O, no clock.
//!
//! ```text
//! let planner = Planner::new(&policy_spec, &active_holds, now)?;   // once per sweep
//! for clip in listing { let decision = planner.plan_clip(&clip); summary.add(&decision); ... }
//! ```
//!
//! # Rules, in order
//! 1. **Legal holds.** A clip selected by an active hold goes to the legal-hold tier
//!    ([`Action::MoveToLegalHold`]), gets its S3 hold set ([`Action::Hold`]) and then
//!    stays ([`Action::Keep`]), whatever its metadata or retention say. A clip in the
//!    legal-hold tier that no active hold selects is released back to cool
//!    ([`Action::Release`]). A clip with the S3 hold ON outside the legal-hold tier is
//!    never touched. A held clip (S3 hold ON, or selected) is never deleted.
//!    A clip an open access request **preserves** ([`Planner::preserving`]) is neither
//!    deleted, nor moved, nor released from the legal-hold tier (each would delete or
//!    rewrite it); a legal hold still takes it into the legal-hold tier.
//! 2. **Malformed metadata** (too many, oversized or duplicate tags; an unparseable
//!    `recorded-at` or `uploaded-at`): kept and flagged ([`Action::FlagMalformed`]).
//! 3. **Retention.** The clip's category tag (ignoring case and blanks) picks a rule, or
//!    the default rule. Retention counts from the clock the policy names: recording
//!    time (falling back to upload time when the clip has no `recorded-at` tag, the
//!    later and so safer of the two) or upload time. A clip whose case closed with a
//!    retention of its own (`evidence.bwv.io/retain-until`, written when a LegalHold with
//!    `retainAfterRelease` is released) is kept until then, whatever its category says.
//!    Expired under `Review`: [`Action::FlagForReview`] (and, like every kept clip,
//!    moved out of hot once older than `coolAfter`). Expired under `Delete`: [`Action::Delete`], but only
//!    when the clip is at least `minimumAge` old by its recording time AND its upload
//!    time; otherwise kept until then. Not expired: kept, and moved from hot to cool
//!    once older than `coolAfter` (on the same clock).
//!
//! 4. **Restore window** ([`Planner::plan_purge`]): with a `restoreWindow`, a deletion
//!    is a soft delete, and a soft-deleted clip is purged only after the window, only
//!    if planning its data version again (with the holds, preserves and policy of now)
//!    still says delete, and never while its version has an S3 legal hold.
//!
//! # Clocks outside the hot tier
//! A copy resets S3 `LastModified`. The mover therefore records the real upload time
//! (the hot tier's `LastModified`) on the first move out of hot, in object metadata
//! (`x-amz-meta-evidence-uploaded-at`, [`Clip::uploaded_at`](crate::api::clip::Clip)),
//! and carries it forward on every later move. The upload time of a clip outside the
//! hot tier is that record, else (none known) its `LastModified`, which is later than
//! the real upload. An `evidence.bwv.io/uploaded-at` tag can only make the upload time
//! later, never earlier: neither a move nor a tag restarts or shortens the safety floor
//! or an upload-clock retention.
//!
//! # Properties (proved by the property tests in this module)
//! held clips are never deleted nor moved out of legal hold; preserved clips are never
//! deleted nor moved; nothing younger than `minimumAge`, unexpired or before its
//! `retain-until` is deleted, whatever sequence of time, policy changes, preserves and
//! releases came before; malformed clips are never deleted; planning is
//! idempotent (apply the plan, plan again: no storage change, except that a released
//! clip may then fall due under its ordinary rule, after which a third plan is quiet);
//! a clip's decision does not depend on the order of the stream.
//!
//! # Streaming
//! [`Planner::plan_clip`] takes one clip and keeps nothing: memory is O(policy + holds),
//! independent of the number of clips.

mod decision;
mod holds;
mod planner;
mod preserve;
mod purge;
#[cfg(test)]
mod tests;

pub use decision::{
    Action, CategoryMatch, ClockUsed, Decision, MetadataProblem, PlanSummary, Reason, RuleContext,
};
pub use holds::ActiveHold;
pub use planner::{EngineError, Planner, RETAIN_FOREVER};
pub(crate) use preserve::CompiledPreserve;
pub use preserve::Preserve;
pub use purge::PurgeDecision;
