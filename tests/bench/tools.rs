//! The contenders: the operator (a child process), rclone, s5cmd, and the ceiling (a
//! bare concurrent loop of the necessary S3 calls, no policy logic).

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    process::Stdio,
    time::Instant,
};

use anyhow::{Context, Result, bail};
use aws_sdk_s3::{
    Client,
    types::{ChecksumAlgorithm, Delete, ObjectIdentifier},
};
use futures::{StreamExt, TryStreamExt, stream};
use tokio::process::Command;

use crate::{data::Scenario, minio::Minio, operate::OperateReport};

/// Which tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tool {
    /// The operator's sweep.
    Operator,
    /// `rclone delete --min-age` / `rclone move --min-age`.
    Rclone,
    /// `s5cmd rm` / `s5cmd cp` + `rm` on the key list.
    S5cmd,
    /// A bare loop of the necessary S3 calls.
    Ceiling,
}

impl Tool {
    /// All tools, in report order.
    pub const ALL: [Tool; 4] = [Tool::Operator, Tool::Rclone, Tool::S5cmd, Tool::Ceiling];

    /// A stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tool::Operator => "operator",
            Tool::Rclone => "rclone",
            Tool::S5cmd => "s5cmd",
            Tool::Ceiling => "ceiling",
        }
    }
}

/// The buckets of one run.
#[derive(Debug, Clone)]
pub struct Buckets {
    /// Hot tier.
    pub hot: String,
    /// Cool tier.
    pub cool: String,
    /// Legal-hold tier (Object Lock).
    pub legal_hold: String,
}

/// Installed peer binaries and how to start the operator.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// rclone.
    pub rclone: PathBuf,
    /// s5cmd.
    pub s5cmd: PathBuf,
    /// This driver (for `evidence-bench operate`).
    pub driver: PathBuf,
    /// The RetentionPolicy manifest.
    pub policy: PathBuf,
    /// GNU time, for the peers' peak RSS, when installed.
    pub gnu_time: Option<PathBuf>,
    /// Scratch directory for key lists and configs.
    pub scratch: PathBuf,
    /// Extra arguments for `evidence-bench operate` (e.g. `--list-concurrency 64`).
    pub operate_args: Vec<String>,
}

/// What one tool run produced besides its wall time.
#[derive(Debug, Clone, Default)]
pub struct ToolRun {
    /// The peak RSS of the tool's process(es), KiB, where measured.
    pub peak_rss_kib: Option<u64>,
    /// The operator's own report.
    pub operator: Option<OperateReport>,
}

/// The environment that defines rclone's remote `bench:`.
pub type RcloneEnv<'a> = [(&'static str, &'a str); 7];

/// rclone's remote `bench:` for this MinIO (environment variables, an empty config
/// file) and the first arguments of every rclone command (`--config FILE`).
pub fn rclone_setup<'a>(minio: &'a Minio, bins: &Binaries) -> Result<(RcloneEnv<'a>, Vec<String>)> {
    let config = bins.scratch.join("rclone.conf");
    std::fs::write(&config, "")?;
    let env = [
        ("RCLONE_CONFIG_BENCH_TYPE", "s3"),
        ("RCLONE_CONFIG_BENCH_PROVIDER", "Minio"),
        ("RCLONE_CONFIG_BENCH_ENDPOINT", minio.endpoint.as_str()),
        (
            "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID",
            minio.access_key.as_str(),
        ),
        (
            "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY",
            minio.secret_key.as_str(),
        ),
        ("RCLONE_CONFIG_BENCH_REGION", crate::minio::REGION),
        ("RCLONE_CONFIG_BENCH_NO_CHECK_BUCKET", "true"),
    ];
    Ok((
        env,
        vec!["--config".into(), config.to_string_lossy().into()],
    ))
}

/// The credentials of this MinIO as the AWS environment (s5cmd, the operator's child
/// processes).
pub fn aws_env(minio: &Minio) -> [(&'static str, &str); 3] {
    [
        ("AWS_ACCESS_KEY_ID", minio.access_key.as_str()),
        ("AWS_SECRET_ACCESS_KEY", minio.secret_key.as_str()),
        ("AWS_REGION", crate::minio::REGION),
    ]
}

/// Run `cmd` to completion (wrapped in GNU time when available); its stdout and its
/// peak RSS in KiB.
pub async fn run_cmd(
    bins: &Binaries,
    program: &Path,
    args: &[String],
    env: &[(&str, &str)],
) -> Result<(String, Option<u64>)> {
    let rss_file = bins.scratch.join("rss.txt");
    let mut cmd = match &bins.gnu_time {
        Some(time) => {
            let mut c = Command::new(time);
            c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .await
        .with_context(|| format!("running {program:?}"))?;
    if !out.status.success() {
        bail!(
            "{program:?} {} failed ({}): {}",
            args.join(" ").chars().take(300).collect::<String>(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .chars()
                .take(2000)
                .collect::<String>()
        );
    }
    let rss = if bins.gnu_time.is_some() {
        std::fs::read_to_string(&rss_file)
            .ok()
            .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()))
    } else {
        None
    };
    Ok((String::from_utf8_lossy(&out.stdout).into_owned(), rss))
}

/// Run one tool on one scenario.
pub async fn run_tool(
    tool: Tool,
    scenario: Scenario,
    minio: &Minio,
    client: &Client,
    buckets: &Buckets,
    acted: &[String],
    bins: &Binaries,
) -> Result<ToolRun> {
    let creds = aws_env(minio);
    match tool {
        Tool::Operator => {
            let args: Vec<String> = [
                "operate",
                "--endpoint",
                &minio.endpoint,
                "--hot",
                &buckets.hot,
                "--cool",
                &buckets.cool,
                "--legal-hold",
                &buckets.legal_hold,
                "--concurrency",
                "16",
                "--policy",
                &bins.policy.to_string_lossy(),
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(bins.operate_args.iter().cloned())
            .collect();
            let (stdout, _) = run_cmd(bins, &bins.driver, &args, &creds).await?;
            let report: OperateReport = stdout
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str(l).ok())
                .with_context(|| format!("no report from the operator child: {stdout}"))?;
            Ok(ToolRun {
                peak_rss_kib: Some(report.peak_rss_kib),
                operator: Some(report),
            })
        }
        Tool::Rclone => {
            let (env, mut args) = rclone_setup(minio, bins)?;
            let prefix = scenario.acted_prefix().trim_end_matches('/');
            match scenario {
                Scenario::Expire => args.extend([
                    "delete".to_string(),
                    format!("bench:{}/{prefix}", buckets.hot),
                    "--min-age".into(),
                    "31d".into(),
                ]),
                Scenario::Move => args.extend([
                    "move".to_string(),
                    format!("bench:{}/{prefix}", buckets.hot),
                    format!("bench:{}/{prefix}", buckets.cool),
                    "--min-age".into(),
                    "30d".into(),
                ]),
            }
            // The same concurrency as the operator's (16 moves, 16 listing calls).
            args.extend(["--checkers", "16", "--transfers", "16"].map(String::from));
            let (_, rss) = run_cmd(bins, &bins.rclone, &args, &env).await?;
            Ok(ToolRun {
                peak_rss_kib: rss,
                operator: None,
            })
        }
        Tool::S5cmd => {
            let rm_file = bins.scratch.join("s5cmd-rm.txt");
            let src = match scenario {
                Scenario::Expire | Scenario::Move => &buckets.hot,
            };
            let rm: Vec<String> = acted
                .chunks(1000)
                .map(|c| {
                    let keys: Vec<String> = c.iter().map(|k| format!("s3://{src}/{k}")).collect();
                    format!("rm {}", keys.join(" "))
                })
                .collect();
            std::fs::write(&rm_file, rm.join("\n") + "\n")?;
            let base = vec!["--endpoint-url".to_string(), minio.endpoint.clone()];
            let mut peak = None;
            if scenario == Scenario::Move {
                let cp_file = bins.scratch.join("s5cmd-cp.txt");
                let cp: Vec<String> = acted
                    .iter()
                    .map(|k| format!("cp s3://{src}/{k} s3://{}/{k}", buckets.cool))
                    .collect();
                std::fs::write(&cp_file, cp.join("\n") + "\n")?;
                let mut args = base.clone();
                args.extend(["run".into(), cp_file.to_string_lossy().into()]);
                let (_, rss) = run_cmd(bins, &bins.s5cmd, &args, &creds).await?;
                peak = rss;
            }
            let mut args = base;
            args.extend(["run".into(), rm_file.to_string_lossy().into()]);
            let (_, rss) = run_cmd(bins, &bins.s5cmd, &args, &creds).await?;
            Ok(ToolRun {
                peak_rss_kib: peak.max(rss),
                operator: None,
            })
        }
        Tool::Ceiling => {
            ceiling(client, scenario, buckets, acted).await?;
            Ok(ToolRun::default())
        }
    }
}

/// The ceiling: list the hot tier with every clip's tags in the listing (MinIO's
/// `metadata=true`, as the operator lists; a tag-driven tool needs the tags, and this is
/// the cheapest way MinIO gives them), and act on the selected keys with the fewest
/// requests S3 allows: batched `DeleteObjects`; for moves `CopyObject` (with a SHA-256
/// checksum, as the operator asks) then batched `DeleteObjects`. Selection is by the
/// known key set, no policy, no verification, no audit.
async fn ceiling(
    client: &Client,
    scenario: Scenario,
    buckets: &Buckets,
    acted: &[String],
) -> Result<()> {
    const CONCURRENCY: usize = 64;
    let acted: HashSet<&str> = acted.iter().map(String::as_str).collect();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(&buckets.hot)
            .set_continuation_token(token.take())
            .customize()
            .mutate_request(|req| {
                let uri = format!("{}&metadata=true", req.uri());
                // The SDK's URI plus a plain parameter is a valid URI.
                let _ = req.set_uri(uri);
            })
            .send()
            .await?;
        let selected: Vec<String> = page
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .filter(|k| acted.contains(k))
            .map(String::from)
            .collect();
        if scenario == Scenario::Move {
            stream::iter(&selected)
                .map(|key| async move {
                    client
                        .copy_object()
                        .bucket(&buckets.cool)
                        .key(key)
                        .copy_source(format!("{}/{key}", buckets.hot))
                        .checksum_algorithm(ChecksumAlgorithm::Sha256)
                        .send()
                        .await?;
                    Ok::<_, anyhow::Error>(())
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect::<()>()
                .await?;
        }
        for batch in selected.chunks(1000) {
            let objects = batch
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()?;
            client
                .delete_objects()
                .bucket(&buckets.hot)
                .delete(
                    Delete::builder()
                        .set_objects(Some(objects))
                        .quiet(true)
                        .build()?,
                )
                .send()
                .await?;
        }
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(())
}

/// Objects in a bucket (uncounted housekeeping, after the measurement).
pub async fn count(client: &Client, bucket: &str) -> Result<usize> {
    let mut n = 0;
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .into_paginator()
        .send();
    while let Some(page) = pages.try_next().await? {
        n += page.contents().len();
    }
    Ok(n)
}

/// Delete every object of an unversioned bucket (housekeeping for the large runs).
pub async fn empty(client: &Client, bucket: &str) -> Result<()> {
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .into_paginator()
        .send();
    while let Some(page) = pages.try_next().await? {
        let objects = page
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<Result<Vec<_>, _>>()?;
        if objects.is_empty() {
            continue;
        }
        client
            .delete_objects()
            .bucket(bucket)
            .delete(
                Delete::builder()
                    .set_objects(Some(objects))
                    .quiet(true)
                    .build()?,
            )
            .send()
            .await?;
    }
    Ok(())
}

/// Seconds since `start`.
pub fn secs(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}
