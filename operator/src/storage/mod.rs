//! The storage layer: one small trait over the three tiers of an evidence bucket, and
//! its S3 implementation (verified moves, legal holds, batch deletes, region proof).
//!
//! The layer never sees a policy or a CRD: its inputs are a [`BucketConfig`] (where the
//! tiers are, which regions are allowed) and the shared clip types of
//! [`crate::api::clip`]. The controller calls [`TierStore`] methods with the actions the
//! engine planned; everything that protects evidence lives below that line:
//!
//! - no write (copy, hold, delete) before the store has proven every tier bucket is in
//!   an allowed UK region ([`TierStore::verify_region`], cached for a bounded time);
//! - a move deletes its source only after the copy's full-object SHA-256 matched;
//! - a move interrupted at any step converges when re-run;
//! - a legal-hold tier without Object Lock is refused;
//! - deletes report each key that failed, so nothing is forgotten.
//!
//! | module | what |
//! |---|---|
//! | [`clock`] | [`ServerDate`]: a server's clock as its `Date` header shows it |
//! | [`config`] | [`BucketConfig`], [`TierLocation`], [`StoreOptions`] |
//! | [`error`] | [`StorageError`] (retryable? category?), [`MoveStep`] |
//! | [`deleted`] | [`DeletedClip`]: a soft-deleted clip (delete marker over its data version), restorable until purged |
//! | [`listing`] | a listing in two steps ([`ListedObject`], then [`ClipFacts`]) over a [`KeyRange`], for the clip catalogue |
//! | [`region`] | endpoint-host and bucket-location checks, [`RegionProof`] |
//! | `retry` (private) | failure classification, jittered backoff |
//! | [`metrics`] | [`StorageMetrics`] |
//! | [`s3`] | [`S3TierStore`]; one file per concern (client, proof, checksum, copy, move, delete, list, MinIO's listing extension) |
//! | `conformance` (feature `testing`) | the conformance suite every backend runs, and its `Fixture` |
//! | `memory` (feature `testing`) | `MemoryTierStore`: the trait in memory, for fast tests above this layer |
//!
//! See `docs/storage.md` for the request counts and the design choices.

pub mod claim;
pub mod clock;
pub mod config;
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod deleted;
pub mod error;
pub mod listing;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod metrics;
pub mod region;
mod retry;
pub mod s3;

use async_trait::async_trait;
use futures::{
    StreamExt,
    stream::{self, BoxStream},
};
use tokio_util::sync::CancellationToken;

/// The SDK configuration of a bucket (region, credentials, endpoint), for the other S3
/// clients of the operator (the audit writer).
pub(crate) use self::s3::sdk_config;
pub use self::{
    clock::ServerDate,
    config::{
        BucketConfig, FaultHook, RecheckHook, StaticCredentials, StepContext, StoreOptions,
        TierLocation, Tiers,
    },
    deleted::DeletedClip,
    error::{MoveStep, StorageError},
    listing::{ClipFacts, KeyRange, ListedObject},
    metrics::StorageMetrics,
    region::RegionProof,
    s3::{S3TierStore, tagging_query},
};
use crate::api::clip::{Clip, Tier};

/// How a move's destination was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The store's own full-object `x-amz-checksum-sha256` of the copy matched.
    S3Checksum,
    /// The copy was read back and hashed (multipart copies, stores without checksums).
    Reread,
    /// Nothing to verify: the move had already completed in an earlier run.
    AlreadyComplete,
}

impl Verification {
    /// A stable name, for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::S3Checksum => "s3_checksum",
            Verification::Reread => "reread",
            Verification::AlreadyComplete => "already_complete",
        }
    }
}

/// What a move did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveOutcome {
    /// The clip key.
    pub key: String,
    /// The source tier.
    pub from: Tier,
    /// The destination tier.
    pub to: Tier,
    /// The destination version, where the destination bucket is versioned.
    pub dst_version_id: Option<String>,
    /// The verified full-object SHA-256 (hex), now recorded on the destination.
    pub sha256: String,
    /// Whether this run copied (false: a verified copy from an earlier run was reused,
    /// or the move was already complete).
    pub copied: bool,
    /// Whether the copy was a multipart copy.
    pub multipart: bool,
    /// Bytes copied by this run.
    pub bytes_copied: u64,
    /// How the destination was verified.
    pub verification: Verification,
    /// Whether this run deleted the source version (false for an in-place storage-class
    /// change on an unversioned bucket, or a move found already complete).
    pub source_deleted: bool,
    /// S3 requests this move made (every attempt, including a region proof when the
    /// cached one had expired).
    pub requests: u32,
}

/// One clip that could not be deleted; it is still there and should be retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteFailure {
    /// The clip, unchanged.
    pub clip: Clip,
    /// The store's error code (e.g. `AccessDenied` for a WORM-protected version), or
    /// `LegalHoldOn` / `VersionRequired` for clips refused before any request.
    pub code: String,
    /// The store's message.
    pub message: String,
    /// Whether retrying later can help.
    pub retryable: bool,
}

impl DeleteFailure {
    /// `clip`, kept, with the store's (or the layer's own) code and message.
    pub fn new(clip: &Clip, code: &str, message: impl Into<String>, retryable: bool) -> Self {
        DeleteFailure {
            clip: clip.clone(),
            code: code.to_string(),
            message: message.into(),
            retryable,
        }
    }
}

/// What a batch delete did: every clip passed in is in exactly one of the two lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteReport {
    /// Deleted clips.
    pub deleted: Vec<Clip>,
    /// Clips kept, with the reason.
    pub failed: Vec<DeleteFailure>,
    /// S3 requests made.
    pub requests: u32,
}

/// An object's bytes as they are read, chunk by chunk.
pub type ByteChunks = BoxStream<'static, Result<bytes::Bytes, StorageError>>;

/// The storage tiers of one evidence bucket. Usable as `Arc<dyn TierStore>`.
#[async_trait]
pub trait TierStore: Send + Sync {
    /// Stream every clip of one tier (paginated, bounded concurrency for per-object calls).
    fn list(&self, tier: Tier) -> BoxStream<'_, Result<Clip, StorageError>>;

    /// Stream the objects of one tier in `range`, in key order, as the listing shows
    /// them: no per-object request (S3: one list request per 1,000 objects). Their
    /// [`ClipFacts`] are there only when the listing carried them; otherwise
    /// [`TierStore::read_facts`] reads them.
    fn list_objects(
        &self,
        tier: Tier,
        range: KeyRange,
    ) -> BoxStream<'_, Result<ListedObject, StorageError>>;

    /// The facts of one listed object (S3: one `GetObjectTagging`; in the legal-hold tier
    /// a `HeadObject` too), or `None` when it is gone. No request when the listing
    /// carried them.
    async fn read_facts(
        &self,
        tier: Tier,
        object: &ListedObject,
    ) -> Result<Option<ClipFacts>, StorageError>;

    /// The bytes of a clip's listed version, as they are read (S3: one GET).
    async fn read_clip(&self, clip: &Clip) -> Result<ByteChunks, StorageError>;

    /// The full-object SHA-256 (hex) of a clip's listed version: the recorded one, else
    /// the store's full-object checksum, else computed by reading it (S3: one HEAD, and
    /// a GET only when neither is recorded).
    async fn clip_sha256(&self, clip: &Clip) -> Result<String, StorageError>;

    /// Prove every tier bucket is in an allowed UK region (cached for a bounded time).
    async fn verify_region(&self) -> Result<RegionProof, StorageError>;

    /// Copy `clip` to tier `to`, verify SHA-256, then delete the source. To LegalHold: the
    /// written version gets legal hold ON before the source is deleted. Idempotent/convergent.
    async fn move_clip(&self, clip: &Clip, to: Tier) -> Result<MoveOutcome, StorageError>;

    /// Move many clips to `to`, `concurrency` at a time, each as [`TierStore::move_clip`]
    /// does; a store may delete the sources of the verified copies together at the end
    /// (S3: `DeleteObjects`, one request per 1,000). Once `stop` is cancelled no further
    /// move starts; those clips get `None`. Results are in the order of `clips`.
    async fn move_clips(
        &self,
        clips: &[Clip],
        to: Tier,
        concurrency: usize,
        stop: &CancellationToken,
    ) -> Vec<Option<Result<MoveOutcome, StorageError>>> {
        stream::iter(0..clips.len())
            .map(|i| async move {
                if stop.is_cancelled() {
                    None
                } else {
                    Some(self.move_clip(&clips[i], to).await)
                }
            })
            .buffered(concurrency.max(1))
            .collect()
            .await
    }

    /// Set or clear the legal hold on a clip in the legal-hold tier.
    async fn set_legal_hold(&self, clip: &Clip, on: bool) -> Result<(), StorageError>;

    /// Replace the tags of the clip's listed version (only after the region proof). The
    /// operator writes one tag of its own: `evidence.bwv.io/retain-until`, before it
    /// clears the legal hold of a clip whose case closed with a retention of its own.
    /// S3: one `PutObjectTagging`.
    async fn set_tags(
        &self,
        clip: &Clip,
        tags: &[crate::api::clip::Tag],
    ) -> Result<(), StorageError>;

    /// Claim every storage location of this store's tiers for `owner` (see
    /// [`claim`]): before a sweep lists, writes or deletes any clip. `ClaimedBy` when a
    /// location overlaps another owner's; `take_over` names a previous owner whose
    /// claims are taken. Only after the region proof. S3: one list of the claims per
    /// bucket and one read per overlapping claim (normally our own), plus one
    /// conditional write the first time.
    async fn claim(
        &self,
        owner: &claim::Owner,
        take_over: Option<&claim::TakeOver>,
    ) -> Result<claim::ClaimOutcome, StorageError>;

    /// Batch delete (DeleteObjects, <= 1000 keys a request); per-key failures reported.
    async fn delete_clips(&self, clips: &[Clip]) -> Result<DeleteReport, StorageError>;

    /// Batch soft delete, for a policy with a restore window: each clip gets a delete
    /// marker and its version stays, restorable (S3: `DeleteObjects` without version
    /// ids, one request per 1,000, after a fresh `GetBucketVersioning` per tier). Only in
    /// the hot and cool tiers, and only where versioning is `Enabled`: otherwise every
    /// clip of that tier is reported failed with `VersioningRequired`, never deleted
    /// for good.
    async fn soft_delete_clips(&self, clips: &[Clip]) -> Result<DeleteReport, StorageError>;

    /// Whether the tier's bucket has versioning `Enabled` (read now, not cached; S3: one
    /// `GetBucketVersioning`).
    async fn versioning_enabled(&self, tier: Tier) -> Result<bool, StorageError>;

    /// The soft-deleted clips of a tier (hot or cool), in key order, optionally only
    /// those whose key starts with `prefix` (S3: `ListObjectVersions`, one request per
    /// 1,000 versions, then a `GetObjectTagging` and a `HeadObject` of each deleted
    /// clip's data version).
    fn list_deleted<'a>(
        &'a self,
        tier: Tier,
        prefix: Option<&'a str>,
    ) -> BoxStream<'a, Result<DeletedClip, StorageError>>;

    /// Restore a soft-deleted clip: remove its delete markers, so that its data version
    /// (same bytes, same version id, same tags) is current again. Only after the region
    /// proof. S3: one `DeleteObject` by version id per marker.
    async fn restore_clip(&self, deleted: &DeletedClip) -> Result<(), StorageError>;

    /// Purge a soft-deleted clip for good: its data version (refused by the store while
    /// it has an Object Lock legal hold), then its markers. Only after the region proof.
    /// S3: one `DeleteObject` by version id per version.
    async fn purge_clip(&self, deleted: &DeletedClip) -> Result<(), StorageError>;

    /// The tags of each clip's listed version as stored now (`None`: that version is
    /// gone), in the order of `clips`. Read at the point of no return: a clip is deleted
    /// by policy only if its tags, read again here, still give `Delete` (an officer may
    /// have re-categorised it since it was listed). S3: the clips' key range listed
    /// again where the store has MinIO's listing extension (about one request per
    /// 1,000 clips), else one `GetObjectTagging` per clip.
    async fn current_tags(
        &self,
        clips: &[Clip],
    ) -> Result<Vec<Option<Vec<crate::api::clip::Tag>>>, StorageError>;

    /// The store's clock, read now: the `Date` of one cheap request and when, by the
    /// local wall clock, it was sent and answered (S3: one `HeadBucket` of the hot
    /// bucket). `None` when the store has no clock to read (the in-memory store) or its
    /// answer carried no `Date`.
    async fn server_date(&self) -> Result<Option<ServerDate>, StorageError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A one-tenant configuration against `endpoint` (no request is made by building it).
    fn test_config(endpoint: &str, force_path_style: bool) -> BucketConfig {
        BucketConfig {
            name: "ns/unit".into(),
            declared_region: "eu-west-2".into(),
            endpoint: Some(endpoint.into()),
            force_path_style,
            credentials: Some(StaticCredentials {
                access_key_id: "a".into(),
                secret_access_key: "s".into(),
                session_token: None,
            }),
            tiers: Tiers {
                hot: TierLocation::bucket("hot"),
                cool: TierLocation::bucket("cool"),
                legal_hold: TierLocation::bucket("lock"),
            },
            allowed_regions: vec!["eu-west-2".into()],
        }
    }

    #[tokio::test]
    async fn s3_store_is_usable_as_a_trait_object_and_refuses_non_uk_aws_endpoints() {
        let cfg = test_config("https://s3.us-east-1.amazonaws.com", false);
        let refused = S3TierStore::new(
            cfg.clone(),
            StoreOptions::default(),
            StorageMetrics::unregistered(),
        )
        .await;
        assert!(matches!(
            refused,
            Err(StorageError::EndpointNotAllowed { .. })
        ));

        let mut ok = cfg;
        ok.endpoint = Some("https://s3.eu-west-2.amazonaws.com".into());
        let store: Arc<dyn TierStore> = Arc::new(
            S3TierStore::new(ok, StoreOptions::default(), StorageMetrics::unregistered())
                .await
                .map_err(|e| e.to_string())
                .unwrap_or_else(|e| panic!("{e}")),
        );
        // Moving within a tier is refused before any request.
        let clip = Clip {
            key: "k".into(),
            tier: Tier::Hot,
            version_id: None,
            size: 1,
            storage_class: None,
            last_modified: chrono::DateTime::UNIX_EPOCH,
            tags: vec![],
            sha256: None,
            uploaded_at: None,
            legal_hold: false,
            plain_headers: None,
        };
        assert!(matches!(
            store.move_clip(&clip, Tier::Hot).await,
            Err(StorageError::InvalidInput(_))
        ));
    }

    #[tokio::test]
    async fn transient_failures_are_retried_a_bounded_number_of_times_then_reported() {
        // Nothing listens on port 1: every attempt is a connection failure (transient).
        let cfg = test_config("http://127.0.0.1:1", true);
        let opts = StoreOptions {
            max_attempts: 3,
            backoff_base: std::time::Duration::from_millis(1),
            backoff_max: std::time::Duration::from_millis(5),
            ..StoreOptions::default()
        };
        let metrics = StorageMetrics::unregistered();
        let store = S3TierStore::new(cfg, opts, metrics.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        match store.verify_region().await {
            Err(e @ StorageError::Transient { attempts: 3, .. }) => assert!(e.retryable()),
            other => panic!("expected Transient after 3 attempts, got {other:?}"),
        }
        assert_eq!(metrics.requests("get_bucket_location", "transient"), 3);
        assert_eq!(
            metrics.http_requests_total(),
            3,
            "each attempt is one HTTP request"
        );
    }
}
