//! Entity tables from the catalog: created when missing, evolved online when a definition
//! gains fields (`ALTER TABLE … ADD COLUMN`), never dropped or narrowed.

use crate::error::StoreResult;
use crate::sql::{EntityTable, VERSION, quote, table_name};
use ferry_model::{Catalog, Value};
use ferry_sql::{ColType, Conn, Dialect, RowExt};

/// What preparing the catalog changed, for the start-up log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaReport {
    pub tables_created: Vec<String>,
    /// `table.column` for every column added to an existing table.
    pub columns_added: Vec<String>,
}

async fn existing_columns(conn: &mut Conn, table: &str) -> StoreResult<Vec<String>> {
    let sql = match conn.dialect() {
        Dialect::Postgres => {
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1"
        }
        _ => "SELECT name FROM pragma_table_info($1)",
    };
    let rows = conn.fetch(sql, vec![Value::String(table.to_string())], &[ColType::Text]).await?;
    Ok(rows.iter().map(|r| r.text(0)).collect::<Result<_, _>>()?)
}

pub(crate) async fn prepare(conn: &mut Conn, catalog: &Catalog) -> StoreResult<SchemaReport> {
    if conn.dialect() == Dialect::Postgres {
        // Several nodes may start at once: one prepares, the others then find the work done.
        // The two-int key form: the bigint form is reserved for change versions (migration 0005).
        conn.execute("SELECT pg_advisory_xact_lock(1717924466, 2)", ()).await?;
    }
    let mut report = SchemaReport::default();
    for entity in catalog.entities() {
        let table = EntityTable::new(entity, conn.dialect());
        let name = table_name(entity);
        let existing = existing_columns(conn, &name).await?;
        if existing.is_empty() {
            let mut defs = table.system_column_defs();
            defs.extend(table.stored_fields().map(|i| table.field_column_def(i)));
            let create = format!("CREATE TABLE {} (\n  {}\n)", table.name, defs.join(",\n  "));
            conn.execute(&create, ()).await?;
            if entity.primary_id.is_none() {
                let key_index = format!(
                    "CREATE UNIQUE INDEX {} ON {} ({})",
                    quote(&format!("ux_{name}_key")),
                    table.name,
                    table.key_columns().join(", ")
                );
                conn.execute(&key_index, ()).await?;
            }
            let version_index =
                format!("CREATE INDEX {} ON {} ({})", quote(&format!("ix_{name}_version")), table.name, quote(VERSION));
            conn.execute(&version_index, ()).await?;
            report.tables_created.push(name);
            continue;
        }
        for i in table.stored_fields() {
            let field = &entity.fields[i];
            if existing.iter().any(|c| c == &field.name) {
                continue;
            }
            // Added columns are nullable: existing rows have no value for them.
            let add =
                format!("ALTER TABLE {} ADD COLUMN {} {}", table.name, quote(&field.name), table.sql_type(&field.ty));
            conn.execute(&add, ()).await?;
            report.columns_added.push(format!("{name}.{}", field.name));
        }
    }
    Ok(report)
}
