//! What the SDK leaves out of two S3 responses, read from the raw HTTP response.
//!
//! - **MinIO's listing extension.** `ListObjectsV2` and `ListObjectVersions` with the
//!   query parameter `metadata=true` make MinIO return, inside each listed object, its
//!   user metadata (`<UserMetadata>`: content headers, `X-Amz-Meta-*`, the Object Lock
//!   legal hold) and its tags (`<UserTags>`, in URL query form). With them a listing
//!   needs no `GetObjectTagging` or `HeadObject` per clip: the request count of an
//!   expiry sweep falls from about one per clip to one per 1,000. The SDK does not know
//!   the elements, so [`Capture`] keeps the raw body and [`parse_listing`] reads them.
//!   A server that does not know the parameter ignores it: its entries carry no
//!   `<UserMetadata>`, and the store falls back, **entry by entry**, to reading tags
//!   and holds per object. Missing extras can never be mistaken for "no tags".
//! - **The checksum of a copy.** AWS returns a `CopyObject`'s SHA-256 in the XML body
//!   (parsed by the SDK); MinIO returns it in the `x-amz-checksum-sha256` and
//!   `x-amz-checksum-type` response headers, which the SDK drops. [`Capture`] keeps them,
//!   so a copy can be verified from its own response, without reading it back.
//! - **A `GetBucketLocation` answer under another root.** The SDK reads only a root
//!   `<LocationConstraint>`; SeaweedFS answers
//!   `<CreateBucketConfiguration><LocationConstraint></LocationConstraint></CreateBucketConfiguration>`,
//!   which the SDK fails to decode (an unhandled error on an HTTP 200). [`Capture`]
//!   keeps the body and [`parse_location`] takes the `LocationConstraint` from any root.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use aws_sdk_s3::{
    config::{
        ConfigBag, Intercept, RuntimeComponents, http::HttpRequest,
        interceptors::AfterDeserializationInterceptorContextRef,
    },
    error::BoxError,
};
use aws_smithy_xml::decode::{Document, ScopedDecoder, try_data};
use bytes::Bytes;

use crate::{
    api::clip::{META_SHA256, META_UPLOADED_AT, PlainHeaders, Tag, parse_uploaded_at},
    storage::ClipFacts,
};

/// The query parameter that asks MinIO for per-object metadata and tags in a listing.
pub(super) const LIST_METADATA_PARAM: &str = "metadata=true";

/// Add [`LIST_METADATA_PARAM`] to a list request (before it is signed).
pub(super) fn add_list_metadata_param(req: &mut HttpRequest) {
    let uri = req.uri();
    let sep = if uri.contains('?') { '&' } else { '?' };
    let with = format!("{uri}{sep}{LIST_METADATA_PARAM}");
    if let Err(e) = req.set_uri(with) {
        // The SDK built a valid URI; appending a plain parameter keeps it valid. Should
        // it not, the listing simply carries no extras and the store falls back.
        tracing::warn!(error = %e, "could not add metadata=true to a listing");
    }
}

/// What one response carried beyond what the SDK parses.
#[derive(Debug, Clone, Default)]
pub(super) struct Raw {
    /// The `x-amz-checksum-sha256` response header.
    pub checksum_sha256: Option<String>,
    /// The `x-amz-checksum-type` response header.
    pub checksum_type: Option<String>,
    /// The response body, when the capture asked for it.
    pub body: Option<Bytes>,
}

/// A per-request SDK interceptor that keeps the checksum headers (and optionally the
/// body) of the last successful response. One instance per request; a retried request
/// keeps the last attempt's response.
#[derive(Debug, Clone, Default)]
pub(super) struct Capture {
    slot: Arc<Mutex<Raw>>,
    body: bool,
}

impl Capture {
    /// A capture of headers and the body.
    pub fn with_body() -> Self {
        Capture {
            slot: Arc::default(),
            body: true,
        }
    }

    /// A capture of headers only.
    pub fn headers() -> Self {
        Capture::default()
    }

    /// What was captured (empty if nothing was).
    pub fn take(&self) -> Raw {
        match self.slot.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(_) => Raw::default(),
        }
    }
}

impl Intercept for Capture {
    fn name(&self) -> &'static str {
        "evidence-capture-response"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        let headers = response.headers();
        let raw = Raw {
            checksum_sha256: headers.get("x-amz-checksum-sha256").map(str::to_string),
            checksum_type: headers.get("x-amz-checksum-type").map(str::to_string),
            body: if self.body {
                response.body().bytes().map(Bytes::copy_from_slice)
            } else {
                None
            },
        };
        if let Ok(mut g) = self.slot.lock() {
            *g = raw;
        }
        Ok(())
    }
}

/// The `LocationConstraint` of a `GetBucketLocation` answer, under any root element (the
/// root itself, as AWS and MinIO answer, or a child of it, as SeaweedFS does); `None`
/// when it is empty. A body without one (an error document, say) gives an error.
pub(super) fn parse_location(body: &[u8]) -> Result<Option<String>, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("answer is not UTF-8: {e}"))?;
    let mut doc = Document::new(text);
    let mut root = doc.root_element().map_err(|e| e.to_string())?;
    let root_name = root.start_el().local().to_string();
    let constraint = if root_name == "LocationConstraint" {
        try_data(&mut root).map_err(|e| e.to_string())?.into_owned()
    } else {
        let mut found = None;
        while let Some(mut field) = root.next_tag() {
            if field.start_el().local() == "LocationConstraint" {
                found = Some(
                    try_data(&mut field)
                        .map_err(|e| e.to_string())?
                        .into_owned(),
                );
                break;
            }
        }
        found.ok_or_else(|| format!("no LocationConstraint in <{root_name}>"))?
    };
    let constraint = constraint.trim();
    Ok((!constraint.is_empty()).then(|| constraint.to_string()))
}

/// Extras by (key, version id as listed; `None` in a `ListObjectsV2` answer).
pub(super) type ExtrasIndex = HashMap<(String, Option<String>), ClipFacts>;

/// Read the per-object extras of a `ListObjectsV2` or `ListObjectVersions` answer.
/// Only objects that carry `<UserMetadata>` are in the result: for any other object the
/// caller must read tags and holds itself. A body that is not a listing gives an error.
pub(super) fn parse_listing(body: &[u8]) -> Result<ExtrasIndex, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("listing is not UTF-8: {e}"))?;
    let mut doc = Document::new(text);
    let mut root = doc.root_element().map_err(|e| e.to_string())?;
    let root_name = root.start_el().local().to_string();
    if root_name != "ListBucketResult" && root_name != "ListVersionsResult" {
        return Err(format!("unexpected listing root <{root_name}>"));
    }
    let mut out = ExtrasIndex::new();
    while let Some(mut entry) = root.next_tag() {
        let local = entry.start_el().local();
        if local != "Contents" && local != "Version" {
            continue;
        }
        if let Some((key, version, extras)) = parse_entry(&mut entry)? {
            out.insert((key, version), extras);
        }
    }
    Ok(out)
}

fn parse_entry(
    entry: &mut ScopedDecoder<'_, '_>,
) -> Result<Option<(String, Option<String>, ClipFacts)>, String> {
    let mut key = None;
    let mut version = None;
    let mut metadata: Option<Vec<(String, String)>> = None;
    let mut tags = Vec::new();
    while let Some(mut field) = entry.next_tag() {
        match field.start_el().local() {
            "Key" => {
                key = Some(
                    try_data(&mut field)
                        .map_err(|e| e.to_string())?
                        .into_owned(),
                )
            }
            "VersionId" => {
                version = Some(
                    try_data(&mut field)
                        .map_err(|e| e.to_string())?
                        .into_owned(),
                )
            }
            "UserTags" => {
                let query = try_data(&mut field).map_err(|e| e.to_string())?;
                tags = form_urlencoded::parse(query.as_bytes())
                    .map(|(k, v)| Tag::new(k, v))
                    .collect();
            }
            "UserMetadata" => {
                let mut pairs = Vec::new();
                while let Some(mut m) = field.next_tag() {
                    let name = m.start_el().local().to_ascii_lowercase();
                    let value = try_data(&mut m).map_err(|e| e.to_string())?.into_owned();
                    pairs.push((name, value));
                }
                metadata = Some(pairs);
            }
            _ => {}
        }
    }
    let (Some(key), Some(metadata)) = (key, metadata) else {
        return Ok(None);
    };
    let sha_name = format!("x-amz-meta-{META_SHA256}");
    let uploaded_name = format!("x-amz-meta-{META_UPLOADED_AT}");
    let mut extras = ClipFacts {
        tags,
        ..Default::default()
    };
    // Plain: nothing in the headers that a copy would have to carry but the content
    // type (what the operator records it rewrites; checksums are the copy's own).
    let mut plain = Some(PlainHeaders::default());
    for (name, value) in metadata {
        let operators = name == sha_name
            || name == uploaded_name
            || name.starts_with("x-amz-object-lock-")
            || name.starts_with("x-amz-checksum-");
        if name == "content-type" {
            if let Some(p) = plain.as_mut() {
                p.content_type = Some(value.clone());
            }
        } else if !operators {
            plain = None;
        }
        if name == sha_name {
            let v = value.to_ascii_lowercase();
            if v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit()) {
                extras.sha256 = Some(v);
            }
        } else if name == uploaded_name {
            extras.uploaded_at = parse_uploaded_at(&value);
        } else if name == "x-amz-object-lock-legal-hold" {
            extras.legal_hold = value.eq_ignore_ascii_case("ON");
        }
    }
    extras.plain_headers = plain;
    Ok(Some((key, version, extras)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::{DateTime, Utc};

    // Shapes as MinIO answers them (captured from the pinned MinIO).
    const V2: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>probe</Name><Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>clip1.mp4</Key><LastModified>2026-11-23T13:22:22.542Z</LastModified><ETag>&#34;b1946ac92492d2347c6235b4d2611184&#34;</ETag><Size>6</Size><StorageClass>STANDARD</StorageClass><UserMetadata><content-type>video/mp4</content-type><X-Amz-Meta-Foo>bar</X-Amz-Meta-Foo><X-Amz-Meta-Evidence-Sha256>5891B5B522D5DF086D0FF0B110FBD9D21BB4FC7163AF34D08286A2E846F6BE03</X-Amz-Meta-Evidence-Sha256><X-Amz-Meta-Evidence-Uploaded-At>2026-02-01T10:00:00.123Z</X-Amz-Meta-Evidence-Uploaded-At></UserMetadata><UserTags>category=evidential&amp;evidence.bwv.io%2Fuploaded-at=2026-01-01&amp;note=two+words</UserTags><Internal><K>1</K><M>0</M></Internal></Contents><Contents><Key>plain.mp4</Key><Size>6</Size></Contents></ListBucketResult>"#;

    const VERSIONS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>probelock</Name><IsTruncated>false</IsTruncated><Version><Key>c2.mp4</Key><Size>6</Size><UserMetadata><content-type>application/octet-stream</content-type><x-amz-object-lock-legal-hold>ON</x-amz-object-lock-legal-hold></UserMetadata><UserTags>category=x</UserTags><IsLatest>true</IsLatest><VersionId>84837513-89d5-4611-a888-a21cde97b30b</VersionId></Version><DeleteMarker><Key>gone.mp4</Key><VersionId>dm</VersionId></DeleteMarker><Version><Key>c3.mp4</Key><UserMetadata><content-type>video/mp4</content-type></UserMetadata><VersionId>null</VersionId></Version></ListVersionsResult>"#;

    #[test]
    fn reads_tags_checksum_and_hold_of_each_entry() {
        let idx = parse_listing(V2.as_bytes()).unwrap();
        assert_eq!(idx.len(), 1, "the entry without UserMetadata is left out");
        let e = &idx[&("clip1.mp4".to_string(), None)];
        assert_eq!(
            e.tags,
            vec![
                Tag::new("category", "evidential"),
                Tag::new("evidence.bwv.io/uploaded-at", "2026-01-01"),
                Tag::new("note", "two words"),
            ]
        );
        assert_eq!(
            e.sha256.as_deref(),
            Some("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
        );
        assert!(!e.legal_hold);
        assert_eq!(
            e.plain_headers, None,
            "X-Amz-Meta-Foo is for a copy to carry"
        );
        assert_eq!(
            e.uploaded_at,
            Some(
                DateTime::parse_from_rfc3339("2026-02-01T10:00:00.123Z")
                    .unwrap()
                    .with_timezone(&Utc)
            )
        );
    }

    #[test]
    fn reads_versions_and_ignores_delete_markers() {
        let idx = parse_listing(VERSIONS.as_bytes()).unwrap();
        assert_eq!(idx.len(), 2);
        let held = &idx[&(
            "c2.mp4".to_string(),
            Some("84837513-89d5-4611-a888-a21cde97b30b".to_string()),
        )];
        assert!(held.legal_hold);
        assert_eq!(held.tags, vec![Tag::new("category", "x")]);
        let untagged = &idx[&("c3.mp4".to_string(), Some("null".to_string()))];
        assert!(untagged.tags.is_empty() && !untagged.legal_hold && untagged.sha256.is_none());
        assert_eq!(untagged.uploaded_at, None);
        // Only a content type and the lock's own headers: plain.
        for e in [held, untagged] {
            assert!(e.plain_headers.is_some(), "{e:?}");
        }
        assert_eq!(
            untagged
                .plain_headers
                .as_ref()
                .and_then(|p| p.content_type.as_deref()),
            Some("video/mp4")
        );
    }

    #[test]
    fn a_plain_s3_listing_has_no_extras() {
        let plain = r#"<ListBucketResult><Contents><Key>a</Key><Size>1</Size></Contents></ListBucketResult>"#;
        assert!(parse_listing(plain.as_bytes()).unwrap().is_empty());
    }

    #[test]
    fn refuses_what_is_not_a_listing() {
        assert!(parse_listing(b"<Error><Code>AccessDenied</Code></Error>").is_err());
        assert!(parse_listing(b"\xff\xfe").is_err());
    }

    #[test]
    fn malformed_checksum_metadata_is_not_a_checksum() {
        let body = r#"<ListBucketResult><Contents><Key>k</Key><UserMetadata><X-Amz-Meta-Evidence-Sha256>nothex</X-Amz-Meta-Evidence-Sha256></UserMetadata></Contents></ListBucketResult>"#;
        let idx = parse_listing(body.as_bytes()).unwrap();
        assert_eq!(idx[&("k".to_string(), None)].sha256, None);
        let body = r#"<ListBucketResult><Contents><Key>k</Key><UserMetadata><X-Amz-Meta-Evidence-Uploaded-At>yesterday</X-Amz-Meta-Evidence-Uploaded-At></UserMetadata></Contents></ListBucketResult>"#;
        let idx = parse_listing(body.as_bytes()).unwrap();
        assert_eq!(idx[&("k".to_string(), None)].uploaded_at, None);
    }

    #[test]
    fn a_location_is_read_under_any_root() {
        // AWS and MinIO
        let aws = r#"<?xml version="1.0" encoding="UTF-8"?>
<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">eu-west-2</LocationConstraint>"#;
        assert_eq!(
            parse_location(aws.as_bytes()).unwrap().as_deref(),
            Some("eu-west-2")
        );
        let aws_us = r#"<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>"#;
        assert_eq!(parse_location(aws_us.as_bytes()).unwrap(), None);
        // SeaweedFS 4.48, whatever the bucket was created with
        let seaweed = r#"<?xml version="1.0" encoding="UTF-8"?>
<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint></LocationConstraint></CreateBucketConfiguration>"#;
        assert_eq!(parse_location(seaweed.as_bytes()).unwrap(), None);
        let filled = r#"<CreateBucketConfiguration><Other>x</Other><LocationConstraint> uk-dc-1 </LocationConstraint></CreateBucketConfiguration>"#;
        assert_eq!(
            parse_location(filled.as_bytes()).unwrap().as_deref(),
            Some("uk-dc-1")
        );
    }

    #[test]
    fn an_answer_without_a_location_is_not_an_empty_one() {
        assert!(parse_location(b"<Error><Code>AccessDenied</Code></Error>").is_err());
        assert!(parse_location(b"").is_err());
        assert!(parse_location(b"\xff").is_err());
    }

    #[test]
    fn the_parameter_is_appended() {
        let mut req = HttpRequest::get("http://h/b?list-type=2&prefix=x").unwrap();
        add_list_metadata_param(&mut req);
        assert_eq!(req.uri(), "http://h/b?list-type=2&prefix=x&metadata=true");
    }
}
