//! [`S3TierStore`]: the [`TierStore`] over any S3-compatible store, with aws-sdk-s3.
//!
//! Every request goes through one helper (`S3TierStore::send`) that holds a permit
//! of the bucket's concurrency limit, retries throttling and transient failures with
//! jittered backoff, counts the attempt in the metrics and in the caller's request
//! count, and classifies the final failure into [`StorageError`]. The SDK's own retries
//! are off; an interceptor counts the HTTP requests actually sent, as a cross-check.
//!
//! Every write (copy, hold, delete) is preceded by the region proof (cached for
//! `region_cache_ttl`), inside the store, so no caller can forget it.
//!
//! ## Checksums: where the SHA-256 is recorded
//! A clip's full-object SHA-256 lives in its `evidence-sha256` user metadata. When a
//! source has none (first move after upload), it is computed by streaming the source
//! version once (or taken from an S3 full-object `x-amz-checksum-sha256`, if the
//! uploader sent one), and recorded **on the destination of that first move** (the copy
//! is written with `MetadataDirective=REPLACE` and the checksum added); the source is not
//! rewritten in place. Rewriting the source would cost a full extra copy of every clip
//! on upload, create a second version on a versioned bucket (the very data we must not
//! leave lingering), and be impossible on a held version. Every later move then verifies
//! end to end against the recorded value.
//!
//! ## Move: the steps and why re-running converges
//! 1. region proof (+ Object Lock check when the destination is the legal-hold tier);
//! 2. the source version: as listed, when the listing carried its recorded checksum and
//!    hold (MinIO's listing extension, see `extended`) and one `CopyObject` will do;
//!    otherwise a HEAD. A source under legal hold is refused;
//! 3. the expected SHA-256 (recorded metadata, S3 full-object checksum, or a streamed
//!    hash);
//! 4. where a second copy would cost more than a HEAD (multipart, or a versioned
//!    destination, where it would leave the first behind as a noncurrent version),
//!    HEAD the destination: if it already holds a copy whose recorded and actual
//!    SHA-256 equal the expected one (an interrupted earlier run), skip the copy. An
//!    unversioned destination is simply overwritten;
//! 5. otherwise copy (`CopyObject`, or `UploadPartCopy` above the multipart threshold),
//!    with the target storage class, the source's tags and metadata plus the checksum;
//! 6. verify: the full-object SHA-256 the store computed while writing the copy, from
//!    its answer to `CopyObject` (AWS: XML body, MinIO: response header); where it gave
//!    none, HEAD the written version (size, recorded checksum, S3 checksum) and, for
//!    multipart copies, read it back and hash it. A mismatch stops here: the source is
//!    never deleted;
//! 7. into the legal-hold tier: legal hold ON for the written version;
//! 8. delete the source **version** that was copied (so no data lingers as a
//!    noncurrent version). For a same-key storage-class change on an unversioned
//!    bucket the copy replaced the object and there is nothing to delete.
//!
//! A run stopped after any step leaves the source in place until step 8, and the
//! re-run finds the verified destination at step 4 (or copies again over it). Steady
//! state, a move of a clip whose checksum is recorded costs two requests (copy,
//! delete) on MinIO, plus a legal hold into the legal-hold tier; the first move of a
//! clip one more (the HEAD that reads its checksum).

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Instant,
};

use async_trait::async_trait;
use aws_sdk_s3::{
    Client,
    client::customize::CustomizableOperation,
    config::{
        BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
        http::HttpResponse, interceptors::BeforeTransmitInterceptorContextRef, retry::RetryConfig,
        timeout::TimeoutConfig,
    },
    error::{BoxError, ProvideErrorMetadata, SdkError},
    types::{
        ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
        Delete, MetadataDirective, ObjectIdentifier, ObjectLockEnabled, ObjectLockLegalHold,
        ObjectLockLegalHoldStatus, StorageClass, TaggingDirective,
    },
};
use base64::Engine;
use chrono::{DateTime, Utc};
use futures::{
    StreamExt, TryStreamExt,
    future::ready,
    stream::{self, BoxStream},
};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, Semaphore};
use tokio_util::sync::CancellationToken;

use super::{
    BucketConfig, DeleteFailure, DeleteReport, MoveOutcome, StepContext, StoreOptions,
    TierLocation, TierStore, Verification,
    error::{MoveStep, StorageError},
    extended::{Capture, ExtrasIndex, ListedExtras, add_list_metadata_param, parse_listing},
    metrics::StorageMetrics,
    region::{CachedProof, RegionProof, check_endpoint, normalize_location},
    retry::{Failure, FailureKind, backoff},
};
use crate::api::clip::{Clip, META_SHA256, Tag, Tier};

const MIN_PART: u64 = 5 * 1024 * 1024;
const MAX_PARTS: u64 = 10_000;
const DELETE_BATCH: usize = 1000;

/// Counts the requests one public operation makes (every attempt).
#[derive(Debug, Default)]
struct Calls(AtomicU32);

impl Calls {
    fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

/// SDK interceptor: counts each HTTP request actually sent (retries included).
#[derive(Debug)]
struct CountHttpRequests(StorageMetrics);

impl Intercept for CountHttpRequests {
    fn name(&self) -> &'static str {
        "evidence-count-http-requests"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.http_request(context.request().method());
        Ok(())
    }
}

/// What a HEAD told us about one object version.
#[derive(Debug, Clone)]
struct Head {
    version_id: Option<String>,
    size: u64,
    class: String,
    /// The `evidence-sha256` user metadata, when it is a well-formed hex SHA-256.
    sha_meta: Option<String>,
    /// S3's own full-object SHA-256 (hex), when the store has one.
    s3_sha256: Option<String>,
    metadata: HashMap<String, String>,
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    legal_hold: bool,
    /// Built from the listing, not from a HEAD: the content headers and user metadata
    /// are unknown, so a copy keeps them with `MetadataDirective=COPY`.
    from_listing: bool,
}

/// One copy to make: which source version, where to, in which storage class, and the
/// SHA-256 to record on the destination.
#[derive(Clone, Copy)]
struct CopyJob<'a> {
    src_bucket: &'a str,
    src_key: &'a str,
    src: &'a Head,
    dst_bucket: &'a str,
    dst_key: &'a str,
    class: &'a str,
    sha: &'a str,
}

/// One object as listed.
#[derive(Debug, Clone)]
struct Listed {
    key: String,
    version_id: Option<String>,
    size: u64,
    class: Option<String>,
    last_modified: DateTime<Utc>,
    /// Tags, recorded checksum and hold, when the listing carried them (MinIO).
    extras: Option<ListedExtras>,
}

/// A verified move's source version, still to delete (step 8, deferred to a batch).
#[derive(Debug, Clone)]
struct PendingDelete {
    bucket: String,
    key: String,
    version: Option<String>,
}

enum Cursor {
    Start,
    V2(Option<String>),
    Versions(Option<String>, Option<String>),
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn to_chrono(t: Option<&aws_sdk_s3::primitives::DateTime>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// URL-encode everything but unreserved characters (and `/` when `keep_slash`).
fn url_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The `x-amz-copy-source` value for one object version.
fn copy_source(bucket: &str, key: &str, version: Option<&str>) -> String {
    let mut s = format!("{bucket}/{}", url_encode(key, true));
    if let Some(v) = version {
        s.push_str("?versionId=");
        s.push_str(&url_encode(v, false));
    }
    s
}

/// The `x-amz-tagging` value (URL query form) for key/value pairs: what `PutObject`'s
/// `tagging` parameter takes. Tests and tools that upload clips use it too.
pub fn tagging_query<K: AsRef<str>, V: AsRef<str>>(
    pairs: impl IntoIterator<Item = (K, V)>,
) -> String {
    pairs
        .into_iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                url_encode(k.as_ref(), false),
                url_encode(v.as_ref(), false)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The `x-amz-tagging` value for a tag set.
fn tagging_header(tags: &[Tag]) -> String {
    tagging_query(tags.iter().map(|t| (&t.key, &t.value)))
}

/// A full-object SHA-256 from S3's checksum header, as hex; `None` for composite
/// (multipart) checksums, which are checksums of part checksums.
fn full_object_sha256(value: Option<&str>, kind: Option<&ChecksumType>) -> Option<String> {
    let v = value?;
    if matches!(kind, Some(ChecksumType::Composite)) || v.contains('-') {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(v).ok()?;
    (bytes.len() == 32).then(|| hex::encode(bytes))
}

/// The SDK configuration for a bucket configuration: its declared region, static
/// credentials if given (else the default chain: IRSA, instance profile, env),
/// endpoint and path style; with the caller's retry policy and connect timeout.
pub(crate) async fn sdk_config(
    cfg: &BucketConfig,
    retry: RetryConfig,
    connect_timeout: std::time::Duration,
    app: &'static str,
) -> aws_sdk_s3::config::Builder {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(cfg.declared_region.clone()))
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(connect_timeout)
                .build(),
        );
    if let Some(c) = &cfg.credentials {
        loader = loader.credentials_provider(Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.clone(),
            c.session_token.clone(),
            None,
            app,
        ));
    }
    let sdk = loader.load().await;
    let mut builder =
        aws_sdk_s3::config::Builder::from(&sdk).force_path_style(cfg.force_path_style);
    if let Some(ep) = &cfg.endpoint {
        builder = builder.endpoint_url(ep.clone());
    }
    builder
}

/// The S3 tier store.
pub struct S3TierStore {
    cfg: BucketConfig,
    opts: StoreOptions,
    metrics: StorageMetrics,
    client: Client,
    limits: HashMap<String, Arc<Semaphore>>,
    region: Mutex<Option<CachedProof>>,
    object_lock_until: Mutex<Option<Instant>>,
    /// Versioning status by bucket, and when it was read.
    versioning: Mutex<HashMap<String, (bool, Instant)>>,
}

impl std::fmt::Debug for S3TierStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3TierStore")
            .field("cfg", &self.cfg)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl S3TierStore {
    /// Build a store. Validates the configuration and refuses a non-UK AWS endpoint;
    /// makes no request (the region proof runs before the first write).
    pub async fn new(
        cfg: BucketConfig,
        opts: StoreOptions,
        metrics: StorageMetrics,
    ) -> Result<Self, StorageError> {
        cfg.validate()?;
        check_endpoint(cfg.endpoint.as_deref(), &cfg.allowed_regions)?;
        if opts.concurrency_per_bucket == 0 || opts.list_concurrency == 0 || opts.max_attempts == 0
        {
            return Err(StorageError::Config {
                name: cfg.name.clone(),
                reason: "concurrency and attempts must be at least 1".into(),
            });
        }
        let builder = sdk_config(
            &cfg,
            RetryConfig::disabled(),
            opts.connect_timeout,
            "evidence-operator",
        )
        .await
        .interceptor(CountHttpRequests(metrics.clone()));
        let client = Client::from_conf(builder.build());
        let limits = cfg
            .tiers
            .buckets()
            .into_iter()
            .map(|b| (b, Arc::new(Semaphore::new(opts.concurrency_per_bucket))))
            .collect();
        Ok(S3TierStore {
            cfg,
            opts,
            metrics,
            client,
            limits,
            region: Mutex::new(None),
            object_lock_until: Mutex::new(None),
            versioning: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration this store serves.
    pub fn config(&self) -> &BucketConfig {
        &self.cfg
    }

    /// The metrics this store counts into.
    pub fn metrics(&self) -> &StorageMetrics {
        &self.metrics
    }

    /// Forget the cached region proof and Object Lock check (the next write re-proves).
    pub async fn forget_region_proof(&self) {
        *self.region.lock().await = None;
        *self.object_lock_until.lock().await = None;
    }

    /// One S3 request with the bucket's concurrency limit, bounded jittered retries on
    /// throttling and transient failures, and counting.
    async fn send<T, E, F, Fut>(
        &self,
        op: &'static str,
        bucket: &str,
        calls: &Calls,
        mut f: F,
    ) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let result = {
                // Buckets outside the configuration (none today) run unlimited.
                let _permit = match self.limits.get(bucket) {
                    Some(s) => s.acquire().await.ok(),
                    None => None,
                };
                f().await
            };
            calls.inc();
            let secs = started.elapsed().as_secs_f64();
            match result {
                Ok(v) => {
                    self.metrics.request(op, "ok", secs);
                    return Ok(v);
                }
                Err(e) => {
                    let mut failure = Failure::from_sdk(&e);
                    failure.attempts = attempt;
                    self.metrics.request(op, failure.kind.outcome(), secs);
                    if failure.kind.retryable() && attempt < self.opts.max_attempts {
                        self.metrics.retry(op);
                        tracing::debug!(op, bucket, attempt, code = %failure.code, "retrying S3 request");
                        tokio::time::sleep(backoff(
                            attempt,
                            self.opts.backoff_base,
                            self.opts.backoff_max,
                        ))
                        .await;
                        continue;
                    }
                    return Err(failure);
                }
            }
        }
    }

    fn loc(&self, tier: Tier) -> &TierLocation {
        self.cfg.tiers.get(tier)
    }

    /// Prove (or reuse a cached proof) that every tier bucket is in an allowed region.
    async fn prove(&self, calls: &Calls) -> Result<RegionProof, StorageError> {
        let mut cached = self.region.lock().await;
        if let Some(c) = cached.as_ref()
            && c.expires > Instant::now()
        {
            return Ok(c.proof.clone());
        }
        *cached = None;
        let allowed = &self.cfg.allowed_regions;
        check_endpoint(self.cfg.endpoint.as_deref(), allowed)?;
        let mut buckets = Vec::new();
        for bucket in self.cfg.tiers.buckets() {
            let found = match self
                .send("get_bucket_location", &bucket, calls, || {
                    self.client.get_bucket_location().bucket(&bucket).send()
                })
                .await
            {
                Ok(out) => normalize_location(out.location_constraint().map(|c| c.as_str())),
                // A store that refuses our signature because the bucket is elsewhere tells
                // us where: that is the finding.
                Err(f) if f.bucket_region.is_some() => f.bucket_region.unwrap_or_default(),
                Err(f) => return Err(f.into_error("get_bucket_location", &bucket, None)),
            };
            if !allowed.contains(&found) {
                tracing::warn!(
                    bucket,
                    found,
                    ?allowed,
                    "bucket refused: not in an allowed UK region"
                );
                return Err(StorageError::RegionNotAllowed {
                    bucket,
                    found,
                    allowed: allowed.clone(),
                });
            }
            buckets.push((bucket, found));
        }
        let proof = RegionProof {
            buckets,
            allowed: allowed.clone(),
            checked_at: Utc::now(),
        };
        *cached = Some(CachedProof {
            proof: proof.clone(),
            expires: Instant::now() + self.opts.region_cache_ttl,
        });
        Ok(proof)
    }

    /// Refuse a legal-hold bucket without Object Lock (cached like the region proof).
    async fn ensure_object_lock(&self, calls: &Calls) -> Result<(), StorageError> {
        let mut until = self.object_lock_until.lock().await;
        if until.is_some_and(|u| u > Instant::now()) {
            return Ok(());
        }
        let bucket = self.loc(Tier::LegalHold).bucket.clone();
        let enabled = match self
            .send("get_object_lock_configuration", &bucket, calls, || {
                self.client
                    .get_object_lock_configuration()
                    .bucket(&bucket)
                    .send()
            })
            .await
        {
            Ok(out) => {
                out.object_lock_configuration()
                    .and_then(|c| c.object_lock_enabled())
                    == Some(&ObjectLockEnabled::Enabled)
            }
            Err(f)
                if f.code == "ObjectLockConfigurationNotFoundError"
                    || (f.kind == FailureKind::NotFound && f.code != "NoSuchBucket") =>
            {
                false
            }
            Err(f) => return Err(f.into_error("get_object_lock_configuration", &bucket, None)),
        };
        if !enabled {
            return Err(StorageError::ObjectLockMissing { bucket });
        }
        *until = Some(Instant::now() + self.opts.region_cache_ttl);
        Ok(())
    }

    async fn head(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        calls: &Calls,
    ) -> Result<Option<Head>, StorageError> {
        let res = self
            .send("head_object", bucket, calls, || {
                self.client
                    .head_object()
                    .bucket(bucket)
                    .key(key)
                    .set_version_id(version.map(str::to_string))
                    .checksum_mode(ChecksumMode::Enabled)
                    .send()
            })
            .await;
        let out = match res {
            Ok(o) => o,
            Err(f) if f.kind == FailureKind::NotFound => return Ok(None),
            Err(f) => return Err(f.into_error("head_object", bucket, Some(key))),
        };
        let metadata = out.metadata().cloned().unwrap_or_default();
        let sha_meta = metadata
            .get(META_SHA256)
            .map(|s| s.to_ascii_lowercase())
            .filter(|s| is_sha256_hex(s));
        Ok(Some(Head {
            version_id: out.version_id().map(str::to_string),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            class: out
                .storage_class()
                .map_or_else(|| "STANDARD".to_string(), |c| c.as_str().to_string()),
            sha_meta,
            s3_sha256: full_object_sha256(out.checksum_sha256(), out.checksum_type()),
            content_type: out.content_type().map(str::to_string),
            content_encoding: out.content_encoding().map(str::to_string),
            content_disposition: out.content_disposition().map(str::to_string),
            content_language: out.content_language().map(str::to_string),
            cache_control: out.cache_control().map(str::to_string),
            legal_hold: out.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On),
            metadata,
            from_listing: false,
        }))
    }

    /// Stream one object version and return its SHA-256 (hex) and length.
    async fn hash_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        calls: &Calls,
    ) -> Result<(String, u64), StorageError> {
        let out = self
            .send("get_object", bucket, calls, || {
                self.client
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .set_version_id(version.map(str::to_string))
                    .send()
            })
            .await
            .map_err(|f| f.into_error("get_object", bucket, Some(key)))?;
        let mut body = out.body;
        let mut hasher = Sha256::new();
        let mut n: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| StorageError::Read {
                bucket: bucket.to_string(),
                key: key.to_string(),
                message: e.to_string(),
            })?;
            n += chunk.len() as u64;
            hasher.update(&chunk);
        }
        self.metrics.hashed(n);
        Ok((hex::encode(hasher.finalize()), n))
    }

    /// Read the full-object SHA-256 of a clip: the recorded one if there is one, else
    /// S3's full-object checksum, else computed by streaming the object.
    pub async fn read_sha256(&self, clip: &Clip) -> Result<String, StorageError> {
        let calls = Calls::default();
        let loc = self.loc(clip.tier);
        let key = loc.object_key(&clip.key);
        let head = self
            .head(&loc.bucket, &key, clip.version_id.as_deref(), &calls)
            .await?
            .ok_or_else(|| StorageError::NotFound {
                bucket: loc.bucket.clone(),
                key: key.clone(),
            })?;
        self.source_sha256(&loc.bucket, &key, &head, &calls).await
    }

    async fn source_sha256(
        &self,
        bucket: &str,
        key: &str,
        head: &Head,
        calls: &Calls,
    ) -> Result<String, StorageError> {
        if let Some(s) = &head.sha_meta {
            return Ok(s.clone());
        }
        if let Some(s) = &head.s3_sha256 {
            return Ok(s.clone());
        }
        let (sha, n) = self
            .hash_object(bucket, key, head.version_id.as_deref(), calls)
            .await?;
        if n != head.size {
            return Err(StorageError::Read {
                bucket: bucket.to_string(),
                key: key.to_string(),
                message: format!("read {n} bytes of a {}-byte object", head.size),
            });
        }
        Ok(sha)
    }

    /// Check that `head` (or the current object) is a complete copy with SHA-256
    /// `expected`: size, recorded checksum, and actual content.
    async fn verify(
        &self,
        bucket: &str,
        key: &str,
        head: &Head,
        expected: &str,
        size: u64,
        calls: &Calls,
    ) -> Result<Verification, StorageError> {
        let mismatch = |found: String| {
            self.metrics.mismatch();
            tracing::error!(
                bucket,
                key,
                expected,
                found,
                "checksum mismatch; source kept"
            );
            StorageError::ChecksumMismatch {
                bucket: bucket.to_string(),
                key: key.to_string(),
                expected: expected.to_string(),
                found,
            }
        };
        if head.size != size {
            return Err(mismatch(format!(
                "a {}-byte object (expected {size} bytes)",
                head.size
            )));
        }
        if head.sha_meta.as_deref() != Some(expected) {
            return Err(mismatch(format!(
                "recorded {}",
                head.sha_meta.as_deref().unwrap_or("none")
            )));
        }
        let (found, how) = match &head.s3_sha256 {
            Some(s) => (s.clone(), Verification::S3Checksum),
            None => {
                let (s, _) = self
                    .hash_object(bucket, key, head.version_id.as_deref(), calls)
                    .await?;
                (s, Verification::Reread)
            }
        };
        self.metrics.verification(how.as_str());
        if found != expected {
            return Err(mismatch(found));
        }
        Ok(how)
    }

    async fn step(
        &self,
        step: MoveStep,
        clip_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        dst_version: Option<&str>,
    ) -> Result<(), StorageError> {
        if let Some(hook) = &self.opts.fault_hook {
            let go_on = hook(StepContext {
                step,
                clip_key: clip_key.to_string(),
                dst_bucket: dst_bucket.to_string(),
                dst_key: dst_key.to_string(),
                dst_version_id: dst_version.map(str::to_string),
            })
            .await;
            if !go_on {
                return Err(StorageError::Interrupted {
                    key: clip_key.to_string(),
                    step,
                });
            }
        }
        Ok(())
    }

    /// User metadata for the destination: the source's, plus the checksum.
    fn dst_metadata(head: &Head, sha: &str) -> HashMap<String, String> {
        let mut m = head.metadata.clone();
        m.insert(META_SHA256.to_string(), sha.to_string());
        m
    }

    /// Single-request server-side copy (up to 5 GiB). Returns the written version and
    /// the full-object SHA-256 (hex) of the copy as the store reported it in its answer
    /// (AWS: in the XML body; MinIO: in the `x-amz-checksum-sha256` header), if it did.
    async fn copy_single(
        &self,
        job: &CopyJob<'_>,
        calls: &Calls,
    ) -> Result<(Option<String>, Option<String>), StorageError> {
        let source = copy_source(job.src_bucket, job.src_key, job.src.version_id.as_deref());
        let metadata = Self::dst_metadata(job.src, job.sha);
        let capture = Capture::headers();
        let out = self
            .send("copy_object", job.dst_bucket, calls, || {
                let req = self
                    .client
                    .copy_object()
                    .bucket(job.dst_bucket)
                    .key(job.dst_key)
                    .copy_source(&source)
                    .storage_class(StorageClass::from(job.class))
                    .tagging_directive(TaggingDirective::Copy)
                    .checksum_algorithm(ChecksumAlgorithm::Sha256);
                let req = if job.src.from_listing {
                    // The source already records the SHA-256 (the listing said so): keep its
                    // metadata and content headers as they are.
                    req.metadata_directive(MetadataDirective::Copy)
                } else {
                    req.metadata_directive(MetadataDirective::Replace)
                        .set_metadata(Some(metadata.clone()))
                        .set_content_type(job.src.content_type.clone())
                        .set_content_encoding(job.src.content_encoding.clone())
                        .set_content_disposition(job.src.content_disposition.clone())
                        .set_content_language(job.src.content_language.clone())
                        .set_cache_control(job.src.cache_control.clone())
                };
                req.customize().interceptor(capture.clone()).send()
            })
            .await
            .map_err(|f| f.into_error("copy_object", job.dst_bucket, Some(job.dst_key)))?;
        let raw = capture.take();
        let reported = out
            .copy_object_result()
            .and_then(|r| full_object_sha256(r.checksum_sha256(), r.checksum_type()))
            .or_else(|| {
                let kind = raw.checksum_type.as_deref().map(ChecksumType::from);
                full_object_sha256(raw.checksum_sha256.as_deref(), kind.as_ref())
            });
        Ok((out.version_id().map(str::to_string), reported))
    }

    /// Multipart server-side copy (`UploadPartCopy`), for objects above the threshold.
    /// Tags are not copied by UploadPartCopy: they are read from the source and set on
    /// the upload. An upload that fails is aborted (best effort); a crash leaves an
    /// incomplete upload, which the bucket's AbortIncompleteMultipartUpload lifecycle
    /// rule cleans (see docs/storage.md).
    async fn copy_multipart(
        &self,
        job: &CopyJob<'_>,
        calls: &Calls,
    ) -> Result<Option<String>, StorageError> {
        let tags = self
            .send("get_object_tagging", job.src_bucket, calls, || {
                self.client
                    .get_object_tagging()
                    .bucket(job.src_bucket)
                    .key(job.src_key)
                    .set_version_id(job.src.version_id.clone())
                    .send()
            })
            .await
            .map_err(|f| f.into_error("get_object_tagging", job.src_bucket, Some(job.src_key)))?;
        let tags: Vec<Tag> = tags
            .tag_set()
            .iter()
            .map(|t| Tag::new(t.key(), t.value()))
            .collect();
        let tagging = tagging_header(&tags);
        let metadata = Self::dst_metadata(job.src, job.sha);
        let created = self
            .send("create_multipart_upload", job.dst_bucket, calls, || {
                self.client
                    .create_multipart_upload()
                    .bucket(job.dst_bucket)
                    .key(job.dst_key)
                    .storage_class(StorageClass::from(job.class))
                    .set_metadata(Some(metadata.clone()))
                    .set_tagging((!tagging.is_empty()).then(|| tagging.clone()))
                    .set_content_type(job.src.content_type.clone())
                    .set_content_encoding(job.src.content_encoding.clone())
                    .set_content_disposition(job.src.content_disposition.clone())
                    .set_content_language(job.src.content_language.clone())
                    .set_cache_control(job.src.cache_control.clone())
                    .send()
            })
            .await
            .map_err(|f| {
                f.into_error("create_multipart_upload", job.dst_bucket, Some(job.dst_key))
            })?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StorageError::Service {
                op: "create_multipart_upload",
                bucket: job.dst_bucket.to_string(),
                code: "NoUploadId".into(),
                message: "the store returned no upload id".into(),
            })?
            .to_string();
        let result = self.copy_parts(job, &upload_id, calls).await;
        match result {
            Ok(version) => Ok(version),
            Err(e) => {
                let aborted = self
                    .send("abort_multipart_upload", job.dst_bucket, calls, || {
                        self.client
                            .abort_multipart_upload()
                            .bucket(job.dst_bucket)
                            .key(job.dst_key)
                            .upload_id(&upload_id)
                            .send()
                    })
                    .await;
                if let Err(f) = aborted {
                    tracing::warn!(job.dst_bucket, job.dst_key, upload_id, code = %f.code, "could not abort multipart upload");
                }
                Err(e)
            }
        }
    }

    async fn copy_parts(
        &self,
        job: &CopyJob<'_>,
        upload_id: &str,
        calls: &Calls,
    ) -> Result<Option<String>, StorageError> {
        let CopyJob {
            src_bucket,
            src_key,
            src,
            dst_bucket,
            dst_key,
            ..
        } = *job;
        let size = src.size;
        let part_size = self
            .opts
            .part_size
            .max(MIN_PART)
            .max(size.div_ceil(MAX_PARTS));
        let source = copy_source(src_bucket, src_key, src.version_id.as_deref());
        let ranges: Vec<(i32, u64, u64)> = (0..size.div_ceil(part_size))
            .map(|i| {
                let start = i * part_size;
                let end = (start + part_size).min(size) - 1;
                (i as i32 + 1, start, end)
            })
            .collect();
        let source = &source;
        let mut parts: Vec<CompletedPart> = stream::iter(ranges)
            .map(|(n, start, end)| async move {
                let out = self
                    .send("upload_part_copy", dst_bucket, calls, || {
                        self.client
                            .upload_part_copy()
                            .bucket(dst_bucket)
                            .key(dst_key)
                            .upload_id(upload_id)
                            .part_number(n)
                            .copy_source(source)
                            .copy_source_range(format!("bytes={start}-{end}"))
                            .send()
                    })
                    .await
                    .map_err(|f| f.into_error("upload_part_copy", dst_bucket, Some(dst_key)))?;
                let etag = out
                    .copy_part_result()
                    .and_then(|r| r.e_tag())
                    .unwrap_or_default()
                    .to_string();
                Ok::<_, StorageError>(CompletedPart::builder().e_tag(etag).part_number(n).build())
            })
            .buffer_unordered(4)
            .try_collect()
            .await?;
        parts.sort_by_key(|p| p.part_number());
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        let out = self
            .send("complete_multipart_upload", dst_bucket, calls, || {
                self.client
                    .complete_multipart_upload()
                    .bucket(dst_bucket)
                    .key(dst_key)
                    .upload_id(upload_id)
                    .multipart_upload(completed.clone())
                    .send()
            })
            .await
            .map_err(|f| f.into_error("complete_multipart_upload", dst_bucket, Some(dst_key)))?;
        Ok(out.version_id().map(str::to_string))
    }

    async fn put_hold(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        on: bool,
        calls: &Calls,
    ) -> Result<(), StorageError> {
        let status = if on {
            ObjectLockLegalHoldStatus::On
        } else {
            ObjectLockLegalHoldStatus::Off
        };
        self.send("put_object_legal_hold", bucket, calls, || {
            self.client
                .put_object_legal_hold()
                .bucket(bucket)
                .key(key)
                .set_version_id(version.map(str::to_string))
                .legal_hold(
                    ObjectLockLegalHold::builder()
                        .status(status.clone())
                        .build(),
                )
                .send()
        })
        .await
        .map_err(|f| f.into_error("put_object_legal_hold", bucket, Some(key)))?;
        Ok(())
    }

    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        calls: &Calls,
    ) -> Result<(), StorageError> {
        self.send("delete_object", bucket, calls, || {
            self.client
                .delete_object()
                .bucket(bucket)
                .key(key)
                .set_version_id(version.map(str::to_string))
                .send()
        })
        .await
        .map_err(|f| f.into_error("delete_object", bucket, Some(key)))?;
        Ok(())
    }

    /// The source of a move as the listing described it, when that is enough to copy
    /// and verify without a HEAD: the listing carried the clip's recorded SHA-256 (and
    /// hold status), the copy is a single request onto another object.
    fn listed_source(&self, clip: &Clip, same_object: bool) -> Option<Head> {
        let sha = clip.sha256.as_ref()?;
        if same_object || clip.size > self.opts.multipart_threshold {
            return None;
        }
        Some(Head {
            version_id: clip.version_id.clone(),
            size: clip.size,
            class: clip
                .storage_class
                .clone()
                .unwrap_or_else(|| "STANDARD".into()),
            sha_meta: Some(sha.clone()),
            s3_sha256: None,
            metadata: HashMap::new(),
            content_type: None,
            content_encoding: None,
            content_disposition: None,
            content_language: None,
            cache_control: None,
            legal_hold: clip.legal_hold,
            from_listing: true,
        })
    }

    /// Whether `bucket` has versioning enabled (or suspended), cached like the region
    /// proof; listings refresh it.
    async fn versioned(&self, bucket: &str, calls: &Calls) -> Result<bool, StorageError> {
        if let Some((v, at)) = self.versioning.lock().await.get(bucket)
            && at.elapsed() < self.opts.region_cache_ttl
        {
            return Ok(*v);
        }
        let out = self
            .send("get_bucket_versioning", bucket, calls, || {
                self.client.get_bucket_versioning().bucket(bucket).send()
            })
            .await
            .map_err(|f| f.into_error("get_bucket_versioning", bucket, None))?;
        let v = out.status().is_some();
        self.remember_versioning(bucket, v).await;
        Ok(v)
    }

    async fn remember_versioning(&self, bucket: &str, versioned: bool) {
        self.versioning
            .lock()
            .await
            .insert(bucket.to_string(), (versioned, Instant::now()));
    }

    async fn move_inner(
        &self,
        clip: &Clip,
        to: Tier,
        use_listing: bool,
        defer: Option<&mut Option<PendingDelete>>,
        calls: &Calls,
    ) -> Result<MoveOutcome, StorageError> {
        let from = clip.tier;
        if from == to {
            return Err(StorageError::InvalidInput(format!(
                "clip {} is already in tier {to}",
                clip.key
            )));
        }
        let src = self.loc(from).clone();
        let dst = self.loc(to).clone();
        let same_object = src.same_objects(&dst);
        let src_key = src.object_key(&clip.key);
        let dst_key = dst.object_key(&clip.key);
        let target_class = dst.class().to_string();

        // 1. No write before the region proof (and the Object Lock check).
        self.prove(calls).await?;
        if to == Tier::LegalHold {
            self.ensure_object_lock(calls).await?;
        }
        let mut outcome = MoveOutcome {
            key: clip.key.clone(),
            from,
            to,
            dst_version_id: None,
            sha256: String::new(),
            copied: false,
            multipart: false,
            bytes_copied: 0,
            verification: Verification::AlreadyComplete,
            source_deleted: false,
            requests: 0,
        };

        // 2. The source version: as listed, when the listing carried its recorded
        // checksum and hold (MinIO) and a single copy will do; else a HEAD.
        let listed = if use_listing {
            self.listed_source(clip, same_object)
        } else {
            None
        };
        let head = match listed {
            Some(h) => Some(h),
            None => {
                self.head(&src.bucket, &src_key, clip.version_id.as_deref(), calls)
                    .await?
            }
        };
        let Some(src_head) = head else {
            // Gone: an earlier run may have completed. Only a destination carrying the
            // clip's recorded checksum counts as done.
            let dst_head = self.head(&dst.bucket, &dst_key, None, calls).await?;
            return match dst_head {
                Some(d)
                    if d.sha_meta.is_some()
                        && d.class == target_class
                        && (clip.sha256.is_none() || d.sha_meta == clip.sha256) =>
                {
                    outcome.dst_version_id = d.version_id;
                    outcome.sha256 = d.sha_meta.unwrap_or_default();
                    Ok(outcome)
                }
                _ => Err(StorageError::NotFound {
                    bucket: src.bucket.clone(),
                    key: src_key,
                }),
            };
        };
        if src_head.legal_hold {
            return Err(StorageError::Held {
                bucket: src.bucket.clone(),
                key: src_key,
                version: src_head.version_id.unwrap_or_else(|| "null".into()),
            });
        }
        if same_object && src_head.class == target_class {
            // A storage-class change that is already done.
            outcome.dst_version_id = src_head.version_id.clone();
            outcome.sha256 = src_head.sha_meta.clone().unwrap_or_default();
            return Ok(outcome);
        }

        // 3. The checksum every copy is verified against.
        let expected = self
            .source_sha256(&src.bucket, &src_key, &src_head, calls)
            .await?;
        if let Some(listed) = &clip.sha256
            && !listed.eq_ignore_ascii_case(&expected)
        {
            self.metrics.mismatch();
            return Err(StorageError::ChecksumMismatch {
                bucket: src.bucket.clone(),
                key: src_key,
                expected: listed.clone(),
                found: expected,
            });
        }
        outcome.sha256 = expected.clone();

        // 4. A verified copy already there (an interrupted earlier run)? Only worth a
        // request where copying again would cost more than a HEAD: a multipart copy, or
        // a versioned destination (the legal-hold tier always is), where a second copy
        // would leave the first one behind as a noncurrent version. An unversioned
        // destination is simply overwritten with the same clip.
        let multipart = src_head.size > self.opts.multipart_threshold;
        let existing = if multipart || self.versioned(&dst.bucket, calls).await? {
            self.head(&dst.bucket, &dst_key, None, calls).await?
        } else {
            None
        };
        let mut verified: Option<(Option<String>, Verification)> = None;
        if let Some(d) = existing {
            let candidate = d.sha_meta.as_deref() == Some(expected.as_str())
                && d.class == target_class
                && d.size == src_head.size
                && !(same_object && d.version_id == src_head.version_id);
            if candidate {
                match self
                    .verify(&dst.bucket, &dst_key, &d, &expected, src_head.size, calls)
                    .await
                {
                    Ok(how) => verified = Some((d.version_id.clone(), how)),
                    // A wrong copy is not ours to delete; it is overwritten below.
                    Err(StorageError::ChecksumMismatch { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }

        // 5-6. Copy and verify.
        let (dst_version, how) = match verified {
            Some(v) => v,
            None => {
                let job = CopyJob {
                    src_bucket: &src.bucket,
                    src_key: &src_key,
                    src: &src_head,
                    dst_bucket: &dst.bucket,
                    dst_key: &dst_key,
                    class: &target_class,
                    sha: &expected,
                };
                let (version, reported) = if multipart {
                    (self.copy_multipart(&job, calls).await?, None)
                } else {
                    self.copy_single(&job, calls).await?
                };
                outcome.copied = true;
                outcome.multipart = multipart;
                outcome.bytes_copied = src_head.size;
                self.metrics.copied(src_head.size);
                self.step(
                    MoveStep::Copied,
                    &clip.key,
                    &dst.bucket,
                    &dst_key,
                    version.as_deref(),
                )
                .await?;
                let how = match reported {
                    // The store computed the copy's full-object SHA-256 while writing it
                    // and said so in its answer: compare that, no read-back.
                    Some(found) => {
                        if found != expected {
                            self.metrics.mismatch();
                            tracing::error!(bucket = %dst.bucket, key = %dst_key, %expected, %found, "checksum mismatch; source kept");
                            return Err(StorageError::ChecksumMismatch {
                                bucket: dst.bucket.clone(),
                                key: dst_key.clone(),
                                expected: expected.clone(),
                                found,
                            });
                        }
                        self.metrics.verification(Verification::S3Checksum.as_str());
                        (version.clone(), Verification::S3Checksum)
                    }
                    _ => {
                        let head = self
                            .head(&dst.bucket, &dst_key, version.as_deref(), calls)
                            .await?
                            .ok_or_else(|| StorageError::NotFound {
                                bucket: dst.bucket.clone(),
                                key: dst_key.clone(),
                            })?;
                        let how = self
                            .verify(
                                &dst.bucket,
                                &dst_key,
                                &head,
                                &expected,
                                src_head.size,
                                calls,
                            )
                            .await?;
                        (version.clone().or(head.version_id), how)
                    }
                };
                self.step(
                    MoveStep::Verified,
                    &clip.key,
                    &dst.bucket,
                    &dst_key,
                    how.0.as_deref(),
                )
                .await?;
                how
            }
        };
        outcome.dst_version_id = dst_version.clone();
        outcome.verification = how;

        // 7. Hold the written version.
        if to == Tier::LegalHold {
            self.put_hold(&dst.bucket, &dst_key, dst_version.as_deref(), true, calls)
                .await?;
            self.step(
                MoveStep::Held,
                &clip.key,
                &dst.bucket,
                &dst_key,
                dst_version.as_deref(),
            )
            .await?;
        }

        // 8. Delete the copied source version, only now (or hand it to the caller, who
        // deletes the sources of many verified moves in one request).
        let pending = if same_object {
            // The copy went onto the same key. Versioned: the listed version is now a
            // noncurrent duplicate; delete exactly it. Unversioned: it was replaced.
            match src_head.version_id.as_deref() {
                Some(v) if v != "null" && Some(v) != dst_version.as_deref() => {
                    Some(PendingDelete {
                        bucket: src.bucket.clone(),
                        key: src_key.clone(),
                        version: Some(v.to_string()),
                    })
                }
                _ => None,
            }
        } else {
            Some(PendingDelete {
                bucket: src.bucket.clone(),
                key: src_key.clone(),
                version: src_head.version_id.clone(),
            })
        };
        if let Some(p) = pending {
            if let Some(slot) = defer {
                *slot = Some(p);
                return Ok(outcome);
            }
            self.delete_version(&p.bucket, &p.key, p.version.as_deref(), calls)
                .await?;
            outcome.source_deleted = true;
        }
        self.step(
            MoveStep::SourceDeleted,
            &clip.key,
            &dst.bucket,
            &dst_key,
            dst_version.as_deref(),
        )
        .await?;
        Ok(outcome)
    }

    /// One move with the listing's facts, redone from a fresh HEAD if the listed source
    /// is gone or changed (which also recognises a move an earlier run completed).
    async fn move_one(
        &self,
        clip: &Clip,
        to: Tier,
        mut defer: Option<&mut Option<PendingDelete>>,
        calls: &Calls,
    ) -> Result<MoveOutcome, StorageError> {
        let result = self
            .move_inner(clip, to, true, defer.as_deref_mut(), calls)
            .await;
        let fast = self
            .listed_source(clip, self.loc(clip.tier).same_objects(self.loc(to)))
            .is_some();
        match result {
            Err(StorageError::NotFound { .. }) if fast => {
                self.move_inner(clip, to, false, defer, calls).await
            }
            r => r,
        }
    }

    /// Delete object versions of one bucket in `DeleteObjects` batches. Returns, per
    /// item, `None` when deleted or the store's `(code, message, retryable)`.
    async fn delete_batch(
        &self,
        bucket: &str,
        items: &[(String, Option<String>)],
        calls: &Calls,
    ) -> Result<Vec<Option<(String, String, bool)>>, StorageError> {
        let mut results = Vec::with_capacity(items.len());
        for chunk in items.chunks(DELETE_BATCH) {
            let mut objects = Vec::with_capacity(chunk.len());
            for (key, version) in chunk {
                objects.push(
                    ObjectIdentifier::builder()
                        .key(key)
                        .set_version_id(version.clone())
                        .build()
                        .map_err(|e| StorageError::InvalidInput(e.to_string()))?,
                );
            }
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| StorageError::InvalidInput(e.to_string()))?;
            let res = self
                .send("delete_objects", bucket, calls, || {
                    self.client
                        .delete_objects()
                        .bucket(bucket)
                        .delete(delete.clone())
                        .send()
                })
                .await;
            match res {
                Ok(out) => {
                    let mut errors: HashMap<(String, Option<String>), (String, String)> =
                        HashMap::new();
                    for e in out.errors() {
                        errors.insert(
                            (
                                e.key().unwrap_or_default().to_string(),
                                e.version_id().map(str::to_string),
                            ),
                            (
                                e.code().unwrap_or("unknown").to_string(),
                                e.message().unwrap_or_default().to_string(),
                            ),
                        );
                    }
                    for (key, version) in chunk {
                        let hit = errors
                            .get(&(key.clone(), version.clone()))
                            .or_else(|| errors.get(&(key.clone(), None)))
                            .or_else(|| errors.iter().find(|((k, _), _)| k == key).map(|(_, v)| v));
                        results.push(hit.map(|(code, message)| {
                            let retryable = super::retry::classify(code, None).retryable();
                            (code.clone(), message.clone(), retryable)
                        }));
                    }
                }
                Err(f) => {
                    let retryable = f.kind.retryable();
                    results.extend(
                        chunk
                            .iter()
                            .map(|_| Some((f.code.clone(), f.message.clone(), retryable))),
                    );
                }
            }
        }
        Ok(results)
    }

    /// Ask for MinIO's listing extension (when `list_metadata` is on) and keep the raw
    /// answer in `capture`.
    fn ask_listing_extras<T, E, B>(
        &self,
        req: CustomizableOperation<T, E, B>,
        capture: &Capture,
    ) -> CustomizableOperation<T, E, B> {
        if self.opts.list_metadata {
            req.mutate_request(add_list_metadata_param)
                .interceptor(capture.clone())
        } else {
            req
        }
    }

    /// The per-object extras of the listing page `capture` kept (empty when the store
    /// sent none, or when they cannot be read: the clips are then read one by one).
    fn listing_extras(&self, bucket: &str, capture: &Capture) -> ExtrasIndex {
        let Some(body) = capture.take().body else {
            return ExtrasIndex::new();
        };
        match parse_listing(&body) {
            Ok(index) => index,
            Err(e) => {
                tracing::warn!(bucket, error = %e, "could not read the listing's metadata; reading clips one by one");
                ExtrasIndex::new()
            }
        }
    }

    async fn list_page(
        &self,
        loc: &TierLocation,
        cursor: Cursor,
        calls: &Calls,
    ) -> Result<(Vec<Listed>, Option<Cursor>), StorageError> {
        let bucket = loc.bucket.as_str();
        let cursor = match cursor {
            Cursor::Start => {
                let v = self
                    .send("get_bucket_versioning", bucket, calls, || {
                        self.client.get_bucket_versioning().bucket(bucket).send()
                    })
                    .await
                    .map_err(|f| f.into_error("get_bucket_versioning", bucket, None))?;
                self.remember_versioning(bucket, v.status().is_some()).await;
                if v.status().is_some() {
                    Cursor::Versions(None, None)
                } else {
                    Cursor::V2(None)
                }
            }
            c => c,
        };
        match cursor {
            Cursor::V2(token) => {
                let capture = Capture::with_body();
                let out = self
                    .send("list_objects_v2", bucket, calls, || {
                        let req = self
                            .client
                            .list_objects_v2()
                            .bucket(bucket)
                            .prefix(&loc.prefix)
                            .max_keys(self.opts.list_page_size)
                            .set_continuation_token(token.clone())
                            .customize();
                        self.ask_listing_extras(req, &capture).send()
                    })
                    .await
                    .map_err(|f| f.into_error("list_objects_v2", bucket, None))?;
                let mut extras = self.listing_extras(bucket, &capture);
                let items = out
                    .contents()
                    .iter()
                    .filter_map(|o| {
                        let key = o.key()?.to_string();
                        Some(Listed {
                            extras: extras.remove(&(key.clone(), None)),
                            key,
                            version_id: None,
                            size: o.size().unwrap_or(0).max(0) as u64,
                            class: o.storage_class().map(|c| c.as_str().to_string()),
                            last_modified: to_chrono(o.last_modified()),
                        })
                    })
                    .collect();
                let next = match (out.is_truncated(), out.next_continuation_token()) {
                    (Some(true), Some(t)) => Some(Cursor::V2(Some(t.to_string()))),
                    _ => None,
                };
                Ok((items, next))
            }
            Cursor::Versions(key_marker, version_marker) => {
                let capture = Capture::with_body();
                let out = self
                    .send("list_object_versions", bucket, calls, || {
                        let req = self
                            .client
                            .list_object_versions()
                            .bucket(bucket)
                            .prefix(&loc.prefix)
                            .max_keys(self.opts.list_page_size)
                            .set_key_marker(key_marker.clone())
                            .set_version_id_marker(version_marker.clone())
                            .customize();
                        self.ask_listing_extras(req, &capture).send()
                    })
                    .await
                    .map_err(|f| f.into_error("list_object_versions", bucket, None))?;
                let mut extras = self.listing_extras(bucket, &capture);
                // Only current versions are clips; noncurrent ones and delete markers are not.
                let items = out
                    .versions()
                    .iter()
                    .filter(|v| v.is_latest() == Some(true))
                    .filter_map(|v| {
                        let key = v.key()?.to_string();
                        let version_id = v.version_id().map(str::to_string);
                        Some(Listed {
                            extras: extras.remove(&(key.clone(), version_id.clone())),
                            key,
                            version_id,
                            size: v.size().unwrap_or(0).max(0) as u64,
                            class: v.storage_class().map(|c| c.as_str().to_string()),
                            last_modified: to_chrono(v.last_modified()),
                        })
                    })
                    .collect();
                let next = if out.is_truncated() == Some(true) {
                    Some(Cursor::Versions(
                        out.next_key_marker().map(str::to_string),
                        out.next_version_id_marker().map(str::to_string),
                    ))
                } else {
                    None
                };
                Ok((items, next))
            }
            Cursor::Start => Ok((Vec::new(), None)),
        }
    }

    /// Whether an object listed at `loc` belongs to `tier`: tiers that share a bucket
    /// and prefix are told apart by storage class.
    fn belongs(&self, tier: Tier, class: Option<&str>) -> bool {
        let loc = self.loc(tier);
        let shared = Tier::ALL
            .iter()
            .any(|t| *t != tier && self.loc(*t).same_objects(loc));
        !shared || class.unwrap_or("STANDARD") == loc.class()
    }

    /// Tags, recorded checksum and hold of one listed object, read object by object
    /// (stores without the listing extension); `None` when it is gone.
    async fn read_clip_facts(
        &self,
        tier: Tier,
        item: &Listed,
        calls: &Calls,
    ) -> Result<Option<(Vec<Tag>, Option<String>, bool)>, StorageError> {
        let bucket = self.loc(tier).bucket.as_str();
        self.metrics.listed_per_object();
        let tags = match self
            .send("get_object_tagging", bucket, calls, || {
                self.client
                    .get_object_tagging()
                    .bucket(bucket)
                    .key(&item.key)
                    .set_version_id(item.version_id.clone())
                    .send()
            })
            .await
        {
            Ok(out) => out
                .tag_set()
                .iter()
                .map(|t| Tag::new(t.key(), t.value()))
                .collect(),
            Err(f) if f.kind == FailureKind::NotFound => return Ok(None),
            Err(f) => return Err(f.into_error("get_object_tagging", bucket, Some(&item.key))),
        };
        if tier == Tier::LegalHold || self.opts.list_checksums {
            Ok(self
                .head(bucket, &item.key, item.version_id.as_deref(), calls)
                .await?
                .map(|h| (tags, h.sha_meta, h.legal_hold)))
        } else {
            Ok(Some((tags, None, false)))
        }
    }

    /// Per-object calls of a listing. None when the listing carried the object's tags,
    /// recorded checksum and hold (MinIO's `metadata=true`). Otherwise: one
    /// `GetObjectTagging` per clip (the plan needs the category and recording time); in
    /// the legal-hold tier one `HeadObject` more (hold status and recorded checksum); in
    /// hot/cool a `HeadObject` only when `list_checksums` is set. Plus one list request
    /// per 1,000 clips and one `GetBucketVersioning` per listing.
    async fn enrich(
        &self,
        tier: Tier,
        mut item: Listed,
        calls: &Calls,
    ) -> Result<Option<Clip>, StorageError> {
        let loc = self.loc(tier);
        let (tags, sha256, legal_hold) = match item.extras.take() {
            Some(extras) => {
                // The listing carried everything (MinIO): no request for this clip.
                self.metrics.listed_with_extras(1);
                (extras.tags, extras.sha_meta, extras.legal_hold)
            }
            None => match self.read_clip_facts(tier, &item, calls).await? {
                Some(facts) => facts,
                // Deleted since it was listed: not a clip any more.
                None => return Ok(None),
            },
        };
        Ok(Some(Clip {
            key: item.key[loc.prefix.len()..].to_string(),
            tier,
            version_id: item.version_id,
            size: item.size,
            storage_class: Some(item.class.unwrap_or_else(|| "STANDARD".into())),
            last_modified: item.last_modified,
            tags,
            sha256,
            legal_hold,
        }))
    }
}

#[async_trait]
impl TierStore for S3TierStore {
    fn list(&self, tier: Tier) -> BoxStream<'_, Result<Clip, StorageError>> {
        let calls = Arc::new(Calls::default());
        let loc = self.loc(tier).clone();
        let page_calls = calls.clone();
        let pages = stream::try_unfold(Some(Cursor::Start), move |cursor| {
            let loc = loc.clone();
            let calls = page_calls.clone();
            async move {
                match cursor {
                    None => Ok(None),
                    Some(c) => {
                        let (items, next) = self.list_page(&loc, c, &calls).await?;
                        Ok(Some((items, next)))
                    }
                }
            }
        });
        pages
            .map_ok(|items| stream::iter(items.into_iter().map(Ok::<_, StorageError>)))
            .try_flatten()
            .try_filter(move |item| {
                ready(!item.key.ends_with('/') && self.belongs(tier, item.class.as_deref()))
            })
            .map_ok(move |item| {
                let calls = calls.clone();
                async move { self.enrich(tier, item, &calls).await }
            })
            .try_buffered(self.opts.list_concurrency)
            .try_filter_map(|c| ready(Ok(c)))
            .boxed()
    }

    async fn verify_region(&self) -> Result<RegionProof, StorageError> {
        self.prove(&Calls::default()).await
    }

    async fn move_clip(&self, clip: &Clip, to: Tier) -> Result<MoveOutcome, StorageError> {
        let calls = Calls::default();
        let result = self.move_one(clip, to, None, &calls).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.category(),
        };
        self.metrics.moved(to.as_str(), outcome);
        result.map(|mut o| {
            o.requests = calls.get();
            o
        })
    }

    async fn move_clips(
        &self,
        clips: &[Clip],
        to: Tier,
        concurrency: usize,
        stop: &CancellationToken,
    ) -> Vec<Option<Result<MoveOutcome, StorageError>>> {
        // 1-7 of every move, `concurrency` at a time; the source deletes are collected.
        let mut staged: Vec<Option<(Result<MoveOutcome, StorageError>, Option<PendingDelete>)>> =
            stream::iter(0..clips.len())
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
        let calls = Calls::default();
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
                                super::retry::classify(&code, None)
                            },
                            code,
                            message,
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

    async fn set_legal_hold(&self, clip: &Clip, on: bool) -> Result<(), StorageError> {
        if clip.tier != Tier::LegalHold {
            return Err(StorageError::InvalidInput(format!(
                "clip {} is in tier {}, not the legal-hold tier",
                clip.key, clip.tier
            )));
        }
        let calls = Calls::default();
        self.prove(&calls).await?;
        self.ensure_object_lock(&calls).await?;
        let loc = self.loc(Tier::LegalHold);
        self.put_hold(
            &loc.bucket,
            &loc.object_key(&clip.key),
            clip.version_id.as_deref(),
            on,
            &calls,
        )
        .await
    }

    async fn delete_clips(&self, clips: &[Clip]) -> Result<DeleteReport, StorageError> {
        let mut report = DeleteReport::default();
        if clips.is_empty() {
            return Ok(report);
        }
        let calls = Calls::default();
        self.prove(&calls).await?;
        let fail = |c: &Clip, code: &str, message: String, retryable: bool| DeleteFailure {
            clip: c.clone(),
            code: code.to_string(),
            message,
            retryable,
        };
        for tier in Tier::ALL {
            let loc = self.loc(tier);
            let bucket = loc.bucket.as_str();
            let mut sendable: Vec<&Clip> = Vec::new();
            for c in clips.iter().filter(|c| c.tier == tier) {
                if c.legal_hold {
                    report.failed.push(fail(
                        c,
                        "LegalHoldOn",
                        "the clip is under legal hold; release it first".into(),
                        false,
                    ));
                } else if tier == Tier::LegalHold && c.version_id.is_none() {
                    report.failed.push(fail(
                        c,
                        "VersionRequired",
                        "a legal-hold tier clip is deleted by version only".into(),
                        false,
                    ));
                } else {
                    sendable.push(c);
                }
            }
            let items: Vec<(String, Option<String>)> = sendable
                .iter()
                .map(|c| (loc.object_key(&c.key), c.version_id.clone()))
                .collect();
            let results = self.delete_batch(bucket, &items, &calls).await?;
            for (c, failure) in sendable.into_iter().zip(results) {
                match failure {
                    Some((code, message, retryable)) => {
                        report.failed.push(fail(c, &code, message, retryable));
                    }
                    None => report.deleted.push(c.clone()),
                }
            }
        }
        self.metrics.deleted("deleted", report.deleted.len() as u64);
        self.metrics.deleted("failed", report.failed.len() as u64);
        report.requests = calls.get();
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_encodes_key_and_version() {
        assert_eq!(
            copy_source("b", "clips/2026 03/a+b.mp4", Some("v/1=")),
            "b/clips/2026%2003/a%2Bb.mp4?versionId=v%2F1%3D"
        );
        assert_eq!(copy_source("b", "k", None), "b/k");
    }

    #[test]
    fn tagging_header_is_query_encoded() {
        let tags = vec![
            Tag::new("evidence.bwv.io/category", "domestic abuse"),
            Tag::new("k", "a&b=c"),
        ];
        assert_eq!(
            tagging_header(&tags),
            "evidence.bwv.io%2Fcategory=domestic%20abuse&k=a%26b%3Dc"
        );
    }

    #[test]
    fn only_full_object_checksums_verify() {
        let sha = Sha256::digest(b"clip");
        let b64 = base64::engine::general_purpose::STANDARD.encode(sha);
        assert_eq!(
            full_object_sha256(Some(&b64), Some(&ChecksumType::FullObject)),
            Some(hex::encode(sha))
        );
        assert_eq!(full_object_sha256(Some(&b64), None), Some(hex::encode(sha)));
        assert_eq!(
            full_object_sha256(Some(&b64), Some(&ChecksumType::Composite)),
            None
        );
        assert_eq!(full_object_sha256(Some(&format!("{b64}-3")), None), None);
        assert_eq!(full_object_sha256(Some("bm90LWEtc2hh"), None), None);
        assert_eq!(full_object_sha256(None, None), None);
    }

    #[test]
    fn sha_hex_is_validated() {
        assert!(is_sha256_hex(&"a".repeat(64)));
        assert!(!is_sha256_hex(&"g".repeat(64)));
        assert!(!is_sha256_hex("abc"));
    }
}
