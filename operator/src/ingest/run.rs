//! One ingest run: scan, prove, then each clip (metadata → hash → HEAD → conditional
//! upload), a chunk's audit records, and the removal of what was recorded.

use std::{
    collections::{HashMap, HashSet},
    io::Read,
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, OnceCell};

use super::{
    IngestError, IngestHook, IngestOptions, IngestStep, IngestTarget, Progress,
    mp4::{FUTURE_TOLERANCE, creation_time},
    report::{ClipReport, IngestReport, Outcome},
    sidecar::{ClipMeta, key_safe, read_sidecar, resolve, sidecars_of},
};
use crate::{
    api::clip::{META_SHA256, META_UPLOADED_AT, Tier, format_uploaded_at},
    audit::{Actor, AuditAction, AuditLog, ClipRef, Entry, Written, verify},
    storage::{
        S3TierStore, StorageError, StorageMetrics, TierStore,
        s3::{ClipBody, Confirmed, Created, ExistingObject, NewClip},
    },
};

/// The `Content-Type` of an ingested clip.
const CONTENT_TYPE: &str = "video/mp4";

/// The store's clock: a `Date` reading carried forward by the local monotonic clock
/// (the dock's wall clock is never read).
#[derive(Debug, Clone, Copy)]
struct ServerClock {
    date: DateTime<Utc>,
    at: Instant,
}

impl ServerClock {
    fn now(&self) -> DateTime<Utc> {
        self.date + chrono::TimeDelta::from_std(self.at.elapsed()).unwrap_or_default()
    }
}

/// Every `*.mp4` under the dock (any case), hidden files and folders skipped, sorted.
fn scan(dock: &Path) -> Result<Vec<PathBuf>, IngestError> {
    let mut out = Vec::new();
    let mut dirs = vec![dock.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| IngestError::Dock {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("mp4"))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Ingest every clip of `opts.dock` into `target`'s hot tier. Returns the report (its
/// [`IngestReport::ok`] is the exit status); an error means the run stopped.
pub async fn ingest(
    target: &IngestTarget,
    opts: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let files = scan(&opts.dock)?;
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .collect();
    progress.found(files.len() as u64, sizes.iter().sum());

    let store = S3TierStore::new(
        target.config.clone(),
        target.store_options.clone(),
        StorageMetrics::unregistered(),
    )
    .await?;
    // UK only, by proof, before the first byte (also in a dry run: it only reads).
    store.prove_region().await?;
    let reading = store
        .server_date()
        .await?
        .ok_or(IngestError::NoServerClock)?;
    let clock = ServerClock {
        date: reading.date,
        at: Instant::now(),
    };
    let audit = match &target.audit {
        Some((t, bucket)) if !opts.dry_run => Some((
            AuditLog::connect(&target.config, t.clone()).await?,
            bucket.clone(),
        )),
        _ => None,
    };
    let hot = target.config.tiers.get(Tier::Hot);
    let mut report = IngestReport {
        target: format!("s3://{}/{}", hot.bucket, hot.prefix),
        audit_chain: target
            .audit
            .as_ref()
            .map(|(t, _)| format!("s3://{}/{}", t.bucket, t.prefix)),
        audit_records: 0,
        dry_run: opts.dry_run,
        clips: Vec::with_capacity(files.len()),
        bytes_uploaded: 0,
        elapsed: Default::default(),
    };
    let actor = Actor {
        operator: format!("ingest:{}@{}", opts.user, opts.dock_host),
        lease: None,
        lease_holder: None,
    };
    // Keys the chain already records as ingested: read once, only when a clip is found
    // already present (a fresh dock never reads the chain).
    let mut recorded: Option<HashSet<String>> = None;
    let ctx = ClipCtx {
        store: &store,
        target,
        opts,
        clock,
        progress,
        listings: Mutex::new(HashMap::new()),
    };
    for chunk in files.chunks(opts.audit_batch.max(1)) {
        // The first error stops the run at once (the clips in flight are dropped, as a
        // killed process drops them).
        let done: Vec<(ClipReport, Option<ClipMeta>)> = stream::iter(chunk)
            .map(|f| ctx.clip(f))
            .buffered(opts.concurrency.max(1))
            .try_collect()
            .await?;
        if let Some((log, bucket)) = &audit {
            if recorded.is_none()
                && done
                    .iter()
                    .any(|(c, _)| c.outcome == Outcome::AlreadyPresent)
            {
                recorded = Some(recorded_keys(log).await?);
            }
            let entries: Vec<Entry> = done
                .iter()
                .filter(|(c, _)| match c.outcome {
                    Outcome::Ingested => true,
                    Outcome::AlreadyPresent => c
                        .key
                        .as_ref()
                        .is_some_and(|k| !recorded.as_ref().is_some_and(|r| r.contains(k))),
                    _ => false,
                })
                .filter_map(|(c, m)| Some(entry(c, m.as_ref()?, opts, clock.now())))
                .collect();
            let keys: Vec<String> = entries
                .iter()
                .filter_map(|e| e.clip.as_ref().map(|c| c.key.clone()))
                .collect();
            let bucket_audit = crate::audit::BucketAudit {
                log,
                actor: actor.clone(),
                bucket: bucket.clone(),
            };
            let n = entries.len();
            crate::audit::AuditSink::record(&bucket_audit, entries).await?;
            report.audit_records += n;
            if let Some(r) = recorded.as_mut() {
                r.extend(keys.iter().cloned());
            }
            pause(&opts.hook, IngestStep::Recorded { keys }).await?;
        }
        for (mut c, _) in done {
            if opts.remove_source
                && !opts.dry_run
                && matches!(c.outcome, Outcome::Ingested | Outcome::AlreadyPresent)
            {
                c.source_removed = remove_source(&opts.dock.join(&c.file));
            }
            if c.outcome == Outcome::Ingested {
                report.bytes_uploaded += c.size;
            }
            report.clips.push(c);
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The keys the chain records as ingested (the chain is verified first: a broken chain
/// gets nothing added).
async fn recorded_keys(log: &AuditLog) -> Result<HashSet<String>, IngestError> {
    let objects = log.read_all().await?;
    let (v, records) = verify(&log.target().prefix, &objects, None);
    if let Some(b) = v.first_break {
        return Err(IngestError::ChainBroken(b.to_string()));
    }
    Ok(records
        .into_iter()
        .filter(|r| r.action == AuditAction::Ingested)
        .filter_map(|r| r.clip.map(|c| c.key))
        .collect())
}

fn entry(c: &ClipReport, m: &ClipMeta, opts: &IngestOptions, now: DateTime<Utc>) -> Entry {
    let mut e = Entry::clip(
        AuditAction::Ingested,
        ClipRef {
            key: c.key.clone().unwrap_or_default(),
            version_id: c.version_id.clone(),
            size: c.size,
        },
        None,
        format!(
            "ingested from dock {} ({}) by {}: camera {}, officer {}, category {}, recorded at {} ({}); {}",
            opts.dock_host,
            c.file.display(),
            opts.user,
            m.camera,
            m.officer,
            m.category,
            m.recorded_at.to_rfc3339(),
            match m.time_source {
                super::sidecar::TimeSource::Sidecar => "sidecar",
                super::sidecar::TimeSource::Mp4 => "mp4 mvhd",
            },
            c.detail
        ),
    );
    e.time = now;
    e.to_tier = Some(Tier::Hot);
    e.sha256 = c.sha256.clone();
    e.cases = m.case.iter().cloned().collect();
    e.written = c.written.clone();
    e
}

/// Delete a dock file and its sidecars; whether the clip file is gone.
fn remove_source(path: &Path) -> bool {
    for s in sidecars_of(path) {
        if let Err(e) = std::fs::remove_file(&s) {
            tracing::warn!(file = %s.display(), error = %e, "removing a sidecar");
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "removing a dock file");
            false
        }
    }
}

async fn pause(hook: &Option<IngestHook>, step: IngestStep) -> Result<(), IngestError> {
    if let Some(h) = hook
        && !h(step.clone()).await
    {
        return Err(IngestError::Interrupted(format!("{step:?}")));
    }
    Ok(())
}

/// SHA-256 and length of a file, streamed.
fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            return Ok((hex::encode(h.finalize()), n));
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
}

struct ClipCtx<'a> {
    store: &'a S3TierStore,
    target: &'a IngestTarget,
    opts: &'a IngestOptions,
    clock: ServerClock,
    progress: &'a dyn Progress,
    /// The keys listed under each `<date>/<camera>/` prefix, listed once per run.
    listings: Mutex<HashMap<String, Arc<OnceCell<HashSet<String>>>>>,
}

impl ClipCtx<'_> {
    /// The hot tier's keys under `key`'s folder (listed on first use).
    async fn listed(&self, key: &str) -> Result<Arc<OnceCell<HashSet<String>>>, StorageError> {
        let prefix = key.rsplit_once('/').map_or("", |(p, _)| p).to_string() + "/";
        let cell = self
            .listings
            .lock()
            .await
            .entry(prefix.clone())
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.store.hot_keys(&prefix))
            .await?;
        Ok(cell)
    }

    /// One clip, start to end; `Err` only when the run must stop (a pause point).
    async fn clip(&self, path: &PathBuf) -> Result<(ClipReport, Option<ClipMeta>), IngestError> {
        let file = path
            .strip_prefix(&self.opts.dock)
            .unwrap_or(path)
            .to_path_buf();
        let mut report = ClipReport {
            file,
            key: None,
            size: std::fs::metadata(path).map_or(0, |m| m.len()),
            sha256: None,
            outcome: Outcome::Refused,
            detail: String::new(),
            version_id: None,
            source_removed: false,
            written: None,
        };
        let meta = match self.meta(path) {
            Ok(m) => m,
            Err(why) => {
                report.detail = why;
                self.progress.done(&report);
                return Ok((report, None));
            }
        };
        report.key = Some(meta.key(&stem(path)));
        let outcome = self.upload(path, &meta, &mut report).await;
        match outcome {
            Ok(()) => {}
            Err(StorageError::Interrupted { key, .. }) => {
                return Err(IngestError::Interrupted(key));
            }
            Err(e) => {
                report.outcome = Outcome::Failed;
                report.detail = e.to_string();
            }
        }
        if report.outcome == Outcome::Ingested
            && let Some(key) = &report.key
        {
            pause(&self.opts.hook, IngestStep::Uploaded { key: key.clone() }).await?;
        }
        self.progress.done(&report);
        Ok((report, Some(meta)))
    }

    /// The clip's checked metadata, or why it is refused.
    fn meta(&self, path: &Path) -> Result<ClipMeta, String> {
        let name = stem(path);
        if !key_safe(&name) {
            return Err(format!(
                "file name {name:?} has characters other than A-Z a-z 0-9 . _ - (it names the key)"
            ));
        }
        let sidecar = match sidecars_of(path).as_slice() {
            [] => None,
            [one] => {
                Some(read_sidecar(one).map_err(|e| format!("sidecar {}: {e}", one.display()))?)
            }
            many => {
                return Err(format!(
                    "{} sidecars ({}); keep one",
                    many.len(),
                    many.iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        };
        resolve(
            sidecar.as_ref(),
            &self.opts.defaults,
            || creation_time(path),
            &self.target.categories,
            self.clock.now(),
            FUTURE_TOLERANCE,
        )
    }

    /// Hash, compare with what is there, upload: fills `report`'s outcome.
    async fn upload(
        &self,
        path: &Path,
        meta: &ClipMeta,
        report: &mut ClipReport,
    ) -> Result<(), StorageError> {
        let read_err = |e: std::io::Error| {
            StorageError::InvalidInput(format!("reading {}: {e}", path.display()))
        };
        let single = report.size <= self.opts.multipart_threshold;
        let p = path.to_path_buf();
        // One read of a small clip: hashed in memory, sent from memory.
        let (sha, body) = if single {
            let (sha, data) = tokio::task::spawn_blocking(move || {
                std::fs::read(&p).map(|d| (hex::encode(Sha256::digest(&d)), d))
            })
            .await
            .map_err(|e| StorageError::InvalidInput(e.to_string()))?
            .map_err(read_err)?;
            report.size = data.len() as u64;
            (sha, ClipBody::Memory(Bytes::from(data)))
        } else {
            // A multipart upload records the SHA-256 when it starts: the camera's (from
            // the sidecar), else a first read; the upload's own read must agree.
            let sha = match &meta.sha256 {
                Some(s) => s.clone(),
                None => {
                    let (sha, n) = tokio::task::spawn_blocking(move || hash_file(&p))
                        .await
                        .map_err(|e| StorageError::InvalidInput(e.to_string()))?
                        .map_err(read_err)?;
                    report.size = n;
                    sha
                }
            };
            let body = ClipBody::File {
                path: path.to_path_buf(),
                part_size: self.opts.part_size,
                parallel_parts: self.opts.parallel_parts,
            };
            (sha, body)
        };
        report.sha256 = Some(sha.clone());
        if single
            && let Some(camera) = &meta.sha256
            && *camera != sha
        {
            report.outcome = Outcome::Refused;
            report.detail = format!("the file's SHA-256 is {sha}, its sidecar says {camera}");
            return Ok(());
        }
        let key = report.key.clone().unwrap_or_default();
        // Is the key there? One listing per date and camera tells for all its clips; only
        // a listed key is read (HEAD) for its SHA-256. A key created after the listing
        // is caught by the conditional upload (412).
        let listed = self.listed(&key).await?;
        if listed.get().is_some_and(|keys| keys.contains(&key))
            && let Some(existing) = self.store.hot_object(&key).await?
        {
            judge(report, &existing, &sha);
            return Ok(());
        }
        if let Some(hook) = &self.opts.hook
            && !hook(IngestStep::Checked { key: key.clone() }).await
        {
            return Err(StorageError::Interrupted {
                key,
                step: crate::storage::MoveStep::Verified,
            });
        }
        if self.opts.dry_run {
            report.outcome = Outcome::WouldIngest;
            report.detail = "not uploaded (dry run)".into();
            return Ok(());
        }
        if !single {
            let aborted = self.store.abort_stale_uploads(&key).await?;
            if aborted > 0 {
                tracing::info!(key, aborted, "aborted incomplete uploads of an earlier run");
            }
        }
        let uploaded_at = format_uploaded_at(self.clock.now());
        let new = NewClip {
            key: key.clone(),
            size: report.size,
            sha256: sha.clone(),
            tags: meta.tags(),
            metadata: HashMap::from([
                (META_SHA256.to_string(), sha.clone()),
                (META_UPLOADED_AT.to_string(), uploaded_at.clone()),
            ]),
            content_type: CONTENT_TYPE.into(),
            body,
        };
        match self
            .store
            .create_clip(&new, self.opts.part_hook.as_ref())
            .await?
        {
            Created::Written {
                version_id,
                etag,
                parts,
                confirmed,
                requests,
            } => {
                report.outcome = Outcome::Ingested;
                report.version_id = version_id;
                report.written = etag.map(|etag| Written {
                    etag,
                    storage_class: self.store.config().tiers.hot.storage_class.clone(),
                    content_type: CONTENT_TYPE.into(),
                    tags: new.tags.clone(),
                    uploaded_at,
                });
                report.detail = format!(
                    "SHA-256 verified by the store ({}), {}, {requests} requests",
                    match confirmed {
                        Confirmed::Answer => "its checksum in the answer",
                        Confirmed::Head => "size and recorded SHA-256 read back",
                    },
                    if parts > 0 {
                        format!("{parts} parts")
                    } else {
                        "one PutObject".into()
                    }
                );
            }
            Created::Exists(Some(existing)) => judge(report, &existing, &sha),
            Created::Exists(None) => {
                report.outcome = Outcome::Conflict;
                report.detail =
                    "the store refused to create the key, and it is not readable".into();
            }
        }
        Ok(())
    }
}

/// An existing key: the same clip (already ingested) or a conflict.
fn judge(report: &mut ClipReport, existing: &ExistingObject, sha: &str) {
    report.version_id = existing.version_id.clone();
    match &existing.sha256 {
        Some(s) if s == sha && existing.size == report.size => {
            report.outcome = Outcome::AlreadyPresent;
            report.detail = "already in the hot tier with the same SHA-256".into();
        }
        Some(s) => {
            report.outcome = Outcome::Conflict;
            report.detail = format!(
                "the key holds another object (SHA-256 {s}, {} bytes); not overwritten",
                existing.size
            );
        }
        None => {
            report.outcome = Outcome::Conflict;
            report.detail = format!(
                "the key holds an object with no recorded SHA-256 ({} bytes); not overwritten",
                existing.size
            );
        }
    }
}

/// The file name without its extension.
fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}
