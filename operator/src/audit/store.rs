//! [`AuditLog`]: the chain in an S3 bucket, written and read with aws-sdk-s3.
//!
//! Batch `n` of a chain is the object `<prefix><n, 20 digits>.jsonl`. Writing:
//! 1. the head (last batch number and the hash of its last line) is cached in memory
//!    after each write; with no cache (a new leader, a restart, a lost race) it is
//!    **found in storage**: a galloping then binary search over `ListObjectsV2
//!    start-after` (about 2·log2(batches) small listings, not a full listing), then one
//!    GET of the last batch to hash its last line;
//! 2. the batch is sealed onto that head ([`seal`]);
//! 3. `PutObject` with `If-None-Match: *` (conditional create): if another writer took
//!    that batch number first, the store refuses (412), the head is found again and the
//!    batch re-sealed after it. Two writers therefore never fork the chain. The key has
//!    no hash in it on purpose: `<n>-<hash>` keys would let two writers both create
//!    "batch n" under different names;
//! 4. with a retention period, the object is written with Object Lock retention
//!    `COMPLIANCE` until now + the period: no one, root included, can delete or rewrite
//!    that version before then.
//!
//! Reading (the verifier) uses `ListObjectVersions` and reads, for every key, the
//! **oldest** version: in a versioned Object Lock bucket a later `PutObject` to the same
//! key cannot change the locked original, only stack a new version on top, which the
//! verifier reports as a note.
//!
//! Reading what other writers added (the catalogue learns ingested clips so,
//! `catalogue::ingested`): [`AuditLog::batches_from`] lists the batch numbers from one
//! on, [`AuditLog::read_batch`] reads one batch's current version, and
//! [`AuditLog::wrote`] tells the batches this process wrote itself, which need no read.
//!
//! Every request (puts, listings, reads, and the integrity sweep's re-reads) goes
//! through the storage layer's one request path, `storage::s3::Requester`: its retry
//! loop (throttling and transient failures, [`RETRY`]) with the SDK's own retries off,
//! and its object read. A lost race (412, 409) is never retried there: it comes back
//! at once, as [`AuditError::is_conflict`], and is handled here by re-sealing.

use std::{collections::BTreeMap, time::Duration};

use aws_sdk_s3::{
    Client,
    primitives::ByteStream,
    types::{ChecksumAlgorithm, ObjectLockMode},
};
use bytes::Bytes;
use chrono::Utc;
use tokio::sync::Mutex;

use super::{
    AuditError,
    chain::StoredObject,
    record::{Actor, Entry, GENESIS, Record, batch_key, line_hash, parse_batch_key, seal},
};
use crate::storage::{
    BucketConfig, StorageMetrics,
    region::check_endpoint,
    s3::{Failure, ReadFailure, Requester, RetryPolicy},
};

/// How often a write is re-sealed after losing a race before giving up.
const MAX_CONFLICTS: u32 = 16;

/// The audit writer's retry policy: the attempts and backoff of the SDK's standard
/// retry mode it used before (4 attempts, 1 s doubling to at most 20 s, jittered).
pub(crate) const RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 4,
    backoff_base: Duration::from_secs(1),
    backoff_max: Duration::from_secs(20),
};

/// Where a chain lives and how it is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditTarget {
    /// The bucket (the legal-hold bucket, in the operator).
    pub bucket: String,
    /// The key prefix of the batches, ending in `/` (reserved for the chain).
    pub prefix: String,
    /// Object Lock COMPLIANCE retention of each batch; `None` writes without retention
    /// (only for buckets without Object Lock, e.g. tests of tampering).
    pub retention: Option<chrono::TimeDelta>,
}

/// The chain head: the next batch number and the hash of the last record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The number the next batch gets (= batches written).
    pub next_batch: u64,
    /// The hash of the last record ([`GENESIS`] for an empty chain).
    pub hash: String,
}

/// What a successful append wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The batch number.
    pub batch: u64,
    /// The object key.
    pub key: String,
    /// The records written.
    pub records: usize,
    /// The chain head after this batch.
    pub head: String,
    /// Races lost (and re-sealed) before this write succeeded.
    pub conflicts: u32,
}

/// One chain in one bucket.
pub struct AuditLog {
    requester: Requester,
    target: AuditTarget,
    head: Mutex<Option<Head>>,
    /// Batch numbers this process wrote and a reader of others' batches has not yet
    /// passed ([`AuditLog::wrote`]).
    written: std::sync::Mutex<std::collections::BTreeSet<u64>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Map a failed request (after the shared retries) to [`AuditError::Request`].
pub(crate) fn request_error(
    op: &'static str,
    bucket: &str,
    key: Option<&str>,
    failure: Failure,
) -> AuditError {
    AuditError::Request {
        op,
        bucket: bucket.to_string(),
        key: key.map(str::to_string),
        status: failure.status,
        code: Some(failure.code),
        message: failure.message,
    }
}

/// Map a failed read of a whole object to [`AuditError::Request`].
fn read_error(bucket: &str, key: &str, failure: ReadFailure) -> AuditError {
    match failure {
        ReadFailure::Request(f) => request_error("get_object", bucket, Some(key), f),
        ReadFailure::Body(message) => AuditError::Request {
            op: "get_object",
            bucket: bucket.to_string(),
            key: Some(key.to_string()),
            status: None,
            code: None,
            message,
        },
    }
}

impl AuditLog {
    /// A chain reached with an existing client (built with SDK retries off, as
    /// [`client_for`] does: requests are retried by the shared request path).
    pub fn with_client(client: Client, target: AuditTarget) -> Result<Self, AuditError> {
        if target.bucket.is_empty() {
            return Err(AuditError::Config("the audit bucket is empty".into()));
        }
        if !target.prefix.is_empty() && !target.prefix.ends_with('/') {
            return Err(AuditError::Config(format!(
                "the audit prefix {:?} must end in '/'",
                target.prefix
            )));
        }
        Ok(AuditLog {
            // Unregistered metrics: the storage metrics count the tier store's requests.
            requester: Requester::new(client, RETRY, StorageMetrics::unregistered()),
            target,
            head: Mutex::new(None),
            written: std::sync::Mutex::new(std::collections::BTreeSet::new()),
        })
    }

    /// A chain in the bucket an evidence bucket's configuration reaches (same endpoint,
    /// credentials and declared region; a non-UK AWS endpoint is refused here, and the
    /// operator proves the bucket's actual region before any sweep).
    pub async fn connect(cfg: &BucketConfig, target: AuditTarget) -> Result<Self, AuditError> {
        check_endpoint(cfg.endpoint.as_deref(), &cfg.allowed_regions)?;
        Self::with_client(client_for(cfg).await, target)
    }

    /// The request path (the integrity sweep reads clips through it).
    pub(crate) fn requester(&self) -> &Requester {
        &self.requester
    }

    /// The target.
    pub fn target(&self) -> &AuditTarget {
        &self.target
    }

    /// The head as last known in memory, if any (no request).
    pub async fn cached_head(&self) -> Option<Head> {
        self.head.lock().await.clone()
    }

    /// The head: the cached one, else found in storage (and cached).
    pub async fn head(&self) -> Result<Head, AuditError> {
        let mut cache = self.head.lock().await;
        if let Some(h) = cache.clone() {
            return Ok(h);
        }
        let h = self.find_head().await?;
        *cache = Some(h.clone());
        Ok(h)
    }

    /// Forget the cached head: the next write finds it in storage.
    pub async fn forget_head(&self) {
        *self.head.lock().await = None;
    }

    /// Append entries as one batch (nothing is written for no entries). Returns only
    /// once the batch is stored.
    pub async fn append(
        &self,
        actor: &Actor,
        bucket: &str,
        entries: &[Entry],
    ) -> Result<Option<Receipt>, AuditError> {
        if entries.is_empty() {
            return Ok(None);
        }
        let mut cache = self.head.lock().await;
        let mut conflicts = 0;
        loop {
            let head = match cache.clone() {
                Some(h) => h,
                None => self.find_head().await?,
            };
            let sealed = seal(head.next_batch, &head.hash, actor, bucket, entries)?;
            let key = batch_key(&self.target.prefix, sealed.batch);
            match self.put_new(&key, sealed.body).await {
                Ok(()) => {
                    if let Ok(mut w) = self.written.lock() {
                        w.insert(sealed.batch);
                    }
                    *cache = Some(Head {
                        next_batch: sealed.batch + 1,
                        hash: sealed.head.clone(),
                    });
                    return Ok(Some(Receipt {
                        batch: sealed.batch,
                        key,
                        records: sealed.records.len(),
                        head: sealed.head,
                        conflicts,
                    }));
                }
                Err(e) if e.is_conflict() => {
                    *cache = None;
                    conflicts += 1;
                    if conflicts >= MAX_CONFLICTS {
                        return Err(AuditError::Contended {
                            bucket: self.target.bucket.clone(),
                            attempts: conflicts,
                        });
                    }
                }
                Err(e) => {
                    *cache = None;
                    return Err(e);
                }
            }
        }
    }

    /// Conditional create of one batch object, with retention when configured.
    /// A 412 (or 409) comes back at once, not retried: the caller re-seals.
    async fn put_new(&self, key: &str, body: Vec<u8>) -> Result<(), AuditError> {
        let bucket = &self.target.bucket;
        let body = Bytes::from(body);
        // One retention date for every attempt of this write.
        let until = self.target.retention.map(|period| {
            aws_smithy_types::DateTime::from_millis((Utc::now() + period).timestamp_millis())
        });
        let result = self
            .requester
            .send("put_object", bucket, None, || {
                let mut req = self
                    .requester
                    .client()
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .if_none_match("*")
                    .content_type("application/x-ndjson")
                    .checksum_algorithm(ChecksumAlgorithm::Sha256)
                    .body(ByteStream::from(body.clone()));
                if let Some(until) = until {
                    req = req
                        .object_lock_mode(ObjectLockMode::Compliance)
                        .object_lock_retain_until_date(until);
                }
                req.send()
            })
            .await
            .map(drop)
            .map_err(|f| request_error("put_object", bucket, Some(key), f));
        match result {
            // A retried write whose first attempt landed (its answer was lost) finds its
            // own object there: the same bytes are our write, not another writer's, and
            // must not be sealed again as the next batch.
            Err(e) if e.is_conflict() => match self.get(key, None).await {
                Ok(existing) if existing == body[..] => Ok(()),
                _ => Err(e),
            },
            other => other,
        }
    }

    /// Whether some batch numbered `b` or higher exists.
    async fn any_from(&self, b: u64) -> Result<bool, AuditError> {
        let start_after = (b > 0).then(|| batch_key(&self.target.prefix, b - 1));
        let (numbers, _) = self.batch_page(start_after, Some(8)).await?;
        Ok(numbers.iter().any(|n| *n >= b))
    }

    /// One `ListObjectsV2` page of the chain's keys after `start_after` (at most
    /// `max_keys`): the batch numbers in it, and the key to start the next page after
    /// when there is one.
    async fn batch_page(
        &self,
        start_after: Option<String>,
        max_keys: Option<i32>,
    ) -> Result<(Vec<u64>, Option<String>), AuditError> {
        let bucket = &self.target.bucket;
        let page = self
            .requester
            .send("list_objects_v2", bucket, None, || {
                self.requester
                    .client()
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(&self.target.prefix)
                    .set_max_keys(max_keys)
                    .set_start_after(start_after.clone())
                    .send()
            })
            .await
            .map_err(|f| request_error("list_objects_v2", bucket, None, f))?;
        let keys: Vec<&str> = page.contents().iter().filter_map(|o| o.key()).collect();
        let numbers = keys
            .iter()
            .filter_map(|k| parse_batch_key(&self.target.prefix, k))
            .collect();
        let next = keys
            .last()
            .filter(|_| page.is_truncated() == Some(true))
            .map(|k| (*k).to_string());
        Ok((numbers, next))
    }

    /// Find the head in storage: the last batch, and the hash of its last line.
    pub async fn find_head(&self) -> Result<Head, AuditError> {
        if !self.any_from(0).await? {
            return Ok(Head {
                next_batch: 0,
                hash: GENESIS.to_string(),
            });
        }
        // Gallop: lo exists, hi does not.
        let mut lo: u64 = 0;
        let mut step: u64 = 1;
        let hi = loop {
            let probe = lo.saturating_add(step);
            if probe == lo || !self.any_from(probe).await? {
                break probe;
            }
            lo = probe;
            step = step.saturating_mul(2);
        };
        let (mut lo, mut hi) = (lo, hi);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.any_from(mid).await? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let key = batch_key(&self.target.prefix, lo);
        let body = self.get(&key, None).await?;
        let Some(last) = body.split(|c| *c == b'\n').rfind(|l| !l.is_empty()) else {
            return Err(AuditError::Broken {
                key,
                message: "the last batch holds no record".into(),
            });
        };
        let record: Record = serde_json::from_slice(last).map_err(|e| AuditError::Broken {
            key: key.clone(),
            message: format!("its last line is not a record: {e}"),
        })?;
        if record.batch != lo {
            return Err(AuditError::Broken {
                key,
                message: format!("its last record claims batch {}", record.batch),
            });
        }
        Ok(Head {
            next_batch: lo + 1,
            hash: line_hash(last),
        })
    }

    /// Whether this process wrote batch `n` (since [`AuditLog::forget_written_before`]
    /// last passed it): a reader of the batches other writers add need not read it.
    pub fn wrote(&self, n: u64) -> bool {
        self.written.lock().is_ok_and(|w| w.contains(&n))
    }

    /// Stop remembering the batches written below `n` (a reader has passed them).
    pub fn forget_written_before(&self, n: u64) {
        if let Ok(mut w) = self.written.lock() {
            *w = w.split_off(&n);
        }
    }

    /// The numbers of the batches stored from `from` on, at most `limit` of them, in
    /// order: one `ListObjectsV2` (`start-after`) per 1,000.
    pub async fn batches_from(&self, from: u64, limit: usize) -> Result<Vec<u64>, AuditError> {
        let mut start_after = (from > 0).then(|| batch_key(&self.target.prefix, from - 1));
        let mut out = Vec::new();
        while out.len() < limit {
            let (numbers, next) = self.batch_page(start_after, None).await?;
            out.extend(numbers.into_iter().filter(|n| *n >= from));
            match next {
                Some(key) => start_after = Some(key),
                None => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// The records of batch `n` as stored now (its current version; the verifier, not
    /// this, judges the chain).
    pub async fn read_batch(&self, n: u64) -> Result<Vec<Record>, AuditError> {
        let key = batch_key(&self.target.prefix, n);
        let body = self.get(&key, None).await?;
        body.split(|c| *c == b'\n')
            .filter(|l| !l.is_empty())
            .map(|line| {
                serde_json::from_slice(line).map_err(|e| AuditError::Broken {
                    key: key.clone(),
                    message: format!("a line is not a record: {e}"),
                })
            })
            .collect()
    }

    /// Read one batch object (version) whole, with storage's object read.
    async fn get(&self, key: &str, version: Option<&str>) -> Result<Vec<u8>, AuditError> {
        let bucket = &self.target.bucket;
        self.requester
            .read_object(bucket, key, version, None)
            .await
            .map_err(|f| read_error(bucket, key, f))
    }

    /// Read every object under the prefix (for every key its oldest version, with the
    /// number of versions stacked on top), for [`super::chain::verify`].
    pub async fn read_all(&self) -> Result<Vec<StoredObject>, AuditError> {
        let bucket = &self.target.bucket;
        // key -> versions, newest first (the listing's order).
        let mut versions: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
        let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let out = self
                .requester
                .send("list_object_versions", bucket, None, || {
                    self.requester
                        .client()
                        .list_object_versions()
                        .bucket(bucket)
                        .prefix(&self.target.prefix)
                        .set_key_marker(key_marker.clone())
                        .set_version_id_marker(version_marker.clone())
                        .send()
                })
                .await
                .map_err(|f| request_error("list_object_versions", bucket, None, f))?;
            for v in out.versions() {
                if let Some(k) = v.key() {
                    versions
                        .entry(k.to_string())
                        .or_default()
                        .push(v.version_id().map(str::to_string));
                }
            }
            if out.is_truncated() == Some(true) {
                key_marker = out.next_key_marker().map(str::to_string);
                version_marker = out.next_version_id_marker().map(str::to_string);
                if key_marker.is_none() {
                    break;
                }
            } else {
                break;
            }
        }
        let mut objects = Vec::with_capacity(versions.len());
        for (key, vs) in versions {
            let later = vs.len().saturating_sub(1);
            let oldest = vs.last().cloned().flatten().filter(|v| v != "null");
            let body = self.get(&key, oldest.as_deref()).await?;
            objects.push(StoredObject {
                key,
                version_id: oldest,
                body,
                later_versions: later,
            });
        }
        Ok(objects)
    }
}

/// An S3 client for a bucket configuration, with the SDK's retries off: an
/// [`AuditLog`] retries through the storage layer's request path ([`RETRY`]).
pub async fn client_for(cfg: &BucketConfig) -> Client {
    let builder =
        crate::storage::sdk_config(cfg, Duration::from_secs(5), "evidence-operator-audit").await;
    Client::from_conf(builder.build())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::storage::s3::CannedS3;

    async fn log_at(s3: &CannedS3) -> AuditLog {
        AuditLog::with_client(
            s3.client(),
            AuditTarget {
                bucket: "audit".into(),
                prefix: "chain/".into(),
                retention: Some(chrono::TimeDelta::days(1)),
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_lost_race_is_sent_once_and_reported_as_a_conflict() {
        for (status, code) in [
            (412, "PreconditionFailed"),
            (409, "ConditionalRequestConflict"),
        ] {
            let s3 = CannedS3::answering(status, code).await;
            let log = log_at(&s3).await;
            let err = log
                .put_new(&batch_key("chain/", 0), b"{}\n".to_vec())
                .await
                .unwrap_err();
            assert!(err.is_conflict(), "{code}: {err}");
            assert_eq!(err.category(), "audit_request");
            assert_eq!(
                s3.hits(),
                2,
                "{code}: one PUT (the loop must not retry a lost race), one GET to tell our own write from another's"
            );
        }
    }

    /// The first PUT lands but its answer is lost (503); the retry meets the object
    /// (412). The same bytes there are our own write: appended once, not re-sealed as
    /// another batch. Other bytes there are another writer's: a conflict.
    #[tokio::test]
    async fn a_retried_write_whose_first_attempt_landed_is_recognised_as_ours() {
        let ours = b"{\"batch\":0}\n".to_vec();
        for (there, own) in [(ours.clone(), true), (b"{\"other\":1}\n".to_vec(), false)] {
            let s3 = CannedS3::serving(move |method, n| match (method, n) {
                (http::Method::PUT, 1) => (503, CannedS3::error_body("SlowDown")),
                (http::Method::PUT, _) => (412, CannedS3::error_body("PreconditionFailed")),
                _ => (200, there.clone()),
            })
            .await;
            let log = log_at(&s3).await;
            let put = log.put_new(&batch_key("chain/", 0), ours.clone()).await;
            if own {
                assert!(put.is_ok(), "{put:?}");
            } else {
                assert!(put.is_err_and(|e| e.is_conflict()));
            }
            assert_eq!(s3.hits(), 3, "PUT, retried PUT, GET");
        }
    }

    #[tokio::test]
    async fn reads_go_through_storage_and_keep_the_status() {
        let s3 = CannedS3::answering(404, "NoSuchKey").await;
        let log = log_at(&s3).await;
        match log.get("chain/x.jsonl", None).await {
            Err(AuditError::Request {
                op: "get_object",
                status: Some(404),
                code: Some(code),
                ..
            }) => assert_eq!(code, "NoSuchKey"),
            other => panic!("expected a 404 request error, got {other:?}"),
        }
        assert_eq!(
            super::super::integrity::measure(&log, "hot", "clip", Some("v1"))
                .await
                .unwrap(),
            super::super::integrity::Integrity::Gone
        );
        assert_eq!(s3.hits(), 2, "a missing object is not retried");
    }
}
