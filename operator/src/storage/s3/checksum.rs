//! Checksums: what a HEAD tells about one object version ([`Head`]: size, class, the
//! recorded and the S3 SHA-256, hold, content headers), the SHA-256 a move is verified
//! against (`source_sha256`, [`S3TierStore::read_sha256`]), streaming an object to hash
//! it (`hash_object`), and the check of a written copy (`verify`).
//!
//! ## Where the SHA-256 is recorded
//! A clip's full-object SHA-256 lives in its `evidence-sha256` user metadata. When a
//! source has none (first move after upload), it is computed by streaming the source
//! version once (or taken from an S3 full-object `x-amz-checksum-sha256`, if the
//! uploader sent one), and recorded **on the destination of that first move** (the copy
//! is written with `MetadataDirective=REPLACE` and the checksum added); the source is not
//! rewritten in place. Rewriting the source would cost a full extra copy of every clip
//! on upload, create a second version on a versioned bucket (the very data we must not
//! leave lingering), and be impossible on a held version. Every later move then verifies
//! end to end against the recorded value.

use std::collections::HashMap;

use aws_sdk_s3::types::{ChecksumMode, ChecksumType, ObjectLockLegalHoldStatus};
use base64::Engine;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{S3TierStore, client::Calls};
use crate::{
    api::clip::{Clip, META_SHA256, META_UPLOADED_AT, parse_uploaded_at},
    storage::{StorageError, Verification, retry::FailureKind},
};

/// What a HEAD told us about one object version.
#[derive(Debug, Clone)]
pub(super) struct Head {
    pub(super) version_id: Option<String>,
    pub(super) size: u64,
    pub(super) class: String,
    /// The `evidence-sha256` user metadata, when it is a well-formed hex SHA-256.
    pub(super) sha_meta: Option<String>,
    /// S3's own full-object SHA-256 (hex), when the store has one.
    pub(super) s3_sha256: Option<String>,
    pub(super) metadata: HashMap<String, String>,
    pub(super) content_type: Option<String>,
    pub(super) content_encoding: Option<String>,
    pub(super) content_disposition: Option<String>,
    pub(super) content_language: Option<String>,
    pub(super) cache_control: Option<String>,
    pub(super) legal_hold: bool,
    /// `LastModified` (a HEAD gives it to the second, a listing to the millisecond).
    pub(super) last_modified: Option<DateTime<Utc>>,
    /// The upload time a move recorded (`evidence-uploaded-at` metadata), when readable.
    pub(super) uploaded_at: Option<DateTime<Utc>>,
    /// Built from the listing, not from a HEAD: the content headers and user metadata
    /// are unknown, so a copy keeps them with `MetadataDirective=COPY`.
    pub(super) from_listing: bool,
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// A full-object SHA-256 from S3's checksum header, as hex; `None` for composite
/// (multipart) checksums, which are checksums of part checksums.
pub(super) fn full_object_sha256(
    value: Option<&str>,
    kind: Option<&ChecksumType>,
) -> Option<String> {
    let v = value?;
    if matches!(kind, Some(ChecksumType::Composite)) || v.contains('-') {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(v).ok()?;
    (bytes.len() == 32).then(|| hex::encode(bytes))
}

impl S3TierStore {
    /// HEAD one object version (with its S3 checksum); `None` when it is not there.
    pub(super) async fn head(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        calls: &Calls,
    ) -> Result<Option<Head>, StorageError> {
        let res = self
            .send("head_object", bucket, calls, || {
                self.client()
                    .head_object()
                    .bucket(bucket)
                    .key(key)
                    .set_version_id(version.map(str::to_string))
                    .checksum_mode(ChecksumMode::Enabled)
                    .send()
            })
            .await;
        let out = match res {
            Ok(o) => o,
            Err(f) if f.kind == FailureKind::NotFound => return Ok(None),
            Err(f) => return Err(f.into_error("head_object", bucket, Some(key))),
        };
        let metadata = out.metadata().cloned().unwrap_or_default();
        let sha_meta = metadata
            .get(META_SHA256)
            .map(|s| s.to_ascii_lowercase())
            .filter(|s| is_sha256_hex(s));
        let uploaded_at = metadata
            .get(META_UPLOADED_AT)
            .and_then(|v| parse_uploaded_at(v));
        Ok(Some(Head {
            version_id: out.version_id().map(str::to_string),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            class: out
                .storage_class()
                .map_or_else(|| "STANDARD".to_string(), |c| c.as_str().to_string()),
            sha_meta,
            s3_sha256: full_object_sha256(out.checksum_sha256(), out.checksum_type()),
            content_type: out.content_type().map(str::to_string),
            content_encoding: out.content_encoding().map(str::to_string),
            content_disposition: out.content_disposition().map(str::to_string),
            content_language: out.content_language().map(str::to_string),
            cache_control: out.cache_control().map(str::to_string),
            legal_hold: out.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On),
            last_modified: out
                .last_modified()
                .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
            uploaded_at,
            metadata,
            from_listing: false,
        }))
    }

    /// Stream one object version and return its SHA-256 (hex) and length.
    async fn hash_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        calls: &Calls,
    ) -> Result<(String, u64), StorageError> {
        let out = self
            .requester
            .get_object(bucket, key, version, Some(calls))
            .await
            .map_err(|f| f.into_error("get_object", bucket, Some(key)))?;
        let mut body = out.body;
        let mut hasher = Sha256::new();
        let mut n: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| StorageError::Read {
                bucket: bucket.to_string(),
                key: key.to_string(),
                message: e.to_string(),
            })?;
            n += chunk.len() as u64;
            hasher.update(&chunk);
        }
        self.metrics.hashed(n);
        Ok((hex::encode(hasher.finalize()), n))
    }

    /// The bytes of a clip's version, as they are read.
    pub async fn open_clip(&self, clip: &Clip) -> Result<crate::storage::ByteChunks, StorageError> {
        let loc = self.loc(clip.tier);
        let (bucket, key) = (loc.bucket.clone(), loc.object_key(&clip.key));
        let out = self
            .requester
            .get_object(&bucket, &key, clip.version_id.as_deref(), None)
            .await
            .map_err(|f| f.into_error("get_object", &bucket, Some(&key)))?;
        Ok(Box::pin(futures::stream::unfold(
            (out.body, bucket, key),
            |(mut body, bucket, key)| async move {
                let next = body.next().await?;
                let chunk = next.map_err(|e| StorageError::Read {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    message: e.to_string(),
                });
                Some((chunk, (body, bucket, key)))
            },
        )))
    }

    /// Read the full-object SHA-256 of a clip: the recorded one if there is one, else
    /// S3's full-object checksum, else computed by streaming the object.
    pub async fn read_sha256(&self, clip: &Clip) -> Result<String, StorageError> {
        let calls = Calls::default();
        let loc = self.loc(clip.tier);
        let key = loc.object_key(&clip.key);
        let head = self
            .head(&loc.bucket, &key, clip.version_id.as_deref(), &calls)
            .await?
            .ok_or_else(|| StorageError::NotFound {
                bucket: loc.bucket.clone(),
                key: key.clone(),
            })?;
        self.source_sha256(&loc.bucket, &key, &head, &calls).await
    }

    /// The SHA-256 of a source version: recorded, else S3's full-object checksum, else
    /// streamed and hashed (which must read exactly `head.size` bytes).
    pub(super) async fn source_sha256(
        &self,
        bucket: &str,
        key: &str,
        head: &Head,
        calls: &Calls,
    ) -> Result<String, StorageError> {
        if let Some(s) = &head.sha_meta {
            return Ok(s.clone());
        }
        if let Some(s) = &head.s3_sha256 {
            return Ok(s.clone());
        }
        let (sha, n) = self
            .hash_object(bucket, key, head.version_id.as_deref(), calls)
            .await?;
        if n != head.size {
            return Err(StorageError::Read {
                bucket: bucket.to_string(),
                key: key.to_string(),
                message: format!("read {n} bytes of a {}-byte object", head.size),
            });
        }
        Ok(sha)
    }

    /// Check that `head` (or the current object) is a complete copy with SHA-256
    /// `expected`: size, recorded checksum, and actual content.
    pub(super) async fn verify(
        &self,
        bucket: &str,
        key: &str,
        head: &Head,
        expected: &str,
        size: u64,
        calls: &Calls,
    ) -> Result<Verification, StorageError> {
        let mismatch = |found: String| {
            self.metrics.mismatch();
            tracing::error!(
                bucket,
                key,
                expected,
                found,
                "checksum mismatch; source kept"
            );
            StorageError::ChecksumMismatch {
                bucket: bucket.to_string(),
                key: key.to_string(),
                expected: expected.to_string(),
                found,
            }
        };
        if head.size != size {
            return Err(mismatch(format!(
                "a {}-byte object (expected {size} bytes)",
                head.size
            )));
        }
        if head.sha_meta.as_deref() != Some(expected) {
            return Err(mismatch(format!(
                "recorded {}",
                head.sha_meta.as_deref().unwrap_or("none")
            )));
        }
        let (found, how) = match &head.s3_sha256 {
            Some(s) => (s.clone(), Verification::S3Checksum),
            None => {
                let (s, _) = self
                    .hash_object(bucket, key, head.version_id.as_deref(), calls)
                    .await?;
                (s, Verification::Reread)
            }
        };
        self.metrics.verification(how.as_str());
        if found != expected {
            return Err(mismatch(found));
        }
        Ok(how)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_full_object_checksums_verify() {
        let sha = Sha256::digest(b"clip");
        let b64 = base64::engine::general_purpose::STANDARD.encode(sha);
        assert_eq!(
            full_object_sha256(Some(&b64), Some(&ChecksumType::FullObject)),
            Some(hex::encode(sha))
        );
        assert_eq!(full_object_sha256(Some(&b64), None), Some(hex::encode(sha)));
        assert_eq!(
            full_object_sha256(Some(&b64), Some(&ChecksumType::Composite)),
            None
        );
        assert_eq!(full_object_sha256(Some(&format!("{b64}-3")), None), None);
        assert_eq!(full_object_sha256(Some("bm90LWEtc2hh"), None), None);
        assert_eq!(full_object_sha256(None, None), None);
    }

    #[test]
    fn sha_hex_is_validated() {
        assert!(is_sha256_hex(&"a".repeat(64)));
        assert!(!is_sha256_hex(&"g".repeat(64)));
        assert!(!is_sha256_hex("abc"));
    }
}
