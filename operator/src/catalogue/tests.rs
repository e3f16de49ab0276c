//! The catalogue over the in-memory store (which, like AWS, lists without facts):
//! what a second sweep reads, what a retag, an overwrite, a delete or a lost file
//! cost, and that a catalogued listing always shows what the store itself lists.

#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use futures::TryStreamExt;

use super::{Catalogue, CatalogueMetrics, CatalogueOptions, CataloguedStore, listing};
use crate::{
    api::clip::{Clip, TAG_CATEGORY, Tag, Tier},
    storage::{
        BucketConfig, StaticCredentials, TierLocation, TierStore, Tiers,
        memory::{MemoryObject, MemoryOp, MemoryTierStore},
    },
};

/// A catalogue in a new temporary directory (removed by the caller).
pub(crate) fn temporary(opts: CatalogueOptions) -> (Catalogue, std::path::PathBuf) {
    let d = dir();
    let cat = Catalogue::open(&d, opts, CatalogueMetrics::unregistered()).unwrap();
    (cat, d)
}

fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "evidence-catalogue-test-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A bucket configuration (no request is made with it).
pub(crate) fn config() -> BucketConfig {
    BucketConfig {
        name: "ns/unit".into(),
        declared_region: "eu-west-2".into(),
        endpoint: Some("http://127.0.0.1:9000".into()),
        force_path_style: true,
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

struct Fixture {
    mem: MemoryTierStore,
    cat: Catalogue,
    dir: std::path::PathBuf,
}

impl Fixture {
    fn new(opts: CatalogueOptions) -> Self {
        Self::with(MemoryTierStore::new(), opts)
    }

    fn with(mem: MemoryTierStore, opts: CatalogueOptions) -> Self {
        let dir = dir();
        let cat = Catalogue::open(&dir, opts, CatalogueMetrics::unregistered()).unwrap();
        Fixture { mem, cat, dir }
    }

    fn store(&self) -> CataloguedStore {
        CataloguedStore::new(
            Arc::new(self.mem.sharing()),
            self.cat.bucket("ns/unit", &config()),
        )
    }

    fn seed(&self, n: usize) {
        for i in 0..n {
            self.mem.put_object(
                Tier::Hot,
                &format!("cam-{i:04}.mp4"),
                MemoryObject::new(format!("clip {i}")).tag(TAG_CATEGORY, "non-evidential"),
            );
        }
    }

    fn reads(&self) -> u64 {
        self.mem.calls(MemoryOp::ReadFacts)
    }

    /// A listing through the catalogue at `now`, sorted by key.
    async fn list_at(&self, store: &CataloguedStore, now: chrono::DateTime<Utc>) -> Vec<Clip> {
        let bucket = self.cat.bucket("ns/unit", &config());
        let mut clips: Vec<Clip> = listing::list(&bucket, store, Tier::Hot, now)
            .try_collect()
            .await
            .unwrap();
        clips.sort_by(|a, b| a.key.cmp(&b.key));
        clips
    }

    /// What the store itself lists (all facts), sorted by key.
    async fn truth(&self) -> Vec<Clip> {
        let mut clips: Vec<Clip> = self.mem.list(Tier::Hot).try_collect().await.unwrap();
        clips.sort_by(|a, b| a.key.cmp(&b.key));
        clips
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_second_listing_reads_no_facts_and_shows_the_same_clips() {
    let fx = Fixture::new(CatalogueOptions::default());
    fx.seed(250);
    let store = fx.store();
    let now = Utc::now();
    let first = fx.list_at(&store, now).await;
    assert_eq!(fx.reads(), 250, "the first listing reads every clip");
    assert_eq!(first, fx.truth().await);
    let second = fx.list_at(&store, now).await;
    assert_eq!(fx.reads(), 250, "the second listing reads nothing");
    assert_eq!(second, first);
    assert_eq!(fx.cat.metrics.lookups("hit"), 250);
}

#[tokio::test]
async fn a_retag_is_seen_at_the_refresh_and_the_refresh_is_spread_over_the_interval() {
    let fx = Fixture::new(CatalogueOptions {
        tag_refresh: Duration::from_secs(24 * 3600),
        ..CatalogueOptions::default()
    });
    fx.seed(200);
    let store = fx.store();
    let t0 = Utc::now();
    fx.list_at(&store, t0).await;
    let evidential = [Tag::new(TAG_CATEGORY, "evidential")];
    fx.mem
        .retag(Tier::Hot, "cam-0007.mp4", &evidential)
        .unwrap();
    // An hour later: only the clips whose phase passed are read again, a small share.
    fx.list_at(&store, t0 + chrono::Duration::hours(1)).await;
    let hour = fx.reads() - 200;
    assert!(hour < 40, "{hour} of 200 clips refreshed in the first hour");
    // A day later: every clip has been read again, the retag is seen.
    let mut reads_per_hour = vec![hour];
    let mut last = fx.reads();
    for h in 2..=24 {
        fx.list_at(&store, t0 + chrono::Duration::hours(h)).await;
        reads_per_hour.push(fx.reads() - last);
        last = fx.reads();
    }
    assert_eq!(
        last - 200,
        200,
        "each clip read again exactly once in the day: {reads_per_hour:?}"
    );
    assert!(reads_per_hour.iter().all(|n| *n < 40), "{reads_per_hour:?}");
    let after = fx.list_at(&store, t0 + chrono::Duration::hours(25)).await;
    assert_eq!(after, fx.truth().await);
    let clip = after.iter().find(|c| c.key == "cam-0007.mp4").unwrap();
    assert_eq!(clip.tags, evidential.to_vec());
}

#[tokio::test]
async fn an_overwrite_is_read_again_and_a_deleted_clip_leaves_the_catalogue() {
    let fx = Fixture::new(CatalogueOptions::default());
    fx.seed(20);
    let store = fx.store();
    let now = Utc::now();
    fx.list_at(&store, now).await;
    fx.mem.put_object(
        Tier::Hot,
        "cam-0003.mp4",
        MemoryObject::new("another clip").tag(TAG_CATEGORY, "evidential"),
    );
    let gone: Vec<Clip> = fx
        .truth()
        .await
        .into_iter()
        .filter(|c| c.key == "cam-0005.mp4" || c.key == "cam-0019.mp4")
        .collect();
    // Deleted behind the operator's back (the store's own delete, not the catalogue's).
    fx.mem.delete_clips(&gone).await.unwrap();
    let listed = fx.list_at(&store, now).await;
    assert_eq!(fx.reads(), 21, "only the overwritten clip is read again");
    assert_eq!(listed, fx.truth().await);
    assert_eq!(fx.cat.metrics.lookups("changed"), 1);
    let bucket = fx.cat.bucket("ns/unit", &config());
    let entries = bucket
        .db
        .range(bucket.table(Tier::Hot).to_string(), None, None)
        .await
        .unwrap();
    assert_eq!(entries.len(), 18, "the deleted clips' entries are removed");
}

#[tokio::test]
async fn a_lost_or_unreadable_catalogue_is_rebuilt_from_storage() {
    let fx = Fixture::new(CatalogueOptions::default());
    fx.seed(30);
    let now = Utc::now();
    fx.list_at(&fx.store(), now).await;
    // The file replaced by garbage: opened as a new catalogue, every clip read again.
    let path = fx.dir.join("catalogue.redb");
    let other = dir();
    std::fs::write(other.join("catalogue.redb"), b"not a database").unwrap();
    let cat = Catalogue::open(
        &other,
        CatalogueOptions::default(),
        CatalogueMetrics::unregistered(),
    )
    .unwrap();
    assert!(other.join("catalogue.redb.unreadable").exists());
    let store = CataloguedStore::new(Arc::new(fx.mem.sharing()), cat.bucket("ns/unit", &config()));
    let bucket = cat.bucket("ns/unit", &config());
    let mut listed: Vec<Clip> = listing::list(&bucket, &store, Tier::Hot, now)
        .try_collect()
        .await
        .unwrap();
    listed.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(listed, fx.truth().await);
    assert_eq!(fx.reads(), 60, "every clip read again");
    assert!(path.exists());
    let _ = std::fs::remove_dir_all(&other);
}

#[tokio::test]
async fn what_the_operator_acts_on_is_read_again_and_nothing_else() {
    let fx = Fixture::with(
        MemoryTierStore::new().versioned(Tier::LegalHold, true),
        CatalogueOptions::default(),
    );
    for i in 0..10 {
        fx.mem.put_object(
            Tier::LegalHold,
            &format!("held-{i}.mp4"),
            MemoryObject::new(format!("clip {i}")).recorded_sha256(),
        );
    }
    let store = fx.store();
    let bucket = fx.cat.bucket("ns/unit", &config());
    let list = |now| {
        let store = &store;
        let bucket = &bucket;
        async move {
            let clips: Vec<Clip> = listing::list(bucket, store, Tier::LegalHold, now)
                .try_collect()
                .await
                .unwrap();
            clips
        }
    };
    let now = Utc::now();
    let clips = list(now).await;
    assert!(clips.iter().all(|c| !c.legal_hold));
    let target = clips.iter().find(|c| c.key == "held-4.mp4").unwrap();
    store.set_legal_hold(target, true).await.unwrap();
    let after = list(now).await;
    assert_eq!(fx.reads(), 11, "only the clip put under hold is read again");
    let held: Vec<&str> = after
        .iter()
        .filter(|c| c.legal_hold)
        .map(|c| c.key.as_str())
        .collect();
    assert_eq!(held, vec!["held-4.mp4"]);
}

#[tokio::test]
async fn a_large_tier_is_listed_in_parallel_ranges_learned_from_the_last_listing() {
    let fx = Fixture::new(CatalogueOptions {
        split_every: 100,
        list_ranges: 3,
        ..CatalogueOptions::default()
    });
    fx.seed(1050);
    let store = fx.store();
    let now = Utc::now();
    let first = fx.list_at(&store, now).await;
    assert_eq!(
        fx.mem.calls(MemoryOp::List),
        1,
        "no split points yet: one range"
    );
    let bucket = fx.cat.bucket("ns/unit", &config());
    let splits = bucket
        .db
        .splits(bucket.table(Tier::Hot).to_string())
        .await
        .unwrap();
    assert_eq!(splits.len(), 10, "{splits:?}");
    assert_eq!(splits[0], "cam-0099.mp4");
    // New clips before, between and after the split points.
    fx.mem
        .put_object(Tier::Hot, "a-first.mp4", MemoryObject::new("a"));
    fx.mem
        .put_object(Tier::Hot, "cam-0099b.mp4", MemoryObject::new("b"));
    fx.mem
        .put_object(Tier::Hot, "zz-last.mp4", MemoryObject::new("z"));
    let second = fx.list_at(&store, now).await;
    assert_eq!(fx.mem.calls(MemoryOp::List), 12, "eleven ranges");
    assert_eq!(second.len(), first.len() + 3);
    assert_eq!(second, fx.truth().await);
    assert_eq!(fx.reads(), 1053, "each clip read once");
}

#[tokio::test]
async fn an_unlisted_tier_is_refreshed_from_the_catalogue_on_each_clips_phase() {
    // Small batches: a refresh goes on batch after batch until nothing is due.
    let fx = Fixture::new(CatalogueOptions {
        refresh_batch: 7,
        ..CatalogueOptions::default()
    });
    fx.seed(300);
    let store = fx.store();
    let bucket = fx.cat.bucket("ns/unit", &config());
    let t0 = Utc::now();
    fx.list_at(&store, t0).await;
    // Nothing due at once.
    let none = bucket
        .refresh_unlisted(&store, Tier::Hot, t0)
        .await
        .unwrap();
    assert_eq!(none, super::Refreshed::default());
    fx.mem
        .retag(
            Tier::Hot,
            "cam-0042.mp4",
            &[Tag::new(TAG_CATEGORY, "evidential")],
        )
        .unwrap();
    // Hour by hour, a share of the clips; over a day, each once, the retag found.
    let (mut read, mut changed) = (0, 0);
    for h in 1..=24 {
        let r = bucket
            .refresh_unlisted(&store, Tier::Hot, t0 + chrono::Duration::hours(h))
            .await
            .unwrap();
        assert!(r.read < 60, "{} of 300 refreshed in hour {h}", r.read);
        read += r.read;
        changed += r.changed;
    }
    assert_eq!((read, changed), (300, 1));
    assert_eq!(fx.reads(), 600);
    // Recorded: the listing now shows the new tags without reading them.
    let listed = fx.list_at(&store, t0 + chrono::Duration::hours(24)).await;
    assert_eq!(fx.reads(), 600);
    assert_eq!(listed, fx.truth().await);
}

#[tokio::test]
async fn objects_under_a_skipped_prefix_are_passed_on_unread() {
    let fx = Fixture::new(CatalogueOptions::default());
    fx.seed(5);
    fx.mem.put_object(
        Tier::Hot,
        "audit/ns/b/000001.json",
        MemoryObject::new("record"),
    );
    let store = CataloguedStore::new(
        Arc::new(fx.mem.sharing()),
        fx.cat
            .bucket("ns/unit", &config())
            .with_skip(vec![(Tier::Hot, "audit/".into())]),
    );
    let listed: Vec<Clip> = store
        .list_at(Tier::Hot, Utc::now())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 6);
    assert_eq!(fx.reads(), 5, "the audit record's facts are not read");
}

#[tokio::test]
async fn the_leadership_term_outlives_the_process_and_a_new_leader_starts_another() {
    let (cat, dir) = temporary(CatalogueOptions::default());
    let first = cat.bucket("ns/unit", &config()).term();
    drop(cat);
    let again = Catalogue::open(
        &dir,
        CatalogueOptions::default(),
        CatalogueMetrics::unregistered(),
    )
    .unwrap();
    assert_eq!(
        again.bucket("ns/unit", &config()).term(),
        first,
        "kept across opens"
    );
    again.begin_term().await;
    let next = again.bucket("ns/unit", &config()).term();
    assert_ne!(next, first);
    drop(again);
    let third = Catalogue::open(
        &dir,
        CatalogueOptions::default(),
        CatalogueMetrics::unregistered(),
    )
    .unwrap();
    assert_eq!(
        third.bucket("ns/unit", &config()).term(),
        next,
        "the new term is recorded"
    );
    let _ = std::fs::remove_dir_all(dir);
}
