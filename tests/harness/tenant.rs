//! One tenant of the operator, as the integration tests set it up: a namespace with the
//! credentials Secret `s3`, three tier buckets (`<ns>-hot`, `<ns>-cool` and the Object
//! Lock bucket `<ns>-lock`) on one of the S3 servers ([`Backend`]: the UK MinIO by
//! default, or SeaweedFS), the resources applied by server-side apply, clips uploaded
//! with their tags, and the reads the tests check (keys, holds, status conditions).

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, ObjectLockLegalHoldStatus,
};
use chrono::{SecondsFormat, Utc};
use evidence_operator::{
    api::{
        EvidenceBucket, LegalHold, RetentionPolicy,
        clip::{TAG_CAMERA, TAG_CATEGORY, TAG_RECORDED_AT, Tag},
    },
    storage::tagging_query,
};
use k8s_openapi::api::{
    core::v1::{Namespace, Secret},
    events::v1::Event,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

use crate::{Servers, ensure_crds, eventually, servers, unique_name};

/// Seconds in a day.
pub const DAY: i64 = 24 * 3600;

/// Create a tier bucket in `eu-west-2` (or in the store's own region when `uk` is
/// false), with Object Lock when `lock`.
pub async fn create_bucket(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    uk: bool,
    lock: bool,
) -> Result<()> {
    let mut req = s3.create_bucket().bucket(bucket);
    if uk {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::EuWest2)
                .build(),
        );
    }
    if lock {
        req = req.object_lock_enabled_for_bucket(true);
    }
    req.send()
        .await
        .with_context(|| format!("creating {bucket}"))?;
    Ok(())
}

/// Turn S3 versioning on (`Enabled`) for `bucket`.
pub async fn enable_versioning(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<()> {
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .with_context(|| format!("enabling versioning on {bucket}"))?;
    Ok(())
}

/// Replace the tags of the current version of `key` in `bucket`, behind the operator's
/// back (an officer re-categorising a clip).
pub async fn retag(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, tags: &[Tag]) -> Result<()> {
    let set = tags
        .iter()
        .map(|t| {
            aws_sdk_s3::types::Tag::builder()
                .key(&t.key)
                .value(&t.value)
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    s3.put_object_tagging()
        .bucket(bucket)
        .key(key)
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .set_tag_set(Some(set))
                .build()?,
        )
        .send()
        .await
        .with_context(|| format!("re-tagging {key}"))?;
    Ok(())
}

/// The S3 server a tenant's buckets are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The UK MinIO (region `eu-west-2`, with its listing extension).
    Minio,
    /// SeaweedFS: AWS semantics without MinIO's extension, and no region reported (an
    /// operator over it needs [`Servers::seaweedfs_declaration`]).
    Seaweedfs,
}

impl Backend {
    /// Its S3 endpoint.
    pub fn endpoint(self, s: &Servers) -> String {
        match self {
            Backend::Minio => s.s3_endpoint.clone(),
            Backend::Seaweedfs => s.seaweedfs_endpoint.clone(),
        }
    }

    /// A client of it.
    pub fn s3_client(self, s: &Servers) -> aws_sdk_s3::Client {
        match self {
            Backend::Minio => s.s3_client(),
            Backend::Seaweedfs => s.seaweedfs_s3_client(),
        }
    }

    /// The operator flags a test's operator needs over it: none for MinIO (it reports
    /// its region), the endpoint's region declaration for SeaweedFS.
    pub fn operator_flags(self, s: &Servers) -> Vec<String> {
        match self {
            Backend::Minio => Vec::new(),
            Backend::Seaweedfs => vec!["--endpoint-region".into(), s.seaweedfs_declaration()],
        }
    }
}

/// A namespace with its Secret and three tier buckets.
pub struct Tenant {
    /// The namespace.
    pub ns: String,
    /// A cluster-admin client.
    pub client: Client,
    /// A client of the store the buckets are in.
    pub s3: aws_sdk_s3::Client,
    /// The hot tier bucket.
    pub hot: String,
    /// The cool tier bucket.
    pub cool: String,
    /// The legal-hold tier bucket (Object Lock).
    pub lock: String,
}

impl Tenant {
    /// A new namespace (`unique_name(prefix)`) on the UK store.
    pub async fn new(prefix: &str) -> Result<Tenant> {
        Self::on(prefix, servers(), false).await
    }

    /// A new namespace, its buckets on the UK store or (`non_uk`) the us-east-1 one.
    pub async fn on(prefix: &str, s: &Servers, non_uk: bool) -> Result<Tenant> {
        let (client, ns) = Self::namespace(prefix, s).await?;
        Self::in_namespace(client, &ns, s, non_uk).await
    }

    /// A new namespace, its buckets on `backend` (created in `eu-west-2`).
    pub async fn on_backend(prefix: &str, backend: Backend) -> Result<Tenant> {
        let s = servers();
        let (client, ns) = Self::namespace(prefix, s).await?;
        Self::with_store(client, &ns, s, backend.s3_client(s), true).await
    }

    async fn namespace(prefix: &str, s: &Servers) -> Result<(Client, String)> {
        let client = s.kube_client().await?;
        ensure_crds(&client).await?;
        let ns = unique_name(prefix);
        let nss: Api<Namespace> = Api::all(client.clone());
        nss.create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": ns } }))?,
        )
        .await?;
        Ok((client, ns))
    }

    /// Buckets and the Secret `s3` for an existing namespace `ns`.
    pub async fn in_namespace(
        client: Client,
        ns: &str,
        s: &Servers,
        non_uk: bool,
    ) -> Result<Tenant> {
        let s3 = if non_uk {
            s.non_uk_s3_client()
        } else {
            s.s3_client()
        };
        Self::with_store(client, ns, s, s3, !non_uk).await
    }

    /// Buckets (in `eu-west-2` when `uk`) through `s3`, and the Secret `s3`, for `ns`.
    async fn with_store(
        client: Client,
        ns: &str,
        s: &Servers,
        s3: aws_sdk_s3::Client,
        uk: bool,
    ) -> Result<Tenant> {
        let t = Tenant {
            hot: format!("{ns}-hot"),
            cool: format!("{ns}-cool"),
            lock: format!("{ns}-lock"),
            ns: ns.to_string(),
            client,
            s3,
        };
        for (bucket, lock) in [(&t.hot, false), (&t.cool, false), (&t.lock, true)] {
            create_bucket(&t.s3, bucket, uk, lock).await?;
        }
        let secrets: Api<Secret> = Api::namespaced(t.client.clone(), &t.ns);
        secrets
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": { "name": "s3" },
                    "stringData": {
                        "AWS_ACCESS_KEY_ID": s.s3_access_key,
                        "AWS_SECRET_ACCESS_KEY": s.s3_secret_key,
                    }
                }))?,
            )
            .await?;
        Ok(t)
    }

    /// Server-side apply one of the operator's resources (by its `kind`) in the
    /// namespace, as the client `client`.
    pub async fn apply_as(&self, client: &Client, doc: serde_json::Value) -> Result<()> {
        let name = doc["metadata"]["name"]
            .as_str()
            .context("metadata.name")?
            .to_string();
        let pp = PatchParams::apply("tests").force();
        let patch = Patch::Apply(&doc);
        match doc["kind"].as_str() {
            Some("RetentionPolicy") => {
                Api::<RetentionPolicy>::namespaced(client.clone(), &self.ns)
                    .patch(&name, &pp, &patch)
                    .await?;
            }
            Some("EvidenceBucket") => {
                Api::<EvidenceBucket>::namespaced(client.clone(), &self.ns)
                    .patch(&name, &pp, &patch)
                    .await?;
            }
            Some("LegalHold") => {
                Api::<LegalHold>::namespaced(client.clone(), &self.ns)
                    .patch(&name, &pp, &patch)
                    .await?;
            }
            Some("AccessRequest") => {
                Api::<evidence_operator::api::AccessRequest>::namespaced(client.clone(), &self.ns)
                    .patch(&name, &pp, &patch)
                    .await?;
            }
            Some("ClipRestore") => {
                Api::<evidence_operator::api::ClipRestore>::namespaced(client.clone(), &self.ns)
                    .patch(&name, &pp, &patch)
                    .await?;
            }
            other => bail!("unexpected kind {other:?}"),
        }
        Ok(())
    }

    /// Server-side apply one of the operator's resources, as the admin.
    pub async fn apply(&self, doc: serde_json::Value) -> Result<()> {
        self.apply_as(&self.client, doc).await
    }

    /// Apply a RetentionPolicy.
    pub async fn apply_policy(&self, name: &str, spec: serde_json::Value) -> Result<()> {
        self.apply(json!({
            "apiVersion": "evidence.bwv.io/v1alpha1", "kind": "RetentionPolicy",
            "metadata": { "name": name }, "spec": spec,
        }))
        .await
    }

    /// The EvidenceBucket `name` over this tenant's buckets, using the policy `policy`
    /// and the Secret `s3`.
    pub fn bucket_doc(&self, name: &str, endpoint: &str, interval: &str) -> serde_json::Value {
        json!({
            "apiVersion": "evidence.bwv.io/v1alpha1", "kind": "EvidenceBucket",
            "metadata": { "name": name },
            "spec": {
                "region": "eu-west-2",
                "endpoint": endpoint,
                "forcePathStyle": true,
                "credentialsSecretRef": { "name": "s3" },
                "retentionPolicyRef": { "name": "policy" },
                "tiers": {
                    "hot": { "bucket": self.hot },
                    "cool": { "bucket": self.cool },
                    "legalHold": { "bucket": self.lock },
                },
                "sweepInterval": interval,
            }
        })
    }

    /// Apply [`Tenant::bucket_doc`].
    pub async fn apply_bucket(&self, name: &str, endpoint: &str, interval: &str) -> Result<()> {
        self.apply(self.bucket_doc(name, endpoint, interval)).await
    }

    /// Apply a LegalHold on the bucket `unit`.
    pub async fn apply_hold(
        &self,
        name: &str,
        case_reference: &str,
        reason: &str,
        selector: serde_json::Value,
    ) -> Result<()> {
        self.apply(json!({
            "apiVersion": "evidence.bwv.io/v1alpha1", "kind": "LegalHold",
            "metadata": { "name": name },
            "spec": {
                "bucketRef": { "name": "unit" },
                "caseReference": case_reference,
                "reason": reason,
                "selector": selector,
            }
        }))
        .await
    }

    /// Upload a clip to the hot tier, recorded `age_days` ago on camera `cam-007`, in
    /// `category` (none: untagged), with extra tags.
    pub async fn put_clip(
        &self,
        key: &str,
        category: Option<&str>,
        age_days: i64,
        extra: &[(&str, &str)],
    ) -> Result<()> {
        self.put_clip_in(&self.hot.clone(), key, category, age_days, extra)
            .await
    }

    /// [`Tenant::put_clip`] into another of the tenant's buckets (e.g. straight into cool).
    pub async fn put_clip_in(
        &self,
        bucket: &str,
        key: &str,
        category: Option<&str>,
        age_days: i64,
        extra: &[(&str, &str)],
    ) -> Result<()> {
        let recorded = (Utc::now() - chrono::Duration::seconds(age_days * DAY))
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut tags = vec![
            (TAG_RECORDED_AT.to_string(), recorded),
            (TAG_CAMERA.to_string(), "cam-007".to_string()),
        ];
        if let Some(c) = category {
            tags.push((TAG_CATEGORY.to_string(), c.to_string()));
        }
        for (k, v) in extra {
            tags.push(((*k).to_string(), (*v).to_string()));
        }
        self.put_raw_in(bucket, key, &tags).await
    }

    /// Upload a clip to the hot tier with exactly these tags.
    pub async fn put_raw(&self, key: &str, tags: &[(String, String)]) -> Result<()> {
        self.put_raw_in(&self.hot.clone(), key, tags).await
    }

    /// Upload a clip with exactly these tags into `bucket` (one of the tenant's).
    pub async fn put_raw_in(
        &self,
        bucket: &str,
        key: &str,
        tags: &[(String, String)],
    ) -> Result<()> {
        let query = tagging_query(tags.iter().map(|(k, v)| (k, v)));
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .tagging(query)
            .body(format!("clip {key} ").repeat(200).into_bytes().into())
            .send()
            .await
            .with_context(|| format!("uploading {key}"))?;
        Ok(())
    }

    /// Every key in `bucket`, but the operator's storage claims (`.evidence-claims/`).
    pub async fn keys(&self, bucket: &str) -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for o in page?.contents() {
                if let Some(k) = o.key()
                    && !k.starts_with(evidence_operator::storage::claim::CLAIMS_PREFIX)
                {
                    out.insert(k.to_string());
                }
            }
        }
        Ok(out)
    }

    /// Whether the current version of `key` in the legal-hold bucket is under legal hold.
    pub async fn held(&self, key: &str) -> Result<bool> {
        let r = self
            .s3
            .get_object_legal_hold()
            .bucket(&self.lock)
            .key(key)
            .send()
            .await?;
        Ok(r.legal_hold().and_then(|h| h.status()) == Some(&ObjectLockLegalHoldStatus::On))
    }

    /// Waits (up to 30 s) for an event in the tenant's namespace that `matches`.
    pub async fn event(&self, what: &str, matches: impl Fn(&Event) -> bool) -> Result<()> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.ns);
        eventually(std::time::Duration::from_secs(30), what, || async {
            let found = events
                .list(&Default::default())
                .await?
                .items
                .iter()
                .any(&matches);
            Ok(found.then_some(()))
        })
        .await
    }

    /// The status of the EvidenceBucket `name`, as JSON.
    pub async fn bucket_status(&self, name: &str) -> Result<serde_json::Value> {
        let api: Api<EvidenceBucket> = Api::namespaced(self.client.clone(), &self.ns);
        Ok(serde_json::to_value(api.get(name).await?.status)?)
    }

    /// One condition of the EvidenceBucket `name`: (status, reason, message).
    pub async fn condition(
        &self,
        name: &str,
        type_: &str,
    ) -> Result<Option<(String, String, String)>> {
        let status = self.bucket_status(name).await?;
        Ok(status["conditions"].as_array().and_then(|cs| {
            cs.iter().find(|c| c["type"] == type_).map(|c| {
                (
                    c["status"].as_str().unwrap_or_default().to_string(),
                    c["reason"].as_str().unwrap_or_default().to_string(),
                    c["message"].as_str().unwrap_or_default().to_string(),
                )
            })
        }))
    }
}
