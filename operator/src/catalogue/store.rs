//! [`CataloguedStore`]: a [`TierStore`] that lists through the catalogue and otherwise
//! passes every call to the store it wraps. After each action on a clip (move, hold,
//! release, delete, a re-read at the point of no return) it forgets what it knew of that
//! clip in the tiers involved, so the next listing reads it again: one read per clip
//! acted on, and no stale hold or tag survives the operator's own change.

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use tokio_util::sync::CancellationToken;

use super::{BucketCatalogue, listing};
use crate::{
    api::clip::{Clip, Tag, Tier},
    storage::{
        ClipFacts, DeleteReport, DeletedClip, KeyRange, ListedObject, MoveOutcome, RegionProof,
        ServerDate, StorageError, TierStore,
        claim::{ClaimOutcome, Owner, TakeOver},
    },
};

/// A store whose listings go through a bucket's catalogue.
pub struct CataloguedStore {
    inner: Arc<dyn TierStore>,
    cat: BucketCatalogue,
}

impl std::fmt::Debug for CataloguedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CataloguedStore").finish_non_exhaustive()
    }
}

impl CataloguedStore {
    /// Wrap `inner` with the catalogue `cat`.
    pub fn new(inner: Arc<dyn TierStore>, cat: BucketCatalogue) -> Self {
        CataloguedStore { inner, cat }
    }

    /// [`TierStore::list`] as at `now` (which facts are due for their refresh): what the
    /// trait's `list` does with the wall clock.
    pub fn list_at(
        &self,
        tier: Tier,
        now: chrono::DateTime<chrono::Utc>,
    ) -> BoxStream<'_, Result<Clip, StorageError>> {
        listing::list(&self.cat, self.inner.as_ref(), tier, now)
    }

    async fn forget(&self, tier: Tier, clips: &[Clip]) {
        self.cat
            .forget(tier, clips.iter().map(|c| c.key.clone()).collect())
            .await;
    }

    /// Forget each clip in the tier it was listed in.
    async fn forget_listed(&self, clips: &[Clip]) {
        for tier in Tier::ALL {
            let keys = clips
                .iter()
                .filter(|c| c.tier == tier)
                .map(|c| c.key.clone())
                .collect();
            self.cat.forget(tier, keys).await;
        }
    }
}

#[async_trait]
impl TierStore for CataloguedStore {
    fn list(&self, tier: Tier) -> BoxStream<'_, Result<Clip, StorageError>> {
        self.list_at(tier, chrono::Utc::now())
    }

    fn list_objects(
        &self,
        tier: Tier,
        range: KeyRange,
    ) -> BoxStream<'_, Result<ListedObject, StorageError>> {
        self.inner.list_objects(tier, range)
    }

    async fn read_facts(
        &self,
        tier: Tier,
        object: &ListedObject,
    ) -> Result<Option<ClipFacts>, StorageError> {
        self.inner.read_facts(tier, object).await
    }

    async fn verify_region(&self) -> Result<RegionProof, StorageError> {
        self.inner.verify_region().await
    }

    async fn move_clip(&self, clip: &Clip, to: Tier) -> Result<MoveOutcome, StorageError> {
        let result = self.inner.move_clip(clip, to).await;
        let one = std::slice::from_ref(clip);
        self.forget(clip.tier, one).await;
        self.forget(to, one).await;
        result
    }

    async fn move_clips(
        &self,
        clips: &[Clip],
        to: Tier,
        concurrency: usize,
        stop: &CancellationToken,
    ) -> Vec<Option<Result<MoveOutcome, StorageError>>> {
        let results = self.inner.move_clips(clips, to, concurrency, stop).await;
        self.forget_listed(clips).await;
        self.forget(to, clips).await;
        results
    }

    async fn set_legal_hold(&self, clip: &Clip, on: bool) -> Result<(), StorageError> {
        let result = self.inner.set_legal_hold(clip, on).await;
        self.forget(clip.tier, std::slice::from_ref(clip)).await;
        result
    }

    async fn set_tags(&self, clip: &Clip, tags: &[Tag]) -> Result<(), StorageError> {
        let result = self.inner.set_tags(clip, tags).await;
        self.forget(clip.tier, std::slice::from_ref(clip)).await;
        result
    }

    async fn claim(
        &self,
        owner: &Owner,
        take_over: Option<&TakeOver>,
    ) -> Result<ClaimOutcome, StorageError> {
        self.inner.claim(owner, take_over).await
    }

    async fn delete_clips(&self, clips: &[Clip]) -> Result<DeleteReport, StorageError> {
        let result = self.inner.delete_clips(clips).await;
        self.forget_listed(clips).await;
        result
    }

    async fn soft_delete_clips(&self, clips: &[Clip]) -> Result<DeleteReport, StorageError> {
        let result = self.inner.soft_delete_clips(clips).await;
        self.forget_listed(clips).await;
        result
    }

    async fn versioning_enabled(&self, tier: Tier) -> Result<bool, StorageError> {
        self.inner.versioning_enabled(tier).await
    }

    fn list_deleted<'a>(
        &'a self,
        tier: Tier,
        prefix: Option<&'a str>,
    ) -> BoxStream<'a, Result<DeletedClip, StorageError>> {
        self.inner.list_deleted(tier, prefix)
    }

    /// A restored clip is listed again: its tier's memo no longer holds.
    async fn restore_clip(&self, deleted: &DeletedClip) -> Result<(), StorageError> {
        let result = self.inner.restore_clip(deleted).await;
        if let Some(clip) = &deleted.data {
            self.forget(deleted.tier, std::slice::from_ref(clip)).await;
        }
        self.cat.set_memo(deleted.tier, None).await;
        result
    }

    async fn purge_clip(&self, deleted: &DeletedClip) -> Result<(), StorageError> {
        self.inner.purge_clip(deleted).await
    }

    async fn clip_sha256(&self, clip: &Clip) -> Result<String, StorageError> {
        self.inner.clip_sha256(clip).await
    }

    async fn read_clip(&self, clip: &Clip) -> Result<crate::storage::ByteChunks, StorageError> {
        self.inner.read_clip(clip).await
    }

    async fn current_tags(&self, clips: &[Clip]) -> Result<Vec<Option<Vec<Tag>>>, StorageError> {
        let result = self.inner.current_tags(clips).await;
        if let Ok(now) = &result {
            // A clip whose tags changed since they were catalogued is read again next time.
            let stale: Vec<Clip> = clips
                .iter()
                .zip(now)
                .filter(|(c, t)| {
                    t.as_ref()
                        .is_none_or(|t| !crate::api::clip::same_tags(t, &c.tags))
                })
                .map(|(c, _)| c.clone())
                .collect();
            self.forget_listed(&stale).await;
        }
        result
    }

    async fn server_date(&self) -> Result<Option<ServerDate>, StorageError> {
        self.inner.server_date().await
    }
}
