//! Reading listed clips again at the point of no return (`TierStore::current_tags`,
//! and the source check of a move before its source is deleted): the tags of each
//! clip's listed version as they are now, or `None` when that version is gone.
//!
//! Where the store speaks MinIO's listing extension, the key range of the clips is
//! listed again with it (one request per 1,000 objects in the range: about one per
//! sweep chunk, however many of its clips are deleted), with the same page reader as the
//! listing itself (`list::list_page`). A version no longer current there counts as gone:
//! a clip overwritten since it was listed is not deleted now (its new version is planned
//! at the next sweep). Otherwise, for a single clip, and for any entry the re-listing did
//! not describe, one `GetObjectTagging` per clip.

use std::collections::{HashMap, HashSet};

use futures::{StreamExt, TryStreamExt, stream};

use super::{S3TierStore, client::Calls, list::Cursor};
use crate::{
    api::clip::{Clip, Tag, Tier, same_tags},
    storage::StorageError,
};

/// What a re-listing saw: the tags of every current version it described, by (object
/// key, version as listed), and every current version it listed at all.
#[derive(Default)]
struct Relisted {
    tags: HashMap<(String, Option<String>), Vec<Tag>>,
    seen: HashSet<(String, Option<String>)>,
}

/// The largest string that sorts before `key` and is a prefix of it: the `start-after`
/// (or `key-marker`) from which a listing includes `key` itself.
fn just_before(key: &str) -> String {
    let mut s = key.to_string();
    s.pop();
    s
}

impl S3TierStore {
    /// The tags of each clip's listed version now (`None`: gone), aligned with `clips`.
    pub(super) async fn tags_now_many(
        &self,
        clips: &[&Clip],
        calls: &Calls,
    ) -> Result<Vec<Option<Vec<Tag>>>, StorageError> {
        let mut out: Vec<Option<Option<Vec<Tag>>>> = vec![None; clips.len()];
        if self.opts.list_metadata {
            for tier in Tier::ALL {
                let idx: Vec<usize> = (0..clips.len())
                    .filter(|&i| clips[i].tier == tier)
                    .collect();
                // One clip: one tag read costs no more than a re-listing, and reads less.
                if idx.len() < 2 {
                    continue;
                }
                let loc = self.loc(tier);
                let keys: Vec<String> =
                    idx.iter().map(|&i| loc.object_key(&clips[i].key)).collect();
                let relisted = self.relist(tier, &keys, calls).await?;
                for (&i, key) in idx.iter().zip(keys) {
                    let id = (key, clips[i].version_id.clone());
                    if let Some(tags) = relisted.tags.get(&id) {
                        out[i] = Some(Some(tags.clone()));
                    } else if !relisted.seen.contains(&id) {
                        // Not in the listing of its range: that version is gone.
                        out[i] = Some(None);
                    }
                    // Listed without the extension's extras: read below.
                }
            }
        }
        let missing: Vec<usize> = (0..clips.len()).filter(|&i| out[i].is_none()).collect();
        let read: Vec<(usize, Option<Vec<Tag>>)> = stream::iter(missing)
            .map(|i| async move { self.tags_now(clips[i], calls).await.map(|t| (i, t)) })
            .buffered(self.opts.list_concurrency.max(1))
            .try_collect()
            .await?;
        for (i, tags) in read {
            out[i] = Some(tags);
        }
        Ok(out.into_iter().map(Option::flatten).collect())
    }

    /// The tags of one listed version now (`None`: gone).
    async fn tags_now(&self, clip: &Clip, calls: &Calls) -> Result<Option<Vec<Tag>>, StorageError> {
        let loc = self.loc(clip.tier);
        let version = clip.version_id.as_deref().filter(|v| *v != "null");
        self.object_tags(&loc.bucket, &loc.object_key(&clip.key), version, calls)
            .await
    }

    /// List `tier` again with the listing extension over the range of `keys` (object
    /// keys), from just before the smallest to the largest.
    async fn relist(
        &self,
        tier: Tier,
        keys: &[String],
        calls: &Calls,
    ) -> Result<Relisted, StorageError> {
        let mut seen = Relisted::default();
        let (Some(first), Some(last)) = (keys.iter().min(), keys.iter().max()) else {
            return Ok(seen);
        };
        let loc = self.loc(tier);
        let versioned = self.versioned(&loc.bucket, calls).await?;
        let after = Some(just_before(first)).filter(|a| !a.is_empty());
        let mut cursor = if versioned {
            Cursor::Versions(after, None)
        } else {
            Cursor::V2 { token: None, after }
        };
        loop {
            let (items, next) = self.list_page(loc, cursor, calls).await?;
            let past = items.last().is_some_and(|i| i.key.as_str() > last.as_str());
            for item in items {
                let id = (item.key, item.version_id);
                if let Some(extras) = item.extras {
                    seen.tags.insert(id.clone(), extras.tags);
                }
                seen.seen.insert(id);
            }
            match next {
                Some(c) if !past => cursor = c,
                _ => return Ok(seen),
            }
        }
    }

    /// Before the sources of verified moves are deleted (step 8): each source's tags now
    /// against those it was listed with. A source re-tagged since gives its current
    /// tags to its copy first, so the copy never carries a category the source no
    /// longer has. Per move (source clip, destination tier, destination version):
    /// `Ok(true)` to delete the source, `Ok(false)` when it is already gone, or the
    /// error that keeps it (the clip is then in both tiers until the next run).
    pub(super) async fn carry_retags(
        &self,
        moves: &[(&Clip, Tier, Option<&str>)],
        calls: &Calls,
    ) -> Vec<Result<bool, StorageError>> {
        if moves.is_empty() {
            return Vec::new();
        }
        let sources: Vec<&Clip> = moves.iter().map(|(c, _, _)| *c).collect();
        let now = match self.tags_now_many(&sources, calls).await {
            Ok(now) => now,
            Err(e) => return moves.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut out = Vec::with_capacity(moves.len());
        for ((clip, to, dst_version), tags) in moves.iter().zip(now) {
            out.push(match tags {
                None => Ok(false),
                Some(tags) if same_tags(&tags, &clip.tags) => Ok(true),
                Some(tags) => {
                    let dst = self.loc(*to);
                    tracing::info!(key = %clip.key, "re-tagged during its move; the copy gets the new tags");
                    self.put_tags(
                        &dst.bucket,
                        &dst.object_key(&clip.key),
                        *dst_version,
                        &tags,
                        calls,
                    )
                    .await
                    .map(|()| true)
                }
            });
        }
        out
    }

    /// Replace the tags of one version of an object (a move's destination brought up to
    /// date with a source re-tagged during the move).
    pub(super) async fn put_tags(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        tags: &[Tag],
        calls: &Calls,
    ) -> Result<(), StorageError> {
        let set: Vec<aws_sdk_s3::types::Tag> = tags
            .iter()
            .map(|t| {
                aws_sdk_s3::types::Tag::builder()
                    .key(&t.key)
                    .value(&t.value)
                    .build()
                    .map_err(|e| StorageError::InvalidInput(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let tagging = aws_sdk_s3::types::Tagging::builder()
            .set_tag_set(Some(set))
            .build()
            .map_err(|e| StorageError::InvalidInput(e.to_string()))?;
        self.send("put_object_tagging", bucket, calls, || {
            self.client()
                .put_object_tagging()
                .bucket(bucket)
                .key(key)
                .set_version_id(version.map(str::to_string))
                .tagging(tagging.clone())
                .send()
        })
        .await
        .map_err(|f| f.into_error("put_object_tagging", bucket, Some(key)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::just_before;

    #[test]
    fn a_listing_from_just_before_a_key_includes_it() {
        assert_eq!(just_before("hot/a.mp4"), "hot/a.mp");
        assert!(just_before("hot/a.mp4").as_str() < "hot/a.mp4");
        assert_eq!(just_before("a"), "");
    }
}
