//! [`S3TierStore`]: the [`TierStore`] over any S3-compatible store, with aws-sdk-s3.
//!
//! Every request goes through one helper (`S3TierStore::send`, the store's use of the
//! shared request path `Requester`, which the audit writer uses too) that holds a
//! permit of the bucket's concurrency limit, retries throttling and transient failures
//! with jittered backoff, counts the attempt in the metrics and in the caller's request
//! count, and classifies the final failure into [`StorageError`]. The SDK's own retries
//! are off; an interceptor counts the HTTP requests actually sent, as a cross-check.
//!
//! Every write (copy, hold, delete) is preceded by the region proof (cached for
//! `region_cache_ttl`), inside the store, so no caller can forget it.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the store, its construction, and the [`TierStore`] methods (thin) |
//! | `client.rs` | SDK configuration, the HTTP-request counter, `Requester` (`send` and its retries, reading an object; shared with the audit writer), URL encodings; (tests) `CannedS3`, the SDK's test HTTP client answering one canned error |
//! | `proof.rs` | region proof, Object Lock check, the versioning cache |
//! | `clock.rs` | the store's clock: a `HeadBucket`'s `Date` header |
//! | `checksum.rs` | HEAD, hashing, verifying; where the SHA-256 is recorded |
//! | `copy.rs` | server-side copies, single and multipart |
//! | `mover.rs` | the move, step by step, and why re-running converges; batched moves |
//! | `delete.rs` | single and `DeleteObjects` batch deletes |
//! | `deleted.rs` | soft deletes (a restore window), the version listing of deleted clips, restore, purge |
//! | `list.rs` | listing a tier, page by page, into clips |
//! | `extended.rs` | MinIO's listing extension and the response headers the SDK drops |
//! | `upload.rs` | new clips in the hot tier (the dock ingest): conditional, checksummed `PutObject` or multipart upload, stale uploads aborted |

mod batch;
mod checksum;
mod claim;
mod client;
mod clock;
mod copy;
mod delete;
mod deleted;
mod extended;
mod list;
mod mover;
mod parts;
mod proof;
mod recheck;
mod tagging;
mod upload;

use std::{collections::HashMap, time::Instant};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use futures::stream::BoxStream;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

#[cfg(test)]
pub(crate) use self::client::CannedS3;
pub use self::client::tagging_query;
pub(crate) use self::client::{Calls, ReadFailure, Requester, RetryPolicy, sdk_config};
pub use self::upload::{ClipBody, Confirmed, Created, ExistingObject, NewClip, PartHook};
/// A failed request, classified: what [`Requester`] returns, for its other users.
pub(crate) use super::retry::Failure;
use super::{
    BucketConfig, ClipFacts, DeleteReport, KeyRange, ListedObject, MoveOutcome, ServerDate,
    StoreOptions, TierLocation, TierStore,
    error::StorageError,
    metrics::StorageMetrics,
    region::{CachedProof, RegionProof, check_endpoint},
};
use crate::api::clip::{Clip, Tier};

/// The S3 tier store.
pub struct S3TierStore {
    cfg: BucketConfig,
    opts: StoreOptions,
    metrics: StorageMetrics,
    /// Every request of the store goes through it (`send`).
    requester: Requester,
    region: Mutex<Option<CachedProof>>,
    object_lock_until: Mutex<Option<Instant>>,
    /// Versioning status by bucket, and when it was read.
    versioning: Mutex<HashMap<String, (bool, Instant)>>,
}

impl std::fmt::Debug for S3TierStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3TierStore")
            .field("cfg", &self.cfg)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl S3TierStore {
    /// Build a store. Validates the configuration and refuses a non-UK AWS endpoint;
    /// makes no request (the region proof runs before the first write).
    pub async fn new(
        cfg: BucketConfig,
        opts: StoreOptions,
        metrics: StorageMetrics,
    ) -> Result<Self, StorageError> {
        cfg.validate()?;
        check_endpoint(cfg.endpoint.as_deref(), &cfg.allowed_regions)?;
        if opts.concurrency_per_bucket == 0 || opts.list_concurrency == 0 || opts.max_attempts == 0
        {
            return Err(StorageError::Config {
                name: cfg.name.clone(),
                reason: "concurrency and attempts must be at least 1".into(),
            });
        }
        let requester = Requester::new(
            client::store_client(&cfg, &opts, &metrics).await,
            RetryPolicy::of(&opts),
            metrics.clone(),
        )
        .limited(cfg.tiers.buckets(), opts.concurrency_per_bucket);
        Ok(S3TierStore {
            cfg,
            opts,
            metrics,
            requester,
            region: Mutex::new(None),
            object_lock_until: Mutex::new(None),
            versioning: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration this store serves.
    pub fn config(&self) -> &BucketConfig {
        &self.cfg
    }

    /// The metrics this store counts into.
    pub fn metrics(&self) -> &StorageMetrics {
        &self.metrics
    }

    /// The SDK client, to build the requests `send` sends.
    fn client(&self) -> &Client {
        self.requester.client()
    }

    fn loc(&self, tier: Tier) -> &TierLocation {
        self.cfg.tiers.get(tier)
    }
}

#[async_trait]
impl TierStore for S3TierStore {
    fn list(&self, tier: Tier) -> BoxStream<'_, Result<Clip, StorageError>> {
        self.list_tier(tier)
    }

    fn list_objects(
        &self,
        tier: Tier,
        range: KeyRange,
    ) -> BoxStream<'_, Result<ListedObject, StorageError>> {
        self.list_range(tier, range)
    }

    async fn read_facts(
        &self,
        tier: Tier,
        object: &ListedObject,
    ) -> Result<Option<ClipFacts>, StorageError> {
        self.facts_of(tier, object).await
    }

    async fn current_tags(
        &self,
        clips: &[Clip],
    ) -> Result<Vec<Option<Vec<crate::api::clip::Tag>>>, StorageError> {
        if let Some(hook) = &self.opts.recheck_hook {
            hook(clips.iter().map(|c| c.key.clone()).collect()).await;
        }
        let refs: Vec<&Clip> = clips.iter().collect();
        self.tags_now_many(&refs, &Calls::default()).await
    }

    async fn verify_region(&self) -> Result<RegionProof, StorageError> {
        let calls = Calls::default();
        let proof = self.prove(&calls).await?;
        self.ensure_safe_layout(&calls).await?;
        Ok(proof)
    }

    async fn move_clip(&self, clip: &Clip, to: Tier) -> Result<MoveOutcome, StorageError> {
        self.move_counted(clip, to).await
    }

    async fn move_clips(
        &self,
        clips: &[Clip],
        to: Tier,
        concurrency: usize,
        stop: &CancellationToken,
    ) -> Vec<Option<Result<MoveOutcome, StorageError>>> {
        self.move_many(clips, to, concurrency, stop).await
    }

    async fn set_legal_hold(&self, clip: &Clip, on: bool) -> Result<(), StorageError> {
        if clip.tier != Tier::LegalHold {
            return Err(StorageError::InvalidInput(format!(
                "clip {} is in tier {}, not the legal-hold tier",
                clip.key, clip.tier
            )));
        }
        let calls = Calls::default();
        self.prove(&calls).await?;
        self.ensure_object_lock(&calls).await?;
        let loc = self.loc(Tier::LegalHold);
        self.put_hold(
            &loc.bucket,
            &loc.object_key(&clip.key),
            clip.version_id.as_deref(),
            on,
            &calls,
        )
        .await
    }

    async fn set_tags(
        &self,
        clip: &Clip,
        tags: &[crate::api::clip::Tag],
    ) -> Result<(), StorageError> {
        self.put_clip_tags(clip, tags).await
    }

    async fn claim(
        &self,
        owner: &crate::storage::claim::Owner,
        take_over: Option<&crate::storage::claim::TakeOver>,
    ) -> Result<crate::storage::claim::ClaimOutcome, StorageError> {
        self.claim_locations(owner, take_over).await
    }

    async fn delete_clips(&self, clips: &[Clip]) -> Result<DeleteReport, StorageError> {
        self.delete_many(clips, delete::Deletion::Final).await
    }

    async fn soft_delete_clips(&self, clips: &[Clip]) -> Result<DeleteReport, StorageError> {
        self.delete_many(clips, delete::Deletion::Soft).await
    }

    async fn versioning_enabled(&self, tier: Tier) -> Result<bool, StorageError> {
        self.versioning_is_enabled(tier, &Calls::default()).await
    }

    fn list_deleted<'a>(
        &'a self,
        tier: Tier,
        prefix: Option<&'a str>,
    ) -> BoxStream<'a, Result<super::DeletedClip, StorageError>> {
        self.deleted_in(tier, prefix)
    }

    async fn restore_clip(&self, deleted: &super::DeletedClip) -> Result<(), StorageError> {
        self.restore_deleted(deleted).await
    }

    async fn purge_clip(&self, deleted: &super::DeletedClip) -> Result<(), StorageError> {
        self.purge_deleted(deleted).await
    }

    async fn clip_sha256(&self, clip: &Clip) -> Result<String, StorageError> {
        self.read_sha256(clip).await
    }

    async fn read_clip(&self, clip: &Clip) -> Result<super::ByteChunks, StorageError> {
        self.open_clip(clip).await
    }

    async fn server_date(&self) -> Result<Option<ServerDate>, StorageError> {
        self.read_server_date().await
    }
}
