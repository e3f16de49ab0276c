//! Retries: how an S3 failure is classified (throttled, transient, not found,
//! permanent), the jittered exponential backoff between attempts, and the mapping of a
//! final failure to [`StorageError`]. The SDK's own retries are switched off so that
//! every attempt passes through here and is counted: the tier store's and the audit
//! writer's, both sent by the one request path (`s3::Requester`).

use std::time::Duration;

use aws_sdk_s3::{
    config::http::HttpResponse,
    error::{ProvideErrorMetadata, SdkError},
};
use rand::Rng;

use super::{error::StorageError, region::region_from_error_message};

/// How a failed attempt is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// 503 SlowDown, 429, throttling codes: back off and retry.
    Throttled,
    /// Timeouts, connection errors, 500/502/504, unparseable answers: retry.
    Transient,
    /// 404 / NoSuchKey / NoSuchVersion / NoSuchBucket.
    NotFound,
    /// 403 / AccessDenied (including WORM refusals).
    Denied,
    /// Anything else: retrying will not help.
    Permanent,
}

impl FailureKind {
    pub(crate) fn retryable(self) -> bool {
        matches!(self, FailureKind::Throttled | FailureKind::Transient)
    }

    /// The `outcome` metric label.
    pub(crate) fn outcome(self) -> &'static str {
        match self {
            FailureKind::Throttled => "throttled",
            FailureKind::Transient => "transient",
            FailureKind::NotFound => "not_found",
            FailureKind::Denied => "denied",
            FailureKind::Permanent => "error",
        }
    }
}

/// One failed request, classified, with what the store said.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) kind: FailureKind,
    pub(crate) code: String,
    pub(crate) message: String,
    /// The HTTP status of the answer, when one came back.
    pub(crate) status: Option<u16>,
    pub(crate) attempts: u32,
    /// The region the store says the bucket is in, when it said (the
    /// `x-amz-bucket-region` header or a "wrong region; expecting ..." message).
    pub(crate) bucket_region: Option<String>,
}

const THROTTLE_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestLimitExceeded",
    "TooManyRequests",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "BandwidthLimitExceeded",
    "EC2ThrottledException",
    "XMinioServerBusy",
];

const TRANSIENT_CODES: &[&str] = &[
    "InternalError",
    "RequestTimeout",
    "RequestTimeoutException",
    "ServiceUnavailable",
    "IDPCommunicationError",
    "XMinioServerNotInitialized",
    "XMinioStorageFull",
    "OperationAborted",
];

const NOT_FOUND_CODES: &[&str] = &["NoSuchKey", "NoSuchVersion", "NotFound", "NoSuchBucket"];

/// Classify by S3 error code and HTTP status. A failed precondition (412
/// `PreconditionFailed`) and a conflicting conditional write (409
/// `ConditionalRequestConflict`) are [`FailureKind::Permanent`]: never retried, since
/// they mean another writer won a race (the audit writer re-seals after it).
pub(crate) fn classify(code: &str, status: Option<u16>) -> FailureKind {
    if THROTTLE_CODES.contains(&code) || matches!(status, Some(429 | 503)) {
        FailureKind::Throttled
    } else if TRANSIENT_CODES.contains(&code) || matches!(status, Some(500 | 502 | 504)) {
        FailureKind::Transient
    } else if NOT_FOUND_CODES.contains(&code) || status == Some(404) {
        FailureKind::NotFound
    } else if code == "AccessDenied" || status == Some(403) {
        FailureKind::Denied
    } else {
        FailureKind::Permanent
    }
}

impl Failure {
    /// Classify an SDK error.
    pub(crate) fn from_sdk<E>(err: &SdkError<E, HttpResponse>) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let (status, header_region) = match err {
            SdkError::ServiceError(_) | SdkError::ResponseError(_) => raw_status_and_region(err),
            _ => (None, None),
        };
        let code = err.code().unwrap_or_default().to_string();
        let message = err
            .message()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}", aws_sdk_s3::error::DisplayErrorContext(err)));
        let kind = match err {
            SdkError::ConstructionFailure(_) => FailureKind::Permanent,
            SdkError::TimeoutError(_) => FailureKind::Transient,
            SdkError::DispatchFailure(d) if d.is_user() => FailureKind::Permanent,
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => FailureKind::Transient,
            SdkError::ServiceError(_) => classify(&code, status),
            _ => FailureKind::Transient,
        };
        let bucket_region = header_region.or_else(|| region_from_error_message(&message));
        Failure {
            kind,
            code: if code.is_empty() {
                status.map_or_else(|| "unknown".to_string(), |s| format!("HTTP {s}"))
            } else {
                code
            },
            message,
            status,
            attempts: 1,
            bucket_region,
        }
    }

    /// The final error for the caller, with context.
    pub(crate) fn into_error(
        self,
        op: &'static str,
        bucket: &str,
        key: Option<&str>,
    ) -> StorageError {
        let bucket = bucket.to_string();
        match self.kind {
            FailureKind::Throttled => StorageError::Throttled {
                op,
                bucket,
                attempts: self.attempts,
                message: format!("{}: {}", self.code, self.message),
            },
            FailureKind::Transient => StorageError::Transient {
                op,
                bucket,
                attempts: self.attempts,
                message: format!("{}: {}", self.code, self.message),
            },
            FailureKind::NotFound => StorageError::NotFound {
                bucket,
                key: key.unwrap_or_default().to_string(),
            },
            FailureKind::Denied => StorageError::AccessDenied {
                op,
                bucket,
                message: format!("{}: {}", self.code, self.message),
            },
            FailureKind::Permanent => StorageError::Service {
                op,
                bucket,
                code: self.code,
                message: self.message,
            },
        }
    }
}

fn raw_status_and_region<E>(err: &SdkError<E, HttpResponse>) -> (Option<u16>, Option<String>) {
    match err.raw_response() {
        Some(resp) => (
            Some(resp.status().as_u16()),
            resp.headers()
                .get("x-amz-bucket-region")
                .map(str::to_string),
        ),
        None => (None, None),
    }
}

/// The backoff before attempt `attempt + 1` (attempt counts from 1): exponential from
/// `base`, capped at `max`, with jitter in `[d/2, d]` so that many clients throttled
/// together do not retry together.
pub(crate) fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let d = exp.min(max);
    let factor: f64 = rand::rng().random_range(0.5..=1.0);
    d.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_transient_codes_are_retryable() {
        assert_eq!(classify("SlowDown", Some(503)), FailureKind::Throttled);
        assert_eq!(classify("", Some(503)), FailureKind::Throttled);
        assert_eq!(classify("", Some(429)), FailureKind::Throttled);
        assert_eq!(classify("InternalError", Some(500)), FailureKind::Transient);
        assert_eq!(classify("", Some(502)), FailureKind::Transient);
        assert!(FailureKind::Throttled.retryable() && FailureKind::Transient.retryable());
    }

    #[test]
    fn not_found_denied_and_others_are_final() {
        assert_eq!(classify("NoSuchKey", Some(404)), FailureKind::NotFound);
        assert_eq!(classify("", Some(404)), FailureKind::NotFound);
        assert_eq!(classify("AccessDenied", Some(403)), FailureKind::Denied);
        assert_eq!(
            classify("InvalidStorageClass", Some(400)),
            FailureKind::Permanent
        );
        for k in [
            FailureKind::NotFound,
            FailureKind::Denied,
            FailureKind::Permanent,
        ] {
            assert!(!k.retryable());
        }
    }

    #[test]
    fn a_lost_conditional_write_is_final_not_retried() {
        assert_eq!(
            classify("PreconditionFailed", Some(412)),
            FailureKind::Permanent
        );
        assert_eq!(classify("", Some(412)), FailureKind::Permanent);
        assert_eq!(
            classify("ConditionalRequestConflict", Some(409)),
            FailureKind::Permanent
        );
        assert!(!FailureKind::Permanent.retryable());
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for attempt in 1..=20 {
            let d = backoff(attempt, base, max);
            let ceiling = base.saturating_mul(1 << (attempt - 1).min(16)).min(max);
            assert!(d <= ceiling && d >= ceiling / 2, "attempt {attempt}: {d:?}");
        }
    }
}
