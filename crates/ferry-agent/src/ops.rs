//! What the agent tells its operators: counters per job rendered as Prometheus text on
//! `/metrics` (`ferry_agent_files_total{job,outcome}`, `ferry_agent_runs_total{job,result}`,
//! `ferry_agent_last_success_timestamp_seconds{job}`), `/healthz` (every job and its last run as
//! JSON), and a webhook posted when a file fails (a few tries, never blocking a job).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

#[derive(Default)]
struct JobStats {
    files: BTreeMap<&'static str, u64>,
    runs_ok: u64,
    runs_failed: u64,
    last_success: Option<i64>,
    last_error: Option<String>,
}

/// The agent's counters.
#[derive(Clone, Default)]
pub struct Metrics {
    jobs: Arc<Mutex<BTreeMap<String, JobStats>>>,
}

impl Metrics {
    fn with(&self, job: &str, f: impl FnOnce(&mut JobStats)) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        f(jobs.entry(job.to_owned()).or_default());
    }

    /// A file of `job` ended as `outcome` (uploaded, failed, processed, downloaded, …).
    pub fn file(&self, job: &str, outcome: &'static str) {
        self.with(job, |s| *s.files.entry(outcome).or_default() += 1);
    }

    /// A run of `job` ended; `now` in Unix seconds.
    pub fn run(&self, job: &str, error: Option<String>, now: i64) {
        self.with(job, |s| match error {
            None => {
                s.runs_ok += 1;
                s.last_success = Some(now);
                s.last_error = None;
            }
            Some(e) => {
                s.runs_failed += 1;
                s.last_error = Some(e);
            }
        });
    }

    pub fn render(&self) -> String {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::from(
            "# TYPE ferry_agent_files_total counter\n# TYPE ferry_agent_runs_total counter\n\
             # TYPE ferry_agent_last_success_timestamp_seconds gauge\n",
        );
        for (job, s) in jobs.iter() {
            let job = job.replace('\\', "\\\\").replace('"', "\\\"");
            for (outcome, n) in &s.files {
                out.push_str(&format!("ferry_agent_files_total{{job=\"{job}\",outcome=\"{outcome}\"}} {n}\n"));
            }
            out.push_str(&format!("ferry_agent_runs_total{{job=\"{job}\",result=\"ok\"}} {}\n", s.runs_ok));
            out.push_str(&format!("ferry_agent_runs_total{{job=\"{job}\",result=\"failed\"}} {}\n", s.runs_failed));
            if let Some(t) = s.last_success {
                out.push_str(&format!("ferry_agent_last_success_timestamp_seconds{{job=\"{job}\"}} {t}\n"));
            }
        }
        out
    }

    pub fn health(&self) -> Value {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let jobs: BTreeMap<&String, Value> = jobs
            .iter()
            .map(|(name, s)| {
                (name, json!({ "last_success": s.last_success, "last_error": s.last_error, "files": s.files }))
            })
            .collect();
        json!({ "status": "ok", "jobs": jobs })
    }
}

/// Serves `/metrics` and `/healthz` on `listen`; answers the bound address.
pub async fn serve(listen: &str, metrics: Metrics) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(|State(m): State<Metrics>| async move { m.render() }))
        .route("/healthz", get(|State(m): State<Metrics>| async move { axum::Json(m.health()) }))
        .with_state(metrics);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(addr)
}

/// Posts `event` to the webhook, if one is configured, in the background (three tries).
pub fn notify(webhook: Option<&str>, event: Value) {
    let Some(url) = webhook.map(str::to_owned) else { return };
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        for attempt in 1..=3u64 {
            match http.post(&url).json(&event).timeout(std::time::Duration::from_secs(10)).send().await {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => tracing::warn!(status = r.status().as_u16(), "the webhook refused the event"),
                Err(e) => tracing::warn!(error = %e, "cannot reach the webhook"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(attempt * 2)).await;
        }
    });
}
