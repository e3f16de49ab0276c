//! The LegalHold controller. It owns one piece of external state: the S3 legal holds on
//! the clips a LegalHold selects. So it puts a finalizer on every LegalHold, and when
//! one is deleted it sweeps the hold's bucket without it: clips that no other hold
//! selects are released (hold OFF, back to the cool tier and normal retention); clips
//! another hold still selects stay held. Only then is the finalizer removed.
//!
//! Holding itself (moving selected clips into the legal-hold tier) is done by the
//! EvidenceBucket controller, which is triggered by every LegalHold change; it also
//! writes each hold's `status.heldClips`.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::{
    Api, ResourceExt,
    runtime::{
        Controller,
        controller::Action,
        events::EventType,
        finalizer::{Event as Finalizer, finalizer},
        watcher,
    },
};
use tokio_util::sync::CancellationToken;

use super::{
    Context, Error, api_for, bucket, error_policy, key_of,
    status::{self, apply_status},
};
use crate::api::{
    EvidenceBucket, LegalHold,
    legal_hold::{FINALIZER, LegalHoldStatus},
};

const CONTROLLER: &str = "legalhold";

/// Run the LegalHold controller for one namespace (or all) until `stop`.
pub async fn controller(ctx: Arc<Context>, ns: Option<String>, stop: CancellationToken) {
    let holds = api_for::<LegalHold>(ctx.client.clone(), ns.as_deref());
    Controller::new(holds, watcher::Config::default())
        .graceful_shutdown_on(async move { stop.cancelled().await })
        .run(reconcile, error_policy(CONTROLLER), ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "legalhold reconcile result");
            }
        })
        .await;
}

async fn reconcile(hold: Arc<LegalHold>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started(CONTROLLER);
    let ns = hold.namespace().unwrap_or_default();
    let api: Api<LegalHold> = Api::namespaced(ctx.client.clone(), &ns);
    let key = key_of(&*hold);
    let result = finalizer(&api, FINALIZER, hold, |event| async {
        match event {
            Finalizer::Apply(hold) => apply(&hold, &ctx).await,
            Finalizer::Cleanup(hold) => cleanup(&hold, &ctx).await,
        }
    })
    .await;
    result.map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer {
            hold: format!("LegalHold {key}"),
            message: other.to_string(),
        },
    })
}

/// A live hold: the bucket controller does the holding; here we only report a missing
/// bucket, which no sweep would ever report.
async fn apply(hold: &LegalHold, ctx: &Context) -> Result<Action, Error> {
    let ns = hold.namespace().unwrap_or_default();
    let buckets: Api<EvidenceBucket> = Api::namespaced(ctx.client.clone(), &ns);
    let bucket = buckets
        .get_opt(&hold.spec.bucket_ref.name)
        .await
        .map_err(Error::read(format!(
            "EvidenceBucket {ns}/{}",
            hold.spec.bucket_ref.name
        )))?;
    if bucket.is_none() {
        let message = format!(
            "EvidenceBucket {ns}/{} does not exist; no clip can be held until it does",
            hold.spec.bucket_ref.name
        );
        let api: Api<LegalHold> = Api::namespaced(ctx.client.clone(), &ns);
        let status = LegalHoldStatus {
            conditions: status::merge_conditions(
                hold.status
                    .as_ref()
                    .map(|s| s.conditions.as_slice())
                    .unwrap_or_default(),
                &status::stalled("BucketNotFound", &message),
                hold.metadata.generation,
                Timestamp::now(),
            ),
            observed_generation: hold.metadata.generation,
            ..LegalHoldStatus::default()
        };
        apply_status(&api, hold, &status).await?;
        ctx.event(hold, EventType::Warning, "BucketNotFound", "Hold", message)
            .await;
        return Ok(Action::requeue(Duration::from_secs(60)));
    }
    Ok(Action::await_change())
}

/// A deleted hold: release its clips by sweeping its bucket without it.
async fn cleanup(hold: &LegalHold, ctx: &Context) -> Result<Action, Error> {
    let ns = hold.namespace().unwrap_or_default();
    let buckets: Api<EvidenceBucket> = Api::namespaced(ctx.client.clone(), &ns);
    let found = buckets
        .get_opt(&hold.spec.bucket_ref.name)
        .await
        .map_err(Error::read(format!(
            "EvidenceBucket {ns}/{}",
            hold.spec.bucket_ref.name
        )))?;
    let Some(eb) = found else {
        ctx.event(hold, EventType::Warning, "BucketNotFound", "Release", format!(
            "EvidenceBucket {ns}/{} does not exist, so the operator no longer manages its storage; \
             clips this hold selected keep their S3 legal hold until released by hand",
            hold.spec.bucket_ref.name)).await;
        return Ok(Action::await_change());
    };
    if eb.spec.suspend {
        return Err(Error::ReleasePending {
            hold: key_of(hold),
            why: format!(
                "EvidenceBucket {} is suspended; the hold's clips are released when it resumes",
                key_of(&eb)
            ),
        });
    }
    let lock = ctx.bucket_lock(&key_of(&eb)).await;
    let _guard = lock.lock().await;
    // The sweep sees this hold as deleted (deletionTimestamp set), so it is not active.
    let swept = bucket::sweep_bucket(&eb, ctx, true).await?;
    if !swept.complete {
        let why = match swept.refusal {
            Some(refusal) => format!(
                "EvidenceBucket {} is refused ({}): {refusal}",
                key_of(&eb),
                refusal.reason()
            ),
            None => format!(
                "the sweep of EvidenceBucket {} did not complete; the release is retried",
                key_of(&eb)
            ),
        };
        return Err(Error::ReleasePending {
            hold: key_of(hold),
            why,
        });
    }
    ctx.event(
        hold,
        EventType::Normal,
        "Released",
        "Release",
        format!(
            "case {}: clips no other hold selects were released to the cool tier",
            hold.spec.case_reference
        ),
    )
    .await;
    Ok(Action::await_change())
}
