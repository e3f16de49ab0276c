//! Retention rules beyond a category's period, end to end on the real servers: a case
//! that closes with a retention of its own (`LegalHold.spec.retainAfterRelease`).

use std::{collections::BTreeSet, time::Duration};

use anyhow::{Result, ensure};
use chrono::{DateTime, Datelike, Utc};
use evidence_operator::api::{LegalHold, clip::TAG_RETAIN_UNTIL};
use evidence_operator_tests::{Backend, RunningOperator, Tenant, eventually, servers};
use kube::{Api, api::DeleteParams};
use serde_json::json;

/// A hold with `retainAfterRelease: 6y`, released today, leaves its non-evidential
/// 40-day-old clips in cool with a `retain-until` six years ahead, and the next sweep
/// does not delete them (their 31 days ran out long ago).
async fn a_closed_case_keeps_its_clips_for_its_retention(backend: Backend) -> Result<()> {
    let s = servers();
    let t = Tenant::on_backend("ret-case", backend).await?;
    for key in ["case-a.mp4", "case-b.mp4"] {
        t.put_clip(key, Some("non-evidential"), 40, &[]).await?;
    }
    let both = BTreeSet::from(["case-a.mp4".to_string(), "case-b.mp4".to_string()]);
    t.apply_policy(
        "policy",
        json!({
            "default": { "retention": "31d", "onExpiry": "Delete" },
            "coolAfter": "30d",
            "minimumAge": "24h",
        }),
    )
    .await?;
    t.apply_bucket("unit", &backend.endpoint(s), "1h").await?;
    t.apply(json!({
        "apiVersion": "evidence.bwv.io/v1alpha1", "kind": "LegalHold",
        "metadata": { "name": "case" },
        "spec": {
            "bucketRef": { "name": "unit" },
            "caseReference": "01/777/26",
            "reason": "trial; six years after the verdict",
            "selector": { "keys": ["case-a.mp4", "case-b.mp4"] },
            "retainAfterRelease": "6y",
        }
    }))
    .await?;
    let flags = backend.operator_flags(s);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let op = RunningOperator::for_namespace(&t.ns, &flags).await?;
    let holds: Api<LegalHold> = Api::namespaced(t.client.clone(), &t.ns);

    eventually(Duration::from_secs(120), "both clips held", || async {
        Ok(t.keys(&t.lock).await?.is_superset(&both).then_some(()))
    })
    .await?;
    holds.delete("case", &DeleteParams::default()).await?;
    eventually(
        Duration::from_secs(120),
        "both released to cool",
        || async {
            let gone = holds.get_opt("case").await?.is_none();
            let cool = t.keys(&t.cool).await?;
            if gone && cool == both {
                return Ok(Some(()));
            }
            // Not yet: what the storage and the status say, shown if this times out.
            let status = t.bucket_status("unit").await?;
            anyhow::bail!(
                "hold gone: {gone}; cool {cool:?}; hot {:?}; legal hold {:?}; last sweep {}; conditions {}",
                t.keys(&t.hot).await?,
                t.keys(&t.lock).await?,
                status["lastSweep"],
                status["conditions"]
            )
        },
    )
    .await?;
    // Each carries a retain-until six years on (the operator's clock runs two days
    // ahead: the year is this year + 6, or + 6 and a day's worth at a year's end).
    for key in &both {
        let tags =
            t.s3.get_object_tagging()
                .bucket(&t.cool)
                .key(key)
                .send()
                .await?;
        let until = tags
            .tag_set()
            .iter()
            .find(|tag| tag.key() == TAG_RETAIN_UNTIL)
            .map(|tag| tag.value().to_string());
        let until = until
            .as_deref()
            .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
            .map(|v| v.with_timezone(&Utc));
        ensure!(
            until.is_some_and(|u| {
                let years = u.year() - Utc::now().year();
                (6..=7).contains(&years) && u > Utc::now() + chrono::TimeDelta::days(6 * 365)
            }),
            "{key}: retain-until {until:?}"
        );
    }
    // A sweep that starts after the release (forced by a spec change) keeps them.
    let released = Utc::now();
    t.apply_bucket("unit", &backend.endpoint(s), "2h").await?;
    let status = eventually(
        Duration::from_secs(60),
        "a sweep after the release",
        || async {
            let status = t.bucket_status("unit").await?;
            let started = status["lastSweep"]["startTime"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
            Ok(started.filter(|s| *s > released).map(|_| status))
        },
    )
    .await?;
    ensure!(
        status["lastSweep"]["deleted"] == 0,
        "{}",
        status["lastSweep"]
    );
    ensure!(t.keys(&t.cool).await? == both, "both still in cool");
    op.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_closed_case_keeps_its_clips_for_its_retention_after_release() -> Result<()> {
    a_closed_case_keeps_its_clips_for_its_retention(Backend::Minio).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_closed_case_keeps_its_clips_for_its_retention_on_seaweedfs() -> Result<()> {
    a_closed_case_keeps_its_clips_for_its_retention(Backend::Seaweedfs).await
}
