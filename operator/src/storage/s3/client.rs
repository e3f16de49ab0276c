//! The S3 client side of the store: the SDK configuration ([`sdk_config`], shared with
//! the audit writer), the interceptor that counts the HTTP requests actually sent,
//! [`Calls`], the one request helper (`S3TierStore::send`) with its bounded, jittered
//! retry loop, and the URL encodings the requests need (`x-amz-tagging`,
//! `x-amz-copy-source`).
//!
//! The SDK's own retries are off: every attempt passes through `send`, which holds a
//! permit of the bucket's concurrency limit, counts the attempt in the metrics and in the
//! caller's [`Calls`], and classifies the final failure (`retry::Failure`). The
//! interceptor is the cross-check that nothing else sends requests.

use std::{
    future::Future,
    sync::atomic::{AtomicU32, Ordering},
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
};

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
pub(super) struct Calls(AtomicU32);

impl Calls {
    pub(super) fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn get(&self) -> u32 {
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
/// endpoint and path style; with the caller's retry policy and connect timeout.
pub(crate) async fn sdk_config(
    cfg: &BucketConfig,
    retry: RetryConfig,
    connect_timeout: Duration,
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

/// The store's client: [`sdk_config`] with the SDK's retries off (`send` retries) and
/// the HTTP-request counter.
pub(super) async fn store_client(
    cfg: &BucketConfig,
    opts: &StoreOptions,
    metrics: &StorageMetrics,
) -> Client {
    let builder = sdk_config(
        cfg,
        RetryConfig::disabled(),
        opts.connect_timeout,
        "evidence-operator",
    )
    .await
    .interceptor(CountHttpRequests(metrics.clone()));
    Client::from_conf(builder.build())
}

impl S3TierStore {
    /// One S3 request with the bucket's concurrency limit, bounded jittered retries on
    /// throttling and transient failures, and counting.
    pub(super) async fn send<T, E, F, Fut>(
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
    use super::*;

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
