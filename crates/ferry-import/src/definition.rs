//! Data projects and recurring jobs: what they hold, how they are checked against the catalog,
//! and activity-id normalization. Pure: the catalog and stylesheet check are passed in.

use ferry_formats::SourceFormat;
use ferry_model::{Catalog, Entity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A data project (definition group): an operation and its entities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub operation: Operation,
    pub entities: Vec<ProjectEntity>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    #[default]
    Import,
    Export,
}

/// One entity of a project: where its data comes from and how columns map to fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectEntity {
    /// The entity by label (`Customers V3`), public name, collection or logical name.
    pub entity: String,
    /// Source format: `CSV`, `CSV-Unicode`, `CSV-Semicolon`, `CSV-Tab`, `CSV-Pipe`, `XML-Element`,
    /// `XML-Attribute`, `JSON`, `EXCEL`.
    #[serde(default = "default_format")]
    pub format: String,
    /// Excel sheet (default: the first).
    #[serde(default)]
    pub sheet: Option<String>,
    /// Source column → entity field. Columns not named here match fields by name, without
    /// regard to case (so D365's upper-case staging names match too).
    #[serde(default)]
    pub mapping: BTreeMap<String, String>,
    /// An XSLT 1.0 stylesheet applied to XML sources before they are read.
    #[serde(default)]
    pub xslt: Option<String>,
    #[serde(default = "one")]
    pub execution_unit: i32,
    #[serde(default = "one")]
    pub level: i32,
    #[serde(default = "one")]
    pub sequence: i32,
}

fn default_format() -> String {
    "CSV".into()
}

fn one() -> i32 {
    1
}

/// A recurring job: the connector endpoint `/api/connector/enqueue/{activity_id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// The activity id: a GUID, stored normalized (lower case, no braces).
    pub activity_id: String,
    #[serde(default)]
    pub description: String,
    pub project: String,
    #[serde(default)]
    pub kind: JobKind,
    /// The authorization policy: the applications allowed to use this job.
    #[serde(default)]
    pub apps: Vec<AuthorizedApp>,
    /// Processing recurrence as a cron expression (`0 */15 * * * *`); `None` processes each
    /// message as soon as it is enqueued.
    #[serde(default)]
    pub recurrence: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The company (legal entity) used when an enqueue names none.
    #[serde(default)]
    pub company: Option<String>,
    /// Any rejected row rolls back the whole message.
    #[serde(default)]
    pub all_or_nothing: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Single files in the format of the project's entity; `entity` names it on enqueue.
    #[default]
    File,
    /// Zip data packages with Manifest.xml.
    Package,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::File => "file",
            JobKind::Package => "package",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizedApp {
    pub client_id: String,
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// Why a definition is invalid; the message names the item and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DefinitionError(pub String);

/// A project entity resolved against the catalog.
#[derive(Clone, Debug)]
pub struct ResolvedEntity {
    pub entity: Arc<Entity>,
    pub format: SourceFormat,
    pub mapping: BTreeMap<String, String>,
    pub xslt: Option<String>,
    pub order: (i32, i32, i32),
}

/// Checks a stylesheet (compiles it without running it).
pub type StylesheetCheck<'a> = &'a dyn Fn(&str) -> Result<(), String>;

impl Project {
    /// Checks the project against the catalog and resolves its entities.
    pub fn resolve(
        &self,
        catalog: &Catalog,
        check_xslt: StylesheetCheck<'_>,
    ) -> Result<Vec<ResolvedEntity>, DefinitionError> {
        let name = self.name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(DefinitionError("a project needs a name of 1 to 100 characters".into()));
        }
        if self.entities.is_empty() {
            return Err(DefinitionError(format!("project '{name}' names no entity; add at least one")));
        }
        let mut resolved: Vec<ResolvedEntity> = Vec::new();
        for (i, e) in self.entities.iter().enumerate() {
            let at = format!("project '{name}', entity {} ('{}')", i + 1, e.entity);
            let entity = catalog.by_any_name(e.entity.trim()).cloned().ok_or_else(|| {
                DefinitionError(format!("{at}: no such entity; use its label, public name or collection name"))
            })?;
            if resolved.iter().any(|r| Arc::ptr_eq(&r.entity, &entity)) {
                return Err(DefinitionError(format!("{at}: the entity appears twice in the project")));
            }
            let format = ferry_formats::package::source_format_from_manifest(&e.format, e.sheet.as_deref())
                .map_err(|err| DefinitionError(format!("{at}: {}", err.message)))?;
            for (column, field) in &e.mapping {
                if field.eq_ignore_ascii_case(ferry_model::COMPANY_FIELD) {
                    continue;
                }
                if entity.field(field).is_none() {
                    return Err(DefinitionError(format!(
                        "{at}: mapping of column '{column}' names field '{field}', which {} does not have",
                        entity.label
                    )));
                }
            }
            if let Some(xsl) = &e.xslt {
                if !matches!(format, SourceFormat::XmlElement | SourceFormat::XmlAttribute) {
                    return Err(DefinitionError(format!("{at}: an XSLT transform needs an XML source format")));
                }
                check_xslt(xsl).map_err(|m| DefinitionError(format!("{at}: invalid XSLT stylesheet: {m}")))?;
            }
            resolved.push(ResolvedEntity {
                entity,
                format,
                mapping: e.mapping.clone(),
                xslt: e.xslt.clone(),
                order: (e.execution_unit, e.level, e.sequence),
            });
        }
        Ok(resolved)
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
        for app in &self.apps {
            if app.client_id.trim().is_empty() {
                return Err(DefinitionError(format!(
                    "job {}: an authorized app has an empty client id",
                    self.activity_id
                )));
            }
        }
        Ok(())
    }

    /// Whether `client_id` may use this job.
    pub fn authorizes(&self, client_id: &str) -> bool {
        self.apps.iter().any(|a| a.enabled && a.client_id.eq_ignore_ascii_case(client_id))
    }

    /// When a message enqueued at `now` may first be processed: now, or the job's next
    /// processing time.
    pub fn next_processing_time(&self, now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_ids_in_every_spelling_normalize_alike() {
        let want = Some("6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d".to_string());
        for text in [
            "6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d",
            "{6D31E09F-4A4B-4E2B-9C1E-0C5F0A0B1C2D}",
            "%7B6D31E09F-4A4B-4E2B-9C1E-0C5F0A0B1C2D%7D",
            "%7b6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d%7d",
        ] {
            assert_eq!(normalize_activity_id(text), want, "{text}");
        }
        assert_eq!(normalize_activity_id("not-a-guid"), None);
    }
}
