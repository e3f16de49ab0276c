//! Smoke tests of `make bench`: the driver runs end to end at a tiny N (200 clips, one
//! run, two 1 MiB clips, planning 20,000 clips) against its own MinIO, with the real
//! rclone and s5cmd, and writes a report whose fields are sane; and the `steady` job
//! (`make bench BENCH_JOB=steady`) runs its sweeps at 300 clips on its own MinIO and
//! SeaweedFS within the request bounds, then again on MinIO, reusing its dataset;
//! and the `ingest` job (`make bench BENCH_JOB=ingest`) lands every clip of a 100-clip
//! and a 2-clip dock with every tool, then expires and moves 100 ingested clips; and the
//! `request` job (`make bench BENCH_JOB=request`) answers its two requests over 300
//! clips on MinIO, exactly, with and without the catalogue (SeaweedFS apart: its start
//! and seeding would double the test's time; the job's code is the same). Speed is not
//! asserted: at this N the figures are dominated by process start-up.

use std::process::Command;

use serde_json::Value;

#[test]
fn bench_runs_end_to_end_at_a_tiny_n_and_reports_sane_fields() {
    let out = std::env::temp_dir().join(format!("evidence-bench-smoke-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_evidence-bench"))
        .args(["run", "--clips", "200", "--runs", "1", "--large-clips", "2"])
        .args([
            "--large-size-mib",
            "1",
            "--plan-clips",
            "20000",
            "--rss-at",
            "400",
        ])
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("starting evidence-bench: {e}"));
    assert!(status.success(), "evidence-bench failed: {status}");

    let md = std::fs::read_to_string(out.join("results.md"))
        .unwrap_or_else(|e| panic!("results.md: {e}"));
    let json = std::fs::read_to_string(out.join("results.json"))
        .unwrap_or_else(|e| panic!("results.json: {e}"));
    let report: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    let datasets = report["datasets"].as_array().cloned().unwrap_or_default();
    let jobs: Vec<(String, u64)> = datasets
        .iter()
        .map(|d| {
            (
                d["scenario"].as_str().unwrap_or_default().to_string(),
                d["clips"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        jobs,
        vec![
            ("expire".to_string(), 200),
            ("move".to_string(), 200),
            ("move".to_string(), 2)
        ]
    );
    for d in &datasets {
        let tools: Vec<&str> = d["tools"]
            .as_array()
            .map(|t| t.iter().filter_map(|t| t["tool"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(tools, ["operator", "rclone", "s5cmd", "ceiling"], "{d}");
        for t in d["tools"].as_array().into_iter().flatten() {
            let name = t["tool"].as_str().unwrap_or("?");
            assert_eq!(
                t["correct"], true,
                "{name} did not act on exactly the expected clips: {t}"
            );
            let secs = t["median_seconds"].as_f64().unwrap_or(0.0);
            assert!(secs > 0.0 && secs.is_finite(), "{name}: {secs}");
            // Every tool made requests, at least one per clip acted on (a delete batch
            // is shared, but the listing is not free); none is unbounded.
            let per_clip = t["requests_per_acted_clip"].as_f64().unwrap_or(0.0);
            assert!(per_clip > 0.0 && per_clip < 100.0, "{name}: {per_clip}");
        }
        let op = &d["tools"][0];
        assert!(op["peak_rss_kib"].as_u64().unwrap_or(0) > 1024, "{op}");
        let moved_or_deleted = op["runs"][0]["operator"]
            .as_object()
            .map(|o| o["deleted"].as_u64().unwrap_or(0) + o["moved"].as_u64().unwrap_or(0))
            .unwrap_or(0);
        assert_eq!(moved_or_deleted, d["acted"].as_u64().unwrap_or(u64::MAX));
        for (peer, ratio) in d["speedup_vs"].as_object().into_iter().flatten() {
            let r = ratio.as_f64().unwrap_or(0.0);
            assert!(r > 0.0 && r.is_finite(), "{peer}: {r}");
        }
    }
    let rss: Vec<u64> = report["rss"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["clips"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(rss, [200, 400]);
    assert!(
        report["planning"]["clips_per_second"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0
    );
    assert!(md.contains("| goal (issue 8) |"), "{md}");
    assert!(md.contains("operator peak RSS"), "{md}");
    std::fs::remove_dir_all(&out).ok();
}

/// The steady smoke's N.
const STEADY_CLIPS: u64 = 300;

/// One `evidence-bench steady` run at a tiny N on `servers`; its report.
fn steady_run(data: &std::path::Path, out: &std::path::Path, servers: &str) -> Value {
    let status = Command::new(env!("CARGO_BIN_EXE_evidence-bench"))
        .args(["steady", "--servers", servers])
        .args(["--clips", &STEADY_CLIPS.to_string(), "--data"])
        .arg(data)
        .arg("--out")
        .arg(out)
        .status()
        .unwrap_or_else(|e| panic!("starting evidence-bench steady: {e}"));
    assert!(status.success(), "evidence-bench steady failed: {status}");
    let md = std::fs::read_to_string(out.join("results.md"))
        .unwrap_or_else(|e| panic!("results.md: {e}"));
    assert!(md.contains("| goal (issue 18) |"), "{md}");
    let json = std::fs::read_to_string(out.join("results.json"))
        .unwrap_or_else(|e| panic!("results.json: {e}"));
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn bench_steady_sweeps_a_reused_dataset_within_the_request_bounds_on_both_servers() {
    let dir = std::env::temp_dir().join(format!("evidence-bench-steady-{}", std::process::id()));
    let (data, out) = (dir.join("data"), dir.join("out"));
    // The second run reuses MinIO's dataset (SeaweedFS takes ~15 s longer to start over
    // kept data: not in the smoke).
    for (run, servers) in [(0, "minio,seaweedfs"), (1, "minio")] {
        let report = steady_run(&data, &out, servers);
        let servers: Vec<Value> = report["servers"].as_array().cloned().unwrap_or_default();
        let names: Vec<&str> = servers
            .iter()
            .filter_map(|s| s["server"].as_str())
            .collect();
        let expected: &[&str] = if run == 0 {
            &["minio", "seaweedfs"]
        } else {
            &["minio"]
        };
        assert_eq!(names, expected);
        for s in &servers {
            let name = s["server"].as_str().unwrap_or("?");
            assert_eq!(
                s["reused"],
                run == 1,
                "{name}: the second run reuses the dataset"
            );
            assert_eq!(s["dataset"]["clips"], STEADY_CLIPS, "{name}");
            let sweeps = s["sweeps"].as_array().cloned().unwrap_or_default();
            let sweep = |n: &str| {
                sweeps
                    .iter()
                    .find(|w| w["sweep"] == n)
                    .cloned()
                    .unwrap_or_else(|| panic!("{name}: no {n} sweep in {s}"))
            };
            let expected: &[&str] = if name == "minio" {
                &["cold", "steady", "changed", "today", "today-extension"]
            } else {
                &["cold", "steady", "changed", "today"]
            };
            let got: Vec<&str> = sweeps.iter().filter_map(|w| w["sweep"].as_str()).collect();
            assert_eq!(got, expected, "{name}");
            for w in &sweeps {
                assert_eq!(w["correct"], true, "{name}: {w}");
                assert!(
                    w["peak_rss_kib"].as_u64().unwrap_or(0) > 1024,
                    "{name}: {w}"
                );
                assert!(
                    w["process_seconds"].as_f64().unwrap_or(0.0) > 0.0,
                    "{name}: {w}"
                );
            }
            let n = |w: &Value, k: &str| w[k].as_u64().unwrap_or(u64::MAX);
            // The cold sweep reads every clip's tags; the steady one lists the hot tier
            // only, reads no tag beyond the spread refresh, and stays within N/1,000 + 20.
            let (cold, steady, changed) = (sweep("cold"), sweep("steady"), sweep("changed"));
            assert!(n(&cold, "tag_reads") >= STEADY_CLIPS, "{name}: {cold}");
            assert_eq!(
                steady["unlisted"],
                serde_json::json!(["cool", "legal-hold"]),
                "{name}"
            );
            assert_eq!(
                n(&steady, "tag_reads"),
                n(&steady, "refresh_reads"),
                "{name}: {steady}"
            );
            assert!(
                n(&steady, "requests") - n(&steady, "refresh_reads") <= STEADY_CLIPS / 1000 + 20,
                "{name}: {steady}"
            );
            // The changed sweep deletes exactly the clips due, reading tags only for the
            // new clips and the clips it acts on.
            let due = n(s, "due_hot") + n(s, "due_cool");
            assert_eq!(n(&changed, "deleted"), due, "{name}: {changed}");
            assert!(
                n(&changed, "tag_reads") - n(&changed, "refresh_reads") <= n(s, "new_clips") + due,
                "{name}: {changed}"
            );
            assert!(
                n(&sweep("today"), "requests") > n(&steady, "requests"),
                "{name}"
            );
            let ratio = s["today_over_steady"]["requests"].as_f64().unwrap_or(0.0);
            assert!(ratio > 1.0 && ratio.is_finite(), "{name}: {ratio}");
            for g in s["goals"].as_array().into_iter().flatten() {
                if g["applies"] == true {
                    assert_eq!(g["met"], true, "{name}: {g}");
                }
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The ingest smoke's clips per dock and sweep.
const INGEST_CLIPS: u64 = 100;

#[test]
fn bench_ingest_lands_every_clip_then_expires_and_moves_the_ingested_clips() {
    let dir = std::env::temp_dir().join(format!("evidence-bench-ingest-{}", std::process::id()));
    let n = INGEST_CLIPS.to_string();
    let status = Command::new(env!("CARGO_BIN_EXE_evidence-bench"))
        .args([
            "ingest",
            "--runs",
            "1",
            "--small-clips",
            &n,
            "--sweep-clips",
            &n,
        ])
        .args(["--large-clips", "2", "--large-mib", "1", "--data"])
        .arg(dir.join("data"))
        .arg("--out")
        .arg(dir.join("out"))
        .status()
        .unwrap_or_else(|e| panic!("starting evidence-bench ingest: {e}"));
    assert!(status.success(), "evidence-bench ingest failed: {status}");
    let md = std::fs::read_to_string(dir.join("out/results.md"))
        .unwrap_or_else(|e| panic!("results.md: {e}"));
    assert!(md.contains("| goal (issue 19, item 8) |"), "{md}");
    let json = std::fs::read_to_string(dir.join("out/results.json"))
        .unwrap_or_else(|e| panic!("results.json: {e}"));
    let report: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    let tools = |d: &Value| -> Vec<String> {
        d["tools"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t["tool"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };

    // The ingest job: every tool lands every clip; the operator ingests and records each
    // one, with one PutObject per clip (and one per audit batch) and nothing re-sent.
    let ingest = report["ingest"].as_array().cloned().unwrap_or_default();
    let docks: Vec<(&str, u64)> = ingest
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap_or("?"),
                d["clips"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(docks, [("small", INGEST_CLIPS), ("large", 2)]);
    for d in &ingest {
        assert_eq!(tools(d), ["operator", "rclone", "s5cmd"], "{d}");
        let clips = d["clips"].as_u64().unwrap_or(0);
        for t in d["tools"].as_array().into_iter().flatten() {
            assert_eq!(t["correct"], true, "{t}");
        }
        let op = &d["tools"][0];
        assert_eq!(
            op["requests"]["PutObject"].as_u64(),
            Some(clips + 1),
            "one PutObject per clip and one audit batch: {op}"
        );
        for r in d["operator_runs"].as_array().into_iter().flatten() {
            assert_eq!(r["ingested"].as_u64(), Some(clips), "{r}");
            assert_eq!(r["audit_records"].as_u64(), Some(clips), "{r}");
            assert_eq!(r["not_ingested"].as_u64(), Some(0), "{r}");
        }
    }

    // The sweeps of ingested clips: every tool acts on exactly the expected clips, and
    // the operator's sweep reads no tag (MinIO's listing carries them).
    let sweeps = report["sweeps"].as_array().cloned().unwrap_or_default();
    let jobs: Vec<&str> = sweeps
        .iter()
        .filter_map(|d| d["scenario"].as_str())
        .collect();
    assert_eq!(jobs, ["expire", "move"]);
    for d in &sweeps {
        assert_eq!(tools(d), ["operator", "rclone", "s5cmd", "ceiling"], "{d}");
        for t in d["tools"].as_array().into_iter().flatten() {
            assert_eq!(t["correct"], true, "{t}");
        }
        let op = &d["tools"][0]["runs"][0]["operator"];
        assert_eq!(op["tag_reads"].as_u64(), Some(0), "{op}");
        assert_eq!(
            op["deleted"].as_u64().unwrap_or(0) + op["moved"].as_u64().unwrap_or(0),
            INGEST_CLIPS / 2,
            "{op}"
        );
    }
    let goals = report["goals"].as_array().map_or(0, Vec::len);
    assert_eq!(goals, 5, "{report}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The request smoke's N.
const REQUEST_CLIPS: u64 = 300;

#[test]
fn bench_request_answers_both_requests_exactly_with_and_without_the_catalogue() {
    let dir = std::env::temp_dir().join(format!("evidence-bench-request-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_evidence-bench"))
        .args([
            "request",
            "--servers",
            "minio",
            "--runs",
            "1",
            "--clips",
            &REQUEST_CLIPS.to_string(),
        ])
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--out")
        .arg(dir.join("out"))
        .status()
        .unwrap_or_else(|e| panic!("starting evidence-bench request: {e}"));
    assert!(status.success(), "evidence-bench request failed: {status}");
    let md = std::fs::read_to_string(dir.join("out/results.md"))
        .unwrap_or_else(|e| panic!("results.md: {e}"));
    assert!(md.contains("plain ÷ catalogue"), "{md}");
    let json = std::fs::read_to_string(dir.join("out/results.json"))
        .unwrap_or_else(|e| panic!("results.json: {e}"));
    let report: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    let servers = report["servers"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = servers
        .iter()
        .filter_map(|s| s["server"].as_str())
        .collect();
    assert_eq!(names, ["minio"]);
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or(u64::MAX);
    for s in &servers {
        let name = s["server"].as_str().unwrap_or("?");
        // The fill lists every clip once and reads each one's tags.
        let fill = &s["fill"];
        assert_eq!(n(fill, "clips"), REQUEST_CLIPS, "{name}: {fill}");
        assert!(n(fill, "tag_reads") >= REQUEST_CLIPS, "{name}: {fill}");
        let cases = s["cases"].as_array().cloned().unwrap_or_default();
        let requests: Vec<&str> = cases.iter().filter_map(|c| c["request"].as_str()).collect();
        assert_eq!(requests, ["sar-officer", "disclosure-month"], "{name}");
        for c in &cases {
            let expected = n(c, "expected");
            assert!(expected > 0, "{name}: {c}");
            let answers = c["answers"].as_array().cloned().unwrap_or_default();
            let got: Vec<&str> = answers
                .iter()
                .filter_map(|a| a["answer"].as_str())
                .collect();
            let want: &[&str] = if name == "minio" {
                &["plain", "plain-extension", "catalogue"]
            } else {
                &["plain", "catalogue"]
            };
            assert_eq!(got, want, "{name}");
            let answer = |a: &str| {
                answers
                    .iter()
                    .find(|x| x["answer"] == a)
                    .and_then(|x| x["runs"].get(0))
                    .cloned()
                    .unwrap_or_else(|| panic!("{name}: no {a} answer in {c}"))
            };
            for a in &answers {
                assert_eq!(a["correct"], true, "{name}: {a}");
            }
            for a in want {
                let r = answer(a);
                assert_eq!(n(&r, "found"), expected, "{name} {a}: {r}");
                assert!(
                    r["seconds"].as_f64().unwrap_or(0.0) > 0.0,
                    "{name} {a}: {r}"
                );
            }
            // Without the catalogue every clip's tags are read; with it, none beyond the
            // spread refresh, and fewer requests in all.
            let (plain, cat) = (answer("plain"), answer("catalogue"));
            assert!(n(&plain, "tag_reads") >= REQUEST_CLIPS, "{name}: {plain}");
            assert_eq!(
                n(&cat, "tag_reads"),
                n(&cat, "refresh_reads"),
                "{name}: {cat}"
            );
            assert!(n(&cat, "requests") < n(&plain, "requests"), "{name}: {cat}");
            let ratio = c["over_catalogue"]["plain"]["requests"]
                .as_f64()
                .unwrap_or(0.0);
            assert!(ratio > 1.0 && ratio.is_finite(), "{name}: {ratio}");
            if name == "minio" {
                let ext = answer("plain-extension");
                assert_eq!(n(&ext, "tag_reads"), 0, "{name}: {ext}");
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
