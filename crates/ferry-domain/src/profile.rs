//! Replication profiles: what to replicate where, the states a profile can be in, the kinds of
//! target database, and the rules a profile must satisfy (the Data Export Service's admin-screen
//! rules). Pure.

use chrono::{DateTime, Utc};
use ferry_model::Catalog;

pub const RETRY_COUNT_DEFAULT: u32 = 12;
pub const RETRY_COUNT_MAX: u32 = 20;
pub const RETRY_INTERVAL_SECS_DEFAULT: u32 = 5;
pub const RETRY_INTERVAL_SECS_MAX: u32 = 3600;
/// Table prefixes are alphanumeric and shorter than this.
pub const TABLE_PREFIX_LEN_MAX: usize = 15;
/// Schema names are alphanumeric and shorter than this.
pub const SCHEMA_NAME_LEN_MAX: usize = 64;
/// Longest profile name.
pub const PROFILE_NAME_MAX: usize = 100;

/// The kinds of database ferry replicates into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetKind {
    Postgres,
    /// MySQL or MariaDB.
    MySql,
    Sqlite,
}

impl TargetKind {
    pub const ALL: [TargetKind; 3] = [TargetKind::Postgres, TargetKind::MySql, TargetKind::Sqlite];

    /// The kind a name stands for, as users write it in every edge of ferry (configuration, API,
    /// command line): `postgres`/`postgresql`, `mysql`/`mariadb`, `sqlite`, in any case.
    pub fn from_name(name: &str) -> Option<TargetKind> {
        match name.trim().to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Some(TargetKind::Postgres),
            "mysql" | "mariadb" => Some(TargetKind::MySql),
            "sqlite" => Some(TargetKind::Sqlite),
            _ => None,
        }
    }

    /// The kind's name: `postgres`, `mysql` or `sqlite`.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Postgres => "postgres",
            TargetKind::MySql => "mysql",
            TargetKind::Sqlite => "sqlite",
        }
    }

    /// The names [`TargetKind::from_name`] accepts, for messages.
    pub const NAMES: &'static str = "postgres, mysql, mariadb, sqlite";

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

/// What a profile replicates, and where (its connection string is kept apart: it is a secret).
#[derive(Clone, PartialEq, Eq)]
pub struct ProfileDefinition {
    pub name: String,
    pub description: String,
    pub target_kind: TargetKind,
    /// Schema (PostgreSQL) or database (MariaDB) in the target; `None` for the kind's default.
    pub schema_name: Option<String>,
    /// Table name prefix without the underscore; may be empty.
    pub table_prefix: String,
    pub retry_count: u32,
    pub retry_interval_secs: u32,
    pub write_delete_log: bool,
    /// Entity logical names (after [`validate`]; any name of the entity before).
    pub entities: Vec<String>,
    pub relationships: Vec<String>,
}

impl ProfileDefinition {
    /// A profile of `entities` into a `kind` database, with the Data Export Service's defaults.
    pub fn new(name: impl Into<String>, target_kind: TargetKind, entities: Vec<String>) -> ProfileDefinition {
        ProfileDefinition {
            name: name.into(),
            description: String::new(),
            target_kind,
            schema_name: None,
            table_prefix: String::new(),
            retry_count: RETRY_COUNT_DEFAULT,
            retry_interval_secs: RETRY_INTERVAL_SECS_DEFAULT,
            write_delete_log: false,
            entities,
            relationships: Vec::new(),
        }
    }

    /// The schema the tables go in: the one named, else the target's default.
    pub fn schema(&self) -> &str {
        self.schema_name.as_deref().unwrap_or(self.target_kind.default_schema())
    }
}

impl std::fmt::Debug for ProfileDefinition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileDefinition")
            .field("name", &self.name)
            .field("target_kind", &self.target_kind)
            .field("entities", &self.entities)
            .finish_non_exhaustive()
    }
}

/// A stored profile: its definition and state (its connection string is kept apart, encrypted).
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub id: String,
    pub definition: ProfileDefinition,
    pub state: ProfileState,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Which parts of a profile run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProfileState {
    Inactive,
    /// Schema and data.
    Active,
    /// Schema only.
    MetadataOnly,
    /// Data only, into a schema created before.
    DataOnly,
}

impl ProfileState {
    pub const ALL: [ProfileState; 4] =
        [ProfileState::Inactive, ProfileState::Active, ProfileState::MetadataOnly, ProfileState::DataOnly];

    pub fn replicates_schema(self) -> bool {
        matches!(self, ProfileState::Active | ProfileState::MetadataOnly)
    }

    pub fn replicates_data(self) -> bool {
        matches!(self, ProfileState::Active | ProfileState::DataOnly)
    }

    pub fn runs(self) -> bool {
        self != ProfileState::Inactive
    }
}

/// A profile's target connection string: a reference to an environment variable (read whenever
/// ferry connects) or the string itself (which may hold a password; `Debug` hides it).
#[derive(Clone, PartialEq, Eq)]
pub enum ConnectionString {
    /// `env:VAR`.
    Env(String),
    Literal(String),
}

impl ConnectionString {
    /// `env:VAR` or the string itself: the form profiles keep (encrypted).
    pub fn from_reference(text: &str) -> ConnectionString {
        match text.trim().strip_prefix("env:") {
            Some(var) => ConnectionString::Env(var.to_owned()),
            None => ConnectionString::Literal(text.trim().to_owned()),
        }
    }

    pub fn as_reference(&self) -> String {
        match self {
            ConnectionString::Env(var) => format!("env:{var}"),
            ConnectionString::Literal(text) => text.clone(),
        }
    }

    /// The connection string itself; `env` answers environment variables.
    pub fn resolve(&self, env: &[(String, String)]) -> Result<String, String> {
        match self {
            ConnectionString::Literal(text) => Ok(text.clone()),
            ConnectionString::Env(var) => {
                env.iter().rev().find(|(k, _)| k == var).map(|(_, v)| v.clone()).ok_or_else(|| {
                    format!("the connection string refers to environment variable {var}, which is not set")
                })
            }
        }
    }
}

impl std::fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectionString::Env(var) => f.debug_tuple("Env").field(var).finish(),
            ConnectionString::Literal(_) => f.write_str("Literal(<redacted>)"),
        }
    }
}

/// A profile as the configuration declares it: applied at start-up, matched by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclaredProfile {
    pub definition: ProfileDefinition,
    pub connection: ConnectionString,
    pub state: ProfileState,
}

/// One thing wrong with a profile, named by its field (the API's field names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: &'static str,
    pub message: String,
}

/// Checks one part of a name that ends up in SQL (a schema or table prefix) by the Data Export
/// Service's rule: ASCII letters and digits only, not empty, shorter than `max_len` characters.
/// The message names `what` (e.g. `TablePrefix`).
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

/// Checks every rule; answers all problems at once (empty = valid). Entity names are matched
/// against the catalog without regard to case and rewritten to their logical names.
pub fn validate(definition: &mut ProfileDefinition, catalog: &Catalog) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut problem = |field: &'static str, message: String| problems.push(Problem { field, message });
    if definition.name.trim().is_empty() || definition.name.chars().count() > PROFILE_NAME_MAX {
        problem("Name", format!("Name is required (at most {PROFILE_NAME_MAX} characters)"));
    }
    if let Some(schema) = &definition.schema_name
        && let Err(e) = validate_identifier_part("SchemaName", schema, SCHEMA_NAME_LEN_MAX)
    {
        problem("SchemaName", e);
    }
    if !definition.table_prefix.is_empty()
        && let Err(e) = validate_identifier_part("TablePrefix", &definition.table_prefix, TABLE_PREFIX_LEN_MAX)
    {
        problem("TablePrefix", e);
    }
    if definition.retry_count > RETRY_COUNT_MAX {
        problem("RetryCount", format!("RetryCount {} is outside 0..={RETRY_COUNT_MAX}", definition.retry_count));
    }
    if definition.retry_interval_secs > RETRY_INTERVAL_SECS_MAX {
        problem(
            "RetryInterval",
            format!(
                "RetryInterval {} is outside 0..={RETRY_INTERVAL_SECS_MAX} seconds",
                definition.retry_interval_secs
            ),
        );
    }
    if definition.entities.is_empty() {
        problem("Entities", "list at least one entity to replicate".into());
    }
    let mut logical = Vec::new();
    for name in &definition.entities {
        match catalog.by_any_name(name) {
            Some(entity) if !logical.contains(&entity.logical_name) => logical.push(entity.logical_name.clone()),
            Some(entity) => problem("Entities", format!("entity {} is listed twice", entity.logical_name)),
            None => {
                problem("Entities", format!("unknown entity '{name}' (GET /crm/exporter/metadata/entities lists them)"))
            }
        }
    }
    definition.entities = logical;
    if !definition.relationships.is_empty() {
        problem("Relationships", "ferry's catalog has no many-to-many relationships to replicate".into());
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition() -> ProfileDefinition {
        ProfileDefinition {
            table_prefix: "rep".into(),
            write_delete_log: true,
            ..ProfileDefinition::new("Reporting", TargetKind::Postgres, vec!["Customers V3".into(), "account".into()])
        }
    }

    #[test]
    fn valid_profiles_pass_and_entities_become_logical_names() {
        let catalog = Catalog::build(&ferry_model::standard_sources()).unwrap();
        let mut d = definition();
        assert!(validate(&mut d, &catalog).is_empty());
        assert_eq!(d.entities, vec!["customerv3", "account"]);
    }

    #[test]
    fn every_problem_is_named() {
        let catalog = Catalog::build(&ferry_model::standard_sources()).unwrap();
        let mut d = ProfileDefinition {
            table_prefix: "x; DROP TABLE y".into(),
            schema_name: Some("dbo\"".into()),
            retry_count: 21,
            retry_interval_secs: 3601,
            entities: vec!["Nope".into()],
            ..definition()
        };
        let fields: Vec<&str> = validate(&mut d, &catalog).iter().map(|p| p.field).collect();
        assert_eq!(fields, vec!["SchemaName", "TablePrefix", "RetryCount", "RetryInterval", "Entities"]);
        let mut long = ProfileDefinition { table_prefix: "abcdefghijklmno".into(), ..definition() };
        assert_eq!(validate(&mut long, &catalog).len(), 1, "15 characters is one too many");
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
        assert!(validate_identifier_part("TablePrefix", "under_score", 15).is_err());
    }

    #[test]
    fn kinds_parse_and_print() {
        assert_eq!(TargetKind::from_name("PostgreSQL"), Some(TargetKind::Postgres));
        assert_eq!(TargetKind::from_name("mariadb"), Some(TargetKind::MySql));
        assert_eq!(TargetKind::from_name("mssql"), None);
        for kind in TargetKind::ALL {
            assert_eq!(TargetKind::from_name(kind.name()), Some(kind));
        }
    }

    #[test]
    fn connection_strings_resolve_and_stay_hidden() {
        let env = vec![("DB".to_string(), "postgres://u:secret@h/db".to_string())];
        let by_env = ConnectionString::from_reference("env:DB");
        assert_eq!(by_env.resolve(&env).unwrap(), "postgres://u:secret@h/db");
        assert!(ConnectionString::from_reference("env:NOPE").resolve(&env).unwrap_err().contains("NOPE"));
        let literal = ConnectionString::from_reference(" postgres://u:secret@h/db ");
        assert_eq!(literal.as_reference(), "postgres://u:secret@h/db");
        assert!(!format!("{literal:?}").contains("secret"));
    }
}
