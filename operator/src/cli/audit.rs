//! `evidence-operator audit verify | show`: read an audit chain from storage, verify it
//! and report on it.
//!
//! The chain is reached either through the cluster (`--bucket <namespace>/<name>`: the
//! EvidenceBucket's legal-hold bucket, endpoint and credentials Secret; the head its
//! `AuditTrail` condition reports is checked too), or offline (`--s3-bucket` and
//! `--prefix`, with `--endpoint` and the usual `AWS_*` credentials).

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use kube::Api;

use crate::{
    api::{EvidenceBucket, regions::AllowedRegions},
    audit::{
        AuditAction, AuditLog, AuditTarget, Record, Verification,
        report::{Filter, custody, custody_text, record_line},
        store::client_for,
        verify,
    },
    controller::{
        audit::{audit_target_for, reported_head},
        bucket::{
            bucket_config,
            dereference::{self, Credentials},
        },
    },
    storage::{BucketConfig, TierLocation, Tiers},
};

/// `evidence-operator audit ...`
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// What to do with the chain.
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// The audit subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the chain and report the first break (missing object, altered record,
    /// reordered records). Exits non-zero on any break.
    Verify(SourceArgs),
    /// Print records, filtered by clip, case, action or time; with `--clip`, the clip's
    /// chain-of-custody report (every tier it lived in, when, why, with checksums).
    /// Verifies the chain first and exits non-zero if it is broken.
    Show(ShowArgs),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable text.
    Text,
    /// JSON.
    Json,
}

/// Where the chain is.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// The EvidenceBucket (`namespace/name`) whose chain to read, through the cluster
    /// (KUBECONFIG or in-cluster): its legal-hold bucket, endpoint and credentials.
    #[arg(
        long,
        value_name = "NAMESPACE/NAME",
        required_unless_present = "s3_bucket"
    )]
    pub bucket: Option<String>,
    /// The root audit prefix the operator runs with (`run --audit-prefix`).
    #[arg(long, env = "EVIDENCE_AUDIT_PREFIX", default_value = "evidence-audit/")]
    pub audit_prefix: String,
    /// Offline: the S3 bucket holding the chain.
    #[arg(long, conflicts_with = "bucket", requires = "prefix")]
    pub s3_bucket: Option<String>,
    /// Offline: the chain's key prefix (e.g. `evidence-audit/<namespace>/<name>/`).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Offline: an S3-compatible endpoint (AWS when unset).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint: Option<String>,
    /// Offline: the bucket's region (must be an allowed UK region).
    #[arg(long, env = "AWS_REGION", default_value = "eu-west-2")]
    pub region: String,
    /// Offline: the access key id (default: the AWS credential chain).
    #[arg(
        long,
        env = "AWS_ACCESS_KEY_ID",
        hide_env_values = true,
        requires = "secret_access_key"
    )]
    pub access_key_id: Option<String>,
    /// Offline: the secret access key.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_access_key: Option<String>,
    /// Extra regions this installation declares to be in the UK.
    #[arg(long, env = "EVIDENCE_ALLOWED_REGIONS", value_delimiter = ',')]
    pub allowed_regions: Vec<String>,
    /// The head the chain must reach, `BATCH:SHA256` (e.g. from the EvidenceBucket's
    /// `AuditTrail` condition, or a copy kept elsewhere). With `--bucket`, the
    /// condition's head is used when this is not given.
    #[arg(long, value_name = "BATCH:SHA256")]
    pub expect_head: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
}

/// Flags of `audit show`.
#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// Where the chain is.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Only this clip; prints its chain-of-custody report.
    #[arg(long)]
    pub clip: Option<String>,
    /// Only records naming this case reference.
    #[arg(long)]
    pub case: Option<String>,
    /// Only records about this AccessRequest (`name` in the bucket's namespace, or
    /// `namespace/name`): its manifests (`manifest_written`) and every link shared for
    /// it (`shared`: what, to whom, by whom, until when).
    #[arg(long, value_name = "[NAMESPACE/]NAME")]
    pub request: Option<String>,
    /// Only these actions (repeatable or comma-separated): moved, held, released,
    /// deleted, flagged_for_review, flagged_malformed, failed, refused,
    /// integrity_verified, integrity_mismatch, intended, policy_created,
    /// policy_changed, policy_deleted, claim_taken_over, ingested, soft_deleted,
    /// purged, restored, manifest_written, exported, export_deleted, shared.
    #[arg(long, value_delimiter = ',')]
    pub action: Vec<String>,
    /// Only records at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// Only records before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<DateTime<Utc>>,
}

/// Run `evidence-operator audit ...`.
pub fn main(args: AuditArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let report = match args.command {
            AuditCommand::Verify(src) => run_verify(&src, None).await?,
            AuditCommand::Show(show) => run_show(&show, None).await?,
        };
        print!("{}", report.output);
        match report.broken {
            None => Ok(()),
            Some(b) => bail!("{b}"),
        }
    })
}

/// What `audit verify` / `audit show` print, and whether the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The text or JSON to print.
    pub output: String,
    /// The first break, as a message, when the chain is broken (exit non-zero).
    pub broken: Option<String>,
}

/// A chain opened for reading.
struct Opened {
    log: AuditLog,
    expected: Option<(u64, String)>,
}

fn parse_head(s: &str) -> anyhow::Result<(u64, String)> {
    let (b, h) = s
        .split_once(':')
        .with_context(|| format!("--expect-head {s:?}: expected BATCH:SHA256"))?;
    Ok((
        b.parse()
            .with_context(|| format!("--expect-head {s:?}: {b:?} is not a batch number"))?,
        h.to_ascii_lowercase(),
    ))
}

async fn open(src: &SourceArgs, client: Option<kube::Client>) -> anyhow::Result<Opened> {
    let allowed = AllowedRegions::new(&src.allowed_regions);
    let mut expected = src.expect_head.as_deref().map(parse_head).transpose()?;
    if let Some(name) = &src.bucket {
        let (ns, name) = name
            .split_once('/')
            .with_context(|| format!("--bucket {name:?}: expected NAMESPACE/NAME"))?;
        let client = match client {
            Some(c) => c,
            None => kube::Client::try_default()
                .await
                .context("connecting to the Kubernetes API server")?,
        };
        let api: Api<EvidenceBucket> = Api::namespaced(client.clone(), ns);
        let eb = api
            .get(name)
            .await
            .with_context(|| format!("reading EvidenceBucket {ns}/{name}"))?;
        if !allowed.contains(&eb.spec.region) {
            bail!(
                "EvidenceBucket {ns}/{name} declares region {:?}, not an allowed UK region",
                eb.spec.region
            );
        }
        let secret = match dereference::credentials(&client, &eb).await? {
            Credentials::Found(secret) => Some(*secret),
            Credentials::NotNamed | Credentials::Missing => None,
        };
        let cfg = bucket_config(&eb, secret.as_ref(), &allowed)
            .with_context(|| format!("EvidenceBucket {ns}/{name}"))?;
        let root = crate::controller::normalise_prefix(&src.audit_prefix);
        let target = audit_target_for(&eb, &root, None);
        if expected.is_none() {
            expected = reported_head(&eb);
        }
        let log = AuditLog::connect(&cfg, target).await?;
        return Ok(Opened { log, expected });
    }
    let (Some(bucket), Some(prefix)) = (&src.s3_bucket, &src.prefix) else {
        bail!("give --bucket NAMESPACE/NAME, or --s3-bucket and --prefix");
    };
    if !allowed.contains(&src.region) {
        bail!("region {:?} is not an allowed UK region", src.region);
    }
    let cfg = BucketConfig {
        name: format!("s3://{bucket}"),
        declared_region: src.region.clone(),
        endpoint: src.endpoint.clone(),
        force_path_style: src.endpoint.is_some(),
        credentials: match (&src.access_key_id, &src.secret_access_key) {
            (Some(id), Some(secret)) => Some(crate::storage::StaticCredentials {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: None,
            }),
            _ => None,
        },
        tiers: Tiers {
            hot: TierLocation::bucket(bucket.clone()),
            cool: TierLocation::bucket(bucket.clone()),
            legal_hold: TierLocation::bucket(bucket.clone()),
        },
        allowed_regions: allowed.as_slice().to_vec(),
    };
    crate::storage::region::check_endpoint(cfg.endpoint.as_deref(), &cfg.allowed_regions)?;
    let log = AuditLog::with_client(
        client_for(&cfg).await,
        AuditTarget {
            bucket: bucket.clone(),
            prefix: crate::controller::normalise_prefix(prefix),
            retention: None,
        },
    )?;
    Ok(Opened { log, expected })
}

async fn read_and_verify(
    src: &SourceArgs,
    client: Option<kube::Client>,
) -> anyhow::Result<(String, Verification, Vec<Record>)> {
    let opened = open(src, client).await?;
    let t = opened.log.target().clone();
    let objects = opened.log.read_all().await?;
    let expected = opened.expected.as_ref().map(|(b, h)| (*b, h.as_str()));
    let (v, records) = verify(&t.prefix, &objects, expected);
    Ok((format!("s3://{}/{}", t.bucket, t.prefix), v, records))
}

fn verification_text(chain: &str, v: &Verification) -> String {
    let mut s = match &v.first_break {
        None => format!(
            "chain {chain}: OK: {} batch(es), {} record(s), head {}\n",
            v.batches, v.records, v.head
        ),
        Some(b) => format!(
            "chain {chain}: BROKEN after {} good batch(es), {} good record(s): {b}\n",
            v.batches, v.records
        ),
    };
    for n in &v.notes {
        s.push_str(&format!("note: {n}\n"));
    }
    s
}

/// `audit verify`: the report (text or JSON) and the break, if any. `client` reaches
/// the cluster for `--bucket` (default: KUBECONFIG or in-cluster).
pub async fn run_verify(src: &SourceArgs, client: Option<kube::Client>) -> anyhow::Result<Report> {
    let (chain, v, _) = read_and_verify(src, client).await?;
    let out = match src.output {
        Output::Text => verification_text(&chain, &v),
        Output::Json => {
            format!(
                "{}\n",
                serde_json::to_string_pretty(
                    &serde_json::json!({ "chain": chain, "ok": v.ok(), "verification": v })
                )?
            )
        }
    };
    Ok(Report {
        output: out,
        broken: v
            .first_break
            .as_ref()
            .map(|b| format!("audit chain {chain} is broken: {b}")),
    })
}

/// `audit show`: the filtered records or the custody report (text or JSON), of the
/// records before the first break if the chain is broken (then `broken` says so).
pub async fn run_show(args: &ShowArgs, client: Option<kube::Client>) -> anyhow::Result<Report> {
    let mut actions = Vec::new();
    for a in &args.action {
        actions.push(
            AuditAction::parse(a.trim())
                .with_context(|| format!("--action {a:?} is not an audit action"))?,
        );
    }
    let request = args.request.as_ref().map(|r| {
        match (
            r.contains('/'),
            args.source
                .bucket
                .as_deref()
                .and_then(|b| b.split_once('/')),
        ) {
            (false, Some((ns, _))) => format!("{ns}/{r}"),
            _ => r.clone(),
        }
    });
    let filter = Filter {
        clip: args.clip.clone(),
        case: args.case.clone(),
        request,
        actions,
        since: args.since,
        until: args.until,
    };
    let (chain, v, records) = read_and_verify(&args.source, client).await?;
    let shown: Vec<Record> = records.into_iter().filter(|r| filter.matches(r)).collect();
    let out = match (args.source.output, &args.clip) {
        (Output::Text, Some(clip)) => format!(
            "{}\n{}",
            verification_text(&chain, &v),
            custody_text(&custody(&shown, clip))
        ),
        (Output::Text, None) => {
            let mut s = verification_text(&chain, &v);
            s.push_str(&format!("{} record(s) match\n", shown.len()));
            for r in &shown {
                s.push_str(&record_line(r));
                s.push('\n');
            }
            s
        }
        (Output::Json, Some(clip)) => format!(
            "{}\n",
            serde_json::to_string_pretty(&serde_json::json!({
                "chain": chain, "ok": v.ok(), "verification": v,
                "custody": custody(&shown, clip),
            }))?
        ),
        (Output::Json, None) => format!(
            "{}\n",
            serde_json::to_string_pretty(&serde_json::json!({
                "chain": chain, "ok": v.ok(), "verification": v, "records": shown,
            }))?
        ),
    };
    Ok(Report {
        output: out,
        broken: v.first_break.as_ref().map(|b| {
            format!(
                "audit chain {chain} is broken: {b}; only the records before the break are shown"
            )
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse() {
        assert!(matches!(parse_head("3:ABCD"), Ok((3, h)) if h == "abcd"));
        assert!(parse_head("x:abcd").is_err());
        assert!(parse_head("abcd").is_err());
    }
}
