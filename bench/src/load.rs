//! The closed-loop load runner: `concurrency` tasks each send one request after another until a
//! deadline or a stop signal, recording every request's start, latency and outcome; the samples
//! are merged once at the end into percentiles, the longest wait for a success, and a trace.

use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::stats::{Latencies, ms, per_second};

/// Most samples one task keeps (bounds memory on very fast endpoints; counting continues).
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

/// When the tasks stop sending (a request in flight is finished and counted).
#[derive(Clone)]
pub enum Until {
    Elapsed(Duration),
    /// Until the flag is set (e.g. when an import ends).
    Flag(Arc<AtomicBool>),
}

/// One request: when it started (from the start of the run), how long it took, whether it
/// succeeded.
#[derive(Clone, Copy)]
pub struct Sample {
    pub at: Duration,
    pub took: Duration,
    pub ok: bool,
}

/// The result of one load run.
pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latencies: Latencies,
    /// The longest time one task went without a successful answer: from the start of the run
    /// or its previous success to its next success (or to the end of the run).
    pub longest_wait: Duration,
    /// Everything successful requests asked to keep, across tasks.
    pub kept: Vec<String>,
    /// The first failure seen (status and body), if any.
    pub first_error: Option<String>,
    /// Every request in start order (up to a cap per task).
    pub samples: Vec<Sample>,
}

impl LoadResult {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        per_second((self.requests - self.errors) as f64, self.elapsed.as_secs_f64())
    }

    /// `16 clients   2345 req/s  p50 … ms  p99 … ms  max … ms  requests …  errors …`
    pub fn describe(&self, concurrency: usize) -> String {
        format!(
            "{concurrency} clients  {:>8.0} req/s  {}  requests {}  errors {}",
            self.rate(),
            self.latencies.describe(2),
            self.requests,
            self.errors
        )
    }

    /// The requests that started before `end` (from the start of the run), as if the run had
    /// stopped there. The longest wait here is the longest time without any task's successful
    /// answer (the same as the run's for one task).
    pub fn before(&self, end: Duration) -> LoadResult {
        let samples: Vec<Sample> = self.samples.iter().filter(|s| s.at < end).copied().collect();
        let mut done: Vec<Duration> = samples.iter().filter(|s| s.ok).map(|s| s.at + s.took).collect();
        done.sort_unstable();
        let mut last = Duration::ZERO;
        let mut longest_wait = Duration::ZERO;
        for d in done {
            longest_wait = longest_wait.max(d - last);
            last = d;
        }
        longest_wait = longest_wait.max(end.min(self.elapsed).saturating_sub(last));
        LoadResult {
            requests: samples.len() as u64,
            errors: samples.iter().filter(|s| !s.ok).count() as u64,
            elapsed: end.min(self.elapsed),
            latencies: Latencies::from_durations(samples.iter().map(|s| s.took)),
            longest_wait,
            kept: Vec::new(),
            first_error: self.first_error.clone(),
            samples,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "requests": self.requests,
            "errors": self.errors,
            "seconds": self.elapsed.as_secs_f64(),
            "requests_per_second": self.rate(),
            "p50_ms": self.latencies.quantile(0.50),
            "p99_ms": self.latencies.quantile(0.99),
            "max_ms": self.latencies.max(),
            "longest_wait_ms": ms(self.longest_wait),
        })
    }
}

struct TaskResult {
    requests: u64,
    errors: u64,
    samples: Vec<Sample>,
    longest_wait: Duration,
    kept: Vec<String>,
    first_error: Option<String>,
}

/// Runs `op(task, n)` from `concurrency` tasks until `until`. Each task starts its next request
/// only when the previous one answered (closed loop), so the figure is throughput at that many
/// clients.
pub async fn run<F, Fut>(concurrency: usize, until: Until, op: F) -> LoadResult
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let (op, until) = (op.clone(), until.clone());
            tokio::spawn(async move {
                let mut r = TaskResult {
                    requests: 0,
                    errors: 0,
                    samples: Vec::new(),
                    longest_wait: Duration::ZERO,
                    kept: Vec::new(),
                    first_error: None,
                };
                let mut last_success = start;
                let mut n = 0u64;
                while !stopped(&until, start) {
                    let t0 = Instant::now();
                    let outcome = op(task, n).await;
                    let done = Instant::now();
                    n += 1;
                    r.requests += 1;
                    if r.samples.len() < SAMPLES_PER_TASK_MAX {
                        r.samples.push(Sample { at: t0 - start, took: done - t0, ok: outcome.ok });
                    }
                    if outcome.ok {
                        r.longest_wait = r.longest_wait.max(done - last_success);
                        last_success = done;
                        r.kept.extend(outcome.keep);
                    } else {
                        r.errors += 1;
                        if r.first_error.is_none() {
                            r.first_error = outcome.error;
                        }
                    }
                }
                r.longest_wait = r.longest_wait.max(Instant::now() - last_success);
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
        longest_wait: Duration::ZERO,
        kept: Vec::new(),
        first_error: None,
        samples: Vec::new(),
    };
    for r in results {
        merged.requests += r.requests;
        merged.errors += r.errors;
        merged.samples.extend(r.samples);
        merged.longest_wait = merged.longest_wait.max(r.longest_wait);
        merged.kept.extend(r.kept);
        if merged.first_error.is_none() {
            merged.first_error = r.first_error;
        }
    }
    merged.samples.sort_by_key(|s| s.at);
    merged.latencies = Latencies::from_durations(merged.samples.iter().map(|s| s.took));
    merged
}

fn stopped(until: &Until, start: Instant) -> bool {
    match until {
        Until::Elapsed(d) => start.elapsed() >= *d,
        Until::Flag(flag) => flag.load(Ordering::SeqCst),
    }
}

/// A well-mixed pseudo-random index below `n` for request `n_req` of `task` (splitmix64), so
/// stateless request closures can pick random keys without extra crates.
pub fn pick(task: usize, n_req: u64, n: usize) -> usize {
    (splitmix64((task as u64) << 40 ^ n_req) % n.max(1) as u64) as usize
}

/// One step of splitmix64: a well-mixed 64-bit value of `x`.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_stays_below_its_bound_and_spreads() {
        let picks: Vec<usize> = (0..1000).map(|n| pick(3, n, 13)).collect();
        assert!(picks.iter().all(|&p| p < 13));
        assert!((0..13).all(|v| picks.contains(&v)));
    }

    #[tokio::test]
    async fn a_flag_stops_the_run_and_failures_count_toward_the_longest_wait() {
        let flag = Arc::new(AtomicBool::new(false));
        let setter = flag.clone();
        let r = run(1, Until::Flag(flag), move |_, n| {
            let setter = setter.clone();
            async move {
                if n == 3 {
                    setter.store(true, Ordering::SeqCst);
                }
                if n % 2 == 0 { Outcome::ok(Some(n.to_string())) } else { Outcome::failed(format!("no {n}")) }
            }
        })
        .await;
        assert_eq!((r.requests, r.errors), (4, 2));
        assert_eq!(r.kept, ["0", "2"]);
        assert_eq!(r.first_error.as_deref(), Some("no 1"));
        assert_eq!(r.samples.len(), 4);
        assert!(r.longest_wait <= r.elapsed);
    }

    fn sample(at_ms: u64, took_ms: u64, ok: bool) -> Sample {
        Sample { at: Duration::from_millis(at_ms), took: Duration::from_millis(took_ms), ok }
    }

    #[test]
    fn a_window_keeps_the_requests_started_in_it_and_the_longest_gap_between_successes() {
        let r = LoadResult {
            requests: 5,
            errors: 1,
            elapsed: Duration::from_millis(1000),
            latencies: Latencies::default(),
            longest_wait: Duration::ZERO,
            kept: Vec::new(),
            first_error: Some("busy".into()),
            samples: vec![
                sample(0, 10, true),
                sample(10, 300, false),
                sample(310, 20, true),
                sample(330, 400, true),
                sample(900, 10, true),
            ],
        };
        let w = r.before(Duration::from_millis(800));
        assert_eq!((w.requests, w.errors), (4, 1));
        assert_eq!(w.longest_wait, Duration::from_millis(400));
        assert_eq!(w.latencies.max(), 400.0);
        assert_eq!(w.elapsed, Duration::from_millis(800));
        let quiet_end = r.before(Duration::from_millis(2000));
        assert_eq!(quiet_end.longest_wait, Duration::from_millis(400));
    }
}
