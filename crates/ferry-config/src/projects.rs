//! `[[projects]]`: data projects (definition groups) declared in the config and applied at
//! start-up. The file form ([`ProjectEntry`]) is resolved into `ferry_domain::Project`: defaults
//! filled in, names checked, duplicate names rejected (without regard to case), and an entity's
//! `xslt_file` read into its `xslt` text (relative paths are relative to the config file's
//! directory).
//!
//! Entities, formats, mappings and stylesheets are only checked to be present here: the catalog
//! is not known until start-up, which reports problems naming the project.

use std::collections::BTreeMap;
use std::path::Path;

use ferry_domain::{DEFAULT_FORMAT, Operation, PROJECT_NAME_MAX, Project, ProjectEntity, RefreshMode};
use serde::Deserialize;

use crate::error::{KeyPath, Problem};
use crate::validate::not_blank;

/// `import` or `export`, in any case: the operation as the file spells it.
fn operation(text: &str) -> Option<Operation> {
    match text.trim().to_ascii_lowercase().as_str() {
        "import" => Some(Operation::Import),
        "export" => Some(Operation::Export),
        _ => None,
    }
}

/// `full` or `incremental`, in any case: an export entity's refresh as the file spells it.
pub(crate) fn refresh_mode(text: &str) -> Option<RefreshMode> {
    match text.trim().to_ascii_lowercase().as_str() {
        "full" => Some(RefreshMode::Full),
        "incremental" => Some(RefreshMode::Incremental),
        _ => None,
    }
}

/// A `[[projects]]` entry as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct ProjectEntry {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    operation: Option<String>,
    entities: Vec<ProjectEntityEntry>,
}

/// A `[[projects.entities]]` entry as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct ProjectEntityEntry {
    entity: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    sheet: Option<String>,
    #[serde(default)]
    mapping: BTreeMap<String, String>,
    #[serde(default)]
    xslt: Option<String>,
    #[serde(default)]
    xslt_file: Option<String>,
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    execution_unit: Option<i32>,
    #[serde(default)]
    level: Option<i32>,
    #[serde(default)]
    sequence: Option<i32>,
}

/// Resolve every entry; names must be unique (without regard to case). `base_dir` is where
/// relative `xslt_file` paths start.
pub(crate) fn resolve_projects(
    entries: Vec<ProjectEntry>,
    base_dir: &Path,
    at: &KeyPath,
) -> Result<Vec<Project>, Problem> {
    let mut projects: Vec<Project> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let at = at.index(i);
        let project = entry.resolve(base_dir, &at)?;
        if let Some(first) = projects.iter().position(|p| p.name.eq_ignore_ascii_case(&project.name)) {
            return Err(Problem::new(
                &at.key("name"),
                format!("duplicate project name '{}' (also declared by projects[{first}])", project.name),
            ));
        }
        projects.push(project);
    }
    Ok(projects)
}

impl ProjectEntry {
    fn resolve(self, base_dir: &Path, at: &KeyPath) -> Result<Project, Problem> {
        not_blank(&self.name, &at.key("name"))?;
        let name = self.name.trim().to_owned();
        if name.chars().count() > PROJECT_NAME_MAX {
            return Err(Problem::new(&at.key("name"), format!("must be at most {PROJECT_NAME_MAX} characters long")));
        }
        let operation = match self.operation {
            None => Operation::Import,
            Some(text) => operation(&text).ok_or_else(|| {
                Problem::new(&at.key("operation"), format!("unknown operation '{text}' (known: import, export)"))
            })?,
        };
        if self.entities.is_empty() {
            return Err(Problem::new(&at.key("entities"), "must name at least one entity ([[projects.entities]])"));
        }
        let entities = self
            .entities
            .into_iter()
            .enumerate()
            .map(|(i, entity)| entity.resolve(base_dir, &at.key("entities").index(i)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Project { name, description: self.description.unwrap_or_default(), operation, entities })
    }
}

impl ProjectEntityEntry {
    fn resolve(self, base_dir: &Path, at: &KeyPath) -> Result<ProjectEntity, Problem> {
        not_blank(&self.entity, &at.key("entity"))?;
        let format = match self.format {
            Some(format) => {
                not_blank(&format, &at.key("format"))?;
                format.trim().to_owned()
            }
            None => DEFAULT_FORMAT.to_owned(),
        };
        for (column, field) in &self.mapping {
            not_blank(field, &at.key("mapping").key(column))?;
        }
        let xslt = match (self.xslt, self.xslt_file) {
            (Some(_), Some(_)) => {
                return Err(Problem::new(
                    &at.key("xslt_file"),
                    "set either xslt (the stylesheet) or xslt_file, not both",
                ));
            }
            (Some(text), None) => {
                not_blank(&text, &at.key("xslt"))?;
                Some(text)
            }
            (None, Some(file)) => Some(read_stylesheet(&file, base_dir, &at.key("xslt_file"))?),
            (None, None) => None,
        };
        let mode = match self.mode {
            None => RefreshMode::Full,
            Some(text) => refresh_mode(&text).ok_or_else(|| {
                Problem::new(&at.key("mode"), format!("'{text}' is not a refresh mode; use full or incremental"))
            })?,
        };
        Ok(ProjectEntity {
            entity: self.entity.trim().to_owned(),
            format,
            sheet: self.sheet.filter(|s| !s.trim().is_empty()),
            mapping: self.mapping,
            xslt,
            filter: self.filter.filter(|f| !f.trim().is_empty()),
            mode,
            execution_unit: self.execution_unit.unwrap_or(1),
            level: self.level.unwrap_or(1),
            sequence: self.sequence.unwrap_or(1),
        })
    }
}

/// The text of the stylesheet `file` (relative to `base_dir` unless absolute).
fn read_stylesheet(file: &str, base_dir: &Path, at: &KeyPath) -> Result<String, Problem> {
    not_blank(file, at)?;
    let path = base_dir.join(file.trim());
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Problem::new(at, format!("cannot read the stylesheet {}: {e}", path.display())))?;
    if text.trim().is_empty() {
        return Err(Problem::new(at, format!("the stylesheet {} is empty", path.display())));
    }
    Ok(text)
}
