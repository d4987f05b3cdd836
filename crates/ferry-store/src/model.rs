//! The store's public data types: rows, keys, queries, change sets, apps and signing keys.

use chrono::{DateTime, Utc};
use ferry_model::Value;
use ferry_query::{BoundExpr, Column};
use uuid::Uuid;

/// The natural key of one row: its company (company-specific entities) and its key field
/// values in key order (for entities with a primary id: that GUID).
#[derive(Clone, Debug, PartialEq)]
pub struct RowKey {
    pub company: Option<String>,
    pub values: Vec<Value>,
}

impl RowKey {
    /// `dataAreaId='usmf',CustomerGroupId='10'`-like text for messages.
    pub fn describe(&self, entity: &ferry_model::Entity) -> String {
        let mut parts = Vec::new();
        if let Some(company) = &self.company {
            parts.push(format!("{}='{company}'", ferry_model::COMPANY_FIELD));
        }
        for (field, value) in entity.key_fields().zip(&self.values) {
            parts.push(format!("{}={}", field.name, value.describe()));
        }
        parts.join(",")
    }
}

impl RowKey {
    /// The key as text (company, values), e.g. for paging tokens and checkpoints.
    pub fn to_texts(&self) -> (Option<String>, Vec<String>) {
        (self.company.clone(), self.values.iter().map(|v| v.to_text().unwrap_or_default()).collect())
    }

    /// The inverse of [`RowKey::to_texts`] for `entity`; `None` if the texts do not fit its key.
    pub fn from_texts(entity: &ferry_model::Entity, company: Option<String>, texts: &[String]) -> Option<RowKey> {
        if texts.len() != entity.key.len() {
            return None;
        }
        let values = entity
            .key_fields()
            .zip(texts)
            .map(|(field, text)| match &field.ty {
                // Enum values are kept as their codes.
                ferry_model::FieldType::Enum(_) => text.parse::<i64>().ok().map(Value::Int),
                ty => ty.coerce(ferry_model::Input::Text(text)).ok(),
            })
            .collect::<Option<Vec<_>>>()?;
        Some(RowKey { company, values })
    }
}

/// A row to insert: its company and one value per entity field (in field order). A missing
/// primary id is generated.
#[derive(Clone, Debug)]
pub struct NewRow {
    pub company: Option<String>,
    pub values: Vec<Value>,
}

/// A row as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRow {
    pub id: Uuid,
    pub company: Option<String>,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    /// Change version: from the one sequence shared by all entities.
    pub version: i64,
    /// One value per entity field, in field order.
    pub values: Vec<Value>,
}

impl StoredRow {
    pub fn key(&self, entity: &ferry_model::Entity) -> RowKey {
        RowKey { company: self.company.clone(), values: entity.key.iter().map(|&i| self.values[i].clone()).collect() }
    }
}

/// Which companies a read covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompanyScope {
    One(String),
    All,
}

/// A page request over one entity.
#[derive(Clone, Debug)]
pub struct RowQuery {
    pub scope: CompanyScope,
    pub filter: Option<BoundExpr>,
    /// Requested order; the natural key always follows as a tie-breaker.
    pub order: Vec<(Column, bool)>,
    /// Keyset paging: only rows after this key in natural-key order (only with empty `order`).
    pub after: Option<RowKey>,
    pub offset: u64,
    pub limit: u64,
}

/// A deleted row, remembered with the version of its deletion.
#[derive(Clone, Debug, PartialEq)]
pub struct Tombstone {
    pub id: Uuid,
    pub company: Option<String>,
    /// The natural key values as text, in key order.
    pub key: Vec<String>,
    pub version: i64,
    pub deleted_at: DateTime<Utc>,
}

/// Everything that changed in an entity after one version, up to `through_version`.
#[derive(Clone, Debug)]
pub struct Changes {
    /// Rows inserted or updated (current state), in version order.
    pub rows: Vec<StoredRow>,
    /// Rows deleted, in version order.
    pub deleted: Vec<Tombstone>,
    /// Every change up to and including this version is in this batch or an earlier one.
    pub through_version: i64,
    /// Whether more changes follow after `through_version` (the batch hit its limit).
    pub more: bool,
}

/// Where a client app was declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppOrigin {
    Config,
    Cli,
}

impl AppOrigin {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AppOrigin::Config => "config",
            AppOrigin::Cli => "cli",
        }
    }
}

/// A client app allowed to obtain tokens (client-credentials grant).
#[derive(Clone, PartialEq, Eq)]
pub struct App {
    pub client_id: String,
    pub name: String,
    /// argon2 PHC hash of the secret; the secret itself is never stored.
    pub secret_hash: String,
    pub roles: Vec<String>,
    pub default_company: Option<String>,
    pub enabled: bool,
    pub origin: AppOrigin,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("default_company", &self.default_company)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// A token signing key. The private key is stored encrypted by the caller.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    pub algorithm: String,
    pub private_key_encrypted: String,
    pub public_jwk: String,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}
