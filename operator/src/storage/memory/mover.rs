//! The moves of a [`MemoryTierStore`], step by step as the S3 mover makes them
//! (`storage/s3/mover.rs`), each step's writes under the store's lock and the fault hook
//! called, outside it, after the same steps:
//!
//! 1. region proof (+ Object Lock when the destination is the legal-hold tier);
//! 2. the source version (as listed, else the current one); gone: the move is complete
//!    when the destination carries the clip's recorded SHA-256, else `NotFound`; held:
//!    refused;
//! 3. the expected SHA-256: recorded, else the content's; a listed one that differs is a
//!    `ChecksumMismatch`;
//! 4. in a versioned destination, a current version that already carries and matches
//!    that SHA-256 (an interrupted earlier run) is reused;
//! 5. otherwise copy (tags and metadata carried, the SHA-256 and the upload time
//!    recorded, the destination's storage class), hook `Copied`;
//! 6. verify the written version's content, hook `Verified`;
//! 7. into the legal-hold tier: hold ON for the written version, hook `Held`;
//! 8. delete exactly the source version, hook `SourceDeleted`.

use super::{
    MemoryOp, MemoryTierStore, relock,
    state::{Version, sha_hex},
};
use crate::{
    api::clip::{Clip, META_SHA256, META_UPLOADED_AT, Tier, format_uploaded_at, recorded_upload},
    storage::{MoveOutcome, MoveStep, StepContext, StorageError, Verification},
};

impl MemoryTierStore {
    /// Call the fault hook after `step`; `false` from it interrupts the move.
    async fn step(
        &self,
        step: MoveStep,
        clip: &Clip,
        to: Tier,
        dst_version: Option<&str>,
    ) -> Result<(), StorageError> {
        let hook = relock(&self.hook).clone();
        let Some(hook) = hook else { return Ok(()) };
        let ctx = StepContext {
            step,
            clip_key: clip.key.clone(),
            dst_bucket: self.bucket(to),
            dst_key: clip.key.clone(),
            dst_version_id: dst_version.map(str::to_string),
        };
        if hook(ctx).await {
            Ok(())
        } else {
            Err(StorageError::Interrupted {
                key: clip.key.clone(),
                step,
            })
        }
    }

    /// A move, the steps of the S3 mover in order (see the module doc).
    pub(super) async fn move_one(
        &self,
        clip: &Clip,
        to: Tier,
    ) -> Result<MoveOutcome, StorageError> {
        if clip.tier == to {
            return Err(StorageError::InvalidInput(format!(
                "clip {} is already in tier {to}",
                clip.key
            )));
        }
        let key = clip.key.as_str();
        let mut outcome = MoveOutcome {
            key: key.to_string(),
            from: clip.tier,
            to,
            dst_version_id: None,
            sha256: String::new(),
            copied: false,
            multipart: false,
            bytes_copied: 0,
            verification: Verification::AlreadyComplete,
            source_deleted: false,
            requests: 1,
        };
        // 1. Region proof, Object Lock; 2. the source version; 3. the expected SHA-256;
        // 4. a verified copy already there (versioned destination only).
        let (src, expected, found, dst_versioned) = {
            let s = self.state();
            s.prove()?;
            if to == Tier::LegalHold {
                s.ensure_object_lock()?;
            }
            let (src_bucket, dst) = (s.tier(clip.tier).bucket.clone(), s.tier(to));
            let Some(src) = s.find(clip.tier, key, clip.version_id.as_deref()).cloned() else {
                // Gone: complete only if the destination carries the clip's checksum.
                return match s.find(to, key, None) {
                    Some(d)
                        if d.class == dst.class
                            && d.recorded().is_some()
                            && (clip.sha256.is_none() || d.recorded() == clip.sha256) =>
                    {
                        outcome.dst_version_id = dst.versioned.then(|| d.id.clone());
                        outcome.sha256 = d.recorded().unwrap_or_default();
                        Ok(outcome)
                    }
                    _ => Err(StorageError::NotFound {
                        bucket: src_bucket,
                        key: key.to_string(),
                    }),
                };
            };
            if src.legal_hold {
                return Err(StorageError::Held {
                    bucket: src_bucket,
                    key: key.to_string(),
                    version: src.id,
                });
            }
            let expected = src.recorded().unwrap_or_else(|| sha_hex(&src.data));
            if let Some(listed) = &clip.sha256
                && !listed.eq_ignore_ascii_case(&expected)
            {
                return Err(StorageError::ChecksumMismatch {
                    bucket: src_bucket,
                    key: key.to_string(),
                    expected: listed.clone(),
                    found: expected,
                });
            }
            let found = if dst.versioned {
                outcome.requests += 1;
                s.find(to, key, None)
                    .filter(|d| {
                        d.recorded().as_deref() == Some(expected.as_str())
                            && d.class == dst.class
                            && d.size() == src.size()
                            && sha_hex(&d.data) == expected
                    })
                    .map(|d| d.id.clone())
            } else {
                None
            };
            (src, expected, found, dst.versioned)
        };
        outcome.sha256 = expected.clone();
        let public = |id: &str| dst_versioned.then(|| id.to_string());
        let dst_id = match found {
            Some(id) => {
                outcome.verification = Verification::S3Checksum;
                id
            }
            None => {
                let id = self.copy(clip, &src, to, &expected)?;
                outcome.requests += 1;
                outcome.copied = true;
                outcome.bytes_copied = src.size();
                self.step(MoveStep::Copied, clip, to, public(&id).as_deref())
                    .await?;
                self.verify(to, key, &id, &expected)?;
                outcome.verification = Verification::S3Checksum;
                self.step(MoveStep::Verified, clip, to, public(&id).as_deref())
                    .await?;
                id
            }
        };
        outcome.dst_version_id = public(&dst_id);
        if to == Tier::LegalHold {
            self.hold(to, key, Some(&dst_id), true)?;
            outcome.requests += 1;
            self.step(MoveStep::Held, clip, to, outcome.dst_version_id.as_deref())
                .await?;
        }
        self.delete_source(clip, &src)?;
        outcome.requests += 1;
        outcome.source_deleted = true;
        self.step(
            MoveStep::SourceDeleted,
            clip,
            to,
            outcome.dst_version_id.as_deref(),
        )
        .await?;
        Ok(outcome)
    }

    /// Step 5: copy the source version to `to`, tags and metadata carried, the SHA-256
    /// recorded, in the destination's storage class; the written version.
    fn copy(
        &self,
        clip: &Clip,
        src: &Version,
        to: Tier,
        expected: &str,
    ) -> Result<String, StorageError> {
        let mut s = self.state();
        s.prove()?;
        s.call(MemoryOp::Copy, to)?;
        let mut metadata = src.metadata.clone();
        metadata.insert(META_SHA256.to_string(), expected.to_string());
        let uploaded_at = recorded_upload(clip.tier, src.last_modified, src.uploaded_at());
        metadata.insert(
            META_UPLOADED_AT.to_string(),
            format_uploaded_at(uploaded_at),
        );
        let copy = Version {
            id: String::new(),
            data: src.data.clone(),
            tags: src.tags.clone(),
            metadata,
            class: s.tier(to).class.clone(),
            last_modified: s.now(),
            legal_hold: false,
        };
        Ok(s.write(to, &clip.key, copy))
    }

    /// Step 6: the written version's content hashes to the expected SHA-256.
    fn verify(&self, to: Tier, key: &str, id: &str, expected: &str) -> Result<(), StorageError> {
        let s = self.state();
        let bucket = s.tier(to).bucket.clone();
        let found = s
            .find(to, key, Some(id))
            .map(|v| sha_hex(&v.data))
            .ok_or_else(|| StorageError::NotFound {
                bucket: bucket.clone(),
                key: key.to_string(),
            })?;
        if found != expected {
            return Err(StorageError::ChecksumMismatch {
                bucket,
                key: key.to_string(),
                expected: expected.to_string(),
                found,
            });
        }
        Ok(())
    }

    /// Set or clear the legal hold of one version.
    pub(super) fn hold(
        &self,
        tier: Tier,
        key: &str,
        version: Option<&str>,
        on: bool,
    ) -> Result<(), StorageError> {
        let mut s = self.state();
        s.prove()?;
        s.ensure_object_lock()?;
        s.call(MemoryOp::Hold, tier)?;
        let bucket = s.tier(tier).bucket.clone();
        let v = s
            .find_mut(tier, key, version)
            .ok_or_else(|| StorageError::NotFound {
                bucket,
                key: key.to_string(),
            })?;
        v.legal_hold = on;
        Ok(())
    }

    /// Step 8: delete exactly the source version that was copied.
    fn delete_source(&self, clip: &Clip, src: &Version) -> Result<(), StorageError> {
        let mut s = self.state();
        s.prove()?;
        s.call(MemoryOp::Delete, clip.tier)?;
        let bucket = s.tier(clip.tier).bucket.clone();
        s.delete(clip.tier, &clip.key, Some(&src.id))
            .map_err(|_| StorageError::AccessDenied {
                op: "delete_object",
                bucket,
                message: format!("{} is WORM protected (legal hold)", clip.key),
            })
    }
}
