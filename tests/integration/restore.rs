//! The restore window, end to end on the real servers (MinIO): a policy with
//! `restoreWindow` soft-deletes, a `ClipRestore` brings a clip back (same bytes, same
//! SHA-256, same version id), the operator purges what its window let go, skips what a
//! hold selects, and refuses unversioned tiers.

use std::time::Duration;

use anyhow::{Result, ensure};
use evidence_operator::{
    api::{ClipRestore, clip::TAG_CATEGORY},
    cli::{
        InstallationArgs,
        plan::{self, Output, PlanArgs},
    },
};
use evidence_operator_tests::{
    Backend, RunningOperator, Tenant, eventually,
    operator::{CLOCK_AHEAD, settings},
    servers, tenant,
};
use kube::Api;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The policy of these tests: non-evidential clips 31 days, `evidential` six years.
fn policy(window: &str) -> Value {
    json!({
        "default": { "retention": "31d", "onExpiry": "Delete" },
        "categories": [{ "name": "evidential", "retention": "6y", "onExpiry": "Delete" }],
        "coolAfter": "Forever",
        "minimumAge": "24h",
        "restoreWindow": window,
    })
}

async fn enable_versioning(t: &Tenant) -> Result<()> {
    for bucket in [&t.hot, &t.cool] {
        tenant::enable_versioning(&t.s3, bucket).await?;
    }
    Ok(())
}

/// The current version id and the SHA-256 of the bytes of `key` in `bucket`.
async fn current(t: &Tenant, bucket: &str, key: &str) -> Result<(String, String)> {
    let out = t.s3.get_object().bucket(bucket).key(key).send().await?;
    let version = out.version_id().unwrap_or_default().to_string();
    let bytes = out.body.collect().await?.into_bytes();
    let sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((version, sha))
}

/// Whether `key` has a version (not a marker) `version` in `bucket`.
async fn has_version(t: &Tenant, bucket: &str, key: &str, version: &str) -> Result<bool> {
    let out =
        t.s3.list_object_versions()
            .bucket(bucket)
            .prefix(key)
            .send()
            .await?;
    Ok(out
        .versions()
        .iter()
        .any(|v| v.key() == Some(key) && v.version_id() == Some(version)))
}

async fn restore_status(t: &Tenant, name: &str) -> Result<Option<Value>> {
    let api: Api<ClipRestore> = Api::namespaced(t.client.clone(), &t.ns);
    let r = api.get(name).await?;
    let status = serde_json::to_value(&r.status)?;
    let complete = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Complete" && c["status"] == "True");
    Ok(complete.then_some(status))
}

fn clip_restore(name: &str, keys: &[&str], category: Option<&str>) -> Value {
    let mut spec = json!({
        "bucketRef": { "name": "unit" },
        "keys": keys,
        "reason": "categorised as non-evidential by mistake at the dock",
        "reference": "INC-0042",
    });
    if let Some(c) = category {
        spec["category"] = json!(c);
    }
    json!({
        "apiVersion": "evidence.bwv.io/v1alpha1", "kind": "ClipRestore",
        "metadata": { "name": name },
        "spec": spec,
    })
}

/// A clip deleted by mistake is soft-deleted, and a ClipRestore within the window brings
/// back the very same version (bytes, SHA-256, version id), with its category corrected;
/// the sweeps after it keep it.
async fn a_soft_deleted_clip_is_restored(backend: Backend) -> Result<()> {
    let s = servers();
    let t = Tenant::on_backend("restore", backend).await?;
    enable_versioning(&t).await?;
    t.put_clip("mistake.mp4", Some("non-evidential"), 40, &[])
        .await?;
    let (version, sha) = current(&t, &t.hot, "mistake.mp4").await?;
    ensure!(!version.is_empty(), "the hot bucket is versioned");
    t.apply_policy("policy", policy("7d")).await?;
    t.apply_bucket("unit", &backend.endpoint(s), "1h").await?;
    let flags = backend.operator_flags(s);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let op = RunningOperator::for_namespace(&t.ns, &flags).await?;
    op.check(async {
        eventually(Duration::from_secs(90), "the clip soft-deleted", || async {
            let status = t.bucket_status("unit").await?;
            let gone = !t.keys(&t.hot).await?.contains("mistake.mp4");
            Ok((gone && status["lastSweep"]["restorable"] == 1).then_some(()))
        })
        .await?;
        ensure!(
            has_version(&t, &t.hot, "mistake.mp4", &version).await?,
            "its version is still there, beneath a delete marker"
        );
        // `plan` lists it, with its version and when it would be purged.
        let args = PlanArgs {
            bucket: format!("{}/unit", t.ns),
            namespace: None,
            now: Some(chrono::Utc::now()),
            output: Output::Json,
            all: false,
            installation: InstallationArgs {
                endpoint_regions: match backend {
                    Backend::Minio => Vec::new(),
                    Backend::Seaweedfs => vec![
                        s.seaweedfs_declaration()
                            .parse()
                            .map_err(anyhow::Error::msg)?,
                    ],
                },
                ..InstallationArgs::default()
            },
            audit_prefix: "evidence-audit/".into(),
        };
        let report = plan::plan(t.client.clone(), &args).await?;
        ensure!(
            report.restorable.len() == 1
                && report.restorable[0].key == "mistake.mp4"
                && report.restorable[0].version_id.as_deref() == Some(version.as_str())
                && report.restorable[0].next.starts_with("purged at "),
            "{:?}",
            report.restorable
        );
        t.apply(clip_restore("undo", &["mistake.mp4"], Some("evidential")))
            .await?;
        let status = eventually(Duration::from_secs(90), "the restore complete", || async {
            restore_status(&t, "undo").await
        })
        .await?;
        ensure!(
            status["conditions"][0]["reason"] == "Restored"
                && status["restored"][0]["versionId"] == version.as_str()
                && status["restoredClips"] == 1,
            "{status}"
        );
        let (now_version, now_sha) = current(&t, &t.hot, "mistake.mp4").await?;
        ensure!(now_version == version, "same version id");
        ensure!(now_sha == sha, "same bytes");
        let tags =
            t.s3.get_object_tagging()
                .bucket(&t.hot)
                .key("mistake.mp4")
                .send()
                .await?;
        ensure!(
            tags.tag_set()
                .iter()
                .any(|tag| tag.key() == TAG_CATEGORY && tag.value() == "evidential"),
            "the category is corrected: {:?}",
            tags.tag_set()
        );
        // A sweep after the restore keeps it (an evidential clip, kept six years).
        let restored_at = chrono::Utc::now();
        t.apply_bucket("unit", &backend.endpoint(s), "2h").await?;
        eventually(
            Duration::from_secs(60),
            "a sweep after the restore",
            || async {
                let status = t.bucket_status("unit").await?;
                let started = status["lastSweep"]["startTime"]
                    .as_str()
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
                Ok(started.filter(|s| *s > restored_at).map(|_| ()))
            },
        )
        .await?;
        ensure!(
            t.keys(&t.hot).await?.contains("mistake.mp4"),
            "still there after the next sweep"
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_soft_deleted_clip_is_restored_with_the_same_version_and_bytes() -> Result<()> {
    a_soft_deleted_clip_is_restored(Backend::Minio).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_soft_deleted_clip_is_restored_with_the_same_version_and_bytes_on_seaweedfs() -> Result<()>
{
    a_soft_deleted_clip_is_restored(Backend::Seaweedfs).await
}

/// Past its window a soft-deleted clip is purged (and a restore then finds nothing),
/// but one that a LegalHold selected meanwhile is kept; a bucket without versioning
/// under a policy with a window is refused, and nothing is deleted from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_purge_skips_a_held_clip_and_a_purged_clip_cannot_be_restored() -> Result<()> {
    let s = servers();
    let t = Tenant::on_backend("purge", Backend::Minio).await?;
    for key in ["gone.mp4", "kept.mp4"] {
        t.put_clip(key, Some("non-evidential"), 40, &[]).await?;
    }
    t.apply_policy("policy", policy("7d")).await?;
    t.apply_bucket("unit", &Backend::Minio.endpoint(s), "1h")
        .await?;
    let flags = Backend::Minio.operator_flags(s);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();

    // Unversioned tiers: refused, nothing deleted.
    let op = RunningOperator::for_namespace(&t.ns, &flags).await?;
    op.check(async {
        let (status, _, message) =
            eventually(Duration::from_secs(60), "VersioningRequired", || async {
                Ok(t.condition("unit", "Ready")
                    .await?
                    .filter(|(_, reason, _)| reason == "VersioningRequired"))
            })
            .await?;
        ensure!(status == "False" && message.contains(&t.hot), "{message}");
        ensure!(t.keys(&t.hot).await?.len() == 2, "nothing deleted");
        Ok(())
    })
    .await?;

    // Versioned: both soft-deleted (the operator's clock 2 days ahead, inside the window).
    enable_versioning(&t).await?;
    let op = RunningOperator::for_namespace(&t.ns, &flags).await?;
    op.check(async {
        eventually(Duration::from_secs(90), "both soft-deleted", || async {
            let status = t.bucket_status("unit").await?;
            Ok(
                (t.keys(&t.hot).await?.is_empty() && status["lastSweep"]["restorable"] == 2)
                    .then_some(()),
            )
        })
        .await
    })
    .await?;

    // A case now needs one of them.
    t.apply_hold(
        "case",
        "01/888/26",
        "needed for the trial",
        json!({ "keys": ["kept.mp4"] }),
    )
    .await?;

    // Ten days later (by the operator's clock): the window has passed.
    let client = s.kube_client().await?;
    let mut later = settings(&t.ns, &flags)?;
    later.controllers.clock_offset = CLOCK_AHEAD + chrono::TimeDelta::days(8);
    let op = RunningOperator::start(client, later)?;
    op.check(async {
        // Storage says it: gone.mp4 has neither a version nor a marker left; kept.mp4's
        // version is still there (the counts of a later sweep are then stable).
        let listed = || async {
            let versions = t.s3.list_object_versions().bucket(&t.hot).send().await?;
            let keys = |it: Vec<Option<&str>>| -> Vec<String> {
                it.into_iter()
                    .flatten()
                    .filter(|k| !k.starts_with(evidence_operator::storage::claim::CLAIMS_PREFIX))
                    .map(str::to_string)
                    .collect()
            };
            anyhow::Ok((
                keys(versions.versions().iter().map(|v| v.key()).collect()),
                keys(versions.delete_markers().iter().map(|m| m.key()).collect()),
            ))
        };
        eventually(Duration::from_secs(90), "the purge", || async {
            let (versions, markers) = listed().await?;
            Ok((versions == ["kept.mp4"] && markers == ["kept.mp4"]).then_some(()))
        })
        .await?;
        let status = eventually(Duration::from_secs(60), "a sweep's counts", || async {
            let status = t.bucket_status("unit").await?;
            Ok((status["lastSweep"]["restorable"] == 1).then_some(status))
        })
        .await?;
        ensure!(
            status["lastSweep"]["restorable"] == 1,
            "the held one is still restorable: {}",
            status["lastSweep"]
        );
        t.apply(clip_restore("too-late", &["gone.mp4"], None))
            .await?;
        let status = eventually(Duration::from_secs(90), "the restore answered", || async {
            restore_status(&t, "too-late").await
        })
        .await?;
        ensure!(
            status["conditions"][0]["reason"] == "NothingRestored"
                && status["notRestored"][0]["reason"] == "NotFound",
            "{status}"
        );
        Ok(())
    })
    .await
}
