//! [`ImportService`]: what the HTTP edge and the CLI call — definitions, enqueue, status,
//! errors, rejected-rows files — and the start of the workers.

use crate::context::{ImportContext, ImportSettings};
use crate::definition::{Job, JobKind, Project, normalize_activity_id};
use crate::error::ImportError;
use crate::status::MessageState;
use crate::worker::{WorkerHandle, start_workers};
use bytes::Bytes;
use chrono::Utc;
use ferry_blob::BlobStore;
use ferry_model::{Catalog, Entity, normalize_company};
use ferry_store::{
    Enqueued, ErrorFilter, ImportErrorRecord, JobRecord, MessageEntityRecord, MessageFilter, MessageRecord, NewMessage,
    ProjectRecord, Store,
};
use futures::Stream;
use std::sync::Arc;

/// Where a definition came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Declared in the configuration file (re-applied at every start).
    Config,
    /// Created through the admin API or the CLI.
    Api,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Config => "config",
            Origin::Api => "api",
        }
    }
}

/// An enqueue as the connector API receives it.
#[derive(Clone, Debug)]
pub struct EnqueueRequest {
    /// The activity id as the client spelled it.
    pub activity_id: String,
    pub entity: Option<String>,
    pub company: Option<String>,
    pub external_id: Option<String>,
    /// The calling application.
    pub client_id: String,
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
    pub record: MessageRecord,
    pub state: MessageState,
    /// Why it is where it is: the stored reason, or for waiting and running messages what they
    /// wait for or how far they are.
    pub reason: Option<String>,
    pub entities: Vec<MessageEntityRecord>,
}

/// The recurring-import service. Cheap to clone.
#[derive(Clone)]
pub struct ImportService {
    ctx: Arc<ImportContext>,
}

impl std::fmt::Debug for ImportService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportService").finish_non_exhaustive()
    }
}

impl ImportService {
    pub fn new(store: Store, blobs: BlobStore, catalog: Arc<Catalog>, settings: ImportSettings) -> ImportService {
        ImportService { ctx: Arc::new(ImportContext { store, blobs, catalog, settings }) }
    }

    pub fn settings(&self) -> &ImportSettings {
        &self.ctx.settings
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
    pub async fn put_project(&self, project: Project, origin: Origin) -> Result<Project, ImportError> {
        project.resolve(&self.ctx.catalog, &Self::check_xslt)?;
        let project = Project { name: project.name.trim().to_string(), ..project };
        let record = ProjectRecord {
            name: project.name.clone(),
            definition: serde_json::to_string(&project).map_err(|e| ImportError::Internal(e.to_string()))?,
            origin: origin.as_str().into(),
            updated_at: Utc::now(),
        };
        self.ctx.store.upsert_project(&record).await?;
        Ok(project)
    }

    pub async fn list_projects(&self) -> Result<Vec<(Project, Origin)>, ImportError> {
        self.ctx.store.list_projects().await?.iter().map(decode_project).collect()
    }

    pub async fn get_project(&self, name: &str) -> Result<Option<(Project, Origin)>, ImportError> {
        self.ctx.store.get_project(name).await?.as_ref().map(decode_project).transpose()
    }

    /// Deletes a project no job uses.
    pub async fn delete_project(&self, name: &str) -> Result<bool, ImportError> {
        let users: Vec<String> = self
            .list_jobs()
            .await?
            .into_iter()
            .filter(|(j, _)| j.project.eq_ignore_ascii_case(name))
            .map(|(j, _)| j.activity_id)
            .collect();
        if !users.is_empty() {
            return Err(ImportError::Conflict(format!(
                "project '{name}' is used by recurring job(s) {}; delete or change them first",
                users.join(", ")
            )));
        }
        Ok(self.ctx.store.delete_project(name).await?)
    }

    /// Creates or replaces a recurring job (its project must exist and be an import project).
    pub async fn put_job(&self, job: Job, origin: Origin) -> Result<Job, ImportError> {
        job.check()?;
        let activity_id = normalize_activity_id(&job.activity_id).expect("checked");
        let Some((project, _)) = self.get_project(&job.project).await? else {
            return Err(ImportError::BadRequest(format!(
                "job {activity_id}: data project '{}' does not exist; create it first",
                job.project
            )));
        };
        if project.operation != crate::definition::Operation::Import {
            return Err(ImportError::BadRequest(format!(
                "job {activity_id}: project '{}' is an export project; recurring import jobs need an import project",
                project.name
            )));
        }
        let job = Job { activity_id: activity_id.clone(), project: project.name.clone(), ..job };
        let record = JobRecord {
            activity_id,
            project: project.name,
            definition: serde_json::to_string(&job).map_err(|e| ImportError::Internal(e.to_string()))?,
            origin: origin.as_str().into(),
            updated_at: Utc::now(),
        };
        self.ctx.store.upsert_job(&record).await?;
        Ok(job)
    }

    pub async fn list_jobs(&self) -> Result<Vec<(Job, Origin)>, ImportError> {
        self.ctx.store.list_jobs().await?.iter().map(decode_job).collect()
    }

    /// A job by its activity id in any spelling.
    pub async fn get_job(&self, activity_id: &str) -> Result<Option<(Job, Origin)>, ImportError> {
        let Some(id) = normalize_activity_id(activity_id) else { return Ok(None) };
        self.ctx.store.get_job(&id).await?.as_ref().map(decode_job).transpose()
    }

    pub async fn delete_job(&self, activity_id: &str) -> Result<bool, ImportError> {
        let Some(id) = normalize_activity_id(activity_id) else { return Ok(false) };
        Ok(self.ctx.store.delete_job(&id).await?)
    }

    /// Enables or disables a job; answers the job, or `None` if there is none.
    pub async fn set_job_enabled(&self, activity_id: &str, enabled: bool) -> Result<Option<Job>, ImportError> {
        let Some((job, origin)) = self.get_job(activity_id).await? else { return Ok(None) };
        Ok(Some(self.put_job(Job { enabled, ..job }, origin).await?))
    }

    // ----- the connector -----

    /// Stores the body durably and queues it. Answers only once both the body and the message
    /// row are committed.
    pub async fn enqueue<S, E>(&self, req: EnqueueRequest, body: S) -> Result<EnqueueResult, ImportError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let Some((job, _)) = self.get_job(&req.activity_id).await? else {
            return Err(ImportError::UnknownJob(req.activity_id.clone()));
        };
        if !job.authorizes(&req.client_id) {
            return Err(ImportError::Unauthorized { client_id: req.client_id, activity_id: job.activity_id });
        }
        if !job.enabled {
            return Err(ImportError::JobDisabled(job.activity_id));
        }
        let Some((project, _)) = self.get_project(&job.project).await? else {
            return Err(ImportError::BadRequest(format!(
                "recurring job {} imports into data project '{}', which does not exist",
                job.activity_id, job.project
            )));
        };
        let project_entities: Vec<Arc<Entity>> =
            project.entities.iter().filter_map(|e| self.ctx.catalog.by_any_name(e.entity.trim()).cloned()).collect();
        let company = match req.company.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) => {
                if c.len() > 8 || !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-') {
                    return Err(ImportError::BadRequest(format!(
                        "company '{c}' is not a legal entity id (up to 8 letters, digits, '-' or '_')"
                    )));
                }
                normalize_company(c)
            }
            None => normalize_company(job.company.as_deref().unwrap_or(&self.ctx.settings.default_company)),
        };
        let (entity, lanes) = match job.kind {
            JobKind::File => {
                let entity = match req.entity.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
                    Some(name) => {
                        let found = self.ctx.catalog.by_any_name(name).cloned().ok_or_else(|| {
                            ImportError::BadRequest(format!(
                                "entity '{name}' does not exist; use its label (e.g. 'Customers V3'), public name or \
                                 collection name"
                            ))
                        })?;
                        if !project_entities.iter().any(|e| Arc::ptr_eq(e, &found)) {
                            return Err(ImportError::BadRequest(format!(
                                "entity '{name}' is not part of data project '{}' (it has: {})",
                                project.name,
                                project_entities.iter().map(|e| e.label.as_str()).collect::<Vec<_>>().join(", ")
                            )));
                        }
                        found
                    }
                    None if project_entities.len() == 1 => project_entities[0].clone(),
                    None => {
                        return Err(ImportError::BadRequest(format!(
                            "name the entity with ?entity=…; data project '{}' has several: {}",
                            project.name,
                            project_entities.iter().map(|e| e.label.as_str()).collect::<Vec<_>>().join(", ")
                        )));
                    }
                };
                let lanes = vec![lane(&entity, &company)];
                (Some(entity.collection.clone()), lanes)
            }
            JobKind::Package => (None, project_entities.iter().map(|e| lane(e, &company)).collect()),
        };

        let message_id = uuid::Uuid::new_v4().to_string();
        let now = Utc::now();
        let blob_key = format!("messages/{}/{message_id}", now.format("%Y/%m/%d"));
        let info = self.ctx.blobs.put_stream(&blob_key, body, self.ctx.settings.max_enqueue_bytes).await?;
        let message = NewMessage {
            id: message_id.clone(),
            execution_id: message_id.clone(),
            activity_id: job.activity_id.clone(),
            project: project.name.clone(),
            kind: job.kind.as_str().into(),
            entity,
            company: Some(company),
            external_id: req.external_id.clone().filter(|x| !x.is_empty()),
            content_hash: info.sha256.clone(),
            blob_key: blob_key.clone(),
            size: info.size as i64,
            enqueued_by: req.client_id.clone(),
            lanes,
            not_before: Some(job.next_processing_time(now)),
        };
        let dedupe = message.external_id.as_ref().map(|_| self.ctx.settings.dedupe_window);
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
    pub async fn message(&self, id: &str) -> Result<Option<MessageView>, ImportError> {
        let trimmed = id.trim().trim_start_matches('{').trim_end_matches('}');
        let id = match uuid::Uuid::parse_str(trimmed) {
            Ok(u) => u.hyphenated().to_string(),
            Err(_) => trimmed.to_string(),
        };
        let Some(record) = self.ctx.store.get_message(&id).await? else { return Ok(None) };
        let state = MessageState::parse(&record.state).unwrap_or(MessageState::Enqueued);
        let reason = match state {
            MessageState::Enqueued => Some(self.waiting_reason(&record).await?),
            MessageState::Processing => Some(format!(
                "importing: attempt {}, {} rows read, {} rejected so far{}",
                record.attempts,
                record.counters.read,
                record.counters.rejected,
                record
                    .heartbeat_at
                    .map(|h| format!(", last heartbeat {} s ago", (Utc::now() - h).num_seconds().max(0)))
                    .unwrap_or_default()
            )),
            _ => record.reason.clone(),
        };
        let entities = self.ctx.store.message_entities(&record.id).await?;
        Ok(Some(MessageView { record, state, reason, entities }))
    }

    async fn waiting_reason(&self, m: &MessageRecord) -> Result<String, ImportError> {
        if m.not_before > Utc::now() {
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

    pub async fn list_messages(&self, filter: &MessageFilter) -> Result<Vec<MessageRecord>, ImportError> {
        Ok(self.ctx.store.list_messages(filter).await?)
    }

    /// The rejected rows of a message (by message or execution id).
    pub async fn errors(&self, id: &str, filter: &ErrorFilter) -> Result<Vec<ImportErrorRecord>, ImportError> {
        let Some(view) = self.message(id).await? else {
            return Err(ImportError::NotFound(format!("no message or execution has id {id}")));
        };
        Ok(self.ctx.store.import_errors(&view.record.id, filter).await?)
    }

    /// The rejected-rows file of entity `position` of a message, if it has one: its blob key,
    /// file extension and the blob store to read it from.
    pub async fn rejected_file(
        &self,
        view: &MessageView,
        position: i64,
    ) -> Result<Option<(String, String)>, ImportError> {
        for ext in ["csv", "xml", "json", "xlsx"] {
            let key = format!("rejected/{}/{position}.{ext}", view.record.id);
            if self.ctx.blobs.size(&key).await?.is_some() {
                return Ok(Some((key, ext.to_string())));
            }
        }
        Ok(None)
    }

    /// The staging file (JSON lines) of entity `position` of a message, if it has one.
    pub async fn staging_file(&self, view: &MessageView, position: i64) -> Result<Option<String>, ImportError> {
        let key = crate::pipeline::staging_blob_key(&view.record.id, position);
        Ok(self.ctx.blobs.size(&key).await?.map(|_| key))
    }

    /// Publishes the queue's gauges: messages per state and the age of the oldest waiting one.
    pub async fn publish_queue_gauges(&self) -> Result<(), ImportError> {
        let stats = self.ctx.store.queue_stats().await?;
        for state in MessageState::ALL {
            let count = stats.by_state.iter().find(|(s, _)| s == state.as_str()).map_or(0, |(_, n)| *n);
            metrics::gauge!("ferry_import_messages", "state" => state.as_str()).set(count as f64);
        }
        let age = stats.oldest_waiting_enqueued_at.map_or(0.0, |t| (Utc::now() - t).num_milliseconds() as f64 / 1000.0);
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

/// A lane: the entity, and the company for company-specific entities.
fn lane(entity: &Entity, company: &str) -> String {
    if entity.company_specific { format!("{}/{company}", entity.logical_name) } else { entity.logical_name.clone() }
}

fn origin_of(text: &str) -> Origin {
    if text == "config" { Origin::Config } else { Origin::Api }
}

fn decode_project(r: &ProjectRecord) -> Result<(Project, Origin), ImportError> {
    let p = serde_json::from_str(&r.definition)
        .map_err(|e| ImportError::Internal(format!("stored project '{}' is unreadable: {e}", r.name)))?;
    Ok((p, origin_of(&r.origin)))
}

fn decode_job(r: &JobRecord) -> Result<(Job, Origin), ImportError> {
    let j = serde_json::from_str(&r.definition)
        .map_err(|e| ImportError::Internal(format!("stored job '{}' is unreadable: {e}", r.activity_id)))?;
    Ok((j, origin_of(&r.origin)))
}
