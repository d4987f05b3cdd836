//! The throttle's arithmetic: per client app, a sliding window of request counts and a count of
//! requests running. Pure: the time is passed in as the `Duration` since the limiter began, so
//! tests move it by hand.
//!
//! The window is a ring of [`SLOTS`]` + 1` counters, each covering `window / SLOTS`. A request
//! is counted in its slot, and a slot counts until it is more than `SLOTS` slots old; so every
//! request of the last `window` is counted (plus at most one slot's worth older ones), and no
//! span of `window` ever holds more requests than the limit. It costs the same few hundred bytes
//! per app whatever the limit, and it tells exactly when the next request will be let in.
//!
//! Memory is bounded: an app whose counts have all expired and which has nothing running holds
//! no information and is dropped (at most every [`SWEEP_INTERVAL`], and whenever a new app finds
//! the table full); beyond [`MAX_APPS`] busy apps a new app is let in untracked.

use std::collections::HashMap;
use std::time::Duration;

use ferry_domain::ThrottleLimits;

/// Slots a window is divided into: its precision is `window / SLOTS`.
pub(crate) const SLOTS: u64 = 60;
/// The ring holds the slots `head - SLOTS ..= head`.
const RING: usize = SLOTS as usize + 1;
/// Apps tracked at most (a few hundred bytes each).
pub(crate) const MAX_APPS: usize = 4096;
/// How often idle apps are dropped.
pub(crate) const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// What a refusal for too many running requests asks the client to wait: one of them may end
/// at any moment.
const CONCURRENT_RETRY_AFTER_SECS: u32 = 1;

/// Every tracked app's window and running requests.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    apps: HashMap<String, AppUse>,
    last_sweep: Duration,
}

/// A request let in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Counted: call [`Limiter::release`] when it ends.
    Tracked,
    /// The table is full of busy apps; this one is not held to its limits.
    Untracked,
}

/// Why a request is refused, and when to come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `limit` requests were let in over the last `window`; one more will be in `retry_after`.
    Requests { limit: u32, window: Duration, retry_after: Duration },
    /// `limit` requests are running.
    Concurrent { limit: u32 },
}

impl Refusal {
    /// The metric label.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Refusal::Requests { .. } => "requests",
            Refusal::Concurrent { .. } => "concurrent",
        }
    }

    /// Dynamics 365's words for it.
    pub(crate) fn message(&self) -> String {
        match self {
            Refusal::Requests { limit, window, .. } => format!(
                "Number of requests exceeded the limit of {limit} over the time window of {} seconds.",
                window.as_secs()
            ),
            Refusal::Concurrent { limit } => format!("Number of concurrent requests exceeded the limit of {limit}."),
        }
    }

    /// `Retry-After` in whole seconds, rounded up, at least 1.
    pub(crate) fn retry_after_secs(&self) -> u32 {
        match self {
            Refusal::Requests { retry_after, .. } => {
                let secs = retry_after.as_nanos().div_ceil(1_000_000_000).max(1);
                u32::try_from(secs).unwrap_or(u32::MAX)
            }
            Refusal::Concurrent { .. } => CONCURRENT_RETRY_AFTER_SECS,
        }
    }
}

impl Limiter {
    /// Lets a request of `client_id` in at `now`, or tells why not. A refused request is not
    /// counted, so a client that waits as told is let in.
    pub(crate) fn admit(
        &mut self,
        client_id: &str,
        limits: &ThrottleLimits,
        now: Duration,
    ) -> Result<Admission, Refusal> {
        if now.saturating_sub(self.last_sweep) >= SWEEP_INTERVAL {
            self.sweep(now);
        }
        if !self.apps.contains_key(client_id) {
            if self.apps.len() >= MAX_APPS {
                self.sweep(now);
            }
            if self.apps.len() >= MAX_APPS {
                return Ok(Admission::Untracked);
            }
            self.apps.insert(client_id.to_owned(), AppUse::new(limits.window));
        }
        let app = self.apps.get_mut(client_id).expect("inserted above");
        let limit = u64::from(limits.requests);
        if app.window.count(now) >= limit {
            let retry_after = app.window.below(limit).saturating_sub(now);
            return Err(Refusal::Requests { limit: limits.requests, window: limits.window, retry_after });
        }
        if app.running >= limits.concurrent {
            return Err(Refusal::Concurrent { limit: limits.concurrent });
        }
        app.window.record(now);
        app.running += 1;
        Ok(Admission::Tracked)
    }

    /// A [`Admission::Tracked`] request of `client_id` has ended.
    pub(crate) fn release(&mut self, client_id: &str) {
        if let Some(app) = self.apps.get_mut(client_id) {
            app.running = app.running.saturating_sub(1);
        }
    }

    /// Apps tracked now.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.apps.len()
    }

    /// Drops every app that holds no information: nothing running, nothing counted.
    fn sweep(&mut self, now: Duration) {
        self.apps.retain(|_, app| app.running > 0 || app.window.count(now) > 0);
        self.last_sweep = now;
    }
}

/// One app's use.
#[derive(Debug)]
struct AppUse {
    window: Window,
    /// Requests let in and not yet released.
    running: u32,
}

impl AppUse {
    fn new(window: Duration) -> AppUse {
        AppUse { window: Window::new(window), running: 0 }
    }
}

/// Requests per slot over the last `SLOTS + 1` slots.
#[derive(Debug)]
struct Window {
    slot_nanos: u64,
    /// Slot `s` is counted at `s % RING`.
    counts: [u32; RING],
    /// The newest slot; the ring holds `head - SLOTS ..= head`.
    head: u64,
    /// The sum of `counts`.
    total: u64,
}

impl Window {
    fn new(window: Duration) -> Window {
        // Rounded up, so SLOTS slots span at least the whole window.
        let nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        Window { slot_nanos: nanos.div_ceil(SLOTS).max(1), counts: [0; RING], head: 0, total: 0 }
    }

    fn slot(&self, now: Duration) -> u64 {
        u64::try_from(now.as_nanos()).unwrap_or(u64::MAX) / self.slot_nanos
    }

    /// Moves the head to `now`'s slot, forgetting the slots that fall out.
    fn advance(&mut self, now: Duration) {
        let slot = self.slot(now);
        if slot <= self.head {
            return;
        }
        if slot - self.head >= RING as u64 {
            self.counts = [0; RING];
            self.total = 0;
        } else {
            for s in self.head + 1..=slot {
                let i = (s % RING as u64) as usize;
                self.total -= u64::from(self.counts[i]);
                self.counts[i] = 0;
            }
        }
        self.head = slot;
    }

    /// Requests counted at `now`.
    fn count(&mut self, now: Duration) -> u64 {
        self.advance(now);
        self.total
    }

    fn record(&mut self, now: Duration) {
        self.advance(now);
        self.counts[(self.head % RING as u64) as usize] += 1;
        self.total += 1;
    }

    /// When the count falls below `limit` if nothing more is recorded: slot `s` stops counting
    /// when the head reaches `s + RING`.
    fn below(&self, limit: u64) -> Duration {
        let mut left = self.total;
        for s in self.head.saturating_sub(SLOTS)..=self.head {
            left -= u64::from(self.counts[(s % RING as u64) as usize]);
            if left < limit {
                return Duration::from_nanos((s + RING as u64).saturating_mul(self.slot_nanos));
            }
        }
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests;
