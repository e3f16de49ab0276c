//! The answer to an AccessRequest (a subject access request or a disclosure): the
//! search for its clips in every tier, the manifest written to its UK export location
//! (region-proved like every tier, its SHA-256 recorded in the audit chain), and links
//! to clips shared with a named recipient, each one recorded.
//!
//! Nothing here writes to an evidence tier: a request only reads them. The controller
//! ([`crate::controller`]) decides when a request is answered again (after a sweep
//! that changed what it covers); the CLI (`evidence-operator share`) issues links.

pub mod manifest;
pub mod share;

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt, stream};

pub use self::manifest::{MANIFEST_FORMAT, Manifest, ManifestClip};
use crate::{
    api::{
        access_request::ExportLocation,
        clip::{Clip, META_SHA256, Tier},
    },
    engine::{CompiledPreserve, Preserve},
    storage::{
        BucketConfig, StaticCredentials, StorageError, TierLocation, Tiers,
        s3::{ClipBody, Created, NewClip, S3TierStore},
    },
};

/// How many clips' SHA-256 are read at once when the listing did not carry them.
const SHA_CONCURRENCY: usize = 16;

/// The clips each request covers, by request name: every tier listed once (through the
/// catalogue where the store has one), each clip tested against every request. Keys
/// under `skip` (the audit chain, the storage claims) are not clips.
pub async fn search(
    store: &dyn crate::storage::TierStore,
    requests: &[Preserve],
    skip: &[(Tier, String)],
) -> Result<BTreeMap<String, Vec<Clip>>, StorageError> {
    let compiled: Vec<CompiledPreserve<'_>> = requests.iter().map(CompiledPreserve::new).collect();
    let mut found: BTreeMap<String, Vec<Clip>> = requests
        .iter()
        .map(|r| (r.name.clone(), Vec::new()))
        .collect();
    for tier in Tier::ALL {
        let mut clips = store.list(tier);
        while let Some(clip) = clips.next().await {
            let clip = clip?;
            if skip
                .iter()
                .any(|(t, p)| *t == tier && clip.key.starts_with(p.as_str()))
            {
                continue;
            }
            for c in &compiled {
                if c.selects(&clip)
                    && let Some(v) = found.get_mut(c.name)
                {
                    v.push(clip.clone());
                }
            }
        }
    }
    Ok(found)
}

/// The manifest entries of found clips (each with its clip): their SHA-256 from the
/// listing, else read from the store (the recorded checksum; computed only where none
/// is recorded).
pub async fn manifest_clips(
    store: &dyn crate::storage::TierStore,
    clips: Vec<Clip>,
) -> Result<Vec<(Clip, ManifestClip)>, StorageError> {
    stream::iter(clips)
        .map(|clip| async move {
            let sha = match &clip.sha256 {
                Some(s) => s.clone(),
                None => store.clip_sha256(&clip).await?,
            };
            let entry = ManifestClip::new(&clip, sha);
            Ok::<_, StorageError>((clip, entry))
        })
        .buffer_unordered(SHA_CONCURRENCY)
        .try_collect()
        .await
}

/// Where export copies go, relative to the request's place in the export location.
pub const COPIES: &str = "clips/";
/// Bytes per part of an export copy sent in parts (and the largest sent in one PUT).
const COPY_PART: u64 = 16 * 1024 * 1024;
/// Parts of one copy in memory and in flight at once.
const COPY_PARALLEL_PARTS: usize = 2;

/// What copying one clip did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// `s3://bucket/key` of the copy.
    pub location: String,
    /// Whether this call wrote it (`false`: a copy with its SHA-256 was there).
    pub created: bool,
}

/// Copy one found clip into the export store, unless a copy with its SHA-256 is
/// already there: read from its tier and sent as it is read, never over an existing
/// object, and verified by the export store against the clip's SHA-256 (as the dock
/// ingest verifies an upload). A copy there with another SHA-256 is a conflict,
/// reported and left alone.
pub async fn copy_clip(
    evidence: &dyn crate::storage::TierStore,
    export: &S3TierStore,
    clip: &Clip,
    entry: &ManifestClip,
) -> Result<Copied, StorageError> {
    let key = format!("{COPIES}{}", clip.key);
    let hot = export.config().tiers.get(Tier::Hot);
    let location = format!("s3://{}/{}", hot.bucket, hot.object_key(&key));
    let conflict = |found: Option<String>| {
        StorageError::InvalidInput(format!(
            "{location} exists with another content (SHA-256 {}); it was not overwritten",
            found.unwrap_or_else(|| "unknown".into())
        ))
    };
    if let Some(there) = export.hot_object(&key).await? {
        return if there.sha256.as_deref() == Some(entry.sha256.as_str()) {
            Ok(Copied {
                location,
                created: false,
            })
        } else {
            Err(conflict(there.sha256))
        };
    }
    let new = NewClip {
        key,
        size: clip.size,
        sha256: entry.sha256.clone(),
        tags: Vec::new(),
        // the SHA-256 recorded on the copy, as on every clip the operator writes (a
        // copy sent in parts has no full-object checksum of its own)
        metadata: [(META_SHA256.to_string(), entry.sha256.clone())].into(),
        content_type: "video/mp4".into(),
        body: ClipBody::stream(
            evidence.read_clip(clip).await?,
            COPY_PART,
            COPY_PARALLEL_PARTS,
        ),
    };
    match export.create_clip(&new, None).await? {
        Created::Written { .. } => Ok(Copied {
            location,
            created: true,
        }),
        Created::Exists(Some(e)) if e.sha256.as_deref() == Some(entry.sha256.as_str()) => {
            Ok(Copied {
                location,
                created: false,
            })
        }
        Created::Exists(e) => Err(conflict(e.and_then(|e| e.sha256))),
    }
}

/// Delete every export copy of a request (the objects under [`COPIES`] in its place),
/// after its `keepFor`: the deleted copies (key relative to the place, size).
pub async fn delete_copies(export: &S3TierStore) -> Result<Vec<(String, u64)>, StorageError> {
    use crate::storage::TierStore;
    let copies: Vec<Clip> = export
        .list(Tier::Hot)
        .try_filter(|c| futures::future::ready(c.key.starts_with(COPIES)))
        .try_collect()
        .await?;
    if copies.is_empty() {
        return Ok(Vec::new());
    }
    let report = export.delete_clips(&copies).await?;
    if let Some(f) = report.failed.first() {
        return Err(StorageError::InvalidInput(format!(
            "deleting export copies: {} of {} failed (first: {} {}: {})",
            report.failed.len(),
            copies.len(),
            f.clip.key,
            f.code,
            f.message
        )));
    }
    Ok(report
        .deleted
        .into_iter()
        .map(|c| (c.key, c.size))
        .collect())
}

/// The export location of a request as a store configuration: its bucket, under
/// `<prefix><namespace>/<name>/`, with the EvidenceBucket's endpoint, region and
/// credentials where the export names none (`credentials`: the export's own Secret's,
/// when it names one). The store writes only its hot tier; its other two tiers are
/// the same bucket under other prefixes, never written, so that the region proof
/// covers exactly the export bucket.
pub fn export_config(
    evidence: &BucketConfig,
    request: &str,
    export: &ExportLocation,
    credentials: Option<StaticCredentials>,
) -> BucketConfig {
    let root = export.prefix.as_deref().unwrap_or_default();
    let prefix = format!("{root}{request}/");
    let place = |p: String, class: Option<&str>| TierLocation {
        bucket: export.bucket.clone(),
        prefix: p,
        storage_class: class.map(str::to_string),
    };
    BucketConfig {
        name: format!("export of {request}"),
        declared_region: export
            .region
            .clone()
            .unwrap_or_else(|| evidence.declared_region.clone()),
        endpoint: export
            .endpoint
            .clone()
            .or_else(|| evidence.endpoint.clone()),
        force_path_style: export
            .force_path_style
            .unwrap_or(if export.endpoint.is_some() {
                true
            } else {
                evidence.force_path_style
            }),
        credentials: if export.credentials_secret_ref.is_some() {
            credentials
        } else {
            evidence.credentials.clone()
        },
        tiers: Tiers {
            hot: place(prefix.clone(), None),
            cool: place(prefix.clone(), Some("STANDARD_IA")),
            // (not nested in the hot tier's prefix, and no namespace starts with a dot)
            legal_hold: place(format!("{root}.unused/{request}/"), None),
        },
        allowed_regions: evidence.allowed_regions.clone(),
    }
}

/// A manifest in its export location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenManifest {
    /// `s3://<bucket>/<key>`.
    pub location: String,
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// Whether this call created it (`false`: it was there already, same hash).
    pub created: bool,
}

/// Write `manifest` into the export store (after the store's region proof), never over
/// an existing object: a manifest already there with the same SHA-256 is the same
/// document; one with another is a conflict, reported, and left alone.
pub async fn write_manifest(
    export: &S3TierStore,
    manifest: &Manifest,
) -> Result<WrittenManifest, StorageError> {
    let (body, sha256) = manifest
        .to_bytes()
        .map_err(|e| StorageError::InvalidInput(format!("the manifest: {e}")))?;
    let key = Manifest::key(&sha256);
    let hot = export.config().tiers.get(Tier::Hot);
    let location = format!("s3://{}/{}", hot.bucket, hot.object_key(&key));
    let new = NewClip {
        key: key.clone(),
        size: body.len() as u64,
        sha256: sha256.clone(),
        tags: Vec::new(),
        metadata: [(META_SHA256.to_string(), sha256.clone())].into(),
        content_type: "application/json".into(),
        body: ClipBody::Memory(body.into()),
    };
    match export.create_clip(&new, None).await? {
        Created::Written { .. } => Ok(WrittenManifest {
            location,
            sha256,
            created: true,
        }),
        Created::Exists(Some(e)) if e.sha256.as_deref() == Some(sha256.as_str()) => {
            Ok(WrittenManifest {
                location,
                sha256,
                created: false,
            })
        }
        Created::Exists(e) => Err(StorageError::InvalidInput(format!(
            "{location} exists with another content (SHA-256 {}); it was not overwritten",
            e.and_then(|e| e.sha256).unwrap_or_else(|| "unknown".into())
        ))),
    }
}
