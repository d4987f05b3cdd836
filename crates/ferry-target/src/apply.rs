//! Writing to entity tables on any dialect: the version-guarded batched upsert, guarded
//! deletes with their DeleteLog rows, the checkpoint row (all in the caller's transaction), and
//! the reads `verify` needs. Statements close on rows, parameters and bytes, whichever comes
//! first.

use crate::dialect::{BulkPath, ColumnInfo, Dialect, Family, Guard, SqlExt, Upsert};
use crate::error::TargetError;
use crate::layout::{self, EntityLayout, Names, Source};
use crate::{ApplyOutcome, Batch};
use chrono::{DateTime, Utc};
use ferry_domain::{Checkpoint, KeyText, Phase, StoredRow};
use ferry_model::Value;
use ferry_sql::{ColType, Conn, RowExt, Sql, SqlError, SqlErrorKind};
use std::collections::HashMap;
use uuid::Uuid;

/// Most value bytes one upsert statement carries (MySQL's default packet limit is 16 MiB+).
const BYTES_PER_STATEMENT_MAX: usize = 4 << 20;
/// Most ids one `IN (…)` list carries.
const IDS_PER_STATEMENT_MAX: usize = 1000;
/// Most rows one bulk `INSERT` carries, whatever the parameter limit allows.
const BULK_INSERT_ROWS_MAX: usize = 2000;
/// The savepoint the bulk path of an initial-copy chunk runs under.
const BULK_SAVEPOINT: &str = "ferry_bulk";

/// What `apply` needs to know about one entity and profile.
pub(crate) struct ApplyContext<'a> {
    pub names: &'a Names,
    pub layout: &'a EntityLayout,
    /// Lookup field index → the target entity's logical name.
    pub targets: &'a HashMap<usize, String>,
    pub delete_log: bool,
    pub now: DateTime<Utc>,
}

/// The batch's upserts, one per Id (the highest version wins), in their order.
fn latest_per_id(rows: &[StoredRow]) -> Vec<&StoredRow> {
    let mut best: HashMap<Uuid, usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let slot = best.entry(row.id).or_insert(i);
        if rows[*slot].version < row.version {
            *slot = i;
        }
    }
    rows.iter().enumerate().filter(|(i, row)| best[&row.id] == *i).map(|(_, row)| row).collect()
}

fn value_bytes(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len() + 8,
        Value::Decimal(d) => d.as_str().len() + 8,
        _ => 16,
    }
}

/// Writes `batch` and then `checkpoint`: upserts first (so a row deleted later in the same
/// batch ends deleted), then deletes; every write is guarded by the version, so replays and
/// stale rows change nothing.
pub(crate) async fn apply(
    c: &mut Conn,
    d: &dyn Dialect,
    ctx: &ApplyContext<'_>,
    batch: &Batch,
    checkpoint: &Checkpoint,
) -> Result<ApplyOutcome, TargetError> {
    let mut outcome = ApplyOutcome::default();
    let def = &ctx.layout.table;
    let schema = &ctx.names.schema;
    let upsert = Upsert {
        table: &def.name,
        columns: &def.columns,
        key: &[layout::ID],
        insert_only: &[layout::CREATED],
        guard: Some(Guard { version: layout::VERSION, touched: layout::MODIFIED }),
    };
    let rows_max = d.upsert_rows_max(def.columns.len());
    let mut rows = latest_per_id(&batch.upserts).into_iter().peekable();
    while rows.peek().is_some() {
        let mut chunk: Vec<&StoredRow> = Vec::new();
        let mut values = Vec::new();
        let mut bytes = 0;
        while let Some(row) = rows.peek() {
            if chunk.len() == rows_max || bytes >= BYTES_PER_STATEMENT_MAX {
                break;
            }
            let row_values = ctx.layout.row_values(row, ctx.targets, ctx.now);
            bytes += row_values.iter().map(value_bytes).sum::<usize>();
            values.push(row_values);
            chunk.push(rows.next().expect("peeked"));
        }
        let counted = match d.upsert_counts_rows_affected() {
            true => None,
            false => Some(count_applicable(c, d, ctx, &chunk).await?),
        };
        let mut sql = Sql::new(d.sql());
        d.upsert(&mut sql, schema, &upsert, values);
        let affected = c.run(sql).await?;
        outcome.upserted += counted.unwrap_or(affected);
    }

    for tombstone in &batch.deletes {
        let mut sql = Sql::new(d.sql());
        sql.push("DELETE FROM ").table(schema, &def.name).push(" WHERE ").ident(layout::ID).push(" = ");
        sql.param(Value::Guid(tombstone.id)).push(" AND ").ident(layout::VERSION).push(" <= ");
        sql.param(Value::Int(tombstone.version));
        outcome.deleted += c.run(sql).await?;
        if ctx.delete_log {
            log_delete(c, d, ctx, tombstone.id, tombstone.version).await?;
        }
    }

    write_checkpoint(c, d, ctx.names, checkpoint, ctx.now).await?;
    Ok(outcome)
}

/// How an initial-copy chunk was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CopiedBy {
    /// The bulk path: none of the rows was in the table.
    Bulk,
    /// The guarded upsert, because the dialect has no bulk path, the caller asked for it, or a
    /// row was already there.
    Upsert { conflict: bool },
}

/// Writes one chunk of the initial copy and then `checkpoint`. With `bulk`, the rows go in by
/// the dialect's bulk path (PostgreSQL `COPY`, MySQL plain multi-row `INSERT`s) under a
/// savepoint: when a row is already in the table (a resync, a table left by an earlier
/// profile), the savepoint is rolled back and the chunk goes through the version-guarded
/// upsert of [`apply`] instead, so an older version still never overwrites a newer one.
pub(crate) async fn copy(
    c: &mut Conn,
    d: &dyn Dialect,
    ctx: &ApplyContext<'_>,
    batch: &Batch,
    checkpoint: &Checkpoint,
    bulk: bool,
) -> Result<(ApplyOutcome, CopiedBy), TargetError> {
    let path = d.bulk_path();
    if !bulk || path == BulkPath::Upsert || !batch.deletes.is_empty() {
        return Ok((apply(c, d, ctx, batch, checkpoint).await?, CopiedBy::Upsert { conflict: false }));
    }
    let rows = latest_per_id(&batch.upserts);
    c.savepoint(BULK_SAVEPOINT).await?;
    let inserted = match path {
        BulkPath::Copy => copy_rows(c, d, ctx, &rows).await,
        BulkPath::Insert { params_max } => insert_rows(c, d, ctx, &rows, params_max).await,
        BulkPath::Upsert => unreachable!("handled above"),
    };
    match inserted {
        Ok(inserted) => {
            c.release_savepoint(BULK_SAVEPOINT).await?;
            write_checkpoint(c, d, ctx.names, checkpoint, ctx.now).await?;
            Ok((ApplyOutcome { upserted: inserted, deleted: 0 }, CopiedBy::Bulk))
        }
        Err(e) if e.kind == SqlErrorKind::UniqueViolation => {
            tracing::debug!(table = %ctx.layout.table.name, error = %e, "rows already in the table: upserting the chunk");
            c.rollback_to_savepoint(BULK_SAVEPOINT).await?;
            Ok((apply(c, d, ctx, batch, checkpoint).await?, CopiedBy::Upsert { conflict: true }))
        }
        Err(e) => Err(e.into()),
    }
}

/// `COPY … FROM STDIN` of `rows` (text format, encoded and sent as they go).
async fn copy_rows(
    c: &mut Conn,
    d: &dyn Dialect,
    ctx: &ApplyContext<'_>,
    rows: &[&StoredRow],
) -> Result<u64, SqlError> {
    let def = &ctx.layout.table;
    let mut sql = Sql::new(d.sql());
    sql.push("COPY ").table(&ctx.names.schema, &def.name).push(" ").column_list(&def.columns).push(" FROM STDIN");
    let started = std::time::Instant::now();
    let mut copy = c.copy_in(sql.text()).await?;
    for row in rows {
        let data = copy.data();
        ctx.layout.visit_values(row, ctx.targets, ctx.now, |v| data.value(v));
        data.end_row();
        copy.send_full().await?;
    }
    let copied = copy.finish().await?;
    tracing::debug!(table = %def.name, rows = copied, ms = started.elapsed().as_secs_f64() * 1e3, "rows copied");
    Ok(copied)
}

/// Plain multi-row `INSERT`s of `rows`, closing each statement on rows, parameters or bytes;
/// each statement is built while the one before runs.
async fn insert_rows(
    c: &mut Conn,
    d: &dyn Dialect,
    ctx: &ApplyContext<'_>,
    rows: &[&StoredRow],
    params_max: usize,
) -> Result<u64, SqlError> {
    let def = &ctx.layout.table;
    let rows_max = (params_max / def.columns.len().max(1)).clamp(1, BULK_INSERT_ROWS_MAX);
    let mut rows = rows.iter().peekable();
    let mut next_statement = || {
        rows.peek()?;
        let mut values = Vec::new();
        let mut bytes = 0;
        while let Some(row) = rows.next_if(|_| values.len() < rows_max && bytes < BYTES_PER_STATEMENT_MAX) {
            let row_values = ctx.layout.row_values(row, ctx.targets, ctx.now);
            bytes += row_values.iter().map(value_bytes).sum::<usize>();
            values.push(row_values);
        }
        let mut sql = Sql::new(d.sql());
        sql.push("INSERT INTO ").table(&ctx.names.schema, &def.name).push(" ").column_list(&def.columns);
        sql.push(" VALUES ").values(&def.columns, values);
        Some(sql)
    };
    let mut inserted = 0;
    let mut next = next_statement();
    while let Some(sql) = next {
        // The statement is sent before the next one is built (`join!` polls in order).
        let (done, built) = futures::join!(c.run(sql), async { next_statement() });
        inserted += done?;
        next = built;
    }
    Ok(inserted)
}

/// How many of `chunk` the guarded upsert will write: rows absent from the target, or whose
/// target copy is not newer (for dialects whose affected-row count does not tell).
async fn count_applicable(
    c: &mut Conn,
    d: &dyn Dialect,
    ctx: &ApplyContext<'_>,
    chunk: &[&StoredRow],
) -> Result<u64, TargetError> {
    let mut sql = Sql::new(d.sql());
    sql.push("SELECT ").ident(layout::ID).push(", ").ident(layout::VERSION).push(" FROM ");
    sql.table(&ctx.names.schema, &ctx.layout.table.name).push(" WHERE ").ident(layout::ID).push(" IN (");
    sql.param_list(chunk.iter().map(|r| Value::Guid(r.id))).push(")");
    let existing: HashMap<Uuid, Option<i64>> = c
        .query(sql, &[ColType::Guid, ColType::Int64])
        .await?
        .iter()
        .map(|r| Ok((r.guid(0)?, r.opt_int(1)?)))
        .collect::<Result<_, TargetError>>()?;
    Ok(chunk
        .iter()
        .filter(|row| match existing.get(&row.id) {
            None => true,
            Some(version) => version.is_some_and(|v| v <= row.version),
        })
        .count() as u64)
}

/// One DeleteLog row per deleted record, unless a replay already wrote it.
async fn log_delete(
    c: &mut Conn,
    d: &dyn Dialect,
    ctx: &ApplyContext<'_>,
    id: Uuid,
    version: i64,
) -> Result<(), TargetError> {
    let [entity, record, time, version_column] = layout::DELETE_LOG_COLUMNS;
    let table = ctx.names.delete_log();
    let record_id = Value::String(id.hyphenated().to_string());
    let mut sql = Sql::new(d.sql());
    sql.push("SELECT COUNT(*) FROM ").table(&ctx.names.schema, &table).push(" WHERE ").ident(record).push(" = ");
    sql.param(record_id.clone()).push(" AND ").ident(version_column).push(" = ").param(Value::Int(version));
    let found = c.query(sql, &[ColType::Int64]).await?;
    if found.first().map(|r| r.int(0)).transpose()?.unwrap_or(0) > 0 {
        return Ok(());
    }
    let mut sql = Sql::new(d.sql());
    sql.push("INSERT INTO ").table(&ctx.names.schema, &table).push(" (");
    for (i, column) in [entity, record, time, version_column].iter().enumerate() {
        sql.push(if i == 0 { "" } else { ", " }).ident(column);
    }
    sql.push(") VALUES (");
    sql.param_list([
        Value::String(ctx.layout.entity.clone()),
        record_id,
        Value::DateTime(ctx.now),
        Value::Int(version),
    ]);
    sql.push(")");
    c.run(sql).await?;
    Ok(())
}

pub(crate) async fn write_checkpoint(
    c: &mut Conn,
    d: &dyn Dialect,
    names: &Names,
    checkpoint: &Checkpoint,
    now: DateTime<Utc>,
) -> Result<(), TargetError> {
    let def = layout::checkpoint_table(names);
    let upsert = Upsert {
        table: &def.name,
        columns: &def.columns,
        key: &["profile_id", "entity"],
        insert_only: &[],
        guard: None,
    };
    let row = vec![
        Value::String(checkpoint.profile_id.clone()),
        Value::String(checkpoint.entity.clone()),
        Value::String(phase_text(checkpoint.phase).into()),
        Value::Int(checkpoint.snapshot_version),
        checkpoint.after_key.as_ref().map_or(Value::Null, |key| Value::String(key_json(key))),
        Value::Int(checkpoint.last_version),
        Value::Int(checkpoint.rows_copied),
        Value::DateTime(now),
    ];
    let mut sql = Sql::new(d.sql());
    d.upsert(&mut sql, &names.schema, &upsert, vec![row]);
    c.run(sql).await?;
    Ok(())
}

/// How a checkpoint's phase is written in the target.
fn phase_text(phase: Phase) -> &'static str {
    match phase {
        Phase::Initial => "initial",
        Phase::Delta => "delta",
    }
}

fn phase_of(text: &str) -> Option<Phase> {
    match text {
        "initial" => Some(Phase::Initial),
        "delta" => Some(Phase::Delta),
        _ => None,
    }
}

/// The initial copy's position as the target keeps it: `[company, [key values…]]` in JSON.
fn key_json(key: &KeyText) -> String {
    serde_json::json!([key.company, key.values]).to_string()
}

fn key_of(json: &str) -> Result<KeyText, TargetError> {
    let (company, values): (Option<String>, Vec<String>) = serde_json::from_str(json)
        .map_err(|e| TargetError::Unexpected(format!("unreadable checkpoint position {json:?}: {e}")))?;
    Ok(KeyText { company, values })
}

pub(crate) async fn load_checkpoints(
    c: &mut Conn,
    d: &dyn Dialect,
    names: &Names,
    profile_id: &str,
) -> Result<Vec<Checkpoint>, TargetError> {
    let present = super::schema::tables(c, d, &names.schema).await?;
    if !present.contains(&d.fold(&names.checkpoints())) {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(d.sql());
    sql.push("SELECT ");
    for (i, column) in layout::CHECKPOINT_COLUMNS[..7].iter().enumerate() {
        sql.push(if i == 0 { "" } else { ", " }).ident(column);
    }
    sql.push(" FROM ").table(&names.schema, &names.checkpoints()).push(" WHERE ").ident("profile_id").push(" = ");
    sql.param(Value::String(profile_id.into())).push(" ORDER BY ").ident("entity");
    use ColType::{Int64 as Int, Text};
    let rows = c.query(sql, &[Text, Text, Text, Int, Text, Int, Int]).await?;
    rows.iter()
        .map(|r| {
            let phase = r.text(2)?;
            Ok(Checkpoint {
                profile_id: r.text(0)?,
                entity: r.text(1)?,
                phase: phase_of(&phase)
                    .ok_or_else(|| TargetError::Unexpected(format!("unknown checkpoint phase {phase:?}")))?,
                snapshot_version: r.int(3)?,
                after_key: r.opt_text(4)?.map(|json| key_of(&json)).transpose()?,
                last_version: r.int(5)?,
                rows_copied: r.int(6)?,
            })
        })
        .collect()
}

/// (Id, versionnumber) of every row, sorted by Id; a missing version reads as 0.
pub(crate) async fn row_versions(
    c: &mut Conn,
    d: &dyn Dialect,
    names: &Names,
    table: &str,
) -> Result<Vec<(Uuid, i64)>, TargetError> {
    let mut sql = Sql::new(d.sql());
    sql.push("SELECT ").ident(layout::ID).push(", ").ident(layout::VERSION).push(" FROM ").table(&names.schema, table);
    sql.push(" ORDER BY ").ident(layout::ID);
    let rows = c.query(sql, &[ColType::Guid, ColType::Int64]).await?;
    let mut out: Vec<(Uuid, i64)> =
        rows.iter().map(|r| Ok((r.guid(0)?, r.opt_int(1)?.unwrap_or(0)))).collect::<Result<_, TargetError>>()?;
    // Databases order text and uuid alike for canonical GUIDs; sorting again costs little.
    out.sort_unstable();
    Ok(out)
}

pub(crate) async fn row_count(c: &mut Conn, d: &dyn Dialect, names: &Names, table: &str) -> Result<u64, TargetError> {
    let mut sql = Sql::new(d.sql());
    sql.push("SELECT COUNT(*) FROM ").table(&names.schema, table);
    let rows = c.query(sql, &[ColType::Int64]).await?;
    Ok(rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0) as u64)
}

/// Deletes rows by Id, without DeleteLog rows (verify's repair).
pub(crate) async fn delete_rows(
    c: &mut Conn,
    d: &dyn Dialect,
    names: &Names,
    table: &str,
    ids: &[Uuid],
) -> Result<u64, TargetError> {
    let mut deleted = 0;
    for chunk in ids.chunks(IDS_PER_STATEMENT_MAX) {
        let mut sql = Sql::new(d.sql());
        sql.push("DELETE FROM ").table(&names.schema, table).push(" WHERE ").ident(layout::ID).push(" IN (");
        sql.param_list(chunk.iter().map(|id| Value::Guid(*id))).push(")");
        deleted += c.run(sql).await?;
    }
    Ok(deleted)
}

/// The lookup targets of `entity` as `ensure_schema` recorded them in TargetMetadata:
/// field index → target logical name.
pub(crate) async fn recorded_lookup_targets(
    c: &mut Conn,
    d: &dyn Dialect,
    names: &Names,
    layout: &EntityLayout,
    fields: &[ferry_model::Field],
) -> Result<HashMap<usize, String>, TargetError> {
    let table = names.table("TargetMetadata");
    let present = super::schema::tables(c, d, &names.schema).await?;
    if !present.contains(&d.fold(&table)) {
        return Ok(HashMap::new());
    }
    let mut sql = Sql::new(d.sql());
    sql.push("SELECT ").ident("AttributeName").push(", ").ident("ReferencedEntity").push(" FROM ");
    sql.table(&names.schema, &table).push(" WHERE ").ident("EntityName").push(" = ");
    sql.param(Value::String(layout.entity.clone()));
    let rows = c.query(sql, &[ColType::Text, ColType::Text]).await?;
    let mut out = HashMap::new();
    for row in rows {
        let (column, target) = (row.text(0)?, row.text(1)?);
        if let Some(i) = fields.iter().position(|f| f.name.eq_ignore_ascii_case(&column)) {
            out.insert(i, target);
        }
    }
    Ok(out)
}

/// Names the value that does not fit when the target refused a batch for a too-long string:
/// ` (column c holds at most n characters; record … has m)`, or nothing when none is found.
pub(crate) fn explain_rejection(
    d: &dyn Dialect,
    layout: &EntityLayout,
    columns: &[ColumnInfo],
    rows: &[StoredRow],
) -> Option<String> {
    for (column, source) in layout.table.columns.iter().zip(&layout.sources) {
        let Source::Field(i) = source else { continue };
        let Some(info) = columns.iter().find(|info| d.fold(&info.name) == d.fold(&column.name)) else { continue };
        let Family::Text(Some(max)) = d.family(info) else { continue };
        for row in rows {
            if let Some(Value::String(s)) = row.values.get(*i) {
                let chars = s.chars().count();
                if chars > max as usize {
                    return Some(format!(
                        " (column {} holds at most {max} characters; record {} has {chars})",
                        column.name, row.id
                    ));
                }
            }
        }
    }
    None
}
