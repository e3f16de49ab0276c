//! The clip catalogue: what the operator learned about each clip (its identity as
//! listed, its tags, hold and recorded checksum), so that a sweep lists keys and reads
//! per-clip facts only for clips that are new, changed, or due for their periodic
//! refresh, instead of one tag read per clip per sweep on stores without MinIO's
//! listing extension (AWS S3, Ceph, SeaweedFS).
//!
//! It is a **cache**, never a source of truth: S3 is. An entry is used only while the
//! listing still shows the very version it was read from ([`Entry::describes`]); a lost
//! or unreadable catalogue costs one sweep of reads, never a clip; and every destructive
//! action still re-reads what it depends on at the point of no return (the storage
//! layer's `current_tags`, the mover's source checks). A person's retag, which S3
//! listings do not show, is picked up by the refresh: each clip's facts are read again
//! once per `tag_refresh` interval, at a phase of its own, so the reads spread over the
//! interval ([`entry::refresh_due`]).
//!
//! Kept clips in the cool and legal-hold tiers fall due years later: after a quiet
//! listing, such a tier is not listed again until its plan inputs change, a clip falls
//! due, a clip is moved into it, a refresh finds a change, or the refresh interval
//! passes ([`memo`]).
//!
//! Storage: one embedded [redb](https://docs.rs/redb) file on local disk (an `emptyDir`
//! in the chart), one table per evidence bucket and tier. Memory stays bounded whatever
//! the number of clips: one listing page of entries at a time, plus redb's page cache
//! (`cache_bytes`, 8 MiB). See `docs/scale.md` for why not objects in S3.
//!
//! | module | what |
//! |---|---|
//! | [`entry`] | an [`Entry`], identity and refresh rules (pure) |
//! | [`ingested`] | entries learned from the audit chain's `ingested` records, before the clips are first listed |
//! | `db` (private) | the redb file: tables, range reads, batched writes, split points |
//! | `listing` (private) | a catalogued listing: pages merged with the entries, reads only where needed, parallel key ranges |
//! | [`memo`] | tiers that need no listing: a quiet tier's [`TierMemo`], its clips refreshed from the catalogue |
//! | [`store`] | [`CataloguedStore`]: a `TierStore` that lists through the catalogue and forgets what it acts on |

mod db;
pub mod entry;
pub mod ingested;
mod listing;
pub mod memo;
pub mod store;
#[cfg(test)]
pub(crate) mod tests;

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

pub use self::{
    db::CatalogueError,
    entry::Entry,
    memo::{Refreshed, TierMemo, TierSummary},
    store::CataloguedStore,
};
use crate::{
    api::clip::Tier,
    storage::{BucketConfig, TierLocation},
};

/// How the catalogue is used.
#[derive(Debug, Clone)]
pub struct CatalogueOptions {
    /// Each clip's facts are read again at least this often (a retag by a person is
    /// seen within it).
    pub tag_refresh: Duration,
    /// Key ranges of one tier listed at once.
    pub list_ranges: usize,
    /// A tier is split into ranges of about this many clips (learned from the previous
    /// complete listing).
    pub split_every: usize,
    /// Facts read at once within one range.
    pub read_concurrency: usize,
    /// redb's page cache, bytes.
    pub cache_bytes: usize,
    /// Facts refreshed from the catalogue per batch when a tier is not listed (one read
    /// of the index, one write): what bounds a refresh's memory, however many fall due.
    pub refresh_batch: usize,
}

impl Default for CatalogueOptions {
    fn default() -> Self {
        CatalogueOptions {
            tag_refresh: Duration::from_secs(24 * 3600),
            list_ranges: 4,
            split_every: 100_000,
            read_concurrency: 16,
            cache_bytes: 8 * 1024 * 1024,
            refresh_batch: 10_000,
        }
    }
}

/// Catalogue metrics (labels bounded: the outcome of a lookup).
#[derive(Debug, Clone)]
pub struct CatalogueMetrics {
    lookups: IntCounterVec,
    removed: IntCounter,
    errors: IntCounter,
}

impl CatalogueMetrics {
    /// Metrics registered in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self::unregistered();
        registry.register(Box::new(m.lookups.clone()))?;
        registry.register(Box::new(m.removed.clone()))?;
        registry.register(Box::new(m.errors.clone()))?;
        Ok(m)
    }

    /// Metrics registered nowhere (tests, one-off commands).
    pub fn unregistered() -> Self {
        // Static names and labels: these constructors cannot fail.
        let lookups = IntCounterVec::new(
            Opts::new(
                "catalogue_lookups_total",
                "Listed clips by what the catalogue knew: hit (facts reused), ingested (facts from the ingest's audit record), new, changed (another version), refresh (periodic re-read), listed (the listing carried the facts)",
            ),
            &["result"],
        );
        let removed = IntCounter::new(
            "catalogue_entries_removed_total",
            "Catalogue entries removed because their clip was no longer listed or was acted on",
        );
        let errors = IntCounter::new(
            "catalogue_errors_total",
            "Catalogue reads or writes that failed (the clips' facts were read from storage instead)",
        );
        match (lookups, removed, errors) {
            (Ok(lookups), Ok(removed), Ok(errors)) => CatalogueMetrics {
                lookups,
                removed,
                errors,
            },
            _ => unreachable!("static metric definitions are valid"),
        }
    }

    pub(crate) fn lookup(&self, result: &str, n: u64) {
        if n > 0 {
            self.lookups.with_label_values(&[result]).inc_by(n);
        }
    }

    pub(crate) fn removed(&self, n: u64) {
        self.removed.inc_by(n);
    }

    pub(crate) fn error(&self) {
        self.errors.inc();
    }

    /// Lookups with this result so far.
    pub fn lookups(&self, result: &str) -> u64 {
        self.lookups.with_label_values(&[result]).get()
    }
}

/// The catalogue of one operator process: one file, shared by every evidence bucket.
#[derive(Debug, Clone)]
pub struct Catalogue {
    db: Arc<db::Db>,
    opts: CatalogueOptions,
    metrics: CatalogueMetrics,
    term: Arc<AtomicU64>,
}

impl Catalogue {
    /// Open (or create) the catalogue in `dir`. A file that cannot be read is set aside
    /// and a new one started: the catalogue is rebuilt from storage by the next sweeps.
    pub fn open(
        dir: &Path,
        opts: CatalogueOptions,
        metrics: CatalogueMetrics,
    ) -> Result<Self, CatalogueError> {
        let (db, term) = db::Db::open(dir, opts.cache_bytes)?;
        Ok(Catalogue {
            db: Arc::new(db),
            opts,
            metrics,
            term: Arc::new(AtomicU64::new(term)),
        })
    }

    /// Start a new leadership term: tier memos recorded before it no longer hold (while
    /// this replica was not leading, another may have changed the tiers). The operator
    /// starts one each time it becomes leader, its first time included; a process that
    /// only sweeps (a benchmark) keeps the recorded one.
    pub async fn begin_term(&self) {
        let term = rand::random();
        self.term.store(term, Ordering::SeqCst);
        if let Err(e) = self.db.set_term(term).await {
            self.metrics.error();
            tracing::warn!(error = %e, "could not record the catalogue's term");
        }
    }

    /// The catalogue of one evidence bucket (`namespace/name`) with this storage
    /// configuration: a bucket whose tier locations change starts a new catalogue.
    pub fn bucket(&self, name: &str, cfg: &BucketConfig) -> BucketCatalogue {
        BucketCatalogue {
            db: self.db.clone(),
            opts: self.opts.clone(),
            metrics: self.metrics.clone(),
            term: self.term.clone(),
            skip: Vec::new(),
            tables: Tier::ALL
                .map(|tier| table_name(name, cfg.endpoint.as_deref(), tier, cfg.tiers.get(tier))),
        }
    }

    /// The options it was opened with.
    pub fn options(&self) -> &CatalogueOptions {
        &self.opts
    }

    /// Its metrics.
    pub fn metrics(&self) -> &CatalogueMetrics {
        &self.metrics
    }
}

/// The table of one tier: the bucket's name and tier, and a digest of where the tier's
/// objects are, so that entries never outlive a change of location.
fn table_name(bucket: &str, endpoint: Option<&str>, tier: Tier, loc: &TierLocation) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(
        format!(
            "{}\n{}\n{}\n{}",
            endpoint.unwrap_or("aws"),
            loc.bucket,
            loc.prefix,
            loc.class()
        )
        .as_bytes(),
    );
    format!("clips/{bucket}/{tier}/{}", hex::encode(&digest[..8]))
}

/// One evidence bucket's part of the catalogue.
#[derive(Debug, Clone)]
pub struct BucketCatalogue {
    db: Arc<db::Db>,
    opts: CatalogueOptions,
    metrics: CatalogueMetrics,
    term: Arc<AtomicU64>,
    /// Key prefixes (relative to a tier's prefix) that hold no clips: listed objects
    /// there are passed on without reading or remembering their facts.
    skip: Vec<(Tier, String)>,
    tables: [String; 3],
}

impl BucketCatalogue {
    /// The same, passing on objects under these prefixes (per tier, relative to the
    /// tier's prefix: the audit chain, the storage claims) without reading their facts.
    pub fn with_skip(mut self, skip: Vec<(Tier, String)>) -> Self {
        self.skip = skip;
        self
    }

    fn skipped(&self, tier: Tier, key: &str) -> bool {
        self.skip
            .iter()
            .any(|(t, prefix)| *t == tier && key.starts_with(prefix.as_str()))
    }

    fn term(&self) -> u64 {
        self.term.load(Ordering::SeqCst)
    }

    fn table(&self, tier: Tier) -> &str {
        match tier {
            Tier::Hot => &self.tables[0],
            Tier::Cool => &self.tables[1],
            Tier::LegalHold => &self.tables[2],
        }
    }

    /// Forget what is known of `keys` in `tier` (the operator acted on them: their
    /// facts are read again when next listed). Failures are counted and logged only:
    /// an entry that survives no longer describes the listed version, or is refreshed.
    pub(crate) async fn forget(&self, tier: Tier, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        let n = keys.len() as u64;
        match self
            .db
            .write(
                self.table(tier).to_string(),
                Vec::new(),
                keys,
                self.opts.tag_refresh,
                true,
            )
            .await
        {
            Ok(()) => self.metrics.removed(n),
            Err(e) => {
                self.metrics.error();
                tracing::warn!(error = %e, "could not update the clip catalogue");
            }
        }
    }
}
