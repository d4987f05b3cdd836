//! Time, passed in. Everything below the binary's start-up wiring asks a [`Clock`] for the time
//! instead of reading the wall clock, so tests move time forward with a [`FakeClock`] (lease
//! expiry, visibility timeouts, retries and backoff) instead of sleeping.
//!
//! [`SystemClock`] is the one place in ferry that reads the wall clock (a tidy test checks it).

use chrono::{DateTime, SubsecRound, Utc};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the time comes from. `now` answers at microsecond precision, the precision every
/// database ferry writes to keeps, so a time read back equals the time written.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// A clock shared by the store and the services.
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl SystemClock {
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// A clock that moves only when a test moves it (and, if it ticks, by a fixed step at every
/// reading, so that two events never share a time).
#[derive(Debug)]
pub struct FakeClock {
    now: Mutex<DateTime<Utc>>,
    tick: Duration,
}

impl FakeClock {
    /// A clock standing at `start` (truncated to microseconds).
    pub fn at(start: DateTime<Utc>) -> Arc<FakeClock> {
        Arc::new(FakeClock { now: Mutex::new(start.trunc_subsecs(6)), tick: Duration::ZERO })
    }

    /// A clock at 2026-01-01T00:00:00Z that moves `tick` forward after every reading.
    pub fn ticking(tick: Duration) -> Arc<FakeClock> {
        let start = FakeClock::new().now();
        Arc::new(FakeClock { now: Mutex::new(start), tick })
    }

    /// A clock standing at 2026-01-01T00:00:00Z.
    pub fn new() -> Arc<FakeClock> {
        FakeClock::at(DateTime::from_timestamp(1_767_225_600, 0).expect("a valid time"))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = later(*now, by).trunc_subsecs(6);
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to.trunc_subsecs(6);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        let read = *now;
        if !self.tick.is_zero() {
            *now = later(read, self.tick).trunc_subsecs(6);
        }
        read
    }
}

/// `t + d`, saturating at the largest representable time instead of panicking.
pub fn later(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d).ok().and_then(|d| t.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t - d`, saturating at the smallest representable time.
pub fn earlier(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d).ok().and_then(|d| t.checked_sub_signed(d)).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fake_clock_moves_only_when_told() {
        let clock = FakeClock::new();
        let start = clock.now();
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_millis(1500));
        assert_eq!((clock.now() - start).num_milliseconds(), 1500);
        clock.advance(Duration::from_nanos(999));
        assert_eq!((clock.now() - start).num_milliseconds(), 1500, "kept at microseconds");
    }

    #[test]
    fn a_ticking_clock_moves_at_every_reading() {
        let clock = FakeClock::ticking(Duration::from_millis(1));
        let (a, b) = (clock.now(), clock.now());
        assert_eq!((b - a).num_milliseconds(), 1);
    }

    #[test]
    fn times_saturate_instead_of_panicking() {
        let t = DateTime::<Utc>::MAX_UTC - chrono::Duration::seconds(1);
        assert_eq!(later(t, Duration::from_secs(3600)), DateTime::<Utc>::MAX_UTC);
        assert_eq!(earlier(DateTime::<Utc>::MIN_UTC, Duration::from_secs(1)), DateTime::<Utc>::MIN_UTC);
    }

    #[test]
    fn the_system_clock_keeps_microseconds() {
        assert_eq!(SystemClock.now().timestamp_subsec_nanos() % 1000, 0);
    }
}
