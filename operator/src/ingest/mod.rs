//! The dock ingest: every clip under a dock folder into the hot tier of an evidence
//! bucket, verified, tagged, never overwriting, resumable, and recorded in the bucket's
//! audit chain. `evidence-operator ingest` (`cli/ingest.rs`) is a thin front over
//! [`ingest`]; the demo and the tests call it directly. See `docs/ingest.md`.
//!
//! One run:
//! 1. the dock is scanned (`*.mp4`, recursively, in name order; hidden files skipped);
//! 2. the hot bucket's region is proved (the storage layer's proof, the same as every
//!    write of the operator's) and the store's clock read (one `HeadBucket`'s `Date`),
//!    before the first byte is sent; a failure stops the run with nothing written;
//! 3. each clip, `concurrency` at a time: metadata from its sidecar, the folder's
//!    defaults and the MP4's `mvhd` ([`sidecar::resolve`]: refused clips are reported
//!    and the rest go on), its key (`<yyyy>/<mm>/<dd>/<camera>/<name>.mp4`), its SHA-256
//!    (one read of the file for a single `PutObject`; see [`ClipBody`] for multipart), a
//!    HEAD of the key (present with the same SHA-256: already ingested; with another:
//!    a conflict, never overwritten), then the conditional, checksummed upload
//!    (`S3TierStore::create_clip`) with `evidence-sha256` and `evidence-uploaded-at`
//!    (the store's clock) metadata and the `evidence.bwv.io/*` tags;
//! 4. after each chunk of `audit_batch` clips, one batch of `ingested` records in the
//!    audit chain (a clip found already present whose record is missing, because an
//!    earlier run stopped between its upload and its record, gets it now; one already
//!    recorded does not get a second);
//! 5. with `remove_source`, the dock files of the chunk's recorded clips are deleted
//!    (with their sidecars), never before.
//!
//! A run stopped anywhere (killed, or at a test's [`IngestHook`]) and run again gives
//! the same objects and one record per clip: landed clips are found by HEAD and their
//! SHA-256, an interrupted multipart upload of a key is aborted before the key is sent
//! again.

pub mod mp4;
pub mod report;
mod run;
pub mod sidecar;

use std::{path::PathBuf, sync::Arc};

use futures::future::BoxFuture;

pub use self::{
    report::{ClipReport, IngestReport, Outcome},
    run::ingest,
    sidecar::{Categories, Defaults},
};
#[doc(no_inline)]
pub use crate::storage::s3::ClipBody;
use crate::{
    audit::{AuditError, AuditTarget},
    storage::{BucketConfig, StorageError, StoreOptions, s3::PartHook},
};

/// Errors that stop a whole run (a clip's own problems are in its [`ClipReport`]).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The dock folder cannot be read.
    #[error("dock {path}: {message}")]
    Dock {
        /// The folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The storage refused before the first byte (region proof, configuration), or the
    /// store's clock could not be read.
    #[error("hot tier: {0}; nothing was uploaded")]
    Storage(#[from] StorageError),
    /// The store's answer carried no `Date`: the upload time cannot come from its clock.
    #[error(
        "the store's answer carried no Date header: the upload time must come from the store's clock, not the dock's; nothing was uploaded"
    )]
    NoServerClock,
    /// Writing (or reading) the audit chain failed: the run stops (uploaded clips are
    /// found and recorded by the next run).
    #[error("audit chain: {0}")]
    Audit(#[from] AuditError),
    /// The audit chain is broken: nothing is added to it.
    #[error("audit chain is broken: {0}; run `evidence-operator audit verify`")]
    ChainBroken(String),
    /// A test's pause point stopped the run (as if it was killed).
    #[error("ingest interrupted at {0}")]
    Interrupted(String),
}

/// Where clips go and where they are recorded.
#[derive(Debug, Clone)]
pub struct IngestTarget {
    /// The evidence bucket's storage (only the hot tier is written; every tier bucket's
    /// region is proved).
    pub config: BucketConfig,
    /// Store options (the installation's `--endpoint-region` declarations).
    pub store_options: StoreOptions,
    /// The audit chain and the evidence bucket name (`namespace/name`) its records
    /// carry; `None`: no records (only with plain S3 settings and `--no-audit`).
    pub audit: Option<(AuditTarget, String)>,
    /// The categories a clip may carry.
    pub categories: Categories,
}

/// A step of one clip's ingest, for a test's pause point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestStep {
    /// The key was found free (not listed), just before its conditional upload: a
    /// test may create the key here, as a second dock would.
    Checked {
        /// The key.
        key: String,
    },
    /// The clip's object was written and verified (its audit record not yet written).
    Uploaded {
        /// The key.
        key: String,
    },
    /// A chunk's audit records were written (its dock files not yet removed).
    Recorded {
        /// The keys recorded.
        keys: Vec<String>,
    },
}

/// Test-only pause point: called after each [`IngestStep`]; `false` stops the run
/// right there ([`IngestError::Interrupted`]), as a killed process would stop.
#[doc(hidden)]
pub type IngestHook = Arc<dyn Fn(IngestStep) -> BoxFuture<'static, bool> + Send + Sync>;

/// Told about the run as it goes (the CLI's progress bar).
pub trait Progress: Send + Sync {
    /// The dock was scanned: this many clips, this many bytes.
    fn found(&self, _clips: u64, _bytes: u64) {}
    /// One clip is done.
    fn done(&self, _clip: &ClipReport) {}
}

/// No progress reporting.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Progress for Quiet {}

/// How a run behaves.
#[derive(Clone)]
pub struct IngestOptions {
    /// The dock folder.
    pub dock: PathBuf,
    /// The folder's defaults (flags).
    pub defaults: Defaults,
    /// Clips uploaded at once.
    pub concurrency: usize,
    /// Clips larger than this are uploaded in parts.
    pub multipart_threshold: u64,
    /// Part size of multipart uploads.
    pub part_size: u64,
    /// Parts of one clip in flight at once.
    pub parallel_parts: usize,
    /// Report only: no upload, no record, no removal.
    pub dry_run: bool,
    /// Delete each dock file (and its sidecar) once its clip is verified and recorded.
    pub remove_source: bool,
    /// The dock's host name, for the audit records.
    pub dock_host: String,
    /// Who runs the ingest, for the audit records.
    pub user: String,
    /// Clips per audit batch (and per chunk of the run).
    pub audit_batch: usize,
    /// Test-only pause point between a clip's steps.
    #[doc(hidden)]
    pub hook: Option<IngestHook>,
    /// Test-only pause point after each part of a multipart upload.
    #[doc(hidden)]
    pub part_hook: Option<PartHook>,
}

impl IngestOptions {
    /// The defaults for a dock folder: 8 clips at once, multipart above 64 MiB in
    /// 16 MiB parts, 4 parts in flight, 500 clips per audit batch.
    pub fn new(dock: impl Into<PathBuf>) -> Self {
        IngestOptions {
            dock: dock.into(),
            defaults: Defaults::default(),
            concurrency: 8,
            multipart_threshold: 64 * 1024 * 1024,
            part_size: 16 * 1024 * 1024,
            parallel_parts: 4,
            dry_run: false,
            remove_source: false,
            dock_host: default_host(),
            user: default_user(),
            audit_batch: 500,
            hook: None,
            part_hook: None,
        }
    }
}

impl std::fmt::Debug for IngestOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestOptions")
            .field("dock", &self.dock)
            .field("defaults", &self.defaults)
            .field("concurrency", &self.concurrency)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("dry_run", &self.dry_run)
            .field("remove_source", &self.remove_source)
            .finish_non_exhaustive()
    }
}

/// The host name: `$HOSTNAME`, else the kernel's, else `unknown-dock`.
pub fn default_host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-dock".into())
}

/// Who runs the ingest: `$USER` (`$USERNAME` on Windows), else `unknown`.
pub fn default_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
