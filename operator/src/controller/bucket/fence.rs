//! The hold fence of a sweep: before the sweep acts on each chunk it lists the
//! LegalHolds again, straight from the API server (a quorum read, no cache), so that a
//! hold applied while a long sweep runs protects its clips in every chunk acted on
//! afterwards (see [`crate::controller::sweep::HoldFence`]). One list request per chunk
//! of up to 1,000 clips.

use std::collections::BTreeSet;

use kube::{Api, ResourceExt, api::ListParams};

use super::validate::has_release_finalizer;
use crate::{
    api::LegalHold,
    controller::sweep::{FencedHolds, HoldFence},
    engine::ActiveHold,
};

/// The LegalHolds of one bucket, read again before each chunk.
pub struct ApiHoldFence {
    /// LegalHolds in the bucket's namespace.
    pub api: Api<LegalHold>,
    /// The EvidenceBucket's name.
    pub bucket: String,
    /// The holds in force when the sweep started.
    pub start: Vec<ActiveHold>,
}

#[async_trait::async_trait]
impl HoldFence for ApiHoldFence {
    async fn read(&self) -> Result<Option<FencedHolds>, String> {
        // No resourceVersion: a consistent read from etcd, not a watch cache.
        let list = self
            .api
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        Ok(fenced(&self.start, &self.bucket, &list.items))
    }
}

/// The holds to plan with, from the holds the sweep started with and the LegalHolds as
/// listed now (pure): `None` when no hold naming `bucket` was applied, and no selector
/// changed, since the start. Holds removed or being deleted since the start keep
/// protecting their clips until the next sweep (their release is the LegalHold
/// finalizer's job).
pub fn fenced(start: &[ActiveHold], bucket: &str, listed: &[LegalHold]) -> Option<FencedHolds> {
    let mut out = FencedHolds {
        holds: start.to_vec(),
        pending: BTreeSet::new(),
    };
    for hold in listed
        .iter()
        .filter(|h| h.spec.bucket_ref.name == bucket && h.metadata.deletion_timestamp.is_none())
    {
        let name = hold.name_any();
        if start
            .iter()
            .any(|a| a.name == name && a.selector == hold.spec.selector)
        {
            continue;
        }
        let Some(added) = ActiveHold::from_legal_hold(hold) else {
            continue;
        };
        if !has_release_finalizer(hold) && !start.iter().any(|a| a.name == name) {
            out.pending.insert(name);
        }
        out.holds.push(added);
    }
    (out.holds.len() > start.len()).then_some(out)
}
