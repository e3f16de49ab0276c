//! `evidence-operator ingest <DIR>`: a dock folder's clips into the hot tier of an
//! evidence bucket (the library: [`crate::ingest`]). The flags name the target, either
//! an EvidenceBucket through the kubeconfig (`--bucket`: dereferenced and validated as
//! `plan` and the sweep do; its RetentionPolicy's categories are the known ones) or
//! plain S3 settings for a dock without cluster access; this file turns them into an
//! [`IngestTarget`], shows progress and prints the report.

use std::{
    io::IsTerminal,
    path::PathBuf,
    sync::atomic::{AtomicU64, Ordering},
};

use anyhow::{Context as _, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kube::Client;

use crate::{
    api::regions::AllowedRegions,
    audit::AuditTarget,
    controller::{self, audit::audit_target_for},
    ingest::{
        Categories, ClipReport, Defaults, IngestOptions, IngestReport, IngestTarget, Progress,
        ingest,
    },
    storage::{BucketConfig, StaticCredentials, StoreOptions, TierLocation, Tiers},
};

/// Flags of `evidence-operator ingest`.
#[derive(Debug, Clone, Args)]
#[command(
    after_long_help = "Each clip NAME.mp4 may have a sidecar NAME.json or NAME.yaml (schema \
evidence.bwv.io/ingest-sidecar/v1: category, camera, officer, recordedAt, case, sha256; see \
docs/ingest-sidecar.schema.json); what it does not say comes from --category/--camera/--officer/--case, \
and a missing recordedAt from the MP4's mvhd creation time (never the file's mtime). Keys: \
<yyyy>/<mm>/<dd>/<camera>/<NAME>.mp4. Exit status 0 only when every clip is in the hot tier \
(ingested now or already present); refused, conflicting and failed clips are listed."
)]
pub struct IngestArgs {
    /// The dock folder: every `*.mp4` under it (recursively; hidden files skipped).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The EvidenceBucket to ingest into (`namespace/name`, or `name` with
    /// --namespace), read through the kubeconfig: its hot tier, endpoint, region,
    /// credentials Secret, audit chain, and its RetentionPolicy's categories.
    #[arg(long, value_name = "NAMESPACE/NAME", conflicts_with_all = ["hot_bucket", "endpoint", "region"])]
    pub bucket: Option<String>,
    /// Namespace of --bucket when it has none (default: the kubeconfig's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Without a cluster: the hot tier's S3 bucket (credentials from the usual AWS
    /// environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, profiles, ...).
    #[arg(long, required_unless_present = "bucket", requires_all = ["region", "audit_bucket", "audit_chain"])]
    pub hot_bucket: Option<String>,
    /// Without a cluster: the hot tier's key prefix (as the EvidenceBucket's
    /// tiers.hot.prefix).
    #[arg(long, default_value = "")]
    pub hot_prefix: String,
    /// Without a cluster: the S3 endpoint (MinIO, Ceph, ...; path-style addressing);
    /// absent: AWS.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Without a cluster: the region the hot bucket is declared to be in (must be an
    /// allowed UK region; its real location is proved before anything is sent).
    #[arg(long)]
    pub region: Option<String>,
    /// Without a cluster: the bucket holding the audit chain (the EvidenceBucket's
    /// legal-hold bucket, Object Lock enabled).
    #[arg(long)]
    pub audit_bucket: Option<String>,
    /// Without a cluster: whose chain the records go to (`namespace/name` of the
    /// EvidenceBucket): `<audit-prefix><namespace>/<name>/` in --audit-bucket.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub audit_chain: Option<String>,
    /// Without a cluster: the categories a clip may carry (comma-separated; compared
    /// ignoring case). Absent: any non-empty category. With --bucket the
    /// RetentionPolicy's categories are the known ones.
    #[arg(long, value_delimiter = ',')]
    pub categories: Vec<String>,
    /// Category of every clip whose sidecar names none.
    #[arg(long)]
    pub category: Option<String>,
    /// Camera of every clip whose sidecar names none (A-Z a-z 0-9 . _ -).
    #[arg(long)]
    pub camera: Option<String>,
    /// Officer of every clip whose sidecar names none.
    #[arg(long)]
    pub officer: Option<String>,
    /// Case reference of every clip whose sidecar names none.
    #[arg(long)]
    pub case: Option<String>,
    /// Clips uploaded at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Clips larger than this many bytes are uploaded in parts (multipart).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub multipart_threshold: u64,
    /// Part size in bytes of a multipart upload (at least 5 MiB).
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub part_size: u64,
    /// Parts of one clip read and in flight at once (memory: this many parts, plus one,
    /// per clip).
    #[arg(long, default_value_t = 4)]
    pub parallel_parts: usize,
    /// Show what would be uploaded (metadata checked, keys and hashes computed, the
    /// region proved and existing keys read) without uploading, recording or removing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete each dock file (and its sidecar) once its clip is verified in the hot
    /// tier and recorded in the audit chain.
    #[arg(long)]
    pub remove_source: bool,
    /// Print the report as JSON on stdout (progress and logs stay on stderr).
    #[arg(long)]
    pub json: bool,
    /// The dock's name in the audit records (default: the host name).
    #[arg(long, env = "EVIDENCE_DOCK_HOST")]
    pub dock_host: Option<String>,
    /// Who runs the ingest, in the audit records (default: $USER).
    #[arg(long, env = "EVIDENCE_INGEST_USER")]
    pub user: Option<String>,
    /// The root audit prefix the operator runs with (`run --audit-prefix`).
    #[arg(long, env = "EVIDENCE_AUDIT_PREFIX", default_value = "evidence-audit/")]
    pub audit_prefix: String,
    /// Object Lock COMPLIANCE retention of each audit batch, in days (as the
    /// operator's --audit-retention-days).
    #[arg(long, env = "EVIDENCE_AUDIT_RETENTION_DAYS", default_value_t = 2557)]
    pub audit_retention_days: u32,
    /// What the installation allows, as the operator's flags of the same names
    /// (--allowed-regions, --endpoint-region, ...).
    #[command(flatten)]
    pub installation: super::InstallationArgs,
}

impl IngestArgs {
    /// The run's options (the target aside).
    pub fn options(&self) -> IngestOptions {
        let mut o = IngestOptions::new(&self.dir);
        o.defaults = Defaults {
            category: self.category.clone(),
            camera: self.camera.clone(),
            officer: self.officer.clone(),
            case: self.case.clone(),
        };
        o.concurrency = self.concurrency.max(1);
        o.multipart_threshold = self.multipart_threshold;
        o.part_size = self.part_size;
        o.parallel_parts = self.parallel_parts.max(1);
        o.dry_run = self.dry_run;
        o.remove_source = self.remove_source;
        if let Some(h) = &self.dock_host {
            o.dock_host = h.clone();
        }
        if let Some(u) = &self.user {
            o.user = u.clone();
        }
        o
    }

    fn retention(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::days(i64::from(self.audit_retention_days.max(1)))
    }
}

/// The target named by `--bucket`: the EvidenceBucket dereferenced and validated as the
/// sweep does (a bucket the operator refuses is refused here too).
pub async fn bucket_target(client: Client, args: &IngestArgs) -> anyhow::Result<IngestTarget> {
    let name = args.bucket.as_deref().context("--bucket")?;
    let (ns, name) = match name.split_once('/') {
        Some((ns, n)) => (ns.to_string(), n.to_string()),
        None => (
            args.namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_string()),
            name.to_string(),
        ),
    };
    let checked =
        super::checked_bucket(&client, &ns, &name, &args.installation, "uploaded").await?;
    let root = controller::normalise_prefix(&args.audit_prefix);
    Ok(IngestTarget {
        config: checked.config,
        store_options: StoreOptions {
            endpoint_regions: checked.endpoint_regions,
            ..StoreOptions::default()
        },
        audit: Some((
            audit_target_for(&checked.bucket, &root, Some(args.retention())),
            checked.key,
        )),
        categories: Categories::Known(checked.categories),
    })
}

/// The target named by plain S3 settings. The cool tier is the hot tier's objects under
/// another storage class (never written by the ingest) and the legal-hold tier the
/// audit bucket, so that the region proof covers both buckets written.
pub fn plain_target(args: &IngestArgs) -> anyhow::Result<IngestTarget> {
    let (Some(hot), Some(region), Some(audit_bucket), Some(chain)) = (
        &args.hot_bucket,
        &args.region,
        &args.audit_bucket,
        &args.audit_chain,
    ) else {
        bail!(
            "give --bucket NAMESPACE/NAME, or --hot-bucket, --region, --audit-bucket and --audit-chain"
        );
    };
    let (ns, name) = chain
        .split_once('/')
        .with_context(|| format!("--audit-chain {chain:?}: expected NAMESPACE/NAME"))?;
    let allowed: AllowedRegions = args.installation.regions();
    let endpoint_regions = args.installation.endpoint_regions();
    endpoint_regions
        .check(&allowed)
        .map_err(anyhow::Error::msg)?;
    let credentials = match (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Ok(id), Ok(secret)) => Some(StaticCredentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: std::env::var("AWS_SESSION_TOKEN").ok(),
        }),
        _ => None,
    };
    let mut hot_loc = TierLocation::bucket(hot.clone());
    hot_loc.prefix = args.hot_prefix.clone();
    let mut cool = hot_loc.clone();
    cool.storage_class = Some("STANDARD_IA".into());
    let root = controller::normalise_prefix(&args.audit_prefix);
    Ok(IngestTarget {
        config: BucketConfig {
            name: format!("s3://{hot}"),
            declared_region: region.clone(),
            endpoint: args.endpoint.clone(),
            force_path_style: args.endpoint.is_some(),
            credentials,
            tiers: Tiers {
                hot: hot_loc,
                cool,
                legal_hold: TierLocation::bucket(audit_bucket.clone()),
            },
            allowed_regions: allowed.as_slice().to_vec(),
        },
        store_options: StoreOptions {
            endpoint_regions,
            ..StoreOptions::default()
        },
        audit: Some((
            AuditTarget {
                bucket: audit_bucket.clone(),
                prefix: format!("{root}{ns}/{name}/"),
                retention: Some(args.retention()),
            },
            chain.clone(),
        )),
        categories: if args.categories.is_empty() {
            Categories::Any
        } else {
            Categories::Known(args.categories.clone())
        },
    })
}

/// Progress on stderr: a bar on a terminal, one line per clip otherwise.
struct Shown {
    bar: Option<ProgressBar>,
    clips: AtomicU64,
    total: AtomicU64,
}

impl Progress for Shown {
    fn found(&self, clips: u64, bytes: u64) {
        self.total.store(clips, Ordering::Relaxed);
        match &self.bar {
            Some(bar) => bar.set_length(bytes),
            None => eprintln!("dock: {clips} clip(s), {bytes} bytes"),
        }
    }

    fn done(&self, c: &ClipReport) {
        let n = self.clips.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.total.load(Ordering::Relaxed);
        match &self.bar {
            Some(bar) => {
                bar.inc(c.size);
                bar.set_message(format!("{n}/{total} clips"));
            }
            None => eprintln!(
                "[{n}/{total}] {} {} -> {}",
                c.outcome.as_str(),
                c.file.display(),
                c.key.as_deref().unwrap_or("-")
            ),
        }
    }
}

/// Run the ingest of `args` (the library function the command is a front for).
pub async fn run(args: &IngestArgs, progress: &dyn Progress) -> anyhow::Result<IngestReport> {
    let target = match &args.bucket {
        Some(_) => {
            let client = Client::try_default()
                .await
                .context("connecting to the Kubernetes API server")?;
            bucket_target(client, args).await?
        }
        None => plain_target(args)?,
    };
    Ok(ingest(&target, &args.options(), progress).await?)
}

/// Run `evidence-operator ingest`.
pub fn main(args: IngestArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    });
    let shown = Shown {
        bar,
        clips: AtomicU64::new(0),
        total: AtomicU64::new(0),
    };
    let report = rt.block_on(run(&args, &shown));
    if let Some(bar) = &shown.bar {
        bar.finish_and_clear();
    }
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    if !report.ok() {
        bail!("not every clip is in the hot tier: {}", report.summary());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::{CommandFactory, Parser};

    use crate::cli::{Cli, Command};

    #[test]
    fn help_explains_every_flag() {
        let mut cmd = Cli::command();
        let help = cmd
            .find_subcommand_mut("ingest")
            .map(|c| c.render_long_help().to_string())
            .unwrap_or_default();
        for flag in [
            "--bucket",
            "--hot-bucket",
            "--hot-prefix",
            "--endpoint",
            "--region",
            "--audit-bucket",
            "--audit-chain",
            "--categories",
            "--category",
            "--camera",
            "--officer",
            "--case",
            "--concurrency",
            "--multipart-threshold",
            "--part-size",
            "--parallel-parts",
            "--dry-run",
            "--remove-source",
            "--json",
            "--dock-host",
            "--user",
            "--endpoint-region",
            "sidecar",
            "mvhd",
        ] {
            assert!(help.contains(flag), "ingest --help lacks {flag}:\n{help}");
        }
    }

    #[test]
    fn plain_settings_need_an_audit_chain_and_make_a_target() {
        let parse = |argv: &[&str]| {
            let mut all = vec!["evidence-operator", "ingest", "/dock"];
            all.extend_from_slice(argv);
            Cli::try_parse_from(all).map(|c| c.command)
        };
        assert!(parse(&["--hot-bucket", "hot", "--region", "eu-west-2"]).is_err());
        assert!(parse(&[]).is_err(), "a target is required");
        let Ok(Command::Ingest(args)) = parse(&[
            "--hot-bucket",
            "hot",
            "--region",
            "eu-west-2",
            "--audit-bucket",
            "lock",
            "--audit-chain",
            "ns/unit",
            "--camera",
            "BWV-1",
            "--categories",
            "a,b",
        ]) else {
            panic!("not an ingest command")
        };
        let t = super::plain_target(&args).unwrap();
        assert_eq!(t.config.tiers.hot.bucket, "hot");
        assert!(t.config.validate().is_ok());
        let (audit, chain) = t.audit.unwrap();
        assert_eq!(audit.prefix, "evidence-audit/ns/unit/");
        assert_eq!(chain, "ns/unit");
        assert_eq!(args.options().defaults.camera.as_deref(), Some("BWV-1"));
        let Ok(Command::Ingest(args)) = parse(&[
            "--hot-bucket",
            "hot",
            "--region",
            "us-east-1",
            "--audit-bucket",
            "lock",
            "--audit-chain",
            "ns/unit",
        ]) else {
            panic!("not an ingest command")
        };
        let t = super::plain_target(&args).unwrap();
        assert!(
            t.config.validate().is_err(),
            "a non-UK declared region is refused"
        );
    }
}
