//! Reading decoded result rows positionally, with a clear error when a column has an
//! unexpected shape.

use crate::error::SqlError;
use chrono::{DateTime, Utc};
use ferry_model::Value;
use uuid::Uuid;

/// Typed access to the columns of a decoded row.
pub trait RowExt {
    fn text(&self, i: usize) -> Result<String, SqlError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, SqlError>;
    fn int(&self, i: usize) -> Result<i64, SqlError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, SqlError>;
    fn real(&self, i: usize) -> Result<f64, SqlError>;
    fn boolean(&self, i: usize) -> Result<bool, SqlError>;
    fn guid(&self, i: usize) -> Result<Uuid, SqlError>;
    fn datetime(&self, i: usize) -> Result<DateTime<Utc>, SqlError>;
    fn opt_datetime(&self, i: usize) -> Result<Option<DateTime<Utc>>, SqlError>;
}

fn unexpected(i: usize, found: &Value, wanted: &str) -> SqlError {
    SqlError::corrupt(i, format!("expected {wanted}, found {}", found.describe()))
}

impl RowExt for [Value] {
    fn text(&self, i: usize) -> Result<String, SqlError> {
        self.opt_text(i)?.ok_or_else(|| unexpected(i, &Value::Null, "text"))
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, SqlError> {
        match &self[i] {
            Value::String(s) => Ok(Some(s.clone())),
            Value::Null => Ok(None),
            other => Err(unexpected(i, other, "text")),
        }
    }
    fn int(&self, i: usize) -> Result<i64, SqlError> {
        self.opt_int(i)?.ok_or_else(|| unexpected(i, &Value::Null, "an integer"))
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, SqlError> {
        match &self[i] {
            Value::Int(v) => Ok(Some(*v)),
            Value::Null => Ok(None),
            other => Err(unexpected(i, other, "an integer")),
        }
    }
    fn real(&self, i: usize) -> Result<f64, SqlError> {
        match &self[i] {
            Value::Real(f) => Ok(*f),
            Value::Int(n) => Ok(*n as f64),
            other => Err(unexpected(i, other, "a number")),
        }
    }
    fn boolean(&self, i: usize) -> Result<bool, SqlError> {
        match &self[i] {
            Value::Bool(b) => Ok(*b),
            other => Err(unexpected(i, other, "a boolean")),
        }
    }
    fn guid(&self, i: usize) -> Result<Uuid, SqlError> {
        match &self[i] {
            Value::Guid(g) => Ok(*g),
            other => Err(unexpected(i, other, "a GUID")),
        }
    }
    fn datetime(&self, i: usize) -> Result<DateTime<Utc>, SqlError> {
        self.opt_datetime(i)?.ok_or_else(|| unexpected(i, &Value::Null, "a timestamp"))
    }
    fn opt_datetime(&self, i: usize) -> Result<Option<DateTime<Utc>>, SqlError> {
        match &self[i] {
            Value::DateTime(t) => Ok(Some(*t)),
            Value::Null => Ok(None),
            other => Err(unexpected(i, other, "a timestamp")),
        }
    }
}
