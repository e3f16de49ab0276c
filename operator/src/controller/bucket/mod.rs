//! The EvidenceBucket controller, as a pipeline of four steps, one file each:
//!
//! 1. [`dereference`]: read the bucket's RetentionPolicy, the LegalHolds naming it and
//!    its credentials Secret;
//! 2. [`validate`] (pure): a [`ValidatedBucket`] (storage configuration, holds in force,
//!    holds being released) or a [`Refusal`] (suspended, outside the UK, no policy, no
//!    credentials, ...), each refusal knowing its conditions, event and requeue
//!    ([`refusal`]);
//! 3. [`apply`]: prove the region, compare the clocks ([`clock`]), record policy
//!    changes, carry out pending ClipRestores ([`restore`]), sweep (see
//!    [`crate::controller::sweep`]; [`fence`] re-reads the holds before each chunk), run
//!    the integrity sweep;
//! 4. [`report`]: status by server-side apply, events, metrics, each hold's count.
//!
//! then requeue at the next moment something becomes due. `evidence-operator plan` runs
//! steps 1 and 2 as they are, so it cannot drift from the sweep.
//!
//! Deleting an EvidenceBucket never deletes evidence: the bucket carries no finalizer,
//! and once it is gone the operator simply stops managing its storage.

pub mod apply;
pub mod clock;
pub mod dereference;
pub mod export;
pub mod fence;
pub mod refusal;
pub mod report;
pub mod restore;
pub mod validate;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use kube::{
    ResourceExt,
    runtime::{Controller, controller::Action, reflector::ObjectRef, watcher},
};
use tokio_util::sync::CancellationToken;

pub use self::{
    apply::Applied,
    dereference::{Dereferenced, dereference},
    refusal::Refusal,
    validate::{ValidatedBucket, bucket_config, validate},
};
use super::{Context, Error, api_for, error_policy, key_of, sweep::SweepOutcome};
use crate::api::{AccessRequest, ClipRestore, EvidenceBucket, LegalHold, RetentionPolicy};

const CONTROLLER: &str = "evidencebucket";

/// Run the EvidenceBucket controller for one namespace (or all) until `stop`.
pub async fn controller(ctx: Arc<Context>, ns: Option<String>, stop: CancellationToken) {
    let client = ctx.client.clone();
    let buckets = api_for::<EvidenceBucket>(client.clone(), ns.as_deref());
    let policies = api_for::<RetentionPolicy>(client.clone(), ns.as_deref());
    let holds = api_for::<LegalHold>(client.clone(), ns.as_deref());
    let restores = api_for::<ClipRestore>(client.clone(), ns.as_deref());
    let requests = api_for::<AccessRequest>(client.clone(), ns.as_deref());
    let ctrl = Controller::new(buckets, watcher::Config::default());
    let store = ctrl.store();
    let by_policy = store.clone();
    ctrl.watches(
        policies,
        watcher::Config::default(),
        move |policy: RetentionPolicy| {
            let ns = policy.namespace();
            let name = policy.name_any();
            by_policy
                .state()
                .into_iter()
                .filter(|b| b.namespace() == ns && b.spec.retention_policy_ref.name == name)
                .map(|b| ObjectRef::from_obj(&*b))
                .collect::<Vec<_>>()
        },
    )
    .watches(holds, watcher::Config::default(), |hold: LegalHold| {
        hold.namespace()
            .map(|ns| ObjectRef::<EvidenceBucket>::new(&hold.spec.bucket_ref.name).within(&ns))
    })
    .watches(restores, watcher::Config::default(), |r: ClipRestore| {
        r.namespace()
            .map(|ns| ObjectRef::<EvidenceBucket>::new(&r.spec.bucket_ref.name).within(&ns))
    })
    .watches(requests, watcher::Config::default(), |r: AccessRequest| {
        r.namespace()
            .map(|ns| ObjectRef::<EvidenceBucket>::new(&r.spec.bucket_ref.name).within(&ns))
    })
    .graceful_shutdown_on(async move { stop.cancelled().await })
    .run(reconcile, error_policy(CONTROLLER), ctx)
    .for_each(|result| async move {
        if let Err(e) = result {
            tracing::debug!(error = %e, "evidencebucket reconcile result");
        }
    })
    .await;
}

async fn reconcile(eb: Arc<EvidenceBucket>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started(CONTROLLER);
    if eb.metadata.deletion_timestamp.is_some() {
        // No finalizer on buckets: deleting one stops management, never deletes evidence.
        return Ok(Action::await_change());
    }
    let lock = ctx.bucket_lock(&key_of(&*eb)).await;
    let _guard = lock.lock().await;
    Ok(sweep_bucket(&eb, &ctx, false).await?.action)
}

/// The result of [`sweep_bucket`].
pub struct Swept {
    /// When to reconcile again.
    pub action: Action,
    /// Whether a sweep ran to the end with every action done (no failure, no
    /// interruption).
    pub complete: bool,
    /// Why the operator did not act on the bucket, if it did not.
    pub refusal: Option<Refusal>,
}

impl Swept {
    fn incomplete(action: Action) -> Self {
        Swept {
            action,
            complete: false,
            refusal: None,
        }
    }
}

/// Everything the operator does to one bucket, under the bucket's lock: dereference,
/// validate, apply, report. Also called by the LegalHold finalizer to release a deleted
/// hold's clips.
///
/// `force` sweeps even when the inputs are unchanged and nothing is due yet.
pub async fn sweep_bucket(eb: &EvidenceBucket, ctx: &Context, force: bool) -> Result<Swept, Error> {
    let key = key_of(eb);
    let interval = eb.spec.sweep_interval.as_std();
    let refuse = |refusal: Refusal| async move {
        report::refused(ctx, eb, &refusal).await?;
        Ok(Swept {
            action: refusal.requeue(interval),
            complete: false,
            refusal: Some(refusal),
        })
    };

    let found = dereference(&ctx.client, eb).await?;
    let grants = ctx.settings.grants(&eb.namespace().unwrap_or_default());
    let valid = match validate(
        eb,
        &found,
        &ctx.settings.allowed_regions,
        &grants,
        ctx.settings.now(),
    ) {
        Ok(valid) => valid,
        Err(refusal) => return refuse(refusal).await,
    };
    // Skip the sweep when nothing it depends on changed and nothing is due yet.
    if !force && let Some(wait) = ctx.sweep_not_due(&key, &valid.inputs).await {
        return Ok(Swept::incomplete(Action::requeue(wait)));
    }
    let report = match apply::apply(eb, &valid, ctx).await {
        Ok(Applied::Swept(report)) => report,
        Ok(Applied::Refused(refusal)) => return refuse(refusal).await,
        Err(e) => {
            if let Err(status) = report::failed(ctx, eb, &e).await {
                tracing::warn!(error = %status, "could not report the failure in status");
            }
            return Err(e);
        }
    };
    let wait = next_wait(
        interval,
        &report.outcome,
        ctx.settings.now(),
        ctx.settings.min_requeue,
    );
    let next = chrono::TimeDelta::from_std(wait)
        .ok()
        .and_then(|d| Utc::now().checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    report::swept(ctx, eb, &valid, &report, next).await?;
    ctx.record_sweep(&key, valid.inputs.clone(), wait).await;
    Ok(Swept {
        action: Action::requeue(wait),
        complete: report.complete(),
        refusal: None,
    })
}

/// When to sweep next (pure): at the sweep interval, or when the earliest clip becomes
/// due if sooner, or within 30 s after a failure or interruption; never sooner than
/// `min_requeue`. `now` is the planning clock's.
pub fn next_wait(
    interval: Duration,
    outcome: &SweepOutcome,
    now: DateTime<Utc>,
    min_requeue: Duration,
) -> Duration {
    let mut wait = interval;
    if let Some(due) = outcome.next_due {
        wait = wait.min((due - now).to_std().unwrap_or(Duration::ZERO));
    }
    if outcome.failed > 0 || outcome.interrupted {
        wait = wait.min(Duration::from_secs(30));
    }
    wait.max(min_requeue)
}
