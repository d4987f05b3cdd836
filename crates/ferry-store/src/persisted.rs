//! The JSON the store keeps definitions in (data projects, recurring jobs, replication
//! profiles). It is a compatibility promise between ferry versions: every document carries its
//! version `v` (documents written before versions existed are version 1), and readers accept
//! every version ever written. Optional fields added later (with a default that means what
//! their absence meant) keep the version. Only this file knows the shape.

use crate::error::{StoreError, StoreResult};
use crate::literals::Literal;
use ferry_domain::{
    AuthorizedApp, ExecutionParameters, Job, JobKind, Operation, ProfileDefinition, Project, ProjectEntity,
    RefreshMode, TargetKind,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const VERSION: u32 = 1;

fn version_1() -> u32 {
    1
}

fn check_version(v: u32, what: &str) -> StoreResult<()> {
    if v == VERSION {
        Ok(())
    } else {
        Err(StoreError::corrupt(what, format!("written by a newer ferry (version {v}); upgrade ferry to read it")))
    }
}

fn parse<'a, T: Deserialize<'a>>(text: &'a str, what: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(what, e))
}

fn literal<T: Literal>(text: &str) -> StoreResult<T> {
    T::from_literal(text)
}

#[derive(Serialize, Deserialize)]
struct ProjectDoc {
    #[serde(default = "version_1")]
    v: u32,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "import")]
    operation: String,
    entities: Vec<ProjectEntityDoc>,
}

fn import() -> String {
    Operation::Import.literal().to_owned()
}

fn full() -> String {
    RefreshMode::Full.literal().to_owned()
}

fn is_full(mode: &str) -> bool {
    mode == RefreshMode::Full.literal()
}

#[derive(Serialize, Deserialize)]
struct ProjectEntityDoc {
    entity: String,
    format: String,
    #[serde(default)]
    sheet: Option<String>,
    #[serde(default)]
    mapping: BTreeMap<String, String>,
    #[serde(default)]
    xslt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
    #[serde(default = "full", skip_serializing_if = "is_full")]
    mode: String,
    execution_unit: i32,
    level: i32,
    sequence: i32,
}

pub(crate) fn project_json(p: &Project) -> String {
    let doc = ProjectDoc {
        v: VERSION,
        name: p.name.clone(),
        description: p.description.clone(),
        operation: p.operation.literal().to_owned(),
        entities: p
            .entities
            .iter()
            .map(|e| ProjectEntityDoc {
                entity: e.entity.clone(),
                format: e.format.clone(),
                sheet: e.sheet.clone(),
                mapping: e.mapping.clone(),
                xslt: e.xslt.clone(),
                filter: e.filter.clone(),
                mode: e.mode.literal().to_owned(),
                execution_unit: e.execution_unit,
                level: e.level,
                sequence: e.sequence,
            })
            .collect(),
    };
    serde_json::to_string(&doc).expect("a project serializes")
}

pub(crate) fn project_from_json(text: &str) -> StoreResult<Project> {
    let doc: ProjectDoc = parse(text, "ferry_projects.definition")?;
    check_version(doc.v, "ferry_projects.definition")?;
    Ok(Project {
        name: doc.name,
        description: doc.description,
        operation: literal(&doc.operation)?,
        entities: doc
            .entities
            .into_iter()
            .map(|e| {
                Ok(ProjectEntity {
                    entity: e.entity,
                    format: e.format,
                    sheet: e.sheet,
                    mapping: e.mapping,
                    xslt: e.xslt,
                    filter: e.filter,
                    mode: literal(&e.mode)?,
                    execution_unit: e.execution_unit,
                    level: e.level,
                    sequence: e.sequence,
                })
            })
            .collect::<StoreResult<_>>()?,
    })
}

#[derive(Serialize, Deserialize)]
struct JobDoc {
    #[serde(default = "version_1")]
    v: u32,
    activity_id: String,
    #[serde(default)]
    description: String,
    project: String,
    kind: String,
    #[serde(default)]
    apps: Vec<AppDoc>,
    #[serde(default)]
    recurrence: Option<String>,
    enabled: bool,
    #[serde(default)]
    company: Option<String>,
    #[serde(default)]
    all_or_nothing: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    skip_empty: bool,
}

#[derive(Serialize, Deserialize)]
struct AppDoc {
    client_id: String,
    enabled: bool,
}

pub(crate) fn job_json(j: &Job) -> String {
    let doc = JobDoc {
        v: VERSION,
        activity_id: j.activity_id.clone(),
        description: j.description.clone(),
        project: j.project.clone(),
        kind: j.kind.literal().to_owned(),
        apps: j.apps.iter().map(|a| AppDoc { client_id: a.client_id.clone(), enabled: a.enabled }).collect(),
        recurrence: j.recurrence.clone(),
        enabled: j.enabled,
        company: j.company.clone(),
        all_or_nothing: j.all_or_nothing,
        skip_empty: j.skip_empty,
    };
    serde_json::to_string(&doc).expect("a job serializes")
}

pub(crate) fn job_from_json(text: &str) -> StoreResult<Job> {
    let doc: JobDoc = parse(text, "ferry_jobs.definition")?;
    check_version(doc.v, "ferry_jobs.definition")?;
    Ok(Job {
        activity_id: doc.activity_id,
        description: doc.description,
        project: doc.project,
        kind: literal::<JobKind>(&doc.kind)?,
        apps: doc.apps.into_iter().map(|a| AuthorizedApp { client_id: a.client_id, enabled: a.enabled }).collect(),
        recurrence: doc.recurrence,
        enabled: doc.enabled,
        company: doc.company,
        all_or_nothing: doc.all_or_nothing,
        skip_empty: doc.skip_empty,
    })
}

#[derive(Serialize, Deserialize)]
struct ProfileDoc {
    #[serde(default = "version_1")]
    v: u32,
    name: String,
    #[serde(default)]
    description: String,
    target_kind: String,
    #[serde(default)]
    schema_name: Option<String>,
    #[serde(default)]
    table_prefix: String,
    retry_count: u32,
    retry_interval_secs: u32,
    #[serde(default)]
    write_delete_log: bool,
    entities: Vec<String>,
    #[serde(default)]
    relationships: Vec<String>,
}

pub(crate) fn profile_json(d: &ProfileDefinition) -> String {
    let doc = ProfileDoc {
        v: VERSION,
        name: d.name.clone(),
        description: d.description.clone(),
        target_kind: d.target_kind.literal().to_owned(),
        schema_name: d.schema_name.clone(),
        table_prefix: d.table_prefix.clone(),
        retry_count: d.retry_count,
        retry_interval_secs: d.retry_interval_secs,
        write_delete_log: d.write_delete_log,
        entities: d.entities.clone(),
        relationships: d.relationships.clone(),
    };
    serde_json::to_string(&doc).expect("a profile serializes")
}

pub(crate) fn profile_from_json(text: &str) -> StoreResult<ProfileDefinition> {
    let doc: ProfileDoc = parse(text, "ferry_profiles.definition")?;
    check_version(doc.v, "ferry_profiles.definition")?;
    Ok(ProfileDefinition {
        name: doc.name,
        description: doc.description,
        target_kind: literal::<TargetKind>(&doc.target_kind)?,
        schema_name: doc.schema_name,
        table_prefix: doc.table_prefix,
        retry_count: doc.retry_count,
        retry_interval_secs: doc.retry_interval_secs,
        write_delete_log: doc.write_delete_log,
        entities: doc.entities,
        relationships: doc.relationships,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Documents as earlier ferry versions wrote them still read.
    #[test]
    fn reads_documents_written_before_versions() {
        let project = project_from_json(
            r#"{"name":"P","description":"","operation":"import","entities":[{"entity":"CustomersV3","format":"CSV",
            "sheet":null,"mapping":{"CUSTNO":"CustomerAccount"},"xslt":null,"execution_unit":1,"level":1,"sequence":2}]}"#,
        )
        .unwrap();
        assert_eq!(project.entities[0].mapping["CUSTNO"], "CustomerAccount");
        assert_eq!(project.entities[0].sequence, 2);
        let job = job_from_json(
            r#"{"activity_id":"6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d","description":"","project":"P","kind":"package",
            "apps":[{"client_id":"erp","enabled":true}],"recurrence":null,"enabled":true,"company":"usmf","all_or_nothing":false}"#,
        )
        .unwrap();
        assert_eq!((job.kind, job.company.as_deref()), (JobKind::Package, Some("usmf")));
        let profile = profile_from_json(
            r#"{"v":1,"name":"R","description":"","target_kind":"mysql","schema_name":null,"table_prefix":"rep",
            "retry_count":12,"retry_interval_secs":5,"write_delete_log":true,"entities":["customerv3"],"relationships":[]}"#,
        )
        .unwrap();
        assert_eq!(profile.target_kind, TargetKind::MySql);
    }

    #[test]
    fn round_trips_and_refuses_newer_versions() {
        let mut p = Project {
            name: "P".into(),
            description: "d".into(),
            operation: Operation::Export,
            entities: vec![ProjectEntity::new("CustomersV3")],
        };
        p.entities[0].xslt = Some("<x/>".into());
        assert_eq!(project_from_json(&project_json(&p)).unwrap(), p);
        let j = Job::new("6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d", "P");
        assert_eq!(job_from_json(&job_json(&j)).unwrap(), j);
        let d = ProfileDefinition::new("R", TargetKind::Sqlite, vec!["account".into()]);
        assert_eq!(profile_from_json(&profile_json(&d)).unwrap(), d);
        let newer = project_json(&p).replace("\"v\":1", "\"v\":2");
        assert!(project_from_json(&newer).unwrap_err().to_string().contains("newer ferry"));
    }
}

#[derive(Serialize, Deserialize)]
struct ParametersDoc {
    #[serde(default = "version_1")]
    v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    preview_rows: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    delta: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    entities: Vec<String>,
}

/// The parameters of an execution, `None` when they are all defaults (the column stays null).
pub(crate) fn parameters_json(p: &ExecutionParameters) -> Option<String> {
    if p.is_default() {
        return None;
    }
    let doc = ParametersDoc { v: VERSION, preview_rows: p.preview_rows, delta: p.delta, entities: p.entities.clone() };
    Some(serde_json::to_string(&doc).expect("parameters serialize"))
}

pub(crate) fn parameters_from_json(text: Option<&str>) -> StoreResult<ExecutionParameters> {
    let Some(text) = text else { return Ok(ExecutionParameters::default()) };
    let doc: ParametersDoc = parse(text, "ferry_messages.parameters")?;
    check_version(doc.v, "ferry_messages.parameters")?;
    Ok(ExecutionParameters { preview_rows: doc.preview_rows, delta: doc.delta, entities: doc.entities })
}
