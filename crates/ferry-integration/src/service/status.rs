//! Answering status questions: a message with why it is where it is and its entities, listings,
//! its rejected rows and files, and the queue's gauges.

use super::IntegrationService;
use crate::error::IntegrationError;
use ferry_domain::{
    EntityResult, ErrorFilter, ErrorRecord, Message, MessageFilter, MessageState, Operation, normalize_message_id,
};

/// A message and everything a status question needs.
#[derive(Clone, Debug)]
pub struct MessageView {
    pub message: Message,
    /// Why it is where it is: the stored reason, or for waiting and running messages what they
    /// wait for or how far they are.
    pub reason: Option<String>,
    pub entities: Vec<EntityResult>,
}

impl IntegrationService {
    /// A message by its message id or execution id.
    pub async fn message(&self, id: &str) -> Result<Option<MessageView>, IntegrationError> {
        let id = normalize_message_id(id);
        let Some(message) = self.ctx.store.get_message(&id).await? else { return Ok(None) };
        let now = self.ctx.store.clock().now();
        let reason = match message.state {
            MessageState::Enqueued => Some(self.waiting_reason(&message).await?),
            MessageState::Processing => Some(format!(
                "{}: attempt {}, {} rows {}, {} rejected so far{}",
                if message.operation == Operation::Export { "exporting" } else { "importing" },
                message.attempts,
                message.counters.read,
                if message.operation == Operation::Export { "written" } else { "read" },
                message.counters.rejected,
                message
                    .heartbeat_at
                    .map(|h| format!(", last heartbeat {} s ago", (now - h).num_seconds().max(0)))
                    .unwrap_or_default()
            )),
            _ => message.reason.clone(),
        };
        let entities = self.ctx.store.entity_results(&message.id).await?;
        Ok(Some(MessageView { message, reason, entities }))
    }

    async fn waiting_reason(&self, m: &Message) -> Result<String, IntegrationError> {
        if m.not_before > self.ctx.store.clock().now() {
            return Ok(format!("waiting for the job's next processing time, {}", m.not_before.to_rfc3339()));
        }
        Ok(match self.ctx.store.lane_position(&m.id).await? {
            Some(p) => format!(
                "waiting behind message {} ({}); {} message{} ahead in its lane",
                p.head_message_id,
                p.head_state,
                p.ahead,
                if p.ahead == 1 { "" } else { "s" }
            ),
            None => "waiting for a free worker".into(),
        })
    }

    pub async fn list_messages(&self, filter: &MessageFilter) -> Result<Vec<Message>, IntegrationError> {
        Ok(self.ctx.store.list_messages(filter).await?)
    }

    /// The rejected rows of a message (by message or execution id).
    pub async fn errors(&self, id: &str, filter: &ErrorFilter) -> Result<Vec<ErrorRecord>, IntegrationError> {
        let Some(view) = self.message(id).await? else {
            return Err(IntegrationError::NotFound(format!("no message or execution has id {id}")));
        };
        Ok(self.ctx.store.errors(&view.message.id, filter).await?)
    }

    /// The rejected-rows file of entity `position` of a message, if it has one: its blob key
    /// and file extension.
    pub async fn rejected_file(
        &self,
        view: &MessageView,
        position: i64,
    ) -> Result<Option<(String, String)>, IntegrationError> {
        for ext in ["csv", "xml", "json", "xlsx"] {
            let key = crate::import::rejected_blob_key_with_extension(&view.message.id, position, ext);
            if self.ctx.blobs.size(&key).await?.is_some() {
                return Ok(Some((key, ext.to_string())));
            }
        }
        Ok(None)
    }

    /// The staging file (JSON lines) of entity `position` of a message, if it has one.
    pub async fn staging_file(&self, view: &MessageView, position: i64) -> Result<Option<String>, IntegrationError> {
        let key = crate::import::staging_blob_key(&view.message.id, position);
        Ok(self.ctx.file_in_blob_store(&key).await?.then_some(key))
    }

    /// Publishes the queue's gauges: messages per state and the age of the oldest waiting one.
    pub async fn publish_queue_gauges(&self) -> Result<(), IntegrationError> {
        let stats = self.ctx.store.queue_stats().await?;
        for state in MessageState::ALL {
            let count = stats.by_state.iter().find(|(s, _)| *s == state).map_or(0, |(_, n)| *n);
            metrics::gauge!("ferry_import_messages", "state" => state.to_string()).set(count as f64);
        }
        let now = self.ctx.store.clock().now();
        let age = stats.oldest_waiting_enqueued_at.map_or(0.0, |t| (now - t).num_milliseconds() as f64 / 1000.0);
        metrics::gauge!("ferry_import_oldest_waiting_seconds").set(age.max(0.0));
        Ok(())
    }
}
