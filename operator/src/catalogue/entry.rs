//! One catalogue entry and the pure rules about it: whether a listed object is still the
//! one the entry describes, and when its facts are due to be read again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::storage::{ClipFacts, ListedObject};

/// What the catalogue remembers of one object: what identifies the version it read
/// (version id, ETag, size, class, `LastModified`), the facts it read, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The version id, where versioned.
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The ETag.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Size in bytes.
    #[serde(rename = "s")]
    pub size: u64,
    /// Storage class.
    #[serde(rename = "c")]
    pub storage_class: String,
    /// `LastModified`, milliseconds since the epoch.
    #[serde(rename = "m")]
    pub last_modified_ms: i64,
    /// The facts read.
    #[serde(rename = "f")]
    pub facts: ClipFacts,
    /// When they were read, seconds since the epoch.
    #[serde(rename = "r")]
    pub read_at: i64,
    /// For an entry learned from an ingest's audit record and not yet seen listed
    /// ([`super::ingested`]): the window (milliseconds since the epoch) the listed
    /// `LastModified` must fall in, since the ingest knew the version, ETag and size it
    /// wrote but not the store's `LastModified` (`last_modified_ms` is 0 meanwhile).
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    pub window: Option<(i64, i64)>,
}

impl Entry {
    /// The entry for an object whose facts were read at `now`.
    pub fn new(object: &ListedObject, facts: ClipFacts, now: DateTime<Utc>) -> Self {
        Entry {
            version_id: object.version_id.clone(),
            etag: object.etag.clone(),
            size: object.size,
            storage_class: object.storage_class.clone(),
            last_modified_ms: object.last_modified.timestamp_millis(),
            facts,
            read_at: now.timestamp(),
            window: None,
        }
    }

    /// This entry as `object` lists it: a learned entry's window closed on the listed
    /// `LastModified`, so that from now on only that exact version matches.
    pub fn seen(mut self, object: &ListedObject) -> Self {
        if self.window.take().is_some() {
            self.last_modified_ms = object.last_modified.timestamp_millis();
        }
        self
    }

    /// Whether `object`, as listed now, is the version this entry describes. An
    /// overwrite changes the version id (versioned) or the ETag and `LastModified`; a
    /// storage-class change, the class. A retag changes none of these: it is found by
    /// the refresh ([`refresh_due`]) or at the point of no return. A learned entry
    /// (`window`) takes any `LastModified` in its window.
    pub fn describes(&self, object: &ListedObject) -> bool {
        let modified = object.last_modified.timestamp_millis();
        self.version_id == object.version_id
            && self.etag == object.etag
            && self.size == object.size
            && self.storage_class == object.storage_class
            && match self.window {
                None => self.last_modified_ms == modified,
                Some((from, until)) => (from..=until).contains(&modified),
            }
    }

    /// Encode for the store.
    pub fn encode(&self) -> Vec<u8> {
        // A struct of strings, numbers and lists always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decode; `None` for an entry this version cannot read (it is read again).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// A key's place in the refresh cycle: a fraction of `interval`, from its hash, so that
/// the keys of a tier fall due evenly over the interval instead of all at once.
fn phase_secs(key: &str, interval_secs: i64) -> i64 {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let h = u64::from_be_bytes(first);
    i64::try_from(h % interval_secs.max(1) as u64).unwrap_or(0)
}

/// Whether facts of `key` read at `read_at` (seconds) are due to be read again at
/// `now`: each key has a fixed phase in every period of length `interval`, and its facts
/// are read again the first sweep after that phase passes. So each clip is read again
/// at most `interval` (plus one sweep) after its last read, and the reads of a tier are
/// spread evenly over the interval, whatever time they were first read.
pub fn refresh_due(key: &str, read_at: i64, now: DateTime<Utc>, interval: Duration) -> bool {
    let interval_secs = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX).max(1);
    let phase = phase_secs(key, interval_secs);
    let period = |t: i64| (t.saturating_sub(phase)).div_euclid(interval_secs);
    period(now.timestamp()) != period(read_at)
}

/// When facts of `key` read at `read_at` (seconds) fall due again: the first moment
/// [`refresh_due`] turns true.
pub fn next_refresh(key: &str, read_at: i64, interval: Duration) -> i64 {
    let interval_secs = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX).max(1);
    let phase = phase_secs(key, interval_secs);
    let period = (read_at.saturating_sub(phase)).div_euclid(interval_secs);
    period
        .saturating_add(1)
        .saturating_mul(interval_secs)
        .saturating_add(phase)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::api::clip::Tag;

    fn object(key: &str) -> ListedObject {
        ListedObject {
            key: key.into(),
            version_id: Some("v1".into()),
            etag: Some("abc".into()),
            size: 10,
            storage_class: "STANDARD".into(),
            last_modified: DateTime::from_timestamp(1_700_000_000, 123_000_000).unwrap(),
            facts: None,
        }
    }

    #[test]
    fn an_entry_describes_only_the_version_it_was_read_from() {
        let o = object("a.mp4");
        let facts = ClipFacts {
            tags: vec![Tag::new("evidence.bwv.io/category", "evidential")],
            ..ClipFacts::default()
        };
        let e = Entry::new(&o, facts, Utc::now());
        assert!(e.describes(&o));
        assert_eq!(Entry::decode(&e.encode()), Some(e.clone()));
        let changes: Vec<fn(&mut ListedObject)> = vec![
            |o| o.version_id = Some("v2".into()),
            |o| o.etag = Some("def".into()),
            |o| o.size = 11,
            |o| o.storage_class = "STANDARD_IA".into(),
            |o| o.last_modified += chrono::Duration::milliseconds(1),
        ];
        for change in changes {
            let mut other = o.clone();
            change(&mut other);
            assert!(!e.describes(&other), "{other:?}");
        }
        assert_eq!(Entry::decode(b"not json"), None);
    }

    #[test]
    fn every_key_is_refreshed_once_per_interval_and_the_keys_spread_over_it() {
        let day = Duration::from_secs(86_400);
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        // Read now: not due a moment later, due again within a day, not sooner than the
        // next phase.
        let mut due_after = Vec::new();
        for i in 0..1000 {
            let key = format!("camera-{i}/clip.mp4");
            let read = start.timestamp();
            assert!(!refresh_due(&key, read, start, day));
            let mut hours = None;
            for h in 1..=25 {
                if refresh_due(&key, read, start + chrono::Duration::hours(h), day) {
                    hours = Some(h);
                    break;
                }
            }
            let h = hours.unwrap_or_else(|| panic!("{key} not due within a day"));
            // The index's time is the moment it falls due.
            let next = next_refresh(&key, read, day);
            let at = |t: i64| DateTime::from_timestamp(t, 0).unwrap();
            assert!(!refresh_due(&key, read, at(next - 1), day));
            assert!(refresh_due(&key, read, at(next), day));
            assert!(h <= 24, "{key} due only after {h} h");
            due_after.push(h);
        }
        // Keys read at the same moment fall due spread over the day, not together.
        let first_hour = due_after.iter().filter(|h| **h == 1).count();
        assert!(
            first_hour < 100,
            "{first_hour} of 1000 due in the same hour"
        );
        let distinct: std::collections::BTreeSet<_> = due_after.iter().collect();
        assert!(
            distinct.len() >= 20,
            "due in only {} distinct hours",
            distinct.len()
        );
    }
}
