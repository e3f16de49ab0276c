//! `ClipRestore`: a person's decision, under Kubernetes RBAC, to bring back clips that a
//! policy with a `restoreWindow` soft-deleted and that are not purged yet. The operator
//! removes each clip's delete marker (the same version, bytes and SHA-256 become current
//! again, with the same tags, so the retention clock is unchanged), optionally puts a
//! corrected category on it, records each restore in the audit trail and reports in the
//! status. A ClipRestore acts once per generation; a finished one can be deleted.

// kube-derive takes one `printcolumn(...)` per column; clippy reads the repeated
// `type_ = "string"` arguments as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::{
    legal_hold::{BucketRef, KEYS_MESSAGE, REASON_BLANK_MESSAGE},
    retention_policy::CATEGORY_NAME_MESSAGE,
};

// The messages of the CRD's rules, each defined once: the attributes below put them in
// the CRD, and [`super::validation`] gives the same words for the same problems.

/// `keys` is empty: the restore would match nothing.
pub const RESTORE_KEYS_EMPTY_MESSAGE: &str =
    "keys must name at least one clip: a restore that selects nothing restores nothing";
/// `reference` is blank.
pub const RESTORE_REFERENCE_BLANK_MESSAGE: &str =
    "reference must not be blank: name the case or ticket that asked for the restore";
/// The spec changed after it was created.
pub const RESTORE_IMMUTABLE_MESSAGE: &str =
    "a ClipRestore cannot be changed once created: create another one";

/// Bring back soft-deleted clips of one EvidenceBucket before their restore window ends.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "evidence.bwv.io",
    version = "v1alpha1",
    kind = "ClipRestore",
    doc = "Bring back clips that a RetentionPolicy with a restoreWindow deleted, before they are purged: the same version becomes current again, retention clock unchanged, audited.",
    namespaced,
    status = "ClipRestoreStatus",
    shortname = "cr",
    category = "evidence",
    printcolumn(name = "Bucket", type_ = "string", json_path = ".spec.bucketRef.name"),
    printcolumn(name = "Reference", type_ = "string", json_path = ".spec.reference"),
    printcolumn(
        name = "Restored",
        type_ = "integer",
        description = "Clips restored",
        json_path = ".status.restoredClips"
    ),
    printcolumn(
        name = "Complete",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Complete\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message(RESTORE_IMMUTABLE_MESSAGE))]
pub struct ClipRestoreSpec {
    /// The EvidenceBucket (in this namespace) whose clips are restored.
    pub bucket_ref: BucketRef,
    /// The keys of the deleted clips (relative to the tier prefix), such as
    /// `2026/03/01/cam-0042/clip-0001.mp4`: 1 to 1,000. A key is looked for in the hot
    /// and cool tiers; a key with no deleted, unpurged version there is reported in
    /// `status.notRestored` with the reason.
    #[x_kube(validation = Rule::new("size(self) > 0").message(RESTORE_KEYS_EMPTY_MESSAGE))]
    #[x_kube(validation = Rule::new("self.all(k, k != '' && !k.startsWith('/'))").message(KEYS_MESSAGE))]
    #[schemars(length(max = 1000), inner(length(max = 1024)))]
    pub keys: Vec<String>,
    /// Why the clips are restored, for the audit trail (who asked, what was wrong).
    #[x_kube(validation = Rule::new("self.trim() != ''").message(REASON_BLANK_MESSAGE))]
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
    /// The case or ticket that asked for the restore, such as `INC-20261203-0042`.
    #[x_kube(validation = Rule::new("self.trim() != ''").message(RESTORE_REFERENCE_BLANK_MESSAGE))]
    #[schemars(length(min = 1, max = 128))]
    pub reference: String,
    /// A corrected category for the restored clips (their `evidence.bwv.io/category`
    /// tag), such as `evidential-public-order`, for the usual mistake: a clip tagged
    /// non-evidential that was not. Absent: the clips keep their tags, and one whose
    /// retention has run out is deleted again at the next sweep (softly: restorable
    /// for another window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')")
        .message(CATEGORY_NAME_MESSAGE))]
    #[schemars(length(min = 1, max = 63))]
    pub category: Option<String>,
}

/// One clip brought back.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestoredClip {
    /// The clip key.
    pub key: String,
    /// The tier it is back in (`hot` or `cool`).
    pub tier: String,
    /// Its version id: the same version that was deleted.
    pub version_id: String,
    /// When it was deleted (its delete marker's time).
    pub deleted_at: DateTime<Utc>,
}

/// One key that could not be restored.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NotRestored {
    /// The clip key.
    pub key: String,
    /// Why: `NotDeleted` (the clip is there: nothing to restore), `NotFound` (no deleted
    /// version: never here, or already purged) or `Failed` (retried).
    pub reason: String,
    /// A sentence for people.
    pub message: String,
}

/// What the operator did with this restore.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClipRestoreStatus {
    /// How many clips were restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_clips: Option<u64>,
    /// The clips restored (at most 1,000, as `keys`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restored: Vec<RestoredClip>,
    /// The keys not restored, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_restored: Vec<NotRestored>,
    /// Standard conditions. `Complete` is `True` (reason `Restored`) when every key was
    /// restored, `True` with reason `PartlyRestored` or `NothingRestored` when some or
    /// all keys had nothing to restore (see `notRestored`), `False` while a restore is
    /// pending or failed (retried at the next sweep) or the bucket is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
