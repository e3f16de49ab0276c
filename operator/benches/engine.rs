//! How many clips a second the planner decides, under the Met's policy
//! (`deploy/examples/retentionpolicy-met.yaml`) with two active legal holds, over
//! 100,000 generated clips per iteration: a realistic mix of categories, ages and tiers,
//! with a few malformed and held clips.
//!
//! ```text
//! cargo bench -p evidence-operator --bench engine
//! ```
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeMap, hint::black_box};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use evidence_operator::{
    api::{
        RetentionPolicySpec,
        clip::{Clip, TAG_CAMERA, TAG_CASE, TAG_CATEGORY, TAG_OFFICER, TAG_RECORDED_AT, Tag, Tier},
        legal_hold::{CameraWindow, HoldSelector},
    },
    engine::{ActiveHold, PlanSummary, Planner},
};
use rand::{Rng, SeedableRng, rngs::StdRng};

const CLIPS: usize = 100_000;

fn met_policy() -> RetentionPolicySpec {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/retentionpolicy-met.yaml"
    ))
    .unwrap();
    let value: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    serde_yaml::from_value(value["spec"].clone()).unwrap()
}

fn holds(now: DateTime<Utc>) -> Vec<ActiveHold> {
    vec![
        ActiveHold {
            name: "op-kestrel".into(),
            case_reference: "01/123456/26".into(),
            selector: HoldSelector {
                keys: (0..500)
                    .map(|i| format!("2026/03/{:02}/cam-{i:04}/clip-0001.mp4", i % 28 + 1))
                    .collect(),
                match_tags: BTreeMap::from([(TAG_CASE.to_string(), "01/123456/26".to_string())]),
                camera_window: None,
            },
            retain_after_release: None,
        },
        ActiveHold {
            name: "op-heron".into(),
            case_reference: "01/654321/25".into(),
            selector: HoldSelector {
                keys: Vec::new(),
                match_tags: BTreeMap::new(),
                camera_window: Some(CameraWindow {
                    camera: "cam-0042".into(),
                    from: now - TimeDelta::days(200),
                    to: now - TimeDelta::days(190),
                }),
            },
            retain_after_release: None,
        },
    ]
}

fn clips(now: DateTime<Utc>) -> Vec<Clip> {
    let mut rng = StdRng::seed_from_u64(7);
    let categories = [
        "non-evidential",
        "non-evidential",
        "non-evidential",
        "non-evidential",
        "domestic-abuse",
        "stop-and-search",
        "use-of-force",
        "mopi-group-3",
        "murder",
        "",
    ];
    (0..CLIPS)
        .map(|i| {
            let age = TimeDelta::seconds(rng.random_range(0..(8 * 365 * 86_400)));
            let recorded = now - age;
            let camera = rng.random_range(0..2000);
            let mut tags = vec![
                Tag::new(TAG_RECORDED_AT, recorded.to_rfc3339()),
                Tag::new(TAG_CAMERA, format!("cam-{camera:04}")),
                Tag::new(
                    TAG_OFFICER,
                    format!("{}", rng.random_range(100_000..999_999)),
                ),
            ];
            let category = categories[i % categories.len()];
            if !category.is_empty() {
                tags.push(Tag::new(TAG_CATEGORY, category));
            }
            if i % 97 == 0 {
                tags.push(Tag::new(TAG_CASE, "01/123456/26"));
            }
            if i % 1013 == 0 {
                tags[0].value = "not a time".into();
            }
            let tier = match rng.random_range(0..10) {
                0..=3 => Tier::Hot,
                4..=8 => Tier::Cool,
                _ => Tier::LegalHold,
            };
            Clip {
                key: format!("2026/03/{:02}/cam-{camera:04}/clip-{i:06}.mp4", i % 28 + 1),
                tier,
                version_id: None,
                size: rng.random_range(1_000_000..4_000_000_000),
                storage_class: None,
                last_modified: recorded + TimeDelta::hours(8),
                tags,
                sha256: None,
                uploaded_at: None,
                legal_hold: tier == Tier::LegalHold,
                plain_headers: None,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let policy = met_policy();
    let holds = holds(now);
    let clips = clips(now);
    let mut group = c.benchmark_group("planner");
    group.throughput(Throughput::Elements(CLIPS as u64));
    group.sample_size(20);
    group.bench_function("plan_clip x100k (Met policy, 2 holds)", |b| {
        b.iter(|| {
            let planner = Planner::new(&policy, &holds, now).unwrap();
            let mut summary = PlanSummary::default();
            for clip in &clips {
                summary.add(&planner.plan_clip(black_box(clip)));
            }
            black_box(summary)
        })
    });
    group.finish();
    let planner = Planner::new(&policy, &holds, now).unwrap();
    let mut summary = PlanSummary::default();
    for clip in &clips {
        summary.add(&planner.plan_clip(clip));
    }
    eprintln!("plan of the benchmark's clips: {summary}");
    streaming_memory(&policy, &holds, now);
}

/// Resident set size of this process in KiB (Linux), if it can be read.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Plan two million clips generated one at a time (never held in memory) and report
/// how much the resident set grew: the planner keeps nothing per clip.
fn streaming_memory(policy: &RetentionPolicySpec, holds: &[ActiveHold], now: DateTime<Utc>) {
    const STREAMED: usize = 2_000_000;
    let template = clips(now);
    let planner = Planner::new(policy, holds, now).unwrap();
    let mut summary = PlanSummary::default();
    let mut plan = |n: usize| {
        for i in 0..n {
            let mut clip = template[i % template.len()].clone();
            clip.key = format!("streamed/{i:08}.mp4");
            summary.add(&planner.plan_clip(black_box(&clip)));
        }
    };
    plan(STREAMED / 10); // warm up the allocator
    let before = rss_kib();
    plan(STREAMED);
    let after = rss_kib();
    if let (Some(before), Some(after)) = (before, after) {
        eprintln!(
            "streaming: planned {} clips one at a time; resident memory {before} KiB before, {after} KiB after ({:+} KiB)",
            summary.total(),
            after as i64 - before as i64
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
