//! The catalogue's file: one redb database with, per evidence bucket and tier, a table
//! of entries (clip key → encoded [`Entry`]) and its refresh index (`<when the entry's
//! facts fall due>/<clip key>`, kept in the same transactions, so that the clips of a
//! tier that is not listed can be refreshed without scanning it); a table of split
//! points (tier table → the keys that cut the tier into ranges of about equal size);
//! and a table of tier memos (tier table → what its last quiet listing found). redb is
//! synchronous: every transaction runs on tokio's blocking pool, one page at a time.

use std::{
    ops::Bound,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use super::entry::{Entry, next_refresh};

/// The split points of each tier table.
const SPLITS: TableDefinition<&str, &[u8]> = TableDefinition::new("splits");
/// The memo of each tier table (keyed by the table), and where the reader of each
/// bucket's audit chain is (`chain/<hot table>`, `super::ingested`).
const MEMOS: TableDefinition<&str, &[u8]> = TableDefinition::new("memos");
/// Small values of the catalogue itself (`term`: the leadership term memos belong to).
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The refresh index of a tier table for one refresh interval: an index is only ever
/// written with the interval in its name, so a change of `--tag-refresh-interval` starts
/// a new one (filled as entries are read again) instead of leaving keys that no longer
/// match their entries.
fn index_table(table: &str, interval: Duration) -> String {
    format!("refresh/{}/{table}", interval.as_secs())
}

/// The index key of an entry: when it falls due (zero-padded, so keys sort by time),
/// then the clip key.
fn index_key(key: &str, entry: &Entry, interval: Duration) -> String {
    let due = next_refresh(key, entry.read_at, interval).max(0);
    format!("{due:020}/{key}")
}

/// A catalogue read or write that failed. Never fatal: the sweep reads the facts from
/// storage instead.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// The database file could not be opened or created.
    #[error("opening the clip catalogue {path}: {message}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A read or write failed.
    #[error("clip catalogue: {0}")]
    Db(String),
}

fn db_err(e: impl std::fmt::Display) -> CatalogueError {
    CatalogueError::Db(e.to_string())
}

/// Of the writes a listing makes, one in this many is committed durably (an fsync);
/// the others are committed in memory only. The catalogue is a cache: a crash loses at
/// most the last few pages' entries (read again next sweep), and memory holds at most
/// this many pages of undurable writes.
const DURABLE_EVERY: u64 = 16;

/// The database.
#[derive(Debug)]
pub(super) struct Db {
    db: Arc<Database>,
    /// Writes so far, to make every [`DURABLE_EVERY`]th durable.
    writes: AtomicU64,
}

impl Db {
    /// Open `dir/catalogue.redb`, or create it; a file redb cannot open is renamed
    /// `catalogue.redb.unreadable` and a new one created. Also the recorded term.
    pub(super) fn open(dir: &Path, cache_bytes: usize) -> Result<(Self, u64), CatalogueError> {
        let path = dir.join("catalogue.redb");
        let open_err = |e: &dyn std::fmt::Display| CatalogueError::Open {
            path: path.clone(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(&e))?;
        let create = || {
            Database::builder()
                .set_cache_size(cache_bytes)
                .create(&path)
        };
        let db = match create() {
            Ok(db) => db,
            Err(e @ redb::DatabaseError::DatabaseAlreadyOpen) => return Err(open_err(&e)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e,
                    "the clip catalogue cannot be read; starting a new one (it is rebuilt from storage)");
                let aside = dir.join("catalogue.redb.unreadable");
                std::fs::rename(&path, &aside).map_err(|e| open_err(&e))?;
                create().map_err(|e| open_err(&e))?
            }
        };
        // The leadership term tier memos belong to: kept across processes (a new leader
        // starts a new one), created with the file.
        let term = match read_term(&db)? {
            Some(term) => term,
            None => {
                let term = rand::random();
                write_term(&db, term)?;
                term
            }
        };
        Ok((
            Db {
                db: Arc::new(db),
                writes: AtomicU64::new(0),
            },
            term,
        ))
    }

    /// The entries of `table` with keys in (`after`, `until`] (open ends: `None`), in
    /// key order. Entries this version cannot decode are left out (read again).
    pub(super) async fn range(
        &self,
        table: String,
        after: Option<String>,
        until: Option<String>,
    ) -> Result<Vec<(String, Entry)>, CatalogueError> {
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_read().map_err(db_err)?;
            let def: TableDefinition<&str, &[u8]> = TableDefinition::new(&table);
            let t = match txn.open_table(def) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(db_err(e)),
            };
            let lo = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let hi = until.as_deref().map_or(Bound::Unbounded, Bound::Included);
            let mut out = Vec::new();
            let bounds: (Bound<&str>, Bound<&str>) = (lo, hi);
            for item in t.range(bounds).map_err(db_err)? {
                let (k, v) = item.map_err(db_err)?;
                if let Some(e) = Entry::decode(v.value()) {
                    out.push((k.value().to_string(), e));
                }
            }
            Ok(out)
        })
        .await
    }

    /// Insert `put` and remove `remove` in `table`, in one transaction, keeping its
    /// refresh index (for `interval`) in step. `durable`: committed to disk before this
    /// returns (what the operator's own actions forget); otherwise only one write in
    /// [`DURABLE_EVERY`] is (a listing's pages).
    pub(super) async fn write(
        &self,
        table: String,
        put: Vec<(String, Entry)>,
        remove: Vec<String>,
        interval: Duration,
        durable: bool,
    ) -> Result<(), CatalogueError> {
        if put.is_empty() && remove.is_empty() {
            return Ok(());
        }
        let n = self.writes.fetch_add(1, Ordering::Relaxed) + 1;
        let durable = durable || n.is_multiple_of(DURABLE_EVERY);
        let db = self.db.clone();
        blocking(move || {
            let mut txn = db.begin_write().map_err(db_err)?;
            if !durable {
                // Refused only where processes share the file: then durable it is.
                let _ = txn.set_durability(Durability::None);
            }
            {
                let def: TableDefinition<&str, &[u8]> = TableDefinition::new(&table);
                let index_name = index_table(&table, interval);
                let index_def: TableDefinition<&str, &[u8]> = TableDefinition::new(&index_name);
                let mut t = txn.open_table(def).map_err(db_err)?;
                let mut index = txn.open_table(index_def).map_err(db_err)?;
                let keys = remove.iter().chain(put.iter().map(|(k, _)| k));
                for key in keys {
                    let old = t.remove(key.as_str()).map_err(db_err)?;
                    if let Some(old) = old.and_then(|v| Entry::decode(v.value())) {
                        index
                            .remove(index_key(key, &old, interval).as_str())
                            .map_err(db_err)?;
                    }
                }
                for (key, entry) in &put {
                    t.insert(key.as_str(), entry.encode().as_slice())
                        .map_err(db_err)?;
                    index
                        .insert(index_key(key, entry, interval).as_str(), &[][..])
                        .map_err(db_err)?;
                }
            }
            txn.commit().map_err(db_err)
        })
        .await
    }

    /// Insert entries learned from the audit chain (`super::ingested`), each unless the
    /// table already holds an entry for the same write (version id, ETag and size):
    /// what was read from storage, or already seen listed, is not replaced by what a
    /// record says. Durable, as a record once passed is not read again.
    pub(super) async fn seed(
        &self,
        table: String,
        put: Vec<(String, Entry)>,
        interval: Duration,
    ) -> Result<(), CatalogueError> {
        if put.is_empty() {
            return Ok(());
        }
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_write().map_err(db_err)?;
            {
                let def: TableDefinition<&str, &[u8]> = TableDefinition::new(&table);
                let index_name = index_table(&table, interval);
                let index_def: TableDefinition<&str, &[u8]> = TableDefinition::new(&index_name);
                let mut t = txn.open_table(def).map_err(db_err)?;
                let mut index = txn.open_table(index_def).map_err(db_err)?;
                for (key, entry) in &put {
                    let old = t
                        .get(key.as_str())
                        .map_err(db_err)?
                        .and_then(|v| Entry::decode(v.value()));
                    if let Some(old) = &old {
                        if old.version_id == entry.version_id
                            && old.etag == entry.etag
                            && old.size == entry.size
                        {
                            continue;
                        }
                        index
                            .remove(index_key(key, old, interval).as_str())
                            .map_err(db_err)?;
                    }
                    t.insert(key.as_str(), entry.encode().as_slice())
                        .map_err(db_err)?;
                    index
                        .insert(index_key(key, entry, interval).as_str(), &[][..])
                        .map_err(db_err)?;
                }
            }
            txn.commit().map_err(db_err)
        })
        .await
    }

    /// Up to `limit` entries of `table` whose facts are due for their refresh at `now`
    /// (seconds), soonest first.
    pub(super) async fn due(
        &self,
        table: String,
        now: i64,
        limit: usize,
        interval: Duration,
    ) -> Result<Vec<(String, Entry)>, CatalogueError> {
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_read().map_err(db_err)?;
            let index_name = index_table(&table, interval);
            let index_def: TableDefinition<&str, &[u8]> = TableDefinition::new(&index_name);
            let def: TableDefinition<&str, &[u8]> = TableDefinition::new(&table);
            let (index, t) = match (txn.open_table(index_def), txn.open_table(def)) {
                (Ok(i), Ok(t)) => (i, t),
                (Err(TableError::TableDoesNotExist(_)), _)
                | (_, Err(TableError::TableDoesNotExist(_))) => return Ok(Vec::new()),
                (Err(e), _) | (_, Err(e)) => return Err(db_err(e)),
            };
            // Every index key due at `now` sorts before "<now + 1>/".
            let end = format!("{:020}/", now.saturating_add(1).max(0));
            let bounds: (Bound<&str>, Bound<&str>) =
                (Bound::Unbounded, Bound::Excluded(end.as_str()));
            let mut out = Vec::new();
            for item in index.range(bounds).map_err(db_err)? {
                if out.len() >= limit {
                    break;
                }
                let (k, _) = item.map_err(db_err)?;
                let Some((_, key)) = k.value().split_once('/') else {
                    continue;
                };
                if let Some(e) = t
                    .get(key)
                    .map_err(db_err)?
                    .and_then(|v| Entry::decode(v.value()))
                {
                    out.push((key.to_string(), e));
                }
            }
            Ok(out)
        })
        .await
    }

    /// The memo recorded for `table`, when there is one this version can read.
    pub(super) async fn memo<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        table: String,
    ) -> Result<Option<T>, CatalogueError> {
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_read().map_err(db_err)?;
            let t = match txn.open_table(MEMOS) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(db_err(e)),
            };
            Ok(t.get(table.as_str())
                .map_err(db_err)?
                .and_then(|v| serde_json::from_slice(v.value()).ok()))
        })
        .await
    }

    /// Record (or, with `None`, remove) the memo of `table`.
    pub(super) async fn set_memo<T: serde::Serialize + Send + 'static>(
        &self,
        table: String,
        memo: Option<T>,
    ) -> Result<(), CatalogueError> {
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_write().map_err(db_err)?;
            {
                let mut t = txn.open_table(MEMOS).map_err(db_err)?;
                match memo {
                    Some(m) => {
                        let value = serde_json::to_vec(&m).map_err(db_err)?;
                        t.insert(table.as_str(), value.as_slice()).map_err(db_err)?;
                    }
                    None => {
                        t.remove(table.as_str()).map_err(db_err)?;
                    }
                }
            }
            txn.commit().map_err(db_err)
        })
        .await
    }

    /// Record the leadership term (durably).
    pub(super) async fn set_term(&self, term: u64) -> Result<(), CatalogueError> {
        let db = self.db.clone();
        blocking(move || write_term(&db, term)).await
    }

    /// The split points recorded for `table` (empty when none).
    pub(super) async fn splits(&self, table: String) -> Result<Vec<String>, CatalogueError> {
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_read().map_err(db_err)?;
            let t = match txn.open_table(SPLITS) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(db_err(e)),
            };
            Ok(t.get(table.as_str())
                .map_err(db_err)?
                .and_then(|v| serde_json::from_slice(v.value()).ok())
                .unwrap_or_default())
        })
        .await
    }

    /// Record the split points of `table`.
    pub(super) async fn set_splits(
        &self,
        table: String,
        splits: Vec<String>,
    ) -> Result<(), CatalogueError> {
        let db = self.db.clone();
        blocking(move || {
            let value = serde_json::to_vec(&splits).map_err(db_err)?;
            let txn = db.begin_write().map_err(db_err)?;
            {
                let mut t = txn.open_table(SPLITS).map_err(db_err)?;
                t.insert(table.as_str(), value.as_slice()).map_err(db_err)?;
            }
            txn.commit().map_err(db_err)
        })
        .await
    }
}

fn read_term(db: &Database) -> Result<Option<u64>, CatalogueError> {
    let txn = db.begin_read().map_err(db_err)?;
    let t = match txn.open_table(META) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(db_err(e)),
    };
    Ok(t.get("term").map_err(db_err)?.map(|v| v.value()))
}

fn write_term(db: &Database, term: u64) -> Result<(), CatalogueError> {
    let txn = db.begin_write().map_err(db_err)?;
    {
        let mut t = txn.open_table(META).map_err(db_err)?;
        t.insert("term", term).map_err(db_err)?;
    }
    txn.commit().map_err(db_err)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CatalogueError> + Send + 'static,
) -> Result<T, CatalogueError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CatalogueError::Db(format!("catalogue task: {e}")))?
}
