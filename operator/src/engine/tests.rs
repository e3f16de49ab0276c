//! Unit and property tests of the planner. The property tests generate policies, holds
//! and clips (well-formed and malformed) and check every rule of the engine against an
//! independent, simpler statement of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::{prelude::*, sample::select};

use super::*;
use crate::api::{
    AccessSelector,
    clip::{
        Clip, TAG_CAMERA, TAG_CASE, TAG_CATEGORY, TAG_OFFICER, TAG_RECORDED_AT, TAG_RETAIN_UNTIL,
        TAG_UPLOADED_AT, Tag, Tier,
        tag_limits::{MAX_KEY_CHARS, MAX_TAGS, MAX_VALUE_CHARS},
    },
    duration::{DurationUnit, RetentionDuration},
    legal_hold::{CameraWindow, HoldSelector},
    retention_policy::{
        CategoryRule, ExpiryAction, RetentionClock, RetentionPolicySpec, RetentionRule,
    },
};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn met_policy() -> RetentionPolicySpec {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/retentionpolicy-met.yaml"
    ))
    .unwrap();
    let value: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    serde_yaml::from_value(value["spec"].clone()).unwrap()
}

fn clip(key: &str, tier: Tier, uploaded: &str, tags: &[(&str, &str)]) -> Clip {
    Clip {
        key: key.to_string(),
        tier,
        version_id: None,
        size: 1000,
        storage_class: None,
        last_modified: t(uploaded),
        tags: tags.iter().map(|(k, v)| Tag::new(*k, *v)).collect(),
        sha256: None,
        uploaded_at: None,
        legal_hold: false,
        plain_headers: None,
    }
}

// ---------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------

#[test]
fn a_clip_kept_for_review_leaves_the_hot_tier_like_any_kept_clip() {
    // Met: mopi-group-3 is reviewed after 6 years; coolAfter 30 days.
    let policy = met_policy();
    let now = t("2033-03-10T12:00:00Z");
    let planner = Planner::new(&policy, &[], now).unwrap();
    let recorded = "2026-03-01T10:00:00Z";
    let mut c = clip(
        "old-g3.mp4",
        Tier::Hot,
        recorded,
        &[(TAG_CATEGORY, "mopi-group-3"), (TAG_RECORDED_AT, recorded)],
    );
    let d = planner.plan_clip(&c);
    assert_eq!(d.action, Action::MoveToCool, "{d}");
    assert!(matches!(d.reason, Reason::ReviewDueCooling { .. }), "{d}");
    assert!(d.reason.to_string().contains("kept for review by a person"));
    c.tier = Tier::Cool;
    let d = planner.plan_clip(&c);
    assert_eq!(d.action, Action::FlagForReview, "{d}");
}

#[test]
fn a_retain_until_keeps_a_clip_past_its_category_and_only_lengthens() {
    let policy = met_policy();
    let now = t("2026-03-10T12:00:00Z");
    let planner = Planner::new(&policy, &[], now).unwrap();
    let recorded = "2026-01-01T10:00:00Z"; // non-evidential, 31 days: expired
    let tagged = |until: &str| {
        clip(
            "closed-case.mp4",
            Tier::Cool,
            recorded,
            &[
                (TAG_CATEGORY, "non-evidential"),
                (TAG_RECORDED_AT, recorded),
                (TAG_RETAIN_UNTIL, until),
            ],
        )
    };
    let kept = tagged("2032-03-10T12:00:00Z");
    let (d, due) = planner.plan_with_due(&kept);
    assert_eq!(d.action, Action::Keep, "{d}");
    assert!(
        matches!(d.reason, Reason::RetainedAfterRelease { .. }),
        "{d}"
    );
    assert_eq!(due, Some(t("2032-03-10T12:00:00Z")));
    // Passed: the category's rule applies again.
    let passed = tagged("2026-03-01T00:00:00Z");
    assert_eq!(planner.plan_clip(&passed).action, Action::Delete);
    // Not a time: kept and flagged, never deleted.
    let broken = tagged("when the case closes");
    assert_eq!(planner.plan_clip(&broken).action, Action::FlagMalformed);
}

#[test]
fn a_preserved_clip_is_kept_as_it_is_and_a_legal_hold_still_takes_it() {
    let policy = met_policy();
    let now = t("2026-03-10T12:00:00Z");
    let sar = vec![Preserve {
        name: "sar-0001".into(),
        reference: "SAR/2026/0001".into(),
        selector: AccessSelector {
            keys: vec!["due.mp4".into(), "held.mp4".into()],
            ..AccessSelector::default()
        },
    }];
    let old = "2025-01-01T00:00:00Z";
    let due = clip(
        "due.mp4",
        Tier::Hot,
        old,
        &[(TAG_CATEGORY, "non-evidential"), (TAG_RECORDED_AT, old)],
    );
    let planner = Planner::new(&policy, &[], now).unwrap().preserving(&sar);
    let d = planner.plan_clip(&due);
    assert_eq!(d.action, Action::Keep, "{d}");
    assert_eq!(
        d.reason,
        Reason::Preserved {
            requests: vec!["sar-0001".into()],
            instead: Action::Delete
        }
    );
    assert!(
        d.reason
            .to_string()
            .contains("preserved by access request sar-0001")
    );
    // Not released from the legal-hold tier while preserved (a release rewrites it).
    let mut held = due.clone();
    held.key = "held.mp4".into();
    held.tier = Tier::LegalHold;
    held.legal_hold = true;
    assert_eq!(planner.plan_clip(&held).action, Action::Keep);
    // A legal hold still moves it into the legal-hold tier, and a re-planned chunk
    // keeps the preserves.
    let kestrel = vec![ActiveHold {
        name: "op-kestrel".into(),
        case_reference: "01/123456/26".into(),
        selector: HoldSelector {
            keys: vec!["due.mp4".into()],
            ..HoldSelector::default()
        },
        retain_after_release: None,
    }];
    let with_hold = planner.with_holds(&kestrel).unwrap();
    assert_eq!(with_hold.plan_clip(&due).action, Action::MoveToLegalHold);
    assert_eq!(
        planner.with_holds(&[]).unwrap().plan_clip(&due).action,
        Action::Keep
    );
}

#[test]
fn met_policy_scenarios() {
    let policy = met_policy();
    let now = t("2026-03-10T12:00:00Z");
    let planner = Planner::new(&policy, &[], now).unwrap();
    let plan = |c: &Clip| planner.plan_clip(c);

    // Non-evidential, recorded 2026-01-02, expired 2026-02-02: deleted, with a reason
    // a person can read.
    let d = plan(&clip(
        "a.mp4",
        Tier::Hot,
        "2026-01-02T12:00:00Z",
        &[
            (TAG_CATEGORY, "non-evidential"),
            (TAG_RECORDED_AT, "2026-01-02T10:00:00Z"),
        ],
    ));
    assert_eq!(d.action, Action::Delete);
    assert_eq!(
        d.reason.to_string(),
        "category non-evidential, retention 31d from recorded-at 2026-01-02T10:00:00Z expired 2026-02-02T10:00:00Z"
    );

    // No category: the default rule (31 days), same outcome.
    let d = plan(&clip(
        "b.mp4",
        Tier::Hot,
        "2026-01-02T12:00:00Z",
        &[(TAG_RECORDED_AT, "2026-01-02T10:00:00Z")],
    ));
    assert_eq!(d.action, Action::Delete);
    assert!(
        d.reason
            .to_string()
            .starts_with("no category (default rule)")
    );
    assert_eq!(d.reason.unknown_category(), None, "untagged is not unknown");

    // A misspelt category: the default rule, and the decision names the tag.
    let d = plan(&clip(
        "b2.mp4",
        Tier::Hot,
        "2026-01-02T12:00:00Z",
        &[
            (TAG_RECORDED_AT, "2026-01-02T10:00:00Z"),
            (TAG_CATEGORY, "domestic-abuze"),
        ],
    ));
    assert_eq!(d.action, Action::Delete);
    assert_eq!(d.reason.unknown_category(), Some("domestic-abuze"));

    // Domestic abuse (any case), 40 days old: kept, cooled.
    let d = plan(&clip(
        "c.mp4",
        Tier::Hot,
        "2026-01-29T12:00:00Z",
        &[
            (TAG_CATEGORY, " Domestic-Abuse "),
            (TAG_RECORDED_AT, "2026-01-29T10:00:00Z"),
        ],
    ));
    assert_eq!(d.action, Action::MoveToCool, "{d}");
    // ... and once cool, kept until 2036.
    let mut cooled = clip(
        "c.mp4",
        Tier::Cool,
        "2026-03-10T11:00:00Z",
        &[
            (TAG_CATEGORY, "domestic-abuse"),
            (TAG_RECORDED_AT, "2026-01-29T10:00:00Z"),
        ],
    );
    let d = plan(&cooled);
    assert_eq!(d.action, Action::Keep);
    assert!(
        d.reason
            .to_string()
            .ends_with("runs until 2036-01-29T10:00:00Z"),
        "{}",
        d.reason
    );
    assert_eq!(planner.next_due(&cooled), Some(t("2036-01-29T10:00:00Z")));

    // Stop and search recorded 7 years ago: flagged for review, not deleted.
    cooled.tags = vec![
        Tag::new(TAG_CATEGORY, "stop-and-search"),
        Tag::new(TAG_RECORDED_AT, "2019-03-01T10:00:00Z"),
    ];
    assert_eq!(plan(&cooled).action, Action::FlagForReview);

    // Murder: Forever.
    cooled.tags = vec![
        Tag::new(TAG_CATEGORY, "murder"),
        Tag::new(TAG_RECORDED_AT, "1990-01-01T00:00:00Z"),
    ];
    let d = plan(&cooled);
    assert_eq!(d.action, Action::Keep);
    assert_eq!(planner.next_due(&cooled), None);

    // Recorded 40 days ago (so retention ran out) but uploaded an hour ago: the
    // safety floor keeps it until it is a day old by its upload time.
    let late = clip(
        "d.mp4",
        Tier::Hot,
        "2026-03-10T11:00:00Z",
        &[(TAG_RECORDED_AT, "2026-01-29T10:00:00Z")],
    );
    let d = plan(&late);
    assert_eq!(d.action, Action::Keep);
    assert!(
        matches!(d.reason, Reason::SafetyFloor { .. }),
        "{}",
        d.reason
    );
    assert_eq!(planner.next_due(&late), Some(t("2026-03-11T11:00:00Z")));

    // Malformed recorded-at: kept and flagged.
    let d = plan(&clip(
        "e.mp4",
        Tier::Hot,
        "2025-01-01T00:00:00Z",
        &[(TAG_RECORDED_AT, "yesterday")],
    ));
    assert_eq!(d.action, Action::FlagMalformed);
    assert!(d.reason.to_string().contains("not an RFC 3339 time"));
}

#[test]
fn holds_pin_and_release() {
    let policy = met_policy();
    let now = t("2026-03-10T12:00:00Z");
    let holds = vec![ActiveHold {
        name: "op-kestrel".into(),
        case_reference: "01/123456/26".into(),
        selector: HoldSelector {
            keys: vec!["k1".into()],
            match_tags: BTreeMap::from([(TAG_CASE.to_string(), "01/123456/26".to_string())]),
            camera_window: Some(CameraWindow {
                camera: "BWV-0042".into(),
                from: t("2026-03-01T13:00:00Z"),
                to: t("2026-03-01T16:30:00Z"),
            }),
        },
        retain_after_release: None,
    }];
    let planner = Planner::new(&policy, &holds, now).unwrap();
    let old = "2025-01-01T00:00:00Z";
    // Expired non-evidential clip named by key: moved to legal hold, not deleted.
    let mut c = clip("k1", Tier::Hot, old, &[(TAG_RECORDED_AT, old)]);
    let d = planner.plan_clip(&c);
    assert_eq!(d.action, Action::MoveToLegalHold);
    assert_eq!(d.holds, ["op-kestrel"]);
    c.tier = Tier::LegalHold;
    assert_eq!(planner.plan_clip(&c).action, Action::Hold);
    c.legal_hold = true;
    assert_eq!(planner.plan_clip(&c).action, Action::Keep);
    // By case tag, by camera window, and by camera with no recording time.
    let by_case = clip("k2", Tier::Cool, old, &[(TAG_CASE, "01/123456/26")]);
    assert_eq!(planner.plan_clip(&by_case).action, Action::MoveToLegalHold);
    let in_window = clip(
        "k3",
        Tier::Hot,
        old,
        &[
            (TAG_CAMERA, "BWV-0042"),
            (TAG_RECORDED_AT, "2026-03-01T14:00:00Z"),
        ],
    );
    assert_eq!(
        planner.plan_clip(&in_window).action,
        Action::MoveToLegalHold
    );
    let outside = clip(
        "k4",
        Tier::Hot,
        old,
        &[
            (TAG_CAMERA, "BWV-0042"),
            (TAG_RECORDED_AT, "2026-01-01T17:00:00Z"),
        ],
    );
    assert_eq!(planner.plan_clip(&outside).action, Action::Delete);
    let unknown_time = clip("k5", Tier::Hot, old, &[(TAG_CAMERA, "BWV-0042")]);
    assert_eq!(
        planner.plan_clip(&unknown_time).action,
        Action::MoveToLegalHold
    );

    // Without the hold: released, then ordinary retention applies.
    let planner = Planner::new(&policy, &[], now).unwrap();
    let d = planner.plan_clip(&c);
    assert_eq!(d.action, Action::Release);
    assert_eq!(
        d.reason.to_string(),
        "in the legal-hold tier, S3 legal hold on, but no active legal hold selects it"
    );
    // S3 hold on in the hot tier without any hold of ours: left alone.
    let mut locked = clip("k6", Tier::Hot, old, &[(TAG_RECORDED_AT, old)]);
    locked.legal_hold = true;
    assert_eq!(planner.plan_clip(&locked).action, Action::Keep);
}

#[test]
fn upload_clock_outside_hot_counts_from_the_record_and_a_tag_only_lengthens_it() {
    let policy = RetentionPolicySpec {
        retention_clock: RetentionClock::Upload,
        ..RetentionPolicySpec::default()
    };
    let now = t("2026-03-10T12:00:00Z");
    let planner = Planner::new(&policy, &[], now).unwrap();
    let in_cool = |last_modified: &str, record: Option<&str>, tags: &[(&str, &str)]| Clip {
        uploaded_at: record.map(t),
        ..clip("a", Tier::Cool, last_modified, tags)
    };
    // Copied to cool yesterday; uploaded 40 days ago per the mover's record: expired.
    let c = in_cool("2026-03-09T12:00:00Z", Some("2026-01-29T12:00:00Z"), &[]);
    assert_eq!(planner.plan_clip(&c).action, Action::Delete);
    // Without a record, LastModified (later) counts: kept.
    let c = in_cool("2026-03-09T12:00:00Z", None, &[]);
    assert_eq!(planner.plan_clip(&c).action, Action::Keep);
    // An uploaded-at tag earlier than what the store vouches for is not believed.
    let c = in_cool(
        "2026-03-09T12:00:00Z",
        None,
        &[(TAG_UPLOADED_AT, "2026-01-29T12:00:00Z")],
    );
    assert_eq!(planner.plan_clip(&c).action, Action::Keep);
    // A tag later than the record lengthens the clock (31 days from the tag).
    let c = in_cool(
        "2026-03-09T12:00:00Z",
        Some("2026-01-29T12:00:00Z"),
        &[(TAG_UPLOADED_AT, "2026-03-01T12:00:00Z")],
    );
    let d = planner.plan_clip(&c);
    assert_eq!(d.action, Action::Keep);
    assert_eq!(planner.next_due(&c), Some(t("2026-04-01T12:00:00Z")));
}

#[test]
fn an_old_uploaded_at_tag_does_not_shorten_the_safety_floor() {
    // Expired 40 days after recording by its category, so only the 24 h floor keeps it.
    let policy = met_policy();
    let now = t("2026-03-10T12:00:00Z");
    let planner = Planner::new(&policy, &[], now).unwrap();
    let tags = [
        (TAG_CATEGORY, "non-evidential"),
        (TAG_RECORDED_AT, "2026-01-29T12:00:00Z"),
        (TAG_UPLOADED_AT, "2026-01-29T12:00:00Z"),
    ];
    // Uploaded 2 h ago, moved to cool 1 h ago: the record says 2 h; the tag's 40 days
    // are not believed. Kept until 24 h after the recorded upload.
    let cool = Clip {
        uploaded_at: Some(t("2026-03-10T10:00:00Z")),
        ..clip("a", Tier::Cool, "2026-03-10T11:00:00Z", &tags)
    };
    let d = planner.plan_clip(&cool);
    assert_eq!(d.action, Action::Keep, "{d}");
    assert_eq!(planner.next_due(&cool), Some(t("2026-03-11T10:00:00Z")));
    // In hot, an upload-time record in the metadata (the uploader wrote it) is not
    // believed either: LastModified, 2 h ago, counts.
    let hot = Clip {
        uploaded_at: Some(t("2026-01-29T12:00:00Z")),
        ..clip("a", Tier::Hot, "2026-03-10T10:00:00Z", &tags)
    };
    assert_eq!(planner.plan_clip(&hot).action, Action::Keep);
    assert_eq!(planner.next_due(&hot), Some(t("2026-03-11T10:00:00Z")));
    // A move does not restart the floor: recorded 30 h ago, copied 1 h ago: deleted.
    let moved = Clip {
        uploaded_at: Some(t("2026-03-09T06:00:00Z")),
        ..clip("a", Tier::Cool, "2026-03-10T11:00:00Z", &tags[..2])
    };
    assert_eq!(planner.plan_clip(&moved).action, Action::Delete);
    // A tag later than the record lengthens the floor: uploaded-at 2 h ago, kept.
    let later = Clip {
        tags: vec![
            Tag::new(TAG_CATEGORY, "non-evidential"),
            Tag::new(TAG_RECORDED_AT, "2026-01-29T12:00:00Z"),
            Tag::new(TAG_UPLOADED_AT, "2026-03-10T10:00:00Z"),
        ],
        ..moved
    };
    assert_eq!(planner.plan_clip(&later).action, Action::Keep);
    assert_eq!(planner.next_due(&later), Some(t("2026-03-11T10:00:00Z")));
}

#[test]
fn duplicate_categories_are_refused() {
    let mut policy = met_policy();
    policy.categories.push(CategoryRule {
        name: "Murder".into(),
        retention: RetentionDuration::days(1),
        on_expiry: ExpiryAction::Delete,
        description: None,
    });
    let err = Planner::new(&policy, &[], Utc::now()).unwrap_err();
    assert_eq!(
        err,
        EngineError::DuplicateCategory {
            name: "Murder".into()
        }
    );
}

#[test]
fn summary_counts() {
    let policy = met_policy();
    let planner = Planner::new(&policy, &[], t("2026-03-10T12:00:00Z")).unwrap();
    let mut s = PlanSummary::default();
    for c in [
        clip("a", Tier::Hot, "2025-01-01T00:00:00Z", &[]),
        clip("b", Tier::Hot, "2026-03-10T00:00:00Z", &[]),
        clip("c", Tier::LegalHold, "2026-03-10T00:00:00Z", &[]),
    ] {
        s.add(&planner.plan_clip(&c));
    }
    assert_eq!(
        (s.delete, s.keep, s.release, s.total(), s.changes()),
        (1, 1, 1, 3, 2)
    );
    assert_eq!(s.to_string(), "1 keep, 1 release, 1 delete");
}

// ---------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------

const CATEGORIES: [&str; 6] = [
    "non-evidential",
    "domestic-abuse",
    "murder",
    "stop-and-search",
    "use-of-force",
    "theft",
];
const CAMERAS: [&str; 3] = ["cam-1", "cam-2", "cam-3"];
const CASES: [&str; 3] = ["case-1", "case-2", "case-3"];

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
}

fn duration() -> impl Strategy<Value = RetentionDuration> {
    prop_oneof![
        1 => Just(RetentionDuration::Forever),
        6 => (1u32..100, select(vec![DurationUnit::Hours, DurationUnit::Days, DurationUnit::Weeks, DurationUnit::Months, DurationUnit::Years]))
            .prop_map(|(amount, unit)| RetentionDuration::Finite { amount, unit }),
    ]
}

fn expiry() -> impl Strategy<Value = ExpiryAction> {
    select(vec![ExpiryAction::Delete, ExpiryAction::Review])
}

fn policy() -> impl Strategy<Value = RetentionPolicySpec> {
    (
        (duration(), expiry()),
        proptest::sample::subsequence(CATEGORIES.to_vec(), 0..=CATEGORIES.len()),
        proptest::collection::vec((duration(), expiry()), CATEGORIES.len()),
        duration(),
        select(vec![RetentionClock::RecordedAt, RetentionClock::Upload]),
        prop_oneof![
            (1u32..72).prop_map(RetentionDuration::hours),
            (1u32..10).prop_map(RetentionDuration::days)
        ],
        prop_oneof![
            Just(None),
            (1u32..10).prop_map(|d| Some(RetentionDuration::days(d)))
        ],
    )
        .prop_map(
            |((dr, de), names, rules, cool_after, clock, minimum_age, restore_window)| {
                RetentionPolicySpec {
                    default: RetentionRule {
                        retention: dr,
                        on_expiry: de,
                    },
                    categories: names
                        .into_iter()
                        .zip(rules)
                        .map(|(name, (retention, on_expiry))| CategoryRule {
                            name: name.to_string(),
                            retention,
                            on_expiry,
                            description: None,
                        })
                        .collect(),
                    cool_after,
                    retention_clock: clock,
                    minimum_age,
                    restore_window,
                }
            },
        )
}

/// A time within about 12 years before `base()`, or a little after it.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (-400_000_000i64..5_000_000).prop_map(|s| base() + TimeDelta::seconds(s))
}

/// A time around the planning times of the tests: a little before `base()` to a few
/// years after (a `retain-until` that may or may not have passed).
fn base_offset() -> impl Strategy<Value = DateTime<Utc>> {
    (-10_000_000i64..100_000_000).prop_map(|s| base() + TimeDelta::seconds(s))
}

fn hold() -> impl Strategy<Value = ActiveHold> {
    (
        "[a-z]{1,6}",
        proptest::collection::vec(0usize..20, 0..4),
        proptest::option::of(select(CASES.to_vec())),
        proptest::option::of((select(CAMERAS.to_vec()), instant(), 0i64..100_000_000)),
    )
        .prop_map(|(name, keys, case, window)| ActiveHold {
            name,
            case_reference: "case".into(),
            selector: HoldSelector {
                keys: keys.into_iter().map(|k| format!("clip-{k}")).collect(),
                match_tags: case
                    .map(|c| BTreeMap::from([(TAG_CASE.to_string(), c.to_string())]))
                    .unwrap_or_default(),
                camera_window: window.map(|(camera, from, len)| CameraWindow {
                    camera: camera.to_string(),
                    from,
                    to: from + TimeDelta::seconds(len),
                }),
            },
            retain_after_release: None,
        })
}

/// An open access request: some of keys, a case, a camera and a recording window (all
/// of which must hold).
fn preserve() -> impl Strategy<Value = Preserve> {
    (
        "[a-z]{1,6}",
        proptest::collection::vec(0usize..20, 0..4),
        proptest::option::of(select(CASES.to_vec())),
        proptest::option::of(select(CAMERAS.to_vec())),
        proptest::option::of((instant(), 0i64..100_000_000)),
    )
        .prop_filter(
            "a request selects by something",
            |(_, keys, case, camera, window)| {
                !keys.is_empty() || case.is_some() || camera.is_some() || window.is_some()
            },
        )
        .prop_map(|(name, keys, case, camera, window)| Preserve {
            name,
            reference: "SAR".into(),
            selector: AccessSelector {
                keys: keys.into_iter().map(|k| format!("clip-{k}")).collect(),
                case: case.map(str::to_string),
                camera: camera.map(str::to_string),
                recorded_after: window.map(|(from, _)| from),
                recorded_before: window.map(|(from, len)| from + TimeDelta::seconds(len)),
                ..AccessSelector::default()
            },
        })
}

/// The requests that cover `c` (all their criteria hold), re-derived for the tests.
fn oracle_preserved_by(preserves: &[Preserve], c: &Clip) -> Vec<String> {
    let has = |k: &str, v: &str| c.tags.iter().any(|t| t.key == k && t.value.trim() == v);
    preserves
        .iter()
        .filter(|p| {
            let s = &p.selector;
            let times: Vec<Option<DateTime<Utc>>> = c
                .tags
                .iter()
                .filter(|t| t.key == TAG_RECORDED_AT)
                .map(|t| {
                    DateTime::parse_from_rfc3339(t.value.trim())
                        .ok()
                        .map(|d| d.with_timezone(&Utc))
                })
                .collect();
            let window = (s.recorded_after.is_none() && s.recorded_before.is_none())
                || times.is_empty()
                || times.iter().any(Option::is_none)
                || times.iter().flatten().any(|t| {
                    s.recorded_after.is_none_or(|a| a <= *t)
                        && s.recorded_before.is_none_or(|b| *t <= b)
                });
            (s.keys.is_empty() || s.keys.contains(&c.key))
                && s.case.as_deref().is_none_or(|v| has(TAG_CASE, v))
                && s.camera.as_deref().is_none_or(|v| has(TAG_CAMERA, v))
                && window
        })
        .map(|p| p.name.clone())
        .collect()
}

/// Well-formed tags most of the time; sometimes broken in one of the ways S3 or a
/// careless uploader can break them.
fn tags() -> impl Strategy<Value = Vec<Tag>> {
    let category = proptest::option::of(prop_oneof![
        select(CATEGORIES.to_vec()).prop_map(str::to_string),
        select(CATEGORIES.to_vec()).prop_map(|c| format!(" {} ", c.to_uppercase())),
        Just("unknown-category".to_string()),
    ]);
    let recorded = proptest::option::of(prop_oneof![
        8 => instant().prop_map(|t| t.to_rfc3339()),
        1 => Just("not-a-time".to_string()),
    ]);
    let uploaded = proptest::option::of(instant().prop_map(|t| t.to_rfc3339()));
    let retain_until = proptest::option::weighted(
        0.2,
        prop_oneof![
            8 => (base_offset()).prop_map(|t| t.to_rfc3339()),
            1 => Just("when the case closes".to_string()),
        ],
    );
    (
        category,
        recorded,
        proptest::option::of(select(CASES.to_vec())),
        proptest::option::of(select(CAMERAS.to_vec())),
        uploaded,
        retain_until,
        0u8..12,
    )
        .prop_map(
            |(category, recorded, case, camera, uploaded, retain_until, damage)| {
                let mut tags = Vec::new();
                if let Some(c) = category {
                    tags.push(Tag::new(TAG_CATEGORY, c));
                }
                if let Some(r) = recorded {
                    tags.push(Tag::new(TAG_RECORDED_AT, r));
                }
                if let Some(c) = case {
                    tags.push(Tag::new(TAG_CASE, c));
                }
                if let Some(c) = camera {
                    tags.push(Tag::new(TAG_CAMERA, c));
                }
                if let Some(u) = uploaded {
                    tags.push(Tag::new(TAG_UPLOADED_AT, u));
                }
                if let Some(r) = retain_until {
                    tags.push(Tag::new(TAG_RETAIN_UNTIL, r));
                }
                match damage {
                    0 => tags.push(Tag::new(TAG_CATEGORY, "murder")), // maybe a duplicate
                    1 => tags.push(Tag::new(TAG_OFFICER, "x".repeat(MAX_VALUE_CHARS + 1))),
                    2 => tags.push(Tag::new("k".repeat(MAX_KEY_CHARS + 1), "v")),
                    3 => {
                        for i in 0..MAX_TAGS {
                            tags.push(Tag::new(format!("other/{i}"), "v"));
                        }
                    }
                    _ => {}
                }
                tags
            },
        )
}

fn a_clip() -> impl Strategy<Value = Clip> {
    (
        0usize..20,
        select(vec![Tier::Hot, Tier::Cool, Tier::LegalHold]),
        any::<bool>(),
        instant(),
        tags(),
        proptest::option::of(instant()),
    )
        .prop_map(
            |(k, tier, legal_hold, last_modified, tags, uploaded_at)| Clip {
                key: format!("clip-{k}"),
                tier,
                version_id: None,
                size: 1,
                storage_class: None,
                last_modified,
                tags,
                sha256: None,
                uploaded_at,
                legal_hold,
                plain_headers: None,
            },
        )
}

fn now() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..10_000_000).prop_map(|s| base() + TimeDelta::seconds(s))
}

// ---------------------------------------------------------------------------------
// Oracles: the rules restated simply, independently of the planner's code.
// ---------------------------------------------------------------------------------

fn malformed(c: &Clip) -> bool {
    let bad_time = |key: &str| {
        c.tags
            .iter()
            .any(|t| t.key == key && DateTime::parse_from_rfc3339(t.value.trim()).is_err())
    };
    c.tags.len() > MAX_TAGS
        || c.tags.iter().any(|t| {
            t.key.chars().count() > MAX_KEY_CHARS || t.value.chars().count() > MAX_VALUE_CHARS
        })
        || c.tags
            .iter()
            .enumerate()
            .any(|(i, t)| c.tags[..i].iter().any(|u| u.key == t.key))
        || bad_time(TAG_RECORDED_AT)
        || bad_time(TAG_UPLOADED_AT)
        || bad_time(TAG_RETAIN_UNTIL)
}

fn tag_time(c: &Clip, key: &str) -> Option<DateTime<Utc>> {
    c.tags.iter().find(|t| t.key == key).map(|t| {
        DateTime::parse_from_rfc3339(t.value.trim())
            .unwrap()
            .with_timezone(&Utc)
    })
}

/// The upload time the store vouches for: in hot `LastModified`, elsewhere the mover's
/// record, else `LastModified`.
fn oracle_vouched_upload(c: &Clip) -> DateTime<Utc> {
    match (c.tier, c.uploaded_at) {
        (Tier::Hot, _) | (_, None) => c.last_modified,
        (_, Some(r)) => r,
    }
}

/// The earliest the clip can be said to have been uploaded (never before this): what
/// the store vouches for, or a later uploaded-at tag.
fn oracle_upload(c: &Clip) -> DateTime<Utc> {
    let vouched = oracle_vouched_upload(c);
    tag_time(c, TAG_UPLOADED_AT).map_or(vouched, |u| u.max(vouched))
}

fn oracle_rule(p: &RetentionPolicySpec, c: &Clip) -> (RetentionDuration, ExpiryAction) {
    let cat = c
        .tags
        .iter()
        .find(|t| t.key == TAG_CATEGORY)
        .map(|t| t.value.trim().to_lowercase());
    p.categories
        .iter()
        .find(|r| Some(r.name.clone()) == cat)
        .map(|r| (r.retention, r.on_expiry))
        .unwrap_or((p.default.retention, p.default.on_expiry))
}

/// The names of the holds that select a clip, by the documented selector semantics.
fn oracle_selected_by(holds: &[ActiveHold], c: &Clip) -> Vec<String> {
    let has = |k: &str, v: &str| c.tags.iter().any(|t| t.key == k && t.value == v);
    let mut names: Vec<String> = holds
        .iter()
        .filter(|h| {
            let s = &h.selector;
            let by_key = s.keys.contains(&c.key);
            let by_tags = !s.match_tags.is_empty() && s.match_tags.iter().all(|(k, v)| has(k, v));
            let by_window = s.camera_window.as_ref().is_some_and(|w| {
                let times: Vec<Option<DateTime<Utc>>> = c
                    .tags
                    .iter()
                    .filter(|t| t.key == TAG_RECORDED_AT)
                    .map(|t| {
                        DateTime::parse_from_rfc3339(&t.value)
                            .ok()
                            .map(|d| d.with_timezone(&Utc))
                    })
                    .collect();
                has(TAG_CAMERA, &w.camera)
                    && (times.is_empty()
                        || times
                            .iter()
                            .any(|t| t.is_none_or(|t| w.from <= t && t <= w.to)))
            });
            by_key || by_tags || by_window
        })
        .map(|h| h.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// What the executor does with a decision, as far as the planner can see.
fn apply(c: &Clip, d: &Decision, now: DateTime<Utc>) -> Option<Clip> {
    let mut c = c.clone();
    let moved = |c: &mut Clip| {
        // The mover records the upload time on the copy: out of hot the LastModified,
        // from elsewhere the record carried forward (or LastModified, without one).
        c.uploaded_at = Some(oracle_vouched_upload(c));
        c.last_modified = now;
    };
    match d.action {
        Action::Keep | Action::FlagForReview | Action::FlagMalformed => {}
        Action::MoveToCool => {
            moved(&mut c);
            c.tier = Tier::Cool;
        }
        Action::MoveToLegalHold => {
            moved(&mut c);
            c.tier = Tier::LegalHold;
            c.legal_hold = true;
        }
        Action::Hold => c.legal_hold = true,
        Action::Release => {
            moved(&mut c);
            c.tier = Tier::Cool;
            c.legal_hold = false;
        }
        Action::Delete => return None,
    }
    Some(c)
}

// ---------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// A held clip (S3 hold on, or selected by an active hold) is never deleted, and a
    /// selected clip in the legal-hold tier never leaves it.
    #[test]
    fn held_clips_are_never_deleted_nor_released(
        p in policy(), holds in proptest::collection::vec(hold(), 0..4),
        clips in proptest::collection::vec(a_clip(), 1..40), now in now(),
    ) {
        let planner = Planner::new(&p, &holds, now).unwrap();
        for c in &clips {
            let d = planner.plan_clip(c);
            prop_assert_eq!(&d.holds, &oracle_selected_by(&holds, c), "{}", d);
            let selected = !d.holds.is_empty();
            if selected || c.legal_hold {
                prop_assert_ne!(d.action, Action::Delete, "{}", d);
            }
            if selected {
                prop_assert!(matches!(d.action, Action::Keep | Action::Hold | Action::MoveToLegalHold), "{}", d);
                if c.tier == Tier::LegalHold {
                    prop_assert!(matches!(d.action, Action::Keep | Action::Hold), "{}", d);
                }
            }
        }
    }

    /// Deletion happens only when retention under a Delete rule has run out and the
    /// clip is at least minimumAge old by its recording time and its upload time.
    #[test]
    fn nothing_unexpired_or_young_is_deleted(
        p in policy(), holds in proptest::collection::vec(hold(), 0..3),
        clips in proptest::collection::vec(a_clip(), 1..40), now in now(),
    ) {
        let planner = Planner::new(&p, &holds, now).unwrap();
        for c in &clips {
            let d = planner.plan_clip(c);
            if d.action != Action::Delete {
                continue;
            }
            prop_assert!(!malformed(c));
            prop_assert!(!c.legal_hold && c.tier != Tier::LegalHold && d.holds.is_empty());
            let (retention, on_expiry) = oracle_rule(&p, c);
            prop_assert_eq!(on_expiry, ExpiryAction::Delete);
            let recorded = tag_time(c, TAG_RECORDED_AT);
            let upload = oracle_upload(c);
            let start = match p.retention_clock {
                RetentionClock::RecordedAt => recorded.unwrap_or(upload),
                RetentionClock::Upload => upload,
            };
            let expiry = retention.after(start);
            prop_assert!(expiry.is_some_and(|e| e <= now), "{} deleted before expiry {:?}", d, expiry);
            if let Some(until) = tag_time(c, TAG_RETAIN_UNTIL) {
                prop_assert!(until <= now, "{} deleted before its retain-until {}", d, until);
            }
            prop_assert!(p.minimum_age.after(upload).is_some_and(|t| t <= now), "{} younger than minimumAge by upload", d);
            if let Some(r) = recorded {
                prop_assert!(p.minimum_age.after(r).is_some_and(|t| t <= now), "{} younger than minimumAge by recording", d);
            }
        }
    }

    /// Whatever uploaded-at tag anyone sets, a clip is deleted only when it is at least
    /// minimumAge old by the upload time the store vouches for (hot: LastModified;
    /// elsewhere: the mover's record, else LastModified), and it would be deleted
    /// without the tag too. Times are drawn near `now`, where the floor decides.
    #[test]
    fn an_uploaded_at_tag_never_brings_a_deletion_forward(
        p in policy(), c in a_clip(), now in now(),
        lm_ago in 0i64..1_000_000, record_before in proptest::option::of(0i64..1_000_000),
        tag_ago in proptest::option::of(-100_000i64..100_000_000),
    ) {
        let mut c = c;
        c.last_modified = now - TimeDelta::seconds(lm_ago);
        c.uploaded_at = record_before.map(|b| c.last_modified - TimeDelta::seconds(b));
        c.tags.retain(|t| t.key != TAG_UPLOADED_AT);
        let untagged = c.clone();
        if let Some(ago) = tag_ago {
            c.tags.push(Tag::new(TAG_UPLOADED_AT, (now - TimeDelta::seconds(ago)).to_rfc3339()));
        }
        let planner = Planner::new(&p, &[], now).unwrap();
        let d = planner.plan_clip(&c);
        if d.action == Action::Delete {
            let vouched = oracle_vouched_upload(&c);
            prop_assert!(p.minimum_age.after(vouched).is_some_and(|t| t <= now), "{} younger than minimumAge by {}", d, vouched);
            let without = planner.plan_clip(&untagged);
            prop_assert_eq!(without.action, Action::Delete, "{} but without the tag {}", d, without);
        }
    }

    /// Malformed metadata: kept and flagged (unless a hold decides), never deleted.
    #[test]
    fn malformed_clips_are_flagged_never_deleted(
        p in policy(), holds in proptest::collection::vec(hold(), 0..3),
        clips in proptest::collection::vec(a_clip(), 1..40), now in now(),
    ) {
        let planner = Planner::new(&p, &holds, now).unwrap();
        for c in clips.iter().filter(|c| malformed(c)) {
            let d = planner.plan_clip(c);
            prop_assert_ne!(d.action, Action::Delete);
            if d.holds.is_empty() && !c.legal_hold && c.tier != Tier::LegalHold {
                prop_assert_eq!(d.action, Action::FlagMalformed, "{}", d);
            }
        }
    }

    /// Apply the plan, plan again: nothing more to do. A released clip may then fall
    /// due under its ordinary rule once; a third plan is quiet.
    #[test]
    fn planning_is_idempotent(
        p in policy(), holds in proptest::collection::vec(hold(), 0..3),
        clips in proptest::collection::vec(a_clip(), 1..40), now in now(),
    ) {
        let planner = Planner::new(&p, &holds, now).unwrap();
        for c in &clips {
            let first = planner.plan_clip(c);
            let Some(after) = apply(c, &first, now) else { continue };
            let second = planner.plan_clip(&after);
            if first.action == Action::Release {
                prop_assert!(!matches!(second.action, Action::MoveToCool | Action::MoveToLegalHold | Action::Hold | Action::Release), "{} then {}", first, second);
                if let Some(after2) = apply(&after, &second, now) {
                    let third = planner.plan_clip(&after2);
                    prop_assert!(!third.action.changes_storage(), "{} then {} then {}", first, second, third);
                }
            } else {
                prop_assert!(!second.action.changes_storage(), "{} then {}", first, second);
            }
            if !first.action.changes_storage() {
                prop_assert_eq!(&first, &second);
            }
        }
    }

    /// A clip's decision does not depend on where it comes in the stream.
    #[test]
    fn order_of_the_stream_does_not_matter(
        p in policy(), holds in proptest::collection::vec(hold(), 0..3),
        clips in proptest::collection::vec(a_clip(), 1..40).prop_shuffle(), now in now(),
        seed in any::<u64>(),
    ) {
        let planner = Planner::new(&p, &holds, now).unwrap();
        let forward: Vec<Decision> = clips.iter().map(|c| planner.plan_clip(c)).collect();
        // a deterministic permutation from the seed
        let mut order: Vec<usize> = (0..clips.len()).collect();
        let mut s = seed | 1;
        for i in (1..order.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            order.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let fresh = Planner::new(&p, &holds, now).unwrap();
        for i in order {
            prop_assert_eq!(&fresh.plan_clip(&clips[i]), &forward[i]);
        }
    }

    /// `next_due` is when the decision next changes: the same decision at any moment
    /// before it, a different one at it.
    #[test]
    fn next_due_is_when_the_decision_changes(
        p in policy(), clips in proptest::collection::vec(a_clip(), 1..20), now in now(),
        frac in 0.0f64..1.0,
    ) {
        let planner = Planner::new(&p, &[], now).unwrap();
        for c in &clips {
            let d = planner.plan_clip(c);
            prop_assert_eq!(planner.plan_with_due(c), (d.clone(), planner.next_due(c)));
            let Some(due) = planner.next_due(c) else { continue };
            prop_assert!(due > now, "{} due {} not after now {}", d, due, now);
            let span = (due - now).num_seconds();
            let before = now + TimeDelta::seconds(((span - 1) as f64 * frac) as i64);
            let at_before = Planner::new(&p, &[], before).unwrap().plan_clip(c);
            prop_assert_eq!(at_before.action, d.action);
            let at_due = Planner::new(&p, &[], due).unwrap().plan_clip(c);
            prop_assert_ne!(at_due, d);
        }
    }

    /// A clip an open request preserves is neither deleted nor moved (a move rewrites
    /// it), nor released from the legal-hold tier; only a legal hold may still take it
    /// into the legal-hold tier.
    #[test]
    fn preserved_clips_are_neither_deleted_nor_moved(
        p in policy(), holds in proptest::collection::vec(hold(), 0..3),
        preserves in proptest::collection::vec(preserve(), 1..3),
        clips in proptest::collection::vec(a_clip(), 1..40), now in now(),
    ) {
        let planner = Planner::new(&p, &holds, now).unwrap().preserving(&preserves);
        let unpreserved = Planner::new(&p, &holds, now).unwrap();
        for c in &clips {
            let d = planner.plan_clip(c);
            let preserved = !oracle_preserved_by(&preserves, c).is_empty();
            let by: Vec<String> = planner.preserved_by(c).into_iter().map(str::to_string).collect();
            let mut expected = oracle_preserved_by(&preserves, c);
            expected.sort();
            expected.dedup();
            prop_assert_eq!(by, expected);
            if preserved {
                prop_assert!(
                    matches!(d.action, Action::Keep | Action::Hold | Action::MoveToLegalHold | Action::FlagForReview | Action::FlagMalformed),
                    "preserved, yet {}", d
                );
            } else {
                prop_assert_eq!(&d, &unpreserved.plan_clip(c));
            }
        }
    }

    /// Whatever happens between sweeps (time passing, the policy replaced, preserves
    /// opened and closed, holds released with a retention after release), no sweep
    /// deletes a clip before the retention of the policy then in force has run out,
    /// before its retain-until, or while it is preserved.
    #[test]
    fn no_sequence_of_events_deletes_a_clip_early(
        policies in proptest::collection::vec(policy(), 1..4),
        start in now(),
        c in a_clip(),
        steps in proptest::collection::vec((0i64..50_000_000, 0usize..4, any::<bool>(), proptest::option::of(1u32..10)), 1..12),
    ) {
        let mut clip = c;
        let mut now = start;
        let preserve = Preserve {
            name: "sar-1".into(),
            reference: "SAR/1".into(),
            selector: AccessSelector { keys: vec![clip.key.clone()], ..AccessSelector::default() },
        };
        let preserves = [preserve];
        for (advance, which, preserved, released_for_years) in steps {
            now += TimeDelta::seconds(advance);
            let p = &policies[which % policies.len()];
            // A hold released now with retainAfterRelease: the operator tags the clip
            // (keeping a later retain-until) before it leaves the legal-hold tier.
            if let Some(years) = released_for_years {
                let until = RetentionDuration::Finite { amount: years, unit: DurationUnit::Years }.after(now).unwrap();
                if !malformed(&clip) {
                    let later = tag_time(&clip, TAG_RETAIN_UNTIL).map_or(until, |t| t.max(until));
                    clip.tags.retain(|t| t.key != TAG_RETAIN_UNTIL);
                    clip.tags.push(Tag::new(TAG_RETAIN_UNTIL, later.to_rfc3339()));
                }
            }
            let planner = if preserved {
                Planner::new(p, &[], now).unwrap().preserving(&preserves)
            } else {
                Planner::new(p, &[], now).unwrap()
            };
            let d = planner.plan_clip(&clip);
            if d.action == Action::Delete {
                prop_assert!(!preserved, "deleted while preserved: {}", d);
                if let Some(until) = tag_time(&clip, TAG_RETAIN_UNTIL) {
                    prop_assert!(until <= now, "{} deleted before its retain-until {}", d, until);
                }
                let (retention, _) = oracle_rule(p, &clip);
                let start = match p.retention_clock {
                    RetentionClock::RecordedAt => tag_time(&clip, TAG_RECORDED_AT).unwrap_or(oracle_upload(&clip)),
                    RetentionClock::Upload => oracle_upload(&clip),
                };
                prop_assert!(retention.after(start).is_some_and(|e| e <= now), "{} deleted before its retention ran out", d);
            }
            match apply(&clip, &d, now) {
                Some(next) => clip = next,
                None => break,
            }
        }
    }

    /// With restore windows: whatever happens between sweeps (time passing, the policy
    /// replaced, with or without a window, preserves opened and closed, holds released
    /// with a retention after release, the clip restored), a clip is soft-deleted only
    /// when a deletion would be allowed, and purged only when, at the purge, the
    /// retention of the policy then in force has run out, its retain-until has passed,
    /// it is not preserved, and that policy's window has passed since its deletion.
    #[test]
    fn no_sequence_of_events_purges_a_clip_early(
        policies in proptest::collection::vec(policy(), 1..4),
        start in now(),
        c in a_clip(),
        steps in proptest::collection::vec(
            (0i64..50_000_000, 0usize..4, any::<bool>(), proptest::option::of(1u32..10), any::<bool>()),
            1..16,
        ),
    ) {
        let mut clip = c;
        let mut now = start;
        let mut deleted_at: Option<DateTime<Utc>> = None;
        let preserve = Preserve {
            name: "sar-1".into(),
            reference: "SAR/1".into(),
            selector: AccessSelector { keys: vec![clip.key.clone()], ..AccessSelector::default() },
        };
        let preserves = [preserve];
        let early = |p: &RetentionPolicySpec, clip: &Clip, now: DateTime<Utc>| -> Option<String> {
            if let Some(until) = tag_time(clip, TAG_RETAIN_UNTIL)
                && until > now
            {
                return Some(format!("before its retain-until {until}"));
            }
            let (retention, _) = oracle_rule(p, clip);
            let start = match p.retention_clock {
                RetentionClock::RecordedAt => tag_time(clip, TAG_RECORDED_AT).unwrap_or(oracle_upload(clip)),
                RetentionClock::Upload => oracle_upload(clip),
            };
            retention.after(start).is_none_or(|e| e > now).then(|| "before its retention ran out".to_string())
        };
        for (advance, which, preserved, released_for_years, restore) in steps {
            now += TimeDelta::seconds(advance);
            let p = &policies[which % policies.len()];
            let planner = if preserved {
                Planner::new(p, &[], now).unwrap().preserving(&preserves)
            } else {
                Planner::new(p, &[], now).unwrap()
            };
            if let Some(at) = deleted_at {
                if restore {
                    // A ClipRestore: the same version, the same tags, live again.
                    deleted_at = None;
                    continue;
                }
                match planner.plan_purge(&clip, at) {
                    PurgeDecision::Purge { .. } => {
                        prop_assert!(!preserved, "purged while preserved");
                        prop_assert!(!clip.legal_hold, "purged under an S3 legal hold");
                        if let Some(why) = early(p, &clip, now) {
                            prop_assert!(false, "purged {why}");
                        }
                        let window = p.restore_window.and_then(|w| w.after(at));
                        prop_assert!(window.is_some_and(|end| end <= now), "purged inside its restore window");
                        break;
                    }
                    PurgeDecision::Restorable { until } => prop_assert!(until > now),
                    PurgeDecision::Kept { .. } => {}
                }
                continue;
            }
            if let Some(years) = released_for_years {
                let until = RetentionDuration::Finite { amount: years, unit: DurationUnit::Years }.after(now).unwrap();
                if !malformed(&clip) {
                    let later = tag_time(&clip, TAG_RETAIN_UNTIL).map_or(until, |t| t.max(until));
                    clip.tags.retain(|t| t.key != TAG_RETAIN_UNTIL);
                    clip.tags.push(Tag::new(TAG_RETAIN_UNTIL, later.to_rfc3339()));
                }
            }
            let d = planner.plan_clip(&clip);
            if d.action == Action::Delete {
                prop_assert!(!preserved, "deleted while preserved: {}", d);
                if let Some(why) = early(p, &clip, now) {
                    prop_assert!(false, "{} deleted {why}", d);
                }
                if p.restore_window.is_some() {
                    deleted_at = Some(now);
                    continue;
                }
                break;
            }
            match apply(&clip, &d, now) {
                Some(next) => clip = next,
                None => break,
            }
        }
    }
}
