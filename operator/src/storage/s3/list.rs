//! Listing a tier (`TierStore::list`, `list_tier`): pages of `ListObjectsV2`, or of
//! `ListObjectVersions` on a versioned bucket (current versions only), each [`Listed`]
//! object then turned into a [`Clip`] with its tags, recorded checksum, hold and
//! recorded upload time.
//!
//! Those come with the listing itself when the store speaks MinIO's listing extension
//! (`ask_listing_extras`, `listing_extras`, see `extended`); otherwise they are read
//! object by object (`read_clip_facts`), entry by entry, so missing extras are never
//! taken for "no tags". Tiers that share a bucket and prefix are told apart by storage
//! class (`belongs`).

use std::sync::Arc;

use aws_sdk_s3::client::customize::CustomizableOperation;
use chrono::{DateTime, Utc};
use futures::{
    StreamExt, TryStreamExt,
    future::ready,
    stream::{self, BoxStream},
};

use super::{
    S3TierStore,
    client::Calls,
    extended::{Capture, ExtrasIndex, add_list_metadata_param, parse_listing},
};
use crate::{
    api::clip::{Clip, Tag, Tier},
    storage::{ClipFacts, KeyRange, ListedObject, StorageError, TierLocation, retry::FailureKind},
};

/// One object as listed.
#[derive(Debug, Clone)]
pub(super) struct Listed {
    /// The full object key.
    pub(super) key: String,
    pub(super) version_id: Option<String>,
    /// The ETag, quotes removed.
    etag: Option<String>,
    size: u64,
    class: Option<String>,
    last_modified: DateTime<Utc>,
    /// Tags, recorded checksum and hold, when the listing carried them (MinIO).
    pub(super) extras: Option<ClipFacts>,
}

/// Where a listing is: not started (versioning not read yet), or the continuation of a
/// `ListObjectsV2` listing (its continuation token, or the key it starts after) or of a
/// `ListObjectVersions` listing (key and version markers).
pub(super) enum Cursor {
    Start,
    V2 {
        token: Option<String>,
        after: Option<String>,
    },
    Versions(Option<String>, Option<String>),
}

/// An ETag without its quotes (as listings and write answers quote it).
pub(super) fn unquote(etag: &str) -> String {
    etag.trim_matches('"').to_string()
}

fn to_chrono(t: Option<&aws_sdk_s3::primitives::DateTime>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

impl S3TierStore {
    /// `TierStore::list`: the pages of one tier, flattened, filtered to the tier's
    /// objects and enriched `list_concurrency` at a time.
    pub(super) fn list_tier(&self, tier: Tier) -> BoxStream<'_, Result<Clip, StorageError>> {
        let calls = Arc::new(Calls::default());
        let loc = self.loc(tier).clone();
        let page_calls = calls.clone();
        let pages = stream::try_unfold(Some(Cursor::Start), move |cursor| {
            let loc = loc.clone();
            let calls = page_calls.clone();
            async move {
                match cursor {
                    None => Ok(None),
                    Some(c) => {
                        let (items, next) = self.list_page(&loc, c, &calls).await?;
                        Ok(Some((items, next)))
                    }
                }
            }
        });
        pages
            .map_ok(|items| stream::iter(items.into_iter().map(Ok::<_, StorageError>)))
            .try_flatten()
            .try_filter(move |item| {
                ready(!item.key.ends_with('/') && self.belongs(tier, item.class.as_deref()))
            })
            .map_ok(move |item| {
                let calls = calls.clone();
                async move { self.enrich(tier, item, &calls).await }
            })
            .try_buffered(self.opts.list_concurrency)
            .try_filter_map(|c| ready(Ok(c)))
            .boxed()
    }

    /// `TierStore::list_objects`: the pages of one key range of a tier, flattened and
    /// filtered to the tier's objects; no per-object request.
    pub(super) fn list_range(
        &self,
        tier: Tier,
        range: KeyRange,
    ) -> BoxStream<'_, Result<ListedObject, StorageError>> {
        let calls = Arc::new(Calls::default());
        let loc = self.loc(tier).clone();
        let prefix = loc.prefix.clone();
        let start = range.after.as_ref().map(|a| format!("{prefix}{a}"));
        let until = range.until.as_ref().map(|u| format!("{prefix}{u}"));
        let pages = stream::try_unfold(Some((Cursor::Start, start)), move |state| {
            let loc = loc.clone();
            let calls = calls.clone();
            let until = until.clone();
            async move {
                let Some((cursor, start)) = state else {
                    return Ok(None);
                };
                let (mut items, next) = self.list_page_after(&loc, cursor, start, &calls).await?;
                // The range ends at `until`: keys past it are the next range's, and a
                // page that reached it is the last.
                let mut next = next.map(|c| (c, None));
                if let Some(u) = &until {
                    if items.last().is_some_and(|i| i.key >= *u) {
                        next = None;
                    }
                    items.retain(|i| i.key <= *u);
                }
                Ok(Some((items, next)))
            }
        });
        pages
            .map_ok(|items| stream::iter(items.into_iter().map(Ok::<_, StorageError>)))
            .try_flatten()
            .try_filter(move |item| {
                ready(!item.key.ends_with('/') && self.belongs(tier, item.class.as_deref()))
            })
            .map_ok(move |item| ListedObject {
                key: item.key[prefix.len()..].to_string(),
                version_id: item.version_id,
                etag: item.etag,
                size: item.size,
                storage_class: item.class.unwrap_or_else(|| "STANDARD".into()),
                last_modified: item.last_modified,
                facts: item.extras,
            })
            .boxed()
    }

    /// `TierStore::read_facts`: what the listing did not carry, read for one object.
    pub(super) async fn facts_of(
        &self,
        tier: Tier,
        object: &ListedObject,
    ) -> Result<Option<ClipFacts>, StorageError> {
        if let Some(facts) = &object.facts {
            self.metrics.listed_with_extras(1);
            return Ok(Some(facts.clone()));
        }
        let item = Listed {
            key: format!("{}{}", self.loc(tier).prefix, object.key),
            version_id: object.version_id.clone(),
            etag: object.etag.clone(),
            size: object.size,
            class: Some(object.storage_class.clone()),
            last_modified: object.last_modified,
            extras: None,
        };
        self.read_clip_facts(tier, &item, &Calls::default()).await
    }

    /// Ask for MinIO's listing extension (when `list_metadata` is on) and keep the raw
    /// answer in `capture`.
    fn ask_listing_extras<T, E, B>(
        &self,
        req: CustomizableOperation<T, E, B>,
        capture: &Capture,
    ) -> CustomizableOperation<T, E, B> {
        if self.opts.list_metadata {
            req.mutate_request(add_list_metadata_param)
                .interceptor(capture.clone())
        } else {
            req
        }
    }

    /// The per-object extras of the listing page `capture` kept (empty when the store
    /// sent none, or when they cannot be read: the clips are then read one by one).
    fn listing_extras(&self, bucket: &str, capture: &Capture) -> ExtrasIndex {
        let Some(body) = capture.take().body else {
            return ExtrasIndex::new();
        };
        match parse_listing(&body) {
            Ok(index) => index,
            Err(e) => {
                tracing::warn!(bucket, error = %e, "could not read the listing's metadata; reading clips one by one");
                ExtrasIndex::new()
            }
        }
    }

    /// One page of a listing, and the cursor of the next (`None`: the last page).
    pub(super) async fn list_page(
        &self,
        loc: &TierLocation,
        cursor: Cursor,
        calls: &Calls,
    ) -> Result<(Vec<Listed>, Option<Cursor>), StorageError> {
        self.list_page_after(loc, cursor, None, calls).await
    }

    /// [`Self::list_page`], a first page starting after the full key `start`.
    async fn list_page_after(
        &self,
        loc: &TierLocation,
        cursor: Cursor,
        start: Option<String>,
        calls: &Calls,
    ) -> Result<(Vec<Listed>, Option<Cursor>), StorageError> {
        let bucket = loc.bucket.as_str();
        let cursor = match cursor {
            Cursor::Start => {
                let v = self
                    .send("get_bucket_versioning", bucket, calls, || {
                        self.client().get_bucket_versioning().bucket(bucket).send()
                    })
                    .await
                    .map_err(|f| f.into_error("get_bucket_versioning", bucket, None))?;
                self.remember_versioning(bucket, v.status().is_some()).await;
                if v.status().is_some() {
                    Cursor::Versions(start, None)
                } else {
                    Cursor::V2 {
                        token: None,
                        after: start,
                    }
                }
            }
            c => c,
        };
        match cursor {
            Cursor::V2 { token, after } => {
                let capture = Capture::with_body();
                let out = self
                    .send("list_objects_v2", bucket, calls, || {
                        let req = self
                            .client()
                            .list_objects_v2()
                            .bucket(bucket)
                            .prefix(&loc.prefix)
                            .max_keys(self.opts.list_page_size)
                            .set_continuation_token(token.clone())
                            .set_start_after(after.clone())
                            .customize();
                        self.ask_listing_extras(req, &capture).send()
                    })
                    .await
                    .map_err(|f| f.into_error("list_objects_v2", bucket, None))?;
                let mut extras = self.listing_extras(bucket, &capture);
                let items = out
                    .contents()
                    .iter()
                    .filter_map(|o| {
                        let key = o.key()?.to_string();
                        Some(Listed {
                            extras: extras.remove(&(key.clone(), None)),
                            key,
                            version_id: None,
                            etag: o.e_tag().map(unquote),
                            size: o.size().unwrap_or(0).max(0) as u64,
                            class: o.storage_class().map(|c| c.as_str().to_string()),
                            last_modified: to_chrono(o.last_modified()),
                        })
                    })
                    .collect();
                let next = match (out.is_truncated(), out.next_continuation_token()) {
                    (Some(true), Some(t)) => Some(Cursor::V2 {
                        token: Some(t.to_string()),
                        after: None,
                    }),
                    _ => None,
                };
                Ok((items, next))
            }
            Cursor::Versions(key_marker, version_marker) => {
                let capture = Capture::with_body();
                let out = self
                    .send("list_object_versions", bucket, calls, || {
                        let req = self
                            .client()
                            .list_object_versions()
                            .bucket(bucket)
                            .prefix(&loc.prefix)
                            .max_keys(self.opts.list_page_size)
                            .set_key_marker(key_marker.clone())
                            .set_version_id_marker(version_marker.clone())
                            .customize();
                        self.ask_listing_extras(req, &capture).send()
                    })
                    .await
                    .map_err(|f| f.into_error("list_object_versions", bucket, None))?;
                let mut extras = self.listing_extras(bucket, &capture);
                // Only current versions are clips; noncurrent ones and delete markers are not.
                let items = out
                    .versions()
                    .iter()
                    .filter(|v| v.is_latest() == Some(true))
                    .filter_map(|v| {
                        let key = v.key()?.to_string();
                        let version_id = v.version_id().map(str::to_string);
                        Some(Listed {
                            extras: extras.remove(&(key.clone(), version_id.clone())),
                            key,
                            version_id,
                            etag: v.e_tag().map(unquote),
                            size: v.size().unwrap_or(0).max(0) as u64,
                            class: v.storage_class().map(|c| c.as_str().to_string()),
                            last_modified: to_chrono(v.last_modified()),
                        })
                    })
                    .collect();
                let next = if out.is_truncated() == Some(true) {
                    Some(Cursor::Versions(
                        out.next_key_marker().map(str::to_string),
                        out.next_version_id_marker().map(str::to_string),
                    ))
                } else {
                    None
                };
                Ok((items, next))
            }
            Cursor::Start => Ok((Vec::new(), None)),
        }
    }

    /// Whether an object listed at `loc` belongs to `tier`: tiers that share a bucket
    /// and prefix are told apart by storage class.
    pub(super) fn belongs(&self, tier: Tier, class: Option<&str>) -> bool {
        let loc = self.loc(tier);
        let shared = Tier::ALL
            .iter()
            .any(|t| *t != tier && self.loc(*t).same_objects(loc));
        !shared || class.unwrap_or("STANDARD") == loc.class()
    }

    /// Tags, recorded checksum, hold and recorded upload time of one listed object, read
    /// object by object (stores without the listing extension); `None` when it is gone.
    /// Without a HEAD (hot and cool, unless `list_checksums`) the last two are unknown.
    async fn read_clip_facts(
        &self,
        tier: Tier,
        item: &Listed,
        calls: &Calls,
    ) -> Result<Option<ClipFacts>, StorageError> {
        let bucket = self.loc(tier).bucket.as_str();
        self.metrics.listed_per_object();
        let Some(tags) = self
            .object_tags(bucket, &item.key, item.version_id.as_deref(), calls)
            .await?
        else {
            return Ok(None);
        };
        if tier == Tier::LegalHold || self.opts.list_checksums {
            Ok(self
                .head(bucket, &item.key, item.version_id.as_deref(), calls)
                .await?
                .map(|h| ClipFacts {
                    tags,
                    sha256: h.sha_meta,
                    legal_hold: h.legal_hold,
                    uploaded_at: h.uploaded_at,
                    plain_headers: None,
                }))
        } else {
            // No HEAD: the recorded upload time is unknown, and the engine counts from
            // `LastModified`, which is later (the safe side).
            Ok(Some(ClipFacts {
                tags,
                ..ClipFacts::default()
            }))
        }
    }

    /// The tags of one object version (`None`: the current one), or `None` when it is
    /// gone: one `GetObjectTagging`. The one tag read of the store: listings without
    /// the extension, the re-read at the point of no return, multipart copies.
    pub(super) async fn object_tags(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        calls: &Calls,
    ) -> Result<Option<Vec<Tag>>, StorageError> {
        match self
            .send("get_object_tagging", bucket, calls, || {
                self.client()
                    .get_object_tagging()
                    .bucket(bucket)
                    .key(key)
                    .set_version_id(version.map(str::to_string))
                    .send()
            })
            .await
        {
            Ok(out) => Ok(Some(
                out.tag_set()
                    .iter()
                    .map(|t| Tag::new(t.key(), t.value()))
                    .collect(),
            )),
            Err(f) if f.kind == FailureKind::NotFound => Ok(None),
            Err(f) => Err(f.into_error("get_object_tagging", bucket, Some(key))),
        }
    }

    /// Per-object calls of a listing. None when the listing carried the object's tags,
    /// recorded checksum and hold (MinIO's `metadata=true`). Otherwise: one
    /// `GetObjectTagging` per clip (the plan needs the category and recording time); in
    /// the legal-hold tier one `HeadObject` more (hold status and recorded checksum); in
    /// hot/cool a `HeadObject` only when `list_checksums` is set. Plus one list request
    /// per 1,000 clips and one `GetBucketVersioning` per listing.
    async fn enrich(
        &self,
        tier: Tier,
        mut item: Listed,
        calls: &Calls,
    ) -> Result<Option<Clip>, StorageError> {
        let loc = self.loc(tier);
        let extras = match item.extras.take() {
            Some(extras) => {
                // The listing carried everything (MinIO): no request for this clip.
                self.metrics.listed_with_extras(1);
                extras
            }
            None => match self.read_clip_facts(tier, &item, calls).await? {
                Some(facts) => facts,
                // Deleted since it was listed: not a clip any more.
                None => return Ok(None),
            },
        };
        Ok(Some(Clip {
            key: item.key[loc.prefix.len()..].to_string(),
            tier,
            version_id: item.version_id,
            size: item.size,
            storage_class: Some(item.class.unwrap_or_else(|| "STANDARD".into())),
            last_modified: item.last_modified,
            tags: extras.tags,
            sha256: extras.sha256,
            legal_hold: extras.legal_hold,
            uploaded_at: extras.uploaded_at,
            plain_headers: extras.plain_headers,
        }))
    }
}
