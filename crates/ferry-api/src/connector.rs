//! The recurring-integration connector API, shaped like D365 F&O's `/api/connector/*`:
//! `enqueue` (stream a file or data package into a recurring job's queue) and `jobstatus`
//! (the `DataJobStatusDetail` of one message); the export side (`dequeue`, `download`, `ack`)
//! is `delivery.rs`. Both tolerate a culture segment before `/api`
//! (`/en/api/connector/…`) and activity ids bare, braced or `%7B…%7D`-encoded, in any case.
//!
//! Authorization: any authenticated app may call; the job's authorization policy (its list of
//! apps) decides, as in D365. An app not in it gets 401 naming the app and the job.

use crate::ApiState;
use crate::error::{ApiError, ApiResult};
use crate::wire::{data_job_state_of, entity_state_name};
use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use ferry_auth::Principal;
use ferry_domain::normalize_activity_id;
use ferry_integration::{EnqueueRequest, IntegrationError, MessageView};
use serde_json::{Value, json};

/// The header that carries the client's own name for a file (RIS sends the file name).
const EXTERNAL_ID_HEADER: &str = "x-ms-dyn-externalidentifier";

/// `DateTime.MinValue`: what .NET clients get for a time that is not known yet (the contract's
/// DateTimes are not nullable).
const NO_TIME: &str = "0001-01-01T00:00:00Z";

/// The value of query parameter `name`, matched without regard to case.
pub(crate) fn query_param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Accepts `/{culture}/api/connector/…` for two-letter cultures only (`en`, `de`).
pub(crate) fn check_culture(culture: &str) -> ApiResult<()> {
    if culture.len() == 2 && culture.chars().all(|c| c.is_ascii_alphabetic()) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no endpoint at /{culture}/api/connector/…; see /openapi.json")))
    }
}

/// `POST /api/connector/enqueue/{activityId}?entity=…&company=…`.
pub(crate) async fn enqueue(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path(activity_id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    enqueue_body(&state, &principal, activity_id, &query, &headers, body).await
}

/// `POST /{culture}/api/connector/enqueue/{activityId}`.
pub(crate) async fn enqueue_with_culture(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path((culture, activity_id)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    check_culture(&culture)?;
    enqueue_body(&state, &principal, activity_id, &query, &headers, body).await
}

/// Streams the body into the import service (never buffered whole) and answers `200` with the
/// message id as a JSON string literal, the bytes every known client strips quotes from.
async fn enqueue_body(
    state: &ApiState,
    principal: &Principal,
    activity_id: String,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let import = state.import()?;
    let limit = import.settings().max_enqueue_bytes;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(IntegrationError::TooLarge { limit }.into());
    }
    let external_id = headers
        .get(EXTERNAL_ID_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
        .filter(|v| !v.is_empty());
    let request = EnqueueRequest {
        activity_id,
        entity: query_param(query, "entity").map(str::to_string),
        company: query_param(query, "company").map(str::to_string),
        external_id,
        client_id: principal.client_id.clone(),
        app_default_company: principal.default_company.clone(),
    };
    let result = import.enqueue(request, body.into_data_stream()).await?;
    if result.duplicate {
        tracing::info!(message_id = %result.message_id, "enqueue repeated; answering the original message");
    }
    let quoted = Value::String(result.message_id).to_string();
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], quoted).into_response())
}

/// `GET /api/connector/jobstatus/{activityId}?jobId=<message id>`.
pub(crate) async fn job_status(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path(activity_id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    job_status_of(&state, &principal, &activity_id, &query).await
}

/// `GET /{culture}/api/connector/jobstatus/{activityId}?jobId=<message id>`.
pub(crate) async fn job_status_with_culture(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path((culture, activity_id)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    check_culture(&culture)?;
    job_status_of(&state, &principal, &activity_id, &query).await
}

/// The `DataJobStatusDetail` of one message of the job. Enumerations are written as names
/// (RIS and the DIXF sample read names or numbers), times as ISO-8601 UTC with
/// `0001-01-01T00:00:00Z` for "not yet".
async fn job_status_of(
    state: &ApiState,
    principal: &Principal,
    activity_id: &str,
    query: &[(String, String)],
) -> ApiResult<Response> {
    let import = state.import()?;
    let Some((job, _)) = import.get_job(activity_id).await? else {
        return Err(IntegrationError::UnknownJob(activity_id.to_string()).into());
    };
    if !job.authorizes(&principal.client_id) {
        return Err(IntegrationError::Unauthorized {
            client_id: principal.client_id.clone(),
            activity_id: job.activity_id.clone(),
        }
        .into());
    }
    let Some(message_id) = query_param(query, "jobId").map(str::trim).filter(|m| !m.is_empty()) else {
        return Err(
            ApiError::bad_request("name the message with ?jobId=<message id returned by enqueue>").with_target("jobId")
        );
    };
    // Clients that forget to strip the enqueue answer's quotes send them along.
    let message_id = message_id.trim_matches('"');
    let view = match import.message(message_id).await? {
        Some(v) if Some(&v.message.activity_id) == normalize_activity_id(activity_id).as_ref() => v,
        Some(_) => {
            return Err(ApiError::not_found(format!(
                "message {message_id} does not belong to recurring job {}",
                job.activity_id
            )));
        }
        None => return Err(ApiError::not_found(format!("no message has id {message_id}"))),
    };
    Ok(axum::Json(data_job_status_detail(&view)).into_response())
}

pub(crate) fn time_or_min(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| NO_TIME.to_string(), |t| t.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string())
}

/// The execution log of a message: why it is where it is, then its warnings.
pub(crate) fn execution_log(view: &MessageView) -> String {
    let mut lines: Vec<&str> = Vec::new();
    if let Some(reason) = view.reason.as_deref().filter(|r| !r.is_empty()) {
        lines.push(reason);
    }
    if let Some(warnings) = view.message.warnings.as_deref() {
        lines.extend(warnings.lines().filter(|l| !l.trim().is_empty()));
    }
    lines.join("\n")
}

fn data_job_status_detail(view: &MessageView) -> Value {
    let m = &view.message;
    let details: Vec<Value> = view
        .entities
        .iter()
        .map(|e| {
            json!({
                "EntityName": e.entity,
                "Company": e.company.clone().or_else(|| m.company.clone()).unwrap_or_default(),
                "StagingRecords": e.rows_read,
                "StagingErrorCount": e.staging_errors,
                "TargetRecords": e.target_records(),
                "TargetErrorCount": e.target_errors,
                "StagingStatus": entity_state_name(e.staging),
                "TargetStatus": entity_state_name(e.target),
                "ExecutionStartedDateTime": time_or_min(e.started_at),
                "ExecutionCompletedDateTime": time_or_min(e.finished_at),
            })
        })
        .collect();
    json!({
        "DataJobStatus": {
            "DataProject": m.project,
            "DataJobIdentifier": m.id,
            "ExternalIdentifier": m.external_id,
            "ExecutionIdentifier": m.execution_id,
            "DataJobStartedDateTime": time_or_min(m.started_at),
            "DataJobCompletedDateTime": time_or_min(m.finished_at),
            "DataJobState": data_job_state_of(m).0,
        },
        "ExecutionLog": execution_log(view),
        "ExecutionDetail": details,
    })
}
