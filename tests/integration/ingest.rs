//! `evidence-operator ingest` against the real servers: a dock folder of clips (with
//! sidecars, with MP4 metadata only, bad ones, one larger than the multipart threshold)
//! into the hot tier of an EvidenceBucket named through the cluster, on MinIO and
//! SeaweedFS; a run stopped at its pause points and run again; a conflicting key; a
//! non-UK hot bucket.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context, Result};
use chrono::{DateTime, TimeDelta, Utc};
use clap::Parser;
use evidence_operator::{
    api::clip::{
        META_SHA256, META_UPLOADED_AT, TAG_CAMERA, TAG_CASE, TAG_CATEGORY, TAG_OFFICER,
        TAG_RECORDED_AT,
    },
    audit::{AuditAction, AuditLog, Record, verify},
    cli::{
        Cli, Command,
        ingest::{IngestArgs, bucket_target, plain_target},
    },
    ingest::{
        IngestError, IngestOptions, IngestReport, IngestStep, IngestTarget, Outcome, Quiet, ingest,
        mp4::minimal_mp4,
    },
    storage::{S3TierStore, StorageMetrics, conformance::sha_hex},
};
use evidence_operator_tests::{Backend, RunningOperator, Tenant, eventually, servers, unique_name};
use futures::FutureExt;

const MIB: usize = 1024 * 1024;

fn parse(argv: &[&str]) -> Result<IngestArgs> {
    let mut all = vec!["evidence-operator", "ingest"];
    all.extend_from_slice(argv);
    match Cli::try_parse_from(all)?.command {
        Command::Ingest(a) => Ok(*a),
        _ => anyhow::bail!("not an ingest command"),
    }
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("a time")
        .with_timezone(&Utc)
}

fn new_dock() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(unique_name("dock"));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Write `NAME.mp4` (an MP4 created at `created`, `len` bytes of payload) and, when
/// given, its sidecar `NAME.json`. Returns the file's SHA-256.
fn clip(
    dock: &Path,
    name: &str,
    created: Option<&str>,
    len: usize,
    sidecar: Option<serde_json::Value>,
) -> Result<String> {
    let payload: Vec<u8> = (0..len).map(|i| (i * 31 + name.len()) as u8).collect();
    let data = minimal_mp4(created.map(t), &payload);
    std::fs::write(dock.join(format!("{name}.mp4")), &data)?;
    if let Some(s) = sidecar {
        std::fs::write(dock.join(format!("{name}.json")), s.to_string())?;
    }
    Ok(sha_hex(&data))
}

fn sidecar(category: &str, camera: &str, recorded: Option<&str>) -> serde_json::Value {
    let mut s = serde_json::json!({
        "schema": "evidence.bwv.io/ingest-sidecar/v1",
        "category": category, "camera": camera, "officer": "PC 4242",
    });
    if let Some(r) = recorded {
        s["recordedAt"] = r.into();
    }
    s
}

/// A tenant with the policy `policy` (categories `domestic-abuse`, `non-evidential`)
/// and the EvidenceBucket `unit` on `backend`; the ingest target through the cluster.
async fn tenant(prefix: &str, backend: Backend, dock: &Path) -> Result<(Tenant, IngestTarget)> {
    let s = servers();
    let t = Tenant::on_backend(prefix, backend).await?;
    t.apply_policy(
        "policy",
        serde_json::json!({
            "default": { "retention": "31d", "onExpiry": "Delete" },
            "categories": [
                { "name": "domestic-abuse", "retention": "10y", "onExpiry": "Review" },
                { "name": "non-evidential", "retention": "31d", "onExpiry": "Delete" },
            ],
            "coolAfter": "30d",
        }),
    )
    .await?;
    t.apply_bucket("unit", &backend.endpoint(s), "1h").await?;
    let bucket = format!("{}/unit", t.ns);
    let mut argv = vec![dock.to_str().context("dock path")?, "--bucket", &bucket];
    let flags = backend.operator_flags(s);
    argv.extend(flags.iter().map(String::as_str));
    let target = bucket_target(t.client.clone(), &parse(&argv)?).await?;
    Ok((t, target))
}

fn opts(dock: &Path) -> IngestOptions {
    let mut o = IngestOptions::new(dock);
    o.multipart_threshold = 5 * MIB as u64;
    o.part_size = 5 * MIB as u64;
    o.parallel_parts = 2;
    o.dock_host = "dock-7".into();
    o.user = "sgt-test".into();
    o
}

fn outcomes(r: &IngestReport) -> BTreeMap<String, Outcome> {
    r.clips
        .iter()
        .map(|c| (c.file.display().to_string(), c.outcome))
        .collect()
}

async fn records(target: &IngestTarget) -> Result<Vec<Record>> {
    let (audit, _) = target.audit.clone().context("audit")?;
    let log = AuditLog::connect(&target.config, audit).await?;
    let objects = log.read_all().await?;
    let (v, records) = verify(&log.target().prefix, &objects, None);
    assert!(v.ok(), "the chain verifies: {v:?}");
    Ok(records
        .into_iter()
        .filter(|r| r.action == AuditAction::Ingested)
        .collect())
}

async fn object(t: &Tenant, key: &str) -> Result<(String, BTreeMap<String, String>, String)> {
    let got = t.s3.get_object().bucket(&t.hot).key(key).send().await?;
    let meta = got.metadata().cloned().unwrap_or_default();
    let body = got.body.collect().await?.into_bytes();
    let tags =
        t.s3.get_object_tagging()
            .bucket(&t.hot)
            .key(key)
            .send()
            .await?
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
    Ok((
        sha_hex(&body),
        tags,
        meta.get(META_SHA256).cloned().unwrap_or_default(),
    ))
}

async fn incomplete(t: &Tenant, target: &IngestTarget) -> Result<usize> {
    let store = S3TierStore::new(
        target.config.clone(),
        target.store_options.clone(),
        StorageMetrics::unregistered(),
    )
    .await?;
    let _ = t;
    Ok(store.incomplete_uploads("").await?.len())
}

#[tokio::test]
async fn a_dock_is_ingested_with_tags_hashes_and_records_and_bad_clips_are_refused() -> Result<()> {
    let dock = new_dock()?;
    let (t, target) = tenant("ingest", Backend::Minio, &dock).await?;
    let a = clip(
        &dock,
        "a-sidecar",
        None,
        1000,
        Some(sidecar(
            "domestic-abuse",
            "BWV-1",
            Some("2026-03-01T14:05:00Z"),
        )),
    )?;
    // no recordedAt: the MP4's mvhd creation time
    let b = clip(
        &dock,
        "b-mvhd",
        Some("2026-02-02T10:00:00Z"),
        2000,
        Some(sidecar("non-evidential", "BWV-1", None)),
    )?;
    // no sidecar at all: the folder's flags and the mvhd
    let c = clip(&dock, "c-flags", Some("2026-01-15T08:30:00Z"), 3000, None)?;
    // above the multipart threshold (5 MiB parts)
    let big = clip(&dock, "d-big", Some("2026-01-16T08:30:00Z"), 12 * MIB, None)?;
    clip(
        &dock,
        "e-unknown",
        None,
        10,
        Some(sidecar("murder", "BWV-1", Some("2026-03-01T14:05:00Z"))),
    )?;
    clip(
        &dock,
        "f-future",
        None,
        10,
        Some(sidecar(
            "non-evidential",
            "BWV-1",
            Some("2099-01-01T00:00:00Z"),
        )),
    )?;
    clip(&dock, "g-bad", None, 10, None)?;
    std::fs::write(dock.join("g-bad.json"), "{ not json")?;
    clip(&dock, "h-notime", None, 10, None)?;
    // a key that holds another object: a conflict, never overwritten
    clip(
        &dock,
        "i-conflict",
        None,
        10,
        Some(sidecar(
            "non-evidential",
            "BWV-1",
            Some("2026-03-02T00:00:00Z"),
        )),
    )?;
    t.s3.put_object()
        .bucket(&t.hot)
        .key("2026/03/02/BWV-1/i-conflict.mp4")
        .body(b"someone else's bytes".to_vec().into())
        .send()
        .await?;

    let mut o = opts(&dock);
    o.defaults.category = Some("non-evidential".into());
    o.defaults.camera = Some("BWV-9".into());
    o.defaults.officer = Some("PC 9".into());
    o.defaults.case = Some("01/999/26".into());
    let before = Utc::now() - TimeDelta::minutes(1);
    let report = ingest(&target, &o, &Quiet).await?;
    let got = outcomes(&report);
    let expect = |f: &str| got.get(&format!("{f}.mp4")).copied();
    assert_eq!(
        expect("a-sidecar"),
        Some(Outcome::Ingested),
        "{}",
        report.to_text()
    );
    assert_eq!(expect("b-mvhd"), Some(Outcome::Ingested));
    assert_eq!(expect("c-flags"), Some(Outcome::Ingested));
    assert_eq!(
        expect("d-big"),
        Some(Outcome::Ingested),
        "{}",
        report.to_text()
    );
    for refused in ["e-unknown", "f-future", "g-bad", "h-notime"] {
        assert_eq!(
            expect(refused),
            Some(Outcome::Refused),
            "{refused}: {}",
            report.to_text()
        );
    }
    assert_eq!(expect("i-conflict"), Some(Outcome::Conflict));
    assert!(
        !report.ok(),
        "refusals and conflicts make the exit status non-zero"
    );
    let text = report.to_text();
    assert!(text.contains("unknown category \"murder\""), "{text}");
    assert!(text.contains("in the future"), "{text}");
    assert!(text.contains("g-bad.json"), "{text}");
    assert!(text.contains("mtime is never used"), "{text}");

    let (sha, tags, recorded) = object(&t, "2026/03/01/BWV-1/a-sidecar.mp4").await?;
    assert_eq!((sha.as_str(), recorded.as_str()), (a.as_str(), a.as_str()));
    assert_eq!(tags[TAG_CATEGORY], "domestic-abuse");
    assert_eq!(tags[TAG_RECORDED_AT], "2026-03-01T14:05:00Z");
    assert_eq!(tags[TAG_OFFICER], "PC 4242");
    assert_eq!(tags[TAG_CAMERA], "BWV-1");
    assert_eq!(tags[TAG_CASE], "01/999/26", "the folder's case fills in");
    let (sha, tags, _) = object(&t, "2026/02/02/BWV-1/b-mvhd.mp4").await?;
    assert_eq!(sha, b);
    assert_eq!(tags[TAG_RECORDED_AT], "2026-02-02T10:00:00Z");
    let (sha, tags, _) = object(&t, "2026/01/15/BWV-9/c-flags.mp4").await?;
    assert_eq!(sha, c);
    assert_eq!(
        (tags[TAG_CAMERA].as_str(), tags[TAG_OFFICER].as_str()),
        ("BWV-9", "PC 9")
    );
    let (sha, _, recorded) = object(&t, "2026/01/16/BWV-9/d-big.mp4").await?;
    assert_eq!(
        (sha.as_str(), recorded.as_str()),
        (big.as_str(), big.as_str()),
        "multipart round trip"
    );
    let head =
        t.s3.head_object()
            .bucket(&t.hot)
            .key("2026/03/01/BWV-1/a-sidecar.mp4")
            .send()
            .await?;
    let uploaded = head
        .metadata()
        .and_then(|m| m.get(META_UPLOADED_AT))
        .context("uploaded-at")?;
    let uploaded = t_any(uploaded);
    assert!(
        uploaded > before && uploaded < Utc::now() + TimeDelta::minutes(1),
        "{uploaded}"
    );
    let (body, ..) = object(&t, "2026/03/02/BWV-1/i-conflict.mp4").await?;
    assert_eq!(body, sha_hex(b"someone else's bytes"), "not overwritten");

    let recs = records(&target).await?;
    assert_eq!(recs.len(), 4);
    let r = recs
        .iter()
        .find(|r| {
            r.clip
                .as_ref()
                .is_some_and(|c| c.key.ends_with("d-big.mp4"))
        })
        .context("record")?;
    assert_eq!(r.sha256.as_deref(), Some(big.as_str()));
    assert_eq!(r.actor.operator, "ingest:sgt-test@dock-7");
    assert!(
        r.reason.contains("camera BWV-9, officer PC 9"),
        "{}",
        r.reason
    );
    assert_eq!(incomplete(&t, &target).await?, 0);

    // Again: everything that landed is already present, nothing is recorded twice.
    let again = ingest(&target, &o, &Quiet).await?;
    assert_eq!(
        again.count(Outcome::AlreadyPresent),
        4,
        "{}",
        again.to_text()
    );
    assert_eq!((again.audit_records, again.bytes_uploaded), (0, 0));
    assert_eq!(records(&target).await?.len(), 4);
    std::fs::remove_dir_all(&dock)?;
    Ok(())
}

fn t_any(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

#[tokio::test]
async fn a_run_stopped_at_its_pause_points_and_run_again_lands_every_clip_once_on_seaweedfs()
-> Result<()> {
    let dock = new_dock()?;
    let (t, target) = tenant("ingest-resume", Backend::Seaweedfs, &dock).await?;
    let mut shas = Vec::new();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let created = format!("2026-03-0{}T12:00:00Z", i + 1);
        shas.push(clip(&dock, name, Some(&created), 4096, None)?);
    }
    let big = clip(&dock, "z-big", Some("2026-03-04T12:00:00Z"), 11 * MIB, None)?;
    let mut o = opts(&dock);
    o.concurrency = 1;
    o.remove_source = true;
    o.defaults.category = Some("non-evidential".into());
    o.defaults.camera = Some("BWV-2".into());
    o.defaults.officer = Some("PC 2".into());

    // 1. stopped after the second clip landed, before any audit record
    let mut first = o.clone();
    first.hook = Some(Arc::new(|step| {
        async move { !matches!(step, IngestStep::Uploaded { key } if key.ends_with("/b.mp4")) }
            .boxed()
    }));
    let e = ingest(&target, &first, &Quiet).await.expect_err("stopped");
    assert!(matches!(e, IngestError::Interrupted(_)), "{e}");
    assert!(
        dock.join("a.mp4").exists(),
        "nothing removed before it is recorded"
    );
    assert_eq!(records(&target).await?.len(), 0);

    // 2. stopped after the first part of the big clip: an incomplete upload is left
    let mut second = o.clone();
    second.part_hook = Some(Arc::new(|_key, part| async move { part < 1 }.boxed()));
    let e = ingest(&target, &second, &Quiet).await.expect_err("stopped");
    assert!(matches!(e, IngestError::Interrupted(_)), "{e}");
    assert_eq!(
        incomplete(&t, &target).await?,
        1,
        "the killed upload is still there"
    );

    // 3. run to the end: every clip once, no incomplete upload, the dock emptied
    let report = ingest(&target, &o, &Quiet).await?;
    assert!(report.ok(), "{}", report.to_text());
    assert_eq!(
        report.count(Outcome::AlreadyPresent),
        3,
        "{}",
        report.to_text()
    );
    assert_eq!(report.count(Outcome::Ingested), 1);
    assert_eq!(
        incomplete(&t, &target).await?,
        0,
        "the interrupted upload was aborted"
    );
    let recs = records(&target).await?;
    let mut keys: Vec<&str> = recs
        .iter()
        .filter_map(|r| r.clip.as_ref().map(|c| c.key.as_str()))
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "2026/03/01/BWV-2/a.mp4",
            "2026/03/02/BWV-2/b.mp4",
            "2026/03/03/BWV-2/c.mp4",
            "2026/03/04/BWV-2/z-big.mp4"
        ]
    );
    for (key, sha) in keys.iter().zip(shas.iter().chain([&big])) {
        let (got, _, recorded) = object(&t, key).await?;
        assert_eq!((&got, &recorded), (sha, sha), "{key}");
    }
    assert!(report.clips.iter().all(|c| c.source_removed));
    assert!(!dock.join("a.mp4").exists() && !dock.join("z-big.mp4").exists());

    // 4. nothing left: nothing to do, nothing recorded
    let last = ingest(&target, &o, &Quiet).await?;
    assert!(last.clips.is_empty() && last.ok());
    assert_eq!(records(&target).await?.len(), 4);
    std::fs::remove_dir_all(&dock)?;
    Ok(())
}

/// A second dock creates the key after this one found it free: the conditional upload
/// (`If-None-Match: *`) is refused, the clip is a conflict, the other object stays.
async fn a_key_taken_after_the_check_is_not_overwritten(backend: Backend) -> Result<()> {
    let dock = new_dock()?;
    let (t, target) = tenant("ingest-race", backend, &dock).await?;
    clip(&dock, "small", Some("2026-03-01T12:00:00Z"), 100, None)?;
    clip(&dock, "large", Some("2026-03-01T13:00:00Z"), 6 * MIB, None)?;
    let mut o = opts(&dock);
    o.defaults.category = Some("non-evidential".into());
    o.defaults.camera = Some("BWV-3".into());
    o.defaults.officer = Some("PC 3".into());
    let (s3, hot) = (t.s3.clone(), t.hot.clone());
    o.hook = Some(Arc::new(move |step| {
        let (s3, hot) = (s3.clone(), hot.clone());
        async move {
            if let IngestStep::Checked { key } = step {
                s3.put_object()
                    .bucket(&hot)
                    .key(&key)
                    .body(b"the other dock's bytes".to_vec().into())
                    .send()
                    .await
                    .expect("the other dock's upload");
            }
            true
        }
        .boxed()
    }));
    let report = ingest(&target, &o, &Quiet).await?;
    assert_eq!(report.count(Outcome::Conflict), 2, "{}", report.to_text());
    for key in ["2026/03/01/BWV-3/small.mp4", "2026/03/01/BWV-3/large.mp4"] {
        let (sha, ..) = object(&t, key).await?;
        assert_eq!(
            sha,
            sha_hex(b"the other dock's bytes"),
            "{key} not overwritten"
        );
    }
    assert_eq!(records(&target).await?.len(), 0);
    assert_eq!(
        incomplete(&t, &target).await?,
        0,
        "the refused upload was aborted"
    );
    std::fs::remove_dir_all(&dock)?;
    Ok(())
}

#[tokio::test]
async fn a_key_taken_after_the_check_is_not_overwritten_on_minio() -> Result<()> {
    a_key_taken_after_the_check_is_not_overwritten(Backend::Minio).await
}

#[tokio::test]
async fn a_key_taken_after_the_check_is_not_overwritten_on_seaweedfs() -> Result<()> {
    a_key_taken_after_the_check_is_not_overwritten(Backend::Seaweedfs).await
}

#[tokio::test]
async fn a_non_uk_hot_bucket_gets_nothing() -> Result<()> {
    let s = servers();
    let dock = new_dock()?;
    clip(&dock, "a", Some("2026-03-01T12:00:00Z"), 100, None)?;
    let t = Tenant::on("ingest-nonuk", s, true).await?;
    // The dock declares eu-west-2; the store says us-east-1.
    let args = parse(&[
        dock.to_str().context("dock")?,
        "--hot-bucket",
        &t.hot,
        "--region",
        "eu-west-2",
        "--endpoint",
        &s.non_uk_endpoint,
        "--audit-bucket",
        &t.lock,
        "--audit-chain",
        "x/y",
        "--camera",
        "BWV-1",
        "--officer",
        "PC 1",
        "--category",
        "non-evidential",
    ])?;
    let mut target = plain_target(&args)?;
    target.config.credentials = Some(evidence_operator::storage::StaticCredentials {
        access_key_id: s.s3_access_key.clone(),
        secret_access_key: s.s3_secret_key.clone(),
        session_token: None,
    });
    let e = ingest(&target, &args.options(), &Quiet)
        .await
        .expect_err("refused");
    assert!(matches!(e, IngestError::Storage(_)), "{e}");
    assert!(e.to_string().contains("us-east-1"), "{e}");
    assert!(t.keys(&t.hot).await?.is_empty(), "nothing was written");
    assert!(t.keys(&t.lock).await?.is_empty(), "no audit record either");
    std::fs::remove_dir_all(&dock)?;
    Ok(())
}

/// The sum of the operator's metric `name` over the series whose labels include
/// `label` (`key="value"`, or "" for all).
fn metric(text: &str, name: &str, label: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Issue 19: a clip a dock ingested is known to the operator before it first lists
/// it. On SeaweedFS (listings carry no tags, as on AWS S3) the operator learns each
/// clip's tags, SHA-256 and headers from its `ingested` audit record, so its first
/// sweep reads no tag of an ingested clip to plan, and a due clip's move sends no HEAD
/// of its source. The tag reads left: the clips moved into the cool tier, listed there
/// for the first time, and each moved clip's source read again just before it is
/// deleted; the HEADs: SeaweedFS's copies verified (its CopyObject answers with no
/// checksum). Without what the records say, each ingested clip would cost a tag read
/// in the listing and each move a HEAD of its source too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_operator_knows_ingested_clips_from_their_audit_records_on_seaweedfs() -> Result<()> {
    let s = servers();
    let dock = new_dock()?;
    let (t, target) = tenant("ingest-known", Backend::Seaweedfs, &dock).await?;
    let (old, young) = (6, 6);
    let recorded = |days: i64| {
        (Utc::now() - TimeDelta::days(days))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    for i in 0..old {
        let side = sidecar("domestic-abuse", "BWV-K1", Some(&recorded(40)));
        clip(&dock, &format!("old-{i}"), None, 4096, Some(side))?;
    }
    for i in 0..young {
        let side = sidecar("domestic-abuse", "BWV-K1", Some(&recorded(2)));
        clip(&dock, &format!("young-{i}"), None, 4096, Some(side))?;
    }
    let report = ingest(&target, &opts(&dock), &Quiet).await?;
    assert_eq!(report.count(Outcome::Ingested), old + young, "{report:?}");
    let ingested = records(&target).await?;
    assert!(
        ingested.iter().all(|r| r.written.is_some()),
        "every ingested record says what was written"
    );

    let flags = Backend::Seaweedfs.operator_flags(s);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let op = RunningOperator::for_namespace(&t.ns, &flags).await?;
    let metrics = op.metrics.clone();
    let text = op
        .check(async {
            eventually(
                std::time::Duration::from_secs(60),
                "the old clips moved",
                || async {
                    let cool = t.keys(&t.cool).await?;
                    let hot = t.keys(&t.hot).await?;
                    let moved = cool.iter().filter(|k| k.contains("/old-")).count();
                    let left = hot.iter().filter(|k| k.contains("/old-")).count();
                    Ok((moved == old && left == 0).then_some(()))
                },
            )
            .await?;
            eventually(std::time::Duration::from_secs(30), "Ready", || async {
                let ready = t.condition("unit", "Ready").await?;
                Ok(ready.filter(|r| r.0 == "True").map(|_| ()))
            })
            .await?;
            Ok(metrics.render()?)
        })
        .await?;
    let hot = t.keys(&t.hot).await?;
    assert_eq!(
        hot.iter().filter(|k| k.contains("/young-")).count(),
        young,
        "the young clips stay: {hot:?}"
    );
    let lookups = |result: &str| {
        metric(
            &text,
            "evidence_operator_catalogue_lookups_total",
            &format!("result=\"{result}\""),
        )
    };
    let requests = |op: &str| {
        metric(
            &text,
            "evidence_operator_storage_requests_total",
            &format!("operation=\"{op}\""),
        )
    };
    println!(
        "lookups: ingested {}, hit {}, new {}, changed {}, refresh {}; requests: get_object_tagging {}, head_object {}, copy_object {}",
        lookups("ingested"),
        lookups("hit"),
        lookups("new"),
        lookups("changed"),
        lookups("refresh"),
        requests("get_object_tagging"),
        requests("head_object"),
        requests("copy_object"),
    );
    assert_eq!(
        lookups("ingested") as usize,
        old + young,
        "every ingested clip was known from its record when first listed"
    );
    assert_eq!(
        requests("get_object_tagging"),
        lookups("new") + lookups("changed") + lookups("refresh") + old as u64,
        "the only tag reads: of clips the catalogue did not know, and of each moved \
         clip's source again just before it is deleted (the point of no return)"
    );
    assert_eq!(
        lookups("new") as usize,
        old,
        "the clips not known: those moved into the cool tier, listed there"
    );
    assert!(
        requests("head_object") as usize <= old,
        "no HEAD of a moved clip's source (at most one of each copy): {} HEADs for {old} moves",
        requests("head_object")
    );
    std::fs::remove_dir_all(&dock).ok();
    Ok(())
}
