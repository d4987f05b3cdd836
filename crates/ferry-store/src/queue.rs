//! The import queue's state transitions, all in SQL so that several nodes on one PostgreSQL
//! database share it safely.
//!
//! A message holds *lanes* (an entity, or an entity and company) from enqueue until it reaches a
//! final state. Within a lane, sequence numbers follow commit order: on SQLite (one writer) an
//! enqueue bumps the single row of `ferry_queue_clock`; on PostgreSQL it locks each of its lanes
//! (an advisory lock until it commits, so only enqueues into the same lane wait for each other)
//! and then takes the next number of the sequence `ferry_queue_seq`. A message may run only when it heads every lane it holds (no message
//! with a smaller seq in any of them) — so one message per lane runs at a time, lanes are
//! served in enqueue order, and a package holding several lanes waits until it heads all of
//! them (the globally oldest waiting message always heads all its lanes, so nothing deadlocks).
//! A claim is a lease: a conditional update that only one claimer can win; the holder extends it
//! with heartbeats, and every write of the import is fenced by the holder's name.

use crate::error::{StoreError, StoreResult};
use crate::imports_facade::Enqueued;
use crate::inline_files::InlineFile;
use crate::literals::{Literal, LiteralColumn};
use crate::messages::{MESSAGE_COLUMNS, MESSAGE_TYPES, decode_message, opt_text, text};
use chrono::{DateTime, Utc};
use ferry_domain::{
    Clock, DeliveryState, Lane, Message, MessageOutcome, MessageState, NewMessage, Operation, RowCounters,
};
use ferry_model::Value;
use ferry_sql::{Arg, Args, Batch, ColType, Conn, Dialect, RowExt, Sql};

/// The states of a message that still holds its lanes.
fn waiting() -> String {
    MessageState::in_list(&[MessageState::Enqueued, MessageState::Retrying, MessageState::Processing])
}

fn processing() -> &'static str {
    MessageState::Processing.literal()
}

pub(crate) async fn enqueue(
    conn: &mut Conn,
    m: &NewMessage,
    dedupe_since: Option<DateTime<Utc>>,
    inline: Option<&InlineFile>,
    now: DateTime<Utc>,
) -> StoreResult<Enqueued> {
    let mut lanes = m.lanes.clone();
    lanes.sort();
    lanes.dedup();
    let postgres = conn.dialect() == Dialect::Postgres;
    // On PostgreSQL, an enqueue that looks for an earlier message locks its lanes first, so a
    // duplicate waits for the first to commit before it looks; SQLite has one writer. Both take
    // the number with the insert below, which on PostgreSQL locks the lanes itself.
    if postgres && enqueue_looks_first(m, dedupe_since) {
        lock_lanes(conn, &lanes).await?;
    }
    if let (Some(external_id), Some(since)) = (&m.external_id, dedupe_since) {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM ferry_messages WHERE activity_id = $1 AND external_id = $2 \
             AND content_hash = $3 AND enqueued_at >= $4 ORDER BY seq LIMIT 1"
        );
        let args = vec![text(&m.activity_id), text(external_id), text(&m.content_hash), Value::DateTime(since)];
        if let Some(r) = conn.fetch(&sql, args, &MESSAGE_TYPES).await?.first() {
            return Ok(Enqueued::Duplicate(decode_message(r)?));
        }
    }
    if m.execution_id != m.id {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM ferry_messages WHERE execution_id = $1 OR id = $1");
        if let Some(r) = conn.fetch(&sql, vec![text(&m.execution_id)], &MESSAGE_TYPES).await?.first() {
            return Ok(Enqueued::ExecutionIdInUse(decode_message(r)?));
        }
    }
    let mut args = vec![
        text(&m.id),
        text("ferry_queue_seq"),
        text(&m.execution_id),
        text(&m.activity_id),
        text(&m.project),
        m.kind.value(),
        opt_text(&m.entity),
        opt_text(&m.company),
        opt_text(&m.external_id),
        text(&m.content_hash),
        text(&m.blob_key),
        Value::Int(m.size),
        text(&m.enqueued_by),
        MessageState::Enqueued.value(),
        Value::DateTime(m.not_before.max(now)),
        Value::DateTime(now),
        m.operation.value(),
        Value::Bool(m.execute),
        opt_text(&m.rerun_of),
        opt_text(&crate::persisted::parameters_json(&m.parameters)),
    ];
    // The message, its lanes and a small body in one round trip: one statement of
    // data-modifying CTEs on PostgreSQL, a batch on SQLite (its number from the queue clock
    // bumped first).
    let seq_value = if postgres {
        "(SELECT nextval(CAST($2 AS regclass)) FROM locked)"
    } else {
        "(SELECT seq FROM ferry_queue_clock WHERE id = 1)"
    };
    let insert = format!(
        "INSERT INTO ferry_messages (id, seq, execution_id, activity_id, project, kind, entity, company, external_id, \
         content_hash, blob_key, size, enqueued_by, state, not_before, enqueued_at, operation, execute, rerun_of, \
         parameters, attempts, rows_read, rows_rejected, rows_inserted, rows_updated, rows_unchanged) \
         VALUES ($1, {seq_value}, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
         0, 0, 0, 0, 0, 0) \
         RETURNING {MESSAGE_COLUMNS}"
    );
    let mut batch = Batch::new();
    if postgres {
        let mut sql = format!("m AS ({insert})");
        for (n, lane) in lanes.iter().enumerate() {
            args.push(text(lane.as_str()));
            let lane = args.len();
            sql.push_str(&format!(
                ", l{n} AS (INSERT INTO ferry_message_lanes (lane, seq, message_id) SELECT ${lane}, seq, id FROM m)"
            ));
        }
        if let Some(file) = inline {
            args.extend([text(&file.key), crate::inline_files::content_value(file)]);
            let (key, content) = (args.len() - 1, args.len());
            sql.push_str(&format!(
                ", kept AS (INSERT INTO ferry_inline_files (key, message_id, content) SELECT ${key}, id, ${content} FROM m)"
            ));
        }
        // The lanes' locks come first (`locked` is read before the number is taken) and are
        // held until the statement's transaction commits. Other nodes are woken after the
        // commit ([`crate::Store::queue_changed`]).
        let mut args = Args::nulls_as_text(args);
        args.0.push(Arg::Column(ColType::Int64, lane_lock_keys(&lanes).into_iter().map(Value::Int).collect()));
        let sql = format!(
            "WITH locked AS MATERIALIZED (SELECT count(*) AS n FROM (SELECT pg_advisory_xact_lock({LANE_LOCK_CLASS}, \
             CAST(k AS INTEGER)) FROM unnest(CAST(${keys} AS BIGINT[])) AS t(k)) AS l), {sql} SELECT {MESSAGE_COLUMNS} FROM m",
            keys = args.0.len()
        );
        batch.push(sql, args);
    } else {
        batch.push("UPDATE ferry_queue_clock SET seq = seq + 1 WHERE id = 1", ());
        batch.push(insert, args);
        for lane in &lanes {
            batch.push(
                "INSERT INTO ferry_message_lanes (lane, seq, message_id) \
                 SELECT $1, seq, $2 FROM ferry_queue_clock WHERE id = 1",
                vec![text(lane.as_str()), text(&m.id)],
            );
        }
        if let Some(file) = inline {
            crate::inline_files::put(&mut batch, file);
        }
    }
    let message = decode_message(&conn.fetch_batch(batch, &MESSAGE_TYPES).await?[0])?;
    Ok(Enqueued::Created(message))
}

/// The advisory-lock class of lanes on PostgreSQL (two-int form; the version functions use
/// class 1717924466 and the one-bigint form).
const LANE_LOCK_CLASS: i32 = 1_717_924_467;

/// Locks `lanes` (PostgreSQL) until the transaction ends, so that the sequence number taken
/// after it follows commit order within each lane (see the module header). Also what makes a
/// duplicate enqueue see the first: it waits for the first's commit before it looks.
async fn lock_lanes(conn: &mut Conn, lanes: &[Lane]) -> StoreResult<()> {
    for key in lane_lock_keys(lanes) {
        let sql = format!("SELECT pg_advisory_xact_lock({LANE_LOCK_CLASS}, CAST($1 AS INTEGER))");
        conn.execute(&sql, vec![Value::Int(key)]).await?;
    }
    Ok(())
}

/// Whether an enqueue looks for an earlier message (a duplicate, or one holding its execution
/// id) before it inserts: then it is more than one statement, in a transaction.
pub(crate) fn enqueue_looks_first(m: &NewMessage, dedupe_since: Option<DateTime<Utc>>) -> bool {
    (m.external_id.is_some() && dedupe_since.is_some()) || m.execution_id != m.id
}

/// The advisory-lock keys of `lanes` in the one order every enqueue locks them in, so two never
/// wait on each other crosswise. Distinct lanes sharing a key only wait for each other.
fn lane_lock_keys(lanes: &[Lane]) -> Vec<i64> {
    let mut keys: Vec<i64> = lanes.iter().map(|lane| lane_lock_key(lane.as_str())).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// A lane's advisory-lock key: FNV-1a of its name, folded into PostgreSQL's `int4`.
fn lane_lock_key(lane: &str) -> i64 {
    let hash = lane.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    i64::from(hash as i32)
}

/// How many messages one claim may take: at most `max`, and of those at most `large_max`
/// [large](ClaimLimits::is_large) ones. A worker pool runs many small messages at once but
/// only a few large ones, whose memory and blocking threads it must bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimLimits {
    pub max: usize,
    pub large_max: usize,
}

impl ClaimLimits {
    /// Up to `max` messages, large or not.
    pub fn any(max: usize) -> ClaimLimits {
        ClaimLimits { max, large_max: max }
    }

    /// Whether a message is large: an export (its size is unknown until it runs), or an import
    /// whose file is above [`INLINE_FILE_MAX`](crate::INLINE_FILE_MAX) (kept in the blob store).
    pub fn is_large(message: &Message) -> bool {
        is_large(message.operation, message.size)
    }
}

fn is_large(operation: Operation, size: i64) -> bool {
    operation == Operation::Export || size > crate::INLINE_FILE_MAX as i64
}

/// Claims up to `limits` runnable messages for `holder` for `lease` past the clock's time.
/// Messages whose previous runs all died (lease expired) `max_attempts` times end as poison
/// instead.
pub(crate) async fn claim(
    conn: &mut Conn,
    holder: &str,
    limits: ClaimLimits,
    lease: std::time::Duration,
    max_attempts: i64,
    clock: &dyn Clock,
) -> StoreResult<Vec<Message>> {
    let now = clock.now();
    let lease_until = ferry_domain::later(now, lease);
    let mut claimed: Vec<Message> = Vec::new();
    let max = limits.max;
    // Giving up a poison message frees its lanes, which can make others runnable: look again.
    loop {
        let mut gave_up = false;
        let large = claimed.iter().filter(|m| ClaimLimits::is_large(m)).count();
        // No room for a large message: look at small ones only.
        let only_small = if large >= limits.large_max {
            format!("AND m.operation = '{}' AND m.size <= {}", Operation::Import.literal(), crate::INLINE_FILE_MAX)
        } else {
            String::new()
        };
        // Both statements find messages by id; `state || ''` keeps PostgreSQL from also reading
        // the state index, which holds an entry for every state a message has been in since
        // the last vacuum (its statistics see a few waiting rows, the index thousands).
        let candidates = conn
            .fetch(
                &format!(
                    // Only lane heads are candidates, found by skipping through the lanes index
                    // (one probe per lane for the next lane, one for its head): the cost follows
                    // the number of busy lanes, not the number of waiting messages.
                    "WITH RECURSIVE lanes(lane) AS ( \
                       SELECT MIN(lane) FROM ferry_message_lanes \
                       UNION ALL \
                       SELECT (SELECT MIN(n.lane) FROM ferry_message_lanes n WHERE n.lane > lanes.lane) \
                       FROM lanes WHERE lanes.lane IS NOT NULL), \
                     heads(message_id) AS ( \
                       SELECT (SELECT h.message_id FROM ferry_message_lanes h WHERE h.lane = lanes.lane \
                               ORDER BY h.seq LIMIT 1) \
                       FROM lanes WHERE lanes.lane IS NOT NULL) \
                     SELECT m.id, m.attempts, m.state, m.operation, m.size FROM ferry_messages m \
                     WHERE m.id IN (SELECT message_id FROM heads) AND (m.state || '') IN {waiting} {only_small} \
                     AND m.not_before <= $1 AND (m.lease_until IS NULL OR m.lease_until < $1) \
                     AND NOT EXISTS (SELECT 1 FROM ferry_message_lanes a JOIN ferry_message_lanes b \
                     ON b.lane = a.lane AND b.seq < a.seq WHERE a.message_id = m.id) \
                     ORDER BY m.seq LIMIT {limit}",
                    waiting = waiting(),
                    limit = candidates_limit(max - claimed.len())
                ),
                vec![Value::DateTime(now)],
                &[ColType::Text, ColType::Int64, ColType::Text, ColType::Text, ColType::Int64],
            )
            .await?;
        let mut large = large;
        let mut ids = Vec::new();
        for c in candidates {
            if claimed.len() + ids.len() >= max {
                break;
            }
            let id = c.text(0)?;
            let attempts = c.int(1)?;
            if attempts >= max_attempts && c.literal::<MessageState>(2)? == MessageState::Processing {
                let reason = format!(
                    "gave up after {attempts} attempts: each run stopped before finishing (the worker or its node \
                     died, or lost its lease). Check the server log for this message id, fix the cause and enqueue it \
                     again."
                );
                give_up(conn, &id, &reason, now).await?;
                gave_up = true;
                continue;
            }
            if is_large(c.literal::<Operation>(3)?, c.int(4)?) {
                if large >= limits.large_max {
                    continue;
                }
                large += 1;
            }
            ids.push(id);
        }
        if !ids.is_empty() {
            // Read the clock after the lanes were seen free: a start never precedes the end of
            // the message before it in its lane.
            let started = Value::DateTime(clock.now().max(now));
            // One statement leases them all.
            let mut sql = Sql::new(conn.dialect());
            sql.push(&format!("UPDATE ferry_messages SET state = '{}', reason = NULL, lease_holder = ", processing()));
            sql.param(text(holder)).push(", lease_until = ").param(Value::DateTime(lease_until));
            sql.push(", heartbeat_at = ")
                .param(started.clone())
                .push(", attempts = attempts + 1, started_at = COALESCE(started_at, ");
            sql.param(started.clone()).push(") WHERE id IN (").param_list(ids.iter().map(|id| text(id))).push(")");
            sql.push(&format!(" AND (state || '') IN {} AND (lease_until IS NULL OR lease_until < ", waiting()));
            sql.param(started).push(&format!(") RETURNING {MESSAGE_COLUMNS}"));
            let rows = conn.query(sql, &MESSAGE_TYPES).await?;
            let mut leased = rows.iter().map(|r| decode_message(r)).collect::<StoreResult<Vec<_>>>()?;
            leased.sort_by_key(|m| m.seq);
            claimed.extend(leased);
        }
        if !gave_up || claimed.len() >= max {
            break;
        }
    }
    Ok(claimed)
}

/// How many lane heads a claim that wants `wanted` messages reads: at least 64, a power of two,
/// so the query has few texts and PostgreSQL plans each once (reading a few more heads than
/// taken costs less than planning the query at every claim).
fn candidates_limit(wanted: usize) -> usize {
    wanted.max(1).next_power_of_two().max(64)
}

/// Ends a message as poison and frees its lanes, in one statement on PostgreSQL (the claim runs
/// outside a transaction there). A message that already ended has no lanes left to free.
async fn give_up(conn: &mut Conn, id: &str, reason: &str, now: DateTime<Utc>) -> StoreResult<()> {
    let mut batch = Batch::independent();
    batch.push(
        format!(
            "UPDATE ferry_messages SET state = $4, reason = $2, lease_holder = NULL, \
             lease_until = NULL, finished_at = $3 WHERE id = $1 AND state IN {}",
            waiting()
        ),
        vec![text(id), text(reason), Value::DateTime(now), MessageState::PreProcessingError.value()],
    );
    batch.push("DELETE FROM ferry_message_lanes WHERE message_id = $1", vec![text(id)]);
    conn.fetch_batch(batch, &[]).await?;
    Ok(())
}

/// Extends `holder`'s lease (and records progress); false when the lease was lost.
pub(crate) async fn renew(
    conn: &mut Conn,
    id: &str,
    holder: &str,
    lease_until: DateTime<Utc>,
    progress: Option<RowCounters>,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let mut sql = String::from("UPDATE ferry_messages SET lease_until = $3, heartbeat_at = $4");
    let mut args = vec![text(id), text(holder), Value::DateTime(lease_until), Value::DateTime(now)];
    if let Some(c) = progress {
        sql.push_str(
            ", rows_read = $5, rows_rejected = $6, rows_inserted = $7, rows_updated = $8, rows_unchanged = $9",
        );
        args.extend([c.read, c.rejected, c.inserted, c.updated, c.unchanged].map(Value::Int));
    }
    sql.push_str(&format!(" WHERE id = $1 AND lease_holder = $2 AND state = '{}'", processing()));
    Ok(conn.execute(&sql, args).await? > 0)
}

/// Fails with [`StoreError::LeaseLost`] unless `holder` still holds the message, and extends its
/// lease to at least `lease_until`. The row lock taken here keeps a claimer waiting until the
/// caller's transaction ends — which is why the lease is extended here too: a claimer that waited
/// for a long batch must not find the lease expired the moment the batch commits.
pub(crate) async fn fence(
    conn: &mut Conn,
    id: &str,
    holder: &str,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let n = conn
        .execute(
            &format!(
                "UPDATE ferry_messages SET heartbeat_at = $3, \
                 lease_until = CASE WHEN lease_until > $4 THEN lease_until ELSE $4 END \
                 WHERE id = $1 AND lease_holder = $2 AND state = '{}'",
                processing()
            ),
            vec![text(id), text(holder), Value::DateTime(now), Value::DateTime(lease_until)],
        )
        .await?;
    if n == 0 { Err(StoreError::LeaseLost { message_id: id.to_string() }) } else { Ok(()) }
}

/// Starts a run from scratch: forgets what an earlier, unfinished run recorded.
pub(crate) async fn begin_attempt(
    conn: &mut Conn,
    id: &str,
    holder: &str,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    fence(conn, id, holder, lease_until, now).await?;
    conn.execute("DELETE FROM ferry_import_errors WHERE message_id = $1", vec![text(id)]).await?;
    conn.execute("DELETE FROM ferry_message_entities WHERE message_id = $1", vec![text(id)]).await?;
    conn.execute(
        "UPDATE ferry_messages SET rows_read = 0, rows_rejected = 0, rows_inserted = 0, rows_updated = 0, \
         rows_unchanged = 0, warnings = NULL WHERE id = $1",
        vec![text(id)],
    )
    .await?;
    Ok(())
}

/// Ends a message in a final state, frees its lanes and runs `with` — the run's last records,
/// and its last batch's write — in one request (one statement on PostgreSQL); false when the
/// lease was lost — `with` may have run all the same, so the caller then rolls back. An export's
/// produced file and the watermarks its incremental entities reached are recorded in the same
/// transaction, so a change is exported once: by a recorded run, or again by the next.
pub(crate) async fn finish(
    conn: &mut Conn,
    id: &str,
    holder: &str,
    outcome: &MessageOutcome,
    with: Batch,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let mut batch = end_batch(id, holder, outcome, now, false);
    batch.append(with);
    Ok(!conn.fetch_batch(batch, &[ColType::Text]).await?.is_empty())
}

/// [`finish`] outside a transaction block, on PostgreSQL: the end and `with` as one statement
/// that commits by itself, or writes nothing — a lost lease fails it with
/// [`StoreError::LeaseLost`](crate::StoreError::LeaseLost). When they would not fuse into one
/// statement, nothing runs and `with` comes back, for the caller to end the message in a
/// transaction.
pub(crate) async fn finish_alone(
    conn: &mut Conn,
    id: &str,
    holder: &str,
    outcome: &MessageOutcome,
    with: Batch,
    now: DateTime<Utc>,
) -> StoreResult<Option<Batch>> {
    let mut batch = end_batch(id, holder, outcome, now, true);
    if !batch.fuses_into_one_with(&with) {
        return Ok(Some(with));
    }
    batch.append(with);
    match conn.fetch_batch(batch, &[ColType::Bool]).await {
        Ok(_) => Ok(None),
        Err(e) if e.database_code().as_deref() == Some(LEASE_LOST_CODE) => {
            Err(crate::StoreError::LeaseLost { message_id: id.to_owned() })
        }
        Err(e) => Err(e.into()),
    }
}

/// The SQLSTATE `ferry_require_lease` raises (PostgreSQL migration 0009).
const LEASE_LOST_CODE: &str = "FL001";

/// The statements that end a message: its guarded update first (or, `fenced_in_statement`, a
/// check of it that fails the fused statement when it found no lease), then its lanes freed and
/// the watermarks it reached.
fn end_batch(id: &str, holder: &str, outcome: &MessageOutcome, now: DateTime<Utc>, fenced_in_statement: bool) -> Batch {
    let c = outcome.counters;
    let mut args = vec![
        text(id),
        text(holder),
        outcome.state.value(),
        opt_text(&outcome.reason),
        Value::DateTime(now),
        Value::Int(c.read),
        Value::Int(c.rejected),
        Value::Int(c.inserted),
        Value::Int(c.updated),
        Value::Int(c.unchanged),
        opt_text(&outcome.warnings),
    ];
    let mut sql = String::from(
        "UPDATE ferry_messages SET state = $3, reason = $4, lease_holder = NULL, lease_until = NULL, finished_at = $5, \
         rows_read = $6, rows_rejected = $7, rows_inserted = $8, rows_updated = $9, rows_unchanged = $10, \
         warnings = $11",
    );
    if let Some(file) = &outcome.produced {
        sql.push_str(", blob_key = $12, size = $13, content_hash = $14, delivery_state = $15");
        let delivery = file.deliver.then_some(DeliveryState::Ready);
        args.extend([
            text(&file.blob_key),
            Value::Int(file.size),
            text(&file.sha256),
            delivery.map_or(Value::Null, Literal::value),
        ]);
    }
    sql.push_str(&format!(" WHERE id = $1 AND lease_holder = $2 AND state = '{}' RETURNING id", processing()));
    // The end, the freed lanes, the records and the watermarks in one request — one statement
    // on PostgreSQL (other nodes are woken after the commit, [`crate::Store::queue_changed`]).
    // Whatever follows the end goes unconditionally: when the end found no lease, the caller
    // rolls it all back (or, fenced in the statement, the statement fails).
    let mut batch = Batch::independent();
    if fenced_in_statement {
        // The fused statement's main query, reading the end's update (the first `WITH` query,
        // `s1`): it raises — undoing everything the statement did — when that found no lease.
        batch.push("SELECT ferry_require_lease(EXISTS (SELECT 1 FROM s1))", Vec::<Value>::new());
    }
    batch.push(sql, Args::nulls_as_text(args));
    batch.push("DELETE FROM ferry_message_lanes WHERE message_id = $1", vec![text(id)]);
    // One watermark per entity of a scope (a project may name an entity twice): the batch's
    // statements touch no row twice.
    let mut watermarks: Vec<&ferry_domain::Watermark> = Vec::new();
    for w in &outcome.watermarks {
        match watermarks.iter_mut().find(|k| k.scope == w.scope && k.entity == w.entity) {
            Some(kept) if kept.version < w.version => *kept = w,
            Some(_) => {}
            None => watermarks.push(w),
        }
    }
    for w in watermarks {
        crate::exports::put_watermark(&mut batch, w, now);
    }
    batch
}

/// Cancels a message that has not started: it ends `Canceled` with `reason` and frees its
/// lanes. Answers the message as it is afterwards (unchanged when it could not be cancelled).
pub(crate) async fn cancel(
    conn: &mut Conn,
    id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<Message>> {
    let sql = format!(
        "UPDATE ferry_messages SET state = $3, reason = $4, finished_at = $5 \
         WHERE (id = $1 OR execution_id = $1) AND state = $2 RETURNING {MESSAGE_COLUMNS}"
    );
    let args = vec![
        text(id),
        MessageState::Enqueued.value(),
        MessageState::Canceled.value(),
        text(reason),
        Value::DateTime(now),
    ];
    let rows = conn.fetch(&sql, args, &MESSAGE_TYPES).await?;
    let Some(row) = rows.first() else { return crate::messages::get_message(conn, id).await };
    let message = decode_message(row)?;
    conn.execute("DELETE FROM ferry_message_lanes WHERE message_id = $1", vec![text(&message.id)]).await?;
    Ok(Some(message))
}

/// Puts a message back to wait until `not_before`, keeping its lanes (so order is kept).
pub(crate) async fn retry_later(
    conn: &mut Conn,
    id: &str,
    holder: &str,
    not_before: DateTime<Utc>,
    reason: &str,
) -> StoreResult<bool> {
    let n = conn
        .execute(
            &format!(
                "UPDATE ferry_messages SET state = $5, reason = $3, lease_holder = NULL, lease_until = NULL, \
                 not_before = $4 WHERE id = $1 AND lease_holder = $2 AND state = '{}'",
                processing()
            ),
            vec![text(id), text(holder), text(reason), Value::DateTime(not_before), MessageState::Retrying.value()],
        )
        .await?;
    Ok(n > 0)
}
