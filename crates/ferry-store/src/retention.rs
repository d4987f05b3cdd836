//! Removing what is old: finished messages (imports and exports) with their results and errors,
//! and whether a blob is still named by a message (a re-run shares its original's file).

use crate::error::StoreResult;
use crate::literals::Literal;
use crate::messages::{MESSAGE_COLUMNS, MESSAGE_TYPES, decode_message, text};
use chrono::{DateTime, Utc};
use ferry_domain::{Message, MessageState};
use ferry_model::Value;
use ferry_sql::{ColType, Conn, RowExt};

fn finished() -> String {
    MessageState::in_list(&[
        MessageState::Processed,
        MessageState::ProcessedWithErrors,
        MessageState::PreProcessingError,
        MessageState::Canceled,
    ])
}

/// Up to `limit` messages that ended before `before`, oldest first.
pub(crate) async fn finished_before(conn: &mut Conn, before: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Message>> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM ferry_messages WHERE state IN {} AND finished_at < $1 \
         ORDER BY finished_at LIMIT {}",
        finished(),
        limit.clamp(1, 10_000)
    );
    let rows = conn.fetch(&sql, vec![Value::DateTime(before)], &MESSAGE_TYPES).await?;
    rows.iter().map(|r| decode_message(r)).collect()
}

/// Deletes a finished message with its results and errors; false when there is no such message
/// or it has not finished.
pub(crate) async fn delete_finished(conn: &mut Conn, id: &str) -> StoreResult<bool> {
    let n = conn
        .execute(&format!("DELETE FROM ferry_messages WHERE id = $1 AND state IN {}", finished()), vec![text(id)])
        .await?;
    if n == 0 {
        return Ok(false);
    }
    conn.execute("DELETE FROM ferry_import_errors WHERE message_id = $1", vec![text(id)]).await?;
    conn.execute("DELETE FROM ferry_message_entities WHERE message_id = $1", vec![text(id)]).await?;
    conn.execute("DELETE FROM ferry_message_lanes WHERE message_id = $1", vec![text(id)]).await?;
    Ok(true)
}

/// Whether any message names the blob `key`.
pub(crate) async fn blob_in_use(conn: &mut Conn, key: &str) -> StoreResult<bool> {
    let rows = conn
        .fetch("SELECT COUNT(*) FROM ferry_messages WHERE blob_key = $1", vec![text(key)], &[ColType::Int64])
        .await?;
    Ok(rows[0].int(0)? > 0)
}
