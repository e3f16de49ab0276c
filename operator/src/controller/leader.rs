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
//!   its next retry instead of waiting for the Lease to expire;
//! - a Lease so released goes to a standby that was waiting, not to the pod started to
//!   replace the leader: a candidate whose *first* look at the Lease finds it free
//!   leaves it for one retry period (it takes it at its next round if still free), and a
//!   standby, which saw it held and tries at least once a retry period, comes first
//!   ([`may_take`]);
//! - every round that the API server answers (even with an error status) is published,
//!   for readiness: a replica that has not heard from the API server within the renew
//!   deadline can neither lead nor take over (see `runtime::server`).

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
#[derive(Debug)]
struct Observed {
    resource_version: Option<String>,
    holder: Option<String>,
    since: Instant,
}

/// What the election publishes.
#[derive(Debug)]
pub struct Published {
    /// `true` while this replica holds the Lease.
    pub leading: watch::Sender<bool>,
    /// The earliest instant (this replica's monotonic clock) at which another replica
    /// may consider the Lease expired.
    pub expiry: watch::Sender<Option<Instant>>,
    /// When the API server last answered a round (for readiness).
    pub contact: watch::Sender<Option<Instant>>,
}

/// Runs the election until `shutdown` is cancelled, publishing what it knows in
/// `published`. On shutdown a held Lease is released.
pub async fn run(
    client: Client,
    settings: LeaseSettings,
    published: Published,
    shutdown: CancellationToken,
) {
    let Published {
        leading,
        expiry,
        contact,
    } = published;
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
        if let Some(Ok(r)) = &result
            && answered(r)
        {
            contact.send_replace(Some(Instant::now()));
        }
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

/// Whether the API server answered the round (a status such as 403 or 409 is an
/// answer; a connection refused or reset, a TLS failure, a timeout are not).
fn answered(round: &Result<bool, kube::Error>) -> bool {
    matches!(round, Ok(_) | Err(kube::Error::Api(_)))
}

/// What a candidate sees of the Lease at one round.
#[derive(Debug, Clone, Copy)]
struct Sight<'a> {
    /// The holder (None: free, released by its last holder).
    holder: Option<&'a str>,
    /// This replica looked at the Lease before (an earlier round of this process).
    looked_before: bool,
    /// How long, by this replica's clock, the record has not changed.
    unchanged_for: Duration,
    /// The duration written in the Lease.
    duration: Duration,
}

/// Whether this replica may write itself into the Lease: it holds it; or the holder's
/// Lease expired by this replica's clock; or the Lease is free and this is not this
/// process's first look at it. A pod started to replace a deleted leader, finding the
/// Lease just released, so leaves it one retry period to the standby that was waiting
/// (and that sees it free within one retry period of the release).
fn may_take(s: &LeaseSettings, sight: Sight<'_>) -> bool {
    match sight.holder {
        Some(h) if h == s.identity => true,
        Some(_) => sight.unchanged_for >= sight.duration,
        None => sight.looked_before,
    }
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

    let looked_before = observed.is_some();
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
    let sight = Sight {
        holder: holder.as_deref(),
        looked_before,
        unchanged_for: observed
            .as_ref()
            .map_or(Duration::ZERO, |o| now.duration_since(o.since)),
        duration,
    };
    if !may_take(s, sight) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LeaseSettings {
        LeaseSettings {
            namespace: "ops".into(),
            name: "evidence-operator".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    fn sight(holder: Option<&str>, looked_before: bool, unchanged_for: u64) -> Sight<'_> {
        Sight {
            holder,
            looked_before,
            unchanged_for: Duration::from_secs(unchanged_for),
            duration: Duration::from_secs(15),
        }
    }

    #[test]
    fn a_held_lease_is_taken_only_once_expired_by_our_clock() {
        let s = settings();
        assert!(
            may_take(&s, sight(Some("me"), false, 0)),
            "our own, after a restart"
        );
        assert!(may_take(&s, sight(Some("me"), true, 0)), "renewing our own");
        assert!(!may_take(&s, sight(Some("other"), true, 14)));
        assert!(may_take(&s, sight(Some("other"), true, 15)));
    }

    #[test]
    fn a_released_lease_goes_to_the_waiting_standby_first() {
        let s = settings();
        // the standby, which saw it held (however briefly), takes it the round it sees it
        // free (the record just changed)
        assert!(may_take(&s, sight(None, true, 0)));
        // the pod just started to replace the leader, finding it free at its first look,
        // leaves it one round ...
        assert!(!may_take(&s, sight(None, false, 0)));
        // ... and takes it at the next if nobody did
        assert!(may_take(&s, sight(None, true, 2)));
    }

    #[test]
    fn an_error_status_is_an_answer_a_broken_connection_is_not() {
        assert!(answered(&Ok(true)));
        assert!(answered(&Ok(false)));
        let forbidden = kube::core::Status::failure("forbidden", "Forbidden").with_code(403);
        assert!(answered(&Err(kube::Error::Api(Box::new(forbidden)))));
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(!answered(&Err(kube::Error::Service(Box::new(reset)))));
    }
}
