//! What the catalogue learns from the audit chain: each `ingested` record of the
//! bucket's hot tier (`evidence-operator ingest`, on a dock, writes one per clip, with
//! what it wrote: version, ETag, size, SHA-256, tags, content type, upload time) becomes
//! an entry for that clip before the operator ever lists it. So on a store whose
//! listing carries no facts (AWS S3, Ceph, SeaweedFS), a newly ingested clip costs its
//! first sweep no tag read, and its first move no HEAD: the listing shows its key, the
//! entry its facts.
//!
//! An entry learned so is a cache entry like any other, and weaker than one read from
//! storage, so it is held to more: it describes only the very version the record names
//! (version id, ETag, size, storage class), and only while the listed `LastModified`
//! lies between the upload time the ingest wrote and the record's time (the ingest does
//! not know the store's `LastModified`; [`Entry::window`]); once listed, it is kept for
//! that `LastModified` only ([`Entry::seen`]). It falls due for its refresh counted from
//! the record's time, as if read then. A record that says something false costs at most
//! a plan that the point of no return refuses (a delete reads the clip's tags again; a
//! move is verified against the store's checksum of the copy), never a clip.
//!
//! Where the reader is: a position per bucket (the next batch number to read) in the
//! catalogue file. A catalogue that has none (new, or lost with its pod) starts
//! [`LOOKBACK`] batches before the chain's head. Batches this process wrote are passed
//! by without a read ([`AuditLog::wrote`]); each sweep reads at most [`MAX_BATCHES`].

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::{BucketCatalogue, entry::Entry};
use crate::{
    api::clip::{PlainHeaders, Tier},
    audit::{AuditAction, AuditError, AuditLog, Record},
    storage::ClipFacts,
};

/// How many batches before the chain's head a catalogue with no position starts.
pub const LOOKBACK: u64 = 64;

/// At most this many batches are read per sweep (the rest the next sweep).
pub const MAX_BATCHES: usize = 1000;

/// How far the listed `LastModified` may lie outside the window the record gives: the
/// ingest's clock is the store's `Date` header (whole seconds) carried forward.
const CLOCK_SLACK: TimeDelta = TimeDelta::seconds(2);

/// Where the reader of one bucket's chain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    /// The next batch number to read.
    next: u64,
}

/// What one [`BucketCatalogue::learn_ingested`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Learned {
    /// Batches read.
    pub batches: usize,
    /// Entries learned (clips of the hot tier named by `ingested` records).
    pub entries: usize,
}

/// The hot-tier entry an `ingested` record of `bucket` gives, keyed by the clip's key
/// (relative to the tier's prefix); `None` for any other record, or one that lacks
/// what an entry needs.
pub fn entry_of(record: &Record, bucket: &str) -> Option<(String, Entry)> {
    if record.action != AuditAction::Ingested
        || record.bucket != bucket
        || record.to_tier != Some(Tier::Hot)
    {
        return None;
    }
    let clip = record.clip.as_ref()?;
    let written = record.written.as_ref()?;
    let sha256 = record.sha256.clone()?;
    let uploaded_at = DateTime::parse_from_rfc3339(&written.uploaded_at)
        .ok()?
        .with_timezone(&Utc);
    let recorded = record.parsed_time()?;
    if clip.key.is_empty() || recorded < uploaded_at {
        return None;
    }
    let facts = ClipFacts {
        tags: written.tags.clone(),
        sha256: Some(sha256),
        legal_hold: false,
        uploaded_at: Some(uploaded_at),
        // The ingest writes only a content type and the operator's own records.
        plain_headers: Some(PlainHeaders {
            content_type: Some(written.content_type.clone()),
        }),
    };
    let entry = Entry {
        version_id: clip.version_id.clone(),
        etag: Some(written.etag.clone()),
        size: clip.size,
        storage_class: written
            .storage_class
            .clone()
            .unwrap_or_else(|| "STANDARD".into()),
        last_modified_ms: 0,
        facts,
        read_at: recorded.timestamp(),
        window: Some((
            (uploaded_at - CLOCK_SLACK).timestamp_millis(),
            (recorded + CLOCK_SLACK).timestamp_millis(),
        )),
    };
    Some((clip.key.clone(), entry))
}

impl BucketCatalogue {
    /// Learn the hot-tier clips that `ingested` records of `bucket` name in the batches
    /// added to `log` since the last call: one listing of the chain's new batch keys,
    /// one read per batch another writer added. Records older than a refresh interval
    /// are passed by (their entries would be due at once), and so is a batch that is
    /// not records. Failures of the catalogue file are counted and logged (the clips are
    /// read from storage instead); a chain that cannot be read is the caller's to report
    /// (what was read before is kept, the rest read next time).
    pub async fn learn_ingested(
        &self,
        log: &AuditLog,
        bucket: &str,
        now: DateTime<Utc>,
    ) -> Result<Learned, AuditError> {
        let key = format!("chain/{}", self.table(Tier::Hot));
        let (start, known) = match self.db.memo::<Position>(key.clone()).await {
            Ok(Some(p)) => (p.next, true),
            Ok(None) => (log.head().await?.next_batch.saturating_sub(LOOKBACK), false),
            Err(e) => {
                self.metrics.error();
                tracing::warn!(error = %e, "could not read the catalogue's chain position");
                return Ok(Learned::default());
            }
        };
        let batches = log.batches_from(start, MAX_BATCHES).await?;
        let mut learned = Learned::default();
        let oldest = now - TimeDelta::from_std(self.opts.tag_refresh).unwrap_or(TimeDelta::MAX);
        let mut next = start;
        let mut failed = None;
        for &n in &batches {
            if !log.wrote(n) {
                let records = match log.read_batch(n).await {
                    Ok(records) => records,
                    // Not records (the verifier reports it): nothing to learn there.
                    Err(e @ AuditError::Broken { .. }) => {
                        tracing::warn!(batch = n, error = %e, "an audit batch that is not records; passed by");
                        next = n + 1;
                        continue;
                    }
                    // Read again next sweep; what was learned so far is kept.
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                };
                learned.batches += 1;
                let entries: Vec<(String, Entry)> = records
                    .iter()
                    .filter(|r| r.parsed_time().is_some_and(|t| t > oldest))
                    .filter_map(|r| entry_of(r, bucket))
                    .collect();
                let n_entries = entries.len();
                if let Err(e) = self
                    .db
                    .seed(
                        self.table(Tier::Hot).to_string(),
                        entries,
                        self.opts.tag_refresh,
                    )
                    .await
                {
                    self.metrics.error();
                    tracing::warn!(error = %e, "could not record what the audit chain says was ingested");
                    break;
                }
                learned.entries += n_entries;
            }
            next = n + 1;
        }
        log.forget_written_before(next);
        if (!known || next != start)
            && let Err(e) = self.db.set_memo(key, Some(Position { next })).await
        {
            self.metrics.error();
            tracing::warn!(error = %e, "could not record the catalogue's chain position");
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(learned),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use futures::TryStreamExt;

    use super::*;
    use crate::{
        api::clip::{TAG_CATEGORY, Tag},
        audit::{
            Actor, ClipRef, Entry as AuditEntry, Written,
            record::{GENESIS, seal},
        },
        catalogue::{
            CatalogueOptions, CataloguedStore, listing,
            tests::{config, temporary},
        },
        storage::{
            KeyRange, ListedObject, TierStore,
            memory::{MemoryObject, MemoryOp, MemoryTierStore},
        },
    };

    /// The `ingested` record of `o` as an ingest that started its upload at
    /// `uploaded_at` and recorded it at `recorded` writes it.
    fn record(
        o: &ListedObject,
        bucket: &str,
        uploaded_at: DateTime<Utc>,
        recorded: DateTime<Utc>,
    ) -> Record {
        let mut e = AuditEntry::clip(
            AuditAction::Ingested,
            ClipRef {
                key: o.key.clone(),
                version_id: o.version_id.clone(),
                size: o.size,
            },
            None,
            "ingested from dock 7",
        );
        e.time = recorded;
        e.to_tier = Some(Tier::Hot);
        e.sha256 = Some("ab".repeat(32));
        e.written = Some(Written {
            etag: o.etag.clone().unwrap(),
            storage_class: None,
            content_type: "video/mp4".into(),
            tags: vec![Tag::new(TAG_CATEGORY, "non-evidential")],
            uploaded_at: uploaded_at.to_rfc3339(),
        });
        let actor = Actor {
            operator: "ingest:sgt@dock-7".into(),
            lease: None,
            lease_holder: None,
        };
        seal(0, GENESIS, &actor, bucket, &[e])
            .unwrap()
            .records
            .remove(0)
    }

    async fn listed(mem: &MemoryTierStore) -> Vec<ListedObject> {
        let mut v: Vec<ListedObject> = mem
            .list_objects(Tier::Hot, KeyRange::default())
            .try_collect()
            .await
            .unwrap();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    #[tokio::test]
    async fn an_ingested_record_describes_only_the_version_it_wrote_within_its_window() {
        let mem = MemoryTierStore::new();
        mem.put_object(Tier::Hot, "a.mp4", MemoryObject::new("clip a"));
        let o = listed(&mem).await.remove(0);
        let t = o.last_modified;
        let r = record(
            &o,
            "ns/unit",
            t - TimeDelta::seconds(1),
            t + TimeDelta::seconds(3),
        );
        let (key, e) = entry_of(&r, "ns/unit").unwrap();
        assert_eq!(key, "a.mp4");
        assert!(e.describes(&o));
        assert_eq!(e.facts.sha256, r.sha256);
        assert_eq!(
            e.facts
                .plain_headers
                .as_ref()
                .and_then(|h| h.content_type.as_deref()),
            Some("video/mp4")
        );
        assert_eq!(e.read_at, r.parsed_time().unwrap().timestamp());
        // Another write of the key: another ETag, size or version; or a LastModified
        // outside the upload's window.
        let changes: Vec<fn(&mut ListedObject)> = vec![
            |o| o.etag = Some("other".into()),
            |o| o.size += 1,
            |o| o.version_id = Some("v-other".into()),
            |o| o.storage_class = "GLACIER".into(),
            |o| o.last_modified += TimeDelta::seconds(10),
            |o| o.last_modified -= TimeDelta::seconds(10),
        ];
        for change in changes {
            let mut other = o.clone();
            change(&mut other);
            assert!(!e.describes(&other), "{other:?}");
        }
        // Once listed, only that LastModified.
        let seen = e.clone().seen(&o);
        assert_eq!(seen.window, None);
        assert!(seen.describes(&o));
        let mut later = o.clone();
        later.last_modified += TimeDelta::milliseconds(1);
        assert!(!seen.describes(&later));
        // Not this bucket's, not an ingest, or without what was written: nothing.
        assert!(entry_of(&r, "ns/other").is_none());
        let mut moved = r.clone();
        moved.action = AuditAction::Moved;
        assert!(entry_of(&moved, "ns/unit").is_none());
        let mut bare = r.clone();
        bare.written = None;
        assert!(entry_of(&bare, "ns/unit").is_none());
        let mut unhashed = r;
        unhashed.sha256 = None;
        assert!(entry_of(&unhashed, "ns/unit").is_none());
    }

    #[tokio::test]
    async fn a_learned_clip_is_listed_without_a_read_and_then_kept_as_listed() {
        let mem = MemoryTierStore::new();
        for k in ["a.mp4", "b.mp4", "c.mp4"] {
            mem.put_object(
                Tier::Hot,
                k,
                MemoryObject::new(format!("clip {k}")).tag(TAG_CATEGORY, "non-evidential"),
            );
        }
        let objects = listed(&mem).await;
        let (cat, dir) = temporary(CatalogueOptions::default());
        let bucket = cat.bucket("ns/unit", &config());
        let t = objects[0].last_modified;
        let entries: Vec<(String, Entry)> = [
            // a: recorded around its upload.
            record(
                &objects[0],
                "ns/unit",
                t - TimeDelta::seconds(1),
                t + TimeDelta::seconds(1),
            ),
            // b: its record's upload time is long after the listed write: another write.
            record(
                &objects[1],
                "ns/unit",
                t + TimeDelta::minutes(5),
                t + TimeDelta::minutes(6),
            ),
        ]
        .iter()
        .filter_map(|r| entry_of(r, "ns/unit"))
        .collect();
        bucket
            .db
            .seed(
                bucket.table(Tier::Hot).to_string(),
                entries,
                bucket.opts.tag_refresh,
            )
            .await
            .unwrap();
        let store = CataloguedStore::new(Arc::new(mem.sharing()), bucket.clone());
        let now = Utc::now();
        let first: Vec<_> = listing::list(&bucket, &store, Tier::Hot, now)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(first.len(), 3);
        assert_eq!(mem.calls(MemoryOp::ReadFacts), 2, "b and c read, a learned");
        assert_eq!(cat.metrics().lookups("ingested"), 1);
        assert_eq!(cat.metrics().lookups("new"), 1);
        assert_eq!(cat.metrics().lookups("changed"), 1);
        let a = first.iter().find(|c| c.key == "a.mp4").unwrap();
        assert_eq!(a.sha256.as_deref(), Some("ab".repeat(32).as_str()));
        // The next listing: all three known, a as the version listed.
        let _: Vec<_> = listing::list(&bucket, &store, Tier::Hot, now)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(mem.calls(MemoryOp::ReadFacts), 2);
        assert_eq!(cat.metrics().lookups("hit"), 3);
        assert_eq!(cat.metrics().lookups("ingested"), 1);
        // A record learned again after the clip was read is not taken over it.
        let again: Vec<(String, Entry)> = entry_of(
            &record(
                &objects[0],
                "ns/unit",
                t - TimeDelta::seconds(1),
                t + TimeDelta::seconds(1),
            ),
            "ns/unit",
        )
        .into_iter()
        .collect();
        bucket
            .db
            .seed(
                bucket.table(Tier::Hot).to_string(),
                again,
                bucket.opts.tag_refresh,
            )
            .await
            .unwrap();
        let kept = bucket
            .db
            .range(bucket.table(Tier::Hot).to_string(), None, None)
            .await
            .unwrap();
        assert!(kept.iter().all(|(_, e)| e.window.is_none()), "{kept:?}");
        drop(cat);
        let _ = std::fs::remove_dir_all(dir);
    }
}
