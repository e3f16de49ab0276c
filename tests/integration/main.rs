//! The integration tests, against the real servers (kube-apiserver + etcd, MinIO) that
//! `make test` starts: one test binary, so one link when they change and one process
//! sharing one set of servers, with a module per area.
//!
//! Run one area or one test by name: `cargo test -p evidence-operator-tests --test
//! integration -- operator::` (the harness starts private servers when `make test`
//! has not; see `tests/harness/lib.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod access;
mod audit;
#[path = "../bench/smoke.rs"]
mod bench_smoke;
mod catalogue;
mod crds;
mod ingest;
mod operator;
mod packaging;
mod policy;
mod rbac;
mod restore;
mod retention;
mod servers;
mod storage;
mod tenancy;
