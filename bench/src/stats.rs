//! Latency samples in milliseconds (possibly negative, for clock-difference estimates), sorted
//! once, with nearest-rank quantiles. Pure.

use serde_json::{Value, json};
use std::time::Duration;

#[derive(Clone, Debug, Default)]
pub struct Latencies {
    sorted_ms: Vec<f64>,
}

impl From<Vec<f64>> for Latencies {
    fn from(mut all: Vec<f64>) -> Latencies {
        all.retain(|v| v.is_finite());
        all.sort_unstable_by(f64::total_cmp);
        Latencies { sorted_ms: all }
    }
}

impl Latencies {
    pub fn from_durations(all: impl IntoIterator<Item = Duration>) -> Latencies {
        Latencies::from(all.into_iter().map(ms).collect::<Vec<f64>>())
    }

    pub fn len(&self) -> usize {
        self.sorted_ms.len()
    }

    /// The `q`-quantile (0..=1) by nearest rank; 0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.sorted_ms.is_empty() {
            return 0.0;
        }
        let rank = (q * self.sorted_ms.len() as f64).ceil() as usize;
        self.sorted_ms[rank.clamp(1, self.sorted_ms.len()) - 1]
    }

    pub fn max(&self) -> f64 {
        self.sorted_ms.last().copied().unwrap_or(0.0)
    }

    pub fn min(&self) -> f64 {
        self.sorted_ms.first().copied().unwrap_or(0.0)
    }

    /// `p50 … ms  p99 … ms  max … ms`, the quantiles with `decimals` digits (max with one).
    pub fn describe(&self, decimals: usize) -> String {
        format!(
            "p50 {:.decimals$} ms  p99 {:.decimals$} ms  max {:.1} ms",
            self.quantile(0.50),
            self.quantile(0.99),
            self.max()
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "count": self.len(), "p50": self.quantile(0.50), "p90": self.quantile(0.90), "p99": self.quantile(0.99),
            "max": self.max(), "min": self.min(),
        })
    }
}

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `n` over `seconds`, 0 when no time passed.
pub fn per_second(n: f64, seconds: f64) -> f64 {
    if seconds > 0.0 { n / seconds } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let l = Latencies::from((1..=100).rev().map(f64::from).collect::<Vec<_>>());
        assert_eq!(l.quantile(0.5), 50.0);
        assert_eq!(l.quantile(0.99), 99.0);
        assert_eq!(l.quantile(1.0), 100.0);
        assert_eq!(l.quantile(0.0), 1.0);
        assert_eq!(l.max(), 100.0);
        assert_eq!(l.min(), 1.0);
        assert_eq!(Latencies::default().quantile(0.5), 0.0);
    }

    #[test]
    fn one_sample_is_every_quantile_and_nan_is_dropped() {
        let l = Latencies::from(vec![f64::NAN, 7.0]);
        assert_eq!((l.len(), l.quantile(0.01), l.quantile(0.99)), (1, 7.0, 7.0));
        assert_eq!(l.describe(2), "p50 7.00 ms  p99 7.00 ms  max 7.0 ms");
    }

    #[test]
    fn durations_become_milliseconds() {
        let l = Latencies::from_durations([Duration::from_micros(1500), Duration::from_millis(3)]);
        assert_eq!(l.max(), 3.0);
        assert_eq!(l.min(), 1.5);
        assert_eq!(per_second(10.0, 0.0), 0.0);
        assert_eq!(per_second(10.0, 2.0), 5.0);
    }
}
