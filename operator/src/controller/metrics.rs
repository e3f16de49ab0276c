//! The operator's Prometheus metrics: one registry, every metric prefixed
//! `evidence_operator_`, labels bounded (bucket = `namespace/name` of an EvidenceBucket,
//! tier, action kind, error category; never a clip key).
//!
//! The storage layer registers its own request/bytes/checksum metrics into the same
//! registry (see [`crate::storage`]). The README's metrics table lists every name here.

use std::time::Instant;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Metrics of the reconcile loops and of the evidence they manage.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Reconciles started, by controller.
    pub reconciles: IntCounterVec,
    /// Reconcile failures, by controller and bounded error category.
    pub reconcile_errors: IntCounterVec,
    /// Reconcile duration in seconds, by controller.
    pub reconcile_duration: HistogramVec,
    /// Clips per tier after the last sweep, by bucket and tier.
    pub clips: IntGaugeVec,
    /// Bytes per tier after the last sweep, by bucket and tier.
    pub bytes: IntGaugeVec,
    /// Clips waiting for a person's review decision, by bucket.
    pub pending_review: IntGaugeVec,
    /// Actions taken on clips, by action kind and outcome (`ok`, `failed`).
    pub actions: IntCounterVec,
    /// Times a bucket was refused because its declared or verified region is not allowed.
    pub region_violations: IntCounterVec,
    /// 1 while this replica holds the leader lease, 0 otherwise.
    pub leader: IntGaugeVec,
    /// When the answer to each open AccessRequest is due (Unix seconds), by bucket and
    /// request name (bounded: requests are opened one by one by people; a closed one's
    /// series is removed).
    pub access_request_due: IntGaugeVec,
}

impl Metrics {
    /// Create the metrics in a fresh registry (prefix `evidence_operator`).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("evidence_operator".into()), None)?;
        let reconciles = IntCounterVec::new(
            Opts::new("reconciles_total", "Reconciles started"),
            &["controller"],
        )?;
        let reconcile_errors = IntCounterVec::new(
            Opts::new(
                "reconcile_errors_total",
                "Reconciles that failed, by error category",
            ),
            &["controller", "category"],
        )?;
        let reconcile_duration = HistogramVec::new(
            HistogramOpts::new("reconcile_duration_seconds", "Duration of a reconcile").buckets(
                vec![0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0],
            ),
            &["controller"],
        )?;
        let clips = IntGaugeVec::new(
            Opts::new("clips", "Clips per tier after the last sweep"),
            &["bucket", "tier"],
        )?;
        let bytes = IntGaugeVec::new(
            Opts::new("bytes", "Bytes per tier after the last sweep"),
            &["bucket", "tier"],
        )?;
        let pending_review = IntGaugeVec::new(
            Opts::new(
                "clips_pending_review",
                "Clips past their period awaiting a review decision",
            ),
            &["bucket"],
        )?;
        let actions = IntCounterVec::new(
            Opts::new(
                "actions_total",
                "Actions taken on clips, by kind and outcome",
            ),
            &["action", "outcome"],
        )?;
        let region_violations = IntCounterVec::new(
            Opts::new(
                "region_violations_total",
                "Buckets refused because their declared or verified region is not an allowed UK region",
            ),
            &["bucket"],
        )?;
        let leader = IntGaugeVec::new(
            Opts::new("leader", "1 while this replica holds the leader lease"),
            &["lease"],
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(reconcile_errors.clone()))?;
        registry.register(Box::new(reconcile_duration.clone()))?;
        registry.register(Box::new(clips.clone()))?;
        registry.register(Box::new(bytes.clone()))?;
        registry.register(Box::new(pending_review.clone()))?;
        registry.register(Box::new(actions.clone()))?;
        registry.register(Box::new(region_violations.clone()))?;
        let access_request_due = IntGaugeVec::new(
            Opts::new(
                "access_request_due_timestamp_seconds",
                "When the answer to an open AccessRequest is due (received + one calendar month), Unix seconds",
            ),
            &["bucket", "request"],
        )?;
        registry.register(Box::new(leader.clone()))?;
        registry.register(Box::new(access_request_due.clone()))?;
        Ok(Metrics {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            clips,
            bytes,
            pending_review,
            actions,
            region_violations,
            leader,
            access_request_due,
        })
    }

    /// The registry, for subsystems that register their own metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Count a reconcile start and time it until the returned guard drops.
    pub fn reconcile_started(&self, controller: &'static str) -> ReconcileTimer {
        self.reconciles.with_label_values(&[controller]).inc();
        ReconcileTimer {
            histogram: self.reconcile_duration.clone(),
            controller,
            start: Instant::now(),
        }
    }

    /// Render every metric in the Prometheus text format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// Observes a reconcile's duration when dropped.
pub struct ReconcileTimer {
    histogram: HistogramVec,
    controller: &'static str,
    start: Instant,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram
            .with_label_values(&[self.controller])
            .observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_with_prefix_and_time_reconciles() -> Result<(), prometheus::Error> {
        let m = Metrics::new()?;
        drop(m.reconcile_started("evidencebucket"));
        m.actions.with_label_values(&["delete", "ok"]).inc_by(3);
        let text = m.render()?;
        assert!(
            text.contains("evidence_operator_reconciles_total{controller=\"evidencebucket\"} 1")
        );
        assert!(
            text.contains("evidence_operator_actions_total{action=\"delete\",outcome=\"ok\"} 3")
        );
        assert!(text.contains(
            "evidence_operator_reconcile_duration_seconds_count{controller=\"evidencebucket\"} 1"
        ));
        Ok(())
    }
}
