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
    .run(
        reconcile::<ClipRestore>,
        error_policy(ClipRestore::CONTROLLER),
        ctx.clone(),
    )
    .for_each(|_| async {});
    let requests = Controller::new(
        api_for::<AccessRequest>(ctx.client.clone(), ns.as_deref()),
        watcher::Config::default(),
    )
    .graceful_shutdown_on(async move { stop.cancelled().await })
    .run(
        reconcile::<AccessRequest>,
        error_policy(AccessRequest::CONTROLLER),
        ctx,
    )
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

/// What this controller needs of a resource that its bucket's reconcile acts on.
trait OnBucket:
    kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The controller's name (metrics).
    const CONTROLLER: &'static str;
    /// The condition a missing bucket sets to `False`.
    const CONDITION: &'static str;
    /// The event's action.
    const ACTION: &'static str;
    /// The status type.
    type Status: serde::Serialize + std::fmt::Debug;
    /// The EvidenceBucket it names.
    fn bucket(&self) -> &str;
    /// Its status with `conds` merged into its previous conditions.
    fn with_conditions(&self, conditions: &[Cond]) -> Self::Status;
}

/// `conds` merged into `previous`, stamped now.
fn merged(
    previous: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    conds: &[Cond],
    generation: Option<i64>,
) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    merge_conditions(previous, conds, generation, Timestamp::now())
}

impl OnBucket for ClipRestore {
    const CONTROLLER: &'static str = "cliprestore";
    const CONDITION: &'static str = COMPLETE;
    const ACTION: &'static str = "Restore";
    type Status = ClipRestoreStatus;
    fn bucket(&self) -> &str {
        &self.spec.bucket_ref.name
    }
    fn with_conditions(&self, conds: &[Cond]) -> ClipRestoreStatus {
        let previous = self.status.clone().unwrap_or_default();
        ClipRestoreStatus {
            conditions: merged(&previous.conditions, conds, self.metadata.generation),
            observed_generation: self.metadata.generation,
            ..previous
        }
    }
}

impl OnBucket for AccessRequest {
    const CONTROLLER: &'static str = "accessrequest";
    const CONDITION: &'static str = PRESERVING;
    const ACTION: &'static str = "Preserve";
    type Status = AccessRequestStatus;
    fn bucket(&self) -> &str {
        &self.spec.bucket_ref.name
    }
    fn with_conditions(&self, conds: &[Cond]) -> AccessRequestStatus {
        let previous = self.status.clone().unwrap_or_default();
        AccessRequestStatus {
            conditions: merged(&previous.conditions, conds, self.metadata.generation),
            observed_generation: self.metadata.generation,
            ..previous
        }
    }
}

/// Nothing to do while the bucket exists; otherwise `BucketNotFound` in the status, a
/// warning event, and a look again in a minute.
async fn reconcile<K: OnBucket>(r: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started(K::CONTROLLER);
    let ns = r.namespace().unwrap_or_default();
    let Some(message) = missing(&ctx, &ns, r.bucket()).await? else {
        return Ok(Action::await_change());
    };
    let status = r.with_conditions(&[Cond::no(K::CONDITION, "BucketNotFound", &message)]);
    apply_status(&Api::<K>::namespaced(ctx.client.clone(), &ns), &*r, &status).await?;
    ctx.event(
        &*r,
        EventType::Warning,
        "BucketNotFound",
        K::ACTION,
        message,
    )
    .await;
    Ok(Action::requeue(Duration::from_secs(60)))
}
