//! The hold fence of a sweep: before the sweep acts on each chunk it lists the
//! LegalHolds and AccessRequests and reads the RetentionPolicy again, straight from the API server (quorum
//! reads, no cache), so that a hold applied, or a retention lengthened, while a long
//! sweep runs protects its clips in every chunk acted on afterwards (see
//! [`crate::controller::sweep::HoldFence`]). Three requests per chunk of up to
//! 1,000 clips.

use std::collections::BTreeSet;

use kube::{Api, ResourceExt, api::ListParams};

use super::validate::has_release_finalizer;
use crate::{
    api::{AccessRequest, LegalHold, RetentionPolicy, retention_policy::RetentionPolicySpec},
    controller::sweep::{FencedHolds, HoldFence},
    engine::{ActiveHold, Preserve},
};

/// The LegalHolds and the RetentionPolicy of one bucket, read again before each chunk.
pub struct ApiHoldFence {
    /// LegalHolds in the bucket's namespace.
    pub api: Api<LegalHold>,
    /// RetentionPolicies in the bucket's namespace.
    pub policies: Api<RetentionPolicy>,
    /// The EvidenceBucket's name.
    pub bucket: String,
    /// The holds in force when the sweep started.
    pub start: Vec<ActiveHold>,
    /// The name of the bucket's RetentionPolicy.
    pub policy_name: String,
    /// Its spec when the sweep started.
    pub start_policy: RetentionPolicySpec,
    /// AccessRequests in the bucket's namespace.
    pub requests: Api<AccessRequest>,
    /// The preserves (open AccessRequests) in force when the sweep started.
    pub start_preserves: Vec<Preserve>,
}

#[async_trait::async_trait]
impl HoldFence for ApiHoldFence {
    async fn read(&self) -> Result<Option<FencedHolds>, String> {
        // No resourceVersion: consistent reads from etcd, not a watch cache.
        let list = self
            .api
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let policy = self
            .policies
            .get_opt(&self.policy_name)
            .await
            .map_err(|e| e.to_string())?;
        let requests = self
            .requests
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let holds = fenced(&self.start, &self.bucket, &list.items);
        let holds = with_preserves(
            holds,
            &self.start,
            &self.start_preserves,
            &self.bucket,
            &requests.items,
        );
        Ok(with_policy(
            holds,
            &self.start,
            &self.start_policy,
            policy.map(|p| p.spec),
        ))
    }
}

/// Add the AccessRequests of `bucket` opened (or changed) since the sweep started to
/// what the fence found (pure). A request closed or deleted since the start keeps
/// protecting until the next sweep (protection is only ever added within a sweep).
pub fn with_preserves(
    holds: Option<FencedHolds>,
    start: &[ActiveHold],
    start_preserves: &[Preserve],
    bucket: &str,
    listed: &[AccessRequest],
) -> Option<FencedHolds> {
    let added: Vec<Preserve> = listed
        .iter()
        .filter(|r| r.spec.bucket_ref.name == bucket)
        .filter_map(Preserve::from_request)
        .filter(|p| !start_preserves.contains(p))
        .collect();
    if added.is_empty() {
        return holds;
    }
    let mut out = holds.unwrap_or_else(|| FencedHolds {
        holds: start.to_vec(),
        ..FencedHolds::default()
    });
    out.preserves = added;
    Some(out)
}

/// Add a RetentionPolicy changed since the sweep started to what the fence found
/// (pure). A policy deleted, or changed into one the engine refuses, adds nothing: the
/// sweep goes on with the policy it started with (the next reconcile reports it).
pub fn with_policy(
    holds: Option<FencedHolds>,
    start: &[ActiveHold],
    start_policy: &RetentionPolicySpec,
    now: Option<RetentionPolicySpec>,
) -> Option<FencedHolds> {
    let changed = now.filter(|p| {
        p != start_policy && crate::engine::Planner::new(p, start, chrono::Utc::now()).is_ok()
    });
    match (holds, changed) {
        (h, None) => h,
        (Some(mut h), Some(p)) => {
            h.policy = Some(p);
            Some(h)
        }
        (None, Some(p)) => Some(FencedHolds {
            holds: start.to_vec(),
            pending: BTreeSet::new(),
            policy: Some(p),
            preserves: Vec::new(),
        }),
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
        policy: None,
        preserves: Vec::new(),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn policy(retention: &str, category: &str) -> RetentionPolicySpec {
        serde_json::from_value(serde_json::json!({
            "default": { "retention": retention, "onExpiry": "Delete" },
            "categories": [{ "name": category, "retention": "7y", "onExpiry": "Delete" }],
        }))
        .unwrap()
    }

    #[test]
    fn only_a_valid_changed_policy_is_fenced() {
        let start = policy("31d", "use-of-force");
        // Unchanged, or deleted: nothing to add.
        assert!(with_policy(None, &[], &start, Some(start.clone())).is_none());
        assert!(with_policy(None, &[], &start, None).is_none());
        // Changed into one the engine refuses: the sweep goes on with the start policy.
        assert!(with_policy(None, &[], &start, Some(policy("90d", " "))).is_none());
        // Changed: fenced, with the holds the sweep started with.
        let longer = policy("90d", "use-of-force");
        let f = with_policy(None, &[], &start, Some(longer.clone())).unwrap();
        assert_eq!(f.policy, Some(longer));
        assert!(f.holds.is_empty() && f.pending.is_empty());
    }
}
