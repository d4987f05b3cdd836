//! SQLite targets: `"quoted"` identifiers, `?n` parameters, three storage types (TEXT holds
//! strings, exact decimals, ISO dates and times, GUIDs; INTEGER holds integers and booleans;
//! REAL), `ON CONFLICT … DO UPDATE … WHERE` upserts, pragma introspection, and the driver
//! binding. The schema is always `main`; lengths are not enforced, so no column ever needs
//! widening.

use super::TargetKind;
use super::conn::{Arg, ColType, Conn, Sql};
use super::dialect::{
    ColumnDef, ColumnInfo, ColumnKind, Dialect, Family, RowsAs, TableDef, Upsert, create_table_body,
    on_conflict_upsert, quote_with,
};
use super::error::TargetError;
use ferry_model::{Value, format_datetime};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Arguments, AssertSqlSafe, Row};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

pub(crate) struct Sqlite;

impl Dialect for Sqlite {
    fn kind(&self) -> TargetKind {
        TargetKind::Sqlite
    }

    fn quote(&self, ident: &str) -> String {
        quote_with(ident, '"')
    }

    /// Anonymous `?`: statements bind in order, each parameter once (as for MySQL). Numbered
    /// `?n` would make SQLite look every parameter up by name, a linear search per parameter.
    fn placeholder(&self, _n: usize) -> String {
        "?".into()
    }

    fn max_identifier_len(&self) -> usize {
        // SQLite has no limit; this keeps names portable to the other targets.
        128
    }

    fn max_params(&self) -> usize {
        30_000
    }

    fn fold(&self, name: &str) -> String {
        name.to_ascii_lowercase()
    }

    fn column_type(&self, kind: &ColumnKind) -> String {
        match kind {
            ColumnKind::Text(_)
            | ColumnKind::Decimal { .. }
            | ColumnKind::Date
            | ColumnKind::DateTime
            | ColumnKind::Guid => "TEXT",
            ColumnKind::Int32 | ColumnKind::Int64 | ColumnKind::Bool => "INTEGER",
            ColumnKind::Real => "REAL",
        }
        .into()
    }

    fn family(&self, info: &ColumnInfo) -> Family {
        // SQLite's affinity rules, in their order.
        let ty = info.data_type.to_ascii_uppercase();
        if ty.contains("INT") {
            Family::AnyInteger
        } else if ty.contains("CHAR") || ty.contains("CLOB") || ty.contains("TEXT") {
            Family::AnyText
        } else if ty.contains("REAL") || ty.contains("FLOA") || ty.contains("DOUB") {
            Family::Real
        } else {
            Family::Other(info.data_type.clone())
        }
    }

    fn schema_exists_sql(&self) -> Option<&'static str> {
        None
    }

    fn create_schema_sql(&self, _schema: &str) -> String {
        unreachable!("SQLite's main schema always exists")
    }

    fn create_table_sql(&self, schema: &str, table: &TableDef) -> Vec<String> {
        let serial = "INTEGER PRIMARY KEY AUTOINCREMENT";
        let mut statements = vec![create_table_body(self, schema, table, serial, &[], "")];
        if let Some(column) = &table.index {
            statements.push(format!(
                "CREATE INDEX IF NOT EXISTS {} ON {} ({})",
                self.qualified(schema, &format!("{}_{column}_idx", table.name)),
                self.quote(&table.name),
                self.quote(column)
            ));
        }
        statements
    }

    fn widen_column_sql(&self, _schema: &str, _table: &str, _column: &ColumnDef) -> Option<String> {
        None
    }

    fn tables_sql(&self) -> &'static str {
        "SELECT name FROM pragma_table_list WHERE schema = ?1 AND type IN ('table', 'view')"
    }

    fn columns_sql(&self) -> &'static str {
        "SELECT name, type, NULL, NULL, NULL, type FROM pragma_table_info(?2, ?1) ORDER BY cid"
    }

    fn upsert(&self, sql: &mut Sql<'_>, schema: &str, upsert: &Upsert<'_>, rows: Vec<Vec<Value>>) {
        on_conflict_upsert(self, sql, schema, upsert, rows, "excluded", RowsAs::Values);
    }

    fn upsert_counts_rows_affected(&self) -> bool {
        true
    }
}

/// A pool of at most `max_connections` to the database file of `url` (created if missing), in
/// WAL mode with full fsync, waiting up to 30 s for the write lock.
pub(crate) async fn connect(url: &str, max_connections: u32, timeout: Duration) -> Result<SqlitePool, TargetError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| TargetError::Config(format!("invalid SQLite connection string: {e}")))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30));
    Ok(SqlitePoolOptions::new().max_connections(max_connections).acquire_timeout(timeout).connect_with(options).await?)
}

fn arguments(values: Vec<Arg>) -> Result<SqliteArguments, sqlx::Error> {
    let mut args = SqliteArguments::default();
    for Arg { value, .. } in values {
        match value {
            Value::Null => args.add(None::<String>),
            Value::String(s) => args.add(s),
            Value::Int(i) => args.add(i),
            Value::Decimal(d) => args.add(d.as_str().to_string()),
            Value::Real(r) => args.add(r),
            Value::Bool(b) => args.add(b),
            Value::Date(d) => args.add(d.format("%Y-%m-%d").to_string()),
            Value::DateTime(t) => args.add(format_datetime(&t)),
            Value::Guid(g) => args.add(g.hyphenated().to_string()),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

fn decode(row: &SqliteRow, i: usize, col: ColType) -> Result<Value, sqlx::Error> {
    Ok(match col {
        ColType::Text => row.try_get::<Option<String>, _>(i)?.map_or(Value::Null, Value::String),
        ColType::Int => row.try_get::<Option<i64>, _>(i)?.map_or(Value::Null, Value::Int),
        ColType::Guid => match row.try_get::<Option<String>, _>(i)? {
            None => Value::Null,
            Some(s) => Value::Guid(Uuid::parse_str(&s).map_err(|e| sqlx::Error::Decode(Box::new(e)))?),
        },
    })
}

impl Conn for SqliteConnection {
    async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64, sqlx::Error> {
        let result = sqlx::query_with(AssertSqlSafe(sql), arguments(args)?).execute(&mut *self).await?;
        Ok(result.rows_affected())
    }

    async fn fetch(&mut self, sql: &str, args: Vec<Arg>, cols: &[ColType]) -> Result<Vec<Vec<Value>>, sqlx::Error> {
        let rows = sqlx::query_with(AssertSqlSafe(sql), arguments(args)?).fetch_all(&mut *self).await?;
        rows.iter().map(|row| cols.iter().enumerate().map(|(i, &c)| decode(row, i, c)).collect()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_quoting() {
        let d = Sqlite;
        assert_eq!(d.quote("x_OptionSetMetadata"), "\"x_OptionSetMetadata\"");
        assert_eq!(d.column_type(&ColumnKind::Decimal { precision: 32, scale: 6 }), "TEXT");
        assert_eq!(d.column_type(&ColumnKind::Bool), "INTEGER");
        assert_eq!(d.placeholder(3), "?");
    }
}
