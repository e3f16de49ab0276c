//! The storage layer's metrics hooks: S3 requests by operation and outcome, HTTP
//! requests actually sent (counted by an SDK interceptor, retries included), retries,
//! bytes copied and hashed, checksum mismatches, moves and deletes. Labels are bounded:
//! operation, outcome, tier, method; never a bucket or clip key.

use std::sync::Arc;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, core::Collector,
};

#[derive(Debug)]
struct Inner {
    requests: IntCounterVec,
    http_requests: IntCounterVec,
    retries: IntCounterVec,
    request_duration: HistogramVec,
    bytes_copied: IntCounter,
    bytes_hashed: IntCounter,
    checksum_mismatches: IntCounter,
    verifications: IntCounterVec,
    moves: IntCounterVec,
    deletes: IntCounterVec,
    objects_listed: IntCounterVec,
}

/// Storage metrics; cheap to clone (shared counters).
#[derive(Debug, Clone)]
pub struct StorageMetrics {
    inner: Option<Arc<Inner>>,
}

impl StorageMetrics {
    fn build() -> Result<Inner, prometheus::Error> {
        Ok(Inner {
            requests: IntCounterVec::new(
                Opts::new(
                    "storage_requests_total",
                    "S3 requests made by the storage layer (each attempt), by operation and outcome",
                ),
                &["operation", "outcome"],
            )?,
            http_requests: IntCounterVec::new(
                Opts::new(
                    "storage_http_requests_total",
                    "HTTP requests actually sent to the object store, by method (SDK interceptor)",
                ),
                &["method"],
            )?,
            retries: IntCounterVec::new(
                Opts::new(
                    "storage_retries_total",
                    "Requests retried after throttling or a transient error, by operation",
                ),
                &["operation"],
            )?,
            request_duration: HistogramVec::new(
                HistogramOpts::new("storage_request_duration_seconds", "S3 request duration")
                    .buckets(vec![
                        0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0,
                    ]),
                &["operation"],
            )?,
            bytes_copied: IntCounter::new(
                "storage_bytes_copied_total",
                "Bytes copied between tiers (server-side copies)",
            )?,
            bytes_hashed: IntCounter::new(
                "storage_bytes_hashed_total",
                "Bytes read back and hashed to compute or verify a SHA-256",
            )?,
            checksum_mismatches: IntCounter::new(
                "storage_checksum_mismatches_total",
                "Copies (or sources) whose SHA-256 did not match the recorded one",
            )?,
            verifications: IntCounterVec::new(
                Opts::new(
                    "storage_verifications_total",
                    "Destination verifications, by method (s3_checksum, reread)",
                ),
                &["method"],
            )?,
            moves: IntCounterVec::new(
                Opts::new(
                    "storage_moves_total",
                    "Clip moves, by destination tier and outcome",
                ),
                &["to", "outcome"],
            )?,
            deletes: IntCounterVec::new(
                Opts::new(
                    "storage_deletes_total",
                    "Clip deletions, by outcome (deleted, failed)",
                ),
                &["outcome"],
            )?,
            objects_listed: IntCounterVec::new(
                Opts::new(
                    "storage_objects_listed_total",
                    "Objects listed, by where their tags and hold came from: listing (the \
                     store's listing carried them, MinIO) or per_object (one read per object)",
                ),
                &["source"],
            )?,
        })
    }

    /// Create the metrics and register them in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let inner = Self::build()?;
        let all: Vec<Box<dyn Collector>> = vec![
            Box::new(inner.requests.clone()),
            Box::new(inner.http_requests.clone()),
            Box::new(inner.retries.clone()),
            Box::new(inner.request_duration.clone()),
            Box::new(inner.bytes_copied.clone()),
            Box::new(inner.bytes_hashed.clone()),
            Box::new(inner.checksum_mismatches.clone()),
            Box::new(inner.verifications.clone()),
            Box::new(inner.moves.clone()),
            Box::new(inner.deletes.clone()),
            Box::new(inner.objects_listed.clone()),
        ];
        for c in all {
            registry.register(c)?;
        }
        Ok(StorageMetrics {
            inner: Some(Arc::new(inner)),
        })
    }

    /// Metrics not registered anywhere (tests, tools). They still count, so tests can
    /// read them.
    pub fn unregistered() -> Self {
        StorageMetrics {
            inner: Self::build().ok().map(Arc::new),
        }
    }

    pub(crate) fn request(&self, operation: &str, outcome: &str, seconds: f64) {
        if let Some(i) = &self.inner {
            i.requests.with_label_values(&[operation, outcome]).inc();
            i.request_duration
                .with_label_values(&[operation])
                .observe(seconds);
        }
    }

    pub(crate) fn http_request(&self, method: &str) {
        if let Some(i) = &self.inner {
            i.http_requests.with_label_values(&[method]).inc();
        }
    }

    pub(crate) fn retry(&self, operation: &str) {
        if let Some(i) = &self.inner {
            i.retries.with_label_values(&[operation]).inc();
        }
    }

    pub(crate) fn copied(&self, bytes: u64) {
        if let Some(i) = &self.inner {
            i.bytes_copied.inc_by(bytes);
        }
    }

    pub(crate) fn hashed(&self, bytes: u64) {
        if let Some(i) = &self.inner {
            i.bytes_hashed.inc_by(bytes);
        }
    }

    pub(crate) fn mismatch(&self) {
        if let Some(i) = &self.inner {
            i.checksum_mismatches.inc();
        }
    }

    pub(crate) fn verification(&self, method: &str) {
        if let Some(i) = &self.inner {
            i.verifications.with_label_values(&[method]).inc();
        }
    }

    pub(crate) fn moved(&self, to: &str, outcome: &str) {
        if let Some(i) = &self.inner {
            i.moves.with_label_values(&[to, outcome]).inc();
        }
    }

    pub(crate) fn deleted(&self, outcome: &str, n: u64) {
        if let Some(i) = &self.inner {
            i.deletes.with_label_values(&[outcome]).inc_by(n);
        }
    }

    pub(crate) fn listed_with_extras(&self, n: u64) {
        if let Some(i) = &self.inner {
            i.objects_listed.with_label_values(&["listing"]).inc_by(n);
        }
    }

    pub(crate) fn listed_per_object(&self) {
        if let Some(i) = &self.inner {
            i.objects_listed.with_label_values(&["per_object"]).inc();
        }
    }

    /// Objects whose tags and hold came with the listing (`listing`) or were read one by
    /// one (`per_object`).
    pub fn objects_listed(&self, source: &str) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.objects_listed.with_label_values(&[source]).get())
    }

    /// S3 requests counted by the storage layer (every attempt), all operations.
    pub fn requests_total(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| sum(&i.requests))
    }

    /// S3 requests of one operation (e.g. `copy_object`) with one outcome (`ok`, `error`,
    /// `not_found`, `throttled`).
    pub fn requests(&self, operation: &str, outcome: &str) -> u64 {
        self.inner.as_ref().map_or(0, |i| {
            i.requests.with_label_values(&[operation, outcome]).get()
        })
    }

    /// HTTP requests actually sent (SDK interceptor), all methods.
    pub fn http_requests_total(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| sum(&i.http_requests))
    }

    /// Bytes copied between tiers.
    pub fn bytes_copied(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.bytes_copied.get())
    }

    /// Bytes read back and hashed.
    pub fn bytes_hashed(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.bytes_hashed.get())
    }

    /// Checksum mismatches seen.
    pub fn checksum_mismatches(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.checksum_mismatches.get())
    }
}

fn sum(v: &IntCounterVec) -> u64 {
    v.collect()
        .iter()
        .flat_map(|mf| mf.get_metric().iter())
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_counts() -> Result<(), prometheus::Error> {
        let reg = Registry::new_custom(Some("evidence_operator".into()), None)?;
        let m = StorageMetrics::new(&reg)?;
        m.request("copy_object", "ok", 0.01);
        m.request("head_object", "not_found", 0.01);
        m.copied(42);
        m.mismatch();
        assert_eq!(m.requests_total(), 2);
        assert_eq!(m.requests("copy_object", "ok"), 1);
        assert_eq!(m.bytes_copied(), 42);
        assert_eq!(m.checksum_mismatches(), 1);
        let names: Vec<String> = reg.gather().iter().map(|f| f.name().to_string()).collect();
        assert!(names.contains(&"evidence_operator_storage_requests_total".to_string()));
        // A second registration in the same registry is refused, not silently doubled.
        assert!(StorageMetrics::new(&reg).is_err());
        Ok(())
    }

    #[test]
    fn unregistered_metrics_still_count() {
        let m = StorageMetrics::unregistered();
        m.http_request("PUT");
        m.http_request("GET");
        assert_eq!(m.http_requests_total(), 2);
    }
}
