//! The blob endpoint's errors in Azure Blob Storage's own shape — the one its clients parse —
//! instead of the OData envelope of the rest of the API: status, the `x-ms-error-code` header
//! (which the SDKs read first) and `<Error><Code>…</Code><Message>…</Message></Error>`. One table
//! from code to status, as `error.rs` is for the OData side. Never a 3xx.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_blob::BlobError;

/// The Azure error codes ferry answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Code {
    /// The signature is missing, malformed, wrong or expired.
    AuthenticationFailed,
    /// A read-only URL was used to write.
    AuthorizationPermissionMismatch,
    BlobNotFound,
    /// `If-None-Match: *` on a blob that exists.
    BlobAlreadyExists,
    /// `If-Match` (or `If-None-Match` with an ETag) does not hold.
    ConditionNotMet,
    InvalidRange,
    RequestBodyTooLarge,
    InvalidBlockId,
    InvalidBlockList,
    BlockCountExceedsLimit,
    InvalidXmlDocument,
    MissingRequiredHeader,
    MissingRequiredQueryParameter,
    InvalidHeaderValue,
    InvalidQueryParameterValue,
    InvalidUri,
    InvalidInput,
    UnsupportedHttpVerb,
    /// The blob store is unreachable (or blob URLs are not enabled on this server): try later.
    ServerBusy,
    InternalError,
}

impl Code {
    fn status(self) -> StatusCode {
        match self {
            Code::AuthenticationFailed | Code::AuthorizationPermissionMismatch => StatusCode::FORBIDDEN,
            Code::BlobNotFound => StatusCode::NOT_FOUND,
            Code::BlobAlreadyExists | Code::BlockCountExceedsLimit => StatusCode::CONFLICT,
            Code::ConditionNotMet => StatusCode::PRECONDITION_FAILED,
            Code::InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE,
            Code::RequestBodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::InvalidBlockId
            | Code::InvalidBlockList
            | Code::InvalidXmlDocument
            | Code::MissingRequiredHeader
            | Code::MissingRequiredQueryParameter
            | Code::InvalidHeaderValue
            | Code::InvalidQueryParameterValue
            | Code::InvalidUri
            | Code::InvalidInput => StatusCode::BAD_REQUEST,
            Code::UnsupportedHttpVerb => StatusCode::METHOD_NOT_ALLOWED,
            Code::ServerBusy => StatusCode::SERVICE_UNAVAILABLE,
            Code::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Code::AuthenticationFailed => "AuthenticationFailed",
            Code::AuthorizationPermissionMismatch => "AuthorizationPermissionMismatch",
            Code::BlobNotFound => "BlobNotFound",
            Code::BlobAlreadyExists => "BlobAlreadyExists",
            Code::ConditionNotMet => "ConditionNotMet",
            Code::InvalidRange => "InvalidRange",
            Code::RequestBodyTooLarge => "RequestBodyTooLarge",
            Code::InvalidBlockId => "InvalidBlockId",
            Code::InvalidBlockList => "InvalidBlockList",
            Code::BlockCountExceedsLimit => "BlockCountExceedsLimit",
            Code::InvalidXmlDocument => "InvalidXmlDocument",
            Code::MissingRequiredHeader => "MissingRequiredHeader",
            Code::MissingRequiredQueryParameter => "MissingRequiredQueryParameter",
            Code::InvalidHeaderValue => "InvalidHeaderValue",
            Code::InvalidQueryParameterValue => "InvalidQueryParameterValue",
            Code::InvalidUri => "InvalidUri",
            Code::InvalidInput => "InvalidInput",
            Code::UnsupportedHttpVerb => "UnsupportedHttpVerb",
            Code::ServerBusy => "ServerBusy",
            Code::InternalError => "InternalError",
        }
    }
}

/// An error answer of the blob endpoint.
#[derive(Debug)]
pub(crate) struct AzureError {
    pub code: Code,
    pub message: String,
    /// For `InvalidRange`: the blob's size, sent as `Content-Range: bytes */size`.
    pub size: Option<u64>,
}

impl AzureError {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> AzureError {
        AzureError { code, message: message.into(), size: None }
    }
}

impl From<BlobError> for AzureError {
    fn from(e: BlobError) -> AzureError {
        let message = e.to_string();
        match e {
            BlobError::NotFound(_) => AzureError::new(Code::BlobNotFound, "the specified blob does not exist"),
            BlobError::InvalidKey(_) => AzureError::new(Code::InvalidUri, message),
            BlobError::TooLarge { .. } => AzureError::new(Code::RequestBodyTooLarge, message),
            BlobError::Body(_) => AzureError::new(Code::InvalidInput, message),
            BlobError::ConditionNotMet => AzureError::new(
                Code::ConditionNotMet,
                "the condition specified using HTTP conditional header(s) is not met",
            ),
            BlobError::InvalidRange { size } => {
                AzureError { code: Code::InvalidRange, message: message.clone(), size: Some(size) }
            }
            BlobError::InvalidBlockList(_) => AzureError::new(Code::InvalidBlockList, message),
            BlobError::Unavailable(_) => {
                tracing::warn!(error = %message, "blob store unavailable");
                AzureError::new(Code::ServerBusy, "the blob store is unavailable; try again shortly")
            }
            BlobError::Config(_) | BlobError::Io(_) => {
                tracing::error!(error = %message, "blob store error");
                AzureError::new(Code::InternalError, "an internal error occurred; the server log has the details")
            }
        }
    }
}

impl IntoResponse for AzureError {
    fn into_response(self) -> Response {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{}</Code><Message>{}</Message></Error>",
            self.code.as_str(),
            escape(&self.message)
        );
        let mut response = (self.code.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        headers.insert("x-ms-error-code", HeaderValue::from_static(self.code.as_str()));
        if let Some(size) = self.size
            && let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            headers.insert(header::CONTENT_RANGE, value);
        }
        response
    }
}

/// `text` as XML character data.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_have_azure_shape() {
        let error = AzureError::new(Code::AuthenticationFailed, "bad <sig> & co");
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(response.headers()["x-ms-error-code"], "AuthenticationFailed");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/xml");
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code>\
             <Message>bad &lt;sig&gt; &amp; co</Message></Error>"
        );

        let range = AzureError::from(BlobError::InvalidRange { size: 10 }).into_response();
        assert_eq!(range.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(range.headers()[header::CONTENT_RANGE], "bytes */10");
        let missing = AzureError::from(BlobError::NotFound("dmf/a/b".into()));
        assert_eq!((missing.code, missing.code.status()), (Code::BlobNotFound, StatusCode::NOT_FOUND));
    }

    #[test]
    fn no_code_redirects() {
        for code in [Code::AuthenticationFailed, Code::ConditionNotMet, Code::ServerBusy, Code::UnsupportedHttpVerb] {
            assert!(!code.status().is_redirection());
        }
    }
}
