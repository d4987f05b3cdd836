//! Data projects and recurring jobs, kept as versioned JSON documents (`persisted.rs`) with
//! their origin and the time they were last written.

use crate::error::StoreResult;
use crate::literals::{Literal, LiteralColumn};
use crate::persisted;
use chrono::{DateTime, Utc};
use ferry_domain::{Job, Origin, Project};
use ferry_model::Value;
use ferry_sql::{ColType, Conn, RowExt, Sql};
use std::collections::HashMap;

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

pub(crate) async fn put_project(conn: &mut Conn, p: &Project, origin: Origin, now: DateTime<Utc>) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO ferry_projects (name, definition, origin, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, origin = excluded.origin, \
         updated_at = excluded.updated_at",
        vec![text(&p.name), text(&persisted::project_json(p)), origin.value(), Value::DateTime(now)],
    )
    .await?;
    Ok(())
}

/// Every project, or the one named `name` (without regard to case).
pub(crate) async fn projects(conn: &mut Conn, name: Option<&str>) -> StoreResult<Vec<(Project, Origin)>> {
    let (filter, args) = match name {
        Some(n) => ("WHERE LOWER(name) = LOWER($1)", vec![text(n)]),
        None => ("", Vec::new()),
    };
    let sql = format!("SELECT definition, origin FROM ferry_projects {filter} ORDER BY name");
    let rows = conn.fetch(&sql, args, &[ColType::Text, ColType::Text]).await?;
    rows.iter().map(|r| Ok((persisted::project_from_json(&r.text(0)?)?, r.literal(1)?))).collect()
}

pub(crate) async fn delete_project(conn: &mut Conn, name: &str) -> StoreResult<bool> {
    Ok(conn.execute("DELETE FROM ferry_projects WHERE name = $1", vec![text(name)]).await? > 0)
}

/// Writes a job; its activity id is its key (normalised by the caller).
pub(crate) async fn put_job(conn: &mut Conn, j: &Job, origin: Origin, now: DateTime<Utc>) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO ferry_jobs (activity_id, project, definition, origin, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (activity_id) DO UPDATE SET project = excluded.project, definition = excluded.definition, \
         origin = excluded.origin, updated_at = excluded.updated_at",
        vec![
            text(&j.activity_id),
            text(&j.project),
            text(&persisted::job_json(j)),
            origin.value(),
            Value::DateTime(now),
        ],
    )
    .await?;
    Ok(())
}

/// Every job, or the one with `activity_id` (normalised).
pub(crate) async fn jobs(conn: &mut Conn, activity_id: Option<&str>) -> StoreResult<Vec<(Job, Origin)>> {
    let (filter, args) = match activity_id {
        Some(id) => ("WHERE activity_id = $1", vec![text(id)]),
        None => ("", Vec::new()),
    };
    let sql = format!("SELECT definition, origin FROM ferry_jobs {filter} ORDER BY activity_id");
    let rows = conn.fetch(&sql, args, &[ColType::Text, ColType::Text]).await?;
    rows.iter().map(|r| Ok((persisted::job_from_json(&r.text(0)?)?, r.literal(1)?))).collect()
}

/// The jobs with `activity_ids` (normalised), each with its project — `None` when no project
/// has that name (without regard to case) — in one read: what an enqueue and the runs of a claim
/// start from. Jobs that do not exist are missing from the answer.
pub(crate) async fn jobs_with_projects(
    conn: &mut Conn,
    activity_ids: &[String],
) -> StoreResult<HashMap<String, (Job, Option<Project>)>> {
    let mut sql = Sql::new(conn.dialect());
    sql.push(
        "SELECT j.activity_id, j.definition, p.definition FROM ferry_jobs j \
         LEFT JOIN ferry_projects p ON LOWER(p.name) = LOWER(j.project) WHERE j.activity_id",
    );
    sql.is_one_of(ColType::Text, activity_ids.iter().map(|id| text(id)).collect());
    sql.push(" ORDER BY j.activity_id, p.name");
    let rows = conn.query(sql, &[ColType::Text, ColType::Text, ColType::Text]).await?;
    let mut found = HashMap::new();
    // Of projects whose names differ only in case, the last by name (as `projects` answers).
    for row in &rows {
        let job = persisted::job_from_json(&row.text(1)?)?;
        let project = match row.opt_text(2)? {
            Some(json) => Some(persisted::project_from_json(&json)?),
            None => None,
        };
        found.insert(row.text(0)?, (job, project));
    }
    Ok(found)
}

pub(crate) async fn delete_job(conn: &mut Conn, activity_id: &str) -> StoreResult<bool> {
    Ok(conn.execute("DELETE FROM ferry_jobs WHERE activity_id = $1", vec![text(activity_id)]).await? > 0)
}
