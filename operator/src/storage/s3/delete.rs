//! Deletes: one object version (`delete_version`, a move's step 8 on its own), and
//! `DeleteObjects` batches of up to [`DELETE_BATCH`] versions (`delete_batch`), which
//! both `TierStore::delete_clips` and `TierStore::soft_delete_clips` (`delete_many`,
//! final or soft) and the end of `TierStore::move_clips` use. A batch reports each version that failed, with the
//! store's code and whether retrying can help, so nothing is forgotten.

use std::collections::HashMap;

use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use super::{S3TierStore, client::Calls};
use crate::{
    api::clip::{Clip, Tier},
    storage::{DeleteFailure, DeleteReport, StorageError, retry},
};

/// The most keys one `DeleteObjects` request takes.
const DELETE_BATCH: usize = 1000;

impl S3TierStore {
    /// Delete one object version (`None`: the current object).
    pub(super) async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        calls: &Calls,
    ) -> Result<(), StorageError> {
        self.send("delete_object", bucket, calls, || {
            self.client()
                .delete_object()
                .bucket(bucket)
                .key(key)
                .set_version_id(version.map(str::to_string))
                .send()
        })
        .await
        .map_err(|f| f.into_error("delete_object", bucket, Some(key)))?;
        Ok(())
    }

    /// Delete object versions of one bucket in `DeleteObjects` batches. Returns, per
    /// item, `None` when deleted or the store's `(code, message, retryable)`.
    pub(super) async fn delete_batch(
        &self,
        bucket: &str,
        items: &[(String, Option<String>)],
        calls: &Calls,
    ) -> Result<Vec<Option<(String, String, bool)>>, StorageError> {
        let mut results = Vec::with_capacity(items.len());
        for chunk in items.chunks(DELETE_BATCH) {
            let mut objects = Vec::with_capacity(chunk.len());
            for (key, version) in chunk {
                objects.push(
                    ObjectIdentifier::builder()
                        .key(key)
                        .set_version_id(version.clone())
                        .build()
                        .map_err(|e| StorageError::InvalidInput(e.to_string()))?,
                );
            }
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| StorageError::InvalidInput(e.to_string()))?;
            let res = self
                .send("delete_objects", bucket, calls, || {
                    self.client()
                        .delete_objects()
                        .bucket(bucket)
                        .delete(delete.clone())
                        .send()
                })
                .await;
            match res {
                Ok(out) => {
                    let mut errors: HashMap<(String, Option<String>), (String, String)> =
                        HashMap::new();
                    for e in out.errors() {
                        errors.insert(
                            (
                                e.key().unwrap_or_default().to_string(),
                                e.version_id().map(str::to_string),
                            ),
                            (
                                e.code().unwrap_or("unknown").to_string(),
                                e.message().unwrap_or_default().to_string(),
                            ),
                        );
                    }
                    for (key, version) in chunk {
                        let hit = errors
                            .get(&(key.clone(), version.clone()))
                            .or_else(|| errors.get(&(key.clone(), None)))
                            .or_else(|| errors.iter().find(|((k, _), _)| k == key).map(|(_, v)| v));
                        results.push(hit.map(|(code, message)| {
                            let retryable = retry::classify(code, None).retryable();
                            (code.clone(), message.clone(), retryable)
                        }));
                    }
                }
                Err(f) => {
                    let retryable = f.kind.retryable();
                    results.extend(
                        chunk
                            .iter()
                            .map(|_| Some((f.code.clone(), f.message.clone(), retryable))),
                    );
                }
            }
        }
        Ok(results)
    }

    /// `TierStore::delete_clips` (`Deletion::Final`) and `TierStore::soft_delete_clips`
    /// (`Deletion::Soft`): after the region proof, refuse what must not be deleted that
    /// way (see [`Deletion::refusal`]), batch-delete the rest tier by tier, and report
    /// every clip as deleted or failed.
    pub(super) async fn delete_many(
        &self,
        clips: &[Clip],
        how: Deletion,
    ) -> Result<DeleteReport, StorageError> {
        let mut report = DeleteReport::default();
        if clips.is_empty() {
            return Ok(report);
        }
        let calls = Calls::default();
        self.prove(&calls).await?;
        for tier in Tier::ALL {
            let of_tier: Vec<&Clip> = clips.iter().filter(|c| c.tier == tier).collect();
            if of_tier.is_empty() {
                continue;
            }
            let loc = self.loc(tier);
            let bucket = loc.bucket.as_str();
            // A soft delete needs versioning Enabled, read now: without it the same
            // request deletes for good.
            let versioned = match how {
                Deletion::Soft if tier != Tier::LegalHold => {
                    self.versioning_is_enabled(tier, &calls).await?
                }
                _ => true,
            };
            let mut sendable: Vec<&Clip> = Vec::new();
            for c in of_tier {
                match how.refusal(c, versioned, bucket) {
                    Some((code, message)) => {
                        report
                            .failed
                            .push(DeleteFailure::new(c, code, message, false));
                    }
                    None => sendable.push(c),
                }
            }
            let items: Vec<(String, Option<String>)> = sendable
                .iter()
                .map(|c| {
                    let version = match how {
                        Deletion::Final => c.version_id.clone(),
                        Deletion::Soft => None,
                    };
                    (loc.object_key(&c.key), version)
                })
                .collect();
            let results = self.delete_batch(bucket, &items, &calls).await?;
            for (c, failure) in sendable.into_iter().zip(results) {
                match failure {
                    Some((code, message, retryable)) => {
                        report
                            .failed
                            .push(DeleteFailure::new(c, &code, message, retryable));
                    }
                    None => report.deleted.push(c.clone()),
                }
            }
        }
        let done = match how {
            Deletion::Final => "deleted",
            Deletion::Soft => "soft_deleted",
        };
        self.metrics.deleted(done, report.deleted.len() as u64);
        self.metrics.deleted("failed", report.failed.len() as u64);
        report.requests = calls.get();
        Ok(report)
    }
}

/// How a batch delete deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Deletion {
    /// For good: each clip's listed version.
    Final,
    /// A delete marker over each clip's current version, which stays (a policy's restore
    /// window); only in the hot and cool tiers, only where versioning is Enabled.
    Soft,
}

impl Deletion {
    /// Why `clip` is refused before any request (`versioned`: its tier's bucket has
    /// versioning Enabled, read for soft deletes), or `None`.
    fn refusal(self, clip: &Clip, versioned: bool, bucket: &str) -> Option<(&'static str, String)> {
        let held = || {
            clip.legal_hold.then(|| {
                (
                    "LegalHoldOn",
                    "the clip is under legal hold; release it first".to_string(),
                )
            })
        };
        match self {
            Deletion::Final => held().or_else(|| {
                (clip.tier == Tier::LegalHold && clip.version_id.is_none()).then(|| {
                    (
                        "VersionRequired",
                        "a legal-hold tier clip is deleted by version only".to_string(),
                    )
                })
            }),
            Deletion::Soft if clip.tier == Tier::LegalHold => Some((
                "NotSoftDeletable",
                "clips are soft-deleted from the hot and cool tiers only".to_string(),
            )),
            Deletion::Soft if !versioned => Some((
                "VersioningRequired",
                format!(
                    "bucket {bucket} does not have versioning Enabled, so a deletion could not be undone; kept"
                ),
            )),
            Deletion::Soft => held(),
        }
    }
}
