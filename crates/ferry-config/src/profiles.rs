//! `[[profiles]]`: replication (data export) profiles declared in the config and applied at
//! start-up. The file form ([`ProfileEntry`]) is resolved into `ferry_domain::DeclaredProfile`:
//! the profile's defaults filled in, names, ranges and kinds checked, an `env:VAR` connection
//! string checked to be set.
//!
//! Entity names are only checked to be present here: the catalog is not known until start-up,
//! which reports unknown entities naming the profile.

use ferry_domain::{
    ConnectionString, DeclaredProfile, PROFILE_NAME_MAX, ProfileDefinition, ProfileState, RETRY_COUNT_MAX,
    RETRY_INTERVAL_SECS_MAX, SCHEMA_NAME_LEN_MAX, TABLE_PREFIX_LEN_MAX, TargetKind,
};
use serde::Deserialize;

use crate::error::{KeyPath, Problem};
use crate::validate::{in_range, not_blank};

/// The states the file accepts, in any case.
const STATE_NAMES: &str = "inactive, active, metadataonly, dataonly";

fn state(text: &str) -> Option<ProfileState> {
    match text.trim().to_ascii_lowercase().as_str() {
        "inactive" => Some(ProfileState::Inactive),
        "active" => Some(ProfileState::Active),
        "metadataonly" => Some(ProfileState::MetadataOnly),
        "dataonly" => Some(ProfileState::DataOnly),
        _ => None,
    }
}

/// `env:VAR` (the variable must be set and not empty) or the connection string itself.
fn connection_string(text: &str, env: &[(String, String)]) -> Result<ConnectionString, String> {
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
) -> Result<Vec<DeclaredProfile>, Problem> {
    let mut profiles: Vec<DeclaredProfile> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let at = at.index(i);
        let profile = entry.resolve(env, &at)?;
        if let Some(first) =
            profiles.iter().position(|p| p.definition.name.eq_ignore_ascii_case(&profile.definition.name))
        {
            return Err(Problem::new(
                &at.key("name"),
                format!("duplicate profile name '{}' (also declared by profiles[{first}])", profile.definition.name),
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
    fn resolve(self, env: &[(String, String)], at: &KeyPath) -> Result<DeclaredProfile, Problem> {
        not_blank(&self.name, &at.key("name"))?;
        if self.name.chars().count() > PROFILE_NAME_MAX {
            return Err(Problem::new(&at.key("name"), format!("must be at most {PROFILE_NAME_MAX} characters long")));
        }
        let target_type = TargetKind::from_name(&self.target_type).ok_or_else(|| {
            Problem::new(
                &at.key("target_type"),
                format!("unknown target type '{}' (known: {})", self.target_type, TargetKind::NAMES),
            )
        })?;
        let connection = connection_string(&self.connection_string, env)
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
        let mut definition = ProfileDefinition::new(self.name.trim(), target_type, self.entities);
        if let Some(count) = self.retry_count {
            in_range(count, 0..=RETRY_COUNT_MAX, &at.key("retry_count"))?;
            definition.retry_count = count;
        }
        if let Some(secs) = self.retry_interval {
            in_range(secs, 0..=RETRY_INTERVAL_SECS_MAX, &at.key("retry_interval"))?;
            definition.retry_interval_secs = secs;
        }
        if definition.entities.is_empty() {
            return Err(Problem::new(&at.key("entities"), "must name at least one entity to replicate"));
        }
        for (i, entity) in definition.entities.iter().enumerate() {
            not_blank(entity, &at.key("entities").index(i))?;
        }
        let state = match self.state {
            None => ProfileState::Active,
            Some(text) => state(&text).ok_or_else(|| {
                Problem::new(&at.key("state"), format!("unknown state '{text}' (known: {STATE_NAMES})"))
            })?,
        };
        definition.description = self.description.unwrap_or_default();
        definition.schema_name = schema_name;
        definition.table_prefix = table_prefix;
        definition.write_delete_log = self.write_delete_log;
        Ok(DeclaredProfile { definition, connection, state })
    }
}
