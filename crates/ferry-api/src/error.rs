//! The one table from error kinds to HTTP status and machine-readable code, and the OData error
//! envelope every error leaves in. Database text and stack traces never reach a response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_store::StoreError;

/// The kinds of error a client can get. Each has one status and one code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed (bad JSON, bad query option, unknown field, wrong type).
    BadRequest,
    /// No such entity set, key or path.
    NotFound,
    MethodNotAllowed,
    /// A record with the same key exists.
    Conflict,
    /// A lookup names a record that does not exist.
    LookupMissing,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// A download's `Range` selects no byte of the file.
    RangeNotSatisfiable,
    /// Missing or invalid bearer token.
    Unauthorized,
    /// Valid token, but its roles do not allow this.
    Forbidden,
    /// The calling app is over one of its throttle limits; try again after `Retry-After`.
    TooManyRequests,
    /// The database is unavailable; try again.
    Unavailable,
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::LookupMissing => StatusCode::BAD_REQUEST,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "BadRequest",
            ErrorKind::NotFound => "NotFound",
            ErrorKind::MethodNotAllowed => "MethodNotAllowed",
            ErrorKind::Conflict => "Conflict",
            ErrorKind::LookupMissing => "LookupValueNotFound",
            ErrorKind::PayloadTooLarge => "PayloadTooLarge",
            ErrorKind::UnsupportedMediaType => "UnsupportedMediaType",
            ErrorKind::RangeNotSatisfiable => "RangeNotSatisfiable",
            ErrorKind::Unauthorized => "Unauthorized",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::TooManyRequests => "TooManyRequests",
            ErrorKind::Unavailable => "ServiceUnavailable",
            ErrorKind::Internal => "InternalServerError",
        }
    }
}

/// An error answer: kind, a message that names the problem, and optionally its target
/// (the field or query option at fault).
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    pub target: Option<String>,
    /// Set for 401s: the `WWW-Authenticate` challenge.
    pub challenge: Option<String>,
    /// Set for 429s and retryable 503s: `Retry-After` in whole seconds (RIS parses it as an
    /// integer).
    pub retry_after_secs: Option<u32>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError { kind, message: message.into(), target: None, challenge: None, retry_after_secs: None }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::NotFound, message)
    }

    pub fn with_target(mut self, target: impl Into<String>) -> ApiError {
        self.target = Some(target.into());
        self
    }

    /// A 401 with the bearer challenge `error` and its description.
    pub fn unauthorized(error: Option<&str>, description: &str) -> ApiError {
        let challenge = match error {
            Some(e) => format!(
                "Bearer realm=\"ferry\", error=\"{e}\", error_description=\"{}\"",
                description.replace('"', "'")
            ),
            None => "Bearer realm=\"ferry\"".to_string(),
        };
        ApiError {
            kind: ErrorKind::Unauthorized,
            message: description.into(),
            target: None,
            challenge: Some(challenge),
            retry_after_secs: None,
        }
    }

    /// Adds `Retry-After: <secs>` to the answer.
    pub fn with_retry_after(mut self, secs: u32) -> ApiError {
        self.retry_after_secs = Some(secs);
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match &e {
            StoreError::Conflict { .. } => ApiError::new(ErrorKind::Conflict, e.to_string()),
            StoreError::LookupMissing { field, .. } => {
                ApiError::new(ErrorKind::LookupMissing, e.to_string()).with_target(field.clone())
            }
            StoreError::Unavailable(_) => {
                tracing::warn!(error = ?e, "database unavailable");
                ApiError::new(ErrorKind::Unavailable, "the database is unavailable; try again shortly")
            }
            _ => {
                tracing::error!(error = ?e, "store error");
                ApiError::new(ErrorKind::Internal, "an internal error occurred; the server log has the details")
            }
        }
    }
}

/// Seconds a client is asked to wait before retrying when import storage is unavailable.
const IMPORT_RETRY_AFTER_SECS: u32 = 5;

impl From<ferry_integration::IntegrationError> for ApiError {
    fn from(e: ferry_integration::IntegrationError) -> ApiError {
        use ferry_integration::IntegrationError as E;
        match e {
            E::UnknownJob(_) | E::NotFound(_) => ApiError::not_found(e.to_string()),
            // The job's authorization policy is the permission: the token was fine, the app is
            // not listed. D365 answers 401 here, and clients expect it.
            E::Unauthorized { .. } => ApiError::unauthorized(None, &e.to_string()),
            // D365 documents no answer for a disabled job; 409 tells it apart from the policy's
            // 401 and from an unknown job's 404.
            E::JobDisabled(_) | E::Conflict(_) => ApiError::new(ErrorKind::Conflict, e.to_string()),
            E::BadRequest(_) | E::BodyFailed(_) => ApiError::bad_request(e.to_string()),
            E::TooLarge { .. } => ApiError::new(ErrorKind::PayloadTooLarge, e.to_string()),
            E::Unavailable(ref detail) => {
                tracing::warn!(error = %detail, "import storage unavailable");
                ApiError::new(ErrorKind::Unavailable, e.to_string()).with_retry_after(IMPORT_RETRY_AFTER_SECS)
            }
            E::Internal(ref detail) => {
                tracing::error!(error = %detail, "import error");
                ApiError::new(ErrorKind::Internal, "an internal error occurred; the server log has the details")
            }
        }
    }
}

impl From<ferry_query::QueryError> for ApiError {
    fn from(e: ferry_query::QueryError) -> ApiError {
        ApiError::bad_request(e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({ "code": self.kind.code(), "message": self.message });
        if let Some(target) = &self.target {
            error["target"] = serde_json::Value::String(target.clone());
        }
        let body = serde_json::json!({ "error": error }).to_string();
        let mut response = (self.kind.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; odata.metadata=minimal"));
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
