//! The binary's command line: `evidence-operator <command>`. Every flag can also be set
//! from the environment (the variable is shown in `--help`).

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};

pub mod audit;
pub mod check;
pub mod ingest;
pub mod plan;
pub mod share;

use crate::{
    api::{EvidenceBucket, regions::AllowedRegions},
    catalogue::CatalogueOptions,
    controller,
    runtime::{self, LeaderElection, Settings, telemetry::LogFormat},
    storage::{
        StoreOptions,
        region::{EndpointRegion, EndpointRegions},
    },
};

/// Keeps police body-worn video evidence in the right S3 storage tier (hot, cool,
/// legal-hold) for as long as the law needs it, and not a day longer, and never outside
/// the UK. Reconciles the `evidence.bwv.io/v1alpha1` resources EvidenceBucket,
/// RetentionPolicy and LegalHold.
#[derive(Debug, Parser)]
#[command(name = "evidence-operator", version, about, long_about = None)]
pub struct Cli {
    /// Log line format.
    #[arg(
        long,
        env = "EVIDENCE_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the operator: watch the resources and keep storage matching policy.
    Run(Box<RunArgs>),
    /// Validate evidence.bwv.io resources in files or directories, offline (for a
    /// GitOps CI step): schema, the CRDs' rules, UK-only regions, policy semantics and
    /// references within the file set. Prints `file:line: Kind/name: message`; exits 1
    /// on any problem.
    Check(check::CheckArgs),
    /// Show what the operator would do to one EvidenceBucket now (or at --now): counts
    /// per action and every clip it would move, hold, release, flag or delete, with the
    /// reason. Read-only against the live cluster and storage.
    Plan(plan::PlanArgs),
    /// Verify the tamper-evident audit trail of an EvidenceBucket, or show its records
    /// and the chain of custody of one clip.
    Audit(Box<audit::AuditArgs>),
    /// Upload a dock folder's clips into the hot tier of an EvidenceBucket: SHA-256
    /// verified by the store, tagged from sidecars (or flags, or the MP4's creation
    /// time), never overwriting, resumable, one `ingested` audit record per clip.
    Ingest(Box<ingest::IngestArgs>),
    /// Give time-limited links (S3 presigned URLs) to the clips of an AccessRequest's
    /// manifest to a named recipient; every link is recorded in the audit chain before
    /// it is printed.
    Share(Box<share::ShareArgs>),
    /// Print the CustomResourceDefinitions (YAML), or write every generated manifest
    /// (`crds/<plural>.yaml`, `deploy/admission/*.yaml`) under a directory.
    Crds {
        /// Write the generated files under this directory (the repository root
        /// regenerates the checked-in copies) instead of printing the CRDs.
        #[arg(long, value_name = "DIR")]
        out: Option<std::path::PathBuf>,
    },
}

/// What an installation allows its tenants beyond the built-in rules: shared by `run`
/// and `plan`, so that a plan refuses exactly what the operator refuses.
#[derive(Debug, Clone, Default, Args)]
pub struct InstallationArgs {
    /// Extra regions (beyond eu-west-2, uksouth, ukwest, europe-west2) that this
    /// installation declares to be in the UK, e.g. an on-premises MinIO's region.
    /// Comma-separated.
    #[arg(long, env = "EVIDENCE_ALLOWED_REGIONS", value_delimiter = ',')]
    pub allowed_regions: Vec<String>,
    /// Namespaces whose EvidenceBuckets may omit spec.credentialsSecretRef and act with
    /// the operator's own identity (IRSA / workload identity / instance profile),
    /// comma-separated; `*` for all. Default: none: every bucket must name a Secret
    /// (elsewhere a bucket without one is refused, reason CredentialsRequired).
    #[arg(
        long,
        env = "EVIDENCE_OPERATOR_IDENTITY_NAMESPACES",
        value_delimiter = ','
    )]
    pub operator_identity_namespaces: Vec<String>,
    /// The endpoint hosts EvidenceBuckets may name in spec.endpoint, comma-separated:
    /// exact hosts or `*.suffix` patterns. Default: any host. Link-local and cloud
    /// metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254) are always refused.
    #[arg(long, env = "EVIDENCE_ALLOWED_ENDPOINTS", value_delimiter = ',')]
    pub allowed_endpoints: Vec<String>,
    /// Declares the region of an on-premises S3 endpoint whose store reports none (an
    /// empty GetBucketLocation answer, as SeaweedFS gives): HOST=REGION (every port of
    /// HOST) or HOST:PORT=REGION (that port only; IPv6 as [::1]:9000). Repeat the flag,
    /// or separate entries with commas. Without a declaration such a bucket is refused
    /// (RegionNotAllowed), since nothing proves it is in the UK. The region must be an
    /// allowed UK region (the operator refuses to start otherwise); an amazonaws.com host
    /// cannot be declared (AWS always reports), and a store that reports a region is
    /// always judged on what it reports. Only the installation sets this, never a tenant.
    #[arg(
        long = "endpoint-region",
        env = "EVIDENCE_ENDPOINT_REGIONS",
        value_delimiter = ',',
        value_name = "HOST[:PORT]=REGION"
    )]
    pub endpoint_regions: Vec<EndpointRegion>,
}

impl InstallationArgs {
    /// The allowed regions: the built-in UK set plus the installation's.
    pub fn regions(&self) -> AllowedRegions {
        AllowedRegions::new(&self.allowed_regions)
    }

    /// The installation's endpoint region declarations (checked against the allowed
    /// regions by `Settings::check`, or by `plan` before it reads anything).
    pub fn endpoint_regions(&self) -> EndpointRegions {
        EndpointRegions::new(self.endpoint_regions.clone())
    }

    /// What the installation grants the EvidenceBuckets of `namespace`.
    pub fn grants(&self, namespace: &str) -> controller::bucket::validate::Grants {
        controller::bucket::validate::Grants::for_namespace(
            &self.operator_identity_namespaces,
            &self.allowed_endpoints,
            namespace,
        )
    }
}

/// An EvidenceBucket read through the cluster and validated as the sweep validates it
/// (a bucket the operator refuses is refused by the CLI too).
pub struct CheckedBucket {
    /// The EvidenceBucket.
    pub bucket: EvidenceBucket,
    /// `namespace/name`.
    pub key: String,
    /// Its storage configuration, credentials included.
    pub config: crate::storage::BucketConfig,
    /// The installation's endpoint region declarations.
    pub endpoint_regions: EndpointRegions,
    /// Its RetentionPolicy's category names.
    pub categories: Vec<String>,
}

/// Read `ns/name` and validate it with what the installation allows; `done` says what
/// did not happen when it is refused ("uploaded", "shared").
pub async fn checked_bucket(
    client: &kube::Client,
    ns: &str,
    name: &str,
    installation: &InstallationArgs,
    done: &str,
) -> anyhow::Result<CheckedBucket> {
    use anyhow::Context as _;
    let key = format!("{ns}/{name}");
    let eb = kube::Api::<EvidenceBucket>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(controller::Error::read(format!("EvidenceBucket {key}")))?
        .with_context(|| format!("EvidenceBucket {key} not found"))?;
    let allowed = installation.regions();
    let endpoint_regions = installation.endpoint_regions();
    endpoint_regions
        .check(&allowed)
        .map_err(anyhow::Error::msg)?;
    let found = controller::bucket::dereference(client, &eb).await?;
    let grants = installation.grants(ns);
    let valid = controller::bucket::validate(&eb, &found, &allowed, &grants, chrono::Utc::now())
        .map_err(|r| {
            anyhow::anyhow!(
                "EvidenceBucket {key} is refused ({}): {r}; nothing was {done}",
                r.reason()
            )
        })?;
    let config = valid.config.clone();
    let categories = valid
        .policy
        .spec
        .categories
        .iter()
        .map(|c| c.name.clone())
        .collect();
    Ok(CheckedBucket {
        bucket: eb,
        key,
        config,
        endpoint_regions,
        categories,
    })
}

/// Flags of `evidence-operator run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// What this installation allows its tenants.
    #[command(flatten)]
    pub installation: InstallationArgs,
    /// Only watch these namespaces (comma-separated); all namespaces when empty.
    #[arg(long, env = "EVIDENCE_WATCH_NAMESPACE", value_delimiter = ',')]
    pub watch_namespace: Vec<String>,
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, env = "EVIDENCE_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Elect a leader through a coordination.k8s.io Lease, so that only one of several
    /// replicas acts. Turn off only when running a single replica.
    #[arg(long, env = "EVIDENCE_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "EVIDENCE_LEASE_NAME", default_value = runtime::DEFAULT_LEASE_NAME)]
    pub lease_name: String,
    /// Namespace of the leader-election Lease (in a pod: its own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// This replica's identity in the Lease and in events (in a pod: its name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// This cluster's name, written into the storage claims it makes, so that an
    /// operator in another cluster sharing the storage can say whose a location is.
    #[arg(long, env = "EVIDENCE_CLUSTER_NAME", default_value = "")]
    pub cluster_name: String,
    /// How long the Lease stays valid after the leader's last renewal.
    #[arg(long, env = "EVIDENCE_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// The leader steps down when it could not renew the Lease for this long
    /// (must be shorter than --lease-duration).
    #[arg(long, env = "EVIDENCE_RENEW_DEADLINE", default_value = "10s", value_parser = parse_duration)]
    pub renew_deadline: Duration,
    /// How often candidates try to take the Lease, and the leader renews it.
    #[arg(long, env = "EVIDENCE_RETRY_PERIOD", default_value = "2s", value_parser = parse_duration)]
    pub retry_period: Duration,
    /// On SIGTERM, how long in-flight moves may take to finish before they are abandoned
    /// (an abandoned move is safe: the source is only deleted after a verified copy, and
    /// the next sweep converges).
    #[arg(long, env = "EVIDENCE_SHUTDOWN_TIMEOUT", default_value = "25s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Clips moved at the same time, per bucket.
    #[arg(long, env = "EVIDENCE_MOVE_CONCURRENCY", default_value_t = 16)]
    pub move_concurrency: usize,
    /// Objects larger than this are copied with multipart copy (UploadPartCopy).
    /// S3's CopyObject limit is 5 GiB.
    #[arg(long, env = "EVIDENCE_MULTIPART_THRESHOLD", default_value_t = 5 * 1024 * 1024 * 1024)]
    pub multipart_threshold: u64,
    /// The shortest wait between two sweeps of one bucket, whatever becomes due sooner.
    #[arg(long, env = "EVIDENCE_MIN_REQUEUE", default_value = "5s", value_parser = parse_duration)]
    pub min_requeue: Duration,
    /// Key prefix, in each legal-hold bucket, under which the audit chain of every
    /// EvidenceBucket is written (`<prefix><namespace>/<name>/`). Reserved: objects
    /// there are never treated as clips.
    #[arg(long, env = "EVIDENCE_AUDIT_PREFIX", default_value = "evidence-audit/")]
    pub audit_prefix: String,
    /// Object Lock COMPLIANCE retention of each audit object, in days (no one can delete
    /// or rewrite it before then).
    #[arg(long, env = "EVIDENCE_AUDIT_RETENTION_DAYS", default_value_t = 2557)]
    pub audit_retention_days: u32,
    /// Integrity sweep (opt-in): after each sweep of a bucket, re-read this many clips
    /// chosen at random from the cool and legal-hold tiers and compare their SHA-256
    /// with the recorded one. 0 turns it off.
    #[arg(long, env = "EVIDENCE_INTEGRITY_SAMPLE", default_value_t = 0)]
    pub integrity_sample: usize,
    /// Before each sweep the local clock is compared with the S3 store's and the API
    /// server's (the Date header of one request to each); when either differs by more
    /// than this, nothing is moved or deleted (condition reason ClockSkew) until they
    /// agree. Date has whole seconds: keep it well above a few seconds.
    #[arg(long, env = "EVIDENCE_MAX_CLOCK_SKEW", default_value = "60s", value_parser = parse_duration)]
    pub max_clock_skew: Duration,
    /// Keep the clip catalogue in this directory (a file `catalogue.redb`; in a pod an
    /// emptyDir): what the operator learned about each clip (tags, hold, identity), so
    /// that a sweep reads a clip's tags only when it is new, changed, or due for its
    /// refresh, instead of once per clip per sweep on stores without MinIO's listing
    /// extension. A cache: deleting it costs one sweep of reads. Unset: no catalogue.
    #[arg(long, env = "EVIDENCE_CATALOGUE_DIR", value_name = "DIR")]
    pub catalogue_dir: Option<std::path::PathBuf>,
    /// With a catalogue: each clip's tags and hold are read again at least this often,
    /// spread evenly over the interval (a retag made directly in storage is seen within
    /// it; a delete always re-reads the tags first, whatever the interval).
    #[arg(long, env = "EVIDENCE_TAG_REFRESH_INTERVAL", default_value = "24h", value_parser = parse_duration)]
    pub tag_refresh_interval: Duration,
    /// With a catalogue: key ranges of one tier listed at once (the split points are
    /// learned from the previous complete listing, about 100,000 clips a range).
    #[arg(long, env = "EVIDENCE_LIST_RANGES", default_value_t = 4)]
    pub list_ranges: usize,
}

impl RunArgs {
    /// The operator's settings from these flags (checked when the operator starts,
    /// [`Settings::check`]). The identity defaults to `$HOSTNAME` (a pod's name).
    pub fn settings(&self) -> Settings {
        let identity = self
            .identity
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| format!("evidence-operator-{}", std::process::id()));
        let leader_election = self.leader_elect.then(|| LeaderElection {
            lease_namespace: self.lease_namespace.clone(),
            lease_name: self.lease_name.clone(),
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
        });
        Settings {
            controllers: controller::Settings {
                allowed_regions: self.installation.regions(),
                operator_identity_namespaces: self
                    .installation
                    .operator_identity_namespaces
                    .clone(),
                allowed_endpoints: self.installation.allowed_endpoints.clone(),
                move_concurrency: self.move_concurrency,
                store_options: StoreOptions {
                    multipart_threshold: self.multipart_threshold,
                    endpoint_regions: self.installation.endpoint_regions(),
                    ..StoreOptions::default()
                },
                min_requeue: self.min_requeue,
                identity,
                cluster_name: self.cluster_name.clone(),
                clock_offset: chrono::TimeDelta::zero(),
                max_clock_skew: self.max_clock_skew,
                skew_check_offset: chrono::TimeDelta::zero(),
                lease: leader_election.as_ref().map(LeaderElection::lease),
                audit_prefix: controller::normalise_prefix(&self.audit_prefix),
                audit_retention: chrono::TimeDelta::days(i64::from(
                    self.audit_retention_days.max(1),
                )),
                integrity_sample: self.integrity_sample,
                catalogue_dir: self.catalogue_dir.clone(),
                catalogue: CatalogueOptions {
                    tag_refresh: self.tag_refresh_interval,
                    list_ranges: self.list_ranges.max(1),
                    ..CatalogueOptions::default()
                },
            },
            watch_namespaces: self.watch_namespace.clone(),
            metrics_addr: self.metrics_addr,
            leader_election,
            shutdown_timeout: self.shutdown_timeout,
        }
    }
}

/// Parse `500ms`, `15s`, `10m`, `2h` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 15s, 10m or 2h"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{s:?} is not a valid duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    runtime::telemetry::init(cli.log_format);
    let result = match cli.command {
        Command::Crds { out } => crds(out),
        Command::Check(args) => check::main(args),
        Command::Plan(args) => plan::main(args),
        Command::Audit(args) => audit::main(*args),
        Command::Ingest(args) => ingest::main(*args),
        Command::Share(args) => share::main(*args),
        Command::Run(args) => match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(runtime::run(args.settings())),
            Err(e) => Err(anyhow::Error::new(e).context("starting the async runtime")),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn crds(out: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    use std::io::Write;
    match out {
        None => {
            let yaml = crate::api::crds::render_yaml()?;
            std::io::stdout().write_all(yaml.as_bytes())?;
        }
        Some(root) => {
            for file in crate::api::crds::files()? {
                let path = root.join(&file.path);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&path, file.contents)?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("7d").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn run_flags_become_settings() {
        let Command::Run(args) = Cli::try_parse_from([
            "evidence-operator",
            "run",
            "--allowed-regions",
            "uk-london-1, eu-west-2",
            "--watch-namespace",
            "a,b",
            "--leader-elect=false",
            "--audit-prefix",
            "/audit",
            "--identity",
            "replica-0",
        ])
        .map(|c| c.command)
        .unwrap() else {
            panic!("not a run command")
        };
        let settings = args.settings();
        assert_eq!(
            settings.controllers.allowed_regions,
            AllowedRegions::new(["uk-london-1"])
        );
        assert_eq!(settings.watch_namespaces, ["a", "b"]);
        assert!(settings.leader_election.is_none());
        assert_eq!(settings.controllers.lease, None);
        assert_eq!(settings.controllers.audit_prefix, "audit/");
        assert_eq!(settings.controllers.identity, "replica-0");
        assert!(settings.check().is_ok());

        let Command::Run(args) =
            Cli::try_parse_from(["evidence-operator", "run", "--renew-deadline", "20s"])
                .map(|c| c.command)
                .unwrap()
        else {
            panic!("not a run command")
        };
        let settings = args.settings();
        assert_eq!(
            settings.controllers.lease.as_deref(),
            Some("default/evidence-operator")
        );
        assert!(
            settings.check().is_err(),
            "a renew deadline past the lease duration is refused"
        );
    }

    #[test]
    fn endpoint_regions_are_declared_by_flag_and_checked_at_start_up() {
        let parse = |argv: &[&str]| {
            let mut all = vec!["evidence-operator", "run"];
            all.extend_from_slice(argv);
            match Cli::try_parse_from(all).map(|c| c.command) {
                Ok(Command::Run(args)) => Ok(args.settings()),
                Ok(_) => panic!("not a run command"),
                Err(e) => Err(e.to_string()),
            }
        };
        let settings = parse(&[
            "--endpoint-region",
            "127.0.0.1:8333=eu-west-2",
            "--endpoint-region",
            "minio.storage.svc=uk-dc-1,[::1]:9000=eu-west-2",
            "--allowed-regions",
            "uk-dc-1",
        ])
        .unwrap();
        let declared = &settings.controllers.store_options.endpoint_regions;
        assert_eq!(
            declared
                .as_slice()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "127.0.0.1:8333=eu-west-2",
                "minio.storage.svc=uk-dc-1",
                "[::1]:9000=eu-west-2"
            ]
        );
        assert!(settings.check().is_ok());
        // a region outside the allowed set: the operator refuses to start
        let settings = parse(&["--endpoint-region", "127.0.0.1:8333=us-east-1"]).unwrap();
        let e = settings.check().unwrap_err().to_string();
        assert!(
            e.contains("us-east-1") && e.contains("not an allowed UK region"),
            "{e}"
        );
        // an AWS host: refused as the flag is read
        let e = parse(&["--endpoint-region", "s3.eu-west-2.amazonaws.com=eu-west-2"]).unwrap_err();
        assert!(e.contains("AWS reports"), "{e}");
        assert!(parse(&["--endpoint-region", "no-region"]).is_err());
    }

    #[test]
    fn the_library_defaults_are_the_flags_defaults() {
        let Command::Run(args) = Cli::try_parse_from([
            "evidence-operator",
            "run",
            "--watch-namespace",
            "ns",
            "--lease-namespace",
            "ns",
        ])
        .map(|c| c.command)
        .unwrap() else {
            panic!("not a run command")
        };
        let flags = args.settings();
        let lib =
            Settings::for_namespace("ns").with_leader_election("ns", runtime::DEFAULT_LEASE_NAME);
        let (f, l) = (&flags.controllers, &lib.controllers);
        assert_eq!(f.allowed_regions, l.allowed_regions);
        assert_eq!(f.allowed_endpoints, l.allowed_endpoints);
        assert_eq!(
            f.store_options.endpoint_regions,
            l.store_options.endpoint_regions
        );
        assert_eq!(
            f.operator_identity_namespaces,
            l.operator_identity_namespaces
        );
        assert_eq!(f.move_concurrency, l.move_concurrency);
        assert_eq!(
            f.store_options.multipart_threshold,
            l.store_options.multipart_threshold
        );
        assert_eq!(f.audit_prefix, l.audit_prefix);
        assert_eq!(f.audit_retention, l.audit_retention);
        assert_eq!(f.integrity_sample, l.integrity_sample);
        assert_eq!(f.catalogue_dir, l.catalogue_dir);
        assert_eq!(f.catalogue.tag_refresh, l.catalogue.tag_refresh);
        assert_eq!(f.catalogue.list_ranges, l.catalogue.list_ranges);
        assert_eq!(f.max_clock_skew, l.max_clock_skew);
        assert_eq!(f.skew_check_offset, l.skew_check_offset);
        assert_eq!(f.lease, l.lease);
        assert_eq!(flags.watch_namespaces, lib.watch_namespaces);
        assert_eq!(flags.shutdown_timeout, lib.shutdown_timeout);
        let (f, l) = (flags.leader_election.unwrap(), lib.leader_election.unwrap());
        assert_eq!(
            (f.lease_duration, f.renew_deadline, f.retry_period),
            (l.lease_duration, l.renew_deadline, l.retry_period)
        );
    }

    #[test]
    fn help_documents_every_run_flag() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        let run = cmd
            .find_subcommand_mut("run")
            .map(|c| c.render_long_help().to_string());
        let help = run.unwrap_or_default();
        for flag in [
            "--allowed-regions",
            "--leader-elect",
            "--metrics-addr",
            "--shutdown-timeout",
            "--max-clock-skew",
        ] {
            assert!(help.contains(flag), "run --help lacks {flag}:\n{help}");
        }
        assert!(
            help.contains("EVIDENCE_ALLOWED_REGIONS"),
            "env vars are shown"
        );
    }
}
