//! The initial copy: create and activate a profile over `customerv3`, then poll both the
//! profile's status (API) and ferry's checkpoint row in the target until the entity is in delta
//! sync. The clock runs from just before `activate` to the first poll that finds the target
//! checkpoint in phase `delta` — that row commits in the same target transaction as the last
//! chunk, so it marks the moment every row is visible. The moment the API status first says
//! `DeltaSync` is kept beside it (the status is published separately and can lag). The server's
//! `VmRSS` is read before and at every poll, and its `VmHWM` after: the copy's memory figures.

use anyhow::{Result, bail};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use super::profiles;
use super::target::TargetDb;
use crate::api::Api;
use crate::procfs::status_mib;
use crate::stats::per_second;

/// Pause between two status polls.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Pause between two progress lines on stderr.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(15);

/// Figures of one initial copy.
pub struct InitialCopy {
    pub rows_total: i64,
    pub rows_copied: i64,
    /// From `activate` to the checkpoint in the target saying `delta`.
    pub elapsed: Duration,
    /// From `activate` to the API status first saying `DeltaSync`.
    pub status_after: Duration,
    /// From `activate` to the first checkpoint with copied rows (schema and the first chunk).
    pub first_rows_after: Option<Duration>,
    /// Rows in the target table when the copy was done.
    pub target_rows: i64,
    /// Distinct `State`/`Reason` pairs other than `Running` seen while polling.
    pub odd_states: Vec<String>,
    /// The server's `VmRSS` just before `activate` (MiB).
    pub rss_before: Option<f64>,
    /// The highest `VmRSS` seen at the polls during the copy (MiB).
    pub rss_max: Option<f64>,
    /// The server's `VmHWM` (peak RSS since start) right after the copy (MiB).
    pub hwm_after: Option<f64>,
}

impl InitialCopy {
    pub fn rate(&self) -> f64 {
        per_second(self.rows_copied as f64, self.elapsed.as_secs_f64())
    }

    /// How much the server's RSS grew during the copy (highest polled `VmRSS` − before).
    pub fn rss_growth(&self) -> Option<f64> {
        Some(self.rss_max? - self.rss_before?)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "rss_before_mib": self.rss_before, "rss_max_mib": self.rss_max, "hwm_after_mib": self.hwm_after,
            "rss_growth_mib": self.rss_growth(),
            "rows_total": self.rows_total, "rows_copied": self.rows_copied, "target_rows": self.target_rows,
            "seconds": self.elapsed.as_secs_f64(), "rows_per_second": self.rate(),
            "status_delta_sync_after_seconds": self.status_after.as_secs_f64(),
            "first_rows_after_seconds": self.first_rows_after.map(|d| d.as_secs_f64()),
            "odd_states": self.odd_states,
        })
    }
}

/// Activates profile `id` and waits (at most `limit`) until its one entity is in delta sync
/// both in the target's checkpoint and in the API status.
/// `pid` is the server's, for its memory figures.
pub async fn run(api: &Api, target: &TargetDb, id: &str, limit: Duration, pid: u32) -> Result<InitialCopy> {
    let rss_before = status_mib(pid, "VmRSS");
    let mut rss_max = rss_before;
    let start = Instant::now();
    profiles::activate(api, id).await?;
    let mut first_rows_after = None;
    let mut committed_after: Option<(Duration, i64)> = None;
    let mut status_after: Option<(Duration, i64, i64)> = None;
    let mut odd_states: Vec<String> = Vec::new();
    let mut last_progress = Instant::now();
    loop {
        if let Some(rss) = status_mib(pid, "VmRSS") {
            rss_max = Some(rss_max.map_or(rss, |m| m.max(rss)));
        }
        if committed_after.is_none()
            && let Some((phase, copied)) = target.checkpoint().await?
        {
            if first_rows_after.is_none() && copied > 0 {
                first_rows_after = Some(start.elapsed());
            }
            if phase == "delta" {
                committed_after = Some((start.elapsed(), copied));
            }
        }
        let profile = profiles::get(api, id).await?;
        let status = &profile["EntityStatus"][0];
        let phase = status["Phase"].as_str().unwrap_or("");
        let state = status["State"].as_str().unwrap_or("");
        let copied = status["RowsCopied"].as_i64().unwrap_or(0);
        let total = status["RowsTotal"].as_i64().unwrap_or(0);
        if !state.is_empty() && state != "Running" {
            let odd = format!("{state}: {}", status["Reason"].as_str().unwrap_or("(no reason)"));
            if !odd_states.contains(&odd) {
                eprintln!("initial    status {odd}");
                odd_states.push(odd);
            }
        }
        if status_after.is_none() && phase == "DeltaSync" {
            status_after = Some((start.elapsed(), copied, total));
        }
        if let (Some((elapsed, rows_copied)), Some((status_after, _, rows_total))) = (committed_after, status_after) {
            let target_rows = target.count().await?.unwrap_or(0);
            return Ok(InitialCopy {
                rows_total,
                rows_copied,
                elapsed,
                status_after,
                first_rows_after,
                target_rows,
                odd_states,
                rss_before,
                rss_max,
                hwm_after: status_mib(pid, "VmHWM"),
            });
        }
        if last_progress.elapsed() >= PROGRESS_INTERVAL {
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "initial    {secs:>6.0} s  status {phase} {state} {copied}/{total} rows  {:.0} rows/s so far{}",
                copied as f64 / secs,
                if committed_after.is_some() { "  (target checkpoint: delta)" } else { "" }
            );
            last_progress = Instant::now();
        }
        if start.elapsed() > limit {
            bail!("the initial copy was not done after {} s ({copied}/{total} rows, phase {phase:?})", limit.as_secs());
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
