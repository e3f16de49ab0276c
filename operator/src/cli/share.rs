//! `evidence-operator share`: time-limited links to the clips of an AccessRequest for a
//! named recipient. The clips are those of the request's manifest (read back from the
//! export location and checked against the SHA-256 its status and the audit chain
//! hold); each link is an S3 presigned `GET` of the clip's exact version; every link is
//! recorded in the bucket's audit chain (`shared`: what, to whom, by whom, until when)
//! before any is printed.

use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail, ensure};
use aws_sdk_s3::primitives::ByteStream;
use clap::Args;
use k8s_openapi::api::{authentication::v1::SelfSubjectReview, core::v1::Secret};
use kube::{Api, Client, api::PostParams};
use sha2::{Digest, Sha256};

use crate::{
    api::AccessRequest,
    audit::{Actor, AuditLog, AuditSink, BucketAudit, ObjectInfo, store::client_for},
    controller::{self, audit::audit_target_for, bucket::export::secret_credentials},
    disclosure::{
        Manifest,
        share::{SharedLink, presign, shared_entry},
    },
    ingest::{default_host, default_user},
};

/// Flags of `evidence-operator share`.
#[derive(Debug, Clone, Args)]
#[command(
    after_long_help = "The request must be open and its manifest written (status.manifest; \
condition Ready=True). Every link is recorded in the EvidenceBucket's audit chain before it is \
printed; `evidence-operator audit show --bucket NS/BUCKET --request NAME` lists them. A link \
reads one version of one clip, with the credentials of the EvidenceBucket, until it expires; \
it cannot be revoked before then except by rotating those credentials."
)]
pub struct ShareArgs {
    /// The AccessRequest (`namespace/name`).
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub request: String,
    /// Who the links are for, as the audit records will name them, such as
    /// "CPS case 01/123" or "the data subject, via the DPO".
    #[arg(long)]
    pub recipient: String,
    /// How long the links work, such as 72h or 7d (at most 7 days, the limit of an S3
    /// signature).
    #[arg(long, default_value = "72h", value_parser = super::parse_duration)]
    pub expires: Duration,
    /// Only these clips of the manifest (repeatable). Default: every clip it lists.
    #[arg(long = "key", value_name = "KEY")]
    pub keys: Vec<String>,
    /// Who issues the links, in the audit records. Default: the Kubernetes user the API
    /// server names for these credentials (SelfSubjectReview), else $USER@host.
    #[arg(long, env = "EVIDENCE_SHARE_USER")]
    pub issued_by: Option<String>,
    /// Print the links as JSON.
    #[arg(long)]
    pub json: bool,
    /// The root audit prefix the operator runs with (`run --audit-prefix`).
    #[arg(long, env = "EVIDENCE_AUDIT_PREFIX", default_value = "evidence-audit/")]
    pub audit_prefix: String,
    /// Object Lock COMPLIANCE retention of the audit batch, in days (as the operator's
    /// --audit-retention-days).
    #[arg(long, env = "EVIDENCE_AUDIT_RETENTION_DAYS", default_value_t = 2557)]
    pub audit_retention_days: u32,
    /// What the installation allows, as the operator's flags of the same names.
    #[command(flatten)]
    pub installation: super::InstallationArgs,
}

/// What `share` did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareReport {
    /// The AccessRequest.
    pub request: String,
    /// Its reference.
    pub reference: String,
    /// The recipient.
    pub recipient: String,
    /// Who issued the links.
    pub issued_by: String,
    /// The manifest the clips come from.
    pub manifest: String,
    /// The links.
    pub links: Vec<SharedLink>,
}

/// Who the API server says these credentials are.
async fn kubernetes_user(client: &Client) -> Option<String> {
    let review = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .ok()?;
    review.status?.user_info?.username
}

/// Issue the links (valid from `start`), record them, and report them.
pub async fn share(
    client: Client,
    args: &ShareArgs,
    start: SystemTime,
) -> anyhow::Result<ShareReport> {
    let (ns, name) = args
        .request
        .split_once('/')
        .with_context(|| format!("--request {:?}: expected NAMESPACE/NAME", args.request))?;
    ensure!(
        !args.recipient.trim().is_empty(),
        "--recipient must not be blank"
    );
    let r = Api::<AccessRequest>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(controller::Error::read(format!(
            "AccessRequest {ns}/{name}"
        )))?
        .with_context(|| format!("AccessRequest {ns}/{name} not found"))?;
    if r.spec.closed {
        bail!("AccessRequest {ns}/{name} is closed: nothing is shared for a closed request");
    }
    let export = r
        .spec
        .export
        .as_ref()
        .with_context(|| format!("AccessRequest {ns}/{name} names no export location (spec.export), so it has no manifest to share from"))?;
    let written = r
        .status
        .as_ref()
        .and_then(|s| s.manifest.clone())
        .with_context(|| format!("AccessRequest {ns}/{name} has no manifest yet (status.manifest): wait for condition Ready"))?;
    let checked = super::checked_bucket(
        &client,
        ns,
        &r.spec.bucket_ref.name,
        &args.installation,
        "shared",
    )
    .await?;

    // The manifest, read back and checked against the hash the status (and the audit
    // chain) holds.
    let credentials = match &export.credentials_secret_ref {
        None => None,
        Some(sr) => {
            let secret = Api::<Secret>::namespaced(client.clone(), ns)
                .get(&sr.name)
                .await
                .with_context(|| format!("reading Secret {ns}/{}", sr.name))?;
            Some(secret_credentials(&secret, sr).map_err(anyhow::Error::msg)?)
        }
    };
    let export_cfg = crate::disclosure::export_config(
        &checked.config,
        &format!("{ns}/{name}"),
        export,
        credentials,
    );
    let (bucket, key) = written
        .location
        .strip_prefix("s3://")
        .and_then(|l| l.split_once('/'))
        .with_context(|| {
            format!(
                "status.manifest.location {:?} is not s3://BUCKET/KEY",
                written.location
            )
        })?;
    let body = client_for(&export_cfg)
        .await
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "reading the manifest {}: {}",
                written.location,
                aws_sdk_s3::error::DisplayErrorContext(e)
            )
        })?
        .body;
    let body = collect(body)
        .await
        .with_context(|| format!("reading the manifest {}", written.location))?;
    let sha = hex::encode(Sha256::digest(&body));
    ensure!(
        sha == written.sha256,
        "the manifest {} has SHA-256 {sha}, not {} as recorded: nothing is shared",
        written.location,
        written.sha256
    );
    let manifest: Manifest = serde_json::from_slice(&body)
        .with_context(|| format!("parsing the manifest {}", written.location))?;
    let mut clips = manifest.clips.clone();
    if !args.keys.is_empty() {
        for k in &args.keys {
            ensure!(
                clips.iter().any(|c| &c.key == k),
                "{k:?} is not in the manifest of {ns}/{name}"
            );
        }
        clips.retain(|c| args.keys.contains(&c.key));
    }
    ensure!(
        !clips.is_empty(),
        "the manifest of {ns}/{name} lists no clip: nothing to share"
    );

    let links = presign(
        &client_for(&checked.config).await,
        &checked.config.tiers,
        &clips,
        start,
        args.expires,
    )
    .await?;

    // Recorded first: a link not in the chain is never printed.
    let issued_by = match &args.issued_by {
        Some(u) => u.clone(),
        None => kubernetes_user(&client)
            .await
            .unwrap_or_else(|| format!("{}@{}", default_user(), default_host())),
    };
    let object = ObjectInfo {
        kind: "AccessRequest".into(),
        name: format!("{ns}/{name}"),
        uid: r.metadata.uid.clone(),
        generation: r.metadata.generation,
        managers: Vec::new(),
        changed_by: None,
    };
    let entries = links
        .iter()
        .map(|l| shared_entry(&object, &r.spec.reference, l, &args.recipient, &issued_by))
        .collect();
    let root = controller::normalise_prefix(&args.audit_prefix);
    let retention = chrono::TimeDelta::days(i64::from(args.audit_retention_days.max(1)));
    let log = AuditLog::connect(
        &checked.config,
        audit_target_for(&checked.bucket, &root, Some(retention)),
    )
    .await?;
    BucketAudit {
        log: &log,
        actor: Actor {
            operator: format!("share:{issued_by}@{}", default_host()),
            lease: None,
            lease_holder: None,
        },
        bucket: checked.key.clone(),
    }
    .record(entries)
    .await
    .context("recording the links in the audit chain (no link was given out)")?;
    Ok(ShareReport {
        request: format!("{ns}/{name}"),
        reference: r.spec.reference.clone(),
        recipient: args.recipient.clone(),
        issued_by,
        manifest: written.location,
        links,
    })
}

async fn collect(body: ByteStream) -> anyhow::Result<Vec<u8>> {
    Ok(body.collect().await?.into_bytes().to_vec())
}

impl ShareReport {
    /// The links for people.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{} link(s) for {} ({}), given to {:?} by {}, recorded in the audit chain:\n",
            self.links.len(),
            self.request,
            self.reference,
            self.recipient,
            self.issued_by
        );
        for l in &self.links {
            s.push_str(&format!(
                "{} ({} bytes, SHA-256 {}), until {}:\n  {}\n",
                l.key,
                l.size,
                l.sha256,
                l.expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                l.url
            ));
        }
        s
    }
}

/// Run `evidence-operator share`.
pub fn main(args: ShareArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let client = Client::try_default()
            .await
            .context("connecting to the Kubernetes API server")?;
        let report = share(client, &args, SystemTime::now()).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", report.to_text());
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        share: super::ShareArgs,
    }

    #[test]
    fn help_explains_every_flag_and_expiry_parses() {
        let help = Cli::command().render_long_help().to_string();
        for flag in [
            "--request",
            "--recipient",
            "--expires",
            "--key",
            "--issued-by",
            "--json",
        ] {
            assert!(help.contains(flag), "{flag} missing from:\n{help}");
        }
        let c = Cli::try_parse_from([
            "x",
            "--request",
            "ns/sar",
            "--recipient",
            "CPS",
            "--expires",
            "2h",
        ])
        .unwrap();
        assert_eq!(c.share.expires, std::time::Duration::from_secs(7200));
        assert!(Cli::try_parse_from(["x", "--recipient", "CPS"]).is_err());
    }
}
