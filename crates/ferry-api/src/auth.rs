//! Bearer-token middleware and role checks. Every route except token, discovery and health
//! goes through [`require_token`].

use crate::ApiState;
use crate::error::{ApiError, ApiResult, ErrorKind};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ferry_auth::{Principal, Role};

pub(crate) async fn require_token(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    match authenticate(&state, request.headers()).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

/// Verifies the request's bearer token and answers the caller, or the 401 to send.
pub(crate) async fn authenticate(state: &ApiState, headers: &HeaderMap) -> ApiResult<Principal> {
    let header = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::trim);
    let Some(header) = header else {
        return Err(ApiError::unauthorized(None, "a bearer token is required (get one from /oauth2/token)"));
    };
    let token = match header.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => token.trim(),
        _ => {
            return Err(ApiError::unauthorized(
                Some("invalid_request"),
                "the Authorization header must be 'Bearer <token>'",
            ));
        }
    };
    match state.tokens().verify(token).await {
        Ok(principal) => Ok(principal),
        Err(ferry_auth::AuthError::Store(e)) => Err(ApiError::from(e)),
        Err(e) => Err(ApiError::unauthorized(Some("invalid_token"), &e.to_string())),
    }
}

/// 403 unless the caller's roles include `needed`.
pub(crate) fn require_role(principal: &Principal, needed: Role) -> ApiResult<()> {
    if principal.has(needed) {
        return Ok(());
    }
    let roles: Vec<&str> = principal.roles.iter().map(|r| r.as_str()).collect();
    Err(ApiError::new(
        ErrorKind::Forbidden,
        format!(
            "app '{}' has roles [{}]; this request needs the {} role",
            principal.client_id,
            roles.join(", "),
            needed.as_str()
        ),
    ))
}
