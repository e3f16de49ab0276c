//! The integrity sweep's measurement: re-read one clip version and compare its SHA-256
//! with the one recorded on it (`evidence-sha256` metadata). Reads only: a mismatch is
//! reported (condition, event, metric, audit record) and the clip is never touched.

use sha2::{Digest, Sha256};

use super::{AuditError, AuditLog};
use crate::api::clip::META_SHA256;

/// What re-reading a clip found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integrity {
    /// The content hashes to the recorded SHA-256.
    Match {
        /// The SHA-256 (hex).
        sha256: String,
    },
    /// The content does not hash to the recorded SHA-256.
    Mismatch {
        /// The recorded SHA-256.
        recorded: String,
        /// What the content hashes to.
        actual: String,
    },
    /// No SHA-256 is recorded on the clip (it has not been moved yet): nothing to compare.
    NotRecorded {
        /// What the content hashes to.
        actual: String,
    },
    /// The version is gone (moved or deleted since it was listed).
    Gone,
}

/// Re-read `key` (version `version`) in `bucket` through the audit log's request path
/// (storage's `GetObject`, with its retries) and compare its content's SHA-256 with the
/// recorded one.
pub async fn measure(
    log: &AuditLog,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Result<Integrity, AuditError> {
    let result = log.requester().get_object(bucket, key, version, None).await;
    let out = match result {
        Ok(out) => out,
        Err(e) => {
            let err = super::store::request_error("get_object", bucket, Some(key), e);
            if let AuditError::Request {
                status: Some(404), ..
            } = err
            {
                return Ok(Integrity::Gone);
            }
            return Err(err);
        }
    };
    let recorded = out
        .metadata()
        .and_then(|m| m.get(META_SHA256))
        .map(|s| s.to_ascii_lowercase());
    let mut body = out.body;
    let mut hasher = Sha256::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| AuditError::Request {
            op: "get_object",
            bucket: bucket.to_string(),
            key: Some(key.to_string()),
            status: None,
            code: None,
            message: e.to_string(),
        })?;
        hasher.update(&chunk);
    }
    let actual = hex::encode(hasher.finalize());
    Ok(match recorded {
        None => Integrity::NotRecorded { actual },
        Some(r) if r == actual => Integrity::Match { sha256: actual },
        Some(recorded) => Integrity::Mismatch { recorded, actual },
    })
}
