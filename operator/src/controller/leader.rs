//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas
//! exactly one acts on storage at a time.
//!
//! The algorithm follows client-go's `leaderelection`:
//! - a candidate takes the Lease when it is free (no holder) or expired; a follower
//!   judges expiry by its *own* monotonic clock since it last saw the record change
//!   (not by comparing its wall clock with the holder's `renewTime`), so clock skew
//!   between nodes cannot make two replicas lead;
//! - every write is a `replace` carrying the `resourceVersion` that was read, so two
//!   candidates racing for the same Lease cannot both win (the loser gets 409 Conflict);
//! - the leader renews every `retry_period`; if it has not renewed successfully for
//!   `renew_deadline` (shorter than `lease_duration`), it steps down *before* any other
//!   replica may consider the Lease expired. That deadline is kept by a timer of its
//!   own, counted from when the last successful renewal was *sent*, so a request that
//!   hangs (an API server that stalls, a partition) cannot keep a leader leading: every
//!   round of requests also has a timeout (`retry_period`);
//! - the leader publishes when, by its own clock, its Lease could expire at the
//!   earliest (send time of its last successful renewal + the duration written in the
//!   Lease): the operator bounds the work still in flight after a step-down by it, so
//!   nothing this replica started is still running when a standby may take over;
//! - on graceful shutdown the leader clears `holderIdentity`, so a standby takes over at
//!   its next retry instead of waiting for the Lease to expire.

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use tokio::{sync::watch, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Settings of the election.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (pod name).
    pub identity: String,
    /// How long a Lease is valid after its last renewal.
    pub lease_duration: Duration,
    /// The leader steps down when it could not renew for this long.
    pub renew_deadline: Duration,
    /// How often candidates try and the leader renews.
    pub retry_period: Duration,
}

/// What a candidate observed of the Lease, for expiry by the local clock.
struct Observed {
    resource_version: Option<String>,
    holder: Option<String>,
    since: Instant,
}

/// Runs the election until `shutdown` is cancelled. `leading` is set to `true` while this
/// replica holds the Lease, and `expiry` to the earliest instant (this replica's
/// monotonic clock) at which another replica may consider it expired. On shutdown a
/// held Lease is released.
pub async fn run(
    client: Client,
    settings: LeaseSettings,
    leading: watch::Sender<bool>,
    expiry: watch::Sender<Option<Instant>>,
    shutdown: CancellationToken,
) {
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let mut observed: Option<Observed> = None;
    // When the last successful renewal (or acquisition) was sent.
    let mut last_renew: Option<Instant> = None;
    // The duration the Lease says, as another replica reads it (whole seconds).
    let written =
        Duration::from_secs(u64::try_from(lease_seconds(settings.lease_duration)).unwrap_or(1));
    loop {
        let sent = Instant::now();
        let round = tokio::time::timeout(
            settings.retry_period,
            try_acquire_or_renew(&api, &settings, &mut observed),
        );
        // While leading, the renew deadline is a timer of its own: a request that hangs
        // does not delay the step-down.
        let step_down_at = last_renew
            .filter(|_| *leading.borrow())
            .map(|t| t + settings.renew_deadline);
        let result = match step_down_at {
            Some(at) => tokio::select! {
                r = round => Some(r),
                _ = tokio::time::sleep_until(at) => None,
            },
            None => Some(round.await),
        };
        match result {
            Some(Ok(Ok(true))) => {
                if !*leading.borrow() {
                    info!(lease = %settings.name, identity = %settings.identity, "became leader");
                }
                last_renew = Some(sent);
                expiry.send_replace(Some(sent + written));
                leading.send_replace(true);
            }
            Some(Ok(Ok(false))) => {
                if *leading.borrow() {
                    warn!(lease = %settings.name, "lost the lease to another replica; stepping down");
                }
                last_renew = None;
                leading.send_replace(false);
            }
            failed => {
                match failed {
                    Some(Ok(Err(e))) => {
                        warn!(lease = %settings.name, error = %e, "lease update failed")
                    }
                    Some(Err(_)) => {
                        warn!(lease = %settings.name, timeout = ?settings.retry_period, "lease update timed out")
                    }
                    _ => {
                        warn!(lease = %settings.name, "lease update still pending at the renew deadline")
                    }
                }
                let expired = last_renew
                    .map(|t| Instant::now().duration_since(t) >= settings.renew_deadline)
                    .unwrap_or(true);
                if *leading.borrow() && expired {
                    warn!(lease = %settings.name, "could not renew within the renew deadline; stepping down");
                    last_renew = None;
                    leading.send_replace(false);
                }
            }
        }
        let next = sent + settings.retry_period;
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(next) => {}
        }
    }
    if *leading.borrow() {
        leading.send_replace(false);
        let released =
            tokio::time::timeout(settings.renew_deadline, release(&api, &settings)).await;
        match released {
            Ok(Ok(())) => info!(lease = %settings.name, "released the lease"),
            Ok(Err(e)) => {
                warn!(lease = %settings.name, error = %e, "could not release the lease; it will expire")
            }
            Err(_) => {
                warn!(lease = %settings.name, "releasing the lease timed out; it will expire")
            }
        }
    }
}

fn now_micro() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn lease_seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// One round: returns whether this replica holds the Lease afterwards.
async fn try_acquire_or_renew(
    api: &Api<Lease>,
    s: &LeaseSettings,
    observed: &mut Option<Observed>,
) -> Result<bool, kube::Error> {
    let current = match api.get_opt(&s.name).await? {
        Some(lease) => lease,
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(s.name.clone()),
                    namespace: Some(s.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(s.identity.clone()),
                    lease_duration_seconds: Some(lease_seconds(s.lease_duration)),
                    acquire_time: Some(now_micro()),
                    renew_time: Some(now_micro()),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        }
    };
    let spec = current.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let rv = current.metadata.resource_version.clone();
    let now = Instant::now();

    // Track when the record last changed, by our own clock.
    let changed = observed
        .as_ref()
        .map(|o| o.resource_version != rv || o.holder != holder)
        .unwrap_or(true);
    if changed {
        *observed = Some(Observed {
            resource_version: rv.clone(),
            holder: holder.clone(),
            since: now,
        });
    }
    let held_by_me = holder.as_deref() == Some(s.identity.as_str());
    let duration = spec
        .lease_duration_seconds
        .and_then(|v| u64::try_from(v).ok())
        .map(Duration::from_secs)
        .unwrap_or(s.lease_duration);
    let expired = observed
        .as_ref()
        .map(|o| now.duration_since(o.since) >= duration)
        .unwrap_or(false);
    if !(held_by_me || holder.is_none() || expired) {
        return Ok(false);
    }

    let mut next = current.clone();
    let mut new_spec = spec.clone();
    if !held_by_me {
        new_spec.holder_identity = Some(s.identity.clone());
        new_spec.acquire_time = Some(now_micro());
        new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    new_spec.renew_time = Some(now_micro());
    new_spec.lease_duration_seconds = Some(lease_seconds(s.lease_duration));
    next.spec = Some(new_spec);
    match api.replace(&s.name, &PostParams::default(), &next).await {
        Ok(written) => {
            *observed = Some(Observed {
                resource_version: written.metadata.resource_version,
                holder: Some(s.identity.clone()),
                since: Instant::now(),
            });
            Ok(true)
        }
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Clear the holder, if it is still us, so a standby takes over at once.
async fn release(api: &Api<Lease>, s: &LeaseSettings) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&s.name).await? else {
        return Ok(());
    };
    let mut spec = lease.spec.clone().unwrap_or_default();
    if spec.holder_identity.as_deref() != Some(s.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.acquire_time = None;
    spec.renew_time = Some(now_micro());
    spec.lease_duration_seconds = Some(1);
    lease.spec = Some(spec);
    api.replace(&s.name, &PostParams::default(), &lease).await?;
    Ok(())
}
