//! Latency samples in milliseconds (possibly negative, for clock-difference estimates), sorted
//! once, with nearest-rank quantiles.

use serde_json::{Value, json};

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

    pub fn to_json(&self) -> Value {
        json!({
            "count": self.len(), "p50": self.quantile(0.50), "p90": self.quantile(0.90), "p99": self.quantile(0.99),
            "max": self.max(), "min": self.min(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Latencies;

    #[test]
    fn nearest_rank() {
        let l = Latencies::from((1..=100).rev().map(f64::from).collect::<Vec<_>>());
        assert_eq!(l.quantile(0.5), 50.0);
        assert_eq!(l.quantile(0.99), 99.0);
        assert_eq!(l.max(), 100.0);
        assert_eq!(Latencies::default().quantile(0.5), 0.0);
    }
}
