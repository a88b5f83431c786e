//! Instants with millisecond precision, the unit every backend stores.
//!
//! No serde here: the API's RFC 3339 text is the server's to write and read (its `wire` module),
//! the store keeps integer milliseconds, and `Display`/`parse_rfc3339` are all the domain needs.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// A UTC instant truncated to the millisecond, so what is stored is exactly what is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn plus_seconds(self, seconds: i64) -> Self {
        Timestamp(self.0.saturating_add(seconds.saturating_mul(1000)))
    }

    pub fn plus_millis(self, millis: i64) -> Self {
        Timestamp(self.0.saturating_add(millis))
    }

    /// The UTC day number, used for per-day claim limits.
    pub fn utc_day(self) -> i64 {
        self.0.div_euclid(86_400_000)
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| Timestamp(d.timestamp_millis()))
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(d: DateTime<Utc>) -> Self {
        Timestamp(d.timestamp_millis())
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_datetime().to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339_with_millis() {
        let t = Timestamp::parse_rfc3339("2026-11-23T10:00:00.123+01:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-23T09:00:00.123Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_string()), Some(t));
    }

    #[test]
    fn utc_day_changes_at_midnight() {
        let before = Timestamp::parse_rfc3339("2026-11-23T23:59:59.999Z").unwrap();
        let after = Timestamp::parse_rfc3339("2026-11-24T00:00:00Z").unwrap();
        assert_eq!(before.utc_day() + 1, after.utc_day());
    }
}
