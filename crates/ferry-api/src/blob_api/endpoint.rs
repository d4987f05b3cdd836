//! The blob endpoint, `/blobs/{*key}`, public: the signature in the query is the credential.
//! It speaks what the Azure SDKs and the DMF clients use of the Blob REST API:
//!
//! | request | operation |
//! | --- | --- |
//! | `PUT` with `x-ms-blob-type: BlockBlob` | Put Blob → 201 |
//! | `PUT ?comp=block&blockid=<base64>` | Put Block → 201 |
//! | `PUT ?comp=blocklist` (XML list of block ids) | Put Block List → 201 |
//! | `GET`, with `x-ms-range` or `Range: bytes=a-b` | Get Blob → 200, or 206 with `Content-Range` |
//! | `HEAD` | Get Blob Properties → 200 |
//!
//! Bodies stream to and from the blob store, capped per blob and per block. `If-Match` (reads
//! and writes) and `If-None-Match` (writes; `*` = only if new) are honoured; other conditions,
//! metadata, content settings (`x-ms-blob-content-*`), leases and `Content-MD5` are accepted and
//! ignored, and reads answer `application/octet-stream`. Every answer carries `x-ms-request-id`
//! and `x-ms-version` (and `x-ms-client-request-id` echoed back). Nothing here logs a query
//! string: it holds the signature.

use crate::download::parse_range;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use ferry_blob::{BlobProperties, ByteRange, etag_matches};

use super::azure_error::{AzureError, Code};
use super::block_list::{self, BlockKind};
use super::{BlobUrls, sas};
use crate::ApiState;

/// The largest block (Azure's limit); a blob's own limit applies too.
const MAX_BLOCK_BYTES: u64 = 4000 * 1024 * 1024;
/// The largest Put Block List body: room for the most blocks with the longest ids.
const MAX_BLOCK_LIST_BYTES: usize = 8 * 1024 * 1024;
/// The service version answered when a request names none (or one that is not a date).
const SERVICE_VERSION: &str = "2025-01-05";
/// The longest `x-ms-client-request-id` echoed back (Azure's limit).
const MAX_CLIENT_REQUEST_ID_LEN: usize = 1024;
/// Where blob URLs' paths start.
const PATH_PREFIX: &str = "/blobs/";

/// Serves one request to a blob URL.
pub(crate) async fn handle(State(state): State<ApiState>, request: Request) -> Response {
    let version = service_version(request.headers());
    let client_request_id = request
        .headers()
        .get("x-ms-client-request-id")
        .filter(|v| v.len() <= MAX_CLIENT_REQUEST_ID_LEN && v.to_str().is_ok())
        .cloned();
    let method = request.method().clone();
    let result = match state.inner.blob_urls.as_ref() {
        Some(urls) => serve(urls, request).await,
        None => Err(AzureError::new(Code::ServerBusy, "blob URLs are not enabled on this server")),
    };
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    tracing::debug!(%method, status = response.status().as_u16(), "blob request");
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-ms-request-id", id);
    }
    headers.insert("x-ms-version", version);
    if let Some(id) = client_request_id {
        headers.insert("x-ms-client-request-id", id);
    }
    response
}

/// Checks the signature, then runs the operation the method and `comp` name.
pub(crate) async fn serve(urls: &BlobUrls, request: Request) -> Result<Response, AzureError> {
    let (parts, body) = request.into_parts();
    let key = key_of(parts.uri.path())?;
    let query = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
        .map_err(|_| AzureError::new(Code::InvalidQueryParameterValue, "the query string cannot be read"))?
        .0;
    let permissions = sas::verify(urls.mac(), &key, &query, urls.now())
        .map_err(|denial| AzureError::new(Code::AuthenticationFailed, denial.message()))?;
    let reads = parts.method == Method::GET || parts.method == Method::HEAD;
    if !reads && !permissions.allows_write() {
        return Err(AzureError::new(
            Code::AuthorizationPermissionMismatch,
            "this request is not authorized to perform this operation using this permission (the URL is read-only)",
        ));
    }
    let comp = single_param(&query, "comp")?;
    let headers = &parts.headers;
    match (&parts.method, comp) {
        (&Method::GET, None) => get_blob(urls, &key, headers).await,
        (&Method::HEAD, None) => blob_properties(urls, &key, headers).await,
        (&Method::PUT, None) => put_blob(urls, &key, headers, body).await,
        (&Method::PUT, Some("block")) => put_block(urls, &key, &query, headers, body).await,
        (&Method::PUT, Some("blocklist")) => put_block_list(urls, &key, headers, body).await,
        (&Method::GET | &Method::HEAD | &Method::PUT, Some(other)) => Err(AzureError::new(
            Code::InvalidQueryParameterValue,
            format!(
                "comp={other} is not supported; ferry serves Put Blob, Put Block, Put Block List, Get Blob and Get Blob Properties"
            ),
        )),
        (method, _) => {
            Err(AzureError::new(Code::UnsupportedHttpVerb, format!("{method} is not supported on a blob URL")))
        }
    }
}

/// Get Blob: the whole blob (200) or the requested range (206), streamed.
async fn get_blob(urls: &BlobUrls, key: &str, headers: &HeaderMap) -> Result<Response, AzureError> {
    let range = requested_range(headers)?;
    let read = urls.blobs().read(key, range, header_text(headers, header::IF_MATCH)?).await?;
    let status = if range.is_some() { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    let mut response = (status, Body::from_stream(read.stream)).into_response();
    let out = response.headers_mut();
    blob_headers(out, &read.properties);
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(read.span.end - read.span.start));
    if range.is_some() {
        let content_range = format!("bytes {}-{}/{}", read.span.start, read.span.end - 1, read.properties.size);
        out.insert(header::CONTENT_RANGE, HeaderValue::from_str(&content_range).expect("digits"));
    }
    Ok(response)
}

/// Get Blob Properties: the headers of Get Blob, no body.
async fn blob_properties(urls: &BlobUrls, key: &str, headers: &HeaderMap) -> Result<Response, AzureError> {
    let properties = urls.blobs().properties(key).await?.ok_or(ferry_blob::BlobError::NotFound(key.to_owned()))?;
    if let Some(condition) = header_text(headers, header::IF_MATCH)?
        && !etag_matches(condition, &properties.etag)
    {
        return Err(ferry_blob::BlobError::ConditionNotMet.into());
    }
    let mut response = StatusCode::OK.into_response();
    let out = response.headers_mut();
    blob_headers(out, &properties);
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(properties.size));
    Ok(response)
}

/// Put Blob: the body becomes the blob.
async fn put_blob(urls: &BlobUrls, key: &str, headers: &HeaderMap, body: Body) -> Result<Response, AzureError> {
    let blob_type = header_text(headers, HeaderName::from_static("x-ms-blob-type"))?
        .ok_or_else(|| AzureError::new(Code::MissingRequiredHeader, "Put Blob needs the header x-ms-blob-type"))?;
    if !blob_type.trim().eq_ignore_ascii_case("BlockBlob") {
        return Err(AzureError::new(
            Code::InvalidHeaderValue,
            "ferry stores block blobs only (x-ms-blob-type: BlockBlob)",
        ));
    }
    let max = urls.max_blob_bytes();
    check_declared_length(headers, max)?;
    check_write_conditions(urls, key, headers).await?;
    urls.blobs().put_stream(key, body.into_data_stream(), max).await?;
    created(urls, key).await
}

/// Put Block: the body is staged as block `blockid` of the blob.
async fn put_block(
    urls: &BlobUrls,
    key: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, AzureError> {
    let id = single_param(query, "blockid")?.ok_or_else(|| {
        AzureError::new(Code::MissingRequiredQueryParameter, "Put Block needs the query parameter blockid")
    })?;
    // A '+' the client did not percent-encode reads as a space; base64 has no spaces.
    let id = block_list::decode_block_id(&id.replace(' ', "+"))?;
    let max = urls.max_blob_bytes().min(MAX_BLOCK_BYTES);
    check_declared_length(headers, max)?;
    urls.blobs().put_block(key, &id, body.into_data_stream(), max).await?;
    let mut response = StatusCode::CREATED.into_response();
    response.headers_mut().insert("x-ms-request-server-encrypted", HeaderValue::from_static("false"));
    Ok(response)
}

/// Put Block List: the listed staged blocks, in order, become the blob.
async fn put_block_list(urls: &BlobUrls, key: &str, headers: &HeaderMap, body: Body) -> Result<Response, AzureError> {
    check_declared_length(headers, MAX_BLOCK_LIST_BYTES as u64)?;
    let text = axum::body::to_bytes(body, MAX_BLOCK_LIST_BYTES).await.map_err(|_| {
        AzureError::new(Code::RequestBodyTooLarge, format!("a block list is at most {MAX_BLOCK_LIST_BYTES} bytes"))
    })?;
    let blocks = block_list::parse(&text)?;
    if blocks.iter().any(|b| b.kind == BlockKind::Committed) {
        return Err(AzureError::new(
            Code::InvalidBlockList,
            "ferry keeps no committed blocks once a blob is committed; list the blocks staged since as <Latest> or <Uncommitted>",
        ));
    }
    check_write_conditions(urls, key, headers).await?;
    let ids: Vec<Vec<u8>> = blocks.into_iter().map(|block| block.id).collect();
    urls.blobs().commit_blocks(key, &ids, urls.max_blob_bytes()).await?;
    created(urls, key).await
}

/// 201 with the new blob's ETag and last-modified time.
async fn created(urls: &BlobUrls, key: &str) -> Result<Response, AzureError> {
    let mut response = StatusCode::CREATED.into_response();
    let out = response.headers_mut();
    if let Some(properties) = urls.blobs().properties(key).await? {
        version_headers(out, &properties);
    }
    out.insert("x-ms-request-server-encrypted", HeaderValue::from_static("false"));
    Ok(response)
}

/// `If-Match` (the blob exists with a listed ETag) and `If-None-Match` (`*`: the blob does not
/// exist; ETags: it has none of them) before a write. Checked before the write starts, not
/// atomically with it: a concurrent writer can slip in between.
async fn check_write_conditions(urls: &BlobUrls, key: &str, headers: &HeaderMap) -> Result<(), AzureError> {
    let if_match = header_text(headers, header::IF_MATCH)?;
    let if_none_match = header_text(headers, header::IF_NONE_MATCH)?;
    if if_match.is_none() && if_none_match.is_none() {
        return Ok(());
    }
    let current = urls.blobs().properties(key).await?;
    let not_met = || AzureError::from(ferry_blob::BlobError::ConditionNotMet);
    if let Some(condition) = if_match
        && !current.as_ref().is_some_and(|p| etag_matches(condition, &p.etag))
    {
        return Err(not_met());
    }
    match (if_none_match, &current) {
        (Some(condition), Some(_)) if condition.trim() == "*" => {
            Err(AzureError::new(Code::BlobAlreadyExists, "the specified blob already exists"))
        }
        (Some(condition), Some(p)) if etag_matches(condition, &p.etag) => Err(not_met()),
        _ => Ok(()),
    }
}

/// The headers every Get Blob and Get Blob Properties answer has.
fn blob_headers(out: &mut HeaderMap, properties: &BlobProperties) {
    version_headers(out, properties);
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert("x-ms-blob-type", HeaderValue::from_static("BlockBlob"));
    out.insert("x-ms-lease-state", HeaderValue::from_static("available"));
    out.insert("x-ms-lease-status", HeaderValue::from_static("unlocked"));
    out.insert("x-ms-server-encrypted", HeaderValue::from_static("false"));
}

fn version_headers(out: &mut HeaderMap, properties: &BlobProperties) {
    if let Ok(etag) = HeaderValue::from_str(&properties.etag) {
        out.insert(header::ETAG, etag);
    }
    let modified = properties.last_modified.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    out.insert(header::LAST_MODIFIED, HeaderValue::from_str(&modified).expect("an HTTP date"));
}

/// The blob key of a request path `/blobs/{key}`, percent-decoded and checked.
fn key_of(path: &str) -> Result<String, AzureError> {
    let invalid = || AzureError::new(Code::InvalidUri, "the path is not a blob URL's");
    let encoded = path.strip_prefix(PATH_PREFIX).ok_or_else(invalid)?;
    let key = percent_encoding::percent_decode_str(encoded).decode_utf8().map_err(|_| invalid())?;
    ferry_blob::validate_key(&key).map_err(|_| invalid())?;
    Ok(key.into_owned())
}

/// The value of query parameter `name`; given twice is a bad request.
fn single_param<'q>(query: &'q [(String, String)], name: &str) -> Result<Option<&'q str>, AzureError> {
    let mut values = query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match (values.next(), values.next()) {
        (value, None) => Ok(value),
        (Some(_), Some(_)) => {
            Err(AzureError::new(Code::InvalidQueryParameterValue, format!("the query parameter {name} is given twice")))
        }
        (None, Some(_)) => unreachable!("a second value comes after a first"),
    }
}

/// A header's text; a header that is not text is a bad request.
fn header_text(headers: &HeaderMap, name: HeaderName) -> Result<Option<&str>, AzureError> {
    match headers.get(&name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(Some)
            .map_err(|_| AzureError::new(Code::InvalidHeaderValue, format!("the header {name} is not text"))),
    }
}

/// The range a Get Blob asks for: `x-ms-range` (a bad one is a bad request) before `Range` (a
/// bad or multi-part one is ignored, as HTTP allows).
fn requested_range(headers: &HeaderMap) -> Result<Option<ByteRange>, AzureError> {
    if let Some(value) = header_text(headers, HeaderName::from_static("x-ms-range"))? {
        return parse_range(value).map(Some).ok_or_else(|| {
            AzureError::new(
                Code::InvalidHeaderValue,
                "x-ms-range must be bytes=first-last, bytes=first- or bytes=-count",
            )
        });
    }
    Ok(header_text(headers, header::RANGE).ok().flatten().and_then(parse_range))
}

/// Fails with 413 when `Content-Length` already says the body is too large.
fn check_declared_length(headers: &HeaderMap, max: u64) -> Result<(), AzureError> {
    let declared = header_text(headers, header::CONTENT_LENGTH)?.and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > max => Err(ferry_blob::BlobError::TooLarge { limit: max }.into()),
        _ => Ok(()),
    }
}

/// The `x-ms-version` to answer: the request's, when it is a date like Azure's versions.
fn service_version(headers: &HeaderMap) -> HeaderValue {
    let requested = headers.get("x-ms-version").and_then(|v| v.to_str().ok()).filter(|v| {
        v.len() == 10
            && v.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() })
    });
    HeaderValue::from_str(requested.unwrap_or(SERVICE_VERSION)).expect("a date")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_path() {
        assert_eq!(key_of("/blobs/dmf/a/b.zip").unwrap(), "dmf/a/b.zip");
        assert_eq!(key_of("/blobs/dmf/a/%62.zip").unwrap(), "dmf/a/b.zip", "percent-decoded");
        for bad in ["/other/dmf/a", "/blobs/", "/blobs/dmf/../etc/passwd", "/blobs/dmf/%2E%2E/x", "/blobs/a/%FF"] {
            assert_eq!(key_of(bad).unwrap_err().code, Code::InvalidUri, "{bad}");
        }
    }

    #[test]
    fn the_version_is_echoed_when_it_is_a_date() {
        let mut headers = HeaderMap::new();
        assert_eq!(service_version(&headers), SERVICE_VERSION);
        headers.insert("x-ms-version", HeaderValue::from_static("2026-02-06"));
        assert_eq!(service_version(&headers), "2026-02-06");
        headers.insert("x-ms-version", HeaderValue::from_static("<script>"));
        assert_eq!(service_version(&headers), SERVICE_VERSION);
    }
}
