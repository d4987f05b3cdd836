//! The target dialect layer: writing ferry's entities into a customer's SQL database in the
//! shape the Dynamics 365 Data Export Service (DES) gave it — one `<prefix>_<logicalname>` table
//! per entity keyed by `Id`, `versionnumber`, `SinkCreatedOn`/`SinkModifiedOn`, the DES metadata
//! tables and the optional `DeleteLog`.
//!
//! Layout:
//! - `client.rs`: [`Target`], the façade the engine calls; it owns the pool and runs each
//!   operation on the right dialect (`postgres.rs`, `mysql.rs`, `sqlite.rs`).
//! - Each dialect module has the same anatomy: quoting, type mapping, DDL, upsert, delete,
//!   introspection, and its driver binding (the [`conn::Conn`] seam).
//! - `layout.rs` turns an entity into table and column definitions (pure), `metadata.rs` fills
//!   the DES metadata tables (pure rows), `schema.rs` creates and evolves tables, `apply.rs`
//!   writes batches and checkpoints; both run on any dialect through the seam.
//!
//! Which tables ferry created is recorded in a registry table `<prefix>_ferry_tables` (written by
//! `ensure_schema` and `reset_entity`), so that `check` and `ensure_schema` never touch a table
//! that merely has the same name. Checkpoints live in `<prefix>_ferry_checkpoint`.

mod apply;
mod client;
mod conn;
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

use ferry_store::{StoredRow, Tombstone};

/// The kinds of database ferry replicates into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    Postgres,
    MySql,
    Sqlite,
}

impl TargetKind {
    /// `postgres`/`postgresql`, `mysql`/`mariadb`, `sqlite` (case-insensitive).
    pub fn parse(s: &str) -> Option<TargetKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Some(TargetKind::Postgres),
            "mysql" | "mariadb" => Some(TargetKind::MySql),
            "sqlite" => Some(TargetKind::Sqlite),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Postgres => "postgres",
            TargetKind::MySql => "mysql",
            TargetKind::Sqlite => "sqlite",
        }
    }

    /// The schema used when a profile names none: PostgreSQL's `public`, MySQL's current
    /// database of the connection (empty here), SQLite's `main`.
    pub fn default_schema(self) -> &'static str {
        match self {
            TargetKind::Postgres => "public",
            TargetKind::MySql => "",
            TargetKind::Sqlite => "main",
        }
    }
}

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

/// Checks one part of a name that ends up in SQL (a schema or table prefix) by the DES rule:
/// ASCII letters and digits only, not empty, shorter than `max_len` characters. The message
/// names `what` (e.g. `TablePrefix`).
pub fn validate_identifier_part(what: &str, s: &str, max_len: usize) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("{what} {s:?} may contain only the letters A-Z and a-z and the digits 0-9"));
    }
    let len = s.chars().count();
    if len >= max_len {
        return Err(format!("{what} {s:?} is {len} characters long; it must be shorter than {max_len}"));
    }
    Ok(())
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

/// Where an entity's replication stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    Initial,
    Delta,
}

impl Phase {
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Phase::Initial => "initial",
            Phase::Delta => "delta",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Phase> {
        match s {
            "initial" => Some(Phase::Initial),
            "delta" => Some(Phase::Delta),
            _ => None,
        }
    }
}

/// Progress of one entity of one profile, stored in the target in the same transaction as the
/// data it describes.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub profile_id: String,
    /// Entity logical name.
    pub entity: String,
    pub phase: Phase,
    pub snapshot_version: i64,
    /// Opaque JSON text set by the engine (initial-copy paging position).
    pub after_key: Option<String>,
    pub last_version: i64,
    pub rows_copied: i64,
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
    fn kinds_parse_and_print() {
        assert_eq!(TargetKind::parse("PostgreSQL"), Some(TargetKind::Postgres));
        assert_eq!(TargetKind::parse("mariadb"), Some(TargetKind::MySql));
        assert_eq!(TargetKind::parse("sqlite"), Some(TargetKind::Sqlite));
        assert_eq!(TargetKind::parse("mssql"), None);
        for kind in [TargetKind::Postgres, TargetKind::MySql, TargetKind::Sqlite] {
            assert_eq!(TargetKind::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn identifier_parts_follow_the_des_rule() {
        assert!(validate_identifier_part("TablePrefix", "crm2024", 15).is_ok());
        let e = validate_identifier_part("TablePrefix", "x; DROP TABLE y", 15).unwrap_err();
        assert!(e.contains("TablePrefix") && e.contains("letters"), "{e}");
        let e = validate_identifier_part("Schema", "", 64).unwrap_err();
        assert!(e.contains("Schema must not be empty"), "{e}");
        let e = validate_identifier_part("TablePrefix", "abcdefghijklmno", 15).unwrap_err();
        assert!(e.contains("shorter than 15"), "{e}");
        assert!(validate_identifier_part("TablePrefix", "abcdefghijklmn", 15).is_ok());
        assert!(validate_identifier_part("TablePrefix", "under_score", 15).is_err());
    }

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
