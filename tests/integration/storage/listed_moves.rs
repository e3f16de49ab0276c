//! Moves on the listing's word: a clip as the dock ingest writes it moves out of hot
//! with one `CopyObject` (no HEAD of its source) where the listing showed its headers,
//! and the store's checksum of the copy stops the move when the source is not what was
//! listed (overwritten after the listing, or altered after its SHA-256 was recorded).

use super::*;

/// A clip as the dock ingest writes it (a content type, the recorded SHA-256 and an
/// upload time, nothing else) moves out of hot with one request, a `CopyObject`, where
/// the listing showed its headers (MinIO's extension): no HEAD of the source. The copy
/// records the hot `LastModified` (not the uploader's claim), the SHA-256 and the content
/// type. Without the extension, the move takes its HEAD as before.
#[tokio::test]
async fn an_ingested_clip_moves_out_of_hot_without_a_head() -> Result<()> {
    for list_metadata in [true, false] {
        let opts = StoreOptions {
            list_metadata,
            ..StoreOptions::default()
        };
        let s = setup(Layout::Separate, opts).await?;
        let data = clip_data("ingested", 3000);
        let hot = s.cfg.tiers.get(Tier::Hot);
        s.fx.s3
            .put_object()
            .bucket(&hot.bucket)
            .key(hot.object_key("ingested.mp4"))
            .body(ByteStream::from(data.clone()))
            .content_type("video/mp4")
            .metadata(META_SHA256, sha_hex(&data))
            .metadata(META_UPLOADED_AT, "2020-01-01T00:00:00Z")
            .tagging(tagging_query([(TAG_CATEGORY, "murder")]))
            .send()
            .await?;
        let clip = listed(&s.store, Tier::Hot, "ingested.mp4").await?;
        ensure!(
            clip.plain_headers.is_some() == list_metadata,
            "plain headers known only from the extension: {clip:?}"
        );
        let m = s.store.metrics();
        let heads = m.requests("head_object", "ok");
        let copies = m.requests("copy_object", "ok");
        s.store.move_clip(&clip, Tier::Cool).await?;
        let (heads, copies) = (
            m.requests("head_object", "ok") - heads,
            m.requests("copy_object", "ok") - copies,
        );
        ensure!(copies == 1, "one copy: {copies}");
        ensure!(
            (heads == 0) == list_metadata,
            "list_metadata={list_metadata}: {heads} HEAD(s)"
        );
        ensure!(
            record_of(&s.fx, Tier::Cool, "ingested.mp4").await? == Some(clip.last_modified),
            "the hot LastModified is recorded, not the uploader's 2020"
        );
        let cool = s.cfg.tiers.get(Tier::Cool);
        let head =
            s.fx.s3
                .head_object()
                .bucket(&cool.bucket)
                .key(cool.object_key("ingested.mp4"))
                .send()
                .await?;
        ensure!(
            head.content_type() == Some("video/mp4")
                && head.metadata().and_then(|m| m.get(META_SHA256)) == Some(&sha_hex(&data)),
            "{head:?}"
        );
        ensure!(
            s.fx.s3
                .head_object()
                .bucket(&hot.bucket)
                .key(hot.object_key("ingested.mp4"))
                .send()
                .await
                .is_err(),
            "the source is deleted once the copy is verified"
        );
    }
    Ok(())
}

/// The world changes between the listing and the move: an ingested clip (plain
/// headers, so its move takes no HEAD and trusts the listing) is overwritten with other
/// bytes after it was listed. The copy the store makes is of the new bytes, its checksum
/// is not the listed SHA-256, and the source stays: the move never deletes what it did
/// not verify.
#[tokio::test]
async fn a_clip_overwritten_after_its_listing_is_not_moved_on_the_listing_word() -> Result<()> {
    let s = setup(
        Layout::Separate,
        StoreOptions {
            list_metadata: true,
            ..StoreOptions::default()
        },
    )
    .await?;
    let hot = s.cfg.tiers.get(Tier::Hot);
    let put = |data: Vec<u8>| {
        let (s3, bucket, key) = (
            s.fx.s3.clone(),
            hot.bucket.clone(),
            hot.object_key("raced.mp4"),
        );
        async move {
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(data.clone()))
                .content_type("video/mp4")
                .metadata(META_SHA256, sha_hex(&data))
                .tagging(tagging_query([(TAG_CATEGORY, "murder")]))
                .send()
                .await
        }
    };
    let first = clip_data("as listed", 4000);
    put(first.clone()).await?;
    let clip = listed(&s.store, Tier::Hot, "raced.mp4").await?;
    ensure!(clip.plain_headers.is_some(), "the no-HEAD path: {clip:?}");
    // After the listing, before the move: another write of the key.
    let second = clip_data("written after the listing", 4000);
    put(second.clone()).await?;
    let heads = s.store.metrics().requests("head_object", "ok");
    let err = s.store.move_clip(&clip, Tier::Cool).await.unwrap_err();
    ensure!(
        matches!(&err, StorageError::ChecksumMismatch { expected, found, .. }
            if *expected == sha_hex(&first) && *found == sha_hex(&second)),
        "{err}"
    );
    ensure!(
        s.store.metrics().requests("head_object", "ok") == heads,
        "the source was not read: the store's checksum of the copy decided"
    );
    let src = s.fx.versions(Tier::Hot, "raced.mp4").await?;
    ensure!(
        src.len() == 1 && src[0].1 == sha_hex(&second),
        "the source stays as written: {src:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_clip_that_no_longer_matches_its_recorded_checksum_is_never_moved() -> Result<()> {
    // A clip whose content was altered after its SHA-256 was recorded (tampering, or
    // corruption at rest): the copy's checksum, computed by the store while writing it,
    // differs from the recorded one, so the source must stay and the move fail. Checked
    // with the checksum taken from the listing (MinIO) and from a HEAD (other stores).
    for list_metadata in [true, false] {
        let opts = StoreOptions {
            list_metadata,
            ..StoreOptions::default()
        };
        let s = setup(Layout::Separate, opts).await?;
        let key = "tampered.mp4";
        let recorded = sha_hex(&clip_data("the original", 5000));
        let data = clip_data(key, 5000);
        let loc = s.cfg.tiers.get(Tier::Hot);
        s.fx.s3
            .put_object()
            .bucket(&loc.bucket)
            .key(loc.object_key(key))
            .body(ByteStream::from(data.clone()))
            .metadata(META_SHA256, &recorded)
            .tagging(tagging_query([(TAG_CATEGORY, "murder")]))
            .send()
            .await?;
        let clip = listed(&s.store, Tier::Hot, key).await?;
        ensure!(
            !list_metadata || clip.sha256.as_deref() == Some(recorded.as_str()),
            "the recorded checksum is listed: {clip:?}"
        );
        for attempt in 0..2 {
            let err = s.store.move_clip(&clip, Tier::Cool).await.unwrap_err();
            ensure!(
                matches!(&err, StorageError::ChecksumMismatch { expected, found, .. }
                    if *expected == recorded && *found == sha_hex(&data)),
                "list_metadata={list_metadata}, attempt {attempt}: {err}"
            );
            ensure!(err.retryable());
        }
        ensure!(s.store.metrics().checksum_mismatches() == 2);
        let src = s.fx.versions(Tier::Hot, key).await?;
        ensure!(
            src.len() == 1 && src[0].1 == sha_hex(&data),
            "list_metadata={list_metadata}: source intact: {src:?}"
        );
    }
    Ok(())
}
