//! Soft-deleted clips, for a policy with a restore window: in a versioned bucket a soft
//! delete puts a delete marker over the clip's current version, which stays as a
//! noncurrent version. A [`DeletedClip`] is such a clip as the version listing shows it:
//! the markers on top, and the data version beneath them (with its tags and hold, read
//! per clip). Restoring removes the markers (the same version becomes current again);
//! purging deletes the data version, then the markers.

use chrono::{DateTime, Utc};

use crate::api::clip::Clip;

/// A clip whose current version is a delete marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedClip {
    /// The data version beneath the markers, as a clip (its `version_id` set, its tags
    /// and legal hold read), or `None` when there is none (an orphan marker: a purge
    /// that deleted the data but stopped before the marker).
    pub data: Option<Clip>,
    /// The key, relative to the tier prefix.
    pub key: String,
    /// The tier the key is in (hot or cool).
    pub tier: crate::api::clip::Tier,
    /// The delete markers on top of the data version, newest first (their version ids).
    pub markers: Vec<String>,
    /// When the clip was deleted: the newest marker's `LastModified` (the store's clock).
    pub deleted_at: DateTime<Utc>,
}
