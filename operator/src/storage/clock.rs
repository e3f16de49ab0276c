//! A server's clock as an HTTP answer shows it: its `Date` header, and when by the
//! local wall clock the request was sent and the answer received. The controller
//! compares such readings (of the S3 store, [`crate::storage::TierStore::server_date`],
//! and of the API server) with the local clock before it lets a sweep delete anything.

use chrono::{DateTime, TimeDelta, Utc};

/// One reading of a server's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerDate {
    /// The answer's `Date` header (whole seconds, truncated by the server).
    pub date: DateTime<Utc>,
    /// The local wall clock just before the request was sent.
    pub sent: DateTime<Utc>,
    /// The local wall clock once the answer had arrived.
    pub received: DateTime<Utc>,
}

impl ServerDate {
    /// The same reading with `offset` added to the local times (a test shifts the local
    /// clock this way without touching the machine's).
    pub fn shift_local(self, offset: TimeDelta) -> ServerDate {
        ServerDate {
            sent: self.sent + offset,
            received: self.received + offset,
            ..self
        }
    }
}

/// Parse an HTTP `Date` header (RFC 9110's IMF-fixdate, `Sun, 06 Nov 1994 08:49:37
/// GMT`, which is RFC 2822 form). `None` for anything else.
pub fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(value.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_imf_fixdate_is_parsed() {
        let d = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            d.map(|d| d.to_rfc3339()).as_deref(),
            Some("1994-11-06T08:49:37+00:00")
        );
    }

    #[test]
    fn anything_else_is_not_a_date() {
        assert_eq!(parse_http_date(""), None);
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(parse_http_date("1994-11-06T08:49:37Z"), None);
    }
}
