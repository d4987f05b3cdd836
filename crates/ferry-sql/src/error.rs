//! Driver errors sorted by what callers do about them, in one place for every driver: retry
//! later (unavailable), tell the user the key exists (unique violation), show the database's
//! refusal (rejected), fix the settings (configuration), or treat as a bug (corrupt, other).

use sqlx::error::DatabaseError;

/// What kind of failure a [`SqlError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlErrorKind {
    /// The database cannot be reached, dropped the connection, is busy or shutting down, or a
    /// lock wait or deadlock aborted the statement: trying again later may succeed.
    Unavailable,
    /// A row with the same unique key exists.
    UniqueViolation,
    /// The database refused the statement (a constraint, a size, a permission); its message is
    /// safe to log and to show to the database's owner.
    Rejected,
    /// The connection settings cannot be used (a bad URL, an unknown option).
    Configuration,
    /// A value read back does not have the expected shape.
    Corrupt,
    /// Anything else (a bug).
    Other,
}

/// A failed database operation.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SqlError {
    pub kind: SqlErrorKind,
    /// The database's or the driver's message.
    pub message: String,
    #[source]
    pub source: Option<sqlx::Error>,
}

impl SqlError {
    pub fn corrupt(column: usize, message: impl std::fmt::Display) -> SqlError {
        SqlError { kind: SqlErrorKind::Corrupt, message: format!("column #{column}: {message}"), source: None }
    }

    pub fn other(message: impl Into<String>) -> SqlError {
        SqlError { kind: SqlErrorKind::Other, message: message.into(), source: None }
    }

    pub fn is_transient(&self) -> bool {
        self.kind == SqlErrorKind::Unavailable
    }

    /// The database's own code for the error (PostgreSQL's SQLSTATE), when it gave one.
    pub fn database_code(&self) -> Option<String> {
        match &self.source {
            Some(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for SqlError {
    fn from(e: sqlx::Error) -> SqlError {
        use sqlx::Error as E;
        let (kind, message) = match &e {
            E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed | E::Protocol(_) => {
                (SqlErrorKind::Unavailable, e.to_string())
            }
            E::Database(db) if is_transient(db.as_ref()) => (SqlErrorKind::Unavailable, db.message().to_owned()),
            E::Database(db) if db.is_unique_violation() => (SqlErrorKind::UniqueViolation, db.message().to_owned()),
            E::Database(db) => (SqlErrorKind::Rejected, db.message().to_owned()),
            E::Configuration(_) => (SqlErrorKind::Configuration, e.to_string()),
            E::ColumnDecode { .. } | E::Decode(_) | E::ColumnNotFound(_) | E::ColumnIndexOutOfBounds { .. } => {
                (SqlErrorKind::Corrupt, e.to_string())
            }
            _ => (SqlErrorKind::Other, e.to_string()),
        };
        SqlError { kind, message, source: Some(e) }
    }
}

/// Lost connections, shutdowns, too many connections, lock timeouts and deadlocks, serialization
/// failures, busy SQLite files: failures of the moment, not of the data.
fn is_transient(db: &dyn DatabaseError) -> bool {
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        // 1040 too many connections, 1053 shutdown, 1205 lock wait timeout, 1213 deadlock,
        // 2002/2003 cannot connect, 2006 gone away, 2013 lost connection, 2055 lost at handshake.
        return matches!(my.number(), 1040 | 1053 | 1205 | 1213 | 2002 | 2003 | 2006 | 2013 | 2055)
            || my.code().is_some_and(|c| c.starts_with("08"));
    }
    match db.code().as_deref() {
        // PostgreSQL: connection exceptions, shutdowns, too many connections, serialization and
        // deadlock failures.
        Some(code) if code.starts_with("08") => true,
        Some("57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01") => true,
        // SQLite: BUSY, LOCKED, BUSY_RECOVERY, BUSY_SNAPSHOT.
        Some("5" | "6" | "261" | "517") => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_and_pool_failures_are_unavailable() {
        let io = sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"));
        assert!(SqlError::from(io).is_transient());
        assert!(SqlError::from(sqlx::Error::PoolTimedOut).is_transient());
        assert_eq!(SqlError::from(sqlx::Error::RowNotFound).kind, SqlErrorKind::Other);
        assert_eq!(SqlError::corrupt(2, "bad").to_string(), "column #2: bad");
    }
}
