//! The contract with platform teams: the custom resources of group `evidence.bwv.io`
//! (version `v1alpha1`), their documentation (what `kubectl explain` shows) and their
//! apply-time validation rules, plus the clip metadata read from S3 object tags.
//!
//! Nothing here does I/O; [`crate::engine`] and [`crate::storage`] build on these types.

pub mod clip;
