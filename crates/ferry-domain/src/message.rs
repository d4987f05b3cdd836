//! Messages: one enqueued file or package (imports), or one run of an export, and everything
//! known about it — its state, the results of its entities, its rejected rows, and for exports
//! the delivery of the produced file to the client — and the summary statuses derived from
//! them. Pure.

use crate::enqueue::Lane;
use crate::job::JobKind;
use crate::project::Operation;
use chrono::{DateTime, Utc};

/// Where a message is in its life. Final states never change again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageState {
    /// Stored and waiting for its turn in its lanes (or for the job's next processing time).
    Enqueued,
    /// A worker holds its lease and is importing it.
    Processing,
    /// A transient failure (database busy or unreachable) interrupted it; it waits for its next
    /// attempt and keeps its place in its lanes.
    Retrying,
    Processed,
    /// Done; some rows were rejected (or, for all-or-nothing jobs, rejected rows rolled it back).
    ProcessedWithErrors,
    /// Nothing could be imported (a broken file or package, an unknown entity, a poison message).
    PreProcessingError,
    /// Cancelled before it started (the reason says by whom).
    Canceled,
}

impl MessageState {
    pub const ALL: [MessageState; 7] = [
        MessageState::Enqueued,
        MessageState::Processing,
        MessageState::Retrying,
        MessageState::Processed,
        MessageState::ProcessedWithErrors,
        MessageState::PreProcessingError,
        MessageState::Canceled,
    ];

    pub fn is_final(self) -> bool {
        matches!(
            self,
            MessageState::Processed
                | MessageState::ProcessedWithErrors
                | MessageState::PreProcessingError
                | MessageState::Canceled
        )
    }

    /// Whether the message may still be cancelled (it has not started).
    pub fn cancellable(self) -> bool {
        self == MessageState::Enqueued
    }

    /// Whether the message still holds its lanes (it waits or runs).
    pub fn holds_lanes(self) -> bool {
        !self.is_final()
    }

    /// The summary of the execution, as the data management status actions report it. Never
    /// "unknown" for a known execution: not run while it waits, executing while it runs or
    /// waits to retry.
    pub fn execution_status(self) -> ExecutionStatus {
        match self {
            MessageState::Enqueued => ExecutionStatus::NotRun,
            MessageState::Processing | MessageState::Retrying => ExecutionStatus::Executing,
            MessageState::Processed => ExecutionStatus::Succeeded,
            MessageState::ProcessedWithErrors => ExecutionStatus::PartiallySucceeded,
            MessageState::PreProcessingError => ExecutionStatus::Failed,
            MessageState::Canceled => ExecutionStatus::Canceled,
        }
    }
}

impl std::fmt::Display for MessageState {
    /// ferry's own name of the state, for people (logs, reasons, metrics labels).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// The summary of an execution or of one of its entities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutionStatus {
    NotRun,
    Executing,
    Succeeded,
    PartiallySucceeded,
    Failed,
    Canceled,
}

/// Where the file an export produced is in its delivery to the client (the recurring
/// integration's dequeue, download and acknowledgement).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting to be dequeued.
    Ready,
    /// Handed out by a dequeue; invisible until `visible_at`, then offered again.
    Dequeued,
    /// Downloaded after a dequeue (still to be acknowledged).
    Downloaded,
    /// Acknowledged by the client: delivered, never offered again.
    Acked,
}

/// The delivery of an export's file.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub state: DeliveryState,
    /// The receipt of the latest dequeue; an acknowledgement must name it.
    pub pop_receipt: Option<String>,
    /// A dequeued file is offered again from this time unless acknowledged.
    pub visible_at: Option<DateTime<Utc>>,
    /// When it was last dequeued.
    pub last_dequeued_at: Option<DateTime<Utc>>,
    pub dequeue_count: i64,
    pub downloaded_at: Option<DateTime<Utc>>,
    pub acked_at: Option<DateTime<Utc>>,
    /// The application that acknowledged it.
    pub acked_by: Option<String>,
}

impl Delivery {
    /// A file waiting for its first dequeue.
    pub fn ready() -> Delivery {
        Delivery {
            state: DeliveryState::Ready,
            pop_receipt: None,
            visible_at: None,
            last_dequeued_at: None,
            dequeue_count: 0,
            downloaded_at: None,
            acked_at: None,
            acked_by: None,
        }
    }

    /// Whether a dequeue at `now` may hand it out: not acknowledged, and not held by an earlier
    /// dequeue whose visibility timeout is still running.
    pub fn dequeueable(&self, now: DateTime<Utc>) -> bool {
        match self.state {
            DeliveryState::Ready => true,
            DeliveryState::Dequeued | DeliveryState::Downloaded => self.visible_at.is_none_or(|v| v <= now),
            DeliveryState::Acked => false,
        }
    }
}

/// The state of one stage (staging or target) of one entity of an execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntityState {
    NotStarted,
    Executing,
    Finished,
    Error,
}

/// The stage of the pipeline where a row was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Reading the file: encoding, structure, field count, field size.
    Parse,
    /// Mapping and checking each value: types, lengths, mandatory fields, enums, duplicate keys.
    Staging,
    /// Writing to the entity: lookups to other entities, database constraints.
    Target,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Parse, Stage::Staging, Stage::Target];
}

/// Row counts of a message or of one entity of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowCounters {
    pub read: i64,
    pub rejected: i64,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
}

impl std::ops::Add for RowCounters {
    type Output = RowCounters;
    fn add(self, o: RowCounters) -> RowCounters {
        RowCounters {
            read: self.read + o.read,
            rejected: self.rejected + o.rejected,
            inserted: self.inserted + o.inserted,
            updated: self.updated + o.updated,
            unchanged: self.unchanged + o.unchanged,
        }
    }
}

impl RowCounters {
    /// Rows that reached the entity (written, or found unchanged).
    pub fn imported(&self) -> i64 {
        self.inserted + self.updated + self.unchanged
    }
}

/// A message: one enqueued file or package and everything known about its processing, or one
/// run of an export and the delivery of what it produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub id: String,
    /// Position in enqueue (commit) order.
    pub seq: i64,
    pub execution_id: String,
    /// The recurring job; empty for executions of the package API, which belong to a project only.
    pub activity_id: String,
    pub project: String,
    pub operation: Operation,
    pub kind: JobKind,
    /// The entity (collection name) of a file message.
    pub entity: Option<String>,
    pub company: Option<String>,
    /// The client's identifier (`x-ms-dyn-externalidentifier`), or an export's package name.
    pub external_id: Option<String>,
    /// The file's SHA-256, size and blob: what was enqueued, or what an export produced (empty
    /// until it has).
    pub content_hash: String,
    pub blob_key: String,
    pub size: i64,
    pub enqueued_by: String,
    /// Imports: run staging and target (`false`: validate and stage only).
    pub execute: bool,
    /// The message this one runs again.
    pub rerun_of: Option<String>,
    pub state: MessageState,
    pub reason: Option<String>,
    pub attempts: i64,
    pub lease_holder: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub not_before: DateTime<Utc>,
    pub enqueued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub counters: RowCounters,
    /// Warnings about the execution as a whole (e.g. ignored columns), one per line.
    pub warnings: Option<String>,
    /// Exports of recurring jobs: the delivery of the produced file.
    pub delivery: Option<Delivery>,
    /// What a package-API execution asked for besides its project.
    pub parameters: ExecutionParameters,
}

/// What a package-API execution asks for besides its project and company.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecutionParameters {
    /// `ExportToPackagePreview`: at most this many rows of each entity.
    pub preview_rows: Option<u64>,
    /// `ExportToPackageDelta`: only what changed since the project's last delta export.
    pub delta: bool,
    /// Only these entities of the project (any of their names); all when empty.
    pub entities: Vec<String>,
}

impl ExecutionParameters {
    pub fn is_default(&self) -> bool {
        *self == ExecutionParameters::default()
    }
}

impl Message {
    /// Whether an export produced a file.
    pub fn has_file(&self) -> bool {
        !self.blob_key.is_empty()
    }
}

/// A message to enqueue. An import's body is already durable in the blob store.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub id: String,
    pub execution_id: String,
    pub activity_id: String,
    pub project: String,
    pub operation: Operation,
    pub kind: JobKind,
    pub entity: Option<String>,
    pub company: Option<String>,
    pub external_id: Option<String>,
    pub content_hash: String,
    pub blob_key: String,
    pub size: i64,
    pub enqueued_by: String,
    pub execute: bool,
    pub rerun_of: Option<String>,
    pub parameters: ExecutionParameters,
    /// The lanes the message holds while it waits and runs.
    pub lanes: Vec<Lane>,
    /// Not processed before this time (the job's next processing time).
    pub not_before: DateTime<Utc>,
}

/// How a message ends (or why it waits again).
#[derive(Clone, Debug, PartialEq)]
pub struct MessageOutcome {
    pub state: MessageState,
    pub reason: Option<String>,
    pub counters: RowCounters,
    pub warnings: Option<String>,
    /// Exports: the file produced, if any.
    pub produced: Option<ProducedFile>,
    /// Exports: how far each incremental entity's changes were exported; recorded with the outcome.
    pub watermarks: Vec<Watermark>,
}

impl MessageOutcome {
    /// An outcome with nothing produced.
    pub fn new(state: MessageState, reason: Option<String>, counters: RowCounters) -> MessageOutcome {
        MessageOutcome { state, reason, counters, warnings: None, produced: None, watermarks: Vec::new() }
    }

    /// A message that could not run at all.
    pub fn failed(reason: impl Into<String>) -> MessageOutcome {
        MessageOutcome::new(MessageState::PreProcessingError, Some(reason.into()), RowCounters::default())
    }
}

/// The file an export wrote to the blob store, and what comes with it when the run is recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct ProducedFile {
    pub blob_key: String,
    pub size: i64,
    pub sha256: String,
    /// Whether it waits to be dequeued (recurring jobs) or is fetched by its execution id
    /// (package API).
    pub deliver: bool,
}

/// How far an incremental export has read the changes of one entity: every change up to
/// `version` is in an export that was recorded. Kept per scope (a recurring job, or a project
/// exported through the package API) and advanced in the transaction that records the export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watermark {
    /// `job:<activity id>` or `project:<name>`.
    pub scope: String,
    /// The entity's logical name.
    pub entity: String,
    pub version: i64,
}

/// The result of one entity of a message (a file message has one, a package one per entity).
#[derive(Clone, Debug, PartialEq)]
pub struct EntityResult {
    pub message_id: String,
    pub position: i64,
    /// The entity's label.
    pub entity: String,
    pub company: Option<String>,
    pub staging: EntityState,
    pub target: EntityState,
    pub rows_read: i64,
    pub rows_staged: i64,
    pub staging_errors: i64,
    pub rows_inserted: i64,
    pub rows_updated: i64,
    pub rows_unchanged: i64,
    pub target_errors: i64,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl EntityResult {
    /// An entity whose staging has just started.
    pub fn started(message_id: &str, position: i64, entity: &str, company: Option<String>, at: DateTime<Utc>) -> Self {
        EntityResult {
            message_id: message_id.to_owned(),
            position,
            entity: entity.to_owned(),
            company,
            staging: EntityState::Executing,
            target: EntityState::NotStarted,
            rows_read: 0,
            rows_staged: 0,
            staging_errors: 0,
            rows_inserted: 0,
            rows_updated: 0,
            rows_unchanged: 0,
            target_errors: 0,
            started_at: Some(at),
            finished_at: None,
        }
    }

    pub fn errors(&self) -> i64 {
        self.staging_errors + self.target_errors
    }

    /// Rows that reached the entity.
    pub fn target_records(&self) -> i64 {
        self.rows_inserted + self.rows_updated + self.rows_unchanged
    }

    /// The summary of this entity from its stages and its rejected rows.
    pub fn status(&self) -> ExecutionStatus {
        let failed = self.staging == EntityState::Error || self.target == EntityState::Error;
        match (failed, self.target == EntityState::Finished) {
            (true, _) if self.errors() == 0 => ExecutionStatus::Failed,
            (true, _) => ExecutionStatus::PartiallySucceeded,
            (false, true) if self.errors() > 0 => ExecutionStatus::PartiallySucceeded,
            (false, true) => ExecutionStatus::Succeeded,
            (false, false) if self.staging == EntityState::NotStarted => ExecutionStatus::NotRun,
            (false, false) => ExecutionStatus::Executing,
        }
    }
}

/// One rejected row (or file-level problem) of a message.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorRecord {
    /// Assigned by the store; ascending in the order errors were recorded (0 before that).
    pub id: i64,
    pub message_id: String,
    /// The entity's label, or `package` for a problem with the package itself.
    pub entity: String,
    pub stage: Stage,
    pub row: Option<i64>,
    pub key: Option<String>,
    pub field: Option<String>,
    pub code: String,
    pub message: String,
}

/// Which messages a listing answers: newest first.
#[derive(Clone, Debug, Default)]
pub struct MessageFilter {
    pub activity_id: Option<String>,
    pub operation: Option<Operation>,
    pub state: Option<MessageState>,
    /// Only messages enqueued before this sequence number (paging backwards from the newest).
    pub before_seq: Option<i64>,
    pub limit: u32,
}

/// Which errors of a message a listing answers, in the order they were recorded.
#[derive(Clone, Debug, Default)]
pub struct ErrorFilter {
    pub stage: Option<Stage>,
    /// The entity's label.
    pub entity: Option<String>,
    /// Only errors after this id (paging forwards).
    pub after_id: Option<i64>,
    pub limit: u32,
}

/// What a waiting message waits for: the message at the head of its lanes, and how many
/// messages are ahead of it in them.
#[derive(Clone, Debug, PartialEq)]
pub struct LanePosition {
    pub head_message_id: String,
    pub head_state: MessageState,
    pub ahead: i64,
}

/// Messages per state and the age of the oldest waiting one (for metrics and `/readyz`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueStats {
    pub by_state: Vec<(MessageState, i64)>,
    pub oldest_waiting_enqueued_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use EntityState::{Error, Finished, NotStarted};
    use ExecutionStatus::{Failed, NotRun, PartiallySucceeded, Succeeded};

    #[test]
    fn an_entity_summary_follows_from_its_stages_and_errors() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let cases = [
            // staging, target, errors → summary
            (NotStarted, NotStarted, 0, NotRun),
            (EntityState::Executing, NotStarted, 0, ExecutionStatus::Executing),
            (Finished, EntityState::Executing, 3, ExecutionStatus::Executing),
            (Finished, Finished, 0, Succeeded),
            (Finished, Finished, 2, PartiallySucceeded),
            (Error, NotStarted, 0, Failed),
            (Finished, Error, 0, Failed),
            (Finished, Error, 5, PartiallySucceeded),
        ];
        for (staging, target, errors, want) in cases {
            let mut e = EntityResult::started("m", 0, "Widgets", None, at);
            (e.staging, e.target, e.staging_errors) = (staging, target, errors);
            assert_eq!(e.status(), want, "{staging:?} {target:?} {errors}");
        }
    }

    #[test]
    fn a_dequeued_file_is_hidden_until_its_visibility_ends_and_never_after_its_acknowledgement() {
        let at = |s: i64| DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(s);
        let mut d = Delivery::ready();
        assert!(d.dequeueable(at(0)));
        d.state = DeliveryState::Dequeued;
        d.visible_at = Some(at(100));
        assert!(!d.dequeueable(at(99)) && d.dequeueable(at(100)));
        d.state = DeliveryState::Downloaded;
        assert!(d.dequeueable(at(101)), "downloaded but not acknowledged: offered again");
        d.state = DeliveryState::Acked;
        assert!(!d.dequeueable(at(1_000_000)));
    }

    #[test]
    fn waiting_and_running_messages_never_report_unknown() {
        let statuses: Vec<ExecutionStatus> = MessageState::ALL.iter().map(|s| s.execution_status()).collect();
        assert_eq!(
            statuses,
            [
                NotRun,
                ExecutionStatus::Executing,
                ExecutionStatus::Executing,
                Succeeded,
                PartiallySucceeded,
                Failed,
                ExecutionStatus::Canceled
            ]
        );
        assert_eq!(
            MessageState::ALL.iter().filter(|s| s.is_final()).count(),
            4,
            "Processed, ProcessedWithErrors, PreProcessingError, Canceled"
        );
        assert_eq!(MessageState::ProcessedWithErrors.to_string(), "ProcessedWithErrors");
    }
}
