//! The conformance suite of [`TierStore`]: what every backend must get right, written
//! once, generic over the store, so that each backend runs the same checks. Built with
//! the `testing` feature (and in the crate's own unit tests).
//!
//! A backend provides a [`Fixture`]: how to seed a clip and look at what is really
//! stored (versions, content hash, legal hold) without going through the trait, and a
//! second store over the same storage whose moves stop after a given step (as if the
//! process died there). Then [`conformance`] runs the suite:
//! - list with tags and sizes; the region proof;
//! - move hot → cool → legal hold: copied, SHA-256 recorded and verified, tags carried,
//!   the upload time (hot `LastModified`) recorded and carried (seen in the cool tier's
//!   listing where the store lists it, in the legal-hold tier's always), source
//!   deleted, held in the legal-hold tier with exactly one version;
//! - a move within a tier and a hold outside the legal-hold tier are refused; a
//!   cancelled batch of moves starts none;
//! - a held clip is refused by `delete_clips` (listed as held: before any request; held
//!   behind a stale listing: by the store), and kept;
//! - release, then one batch delete of clips of two tiers, no version lingering;
//! - a move stopped after its copy (hot → cool) or after its verification (into legal
//!   hold) leaves the source in place, and the next move completes it with exactly one
//!   copy (into legal hold: the verified copy is reused, not redone).
//!
//! Run on `S3TierStore` against MinIO and SeaweedFS (`tests/integration/storage/`)
//! and on [`super::memory::MemoryTierStore`] (its unit tests).

use std::{collections::HashMap, sync::Arc};

use anyhow::{Context, Result, ensure};
use futures::{FutureExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::{FaultHook, MoveStep, StepContext, StorageError, TierStore, Verification};
use crate::api::clip::{Clip, TAG_CATEGORY, TAG_RECORDED_AT, Tag, Tier};

/// What a conformance run needs from a backend besides the trait: seed clips, look at
/// what is really stored, and a store that stops a move part way.
// The suite is generic and awaits these in place: no `Send` bound is needed.
#[allow(async_fn_in_trait)]
pub trait Fixture {
    /// Write a clip into a tier (no recorded checksum), with tags.
    async fn put(&self, tier: Tier, key: &str, data: &[u8], tags: &[Tag]) -> Result<()>;
    /// Every stored version of a clip key in a tier: (version id, sha256 of content,
    /// legal hold on). Delete markers are not versions.
    async fn versions(&self, tier: Tier, key: &str) -> Result<Vec<(String, String, bool)>>;
    /// Another store over the same storage whose moves stop after `step` (its fault hook
    /// returns false there, see [`stop_after`]).
    async fn stopping_after(&self, step: MoveStep) -> Result<Box<dyn TierStore>>;
    /// Whether a listing of the hot and cool tiers reports each clip's recorded upload
    /// time: yes with MinIO's listing extension and in memory; not from a plain S3
    /// store (AWS, SeaweedFS) without `list_checksums`, which reads it only in the
    /// legal-hold tier (a HEAD per clip there); elsewhere the engine then counts from
    /// the later `LastModified`, and a move reads it with its HEAD of the source.
    fn lists_recorded_upload(&self) -> bool {
        true
    }
}

/// A fault hook that stops every move right after `step`.
pub fn stop_after(step: MoveStep) -> FaultHook {
    Arc::new(move |ctx: StepContext| async move { ctx.step != step }.boxed())
}

/// The SHA-256 of some bytes, lower-case hex.
pub fn sha_hex(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

/// `len` bytes of content that differ from key to key.
pub fn clip_data(key: &str, len: usize) -> Vec<u8> {
    let seed = Sha256::digest(key.as_bytes());
    (0..len).map(|i| seed[i % 32] ^ (i / 32) as u8).collect()
}

/// A clip's tags: a category and a recording time.
pub fn tags_for(category: &str) -> Vec<Tag> {
    vec![
        Tag::new(TAG_CATEGORY, category),
        Tag::new(TAG_RECORDED_AT, "2026-03-01T14:05:00Z"),
    ]
}

/// Every clip of a tier, by key.
pub async fn collect(
    store: &(impl TierStore + ?Sized),
    tier: Tier,
) -> Result<HashMap<String, Clip>> {
    let clips: Vec<Clip> = store.list(tier).try_collect().await?;
    Ok(clips.into_iter().map(|c| (c.key.clone(), c)).collect())
}

/// Run the suite (see the module doc) on an empty store and its fixture.
pub async fn conformance<S: TierStore + ?Sized, F: Fixture>(store: &S, fx: &F) -> Result<()> {
    moves_holds_and_deletes(store, fx).await?;
    interrupted_moves_converge(store, fx).await?;
    soft_deletes_restores_and_purges(store, fx).await
}

/// List, move hot → cool → legal hold, hold and release, refused and batch deletes.
async fn moves_holds_and_deletes<S: TierStore + ?Sized, F: Fixture>(
    store: &S,
    fx: &F,
) -> Result<()> {
    let data_a = clip_data("a", 3000);
    let data_b = clip_data("b", 1234);
    fx.put(
        Tier::Hot,
        "2026/03/a.mp4",
        &data_a,
        &tags_for("domestic-abuse"),
    )
    .await?;
    fx.put(
        Tier::Hot,
        "2026/03/b.mp4",
        &data_b,
        &tags_for("non-evidential"),
    )
    .await?;

    // List: both clips, with tags and sizes, keys relative to the tier prefix.
    let hot = collect(store, Tier::Hot).await?;
    ensure!(hot.len() == 2, "hot lists 2 clips, got {:?}", hot.keys());
    let a = hot.get("2026/03/a.mp4").context("clip a listed")?;
    ensure!(a.tier == Tier::Hot && a.size == 3000);
    ensure!(
        a.tag(TAG_CATEGORY) == Some("domestic-abuse"),
        "tags: {:?}",
        a.tags
    );
    ensure!(!a.legal_hold);

    // Proof before writes.
    let proof = store.verify_region().await?;
    ensure!(!proof.buckets.is_empty());

    // Nonsense is refused before anything is written; a cancelled batch starts nothing.
    ensure!(matches!(
        store.move_clip(a, Tier::Hot).await,
        Err(StorageError::InvalidInput(_))
    ));
    ensure!(matches!(
        store.set_legal_hold(a, true).await,
        Err(StorageError::InvalidInput(_))
    ));
    let stopped = CancellationToken::new();
    stopped.cancel();
    let none = store
        .move_clips(std::slice::from_ref(a), Tier::Cool, 4, &stopped)
        .await;
    ensure!(
        none.len() == 1 && none.iter().all(Option::is_none),
        "{none:?}"
    );
    ensure!(
        collect(store, Tier::Cool).await?.is_empty(),
        "nothing moved"
    );

    // hot → cool: copied, verified, recorded; source gone.
    let moved = store.move_clip(a, Tier::Cool).await?;
    ensure!(moved.copied && moved.source_deleted, "{moved:?}");
    ensure!(
        moved.sha256 == sha_hex(&data_a),
        "sha recorded is the content's"
    );
    ensure!(moved.verification != Verification::AlreadyComplete);
    ensure!(
        fx.versions(Tier::Hot, "2026/03/a.mp4").await?.is_empty(),
        "hot source deleted"
    );
    let cool = collect(store, Tier::Cool).await?;
    let a_cool = cool.get("2026/03/a.mp4").context("a in cool")?;
    ensure!(
        a_cool.tag(TAG_CATEGORY) == Some("domestic-abuse"),
        "tags travel with the clip"
    );
    ensure!(
        a_cool.uploaded_at == Some(a.last_modified)
            || (!fx.lists_recorded_upload() && a_cool.uploaded_at.is_none()),
        "the move out of hot records the upload time ({}): {a_cool:?}",
        a.last_modified
    );

    // cool → legal hold: held, exactly one version, content intact.
    let held = store.move_clip(a_cool, Tier::LegalHold).await?;
    ensure!(
        held.dst_version_id.is_some(),
        "legal-hold tier is versioned"
    );
    let lh = collect(store, Tier::LegalHold).await?;
    let a_lh = lh.get("2026/03/a.mp4").context("a in legal hold")?;
    ensure!(a_lh.legal_hold, "held after the move");
    ensure!(a_lh.sha256.as_deref() == Some(sha_hex(&data_a).as_str()));
    ensure!(a_lh.version_id == held.dst_version_id);
    ensure!(
        a_lh.uploaded_at == Some(a.last_modified),
        "the next move carries the recorded upload time: {a_lh:?}"
    );
    let versions = fx.versions(Tier::LegalHold, "2026/03/a.mp4").await?;
    ensure!(versions.len() == 1 && versions[0].1 == sha_hex(&data_a) && versions[0].2);
    ensure!(
        collect(store, Tier::Cool).await?.is_empty(),
        "cool source deleted"
    );

    // A held clip is refused by delete_clips without a request reaching the store.
    let report = store.delete_clips(std::slice::from_ref(a_lh)).await?;
    ensure!(report.deleted.is_empty() && report.failed.len() == 1);
    ensure!(
        report.failed[0].code == "LegalHoldOn" && !report.failed[0].retryable,
        "{:?}",
        report.failed
    );
    // Behind a stale listing (hold not seen), the store itself refuses; the clip stays.
    let stale = Clip {
        legal_hold: false,
        ..a_lh.clone()
    };
    let report = store.delete_clips(std::slice::from_ref(&stale)).await?;
    ensure!(
        report.deleted.is_empty() && report.failed.len() == 1 && !report.failed[0].retryable,
        "{report:?}"
    );
    let versions = fx.versions(Tier::LegalHold, "2026/03/a.mp4").await?;
    ensure!(
        versions.len() == 1 && versions[0].2,
        "still there and held: {versions:?}"
    );

    // Release, then delete both clips in one call.
    store.set_legal_hold(a_lh, false).await?;
    let lh = collect(store, Tier::LegalHold).await?;
    let a_lh = lh.get("2026/03/a.mp4").context("a still in legal hold")?;
    ensure!(!a_lh.legal_hold, "released");
    let b = hot.get("2026/03/b.mp4").context("b")?;
    let report = store.delete_clips(&[b.clone(), a_lh.clone()]).await?;
    ensure!(report.failed.is_empty(), "{:?}", report.failed);
    ensure!(report.deleted.len() == 2);
    ensure!(collect(store, Tier::Hot).await?.is_empty());
    ensure!(collect(store, Tier::LegalHold).await?.is_empty());
    ensure!(
        fx.versions(Tier::LegalHold, "2026/03/a.mp4")
            .await?
            .is_empty(),
        "no version lingers"
    );
    Ok(())
}

/// Soft deletes (a policy's restore window), on a store whose hot tier is versioned
/// `Enabled`: the clip leaves the listing and its version stays; the version listing
/// shows it with its tags beneath one marker; a restore brings back the same version and
/// bytes; soft-deleted again and purged, neither version nor marker is left. On a store
/// whose hot tier is not versioned: refused with `VersioningRequired`, nothing deleted.
pub async fn soft_deletes_restores_and_purges<S: TierStore + ?Sized, F: Fixture>(
    store: &S,
    fx: &F,
) -> Result<()> {
    let key = "2026/03/soft.mp4";
    let data = clip_data(key, 2500);
    fx.put(Tier::Hot, key, &data, &tags_for("non-evidential"))
        .await?;
    let clip = collect(store, Tier::Hot)
        .await?
        .remove(key)
        .context("listed")?;
    if !store.versioning_enabled(Tier::Hot).await? {
        let r = store.soft_delete_clips(std::slice::from_ref(&clip)).await?;
        ensure!(
            r.deleted.is_empty()
                && r.failed.len() == 1
                && r.failed[0].code == "VersioningRequired"
                && !r.failed[0].retryable,
            "{r:?}"
        );
        ensure!(
            fx.versions(Tier::Hot, key).await?.len() == 1,
            "nothing deleted"
        );
        let r = store.delete_clips(std::slice::from_ref(&clip)).await?;
        ensure!(r.deleted.len() == 1, "{r:?}");
        return Ok(());
    }
    let r = store.soft_delete_clips(std::slice::from_ref(&clip)).await?;
    ensure!(r.deleted.len() == 1 && r.failed.is_empty(), "{r:?}");
    ensure!(
        !collect(store, Tier::Hot).await?.contains_key(key),
        "no longer listed"
    );
    let versions = fx.versions(Tier::Hot, key).await?;
    ensure!(
        versions.len() == 1 && versions[0].1 == sha_hex(&data),
        "the version stays: {versions:?}"
    );
    let deleted: Vec<super::DeletedClip> =
        store.list_deleted(Tier::Hot, None).try_collect().await?;
    let d = deleted
        .iter()
        .find(|d| d.key == key)
        .with_context(|| format!("listed as deleted: {deleted:?}"))?;
    let data_version = d.data.as_ref().context("its data version")?;
    ensure!(
        data_version.version_id == clip.version_id
            && data_version.tag(TAG_CATEGORY) == Some("non-evidential")
            && d.markers.len() == 1,
        "{d:?}"
    );
    let by_prefix: Vec<super::DeletedClip> = store
        .list_deleted(Tier::Hot, Some(key))
        .try_collect()
        .await?;
    ensure!(by_prefix.len() == 1 && by_prefix[0] == *d, "{by_prefix:?}");

    store.restore_clip(d).await?;
    let back = collect(store, Tier::Hot)
        .await?
        .remove(key)
        .context("listed again")?;
    ensure!(
        back.version_id == clip.version_id,
        "the same version: {back:?}"
    );
    ensure!(fx.versions(Tier::Hot, key).await?[0].1 == sha_hex(&data));
    let deleted: Vec<super::DeletedClip> =
        store.list_deleted(Tier::Hot, None).try_collect().await?;
    ensure!(deleted.iter().all(|d| d.key != key), "{deleted:?}");

    let r = store.soft_delete_clips(std::slice::from_ref(&back)).await?;
    ensure!(r.deleted.len() == 1, "{r:?}");
    let deleted: Vec<super::DeletedClip> = store
        .list_deleted(Tier::Hot, Some(key))
        .try_collect()
        .await?;
    let d = deleted.first().context("deleted again")?;
    store.purge_clip(d).await?;
    ensure!(
        fx.versions(Tier::Hot, key).await?.is_empty(),
        "the version purged"
    );
    let deleted: Vec<super::DeletedClip> =
        store.list_deleted(Tier::Hot, None).try_collect().await?;
    ensure!(deleted.is_empty(), "no marker left: {deleted:?}");
    Ok(())
}

/// A move stopped part way (the "process" gone) keeps the source; the next move, from
/// the same listing, completes it with exactly one copy.
async fn interrupted_moves_converge<S: TierStore + ?Sized, F: Fixture>(
    store: &S,
    fx: &F,
) -> Result<()> {
    for (to, step) in [
        (Tier::Cool, MoveStep::Copied),
        (Tier::LegalHold, MoveStep::Verified),
    ] {
        let key = format!("2026/03/crash-{to}.mp4");
        let data = clip_data(&key, 2000);
        fx.put(Tier::Hot, &key, &data, &tags_for("murder")).await?;
        let clip = collect(store, Tier::Hot)
            .await?
            .remove(&key)
            .with_context(|| format!("{key} listed"))?;
        let crashing = fx.stopping_after(step).await?;
        let err = crashing
            .move_clip(&clip, to)
            .await
            .err()
            .with_context(|| format!("{key}: the move to {to} stops after {step}"))?;
        ensure!(
            matches!(err, StorageError::Interrupted { step: got, .. } if got == step),
            "{key}: {err}"
        );
        ensure!(err.retryable());
        drop(crashing);
        let src = fx.versions(Tier::Hot, &key).await?;
        ensure!(
            src.len() == 1 && src[0].1 == sha_hex(&data),
            "{key}: source kept after {step}: {src:?}"
        );

        let out = store.move_clip(&clip, to).await?;
        ensure!(
            out.source_deleted && out.sha256 == sha_hex(&data),
            "{key}: {out:?}"
        );
        if to == Tier::LegalHold {
            ensure!(!out.copied, "{key}: the verified copy is reused: {out:?}");
        }
        ensure!(
            fx.versions(Tier::Hot, &key).await?.is_empty(),
            "{key}: source deleted"
        );
        let dst = fx.versions(to, &key).await?;
        ensure!(
            dst.len() == 1 && dst[0].1 == sha_hex(&data) && dst[0].2 == (to == Tier::LegalHold),
            "{key}: exactly one verified copy, held in legal hold: {dst:?}"
        );
    }
    Ok(())
}
