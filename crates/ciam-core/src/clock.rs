//! Time as a parameter: domain code asks a [`Clock`], never the system, so
//! lockout and expiry can be tested by moving time instead of sleeping.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

/// A source of the current time.
pub trait Clock: Send + Sync + Debug {
    /// Now, in seconds since the Unix epoch.
    fn now(&self) -> UnixTime;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(clippy::disallowed_methods, reason = "the one place that reads the system time")]
    fn now(&self) -> UnixTime {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    }
}

/// A clock that is the system clock shifted by an adjustable offset; tests
/// move it forward to expire locks, passwords and tokens.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset: AtomicI64,
    /// The system time it stopped at, or 0 while it runs.
    frozen_at: AtomicI64,
}

impl OffsetClock {
    /// Moves this clock forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::SeqCst);
    }

    /// Stops the system time under this clock where it is; only
    /// [`OffsetClock::advance`] moves it from then on, so a test can assert
    /// exact seconds left whatever second its requests fall in.
    pub fn freeze(&self) {
        let _ = self.frozen_at.compare_exchange(0, SystemClock.now(), Ordering::SeqCst, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> UnixTime {
        let base = match self.frozen_at.load(Ordering::SeqCst) {
            0 => SystemClock.now(),
            at => at,
        };
        base + self.offset.load(Ordering::SeqCst)
    }
}

/// Formats a Unix time as RFC 3339 (UTC).
pub fn to_rfc3339(t: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Parses an RFC 3339 timestamp into a Unix time.
pub fn from_rfc3339(s: &str) -> Option<UnixTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok().map(|d| d.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        assert_eq!(to_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(from_rfc3339("2026-01-02T03:04:05Z"), Some(1_767_323_045));
        assert_eq!(from_rfc3339("2026-01-02T11:04:05+08:00"), Some(1_767_323_045));
        assert_eq!(from_rfc3339("yesterday"), None);
    }

    #[test]
    fn offset_clock_moves_forward() {
        let clock = OffsetClock::default();
        let before = clock.now();
        clock.advance(3600);
        assert!(clock.now() >= before + 3600);
    }

    #[test]
    fn a_frozen_clock_moves_only_when_advanced() {
        let clock = OffsetClock::default();
        clock.freeze();
        let at = clock.now();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(clock.now(), at);
        clock.advance(61);
        assert_eq!(clock.now(), at + 61);
    }
}
