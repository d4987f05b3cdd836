//! OAuth 2.0 endpoints: the client-credentials token endpoint at ferry's own path and at the
//! Entra-ID-shaped paths (v1 with `resource`, v2 with `scope`), OpenID discovery and JWKS.

use crate::ApiState;
use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use ferry_auth::AuthError;
use std::collections::HashMap;

/// Which token endpoint was called: they differ in parameters and response shape.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Ferry,
    EntraV1,
    EntraV2,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "error_description": description });
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

fn from_auth_error(e: AuthError) -> Response {
    match e {
        AuthError::InvalidClient => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed: unknown client_id, wrong client_secret, or the app is disabled",
        ),
        AuthError::InvalidRequest(m) => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &m),
        AuthError::UnsupportedGrantType(_) => {
            oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", &e.to_string())
        }
        AuthError::InvalidScope(m) => oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", &m),
        other => {
            tracing::error!(error = ?other, "token endpoint failed");
            oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the token could not be issued")
        }
    }
}

/// Client credentials from the form or from HTTP Basic (RFC 6749 §2.3.1).
fn client_credentials(headers: &HeaderMap, form: &HashMap<String, String>) -> Result<(String, String), AuthError> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| AuthError::InvalidRequest("the Basic authorization header is not valid base64".into()))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| AuthError::InvalidRequest("the Basic authorization header lacks ':'".into()))?;
        let unescape = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        return Ok((unescape(id), unescape(secret)));
    }
    let id = form.get("client_id").filter(|s| !s.is_empty());
    let secret = form.get("client_secret").filter(|s| !s.is_empty());
    match (id, secret) {
        (Some(id), Some(secret)) => Ok((id.clone(), secret.clone())),
        (None, _) => Err(AuthError::InvalidRequest("the request must contain client_id".into())),
        (_, None) => Err(AuthError::InvalidRequest("the request must contain client_secret".into())),
    }
}

/// The requested audience: v2 `scope` (`<resource>/.default`), v1 `resource`, either for ferry's
/// own endpoint.
fn requested_audience(flavor: Flavor, form: &HashMap<String, String>) -> Result<Option<String>, AuthError> {
    let scope = form.get("scope").map(|s| s.trim()).filter(|s| !s.is_empty());
    let resource = form.get("resource").map(|s| s.trim()).filter(|s| !s.is_empty());
    let from_scope = |scope: &str| -> Result<String, AuthError> {
        scope.strip_suffix("/.default").map(str::to_string).ok_or_else(|| {
            AuthError::InvalidScope(format!(
                "scope '{scope}' is not valid for the client credentials flow: use '<resource>/.default'"
            ))
        })
    };
    match flavor {
        Flavor::EntraV2 => match scope {
            Some(s) => from_scope(s).map(Some),
            None => Err(AuthError::InvalidRequest("the request must contain the 'scope' parameter".into())),
        },
        Flavor::EntraV1 => Ok(resource.map(str::to_string)),
        Flavor::Ferry => match (scope, resource) {
            (Some(s), _) => from_scope(s).map(Some),
            (None, r) => Ok(r.map(str::to_string)),
        },
    }
}

async fn issue(
    state: ApiState,
    flavor: Flavor,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded (grant_type=client_credentials&client_id=…&client_secret=…)",
        );
    };
    let result = async {
        match form.get("grant_type").map(String::as_str) {
            Some("client_credentials") => {}
            Some(other) => return Err(AuthError::UnsupportedGrantType(other.to_string())),
            None => return Err(AuthError::InvalidRequest("the request must contain grant_type".into())),
        }
        let (client_id, secret) = client_credentials(&headers, &form)?;
        let audience = state.tokens().resolve_audience(requested_audience(flavor, &form)?.as_deref())?;
        let app = state.tokens().authenticate_client(&client_id, &secret).await?;
        let token = state.tokens().issue(&app, &audience).await?;
        Ok::<_, AuthError>(token)
    }
    .await;
    let token = match result {
        Ok(t) => t,
        Err(e) => return from_auth_error(e),
    };
    let body = match flavor {
        // Entra v1 answers numbers as strings.
        Flavor::EntraV1 => serde_json::json!({
            "token_type": "Bearer",
            "expires_in": token.expires_in.to_string(),
            "ext_expires_in": token.expires_in.to_string(),
            "expires_on": token.expires_on.to_string(),
            "not_before": token.not_before.to_string(),
            "resource": token.audience,
            "access_token": token.access_token,
        }),
        Flavor::EntraV2 | Flavor::Ferry => serde_json::json!({
            "token_type": "Bearer",
            "expires_in": token.expires_in,
            "ext_expires_in": token.expires_in,
            "access_token": token.access_token,
        }),
    };
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")], Json(body)).into_response()
}

pub(crate) async fn token_ferry(
    State(state): State<ApiState>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    issue(state, Flavor::Ferry, headers, form).await
}

pub(crate) async fn token_v1(
    State(state): State<ApiState>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    issue(state, Flavor::EntraV1, headers, form).await
}

pub(crate) async fn token_v2(
    State(state): State<ApiState>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    issue(state, Flavor::EntraV2, headers, form).await
}

pub(crate) async fn openid_configuration(State(state): State<ApiState>) -> Response {
    let base = state.settings().public_url.trim_end_matches('/').to_string();
    Json(serde_json::json!({
        "issuer": base,
        "token_endpoint": format!("{base}/oauth2/token"),
        "jwks_uri": format!("{base}/discovery/keys"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "tenant_id": state.settings().tenant_id,
    }))
    .into_response()
}

pub(crate) async fn jwks(State(state): State<ApiState>) -> Response {
    match state.tokens().jwks().await {
        Ok(keys) => ([(header::CACHE_CONTROL, "max-age=300")], Json(keys)).into_response(),
        Err(e) => from_auth_error(e),
    }
}
