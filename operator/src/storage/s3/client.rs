//! The S3 client side of the operator: the SDK configuration ([`sdk_config`], shared
//! with the audit writer), the interceptor that counts the HTTP requests actually sent,
//! [`Calls`], [`Requester`] — the **one** request path with its bounded, jittered retry
//! loop — and the URL encodings the requests need (`x-amz-tagging`, `x-amz-copy-source`).
//!
//! The SDK's own retries are off in every client [`sdk_config`] builds: every attempt
//! passes through [`Requester::send`], which holds a permit of the bucket's concurrency
//! limit (the store's buckets; others run unlimited), counts the attempt in the metrics
//! and in the caller's [`Calls`], and classifies the final failure (`retry::Failure`).
//! Two users share it:
//! - the tier store (`S3TierStore::send` is `Requester::send` with the store's limits,
//!   retry policy from [`StoreOptions`] and [`StorageMetrics`]);
//! - the audit writer (`crate::audit::AuditLog`: its conditional puts, listings and
//!   reads, and the integrity sweep's re-reads), with its own retry policy and
//!   unregistered metrics. A lost conditional write (412, 409) is not retried here: the
//!   audit writer handles it by re-sealing.
//!
//! Reading an object ([`Requester::get_object`], [`Requester::read_object`]) is here
//! too, for both. The interceptor is the cross-check that nothing else sends requests.

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use aws_sdk_s3::{
    Client,
    config::{
        BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
        http::HttpResponse, interceptors::BeforeTransmitInterceptorContextRef, retry::RetryConfig,
        timeout::TimeoutConfig,
    },
    error::{BoxError, ProvideErrorMetadata, SdkError},
    operation::get_object::GetObjectOutput,
};
use tokio::sync::Semaphore;

use super::S3TierStore;
use crate::{
    api::clip::Tag,
    storage::{
        BucketConfig, StoreOptions,
        metrics::StorageMetrics,
        retry::{Failure, backoff},
    },
};

/// Counts the requests one public operation makes (every attempt).
#[derive(Debug, Default)]
pub(crate) struct Calls(AtomicU32);

impl Calls {
    pub(crate) fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn get(&self) -> u32 {
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

/// The SDK configuration for a bucket configuration: its declared region, static
/// credentials if given (else the default chain: IRSA, instance profile, env),
/// endpoint and path style; with the caller's connect timeout, and the SDK's retries
/// **off**: a [`Requester`] retries, so no request is retried twice.
pub(crate) async fn sdk_config(
    cfg: &BucketConfig,
    connect_timeout: Duration,
    app: &'static str,
) -> aws_sdk_s3::config::Builder {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(cfg.declared_region.clone()))
        .retry_config(RetryConfig::disabled())
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

/// The store's client: [`sdk_config`] (SDK retries off) with the HTTP-request counter.
pub(super) async fn store_client(
    cfg: &BucketConfig,
    opts: &StoreOptions,
    metrics: &StorageMetrics,
) -> Client {
    let builder = sdk_config(cfg, opts.connect_timeout, "evidence-operator")
        .await
        .interceptor(CountHttpRequests(metrics.clone()));
    Client::from_conf(builder.build())
}

/// (tests) An SDK client configured as every operator client is ([`sdk_config`]: SDK
/// retries off) whose HTTP client is the SDK's own test client
/// (`aws_smithy_http_client::test_util`): no server, every request is answered with one
/// canned S3 error (status and code) and counted, so a test can tell how often a
/// failure was sent.
#[cfg(test)]
pub(crate) struct CannedS3 {
    client: Client,
    hits: Arc<std::sync::atomic::AtomicUsize>,
}

#[cfg(test)]
impl CannedS3 {
    /// Answer every request with `status` and the S3 error `code` (no body to a `HEAD`,
    /// as S3 sends none).
    pub(crate) async fn answering(status: u16, code: &'static str) -> CannedS3 {
        CannedS3::serving(move |method, _n| {
            let body = if method == http::Method::HEAD {
                Vec::new()
            } else {
                CannedS3::error_body(code)
            };
            (status, body)
        })
        .await
    }

    /// The XML body of an S3 error answer.
    pub(crate) fn error_body(code: &str) -> Vec<u8> {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
             <Message>canned by the test</Message><RequestId>1</RequestId></Error>"
        )
        .into_bytes()
    }

    /// Answer each request with what `answer(method, n)` gives (status and body), `n`
    /// counting the requests from 1.
    pub(crate) async fn serving(
        answer: impl Fn(http::Method, usize) -> (u16, Vec<u8>) + Send + Sync + 'static,
    ) -> CannedS3 {
        use crate::storage::{StaticCredentials, TierLocation, Tiers};

        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = hits.clone();
        let http_client = aws_smithy_http_client::test_util::infallible_client_fn(move |req| {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            let (status, body) = answer(req.method().clone(), n);
            http::Response::builder()
                .status(status)
                .header("content-type", "application/xml")
                .body(body)
                .unwrap_or_else(|e| panic!("canned response: {e}"))
        });
        let cfg = BucketConfig {
            name: "ns/canned".into(),
            declared_region: "eu-west-2".into(),
            endpoint: Some("http://s3.canned.test".into()),
            force_path_style: true,
            credentials: Some(StaticCredentials {
                access_key_id: "a".into(),
                secret_access_key: "s".into(),
                session_token: None,
            }),
            tiers: Tiers {
                hot: TierLocation::bucket("hot"),
                cool: TierLocation::bucket("cool"),
                legal_hold: TierLocation::bucket("lock"),
            },
            allowed_regions: vec!["eu-west-2".into()],
        };
        let builder = sdk_config(&cfg, Duration::from_secs(1), "evidence-operator-tests")
            .await
            .http_client(http_client);
        CannedS3 {
            client: Client::from_conf(builder.build()),
            hits,
        }
    }

    /// The SDK client (cheap to clone).
    pub(crate) fn client(&self) -> Client {
        self.client.clone()
    }

    /// The HTTP requests answered so far.
    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// How a [`Requester`] retries: attempts in all (the first included), and the bounds
/// of the jittered exponential backoff between them (`retry::backoff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Attempts in all, at least 1.
    pub(crate) max_attempts: u32,
    /// The first backoff; doubled each retry.
    pub(crate) backoff_base: Duration,
    /// The longest backoff.
    pub(crate) backoff_max: Duration,
}

impl RetryPolicy {
    /// The tier store's policy, from its options.
    pub(crate) fn of(opts: &StoreOptions) -> Self {
        RetryPolicy {
            max_attempts: opts.max_attempts,
            backoff_base: opts.backoff_base,
            backoff_max: opts.backoff_max,
        }
    }
}

/// Why reading an object to the end failed.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    /// The `GetObject` request failed (after the retries).
    Request(Failure),
    /// The body broke off after the answer began (not retried).
    Body(String),
}

/// The one path of every S3 request: an SDK client (built with [`sdk_config`], SDK
/// retries off), a [`RetryPolicy`], the metrics every attempt is counted in, and the
/// concurrency limit of each bucket that has one. Cheap to share by reference.
pub(crate) struct Requester {
    client: Client,
    policy: RetryPolicy,
    metrics: StorageMetrics,
    limits: HashMap<String, Arc<Semaphore>>,
}

impl std::fmt::Debug for Requester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requester")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Requester {
    /// A request path with no concurrency limit.
    pub(crate) fn new(client: Client, policy: RetryPolicy, metrics: StorageMetrics) -> Self {
        Requester {
            client,
            policy,
            metrics,
            limits: HashMap::new(),
        }
    }

    /// The same, with at most `per_bucket` requests in flight to each of `buckets`.
    pub(crate) fn limited(mut self, buckets: Vec<String>, per_bucket: usize) -> Self {
        self.limits = buckets
            .into_iter()
            .map(|b| (b, Arc::new(Semaphore::new(per_bucket))))
            .collect();
        self
    }

    /// The SDK client, to build requests for [`Requester::send`] with.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// One S3 request (`f` builds and sends it, once per attempt) with the bucket's
    /// concurrency limit, bounded jittered retries on throttling and transient failures
    /// only, and counting (metrics, and `calls` when given). Any other failure — not
    /// found, denied, a failed precondition (412) or conditional conflict (409) — is
    /// returned at once.
    pub(crate) async fn send<T, E, F, Fut>(
        &self,
        op: &'static str,
        bucket: &str,
        calls: Option<&Calls>,
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
                // Buckets without a limit (the audit writer's) run unlimited.
                let _permit = match self.limits.get(bucket) {
                    Some(s) => s.acquire().await.ok(),
                    None => None,
                };
                f().await
            };
            if let Some(calls) = calls {
                calls.inc();
            }
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
                    if failure.kind.retryable() && attempt < self.policy.max_attempts {
                        self.metrics.retry(op);
                        tracing::debug!(op, bucket, attempt, code = %failure.code, "retrying S3 request");
                        tokio::time::sleep(backoff(
                            attempt,
                            self.policy.backoff_base,
                            self.policy.backoff_max,
                        ))
                        .await;
                        continue;
                    }
                    return Err(failure);
                }
            }
        }
    }

    /// `GetObject` of one object (version), through [`Requester::send`]; the caller
    /// reads the body (the store streams it into a hash).
    pub(crate) async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        calls: Option<&Calls>,
    ) -> Result<GetObjectOutput, Failure> {
        self.send("get_object", bucket, calls, || {
            self.client
                .get_object()
                .bucket(bucket)
                .key(key)
                .set_version_id(version.map(str::to_string))
                .send()
        })
        .await
    }

    /// Read one object (version) to the end, into memory: for small objects only (the
    /// audit writer's batches).
    pub(crate) async fn read_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        calls: Option<&Calls>,
    ) -> Result<Vec<u8>, ReadFailure> {
        let out = self
            .get_object(bucket, key, version, calls)
            .await
            .map_err(ReadFailure::Request)?;
        let data = out
            .body
            .collect()
            .await
            .map_err(|e| ReadFailure::Body(e.to_string()))?;
        Ok(data.into_bytes().to_vec())
    }
}

impl S3TierStore {
    /// One S3 request of the store: [`Requester::send`] with the store's limits, retry
    /// policy and metrics, counted in `calls`.
    pub(super) async fn send<T, E, F, Fut>(
        &self,
        op: &'static str,
        bucket: &str,
        calls: &Calls,
        f: F,
    ) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.requester.send(op, bucket, Some(calls), f).await
    }
}

/// URL-encode everything but unreserved characters (and `/` when `keep_slash`).
pub(super) fn url_encode(s: &str, keep_slash: bool) -> String {
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
pub(super) fn tagging_header(tags: &[Tag]) -> String {
    tagging_query(tags.iter().map(|t| (&t.key, &t.value)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::storage::retry::FailureKind;

    /// A request path to `s3` with `max_attempts` and millisecond backoffs.
    async fn requester(s3: &CannedS3, max_attempts: u32, metrics: &StorageMetrics) -> Requester {
        let policy = RetryPolicy {
            max_attempts,
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(5),
        };
        Requester::new(s3.client(), policy, metrics.clone())
    }

    #[tokio::test]
    async fn throttled_and_transient_failures_are_retried_at_most_max_attempts_then_reported() {
        for (status, code, kind, outcome) in [
            (503, "SlowDown", FailureKind::Throttled, "throttled"),
            (500, "InternalError", FailureKind::Transient, "transient"),
        ] {
            let s3 = CannedS3::answering(status, code).await;
            let metrics = StorageMetrics::unregistered();
            let req = requester(&s3, 3, &metrics).await;
            let calls = Calls::default();
            let failure = req
                .send("list_objects_v2", "b", Some(&calls), || {
                    req.client().list_objects_v2().bucket("b").send()
                })
                .await
                .map(drop)
                .unwrap_err();
            assert_eq!(failure.kind, kind, "{code}");
            assert_eq!(failure.attempts, 3, "{code}");
            assert_eq!(failure.status, Some(status));
            assert_eq!(failure.code, code);
            assert_eq!(
                s3.hits(),
                3,
                "{code}: one HTTP request per attempt, no more"
            );
            assert_eq!(calls.get(), 3);
            assert_eq!(metrics.requests("list_objects_v2", outcome), 3);
        }
    }

    #[tokio::test]
    async fn a_failed_precondition_or_conditional_conflict_is_returned_at_once() {
        for (status, code) in [
            (412, "PreconditionFailed"),
            (409, "ConditionalRequestConflict"),
        ] {
            let s3 = CannedS3::answering(status, code).await;
            let metrics = StorageMetrics::unregistered();
            let req = requester(&s3, 5, &metrics).await;
            let calls = Calls::default();
            let failure = req
                .send("put_object", "b", Some(&calls), || {
                    req.client()
                        .put_object()
                        .bucket("b")
                        .key("k")
                        .if_none_match("*")
                        .body(bytes::Bytes::from_static(b"x").into())
                        .send()
                })
                .await
                .map(drop)
                .unwrap_err();
            assert_eq!(failure.kind, FailureKind::Permanent, "{code}");
            assert_eq!(failure.attempts, 1, "{code}");
            assert_eq!(
                (failure.status, failure.code.as_str()),
                (Some(status), code)
            );
            assert_eq!(s3.hits(), 1, "{code}: sent once, not retried");
            assert_eq!(calls.get(), 1);
            assert_eq!(metrics.requests("put_object", "error"), 1);
        }
    }

    #[tokio::test]
    async fn reading_a_missing_object_fails_at_once_as_not_found() {
        let s3 = CannedS3::answering(404, "NoSuchKey").await;
        let metrics = StorageMetrics::unregistered();
        let req = requester(&s3, 5, &metrics).await;
        match req.read_object("b", "k", Some("v1"), None).await {
            Err(ReadFailure::Request(f)) => {
                assert_eq!((f.kind, f.attempts), (FailureKind::NotFound, 1));
            }
            other => panic!("expected a not-found failure, got {other:?}"),
        }
        assert_eq!(s3.hits(), 1);
        assert_eq!(metrics.requests("get_object", "not_found"), 1);
    }

    #[tokio::test]
    async fn a_limited_bucket_still_sends_through_the_same_loop() {
        let s3 = CannedS3::answering(500, "InternalError").await;
        let metrics = StorageMetrics::unregistered();
        let req = requester(&s3, 2, &metrics)
            .await
            .limited(vec!["b".into()], 1);
        let failure = req
            .send("head_object", "b", None, || {
                req.client().head_object().bucket("b").key("k").send()
            })
            .await
            .map(drop)
            .unwrap_err();
        assert_eq!(
            (failure.kind, failure.attempts),
            (FailureKind::Transient, 2)
        );
        assert_eq!(s3.hits(), 2);
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
}
