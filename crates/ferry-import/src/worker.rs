//! The workers of one node: claim runnable messages (woken by enqueues and finishes, and by a
//! poll for expired leases and due retries), run each with a heartbeat that extends its lease,
//! and end it — or send it back to wait after a transient failure, keeping its place.

use crate::context::ImportContext;
use crate::pipeline::{self, RunError, RunState};
use crate::status::MessageState;
use ferry_store::{MessageOutcome, MessageRecord, RowCounters};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// Running workers; [`WorkerHandle::shutdown`] stops them.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
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
        let abort = self.task.abort_handle();
        if tokio::time::timeout(grace, self.task).await.is_err() {
            abort.abort();
        }
    }
}

pub(crate) fn start_workers(ctx: Arc<ImportContext>, node: &str) -> WorkerHandle {
    let (stop, stopped) = watch::channel(false);
    let holder = format!("{node}/{}", uuid::Uuid::new_v4().simple());
    let task = tokio::spawn(supervise(ctx, holder, stopped));
    WorkerHandle { stop, task }
}

async fn supervise(ctx: Arc<ImportContext>, holder: String, mut stopped: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(ctx.settings.workers.max(1)));
    let mut queue = ctx.store.subscribe_queue();
    let mut running: JoinSet<()> = JoinSet::new();
    loop {
        if *stopped.borrow() {
            break;
        }
        let free = slots.available_permits();
        if free > 0 {
            match ctx.store.claim_messages(&holder, free, ctx.settings.lease, ctx.settings.max_attempts).await {
                Ok(claimed) => {
                    let got = claimed.len();
                    for message in claimed {
                        let permit = slots.clone().acquire_owned().await.expect("semaphore open");
                        let ctx = ctx.clone();
                        let holder = holder.clone();
                        running.spawn(async move {
                            run_one(ctx, message, &holder).await;
                            drop(permit);
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
    }
    while running.join_next().await.is_some() {}
}

async fn run_one(ctx: Arc<ImportContext>, message: MessageRecord, holder: &str) {
    let id = message.id.clone();
    let span = tracing::info_span!("import", message = %id, attempt = message.attempts);
    let _enter = span.enter();
    drop(_enter);
    let started = std::time::Instant::now();
    let state = Arc::new(RunState::new(ctx.clone(), message, holder));
    let heartbeat = tokio::spawn(heartbeat(state.clone()));
    let result = pipeline::run(&state).await;
    heartbeat.abort();
    let store = &ctx.store;
    let attempts = state.message.attempts;
    match result {
        Ok(outcome) => {
            finish(&ctx, &id, holder, &outcome).await;
            metrics::counter!("ferry_import_messages_total", "state" => outcome.state.clone()).increment(1);
            metrics::counter!("ferry_import_rows_total").increment(outcome.counters.read.max(0) as u64);
            metrics::histogram!("ferry_import_message_seconds").record(started.elapsed().as_secs_f64());
            tracing::info!(message = %id, state = %outcome.state, rows = outcome.counters.read, "import finished");
        }
        Err(RunError::LeaseLost) => {
            tracing::warn!(message = %id, "lost the lease on the message; another worker runs it now");
        }
        Err(RunError::Transient(reason)) if attempts < ctx.settings.max_attempts => {
            let delay = Duration::from_secs((1u64 << attempts.clamp(0, 8) as u32).min(300));
            let text = format!(
                "retrying after a transient failure (attempt {attempts} of {}): {reason}; next attempt in {} s",
                ctx.settings.max_attempts,
                delay.as_secs()
            );
            tracing::warn!(message = %id, %reason, "transient failure; the message keeps its place and retries");
            if let Err(e) = store.retry_message_later(&id, holder, delay, &text).await {
                tracing::warn!(message = %id, error = %e, "cannot schedule the retry; the lease will expire instead");
            }
        }
        Err(RunError::Transient(reason)) | Err(RunError::Fatal(reason)) => {
            let outcome = MessageOutcome {
                state: MessageState::PreProcessingError.as_str().into(),
                reason: Some(reason),
                counters: *state.progress.lock().expect("progress lock"),
                warnings: None,
            };
            finish(&ctx, &id, holder, &outcome).await;
        }
    }
}

async fn finish(ctx: &ImportContext, id: &str, holder: &str, outcome: &MessageOutcome) {
    // The outcome must not be lost to a busy database: retry for a while.
    for attempt in 0..20u32 {
        match ctx.store.finish_message(id, holder, outcome).await {
            Ok(true) => {
                ctx.store.queue_changed();
                return;
            }
            Ok(false) => {
                tracing::warn!(message = %id, "lost the lease before finishing; another run will redo the message");
                return;
            }
            Err(e) if e.is_transient() => {
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt + 1))).await;
            }
            Err(e) => {
                tracing::error!(message = %id, error = ?e, "cannot record the outcome of the message");
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
