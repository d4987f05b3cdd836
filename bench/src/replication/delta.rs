//! Delta latency: writer tasks send `PATCH /data/CustomersV3(…)` at a paced rate (open loop:
//! change `i` is due at `start + i / rate`, whatever happened to earlier ones), each setting
//! `PrimaryContactPhone` to a marker unique to the change, and note when the write returned.
//! Meanwhile one poller reads the changed rows from the target by `Id` every few milliseconds
//! and notes when each marker first shows. Latency = first seen − write returned, on this
//! machine's monotonic clock. Afterwards the same rows' `SinkModifiedOn` (stamped by ferry when
//! it built the batch) gives a second estimate on the wall clock.

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::target::{Customer, TargetDb};
use crate::api::Api;
use crate::load::Outcome;
use crate::stats::{Latencies, ms};

/// Most rows one poll asks for (the oldest pending changes first).
const POLL_ROWS_MAX: usize = 5_000;
/// Rows per look-up when reading `SinkModifiedOn` afterwards.
const LOOKUP_CHUNK: usize = 2_000;

#[derive(Clone, Debug)]
pub struct DeltaSettings {
    pub rate: u64,
    pub seconds: u64,
    pub tasks: usize,
    pub poll_interval: Duration,
    /// How long the poller keeps looking after the last write returned.
    pub settle: Duration,
    /// Prefix of the markers, unique to the run.
    pub tag: String,
}

/// One change and what happened to it.
#[derive(Default)]
struct Change {
    row: usize,
    sent: Option<Instant>,
    committed: Option<Instant>,
    committed_wall: Option<DateTime<Utc>>,
    seen: Option<Instant>,
    failed: bool,
    /// Another change to the same row was sent before this one was seen (only when there are
    /// fewer rows than changes); it cannot be measured.
    superseded: bool,
}

#[derive(Default)]
struct Pending {
    /// Change number → row id, for changes not seen yet.
    by_change: BTreeMap<usize, Uuid>,
    /// Row id → its latest pending change.
    by_row: HashMap<Uuid, usize>,
}

struct Shared {
    changes: Mutex<Vec<Change>>,
    pending: Mutex<Pending>,
    first_error: Mutex<Option<String>>,
    writers_done: AtomicBool,
}

fn marker(tag: &str, change: usize) -> String {
    format!("{tag}-{change}")
}

/// Figures of one delta run.
pub struct DeltaResult {
    pub planned: usize,
    pub ok: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    /// Successful writes per second, from the first write sent to the last one returned.
    pub achieved_rate: f64,
    pub write: Latencies,
    pub polled: Latencies,
    pub not_seen: usize,
    pub superseded: usize,
    /// Changes the poller saw before their write's response arrived (counted as 0 ms).
    pub seen_before_response: usize,
    pub polls: u64,
    pub mean_poll: Duration,
    pub poll_interval: Duration,
    /// `SinkModifiedOn` − write returned, in ms (may be negative); the rows whose marker
    /// was still there afterwards.
    pub sink: Latencies,
}

impl DeltaResult {
    pub fn to_json(&self) -> Value {
        json!({
            "planned": self.planned, "ok": self.ok, "errors": self.errors, "first_error": self.first_error,
            "achieved_changes_per_second": self.achieved_rate,
            "write_ms": self.write.to_json(),
            "visible_ms": self.polled.to_json(),
            "visible_method": format!(
                "target polled by Id every {} ms (mean poll {:.1} ms, {} polls): first seen - PATCH returned",
                self.poll_interval.as_millis(), self.mean_poll.as_secs_f64() * 1e3, self.polls),
            "not_seen": self.not_seen, "superseded": self.superseded, "seen_before_response": self.seen_before_response,
            "sink_modified_ms": self.sink.to_json(),
        })
    }
}

/// Runs the paced writers and the poller over `rows` (each change picks the next row).
pub async fn run(
    api: &Api,
    target: &TargetDb,
    rows: Arc<Vec<Customer>>,
    settings: &DeltaSettings,
) -> Result<DeltaResult> {
    anyhow::ensure!(!rows.is_empty(), "no customers in the target to change");
    let planned = usize::try_from(settings.rate * settings.seconds)?;
    let changes = (0..planned).map(|i| Change { row: i % rows.len(), ..Change::default() }).collect();
    let shared = Arc::new(Shared {
        changes: Mutex::new(changes),
        pending: Mutex::new(Pending::default()),
        first_error: Mutex::new(None),
        writers_done: AtomicBool::new(false),
    });
    let start = Instant::now();
    let mut writers = Vec::new();
    for task in 0..settings.tasks.max(1) {
        let (api, rows, shared, settings) = (api.clone(), rows.clone(), shared.clone(), settings.clone());
        writers.push(tokio::spawn(async move {
            write_changes(task, start, &api, &rows, &shared, &settings, planned).await
        }));
    }
    let poller = poll(target, &shared, settings);
    let writers = async {
        for w in writers {
            let _ = w.await;
        }
        shared.writers_done.store(true, Ordering::SeqCst);
    };
    let ((polls, poll_time), ()) = tokio::try_join!(poller, async {
        writers.await;
        Ok(())
    })?;

    let changes = std::mem::take(&mut *shared.changes.lock().expect("changes lock"));
    let ok = changes.iter().filter(|c| c.committed.is_some()).count();
    let errors = changes.iter().filter(|c| c.failed).count();
    let last = changes.iter().filter_map(|c| c.committed).max().unwrap_or(start);
    let write = Latencies::from(changes.iter().filter_map(|c| Some(ms(c.committed? - c.sent?))).collect::<Vec<f64>>());
    let measured: Vec<&Change> = changes.iter().filter(|c| c.committed.is_some() && !c.superseded).collect();
    let mut seen_before_response = 0;
    let mut polled = Vec::new();
    for c in &measured {
        if let (Some(seen), Some(committed)) = (c.seen, c.committed) {
            match seen.checked_duration_since(committed) {
                Some(d) => polled.push(ms(d)),
                None => {
                    seen_before_response += 1;
                    polled.push(0.0);
                }
            }
        }
    }
    let not_seen = measured.iter().filter(|c| c.seen.is_none()).count();
    let sink = sink_latencies(target, &rows, &changes, &settings.tag).await?;
    Ok(DeltaResult {
        planned,
        ok,
        errors,
        first_error: shared.first_error.lock().expect("error lock").clone(),
        achieved_rate: ok as f64 / (last - start).as_secs_f64().max(1e-9),
        write,
        polled: Latencies::from(polled),
        not_seen,
        superseded: changes.iter().filter(|c| c.superseded).count(),
        seen_before_response,
        polls,
        mean_poll: if polls == 0 { Duration::ZERO } else { poll_time / u32::try_from(polls).unwrap_or(u32::MAX) },
        poll_interval: settings.poll_interval,
        sink,
    })
}

/// Writer `task` sends changes `task`, `task + tasks`, … each at its due time.
async fn write_changes(
    task: usize,
    start: Instant,
    api: &Api,
    rows: &[Customer],
    shared: &Shared,
    settings: &DeltaSettings,
    planned: usize,
) {
    let rate = settings.rate.max(1);
    for i in (task..planned).step_by(settings.tasks.max(1)) {
        let due = start + Duration::from_nanos(i as u64 * 1_000_000_000 / rate);
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        let row = &rows[i % rows.len()];
        {
            let mut pending = shared.pending.lock().expect("pending lock");
            if let Some(previous) = pending.by_row.insert(row.id, i) {
                pending.by_change.remove(&previous);
                shared.changes.lock().expect("changes lock")[previous].superseded = true;
            }
            pending.by_change.insert(i, row.id);
        }
        let sent = Instant::now();
        let result = patch_phone(api, &row.company, &row.account, &marker(&settings.tag, i)).await;
        let (returned, wall) = (Instant::now(), Utc::now());
        let mut changes = shared.changes.lock().expect("changes lock");
        changes[i].sent = Some(sent);
        match result {
            Outcome { ok: true, .. } => {
                changes[i].committed = Some(returned);
                changes[i].committed_wall = Some(wall);
            }
            Outcome { error, .. } => {
                changes[i].failed = true;
                drop(changes);
                let mut pending = shared.pending.lock().expect("pending lock");
                if pending.by_row.get(&row.id) == Some(&i) {
                    pending.by_row.remove(&row.id);
                }
                pending.by_change.remove(&i);
                shared.first_error.lock().expect("error lock").get_or_insert(error.unwrap_or_default());
            }
        }
    }
}

/// Sets `PrimaryContactPhone` of one customer; 204 is success.
async fn patch_phone(api: &Api, company: &str, account: &str, phone: &str) -> Outcome {
    let path = format!("/data/CustomersV3(dataAreaId='{company}',CustomerAccount='{account}')");
    let request = api.request(reqwest::Method::PATCH, &path).json(&json!({ "PrimaryContactPhone": phone }));
    Api::outcome(request, &format!("PATCH {path}"), reqwest::StatusCode::NO_CONTENT, None).await
}

/// Polls the target for pending changes until the writers are done and every change was seen,
/// or `settle` after the writers are done. Answers the number of polls and their total time.
async fn poll(target: &TargetDb, shared: &Shared, settings: &DeltaSettings) -> Result<(u64, Duration)> {
    let mut polls = 0u64;
    let mut busy = Duration::ZERO;
    let mut done_at: Option<Instant> = None;
    loop {
        let snapshot: Vec<(usize, Uuid)> = {
            let pending = shared.pending.lock().expect("pending lock");
            pending.by_change.iter().take(POLL_ROWS_MAX).map(|(&i, &id)| (i, id)).collect()
        };
        if shared.writers_done.load(Ordering::SeqCst) {
            let done = *done_at.get_or_insert_with(Instant::now);
            if snapshot.is_empty() || done.elapsed() > settings.settle {
                return Ok((polls, busy));
            }
        }
        let at = Instant::now();
        if !snapshot.is_empty() {
            let ids: Vec<Uuid> = snapshot.iter().map(|&(_, id)| id).collect();
            let found = target.look_up(&ids).await?;
            let wanted: HashMap<Uuid, usize> = snapshot.iter().map(|&(i, id)| (id, i)).collect();
            let mut pending = shared.pending.lock().expect("pending lock");
            let mut changes = shared.changes.lock().expect("changes lock");
            for row in found {
                let Some(&i) = wanted.get(&row.id) else { continue };
                if row.marker.as_deref() == Some(marker(&settings.tag, i).as_str()) {
                    changes[i].seen = Some(at);
                    pending.by_change.remove(&i);
                    if pending.by_row.get(&row.id) == Some(&i) {
                        pending.by_row.remove(&row.id);
                    }
                }
            }
            polls += 1;
            busy += at.elapsed();
        }
        tokio::time::sleep(settings.poll_interval.saturating_sub(at.elapsed())).await;
    }
}

/// `SinkModifiedOn` − write returned (ms) for each change whose marker is still in its row.
async fn sink_latencies(target: &TargetDb, rows: &[Customer], changes: &[Change], tag: &str) -> Result<Latencies> {
    let latest: HashMap<Uuid, usize> = changes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.committed.is_some() && !c.superseded)
        .map(|(i, c)| (rows[c.row].id, i))
        .collect();
    let ids: Vec<Uuid> = latest.keys().copied().collect();
    let mut values = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(LOOKUP_CHUNK) {
        for row in target.look_up(chunk).await? {
            let i = latest[&row.id];
            let (Some(modified), Some(committed)) = (row.modified, changes[i].committed_wall) else { continue };
            if row.marker.as_deref() == Some(marker(tag, i).as_str()) {
                values.push((modified - committed).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e3);
            }
        }
    }
    Ok(Latencies::from(values))
}
