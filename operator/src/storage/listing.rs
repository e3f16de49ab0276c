//! A listing in two steps, for callers that remember what they read before (the clip
//! catalogue): [`ListedObject`]s as the listing shows them (key, version, ETag, size,
//! class, time: about one request per 1,000), then the [`ClipFacts`] that need a
//! request per object on most stores (tags; in the legal-hold tier the hold and the
//! recorded checksum), read only for the objects that need it.
//!
//! A [`KeyRange`] lets a large tier be listed in parallel slices.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::clip::{Clip, PlainHeaders, Tag, Tier};

/// What a clip's listing entry does not say on most stores: read per object, or carried
/// by the listing itself where the store has MinIO's listing extension.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClipFacts {
    /// The object's tags (empty when it has none).
    pub tags: Vec<Tag>,
    /// The recorded `evidence-sha256` user metadata (lower-case hex), when read and present.
    pub sha256: Option<String>,
    /// Whether the Object Lock legal hold is ON.
    pub legal_hold: bool,
    /// The `evidence-uploaded-at` user metadata (the upload time a move recorded), when
    /// read and an RFC 3339 time.
    pub uploaded_at: Option<DateTime<Utc>>,
    /// The object's headers, when the listing showed all of them and they are plain
    /// ([`PlainHeaders`]).
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub plain_headers: Option<PlainHeaders>,
}

/// One object of a tier as a listing showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// The key, relative to the tier's prefix (as [`Clip::key`]).
    pub key: String,
    /// The version, where the bucket is versioned (current versions only are listed).
    pub version_id: Option<String>,
    /// The ETag as listed (quotes removed), when the store sent one.
    pub etag: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// The storage class (`STANDARD` when the store named none).
    pub storage_class: String,
    /// `LastModified`.
    pub last_modified: DateTime<Utc>,
    /// The facts, when the listing itself carried them (MinIO's `metadata=true`).
    pub facts: Option<ClipFacts>,
}

impl ListedObject {
    /// The clip this object is, with its facts.
    pub fn into_clip(self, tier: Tier, facts: ClipFacts) -> Clip {
        Clip {
            key: self.key,
            tier,
            version_id: self.version_id,
            size: self.size,
            storage_class: Some(self.storage_class),
            last_modified: self.last_modified,
            tags: facts.tags,
            sha256: facts.sha256,
            uploaded_at: facts.uploaded_at,
            legal_hold: facts.legal_hold,
            plain_headers: facts.plain_headers,
        }
    }
}

/// A slice of a tier's keys (relative to its prefix): those after `after` (exclusive)
/// up to `until` (inclusive); `None` is open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRange {
    /// Keys strictly after this one.
    pub after: Option<String>,
    /// Keys up to and including this one.
    pub until: Option<String>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        KeyRange::default()
    }

    /// Whether `key` is in the range.
    pub fn contains(&self, key: &str) -> bool {
        self.after.as_deref().is_none_or(|a| key > a)
            && self.until.as_deref().is_none_or(|u| key <= u)
    }

    /// The ranges between consecutive `splits` (sorted, distinct): `splits.len() + 1`
    /// ranges covering every key exactly once.
    pub fn split(splits: &[String]) -> Vec<KeyRange> {
        let mut out = Vec::with_capacity(splits.len() + 1);
        let mut after = None;
        for s in splits {
            out.push(KeyRange {
                after: after.clone(),
                until: Some(s.clone()),
            });
            after = Some(s.clone());
        }
        out.push(KeyRange { after, until: None });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_ranges_cover_every_key_exactly_once() {
        let splits = vec!["b".to_string(), "d".to_string()];
        let ranges = KeyRange::split(&splits);
        assert_eq!(ranges.len(), 3);
        for key in ["", "a", "b", "b0", "c", "d", "d0", "z"] {
            let n = ranges.iter().filter(|r| r.contains(key)).count();
            assert_eq!(n, 1, "{key} is in {n} ranges");
        }
        assert_eq!(KeyRange::split(&[]), vec![KeyRange::all()]);
    }
}
