//! The ferry agent: a long-running scheduler with the job types of the Recurring Integrations
//! Scheduler — upload, processing / execution monitor, download, package import and export —
//! against ferry or Dynamics 365, on any OS.
//!
//! - `config.rs`: `agent.toml`.
//! - `journal.rs`: the fsync'd journal that lets a restarted agent finish what a crash cut off.
//! - `jobs.rs`: one run of each job type.
//! - `ops.rs`: `/metrics`, `/healthz`, the failure webhook.
//!
//! Each job runs in its own task: at start, then at every occurrence of its schedule (an
//! interval or a cron expression, `ferry_domain::Recurrence`), one run at a time — a run that
//! outlasts an occurrence is never overlapped; the next begins at the first occurrence after it
//! ends. A run that fails (the server away after the connection's own retries) is logged and
//! counted, and the schedule goes on: nothing ever pauses for good.

pub mod config;
mod jobs;
pub mod journal;
mod ops;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ferry_client::Connection;
use ferry_domain::SharedClock;

pub use config::{AgentConfig, ConfigError};
pub use ops::Metrics;

use config::{JobConfig, JobKind};
use journal::{Journal, Pending};

/// The running agent's shared state.
pub struct Agent {
    connection: Connection,
    journal: Journal,
    metrics: Metrics,
    webhook: Option<String>,
    clock: SharedClock,
    stop: AtomicBool,
    stopped: tokio::sync::Notify,
}

impl Agent {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn webhook(&self) -> Option<&str> {
        self.webhook.as_deref()
    }

    /// Asks every job to stop after the file it is on.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.stopped.notify_waiters();
    }

    /// Finishes what the journal says a crash cut off.
    async fn recover(&self, pending: Vec<Pending>, jobs: &[JobConfig]) {
        for step in pending {
            match step {
                Pending::Move { from, to } => match journal::finish_move(&from, &to) {
                    Ok(()) => {
                        let _ = self.journal.moved(&from);
                    }
                    Err(e) => tracing::error!(from = %from.display(), error = %e, "cannot finish a move"),
                },
                Pending::Dequeued { job_name, answer } => {
                    let Some(JobKind::Download { job, output, unzip }) =
                        jobs.iter().find(|j| j.name == job_name).map(|j| &j.kind)
                    else {
                        continue;
                    };
                    let file = ferry_client::Dequeued {
                        correlation_id: answer["CorrelationId"].as_str().unwrap_or_default().to_owned(),
                        pop_receipt: answer["PopReceipt"].as_str().unwrap_or_default().to_owned(),
                        download_location: answer["DownloadLocation"].as_str().unwrap_or_default().to_owned(),
                        answer: answer.clone(),
                    };
                    if let Err(e) = self.deliver(&job_name, job, &file, output, *unzip).await {
                        tracing::warn!(job = %job_name, error = %e, "cannot finish a download yet; the next dequeue offers it again");
                    }
                }
                Pending::Exporting { job_name, execution_id } => {
                    let Some(JobKind::ExportPackage { project, output, unzip, .. }) =
                        jobs.iter().find(|j| j.name == job_name).map(|j| &j.kind)
                    else {
                        continue;
                    };
                    if let Err(e) = self.finish_export(&job_name, project, &execution_id, output, *unzip).await {
                        tracing::warn!(job = %job_name, error = %e, "cannot finish an export");
                    }
                }
            }
        }
    }

    async fn run_once(&self, job: &JobConfig) -> jobs::RunResult {
        match &job.kind {
            JobKind::Upload { .. } => self.upload(&job.name, &job.kind).await,
            JobKind::Monitor { folder, processed, error } => self.monitor(&job.name, folder, processed, error).await,
            JobKind::Download { job: activity, output, unzip } => {
                self.download(&job.name, activity, output, *unzip).await
            }
            JobKind::ImportPackage { project, company, files } => {
                self.import_packages(&job.name, project, company.as_deref(), files).await
            }
            JobKind::ExportPackage { project, company, output, unzip } => {
                self.export_package(&job.name, project, company.as_deref(), output, *unzip).await
            }
        }
    }

    /// One job's loop: a run now, then one at each occurrence after the previous run ended.
    async fn schedule(self: Arc<Self>, job: Arc<JobConfig>) {
        loop {
            if self.stopping() {
                return;
            }
            let result = self.run_once(&job).await;
            let now = self.clock.now();
            if let Err(e) = &result {
                tracing::warn!(job = %job.name, error = %e, "run failed; trying again at the next occurrence");
            }
            self.metrics.run(&job.name, result.err(), now.timestamp());
            let next = job.schedule.next(self.clock.now(), false);
            let wait = (next - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.stopped.notified() => return,
            }
        }
    }
}

/// Runs the agent until `shutdown` resolves: recovers from the journal, serves `/metrics` and
/// `/healthz` when `listen` is set (answering its address through `on_listen`), then runs
/// every job on its schedule.
/// Partial files a download killed mid-way left in the jobs' output folders (nothing else of
/// this agent writes there before its jobs start).
fn remove_partial_downloads(jobs: &[JobConfig]) {
    for job in jobs {
        let (JobKind::Download { output, .. } | JobKind::ExportPackage { output, .. }) = &job.kind else {
            continue;
        };
        match ferry_client::files::remove_partial_files(output) {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(folder = %output.display(), files = n, "removed partial downloads of an earlier run")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(folder = %output.display(), error = %e, "cannot look for partial downloads"),
        }
    }
}

pub async fn run(
    config: AgentConfig,
    connection: Connection,
    shutdown: impl std::future::Future<Output = ()>,
    on_listen: impl FnOnce(std::net::SocketAddr),
) -> Result<(), String> {
    let (journal, pending) = Journal::open(&config.state_dir)
        .map_err(|e| format!("cannot open the journal in {}: {e}", config.state_dir.display()))?;
    let metrics = Metrics::default();
    if let Some(listen) = &config.listen {
        let addr = ops::serve(listen, metrics.clone()).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        tracing::info!(%addr, "serving /metrics and /healthz");
        on_listen(addr);
    }
    let agent = Arc::new(Agent {
        connection,
        journal,
        metrics,
        webhook: config.webhook.clone(),
        clock: ferry_domain::SystemClock::shared(),
        stop: AtomicBool::new(false),
        stopped: tokio::sync::Notify::new(),
    });
    tracing::info!(journal = %agent.journal.path().display(), pending = pending.len(), jobs = config.jobs.len(), "agent starting");
    agent.recover(pending, &config.jobs).await;
    remove_partial_downloads(&config.jobs);
    let mut tasks = Vec::new();
    for job in config.jobs {
        tasks.push(tokio::spawn(agent.clone().schedule(Arc::new(job))));
    }
    shutdown.await;
    tracing::info!("stopping: each job finishes the file it is on");
    agent.stop();
    let all = futures_join(tasks);
    if tokio::time::timeout(Duration::from_secs(30), all).await.is_err() {
        tracing::warn!("jobs did not stop within 30 s; leaving (the journal finishes their steps at the next start)");
    }
    Ok(())
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        let _ = task.await;
    }
}
