//! The real servers answer: one round trip to each, through the same harness every
//! other integration test uses.

use aws_sdk_s3::types::{
    BucketVersioningStatus, ObjectLockEnabled, ObjectLockLegalHold, ObjectLockLegalHoldStatus,
};
use evidence_operator_tests::{servers, unique_name};
use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, api::PostParams};

#[tokio::test]
async fn kube_apiserver_creates_and_reads_back_a_namespace() -> anyhow::Result<()> {
    let client = servers().kube_client().await?;
    let version = client.apiserver_version().await?;
    assert_eq!(
        version.major, "1",
        "apiserver reports a real version: {version:?}"
    );

    let api: Api<Namespace> = Api::all(client);
    let name = unique_name("ns");
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": { "name": name, "labels": { "evidence.bwv.io/test": "servers" } }
    }))?;
    api.create(&PostParams::default(), &ns).await?;
    let read = api.get(&name).await?;
    assert_eq!(
        read.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("evidence.bwv.io/test"))
            .map(String::as_str),
        Some("servers")
    );
    assert!(read.metadata.uid.is_some(), "the apiserver assigned a uid");
    api.delete(&name, &Default::default()).await?;
    Ok(())
}

#[tokio::test]
async fn minio_refuses_to_delete_a_version_under_legal_hold() -> anyhow::Result<()> {
    let s3 = servers().s3_client();
    let bucket = unique_name("lock");
    s3.create_bucket()
        .bucket(&bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await?;
    let versioning = s3.get_bucket_versioning().bucket(&bucket).send().await?;
    assert_eq!(versioning.status(), Some(&BucketVersioningStatus::Enabled));
    let lock = s3
        .get_object_lock_configuration()
        .bucket(&bucket)
        .send()
        .await?;
    assert_eq!(
        lock.object_lock_configuration()
            .and_then(|c| c.object_lock_enabled()),
        Some(&ObjectLockEnabled::Enabled)
    );

    let put = s3
        .put_object()
        .bucket(&bucket)
        .key("clip-0001.mp4")
        .body(b"not really video".to_vec().into())
        .send()
        .await?;
    let version = put.version_id().map(str::to_string);
    assert!(version.is_some(), "a versioned bucket returns a version id");
    s3.put_object_legal_hold()
        .bucket(&bucket)
        .key("clip-0001.mp4")
        .set_version_id(version.clone())
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(ObjectLockLegalHoldStatus::On)
                .build(),
        )
        .send()
        .await?;

    let refused = s3
        .delete_object()
        .bucket(&bucket)
        .key("clip-0001.mp4")
        .set_version_id(version.clone())
        .send()
        .await;
    let Err(err) = refused else {
        anyhow::bail!("deleting a held version must be refused");
    };
    let text = format!("{err:?}");
    assert!(
        text.contains("WORM") || text.contains("AccessDenied"),
        "refused for the lock, not something else: {text}"
    );

    // Released, the version can go.
    s3.put_object_legal_hold()
        .bucket(&bucket)
        .key("clip-0001.mp4")
        .set_version_id(version.clone())
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(ObjectLockLegalHoldStatus::Off)
                .build(),
        )
        .send()
        .await?;
    s3.delete_object()
        .bucket(&bucket)
        .key("clip-0001.mp4")
        .set_version_id(version)
        .send()
        .await?;
    Ok(())
}

#[tokio::test]
async fn the_second_minio_reports_a_non_uk_region() -> anyhow::Result<()> {
    let s = servers();
    let s3 = s.non_uk_s3_client();
    let bucket = unique_name("us");
    s3.create_bucket().bucket(&bucket).send().await?;
    let location = s3.get_bucket_location().bucket(&bucket).send().await?;
    let found = location
        .location_constraint()
        .map(|c| c.as_str().to_string())
        .unwrap_or_default();
    // S3 reports us-east-1 as an empty constraint.
    assert!(found.is_empty() || found == "us-east-1", "found {found:?}");
    let uk = s.s3_client();
    let uk_bucket = unique_name("uk");
    uk.create_bucket()
        .bucket(&uk_bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest2)
                .build(),
        )
        .send()
        .await?;
    let location = uk.get_bucket_location().bucket(&uk_bucket).send().await?;
    assert_eq!(
        location.location_constraint().map(|c| c.as_str()),
        Some("eu-west-2")
    );
    Ok(())
}

/// The port race that failed fresh clones: a port chosen free was bound by someone else
/// before the server bound it. Here the port is held for the whole start-up and handed
/// to every server's first attempt, so each one must notice it did not get it (its own
/// process does not listen there), start again elsewhere, and the servers that come up
/// must be this start-up's own (its token, its credentials).
#[tokio::test]
async fn a_server_whose_port_was_taken_is_started_again_on_another() -> anyhow::Result<()> {
    use anyhow::{Context, ensure};
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let taken_port = taken.local_addr()?.port();
    let dir = evidence_operator_tests::repo_root()
        .join("target")
        .join(unique_name("servers-taken-port"));
    let script = evidence_operator_tests::repo_root().join("tests/servers");
    let out = tokio::process::Command::new(script.join("up.sh"))
        .arg("--dir")
        .arg(&dir)
        .arg("--watch")
        .arg(std::process::id().to_string())
        .env("EVIDENCE_SERVERS_TAKEN_PORT", taken_port.to_string())
        .output()
        .await
        .context("running up.sh")?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let result = async {
        ensure!(out.status.success(), "up.sh failed:\n{stderr}");
        for server in ["etcd", "minio", "minio-us", "kube-apiserver", "seaweedfs"] {
            ensure!(
                stderr.contains(&format!("{server}: port {taken_port}")),
                "{server} was not retried after its port was taken:\n{stderr}"
            );
        }
        let env = std::fs::read_to_string(dir.join("env"))?;
        ensure!(
            !env.contains(&format!(":{taken_port}\n")),
            "the taken port was handed out: {env}"
        );
        let started = evidence_operator_tests::Servers::from_env_file(&dir.join("env"))?;
        let client = started.kube_client().await?;
        client.apiserver_version().await?;
        started.s3_client().list_buckets().send().await?;
        started.non_uk_s3_client().list_buckets().send().await?;
        started.seaweedfs_s3_client().list_buckets().send().await?;
        Ok(())
    }
    .await;
    let down = tokio::process::Command::new(script.join("down.sh"))
        .arg("--dir")
        .arg(&dir)
        .output()
        .await?;
    std::fs::remove_dir_all(&dir).ok();
    drop(taken);
    result?;
    ensure!(down.status.success(), "down.sh failed");
    Ok(())
}
