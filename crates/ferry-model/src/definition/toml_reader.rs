//! Reads one table of a parsed definition file by hand: takes keys by name, checks the type of
//! each value, and turns every problem into a [`CatalogError`] that names the file, entity and
//! field, the key and the line. This is what keeps serde out of the crate.

use crate::catalog::CatalogError;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeInteger, DeTable, DeValue};

/// Where a table sits in the definitions, so that errors can say so.
#[derive(Clone)]
pub(super) struct Place<'a> {
    origin: &'a str,
    /// The whole file, to turn byte offsets into line numbers.
    text: &'a str,
    entity: Option<String>,
    field: Option<String>,
    /// What `CatalogError` has no slot for: an enum, or an entity or field without a name.
    label: Option<String>,
}

impl<'a> Place<'a> {
    pub(super) fn file(origin: &'a str, text: &'a str) -> Self {
        Place { origin, text, entity: None, field: None, label: None }
    }

    pub(super) fn entity(&self, name: String) -> Self {
        Place { entity: Some(name), ..self.clone() }
    }

    pub(super) fn field(&self, name: String) -> Self {
        Place { field: Some(name), ..self.clone() }
    }

    /// Adds to the label, e.g. "enum 'Color'" then "value 'Red'".
    pub(super) fn labelled(&self, label: String) -> Self {
        let label = match &self.label {
            Some(outer) => format!("{outer}, {label}"),
            None => label,
        };
        Place { label: Some(label), ..self.clone() }
    }

    pub(super) fn error(&self, span: Range<usize>, message: String) -> CatalogError {
        let end = span.start.min(self.text.len());
        let line = self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1;
        let label = self.label.as_ref().map(|label| format!("{label}: ")).unwrap_or_default();
        CatalogError {
            origin: self.origin.to_string(),
            entity: self.entity.clone(),
            field: self.field.clone(),
            message: format!("{label}{message} (line {line})"),
        }
    }
}

/// A field default as it may be written: a plain TOML value.
pub(super) enum Plain {
    Text(String),
    /// Spelled the way Rust prints the number (`0x10` becomes `16`, `1e3` becomes `1000`), since
    /// field types read decimal text.
    Number(String),
    Bool(bool),
}

/// The string under `key` in `table`, left in place: used to name a table before reading it.
pub(super) fn peek_string(table: &DeTable<'_>, key: &str) -> Option<String> {
    table.get(key).and_then(|value| value.get_ref().as_str()).map(str::to_string)
}

/// One table being read. Keys are taken out as they are read.
pub(super) struct Reader<'a> {
    table: DeTable<'a>,
    span: Range<usize>,
    place: Place<'a>,
}

impl<'a> Reader<'a> {
    /// Starts reading a table whose keys must all be among `keys`. An unknown key is reported
    /// before anything else, because a misspelt key is the likeliest cause of a missing one.
    pub(super) fn new(table: Spanned<DeTable<'a>>, keys: &[&str], place: Place<'a>) -> Result<Self, CatalogError> {
        let span = table.span();
        let table = table.into_inner();
        let unknown = table.keys().filter(|k| !keys.contains(&k.get_ref().as_ref())).min_by_key(|k| k.span().start);
        if let Some(key) = unknown {
            let message = format!("unknown key '{}': expected one of {}", key.get_ref(), keys.join(", "));
            return Err(place.error(key.span(), message));
        }
        Ok(Reader { table, span, place })
    }

    pub(super) fn place(&self) -> &Place<'a> {
        &self.place
    }

    pub(super) fn string(&mut self, key: &str) -> Result<String, CatalogError> {
        self.required(key, "a string", string)
    }

    pub(super) fn opt_string(&mut self, key: &str) -> Result<Option<String>, CatalogError> {
        self.take(key, "a string", string)
    }

    /// A boolean that is false when absent.
    pub(super) fn flag(&mut self, key: &str) -> Result<bool, CatalogError> {
        let flag = |value: Spanned<DeValue<'a>>| value.get_ref().as_bool();
        Ok(self.take(key, "true or false", flag)?.unwrap_or(false))
    }

    pub(super) fn integer(&mut self, key: &str) -> Result<i64, CatalogError> {
        self.required(key, "a 64-bit integer", |value| match value.into_inner() {
            DeValue::Integer(i) => integer(&i),
            _ => None,
        })
    }

    /// An array of strings that is empty when absent.
    pub(super) fn strings(&mut self, key: &str) -> Result<Vec<String>, CatalogError> {
        Ok(self.take(key, "an array of strings", |value| array(value, string))?.unwrap_or_default())
    }

    pub(super) fn tables(&mut self, key: &str) -> Result<Vec<Spanned<DeTable<'a>>>, CatalogError> {
        self.required(key, "an array of tables", |value| array(value, table))
    }

    /// An array of tables that is empty when absent.
    pub(super) fn opt_tables(&mut self, key: &str) -> Result<Vec<Spanned<DeTable<'a>>>, CatalogError> {
        Ok(self.take(key, "an array of tables", |value| array(value, table))?.unwrap_or_default())
    }

    pub(super) fn plain(&mut self, key: &str) -> Result<Option<Plain>, CatalogError> {
        self.take(key, "a string, a number, or true or false", |value| match value.into_inner() {
            DeValue::String(s) => Some(Plain::Text(s.into_owned())),
            DeValue::Boolean(b) => Some(Plain::Bool(b)),
            DeValue::Integer(i) => integer(&i).map(|i| Plain::Number(i.to_string())),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok().map(|f| Plain::Number(f.to_string())),
            DeValue::Datetime(_) | DeValue::Array(_) | DeValue::Table(_) => None,
        })
    }

    /// Takes `key` out of the table and converts its value; `None` if the table lacks it.
    fn take<T>(
        &mut self,
        key: &str,
        expected: &str,
        convert: impl FnOnce(Spanned<DeValue<'a>>) -> Option<T>,
    ) -> Result<Option<T>, CatalogError> {
        let Some(value) = self.table.remove(key) else { return Ok(None) };
        let span = value.span();
        match convert(value) {
            Some(converted) => Ok(Some(converted)),
            None => Err(self.place.error(span, format!("key '{key}' must be {expected}"))),
        }
    }

    fn required<T>(
        &mut self,
        key: &str,
        expected: &str,
        convert: impl FnOnce(Spanned<DeValue<'a>>) -> Option<T>,
    ) -> Result<T, CatalogError> {
        match self.take(key, expected, convert)? {
            Some(value) => Ok(value),
            None => Err(self.place.error(self.span.clone(), format!("missing key '{key}'"))),
        }
    }
}

fn string(value: Spanned<DeValue<'_>>) -> Option<String> {
    match value.into_inner() {
        DeValue::String(s) => Some(s.into_owned()),
        _ => None,
    }
}

/// `None` when the integer does not fit in 64 bits.
fn integer(i: &DeInteger<'_>) -> Option<i64> {
    i64::from_str_radix(i.as_str(), i.radix()).ok()
}

fn table<'a>(value: Spanned<DeValue<'a>>) -> Option<Spanned<DeTable<'a>>> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Table(table) => Some(Spanned::new(span, table)),
        _ => None,
    }
}

/// The items of an array, each converted by `item`; `None` if it is not an array or an item
/// does not convert.
fn array<'a, T>(value: Spanned<DeValue<'a>>, item: fn(Spanned<DeValue<'a>>) -> Option<T>) -> Option<Vec<T>> {
    match value.into_inner() {
        DeValue::Array(items) => items.into_iter().map(item).collect(),
        _ => None,
    }
}
