//! Recurring-import messages for people: `GET /api/messages` (newest first, filtered by job
//! and state, paged backwards), `GET /api/messages/{id}` (state and why, timings, attempts,
//! counters, warnings, entities, links), `GET /api/messages/{id}/errors` (the rejected rows,
//! paged forwards by error id) and `GET /api/messages/{id}/rejected/{position}` (the
//! rejected-rows file of one entity, streamed from the blob store) and
//! `GET /api/messages/{id}/staging/{position}` (its staged rows as JSON lines) — the reader role
//! is enough — and `POST /api/messages/{id}/cancel` (a message that has not started) and
//! `POST /api/messages/{id}/rerun` (a finished one, as a new message on the same file), which
//! need the writer role.
//!
//! The documents are `wire::messages`'; `next` links carry the query on.

use crate::ApiState;
use crate::auth::require_role;
use crate::connector::query_param;
use crate::error::{ApiError, ApiResult};
use crate::wire::{
    error_json, message_document, message_state_from_name, message_state_name, message_summary_json, stage_from_name,
};
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ferry_auth::{Principal, Role};
use ferry_domain::{ErrorFilter, MessageFilter, MessageState, Stage, normalize_activity_id};
use ferry_integration::{IntegrationService, MessageView};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

/// Messages or errors a page holds when the query names no `limit`.
const PAGE_DEFAULT: u32 = 100;
/// The largest `limit`.
const PAGE_MAX: u32 = 1000;

fn service<'a>(state: &'a ApiState, principal: &Principal) -> ApiResult<&'a IntegrationService> {
    require_role(principal, Role::Reader)?;
    state.import()
}

fn limit(query: &[(String, String)]) -> ApiResult<u32> {
    match query_param(query, "limit") {
        None => Ok(PAGE_DEFAULT),
        Some(text) => match text.trim().parse::<u32>() {
            Ok(n) if (1..=PAGE_MAX).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(format!("limit must be a whole number from 1 to {PAGE_MAX}"))
                .with_target("limit")),
        },
    }
}

fn whole_number(query: &[(String, String)], name: &str) -> ApiResult<Option<i64>> {
    query_param(query, name)
        .map(|text| {
            text.trim()
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("{name} must be a whole number")).with_target(name))
        })
        .transpose()
}

/// `query` with `name` set to `value`, as a query string.
fn query_with(query: &[(String, String)], name: &str, value: &str) -> String {
    let mut pairs: Vec<(&str, &str)> =
        query.iter().filter(|(k, _)| !k.eq_ignore_ascii_case(name)).map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.push((name, value));
    pairs
        .iter()
        .map(|(k, v)| {
            format!("{}={}", utf8_percent_encode(k, NON_ALPHANUMERIC), utf8_percent_encode(v, NON_ALPHANUMERIC))
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn base(state: &ApiState) -> &str {
    state.settings().public_url.trim_end_matches('/')
}

/// `GET /api/messages?activity=&state=&before=&limit=`: newest first; `next` pages backwards.
pub(crate) async fn list(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let import = service(&state, &principal)?;
    let activity_id = match query_param(&query, "activity").map(str::trim).filter(|a| !a.is_empty()) {
        Some(a) => Some(normalize_activity_id(a).ok_or_else(|| {
            ApiError::bad_request(format!("activity '{a}' is not an activity id (a GUID)")).with_target("activity")
        })?),
        None => None,
    };
    let message_state = match query_param(&query, "state").map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(message_state_from_name(s).ok_or_else(|| {
            let names: Vec<&str> = MessageState::ALL.iter().map(|s| message_state_name(*s)).collect();
            ApiError::bad_request(format!("state '{s}' is not one of {}", names.join(", "))).with_target("state")
        })?),
        None => None,
    };
    let limit = limit(&query)?;
    let filter = MessageFilter {
        activity_id,
        operation: None,
        state: message_state,
        before_seq: whole_number(&query, "before")?,
        limit,
    };
    let messages = import.list_messages(&filter).await?;
    let next = match messages.last() {
        Some(last) if messages.len() as u32 >= limit => Value::String(format!(
            "{}/api/messages?{}",
            base(&state),
            query_with(&query, "before", &last.seq.to_string())
        )),
        _ => Value::Null,
    };
    let items: Vec<Value> = messages.iter().map(|m| message_summary_json(m, base(&state))).collect();
    Ok(axum::Json(json!({ "value": items, "next": next })).into_response())
}

async fn view_of(import: &IntegrationService, id: &str) -> ApiResult<MessageView> {
    import.message(id).await?.ok_or_else(|| ApiError::not_found(format!("no message or execution has id {id}")))
}

/// The document of message `id` (by message or execution id).
async fn document(state: &ApiState, import: &IntegrationService, id: &str) -> ApiResult<axum::Json<Value>> {
    let view = view_of(import, id).await?;
    Ok(axum::Json(message_document(import, &view, base(state)).await?))
}

/// `GET /api/messages/{id}`: everything known about one message (by message or execution id).
pub(crate) async fn get(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let import = service(&state, &principal)?;
    Ok(document(&state, import, &id).await?.into_response())
}

/// `GET /api/messages/{id}/errors?stage=&entity=&after=&limit=`: rejected rows in the order
/// they were recorded; `next` continues after the last error id.
pub(crate) async fn errors(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let import = service(&state, &principal)?;
    let view = view_of(import, &id).await?;
    let stage: Option<Stage> = match query_param(&query, "stage").map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(stage_from_name(s).ok_or_else(|| {
            ApiError::bad_request(format!("stage '{s}' is not one of parse, staging, target")).with_target("stage")
        })?),
        None => None,
    };
    // Errors are recorded under the entity's label; accept any of its names.
    let entity = query_param(&query, "entity")
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| import.catalog().by_any_name(e).map_or_else(|| e.to_string(), |entity| entity.label.clone()));
    let limit = limit(&query)?;
    let filter = ErrorFilter { stage, entity, after_id: whole_number(&query, "after")?, limit };
    let errors = import.errors(&view.message.id, &filter).await?;
    let link = format!("{}/api/messages/{}/errors", base(&state), view.message.id);
    let next = match errors.last() {
        Some(last) if errors.len() as u32 >= limit => {
            Value::String(format!("{link}?{}", query_with(&query, "after", &last.id.to_string())))
        }
        _ => Value::Null,
    };
    let items: Vec<Value> = errors.iter().map(error_json).collect();
    Ok(axum::Json(json!({ "message_id": view.message.id, "value": items, "next": next })).into_response())
}

/// `GET /api/messages/{id}/rejected/{position}`: the rows entity `position` rejected, in the
/// source's format, as a download.
pub(crate) async fn rejected(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path((id, position)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let import = service(&state, &principal)?;
    let view = view_of(import, &id).await?;
    let position = entity_position(&position)?;
    let Some((key, ext)) = import.rejected_file(&view, position).await? else {
        let entity = view.entities.iter().find(|e| e.position == position);
        return Err(ApiError::not_found(match entity {
            Some(e) => format!(
                "message {} kept no rejected-rows file for entity {position} ({}): it rejected no rows",
                view.message.id, e.entity
            ),
            None => format!(
                "message {} has no entity at position {position} (it has {})",
                view.message.id,
                view.entities.len()
            ),
        }));
    };
    let name = format!("{}-{position}-rejected.{ext}", view.message.id);
    crate::download::blob(import.blobs(), &key, &name, &headers).await
}

/// `GET /api/messages/{id}/staging/{position}`: the rows entity `position` staged, as JSON lines
/// (`{"row":…,"company":…,"values":{…}}`), as a download.
pub(crate) async fn staging(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path((id, position)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let import = service(&state, &principal)?;
    let view = view_of(import, &id).await?;
    let position = entity_position(&position)?;
    let Some(key) = import.staging_file(&view, position).await? else {
        return Err(ApiError::not_found(format!(
            "message {} has no staged rows for entity {position} (not processed yet, or no such entity)",
            view.message.id
        )));
    };
    let name = format!("{}-{position}-staging.jsonl", view.message.id);
    crate::download::blob(import.blobs(), &key, &name, &headers).await
}

/// An entity's position in a message, from the path.
fn entity_position(text: &str) -> ApiResult<i64> {
    text.trim().parse::<i64>().map_err(|_| {
        ApiError::bad_request(format!(
            "'{text}' is not an entity position; the message's entities list theirs (0, 1, …)"
        ))
    })
}

/// `POST /api/messages/{id}/cancel`: cancels a message that has not started; answers its
/// document (state `Canceled`, the reason naming who cancelled).
pub(crate) async fn cancel(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    require_role(&principal, Role::Writer)?;
    let integration = state.import()?;
    let message = integration.cancel(&id, &principal.client_id).await?;
    Ok(document(&state, integration, &message.id).await?.into_response())
}

/// `POST /api/messages/{id}/rerun`: runs a finished message again as a new message (same file,
/// same lanes, behind what waits in them, `rerun_of` naming the original); answers `201` with
/// the new message's document.
pub(crate) async fn rerun(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    require_role(&principal, Role::Writer)?;
    let integration = state.import()?;
    let message = integration.rerun(&id, &principal.client_id).await?;
    Ok((StatusCode::CREATED, document(&state, integration, &message.id).await?).into_response())
}
