//! The import service's error type; the HTTP edge maps each kind to a status code.

use ferry_blob::BlobError;
use ferry_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    /// No recurring job has this activity id.
    #[error("no recurring job has activity id {0}")]
    UnknownJob(String),
    /// The calling application is not in the job's authorization policy (or is disabled there).
    #[error("application {client_id} is not authorized for recurring job {activity_id}; add it to the job's apps")]
    Unauthorized { client_id: String, activity_id: String },
    #[error("recurring job {0} is disabled; enable it with `ferry jobs enable {0}`")]
    JobDisabled(String),
    /// The request names something wrong (entity, company, definition); the text says what.
    #[error("{0}")]
    BadRequest(String),
    #[error("the body is larger than the limit of {limit} bytes; split the file or raise import.max_enqueue_bytes")]
    TooLarge { limit: u64 },
    /// Reading the request body failed (the client went away).
    #[error("the request body could not be read: {0}")]
    BodyFailed(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The database or blob store is busy or unreachable; retry later.
    #[error("storage is unavailable; retry later")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for IntegrationError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            IntegrationError::Unavailable(e.to_string())
        } else {
            tracing::error!(error = ?e, "store error");
            IntegrationError::Internal(e.to_string())
        }
    }
}

impl From<BlobError> for IntegrationError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::TooLarge { limit } => IntegrationError::TooLarge { limit },
            BlobError::Body(m) => IntegrationError::BodyFailed(m),
            e if e.is_transient() => IntegrationError::Unavailable(e.to_string()),
            e => {
                tracing::error!(error = ?e, "blob store error");
                IntegrationError::Internal(e.to_string())
            }
        }
    }
}

impl From<ferry_domain::DefinitionError> for IntegrationError {
    fn from(e: ferry_domain::DefinitionError) -> Self {
        IntegrationError::BadRequest(e.0)
    }
}
