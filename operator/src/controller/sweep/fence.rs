//! The fence of a sweep: what it reads again just before acting on each chunk (the
//! holds and policy as they are now: [`HoldFence`], [`FencedHolds`]), and how a chunk is
//! planned with what it read ([`Chunk`]).

use std::collections::BTreeSet;

use super::SweepError;
use crate::{
    api::{clip::Clip, retention_policy::RetentionPolicySpec},
    engine::{Action, ActiveHold, Decision, Planner, Preserve},
};

/// The LegalHolds and the RetentionPolicy as they are now, read just before the sweep
/// acts on each chunk (its point of no return), so that a hold applied, or a retention
/// lengthened, while a long sweep runs protects the clips of every chunk acted on after.
#[async_trait::async_trait]
pub trait HoldFence: Send + Sync {
    /// `None` when nothing changed since the sweep started; otherwise the holds (and
    /// any changed policy) to plan with: those the sweep started with, plus every hold applied (or whose selector
    /// changed) since. A fence only adds protection within a sweep, never removes it.
    async fn read(&self) -> Result<Option<FencedHolds>, String>;
}

/// What a [`HoldFence`] found.
#[derive(Debug, Clone, Default)]
pub struct FencedHolds {
    /// The holds to plan the chunk with.
    pub holds: Vec<ActiveHold>,
    /// Holds that were applied but do not carry their release finalizer yet: their clips
    /// are protected (never deleted, never moved but into legal hold) but not put under
    /// an S3 legal hold until the finalizer guarantees their release.
    pub pending: BTreeSet<String>,
    /// The RetentionPolicy as changed since the sweep started (valid), if it was: a
    /// clip is then deleted only if both it and the policy the sweep started with say
    /// so, so that a retention lengthened mid-sweep protects from the next chunk on
    /// (a shortened one waits for the next sweep).
    pub policy: Option<RetentionPolicySpec>,
    /// AccessRequests opened (or whose selector changed) since the sweep started: their
    /// clips are preserved from the next chunk on, with those in force at the start.
    pub preserves: Vec<Preserve>,
}

impl FencedHolds {
    /// The preserves to plan a chunk with: those in force at the start and those found
    /// since.
    pub(super) fn preserves_with(&self, start: &[Preserve]) -> Vec<Preserve> {
        let mut all = start.to_vec();
        for p in &self.preserves {
            if !all.iter().any(|a| a == p) {
                all.push(p.clone());
            }
        }
        all
    }
}

/// What the fence read just before a point of no return (a chunk's actions, a purge),
/// and the preserves to plan with: owned here, so that the planners built from it can
/// borrow them.
pub(super) struct FenceRead {
    /// What the fence found (`None`: nothing changed since the sweep started).
    pub(super) fenced: Option<FencedHolds>,
    preserves: Vec<Preserve>,
}

impl FenceRead {
    /// Read `fence` (no fence: nothing found).
    pub(super) async fn read(
        fence: Option<&dyn HoldFence>,
        planner: &Planner<'_>,
    ) -> Result<Self, SweepError> {
        let fenced = match fence {
            Some(f) => f.read().await.map_err(SweepError::Fence)?,
            None => None,
        };
        let preserves = fenced
            .as_ref()
            .map(|f| f.preserves_with(planner.preserves()))
            .unwrap_or_default();
        Ok(FenceRead { fenced, preserves })
    }

    /// The planners to act with: the sweep's policy with the holds and preserves found
    /// (`None`: nothing found, plan with `planner`), and the changed policy with them
    /// (`None`: the policy did not change).
    pub(super) fn planners<'p>(
        &'p self,
        planner: &Planner<'p>,
    ) -> Result<(Option<Planner<'p>>, Option<Planner<'p>>), SweepError> {
        let fence_error = |e: crate::engine::EngineError| SweepError::Fence(e.to_string());
        let Some(f) = &self.fenced else {
            return Ok((None, None));
        };
        let holds = planner
            .with_holds(&f.holds)
            .map_err(fence_error)?
            .preserving(&self.preserves);
        let policy = match &f.policy {
            Some(policy) => Some(
                planner
                    .with_policy(policy, &f.holds)
                    .map_err(fence_error)?
                    .preserving(&self.preserves),
            ),
            None => None,
        };
        Ok((Some(holds), policy))
    }
}

/// A [`HoldFence`] that forgets nothing within one sweep: every hold (and changed
/// policy) it has once reported keeps protecting the chunks after, even when the
/// LegalHold is deleted before them. Without this, a hold applied after the sweep
/// started, which took clips into the legal-hold tier in one chunk, and deleted before
/// the legal-hold tier's chunk, would leave that chunk planned without it: its clips
/// released by this sweep, not by the hold's finalizer, so without the case's name and
/// without its `retainAfterRelease` (and then deleted by the next sweep). A release is
/// the finalizer's job; within a sweep, protection is only ever added.
pub(super) struct StickyFence<'a> {
    inner: &'a dyn HoldFence,
    seen: std::sync::Mutex<Option<FencedHolds>>,
}

impl<'a> StickyFence<'a> {
    pub(super) fn new(inner: &'a dyn HoldFence) -> Self {
        StickyFence {
            inner,
            seen: std::sync::Mutex::new(None),
        }
    }
}

#[async_trait::async_trait]
impl HoldFence for StickyFence<'_> {
    async fn read(&self) -> Result<Option<FencedHolds>, String> {
        let now = self.inner.read().await?;
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(remember(&mut seen, now))
    }
}

/// Fold what the fence reads now into what it read before (pure): holds are kept by name
/// and selector once seen; a hold listed now is pending (protects, not yet held) as it
/// is now, one no longer listed as it was when last seen; a changed policy once seen is
/// kept unless a newer one replaces it (the chunk's rule then deletes only what both
/// the start and the changed policy delete).
pub(super) fn remember(
    seen: &mut Option<FencedHolds>,
    now: Option<FencedHolds>,
) -> Option<FencedHolds> {
    let Some(now) = now else {
        return seen.clone();
    };
    let Some(before) = seen.as_mut() else {
        *seen = Some(now.clone());
        return Some(now);
    };
    let listed: BTreeSet<&str> = now.holds.iter().map(|h| h.name.as_str()).collect();
    before.pending.retain(|p| !listed.contains(p.as_str()));
    before.pending.extend(now.pending.iter().cloned());
    for h in &now.holds {
        if !before
            .holds
            .iter()
            .any(|b| b.name == h.name && b.selector == h.selector)
        {
            before.holds.push(h.clone());
        }
    }
    if now.policy.is_some() {
        before.policy = now.policy;
    }
    for p in now.preserves {
        if !before.preserves.contains(&p) {
            before.preserves.push(p);
        }
    }
    Some(before.clone())
}

/// How one chunk is planned: the planner, and the holds that only protect.
pub(super) struct Chunk<'p, 'h> {
    pub(super) planner: &'p Planner<'h>,
    pub(super) pending: Option<&'p BTreeSet<String>>,
    /// The policy as changed since the sweep started, with the same holds.
    pub(super) newer: Option<&'p Planner<'p>>,
}

impl Chunk<'_, '_> {
    /// The decision for a clip. A clip selected only by holds that do not carry their
    /// release finalizer yet is kept where it is: protected, not yet held. Where the
    /// policy changed since the sweep started, a clip is deleted only if both policies
    /// say so; otherwise the changed policy decides.
    pub(super) fn plan(&self, clip: &Clip) -> Decision {
        let mut d = self.planner.plan_clip(clip);
        if let Some(newer) = self.newer {
            let n = newer.plan_clip(clip);
            if !(d.action == Action::Delete && n.action == Action::Delete) {
                d = if n.action == Action::Delete { d } else { n };
            }
        }
        if let Some(pending) = self.pending
            && !d.holds.is_empty()
            && d.holds.iter().all(|h| pending.contains(h))
            && matches!(d.action, Action::MoveToLegalHold | Action::Hold)
        {
            d.action = Action::Keep;
        }
        d
    }
}
