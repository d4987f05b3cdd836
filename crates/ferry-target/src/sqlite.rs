//! SQLite targets: three storage types (TEXT holds strings, exact decimals, ISO dates and times,
//! GUIDs; INTEGER holds integers and booleans; REAL), `ON CONFLICT … DO UPDATE … WHERE` upserts,
//! pragma introspection. The schema is always `main`; lengths are not enforced, so no column
//! ever needs widening.

use crate::dialect::{
    BulkPath, ColumnDef, ColumnInfo, ColumnKind, Dialect, Family, RowsAs, TableDef, Upsert, create_table_body,
    on_conflict_upsert,
};
use ferry_domain::TargetKind;
use ferry_model::Value;
use ferry_sql::Sql;

pub(crate) struct Sqlite;

impl Dialect for Sqlite {
    fn kind(&self) -> TargetKind {
        TargetKind::Sqlite
    }

    fn sql(&self) -> ferry_sql::Dialect {
        ferry_sql::Dialect::Sqlite
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

    fn upsert(&self, sql: &mut Sql, schema: &str, upsert: &Upsert<'_>, rows: Vec<Vec<Value>>) {
        on_conflict_upsert(self, sql, schema, upsert, rows, "excluded", RowsAs::Values);
    }

    fn upsert_counts_rows_affected(&self) -> bool {
        true
    }

    fn bulk_path(&self) -> BulkPath {
        BulkPath::Upsert
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
        assert_eq!(d.sql().placeholder(3), "?");
    }
}
