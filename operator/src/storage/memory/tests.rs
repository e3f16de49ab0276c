//! The conformance suite on the in-memory store (as laid out by default, and with every
//! tier versioned), and the knobs tests rely on: injected failures, region and Object
//! Lock refusals, tampering, holds placed behind a listing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::storage::{
    StepContext,
    conformance::{clip_data, collect, conformance, stop_after, tags_for},
};

fn seeded(key: &str) -> (MemoryTierStore, Clip, Vec<u8>) {
    let store = MemoryTierStore::new();
    let data = clip_data(key, 500);
    store.put_object(
        Tier::Hot,
        key,
        MemoryObject::new(data.clone()).tags(&tags_for("murder")),
    );
    let clip = store.state().clips(Tier::Hot).remove(0);
    (store, clip, data)
}

#[tokio::test]
async fn conformance_suite_passes_in_memory() {
    let store = MemoryTierStore::new();
    conformance(&store, &store).await.unwrap();
    // Behind a trait object too.
    let dyn_store: Arc<dyn TierStore> = Arc::new(store);
    assert!(
        collect(dyn_store.as_ref(), Tier::Hot)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn conformance_suite_passes_with_every_tier_versioned() {
    let store = MemoryTierStore::new()
        .versioned(Tier::Hot, true)
        .versioned(Tier::Cool, true);
    conformance(&store, &store).await.unwrap();
}

#[tokio::test]
async fn injected_failures_fail_the_next_calls_then_stop() {
    let (store, clip, data) = seeded("a.mp4");
    store.fail_next(MemoryOp::Copy, 2);
    for _ in 0..2 {
        let err = store.move_clip(&clip, Tier::Cool).await.unwrap_err();
        assert!(
            matches!(
                &err,
                StorageError::Transient {
                    op: "copy_object",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.retryable());
    }
    assert!(store.keys(Tier::Cool).is_empty());
    assert_eq!(store.calls(MemoryOp::Copy), 2);

    // A failed source delete fails the move after a verified copy: the clip is in both
    // tiers, and the next move completes it.
    store.fail_next(MemoryOp::Delete, 1);
    let err = store.move_clip(&clip, Tier::Cool).await.unwrap_err();
    assert!(matches!(
        err,
        StorageError::Transient {
            op: "delete_object",
            ..
        }
    ));
    assert_eq!(store.keys(Tier::Hot), ["a.mp4"]);
    assert_eq!(store.keys(Tier::Cool), ["a.mp4"]);
    let out = store.move_clip(&clip, Tier::Cool).await.unwrap();
    assert!(out.source_deleted && out.sha256 == sha_hex(&data));
    assert!(store.keys(Tier::Hot).is_empty());

    // delete_clips reports each failed clip, retryable, and keeps it.
    let cool = store.state().clips(Tier::Cool);
    store.fail_next(MemoryOp::Delete, 1);
    let report = store.delete_clips(&cool).await.unwrap();
    assert!(report.deleted.is_empty());
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].retryable && report.failed[0].code == "InternalError");
    assert_eq!(store.keys(Tier::Cool), ["a.mp4"]);

    // A failed listing is an error, not an empty tier.
    store.fail_next(MemoryOp::List, 1);
    assert!(collect(&store, Tier::Cool).await.is_err());
    assert_eq!(collect(&store, Tier::Cool).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_store_outside_the_allowed_regions_writes_nothing() {
    let (store, clip, _) = seeded("a.mp4");
    store.set_region("us-east-1");
    match store.verify_region().await {
        Err(StorageError::RegionNotAllowed { found, allowed, .. }) => {
            assert_eq!(found, "us-east-1");
            assert_eq!(allowed, ["eu-west-2"]);
        }
        other => panic!("expected RegionNotAllowed, got {other:?}"),
    }
    assert!(matches!(
        store.move_clip(&clip, Tier::Cool).await,
        Err(StorageError::RegionNotAllowed { .. })
    ));
    assert!(matches!(
        store.delete_clips(std::slice::from_ref(&clip)).await,
        Err(StorageError::RegionNotAllowed { .. })
    ));
    assert_eq!(store.keys(Tier::Hot), ["a.mp4"]);
    assert!(store.keys(Tier::Cool).is_empty());
    assert_eq!(
        store.calls(MemoryOp::Copy) + store.calls(MemoryOp::Delete),
        0
    );
    store.set_region("eu-west-2");
    let proof = store.verify_region().await.unwrap();
    assert_eq!(proof.buckets.len(), 3);
}

#[tokio::test]
async fn a_legal_hold_tier_without_object_lock_is_refused() {
    let (store, clip, _) = seeded("a.mp4");
    store.set_object_lock(false);
    let err = store.move_clip(&clip, Tier::LegalHold).await.unwrap_err();
    assert!(
        matches!(err, StorageError::ObjectLockMissing { ref bucket } if *bucket == store.bucket(Tier::LegalHold))
    );
    assert_eq!(store.keys(Tier::Hot), ["a.mp4"]);
    assert!(store.keys(Tier::LegalHold).is_empty());
    // Other tiers still work.
    assert!(
        store
            .move_clip(&clip, Tier::Cool)
            .await
            .unwrap()
            .source_deleted
    );
}

#[tokio::test]
async fn a_clip_altered_after_its_checksum_was_recorded_is_never_moved() {
    let store = MemoryTierStore::new();
    let original = clip_data("original", 300);
    store.put_object(
        Tier::Hot,
        "t.mp4",
        MemoryObject::new(original).recorded_sha256(),
    );
    store.tamper(Tier::Hot, "t.mp4", b"something else").unwrap();
    let clip = store.state().clips(Tier::Hot).remove(0);
    for _ in 0..2 {
        let err = store.move_clip(&clip, Tier::Cool).await.unwrap_err();
        assert!(
            matches!(err, StorageError::ChecksumMismatch { ref found, .. } if *found == sha_hex(b"something else")),
            "{err}"
        );
        assert!(err.retryable());
    }
    assert_eq!(store.stored_versions(Tier::Hot, "t.mp4").len(), 1);
    // The copy exists (verification failed after it) but the source was kept.
    assert_eq!(store.keys(Tier::Hot), ["t.mp4"]);
}

#[tokio::test]
async fn a_hook_stops_after_exactly_its_step_and_sees_the_destination() {
    for step in [
        MoveStep::Copied,
        MoveStep::Verified,
        MoveStep::Held,
        MoveStep::SourceDeleted,
    ] {
        let (store, clip, data) = seeded("h.mp4");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let stop = stop_after(step);
        let hook: FaultHook = Arc::new(move |ctx: StepContext| {
            relock(&log).push((ctx.step, ctx.dst_version_id.is_some()));
            stop(ctx)
        });
        let crashing = store.sharing_with_hook(hook);
        let err = crashing
            .move_clip(&clip, Tier::LegalHold)
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::Interrupted { step: s, .. } if s == step));
        let steps: Vec<MoveStep> = relock(&seen).iter().map(|(s, _)| *s).collect();
        let all = [
            MoveStep::Copied,
            MoveStep::Verified,
            MoveStep::Held,
            MoveStep::SourceDeleted,
        ];
        let upto = all.iter().position(|s| *s == step).unwrap() + 1;
        assert_eq!(steps, all[..upto], "steps in order, none after {step}");
        assert!(relock(&seen).iter().all(|(_, versioned)| *versioned));
        let src_kept = step != MoveStep::SourceDeleted;
        assert_eq!(store.keys(Tier::Hot).len(), usize::from(src_kept), "{step}");
        // The other store (no hook) completes the move.
        let out = store.move_clip(&clip, Tier::LegalHold).await.unwrap();
        assert!(!out.copied, "{step}: the verified copy is reused: {out:?}");
        assert_eq!(out.source_deleted, src_kept, "{step}");
        let dst = store.stored_versions(Tier::LegalHold, "h.mp4");
        assert_eq!(dst.len(), 1, "{step}");
        assert!(dst[0].legal_hold && dst[0].sha256 == sha_hex(&data));
        assert_eq!(
            dst[0].metadata.get(META_SHA256).map(String::as_str),
            Some(sha_hex(&data).as_str())
        );
        assert_eq!(dst[0].tags, tags_for("murder"), "tags carried");
    }
}

#[tokio::test]
async fn a_hold_placed_after_the_listing_keeps_the_clip() {
    let (store, clip, _) = seeded("late.mp4");
    store.set_hold(Tier::Hot, "late.mp4", None, true).unwrap();
    // The listing (and so `clip`) does not know; the store refuses all the same.
    assert!(!clip.legal_hold);
    let report = store
        .delete_clips(std::slice::from_ref(&clip))
        .await
        .unwrap();
    assert!(report.deleted.is_empty());
    assert_eq!(report.failed[0].code, "AccessDenied");
    assert!(!report.failed[0].retryable);
    assert!(matches!(
        store.move_clip(&clip, Tier::Cool).await,
        Err(StorageError::Held { .. })
    ));
    assert_eq!(store.keys(Tier::Hot), ["late.mp4"]);
    assert!(store.keys(Tier::Cool).is_empty());
}
