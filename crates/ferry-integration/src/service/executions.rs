//! The data management package API's executions: `ImportFromPackage` (a package uploaded to a
//! signed URL of ferry's, or fetched from an allow-listed host) runs through the same ordered
//! lanes as enqueued packages; `ExportToPackage` and its preview and delta forms queue an export
//! of a project; and the files an execution leaves (the exported package, error files).

use super::IntegrationService;
use super::enqueue::{MessageBody, export_lane};
use crate::error::IntegrationError;
use ferry_domain::{
    CompanyChoice, ExecutionParameters, Job, JobKind, Message, MessageState, NewMessage, Operation, Stage,
    enqueue_company, normalize_message_id, plan_enqueue,
};
use futures::TryStreamExt;

/// Where the package of an `ImportFromPackage` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PackageSource {
    /// A blob of ferry's own (uploaded to a URL from `GetAzureWriteUrl`).
    Blob(String),
    /// Any other URL: fetched only from a host on `import.package_url_hosts`.
    Url(String),
}

/// An `ImportFromPackage` call.
#[derive(Clone, Debug)]
pub struct PackageImport {
    pub source: PackageSource,
    /// The data project (`definitionGroupId`).
    pub project: String,
    /// The caller's execution id, if it gave one.
    pub execution_id: Option<String>,
    /// `false`: validate and stage only, write nothing to the entities.
    pub execute: bool,
    pub company: Option<String>,
    pub client_id: String,
    pub app_default_company: Option<String>,
}

/// An `ExportToPackage` call (or its preview or delta form).
#[derive(Clone, Debug)]
pub struct PackageExport {
    pub project: String,
    pub execution_id: Option<String>,
    pub package_name: Option<String>,
    /// Run the execution id again if it exists (it must have finished).
    pub re_execute: bool,
    pub company: Option<String>,
    pub parameters: ExecutionParameters,
    pub client_id: String,
    pub app_default_company: Option<String>,
}

/// Longest execution id a caller may choose.
const EXECUTION_ID_MAX: usize = 200;

impl IntegrationService {
    /// The execution id a call asked for (checked), or a new one.
    fn execution_id(given: Option<&str>) -> Result<String, IntegrationError> {
        match given.map(normalize_message_id).filter(|id| !id.is_empty()) {
            None => Ok(uuid::Uuid::new_v4().to_string()),
            Some(id) if id.len() > EXECUTION_ID_MAX || id.chars().any(char::is_control) => {
                Err(IntegrationError::BadRequest(format!(
                    "executionId must be 1 to {EXECUTION_ID_MAX} printable characters"
                )))
            }
            Some(id) => Ok(id),
        }
    }

    fn company(&self, requested: Option<&str>, app_default: Option<&str>) -> Result<String, IntegrationError> {
        let choice = CompanyChoice { requested, app_default, fallback: &self.ctx.settings.default_company };
        Ok(enqueue_company(&Job::new("", ""), choice)?)
    }

    /// Queues the import of a package into a project, in the project's lanes; answers the
    /// execution id.
    pub async fn import_from_package(&self, req: PackageImport) -> Result<String, IntegrationError> {
        let Some((project, _)) = self.get_project(&req.project).await? else {
            return Err(IntegrationError::BadRequest(format!(
                "data project '{}' (definitionGroupId) does not exist; create it first",
                req.project
            )));
        };
        if project.operation != Operation::Import {
            return Err(IntegrationError::BadRequest(format!(
                "data project '{}' exports; ImportFromPackage needs an import project",
                project.name
            )));
        }
        let execution_id = Self::execution_id(req.execution_id.as_deref())?;
        let company = self.company(req.company.as_deref(), req.app_default_company.as_deref())?;
        let job = Job { kind: JobKind::Package, ..Job::new("", project.name.clone()) };
        let plan = plan_enqueue(&job, &project, &self.ctx.catalog, None, company)?;
        let id = uuid::Uuid::new_v4().to_string();
        let blob_key = self.message_blob_key(&id);
        let limit = self.ctx.settings.max_enqueue_bytes;
        let info = match &req.source {
            PackageSource::Blob(key) => {
                if self.ctx.blobs.size(key).await?.is_none() {
                    return Err(IntegrationError::BadRequest(
                        "nothing was uploaded to packageUrl; PUT the package to the URL GetAzureWriteUrl gave first"
                            .into(),
                    ));
                }
                let stream = self.ctx.blobs.get_stream(key).await?;
                self.ctx.blobs.put_stream(&blob_key, stream, limit).await?
            }
            PackageSource::Url(url) => self.fetch_package(url, &blob_key, limit).await?,
        };
        let message = NewMessage {
            id: id.clone(),
            execution_id,
            activity_id: String::new(),
            project: project.name.clone(),
            operation: Operation::Import,
            kind: JobKind::Package,
            entity: None,
            company: Some(plan.company),
            external_id: None,
            content_hash: info.sha256,
            blob_key,
            size: info.size as i64,
            enqueued_by: req.client_id,
            execute: req.execute,
            rerun_of: None,
            parameters: ExecutionParameters::default(),
            lanes: plan.lanes,
            not_before: self.ctx.store.clock().now(),
        };
        Ok(self.queue(&message, None, MessageBody::Owned).await?.0.execution_id)
    }

    /// Streams the package at `url` into the blob `key`, if its host is allow-listed.
    async fn fetch_package(&self, url: &str, key: &str, limit: u64) -> Result<ferry_blob::BlobInfo, IntegrationError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| IntegrationError::BadRequest(format!("packageUrl is not a URL: {e}")))?;
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        let allowed = matches!(parsed.scheme(), "https" | "http")
            && self.ctx.settings.package_url_hosts.iter().any(|h| host_matches(h, &host));
        if !allowed {
            return Err(IntegrationError::BadRequest(format!(
                "packageUrl names host '{host}', which ferry does not fetch from; upload the package to a URL from \
                 GetAzureWriteUrl, or add the host to import.package_url_hosts"
            )));
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| IntegrationError::Internal(e.to_string()))?;
        let response = client
            .get(parsed)
            .send()
            .await
            .map_err(|e| IntegrationError::BadRequest(format!("cannot fetch packageUrl from {host}: {e}")))?;
        if !response.status().is_success() {
            return Err(IntegrationError::BadRequest(format!(
                "fetching packageUrl from {host} answered {}",
                response.status()
            )));
        }
        let body = response.bytes_stream().map_err(std::io::Error::other);
        Ok(self.ctx.blobs.put_stream(key, Box::pin(body), limit).await?)
    }

    /// Queues an export of a project to a package; answers the execution id.
    pub async fn export_to_package(&self, req: PackageExport) -> Result<String, IntegrationError> {
        let Some((project, _)) = self.get_project(&req.project).await? else {
            return Err(IntegrationError::BadRequest(format!(
                "data project '{}' (definitionGroupId) does not exist; create an export project first",
                req.project
            )));
        };
        if project.operation != Operation::Export {
            return Err(IntegrationError::BadRequest(format!(
                "data project '{}' imports; ExportToPackage needs an export project",
                project.name
            )));
        }
        for name in &req.parameters.entities {
            let known = self.ctx.catalog.by_any_name(name.trim());
            let in_project = known.is_some_and(|e| {
                project.catalog_entities(&self.ctx.catalog).iter().any(|p| p.logical_name == e.logical_name)
            });
            if !in_project {
                return Err(IntegrationError::BadRequest(format!(
                    "entity '{name}' of entityList is not part of data project '{}'",
                    project.name
                )));
            }
        }
        let execution_id = Self::execution_id(req.execution_id.as_deref())?;
        if req.re_execute
            && let Some(previous) = self.ctx.store.get_message(&execution_id).await?
        {
            if !previous.state.is_final() {
                return Err(IntegrationError::Conflict(format!(
                    "execution {execution_id} is {}; it can run again once it has finished",
                    previous.state
                )));
            }
            self.delete_execution(&previous.execution_id).await?;
        }
        let company = self.company(req.company.as_deref(), req.app_default_company.as_deref())?;
        let id = uuid::Uuid::new_v4().to_string();
        let message = NewMessage {
            id,
            execution_id,
            activity_id: String::new(),
            project: project.name.clone(),
            operation: Operation::Export,
            kind: JobKind::Package,
            entity: None,
            company: Some(company),
            external_id: req.package_name.filter(|n| !n.trim().is_empty()),
            content_hash: String::new(),
            blob_key: String::new(),
            size: 0,
            enqueued_by: req.client_id,
            execute: true,
            rerun_of: None,
            parameters: req.parameters,
            lanes: vec![export_lane("", &project.name)],
            not_before: self.ctx.store.clock().now(),
        };
        Ok(self.queue(&message, None, MessageBody::Shared).await?.0.execution_id)
    }

    /// The exported package of an execution: `None` until it is ready (or if it produced none).
    pub async fn exported_package(&self, execution_id: &str) -> Result<Option<(Message, String)>, IntegrationError> {
        let message = self.known_message(execution_id).await?;
        if message.operation != Operation::Export {
            return Err(IntegrationError::BadRequest(format!(
                "execution {} imports; only exports have a package to download",
                message.execution_id
            )));
        }
        let ready = matches!(message.state, MessageState::Processed | MessageState::ProcessedWithErrors);
        if !ready || !message.has_file() {
            return Ok(None);
        }
        let key = message.blob_key.clone();
        Ok(Some((message, key)))
    }

    /// The position of `entity_name` (any of its names) in an execution's results.
    async fn entity_position(&self, message: &Message, entity_name: &str) -> Result<Option<i64>, IntegrationError> {
        let label = self.ctx.catalog.by_any_name(entity_name.trim()).map(|e| e.label.clone());
        let results = self.ctx.store.entity_results(&message.id).await?;
        Ok(results
            .iter()
            .find(|r| label.as_deref().map_or(r.entity.eq_ignore_ascii_case(entity_name.trim()), |l| r.entity == l))
            .map(|r| r.position))
    }

    /// Writes the keys of the records of `entity_name` that failed to reach the entity (stage
    /// target) to a file; answers whether there are any.
    pub async fn generate_target_error_keys(
        &self,
        execution_id: &str,
        entity_name: &str,
    ) -> Result<bool, IntegrationError> {
        let message = self.known_message(execution_id).await?;
        let Some(position) = self.entity_position(&message, entity_name).await? else { return Ok(false) };
        let label = self
            .ctx
            .store
            .entity_results(&message.id)
            .await?
            .into_iter()
            .find(|r| r.position == position)
            .map(|r| r.entity)
            .unwrap_or_default();
        let filter = ferry_domain::ErrorFilter {
            stage: Some(Stage::Target),
            entity: Some(label),
            after_id: None,
            limit: crate::run::ERRORS_STORED_MAX as u32,
        };
        let errors = self.ctx.store.errors(&message.id, &filter).await?;
        if errors.is_empty() {
            return Ok(false);
        }
        let mut text = String::new();
        for e in &errors {
            text.push_str(e.key.as_deref().unwrap_or("(no key)"));
            text.push_str("\r\n");
        }
        let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(text))]);
        self.ctx.blobs.put_stream(&error_keys_key(&message.id, position), body, u64::MAX).await?;
        Ok(true)
    }

    /// The file `generate_target_error_keys` wrote, if it did.
    pub async fn target_error_keys_file(
        &self,
        execution_id: &str,
        entity_name: &str,
    ) -> Result<Option<String>, IntegrationError> {
        let message = self.known_message(execution_id).await?;
        let Some(position) = self.entity_position(&message, entity_name).await? else { return Ok(None) };
        let key = error_keys_key(&message.id, position);
        Ok(self.ctx.blobs.size(&key).await?.map(|_| key))
    }

    /// The rejected input records of `entity_name` (in the input's format), if it rejected any.
    pub async fn staging_error_file(
        &self,
        execution_id: &str,
        entity_name: &str,
    ) -> Result<Option<String>, IntegrationError> {
        let Some(view) = self.message(execution_id).await? else {
            return Err(IntegrationError::NotFound(format!(
                "Execution details were not found for execution id: {execution_id}"
            )));
        };
        let Some(position) = self.entity_position(&view.message, entity_name).await? else { return Ok(None) };
        Ok(self.rejected_file(&view, position).await?.map(|(key, _)| key))
    }
}

/// The blob of an execution entity's target error keys.
pub(crate) fn error_keys_key(message_id: &str, position: i64) -> String {
    format!("errorkeys/{message_id}/{position}.txt")
}

/// Whether `host` is the allow-list entry `pattern` (a host name, or `*.domain` for its
/// subdomains).
fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim().to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(domain) => host.ends_with(&format!(".{domain}")),
        None => !pattern.is_empty() && host == pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_exactly_or_as_subdomains() {
        assert!(host_matches("files.example.com", "files.example.com"));
        assert!(!host_matches("files.example.com", "evil.files.example.com"));
        assert!(host_matches("*.example.com", "a.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("*.example.com", "badexample.com"));
        assert!(!host_matches("", "localhost"));
    }
}
