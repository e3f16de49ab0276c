//! Unit tests of one sweep: the in-memory tier store, a real [`Planner`] over the Met's
//! example policy (`deploy/examples/retentionpolicy-met.yaml`), and a recording audit
//! sink. Each test seeds clips, sweeps, and checks what the store holds afterwards, what
//! the outcome counted and what the audit trail recorded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashSet, sync::Arc};

use chrono::TimeDelta;
use futures::FutureExt;

use super::*;
use crate::{
    api::{
        clip::{META_SHA256, TAG_CATEGORY, TAG_RECORDED_AT, Tag},
        duration::RetentionDuration,
        legal_hold::HoldSelector,
        retention_policy::RetentionPolicySpec,
    },
    audit::recording::RecordingSink,
    engine::{ActiveHold, Preserve},
    storage::{
        FaultHook, MoveStep, StepContext,
        conformance::{clip_data, sha_hex, stop_after},
        memory::{MemoryObject, MemoryOp, MemoryTierStore},
    },
};

const SIZE: usize = 1000;
const HOLD: &str = "op-kestrel";
const CASE: &str = "01/123456/26";

/// The moment every sweep here plans for.
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-10T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn days_ago(days: i64) -> DateTime<Utc> {
    now() - TimeDelta::days(days)
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

/// The hold of case `CASE`, selecting clips by key.
fn hold(keys: &[&str]) -> ActiveHold {
    ActiveHold {
        name: HOLD.into(),
        case_reference: CASE.into(),
        selector: HoldSelector {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            ..HoldSelector::default()
        },
        retain_after_release: None,
    }
}

/// A store whose copies are stamped with `now()`.
fn store() -> MemoryTierStore {
    let store = MemoryTierStore::new();
    store.set_clock(now());
    store
}

/// Seed a clip of `category` (none: untagged) recorded (and uploaded) `age` days ago;
/// its content.
fn seed(
    store: &MemoryTierStore,
    tier: Tier,
    key: &str,
    category: Option<&str>,
    age: i64,
) -> Vec<u8> {
    let data = clip_data(key, SIZE);
    let mut object = MemoryObject::new(data.clone())
        .last_modified(days_ago(age))
        .tag(TAG_RECORDED_AT, days_ago(age).to_rfc3339());
    if let Some(c) = category {
        object = object.tag(TAG_CATEGORY, c);
    }
    store.put_object(tier, key, object);
    data
}

/// One sweep's inputs besides the store.
struct Sweeper {
    policy: RetentionPolicySpec,
    holds: Vec<ActiveHold>,
    releasing: Vec<ActiveHold>,
    opts: SweepOptions,
    draining: CancellationToken,
    flagged_before: HashSet<String>,
    sink: RecordingSink,
    fence: Option<Box<dyn HoldFence>>,
}

impl Sweeper {
    fn new() -> Self {
        Sweeper {
            policy: met_policy(),
            holds: Vec::new(),
            releasing: Vec::new(),
            opts: SweepOptions {
                concurrency: 4,
                skip: Vec::new(),
                integrity_sample: 0,
                catalogue: None,
                inputs: String::new(),
            },
            draining: CancellationToken::new(),
            flagged_before: HashSet::new(),
            sink: RecordingSink::new(),
            fence: None,
        }
    }

    async fn run(&self, store: &dyn TierStore) -> Result<SweepOutcome, SweepError> {
        self.run_at(store, now()).await
    }

    /// A sweep planning for `at`.
    async fn run_at(
        &self,
        store: &dyn TierStore,
        at: DateTime<Utc>,
    ) -> Result<SweepOutcome, SweepError> {
        let planner = Planner::new(&self.policy, &self.holds, at).unwrap();
        let releasing = (!self.releasing.is_empty())
            .then(|| Planner::new(&self.policy, &self.releasing, at).unwrap());
        let audit = SweepAudit {
            sink: &self.sink,
            cases: self
                .holds
                .iter()
                .chain(&self.releasing)
                .map(|h| (h.name.clone(), h.case_reference.clone()))
                .collect(),
            releasing: releasing.as_ref(),
            flagged_before: &self.flagged_before,
        };
        sweep(
            store,
            &planner,
            &self.opts,
            &self.draining,
            &audit,
            self.fence.as_deref(),
        )
        .await
    }

    /// The recorded outcomes about `key` (write-ahead intents left out: see
    /// [`Sweeper::intents`]).
    fn recorded(&self, key: &str) -> Vec<Entry> {
        self.about(key)
            .into_iter()
            .filter(|e| e.action != AuditAction::Intended)
            .collect()
    }

    /// The write-ahead intents recorded about `key`.
    fn intents(&self, key: &str) -> Vec<Entry> {
        self.about(key)
            .into_iter()
            .filter(|e| e.action == AuditAction::Intended)
            .collect()
    }

    /// Every record about `key`, in order.
    fn about(&self, key: &str) -> Vec<Entry> {
        self.sink
            .entries()
            .into_iter()
            .filter(|e| e.clip.as_ref().is_some_and(|c| c.key == key))
            .collect()
    }
}

fn totals(out: &SweepOutcome, tier: Tier) -> i64 {
    out.totals.get(&tier).map_or(0, |t| t.clips)
}

#[tokio::test]
async fn an_expired_non_evidential_clip_is_deleted_and_recorded() {
    let store = store();
    seed(&store, Tier::Hot, "old.mp4", Some("non-evidential"), 40);
    seed(&store, Tier::Hot, "new.mp4", Some("non-evidential"), 2);
    let s = Sweeper::new();
    let out = s.run(&store).await.unwrap();

    assert_eq!((out.deleted, out.failed, out.moved), (1, 0, 0));
    assert_eq!(store.keys(Tier::Hot), ["new.mp4"]);
    assert!(store.stored_versions(Tier::Hot, "old.mp4").is_empty());
    let entries = s.sink.entries();
    assert_eq!(entries.len(), 2, "{entries:?}");
    // Write-ahead: the intent, in a batch of its own, before the outcome.
    assert_eq!(s.sink.calls(), 2);
    let intent = &entries[0];
    assert_eq!(intent.action, AuditAction::Intended);
    assert!(
        intent
            .reason
            .starts_with("delete intended: category non-evidential"),
        "{}",
        intent.reason
    );
    let e = &entries[1];
    assert_eq!(e.action, AuditAction::Deleted);
    assert_eq!(e.clip.as_ref().unwrap().key, "old.mp4");
    assert_eq!((e.from_tier, e.to_tier), (Some(Tier::Hot), None));
    assert!(
        e.reason.contains("category non-evidential, retention 31d") && e.reason.contains("expired"),
        "{}",
        e.reason
    );
    assert_eq!(out.audit_records, 2, "the intent and the outcome");
    assert_eq!(out.audit_head.as_ref().map(|(batch, _)| *batch), Some(2));
    assert_eq!(
        out.totals[&Tier::Hot],
        TierTotals {
            clips: 1,
            bytes: SIZE as i64
        }
    );
    // The kept clip cools 30 days after it was recorded.
    assert_eq!(out.next_due, Some(days_ago(2) + TimeDelta::days(30)));
}

#[tokio::test]
async fn an_evidential_clip_moves_from_hot_to_cool_with_its_copy_verified() {
    let store = store();
    let data = seed(&store, Tier::Hot, "da.mp4", Some("domestic-abuse"), 40);
    let s = Sweeper::new();
    let out = s.run(&store).await.unwrap();

    assert_eq!((out.moved, out.failed, out.deleted), (1, 0, 0));
    assert!(store.keys(Tier::Hot).is_empty());
    let cool = store.stored_versions(Tier::Cool, "da.mp4");
    assert_eq!(cool.len(), 1);
    assert_eq!(cool[0].sha256, sha_hex(&data));
    assert_eq!(
        cool[0].metadata.get(META_SHA256),
        Some(&sha_hex(&data)),
        "the checksum is recorded on the copy"
    );
    assert!(
        cool[0]
            .tags
            .iter()
            .any(|t| t.key == TAG_CATEGORY && t.value == "domestic-abuse")
    );
    let [e] = &s.recorded("da.mp4")[..] else {
        panic!("one record: {:?}", s.sink.entries())
    };
    assert_eq!(e.action, AuditAction::Moved);
    assert_eq!(
        (e.from_tier, e.to_tier),
        (Some(Tier::Hot), Some(Tier::Cool))
    );
    assert_eq!(e.sha256.as_deref(), Some(sha_hex(&data).as_str()));
    assert!(
        e.reason.contains("copy SHA-256 verified (s3_checksum)")
            && e.reason.contains("source version deleted"),
        "{}",
        e.reason
    );
    // Listed again in cool (after hot), and kept there.
    assert_eq!((totals(&out, Tier::Hot), totals(&out, Tier::Cool)), (0, 1));
}

#[tokio::test]
async fn a_copy_that_fails_verification_keeps_its_source() {
    let store = store();
    // Its recorded SHA-256 is not its content's (altered at rest after it was recorded).
    let data = clip_data("bad.mp4", SIZE);
    store.put_object(
        Tier::Hot,
        "bad.mp4",
        MemoryObject::new(data.clone())
            .recorded_as(sha_hex(b"the original"))
            .last_modified(days_ago(40))
            .tag(TAG_RECORDED_AT, days_ago(40).to_rfc3339())
            .tag(TAG_CATEGORY, "domestic-abuse"),
    );
    let s = Sweeper::new();
    let out = s.run(&store).await.unwrap();

    assert_eq!((out.moved, out.failed, out.checksum_mismatches), (0, 1, 1));
    let hot = store.stored_versions(Tier::Hot, "bad.mp4");
    assert!(
        hot.len() == 1 && hot[0].sha256 == sha_hex(&data),
        "source kept"
    );
    assert!(out.messages[0].contains("bad.mp4") && out.messages[0].contains("checksum mismatch"));
    let recorded = s.recorded("bad.mp4");
    assert_eq!(recorded[0].action, AuditAction::Failed);
    assert!(
        recorded[0].reason.contains("checksum mismatch"),
        "{}",
        recorded[0].reason
    );
}

#[tokio::test]
async fn a_clip_selected_by_an_active_hold_is_moved_into_legal_hold_held_and_never_deleted() {
    let store = store();
    // Expired non-evidential: without the hold it would be deleted.
    let data = seed(&store, Tier::Hot, "k1.mp4", Some("non-evidential"), 40);
    // Already in the legal-hold tier, but its S3 hold is off.
    store.put_object(
        Tier::LegalHold,
        "k2.mp4",
        MemoryObject::new(clip_data("k2.mp4", SIZE)).last_modified(days_ago(40)),
    );
    let mut s = Sweeper::new();
    s.holds = vec![hold(&["k1.mp4", "k2.mp4"])];
    let out = s.run(&store).await.unwrap();

    assert_eq!((out.held, out.deleted, out.failed), (2, 0, 0));
    assert!(store.keys(Tier::Hot).is_empty());
    let lh = store.stored_versions(Tier::LegalHold, "k1.mp4");
    assert_eq!(lh.len(), 1);
    assert!(lh[0].legal_hold && lh[0].sha256 == sha_hex(&data));
    assert!(store.stored_versions(Tier::LegalHold, "k2.mp4")[0].legal_hold);
    for key in ["k1.mp4", "k2.mp4"] {
        let [e] = &s.recorded(key)[..] else {
            panic!("{key}: one record: {:?}", s.sink.entries())
        };
        assert_eq!(e.action, AuditAction::Held, "{key}");
        assert_eq!(e.to_tier, Some(Tier::LegalHold));
        assert_eq!(e.holds, [HOLD], "{key}");
        assert_eq!(e.cases, [CASE], "{key}");
    }
    assert_eq!(out.held_by.get(HOLD), Some(&2));
    assert_eq!(
        out.selected_by.get(HOLD),
        Some(&2),
        "each selected clip counted once"
    );
    assert!(out.failed_by.is_empty());

    // The next sweep finds both held: nothing to do, nothing recorded.
    let calls = s.sink.calls();
    let again = s.run(&store).await.unwrap();
    assert_eq!((again.held, again.deleted, again.moved), (0, 0, 0));
    assert_eq!(again.held_by.get(HOLD), Some(&2));
    assert_eq!(again.selected_by.get(HOLD), Some(&2));
    assert_eq!(s.sink.calls(), calls);
    assert_eq!(store.keys(Tier::LegalHold), ["k1.mp4", "k2.mp4"]);
}

#[tokio::test]
async fn a_released_hold_sends_its_clips_back_to_cool() {
    let store = store();
    let data = clip_data("r.mp4", SIZE);
    store.put_object(
        Tier::LegalHold,
        "r.mp4",
        MemoryObject::new(data.clone())
            .held()
            .last_modified(days_ago(40))
            .tag(TAG_RECORDED_AT, days_ago(40).to_rfc3339())
            .tag(TAG_CATEGORY, "domestic-abuse"),
    );
    let mut s = Sweeper::new();
    // The hold is being deleted: no active hold, the releasing planner sees it.
    s.releasing = vec![hold(&["r.mp4"])];
    let out = s.run(&store).await.unwrap();

    assert_eq!((out.released, out.failed), (1, 0));
    assert!(store.stored_versions(Tier::LegalHold, "r.mp4").is_empty());
    let cool = store.stored_versions(Tier::Cool, "r.mp4");
    assert_eq!(cool.len(), 1);
    assert!(!cool[0].legal_hold && cool[0].sha256 == sha_hex(&data));
    let [e] = &s.recorded("r.mp4")[..] else {
        panic!("one record: {:?}", s.sink.entries())
    };
    assert_eq!(e.action, AuditAction::Released);
    assert_eq!(
        (e.from_tier, e.to_tier),
        (Some(Tier::LegalHold), Some(Tier::Cool))
    );
    assert_eq!(e.holds, [HOLD]);
    assert_eq!(e.cases, [CASE]);
    assert_eq!(
        (totals(&out, Tier::LegalHold), totals(&out, Tier::Cool)),
        (0, 1)
    );
}

#[tokio::test]
async fn a_failed_delete_is_counted_and_the_clip_stays_for_the_next_sweep() {
    let store = store();
    seed(&store, Tier::Hot, "a.mp4", None, 40);
    seed(&store, Tier::Hot, "b.mp4", None, 40);
    store.fail_next(MemoryOp::Delete, 1);
    let s = Sweeper::new();
    let out = s.run(&store).await.unwrap();

    assert_eq!((out.deleted, out.failed), (1, 1));
    assert_eq!(store.keys(Tier::Hot), ["a.mp4"], "the failed one stays");
    assert!(out.messages[0].contains("a.mp4"), "{:?}", out.messages);
    assert_eq!(s.recorded("a.mp4")[0].action, AuditAction::Failed);
    assert_eq!(s.recorded("b.mp4")[0].action, AuditAction::Deleted);
    assert_eq!(totals(&out, Tier::Hot), 1);

    let again = s.run(&store).await.unwrap();
    assert_eq!((again.deleted, again.failed), (1, 0));
    assert!(store.keys(Tier::Hot).is_empty());
}

#[tokio::test]
async fn a_move_stopped_part_way_keeps_the_clip_and_the_next_sweep_completes_it() {
    let store = store();
    let data = seed(&store, Tier::Hot, "k.mp4", Some("non-evidential"), 40);
    let mut s = Sweeper::new();
    s.holds = vec![hold(&["k.mp4"])];
    // The process "dies" right after the copy into the legal-hold tier.
    let crashing = store.sharing_with_hook(stop_after(MoveStep::Copied));
    let out = s.run(&crashing).await.unwrap();

    assert_eq!(out.failed, 1, "{:?}", out.messages);
    assert!(
        out.messages[0].contains("interrupted after step copied"),
        "{:?}",
        out.messages
    );
    let hot = store.stored_versions(Tier::Hot, "k.mp4");
    assert!(
        hot.len() == 1 && hot[0].sha256 == sha_hex(&data),
        "source kept"
    );
    assert_eq!(s.recorded("k.mp4")[0].action, AuditAction::Failed);

    let out = s.run(&store).await.unwrap();
    assert_eq!((out.failed, out.deleted), (0, 0), "{:?}", out.messages);
    assert!(store.keys(Tier::Hot).is_empty());
    let lh = store.stored_versions(Tier::LegalHold, "k.mp4");
    assert_eq!(lh.len(), 1, "exactly one copy: {lh:?}");
    assert!(lh[0].legal_hold && lh[0].sha256 == sha_hex(&data));
}

#[tokio::test]
async fn a_failing_audit_sink_stops_the_sweep_before_anything_else_is_done() {
    let store = store();
    // Hot: a malformed clip (flagged, nothing done to it). Cool: an expired clip.
    store.put_object(
        Tier::Hot,
        "bad-time.mp4",
        MemoryObject::new(clip_data("bad-time.mp4", SIZE))
            .last_modified(days_ago(40))
            .tag(TAG_RECORDED_AT, "last tuesday"),
    );
    seed(
        &store,
        Tier::Cool,
        "expired.mp4",
        Some("non-evidential"),
        40,
    );
    let mut s = Sweeper::new();
    s.sink = RecordingSink::failing();
    let err = s.run(&store).await.unwrap_err();

    assert!(matches!(err, SweepError::Audit(_)), "{err}");
    assert_eq!(s.sink.calls(), 1, "stopped at the first batch");
    assert!(s.sink.entries().is_empty());
    assert_eq!(store.keys(Tier::Cool), ["expired.mp4"], "not deleted");
    assert_eq!(store.calls(MemoryOp::Delete), 0);

    // Once the trail can be written again, the next sweep records and acts.
    s.sink.fail_next(0);
    let out = s.run(&store).await.unwrap();
    assert_eq!((out.malformed, out.deleted), (1, 1));
    assert!(store.keys(Tier::Cool).is_empty());
    assert_eq!(
        s.recorded("bad-time.mp4")[0].action,
        AuditAction::FlaggedMalformed
    );
    assert_eq!(s.recorded("expired.mp4")[0].action, AuditAction::Deleted);
}

#[tokio::test]
async fn draining_stops_new_actions_and_loses_no_clip() {
    // Cancelled before the sweep: nothing acted on, nothing recorded.
    let store = store();
    seed(&store, Tier::Hot, "x.mp4", Some("non-evidential"), 40);
    seed(&store, Tier::Hot, "y.mp4", Some("domestic-abuse"), 40);
    let s = Sweeper::new();
    s.draining.cancel();
    let out = s.run(&store).await.unwrap();
    assert!(out.interrupted);
    assert_eq!((out.deleted, out.moved), (0, 0));
    assert_eq!(store.keys(Tier::Hot), ["x.mp4", "y.mp4"]);
    assert_eq!(
        store.calls(MemoryOp::Delete) + store.calls(MemoryOp::Copy),
        0
    );
    assert_eq!(s.sink.calls(), 0);

    // Cancelled during the first move: it finishes, no other starts.
    let store = self::store();
    for key in ["m1.mp4", "m2.mp4", "m3.mp4"] {
        seed(&store, Tier::Hot, key, Some("domestic-abuse"), 40);
    }
    let mut s = Sweeper::new();
    s.opts.concurrency = 1;
    let token = s.draining.clone();
    let hook: FaultHook = Arc::new(move |_: StepContext| {
        token.cancel();
        async { true }.boxed()
    });
    let draining = store.sharing_with_hook(hook);
    let out = s.run(&draining).await.unwrap();
    assert!(out.interrupted);
    assert_eq!(out.moved, 1);
    assert_eq!(store.keys(Tier::Cool), ["m1.mp4"]);
    assert_eq!(store.keys(Tier::Hot), ["m2.mp4", "m3.mp4"]);
    assert_eq!(s.recorded("m1.mp4")[0].action, AuditAction::Moved);
    let outcomes: Vec<_> = ["m1.mp4", "m2.mp4", "m3.mp4"]
        .iter()
        .flat_map(|k| s.recorded(k))
        .collect();
    assert_eq!(
        outcomes.len(),
        1,
        "only what was done has an outcome: {outcomes:?}"
    );
    assert_eq!(
        s.intents("m2.mp4").len(),
        1,
        "intended (the chunk's intents come first)"
    );
}

#[tokio::test]
async fn skipped_prefixes_stay_out_of_the_plan_in_their_tier() {
    let store = store();
    // An audit batch inside the hot tier's listing: untagged and old, so the default
    // rule would delete it, were it a clip.
    store.put_object(
        Tier::Hot,
        "audit/00000001.jsonl",
        MemoryObject::new(b"{}".to_vec()).last_modified(days_ago(400)),
    );
    seed(&store, Tier::Hot, "c.mp4", Some("non-evidential"), 40);
    seed(
        &store,
        Tier::Cool,
        "audit/not-skipped.mp4",
        Some("non-evidential"),
        40,
    );
    let mut s = Sweeper::new();
    s.opts.skip = vec![(Tier::Hot, "audit/".into())];
    let out = s.run(&store).await.unwrap();

    assert_eq!(store.keys(Tier::Hot), ["audit/00000001.jsonl"]);
    assert!(
        store.keys(Tier::Cool).is_empty(),
        "the skip is for its tier only"
    );
    assert_eq!(out.deleted, 2);
    assert!(s.recorded("audit/00000001.jsonl").is_empty());
    assert_eq!((totals(&out, Tier::Hot), totals(&out, Tier::Cool)), (0, 0));
}

#[tokio::test]
async fn malformed_and_review_flags_are_recorded_once_and_the_clips_kept() {
    let store = store();
    store.put_object(
        Tier::Hot,
        "bad-time.mp4",
        MemoryObject::new(clip_data("bad-time.mp4", SIZE))
            .last_modified(days_ago(400))
            .tag(TAG_RECORDED_AT, "not a time"),
    );
    store.put_object(
        Tier::Hot,
        "twice.mp4",
        MemoryObject::new(clip_data("twice.mp4", SIZE))
            .last_modified(days_ago(400))
            .tag(TAG_CATEGORY, "non-evidential")
            .tag(TAG_CATEGORY, "murder"),
    );
    seed(
        &store,
        Tier::Cool,
        "review.mp4",
        Some("stop-and-search"),
        7 * 366,
    );
    let mut s = Sweeper::new();
    let out = s.run(&store).await.unwrap();

    assert_eq!(
        (out.malformed, out.flagged, out.deleted, out.moved),
        (2, 1, 0, 0)
    );
    assert_eq!(store.keys(Tier::Hot), ["bad-time.mp4", "twice.mp4"]);
    assert_eq!(store.keys(Tier::Cool), ["review.mp4"]);
    let bad = &s.recorded("bad-time.mp4")[0];
    assert_eq!(bad.action, AuditAction::FlaggedMalformed);
    assert!(
        bad.reason.contains("not an RFC 3339 time"),
        "{}",
        bad.reason
    );
    let twice = &s.recorded("twice.mp4")[0];
    assert!(
        twice.reason.contains("appears more than once"),
        "{}",
        twice.reason
    );
    assert_eq!(
        s.recorded("review.mp4")[0].action,
        AuditAction::FlaggedForReview
    );
    assert!(
        out.flags_recorded
            .contains(&"flagged_malformed:bad-time.mp4:hot".to_string()),
        "{:?}",
        out.flags_recorded
    );
    assert_eq!(out.flags_recorded.len(), 3);

    // Flagged before (by this replica): counted, kept, not recorded again.
    s.flagged_before = out.flags_recorded.into_iter().collect();
    let calls = s.sink.calls();
    let again = s.run(&store).await.unwrap();
    assert_eq!((again.malformed, again.flagged), (2, 1));
    assert!(again.flags_recorded.is_empty());
    assert_eq!(s.sink.calls(), calls);
    assert_eq!(store.keys(Tier::Hot).len(), 2);
}

#[tokio::test]
async fn unknown_categories_are_counted_and_capped() {
    let store = store();
    for (key, category) in [
        ("u1.mp4", Some("domestic-abuze")),
        ("u2.mp4", Some("domestic-abuze")),
        ("u3.mp4", Some("burglary")),
        ("known.mp4", Some("murder")),
        ("none.mp4", None),
    ] {
        seed(&store, Tier::Hot, key, category, 2);
    }
    let out = Sweeper::new().run(&store).await.unwrap();
    assert_eq!(
        out.unknown_categories,
        BTreeMap::from([
            ("burglary".to_string(), 1),
            ("domestic-abuze".to_string(), 2)
        ])
    );
    assert_eq!(out.unknown_category_clips, 3);
    assert_eq!(store.keys(Tier::Hot).len(), 5, "kept: none is due");

    for i in 0..12 {
        seed(
            &store,
            Tier::Hot,
            &format!("c{i:02}.mp4"),
            Some(&format!("cat-{i:02}")),
            2,
        );
    }
    let out = Sweeper::new().run(&store).await.unwrap();
    assert_eq!(out.unknown_categories.len(), MAX_UNKNOWN_CATEGORIES);
    assert_eq!(out.unknown_category_clips, 15);
}

#[tokio::test]
async fn a_listing_failure_stops_the_sweep() {
    let store = store();
    seed(&store, Tier::Hot, "old.mp4", None, 40);
    store.fail_next(MemoryOp::List, 1);
    let err = Sweeper::new().run(&store).await.unwrap_err();
    assert!(
        matches!(
            err,
            SweepError::List {
                tier: Tier::Hot,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.keys(Tier::Hot), ["old.mp4"]);
}

#[tokio::test]
async fn a_store_outside_the_uk_moves_and_deletes_nothing() {
    let store = store();
    seed(&store, Tier::Hot, "del.mp4", None, 40);
    seed(&store, Tier::Hot, "mov.mp4", Some("murder"), 40);
    store.set_region("us-east-1");
    let s = Sweeper::new();
    let out = s.run(&store).await.unwrap();

    assert_eq!((out.failed, out.deleted, out.moved), (2, 0, 0));
    assert_eq!(store.keys(Tier::Hot), ["del.mp4", "mov.mp4"]);
    assert!(store.keys(Tier::Cool).is_empty());
    for key in ["del.mp4", "mov.mp4"] {
        let e = &s.recorded(key)[0];
        assert_eq!(e.action, AuditAction::Failed);
        assert!(e.reason.contains("us-east-1"), "{}", e.reason);
    }
}

#[tokio::test]
async fn the_integrity_sample_is_drawn_from_cool_and_legal_hold_only() {
    let store = store();
    for i in 0..3 {
        seed(&store, Tier::Hot, &format!("h{i}.mp4"), Some("murder"), 2);
    }
    for i in 0..5 {
        seed(&store, Tier::Cool, &format!("c{i}.mp4"), Some("murder"), 60);
    }
    let mut s = Sweeper::new();
    s.opts.integrity_sample = 2;
    let out = s.run(&store).await.unwrap();
    assert_eq!(out.sample.len(), 2);
    assert!(out.sample.iter().all(|c| c.tier == Tier::Cool));
    s.opts.integrity_sample = 10;
    let out = s.run(&store).await.unwrap();
    assert_eq!(out.sample.len(), 5);
}

#[tokio::test]
async fn a_selected_clip_whose_move_fails_counts_as_selected_and_failed_not_held() {
    let store = store();
    seed(&store, Tier::Hot, "k1.mp4", Some("non-evidential"), 40);
    seed(&store, Tier::Hot, "k2.mp4", Some("non-evidential"), 40);
    store.fail_next(MemoryOp::Copy, 1);
    let mut s = Sweeper::new();
    s.holds = vec![hold(&["k1.mp4", "k2.mp4", "not-there.mp4"])];
    let out = s.run(&store).await.unwrap();
    assert_eq!((out.held, out.failed, out.deleted), (1, 1, 0));
    assert_eq!(
        out.selected_by.get(HOLD),
        Some(&2),
        "a key that is not there is not selected"
    );
    assert_eq!(out.held_by.get(HOLD), Some(&1));
    assert_eq!(out.failed_by.get(HOLD), Some(&1));
    // Nothing is lost: the failed clip is still in hot, and the next sweep holds it.
    assert_eq!(store.keys(Tier::Hot).len(), 1);
    let again = s.run(&store).await.unwrap();
    assert_eq!(again.held_by.get(HOLD), Some(&2));
    assert_eq!(again.selected_by.get(HOLD), Some(&2));
    assert!(again.failed_by.is_empty());
}

/// Write-ahead: if the intents of a chunk cannot be recorded, nothing in it is done:
/// no delete, no copy. (Before, a chunk was acted on first and recorded after, so an
/// audit bucket refusing writes let the first chunk be deleted with only a log line.)
#[tokio::test]
async fn nothing_is_done_when_the_intent_cannot_be_recorded() {
    let store = store();
    seed(&store, Tier::Hot, "expired.mp4", Some("non-evidential"), 40);
    seed(
        &store,
        Tier::Hot,
        "evidence.mp4",
        Some("domestic-abuse"),
        40,
    );
    let mut s = Sweeper::new();
    s.sink = RecordingSink::failing();
    let err = s.run(&store).await.unwrap_err();
    assert!(matches!(err, SweepError::Audit(_)), "{err}");
    assert_eq!(s.sink.calls(), 1, "the intent batch, and nothing after it");
    assert_eq!(store.keys(Tier::Hot), ["evidence.mp4", "expired.mp4"]);
    assert!(store.keys(Tier::Cool).is_empty());
    assert_eq!(
        store.calls(MemoryOp::Delete) + store.calls(MemoryOp::Copy),
        0,
        "no storage write was even attempted"
    );

    // With the trail writable again: intents first, then outcomes, for both clips.
    s.sink.fail_next(0);
    let out = s.run(&store).await.unwrap();
    assert_eq!((out.deleted, out.moved), (1, 1));
    for key in ["expired.mp4", "evidence.mp4"] {
        let about: Vec<AuditAction> = s.about(key).iter().map(|e| e.action).collect();
        assert_eq!(about[0], AuditAction::Intended, "{key}: {about:?}");
        assert_eq!(about.len(), 2, "{key}: {about:?}");
    }
}

/// A fence that reports a hold applied once the sweep has acted on its first chunk.
struct AppliedAfterFirstChunk {
    reads: std::sync::atomic::AtomicUsize,
    added: ActiveHold,
    finalizer: bool,
}

#[async_trait::async_trait]
impl HoldFence for AppliedAfterFirstChunk {
    async fn read(&self) -> Result<Option<FencedHolds>, String> {
        if self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            return Ok(None);
        }
        let mut pending = std::collections::BTreeSet::new();
        if !self.finalizer {
            pending.insert(self.added.name.clone());
        }
        Ok(Some(FencedHolds {
            holds: vec![self.added.clone()],
            pending,
            policy: None,
            preserves: Vec::new(),
        }))
    }
}

/// A hold applied while the sweep runs (after the hot chunk) protects the clips of the
/// chunks acted on after it: an expired clip in cool is not deleted. Held at once when
/// the hold carries its finalizer; only kept while it does not.
#[tokio::test]
async fn a_hold_applied_mid_sweep_protects_the_clips_of_later_chunks() {
    for finalizer in [true, false] {
        let store = store();
        seed(&store, Tier::Hot, "first.mp4", Some("domestic-abuse"), 40);
        seed(&store, Tier::Cool, "later.mp4", Some("non-evidential"), 40);
        let mut s = Sweeper::new();
        s.fence = Some(Box::new(AppliedAfterFirstChunk {
            reads: std::sync::atomic::AtomicUsize::new(0),
            added: hold(&["later.mp4"]),
            finalizer,
        }));
        let out = s.run(&store).await.unwrap();
        assert_eq!(
            out.deleted, 0,
            "finalizer {finalizer}: the held clip was deleted"
        );
        assert_eq!(out.moved, 1, "the first chunk was acted on");
        if finalizer {
            assert_eq!(store.keys(Tier::LegalHold), ["later.mp4"]);
            assert_eq!(out.held, 1);
            // The record names the case of the hold the fence found.
            let held: Vec<Entry> = s
                .recorded("later.mp4")
                .into_iter()
                .filter(|e| e.action == AuditAction::Held)
                .collect();
            assert_eq!(held.len(), 1);
            assert_eq!(held[0].cases, vec![CASE.to_string()]);
        } else {
            assert_eq!(store.keys(Tier::Cool), ["first.mp4", "later.mp4"]);
            assert!(
                store.keys(Tier::LegalHold).is_empty(),
                "not held before its finalizer"
            );
        }
    }
}

/// A fence that, when first read (the chunk is listed, not yet acted on), re-tags a clip
/// behind the sweep's back: an officer re-categorising it.
struct RetagOnFirstRead {
    store: MemoryTierStore,
    tier: Tier,
    key: &'static str,
    category: &'static str,
    done: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl HoldFence for RetagOnFirstRead {
    async fn read(&self) -> Result<Option<FencedHolds>, String> {
        if !self.done.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let tags = vec![
                Tag::new(TAG_RECORDED_AT, days_ago(40).to_rfc3339()),
                Tag::new(TAG_CATEGORY, self.category),
            ];
            self.store
                .retag(self.tier, self.key, &tags)
                .map_err(|e| e.to_string())?;
        }
        Ok(None)
    }
}

/// A clip re-categorised as evidential after it was listed, but before its delete, is
/// not deleted: its tags are read again at the point of no return and it is re-planned
/// (moved to cool). Without that read it was deleted on the listed, stale tags.
#[tokio::test]
async fn a_clip_retagged_after_it_was_listed_is_replanned_not_deleted() {
    let store = store();
    seed(
        &store,
        Tier::Hot,
        "retagged.mp4",
        Some("non-evidential"),
        40,
    );
    seed(&store, Tier::Hot, "expired.mp4", Some("non-evidential"), 40);
    let mut s = Sweeper::new();
    s.fence = Some(Box::new(RetagOnFirstRead {
        store: store.sharing(),
        tier: Tier::Hot,
        key: "retagged.mp4",
        category: "domestic-abuse",
        done: std::sync::atomic::AtomicBool::new(false),
    }));
    let out = s.run(&store).await.unwrap();
    assert_eq!(out.retagged, 1);
    assert_eq!((out.deleted, out.moved), (1, 1), "{out:?}");
    assert_eq!(store.keys(Tier::Cool), ["retagged.mp4"]);
    assert!(
        s.recorded("retagged.mp4")
            .iter()
            .all(|e| !matches!(e.action, AuditAction::Deleted | AuditAction::PolicyDeleted)),
        "{:?}",
        s.recorded("retagged.mp4")
    );
}

/// A fence that reports the policy changed once the sweep has acted on its first chunk.
struct PolicyChangedAfterFirstChunk {
    reads: std::sync::atomic::AtomicUsize,
    policy: RetentionPolicySpec,
}

#[async_trait::async_trait]
impl HoldFence for PolicyChangedAfterFirstChunk {
    async fn read(&self) -> Result<Option<FencedHolds>, String> {
        if self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            return Ok(None);
        }
        Ok(Some(FencedHolds {
            holds: Vec::new(),
            pending: Default::default(),
            policy: Some(self.policy.clone()),
            preserves: Vec::new(),
        }))
    }
}

/// A retention lengthened while the sweep runs (after the hot chunk) protects the
/// clips of the chunks acted on after it; a retention shortened mid-sweep deletes
/// nothing the policy the sweep started with keeps.
#[tokio::test]
async fn a_policy_changed_mid_sweep_deletes_only_what_both_policies_delete() {
    let lengthened = {
        let mut p = met_policy();
        for c in p
            .categories
            .iter_mut()
            .filter(|c| c.name == "non-evidential")
        {
            c.retention = "90d".parse().unwrap();
        }
        p
    };
    let shortened = {
        let mut p = met_policy();
        for c in p
            .categories
            .iter_mut()
            .filter(|c| c.name == "non-evidential")
        {
            c.retention = "1d".parse().unwrap();
        }
        p
    };
    for (policy, deleted, cool) in [
        (lengthened, 0, vec!["first.mp4", "later.mp4", "young.mp4"]),
        (shortened, 1, vec!["first.mp4", "young.mp4"]),
    ] {
        let store = store();
        seed(&store, Tier::Hot, "first.mp4", Some("domestic-abuse"), 40);
        seed(&store, Tier::Cool, "later.mp4", Some("non-evidential"), 40);
        seed(&store, Tier::Cool, "young.mp4", Some("non-evidential"), 10);
        let mut s = Sweeper::new();
        s.fence = Some(Box::new(PolicyChangedAfterFirstChunk {
            reads: std::sync::atomic::AtomicUsize::new(0),
            policy,
        }));
        let out = s.run(&store).await.unwrap();
        assert_eq!(out.moved, 1, "the first chunk was acted on");
        assert_eq!(out.deleted, deleted);
        assert_eq!(store.keys(Tier::Cool), cool);
    }
}

// ---------------------------------------------------------------------------------
// Tiers that need no listing (the catalogue's tier memos).
// ---------------------------------------------------------------------------------

/// A sweeper listing through a fresh catalogue, the store it lists, the catalogue and
/// its directory.
fn catalogued(
    mem: &MemoryTierStore,
) -> (
    Sweeper,
    crate::catalogue::CataloguedStore,
    crate::catalogue::Catalogue,
    std::path::PathBuf,
) {
    let (cat, dir) =
        crate::catalogue::tests::temporary(crate::catalogue::CatalogueOptions::default());
    let cfg = crate::catalogue::tests::config();
    let mut s = Sweeper::new();
    s.opts.catalogue = Some(cat.bucket("ns/unit", &cfg));
    s.opts.inputs = "policy/1".into();
    let store = crate::catalogue::CataloguedStore::new(
        Arc::new(mem.sharing()),
        cat.bucket("ns/unit", &cfg),
    );
    (s, store, cat, dir)
}

/// Listings made so far (any tier).
fn lists(mem: &MemoryTierStore) -> u64 {
    mem.calls(MemoryOp::List)
}

#[tokio::test]
async fn a_quiet_cool_or_legal_hold_tier_is_not_listed_again_until_its_inputs_change() {
    let mem = store();
    seed(&mem, Tier::Hot, "young.mp4", Some("murder"), 2);
    seed(&mem, Tier::Cool, "kept-1.mp4", Some("murder"), 400);
    seed(&mem, Tier::Cool, "kept-2.mp4", Some("domestic-abuse"), 100);
    mem.put_object(
        Tier::LegalHold,
        "held.mp4",
        MemoryObject::new(clip_data("held.mp4", SIZE))
            .held()
            .recorded_sha256()
            .last_modified(days_ago(40))
            .tag(TAG_RECORDED_AT, days_ago(40).to_rfc3339())
            .tag(TAG_CATEGORY, "domestic-abuse"),
    );
    let (mut s, store, cat, dir) = catalogued(&mem);
    s.holds = vec![hold(&["held.mp4"])];

    let first = s.run(&store).await.unwrap();
    assert_eq!(lists(&mem), 3, "every tier listed the first time");
    assert!(first.unlisted.is_empty());
    let second = s.run(&store).await.unwrap();
    assert_eq!(lists(&mem), 4, "only the hot tier listed again");
    assert_eq!(second.unlisted, vec![Tier::Cool, Tier::LegalHold]);
    // Counted from the memos as if listed.
    assert_eq!(second.totals, first.totals);
    assert_eq!(second.held_by, first.held_by);
    assert_eq!(second.selected_by, first.selected_by);
    assert_eq!(second.held_by.get(HOLD), Some(&1));
    assert_eq!(second.next_due, first.next_due);
    assert_eq!((second.moved, second.deleted, second.failed), (0, 0, 0));

    // Another policy or hold: every tier listed.
    s.opts.inputs = "policy/2".into();
    let third = s.run(&store).await.unwrap();
    assert_eq!(lists(&mem), 7);
    assert!(third.unlisted.is_empty());
    assert_eq!(s.run(&store).await.unwrap().unlisted.len(), 2);
    // A new leadership term (another replica may have led meanwhile): listed again.
    cat.begin_term().await;
    let fourth = s.run(&store).await.unwrap();
    assert!(fourth.unlisted.is_empty());
    assert_eq!(lists(&mem), 11);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_clip_moved_into_the_cool_tier_makes_the_sweep_list_it() {
    let mem = store();
    seed(&mem, Tier::Cool, "kept.mp4", Some("murder"), 400);
    let (s, store, _cat, dir) = catalogued(&mem);
    s.run(&store).await.unwrap();
    seed(&mem, Tier::Hot, "due-to-cool.mp4", Some("murder"), 40);
    let out = s.run(&store).await.unwrap();
    assert_eq!(out.moved, 1);
    assert_eq!(
        out.unlisted,
        vec![Tier::LegalHold],
        "the cool tier is listed"
    );
    assert_eq!(totals(&out, Tier::Cool), 2);
    assert_eq!(mem.keys(Tier::Cool), ["due-to-cool.mp4", "kept.mp4"]);
    // And next time, quiet again: unlisted.
    let again = s.run(&store).await.unwrap();
    assert_eq!(again.unlisted, vec![Tier::Cool, Tier::LegalHold]);
    assert_eq!(totals(&again, Tier::Cool), 2);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_clip_falling_due_in_an_unlisted_tier_is_acted_on_when_it_falls_due() {
    let mem = store();
    // Kept in cool, due for deletion 11 days from now (non-evidential: 31 days).
    seed(&mem, Tier::Cool, "soon.mp4", Some("non-evidential"), 20);
    let (s, store, _cat, dir) = catalogued(&mem);
    let first = s.run(&store).await.unwrap();
    assert_eq!(first.deleted, 0);
    let due = first.next_due.unwrap();
    assert!(
        due > now() + TimeDelta::days(10) && due <= now() + TimeDelta::days(12),
        "{due}"
    );
    let before_due = s.run_at(&store, now() + TimeDelta::days(1)).await.unwrap();
    assert_eq!(before_due.unlisted, vec![Tier::Cool, Tier::LegalHold]);
    assert_eq!(
        before_due.next_due,
        Some(due),
        "the memo keeps the tier's due time"
    );
    let after_due = s.run_at(&store, due + TimeDelta::hours(1)).await.unwrap();
    assert_eq!(after_due.unlisted, vec![Tier::LegalHold]);
    assert_eq!(after_due.deleted, 1);
    assert!(mem.keys(Tier::Cool).is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_failed_action_leaves_the_tier_listed_next_sweep() {
    let mem = store();
    seed(&mem, Tier::Cool, "expired.mp4", Some("non-evidential"), 40);
    let (s, store, _cat, dir) = catalogued(&mem);
    mem.fail_next(MemoryOp::Delete, 1);
    let out = s.run(&store).await.unwrap();
    assert_eq!((out.deleted, out.failed), (0, 1));
    let again = s.run(&store).await.unwrap();
    assert_eq!(
        again.unlisted,
        vec![Tier::LegalHold],
        "not quiet: the cool tier is listed again"
    );
    assert_eq!(again.deleted, 1);
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------
// Retention that starts when a case closes (retainAfterRelease).
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_hold_released_with_retain_after_release_keeps_its_clips_that_long() {
    let store = store();
    let data = clip_data("closed.mp4", SIZE);
    store.put_object(
        Tier::LegalHold,
        "closed.mp4",
        MemoryObject::new(data.clone())
            .held()
            .last_modified(days_ago(40))
            .tag(TAG_RECORDED_AT, days_ago(40).to_rfc3339())
            .tag(TAG_CATEGORY, "non-evidential"),
    );
    let mut s = Sweeper::new();
    let mut closed = hold(&["closed.mp4"]);
    closed.retain_after_release = Some("6y".parse().unwrap());
    s.releasing = vec![closed];
    let out = s.run(&store).await.unwrap();
    assert_eq!((out.released, out.failed), (1, 0), "{:?}", out.messages);

    // In cool, unlocked, tagged six years on from the release.
    let cool = store.stored_versions(Tier::Cool, "closed.mp4");
    assert_eq!(cool.len(), 1);
    assert!(!cool[0].legal_hold);
    let until = (now() + TimeDelta::days(6 * 365 + 1)).date_naive();
    let tagged = cool[0]
        .tags
        .iter()
        .find(|t| t.key == crate::api::clip::TAG_RETAIN_UNTIL)
        .map(|t| t.value.clone())
        .expect("a retain-until tag");
    assert!(
        tagged.starts_with(&until.format("%Y-%m-").to_string()),
        "{tagged}"
    );
    let [e] = &s.recorded("closed.mp4")[..] else {
        panic!("one record: {:?}", s.sink.entries())
    };
    assert_eq!(e.action, AuditAction::Released);
    assert!(e.reason.contains("retainAfterRelease"), "{}", e.reason);

    // The next sweeps (a day, a year on) keep it: its 31 days ran out long ago.
    let after = Sweeper::new();
    for later in [TimeDelta::days(1), TimeDelta::days(365)] {
        let out = after.run_at(&store, now() + later).await.unwrap();
        assert_eq!(out.deleted, 0);
        assert_eq!(store.keys(Tier::Cool), ["closed.mp4"]);
    }
    let out = after
        .run_at(&store, now() + TimeDelta::days(6 * 366))
        .await
        .unwrap();
    assert_eq!(out.deleted, 1, "deleted once its retain-until passed");
}

#[tokio::test]
async fn a_clip_with_no_room_for_its_retain_until_stays_held() {
    let store = store();
    let mut object = MemoryObject::new(clip_data("full.mp4", SIZE))
        .held()
        .last_modified(days_ago(40))
        .tag(TAG_RECORDED_AT, days_ago(40).to_rfc3339())
        .tag(TAG_CATEGORY, "non-evidential");
    for i in 0..8 {
        object = object.tag(format!("note/{i}"), "x");
    }
    store.put_object(Tier::LegalHold, "full.mp4", object);
    let mut s = Sweeper::new();
    let mut closed = hold(&["full.mp4"]);
    closed.retain_after_release = Some("6y".parse().unwrap());
    s.releasing = vec![closed];
    let out = s.run(&store).await.unwrap();
    assert_eq!((out.released, out.failed), (0, 1));
    assert!(out.messages[0].contains("no room"), "{:?}", out.messages);
    let held = store.stored_versions(Tier::LegalHold, "full.mp4");
    assert!(
        held.len() == 1 && held[0].legal_hold,
        "still held: {held:?}"
    );
}

#[tokio::test]
async fn with_a_restore_window_deletions_are_soft_and_a_held_version_is_never_purged() {
    let store = store().versioned(Tier::Hot, true);
    seed(&store, Tier::Hot, "a.mp4", Some("non-evidential"), 40);
    seed(&store, Tier::Hot, "b.mp4", Some("non-evidential"), 40);
    let mut s = Sweeper::new();
    s.policy.restore_window = Some(RetentionDuration::days(7));

    // Soft: both leave the listing, their versions stay, each recorded as soft-deleted.
    let out = s.run(&store).await.unwrap();
    assert_eq!((out.deleted, out.restorable, out.purged), (2, 2, 0));
    assert!(store.keys(Tier::Hot).is_empty());
    for key in ["a.mp4", "b.mp4"] {
        assert_eq!(store.stored_versions(Tier::Hot, key).len(), 1, "{key}");
        let recorded = s.recorded(key);
        assert_eq!(recorded[0].action, AuditAction::SoftDeleted, "{recorded:?}");
    }
    // The window's end is when the next sweep is due.
    assert_eq!(out.next_due, Some(now() + TimeDelta::days(7)));

    // A legal hold on b's version (placed by hand); eight days on, only a is purged.
    let b = store.stored_versions(Tier::Hot, "b.mp4")[0]
        .version_id
        .clone();
    store.set_hold(Tier::Hot, "b.mp4", Some(&b), true).unwrap();
    let out = s.run_at(&store, now() + TimeDelta::days(8)).await.unwrap();
    assert_eq!((out.purged, out.restorable, out.failed), (1, 1, 0));
    assert!(store.stored_versions(Tier::Hot, "a.mp4").is_empty());
    assert_eq!(store.stored_versions(Tier::Hot, "b.mp4").len(), 1);
    let a = s.about("a.mp4");
    let last = &a[a.len() - 2..];
    assert_eq!(
        (last[0].action, last[1].action),
        (AuditAction::Intended, AuditAction::Purged),
        "{a:?}"
    );
    assert!(
        last[1]
            .reason
            .contains("not restored within restoreWindow 7d"),
        "{}",
        last[1].reason
    );
    assert!(
        s.about("b.mp4")
            .iter()
            .all(|e| e.action != AuditAction::Purged)
    );
}

#[tokio::test]
async fn a_restore_window_on_an_unversioned_tier_deletes_nothing() {
    let store = store();
    seed(&store, Tier::Hot, "a.mp4", Some("non-evidential"), 40);
    let mut s = Sweeper::new();
    s.policy.restore_window = Some(RetentionDuration::days(7));
    let out = s.run(&store).await.unwrap();
    assert_eq!((out.deleted, out.failed), (0, 1));
    assert_eq!(store.keys(Tier::Hot), ["a.mp4"]);
    assert!(
        out.messages[0].contains("VersioningRequired"),
        "{:?}",
        out.messages
    );
}

/// A fence that finds a hold at its first read (the hot chunk) and, at later reads,
/// nothing beyond the start: the LegalHold was deleted meanwhile (the API fence leaves
/// out holds being deleted that were not in force at the start).
struct AppliedThenDeleted {
    reads: std::sync::atomic::AtomicUsize,
    hold: ActiveHold,
}

#[async_trait::async_trait]
impl HoldFence for AppliedThenDeleted {
    async fn read(&self) -> Result<Option<FencedHolds>, String> {
        if self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
            return Ok(None);
        }
        Ok(Some(FencedHolds {
            holds: vec![self.hold.clone()],
            pending: Default::default(),
            policy: None,
            preserves: Vec::new(),
        }))
    }
}

/// A hold applied after a sweep started takes its clip into the legal-hold tier in the
/// hot chunk; deleted before the legal-hold chunk, it still protects that chunk: the
/// clip stays held, for the hold's finalizer to release (with the case's name and its
/// retainAfterRelease). Before the fence remembered what it found, this sweep released
/// the clip itself, without either, and the next sweep deleted it.
#[tokio::test]
async fn a_hold_applied_and_deleted_mid_sweep_is_released_by_its_finalizer_not_the_sweep() {
    let store = store();
    seed(&store, Tier::Hot, "a.mp4", Some("non-evidential"), 40);
    let mut s = Sweeper::new();
    let mut hold = hold(&["a.mp4"]);
    hold.retain_after_release = Some(RetentionDuration::years(6));
    s.fence = Some(Box::new(AppliedThenDeleted {
        reads: Default::default(),
        hold,
    }));
    let out = s.run(&store).await.unwrap();
    assert_eq!(
        (out.held, out.released, out.deleted),
        (1, 0, 0),
        "{:?}",
        out.messages
    );
    assert_eq!(store.keys(Tier::LegalHold), ["a.mp4"]);
    assert!(store.stored_versions(Tier::LegalHold, "a.mp4")[0].legal_hold);
    assert!(
        s.about("a.mp4")
            .iter()
            .all(|e| e.action != AuditAction::Released),
        "{:?}",
        s.about("a.mp4")
    );
}

#[test]
fn the_fence_remembers_a_hold_it_found_once() {
    let h = hold(&["a.mp4"]);
    let found = FencedHolds {
        holds: vec![h.clone()],
        pending: std::collections::BTreeSet::from([HOLD.to_string()]),
        policy: None,
        preserves: Vec::new(),
    };
    let mut seen = None;
    assert_eq!(
        fence::remember(&mut seen, None).map(|f| f.holds.len()),
        None
    );
    assert_eq!(
        fence::remember(&mut seen, Some(found)).map(|f| f.holds.len()),
        Some(1)
    );
    // Deleted since: still there, still pending (it never got its finalizer).
    let again = fence::remember(&mut seen, None).unwrap();
    assert_eq!(again.holds, vec![h.clone()]);
    assert!(again.pending.contains(HOLD));
    // Listed again with its finalizer: no longer pending, not duplicated.
    let again = fence::remember(
        &mut seen,
        Some(FencedHolds {
            holds: vec![h],
            pending: Default::default(),
            policy: None,
            preserves: Vec::new(),
        }),
    )
    .unwrap();
    assert_eq!((again.holds.len(), again.pending.len()), (1, 0));
}

/// A fence that finds, from its second read on, an AccessRequest opened after the sweep
/// started.
struct RequestAfterFirstChunk {
    reads: std::sync::atomic::AtomicUsize,
    request: Preserve,
}

#[async_trait::async_trait]
impl HoldFence for RequestAfterFirstChunk {
    async fn read(&self) -> Result<Option<FencedHolds>, String> {
        if self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            return Ok(None);
        }
        Ok(Some(FencedHolds {
            preserves: vec![self.request.clone()],
            ..FencedHolds::default()
        }))
    }
}

/// An access request opened while a sweep runs (after the hot chunk) preserves its
/// clips in the chunks acted on after it: an expired clip of the officer in cool is not
/// deleted (nor is it moved), while another officer's is.
#[tokio::test]
async fn an_access_request_opened_mid_sweep_preserves_the_clips_of_later_chunks() {
    let store = store();
    seed(&store, Tier::Hot, "first.mp4", Some("non-evidential"), 40);
    for (key, officer) in [("theirs.mp4", "PC 4521"), ("other.mp4", "PC 9999")] {
        store.put_object(
            Tier::Cool,
            key,
            MemoryObject::new(clip_data(key, SIZE))
                .last_modified(days_ago(40))
                .tag(TAG_RECORDED_AT, days_ago(40).to_rfc3339())
                .tag(TAG_CATEGORY, "non-evidential")
                .tag(crate::api::clip::TAG_OFFICER, officer),
        );
    }
    let mut s = Sweeper::new();
    s.fence = Some(Box::new(RequestAfterFirstChunk {
        reads: Default::default(),
        request: Preserve {
            name: "sar".into(),
            reference: "SAR-1".into(),
            selector: crate::api::AccessSelector {
                officer: Some("PC 4521".into()),
                ..Default::default()
            },
        },
    }));
    let out = s.run(&store).await.unwrap();
    assert_eq!(
        out.deleted, 2,
        "first.mp4 (before the request) and other.mp4"
    );
    assert_eq!(store.keys(Tier::Cool), ["theirs.mp4"]);
    assert_eq!(out.found_by.get("sar").map(|f| f.clips), Some(1));
}

/// A clip a request covers that a hold takes into the legal-hold tier in the same sweep
/// is found once, where it ends up (not once in hot and again in the legal-hold tier).
#[tokio::test]
async fn a_requested_clip_moved_into_legal_hold_is_found_once() {
    let store = store();
    seed(&store, Tier::Hot, "both.mp4", Some("non-evidential"), 40);
    let mut s = Sweeper::new();
    s.holds = vec![hold(&["both.mp4"])];
    let preserves = vec![Preserve {
        name: "sar".into(),
        reference: "SAR-1".into(),
        selector: crate::api::AccessSelector {
            keys: vec!["both.mp4".into()],
            ..Default::default()
        },
    }];
    let planner = Planner::new(&s.policy, &s.holds, now())
        .unwrap()
        .preserving(&preserves);
    let audit = SweepAudit {
        sink: &s.sink,
        cases: Default::default(),
        releasing: None,
        flagged_before: &s.flagged_before,
    };
    let out = sweep(&store, &planner, &s.opts, &s.draining, &audit, None)
        .await
        .unwrap();
    assert_eq!(out.held, 1);
    assert_eq!(store.keys(Tier::LegalHold), ["both.mp4"]);
    assert_eq!(
        out.found_by["sar"],
        TierTotals {
            clips: 1,
            bytes: SIZE as i64
        }
    );
}
