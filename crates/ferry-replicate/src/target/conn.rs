//! The seam between SQL text and the three drivers: a connection that runs SQL with
//! [`Value`] arguments and decodes a few column types, and [`Sql`], a builder that writes
//! placeholders in the dialect's syntax as values are bound. Values never enter SQL text.

use super::dialect::{ColumnDef, ColumnKind, Dialect};
use super::error::TargetError;
use ferry_model::Value;
use std::future::Future;
use uuid::Uuid;

/// How to decode one result column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ColType {
    Text,
    Int,
    Guid,
}

/// One bound argument, with the kind of column it is written to when known: a driver can then
/// give a NULL the column's type, so one statement text always binds the same types
/// (PostgreSQL caches a prepared statement's parameter types by its text).
#[derive(Clone, Debug)]
pub(crate) struct Arg {
    pub value: Value,
    pub kind: Option<ColumnKind>,
    /// A whole column of values bound as one array (PostgreSQL `UNNEST`); `value` is unused.
    pub column: Option<Vec<Value>>,
}

/// A target connection (or transaction). Each dialect module implements it for its driver.
pub(crate) trait Conn: Send {
    /// Runs a statement; answers the number of rows affected.
    fn execute(&mut self, sql: &str, args: Vec<Arg>) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;

    /// Runs a query and decodes each row's columns by `cols`.
    fn fetch(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
        cols: &[ColType],
    ) -> impl Future<Output = Result<Vec<Vec<Value>>, sqlx::Error>> + Send;
}

/// SQL text with its bound arguments, in one dialect.
pub(crate) struct Sql<'d> {
    d: &'d dyn Dialect,
    text: String,
    args: Vec<Arg>,
}

impl<'d> Sql<'d> {
    pub(crate) fn new(d: &'d dyn Dialect) -> Sql<'d> {
        Sql { d, text: String::new(), args: Vec::new() }
    }

    /// A statement written in the dialect's placeholder syntax by hand, with its arguments.
    pub(crate) fn query(d: &'d dyn Dialect, text: &str, args: Vec<Value>) -> Sql<'d> {
        Sql {
            d,
            text: text.to_string(),
            args: args.into_iter().map(|value| Arg { value, kind: None, column: None }).collect(),
        }
    }

    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// A quoted identifier.
    pub(crate) fn ident(&mut self, name: &str) -> &mut Self {
        let quoted = self.d.quote(name);
        self.push(&quoted)
    }

    /// A schema-qualified, quoted table name.
    pub(crate) fn table(&mut self, schema: &str, table: &str) -> &mut Self {
        let qualified = self.d.qualified(schema, table);
        self.push(&qualified)
    }

    fn bind_arg(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        let placeholder = self.d.placeholder(self.args.len());
        self.push(&placeholder)
    }

    /// A placeholder for `value` (never NULL here: use `bind_as` for column values).
    pub(crate) fn bind(&mut self, value: Value) -> &mut Self {
        self.bind_arg(Arg { value, kind: None, column: None })
    }

    /// A placeholder for a value of a column of `kind` (cast where the dialect needs it).
    pub(crate) fn bind_as(&mut self, value: Value, kind: &ColumnKind) -> &mut Self {
        self.bind_arg(Arg { value, kind: Some(kind.clone()), column: None });
        let cast = self.d.param_cast(kind);
        self.push(cast)
    }

    /// A placeholder for a whole column of values of `kind`, bound as one array (followed by
    /// the dialect's array cast).
    pub(crate) fn bind_column(&mut self, values: Vec<Value>, kind: &ColumnKind, cast: &str) -> &mut Self {
        self.bind_arg(Arg { value: Value::Null, kind: Some(kind.clone()), column: Some(values) });
        self.push(cast)
    }

    /// `("a", "b", …)`
    pub(crate) fn column_list(&mut self, columns: &[ColumnDef]) -> &mut Self {
        self.push("(");
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.ident(&c.name);
        }
        self.push(")")
    }

    /// `(p, p), (p, p)…` — one tuple per row, values typed by `columns`.
    pub(crate) fn values(&mut self, columns: &[ColumnDef], rows: Vec<Vec<Value>>) -> &mut Self {
        for (r, row) in rows.into_iter().enumerate() {
            self.push(if r == 0 { "(" } else { ", (" });
            for (i, (value, column)) in row.into_iter().zip(columns).enumerate() {
                if i > 0 {
                    self.push(", ");
                }
                self.bind_as(value, &column.kind);
            }
            self.push(")");
        }
        self
    }

    /// `a, b, c` of the placeholders for `values` (no casts).
    pub(crate) fn bind_list(&mut self, values: impl IntoIterator<Item = Value>) -> &mut Self {
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(value);
        }
        self
    }

    #[cfg(test)]
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) async fn execute<C: Conn>(self, conn: &mut C) -> Result<u64, TargetError> {
        Ok(conn.execute(&self.text, self.args).await?)
    }

    pub(crate) async fn fetch<C: Conn>(self, conn: &mut C, cols: &[ColType]) -> Result<Vec<Vec<Value>>, TargetError> {
        Ok(conn.fetch(&self.text, self.args, cols).await?)
    }
}

/// Runs a statement without arguments (DDL).
pub(crate) async fn run<C: Conn>(conn: &mut C, sql: &str) -> Result<u64, TargetError> {
    Ok(conn.execute(sql, Vec::new()).await?)
}

fn unexpected(i: usize, found: &Value, wanted: &str) -> TargetError {
    TargetError::Unexpected(format!("column #{i}: expected {wanted}, found {}", found.describe()))
}

/// Reading decoded rows positionally.
pub(crate) trait RowExt {
    fn text(&self, i: usize) -> Result<String, TargetError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, TargetError>;
    fn int(&self, i: usize) -> Result<i64, TargetError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, TargetError>;
    fn guid(&self, i: usize) -> Result<Uuid, TargetError>;
}

impl RowExt for [Value] {
    fn text(&self, i: usize) -> Result<String, TargetError> {
        self.opt_text(i)?.ok_or_else(|| unexpected(i, &Value::Null, "text"))
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, TargetError> {
        match &self[i] {
            Value::String(s) => Ok(Some(s.clone())),
            Value::Null => Ok(None),
            other => Err(unexpected(i, other, "text")),
        }
    }
    fn int(&self, i: usize) -> Result<i64, TargetError> {
        self.opt_int(i)?.ok_or_else(|| unexpected(i, &Value::Null, "an integer"))
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, TargetError> {
        match &self[i] {
            Value::Int(v) => Ok(Some(*v)),
            Value::Null => Ok(None),
            other => Err(unexpected(i, other, "an integer")),
        }
    }
    fn guid(&self, i: usize) -> Result<Uuid, TargetError> {
        match &self[i] {
            Value::Guid(v) => Ok(*v),
            other => Err(unexpected(i, other, "a GUID")),
        }
    }
}
