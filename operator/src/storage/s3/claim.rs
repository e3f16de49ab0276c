//! `TierStore::claim` on S3: for each bucket the store's tiers use, list the claims
//! (`.evidence-claims/`, one `ListObjectsV2`), read those whose prefix overlaps one of
//! ours (one `GetObject` each; normally only our own), and write our claim where we
//! have none (`PutObject` with `If-None-Match: *`, so of two writers one wins). A
//! foreign claim that overlaps ours and is older blocks us; a take-over rewrites it
//! (`If-Match` its ETag) naming us and the owner it was taken from. Claims are written
//! only after the region proof, like every write. See [`crate::storage::claim`].

use std::collections::BTreeSet;

use chrono::Utc;

use super::{S3TierStore, client::Calls};
use crate::{
    api::clip::Tier,
    storage::{
        StorageError,
        claim::{CLAIMS_PREFIX, Claim, ClaimOutcome, Owner, TakeOver, overlaps},
        retry::{Failure, FailureKind},
    },
};

/// A claim as found in a bucket: its key, its ETag, and what it says.
struct Found {
    key: String,
    etag: Option<String>,
    claim: Claim,
}

/// Whether a failed conditional write lost to another writer.
fn lost_race(f: &Failure) -> bool {
    matches!(f.status, Some(412) | Some(409))
        || f.code == "PreconditionFailed"
        || f.code == "ConditionalRequestConflict"
}

impl S3TierStore {
    /// Claim every location of the store's tiers for `owner`.
    pub(super) async fn claim_locations(
        &self,
        owner: &Owner,
        take_over: Option<&TakeOver>,
    ) -> Result<ClaimOutcome, StorageError> {
        let calls = Calls::default();
        self.prove(&calls).await?;
        let locations: BTreeSet<(String, String)> = Tier::ALL
            .iter()
            .map(|t| {
                let l = self.loc(*t);
                (l.bucket.clone(), l.prefix.clone())
            })
            .collect();
        let buckets: BTreeSet<&String> = locations.iter().map(|(b, _)| b).collect();
        let mine_in = |bucket: &str| -> Vec<&str> {
            locations
                .iter()
                .filter(|(b, _)| b == bucket)
                .map(|(_, p)| p.as_str())
                .collect()
        };
        let own_claim = |found: &[Found], prefix: &str| {
            found
                .iter()
                .find(|f| f.claim.prefix == prefix && f.claim.owner.uid == owner.uid)
                .map(|f| f.claim.clone())
        };
        let mut taken_over = Vec::new();
        // First every location is checked, and nothing is claimed while any is
        // another's: a refused EvidenceBucket leaves no claim behind.
        let mut to_claim: Vec<(&String, &str)> = Vec::new();
        for bucket in &buckets {
            let mine = mine_in(bucket);
            let mut found = self.read_claims(bucket, &mine, &calls).await?;
            // Take-overs first: a foreign claim naming the owner we take over from.
            if let Some(TakeOver(previous)) = take_over {
                for f in found.iter_mut().filter(|f| &f.claim.owner.uid == previous) {
                    let claim = Claim {
                        bucket: (*bucket).clone(),
                        prefix: f.claim.prefix.clone(),
                        owner: owner.clone(),
                        claimed_at: Utc::now(),
                        taken_over_from: Some(f.claim.owner.clone()),
                    };
                    self.write_claim(&f.key, &claim, f.etag.as_deref(), &calls)
                        .await?;
                    taken_over.push(claim.clone());
                    f.claim = claim;
                }
            }
            for prefix in mine {
                let own = own_claim(&found, prefix);
                if let Some(blocking) = blocking(&found, prefix, owner, own.as_ref()) {
                    return Ok(ClaimOutcome::ClaimedBy {
                        claim: Box::new(blocking),
                        ours: format!("{bucket}/{prefix}"),
                    });
                }
                if own.is_none() {
                    to_claim.push((bucket, prefix));
                }
            }
        }
        // Then the free ones are claimed, each checked again for a writer that raced
        // us to it or to an overlapping prefix.
        for (bucket, prefix) in to_claim {
            let key = Claim::key_for(prefix);
            let claim = Claim {
                bucket: bucket.clone(),
                prefix: prefix.to_string(),
                owner: owner.clone(),
                claimed_at: Utc::now(),
                taken_over_from: None,
            };
            match self.put_claim(&key, &claim, None, &calls).await {
                Ok(()) => {}
                Err(f) if lost_race(&f) => {}
                Err(f) => return Err(f.into_error("put_object", bucket, Some(&key))),
            }
            let found = self.read_claims(bucket, &[prefix], &calls).await?;
            let own = own_claim(&found, prefix);
            if let Some(blocking) = blocking(&found, prefix, owner, own.as_ref()) {
                return Ok(ClaimOutcome::ClaimedBy {
                    claim: Box::new(blocking),
                    ours: format!("{bucket}/{prefix}"),
                });
            }
        }
        Ok(ClaimOutcome::Owned { taken_over })
    }

    /// The claims in `bucket` whose prefix overlaps one of `mine`.
    async fn read_claims(
        &self,
        bucket: &str,
        mine: &[&str],
        calls: &Calls,
    ) -> Result<Vec<Found>, StorageError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .send("list_objects_v2", bucket, calls, || {
                    self.client()
                        .list_objects_v2()
                        .bucket(bucket)
                        .prefix(CLAIMS_PREFIX)
                        .set_continuation_token(token.clone())
                        .send()
                })
                .await
                .map_err(|f| f.into_error("list_objects_v2", bucket, None))?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            token = out.next_continuation_token().map(str::to_string);
            if out.is_truncated() != Some(true) || token.is_none() {
                break;
            }
        }
        let mut found = Vec::new();
        for key in keys {
            // A key that does not name a prefix is not ours to judge, but may be a
            // claim: read it too (an unreadable claim blocks, below).
            let relevant =
                Claim::prefix_of(&key).is_none_or(|p| mine.iter().any(|m| overlaps(m, &p)));
            if !relevant {
                continue;
            }
            let got = self
                .send("get_object", bucket, calls, || {
                    self.client().get_object().bucket(bucket).key(&key).send()
                })
                .await;
            let out = match got {
                Ok(out) => out,
                Err(f) if f.kind == FailureKind::NotFound => continue,
                Err(f) => return Err(f.into_error("get_object", bucket, Some(&key))),
            };
            let etag = out.e_tag().map(str::to_string);
            let body = out
                .body
                .collect()
                .await
                .map_err(|e| StorageError::Read {
                    bucket: bucket.to_string(),
                    key: key.clone(),
                    message: e.to_string(),
                })?
                .into_bytes();
            let claim = serde_json::from_slice::<Claim>(&body).unwrap_or_else(|e| {
                // Unreadable: taken as the oldest claim of an unknown owner, so it
                // blocks rather than being overwritten.
                Claim {
                    bucket: bucket.to_string(),
                    prefix: Claim::prefix_of(&key).unwrap_or_default(),
                    owner: Owner {
                        cluster: String::new(),
                        namespace: String::new(),
                        name: format!("(unreadable claim {key}: {e})"),
                        uid: String::new(),
                    },
                    claimed_at: chrono::DateTime::UNIX_EPOCH,
                    taken_over_from: None,
                }
            });
            found.push(Found { key, etag, claim });
        }
        Ok(found)
    }

    /// Write a claim: only if none exists (`If-None-Match: *`), or over the one with
    /// ETag `over` (`If-Match`).
    async fn put_claim(
        &self,
        key: &str,
        claim: &Claim,
        over: Option<&str>,
        calls: &Calls,
    ) -> Result<(), Failure> {
        let body = serde_json::to_vec_pretty(claim).unwrap_or_default();
        let bucket = claim.bucket.as_str();
        self.send("put_object", bucket, calls, || {
            let req = self
                .client()
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_type("application/json")
                .body(body.clone().into());
            match over {
                Some(etag) => req.if_match(etag),
                None => req.if_none_match("*"),
            }
            .send()
        })
        .await
        .map(drop)
    }

    /// [`Self::put_claim`] over an existing claim, as a storage error.
    async fn write_claim(
        &self,
        key: &str,
        claim: &Claim,
        over: Option<&str>,
        calls: &Calls,
    ) -> Result<(), StorageError> {
        self.put_claim(key, claim, over, calls)
            .await
            .map_err(|f| f.into_error("put_object", &claim.bucket, Some(key)))
    }
}

/// The foreign claim that keeps `owner` from `prefix`, if any: one that overlaps it
/// and wins over our own claim there (or that exists where we have none yet).
fn blocking(found: &[Found], prefix: &str, owner: &Owner, own: Option<&Claim>) -> Option<Claim> {
    found
        .iter()
        .map(|f| &f.claim)
        .filter(|c| c.owner.uid != owner.uid && overlaps(&c.prefix, prefix))
        .filter(|c| own.is_none_or(|o| !o.wins_over(c)))
        .min_by(|a, b| (a.claimed_at, &a.owner.uid).cmp(&(b.claimed_at, &b.owner.uid)))
        .cloned()
}
