//! Wiring: from [`Settings`] to a running operator. Connects to the API server, serves
//! the HTTP endpoints ([`server`]), elects a leader, starts the controllers for each
//! watched namespace while this replica leads, and shuts down gracefully on SIGTERM or
//! when leadership is lost. Logging setup is in [`telemetry`].
//!
//! [`Settings`] is plain data: the binary builds it from its flags (`cli`); a library
//! user can build it directly ([`Settings::for_namespace`]). The tests and the demo
//! build it from a command line, as the binary does, and call [`run_with`], the same
//! code the binary runs.

pub mod server;
pub mod telemetry;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use futures::future;
use kube::Client;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    api::regions::AllowedRegions,
    audit::AuditMetrics,
    catalogue::{Catalogue, CatalogueMetrics},
    controller::{
        self, Context, bucket, leader, legal_hold, metrics::Metrics, requests, retention_policy,
    },
    storage::{StorageMetrics, StoreOptions},
};
use server::Health;

/// The default name of the leader-election Lease.
pub const DEFAULT_LEASE_NAME: &str = "evidence-operator";

/// Leader election through a `coordination.k8s.io` Lease.
#[derive(Debug, Clone)]
pub struct LeaderElection {
    /// Namespace of the Lease.
    pub lease_namespace: String,
    /// Name of the Lease.
    pub lease_name: String,
    /// How long the Lease stays valid after the leader's last renewal.
    pub lease_duration: Duration,
    /// The leader steps down when it could not renew for this long.
    pub renew_deadline: Duration,
    /// How often candidates try to take the Lease, and the leader renews it.
    pub retry_period: Duration,
}

impl LeaderElection {
    /// `namespace/name` of the Lease.
    pub fn lease(&self) -> String {
        format!("{}/{}", self.lease_namespace, self.lease_name)
    }
}

/// Everything the operator needs to run, resolved and checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// What the controllers need (regions, concurrency, audit, identity, clock).
    pub controllers: controller::Settings,
    /// Only these namespaces are watched; all when empty.
    pub watch_namespaces: Vec<String>,
    /// Address of `/metrics`, `/healthz` and `/readyz` (port 0: any free port).
    pub metrics_addr: SocketAddr,
    /// Leader election; `None` runs as the only replica.
    pub leader_election: Option<LeaderElection>,
    /// How long in-flight work may take to finish on shutdown.
    pub shutdown_timeout: Duration,
}

/// A settings problem the operator refuses to start with.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// An `--endpoint-region` declaration the operator cannot use.
    #[error("{0}")]
    EndpointRegion(String),
    /// The audit chain needs a key prefix of its own.
    #[error("--audit-prefix must not be empty: the audit chain needs a key prefix of its own")]
    EmptyAuditPrefix,
    /// Leader-election timings that cannot work.
    #[error(
        "leader election needs --retry-period ({retry:?}) < --renew-deadline ({renew:?}) < --lease-duration ({lease:?})"
    )]
    LeaseTimings {
        /// The retry period.
        retry: Duration,
        /// The renew deadline.
        renew: Duration,
        /// The lease duration.
        lease: Duration,
    },
}

impl Settings {
    /// The settings of a single replica watching one namespace, its metrics on any
    /// free loopback port, sweeps at most a second apart; everything else as the
    /// defaults of `evidence-operator run`'s flags (a unit test in `cli` keeps them
    /// equal).
    pub fn for_namespace(namespace: &str) -> Settings {
        Settings {
            controllers: controller::Settings {
                allowed_regions: AllowedRegions::new::<_, &str>([]),
                operator_identity_namespaces: Vec::new(),
                allowed_endpoints: Vec::new(),
                move_concurrency: 16,
                store_options: StoreOptions::default(),
                min_requeue: Duration::from_secs(1),
                identity: format!("evidence-operator-{}", std::process::id()),
                cluster_name: String::new(),
                clock_offset: chrono::TimeDelta::zero(),
                max_clock_skew: Duration::from_secs(60),
                skew_check_offset: chrono::TimeDelta::zero(),
                lease: None,
                audit_prefix: "evidence-audit/".into(),
                audit_retention: chrono::TimeDelta::days(2557),
                integrity_sample: 0,
                catalogue_dir: None,
                catalogue: crate::catalogue::CatalogueOptions::default(),
            },
            watch_namespaces: vec![namespace.to_string()],
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            leader_election: None,
            shutdown_timeout: Duration::from_secs(25),
        }
    }

    /// With leader election through the Lease `namespace/name`, at the flags' default
    /// timings.
    pub fn with_leader_election(mut self, namespace: &str, name: &str) -> Settings {
        let election = LeaderElection {
            lease_namespace: namespace.into(),
            lease_name: name.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        };
        self.controllers.lease = Some(election.lease());
        self.leader_election = Some(election);
        self
    }

    /// Refuse settings the operator cannot run with.
    pub fn check(&self) -> Result<(), SettingsError> {
        if self.controllers.audit_prefix.is_empty() {
            return Err(SettingsError::EmptyAuditPrefix);
        }
        self.controllers
            .store_options
            .endpoint_regions
            .check(&self.controllers.allowed_regions)
            .map_err(SettingsError::EndpointRegion)?;
        if let Some(e) = &self.leader_election
            && !(e.retry_period < e.renew_deadline && e.renew_deadline < e.lease_duration)
        {
            return Err(SettingsError::LeaseTimings {
                retry: e.retry_period,
                renew: e.renew_deadline,
                lease: e.lease_duration,
            });
        }
        Ok(())
    }

    /// The name of the Lease, for the leader metric (the default name without
    /// election, as the flag's default).
    fn lease_name(&self) -> &str {
        self.leader_election
            .as_ref()
            .map_or(DEFAULT_LEASE_NAME, |e| e.lease_name.as_str())
    }
}

/// Run the operator until SIGTERM/SIGINT (or leadership is lost).
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    // Settings that cannot work are refused before anything is contacted.
    settings.check()?;
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API server (in-cluster config or KUBECONFIG)")?;
    let shutdown = CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            info!("shutdown signal received; finishing in-flight work");
            shutdown.cancel();
        });
    }
    let metrics = Metrics::new()?;
    let health = Health::new(metrics.clone());
    let http = tokio::spawn(server::serve(
        settings.metrics_addr,
        health.clone(),
        shutdown.clone(),
    ));
    let result = run_with(client, settings, metrics, health, shutdown.clone()).await;
    shutdown.cancel();
    match http.await {
        Ok(Err(e)) => warn!(error = %e, "metrics server failed"),
        Err(e) => warn!(error = %e, "metrics server task failed"),
        Ok(Ok(())) => {}
    }
    result
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Run the operator with a given client until `shutdown` is cancelled (or leadership
/// is lost): what the binary runs, and the in-process entry point of the tests and the
/// demo. The HTTP endpoints are the caller's ([`run`] serves them).
pub async fn run_with(
    client: Client,
    settings: Settings,
    metrics: Metrics,
    health: Health,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    settings.check()?;
    let identity = settings.controllers.identity.clone();
    let storage_metrics = StorageMetrics::new(metrics.registry())?;
    let audit_metrics = AuditMetrics::new(metrics.registry())?;
    let catalogue = match &settings.controllers.catalogue_dir {
        Some(dir) => {
            let catalogue = Catalogue::open(
                dir,
                settings.controllers.catalogue.clone(),
                CatalogueMetrics::new(metrics.registry())?,
            )?;
            info!(dir = %dir.display(), "clip catalogue open");
            Some(catalogue)
        }
        None => {
            info!("no --catalogue-dir: every sweep reads each clip's facts from storage");
            None
        }
    };
    info!(identity = %identity, allowed_regions = %settings.controllers.allowed_regions, "starting evidence-operator");

    let (lead_tx, mut lead_rx) = watch::channel(settings.leader_election.is_none());
    let (expiry_tx, expiry_rx) = watch::channel(None);
    let election_stop = CancellationToken::new();
    // Without an election `lead_tx` stays here, alive until the end: a dropped sender
    // would read as leadership lost.
    let (election, _lead_tx) = match &settings.leader_election {
        Some(e) => {
            let lease = leader::LeaseSettings {
                namespace: e.lease_namespace.clone(),
                name: e.lease_name.clone(),
                identity: identity.clone(),
                lease_duration: e.lease_duration,
                renew_deadline: e.renew_deadline,
                retry_period: e.retry_period,
            };
            // The election stops (and the Lease is released) only after the controllers
            // have stopped, so a standby never acts while this replica finishes its moves.
            // ready only while the API server answers the election (runtime::server)
            let (contact, contact_rx) = watch::channel(None);
            health.track_api(contact_rx, e.renew_deadline);
            let task = tokio::spawn(leader::run(
                client.clone(),
                lease,
                leader::Published {
                    leading: lead_tx,
                    expiry: expiry_tx,
                    contact,
                },
                election_stop.clone(),
            ));
            (Some(task), None)
        }
        None => (None, Some(lead_tx)),
    };
    health.set_ready(true);

    // Wait to lead (or to be told to stop).
    loop {
        if *lead_rx.borrow() {
            break;
        }
        tokio::select! {
            _ = shutdown.cancelled() => {
                election_stop.cancel();
                if let Some(e) = election { let _ = e.await; }
                return Ok(());
            }
            changed = lead_rx.changed() => { if changed.is_err() { return Ok(()); } }
        }
    }
    let lease_name = settings.lease_name().to_string();
    metrics.leader.with_label_values(&[&lease_name]).set(1);
    info!(identity = %identity, "leading: starting controllers");
    if let Some(c) = &catalogue {
        // What this replica remembered of a tier may predate another leader's changes.
        c.begin_term().await;
    }

    // Stop when shutting down or when leadership is lost.
    let stop = CancellationToken::new();
    let lost = {
        let stop = stop.clone();
        let shutdown = shutdown.clone();
        let mut lead_rx = lead_rx.clone();
        tokio::spawn(async move {
            let lost = loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break false,
                    changed = lead_rx.changed() => {
                        if changed.is_err() || !*lead_rx.borrow() {
                            break !shutdown.is_cancelled();
                        }
                    }
                }
            };
            stop.cancel();
            lost
        })
    };

    let draining = stop.child_token();
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            metrics.clone(),
            storage_metrics,
            audit_metrics,
            settings.controllers.clone(),
            draining.clone(),
        )
        .with_catalogue(catalogue),
    );
    let namespaces: Vec<Option<String>> = if settings.watch_namespaces.is_empty() {
        vec![None]
    } else {
        settings
            .watch_namespaces
            .iter()
            .cloned()
            .map(Some)
            .collect()
    };
    let mut controllers = Vec::new();
    for ns in namespaces {
        controllers.push(tokio::spawn(bucket::controller(
            ctx.clone(),
            ns.clone(),
            stop.clone(),
        )));
        controllers.push(tokio::spawn(legal_hold::controller(
            ctx.clone(),
            ns.clone(),
            stop.clone(),
        )));
        controllers.push(tokio::spawn(requests::controller(
            ctx.clone(),
            ns.clone(),
            stop.clone(),
        )));
        controllers.push(tokio::spawn(retention_policy::controller(
            ctx.clone(),
            ns,
            stop.clone(),
        )));
    }
    stop.cancelled().await;
    info!(
        "stopping controllers; in-flight storage actions may take up to {:?}",
        settings.shutdown_timeout
    );
    // In-flight work ends by the shutdown timeout, and in any case before this
    // replica's Lease could expire once it no longer leads (a standby may act from
    // then on): whatever is still running then is aborted, which is safe (a move
    // stopped at any step keeps the clip and converges at the next sweep).
    let aborts: Vec<_> = controllers.iter().map(|c| c.abort_handle()).collect();
    let mut all = future::join_all(controllers);
    let margin = settings
        .leader_election
        .as_ref()
        .map_or(Duration::ZERO, |e| {
            (e.lease_duration.saturating_sub(e.renew_deadline) / 4).min(Duration::from_secs(1))
        });
    let finished = tokio::select! {
        _ = &mut all => true,
        _ = tokio::time::sleep(settings.shutdown_timeout) => {
            warn!("in-flight work did not finish within the shutdown timeout; aborting it (safe: moves converge at the next sweep)");
            false
        }
        at = lease_may_expire(lead_rx.clone(), expiry_rx, margin) => {
            warn!(remaining = ?at.saturating_duration_since(tokio::time::Instant::now()), "no longer leading: aborting in-flight work before the lease may expire (safe: moves converge at the next sweep)");
            false
        }
    };
    if !finished {
        for a in &aborts {
            a.abort();
        }
        let _ = all.await;
    }
    metrics.leader.with_label_values(&[&lease_name]).set(0);
    let lost = lost.await.unwrap_or(false);
    election_stop.cancel();
    if let Some(e) = election {
        let _ = e.await;
    }
    if lost {
        anyhow::bail!("lost leadership; exiting so that this replica restarts as a standby");
    }
    Ok(())
}

/// Resolves, with the instant it waited for, `margin` before the earliest moment a
/// standby may consider this replica's Lease expired, once this replica no longer
/// leads. Never resolves without leader election (no expiry is published).
async fn lease_may_expire(
    mut leading: watch::Receiver<bool>,
    expiry: watch::Receiver<Option<tokio::time::Instant>>,
    margin: Duration,
) -> tokio::time::Instant {
    loop {
        let leads = *leading.borrow_and_update();
        let expires = *expiry.borrow();
        if !leads && let Some(at) = expires {
            let at = at.checked_sub(margin).unwrap_or(at);
            tokio::time::sleep_until(at).await;
            return at;
        }
        let closed = leading.changed().await.is_err();
        let (leads, expires) = (*leading.borrow(), *expiry.borrow());
        if closed && (leads || expires.is_none()) {
            return future::pending().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_cannot_work_are_refused() {
        let ok = Settings::for_namespace("ns").with_leader_election("ns", "lease");
        assert!(ok.check().is_ok());
        let mut bad = ok.clone();
        if let Some(e) = bad.leader_election.as_mut() {
            e.renew_deadline = e.lease_duration;
        }
        assert!(matches!(
            bad.check(),
            Err(SettingsError::LeaseTimings { .. })
        ));
        let mut bad = ok;
        bad.controllers.audit_prefix.clear();
        assert!(matches!(bad.check(), Err(SettingsError::EmptyAuditPrefix)));
    }
}
