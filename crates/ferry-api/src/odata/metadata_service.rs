//! The F&O metadata service (`/Metadata/DataEntities`, `/PublicEntities`,
//! `/PublicEnumerations`): small in-memory lists with `('Name')` key lookup, `$filter`
//! (incl. `contains`/`tolower`), `$select` and `$top`.

use super::Ctx;
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::response::{IntoResponse, Response};
use ferry_model::{COMPANY_FIELD, Catalog, EnumStyle, FieldType};
use ferry_query::{PlainValue, evaluate, parse_filter, parse_key_predicate, parse_select};
use serde_json::{Map, Value, json};

fn data_entities(catalog: &Catalog) -> Vec<Value> {
    catalog
        .entities()
        .iter()
        .map(|e| {
            json!({
                "Name": e.public_name,
                "PublicEntityName": e.public_name,
                "PublicCollectionName": e.collection,
                "LabelId": e.label,
                "LogicalName": e.logical_name,
                "DataServiceEnabled": true,
                "DataManagementEnabled": true,
                "EntityCategory": e.category,
                "IsReadOnly": false,
            })
        })
        .collect()
}

fn public_entities(catalog: &Catalog) -> Vec<Value> {
    catalog
        .entities()
        .iter()
        .map(|e| {
            let mut properties = Vec::new();
            if e.company_specific {
                properties.push(json!({
                    "Name": COMPANY_FIELD, "TypeName": "DataAreaId", "DataType": "String", "LabelId": "Company",
                    "IsKey": true, "IsMandatory": true, "ConfigurationEnabled": true, "AllowEdit": false,
                    "AllowEditOnCreate": true, "IsDimension": false, "DimensionRelation": "", "IsDynamicDimension": false,
                    "DimensionLegalEntityProperty": "", "DimensionTypeProperty": "",
                }));
            }
            for (i, f) in e.fields.iter().enumerate() {
                let is_key = e.key.contains(&i);
                let type_name = match &f.ty {
                    FieldType::Enum(en) => en.name.clone(),
                    other => other.to_string(),
                };
                properties.push(json!({
                    "Name": f.name, "TypeName": type_name, "DataType": f.ty.fno_data_type(), "LabelId": f.label,
                    "IsKey": is_key, "IsMandatory": f.mandatory, "ConfigurationEnabled": true, "AllowEdit": !is_key,
                    "AllowEditOnCreate": true, "IsDimension": false, "DimensionRelation": "", "IsDynamicDimension": false,
                    "DimensionLegalEntityProperty": "", "DimensionTypeProperty": "",
                }));
            }
            json!({
                "Name": e.public_name,
                "EntitySetName": e.collection,
                "LabelId": e.label,
                "IsReadOnly": false,
                "ConfigurationEnabled": true,
                "Properties": properties,
                "NavigationProperties": [],
                "PropertyGroups": [],
                "Actions": [],
            })
        })
        .collect()
}

fn public_enumerations(catalog: &Catalog) -> Vec<Value> {
    catalog
        .enums()
        .iter()
        .map(|e| {
            let members: Vec<Value> = e
                .members
                .iter()
                .map(|m| json!({ "Name": m.name, "LabelId": m.label, "Value": m.code, "ConfigurationEnabled": true }))
                .collect();
            json!({ "Name": e.name, "LabelId": e.label, "IsOptionSet": e.style == EnumStyle::OptionSet, "Members": members })
        })
        .collect()
}

fn plain(value: &Value) -> Option<PlainValue> {
    Some(match value {
        Value::Null => PlainValue::Null,
        Value::Bool(b) => PlainValue::Bool(*b),
        Value::Number(n) => PlainValue::Number(n.as_f64()?),
        Value::String(s) => PlainValue::Text(s.clone()),
        _ => return None,
    })
}

/// Finds a property of an item without regard to case.
fn property<'a>(item: &'a Map<String, Value>, name: &str) -> Option<(&'a String, &'a Value)> {
    item.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))
}

pub(crate) fn handle(ctx: &Ctx) -> ApiResult<Response> {
    let (set, key) = match ctx.resource.split_once('(') {
        Some((set, rest)) => {
            let inner = rest.strip_suffix(')').ok_or_else(|| ApiError::bad_request("the key lacks a closing ')'"))?;
            (set, Some(inner))
        }
        None => (ctx.resource.as_str(), None),
    };
    let catalog = ctx.state.catalog();
    let (name, items) = match set.to_ascii_lowercase().as_str() {
        "dataentities" => ("DataEntities", data_entities(catalog)),
        "publicentities" => ("PublicEntities", public_entities(catalog)),
        "publicenumerations" => ("PublicEnumerations", public_enumerations(catalog)),
        _ => {
            return Err(ApiError::not_found(format!(
                "unknown metadata collection '{set}' (known: DataEntities, PublicEntities, PublicEnumerations)"
            )));
        }
    };
    let context = format!("{}/$metadata#{name}", ctx.root.url);
    let mut filter = None;
    let mut select = Vec::new();
    let mut top = None;
    for (k, v) in &ctx.query {
        match k.to_ascii_lowercase().as_str() {
            "$filter" => filter = Some(parse_filter(v)?),
            "$select" => select = parse_select(v)?,
            "$top" => {
                top = Some(
                    v.parse::<usize>().map_err(|_| ApiError::bad_request(format!("$top: '{v}' is not a number")))?,
                )
            }
            "$format" => {}
            other if other.starts_with('$') => {
                return Err(ApiError::bad_request(format!("the query option {k} is not supported here")));
            }
            _ => {}
        }
    }
    let project = |item: Value| -> Value {
        if select.is_empty() {
            return item;
        }
        let Value::Object(map) = item else { return item };
        let mut out = Map::new();
        for wanted in &select {
            if let Some((k, v)) = property(&map, wanted) {
                out.insert(k.clone(), v.clone());
            }
        }
        Value::Object(out)
    };
    if let Some(key) = key {
        let wanted = match parse_key_predicate(key)? {
            ferry_query::KeyPredicate::Single(l) => l.text().unwrap_or_default(),
            ferry_query::KeyPredicate::Named(pairs) => pairs
                .into_iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Name"))
                .and_then(|(_, l)| l.text())
                .ok_or_else(|| ApiError::bad_request("metadata items are keyed by Name"))?,
        };
        let item = items
            .into_iter()
            .find(|i| i["Name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(&wanted)))
            .ok_or_else(|| ApiError::not_found(format!("no {name} item named '{wanted}'")))?;
        let mut item = project(item);
        if let Value::Object(map) = &mut item {
            map.insert("@odata.context".into(), Value::String(format!("{context}/$entity")));
        }
        return Ok(Json(item).into_response());
    }
    let mut selected = Vec::new();
    for item in items {
        if let Some(expr) = &filter {
            let Value::Object(map) = &item else { continue };
            let get = |p: &str| property(map, p).and_then(|(_, v)| plain(v));
            if !evaluate(expr, &get)? {
                continue;
            }
        }
        selected.push(project(item));
        if top.is_some_and(|t| selected.len() >= t) {
            break;
        }
    }
    Ok(Json(json!({ "@odata.context": context, "value": selected })).into_response())
}
