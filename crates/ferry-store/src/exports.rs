//! What exports keep besides their messages: the watermarks of incremental exports (per scope
//! and entity, only ever moved forward, written in the transaction that records the export) and
//! the next run time of each recurring export job.

use crate::error::StoreResult;
use crate::messages::text;
use chrono::{DateTime, Utc};
use ferry_domain::{MessageState, Watermark};
use ferry_model::Value;
use ferry_sql::{Batch, ColType, Conn, RowExt};

use crate::literals::Literal;

/// Moves a watermark forward (never back).
pub(crate) fn put_watermark(batch: &mut Batch, w: &Watermark, now: DateTime<Utc>) {
    batch.push(
        "INSERT INTO ferry_export_watermarks (scope, entity, version, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (scope, entity) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at \
         WHERE ferry_export_watermarks.version < excluded.version",
        vec![text(&w.scope), text(&w.entity), Value::Int(w.version), Value::DateTime(now)],
    );
}

/// The watermarks of a scope.
pub(crate) async fn watermarks(conn: &mut Conn, scope: &str) -> StoreResult<Vec<Watermark>> {
    let rows = conn
        .fetch(
            "SELECT entity, version FROM ferry_export_watermarks WHERE scope = $1 ORDER BY entity",
            vec![text(scope)],
            &[ColType::Text, ColType::Int64],
        )
        .await?;
    rows.iter().map(|r| Ok(Watermark { scope: scope.to_owned(), entity: r.text(0)?, version: r.int(1)? })).collect()
}

/// Forgets the watermarks of a scope (the next incremental export is a full one).
pub(crate) async fn reset_watermarks(conn: &mut Conn, scope: &str) -> StoreResult<u64> {
    Ok(conn.execute("DELETE FROM ferry_export_watermarks WHERE scope = $1", vec![text(scope)]).await?)
}

/// When the recurring export job runs next, if it was scheduled.
pub(crate) async fn next_run(conn: &mut Conn, activity_id: &str) -> StoreResult<Option<DateTime<Utc>>> {
    let rows = conn
        .fetch(
            "SELECT next_run_at FROM ferry_export_schedule WHERE activity_id = $1",
            vec![text(activity_id)],
            &[ColType::DateTime],
        )
        .await?;
    rows.first().map(|r| r.datetime(0)).transpose().map_err(Into::into)
}

pub(crate) async fn set_next_run(conn: &mut Conn, activity_id: &str, at: DateTime<Utc>) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO ferry_export_schedule (activity_id, next_run_at) VALUES ($1, $2) \
         ON CONFLICT (activity_id) DO UPDATE SET next_run_at = excluded.next_run_at",
        vec![text(activity_id), Value::DateTime(at)],
    )
    .await?;
    Ok(())
}

/// Whether the job has a run that waits or runs.
pub(crate) async fn has_pending_run(conn: &mut Conn, activity_id: &str) -> StoreResult<bool> {
    let sql = format!(
        "SELECT COUNT(*) FROM ferry_messages WHERE activity_id = $1 AND operation = 'export' AND state IN {}",
        MessageState::in_list(&[MessageState::Enqueued, MessageState::Retrying, MessageState::Processing])
    );
    Ok(conn.fetch(&sql, vec![text(activity_id)], &[ColType::Int64]).await?[0].int(0)? > 0)
}
