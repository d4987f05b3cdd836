//! [`IntegrationService`]: what the HTTP edge and the CLI call — definitions, enqueue, status,
//! errors, rejected-rows files — and the start of the workers.

use crate::context::{ImportContext, IntegrationRuntime};
use crate::error::IntegrationError;
use crate::worker::{WorkerHandle, start_workers};
use bytes::Bytes;
use ferry_blob::BlobStore;
use ferry_domain::{
    CompanyChoice, EntityResult, ErrorFilter, ErrorRecord, ImportSettings, Job, Message, MessageFilter, MessageState,
    NewMessage, Operation, Origin, Project, enqueue_company, normalize_activity_id, normalize_message_id, plan_enqueue,
};
use ferry_model::Catalog;
use ferry_store::{Enqueued, Store};
use futures::Stream;
use std::sync::Arc;

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
pub struct EnqueueResult {
    pub message_id: String,
    /// The same content was enqueued before (same job and external identifier): its message.
    pub duplicate: bool,
}

/// A message and everything a status question needs.
#[derive(Clone, Debug)]
pub struct MessageView {
    pub message: Message,
    /// Why it is where it is: the stored reason, or for waiting and running messages what they
    /// wait for or how far they are.
    pub reason: Option<String>,
    pub entities: Vec<EntityResult>,
}

/// The recurring-import service. Cheap to clone.
#[derive(Clone)]
pub struct IntegrationService {
    ctx: Arc<ImportContext>,
}

impl std::fmt::Debug for IntegrationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegrationService").finish_non_exhaustive()
    }
}

impl IntegrationService {
    pub fn new(
        store: Store,
        blobs: BlobStore,
        catalog: Arc<Catalog>,
        settings: ImportSettings,
        runtime: IntegrationRuntime,
    ) -> IntegrationService {
        IntegrationService { ctx: Arc::new(ImportContext::new(store, blobs, catalog, settings, runtime)) }
    }

    pub fn settings(&self) -> &ImportSettings {
        &self.ctx.settings
    }

    /// Whether this node runs XSLT transforms.
    pub fn runs_xslt(&self) -> bool {
        self.ctx.runtime.xslt.is_ok()
    }

    /// Starts `settings.workers` workers on this node, named `node` in leases.
    pub fn start_workers(&self, node: &str) -> WorkerHandle {
        start_workers(self.ctx.clone(), node)
    }

    fn check_xslt(xsl: &str) -> Result<(), String> {
        ferry_xslt::check_stylesheet(xsl.as_bytes()).map_err(|e| e.to_string())
    }

    // ----- definitions -----

    /// Creates or replaces a project after checking it against the catalog.
    pub async fn put_project(&self, project: Project, origin: Origin) -> Result<Project, IntegrationError> {
        project.resolve(&self.ctx.catalog, &Self::check_xslt)?;
        let project = Project { name: project.name.trim().to_string(), ..project };
        self.ctx.store.upsert_project(&project, origin).await?;
        Ok(project)
    }

    pub async fn list_projects(&self) -> Result<Vec<(Project, Origin)>, IntegrationError> {
        Ok(self.ctx.store.list_projects().await?)
    }

    pub async fn get_project(&self, name: &str) -> Result<Option<(Project, Origin)>, IntegrationError> {
        Ok(self.ctx.store.get_project(name).await?)
    }

    /// Deletes a project no job uses.
    pub async fn delete_project(&self, name: &str) -> Result<bool, IntegrationError> {
        let users: Vec<String> = self
            .list_jobs()
            .await?
            .into_iter()
            .filter(|(j, _)| j.project.eq_ignore_ascii_case(name))
            .map(|(j, _)| j.activity_id)
            .collect();
        if !users.is_empty() {
            return Err(IntegrationError::Conflict(format!(
                "project '{name}' is used by recurring job(s) {}; delete or change them first",
                users.join(", ")
            )));
        }
        Ok(self.ctx.store.delete_project(name).await?)
    }

    /// Creates or replaces a recurring job (its project must exist and be an import project).
    pub async fn put_job(&self, job: Job, origin: Origin) -> Result<Job, IntegrationError> {
        job.check()?;
        let activity_id = normalize_activity_id(&job.activity_id).expect("checked");
        let Some((project, _)) = self.get_project(&job.project).await? else {
            return Err(IntegrationError::BadRequest(format!(
                "job {activity_id}: data project '{}' does not exist; create it first",
                job.project
            )));
        };
        if project.operation != Operation::Import {
            return Err(IntegrationError::BadRequest(format!(
                "job {activity_id}: project '{}' is an export project; recurring import jobs need an import project",
                project.name
            )));
        }
        let job = Job { activity_id, project: project.name, ..job };
        self.ctx.store.upsert_job(&job, origin).await?;
        Ok(job)
    }

    pub async fn list_jobs(&self) -> Result<Vec<(Job, Origin)>, IntegrationError> {
        Ok(self.ctx.store.list_jobs().await?)
    }

    /// A job by its activity id in any spelling.
    pub async fn get_job(&self, activity_id: &str) -> Result<Option<(Job, Origin)>, IntegrationError> {
        let Some(id) = normalize_activity_id(activity_id) else { return Ok(None) };
        Ok(self.ctx.store.get_job(&id).await?)
    }

    pub async fn delete_job(&self, activity_id: &str) -> Result<bool, IntegrationError> {
        let Some(id) = normalize_activity_id(activity_id) else { return Ok(false) };
        Ok(self.ctx.store.delete_job(&id).await?)
    }

    /// Enables or disables a job; answers the job, or `None` if there is none.
    pub async fn set_job_enabled(&self, activity_id: &str, enabled: bool) -> Result<Option<Job>, IntegrationError> {
        let Some((job, origin)) = self.get_job(activity_id).await? else { return Ok(None) };
        Ok(Some(self.put_job(Job { enabled, ..job }, origin).await?))
    }

    // ----- the connector -----

    /// Stores the body durably and queues it. Answers only once both the body and the message
    /// row are committed.
    pub async fn enqueue<S, E>(&self, req: EnqueueRequest, body: S) -> Result<EnqueueResult, IntegrationError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let Some((job, _)) = self.get_job(&req.activity_id).await? else {
            return Err(IntegrationError::UnknownJob(req.activity_id.clone()));
        };
        if !job.authorizes(&req.client_id) {
            return Err(IntegrationError::Unauthorized { client_id: req.client_id, activity_id: job.activity_id });
        }
        if !job.enabled {
            return Err(IntegrationError::JobDisabled(job.activity_id));
        }
        let Some((project, _)) = self.get_project(&job.project).await? else {
            return Err(IntegrationError::BadRequest(format!(
                "recurring job {} imports into data project '{}', which does not exist",
                job.activity_id, job.project
            )));
        };
        let choice = CompanyChoice {
            requested: req.company.as_deref(),
            app_default: req.app_default_company.as_deref(),
            fallback: &self.ctx.settings.default_company,
        };
        let company = enqueue_company(&job, choice)?;
        let plan = plan_enqueue(&job, &project, &self.ctx.catalog, req.entity.as_deref(), company)?;

        let message_id = uuid::Uuid::new_v4().to_string();
        let now = self.ctx.store.clock().now();
        let blob_key = format!("messages/{}/{message_id}", now.format("%Y/%m/%d"));
        let info = self.ctx.blobs.put_stream(&blob_key, body, self.ctx.settings.max_enqueue_bytes).await?;
        let message = NewMessage {
            id: message_id.clone(),
            execution_id: message_id.clone(),
            activity_id: job.activity_id.clone(),
            project: project.name.clone(),
            kind: job.kind,
            entity: plan.entity.map(|e| e.collection.clone()),
            company: Some(plan.company),
            external_id: req.external_id.clone().filter(|x| !x.is_empty()),
            content_hash: info.sha256.clone(),
            blob_key: blob_key.clone(),
            size: info.size as i64,
            enqueued_by: req.client_id.clone(),
            lanes: plan.lanes,
            not_before: job.next_processing_time(now),
        };
        let window = self.ctx.settings.dedupe_window;
        let dedupe = (message.external_id.is_some() && !window.is_zero()).then_some(window);
        let outcome = match self.ctx.store.enqueue_message(&message, dedupe).await {
            Ok(o) => o,
            Err(e) => {
                let _ = self.ctx.blobs.delete(&blob_key).await;
                return Err(e.into());
            }
        };
        match outcome {
            Enqueued::Created(m) => {
                self.ctx.store.queue_changed();
                metrics::counter!("ferry_import_messages_enqueued_total").increment(1);
                Ok(EnqueueResult { message_id: m.id, duplicate: false })
            }
            Enqueued::Duplicate(m) => {
                let _ = self.ctx.blobs.delete(&blob_key).await;
                Ok(EnqueueResult { message_id: m.id, duplicate: true })
            }
        }
    }

    // ----- status -----

    /// A message by its message id or execution id.
    pub async fn message(&self, id: &str) -> Result<Option<MessageView>, IntegrationError> {
        let id = normalize_message_id(id);
        let Some(message) = self.ctx.store.get_message(&id).await? else { return Ok(None) };
        let now = self.ctx.store.clock().now();
        let reason = match message.state {
            MessageState::Enqueued => Some(self.waiting_reason(&message).await?),
            MessageState::Processing => Some(format!(
                "importing: attempt {}, {} rows read, {} rejected so far{}",
                message.attempts,
                message.counters.read,
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
            let key = format!("rejected/{}/{position}.{ext}", view.message.id);
            if self.ctx.blobs.size(&key).await?.is_some() {
                return Ok(Some((key, ext.to_string())));
            }
        }
        Ok(None)
    }

    /// The staging file (JSON lines) of entity `position` of a message, if it has one.
    pub async fn staging_file(&self, view: &MessageView, position: i64) -> Result<Option<String>, IntegrationError> {
        let key = crate::pipeline::staging_blob_key(&view.message.id, position);
        Ok(self.ctx.blobs.size(&key).await?.map(|_| key))
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

    pub fn blobs(&self) -> &BlobStore {
        &self.ctx.blobs
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.ctx.catalog
    }
}
