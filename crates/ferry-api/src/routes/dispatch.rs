//! The handlers that route by the path themselves, where the exact routes of the table cannot:
//! paths and entity-set names in any case, and `/data/{*path}` holding either a DMF action or
//! an entity-API path.

use super::BODY_LIMIT_BYTES;
use crate::error::ApiError;
use crate::{ApiState, auth, dmf, odata};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};

/// Paths and entity-set names match without regard to case (`/Data/customergroups`,
/// `/metadata/DataEntities`): anything the exact routes missed that belongs to the entity API
/// lands here.
pub(super) async fn case_insensitive_fallback(State(state): State<ApiState>, request: Request) -> Response {
    let lower = request.uri().path().to_ascii_lowercase();
    let is_entity_api = ["/data", "/api/data/v9.2", "/metadata/"]
        .iter()
        .any(|p| lower == *p || lower.starts_with(&format!("{}/", p.trim_end_matches('/'))));
    if !is_entity_api {
        return ApiError::not_found(format!("no endpoint at {}; see /openapi.json", request.uri().path()))
            .into_response();
    }
    let (mut parts, body) = request.into_parts();
    let (principal, permit) = match auth::admit(&state, &parts.headers).await {
        Ok(admitted) => admitted,
        Err(e) => return e.into_response(),
    };
    parts.extensions.insert(principal);
    let body = match axum::body::to_bytes(body, BODY_LIMIT_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(crate::error::ErrorKind::PayloadTooLarge, "the request body is too large")
                .into_response();
        }
    };
    if let Some(action) = dmf::action_in_path(parts.uri.path()) {
        let principal = parts.extensions.get::<ferry_auth::Principal>().cloned().expect("inserted above");
        let response = dmf::run(&state, &principal, &parts.method, &action, &body).await;
        return permit.hold_until_sent(response.unwrap_or_else(|e| e.into_response()));
    }
    permit.hold_until_sent(odata::dispatch(state, parts, body).await)
}

/// `/data/{*path}`: the DMF actions when the entity set is spelled in another case than the
/// exact route's, else the entity API.
pub(super) async fn data_path(State(state): State<ApiState>, request: Request) -> Response {
    match dmf::action_in_path(request.uri().path()) {
        Some(action) => dmf::handle_request(state, &action, request).await,
        None => odata::handle(State(state), request).await,
    }
}
