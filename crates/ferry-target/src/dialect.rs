//! What differs between target databases, as one trait each dialect module implements: quoting,
//! type mapping, DDL, introspection queries and the upsert statement. Everything else (which
//! tables and columns to create, how to diff them, how to apply a batch) is written once.

use ferry_domain::TargetKind;
use ferry_model::{FieldType, Value};
use ferry_sql::{ColType, Sql};

/// The portable type of a target column, before a dialect spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    /// Text of at most n characters; `None`: unlimited (memo).
    Text(Option<u32>),
    Int32,
    Int64,
    Decimal {
        precision: u32,
        scale: u32,
    },
    Real,
    Bool,
    Date,
    DateTime,
    Guid,
}

impl ColumnKind {
    /// The column a field is stored in; enums store their integer codes.
    pub(crate) fn of(ty: &FieldType) -> ColumnKind {
        match ty {
            FieldType::String { max_length } => ColumnKind::Text(*max_length),
            FieldType::Int | FieldType::Enum(_) => ColumnKind::Int32,
            FieldType::Int64 => ColumnKind::Int64,
            FieldType::Decimal { precision, scale } => ColumnKind::Decimal { precision: *precision, scale: *scale },
            FieldType::Real => ColumnKind::Real,
            FieldType::Bool => ColumnKind::Bool,
            FieldType::Date => ColumnKind::Date,
            FieldType::DateTime => ColumnKind::DateTime,
            FieldType::Guid => ColumnKind::Guid,
        }
    }

    /// How values of this kind are bound and decoded.
    pub(crate) fn col_type(&self) -> ColType {
        match self {
            ColumnKind::Text(_) => ColType::Text,
            ColumnKind::Int32 => ColType::Int32,
            ColumnKind::Int64 => ColType::Int64,
            ColumnKind::Decimal { .. } => ColType::Decimal,
            ColumnKind::Real => ColType::Real,
            ColumnKind::Bool => ColType::Bool,
            ColumnKind::Date => ColType::Date,
            ColumnKind::DateTime => ColType::DateTime,
            ColumnKind::Guid => ColType::Guid,
        }
    }

    /// `string(20)`, `int`… for messages, in the catalog's spelling.
    pub(crate) fn describe(&self) -> String {
        match self {
            ColumnKind::Text(Some(n)) => format!("string({n})"),
            ColumnKind::Text(None) => "string".into(),
            ColumnKind::Int32 => "int".into(),
            ColumnKind::Int64 => "int64".into(),
            ColumnKind::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
            ColumnKind::Real => "real".into(),
            ColumnKind::Bool => "bool".into(),
            ColumnKind::Date => "date".into(),
            ColumnKind::DateTime => "datetime".into(),
            ColumnKind::Guid => "guid".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ColumnDef {
    pub name: String,
    pub kind: ColumnKind,
    pub not_null: bool,
}

impl ColumnDef {
    pub(crate) fn new(name: &str, kind: ColumnKind) -> ColumnDef {
        ColumnDef { name: name.to_string(), kind, not_null: false }
    }

    pub(crate) fn not_null(name: &str, kind: ColumnKind) -> ColumnDef {
        ColumnDef { name: name.to_string(), kind, not_null: true }
    }
}

/// A table to create: columns, primary key, optionally an auto-numbered `bigint` key column
/// (DeleteLog's `Id`, not listed in `columns`) and one indexed column.
#[derive(Clone, Debug)]
pub(crate) struct TableDef {
    pub name: String,
    pub columns: Vec<ColumnDef>,
    pub primary_key: Vec<String>,
    pub serial_id: Option<String>,
    pub index: Option<String>,
}

/// One column as the target's catalog describes it.
#[derive(Clone, Debug)]
pub(crate) struct ColumnInfo {
    pub name: String,
    pub data_type: String,
    pub char_len: Option<i64>,
    pub precision: Option<i64>,
    pub scale: Option<i64>,
    /// The full type (MySQL's `COLUMN_TYPE`, e.g. `tinyint(1)`); else the data type again.
    pub column_type: String,
}

/// What an existing column can hold, as far as ferry's types go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    Text(Option<u32>),
    Int {
        bits: u8,
    },
    Bool,
    Decimal {
        precision: u32,
        scale: u32,
    },
    Real,
    Date,
    DateTime,
    Guid,
    /// SQLite's TEXT affinity: holds strings, decimals, dates, times and GUIDs alike.
    AnyText,
    /// SQLite's INTEGER affinity: holds integers and booleans alike.
    AnyInteger,
    Other(String),
}

/// A multi-row `INSERT … ON CONFLICT/DUPLICATE KEY` over `columns`, keyed by `key`.
pub(crate) struct Upsert<'a> {
    pub table: &'a str,
    pub columns: &'a [ColumnDef],
    pub key: &'a [&'a str],
    /// Columns written on insert only (`SinkCreatedOn`).
    pub insert_only: &'a [&'a str],
    /// When set, an existing row is rewritten only if the incoming version is not older.
    pub guard: Option<Guard<'a>>,
}

pub(crate) struct Guard<'a> {
    /// The version column; assigned last where assignment order matters (MySQL).
    pub version: &'a str,
    /// Set only when the version grows (`SinkModifiedOn`), so replays leave it alone.
    pub touched: &'a str,
}

pub(crate) trait Dialect: Sync {
    fn kind(&self) -> TargetKind;
    /// The statement-level dialect (quoting, placeholders, casts) of `ferry-sql`.
    fn sql(&self) -> ferry_sql::Dialect;

    fn quote(&self, ident: &str) -> String {
        self.sql().quote(ident)
    }
    fn max_identifier_len(&self) -> usize;
    /// Most bound parameters one statement may carry (kept well below the hard limit).
    fn max_params(&self) -> usize;
    /// Most rows one upsert statement of `columns` columns carries.
    fn upsert_rows_max(&self, columns: usize) -> usize {
        (self.max_params() / columns.max(1)).clamp(1, 1000)
    }
    /// The form in which the database compares table and column names.
    fn fold(&self, name: &str) -> String;

    // Type mapping.
    fn column_type(&self, kind: &ColumnKind) -> String;
    fn family(&self, info: &ColumnInfo) -> Family;

    // DDL.
    fn qualified(&self, schema: &str, table: &str) -> String {
        self.sql().qualified(schema, table)
    }
    /// A query answering a row when the schema (bound once) exists; `None`: it always does.
    fn schema_exists_sql(&self) -> Option<&'static str>;
    fn create_schema_sql(&self, schema: &str) -> String;
    fn create_table_sql(&self, schema: &str, table: &TableDef) -> Vec<String>;
    fn add_column_sql(&self, schema: &str, table: &str, column: &ColumnDef) -> String {
        let null = if column.not_null { " NOT NULL" } else { "" };
        format!(
            "ALTER TABLE {} ADD COLUMN {} {}{null}",
            self.qualified(schema, table),
            self.quote(&column.name),
            self.column_type(&column.kind)
        )
    }
    /// `None` when the dialect needs nothing to hold the wider values.
    fn widen_column_sql(&self, schema: &str, table: &str, column: &ColumnDef) -> Option<String>;

    // Introspection.
    /// Binds the schema; answers one text column: the names of its tables and views.
    fn tables_sql(&self) -> &'static str;
    /// Binds schema and table; answers (name, data type, character length, precision, scale,
    /// full type) per column.
    fn columns_sql(&self) -> &'static str;

    // DML.
    /// Writes the whole upsert statement for `rows` into `sql`.
    fn upsert(&self, sql: &mut Sql, schema: &str, upsert: &Upsert<'_>, rows: Vec<Vec<Value>>);
    /// Whether the upsert's affected-row count is the number of rows written (MySQL counts an
    /// update twice and a skipped row once, so it is not).
    fn upsert_counts_rows_affected(&self) -> bool;
    /// How the initial copy writes rows the table does not hold yet.
    fn bulk_path(&self) -> BulkPath;
}

/// The initial copy's way of writing rows a table does not hold yet: no version guard, no
/// pre-read; a row that is there after all fails the whole chunk (a unique violation), which
/// then goes through the guarded upsert instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BulkPath {
    /// `COPY … FROM STDIN` in text format (PostgreSQL).
    Copy,
    /// Plain multi-row `INSERT … VALUES`, at most this many parameters per statement.
    Insert { params_max: usize },
    /// The guarded upsert, as for changes.
    Upsert,
}

/// Column lists and row tuples of a statement, typed by the target's column definitions.
pub(crate) trait SqlExt {
    /// `("a", "b", …)`
    fn column_list(&mut self, columns: &[ColumnDef]) -> &mut Sql;
    /// `(p, p), (p, p)…` — one tuple per row, each value typed by its column.
    fn values(&mut self, columns: &[ColumnDef], rows: Vec<Vec<Value>>) -> &mut Sql;
}

impl SqlExt for Sql {
    fn column_list(&mut self, columns: &[ColumnDef]) -> &mut Sql {
        self.push("(");
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.ident(&c.name);
        }
        self.push(")")
    }

    fn values(&mut self, columns: &[ColumnDef], rows: Vec<Vec<Value>>) -> &mut Sql {
        for (r, row) in rows.into_iter().enumerate() {
            self.push(if r == 0 { "(" } else { ", (" });
            for (i, (value, column)) in row.into_iter().zip(columns).enumerate() {
                if i > 0 {
                    self.push(", ");
                }
                self.param_typed(value, column.kind.col_type());
            }
            self.push(")");
        }
        self
    }
}

/// `CREATE TABLE IF NOT EXISTS q (cols…, PRIMARY KEY (…))` with the dialect's types; `serial`
/// is the dialect's spelling of an auto-numbered primary key column.
pub(crate) fn create_table_body(
    d: &dyn Dialect,
    schema: &str,
    table: &TableDef,
    serial: &str,
    extra_parts: &[String],
    tail: &str,
) -> String {
    let mut parts = Vec::new();
    if let Some(id) = &table.serial_id {
        parts.push(format!("{} {serial}", d.quote(id)));
    }
    for c in &table.columns {
        let null = if c.not_null { " NOT NULL" } else { "" };
        parts.push(format!("{} {}{null}", d.quote(&c.name), d.column_type(&c.kind)));
    }
    if !table.primary_key.is_empty() {
        let key: Vec<String> = table.primary_key.iter().map(|k| d.quote(k)).collect();
        parts.push(format!("PRIMARY KEY ({})", key.join(", ")));
    }
    parts.extend(extra_parts.iter().cloned());
    format!("CREATE TABLE IF NOT EXISTS {} ({}){tail}", d.qualified(schema, &table.name), parts.join(", "))
}

/// The `INSERT … ON CONFLICT (key) DO UPDATE SET … WHERE <guard>` form PostgreSQL and SQLite
/// share; `excluded` is how the dialect names the proposed row.
/// How the rows of an `INSERT … ON CONFLICT` reach the database.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowsAs {
    /// `VALUES (…), (…)`: one parameter per value.
    Values,
    /// `SELECT * FROM UNNEST($1::type[], …)`: one array parameter per column (PostgreSQL), far
    /// cheaper to parse and plan for thousands of rows.
    Unnest,
}

pub(crate) fn on_conflict_upsert(
    d: &dyn Dialect,
    sql: &mut Sql,
    schema: &str,
    upsert: &Upsert<'_>,
    rows: Vec<Vec<Value>>,
    excluded: &str,
    rows_as: RowsAs,
) {
    sql.push("INSERT INTO ").table(schema, upsert.table).push(" ").column_list(upsert.columns);
    match rows_as {
        RowsAs::Values => {
            sql.push(" VALUES ").values(upsert.columns, rows);
        }
        RowsAs::Unnest => {
            let mut columns: Vec<Vec<Value>> = upsert.columns.iter().map(|_| Vec::with_capacity(rows.len())).collect();
            for row in rows {
                for (i, value) in row.into_iter().enumerate() {
                    columns[i].push(value);
                }
            }
            sql.push(" SELECT * FROM UNNEST(");
            for (i, (values, column)) in columns.into_iter().zip(upsert.columns).enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.param_column(column.kind.col_type(), values);
            }
            sql.push(")");
        }
    }
    let key: Vec<String> = upsert.key.iter().map(|k| d.quote(k)).collect();
    sql.push(" ON CONFLICT (").push(&key.join(", ")).push(")");
    let updated: Vec<&ColumnDef> = upsert
        .columns
        .iter()
        .filter(|c| !upsert.key.contains(&c.name.as_str()) && !upsert.insert_only.contains(&c.name.as_str()))
        .collect();
    if updated.is_empty() {
        sql.push(" DO NOTHING");
        return;
    }
    let table = d.quote(upsert.table);
    let mut sets = Vec::new();
    for c in updated {
        let col = d.quote(&c.name);
        match &upsert.guard {
            Some(g) if g.touched == c.name => {
                let v = d.quote(g.version);
                sets.push(format!(
                    "{col} = CASE WHEN {table}.{v} < {excluded}.{v} THEN {excluded}.{col} ELSE {table}.{col} END"
                ));
            }
            _ => sets.push(format!("{col} = {excluded}.{col}")),
        }
    }
    sql.push(" DO UPDATE SET ").push(&sets.join(", "));
    if let Some(g) = &upsert.guard {
        let v = d.quote(g.version);
        sql.push(&format!(" WHERE {table}.{v} <= {excluded}.{v}"));
    }
}
