//! Server-side copies (step 5 of a move): a [`CopyJob`] says which source version goes
//! where, in which storage class, with which SHA-256 recorded; `copy_single` makes it
//! with one `CopyObject` (up to 5 GiB) and returns the checksum the store reported for
//! the copy, `copy_multipart` with `UploadPartCopy` above the multipart threshold.
//!
//! The destination gets the source's tags and user metadata plus the `evidence-sha256`
//! checksum and the `evidence-uploaded-at` upload time (`MetadataDirective=REPLACE`),
//! or keeps the source's metadata as it is (`COPY`) when the listing showed the source
//! (outside the hot tier) already records both.

use std::collections::HashMap;

use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, CompletedPart, MetadataDirective,
    StorageClass, TaggingDirective,
};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};

use super::{
    S3TierStore,
    checksum::{Head, full_object_sha256},
    client::{Calls, tagging_header, url_encode},
    extended::Capture,
};
use crate::{
    api::clip::{META_SHA256, META_UPLOADED_AT, format_uploaded_at},
    storage::StorageError,
};

/// The smallest part S3 accepts (but the last).
const MIN_PART: u64 = 5 * 1024 * 1024;
/// The most parts one upload may have.
const MAX_PARTS: u64 = 10_000;

/// One copy to make: which source version, where to, in which storage class, and the
/// SHA-256 to record on the destination.
#[derive(Clone, Copy)]
pub(super) struct CopyJob<'a> {
    pub(super) src_bucket: &'a str,
    pub(super) src_key: &'a str,
    pub(super) src: &'a Head,
    pub(super) dst_bucket: &'a str,
    pub(super) dst_key: &'a str,
    pub(super) class: &'a str,
    pub(super) sha: &'a str,
    /// The upload time to record (see `MoveJob::upload_record`).
    pub(super) uploaded_at: DateTime<Utc>,
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

/// User metadata for the destination: the source's, plus the checksum and the upload
/// time (replacing whatever the source said under those names).
fn dst_metadata(job: &CopyJob<'_>) -> HashMap<String, String> {
    let mut m = job.src.metadata.clone();
    m.insert(META_SHA256.to_string(), job.sha.to_string());
    m.insert(
        META_UPLOADED_AT.to_string(),
        format_uploaded_at(job.uploaded_at),
    );
    m
}

impl S3TierStore {
    /// Single-request server-side copy (up to 5 GiB). Returns the written version and
    /// the full-object SHA-256 (hex) of the copy as the store reported it in its answer
    /// (AWS: in the XML body; MinIO: in the `x-amz-checksum-sha256` header), if it did.
    pub(super) async fn copy_single(
        &self,
        job: &CopyJob<'_>,
        calls: &Calls,
    ) -> Result<(Option<String>, Option<String>), StorageError> {
        let source = copy_source(job.src_bucket, job.src_key, job.src.version_id.as_deref());
        let metadata = dst_metadata(job);
        let capture = Capture::headers();
        let out = self
            .send("copy_object", job.dst_bucket, calls, || {
                let req = self
                    .client()
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
    pub(super) async fn copy_multipart(
        &self,
        job: &CopyJob<'_>,
        calls: &Calls,
    ) -> Result<Option<String>, StorageError> {
        let tags = self
            .object_tags(
                job.src_bucket,
                job.src_key,
                job.src.version_id.as_deref(),
                calls,
            )
            .await?
            .ok_or_else(|| StorageError::NotFound {
                bucket: job.src_bucket.to_string(),
                key: job.src_key.to_string(),
            })?;
        let tagging = tagging_header(&tags);
        let metadata = dst_metadata(job);
        let created = self
            .send("create_multipart_upload", job.dst_bucket, calls, || {
                self.client()
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
                        self.client()
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

    /// Copy the parts of an upload (four at a time) and complete it; returns the
    /// written version.
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
                        self.client()
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
                self.client()
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
}
