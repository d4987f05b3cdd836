//! Streaming a blob to a caller with a bearer token, as a download: the connector's exported
//! files and a message's rejected-rows and staging files. The bytes stream from the blob store
//! (never held whole); `Range: bytes=…` answers `206` with `Content-Range` (`416` when it
//! selects nothing); never a redirect.

use crate::error::{ApiError, ApiResult, ErrorKind};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_blob::{BlobError, BlobStore, ByteRange};

/// The content type of a file by its extension.
pub(crate) fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).as_deref() {
        Some("csv") => "text/csv",
        Some("xml") => "application/xml",
        Some("json") => "application/json",
        Some("jsonl") => "application/x-ndjson",
        Some("txt") => "text/plain; charset=utf-8",
        Some("zip") => "application/zip",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

/// Streams blob `key` as the download `file_name`, or the range `headers` ask for.
pub(crate) async fn blob(blobs: &BlobStore, key: &str, file_name: &str, headers: &HeaderMap) -> ApiResult<Response> {
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(parse_range);
    let read = match blobs.read(key, range, None).await {
        Ok(read) => read,
        Err(BlobError::InvalidRange { size }) => {
            let mut response = ApiError::new(
                ErrorKind::RangeNotSatisfiable,
                format!("the file has {size} bytes; the range selects none of them"),
            )
            .into_response();
            let value = HeaderValue::from_str(&format!("bytes */{size}")).expect("digits");
            response.headers_mut().insert(header::CONTENT_RANGE, value);
            return Ok(response);
        }
        Err(BlobError::NotFound(_)) => return Err(ApiError::not_found(format!("the file {file_name} is gone"))),
        Err(e) => return Err(ferry_integration::IntegrationError::from(e).into()),
    };
    let status = if range.is_some() { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    let mut response = (status, Body::from_stream(read.stream)).into_response();
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(file_name)));
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(read.span.end - read.span.start));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(etag) = HeaderValue::from_str(&read.properties.etag) {
        out.insert(header::ETAG, etag);
    }
    if range.is_some() {
        let content_range = format!("bytes {}-{}/{}", read.span.start, read.span.end - 1, read.properties.size);
        out.insert(header::CONTENT_RANGE, HeaderValue::from_str(&content_range).expect("digits"));
    }
    let safe: String = file_name.chars().filter(|c| !c.is_control() && *c != '"').collect();
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        out.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n`.
pub(crate) fn parse_range(text: &str) -> Option<ByteRange> {
    let (first, last) = text.trim().strip_prefix("bytes=")?.split_once('-')?;
    let number = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u64>().ok())?
    };
    match (first.trim(), last.trim()) {
        ("", count) => Some(ByteRange::Suffix(number(count)?)),
        (first, "") => Some(ByteRange::From(number(first)?)),
        (first, last) => {
            let (first, last) = (number(first)?, number(last)?);
            (first <= last).then_some(ByteRange::Bounded { first, last })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_like_azure() {
        let bounded = |first, last| Some(ByteRange::Bounded { first, last });
        assert_eq!(parse_range("bytes=0-99"), bounded(0, 99));
        assert_eq!(parse_range(" bytes=5 - 5 "), bounded(5, 5));
        assert_eq!(parse_range("bytes=100-"), Some(ByteRange::From(100)));
        assert_eq!(parse_range("bytes=-10"), Some(ByteRange::Suffix(10)));
        for bad in ["", "bytes=", "bytes=-", "bytes=5-4", "bytes=a-b", "items=0-1", "bytes=0-1,3-4", "bytes=+1-2"] {
            assert_eq!(parse_range(bad), None, "{bad}");
        }
        assert_eq!(parse_range(&format!("bytes=0-{}", "9".repeat(30))), None, "too long a number");
    }
}
