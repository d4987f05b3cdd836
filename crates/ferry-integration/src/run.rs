//! One run of a claimed message, import or export: its lease (checked before every write and
//! renewed by the heartbeat), its progress, the errors it records, and how a run can stop
//! without an outcome.

use crate::context::IntegrationContext;
use crate::import::{ErrorDraft, PendingKeys};
use ferry_domain::{EntityResult, ErrorRecord, Job, Message, MessageOutcome, Operation, Project, RowCounters};
use ferry_store::{ClaimLimits, Fence, LookupMiss, RunRecords, StoreError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Most error records stored per message; beyond it rows are still counted.
pub(crate) const ERRORS_STORED_MAX: i64 = 100_000;
/// Most error records a run keeps before writing them on their own (they normally go in with
/// the next batch or the end).
const ERRORS_BUFFERED_MAX: usize = 5_000;

/// How a run ended.
#[derive(Debug)]
pub(crate) enum RunEnd {
    /// The worker records this outcome.
    Outcome(MessageOutcome),
    /// Already recorded, with the run's last batch.
    Recorded(MessageOutcome),
}

/// Why a run stopped without an outcome.
#[derive(Debug)]
pub(crate) enum RunError {
    /// Try again later (database busy or unreachable, blob store unavailable).
    Transient(String),
    /// Another worker owns the message now.
    LeaseLost,
    /// Nothing more can be done: the message fails with this reason.
    Fatal(String),
}

impl From<StoreError> for RunError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::LeaseLost { .. } => RunError::LeaseLost,
            e if e.is_transient() => RunError::Transient(e.to_string()),
            e => {
                tracing::error!(error = ?e, "import failed on a database error");
                RunError::Fatal(format!("{e} (see the server log)"))
            }
        }
    }
}

impl From<ferry_blob::BlobError> for RunError {
    fn from(e: ferry_blob::BlobError) -> Self {
        if e.is_transient() { RunError::Transient(e.to_string()) } else { RunError::Fatal(e.to_string()) }
    }
}

/// What a run starts from, read by the worker for all the messages of a claim at once (one
/// read each instead of one per run). `None` where it was not read: the run reads its own.
#[derive(Debug, Default)]
pub(crate) struct Prefetched {
    /// The message's recurring job and its project (`Some(None)`: the job does not exist).
    pub job: Option<Option<(Job, Option<Project>)>>,
    /// The message's small body kept in the database (`Some(None)`: it is in the blob store).
    pub body: Option<Option<Vec<u8>>>,
}

impl Prefetched {
    /// Reads the inputs of `claimed` — the jobs of imports with an activity id, the bodies of
    /// small imports — in one statement each. What could not be read is left to the runs.
    pub async fn read_for(ctx: &IntegrationContext, claimed: &[Message]) -> Vec<Prefetched> {
        let imports = || claimed.iter().filter(|m| m.operation == Operation::Import);
        let mut ids: Vec<String> =
            imports().filter(|m| !m.activity_id.is_empty()).map(|m| m.activity_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let keys: Vec<String> = imports().filter(|m| !ClaimLimits::is_large(m)).map(|m| m.blob_key.clone()).collect();
        let jobs = if ids.is_empty() { None } else { ctx.store.jobs_with_projects(&ids).await.ok() };
        let bodies = if keys.is_empty() { None } else { ctx.store.inline_files(&keys).await.ok() };
        claimed
            .iter()
            .map(|m| {
                if m.operation != Operation::Import {
                    return Prefetched::default();
                }
                let job = match &jobs {
                    Some(jobs) if !m.activity_id.is_empty() => Some(jobs.get(&m.activity_id).cloned()),
                    _ => None,
                };
                let body = match &bodies {
                    Some(bodies) if !ClaimLimits::is_large(m) => Some(bodies.get(&m.blob_key).cloned()),
                    _ => None,
                };
                Prefetched { job, body }
            })
            .collect()
    }
}

/// One run of one message.
pub(crate) struct RunState {
    pub ctx: Arc<IntegrationContext>,
    pub message: Message,
    pub fence: Fence,
    /// Set by the heartbeat when the lease was lost.
    pub lost: Arc<AtomicBool>,
    /// Progress across the message's entities, read by the heartbeat.
    pub progress: Arc<Mutex<RowCounters>>,
    done: Mutex<RowCounters>,
    errors_stored: Mutex<i64>,
    /// Entity results and errors not written yet: they go in with the next batch or the end.
    records: Mutex<RunRecords>,
    /// All-or-nothing runs: the keys spilled so far, for lookups of later entities.
    pub pending: Mutex<Option<PendingKeys>>,
}

impl RunState {
    pub fn new(ctx: Arc<IntegrationContext>, message: Message, holder: &str) -> RunState {
        let fence = Fence { message_id: message.id.clone(), holder: holder.to_string(), lease: ctx.settings.lease };
        RunState {
            ctx,
            message,
            fence,
            lost: Arc::new(AtomicBool::new(false)),
            progress: Arc::new(Mutex::new(RowCounters::default())),
            done: Mutex::new(RowCounters::default()),
            errors_stored: Mutex::new(0),
            records: Mutex::new(RunRecords::default()),
            pending: Mutex::new(None),
        }
    }

    pub fn check_lease(&self) -> Result<(), RunError> {
        if self.lost.load(Ordering::Relaxed) { Err(RunError::LeaseLost) } else { Ok(()) }
    }

    pub fn error_record(&self, entity: &str, d: ErrorDraft) -> ErrorRecord {
        ErrorRecord {
            id: 0,
            message_id: self.message.id.clone(),
            entity: entity.to_string(),
            stage: d.stage,
            row: d.row.map(|r| r as i64),
            key: d.key,
            field: d.field,
            code: d.code,
            message: d.message,
        }
    }

    /// Records rejected rows: they are written with the run's next batch or its end (or on
    /// their own once many are waiting).
    pub async fn store_errors(&self, mut errors: Vec<ErrorRecord>) -> Result<(), RunError> {
        let room = errors_room(*self.errors_stored.lock().expect("errors lock"));
        errors.truncate(room);
        if errors.is_empty() {
            return Ok(());
        }
        *self.errors_stored.lock().expect("errors lock") += errors.len() as i64;
        let waiting = {
            let mut records = self.records.lock().expect("records lock");
            records.errors.extend(errors);
            records.errors.len()
        };
        if waiting >= ERRORS_BUFFERED_MAX {
            let errors = std::mem::take(&mut self.records.lock().expect("records lock").errors);
            self.ctx.store.add_errors(&errors, &self.fence).await?;
        }
        Ok(())
    }

    /// Records an entity's result (started or finished), written with the next batch or the end.
    pub fn record_result(&self, result: EntityResult) {
        self.records.lock().expect("records lock").put_result(result);
    }

    /// Records a small file of the run (kept in the database), written with the next batch or
    /// the end.
    pub fn record_file(&self, file: ferry_store::InlineFile) {
        self.records.lock().expect("records lock").put_file(file);
    }

    /// Takes what is waiting to be written, for the write about to happen.
    pub fn take_records(&self) -> RunRecords {
        std::mem::take(&mut *self.records.lock().expect("records lock"))
    }

    /// Gives back records a failed write did not write.
    pub fn put_back_records(&self, records: RunRecords) {
        self.records.lock().expect("records lock").put_back(records);
    }

    /// The lookup misses of `rows` (of `entity`) that no row the message will write resolves.
    pub fn unresolved(
        &self,
        entity: &ferry_model::Entity,
        rows: &[ferry_domain::NewRow],
        misses: Vec<LookupMiss>,
    ) -> Vec<LookupMiss> {
        match self.pending.lock().expect("pending lock").as_ref() {
            Some(pending) => misses.into_iter().filter(|m| !pending.covers(entity, &rows[m.row], m)).collect(),
            None => misses,
        }
    }

    /// Notes rows an all-or-nothing run will write, for lookups of later entities.
    pub fn will_write(&self, entity: &ferry_model::Entity, rows: &[ferry_domain::NewRow]) {
        if let Some(pending) = self.pending.lock().expect("pending lock").as_mut() {
            pending.record(entity, rows);
        }
    }

    /// Publishes the progress of the entity being imported on top of the finished ones.
    pub fn add_progress(&self, current: RowCounters) {
        let done = *self.done.lock().expect("progress lock");
        *self.progress.lock().expect("progress lock") = done + current;
    }

    /// Adds a finished entity's counters to the run's.
    pub fn finish_entity(&self, counters: RowCounters) {
        let mut done = self.done.lock().expect("progress lock");
        *done = *done + counters;
        *self.progress.lock().expect("progress lock") = *done;
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.ctx.store.clock().now()
    }
}

/// How many more errors a message may store.
pub(crate) fn errors_room(stored: i64) -> usize {
    (ERRORS_STORED_MAX - stored).max(0) as usize
}
