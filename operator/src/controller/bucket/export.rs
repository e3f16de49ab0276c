//! Part of step 3 of a bucket's reconcile, after the sweep: the answer of each open
//! AccessRequest that names an export location. When what the request covers may have
//! changed (a new generation, other counts than its last manifest, clips moved, held
//! or released by this sweep, or no manifest yet), its clips are searched for in every
//! tier and the manifest is written to the export location ([`crate::disclosure`]),
//! which is first checked like an EvidenceBucket (an allowed UK region, an allowed
//! endpoint) and region-proved by the store before the first byte; its SHA-256 is
//! recorded in the bucket's audit chain (`manifest_written`). A request whose export
//! location is refused gets `Ready=False` with the reason, and nothing is written.

use std::collections::BTreeMap;

use chrono::Utc;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt, runtime::events::EventType};

use super::validate::ValidatedBucket;
use crate::{
    api::{
        AccessRequest, EvidenceBucket,
        access_request::{ExportLocation, ManifestRef},
        evidence_bucket::CredentialsSecretRef,
        regions::AllowedRegions,
    },
    audit::{AuditAction, AuditSink, Entry, ObjectInfo},
    controller::{
        Context, Error,
        audit::{audit_skips, managers},
        key_of,
        status::READY,
        sweep::SweepOutcome,
    },
    disclosure::{self, Manifest},
    engine::Preserve,
    storage::{
        StaticCredentials, StorageError, TierStore,
        region::{check_endpoint, check_endpoint_host},
        s3::S3TierStore,
    },
};

/// The answer of one request after a sweep.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Its manifest is written.
    Written(ManifestRef),
    /// It could not be: the condition reason (`ExportRefused`, `ExportFailed`) and why.
    NotWritten {
        /// The `Ready` reason.
        reason: &'static str,
        /// The message.
        message: String,
    },
}

/// Why an export location is refused before any request to it (pure): a region the
/// installation does not allow, an AWS endpoint of another region, an endpoint host
/// outside the allow-list.
pub fn export_refusal(
    export: &ExportLocation,
    declared: &str,
    endpoint: Option<&str>,
    allowed: &AllowedRegions,
    endpoints: &[String],
) -> Option<String> {
    let region = export.region.as_deref().unwrap_or(declared);
    if !allowed.contains(region) {
        return Some(format!(
            "export region {region:?} is not an allowed UK region (allowed: {allowed}); nothing is written there"
        ));
    }
    if let Err(e) = check_endpoint(endpoint, allowed.as_slice()) {
        return Some(e.to_string());
    }
    if let Some(ep) = endpoint
        && let Err(e) = check_endpoint_host(ep, endpoints)
    {
        return Some(e);
    }
    None
}

/// The access key in a Secret, as an EvidenceBucket's is read.
pub fn secret_credentials(
    secret: &Secret,
    r: &CredentialsSecretRef,
) -> Result<StaticCredentials, String> {
    let read = |k: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(k))
            .map(|v| String::from_utf8_lossy(&v.0).trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("Secret {} has no key {k:?}", r.name))
    };
    Ok(StaticCredentials {
        access_key_id: read(&r.access_key_id_key)?,
        secret_access_key: read(&r.secret_access_key_key)?,
        session_token: None,
    })
}

/// Whether `r`'s manifest may be out of date after `o`.
fn stale(r: &AccessRequest, o: &SweepOutcome) -> bool {
    let Some(status) = &r.status else {
        return true;
    };
    let Some(m) = &status.manifest else {
        return true;
    };
    let ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == READY && c.status == "True" && c.reason == "ManifestWritten");
    let found = o.found_by.get(&r.name_any()).copied().unwrap_or_default();
    !ready
        || status.observed_generation != r.metadata.generation
        || i64::try_from(m.clips).ok() != Some(found.clips)
        || i64::try_from(m.bytes).ok() != Some(found.bytes)
        || o.moved + o.held + o.released > 0
}

/// Answer the open requests of `eb` that name an export location and may have changed.
/// Requests not in the map keep their last answer.
pub async fn answer_all(
    ctx: &Context,
    eb: &EvidenceBucket,
    valid: &ValidatedBucket<'_>,
    store: &dyn TierStore,
    sink: &dyn AuditSink,
    o: &SweepOutcome,
) -> Result<BTreeMap<String, Answer>, Error> {
    let mut out = BTreeMap::new();
    if o.interrupted || ctx.draining.is_cancelled() {
        return Ok(out);
    }
    let ns = eb.namespace().unwrap_or_default();
    let allowed = AllowedRegions::new(&valid.config.allowed_regions);
    let endpoints = ctx.settings.grants(&ns).endpoints;
    // Each request to answer, with its export store.
    let mut todo: Vec<(&AccessRequest, S3TierStore)> = Vec::new();
    for r in valid.requests.iter().copied() {
        let Some(export) = &r.spec.export else {
            continue;
        };
        if r.spec.closed || r.metadata.deletion_timestamp.is_some() || !stale(r, o) {
            continue;
        }
        let name = r.name_any();
        let endpoint = export
            .endpoint
            .as_deref()
            .or(valid.config.endpoint.as_deref());
        if let Some(why) = export_refusal(
            export,
            &valid.config.declared_region,
            endpoint,
            &allowed,
            &endpoints,
        ) {
            out.insert(name, refused(why));
            continue;
        }
        let credentials = match &export.credentials_secret_ref {
            None => None,
            Some(sr) => {
                let secret = Api::<Secret>::namespaced(ctx.client.clone(), &ns)
                    .get_opt(&sr.name)
                    .await
                    .map_err(Error::read(format!("Secret {ns}/{}", sr.name)))?;
                match secret.as_ref().map(|s| secret_credentials(s, sr)) {
                    Some(Ok(c)) => Some(c),
                    Some(Err(why)) => {
                        out.insert(name, refused(why));
                        continue;
                    }
                    None => {
                        out.insert(name, refused(format!("Secret {ns}/{} not found", sr.name)));
                        continue;
                    }
                }
            }
        };
        let cfg =
            disclosure::export_config(&valid.config, &format!("{ns}/{name}"), export, credentials);
        match S3TierStore::new(
            cfg,
            ctx.settings.store_options.clone(),
            ctx.storage_metrics.clone(),
        )
        .await
        {
            Ok(s) => todo.push((r, s)),
            Err(e) => {
                out.insert(name, not_written(&e));
            }
        }
    }
    if todo.is_empty() {
        return Ok(out);
    }

    // One search of every tier for all of them.
    let preserves: Vec<Preserve> = todo
        .iter()
        .filter_map(|(r, _)| Preserve::from_request(r))
        .collect();
    let skips = audit_skips(eb, &ctx.settings.audit_prefix);
    let mut found = match disclosure::search(store, &preserves, &skips).await {
        Ok(f) => f,
        Err(e) => {
            for (r, _) in &todo {
                out.insert(r.name_any(), not_written(&e));
            }
            return Ok(out);
        }
    };
    let bucket = key_of(eb);
    for (r, export) in todo {
        let name = r.name_any();
        let clips = found.remove(&name).unwrap_or_default();
        let answer = match disclosure::manifest_clips(store, clips).await {
            Err(e) => not_written(&e),
            Ok(clips) => {
                let manifest = Manifest::new(r, &bucket, clips);
                match disclosure::write_manifest(&export, &manifest).await {
                    Err(e) => not_written(&e),
                    Ok(w) => {
                        let previous = r.status.as_ref().and_then(|s| s.manifest.clone());
                        let same = previous.as_ref().filter(|p| p.sha256 == w.sha256);
                        if same.is_none() {
                            sink.record(vec![manifest_entry(r, &manifest, &w)])
                                .await
                                .map_err(|source| Error::Audit {
                                    bucket: bucket.clone(),
                                    source,
                                })?;
                            ctx.event(
                                r,
                                EventType::Normal,
                                "ManifestWritten",
                                "Export",
                                format!(
                                    "{} clip(s), {} bytes: {} (SHA-256 {})",
                                    manifest.clips_found, manifest.bytes, w.location, w.sha256
                                ),
                            )
                            .await;
                        }
                        Answer::Written(ManifestRef {
                            location: w.location,
                            sha256: w.sha256,
                            clips: manifest.clips_found,
                            bytes: manifest.bytes,
                            written_at: same.map_or_else(Utc::now, |p| p.written_at),
                        })
                    }
                }
            }
        };
        if let Answer::NotWritten { reason, message } = &answer {
            ctx.event(r, EventType::Warning, reason, "Export", message.clone())
                .await;
        }
        out.insert(name, answer);
    }
    Ok(out)
}

fn refused(message: String) -> Answer {
    Answer::NotWritten {
        reason: "ExportRefused",
        message,
    }
}

/// A storage error as an answer: a region that is not proved UK, a denial or a missing
/// bucket refuse the location; anything else failed (retried at the next sweep).
fn not_written(e: &StorageError) -> Answer {
    let refusing = matches!(
        e,
        StorageError::RegionNotAllowed { .. }
            | StorageError::RegionUnreported { .. }
            | StorageError::EndpointNotAllowed { .. }
            | StorageError::AccessDenied { .. }
            | StorageError::NotFound { .. }
            | StorageError::Config { .. }
    );
    Answer::NotWritten {
        reason: if refusing {
            "ExportRefused"
        } else {
            "ExportFailed"
        },
        message: format!("{e}; nothing was written to the export location"),
    }
}

/// The `manifest_written` record.
fn manifest_entry(r: &AccessRequest, m: &Manifest, w: &disclosure::WrittenManifest) -> Entry {
    let (all, changed_by) = managers(&r.metadata);
    let mut e = Entry::policy(
        AuditAction::ManifestWritten,
        ObjectInfo {
            kind: "AccessRequest".into(),
            name: m.request.clone(),
            uid: r.metadata.uid.clone(),
            generation: r.metadata.generation,
            managers: all,
            changed_by,
        },
        format!(
            "{:?} {}: manifest of {} clip(s), {} bytes, written to {}",
            r.spec.kind, r.spec.reference, m.clips_found, m.bytes, w.location
        ),
    );
    e.sha256 = Some(w.sha256.clone());
    e
}
