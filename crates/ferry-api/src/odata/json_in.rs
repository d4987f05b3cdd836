//! Request bodies: a JSON object of field values, read without losing digits (raw number
//! text goes straight to [`ferry_model::FieldType::coerce`]). Every problem names the field.

use crate::error::{ApiError, ApiResult};
use ferry_model::{COMPANY_FIELD, Entity, FieldType, Input, Value};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// The fields a body sets, and the company it names (if any).
#[derive(Debug, Default)]
pub(crate) struct BodyValues {
    pub company: Option<String>,
    /// (field index, value), in body order of appearance by field index.
    pub values: Vec<(usize, Value)>,
}

/// Parses `body` as a JSON object of `entity` fields.
pub(crate) fn parse_body(entity: &Entity, body: &[u8]) -> ApiResult<BodyValues> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::bad_request("the request body is empty; send a JSON object of field values"));
    }
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the request body is not valid UTF-8"))?;
    let object: BTreeMap<String, &RawValue> = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("the request body is not a JSON object of field values: {e}")))?;
    let mut result = BodyValues::default();
    for (name, raw) in object {
        // Annotations (`@odata.type`, `@odata.etag`, …) carry no field values.
        if name.starts_with('@') {
            continue;
        }
        if let Some(field_name) = name.strip_suffix("@odata.bind") {
            let (index, value) = bind_reference(entity, field_name, raw)?;
            result.values.push((index, value));
            continue;
        }
        if name.contains('@') {
            continue;
        }
        if name.eq_ignore_ascii_case(COMPANY_FIELD) {
            if !entity.company_specific {
                return Err(ApiError::bad_request(format!(
                    "{} is shared by all companies: it has no {COMPANY_FIELD}",
                    entity.collection
                ))
                .with_target(COMPANY_FIELD));
            }
            let company: Option<String> = serde_json::from_str(raw.get()).map_err(|_| {
                ApiError::bad_request(format!("{COMPANY_FIELD} must be a string")).with_target(COMPANY_FIELD)
            })?;
            result.company = company;
            continue;
        }
        let Some((index, field)) = entity.field(&name) else {
            return Err(ApiError::bad_request(format!(
                "{} has no field '{name}' ($metadata lists its fields)",
                entity.collection
            ))
            .with_target(name));
        };
        let value = coerce_raw(&field.ty, raw).map_err(|message| {
            ApiError::bad_request(format!("field {}: {message}", field.name)).with_target(field.name.clone())
        })?;
        result.values.retain(|(i, _)| *i != index);
        result.values.push((index, value));
    }
    Ok(result)
}

fn coerce_raw(ty: &FieldType, raw: &RawValue) -> Result<Value, String> {
    let text = raw.get().trim();
    let input = match text.as_bytes().first() {
        Some(b'n') if text == "null" => Input::Null,
        Some(b't') if text == "true" => Input::Bool(true),
        Some(b'f') if text == "false" => Input::Bool(false),
        Some(b'"') => {
            let s: String = serde_json::from_str(text).map_err(|_| "the string is not valid JSON".to_string())?;
            return ty.coerce(Input::Text(&s)).map_err(|e| e.message);
        }
        Some(b'{' | b'[') => return Err("must be a single value, not an object or array".into()),
        _ => Input::Number(text),
    };
    ty.coerce(input).map_err(|e| e.message)
}

/// `"parentcustomerid@odata.bind": "/accounts(00000000-…)"` sets a GUID lookup (Dataverse).
fn bind_reference(entity: &Entity, field_name: &str, raw: &RawValue) -> ApiResult<(usize, Value)> {
    let (index, field) = entity.field(field_name).ok_or_else(|| {
        ApiError::bad_request(format!("{} has no field '{field_name}' to bind", entity.collection))
            .with_target(format!("{field_name}@odata.bind"))
    })?;
    let target = format!("{}@odata.bind", field.name);
    let reference: Option<String> = serde_json::from_str(raw.get())
        .map_err(|_| ApiError::bad_request(format!("{target} must be a string such as \"/accounts(<guid>)\"")))?;
    let Some(reference) = reference else { return Ok((index, Value::Null)) };
    let inside = reference.rsplit_once('(').and_then(|(_, rest)| rest.strip_suffix(')')).ok_or_else(|| {
        ApiError::bad_request(format!("{target}: '{reference}' is not an entity reference like /accounts(<guid>)"))
    })?;
    let value = field
        .ty
        .coerce(Input::Text(inside.trim_matches('\'')))
        .map_err(|e| ApiError::bad_request(format!("{target}: {}", e.message)).with_target(target.clone()))?;
    Ok((index, value))
}
