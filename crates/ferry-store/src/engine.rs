//! The seam between SQL text and the two database drivers: a connection that executes SQL with
//! [`Value`] arguments and decodes columns by [`ColType`]. SQL is written once with `$n`
//! placeholders; each backend binds and decodes values its own way.

use crate::error::{StoreError, StoreResult};
use ferry_model::{FieldType, Value};
use std::future::Future;

/// Which SQL dialect a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// How to decode one result column into a [`Value`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ColType {
    Text,
    Int32,
    Int64,
    Real,
    Bool,
    Decimal,
    Date,
    DateTime,
    Guid,
}

impl ColType {
    pub(crate) fn of(ty: &FieldType) -> ColType {
        match ty {
            FieldType::String { .. } => ColType::Text,
            FieldType::Int | FieldType::Enum(_) => ColType::Int32,
            FieldType::Int64 => ColType::Int64,
            FieldType::Decimal { .. } => ColType::Decimal,
            FieldType::Real => ColType::Real,
            FieldType::Bool => ColType::Bool,
            FieldType::Date => ColType::Date,
            FieldType::DateTime => ColType::DateTime,
            FieldType::Guid => ColType::Guid,
        }
    }
}

/// A database connection (or transaction) the store's operations run on.
pub(crate) trait Conn: Send {
    fn dialect(&self) -> Dialect;

    /// Runs a statement; answers the number of rows affected.
    fn execute(&mut self, sql: &str, args: Vec<Value>) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Runs a query and decodes each row's columns by `cols` (one entry per selected column).
    fn fetch(
        &mut self,
        sql: &str,
        args: Vec<Value>,
        cols: &[ColType],
    ) -> impl Future<Output = StoreResult<Vec<Vec<Value>>>> + Send;

    /// PostgreSQL only: runs a query whose parameters are whole columns, each bound as one typed
    /// array (for `UNNEST`), so a batch of any size is one statement with a constant text.
    fn fetch_columns(
        &mut self,
        sql: &str,
        columns: Vec<(ColType, Vec<Value>)>,
        cols: &[ColType],
    ) -> impl Future<Output = StoreResult<Vec<Vec<Value>>>> + Send {
        let _ = (sql, columns, cols);
        async { Err(StoreError::Corrupt { column: "-".into(), message: "array parameters need PostgreSQL".into() }) }
    }
}

impl ColType {
    /// The PostgreSQL array type a column of this type is bound as (see [`Conn::fetch_columns`]).
    pub(crate) fn pg_array(self) -> &'static str {
        match self {
            ColType::Text => "text[]",
            ColType::Int32 | ColType::Int64 => "bigint[]",
            ColType::Real => "float8[]",
            ColType::Bool => "bool[]",
            ColType::Decimal => "numeric[]",
            ColType::Date => "date[]",
            ColType::DateTime => "timestamptz[]",
            ColType::Guid => "uuid[]",
        }
    }
}

pub(crate) fn corrupt(column: usize, message: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { column: format!("#{column}"), message: message.to_string() }
}

/// Helpers for reading decoded rows positionally.
pub(crate) trait RowExt {
    fn text(&self, i: usize) -> StoreResult<String>;
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>>;
    fn int(&self, i: usize) -> StoreResult<i64>;
    fn guid(&self, i: usize) -> StoreResult<uuid::Uuid>;
    fn datetime(&self, i: usize) -> StoreResult<chrono::DateTime<chrono::Utc>>;
    fn opt_datetime(&self, i: usize) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>>;
    fn boolean(&self, i: usize) -> StoreResult<bool>;
}

impl RowExt for [Value] {
    fn text(&self, i: usize) -> StoreResult<String> {
        self.opt_text(i)?.ok_or_else(|| corrupt(i, "unexpected null"))
    }
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        match &self[i] {
            Value::String(s) => Ok(Some(s.clone())),
            Value::Null => Ok(None),
            other => Err(corrupt(i, format!("expected text, found {other:?}"))),
        }
    }
    fn int(&self, i: usize) -> StoreResult<i64> {
        match &self[i] {
            Value::Int(v) => Ok(*v),
            other => Err(corrupt(i, format!("expected integer, found {other:?}"))),
        }
    }
    fn guid(&self, i: usize) -> StoreResult<uuid::Uuid> {
        match &self[i] {
            Value::Guid(v) => Ok(*v),
            other => Err(corrupt(i, format!("expected guid, found {other:?}"))),
        }
    }
    fn datetime(&self, i: usize) -> StoreResult<chrono::DateTime<chrono::Utc>> {
        self.opt_datetime(i)?.ok_or_else(|| corrupt(i, "unexpected null"))
    }
    fn opt_datetime(&self, i: usize) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        match &self[i] {
            Value::DateTime(v) => Ok(Some(*v)),
            Value::Null => Ok(None),
            other => Err(corrupt(i, format!("expected timestamp, found {other:?}"))),
        }
    }
    fn boolean(&self, i: usize) -> StoreResult<bool> {
        match &self[i] {
            Value::Bool(v) => Ok(*v),
            other => Err(corrupt(i, format!("expected boolean, found {other:?}"))),
        }
    }
}
