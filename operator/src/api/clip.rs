//! Clips as the rest of the operator sees them, and the S3 object tag keys that carry
//! a clip's metadata. The tag keys are defined here and nowhere else.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
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
/// Tag key: where the clip was recorded (free text, such as a street or a station), for
/// access requests that select by place.
pub const TAG_LOCATION: &str = "evidence.bwv.io/location";

/// Tag: an upload time (RFC 3339) an uploader may set. It can only make the clip's
/// upload time **later** (the engine takes the later of it and the upload time it
/// knows: `LastModified` in the hot tier, [`Clip::uploaded_at`] elsewhere), so setting
/// it never shortens the safety floor or an upload-clock retention. The operator does
/// not write it: the upload time it carries across moves is object metadata
/// ([`META_UPLOADED_AT`]), which tagging cannot change.
pub const TAG_UPLOADED_AT: &str = "evidence.bwv.io/uploaded-at";

/// Tag: the earliest time (RFC 3339) the clip may be deleted, whatever its category
/// says. Written by the operator, before it clears the S3 legal hold, on each clip of a
/// LegalHold with `retainAfterRelease` (retention that starts when a case closes). It can
/// only keep a clip longer: the engine deletes nothing before it, and a clip whose
/// `retain-until` is not a time is kept and flagged.
pub const TAG_RETAIN_UNTIL: &str = "evidence.bwv.io/retain-until";

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

/// User-metadata key (without the `x-amz-meta-` prefix) under which the mover records
/// when a clip first reached storage (RFC 3339, UTC): on a move out of the hot tier the
/// source's `LastModified` (the upload itself); on every later move the source's record,
/// carried forward (or its `LastModified`, when it has none). A copy resets
/// `LastModified`; this record is what keeps a move from restarting the upload clock.
pub const META_UPLOADED_AT: &str = "evidence-uploaded-at";

/// The [`META_UPLOADED_AT`] value for a time (RFC 3339, UTC, as precise as the time).
pub fn format_uploaded_at(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A [`META_UPLOADED_AT`] value read back; `None` when it is not an RFC 3339 time (the
/// engine then counts from the later `LastModified`).
pub fn parse_uploaded_at(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The upload time of an object in tier `tier`, never earlier than the real upload: in
/// the hot tier its `LastModified` (the upload itself; upload-time metadata there came
/// from the uploader and is not believed); elsewhere the mover's `record`
/// ([`META_UPLOADED_AT`]) when there is one, else `LastModified` (a copy's time, later
/// than the upload). A move writes this onto its copy; the engine counts from it.
pub fn recorded_upload(
    tier: Tier,
    last_modified: DateTime<Utc>,
    record: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    match tier {
        Tier::Hot => last_modified,
        Tier::Cool | Tier::LegalHold => record.unwrap_or(last_modified),
    }
}

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
    /// The upload time the mover recorded ([`META_UPLOADED_AT`] metadata), where the
    /// listing or a HEAD read it. Believed only outside the hot tier, where only the
    /// operator writes; `None` there means the engine uses the (later) `LastModified`.
    pub uploaded_at: Option<DateTime<Utc>>,
    /// Whether an Object Lock legal hold is ON for this version.
    pub legal_hold: bool,
    /// Its headers, where the listing showed all of them and they hold nothing a move
    /// must carry but the content type (MinIO's listing extension: a clip as the dock
    /// ingest writes it). A move out of the hot tier then needs no HEAD of the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain_headers: Option<PlainHeaders>,
}

/// The headers of an object whose user metadata is only what the operator records
/// (`evidence-sha256`, `evidence-uploaded-at`, which a move rewrites): what a copy
/// must carry of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlainHeaders {
    /// `Content-Type`.
    #[serde(rename = "ct", default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

impl Clip {
    /// [`recorded_upload`] of this clip: the upload time its tier and metadata vouch for.
    pub fn recorded_upload(&self) -> DateTime<Utc> {
        recorded_upload(self.tier, self.last_modified, self.uploaded_at)
    }

    /// The value of a tag, when the tag is present exactly once.
    pub fn tag(&self, key: &str) -> Option<&str> {
        let mut found = self.tags.iter().filter(|t| t.key == key);
        match (found.next(), found.next()) {
            (Some(t), None) => Some(t.value.as_str()),
            _ => None,
        }
    }
}

/// `tags` with [`TAG_RETAIN_UNTIL`] set to `until`, or kept when it already names a
/// later time (a retain-until only ever lengthens); `None` when there is no room for one
/// more tag ([`tag_limits::MAX_TAGS`]).
pub fn with_retain_until(tags: &[Tag], until: DateTime<Utc>) -> Option<Vec<Tag>> {
    let existing = tags
        .iter()
        .filter(|t| t.key == TAG_RETAIN_UNTIL)
        .filter_map(|t| DateTime::parse_from_rfc3339(t.value.trim()).ok())
        .map(|t| t.with_timezone(&Utc))
        .max();
    let until = existing.map_or(until, |e| e.max(until));
    let mut out: Vec<Tag> = tags
        .iter()
        .filter(|t| t.key != TAG_RETAIN_UNTIL)
        .cloned()
        .collect();
    if out.len() >= tag_limits::MAX_TAGS {
        return None;
    }
    out.push(Tag::new(
        TAG_RETAIN_UNTIL,
        until.to_rfc3339_opts(SecondsFormat::Secs, true),
    ));
    Some(out)
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
