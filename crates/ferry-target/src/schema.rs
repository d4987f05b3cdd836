//! Creating and evolving target tables on any dialect: introspection, the registry of tables
//! ferry created, the diff of wanted against existing columns (add missing columns, widen,
//! report incompatible changes, never drop), the metadata refill, the reset of one entity
//! table, and the probe `check` runs.

use crate::dialect::{ColumnDef, ColumnInfo, ColumnKind, Dialect, Family, SqlExt, TableDef, Upsert};
use crate::error::TargetError;
use crate::layout::{self, EntityLayout, Names};
use crate::{Check, SchemaChanges, metadata};
use chrono::{DateTime, Utc};
use ferry_model::Value;
use ferry_sql::{ColType, Conn, RowExt, Sql};
use std::collections::HashSet;

/// Creates the schema (PostgreSQL schema, MySQL database) unless it exists.
pub(crate) async fn ensure_schema_exists(c: &mut Conn, d: &dyn Dialect, schema: &str) -> Result<(), TargetError> {
    let Some(exists) = d.schema_exists_sql() else { return Ok(()) };
    let found = c.query(Sql::with_args(d.sql(), exists, vec![Value::String(schema.into())]), &[ColType::Int64]).await?;
    if found.is_empty() {
        c.execute(&d.create_schema_sql(schema), ()).await?;
    }
    Ok(())
}

/// The tables and views of the schema, by folded name.
pub(crate) async fn tables(c: &mut Conn, d: &dyn Dialect, schema: &str) -> Result<HashSet<String>, TargetError> {
    let rows =
        c.query(Sql::with_args(d.sql(), d.tables_sql(), vec![Value::String(schema.into())]), &[ColType::Text]).await?;
    Ok(rows.iter().map(|r| r.text(0).map(|name| d.fold(&name))).collect::<Result<_, _>>()?)
}

pub(crate) async fn columns(
    c: &mut Conn,
    d: &dyn Dialect,
    schema: &str,
    table: &str,
) -> Result<Vec<ColumnInfo>, TargetError> {
    use ColType::{Int64 as Int, Text};
    let args = vec![Value::String(schema.into()), Value::String(table.into())];
    let rows = c.query(Sql::with_args(d.sql(), d.columns_sql(), args), &[Text, Text, Int, Int, Int, Text]).await?;
    rows.iter()
        .map(|r| {
            Ok(ColumnInfo {
                name: r.text(0)?,
                data_type: r.text(1)?,
                char_len: r.opt_int(2)?,
                precision: r.opt_int(3)?,
                scale: r.opt_int(4)?,
                column_type: r.opt_text(5)?.unwrap_or_default(),
            })
        })
        .collect()
}

/// The tables ferry registered for this prefix, by folded name (none before the registry exists).
pub(crate) async fn registered(
    c: &mut Conn,
    d: &dyn Dialect,
    names: &Names,
    tables: &HashSet<String>,
) -> Result<HashSet<String>, TargetError> {
    if !tables.contains(&d.fold(&names.registry())) {
        return Ok(HashSet::new());
    }
    let mut sql = Sql::new(d.sql());
    sql.push("SELECT ").ident("table_name").push(" FROM ").table(&names.schema, &names.registry());
    let rows = c.query(sql, &[ColType::Text]).await?;
    Ok(rows.iter().map(|r| r.text(0).map(|name| d.fold(&name))).collect::<Result<_, _>>()?)
}

async fn register(
    c: &mut Conn,
    d: &dyn Dialect,
    names: &Names,
    table: &str,
    entity: &str,
    now: DateTime<Utc>,
) -> Result<(), TargetError> {
    let def = layout::registry_table(names);
    let upsert =
        Upsert { table: &def.name, columns: &def.columns, key: &["table_name"], insert_only: &[], guard: None };
    let row = vec![Value::String(table.into()), Value::String(entity.into()), Value::DateTime(now)];
    let mut sql = Sql::new(d.sql());
    d.upsert(&mut sql, &names.schema, &upsert, vec![row]);
    c.run(sql).await?;
    Ok(())
}

pub(crate) fn collision(table: &str) -> String {
    format!("table {table} already exists and was not created by ferry; drop it or choose another TablePrefix")
}

/// What an existing column needs to hold a wanted one.
#[derive(Debug, PartialEq)]
enum Verdict {
    Keep,
    Widen(ColumnKind),
    Incompatible,
}

fn compare(wanted: &ColumnKind, existing: &Family) -> Verdict {
    use ColumnKind as K;
    match (wanted, existing) {
        (K::Text(_), Family::Text(None)) => Verdict::Keep,
        (K::Text(None), Family::Text(Some(_))) => Verdict::Widen(wanted.clone()),
        (K::Text(Some(w)), Family::Text(Some(e))) => {
            if w > e {
                Verdict::Widen(wanted.clone())
            } else {
                Verdict::Keep
            }
        }
        (K::Int32 | K::Int64, Family::Int { bits }) => {
            let needed = if *wanted == K::Int32 { 32 } else { 64 };
            if needed > *bits { Verdict::Widen(wanted.clone()) } else { Verdict::Keep }
        }
        (K::Decimal { precision, scale }, Family::Decimal { precision: ep, scale: es }) => {
            let integer_digits = (precision - scale).max(ep.saturating_sub(*es));
            let scale = (*scale).max(*es);
            if integer_digits + scale > *ep || scale > *es {
                Verdict::Widen(K::Decimal { precision: integer_digits + scale, scale })
            } else {
                Verdict::Keep
            }
        }
        (K::Text(_) | K::Decimal { .. } | K::Date | K::DateTime | K::Guid, Family::AnyText)
        | (K::Int32 | K::Int64 | K::Bool, Family::AnyInteger)
        | (K::Real, Family::Real)
        | (K::Bool, Family::Bool)
        | (K::Date, Family::Date)
        | (K::DateTime, Family::DateTime)
        | (K::Guid, Family::Guid) => Verdict::Keep,
        _ => Verdict::Incompatible,
    }
}

/// What happened to one table.
#[derive(Debug, Default)]
struct TableSync {
    created: bool,
    added: Vec<String>,
    widened: Vec<String>,
    incompatible: Vec<String>,
}

/// Creates `def` when `existing` is `None`; else adds its missing columns and widens narrower
/// ones. Columns the table has beyond `def` are left alone.
async fn sync_table(
    c: &mut Conn,
    d: &dyn Dialect,
    schema: &str,
    def: &TableDef,
    existing: Option<Vec<ColumnInfo>>,
) -> Result<TableSync, TargetError> {
    let mut out = TableSync::default();
    let Some(existing) = existing else {
        for statement in d.create_table_sql(schema, def) {
            c.execute(&statement, ()).await?;
        }
        out.created = true;
        return Ok(out);
    };
    for wanted in &def.columns {
        let qualified_name = format!("{}.{}", def.name, wanted.name);
        match existing.iter().find(|e| d.fold(&e.name) == d.fold(&wanted.name)) {
            None => {
                c.execute(&d.add_column_sql(schema, &def.name, &ColumnDef { not_null: false, ..wanted.clone() }), ())
                    .await?;
                out.added.push(qualified_name);
            }
            Some(info) => match compare(&wanted.kind, &d.family(info)) {
                Verdict::Keep => {}
                Verdict::Widen(kind) => {
                    let widened = ColumnDef { kind, ..wanted.clone() };
                    if let Some(statement) = d.widen_column_sql(schema, &def.name, &widened) {
                        c.execute(&statement, ()).await?;
                        out.widened.push(qualified_name);
                    }
                }
                Verdict::Incompatible => out.incompatible.push(format!(
                    "column {qualified_name} is {} in the target but the entity now needs {}",
                    info.column_type,
                    wanted.kind.describe()
                )),
            },
        }
    }
    Ok(out)
}

/// The tables every profile has besides its entity tables.
pub(crate) fn system_tables(names: &Names, delete_log: bool) -> Vec<TableDef> {
    let mut defs = vec![layout::registry_table(names), layout::checkpoint_table(names)];
    defs.extend(metadata::tables(names));
    if delete_log {
        defs.push(layout::delete_log_table(names));
    }
    defs
}

/// Creates and evolves the system tables and the entity tables of `layouts` (an `Err` holds an
/// entity that cannot have a table: (logical name, reason)).
pub(crate) async fn evolve(
    c: &mut Conn,
    d: &dyn Dialect,
    names: &Names,
    layouts: &[Result<EntityLayout, (String, String)>],
    delete_log: bool,
    now: DateTime<Utc>,
) -> Result<SchemaChanges, TargetError> {
    let schema = &names.schema;
    ensure_schema_exists(c, d, schema).await?;
    let mut present = tables(c, d, schema).await?;
    let system = system_tables(names, delete_log);
    for def in &system {
        let existing = match present.contains(&d.fold(&def.name)) {
            true => Some(columns(c, d, schema, &def.name).await?),
            false => None,
        };
        let sync = sync_table(c, d, schema, def, existing).await?;
        for problem in sync.incompatible {
            tracing::warn!(table = %def.name, %problem, "system table differs from ferry's layout");
        }
        present.insert(d.fold(&def.name));
    }
    let system_names: HashSet<String> = system.iter().map(|t| d.fold(&t.name)).collect();
    let registered = registered(c, d, names, &present).await?;

    let mut changes = SchemaChanges::default();
    for layout in layouts {
        let layout = match layout {
            Ok(layout) => layout,
            Err(problem) => {
                changes.incompatible.push(problem.clone());
                continue;
            }
        };
        let table = &layout.table.name;
        let folded = d.fold(table);
        if system_names.contains(&folded) {
            changes.incompatible.push((layout.entity.clone(), format!("table name {table} is taken by a ferry table")));
            continue;
        }
        let existing = match (present.contains(&folded), registered.contains(&folded)) {
            (false, _) => None,
            (true, true) => Some(columns(c, d, schema, table).await?),
            (true, false) => {
                changes.incompatible.push((layout.entity.clone(), collision(table)));
                continue;
            }
        };
        let sync = sync_table(c, d, schema, &layout.table, existing).await?;
        if sync.created {
            register(c, d, names, table, &layout.entity, now).await?;
            changes.tables_created.push(table.clone());
        }
        changes.columns_added.extend(sync.added);
        changes.columns_widened.extend(sync.widened);
        if !sync.incompatible.is_empty() {
            changes.incompatible.push((layout.entity.clone(), sync.incompatible.join("; ")));
        }
    }
    Ok(changes)
}

/// Inserts `rows` into `columns` of `table`, as many rows per statement as parameters allow.
pub(crate) async fn insert_rows(
    c: &mut Conn,
    d: &dyn Dialect,
    schema: &str,
    table: &str,
    columns: &[ColumnDef],
    rows: Vec<Vec<Value>>,
) -> Result<(), TargetError> {
    let per_statement = (d.max_params() / columns.len().max(1)).clamp(1, 1000);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Value>> = rows.by_ref().take(per_statement).collect();
        let mut sql = Sql::new(d.sql());
        sql.push("INSERT INTO ").table(schema, table).push(" ").column_list(columns);
        sql.push(" VALUES ").values(columns, chunk);
        c.run(sql).await?;
    }
    Ok(())
}

/// Empties the metadata tables and writes `rows` (aligned with `tables`), in the caller's
/// transaction.
pub(crate) async fn refill_metadata(
    c: &mut Conn,
    d: &dyn Dialect,
    schema: &str,
    tables: &[TableDef],
    rows: Vec<Vec<Vec<Value>>>,
) -> Result<(), TargetError> {
    for (def, rows) in tables.iter().zip(rows) {
        let mut sql = Sql::new(d.sql());
        sql.push("DELETE FROM ").table(schema, &def.name);
        c.run(sql).await?;
        insert_rows(c, d, schema, &def.name, &def.columns, rows).await?;
    }
    Ok(())
}

/// Drops and recreates one entity table (refusing tables ferry did not create) and forgets
/// its checkpoints.
pub(crate) async fn reset(
    c: &mut Conn,
    d: &dyn Dialect,
    names: &Names,
    layout: &EntityLayout,
    now: DateTime<Utc>,
) -> Result<(), TargetError> {
    let schema = &names.schema;
    let table = &layout.table.name;
    ensure_schema_exists(c, d, schema).await?;
    let present = tables(c, d, schema).await?;
    if present.contains(&d.fold(table)) && !registered(c, d, names, &present).await?.contains(&d.fold(table)) {
        return Err(TargetError::Rejected(collision(table)));
    }
    c.execute(&format!("DROP TABLE IF EXISTS {}", d.qualified(schema, table)), ()).await?;
    for statement in d.create_table_sql(schema, &layout.table) {
        c.execute(&statement, ()).await?;
    }
    if !present.contains(&d.fold(&names.registry())) {
        sync_table(c, d, schema, &layout::registry_table(names), None).await?;
    }
    register(c, d, names, table, &layout.entity, now).await?;
    if present.contains(&d.fold(&names.checkpoints())) {
        let mut sql = Sql::new(d.sql());
        sql.push("DELETE FROM ").table(schema, &names.checkpoints()).push(" WHERE ").ident("entity").push(" = ");
        sql.param(Value::String(layout.entity.clone()));
        c.run(sql).await?;
    }
    Ok(())
}

fn check(name: &str, result: Result<String, TargetError>) -> Check {
    match result {
        Ok(detail) => Check { name: name.into(), ok: true, detail },
        Err(e) => Check { name: name.into(), ok: false, detail: e.to_string() },
    }
}

/// Creates, writes, alters and drops a throw-away table: the "create table",
/// "insert/update/delete" and "alter table" checks.
pub(crate) async fn probe(c: &mut Conn, d: &dyn Dialect, names: &Names) -> Vec<Check> {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let def = layout::probe_table(names.table(&format!("ferry_probe_{}", &suffix[..8])));
    let schema = &names.schema;
    let created: Result<String, TargetError> = async {
        ensure_schema_exists(c, d, schema).await?;
        for statement in d.create_table_sql(schema, &def) {
            c.execute(&statement, ()).await?;
        }
        Ok(format!("created table {}", def.name))
    }
    .await;
    if let Err(e) = created {
        let not_run = |name: &str| Check { name: name.into(), ok: false, detail: "not run: no probe table".into() };
        return vec![check("create table", Err(e)), not_run("insert/update/delete"), not_run("alter table")];
    }
    let id = Value::Guid(uuid::Uuid::new_v4());
    let written: Result<String, TargetError> = async {
        let mut sql = Sql::new(d.sql());
        sql.push("INSERT INTO ").table(schema, &def.name).push(" ").column_list(&def.columns).push(" VALUES ");
        sql.values(&def.columns, vec![vec![id.clone(), Value::String("probe".into()), Value::Int(1)]]);
        c.run(sql).await?;
        let mut sql = Sql::new(d.sql());
        sql.push("UPDATE ").table(schema, &def.name).push(" SET ").ident("name").push(" = ");
        sql.param(Value::String("probed".into())).push(" WHERE ").ident(layout::ID).push(" = ").param(id.clone());
        c.run(sql).await?;
        let mut sql = Sql::new(d.sql());
        sql.push("DELETE FROM ").table(schema, &def.name).push(" WHERE ").ident(layout::ID).push(" = ").param(id);
        c.run(sql).await?;
        Ok("inserted, updated and deleted a row".into())
    }
    .await;
    let extra = ColumnDef::new("extra", ColumnKind::Int32);
    let altered = c
        .execute(&d.add_column_sql(schema, &def.name, &extra), ())
        .await
        .map(|_| "added a column".to_string())
        .map_err(TargetError::from);
    let mut create = check("create table", created);
    if let Err(e) = c.execute(&format!("DROP TABLE {}", d.qualified(schema, &def.name)), ()).await {
        create =
            Check { name: create.name, ok: false, detail: format!("created {}, but could not drop it: {e}", def.name) };
    } else {
        create.detail.push_str(" and dropped it");
    }
    vec![create, check("insert/update/delete", written), check("alter table", altered)]
}

/// One check per entity table: absent (will be created), ferry's own, or someone else's.
pub(crate) async fn entity_checks(
    c: &mut Conn,
    d: &dyn Dialect,
    names: &Names,
    entity_tables: &[String],
) -> Result<Vec<Check>, TargetError> {
    let present = tables(c, d, &names.schema).await?;
    let registered = registered(c, d, names, &present).await?;
    Ok(entity_tables
        .iter()
        .map(|table| {
            let folded = d.fold(table);
            let (ok, detail) = match (present.contains(&folded), registered.contains(&folded)) {
                (false, _) => (true, "absent; it will be created".to_string()),
                (true, true) => (true, "created by ferry; it will be kept and extended".to_string()),
                (true, false) => (false, collision(table)),
            };
            Check { name: format!("table {table}"), ok, detail }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_widen_and_never_narrow() {
        assert_eq!(compare(&ColumnKind::Text(Some(10)), &Family::Text(Some(20))), Verdict::Keep);
        assert_eq!(
            compare(&ColumnKind::Text(Some(30)), &Family::Text(Some(20))),
            Verdict::Widen(ColumnKind::Text(Some(30)))
        );
        assert_eq!(compare(&ColumnKind::Text(None), &Family::Text(Some(20))), Verdict::Widen(ColumnKind::Text(None)));
        assert_eq!(compare(&ColumnKind::Text(Some(30)), &Family::Text(None)), Verdict::Keep);
        assert_eq!(compare(&ColumnKind::Int64, &Family::Int { bits: 32 }), Verdict::Widen(ColumnKind::Int64));
        assert_eq!(compare(&ColumnKind::Int32, &Family::Int { bits: 64 }), Verdict::Keep);
        assert_eq!(
            compare(&ColumnKind::Decimal { precision: 10, scale: 4 }, &Family::Decimal { precision: 10, scale: 2 }),
            Verdict::Widen(ColumnKind::Decimal { precision: 12, scale: 4 })
        );
        assert_eq!(
            compare(&ColumnKind::Decimal { precision: 8, scale: 2 }, &Family::Decimal { precision: 10, scale: 2 }),
            Verdict::Keep
        );
    }

    #[test]
    fn kind_changes_are_incompatible() {
        assert_eq!(compare(&ColumnKind::Text(Some(10)), &Family::Int { bits: 32 }), Verdict::Incompatible);
        assert_eq!(compare(&ColumnKind::Int32, &Family::Bool), Verdict::Incompatible);
        assert_eq!(compare(&ColumnKind::Text(Some(10)), &Family::AnyInteger), Verdict::Incompatible);
        assert_eq!(compare(&ColumnKind::Guid, &Family::AnyText), Verdict::Keep);
    }
}
