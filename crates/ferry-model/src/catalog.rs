//! The entity catalog: entities, their fields, keys and lookups, and the enums fields use.
//! Built once from definition sources (see `definition.rs`), then read-only and shared.

use crate::definition::{self, CatalogSource};
use crate::field_type::FieldType;
use crate::value::Value;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// How an enum's values travel on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnumStyle {
    /// F&O style: values are symbols (`"Yes"`).
    Symbol,
    /// Dataverse option set: values are integer codes (`statecode: 0`).
    OptionSet,
}

#[derive(Clone, Debug)]
pub struct EnumMember {
    pub name: String,
    pub code: i64,
    pub label: String,
}

#[derive(Clone, Debug)]
pub struct EnumType {
    pub name: String,
    pub label: String,
    pub style: EnumStyle,
    pub members: Vec<EnumMember>,
}

impl EnumType {
    pub fn by_code(&self, code: i64) -> Option<&EnumMember> {
        self.members.iter().find(|m| m.code == code)
    }

    /// Finds a member by symbol name or label, without regard to case.
    pub fn by_name_or_label(&self, text: &str) -> Option<&EnumMember> {
        self.members
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(text))
            .or_else(|| self.members.iter().find(|m| m.label.eq_ignore_ascii_case(text)))
    }

    /// "No, Yes" — for error messages.
    pub fn allowed_list(&self) -> String {
        self.members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// A reference from a field to the key of another entity, checked on every write.
#[derive(Clone, Debug)]
pub struct Lookup {
    /// Collection name of the target entity.
    pub entity: String,
    /// The target's key field (its single key field, or its primary id).
    pub field: String,
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub label: String,
    pub ty: FieldType,
    pub mandatory: bool,
    pub default: Option<Value>,
    pub lookup: Option<Lookup>,
}

#[derive(Clone, Debug)]
pub struct Entity {
    /// Label name as data management shows it (`Customer groups`).
    pub label: String,
    /// Public entity name (`CustomerGroup`).
    pub public_name: String,
    /// Public collection (entity set) name (`CustomerGroups`).
    pub collection: String,
    /// Logical name for replication and storage (`customergroup`).
    pub logical_name: String,
    pub category: String,
    /// Where the definition came from (file name), for error messages.
    pub origin: String,
    pub fields: Vec<Field>,
    /// Indexes into `fields` of the natural key, in key order (company excluded).
    pub key: Vec<usize>,
    /// Company-specific (`dataAreaId`) or shared.
    pub company_specific: bool,
    /// Index of the GUID field that *is* the row id (Dataverse `accountid`), if any.
    pub primary_id: Option<usize>,
}

impl Entity {
    /// Finds a field by name, without regard to case.
    pub fn field(&self, name: &str) -> Option<(usize, &Field)> {
        self.fields.iter().enumerate().find(|(_, f)| f.name.eq_ignore_ascii_case(name))
    }

    pub fn key_fields(&self) -> impl Iterator<Item = &Field> {
        self.key.iter().map(|&i| &self.fields[i])
    }
}

/// A definition that cannot be used, named down to the file, entity and field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogError {
    pub origin: String,
    pub entity: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(entity) = &self.entity {
            write!(f, ": entity '{entity}'")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field '{field}'")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for CatalogError {}

/// All entities ferry knows, with case-insensitive indexes by every name clients use.
#[derive(Debug, Default)]
pub struct Catalog {
    entities: Vec<Arc<Entity>>,
    enums: Vec<Arc<EnumType>>,
    by_collection: HashMap<String, usize>,
    by_any_name: HashMap<String, usize>,
}

impl Catalog {
    /// Builds and validates a catalog from definition sources (standard ones first, then custom).
    pub fn build(sources: &[CatalogSource]) -> Result<Catalog, CatalogError> {
        let (enums, entities) = definition::build(sources)?;
        let mut catalog = Catalog { entities: Vec::new(), enums, ..Default::default() };
        for entity in entities {
            let index = catalog.entities.len();
            catalog.by_collection.insert(entity.collection.to_ascii_lowercase(), index);
            for name in [&entity.collection, &entity.public_name, &entity.label, &entity.logical_name] {
                catalog.by_any_name.entry(name.to_ascii_lowercase()).or_insert(index);
            }
            catalog.entities.push(Arc::new(entity));
        }
        Ok(catalog)
    }

    pub fn entities(&self) -> &[Arc<Entity>] {
        &self.entities
    }

    pub fn enums(&self) -> &[Arc<EnumType>] {
        &self.enums
    }

    /// Finds an entity by its collection (entity set) name, without regard to case.
    pub fn by_collection(&self, collection: &str) -> Option<&Arc<Entity>> {
        self.by_collection.get(&collection.to_ascii_lowercase()).map(|&i| &self.entities[i])
    }

    /// Finds an entity by any of its names: collection, public name, label or logical name.
    pub fn by_any_name(&self, name: &str) -> Option<&Arc<Entity>> {
        self.by_any_name.get(&name.trim().to_ascii_lowercase()).map(|&i| &self.entities[i])
    }

    pub fn enum_by_name(&self, name: &str) -> Option<&Arc<EnumType>> {
        self.enums.iter().find(|e| e.name.eq_ignore_ascii_case(name))
    }
}
