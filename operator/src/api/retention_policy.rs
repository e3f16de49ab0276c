//! `RetentionPolicy`: the weeding rules of a unit. How long each clip category is kept,
//! what happens when that time runs out, when kept clips go from hot to cool, which
//! clock retention counts from, and the safety floor below which nothing is deleted.
//!
//! The semantics (what the operator does with these rules) live in [`crate::engine`];
//! this module is the schema and its documentation.

// kube-derive takes one `printcolumn(...)` per column; clippy reads the repeated
// `type_ = "string"` arguments as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::duration::RetentionDuration;

// The messages of the CRD's rules, each defined once: the attributes below put them in
// the CRD, and [`super::validation`] gives the same words for the same problems.

/// Two categories have the same name.
pub const CATEGORY_NAMES_UNIQUE_MESSAGE: &str = "category names must be unique";
/// A category's `name` is not a well-formed category name.
pub const CATEGORY_NAME_MESSAGE: &str = "a category name is lower-case letters, digits and dashes, at most 63 characters, such as domestic-abuse";

/// `restoreWindow` is `Forever` (a deleted clip would never be purged).
pub const RESTORE_WINDOW_MESSAGE: &str =
    "restoreWindow must be at most 90 days (2160h, 90d, 12w or 3mo), such as 7d, and not Forever";
/// The longest `restoreWindow` accepted, in days (`3mo` is accepted too).
pub const MAX_RESTORE_WINDOW_DAYS: i64 = 90;
/// The CEL rule for `restoreWindow` (the pattern of [`RetentionDuration`] has already
/// checked the form; a malformed string is left to it).
pub const RESTORE_WINDOW_RULE: &str = "!self.matches('^(Forever|[1-9][0-9]{0,3}(h|d|w|mo|y))$') || self != 'Forever' && !self.endsWith('y') && (self.endsWith('mo') ? int(self.replace('mo', '')) <= 3 : self.endsWith('w') ? int(self.replace('w', '')) <= 12 : self.endsWith('d') ? int(self.replace('d', '')) <= 90 : int(self.replace('h', '')) <= 2160)";

/// The weeding rules for body-worn video clips: how long each category is kept and
/// what happens when that time runs out. Referenced by EvidenceBuckets in the same
/// namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "evidence.bwv.io",
    version = "v1alpha1",
    kind = "RetentionPolicy",
    doc = "The weeding rules for body-worn video clips: how long each category is kept, what happens when that time runs out, when kept clips go cool, and the safety floor.",
    namespaced,
    status = "RetentionPolicyStatus",
    shortname = "rp",
    category = "evidence",
    printcolumn(
        name = "Default",
        type_ = "string",
        description = "Retention of clips with no (or an unknown) category",
        json_path = ".spec.default.retention"
    ),
    printcolumn(name = "Cool-After", type_ = "string", json_path = ".spec.coolAfter"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "!has(self.categories) || self.categories.all(c, self.categories.exists_one(d, d.name == c.name))"
).message(CATEGORY_NAMES_UNIQUE_MESSAGE).field_path(".categories"))]
pub struct RetentionPolicySpec {
    /// The rule for clips with no category tag, or a category not listed in
    /// `categories`. Defaults to deleting them 31 days after the clock starts
    /// (College of Policing guidance for non-evidential footage).
    #[serde(default = "default_rule")]
    pub default: RetentionRule,
    /// Named categories, matched against the clip's `evidence.bwv.io/category` tag
    /// (ignoring case and surrounding blanks). Names are unique. At most 100.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub categories: Vec<CategoryRule>,
    /// Age after which clips that are kept move from the hot tier to the cool tier,
    /// counted on the same clock as retention. `Forever` keeps everything hot.
    /// Defaults to `30d`.
    #[serde(default = "default_cool_after")]
    pub cool_after: RetentionDuration,
    /// Which clock retention counts from: `RecordedAt` (the default: the clip's
    /// `evidence.bwv.io/recorded-at` tag, falling back to its upload time when the tag
    /// is missing) or `Upload` (when the clip reached storage).
    #[serde(default)]
    pub retention_clock: RetentionClock,
    /// The safety floor: no clip younger than this, by its recording time and by its
    /// upload time, is ever deleted, whatever the rules say. Defaults to `24h`.
    #[serde(default = "default_minimum_age")]
    pub minimum_age: RetentionDuration,
    /// How long a deleted clip stays restorable, such as `7d`. When set, a deletion by
    /// this policy is a soft delete: the clip gets an S3 delete marker and its data stays
    /// as a noncurrent version, which a `ClipRestore` can bring back (same bytes, same
    /// version id, same retention clock) until the operator purges it, this long after
    /// the deletion (each purge re-checks the policy and the holds first and is
    /// recorded in the audit trail). The hot and cool tier buckets must have S3
    /// versioning enabled (otherwise the bucket is refused with `VersioningRequired`).
    /// Absent: deletions are final, as they always were. At most 90 days (`2160h`,
    /// `90d`, `12w` or `3mo`); not `Forever`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(RESTORE_WINDOW_RULE).message(RESTORE_WINDOW_MESSAGE))]
    pub restore_window: Option<RetentionDuration>,
}

/// How long clips are kept and what happens when that time has run out.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetentionRule {
    /// How long clips are kept: a duration such as `31d`, `90d`, `6y`, or `Forever`.
    pub retention: RetentionDuration,
    /// What happens when the retention has run out: `Delete` (the clip is deleted,
    /// unless a legal hold holds it or it is younger than `minimumAge`) or `Review`
    /// (the clip is kept and flagged for a person's decision; never deleted
    /// automatically). Ignored when retention is `Forever`.
    pub on_expiry: ExpiryAction,
}

/// The rule for one named category of clip.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CategoryRule {
    /// The category name, as officers tag clips (`evidence.bwv.io/category`): lower-case
    /// letters, digits and dashes, such as `domestic-abuse`.
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')")
        .message(CATEGORY_NAME_MESSAGE))]
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// How long clips of this category are kept: a duration such as `31d`, `6y`, or
    /// `Forever`.
    pub retention: RetentionDuration,
    /// What happens when the retention has run out: `Delete` or `Review` (kept and
    /// flagged for a person's decision, never deleted automatically). Required: there
    /// is no default for evidential material. Ignored when retention is `Forever`.
    pub on_expiry: ExpiryAction,
    /// A free-text note for people reading the policy (for example the MoPI group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub description: Option<String>,
}

/// What happens to a clip whose retention has run out.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpiryAction {
    /// Delete the clip (unless held, or younger than `minimumAge`).
    Delete,
    /// Keep the clip and flag it for review by a person (MoPI-style).
    Review,
}

/// Which clock a clip's retention counts from.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, Default,
)]
pub enum RetentionClock {
    /// The clip's recording time, from its `evidence.bwv.io/recorded-at` tag; the
    /// upload time when the tag is missing.
    #[default]
    RecordedAt,
    /// The time the clip reached storage.
    Upload,
}

/// What the operator last observed about this policy (written by the leading replica,
/// by server-side apply).
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicyStatus {
    /// Standard conditions. `Ready` is `True` with reason `Valid` when the policy passes
    /// the checks the operator applies to it (category names well formed and unique, no
    /// retention shorter than `minimumAge`, `restoreWindow` at most 90 days) and
    /// compiles; `False` with reason `Invalid` otherwise, the message listing each
    /// problem with its field. Whether a bucket uses the policy is in that bucket's
    /// `PolicyResolved` condition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` of the spec these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

fn default_rule() -> RetentionRule {
    RetentionRule {
        retention: RetentionDuration::days(31),
        on_expiry: ExpiryAction::Delete,
    }
}

fn default_cool_after() -> RetentionDuration {
    RetentionDuration::days(30)
}

fn default_minimum_age() -> RetentionDuration {
    RetentionDuration::hours(24)
}

impl Default for RetentionPolicySpec {
    /// The policy with every default: delete after 31 days, cool after 30 days,
    /// counted from recording time, nothing deleted before 24 hours.
    fn default() -> Self {
        RetentionPolicySpec {
            default: default_rule(),
            categories: Vec::new(),
            cool_after: default_cool_after(),
            retention_clock: RetentionClock::default(),
            minimum_age: default_minimum_age(),
            restore_window: None,
        }
    }
}
