//! The DES metadata tables (`OptionSetMetadata`, `GlobalOptionSetMetadata`, `StateMetadata`,
//! `StatusMetadata`, `TargetMetadata`, `AttributeMetadata`): their definitions and their rows
//! for a set of entities. Pure; `schema.rs` writes them. Labels are English (language code
//! 1033) and not user-localized, as ferry has one label per member.

use crate::dialect::{ColumnDef, ColumnKind, TableDef};
use crate::layout::{EntityLayout, Names, Source};
use ferry_model::{Catalog, Entity, FieldType, Value};
use std::collections::HashMap;

const LANGUAGE_CODE: i64 = 1033;

/// The six metadata tables in a fixed order (the order of [`rows`]).
pub(crate) fn tables(names: &Names) -> Vec<TableDef> {
    let text = |n| ColumnKind::Text(Some(n));
    let col = ColumnDef::new;
    let label_columns = || {
        vec![
            col("IsUserLocalizedLabel", ColumnKind::Bool),
            col("LocalizedLabelLanguageCode", ColumnKind::Int32),
            col("LocalizedLabel", ColumnKind::Text(None)),
        ]
    };
    let option_set = |global: bool| {
        let mut columns =
            vec![col("EntityName", text(64)), col("OptionSetName", text(128)), col("Option", ColumnKind::Int32)];
        columns.extend(label_columns());
        if global {
            columns.push(col("GlobalOptionSetName", text(128)));
        }
        columns
    };
    let mut state = vec![col("EntityName", text(64)), col("State", ColumnKind::Int32)];
    state.extend(label_columns());
    let mut status =
        vec![col("EntityName", text(64)), col("State", ColumnKind::Int32), col("Status", ColumnKind::Int32)];
    status.extend(label_columns());
    let target = vec![
        col("EntityName", text(64)),
        col("AttributeName", text(128)),
        col("ReferencedEntity", text(64)),
        col("ReferencedAttribute", text(128)),
    ];
    let attribute = vec![
        col("EntityName", text(64)),
        col("AttributeName", text(128)),
        col("AttributeType", text(64)),
        col("AttributeTypeCode", ColumnKind::Int32),
        col("Precision", ColumnKind::Int32),
        col("MaxLength", ColumnKind::Int32),
        col("IsKey", ColumnKind::Bool),
    ];
    [
        ("OptionSetMetadata", option_set(false)),
        ("GlobalOptionSetMetadata", option_set(true)),
        ("StateMetadata", state),
        ("StatusMetadata", status),
        ("TargetMetadata", target),
        ("AttributeMetadata", attribute),
    ]
    .into_iter()
    .map(|(base, columns)| TableDef {
        name: names.table(base),
        columns,
        primary_key: Vec::new(),
        serial_id: None,
        index: None,
    })
    .collect()
}

/// The lookup targets of `entity`'s fields: field index → (target logical name, target column).
pub(crate) fn lookup_targets(catalog: &Catalog, entity: &Entity) -> HashMap<usize, (String, String)> {
    entity
        .fields
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let lookup = f.lookup.as_ref()?;
            let logical = catalog
                .by_collection(&lookup.entity)
                .map_or_else(|| lookup.entity.to_ascii_lowercase(), |e| e.logical_name.clone());
            Some((i, (logical, lookup.field.to_ascii_lowercase())))
        })
        .collect()
}

/// The rows of the six tables of [`tables`], for `entities` with their layouts.
pub(crate) fn rows(catalog: &Catalog, entities: &[(&Entity, &EntityLayout)]) -> Vec<Vec<Vec<Value>>> {
    let mut out: Vec<Vec<Vec<Value>>> = vec![Vec::new(); 6];
    let labels = |label: &str| [Value::Bool(false), Value::Int(LANGUAGE_CODE), Value::String(label.to_string())];
    for (entity, layout) in entities {
        let name = || Value::String(entity.logical_name.clone());
        for field in &entity.fields {
            let FieldType::Enum(enum_type) = &field.ty else { continue };
            let column = field.name.to_ascii_lowercase();
            for member in &enum_type.members {
                let code = Value::Int(member.code);
                match column.as_str() {
                    "statecode" => out[2].push([vec![name(), code], labels(&member.label).to_vec()].concat()),
                    "statuscode" => {
                        out[3].push([vec![name(), Value::Null, code], labels(&member.label).to_vec()].concat())
                    }
                    _ => {
                        let row = [vec![name(), Value::String(column.clone()), code], labels(&member.label).to_vec()];
                        out[0].push(row.concat());
                        let mut global = row.concat();
                        global.push(Value::String(enum_type.name.clone()));
                        out[1].push(global);
                    }
                }
            }
        }
        let targets = lookup_targets(catalog, entity);
        let mut lookups: Vec<_> = targets.into_iter().collect();
        lookups.sort_by_key(|(i, _)| *i);
        for (i, (target, target_column)) in lookups {
            out[4].push(vec![
                name(),
                Value::String(entity.fields[i].name.to_ascii_lowercase()),
                Value::String(target),
                Value::String(target_column),
            ]);
        }
        for (column, source) in layout.table.columns.iter().zip(&layout.sources) {
            let (ty, code, precision, max_length, key) = attribute(entity, *source);
            out[5].push(vec![
                name(),
                Value::String(column.name.clone()),
                Value::String(ty.into()),
                Value::Int(code),
                precision.map_or(Value::Null, |p| Value::Int(p.into())),
                max_length.map_or(Value::Null, |n| Value::Int(n.into())),
                Value::Bool(key),
            ]);
        }
    }
    out
}

/// Dataverse's AttributeType name and AttributeTypeCode of a column, its precision (digits after
/// the decimal point, as Dataverse means it), maximum length and whether it is part of the key.
fn attribute(entity: &Entity, source: Source) -> (&'static str, i64, Option<u32>, Option<u32>, bool) {
    match source {
        Source::Id => ("Uniqueidentifier", 15, None, None, true),
        Source::Company => ("String", 14, None, Some(32), true),
        Source::EntityType(_) => ("EntityName", 20, None, Some(128), false),
        Source::Version => ("BigInt", 18, None, None, false),
        Source::Created | Source::Modified => ("DateTime", 2, None, None, false),
        Source::Field(i) => {
            let field = &entity.fields[i];
            let key = entity.key.contains(&i) || entity.primary_id == Some(i);
            let (ty, code, precision, max_length) = match &field.ty {
                FieldType::String { max_length: Some(n) } => ("String", 14, None, Some(*n)),
                FieldType::String { max_length: None } => ("Memo", 7, None, None),
                FieldType::Int => ("Integer", 5, None, None),
                FieldType::Int64 => ("BigInt", 18, None, None),
                FieldType::Decimal { scale, .. } => ("Decimal", 3, Some(*scale), None),
                FieldType::Real => ("Double", 4, None, None),
                FieldType::Bool => ("Boolean", 0, None, None),
                FieldType::Date | FieldType::DateTime => ("DateTime", 2, None, None),
                FieldType::Guid if field.lookup.is_some() => ("Lookup", 6, None, None),
                FieldType::Guid => ("Uniqueidentifier", 15, None, None),
                FieldType::Enum(_) => enum_attribute(&field.name),
            };
            (ty, code, precision, max_length, key)
        }
    }
}

fn enum_attribute(field: &str) -> (&'static str, i64, Option<u32>, Option<u32>) {
    match field.to_ascii_lowercase().as_str() {
        "statecode" => ("State", 12, None, None),
        "statuscode" => ("Status", 13, None, None),
        _ => ("Picklist", 11, None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::entity_layout;
    use ferry_model::standard_sources;

    #[test]
    fn account_rows() {
        let catalog = Catalog::build(&standard_sources()).unwrap();
        let account = catalog.by_collection("accounts").unwrap();
        let layout = entity_layout(account, "account".into(), 63).unwrap();
        let rows = rows(&catalog, &[(account, &layout)]);
        let account_name = Value::String("account".into());
        // statecode: Active 0, Inactive 1.
        assert_eq!(rows[2].len(), 2);
        assert_eq!(rows[2][1][..2], [account_name.clone(), Value::Int(1)]);
        assert_eq!(rows[2][1][4], Value::String("Inactive".into()));
        assert_eq!(rows[3].len(), 2);
        assert_eq!(rows[3][0][1], Value::Null);
        // Option sets other than state and status, in both tables.
        assert_eq!(rows[0].len(), rows[1].len());
        assert!(rows[0].iter().any(|r| r[1] == Value::String("industrycode".into()) && r[2] == Value::Int(33)));
        assert!(rows[1].iter().all(|r| r.len() == 7));
        assert!(rows[0].iter().all(|r| r[1] != Value::String("statecode".into())));
        // parentaccountid → account.accountid
        assert!(rows[4].contains(&vec![
            account_name.clone(),
            Value::String("parentaccountid".into()),
            Value::String("account".into()),
            Value::String("accountid".into()),
        ]));
        assert_eq!(rows[5].len(), layout.table.columns.len());
        let id = rows[5].iter().find(|r| r[1] == Value::String("accountid".into())).unwrap();
        assert_eq!(id[2], Value::String("Uniqueidentifier".into()));
        assert_eq!(id[6], Value::Bool(true));
    }
}
