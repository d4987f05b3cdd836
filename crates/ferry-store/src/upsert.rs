//! Set-based import into an entity: rows are matched to stored rows by natural key and company,
//! new ones are inserted, changed ones updated, identical ones left alone (so a re-run of the
//! same file changes nothing and takes no versions) — on SQLite by one-row statements stepped on
//! the writer's own handle (`upsert_sqlite.rs`; a small batch by one multi-row
//! `INSERT … ON CONFLICT DO UPDATE` that joins its caller's request), and on PostgreSQL by `COPY`
//! (straight into the table, or into a temporary table and one merge; an array statement for a
//! few rows).

use crate::error::StoreResult;
use crate::queue;
use crate::rows::{allocate_versions, check_lookups};
use crate::sql::{EntityTable, MODIFIED_AT, VERSION, quote};
use crate::upsert_sqlite;
use chrono::{DateTime, Utc};
use ferry_domain::{NewRow, StoredRow};
use ferry_model::{Catalog, Entity, Value};
use ferry_sql::{Arg, Batch, ColType, Conn, Dialect, Sql};
use std::collections::HashMap;
use uuid::Uuid;

/// Parameters per statement, as for inserts.
const PARAMS_PER_STATEMENT_MAX: usize = 30_000;
/// PostgreSQL batches of at least this many written rows go through `COPY` (smaller ones, such
/// as the one-row retries that isolate a refused row, through one array statement).
pub(crate) const COPY_ROWS_MIN: usize = 64;
/// Most rows of a SQLite batch read and written by statements the driver keeps prepared, the
/// write joining its caller's request; others are written directly (`upsert_sqlite.rs`).
const SQLITE_SMALL_BATCH_MAX: usize = 64;
/// The temporary table a PostgreSQL batch is copied into before its merge.
const COPY_STAGE: &str = "ferry_import_stage";
/// The savepoint a PostgreSQL batch of new rows is copied straight into the entity's table under.
const COPY_SAVEPOINT: &str = "ferry_import_copy";

/// What one import batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl std::ops::AddAssign for BatchCounts {
    fn add_assign(&mut self, o: BatchCounts) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
    }
}

/// The holder of a message's lease, checked inside the batch's transaction.
#[derive(Clone, Debug)]
pub struct Fence {
    pub message_id: String,
    pub holder: String,
    /// How far each fenced write extends the lease.
    pub lease: std::time::Duration,
}

impl Fence {
    pub(crate) fn lease_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::MAX)
    }
}

/// Upserts `rows` (no key twice) by natural key. New rows are inserted whole; existing rows take
/// `update_fields` (all fields when `None`) and keep the rest. Checks the fence and the lookups
/// first (a missing lookup fails the batch: callers validate lookups beforehand with
/// [`crate::Store::missing_lookups`]); SQLite's write lock is already held (`BEGIN IMMEDIATE`).
/// With `deferred`, a small batch's writing statements are added to it instead of run: the caller
/// sends them with statements of its own, as one request. With `expect_new` (no batch of the
/// caller's import met an existing key so far), a large PostgreSQL batch is first `COPY`ed
/// straight into the table without reading the stored rows — read only if a key exists after all.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn import_batch(
    conn: &mut Conn,
    catalog: &Catalog,
    entity: &Entity,
    rows: &[NewRow],
    update_fields: Option<&[usize]>,
    fence: Option<&Fence>,
    now: DateTime<Utc>,
    deferred: Option<&mut Batch>,
    expect_new: bool,
) -> StoreResult<BatchCounts> {
    if let Some(f) = fence {
        queue::fence(conn, &f.message_id, &f.holder, f.lease_until(now), now).await?;
    }
    if rows.is_empty() {
        return Ok(BatchCounts::default());
    }
    check_lookups(conn, catalog, entity, &lookup_values(entity, rows)).await?;

    let table = EntityTable::new(entity, conn.dialect());
    let fields: Vec<usize> = table.stored_fields().collect();
    // Fields an existing row takes from the file (the others keep their stored values).
    let updated_fields: Vec<usize> = match update_fields {
        Some(only) => fields.iter().copied().filter(|i| only.contains(i)).collect(),
        None => fields.clone(),
    };
    // On SQLite, only a small batch with somewhere to go takes the driver's statements below.
    let small =
        rows.len() <= SQLITE_SMALL_BATCH_MAX && rows.len() * (entity.fields.len() + 4) <= PARAMS_PER_STATEMENT_MAX;
    let deferred = match (conn.dialect(), deferred) {
        (Dialect::Sqlite, Some(batch)) if small => Some(batch),
        (Dialect::Sqlite, _) => {
            return conn.sqlite_direct(|db| upsert_sqlite::import_rows(db, &table, rows, &updated_fields, now)).await;
        }
        (_, deferred) => deferred,
    };
    let mut update_set: Vec<String> =
        updated_fields.iter().map(|&i| format!("{c} = excluded.{c}", c = quote(&entity.fields[i].name))).collect();
    update_set.push(format!("{c} = excluded.{c}", c = quote(MODIFIED_AT)));
    update_set.push(format!("{c} = excluded.{c}", c = quote(VERSION)));
    let conflict_target = table.key_columns().join(", ");
    if expect_new && conn.dialect() == Dialect::Postgres && rows.len() >= COPY_ROWS_MIN {
        let writes: Vec<(Uuid, &NewRow)> = rows.iter().map(|row| (row_id(entity, row), row)).collect();
        let (fields, columns) = table.written_columns(rows.iter());
        let merge = Merge {
            table: &table,
            fields: &fields,
            columns: &columns,
            conflict_target: &conflict_target,
            update_set: &update_set,
        };
        let first_version = allocate_versions(conn, writes.len()).await?;
        if merge.copy_straight(conn, &writes, first_version, now).await? {
            return Ok(BatchCounts { inserted: rows.len() as u64, ..BatchCounts::default() });
        }
    }
    let existing = existing_rows(conn, &table, rows).await?;
    let mut counts = BatchCounts::default();
    let mut writes: Vec<(Uuid, &NewRow)> = Vec::with_capacity(rows.len());
    for row in rows {
        let key = key_text(entity, &row.company, &row.values);
        match existing.get(&key) {
            Some(stored) if updated_fields.iter().all(|&i| stored.values[i] == row.values[i]) => counts.unchanged += 1,
            Some(stored) => {
                counts.updated += 1;
                writes.push((stored.id, row));
            }
            None => {
                counts.inserted += 1;
                writes.push((row_id(entity, row), row));
            }
        }
    }
    if writes.is_empty() {
        return Ok(counts);
    }

    let (fields, columns) = table.written_columns(writes.iter().map(|(_, row)| *row));

    if conn.dialect() == Dialect::Postgres {
        let merge = Merge {
            table: &table,
            fields: &fields,
            columns: &columns,
            conflict_target: &conflict_target,
            update_set: &update_set,
        };
        if writes.len() >= COPY_ROWS_MIN {
            let first_version = allocate_versions(conn, writes.len()).await?;
            merge.by_copy(conn, writes, counts.updated == 0, first_version, now).await?;
        } else {
            let (sql, args) = merge.by_arrays(writes, now);
            match deferred {
                Some(batch) => {
                    batch.push(sql, args);
                }
                None => {
                    conn.execute(&sql, args).await?;
                }
            }
        }
        return Ok(counts);
    }
    // A small SQLite batch: the clock's bump and one multi-row insert join the caller's request
    // (each row's version counted back from the bumped clock). There always is one here (a batch
    // without was written directly above); should there not be, the two statements run alone.
    let mut own = Batch::new();
    let batch = deferred.unwrap_or(&mut own);
    let written = writes.len();
    let mut sql = Sql::new(conn.dialect());
    sql.push("INSERT INTO ").push(&table.name).push(" (").push(&columns.join(", ")).push(") VALUES ");
    for (n, (id, row)) in writes.iter().enumerate() {
        sql.push(if n == 0 { "(" } else { ", (" });
        sql.param(Value::Guid(*id));
        if entity.company_specific {
            sql.push(", ").param(Value::String(row.company.clone().unwrap_or_default()));
        }
        sql.push(", ").param(Value::DateTime(now));
        sql.push(", ").param(Value::DateTime(now));
        sql.push(&format!(", (SELECT version FROM ferry_clock WHERE id = 1) - {}", written - 1 - n));
        for &i in &fields {
            sql.push(", ").param(row.values[i].clone());
        }
        sql.push(")");
    }
    sql.push(" ON CONFLICT (").push(&conflict_target).push(") DO UPDATE SET ").push(&update_set.join(", "));
    batch.push("UPDATE ferry_clock SET version = version + $1 WHERE id = 1", vec![Value::Int(written as i64)]);
    let (text, args) = sql.into_parts();
    batch.push(text, args);
    conn.fetch_batch(own, &[]).await?;
    Ok(counts)
}

/// The written rows of a PostgreSQL batch and how they merge into the entity's table.
struct Merge<'a> {
    table: &'a EntityTable<'a>,
    /// Entity fields written, in column order after the bookkeeping columns.
    fields: &'a [usize],
    columns: &'a [String],
    conflict_target: &'a str,
    update_set: &'a [String],
}

impl Merge<'_> {
    /// `INSERT INTO entity (columns) <source> ON CONFLICT (key) DO UPDATE SET …`.
    fn insert_from(&self, source: &str) -> String {
        format!(
            "INSERT INTO {} ({}) {source} ON CONFLICT ({}) DO UPDATE SET {}",
            self.table.name,
            self.columns.join(", "),
            self.conflict_target,
            self.update_set.join(", ")
        )
    }

    /// A large batch. Rows that are all new (none of their keys was found) are `COPY`ed straight
    /// into the entity's table, under a savepoint: should another writer have inserted one of
    /// the keys since, the copy is undone and the batch merged instead. Otherwise the rows are
    /// `COPY`ed into a temporary table of exactly the written columns (made from the entity's
    /// table, so types agree), then merged by one set-based statement; the temporary table is
    /// dropped before the merge returns (and with the transaction, should it fail). Values travel
    /// in COPY's text stream, encoded straight from the rows.
    async fn by_copy(
        &self,
        conn: &mut Conn,
        writes: Vec<(Uuid, &NewRow)>,
        all_new: bool,
        first_version: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        if all_new && self.copy_straight(conn, &writes, first_version, now).await? {
            return Ok(());
        }
        let columns = self.columns.join(", ");
        conn.execute(
            &format!(
                "CREATE TEMPORARY TABLE {COPY_STAGE} ON COMMIT DROP AS SELECT {columns} FROM {} WITH NO DATA",
                self.table.name
            ),
            (),
        )
        .await?;
        self.copy_into(conn, COPY_STAGE, &writes, first_version, now).await?;
        conn.execute(&self.insert_from(&format!("SELECT {columns} FROM {COPY_STAGE}")), ()).await?;
        conn.execute(&format!("DROP TABLE {COPY_STAGE}"), ()).await?;
        Ok(())
    }

    /// `COPY`s `writes` straight into the entity's table under a savepoint; false, having written
    /// nothing, when one of their keys exists.
    async fn copy_straight(
        &self,
        conn: &mut Conn,
        writes: &[(Uuid, &NewRow)],
        first_version: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        conn.savepoint(COPY_SAVEPOINT).await?;
        match self.copy_into(conn, &self.table.name, writes, first_version, now).await {
            Ok(()) => {
                conn.release_savepoint(COPY_SAVEPOINT).await?;
                Ok(true)
            }
            Err(e) if e.is_unique_violation() => {
                conn.rollback_to_savepoint(COPY_SAVEPOINT).await?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// `COPY table (columns) FROM STDIN` of `writes`, versions counted from `first_version`.
    async fn copy_into(
        &self,
        conn: &mut Conn,
        table: &str,
        writes: &[(Uuid, &NewRow)],
        first_version: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let entity = self.table.entity;
        let mut copy = conn.copy_in(&format!("COPY {table} ({}) FROM STDIN", self.columns.join(", "))).await?;
        let now = Value::DateTime(now);
        for (n, (id, row)) in writes.iter().enumerate() {
            let data = copy.data();
            data.value(&Value::Guid(*id));
            if entity.company_specific {
                data.text(row.company.as_deref().unwrap_or_default());
            }
            data.value(&now);
            data.value(&now);
            data.value(&Value::Int(first_version + n as i64));
            for &i in self.fields {
                data.value(&row.values[i]);
            }
            data.end_row();
            copy.send_full().await?;
        }
        copy.finish().await?;
        Ok(())
    }

    /// A small batch: one statement that takes the batch's change versions (`ferry_take_versions`
    /// in an uncorrelated subquery, run once, see [`allocate_versions`]) and inserts
    /// `SELECT … FROM UNNEST(…)` with one typed array per column — a constant statement text, so
    /// it is prepared once; without a `WITH` of its own, so it can join other statements.
    fn by_arrays(&self, writes: Vec<(Uuid, &NewRow)>, now: DateTime<Utc>) -> (String, Vec<Arg>) {
        let entity = self.table.entity;
        let fields = self.fields;
        let n = writes.len();
        let mut arrays: Vec<(ColType, Vec<Value>)> = Vec::with_capacity(self.columns.len());
        let mut ids = Vec::with_capacity(n);
        let mut companies = Vec::with_capacity(n);
        let mut field_values: Vec<Vec<Value>> = fields.iter().map(|_| Vec::with_capacity(n)).collect();
        for (id, row) in writes {
            ids.push(Value::Guid(id));
            companies.push(Value::String(row.company.clone().unwrap_or_default()));
            for (k, &i) in fields.iter().enumerate() {
                field_values[k].push(row.values[i].clone());
            }
        }
        arrays.push((ColType::Guid, ids));
        if entity.company_specific {
            arrays.push((ColType::Text, companies));
        }
        arrays.push((ColType::DateTime, vec![Value::DateTime(now); n]));
        arrays.push((ColType::DateTime, vec![Value::DateTime(now); n]));
        // The version column (after the bookkeeping arrays) is counted from the first version.
        let before_version = arrays.len();
        for (k, values) in field_values.into_iter().enumerate() {
            arrays.push((ColType::of(&entity.fields[fields[k]].ty), values));
        }
        let unnest: Vec<String> =
            arrays.iter().enumerate().map(|(k, (c, _))| format!("${}{}", k + 1, Dialect::array_cast(*c))).collect();
        let mut select: Vec<String> = (1..=arrays.len()).map(|k| format!("u.a{k}")).collect();
        select.insert(before_version, format!("(SELECT ferry_take_versions(${})) + u.o - 1", arrays.len() + 1));
        let aliases: Vec<String> = (1..=arrays.len()).map(|k| format!("a{k}")).collect();
        let sql = self.insert_from(&format!(
            "SELECT {} FROM UNNEST({}) WITH ORDINALITY AS u({}, o)",
            select.join(", "),
            unnest.join(", "),
            aliases.join(", ")
        ));
        let mut args = columns_args(arrays);
        args.push(Arg::Value(Value::Int(n as i64), None));
        (sql, args)
    }
}

/// Whole columns as array arguments (PostgreSQL `UNNEST`).
fn columns_args(columns: Vec<(ColType, Vec<Value>)>) -> Vec<Arg> {
    columns.into_iter().map(|(ty, values)| Arg::Column(ty, values)).collect()
}

/// A map key for a natural key and company (unambiguous: parts are length-prefixed).
fn key_text(entity: &Entity, company: &Option<String>, values: &[Value]) -> String {
    let mut out = String::new();
    let company = if entity.company_specific { company.clone().unwrap_or_default() } else { String::new() };
    for part in std::iter::once(company).chain(entity.key.iter().map(|&i| values[i].to_text().unwrap_or_default())) {
        out.push_str(&part.len().to_string());
        out.push(':');
        out.push_str(&part);
    }
    out
}

/// The stored rows with the keys of `rows`, by [`key_text`].
async fn existing_rows(
    conn: &mut Conn,
    table: &EntityTable<'_>,
    rows: &[NewRow],
) -> StoreResult<HashMap<String, StoredRow>> {
    let entity = table.entity;
    let key_columns = table.key_columns();
    let (select, types) = table.select_list();
    let mut found = HashMap::with_capacity(rows.len());
    if conn.dialect() == Dialect::Postgres {
        // One statement with one typed array per key column, joined on the key index.
        let mut key_types = Vec::new();
        if entity.company_specific {
            key_types.push(ColType::Text);
        }
        key_types.extend(entity.key.iter().map(|&i| ColType::of(&entity.fields[i].ty)));
        let mut arrays: Vec<(ColType, Vec<Value>)> =
            key_types.iter().map(|&c| (c, Vec::with_capacity(rows.len()))).collect();
        for row in rows {
            let mut k = 0;
            if entity.company_specific {
                arrays[0].1.push(Value::String(row.company.clone().unwrap_or_default()));
                k = 1;
            }
            for &i in &entity.key {
                arrays[k].1.push(row.values[i].clone());
                k += 1;
            }
        }
        let names: Vec<String> = (0..key_columns.len()).map(|i| format!("ferry_key{i}")).collect();
        let params: Vec<String> =
            key_types.iter().enumerate().map(|(k, c)| format!("${}{}", k + 1, Dialect::array_cast(*c))).collect();
        let on: Vec<String> =
            key_columns.iter().zip(&names).map(|(col, v)| format!("{}.{col} = ferry_keys.{v}", table.name)).collect();
        let sql = format!(
            "SELECT {select} FROM {} JOIN UNNEST({}) AS ferry_keys ({}) ON {}",
            table.name,
            params.join(", "),
            names.join(", "),
            on.join(" AND ")
        );
        for r in conn.fetch(&sql, columns_args(arrays), &types).await? {
            let stored = table.decode(r)?;
            found.insert(key_text(entity, &stored.company, &stored.values), stored);
        }
        return Ok(found);
    }
    // One statement whose row-value IN list SQLite turns into an ephemeral index (a small batch).
    let mut sql = Sql::new(conn.dialect());
    sql.push("SELECT ").push(&select).push(" FROM ").push(&table.name);
    sql.push(" WHERE (").push(&key_columns.join(", ")).push(") IN (");
    for (n, row) in rows.iter().enumerate() {
        sql.push(if n == 0 { "(" } else { ", (" });
        if entity.company_specific {
            sql.param(Value::String(row.company.clone().unwrap_or_default())).push(", ");
        }
        for (k, &i) in entity.key.iter().enumerate() {
            sql.push(if k == 0 { "" } else { ", " }).param(row.values[i].clone());
        }
        sql.push(")");
    }
    sql.push(")");
    let stored_rows = conn.query(sql, &types).await?;
    for r in stored_rows {
        let stored = table.decode(r)?;
        found.insert(key_text(entity, &stored.company, &stored.values), stored);
    }
    Ok(found)
}

/// The id a new row gets: its primary id when it has one, else a new (time-ordered) one.
pub(crate) fn row_id(entity: &Entity, row: &NewRow) -> Uuid {
    match entity.primary_id.map(|i| &row.values[i]) {
        Some(Value::Guid(g)) => *g,
        _ => Uuid::now_v7(),
    }
}

/// The company and lookup-field values of each row (what lookup checks need).
fn lookup_values<'r>(entity: &Entity, rows: &'r [NewRow]) -> Vec<crate::rows::PartialRow<'r>> {
    // The lookup fields, and the key when a lookup names this entity: the batch's own rows count.
    let self_lookup = entity.fields.iter().any(|f| f.lookup.as_ref().is_some_and(|l| l.entity == entity.collection));
    let lookups: Vec<usize> = (0..entity.fields.len())
        .filter(|&i| entity.fields[i].lookup.is_some() || (self_lookup && entity.key.contains(&i)))
        .collect();
    rows.iter().map(|r| (r.company.as_deref(), lookups.iter().map(|&i| (i, &r.values[i])).collect())).collect()
}

/// One lookup value that names no record.
#[derive(Clone, Debug, PartialEq)]
pub struct LookupMiss {
    /// Index of the row in the batch.
    pub row: usize,
    pub field: usize,
    pub value: Value,
    /// `Collection.Field (company x)`.
    pub target: String,
}

pub(crate) async fn missing_lookups(
    conn: &mut Conn,
    catalog: &Catalog,
    entity: &Entity,
    rows: &[NewRow],
) -> StoreResult<Vec<LookupMiss>> {
    crate::rows::find_missing_lookups(conn, catalog, entity, &lookup_values(entity, rows)).await
}
