//! ferry's domain vocabulary: the entity catalog (entities, fields, enums, lookups) and the typed
//! values stored in entity rows.
//!
//! This crate is pure: no I/O, no async, no SQL, no wire format. It is shared by the store (which
//! turns entities into tables), the query layer (which binds OData filters against fields) and
//! the API (which turns JSON into [`Value`]s through [`FieldType::coerce`]).

mod catalog;
mod decimal;
mod definition;
mod field_type;
mod standard;
mod value;

pub use catalog::{Catalog, CatalogError, Entity, EnumMember, EnumStyle, EnumType, Field, Lookup};
pub use decimal::Decimal;
pub use definition::CatalogSource;
pub use field_type::{FieldType, Input, ValueError};
pub use standard::standard_sources;
pub use value::{Value, format_date, format_datetime};

/// The name of the company column as clients see it (F&O's `dataAreaId`).
pub const COMPANY_FIELD: &str = "dataAreaId";

/// Normalises a company id (`dataAreaId`) the way F&O does: companies match without regard to
/// case and are stored and returned in lower case.
pub fn normalize_company(company: &str) -> String {
    company.trim().to_ascii_lowercase()
}
