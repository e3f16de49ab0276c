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

/// A GET of `url` (plain http, as the test servers speak): (status, body).
async fn http_get(url: &str) -> Result<(u16, Vec<u8>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("not an http URL: {url}"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut conn = tokio::net::TcpStream::connect(host).await?;
    conn.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no HTTP header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no status in {head}"))?;
    ensure!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "chunked answer: {head}"
    );
    Ok((status, raw[split + 4..].to_vec()))
}

fn sha_hex(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// `evidence-operator audit show --bucket BUCKET --request NAME -o json`, as the CLI runs it.
async fn request_records(
    t: &Tenant,
    bucket: &str,
    request: &str,
) -> Result<evidence_operator::cli::audit::Report> {
    use clap::Parser;
    use evidence_operator::cli::{
        Cli, Command,
        audit::{AuditCommand, run_show},
    };
    let argv = [
        "evidence-operator",
        "audit",
        "show",
        "--bucket",
        bucket,
        "--request",
        request,
        "-o",
        "json",
    ];
    let Command::Audit(a) = Cli::try_parse_from(argv)?.command else {
        anyhow::bail!("not audit")
    };
    let AuditCommand::Show(show) = a.command else {
        anyhow::bail!("not show")
    };
    run_show(&show, Some(t.client.clone())).await
}

fn share_args(argv: &[&str]) -> Result<evidence_operator::cli::share::ShareArgs> {
    use clap::Parser;
    use evidence_operator::cli::{Cli, Command};
    let mut all = vec!["evidence-operator", "share"];
    all.extend_from_slice(argv);
    match Cli::try_parse_from(all)?.command {
        Command::Share(a) => Ok(*a),
        _ => anyhow::bail!("not share"),
    }
}

/// A disclosure by officer over the three tiers: its manifest, in the export bucket,
/// lists exactly its clips with their real SHA-256 (and not another officer's), its own
/// hash is in the status and the audit chain; `share` gives links that download the
/// clips, recorded (to whom, by whom, until when) before they are printed; a link past
/// its time is refused by the store; `audit verify` passes and `audit show --request`
/// lists the manifest and every link.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manifest_lists_the_clips_with_their_hashes_and_every_share_is_audited() -> Result<()> {
    let s = servers();
    let t = Tenant::on_backend("disclose", Backend::Minio).await?;
    let export = format!("{}-export", t.ns);
    evidence_operator_tests::tenant::create_bucket(&t.s3, &export, true, false).await?;
    let pc = [(TAG_OFFICER, "PC 4521")];
    let other = [(TAG_OFFICER, "PC 9999")];
    t.put_clip("a-hot.mp4", Some("non-evidential"), 2, &pc)
        .await?;
    t.put_clip_in(
        &t.cool.clone(),
        "b-cool.mp4",
        Some("non-evidential"),
        2,
        &pc,
    )
    .await?;
    t.put_clip("c-held.mp4", Some("non-evidential"), 2, &pc)
        .await?;
    t.put_clip("other.mp4", Some("non-evidential"), 2, &other)
        .await?;
    t.apply_policy(
        "policy",
        json!({ "default": { "retention": "31d", "onExpiry": "Delete" }, "coolAfter": "Forever" }),
    )
    .await?;
    t.apply_bucket("unit", &Backend::Minio.endpoint(s), "1h")
        .await?;
    t.apply_hold(
        "case",
        "01/123/26",
        "charged",
        json!({ "keys": ["c-held.mp4"] }),
    )
    .await?;
    t.apply(json!({
        "apiVersion": "evidence.bwv.io/v1alpha1", "kind": "AccessRequest",
        "metadata": { "name": "cps" },
        "spec": {
            "bucketRef": { "name": "unit" },
            "kind": "Disclosure",
            "reference": "CPS-01-123",
            "receivedAt": "2026-12-01T09:00:00Z",
            "selector": { "officer": "PC 4521" },
            "export": { "bucket": export, "prefix": "disclosures/" },
        }
    }))
    .await?;
    let op = RunningOperator::for_namespace(&t.ns, &[]).await?;
    let requests: Api<AccessRequest> = Api::namespaced(t.client.clone(), &t.ns);
    op.check(async {
        // Ready once the manifest is written with the held clip in legal hold.
        let manifest = eventually(Duration::from_secs(90), "the manifest written", || async {
            let r = requests.get("cps").await?;
            let st = serde_json::to_value(&r.status)?;
            let ready = st["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["reason"] == "ManifestWritten")
            });
            let held = t.keys(&t.lock).await?.contains("c-held.mp4");
            Ok((ready && held && st["manifest"]["clips"] == 3)
                .then(|| r.status.and_then(|s| s.manifest))
                .flatten())
        })
        .await?;
        let key = manifest
            .location
            .strip_prefix(&format!("s3://{export}/"))
            .ok_or_else(|| anyhow::anyhow!("manifest elsewhere: {}", manifest.location))?
            .to_string();
        ensure!(
            key.starts_with(&format!("disclosures/{}/cps/manifest-", t.ns)),
            "{key}"
        );
        let body =
            t.s3.get_object()
                .bucket(&export)
                .key(&key)
                .send()
                .await?
                .body
                .collect()
                .await?
                .into_bytes();
        ensure!(
            sha_hex(&body) == manifest.sha256,
            "the manifest's hash is the status's"
        );
        let doc: Value = serde_json::from_slice(&body)?;
        let clips = doc["clips"].as_array().cloned().unwrap_or_default();
        let keys: Vec<&str> = clips.iter().filter_map(|c| c["key"].as_str()).collect();
        ensure!(
            keys == ["a-hot.mp4", "b-cool.mp4", "c-held.mp4"],
            "exactly the officer's clips: {keys:?}"
        );
        for c in &clips {
            let bucket = match c["tier"].as_str() {
                Some("hot") => &t.hot,
                Some("cool") => &t.cool,
                _ => &t.lock,
            };
            let k = c["key"].as_str().unwrap_or_default();
            let mut get = t.s3.get_object().bucket(bucket).key(k);
            if let Some(v) = c["versionId"].as_str() {
                get = get.version_id(v);
            }
            let bytes = get
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{k} in {bucket}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    )
                })?
                .body
                .collect()
                .await?
                .into_bytes();
            ensure!(
                c["sha256"] == sha_hex(&bytes),
                "{k}: the manifest's SHA-256 is the clip's"
            );
            ensure!(c["officer"] == "PC 4521" && c["size"] == bytes.len());
            ensure!(
                (c["tier"] == "legal-hold") == (c["legalHold"] == true),
                "{k}: hold state {c}"
            );
        }

        // Share: links that download the clips, recorded first.
        let bucket = format!("{}/unit", t.ns);
        let request = format!("{}/cps", t.ns);
        let args = share_args(&[
            "--request",
            &request,
            "--recipient",
            "CPS case 01/123",
            "--expires",
            "1h",
        ])?;
        let report = evidence_operator::cli::share::share(
            t.client.clone(),
            &args,
            std::time::SystemTime::now(),
        )
        .await?;
        ensure!(
            report.links.len() == 3 && !report.issued_by.is_empty(),
            "{report:?}"
        );
        for l in &report.links {
            let (status, bytes) = http_get(&l.url).await?;
            ensure!(status == 200, "{} downloads: {status}", l.key);
            ensure!(sha_hex(&bytes) == l.sha256, "{} downloads the clip", l.key);
        }
        // A link whose hour is over is refused by the store.
        let old = std::time::SystemTime::now() - Duration::from_secs(2 * 3600);
        let args = share_args(&[
            "--request",
            &request,
            "--recipient",
            "late",
            "--expires",
            "1h",
            "--key",
            "a-hot.mp4",
        ])?;
        let late = evidence_operator::cli::share::share(t.client.clone(), &args, old).await?;
        let (status, _) = http_get(&late.links[0].url).await?;
        ensure!(status == 403, "an expired link is refused: {status}");

        // The chain: verified, and the request's records.
        let shown = request_records(&t, &bucket, "cps").await?;
        ensure!(
            shown.broken.is_none(),
            "the chain verifies: {:?}",
            shown.broken
        );
        let out: Value = serde_json::from_str(&shown.output)?;
        let records = out["records"].as_array().cloned().unwrap_or_default();
        let written: Vec<&Value> = records
            .iter()
            .filter(|r| r["action"] == "manifest_written")
            .collect();
        ensure!(
            written.len() == 1 && written[0]["sha256"] == manifest.sha256,
            "one manifest record, its hash: {records:?}"
        );
        let shared: Vec<&Value> = records.iter().filter(|r| r["action"] == "shared").collect();
        ensure!(shared.len() == 4, "every link recorded: {shared:?}");
        ensure!(
            shared
                .iter()
                .filter(|r| r["share"]["recipient"] == "CPS case 01/123")
                .count()
                == 3
                && shared
                    .iter()
                    .all(|r| r["share"]["issuedBy"] == report.issued_by
                        && r["share"]["expires"].is_string()),
            "to whom, by whom, until when: {shared:?}"
        );
        ensure!(
            records.len() == written.len() + shared.len(),
            "only the request's records: {records:?}"
        );
        Ok(())
    })
    .await
}

/// An export location whose store is not in the UK gets nothing: `Ready=False`,
/// `ExportRefused`, and its bucket stays empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_location_outside_the_uk_is_refused_and_nothing_is_written() -> Result<()> {
    let s = servers();
    let t = Tenant::on_backend("disclose-nonuk", Backend::Minio).await?;
    let abroad = s.non_uk_s3_client();
    let export = format!("{}-abroad", t.ns);
    evidence_operator_tests::tenant::create_bucket(&abroad, &export, false, false).await?;
    t.put_clip("a.mp4", Some("non-evidential"), 2, &[(TAG_OFFICER, "PC 1")])
        .await?;
    t.apply_policy(
        "policy",
        json!({ "default": { "retention": "31d", "onExpiry": "Delete" } }),
    )
    .await?;
    t.apply_bucket("unit", &Backend::Minio.endpoint(s), "1h")
        .await?;
    t.apply(json!({
        "apiVersion": "evidence.bwv.io/v1alpha1", "kind": "AccessRequest",
        "metadata": { "name": "sar" },
        "spec": {
            "bucketRef": { "name": "unit" },
            "kind": "SubjectAccess",
            "reference": "SAR-1",
            "receivedAt": "2026-12-01T09:00:00Z",
            "selector": { "officer": "PC 1" },
            // declared in the UK (the bucket's region), but the store says otherwise
            "export": { "bucket": export, "endpoint": s.non_uk_endpoint },
        }
    }))
    .await?;
    let op = RunningOperator::for_namespace(&t.ns, &[]).await?;
    let requests: Api<AccessRequest> = Api::namespaced(t.client.clone(), &t.ns);
    op.check(async {
        let msg = eventually(Duration::from_secs(90), "the export refused", || async {
            let st = serde_json::to_value(requests.get("sar").await?.status)?;
            Ok(st["conditions"].as_array().and_then(|cs| {
                cs.iter()
                    .find(|c| {
                        c["type"] == "Ready"
                            && c["status"] == "False"
                            && c["reason"] == "ExportRefused"
                    })
                    .map(|c| c["message"].to_string())
            }))
        })
        .await?;
        ensure!(
            msg.contains(&s.non_uk_region),
            "the message names the region found: {msg}"
        );
        let listed = abroad.list_objects_v2().bucket(&export).send().await?;
        ensure!(
            listed.key_count().unwrap_or(0) == 0,
            "nothing written abroad: {listed:?}"
        );
        // The request still preserves its clip.
        let st = serde_json::to_value(requests.get("sar").await?.status)?;
        ensure!(st["clipsFound"] == 1 && st["manifest"].is_null(), "{st}");
        Ok(())
    })
    .await
}

/// `export.copy`: every clip found is copied into the export location (one larger than
/// a part, sent in parts), each copy's SHA-256 the clip's and recorded (`exported`),
/// under a finalizer; closed, the copies stay for `keepFor`, then (by the operator's
/// clock, two days on) are deleted, each deletion recorded, the manifest kept, the
/// finalizer gone, and the evidence tiers untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn export_copies_are_verified_and_deleted_keep_for_after_closing() -> Result<()> {
    use evidence_operator::api::{
        access_request::EXPORT_FINALIZER,
        clip::{TAG_CATEGORY, TAG_RECORDED_AT, Tag},
    };
    let s = servers();
    let t = Tenant::on_backend("disclose-copy", Backend::Minio).await?;
    let export = format!("{}-export", t.ns);
    evidence_operator_tests::tenant::create_bucket(&t.s3, &export, true, false).await?;
    let pc = [(TAG_OFFICER, "PC 4521")];
    t.put_clip("small.mp4", Some("non-evidential"), 2, &pc)
        .await?;
    t.put_clip_in(&t.cool.clone(), "cool.mp4", Some("non-evidential"), 2, &pc)
        .await?;
    t.put_clip(
        "other.mp4",
        Some("non-evidential"),
        2,
        &[(TAG_OFFICER, "PC 1")],
    )
    .await?;
    // 17 MiB: more than one 16 MiB part.
    let big: Vec<u8> = (0..17 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    t.s3.put_object()
        .bucket(&t.hot)
        .key("big.mp4")
        .body(big.clone().into())
        .send()
        .await?;
    evidence_operator_tests::tenant::retag(
        &t.s3,
        &t.hot,
        "big.mp4",
        &[
            Tag::new(TAG_OFFICER, "PC 4521"),
            Tag::new(TAG_CATEGORY, "non-evidential"),
            Tag::new(
                TAG_RECORDED_AT,
                (Utc::now() - TimeDelta::days(2)).to_rfc3339(),
            ),
        ],
    )
    .await?;
    t.apply_policy(
        "policy",
        json!({ "default": { "retention": "31d", "onExpiry": "Delete" }, "coolAfter": "Forever" }),
    )
    .await?;
    t.apply_bucket("unit", &Backend::Minio.endpoint(s), "1h")
        .await?;
    let mut request = json!({
        "apiVersion": "evidence.bwv.io/v1alpha1", "kind": "AccessRequest",
        "metadata": { "name": "cps" },
        "spec": {
            "bucketRef": { "name": "unit" },
            "kind": "Disclosure",
            "reference": "CPS-01-124",
            "receivedAt": "2026-12-01T09:00:00Z",
            "selector": { "officer": "PC 4521" },
            "export": { "bucket": export, "copy": true, "keepFor": "1d" },
        }
    });
    t.apply(request.clone()).await?;
    let requests: Api<AccessRequest> = Api::namespaced(t.client.clone(), &t.ns);
    let place = format!("{}/cps/", t.ns);
    let export_keys = || async {
        let listed = t.s3.list_objects_v2().bucket(&export).send().await?;
        anyhow::Ok(
            listed
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string))
                .collect::<BTreeSet<String>>(),
        )
    };
    let op = RunningOperator::for_namespace(&t.ns, &[]).await?;
    op.check(async {
        eventually(Duration::from_secs(120), "the copies made", || async {
            let r = requests.get("cps").await?;
            let st = serde_json::to_value(&r.status)?;
            Ok((st["copies"] == 3 && st["manifest"]["clips"] == 3).then_some(()))
        })
        .await?;
        let r = requests.get("cps").await?;
        ensure!(
            r.metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == EXPORT_FINALIZER),
            "the copies' finalizer"
        );
        let keys = export_keys().await?;
        for k in ["small.mp4", "cool.mp4", "big.mp4"] {
            ensure!(
                keys.contains(&format!("{place}clips/{k}")),
                "{k} copied: {keys:?}"
            );
        }
        ensure!(
            !keys.iter().any(|k| k.contains("other.mp4")),
            "not another officer's clip"
        );
        let copy =
            t.s3.get_object()
                .bucket(&export)
                .key(format!("{place}clips/big.mp4"))
                .send()
                .await?
                .body
                .collect()
                .await?
                .into_bytes();
        ensure!(
            sha_hex(&copy) == sha_hex(&big),
            "the big copy's bytes are the clip's"
        );
        // Closed: the copies stay for keepFor.
        request["spec"]["closed"] = json!(true);
        t.apply(request.clone()).await?;
        eventually(Duration::from_secs(60), "closedAt", || async {
            let st = serde_json::to_value(requests.get("cps").await?.status)?;
            Ok(st["closedAt"].is_string().then_some(()))
        })
        .await?;
        ensure!(
            export_keys()
                .await?
                .iter()
                .filter(|k| k.contains("/clips/"))
                .count()
                == 3,
            "kept within keepFor"
        );
        Ok(())
    })
    .await?;

    // Two days later by the operator's clock: keepFor has passed.
    let mut later = evidence_operator_tests::operator::settings(&t.ns, &[])?;
    later.controllers.clock_offset =
        evidence_operator_tests::operator::CLOCK_AHEAD + TimeDelta::days(2);
    let op = RunningOperator::start(s.kube_client().await?, later)?;
    op.check(async {
        let st = eventually(Duration::from_secs(120), "the copies deleted", || async {
            let r = requests.get("cps").await?;
            let st = serde_json::to_value(&r.status)?;
            let unfinalized = !r
                .metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == EXPORT_FINALIZER);
            Ok((st["copiesDeletedAt"].is_string() && unfinalized).then_some(st))
        })
        .await?;
        ensure!(st["copies"] == 0, "{st}");
        let keys = export_keys().await?;
        ensure!(
            !keys.iter().any(|k| k.contains("/clips/")),
            "no copy left: {keys:?}"
        );
        ensure!(
            keys.iter().any(|k| k.contains("/manifest-")),
            "the manifest stays: {keys:?}"
        );
        ensure!(
            t.keys(&t.hot).await?.contains("big.mp4")
                && t.keys(&t.cool).await?.contains("cool.mp4"),
            "the evidence is untouched"
        );
        Ok(())
    })
    .await?;
    // Every copy and every deletion recorded.
    let bucket = format!("{}/unit", t.ns);
    let shown = request_records(&t, &bucket, "cps").await?;
    ensure!(shown.broken.is_none(), "{:?}", shown.broken);
    let out: Value = serde_json::from_str(&shown.output)?;
    let count = |a: &str| {
        out["records"]
            .as_array()
            .map_or(0, |r| r.iter().filter(|x| x["action"] == a).count())
    };
    ensure!(
        count("exported") == 3 && count("export_deleted") == 3,
        "{out}"
    );
    Ok(())
}

/// A request with export copies that is deleted (not closed) stays, held by its
/// finalizer, until its copies are deleted `keepFor` after the deletion; then it goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_request_keeps_its_finalizer_until_its_copies_are_deleted() -> Result<()> {
    let s = servers();
    let t = Tenant::on_backend("disclose-del", Backend::Minio).await?;
    let export = format!("{}-export", t.ns);
    evidence_operator_tests::tenant::create_bucket(&t.s3, &export, true, false).await?;
    t.put_clip("a.mp4", Some("non-evidential"), 2, &[(TAG_OFFICER, "PC 7")])
        .await?;
    t.apply_policy(
        "policy",
        json!({ "default": { "retention": "31d", "onExpiry": "Delete" } }),
    )
    .await?;
    t.apply_bucket("unit", &Backend::Minio.endpoint(s), "1h")
        .await?;
    t.apply(json!({
        "apiVersion": "evidence.bwv.io/v1alpha1", "kind": "AccessRequest",
        "metadata": { "name": "sar" },
        "spec": {
            "bucketRef": { "name": "unit" },
            "kind": "SubjectAccess",
            "reference": "SAR-7",
            "receivedAt": "2026-12-01T09:00:00Z",
            "selector": { "officer": "PC 7" },
            "export": { "bucket": export, "copy": true, "keepFor": "3d" },
        }
    }))
    .await?;
    let requests: Api<AccessRequest> = Api::namespaced(t.client.clone(), &t.ns);
    let copies = || async {
        let listed = t.s3.list_objects_v2().bucket(&export).send().await?;
        anyhow::Ok(
            listed
                .contents()
                .iter()
                .filter(|o| o.key().is_some_and(|k| k.contains("/clips/")))
                .count(),
        )
    };
    let op = RunningOperator::for_namespace(&t.ns, &[]).await?;
    op.check(async {
        eventually(Duration::from_secs(90), "the copy made", || async {
            let st = serde_json::to_value(requests.get("sar").await?.status)?;
            Ok((st["copies"] == 1).then_some(()))
        })
        .await?;
        requests.delete("sar", &Default::default()).await?;
        // (the operator's clock runs two days ahead; keepFor is three)
        let r = requests.get("sar").await?;
        ensure!(
            r.metadata.deletion_timestamp.is_some(),
            "being deleted, held by the finalizer"
        );
        ensure!(copies().await? == 1, "the copy stays within keepFor");
        Ok(())
    })
    .await?;
    let mut later = evidence_operator_tests::operator::settings(&t.ns, &[])?;
    later.controllers.clock_offset =
        evidence_operator_tests::operator::CLOCK_AHEAD + TimeDelta::days(2);
    let op = RunningOperator::start(s.kube_client().await?, later)?;
    op.check(async {
        eventually(Duration::from_secs(90), "the request gone", || async {
            Ok(requests.get_opt("sar").await?.is_none().then_some(()))
        })
        .await?;
        ensure!(copies().await? == 0, "its copy deleted");
        ensure!(
            t.keys(&t.hot).await?.contains("a.mp4"),
            "the clip itself untouched"
        );
        Ok(())
    })
    .await
}
