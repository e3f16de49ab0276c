//! evidence-operator: keeps police body-worn video evidence in the right storage tier
//! for as long as the law needs it, and not a day longer, and never outside the UK.
//!
//! The crate is laid out by responsibility; imports go one way (top to bottom):
//!
//! | module         | owns                                                                  |
//! |----------------|-----------------------------------------------------------------------|
//! | [`api`]        | the CRD types (`EvidenceBucket`, `RetentionPolicy`, `LegalHold`), their docs and CEL rules, clip tag keys |
//! | [`engine`]     | retention semantics: policy + holds + clips + `now` → a plan. Pure: no I/O, no clock |
//! | [`audit`]      | the tamper-evident audit trail: hash-chained records in Object Lock storage, verifier, custody reports |
//! | [`storage`]    | the tier store trait and its S3 implementation: list, verified move, hold, delete, region proof |
//! | [`controller`] | thin reconcile drivers: read → plan → apply → status                    |
//! | [`cli`]        | the binary's subcommands and their flags                                |
//! | [`metrics`], [`telemetry`] | the Prometheus registry and tracing setup                   |

pub mod api;
pub mod audit;
pub mod cli;
pub mod controller;
pub mod engine;
pub mod metrics;
pub mod server;
pub mod storage;
pub mod telemetry;
