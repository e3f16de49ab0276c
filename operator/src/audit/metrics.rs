//! Metrics of the audit trail and the integrity sweep, registered in the operator's
//! registry (so prefixed `evidence_operator_`). Labels are bounded: action, result,
//! bucket (`namespace/name` of an EvidenceBucket); never a clip key.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

/// Audit and integrity metrics.
#[derive(Clone)]
pub struct AuditMetrics {
    /// Audit records written, by action.
    pub records: IntCounterVec,
    /// Audit batches (objects) written, by bucket.
    pub batches: IntCounterVec,
    /// Failed audit writes (the sweep stopped), by bucket.
    pub write_failures: IntCounterVec,
    /// Clips re-read by the integrity sweep, by result (`match`, `mismatch`, `error`).
    pub integrity_checks: IntCounterVec,
    /// Clips whose content did not match their recorded SHA-256 in the last integrity
    /// sweep, by bucket: alert when above 0.
    pub integrity_mismatches: IntGaugeVec,
}

impl AuditMetrics {
    /// Create and register the metrics.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self::unregistered()?;
        registry.register(Box::new(m.records.clone()))?;
        registry.register(Box::new(m.batches.clone()))?;
        registry.register(Box::new(m.write_failures.clone()))?;
        registry.register(Box::new(m.integrity_checks.clone()))?;
        registry.register(Box::new(m.integrity_mismatches.clone()))?;
        Ok(m)
    }

    /// The metrics, not registered anywhere (tests, the CLI).
    pub fn unregistered() -> Result<Self, prometheus::Error> {
        Ok(AuditMetrics {
            records: IntCounterVec::new(
                Opts::new("audit_records_total", "Audit records written, by action"),
                &["action"],
            )?,
            batches: IntCounterVec::new(
                Opts::new("audit_batches_total", "Audit objects written, by bucket"),
                &["bucket"],
            )?,
            write_failures: IntCounterVec::new(
                Opts::new(
                    "audit_write_failures_total",
                    "Audit writes that failed (the sweep stopped), by bucket",
                ),
                &["bucket"],
            )?,
            integrity_checks: IntCounterVec::new(
                Opts::new(
                    "integrity_checks_total",
                    "Clips re-read by the integrity sweep, by result",
                ),
                &["result"],
            )?,
            integrity_mismatches: IntGaugeVec::new(
                Opts::new(
                    "integrity_mismatches",
                    "Clips whose content did not match the recorded SHA-256 in the last integrity sweep (alert when above 0)",
                ),
                &["bucket"],
            )?,
        })
    }
}
