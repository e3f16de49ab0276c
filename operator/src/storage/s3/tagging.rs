//! Writing a clip's tags (`TierStore::set_tags`): one `PutObjectTagging` on the clip's
//! version, after the region proof. The only tag the operator writes is
//! `evidence.bwv.io/retain-until`, before it clears a legal hold whose case closed with a
//! retention of its own.

use aws_sdk_s3::types::{Tag as S3Tag, Tagging};

use super::{S3TierStore, client::Calls};
use crate::{
    api::clip::{Clip, Tag},
    storage::StorageError,
};

impl S3TierStore {
    /// Replace the tags of `clip`'s listed version with `tags`.
    pub(super) async fn put_clip_tags(
        &self,
        clip: &Clip,
        tags: &[Tag],
    ) -> Result<(), StorageError> {
        let calls = Calls::default();
        self.prove(&calls).await?;
        let loc = self.loc(clip.tier);
        let bucket = loc.bucket.as_str();
        let key = loc.object_key(&clip.key);
        let set = tags
            .iter()
            .map(|t| S3Tag::builder().key(&t.key).value(&t.value).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StorageError::InvalidInput(format!("tags of {}: {e}", clip.key)))?;
        let tagging = Tagging::builder()
            .set_tag_set(Some(set))
            .build()
            .map_err(|e| StorageError::InvalidInput(format!("tags of {}: {e}", clip.key)))?;
        self.send("put_object_tagging", bucket, &calls, || {
            self.client()
                .put_object_tagging()
                .bucket(bucket)
                .key(&key)
                .set_version_id(clip.version_id.clone())
                .tagging(tagging.clone())
                .send()
        })
        .await
        .map_err(|f| f.into_error("put_object_tagging", bucket, Some(&key)))?;
        Ok(())
    }
}
