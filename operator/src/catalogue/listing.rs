//! A catalogued listing of one tier: the tier's key ranges listed at once (split points
//! learned from the previous complete listing), each page merged with the catalogue's
//! entries for the same keys, so that facts are read from storage only for objects that
//! are new, changed, or due for their refresh. Entries of objects no longer listed are
//! removed as the listing passes them. Memory: a page of objects and entries per range.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use futures::{
    StreamExt,
    stream::{self, BoxStream},
};

use super::{BucketCatalogue, entry::Entry, entry::refresh_due};
use crate::{
    api::clip::{Clip, Tier},
    storage::{KeyRange, ListedObject, StorageError, TierStore},
};

/// Objects merged with the catalogue at a time (one list page).
const PAGE: usize = 1000;

/// What one range learned for the next listing's split points.
#[derive(Debug, Default)]
struct Learned {
    /// Every `split_every`-th key of each range, by range.
    samples: Vec<Vec<String>>,
    /// Ranges listed to their end.
    complete: usize,
}

/// Where one range's listing is.
struct RangeState<'a> {
    index: usize,
    range: KeyRange,
    pages: BoxStream<'a, Vec<Result<ListedObject, StorageError>>>,
    /// The last key merged: the next page's entries start after it.
    last: Option<String>,
    seen: usize,
    done: bool,
}

/// Every clip of `tier`, through the catalogue.
pub(super) fn list<'a>(
    cat: &'a BucketCatalogue,
    store: &'a dyn TierStore,
    tier: Tier,
    now: DateTime<Utc>,
) -> BoxStream<'a, Result<Clip, StorageError>> {
    let table = cat.table(tier).to_string();
    let learned = Arc::new(Mutex::new(Learned::default()));
    let start = {
        let table = table.clone();
        async move {
            let splits = match cat.db.splits(table).await {
                Ok(s) => s,
                Err(e) => {
                    cat.metrics.error();
                    tracing::warn!(error = %e, "could not read the catalogue's split points; listing in one range");
                    Vec::new()
                }
            };
            KeyRange::split(&splits)
        }
    };
    let finish_learned = learned.clone();
    let finish_table = table.clone();
    stream::once(start)
        .flat_map(move |ranges| {
            let n = ranges.len();
            if let Ok(mut l) = learned.lock() {
                l.samples = vec![Vec::new(); n];
            }
            let learned = learned.clone();
            let table = table.clone();
            stream::iter(ranges.into_iter().enumerate())
                .map(move |(index, range)| {
                    range_clips(
                        cat,
                        store,
                        tier,
                        now,
                        table.clone(),
                        learned.clone(),
                        index,
                        range,
                    )
                })
                .flatten_unordered(cat.opts.list_ranges.max(1))
        })
        .chain(
            stream::once(async move {
                // Every range listed to its end: record where to split the next listing.
                let (splits, complete) = match finish_learned.lock() {
                    Ok(mut l) => {
                        let complete = l.complete == l.samples.len();
                        let mut all: Vec<String> = l.samples.drain(..).flatten().collect();
                        all.sort_unstable();
                        all.dedup();
                        (all, complete)
                    }
                    Err(_) => (Vec::new(), false),
                };
                if complete && let Err(e) = cat.db.set_splits(finish_table, splits).await {
                    cat.metrics.error();
                    tracing::warn!(error = %e, "could not record the catalogue's split points");
                }
                None
            })
            .filter_map(futures::future::ready),
        )
        .boxed()
}

/// The clips of one key range, page by page.
#[allow(clippy::too_many_arguments)]
fn range_clips<'a>(
    cat: &'a BucketCatalogue,
    store: &'a dyn TierStore,
    tier: Tier,
    now: DateTime<Utc>,
    table: String,
    learned: Arc<Mutex<Learned>>,
    index: usize,
    range: KeyRange,
) -> BoxStream<'a, Result<Clip, StorageError>> {
    let state = RangeState {
        index,
        pages: store.list_objects(tier, range.clone()).chunks(PAGE).boxed(),
        last: range.after.clone(),
        range,
        seen: 0,
        done: false,
    };
    stream::unfold(state, move |mut st| {
        let table = table.clone();
        let learned = learned.clone();
        async move {
            if st.done {
                return None;
            }
            let page = match st.pages.next().await {
                Some(page) => page,
                None => {
                    // The end of the range: entries after the last key listed are gone.
                    st.done = true;
                    let until = st.range.until.clone();
                    let after = st.last.clone();
                    merge(cat, tier, now, &table, after, until, Vec::new(), store).await;
                    if let Ok(mut l) = learned.lock() {
                        l.complete += 1;
                    }
                    return None;
                }
            };
            let mut objects = Vec::with_capacity(page.len());
            for item in page {
                match item {
                    Ok(o) => objects.push(o),
                    Err(e) => {
                        st.done = true;
                        return Some((vec![Err(e)], st));
                    }
                }
            }
            let split_every = cat.opts.split_every.max(1);
            if let Ok(mut l) = learned.lock()
                && let Some(samples) = l.samples.get_mut(st.index)
            {
                for (i, o) in objects.iter().enumerate() {
                    if (st.seen + i + 1) % split_every == 0 {
                        samples.push(o.key.clone());
                    }
                }
            }
            st.seen += objects.len();
            let after = st.last.clone();
            let until = objects.last().map(|o| o.key.clone());
            if until.is_some() {
                st.last.clone_from(&until);
            }
            let clips = merge(cat, tier, now, &table, after, until, objects, store).await;
            Some((clips, st))
        }
    })
    .flat_map(stream::iter)
    .boxed()
}

/// Merge one page of `objects` (keys in (`after`, `until`], in order) with the
/// catalogue: reuse what still describes the listed version and is not due for refresh,
/// read the rest, record what was read, remove entries of keys no longer listed.
#[allow(clippy::too_many_arguments)]
async fn merge(
    cat: &BucketCatalogue,
    tier: Tier,
    now: DateTime<Utc>,
    table: &str,
    after: Option<String>,
    until: Option<String>,
    objects: Vec<ListedObject>,
    store: &dyn TierStore,
) -> Vec<Result<Clip, StorageError>> {
    let (mut known, readable) = match cat.db.range(table.to_string(), after, until).await {
        Ok(entries) => (entries.into_iter().collect::<HashMap<_, _>>(), true),
        Err(e) => {
            cat.metrics.error();
            tracing::warn!(error = %e, "could not read the clip catalogue; reading the clips' facts from storage");
            (HashMap::new(), false)
        }
    };
    let (mut hits, mut new, mut changed, mut refresh, mut listed) = (0, 0, 0, 0, 0);
    let mut ingested = 0;
    let mut out: Vec<Result<Clip, StorageError>> = Vec::with_capacity(objects.len());
    let mut to_read: Vec<ListedObject> = Vec::new();
    let mut put = Vec::new();
    for o in objects {
        let entry = known.remove(&o.key);
        if cat.skipped(tier, &o.key) {
            // Not a clip (the audit chain, a claim): the sweep passes it by.
            out.push(Ok(o.into_clip(tier, Default::default())));
            continue;
        }
        if let Some(facts) = o.facts.clone() {
            // The listing carried the facts (MinIO): nothing to remember.
            listed += 1;
            out.push(Ok(o.into_clip(tier, facts)));
            continue;
        }
        match entry {
            Some(e)
                if e.describes(&o)
                    && !refresh_due(&o.key, e.read_at, now, cat.opts.tag_refresh) =>
            {
                if e.window.is_some() {
                    // Learned from an ingest's record, now seen listed: kept as this
                    // exact version from now on.
                    ingested += 1;
                    put.push((o.key.clone(), e.clone().seen(&o)));
                } else {
                    hits += 1;
                }
                out.push(Ok(o.into_clip(tier, e.facts)));
            }
            Some(e) if e.describes(&o) => {
                refresh += 1;
                to_read.push(o);
            }
            Some(_) => {
                changed += 1;
                to_read.push(o);
            }
            None => {
                new += 1;
                to_read.push(o);
            }
        }
    }
    // What is left in `known` was not listed: gone.
    let mut remove: Vec<String> = if readable {
        known.into_keys().collect()
    } else {
        Vec::new()
    };
    let read = stream::iter(to_read)
        .map(|o| async move {
            let facts = store.read_facts(tier, &o).await;
            (o, facts)
        })
        .buffered(cat.opts.read_concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    for (o, facts) in read {
        match facts {
            Ok(Some(facts)) => {
                put.push((o.key.clone(), Entry::new(&o, facts.clone(), now)));
                out.push(Ok(o.into_clip(tier, facts)));
            }
            // Deleted since it was listed: not a clip any more.
            Ok(None) => remove.push(o.key),
            Err(e) => out.push(Err(e)),
        }
    }
    let m = &cat.metrics;
    m.lookup("hit", hits);
    m.lookup("new", new);
    m.lookup("changed", changed);
    m.lookup("refresh", refresh);
    m.lookup("listed", listed);
    m.lookup("ingested", ingested);
    let removed = remove.len() as u64;
    match cat
        .db
        .write(table.to_string(), put, remove, cat.opts.tag_refresh, false)
        .await
    {
        Ok(()) => m.removed(removed),
        Err(e) => {
            m.error();
            tracing::warn!(error = %e, "could not update the clip catalogue");
        }
    }
    out
}
