//! The workers of one node: claim runnable messages (woken by enqueues and finishes, and by a
//! poll for expired leases and due retries), run each — an import or an export — with a
//! heartbeat that extends its lease, and end it, or send it back to wait after a transient
//! failure, keeping its place. Beside them run the node's background tasks: the scheduler of
//! recurring exports and the retention sweep, each on one node at a time.

use crate::context::IntegrationContext;
use crate::run::{Prefetched, RunEnd, RunError, RunState};
use crate::service::IntegrationService;
use crate::{export, import};
use ferry_domain::{Message, MessageOutcome, MessageState, Operation, RetryPolicy, RowCounters};
use ferry_store::{ClaimLimits, RunRecords};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

/// When a message that failed transiently runs again: 2 s after its first run, doubling, at
/// most 5 minutes.
const RETRIES: RetryPolicy = RetryPolicy::new(Duration::from_secs(2), Duration::from_secs(300));
/// How recording a message's outcome is retried while the database is busy.
const OUTCOME_RETRIES: RetryPolicy = RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(2));
/// How many times recording an outcome is tried.
const OUTCOME_ATTEMPTS: u32 = 20;
/// How many small messages (imports of a file kept in the database) run at once per worker.
const SMALL_RUNS_PER_WORKER: usize = 4;
/// The least time between two claims of one node.
const CLAIM_SPACING: Duration = Duration::from_millis(5);

/// Running workers; [`WorkerHandle::shutdown`] stops them.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    background: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerHandle").finish_non_exhaustive()
    }
}

impl WorkerHandle {
    /// Stops claiming and waits up to `grace` for running imports; the rest are abandoned
    /// (their leases expire and another run imports them again, idempotently).
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        self.background.abort();
        let abort = self.task.abort_handle();
        if tokio::time::timeout(grace, self.task).await.is_err() {
            abort.abort();
        }
    }
}

pub(crate) fn start_workers(ctx: Arc<IntegrationContext>, node: &str) -> WorkerHandle {
    let (stop, stopped) = watch::channel(false);
    let holder = format!("{node}/{}", uuid::Uuid::new_v4().simple());
    let background = tokio::spawn(background(ctx.clone(), holder.clone()).in_current_span());
    let task = tokio::spawn(supervise(ctx, holder, stopped));
    WorkerHandle { stop, task, background }
}

/// The lease of the node that sweeps.
const RETENTION_LEASE: &str = "retention";

/// Queues due recurring exports every poll interval and sweeps what retention removes every
/// sweep interval, each only while this node holds the task's lease.
async fn background(ctx: Arc<IntegrationContext>, holder: String) {
    let service = IntegrationService::from_context(ctx.clone());
    let mut next_sweep = tokio::time::Instant::now();
    loop {
        if let Err(e) = export::schedule::tick(&ctx, &holder).await {
            tracing::warn!(error = %e, "cannot schedule recurring exports; trying again");
        }
        if tokio::time::Instant::now() >= next_sweep {
            next_sweep += ctx.retention.sweep_interval;
            let lease = ctx.retention.sweep_interval.max(ctx.settings.lease);
            match ctx.store.acquire_lease(RETENTION_LEASE, &holder, lease).await {
                Ok(true) => {
                    if let Err(e) = service.sweep_retention().await {
                        tracing::warn!(error = %e, "the retention sweep failed; trying again later");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "cannot take the retention lease"),
            }
        }
        tokio::time::sleep(ctx.settings.poll_interval).await;
    }
}

async fn supervise(ctx: Arc<IntegrationContext>, holder: String, mut stopped: watch::Receiver<bool>) {
    // Every run takes a permit of `runs`; a large one (an export, or a file in the blob store)
    // one of `large` too: the worker count bounds the memory and blocking threads of big runs,
    // while small messages, which mostly wait on the database, run many at once.
    let workers = ctx.settings.workers.max(1);
    let large = Arc::new(Semaphore::new(workers));
    let runs = Arc::new(Semaphore::new(workers * SMALL_RUNS_PER_WORKER));
    let mut queue = ctx.store.subscribe_queue();
    let mut running: JoinSet<()> = JoinSet::new();
    let mut last_claim: Option<tokio::time::Instant> = None;
    loop {
        if *stopped.borrow() {
            break;
        }
        let free = runs.available_permits();
        if free > 0 {
            // A claim is a write. Woken by every enqueue and every finished run, claims would
            // follow each other as fast as the database answers and take the writer from the
            // runs; spaced, each takes what became runnable meanwhile.
            if let Some(last) = last_claim {
                tokio::time::sleep_until(last + CLAIM_SPACING).await;
            }
            last_claim = Some(tokio::time::Instant::now());
            let limits = ClaimLimits { max: free, large_max: large.available_permits().min(free) };
            match ctx.store.claim_messages(&holder, limits, ctx.settings.lease, ctx.settings.max_attempts).await {
                Ok(claimed) => {
                    let got = claimed.len();
                    let inputs = Prefetched::read_for(&ctx, &claimed).await;
                    for (message, prefetched) in claimed.into_iter().zip(inputs) {
                        // Free permits: this task is their only taker, and the claim kept to them.
                        let permit = runs.clone().acquire_owned().await.expect("semaphore open");
                        let large_permit = if ClaimLimits::is_large(&message) {
                            Some(large.clone().acquire_owned().await.expect("semaphore open"))
                        } else {
                            None
                        };
                        let ctx = ctx.clone();
                        let holder = holder.clone();
                        running.spawn(async move {
                            run_one(ctx, message, prefetched, &holder).await;
                            drop((permit, large_permit));
                        });
                    }
                    if got > 0 && got == free {
                        continue;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot claim import messages; retrying"),
            }
        }
        tokio::select! {
            _ = queue.changed() => {}
            _ = tokio::time::sleep(ctx.settings.poll_interval) => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = stopped.changed() => {}
        }
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
}

/// Runs one message to its end; every log line of the run carries the message id and attempt.
async fn run_one(ctx: Arc<IntegrationContext>, message: Message, prefetched: Prefetched, holder: &str) {
    let span = match message.operation {
        Operation::Import => tracing::info_span!("import", message = %message.id, attempt = message.attempts),
        Operation::Export => tracing::info_span!("export", message = %message.id, attempt = message.attempts),
    };
    run_in_span(ctx, message, prefetched, holder).instrument(span).await;
}

async fn run_in_span(ctx: Arc<IntegrationContext>, message: Message, prefetched: Prefetched, holder: &str) {
    let id = message.id.clone();
    let operation = message.operation;
    let what = if operation == Operation::Export { "export" } else { "import" };
    tracing::info!(entity = ?message.entity, company = ?message.company, "{what} started");
    let started = std::time::Instant::now();
    let state = Arc::new(RunState::new(ctx.clone(), message, holder));
    let heartbeat = tokio::spawn(heartbeat(state.clone()).in_current_span());
    let result = match operation {
        Operation::Import => import::run(&state, prefetched).await,
        Operation::Export => export::run(&state).await.map(RunEnd::Outcome),
    };
    heartbeat.abort();
    let store = &ctx.store;
    let attempts = state.message.attempts;
    match result {
        Ok(end) => {
            let outcome = match end {
                RunEnd::Outcome(outcome) => {
                    finish(&ctx, &id, holder, &outcome, &state.take_records()).await;
                    outcome
                }
                RunEnd::Recorded(outcome) => outcome,
            };
            let rows = outcome.counters.read.max(0) as u64;
            let seconds = started.elapsed().as_secs_f64();
            if operation == Operation::Export {
                metrics::counter!("ferry_export_runs_total", "state" => outcome.state.to_string()).increment(1);
                metrics::counter!("ferry_export_rows_total").increment(rows);
                metrics::histogram!("ferry_export_run_seconds").record(seconds);
            } else {
                metrics::counter!("ferry_import_messages_total", "state" => outcome.state.to_string()).increment(1);
                metrics::counter!("ferry_import_rows_total").increment(rows);
                metrics::histogram!("ferry_import_message_seconds").record(seconds);
            }
            tracing::info!(state = %outcome.state, rows = outcome.counters.read, "{what} finished");
        }
        Err(RunError::LeaseLost) => {
            tracing::warn!("lost the lease on the message; another worker runs it now");
        }
        Err(RunError::Transient(reason)) if attempts < ctx.settings.max_attempts => {
            let delay = RETRIES.delay(u32::try_from(attempts).unwrap_or(u32::MAX));
            let text = format!(
                "retrying after a transient failure (attempt {attempts} of {}): {reason}; next attempt in {} s",
                ctx.settings.max_attempts,
                delay.as_secs()
            );
            tracing::warn!(%reason, "transient failure; the message keeps its place and retries");
            if let Err(e) = store.retry_message_later(&id, holder, delay, &text).await {
                tracing::warn!(error = %e, "cannot schedule the retry; the lease will expire instead");
            }
        }
        Err(RunError::Transient(reason)) | Err(RunError::Fatal(reason)) => {
            tracing::warn!(%reason, "the message cannot be {what}ed");
            let counters = *state.progress.lock().expect("progress lock");
            let outcome = MessageOutcome::new(MessageState::PreProcessingError, Some(reason), counters);
            finish(&ctx, &id, holder, &outcome, &state.take_records()).await;
        }
    }
}

/// Records the outcome, with what the run recorded since its last write (`records`).
async fn finish(ctx: &IntegrationContext, id: &str, holder: &str, outcome: &MessageOutcome, records: &RunRecords) {
    // The outcome must not be lost to a busy database: retry for a while.
    for attempt in 1..=OUTCOME_ATTEMPTS {
        match ctx.store.finish_message(id, holder, outcome, records).await {
            Ok(true) => return,
            Ok(false) => {
                tracing::warn!("lost the lease before finishing; another run will redo the message");
                return;
            }
            Err(e) if e.is_transient() => tokio::time::sleep(OUTCOME_RETRIES.delay(attempt)).await,
            Err(e) => {
                tracing::error!(error = ?e, "cannot record the outcome of the message");
                return;
            }
        }
    }
}

/// Extends the lease every third of its length and publishes progress; flags a lost lease.
async fn heartbeat(state: Arc<RunState>) {
    let ctx = &state.ctx;
    let every = ctx.settings.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let progress: RowCounters = *state.progress.lock().expect("progress lock");
        match ctx
            .store
            .renew_message_lease(&state.fence.message_id, &state.fence.holder, ctx.settings.lease, Some(progress))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                state.lost.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew the lease on a message; trying again"),
        }
    }
}
