//! The rules of the three specs beyond their types, in Rust: the CRDs' CEL rules (with
//! the API server's words, from the same `*_MESSAGE` constants the CRD attributes use),
//! the S3 naming rules, the UK-region rule and the retention safety floor.
//!
//! [`EvidenceBucketSpec::problems`], [`RetentionPolicySpec::problems`] and
//! [`LegalHoldSpec::problems`] take a spec that serde has already read (types, required
//! fields and duration syntax are checked by then) and list what is wrong with it, each
//! [`Problem`] with the path of the field it is about. `evidence-operator check` runs them
//! offline on a repository's YAML; the controller can run the same before it acts.
//!
//! Pure: no I/O, no clock. What only the engine can judge (whether it compiles a policy)
//! is the engine's to say.
//!
//! The rules of the requests people make of the evidence (`AccessRequestSpec`,
//! `ClipRestoreSpec`) are in `requests`; the shared pieces (paths, names, regions,
//! endpoints, keys, tags) here.

mod requests;

use std::{collections::BTreeSet, fmt};

use chrono::{DateTime, TimeZone, Utc};

use super::{
    duration::{INTERVAL_MIN_MESSAGE, MIN_INTERVAL, RetentionDuration},
    evidence_bucket::{
        ARCHIVE_STORAGE_CLASS_MESSAGE, BUCKET_NAME_MESSAGE, ENDPOINT_MESSAGE,
        ENDPOINT_METADATA_MESSAGE, EvidenceBucketSpec, HOT_COOL_DISTINCT_MESSAGE,
        LEGAL_HOLD_OWN_BUCKET_MESSAGE, PREFIX_MESSAGE, REGION_NAME_MESSAGE, STORAGE_CLASS_MESSAGE,
        TierLocation,
    },
    legal_hold::{
        CAMERA_BLANK_MESSAGE, CAMERA_WINDOW_ORDER_MESSAGE, CASE_REFERENCE_BLANK_MESSAGE,
        KEYS_MESSAGE, LegalHoldSpec, MATCH_TAGS_MESSAGE, REASON_BLANK_MESSAGE,
        SELECTOR_EMPTY_MESSAGE,
    },
    regions::AllowedRegions,
    retention_policy::{
        CATEGORY_NAME_MESSAGE, CATEGORY_NAMES_UNIQUE_MESSAGE, MAX_RESTORE_WINDOW_DAYS,
        RESTORE_WINDOW_MESSAGE, RetentionPolicySpec,
    },
};

/// One step of a [`Problem`]'s path: a field or a list item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// A field, by its name in YAML (`storageClass`).
    Field(&'static str),
    /// The n-th item of a list, from 0.
    Index(usize),
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Field(name) => f.write_str(name),
            Segment::Index(i) => write!(f, "{i}"),
        }
    }
}

use Segment::{Field, Index};

/// One thing wrong with a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field it is about, from the spec down: `[Field("tiers"), Field("hot"),
    /// Field("bucket")]`.
    pub path: Vec<Segment>,
    /// What is wrong. Where a CRD rule says the same, its message (after the offending
    /// value, when there is one).
    pub message: String,
}

impl Problem {
    fn at(path: impl Into<Vec<Segment>>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The field path as Kubernetes writes it: `spec.tiers.hot.bucket`,
    /// `spec.categories[1].name`.
    pub fn field_path(&self) -> String {
        let mut out = String::from("spec");
        for seg in &self.path {
            match seg {
                Field(name) => {
                    out.push('.');
                    out.push_str(name);
                }
                Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

impl EvidenceBucketSpec {
    /// What is wrong with this bucket: a malformed or non-UK region (`allowed`: the
    /// built-in UK regions and the installation's extras), a malformed endpoint, bucket
    /// names, prefixes and storage classes, the tier layout, a sweep interval under 1m.
    pub fn problems(&self, allowed: &AllowedRegions) -> Vec<Problem> {
        let mut out = Vec::new();
        region_problems(
            &[Field("region")],
            "spec.region",
            &self.region,
            allowed,
            &mut out,
        );
        if let Some(ep) = &self.endpoint {
            endpoint_problems(&[Field("endpoint")], ep, &mut out);
        }
        let tiers = [
            ("hot", &self.tiers.hot),
            ("cool", &self.tiers.cool),
            ("legalHold", &self.tiers.legal_hold),
        ];
        for (name, t) in tiers {
            let at = |field| [Field("tiers"), Field(name), Field(field)];
            if let Some(p) = bucket_name_problem(&t.bucket) {
                out.push(Problem::at(at("bucket"), p));
            }
            if t.prefix.as_deref().is_some_and(|p| p.starts_with('/')) {
                out.push(Problem::at(at("prefix"), PREFIX_MESSAGE));
            }
            if let Some(class) = &t.storage_class {
                let b = class.as_bytes();
                let well_formed = b.first().is_some_and(u8::is_ascii_uppercase)
                    && b.iter()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_');
                if !well_formed {
                    out.push(Problem::at(
                        at("storageClass"),
                        format!("{class:?}: {STORAGE_CLASS_MESSAGE}"),
                    ));
                } else if class == "GLACIER" || class == "DEEP_ARCHIVE" {
                    out.push(Problem::at(
                        at("storageClass"),
                        ARCHIVE_STORAGE_CLASS_MESSAGE,
                    ));
                }
            }
        }
        let (hot, cool, lh) = (&self.tiers.hot, &self.tiers.cool, &self.tiers.legal_hold);
        if lh.bucket == hot.bucket || lh.bucket == cool.bucket {
            out.push(Problem::at(
                [Field("tiers"), Field("legalHold"), Field("bucket")],
                LEGAL_HOLD_OWN_BUCKET_MESSAGE,
            ));
        }
        let prefix = |t: &TierLocation| t.prefix.clone().unwrap_or_default();
        let distinct_class =
            matches!((&hot.storage_class, &cool.storage_class), (Some(a), Some(b)) if a != b);
        if hot.bucket == cool.bucket && prefix(hot) == prefix(cool) && !distinct_class {
            out.push(Problem::at(
                [Field("tiers"), Field("cool")],
                HOT_COOL_DISTINCT_MESSAGE,
            ));
        }
        if self.sweep_interval.as_std() < MIN_INTERVAL {
            out.push(Problem::at(
                [Field("sweepInterval")],
                format!(
                    "sweepInterval {}: {INTERVAL_MIN_MESSAGE}",
                    self.sweep_interval
                ),
            ));
        }
        out
    }
}

/// Whether a duration is finite and at most 90 days (the restore window's and the
/// export copies' limit).
fn within_90_days(w: &RetentionDuration) -> bool {
    use super::duration::DurationUnit;
    match *w {
        RetentionDuration::Forever => false,
        RetentionDuration::Finite { amount: n, unit } => match unit {
            DurationUnit::Hours => n <= 24 * MAX_RESTORE_WINDOW_DAYS as u32,
            DurationUnit::Days => n <= MAX_RESTORE_WINDOW_DAYS as u32,
            DurationUnit::Weeks => n <= 12,
            DurationUnit::Months => n <= 3,
            DurationUnit::Years => false,
        },
    }
}

impl RetentionPolicySpec {
    /// What is wrong with this policy: [`category_problems`](Self::category_problems)
    /// then [`safety_floor_problems`](Self::safety_floor_problems).
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = self.category_problems();
        out.extend(self.safety_floor_problems());
        out.extend(self.restore_window_problems());
        out
    }

    /// A `restoreWindow` that is `Forever` or longer than 90 days (the CRD's rule).
    pub fn restore_window_problems(&self) -> Vec<Problem> {
        let Some(w) = &self.restore_window else {
            return Vec::new();
        };
        if within_90_days(w) {
            Vec::new()
        } else {
            vec![Problem::at(
                [Field("restoreWindow")],
                format!("{w}: {RESTORE_WINDOW_MESSAGE}"),
            )]
        }
    }

    /// Category names that are malformed or listed twice, and more than 100 categories.
    pub fn category_problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, c) in self.categories.iter().enumerate() {
            let at = || [Field("categories"), Index(i), Field("name")];
            if !is_dns_label(&c.name) {
                out.push(Problem::at(
                    at(),
                    format!("category {:?}: {CATEGORY_NAME_MESSAGE}", c.name),
                ));
            }
            if !seen.insert(c.name.as_str()) {
                out.push(Problem::at(
                    at(),
                    format!(
                        "{CATEGORY_NAMES_UNIQUE_MESSAGE}: {:?} is listed twice",
                        c.name
                    ),
                ));
            }
        }
        if self.categories.len() > 100 {
            out.push(Problem::at([Field("categories")], "at most 100 categories"));
        }
        out
    }

    /// Retentions (the default's, a category's) shorter than the safety floor
    /// `minimumAge`: a policy that says one thing and does another, since nothing is
    /// deleted before `minimumAge`. Calendar durations are compared from several start
    /// times (month lengths differ); each problem is listed once.
    pub fn safety_floor_problems(&self) -> Vec<Problem> {
        let mut out: Vec<Problem> = Vec::new();
        for t0 in reference_times() {
            let Some(floor) = self.minimum_age.after(t0) else {
                break; // minimumAge Forever: nothing is ever deleted; nothing to compare
            };
            let mut short = |path: Vec<Segment>, what: String, retention: &RetentionDuration| {
                if retention.after(t0).is_some_and(|end| end < floor) {
                    let msg = format!(
                        "{what}: retention {retention} is shorter than the safety floor minimumAge {}: clips would be kept until minimumAge anyway",
                        self.minimum_age
                    );
                    if !out.iter().any(|p| p.message == msg) {
                        out.push(Problem::at(path, msg));
                    }
                }
            };
            short(
                vec![Field("default"), Field("retention")],
                "default".into(),
                &self.default.retention,
            );
            for (i, c) in self.categories.iter().enumerate() {
                short(
                    vec![Field("categories"), Index(i), Field("retention")],
                    format!("category {:?}", c.name),
                    &c.retention,
                );
            }
        }
        out
    }
}

/// Clip keys that are empty or start with `/`, each at `path` and its index (a hold's,
/// a request's, a restore's).
/// A malformed region, or one the installation does not allow (`shown`: how the
/// message names the field).
fn region_problems(
    path: &[Segment],
    shown: &str,
    region: &str,
    allowed: &AllowedRegions,
    out: &mut Vec<Problem>,
) {
    if !is_dns_label(region) {
        out.push(Problem::at(
            path.to_vec(),
            format!("region {region:?}: {REGION_NAME_MESSAGE}"),
        ));
    } else if !allowed.contains(region) {
        out.push(Problem::at(
            path.to_vec(),
            format!(
                "{shown}: {region} is not an allowed UK region (allowed: {allowed}; pass --allowed-regions for an installation's on-premises UK regions)"
            ),
        ));
    }
}

/// A malformed endpoint URL, or a link-local or cloud metadata address.
fn endpoint_problems(path: &[Segment], ep: &str, out: &mut Vec<Problem>) {
    let host = ep
        .strip_prefix("https://")
        .or_else(|| ep.strip_prefix("http://"))
        .map(|r| r.split(['/', ':', '?', '#']).next().unwrap_or_default());
    if host.is_none_or(str::is_empty) || ep.len() > 2048 {
        out.push(Problem::at(
            path.to_vec(),
            format!("endpoint {ep:?}: {ENDPOINT_MESSAGE}"),
        ));
    } else if let Err(e) = endpoint_host(ep)
        && e.contains(ENDPOINT_METADATA_MESSAGE)
    {
        out.push(Problem::at(path.to_vec(), e));
    }
}

fn key_problems(path: &[Segment], keys: &[String], out: &mut Vec<Problem>) {
    for (i, k) in keys.iter().enumerate() {
        if k.is_empty() || k.starts_with('/') {
            let mut at = path.to_vec();
            at.push(Index(i));
            out.push(Problem::at(at, format!("{k:?}: {KEYS_MESSAGE}")));
        }
    }
}

/// A selector's `matchTags` beyond the S3 tag limits (a hold's, a request's).
fn match_tag_problems(tags: &std::collections::BTreeMap<String, String>, out: &mut Vec<Problem>) {
    let at = || [Field("selector"), Field("matchTags")];
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            out.push(Problem::at(at(), MATCH_TAGS_MESSAGE));
        }
    }
    if tags.len() > 10 {
        out.push(Problem::at(at(), "at most 10 matchTags (the S3 tag limit)"));
    }
}

impl LegalHoldSpec {
    /// What is wrong with this hold: a blank case reference or reason, an empty
    /// selector, malformed keys, tags beyond the S3 limits, a blank camera or a
    /// reversed camera window.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.case_reference.trim().is_empty() {
            out.push(Problem::at(
                [Field("caseReference")],
                CASE_REFERENCE_BLANK_MESSAGE,
            ));
        }
        if self.reason.trim().is_empty() {
            out.push(Problem::at([Field("reason")], REASON_BLANK_MESSAGE));
        }
        let s = &self.selector;
        if s.keys.is_empty() && s.match_tags.is_empty() && s.camera_window.is_none() {
            out.push(Problem::at([Field("selector")], SELECTOR_EMPTY_MESSAGE));
        }
        key_problems(&[Field("selector"), Field("keys")], &s.keys, &mut out);
        match_tag_problems(&s.match_tags, &mut out);
        if let Some(w) = &s.camera_window {
            if w.camera.trim().is_empty() {
                out.push(Problem::at(
                    [Field("selector"), Field("cameraWindow"), Field("camera")],
                    CAMERA_BLANK_MESSAGE,
                ));
            }
            if w.from > w.to {
                out.push(Problem::at(
                    [Field("selector"), Field("cameraWindow")],
                    CAMERA_WINDOW_ORDER_MESSAGE,
                ));
            }
        }
        out
    }
}

/// `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`: region and category names.
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(ok)
        && b.last().is_some_and(ok)
        && b.iter().all(|c| ok(c) || *c == b'-')
}

/// The S3 bucket-naming rules, as the CRD checks them.
fn bucket_name_problem(s: &str) -> Option<String> {
    if s.len() < 3 {
        return Some(format!("bucket {s:?} should be at least 3 chars long"));
    }
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid = b.len() <= 63
        && b.first().is_some_and(ok)
        && b.last().is_some_and(ok)
        && b.iter().all(|c| ok(c) || *c == b'.' || *c == b'-')
        && !s.contains("..");
    (!valid).then(|| format!("bucket {s:?}: {BUCKET_NAME_MESSAGE}"))
}

/// Start times at which calendar durations are compared (month lengths differ).
fn reference_times() -> Vec<DateTime<Utc>> {
    [(2024, 1, 31), (2024, 2, 1), (2025, 2, 1), (2025, 7, 1)]
        .iter()
        .filter_map(|(y, m, d)| Utc.with_ymd_and_hms(*y, *m, *d, 0, 0, 0).single())
        .collect()
}

/// The host of an endpoint URL (lower-case, without brackets or a trailing dot), or why
/// it may never be used: not a URL, or a link-local or cloud metadata address
/// (169.254.0.0/16, which holds the AWS, Azure and GCP metadata services, fe80::/10,
/// AWS's fd00:ec2::254, their IPv4-mapped forms, `metadata.google.internal`).
pub fn endpoint_host(endpoint: &str) -> Result<String, String> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| format!("endpoint {endpoint:?} is not a URL: {e}"))?;
    let host = uri
        .host()
        .ok_or_else(|| format!("endpoint {endpoint:?} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let metadata_ip = host.parse::<std::net::IpAddr>().is_ok_and(|ip| match ip {
        std::net::IpAddr::V4(v4) => v4.is_link_local(),
        std::net::IpAddr::V6(v6) => {
            v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_link_local())
        }
    });
    if metadata_ip || METADATA_HOSTS.contains(&host.as_str()) {
        return Err(format!(
            "endpoint {endpoint:?}: {ENDPOINT_METADATA_MESSAGE}; such endpoints are always refused"
        ));
    }
    Ok(host)
}

/// Host names of cloud metadata services.
const METADATA_HOSTS: &[&str] = &["metadata.google.internal", "metadata", "instance-data"];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;
    use crate::api::{duration::Interval, legal_hold::CameraWindow};

    fn bucket() -> EvidenceBucketSpec {
        serde_json::from_value(json!({
            "region": "eu-west-2",
            "retentionPolicyRef": { "name": "met" },
            "tiers": {
                "hot": { "bucket": "unit-hot" },
                "cool": { "bucket": "unit-cool" },
                "legalHold": { "bucket": "unit-lock" }
            }
        }))
        .unwrap()
    }

    fn policy() -> RetentionPolicySpec {
        serde_json::from_value(json!({
            "categories": [
                { "name": "murder", "retention": "Forever", "onExpiry": "Review" },
                { "name": "stop-and-search", "retention": "6y", "onExpiry": "Review" }
            ]
        }))
        .unwrap()
    }

    fn hold() -> LegalHoldSpec {
        serde_json::from_value(json!({
            "bucketRef": { "name": "unit" },
            "caseReference": "01/123456/26",
            "reason": "CPS request",
            "selector": { "keys": ["2026/03/01/cam-0042/clip-0001.mp4"] }
        }))
        .unwrap()
    }

    fn none(problems: Vec<Problem>) {
        assert!(problems.is_empty(), "{problems:?}");
    }

    fn only(problems: Vec<Problem>) -> Problem {
        assert_eq!(problems.len(), 1, "{problems:?}");
        problems.into_iter().next().unwrap()
    }

    #[test]
    fn valid_specs_have_no_problems() {
        none(bucket().problems(&AllowedRegions::new::<_, &str>([])));
        none(policy().problems());
        none(RetentionPolicySpec::default().problems());
        none(hold().problems());
    }

    #[test]
    fn a_bucket_problem_names_its_field_and_the_crd_message() {
        let allowed = AllowedRegions::new::<_, &str>([]);
        let mut b = bucket();
        b.tiers.cool.prefix = Some("/clips".into());
        let p = only(b.problems(&allowed));
        assert_eq!(p.field_path(), "spec.tiers.cool.prefix");
        assert_eq!(p.message, PREFIX_MESSAGE);

        let mut b = bucket();
        b.tiers.legal_hold.bucket = "unit-hot".into();
        let p = only(b.problems(&allowed));
        assert_eq!(p.field_path(), "spec.tiers.legalHold.bucket");
        assert_eq!(p.message, LEGAL_HOLD_OWN_BUCKET_MESSAGE);

        let mut b = bucket();
        b.region = "EU-West-2".into();
        let p = only(b.problems(&allowed));
        assert_eq!(
            p.message,
            format!("region \"EU-West-2\": {REGION_NAME_MESSAGE}")
        );

        let mut b = bucket();
        b.sweep_interval = Interval::minutes(1);
        none(b.problems(&allowed));
        b.sweep_interval = "59s".parse().unwrap();
        let p = only(b.problems(&allowed));
        assert_eq!(
            p.message,
            format!("sweepInterval 59s: {INTERVAL_MIN_MESSAGE}")
        );
    }

    #[test]
    fn a_region_outside_the_uk_is_a_problem_unless_the_installation_allows_it() {
        let mut b = bucket();
        b.region = "uk-london-1".into();
        let p = only(b.problems(&AllowedRegions::new::<_, &str>([])));
        assert_eq!(p.path, [Field("region")]);
        assert!(p.message.contains("is not an allowed UK region"), "{p:?}");
        none(b.problems(&AllowedRegions::new(["uk-london-1"])));
    }

    #[test]
    fn a_policy_problem_names_its_field_and_the_crd_message() {
        let mut p = policy();
        p.categories[1].name = "murder".into();
        let problem = only(p.problems());
        assert_eq!(problem.field_path(), "spec.categories[1].name");
        assert_eq!(
            problem.message,
            format!("{CATEGORY_NAMES_UNIQUE_MESSAGE}: \"murder\" is listed twice")
        );

        let mut p = policy();
        p.categories[0].name = "Domestic Abuse".into();
        let problem = only(p.problems());
        assert_eq!(
            problem.message,
            format!("category \"Domestic Abuse\": {CATEGORY_NAME_MESSAGE}")
        );
    }

    #[test]
    fn a_retention_under_the_safety_floor_is_a_problem_once() {
        let mut p = policy();
        p.categories[1].retention = RetentionDuration::hours(12);
        p.minimum_age = RetentionDuration::days(2);
        let problem = only(p.problems());
        assert_eq!(problem.field_path(), "spec.categories[1].retention");
        assert!(
            problem
                .message
                .starts_with("category \"stop-and-search\": retention 12h is shorter than the safety floor minimumAge 2d"),
            "{problem:?}"
        );
        // a month is shorter than 31 days from some start times only: still once
        p.categories[1].retention = "1mo".parse().unwrap();
        p.minimum_age = RetentionDuration::days(31);
        assert_eq!(p.problems().len(), 1, "{:?}", p.problems());
        p.minimum_age = RetentionDuration::Forever;
        none(p.problems());
    }

    #[test]
    fn a_hold_problem_names_its_field_and_the_crd_message() {
        let mut h = hold();
        h.reason = "  ".into();
        let p = only(h.problems());
        assert_eq!(p.field_path(), "spec.reason");
        assert_eq!(p.message, REASON_BLANK_MESSAGE);

        let mut h = hold();
        h.selector.keys.push("/abs".into());
        let p = only(h.problems());
        assert_eq!(p.field_path(), "spec.selector.keys[1]");
        assert_eq!(p.message, format!("\"/abs\": {KEYS_MESSAGE}"));

        let mut h = hold();
        h.selector.keys.clear();
        assert_eq!(only(h.problems()).message, SELECTOR_EMPTY_MESSAGE);

        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let mut h = hold();
        h.selector.camera_window = Some(CameraWindow {
            camera: "cam-0042".into(),
            from: at("2026-03-02T00:00:00Z"),
            to: at("2026-03-01T00:00:00Z"),
        });
        let p = only(h.problems());
        assert_eq!(p.field_path(), "spec.selector.cameraWindow");
        assert_eq!(p.message, CAMERA_WINDOW_ORDER_MESSAGE);
    }

    #[test]
    fn names_follow_the_crd_patterns() {
        for ok in ["eu-west-2", "a", "uk-london-1"] {
            assert!(is_dns_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "EU", "a_b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
        assert_eq!(bucket_name_problem("unit-hot.v2"), None);
        for bad in ["ab", "Unit", "a..b", "-ab", "ab-", &"a".repeat(64)] {
            assert!(bucket_name_problem(bad).is_some(), "{bad}");
        }
    }
}
