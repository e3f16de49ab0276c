//! The storage layer's one error enum. Every S3 failure is mapped here with its context
//! (operation, bucket, key), and each variant says whether retrying can help and which
//! bounded category it belongs to (for metric labels and Kubernetes events).

use std::fmt;

/// A step of a move, named for crash-safety tests and for [`StorageError::Interrupted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MoveStep {
    /// The destination object was written (copy or multipart copy completed).
    Copied,
    /// The destination's full-object SHA-256 was checked against the source's.
    Verified,
    /// The destination version's legal hold was set ON (moves into the legal-hold tier).
    Held,
    /// The source version was deleted.
    SourceDeleted,
}

impl MoveStep {
    /// A stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            MoveStep::Copied => "copied",
            MoveStep::Verified => "verified",
            MoveStep::Held => "held",
            MoveStep::SourceDeleted => "source-deleted",
        }
    }
}

impl fmt::Display for MoveStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in the storage layer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// A bucket's actual location (GetBucketLocation) is not an allowed UK region.
    /// Nothing was written.
    #[error(
        "bucket {bucket} is in region {found:?}, which is not an allowed UK region (allowed: {allowed:?}); nothing was written"
    )]
    RegionNotAllowed {
        /// The bucket that failed the check.
        bucket: String,
        /// The region the store reported for it.
        found: String,
        /// The allowed regions in force.
        allowed: Vec<String>,
    },
    /// A bucket's store reports no region (an empty `GetBucketLocation` answer from an
    /// endpoint that is not AWS's; SeaweedFS answers so), and the installation declares
    /// none for its endpoint (`--endpoint-region`). Nothing was written.
    #[error(
        "bucket {bucket} at endpoint {endpoint} reports no region (GetBucketLocation: empty LocationConstraint), so it cannot be proven to be in the UK; nothing was written. An installation may declare an on-premises endpoint's region with --endpoint-region {authority}={suggested} (chart value endpointRegions)"
    )]
    RegionUnreported {
        /// The bucket that reported no region.
        bucket: String,
        /// The endpoint it was asked at.
        endpoint: String,
        /// The endpoint's host and port, as a declaration names them.
        authority: String,
        /// The region the declaration would name, for the message: the bucket's
        /// declared one.
        suggested: String,
    },
    /// The configured endpoint is an AWS S3 endpoint of a region that is not allowed.
    #[error(
        "endpoint {endpoint} points at AWS region {region:?}, which is not an allowed UK region (allowed: {allowed:?}); nothing was written"
    )]
    EndpointNotAllowed {
        /// The configured endpoint.
        endpoint: String,
        /// The region named by its host.
        region: String,
        /// The allowed regions in force.
        allowed: Vec<String>,
    },
    /// The legal-hold tier's bucket has no Object Lock: it cannot hold anything.
    #[error(
        "the legal-hold tier bucket {bucket} has no Object Lock enabled; refusing to use it (nothing moved)"
    )]
    ObjectLockMissing {
        /// The bucket without Object Lock.
        bucket: String,
    },
    /// The hot and cool tiers are the same objects (one bucket and prefix, told apart by
    /// storage class only) in a bucket without versioning Enabled: a storage-class
    /// change copies a clip onto its own key, which replaces the only copy before it is
    /// verified. Refused until versioning is enabled (then the prior version is kept
    /// until the copy is verified, and deleted by version).
    #[error(
        "the hot and cool tiers are the same keys in bucket {bucket} (told apart by storage class only), and its versioning is {status}: a move would replace each clip's only copy before verifying it; enable versioning on {bucket} (or give the tiers different buckets or prefixes); nothing is moved until then"
    )]
    SameKeyUnversioned {
        /// The bucket.
        bucket: String,
        /// Its versioning status: `Suspended`, or `never enabled`.
        status: String,
    },
    /// The storage configuration is unusable.
    #[error("invalid storage configuration for {name}: {reason}")]
    Config {
        /// The `BucketConfig::name`.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The object (or version) does not exist.
    #[error("object {bucket}/{key} not found")]
    NotFound {
        /// The bucket.
        bucket: String,
        /// The full object key.
        key: String,
    },
    /// A copy's (or a source's) SHA-256 does not match the recorded one. The source was kept.
    #[error(
        "checksum mismatch on {bucket}/{key}: expected sha256 {expected}, found {found}; the source was kept"
    )]
    ChecksumMismatch {
        /// The bucket of the object whose checksum did not match.
        bucket: String,
        /// Its full key.
        key: String,
        /// The SHA-256 (hex) recorded for the source.
        expected: String,
        /// What was found (hex, or a description such as `none`).
        found: String,
    },
    /// The clip's version is under legal hold: it can be neither moved out nor deleted.
    #[error("{bucket}/{key} (version {version}) is under legal hold; release it first")]
    Held {
        /// The bucket.
        bucket: String,
        /// The full key.
        key: String,
        /// The held version.
        version: String,
    },
    /// The store kept throttling (503 SlowDown and the like) through every retry.
    #[error("{op} on bucket {bucket} throttled after {attempts} attempts: {message}")]
    Throttled {
        /// The S3 operation.
        op: &'static str,
        /// The bucket.
        bucket: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        message: String,
    },
    /// A transient failure (timeout, connection, 5xx) persisted through every retry.
    #[error("{op} on bucket {bucket} failed transiently after {attempts} attempts: {message}")]
    Transient {
        /// The S3 operation.
        op: &'static str,
        /// The bucket.
        bucket: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        message: String,
    },
    /// The store refused the request for lack of permission (or WORM protection).
    #[error("{op} on bucket {bucket} was denied: {message}")]
    AccessDenied {
        /// The S3 operation.
        op: &'static str,
        /// The bucket.
        bucket: String,
        /// The store's message.
        message: String,
    },
    /// Any other error answer from the store; retrying will not help.
    #[error("{op} on bucket {bucket} failed ({code}): {message}")]
    Service {
        /// The S3 operation.
        op: &'static str,
        /// The bucket.
        bucket: String,
        /// The S3 error code (or HTTP status).
        code: String,
        /// The store's message.
        message: String,
    },
    /// Reading an object's body failed part way.
    #[error("reading {bucket}/{key} failed: {message}")]
    Read {
        /// The bucket.
        bucket: String,
        /// The full key.
        key: String,
        /// What failed.
        message: String,
    },
    /// The caller asked for something that makes no sense (e.g. a move to the same tier).
    #[error("invalid storage request: {0}")]
    InvalidInput(String),
    /// A fault-injection hook stopped a move after a step (tests only). Re-running the
    /// move converges.
    #[error("move of {key} interrupted after step {step}")]
    Interrupted {
        /// The clip key.
        key: String,
        /// The last step completed.
        step: MoveStep,
    },
}

impl StorageError {
    /// Whether running the same operation again later can succeed without anyone
    /// changing the configuration.
    pub fn retryable(&self) -> bool {
        match self {
            StorageError::Throttled { .. }
            | StorageError::Transient { .. }
            | StorageError::Read { .. }
            | StorageError::Interrupted { .. } => true,
            // A mismatch may be a copy damaged in flight: the next run recopies.
            StorageError::ChecksumMismatch { .. } => true,
            StorageError::RegionNotAllowed { .. }
            | StorageError::RegionUnreported { .. }
            | StorageError::EndpointNotAllowed { .. }
            | StorageError::ObjectLockMissing { .. }
            | StorageError::SameKeyUnversioned { .. }
            | StorageError::Config { .. }
            | StorageError::NotFound { .. }
            | StorageError::Held { .. }
            | StorageError::AccessDenied { .. }
            | StorageError::Service { .. }
            | StorageError::InvalidInput(_) => false,
        }
    }

    /// A bounded, stable category name for metric labels and events.
    pub fn category(&self) -> &'static str {
        match self {
            StorageError::RegionNotAllowed { .. } => "region_not_allowed",
            StorageError::RegionUnreported { .. } => "region_unreported",
            StorageError::EndpointNotAllowed { .. } => "endpoint_not_allowed",
            StorageError::ObjectLockMissing { .. } => "object_lock_missing",
            StorageError::SameKeyUnversioned { .. } => "same_key_unversioned",
            StorageError::Config { .. } => "config",
            StorageError::NotFound { .. } => "not_found",
            StorageError::ChecksumMismatch { .. } => "checksum_mismatch",
            StorageError::Held { .. } => "held",
            StorageError::Throttled { .. } => "throttled",
            StorageError::Transient { .. } => "transient",
            StorageError::AccessDenied { .. } => "access_denied",
            StorageError::Service { .. } => "service",
            StorageError::Read { .. } => "read",
            StorageError::InvalidInput(_) => "invalid_input",
            StorageError::Interrupted { .. } => "interrupted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_error_names_bucket_found_and_allowed() {
        let e = StorageError::RegionNotAllowed {
            bucket: "clips-hot".into(),
            found: "us-east-1".into(),
            allowed: vec!["eu-west-2".into()],
        };
        let msg = e.to_string();
        assert!(
            msg.contains("clips-hot") && msg.contains("us-east-1") && msg.contains("eu-west-2")
        );
        assert!(!e.retryable());
        assert_eq!(e.category(), "region_not_allowed");
    }

    #[test]
    fn throttling_is_retryable_and_denial_is_not() {
        let t = StorageError::Throttled {
            op: "copy_object",
            bucket: "b".into(),
            attempts: 5,
            message: "SlowDown".into(),
        };
        assert!(t.retryable());
        let d = StorageError::AccessDenied {
            op: "delete_object",
            bucket: "b".into(),
            message: "WORM".into(),
        };
        assert!(!d.retryable());
        assert_eq!(d.category(), "access_denied");
    }
}
