//! The audit trail against the real servers: the operator's lifecycle produces a chain
//! that verifies and a chain-of-custody report for a held and released clip; every kind
//! of tampering is detected (in a test-only bucket without Object Lock), and the locked
//! bucket refuses it; two writers never fork the chain; a leader change mid-sweep
//! continues the same chain. The records of the policies and holds themselves:
//! `policy_records`.

mod policy_records;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use aws_sdk_s3::{primitives::ByteStream, types::ObjectLockRetentionMode};
use chrono::Utc;
use clap::Parser;
use evidence_operator::{
    api::{
        EvidenceBucket, LegalHold,
        clip::{TAG_CASE, Tier},
    },
    audit::{
        Actor, AuditAction, AuditLog, AuditTarget, Break, ClipRef, Entry, Record, StoredObject,
        verify,
    },
    cli::{
        Cli, Command,
        audit::{AuditCommand, Report, run_show, run_verify},
    },
};
use evidence_operator_tests::{
    RunningOperator, Tenant, eventually, servers, tenant::create_bucket, unique_name,
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, api::DeleteParams};
use serde_json::json;

const ROOT: &str = "evidence-audit/";

/// What the audit tests add to the shared tenant fixture: the policy and bucket they
/// use, holds by case, and the `audit` subcommands run against the tenant's chain.
trait AuditTenant {
    async fn setup(&self) -> Result<()>;
    async fn hold(&self, name: &str, case: &str) -> Result<()>;
    fn source_args(&self, extra: &[&str]) -> Result<AuditCommand>;
    async fn verify(&self) -> Result<Report>;
    async fn show(&self, extra: &[&str]) -> Result<Report>;
    async fn records(&self) -> Result<Vec<Record>>;
}

impl AuditTenant for Tenant {
    async fn setup(&self) -> Result<()> {
        self.apply_policy(
            "policy",
            json!({
                "default": { "retention": "31d", "onExpiry": "Delete" },
                "categories": [
                    { "name": "use-of-force", "retention": "7y", "onExpiry": "Delete" },
                ],
                "coolAfter": "30d",
                "minimumAge": "24h",
            }),
        )
        .await?;
        self.apply_bucket("unit", &servers().s3_endpoint, "1h")
            .await
    }

    async fn hold(&self, name: &str, case: &str) -> Result<()> {
        self.apply_hold(
            name,
            case,
            "audit integration test",
            json!({ "matchTags": { TAG_CASE: case } }),
        )
        .await
    }

    fn source_args(&self, extra: &[&str]) -> Result<AuditCommand> {
        let bucket = format!("{}/unit", self.ns);
        let mut argv = vec!["evidence-operator", "audit"];
        argv.extend_from_slice(extra);
        argv.extend(["--bucket", bucket.as_str()]);
        let Command::Audit(a) = Cli::try_parse_from(argv)?.command else {
            bail!("not an audit command");
        };
        Ok(a.command)
    }

    async fn verify(&self) -> Result<Report> {
        let AuditCommand::Verify(src) = self.source_args(&["verify"])? else {
            bail!("not verify");
        };
        run_verify(&src, Some(self.client.clone())).await
    }

    async fn show(&self, extra: &[&str]) -> Result<Report> {
        let mut args = vec!["show"];
        args.extend_from_slice(extra);
        let AuditCommand::Show(show) = self.source_args(&args)? else {
            bail!("not show");
        };
        run_show(&show, Some(self.client.clone())).await
    }

    /// Every record of the bucket's chain, verified.
    async fn records(&self) -> Result<Vec<Record>> {
        let log = AuditLog::with_client(
            self.s3.clone(),
            AuditTarget {
                bucket: self.lock.clone(),
                prefix: format!("{ROOT}{}/unit/", self.ns),
                retention: None,
            },
        )?;
        let objects = log.read_all().await?;
        let (v, records) = verify(&log.target().prefix, &objects, None);
        if let Some(b) = v.first_break {
            bail!("chain broken: {b}");
        }
        Ok(records)
    }
}

fn actions_of(records: &[Record], key: &str) -> Vec<AuditAction> {
    records
        .iter()
        .filter(|r| r.clip.as_ref().is_some_and(|c| c.key == key))
        .map(|r| r.action)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lifecycle_chain_verifies_and_shows_the_custody_of_a_held_and_released_clip() -> Result<()>
{
    let t = Tenant::new("audit-life").await?;
    t.put_clip("old-non-evidential.mp4", Some("non-evidential"), 40, &[])
        .await?;
    t.put_clip("force-old.mp4", Some("use-of-force"), 60, &[])
        .await?;
    t.put_clip(
        "case-clip.mp4",
        Some("use-of-force"),
        60,
        &[(TAG_CASE, "CASE-42")],
    )
    .await?;
    t.setup().await?;
    let op = RunningOperator::for_namespace(&t.ns, &["--integrity-sample", "5"]).await?;

    // Deleted, moved to cool.
    eventually(Duration::from_secs(60), "first sweep recorded", || async {
        let cool = t.keys(&t.cool).await?;
        let hot = t.keys(&t.hot).await?;
        Ok(
            (cool.contains("force-old.mp4") && cool.contains("case-clip.mp4") && hot.is_empty())
                .then_some(()),
        )
    })
    .await?;

    // Held, then released.
    t.hold("case-42", "CASE-42").await?;
    eventually(Duration::from_secs(60), "case clip held", || async {
        Ok(t.keys(&t.lock)
            .await?
            .contains("case-clip.mp4")
            .then_some(()))
    })
    .await?;
    let holds: Api<LegalHold> = Api::namespaced(t.client.clone(), &t.ns);
    holds.delete("case-42", &DeleteParams::default()).await?;
    eventually(Duration::from_secs(60), "case clip released", || async {
        let gone = holds.get_opt("case-42").await?.is_none();
        Ok((gone && t.keys(&t.cool).await?.contains("case-clip.mp4")).then_some(()))
    })
    .await?;
    // An integrity sweep ran over the cool tier (sampled clips re-read, recorded).
    eventually(Duration::from_secs(30), "an integrity record", || async {
        let r = t.records().await?;
        Ok(r.iter()
            .any(|r| r.action == AuditAction::IntegrityVerified)
            .then_some(()))
    })
    .await?;
    op.stop().await?;

    // The chain verifies, through the cluster (EvidenceBucket + Secret), against the
    // head the AuditTrail condition reports.
    let report = t.verify().await?;
    assert!(report.broken.is_none(), "{report:?}");
    assert!(report.output.contains(": OK: "), "{}", report.output);
    let eb: Api<EvidenceBucket> = Api::namespaced(t.client.clone(), &t.ns);
    let status = serde_json::to_value(eb.get("unit").await?.status)?;
    let trail = status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "AuditTrail").cloned())
        .context("AuditTrail condition")?;
    assert_eq!(trail["reason"], "Recorded", "{trail}");
    assert!(
        trail["message"]
            .as_str()
            .unwrap_or_default()
            .contains("hash=")
    );

    // What the records say.
    let records = t.records().await?;
    assert_eq!(
        actions_of(&records, "old-non-evidential.mp4"),
        vec![AuditAction::Intended, AuditAction::Deleted],
        "write-ahead: the intent is recorded before the delete"
    );
    let deleted = records
        .iter()
        .find(|r| r.action == AuditAction::Deleted)
        .context("a delete record")?;
    assert!(
        deleted.reason.contains("retention 31d") && deleted.reason.contains("expired"),
        "the rule and retention that allowed the delete: {}",
        deleted.reason
    );
    let moved = records
        .iter()
        .find(|r| r.action == AuditAction::Moved && r.clip.as_ref().unwrap().key == "force-old.mp4")
        .context("a move record")?;
    assert_eq!(
        (moved.from_tier, moved.to_tier),
        (Some(Tier::Hot), Some(Tier::Cool))
    );
    assert_eq!(
        moved.sha256.as_deref().map(str::len),
        Some(64),
        "verified SHA-256"
    );
    assert!(!moved.actor.operator.is_empty());
    let case_actions = actions_of(&records, "case-clip.mp4");
    for a in [AuditAction::Moved, AuditAction::Held, AuditAction::Released] {
        assert!(case_actions.contains(&a), "{a:?} in {case_actions:?}");
    }
    for r in records
        .iter()
        .filter(|r| matches!(r.action, AuditAction::Held | AuditAction::Released))
    {
        assert_eq!(r.cases, vec!["CASE-42".to_string()], "{r:?}");
    }
    let policy: Vec<(AuditAction, String)> = records
        .iter()
        .filter_map(|r| r.object.as_ref().map(|o| (r.action, o.kind.clone())))
        .collect();
    assert!(
        policy.contains(&(AuditAction::PolicyCreated, "RetentionPolicy".into())),
        "{policy:?}"
    );
    assert!(
        policy.contains(&(AuditAction::PolicyCreated, "LegalHold".into())),
        "{policy:?}"
    );
    assert!(
        policy.contains(&(AuditAction::PolicyDeleted, "LegalHold".into())),
        "{policy:?}"
    );
    let created = records
        .iter()
        .find(|r| r.action == AuditAction::PolicyCreated)
        .and_then(|r| r.object.clone())
        .context("policy record")?;
    assert_eq!(
        created.changed_by.as_deref(),
        Some("tests"),
        "who: the field manager"
    );

    // audit show: the chain of custody of the held and released clip lists every step.
    let custody = t.show(&["--clip", "case-clip.mp4"]).await?;
    assert!(custody.broken.is_none());
    let text = &custody.output;
    for needle in [
        "hot",
        "cool",
        "legal-hold",
        "moved",
        "held",
        "released",
        "CASE-42",
        "sha256",
    ] {
        assert!(
            text.contains(needle),
            "custody report lacks {needle}:\n{text}"
        );
    }
    let json = t.show(&["--clip", "case-clip.mp4", "-o", "json"]).await?;
    let v: serde_json::Value = serde_json::from_str(&json.output)?;
    let tiers: Vec<&str> = v["custody"]["stays"]
        .as_array()
        .context("stays")?
        .iter()
        .filter_map(|s| s["tier"].as_str())
        .collect();
    assert_eq!(
        tiers,
        vec!["Hot", "Cool", "LegalHold", "Cool"],
        "{}",
        json.output
    );
    let by_case = t.show(&["--case", "CASE-42", "-o", "json"]).await?;
    let v: serde_json::Value = serde_json::from_str(&by_case.output)?;
    assert!(
        v["records"].as_array().is_some_and(|r| r.len() >= 3),
        "{}",
        by_case.output
    );
    let deletes = t.show(&["--action", "deleted", "-o", "json"]).await?;
    let v: serde_json::Value = serde_json::from_str(&deletes.output)?;
    assert_eq!(v["records"].as_array().map(Vec::len), Some(1));

    // The locked bucket: every audit object has COMPLIANCE retention, and neither a
    // conditional overwrite nor a delete of the version is possible; a plain PUT only
    // stacks a new version, and verify still reads (and verifies) the original.
    let audit_keys: Vec<String> = t
        .keys(&t.lock)
        .await?
        .into_iter()
        .filter(|k| k.starts_with(ROOT))
        .collect();
    assert!(!audit_keys.is_empty());
    let first = &audit_keys[0];
    let ret =
        t.s3.get_object_retention()
            .bucket(&t.lock)
            .key(first)
            .send()
            .await?;
    assert_eq!(
        ret.retention().and_then(|r| r.mode()),
        Some(&ObjectLockRetentionMode::Compliance)
    );
    let head = t.s3.head_object().bucket(&t.lock).key(first).send().await?;
    let version = head.version_id().context("versioned")?.to_string();
    let overwrite =
        t.s3.put_object()
            .bucket(&t.lock)
            .key(first)
            .if_none_match("*")
            .body(ByteStream::from_static(b"{}\n"))
            .send()
            .await;
    assert!(overwrite.is_err(), "conditional overwrite refused");
    let delete =
        t.s3.delete_object()
            .bucket(&t.lock)
            .key(first)
            .version_id(&version)
            .send()
            .await;
    assert!(
        delete.is_err(),
        "deleting a COMPLIANCE-locked audit version is refused"
    );
    let shorten =
        t.s3.put_object_retention()
            .bucket(&t.lock)
            .key(first)
            .version_id(&version)
            .retention(
                aws_sdk_s3::types::ObjectLockRetention::builder()
                    .mode(ObjectLockRetentionMode::Compliance)
                    .retain_until_date(aws_sdk_s3::primitives::DateTime::from_secs(
                        Utc::now().timestamp() + 60,
                    ))
                    .build(),
            )
            .send()
            .await;
    assert!(
        shorten.is_err(),
        "shortening COMPLIANCE retention is refused"
    );
    t.s3.put_object()
        .bucket(&t.lock)
        .key(first)
        .body(ByteStream::from_static(b"{\"forged\":true}\n"))
        .send()
        .await?;
    let report = t.verify().await?;
    assert!(report.broken.is_none(), "{report:?}");
    assert!(report.output.contains("later version"), "{}", report.output);
    Ok(())
}

fn entries(batch: usize, n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let mut e = Entry::clip(
                AuditAction::Moved,
                ClipRef {
                    key: format!("clip-{batch}-{i}.mp4"),
                    version_id: None,
                    size: 1000,
                },
                Some(Tier::Hot),
                "test",
            );
            e.to_tier = Some(Tier::Cool);
            e
        })
        .collect()
}

fn actor(name: &str) -> Actor {
    Actor {
        operator: name.into(),
        lease: None,
        lease_holder: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flipping_deleting_or_swapping_audit_objects_is_detected() -> Result<()> {
    let s = servers();
    let s3 = s.s3_client();
    // A test-only bucket WITHOUT Object Lock, so that the test can tamper.
    let bucket = unique_name("audit-tamper");
    create_bucket(&s3, &bucket, true, false).await?;
    let prefix = "evidence-audit/ns/unit/";
    let log = AuditLog::with_client(
        s3.clone(),
        AuditTarget {
            bucket: bucket.clone(),
            prefix: prefix.into(),
            retention: None,
        },
    )?;
    let mut last = None;
    for b in 0..5 {
        last = log.append(&actor("op"), "ns/unit", &entries(b, 3)).await?;
    }
    let last = last.context("written")?;
    assert_eq!(last.batch, 4);

    let offline = |expect: Option<String>| -> Result<AuditCommand> {
        let mut argv = vec![
            "evidence-operator".to_string(),
            "audit".into(),
            "verify".into(),
            "--s3-bucket".into(),
            bucket.clone(),
            "--prefix".into(),
            prefix.into(),
            "--endpoint".into(),
            s.s3_endpoint.clone(),
            "--access-key-id".into(),
            s.s3_access_key.clone(),
            "--secret-access-key".into(),
            s.s3_secret_key.clone(),
            "-o".into(),
            "json".into(),
        ];
        if let Some(e) = expect {
            argv.extend(["--expect-head".into(), e]);
        }
        let Command::Audit(a) = Cli::try_parse_from(argv)?.command else {
            bail!("not audit");
        };
        Ok(a.command)
    };
    let run = |cmd: AuditCommand| async move {
        let AuditCommand::Verify(src) = cmd else {
            bail!("not verify");
        };
        run_verify(&src, None).await
    };
    let expect = format!("{}:{}", last.batch, last.head);
    let ok = run(offline(Some(expect.clone()))?).await?;
    assert!(ok.broken.is_none(), "{ok:?}");
    let v: serde_json::Value = serde_json::from_str(&ok.output)?;
    assert_eq!(v["verification"]["records"], 15);

    let originals: BTreeMap<String, Vec<u8>> = log
        .read_all()
        .await?
        .into_iter()
        .map(|o| (o.key, o.body))
        .collect();
    let keys: Vec<String> = originals.keys().cloned().collect();
    let put = |key: String, body: Vec<u8>| {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        async move {
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(body))
                .send()
                .await
                .map(drop)
        }
    };
    let restore = || async {
        for (k, b) in &originals {
            put(k.clone(), b.clone()).await?;
        }
        anyhow::Ok(())
    };

    // One flipped byte, in any object (first, middle, last; with the head known, the
    // last object too), is detected.
    for (i, key) in keys.iter().enumerate() {
        let mut body = originals[key].clone();
        let at = body.len() / 2 + i;
        body[at] ^= 0x20;
        put(key.clone(), body).await?;
        let r = run(offline(Some(expect.clone()))?).await?;
        let broken = r.broken.clone().unwrap_or_default();
        assert!(
            broken.contains("altered") || broken.contains("does not reach the head"),
            "flip in {key}: {r:?}"
        );
        restore().await?;
    }
    assert!(run(offline(Some(expect.clone()))?).await?.broken.is_none());

    // A deleted object is reported missing.
    s3.delete_object()
        .bucket(&bucket)
        .key(&keys[2])
        .send()
        .await?;
    let r = run(offline(None)?).await?;
    assert!(
        r.broken
            .as_deref()
            .unwrap_or_default()
            .contains("missing object: batch 2"),
        "{r:?}"
    );
    // ... and deleting the last one is caught against the reported head.
    restore().await?;
    s3.delete_object()
        .bucket(&bucket)
        .key(&keys[4])
        .send()
        .await?;
    let r = run(offline(Some(expect.clone()))?).await?;
    assert!(r.broken.is_some(), "{r:?}");
    restore().await?;

    // Two swapped objects are reported reordered.
    put(keys[1].clone(), originals[&keys[3]].clone()).await?;
    put(keys[3].clone(), originals[&keys[1]].clone()).await?;
    let r = run(offline(None)?).await?;
    assert!(
        r.broken
            .as_deref()
            .unwrap_or_default()
            .contains("reordered"),
        "{r:?}"
    );
    restore().await?;

    // Two records swapped inside one object: reordered too.
    let text = String::from_utf8(originals[&keys[0]].clone())?;
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(0, 2);
    put(
        keys[0].clone(),
        format!("{}\n", lines.join("\n")).into_bytes(),
    )
    .await?;
    let r = run(offline(None)?).await?;
    assert!(
        r.broken
            .as_deref()
            .unwrap_or_default()
            .contains("reordered"),
        "{r:?}"
    );
    restore().await?;
    assert!(run(offline(Some(expect))?).await?.broken.is_none());

    // The writer refuses to continue a chain whose head it cannot read.
    let fresh = AuditLog::with_client(s3.clone(), log.target().clone())?;
    put(keys[4].clone(), b"not json\n".to_vec()).await?;
    assert!(
        fresh
            .append(&actor("op"), "ns/unit", &entries(9, 1))
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_racing_never_fork_the_chain() -> Result<()> {
    let s3 = servers().s3_client();
    let bucket = unique_name("audit-race");
    create_bucket(&s3, &bucket, true, true).await?;
    let target = AuditTarget {
        bucket: bucket.clone(),
        prefix: "evidence-audit/ns/unit/".into(),
        retention: Some(chrono::TimeDelta::days(1)),
    };
    let a = Arc::new(AuditLog::with_client(s3.clone(), target.clone())?);
    let b = Arc::new(AuditLog::with_client(s3.clone(), target.clone())?);
    let write = |log: Arc<AuditLog>, who: &'static str| {
        tokio::spawn(async move {
            let mut conflicts = 0;
            for i in 0..15 {
                let r = log.append(&actor(who), "ns/unit", &entries(i, 2)).await?;
                conflicts += r.map(|r| r.conflicts).unwrap_or(0);
            }
            anyhow::Ok(conflicts)
        })
    };
    let (ca, cb) = (write(a.clone(), "a"), write(b.clone(), "b"));
    let conflicts = ca.await?? + cb.await??;
    let reader = AuditLog::with_client(s3.clone(), target.clone())?;
    let objects: Vec<StoredObject> = reader.read_all().await?;
    let (v, records) = verify(&target.prefix, &objects, None);
    assert!(v.ok(), "{:?}", v.first_break);
    assert_eq!(
        (v.batches, v.records),
        (30, 60),
        "every batch of both writers, in one chain"
    );
    assert!(
        conflicts > 0,
        "the writers did race (conflicts re-sealed: {conflicts})"
    );
    let by: BTreeSet<&str> = records.iter().map(|r| r.actor.operator.as_str()).collect();
    assert_eq!(by, BTreeSet::from(["a", "b"]));
    // The head is found in storage by a new writer.
    let head = reader.find_head().await?;
    assert_eq!((head.next_batch, head.hash.as_str()), (30, v.head.as_str()));
    assert!(matches!(
        verify(&target.prefix, &objects[..29], Some((29, &v.head)))
            .0
            .first_break,
        Some(Break::HeadMismatch { .. })
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_change_mid_sweep_continues_the_chain_without_a_fork() -> Result<()> {
    let t = Tenant::new("audit-lead").await?;
    let n = 60;
    for i in 0..n {
        t.put_clip(&format!("kept-{i:03}.mp4"), Some("use-of-force"), 60, &[])
            .await?;
    }
    t.setup().await?;
    let common = [
        "--leader-elect=true",
        "--lease-duration",
        "4s",
        "--renew-deadline",
        "3s",
        "--retry-period",
        "500ms",
        "--move-concurrency",
        "1",
    ];
    let mut a_args = common.to_vec();
    a_args.extend(["--identity", "replica-a"]);
    let mut b_args = common.to_vec();
    b_args.extend(["--identity", "replica-b"]);
    let a = RunningOperator::for_namespace(&t.ns, &a_args).await?;
    let leases: Api<Lease> = Api::namespaced(t.client.clone(), &t.ns);
    eventually(Duration::from_secs(30), "replica-a leads", || async {
        Ok(leases
            .get_opt("evidence-operator")
            .await?
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .filter(|h| h == "replica-a"))
    })
    .await?;
    let b = RunningOperator::for_namespace(&t.ns, &b_args).await?;
    // Mid-sweep: some clips moved, not all.
    eventually(
        Duration::from_secs(60),
        "replica-a's sweep under way",
        || async {
            let moved = t.keys(&t.cool).await?.len();
            Ok((moved >= 3).then_some(moved))
        },
    )
    .await?;
    a.stop().await?;
    let after_a = t.keys(&t.cool).await?.len();
    eventually(
        Duration::from_secs(90),
        "replica-b finishes the moves",
        || async { Ok((t.keys(&t.cool).await?.len() == n).then_some(())) },
    )
    .await?;
    b.stop().await?;
    assert!(
        after_a < n,
        "replica-a stopped mid-sweep ({after_a} of {n} moved)"
    );

    let records = t.records().await?;
    let by: BTreeSet<&str> = records.iter().map(|r| r.actor.operator.as_str()).collect();
    assert!(
        by.contains("replica-a") && by.contains("replica-b"),
        "{by:?}"
    );
    for r in &records {
        assert_eq!(
            r.actor.lease_holder.as_deref(),
            Some(r.actor.operator.as_str())
        );
        assert_eq!(
            r.actor.lease.as_deref(),
            Some(format!("{}/evidence-operator", t.ns).as_str())
        );
    }
    // Every clip's move recorded exactly once, whoever moved it.
    let mut moves: BTreeMap<String, usize> = BTreeMap::new();
    for r in records.iter().filter(|r| r.action == AuditAction::Moved) {
        *moves
            .entry(r.clip.as_ref().unwrap().key.clone())
            .or_default() += 1;
    }
    assert_eq!(moves.len(), n, "{moves:?}");
    assert!(moves.values().all(|c| *c == 1), "{moves:?}");
    // replica-b's records come after all of replica-a's: one chain, continued.
    let first_b = records
        .iter()
        .position(|r| r.actor.operator == "replica-b")
        .unwrap();
    assert!(
        records[first_b..]
            .iter()
            .all(|r| r.actor.operator == "replica-b")
    );
    assert!(first_b > 0);
    let report = t.verify().await?;
    assert!(report.broken.is_none(), "{report:?}");
    Ok(())
}

/// Measures (and prints) what the audit trail costs against the local MinIO: a
/// 1,000-record batch (one sweep chunk) written with COMPLIANCE retention, and finding
/// the head of a 200-batch chain from storage. Asserts only correctness.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn measure_audit_write_and_head_discovery() -> Result<()> {
    let s3 = servers().s3_client();
    let bucket = unique_name("audit-measure");
    create_bucket(&s3, &bucket, true, true).await?;
    let target = AuditTarget {
        bucket: bucket.clone(),
        prefix: "evidence-audit/ns/unit/".into(),
        retention: Some(chrono::TimeDelta::days(1)),
    };
    let log = AuditLog::with_client(s3.clone(), target.clone())?;
    let chunk = entries(0, 1000);
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..10 {
        let start = Instant::now();
        last = log.append(&actor("op"), "ns/unit", &chunk).await?;
        times.push(start.elapsed());
    }
    let last = last.context("written")?;
    let size = s3
        .head_object()
        .bucket(&bucket)
        .key(&last.key)
        .send()
        .await?
        .content_length()
        .unwrap_or(0);
    times.sort();
    eprintln!(
        "MEASURE audit batch of 1000 records ({size} bytes) with COMPLIANCE retention: median {:?}, max {:?}",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    for i in 10..200 {
        log.append(&actor("op"), "ns/unit", &entries(i, 1)).await?;
    }
    let fresh = AuditLog::with_client(s3.clone(), target.clone())?;
    let start = Instant::now();
    let head = fresh.find_head().await?;
    let found = start.elapsed();
    assert_eq!(head, log.cached_head().await.context("cached")?);
    assert_eq!(head.next_batch, 200);
    eprintln!("MEASURE head discovery over 200 batches (new leader, empty cache): {found:?}");
    let start = Instant::now();
    let objects = fresh.read_all().await?;
    let (v, _) = verify(&target.prefix, &objects, None);
    assert!(v.ok());
    eprintln!(
        "MEASURE audit verify of 200 batches / {} records: {:?}",
        v.records,
        start.elapsed()
    );
    Ok(())
}

/// Write-ahead against the real servers: once the chain cannot be written (here its next
/// batch key is taken by an object that is not a batch, so the writer cannot continue
/// the chain), an expired clip is not deleted; the bucket is Stalled with
/// `AuditTrail=False` and a `AuditWriteFailed` warning. (Before, a chunk was acted on
/// first and recorded after: the clip was deleted and the record lost.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_is_deleted_while_the_audit_trail_cannot_be_written() -> Result<()> {
    use evidence_operator::audit::record::batch_key;
    use k8s_openapi::api::events::v1::Event;
    use kube::api::{ListParams, Patch, PatchParams};

    let t = Tenant::new("audit-wal").await?;
    t.setup().await?;
    let op = RunningOperator::for_namespace(&t.ns, &[]).await?;
    let result = async {
        // The first sweep records the policy: the chain has a head.
        let head = eventually(Duration::from_secs(60), "the first record", || async {
            let trail = t.condition("unit", "AuditTrail").await?;
            Ok(trail.and_then(|(_, reason, message)| {
                (reason == "Recorded").then(|| {
                    message
                        .split("batch=")
                        .nth(1)
                        .and_then(|s| s.split_whitespace().next())
                        .and_then(|b| b.parse::<u64>().ok())
                })?
            }))
        })
        .await?;
        // The next batch key is taken by something that is not a batch.
        let prefix = format!("{ROOT}{}/unit/", t.ns);
        t.s3.put_object()
            .bucket(&t.lock)
            .key(batch_key(&prefix, head + 1))
            .body(ByteStream::from_static(b"not a batch\n"))
            .send()
            .await?;

        t.put_clip("old-non-evidential.mp4", Some("non-evidential"), 40, &[])
            .await?;
        Api::<EvidenceBucket>::namespaced(t.client.clone(), &t.ns)
            .patch(
                "unit",
                &PatchParams::default(),
                // A new generation: sweep now (an unchanged bucket waits for its interval).
                &Patch::Merge(json!({ "spec": { "sweepInterval": "2h" } })),
            )
            .await?;
        let (_, _, message) = eventually(Duration::from_secs(60), "AuditWriteFailed", || async {
            Ok(t.condition("unit", "Stalled")
                .await?
                .filter(|(status, reason, _)| status == "True" && reason == "AuditWriteFailed"))
        })
        .await?;
        let trail = t
            .condition("unit", "AuditTrail")
            .await?
            .context("AuditTrail")?;
        anyhow::ensure!(trail.0 == "False", "{trail:?}");
        anyhow::ensure!(
            t.keys(&t.hot).await?.contains("old-non-evidential.mp4"),
            "an unrecorded delete: the clip is gone ({message})"
        );
        let events = Api::<Event>::namespaced(t.client.clone(), &t.ns);
        let warned = events
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("AuditWriteFailed"));
        anyhow::ensure!(warned, "an AuditWriteFailed event");
        // The metric the EvidenceAuditWriteFailing alert reads.
        let text = op.metrics.render()?;
        let failures: f64 = text
            .lines()
            .filter(|l| l.starts_with("evidence_operator_audit_write_failures_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        anyhow::ensure!(
            failures > 0.0,
            "the alert's metric counts the failure:\n{text}"
        );
        Ok(())
    }
    .await;
    let stopped = op.stop().await;
    result?;
    stopped
}
