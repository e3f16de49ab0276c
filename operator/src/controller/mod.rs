//! Reconcile drivers: read the cluster and storage, plan with the engine, apply the plan
//! through the storage layer, and report status, events and metrics.
//!
//! - [`bucket`]: the EvidenceBucket controller, which does all the work on storage, as
//!   dereference → validate → apply → report (one file each). It is triggered by changes
//!   to the bucket, to its RetentionPolicy, to LegalHolds that reference it, and by time
//!   (the sweep interval, or sooner when the plan says a clip becomes due).
//! - [`legal_hold`]: the LegalHold controller: a finalizer that releases the hold's clips
//!   (by sweeping its bucket without it) before the LegalHold goes away.
//! - [`requests`]: ClipRestore and AccessRequest naming a bucket that does not exist (the
//!   bucket controller does everything else for them).
//! - [`retention_policy`]: a RetentionPolicy's own status (`Ready`: valid or not).
//! - [`sweep`]: one sweep of one bucket: list, plan, execute, count.
//! - [`status`]: pure condition helpers and the one status writer ([`status::apply_status`]).
//! - [`leader`]: Lease-based leader election.

pub mod audit;
pub mod bucket;
pub mod leader;
pub mod legal_hold;
pub mod metrics;
pub mod requests;
pub mod retention_policy;
pub mod status;
pub mod sweep;

use std::{collections::HashMap, sync::Arc, time::Duration};

use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{
        controller::Action,
        events::{Event, EventType, Recorder, Reporter},
    },
};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::storage::{StorageMetrics, StoreOptions, TierStore};
use metrics::Metrics;

/// The field manager of every status patch (server-side apply).
pub const MANAGER: &str = "evidence-operator";

/// Errors of a reconcile, one variant per step that can fail, each with the object it
/// was working on. A bucket that cannot be swept as it is (suspended, outside the UK, no
/// policy, no credentials, ...) is not an error: it is a [`bucket::Refusal`], reported in
/// status and retried on its own schedule.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Dereference: reading an object the reconcile depends on failed.
    #[error("reading {what}: {source}")]
    Read {
        /// The object, e.g. `RetentionPolicy ns/name`.
        what: String,
        /// The API error.
        source: kube::Error,
    },
    /// Apply: a storage call failed (connecting, proving the region).
    #[error("storage of EvidenceBucket {bucket}: {source}")]
    Storage {
        /// `namespace/name` of the EvidenceBucket.
        bucket: String,
        /// The storage error.
        source: crate::storage::StorageError,
    },
    /// Apply: the audit trail could not be written or read.
    #[error("audit trail of EvidenceBucket {bucket}: {source}")]
    Audit {
        /// `namespace/name` of the EvidenceBucket.
        bucket: String,
        /// The audit error.
        source: crate::audit::AuditError,
    },
    /// Apply: the sweep stopped before its end.
    #[error("sweep of EvidenceBucket {bucket}: {source}")]
    Sweep {
        /// `namespace/name` of the EvidenceBucket.
        bucket: String,
        /// Why it stopped.
        source: sweep::SweepError,
    },
    /// Report: writing an object's status failed.
    #[error("writing the status of {what}: {source}")]
    WriteStatus {
        /// The object, e.g. `EvidenceBucket ns/name`.
        what: String,
        /// The API error.
        source: kube::Error,
    },
    /// A finalizer (a LegalHold's, an AccessRequest's) could not be added or removed.
    #[error("finalizer of {hold}: {message}")]
    Finalizer {
        /// `namespace/name` of the LegalHold.
        hold: String,
        /// What kube's finalizer helper reported.
        message: String,
    },
    /// A deleted LegalHold's clips cannot be released yet; the release is retried and the
    /// finalizer stays until it completes.
    #[error("LegalHold {hold}: release pending: {why}")]
    ReleasePending {
        /// `namespace/name` of the LegalHold.
        hold: String,
        /// Why not yet.
        why: String,
    },
}

impl Error {
    /// The categories of errors from the Kubernetes API (a failed read, status write or
    /// finalizer update): what an RBAC rule that is too narrow shows up as.
    pub const KUBE_CATEGORIES: [&'static str; 3] =
        ["kube_read", "kube_write_status", "kube_finalizer"];

    /// A bounded category, for metric labels: the step that failed, or for storage and
    /// audit failures the lower layer's own bounded category.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Read { .. } => "kube_read",
            Error::Storage { source, .. } => source.category(),
            Error::Audit { source, .. } => source.category(),
            Error::Sweep {
                source: sweep::SweepError::Audit(e),
                ..
            } => e.category(),
            Error::Sweep { .. } => "sweep",
            Error::WriteStatus { .. } => "kube_write_status",
            Error::Finalizer { .. } => "kube_finalizer",
            Error::ReleasePending { .. } => "release_pending",
        }
    }

    /// How long to wait before reconciling again after this error: the API server
    /// soon (a conflict or a blip), everything else (storage, audit, a release that
    /// cannot complete yet) after a longer back-off.
    pub fn retry_after(&self) -> Duration {
        match self {
            Error::Read { .. } | Error::WriteStatus { .. } | Error::Finalizer { .. } => {
                Duration::from_secs(5)
            }
            _ => Duration::from_secs(30),
        }
    }

    /// A failed read of `what`.
    pub fn read(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let what = what.into();
        move |source| Error::Read { what, source }
    }
}

/// Operator-wide settings, resolved from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The full set of allowed regions (built-in UK set plus installation extras).
    pub allowed_regions: crate::api::regions::AllowedRegions,
    /// Namespaces whose EvidenceBuckets may omit `credentialsSecretRef` and act with the
    /// operator's own identity (IRSA, workload identity, instance profile); `*`: every
    /// namespace. Empty (the default): none, so every bucket brings its own credentials.
    pub operator_identity_namespaces: Vec<String>,
    /// The endpoint hosts EvidenceBuckets may name (hosts, or `*.suffix` patterns);
    /// empty: any host. Link-local and cloud metadata addresses are never allowed.
    pub allowed_endpoints: Vec<String>,
    /// Moves in flight at once per bucket.
    pub move_concurrency: usize,
    /// Storage options (multipart threshold and so on).
    pub store_options: StoreOptions,
    /// The shortest requeue.
    pub min_requeue: Duration,
    /// This replica's identity (events, audit).
    pub identity: String,
    /// The cluster's name, written into the storage claims this installation makes
    /// (`--cluster-name`; may be empty), so that another cluster's operator refusing a
    /// location can say whose it is.
    pub cluster_name: String,
    /// Added to the wall clock when planning. Zero in the binary (deliberately not a
    /// flag); the demo and the integration tests shift time forward so that clips
    /// uploaded a moment ago are past the safety floor (which also counts from upload
    /// time).
    pub clock_offset: chrono::TimeDelta,
    /// How far the local clock may be from the S3 store's and the API server's before
    /// a sweep is refused (`ClockSkew`).
    pub max_clock_skew: Duration,
    /// Added to the local wall clock in the clock-skew check only (never to
    /// [`Settings::now`]). Zero in the binary (deliberately not a flag): the
    /// integration tests make the local clock disagree with the servers' this way,
    /// without touching the machine's clock.
    #[doc(hidden)]
    pub skew_check_offset: chrono::TimeDelta,
    /// The leader-election Lease (`namespace/name`), when leader election is on.
    pub lease: Option<String>,
    /// The root key prefix of the audit chains in each legal-hold bucket.
    pub audit_prefix: String,
    /// Object Lock COMPLIANCE retention of each audit object.
    pub audit_retention: chrono::TimeDelta,
    /// Clips re-read by the integrity sweep after each sweep of a bucket (0: off).
    pub integrity_sample: usize,
    /// Where the clip catalogue lives (`--catalogue-dir`); `None`: no catalogue, every
    /// sweep reads each clip's facts (one tag read per clip on stores without MinIO's
    /// listing extension).
    pub catalogue_dir: Option<std::path::PathBuf>,
    /// How the catalogue is used (refresh interval, parallel key ranges).
    pub catalogue: crate::catalogue::CatalogueOptions,
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

    /// What the installation grants the EvidenceBuckets of `namespace`.
    pub fn grants(&self, namespace: &str) -> bucket::validate::Grants {
        bucket::validate::Grants::for_namespace(
            &self.operator_identity_namespaces,
            &self.allowed_endpoints,
            namespace,
        )
    }

    /// The time the engine plans at.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + self.clock_offset
    }
}

/// A bucket's store and audit log, and the configuration (credentials included) they
/// were built from.
type CachedStore = (
    crate::storage::BucketConfig,
    Arc<dyn TierStore>,
    Arc<crate::audit::AuditLog>,
);

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
    /// One store per EvidenceBucket, rebuilt when its configuration changes: its spec, or
    /// the keys in its credentials Secret (a rotated key is used from the next
    /// reconcile, without a restart).
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
    /// The clip catalogue, when the operator keeps one.
    pub catalogue: Option<crate::catalogue::Catalogue>,
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
            catalogue: None,
        }
    }

    /// The same, listing through `catalogue`.
    pub fn with_catalogue(mut self, catalogue: Option<crate::catalogue::Catalogue>) -> Self {
        self.catalogue = catalogue;
        self
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
        Action::requeue(err.retry_after())
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
