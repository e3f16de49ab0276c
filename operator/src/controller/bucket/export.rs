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

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt, runtime::events::EventType};

use super::validate::ValidatedBucket;
use crate::{
    api::{
        AccessRequest, EvidenceBucket,
        access_request::{EXPORT_FINALIZER, ExportLocation, ManifestRef},
        clip::Clip,
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
    /// Its manifest is written (and its copies made, when it asks for them).
    Written {
        /// The manifest.
        manifest: ManifestRef,
        /// Export copies, when the request asks for them.
        copies: Option<u64>,
    },
    /// It could not be: the condition reason (`ExportRefused`, `ExportFailed`) and why.
    NotWritten {
        /// The `Ready` reason.
        reason: &'static str,
        /// The message.
        message: String,
    },
    /// It is closed: since when (`keepFor` counts from it), and when its export copies
    /// were deleted.
    Closed {
        /// When the operator first saw it closed.
        closed_at: DateTime<Utc>,
        /// When its copies were deleted.
        copies_deleted_at: Option<DateTime<Utc>>,
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

/// The export store of a request: its location checked (an allowed UK region and
/// endpoint, its credentials found), or the answer that says why not.
async fn export_store(
    ctx: &Context,
    valid: &ValidatedBucket<'_>,
    r: &AccessRequest,
    export: &ExportLocation,
) -> Result<Result<S3TierStore, Answer>, Error> {
    let ns = r.namespace().unwrap_or_default();
    let allowed = AllowedRegions::new(&valid.config.allowed_regions);
    let endpoints = ctx.settings.grants(&ns).endpoints;
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
        return Ok(Err(refused(why)));
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
                Some(Err(why)) => return Ok(Err(refused(why))),
                None => return Ok(Err(refused(format!("Secret {ns}/{} not found", sr.name)))),
            }
        }
    };
    let cfg = disclosure::export_config(
        &valid.config,
        &format!("{ns}/{}", r.name_any()),
        export,
        credentials,
    );
    Ok(S3TierStore::new(
        cfg,
        ctx.settings.store_options.clone(),
        ctx.storage_metrics.clone(),
    )
    .await
    .map_err(|e| not_written(&e)))
}

/// Answer the requests of `eb` that name an export location: the open ones that may
/// have changed get their manifest (and copies); the closed (or deleted) ones with
/// copies get them deleted `keepFor` after closing. Requests not in the map keep their
/// last answer.
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
    let bucket = key_of(eb);
    let audit = |source| Error::Audit {
        bucket: bucket.clone(),
        source,
    };
    // Each open request to answer, with its export store.
    let mut todo: Vec<(&AccessRequest, &ExportLocation, S3TierStore)> = Vec::new();
    for r in valid.requests.iter().copied() {
        let Some(export) = &r.spec.export else {
            continue;
        };
        let name = r.name_any();
        if r.spec.closed || r.metadata.deletion_timestamp.is_some() {
            let closed = close(ctx, valid, r, export, sink).await?;
            out.insert(name, closed);
            continue;
        }
        if !stale(r, o) {
            continue;
        }
        match export_store(ctx, valid, r, export).await? {
            Ok(s) => todo.push((r, export, s)),
            Err(answer) => {
                out.insert(name, answer);
            }
        }
    }
    if todo.is_empty() {
        return Ok(out);
    }

    // One search of every tier for all of them.
    let preserves: Vec<Preserve> = todo
        .iter()
        .filter_map(|(r, _, _)| Preserve::from_request(r))
        .collect();
    let skips = audit_skips(eb, &ctx.settings.audit_prefix);
    let mut found = match disclosure::search(store, &preserves, &skips).await {
        Ok(f) => f,
        Err(e) => {
            for (r, _, _) in &todo {
                out.insert(r.name_any(), not_written(&e));
            }
            return Ok(out);
        }
    };
    for (r, export, export_store) in todo {
        let name = r.name_any();
        let clips = found.remove(&name).unwrap_or_default();
        let mut entries = match disclosure::manifest_clips(store, clips).await {
            Ok(entries) => entries,
            Err(e) => {
                out.insert(name, not_written(&e));
                continue;
            }
        };
        let mut copies = None;
        if export.copy {
            add_finalizer(ctx, r).await?;
            match copy_all(r, store, &export_store, &mut entries, sink).await {
                Ok(n) => copies = Some(n),
                Err(answer) => {
                    warn(ctx, r, &answer).await;
                    out.insert(name, answer);
                    continue;
                }
            }
        }
        let manifest = Manifest::new(r, &bucket, entries.into_iter().map(|(_, e)| e).collect());
        let answer = match disclosure::write_manifest(&export_store, &manifest).await {
            Err(e) => not_written(&e),
            Ok(w) => {
                let previous = r.status.as_ref().and_then(|s| s.manifest.clone());
                let same = previous.as_ref().filter(|p| p.sha256 == w.sha256);
                if same.is_none() {
                    sink.record(vec![manifest_entry(r, &manifest, &w)])
                        .await
                        .map_err(audit)?;
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
                Answer::Written {
                    manifest: ManifestRef {
                        location: w.location,
                        sha256: w.sha256,
                        clips: manifest.clips_found,
                        bytes: manifest.bytes,
                        written_at: same.map_or_else(Utc::now, |p| p.written_at),
                    },
                    copies,
                }
            }
        };
        warn(ctx, r, &answer).await;
        out.insert(name, answer);
    }
    Ok(out)
}

/// A warning event for an answer that is not written.
async fn warn(ctx: &Context, r: &AccessRequest, answer: &Answer) {
    if let Answer::NotWritten { reason, message } = answer {
        ctx.event(r, EventType::Warning, reason, "Export", message.clone())
            .await;
    }
}

/// Copy every found clip into the export location (those not there yet), each copy
/// recorded (`exported`); the manifest entries get their copy's place. `Err`: the
/// answer saying which copy failed (the manifest is then not written: the next sweep
/// tries again).
async fn copy_all(
    r: &AccessRequest,
    store: &dyn TierStore,
    export: &S3TierStore,
    entries: &mut [(Clip, disclosure::ManifestClip)],
    sink: &dyn AuditSink,
) -> Result<u64, Answer> {
    let object = request_object(r);
    let mut records = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    let mut copied = 0u64;
    let mut seen = std::collections::HashSet::new();
    for (clip, entry) in entries.iter_mut() {
        if !seen.insert(clip.key.clone()) {
            continue; // the same key in two tiers: one copy
        }
        match disclosure::copy_clip(store, export, clip, entry).await {
            Ok(c) => {
                copied += 1;
                if c.created {
                    let mut e = Entry::policy(
                        AuditAction::Exported,
                        object.clone(),
                        format!(
                            "{:?} {}: copied from {} to {}, SHA-256 verified by the store",
                            r.spec.kind, r.spec.reference, clip.tier, c.location
                        ),
                    );
                    e.clip = Some(crate::audit::ClipRef {
                        key: clip.key.clone(),
                        version_id: clip.version_id.clone(),
                        size: clip.size,
                    });
                    e.from_tier = Some(clip.tier);
                    e.sha256 = Some(entry.sha256.clone());
                    records.push(e);
                }
                entry.export_copy = Some(c.location);
            }
            Err(e) => failed.push(format!("{}: {e}", clip.key)),
        }
    }
    if !records.is_empty() {
        sink.record(records).await.map_err(|e| Answer::NotWritten {
            reason: "ExportFailed",
            message: format!("recording the export copies: {e}; retried at the next sweep"),
        })?;
    }
    match failed.first() {
        None => Ok(copied),
        Some(first) => Err(Answer::NotWritten {
            reason: "ExportFailed",
            message: format!(
                "{} of {} export copies failed (first: {first}); the manifest is written once every copy is made, retried at the next sweep",
                failed.len(),
                failed.len() as u64 + copied
            ),
        }),
    }
}

/// A closed (or deleted) request: since when, and its copies deleted once `keepFor`
/// has passed since then (each recorded), then its finalizer removed.
async fn close(
    ctx: &Context,
    valid: &ValidatedBucket<'_>,
    r: &AccessRequest,
    export: &ExportLocation,
    sink: &dyn AuditSink,
) -> Result<Answer, Error> {
    let status = r.status.clone().unwrap_or_default();
    let now = ctx.settings.now();
    let closed_at = r
        .metadata
        .deletion_timestamp
        .as_ref()
        .and_then(|t| DateTime::<Utc>::from_timestamp(t.0.as_second(), 0))
        .or(status.closed_at)
        .unwrap_or(now);
    let has_finalizer = r.finalizers().iter().any(|f| f == EXPORT_FINALIZER);
    let mut deleted_at = status.copies_deleted_at;
    let pending = deleted_at.is_none() && (export.copy || has_finalizer);
    let due = export.keep_for.after(closed_at).is_some_and(|t| t <= now);
    if pending && due {
        let export_store = match export_store(ctx, valid, r, export).await? {
            Ok(s) => s,
            Err(answer) => {
                warn(ctx, r, &answer).await;
                return Ok(Answer::Closed {
                    closed_at,
                    copies_deleted_at: None,
                });
            }
        };
        match disclosure::delete_copies(&export_store).await {
            Ok(deleted) => {
                let object = request_object(r);
                let records: Vec<Entry> = deleted
                    .iter()
                    .map(|(key, size)| {
                        let mut e = Entry::policy(
                            AuditAction::ExportDeleted,
                            object.clone(),
                            format!(
                                "{:?} {}: export copy deleted, {} after the request was closed ({})",
                                r.spec.kind,
                                r.spec.reference,
                                export.keep_for,
                                closed_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                            ),
                        );
                        e.clip = Some(crate::audit::ClipRef {
                            key: key.strip_prefix(disclosure::COPIES).unwrap_or(key).to_string(),
                            version_id: None,
                            size: *size,
                        });
                        e
                    })
                    .collect();
                if !records.is_empty() {
                    sink.record(records).await.map_err(|source| Error::Audit {
                        bucket: valid.config.name.clone(),
                        source,
                    })?;
                }
                deleted_at = Some(now);
            }
            Err(e) => {
                warn(ctx, r, &not_written(&e)).await;
            }
        }
    }
    if has_finalizer && (deleted_at.is_some() || !export.copy && status.copies.is_none()) {
        remove_finalizer(ctx, r).await?;
    }
    Ok(Answer::Closed {
        closed_at,
        copies_deleted_at: deleted_at,
    })
}

/// The AccessRequest as audit records name it.
fn request_object(r: &AccessRequest) -> ObjectInfo {
    let (all, changed_by) = managers(&r.metadata);
    ObjectInfo {
        kind: "AccessRequest".into(),
        name: format!("{}/{}", r.namespace().unwrap_or_default(), r.name_any()),
        uid: r.metadata.uid.clone(),
        generation: r.metadata.generation,
        managers: all,
        changed_by,
    }
}

/// Put [`EXPORT_FINALIZER`] on `r` (before its first copy is made).
async fn add_finalizer(ctx: &Context, r: &AccessRequest) -> Result<(), Error> {
    if r.finalizers().iter().any(|f| f == EXPORT_FINALIZER) {
        return Ok(());
    }
    let mut finalizers = r.finalizers().to_vec();
    finalizers.push(EXPORT_FINALIZER.to_string());
    patch_finalizers(ctx, r, finalizers).await
}

/// Take [`EXPORT_FINALIZER`] off `r`.
async fn remove_finalizer(ctx: &Context, r: &AccessRequest) -> Result<(), Error> {
    let finalizers: Vec<String> = r
        .finalizers()
        .iter()
        .filter(|f| *f != EXPORT_FINALIZER)
        .cloned()
        .collect();
    patch_finalizers(ctx, r, finalizers).await
}

/// Set `r`'s finalizers, only if it has not changed since it was read (its
/// resourceVersion): a lost race is retried at the next reconcile.
async fn patch_finalizers(
    ctx: &Context,
    r: &AccessRequest,
    finalizers: Vec<String>,
) -> Result<(), Error> {
    let ns = r.namespace().unwrap_or_default();
    let name = r.name_any();
    let patch = serde_json::json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": r.resource_version(),
        }
    });
    Api::<AccessRequest>::namespaced(ctx.client.clone(), &ns)
        .patch(
            &name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .map_err(|e| Error::Finalizer {
            hold: format!("AccessRequest {ns}/{name}"),
            message: e.to_string(),
        })?;
    Ok(())
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
    let mut e = Entry::policy(
        AuditAction::ManifestWritten,
        request_object(r),
        format!(
            "{:?} {}: manifest of {} clip(s), {} bytes, written to {}",
            r.spec.kind, r.spec.reference, m.clips_found, m.bytes, w.location
        ),
    );
    e.sha256 = Some(w.sha256.clone());
    e
}
