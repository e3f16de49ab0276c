//! The person-driven resources, ClipRestore and AccessRequest, when their bucket does
//! not exist. Everything else about them is done by the EvidenceBucket controller (which
//! restores, preserves and writes their status after each sweep), so a resource naming
//! a bucket that is not there would otherwise never get a status; here it gets one:
//! `Complete=False` / `Preserving=False` with reason `BucketNotFound`, and a warning
//! event, looked at again every minute (and whenever the resource changes).

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::{
    Api, ResourceExt,
    runtime::{Controller, controller::Action, events::EventType, watcher},
};
use tokio_util::sync::CancellationToken;

use super::{
    Context, Error, api_for,
    bucket::{report::PRESERVING, restore::COMPLETE},
    error_policy,
    status::{Cond, apply_status, merge_conditions},
};
use crate::api::{
    AccessRequest, AccessRequestStatus, ClipRestore, ClipRestoreStatus, EvidenceBucket,
};

/// Run the ClipRestore and AccessRequest controllers for one namespace (or all) until
/// `stop`.
pub async fn controller(ctx: Arc<Context>, ns: Option<String>, stop: CancellationToken) {
    let restores = Controller::new(
        api_for::<ClipRestore>(ctx.client.clone(), ns.as_deref()),
        watcher::Config::default(),
    )
    .graceful_shutdown_on({
        let stop = stop.clone();
        async move { stop.cancelled().await }
    })
    .run(reconcile_restore, error_policy("cliprestore"), ctx.clone())
    .for_each(|_| async {});
    let requests = Controller::new(
        api_for::<AccessRequest>(ctx.client.clone(), ns.as_deref()),
        watcher::Config::default(),
    )
    .graceful_shutdown_on(async move { stop.cancelled().await })
    .run(reconcile_request, error_policy("accessrequest"), ctx)
    .for_each(|_| async {});
    futures::join!(restores, requests);
}

/// `Some(message)` when the EvidenceBucket `name` does not exist in `ns`.
async fn missing(ctx: &Context, ns: &str, name: &str) -> Result<Option<String>, Error> {
    let found = Api::<EvidenceBucket>::namespaced(ctx.client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(Error::read(format!("EvidenceBucket {ns}/{name}")))?;
    Ok(found.is_none().then(|| {
        format!("EvidenceBucket {ns}/{name} does not exist; nothing is done until it does")
    }))
}

async fn reconcile_restore(r: Arc<ClipRestore>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started("cliprestore");
    let ns = r.namespace().unwrap_or_default();
    let Some(message) = missing(&ctx, &ns, &r.spec.bucket_ref.name).await? else {
        return Ok(Action::await_change());
    };
    let previous = r.status.clone().unwrap_or_default();
    let status = ClipRestoreStatus {
        conditions: merge_conditions(
            &previous.conditions,
            &[Cond::no(COMPLETE, "BucketNotFound", &message)],
            r.metadata.generation,
            Timestamp::now(),
        ),
        observed_generation: r.metadata.generation,
        ..previous
    };
    apply_status(
        &Api::<ClipRestore>::namespaced(ctx.client.clone(), &ns),
        &*r,
        &status,
    )
    .await?;
    ctx.event(
        &*r,
        EventType::Warning,
        "BucketNotFound",
        "Restore",
        message,
    )
    .await;
    Ok(Action::requeue(Duration::from_secs(60)))
}

async fn reconcile_request(r: Arc<AccessRequest>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started("accessrequest");
    let ns = r.namespace().unwrap_or_default();
    let Some(message) = missing(&ctx, &ns, &r.spec.bucket_ref.name).await? else {
        return Ok(Action::await_change());
    };
    let previous = r.status.clone().unwrap_or_default();
    let status = AccessRequestStatus {
        conditions: merge_conditions(
            &previous.conditions,
            &[Cond::no(PRESERVING, "BucketNotFound", &message)],
            r.metadata.generation,
            Timestamp::now(),
        ),
        observed_generation: r.metadata.generation,
        ..previous
    };
    apply_status(
        &Api::<AccessRequest>::namespaced(ctx.client.clone(), &ns),
        &*r,
        &status,
    )
    .await?;
    ctx.event(
        &*r,
        EventType::Warning,
        "BucketNotFound",
        "Preserve",
        message,
    )
    .await;
    Ok(Action::requeue(Duration::from_secs(60)))
}
