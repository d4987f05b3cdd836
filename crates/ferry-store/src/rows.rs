//! Reads and writes of entity rows, written once over [`Conn`] for both backends. Every write
//! takes its change versions before it touches rows (see [`allocate_versions`]; an insert of the
//! rows one statement holds takes them in that statement — on SQLite from the clock bumped in
//! the same request).

use crate::error::{StoreError, StoreResult};
use crate::model::RowQuery;
use crate::sql::{COMPANY, CREATED_AT, EntityTable, ID, MODIFIED_AT, VERSION, quote};
use crate::upsert::LookupMiss;
use chrono::{DateTime, Utc};
use ferry_domain::{Changes, CompanyScope, NewRow, RowKey, StoredRow, Tombstone};
use ferry_model::{Catalog, Entity, Value};
use ferry_query::BoundExpr;
use ferry_sql::{Batch, ColType, Conn, Dialect, RowExt, Sql};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use uuid::Uuid;

/// Parameters per statement stay well below SQLite's 32,766 and PostgreSQL's 65,535.
const PARAMS_PER_STATEMENT_MAX: usize = 30_000;
/// Values per `IN (...)` list when checking lookups.
const LOOKUP_CHUNK: usize = 500;

/// Takes `count` consecutive change versions; answers the first (with `count` 0, takes none
/// and answers 0).
///
/// SQLite bumps the single row of `ferry_clock`; its one writer at a time keeps versions in
/// commit order. PostgreSQL takes them from a sequence and marks the transaction as running
/// with an advisory lock keyed by the first version (`ferry_take_versions`, migration 0005), which
/// [`current_version`] takes into account: no lock is held on shared rows, so writers of every
/// node commit in parallel.
pub(crate) async fn allocate_versions(conn: &mut Conn, count: usize) -> StoreResult<i64> {
    if count == 0 {
        return Ok(0);
    }
    let sql = match conn.dialect() {
        Dialect::Postgres => "SELECT ferry_take_versions($1)",
        _ => "UPDATE ferry_clock SET version = version + $1 WHERE id = 1 RETURNING version",
    };
    let rows = conn.fetch(sql, vec![Value::Int(count as i64)], &[ColType::Int64]).await?;
    let answer = rows[0].int(0)?;
    Ok(match conn.dialect() {
        Dialect::Postgres => answer,
        _ => answer - count as i64 + 1,
    })
}

/// The newest version V such that every version up to V is committed (or rolled back): what
/// readers of changes may read up to without ever skipping a change that commits later.
pub(crate) async fn current_version(conn: &mut Conn) -> StoreResult<i64> {
    let sql = match conn.dialect() {
        Dialect::Postgres => "SELECT ferry_visible_version()",
        _ => "SELECT version FROM ferry_clock WHERE id = 1",
    };
    let rows = conn.fetch(sql, (), &[ColType::Int64]).await?;
    Ok(rows[0].int(0)?)
}

/// The company of a row and some of its field values (by field index).
pub(crate) type PartialRow<'a> = (Option<&'a str>, Vec<(usize, &'a Value)>);

/// Checks that every lookup value in `rows` names an existing record of its target entity.
pub(crate) async fn check_lookups(
    conn: &mut Conn,
    catalog: &Catalog,
    entity: &Entity,
    rows: &[PartialRow<'_>],
) -> StoreResult<()> {
    match find_missing_lookups(conn, catalog, entity, rows).await?.into_iter().next() {
        Some(miss) => Err(StoreError::LookupMissing {
            field: entity.fields[miss.field].name.clone(),
            value: miss.value.describe(),
            target: miss.target,
        }),
        None => Ok(()),
    }
}

/// Every lookup value in `rows` that names no record of its target entity. A lookup into the
/// rows' own entity is also met by one of `rows` (when they hold its key): they are written
/// together, as an account and its parent account in one file.
pub(crate) async fn find_missing_lookups(
    conn: &mut Conn,
    catalog: &Catalog,
    entity: &Entity,
    rows: &[PartialRow<'_>],
) -> StoreResult<Vec<LookupMiss>> {
    let mut misses = Vec::new();
    for (field_index, field) in entity.fields.iter().enumerate() {
        let Some(lookup) = &field.lookup else { continue };
        let Some(target) = catalog.by_collection(&lookup.entity) else { continue };
        let Some((target_field, _)) = target.field(&lookup.field) else { continue };
        // Distinct wanted values per company of the target (None for shared targets), compared
        // by their canonical text (values are not hashable: reals).
        let mut wanted: BTreeMap<Option<&str>, Wanted<'_>> = BTreeMap::new();
        for (company, values) in rows {
            for &(i, value) in values {
                if i == field_index && !value.is_null() {
                    let scope = if target.company_specific { *company } else { None };
                    let (list, seen) = wanted.entry(scope).or_default();
                    if seen.insert(lookup_text(value)) {
                        list.push(value);
                    }
                }
            }
        }
        let table = EntityTable::new(target, conn.dialect());
        let column = table.column_of_field(target_field);
        let col_type = ColType::of(&target.fields[target_field].ty);
        for (company, (values, _)) in wanted {
            let mut missing: HashSet<String> = HashSet::new();
            for chunk in values.chunks(LOOKUP_CHUNK) {
                let mut sql = Sql::new(conn.dialect());
                sql.push("SELECT ").push(&column).push(" FROM ").push(&table.name).push(" WHERE ");
                if let Some(company) = company {
                    sql.push(&quote(COMPANY)).push(" = ").param(Value::String(company.to_owned())).push(" AND ");
                }
                sql.push(&column).push(" IN (");
                for (n, value) in chunk.iter().enumerate() {
                    if n > 0 {
                        sql.push(", ");
                    }
                    sql.param((*value).clone());
                }
                sql.push(")");
                let found = conn.query(sql, &[col_type]).await?;
                let found: HashSet<String> =
                    found.into_iter().map(|mut r| r.remove(0).to_text().unwrap_or_default()).collect();
                missing.extend(chunk.iter().map(|v| lookup_text(v).into_owned()).filter(|v| !found.contains(v)));
            }
            if target.collection == entity.collection {
                for (row_company, values) in rows {
                    let scope = if target.company_specific { *row_company } else { None };
                    for &(i, value) in values {
                        if i == target_field && scope == company && !value.is_null() {
                            missing.remove(lookup_text(value).as_ref());
                        }
                    }
                }
            }
            if missing.is_empty() {
                continue;
            }
            let company_note = company.map(|c| format!(" (company {c})")).unwrap_or_default();
            let target_text = format!("{}.{}{company_note}", target.collection, lookup.field);
            for (row, (row_company, values)) in rows.iter().enumerate() {
                let scope = if target.company_specific { *row_company } else { None };
                if scope != company {
                    continue;
                }
                for &(i, value) in values {
                    if i == field_index && !value.is_null() && missing.contains(lookup_text(value).as_ref()) {
                        misses.push(LookupMiss {
                            row,
                            field: field_index,
                            value: value.clone(),
                            target: target_text.clone(),
                        });
                    }
                }
            }
        }
    }
    misses.sort_by_key(|m| (m.row, m.field));
    Ok(misses)
}

/// The distinct values one company's rows look up, each once, and their texts.
type Wanted<'a> = (Vec<&'a Value>, HashSet<Cow<'a, str>>);

/// A lookup value's canonical text (the text itself for text, which most keys are).
fn lookup_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_text().unwrap_or_default()),
    }
}

pub(crate) async fn insert(
    conn: &mut Conn,
    catalog: &Catalog,
    entity: &Entity,
    rows: Vec<NewRow>,
    now: DateTime<Utc>,
) -> StoreResult<Vec<StoredRow>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let table = EntityTable::new(entity, conn.dialect());
    let mut columns = vec![quote(ID)];
    if entity.company_specific {
        columns.push(quote(COMPANY));
    }
    columns.extend([quote(CREATED_AT), quote(MODIFIED_AT), quote(VERSION)]);
    let fields: Vec<usize> = table.stored_fields().collect();
    columns.extend(fields.iter().map(|&i| quote(&entity.fields[i].name)));
    let rows_per_statement = (PARAMS_PER_STATEMENT_MAX / columns.len()).max(1);
    // Each statement takes its versions itself (one round trip less): on PostgreSQL from the
    // sequence, on SQLite — when the rows fit one statement — from the clock bumped in the same
    // request, each row's version counted back from it. One row's lookups are checked in its
    // insert: only when that inserted nothing are they read, to name the missing one.
    let postgres = conn.dialect() == Dialect::Postgres;
    let own_versions = postgres || rows.len() <= rows_per_statement;
    let mut guarded = own_versions && rows.len() == 1;
    if !guarded {
        check_lookups(conn, catalog, entity, &whole_rows(rows.iter().map(|r| (&r.company, &r.values)))).await?;
    }
    let first_version = if own_versions { 0 } else { allocate_versions(conn, rows.len()).await? };
    let mut stored: Vec<StoredRow> = rows
        .into_iter()
        .enumerate()
        .map(|(n, row)| {
            let id = crate::upsert::row_id(entity, &row);
            let mut values = row.values;
            if let Some(i) = entity.primary_id {
                values[i] = Value::Guid(id);
            }
            StoredRow {
                id,
                company: row.company,
                created_at: now,
                modified_at: now,
                version: first_version + n as i64,
                values,
            }
        })
        .collect();

    loop {
        // Whether the guard inserted nothing: a lookup names no record.
        let mut refused = false;
        for chunk in stored.chunks_mut(rows_per_statement) {
            let mut sql = Sql::new(conn.dialect());
            if postgres {
                sql.push("WITH v AS MATERIALIZED (SELECT ferry_take_versions(").param(Value::Int(chunk.len() as i64));
                sql.push(") AS first) ");
            }
            sql.push("INSERT INTO ").push(&table.name).push(" (").push(&columns.join(", "));
            sql.push(if guarded { ") SELECT " } else { ") VALUES " });
            let last = chunk.len() - 1;
            for (n, row) in chunk.iter().enumerate() {
                if !guarded {
                    sql.push(if n == 0 { "(" } else { ", (" });
                }
                sql.param(Value::Guid(row.id));
                if entity.company_specific {
                    sql.push(", ").param(Value::String(row.company.clone().unwrap_or_default()));
                }
                sql.push(", ").param(Value::DateTime(now));
                sql.push(", ").param(Value::DateTime(now));
                if postgres {
                    sql.push(&format!(", (SELECT first FROM v) + {n}"));
                } else if own_versions {
                    sql.push(&format!(", (SELECT version FROM ferry_clock WHERE id = 1) - {}", last - n));
                } else {
                    sql.push(", ").param(Value::Int(row.version));
                }
                // Typed, so a NULL does not keep PostgreSQL from preparing the statement once.
                for &i in &fields {
                    sql.push(", ").param_typed(row.values[i].clone(), ColType::of(&entity.fields[i].ty));
                }
                if !guarded {
                    sql.push(")");
                }
            }
            if guarded {
                push_lookups_exist(&mut sql, catalog, entity, &chunk[0]);
            }
            if !own_versions {
                conn.run(sql).await.map_err(|e| conflict_or(e.into(), entity, chunk))?;
                continue;
            }
            // The first version the statement took, or none when the guard inserted nothing.
            let first = if postgres {
                sql.push(" RETURNING (SELECT first FROM v)");
                let answered =
                    conn.query(sql, &[ColType::Int64]).await.map_err(|e| conflict_or(e.into(), entity, chunk))?;
                answered.first().map(|r| r.int(0)).transpose()?
            } else {
                sql.push(&format!(" RETURNING {}", quote(VERSION)));
                let mut request = Batch::new();
                request.push(
                    "UPDATE ferry_clock SET version = version + $1 WHERE id = 1",
                    vec![Value::Int(chunk.len() as i64)],
                );
                let (text, args) = sql.into_parts();
                request.push(text, args);
                let answered = conn
                    .fetch_batch(request, &[ColType::Int64])
                    .await
                    .map_err(|e| conflict_or(e.into(), entity, chunk))?;
                let mut newest = None;
                for row in &answered {
                    newest = newest.max(Some(row.int(0)?));
                }
                newest.map(|v| v - last as i64)
            };
            let Some(first) = first else {
                refused = true;
                break;
            };
            for (n, row) in chunk.iter_mut().enumerate() {
                row.version = first + n as i64;
            }
        }
        if !refused {
            return Ok(stored);
        }
        // Say which lookup names no record. Should they all be there by now, insert again
        // without the guard.
        check_lookups(conn, catalog, entity, &whole_rows(stored.iter().map(|r| (&r.company, &r.values)))).await?;
        guarded = false;
    }
}

/// Every value of each row, for lookup checks.
fn whole_rows<'a>(rows: impl Iterator<Item = (&'a Option<String>, &'a Vec<Value>)>) -> Vec<PartialRow<'a>> {
    rows.map(|(company, values)| (company.as_deref(), values.iter().enumerate().collect())).collect()
}

/// ` WHERE EXISTS (…) AND …`: every lookup value of `row` names a record of its target (nothing
/// when it has none), as [`find_missing_lookups`] checks them.
fn push_lookups_exist(sql: &mut Sql, catalog: &Catalog, entity: &Entity, row: &StoredRow) {
    let mut first = true;
    for (field_index, field) in entity.fields.iter().enumerate() {
        let Some(lookup) = &field.lookup else { continue };
        let Some(target) = catalog.by_collection(&lookup.entity) else { continue };
        let Some((target_field, _)) = target.field(&lookup.field) else { continue };
        let value = &row.values[field_index];
        if value.is_null() {
            continue;
        }
        let table = EntityTable::new(target, sql.dialect());
        sql.push(if first { " WHERE EXISTS (SELECT 1 FROM " } else { " AND EXISTS (SELECT 1 FROM " });
        first = false;
        sql.push(&table.name).push(" WHERE ");
        if target.company_specific
            && let Some(company) = &row.company
        {
            sql.push(&quote(COMPANY)).push(" = ").param(Value::String(company.clone())).push(" AND ");
        }
        sql.push(&table.column_of_field(target_field)).push(" = ").param(value.clone()).push(")");
    }
}

/// A unique violation means a key that already exists (or appears twice in the batch).
fn conflict_or(error: StoreError, entity: &Entity, rows: &[StoredRow]) -> StoreError {
    let is_unique = error.is_unique_violation();
    if !is_unique {
        return error;
    }
    let key = match rows {
        [only] => only.key(entity).describe(entity),
        _ => "in this batch".to_string(),
    };
    StoreError::Conflict { key }
}

pub(crate) async fn update(
    conn: &mut Conn,
    catalog: &Catalog,
    entity: &Entity,
    key: &RowKey,
    changes: Vec<(usize, Value)>,
    now: DateTime<Utc>,
) -> StoreResult<Option<StoredRow>> {
    check_lookups(conn, catalog, entity, &[(key.company.as_deref(), changes.iter().map(|(i, v)| (*i, v)).collect())])
        .await?;
    let version = allocate_versions(conn, 1).await?;
    let table = EntityTable::new(entity, conn.dialect());
    let mut sql = Sql::new(conn.dialect());
    sql.push("UPDATE ").push(&table.name).push(" SET ");
    for (i, value) in changes {
        if Some(i) == entity.primary_id {
            continue;
        }
        sql.push(&table.column_of_field(i))
            .push(" = ")
            .param_typed(value, ColType::of(&entity.fields[i].ty))
            .push(", ");
    }
    sql.push(&quote(MODIFIED_AT)).push(" = ").param(Value::DateTime(now));
    sql.push(", ").push(&quote(VERSION)).push(" = ").param(Value::Int(version));
    sql.push(" WHERE ");
    table.push_key_predicate(&mut sql, key);
    let (select, types) = table.select_list();
    sql.push(" RETURNING ").push(&select);
    let mut rows = conn.query(sql, &types).await?;
    rows.pop().map(|r| table.decode(r)).transpose()
}

/// Deletes one row and leaves its tombstone; answers whether a row was deleted.
pub(crate) async fn delete(conn: &mut Conn, entity: &Entity, key: &RowKey, now: DateTime<Utc>) -> StoreResult<bool> {
    let version = allocate_versions(conn, 1).await?;
    let table = EntityTable::new(entity, conn.dialect());
    let mut sql = Sql::new(conn.dialect());
    sql.push("DELETE FROM ").push(&table.name).push(" WHERE ");
    table.push_key_predicate(&mut sql, key);
    sql.push(" RETURNING ").push(&quote(ID));
    let deleted = conn.query(sql, &[ColType::Guid]).await?;
    let Some(row) = deleted.first() else { return Ok(false) };
    let key_text: Vec<String> = key.values.iter().map(|v| v.to_text().unwrap_or_default()).collect();
    let key_json = serde_json::to_string(&key_text).expect("strings serialize");
    conn.execute(
        "INSERT INTO ferry_tombstones (entity, id, company, key_json, version, deleted_at) VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            Value::String(entity.logical_name.clone()),
            Value::Guid(row.guid(0)?),
            key.company.clone().map_or(Value::Null, Value::String),
            Value::String(key_json),
            Value::Int(version),
            Value::DateTime(now),
        ],
    )
    .await?;
    Ok(true)
}

pub(crate) async fn get(conn: &mut Conn, entity: &Entity, key: &RowKey) -> StoreResult<Option<StoredRow>> {
    let table = EntityTable::new(entity, conn.dialect());
    let (select, types) = table.select_list();
    let mut sql = Sql::new(conn.dialect());
    sql.push("SELECT ").push(&select).push(" FROM ").push(&table.name).push(" WHERE ");
    table.push_key_predicate(&mut sql, key);
    let mut rows = conn.query(sql, &types).await?;
    rows.pop().map(|r| table.decode(r)).transpose()
}

pub(crate) async fn get_by_id(conn: &mut Conn, entity: &Entity, id: Uuid) -> StoreResult<Option<StoredRow>> {
    let table = EntityTable::new(entity, conn.dialect());
    let (select, types) = table.select_list();
    let mut sql = Sql::new(conn.dialect());
    sql.push("SELECT ").push(&select).push(" FROM ").push(&table.name).push(" WHERE ").push(&quote(ID)).push(" = ");
    sql.param(Value::Guid(id));
    let mut rows = conn.query(sql, &types).await?;
    rows.pop().map(|r| table.decode(r)).transpose()
}

/// `(Id, version)` of every row, ordered by `Id` (for comparing a replica with the source).
pub(crate) async fn row_versions(conn: &mut Conn, entity: &Entity) -> StoreResult<Vec<(Uuid, i64)>> {
    let table = EntityTable::new(entity, conn.dialect());
    let sql = format!("SELECT {}, {} FROM {} ORDER BY {}", quote(ID), quote(VERSION), table.name, quote(ID));
    let rows = conn.fetch(&sql, (), &[ColType::Guid, ColType::Int64]).await?;
    rows.iter().map(|r| Ok((r.guid(0)?, r.int(1)?))).collect()
}

fn push_where(table: &EntityTable<'_>, sql: &mut Sql, scope: &CompanyScope, filter: Option<&BoundExpr>) {
    sql.push(" WHERE 1 = 1");
    if let (CompanyScope::One(company), true) = (scope, table.entity.company_specific) {
        sql.push(" AND ").push(&quote(COMPANY)).push(" = ").param(Value::String(company.clone()));
    }
    if let Some(filter) = filter {
        sql.push(" AND ");
        table.push_filter(sql, filter, false);
    }
}

/// The statement of a row query, with the column types of its rows and the table that decodes them.
pub(crate) fn select<'e>(entity: &'e Entity, dialect: Dialect, q: &RowQuery) -> (EntityTable<'e>, Sql, Vec<ColType>) {
    let table = EntityTable::new(entity, dialect);
    let (select, types) = table.select_list();
    let mut sql = Sql::new(dialect);
    sql.push("SELECT ").push(&select).push(" FROM ").push(&table.name);
    push_where(&table, &mut sql, &q.scope, q.filter.as_ref());
    if let Some(after) = &q.after {
        sql.push(" AND ");
        let company_fixed = matches!(q.scope, CompanyScope::One(_));
        table.push_after_key(&mut sql, after, company_fixed);
    }
    if let Some((above, upto)) = q.versions {
        sql.push(" AND ").push(&quote(VERSION)).push(" > ").param(Value::Int(above));
        sql.push(" AND ").push(&quote(VERSION)).push(" <= ").param(Value::Int(upto));
    }
    sql.push(" ORDER BY ").push(&table.order_by(&q.order));
    sql.push(&format!(" LIMIT {} OFFSET {}", q.limit, q.offset));
    (table, sql, types)
}

pub(crate) async fn count(
    conn: &mut Conn,
    entity: &Entity,
    scope: &CompanyScope,
    filter: Option<&BoundExpr>,
) -> StoreResult<u64> {
    let table = EntityTable::new(entity, conn.dialect());
    let mut sql = Sql::new(conn.dialect());
    sql.push("SELECT COUNT(*) FROM ").push(&table.name);
    push_where(&table, &mut sql, scope, filter);
    let rows = conn.query(sql, &[ColType::Int64]).await?;
    Ok(rows[0].int(0)?.max(0) as u64)
}

/// Everything that changed after `since`, deletes included, at most `limit` changes.
pub(crate) async fn changes_since(
    conn: &mut Conn,
    entity: &Entity,
    scope: &CompanyScope,
    since: i64,
    limit: usize,
) -> StoreResult<Changes> {
    // Every version up to this one is committed (see `current_version`).
    let upto = current_version(conn).await?;
    let table = EntityTable::new(entity, conn.dialect());
    let (select, types) = table.select_list();
    let company = match (scope, entity.company_specific) {
        (CompanyScope::One(c), true) => Some(c.clone()),
        _ => None,
    };
    let mut sql = Sql::new(conn.dialect());
    sql.push("SELECT ").push(&select).push(" FROM ").push(&table.name).push(" WHERE ");
    sql.push(&quote(VERSION)).push(" > ").param(Value::Int(since));
    sql.push(" AND ").push(&quote(VERSION)).push(" <= ").param(Value::Int(upto));
    if let Some(c) = &company {
        sql.push(" AND ").push(&quote(COMPANY)).push(" = ").param(Value::String(c.clone()));
    }
    sql.push(" ORDER BY ").push(&quote(VERSION)).push(&format!(" LIMIT {}", limit + 1));
    let rows: Vec<StoredRow> =
        conn.query(sql, &types).await?.into_iter().map(|r| table.decode(r)).collect::<StoreResult<_>>()?;

    let deleted = deleted_between(conn, entity, company.as_deref(), since, upto, limit + 1).await?;

    // Merge both version-ordered lists and cut at `limit` changes.
    let mut versions: BTreeSet<i64> = rows.iter().map(|r| r.version).collect();
    versions.extend(deleted.iter().map(|t| t.version));
    if versions.len() <= limit {
        return Ok(Changes { rows, deleted, through_version: upto.max(since), more: false });
    }
    let through = *versions.iter().nth(limit - 1).expect("more than limit versions");
    Ok(Changes {
        rows: rows.into_iter().filter(|r| r.version <= through).collect(),
        deleted: deleted.into_iter().filter(|t| t.version <= through).collect(),
        through_version: through,
        more: true,
    })
}

/// Up to `limit` deletes of `entity` (of `company`, for company-specific entities) with versions
/// above `since` and at most `upto`, in version order.
pub(crate) async fn deleted_between(
    conn: &mut Conn,
    entity: &Entity,
    company: Option<&str>,
    since: i64,
    upto: i64,
    limit: usize,
) -> StoreResult<Vec<Tombstone>> {
    let mut sql = Sql::new(conn.dialect());
    sql.push("SELECT id, company, key_json, version, deleted_at FROM ferry_tombstones WHERE entity = ");
    sql.param(Value::String(entity.logical_name.clone()));
    sql.push(" AND version > ").param(Value::Int(since));
    sql.push(" AND version <= ").param(Value::Int(upto));
    if let Some(c) = company {
        sql.push(" AND company = ").param(Value::String(c.to_owned()));
    }
    sql.push(&format!(" ORDER BY version LIMIT {limit}"));
    let cols = [ColType::Guid, ColType::Text, ColType::Text, ColType::Int64, ColType::DateTime];
    let mut deleted = Vec::new();
    for r in conn.query(sql, &cols).await? {
        let key: Vec<String> = serde_json::from_str(&r.text(2)?)
            .map_err(|e| StoreError::Corrupt { column: "ferry_tombstones.key_json".into(), message: e.to_string() })?;
        deleted.push(Tombstone {
            id: r.guid(0)?,
            company: r.opt_text(1)?,
            key,
            version: r.int(3)?,
            deleted_at: r.datetime(4)?,
        });
    }
    Ok(deleted)
}
