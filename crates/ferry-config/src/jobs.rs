//! `[[jobs]]`: recurring import jobs (the connector's `/api/connector/enqueue/{activity_id}`)
//! declared in the config and applied at start-up, after the projects. The file form
//! ([`JobEntry`]) is resolved into [`JobDecl`]: the activity id checked to be a GUID and
//! normalized (lower case, hyphenated, no braces), defaults filled in, duplicate activity ids
//! rejected.
//!
//! The project is only checked to be named here; start-up reports a job whose project does not
//! exist (neither declared nor created through the API), naming the job.

use serde::Deserialize;

use crate::error::{KeyPath, Problem};
use crate::validate::{company, identifier, not_blank};

/// What a recurring job receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKindDecl {
    /// Single files in the format of the project's entity.
    File,
    /// Zip data packages with a manifest.
    Package,
}

impl JobKindDecl {
    fn parse(text: &str) -> Option<JobKindDecl> {
        match text.trim().to_ascii_lowercase().as_str() {
            "file" => Some(JobKindDecl::File),
            "package" => Some(JobKindDecl::Package),
            _ => None,
        }
    }

    /// `file` or `package`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKindDecl::File => "file",
            JobKindDecl::Package => "package",
        }
    }
}

/// A recurring job to create or replace at start-up (matched by activity id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDecl {
    /// A GUID, lower case and hyphenated; unique.
    pub activity_id: String,
    pub description: String,
    /// The data project it imports into; not blank.
    pub project: String,
    pub kind: JobKindDecl,
    /// The applications allowed to enqueue.
    pub apps: Vec<JobAppDecl>,
    /// Cron expression of the processing recurrence (checked at start-up); `None`: at once.
    pub recurrence: Option<String>,
    pub enabled: bool,
    /// Lower-case company for enqueues that name none.
    pub company: Option<String>,
    pub all_or_nothing: bool,
}

/// An application in a job's authorization policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobAppDecl {
    pub client_id: String,
    pub enabled: bool,
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
pub(crate) fn resolve_jobs(entries: Vec<JobEntry>, at: &KeyPath) -> Result<Vec<JobDecl>, Problem> {
    let mut jobs: Vec<JobDecl> = Vec::with_capacity(entries.len());
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
    fn resolve(self, at: &KeyPath) -> Result<JobDecl, Problem> {
        not_blank(&self.activity_id, &at.key("activity_id"))?;
        let activity_id = normalize_guid(&self.activity_id).ok_or_else(|| {
            Problem::new(
                &at.key("activity_id"),
                format!("'{}' is not a GUID (e.g. 6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d)", self.activity_id.trim()),
            )
        })?;
        not_blank(&self.project, &at.key("project"))?;
        let kind = match self.kind {
            None => JobKindDecl::File,
            Some(text) => JobKindDecl::parse(&text).ok_or_else(|| {
                Problem::new(&at.key("kind"), format!("unknown kind '{text}' (known: file, package)"))
            })?,
        };
        let mut apps: Vec<JobAppDecl> = Vec::with_capacity(self.apps.len());
        for (i, app) in self.apps.into_iter().enumerate() {
            let at = at.key("apps").index(i).key("client_id");
            let client_id = app.client_id.trim().to_owned();
            identifier(&client_id, 100, &at)?;
            if apps.iter().any(|a| a.client_id.eq_ignore_ascii_case(&client_id)) {
                return Err(Problem::new(&at, format!("app '{client_id}' is listed twice")));
            }
            apps.push(JobAppDecl { client_id, enabled: app.enabled });
        }
        let recurrence = match self.recurrence {
            Some(cron) if cron.trim().is_empty() => None,
            Some(cron) => Some(cron.trim().to_owned()),
            None => None,
        };
        let company =
            self.company.filter(|c| !c.trim().is_empty()).map(|c| company(c.trim(), &at.key("company"))).transpose()?;
        Ok(JobDecl {
            activity_id,
            description: self.description.unwrap_or_default(),
            project: self.project.trim().to_owned(),
            kind,
            apps,
            recurrence,
            enabled: self.enabled,
            company,
            all_or_nothing: self.all_or_nothing,
        })
    }
}

/// A GUID in its one stored form (lower case, hyphenated) from `6d31e09f-…`, `{6D31E09F-…}` or
/// the 32 digits without hyphens; `None` for anything else.
fn normalize_guid(text: &str) -> Option<String> {
    let text = text.trim();
    let text = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or(text);
    let digits: String = match text.len() {
        36 => {
            let hyphens_in_place = text.char_indices().all(|(i, c)| (c == '-') == matches!(i, 8 | 13 | 18 | 23));
            if !hyphens_in_place {
                return None;
            }
            text.chars().filter(|&c| c != '-').collect()
        }
        32 => text.to_owned(),
        _ => return None,
    };
    if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let d = digits.to_ascii_lowercase();
    Some(format!("{}-{}-{}-{}-{}", &d[..8], &d[8..12], &d[12..16], &d[16..20], &d[20..]))
}

#[cfg(test)]
mod tests {
    use super::normalize_guid;

    #[test]
    fn guids_normalize_from_every_spelling() {
        let want = Some("6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d".to_owned());
        for text in [
            "6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d",
            " {6D31E09F-4A4B-4E2B-9C1E-0C5F0A0B1C2D} ",
            "6D31E09F4A4B4E2B9C1E0C5F0A0B1C2D",
        ] {
            assert_eq!(normalize_guid(text), want, "{text}");
        }
        for bad in
            ["", "x", "6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2", "6d31e09f4-a4b-4e2b-9c1e-0c5f0a0b1c2d", "{6d31e09f}"]
        {
            assert_eq!(normalize_guid(bad), None, "{bad}");
        }
    }
}
