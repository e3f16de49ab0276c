//! Tenant isolation against the real servers: a namespace acts only on storage it
//! owns, with credentials it was given (README "Multi-tenancy").

use std::time::Duration;

use anyhow::Result;
use evidence_operator_tests::{RunningOperator, Tenant, eventually, servers};
use k8s_openapi::api::events::v1::Event;
use kube::{Api, api::ListParams};
use serde_json::json;

fn destructive_policy() -> serde_json::Value {
    json!({
        "default": { "retention": "1d", "onExpiry": "Delete" },
        "minimumAge": "24h",
    })
}

/// A bucket that names no credentials Secret, in a namespace this installation does
/// not grant the operator's own identity (the default: none), is refused before any
/// storage request: `Ready=False`/`Stalled=True`, reason `CredentialsRequired`, a
/// `Warning` event, and its expired clip is not deleted. (It used to be swept with
/// whatever identity the operator's pod had.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bucket_without_a_secret_does_nothing_where_the_operators_identity_is_not_granted()
-> Result<()> {
    let t = Tenant::new("ten-noid").await?;
    t.put_clip("expired.mp4", Some("non-evidential"), 40, &[])
        .await?;
    t.apply_policy("policy", destructive_policy()).await?;
    let mut doc = t.bucket_doc("unit", &servers().s3_endpoint, "1m");
    if let Some(spec) = doc["spec"].as_object_mut() {
        spec.remove("credentialsSecretRef");
    }
    t.apply(doc).await?;
    let op = RunningOperator::for_namespace(&t.ns, &[]).await?;
    let result = async {
        let (status, reason, message) =
            eventually(Duration::from_secs(60), "the Ready condition", || async {
                t.condition("unit", "Ready").await
            })
            .await?;
        anyhow::ensure!(
            (status.as_str(), reason.as_str()) == ("False", "CredentialsRequired"),
            "{status} {reason}: {message}"
        );
        anyhow::ensure!(message.contains(&t.ns), "{message}");
        let stalled = t.condition("unit", "Stalled").await?;
        anyhow::ensure!(
            stalled.as_ref().map(|c| c.0.as_str()) == Some("True"),
            "{stalled:?}"
        );
        let events = Api::<Event>::namespaced(t.client.clone(), &t.ns);
        eventually(
            Duration::from_secs(30),
            "the CredentialsRequired event",
            || async {
                let found = events
                    .list(&ListParams::default())
                    .await?
                    .items
                    .iter()
                    .any(|e| e.reason.as_deref() == Some("CredentialsRequired"));
                Ok(found.then_some(()))
            },
        )
        .await?;
        anyhow::ensure!(
            t.keys(&t.hot).await?.contains("expired.mp4"),
            "the clip was deleted"
        );
        let status = t.bucket_status("unit").await?;
        anyhow::ensure!(status["lastSweep"].is_null(), "no sweep ran: {status}");
        Ok(())
    }
    .await;
    let stopped = op.stop().await;
    result?;
    stopped
}
