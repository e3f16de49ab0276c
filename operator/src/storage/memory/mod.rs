//! [`MemoryTierStore`]: a [`TierStore`] in memory, for fast tests of everything above the
//! storage layer (the sweep, the controller) without an S3 server. Built with the
//! `testing` feature (and in the crate's own unit tests).
//!
//! It models what the operator relies on, with the S3 store's semantics:
//! - three tiers, each a bucket of S3 object versions; the legal-hold tier is always
//!   versioned, hot and cool are not unless asked ([`MemoryTierStore::versioned`]);
//!   every version has its tags, user metadata (incl. the recorded SHA-256,
//!   [`META_SHA256`]), storage class, `LastModified` and legal hold;
//! - a version under legal hold cannot be deleted: `delete_clips` refuses a clip listed
//!   as held (`LegalHoldOn`) and a held version behind a stale listing (`AccessDenied`);
//! - moves follow the steps of the S3 mover (`storage/s3/mover.rs`): source version
//!   (refused when held), expected SHA-256 (recorded, else hashed), a verified copy
//!   already in a versioned destination reused, else copy, verify, then hold (into the
//!   legal-hold tier), then delete the source version; the [`FaultHook`] is called after
//!   the same steps, and returning `false` stops the move there with
//!   [`StorageError::Interrupted`], leaving what a crash would leave;
//! - the region proof, refused when the buckets are put outside the allowed regions
//!   ([`MemoryTierStore::set_region`]), before every write; a legal-hold tier without
//!   Object Lock refused ([`MemoryTierStore::set_object_lock`]);
//! - injected failures: the next `n` calls of an operation fail with a retryable
//!   [`StorageError::Transient`] ([`MemoryTierStore::fail_next`]).
//!
//! Not modelled: tiers sharing a bucket (storage-class changes in place), key prefixes,
//! multipart copies, throttling and retries, batched source deletes (`move_clips` is the
//! trait's default, one `move_clip` at a time), exact request counts (the `requests` of
//! outcomes and reports count simulated calls). A move always reads the stored source
//! version (as the S3 store does after a HEAD), so a hold placed after the listing is
//! seen at step 2 rather than by the refused source delete.
//!
//! It implements the conformance suite's [`Fixture`], and passes the suite (the unit
//! tests in `tests.rs`).

mod mover;
mod state;
#[cfg(test)]
mod tests;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::{
    StreamExt,
    stream::{self, BoxStream},
};

pub use self::state::MemoryOp;
use self::state::{State, Version, sha_hex};
use super::{
    ClipFacts, DeleteFailure, DeleteReport, DeletedClip, FaultHook, KeyRange, ListedObject,
    MoveOutcome, MoveStep, RegionProof, StorageError, TierStore,
    claim::{Claim, ClaimOutcome, Owner, TakeOver},
    conformance::{self, Fixture},
};
use crate::api::clip::{Clip, META_SHA256, Tag, Tier};

/// An object to seed into a [`MemoryTierStore`] ([`MemoryTierStore::put_object`]).
#[derive(Debug, Clone, Default)]
pub struct MemoryObject {
    /// The content.
    pub data: Vec<u8>,
    /// The object tags.
    pub tags: Vec<Tag>,
    /// User metadata (without the `x-amz-meta-` prefix).
    pub metadata: BTreeMap<String, String>,
    /// `LastModified`; `None`: the store's clock.
    pub last_modified: Option<DateTime<Utc>>,
    /// Whether the version is written with legal hold ON.
    pub legal_hold: bool,
}

impl MemoryObject {
    /// An object with this content, no tags, no metadata.
    pub fn new(data: impl Into<Vec<u8>>) -> Self {
        MemoryObject {
            data: data.into(),
            ..MemoryObject::default()
        }
    }

    /// Add a tag.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push(Tag::new(key, value));
        self
    }

    /// Replace the tags.
    pub fn tags(mut self, tags: &[Tag]) -> Self {
        self.tags = tags.to_vec();
        self
    }

    /// Set `LastModified` (the upload time, in the hot tier).
    pub fn last_modified(mut self, at: DateTime<Utc>) -> Self {
        self.last_modified = Some(at);
        self
    }

    /// Record the content's SHA-256 in the metadata, as a clip moved before carries it.
    pub fn recorded_sha256(mut self) -> Self {
        let sha = sha_hex(&self.data);
        self.metadata.insert(META_SHA256.to_string(), sha);
        self
    }

    /// Record this SHA-256, whatever the content (a clip altered after it was recorded).
    pub fn recorded_as(mut self, sha256: impl Into<String>) -> Self {
        self.metadata.insert(META_SHA256.to_string(), sha256.into());
        self
    }

    /// Write the version with legal hold ON.
    pub fn held(mut self) -> Self {
        self.legal_hold = true;
        self
    }
}

/// One stored version, as a test inspects it ([`MemoryTierStore::stored_versions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    /// The version id (`null` in an unversioned tier).
    pub version_id: String,
    /// The SHA-256 of the content (hex).
    pub sha256: String,
    /// The size in bytes.
    pub size: u64,
    /// The object tags.
    pub tags: Vec<Tag>,
    /// The user metadata.
    pub metadata: BTreeMap<String, String>,
    /// The storage class.
    pub storage_class: String,
    /// `LastModified`.
    pub last_modified: DateTime<Utc>,
    /// Whether legal hold is ON.
    pub legal_hold: bool,
}

/// The in-memory tier store. Stores made with [`MemoryTierStore::sharing`] see the same
/// objects (another "process" over the same buckets), each with its own fault hook.
pub struct MemoryTierStore {
    state: Arc<Mutex<State>>,
    hook: Mutex<Option<FaultHook>>,
}

impl std::fmt::Debug for MemoryTierStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTierStore").finish_non_exhaustive()
    }
}

impl Default for MemoryTierStore {
    fn default() -> Self {
        Self::new()
    }
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryTierStore {
    /// An empty store: hot (`STANDARD`) and cool (`STANDARD_IA`) unversioned, the
    /// legal-hold tier versioned with Object Lock, all in `eu-west-2` (allowed).
    pub fn new() -> Self {
        MemoryTierStore {
            state: Arc::new(Mutex::new(State::new())),
            hook: Mutex::new(None),
        }
    }

    /// Make the hot or cool tier versioned (or not); the legal-hold tier always is.
    pub fn versioned(self, tier: Tier, on: bool) -> Self {
        if tier != Tier::LegalHold {
            self.state().tier_mut(tier).versioned = on;
        }
        self
    }

    /// Another store over the same objects and settings, without a fault hook.
    pub fn sharing(&self) -> Self {
        MemoryTierStore {
            state: self.state.clone(),
            hook: Mutex::new(None),
        }
    }

    /// Another store over the same objects whose moves call `hook` after each step.
    pub fn sharing_with_hook(&self, hook: FaultHook) -> Self {
        let store = self.sharing();
        store.set_fault_hook(Some(hook));
        store
    }

    /// Set (or remove) the fault hook of this store's moves.
    pub fn set_fault_hook(&self, hook: Option<FaultHook>) {
        *relock(&self.hook) = hook;
    }

    /// Where the buckets say they are; outside the allowed regions (`eu-west-2`) every
    /// write and `verify_region` fail with [`StorageError::RegionNotAllowed`].
    pub fn set_region(&self, region: &str) {
        self.state().region = region.to_string();
    }

    /// Whether the legal-hold tier has Object Lock; without it, moves into that tier and
    /// `set_legal_hold` fail with [`StorageError::ObjectLockMissing`].
    pub fn set_object_lock(&self, on: bool) {
        self.state().object_lock = on;
    }

    /// Make the next `n` calls of `op` fail with a retryable [`StorageError::Transient`]
    /// (replacing any count not yet used).
    pub fn fail_next(&self, op: MemoryOp, n: usize) {
        self.state().faults.insert(op, n);
    }

    /// Calls of `op` so far (failed ones included; `Delete` counts one per version).
    pub fn calls(&self, op: MemoryOp) -> u64 {
        self.state().calls.get(&op).copied().unwrap_or(0)
    }

    /// Fix the time written objects get (default: the system clock).
    pub fn set_clock(&self, now: DateTime<Utc>) {
        self.state().clock = Some(now);
    }

    /// The bucket name of a tier (as errors and step contexts name it).
    pub fn bucket(&self, tier: Tier) -> String {
        self.state().tier(tier).bucket.clone()
    }

    /// Write an object into a tier, in the tier's storage class; its version id (`null`
    /// in an unversioned tier).
    pub fn put_object(&self, tier: Tier, key: &str, object: MemoryObject) -> String {
        let mut s = self.state();
        let version = Version {
            id: String::new(),
            data: object.data,
            tags: object.tags,
            metadata: object.metadata,
            class: s.tier(tier).class.clone(),
            last_modified: object.last_modified.unwrap_or_else(|| s.now()),
            legal_hold: object.legal_hold,
        };
        s.write(tier, key, version)
    }

    /// Change one version (`None`: the current one) of `key` behind the operator's back.
    fn change(
        &self,
        tier: Tier,
        key: &str,
        version: Option<&str>,
        f: impl FnOnce(&mut Version),
    ) -> Result<(), StorageError> {
        let mut s = self.state();
        let bucket = s.tier(tier).bucket.clone();
        let v = s
            .find_mut(tier, key, version)
            .ok_or_else(|| StorageError::NotFound {
                bucket,
                key: key.to_string(),
            })?;
        f(v);
        Ok(())
    }

    /// Replace the tags of the current version of `key`, behind the operator's back (an
    /// officer re-categorising a clip after it was listed).
    pub fn retag(&self, tier: Tier, key: &str, tags: &[Tag]) -> Result<(), StorageError> {
        self.change(tier, key, None, |v| v.tags = tags.to_vec())
    }

    /// Set or clear the legal hold of a version (`None`: the current one) in any tier,
    /// behind the operator's back (e.g. a hold placed after a listing).
    pub fn set_hold(
        &self,
        tier: Tier,
        key: &str,
        version: Option<&str>,
        on: bool,
    ) -> Result<(), StorageError> {
        self.change(tier, key, version, |v| v.legal_hold = on)
    }

    /// Replace the content of the current version, metadata (and recorded SHA-256)
    /// unchanged: corruption at rest, or tampering.
    pub fn tamper(&self, tier: Tier, key: &str, data: &[u8]) -> Result<(), StorageError> {
        self.change(tier, key, None, |v| v.data = data.to_vec())
    }

    /// Every stored version of a key in a tier, oldest first (delete markers left out).
    pub fn stored_versions(&self, tier: Tier, key: &str) -> Vec<StoredVersion> {
        let s = self.state();
        let Some(slots) = s.tier(tier).objects.get(key) else {
            return Vec::new();
        };
        slots
            .iter()
            .filter_map(|slot| match slot {
                state::Slot::Data(v) => Some(StoredVersion {
                    version_id: v.id.clone(),
                    sha256: sha_hex(&v.data),
                    size: v.size(),
                    tags: v.tags.clone(),
                    metadata: v.metadata.clone(),
                    storage_class: v.class.clone(),
                    last_modified: v.last_modified,
                    legal_hold: v.legal_hold,
                }),
                state::Slot::Marker { .. } => None,
            })
            .collect()
    }

    /// The keys listed in a tier now (current versions), sorted.
    pub fn keys(&self, tier: Tier) -> Vec<String> {
        self.state()
            .clips(tier)
            .into_iter()
            .map(|c| c.key)
            .collect()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        relock(&self.state)
    }
}

#[async_trait]
impl TierStore for MemoryTierStore {
    fn list(&self, tier: Tier) -> BoxStream<'_, Result<Clip, StorageError>> {
        let mut s = self.state();
        let items: Vec<Result<Clip, StorageError>> = match s.call(MemoryOp::List, tier) {
            Ok(()) => s.clips(tier).into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        stream::iter(items).boxed()
    }

    fn list_objects(
        &self,
        tier: Tier,
        range: KeyRange,
    ) -> BoxStream<'_, Result<ListedObject, StorageError>> {
        let mut s = self.state();
        let items: Vec<Result<ListedObject, StorageError>> = match s.call(MemoryOp::List, tier) {
            Ok(()) => s
                .listed(tier)
                .into_iter()
                .filter(|o| range.contains(&o.key))
                .map(Ok)
                .collect(),
            Err(e) => vec![Err(e)],
        };
        stream::iter(items).boxed()
    }

    async fn read_facts(
        &self,
        tier: Tier,
        object: &ListedObject,
    ) -> Result<Option<ClipFacts>, StorageError> {
        let mut s = self.state();
        s.call(MemoryOp::ReadFacts, tier)?;
        Ok(s.find(tier, &object.key, object.version_id.as_deref())
            .map(|v| ClipFacts {
                tags: v.tags.clone(),
                sha256: v.recorded(),
                legal_hold: v.legal_hold,
                uploaded_at: v.uploaded_at(),
                plain_headers: None,
            }))
    }

    async fn verify_region(&self) -> Result<RegionProof, StorageError> {
        self.state().prove()
    }

    async fn set_tags(&self, clip: &Clip, tags: &[Tag]) -> Result<(), StorageError> {
        self.state().prove()?;
        self.change(clip.tier, &clip.key, clip.version_id.as_deref(), |v| {
            v.tags = tags.to_vec()
        })
    }

    async fn current_tags(&self, clips: &[Clip]) -> Result<Vec<Option<Vec<Tag>>>, StorageError> {
        let mut s = self.state();
        let mut out = Vec::with_capacity(clips.len());
        for clip in clips {
            s.call(MemoryOp::List, clip.tier)?;
            out.push(
                s.find(clip.tier, &clip.key, clip.version_id.as_deref())
                    .map(|v| v.tags.clone()),
            );
        }
        Ok(out)
    }

    async fn claim(
        &self,
        owner: &Owner,
        take_over: Option<&TakeOver>,
    ) -> Result<ClaimOutcome, StorageError> {
        let mut s = self.state();
        s.prove()?;
        let mut taken_over = Vec::new();
        for tier in Tier::ALL {
            let bucket = s.tier(tier).bucket.clone();
            match s.claims.get(&bucket).cloned() {
                Some(c) if c.owner.uid == owner.uid => {}
                Some(c) if take_over.is_some_and(|t| t.0 == c.owner.uid) => {
                    let claim = Claim {
                        owner: owner.clone(),
                        claimed_at: chrono::Utc::now(),
                        taken_over_from: Some(c.owner.clone()),
                        ..c
                    };
                    s.claims.insert(bucket, claim.clone());
                    taken_over.push(claim);
                }
                Some(c) => {
                    return Ok(ClaimOutcome::ClaimedBy {
                        ours: format!("{bucket}/"),
                        claim: Box::new(c),
                    });
                }
                None => {
                    let claim = Claim {
                        bucket: bucket.clone(),
                        prefix: String::new(),
                        owner: owner.clone(),
                        claimed_at: chrono::Utc::now(),
                        taken_over_from: None,
                    };
                    s.claims.insert(bucket, claim);
                }
            }
        }
        Ok(ClaimOutcome::Owned { taken_over })
    }

    async fn move_clip(&self, clip: &Clip, to: Tier) -> Result<MoveOutcome, StorageError> {
        self.move_one(clip, to).await
    }

    async fn set_legal_hold(&self, clip: &Clip, on: bool) -> Result<(), StorageError> {
        if clip.tier != Tier::LegalHold {
            return Err(StorageError::InvalidInput(format!(
                "clip {} is in tier {}, not the legal-hold tier",
                clip.key, clip.tier
            )));
        }
        self.hold(Tier::LegalHold, &clip.key, clip.version_id.as_deref(), on)
    }

    async fn delete_clips(&self, clips: &[Clip]) -> Result<DeleteReport, StorageError> {
        let mut report = DeleteReport::default();
        if clips.is_empty() {
            return Ok(report);
        }
        let mut s = self.state();
        s.prove()?;
        for tier in Tier::ALL {
            let mut sent: u32 = 0;
            for c in clips.iter().filter(|c| c.tier == tier) {
                if c.legal_hold {
                    let why = "the clip is under legal hold; release it first";
                    report
                        .failed
                        .push(DeleteFailure::new(c, "LegalHoldOn", why, false));
                    continue;
                }
                if tier == Tier::LegalHold && c.version_id.is_none() {
                    let why = "a legal-hold tier clip is deleted by version only";
                    report
                        .failed
                        .push(DeleteFailure::new(c, "VersionRequired", why, false));
                    continue;
                }
                sent += 1;
                if let Err(e) = s.call(MemoryOp::Delete, tier) {
                    report
                        .failed
                        .push(DeleteFailure::new(c, "InternalError", e.to_string(), true));
                    continue;
                }
                match s.delete(tier, &c.key, c.version_id.as_deref()) {
                    Ok(()) => report.deleted.push(c.clone()),
                    Err(_) => {
                        let why = "Object is WORM protected and cannot be overwritten";
                        report
                            .failed
                            .push(DeleteFailure::new(c, "AccessDenied", why, false));
                    }
                }
            }
            report.requests += sent.div_ceil(1000);
        }
        Ok(report)
    }

    async fn soft_delete_clips(&self, clips: &[Clip]) -> Result<DeleteReport, StorageError> {
        let mut report = DeleteReport::default();
        if clips.is_empty() {
            return Ok(report);
        }
        let mut s = self.state();
        s.prove()?;
        for c in clips {
            if c.tier == Tier::LegalHold {
                report.failed.push(DeleteFailure::new(
                    c,
                    "NotSoftDeletable",
                    "clips are soft-deleted from the hot and cool tiers only",
                    false,
                ));
            } else if !s.tier(c.tier).versioned {
                report.failed.push(DeleteFailure::new(
                    c,
                    "VersioningRequired",
                    "the bucket does not have versioning Enabled; kept",
                    false,
                ));
            } else if c.legal_hold {
                report.failed.push(DeleteFailure::new(
                    c,
                    "LegalHoldOn",
                    "the clip is under legal hold; release it first",
                    false,
                ));
            } else if let Err(e) = s.call(MemoryOp::Delete, c.tier) {
                report
                    .failed
                    .push(DeleteFailure::new(c, "InternalError", e.to_string(), true));
            } else {
                // A delete without a version: a marker on top; never refused.
                let _ = s.delete(c.tier, &c.key, None);
                report.deleted.push(c.clone());
            }
        }
        report.requests = 1;
        Ok(report)
    }

    async fn versioning_enabled(&self, tier: Tier) -> Result<bool, StorageError> {
        Ok(self.state().tier(tier).versioned)
    }

    fn list_deleted<'a>(
        &'a self,
        tier: Tier,
        prefix: Option<&'a str>,
    ) -> BoxStream<'a, Result<DeletedClip, StorageError>> {
        let found = self.state().deleted(tier, prefix.unwrap_or(""));
        stream::iter(found.into_iter().map(Ok)).boxed()
    }

    async fn read_clip(&self, clip: &Clip) -> Result<super::ByteChunks, StorageError> {
        let s = self.state();
        let v = s.listed_version(clip)?;
        let data = bytes::Bytes::from(v.data.clone());
        Ok(Box::pin(futures::stream::once(async move { Ok(data) })))
    }

    async fn clip_sha256(&self, clip: &Clip) -> Result<String, StorageError> {
        let s = self.state();
        let v = s.listed_version(clip)?;
        Ok(v.recorded().unwrap_or_else(|| sha_hex(&v.data)))
    }

    async fn restore_clip(&self, deleted: &DeletedClip) -> Result<(), StorageError> {
        let mut s = self.state();
        s.prove()?;
        if deleted.data.is_none() {
            return Err(StorageError::InvalidInput(format!(
                "{} has no data version under its delete marker",
                deleted.key
            )));
        }
        for m in &deleted.markers {
            s.call(MemoryOp::Delete, deleted.tier)?;
            let _ = s.delete(deleted.tier, &deleted.key, Some(m));
        }
        Ok(())
    }

    async fn purge_clip(&self, deleted: &DeletedClip) -> Result<(), StorageError> {
        let mut s = self.state();
        s.prove()?;
        if let Some(data) = &deleted.data {
            s.call(MemoryOp::Delete, deleted.tier)?;
            if s.delete(deleted.tier, &deleted.key, data.version_id.as_deref())
                .is_err()
            {
                return Err(StorageError::InvalidInput(format!(
                    "{} is under legal hold: not purged",
                    deleted.key
                )));
            }
        }
        for m in &deleted.markers {
            let _ = s.delete(deleted.tier, &deleted.key, Some(m));
        }
        Ok(())
    }
}

impl Fixture for MemoryTierStore {
    async fn put(&self, tier: Tier, key: &str, data: &[u8], tags: &[Tag]) -> anyhow::Result<()> {
        self.put_object(tier, key, MemoryObject::new(data).tags(tags));
        Ok(())
    }

    async fn versions(&self, tier: Tier, key: &str) -> anyhow::Result<Vec<(String, String, bool)>> {
        Ok(self
            .stored_versions(tier, key)
            .into_iter()
            .map(|v| (v.version_id, v.sha256, v.legal_hold))
            .collect())
    }

    async fn stopping_after(&self, step: MoveStep) -> anyhow::Result<Box<dyn TierStore>> {
        Ok(Box::new(
            self.sharing_with_hook(conformance::stop_after(step)),
        ))
    }
}
