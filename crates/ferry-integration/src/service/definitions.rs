//! Data projects and recurring jobs: created, replaced, listed and deleted, each checked against
//! the catalog and its project first.

use super::IntegrationService;
use crate::error::IntegrationError;
use ferry_domain::{Job, Operation, Origin, Project, normalize_activity_id};

impl IntegrationService {
    fn check_xslt(xsl: &str) -> Result<(), String> {
        ferry_xslt::check_stylesheet(xsl.as_bytes()).map_err(|e| e.to_string())
    }

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

    /// Creates or replaces a recurring job (its project must exist; an export job runs on its
    /// recurrence, first at its next occurrence).
    pub async fn put_job(&self, job: Job, origin: Origin) -> Result<Job, IntegrationError> {
        job.check()?;
        let activity_id = normalize_activity_id(&job.activity_id).expect("checked");
        let Some((project, _)) = self.get_project(&job.project).await? else {
            return Err(IntegrationError::BadRequest(format!(
                "job {activity_id}: data project '{}' does not exist; create it first",
                job.project
            )));
        };
        job.check_against(&project)?;
        let job = Job { activity_id, project: project.name, ..job };
        self.ctx.store.upsert_job(&job, origin).await?;
        if project.operation == Operation::Export
            && let Some(schedule) = job.schedule()
        {
            let first = schedule.next(self.ctx.store.clock().now(), false);
            self.ctx.store.set_next_export_run(&job.activity_id, first).await?;
        }
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
}
