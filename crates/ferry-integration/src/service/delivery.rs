//! Delivering exports to clients the way the recurring integration's connector does: dequeue
//! hands out the oldest file of an export job not yet acknowledged (hidden for the visibility
//! timeout, then offered again), download streams it, and an acknowledgement ends its delivery.
//! Only applications in the job's authorization policy may do any of it.

use super::IntegrationService;
use crate::error::IntegrationError;
use chrono::{DateTime, Utc};
use ferry_domain::{Job, Message, Operation, Project};
use ferry_store::AckOutcome;

/// A file handed out by a dequeue.
#[derive(Clone, Debug)]
pub struct Dequeued {
    pub message: Message,
    /// The receipt an acknowledgement must name.
    pub receipt: String,
    /// When it was dequeued before (a re-delivery), if it was.
    pub previous_dequeue: Option<DateTime<Utc>>,
}

impl IntegrationService {
    /// The export job `activity_id`, which `client_id` may use.
    async fn export_job(&self, activity_id: &str, client_id: &str) -> Result<(Job, Project), IntegrationError> {
        let (job, project) = self.usable_job(activity_id, client_id).await?;
        if project.operation != Operation::Export {
            return Err(IntegrationError::BadRequest(format!(
                "recurring job {} imports into data project '{}'; dequeue, download and ack serve export jobs \
                 (enqueue files to this one)",
                job.activity_id, project.name
            )));
        }
        Ok((job, project))
    }

    /// Hands out the oldest deliverable file of the export job, or `None` when there is none.
    pub async fn dequeue(&self, activity_id: &str, client_id: &str) -> Result<Option<Dequeued>, IntegrationError> {
        let (job, _) = self.export_job(activity_id, client_id).await?;
        let receipt = new_receipt();
        let visibility = self.ctx.export.visibility_timeout;
        let Some((message, previous_dequeue)) =
            self.ctx.store.dequeue_export(&job.activity_id, &receipt, visibility).await?
        else {
            return Ok(None);
        };
        metrics::counter!("ferry_export_dequeued_total").increment(1);
        Ok(Some(Dequeued { message, receipt, previous_dequeue }))
    }

    /// The export `correlation_id` of the job, to download: marked downloaded, answered with its
    /// blob key.
    pub async fn download(
        &self,
        activity_id: &str,
        correlation_id: &str,
        client_id: &str,
    ) -> Result<(Message, String), IntegrationError> {
        let (job, _) = self.export_job(activity_id, client_id).await?;
        let id = ferry_domain::normalize_message_id(correlation_id);
        let message = match self.ctx.store.get_message(&id).await? {
            Some(m) if m.activity_id == job.activity_id && m.operation == Operation::Export => m,
            _ => {
                return Err(IntegrationError::NotFound(format!(
                    "recurring job {} has no export with correlation id {id}",
                    job.activity_id
                )));
            }
        };
        if message.delivery.is_none() || !message.has_file() {
            return Err(IntegrationError::NotFound(format!(
                "export {} of recurring job {} produced no file to download",
                message.id, job.activity_id
            )));
        }
        self.ctx.store.mark_export_downloaded(&message.id).await?;
        let key = message.blob_key.clone();
        Ok((message, key))
    }

    /// Acknowledges the export `correlation_id` of the job; a `receipt` given must be the latest
    /// dequeue's. Acknowledging twice is harmless.
    pub async fn ack(
        &self,
        activity_id: &str,
        correlation_id: &str,
        receipt: Option<&str>,
        client_id: &str,
    ) -> Result<Message, IntegrationError> {
        let (job, _) = self.export_job(activity_id, client_id).await?;
        let id = ferry_domain::normalize_message_id(correlation_id);
        let receipt = receipt.map(str::trim).filter(|r| !r.is_empty());
        match self.ctx.store.ack_export(&job.activity_id, &id, receipt, client_id).await? {
            AckOutcome::Acked(m) | AckOutcome::AlreadyAcked(m) => Ok(m),
            AckOutcome::Unknown => Err(IntegrationError::NotFound(format!(
                "recurring job {} has no delivered export with correlation id {id}; send the CorrelationId that \
                 dequeue answered",
                job.activity_id
            ))),
            AckOutcome::NotDequeued(m) => Err(IntegrationError::BadRequest(format!(
                "export {} was never dequeued; dequeue it before acknowledging it",
                m.id
            ))),
            AckOutcome::StaleReceipt(m) => Err(IntegrationError::Conflict(format!(
                "the PopReceipt is not the latest for export {}: it was dequeued again since (after the visibility \
                 timeout); acknowledge with the receipt of the latest dequeue",
                m.id
            ))),
        }
    }
}

/// An opaque receipt, like an Azure queue's pop receipt.
fn new_receipt() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes())
}
