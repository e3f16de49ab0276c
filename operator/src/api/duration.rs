//! The duration types of the API, as written in YAML.
//!
//! - [`RetentionDuration`]: how long something is kept or how old it must be:
//!   `24h`, `31d`, `2w`, `18mo`, `6y` or `Forever`. Used for retention periods,
//!   `coolAfter` and `minimumAge`.
//! - [`Interval`]: how often something runs: `90s`, `15m`, `1h`. Used for
//!   `sweepInterval`.
//!
//! # What a day, a month and a year mean
//! Retention is counted on the UTC calendar, never approximated:
//! - `h` is 3,600 seconds; `d` is 24 hours; `w` is 7 days (UTC has no daylight saving,
//!   so a day is always 24 hours).
//! - `mo` is a calendar month and `y` is 12 calendar months: `2020-01-15T10:00Z` plus
//!   `6y` is `2026-01-15T10:00Z`, whatever the leap years in between.
//! - When the same day does not exist in the target month (31 January plus `1mo`,
//!   29 February plus `1y`), the result moves *forward* to the first day of the
//!   following month at the same time of day, so a clip is never released early:
//!   `2024-02-29` plus `1y` is `2025-03-01`.
//!
//! Each type serialises as its string form, and its JSON schema carries a `pattern`
//! and a CEL rule with a readable message, so the API server refuses `7years` at
//! apply time.

use std::{borrow::Cow, fmt, str::FromStr, time::Duration as StdDuration};

use chrono::{DateTime, Datelike, Months, TimeDelta, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The regular expression every [`RetentionDuration`] matches (anchored).
pub const RETENTION_DURATION_PATTERN: &str = "^(Forever|[1-9][0-9]{0,3}(h|d|w|mo|y))$";
/// The regular expression every [`Interval`] matches (anchored).
pub const INTERVAL_PATTERN: &str = "^[1-9][0-9]{0,4}(s|m|h)$";

/// The schema's message for a [`RetentionDuration`] not of the documented form.
pub const RETENTION_DURATION_MESSAGE: &str =
    "must be a duration such as 24h, 31d, 2w, 18mo, 6y, or Forever";
/// The schema's message for an [`Interval`] not of the documented form.
pub const INTERVAL_MESSAGE: &str = "must be an interval such as 90s, 15m or 1h";
/// The schema's message for an [`Interval`] shorter than [`MIN_INTERVAL`].
pub const INTERVAL_MIN_MESSAGE: &str = "must be at least 1m";
/// The shortest [`Interval`] the schema allows.
pub const MIN_INTERVAL: StdDuration = StdDuration::from_secs(60);

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string is not of the documented form.
    #[error(
        "invalid duration {0:?}: expected a whole number (1 to 9999) followed by h, d, w, mo or y (such as 24h, 31d, 6y), or Forever"
    )]
    Retention(String),
    /// The string is not of the documented interval form.
    #[error(
        "invalid interval {0:?}: expected a whole number (1 to 99999) followed by s, m or h (such as 90s, 15m, 1h)"
    )]
    Interval(String),
}

/// The unit of a finite [`RetentionDuration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DurationUnit {
    /// `h`: 3,600 seconds.
    Hours,
    /// `d`: 24 hours.
    Days,
    /// `w`: 7 days.
    Weeks,
    /// `mo`: a calendar month (see the module docs for the end-of-month rule).
    Months,
    /// `y`: 12 calendar months.
    Years,
}

impl DurationUnit {
    /// The suffix written in YAML.
    pub fn suffix(self) -> &'static str {
        match self {
            DurationUnit::Hours => "h",
            DurationUnit::Days => "d",
            DurationUnit::Weeks => "w",
            DurationUnit::Months => "mo",
            DurationUnit::Years => "y",
        }
    }
}

/// A retention period or an age: a whole number of hours, days, weeks, calendar months
/// or calendar years, or `Forever`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetentionDuration {
    /// Never runs out.
    Forever,
    /// `amount` units.
    Finite {
        /// How many units (1 to 9999).
        amount: u32,
        /// Which unit.
        unit: DurationUnit,
    },
}

impl RetentionDuration {
    /// A finite duration of `amount` hours.
    pub const fn hours(amount: u32) -> Self {
        RetentionDuration::Finite {
            amount,
            unit: DurationUnit::Hours,
        }
    }

    /// A finite duration of `amount` days.
    pub const fn days(amount: u32) -> Self {
        RetentionDuration::Finite {
            amount,
            unit: DurationUnit::Days,
        }
    }

    /// A finite duration of `amount` calendar years.
    pub const fn years(amount: u32) -> Self {
        RetentionDuration::Finite {
            amount,
            unit: DurationUnit::Years,
        }
    }

    /// Whether this is `Forever`.
    pub fn is_forever(&self) -> bool {
        matches!(self, RetentionDuration::Forever)
    }

    /// `start` plus this duration on the UTC calendar; `None` for `Forever` (and for a
    /// result beyond the representable range, which is as good as forever).
    pub fn after(&self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let (amount, unit) = match *self {
            RetentionDuration::Forever => return None,
            RetentionDuration::Finite { amount, unit } => (amount, unit),
        };
        let fixed =
            |hours: i64| TimeDelta::try_hours(hours).and_then(|d| start.checked_add_signed(d));
        match unit {
            DurationUnit::Hours => fixed(i64::from(amount)),
            DurationUnit::Days => fixed(i64::from(amount) * 24),
            DurationUnit::Weeks => fixed(i64::from(amount) * 24 * 7),
            DurationUnit::Months => add_calendar_months(start, amount),
            DurationUnit::Years => add_calendar_months(start, amount.checked_mul(12)?),
        }
    }
}

/// Calendar months forward, rolling a missing day forward to the 1st of the next month.
fn add_calendar_months(start: DateTime<Utc>, months: u32) -> Option<DateTime<Utc>> {
    let end = start.checked_add_months(Months::new(months))?;
    if end.day() == start.day() {
        return Some(end);
    }
    // chrono clamped to the last day of the month: move to the 1st of the next month.
    let next = end.checked_add_signed(TimeDelta::days(1))?;
    Some(next)
}

impl fmt::Display for RetentionDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetentionDuration::Forever => f.write_str("Forever"),
            RetentionDuration::Finite { amount, unit } => write!(f, "{amount}{}", unit.suffix()),
        }
    }
}

impl FromStr for RetentionDuration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "Forever" {
            return Ok(RetentionDuration::Forever);
        }
        let err = || DurationError::Retention(s.to_string());
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (number, suffix) = s.split_at(digits);
        let unit = match suffix {
            "h" => DurationUnit::Hours,
            "d" => DurationUnit::Days,
            "w" => DurationUnit::Weeks,
            "mo" => DurationUnit::Months,
            "y" => DurationUnit::Years,
            _ => return Err(err()),
        };
        if number.is_empty() || number.len() > 4 || number.starts_with('0') {
            return Err(err());
        }
        let amount: u32 = number.parse().map_err(|_| err())?;
        Ok(RetentionDuration::Finite { amount, unit })
    }
}

impl Serialize for RetentionDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RetentionDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for RetentionDuration {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "RetentionDuration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A whole number (1 to 9999) followed by h (hours), d (days), w (weeks), mo (calendar months) or y (calendar years), or Forever.",
            "maxLength": 7,
            "pattern": RETENTION_DURATION_PATTERN,
            "x-kubernetes-validations": [{
                "rule": format!("self.matches('{RETENTION_DURATION_PATTERN}')"),
                "message": RETENTION_DURATION_MESSAGE
            }]
        })
    }
}

/// A repeat interval: a whole number of seconds, minutes or hours (`90s`, `15m`, `1h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interval {
    amount: u32,
    unit: IntervalUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum IntervalUnit {
    Seconds,
    Minutes,
    Hours,
}

impl Interval {
    /// An interval of `amount` minutes.
    pub const fn minutes(amount: u32) -> Self {
        Interval {
            amount,
            unit: IntervalUnit::Minutes,
        }
    }

    /// An interval of `amount` hours.
    pub const fn hours(amount: u32) -> Self {
        Interval {
            amount,
            unit: IntervalUnit::Hours,
        }
    }

    /// The interval as a standard duration.
    pub fn as_std(&self) -> StdDuration {
        let secs = u64::from(self.amount)
            * match self.unit {
                IntervalUnit::Seconds => 1,
                IntervalUnit::Minutes => 60,
                IntervalUnit::Hours => 3600,
            };
        StdDuration::from_secs(secs)
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffix = match self.unit {
            IntervalUnit::Seconds => "s",
            IntervalUnit::Minutes => "m",
            IntervalUnit::Hours => "h",
        };
        write!(f, "{}{suffix}", self.amount)
    }
}

impl FromStr for Interval {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DurationError::Interval(s.to_string());
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (number, suffix) = s.split_at(digits);
        let unit = match suffix {
            "s" => IntervalUnit::Seconds,
            "m" => IntervalUnit::Minutes,
            "h" => IntervalUnit::Hours,
            _ => return Err(err()),
        };
        if number.is_empty() || number.len() > 5 || number.starts_with('0') {
            return Err(err());
        }
        let amount: u32 = number.parse().map_err(|_| err())?;
        Ok(Interval { amount, unit })
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Interval {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Interval".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A whole number followed by s (seconds), m (minutes) or h (hours); at least 1m.",
            "maxLength": 6,
            "pattern": INTERVAL_PATTERN,
            "x-kubernetes-validations": [
                {
                    "rule": format!("self.matches('{INTERVAL_PATTERN}')"),
                    "message": INTERVAL_MESSAGE
                },
                {
                    "rule": format!("!self.matches('{INTERVAL_PATTERN}') || duration(self) >= duration('1m')"),
                    "message": INTERVAL_MIN_MESSAGE
                }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    fn t(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 10, 0, 0).unwrap()
    }

    #[test]
    fn parses_the_documented_forms() {
        for (s, want) in [
            ("24h", RetentionDuration::hours(24)),
            ("31d", RetentionDuration::days(31)),
            ("6y", RetentionDuration::years(6)),
            ("Forever", RetentionDuration::Forever),
        ] {
            assert_eq!(s.parse::<RetentionDuration>().unwrap(), want);
            assert_eq!(want.to_string(), s);
        }
        for bad in [
            "", "0d", "07d", "7years", "7Y", "forever", "1.5y", "-1d", "10000d", "d", "6 y",
        ] {
            assert!(bad.parse::<RetentionDuration>().is_err(), "{bad} accepted");
        }
        assert_eq!("15m".parse::<Interval>().unwrap().as_std().as_secs(), 900);
        assert!("15mo".parse::<Interval>().is_err());
        assert!("0s".parse::<Interval>().is_err());
    }

    #[test]
    fn calendar_arithmetic_never_ends_early() {
        assert_eq!(
            RetentionDuration::years(6).after(t(2020, 1, 15)),
            Some(t(2026, 1, 15))
        );
        assert_eq!(
            RetentionDuration::years(1).after(t(2024, 2, 29)),
            Some(t(2025, 3, 1))
        );
        let one_month = "1mo".parse::<RetentionDuration>().unwrap();
        assert_eq!(one_month.after(t(2026, 1, 31)), Some(t(2026, 3, 1)));
        assert_eq!(one_month.after(t(2026, 1, 28)), Some(t(2026, 2, 28)));
        assert_eq!(
            RetentionDuration::days(31).after(t(2026, 1, 2)),
            Some(t(2026, 2, 2))
        );
        assert_eq!(RetentionDuration::Forever.after(t(2026, 1, 2)), None);
    }

    #[test]
    fn schema_pattern_is_the_parser() {
        // The pattern in the schema and the parser agree on a sample of strings.
        let re_ok = |s: &str| {
            s == "Forever"
                || (s.len() >= 2
                    && s.as_bytes()[0] != b'0'
                    && s.as_bytes()[0].is_ascii_digit()
                    && {
                        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
                        digits <= 4 && ["h", "d", "w", "mo", "y"].contains(&&s[digits..])
                    })
        };
        for s in ["1h", "9999y", "10000y", "12mo", "0h", "Forever", "x", "1m"] {
            assert_eq!(re_ok(s), s.parse::<RetentionDuration>().is_ok(), "{s}");
        }
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(amount in 1u32..10000, unit in 0usize..5) {
            let unit = [DurationUnit::Hours, DurationUnit::Days, DurationUnit::Weeks,
                        DurationUnit::Months, DurationUnit::Years][unit];
            let d = RetentionDuration::Finite { amount, unit };
            prop_assert_eq!(d.to_string().parse::<RetentionDuration>().unwrap(), d);
            let json = serde_json::to_string(&d).unwrap();
            prop_assert_eq!(serde_json::from_str::<RetentionDuration>(&json).unwrap(), d);
        }

        #[test]
        fn after_is_never_before_the_fixed_length_lower_bound(
            secs in 0i64..4_000_000_000, amount in 1u32..200, unit in 0usize..5
        ) {
            // A month is at least 28 days, a year at least 365 days.
            let (unit, min_days) = [(DurationUnit::Hours, 0), (DurationUnit::Days, 1),
                (DurationUnit::Weeks, 7), (DurationUnit::Months, 28), (DurationUnit::Years, 365)][unit];
            let start = DateTime::from_timestamp(secs, 0).unwrap();
            let end = RetentionDuration::Finite { amount, unit }.after(start).unwrap();
            prop_assert!(end > start);
            prop_assert!(end - start >= TimeDelta::days(i64::from(amount) * min_days));
        }
    }
}
