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
    api::{Patch, PatchParams},
    runtime::{
        Controller,
        controller::Action,
        events::EventType,
        finalizer::{Event as Finalizer, finalizer},
        watcher,
    },
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{
    Context, Error, MANAGER, api_for, bucket, error_policy, key_of,
    status::{self, Cond, READY, RECONCILING, STALLED},
};
use crate::api::{EvidenceBucket, LegalHold, legal_hold::FINALIZER};

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
        other => Error::Invalid {
            reason: "FinalizerFailed",
            message: other.to_string(),
        },
    })
}

/// A live hold: the bucket controller does the holding; here we only report a missing
/// bucket, which no sweep would ever report.
async fn apply(hold: &LegalHold, ctx: &Context) -> Result<Action, Error> {
    let ns = hold.namespace().unwrap_or_default();
    let buckets: Api<EvidenceBucket> = Api::namespaced(ctx.client.clone(), &ns);
    if buckets.get_opt(&hold.spec.bucket_ref.name).await?.is_none() {
        let message = format!(
            "EvidenceBucket {ns}/{} does not exist; no clip can be held until it does",
            hold.spec.bucket_ref.name
        );
        let api: Api<LegalHold> = Api::namespaced(ctx.client.clone(), &ns);
        patch_conditions(
            &api,
            hold,
            &status::stalled("BucketNotFound", &message),
            None,
        )
        .await?;
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
    let Some(eb) = buckets.get_opt(&hold.spec.bucket_ref.name).await? else {
        ctx.event(hold, EventType::Warning, "BucketNotFound", "Release", format!(
            "EvidenceBucket {ns}/{} does not exist, so the operator no longer manages its storage; \
             clips this hold selected keep their S3 legal hold until released by hand",
            hold.spec.bucket_ref.name)).await;
        return Ok(Action::await_change());
    };
    if eb.spec.suspend {
        return Err(Error::Invalid {
            reason: "BucketSuspended",
            message: format!(
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
        return Err(Error::Invalid {
            reason: "ReleaseIncomplete",
            message: format!(
                "the sweep of {} did not complete; the release is retried",
                key_of(&eb)
            ),
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

/// Written by the bucket controller after each sweep: how many clips this hold holds.
pub async fn patch_held(
    api: &Api<LegalHold>,
    hold: &LegalHold,
    held: u64,
    message: &str,
) -> Result<(), Error> {
    let conds = [
        Cond::yes(READY, "Held", message),
        Cond::no(RECONCILING, "Held", "the selected clips are held"),
        Cond::no(STALLED, "Held", "making progress"),
    ];
    patch_conditions(api, hold, &conds, Some(held)).await
}

async fn patch_conditions(
    api: &Api<LegalHold>,
    hold: &LegalHold,
    conds: &[Cond],
    held: Option<u64>,
) -> Result<(), Error> {
    let previous = hold
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let conditions =
        status::merge_conditions(&previous, conds, hold.metadata.generation, Timestamp::now());
    let mut status =
        json!({ "observedGeneration": hold.metadata.generation, "conditions": conditions });
    if let (Some(n), Some(obj)) = (held, status.as_object_mut()) {
        obj.insert("heldClips".into(), json!(n));
    }
    let patch =
        json!({ "apiVersion": "evidence.bwv.io/v1alpha1", "kind": "LegalHold", "status": status });
    api.patch_status(
        &hold.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}
