//! Where a message or execution stands, read from ferry's `/api/messages/{id}` or from the
//! Dynamics protocols (`GetMessageStatus`, `GetExecutionSummaryStatus`), and what each state
//! means for a caller: still going, done, done with rejected records, or failed. The spellings
//! are the protocols'; this is the one place the client reads them.

use serde_json::Value;

use crate::error::ClientResult;
use crate::http::Connection;
use crate::profile::ServerKind;

/// What a state means for whoever waits on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Waiting or running.
    Pending,
    /// Finished; every record went in (or the export was produced / delivered).
    Succeeded,
    /// Finished, with records rejected.
    RecordErrors,
    /// Finished without importing (the file could not be read, cancelled, failed).
    Failed,
}

impl Outcome {
    pub fn is_final(self) -> bool {
        self != Outcome::Pending
    }
}

/// A message's state in ferry's or the recurring integration's spelling.
pub fn message_outcome(state: &str) -> Outcome {
    match state {
        "Processed" | "Dequeued" | "Downloaded" | "Acked" => Outcome::Succeeded,
        "ProcessedWithErrors" => Outcome::RecordErrors,
        "PreProcessingError" | "PostProcessingFailed" | "PostProcessingError" | "Canceled" => Outcome::Failed,
        _ => Outcome::Pending,
    }
}

/// A DMF execution summary status (`DMFExecutionSummaryStatus`).
pub fn execution_outcome(status: &str) -> Outcome {
    match status {
        "Succeeded" => Outcome::Succeeded,
        "PartiallySucceeded" => Outcome::RecordErrors,
        "Failed" | "Canceled" | "Unknown" => Outcome::Failed,
        _ => Outcome::Pending,
    }
}

/// A message or execution's status now.
#[derive(Clone, Debug)]
pub struct Status {
    pub id: String,
    /// The state's name (ferry's, or the protocol's when the server is Dynamics).
    pub state: String,
    pub outcome: Outcome,
    /// Why it is where it is, when the server says.
    pub reason: Option<String>,
    /// ferry's message document, or `{"id", "state"}` from Dynamics.
    pub document: Value,
}

impl Status {
    /// `read`, `inserted`, `updated`, `unchanged`, `rejected` when the server counts them.
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.document["counters"][name].as_u64()
    }
}

impl Connection {
    /// The status of a message or execution id.
    pub async fn status(&self, id: &str) -> ClientResult<Status> {
        let id = id.trim().trim_matches('"');
        match self.environment().server {
            ServerKind::Ferry => {
                let document = self.get_json("status", &format!("/api/messages/{}", encode(id))).await?;
                let state = document["state"].as_str().unwrap_or("Unknown").to_owned();
                // An export's delivery is part of its story, not its outcome.
                let outcome = message_outcome(&state);
                let reason = document["reason"].as_str().map(str::to_owned);
                Ok(Status { id: document["id"].as_str().unwrap_or(id).to_owned(), state, outcome, reason, document })
            }
            ServerKind::Dynamics => {
                let value = self.dmf_action("GetMessageStatus", &serde_json::json!({ "messageId": id })).await?;
                let state = value.as_str().unwrap_or("Unknown").to_owned();
                let document = serde_json::json!({ "id": id, "state": state });
                Ok(Status { id: id.to_owned(), outcome: message_outcome(&state), state, reason: None, document })
            }
        }
    }

    /// The DMF execution summary status of an execution.
    pub async fn execution_status(&self, execution_id: &str) -> ClientResult<(String, Outcome)> {
        let body = serde_json::json!({ "executionId": execution_id });
        let value = self.dmf_action("GetExecutionSummaryStatus", &body).await?;
        let status = value.as_str().unwrap_or("Unknown").to_owned();
        let outcome = execution_outcome(&status);
        Ok((status, outcome))
    }
}

pub(crate) fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_mean_what_clients_take_them_to() {
        assert_eq!(message_outcome("Processing"), Outcome::Pending);
        assert_eq!(message_outcome("Retrying"), Outcome::Pending);
        assert_eq!(message_outcome("Processed"), Outcome::Succeeded);
        assert_eq!(message_outcome("ProcessedWithErrors"), Outcome::RecordErrors);
        assert_eq!(message_outcome("PostProcessingFailed"), Outcome::Failed);
        assert_eq!(execution_outcome("Executing"), Outcome::Pending);
        assert_eq!(execution_outcome("PartiallySucceeded"), Outcome::RecordErrors);
        assert!(execution_outcome("Canceled").is_final());
    }
}
