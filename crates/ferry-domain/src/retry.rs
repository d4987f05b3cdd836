//! The one retry schedule: exponential backoff that doubles from an initial wait up to a cap.
//! The queue workers (a message that failed transiently), the replication retry set (records a
//! target refused) and the replication reconnects (a target that is down) all use it, each with
//! its own initial wait and cap. Pure.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait before the first retry.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl RetryPolicy {
    pub const fn new(initial: Duration, max: Duration) -> RetryPolicy {
        RetryPolicy { initial, max }
    }

    /// The wait before retry number `retry` (1 for the first): `initial × 2^(retry−1)`, at most
    /// `max`. Retry 0 waits nothing.
    pub fn delay(&self, retry: u32) -> Duration {
        if retry == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(retry - 1).unwrap_or(u32::MAX);
        self.initial.checked_mul(factor).unwrap_or(self.max).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let policy = RetryPolicy::new(Duration::from_secs(2), Duration::from_secs(300));
        let delays: Vec<u64> = (0..=10).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(delays, [0, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(300), "no overflow");
        let fast = RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(2));
        assert_eq!(fast.delay(3), Duration::from_millis(400));
        let zero = RetryPolicy::new(Duration::ZERO, Duration::from_secs(1));
        assert_eq!(zero.delay(5), Duration::ZERO);
    }
}
