//! Many moves into one tier at once (`TierStore::move_clips`): steps 1-7 of every move
//! (see `mover`), `concurrency` at a time, then step 8 for all of them, the verified
//! copies' sources deleted in `DeleteObjects` batches per bucket, after their tags are
//! read again (`recheck`): a source re-tagged during its move gives its copy the new
//! tags first. A source the store
//! refuses to delete fails only its own move: that clip stays in both tiers until the
//! next run completes it.

use std::collections::HashMap;

use futures::{StreamExt, stream};
use tokio_util::sync::CancellationToken;

use super::{S3TierStore, client::Calls};
use crate::{
    api::clip::{Clip, Tier},
    storage::{
        MoveOutcome, MoveStep, StorageError,
        retry::{self, Failure, FailureKind},
    },
};

/// A verified move's source version, still to delete (step 8, deferred to a batch).
#[derive(Debug, Clone)]
pub(super) struct PendingDelete {
    pub(super) bucket: String,
    pub(super) key: String,
    pub(super) version: Option<String>,
}

/// A batched move after steps 1-7: its result and the source version still to delete.
type Staged = (Result<MoveOutcome, StorageError>, Option<PendingDelete>);

impl S3TierStore {
    /// `TierStore::move_clips`: steps 1-7 of every move, `concurrency` at a time, then
    /// step 8 for all of them in `DeleteObjects` batches per bucket.
    pub(super) async fn move_many(
        &self,
        clips: &[Clip],
        to: Tier,
        concurrency: usize,
        stop: &CancellationToken,
    ) -> Vec<Option<Result<MoveOutcome, StorageError>>> {
        // 1-7 of every move, `concurrency` at a time; the source deletes are collected.
        let mut staged: Vec<Option<Staged>> = stream::iter(0..clips.len())
            .map(|i| async move {
                let clip = &clips[i];
                if stop.is_cancelled() {
                    return None;
                }
                let calls = Calls::default();
                let mut pending = None;
                let r = self
                    .move_one(clip, to, Some(&mut pending), &calls)
                    .await
                    .map(|mut o| {
                        o.requests = calls.get();
                        o
                    });
                Some((r, pending))
            })
            .buffered(concurrency.max(1))
            .collect()
            .await;

        // Before step 8: each source's tags now against those it was listed (and
        // copied) with; a re-tagged source gives its tags to its copy first. A source
        // that cannot be checked is kept (its move fails).
        let calls = Calls::default();
        let check: Vec<usize> = (0..staged.len())
            .filter(|&i| matches!(&staged[i], Some((Ok(_), Some(_)))))
            .collect();
        let moves: Vec<(&Clip, Tier, Option<&str>)> = check
            .iter()
            .filter_map(|&i| match &staged[i] {
                Some((Ok(o), _)) => Some((&clips[i], to, o.dst_version_id.as_deref())),
                _ => None,
            })
            .collect();
        let checked = self.carry_retags(&moves, &calls).await;
        for (i, verdict) in check.into_iter().zip(checked) {
            let Some((r, pending)) = staged.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            match verdict {
                Ok(true) => {}
                // Already gone: nothing to delete.
                Ok(false) => *pending = None,
                Err(e) => {
                    *pending = None;
                    *r = Err(e);
                }
            }
        }

        // 8 for all of them: the verified copies' sources, in DeleteObjects batches
        // per bucket. A source that could not be deleted fails its move (the clip is
        // then in both tiers until the next run completes it).
        let mut by_bucket: HashMap<String, Vec<(usize, String, Option<String>)>> = HashMap::new();
        for (i, s) in staged.iter_mut().enumerate() {
            if let Some((Ok(_), pending)) = s
                && let Some(p) = pending.take()
            {
                by_bucket
                    .entry(p.bucket)
                    .or_default()
                    .push((i, p.key, p.version));
            }
        }
        for (bucket, items) in by_bucket {
            let objects: Vec<(String, Option<String>)> = items
                .iter()
                .map(|(_, k, v)| (k.clone(), v.clone()))
                .collect();
            let results = self.delete_batch(&bucket, &objects, &calls).await;
            for (n, (i, key, _)) in items.into_iter().enumerate() {
                let failure = match &results {
                    Ok(r) => r.get(n).cloned().flatten(),
                    Err(e) => Some((e.category().to_string(), e.to_string(), e.retryable())),
                };
                let Some(Some((Ok(outcome), _))) = staged.get_mut(i) else {
                    continue;
                };
                match failure {
                    None => {
                        outcome.source_deleted = true;
                        let hook = self
                            .step(
                                MoveStep::SourceDeleted,
                                &outcome.key,
                                &self.loc(to).bucket,
                                &self.loc(to).object_key(&outcome.key),
                                outcome.dst_version_id.as_deref(),
                            )
                            .await;
                        if let Err(e) = hook
                            && let Some(Some((r, _))) = staged.get_mut(i)
                        {
                            *r = Err(e);
                        }
                    }
                    Some((code, message, retryable)) => {
                        let err = Failure {
                            kind: if retryable {
                                FailureKind::Transient
                            } else {
                                retry::classify(&code, None)
                            },
                            code,
                            message,
                            status: None,
                            attempts: 1,
                            bucket_region: None,
                        }
                        .into_error("delete_objects", &bucket, Some(&key));
                        if let Some(Some((r, _))) = staged.get_mut(i) {
                            *r = Err(err);
                        }
                    }
                }
            }
        }
        staged
            .into_iter()
            .map(|s| {
                s.map(|(r, _)| {
                    self.metrics.moved(
                        to.as_str(),
                        match &r {
                            Ok(_) => "ok",
                            Err(e) => e.category(),
                        },
                    );
                    r
                })
            })
            .collect()
    }
}
