//! The RetentionPolicy controller: a policy's own status. Whether a policy is usable is
//! decided here by the same checks the EvidenceBucket controller and `evidence-operator
//! check` apply to it ([`RetentionPolicySpec::problems`]: category names, retentions
//! under the safety floor, the restore window; and the engine compiling it,
//! [`Planner::new`]), so `kubectl wait --for=condition=Ready retentionpolicy/...`
//! works without a bucket that uses it. `Ready=True` with reason `Valid`, or
//! `Ready=False` with reason `Invalid` and every problem in the message (and a warning
//! event when it becomes invalid); `observedGeneration` says which spec that describes.
//! Nothing on storage is touched here: each bucket using the policy says in its own
//! `PolicyResolved` condition whether it could use it (a policy the engine cannot
//! compile stops its buckets; one whose retention is under its safety floor is used,
//! the floor winning, and is `Invalid` here because it says one thing and does another).

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::{
    Api, ResourceExt,
    runtime::{Controller, controller::Action, events::EventType, watcher},
};
use tokio_util::sync::CancellationToken;

use super::{
    Context, Error, api_for, error_policy,
    status::{Cond, READY, apply_status, merge_conditions},
};
use crate::{
    api::{RetentionPolicy, RetentionPolicySpec, RetentionPolicyStatus},
    engine::Planner,
};

/// The controller's name (metrics).
const CONTROLLER: &str = "retentionpolicy";
/// `Ready=True`: the policy passes every check.
pub const VALID: &str = "Valid";
/// `Ready=False`: the policy fails a check; the message lists what.
pub const INVALID: &str = "Invalid";
/// How often a policy is looked at again without a change (its checks do not depend on
/// time: this only repairs a status someone else overwrote).
const RESYNC: Duration = Duration::from_secs(3600);

/// Run the RetentionPolicy controller for one namespace (or all) until `stop`.
pub async fn controller(ctx: Arc<Context>, ns: Option<String>, stop: CancellationToken) {
    Controller::new(
        api_for::<RetentionPolicy>(ctx.client.clone(), ns.as_deref()),
        watcher::Config::default(),
    )
    .graceful_shutdown_on(async move { stop.cancelled().await })
    .run(reconcile, error_policy(CONTROLLER), ctx)
    .for_each(|_| async {})
    .await;
}

/// The `Ready` condition of a policy with this spec, pure: `Valid`, or `Invalid` with
/// every problem (field path and message) and the engine's refusal, if any.
pub fn readiness(spec: &RetentionPolicySpec, now: DateTime<Utc>) -> Cond {
    let mut problems: Vec<String> = spec
        .problems()
        .iter()
        .map(|p| format!("{}: {}", p.field_path(), p.message))
        .collect();
    // what the engine refuses (a blank or repeated category) the checks above already
    // say in their words; its own words only if it refuses something else
    if problems.is_empty()
        && let Err(e) = Planner::new(spec, &[], now)
    {
        problems.push(e.to_string());
    }
    if problems.is_empty() {
        Cond::yes(
            READY,
            VALID,
            "the policy passes every check (category names, retentions against the safety floor, restore window) and compiles",
        )
    } else {
        Cond::no(READY, INVALID, problems.join("; "))
    }
}

/// The whole status the operator writes on `policy` at `now`: its `Ready` condition
/// (keeping `lastTransitionTime` while the status does not change) and
/// `observedGeneration`.
pub fn status_of(policy: &RetentionPolicy, now: Timestamp) -> RetentionPolicyStatus {
    let previous = policy.status.clone().unwrap_or_default();
    let at = DateTime::<Utc>::from_timestamp(now.as_second(), 0).unwrap_or_default();
    let generation = policy.metadata.generation;
    RetentionPolicyStatus {
        conditions: merge_conditions(
            &previous.conditions,
            &[readiness(&policy.spec, at)],
            generation,
            now,
        ),
        observed_generation: generation,
    }
}

/// Write the policy's status when it differs from what it says (a warning event when it
/// becomes invalid, or invalid for other reasons); look again in an hour.
async fn reconcile(policy: Arc<RetentionPolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started(CONTROLLER);
    let status = status_of(&policy, Timestamp::now());
    if policy.status.as_ref() == Some(&status) {
        return Ok(Action::requeue(RESYNC));
    }
    let ns = policy.namespace().unwrap_or_default();
    apply_status(
        &Api::<RetentionPolicy>::namespaced(ctx.client.clone(), &ns),
        &*policy,
        &status,
    )
    .await?;
    let ready = |s: &RetentionPolicyStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == READY)
            .map(|c| (c.reason.clone(), c.message.clone()))
    };
    let now = ready(&status);
    if let Some((reason, message)) = &now
        && reason == INVALID
        && policy.status.as_ref().and_then(ready) != now
    {
        ctx.event(
            &*policy,
            EventType::Warning,
            INVALID,
            "Validate",
            message.clone(),
        )
        .await;
    }
    Ok(Action::requeue(RESYNC))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        duration::RetentionDuration,
        retention_policy::{CategoryRule, ExpiryAction},
    };

    fn policy(spec: RetentionPolicySpec, generation: i64) -> RetentionPolicy {
        let mut p = RetentionPolicy::new("met-bwv", spec);
        p.metadata.namespace = Some("bwv".into());
        p.metadata.generation = Some(generation);
        p
    }

    fn category(name: &str, retention: RetentionDuration) -> CategoryRule {
        CategoryRule {
            name: name.into(),
            retention,
            on_expiry: ExpiryAction::Delete,
            description: None,
        }
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn a_valid_policy_is_ready_for_its_generation() {
        let s = status_of(&policy(RetentionPolicySpec::default(), 3), at(1_000));
        assert_eq!(s.observed_generation, Some(3));
        let [ready] = s.conditions.as_slice() else {
            panic!("one condition: {s:?}");
        };
        assert_eq!(
            (
                ready.type_.as_str(),
                ready.status.as_str(),
                ready.reason.as_str()
            ),
            (READY, "True", VALID)
        );
        assert_eq!(ready.observed_generation, Some(3));
    }

    #[test]
    fn an_invalid_policy_is_not_ready_and_says_every_problem() {
        let spec = RetentionPolicySpec {
            categories: vec![
                category("domestic-abuse", RetentionDuration::years(6)),
                category("domestic-abuse", RetentionDuration::years(6)),
                category("short", RetentionDuration::hours(1)),
            ],
            ..RetentionPolicySpec::default()
        };
        let ready = readiness(&spec, Utc::now());
        assert_eq!((ready.status, ready.reason.as_str()), ("False", INVALID));
        assert!(ready.message.contains("listed twice"), "{}", ready.message);
        assert!(
            ready.message.contains("spec.categories[2]")
                && ready.message.contains("shorter than the safety floor"),
            "{}",
            ready.message
        );
        // the engine's refusal of the duplicate is said once, by the check that found it
        assert_eq!(
            ready.message.matches("domestic-abuse").count(),
            1,
            "{}",
            ready.message
        );
    }

    #[test]
    fn the_transition_time_stays_until_the_status_changes() {
        let mut p = policy(RetentionPolicySpec::default(), 1);
        p.status = Some(status_of(&p, at(1_000)));
        p.metadata.generation = Some(2);
        let again = status_of(&p, at(2_000));
        assert_eq!(again.observed_generation, Some(2));
        assert_eq!(
            again.conditions[0].last_transition_time,
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(1_000))
        );
        p.spec.categories = vec![category("x", RetentionDuration::hours(1))];
        let invalid = status_of(&p, at(3_000));
        assert_eq!(invalid.conditions[0].status, "False");
        assert_eq!(
            invalid.conditions[0].last_transition_time,
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(3_000))
        );
    }
}
