//! Small files kept in ferry's database instead of the blob store (`ferry_inline_files`): an
//! enqueued body or a staging file of at most [`INLINE_FILE_MAX`] bytes, written in the same
//! transaction as its message's enqueue or end. Each is named by the blob key it would have, so
//! callers look here first and in the blob store second.

use crate::StoreResult;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_model::Value;
use ferry_sql::{Batch, ColType, Conn, RowExt, Sql};
use std::collections::HashMap;

/// The largest file kept in the database.
pub const INLINE_FILE_MAX: usize = 64 * 1024;

/// One small file to keep: the blob key it stands for, its message, its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlineFile {
    pub key: String,
    pub message_id: String,
    pub content: Vec<u8>,
}

/// How `file`'s content is stored (base64 text).
pub(crate) fn content_value(file: &InlineFile) -> Value {
    Value::String(STANDARD.encode(&file.content))
}

/// Adds the statement that writes (or replaces) `file` to `batch`.
pub(crate) fn put(batch: &mut Batch, file: &InlineFile) {
    batch.push(
        "INSERT INTO ferry_inline_files (key, message_id, content) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET message_id = excluded.message_id, content = excluded.content",
        vec![Value::String(file.key.clone()), Value::String(file.message_id.clone()), content_value(file)],
    );
}

/// The files kept under `keys`, by key.
pub(crate) async fn get_many(conn: &mut Conn, keys: &[String]) -> StoreResult<HashMap<String, Vec<u8>>> {
    let mut sql = Sql::new(conn.dialect());
    sql.push("SELECT key, content FROM ferry_inline_files WHERE key");
    sql.is_one_of(ColType::Text, keys.iter().map(|k| Value::String(k.clone())).collect());
    let rows = conn.query(sql, &[ColType::Text, ColType::Text]).await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in &rows {
        let content = STANDARD.decode(row.text(1)?.as_bytes()).map_err(|e| crate::StoreError::Corrupt {
            column: "ferry_inline_files.content".into(),
            message: e.to_string(),
        })?;
        found.insert(row.text(0)?, content);
    }
    Ok(found)
}

pub(crate) async fn delete(conn: &mut Conn, key: &str) -> StoreResult<bool> {
    Ok(conn.execute("DELETE FROM ferry_inline_files WHERE key = $1", vec![Value::String(key.into())]).await? > 0)
}
