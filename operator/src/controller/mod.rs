//! Reconcile drivers: read the cluster and storage, plan with the engine, apply the plan
//! through the storage layer, and report status, events and metrics.
//!
//! - [`bucket`]: the EvidenceBucket controller, which does all the work on storage. It is
//!   triggered by changes to the bucket, to its RetentionPolicy, to LegalHolds that
//!   reference it, and by time (the sweep interval, or sooner when the plan says a clip
//!   becomes due).
//! - [`legal_hold`]: the LegalHold controller: a finalizer that releases the hold's clips
//!   (by sweeping its bucket without it) before the LegalHold goes away.
//! - [`sweep`]: one sweep of one bucket: list, plan, execute, count.
//! - [`status`]: pure condition helpers.
//! - [`leader`]: Lease-based leader election.

pub mod audit;
pub mod bucket;
pub mod leader;
pub mod legal_hold;
pub mod status;
pub mod sweep;

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::Context as _;
use futures::future;
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{
        controller::Action,
        events::{Event, EventType, Recorder, Reporter},
    },
};
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    api::regions,
    cli::RunArgs,
    metrics::Metrics,
    server::{self, Health},
    storage::{StorageMetrics, StoreOptions, TierStore},
};

/// The field manager of every status patch (server-side apply).
pub const MANAGER: &str = "evidence-operator";

/// Errors of a reconcile; `category()` is a bounded label for metrics.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A storage call failed.
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    /// A sweep could not complete.
    #[error("sweep: {0}")]
    Sweep(#[from] sweep::SweepError),
    /// The audit trail could not be written or read.
    #[error("audit: {0}")]
    Audit(#[from] crate::audit::AuditError),
    /// The resource cannot be reconciled as it is (reported in status; retried later).
    #[error("{reason}: {message}")]
    Invalid {
        /// CamelCase reason.
        reason: &'static str,
        /// Human-readable message.
        message: String,
    },
    /// Status could not be serialised.
    #[error("serialising status: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// A bounded category, for metric labels.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Storage(e) => e.category(),
            Error::Sweep(sweep::SweepError::Audit(e)) => e.category(),
            Error::Sweep(_) => "sweep",
            Error::Audit(e) => e.category(),
            Error::Invalid { reason, .. } => reason,
            Error::Json(_) => "json",
        }
    }
}

/// Operator-wide settings, resolved from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The full set of allowed regions (built-in UK set plus installation extras).
    pub allowed_regions: Vec<String>,
    /// Moves in flight at once per bucket.
    pub move_concurrency: usize,
    /// Storage options (multipart threshold and so on).
    pub store_options: StoreOptions,
    /// The shortest requeue.
    pub min_requeue: Duration,
    /// This replica's identity (events, audit).
    pub identity: String,
    /// Added to the wall clock when planning. Zero in the binary; the demo and the
    /// integration tests shift time forward so that clips uploaded a moment ago are past
    /// the safety floor (which also counts from upload time). Deliberately not a flag.
    pub clock_offset: chrono::TimeDelta,
    /// The leader-election Lease (`namespace/name`), when leader election is on.
    pub lease: Option<String>,
    /// The root key prefix of the audit chains in each legal-hold bucket.
    pub audit_prefix: String,
    /// Object Lock COMPLIANCE retention of each audit object.
    pub audit_retention: chrono::TimeDelta,
    /// Clips re-read by the integrity sweep after each sweep of a bucket (0: off).
    pub integrity_sample: usize,
}

impl Settings {
    /// Who acts, for audit records: this replica and the Lease it holds (it only acts
    /// while it leads).
    pub fn actor(&self) -> crate::audit::Actor {
        crate::audit::Actor {
            operator: self.identity.clone(),
            lease: self.lease.clone(),
            lease_holder: self.lease.as_ref().map(|_| self.identity.clone()),
        }
    }

    /// The time the engine plans at.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + self.clock_offset
    }
}

/// Library-only knobs of [`run_with`] that the binary never sets.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// See [`Settings::clock_offset`].
    pub clock_offset: chrono::TimeDelta,
}

/// A bucket's store and audit log, and the fingerprint of the configuration they were
/// built from.
type CachedStore = (String, Arc<dyn TierStore>, Arc<crate::audit::AuditLog>);

/// Shared state of the controllers.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Operator metrics.
    pub metrics: Metrics,
    /// Storage metrics (registered in the same registry).
    pub storage_metrics: StorageMetrics,
    /// Audit and integrity metrics (registered in the same registry).
    pub audit_metrics: crate::audit::AuditMetrics,
    /// Settings.
    pub settings: Settings,
    /// Event recorder.
    pub recorder: Recorder,
    /// Cancelled when the operator shuts down or loses leadership: no new storage action
    /// starts after that.
    pub draining: CancellationToken,
    /// One store per EvidenceBucket, rebuilt when its spec or credentials change.
    stores: Mutex<HashMap<String, CachedStore>>,
    /// One lock per EvidenceBucket: sweeps of one bucket never overlap.
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Per EvidenceBucket: the inputs of its last sweep and when the next one is due.
    /// A reconcile whose inputs are unchanged before that time does not sweep: this is
    /// what keeps the operator's own status writes from triggering sweep after sweep.
    swept: Mutex<HashMap<String, (String, tokio::time::Instant)>>,
    /// Per EvidenceBucket: flags already recorded in the audit trail by this replica.
    pub(crate) flags_recorded: Mutex<HashMap<String, std::collections::HashSet<String>>>,
    /// Per EvidenceBucket: the RetentionPolicy / LegalHold generations already recorded
    /// in its audit trail by this replica (uid → generation; -1 once recorded deleted).
    pub(crate) policies_recorded: Mutex<HashMap<String, HashMap<String, i64>>>,
}

impl Context {
    /// Build the shared state.
    pub fn new(
        client: Client,
        metrics: Metrics,
        storage_metrics: StorageMetrics,
        audit_metrics: crate::audit::AuditMetrics,
        settings: Settings,
        draining: CancellationToken,
    ) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: MANAGER.into(),
                instance: Some(settings.identity.clone()),
            },
        );
        Context {
            client,
            metrics,
            storage_metrics,
            audit_metrics,
            settings,
            recorder,
            draining,
            stores: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            swept: Mutex::new(HashMap::new()),
            flags_recorded: Mutex::new(HashMap::new()),
            policies_recorded: Mutex::new(HashMap::new()),
        }
    }

    /// The lock that serialises sweeps of one bucket.
    pub async fn bucket_lock(&self, key: &str) -> Arc<Mutex<()>> {
        self.locks
            .lock()
            .await
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    /// If the last sweep of `key` had these inputs and its next sweep is not due yet,
    /// how long until it is.
    pub async fn sweep_not_due(&self, key: &str, inputs: &str) -> Option<Duration> {
        let swept = self.swept.lock().await;
        let (last, due) = swept.get(key)?;
        let now = tokio::time::Instant::now();
        (last == inputs && now < *due).then(|| *due - now)
    }

    /// Record a sweep of `key` with these inputs, next due after `wait`.
    pub async fn record_sweep(&self, key: &str, inputs: String, wait: Duration) {
        self.swept.lock().await.insert(
            key.to_string(),
            (inputs, tokio::time::Instant::now() + wait),
        );
    }

    /// Publish an event about an object; failures to publish are logged, not fatal.
    pub async fn event<K>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) where
        K: Resource<DynamicType = ()>,
    {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            warn!(error = %e, reason, "could not publish event");
        }
    }
}

/// Run the operator until SIGTERM/SIGINT (or leadership is lost).
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
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
        args.metrics_addr,
        health.clone(),
        shutdown.clone(),
    ));
    let result = run_with(
        client,
        args,
        Overrides::default(),
        metrics,
        health,
        shutdown.clone(),
    )
    .await;
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

/// Run the operator with a given client until `shutdown` is cancelled: the in-process
/// entry point that tests use.
pub async fn run_with(
    client: Client,
    args: RunArgs,
    overrides: Overrides,
    metrics: Metrics,
    health: Health,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let identity = args
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("evidence-operator-{}", std::process::id()));
    let storage_metrics = StorageMetrics::new(metrics.registry())?;
    let audit_metrics = crate::audit::AuditMetrics::new(metrics.registry())?;
    let mut allowed = regions::BUILTIN_UK_REGIONS
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>();
    allowed.extend(
        args.allowed_regions
            .iter()
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty()),
    );
    allowed.sort();
    allowed.dedup();
    let store_options = StoreOptions {
        multipart_threshold: args.multipart_threshold,
        ..StoreOptions::default()
    };
    let audit_prefix = normalise_prefix(&args.audit_prefix);
    if audit_prefix.is_empty() {
        anyhow::bail!(
            "--audit-prefix must not be empty: the audit chain needs a key prefix of its own"
        );
    }
    let settings = Settings {
        allowed_regions: allowed,
        move_concurrency: args.move_concurrency,
        store_options,
        min_requeue: args.min_requeue,
        identity: identity.clone(),
        clock_offset: overrides.clock_offset,
        lease: args
            .leader_elect
            .then(|| format!("{}/{}", args.lease_namespace, args.lease_name)),
        audit_prefix,
        audit_retention: chrono::TimeDelta::days(i64::from(args.audit_retention_days.max(1))),
        integrity_sample: args.integrity_sample,
    };
    info!(identity = %identity, allowed_regions = ?settings.allowed_regions, "starting evidence-operator");

    if args.leader_elect
        && !(args.retry_period < args.renew_deadline && args.renew_deadline < args.lease_duration)
    {
        anyhow::bail!(
            "leader election needs --retry-period ({:?}) < --renew-deadline ({:?}) < --lease-duration ({:?})",
            args.retry_period,
            args.renew_deadline,
            args.lease_duration
        );
    }
    let (lead_tx, mut lead_rx) = watch::channel(!args.leader_elect);
    let election_stop = CancellationToken::new();
    let election = if args.leader_elect {
        let lease = leader::LeaseSettings {
            namespace: args.lease_namespace.clone(),
            name: args.lease_name.clone(),
            identity: identity.clone(),
            lease_duration: args.lease_duration,
            renew_deadline: args.renew_deadline,
            retry_period: args.retry_period,
        };
        // The election stops (and the Lease is released) only after the controllers
        // have stopped, so a standby never acts while this replica finishes its moves.
        Some(tokio::spawn(leader::run(
            client.clone(),
            lease,
            lead_tx,
            election_stop.clone(),
        )))
    } else {
        None
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
    metrics.leader.with_label_values(&[&args.lease_name]).set(1);
    info!(identity = %identity, "leading: starting controllers");

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
    let ctx = Arc::new(Context::new(
        client.clone(),
        metrics.clone(),
        storage_metrics,
        audit_metrics,
        settings,
        draining.clone(),
    ));
    let namespaces: Vec<Option<String>> = if args.watch_namespace.is_empty() {
        vec![None]
    } else {
        args.watch_namespace.iter().cloned().map(Some).collect()
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
            ns,
            stop.clone(),
        )));
    }
    stop.cancelled().await;
    info!(
        "stopping controllers; in-flight storage actions may take up to {:?}",
        args.shutdown_timeout
    );
    let all = future::join_all(controllers);
    if tokio::time::timeout(args.shutdown_timeout, all)
        .await
        .is_err()
    {
        warn!(
            "in-flight work did not finish within the shutdown timeout; abandoning it (safe: moves converge at the next sweep)"
        );
    }
    metrics.leader.with_label_values(&[&args.lease_name]).set(0);
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

/// Shared error policy: back off, count the error by category.
pub fn error_policy<K>(
    controller: &'static str,
) -> impl Fn(Arc<K>, &Error, Arc<Context>) -> Action {
    move |_obj, err, ctx| {
        ctx.metrics
            .reconcile_errors
            .with_label_values(&[controller, err.category()])
            .inc();
        warn!(controller, error = %err, "reconcile failed");
        let retry = if err.category() == "kube" { 5 } else { 30 };
        Action::requeue(Duration::from_secs(retry))
    }
}

/// A key prefix that ends in `/` (empty stays empty).
pub fn normalise_prefix(p: &str) -> String {
    let p = p.trim().trim_start_matches('/');
    if p.is_empty() || p.ends_with('/') {
        p.to_string()
    } else {
        format!("{p}/")
    }
}

/// `namespace/name` of an object, the key used for locks, stores and metric labels.
pub fn key_of<K: ResourceExt>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Typed API for a namespace or all namespaces.
pub fn api_for<K>(client: Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    match ns {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    }
}
