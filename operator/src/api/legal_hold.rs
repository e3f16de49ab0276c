//! `LegalHold`: a case that pins clips in the legal-hold tier of one EvidenceBucket
//! until it is released (deleted). Which clips it pins is a [`HoldSelector`]; how
//! a selector matches a clip is defined in [`crate::engine`].

// kube-derive takes one `printcolumn(...)` per column; clippy reads the repeated
// `type_ = "string"` arguments as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::duration::RetentionDuration;

/// The finalizer that guarantees a deleted LegalHold's clips are released first. The
/// operator puts it on every LegalHold; a hold takes effect only once it carries it, so
/// that every held clip's release is attributed to its case.
pub const FINALIZER: &str = "evidence.bwv.io/release-clips";

// The messages of the CRD's rules, each defined once: the attributes below put them in
// the CRD, and [`super::validation`] gives the same words for the same problems.

/// An update changed `bucketRef`.
pub const BUCKET_REF_IMMUTABLE_MESSAGE: &str =
    "bucketRef is immutable: create a new LegalHold for another bucket";
/// `caseReference` is blank.
pub const CASE_REFERENCE_BLANK_MESSAGE: &str = "caseReference must not be blank";
/// `reason` is blank.
pub const REASON_BLANK_MESSAGE: &str = "reason must not be blank";
/// The selector gives no criterion.
pub const SELECTOR_EMPTY_MESSAGE: &str =
    "selector must not be empty: give keys, matchTags or cameraWindow";
/// A selector key is empty or starts with `/`.
pub const KEYS_MESSAGE: &str = "keys must be non-empty and must not start with /";
/// A `matchTags` entry breaks the S3 tag limits.
pub const MATCH_TAGS_MESSAGE: &str =
    "matchTags keys are 1 to 128 characters and values at most 256 (the S3 tag limits)";
/// A camera window ends before it starts.
pub const CAMERA_WINDOW_ORDER_MESSAGE: &str = "cameraWindow.from must not be after cameraWindow.to";
/// A camera window's `camera` is blank.
pub const CAMERA_BLANK_MESSAGE: &str = "camera must not be blank";

/// A legal hold for a case: every clip its selector matches is moved to the
/// legal-hold tier of the referenced EvidenceBucket and locked there (S3 Object Lock
/// legal hold) until this object is deleted.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "evidence.bwv.io",
    version = "v1alpha1",
    kind = "LegalHold",
    doc = "A legal hold for a case: the clips its selector matches are kept in the legal-hold tier, locked, until this object is deleted.",
    namespaced,
    status = "LegalHoldStatus",
    shortname = "lh",
    category = "evidence",
    printcolumn(name = "Bucket", type_ = "string", json_path = ".spec.bucketRef.name"),
    printcolumn(name = "Case", type_ = "string", json_path = ".spec.caseReference"),
    printcolumn(
        name = "Held",
        type_ = "integer",
        description = "Clips this hold holds",
        json_path = ".status.heldClips"
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
pub struct LegalHoldSpec {
    /// The EvidenceBucket (in this namespace) whose clips this hold selects. Cannot be
    /// changed: create a new LegalHold instead.
    #[x_kube(validation = Rule::new("self == oldSelf").message(BUCKET_REF_IMMUTABLE_MESSAGE))]
    pub bucket_ref: BucketRef,
    /// The case the clips are held for, such as a crime reference number.
    #[x_kube(validation = Rule::new("self.trim() != ''").message(CASE_REFERENCE_BLANK_MESSAGE))]
    #[schemars(length(min = 1, max = 128))]
    pub case_reference: String,
    /// Why the clips are held, for the audit trail (who asked, under what authority).
    #[x_kube(validation = Rule::new("self.trim() != ''").message(REASON_BLANK_MESSAGE))]
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
    /// Which clips are held. A clip is held when it matches ANY of the criteria given
    /// (explicit keys, tag equality, camera and recording window); at least one must
    /// be given.
    pub selector: HoldSelector,
    /// Retention that starts when the case closes: when this hold is released (the
    /// LegalHold deleted), each of its clips is kept at least this long from that moment,
    /// such as `6y` (or `Forever`), whatever its category says. Recorded on each clip as
    /// the tag `evidence.bwv.io/retain-until`, written before the S3 legal hold is
    /// cleared, and in the audit trail. Absent: the clips fall back under their
    /// category's retention, counted from their recording time, as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_after_release: Option<RetentionDuration>,
}

/// A reference to an EvidenceBucket.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BucketRef {
    /// The EvidenceBucket's name, in the LegalHold's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Which clips a legal hold selects: the union of the criteria given.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "(has(self.keys) && size(self.keys) > 0) || (has(self.matchTags) && size(self.matchTags) > 0) || has(self.cameraWindow)"
).message(SELECTOR_EMPTY_MESSAGE))]
pub struct HoldSelector {
    /// Explicit clip keys (relative to the tier prefix), such as
    /// `2026/03/01/cam-0042/clip-0001.mp4`. At most 10,000.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(k, k != '' && !k.startsWith('/'))").message(KEYS_MESSAGE))]
    #[schemars(length(max = 10000), inner(length(max = 1024)))]
    pub keys: Vec<String>,
    /// Clips whose tags have ALL of these values, such as
    /// `evidence.bwv.io/case: "01/123456/26"`. Keys are full tag keys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("self.all(k, k != '' && size(k) <= 128 && size(self[k]) <= 256)")
        .message(MATCH_TAGS_MESSAGE))]
    #[schemars(length(max = 10))]
    pub match_tags: BTreeMap<String, String>,
    /// Clips recorded by one camera within a time window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_window: Option<CameraWindow>,
}

/// One camera and a recording-time window: the clips of that camera whose
/// `evidence.bwv.io/recorded-at` lies in `[from, to]` (both inclusive). A clip of that
/// camera whose recording time is missing or unparseable is selected too (a hold
/// errs on the side of holding).
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.from <= self.to").message(CAMERA_WINDOW_ORDER_MESSAGE))]
pub struct CameraWindow {
    /// The camera id, as in the clip's `evidence.bwv.io/camera` tag.
    #[x_kube(validation = Rule::new("self.trim() != ''").message(CAMERA_BLANK_MESSAGE))]
    #[schemars(length(min = 1, max = 256))]
    pub camera: String,
    /// Start of the window (RFC 3339), inclusive.
    pub from: DateTime<Utc>,
    /// End of the window (RFC 3339), inclusive.
    pub to: DateTime<Utc>,
}

/// What the operator last observed about this legal hold.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LegalHoldStatus {
    /// How many clips this hold currently holds in the legal-hold tier (S3 legal hold
    /// on, verified copy), as of the last sweep of its bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_clips: Option<u64>,
    /// How many clips the selector matched in the bucket, in any tier, as of the last
    /// sweep. `Ready` is `True` only when every one of them is held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_clips: Option<u64>,
    /// How many selected clips could not be held in the last sweep (their move or hold
    /// failed; they stay where they are and are retried at the next sweep).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_clips: Option<u64>,
    /// Standard conditions. `Ready` is `True` when every selected clip is held;
    /// `False` with reason `HoldIncomplete` while some are not (yet), or
    /// `NoClipsSelected` when the selector matches no clip in the bucket (check the keys:
    /// they are relative to the tier prefix).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
