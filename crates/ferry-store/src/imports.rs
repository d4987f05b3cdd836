//! Storage for recurring import: data projects and recurring jobs (their definitions are JSON
//! owned by `ferry-import`), messages as the status API reads them, per-entity results and
//! per-row errors. The queue's state transitions live in `queue.rs`.

use crate::engine::{ColType, Conn, RowExt};
use crate::error::StoreResult;
use chrono::{DateTime, Utc};
use ferry_model::Value;

/// A data project (definition group) as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectRecord {
    pub name: String,
    pub definition: String,
    /// `config` (declared in the configuration file) or `api`.
    pub origin: String,
    pub updated_at: DateTime<Utc>,
}

/// A recurring job as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRecord {
    /// The activity id, normalized (lower case, no braces).
    pub activity_id: String,
    pub project: String,
    pub definition: String,
    pub origin: String,
    pub updated_at: DateTime<Utc>,
}

/// A message: one enqueued file or package and everything known about its processing.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageRecord {
    pub id: String,
    /// Position in enqueue (commit) order.
    pub seq: i64,
    pub execution_id: String,
    pub activity_id: String,
    pub project: String,
    /// `file` or `package`.
    pub kind: String,
    pub entity: Option<String>,
    pub company: Option<String>,
    pub external_id: Option<String>,
    pub content_hash: String,
    pub blob_key: String,
    pub size: i64,
    pub enqueued_by: String,
    pub state: String,
    pub reason: Option<String>,
    pub attempts: i64,
    pub lease_holder: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub not_before: DateTime<Utc>,
    pub enqueued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub counters: RowCounters,
    /// Warnings about the execution as a whole (e.g. ignored columns), one per line.
    pub warnings: Option<String>,
}

/// Row counts of a message or of one entity of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowCounters {
    pub read: i64,
    pub rejected: i64,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
}

/// The result of one entity of a message (a file message has one, a package one per entity).
#[derive(Clone, Debug, PartialEq)]
pub struct MessageEntityRecord {
    pub message_id: String,
    pub position: i64,
    pub entity: String,
    pub company: Option<String>,
    pub staging_status: String,
    pub target_status: String,
    pub rows_read: i64,
    pub rows_staged: i64,
    pub staging_errors: i64,
    pub rows_inserted: i64,
    pub rows_updated: i64,
    pub rows_unchanged: i64,
    pub target_errors: i64,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One rejected row (or file-level problem) of a message.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportErrorRecord {
    /// Assigned by the store; ascending in the order errors were recorded.
    pub id: i64,
    pub message_id: String,
    pub entity: String,
    /// `parse`, `staging` or `target`.
    pub stage: String,
    pub row_number: Option<i64>,
    pub record_key: Option<String>,
    pub field: Option<String>,
    pub code: String,
    pub message: String,
}

pub(crate) fn text(s: &str) -> Value {
    Value::String(s.to_string())
}

pub(crate) fn opt_text(s: &Option<String>) -> Value {
    s.clone().map_or(Value::Null, Value::String)
}

fn opt_time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, Value::DateTime)
}

pub(crate) async fn upsert_project<C: Conn>(conn: &mut C, p: &ProjectRecord) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO ferry_projects (name, definition, origin, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, origin = excluded.origin, \
         updated_at = excluded.updated_at",
        vec![text(&p.name), text(&p.definition), text(&p.origin), Value::DateTime(p.updated_at)],
    )
    .await?;
    Ok(())
}

const PROJECT_TYPES: [ColType; 4] = [ColType::Text, ColType::Text, ColType::Text, ColType::DateTime];

fn decode_project(r: &[Value]) -> StoreResult<ProjectRecord> {
    Ok(ProjectRecord { name: r.text(0)?, definition: r.text(1)?, origin: r.text(2)?, updated_at: r.datetime(3)? })
}

/// Every project, or the one named `name` (without regard to case).
pub(crate) async fn list_projects<C: Conn>(conn: &mut C, name: Option<&str>) -> StoreResult<Vec<ProjectRecord>> {
    let (filter, args) = match name {
        Some(n) => ("WHERE LOWER(name) = LOWER($1)", vec![text(n)]),
        None => ("", vec![]),
    };
    let sql = format!("SELECT name, definition, origin, updated_at FROM ferry_projects {filter} ORDER BY name");
    let rows = conn.fetch(&sql, args, &PROJECT_TYPES).await?;
    rows.iter().map(|r| decode_project(r)).collect()
}

pub(crate) async fn delete_project<C: Conn>(conn: &mut C, name: &str) -> StoreResult<bool> {
    Ok(conn.execute("DELETE FROM ferry_projects WHERE name = $1", vec![text(name)]).await? > 0)
}

pub(crate) async fn upsert_job<C: Conn>(conn: &mut C, j: &JobRecord) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO ferry_jobs (activity_id, project, definition, origin, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (activity_id) DO UPDATE SET project = excluded.project, definition = excluded.definition, \
         origin = excluded.origin, updated_at = excluded.updated_at",
        vec![
            text(&j.activity_id),
            text(&j.project),
            text(&j.definition),
            text(&j.origin),
            Value::DateTime(j.updated_at),
        ],
    )
    .await?;
    Ok(())
}

/// Every job, or the one with `activity_id` (normalized).
pub(crate) async fn list_jobs<C: Conn>(conn: &mut C, activity_id: Option<&str>) -> StoreResult<Vec<JobRecord>> {
    let types = [ColType::Text, ColType::Text, ColType::Text, ColType::Text, ColType::DateTime];
    let (filter, args) = match activity_id {
        Some(id) => ("WHERE activity_id = $1", vec![text(id)]),
        None => ("", vec![]),
    };
    let sql = format!(
        "SELECT activity_id, project, definition, origin, updated_at FROM ferry_jobs {filter} ORDER BY activity_id"
    );
    let rows = conn.fetch(&sql, args, &types).await?;
    rows.iter()
        .map(|r| {
            Ok(JobRecord {
                activity_id: r.text(0)?,
                project: r.text(1)?,
                definition: r.text(2)?,
                origin: r.text(3)?,
                updated_at: r.datetime(4)?,
            })
        })
        .collect()
}

pub(crate) async fn delete_job<C: Conn>(conn: &mut C, activity_id: &str) -> StoreResult<bool> {
    Ok(conn.execute("DELETE FROM ferry_jobs WHERE activity_id = $1", vec![text(activity_id)]).await? > 0)
}

pub(crate) const MESSAGE_COLUMNS: &str = "id, seq, execution_id, activity_id, project, kind, entity, company, \
     external_id, content_hash, blob_key, size, enqueued_by, state, reason, attempts, lease_holder, lease_until, \
     not_before, enqueued_at, started_at, finished_at, heartbeat_at, rows_read, rows_rejected, rows_inserted, \
     rows_updated, rows_unchanged, warnings";

pub(crate) const MESSAGE_TYPES: [ColType; 29] = {
    use ColType::*;
    [
        Text, Int64, Text, Text, Text, Text, Text, Text, Text, Text, Text, Int64, Text, Text, Text, Int64, Text,
        DateTime, DateTime, DateTime, DateTime, DateTime, DateTime, Int64, Int64, Int64, Int64, Int64, Text,
    ]
};

pub(crate) fn decode_message(r: &[Value]) -> StoreResult<MessageRecord> {
    Ok(MessageRecord {
        id: r.text(0)?,
        seq: r.int(1)?,
        execution_id: r.text(2)?,
        activity_id: r.text(3)?,
        project: r.text(4)?,
        kind: r.text(5)?,
        entity: r.opt_text(6)?,
        company: r.opt_text(7)?,
        external_id: r.opt_text(8)?,
        content_hash: r.text(9)?,
        blob_key: r.text(10)?,
        size: r.int(11)?,
        enqueued_by: r.text(12)?,
        state: r.text(13)?,
        reason: r.opt_text(14)?,
        attempts: r.int(15)?,
        lease_holder: r.opt_text(16)?,
        lease_until: r.opt_datetime(17)?,
        not_before: r.datetime(18)?,
        enqueued_at: r.datetime(19)?,
        started_at: r.opt_datetime(20)?,
        finished_at: r.opt_datetime(21)?,
        heartbeat_at: r.opt_datetime(22)?,
        counters: RowCounters {
            read: r.int(23)?,
            rejected: r.int(24)?,
            inserted: r.int(25)?,
            updated: r.int(26)?,
            unchanged: r.int(27)?,
        },
        warnings: r.opt_text(28)?,
    })
}

pub(crate) async fn get_message<C: Conn>(conn: &mut C, id: &str) -> StoreResult<Option<MessageRecord>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM ferry_messages WHERE id = $1 OR execution_id = $1");
    let rows = conn.fetch(&sql, vec![text(id)], &MESSAGE_TYPES).await?;
    rows.first().map(|r| decode_message(r)).transpose()
}

/// Which messages [`list_messages`] answers.
#[derive(Clone, Debug, Default)]
pub struct MessageFilter {
    pub activity_id: Option<String>,
    pub state: Option<String>,
    /// Only messages enqueued before this sequence number (paging backwards from the newest).
    pub before_seq: Option<i64>,
    pub limit: u32,
}

pub(crate) async fn list_messages<C: Conn>(conn: &mut C, f: &MessageFilter) -> StoreResult<Vec<MessageRecord>> {
    let mut sql = format!("SELECT {MESSAGE_COLUMNS} FROM ferry_messages WHERE 1 = 1");
    let mut args = Vec::new();
    if let Some(a) = &f.activity_id {
        args.push(text(a));
        sql.push_str(&format!(" AND activity_id = ${}", args.len()));
    }
    if let Some(s) = &f.state {
        args.push(text(s));
        sql.push_str(&format!(" AND state = ${}", args.len()));
    }
    if let Some(b) = f.before_seq {
        args.push(Value::Int(b));
        sql.push_str(&format!(" AND seq < ${}", args.len()));
    }
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT {}", f.limit.clamp(1, 1000)));
    let rows = conn.fetch(&sql, args, &MESSAGE_TYPES).await?;
    rows.iter().map(|r| decode_message(r)).collect()
}

/// What a waiting message waits for: the message at the head of its lanes, and how many
/// messages are ahead of it in them.
#[derive(Clone, Debug, PartialEq)]
pub struct LanePosition {
    pub head_message_id: String,
    pub head_state: String,
    pub ahead: i64,
}

pub(crate) async fn lane_position<C: Conn>(conn: &mut C, message_id: &str) -> StoreResult<Option<LanePosition>> {
    let rows = conn
        .fetch(
            "SELECT o.message_id, m.state, o.seq FROM ferry_message_lanes a \
             JOIN ferry_message_lanes o ON o.lane = a.lane AND o.seq < a.seq \
             JOIN ferry_messages m ON m.id = o.message_id \
             WHERE a.message_id = $1 ORDER BY o.seq",
            vec![text(message_id)],
            &[ColType::Text, ColType::Text, ColType::Int64],
        )
        .await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let mut ahead: Vec<i64> = rows.iter().map(|r| r.int(2)).collect::<StoreResult<_>>()?;
    ahead.dedup();
    Ok(Some(LanePosition { head_message_id: first.text(0)?, head_state: first.text(1)?, ahead: ahead.len() as i64 }))
}

pub(crate) async fn put_message_entity<C: Conn>(conn: &mut C, e: &MessageEntityRecord) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO ferry_message_entities (message_id, position, entity, company, staging_status, target_status, \
         rows_read, rows_staged, staging_errors, rows_inserted, rows_updated, rows_unchanged, target_errors, \
         started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (message_id, position) DO UPDATE SET entity = excluded.entity, company = excluded.company, \
         staging_status = excluded.staging_status, target_status = excluded.target_status, \
         rows_read = excluded.rows_read, rows_staged = excluded.rows_staged, \
         staging_errors = excluded.staging_errors, rows_inserted = excluded.rows_inserted, \
         rows_updated = excluded.rows_updated, rows_unchanged = excluded.rows_unchanged, \
         target_errors = excluded.target_errors, started_at = excluded.started_at, finished_at = excluded.finished_at",
        vec![
            text(&e.message_id),
            Value::Int(e.position),
            text(&e.entity),
            opt_text(&e.company),
            text(&e.staging_status),
            text(&e.target_status),
            Value::Int(e.rows_read),
            Value::Int(e.rows_staged),
            Value::Int(e.staging_errors),
            Value::Int(e.rows_inserted),
            Value::Int(e.rows_updated),
            Value::Int(e.rows_unchanged),
            Value::Int(e.target_errors),
            opt_time(e.started_at),
            opt_time(e.finished_at),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn message_entities<C: Conn>(conn: &mut C, message_id: &str) -> StoreResult<Vec<MessageEntityRecord>> {
    use ColType::*;
    let types =
        [Text, Int64, Text, Text, Text, Text, Int64, Int64, Int64, Int64, Int64, Int64, Int64, DateTime, DateTime];
    let rows = conn
        .fetch(
            "SELECT message_id, position, entity, company, staging_status, target_status, rows_read, rows_staged, \
             staging_errors, rows_inserted, rows_updated, rows_unchanged, target_errors, started_at, finished_at \
             FROM ferry_message_entities WHERE message_id = $1 ORDER BY position",
            vec![text(message_id)],
            &types,
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(MessageEntityRecord {
                message_id: r.text(0)?,
                position: r.int(1)?,
                entity: r.text(2)?,
                company: r.opt_text(3)?,
                staging_status: r.text(4)?,
                target_status: r.text(5)?,
                rows_read: r.int(6)?,
                rows_staged: r.int(7)?,
                staging_errors: r.int(8)?,
                rows_inserted: r.int(9)?,
                rows_updated: r.int(10)?,
                rows_unchanged: r.int(11)?,
                target_errors: r.int(12)?,
                started_at: r.opt_datetime(13)?,
                finished_at: r.opt_datetime(14)?,
            })
        })
        .collect()
}

/// Parameters per multi-row insert of errors (9 columns each).
const ERRORS_PER_STATEMENT: usize = 1000;

pub(crate) async fn add_import_errors<C: Conn>(conn: &mut C, errors: &[ImportErrorRecord]) -> StoreResult<()> {
    for chunk in errors.chunks(ERRORS_PER_STATEMENT) {
        let mut sql = String::from(
            "INSERT INTO ferry_import_errors (message_id, entity, stage, row_number, record_key, field, code, message) \
             VALUES ",
        );
        let mut args = Vec::with_capacity(chunk.len() * 8);
        for (n, e) in chunk.iter().enumerate() {
            let b = n * 8;
            if n > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8
            ));
            args.extend([
                text(&e.message_id),
                text(&e.entity),
                text(&e.stage),
                e.row_number.map_or(Value::Null, Value::Int),
                opt_text(&e.record_key),
                opt_text(&e.field),
                text(&e.code),
                text(&e.message),
            ]);
        }
        conn.execute(&sql, args).await?;
    }
    Ok(())
}

/// Which errors [`import_errors`] answers: one message's, optionally of one stage and entity,
/// after an error id (for paging).
#[derive(Clone, Debug, Default)]
pub struct ErrorFilter {
    pub stage: Option<String>,
    pub entity: Option<String>,
    pub after_id: Option<i64>,
    pub limit: u32,
}

pub(crate) async fn import_errors<C: Conn>(
    conn: &mut C,
    message_id: &str,
    f: &ErrorFilter,
) -> StoreResult<Vec<ImportErrorRecord>> {
    let mut sql = String::from(
        "SELECT id, message_id, entity, stage, row_number, record_key, field, code, message \
         FROM ferry_import_errors WHERE message_id = $1",
    );
    let mut args = vec![text(message_id)];
    if let Some(s) = &f.stage {
        args.push(text(s));
        sql.push_str(&format!(" AND stage = ${}", args.len()));
    }
    if let Some(e) = &f.entity {
        args.push(text(e));
        sql.push_str(&format!(" AND entity = ${}", args.len()));
    }
    if let Some(a) = f.after_id {
        args.push(Value::Int(a));
        sql.push_str(&format!(" AND id > ${}", args.len()));
    }
    sql.push_str(&format!(" ORDER BY id LIMIT {}", f.limit.clamp(1, 100_000)));
    use ColType::*;
    let rows = conn.fetch(&sql, args, &[Int64, Text, Text, Text, Int64, Text, Text, Text, Text]).await?;
    rows.iter()
        .map(|r| {
            Ok(ImportErrorRecord {
                id: r.int(0)?,
                message_id: r.text(1)?,
                entity: r.text(2)?,
                stage: r.text(3)?,
                row_number: match &r[4] {
                    Value::Null => None,
                    _ => Some(r.int(4)?),
                },
                record_key: r.opt_text(5)?,
                field: r.opt_text(6)?,
                code: r.text(7)?,
                message: r.text(8)?,
            })
        })
        .collect()
}

/// Messages per state and the age of the oldest waiting one (for metrics and `/readyz`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueStats {
    pub by_state: Vec<(String, i64)>,
    pub oldest_waiting_enqueued_at: Option<DateTime<Utc>>,
}

pub(crate) async fn queue_stats<C: Conn>(conn: &mut C) -> StoreResult<QueueStats> {
    let rows = conn
        .fetch(
            "SELECT state, COUNT(*) FROM ferry_messages GROUP BY state ORDER BY state",
            vec![],
            &[ColType::Text, ColType::Int64],
        )
        .await?;
    let by_state = rows.iter().map(|r| Ok((r.text(0)?, r.int(1)?))).collect::<StoreResult<_>>()?;
    let oldest = conn
        .fetch(
            "SELECT MIN(m.enqueued_at) FROM ferry_message_lanes l JOIN ferry_messages m ON m.id = l.message_id",
            vec![],
            &[ColType::DateTime],
        )
        .await?;
    Ok(QueueStats {
        by_state,
        oldest_waiting_enqueued_at: oldest.first().and_then(|r| r.opt_datetime(0).ok().flatten()),
    })
}
