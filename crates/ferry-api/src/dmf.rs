//! The DMF package API's status actions, OData actions bound to the entity set
//! `DataManagementDefinitionGroups`:
//! `POST /data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.<Action>`.
//!
//! Served: `GetMessageStatus`, `GetExecutionIdByMessageId`, `GetExecutionSummaryStatus`,
//! `GetEntityExecutionSummaryStatusList`, `GetExecutionErrors` and the void
//! `InitializeDataManagement`. Bodies are read leniently (d365fo.integrations sends
//! single-quoted JSON) and parameter names match without regard to case. Answers are
//! `{"@odata.context": "<base>/data/$metadata#Edm.String", "value": <flat value>}`; an unknown
//! message or execution is the `400` D365 gives ("… were not found for … id: …").
//! The reader role is enough for all of them.

use crate::ApiState;
use crate::auth::require_role;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::wire::{entity_state_name, execution_status_name, message_status_name, stage_name};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_auth::{Principal, Role};
use ferry_domain::{EntityResult, ErrorFilter, ErrorRecord};
use ferry_integration::{IntegrationService, MessageView};
use serde_json::{Map, Value, json};

/// The entity set the actions are bound to.
pub(crate) const ENTITY_SET: &str = "DataManagementDefinitionGroups";
/// The namespace qualifying the action names.
const NAMESPACE: &str = "Microsoft.Dynamics.DataEntities.";
/// What `GetExecutionIdByMessageId` answers for a message it does not know.
const EMPTY_GUID: &str = "00000000-0000-0000-0000-000000000000";
/// The most errors `GetExecutionErrors` lists (the pipeline keeps no more per message anyway).
const EXECUTION_ERRORS_MAX: u32 = 100_000;
const JSON: &str = "application/json; odata.metadata=minimal";
/// Largest action body (parameters only).
const BODY_LIMIT_BYTES: usize = 1024 * 1024;

/// The actions served, for the "no such action" message.
const ACTIONS: [&str; 6] = [
    "GetMessageStatus",
    "GetExecutionIdByMessageId",
    "GetExecutionSummaryStatus",
    "GetEntityExecutionSummaryStatusList",
    "GetExecutionErrors",
    "InitializeDataManagement",
];

/// `/data/DataManagementDefinitionGroups/{action}`, any method (anything but POST is a 405 in
/// the OData envelope).
pub(crate) async fn action(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    method: Method,
    Path(action): Path<String>,
    body: Bytes,
) -> Response {
    run(&state, &principal, &method, &action, &body).await.unwrap_or_else(IntoResponse::into_response)
}

/// The action a path addresses when it is `/data/DataManagementDefinitionGroups/<action>` in
/// any letter case (percent-decoded), else `None`.
pub(crate) fn action_in_path(path: &str) -> Option<String> {
    let rest = strip_prefix_ignore_case(path, "/data/")?;
    let action = strip_prefix_ignore_case(rest, ENTITY_SET)?.strip_prefix('/')?;
    if action.is_empty() || action.contains('/') {
        return None;
    }
    Some(percent_encoding::percent_decode_str(action).decode_utf8_lossy().into_owned())
}

/// Runs the action of a request that reached the entity API's routes (another letter case
/// than the exact route's).
pub(crate) async fn handle_request(state: ApiState, action: &str, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(principal) = parts.extensions.get::<Principal>().cloned() else {
        return ApiError::unauthorized(None, "a bearer token is required").into_response();
    };
    let body = match axum::body::to_bytes(body, BODY_LIMIT_BYTES).await {
        Ok(b) => b,
        Err(_) => return ApiError::new(ErrorKind::PayloadTooLarge, "the request body is too large").into_response(),
    };
    run(&state, &principal, &parts.method, action, &body).await.unwrap_or_else(IntoResponse::into_response)
}

/// Runs `action` (with or without its namespace) with the parameters in `body`.
pub(crate) async fn run(
    state: &ApiState,
    principal: &Principal,
    method: &Method,
    action: &str,
    body: &[u8],
) -> ApiResult<Response> {
    let name = strip_prefix_ignore_case(action, NAMESPACE).unwrap_or(action);
    let Some(name) = ACTIONS.iter().find(|a| a.eq_ignore_ascii_case(name)).copied() else {
        return Err(ApiError::not_found(format!(
            "{ENTITY_SET} has no action '{action}'; ferry serves {}",
            ACTIONS.map(|a| format!("{NAMESPACE}{a}")).join(", ")
        )));
    };
    if method != Method::POST {
        return Err(ApiError::new(
            ErrorKind::MethodNotAllowed,
            format!("{method} is not allowed on action {name}; use POST with a JSON body"),
        ));
    }
    require_role(principal, Role::Reader)?;
    let import = state.import()?;
    let params = parse_lenient_object(body)?;
    let context = |ty: &str| format!("{}/data/$metadata#{ty}", state.settings().public_url.trim_end_matches('/'));
    let string_answer = |value: Value| Ok(envelope(&context("Edm.String"), value));
    match name {
        "GetMessageStatus" => {
            let id = param(&params, &["messageId"])?;
            match import.message(&id).await? {
                Some(view) => string_answer(json!(message_status_name(view.message.state))),
                None => Err(not_found_error(name, &format!("Message details were not found for message id: {id}"))),
            }
        }
        "GetExecutionIdByMessageId" => {
            let id = param(&params, &["_messageId", "messageId"])?;
            let execution_id = import.message(&id).await?.map(|v| v.message.execution_id);
            string_answer(json!(execution_id.as_deref().unwrap_or(EMPTY_GUID)))
        }
        "GetExecutionSummaryStatus" => {
            let view = execution(import, name, &params).await?;
            string_answer(json!(execution_status_name(view.message.state.execution_status())))
        }
        "GetEntityExecutionSummaryStatusList" => {
            let view = execution(import, name, &params).await?;
            let list: Vec<Value> = view.entities.iter().map(entity_summary).collect();
            Ok(envelope(
                &context("Collection(Microsoft.Dynamics.DataEntities.EntityExecutionSummaryStatus)"),
                json!(list),
            ))
        }
        "GetExecutionErrors" => {
            let view = execution(import, name, &params).await?;
            let filter = ErrorFilter { stage: None, entity: None, after_id: None, limit: EXECUTION_ERRORS_MAX };
            let errors = import.errors(&view.message.id, &filter).await?;
            string_answer(Value::String(execution_errors_text(&errors)))
        }
        "InitializeDataManagement" => Ok(StatusCode::NO_CONTENT.into_response()),
        _ => unreachable!("every name in ACTIONS has an arm"),
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

fn envelope(context: &str, value: Value) -> Response {
    let body = json!({ "@odata.context": context, "value": value }).to_string();
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    headers.insert("odata-version", HeaderValue::from_static("4.0"));
    response
}

/// The 400 D365 answers for an unknown message or execution, in the OData error envelope.
fn not_found_error(action: &str, detail: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Exception occurred while executing action {action} on Entity DataManagementDefinitionGroup: {detail}"
    ))
}

/// The message whose execution the parameters name (`executionId`; a message id works too,
/// as RIS sends one to `GetExecutionErrors`).
async fn execution(import: &IntegrationService, action: &str, params: &Map<String, Value>) -> ApiResult<MessageView> {
    let id = param(params, &["executionId"])?;
    import
        .message(&id)
        .await?
        .ok_or_else(|| not_found_error(action, &format!("Execution details were not found for execution id: {id}")))
}

/// The text of the first of `names` the body has (names match without regard to case).
fn param(params: &Map<String, Value>, names: &[&str]) -> ApiResult<String> {
    let found = names.iter().find_map(|n| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)));
    match found {
        Some((_, Value::String(s))) => Ok(s.trim().to_string()),
        Some((_, Value::Number(n))) => Ok(n.to_string()),
        Some((k, _)) => Err(ApiError::bad_request(format!("parameter {k} must be a string")).with_target(k.clone())),
        None => Err(ApiError::bad_request(format!("the body needs the parameter {}", names[0])).with_target(names[0])),
    }
}

/// One entity of `GetEntityExecutionSummaryStatusList`. The shape is not documented by
/// Microsoft; the names follow `DataManagementExecutionJobDetails`.
fn entity_summary(e: &EntityResult) -> Value {
    json!({
        "EntityName": e.entity,
        "Company": e.company,
        "ExecutionStatus": execution_status_name(e.status()),
        "StagingStatus": entity_state_name(e.staging),
        "TargetStatus": entity_state_name(e.target),
        "StagingRecordCount": e.rows_read,
        "StagingErrorCount": e.staging_errors,
        "TargetRecordsCreatedCount": e.rows_inserted,
        "TargetRecordsUpdatedCount": e.rows_updated,
        "TargetRecordsUnchangedCount": e.rows_unchanged,
        "TargetErrorCount": e.target_errors,
        "StartDateTime": crate::connector::time_or_min(e.started_at),
        "EndDateTime": crate::connector::time_or_min(e.finished_at),
    })
}

/// `GetExecutionErrors`' value: a JSON array of `{RecordId, Field, ErrorMessage}` (in that key
/// order, which clients that regex-parse the text rely on) serialized into a string.
fn execution_errors_text(errors: &[ErrorRecord]) -> String {
    let items: Vec<String> = errors
        .iter()
        .map(|e| {
            let record_id = match (&e.key, e.row) {
                (Some(key), _) if !key.is_empty() => key.clone(),
                (_, Some(row)) => row.to_string(),
                _ => String::new(),
            };
            let at = match e.row {
                Some(row) => format!("Row {row}"),
                None => "File".to_string(),
            };
            let message = format!("{at} ({}, {}): {} [{}]", e.entity, stage_name(e.stage), e.message, e.code);
            // Written by hand: a serde_json object would sort its keys.
            format!(
                "{{\"RecordId\":{},\"Field\":{},\"ErrorMessage\":{}}}",
                Value::String(record_id),
                Value::String(e.field.clone().unwrap_or_default()),
                Value::String(message)
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// Parses an action body: JSON, or the single-quoted near-JSON PowerShell clients send
/// (`{'messageId':'…'}`). An empty body is an empty object.
pub(crate) fn parse_lenient_object(body: &[u8]) -> ApiResult<Map<String, Value>> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the request body is not valid UTF-8"))?;
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Ok(Map::new());
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(strict) => serde_json::from_str(&double_quoted(text))
            .map_err(|_| ApiError::bad_request(format!("the request body is not a JSON object: {strict}")))?,
    };
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request("the request body must be a JSON object of the action's parameters")),
    }
}

/// Rewrites single-quoted strings as double-quoted ones; double-quoted strings pass unchanged.
fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                while let Some(c) = chars.next() {
                    out.push(c);
                    match c {
                        '\\' => out.extend(chars.next()),
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '\'' => {
                out.push('"');
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some('\'') => out.push('\''),
                            Some(next) => {
                                out.push('\\');
                                out.push(next);
                            }
                            None => {}
                        },
                        '\'' => break,
                        '"' => out.push_str("\\\""),
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_single_quoted_bodies() {
        let map = parse_lenient_object(b"{'messageId':'6d31e09f-4a4b'}").unwrap();
        assert_eq!(map["messageId"], "6d31e09f-4a4b");
        let map = parse_lenient_object(br#"{ 'a' : 'it\'s "x"', "b": "y'z", 'n': 3 }"#).unwrap();
        assert_eq!(map["a"], "it's \"x\"");
        assert_eq!(map["b"], "y'z");
        assert_eq!(map["n"], 3);
        assert!(parse_lenient_object(b"").unwrap().is_empty());
        assert!(parse_lenient_object(b"[1]").is_err());
        assert!(parse_lenient_object(b"{'a':").is_err());
    }

    #[test]
    fn execution_errors_are_valid_json_in_key_order() {
        let error = ErrorRecord {
            id: 1,
            message_id: "m".into(),
            entity: "Customer groups".into(),
            stage: ferry_domain::Stage::Staging,
            row: Some(3),
            key: None,
            field: Some("CustomerGroupId".into()),
            code: "too_long".into(),
            message: "CustomerGroupId: \"x\" is too long\r\n".into(),
        };
        let text = execution_errors_text(&[error]);
        assert!(text.starts_with(r#"[{"RecordId":"3","Field":"CustomerGroupId","ErrorMessage":"Row 3"#), "{text}");
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed[0]["Field"], "CustomerGroupId");
        assert!(parsed[0]["ErrorMessage"].as_str().unwrap().contains("too_long"));
        assert_eq!(execution_errors_text(&[]), "[]");
    }
}
