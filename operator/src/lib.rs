//! evidence-operator: keeps police body-worn video evidence in the right storage tier
//! for as long as the law needs it, and not a day longer, and never outside the UK.
//!
//! The crate is laid out by responsibility. Imports go one way: a module may use the
//! modules above it in this table, never one below it (the test in `layering.rs` reads
//! every `crate::…` path and fails on one against the table).
//!
//! | module         | owns                                                                  |
//! |----------------|-----------------------------------------------------------------------|
//! | [`api`]        | the CRD types (`EvidenceBucket`, `RetentionPolicy`, `LegalHold`), their docs and CEL rules, clip tag keys, the allowed UK regions, the LegalHold finalizer |
//! | [`engine`]     | retention semantics: policy + holds + clips + `now` → a plan. Pure: no I/O, no clock |
//! | [`storage`]    | the tier store trait and its S3 implementation: list, verified move, hold, delete, region proof |
//! | [`audit`]      | the tamper-evident audit trail: hash-chained records in Object Lock storage, verifier, custody reports |
//! | [`catalogue`]  | what the operator learned about each clip (identity, tags, hold), on local disk: a cache rebuilt from storage, so a sweep reads facts only for what changed |
//! | [`ingest`]     | the dock ingest: a dock folder's clips into the hot tier, verified (SHA-256), tagged from sidecars or the MP4, never overwriting, resumable, one `ingested` audit record per clip |
//! | [`disclosure`] | the answer to an AccessRequest: the search in every tier, the manifest in the UK export location (hash in the audit chain), shared links, each recorded |
//! | [`controller`] | the reconcile drivers: an EvidenceBucket as dereference → validate (pure) → apply → report (`controller/bucket/`), one sweep, the LegalHold finalizer; leader election; the operator's metrics |
//! | [`runtime`]    | wiring from `Settings`: client, HTTP endpoints, leader election, controllers, shutdown; logging |
//! | [`cli`]        | the binary's subcommands and their flags (clap only here)             |

pub mod api;
pub mod audit;
pub mod catalogue;
pub mod cli;
pub mod controller;
pub mod disclosure;
pub mod engine;
pub mod ingest;
pub mod runtime;
pub mod storage;

#[cfg(test)]
mod layering;
