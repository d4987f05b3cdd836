//! Table names and table layouts, independent of the dialect: the DES entity table of an
//! entity (`Id`, `dataareaid`, one column per field, `<col>_entitytype` per lookup,
//! `versionnumber`, `SinkCreatedOn`, `SinkModifiedOn`) and ferry's own tables (registry,
//! checkpoints, DeleteLog, the probe `check` uses). Pure.

use crate::dialect::{ColumnDef, ColumnKind, TableDef};
use chrono::{DateTime, Utc};
use ferry_domain::StoredRow;
use ferry_model::{Entity, Value};
use std::collections::HashMap;

pub(crate) const ID: &str = "Id";
pub(crate) const COMPANY: &str = "dataareaid";
pub(crate) const VERSION: &str = "versionnumber";
pub(crate) const CREATED: &str = "SinkCreatedOn";
pub(crate) const MODIFIED: &str = "SinkModifiedOn";
/// System column names a field may not take (compared lower-cased).
const SYSTEM_COLUMNS: [&str; 5] = ["id", "dataareaid", "versionnumber", "sinkcreatedon", "sinkmodifiedon"];
const ENTITY_TYPE_SUFFIX: &str = "_entitytype";

/// Table names of one profile: `<prefix>_<base>`, or `<base>` without a prefix.
#[derive(Clone, Debug)]
pub(crate) struct Names {
    pub prefix: String,
    pub schema: String,
}

impl Names {
    pub(crate) fn table(&self, base: &str) -> String {
        if self.prefix.is_empty() { base.to_string() } else { format!("{}_{base}", self.prefix) }
    }

    pub(crate) fn entity_table(&self, entity: &Entity) -> String {
        self.table(&entity.logical_name)
    }

    /// The registry of tables ferry created for this prefix.
    pub(crate) fn registry(&self) -> String {
        self.table("ferry_tables")
    }

    pub(crate) fn checkpoints(&self) -> String {
        self.table("ferry_checkpoint")
    }

    pub(crate) fn delete_log(&self) -> String {
        self.table("DeleteLog")
    }
}

/// Where an entity-table column's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Id,
    Company,
    Field(usize),
    /// The logical name of the lookup target of field `n` when its value is not null.
    EntityType(usize),
    Version,
    Created,
    Modified,
}

/// An entity's table: its definition and, per column, where the value comes from.
#[derive(Clone, Debug)]
pub(crate) struct EntityLayout {
    pub entity: String,
    pub table: TableDef,
    pub sources: Vec<Source>,
}

/// The DES table of `entity` named `table`, or why the entity cannot have one (a field takes a
/// system column's name, two columns collide, a name is too long for the target).
pub(crate) fn entity_layout(entity: &Entity, table: String, max_identifier_len: usize) -> Result<EntityLayout, String> {
    if table.len() > max_identifier_len {
        return Err(format!("table name {table} is longer than the target's {max_identifier_len} characters"));
    }
    let mut columns = vec![ColumnDef::not_null(ID, ColumnKind::Guid)];
    let mut sources = vec![Source::Id];
    if entity.company_specific {
        columns.push(ColumnDef::new(COMPANY, ColumnKind::Text(Some(32))));
        sources.push(Source::Company);
    }
    for (i, field) in entity.fields.iter().enumerate() {
        let name = field.name.to_ascii_lowercase();
        if SYSTEM_COLUMNS.contains(&name.as_str()) {
            return Err(format!("field {} takes the name of the system column {name}", field.name));
        }
        columns.push(ColumnDef::new(&name, ColumnKind::of(&field.ty)));
        sources.push(Source::Field(i));
        if field.lookup.is_some() {
            columns.push(ColumnDef::new(&format!("{name}{ENTITY_TYPE_SUFFIX}"), ColumnKind::Text(Some(128))));
            sources.push(Source::EntityType(i));
        }
    }
    columns.push(ColumnDef::new(VERSION, ColumnKind::Int64));
    columns.push(ColumnDef::new(CREATED, ColumnKind::DateTime));
    columns.push(ColumnDef::new(MODIFIED, ColumnKind::DateTime));
    sources.extend([Source::Version, Source::Created, Source::Modified]);

    let mut seen: HashMap<String, &str> = HashMap::new();
    for c in &columns {
        if c.name.len() > max_identifier_len {
            return Err(format!("column name {} is longer than the target's {max_identifier_len} characters", c.name));
        }
        if let Some(other) = seen.insert(c.name.to_ascii_lowercase(), &c.name) {
            return Err(format!("columns {other} and {} would have the same name", c.name));
        }
    }
    let table = TableDef { name: table, columns, primary_key: vec![ID.into()], serial_id: None, index: None };
    Ok(EntityLayout { entity: entity.logical_name.clone(), table, sources })
}

impl EntityLayout {
    /// The column values of `row`, in column order. `targets` maps lookup field indexes to their
    /// target's logical name; `now` stamps `SinkCreatedOn`/`SinkModifiedOn`.
    pub(crate) fn row_values(
        &self,
        row: &StoredRow,
        targets: &HashMap<usize, String>,
        now: DateTime<Utc>,
    ) -> Vec<Value> {
        let mut out = Vec::with_capacity(self.sources.len());
        self.visit_values(row, targets, now, |v| out.push(v.clone()));
        out
    }

    /// Calls `f` with each column value of `row`, in column order, without copying the row's
    /// own values (the bulk path encodes them straight away).
    pub(crate) fn visit_values(
        &self,
        row: &StoredRow,
        targets: &HashMap<usize, String>,
        now: DateTime<Utc>,
        mut f: impl FnMut(&Value),
    ) {
        let field = |i: usize| row.values.get(i).unwrap_or(&Value::Null);
        let now = Value::DateTime(now);
        for source in &self.sources {
            match *source {
                Source::Id => f(&Value::Guid(row.id)),
                Source::Company => match &row.company {
                    Some(company) => f(&Value::String(company.clone())),
                    None => f(&Value::Null),
                },
                Source::Field(i) => f(field(i)),
                Source::EntityType(i) => match (field(i).is_null(), targets.get(&i)) {
                    (false, Some(target)) => f(&Value::String(target.clone())),
                    _ => f(&Value::Null),
                },
                Source::Version => f(&Value::Int(row.version)),
                Source::Created | Source::Modified => f(&now),
            }
        }
    }
}

/// `<prefix>_ferry_tables`: the tables ferry created, so `check` can tell them from others.
pub(crate) fn registry_table(names: &Names) -> TableDef {
    TableDef {
        name: names.registry(),
        columns: vec![
            ColumnDef::not_null("table_name", ColumnKind::Text(Some(128))),
            ColumnDef::new("entity", ColumnKind::Text(Some(128))),
            ColumnDef::new("created_at", ColumnKind::DateTime),
        ],
        primary_key: vec!["table_name".into()],
        serial_id: None,
        index: None,
    }
}

pub(crate) const CHECKPOINT_COLUMNS: [&str; 8] =
    ["profile_id", "entity", "phase", "snapshot_version", "after_key", "last_version", "rows_copied", "updated_at"];

/// `<prefix>_ferry_checkpoint`, keyed by (profile_id, entity).
pub(crate) fn checkpoint_table(names: &Names) -> TableDef {
    let [profile, entity, phase, snapshot, after_key, last, copied, updated] = CHECKPOINT_COLUMNS;
    TableDef {
        name: names.checkpoints(),
        columns: vec![
            ColumnDef::not_null(profile, ColumnKind::Text(Some(64))),
            ColumnDef::not_null(entity, ColumnKind::Text(Some(128))),
            ColumnDef::not_null(phase, ColumnKind::Text(Some(16))),
            ColumnDef::not_null(snapshot, ColumnKind::Int64),
            ColumnDef::new(after_key, ColumnKind::Text(None)),
            ColumnDef::not_null(last, ColumnKind::Int64),
            ColumnDef::not_null(copied, ColumnKind::Int64),
            ColumnDef::not_null(updated, ColumnKind::DateTime),
        ],
        primary_key: vec![profile.into(), entity.into()],
        serial_id: None,
        index: None,
    }
}

pub(crate) const DELETE_LOG_COLUMNS: [&str; 4] = ["EntityName", "RecordId", "SinkDeleteTime", "VersionNumber"];

/// `<prefix>_DeleteLog` as DES wrote it: an auto-numbered `Id` and one row per deleted record.
pub(crate) fn delete_log_table(names: &Names) -> TableDef {
    let [entity, record, time, version] = DELETE_LOG_COLUMNS;
    TableDef {
        name: names.delete_log(),
        columns: vec![
            ColumnDef::new(entity, ColumnKind::Text(Some(64))),
            ColumnDef::new(record, ColumnKind::Text(Some(64))),
            ColumnDef::new(time, ColumnKind::DateTime),
            ColumnDef::new(version, ColumnKind::Int64),
        ],
        primary_key: Vec::new(),
        serial_id: Some(ID.into()),
        index: Some(record.into()),
    }
}

/// The throw-away table `check` creates, writes, alters and drops.
pub(crate) fn probe_table(name: String) -> TableDef {
    TableDef {
        name,
        columns: vec![
            ColumnDef::not_null(ID, ColumnKind::Guid),
            ColumnDef::new("name", ColumnKind::Text(Some(20))),
            ColumnDef::new(VERSION, ColumnKind::Int64),
        ],
        primary_key: vec![ID.into()],
        serial_id: None,
        index: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_model::{Catalog, CatalogSource, standard_sources};

    fn catalog(extra: &str) -> Catalog {
        let mut sources = standard_sources();
        sources.push(CatalogSource { origin: "test.toml".into(), text: extra.into() });
        Catalog::build(&sources).unwrap()
    }

    #[test]
    fn customers_get_company_and_lookup_type_columns() {
        let c = catalog("");
        let names = Names { prefix: "crm".into(), schema: "public".into() };
        let e = c.by_collection("CustomersV3").unwrap();
        let layout = entity_layout(e, names.entity_table(e), 63).unwrap();
        assert_eq!(layout.table.name, "crm_customerv3");
        let cols: Vec<&str> = layout.table.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(&cols[..3], ["Id", "dataareaid", "customeraccount"]);
        assert!(cols.windows(2).any(|w| w == ["customergroupid", "customergroupid_entitytype"]));
        assert_eq!(&cols[cols.len() - 3..], ["versionnumber", "SinkCreatedOn", "SinkModifiedOn"]);
        assert_eq!(Names { prefix: String::new(), schema: "main".into() }.entity_table(e), "customerv3");
    }

    #[test]
    fn system_column_names_are_refused() {
        let c = catalog(
            r#"
[[entities]]
label = "Clash"
public_name = "Clash"
collection = "Clashes"
logical_name = "clash"
key = ["Code"]
fields = [{ name = "Code", type = "string(10)" }, { name = "VersionNumber", type = "int" }]
"#,
        );
        let e = c.by_collection("Clashes").unwrap();
        let err = entity_layout(e, "clash".into(), 63).unwrap_err();
        assert!(err.contains("VersionNumber") && err.contains("system column versionnumber"), "{err}");
        let err = entity_layout(c.by_collection("accounts").unwrap(), "x".repeat(70), 63).unwrap_err();
        assert!(err.contains("longer than"), "{err}");
    }
}
