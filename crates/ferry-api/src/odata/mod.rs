//! The OData entity API. One entry point takes every request under `/data`,
//! `/api/data/v9.2` and `/Metadata` (in any letter case), works out the flavor and the
//! resource from the path, and hands over to `entities.rs`, `csdl.rs` or `metadata_service.rs`.

pub(crate) mod csdl;
mod entities;
mod json_in;
mod json_out;
mod metadata_service;
mod options;

use crate::ApiState;
use crate::error::{ApiError, ApiResult, ErrorKind};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use ferry_auth::Principal;

/// Which API family a request came in through: it decides a few wire details.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// Finance & Operations, `/data`.
    FinOps,
    /// Dataverse Web API, `/api/data/v9.2`.
    Dataverse,
    /// The F&O metadata service, `/Metadata`.
    MetadataService,
}

/// Where links in a response point: the scheme, host and path prefix the client used.
#[derive(Clone, Debug)]
pub(crate) struct ServiceRoot {
    /// `http://host:port/data` (no trailing slash).
    pub url: String,
}

impl ServiceRoot {
    fn from_request(headers: &HeaderMap, prefix: &str) -> ServiceRoot {
        let host = headers
            .get("x-forwarded-host")
            .or_else(|| headers.get(header::HOST))
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c)));
        let scheme = match headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()) {
            Some("https") => "https",
            _ => "http",
        };
        // Without a usable Host header, links are relative to the server root.
        let url = match host {
            Some(host) => format!("{scheme}://{host}{prefix}"),
            None => prefix.to_string(),
        };
        ServiceRoot { url }
    }
}

/// Everything a handler needs to know about one request.
pub(crate) struct Ctx {
    pub state: ApiState,
    pub principal: Principal,
    pub flavor: Flavor,
    pub root: ServiceRoot,
    pub method: Method,
    pub headers: HeaderMap,
    /// The decoded path below the prefix, e.g. `CustomerGroups(dataAreaId='usmf',CustomerGroupId='10')`.
    pub resource: String,
    pub query: Vec<(String, String)>,
    pub body: Bytes,
}

pub(crate) async fn handle(State(state): State<ApiState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => return ApiError::new(ErrorKind::PayloadTooLarge, "the request body is too large").into_response(),
    };
    dispatch(state, parts, body).await
}

pub(crate) async fn dispatch(state: ApiState, parts: Parts, body: Bytes) -> Response {
    let Some(principal) = parts.extensions.get::<Principal>().cloned() else {
        return ApiError::unauthorized(None, "a bearer token is required").into_response();
    };
    let raw_path = parts.uri.path();
    let lower = raw_path.to_ascii_lowercase();
    let (flavor, prefix_len) = if lower.starts_with("/api/data/v9.2") {
        (Flavor::Dataverse, "/api/data/v9.2".len())
    } else if lower.starts_with("/metadata") {
        (Flavor::MetadataService, "/metadata".len())
    } else {
        (Flavor::FinOps, "/data".len())
    };
    let prefix = &raw_path[..prefix_len];
    let resource = percent_encoding::percent_decode_str(raw_path[prefix_len..].trim_start_matches('/'))
        .decode_utf8_lossy()
        .trim_end_matches('/')
        .to_string();
    let query = match options::split_query(parts.uri.query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let ctx = Ctx {
        root: ServiceRoot::from_request(&parts.headers, prefix),
        state,
        principal,
        flavor,
        method: parts.method,
        headers: parts.headers,
        resource,
        query,
        body,
    };
    match route(ctx).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn route(ctx: Ctx) -> ApiResult<Response> {
    if ctx.flavor == Flavor::MetadataService {
        only_get(&ctx.method)?;
        return metadata_service::handle(&ctx);
    }
    match ctx.resource.as_str() {
        "" => {
            only_get(&ctx.method)?;
            Ok(csdl::service_document(&ctx))
        }
        r if r.eq_ignore_ascii_case("$metadata") => {
            only_get(&ctx.method)?;
            Ok(csdl::metadata_document(&ctx))
        }
        _ => entities::handle(ctx).await,
    }
}

fn only_get(method: &Method) -> ApiResult<()> {
    if method == Method::GET || method == Method::HEAD {
        Ok(())
    } else {
        Err(ApiError::new(ErrorKind::MethodNotAllowed, format!("{method} is not allowed here; use GET")))
    }
}
