//! `evidence-demo`: the data side of `make demo`.
//!
//! - `evidence-demo seed --env FILE --namespace NS --prefix P --count N` creates the hot,
//!   cool and legal-hold buckets in the local MinIO (legal-hold with Object Lock) and
//!   uploads N small synthetic clips, tagged with categories, cameras, officers, cases
//!   and recording times spread over the past months and years.
//! - `evidence-demo watch --env FILE --prefix P` prints a live table of clips per tier
//!   (and how many are under legal hold) every two seconds until interrupted.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};
use aws_sdk_s3::{
    Client,
    types::{CreateBucketConfiguration, ObjectLockLegalHoldStatus, Tag, Tagging},
};
use chrono::{SecondsFormat, Utc};
use evidence_operator::api::clip::{
    TAG_CAMERA, TAG_CASE, TAG_CATEGORY, TAG_OFFICER, TAG_RECORDED_AT,
};
use evidence_operator_tests::Servers;
use futures::{StreamExt, TryStreamExt, stream};

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
    let prefix = arg(&args, "--prefix").unwrap_or_else(|| "demo".into());
    let s3 = servers.s3_client();
    match args.first().map(String::as_str) {
        Some("seed") => {
            let count: usize = arg(&args, "--count")
                .unwrap_or_else(|| "300".into())
                .parse()?;
            seed(&s3, &prefix, count).await
        }
        Some("watch") => {
            let extras = WatchExtras {
                timeline: arg(&args, "--timeline").map(PathBuf::from),
                kubectl: arg(&args, "--kubectl").map(PathBuf::from),
                namespace: arg(&args, "--namespace"),
                kubeconfig: servers.kubeconfig.clone(),
            };
            watch(&s3, &prefix, &extras).await
        }
        _ => bail!("usage: evidence-demo (seed|watch) --env FILE [--prefix P] [--count N]"),
    }
}

/// Bucket names of the three tiers.
fn buckets(prefix: &str) -> [(String, &'static str); 3] {
    [
        (format!("{prefix}-hot"), "hot"),
        (format!("{prefix}-cool"), "cool"),
        (format!("{prefix}-legal-hold"), "legal-hold"),
    ]
}

async fn seed(s3: &Client, prefix: &str, count: usize) -> Result<()> {
    for (bucket, tier) in buckets(prefix) {
        let mut req = s3
            .create_bucket()
            .bucket(&bucket)
            .create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest2)
                    .build(),
            );
        if tier == "legal-hold" {
            req = req.object_lock_enabled_for_bucket(true);
        }
        match req.send().await {
            Ok(_) => println!("created bucket {bucket} ({tier})"),
            Err(e) if format!("{e:?}").contains("BucketAlreadyOwnedByYou") => {
                println!("bucket {bucket} exists")
            }
            Err(e) => return Err(e).with_context(|| format!("creating bucket {bucket}")),
        }
    }
    let hot = format!("{prefix}-hot");
    let total_weight: u32 = MIX.iter().map(|m| m.1).sum();
    let now = Utc::now();
    let uploads = (0..count).map(|i| {
        // a deterministic spread, so every run of the demo looks the same
        let pick = (i as u32 * 7919) % total_weight;
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
        let camera = format!("cam-{:03}", i % 40);
        let key = format!(
            "clips/{camera}/{}-{i:05}.mp4",
            recorded.format("%Y%m%dT%H%M%S")
        );
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
        if category != "non-evidential" && !category.is_empty() && i % 3 == 0 {
            tags.push((TAG_CASE, format!("CASE-{}", 100 + i % 5)));
        }
        (key, tags, i)
    });
    let hot_ref = &hot;
    stream::iter(uploads)
        .map(|(key, tags, i)| async move {
            let tagging = Tagging::builder()
                .set_tag_set(Some(
                    tags.iter()
                        .map(|(k, v)| Tag::builder().key(*k).value(v).build())
                        .collect::<Result<Vec<_>, _>>()?,
                ))
                .build()?;
            let tag_query = tagging
                .tag_set()
                .iter()
                .map(|t| format!("{}={}", urlencode(t.key()), urlencode(t.value())))
                .collect::<Vec<_>>()
                .join("&");
            let body = format!("synthetic body-worn video clip {i}\n").repeat(64);
            s3.put_object()
                .bucket(hot_ref)
                .key(&key)
                .tagging(tag_query)
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
    println!("uploaded {count} clips to {hot}");
    Ok(())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Default)]
struct TierCount {
    clips: usize,
    held: usize,
    by_category: BTreeMap<String, usize>,
}

async fn count_tier(s3: &Client, bucket: &str, check_holds: bool) -> Result<TierCount> {
    let mut out = TierCount::default();
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.with_context(|| format!("listing {bucket}"))?;
        for obj in page.contents() {
            let Some(key) = obj.key() else { continue };
            out.clips += 1;
            let tags = s3
                .get_object_tagging()
                .bucket(bucket)
                .key(key)
                .send()
                .await?;
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

async fn watch(s3: &Client, prefix: &str, extras: &WatchExtras) -> Result<()> {
    loop {
        let mut counts = Vec::new();
        for (bucket, tier) in buckets(prefix) {
            counts.push((tier, count_tier(s3, &bucket, tier == "legal-hold").await?));
        }
        let mut categories: Vec<String> = counts
            .iter()
            .flat_map(|(_, c)| c.by_category.keys().cloned())
            .collect();
        categories.sort();
        categories.dedup();
        print!("\x1b[2J\x1b[H");
        println!(
            "evidence-operator demo  {}   (Ctrl-C to stop)\n",
            Utc::now().format("%H:%M:%S")
        );
        print!("{:<18}", "category");
        for (tier, _) in &counts {
            print!("{tier:>12}");
        }
        println!();
        for cat in &categories {
            print!("{cat:<18}");
            for (_, c) in &counts {
                print!("{:>12}", c.by_category.get(cat).copied().unwrap_or(0));
            }
            println!();
        }
        print!("{:<18}", "TOTAL");
        for (_, c) in &counts {
            print!("{:>12}", c.clips);
        }
        println!();
        if let Some((_, held)) = counts.iter().find(|(t, _)| *t == "legal-hold") {
            println!("\nunder S3 legal hold: {}", held.held);
        }
        if let (Some(kubectl), Some(ns)) = (&extras.kubectl, &extras.namespace) {
            let out = std::process::Command::new(kubectl)
                .arg("--kubeconfig")
                .arg(&extras.kubeconfig)
                .args(["-n", ns, "get", "evidencebuckets,legalholds"])
                .output();
            if let Ok(out) = out {
                println!("\n{}", String::from_utf8_lossy(&out.stdout));
            }
        }
        if let Some(text) = extras
            .timeline
            .as_ref()
            .and_then(|t| std::fs::read_to_string(t).ok())
        {
            println!("timeline:\n{text}");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
