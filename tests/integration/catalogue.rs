//! The clip catalogue against a real S3 server without MinIO's listing extension (MinIO
//! with the extension turned off): what a sweep's listing costs
//! once the catalogue knows the clips, and that it always lists what the store holds.

use std::{sync::Arc, time::Duration};

use anyhow::{Result, ensure};
use aws_sdk_s3::primitives::ByteStream;
use chrono::Utc;
use evidence_operator::{
    api::clip::{Clip, TAG_CATEGORY, Tag, Tier},
    catalogue::{Catalogue, CatalogueMetrics, CatalogueOptions, CataloguedStore},
    storage::{
        BucketConfig, S3TierStore, StaticCredentials, StorageMetrics, StoreOptions, TierLocation,
        TierStore, Tiers, tagging_query,
    },
};
use evidence_operator_tests::{servers, tenant, unique_name};
use futures::{StreamExt, TryStreamExt, stream};

async fn sorted(
    s: futures::stream::BoxStream<'_, Result<Clip, evidence_operator::storage::StorageError>>,
) -> Result<Vec<Clip>> {
    let mut clips: Vec<Clip> = s.try_collect().await?;
    clips.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(clips)
}

#[tokio::test]
async fn a_steady_listing_through_the_catalogue_costs_a_request_per_thousand_clips() -> Result<()> {
    let s = servers();
    let s3 = s.s3_client();
    let (hot, cool, lock) = (
        unique_name("cat-hot"),
        unique_name("cat-cool"),
        unique_name("cat-lock"),
    );
    tenant::create_bucket(&s3, &hot, true, false).await?;
    tenant::create_bucket(&s3, &cool, true, false).await?;
    tenant::create_bucket(&s3, &lock, true, true).await?;
    let n = 2_100usize;
    stream::iter(0..n)
        .map(|i| {
            let s3 = s3.clone();
            let hot = hot.clone();
            async move {
                s3.put_object()
                    .bucket(&hot)
                    .key(format!("cam-{:03}/{i:05}.mp4", i % 97))
                    .body(ByteStream::from(format!("clip {i}").into_bytes()))
                    .tagging(tagging_query([(TAG_CATEGORY, "non-evidential")]))
                    .send()
                    .await
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    let cfg = BucketConfig {
        name: "test/catalogue".into(),
        declared_region: "eu-west-2".into(),
        endpoint: Some(s.s3_endpoint.clone()),
        force_path_style: true,
        credentials: Some(StaticCredentials {
            access_key_id: s.s3_access_key.clone(),
            secret_access_key: s.s3_secret_key.clone(),
            session_token: None,
        }),
        tiers: Tiers {
            hot: TierLocation::bucket(&hot),
            cool: TierLocation::bucket(&cool),
            legal_hold: TierLocation::bucket(&lock),
        },
        allowed_regions: vec!["eu-west-2".into()],
    };
    // As AWS: no listing extension, one tag read per clip without the catalogue.
    let metrics = StorageMetrics::unregistered();
    let plain = S3TierStore::new(
        cfg.clone(),
        StoreOptions {
            list_metadata: false,
            ..StoreOptions::default()
        },
        metrics.clone(),
    )
    .await?;
    let truth_store = S3TierStore::new(
        cfg.clone(),
        StoreOptions::default(),
        StorageMetrics::unregistered(),
    )
    .await?;
    let dir = s.dir.join("catalogues").join(unique_name("storage"));
    let cat_metrics = CatalogueMetrics::unregistered();
    let catalogue = Catalogue::open(
        &dir,
        CatalogueOptions {
            tag_refresh: Duration::from_secs(24 * 3600),
            ..CatalogueOptions::default()
        },
        cat_metrics.clone(),
    )?;
    let store = CataloguedStore::new(Arc::new(plain), catalogue.bucket("test/catalogue", &cfg));
    let t0 = Utc::now();
    let tag_reads = || metrics.requests("get_object_tagging", "ok");

    let first = sorted(store.list_at(Tier::Hot, t0)).await?;
    ensure!(
        first.len() == n && tag_reads() == n as u64,
        "first listing: {} clips, {} tag reads",
        first.len(),
        tag_reads()
    );
    ensure!(
        first == sorted(TierStore::list(&truth_store, Tier::Hot)).await?,
        "the catalogued listing differs from MinIO's own"
    );

    let before = metrics.http_requests_total();
    let second = sorted(store.list_at(Tier::Hot, t0)).await?;
    let cost = metrics.http_requests_total() - before;
    ensure!(second == first, "the second listing differs from the first");
    // ListObjectsV2 pages of 1,000 and one GetBucketVersioning: N/1,000 + 2, no tag read.
    ensure!(
        cost <= (n as u64).div_ceil(1000) + 1,
        "a steady listing of {n} clips made {cost} requests"
    );
    ensure!(tag_reads() == n as u64, "the steady listing read tags");

    // Behind the operator's back: one clip overwritten, one deleted, one retagged.
    s3.put_object()
        .bucket(&hot)
        .key("cam-000/00000.mp4")
        .body(ByteStream::from_static(b"replaced"))
        .tagging(tagging_query([(TAG_CATEGORY, "evidential")]))
        .send()
        .await?;
    s3.delete_object()
        .bucket(&hot)
        .key("cam-001/00001.mp4")
        .send()
        .await?;
    let evidential = [Tag::new(TAG_CATEGORY, "evidential")];
    tenant::retag(&s3, &hot, "cam-002/00002.mp4", &evidential).await?;
    let third = sorted(store.list_at(Tier::Hot, t0)).await?;
    ensure!(
        tag_reads() == n as u64 + 1,
        "only the overwritten clip is read again ({} reads)",
        tag_reads() - n as u64
    );
    ensure!(third.len() == n - 1, "the deleted clip is gone");
    let truth = sorted(TierStore::list(&truth_store, Tier::Hot)).await?;
    let differs: Vec<&str> = third
        .iter()
        .zip(&truth)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.key.as_str())
        .collect();
    ensure!(
        differs == vec!["cam-002/00002.mp4"],
        "only the retag is not seen before its refresh: {differs:?}"
    );

    // A day on, every clip has been read again once, and the retag is seen.
    let mut at = t0;
    for _ in 0..24 {
        at += chrono::Duration::hours(1);
        sorted(store.list_at(Tier::Hot, at)).await?;
    }
    ensure!(
        tag_reads() == 2 * n as u64,
        "{} tag reads in a day for {} clips",
        tag_reads() - n as u64 - 1,
        n - 1
    );
    let day = sorted(store.list_at(Tier::Hot, at)).await?;
    ensure!(
        day == sorted(TierStore::list(&truth_store, Tier::Hot)).await?,
        "a day on, the listing is the store's"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
