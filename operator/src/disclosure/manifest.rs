//! The manifest of an AccessRequest (pure): every clip it found, with what a person
//! answering the request, or a court, needs to know of each (key, version, size,
//! SHA-256, recording time, camera, officer, case, location, tier, hold state), as one
//! JSON document whose own SHA-256 goes into the audit chain.
//!
//! The document is deterministic: the same clips give the same bytes (clips in key
//! order, no time of writing inside), so its hash names its content, a manifest is
//! written once under a key that carries the hash, and an unchanged answer is not
//! written again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::{
    AccessRequest,
    access_request::AccessRequestKind,
    clip::{Clip, TAG_CAMERA, TAG_CASE, TAG_LOCATION, TAG_OFFICER, TAG_RECORDED_AT, Tier},
};

/// The format name and version a manifest declares.
pub const MANIFEST_FORMAT: &str = "evidence.bwv.io/manifest/v1";

/// One clip of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestClip {
    /// The clip key (relative to the tier prefixes).
    pub key: String,
    /// The tier it is in: `hot`, `cool` or `legal-hold`.
    #[serde(with = "tier_name")]
    pub tier: Tier,
    /// The object version, where the tier's bucket is versioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// The full-object SHA-256 (hex) of that version.
    pub sha256: String,
    /// The recording time, as tagged (`evidence.bwv.io/recorded-at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
    /// The camera, as tagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<String>,
    /// The officer, as tagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer: Option<String>,
    /// The case, as tagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// The place, as tagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Whether an S3 Object Lock legal hold is on for this version.
    pub legal_hold: bool,
    /// Where its export copy is (`s3://bucket/key`), when the request asks for copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_copy: Option<String>,
}

impl ManifestClip {
    /// A found clip and its SHA-256.
    pub fn new(clip: &Clip, sha256: String) -> Self {
        let tag = |k: &str| clip.tag(k).map(str::to_string);
        ManifestClip {
            key: clip.key.clone(),
            tier: clip.tier,
            version_id: clip.version_id.clone(),
            size: clip.size,
            sha256,
            recorded_at: tag(TAG_RECORDED_AT),
            camera: tag(TAG_CAMERA),
            officer: tag(TAG_OFFICER),
            case: tag(TAG_CASE),
            location: tag(TAG_LOCATION),
            legal_hold: clip.legal_hold,
            export_copy: None,
        }
    }
}

/// A tier by its name in documents (`hot`, `cool`, `legal-hold`).
mod tier_name {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::api::clip::Tier;

    pub fn serialize<S: Serializer>(t: &Tier, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(t.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tier, D::Error> {
        let name = String::deserialize(d)?;
        Tier::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
            .ok_or_else(|| D::Error::custom(format!("unknown tier {name:?}")))
    }
}

/// The manifest document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// The AccessRequest, `namespace/name`.
    pub request: String,
    /// `SubjectAccess` or `Disclosure`.
    pub kind: AccessRequestKind,
    /// The request or case number.
    pub reference: String,
    /// When the request was received.
    pub received_at: DateTime<Utc>,
    /// The EvidenceBucket searched, `namespace/name`.
    pub bucket: String,
    /// The AccessRequest generation whose selector this answers.
    pub generation: i64,
    /// How many clips.
    pub clips_found: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// The clips, in key order (then tier).
    pub clips: Vec<ManifestClip>,
}

impl Manifest {
    /// The manifest of `request` over `clips` (any order).
    pub fn new(request: &AccessRequest, bucket: &str, mut clips: Vec<ManifestClip>) -> Self {
        clips.sort_by(|a, b| (&a.key, a.tier).cmp(&(&b.key, b.tier)));
        let meta = &request.metadata;
        Manifest {
            format: MANIFEST_FORMAT.to_string(),
            request: format!(
                "{}/{}",
                meta.namespace.as_deref().unwrap_or_default(),
                meta.name.as_deref().unwrap_or_default()
            ),
            kind: request.spec.kind,
            reference: request.spec.reference.clone(),
            received_at: request.spec.received_at,
            bucket: bucket.to_string(),
            generation: meta.generation.unwrap_or_default(),
            clips_found: clips.len() as u64,
            bytes: clips.iter().map(|c| c.size).sum(),
            clips,
        }
    }

    /// The document's bytes (pretty JSON, a final newline) and their SHA-256 (hex).
    pub fn to_bytes(&self) -> Result<(Vec<u8>, String), serde_json::Error> {
        let mut body = serde_json::to_vec_pretty(self)?;
        body.push(b'\n');
        let sha = hex::encode(Sha256::digest(&body));
        Ok((body, sha))
    }

    /// The key of the manifest, relative to the request's place in the export location:
    /// it names the content's hash, so a written manifest is never overwritten.
    pub fn key(sha256: &str) -> String {
        format!("manifest-{}.json", &sha256[..sha256.len().min(16)])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::api::clip::Tag;

    fn clip(key: &str, tier: Tier) -> Clip {
        Clip {
            key: key.into(),
            tier,
            version_id: Some("v1".into()),
            size: 10,
            storage_class: None,
            last_modified: Utc::now(),
            tags: vec![
                Tag::new(TAG_OFFICER, "PC 1"),
                Tag::new(TAG_RECORDED_AT, "2026-11-20T18:00:00Z"),
            ],
            sha256: None,
            uploaded_at: None,
            legal_hold: tier == Tier::LegalHold,
            plain_headers: None,
        }
    }

    fn request() -> AccessRequest {
        let mut r: AccessRequest = serde_json::from_value(serde_json::json!({
            "apiVersion": "evidence.bwv.io/v1alpha1", "kind": "AccessRequest",
            "metadata": {"name": "sar", "namespace": "ns", "generation": 2},
            "spec": {"bucketRef": {"name": "b"}, "kind": "SubjectAccess", "reference": "SAR-1",
                     "receivedAt": "2026-12-01T09:00:00Z", "selector": {"officer": "PC 1"}}
        }))
        .unwrap();
        r.metadata.generation = Some(2);
        r
    }

    #[test]
    fn the_same_clips_in_any_order_give_the_same_bytes_and_hash() {
        let a = vec![
            ManifestClip::new(&clip("b.mp4", Tier::Cool), "bb".into()),
            ManifestClip::new(&clip("a.mp4", Tier::LegalHold), "aa".into()),
        ];
        let mut b = a.clone();
        b.reverse();
        let (ma, mb) = (
            Manifest::new(&request(), "ns/b", a),
            Manifest::new(&request(), "ns/b", b),
        );
        assert_eq!(ma.to_bytes().unwrap(), mb.to_bytes().unwrap());
        assert_eq!(ma.clips[0].key, "a.mp4");
        assert_eq!((ma.clips_found, ma.bytes, ma.generation), (2, 20, 2));
        assert!(ma.clips[0].legal_hold && !ma.clips[1].legal_hold);
        assert_eq!(ma.clips[0].officer.as_deref(), Some("PC 1"));
        let (body, sha) = ma.to_bytes().unwrap();
        let back: Manifest = serde_json::from_slice(&body).unwrap();
        assert_eq!(back, ma);
        assert!(
            String::from_utf8(body.clone())
                .unwrap()
                .contains("\"tier\": \"legal-hold\"")
        );
        assert_eq!(Manifest::key(&sha), format!("manifest-{}.json", &sha[..16]));
        // another hash for another content
        let one = Manifest::new(
            &request(),
            "ns/b",
            vec![ManifestClip::new(&clip("a.mp4", Tier::Hot), "aa".into())],
        );
        assert_ne!(one.to_bytes().unwrap().1, sha);
    }
}
