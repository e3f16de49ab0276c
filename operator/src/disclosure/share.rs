//! Links to the clips of an AccessRequest for a named recipient: S3 presigned `GET`
//! URLs of each clip's exact version, valid for a bounded time, and the `shared` audit
//! record of each (what, to whom, by whom, until when). The records are written before
//! any link is handed out: a link that is not in the audit chain never leaves.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::{Client, presigning::PresigningConfig};
use chrono::{DateTime, Utc};

use super::manifest::ManifestClip;
use crate::{
    audit::{AuditAction, ClipRef, Entry, ObjectInfo, Share},
    storage::Tiers,
};

/// The longest a link may live: the limit of an S3 signature (SigV4), 7 days.
pub const MAX_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// A link to one clip.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedLink {
    /// The clip key.
    pub key: String,
    /// The tier it is read from.
    pub tier: String,
    /// The version the link reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Its SHA-256, as the manifest lists it (the recipient can check the download).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The URL.
    pub url: String,
    /// When it stops working.
    pub expires: DateTime<Utc>,
}

/// What went wrong issuing a link.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// The expiry is zero or beyond what S3 signs.
    #[error(
        "--expires must be more than 0 and at most 7 days (168h), the limit of an S3 signature; got {0:?}"
    )]
    Expiry(Duration),
    /// The SDK refused to presign.
    #[error("presigning {key}: {message}")]
    Presign {
        /// The clip key.
        key: String,
        /// The SDK's message.
        message: String,
    },
}

/// A presigned `GET` of each clip (its tier's bucket and prefix, its version), valid
/// from `start` for `expires_in`. Makes no request.
pub async fn presign(
    client: &Client,
    tiers: &Tiers,
    clips: &[ManifestClip],
    start: SystemTime,
    expires_in: Duration,
) -> Result<Vec<SharedLink>, ShareError> {
    if expires_in.is_zero() || expires_in > MAX_EXPIRY {
        return Err(ShareError::Expiry(expires_in));
    }
    let expires = DateTime::<Utc>::from(start + expires_in);
    let mut out = Vec::with_capacity(clips.len());
    for c in clips {
        let loc = tiers.get(c.tier);
        let config = PresigningConfig::builder()
            .start_time(start)
            .expires_in(expires_in)
            .build()
            .map_err(|e| ShareError::Presign {
                key: c.key.clone(),
                message: e.to_string(),
            })?;
        let req = client
            .get_object()
            .bucket(&loc.bucket)
            .key(loc.object_key(&c.key))
            .set_version_id(c.version_id.clone())
            .presigned(config)
            .await
            .map_err(|e| ShareError::Presign {
                key: c.key.clone(),
                message: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
            })?;
        out.push(SharedLink {
            key: c.key.clone(),
            tier: c.tier.to_string(),
            version_id: c.version_id.clone(),
            sha256: c.sha256.clone(),
            size: c.size,
            url: req.uri().to_string(),
            expires,
        });
    }
    Ok(out)
}

/// The `shared` audit record of one link.
pub fn shared_entry(
    request: &ObjectInfo,
    reference: &str,
    link: &SharedLink,
    recipient: &str,
    issued_by: &str,
) -> Entry {
    let clip = ClipRef {
        key: link.key.clone(),
        version_id: link.version_id.clone(),
        size: link.size,
    };
    let mut e = Entry::policy(
        AuditAction::Shared,
        request.clone(),
        format!(
            "link to {} ({}) given to {recipient:?} for {} {reference}, valid until {}, issued by {issued_by}",
            link.key,
            link.tier,
            request.kind,
            link.expires
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
    );
    e.clip = Some(clip);
    e.from_tier = crate::api::clip::Tier::ALL
        .into_iter()
        .find(|t| t.as_str() == link.tier);
    e.sha256 = Some(link.sha256.clone());
    e.share = Some(Share {
        recipient: recipient.to_string(),
        issued_by: issued_by.to_string(),
        expires: link
            .expires
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    e
}
