//! Profiles: what to replicate where, and the rules a profile must satisfy (the Data Export
//! Service's admin-screen rules). Pure: no I/O.

use crate::target::{TargetKind, validate_identifier_part};
use ferry_model::Catalog;
use serde::{Deserialize, Serialize};

pub const RETRY_COUNT_DEFAULT: u32 = 12;
pub const RETRY_COUNT_MAX: u32 = 20;
pub const RETRY_INTERVAL_SECS_DEFAULT: u32 = 5;
pub const RETRY_INTERVAL_SECS_MAX: u32 = 3600;
/// Table prefixes are alphanumeric and shorter than this.
pub const TABLE_PREFIX_LEN_MAX: usize = 15;

/// What a profile replicates, and where. Persisted as JSON in the store (`"v"` versions it).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileDefinition {
    #[serde(default = "version_1")]
    pub v: u32,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(with = "kind_text")]
    pub target_kind: TargetKind,
    /// Schema (PostgreSQL), database (MariaDB) in the target; default per dialect.
    #[serde(default)]
    pub schema_name: Option<String>,
    #[serde(default)]
    pub table_prefix: String,
    pub retry_count: u32,
    pub retry_interval_secs: u32,
    #[serde(default)]
    pub write_delete_log: bool,
    /// Entity logical names.
    pub entities: Vec<String>,
    #[serde(default)]
    pub relationships: Vec<String>,
}

fn version_1() -> u32 {
    1
}

/// Target kinds are persisted by name (`postgres`, `mysql`, `sqlite`).
mod kind_text {
    use crate::target::TargetKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(kind: &TargetKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TargetKind, D::Error> {
        let text = String::deserialize(d)?;
        TargetKind::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("unknown target kind '{text}'")))
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

/// Which parts of a profile run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileState {
    Inactive,
    /// Schema and data.
    Active,
    /// Schema only (`activatemetadata`).
    MetadataOnly,
    /// Data only, into a schema created before (`activatedata`).
    DataOnly,
}

impl ProfileState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileState::Inactive => "Inactive",
            ProfileState::Active => "Active",
            ProfileState::MetadataOnly => "MetadataOnly",
            ProfileState::DataOnly => "DataOnly",
        }
    }

    pub fn parse(text: &str) -> Option<ProfileState> {
        [ProfileState::Inactive, ProfileState::Active, ProfileState::MetadataOnly, ProfileState::DataOnly]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
    }

    pub fn replicates_schema(self) -> bool {
        matches!(self, ProfileState::Active | ProfileState::MetadataOnly)
    }

    pub fn replicates_data(self) -> bool {
        matches!(self, ProfileState::Active | ProfileState::DataOnly)
    }
}

/// One thing wrong with a profile, named by its field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: &'static str,
    pub message: String,
}

/// Checks every rule; answers all problems at once (empty = valid). Entity names are matched
/// against the catalog without regard to case and rewritten to their logical names.
pub fn validate(definition: &mut ProfileDefinition, catalog: &Catalog) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut problem = |field: &'static str, message: String| problems.push(Problem { field, message });
    if definition.name.trim().is_empty() || definition.name.len() > 100 {
        problem("Name", "Name is required (at most 100 characters)".into());
    }
    if let Some(schema) = &definition.schema_name
        && let Err(e) = validate_identifier_part("SchemaName", schema, 64)
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
            v: 1,
            name: "Reporting".into(),
            description: String::new(),
            target_kind: TargetKind::Postgres,
            schema_name: None,
            table_prefix: "rep".into(),
            retry_count: RETRY_COUNT_DEFAULT,
            retry_interval_secs: RETRY_INTERVAL_SECS_DEFAULT,
            write_delete_log: true,
            entities: vec!["Customers V3".into(), "account".into()],
            relationships: vec![],
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
}
