//! [`SqliteDirect`]: statements prepared once and stepped straight on a SQLite connection
//! through rusqlite, for the writes and key reads of many rows (an import batch) — SQLite's bulk
//! path, as `COPY` is PostgreSQL's ([`crate::Conn::sqlite_direct`]).
//!
//! sqlx runs each SQLite statement on its connection's worker thread: a multi-row statement's
//! text is built, every value cloned into its arguments, handed to the worker, bound, and freed
//! across threads — for a batch of thousands of rows more work than SQLite's own. Here the
//! connection's handle is taken from the worker for the length of the work (sqlx's
//! `lock_handle`: the same connection, in the same transaction), and a one-row statement is
//! stepped once per row with each value bound by reference from where it lies.
//!
//! Values are bound and decoded in the same canonical forms as the sqlx binding (`sqlite.rs`,
//! [`Stored`]), so either reads what the other wrote; [`crate::SqliteReader`] binds and decodes
//! with the functions here.

use crate::conn::Deferred;
use crate::dialect::ColType;
use crate::error::{SqlError, SqlErrorKind};
use crate::sqlite::{Stored, from_text, placeholders};
use ferry_model::Value;
use rusqlite::types::{Null, ValueRef};
use sqlx::sqlite::SqliteConnection;

/// A SQLite connection lent for direct statements ([`crate::Conn::sqlite_direct`]).
pub struct SqliteDirect {
    db: rusqlite::Connection,
}

impl std::fmt::Debug for SqliteDirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDirect").finish_non_exhaustive()
    }
}

impl SqliteDirect {
    /// Prepares one statement (`$n` or `?` placeholders), to be stepped any number of times.
    pub fn prepare(&self, sql: &str) -> Result<SqliteStatement<'_>, SqlError> {
        Ok(SqliteStatement { inner: self.db.prepare(&placeholders(sql)).map_err(error)?, bound: 0 })
    }
}

/// A prepared statement: bind every parameter in order, then [`SqliteStatement::execute`] or
/// [`SqliteStatement::query`]; the next use binds them all again.
pub struct SqliteStatement<'d> {
    inner: rusqlite::Statement<'d>,
    /// Parameters bound since the last step.
    bound: usize,
}

impl std::fmt::Debug for SqliteStatement<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStatement").field("bound", &self.bound).finish_non_exhaustive()
    }
}

impl SqliteStatement<'_> {
    /// Binds `value` to the next parameter.
    pub fn bind(&mut self, value: &Value) -> Result<&mut Self, SqlError> {
        self.bound += 1;
        bind_value(&mut self.inner, self.bound, value).map_err(error)?;
        Ok(self)
    }

    /// Binds a value converted beforehand ([`SqliteValue`]) to the next parameter.
    pub fn bind_stored(&mut self, value: &SqliteValue) -> Result<&mut Self, SqlError> {
        self.bound += 1;
        bind_stored(&mut self.inner, self.bound, &value.0).map_err(error)?;
        Ok(self)
    }

    /// Binds text to the next parameter.
    pub fn bind_text(&mut self, text: &str) -> Result<&mut Self, SqlError> {
        self.bound += 1;
        self.inner.raw_bind_parameter(self.bound, text).map_err(error)?;
        Ok(self)
    }

    /// Steps the statement to its end; answers the rows it changed.
    pub fn execute(&mut self) -> Result<u64, SqlError> {
        self.start()?;
        Ok(self.inner.raw_execute().map_err(error)? as u64)
    }

    /// Steps the query, handing each row to `each`, decoded by `cols`.
    pub fn query(
        &mut self,
        cols: &[ColType],
        mut each: impl FnMut(Vec<Value>) -> Result<(), SqlError>,
    ) -> Result<(), SqlError> {
        self.start()?;
        let mut rows = self.inner.raw_query();
        while let Some(row) = rows.next().map_err(error)? {
            let mut values = Vec::with_capacity(cols.len());
            for (i, &col) in cols.iter().enumerate() {
                values.push(decode(row.get_ref(i).map_err(error)?, i, col)?);
            }
            each(values)?;
        }
        Ok(())
    }

    /// Steps the query and answers its first row, decoded by `cols` (`None` when it has none).
    pub fn query_one(&mut self, cols: &[ColType]) -> Result<Option<Vec<Value>>, SqlError> {
        let mut first = None;
        self.query(cols, |row| {
            first.get_or_insert(row);
            Ok(())
        })?;
        Ok(first)
    }

    /// Checks that every parameter was bound since the last step (a missing one would keep the
    /// previous row's value), and starts counting again.
    fn start(&mut self) -> Result<(), SqlError> {
        let (bound, expected) = (std::mem::take(&mut self.bound), self.inner.parameter_count());
        if bound != expected {
            return Err(SqlError::other(format!("{bound} parameters bound where the statement has {expected}")));
        }
        Ok(())
    }
}

/// Runs `work` on `conn`'s own handle: the sqlx worker waits meanwhile. A statement deferred in
/// front of the next one ([`crate::Conn::execute_deferred`]) runs first. The work blocks this
/// thread (on a multi-threaded runtime its other tasks move to another thread meanwhile).
pub(crate) async fn run<T, E: From<SqlError>>(
    conn: &mut SqliteConnection,
    deferred: &mut Deferred,
    work: impl FnOnce(&SqliteDirect) -> Result<T, E>,
) -> Result<T, E> {
    let mut handle = conn.lock_handle().await.map_err(SqlError::from)?;
    let raw = handle.as_raw_handle();
    blocking(move || {
        // SAFETY: `handle` keeps sqlx's worker from touching the connection or its statements
        // until it is dropped, after this closure returns; the rusqlite connection does not own
        // the handle (it never closes it), and it and every statement prepared on it are dropped
        // before the closure returns (`work` borrows it, so nothing it answers can hold on to
        // it). rusqlite and sqlx link the same `libsqlite3-sys`: a mismatch would not compile.
        #[allow(unsafe_code)]
        let db = unsafe { rusqlite::Connection::from_handle(raw.as_ptr()) }.map_err(error)?;
        let direct = SqliteDirect { db };
        if let Deferred::Pending(sql) = *deferred {
            let ran = direct.db.execute_batch(sql);
            *deferred = if ran.is_ok() { Deferred::Ran } else { Deferred::None };
            ran.map_err(error)?;
        }
        work(&direct)
    })
}

/// Runs `f` on this thread, telling a multi-threaded runtime to move its other tasks away first.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// A value in the form SQLite stores it, converted once to be bound many times (a timestamp
/// every row of a batch carries).
#[derive(Debug)]
pub struct SqliteValue(Stored<'static>);

impl SqliteValue {
    pub fn of(value: &Value) -> SqliteValue {
        SqliteValue(Stored::of(value).into_owned())
    }
}

/// Binds `value`, in its stored form, to parameter `index` (from 1).
pub(crate) fn bind_value(statement: &mut rusqlite::Statement<'_>, index: usize, value: &Value) -> rusqlite::Result<()> {
    bind_stored(statement, index, &Stored::of(value))
}

fn bind_stored(statement: &mut rusqlite::Statement<'_>, index: usize, stored: &Stored<'_>) -> rusqlite::Result<()> {
    match stored {
        Stored::Null => statement.raw_bind_parameter(index, Null),
        Stored::Int(v) => statement.raw_bind_parameter(index, v),
        Stored::Real(v) => statement.raw_bind_parameter(index, v),
        Stored::Text(v) => statement.raw_bind_parameter(index, &**v),
    }
}

/// Column `i` of type `col` from the value SQLite stored.
pub(crate) fn decode(stored: ValueRef<'_>, i: usize, col: ColType) -> Result<Value, SqlError> {
    Ok(match (stored, col) {
        (ValueRef::Null, _) => Value::Null,
        (ValueRef::Integer(v), ColType::Int32 | ColType::Int64) => Value::Int(v),
        (ValueRef::Integer(v), ColType::Bool) => Value::Bool(v != 0),
        (ValueRef::Integer(v), ColType::Real) => Value::Real(v as f64),
        (ValueRef::Real(v), ColType::Real) => Value::Real(v),
        (ValueRef::Text(bytes), _) => {
            let text = std::str::from_utf8(bytes).map_err(|e| SqlError::corrupt(i, e))?;
            from_text(i, col, text.to_owned())?
        }
        (other, _) => {
            return Err(SqlError::corrupt(i, format!("{:?} where a {col:?} was expected", other.data_type())));
        }
    })
}

/// A SQLite failure sorted like the sqlx binding's: a busy or locked file is of the moment, a
/// unique or primary key that exists is a unique violation.
pub(crate) fn error(e: rusqlite::Error) -> SqlError {
    use rusqlite::ffi::{SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE};
    let kind = match &e {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => SqlErrorKind::Unavailable,
            rusqlite::ErrorCode::CannotOpen => SqlErrorKind::Unavailable,
            _ if matches!(failure.extended_code, SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY) => {
                SqlErrorKind::UniqueViolation
            }
            _ => SqlErrorKind::Rejected,
        },
        _ => SqlErrorKind::Other,
    };
    let message = match &e {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        other => other.to_string(),
    };
    SqlError { kind, message, source: None }
}
