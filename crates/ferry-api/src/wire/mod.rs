//! The shapes ferry's concepts take on the wire, written only here: the spellings of states in
//! each protocol (`states.rs`), the REST bodies of data projects and recurring jobs
//! (`definitions.rs`), message documents (`messages.rs`), and replication profiles, their status,
//! failure log and checks (`profiles.rs`, with the Data Export Service's failure log lines in
//! `states.rs`). Public because the command line prints the same documents (`--json`) and reads
//! the same definition files.

mod definitions;
mod messages;
mod profiles;
mod states;

pub use definitions::{job_from_json, job_json, project_from_json, project_json};
pub use messages::{error_json, message_document, message_summary_json};
pub use profiles::{checks_json, entity_status_json, failures_json, profile_document, profile_json};
pub use states::{
    change_type_name, delivery_state_name, entity_state_name, failure_log_text, job_kind_name, message_state_from_name,
    message_state_name, operation_name, origin_name, phase_name, profile_state_name, stage_from_name, stage_name,
    sync_state_name,
};
pub(crate) use states::{data_job_state_of, execution_status_name, message_status_of};
