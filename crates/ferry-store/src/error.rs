//! The store's error type. Database text stays in the `source` chain for logs; the variants the
//! API shows to clients carry only what is safe to show.

use ferry_sql::{SqlError, SqlErrorKind};

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same natural key already exists.
    #[error("a record with key {key} already exists")]
    Conflict { key: String },
    /// A lookup field names a record that does not exist.
    #[error("field {field}: {value} does not exist in {target}")]
    LookupMissing { field: String, value: String, target: String },
    /// The stored schema cannot be evolved to the catalog's definition without losing data.
    #[error("entity {entity}: {message}")]
    IncompatibleSchema { entity: String, message: String },
    /// The database is busy, unreachable or timed out; trying again later may succeed.
    #[error("database unavailable")]
    Unavailable(#[source] SqlError),
    /// Anything else from the database (a refused statement is a bug; or a broken database).
    #[error("database error")]
    Database(#[source] SqlError),
    #[error("database migration failed")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A value read back from the database has an unexpected shape.
    #[error("corrupt stored value in {column}: {message}")]
    Corrupt { column: String, message: String },
    /// Another worker took over the message this worker was importing (its lease expired).
    #[error("the lease on message {message_id} was lost to another worker")]
    LeaseLost { message_id: String },
    #[error("invalid database url: {0}")]
    BadUrl(String),
}

impl StoreError {
    /// Whether the operation may succeed if retried (drives retry policies upstream).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// An error that belongs to the rows written rather than to the database: a lookup that
    /// names nothing, a conflict, a value the database refuses.
    pub fn is_row_level(&self) -> bool {
        matches!(self, StoreError::LookupMissing { .. } | StoreError::Conflict { .. } | StoreError::Database(_))
    }

    pub(crate) fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(e) if e.kind == SqlErrorKind::UniqueViolation)
    }

    pub(crate) fn corrupt(column: &str, message: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt { column: column.to_owned(), message: message.to_string() }
    }
}

impl From<SqlError> for StoreError {
    fn from(e: SqlError) -> Self {
        match e.kind {
            SqlErrorKind::Unavailable => StoreError::Unavailable(e),
            SqlErrorKind::Corrupt => StoreError::Corrupt { column: "-".into(), message: e.message },
            SqlErrorKind::Configuration => StoreError::BadUrl(e.message),
            _ => StoreError::Database(e),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        SqlError::from(e).into()
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
