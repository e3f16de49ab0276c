//! `EvidenceBucket`: where one unit's clips live. A UK region, an S3-compatible store,
//! the buckets of the three tiers (hot, cool, legal-hold), the retention policy that
//! governs them, and how often the operator sweeps them.
//!
//! The status types are defined here for the controller to fill: conditions, per-tier
//! counts, the last sweep's outcome and when the next one is due.

// kube-derive takes one `printcolumn(...)` per column; clippy reads the repeated
// `type_ = "string"` arguments as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::{clip::Tier, duration::Interval};

/// Annotation on an EvidenceBucket naming the uid of a previous owner whose storage
/// claims it takes over (an explicit act, recorded in the audit chain; see README
/// "Multi-tenancy").
pub const TAKE_OVER_ANNOTATION: &str = "evidence.bwv.io/take-over-claim";

/// The S3 bucket-naming rules in one pattern: 3 to 63 characters, lower-case letters,
/// digits, dots and dashes, starting and ending with a letter or digit.
pub const BUCKET_NAME_PATTERN: &str = "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$";

// The messages of the CRD's rules, each defined once: the attributes below put them in
// the CRD, and [`super::validation`] gives the same words for the same problems.

/// `region` is not a well-formed region name.
pub const REGION_NAME_MESSAGE: &str =
    "region must be a region name such as eu-west-2: lower-case letters, digits and dashes";
/// `endpoint` is not an http(s) URL with a host.
pub const ENDPOINT_MESSAGE: &str = "endpoint must be an http:// or https:// URL with a host";
/// `endpoint` is a link-local or cloud metadata address.
pub const ENDPOINT_METADATA_MESSAGE: &str = "endpoint must not be a link-local or cloud metadata address (169.254.0.0/16, fe80::/10, fd00:ec2::254, metadata.google.internal)";
/// The legal-hold tier shares a bucket with the hot or the cool tier.
pub const LEGAL_HOLD_OWN_BUCKET_MESSAGE: &str =
    "the legalHold tier must be a bucket of its own, not the hot or cool bucket";
/// Hot and cool are the same place: same bucket, prefix and storage class.
pub const HOT_COOL_DISTINCT_MESSAGE: &str = "hot and cool share a bucket: give them different prefixes, or different storage classes on both";
/// A tier's `bucket` breaks the S3 naming rules.
pub const BUCKET_NAME_MESSAGE: &str = "bucket must follow the S3 naming rules: 3 to 63 lower-case letters, digits, dots and dashes, starting and ending with a letter or digit";
/// A tier's `prefix` starts with `/`.
pub const PREFIX_MESSAGE: &str = "prefix must not start with /";
/// A tier's `storageClass` is not a storage class name.
pub const STORAGE_CLASS_MESSAGE: &str =
    "storageClass is an S3 storage class name such as STANDARD or STANDARD_IA";
/// A tier's `storageClass` is an archive class that needs a restore before reading.
pub const ARCHIVE_STORAGE_CLASS_MESSAGE: &str = "archive storage classes (GLACIER, DEEP_ARCHIVE) cannot be read without a restore, so clips there cannot be verified";

/// The storage for one unit's body-worn video clips: a UK region, an S3-compatible
/// endpoint, one bucket per tier (hot, cool, legal-hold) and the RetentionPolicy that
/// decides what moves, what is held and what is deleted.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "evidence.bwv.io",
    version = "v1alpha1",
    kind = "EvidenceBucket",
    doc = "Where one unit's body-worn video clips live: a UK region, an S3-compatible store, the hot, cool and legal-hold buckets, and the RetentionPolicy that governs them.",
    namespaced,
    status = "EvidenceBucketStatus",
    shortname = "eb",
    category = "evidence",
    printcolumn(name = "Region", type_ = "string", json_path = ".spec.region"),
    printcolumn(
        name = "Policy",
        type_ = "string",
        json_path = ".spec.retentionPolicyRef.name"
    ),
    printcolumn(
        name = "Hot",
        type_ = "integer",
        description = "Clips in the hot tier",
        json_path = ".status.tiers.hot.clips"
    ),
    printcolumn(
        name = "Cool",
        type_ = "integer",
        description = "Clips in the cool tier",
        json_path = ".status.tiers.cool.clips"
    ),
    printcolumn(
        name = "Held",
        type_ = "integer",
        description = "Clips in the legal-hold tier",
        json_path = ".status.tiers.legalHold.clips"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceBucketSpec {
    /// The storage region. Must be a UK region: `eu-west-2` (AWS London), `uksouth`,
    /// `ukwest` (Azure), `europe-west2` (Google London), or one listed by the
    /// installation in ConfigMap `evidence-operator-system/evidence-operator-regions`
    /// (key `extraRegions`) for on-premises stores. The operator also proves, before
    /// any write, that each bucket really is in this region.
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')")
        .message(REGION_NAME_MESSAGE))]
    #[schemars(length(min = 1, max = 63))]
    pub region: String,
    /// The S3 endpoint URL, for S3-compatible stores (MinIO, Ceph):
    /// `https://minio.example.internal:9000`. Absent: the AWS endpoint of `region`.
    /// Never a link-local or cloud metadata address; the installation may restrict it
    /// to listed hosts (`--allowed-endpoints`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isURL(self) && (url(self).getScheme() == 'https' || url(self).getScheme() == 'http') && url(self).getHostname() != ''")
        .message(ENDPOINT_MESSAGE))]
    #[x_kube(validation = Rule::new("!self.matches(r'^(?i)https?://(169\\.254\\.[0-9]{1,3}\\.[0-9]{1,3}|\\[(fe[89ab][0-9a-f]:[0-9a-f:.]*|fd00:ec2::254)\\]|metadata\\.google\\.internal\\.?)(:[0-9]*)?([/?#].*)?$')")
        .message(ENDPOINT_METADATA_MESSAGE))]
    #[schemars(length(max = 2048))]
    pub endpoint: Option<String>,
    /// Address buckets by path (`https://host/bucket/key`) instead of by virtual host
    /// (`https://bucket.host/key`). Most MinIO and Ceph installations need `true`.
    /// Defaults to `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_path_style: Option<bool>,
    /// The Secret (in this namespace) holding the S3 access key. Absent: the default
    /// AWS credential chain of the operator's pod (environment, web identity / IRSA,
    /// instance profile), but only in namespaces the installation grants the
    /// operator's own identity (`--operator-identity-namespaces`, default none);
    /// elsewhere the bucket is refused with reason `CredentialsRequired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,
    /// The RetentionPolicy (in this namespace) that governs these clips.
    pub retention_policy_ref: RetentionPolicyRef,
    /// The buckets of the three tiers.
    pub tiers: Tiers,
    /// How often the operator lists the tiers and applies the policy, such as `15m` or
    /// `1h` (at least `1m`). Defaults to `1h`. The operator also wakes up earlier when a
    /// clip becomes due, or when the policy or a legal hold changes.
    #[serde(default = "default_sweep_interval")]
    pub sweep_interval: Interval,
    /// Stop sweeping: nothing is moved, held, released or deleted while `true`.
    /// Defaults to `false`.
    #[serde(default)]
    pub suspend: bool,
}

fn default_sweep_interval() -> Interval {
    Interval::hours(1)
}

/// A reference to a Secret holding S3 credentials.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSecretRef {
    /// The Secret's name, in the EvidenceBucket's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key in the Secret holding the access key id. Defaults to `AWS_ACCESS_KEY_ID`.
    #[serde(default = "default_access_key_id_key")]
    #[schemars(length(min = 1, max = 253))]
    pub access_key_id_key: String,
    /// The key in the Secret holding the secret access key. Defaults to
    /// `AWS_SECRET_ACCESS_KEY`.
    #[serde(default = "default_secret_access_key_key")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_access_key_key: String,
}

fn default_access_key_id_key() -> String {
    "AWS_ACCESS_KEY_ID".to_string()
}

fn default_secret_access_key_key() -> String {
    "AWS_SECRET_ACCESS_KEY".to_string()
}

/// A reference to a RetentionPolicy.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicyRef {
    /// The RetentionPolicy's name, in the EvidenceBucket's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The buckets of the three tiers. Hot and cool may share a bucket when they differ
/// in key prefix or in storage class; the legal-hold tier is always a bucket of its own
/// (with S3 Object Lock enabled).
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.legalHold.bucket != self.hot.bucket && self.legalHold.bucket != self.cool.bucket")
        .message(LEGAL_HOLD_OWN_BUCKET_MESSAGE)
        .field_path(".legalHold.bucket"),
    validation = Rule::new("self.hot.bucket != self.cool.bucket || (has(self.hot.prefix) ? self.hot.prefix : '') != (has(self.cool.prefix) ? self.cool.prefix : '') || (has(self.hot.storageClass) && has(self.cool.storageClass) && self.hot.storageClass != self.cool.storageClass)")
        .message(HOT_COOL_DISTINCT_MESSAGE)
        .field_path(".cool")
)]
pub struct Tiers {
    /// Where new uploads land (the docks write here).
    pub hot: TierLocation,
    /// Where kept clips go after `coolAfter`: a cheaper storage class, a cheaper bucket,
    /// or both.
    pub cool: TierLocation,
    /// Where clips under legal hold go: a bucket with S3 Object Lock (and so
    /// versioning) enabled.
    pub legal_hold: TierLocation,
}

/// One tier's place in storage.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TierLocation {
    /// The bucket name (S3 naming rules: 3 to 63 lower-case letters, digits, dots and
    /// dashes, starting and ending with a letter or digit).
    #[x_kube(
        validation = Rule::new("self.matches('^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$') && !self.contains('..')")
            .message(BUCKET_NAME_MESSAGE)
    )]
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    /// A key prefix within the bucket, such as `clips/`. Clip keys are relative to it,
    /// and are the same in every tier. Must not start with `/`. Absent: the whole bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("!self.startsWith('/')").message(PREFIX_MESSAGE))]
    #[schemars(length(max = 512))]
    pub prefix: Option<String>,
    /// The S3 storage class objects are written with in this tier, such as `STANDARD`,
    /// `STANDARD_IA` or `REDUCED_REDUNDANCY`. Absent: the bucket's default. Archive
    /// classes that need a restore before reading (`GLACIER`, `DEEP_ARCHIVE`) are
    /// refused: a move must be able to read and verify every clip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        validation = Rule::new("self.matches('^[A-Z][A-Z0-9_]*$')")
            .message(STORAGE_CLASS_MESSAGE),
        validation = Rule::new("!(self in ['GLACIER', 'DEEP_ARCHIVE'])")
            .message(ARCHIVE_STORAGE_CLASS_MESSAGE)
    )]
    #[schemars(length(min = 1, max = 64))]
    pub storage_class: Option<String>,
}

/// What the operator last observed and did for this EvidenceBucket.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceBucketStatus {
    /// Standard conditions. `Ready` is `True` when the region is proven, the policy is
    /// found and the last sweep completed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Clip counts and sizes per tier, as of the last sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<TierCounts>,
    /// Clips whose retention has run out under a `Review` rule, waiting for a person's
    /// decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_review: Option<u64>,
    /// Clips kept because their metadata is malformed (an unparseable recording time,
    /// duplicate, oversized or too many tags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed: Option<u64>,
    /// The outcome of the last sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sweep: Option<SweepSummary>,
    /// When the next sweep is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_sweep_time: Option<DateTime<Utc>>,
}

/// Counts for the three tiers.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TierCounts {
    /// The hot tier.
    #[serde(default)]
    pub hot: TierCount,
    /// The cool tier.
    #[serde(default)]
    pub cool: TierCount,
    /// The legal-hold tier.
    #[serde(default)]
    pub legal_hold: TierCount,
}

impl TierCounts {
    /// The counts of one tier.
    pub fn get_mut(&mut self, tier: Tier) -> &mut TierCount {
        match tier {
            Tier::Hot => &mut self.hot,
            Tier::Cool => &mut self.cool,
            Tier::LegalHold => &mut self.legal_hold,
        }
    }
}

/// How many clips, and how many bytes, one tier holds.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TierCount {
    /// Number of clips.
    #[serde(default)]
    pub clips: u64,
    /// Total size in bytes.
    #[serde(default)]
    pub bytes: u64,
}

/// What one sweep did.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SweepSummary {
    /// When the sweep started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    /// When the sweep ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<DateTime<Utc>>,
    /// Clips moved between tiers (hot to cool, into legal hold).
    #[serde(default)]
    pub moved: u64,
    /// Clips deleted because their retention ran out (soft-deleted, where the policy
    /// has a `restoreWindow`).
    #[serde(default)]
    pub deleted: u64,
    /// Soft-deleted clips purged for good: their restore window had passed and, planned
    /// again, the policy still deleted them (policies with a `restoreWindow` only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub purged: u64,
    /// Soft-deleted clips still restorable with a `ClipRestore` (policies with a
    /// `restoreWindow` only), including those kept past their window because, planned
    /// again, the policy would no longer delete them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restorable: u64,
    /// Clips placed under legal hold.
    #[serde(default)]
    pub held: u64,
    /// Clips released from legal hold.
    #[serde(default)]
    pub released: u64,
    /// Clips flagged (for review, or for malformed metadata).
    #[serde(default)]
    pub flagged: u64,
    /// Actions that failed (retried on the next sweep).
    #[serde(default)]
    pub failed: u64,
    /// Clips due for deletion whose tags had changed since they were listed (read
    /// again just before the delete): planned again with their current tags, and
    /// deleted only if those still say so.
    #[serde(default)]
    pub retagged: u64,
    /// Tiers this sweep did not list (`cool`, `legal-hold`): nothing there could have
    /// changed since their last listing (same policy and holds, nothing due, nothing
    /// moved in, no change found by the tag refresh, listed within the refresh
    /// interval). Their counts in `tiers` are that listing's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unlisted_tiers: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
