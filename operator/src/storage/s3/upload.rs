//! New objects in the hot tier, for the dock ingest: created, never overwritten, and
//! verified against a SHA-256 known before the first byte is sent.
//!
//! - `S3TierStore::hot_object`: HEAD a key of the hot tier (is it there, with which
//!   SHA-256?).
//! - `S3TierStore::create_clip`: the region proof (cached, as before every write of
//!   the store), then either one `PutObject` (the clip in memory) or a multipart upload
//!   (the file read part by part, at most `parallel_parts` parts in memory and in
//!   flight), always with `If-None-Match: *` and `x-amz-checksum-sha256`: the store
//!   checks every body against its SHA-256 and refuses to create a key that exists
//!   (412). A multipart upload's parts are hashed in order into the full-object SHA-256,
//!   which must equal the expected one before the upload is completed (else it is
//!   aborted): the bytes sent are the bytes hashed. The written object is then
//!   confirmed: by the full-object checksum a single `PutObject`'s answer carries, or by
//!   a HEAD (size and recorded SHA-256).
//! - `S3TierStore::abort_stale_uploads`: a multipart upload of a key that an earlier
//!   run left incomplete (killed mid-way) is aborted before the key is uploaded again.
//!
//! The layer sees no sidecar, category or policy: the caller hands it the key, the tags,
//! the metadata and the bytes (or the file).

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use aws_sdk_s3::{
    primitives::ByteStream,
    types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart},
};
use base64::Engine;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, future::BoxFuture, stream::FuturesUnordered};
use sha2::{Digest, Sha256};

use super::{
    S3TierStore,
    checksum::full_object_sha256,
    client::Calls,
    list::unquote,
    parts::{Parts, StreamBody},
    tagging_query,
};
use crate::{
    api::clip::{Tag, Tier},
    storage::{ByteChunks, StorageError, retry::Failure},
};

/// Test-only pause point of a multipart upload: called with the clip key and the part
/// number just uploaded; returning `false` stops the upload right there (as if the
/// process died), leaving it incomplete, with [`StorageError::Interrupted`].
#[doc(hidden)]
pub type PartHook = Arc<dyn Fn(String, i32) -> BoxFuture<'static, bool> + Send + Sync>;

/// What a key of the hot tier holds, as a HEAD shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingObject {
    /// Size in bytes.
    pub size: u64,
    /// Its SHA-256 (hex): the recorded `evidence-sha256`, else S3's full-object checksum.
    pub sha256: Option<String>,
    /// Its version, where the bucket is versioned.
    pub version_id: Option<String>,
}

/// The bytes of a new clip.
#[derive(Debug, Clone)]
pub enum ClipBody {
    /// The whole clip, in memory: one `PutObject`.
    Memory(Bytes),
    /// A file, uploaded in parts of `part_size` (multipart).
    File {
        /// The file.
        path: PathBuf,
        /// Bytes per part (at least 5 MiB but for the last; raised to stay within 10,000
        /// parts).
        part_size: u64,
        /// Parts read and in flight at once (memory: this many parts, plus one).
        parallel_parts: usize,
    },
    /// Another object's bytes, sent as they are read (an export copy): one `PutObject`
    /// up to `part_size`, else in parts of `part_size`, at most `parallel_parts` in
    /// memory and in flight. The stream is taken by the first upload of it.
    Stream {
        /// The bytes (a GET's body, as [`crate::storage::TierStore::read_clip`] gives it).
        body: StreamBody,
        /// Bytes per part (at least 5 MiB but for the last).
        part_size: u64,
        /// Parts read and in flight at once.
        parallel_parts: usize,
    },
}

impl ClipBody {
    /// The body of a GET, to be sent as it is read.
    pub fn stream(body: ByteChunks, part_size: u64, parallel_parts: usize) -> Self {
        ClipBody::Stream {
            body: StreamBody(Arc::new(tokio::sync::Mutex::new(Some(body)))),
            part_size,
            parallel_parts,
        }
    }
}

/// One clip to create in the hot tier.
#[derive(Debug, Clone)]
pub struct NewClip {
    /// The clip key (relative to the hot tier's prefix).
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256 (hex), known before the first byte is sent.
    pub sha256: String,
    /// Object tags.
    pub tags: Vec<Tag>,
    /// User metadata (keys without `x-amz-meta-`).
    pub metadata: HashMap<String, String>,
    /// `Content-Type`.
    pub content_type: String,
    /// The bytes.
    pub body: ClipBody,
}

/// How the written object was confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmed {
    /// The `PutObject` answer carried the full-object SHA-256 the store computed.
    Answer,
    /// A HEAD of the new object showed its size and recorded SHA-256.
    Head,
}

/// What creating a clip did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// Written and confirmed.
    Written {
        /// The version written, where the bucket is versioned.
        version_id: Option<String>,
        /// The ETag the store answered (quotes removed), when it sent one.
        etag: Option<String>,
        /// Parts, for a multipart upload (0 for a single `PutObject`).
        parts: u32,
        /// How it was confirmed.
        confirmed: Confirmed,
        /// Requests sent (retries included).
        requests: u32,
    },
    /// The key already exists (the store refused to create it): what is there.
    Exists(Option<ExistingObject>),
}

fn b64(hex_sha: &str) -> Result<String, StorageError> {
    let raw = hex::decode(hex_sha)
        .map_err(|e| StorageError::InvalidInput(format!("SHA-256 {hex_sha:?}: {e}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(raw))
}

/// A refused precondition: the key exists (412), or another conditional write of it is
/// in flight (409).
fn exists(f: &Failure) -> bool {
    matches!(f.status, Some(412 | 409))
        || matches!(
            f.code.as_str(),
            "PreconditionFailed" | "ConditionalRequestConflict"
        )
}

impl S3TierStore {
    /// HEAD a key of the hot tier: `None` when it is not there.
    pub async fn hot_object(&self, key: &str) -> Result<Option<ExistingObject>, StorageError> {
        let loc = self.loc(Tier::Hot);
        let head = self
            .head(&loc.bucket, &loc.object_key(key), None, &Calls::default())
            .await?;
        Ok(head.map(|h| ExistingObject {
            size: h.size,
            sha256: h.sha_meta.or(h.s3_sha256),
            version_id: h.version_id,
        }))
    }

    /// Abort every incomplete multipart upload of exactly this hot-tier key (left by an
    /// interrupted run); returns how many.
    pub async fn abort_stale_uploads(&self, key: &str) -> Result<u32, StorageError> {
        let calls = Calls::default();
        self.prove(&calls).await?;
        let loc = self.loc(Tier::Hot);
        let (bucket, full) = (loc.bucket.clone(), loc.object_key(key));
        let mut aborted = 0;
        for (k, id) in self.incomplete_uploads_at(&full, &calls).await? {
            if k != full {
                continue;
            }
            self.send("abort_multipart_upload", &bucket, &calls, || {
                self.client()
                    .abort_multipart_upload()
                    .bucket(&bucket)
                    .key(&full)
                    .upload_id(&id)
                    .send()
            })
            .await
            .map_err(|f| f.into_error("abort_multipart_upload", &bucket, Some(&full)))?;
            aborted += 1;
        }
        Ok(aborted)
    }

    /// The incomplete multipart uploads (object key, upload id) under a prefix of the
    /// hot tier's bucket (the prefix is a full object key prefix).
    pub async fn incomplete_uploads(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, StorageError> {
        let full = self.loc(Tier::Hot).object_key(prefix);
        self.incomplete_uploads_at(&full, &Calls::default()).await
    }

    async fn incomplete_uploads_at(
        &self,
        prefix: &str,
        calls: &Calls,
    ) -> Result<Vec<(String, String)>, StorageError> {
        let bucket = self.loc(Tier::Hot).bucket.clone();
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .send("list_multipart_uploads", &bucket, calls, || {
                    self.client()
                        .list_multipart_uploads()
                        .bucket(&bucket)
                        .prefix(prefix)
                        .set_key_marker(key_marker.clone())
                        .set_upload_id_marker(id_marker.clone())
                        .send()
                })
                .await
                .map_err(|f| f.into_error("list_multipart_uploads", &bucket, None))?;
            for u in page.uploads() {
                if let (Some(k), Some(id)) = (u.key(), u.upload_id()) {
                    out.push((k.to_string(), id.to_string()));
                }
            }
            if page.is_truncated() != Some(true) {
                return Ok(out);
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() && id_marker.is_none() {
                return Ok(out);
            }
        }
    }

    /// Create a clip in the hot tier, never over an existing key, verified against
    /// `clip.sha256`. Proves the region first (cached).
    pub async fn create_clip(
        &self,
        clip: &NewClip,
        hook: Option<&PartHook>,
    ) -> Result<Created, StorageError> {
        let calls = Calls::default();
        self.prove(&calls).await?;
        let created = match &clip.body {
            ClipBody::Memory(bytes) => self.put_single(clip, bytes.clone(), &calls).await?,
            ClipBody::File {
                path,
                part_size,
                parallel_parts,
            } => {
                let parts = Parts::open(path)?;
                self.put_multipart(clip, parts, *part_size, *parallel_parts, hook, &calls)
                    .await?
            }
            ClipBody::Stream {
                body,
                part_size,
                parallel_parts,
            } => {
                let body = body.0.lock().await.take().ok_or_else(|| {
                    StorageError::InvalidInput(format!("{}: the source was read already", clip.key))
                })?;
                if clip.size <= *part_size {
                    let chunks: Vec<Bytes> = body.try_collect().await?;
                    self.put_single(clip, chunks.concat().into(), &calls)
                        .await?
                } else {
                    let parts = Parts::Stream {
                        body,
                        pending: bytes::BytesMut::new(),
                    };
                    self.put_multipart(clip, parts, *part_size, *parallel_parts, hook, &calls)
                        .await?
                }
            }
        };
        Ok(match created {
            Created::Written {
                version_id,
                etag,
                parts,
                confirmed,
                ..
            } => Created::Written {
                version_id,
                etag,
                parts,
                confirmed,
                requests: calls.get(),
            },
            Created::Exists(_) => Created::Exists(self.hot_object(&clip.key).await?),
        })
    }

    async fn put_single(
        &self,
        clip: &NewClip,
        bytes: Bytes,
        calls: &Calls,
    ) -> Result<Created, StorageError> {
        let loc = self.loc(Tier::Hot);
        let (bucket, key) = (loc.bucket.clone(), loc.object_key(&clip.key));
        let checksum = b64(&clip.sha256)?;
        let tagging = tagging_query(clip.tags.iter().map(|t| (&t.key, &t.value)));
        let res = self
            .send("put_object", &bucket, calls, || {
                self.client()
                    .put_object()
                    .bucket(&bucket)
                    .key(&key)
                    .if_none_match("*")
                    .checksum_sha256(&checksum)
                    .content_type(&clip.content_type)
                    .set_storage_class(loc.storage_class.as_deref().map(Into::into))
                    .set_metadata(Some(clip.metadata.clone()))
                    .tagging(&tagging)
                    .body(ByteStream::from(bytes.clone()))
                    // The body is covered by `x-amz-checksum-sha256`, which is signed and
                    // which the store verifies: signing the payload too would hash every
                    // byte twice more (here and at the store) for nothing.
                    .customize()
                    .disable_payload_signing()
                    .send()
            })
            .await;
        let out = match res {
            Ok(o) => o,
            Err(f) if exists(&f) => return Ok(Created::Exists(None)),
            Err(f) => return Err(f.into_error("put_object", &bucket, Some(&key))),
        };
        let answered = full_object_sha256(out.checksum_sha256(), out.checksum_type());
        let version_id = out.version_id().map(str::to_string);
        let etag = out.e_tag().map(unquote);
        if let Some(sha) = answered {
            if sha != clip.sha256 {
                self.metrics.mismatch();
                return Err(StorageError::ChecksumMismatch {
                    bucket,
                    key,
                    expected: clip.sha256.clone(),
                    found: sha,
                });
            }
            self.metrics.verification("s3_checksum");
            return Ok(Created::Written {
                version_id,
                etag,
                parts: 0,
                confirmed: Confirmed::Answer,
                requests: 0,
            });
        }
        self.confirm(clip, &bucket, &key, (version_id, etag), 0, calls)
            .await
    }

    /// HEAD the written object: its size and recorded SHA-256 must be the clip's.
    /// `written`: the version id and ETag the write answered.
    async fn confirm(
        &self,
        clip: &NewClip,
        bucket: &str,
        key: &str,
        (version_id, etag): (Option<String>, Option<String>),
        parts: u32,
        calls: &Calls,
    ) -> Result<Created, StorageError> {
        let head = self
            .head(bucket, key, version_id.as_deref(), calls)
            .await?
            .ok_or_else(|| StorageError::NotFound {
                bucket: bucket.to_string(),
                key: key.to_string(),
            })?;
        let recorded = head.sha_meta.clone().or(head.s3_sha256.clone());
        if head.size != clip.size || recorded.as_deref() != Some(clip.sha256.as_str()) {
            self.metrics.mismatch();
            return Err(StorageError::ChecksumMismatch {
                bucket: bucket.to_string(),
                key: key.to_string(),
                expected: format!("{} ({} bytes)", clip.sha256, clip.size),
                found: format!(
                    "{} ({} bytes)",
                    recorded.unwrap_or_else(|| "none recorded".into()),
                    head.size
                ),
            });
        }
        self.metrics.verification("head");
        Ok(Created::Written {
            version_id: version_id.or(head.version_id),
            etag,
            parts,
            confirmed: Confirmed::Head,
            requests: 0,
        })
    }

    async fn put_multipart(
        &self,
        clip: &NewClip,
        source: Parts,
        part_size: u64,
        parallel: usize,
        hook: Option<&PartHook>,
        calls: &Calls,
    ) -> Result<Created, StorageError> {
        let loc = self.loc(Tier::Hot);
        let (bucket, key) = (loc.bucket.clone(), loc.object_key(&clip.key));
        let part_size = part_size
            .max(5 * 1024 * 1024)
            .max(clip.size.div_ceil(10_000));
        let tagging = tagging_query(clip.tags.iter().map(|t| (&t.key, &t.value)));
        let created = self
            .send("create_multipart_upload", &bucket, calls, || {
                self.client()
                    .create_multipart_upload()
                    .bucket(&bucket)
                    .key(&key)
                    .checksum_algorithm(ChecksumAlgorithm::Sha256)
                    .content_type(&clip.content_type)
                    .set_storage_class(loc.storage_class.as_deref().map(Into::into))
                    .set_metadata(Some(clip.metadata.clone()))
                    .tagging(&tagging)
                    .send()
            })
            .await
            .map_err(|f| f.into_error("create_multipart_upload", &bucket, Some(&key)))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StorageError::Service {
                op: "create_multipart_upload",
                bucket: bucket.clone(),
                code: "NoUploadId".into(),
                message: "the answer carried no upload id".into(),
            })?
            .to_string();
        let result = self
            .send_parts(clip, source, part_size, parallel, hook, &upload_id, calls)
            .await;
        let parts = match result {
            Ok(parts) => parts,
            // Interrupted: left as an interrupted process leaves it (the next run aborts it).
            Err(e @ StorageError::Interrupted { .. }) => return Err(e),
            Err(e) => {
                self.abort(&bucket, &key, &upload_id, calls).await;
                return Err(e);
            }
        };
        let n = parts.len() as u32;
        let done = self
            .send("complete_multipart_upload", &bucket, calls, || {
                self.client()
                    .complete_multipart_upload()
                    .bucket(&bucket)
                    .key(&key)
                    .upload_id(&upload_id)
                    .if_none_match("*")
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts.clone()))
                            .build(),
                    )
                    .send()
            })
            .await;
        match done {
            Ok(out) => {
                let written = (
                    out.version_id().map(str::to_string),
                    out.e_tag().map(unquote),
                );
                self.confirm(clip, &bucket, &key, written, n, calls).await
            }
            Err(f) if exists(&f) => {
                self.abort(&bucket, &key, &upload_id, calls).await;
                Ok(Created::Exists(None))
            }
            Err(f) => {
                self.abort(&bucket, &key, &upload_id, calls).await;
                Err(f.into_error("complete_multipart_upload", &bucket, Some(&key)))
            }
        }
    }

    async fn abort(&self, bucket: &str, key: &str, upload_id: &str, calls: &Calls) {
        let res = self
            .send("abort_multipart_upload", bucket, calls, || {
                self.client()
                    .abort_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .send()
            })
            .await;
        if let Err(f) = res {
            tracing::warn!(bucket, key, code = %f.code, "aborting a failed multipart upload failed; the next ingest of this key aborts it");
        }
    }

    /// Read the source in order, part by part (the full-object hash follows the reads),
    /// with at most `parallel` parts in flight; the full hash must be the clip's.
    #[allow(clippy::too_many_arguments)]
    async fn send_parts(
        &self,
        clip: &NewClip,
        mut source: Parts,
        part_size: u64,
        parallel: usize,
        hook: Option<&PartHook>,
        upload_id: &str,
        calls: &Calls,
    ) -> Result<Vec<CompletedPart>, StorageError> {
        let loc = self.loc(Tier::Hot);
        let (bucket, key) = (loc.bucket.clone(), loc.object_key(&clip.key));
        let mut full = Sha256::new();
        let mut inflight = FuturesUnordered::new();
        let mut parts = Vec::new();
        let mut offset = 0u64;
        let mut number = 0i32;
        while offset < clip.size {
            while inflight.len() >= parallel.max(1) {
                if let Some(done) = inflight.next().await {
                    parts.push(done?);
                }
            }
            let len = part_size.min(clip.size - offset);
            number += 1;
            let data = source.read(len as usize).await?;
            // Hash off the async threads; the full-object hasher goes along.
            let (h, data, part_sha) = tokio::task::spawn_blocking(move || {
                let mut h = full;
                h.update(&data);
                let part_sha = Sha256::digest(&data);
                (h, data, part_sha)
            })
            .await
            .map_err(|e| StorageError::InvalidInput(format!("hashing a part: {e}")))?;
            full = h;
            offset += len;
            self.metrics.hashed(len);
            let checksum = base64::engine::general_purpose::STANDARD.encode(part_sha);
            let body = Bytes::from(data);
            let (bucket, key) = (bucket.clone(), key.clone());
            inflight.push(async move {
                let out = self
                    .send("upload_part", &bucket, calls, || {
                        self.client()
                            .upload_part()
                            .bucket(&bucket)
                            .key(&key)
                            .upload_id(upload_id)
                            .part_number(number)
                            .checksum_sha256(&checksum)
                            .body(ByteStream::from(body.clone()))
                            // As for a single PUT: the part's signed checksum covers it.
                            .customize()
                            .disable_payload_signing()
                            .send()
                    })
                    .await
                    .map_err(|f| f.into_error("upload_part", &bucket, Some(&key)))?;
                if let Some(answered) = out.checksum_sha256()
                    && answered != checksum
                {
                    return Err(StorageError::ChecksumMismatch {
                        bucket: bucket.clone(),
                        key: format!("{key} part {number}"),
                        expected: checksum.clone(),
                        found: answered.to_string(),
                    });
                }
                if let Some(hook) = hook
                    && !hook(key.clone(), number).await
                {
                    return Err(StorageError::Interrupted {
                        key: key.clone(),
                        step: crate::storage::MoveStep::Copied,
                    });
                }
                Ok(CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .checksum_sha256(checksum)
                    .build())
            });
        }
        while let Some(done) = inflight.next().await {
            parts.push(done?);
        }
        let sha = hex::encode(full.finalize());
        if sha != clip.sha256 {
            self.metrics.mismatch();
            return Err(StorageError::ChecksumMismatch {
                bucket,
                key,
                expected: clip.sha256.clone(),
                found: format!("{sha} (the file changed while it was read)"),
            });
        }
        parts.sort_by_key(|p| p.part_number());
        Ok(parts)
    }
}

impl S3TierStore {
    /// The region proof alone (cached): what every write of the store checks first,
    /// for a writer of new clips that reads nothing else of the layout.
    pub async fn prove_region(&self) -> Result<crate::storage::RegionProof, StorageError> {
        self.prove(&Calls::default()).await
    }
}

impl S3TierStore {
    /// The clip keys of the hot tier under a key prefix (relative to the tier's prefix):
    /// one `ListObjectsV2` per 1,000 keys, so that a new clip needs no HEAD of its own.
    pub async fn hot_keys(
        &self,
        prefix: &str,
    ) -> Result<std::collections::HashSet<String>, StorageError> {
        let loc = self.loc(Tier::Hot);
        let (bucket, full) = (loc.bucket.clone(), loc.object_key(prefix));
        let calls = Calls::default();
        let mut keys = std::collections::HashSet::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .send("list_objects_v2", &bucket, &calls, || {
                    self.client()
                        .list_objects_v2()
                        .bucket(&bucket)
                        .prefix(&full)
                        .set_continuation_token(token.clone())
                        .send()
                })
                .await
                .map_err(|f| f.into_error("list_objects_v2", &bucket, None))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter_map(|k| k.strip_prefix(loc.prefix.as_str()))
                    .map(str::to_string),
            );
            token = page.next_continuation_token().map(str::to_string);
            if page.is_truncated() != Some(true) || token.is_none() {
                return Ok(keys);
            }
        }
    }
}
