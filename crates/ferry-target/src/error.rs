//! The target layer's errors: a target that cannot be reached (try again later), one that
//! refused what it was sent, bad settings, or an answer ferry cannot read. Driver errors arrive
//! already sorted by `ferry-sql`.

use ferry_sql::{SqlError, SqlErrorKind};

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

impl From<SqlError> for TargetError {
    fn from(e: SqlError) -> Self {
        match e.kind {
            SqlErrorKind::Unavailable => TargetError::Unreachable(e.message),
            SqlErrorKind::Rejected | SqlErrorKind::UniqueViolation => TargetError::Rejected(e.message),
            SqlErrorKind::Configuration => TargetError::Config(e.message),
            SqlErrorKind::Corrupt | SqlErrorKind::Other => TargetError::Unexpected(e.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_errors_keep_the_message() {
        let e = ApplyError::from(TargetError::Rejected("value too long".into()));
        assert_eq!(e.to_string(), "value too long");
        let e = ApplyError::from(TargetError::Unreachable("gone".into()));
        assert!(matches!(e, ApplyError::Unreachable(m) if m == "gone"));
    }
}
