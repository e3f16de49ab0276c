//! The clock check of a sweep (part of [`super::apply`]): just before the planner
//! takes its `now`, the local wall clock is compared with the S3 store's and the API
//! server's, each read from the `Date` header of one request (S3: a `HeadBucket`; the
//! API server: `GET /version`). When either differs by more than `--max-clock-skew`
//! the sweep is refused ([`Refusal::ClockSkew`]): nothing is moved, held, released or
//! deleted. A clip's age is counted by the local clock against times the servers wrote
//! (`LastModified`, the recording time), so a local clock running ahead would delete
//! clips before their retention or safety floor has run out.
//!
//! `Date` has whole seconds and is stamped somewhere between sending and receiving, so
//! a reading bounds the offset (server minus local) to `[date - received, date + 1 s -
//! sent]`; only a skew outside the tolerance for *every* offset in those bounds
//! refuses ([`skews`], pure). A slow answer widens the bounds and can only make the
//! check more lenient, never refuse a clock that agrees.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::refusal::Refusal;
use crate::{
    controller::{Context, Error},
    storage::{ServerDate, TierStore, clock::parse_http_date},
};

/// A server clock that disagrees with the local one by more than allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skew {
    /// Whose clock: `the API server`, `the S3 store (endpoint)`.
    pub clock: String,
    /// Server minus local, the smallest in magnitude the reading allows.
    pub offset: TimeDelta,
    /// The local clock when the answer arrived.
    pub local: DateTime<Utc>,
    /// The server's `Date`.
    pub server: DateTime<Utc>,
}

impl std::fmt::Display for Skew {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (how, by) = if self.offset < TimeDelta::zero() {
            ("ahead of", -self.offset)
        } else {
            ("behind", self.offset)
        };
        write!(
            f,
            "the local clock is at least {} {how} {}: local {}, its Date {}",
            human(by),
            self.clock,
            self.local.format("%Y-%m-%dT%H:%M:%SZ"),
            self.server.format("%Y-%m-%dT%H:%M:%SZ"),
        )
    }
}

/// The offset (server minus local) a reading proves, the smallest in magnitude that
/// its bounds allow: zero when the bounds include zero.
pub fn offset(reading: &ServerDate) -> TimeDelta {
    let low = reading.date - reading.received;
    let high = reading.date + TimeDelta::seconds(1) - reading.sent;
    if low > TimeDelta::zero() {
        low
    } else if high < TimeDelta::zero() {
        high
    } else {
        TimeDelta::zero()
    }
}

/// The readings whose server clock is more than `max` from the local clock (pure).
pub fn skews(readings: &[(String, ServerDate)], max: Duration) -> Vec<Skew> {
    let max = TimeDelta::from_std(max).unwrap_or(TimeDelta::MAX);
    readings
        .iter()
        .filter_map(|(clock, r)| {
            let offset = offset(r);
            (offset.abs() > max).then(|| Skew {
                clock: clock.clone(),
                offset,
                local: r.received,
                server: r.date,
            })
        })
        .collect()
}

/// The refusal for these skews, if there are any (pure).
pub fn refusal(skews: &[Skew], max: Duration) -> Option<Refusal> {
    if skews.is_empty() {
        return None;
    }
    let found: Vec<String> = skews.iter().map(Skew::to_string).collect();
    Some(Refusal::ClockSkew(format!(
        "{}; more than the {} allowed (--max-clock-skew)",
        found.join("; "),
        human(TimeDelta::from_std(max).unwrap_or(TimeDelta::MAX)),
    )))
}

/// Read both server clocks and compare them with the local one (shifted by the
/// settings' `skew_check_offset`, zero outside tests), for the EvidenceBucket `key`
/// whose store is `store` (named `s3_name` in messages). A server whose answer carries
/// no `Date` is not compared. A store that denies the request is the refusal
/// `AccessDenied`.
pub async fn check(
    ctx: &Context,
    key: &str,
    store: &dyn TierStore,
    s3_name: String,
) -> Result<Option<Refusal>, Error> {
    let shift = ctx.settings.skew_check_offset;
    let mut readings = Vec::with_capacity(2);
    match store.server_date().await {
        Ok(Some(r)) => readings.push((s3_name, r.shift_local(shift))),
        Ok(None) => tracing::warn!(
            bucket = key,
            "the store's answer carried no Date: its clock is not compared"
        ),
        Err(e) => {
            return Refusal::from_storage(e)
                .map(Some)
                .map_err(|source| Error::Storage {
                    bucket: key.to_string(),
                    source,
                });
        }
    }
    let api = api_server_date(&ctx.client)
        .await
        .map_err(Error::read("the API server's clock (GET /version)"))?;
    match api {
        Some(r) => readings.push(("the API server".to_string(), r.shift_local(shift))),
        None => tracing::warn!(
            bucket = key,
            "the API server's answer carried no Date: its clock is not compared"
        ),
    }
    let max = ctx.settings.max_clock_skew;
    let found = skews(&readings, max);
    for s in &found {
        tracing::warn!(bucket = key, clock = %s.clock, offset_seconds = s.offset.num_seconds(), "clock skew");
    }
    Ok(refusal(&found, max))
}

/// The API server's clock: the `Date` of `GET /version` (readable by every
/// authenticated user through the default `system:public-info-viewer` role).
async fn api_server_date(client: &kube::Client) -> Result<Option<ServerDate>, kube::Error> {
    let req = http::Request::get("/version")
        .body(kube::client::Body::from(Vec::new()))
        .map_err(kube::Error::HttpError)?;
    let sent = Utc::now();
    let res = client.send(req).await?;
    let received = Utc::now();
    Ok(res
        .headers()
        .get(http::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
        .map(|date| ServerDate {
            date,
            sent,
            received,
        }))
}

/// A duration for people: `5m 3s`, `2d 0h 0m 1s`, `40s`.
fn human(d: TimeDelta) -> String {
    let secs = d.num_seconds().max(0);
    let (days, hours, minutes, seconds) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    if days > 0 {
        format!("{days}d {hours}h {minutes}m {seconds}s")
    } else if hours > 0 {
        format!("{hours}h {minutes}m {seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m {seconds}s")
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap()
    }

    /// A reading: the server's `Date`, the local clock `rtt_ms` milliseconds around
    /// `local`.
    fn reading(date: &str, local: &str, rtt_ms: i64) -> ServerDate {
        let local = at(local);
        ServerDate {
            date: at(date),
            sent: local - TimeDelta::milliseconds(rtt_ms / 2),
            received: local + TimeDelta::milliseconds(rtt_ms / 2),
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn clocks_that_agree_pass() {
        let r = reading("2026-03-01T12:00:00Z", "2026-03-01T12:00:00.400Z", 20);
        assert_eq!(offset(&r), TimeDelta::zero());
        assert!(skews(&[("s3".into(), r)], MINUTE).is_empty());
    }

    #[test]
    fn the_date_s_truncation_to_the_second_is_not_skew() {
        // Stamped at 12:00:00.999, truncated to 12:00:00; received at 12:00:01.000.
        let r = reading("2026-03-01T12:00:00Z", "2026-03-01T12:00:01.000Z", 2);
        assert_eq!(offset(&r), TimeDelta::zero());
    }

    #[test]
    fn a_local_clock_ahead_by_more_than_the_tolerance_is_skew() {
        let r = reading("2026-03-01T12:00:00Z", "2026-03-01T12:05:00.500Z", 20);
        let found = skews(&[("the S3 store (http://s3)".into(), r)], MINUTE);
        assert_eq!(found.len(), 1);
        assert!(found[0].offset < -TimeDelta::seconds(298), "{found:?}");
        let refusal = refusal(&found, MINUTE).unwrap();
        assert_eq!(refusal.reason(), "ClockSkew");
        let message = refusal.to_string();
        assert!(
            message
                .contains("the local clock is at least 4m 59s ahead of the S3 store (http://s3):")
                && message.contains("local 2026-03-01T12:05:00Z")
                && message.contains("its Date 2026-03-01T12:00:00Z")
                && message.contains("more than the 1m 0s allowed"),
            "{message}"
        );
    }

    #[test]
    fn a_local_clock_behind_is_skew_too() {
        let r = reading("2026-03-01T12:02:00Z", "2026-03-01T12:00:00Z", 10);
        let found = skews(&[("the API server".into(), r)], MINUTE);
        assert_eq!(found.len(), 1);
        assert!(found[0].to_string().contains("behind the API server:"));
    }

    #[test]
    fn the_tolerance_is_inclusive_and_counts_the_whole_second() {
        // 61 s apart by the Date, but the stamp may have been 60.x s: not more than 60.
        let r = reading("2026-03-01T12:00:00Z", "2026-03-01T12:01:01Z", 0);
        assert_eq!(offset(&r), -TimeDelta::seconds(60));
        assert!(skews(&[("s3".into(), r)], MINUTE).is_empty());
        let r = reading("2026-03-01T12:00:00Z", "2026-03-01T12:01:02Z", 0);
        assert_eq!(skews(&[("s3".into(), r)], MINUTE).len(), 1);
    }

    #[test]
    fn a_slow_answer_widens_the_bounds_and_never_refuses_an_agreeing_clock() {
        // The answer took 3 minutes: a Date 90 s before the local midpoint may have
        // been stamped at the start.
        let r = reading("2026-03-01T12:00:00Z", "2026-03-01T12:01:30Z", 180_000);
        assert_eq!(offset(&r), TimeDelta::zero());
    }

    #[test]
    fn every_skewed_clock_is_named() {
        let ok = reading("2026-03-01T12:00:00Z", "2026-03-01T12:00:00Z", 10);
        let bad = reading("2026-03-01T12:00:00Z", "2026-03-01T14:00:00Z", 10);
        let found = skews(
            &[
                ("the S3 store".into(), bad),
                ("the API server".into(), ok),
                ("another".into(), bad),
            ],
            MINUTE,
        );
        let message = refusal(&found, MINUTE).unwrap().to_string();
        assert!(
            message.contains("the S3 store:") && message.contains("another:"),
            "{message}"
        );
        assert!(!message.contains("API server"), "{message}");
        assert!(message.contains("1h 59m 58s"), "{message}");
        assert_eq!(refusal(&[], MINUTE), None);
    }
}
