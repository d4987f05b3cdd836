//! Message states and how each protocol spells them: ferry's own states, the recurring
//! integration message status (GetMessageStatus), the connector's `DataJobState` (jobstatus),
//! the DMF execution summary status and the per-entity execution state.

/// Where a message is in its life. Final states never change again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

impl MessageState {
    pub const ALL: [MessageState; 6] = [
        MessageState::Enqueued,
        MessageState::Processing,
        MessageState::Retrying,
        MessageState::Processed,
        MessageState::ProcessedWithErrors,
        MessageState::PreProcessingError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Enqueued => "Enqueued",
            MessageState::Processing => "Processing",
            MessageState::Retrying => "Retrying",
            MessageState::Processed => "Processed",
            MessageState::ProcessedWithErrors => "ProcessedWithErrors",
            MessageState::PreProcessingError => "PreProcessingError",
        }
    }

    pub fn parse(text: &str) -> Option<MessageState> {
        MessageState::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(text))
    }

    pub fn is_final(self) -> bool {
        matches!(self, MessageState::Processed | MessageState::ProcessedWithErrors | MessageState::PreProcessingError)
    }

    /// The recurring-integration message status (`GetMessageStatus`), doc spelling.
    pub fn message_status(self) -> &'static str {
        match self {
            MessageState::Enqueued => "Enqueued",
            MessageState::Processing | MessageState::Retrying => "Processing",
            MessageState::Processed => "Processed",
            MessageState::ProcessedWithErrors => "ProcessedWithErrors",
            MessageState::PreProcessingError => "PreProcessingError",
        }
    }

    /// The connector's `DataJobState` name and number (`/api/connector/jobstatus`).
    pub fn data_job_state(self) -> (&'static str, i32) {
        match self {
            MessageState::Enqueued => ("Enqueued", 0),
            MessageState::Processing | MessageState::Retrying => ("InProcess", 4),
            MessageState::Processed => ("Processed", 5),
            MessageState::ProcessedWithErrors => ("ProcessedWithErrors", 6),
            MessageState::PreProcessingError => ("PreProcessError", 8),
        }
    }

    /// The DMF execution summary status. Never `Unknown` for a known execution: `NotRun` while
    /// it waits, `Executing` while it runs or waits to retry.
    pub fn execution_summary(self) -> &'static str {
        match self {
            MessageState::Enqueued => "NotRun",
            MessageState::Processing | MessageState::Retrying => "Executing",
            MessageState::Processed => "Succeeded",
            MessageState::ProcessedWithErrors => "PartiallySucceeded",
            MessageState::PreProcessingError => "Failed",
        }
    }
}

/// The state of one entity of an execution (`EntityExecutionStateEnum`), stored per stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntityState {
    NotStarted,
    Executing,
    Finished,
    Error,
}

impl EntityState {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityState::NotStarted => "NotStarted",
            EntityState::Executing => "Executing",
            EntityState::Finished => "Finished",
            EntityState::Error => "Error",
        }
    }

    /// The enum's number (RIS declares `NotStarted, Waiting, Executing, Error, Finished, …`).
    pub fn number(text: &str) -> i32 {
        match text {
            "NotStarted" => 0,
            "Executing" => 2,
            "Error" => 3,
            "Finished" => 4,
            _ => 0,
        }
    }

    /// The summary status of one entity (`GetEntityExecutionSummaryStatusList`) from its
    /// staging and target states and its rejected rows.
    pub fn summary(staging: &str, target: &str, errors: i64) -> &'static str {
        let failed = staging == "Error" || target == "Error";
        match (failed, target == "Finished") {
            (true, _) if errors == 0 => "Failed",
            (true, _) => "PartiallySucceeded",
            (false, true) if errors > 0 => "PartiallySucceeded",
            (false, true) => "Succeeded",
            (false, false) if staging == "NotStarted" => "NotRun",
            (false, false) => "Executing",
        }
    }
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
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Staging => "staging",
            Stage::Target => "target",
        }
    }

    pub fn parse(text: &str) -> Option<Stage> {
        [Stage::Parse, Stage::Staging, Stage::Target].into_iter().find(|s| s.as_str().eq_ignore_ascii_case(text))
    }
}
