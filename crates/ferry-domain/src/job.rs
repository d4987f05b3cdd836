//! Recurring jobs: the endpoint `/api/connector/enqueue/{activity_id}` of a data project, who may
//! use it, when its messages are processed, and activity-id normalisation. Pure.

use crate::DefinitionError;
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
    /// Processing recurrence as a cron expression (`0 */15 * * * *`); `None` processes each
    /// message as soon as it is enqueued.
    pub recurrence: Option<String>,
    pub enabled: bool,
    /// The company (legal entity) of enqueues that name none.
    pub company: Option<String>,
    /// Any rejected row rolls back the whole message.
    pub all_or_nothing: bool,
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
        if let Some(cron) = &self.recurrence {
            cron.parse::<croner::Cron>()
                .map_err(|e| DefinitionError(format!("job {}: recurrence '{cron}': {e}", self.activity_id)))?;
        }
        if self.apps.iter().any(|app| app.client_id.trim().is_empty()) {
            return Err(DefinitionError(format!("job {}: an authorized app has an empty client id", self.activity_id)));
        }
        Ok(())
    }

    /// Whether `client_id` may use this job.
    pub fn authorizes(&self, client_id: &str) -> bool {
        self.apps.iter().any(|a| a.enabled && a.client_id.eq_ignore_ascii_case(client_id))
    }

    /// When a message enqueued at `now` may first be processed: now, or the job's next
    /// processing time.
    pub fn next_processing_time(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let Some(cron) = &self.recurrence else { return now };
        match cron.parse::<croner::Cron>() {
            Ok(c) => c.find_next_occurrence(&now, true).unwrap_or(now),
            Err(_) => now,
        }
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
