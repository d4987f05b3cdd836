//! An import batch on SQLite, in one direct session on the writer's connection
//! ([`ferry_sql::Conn::sqlite_direct`]): each row is first inserted with `ON CONFLICT (key) DO
//! NOTHING`, so a new row costs one statement and no read; a row whose key exists is then read by
//! its key, compared, and updated only when a field it takes changed. Change versions are counted
//! on from the clock read at the start, and the clock is moved past them at the end, in the same
//! transaction: SQLite has one writer, which holds the write lock from its `BEGIN IMMEDIATE`.

use crate::error::StoreResult;
use crate::sql::{EntityTable, ID, MODIFIED_AT, VERSION, quote};
use crate::upsert::BatchCounts;
use chrono::{DateTime, Utc};
use ferry_domain::NewRow;
use ferry_model::Value;
use ferry_sql::{ColType, SqliteDirect, SqliteStatement, SqliteValue};

/// Upserts `rows` (no key twice) into `table`; existing rows take `updated_fields`.
pub(crate) fn import_rows(
    db: &SqliteDirect,
    table: &EntityTable<'_>,
    rows: &[NewRow],
    updated_fields: &[usize],
    now: DateTime<Utc>,
) -> StoreResult<BatchCounts> {
    let entity = table.entity;
    let (fields, columns) = table.written_columns(rows.iter());
    let insert = format!(
        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO NOTHING",
        table.name,
        columns.join(", "),
        vec!["?"; columns.len()].join(", "),
        table.key_columns().join(", ")
    );
    let mut insert = db.prepare(&insert)?;
    let mut existing = None;

    let clock = db.prepare("SELECT version FROM ferry_clock WHERE id = 1")?.query_one(&[ColType::Int64])?;
    let mut version = match clock.as_deref() {
        Some([Value::Int(v)]) => *v,
        _ => return Err(crate::StoreError::corrupt("ferry_clock.version", "the change clock has no version")),
    };
    let start = version;
    let now_value = SqliteValue::of(&Value::DateTime(now));
    let mut counts = BatchCounts::default();
    for row in rows {
        let next = version + 1;
        insert.bind(&Value::Guid(crate::upsert::row_id(entity, row)))?;
        if entity.company_specific {
            insert.bind_text(row.company.as_deref().unwrap_or_default())?;
        }
        insert.bind_stored(&now_value)?.bind_stored(&now_value)?.bind(&Value::Int(next))?;
        for &i in &fields {
            insert.bind(&row.values[i])?;
        }
        if insert.execute()? == 1 {
            counts.inserted += 1;
        } else {
            let existing = match &mut existing {
                Some(existing) => existing,
                None => existing.insert(Existing::prepare(db, table, updated_fields)?),
            };
            if !existing.update(row, updated_fields, &now_value, next)? {
                counts.unchanged += 1;
                continue;
            }
            counts.updated += 1;
        }
        version = next;
    }
    if version != start {
        db.prepare("UPDATE ferry_clock SET version = ? WHERE id = 1")?.bind(&Value::Int(version))?.execute()?;
    }
    Ok(counts)
}

/// The statements for rows whose key exists: read by key, update by id.
struct Existing<'d, 't> {
    table: &'t EntityTable<'t>,
    read: SqliteStatement<'d>,
    types: Vec<ColType>,
    update: SqliteStatement<'d>,
}

impl<'d, 't> Existing<'d, 't> {
    fn prepare(db: &'d SqliteDirect, table: &'t EntityTable<'t>, updated_fields: &[usize]) -> StoreResult<Self> {
        let (select, types) = table.select_list();
        let equal: Vec<String> = table.key_columns().iter().map(|c| format!("{c} = ?")).collect();
        let read = db.prepare(&format!("SELECT {select} FROM {} WHERE {}", table.name, equal.join(" AND ")))?;
        let mut set: Vec<String> =
            updated_fields.iter().map(|&i| format!("{} = ?", quote(&table.entity.fields[i].name))).collect();
        set.extend([format!("{} = ?", quote(MODIFIED_AT)), format!("{} = ?", quote(VERSION))]);
        let update = db.prepare(&format!("UPDATE {} SET {} WHERE {} = ?", table.name, set.join(", "), quote(ID)))?;
        Ok(Existing { table, read, types, update })
    }

    /// Updates the stored row with `row`'s key when one of `updated_fields` differs, with
    /// `version`; false when nothing changed.
    fn update(&mut self, row: &NewRow, updated_fields: &[usize], now: &SqliteValue, version: i64) -> StoreResult<bool> {
        let entity = self.table.entity;
        if entity.company_specific {
            self.read.bind_text(row.company.as_deref().unwrap_or_default())?;
        }
        for &i in &entity.key {
            self.read.bind(&row.values[i])?;
        }
        let Some(stored) = self.read.query_one(&self.types)? else {
            return Err(crate::StoreError::corrupt("_id", "a row whose key conflicted was not found"));
        };
        let stored = self.table.decode(stored)?;
        if updated_fields.iter().all(|&i| stored.values[i] == row.values[i]) {
            return Ok(false);
        }
        for &i in updated_fields {
            self.update.bind(&row.values[i])?;
        }
        self.update.bind_stored(now)?.bind(&Value::Int(version))?.bind(&Value::Guid(stored.id))?;
        self.update.execute()?;
        Ok(true)
    }
}
