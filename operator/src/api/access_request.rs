//! `AccessRequest`: a subject access request (Data Protection Act 2018, Part 3, s.45) or
//! a disclosure, open against one EvidenceBucket. While it is open, every clip its
//! selector matches is **preserved**: not deleted and not rewritten (not moved between
//! tiers), without being put under legal hold, since erasing data to prevent its
//! disclosure once it has been asked for is an offence (s.173). The operator reports
//! what the request finds (clips, bytes) and when the answer is due.
//!
//! How a selector matches a clip is defined in [`crate::engine`] (all of the criteria
//! given must hold, unlike a LegalHold's selector, where any one does).

// kube-derive takes one `printcolumn(...)` per column; clippy reads the repeated
// `type_ = "string"` arguments as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::{
    duration::{DurationUnit, RetentionDuration},
    evidence_bucket::{
        BUCKET_NAME_MESSAGE, CredentialsSecretRef, ENDPOINT_MESSAGE, ENDPOINT_METADATA_MESSAGE,
        PREFIX_MESSAGE, REGION_NAME_MESSAGE,
    },
    legal_hold::{BucketRef, KEYS_MESSAGE, MATCH_TAGS_MESSAGE},
    retention_policy::RESTORE_WINDOW_RULE,
};

// The messages of the CRD's rules, each defined once: the attributes below put them in
// the CRD, and [`super::validation`] gives the same words for the same problems.

/// The selector gives no criterion.
pub const REQUEST_SELECTOR_EMPTY_MESSAGE: &str = "selector must not be empty: give at least one of officer, camera, case, location, recordedAfter, recordedBefore, keys or matchTags";
/// The recording window ends before it starts.
pub const REQUEST_WINDOW_ORDER_MESSAGE: &str =
    "selector.recordedAfter must not be after selector.recordedBefore";
/// `reference` is blank.
pub const REQUEST_REFERENCE_BLANK_MESSAGE: &str =
    "reference must not be blank: name the request or case number";
/// A selector value is blank.
pub const REQUEST_VALUE_BLANK_MESSAGE: &str =
    "officer, camera, case and location must not be blank";
/// The finalizer on an AccessRequest with export copies: removed once the copies are
/// deleted (`export.keepFor` after the request is closed or deleted).
pub const EXPORT_FINALIZER: &str = "evidence.bwv.io/export-copies";

/// `export.keepFor` is not a duration of at most 90 days.
pub const KEEP_FOR_MESSAGE: &str =
    "export.keepFor must be at most 90 days (2160h, 90d, 12w or 3mo), not Forever";
/// An update changed `bucketRef`.
pub const REQUEST_BUCKET_IMMUTABLE_MESSAGE: &str =
    "bucketRef is immutable: create a new AccessRequest for another bucket";

/// A subject access request or disclosure: while open, the clips it selects are
/// preserved (never deleted, never moved), and the operator reports what it found.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "evidence.bwv.io",
    version = "v1alpha1",
    kind = "AccessRequest",
    doc = "A subject access request or disclosure: while it is open, the clips its selector matches are preserved (never deleted, never moved), and its status says what was found and when the answer is due.",
    namespaced,
    status = "AccessRequestStatus",
    shortname = "ar",
    category = "evidence",
    printcolumn(name = "Bucket", type_ = "string", json_path = ".spec.bucketRef.name"),
    printcolumn(name = "Kind", type_ = "string", json_path = ".spec.kind"),
    printcolumn(name = "Reference", type_ = "string", json_path = ".spec.reference"),
    printcolumn(
        name = "Found",
        type_ = "integer",
        description = "Clips the selector matches",
        json_path = ".status.clipsFound"
    ),
    printcolumn(name = "Due-By", type_ = "date", json_path = ".status.dueBy"),
    printcolumn(name = "Closed", type_ = "boolean", json_path = ".spec.closed"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AccessRequestSpec {
    /// The EvidenceBucket (in this namespace) whose clips the request covers. Cannot be
    /// changed.
    #[x_kube(validation = Rule::new("self == oldSelf").message(REQUEST_BUCKET_IMMUTABLE_MESSAGE))]
    pub bucket_ref: BucketRef,
    /// `SubjectAccess` (a person asking for footage of themselves, DPA 2018 s.45) or
    /// `Disclosure` (material for a prosecution).
    pub kind: AccessRequestKind,
    /// The request or case number, such as `SAR-2026-0042`.
    #[x_kube(validation = Rule::new("self.trim() != ''").message(REQUEST_REFERENCE_BLANK_MESSAGE))]
    #[schemars(length(min = 1, max = 128))]
    pub reference: String,
    /// When the request was received (RFC 3339): the statutory one calendar month to
    /// answer counts from it (`status.dueBy`).
    pub received_at: DateTime<Utc>,
    /// Which clips the request covers: ALL of the criteria given must hold.
    pub selector: AccessSelector,
    /// Where the answer goes: a bucket and prefix in the UK that receives the request's
    /// manifest (every clip found, with its version, size, SHA-256, recording time,
    /// camera, officer, tier and hold state). Absent: the clips are preserved and counted,
    /// and no manifest is written. Nothing in the evidence tiers is ever written through
    /// it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportLocation>,
    /// Set to `true` when the request is answered: the preservation ends (the clips fall
    /// back under their normal retention). Deleting the AccessRequest does the same.
    #[serde(default)]
    pub closed: bool,
}

/// The export location of a request: where its manifest is written. It is region-proved
/// like every tier before anything is written: a bucket whose declared or verified
/// region is not an allowed UK region receives nothing (condition `Ready=False`, reason
/// `ExportRefused`).
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExportLocation {
    /// The bucket (S3 naming rules). It must exist; it need not be versioned.
    #[x_kube(
        validation = Rule::new("self.matches('^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$') && !self.contains('..')")
            .message(BUCKET_NAME_MESSAGE)
    )]
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    /// A key prefix, such as `disclosures/`. The manifest is written under
    /// `<prefix><namespace>/<name>/`. Must not start with `/`. Absent: the bucket root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("!self.startsWith('/')").message(PREFIX_MESSAGE))]
    #[schemars(length(max = 512))]
    pub prefix: Option<String>,
    /// The bucket's region; must be an allowed UK region, like an EvidenceBucket's
    /// (checked at apply time by the `evidence-operator-uk-regions` admission policy,
    /// and again by the operator, which also proves it). Absent: the EvidenceBucket's
    /// region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')")
        .message(REGION_NAME_MESSAGE))]
    #[schemars(length(min = 1, max = 63))]
    pub region: Option<String>,
    /// The S3 endpoint URL of the export bucket. Absent: the EvidenceBucket's endpoint.
    /// Never a link-local or cloud metadata address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isURL(self) && (url(self).getScheme() == 'https' || url(self).getScheme() == 'http') && url(self).getHostname() != ''")
        .message(ENDPOINT_MESSAGE))]
    #[x_kube(validation = Rule::new("!self.matches(r'^(?i)https?://(169\\.254\\.[0-9]{1,3}\\.[0-9]{1,3}|\\[(fe[89ab][0-9a-f]:[0-9a-f:.]*|fd00:ec2::254)\\]|metadata\\.google\\.internal\\.?)(:[0-9]*)?([/?#].*)?$')")
        .message(ENDPOINT_METADATA_MESSAGE))]
    #[schemars(length(max = 2048))]
    pub endpoint: Option<String>,
    /// Address the bucket by path. Absent: the EvidenceBucket's setting when the
    /// endpoint is the EvidenceBucket's, else `true` with an endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_path_style: Option<bool>,
    /// The Secret (in this namespace) with the export bucket's access key. Absent: the
    /// EvidenceBucket's credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,
    /// Also copy every clip found into the export location (under
    /// `<prefix><namespace>/<name>/clips/<key>`), each copy verified against the clip's
    /// SHA-256 and recorded in the audit chain (`exported`). The evidence tiers are only
    /// read. Defaults to `false` (the manifest alone).
    #[serde(default)]
    pub copy: bool,
    /// How long export copies are kept once the request is closed (or deleted: a
    /// finalizer keeps the AccessRequest until then): then they are deleted, each
    /// deletion recorded (`export_deleted`). The manifests stay. Defaults to `30d`; at
    /// most 90 days, not `Forever`.
    #[serde(default = "default_keep_for")]
    #[x_kube(validation = Rule::new(RESTORE_WINDOW_RULE).message(KEEP_FOR_MESSAGE))]
    pub keep_for: RetentionDuration,
}

fn default_keep_for() -> RetentionDuration {
    RetentionDuration::Finite {
        amount: 30,
        unit: DurationUnit::Days,
    }
}

/// What kind of request.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessRequestKind {
    /// A subject access request (DPA 2018, Part 3, s.45).
    SubjectAccess,
    /// A disclosure (for example to the Crown Prosecution Service).
    Disclosure,
}

/// Which clips a request selects: the clips for which every criterion given holds.
/// A clip whose recording time is missing or unparseable matches a recording window
/// (a request errs on the side of preserving).
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "has(self.officer) || has(self.camera) || has(self.case) || has(self.location) || has(self.recordedAfter) || has(self.recordedBefore) || (has(self.keys) && size(self.keys) > 0) || (has(self.matchTags) && size(self.matchTags) > 0)"
).message(REQUEST_SELECTOR_EMPTY_MESSAGE))]
#[x_kube(validation = Rule::new(
    "!has(self.recordedAfter) || !has(self.recordedBefore) || self.recordedAfter <= self.recordedBefore"
).message(REQUEST_WINDOW_ORDER_MESSAGE))]
pub struct AccessSelector {
    /// The officer, as in the clip's `evidence.bwv.io/officer` tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.trim() != ''").message(REQUEST_VALUE_BLANK_MESSAGE))]
    #[schemars(length(max = 256))]
    pub officer: Option<String>,
    /// The camera, as in the clip's `evidence.bwv.io/camera` tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.trim() != ''").message(REQUEST_VALUE_BLANK_MESSAGE))]
    #[schemars(length(max = 256))]
    pub camera: Option<String>,
    /// The case, as in the clip's `evidence.bwv.io/case` tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.trim() != ''").message(REQUEST_VALUE_BLANK_MESSAGE))]
    #[schemars(length(max = 256))]
    pub case: Option<String>,
    /// The place, as in the clip's `evidence.bwv.io/location` tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.trim() != ''").message(REQUEST_VALUE_BLANK_MESSAGE))]
    #[schemars(length(max = 256))]
    pub location: Option<String>,
    /// Recorded at or after this time (RFC 3339, the `evidence.bwv.io/recorded-at` tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_after: Option<DateTime<Utc>>,
    /// Recorded at or before this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_before: Option<DateTime<Utc>>,
    /// Only these clip keys (relative to the tier prefix). At most 10,000.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(k, k != '' && !k.startsWith('/'))").message(KEYS_MESSAGE))]
    #[schemars(length(max = 10000), inner(length(max = 1024)))]
    pub keys: Vec<String>,
    /// Clips whose tags have all of these values (full tag keys, such as
    /// `evidence.bwv.io/category`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("self.all(k, k != '' && size(k) <= 128 && size(self[k]) <= 256)")
        .message(MATCH_TAGS_MESSAGE))]
    #[schemars(length(max = 10))]
    pub match_tags: BTreeMap<String, String>,
}

/// What the operator found for this request.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccessRequestStatus {
    /// Clips the selector matches, in every tier, as of the last sweep of the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clips_found: Option<u64>,
    /// Their total size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// When the answer is due: `receivedAt` plus one calendar month (the same day of
    /// the next month, or the first day of the month after when that day does not
    /// exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_by: Option<DateTime<Utc>>,
    /// Standard conditions. `Preserving` is `True` while the request is open and its
    /// clips are preserved (reason `ClipsPreserved`, or `NoClipsFound`), `False` once it
    /// is closed (reason `Closed`). `Ready` is `True` when the manifest of the clips
    /// found is written (reason `ManifestWritten`; `Searched` without an export
    /// location), `False` when it cannot be (`ExportRefused`: the export location is not
    /// proved to be in the UK, or cannot be reached; `ExportFailed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The manifest last written to the export location (requests with `export`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestRef>,
    /// Export copies of the clips found in the export location (`export.copy`), each
    /// verified against the clip's SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copies: Option<u64>,
    /// When the operator first saw the request closed (or deleted): `export.keepFor`
    /// counts from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    /// When the export copies were deleted (`keepFor` after closing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copies_deleted_at: Option<DateTime<Utc>>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Where a request's manifest is, and what it holds.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ManifestRef {
    /// `s3://<bucket>/<key>` of the manifest (a JSON document; its key names its hash,
    /// so a manifest is never overwritten).
    pub location: String,
    /// The manifest's SHA-256 (hex), also in the bucket's audit chain
    /// (`manifest_written`).
    pub sha256: String,
    /// Clips it lists.
    pub clips: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// When it was written.
    pub written_at: DateTime<Utc>,
}
