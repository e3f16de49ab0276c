//! Pure helpers for status: kstatus-style conditions (`Ready`, `Reconciling`, `Stalled`,
//! plus `RegionVerified` and `PolicyResolved`) that keep their `lastTransitionTime`
//! while their status does not change, each stamped with the `observedGeneration`; and
//! the one status writer, [`apply_status`], that every controller uses.

use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
};
use serde::{Serialize, de::DeserializeOwned};

use super::{Error, MANAGER, key_of};

/// Condition type: the resource is fully reconciled and storage matches policy.
pub const READY: &str = "Ready";
/// Condition type: the operator is working towards the desired state.
pub const RECONCILING: &str = "Reconciling";
/// Condition type: the operator cannot make progress without a change by a person.
pub const STALLED: &str = "Stalled";
/// Condition type: every tier bucket is proven to be in an allowed UK region.
pub const REGION_VERIFIED: &str = "RegionVerified";
/// Condition type: the referenced RetentionPolicy exists and is valid.
pub const POLICY_RESOLVED: &str = "PolicyResolved";
/// Condition type: every category tagged on a clip is named by the policy (False: some
/// clips fall under the default rule because their category is unknown, e.g. misspelt).
pub const CATEGORIES_KNOWN: &str = "CategoriesKnown";

/// A condition to be set: type, status, reason, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    /// Condition type.
    pub type_: &'static str,
    /// `True`, `False` or `Unknown`.
    pub status: &'static str,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

impl Cond {
    /// A `True` condition.
    pub fn yes(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Cond {
            type_,
            status: "True",
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A `False` condition.
    pub fn no(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Cond {
            type_,
            status: "False",
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// An `Unknown` condition.
    pub fn unknown(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Cond {
            type_,
            status: "Unknown",
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Build the full condition list from the desired conditions, keeping the previous
/// `lastTransitionTime` of every condition whose status did not change.
pub fn merge_conditions(
    previous: &[Condition],
    desired: &[Cond],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    desired
        .iter()
        .map(|d| {
            let last_transition_time = previous
                .iter()
                .find(|p| p.type_ == d.type_ && p.status == d.status)
                .map(|p| p.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_: d.type_.to_string(),
                status: d.status.to_string(),
                reason: d.reason.clone(),
                message: truncate(&d.message, 32_000),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The kstatus trio for a resource that is stalled: Ready=False, Reconciling=False,
/// Stalled=True, all with the same reason and message.
pub fn stalled(reason: &str, message: &str) -> [Cond; 3] {
    [
        Cond::no(READY, reason, message),
        Cond::no(RECONCILING, reason, message),
        Cond::yes(STALLED, reason, message),
    ]
}

/// Write an object's status by server-side apply, as the operator's field manager.
///
/// `status` is the whole status this manager owns: a field it wrote before and leaves
/// out now is removed (that is how server-side apply treats an owned field that is no
/// longer applied), so pass everything that should stay.
pub async fn apply_status<K, S>(api: &Api<K>, obj: &K, status: &S) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize + std::fmt::Debug,
{
    /// The apply patch: type meta and the status, nothing else.
    #[derive(Serialize, Debug)]
    #[serde(rename_all = "camelCase")]
    struct StatusPatch<'a, S> {
        api_version: &'a str,
        kind: &'a str,
        status: &'a S,
    }
    let (api_version, kind) = (K::api_version(&()), K::kind(&()));
    let patch = StatusPatch {
        api_version: &api_version,
        kind: &kind,
        status,
    };
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|source| Error::WriteStatus {
        what: format!("{kind} {}", key_of(obj)),
        source,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_is_kept_while_status_is_unchanged() {
        let t0 = Timestamp::from_second(1_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let t1 = Timestamp::from_second(2_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let first = merge_conditions(&[], &[Cond::yes(READY, "SweepComplete", "ok")], Some(1), t0);
        let second = merge_conditions(
            &first,
            &[Cond::yes(READY, "SweepComplete", "still ok")],
            Some(2),
            t1,
        );
        assert_eq!(second[0].last_transition_time, Time(t0));
        assert_eq!(second[0].observed_generation, Some(2));
        assert_eq!(second[0].message, "still ok");
        let third = merge_conditions(
            &second,
            &[Cond::no(READY, "SweepIncomplete", "x")],
            Some(2),
            t1,
        );
        assert_eq!(third[0].last_transition_time, Time(t1));
    }

    #[test]
    fn stalled_sets_the_kstatus_trio() {
        let [ready, reconciling, stalled] = stalled("PolicyNotFound", "no policy");
        assert_eq!((ready.type_, ready.status), (READY, "False"));
        assert_eq!(
            (reconciling.type_, reconciling.status),
            (RECONCILING, "False")
        );
        assert_eq!((stalled.type_, stalled.status), (STALLED, "True"));
    }
}
