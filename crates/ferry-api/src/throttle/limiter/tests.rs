//! The limiter's arithmetic with time moved by hand: the (N+1)th request, when the next one is
//! let in, the sliding window never holding more than the limit, running requests, apps apart
//! from each other, and the bounded table.

use std::time::Duration;

use super::{Admission, Limiter, MAX_APPS, Refusal, SWEEP_INTERVAL};
use ferry_domain::ThrottleLimits;

fn limits(requests: u32, window_secs: u64, concurrent: u32) -> ThrottleLimits {
    ThrottleLimits { requests, window: Duration::from_secs(window_secs), concurrent }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Admits and at once releases a request (so only the window counts).
fn call(limiter: &mut Limiter, app: &str, limits: &ThrottleLimits, now: Duration) -> Result<(), Refusal> {
    let admission = limiter.admit(app, limits, now)?;
    assert_eq!(admission, Admission::Tracked);
    limiter.release(app);
    Ok(())
}

#[test]
fn the_request_over_the_limit_is_refused_until_the_window_lets_it_in() {
    let mut limiter = Limiter::default();
    let l = limits(3, 60, 10);
    for t in [0.0, 10.0, 20.0] {
        call(&mut limiter, "a", &l, secs(t)).unwrap();
    }
    // Slots are 1 s; the request of t = 0 counts until its slot is 61 slots old.
    let refusal = call(&mut limiter, "a", &l, secs(30.0)).unwrap_err();
    assert_eq!(refusal, Refusal::Requests { limit: 3, window: secs(60.0), retry_after: secs(31.0) });
    assert_eq!((refusal.reason(), refusal.retry_after_secs()), ("requests", 31));
    assert_eq!(refusal.message(), "Number of requests exceeded the limit of 3 over the time window of 60 seconds.");
    // Refusals are not counted: coming back when told works.
    assert!(call(&mut limiter, "a", &l, secs(60.9)).is_err(), "still inside the slot of t = 0's window");
    call(&mut limiter, "a", &l, secs(61.0)).unwrap();
    let refusal = call(&mut limiter, "a", &l, secs(61.5)).unwrap_err();
    assert_eq!(refusal.retry_after_secs(), 10, "next, the request of t = 10 leaves at 71");
}

#[test]
fn a_burst_waits_a_whole_window() {
    let mut limiter = Limiter::default();
    let l = limits(6000, 300, 6000);
    for _ in 0..6000 {
        call(&mut limiter, "ris", &l, secs(1000.0)).unwrap();
    }
    let refusal = call(&mut limiter, "ris", &l, secs(1000.0)).unwrap_err();
    assert_eq!(refusal.message(), "Number of requests exceeded the limit of 6000 over the time window of 300 seconds.");
    // 5 s slots: t = 1000 is slot 200, which stops counting at slot 261 (1305 s).
    assert_eq!(refusal.retry_after_secs(), 305);
    assert!(call(&mut limiter, "ris", &l, secs(1304.9)).is_err());
    call(&mut limiter, "ris", &l, secs(1305.0)).unwrap();
}

#[test]
fn no_span_of_the_window_ever_holds_more_than_the_limit() {
    let mut limiter = Limiter::default();
    let l = limits(7, 10, 1000);
    let window = l.window;
    // A deterministic spread of arrival times, some bursty, over 200 windows.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut now = Duration::ZERO;
    let mut admitted: Vec<Duration> = Vec::new();
    let mut refused = 0;
    for _ in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        now += Duration::from_millis(seed % 200);
        match call(&mut limiter, "a", &l, now) {
            Ok(()) => admitted.push(now),
            Err(refusal) => {
                refused += 1;
                let next = now + Duration::from_secs(u64::from(refusal.retry_after_secs()));
                assert!(next > now && next <= now + window + window / 60 + Duration::from_secs(1));
            }
        }
    }
    assert!(refused > 1000 && admitted.len() > 1000, "both happen: {refused} refused, {} admitted", admitted.len());
    for (i, t) in admitted.iter().enumerate() {
        let in_window = admitted[..=i].iter().filter(|u| *t - **u < window).count();
        assert!(in_window <= 7, "{in_window} requests in the window ending at {t:?}");
    }
}

#[test]
fn running_requests_are_limited_and_released() {
    let mut limiter = Limiter::default();
    let l = limits(100, 60, 2);
    let t = secs(5.0);
    assert_eq!(limiter.admit("a", &l, t), Ok(Admission::Tracked));
    assert_eq!(limiter.admit("a", &l, t), Ok(Admission::Tracked));
    let refusal = limiter.admit("a", &l, t).unwrap_err();
    assert_eq!(refusal, Refusal::Concurrent { limit: 2 });
    assert_eq!((refusal.reason(), refusal.retry_after_secs()), ("concurrent", 1));
    assert_eq!(refusal.message(), "Number of concurrent requests exceeded the limit of 2.");
    assert_eq!(limiter.admit("b", &l, t), Ok(Admission::Tracked), "another app is not affected");
    limiter.release("a");
    assert_eq!(limiter.admit("a", &l, t), Ok(Admission::Tracked));
    // a's window counts the three requests let in, not the one refused.
    let three = limits(3, 60, 10);
    assert_eq!(limiter.admit("a", &three, t).unwrap_err().reason(), "requests");
    let four = limits(4, 60, 10);
    assert_eq!(limiter.admit("a", &four, t), Ok(Admission::Tracked));
}

#[test]
fn the_window_is_checked_before_running_requests() {
    let mut limiter = Limiter::default();
    let l = limits(1, 60, 1);
    assert_eq!(limiter.admit("a", &l, secs(0.0)), Ok(Admission::Tracked));
    let refusal = limiter.admit("a", &l, secs(1.0)).unwrap_err();
    assert_eq!(refusal.reason(), "requests", "over both limits: the longer wait is told");
}

#[test]
fn apps_are_held_to_their_own_limits() {
    let mut limiter = Limiter::default();
    let (small, big) = (limits(1, 60, 5), limits(3, 60, 5));
    call(&mut limiter, "small", &small, secs(0.0)).unwrap();
    assert!(call(&mut limiter, "small", &small, secs(0.0)).is_err());
    for _ in 0..3 {
        call(&mut limiter, "big", &big, secs(0.0)).unwrap();
    }
    assert!(call(&mut limiter, "big", &big, secs(0.0)).is_err());
}

#[test]
fn retry_after_is_whole_seconds_rounded_up() {
    let at = |retry_after: Duration| Refusal::Requests { limit: 1, window: secs(1.0), retry_after }.retry_after_secs();
    assert_eq!(at(Duration::ZERO), 1);
    assert_eq!(at(secs(0.2)), 1);
    assert_eq!(at(secs(5.0)), 5);
    assert_eq!(at(Duration::from_nanos(5_000_000_001)), 6);
    assert_eq!(at(Duration::from_secs(u64::MAX / 2)), u32::MAX);
    // A one-second window has 16.7 ms slots: a burst waits just over a second.
    let mut limiter = Limiter::default();
    let l = limits(1, 1, 1);
    call(&mut limiter, "a", &l, secs(10.0)).unwrap();
    let refusal = call(&mut limiter, "a", &l, secs(10.0)).unwrap_err();
    assert_eq!(refusal.retry_after_secs(), 2);
    call(&mut limiter, "a", &l, secs(11.02)).unwrap();
}

#[test]
fn idle_apps_are_forgotten_and_the_table_is_bounded() {
    let mut limiter = Limiter::default();
    let l = limits(10, 60, 10);
    call(&mut limiter, "idle", &l, secs(0.0)).unwrap();
    assert_eq!(limiter.admit("busy", &l, secs(0.0)), Ok(Admission::Tracked));
    assert_eq!(limiter.tracked(), 2);
    // Past the window and the sweep interval: the idle app holds nothing and goes; the busy one
    // has a request running and stays.
    let later = secs(0.0) + l.window + SWEEP_INTERVAL + secs(2.0);
    call(&mut limiter, "other", &l, later).unwrap();
    assert_eq!(limiter.tracked(), 2, "busy and other");
    limiter.release("busy");

    // A table full of apps with counted requests: a new app is let in untracked...
    let mut limiter = Limiter::default();
    for i in 0..MAX_APPS {
        call(&mut limiter, &format!("app{i}"), &l, secs(0.0)).unwrap();
    }
    assert_eq!(limiter.admit("late", &l, secs(1.0)), Ok(Admission::Untracked));
    assert_eq!(limiter.tracked(), MAX_APPS);
    // ...until the others' windows have passed.
    assert_eq!(limiter.admit("late", &l, secs(62.0)), Ok(Admission::Tracked));
    assert_eq!(limiter.tracked(), 1);
}
