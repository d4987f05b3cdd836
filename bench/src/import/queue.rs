//! The connector API as the import steps use it: enqueue a file (streamed from disk) or a
//! small body to a job, wait for one message to be final (sampling the server's RSS on the
//! way), and wait for every message of a job to be final.

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::api::{Api, describe};
use crate::config::COMPANY;
use crate::server::Server;

/// Longest a file upload may take.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(3600);
const FINAL: &[&str] = &["Processed", "ProcessedWithErrors", "PreProcessingError"];
const PENDING: &[&str] = &["Enqueued", "Retrying", "Processing"];

fn enqueue_request(api: &Api, activity: &str, entity: &str) -> RequestBuilder {
    api.request(Method::POST, &format!("/api/connector/enqueue/{activity}"))
        .query(&[("entity", entity), ("company", COMPANY)])
        .header("Content-Type", "application/octet-stream")
}

/// The message id of an enqueue answer (a JSON string).
async fn message_id(response: reqwest::Response, what: &str) -> Result<String> {
    if response.status() != StatusCode::OK {
        bail!("{what} answered {}", describe(response).await);
    }
    let body: Value = response.json().await.with_context(|| format!("{what}: the answer is not JSON"))?;
    body.as_str().map(str::to_string).with_context(|| format!("{what}: the answer is not a message id: {body}"))
}

/// Enqueues the file at `path` as `entity` to job `activity`, streamed from disk; answers the
/// message id.
pub async fn enqueue_file(api: &Api, activity: &str, entity: &str, path: &Path) -> Result<String> {
    let file = tokio::fs::File::open(path).await.with_context(|| format!("opening {}", path.display()))?;
    let length = file.metadata().await?.len();
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
    let what = format!("enqueue of {} ({entity})", path.display());
    let response = enqueue_request(api, activity, entity)
        .header("Content-Length", length)
        .timeout(UPLOAD_TIMEOUT)
        .body(body)
        .send()
        .await
        .with_context(|| what.clone())?;
    message_id(response, &what).await
}

/// Enqueues `body` as `entity` to job `activity`; answers the message id.
pub async fn enqueue_body(api: &Api, activity: &str, entity: &str, body: String) -> Result<String> {
    let what = format!("enqueue to {entity}");
    let response = enqueue_request(api, activity, entity).body(body).send().await.with_context(|| what.clone())?;
    message_id(response, &what).await
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc))
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

/// Where one message ended, and when.
pub struct MessageResult {
    pub state: String,
    pub timed_out: bool,
    pub reason: Value,
    pub attempts: Value,
    pub counters: Value,
    /// Up to five rejected rows when the message did not end `Processed`.
    pub first_errors: Option<String>,
    /// From `t0` to the poll that saw the message final.
    pub seen_final_s: f64,
    /// From `t0` to `finished_at` (the server's clock; same machine).
    pub end_to_end_s: Option<f64>,
    /// `finished_at − started_at`.
    pub processing_s: Option<f64>,
    /// `started_at − enqueued_at`.
    pub queue_wait_s: Option<f64>,
    /// The highest `VmRSS` of the server seen at the polls.
    pub rss_max_mib: Option<f64>,
}

impl MessageResult {
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.counters[name].as_u64()
    }

    /// Reason and first errors, for a message that did not end `Processed`.
    pub fn why(&self) -> String {
        let errors: String = self.first_errors.as_deref().unwrap_or("").chars().take(800).collect();
        format!("{} {errors}", self.reason)
    }
}

/// RSS sampling while a message is polled: the server, and the trace file
/// (`seconds,rows_read,rss_mib` every 5 s and at the end).
pub struct RssTrace<'a> {
    pub server: &'a Server,
    pub file: &'a Path,
}

/// Polls message `id` every `poll` until it is final or `timeout` passed; `t0` is when the
/// enqueue started.
pub async fn wait_message(
    api: &Api,
    id: &str,
    t0: DateTime<Utc>,
    timeout: Duration,
    poll: Duration,
    rss: Option<RssTrace<'_>>,
) -> Result<MessageResult> {
    let start = Instant::now();
    let mut rss_max: Option<f64> = None;
    let mut next_note = start + Duration::from_secs(60);
    let mut next_trace = start;
    let mut trace = match &rss {
        Some(r) => {
            let mut f = std::fs::File::create(r.file).with_context(|| format!("creating {}", r.file.display()))?;
            writeln!(f, "seconds,rows_read,rss_mib")?;
            Some(f)
        }
        None => None,
    };
    let (m, timed_out) = loop {
        let m = api.get_json(&format!("/api/messages/{id}")).await?;
        let now = Instant::now();
        let is_final = m["final"].as_bool().unwrap_or(false);
        if let Some(value) = rss.as_ref().and_then(|r| r.server.rss_mib()) {
            rss_max = Some(rss_max.map_or(value, |m| m.max(value)));
            if let Some(f) = trace.as_mut()
                && (now >= next_trace || is_final)
            {
                writeln!(f, "{:.1},{},{value:.1}", seconds(t0, Utc::now()), m["counters"]["read"])?;
                next_trace = now + Duration::from_secs(5);
            }
        }
        if is_final {
            break (m, false);
        }
        if now > next_note {
            eprintln!(
                "           … {} after {:.0} s, read {}",
                m["state"],
                seconds(t0, Utc::now()),
                m["counters"]["read"]
            );
            next_note = now + Duration::from_secs(60);
        }
        if start.elapsed() > timeout {
            break (m, true);
        }
        tokio::time::sleep(poll).await;
    };
    let seen_final_s = seconds(t0, Utc::now());
    let (enqueued, started, finished) = (time(&m["enqueued_at"]), time(&m["started_at"]), time(&m["finished_at"]));
    let state = m["state"].as_str().unwrap_or("?").to_string();
    let first_errors = if state != "Processed" {
        Some(match api.get_json(&format!("/api/messages/{id}/errors?limit=5")).await {
            Ok(e) => e.get("value").unwrap_or(&e).to_string(),
            Err(e) => format!("{e:#}"),
        })
    } else {
        None
    };
    Ok(MessageResult {
        state,
        timed_out,
        reason: m["reason"].clone(),
        attempts: m["attempts"].clone(),
        counters: m["counters"].clone(),
        first_errors,
        seen_final_s,
        end_to_end_s: finished.map(|f| seconds(t0, f)),
        processing_s: started.zip(finished).map(|(s, f)| seconds(s, f)),
        queue_wait_s: enqueued.zip(started).map(|(e, s)| seconds(e, s)),
        rss_max_mib: rss_max,
    })
}

/// Where every message of a job ended.
pub struct ActivityResult {
    pub messages: u64,
    pub states: BTreeMap<String, u64>,
    pub seen_final_s: f64,
    /// From `t0` to the last `finished_at`.
    pub end_to_end_s: Option<f64>,
    pub first_started_after_s: Option<f64>,
}

impl ActivityResult {
    pub fn count(&self, state: &str) -> u64 {
        self.states.get(state).copied().unwrap_or(0)
    }

    pub fn states_json(&self) -> Value {
        json!(self.states)
    }
}

/// Polls until no message of job `activity` is pending and `expected` are final (confirmed by
/// reading every message of the job); `None` after `timeout`.
pub async fn wait_activity(
    api: &Api,
    activity: &str,
    expected: u64,
    timeout: Duration,
    t0: DateTime<Utc>,
) -> Result<Option<ActivityResult>> {
    let start = Instant::now();
    let mut next_note = start + Duration::from_secs(30);
    loop {
        let mut pending = false;
        for state in PENDING {
            let page = api.get_json(&format!("/api/messages?activity={activity}&state={state}&limit=1")).await?;
            pending |= page["value"].as_array().is_some_and(|v| !v.is_empty());
        }
        // Confirm by reading every message of the job (a state change between two of the
        // queries above could hide one).
        if !pending && let Some(result) = all_final(api, activity, expected, t0).await? {
            return Ok(Some(result));
        }
        if start.elapsed() > timeout {
            return Ok(None);
        }
        if Instant::now() > next_note {
            eprintln!("           … {:.0} s  (/metrics, every job: {})", seconds(t0, Utc::now()), gauges(api).await);
            next_note = Instant::now() + Duration::from_secs(30);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn all_final(api: &Api, activity: &str, expected: u64, t0: DateTime<Utc>) -> Result<Option<ActivityResult>> {
    let mut states: BTreeMap<String, u64> = BTreeMap::new();
    let (mut first_start, mut last_finish, mut messages) = (None::<DateTime<Utc>>, None::<DateTime<Utc>>, 0);
    let mut url = Some(format!("/api/messages?activity={activity}&limit=1000"));
    while let Some(u) = url {
        let page = api.get_json(&u).await?;
        for m in page["value"].as_array().into_iter().flatten() {
            messages += 1;
            *states.entry(m["state"].as_str().unwrap_or("?").to_string()).or_default() += 1;
            if let Some(s) = time(&m["started_at"]) {
                first_start = Some(first_start.map_or(s, |f| f.min(s)));
            }
            if let Some(f) = time(&m["finished_at"]) {
                last_finish = Some(last_finish.map_or(f, |l| l.max(f)));
            }
        }
        url = page["next"].as_str().map(str::to_string);
    }
    let done: u64 = states.iter().filter(|(s, _)| FINAL.contains(&s.as_str())).map(|(_, n)| n).sum();
    if done < expected || states.keys().any(|s| PENDING.contains(&s.as_str())) {
        return Ok(None);
    }
    Ok(Some(ActivityResult {
        messages,
        states,
        seen_final_s: seconds(t0, Utc::now()),
        end_to_end_s: last_finish.map(|f| seconds(t0, f)),
        first_started_after_s: first_start.map(|s| seconds(t0, s)),
    }))
}

/// The server's queue gauges from `/metrics` (every job), e.g. `Enqueued 812  Processing 4`.
async fn gauges(api: &Api) -> String {
    let Ok(response) = api.request(Method::GET, "/metrics").send().await else { return "n/a".to_string() };
    let Ok(text) = response.text().await else { return "n/a".to_string() };
    let mut shown = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("ferry_import_messages{state=\"")) {
        let state = line.split('"').nth(1).unwrap_or("?");
        let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        if value > 0.0 {
            shown.push(format!("{state} {value:.0}"));
        }
    }
    if shown.is_empty() { "n/a".to_string() } else { shown.join("  ") }
}
