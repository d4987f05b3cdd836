//! The end of a message's life: cancelling one that has not started, deleting a finished
//! execution with its files (`DeleteExecutionHistoryJob`), and the retention sweep that removes
//! what ended longer ago than `retention.keep`.

use super::IntegrationService;
use super::executions::error_keys_key;
use crate::error::IntegrationError;
use crate::import::{rejected_blob_key_with_extension, staging_blob_key};
use ferry_domain::Message;

/// What one retention sweep removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub messages: u64,
    pub blobs: u64,
}

/// Messages removed per batch of a sweep.
const SWEEP_BATCH: u32 = 500;
/// Unnamed files looked at per prefix and sweep (the next sweep takes the rest).
const SWEEP_BLOBS_MAX: usize = 10_000;

impl IntegrationService {
    /// Cancels a message that has not started: it ends `Canceled`, the reason naming `by`, and
    /// its lanes are free for the messages behind it.
    pub async fn cancel(&self, id: &str, by: &str) -> Result<Message, IntegrationError> {
        let message = self.known_message(id).await?;
        if !message.state.cancellable() {
            return Err(IntegrationError::Conflict(format!(
                "message {} is {}; only a message that has not started can be cancelled",
                message.id, message.state
            )));
        }
        let now = self.ctx.store.clock().now();
        let reason = format!("cancelled by {by} at {}", now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let after = self.ctx.store.cancel_message(&message.id, &reason).await?;
        match after {
            Some(m) if m.state == ferry_domain::MessageState::Canceled => {
                tracing::info!(message = %m.id, %by, "message cancelled");
                Ok(m)
            }
            Some(m) => Err(IntegrationError::Conflict(format!(
                "message {} started before it could be cancelled (it is {})",
                m.id, m.state
            ))),
            None => Err(IntegrationError::NotFound(format!("no message or execution has id {id}"))),
        }
    }

    /// Deletes a finished execution with its results, errors and files.
    pub async fn delete_execution(&self, execution_id: &str) -> Result<(), IntegrationError> {
        let message = self.known_message(execution_id).await?;
        if !message.state.is_final() {
            return Err(IntegrationError::Conflict(format!(
                "execution {} is {}; it can be deleted once it has finished (or cancel it first)",
                message.execution_id, message.state
            )));
        }
        self.remove(&message).await?;
        Ok(())
    }

    /// Removes a finished message and every file of its: answers how many files went.
    async fn remove(&self, message: &Message) -> Result<u64, IntegrationError> {
        let positions: Vec<i64> =
            self.ctx.store.entity_results(&message.id).await?.into_iter().map(|r| r.position).collect();
        if !self.ctx.store.delete_finished_message(&message.id).await? {
            return Ok(0);
        }
        let mut keys = Vec::new();
        for position in positions {
            keys.push(staging_blob_key(&message.id, position));
            keys.push(error_keys_key(&message.id, position));
            for ext in ["csv", "xml", "json", "xlsx"] {
                keys.push(rejected_blob_key_with_extension(&message.id, position, ext));
            }
        }
        // A re-run shares its original's file: it goes with the last message that names it.
        if message.has_file() && !self.ctx.store.blob_in_use(&message.blob_key).await? {
            keys.push(message.blob_key.clone());
        }
        let mut removed = 0;
        for key in keys {
            if self.ctx.delete_file(&key).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes every message (and its files) that ended longer ago than `retention.keep`.
    pub async fn sweep_retention(&self) -> Result<RetentionReport, IntegrationError> {
        let cutoff = ferry_domain::earlier(self.ctx.store.clock().now(), self.ctx.retention.keep);
        let mut report = RetentionReport::default();
        loop {
            let batch = self.ctx.store.messages_finished_before(cutoff, SWEEP_BATCH).await?;
            for message in &batch {
                report.blobs += self.remove(message).await?;
                report.messages += 1;
            }
            if batch.len() < SWEEP_BATCH as usize {
                break;
            }
        }
        // Files no message names: uploads for the package API, and files of messages whose
        // commit never happened (a crash between the write and the commit).
        for (prefix, only_unused) in [("dmf/", false), ("messages/", true), ("exports/", true)] {
            for key in self.ctx.blobs.list_older_than(prefix, cutoff, SWEEP_BLOBS_MAX).await? {
                if only_unused && self.ctx.store.blob_in_use(&key).await? {
                    continue;
                }
                if self.ctx.blobs.delete(&key).await? {
                    report.blobs += 1;
                }
            }
        }
        // Blocks staged for uploads that were never committed.
        report.blobs += self.ctx.blobs.remove_stale_blocks(cutoff).await? as u64;
        if report.messages > 0 || report.blobs > 0 {
            tracing::info!(messages = report.messages, blobs = report.blobs, "retention removed what had ended");
        }
        Ok(report)
    }
}
