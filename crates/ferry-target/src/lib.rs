//! The target dialect layer: writing ferry's entities into a customer's SQL database in the
//! shape the Dynamics 365 Data Export Service (DES) gave it — one `<prefix>_<logicalname>` table
//! per entity keyed by `Id`, `versionnumber`, `SinkCreatedOn`/`SinkModifiedOn`, the DES metadata
//! tables and the optional `DeleteLog`.
//!
//! Layout:
//! - `client.rs`: [`Target`], the façade the engine calls; it owns the pool and runs each
//!   operation on the right dialect (`postgres.rs`, `mysql.rs`, `sqlite.rs`).
//! - Each dialect module has the same anatomy: type mapping, DDL, upsert and introspection; the
//!   connections, quoting, placeholders and the binding of values are `ferry-sql`'s, shared
//!   with ferry's own store.
//! - `layout.rs` turns an entity into table and column definitions (pure), `metadata.rs` fills
//!   the DES metadata tables (pure rows), `schema.rs` creates and evolves tables, `apply.rs`
//!   writes batches and checkpoints; both run on any dialect through the seam.
//!
//! Which tables ferry created is recorded in a registry table `<prefix>_ferry_tables` (written by
//! `ensure_schema` and `reset_entity`), so that `check` and `ensure_schema` never touch a table
//! that merely has the same name. Checkpoints live in `<prefix>_ferry_checkpoint`.

mod apply;
mod client;
mod dialect;
mod error;
mod layout;
mod metadata;
mod mysql;
mod postgres;
mod schema;
mod sqlite;

pub use client::Target;
pub use error::{ApplyError, TargetError};

use ferry_domain::{StoredRow, TargetKind, Tombstone};

/// Where and how a profile writes.
#[derive(Clone)]
pub struct TargetSpec {
    pub kind: TargetKind,
    /// May hold a password: never printed (see the `Debug` impl).
    pub connection_string: String,
    /// PostgreSQL schema / MySQL database; `None` for the kind's default.
    pub schema: Option<String>,
    /// Table name prefix without the underscore; may be empty.
    pub table_prefix: String,
    pub write_delete_log: bool,
}

impl std::fmt::Debug for TargetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetSpec")
            .field("kind", &self.kind)
            .field("connection_string", &"<redacted>")
            .field("schema", &self.schema)
            .field("table_prefix", &self.table_prefix)
            .field("write_delete_log", &self.write_delete_log)
            .finish()
    }
}

/// The outcome of one readiness check of a target (`Target::check`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// What `Target::ensure_schema` did or could not do.
#[derive(Debug, Default, PartialEq)]
pub struct SchemaChanges {
    /// Entity tables created (unquoted names).
    pub tables_created: Vec<String>,
    /// `table.column` added to existing tables.
    pub columns_added: Vec<String>,
    /// `table.column` widened (longer strings, bigger numbers).
    pub columns_widened: Vec<String>,
    /// Entities whose table cannot follow the catalog: (entity logical name, reason).
    pub incompatible: Vec<(String, String)>,
}

/// Changes of one entity to write in one target transaction.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub upserts: Vec<StoredRow>,
    pub deletes: Vec<Tombstone>,
}

/// What one `Target::apply` wrote.
#[derive(Debug, Default, PartialEq)]
pub struct ApplyOutcome {
    /// Rows inserted or rewritten (rows whose target copy is newer are not counted).
    pub upserted: u64,
    /// Rows deleted (tombstones whose row was already gone or newer are not counted).
    pub deleted: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_debug_hides_the_connection_string() {
        let spec = TargetSpec {
            kind: TargetKind::Postgres,
            connection_string: "postgres://u:secret@h/db".into(),
            schema: None,
            table_prefix: "crm".into(),
            write_delete_log: true,
        };
        let shown = format!("{spec:?}");
        assert!(!shown.contains("secret") && shown.contains("<redacted>"), "{shown}");
    }
}
