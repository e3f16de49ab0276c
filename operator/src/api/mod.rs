//! The contract with platform teams: the custom resources of group `evidence.bwv.io`
//! (version `v1alpha1`), their documentation (what `kubectl explain` shows) and their
//! apply-time validation rules, plus the clip metadata read from S3 object tags.
//!
//! | module | what |
//! |---|---|
//! | [`retention_policy`] | `RetentionPolicy`: categories, retention, expiry action, cooling, clock, safety floor |
//! | [`evidence_bucket`] | `EvidenceBucket`: region, endpoint, credentials, tiers, sweep; its status types |
//! | [`access_request`] | `AccessRequest`: a subject access request or disclosure; its clips preserved while open |
//! | [`clip_restore`] | `ClipRestore`: a person's decision to bring back soft-deleted clips |
//! | [`legal_hold`] | `LegalHold`: a case pinning selected clips in the legal-hold tier |
//! | [`duration`] | the duration strings (`31d`, `6y`, `Forever`, `15m`) and their calendar meaning |
//! | [`regions`] | the allowed UK regions and how an installation extends them |
//! | [`validation`] | the specs' rules in Rust (the CRDs' CEL rules, UK regions, the safety floor): `problems()` |
//! | [`crds`] | the generated CRD YAML and region admission policy |
//! | [`clip`] | clips and the S3 tag keys that carry their metadata |
//!
//! Nothing here does I/O; [`crate::engine`] and [`crate::storage`] build on these types.

pub mod access_request;
pub mod clip;
pub mod clip_restore;
pub mod crds;
pub mod duration;
pub mod evidence_bucket;
pub mod legal_hold;
pub mod regions;
pub mod retention_policy;
pub mod validation;

pub use access_request::{AccessRequest, AccessRequestSpec, AccessRequestStatus, AccessSelector};
pub use clip_restore::{ClipRestore, ClipRestoreSpec, ClipRestoreStatus};
pub use duration::{Interval, RetentionDuration};
pub use evidence_bucket::{EvidenceBucket, EvidenceBucketSpec, EvidenceBucketStatus};
pub use legal_hold::{HoldSelector, LegalHold, LegalHoldSpec, LegalHoldStatus};
pub use retention_policy::{
    CategoryRule, ExpiryAction, RetentionClock, RetentionPolicy, RetentionPolicySpec,
    RetentionPolicyStatus, RetentionRule,
};
pub use validation::{Problem, Segment};
