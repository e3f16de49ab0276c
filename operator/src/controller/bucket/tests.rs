//! Unit tests of the bucket pipeline's pure steps: one per refusal (what it reports,
//! what it publishes, when it looks again), the holds in force, and what a sweep's
//! report says.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::{TimeZone, Utc};
use kube::runtime::{controller::Action, events::EventType};

use super::{
    dereference::{Credentials, Dereferenced},
    fence::fenced,
    fixtures::{found, secret},
    next_wait,
    refusal::Refusal,
    report::{
        categories_condition, error_event, hold_conditions, sweep_conditions, sweep_events,
        tier_counts,
    },
    validate::{Grants, validate},
};
use crate::{
    api::{EvidenceBucket, LegalHold, RetentionPolicy, clip::Tier, regions::AllowedRegions},
    audit::AuditError,
    controller::{
        Error,
        status::{Cond, POLICY_RESOLVED, READY, RECONCILING, REGION_VERIFIED, STALLED},
        sweep::{self, SweepError, SweepOutcome, TierTotals},
    },
    storage::StorageError,
};

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
}

fn uk() -> AllowedRegions {
    AllowedRegions::new(Vec::<String>::new())
}

fn refused(eb: &EvidenceBucket, found: &Dereferenced) -> Refusal {
    validate(eb, found, &uk(), &Grants::default(), now()).expect_err("refused")
}

/// The condition of a type among `conds`: (status, reason).
fn cond<'a>(conds: &'a [Cond], type_: &str) -> (&'a str, &'a str) {
    let c = conds
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} in {conds:?}"));
    (c.status, c.reason.as_str())
}

const HOUR: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------------
// One test per refusal.
// ---------------------------------------------------------------------------------

#[test]
fn a_suspended_bucket_is_refused_quietly_until_it_changes() {
    let r = refused(&EvidenceBucket::test().suspended(), &found());
    assert_eq!(r, Refusal::Suspended);
    let conds = r.conditions("met-bwv");
    assert_eq!(cond(&conds, READY), ("False", "Suspended"));
    // A person's choice, not a stall.
    assert_eq!(cond(&conds, STALLED), ("False", "Suspended"));
    assert_eq!(cond(&conds, RECONCILING), ("False", "Suspended"));
    assert_eq!(r.event(), None);
    assert_eq!(r.requeue(HOUR), Action::await_change());
    assert!(!r.is_region_violation());
    // Suspension wins over everything else wrong with it.
    let r = refused(
        &EvidenceBucket::test().suspended().in_region("us-east-1"),
        &Dereferenced::default(),
    );
    assert_eq!(r, Refusal::Suspended);
}

#[test]
fn a_bucket_declaring_a_region_outside_the_uk_is_refused_before_anything_else() {
    // Even with no policy and no credentials: UK first.
    let r = refused(
        &EvidenceBucket::test().in_region("us-east-1"),
        &Dereferenced::default(),
    );
    assert!(
        matches!(&r, Refusal::RegionNotAllowed(m) if m.contains("declared region \"us-east-1\"")),
        "{r}"
    );
    assert!(r.is_region_violation());
    let conds = r.conditions("met-bwv");
    assert_eq!(cond(&conds, REGION_VERIFIED), ("False", "RegionNotAllowed"));
    assert_eq!(cond(&conds, STALLED), ("True", "RegionNotAllowed"));
    assert_eq!(cond(&conds, READY), ("False", "RegionNotAllowed"));
    let ev = r.event().unwrap();
    assert_eq!(
        (ev.type_, ev.reason, ev.action),
        (EventType::Warning, "RegionRefused", "Verify")
    );
    assert_eq!(r.requeue(HOUR), Action::requeue(HOUR));
    // An extra allowed region (an installation's own) is accepted.
    let with_extra = AllowedRegions::new(["us-east-1"]);
    assert!(
        validate(
            &EvidenceBucket::test().in_region("us-east-1"),
            &found(),
            &with_extra,
            &Grants::default(),
            now()
        )
        .is_ok()
    );
}

#[test]
fn a_bucket_at_an_aws_endpoint_outside_the_uk_is_refused() {
    let eb = EvidenceBucket::test().at_endpoint("https://s3.us-east-1.amazonaws.com");
    let r = refused(&eb, &found());
    assert!(
        matches!(&r, Refusal::RegionNotAllowed(m) if m.contains("us-east-1")),
        "{r}"
    );
    // A UK AWS endpoint, or a private one, is not.
    for ok in [
        "https://s3.eu-west-2.amazonaws.com",
        "http://127.0.0.1:9000",
    ] {
        assert!(
            validate(
                &EvidenceBucket::test().at_endpoint(ok),
                &found(),
                &uk(),
                &Grants::default(),
                now()
            )
            .is_ok(),
            "{ok}"
        );
    }
}

#[test]
fn a_missing_policy_is_refused_and_named() {
    let found = Dereferenced {
        policy: None,
        ..found()
    };
    let r = refused(&EvidenceBucket::test(), &found);
    assert_eq!(
        r,
        Refusal::PolicyNotFound {
            policy: "bwv-westminster/met-bwv".into()
        }
    );
    assert_eq!(
        r.to_string(),
        "RetentionPolicy bwv-westminster/met-bwv does not exist; no clip is touched until it does"
    );
    let conds = r.conditions("met-bwv");
    assert_eq!(cond(&conds, POLICY_RESOLVED), ("False", "PolicyNotFound"));
    assert_eq!(cond(&conds, STALLED), ("True", "PolicyNotFound"));
    assert_eq!(r.event().unwrap().reason, "PolicyNotFound");
    assert_eq!(r.requeue(HOUR), Action::requeue(Duration::from_secs(300)));
}

#[test]
fn a_policy_the_engine_cannot_use_is_refused_with_its_problem() {
    // Two categories the same but for case: the CRD cannot catch this, the engine does.
    let mut policy = RetentionPolicy::test();
    let mut twin = policy.spec.categories[0].clone();
    twin.name = twin.name.to_uppercase();
    policy.spec.categories.push(twin);
    let found = Dereferenced {
        policy: Some(policy),
        ..found()
    };
    let r = refused(&EvidenceBucket::test(), &found);
    let Refusal::PolicyInvalid { policy, problem } = &r else {
        panic!("{r:?}")
    };
    assert_eq!(policy, "bwv-westminster/met-bwv");
    assert!(problem.contains("more than once"), "{problem}");
    let conds = r.conditions("met-bwv");
    assert_eq!(cond(&conds, POLICY_RESOLVED), ("False", "PolicyInvalid"));
    assert_eq!(r.event().unwrap().reason, "PolicyInvalid");
    assert_eq!(r.requeue(HOUR), Action::requeue(Duration::from_secs(300)));
}

#[test]
fn a_missing_credentials_secret_is_refused_and_named() {
    let found = Dereferenced {
        credentials: Credentials::Missing,
        ..found()
    };
    let r = refused(&EvidenceBucket::test(), &found);
    assert_eq!(
        r.to_string(),
        "Secret bwv-westminster/westminster-s3 named in spec.credentialsSecretRef does not exist"
    );
    let conds = r.conditions("met-bwv");
    assert_eq!(cond(&conds, STALLED), ("True", "CredentialsNotFound"));
    // The policy was found: the status says so.
    assert_eq!(cond(&conds, POLICY_RESOLVED), ("True", "PolicyFound"));
    let ev = r.event().unwrap();
    assert_eq!((ev.reason, ev.action), ("CredentialsNotFound", "Configure"));
    assert_eq!(r.requeue(HOUR), Action::requeue(Duration::from_secs(60)));
    // A bucket that names no Secret uses the operator's own identity, where its
    // namespace is granted it.
    let none = Dereferenced {
        credentials: Credentials::NotNamed,
        ..self::found()
    };
    let v = validate(
        &EvidenceBucket::test().without_credentials(),
        &none,
        &uk(),
        &Grants {
            operator_identity: true,
            ..Grants::default()
        },
        now(),
    )
    .unwrap();
    assert!(v.config.credentials.is_none());
}

#[test]
fn a_bucket_without_a_secret_is_refused_where_the_operators_identity_is_not_granted() {
    let none = Dereferenced {
        credentials: Credentials::NotNamed,
        ..found()
    };
    let r = refused(&EvidenceBucket::test().without_credentials(), &none);
    assert!(
        matches!(&r, Refusal::CredentialsRequired { namespace } if namespace == "bwv-westminster")
    );
    assert!(
        r.to_string().contains("--operator-identity-namespaces"),
        "{r}"
    );
    let conds = r.conditions("met-bwv");
    assert_eq!(cond(&conds, STALLED), ("True", "CredentialsRequired"));
    assert_eq!(cond(&conds, READY), ("False", "CredentialsRequired"));
    let ev = r.event().unwrap();
    assert_eq!((ev.reason, ev.action), ("CredentialsRequired", "Configure"));
    // The grant is by namespace, or `*` for all.
    let granted = |list: &[&str], ns: &str| {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        Grants::for_namespace(&list, &[], ns).operator_identity
    };
    assert!(granted(&["bwv-westminster"], "bwv-westminster"));
    assert!(granted(&["*"], "bwv-camden"));
    assert!(!granted(&["bwv-westminster"], "bwv-camden"));
    assert!(!granted(&[], "bwv-westminster"));
    // An empty allow-list setting (the chart's default, `EVIDENCE_ALLOWED_ENDPOINTS=""`,
    // which clap reads as one empty entry) allows any host, as documented.
    let endpoints = Grants::for_namespace(&[], &["".to_string(), " ".to_string()], "ns").endpoints;
    assert!(endpoints.is_empty(), "{endpoints:?}");
}

#[test]
fn a_credentials_secret_without_a_key_is_refused_and_the_key_named() {
    for blank in [None, Some("  ")] {
        let mut s = secret();
        let data = s.data.as_mut().unwrap();
        match blank {
            None => data.remove("AWS_SECRET_ACCESS_KEY"),
            Some(v) => data.insert(
                "AWS_SECRET_ACCESS_KEY".into(),
                k8s_openapi::ByteString(v.as_bytes().to_vec()),
            ),
        };
        let found = Dereferenced {
            credentials: Credentials::Found(Box::new(s)),
            ..found()
        };
        let r = refused(&EvidenceBucket::test(), &found);
        assert_eq!(
            r,
            Refusal::CredentialsInvalid {
                secret: "bwv-westminster/westminster-s3".into(),
                key: "AWS_SECRET_ACCESS_KEY".into()
            }
        );
        assert_eq!(
            cond(&r.conditions("met-bwv"), STALLED),
            ("True", "CredentialsInvalid")
        );
        assert_eq!(r.event().unwrap().reason, "CredentialsInvalid");
        assert_eq!(r.requeue(HOUR), Action::requeue(Duration::from_secs(60)));
    }
    // Complete credentials reach the storage configuration, trimmed.
    let all = found();
    let v = validate(
        &EvidenceBucket::test(),
        &all,
        &uk(),
        &Grants::default(),
        now(),
    )
    .unwrap();
    let creds = v.config.credentials.unwrap();
    assert_eq!(creds.access_key_id, "REPLACE-ME");
}

#[test]
fn storage_proof_refusals_come_from_the_storage_errors() {
    let r = Refusal::from_storage(StorageError::ObjectLockMissing {
        bucket: "lock".into(),
    })
    .unwrap();
    assert!(matches!(r, Refusal::ObjectLockMissing(_)));
    assert!(
        r.to_string()
            .ends_with("nothing is moved until the legal-hold bucket has Object Lock"),
        "{r}"
    );
    let conds = r.conditions("met-bwv");
    assert_eq!(cond(&conds, STALLED), ("True", "ObjectLockMissing"));
    assert_eq!(cond(&conds, POLICY_RESOLVED), ("True", "PolicyFound"));
    assert_eq!(r.event().unwrap().reason, "ObjectLockMissing");
    assert_eq!(r.requeue(HOUR), Action::requeue(HOUR));

    let r = Refusal::from_storage(StorageError::RegionNotAllowed {
        bucket: "hot".into(),
        found: "us-east-1".into(),
        allowed: vec!["eu-west-2".into()],
    })
    .unwrap();
    assert!(r.is_region_violation());
    assert_eq!(
        cond(&r.conditions("met-bwv"), REGION_VERIFIED),
        ("False", "RegionNotAllowed")
    );

    // Credentials the store denies: named, retried every minute (a corrected Secret is
    // picked up then, without a restart).
    let r = Refusal::from_storage(StorageError::AccessDenied {
        op: "list_objects_v2",
        bucket: "hot".into(),
        message: "The request signature we calculated does not match".into(),
    })
    .unwrap();
    assert_eq!(r.reason(), "AccessDenied");
    assert!(r.to_string().contains("credentials Secret"), "{r}");
    assert_eq!(
        cond(&r.conditions("met-bwv"), STALLED),
        ("True", "AccessDenied")
    );
    assert_eq!(r.event().unwrap().reason, "AccessDenied");
    assert_eq!(r.requeue(HOUR), Action::requeue(Duration::from_secs(60)));

    // Hot and cool on the same keys of an unversioned bucket: refused, at the interval.
    let r = Refusal::from_storage(StorageError::SameKeyUnversioned {
        bucket: "unit".into(),
        status: "Suspended".into(),
    })
    .unwrap();
    assert_eq!(r.reason(), "SameKeyUnversioned");
    assert!(r.to_string().contains("enable versioning on unit"), "{r}");
    assert_eq!(
        cond(&r.conditions("met-bwv"), STALLED),
        ("True", "SameKeyUnversioned")
    );
    assert_eq!(r.event().unwrap().reason, "SameKeyUnversioned");
    assert_eq!(r.requeue(HOUR), Action::requeue(HOUR));

    // Any other storage error is an error, not a refusal.
    let other = StorageError::Config {
        name: "x".into(),
        reason: "y".into(),
    };
    assert!(Refusal::from_storage(other).is_err());
}

#[test]
fn a_clock_skew_stalls_the_bucket_with_a_warning_and_looks_again_soon() {
    let r =
        Refusal::ClockSkew("the local clock is at least 5m 0s ahead of the API server: local 2026-03-01T12:05:00Z, its Date 2026-03-01T12:00:00Z".into());
    assert_eq!(r.reason(), "ClockSkew");
    assert!(
        r.to_string()
            .ends_with("no clip is moved, held, released or deleted until the clocks agree"),
        "{r}"
    );
    let conds = r.conditions("met-bwv");
    assert_eq!(cond(&conds, READY), ("False", "ClockSkew"));
    assert_eq!(cond(&conds, STALLED), ("True", "ClockSkew"));
    assert_eq!(cond(&conds, POLICY_RESOLVED), ("True", "PolicyFound"));
    let ev = r.event().unwrap();
    assert_eq!((ev.type_, ev.reason), (EventType::Warning, "ClockSkew"));
    assert_eq!(r.requeue(HOUR), Action::requeue(Duration::from_secs(30)));
    assert!(!r.is_region_violation());
}

#[test]
fn an_audit_write_failure_stops_the_sweep_with_a_warning_event() {
    let e = Error::Sweep {
        bucket: "bwv-westminster/westminster".into(),
        source: SweepError::Audit(AuditError::Contended {
            bucket: "lock".into(),
            attempts: 5,
        }),
    };
    let (reason, action, note) = error_event(&e).unwrap();
    assert_eq!((reason, action), ("AuditWriteFailed", "Audit"));
    assert!(
        note.ends_with("the sweep stopped so that no action goes unrecorded"),
        "{note}"
    );
    assert_eq!(
        e.category(),
        AuditError::Contended {
            bucket: String::new(),
            attempts: 0
        }
        .category()
    );
    // Other failures raise no event of their own (the error policy counts them).
    let e = Error::Finalizer {
        hold: "ns/h".into(),
        message: "conflict".into(),
    };
    assert_eq!(error_event(&e), None);
    assert_eq!(e.category(), "kube_finalizer");
    assert!(Error::KUBE_CATEGORIES.contains(&e.category()));
}

// ---------------------------------------------------------------------------------
// What validation hands the sweep.
// ---------------------------------------------------------------------------------

#[test]
fn only_holds_with_the_release_finalizer_are_in_force_and_deleted_ones_are_released() {
    let found = Dereferenced {
        holds: vec![
            LegalHold::test().named("in-force"),
            LegalHold::test().named("just-applied").without_finalizer(),
            LegalHold::test().named("released").deleting(),
        ],
        ..found()
    };
    let v = validate(
        &EvidenceBucket::test(),
        &found,
        &uk(),
        &Grants::default(),
        now(),
    )
    .unwrap();
    let names =
        |hs: &[crate::engine::ActiveHold]| hs.iter().map(|h| h.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&v.active), ["in-force"]);
    assert_eq!(names(&v.releasing), ["released"]);
    assert_eq!(
        v.holds.len(),
        3,
        "every hold naming the bucket is recorded and counted"
    );
    assert!(v.releasing_planner(now()).is_some());

    // The inputs change when a hold gains its finalizer, so the sweep is not skipped.
    let before = validate(
        &EvidenceBucket::test(),
        &Dereferenced {
            holds: vec![LegalHold::test().without_finalizer()],
            ..self::found()
        },
        &uk(),
        &Grants::default(),
        now(),
    )
    .unwrap()
    .inputs;
    let after = validate(
        &EvidenceBucket::test(),
        &self::found(),
        &uk(),
        &Grants::default(),
        now(),
    )
    .unwrap()
    .inputs;
    assert_ne!(before, after);
}

// ---------------------------------------------------------------------------------
// What a sweep reports.
// ---------------------------------------------------------------------------------

fn outcome() -> SweepOutcome {
    let mut o = SweepOutcome::default();
    o.totals.insert(
        Tier::Hot,
        TierTotals {
            clips: 3,
            bytes: 300,
        },
    );
    o.totals.insert(
        Tier::Cool,
        TierTotals {
            clips: 2,
            bytes: 200,
        },
    );
    o.moved = 2;
    o.deleted = 1;
    o
}

#[test]
fn a_complete_sweep_is_ready_and_an_incomplete_one_is_reconciling() {
    let audit = Cond::yes("AuditTrail", "Empty", "no record yet");
    let eb = EvidenceBucket::test();
    let conds = sweep_conditions(&eb, "met-bwv", &outcome(), audit.clone());
    assert_eq!(cond(&conds, READY), ("True", "SweepComplete"));
    assert_eq!(cond(&conds, REGION_VERIFIED), ("True", "RegionVerified"));
    let ready = conds.iter().find(|c| c.type_ == READY).unwrap();
    assert!(
        ready
            .message
            .contains("3 hot, 2 cool, 0 in legal hold; last sweep moved 2"),
        "{}",
        ready.message
    );

    let mut failed = outcome();
    failed.failed = 1;
    failed.messages.push("delete a.mp4: SlowDown".into());
    let conds = sweep_conditions(&eb, "met-bwv", &failed, audit);
    assert_eq!(cond(&conds, READY), ("False", "SweepIncomplete"));
    assert_eq!(cond(&conds, RECONCILING), ("True", "RetryPending"));
    assert_eq!(cond(&conds, STALLED), ("False", "RetryPending"));
    let events = sweep_events(&failed);
    let reasons: Vec<&str> = events.iter().map(|e| e.1).collect();
    assert_eq!(reasons, ["Moved", "Deleted", "ActionsFailed"]);
    assert!(events[2].3.contains("SlowDown"));
    assert_eq!(events[2].0, EventType::Warning);

    let counts = tier_counts(&outcome());
    assert_eq!((counts.hot.clips, counts.hot.bytes), (3, 300));
    assert_eq!((counts.legal_hold.clips, counts.cool.bytes), (0, 200));
}

#[test]
fn the_next_sweep_is_due_at_the_interval_the_next_clip_or_soon_after_a_failure() {
    let min = Duration::from_secs(10);
    let o = SweepOutcome::default();
    assert_eq!(next_wait(HOUR, &o, now(), min), HOUR);
    let mut o = SweepOutcome::default();
    o.next_due = Some(now() + chrono::TimeDelta::minutes(5));
    assert_eq!(next_wait(HOUR, &o, now(), min), Duration::from_secs(300));
    o.next_due = Some(now() - chrono::TimeDelta::minutes(5));
    assert_eq!(
        next_wait(HOUR, &o, now(), min),
        min,
        "never sooner than min-requeue"
    );
    let mut o = SweepOutcome::default();
    o.failed = 1;
    assert_eq!(next_wait(HOUR, &o, now(), min), Duration::from_secs(30));
}

#[test]
fn unknown_categories_are_named_counted_and_capped() {
    let mut o = SweepOutcome::default();
    assert_eq!(categories_condition("met", &o).status, "True");
    o.unknown_categories = (0..sweep::MAX_UNKNOWN_CATEGORIES)
        .map(|i| (format!("cat-{i:02}"), 2))
        .collect();
    o.unknown_category_clips = 2 * sweep::MAX_UNKNOWN_CATEGORIES as u64 + 3;
    let c = categories_condition("met", &o);
    assert_eq!(
        (c.status, c.reason.as_str()),
        ("False", "UnknownCategories")
    );
    assert!(c.message.starts_with("23 clip(s)"), "{}", c.message);
    assert!(c.message.contains("\"cat-00\" (2)"), "{}", c.message);
    assert!(
        c.message
            .ends_with("and 3 more clip(s) in other categories"),
        "{}",
        c.message
    );
}

#[test]
fn a_hold_is_ready_only_when_every_selected_clip_is_held() {
    let hold = LegalHold::test();
    let name = "op-kestrel".to_string();
    let mut o = SweepOutcome::default();
    o.selected_by.insert(name.clone(), 3);
    o.held_by.insert(name.clone(), 3);
    let (conds, event) = hold_conditions(&hold, "westminster", &o);
    assert_eq!(cond(&conds, READY), ("True", "Held"));
    assert_eq!(event, None);

    // One failed: not ready, reconciling, a warning once.
    o.held_by.insert(name.clone(), 2);
    o.failed_by.insert(name.clone(), 1);
    let (conds, event) = hold_conditions(&hold, "westminster", &o);
    assert_eq!(cond(&conds, READY), ("False", "HoldIncomplete"));
    assert_eq!(cond(&conds, RECONCILING), ("True", "HoldIncomplete"));
    let ready = conds.iter().find(|c| c.type_ == READY).unwrap();
    assert!(
        ready.message.starts_with("2 of 3 selected clip(s)"),
        "{}",
        ready.message
    );
    assert_eq!(event.unwrap().0, "HoldIncomplete");

    // An interrupted sweep is not a complete hold either.
    let mut interrupted = SweepOutcome::default();
    interrupted.selected_by.insert(name.clone(), 1);
    interrupted.interrupted = true;
    let (conds, _) = hold_conditions(&hold, "westminster", &interrupted);
    assert_eq!(cond(&conds, READY), ("False", "HoldIncomplete"));

    // Nothing selected: said, with a hint, and the event only when the reason changes.
    let (conds, event) = hold_conditions(&hold, "westminster", &SweepOutcome::default());
    assert_eq!(cond(&conds, READY), ("False", "NoClipsSelected"));
    let (reason, note) = event.unwrap();
    assert_eq!(reason, "NoClipsSelected");
    assert!(note.contains("relative to the tier prefix"), "{note}");
    let mut seen = hold.clone();
    seen.status = Some(crate::api::legal_hold::LegalHoldStatus {
        conditions: crate::controller::status::merge_conditions(
            &[],
            &conds,
            Some(1),
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ),
        ..Default::default()
    });
    assert_eq!(
        hold_conditions(&seen, "westminster", &SweepOutcome::default()).1,
        None
    );
}

#[test]
fn the_fence_only_adds_holds_applied_since_the_sweep_started() {
    let start = vec![crate::engine::ActiveHold::from_legal_hold(&LegalHold::test()).unwrap()];
    // Nothing new: plan as planned.
    assert!(fenced(&start, "westminster", &[LegalHold::test()]).is_none());
    // Removed or being deleted since: still protecting (no change reported).
    assert!(fenced(&start, "westminster", &[]).is_none());
    assert!(fenced(&start, "westminster", &[LegalHold::test().deleting()]).is_none());
    // Another bucket's hold: not ours.
    let mut elsewhere = LegalHold::test().named("other");
    elsewhere.spec.bucket_ref.name = "camden".into();
    assert!(fenced(&start, "westminster", &[elsewhere]).is_none());

    // Applied since, without its finalizer yet: added, and only protecting.
    let f = fenced(
        &start,
        "westminster",
        &[
            LegalHold::test(),
            LegalHold::test().named("late").without_finalizer(),
        ],
    )
    .unwrap();
    let names: Vec<&str> = f.holds.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["op-kestrel", "late"]);
    assert!(f.pending.contains("late") && f.pending.len() == 1);
    // With its finalizer: a hold in force.
    let f = fenced(&start, "westminster", &[LegalHold::test().named("late")]).unwrap();
    assert!(f.pending.is_empty());

    // A widened selector: both the old and the new one protect.
    let mut wider = LegalHold::test();
    wider
        .spec
        .selector
        .keys
        .push("2026/03/02/BWV-0042/clip-0002.mp4".into());
    let f = fenced(&start, "westminster", &[wider]).unwrap();
    assert_eq!(f.holds.len(), 2);
    assert!(f.pending.is_empty(), "a hold in force stays in force");
}

#[test]
fn a_metadata_or_unlisted_endpoint_is_refused_before_any_request() {
    let r = refused(
        &EvidenceBucket::test().at_endpoint("http://169.254.169.254"),
        &found(),
    );
    assert_eq!(r.reason(), "EndpointNotAllowed");
    assert!(r.to_string().contains("always refused"), "{r}");
    let conds = r.conditions("met-bwv");
    assert_eq!(cond(&conds, STALLED), ("True", "EndpointNotAllowed"));
    assert_eq!(r.event().unwrap().reason, "EndpointNotAllowed");
    let grants = Grants {
        endpoints: vec!["minio.storage.svc".into()],
        ..Grants::default()
    };
    let eb = EvidenceBucket::test().at_endpoint("http://minio.other.svc:9000");
    let r = validate(&eb, &found(), &uk(), &grants, now()).expect_err("refused");
    assert!(r.to_string().contains("--allowed-endpoints"), "{r}");
    let eb = EvidenceBucket::test().at_endpoint("http://minio.storage.svc:9000");
    assert!(validate(&eb, &found(), &uk(), &grants, now()).is_ok());
}

/// An AccessRequest with an export location and the status a first answer gave it.
fn answered_request() -> crate::api::AccessRequest {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "evidence.bwv.io/v1alpha1", "kind": "AccessRequest",
        "metadata": { "name": "sar", "namespace": "ns", "generation": 1 },
        "spec": {
            "bucketRef": { "name": "b" }, "kind": "Disclosure", "reference": "CPS-1",
            "receivedAt": "2026-12-01T09:00:00Z", "selector": { "officer": "PC 1" },
            "export": { "bucket": "exports" },
        },
        "status": {
            "clipsFound": 1, "bytes": 10, "observedGeneration": 1,
            "manifest": { "location": "s3://exports/ns/sar/manifest-ab.json", "sha256": "ab",
                          "clips": 1, "bytes": 10, "writtenAt": "2026-12-03T12:00:00Z" },
            "conditions": [{ "type": "Ready", "status": "True", "reason": "ManifestWritten",
                             "message": "written", "lastTransitionTime": "2026-12-03T12:00:00Z" }],
        }
    }))
    .unwrap()
}

#[test]
fn a_request_not_answered_again_keeps_its_manifest_and_ready_condition() {
    use super::{export::Answer, report::request_status};
    let r = answered_request();
    let mut o = SweepOutcome::default();
    o.found_by.insert(
        "sar".into(),
        TierTotals {
            clips: 1,
            bytes: 10,
        },
    );
    let kept = request_status(&r, &o, None);
    let ready = kept.conditions.iter().find(|c| c.type_ == READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "ManifestWritten")
    );
    assert_eq!(kept.manifest, r.status.as_ref().unwrap().manifest);
    // A refused export says so, and keeps the last manifest's reference.
    let refused = request_status(
        &r,
        &o,
        Some(&Answer::NotWritten {
            reason: "ExportRefused",
            message: "not in the UK".into(),
        }),
    );
    let ready = refused
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "ExportRefused")
    );
}
