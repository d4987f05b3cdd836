//! Recurring-import messages for people: `GET /api/messages` (newest first, filtered by job
//! and state, paged backwards), `GET /api/messages/{id}` (state and why, timings, attempts,
//! counters, warnings, entities, links), `GET /api/messages/{id}/errors` (the rejected rows,
//! paged forwards by error id) and `GET /api/messages/{id}/rejected/{position}` (the
//! rejected-rows file of one entity, streamed from the blob store) and
//! `GET /api/messages/{id}/staging/{position}` (its staged rows as JSON lines). The reader role
//! is enough.
//!
//! ferry's own JSON: snake_case names like the configuration, times in RFC 3339 UTC, `null`
//! for "not yet"; `next` links carry the query on.

use crate::ApiState;
use crate::auth::require_role;
use crate::connector::query_param;
use crate::error::{ApiError, ApiResult};
use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use ferry_auth::{Principal, Role};
use ferry_import::{EntityState, ImportService, MessageState, MessageView, Stage, normalize_activity_id};
use ferry_store::{ErrorFilter, MessageEntityRecord, MessageFilter, MessageRecord, RowCounters};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

/// Messages or errors a page holds when the query names no `limit`.
const PAGE_DEFAULT: u32 = 100;
/// The largest `limit`.
const PAGE_MAX: u32 = 1000;

fn service<'a>(state: &'a ApiState, principal: &Principal) -> ApiResult<&'a ImportService> {
    require_role(principal, Role::Reader)?;
    state.import()
}

fn time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)))
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

fn counters(c: &RowCounters) -> Value {
    json!({
        "read": c.read, "rejected": c.rejected, "inserted": c.inserted, "updated": c.updated,
        "unchanged": c.unchanged,
    })
}

/// The fields of a message every view shows.
fn summary(state: &ApiState, m: &MessageRecord) -> Value {
    let message_state = MessageState::parse(&m.state).unwrap_or(MessageState::Enqueued);
    json!({
        "id": m.id,
        "seq": m.seq,
        "execution_id": m.execution_id,
        "activity_id": m.activity_id,
        "project": m.project,
        "kind": m.kind,
        "entity": m.entity,
        "company": m.company,
        "external_id": m.external_id,
        "size": m.size,
        "enqueued_by": m.enqueued_by,
        "state": message_state.as_str(),
        "message_status": message_state.message_status(),
        "attempts": m.attempts,
        "enqueued_at": time(Some(m.enqueued_at)),
        "started_at": time(m.started_at),
        "finished_at": time(m.finished_at),
        "counters": counters(&m.counters),
        "link": format!("{}/api/messages/{}", base(state), m.id),
    })
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
        Some(s) => Some(MessageState::parse(s).ok_or_else(|| {
            let names: Vec<&str> = MessageState::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::bad_request(format!("state '{s}' is not one of {}", names.join(", "))).with_target("state")
        })?),
        None => None,
    };
    let limit = limit(&query)?;
    let filter = MessageFilter {
        activity_id,
        state: message_state.map(|s| s.as_str().to_string()),
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
    let items: Vec<Value> = messages.iter().map(|m| summary(&state, m)).collect();
    Ok(axum::Json(json!({ "value": items, "next": next })).into_response())
}

async fn view_of(import: &ImportService, id: &str) -> ApiResult<MessageView> {
    import.message(id).await?.ok_or_else(|| ApiError::not_found(format!("no message or execution has id {id}")))
}

/// `GET /api/messages/{id}`: everything known about one message (by message or execution id).
pub(crate) async fn get(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let import = service(&state, &principal)?;
    let view = view_of(import, &id).await?;
    let m = &view.record;
    let link = format!("{}/api/messages/{}", base(&state), m.id);
    let mut body = summary(&state, m);
    body["state"] = json!(view.state.as_str());
    body["message_status"] = json!(view.state.message_status());
    body["data_job_state"] = json!(view.state.data_job_state().0);
    body["execution_summary"] = json!(view.state.execution_summary());
    body["final"] = json!(view.state.is_final());
    body["reason"] = json!(view.reason);
    body["content_hash"] = json!(m.content_hash);
    body["not_before"] = time(Some(m.not_before));
    body["heartbeat_at"] = time(m.heartbeat_at);
    body["lease_holder"] = json!(m.lease_holder);
    body["lease_until"] = time(m.lease_until);
    body["warnings"] = json!(
        m.warnings
            .as_deref()
            .map(|w| w.lines().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>())
            .unwrap_or_default()
    );
    let mut entities = Vec::new();
    for e in &view.entities {
        entities.push(entity_json(import, &view, e, &link).await?);
    }
    body["entities"] = Value::Array(entities);
    body["errors_link"] = json!(format!("{link}/errors"));
    Ok(axum::Json(body).into_response())
}

async fn entity_json(
    import: &ImportService,
    view: &MessageView,
    e: &MessageEntityRecord,
    link: &str,
) -> ApiResult<Value> {
    let errors = e.staging_errors + e.target_errors;
    // Only entities with rejected rows can have a file: spare the blob store the others.
    let rejected = if errors > 0 || view.record.counters.rejected > 0 {
        import.rejected_file(view, e.position).await?.map(|_| format!("{link}/rejected/{}", e.position))
    } else {
        None
    };
    let entity_param = utf8_percent_encode(&e.entity, NON_ALPHANUMERIC);
    Ok(json!({
        "position": e.position,
        "entity": e.entity,
        "company": e.company,
        "staging_status": e.staging_status,
        "target_status": e.target_status,
        "execution_summary": EntityState::summary(&e.staging_status, &e.target_status, errors),
        "rows_read": e.rows_read,
        "rows_staged": e.rows_staged,
        "staging_errors": e.staging_errors,
        "rows_inserted": e.rows_inserted,
        "rows_updated": e.rows_updated,
        "rows_unchanged": e.rows_unchanged,
        "target_errors": e.target_errors,
        "started_at": time(e.started_at),
        "finished_at": time(e.finished_at),
        "errors_link": format!("{link}/errors?entity={entity_param}"),
        "rejected_link": rejected,
        "staging_link": format!("{link}/staging/{}", e.position),
    }))
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
    let stage = match query_param(&query, "stage").map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(
            Stage::parse(s)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("stage '{s}' is not one of parse, staging, target"))
                        .with_target("stage")
                })?
                .as_str()
                .to_string(),
        ),
        None => None,
    };
    // Errors are recorded under the entity's label; accept any of its names.
    let entity = query_param(&query, "entity")
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| import.catalog().by_any_name(e).map_or_else(|| e.to_string(), |entity| entity.label.clone()));
    let limit = limit(&query)?;
    let filter = ErrorFilter { stage, entity, after_id: whole_number(&query, "after")?, limit };
    let errors = import.errors(&view.record.id, &filter).await?;
    let link = format!("{}/api/messages/{}/errors", base(&state), view.record.id);
    let next = match errors.last() {
        Some(last) if errors.len() as u32 >= limit => {
            Value::String(format!("{link}?{}", query_with(&query, "after", &last.id.to_string())))
        }
        _ => Value::Null,
    };
    let items: Vec<Value> = errors
        .iter()
        .map(|e| {
            json!({
                "id": e.id, "entity": e.entity, "stage": e.stage, "row_number": e.row_number,
                "record_key": e.record_key, "field": e.field, "code": e.code, "message": e.message,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "message_id": view.record.id, "value": items, "next": next })).into_response())
}

/// `GET /api/messages/{id}/rejected/{position}`: the rows entity `position` rejected, in the
/// source's format, as a download.
pub(crate) async fn rejected(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path((id, position)): Path<(String, String)>,
) -> ApiResult<Response> {
    let import = service(&state, &principal)?;
    let view = view_of(import, &id).await?;
    let position = entity_position(&position)?;
    let Some((key, ext)) = import.rejected_file(&view, position).await? else {
        let entity = view.entities.iter().find(|e| e.position == position);
        return Err(ApiError::not_found(match entity {
            Some(e) => format!(
                "message {} kept no rejected-rows file for entity {position} ({}): it rejected no rows",
                view.record.id, e.entity
            ),
            None => format!(
                "message {} has no entity at position {position} (it has {})",
                view.record.id,
                view.entities.len()
            ),
        }));
    };
    let stream = import.blobs().get_stream(&key).await.map_err(ferry_import::ImportError::from)?;
    let content_type = match ext.as_str() {
        "csv" => "text/csv",
        "xml" => "application/xml",
        "json" => "application/json",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    };
    let disposition = format!("attachment; filename=\"{}-{position}-rejected.{ext}\"", view.record.id);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_DISPOSITION, disposition)],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `GET /api/messages/{id}/staging/{position}`: the rows entity `position` staged, as JSON lines
/// (`{"row":…,"company":…,"values":{…}}`), as a download.
pub(crate) async fn staging(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path((id, position)): Path<(String, String)>,
) -> ApiResult<Response> {
    let import = service(&state, &principal)?;
    let view = view_of(import, &id).await?;
    let position = entity_position(&position)?;
    let Some(key) = import.staging_file(&view, position).await? else {
        return Err(ApiError::not_found(format!(
            "message {} has no staged rows for entity {position} (not processed yet, or no such entity)",
            view.record.id
        )));
    };
    let stream = import.blobs().get_stream(&key).await.map_err(ferry_import::ImportError::from)?;
    let disposition = format!("attachment; filename=\"{}-{position}-staging.jsonl\"", view.record.id);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson".to_string()), (header::CONTENT_DISPOSITION, disposition)],
        Body::from_stream(stream),
    )
        .into_response())
}

/// An entity's position in a message, from the path.
fn entity_position(text: &str) -> ApiResult<i64> {
    text.trim().parse::<i64>().map_err(|_| {
        ApiError::bad_request(format!(
            "'{text}' is not an entity position; the message's entities list theirs (0, 1, …)"
        ))
    })
}
