//! The storage layer against the real MinIO servers: the crate's conformance suite
//! (`evidence_operator::storage::conformance`, generic over `TierStore`, run here on
//! `S3TierStore` through a MinIO `Fixture`), and the S3-specific checks: pagination,
//! storage-class changes, legal holds, batch deletes, checksum mismatch, interrupted
//! moves, multipart copy, region refusal, Object Lock refusal. It also measures
//! requests per moved / deleted clip and moves per second (printed, not asserted).
//! Moves that trust what the listing said of their source (no HEAD), and what stops
//! them when the source is not what was listed: `listed_moves`.

mod listed_moves;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_s3::{
    Client,
    primitives::ByteStream,
    types::{
        BucketLocationConstraint, CreateBucketConfiguration, ObjectLockLegalHoldStatus, Tagging,
    },
};
use evidence_operator::storage::tagging_query;
use evidence_operator::{
    api::clip::{
        Clip, META_SHA256, META_UPLOADED_AT, TAG_CATEGORY, TAG_RECORDED_AT, Tag, Tier,
        parse_uploaded_at,
    },
    storage::{
        BucketConfig, MoveStep, S3TierStore, StaticCredentials, StorageError, StorageMetrics,
        StoreOptions, TierLocation, TierStore, Tiers, Verification,
        conformance::{
            Fixture, clip_data, collect, conformance, sha_hex, soft_deletes_restores_and_purges,
            stop_after, tags_for,
        },
        region::EndpointRegions,
    },
};
use evidence_operator_tests::{
    Backend, servers,
    tenant::{enable_versioning, retag},
    unique_name,
};
use futures::{StreamExt, TryStreamExt, stream};

// ---------------------------------------------------------------------------------
// Fixture: how the conformance suite (in the crate, `storage::conformance`) seeds and
// inspects MinIO without the trait.
// ---------------------------------------------------------------------------------

struct MinioFixture {
    s3: Client,
    tiers: Tiers,
    /// The configuration a store over these buckets is built from.
    cfg: BucketConfig,
    /// The installation's endpoint region declarations a store over them needs.
    endpoint_regions: EndpointRegions,
    /// Whether the store answers MinIO's listing extension (SeaweedFS does not).
    extension: bool,
}

impl Fixture for MinioFixture {
    async fn put(&self, tier: Tier, key: &str, data: &[u8], tags: &[Tag]) -> Result<()> {
        let loc = self.tiers.get(tier);
        let tagging = tagging_query(tags.iter().map(|t| (&t.key, &t.value)));
        self.s3
            .put_object()
            .bucket(&loc.bucket)
            .key(loc.object_key(key))
            .body(ByteStream::from(data.to_vec()))
            .content_type("video/mp4")
            .metadata("camera-firmware", "7.2")
            .set_tagging((!tagging.is_empty()).then_some(tagging))
            .send()
            .await
            .with_context(|| format!("put {key}"))?;
        Ok(())
    }

    async fn versions(&self, tier: Tier, key: &str) -> Result<Vec<(String, String, bool)>> {
        let loc = self.tiers.get(tier);
        let full = loc.object_key(key);
        let out = self
            .s3
            .list_object_versions()
            .bucket(&loc.bucket)
            .prefix(&full)
            .send()
            .await?;
        let mut found = Vec::new();
        for v in out
            .versions()
            .iter()
            .filter(|v| v.key() == Some(full.as_str()))
        {
            let vid = v.version_id().unwrap_or("null").to_string();
            let obj = self
                .s3
                .get_object()
                .bucket(&loc.bucket)
                .key(&full)
                .version_id(&vid)
                .send()
                .await?;
            let held = obj.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On);
            let body = obj.body.collect().await?.into_bytes();
            found.push((vid, sha_hex(&body), held));
        }
        Ok(found)
    }

    async fn stopping_after(&self, step: MoveStep) -> Result<Box<dyn TierStore>> {
        let opts = StoreOptions {
            fault_hook: Some(stop_after(step)),
            endpoint_regions: self.endpoint_regions.clone(),
            ..StoreOptions::default()
        };
        Ok(Box::new(store_with(&self.cfg, opts).await?))
    }

    fn lists_recorded_upload(&self) -> bool {
        self.extension
    }
}

// ---------------------------------------------------------------------------------
// MinIO set-up.
// ---------------------------------------------------------------------------------

async fn create_bucket(s3: &Client, name: &str, region: &str, lock: bool) -> Result<()> {
    let mut req = s3
        .create_bucket()
        .bucket(name)
        .object_lock_enabled_for_bucket(lock);
    if region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    req.send()
        .await
        .with_context(|| format!("create bucket {name}"))?;
    Ok(())
}

struct Setup {
    store: S3TierStore,
    fx: MinioFixture,
    cfg: BucketConfig,
}

#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// hot, cool and legal-hold in three buckets (legal hold with Object Lock).
    Separate,
    /// cool = the hot bucket with REDUCED_REDUNDANCY.
    CoolIsStorageClass,
    /// the legal-hold bucket has no Object Lock.
    NoObjectLock,
}

fn config(tiers: Tiers, endpoint: &str) -> BucketConfig {
    let s = servers();
    BucketConfig {
        name: "test/unit".into(),
        declared_region: "eu-west-2".into(),
        endpoint: Some(endpoint.to_string()),
        force_path_style: true,
        credentials: Some(StaticCredentials {
            access_key_id: s.s3_access_key.clone(),
            secret_access_key: s.s3_secret_key.clone(),
            session_token: None,
        }),
        tiers,
        allowed_regions: vec!["eu-west-2".into()],
    }
}

async fn setup(layout: Layout, opts: StoreOptions) -> Result<Setup> {
    setup_on(Backend::Minio, layout, opts).await
}

/// Buckets in `layout` on `backend`, and a store over them with `opts` (for SeaweedFS,
/// with its endpoint's region declared: it reports none).
async fn setup_on(backend: Backend, layout: Layout, mut opts: StoreOptions) -> Result<Setup> {
    let s = servers();
    let s3 = backend.s3_client(s);
    if backend == Backend::Seaweedfs {
        opts.endpoint_regions = EndpointRegions::new(vec![
            s.seaweedfs_declaration()
                .parse()
                .map_err(anyhow::Error::msg)?,
        ]);
    }
    let hot = unique_name("hot");
    let cool = unique_name("cool");
    let lock = unique_name("lock");
    create_bucket(&s3, &hot, &s.s3_region, false).await?;
    create_bucket(&s3, &lock, &s.s3_region, layout != Layout::NoObjectLock).await?;
    let cool_loc = if layout == Layout::CoolIsStorageClass {
        TierLocation {
            bucket: hot.clone(),
            prefix: "clips/".into(),
            storage_class: Some("REDUCED_REDUNDANCY".into()),
        }
    } else {
        create_bucket(&s3, &cool, &s.s3_region, false).await?;
        TierLocation::bucket(&cool)
    };
    let tiers = Tiers {
        hot: TierLocation {
            bucket: hot,
            prefix: "clips/".into(),
            storage_class: None,
        },
        cool: cool_loc,
        legal_hold: TierLocation::bucket(&lock),
    };
    let cfg = config(tiers.clone(), &backend.endpoint(s));
    let endpoint_regions = opts.endpoint_regions.clone();
    let store = S3TierStore::new(cfg.clone(), opts, StorageMetrics::unregistered()).await?;
    Ok(Setup {
        store,
        fx: MinioFixture {
            s3,
            tiers,
            cfg: cfg.clone(),
            endpoint_regions,
            extension: backend == Backend::Minio,
        },
        cfg,
    })
}

async fn store_with(cfg: &BucketConfig, opts: StoreOptions) -> Result<S3TierStore> {
    Ok(S3TierStore::new(cfg.clone(), opts, StorageMetrics::unregistered()).await?)
}

async fn seed_one(fx: &MinioFixture, key: &str, len: usize) -> Result<Vec<u8>> {
    let data = clip_data(key, len);
    fx.put(Tier::Hot, key, &data, &tags_for("murder")).await?;
    Ok(data)
}

async fn listed(store: &S3TierStore, tier: Tier, key: &str) -> Result<Clip> {
    collect(store, tier)
        .await?
        .remove(key)
        .with_context(|| format!("{key} listed in {tier}"))
}

// ---------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn conformance_suite_passes_on_minio() -> Result<()> {
    let s = setup(Layout::Separate, StoreOptions::default()).await?;
    conformance(&s.store, &s.fx).await?;
    // Behind a trait object too.
    let dyn_store: Arc<dyn TierStore> = Arc::new(s.store);
    ensure!(collect(dyn_store.as_ref(), Tier::Hot).await?.is_empty());
    Ok(())
}

/// Soft deletes, restores and purges on a hot bucket with versioning Enabled, on both
/// servers (the conformance suite above runs the unversioned refusal).
#[tokio::test]
async fn soft_deletes_restores_and_purges_on_versioned_buckets() -> Result<()> {
    for backend in [Backend::Minio, Backend::Seaweedfs] {
        let s = setup_on(backend, Layout::Separate, StoreOptions::default()).await?;
        enable_versioning(&s.fx.s3, &s.fx.tiers.hot.bucket).await?;
        soft_deletes_restores_and_purges(&s.store, &s.fx)
            .await
            .with_context(|| format!("{backend:?}"))?;
    }
    Ok(())
}

/// The same suite on SeaweedFS (AWS semantics: no listing extension, no checksum from
/// CopyObject, AccessDenied for a held version's delete), its endpoint's region declared.
#[tokio::test]
async fn conformance_suite_passes_on_seaweedfs() -> Result<()> {
    let s = setup_on(
        Backend::Seaweedfs,
        Layout::Separate,
        StoreOptions::default(),
    )
    .await?;
    conformance(&s.store, &s.fx).await?;
    let proof = s.store.verify_region().await?;
    ensure!(
        proof.declared.len() == 3
            && proof
                .declared
                .iter()
                .all(|(_, by)| *by == servers().seaweedfs_declaration()),
        "every bucket's region is the installation's declaration: {proof:?}"
    );
    Ok(())
}

/// Without the declaration, a SeaweedFS bucket (no region reported) is refused before
/// anything is written, the error naming the setting.
#[tokio::test]
async fn a_store_that_reports_no_region_is_refused_before_any_write() -> Result<()> {
    let s = setup_on(
        Backend::Seaweedfs,
        Layout::Separate,
        StoreOptions::default(),
    )
    .await?;
    let bare = store_with(&s.cfg, StoreOptions::default()).await?;
    let data = seed_one(&s.fx, "2026/03/unproven.mp4", 500).await?;
    let clip = listed(&bare, Tier::Hot, "2026/03/unproven.mp4").await?;
    match bare.verify_region().await {
        Err(StorageError::RegionUnreported {
            bucket, authority, ..
        }) => ensure!(
            bucket == s.cfg.tiers.hot.bucket
                && s.cfg
                    .endpoint
                    .as_deref()
                    .is_some_and(|e| e.ends_with(&authority))
        ),
        other => bail!("expected RegionUnreported, got {other:?}"),
    }
    let err = bare
        .move_clip(&clip, Tier::Cool)
        .await
        .err()
        .context("the move is refused")?;
    ensure!(
        matches!(err, StorageError::RegionUnreported { .. })
            && err.to_string().contains("--endpoint-region"),
        "{err}"
    );
    ensure!(
        collect(&bare, Tier::Cool).await?.is_empty(),
        "nothing written"
    );
    let src = s.fx.versions(Tier::Hot, "2026/03/unproven.mp4").await?;
    ensure!(
        src.len() == 1 && src[0].1 == sha_hex(&data),
        "source untouched"
    );
    Ok(())
}

#[tokio::test]
async fn listing_paginates_over_more_than_a_thousand_clips() -> Result<()> {
    let s = setup(Layout::Separate, StoreOptions::default()).await?;
    let n = 1_100;
    stream::iter(0..n)
        .map(|i| {
            let fx = &s.fx;
            async move {
                fx.put(
                    Tier::Hot,
                    &format!("p/{i:05}.mp4"),
                    b"x",
                    &tags_for("theft"),
                )
                .await
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;
    // An object outside the tier prefix is not a clip of the tier.
    s.fx.s3
        .put_object()
        .bucket(&s.cfg.tiers.hot.bucket)
        .key("elsewhere.mp4")
        .body(ByteStream::from_static(b"y"))
        .send()
        .await?;
    let before = s.store.metrics().requests("list_objects_v2", "ok");
    let clips = collect(&s.store, Tier::Hot).await?;
    ensure!(clips.len() == n, "listed {} of {n}", clips.len());
    ensure!(clips.values().all(|c| c.tag(TAG_CATEGORY) == Some("theft")));
    let pages = s.store.metrics().requests("list_objects_v2", "ok") - before;
    ensure!(pages == 2, "{n} clips take 2 pages of 1000, took {pages}");
    Ok(())
}

/// Hot and cool as one bucket and prefix told apart by storage class: a move is a copy
/// onto the clip's own key. Without versioning that copy would replace the only copy
/// before it is verified, so the layout is refused (the region proof and the move alike)
/// and nothing is written; with versioning Enabled the prior version is kept until the
/// copy is verified, then deleted by its version id.
#[tokio::test]
async fn same_bucket_storage_class_change_needs_versioning_and_then_is_a_verified_copy_onto_the_same_key()
-> Result<()> {
    let s = setup(Layout::CoolIsStorageClass, StoreOptions::default()).await?;
    let (store, cfg) = (&s.store, &s.cfg);
    seed_one(&s.fx, "unversioned.mp4", 4096).await?;
    let clip = listed(store, Tier::Hot, "unversioned.mp4").await?;
    ensure!(
        collect(store, Tier::Cool).await?.is_empty(),
        "STANDARD objects are hot"
    );
    match store.verify_region().await {
        Err(StorageError::SameKeyUnversioned { bucket, .. }) => {
            ensure!(bucket == cfg.tiers.hot.bucket)
        }
        other => bail!("expected SameKeyUnversioned from the proof, got {other:?}"),
    }
    match store.move_clip(&clip, Tier::Cool).await {
        Err(StorageError::SameKeyUnversioned { .. }) => {}
        other => bail!("expected the move to be refused, got {other:?}"),
    }
    let versions = s.fx.versions(Tier::Hot, "unversioned.mp4").await?;
    ensure!(versions.len() == 1, "untouched: {versions:?}");
    ensure!(
        listed(store, Tier::Hot, "unversioned.mp4")
            .await?
            .storage_class
            .as_deref()
            == Some("STANDARD")
    );

    // Versioning on: the layout is accepted and a move keeps exactly one copy.
    enable_versioning(&s.fx.s3, &cfg.tiers.hot.bucket).await?;
    store.verify_region().await?;
    let data = seed_one(&s.fx, "rrs.mp4", 4096).await?;
    let clip = listed(store, Tier::Hot, "rrs.mp4").await?;
    let out = store.move_clip(&clip, Tier::Cool).await?;
    ensure!(
        out.copied && out.source_deleted,
        "versioned: the prior version is deleted by id once the copy is verified: {out:?}"
    );
    let cool = listed(store, Tier::Cool, "rrs.mp4").await?;
    ensure!(cool.storage_class.as_deref() == Some("REDUCED_REDUNDANCY"));
    ensure!(
        cool.tag(TAG_CATEGORY) == Some("murder"),
        "tags kept: {:?}",
        cool.tags
    );
    ensure!(!collect(store, Tier::Hot).await?.contains_key("rrs.mp4"));
    let versions = s.fx.versions(Tier::Hot, "rrs.mp4").await?;
    ensure!(
        versions.len() == 1 && versions[0].1 == sha_hex(&data),
        "one verified copy: {versions:?}"
    );
    let head =
        s.fx.s3
            .head_object()
            .bucket(&cfg.tiers.hot.bucket)
            .key("clips/rrs.mp4")
            .send()
            .await?;
    ensure!(head.metadata().and_then(|m| m.get(META_SHA256)) == Some(&sha_hex(&data)));
    ensure!(
        head.metadata()
            .and_then(|m| m.get("camera-firmware"))
            .map(String::as_str)
            == Some("7.2")
    );
    ensure!(head.content_type() == Some("video/mp4"));
    // Re-running is a no-op.
    let again = store.move_clip(&clip, Tier::Cool).await?;
    ensure!(!again.copied);
    ensure!(s.fx.versions(Tier::Hot, "rrs.mp4").await?.len() == 1);
    Ok(())
}

#[tokio::test]
async fn batch_delete_of_2500_clips_uses_three_requests() -> Result<()> {
    let s = setup(Layout::Separate, StoreOptions::default()).await?;
    let n = 2_500;
    stream::iter(0..n)
        .map(|i| {
            let fx = &s.fx;
            async move { fx.put(Tier::Hot, &format!("d/{i:05}.mp4"), b"z", &[]).await }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;
    let clips: Vec<Clip> = collect(&s.store, Tier::Hot).await?.into_values().collect();
    ensure!(clips.len() == n);
    s.store.verify_region().await?; // proof cached: count only the deletes
    let before = s.store.metrics().http_requests_total();
    let report = s.store.delete_clips(&clips).await?;
    let http = s.store.metrics().http_requests_total() - before;
    ensure!(
        report.failed.is_empty(),
        "{:?}",
        &report.failed[..report.failed.len().min(3)]
    );
    ensure!(report.deleted.len() == n);
    ensure!(
        report.requests == 3 && http == 3,
        "requests {} http {http}",
        report.requests
    );
    ensure!(collect(&s.store, Tier::Hot).await?.is_empty());
    println!(
        "MEASURE delete: {n} clips, {} requests, {:.4} requests per deleted clip",
        report.requests,
        f64::from(report.requests) / n as f64
    );
    Ok(())
}

#[tokio::test]
async fn a_held_version_refused_by_the_server_is_reported_and_kept() -> Result<()> {
    let s = setup(Layout::Separate, StoreOptions::default()).await?;
    seed_one(&s.fx, "held.mp4", 2048).await?;
    seed_one(&s.fx, "free.mp4", 10).await?;
    let clip = listed(&s.store, Tier::Hot, "held.mp4").await?;
    s.store.move_clip(&clip, Tier::LegalHold).await?;
    let mut held = listed(&s.store, Tier::LegalHold, "held.mp4").await?;
    ensure!(held.legal_hold);
    // A stale view (hold not seen) must still not lose the clip: the server refuses.
    held.legal_hold = false;
    let free = listed(&s.store, Tier::Hot, "free.mp4").await?;
    let report = s.store.delete_clips(&[held.clone(), free]).await?;
    ensure!(report.deleted.len() == 1 && report.deleted[0].key == "free.mp4");
    ensure!(report.failed.len() == 1, "{:?}", report.failed);
    let f = &report.failed[0];
    ensure!(f.clip.key == "held.mp4" && !f.retryable, "{f:?}");
    // MinIO answers InvalidRequest "Object is WORM protected", AWS AccessDenied.
    ensure!(
        f.code == "AccessDenied" || f.message.contains("WORM"),
        "server code: {} {}",
        f.code,
        f.message
    );
    let versions = s.fx.versions(Tier::LegalHold, "held.mp4").await?;
    ensure!(
        versions.len() == 1 && versions[0].2,
        "still there and held: {versions:?}"
    );
    Ok(())
}

#[tokio::test]
async fn listing_with_metadata_reads_the_same_clips_as_object_by_object() -> Result<()> {
    // MinIO's listing extension must describe every clip exactly as the per-object
    // reads do: tags (incl. awkward characters and tags changed after upload), the
    // recorded checksum, and the legal hold, on and off, in every tier.
    let s = setup(Layout::Separate, StoreOptions::default()).await?;
    let awkward = vec![
        Tag::new(TAG_CATEGORY, "use-of-force"),
        Tag::new("note", "a+b = c / d: e@f_g.h"),
        Tag::new(TAG_RECORDED_AT, "2026-03-01T14:05:00Z"),
    ];
    s.fx.put(Tier::Hot, "a/awkward.mp4", &clip_data("aw", 300), &awkward)
        .await?;
    s.fx.put(Tier::Hot, "a/untagged.mp4", &clip_data("un", 300), &[])
        .await?;
    for k in [
        "a/cool.mp4",
        "a/held.mp4",
        "a/released.mp4",
        "a/retagged.mp4",
    ] {
        seed_one(&s.fx, k, 700).await?;
    }
    // Tags changed after upload.
    let hot = s.cfg.tiers.get(Tier::Hot);
    s.fx.s3
        .put_object_tagging()
        .bucket(&hot.bucket)
        .key(hot.object_key("a/retagged.mp4"))
        .tagging(
            Tagging::builder()
                .tag_set(
                    aws_sdk_s3::types::Tag::builder()
                        .key(TAG_CATEGORY)
                        .value("non-evidential")
                        .build()?,
                )
                .build()?,
        )
        .send()
        .await?;
    let listed_hot = collect(&s.store, Tier::Hot).await?;
    s.store
        .move_clip(&listed_hot["a/cool.mp4"], Tier::Cool)
        .await?;
    for k in ["a/held.mp4", "a/released.mp4"] {
        s.store.move_clip(&listed_hot[k], Tier::LegalHold).await?;
    }
    let released = listed(&s.store, Tier::LegalHold, "a/released.mp4").await?;
    s.store.set_legal_hold(&released, false).await?;

    let per_object = store_with(
        &s.cfg,
        StoreOptions {
            list_metadata: false,
            ..StoreOptions::default()
        },
    )
    .await?;
    for tier in Tier::ALL {
        let extended = collect(&s.store, tier).await?;
        let plain = collect(&per_object, tier).await?;
        // The per-object reader reports recorded checksums and upload times only where
        // it HEADs.
        for (key, p) in &plain {
            let e = extended
                .get(key)
                .with_context(|| format!("{tier}: {key} missing from the extended listing"))?;
            let mut e = e.clone();
            let mut p = p.clone();
            if tier != Tier::LegalHold {
                e.sha256 = None;
                e.uploaded_at = None;
            }
            e.tags.sort_by(|a, b| a.key.cmp(&b.key));
            p.tags.sort_by(|a, b| a.key.cmp(&b.key));
            ensure!(e == p, "{tier}/{key}:\n extended {e:?}\n per-object {p:?}");
        }
        ensure!(
            extended.len() == plain.len(),
            "{tier}: {extended:?} vs {plain:?}"
        );
    }
    let cool = listed(&s.store, Tier::Cool, "a/cool.mp4").await?;
    ensure!(
        cool.sha256.is_some(),
        "the cool copy's recorded checksum is listed"
    );
    ensure!(
        listed(&s.store, Tier::LegalHold, "a/held.mp4")
            .await?
            .legal_hold
    );
    ensure!(
        !listed(&s.store, Tier::LegalHold, "a/released.mp4")
            .await?
            .legal_hold
    );
    let hot = collect(&s.store, Tier::Hot).await?;
    let mut got = hot["a/awkward.mp4"].tags.clone();
    let mut want = awkward.clone();
    got.sort_by(|a, b| a.key.cmp(&b.key));
    want.sort_by(|a, b| a.key.cmp(&b.key));
    ensure!(got == want, "{got:?}");
    ensure!(hot["a/retagged.mp4"].tag(TAG_CATEGORY) == Some("non-evidential"));
    ensure!(hot["a/untagged.mp4"].tags.is_empty());
    let m = s.store.metrics();
    ensure!(m.objects_listed("listing") > 0 && m.objects_listed("per_object") == 0);
    ensure!(per_object.metrics().objects_listed("listing") == 0);
    ensure!(
        per_object.metrics().requests("get_object_tagging", "ok") > 0,
        "the fallback reads tags object by object"
    );
    Ok(())
}

#[tokio::test]
async fn many_moves_delete_their_sources_in_one_batch_and_a_refused_delete_keeps_the_clip()
-> Result<()> {
    // The cool bucket has Object Lock here, so that a legal hold placed after the listing
    // makes exactly one source delete fail inside the batch of moves into legal hold.
    // (Out of the hot tier every move HEADs its source, which would see the hold.)
    let srv = servers();
    let s3 = srv.s3_client();
    let (hot, cool, lock) = (
        unique_name("hot"),
        unique_name("lcool"),
        unique_name("lock"),
    );
    create_bucket(&s3, &hot, &srv.s3_region, false).await?;
    create_bucket(&s3, &cool, &srv.s3_region, true).await?;
    create_bucket(&s3, &lock, &srv.s3_region, true).await?;
    let tiers = Tiers {
        hot: TierLocation::bucket(&hot),
        cool: TierLocation::bucket(&cool),
        legal_hold: TierLocation::bucket(&lock),
    };
    let cfg = config(tiers.clone(), &srv.s3_endpoint);
    let fx = MinioFixture {
        s3: s3.clone(),
        tiers,
        cfg: cfg.clone(),
        endpoint_regions: EndpointRegions::default(),
        extension: true,
    };
    let store = store_with(&cfg, StoreOptions::default()).await?;
    let n = 30;
    // Moved to cool before: the SHA-256 and the upload time recorded, so the listing
    // alone describes each move's source and the hold placed below is seen only by the
    // source delete.
    for i in 0..n {
        let data = clip_data(&i.to_string(), 2048);
        s3.put_object()
            .bucket(&cool)
            .key(format!("b/{i:02}.mp4"))
            .metadata(META_SHA256, sha_hex(&data))
            .metadata(META_UPLOADED_AT, "2026-03-01T14:05:00.123Z")
            .tagging(tagging_query([(TAG_CATEGORY, "theft")]))
            .body(ByteStream::from(data))
            .send()
            .await?;
    }
    let mut clips: Vec<Clip> = collect(&store, Tier::Cool).await?.into_values().collect();
    clips.sort_by(|a, b| a.key.cmp(&b.key));
    ensure!(clips.len() == n);
    // Held after it was listed: the listing (and so the plan) does not know.
    s3.put_object_legal_hold()
        .bucket(&cool)
        .key("b/07.mp4")
        .set_version_id(clips[7].version_id.clone())
        .legal_hold(
            aws_sdk_s3::types::ObjectLockLegalHold::builder()
                .status(ObjectLockLegalHoldStatus::On)
                .build(),
        )
        .send()
        .await?;

    // Cancelled before it starts: nothing moves.
    let stopped = tokio_util::sync::CancellationToken::new();
    stopped.cancel();
    let none = store.move_clips(&clips, Tier::LegalHold, 8, &stopped).await;
    ensure!(none.iter().all(Option::is_none) && collect(&store, Tier::LegalHold).await?.is_empty());

    store.verify_region().await?; // proven once per store, not per move
    let m = store.metrics();
    let deletes_before = m.requests("delete_objects", "ok") + m.requests("delete_object", "ok");
    let results = store
        .move_clips(
            &clips,
            Tier::LegalHold,
            8,
            &tokio_util::sync::CancellationToken::new(),
        )
        .await;
    ensure!(results.len() == n);
    for (clip, r) in clips.iter().zip(&results) {
        let r = r.as_ref().context("started")?;
        if clip.key == "b/07.mp4" {
            ensure!(r.is_err(), "the held source's move fails: {r:?}");
        } else {
            let out = r
                .as_ref()
                .map_err(|e| anyhow::anyhow!("{}: {e}", clip.key))?;
            ensure!(out.copied && out.source_deleted, "{out:?}");
            ensure!(
                (3..=4).contains(&out.requests) && out.verification == Verification::S3Checksum,
                "a HEAD of the versioned destination, one copy verified from its answer, \
                 the hold (and the destination's Object Lock check, cached once the first \
                 concurrent moves made it); the delete is shared: {out:?}"
            );
        }
    }
    let deletes =
        m.requests("delete_objects", "ok") + m.requests("delete_object", "ok") - deletes_before;
    ensure!(
        deletes == 1,
        "one DeleteObjects for {n} sources, got {deletes}"
    );
    // Every clip is somewhere; the held one in both tiers, intact.
    let cool_left = collect(&store, Tier::Cool).await?;
    let locked = collect(&store, Tier::LegalHold).await?;
    ensure!(
        cool_left.keys().collect::<Vec<_>>() == vec!["b/07.mp4"],
        "{cool_left:?}"
    );
    ensure!(locked.len() == n, "{}", locked.len());
    let held = fx.versions(Tier::Cool, "b/07.mp4").await?;
    ensure!(held.len() == 1 && held[0].2 && held[0].1 == sha_hex(&clip_data("7", 2048)));
    Ok(())
}

/// The upload time (`evidence-uploaded-at` metadata) a copy of `key` in `tier` records.
async fn record_of(
    fx: &MinioFixture,
    tier: Tier,
    key: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    let loc = fx.tiers.get(tier);
    let head = fx
        .s3
        .head_object()
        .bucket(&loc.bucket)
        .key(loc.object_key(key))
        .send()
        .await?;
    Ok(head
        .metadata()
        .and_then(|m| m.get(META_UPLOADED_AT))
        .and_then(|v| parse_uploaded_at(v)))
}

#[tokio::test]
async fn a_move_records_the_upload_time_and_the_next_move_carries_it() -> Result<()> {
    // The first move out of hot records the hot LastModified (to the millisecond, as
    // listed) on the copy, whatever upload-time metadata the uploader wrote; the move
    // cool -> legal hold carries it; a clip moved before the record existed gets its
    // LastModified. With MinIO's listing extension and without it.
    for list_metadata in [true, false] {
        let opts = StoreOptions {
            list_metadata,
            ..StoreOptions::default()
        };
        let s = setup(Layout::Separate, opts).await?;
        // An uploader that records the checksum, and claims an upload time of its own.
        let data = clip_data("up", 3000);
        let hot = s.cfg.tiers.get(Tier::Hot);
        s.fx.s3
            .put_object()
            .bucket(&hot.bucket)
            .key(hot.object_key("up.mp4"))
            .body(ByteStream::from(data.clone()))
            .content_type("video/mp4")
            .metadata("camera-firmware", "7.2")
            .metadata(META_SHA256, sha_hex(&data))
            .metadata(META_UPLOADED_AT, "2020-01-01T00:00:00Z")
            .tagging(tagging_query([(TAG_CATEGORY, "murder")]))
            .send()
            .await?;
        let clip = listed(&s.store, Tier::Hot, "up.mp4").await?;
        let uploaded = clip.last_modified;
        s.store.move_clip(&clip, Tier::Cool).await?;
        ensure!(
            record_of(&s.fx, Tier::Cool, "up.mp4").await? == Some(uploaded),
            "list_metadata={list_metadata}: hot -> cool records the upload {uploaded}"
        );
        let cool = listed(&s.store, Tier::Cool, "up.mp4").await?;
        ensure!(cool.last_modified > uploaded, "{cool:?}");
        ensure!(
            cool.uploaded_at == list_metadata.then_some(uploaded),
            "listed with the extension, unknown without (no per-clip HEAD in cool): {cool:?}"
        );
        s.store.move_clip(&cool, Tier::LegalHold).await?;
        ensure!(
            record_of(&s.fx, Tier::LegalHold, "up.mp4").await? == Some(uploaded),
            "list_metadata={list_metadata}: cool -> legal hold carries the record"
        );
        let held = listed(&s.store, Tier::LegalHold, "up.mp4").await?;
        ensure!(held.uploaded_at == Some(uploaded), "{held:?}");
        let lh = s.cfg.tiers.get(Tier::LegalHold);
        let head =
            s.fx.s3
                .head_object()
                .bucket(&lh.bucket)
                .key(lh.object_key("up.mp4"))
                .send()
                .await?;
        ensure!(
            head.metadata()
                .and_then(|m| m.get("camera-firmware"))
                .map(String::as_str)
                == Some("7.2")
                && head.content_type() == Some("video/mp4"),
            "the rest of the metadata travels: {head:?}"
        );

        // Moved to cool by an earlier version (checksum recorded, no upload time).
        let cool_loc = s.cfg.tiers.get(Tier::Cool);
        let old = clip_data("old", 2000);
        s.fx.s3
            .put_object()
            .bucket(&cool_loc.bucket)
            .key(cool_loc.object_key("old.mp4"))
            .body(ByteStream::from(old.clone()))
            .metadata(META_SHA256, sha_hex(&old))
            .send()
            .await?;
        let legacy = listed(&s.store, Tier::Cool, "old.mp4").await?;
        ensure!(legacy.uploaded_at.is_none());
        s.store.move_clip(&legacy, Tier::LegalHold).await?;
        ensure!(
            record_of(&s.fx, Tier::LegalHold, "old.mp4").await? == Some(legacy.last_modified),
            "list_metadata={list_metadata}: a clip without a record gets its LastModified"
        );
    }
    Ok(())
}

#[tokio::test]
async fn interrupted_moves_converge_with_exactly_one_verified_held_copy() -> Result<()> {
    let s = setup(Layout::Separate, StoreOptions::default()).await?;
    for step in [MoveStep::Copied, MoveStep::Verified, MoveStep::Held] {
        let key = format!("crash-{step}.mp4");
        let data = seed_one(&s.fx, &key, 7000).await?;
        let clip = listed(&s.store, Tier::Hot, &key).await?;
        let crashing = store_with(
            &s.cfg,
            StoreOptions {
                fault_hook: Some(stop_after(step)),
                ..StoreOptions::default()
            },
        )
        .await?;
        let err = crashing
            .move_clip(&clip, Tier::LegalHold)
            .await
            .unwrap_err();
        ensure!(
            matches!(err, StorageError::Interrupted { step: got, .. } if got == step),
            "{err}"
        );
        drop(crashing); // the "process" is gone
        let src = s.fx.versions(Tier::Hot, &key).await?;
        ensure!(
            src.len() == 1 && src[0].1 == sha_hex(&data),
            "{step}: source kept"
        );

        // A fresh store re-runs the move from the same (stale) listing.
        let out = s.store.move_clip(&clip, Tier::LegalHold).await?;
        ensure!(
            !out.copied,
            "{step}: the verified copy is reused, not redone: {out:?}"
        );
        ensure!(out.source_deleted, "{step}");
        let dst = s.fx.versions(Tier::LegalHold, &key).await?;
        ensure!(dst.len() == 1, "{step}: exactly one copy, got {dst:?}");
        ensure!(
            dst[0].1 == sha_hex(&data) && dst[0].2,
            "{step}: verified and held"
        );
        ensure!(
            s.fx.versions(Tier::Hot, &key).await?.is_empty(),
            "{step}: source deleted"
        );

        // And a third run, after completion, changes nothing.
        let again = s.store.move_clip(&clip, Tier::LegalHold).await?;
        ensure!(!again.copied && !again.source_deleted);
        ensure!(s.fx.versions(Tier::LegalHold, &key).await?.len() == 1);
    }
    // Interrupted after the source delete's predecessor on a cross-bucket cool move too.
    let key = "crash-cool.mp4";
    let data = seed_one(&s.fx, key, 900).await?;
    let clip = listed(&s.store, Tier::Hot, key).await?;
    let crashing = store_with(
        &s.cfg,
        StoreOptions {
            fault_hook: Some(stop_after(MoveStep::Copied)),
            ..StoreOptions::default()
        },
    )
    .await?;
    ensure!(crashing.move_clip(&clip, Tier::Cool).await.is_err());
    // The cool bucket is unversioned: copying again over the earlier copy is cheaper
    // than a HEAD on every move, and leaves nothing behind.
    let out = s.store.move_clip(&clip, Tier::Cool).await?;
    ensure!(out.copied && out.source_deleted, "{out:?}");
    let dst = s.fx.versions(Tier::Cool, key).await?;
    ensure!(dst.len() == 1 && dst[0].1 == sha_hex(&data));
    Ok(())
}

#[tokio::test]
async fn large_clips_use_multipart_copy_and_are_verified_by_rereading() -> Result<()> {
    let opts = StoreOptions {
        multipart_threshold: 5 * 1024 * 1024,
        part_size: 5 * 1024 * 1024,
        ..StoreOptions::default()
    };
    let s = setup(Layout::Separate, opts).await?;
    let data = seed_one(&s.fx, "big.mp4", 12 * 1024 * 1024).await?;
    let clip = listed(&s.store, Tier::Hot, "big.mp4").await?;
    let out = s.store.move_clip(&clip, Tier::LegalHold).await?;
    ensure!(out.multipart && out.copied, "{out:?}");
    ensure!(out.verification == Verification::Reread, "{out:?}");
    ensure!(out.sha256 == sha_hex(&data));
    let dst = listed(&s.store, Tier::LegalHold, "big.mp4").await?;
    ensure!(dst.legal_hold && dst.sha256.as_deref() == Some(sha_hex(&data).as_str()));
    ensure!(
        dst.tag(TAG_CATEGORY) == Some("murder"),
        "tags carried: {:?}",
        dst.tags
    );
    ensure!(dst.size == data.len() as u64);
    ensure!(
        dst.uploaded_at == Some(clip.last_modified),
        "the multipart copy records the upload time: {dst:?}"
    );
    let versions = s.fx.versions(Tier::LegalHold, "big.mp4").await?;
    ensure!(versions.len() == 1 && versions[0].1 == sha_hex(&data));
    ensure!(s.fx.versions(Tier::Hot, "big.mp4").await?.is_empty());
    // 3 parts: 5 + 5 + 2 MiB.
    ensure!(s.store.metrics().requests("upload_part_copy", "ok") == 3);
    Ok(())
}

#[tokio::test]
async fn a_non_uk_bucket_is_refused_and_nothing_is_written() -> Result<()> {
    let srv = servers();
    let us = srv.non_uk_s3_client();
    let (hot, cool, lock) = (
        unique_name("ushot"),
        unique_name("uscool"),
        unique_name("uslock"),
    );
    create_bucket(&us, &hot, &srv.non_uk_region, false).await?;
    create_bucket(&us, &cool, &srv.non_uk_region, false).await?;
    create_bucket(&us, &lock, &srv.non_uk_region, true).await?;
    let tiers = Tiers {
        hot: TierLocation::bucket(&hot),
        cool: TierLocation::bucket(&cool),
        legal_hold: TierLocation::bucket(&lock),
    };
    // The configuration claims eu-west-2; the store says otherwise.
    let cfg = config(tiers.clone(), &srv.non_uk_endpoint);
    let fx = MinioFixture {
        s3: us.clone(),
        tiers,
        cfg: cfg.clone(),
        endpoint_regions: EndpointRegions::default(),
        extension: true,
    };
    let data = clip_data("us", 100);
    fx.put(Tier::Hot, "us.mp4", &data, &tags_for("murder"))
        .await?;
    let store = store_with(&cfg, StoreOptions::default()).await?;
    let clip = Clip {
        key: "us.mp4".into(),
        tier: Tier::Hot,
        version_id: None,
        size: 100,
        storage_class: None,
        last_modified: chrono::Utc::now(),
        tags: tags_for("murder"),
        sha256: None,
        uploaded_at: None,
        legal_hold: false,
        plain_headers: None,
    };
    for result in [
        store.verify_region().await.map(|_| ()),
        store.move_clip(&clip, Tier::Cool).await.map(|_| ()),
        store
            .delete_clips(std::slice::from_ref(&clip))
            .await
            .map(|_| ()),
    ] {
        match result {
            Err(StorageError::RegionNotAllowed {
                bucket,
                found,
                allowed,
            }) => {
                ensure!(bucket == hot && found == "us-east-1" && allowed == ["eu-west-2"]);
            }
            other => bail!("expected RegionNotAllowed, got {other:?}"),
        }
    }
    let msg = store.verify_region().await.unwrap_err().to_string();
    ensure!(
        msg.contains(&hot) && msg.contains("us-east-1") && msg.contains("eu-west-2"),
        "{msg}"
    );
    ensure!(
        fx.versions(Tier::Hot, "us.mp4").await?.len() == 1,
        "source untouched"
    );
    ensure!(
        fx.versions(Tier::Cool, "us.mp4").await?.is_empty(),
        "nothing written"
    );
    // Only reads happened: no copy, delete or hold request was sent.
    let m = store.metrics();
    for op in [
        "copy_object",
        "delete_object",
        "delete_objects",
        "put_object_legal_hold",
    ] {
        ensure!(
            m.requests(op, "ok") + m.requests(op, "error") == 0,
            "{op} sent"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_legal_hold_tier_without_object_lock_is_refused() -> Result<()> {
    let s = setup(Layout::NoObjectLock, StoreOptions::default()).await?;
    let data = seed_one(&s.fx, "nolock.mp4", 321).await?;
    let clip = listed(&s.store, Tier::Hot, "nolock.mp4").await?;
    let err = s.store.move_clip(&clip, Tier::LegalHold).await.unwrap_err();
    match &err {
        StorageError::ObjectLockMissing { bucket } => {
            ensure!(*bucket == s.cfg.tiers.legal_hold.bucket);
        }
        other => bail!("expected ObjectLockMissing, got {other:?}"),
    }
    ensure!(err.to_string().contains("Object Lock"));
    let src = s.fx.versions(Tier::Hot, "nolock.mp4").await?;
    ensure!(src.len() == 1 && src[0].1 == sha_hex(&data));
    ensure!(
        s.fx.versions(Tier::LegalHold, "nolock.mp4")
            .await?
            .is_empty()
    );
    // Other tiers still work.
    ensure!(s.store.move_clip(&clip, Tier::Cool).await?.source_deleted);
    Ok(())
}

#[tokio::test]
async fn measure_requests_per_move_and_moves_per_second() -> Result<()> {
    let s = setup(Layout::Separate, StoreOptions::default()).await?;
    let n = 200;
    let size = 256 * 1024;
    stream::iter(0..n)
        .map(|i| {
            let fx = &s.fx;
            async move {
                fx.put(
                    Tier::Hot,
                    &format!("m/{i:04}.mp4"),
                    &clip_data(&i.to_string(), size),
                    &tags_for("theft"),
                )
                .await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    let clips: Vec<Clip> = collect(&s.store, Tier::Hot).await?.into_values().collect();
    s.store.verify_region().await?;

    // One move, counted by the store and by the HTTP interceptor.
    let m = s.store.metrics();
    let before = m.http_requests_total();
    let first = s.store.move_clip(&clips[0], Tier::Cool).await?;
    let http_first = m.http_requests_total() - before;
    ensure!(
        u64::from(first.requests) == http_first,
        "{} vs {http_first}",
        first.requests
    );
    // Second move of the same clip, now with a recorded checksum: cool → legal hold.
    let cool = listed(&s.store, Tier::Cool, &clips[0].key).await?;
    let before = m.http_requests_total();
    let second = s.store.move_clip(&cool, Tier::LegalHold).await?;
    let http_second = m.http_requests_total() - before;
    println!(
        "MEASURE move hot->cool (first move, checksum computed by streaming, verified by S3 checksum={}): {} requests",
        first.verification == Verification::S3Checksum,
        first.requests
    );
    println!(
        "MEASURE move cool->legal-hold (checksum recorded, +hold): {} requests (http {http_second})",
        second.requests
    );

    let concurrency = 16;
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    stream::iter(clips[1..].iter())
        .map(|c| {
            let store = &s.store;
            let done = &done;
            async move {
                store.move_clip(c, Tier::Cool).await?;
                done.fetch_add(1, Ordering::Relaxed);
                Ok::<_, StorageError>(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let moved = done.load(Ordering::Relaxed);
    ensure!(moved == n - 1);
    println!(
        "MEASURE throughput: {moved} clips of {} KiB hot->cool at concurrency {concurrency}: {:.1} s, {:.1} clips/s",
        size / 1024,
        secs,
        moved as f64 / secs
    );
    ensure!(collect(&s.store, Tier::Hot).await?.is_empty());

    // Steady state (region proof and Object Lock check cached, checksum recorded):
    // one more cool -> legal-hold move, counted per operation.
    let ops = [
        "get_bucket_location",
        "get_object_lock_configuration",
        "head_object",
        "get_object",
        "copy_object",
        "put_object_legal_hold",
        "delete_object",
    ];
    let count = |op: &str| m.requests(op, "ok") + m.requests(op, "not_found");
    let cool = listed(&s.store, Tier::Cool, &clips[1].key).await?;
    let before: Vec<u64> = ops.iter().map(|op| count(op)).collect();
    let before_move = m.http_requests_total();
    let steady = s.store.move_clip(&cool, Tier::LegalHold).await?;
    let http_move = m.http_requests_total() - before_move;
    let breakdown: Vec<String> = ops
        .iter()
        .zip(before)
        .map(|(op, b)| (op, count(op) - b))
        .filter(|(_, n)| *n > 0)
        .map(|(op, n)| format!("{op}={n}"))
        .collect();
    ensure!(u64::from(steady.requests) == http_move);
    println!(
        "MEASURE move cool->legal-hold steady state: {} requests (http {http_move}): {}",
        steady.requests,
        breakdown.join(" ")
    );
    // Steady state without a hold: cool -> hot, checksum recorded.
    let cool = listed(&s.store, Tier::Cool, &clips[2].key).await?;
    let before_move = m.http_requests_total();
    let back = s.store.move_clip(&cool, Tier::Hot).await?;
    let http_move = m.http_requests_total() - before_move;
    ensure!(u64::from(back.requests) == http_move && back.source_deleted);
    println!(
        "MEASURE move cool->hot steady state: {} requests (http {http_move})",
        back.requests
    );
    Ok(())
}

fn sorted(mut tags: Vec<Tag>) -> Vec<Tag> {
    tags.sort_by(|a, b| (&a.key, &a.value).cmp(&(&b.key, &b.value)));
    tags
}

/// The point of no return reads each clip's tags as they are now: a clip re-tagged
/// since it was listed shows its new tags, a deleted one is gone, in an unversioned
/// tier (hot) and a versioned one (legal hold, by version), with MinIO's listing
/// extension (one re-listing for the lot, no tag read) and without it (a tag read each).
#[tokio::test]
async fn tags_are_read_again_at_the_point_of_no_return() -> Result<()> {
    for extension in [true, false] {
        let opts = StoreOptions {
            list_metadata: extension,
            ..StoreOptions::default()
        };
        let s = setup(Layout::Separate, opts).await?;
        for tier in [Tier::Hot, Tier::LegalHold] {
            for key in ["a.mp4", "b.mp4", "c.mp4"] {
                s.fx.put(tier, key, &clip_data(key, 100), &tags_for("non-evidential"))
                    .await?;
            }
            // Unrelated clips on both sides of the range.
            for key in ["0.mp4", "z.mp4"] {
                s.fx.put(tier, key, &clip_data(key, 100), &tags_for("theft"))
                    .await?;
            }
            let all = collect(&s.store, tier).await?;
            let clips: Vec<Clip> = ["a.mp4", "b.mp4", "c.mp4"]
                .iter()
                .map(|k| all[*k].clone())
                .collect();
            let loc = s.fx.tiers.get(tier);
            let evidential = tags_for("domestic-abuse");
            retag(&s.fx.s3, &loc.bucket, &loc.object_key("b.mp4"), &evidential).await?;
            s.fx.s3
                .delete_object()
                .bucket(&loc.bucket)
                .key(loc.object_key("c.mp4"))
                .set_version_id(clips[2].version_id.clone())
                .send()
                .await?;

            let m = s.store.metrics();
            let tag_reads = m.requests("get_object_tagging", "ok");
            let now = s.store.current_tags(&clips).await?;
            let now: Vec<Option<Vec<Tag>>> = now.into_iter().map(|t| t.map(sorted)).collect();
            ensure!(
                now == vec![
                    Some(sorted(tags_for("non-evidential"))),
                    Some(sorted(evidential.clone())),
                    None
                ],
                "extension {extension}, {tier}: {now:?}"
            );
            let reads = m.requests("get_object_tagging", "ok") - tag_reads;
            let expected = if extension { 0 } else { 2 };
            ensure!(
                reads == expected,
                "extension {extension}, {tier}: {reads} tag reads, expected {expected}"
            );
        }
    }
    Ok(())
}

/// A clip re-tagged while it is being moved (after its copy was verified, before its
/// source is deleted) gives its copy the new tags: the copy never keeps a category the
/// clip no longer has. One move at a time and many in a batch.
#[tokio::test]
async fn a_clip_retagged_during_its_move_gives_its_copy_the_new_tags() -> Result<()> {
    let base = setup(Layout::Separate, StoreOptions::default()).await?;
    let evidential = tags_for("domestic-abuse");
    let hook: evidence_operator::storage::FaultHook = {
        let (s3, hot, evidential) = (
            base.fx.s3.clone(),
            base.fx.tiers.hot.clone(),
            evidential.clone(),
        );
        Arc::new(move |ctx: evidence_operator::storage::StepContext| {
            let (s3, hot, evidential) = (s3.clone(), hot.clone(), evidential.clone());
            Box::pin(async move {
                if ctx.step == MoveStep::Verified && ctx.clip_key.starts_with("retag-") {
                    retag(
                        &s3,
                        &hot.bucket,
                        &hot.object_key(&ctx.clip_key),
                        &evidential,
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                }
                true
            })
        })
    };
    let store = store_with(
        &base.cfg,
        StoreOptions {
            fault_hook: Some(hook),
            ..StoreOptions::default()
        },
    )
    .await?;
    for key in ["retag-one.mp4", "retag-batch.mp4", "plain-batch.mp4"] {
        seed_one(&base.fx, key, 500).await?;
    }
    let hot = collect(&store, Tier::Hot).await?;

    let out = store.move_clip(&hot["retag-one.mp4"], Tier::Cool).await?;
    ensure!(out.source_deleted, "{out:?}");
    let batch = vec![
        hot["retag-batch.mp4"].clone(),
        hot["plain-batch.mp4"].clone(),
    ];
    let results = store
        .move_clips(
            &batch,
            Tier::Cool,
            2,
            &tokio_util::sync::CancellationToken::new(),
        )
        .await;
    for r in results {
        let out = r.context("started")??;
        ensure!(out.source_deleted, "{out:?}");
    }

    let cool = collect(&store, Tier::Cool).await?;
    for (key, want) in [
        ("retag-one.mp4", &evidential),
        ("retag-batch.mp4", &evidential),
        ("plain-batch.mp4", &tags_for("murder")),
    ] {
        let got = sorted(cool.get(key).context(key)?.tags.clone());
        ensure!(got == sorted(want.clone()), "{key}: {got:?}");
    }
    ensure!(collect(&store, Tier::Hot).await?.is_empty());
    Ok(())
}

/// An endpoint that answers with a redirect to another host does not get the store's
/// request (and its signature) sent on: the S3 client follows no redirect. The endpoint
/// here is a loopback socket answering every request with `307` to a second socket,
/// which counts the connections it gets: none.
#[tokio::test]
async fn a_redirect_from_an_endpoint_is_never_followed() -> Result<()> {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };
    let elsewhere = TcpListener::bind("127.0.0.1:0").await?;
    let target = elsewhere.local_addr()?;
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = reached.clone();
    tokio::spawn(async move {
        while let Ok((_, _)) = elsewhere.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let redirector = TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", redirector.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = redirector.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let _ = conn.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{target}/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    let tiers = Tiers {
        hot: TierLocation::bucket("redirect-hot"),
        cool: TierLocation::bucket("redirect-cool"),
        legal_hold: TierLocation::bucket("redirect-lock"),
    };
    let store = store_with(
        &config(tiers, &endpoint),
        StoreOptions {
            max_attempts: 1,
            ..StoreOptions::default()
        },
    )
    .await?;
    let proved = store.verify_region().await;
    ensure!(proved.is_err(), "a redirect proved a region: {proved:?}");
    ensure!(
        reached.load(Ordering::SeqCst) == 0,
        "the request was sent on to the redirect's host"
    );
    Ok(())
}
