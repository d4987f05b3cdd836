//! Source columns → entity fields. Explicit mappings first, then names matched without regard
//! to case (D365's upper-case staging names, `CUSTOMERACCOUNT`, match `CustomerAccount`).
//! `dataAreaId` (any case) names the company of each row. Pure.

use ferry_model::{COMPANY_FIELD, Entity};
use std::collections::BTreeMap;

/// Where a source column goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Field(usize),
    Company,
}

/// The mapping of one source's columns (grows with the columns of JSON and XML sources).
#[derive(Clone, Debug, Default)]
pub struct ColumnMap {
    pub targets: Vec<Option<Target>>,
    /// Source columns the entity has no field for, in source order.
    pub ignored: Vec<String>,
}

/// A required field no column maps to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MappingError {
    pub missing: Vec<String>,
    pub message: String,
}

impl ColumnMap {
    /// Maps `columns`. With `header_is_complete` (CSV, Excel: every column is known up front)
    /// the key fields and mandatory fields without a default must all be mapped.
    pub fn build(
        entity: &Entity,
        columns: &[String],
        explicit: &BTreeMap<String, String>,
        header_is_complete: bool,
    ) -> Result<ColumnMap, MappingError> {
        let mut map = ColumnMap::default();
        map.extend(entity, columns, explicit);
        if header_is_complete {
            let missing: Vec<String> = required_fields(entity)
                .filter(|&i| !map.targets.contains(&Some(Target::Field(i))))
                .map(|i| entity.fields[i].name.clone())
                .collect();
            if !missing.is_empty() {
                let message = format!(
                    "the file has no column for the required field{} {} of {}; add {} (header names match field \
                     names without regard to case) or map a column to {} in the data project",
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join(", "),
                    entity.label,
                    if missing.len() == 1 { "the column" } else { "the columns" },
                    if missing.len() == 1 { "it" } else { "them" },
                );
                return Err(MappingError { missing, message });
            }
        }
        Ok(map)
    }

    /// Maps columns beyond those already mapped (JSON and XML discover columns as they read).
    pub fn extend(&mut self, entity: &Entity, columns: &[String], explicit: &BTreeMap<String, String>) {
        for column in &columns[self.targets.len().min(columns.len())..] {
            let wanted = explicit
                .iter()
                .find(|(source, _)| source.eq_ignore_ascii_case(column.trim()))
                .map(|(_, field)| field.as_str())
                .unwrap_or(column.trim());
            let target = if wanted.eq_ignore_ascii_case(COMPANY_FIELD) {
                entity.company_specific.then_some(Target::Company)
            } else {
                entity.field(wanted).map(|(i, _)| Target::Field(i))
            };
            // A field mapped twice keeps its first column.
            let target = target.filter(|t| !self.targets.contains(&Some(*t)));
            if target.is_none() && !wanted.eq_ignore_ascii_case(COMPANY_FIELD) {
                self.ignored.push(column.clone());
            }
            self.targets.push(target);
        }
    }
}

/// Fields a row cannot do without: the key, and mandatory fields without a default.
pub fn required_fields(entity: &Entity) -> impl Iterator<Item = usize> + '_ {
    (0..entity.fields.len()).filter(move |&i| {
        Some(i) != entity.primary_id
            && (entity.key.contains(&i) || (entity.fields[i].mandatory && entity.fields[i].default.is_none()))
    })
}
