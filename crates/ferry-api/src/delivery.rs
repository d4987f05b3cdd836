//! The export side of the connector API, shaped like D365 F&O's: `dequeue` hands out the oldest
//! exported file of a recurring export job (`204` with an empty body when there is none),
//! `download` streams it with the bearer token (ranges supported, never a redirect), and `ack`
//! ends its delivery. Every route tolerates a culture segment before `/api` and activity ids in
//! any spelling; the job's authorization policy decides who may call, as for enqueue.

use crate::ApiState;
use crate::connector::{check_culture, query_param};
use crate::error::{ApiError, ApiResult};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_auth::Principal;
use ferry_domain::normalize_activity_id;
use serde_json::{Value, json};

/// Largest acknowledgement body read (clients send the dequeue answer back).
const ACK_BODY_MAX: usize = 64 * 1024;

/// `GET /api/connector/dequeue/{activityId}`.
pub(crate) async fn dequeue(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path(activity_id): Path<String>,
) -> ApiResult<Response> {
    dequeue_for(&state, &principal, &activity_id).await
}

/// `GET /{culture}/api/connector/dequeue/{activityId}`.
pub(crate) async fn dequeue_with_culture(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path((culture, activity_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    check_culture(&culture)?;
    dequeue_for(&state, &principal, &activity_id).await
}

/// `200` with exactly the six fields clients read, or `204` with an empty body.
async fn dequeue_for(state: &ApiState, principal: &Principal, activity_id: &str) -> ApiResult<Response> {
    let integration = state.import()?;
    let Some(d) = integration.dequeue(activity_id, &principal.client_id).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let activity = normalize_activity_id(activity_id).unwrap_or_else(|| activity_id.to_owned());
    let blob_id = d.message.content_hash.get(..32).unwrap_or_default();
    let location = format!(
        "{}/api/connector/download/%7B{activity}%7D?correlation-id={}&blob={blob_id}",
        state.settings().public_url,
        d.message.id
    );
    let body = json!({
        "CorrelationId": d.message.id,
        "PopReceipt": d.receipt,
        "DownloadLocation": location,
        "IsDownLoadFileExist": d.message.has_file(),
        "FileDownLoadErrorMessage": Value::Null,
        "LastDequeueDateTime": d.previous_dequeue.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    });
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}

/// `GET /api/connector/download/{activityId}?correlation-id=…` (the `DownloadLocation`).
pub(crate) async fn download(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path(activity_id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    download_for(&state, &principal, &activity_id, &query, &headers).await
}

/// `GET /{culture}/api/connector/download/{activityId}?correlation-id=…`.
pub(crate) async fn download_with_culture(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path((culture, activity_id)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    check_culture(&culture)?;
    download_for(&state, &principal, &activity_id, &query, &headers).await
}

async fn download_for(
    state: &ApiState,
    principal: &Principal,
    activity_id: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let integration = state.import()?;
    let Some(correlation_id) = query_param(query, "correlation-id").or_else(|| query_param(query, "correlationId"))
    else {
        return Err(ApiError::bad_request("name the export with ?correlation-id=<CorrelationId of the dequeue>")
            .with_target("correlation-id"));
    };
    let (message, key) = integration.download(activity_id, correlation_id, &principal.client_id).await?;
    let name = key.rsplit('/').next().unwrap_or("export").to_owned();
    crate::download::blob(integration.blobs(), &key, &name, headers).await.inspect_err(|e| {
        tracing::warn!(message = %message.id, error = %e.message, "export download failed");
    })
}

/// `POST /api/connector/ack/{activityId}` with the dequeue's answer (or at least its
/// `CorrelationId`, and its `PopReceipt`) as the body.
pub(crate) async fn ack(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path(activity_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    ack_for(&state, &principal, &activity_id, &body).await
}

/// `POST /{culture}/api/connector/ack/{activityId}`.
pub(crate) async fn ack_with_culture(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path((culture, activity_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    check_culture(&culture)?;
    ack_for(&state, &principal, &activity_id, &body).await
}

/// Answers exactly `200` (clients accept nothing else); the body is the acknowledged message's
/// state for people.
async fn ack_for(state: &ApiState, principal: &Principal, activity_id: &str, body: &[u8]) -> ApiResult<Response> {
    let integration = state.import()?;
    if body.len() > ACK_BODY_MAX {
        return Err(ApiError::bad_request(format!(
            "the acknowledgement is larger than {ACK_BODY_MAX} bytes; send the dequeue answer back"
        )));
    }
    let fields = crate::dmf::parse_lenient_object(body)?;
    let field = |name: &str| {
        fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str()).map(str::to_owned)
    };
    let Some(correlation_id) = field("CorrelationId").filter(|c| !c.trim().is_empty()) else {
        return Err(ApiError::bad_request(
            "the acknowledgement names no CorrelationId; send back the JSON dequeue answered",
        )
        .with_target("CorrelationId"));
    };
    let receipt = field("PopReceipt");
    let message = integration.ack(activity_id, &correlation_id, receipt.as_deref(), &principal.client_id).await?;
    let answer = json!({ "CorrelationId": message.id, "Acked": true });
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], answer.to_string()).into_response())
}
