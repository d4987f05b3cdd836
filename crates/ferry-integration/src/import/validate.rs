//! Staging one source record: cells → typed values by the column map, the company, defaults,
//! mandatory fields, and the hash a row's natural key is checked for duplicates by. Pure.

use super::mapping::{ColumnMap, Target, required_fields};
use ferry_formats::{Cell, SourceRecord};
use ferry_model::{Entity, FieldType, Input, Value, normalize_company};
use std::hash::{BuildHasher, Hasher};

/// Why one row cannot be staged (one per bad field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    pub field: Option<String>,
    pub code: String,
    pub message: String,
}

/// A staged row: typed values for every field of the entity, and its company.
#[derive(Clone, Debug, PartialEq)]
pub struct StagedRow {
    pub row: u64,
    pub company: Option<String>,
    pub values: Vec<Value>,
}

/// Stages `record`. Fields no column maps to get their default (or null); `company` applies
/// when no `dataAreaId` column gives one.
pub fn stage_record(
    entity: &Entity,
    map: &ColumnMap,
    record: &SourceRecord,
    company: Option<&str>,
) -> Result<StagedRow, Vec<RowError>> {
    let mut values: Vec<Value> =
        entity.fields.iter().map(|f| f.default.as_ref().map_or(Value::Null, Value::clone)).collect();
    let mut row_company = company.map(normalize_company);
    let mut errors = Vec::new();
    for (cell, target) in record.cells.iter().zip(&map.targets) {
        let Some(target) = target else { continue };
        match target {
            Target::Company => {
                if let Cell::Text(t) | Cell::Number(t) = cell
                    && !t.trim().is_empty()
                {
                    row_company = Some(normalize_company(t.trim()));
                }
            }
            Target::Field(i) => {
                let field = &entity.fields[*i];
                let input = match cell {
                    Cell::Null => Input::Null,
                    Cell::Bool(b) => Input::Bool(*b),
                    Cell::Number(n) => Input::Number(n),
                    // An empty cell is "no value" for every type but text.
                    Cell::Text(t) if t.is_empty() && !matches!(field.ty, FieldType::String { .. }) => Input::Null,
                    Cell::Text(t) => Input::Text(t),
                };
                match field.ty.coerce(input) {
                    Ok(v) => values[*i] = v,
                    Err(e) => errors.push(RowError {
                        field: Some(field.name.clone()),
                        code: e.code.to_string(),
                        message: format!("{}: {}", field.name, e.message),
                    }),
                }
            }
        }
    }
    for i in required_fields(entity) {
        let missing = match &values[i] {
            Value::Null => true,
            Value::String(s) => s.trim().is_empty(),
            _ => false,
        };
        let already = errors.iter().any(|e| e.field.as_deref() == Some(entity.fields[i].name.as_str()));
        if missing && !already {
            errors.push(RowError {
                field: Some(entity.fields[i].name.clone()),
                code: "missing_mandatory".into(),
                message: format!("{} is mandatory and has no value", entity.fields[i].name),
            });
        }
    }
    if entity.company_specific && row_company.is_none() {
        errors.push(RowError {
            field: Some(ferry_model::COMPANY_FIELD.into()),
            code: "missing_company".into(),
            message: "no company: enqueue with ?company=…, give the job a company, or add a dataAreaId column".into(),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(StagedRow { row: record.row, company: if entity.company_specific { row_company } else { None }, values })
}

/// `dataAreaId='usmf',CustomerAccount='C-1'` — the key of a row for error records.
pub fn describe_key(entity: &Entity, company: &Option<String>, values: &[Value]) -> String {
    let mut parts = Vec::new();
    if let Some(c) = company {
        parts.push(format!("{}='{c}'", ferry_model::COMPANY_FIELD));
    }
    for &i in &entity.key {
        parts.push(format!("{}={}", entity.fields[i].name, values[i].describe()));
    }
    parts.join(",")
}

/// The 64-bit hash of a staged row's natural key (company and key values); the same on every
/// run of the same file. (Two different keys hashing alike is about a one-in-a-million chance
/// even at five million rows.)
pub fn key_hash(entity: &Entity, row: &StagedRow) -> u64 {
    let mut h = std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().build_hasher();
    h.write(row.company.as_deref().unwrap_or("").as_bytes());
    for &i in &entity.key {
        h.write_u8(0xff);
        h.write(row.values[i].to_text().unwrap_or_default().as_bytes());
    }
    h.finish()
}
