//! The tamper-evident audit trail: every action the operator takes on a clip, and every
//! RetentionPolicy / LegalHold change it sees, as records in a SHA-256 hash chain, stored
//! in batches under an audit prefix of the legal-hold bucket with Object Lock
//! `COMPLIANCE` retention.
//!
//! | module | what |
//! |---|---|
//! | [`record`] | the record format, the chain hash, sealing a batch, batch keys |
//! | [`chain`] | verifying a chain (pure): the first break, with a reason |
//! | [`store`] | [`AuditLog`]: writing batches (conditional create, retention) and reading them |
//! | [`report`] | filtering records and the chain-of-custody report of one clip |
//! | [`integrity`] | the integrity sweep's re-read and compare |
//! | [`metrics`] | [`AuditMetrics`] |
//! | `recording` (feature `testing`) | `RecordingSink`: an [`AuditSink`] in memory that fails on demand |
//!
//! The controller writes a sweep chunk's records **before** it counts the chunk's
//! actions as done; if the write fails the sweep stops. The head of the chain is found
//! in storage, so a restarted operator or a new leader continues the same chain.
//! See `docs/audit.md`.

pub mod chain;
pub mod integrity;
pub mod metrics;
pub mod record;
#[cfg(any(test, feature = "testing"))]
pub mod recording;
pub mod report;
pub mod store;

use async_trait::async_trait;

pub use self::{
    chain::{Break, StoredObject, Verification, verify},
    metrics::AuditMetrics,
    record::{Actor, AuditAction, ClipRef, Entry, ObjectInfo, Record, Share, Written},
    store::{AuditLog, AuditTarget, Head, Receipt},
};
use crate::storage::StorageError;

/// Errors of the audit layer.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// An S3 request failed.
    #[error("audit {op} on bucket {bucket}{}: {message}{}", key.as_deref().map(|k| format!(" key {k}")).unwrap_or_default(), code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Request {
        /// The S3 operation.
        op: &'static str,
        /// The bucket.
        bucket: String,
        /// The key, when there is one.
        key: Option<String>,
        /// The HTTP status, when a response came back.
        status: Option<u16>,
        /// The S3 error code (`HTTP <status>` or `unknown` when the store sent none;
        /// `None` when the body of an answer broke off).
        code: Option<String>,
        /// The message.
        message: String,
    },
    /// The stored chain's head cannot be continued.
    #[error("audit chain head {key} is broken: {message}; run `evidence-operator audit verify`")]
    Broken {
        /// The object.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Other writers kept winning the race for the next batch.
    #[error("audit bucket {bucket}: lost the race for the next batch {attempts} times")]
    Contended {
        /// The bucket.
        bucket: String,
        /// Attempts made.
        attempts: u32,
    },
    /// A record could not be encoded.
    #[error("encoding an audit record: {0}")]
    Encode(#[from] serde_json::Error),
    /// The audit configuration is unusable.
    #[error("audit configuration: {0}")]
    Config(String),
    /// The storage layer refused the configuration (e.g. a non-UK endpoint).
    #[error("audit storage: {0}")]
    Storage(#[from] StorageError),
}

impl AuditError {
    /// Whether the store denied the request (403 or `AccessDenied`): the credentials, or
    /// the bucket's policy, do not allow it.
    pub fn is_denied(&self) -> bool {
        match self {
            AuditError::Request { status, code, .. } => {
                *status == Some(403) || code.as_deref() == Some("AccessDenied")
            }
            _ => false,
        }
    }

    /// Whether this is a lost conditional-create race (412, or 409 while another
    /// conditional write is in flight).
    pub fn is_conflict(&self) -> bool {
        match self {
            AuditError::Request { status, code, .. } => {
                matches!(status, Some(412) | Some(409))
                    || matches!(
                        code.as_deref(),
                        Some("PreconditionFailed") | Some("ConditionalRequestConflict")
                    )
            }
            _ => false,
        }
    }

    /// A bounded category for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            AuditError::Request { .. } => "audit_request",
            AuditError::Broken { .. } => "audit_broken",
            AuditError::Contended { .. } => "audit_contended",
            AuditError::Encode(_) => "audit_encode",
            AuditError::Config(_) => "audit_config",
            AuditError::Storage(_) => "audit_storage",
        }
    }
}

/// Where a sweep sends its records: one evidence bucket's chain, with the actor.
#[async_trait]
pub trait AuditSink: Send + Sync {
    /// Store the entries (one batch); returns once they are stored.
    async fn record(&self, entries: Vec<Entry>) -> Result<Option<Receipt>, AuditError>;
}

/// An [`AuditLog`] bound to one EvidenceBucket and the acting replica.
#[derive(Debug)]
pub struct BucketAudit<'a> {
    /// The chain.
    pub log: &'a AuditLog,
    /// Who acts.
    pub actor: Actor,
    /// The EvidenceBucket (`namespace/name`).
    pub bucket: String,
}

#[async_trait]
impl AuditSink for BucketAudit<'_> {
    async fn record(&self, entries: Vec<Entry>) -> Result<Option<Receipt>, AuditError> {
        self.log.append(&self.actor, &self.bucket, &entries).await
    }
}
