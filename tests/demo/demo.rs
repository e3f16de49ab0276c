//! `evidence-demo`: the data side of `make demo`.
//!
//! The buckets and keys are those of `deploy/examples/evidencebucket.yaml`: hot and cool
//! share bucket `met-bwv-westminster` under the prefixes `hot/` and `cool/`, and the
//! legal-hold tier is `met-bwv-westminster-legal-hold` (Object Lock).
//!
//! - `evidence-demo seed --env FILE --count N` creates the buckets in the local MinIO
//!   and uploads N small synthetic clips to the hot tier, tagged with categories,
//!   cameras, officers, cases and recording times spread over months and years, plus
//!   the clips `deploy/examples/legalhold.yaml` selects.
//! - `evidence-demo operate --env FILE --namespace NS` runs the operator in-process, with
//!   its clock two days ahead, so that clips uploaded a moment ago are past the 24-hour
//!   safety floor (which counts from upload time too) and the lifecycle shows at once.
//! - `evidence-demo watch --env FILE` prints a live table of clips per tier and category
//!   (and how many are under legal hold) every two seconds until interrupted.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};
use aws_sdk_s3::{
    Client,
    types::{BucketLocationConstraint, CreateBucketConfiguration, ObjectLockLegalHoldStatus},
};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use evidence_operator::{
    api::clip::{TAG_CAMERA, TAG_CASE, TAG_CATEGORY, TAG_OFFICER, TAG_RECORDED_AT},
    storage::tagging_query,
};
use evidence_operator_tests::{RunningOperator, Servers};
use futures::{StreamExt, TryStreamExt, stream};

/// The hot and cool tiers' bucket, as in deploy/examples/evidencebucket.yaml.
const BUCKET: &str = "met-bwv-westminster";
/// The clip deploy/examples/cliprestore.yaml restores, and when it was recorded.
const MISTAKEN_CLIP: (&str, &str) = ("2026/10/28/BWV-0042/clip-0007.mp4", "2026-10-28T10:12:00Z");
/// The legal-hold tier's bucket.
const HOLD_BUCKET: &str = "met-bwv-westminster-legal-hold";
/// The case deploy/examples/legalhold.yaml holds.
const CASE: &str = "01/123456/26";

/// (category, weight, maximum age in days of its synthetic recordings)
const MIX: &[(&str, u32, i64)] = &[
    ("non-evidential", 50, 90),
    ("domestic-abuse", 10, 900),
    ("stop-and-search", 10, 900),
    ("use-of-force", 8, 900),
    ("mopi-group-1", 4, 4000),
    ("mopi-group-2", 6, 4500),
    ("mopi-group-3", 10, 3000),
    ("", 2, 60),
];

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env = PathBuf::from(arg(&args, "--env").context("--env FILE is required")?);
    let servers = Servers::from_env_file(&env)?;
    let s3 = servers.s3_client();
    match args.first().map(String::as_str) {
        Some("seed") => {
            let count: usize = arg(&args, "--count")
                .unwrap_or_else(|| "300".into())
                .parse()?;
            seed(&s3, count).await?;
            ingest_dock(&servers).await
        }
        Some("operate") => {
            let ns = arg(&args, "--namespace").context("--namespace NS is required")?;
            operate(&servers, &ns).await
        }
        Some("watch") => {
            let extras = WatchExtras {
                timeline: arg(&args, "--timeline").map(PathBuf::from),
                kubectl: arg(&args, "--kubectl").map(PathBuf::from),
                namespace: arg(&args, "--namespace"),
                kubeconfig: servers.kubeconfig.clone(),
            };
            watch(&s3, &extras).await
        }
        _ => bail!(
            "usage: evidence-demo (seed|operate|watch) --env FILE [--count N] [--namespace NS]"
        ),
    }
}

/// One synthetic clip: key (without tier prefix) and tags.
fn clip(i: usize, now: DateTime<Utc>) -> (String, Vec<(&'static str, String)>) {
    let total_weight: u32 = MIX.iter().map(|m| m.1).sum();
    // a deterministic spread, so every run of the demo looks the same
    let pick = (i as u32).wrapping_mul(7919) % total_weight;
    let mut acc = 0;
    let (category, _, max_days) = MIX
        .iter()
        .find(|m| {
            acc += m.1;
            pick < acc
        })
        .copied()
        .unwrap_or(MIX[0]);
    let age_minutes = ((i as i64 * 104_729) % (max_days * 24 * 60)).max(60);
    let recorded = now - chrono::Duration::minutes(age_minutes);
    let camera = format!("BWV-{:04}", 1 + i % 40);
    let mut tags = vec![
        (
            TAG_RECORDED_AT,
            recorded.to_rfc3339_opts(SecondsFormat::Secs, true),
        ),
        (TAG_CAMERA, camera.clone()),
        (TAG_OFFICER, format!("PC{}", 1000 + (i % 97))),
    ];
    if !category.is_empty() {
        tags.push((TAG_CATEGORY, category.to_string()));
    }
    if category != "non-evidential" && !category.is_empty() && i.is_multiple_of(9) {
        tags.push((TAG_CASE, CASE.to_string()));
    }
    let key = format!("{}/{camera}/clip-{i:04}.mp4", recorded.format("%Y/%m/%d"));
    (key, tags)
}

/// The clips deploy/examples/legalhold.yaml names or selects by camera and window.
fn example_clips() -> Vec<(String, Vec<(&'static str, String)>)> {
    let at = |h: u32, m: u32| {
        Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0)
            .single()
            .unwrap_or_else(Utc::now)
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    };
    let mk = |key: &str, camera: &str, when: String, category: &str| {
        (
            key.to_string(),
            vec![
                (TAG_RECORDED_AT, when),
                (TAG_CAMERA, camera.to_string()),
                (TAG_CATEGORY, category.to_string()),
            ],
        )
    };
    vec![
        mk(
            "2026/03/01/BWV-0042/clip-0001.mp4",
            "BWV-0042",
            at(13, 5),
            "use-of-force",
        ),
        mk(
            "2026/03/01/BWV-0042/clip-0002.mp4",
            "BWV-0042",
            at(14, 40),
            "non-evidential",
        ),
        mk(
            "2026/03/01/BWV-0042/clip-0003.mp4",
            "BWV-0042",
            at(16, 10),
            "non-evidential",
        ),
        mk(
            "2026/03/01/BWV-0042/clip-0004.mp4",
            "BWV-0042",
            at(18, 0),
            "non-evidential",
        ),
        mk(
            "2026/03/01/BWV-0017/clip-0009.mp4",
            "BWV-0017",
            at(13, 20),
            "stop-and-search",
        ),
    ]
}

async fn seed(s3: &Client, count: usize) -> Result<()> {
    for (bucket, lock) in [(BUCKET, false), (HOLD_BUCKET, true)] {
        let mut req = s3
            .create_bucket()
            .bucket(bucket)
            .create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::EuWest2)
                    .build(),
            );
        if lock {
            req = req.object_lock_enabled_for_bucket(true);
        }
        match req.send().await {
            Ok(_) => println!(
                "created bucket {bucket}{}",
                if lock { " (Object Lock)" } else { "" }
            ),
            Err(e) if format!("{e:?}").contains("BucketAlreadyOwnedByYou") => {
                println!("bucket {bucket} exists")
            }
            Err(e) => return Err(e).with_context(|| format!("creating bucket {bucket}")),
        }
    }
    // Versioned, so that the policy's restoreWindow can soft-delete (and a ClipRestore
    // bring a clip back).
    evidence_operator_tests::tenant::enable_versioning(s3, BUCKET).await?;
    // The clip deploy/examples/cliprestore.yaml restores: tagged non-evidential at the
    // dock by mistake, so deleted by the 31-day rule (softly) when the operator starts.
    let (key, recorded) = MISTAKEN_CLIP;
    let tagging = tagging_query(
        [
            (TAG_CATEGORY, "non-evidential"),
            (TAG_RECORDED_AT, recorded),
            (TAG_CAMERA, "BWV-0042"),
        ]
        .iter()
        .map(|(k, v)| (*k, *v)),
    );
    s3.put_object()
        .bucket(BUCKET)
        .key(format!("hot/{key}"))
        .tagging(tagging)
        .content_type("video/mp4")
        .body(
            format!("body-worn video clip {key}: the arrest\n")
                .repeat(64)
                .into_bytes()
                .into(),
        )
        .send()
        .await
        .with_context(|| format!("uploading {key}"))?;
    let now = Utc::now();
    // The Met scenario's own clips come from a dock folder: see ingest_dock.
    let clips = (0..count).map(|i| clip(i, now));
    let uploaded = stream::iter(clips)
        .map(|(key, tags)| async move {
            let tagging = tagging_query(tags.iter().map(|(k, v)| (k, v)));
            let body = format!("synthetic body-worn video clip {key}\n").repeat(64);
            s3.put_object()
                .bucket(BUCKET)
                .key(format!("hot/{key}"))
                .tagging(tagging)
                .content_type("video/mp4")
                .body(body.into_bytes().into())
                .send()
                .await
                .with_context(|| format!("uploading {key}"))?;
            anyhow::Ok(())
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    println!("uploaded {} clips to s3://{BUCKET}/hot/", uploaded.len());
    Ok(())
}

/// The Met scenario's clips (those deploy/examples/legalhold.yaml names or selects) start
/// at a docking station: written as MP4s with their sidecars into a dock folder and
/// ingested into the hot tier with `evidence-operator ingest`'s library function
/// (plain S3 settings: the operator is not running yet), each with its `ingested`
/// record in the EvidenceBucket's audit chain. A second seed finds them already present.
async fn ingest_dock(servers: &Servers) -> Result<()> {
    use evidence_operator::{
        cli::{Cli, Command},
        ingest::{Quiet, ingest, mp4::minimal_mp4},
    };
    let dock = servers.dir.join("dock");
    std::fs::create_dir_all(&dock)?;
    for (key, tags) in example_clips() {
        let stem = key
            .rsplit('/')
            .next()
            .and_then(|f| f.strip_suffix(".mp4"))
            .context("clip key")?;
        let tag = |k: &str| tags.iter().find(|(t, _)| *t == k).map(|(_, v)| v.clone());
        let body = format!("synthetic body-worn video clip {key}\n").repeat(64);
        std::fs::write(
            dock.join(format!("{stem}.mp4")),
            minimal_mp4(None, body.as_bytes()),
        )?;
        let sidecar = serde_json::json!({
            "schema": "evidence.bwv.io/ingest-sidecar/v1",
            "category": tag(TAG_CATEGORY), "camera": tag(TAG_CAMERA),
            "recordedAt": tag(TAG_RECORDED_AT), "officer": "PC 4567",
        });
        std::fs::write(dock.join(format!("{stem}.json")), sidecar.to_string())?;
    }
    let argv = [
        "evidence-operator",
        "ingest",
        dock.to_str().context("dock path")?,
        "--hot-bucket",
        BUCKET,
        "--hot-prefix",
        "hot/",
        "--region",
        "eu-west-2",
        "--endpoint",
        &servers.s3_endpoint,
        "--audit-bucket",
        HOLD_BUCKET,
        "--audit-chain",
        "bwv-westminster/westminster",
        "--dock-host",
        "demo-dock",
    ];
    let Command::Ingest(args) = <Cli as clap::Parser>::try_parse_from(argv)?.command else {
        bail!("not an ingest command");
    };
    let mut target = evidence_operator::cli::ingest::plain_target(&args)?;
    target.config.credentials = Some(evidence_operator::storage::StaticCredentials {
        access_key_id: servers.s3_access_key.clone(),
        secret_access_key: servers.s3_secret_key.clone(),
        session_token: None,
    });
    let report = ingest(&target, &args.options(), &Quiet).await?;
    print!("dock {}: {}", dock.display(), report.to_text());
    if !report.ok() {
        bail!("the dock's clips were not all ingested");
    }
    Ok(())
}

async fn operate(servers: &Servers, ns: &str) -> Result<()> {
    evidence_operator::runtime::telemetry::init(
        evidence_operator::runtime::telemetry::LogFormat::Text,
    );
    // As the chart runs it: with a clip catalogue.
    let catalogue = servers.dir.join("catalogue");
    let catalogue = catalogue.to_string_lossy();
    let settings = evidence_operator_tests::operator::settings_from_argv(&[
        "evidence-operator",
        "run",
        "--watch-namespace",
        ns,
        "--leader-elect=false",
        "--catalogue-dir",
        &catalogue,
    ])?;
    let op = RunningOperator::start(servers.kube_client().await?, settings)?;
    let _ = tokio::signal::ctrl_c().await;
    op.stop().await
}

#[derive(Default)]
struct TierCount {
    clips: usize,
    held: usize,
    by_category: BTreeMap<String, usize>,
}

async fn count_tier(
    s3: &Client,
    bucket: &str,
    prefix: &str,
    check_holds: bool,
) -> Result<TierCount> {
    let mut out = TierCount::default();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.with_context(|| format!("listing {bucket}/{prefix}"))?;
        for obj in page.contents() {
            let Some(key) = obj.key() else { continue };
            // The operator's audit chain lives in the legal-hold bucket too, and its
            // storage claims in every bucket: not clips.
            if key.starts_with("evidence-audit/")
                || key.starts_with(evidence_operator::storage::claim::CLAIMS_PREFIX)
            {
                continue;
            }
            // A clip moved away between the listing and this call is counted where it
            // lands, at the next refresh.
            let Ok(tags) = s3.get_object_tagging().bucket(bucket).key(key).send().await else {
                continue;
            };
            out.clips += 1;
            let category = tags
                .tag_set()
                .iter()
                .find(|t| t.key() == TAG_CATEGORY)
                .map(|t| t.value().to_string())
                .unwrap_or_else(|| "(none)".into());
            *out.by_category.entry(category).or_default() += 1;
            if check_holds {
                let hold = s3
                    .get_object_legal_hold()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await;
                let on = hold
                    .ok()
                    .and_then(|h| h.legal_hold().and_then(|l| l.status()).cloned());
                if on == Some(ObjectLockLegalHoldStatus::On) {
                    out.held += 1;
                }
            }
        }
    }
    Ok(out)
}

/// What the live table shows besides the tiers.
struct WatchExtras {
    timeline: Option<PathBuf>,
    kubectl: Option<PathBuf>,
    namespace: Option<String>,
    kubeconfig: PathBuf,
}

async fn watch(s3: &Client, extras: &WatchExtras) -> Result<()> {
    loop {
        let counts = [
            ("hot", count_tier(s3, BUCKET, "hot/", false).await?),
            ("cool", count_tier(s3, BUCKET, "cool/", false).await?),
            ("legal-hold", count_tier(s3, HOLD_BUCKET, "", true).await?),
        ];
        let mut categories: Vec<String> = counts
            .iter()
            .flat_map(|(_, c)| c.by_category.keys().cloned())
            .collect();
        categories.sort();
        categories.dedup();
        let mut screen = String::from("\x1b[2J\x1b[H");
        screen += &format!(
            "evidence-operator demo  {}   (Ctrl-C to stop)\n\n{:<18}",
            Utc::now().format("%H:%M:%S"),
            "category"
        );
        for (tier, _) in &counts {
            screen += &format!("{tier:>12}");
        }
        screen += "\n";
        for cat in &categories {
            screen += &format!("{cat:<18}");
            for (_, c) in &counts {
                screen += &format!("{:>12}", c.by_category.get(cat).copied().unwrap_or(0));
            }
            screen += "\n";
        }
        screen += &format!("{:<18}", "TOTAL");
        for (_, c) in &counts {
            screen += &format!("{:>12}", c.clips);
        }
        screen += &format!("\n\nunder S3 legal hold: {}\n", counts[2].1.held);
        if let (Some(kubectl), Some(ns)) = (&extras.kubectl, &extras.namespace) {
            let out = std::process::Command::new(kubectl)
                .arg("--kubeconfig")
                .arg(&extras.kubeconfig)
                .args(["-n", ns, "get", "evidencebuckets,legalholds,cliprestores"])
                .output();
            if let Ok(out) = out {
                screen += &format!("\n{}", String::from_utf8_lossy(&out.stdout));
            }
        }
        if let Some(text) = extras
            .timeline
            .as_ref()
            .and_then(|t| std::fs::read_to_string(t).ok())
        {
            screen += &format!("\ntimeline:\n{text}");
        }
        print!("{screen}");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
