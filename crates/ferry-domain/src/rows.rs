//! Entity rows as ferry keeps them and as changes flow out of the store: natural keys, stored
//! rows with their change versions, tombstones of deleted rows, and batches of changes. Pure.

use chrono::{DateTime, Utc};
use ferry_model::{COMPANY_FIELD, Entity, FieldType, Input, Value};
use uuid::Uuid;

/// The natural key of one row: its company (company-specific entities) and its key field
/// values in key order (for entities with a primary id: that GUID).
#[derive(Clone, Debug, PartialEq)]
pub struct RowKey {
    pub company: Option<String>,
    pub values: Vec<Value>,
}

/// A natural key as text (for paging tokens and checkpoints, which keep it outside ferry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyText {
    pub company: Option<String>,
    pub values: Vec<String>,
}

impl RowKey {
    /// `dataAreaId='usmf',CustomerGroupId='10'`-like text for messages.
    pub fn describe(&self, entity: &Entity) -> String {
        let mut parts = Vec::new();
        if let Some(company) = &self.company {
            parts.push(format!("{COMPANY_FIELD}='{company}'"));
        }
        for (field, value) in entity.key_fields().zip(&self.values) {
            parts.push(format!("{}={}", field.name, value.describe()));
        }
        parts.join(",")
    }

    pub fn to_text(&self) -> KeyText {
        KeyText {
            company: self.company.clone(),
            values: self.values.iter().map(|v| v.to_text().unwrap_or_default()).collect(),
        }
    }

    /// The inverse of [`RowKey::to_text`] for `entity`; `None` if the text does not fit its key.
    pub fn from_text(entity: &Entity, text: &KeyText) -> Option<RowKey> {
        if text.values.len() != entity.key.len() {
            return None;
        }
        let values = entity
            .key_fields()
            .zip(&text.values)
            .map(|(field, text)| match &field.ty {
                // Enum values are kept as their codes.
                FieldType::Enum(_) => text.parse::<i64>().ok().map(Value::Int),
                ty => ty.coerce(Input::Text(text)).ok(),
            })
            .collect::<Option<Vec<_>>>()?;
        Some(RowKey { company: text.company.clone(), values })
    }
}

/// A row to insert or upsert: its company and one value per entity field (in field order). A
/// missing primary id is generated.
#[derive(Clone, Debug, PartialEq)]
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
    pub fn key(&self, entity: &Entity) -> RowKey {
        RowKey { company: self.company.clone(), values: entity.key.iter().map(|&i| self.values[i].clone()).collect() }
    }
}

/// Which companies a read covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompanyScope {
    One(String),
    All,
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
