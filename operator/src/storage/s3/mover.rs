//! Moving one clip between tiers (`TierStore::move_clip`, `move_counted`; many at once
//! are in `batch`). `move_inner` is the move itself, one call per step below, in order.
//!
//! ## Move: the steps and why re-running converges
//! 1. `prove_for_move`: region proof (+ Object Lock check when the destination is the
//!    legal-hold tier);
//! 2. `source_version`: the source version: as listed, when the listing carried its
//!    recorded checksum and hold (MinIO's listing extension, see `extended`) and one
//!    `CopyObject` will do; otherwise a HEAD. A source under legal hold is refused;
//! 3. `expected_sha256`: the expected SHA-256 (recorded metadata, S3 full-object
//!    checksum, or a streamed hash);
//! 4. `find_verified_copy`: where a second copy would cost more than a HEAD (multipart,
//!    or a versioned destination, where it would leave the first behind as a noncurrent
//!    version), HEAD the destination: if it already holds a copy whose recorded and
//!    actual SHA-256 equal the expected one (an interrupted earlier run), skip the copy.
//!    An unversioned destination is simply overwritten;
//! 5. `copy_clip`: otherwise copy (`CopyObject`, or `UploadPartCopy` above the multipart
//!    threshold), with the target storage class, the source's tags and metadata plus
//!    the checksum and the upload time (`evidence-uploaded-at`: out of the hot tier the
//!    source's `LastModified`, the upload itself; from any other tier the source's
//!    record carried forward, or its `LastModified` when it has none), so that no move
//!    restarts the upload clock;
//! 6. `verify_copy`: verify: the full-object SHA-256 the store computed while writing
//!    the copy, from its answer to `CopyObject` (AWS: XML body, MinIO: response header);
//!    where it gave none, HEAD the written version (size, recorded checksum, S3
//!    checksum) and, for multipart copies, read it back and hash it. A mismatch stops
//!    here: the source is never deleted;
//! 7. `hold_copy`: into the legal-hold tier: legal hold ON for the written version;
//! 8. `delete_source`: read the source's tags again (`recheck`): if it was re-tagged
//!    since it was listed, the copy gets the new tags first; then delete the source
//!    **version** that was copied (so no data lingers as a noncurrent version). For a same-key storage-class change on an
//!    unversioned bucket the copy replaced the object and there is nothing to delete.
//!
//! A run stopped after any step leaves the source in place until step 8, and the
//! re-run finds the verified destination at step 4 (or copies again over it). Steady
//! state, a move of a clip whose checksum and upload time are recorded costs two
//! requests (copy, delete) on MinIO, plus a legal hold into the legal-hold tier; the
//! first move of a clip out of the hot tier one more (the HEAD that reads its checksum,
//! content headers and metadata, which a copy that records the upload time rewrites),
//! also when the uploader recorded the checksum.

use std::collections::HashMap;

use aws_sdk_s3::types::{ObjectLockLegalHold, ObjectLockLegalHoldStatus};
use chrono::{DateTime, TimeDelta, Utc};

use super::{S3TierStore, batch::PendingDelete, checksum::Head, client::Calls, copy::CopyJob};
use crate::{
    api::clip::{Clip, Tier, recorded_upload},
    storage::{MoveOutcome, MoveStep, StepContext, StorageError, TierLocation, Verification},
};

/// What one move is about: the clip, where it goes, and the object keys on both sides.
struct MoveJob<'a> {
    clip: &'a Clip,
    to: Tier,
    src: &'a TierLocation,
    dst: &'a TierLocation,
    /// Source and destination tiers share bucket and prefix: a storage-class change.
    same_object: bool,
    src_key: String,
    dst_key: String,
    target_class: String,
    calls: &'a Calls,
}

impl<'a> MoveJob<'a> {
    /// The move of `clip` to `to`; moving within a tier is refused.
    fn new(
        store: &'a S3TierStore,
        clip: &'a Clip,
        to: Tier,
        calls: &'a Calls,
    ) -> Result<Self, StorageError> {
        if clip.tier == to {
            return Err(StorageError::InvalidInput(format!(
                "clip {} is already in tier {to}",
                clip.key
            )));
        }
        let src = store.loc(clip.tier);
        let dst = store.loc(to);
        Ok(MoveJob {
            clip,
            to,
            src,
            dst,
            same_object: src.same_objects(dst),
            src_key: src.object_key(&clip.key),
            dst_key: dst.object_key(&clip.key),
            target_class: dst.class().to_string(),
            calls,
        })
    }

    /// The outcome of this move before it has done anything.
    fn outcome(&self) -> MoveOutcome {
        MoveOutcome {
            key: self.clip.key.clone(),
            from: self.clip.tier,
            to: self.to,
            dst_version_id: None,
            sha256: String::new(),
            copied: false,
            multipart: false,
            bytes_copied: 0,
            verification: Verification::AlreadyComplete,
            source_deleted: false,
            requests: 0,
        }
    }

    /// The upload time the copy records: [`recorded_upload`] of the source version.
    /// The listing gives `LastModified` to the millisecond, a HEAD only to the second: a
    /// HEAD later than the listing means the object was replaced since it was listed,
    /// and counts from the end of its second (never earlier than that upload).
    fn upload_record(&self, src: &Head) -> DateTime<Utc> {
        let listed = self.clip.last_modified;
        let last_modified = match src.last_modified {
            Some(head) if head > listed => head + TimeDelta::milliseconds(999),
            _ => listed,
        };
        recorded_upload(self.clip.tier, last_modified, src.uploaded_at)
    }

    /// The outcome of this move found already complete.
    fn done(&self, dst_version_id: Option<String>, sha256: String) -> MoveOutcome {
        MoveOutcome {
            dst_version_id,
            sha256,
            ..self.outcome()
        }
    }
}

/// What step 2 found.
enum Source {
    /// The source version to copy.
    Found(Box<Head>),
    /// Nothing to do: an earlier run (or an in-place class change) completed the move.
    Done(MoveOutcome),
}

impl S3TierStore {
    /// Call the fault hook (tests) after `step` of a move; `false` from it interrupts.
    pub(super) async fn step(
        &self,
        step: MoveStep,
        clip_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        dst_version: Option<&str>,
    ) -> Result<(), StorageError> {
        if let Some(hook) = &self.opts.fault_hook {
            let go_on = hook(StepContext {
                step,
                clip_key: clip_key.to_string(),
                dst_bucket: dst_bucket.to_string(),
                dst_key: dst_key.to_string(),
                dst_version_id: dst_version.map(str::to_string),
            })
            .await;
            if !go_on {
                return Err(StorageError::Interrupted {
                    key: clip_key.to_string(),
                    step,
                });
            }
        }
        Ok(())
    }

    /// [`Self::step`] for move `m`, whose destination version is `version`.
    async fn reached(
        &self,
        m: &MoveJob<'_>,
        step: MoveStep,
        version: Option<&str>,
    ) -> Result<(), StorageError> {
        self.step(step, &m.clip.key, &m.dst.bucket, &m.dst_key, version)
            .await
    }

    /// Whether an object of `size` bytes is copied in parts.
    fn is_multipart(&self, size: u64) -> bool {
        size > self.opts.multipart_threshold
    }

    /// Set or clear the legal hold on one object version.
    pub(super) async fn put_hold(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        on: bool,
        calls: &Calls,
    ) -> Result<(), StorageError> {
        let status = if on {
            ObjectLockLegalHoldStatus::On
        } else {
            ObjectLockLegalHoldStatus::Off
        };
        self.send("put_object_legal_hold", bucket, calls, || {
            self.client()
                .put_object_legal_hold()
                .bucket(bucket)
                .key(key)
                .set_version_id(version.map(str::to_string))
                .legal_hold(
                    ObjectLockLegalHold::builder()
                        .status(status.clone())
                        .build(),
                )
                .send()
        })
        .await
        .map_err(|f| f.into_error("put_object_legal_hold", bucket, Some(key)))?;
        Ok(())
    }

    /// The source of a move as the listing described it, when that is enough to copy
    /// and verify without a HEAD: the listing carried the clip's recorded SHA-256 (and
    /// hold status) and its recorded upload time, the copy is a single request onto
    /// another object. A copy from the listing keeps the source's metadata as it is
    /// (`MetadataDirective=COPY`), so it is no good out of the hot tier, where the copy
    /// must record the upload time (and any upload-time metadata the uploader wrote must
    /// not travel), nor for a source with no recorded upload time (moved by an earlier
    /// version of the operator): those take a HEAD and rewrite the metadata.
    ///
    /// A hot-tier clip whose listing showed all its headers, plain (only a content type
    /// besides what the operator records: a clip as the dock ingest writes it), needs no
    /// HEAD either: its copy rewrites the metadata (`REPLACE`) with the listed SHA-256,
    /// the upload time its `LastModified` (never an uploader's claim) and the listed
    /// content type. The listed SHA-256 is only what the copy is checked against: the
    /// store computes the copy's own from the bytes, so a wrong or stale one fails the
    /// move, and the source stays.
    fn listed_source(&self, clip: &Clip, same_object: bool) -> Option<Head> {
        let sha = clip.sha256.as_ref()?;
        if same_object || self.is_multipart(clip.size) {
            return None;
        }
        let listed = Head {
            version_id: clip.version_id.clone(),
            size: clip.size,
            class: clip
                .storage_class
                .clone()
                .unwrap_or_else(|| "STANDARD".into()),
            sha_meta: Some(sha.clone()),
            s3_sha256: None,
            metadata: HashMap::new(),
            content_type: None,
            content_encoding: None,
            content_disposition: None,
            content_language: None,
            cache_control: None,
            legal_hold: clip.legal_hold,
            last_modified: Some(clip.last_modified),
            uploaded_at: clip.uploaded_at,
            from_listing: true,
        };
        if clip.tier == Tier::Hot {
            let plain = clip.plain_headers.as_ref()?;
            return Some(Head {
                content_type: plain.content_type.clone(),
                // an uploader's claim is never the upload time
                uploaded_at: None,
                // the metadata is rewritten, not kept
                from_listing: false,
                ..listed
            });
        }
        // (a source with no recorded upload time takes a HEAD and gets one)
        clip.uploaded_at?;
        Some(listed)
    }

    /// One move, the steps of the module doc in order. With `defer`, step 8 hands the
    /// source version to the caller instead of deleting it.
    async fn move_inner(
        &self,
        clip: &Clip,
        to: Tier,
        use_listing: bool,
        defer: Option<&mut Option<PendingDelete>>,
        calls: &Calls,
    ) -> Result<MoveOutcome, StorageError> {
        let m = MoveJob::new(self, clip, to, calls)?;
        self.prove_for_move(&m).await?;
        let src = match self.source_version(&m, use_listing).await? {
            Source::Found(head) => *head,
            Source::Done(outcome) => return Ok(outcome),
        };
        let mut outcome = m.outcome();
        let expected = self.expected_sha256(&m, &src).await?;
        outcome.sha256 = expected.clone();
        let (dst_version, how) = match self.find_verified_copy(&m, &src, &expected).await? {
            Some(found) => found,
            None => {
                let written = self.copy_clip(&m, &src, &expected, &mut outcome).await?;
                self.verify_copy(&m, &src, &expected, written).await?
            }
        };
        outcome.dst_version_id = dst_version.clone();
        outcome.verification = how;
        self.hold_copy(&m, dst_version.as_deref()).await?;
        self.delete_source(&m, &src, dst_version.as_deref(), defer, &mut outcome)
            .await?;
        Ok(outcome)
    }

    /// Step 1. No write before the region proof (and the Object Lock check).
    async fn prove_for_move(&self, m: &MoveJob<'_>) -> Result<(), StorageError> {
        self.prove(m.calls).await?;
        if m.same_object {
            self.ensure_safe_layout(m.calls).await?;
        }
        if m.to == Tier::LegalHold {
            self.ensure_object_lock(m.calls).await?;
        }
        Ok(())
    }

    /// Step 2. The source version, as listed or from a HEAD; refused when held, `Done`
    /// when the move is found complete.
    async fn source_version(
        &self,
        m: &MoveJob<'_>,
        use_listing: bool,
    ) -> Result<Source, StorageError> {
        let listed = if use_listing {
            self.listed_source(m.clip, m.same_object)
        } else {
            None
        };
        let head = match listed {
            Some(h) => Some(h),
            None => {
                self.head(
                    &m.src.bucket,
                    &m.src_key,
                    m.clip.version_id.as_deref(),
                    m.calls,
                )
                .await?
            }
        };
        let Some(src) = head else {
            // Gone: an earlier run may have completed. Only a destination carrying the
            // clip's recorded checksum counts as done.
            let dst_head = self.head(&m.dst.bucket, &m.dst_key, None, m.calls).await?;
            return match dst_head {
                Some(d)
                    if d.sha_meta.is_some()
                        && d.class == m.target_class
                        && (m.clip.sha256.is_none() || d.sha_meta == m.clip.sha256) =>
                {
                    Ok(Source::Done(
                        m.done(d.version_id, d.sha_meta.unwrap_or_default()),
                    ))
                }
                _ => Err(StorageError::NotFound {
                    bucket: m.src.bucket.clone(),
                    key: m.src_key.clone(),
                }),
            };
        };
        if src.legal_hold {
            return Err(StorageError::Held {
                bucket: m.src.bucket.clone(),
                key: m.src_key.clone(),
                version: src.version_id.unwrap_or_else(|| "null".into()),
            });
        }
        if m.same_object && src.class == m.target_class {
            // A storage-class change that is already done.
            let sha = src.sha_meta.clone().unwrap_or_default();
            return Ok(Source::Done(m.done(src.version_id, sha)));
        }
        Ok(Source::Found(Box::new(src)))
    }

    /// Step 3. The checksum every copy is verified against (it must agree with the
    /// listed one).
    async fn expected_sha256(&self, m: &MoveJob<'_>, src: &Head) -> Result<String, StorageError> {
        let expected = self
            .source_sha256(&m.src.bucket, &m.src_key, src, m.calls)
            .await?;
        if let Some(listed) = &m.clip.sha256
            && !listed.eq_ignore_ascii_case(&expected)
        {
            self.metrics.mismatch();
            return Err(StorageError::ChecksumMismatch {
                bucket: m.src.bucket.clone(),
                key: m.src_key.clone(),
                expected: listed.clone(),
                found: expected,
            });
        }
        Ok(expected)
    }

    /// Step 4. A verified copy already there (an interrupted earlier run), looked for
    /// only where a multipart copy or a versioned destination (the legal-hold tier
    /// always is) makes that cheaper than copying again: its version and verification.
    async fn find_verified_copy(
        &self,
        m: &MoveJob<'_>,
        src: &Head,
        expected: &str,
    ) -> Result<Option<(Option<String>, Verification)>, StorageError> {
        let existing =
            if self.is_multipart(src.size) || self.versioned(&m.dst.bucket, m.calls).await? {
                self.head(&m.dst.bucket, &m.dst_key, None, m.calls).await?
            } else {
                None
            };
        let Some(d) = existing else {
            return Ok(None);
        };
        let candidate = d.sha_meta.as_deref() == Some(expected)
            && d.class == m.target_class
            && d.size == src.size
            && !(m.same_object && d.version_id == src.version_id);
        if !candidate {
            return Ok(None);
        }
        match self
            .verify(&m.dst.bucket, &m.dst_key, &d, expected, src.size, m.calls)
            .await
        {
            Ok(how) => Ok(Some((d.version_id.clone(), how))),
            // A wrong copy is not ours to delete; it is overwritten by the copy.
            Err(StorageError::ChecksumMismatch { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Step 5. Copy, single or multipart. Returns the written version and the SHA-256
    /// the store reported for the copy, if it did.
    async fn copy_clip(
        &self,
        m: &MoveJob<'_>,
        src: &Head,
        expected: &str,
        outcome: &mut MoveOutcome,
    ) -> Result<(Option<String>, Option<String>), StorageError> {
        let multipart = self.is_multipart(src.size);
        let job = CopyJob {
            src_bucket: &m.src.bucket,
            src_key: &m.src_key,
            src,
            dst_bucket: &m.dst.bucket,
            dst_key: &m.dst_key,
            class: &m.target_class,
            sha: expected,
            uploaded_at: m.upload_record(src),
        };
        let (version, reported) = if multipart {
            (self.copy_multipart(&job, m.calls).await?, None)
        } else {
            self.copy_single(&job, m.calls).await?
        };
        outcome.copied = true;
        outcome.multipart = multipart;
        outcome.bytes_copied = src.size;
        self.metrics.copied(src.size);
        self.reached(m, MoveStep::Copied, version.as_deref())
            .await?;
        Ok((version, reported))
    }

    /// Step 6. Verify the copy: against the SHA-256 the store reported for it, else a
    /// HEAD of the written version and [`Self::verify`]. Returns the destination
    /// version and how it was verified.
    async fn verify_copy(
        &self,
        m: &MoveJob<'_>,
        src: &Head,
        expected: &str,
        (version, reported): (Option<String>, Option<String>),
    ) -> Result<(Option<String>, Verification), StorageError> {
        let verified = match reported {
            // The store computed the copy's full-object SHA-256 while writing it and said
            // so in its answer: compare that, no read-back.
            Some(found) => {
                if found != expected {
                    self.metrics.mismatch();
                    tracing::error!(bucket = %m.dst.bucket, key = %m.dst_key, %expected, %found, "checksum mismatch; source kept");
                    return Err(StorageError::ChecksumMismatch {
                        bucket: m.dst.bucket.clone(),
                        key: m.dst_key.clone(),
                        expected: expected.to_string(),
                        found,
                    });
                }
                self.metrics.verification(Verification::S3Checksum.as_str());
                (version, Verification::S3Checksum)
            }
            None => {
                let head = self
                    .head(&m.dst.bucket, &m.dst_key, version.as_deref(), m.calls)
                    .await?
                    .ok_or_else(|| StorageError::NotFound {
                        bucket: m.dst.bucket.clone(),
                        key: m.dst_key.clone(),
                    })?;
                let how = self
                    .verify(
                        &m.dst.bucket,
                        &m.dst_key,
                        &head,
                        expected,
                        src.size,
                        m.calls,
                    )
                    .await?;
                (version.or(head.version_id), how)
            }
        };
        self.reached(m, MoveStep::Verified, verified.0.as_deref())
            .await?;
        Ok(verified)
    }

    /// Step 7. Into the legal-hold tier: hold the written version.
    async fn hold_copy(
        &self,
        m: &MoveJob<'_>,
        dst_version: Option<&str>,
    ) -> Result<(), StorageError> {
        if m.to != Tier::LegalHold {
            return Ok(());
        }
        self.put_hold(&m.dst.bucket, &m.dst_key, dst_version, true, m.calls)
            .await?;
        self.reached(m, MoveStep::Held, dst_version).await
    }

    /// Step 8. Delete the copied source version, only now (or hand it to the caller
    /// through `defer`, who deletes the sources of many verified moves in one request).
    async fn delete_source(
        &self,
        m: &MoveJob<'_>,
        src: &Head,
        dst_version: Option<&str>,
        defer: Option<&mut Option<PendingDelete>>,
        outcome: &mut MoveOutcome,
    ) -> Result<(), StorageError> {
        let pending = if m.same_object {
            // The copy went onto the same key. Versioned: the listed version is now a
            // noncurrent duplicate; delete exactly it. Unversioned: it was replaced.
            match src.version_id.as_deref() {
                Some(v) if v != "null" && Some(v) != dst_version => Some(PendingDelete {
                    bucket: m.src.bucket.clone(),
                    key: m.src_key.clone(),
                    version: Some(v.to_string()),
                }),
                _ => None,
            }
        } else {
            Some(PendingDelete {
                bucket: m.src.bucket.clone(),
                key: m.src_key.clone(),
                version: src.version_id.clone(),
            })
        };
        if let Some(p) = pending {
            if let Some(slot) = defer {
                *slot = Some(p);
                return Ok(());
            }
            let source = Clip {
                version_id: p.version.clone(),
                ..m.clip.clone()
            };
            let check = self
                .carry_retags(&[(&source, m.to, dst_version)], m.calls)
                .await
                .into_iter()
                .next()
                .unwrap_or(Ok(true))?;
            if check {
                self.delete_version(&p.bucket, &p.key, p.version.as_deref(), m.calls)
                    .await?;
                outcome.source_deleted = true;
            }
        }
        self.reached(m, MoveStep::SourceDeleted, dst_version).await
    }

    /// One move with the listing's facts, redone from a fresh HEAD if the listed source
    /// is gone or changed (which also recognises a move an earlier run completed).
    pub(super) async fn move_one(
        &self,
        clip: &Clip,
        to: Tier,
        mut defer: Option<&mut Option<PendingDelete>>,
        calls: &Calls,
    ) -> Result<MoveOutcome, StorageError> {
        let result = self
            .move_inner(clip, to, true, defer.as_deref_mut(), calls)
            .await;
        let fast = self
            .listed_source(clip, self.loc(clip.tier).same_objects(self.loc(to)))
            .is_some();
        match result {
            Err(StorageError::NotFound { .. }) if fast => {
                self.move_inner(clip, to, false, defer, calls).await
            }
            r => r,
        }
    }

    /// `TierStore::move_clip`: one move, counted in the metrics and its outcome.
    pub(super) async fn move_counted(
        &self,
        clip: &Clip,
        to: Tier,
    ) -> Result<MoveOutcome, StorageError> {
        let calls = Calls::default();
        let result = self.move_one(clip, to, None, &calls).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.category(),
        };
        self.metrics.moved(to.as_str(), outcome);
        result.map(|mut o| {
            o.requests = calls.get();
            o
        })
    }
}
