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

use std::{collections::BTreeMap, time::Duration};

use aws_sdk_s3::{
    Client,
    config::retry::RetryConfig,
    error::{ProvideErrorMetadata, SdkError},
    primitives::ByteStream,
    types::{ChecksumAlgorithm, ObjectLockMode},
};
use chrono::Utc;
use tokio::sync::Mutex;

use super::{
    AuditError,
    chain::StoredObject,
    record::{Actor, Entry, GENESIS, Record, batch_key, line_hash, parse_batch_key, seal},
};
use crate::storage::{BucketConfig, region::check_endpoint};

/// How often a write is re-sealed after losing a race before giving up.
const MAX_CONFLICTS: u32 = 16;

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
    client: Client,
    target: AuditTarget,
    head: Mutex<Option<Head>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Map an SDK error to [`AuditError::Request`].
pub(crate) fn request_error<E>(
    op: &'static str,
    bucket: &str,
    key: Option<&str>,
    e: SdkError<E>,
) -> AuditError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = e.code().map(str::to_string);
    let message = match &e {
        SdkError::ServiceError(s) => s
            .err()
            .message()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{e}")),
        other => format!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(other)
        ),
    };
    AuditError::Request {
        op,
        bucket: bucket.to_string(),
        key: key.map(str::to_string),
        status,
        code,
        message,
    }
}

impl AuditLog {
    /// A chain reached with an existing client.
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
            client,
            target,
            head: Mutex::new(None),
        })
    }

    /// A chain in the bucket an evidence bucket's configuration reaches (same endpoint,
    /// credentials and declared region; a non-UK AWS endpoint is refused here, and the
    /// operator proves the bucket's actual region before any sweep).
    pub async fn connect(cfg: &BucketConfig, target: AuditTarget) -> Result<Self, AuditError> {
        check_endpoint(cfg.endpoint.as_deref(), &cfg.allowed_regions)?;
        Self::with_client(client_for(cfg).await, target)
    }

    /// The S3 client (the integrity sweep reads clips with it).
    pub fn client(&self) -> &Client {
        &self.client
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
    async fn put_new(&self, key: &str, body: Vec<u8>) -> Result<(), AuditError> {
        let bucket = &self.target.bucket;
        let mut req = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .if_none_match("*")
            .content_type("application/x-ndjson")
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .body(ByteStream::from(body));
        if let Some(period) = self.target.retention {
            let until = Utc::now() + period;
            req = req
                .object_lock_mode(ObjectLockMode::Compliance)
                .object_lock_retain_until_date(aws_smithy_types::DateTime::from_millis(
                    until.timestamp_millis(),
                ));
        }
        req.send()
            .await
            .map(drop)
            .map_err(|e| request_error("put_object", bucket, Some(key), e))
    }

    /// Whether some batch numbered `b` or higher exists.
    async fn any_from(&self, b: u64) -> Result<bool, AuditError> {
        let bucket = &self.target.bucket;
        let mut req = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&self.target.prefix)
            .max_keys(8);
        if b > 0 {
            req = req.start_after(batch_key(&self.target.prefix, b - 1));
        }
        let out = req
            .send()
            .await
            .map_err(|e| request_error("list_objects_v2", bucket, None, e))?;
        Ok(out
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .filter_map(|k| parse_batch_key(&self.target.prefix, k))
            .any(|n| n >= b))
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

    async fn get(&self, key: &str, version: Option<&str>) -> Result<Vec<u8>, AuditError> {
        let bucket = &self.target.bucket;
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
            .map_err(|e| request_error("get_object", bucket, Some(key), e))?;
        let data = out.body.collect().await.map_err(|e| AuditError::Request {
            op: "get_object",
            bucket: bucket.clone(),
            key: Some(key.to_string()),
            status: None,
            code: None,
            message: e.to_string(),
        })?;
        Ok(data.into_bytes().to_vec())
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
                .client
                .list_object_versions()
                .bucket(bucket)
                .prefix(&self.target.prefix)
                .set_key_marker(key_marker.clone())
                .set_version_id_marker(version_marker.clone())
                .send()
                .await
                .map_err(|e| request_error("list_object_versions", bucket, None, e))?;
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

/// An S3 client for a bucket configuration (SDK retries on: the audit writer has no
/// retry loop of its own besides re-sealing after a lost race).
pub async fn client_for(cfg: &BucketConfig) -> Client {
    let builder = crate::storage::sdk_config(
        cfg,
        RetryConfig::standard().with_max_attempts(4),
        Duration::from_secs(5),
        "evidence-operator-audit",
    )
    .await;
    Client::from_conf(builder.build())
}
