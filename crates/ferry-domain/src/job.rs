//! Recurring jobs: the connector endpoint of a data project (`/api/connector/enqueue/{activity_id}`
//! for imports, `dequeue`/`download`/`ack` for exports), who may use it, when it runs, and
//! activity-id normalisation. Pure.

use crate::DefinitionError;
use crate::project::{Operation, Project};
use crate::recurrence::Recurrence;
use chrono::{DateTime, Utc};

/// A recurring job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The activity id: a GUID, normalised (lower case, no braces) once the job is stored.
    pub activity_id: String,
    pub description: String,
    pub project: String,
    pub kind: JobKind,
    /// The authorization policy: the applications allowed to use this job.
    pub apps: Vec<AuthorizedApp>,
    /// When it runs: a cron expression (`0 */15 * * * *`) or an interval (`15m`). An import job
    /// without one processes each message as soon as it is enqueued; an export job needs one.
    pub recurrence: Option<String>,
    pub enabled: bool,
    /// Imports: the company of enqueues that name none. Exports: the company whose rows are
    /// exported (of company-specific entities; all companies when `None`).
    pub company: Option<String>,
    /// Imports: any rejected row rolls back the whole message.
    pub all_or_nothing: bool,
    /// Exports: a run that finds no rows produces nothing to dequeue.
    pub skip_empty: bool,
}

impl Job {
    /// An enabled file job of `project` that no application may use yet.
    pub fn new(activity_id: impl Into<String>, project: impl Into<String>) -> Job {
        Job {
            activity_id: activity_id.into(),
            description: String::new(),
            project: project.into(),
            kind: JobKind::File,
            apps: Vec::new(),
            recurrence: None,
            enabled: true,
            company: None,
            all_or_nothing: false,
            skip_empty: false,
        }
    }
}

/// What a job's messages hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Single files in the format of the project's entity; `entity` names it on enqueue.
    #[default]
    File,
    /// Zip data packages with Manifest.xml.
    Package,
}

/// An application in a job's authorization policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizedApp {
    pub client_id: String,
    pub enabled: bool,
}

impl AuthorizedApp {
    pub fn enabled(client_id: impl Into<String>) -> AuthorizedApp {
        AuthorizedApp { client_id: client_id.into(), enabled: true }
    }
}

impl Job {
    /// Checks the job on its own (the project is checked to exist by the caller).
    pub fn check(&self) -> Result<(), DefinitionError> {
        if normalize_activity_id(&self.activity_id).is_none() {
            return Err(DefinitionError(format!(
                "activity id '{}' is not a GUID (e.g. 6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d)",
                self.activity_id
            )));
        }
        if self.project.trim().is_empty() {
            return Err(DefinitionError(format!("job {}: name the data project it imports into", self.activity_id)));
        }
        if let Some(text) = &self.recurrence {
            Recurrence::parse(text)
                .map_err(|e| DefinitionError(format!("job {}: recurrence {e}", self.activity_id)))?;
        }
        if self.apps.iter().any(|app| app.client_id.trim().is_empty()) {
            return Err(DefinitionError(format!("job {}: an authorized app has an empty client id", self.activity_id)));
        }
        Ok(())
    }

    /// Checks the job against its project: an export job runs on a recurrence, a file export
    /// exports one entity, and options of the other direction are not set.
    pub fn check_against(&self, project: &Project) -> Result<(), DefinitionError> {
        let id = &self.activity_id;
        match project.operation {
            Operation::Import if self.skip_empty => Err(DefinitionError(format!(
                "job {id}: skip_empty applies to export jobs; data project '{}' imports",
                project.name
            ))),
            Operation::Import => Ok(()),
            Operation::Export if self.all_or_nothing => Err(DefinitionError(format!(
                "job {id}: all_or_nothing applies to import jobs; data project '{}' exports",
                project.name
            ))),
            Operation::Export if self.recurrence.is_none() => Err(DefinitionError(format!(
                "job {id}: an export job needs a recurrence (a cron expression such as '0 */15 * * * *', or an \
                 interval such as '15m')"
            ))),
            Operation::Export if self.kind == JobKind::File && project.entities.len() != 1 => {
                Err(DefinitionError(format!(
                    "job {id}: a file export writes one entity, and data project '{}' has {}; make the job kind \
                     'package' to export them all in one data package",
                    project.name,
                    project.entities.len()
                )))
            }
            Operation::Export => Ok(()),
        }
    }

    /// The job's recurrence, if it has a valid one.
    pub fn schedule(&self) -> Option<Recurrence> {
        self.recurrence.as_deref().and_then(|r| Recurrence::parse(r).ok())
    }

    /// Whether `client_id` may use this job.
    pub fn authorizes(&self, client_id: &str) -> bool {
        self.apps.iter().any(|a| a.enabled && a.client_id.eq_ignore_ascii_case(client_id))
    }

    /// When a message enqueued at `now` may first be processed: now, or the job's next
    /// processing time.
    pub fn next_processing_time(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.schedule().map_or(now, |r| r.next(now, true))
    }
}

/// An activity id in its one stored form (lower-case hyphenated GUID), from any spelling
/// clients send: bare, braced, URL-encoded braces, any case.
pub fn normalize_activity_id(text: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(text).decode_utf8().ok()?;
    let trimmed = decoded.trim().trim_start_matches('{').trim_end_matches('}');
    uuid::Uuid::parse_str(trimmed).ok().map(|u| u.hyphenated().to_string())
}

/// A message or execution id as clients may send it (braced, any case) in its stored form;
/// anything that is not a GUID is kept as given (trimmed), as callers may name their own ids.
pub fn normalize_message_id(text: &str) -> String {
    let trimmed = text.trim().trim_matches('"').trim_start_matches('{').trim_end_matches('}');
    match uuid::Uuid::parse_str(trimmed) {
        Ok(u) => u.hyphenated().to_string(),
        Err(_) => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_ids_in_every_spelling_normalize_alike() {
        const ID: &str = "6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d";
        let want = Some(ID.to_string());
        for text in [
            "6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d",
            "{6D31E09F-4A4B-4E2B-9C1E-0C5F0A0B1C2D}",
            "%7B6D31E09F-4A4B-4E2B-9C1E-0C5F0A0B1C2D%7D",
            "%7b6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d%7d",
        ] {
            assert_eq!(normalize_activity_id(text), want, "{text}");
        }
        assert_eq!(normalize_activity_id(" 6D31E09F4A4B4E2B9C1E0C5F0A0B1C2D "), want, "32 digits");
        for bad in [
            "",
            "x",
            "not-a-guid",
            "6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2",
            "6d31e09f4-a4b-4e2b-9c1e-0c5f0a0b1c2d",
            "{6d31e09f}",
        ] {
            assert_eq!(normalize_activity_id(bad), None, "{bad}");
        }
        assert_eq!(normalize_message_id(" {6D31E09F-4A4B-4E2B-9C1E-0C5F0A0B1C2D} "), ID);
        assert_eq!(normalize_message_id("\"m-1\""), "m-1");
    }

    #[test]
    fn checks_name_the_job_and_the_fix() {
        let job = Job::new("6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d", "P");
        assert!(job.check().is_ok());
        assert!(Job::new("x", "P").check().unwrap_err().0.contains("is not a GUID"));
        assert!(Job { project: " ".into(), ..job.clone() }.check().unwrap_err().0.contains("name the data project"));
        let cron = Job { recurrence: Some("every now and then".into()), ..job.clone() };
        assert!(cron.check().unwrap_err().0.contains("recurrence 'every now and then'"));
        let app = Job { apps: vec![AuthorizedApp::enabled(" ")], ..job };
        assert!(app.check().unwrap_err().0.contains("empty client id"));
    }

    #[test]
    fn only_enabled_listed_apps_are_authorized() {
        let mut job = Job::new("6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d", "P");
        job.apps = vec![AuthorizedApp::enabled("ERP"), AuthorizedApp { client_id: "old".into(), enabled: false }];
        assert!(job.authorizes("erp"));
        assert!(!job.authorizes("old"));
        assert!(!job.authorizes("other"));
    }

    #[test]
    fn recurrences_delay_processing_to_the_next_occurrence() {
        let now = DateTime::parse_from_rfc3339("2026-03-01T10:07:30Z").unwrap().with_timezone(&Utc);
        let mut job = Job::new("6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d", "P");
        assert_eq!(job.next_processing_time(now), now);
        job.recurrence = Some("0 */15 * * * *".into());
        assert_eq!(job.next_processing_time(now).to_rfc3339(), "2026-03-01T10:15:00+00:00");
    }
}
