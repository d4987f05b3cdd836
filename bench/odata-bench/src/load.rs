//! The closed-loop load runner: `concurrency` tasks each send one request after another until a
//! deadline, recording every request's latency in a per-task vector; the vectors are merged
//! and sorted once at the end to give percentiles.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most latencies one task keeps (bounds memory on very fast endpoints; counting continues).
const SAMPLES_PER_TASK_MAX: usize = 2_000_000;

/// What one request came to.
pub struct Outcome {
    pub ok: bool,
    /// Something the caller wants to keep from a successful request (e.g. a posted key).
    pub keep: Option<String>,
    /// For failures: status and body, for the first-error report.
    pub error: Option<String>,
}

impl Outcome {
    pub fn ok(keep: Option<String>) -> Outcome {
        Outcome { ok: true, keep, error: None }
    }

    pub fn failed(error: String) -> Outcome {
        Outcome { ok: false, keep: None, error: Some(error) }
    }
}

/// Latencies of one run, merged and sorted.
#[derive(Default)]
pub struct Latencies {
    sorted: Vec<Duration>,
}

impl Latencies {
    pub fn from_unsorted(mut all: Vec<Duration>) -> Latencies {
        all.sort_unstable();
        Latencies { sorted: all }
    }

    /// The `q`-quantile (0..=1) in milliseconds; 0 when nothing was recorded.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.sorted.is_empty() {
            return 0.0;
        }
        let i = ((q * self.sorted.len() as f64) as usize).min(self.sorted.len() - 1);
        self.sorted[i].as_secs_f64() * 1e3
    }

    pub fn max_ms(&self) -> f64 {
        self.sorted.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
    }
}

/// The result of one load run.
pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latencies: Latencies,
    /// Everything successful requests asked to keep, across tasks.
    pub kept: Vec<String>,
    /// The first failure seen (status and body), if any.
    pub first_error: Option<String>,
}

impl LoadResult {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        (self.requests - self.errors) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "requests": self.requests,
            "errors": self.errors,
            "seconds": self.elapsed.as_secs_f64(),
            "requests_per_second": self.rate(),
            "p50_ms": self.latencies.quantile_ms(0.50),
            "p99_ms": self.latencies.quantile_ms(0.99),
            "max_ms": self.latencies.max_ms(),
        })
    }
}

struct TaskResult {
    requests: u64,
    errors: u64,
    samples: Vec<Duration>,
    kept: Vec<String>,
    first_error: Option<String>,
}

/// Runs `op(task, n)` from `concurrency` tasks for `duration`. Each task starts its next
/// request only when the previous one answered (closed loop), so the figure is throughput at
/// that many clients.
pub async fn run<F, Fut>(concurrency: usize, duration: Duration, op: F) -> LoadResult
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut r =
                    TaskResult { requests: 0, errors: 0, samples: Vec::new(), kept: Vec::new(), first_error: None };
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    let outcome = op(task, n).await;
                    let took = t0.elapsed();
                    n += 1;
                    r.requests += 1;
                    if r.samples.len() < SAMPLES_PER_TASK_MAX {
                        r.samples.push(took);
                    }
                    if outcome.ok {
                        r.kept.extend(outcome.keep);
                    } else {
                        r.errors += 1;
                        if r.first_error.is_none() {
                            r.first_error = outcome.error;
                        }
                    }
                }
                r
            })
        })
        .collect();
    let mut results = Vec::with_capacity(concurrency);
    for task in futures::future::join_all(tasks).await {
        results.push(task.expect("load task panicked"));
    }
    let elapsed = start.elapsed();
    let mut merged = LoadResult {
        requests: 0,
        errors: 0,
        elapsed,
        latencies: Latencies::default(),
        kept: Vec::new(),
        first_error: None,
    };
    let mut samples = Vec::new();
    for r in results {
        merged.requests += r.requests;
        merged.errors += r.errors;
        samples.extend(r.samples);
        merged.kept.extend(r.kept);
        if merged.first_error.is_none() {
            merged.first_error = r.first_error;
        }
    }
    merged.latencies = Latencies::from_unsorted(samples);
    merged
}

/// A well-mixed pseudo-random index below `n` for request `n_req` of `task` (splitmix64), so
/// stateless request closures can pick random keys without extra crates.
pub fn pick(task: usize, n_req: u64, n: usize) -> usize {
    let mut z = ((task as u64) << 40 ^ n_req).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % n.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_from_the_sorted_samples() {
        let l = Latencies::from_unsorted((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(l.quantile_ms(0.5), 51.0);
        assert_eq!(l.quantile_ms(0.99), 100.0);
        assert_eq!(l.max_ms(), 100.0);
        assert_eq!(Latencies::default().quantile_ms(0.5), 0.0);
    }

    #[test]
    fn pick_stays_below_its_bound_and_spreads() {
        let picks: Vec<usize> = (0..1000).map(|n| pick(3, n, 13)).collect();
        assert!(picks.iter().all(|&p| p < 13));
        assert!((0..13).all(|v| picks.contains(&v)));
    }
}
