//! The store's error type. Database text stays in the `source` chain for logs; the variants the
//! API shows to clients carry only what is safe to show.

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
    Unavailable(#[source] sqlx::Error),
    /// Anything else from the database (a bug or a broken database).
    #[error("database error")]
    Database(#[source] sqlx::Error),
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
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &e {
            E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => StoreError::Unavailable(e),
            E::Database(db) => {
                // SQLITE_BUSY / SQLITE_LOCKED, PostgreSQL serialization / deadlock / admin shutdown.
                let transient = matches!(
                    db.code().as_deref(),
                    Some("5" | "6" | "517" | "40001" | "40P01" | "57P01" | "57P03" | "53300")
                );
                if transient { StoreError::Unavailable(e) } else { StoreError::Database(e) }
            }
            _ => StoreError::Database(e),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
