//! Tiers that need no listing: kept clips in the cool and legal-hold tiers fall due
//! years later, so a sweep that lists them every hour re-examines millions of clips to
//! change nothing. After a **quiet** listing of such a tier (nothing acted on, nothing
//! failed) the sweep records a [`TierMemo`]: the plan's inputs it was made with, when
//! the earliest of its clips falls due, and what it counted. Later sweeps skip the
//! listing while the memo holds ([`TierMemo::holds`]): same inputs (policy, holds, the
//! bucket's spec), nothing due yet, nothing moved into the tier by this sweep, and a
//! full listing not older than the refresh interval. Meanwhile the clips' facts are
//! still refreshed on their own phase, straight from the catalogue
//! ([`BucketCatalogue::refresh_unlisted`]); a retag or a vanished clip found that way
//! voids the memo and the tier is listed.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use serde::{Deserialize, Serialize};

use super::{BucketCatalogue, entry::Entry};
use crate::{
    api::clip::Tier,
    storage::{ListedObject, StorageError, TierStore},
};

/// What a quiet listing of one tier counted: enough for a sweep to report the tier
/// without listing it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierSummary {
    /// Clips in the tier.
    pub clips: i64,
    /// Their bytes.
    pub bytes: i64,
    /// Clips flagged for review (kept).
    pub flagged: u64,
    /// Clips kept with malformed metadata.
    pub malformed: u64,
    /// Clips under hold, by LegalHold name.
    pub held_by: BTreeMap<String, u64>,
    /// Clips each LegalHold selects, by name.
    pub selected_by: BTreeMap<String, u64>,
    /// Categories the policy does not name, with their clips.
    pub unknown_categories: BTreeMap<String, u64>,
    /// Clips whose category the policy does not name.
    pub unknown_category_clips: u64,
}

/// The memo of a tier's last quiet listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierMemo {
    /// The plan's inputs it was made with (the bucket's `ValidatedBucket::inputs`).
    pub inputs: String,
    /// The leadership term it was recorded in (set by the catalogue): a memo of an
    /// earlier term never holds.
    #[serde(default)]
    pub term: u64,
    /// When it was listed (wall clock).
    pub listed_at: DateTime<Utc>,
    /// The earliest planner time at which a clip's decision in the tier changes.
    pub next_due: Option<DateTime<Utc>>,
    /// What the listing counted.
    pub summary: TierSummary,
}

impl TierMemo {
    /// Whether a sweep with `inputs`, at planner time `now` and wall time `wall`, may
    /// skip listing the tier: same inputs, nothing due, a full listing within `relist`.
    pub fn holds(
        &self,
        inputs: &str,
        now: DateTime<Utc>,
        wall: DateTime<Utc>,
        relist: Duration,
    ) -> bool {
        let relist = chrono::TimeDelta::from_std(relist).unwrap_or(chrono::TimeDelta::MAX);
        self.inputs == inputs
            && self.next_due.is_none_or(|due| due > now)
            && wall >= self.listed_at
            && wall - self.listed_at < relist
    }
}

/// What refreshing an unlisted tier found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Clips whose facts were read again.
    pub read: u64,
    /// Clips whose facts changed, or that are gone: the tier must be listed.
    pub changed: u64,
}

impl BucketCatalogue {
    /// The memo of `tier`, when one was recorded in this leadership term (and can be
    /// read).
    pub async fn memo(&self, tier: Tier) -> Option<TierMemo> {
        match self.db.memo::<TierMemo>(self.table(tier).to_string()).await {
            Ok(m) => m.filter(|m| m.term == self.term()),
            Err(e) => {
                self.metrics.error();
                tracing::warn!(error = %e, "could not read a tier memo; listing the tier");
                None
            }
        }
    }

    /// Record the memo of `tier` (`None`: forget it, the tier is listed next sweep).
    pub async fn set_memo(&self, tier: Tier, memo: Option<TierMemo>) {
        let memo = memo.map(|m| TierMemo {
            term: self.term(),
            ..m
        });
        if let Err(e) = self.db.set_memo(self.table(tier).to_string(), memo).await {
            self.metrics.error();
            tracing::warn!(error = %e, "could not record a tier memo");
        }
    }

    /// How long a tier may go unlisted: the refresh interval.
    pub fn relist_interval(&self) -> Duration {
        self.opts.tag_refresh
    }

    /// Refresh, without listing `tier`, the facts of its clips whose refresh is due at
    /// `now` (wall clock): each read again (S3: one `GetObjectTagging`, in the legal-hold
    /// tier a `HeadObject` too), and recorded. A changed or vanished clip is counted in
    /// [`Refreshed::changed`]: the caller lists the tier.
    pub async fn refresh_unlisted(
        &self,
        store: &dyn TierStore,
        tier: Tier,
        now: DateTime<Utc>,
    ) -> Result<Refreshed, StorageError> {
        let mut out = Refreshed::default();
        // Batch after batch until nothing is due: each batch's entries are written with
        // their new read time, which moves them out of the due part of the index.
        loop {
            let batch = self.refresh_batch(store, tier, now).await?;
            out.read += batch.read;
            out.changed += batch.changed;
            // A change means the tier is listed in this sweep anyway (and reads the rest).
            if batch.changed > 0 || (batch.read as usize) < self.opts.refresh_batch.max(1) {
                return Ok(out);
            }
        }
    }

    /// One batch of [`Self::refresh_unlisted`].
    async fn refresh_batch(
        &self,
        store: &dyn TierStore,
        tier: Tier,
        now: DateTime<Utc>,
    ) -> Result<Refreshed, StorageError> {
        let table = self.table(tier).to_string();
        let due = match self
            .db
            .due(
                table.clone(),
                now.timestamp(),
                self.opts.refresh_batch.max(1),
                self.opts.tag_refresh,
            )
            .await
        {
            Ok(due) => due,
            Err(e) => {
                self.metrics.error();
                tracing::warn!(error = %e, "could not read the catalogue's refresh index; listing the tier");
                return Ok(Refreshed {
                    read: 0,
                    changed: 1,
                });
            }
        };
        let read = stream::iter(due)
            .map(|(key, entry)| async move {
                let object = listed_as(&key, &entry);
                let facts = store.read_facts(tier, &object).await;
                (object, entry, facts)
            })
            .buffer_unordered(self.opts.read_concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        let mut out = Refreshed::default();
        let (mut put, mut remove) = (Vec::new(), Vec::new());
        for (object, entry, facts) in read {
            out.read += 1;
            match facts? {
                Some(facts) => {
                    if facts != entry.facts {
                        out.changed += 1;
                    }
                    put.push((object.key.clone(), Entry::new(&object, facts, now)));
                }
                None => {
                    out.changed += 1;
                    remove.push(object.key);
                }
            }
        }
        self.metrics.lookup("refresh", out.read);
        let removed = remove.len() as u64;
        match self
            .db
            .write(table, put, remove, self.opts.tag_refresh, false)
            .await
        {
            Ok(()) => self.metrics.removed(removed),
            Err(e) => {
                self.metrics.error();
                tracing::warn!(error = %e, "could not update the clip catalogue");
                out.changed += 1;
            }
        }
        Ok(out)
    }
}

/// The listed object an entry describes (to read its facts again).
fn listed_as(key: &str, e: &Entry) -> ListedObject {
    ListedObject {
        key: key.to_string(),
        version_id: e.version_id.clone(),
        etag: e.etag.clone(),
        size: e.size,
        storage_class: e.storage_class.clone(),
        last_modified: DateTime::from_timestamp_millis(e.last_modified_ms).unwrap_or_default(),
        facts: None,
    }
}
