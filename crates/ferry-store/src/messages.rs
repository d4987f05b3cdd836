//! Messages as status questions read them, per-entity results and per-row errors, and the
//! queue's figures. The queue's state transitions live in `queue.rs`.

use crate::error::StoreResult;
use crate::literals::{Literal, LiteralColumn};
use ferry_domain::{
    Delivery, DeliveryState, EntityResult, ErrorFilter, ErrorRecord, LanePosition, Message, MessageFilter,
    MessageState, QueueStats, RowCounters,
};
use ferry_model::Value;
use ferry_sql::{Batch, ColType, Conn, RowExt};

pub(crate) fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

pub(crate) fn opt_text(s: &Option<String>) -> Value {
    s.clone().map_or(Value::Null, Value::String)
}

fn opt_time(t: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    t.map_or(Value::Null, Value::DateTime)
}

pub(crate) const MESSAGE_COLUMNS: &str = "id, seq, execution_id, activity_id, project, kind, entity, company, \
     external_id, content_hash, blob_key, size, enqueued_by, state, reason, attempts, lease_holder, lease_until, \
     not_before, enqueued_at, started_at, finished_at, heartbeat_at, rows_read, rows_rejected, rows_inserted, \
     rows_updated, rows_unchanged, warnings, operation, execute, rerun_of, delivery_state, pop_receipt, visible_at, \
     last_dequeued_at, dequeue_count, downloaded_at, acked_at, acked_by, parameters";

pub(crate) const MESSAGE_TYPES: [ColType; 41] = {
    use ColType::*;
    [
        Text, Int64, Text, Text, Text, Text, Text, Text, Text, Text, Text, Int64, Text, Text, Text, Int64, Text,
        DateTime, DateTime, DateTime, DateTime, DateTime, DateTime, Int64, Int64, Int64, Int64, Int64, Text, Text,
        Bool, Text, Text, Text, DateTime, DateTime, Int64, DateTime, DateTime, Text, Text,
    ]
};

pub(crate) fn decode_message(r: &[Value]) -> StoreResult<Message> {
    let delivery = match r.opt_text(32)? {
        None => None,
        Some(state) => Some(Delivery {
            state: DeliveryState::from_literal(&state)?,
            pop_receipt: r.opt_text(33)?,
            visible_at: r.opt_datetime(34)?,
            last_dequeued_at: r.opt_datetime(35)?,
            dequeue_count: r.int(36)?,
            downloaded_at: r.opt_datetime(37)?,
            acked_at: r.opt_datetime(38)?,
            acked_by: r.opt_text(39)?,
        }),
    };
    Ok(Message {
        id: r.text(0)?,
        seq: r.int(1)?,
        execution_id: r.text(2)?,
        activity_id: r.text(3)?,
        project: r.text(4)?,
        operation: r.literal(29)?,
        kind: r.literal(5)?,
        entity: r.opt_text(6)?,
        company: r.opt_text(7)?,
        external_id: r.opt_text(8)?,
        content_hash: r.text(9)?,
        blob_key: r.text(10)?,
        size: r.int(11)?,
        enqueued_by: r.text(12)?,
        execute: r.boolean(30)?,
        rerun_of: r.opt_text(31)?,
        state: r.literal(13)?,
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
        delivery,
        parameters: crate::persisted::parameters_from_json(r.opt_text(40)?.as_deref())?,
    })
}

/// A message by its id or its execution id.
pub(crate) async fn get_message(conn: &mut Conn, id: &str) -> StoreResult<Option<Message>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM ferry_messages WHERE id = $1 OR execution_id = $1");
    let rows = conn.fetch(&sql, vec![text(id)], &MESSAGE_TYPES).await?;
    rows.first().map(|r| decode_message(r)).transpose()
}

pub(crate) async fn list_messages(conn: &mut Conn, f: &MessageFilter) -> StoreResult<Vec<Message>> {
    let mut sql = format!("SELECT {MESSAGE_COLUMNS} FROM ferry_messages WHERE 1 = 1");
    let mut args = Vec::new();
    if let Some(a) = &f.activity_id {
        args.push(text(a));
        sql.push_str(&format!(" AND activity_id = ${}", args.len()));
    }
    if let Some(o) = f.operation {
        args.push(o.value());
        sql.push_str(&format!(" AND operation = ${}", args.len()));
    }
    if let Some(s) = f.state {
        args.push(s.value());
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

pub(crate) async fn lane_position(conn: &mut Conn, message_id: &str) -> StoreResult<Option<LanePosition>> {
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
    let mut ahead: Vec<i64> = rows.iter().map(|r| r.int(2)).collect::<Result<_, _>>()?;
    ahead.dedup();
    Ok(Some(LanePosition { head_message_id: first.text(0)?, head_state: first.literal(1)?, ahead: ahead.len() as i64 }))
}

pub(crate) fn put_entity_result(batch: &mut Batch, e: &EntityResult) {
    batch.push(
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
            e.staging.value(),
            e.target.value(),
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
    );
}

pub(crate) async fn entity_results(conn: &mut Conn, message_id: &str) -> StoreResult<Vec<EntityResult>> {
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
            Ok(EntityResult {
                message_id: r.text(0)?,
                position: r.int(1)?,
                entity: r.text(2)?,
                company: r.opt_text(3)?,
                staging: r.literal(4)?,
                target: r.literal(5)?,
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

/// Errors per multi-row insert (8 parameters each).
const ERRORS_PER_STATEMENT: usize = 1000;

pub(crate) fn add_errors(batch: &mut Batch, errors: &[ErrorRecord]) {
    for chunk in errors.chunks(ERRORS_PER_STATEMENT) {
        let mut sql = String::from(
            "INSERT INTO ferry_import_errors (message_id, entity, stage, row_number, record_key, field, code, message) \
             VALUES ",
        );
        let mut args = Vec::with_capacity(chunk.len() * 8);
        for (n, e) in chunk.iter().enumerate() {
            if n > 0 {
                sql.push_str(", ");
            }
            let placeholders: Vec<String> = (1..=8).map(|k| format!("${}", n * 8 + k)).collect();
            sql.push_str(&format!("({})", placeholders.join(", ")));
            args.extend([
                text(&e.message_id),
                text(&e.entity),
                e.stage.value(),
                e.row.map_or(Value::Null, Value::Int),
                opt_text(&e.key),
                opt_text(&e.field),
                text(&e.code),
                text(&e.message),
            ]);
        }
        batch.push(sql, args);
    }
}

pub(crate) async fn errors(conn: &mut Conn, message_id: &str, f: &ErrorFilter) -> StoreResult<Vec<ErrorRecord>> {
    let mut sql = String::from(
        "SELECT id, message_id, entity, stage, row_number, record_key, field, code, message \
         FROM ferry_import_errors WHERE message_id = $1",
    );
    let mut args = vec![text(message_id)];
    if let Some(s) = f.stage {
        args.push(s.value());
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
            Ok(ErrorRecord {
                id: r.int(0)?,
                message_id: r.text(1)?,
                entity: r.text(2)?,
                stage: r.literal(3)?,
                row: r.opt_int(4)?,
                key: r.opt_text(5)?,
                field: r.opt_text(6)?,
                code: r.text(7)?,
                message: r.text(8)?,
            })
        })
        .collect()
}

pub(crate) async fn queue_stats(conn: &mut Conn) -> StoreResult<QueueStats> {
    let rows = conn
        .fetch(
            "SELECT state, COUNT(*) FROM ferry_messages GROUP BY state ORDER BY state",
            (),
            &[ColType::Text, ColType::Int64],
        )
        .await?;
    let by_state = rows.iter().map(|r| Ok((r.literal::<MessageState>(0)?, r.int(1)?))).collect::<StoreResult<_>>()?;
    let oldest = conn
        .fetch(
            "SELECT MIN(m.enqueued_at) FROM ferry_message_lanes l JOIN ferry_messages m ON m.id = l.message_id",
            (),
            &[ColType::DateTime],
        )
        .await?;
    Ok(QueueStats {
        by_state,
        oldest_waiting_enqueued_at: oldest.first().and_then(|r| r.opt_datetime(0).ok().flatten()),
    })
}
