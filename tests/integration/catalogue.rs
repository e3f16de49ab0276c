//! The clip catalogue against real S3 servers without MinIO's listing extension
//! (SeaweedFS, and MinIO with the extension turned off): what a sweep's listing costs
//! once the catalogue knows the clips, that a steady sweep of a whole bucket stays within
//! N/1,000 + 20 requests, and that a catalogued listing always lists what the store holds.

use std::{collections::HashSet, sync::Arc, time::Duration};

use anyhow::{Result, ensure};
use aws_sdk_s3::primitives::ByteStream;
use chrono::{TimeDelta, Utc};
use evidence_operator::{
    api::{
        RetentionPolicySpec,
        clip::{Clip, TAG_CATEGORY, TAG_RECORDED_AT, Tag, Tier},
    },
    audit::recording::RecordingSink,
    catalogue::{Catalogue, CatalogueMetrics, CatalogueOptions, CataloguedStore},
    controller::sweep::{SweepAudit, SweepOptions, SweepOutcome, sweep},
    engine::Planner,
    storage::{
        BucketConfig, S3TierStore, StaticCredentials, StorageError, StorageMetrics, StoreOptions,
        TierLocation, TierStore, Tiers, region::EndpointRegions, tagging_query,
    },
};
use evidence_operator_tests::{Backend, repo_root, servers, tenant, unique_name};
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use tokio_util::sync::CancellationToken;

async fn sorted(s: BoxStream<'_, Result<Clip, StorageError>>) -> Result<Vec<Clip>> {
    let mut clips: Vec<Clip> = s.try_collect().await?;
    clips.sort_by(|a, b| a.key.cmp(&b.key));
    // Whether a listing saw a clip's headers depends on MinIO's extension, not on the
    // clip: the facts compared here are the rest.
    for c in &mut clips {
        c.plain_headers = None;
    }
    Ok(clips)
}

/// Three new buckets on `backend` and the configuration of a store over them.
async fn buckets(backend: Backend) -> Result<(aws_sdk_s3::Client, BucketConfig)> {
    let s = servers();
    let s3 = backend.s3_client(s);
    let (hot, cool, lock) = (
        unique_name("cat-hot"),
        unique_name("cat-cool"),
        unique_name("cat-lock"),
    );
    tenant::create_bucket(&s3, &hot, true, false).await?;
    tenant::create_bucket(&s3, &cool, true, false).await?;
    tenant::create_bucket(&s3, &lock, true, true).await?;
    let cfg = BucketConfig {
        name: "test/catalogue".into(),
        declared_region: "eu-west-2".into(),
        endpoint: Some(backend.endpoint(s)),
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
    Ok((s3, cfg))
}

/// Store options for `backend` (SeaweedFS reports no region: its endpoint is declared).
fn options(backend: Backend, list_metadata: bool) -> Result<StoreOptions> {
    let mut opts = StoreOptions {
        list_metadata,
        ..StoreOptions::default()
    };
    if backend == Backend::Seaweedfs {
        opts.endpoint_regions = EndpointRegions::new(vec![
            servers()
                .seaweedfs_declaration()
                .parse()
                .map_err(anyhow::Error::msg)?,
        ]);
    }
    Ok(opts)
}

/// Upload `n` clips into `bucket`, 32 at a time: key `<prefix>cam-NNN/NNNNN.mp4`, the
/// category and recording time given.
async fn upload(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    n: usize,
    category: &str,
    recorded: chrono::DateTime<Utc>,
) -> Result<()> {
    let recorded = recorded.to_rfc3339();
    futures::stream::iter(0..n)
        .map(|i| {
            let body = format!("clip {prefix}{i}").into_bytes();
            let tagging = tagging_query([
                (TAG_CATEGORY, category),
                (TAG_RECORDED_AT, recorded.as_str()),
            ]);
            async move {
                s3.put_object()
                    .bucket(bucket)
                    .key(format!("{prefix}cam-{:03}/{i:05}.mp4", i % 97))
                    .body(ByteStream::from(body))
                    .tagging(tagging)
                    .send()
                    .await
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

fn catalogue(opts: CatalogueOptions) -> Result<(Catalogue, std::path::PathBuf)> {
    let dir = servers()
        .dir
        .join("catalogues")
        .join(unique_name("storage"));
    let cat = Catalogue::open(&dir, opts, CatalogueMetrics::unregistered())?;
    Ok((cat, dir))
}

async fn a_steady_listing_costs_a_request_per_thousand_clips(backend: Backend) -> Result<()> {
    let (s3, cfg) = buckets(backend).await?;
    let hot = cfg.tiers.hot.bucket.clone();
    let n = 2_100usize;
    upload(&s3, &hot, "", n, "non-evidential", Utc::now()).await?;
    // As AWS: no listing extension, one tag read per clip without the catalogue.
    let metrics = StorageMetrics::unregistered();
    let plain = S3TierStore::new(cfg.clone(), options(backend, false)?, metrics.clone()).await?;
    let truth_store = S3TierStore::new(
        cfg.clone(),
        options(backend, true)?,
        StorageMetrics::unregistered(),
    )
    .await?;
    let truth = || async { sorted(TierStore::list(&truth_store, Tier::Hot)).await };
    let (catalogue, dir) = catalogue(CatalogueOptions {
        tag_refresh: Duration::from_secs(24 * 3600),
        ..CatalogueOptions::default()
    })?;
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
        first == truth().await?,
        "the catalogued listing differs from the store's"
    );

    let before = metrics.http_requests_total();
    let second = sorted(store.list_at(Tier::Hot, t0)).await?;
    let cost = metrics.http_requests_total() - before;
    ensure!(second == first, "the second listing differs from the first");
    // List pages of 1,000 and one GetBucketVersioning: N/1,000 + 2, no tag read.
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
    let now = truth().await?;
    let differs: Vec<&str> = third
        .iter()
        .zip(&now)
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
        day == truth().await?,
        "a day on, the listing is the store's"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn a_steady_listing_through_the_catalogue_costs_a_request_per_thousand_clips_on_seaweedfs()
-> Result<()> {
    a_steady_listing_costs_a_request_per_thousand_clips(Backend::Seaweedfs).await
}

#[tokio::test]
async fn a_steady_listing_through_the_catalogue_costs_a_request_per_thousand_clips_on_minio_without_its_extension()
-> Result<()> {
    a_steady_listing_costs_a_request_per_thousand_clips(Backend::Minio).await
}

/// The controller's sweep of a catalogued store over `cfg` (the Met policy, a recording
/// audit sink): what the sweep-level tests here share.
struct CataloguedSweep {
    store: CataloguedStore,
    catalogue: Catalogue,
    dir: std::path::PathBuf,
    metrics: StorageMetrics,
    opts: SweepOptions,
    policy: RetentionPolicySpec,
    sink: RecordingSink,
    flagged: HashSet<String>,
}

impl CataloguedSweep {
    async fn new(backend: Backend, cfg: &BucketConfig, list_metadata: bool) -> Result<Self> {
        let metrics = StorageMetrics::unregistered();
        let s3_store = S3TierStore::new(
            cfg.clone(),
            options(backend, list_metadata)?,
            metrics.clone(),
        )
        .await?;
        let (catalogue, dir) = catalogue(CatalogueOptions::default())?;
        let bucket = catalogue.bucket("test/catalogue", cfg);
        Ok(CataloguedSweep {
            store: CataloguedStore::new(Arc::new(s3_store), bucket.clone()),
            catalogue,
            dir,
            metrics,
            opts: SweepOptions {
                concurrency: 16,
                skip: Vec::new(),
                integrity_sample: 0,
                catalogue: Some(bucket),
                inputs: "policy met/1".into(),
            },
            policy: met_policy()?,
            sink: RecordingSink::new(),
            flagged: HashSet::new(),
        })
    }

    /// One sweep, planning for `now`.
    async fn at(&self, now: chrono::DateTime<Utc>) -> Result<SweepOutcome> {
        let audit = SweepAudit {
            sink: &self.sink,
            cases: Default::default(),
            releasing: None,
            flagged_before: &self.flagged,
        };
        let planner = Planner::new(&self.policy, &[], now)?;
        Ok(sweep(
            &self.store,
            &planner,
            &self.opts,
            &CancellationToken::new(),
            &audit,
            None,
        )
        .await?)
    }
}

impl Drop for CataloguedSweep {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn met_policy() -> Result<RetentionPolicySpec> {
    let yaml =
        std::fs::read_to_string(repo_root().join("deploy/examples/retentionpolicy-met.yaml"))?;
    let value: serde_yaml::Value = serde_yaml::from_str(&yaml)?;
    Ok(serde_yaml::from_value(value["spec"].clone())?)
}

/// A whole-bucket sweep (the controller's `sweep` over the catalogued store) on
/// `backend`, twice: the second, with nothing due, must cost at most N/1,000 + 20
/// requests, read no tag beyond the catalogue's spread refresh, and list neither the
/// cool nor the legal-hold tier.
async fn a_steady_sweep_costs_at_most_n_over_1000_plus_20(backend: Backend) -> Result<()> {
    let (s3, cfg) = buckets(backend).await?;
    let (hot_n, cool_n) = (1_500usize, 1_000usize);
    // Young kept clips in hot, old kept clips in cool: nothing due for weeks.
    upload(
        &s3,
        &cfg.tiers.hot.bucket,
        "",
        hot_n,
        "murder",
        Utc::now() - TimeDelta::days(2),
    )
    .await?;
    upload(
        &s3,
        &cfg.tiers.cool.bucket,
        "",
        cool_n,
        "murder",
        Utc::now() - TimeDelta::days(400),
    )
    .await?;
    let swept = CataloguedSweep::new(backend, &cfg, true).await?;
    let metrics = &swept.metrics;
    // The clock two days ahead: the 24-hour safety floor counts from the upload.
    let planned = Utc::now() + TimeDelta::days(2);
    let first = swept.at(planned).await?;
    ensure!(
        first.moved + first.deleted + first.failed == 0 && first.unlisted.is_empty(),
        "the first sweep acts on nothing and lists everything: {first:?}"
    );
    let tag_reads = || metrics.requests("get_object_tagging", "ok");
    let (requests, reads) = (metrics.http_requests_total(), tag_reads());
    let refreshed = || swept.catalogue.metrics().lookups("refresh");
    let refreshed_before = refreshed();
    let second = swept.at(planned).await?;
    let cost = metrics.http_requests_total() - requests;
    let refresh = refreshed() - refreshed_before;
    let n = (hot_n + cool_n) as u64;
    ensure!(
        second.unlisted == vec![Tier::Cool, Tier::LegalHold],
        "the quiet tiers are not listed again: {:?}",
        second.unlisted
    );
    ensure!(
        second.totals == first.totals,
        "the same totals: {:?} then {:?}",
        first.totals,
        second.totals
    );
    ensure!(
        tag_reads() - reads == refresh,
        "tag reads beyond the spread refresh: {} reads, {refresh} refreshed",
        tag_reads() - reads
    );
    ensure!(
        cost - refresh <= n / 1000 + 20,
        "a steady sweep of {n} clips made {cost} requests ({refresh} of them the spread refresh)"
    );
    println!(
        "{backend:?}: steady sweep of {n} clips: {cost} requests ({refresh} refresh); first sweep {} requests",
        requests
    );
    Ok(())
}

#[tokio::test]
async fn a_steady_sweep_costs_at_most_n_over_1000_plus_20_requests_on_seaweedfs() -> Result<()> {
    a_steady_sweep_costs_at_most_n_over_1000_plus_20(Backend::Seaweedfs).await
}

#[tokio::test]
async fn a_steady_sweep_costs_at_most_n_over_1000_plus_20_requests_on_minio() -> Result<()> {
    a_steady_sweep_costs_at_most_n_over_1000_plus_20(Backend::Minio).await
}

/// The operator itself on SeaweedFS: a sweep woken by a clip falling due in the hot tier
/// deletes it without listing the quiet cool and legal-hold tiers, and the status says
/// so while still counting them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_seaweedfs_a_sweep_leaves_the_quiet_tiers_unlisted_and_says_so() -> Result<()> {
    use evidence_operator::api::clip::TAG_RECORDED_AT;
    use evidence_operator_tests::{RunningOperator, Tenant, eventually, operator::CLOCK_AHEAD};
    let s = servers();
    let backend = Backend::Seaweedfs;
    let t = Tenant::on_backend("cat-op", backend).await?;
    let cool = t.cool.clone();
    t.put_clip_in(&cool, "kept-in-cool.mp4", Some("use-of-force"), 60, &[])
        .await?;
    t.put_clip("young.mp4", Some("use-of-force"), 3, &[])
        .await?;
    // Due a few seconds after the operator starts (its clock runs CLOCK_AHEAD), and
    // younger than coolAfter, so that it stays in the hot tier until then.
    let due = Utc::now() + CLOCK_AHEAD - TimeDelta::days(20) + TimeDelta::seconds(10);
    t.put_raw(
        "due-soon.mp4",
        &[
            (TAG_CATEGORY.to_string(), "short-lived".to_string()),
            (TAG_RECORDED_AT.to_string(), due.to_rfc3339()),
        ],
    )
    .await?;
    t.apply_policy(
        "policy",
        serde_json::json!({
            "default": { "retention": "31d", "onExpiry": "Delete" },
            "categories": [
                { "name": "use-of-force", "retention": "7y", "onExpiry": "Delete" },
                { "name": "short-lived", "retention": "20d", "onExpiry": "Delete" },
            ],
            "coolAfter": "30d",
            "minimumAge": "24h",
        }),
    )
    .await?;
    t.apply_bucket("unit", &backend.endpoint(s), "1h").await?;
    let flags = backend.operator_flags(s);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let op = RunningOperator::for_namespace(&t.ns, &flags).await?;

    let status = eventually(
        Duration::from_secs(90),
        "a sweep that deletes due-soon.mp4",
        || async {
            let st = t.bucket_status("unit").await?;
            Ok((st["lastSweep"]["deleted"] == 1).then_some(st))
        },
    )
    .await?;
    ensure!(
        status["lastSweep"]["unlistedTiers"] == serde_json::json!(["cool", "legal-hold"]),
        "the quiet tiers are not listed: {}",
        status["lastSweep"]
    );
    ensure!(
        status["tiers"]["cool"]["clips"] == 1 && status["tiers"]["hot"]["clips"] == 1,
        "still counted: {}",
        status["tiers"]
    );
    let hot = t.keys(&t.hot).await?;
    ensure!(
        !hot.contains("due-soon.mp4") && hot.contains("young.mp4"),
        "{hot:?}"
    );
    ensure!(t.keys(&cool).await?.contains("kept-in-cool.mp4"));
    op.stop().await?;
    Ok(())
}

/// The catalogue never decides a delete on its own: a clip re-tagged behind the
/// operator's back (evidential now) while the catalogue still holds its old tags
/// (non-evidential, now due) is planned for deletion from those, and then kept, because
/// its tags are read again at the point of no return.
async fn a_stale_catalogue_entry_never_deletes_a_retagged_clip(backend: Backend) -> Result<()> {
    let (s3, cfg) = buckets(backend).await?;
    let hot = cfg.tiers.hot.bucket.clone();
    // Non-evidential (31 days), recorded 29 days ago: kept in hot today (cool after 30
    // days), due for deletion three days on.
    upload(
        &s3,
        &hot,
        "flip-",
        1,
        "non-evidential",
        Utc::now() - TimeDelta::days(29),
    )
    .await?;
    let key = "flip-cam-000/00000.mp4";
    let swept = CataloguedSweep::new(backend, &cfg, false).await?;
    let metrics = &swept.metrics;
    let first = swept.at(Utc::now()).await?;
    ensure!(
        first.deleted + first.moved == 0,
        "nothing due yet: {first:?}"
    );
    // An officer re-categorises it: evidential, kept for years.
    tenant::retag(&s3, &hot, key, &[Tag::new(TAG_CATEGORY, "murder")]).await?;
    let tag_reads = metrics.requests("get_object_tagging", "ok");
    let second = swept.at(Utc::now() + TimeDelta::days(3)).await?;
    ensure!(
        second.deleted == 0 && second.retagged == 1,
        "planned from the catalogue's stale tags, kept on the tags read again: {second:?}"
    );
    ensure!(
        metrics.requests("get_object_tagging", "ok") > tag_reads,
        "the tags were read again before the delete"
    );
    let left = s3.head_object().bucket(&hot).key(key).send().await;
    ensure!(left.is_ok(), "the re-tagged clip is still there");
    Ok(())
}

#[tokio::test]
async fn a_stale_catalogue_entry_never_deletes_a_retagged_clip_on_seaweedfs() -> Result<()> {
    a_stale_catalogue_entry_never_deletes_a_retagged_clip(Backend::Seaweedfs).await
}

#[tokio::test]
async fn a_stale_catalogue_entry_never_deletes_a_retagged_clip_on_minio_without_its_extension()
-> Result<()> {
    a_stale_catalogue_entry_never_deletes_a_retagged_clip(Backend::Minio).await
}
