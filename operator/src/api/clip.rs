//! Clips as the rest of the operator sees them, and the S3 object tag keys that carry
//! a clip's metadata. The tag keys are defined here and nowhere else.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Prefix of every object tag the operator reads.
pub const TAG_PREFIX: &str = "evidence.bwv.io/";
/// Tag: the clip's category, as set by the officer (`domestic-abuse`, `non-evidential`, ...).
/// Missing or unknown categories fall under the policy's default rule.
pub const TAG_CATEGORY: &str = "evidence.bwv.io/category";
/// Tag: when the clip was recorded, RFC 3339 (`2026-03-01T14:05:00Z`).
pub const TAG_RECORDED_AT: &str = "evidence.bwv.io/recorded-at";
/// Tag: the case reference the clip belongs to, if any.
pub const TAG_CASE: &str = "evidence.bwv.io/case";
/// Tag: the camera (device) identifier that recorded the clip.
pub const TAG_CAMERA: &str = "evidence.bwv.io/camera";
/// Tag: the officer (collar number or staff id) who recorded the clip.
pub const TAG_OFFICER: &str = "evidence.bwv.io/officer";

/// Tag: when the clip first reached storage (RFC 3339), written by the operator when it
/// moves a clip out of the hot tier (a copy resets `LastModified`, so the upload time
/// would otherwise be lost). Read by the engine for the `Upload` retention clock and the
/// safety floor; when absent, the engine uses the (later, so safer) `LastModified`.
pub const TAG_UPLOADED_AT: &str = "evidence.bwv.io/uploaded-at";

/// S3 limits on object tags (AWS documents these; MinIO enforces the same).
pub mod tag_limits {
    /// At most this many tags per object.
    pub const MAX_TAGS: usize = 10;
    /// A tag key is at most this many Unicode characters.
    pub const MAX_KEY_CHARS: usize = 128;
    /// A tag value is at most this many Unicode characters.
    pub const MAX_VALUE_CHARS: usize = 256;
}

/// User-metadata key (without the `x-amz-meta-` prefix) under which the operator stores
/// a clip's full-object SHA-256 (lower-case hex) the first time it sees the clip, so
/// that every later copy can be verified end to end.
pub const META_SHA256: &str = "evidence-sha256";

/// The storage tiers of an `EvidenceBucket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Tier {
    /// New uploads land here.
    Hot,
    /// Kept evidence, on a cheaper storage class or bucket.
    Cool,
    /// The Object Lock bucket: clips that a case pins with a legal hold.
    LegalHold,
}

impl Tier {
    /// All tiers, in the order they are listed and reported.
    pub const ALL: [Tier; 3] = [Tier::Hot, Tier::Cool, Tier::LegalHold];

    /// A stable lower-case name, used in logs, metric labels and status.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Hot => "hot",
            Tier::Cool => "cool",
            Tier::LegalHold => "legal-hold",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object tag as S3 returned it. Kept as a list (not a map) so that duplicate keys,
/// which make a clip's metadata ambiguous, can be seen and refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// The tag key.
    pub key: String,
    /// The tag value.
    pub value: String,
}

impl Tag {
    /// Build a tag.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// One clip in one tier, as listed from storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clip {
    /// The clip's key, relative to the tier's key prefix (the same in every tier).
    pub key: String,
    /// The tier the clip was found in.
    pub tier: Tier,
    /// The object version, where the bucket is versioned (the legal-hold tier always is).
    pub version_id: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// The object's storage class as reported by the store (`STANDARD`, `STANDARD_IA`, ...).
    pub storage_class: Option<String>,
    /// When the object was written to this tier (S3 `LastModified`); the upload time
    /// for clips still in the hot tier.
    pub last_modified: DateTime<Utc>,
    /// The object tags, as returned.
    pub tags: Vec<Tag>,
    /// The recorded full-object SHA-256 (hex), where known.
    pub sha256: Option<String>,
    /// Whether an Object Lock legal hold is ON for this version.
    pub legal_hold: bool,
}

impl Clip {
    /// The value of a tag, when the tag is present exactly once.
    pub fn tag(&self, key: &str) -> Option<&str> {
        let mut found = self.tags.iter().filter(|t| t.key == key);
        match (found.next(), found.next()) {
            (Some(t), None) => Some(t.value.as_str()),
            _ => None,
        }
    }
}

/// Whether two tag sets are the same, in any order.
pub fn same_tags(a: &[Tag], b: &[Tag]) -> bool {
    fn sorted(tags: &[Tag]) -> Vec<(&str, &str)> {
        let mut v: Vec<(&str, &str)> = tags
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_str()))
            .collect();
        v.sort_unstable();
        v
    }
    sorted(a) == sorted(b)
}
