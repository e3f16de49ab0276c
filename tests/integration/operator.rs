//! The operator end to end: the real kube-apiserver and MinIO, the operator running
//! in-process (the same `runtime::run_with` the binary calls), assertions on S3 state
//! and status.
//!
//! The operator's clock is shifted two days forward (a setting of the library, never a
//! flag) so that clips uploaded a moment ago are past the 24-hour safety floor, which
//! counts from upload time as well as recording time.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use evidence_operator::api::{
    LegalHold,
    clip::{TAG_CASE, TAG_CATEGORY, TAG_RECORDED_AT},
};
use evidence_operator_tests::{Backend, RunningOperator, Tenant, eventually, servers};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, api::DeleteParams};
use serde_json::json;

fn test_policy() -> serde_json::Value {
    json!({
        "default": { "retention": "31d", "onExpiry": "Delete" },
        "categories": [
            { "name": "use-of-force", "retention": "7y", "onExpiry": "Delete" },
            { "name": "mopi-group-3", "retention": "6y", "onExpiry": "Review" },
        ],
        "coolAfter": "30d",
        "minimumAge": "24h",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lifecycle_expire_cool_review_hold_and_release() -> Result<()> {
    lifecycle(Backend::Minio).await
}

/// The lifecycle on SeaweedFS: AWS semantics (no listing extension, no checksum from
/// CopyObject, AccessDenied for a held version), and no region reported, so the
/// operator runs with the endpoint's region declared (`--endpoint-region`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lifecycle_expire_cool_review_hold_and_release_on_seaweedfs() -> Result<()> {
    lifecycle(Backend::Seaweedfs).await
}

/// Expire, cool, flag for review, hold by tag and by key, release, on `backend`.
async fn lifecycle(backend: Backend) -> Result<()> {
    let s = servers();
    let t = Tenant::on_backend("op-life", backend).await?;
    t.put_clip("old-non-evidential.mp4", Some("non-evidential"), 40, &[])
        .await?;
    t.put_clip("young-non-evidential.mp4", Some("non-evidential"), 5, &[])
        .await?;
    t.put_clip("uncategorised-old.mp4", None, 45, &[]).await?;
    // Misspelt: the default rule (31 days) applies, and the status says so.
    t.put_clip("misspelt-young.mp4", Some("use-of-forse"), 5, &[])
        .await?;
    t.put_clip(
        "force-old.mp4",
        Some("use-of-force"),
        60,
        &[(TAG_CASE, "CASE-9")],
    )
    .await?;
    t.put_clip(
        "force-young.mp4",
        Some("use-of-force"),
        3,
        &[(TAG_CASE, "CASE-9")],
    )
    .await?;
    t.put_clip("group3-expired.mp4", Some("mopi-group-3"), 7 * 365, &[])
        .await?;
    t.put_raw(
        "malformed.mp4",
        &[
            (TAG_RECORDED_AT.to_string(), "last tuesday".to_string()),
            (TAG_CATEGORY.to_string(), "non-evidential".to_string()),
        ],
    )
    .await?;
    t.apply_policy("policy", test_policy()).await?;
    t.apply_bucket("unit", &backend.endpoint(s), "1h").await?;
    let flags = backend.operator_flags(s);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let op = RunningOperator::for_namespace(&t.ns, &flags).await?;

    // First sweep: expire, cool, flag.
    eventually(Duration::from_secs(60), "the first sweep", || async {
        let ready = t.condition("unit", "Ready").await?;
        Ok(ready.filter(|r| r.0 == "True").map(|_| ()))
    })
    .await?;
    let hot = t.keys(&t.hot).await?;
    let cool = t.keys(&t.cool).await?;
    assert!(
        !hot.contains("old-non-evidential.mp4") && !cool.contains("old-non-evidential.mp4"),
        "expired clip deleted"
    );
    assert!(
        !hot.contains("uncategorised-old.mp4"),
        "the default rule deletes uncategorised clips after 31d"
    );
    assert!(
        hot.contains("young-non-evidential.mp4"),
        "young clip kept: {hot:?}"
    );
    assert!(
        cool.contains("force-old.mp4") && !hot.contains("force-old.mp4"),
        "kept clip moved cool: {hot:?} {cool:?}"
    );
    assert!(
        hot.contains("force-young.mp4"),
        "young evidential clip stays hot"
    );
    // Kept for review, and like any kept clip older than coolAfter, moved cool (and
    // flagged there).
    assert!(
        cool.contains("group3-expired.mp4") && !hot.contains("group3-expired.mp4"),
        "review clip kept, in cool: {hot:?} {cool:?}"
    );
    assert!(hot.contains("malformed.mp4"), "malformed clip kept");
    let status = t.bucket_status("unit").await?;
    assert_eq!(
        status["pendingReview"].as_u64(),
        Some(1),
        "review flagged: {status}"
    );
    assert_eq!(
        status["malformed"].as_u64(),
        Some(1),
        "malformed flagged: {status}"
    );
    assert_eq!(status["lastSweep"]["failed"].as_u64(), Some(0), "{status}");
    assert_eq!(status["observedGeneration"].as_i64(), Some(1));
    assert_eq!(
        status["tiers"]["hot"]["clips"].as_u64(),
        Some(4),
        "{status}"
    );
    assert!(
        hot.contains("misspelt-young.mp4"),
        "kept under the default rule"
    );
    let (known, reason, message) = t
        .condition("unit", "CategoriesKnown")
        .await?
        .context("CategoriesKnown")?;
    assert_eq!(
        (known.as_str(), reason.as_str()),
        ("False", "UnknownCategories")
    );
    // The test policy leaves non-evidential to its default rule too: both are named.
    assert!(
        message.starts_with("3 clip(s)")
            && message.contains("\"use-of-forse\" (1)")
            && message.contains("\"non-evidential\" (2)"),
        "{message}"
    );
    assert_eq!(
        status["tiers"]["cool"]["clips"].as_u64(),
        Some(2),
        "{status}"
    );
    let actions = |kind: &str| op.metrics.actions.with_label_values(&[kind, "ok"]).get();
    assert_eq!(actions("deleted"), 2, "two expired clips deleted");
    assert_eq!(
        actions("moved"),
        2,
        "two kept clips moved cool (one of them kept for review)"
    );
    let (rv, _, _) = t
        .condition("unit", "RegionVerified")
        .await?
        .context("RegionVerified")?;
    assert_eq!(rv, "True");

    // Two holds: one by case tag (both CASE-9 clips), one by key (one of them).
    t.apply_hold(
        "by-case",
        "CASE/by-case",
        "integration test",
        json!({ "matchTags": { TAG_CASE: "CASE-9" } }),
    )
    .await?;
    t.apply_hold(
        "by-key",
        "CASE/by-key",
        "integration test",
        json!({ "keys": ["force-old.mp4"] }),
    )
    .await?;
    eventually(
        Duration::from_secs(60),
        "both CASE-9 clips held and their sources deleted",
        || async {
            let lock = t.keys(&t.lock).await?;
            // (a move deletes its sources in one batch after the chunk's copies are
            // verified and held: the hold can be seen a moment before that)
            if lock.contains("force-old.mp4")
                && lock.contains("force-young.mp4")
                && t.held("force-old.mp4").await?
                && t.held("force-young.mp4").await?
                && !t.keys(&t.hot).await?.contains("force-young.mp4")
                && !t.keys(&t.cool).await?.contains("force-old.mp4")
            {
                Ok(Some(()))
            } else {
                Ok(None)
            }
        },
    )
    .await?;
    assert!(
        !t.keys(&t.hot).await?.contains("force-young.mp4"),
        "moved, not copied"
    );
    assert!(
        !t.keys(&t.cool).await?.contains("force-old.mp4"),
        "moved, not copied"
    );
    let holds: Api<LegalHold> = Api::namespaced(t.client.clone(), &t.ns);
    eventually(Duration::from_secs(30), "heldClips reported", || async {
        let h = holds.get("by-case").await?;
        Ok(h.status.and_then(|s| s.held_clips).filter(|n| *n == 2))
    })
    .await?;

    // Releasing the case hold: force-young returns to cool; force-old stays (by-key).
    holds.delete("by-case", &DeleteParams::default()).await?;
    eventually(Duration::from_secs(60), "by-case released", || async {
        let gone = holds.get_opt("by-case").await?.is_none();
        let cool = t.keys(&t.cool).await?;
        Ok((gone && cool.contains("force-young.mp4")).then_some(()))
    })
    .await?;
    assert!(
        t.held("force-old.mp4").await?,
        "still held by the other hold"
    );
    assert!(t.keys(&t.lock).await?.contains("force-old.mp4"));
    holds.delete("by-key", &DeleteParams::default()).await?;
    eventually(Duration::from_secs(60), "by-key released", || async {
        let gone = holds.get_opt("by-key").await?.is_none();
        let cool = t.keys(&t.cool).await?;
        Ok((gone && cool.contains("force-old.mp4")).then_some(()))
    })
    .await?;
    op.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bucket_outside_the_uk_is_refused_and_nothing_is_written() -> Result<()> {
    let s = servers();
    // Declared eu-west-2, but the store actually answers us-east-1.
    let t = Tenant::on("op-nonuk", s, true).await?;
    t.put_clip("old-non-evidential.mp4", Some("non-evidential"), 40, &[])
        .await?;
    t.put_clip("force-old.mp4", Some("use-of-force"), 60, &[])
        .await?;
    t.apply_policy("policy", test_policy()).await?;
    t.apply_bucket("unit", &s.non_uk_endpoint, "1h").await?;
    let op = RunningOperator::for_namespace(&t.ns, &[]).await?;
    let (status, reason, message) =
        eventually(Duration::from_secs(60), "RegionVerified=False", || async {
            Ok(t.condition("unit", "RegionVerified")
                .await?
                .filter(|c| c.0 == "False"))
        })
        .await?;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "RegionNotAllowed")
    );
    assert!(
        message.contains("us-east-1") && message.contains(&t.hot),
        "says which bucket and region: {message}"
    );
    let (stalled, _, _) = t.condition("unit", "Stalled").await?.context("Stalled")?;
    assert_eq!(stalled, "True");
    // Give a wrong operator time to act, then check nothing moved or went.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(t.keys(&t.hot).await?.len(), 2, "nothing deleted or moved");
    assert!(t.keys(&t.cool).await?.is_empty(), "nothing written");
    assert!(t.keys(&t.lock).await?.is_empty(), "nothing written");
    let text = op.metrics.render()?;
    assert!(
        text.contains("evidence_operator_region_violations_total"),
        "metric exported"
    );
    op.stop().await?;
    Ok(())
}

/// Every object (every version, claims and audit records included) in `bucket`.
async fn every_object(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<BTreeSet<String>> {
    let out = s3.list_object_versions().bucket(bucket).send().await?;
    let mut found: BTreeSet<String> = out
        .versions()
        .iter()
        .filter_map(|v| v.key().map(str::to_string))
        .collect();
    found.extend(
        out.delete_markers()
            .iter()
            .filter_map(|m| m.key().map(|k| format!("{k} (delete marker)"))),
    );
    let listed = s3.list_objects_v2().bucket(bucket).send().await?;
    found.extend(
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string)),
    );
    Ok(found)
}

/// SeaweedFS reports no region for any bucket: without the installation's declaration
/// of its endpoint's region, its buckets are refused, the condition names the setting
/// that would declare it, and nothing is written (no clip moved or deleted, no claim, no
/// audit record).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_that_reports_no_region_is_refused_unless_the_installation_declares_it()
-> Result<()> {
    let s = servers();
    let t = Tenant::on_backend("op-noregion", Backend::Seaweedfs).await?;
    t.put_clip("old-non-evidential.mp4", Some("non-evidential"), 40, &[])
        .await?;
    t.put_clip("force-old.mp4", Some("use-of-force"), 60, &[])
        .await?;
    t.apply_policy("policy", test_policy()).await?;
    t.apply_bucket("unit", &s.seaweedfs_endpoint, "1h").await?;
    let before: Vec<BTreeSet<String>> = vec![
        every_object(&t.s3, &t.hot).await?,
        every_object(&t.s3, &t.cool).await?,
        every_object(&t.s3, &t.lock).await?,
    ];
    assert_eq!(before[0].len(), 2, "{before:?}");
    // Another endpoint's declaration does not count.
    let op = RunningOperator::for_namespace(&t.ns, &["--endpoint-region", "127.0.0.1:1=eu-west-2"])
        .await?;
    let (status, reason, message) =
        eventually(Duration::from_secs(60), "RegionVerified=False", || async {
            Ok(t.condition("unit", "RegionVerified")
                .await?
                .filter(|c| c.0 == "False"))
        })
        .await?;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "RegionNotAllowed")
    );
    let declaration = s.seaweedfs_declaration();
    assert!(
        message.contains(&t.hot)
            && message.contains(&format!("at endpoint {}", s.seaweedfs_endpoint))
            && message.contains("reports no region")
            && message.contains(&format!("--endpoint-region {declaration}"))
            && message.contains("endpointRegions"),
        "says which bucket, that it reports no region, and which setting declares it: {message}"
    );
    let (stalled, _, _) = t.condition("unit", "Stalled").await?.context("Stalled")?;
    assert_eq!(stalled, "True");
    // Give a wrong operator time to act, then check that nothing at all was written.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = vec![
        every_object(&t.s3, &t.hot).await?,
        every_object(&t.s3, &t.cool).await?,
        every_object(&t.s3, &t.lock).await?,
    ];
    assert_eq!(before, after, "nothing written, moved or deleted");
    op.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_policy_change_replans_the_buckets_that_use_it() -> Result<()> {
    let t = Tenant::new("op-replan").await?;
    t.put_clip("force-old.mp4", Some("use-of-force"), 60, &[])
        .await?;
    let mut policy = test_policy();
    policy["coolAfter"] = json!("Forever");
    t.apply_policy("policy", policy.clone()).await?;
    t.apply_bucket("unit", &servers().s3_endpoint, "1h").await?;
    let op = RunningOperator::for_namespace(&t.ns, &[]).await?;
    eventually(Duration::from_secs(60), "first sweep", || async {
        Ok(t.condition("unit", "Ready")
            .await?
            .filter(|c| c.0 == "True"))
    })
    .await?;
    assert!(
        t.keys(&t.hot).await?.contains("force-old.mp4"),
        "coolAfter Forever keeps it hot"
    );
    // The sweep interval is an hour: only the policy watch can trigger the next sweep.
    policy["coolAfter"] = json!("30d");
    t.apply_policy("policy", policy).await?;
    eventually(
        Duration::from_secs(60),
        "re-planned after the policy change",
        || async {
            Ok(t.keys(&t.cool)
                .await?
                .contains("force-old.mp4")
                .then_some(()))
        },
    )
    .await?;
    op.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarted_mid_sweep_the_operator_converges_and_loses_nothing() -> Result<()> {
    let t = Tenant::new("op-restart").await?;
    let n = 200;
    let keys: Vec<String> = (0..n).map(|i| format!("clips/force-{i:04}.mp4")).collect();
    futures::future::try_join_all(
        keys.iter()
            .map(|k| t.put_clip(k, Some("use-of-force"), 60, &[])),
    )
    .await?;
    t.apply_policy("policy", test_policy()).await?;
    t.apply_bucket("unit", &servers().s3_endpoint, "1h").await?;
    let op = RunningOperator::for_namespace(&t.ns, &["--move-concurrency", "2"]).await?;
    // Stop it as soon as some (not all) clips have moved.
    eventually(Duration::from_secs(60), "the first moves", || async {
        Ok((!t.keys(&t.cool).await?.is_empty()).then_some(()))
    })
    .await?;
    op.stop().await?;
    let hot = t.keys(&t.hot).await?;
    let cool = t.keys(&t.cool).await?;
    let all: BTreeSet<String> = hot.union(&cool).cloned().collect();
    assert_eq!(
        all.len(),
        n,
        "every clip in at least one tier after the stop"
    );
    // A new operator picks up and finishes.
    let op = RunningOperator::for_namespace(&t.ns, &[]).await?;
    eventually(Duration::from_secs(120), "all clips cool", || async {
        let hot = t.keys(&t.hot).await?;
        let cool = t.keys(&t.cool).await?;
        let union: BTreeSet<String> = hot.union(&cool).cloned().collect();
        assert_eq!(union.len(), n, "no clip lost at any time");
        Ok((hot.is_empty() && cool.len() == n).then_some(()))
    })
    .await?;
    op.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_replicas_only_the_leader_acts_and_the_standby_takes_over() -> Result<()> {
    let t = Tenant::new("op-ha").await?;
    t.put_clip("force-old.mp4", Some("use-of-force"), 60, &[])
        .await?;
    t.apply_policy("policy", test_policy()).await?;
    t.apply_bucket("unit", &servers().s3_endpoint, "1m").await?;
    let lease = [
        "--leader-elect=true",
        "--lease-name",
        "evidence-operator-test",
        "--lease-duration",
        "4s",
        "--renew-deadline",
        "3s",
        "--retry-period",
        "500ms",
    ];
    let mut a_args = lease.to_vec();
    a_args.extend(["--identity", "replica-a"]);
    let mut b_args = lease.to_vec();
    b_args.extend(["--identity", "replica-b"]);
    let a = RunningOperator::for_namespace(&t.ns, &a_args).await?;
    let b = RunningOperator::for_namespace(&t.ns, &b_args).await?;
    let leases: Api<Lease> = Api::namespaced(t.client.clone(), &t.ns);
    let leader = eventually(Duration::from_secs(30), "a leader", || async {
        Ok(leases
            .get_opt("evidence-operator-test")
            .await?
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity))
    })
    .await?;
    eventually(
        Duration::from_secs(30),
        "the leader's first sweep",
        || async {
            Ok(t.keys(&t.cool)
                .await?
                .contains("force-old.mp4")
                .then_some(()))
        },
    )
    .await?;
    // A while of leading, renewing and reconciling: only the leader reconciles.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (leading, standby) = if leader == "replica-a" {
        (a, b)
    } else {
        (b, a)
    };
    assert!(leading.reconciles() > 0, "the leader reconciles");
    assert_eq!(standby.reconciles(), 0, "the standby never acts");
    let standby_identity = if leader == "replica-a" {
        "replica-b"
    } else {
        "replica-a"
    };

    // The leader shuts down (releasing the lease); the standby takes over quickly.
    let stopped = Instant::now();
    leading.stop().await?;
    eventually(Duration::from_secs(20), "the standby leads", || async {
        let holder = leases
            .get_opt("evidence-operator-test")
            .await?
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity);
        Ok((holder.as_deref() == Some(standby_identity)).then_some(()))
    })
    .await?;
    let takeover = stopped.elapsed();
    eventually(
        Duration::from_secs(20),
        "the new leader reconciles",
        || async { Ok((standby.reconciles() > 0).then_some(())) },
    )
    .await?;
    eprintln!("takeover after graceful shutdown: {takeover:?}");
    assert!(
        takeover < Duration::from_secs(10),
        "fast takeover: {takeover:?}"
    );
    standby.stop().await?;
    Ok(())
}

/// Measures (and prints) the reconcile latency from a LegalHold's creation to all of its
/// 1,000 clips being held; asserts only that every clip ends up held and none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hold_on_a_thousand_clips_holds_every_one() -> Result<()> {
    let t = Tenant::new("op-hold1k").await?;
    let n = 1000;
    let keys: Vec<String> = (0..n).map(|i| format!("case/clip-{i:04}.mp4")).collect();
    futures::stream::iter(keys.iter())
        .map(|k| t.put_clip(k, Some("use-of-force"), 3, &[(TAG_CASE, "CASE-1K")]))
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    t.apply_policy("policy", test_policy()).await?;
    t.apply_bucket("unit", &servers().s3_endpoint, "1h").await?;
    let op = RunningOperator::for_namespace(&t.ns, &["--move-concurrency", "32"]).await?;
    eventually(Duration::from_secs(120), "the first sweep", || async {
        Ok(t.condition("unit", "Ready")
            .await?
            .filter(|c| c.0 == "True"))
    })
    .await?;
    let created = Instant::now();
    t.apply_hold(
        "case-1k",
        "CASE/case-1k",
        "integration test",
        json!({ "matchTags": { TAG_CASE: "CASE-1K" } }),
    )
    .await?;
    let holds: Api<LegalHold> = Api::namespaced(t.client.clone(), &t.ns);
    eventually(Duration::from_secs(300), "1,000 clips held", || async {
        let held = holds
            .get("case-1k")
            .await?
            .status
            .and_then(|s| s.held_clips);
        Ok((held == Some(n as u64)).then_some(()))
    })
    .await?;
    let latency = created.elapsed();
    // The legal-hold bucket also holds the audit chain (under its reserved prefix).
    let lock: Vec<String> = t
        .keys(&t.lock)
        .await?
        .into_iter()
        .filter(|k| !k.starts_with("evidence-audit/"))
        .collect();
    assert_eq!(lock.len(), n, "every clip in the legal-hold tier");
    assert!(t.keys(&t.hot).await?.is_empty(), "moved, not copied");
    for key in keys.iter().step_by(97) {
        assert!(t.held(key).await?, "{key} under S3 legal hold");
    }
    eprintln!("MEASURE hold latency, 1000 clips, move concurrency 32: {latency:?}");
    op.stop().await?;
    Ok(())
}

/// A credentials Secret whose key the store refuses gets a clear refusal (not just a
/// failed reconcile nobody sees), and once the key is corrected in the Secret the
/// operator uses the new one without a restart. (The store used to be rebuilt only when
/// the configuration's Debug form changed, and that form hides the secret key, so a
/// rotated key was never picked up.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotated_secret_key_is_used_without_a_restart() -> Result<()> {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Patch, PatchParams};

    let t = Tenant::new("op-rotate").await?;
    let secrets: Api<Secret> = Api::namespaced(t.client.clone(), &t.ns);
    let set_key = |key: String| {
        let secrets = secrets.clone();
        async move {
            secrets
                .patch(
                    "s3",
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "stringData": { "AWS_SECRET_ACCESS_KEY": key } })),
                )
                .await
        }
    };
    set_key("not-the-key-any-more".into()).await?;
    t.put_clip("old-non-evidential.mp4", Some("non-evidential"), 40, &[])
        .await?;
    t.apply_policy("policy", test_policy()).await?;
    t.apply_bucket("unit", &servers().s3_endpoint, "1h").await?;
    let op = RunningOperator::for_namespace(&t.ns, &[]).await?;

    op.check(async {
        let (_, _, message) = eventually(Duration::from_secs(60), "AccessDenied", || async {
            Ok(t.condition("unit", "Ready")
                .await?
                .filter(|(_, reason, _)| reason == "AccessDenied"))
        })
        .await?;
        anyhow::ensure!(message.contains("credentials Secret"), "{message}");
        anyhow::ensure!(
            t.keys(&t.hot).await?.contains("old-non-evidential.mp4"),
            "nothing is done with refused credentials"
        );

        // Rotate: the right key. Touch the bucket so the test need not wait for the
        // refusal's one-minute requeue.
        set_key(servers().s3_secret_key.clone()).await?;
        Api::<evidence_operator::api::EvidenceBucket>::namespaced(t.client.clone(), &t.ns)
            .patch(
                "unit",
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "annotations": { "test/rotated": "1" } } })),
            )
            .await?;
        eventually(
            Duration::from_secs(60),
            "the sweep with the new key",
            || async {
                let ready = t.condition("unit", "Ready").await?;
                let gone = !t.keys(&t.hot).await?.contains("old-non-evidential.mp4");
                Ok((gone && ready.is_some_and(|r| r.0 == "True")).then_some(()))
            },
        )
        .await
    })
    .await
}

/// A LegalHold's status tells the truth: `Ready` only when every clip it selects is
/// held, and a selector that matches nothing (here, a key written with the tier prefix)
/// says so with `NoClipsSelected` and a warning event, instead of `Ready=True "Held"`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hold_that_selects_nothing_is_not_ready_and_says_why() -> Result<()> {
    let t = Tenant::new("op-holdstatus").await?;
    t.put_clip("evidence.mp4", Some("use-of-force"), 3, &[])
        .await?;
    t.apply_policy("policy", test_policy()).await?;
    t.apply_bucket("unit", &servers().s3_endpoint, "1h").await?;
    t.apply_hold(
        "mistyped",
        "CASE-1",
        "keys copied with the tier prefix",
        json!({ "keys": ["clips/evidence.mp4"] }),
    )
    .await?;
    t.apply_hold(
        "right",
        "CASE-2",
        "the clip itself",
        json!({ "keys": ["evidence.mp4"] }),
    )
    .await?;
    let op = RunningOperator::for_namespace(&t.ns, &[]).await?;
    let holds: Api<LegalHold> = Api::namespaced(t.client.clone(), &t.ns);
    let ready = |name: &'static str| {
        let holds = holds.clone();
        async move {
            let h = holds.get(name).await?;
            let status = h.status.unwrap_or_default();
            let ready = status
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready")
                .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()));
            anyhow::Ok((ready, status.selected_clips, status.held_clips))
        }
    };

    op.check(async {
        let (cond, selected, held) = eventually(Duration::from_secs(60), "hold status", || async {
            let r = ready("mistyped").await?;
            Ok(r.0.is_some().then_some(r))
        })
        .await?;
        let (status, reason, message) = cond.context("Ready")?;
        anyhow::ensure!(
            (status.as_str(), reason.as_str()) == ("False", "NoClipsSelected"),
            "{status} {reason}: {message}"
        );
        anyhow::ensure!(message.contains("relative to the tier prefix"), "{message}");
        anyhow::ensure!(
            (selected, held) == (Some(0), Some(0)),
            "{selected:?} {held:?}"
        );
        t.event("the NoClipsSelected event", |e| {
            e.reason.as_deref() == Some("NoClipsSelected")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("mistyped")
        })
        .await?;

        // Held once its finalizer is on and a sweep has moved the clip: until then it
        // says HoldIncomplete, so wait for Ready to settle at True.
        let (cond, selected, held) =
            eventually(Duration::from_secs(60), "the right hold Ready", || async {
                let r = ready("right").await?;
                let settled = r.0.as_ref().is_some_and(|(status, _, _)| status == "True");
                Ok(settled.then_some(r))
            })
            .await?;
        let (status, reason, _) = cond.context("Ready")?;
        anyhow::ensure!(
            (status.as_str(), reason.as_str(), selected, held)
                == ("True", "Held", Some(1), Some(1)),
            "{status} {reason} {selected:?} {held:?}"
        );
        Ok(())
    })
    .await
}

/// A LegalHold applied while a sweep runs protects its clips in every chunk the sweep
/// acts on after the apply returned: the sweep is held at its first move (a `FaultHook`
/// pause point) while the hold is applied, and an expired clip in the cool tier (a later
/// chunk) that the hold selects is not deleted, and is then held. (Holds used to be read
/// once per sweep, so that clip was deleted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hold_applied_during_a_sweep_protects_the_clips_acted_on_after_it() -> Result<()> {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use evidence_operator::storage::{FaultHook, StepContext};
    use futures::FutureExt;
    use kube::api::PostParams;

    let t = Tenant::new("op-midhold").await?;
    t.put_clip("first.mp4", Some("use-of-force"), 60, &[])
        .await?;
    t.put_clip_in(
        &t.cool.clone(),
        "later.mp4",
        Some("non-evidential"),
        40,
        &[],
    )
    .await?;
    t.apply_policy("policy", test_policy()).await?;
    t.apply_bucket("unit", &servers().s3_endpoint, "1h").await?;

    let holds: Api<LegalHold> = Api::namespaced(t.client.clone(), &t.ns);
    let applied = Arc::new(AtomicBool::new(false));
    let hook: FaultHook = {
        let (holds, applied) = (holds.clone(), applied.clone());
        Arc::new(move |_: StepContext| {
            let (holds, applied) = (holds.clone(), applied.clone());
            async move {
                if !applied.swap(true, Ordering::SeqCst) {
                    let hold: LegalHold = serde_json::from_value(json!({
                        "apiVersion": "evidence.bwv.io/v1alpha1", "kind": "LegalHold",
                        "metadata": { "name": "late" },
                        "spec": {
                            "bucketRef": { "name": "unit" },
                            "caseReference": "CASE-LATE",
                            "reason": "applied while the sweep runs",
                            "selector": { "keys": ["later.mp4"] },
                        }
                    }))
                    .unwrap_or_else(|e| panic!("hold: {e}"));
                    // The apply has returned before the move goes on.
                    holds
                        .create(&PostParams::default(), &hold)
                        .await
                        .unwrap_or_else(|e| panic!("applying the hold: {e}"));
                }
                true
            }
            .boxed()
        })
    };
    let mut settings = evidence_operator_tests::operator::settings(&t.ns, &[])?;
    settings.controllers.store_options.fault_hook = Some(hook);
    let op = RunningOperator::start(t.client.clone(), settings)?;

    op.check(async {
        eventually(Duration::from_secs(60), "the first chunk moved", || async {
            Ok(t.keys(&t.cool).await?.contains("first.mp4").then_some(()))
        })
        .await?;
        // The copy is visible in cool a moment before the hook after its step runs.
        eventually(Duration::from_secs(30), "the hook ran", || async {
            Ok(applied.load(Ordering::SeqCst).then_some(()))
        })
        .await?;
        // Never deleted: it is in cool or, once the hold carries its finalizer, held.
        eventually(Duration::from_secs(60), "later.mp4 held", || async {
            // The legal-hold bucket first: a move writes its copy before the delete.
            let lock = t.keys(&t.lock).await?;
            let cool = t.keys(&t.cool).await?;
            anyhow::ensure!(
                cool.contains("later.mp4") || lock.contains("later.mp4"),
                "later.mp4 was deleted although a hold selecting it was applied first"
            );
            Ok(lock.contains("later.mp4").then_some(()))
        })
        .await
    })
    .await
}

/// A clip re-categorised after the sweep listed it, before its delete, is not deleted:
/// the sweep is held just before its point of no return (the store's recheck pause
/// point) while an officer re-tags an expired non-evidential clip as evidential; the
/// sweep reads its tags again there, plans it again and keeps it, and deletes the
/// clip beside it that nobody re-tagged. (Tags used to be trusted as listed, and both
/// were deleted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_clip_retagged_during_a_sweep_is_deleted_only_if_its_new_tags_say_so() -> Result<()> {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use evidence_operator::{api::clip::Tag, storage::RecheckHook};
    use evidence_operator_tests::tenant::retag;
    use futures::FutureExt;

    let t = Tenant::new("op-retag").await?;
    for key in ["later.mp4", "expired.mp4"] {
        t.put_clip_in(&t.cool.clone(), key, Some("non-evidential"), 40, &[])
            .await?;
    }
    t.apply_policy("policy", test_policy()).await?;
    t.apply_bucket("unit", &servers().s3_endpoint, "1h").await?;

    let retagged = Arc::new(AtomicBool::new(false));
    let hook: RecheckHook = {
        let (s3, cool, retagged) = (t.s3.clone(), t.cool.clone(), retagged.clone());
        Arc::new(move |keys: Vec<String>| {
            let (s3, cool, retagged) = (s3.clone(), cool.clone(), retagged.clone());
            async move {
                if keys.iter().any(|k| k == "later.mp4") && !retagged.swap(true, Ordering::SeqCst) {
                    let recorded = (chrono::Utc::now() - chrono::Duration::days(40))
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    let tags = [
                        Tag::new(TAG_RECORDED_AT, recorded),
                        Tag::new(TAG_CATEGORY, "use-of-force"),
                    ];
                    // The re-tag has returned before the sweep goes on.
                    retag(&s3, &cool, "later.mp4", &tags)
                        .await
                        .unwrap_or_else(|e| panic!("re-tagging: {e}"));
                }
            }
            .boxed()
        })
    };
    let mut settings = evidence_operator_tests::operator::settings(&t.ns, &[])?;
    settings.controllers.store_options.recheck_hook = Some(hook);
    let op = RunningOperator::start(t.client.clone(), settings)?;

    op.check(async {
        let last = eventually(Duration::from_secs(60), "the first sweep", || async {
            let status = t.bucket_status("unit").await?;
            let last = status["lastSweep"].clone();
            Ok((last["deleted"].as_u64().unwrap_or(0) >= 1).then_some(last))
        })
        .await?;
        anyhow::ensure!(
            retagged.load(Ordering::SeqCst),
            "the pause point was reached"
        );
        let cool = t.keys(&t.cool).await?;
        anyhow::ensure!(
            cool.contains("later.mp4"),
            "later.mp4 was deleted on its stale tags: {cool:?}"
        );
        anyhow::ensure!(!cool.contains("expired.mp4"), "expired.mp4 is deleted");
        anyhow::ensure!(
            last["deleted"] == 1 && last["retagged"] == 1,
            "one deleted, one re-planned: {last}"
        );
        Ok(())
    })
    .await
}

/// One leader, also when the API server stalls: two kube-apiservers over one etcd (an
/// HA control plane); the leader (replica A) talks to the second, the standby (B) to
/// the first. From inside A's first move the second apiserver is stopped with SIGSTOP,
/// while A's moves to S3 go on. A steps down by its own clock (its renewal hangs),
/// stops starting moves, and aborts what is in flight before its Lease may expire; B,
/// whose apiserver answers, takes over after expiry and finishes the sweep. The gap
/// between A's last storage action and B's first is positive (printed). Every clip ends
/// in exactly one tier. (A used to keep moving clips until its sweep ended, long after B
/// had taken over: the gap was negative.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_cut_off_from_the_api_server_stops_acting_before_the_standby_starts() -> Result<()>
{
    use std::sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    };

    use evidence_operator::storage::{FaultHook, MoveStep, StepContext};
    use futures::FutureExt;

    const CLIPS: usize = 200;
    let t = Tenant::new("op-stall").await?;
    for i in 0..CLIPS {
        t.put_clip(&format!("c{i:03}.mp4"), Some("use-of-force"), 60, &[])
            .await?;
    }
    t.apply_policy("policy", test_policy()).await?;
    let lease = [
        "--leader-elect=true",
        "--lease-name",
        "evidence-operator-stall",
        "--lease-duration",
        "4s",
        "--renew-deadline",
        "3s",
        "--retry-period",
        "500ms",
        "--move-concurrency",
        "2",
    ];

    // A: through the second apiserver; its first move stops that apiserver; its storage
    // is slow (50 ms a step) so that its sweep would outlast the Lease. Every step is
    // an action, timed.
    let second = Arc::new(servers().second_apiserver().await?);
    let a_actions: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let stopped = Arc::new(AtomicBool::new(false));
    let a_hook: FaultHook = {
        let (second, actions, stopped) = (second.clone(), a_actions.clone(), stopped.clone());
        Arc::new(move |ctx: StepContext| {
            let (second, actions, stopped) = (second.clone(), actions.clone(), stopped.clone());
            async move {
                if ctx.step == MoveStep::Copied && !stopped.swap(true, Ordering::SeqCst) {
                    second
                        .stop()
                        .unwrap_or_else(|e| panic!("SIGSTOP the second apiserver: {e}"));
                }
                actions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Instant::now());
                tokio::time::sleep(Duration::from_millis(50)).await;
                true
            }
            .boxed()
        })
    };
    let mut a_args = lease.to_vec();
    a_args.extend(["--identity", "replica-a"]);
    let mut a_settings = evidence_operator_tests::operator::settings(&t.ns, &a_args)?;
    a_settings.controllers.store_options.fault_hook = Some(a_hook);
    let a = RunningOperator::start(second.client()?, a_settings)?;
    let leases: Api<Lease> = Api::namespaced(t.client.clone(), &t.ns);
    eventually(Duration::from_secs(30), "A leads", || async {
        let holder = leases
            .get_opt("evidence-operator-stall")
            .await?
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity);
        Ok((holder.as_deref() == Some("replica-a")).then_some(()))
    })
    .await?;

    // B: the standby, reaching the apiserver directly.
    let b_actions: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let b_hook: FaultHook = {
        let actions = b_actions.clone();
        Arc::new(move |_: StepContext| {
            let actions = actions.clone();
            async move {
                actions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Instant::now());
                true
            }
            .boxed()
        })
    };
    let mut b_args = lease.to_vec();
    b_args.extend(["--identity", "replica-b"]);
    let mut b_settings = evidence_operator_tests::operator::settings(&t.ns, &b_args)?;
    b_settings.controllers.store_options.fault_hook = Some(b_hook);
    let b = RunningOperator::start(t.client.clone(), b_settings)?;

    t.apply_bucket("unit", &servers().s3_endpoint, "1h").await?;
    let result = async {
        eventually(Duration::from_secs(90), "every clip in cool", || async {
            let (hot, cool) = (t.keys(&t.hot).await?, t.keys(&t.cool).await?);
            anyhow::ensure!(
                hot.len() + cool.len() >= CLIPS,
                "a clip is missing: {} hot, {} cool",
                hot.len(),
                cool.len()
            );
            Ok((hot.is_empty() && cool.len() == CLIPS).then_some(()))
        })
        .await?;
        let a_last = a_actions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .max()
            .copied()
            .context("A acted")?;
        let b_first = b_actions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .min()
            .copied()
            .context("B acted")?;
        let (a_n, b_n) = (
            a_actions.lock().map_or(0, |v| v.len()),
            b_actions.lock().map_or(0, |v| v.len()),
        );
        if b_first > a_last {
            eprintln!(
                "MEASURE leader handover under a stalled API server: {:?} between the old leader's last action and the new leader's first ({a_n} and {b_n} move steps)",
                b_first - a_last
            );
            Ok(())
        } else {
            anyhow::bail!(
                "two leaders acted at once: the old leader's last action came {:?} after the new leader's first ({a_n} and {b_n} move steps)",
                a_last - b_first
            )
        }
    }
    .await;
    // A ends with "lost leadership" (its process would restart as a standby).
    second.resume()?;
    let a_end = tokio::time::timeout(Duration::from_secs(30), a.stop()).await;
    let b_end = b.stop().await;
    result?;
    anyhow::ensure!(
        matches!(&a_end, Ok(Err(e)) if e.to_string().contains("lost leadership")),
        "A stops as a replica that lost leadership: {a_end:?}"
    );
    b_end
}

/// `LastModified` of every object in `bucket`, as the listing gives it (to the ms).
async fn listed_times(
    t: &Tenant,
    bucket: &str,
) -> Result<std::collections::BTreeMap<String, chrono::DateTime<chrono::Utc>>> {
    let out = t.s3.list_objects_v2().bucket(bucket).send().await?;
    out.contents()
        .iter()
        .map(|o| {
            let key = o.key().context("key")?.to_string();
            let at = o.last_modified().context("LastModified")?;
            let at =
                chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos()).context("a time")?;
            Ok((key, at))
        })
        .collect()
}

/// The safety floor counts from the real upload, whatever is done to the clip. Two
/// expired clips (recorded 40 days ago, `non-evidential`), uploaded a moment ago, one
/// with an `uploaded-at` tag claiming 40 days ago, go into legal hold and are released
/// to cool by the operator (on the real clock, so both are inside their 24 h floor).
/// Then: the moves recorded the hot tier's `LastModified` on each copy; a sweep after
/// the release deletes neither (the old tag was believed outside the hot tier, and
/// `tagged.mp4` was deleted); and the plan at any time before 24 h after the real
/// upload deletes neither, while from then on (before 24 h after the copies were
/// written) it deletes both: a move does not restart the floor either.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_old_uploaded_at_tag_does_not_shorten_the_safety_floor() -> Result<()> {
    use chrono::{SecondsFormat, TimeDelta, Utc};
    use evidence_operator::{
        api::clip::{META_UPLOADED_AT, TAG_UPLOADED_AT, parse_uploaded_at},
        cli::{
            InstallationArgs,
            plan::{self, Output, PlanArgs},
        },
        engine::Action,
    };

    let t = Tenant::new("op-floor").await?;
    let long_ago = (Utc::now() - TimeDelta::days(40)).to_rfc3339_opts(SecondsFormat::Secs, true);
    t.put_clip(
        "tagged.mp4",
        Some("non-evidential"),
        40,
        &[(TAG_UPLOADED_AT, &long_ago)],
    )
    .await?;
    t.put_clip("plain.mp4", Some("non-evidential"), 40, &[])
        .await?;
    let uploaded = listed_times(&t, &t.hot).await?;
    anyhow::ensure!(uploaded.len() == 2, "{uploaded:?}");
    t.apply_policy("policy", test_policy()).await?;
    t.apply_bucket("unit", &servers().s3_endpoint, "1h").await?;
    t.apply_hold(
        "case",
        "CASE-FLOOR",
        "moves both clips",
        json!({ "keys": ["tagged.mp4", "plain.mp4"] }),
    )
    .await?;
    // The real clock: both clips are inside their floor.
    let mut settings = evidence_operator_tests::operator::settings(&t.ns, &[])?;
    settings.controllers.clock_offset = TimeDelta::zero();
    let op = RunningOperator::start(t.client.clone(), settings)?;
    let holds: Api<LegalHold> = Api::namespaced(t.client.clone(), &t.ns);
    let both = BTreeSet::from(["plain.mp4".to_string(), "tagged.mp4".to_string()]);

    let result = async {
        eventually(Duration::from_secs(60), "both clips held", || async {
            // (The legal-hold bucket also holds the audit chain.)
            Ok(t.keys(&t.lock).await?.is_superset(&both).then_some(()))
        })
        .await?;
        holds.delete("case", &DeleteParams::default()).await?;
        eventually(Duration::from_secs(60), "both released to cool", || async {
            let gone = holds.get_opt("case").await?.is_none();
            // The legal-hold bucket first: a move writes its copy before the delete.
            let lock = t.keys(&t.lock).await?;
            let cool = t.keys(&t.cool).await?;
            for key in &both {
                anyhow::ensure!(
                    cool.contains(key) || lock.contains(key),
                    "{key}, inside its safety floor, was deleted"
                );
            }
            Ok((gone && cool == both).then_some(()))
        })
        .await?;
        // A sweep that starts after the release (forced by a spec change).
        let released = Utc::now();
        t.apply_bucket("unit", &servers().s3_endpoint, "2h").await?;
        eventually(
            Duration::from_secs(60),
            "a sweep after the release",
            || async {
                let status = t.bucket_status("unit").await?;
                let started = status["lastSweep"]["startTime"]
                    .as_str()
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
                Ok(started.filter(|s| *s > released).map(|_| ()))
            },
        )
        .await?;
        anyhow::ensure!(
            t.keys(&t.cool).await? == both,
            "a clip inside its safety floor was deleted: {:?}",
            t.keys(&t.cool).await?
        );
        anyhow::Ok(())
    }
    .await;
    let stopped = op.stop().await;
    result?;
    stopped?;

    // Each copy records the real upload (the hot tier's LastModified), carried through
    // the second move; the copies themselves were written later.
    let copied = listed_times(&t, &t.cool).await?;
    for (key, at) in &uploaded {
        let head = t.s3.head_object().bucket(&t.cool).key(key).send().await?;
        let record = head
            .metadata()
            .and_then(|m| m.get(META_UPLOADED_AT))
            .and_then(|v| parse_uploaded_at(v));
        anyhow::ensure!(
            record == Some(*at),
            "{key}: recorded {record:?}, uploaded {at}"
        );
        anyhow::ensure!(
            copied[key] > *at,
            "{key}: copied {} after {at}",
            copied[key]
        );
    }

    // The plan (the sweep's engine over the same listing) at chosen times.
    let plan_at = |at: chrono::DateTime<Utc>| {
        let args = PlanArgs {
            bucket: format!("{}/unit", t.ns),
            namespace: None,
            now: Some(at),
            output: Output::Json,
            all: true,
            installation: InstallationArgs::default(),
            audit_prefix: "evidence-audit/".into(),
        };
        let client = t.client.clone();
        async move {
            let report = plan::plan(client, &args).await?;
            anyhow::Ok(
                report
                    .items
                    .iter()
                    .map(|c| (c.key.clone(), c.action))
                    .collect::<std::collections::BTreeMap<_, _>>(),
            )
        }
    };
    let first_upload = *uploaded.values().min().context("uploads")?;
    let last_upload = *uploaded.values().max().context("uploads")?;
    let first_copy = *copied.values().min().context("copies")?;
    let day = TimeDelta::hours(24);
    let kept = plan_at(first_upload + day - TimeDelta::seconds(1)).await?;
    anyhow::ensure!(
        kept.values().all(|a| *a == Action::Keep) && kept.len() == 2,
        "inside the floor by the real upload: {kept:?}"
    );
    // Between 24 h after the last upload and 24 h after the first copy.
    let between = last_upload + day + (first_copy - last_upload) / 2;
    let due = plan_at(between).await?;
    anyhow::ensure!(
        due.values().all(|a| *a == Action::Delete) && due.len() == 2,
        "24 h after the real upload, before 24 h after the copy: {due:?}"
    );
    Ok(())
}

/// A retention lengthened while a sweep runs protects the clips of every chunk the
/// sweep acts on after the change returned: the sweep is held at its first move (a
/// `FaultHook` pause point) while the RetentionPolicy's default retention goes from
/// 31 to 90 days, and an expired (40-day) clip in the cool tier, a later chunk, is kept.
/// (The policy used to be read once per sweep, and the clip was deleted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retention_lengthened_during_a_sweep_protects_the_clips_acted_on_after_it() -> Result<()>
{
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use evidence_operator::{
        api::RetentionPolicy,
        storage::{FaultHook, StepContext},
    };
    use futures::FutureExt;
    use kube::api::{Patch, PatchParams};

    let t = Tenant::new("op-midpolicy").await?;
    t.put_clip("first.mp4", Some("use-of-force"), 60, &[])
        .await?;
    t.put_clip_in(
        &t.cool.clone(),
        "later.mp4",
        Some("non-evidential"),
        40,
        &[],
    )
    .await?;
    t.apply_policy("policy", test_policy()).await?;
    t.apply_bucket("unit", &servers().s3_endpoint, "1h").await?;

    let policies: Api<RetentionPolicy> = Api::namespaced(t.client.clone(), &t.ns);
    let changed = Arc::new(AtomicBool::new(false));
    let changed_at: Arc<std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>> = Arc::default();
    let hook: FaultHook = {
        let (policies, changed, at) = (policies.clone(), changed.clone(), changed_at.clone());
        Arc::new(move |_: StepContext| {
            let (policies, changed, at) = (policies.clone(), changed.clone(), at.clone());
            async move {
                if !changed.swap(true, Ordering::SeqCst) {
                    let patch = json!({ "spec": { "default": { "retention": "90d" } } });
                    // The change has returned before the move goes on.
                    policies
                        .patch("policy", &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .unwrap_or_else(|e| panic!("lengthening the retention: {e}"));
                    // Second resolution, like the status times: the sweep that ends in the
                    // same second counts.
                    let now = chrono::Utc::now();
                    *at.lock().unwrap_or_else(|e| e.into_inner()) =
                        chrono::DateTime::from_timestamp(now.timestamp(), 0);
                }
                true
            }
            .boxed()
        })
    };
    let mut settings = evidence_operator_tests::operator::settings(&t.ns, &[])?;
    settings.controllers.store_options.fault_hook = Some(hook);
    let op = RunningOperator::start(t.client.clone(), settings)?;

    op.check(async {
        // A sweep that ended after the change: the first one (which acted on the hot
        // chunk before the change and on the cool chunk after it), or a later one.
        let last = eventually(
            Duration::from_secs(60),
            "a sweep after the change",
            || async {
                let Some(at) = *changed_at.lock().unwrap_or_else(|e| e.into_inner()) else {
                    return Ok(None);
                };
                let status = t.bucket_status("unit").await?;
                let last = status["lastSweep"].clone();
                let ended = last["endTime"]
                    .as_str()
                    .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
                    .is_some_and(|e| e >= at);
                Ok(ended.then_some(last))
            },
        )
        .await?;
        anyhow::ensure!(changed.load(Ordering::SeqCst), "the hook ran");
        let cool = t.keys(&t.cool).await?;
        anyhow::ensure!(
            cool.contains("later.mp4") && cool.contains("first.mp4"),
            "later.mp4 was deleted although its retention was lengthened first: {cool:?}"
        );
        anyhow::ensure!(last["deleted"] == 0, "nothing deleted: {last}");
        Ok(())
    })
    .await
}

/// A local clock that disagrees with the servers' deletes nothing: the operator's clock
/// check (shifted 5 minutes ahead of the machine's, which the real MinIO and
/// kube-apiserver share, by a test-only setting) refuses the sweep with `ClockSkew`, a
/// message naming both clocks and the difference, and a warning event, and the expired
/// clip stays; the same operator without the shift deletes it. (Before the check, the
/// shifted operator deleted the clip at once.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_local_clock_that_disagrees_with_the_servers_deletes_nothing() -> Result<()> {
    use chrono::TimeDelta;

    let t = Tenant::new("op-skew").await?;
    t.put_clip("old-non-evidential.mp4", Some("non-evidential"), 40, &[])
        .await?;
    t.apply_policy("policy", test_policy()).await?;
    t.apply_bucket("unit", &servers().s3_endpoint, "1h").await?;
    let mut settings = evidence_operator_tests::operator::settings(&t.ns, &[])?;
    settings.controllers.skew_check_offset = TimeDelta::minutes(5);
    let op = RunningOperator::start(t.client.clone(), settings)?;

    let result = async {
        let (_, _, message) =
            eventually(Duration::from_secs(60), "Ready=False ClockSkew", || async {
                Ok(t.condition("unit", "Ready")
                    .await?
                    .filter(|(status, reason, _)| status == "False" && reason == "ClockSkew"))
            })
            .await?;
        for clock in ["the S3 store", "the API server"] {
            anyhow::ensure!(
                message.contains(&format!("ahead of {clock}")),
                "names {clock}: {message}"
            );
        }
        anyhow::ensure!(
            message.contains("at least 4m 5") && message.contains("more than the 1m 0s allowed"),
            "says by how much: {message}"
        );
        t.event("the ClockSkew event", |e| {
            e.reason.as_deref() == Some("ClockSkew") && e.type_.as_deref() == Some("Warning")
        })
        .await?;
        // Give a wrong operator time to act: one more reconcile (a clock-skew refusal
        // is looked at again after 30 s, sooner when something changes).
        let seen = op.reconciles();
        eventually(Duration::from_secs(45), "another reconcile", || async {
            Ok((op.reconciles() > seen).then_some(()))
        })
        .await?;
        anyhow::ensure!(
            t.keys(&t.hot).await?.contains("old-non-evidential.mp4"),
            "nothing is deleted while the clocks disagree"
        );
        Ok(())
    }
    .await;
    let stopped = op.stop().await;
    result?;
    stopped?;

    // The clocks agree: the same clip is deleted.
    let op = RunningOperator::for_namespace(&t.ns, &[]).await?;
    let result = eventually(
        Duration::from_secs(60),
        "deleted once the clocks agree",
        || async {
            let ready = t.condition("unit", "Ready").await?;
            let gone = !t.keys(&t.hot).await?.contains("old-non-evidential.mp4");
            Ok((gone && ready.is_some_and(|r| r.0 == "True")).then_some(()))
        },
    )
    .await;
    let stopped = op.stop().await;
    result?;
    stopped
}
