//! Data projects and recurring jobs as ferry's admin REST API (`/api/admin/projects`,
//! `/api/admin/jobs`) and `ferry projects|jobs` read and write them: the configuration file's
//! names (snake_case), `origin` added on the way out.

use super::states::origin_name;
use ferry_domain::{
    AuthorizedApp, DEFAULT_FORMAT, Job, JobKind, Operation, Origin, Project, ProjectEntity, RefreshMode,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectBody {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    operation: OperationName,
    entities: Vec<EntityBody>,
}

#[derive(Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum OperationName {
    #[default]
    Import,
    Export,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntityBody {
    entity: String,
    #[serde(default = "default_format")]
    format: String,
    #[serde(default)]
    sheet: Option<String>,
    #[serde(default)]
    mapping: BTreeMap<String, String>,
    #[serde(default)]
    xslt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
    #[serde(default)]
    mode: ModeName,
    #[serde(default = "one")]
    execution_unit: i32,
    #[serde(default = "one")]
    level: i32,
    #[serde(default = "one")]
    sequence: i32,
}

fn default_format() -> String {
    DEFAULT_FORMAT.into()
}

fn one() -> i32 {
    1
}

fn yes() -> bool {
    true
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobBody {
    activity_id: String,
    #[serde(default)]
    description: String,
    project: String,
    #[serde(default)]
    kind: KindName,
    #[serde(default)]
    apps: Vec<AppBody>,
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

#[derive(Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ModeName {
    #[default]
    Full,
    Incremental,
}

#[derive(Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum KindName {
    #[default]
    File,
    Package,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppBody {
    client_id: String,
    #[serde(default = "yes")]
    enabled: bool,
}

fn with_origin(body: impl Serialize, origin: Origin) -> Value {
    let mut value = serde_json::to_value(body).expect("a definition serializes");
    if let Value::Object(map) = &mut value {
        map.insert("origin".into(), Value::String(origin_name(origin).into()));
    }
    value
}

/// A project as the API shows it.
pub fn project_json(p: &Project, origin: Origin) -> Value {
    let body = ProjectBody {
        name: p.name.clone(),
        description: p.description.clone(),
        operation: match p.operation {
            Operation::Import => OperationName::Import,
            Operation::Export => OperationName::Export,
        },
        entities: p
            .entities
            .iter()
            .map(|e| EntityBody {
                entity: e.entity.clone(),
                format: e.format.clone(),
                sheet: e.sheet.clone(),
                mapping: e.mapping.clone(),
                xslt: e.xslt.clone(),
                filter: e.filter.clone(),
                mode: match e.mode {
                    RefreshMode::Full => ModeName::Full,
                    RefreshMode::Incremental => ModeName::Incremental,
                },
                execution_unit: e.execution_unit,
                level: e.level,
                sequence: e.sequence,
            })
            .collect(),
    };
    with_origin(body, origin)
}

/// A project from a request body (an `origin` in it is ignored: it is output, not input). The
/// error says which key is wrong and why.
pub fn project_from_json(mut map: Map<String, Value>) -> Result<Project, String> {
    map.remove("origin");
    let body: ProjectBody = serde_json::from_value(Value::Object(map)).map_err(|e| e.to_string())?;
    Ok(Project {
        name: body.name,
        description: body.description,
        operation: match body.operation {
            OperationName::Import => Operation::Import,
            OperationName::Export => Operation::Export,
        },
        entities: body
            .entities
            .into_iter()
            .map(|e| ProjectEntity {
                entity: e.entity,
                format: e.format,
                sheet: e.sheet,
                mapping: e.mapping,
                xslt: e.xslt,
                filter: e.filter.filter(|f| !f.trim().is_empty()),
                mode: match e.mode {
                    ModeName::Full => RefreshMode::Full,
                    ModeName::Incremental => RefreshMode::Incremental,
                },
                execution_unit: e.execution_unit,
                level: e.level,
                sequence: e.sequence,
            })
            .collect(),
    })
}

/// A recurring job as the API shows it.
pub fn job_json(j: &Job, origin: Origin) -> Value {
    let body = JobBody {
        activity_id: j.activity_id.clone(),
        description: j.description.clone(),
        project: j.project.clone(),
        kind: match j.kind {
            JobKind::File => KindName::File,
            JobKind::Package => KindName::Package,
        },
        apps: j.apps.iter().map(|a| AppBody { client_id: a.client_id.clone(), enabled: a.enabled }).collect(),
        recurrence: j.recurrence.clone(),
        enabled: j.enabled,
        company: j.company.clone(),
        all_or_nothing: j.all_or_nothing,
        skip_empty: j.skip_empty,
    };
    with_origin(body, origin)
}

/// A recurring job from a request body (an `origin` in it is ignored).
pub fn job_from_json(mut map: Map<String, Value>) -> Result<Job, String> {
    map.remove("origin");
    let body: JobBody = serde_json::from_value(Value::Object(map)).map_err(|e| e.to_string())?;
    Ok(Job {
        activity_id: body.activity_id,
        description: body.description,
        project: body.project,
        kind: match body.kind {
            KindName::File => JobKind::File,
            KindName::Package => JobKind::Package,
        },
        apps: body.apps.into_iter().map(|a| AuthorizedApp { client_id: a.client_id, enabled: a.enabled }).collect(),
        recurrence: body.recurrence,
        enabled: body.enabled,
        company: body.company,
        all_or_nothing: body.all_or_nothing,
        skip_empty: body.skip_empty,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn definitions_round_trip_with_their_defaults() {
        let Value::Object(map) = json!({ "name": "P", "entities": [{ "entity": "CustomersV3" }], "origin": "config" })
        else {
            unreachable!()
        };
        let project = project_from_json(map).unwrap();
        assert_eq!(project.entities[0], ProjectEntity::new("CustomersV3"));
        let shown = project_json(&project, Origin::Api);
        assert_eq!(shown["operation"], "import");
        assert_eq!(shown["origin"], "api");
        let Value::Object(map) = json!({ "activity_id": "x", "project": "P", "kind": "package" }) else {
            unreachable!()
        };
        let job = job_from_json(map).unwrap();
        assert_eq!((job.kind, job.enabled), (JobKind::Package, true));
        assert_eq!(job_json(&job, Origin::Config)["kind"], "package");
        let Value::Object(map) = json!({ "name": "P", "entities": [{ "entity": "X", "fromat": "CSV" }] }) else {
            unreachable!()
        };
        assert!(project_from_json(map).unwrap_err().contains("unknown field `fromat`"));
    }
}
