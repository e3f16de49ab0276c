//! A RetentionPolicy's own status, written by the operator whether or not a bucket uses
//! it: `Ready` `True` (reason `Valid`) or `False` (reason `Invalid`, every problem in the
//! message), with the `observedGeneration` it describes, so `kubectl wait
//! --for=condition=Ready retentionpolicy/...` works.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use evidence_operator::api::RetentionPolicy;
use evidence_operator_tests::{RunningOperator, Tenant, eventually};
use kube::Api;
use serde_json::json;

/// `Ready`'s (status, reason, message) once the status describes the policy's current
/// generation.
async fn ready_for_generation(
    policies: &Api<RetentionPolicy>,
    name: &str,
) -> Result<(String, String, String, i64)> {
    eventually(
        Duration::from_secs(30),
        &format!("RetentionPolicy {name}'s Ready for its generation"),
        || async {
            let p = policies.get(name).await?;
            let generation = p.metadata.generation.context("generation")?;
            let Some(status) = p.status else {
                return Ok(None);
            };
            let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
            Ok(ready
                .filter(|c| {
                    status.observed_generation == Some(generation)
                        && c.observed_generation == Some(generation)
                })
                .map(|c| {
                    (
                        c.status.clone(),
                        c.reason.clone(),
                        c.message.clone(),
                        generation,
                    )
                }))
        },
    )
    .await
}

/// A valid policy is `Ready`; one the CRD admits but whose retention is under its safety
/// floor is not, and says why; each spec change is described for its new generation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_says_whether_it_is_valid_for_its_generation() -> Result<()> {
    let t = Tenant::new("policy-status").await?;
    let valid = json!({
        "default": { "retention": "31d", "onExpiry": "Delete" },
        "minimumAge": "24h",
    });
    t.apply_policy("valid", valid).await?;
    // admitted (no CRD rule compares durations), but retention 1h under the 24h floor
    let short = json!({
        "default": { "retention": "1h", "onExpiry": "Delete" },
        "minimumAge": "24h",
    });
    t.apply_policy("short", short).await?;
    let op = RunningOperator::for_namespace(&t.ns, &[]).await?;
    let policies: Api<RetentionPolicy> = Api::namespaced(t.client.clone(), &t.ns);
    op.check(async {
        let (status, reason, _, generation) = ready_for_generation(&policies, "valid").await?;
        ensure!(
            (status.as_str(), reason.as_str()) == ("True", "Valid"),
            "{status} {reason}"
        );
        let (status, reason, message, _) = ready_for_generation(&policies, "short").await?;
        ensure!(
            (status.as_str(), reason.as_str()) == ("False", "Invalid"),
            "{status} {reason}"
        );
        ensure!(
            message.contains("spec.default.retention")
                && message.contains("shorter than the safety floor"),
            "{message}"
        );

        // a spec change: a new generation, described once reconciled
        t.apply_policy(
            "valid",
            json!({
                "default": { "retention": "31d", "onExpiry": "Delete" },
                "minimumAge": "24h",
                "coolAfter": "7d",
            }),
        )
        .await?;
        let (status, _, _, next) = ready_for_generation(&policies, "valid").await?;
        ensure!(
            next > generation && status == "True",
            "generation {generation} -> {next}: {status}"
        );
        // corrected: Ready
        t.apply_policy(
            "short",
            json!({
                "default": { "retention": "31d", "onExpiry": "Delete" },
                "minimumAge": "24h",
            }),
        )
        .await?;
        let (status, reason, _, _) = ready_for_generation(&policies, "short").await?;
        ensure!(
            (status.as_str(), reason.as_str()) == ("True", "Valid"),
            "corrected: {status} {reason}"
        );
        Ok(())
    })
    .await
}
