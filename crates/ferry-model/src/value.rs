//! The typed values held in entity rows.

use crate::decimal::Decimal;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

/// One field value. Which variant a field holds is decided by its [`crate::FieldType`]:
/// `Int` serves int, int64 and enum codes.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    String(String),
    Int(i64),
    Decimal(Decimal),
    Real(f64),
    Bool(bool),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    Guid(Uuid),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as plain text (strings as they are, dates and times in ISO form, decimals in
    /// canonical form), or `None` for null. Inverse of [`crate::FieldType::coerce`] with
    /// `Input::Text` for every type but enums, whose code is given.
    pub fn to_text(&self) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::String(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Decimal(d) => d.to_string(),
            Value::Real(r) => r.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Date(d) => d.format("%Y-%m-%d").to_string(),
            Value::DateTime(t) => format_datetime(t),
            Value::Guid(g) => g.to_string(),
        })
    }

    /// A short rendering for error messages (strings quoted, long values cut).
    pub fn describe(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::String(s) => {
                let cut: String = s.chars().take(60).collect();
                if cut.len() < s.len() { format!("'{cut}…'") } else { format!("'{s}'") }
            }
            Value::Int(i) => i.to_string(),
            Value::Decimal(d) => d.to_string(),
            Value::Real(r) => r.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Date(d) => d.to_string(),
            Value::DateTime(t) => format_datetime(t),
            Value::Guid(g) => g.to_string(),
        }
    }
}

/// The one textual form of a UTC timestamp ferry uses everywhere (sortable as text).
pub fn format_datetime(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}
