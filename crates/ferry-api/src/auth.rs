//! Bearer-token middleware and role checks. Every route except token, discovery and health
//! goes through [`require_token`], which also holds the caller's app to its throttle limits
//! (`throttle.rs`); so does the entity API's case-insensitive fallback, through [`admit`].

use crate::ApiState;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::throttle::Permit;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ferry_auth::{Principal, Role};

/// Secured routes an app may call however throttled it is: a metrics scrape is cheap, and it
/// must go on showing what throttling does.
const UNTHROTTLED_ROUTES: &[&str] = &["/metrics"];

pub(crate) async fn require_token(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    let admitted = if route.is_some_and(|r| UNTHROTTLED_ROUTES.contains(&r)) {
        authenticate(&state, request.headers()).await.map(|principal| (principal, Permit::free()))
    } else {
        admit(&state, request.headers()).await
    };
    match admitted {
        Ok((principal, permit)) => {
            request.extensions_mut().insert(principal);
            permit.hold_until_sent(next.run(request).await)
        }
        Err(e) => e.into_response(),
    }
}

/// Verifies the request's bearer token and lets the caller in past its app's throttle limits:
/// the caller and the permit to hold until the answer is sent, or the 401 or 429 to send.
pub(crate) async fn admit(state: &ApiState, headers: &HeaderMap) -> ApiResult<(Principal, Permit)> {
    let principal = authenticate(state, headers).await?;
    let permit = state.throttle().admit(&principal.client_id)?;
    Ok((principal, permit))
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
