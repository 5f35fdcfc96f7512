//! Time is injected: domain code never reads the system clock itself.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeZone, Utc};

/// Milliseconds since the Unix epoch; the unit of every stored timestamp.
pub type Millis = i64;

pub trait Clock: Send + Sync {
    fn now_ms(&self) -> Millis;

    fn now(&self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.now_ms()).single().unwrap_or_default()
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(clippy::disallowed_methods, reason = "the one place that reads the real clock")]
    fn now_ms(&self) -> Millis {
        Utc::now().timestamp_millis()
    }
}

/// A clock for tests that only moves when told to.
#[derive(Debug)]
pub struct MockClock(AtomicI64);

impl MockClock {
    pub fn new(start_ms: Millis) -> Self {
        Self(AtomicI64::new(start_ms))
    }

    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for MockClock {
    fn now_ms(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// Formats a timestamp the way the product's documents do: `2021-03-02T21:25:22.970+00:00`.
pub fn format_timestamp(ms: Millis) -> String {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// Reads a time given by an operator: RFC 3339 (`2026-11-29T08:00:00Z`, with or without fraction) or
/// milliseconds since the epoch.
pub fn parse_timestamp(text: &str) -> Option<Millis> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<Millis>() {
        return Some(ms);
    }
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_or_milliseconds() {
        assert_eq!(parse_timestamp("1700000000123"), Some(1_700_000_000_123));
        assert_eq!(parse_timestamp("2021-03-02T21:25:22.970+01:00"), Some(1_614_716_722_970));
        assert_eq!(parse_timestamp(&format_timestamp(1_614_716_722_970)), Some(1_614_716_722_970));
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
