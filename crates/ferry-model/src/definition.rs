//! Entity definitions as written in TOML (the standard catalog and `entities_dir` files), and
//! their validation into catalog types. Every error names the file, entity and field. The files
//! are read into plain structs in `read`, by hand with `toml_reader` so that no serde is needed.

use crate::catalog::{CatalogError, Entity, EnumMember, EnumStyle, EnumType, Field, Lookup};
use crate::field_type::{FieldType, Input};
use read::FileDef;
use std::collections::HashMap;
use std::sync::Arc;
use toml_reader::Plain;

mod read;
mod toml_reader;

/// One definition file: where it came from (for errors) and its TOML text.
#[derive(Clone, Debug)]
pub struct CatalogSource {
    pub origin: String,
    pub text: String,
}

/// Field and entity names end up as SQL identifiers: keep them to a safe alphabet.
fn is_identifier(name: &str, max: usize) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && name.len() <= max
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_logical_name(name: &str) -> bool {
    is_identifier(name, 50) && !name.chars().any(|c| c.is_ascii_uppercase())
}

pub(crate) fn build(sources: &[CatalogSource]) -> Result<(Vec<Arc<EnumType>>, Vec<Entity>), CatalogError> {
    let mut files = Vec::new();
    for source in sources {
        files.push((source.origin.as_str(), FileDef::read(source)?));
    }

    let mut enums: Vec<Arc<EnumType>> = Vec::new();
    for (origin, file) in &files {
        for def in &file.enums {
            let fail = |message: String| CatalogError {
                origin: origin.to_string(),
                entity: None,
                field: None,
                message: format!("enum '{}': {message}", def.name),
            };
            if !is_identifier(&def.name, 80) {
                return Err(fail("enum names are letters, digits and '_', starting with a letter".into()));
            }
            if enums.iter().any(|e| e.name.eq_ignore_ascii_case(&def.name)) {
                return Err(fail("is declared twice".into()));
            }
            let style = match def.style.as_deref().unwrap_or("enum") {
                "enum" => EnumStyle::Symbol,
                "optionset" => EnumStyle::OptionSet,
                other => return Err(fail(format!("unknown style '{other}' (enum or optionset)"))),
            };
            if def.values.is_empty() {
                return Err(fail("has no values".into()));
            }
            let mut members = Vec::new();
            for v in &def.values {
                if members.iter().any(|m: &EnumMember| m.name.eq_ignore_ascii_case(&v.name)) {
                    return Err(fail(format!("value '{}' is declared twice", v.name)));
                }
                if members.iter().any(|m: &EnumMember| m.code == v.code) {
                    return Err(fail(format!("code {} is used twice", v.code)));
                }
                members.push(EnumMember {
                    name: v.name.clone(),
                    code: v.code,
                    label: v.label.clone().unwrap_or_else(|| v.name.clone()),
                });
            }
            enums.push(Arc::new(EnumType {
                name: def.name.clone(),
                label: def.label.clone().unwrap_or_else(|| def.name.clone()),
                style,
                members,
            }));
        }
    }

    let find_enum = |name: &str| enums.iter().find(|e| e.name.eq_ignore_ascii_case(name)).cloned();
    let mut entities: Vec<Entity> = Vec::new();
    let mut lookups: Vec<(usize, usize, String)> = Vec::new();
    let mut names_taken: HashMap<String, String> = HashMap::new();
    for (origin, file) in &files {
        for def in &file.entities {
            let entity_error = |message: String| CatalogError {
                origin: origin.to_string(),
                entity: Some(def.public_name.clone()),
                field: None,
                message,
            };
            for (what, name) in [
                ("label", &def.label),
                ("public_name", &def.public_name),
                ("collection", &def.collection),
                ("logical_name", &def.logical_name),
            ] {
                if let Some(owner) = names_taken.get(&name.to_ascii_lowercase()) {
                    return Err(entity_error(format!("{what} '{name}' is already used by entity '{owner}'")));
                }
            }
            if !is_identifier(&def.public_name, 80) || !is_identifier(&def.collection, 80) {
                return Err(entity_error(
                    "public_name and collection are letters, digits and '_', starting with a letter".into(),
                ));
            }
            if !is_logical_name(&def.logical_name) {
                return Err(entity_error(format!(
                    "logical_name '{}' must be lower-case letters, digits and '_', at most 50 characters",
                    def.logical_name
                )));
            }
            if def.label.trim().is_empty() {
                return Err(entity_error("label is empty".into()));
            }
            let entity_index = entities.len();
            let mut fields: Vec<Field> = Vec::new();
            for fdef in &def.fields {
                let field_error = |message: String| CatalogError {
                    origin: origin.to_string(),
                    entity: Some(def.public_name.clone()),
                    field: Some(fdef.name.clone()),
                    message,
                };
                if !is_identifier(&fdef.name, 63) {
                    return Err(field_error(
                        "field names are letters, digits and '_', starting with a letter, at most 63 characters".into(),
                    ));
                }
                if fdef.name.eq_ignore_ascii_case(crate::COMPANY_FIELD) {
                    return Err(field_error(
                        "dataAreaId is added by ferry: set company_specific = true instead".into(),
                    ));
                }
                if fields.iter().any(|f| f.name.eq_ignore_ascii_case(&fdef.name)) {
                    return Err(field_error("is declared twice (names match without regard to case)".into()));
                }
                let ty = FieldType::parse_spec(&fdef.ty, find_enum).map_err(field_error)?;
                let default = match &fdef.default {
                    None => None,
                    Some(plain) => {
                        let input = match plain {
                            Plain::Text(s) => Input::Text(s),
                            Plain::Number(n) => Input::Number(n),
                            Plain::Bool(b) => Input::Bool(*b),
                        };
                        Some(ty.coerce(input).map_err(|e| field_error(format!("default: {e}")))?)
                    }
                };
                if let Some(target) = &fdef.lookup {
                    lookups.push((entity_index, fields.len(), target.clone()));
                }
                fields.push(Field {
                    name: fdef.name.clone(),
                    label: fdef.label.clone().unwrap_or_else(|| fdef.name.clone()),
                    ty,
                    mandatory: fdef.mandatory,
                    default,
                    lookup: None,
                });
            }
            if fields.is_empty() {
                return Err(entity_error("has no fields".into()));
            }
            let primary_id = match &def.primary_id {
                None => None,
                Some(name) => {
                    let (i, f) = fields
                        .iter()
                        .enumerate()
                        .find(|(_, f)| f.name.eq_ignore_ascii_case(name))
                        .ok_or_else(|| entity_error(format!("primary_id '{name}' is not one of its fields")))?;
                    if !matches!(f.ty, FieldType::Guid) {
                        return Err(entity_error(format!("primary_id '{name}' must be of type guid")));
                    }
                    Some(i)
                }
            };
            let mut key_names = def.key.clone();
            if key_names.is_empty() {
                match primary_id {
                    Some(i) => key_names.push(fields[i].name.clone()),
                    None => return Err(entity_error("has no key: list its natural key fields in key = [...]".into())),
                }
            }
            let mut key = Vec::new();
            for name in &key_names {
                let (i, f) = fields
                    .iter()
                    .enumerate()
                    .find(|(_, f)| f.name.eq_ignore_ascii_case(name))
                    .ok_or_else(|| entity_error(format!("key field '{name}' is not one of its fields")))?;
                if matches!(f.ty, FieldType::Real) || matches!(f.ty, FieldType::String { max_length: None }) {
                    return Err(CatalogError {
                        field: Some(f.name.clone()),
                        ..entity_error(format!("type {} cannot be part of a key", f.ty))
                    });
                }
                if key.contains(&i) {
                    return Err(entity_error(format!("key field '{name}' is listed twice")));
                }
                key.push(i);
            }
            if primary_id.is_some() && key != vec![primary_id.unwrap_or_default()] {
                return Err(entity_error("an entity with a primary_id is keyed by it alone".into()));
            }
            for &i in &key {
                fields[i].mandatory = true;
            }
            for name in [&def.label, &def.public_name, &def.collection, &def.logical_name] {
                names_taken.insert(name.to_ascii_lowercase(), def.public_name.clone());
            }
            entities.push(Entity {
                label: def.label.clone(),
                public_name: def.public_name.clone(),
                collection: def.collection.clone(),
                logical_name: def.logical_name.clone(),
                category: def.category.clone().unwrap_or_else(|| "Master".into()),
                origin: origin.to_string(),
                fields,
                key,
                company_specific: def.company_specific,
                primary_id,
            });
        }
    }

    // Lookups refer to entities from any file, so they are resolved once all are known.
    for (entity_index, field_index, target) in lookups {
        let entity = &entities[entity_index];
        let field = &entity.fields[field_index];
        let fail = |message: String| CatalogError {
            origin: entity.origin.clone(),
            entity: Some(entity.public_name.clone()),
            field: Some(field.name.clone()),
            message,
        };
        let (target_entity, target_field) = target
            .split_once('.')
            .ok_or_else(|| fail(format!("lookup '{target}' must be written Collection.Field")))?;
        let target = entities
            .iter()
            .find(|e| e.collection.eq_ignore_ascii_case(target_entity))
            .ok_or_else(|| fail(format!("lookup names unknown entity set '{target_entity}'")))?;
        let (ti, tf) = target
            .field(target_field)
            .ok_or_else(|| fail(format!("lookup names unknown field '{target_field}' of {}", target.collection)))?;
        if target.key != vec![ti] {
            return Err(fail(format!(
                "lookup target {}.{} is not the single key of {}",
                target.collection, tf.name, target.collection
            )));
        }
        if !field.ty.same_kind(&tf.ty) {
            return Err(fail(format!(
                "type {} does not match lookup target {}.{} of type {}",
                field.ty, target.collection, tf.name, tf.ty
            )));
        }
        if !entity.company_specific && target.company_specific {
            return Err(fail(format!(
                "a shared entity cannot look up the company-specific entity {}",
                target.collection
            )));
        }
        let lookup = Lookup { entity: target.collection.clone(), field: tf.name.clone() };
        entities[entity_index].fields[field_index].lookup = Some(lookup);
    }
    Ok((enums, entities))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::value::Value;

    fn build_one(text: &str) -> Result<Catalog, CatalogError> {
        Catalog::build(&[CatalogSource { origin: "custom/x.toml".into(), text: text.into() }])
    }

    const GOOD: &str = r#"
        [[enums]]
        name = "Color"
        values = [{ name = "Red", code = 0 }, { name = "Blue", code = 1 }]

        [[entities]]
        label = "Widgets"
        public_name = "Widget"
        collection = "Widgets"
        logical_name = "widget"
        company_specific = true
        key = ["WidgetId"]
        fields = [
          { name = "WidgetId", type = "string(20)" },
          { name = "Color", type = "enum(Color)", default = "Blue" },
          { name = "Price", type = "decimal(10,2)", default = 0 },
        ]

        [[entities]]
        label = "Widget parts"
        public_name = "WidgetPart"
        collection = "WidgetParts"
        logical_name = "widgetpart"
        company_specific = true
        key = ["PartId"]
        fields = [
          { name = "PartId", type = "int" },
          { name = "WidgetId", type = "string(20)", lookup = "Widgets.WidgetId" },
        ]
    "#;

    #[test]
    fn builds_a_valid_definition() {
        let c = build_one(GOOD).unwrap();
        let w = c.by_collection("widgets").unwrap();
        assert_eq!(w.public_name, "Widget");
        assert!(w.fields[0].mandatory, "key fields are mandatory");
        assert_eq!(w.fields[1].default, Some(Value::Int(1)));
        assert!(c.by_any_name("Widget parts").unwrap().fields[1].lookup.is_some());
    }

    #[test]
    fn errors_name_file_entity_and_field() {
        let bad = GOOD.replace("decimal(10,2)", "decimal(10,20)");
        let e = build_one(&bad).unwrap_err();
        assert_eq!(e.origin, "custom/x.toml");
        assert_eq!(e.entity.as_deref(), Some("Widget"));
        assert_eq!(e.field.as_deref(), Some("Price"));
        assert!(e.to_string().starts_with("custom/x.toml: entity 'Widget', field 'Price': decimal(10,20)"), "{e}");

        let e = build_one(&GOOD.replace("Widgets.WidgetId", "Gadgets.WidgetId")).unwrap_err();
        assert!(e.message.contains("unknown entity set 'Gadgets'"), "{e}");
        let e = build_one(&GOOD.replace("\"WidgetId\"]", "\"Nope\"]")).unwrap_err();
        assert!(e.message.contains("key field 'Nope'"), "{e}");
        let e = build_one(&GOOD.replace("default = \"Blue\"", "default = \"Green\"")).unwrap_err();
        assert!(e.message.contains("'Green' is not a value of enum Color"), "{e}");
        let e = build_one(&GOOD.replace("logical_name = \"widget\"", "logical_name = \"Widget; drop\"")).unwrap_err();
        assert!(e.message.contains("logical_name"), "{e}");
        let e = build_one(
            &GOOD.replace("fields = [\n          { name = \"PartId\"", "fieldz = [\n          { name = \"PartId\""),
        )
        .unwrap_err();
        assert!(e.message.contains("fieldz"), "{e}");
    }

    #[test]
    fn unknown_keys_are_errors_at_every_level() {
        let e = build_one(&format!("entitiez = []\n{GOOD}")).unwrap_err();
        assert_eq!((e.entity.as_deref(), e.field.as_deref()), (None, None));
        assert_eq!(e.message, "unknown key 'entitiez': expected one of enums, entities (line 1)");

        let e = build_one(&GOOD.replace("logical_name = \"widget\"", "logical_name = \"widget\"\n colour = 1"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "custom/x.toml: entity 'Widget': unknown key 'colour': expected one of label, public_name, collection, \
             logical_name, category, company_specific, key, primary_id, fields (line 11)"
        );

        let e = build_one(&GOOD.replace("default = 0 }", "default = 0, mandtory = true }")).unwrap_err();
        assert_eq!((e.entity.as_deref(), e.field.as_deref()), (Some("Widget"), Some("Price")));
        assert!(e.message.starts_with("unknown key 'mandtory': expected one of name, label, type, mandatory"), "{e}");
    }

    #[test]
    fn missing_keys_are_named() {
        let e = build_one(&GOOD.replace("collection = \"Widgets\"\n", "")).unwrap_err();
        assert_eq!(e.to_string(), "custom/x.toml: entity 'Widget': missing key 'collection' (line 6)");

        // Without its name an entity is known by its position in the file.
        let e = build_one(&GOOD.replace("public_name = \"WidgetPart\"\n", "")).unwrap_err();
        assert_eq!(e.to_string(), "custom/x.toml: entity #2: missing key 'public_name' (line 19)");
    }

    #[test]
    fn values_of_the_wrong_type_name_the_key_and_the_type() {
        let e = build_one(&GOOD.replacen("company_specific = true", "company_specific = \"yes\"", 1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "custom/x.toml: entity 'Widget': key 'company_specific' must be true or false (line 11)"
        );

        let e = build_one(&GOOD.replace("code = 1", "code = \"1\"")).unwrap_err();
        assert_eq!(e.message, "enum 'Color', value 'Blue': key 'code' must be a 64-bit integer (line 4)");

        let e = build_one(&GOOD.replace("default = 0 }", "default = [0] }")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("Price"));
        assert!(e.message.starts_with("key 'default' must be a string, a number, or true or false"), "{e}");
    }

    #[test]
    fn syntax_errors_keep_the_parsers_line_and_column() {
        let e = build_one(&GOOD.replace("label = \"Widgets\"", "label = \"Widgets")).unwrap_err();
        assert_eq!((e.entity.as_deref(), e.field.as_deref()), (None, None));
        assert!(e.message.starts_with("TOML parse error at line 7, column"), "{e}");
    }

    #[test]
    fn rejects_duplicate_names_across_files() {
        let sources = [
            CatalogSource { origin: "a.toml".into(), text: GOOD.into() },
            CatalogSource {
                origin: "b.toml".into(),
                text: GOOD.replace("[[enums]]\n        name = \"Color\"", "[[enums]]\n        name = \"Colour\""),
            },
        ];
        let e = Catalog::build(&sources).unwrap_err();
        assert_eq!(e.origin, "b.toml");
        assert!(e.message.contains("already used"), "{e}");
    }
}
