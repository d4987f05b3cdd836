//! `[[profiles]]`: replication (data export) profiles declared in the config and applied at
//! start-up. The file form ([`ProfileEntry`]) is resolved into [`ProfileDecl`]: defaults filled
//! in, names, ranges and kinds checked, an `env:VAR` connection string checked to be set.
//!
//! Entity names are only checked to be present here: the catalog is not known until start-up,
//! which reports unknown entities naming the profile.

use std::fmt;

use serde::Deserialize;

use crate::error::{KeyPath, Problem};
use crate::validate::{in_range, not_blank};

/// Default `retry_count`, as in the Data Export Service.
pub const PROFILE_RETRY_COUNT_DEFAULT: u32 = 12;
/// Default `retry_interval` (seconds).
pub const PROFILE_RETRY_INTERVAL_DEFAULT: u32 = 5;
/// Table prefixes are alphanumeric and shorter than this.
const TABLE_PREFIX_LEN_MAX: usize = 15;
/// Schema names are alphanumeric and shorter than this.
const SCHEMA_NAME_LEN_MAX: usize = 64;

/// The kind of database a profile replicates into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileTarget {
    Postgres,
    /// MySQL or MariaDB.
    MySql,
    Sqlite,
}

impl ProfileTarget {
    const NAMES: &'static str = "postgres, mysql, mariadb, sqlite";

    fn parse(text: &str) -> Option<ProfileTarget> {
        match text.trim().to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Some(ProfileTarget::Postgres),
            "mysql" | "mariadb" => Some(ProfileTarget::MySql),
            "sqlite" => Some(ProfileTarget::Sqlite),
            _ => None,
        }
    }

    /// `postgres`, `mysql` or `sqlite`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileTarget::Postgres => "postgres",
            ProfileTarget::MySql => "mysql",
            ProfileTarget::Sqlite => "sqlite",
        }
    }
}

/// The state a declared profile is put in at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileStateDecl {
    Inactive,
    /// Schema and data.
    Active,
    /// Schema only.
    MetadataOnly,
    /// Data only, into a schema created before.
    DataOnly,
}

impl ProfileStateDecl {
    const NAMES: &'static str = "inactive, active, metadataonly, dataonly";

    fn parse(text: &str) -> Option<ProfileStateDecl> {
        match text.trim().to_ascii_lowercase().as_str() {
            "inactive" => Some(ProfileStateDecl::Inactive),
            "active" => Some(ProfileStateDecl::Active),
            "metadataonly" => Some(ProfileStateDecl::MetadataOnly),
            "dataonly" => Some(ProfileStateDecl::DataOnly),
            _ => None,
        }
    }

    /// `Inactive`, `Active`, `MetadataOnly` or `DataOnly` (the API's spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileStateDecl::Inactive => "Inactive",
            ProfileStateDecl::Active => "Active",
            ProfileStateDecl::MetadataOnly => "MetadataOnly",
            ProfileStateDecl::DataOnly => "DataOnly",
        }
    }
}

/// A profile's target connection string: a reference to an environment variable (checked to be
/// set at load, read again whenever ferry connects) or the string itself.
#[derive(Clone, PartialEq, Eq)]
pub enum ConnectionString {
    /// `env:VAR`.
    Env(String),
    /// Anything else: the connection string itself (it may hold a password).
    Literal(String),
}

impl ConnectionString {
    fn parse(text: &str, env: &[(String, String)]) -> Result<ConnectionString, String> {
        let text = text.trim();
        let Some(var) = text.strip_prefix("env:") else {
            return if text.is_empty() {
                Err("must not be empty".to_owned())
            } else {
                Ok(ConnectionString::Literal(text.to_owned()))
            };
        };
        if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("'env:{var}' does not name an environment variable"));
        }
        match env.iter().rev().find(|(name, _)| name == var) {
            None => Err(format!("environment variable {var} is not set")),
            Some((_, value)) if value.trim().is_empty() => Err(format!("environment variable {var} is empty")),
            Some(_) => Ok(ConnectionString::Env(var.to_owned())),
        }
    }

    /// The form replication profiles store: `env:VAR` or the connection string itself.
    pub fn as_reference(&self) -> String {
        match self {
            ConnectionString::Env(var) => format!("env:{var}"),
            ConnectionString::Literal(text) => text.clone(),
        }
    }
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionString::Env(var) => f.debug_tuple("Env").field(var).finish(),
            ConnectionString::Literal(_) => f.write_str("Literal(<redacted>)"),
        }
    }
}

/// A replication profile to create or update at start-up (matched by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileDecl {
    /// Not blank, at most 100 characters; unique (without regard to case).
    pub name: String,
    pub description: String,
    pub target_type: ProfileTarget,
    pub connection_string: ConnectionString,
    /// Alphanumeric; `None` for the target's default.
    pub schema_name: Option<String>,
    /// Alphanumeric, shorter than 15 characters; may be empty.
    pub table_prefix: String,
    /// 0..=20.
    pub retry_count: u32,
    /// Seconds, 0..=3600.
    pub retry_interval_secs: u32,
    pub write_delete_log: bool,
    /// Entity names as written (logical, collection or label); never empty.
    pub entities: Vec<String>,
    pub state: ProfileStateDecl,
}

/// A `[[profiles]]` entry as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct ProfileEntry {
    name: String,
    #[serde(default)]
    description: Option<String>,
    target_type: String,
    connection_string: String,
    #[serde(default)]
    schema_name: Option<String>,
    #[serde(default)]
    table_prefix: Option<String>,
    #[serde(default)]
    retry_count: Option<u32>,
    #[serde(default)]
    retry_interval: Option<u32>,
    #[serde(default)]
    write_delete_log: bool,
    entities: Vec<String>,
    #[serde(default)]
    state: Option<String>,
}

/// Resolve every entry; names must be unique (without regard to case).
pub(crate) fn resolve_profiles(
    entries: Vec<ProfileEntry>,
    env: &[(String, String)],
    at: &KeyPath,
) -> Result<Vec<ProfileDecl>, Problem> {
    let mut profiles: Vec<ProfileDecl> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let at = at.index(i);
        let profile = entry.resolve(env, &at)?;
        if let Some(first) = profiles.iter().position(|p| p.name.eq_ignore_ascii_case(&profile.name)) {
            return Err(Problem::new(
                &at.key("name"),
                format!("duplicate profile name '{}' (also declared by profiles[{first}])", profile.name),
            ));
        }
        profiles.push(profile);
    }
    Ok(profiles)
}

/// An alphanumeric name part shorter than `max` characters (it ends up in SQL identifiers).
fn alphanumeric(value: &str, max: usize, at: &KeyPath) -> Result<(), Problem> {
    if let Some(c) = value.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(Problem::new(
            at,
            format!("'{value}' contains {c:?}; only the letters A-Z, a-z and digits 0-9 are allowed"),
        ));
    }
    let len = value.chars().count();
    if len >= max {
        return Err(Problem::new(at, format!("'{value}' is {len} characters long; it must be shorter than {max}")));
    }
    Ok(())
}

impl ProfileEntry {
    fn resolve(self, env: &[(String, String)], at: &KeyPath) -> Result<ProfileDecl, Problem> {
        not_blank(&self.name, &at.key("name"))?;
        if self.name.chars().count() > 100 {
            return Err(Problem::new(&at.key("name"), "must be at most 100 characters long"));
        }
        let target_type = ProfileTarget::parse(&self.target_type).ok_or_else(|| {
            Problem::new(
                &at.key("target_type"),
                format!("unknown target type '{}' (known: {})", self.target_type, ProfileTarget::NAMES),
            )
        })?;
        let connection_string = ConnectionString::parse(&self.connection_string, env)
            .map_err(|e| Problem::new(&at.key("connection_string"), e))?;
        let schema_name = match self.schema_name {
            Some(schema) if schema.is_empty() => None,
            Some(schema) => {
                alphanumeric(&schema, SCHEMA_NAME_LEN_MAX, &at.key("schema_name"))?;
                Some(schema)
            }
            None => None,
        };
        let table_prefix = self.table_prefix.unwrap_or_default();
        alphanumeric(&table_prefix, TABLE_PREFIX_LEN_MAX, &at.key("table_prefix"))?;
        let retry_count = self.retry_count.unwrap_or(PROFILE_RETRY_COUNT_DEFAULT);
        in_range(retry_count, 0..=20, &at.key("retry_count"))?;
        let retry_interval_secs = self.retry_interval.unwrap_or(PROFILE_RETRY_INTERVAL_DEFAULT);
        in_range(retry_interval_secs, 0..=3600, &at.key("retry_interval"))?;
        if self.entities.is_empty() {
            return Err(Problem::new(&at.key("entities"), "must name at least one entity to replicate"));
        }
        for (i, entity) in self.entities.iter().enumerate() {
            not_blank(entity, &at.key("entities").index(i))?;
        }
        let state = match self.state {
            None => ProfileStateDecl::Active,
            Some(text) => ProfileStateDecl::parse(&text).ok_or_else(|| {
                Problem::new(&at.key("state"), format!("unknown state '{text}' (known: {})", ProfileStateDecl::NAMES))
            })?,
        };
        Ok(ProfileDecl {
            name: self.name.trim().to_owned(),
            description: self.description.unwrap_or_default(),
            target_type,
            connection_string,
            schema_name,
            table_prefix,
            retry_count,
            retry_interval_secs,
            write_delete_log: self.write_delete_log,
            entities: self.entities,
            state,
        })
    }
}
