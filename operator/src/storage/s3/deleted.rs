//! What follows a soft delete, for a policy with a restore window
//! (`TierStore::list_deleted`, `restore_clip`, `purge_clip`, `versioning_enabled`). See
//! [`crate::storage::deleted`]. The soft delete itself is a batch delete of `delete.rs`
//! (`Deletion::Soft`): a `DeleteObjects` without version ids, sent only after a fresh
//! `GetBucketVersioning` said `Enabled` (on an unversioned bucket the same request would
//! delete for good, and on a suspended one it would replace the `null` version).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{
    StreamExt, TryStreamExt,
    stream::{self, BoxStream},
};

use super::{S3TierStore, client::Calls};
use crate::{
    api::clip::{Clip, Tier},
    storage::{DeletedClip, StorageError},
};

/// One entry of a `ListObjectVersions` page: a version or a delete marker.
#[derive(Debug, Clone)]
struct Entry {
    key: String,
    version: String,
    at: DateTime<Utc>,
    marker: bool,
    latest: bool,
    size: u64,
    class: Option<String>,
}

/// A deleted clip as the listing showed it, before its data version's facts are read.
#[derive(Debug)]
struct Found {
    key: String,
    data: Option<Entry>,
    markers: Vec<(String, DateTime<Utc>)>,
}

/// The key being walked across pages: its markers so far, or `done` once its data
/// version was found (or its latest version is not a marker).
#[derive(Debug)]
struct Walk {
    key: String,
    markers: Vec<(String, DateTime<Utc>)>,
    done: bool,
}

impl Walk {
    /// Take in the next entry (same key or not); a finished key comes out.
    fn step(state: &mut Option<Walk>, e: Entry, out: &mut Vec<Found>) {
        if state.as_ref().is_some_and(|w| w.key != e.key) {
            Walk::flush(state, out);
        }
        match state {
            None => {
                *state = Some(Walk {
                    key: e.key.clone(),
                    done: !(e.marker && e.latest),
                    markers: if e.marker && e.latest {
                        vec![(e.version, e.at)]
                    } else {
                        Vec::new()
                    },
                });
            }
            Some(w) if w.done => {}
            Some(w) if e.marker => w.markers.push((e.version, e.at)),
            Some(w) => {
                out.push(Found {
                    key: w.key.clone(),
                    markers: std::mem::take(&mut w.markers),
                    data: Some(e),
                });
                w.done = true;
            }
        }
    }

    /// The walked key is finished: markers with no data beneath are an orphan.
    fn flush(state: &mut Option<Walk>, out: &mut Vec<Found>) {
        if let Some(w) = state.take()
            && !w.done
            && !w.markers.is_empty()
        {
            out.push(Found {
                key: w.key,
                data: None,
                markers: w.markers,
            });
        }
    }
}

fn to_chrono(t: Option<&aws_sdk_s3::primitives::DateTime>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

impl S3TierStore {
    /// `TierStore::versioning_enabled`: a fresh `GetBucketVersioning`.
    pub(super) async fn versioning_is_enabled(
        &self,
        tier: Tier,
        calls: &Calls,
    ) -> Result<bool, StorageError> {
        let bucket = self.loc(tier).bucket.clone();
        let out = self
            .send("get_bucket_versioning", &bucket, calls, || {
                self.client().get_bucket_versioning().bucket(&bucket).send()
            })
            .await
            .map_err(|f| f.into_error("get_bucket_versioning", &bucket, None))?;
        let enabled = out
            .status()
            .is_some_and(|s| *s == aws_sdk_s3::types::BucketVersioningStatus::Enabled);
        self.remember_versioning(&bucket, out.status().is_some())
            .await;
        Ok(enabled)
    }

    /// One page of `ListObjectVersions` under `prefix`, versions and markers merged in
    /// key order, newest first within a key; and the markers of the next page.
    async fn version_page(
        &self,
        bucket: &str,
        prefix: &str,
        markers: (Option<String>, Option<String>),
        calls: &Calls,
    ) -> Result<(Vec<Entry>, Option<(Option<String>, Option<String>)>), StorageError> {
        let out = self
            .send("list_object_versions", bucket, calls, || {
                self.client()
                    .list_object_versions()
                    .bucket(bucket)
                    .prefix(prefix)
                    .max_keys(self.opts.list_page_size)
                    .set_key_marker(markers.0.clone())
                    .set_version_id_marker(markers.1.clone())
                    .send()
            })
            .await
            .map_err(|f| f.into_error("list_object_versions", bucket, None))?;
        let mut entries: Vec<Entry> = out
            .versions()
            .iter()
            .filter_map(|v| {
                Some(Entry {
                    key: v.key()?.to_string(),
                    version: v.version_id().unwrap_or("null").to_string(),
                    at: to_chrono(v.last_modified()),
                    marker: false,
                    latest: v.is_latest() == Some(true),
                    size: v.size().unwrap_or(0).max(0) as u64,
                    class: v.storage_class().map(|c| c.as_str().to_string()),
                })
            })
            .chain(out.delete_markers().iter().filter_map(|m| {
                Some(Entry {
                    key: m.key()?.to_string(),
                    version: m.version_id().unwrap_or("null").to_string(),
                    at: to_chrono(m.last_modified()),
                    marker: true,
                    latest: m.is_latest() == Some(true),
                    size: 0,
                    class: None,
                })
            }))
            .collect();
        // Latest first within a key, then newest first.
        entries.sort_by(|a, b| {
            a.key
                .cmp(&b.key)
                .then(b.latest.cmp(&a.latest))
                .then(b.at.cmp(&a.at))
        });
        let next = (out.is_truncated() == Some(true)).then(|| {
            (
                out.next_key_marker().map(str::to_string),
                out.next_version_id_marker().map(str::to_string),
            )
        });
        Ok((entries, next))
    }

    /// `TierStore::list_deleted`.
    pub(super) fn deleted_in<'a>(
        &'a self,
        tier: Tier,
        prefix: Option<&'a str>,
    ) -> BoxStream<'a, Result<DeletedClip, StorageError>> {
        let calls = Arc::new(Calls::default());
        let loc = self.loc(tier).clone();
        let full_prefix = format!("{}{}", loc.prefix, prefix.unwrap_or(""));
        let page_calls = calls.clone();
        let bucket = loc.bucket.clone();
        let pages = stream::try_unfold(Some(((None, None), None::<Walk>)), move |state| {
            let calls = page_calls.clone();
            let bucket = bucket.clone();
            let full_prefix = full_prefix.clone();
            async move {
                let Some((markers, mut walk)) = state else {
                    return Ok(None);
                };
                let (entries, next) = self
                    .version_page(&bucket, &full_prefix, markers, &calls)
                    .await?;
                let mut found = Vec::new();
                for e in entries {
                    Walk::step(&mut walk, e, &mut found);
                }
                let state = match next {
                    Some(m) => Some((m, walk)),
                    None => {
                        Walk::flush(&mut walk, &mut found);
                        None
                    }
                };
                Ok(Some((found, state)))
            }
        });
        let prefix_len = loc.prefix.len();
        pages
            .map_ok(|found| stream::iter(found.into_iter().map(Ok::<_, StorageError>)))
            .try_flatten()
            .try_filter(move |f| {
                let keep = !f.key.ends_with('/')
                    && f.data
                        .as_ref()
                        .is_none_or(|d| self.belongs(tier, d.class.as_deref()));
                futures::future::ready(keep)
            })
            .map_ok(move |f| {
                let calls = calls.clone();
                async move { self.read_deleted(tier, prefix_len, f, &calls).await }
            })
            .try_buffered(self.opts.list_concurrency)
            .boxed()
    }

    /// The facts of a deleted clip's data version: its tags (`GetObjectTagging`) and
    /// hold and recorded checksum (`HeadObject`), by version id.
    async fn read_deleted(
        &self,
        tier: Tier,
        prefix_len: usize,
        f: Found,
        calls: &Calls,
    ) -> Result<DeletedClip, StorageError> {
        let bucket = self.loc(tier).bucket.clone();
        let deleted_at = f
            .markers
            .first()
            .map_or(DateTime::UNIX_EPOCH, |(_, at)| *at);
        let key = f.key[prefix_len.min(f.key.len())..].to_string();
        let data = match f.data {
            None => None,
            Some(e) => {
                let tags = self
                    .object_tags(&bucket, &e.key, Some(&e.version), calls)
                    .await?;
                let head = self.head(&bucket, &e.key, Some(&e.version), calls).await?;
                match (tags, head) {
                    (Some(tags), Some(head)) => Some(Clip {
                        key: key.clone(),
                        tier,
                        version_id: Some(e.version),
                        size: e.size,
                        storage_class: Some(e.class.unwrap_or_else(|| "STANDARD".into())),
                        last_modified: e.at,
                        tags,
                        sha256: head.sha_meta,
                        uploaded_at: head.uploaded_at,
                        legal_hold: head.legal_hold,
                        plain_headers: None,
                    }),
                    _ => None,
                }
            }
        };
        Ok(DeletedClip {
            data,
            key,
            tier,
            markers: f.markers.into_iter().map(|(v, _)| v).collect(),
            deleted_at,
        })
    }

    /// `TierStore::restore_clip`: the markers removed, newest first.
    pub(super) async fn restore_deleted(&self, d: &DeletedClip) -> Result<(), StorageError> {
        if d.data.is_none() {
            return Err(StorageError::InvalidInput(format!(
                "{} has no data version under its delete marker: nothing to restore",
                d.key
            )));
        }
        self.delete_versions(d, d.markers.iter()).await
    }

    /// `TierStore::purge_clip`: the data version first (a hold makes the store refuse
    /// it, and then the markers stay too), then the markers.
    pub(super) async fn purge_deleted(&self, d: &DeletedClip) -> Result<(), StorageError> {
        let data = d.data.as_ref();
        if let Some(data) = data.filter(|data| data.legal_hold) {
            return Err(StorageError::InvalidInput(format!(
                "{} version {:?} is under legal hold: not purged",
                d.key, data.version_id
            )));
        }
        let data_version = data.and_then(|data| data.version_id.as_ref());
        self.delete_versions(d, data_version.into_iter().chain(&d.markers))
            .await?;
        self.metrics.deleted("purged", 1);
        Ok(())
    }

    /// Delete these versions of a deleted clip's key, in order, after the region proof:
    /// one `DeleteObject` by version id each.
    async fn delete_versions(
        &self,
        d: &DeletedClip,
        versions: impl Iterator<Item = &String>,
    ) -> Result<(), StorageError> {
        let calls = Calls::default();
        self.prove(&calls).await?;
        let loc = self.loc(d.tier);
        let key = loc.object_key(&d.key);
        for version in versions {
            self.delete_version(&loc.bucket, &key, Some(version), &calls)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn e(key: &str, version: &str, secs: i64, marker: bool, latest: bool) -> Entry {
        Entry {
            key: key.into(),
            version: version.into(),
            at: DateTime::from_timestamp(secs, 0).unwrap(),
            marker,
            latest,
            size: 1,
            class: None,
        }
    }

    #[test]
    fn a_walk_finds_the_data_beneath_the_markers_across_pages_and_orphans() {
        let mut walk = None;
        let mut out = Vec::new();
        // Page 1: a live key, a deleted key whose data is on the next page.
        for x in [
            e("a", "a1", 10, false, true),
            e("a", "a0", 5, false, false),
            e("b", "m2", 30, true, true),
            e("b", "m1", 20, true, false),
        ] {
            Walk::step(&mut walk, x, &mut out);
        }
        assert!(out.is_empty());
        // Page 2: b's data, then an orphan marker c, then a key deleted twice over data.
        for x in [
            e("b", "b1", 10, false, false),
            e("b", "b0", 1, false, false),
            e("c", "m3", 40, true, true),
            e("d", "m4", 50, true, true),
            e("d", "d1", 9, false, false),
        ] {
            Walk::step(&mut walk, x, &mut out);
        }
        Walk::flush(&mut walk, &mut out);
        let got: Vec<(String, Option<String>, Vec<String>)> = out
            .into_iter()
            .map(|f| {
                (
                    f.key,
                    f.data.map(|d| d.version),
                    f.markers.into_iter().map(|m| m.0).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "b".into(),
                    Some("b1".into()),
                    vec!["m2".into(), "m1".into()]
                ),
                ("c".into(), None, vec!["m3".into()]),
                ("d".into(), Some("d1".into()), vec!["m4".into()]),
            ]
        );
    }
}
