//! `[[jobs]]`: recurring jobs (the connector's `enqueue` for import projects, `dequeue`,
//! `download` and `ack` for export projects) declared in the config and applied at start-up,
//! after the projects. The file form
//! ([`JobEntry`]) is resolved into `ferry_domain::Job`: the activity id checked to be a GUID and
//! normalized (lower case, hyphenated, no braces), defaults filled in, duplicate activity ids
//! rejected.
//!
//! The project is only checked to be named here; start-up reports a job whose project does not
//! exist (neither declared nor created through the API), naming the job.

use ferry_domain::{AuthorizedApp, Job, JobKind, normalize_activity_id};
use serde::Deserialize;

use crate::error::{KeyPath, Problem};
use crate::validate::{company, identifier, not_blank};

/// `file` or `package`, in any case: the kind as the file spells it.
fn kind(text: &str) -> Option<JobKind> {
    match text.trim().to_ascii_lowercase().as_str() {
        "file" => Some(JobKind::File),
        "package" => Some(JobKind::Package),
        _ => None,
    }
}

/// A `[[jobs]]` entry as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct JobEntry {
    activity_id: String,
    #[serde(default)]
    description: Option<String>,
    project: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    apps: Vec<JobAppEntry>,
    #[serde(default)]
    recurrence: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    company: Option<String>,
    #[serde(default)]
    all_or_nothing: bool,
    #[serde(default)]
    skip_empty: bool,
}

/// A `[[jobs.apps]]` entry as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table like { client_id = \"erp\" }")]
struct JobAppEntry {
    client_id: String,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

/// Resolve every entry; activity ids must be unique (in any spelling).
pub(crate) fn resolve_jobs(entries: Vec<JobEntry>, at: &KeyPath) -> Result<Vec<Job>, Problem> {
    let mut jobs: Vec<Job> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let at = at.index(i);
        let job = entry.resolve(&at)?;
        if let Some(first) = jobs.iter().position(|j| j.activity_id == job.activity_id) {
            return Err(Problem::new(
                &at.key("activity_id"),
                format!("duplicate activity id '{}' (also declared by jobs[{first}])", job.activity_id),
            ));
        }
        jobs.push(job);
    }
    Ok(jobs)
}

impl JobEntry {
    fn resolve(self, at: &KeyPath) -> Result<Job, Problem> {
        not_blank(&self.activity_id, &at.key("activity_id"))?;
        let activity_id = normalize_activity_id(&self.activity_id).ok_or_else(|| {
            Problem::new(
                &at.key("activity_id"),
                format!("'{}' is not a GUID (e.g. 6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d)", self.activity_id.trim()),
            )
        })?;
        not_blank(&self.project, &at.key("project"))?;
        let kind = match self.kind {
            None => JobKind::File,
            Some(text) => kind(&text).ok_or_else(|| {
                Problem::new(&at.key("kind"), format!("unknown kind '{text}' (known: file, package)"))
            })?,
        };
        let mut apps: Vec<AuthorizedApp> = Vec::with_capacity(self.apps.len());
        for (i, app) in self.apps.into_iter().enumerate() {
            let at = at.key("apps").index(i).key("client_id");
            let client_id = app.client_id.trim().to_owned();
            identifier(&client_id, 100, &at)?;
            if apps.iter().any(|a| a.client_id.eq_ignore_ascii_case(&client_id)) {
                return Err(Problem::new(&at, format!("app '{client_id}' is listed twice")));
            }
            apps.push(AuthorizedApp { client_id, enabled: app.enabled });
        }
        let recurrence = match self.recurrence {
            Some(cron) if cron.trim().is_empty() => None,
            Some(cron) => Some(cron.trim().to_owned()),
            None => None,
        };
        let company =
            self.company.filter(|c| !c.trim().is_empty()).map(|c| company(c.trim(), &at.key("company"))).transpose()?;
        Ok(Job {
            activity_id,
            description: self.description.unwrap_or_default(),
            project: self.project.trim().to_owned(),
            kind,
            apps,
            recurrence,
            enabled: self.enabled,
            company,
            all_or_nothing: self.all_or_nothing,
            skip_empty: self.skip_empty,
        })
    }
}
