//! The data-export API, shaped like the Dynamics 365 Data Export Service: metadata
//! (`/crm/exporter/metadata/*`) and profiles (`/crm/exporter/profiles…`) with activate,
//! deactivate, test, validate, failures (JSON or the service's text lines) and resync.
//! Every call needs the admin role. Connection strings go in, never out.

use crate::ApiState;
use crate::auth::require_role;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::wire::{checks_json, failure_log_text, failures_json, profile_document, profile_json};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ferry_auth::{Principal, Role};
use ferry_domain::{
    ConnectionString, ProfileDefinition, ProfileState, RETRY_COUNT_DEFAULT, RETRY_INTERVAL_SECS_DEFAULT, TargetKind,
};
use ferry_model::FieldType;
use ferry_replicate::{Replication, ReplicationError};
use serde_json::{Value, json};
use std::collections::HashMap;

fn replication(state: &ApiState, principal: &Principal) -> ApiResult<std::sync::Arc<Replication>> {
    require_role(principal, Role::Admin)?;
    state.inner.replication.clone().ok_or_else(|| ApiError::not_found("data export is not enabled on this server"))
}

impl From<ReplicationError> for ApiError {
    fn from(e: ReplicationError) -> ApiError {
        match e {
            ReplicationError::Invalid(problems) => {
                let target = problems.first().map(|p| p.field.to_string());
                let error = ApiError::bad_request(ReplicationError::Invalid(problems).to_string());
                match target {
                    Some(t) => error.with_target(t),
                    None => error,
                }
            }
            ReplicationError::NotFound(_) => ApiError::not_found(e.to_string()),
            ReplicationError::Conflict(m) => ApiError::new(ErrorKind::Conflict, m),
            ReplicationError::Secret(m) => ApiError::bad_request(m),
            ReplicationError::Target(t) => ApiError::bad_request(format!("target: {t}")),
            ReplicationError::Store(s) => ApiError::from(s),
        }
    }
}

fn field<'a>(body: &'a Value, name: &str) -> Option<&'a Value> {
    body.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

fn text_field(body: &Value, name: &str) -> ApiResult<Option<String>> {
    match field(body, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(format!("{name} must be a string")).with_target(name)),
    }
}

fn number_field(body: &Value, name: &str, default: u32) -> ApiResult<u32> {
    match field(body, name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| ApiError::bad_request(format!("{name} must be a whole number")).with_target(name)),
    }
}

fn names_field(body: &Value, name: &str) -> ApiResult<Vec<String>> {
    match field(body, name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                Value::Object(_) => ["LogicalName", "Name", "EntityName"]
                    .iter()
                    .find_map(|k| field(item, k).and_then(Value::as_str).map(str::to_string))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("{name}: each item needs a LogicalName")).with_target(name)
                    }),
                _ => Err(ApiError::bad_request(format!("{name} must be a list of names")).with_target(name)),
            })
            .collect(),
        Some(_) => Err(ApiError::bad_request(format!("{name} must be a list of names")).with_target(name)),
    }
}

/// Reads a profile body: the definition and the connection string (if any).
fn definition_from(body: &Value) -> ApiResult<(ProfileDefinition, Option<ConnectionString>)> {
    if !body.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object with the profile's fields"));
    }
    let kind_text =
        text_field(body, "TargetType")?.or(text_field(body, "DatabaseType")?).unwrap_or_else(|| "postgres".into());
    let target_kind = TargetKind::from_name(&kind_text).ok_or_else(|| {
        ApiError::bad_request(format!("TargetType '{kind_text}' is not one of postgres, mysql, sqlite"))
            .with_target("TargetType")
    })?;
    let connection = text_field(body, "ConnectionString")?.map(|text| ConnectionString::from_reference(&text));
    let definition = ProfileDefinition {
        name: text_field(body, "Name")?.unwrap_or_default(),
        description: text_field(body, "Description")?.unwrap_or_default(),
        target_kind,
        schema_name: text_field(body, "SchemaName")?.filter(|s| !s.is_empty()),
        table_prefix: text_field(body, "TablePrefix")?.unwrap_or_default(),
        retry_count: number_field(body, "RetryCount", RETRY_COUNT_DEFAULT)?,
        retry_interval_secs: number_field(body, "RetryInterval", RETRY_INTERVAL_SECS_DEFAULT)?,
        write_delete_log: match field(body, "WriteDeleteLog") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ApiError::bad_request("WriteDeleteLog must be true or false").with_target("WriteDeleteLog"));
            }
        },
        entities: names_field(body, "Entities")?,
        relationships: names_field(body, "Relationships")?,
    };
    Ok((definition, connection))
}

/// The request body as JSON, or a 400 saying why it is not.
fn json_body(body: Result<Json<Value>, axum::extract::rejection::JsonRejection>) -> ApiResult<Value> {
    body.map(|Json(v)| v).map_err(|e| ApiError::bad_request(format!("the body is not JSON: {}", e.body_text())))
}

pub(crate) async fn organizations(
    State(state): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    replication(&state, &p)?;
    Ok(Json(json!([organization(&state)])).into_response())
}

fn organization(state: &ApiState) -> Value {
    json!({
        "OrganizationId": state.settings().tenant_id,
        "FriendlyName": "ferry",
        "OrganizationUrl": state.settings().public_url,
    })
}

pub(crate) async fn discover(State(state): State<ApiState>, Extension(p): Extension<Principal>) -> ApiResult<Response> {
    replication(&state, &p)?;
    let mut org = organization(&state);
    org["Version"] = json!(env!("CARGO_PKG_VERSION"));
    Ok(Json(org).into_response())
}

pub(crate) async fn connector(
    State(state): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    replication(&state, &p)?;
    Ok(Json(json!({ "ConnectorUrl": state.settings().public_url })).into_response())
}

pub(crate) async fn entities(State(state): State<ApiState>, Extension(p): Extension<Principal>) -> ApiResult<Response> {
    replication(&state, &p)?;
    let list: Vec<Value> = state
        .catalog()
        .entities()
        .iter()
        .map(|e| {
            let attributes: Vec<Value> = e
                .fields
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let (max_length, precision) = match &f.ty {
                        FieldType::String { max_length } => (max_length.map(|n| n as i64), None),
                        FieldType::Decimal { precision, scale } => (None, Some(json!({"Precision": precision, "Scale": scale}))),
                        _ => (None, None),
                    };
                    json!({
                        "LogicalName": f.name.to_ascii_lowercase(), "DisplayName": f.label, "AttributeType": f.ty.to_string(),
                        "IsPrimaryId": Some(i) == e.primary_id, "IsKey": e.key.contains(&i), "MaxLength": max_length,
                        "Precision": precision, "LookupTarget": f.lookup.as_ref().map(|l| l.entity.clone()),
                    })
                })
                .collect();
            json!({
                "LogicalName": e.logical_name, "DisplayName": e.label, "EntitySetName": e.collection,
                "IsChangeTrackingEnabled": true, "IsCompanySpecific": e.company_specific, "Attributes": attributes,
            })
        })
        .collect();
    Ok(Json(Value::Array(list)).into_response())
}

pub(crate) async fn relationships(
    State(state): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    replication(&state, &p)?;
    Ok(Json(json!([])).into_response())
}

const PRIVACY_SETTING: &str = "exporter.privacy_terms_accepted_at";

pub(crate) async fn has_accepted_privacy(
    State(state): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    replication(&state, &p)?;
    let accepted = state.store().get_setting(PRIVACY_SETTING).await?.is_some();
    Ok(Json(json!(accepted)).into_response())
}

pub(crate) async fn accept_privacy(
    State(state): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    replication(&state, &p)?;
    let now = state.store().clock().now();
    state.store().put_setting(PRIVACY_SETTING, &now.to_rfc3339()).await?;
    Ok(Json(json!(true)).into_response())
}

pub(crate) async fn list_profiles(
    State(state): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    let r = replication(&state, &p)?;
    let profiles: Vec<Value> = r.list().await?.iter().map(profile_json).collect();
    Ok(Json(Value::Array(profiles)).into_response())
}

pub(crate) async fn create_profile(
    State(state): State<ApiState>,
    Extension(p): Extension<Principal>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let r = replication(&state, &p)?;
    let body = json_body(body)?;
    let (definition, connection) = definition_from(&body)?;
    let connection = connection.unwrap_or_else(|| ConnectionString::Literal(String::new()));
    let profile = r.create(definition, &connection).await?;
    Ok((StatusCode::CREATED, Json(profile_json(&profile))).into_response())
}

pub(crate) async fn get_profile(
    State(state): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let r = replication(&state, &p)?;
    let profile = r.get(&id).await?;
    let statuses = r.status(&id).await?;
    Ok(Json(profile_document(&profile, &statuses)).into_response())
}

pub(crate) async fn update_profile(
    State(state): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let r = replication(&state, &p)?;
    let body = json_body(body)?;
    let (definition, connection) = definition_from(&body)?;
    let profile = r.update(&id, definition, connection.as_ref()).await?;
    Ok(Json(profile_json(&profile)).into_response())
}

pub(crate) async fn delete_profile(
    State(state): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let r = replication(&state, &p)?;
    r.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST …/{id}/{action}`: activate, activatemetadata, activatedata, deactivate, resync.
pub(crate) async fn profile_action(
    State(state): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<Response> {
    let r = replication(&state, &p)?;
    let new_state = match action.to_ascii_lowercase().as_str() {
        "activate" => ProfileState::Active,
        "activatemetadata" => ProfileState::MetadataOnly,
        "activatedata" => ProfileState::DataOnly,
        "deactivate" => ProfileState::Inactive,
        "resync" => {
            let n = r.resync(&id).await?;
            return Ok(Json(json!({ "RecordsToRetry": n })).into_response());
        }
        other => {
            return Err(ApiError::not_found(format!(
                "unknown profile action '{other}' (activate, activatemetadata, activatedata, deactivate, resync)"
            )));
        }
    };
    let profile = r.set_state(&id, new_state).await?;
    Ok(Json(profile_json(&profile)).into_response())
}

pub(crate) async fn test_profile(
    State(state): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let r = replication(&state, &p)?;
    Ok(Json(checks_json(&r.test(&id).await?)).into_response())
}

pub(crate) async fn validate_profile(
    State(state): State<ApiState>,
    Extension(p): Extension<Principal>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let r = replication(&state, &p)?;
    let body = json_body(body)?;
    let (definition, connection) = definition_from(&body)?;
    let connection = connection.unwrap_or_else(|| ConnectionString::Literal(String::new()));
    Ok(Json(checks_json(&r.validate(definition, &connection).await)).into_response())
}

/// The failure log as JSON, or (`?format=text` or `Accept: text/plain`) as a downloadable text
/// file in the Data Export Service's line format.
pub(crate) async fn failures(
    State(state): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let r = replication(&state, &p)?;
    let limit = query.get("top").and_then(|t| t.parse::<u64>().ok()).unwrap_or(10_000).min(100_000);
    let lines = r.failures(&id, limit).await?;
    let wants_text = query.get("format").is_some_and(|f| f.eq_ignore_ascii_case("text"))
        || headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.starts_with("text/plain"));
    if wants_text {
        let text: String = lines.iter().map(failure_log_text).collect();
        let disposition = format!("attachment; filename=\"ferry-failures-{id}.log\"");
        return Ok((
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            text,
        )
            .into_response());
    }
    Ok(Json(failures_json(&id, &lines)).into_response())
}
