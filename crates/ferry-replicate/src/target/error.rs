//! The target layer's errors, and the one place where driver errors are sorted into
//! "unreachable, try again later" and "the target refused this".

use sqlx::error::DatabaseError;

/// What went wrong talking to a target database.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The target cannot be reached, dropped the connection, or is busy; retrying may succeed.
    #[error("target unreachable: {0}")]
    Unreachable(String),
    /// The target refused a statement (permissions, constraints, sizes); the text is the
    /// database's own message, safe to log and show.
    #[error("target refused: {0}")]
    Rejected(String),
    /// The target settings cannot be used (bad connection string, schema, prefix).
    #[error("invalid target settings: {0}")]
    Config(String),
    /// The target answered something ferry cannot read (a bug or a hand-edited table).
    #[error("unexpected answer from the target: {0}")]
    Unexpected(String),
}

impl TargetError {
    /// Whether the operation may succeed if retried later.
    pub fn is_transient(&self) -> bool {
        matches!(self, TargetError::Unreachable(_))
    }
}

/// Why a batch was not applied. Nothing of the batch (nor its checkpoint) was written.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("target unreachable: {0}")]
    Unreachable(String),
    /// The target refused the data (too long, constraint…): message safe to log and show.
    #[error("{0}")]
    Rejected(String),
}

impl From<TargetError> for ApplyError {
    fn from(e: TargetError) -> Self {
        match e {
            TargetError::Unreachable(m) => ApplyError::Unreachable(m),
            TargetError::Rejected(m) => ApplyError::Rejected(m),
            other => ApplyError::Rejected(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for TargetError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &e {
            E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed | E::Protocol(_) => {
                TargetError::Unreachable(e.to_string())
            }
            E::Database(db) if is_transient(db.as_ref()) => TargetError::Unreachable(db.message().to_string()),
            E::Database(db) => TargetError::Rejected(db.message().to_string()),
            E::Configuration(_) => TargetError::Config(e.to_string()),
            _ => TargetError::Unexpected(e.to_string()),
        }
    }
}

/// Lost connections, shutdowns, too many connections, lock timeouts and deadlocks, busy
/// SQLite files: failures of the moment, not of the data.
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
    fn io_and_pool_failures_are_unreachable() {
        let io = sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"));
        assert!(TargetError::from(io).is_transient());
        assert!(TargetError::from(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!TargetError::from(sqlx::Error::RowNotFound).is_transient());
    }

    #[test]
    fn apply_errors_keep_the_message() {
        let e = ApplyError::from(TargetError::Rejected("value too long".into()));
        assert_eq!(e.to_string(), "value too long");
        let e = ApplyError::from(TargetError::Unreachable("gone".into()));
        assert!(matches!(e, ApplyError::Unreachable(m) if m == "gone"));
    }
}
