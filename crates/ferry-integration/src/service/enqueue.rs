//! Putting messages in the queue: files and packages enqueued through the connector (stored
//! durably first), and re-runs of finished messages (a new message on the same file and lanes,
//! behind everything already waiting in them).

use super::IntegrationService;
use crate::error::IntegrationError;
use bytes::Bytes;
use ferry_blob::Stored;
use ferry_domain::{
    CompanyChoice, ExecutionParameters, Job, JobKind, Lane, Message, NewMessage, Operation, Project, enqueue_company,
    plan_enqueue,
};
use ferry_store::{Enqueued, INLINE_FILE_MAX};
use futures::Stream;

/// An enqueue as the connector API receives it.
#[derive(Clone, Debug)]
pub struct EnqueueRequest {
    /// The activity id as the client spelled it.
    pub activity_id: String,
    pub entity: Option<String>,
    pub company: Option<String>,
    pub external_id: Option<String>,
    /// The calling application and its default company.
    pub client_id: String,
    pub app_default_company: Option<String>,
}

/// What an enqueue answered.
#[derive(Clone, Debug, PartialEq, Eq)]
/// Where the file of a message being queued is.
pub(super) enum MessageBody<'a> {
    /// In the blob store, written for this message (removed if the message is not created).
    Owned,
    /// Not this call's to remove: shared with the message it re-runs, or none yet (an export).
    Shared,
    /// These bytes, to keep in the database with the message.
    Inline(&'a [u8]),
}

pub struct EnqueueResult {
    pub message_id: String,
    /// The same content was enqueued before (same job and external identifier): its message.
    pub duplicate: bool,
}

impl IntegrationService {
    /// Stores the body durably and queues it. Answers only once both the body and the message
    /// row are committed.
    pub async fn enqueue<S, E>(&self, req: EnqueueRequest, body: S) -> Result<EnqueueResult, IntegrationError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let (job, project) = self.usable_job(&req.activity_id, &req.client_id).await?;
        if project.operation == Operation::Export {
            return Err(IntegrationError::BadRequest(format!(
                "recurring job {} exports data project '{}': take its files with GET /api/connector/dequeue/{}",
                job.activity_id, project.name, job.activity_id
            )));
        }
        let choice = CompanyChoice {
            requested: req.company.as_deref(),
            app_default: req.app_default_company.as_deref(),
            fallback: &self.ctx.settings.default_company,
        };
        let company = enqueue_company(&job, choice)?;
        let plan = plan_enqueue(&job, &project, &self.ctx.catalog, req.entity.as_deref(), company)?;
        let message_id = uuid::Uuid::new_v4().to_string();
        let blob_key = self.message_blob_key(&message_id);
        // A small body goes into the database with its message: no file, no second fsync.
        let limit = self.ctx.settings.max_enqueue_bytes;
        let (info, inline) =
            match self.ctx.blobs.put_stream_unless_small(&blob_key, body, limit, INLINE_FILE_MAX).await? {
                Stored::Put(info) => (info, None),
                Stored::Kept { info, bytes } => (info, Some(bytes)),
            };
        let now = self.ctx.store.clock().now();
        let message = NewMessage {
            id: message_id.clone(),
            execution_id: message_id,
            activity_id: job.activity_id.clone(),
            project: project.name.clone(),
            operation: Operation::Import,
            kind: job.kind,
            entity: plan.entity.map(|e| e.collection.clone()),
            company: Some(plan.company),
            external_id: req.external_id.clone().filter(|x| !x.is_empty()),
            content_hash: info.sha256.clone(),
            blob_key,
            size: info.size as i64,
            enqueued_by: req.client_id.clone(),
            execute: true,
            rerun_of: None,
            parameters: ExecutionParameters::default(),
            lanes: plan.lanes,
            not_before: job.next_processing_time(now),
        };
        let window = self.ctx.settings.dedupe_window;
        let dedupe = (message.external_id.is_some() && !window.is_zero()).then_some(window);
        let body = match &inline {
            Some(bytes) => MessageBody::Inline(bytes),
            None => MessageBody::Owned,
        };
        let (created, duplicate) = self.queue(&message, dedupe, body).await?;
        Ok(EnqueueResult { message_id: created.id, duplicate })
    }

    /// Where the file of a new message goes.
    pub(super) fn message_blob_key(&self, message_id: &str) -> String {
        let now = self.ctx.store.clock().now();
        format!("messages/{}/{message_id}", now.format("%Y/%m/%d"))
    }

    /// Commits `message`. An [`Owned`](MessageBody::Owned) file is removed again if the message
    /// is not created (a duplicate, a taken execution id, a failure). Answers the message and
    /// whether it is an earlier duplicate.
    pub(super) async fn queue(
        &self,
        message: &NewMessage,
        dedupe: Option<std::time::Duration>,
        body: MessageBody<'_>,
    ) -> Result<(Message, bool), IntegrationError> {
        let drop_blob = async || {
            if matches!(body, MessageBody::Owned) {
                let _ = self.ctx.blobs.delete(&message.blob_key).await;
            }
        };
        let inline = match body {
            MessageBody::Inline(bytes) => Some(bytes),
            MessageBody::Owned | MessageBody::Shared => None,
        };
        let outcome = match self.ctx.store.enqueue_message(message, dedupe, inline).await {
            Ok(o) => o,
            Err(e) => {
                drop_blob().await;
                return Err(e.into());
            }
        };
        match outcome {
            Enqueued::Created(m) => {
                let operation = if m.operation == Operation::Export { "export" } else { "import" };
                metrics::counter!("ferry_import_messages_enqueued_total", "operation" => operation).increment(1);
                Ok((m, false))
            }
            Enqueued::Duplicate(m) => {
                drop_blob().await;
                Ok((m, true))
            }
            Enqueued::ExecutionIdInUse(m) => {
                drop_blob().await;
                Err(IntegrationError::Conflict(format!(
                    "execution id {} is already used (by message {}, {}); choose another, or leave it empty and \
                     ferry makes one",
                    m.execution_id, m.id, m.state
                )))
            }
        }
    }

    /// Runs a finished message again: a new message (answered) on the same file, holding the
    /// same lanes, behind every message already waiting in them, linked to the original.
    pub async fn rerun(&self, id: &str, client_id: &str) -> Result<Message, IntegrationError> {
        let original = self.known_message(id).await?;
        if !original.state.is_final() {
            return Err(IntegrationError::Conflict(format!(
                "message {} is {}; only a finished message can run again (cancel it instead, if it has not started)",
                original.id, original.state
            )));
        }
        let project = match self.get_project(&original.project).await? {
            Some((project, _)) => project,
            None => {
                return Err(IntegrationError::BadRequest(format!(
                    "data project '{}' of message {} does not exist any more",
                    original.project, original.id
                )));
            }
        };
        if original.operation == Operation::Import && !self.ctx.file_exists(&original.blob_key).await? {
            return Err(IntegrationError::Conflict(format!(
                "the file of message {} is gone (kept {} days); enqueue it again",
                original.id,
                self.ctx.retention.keep.as_secs() / 86_400
            )));
        }
        let lanes = self.lanes_of(&original, &project)?;
        let id = uuid::Uuid::new_v4().to_string();
        let (content_hash, blob_key, size) = match original.operation {
            Operation::Import => (original.content_hash.clone(), original.blob_key.clone(), original.size),
            Operation::Export => (String::new(), String::new(), 0),
        };
        let message = NewMessage {
            id: id.clone(),
            execution_id: id,
            activity_id: original.activity_id.clone(),
            project: original.project.clone(),
            operation: original.operation,
            kind: original.kind,
            entity: original.entity.clone(),
            company: original.company.clone(),
            external_id: original.external_id.clone(),
            content_hash,
            blob_key,
            size,
            enqueued_by: client_id.to_owned(),
            execute: original.execute,
            rerun_of: Some(original.id.clone()),
            parameters: original.parameters.clone(),
            lanes,
            not_before: self.ctx.store.clock().now(),
        };
        Ok(self.queue(&message, None, MessageBody::Shared).await?.0)
    }

    /// The lanes a message of `project` holds: an import's entity lanes (a file its entity's, a
    /// package every entity's of the project), an export's lane of its job or project.
    pub(super) fn lanes_of(&self, m: &Message, project: &Project) -> Result<Vec<Lane>, IntegrationError> {
        if m.operation == Operation::Export {
            return Ok(vec![export_lane(&m.activity_id, &m.project)]);
        }
        let job = Job { kind: m.kind, ..Job::new(m.activity_id.clone(), project.name.clone()) };
        let company = m.company.clone().unwrap_or_else(|| self.ctx.settings.default_company.clone());
        let entity = if m.kind == JobKind::File { m.entity.as_deref() } else { None };
        Ok(plan_enqueue(&job, project, &self.ctx.catalog, entity, company)?.lanes)
    }
}

/// The lane exports of one job (or, through the package API, of one project) run in, one at a
/// time: incremental exports of one scope must not overlap.
pub(crate) fn export_lane(activity_id: &str, project: &str) -> Lane {
    if activity_id.is_empty() {
        Lane::named(format!("export/project/{}", project.to_ascii_lowercase()))
    } else {
        Lane::named(format!("export/job/{activity_id}"))
    }
}
