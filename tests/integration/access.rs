//! Subject access requests, end to end on the real servers (MinIO): an open
//! AccessRequest preserves exactly the clips it selects (all of its criteria), in every
//! tier, through their deletion date, reports what it found and when its answer is
//! due; once closed, the clips fall back under their retention.

use std::{collections::BTreeSet, time::Duration};

use anyhow::{Result, ensure};
use chrono::{TimeDelta, Utc};
use evidence_operator::api::{AccessRequest, clip::TAG_OFFICER};
use evidence_operator_tests::{Backend, RunningOperator, Tenant, eventually, servers};
use kube::Api;
use serde_json::{Value, json};

fn request(closed: bool) -> Value {
    let now = Utc::now();
    json!({
        "apiVersion": "evidence.bwv.io/v1alpha1", "kind": "AccessRequest",
        "metadata": { "name": "sar" },
        "spec": {
            "bucketRef": { "name": "unit" },
            "kind": "SubjectAccess",
            "reference": "SAR-2026-0042",
            "receivedAt": "2026-01-31T09:00:00Z",
            "selector": {
                "officer": "PC 4521",
                "recordedAfter": (now - TimeDelta::days(45)).to_rfc3339(),
                "recordedBefore": (now - TimeDelta::days(35)).to_rfc3339(),
            },
            "closed": closed,
        }
    })
}

/// A request by officer and recording window, over the three tiers, preserves exactly
/// its clips (not another officer's, not the same officer's outside the window) past
/// their deletion date; closed, it lets them go.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_open_request_preserves_exactly_its_clips_in_every_tier_until_closed() -> Result<()> {
    let s = servers();
    let t = Tenant::on_backend("access", Backend::Minio).await?;
    let pc = [(TAG_OFFICER, "PC 4521")];
    let other = [(TAG_OFFICER, "PC 9999")];
    // All non-evidential and 40 days old (31 days: due for deletion), but one.
    t.put_clip("in-hot.mp4", Some("non-evidential"), 40, &pc)
        .await?;
    t.put_clip_in(
        &t.cool.clone(),
        "in-cool.mp4",
        Some("non-evidential"),
        40,
        &pc,
    )
    .await?;
    t.put_clip("in-held.mp4", Some("non-evidential"), 40, &pc)
        .await?;
    t.put_clip("other-officer.mp4", Some("non-evidential"), 40, &other)
        .await?;
    t.put_clip("outside-window.mp4", Some("non-evidential"), 100, &pc)
        .await?;
    t.apply_policy(
        "policy",
        json!({
            "default": { "retention": "31d", "onExpiry": "Delete" },
            "coolAfter": "Forever",
            "minimumAge": "24h",
        }),
    )
    .await?;
    t.apply_bucket("unit", &Backend::Minio.endpoint(s), "1h")
        .await?;
    t.apply_hold(
        "case",
        "01/999/26",
        "a case needs one of them",
        json!({ "keys": ["in-held.mp4"] }),
    )
    .await?;
    t.apply(request(false)).await?;
    let op = RunningOperator::for_namespace(&t.ns, &[]).await?;
    let requests: Api<AccessRequest> = Api::namespaced(t.client.clone(), &t.ns);
    let metrics = op.metrics.clone();
    let bucket = format!("{}/unit", t.ns);
    op.check(async {
        let status = eventually(
            Duration::from_secs(90),
            "the request's clips found",
            || async {
                let r = requests.get("sar").await?;
                let gone = !t.keys(&t.hot).await?.contains("other-officer.mp4");
                let held = t.keys(&t.lock).await?.contains("in-held.mp4");
                let status = serde_json::to_value(&r.status)?;
                Ok((gone && held && status["clipsFound"] == 3).then_some(status))
            },
        )
        .await?;
        ensure!(
            status["dueBy"] == "2026-03-01T09:00:00Z",
            "one calendar month after 31 January is 1 March: {status}"
        );
        let due = chrono::DateTime::parse_from_rfc3339("2026-03-01T09:00:00Z")?.timestamp();
        ensure!(
            metrics
                .access_request_due
                .with_label_values(&[bucket.as_str(), "sar"])
                .get()
                == due,
            "the due-date metric"
        );
        ensure!(
            status["conditions"][0]["type"] == "Preserving"
                && status["conditions"][0]["reason"] == "ClipsPreserved",
            "{status}"
        );
        let hot = t.keys(&t.hot).await?;
        ensure!(
            hot == BTreeSet::from(["in-hot.mp4".to_string()]),
            "only the preserved clip is left in hot: {hot:?}"
        );
        ensure!(
            t.keys(&t.cool).await?.contains("in-cool.mp4"),
            "the preserved clip in cool is kept"
        );

        // Closed: the clips fall back under their retention (31 days: deleted).
        t.apply(request(true)).await?;
        eventually(
            Duration::from_secs(90),
            "the clips deleted after closing",
            || async {
                let hot = t.keys(&t.hot).await?;
                let cool = t.keys(&t.cool).await?;
                Ok((!hot.contains("in-hot.mp4") && !cool.contains("in-cool.mp4")).then_some(()))
            },
        )
        .await?;
        // The status follows the sweep's actions (written when the sweep ends).
        eventually(
            Duration::from_secs(60),
            "the request reported closed",
            || async {
                let r = requests.get("sar").await?;
                let status = serde_json::to_value(&r.status)?;
                Ok((status["conditions"][0]["status"] == "False"
                    && status["conditions"][0]["reason"] == "Closed")
                    .then_some(()))
            },
        )
        .await?;
        ensure!(
            t.keys(&t.lock).await?.contains("in-held.mp4"),
            "the held clip stays held"
        );
        Ok(())
    })
    .await
}

/// A ClipRestore or an AccessRequest naming a bucket that does not exist says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restore_or_request_for_a_missing_bucket_says_so() -> Result<()> {
    let t = Tenant::new("access-nobucket").await?;
    let mut r = request(false);
    r["spec"]["bucketRef"]["name"] = json!("nope");
    t.apply(r).await?;
    t.apply(json!({
        "apiVersion": "evidence.bwv.io/v1alpha1", "kind": "ClipRestore",
        "metadata": { "name": "undo" },
        "spec": {
            "bucketRef": { "name": "nope" },
            "keys": ["a.mp4"],
            "reason": "deleted by mistake",
            "reference": "INC-1",
        }
    }))
    .await?;
    let op = RunningOperator::for_namespace(&t.ns, &[]).await?;
    let requests: Api<AccessRequest> = Api::namespaced(t.client.clone(), &t.ns);
    let restores: Api<evidence_operator::api::ClipRestore> =
        Api::namespaced(t.client.clone(), &t.ns);
    op.check(async {
        eventually(
            Duration::from_secs(60),
            "both say BucketNotFound",
            || async {
                let a = serde_json::to_value(requests.get("sar").await?.status)?;
                let b = serde_json::to_value(restores.get("undo").await?.status)?;
                let not_found = |s: &Value, type_: &str| {
                    s["conditions"][0]["type"] == type_
                        && s["conditions"][0]["status"] == "False"
                        && s["conditions"][0]["reason"] == "BucketNotFound"
                };
                Ok((not_found(&a, "Preserving") && not_found(&b, "Complete")).then_some(()))
            },
        )
        .await
    })
    .await
}
