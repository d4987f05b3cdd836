//! How each protocol spells ferry's states. ferry's own REST API and command line use ferry's
//! names; the Dynamics 365 protocols have their own: the recurring-integration message status
//! (`GetMessageStatus`), the connector's `DataJobState` (`jobstatus`), the DMF execution summary,
//! and the Data Export Service's profile states, phases and change types.

use ferry_domain::{
    ChangeType, DeliveryState, EntityState, ExecutionStatus, FailureLogEntry, JobKind, Message, MessageState,
    Operation, Origin, Phase, ProfileState, Stage, SyncState,
};

/// Where a definition came from, as the REST API and the command line name it.
pub fn origin_name(origin: Origin) -> &'static str {
    match origin {
        Origin::Config => "config",
        Origin::Api => "api",
    }
}

/// A recurring job's kind, as the configuration names it.
pub fn job_kind_name(kind: JobKind) -> &'static str {
    match kind {
        JobKind::File => "file",
        JobKind::Package => "package",
    }
}

/// A data project's operation, as the configuration names it.
pub fn operation_name(operation: Operation) -> &'static str {
    match operation {
        Operation::Import => "import",
        Operation::Export => "export",
    }
}

/// ferry's name of a message state (`/api/messages`, the command line).
pub fn message_state_name(state: MessageState) -> &'static str {
    match state {
        MessageState::Enqueued => "Enqueued",
        MessageState::Processing => "Processing",
        MessageState::Retrying => "Retrying",
        MessageState::Processed => "Processed",
        MessageState::ProcessedWithErrors => "ProcessedWithErrors",
        MessageState::PreProcessingError => "PreProcessingError",
        MessageState::Canceled => "Canceled",
    }
}

/// The state a name stands for, in any case.
pub fn message_state_from_name(name: &str) -> Option<MessageState> {
    MessageState::ALL.into_iter().find(|s| message_state_name(*s).eq_ignore_ascii_case(name.trim()))
}

/// The recurring-integration message status (`GetMessageStatus`), as documented. A cancelled
/// message reads as a pre-processing error there: the protocol has no cancelled status, and
/// clients stop polling on it.
pub(crate) fn message_status_name(state: MessageState) -> &'static str {
    match state {
        MessageState::Enqueued => "Enqueued",
        MessageState::Processing | MessageState::Retrying => "Processing",
        MessageState::Processed => "Processed",
        MessageState::ProcessedWithErrors => "ProcessedWithErrors",
        MessageState::PreProcessingError | MessageState::Canceled => "PreProcessingError",
    }
}

/// The connector's `DataJobState` name and number (`/api/connector/jobstatus`).
pub(crate) fn data_job_state(state: MessageState) -> (&'static str, i32) {
    match state {
        MessageState::Enqueued => ("Enqueued", 0),
        MessageState::Processing | MessageState::Retrying => ("InProcess", 4),
        MessageState::Processed => ("Processed", 5),
        MessageState::ProcessedWithErrors => ("ProcessedWithErrors", 6),
        MessageState::PreProcessingError | MessageState::Canceled => ("PreProcessError", 8),
    }
}

/// The message status of a message, its delivery's once an export's file is out: `Enqueued`
/// (waiting to be dequeued), `Dequeued`, `Downloaded`, `Acked`.
pub(crate) fn message_status_of(m: &Message) -> &'static str {
    match &m.delivery {
        Some(d) => delivery_state(d.state).0,
        None => message_status_name(m.state),
    }
}

/// The `DataJobState` of a message, its delivery's once an export's file is out.
pub(crate) fn data_job_state_of(m: &Message) -> (&'static str, i32) {
    match &m.delivery {
        Some(d) => delivery_state(d.state),
        None => data_job_state(m.state),
    }
}

/// A delivery state as the recurring integration's message status and `DataJobState` name it.
fn delivery_state(state: DeliveryState) -> (&'static str, i32) {
    match state {
        DeliveryState::Ready => ("Enqueued", 0),
        DeliveryState::Dequeued => ("Dequeued", 1),
        DeliveryState::Downloaded => ("Downloaded", 2),
        DeliveryState::Acked => ("Acked", 3),
    }
}

/// ferry's name of a delivery state (`/api/messages`).
pub fn delivery_state_name(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Ready => "Ready",
        DeliveryState::Dequeued => "Dequeued",
        DeliveryState::Downloaded => "Downloaded",
        DeliveryState::Acked => "Acked",
    }
}

/// The DMF execution summary status (`DMFExecutionSummaryStatus`).
pub(crate) fn execution_status_name(status: ExecutionStatus) -> &'static str {
    match status {
        ExecutionStatus::NotRun => "NotRun",
        ExecutionStatus::Executing => "Executing",
        ExecutionStatus::Succeeded => "Succeeded",
        ExecutionStatus::PartiallySucceeded => "PartiallySucceeded",
        ExecutionStatus::Failed => "Failed",
        ExecutionStatus::Canceled => "Canceled",
    }
}

/// The state of a stage of one entity (`EntityExecutionStateEnum`).
pub fn entity_state_name(state: EntityState) -> &'static str {
    match state {
        EntityState::NotStarted => "NotStarted",
        EntityState::Executing => "Executing",
        EntityState::Finished => "Finished",
        EntityState::Error => "Error",
    }
}

/// ferry's name of a pipeline stage (`/api/messages/{id}/errors`, the command line).
pub fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Parse => "parse",
        Stage::Staging => "staging",
        Stage::Target => "target",
    }
}

/// The stage a name stands for, in any case.
pub fn stage_from_name(name: &str) -> Option<Stage> {
    Stage::ALL.into_iter().find(|s| stage_name(*s).eq_ignore_ascii_case(name.trim()))
}

/// The Data Export Service's name of a profile state.
pub fn profile_state_name(state: ProfileState) -> &'static str {
    match state {
        ProfileState::Inactive => "Inactive",
        ProfileState::Active => "Active",
        ProfileState::MetadataOnly => "MetadataOnly",
        ProfileState::DataOnly => "DataOnly",
    }
}

pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Initial => "InitialSync",
        Phase::Delta => "DeltaSync",
    }
}

pub fn sync_state_name(state: SyncState) -> &'static str {
    match state {
        SyncState::Running => "Running",
        SyncState::Paused => "Paused",
    }
}

/// The Data Export Service's change types, as its failure log writes them.
pub fn change_type_name(change: ChangeType) -> &'static str {
    match change {
        ChangeType::InitialExport => "Trigger Initial Export",
        ChangeType::New => "New",
        ChangeType::Update => "Update",
        ChangeType::Delete => "Delete",
    }
}

/// One failure-log line in the Data Export Service's text format (newline included):
/// `Entity: …, RecordId: …, NotificationTime: …, ChangeType: …, FailureReason: …`.
pub fn failure_log_text(line: &FailureLogEntry) -> String {
    format!(
        "Entity: {}, RecordId: {}, NotificationTime: {}, ChangeType: {}, FailureReason: {}\n",
        line.entity,
        line.record_id,
        line.notified_at.format("%m/%d/%Y %H:%M:%S"),
        change_type_name(line.change),
        line.reason.replace(['\n', '\r'], " ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_protocols_keep_their_spellings() {
        for state in MessageState::ALL {
            assert_eq!(message_state_from_name(&message_state_name(state).to_lowercase()), Some(state));
        }
        for stage in Stage::ALL {
            assert_eq!(stage_from_name(&stage_name(stage).to_uppercase()), Some(stage));
        }
        assert_eq!(message_status_name(MessageState::Retrying), "Processing");
        assert_eq!(data_job_state(MessageState::PreProcessingError), ("PreProcessError", 8));
        assert_eq!(data_job_state(MessageState::Retrying), ("InProcess", 4));
        assert_eq!(message_state_from_name("nope"), None);
    }
}
