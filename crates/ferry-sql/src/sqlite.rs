//! The SQLite driver binding. SQLite has no type for decimals, dates, times and GUIDs: they are
//! stored as text in one canonical form each (exact decimal text, `YYYY-MM-DD`, RFC 3339 UTC
//! with microseconds, hyphenated GUIDs), so equal values compare equal as text.

use crate::args::{Arg, Args};
use crate::conn::Deferred;
use crate::dialect::{ColType, rewrite_placeholders};
use crate::error::SqlError;
use chrono::{DateTime, NaiveDate, Utc};
use ferry_model::{Decimal, Value, format_date, format_datetime};
use futures::TryStreamExt as _;
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqliteRow};
use sqlx::{Arguments, AssertSqlSafe, Either, Executor as _, Row};
use std::borrow::Cow;
use std::fmt::Write as _;
use uuid::Uuid;

/// Runs `sql` — behind a pending deferred statement, in the same request — and answers the rows
/// it changed and, with `cols`, the rows it returned, each decoded as it arrives (the driver's
/// rows never pile up). The deferred statement ran if its own result came back, did not if the
/// request failed first, and counts as run if this future is dropped in flight: sqlx's worker
/// runs a received request's first statement whether or not anyone still listens.
pub(crate) async fn run(
    conn: &mut SqliteConnection,
    sql: &str,
    args: Args,
    deferred: &mut Deferred,
    cols: Option<&[ColType]>,
) -> Result<(u64, Vec<Vec<Value>>), SqlError> {
    let args = bind(args)?;
    let sql = placeholders(sql);
    // Taken only now: nothing can fail or be cancelled between here and the request's send.
    let (text, mut in_front) = match std::mem::take(deferred) {
        Deferred::Pending(first) => {
            *deferred = Deferred::Sent;
            (format!("{first};\n{sql}"), true)
        }
        other => {
            *deferred = other;
            (sql.into_owned(), false)
        }
    };
    let mut results = conn.fetch_many(sqlx::query_with(AssertSqlSafe(text), args));
    let (mut changed, mut rows) = (0, Vec::new());
    loop {
        let item = match results.try_next().await {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(e) => {
                if in_front {
                    *deferred = Deferred::None;
                }
                return Err(e.into());
            }
        };
        match item {
            // The deferred statement's own result ("changes" of a SAVEPOINT are the last DML's).
            Either::Left(_) if in_front => {
                in_front = false;
                *deferred = Deferred::Ran;
            }
            Either::Left(done) => changed += done.rows_affected(),
            Either::Right(row) => {
                if let Some(cols) = cols {
                    rows.push(cols.iter().enumerate().map(|(i, &c)| decode(&row, i, c)).collect::<Result<_, _>>()?);
                }
            }
        }
    }
    Ok((changed, rows))
}

/// Hand-written SQL shared with PostgreSQL uses `$n` placeholders. When they appear as
/// `$1, $2, …` in order, each once, they become anonymous `?` (SQLite looks a numbered
/// parameter up by a linear search, which made large batches quadratic); otherwise SQLite's
/// numbered `?n`. Text without `$` (built for SQLite already) is returned as it is.
pub(crate) fn placeholders(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    let mut numbers = Vec::new();
    let mut numbered = String::with_capacity(sql.len());
    rewrite_placeholders(sql, &mut numbered, |out, n| {
        numbers.push(n);
        let _ = write!(out, "?{n}");
        Ok(())
    })
    .expect("numbering cannot fail");
    let sequential = !numbers.is_empty() && numbers.iter().enumerate().all(|(i, &n)| n == i + 1);
    if !sequential {
        return Cow::Owned(numbered);
    }
    let mut plain = String::with_capacity(sql.len());
    rewrite_placeholders(sql, &mut plain, |out, _| {
        out.push('?');
        Ok(())
    })
    .expect("plain placeholders cannot fail");
    Cow::Owned(plain)
}

/// A value as SQLite stores it: ferry's types without a SQLite counterpart in their one
/// canonical text form.
#[derive(Debug)]
pub(crate) enum Stored<'v> {
    Null,
    Int(i64),
    Real(f64),
    Text(Cow<'v, str>),
}

impl Stored<'_> {
    /// The stored form of `value` (text borrowed where it is text already).
    pub(crate) fn of(value: &Value) -> Stored<'_> {
        match value {
            Value::Null => Stored::Null,
            Value::String(s) => Stored::Text(Cow::Borrowed(s)),
            Value::Int(i) => Stored::Int(*i),
            Value::Decimal(d) => Stored::Text(Cow::Borrowed(d.as_str())),
            Value::Real(r) => Stored::Real(*r),
            Value::Bool(b) => Stored::Int(i64::from(*b)),
            Value::Date(d) => Stored::Text(Cow::Owned(format_date(d))),
            Value::DateTime(t) => Stored::Text(Cow::Owned(format_datetime(t))),
            Value::Guid(g) => Stored::Text(Cow::Owned(g.hyphenated().to_string())),
        }
    }

    pub(crate) fn into_owned(self) -> Stored<'static> {
        match self {
            Stored::Null => Stored::Null,
            Stored::Int(i) => Stored::Int(i),
            Stored::Real(r) => Stored::Real(r),
            Stored::Text(s) => Stored::Text(Cow::Owned(s.into_owned())),
        }
    }

    /// The stored form of the parameter `arg` (whole-column arrays are PostgreSQL's).
    pub(crate) fn of_arg(arg: &Arg) -> Result<Stored<'_>, SqlError> {
        match arg {
            Arg::Value(value, _) => Ok(Stored::of(value)),
            Arg::Column(..) => Err(SqlError::other("array parameters need PostgreSQL")),
        }
    }
}

fn bind(args: Args) -> Result<SqliteArguments, SqlError> {
    let mut out = SqliteArguments::default();
    for arg in args.0 {
        let result = match arg {
            // Text moves into the arguments as it is.
            Arg::Value(Value::String(s), _) => out.add(s),
            arg => match Stored::of_arg(&arg)? {
                Stored::Null => out.add(None::<String>),
                Stored::Int(i) => out.add(i),
                Stored::Real(r) => out.add(r),
                Stored::Text(s) => out.add(s.into_owned()),
            },
        };
        result.map_err(|e| SqlError::from(sqlx::Error::Encode(e)))?;
    }
    Ok(out)
}

fn decode(row: &SqliteRow, i: usize, col: ColType) -> Result<Value, SqlError> {
    Ok(match col {
        ColType::Int32 | ColType::Int64 => row.try_get::<Option<i64>, _>(i)?.map_or(Value::Null, Value::Int),
        ColType::Real => row.try_get::<Option<f64>, _>(i)?.map_or(Value::Null, Value::Real),
        ColType::Bool => row.try_get::<Option<bool>, _>(i)?.map_or(Value::Null, Value::Bool),
        ColType::Text | ColType::Decimal | ColType::Date | ColType::DateTime | ColType::Guid => {
            match row.try_get::<Option<String>, _>(i)? {
                None => Value::Null,
                Some(s) => from_text(i, col, s)?,
            }
        }
    })
}

/// The value of column `i`, of type `col`, from its stored text.
pub(crate) fn from_text(i: usize, col: ColType, s: String) -> Result<Value, SqlError> {
    Ok(match col {
        ColType::Decimal => Value::Decimal(Decimal::from_canonical(s)),
        ColType::Date => Value::Date(NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|e| SqlError::corrupt(i, e))?),
        ColType::DateTime => {
            Value::DateTime(DateTime::parse_from_rfc3339(&s).map_err(|e| SqlError::corrupt(i, e))?.with_timezone(&Utc))
        }
        ColType::Guid => Value::Guid(Uuid::parse_str(&s).map_err(|e| SqlError::corrupt(i, e))?),
        ColType::Text => Value::String(s),
        ColType::Int32 | ColType::Int64 | ColType::Real | ColType::Bool => {
            return Err(SqlError::corrupt(i, format!("text where a {col:?} was expected")));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn rewrites_placeholders_outside_strings() {
        assert_eq!(placeholders("a = $1 AND b = '$2' OR c = $10"), "a = ?1 AND b = '$2' OR c = ?10");
        assert_eq!(placeholders("SET x = $2 WHERE y = $1"), "SET x = ?2 WHERE y = ?1");
        assert_eq!(placeholders("VALUES ($1, '?', $2), ($3)"), "VALUES (?, '?', ?), (?)");
        assert_eq!(placeholders("SELECT 1"), "SELECT 1");
        assert_eq!(placeholders("VALUES (?, ?)"), "VALUES (?, ?)");
    }
}
