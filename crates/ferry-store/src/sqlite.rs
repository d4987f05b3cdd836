//! The SQLite backend: one writer connection (SQLite has a single writer; queueing writers in
//! the pool avoids SQLITE_BUSY), a small pool of readers, WAL and full fsync for durability.
//! Values that SQLite has no type for are stored as text in one canonical form.

use crate::engine::{ColType, Conn, Dialect, corrupt};
use crate::error::{StoreError, StoreResult};
use chrono::{DateTime, NaiveDate, Utc};
use ferry_model::{Decimal, Value, format_datetime};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Arguments, AssertSqlSafe, Row};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

pub(crate) struct SqliteBackend {
    pub(crate) writer: SqlitePool,
    pub(crate) readers: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqliteBackend {
    pub(crate) async fn open(url: &str) -> StoreResult<SqliteBackend> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::BadUrl(format!("{url}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(false)
            .pragma("cache_size", "-32000");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options.clone())
            .await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteBackend { writer, readers })
    }

    pub(crate) async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}

/// SQL is written with PostgreSQL's `$n`. When the placeholders appear as `$1, $2, …` in order,
/// each once (every generated statement), they become anonymous `?`: SQLite looks a *named*
/// parameter up by a linear search, which made a 30,000-parameter batch insert quadratic.
/// Otherwise they become SQLite's numbered `?n`.
fn sqlite_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut numbers = Vec::new();
    let mut chars = sql.char_indices().peekable();
    let mut in_string = false;
    while let Some((_, c)) = chars.next() {
        match c {
            '\'' => {
                in_string = !in_string;
                out.push(c);
            }
            '$' if !in_string && chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) => {
                let mut number = String::new();
                while let Some((_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
                    number.push(*d);
                    chars.next();
                }
                numbers.push(number.parse::<usize>().unwrap_or(0));
                out.push('?');
                out.push_str(&number);
            }
            _ => out.push(c),
        }
    }
    let sequential = numbers.iter().enumerate().all(|(i, &n)| n == i + 1);
    if sequential && !numbers.is_empty() {
        // Drop the numbers: `?12` → `?` (numbers are ascii digits right after each `?`).
        let mut plain = String::with_capacity(out.len());
        let mut chars = out.chars().peekable();
        let mut in_string = false;
        while let Some(c) = chars.next() {
            plain.push(c);
            match c {
                '\'' => in_string = !in_string,
                '?' if !in_string => {
                    while chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                        chars.next();
                    }
                }
                _ => {}
            }
        }
        return plain;
    }
    out
}

fn bind(args: &mut SqliteArguments, value: Value) -> StoreResult<()> {
    let result = match value {
        Value::Null => args.add(None::<String>),
        Value::String(s) => args.add(s),
        Value::Int(i) => args.add(i),
        Value::Decimal(d) => args.add(d.as_str().to_string()),
        Value::Real(r) => args.add(r),
        Value::Bool(b) => args.add(b),
        Value::Date(d) => args.add(d.format("%Y-%m-%d").to_string()),
        Value::DateTime(t) => args.add(format_datetime(&t)),
        Value::Guid(g) => args.add(g.hyphenated().to_string()),
    };
    result.map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))
}

fn decode(row: &SqliteRow, i: usize, col: ColType) -> StoreResult<Value> {
    let text = |row: &SqliteRow| row.try_get::<Option<String>, _>(i);
    Ok(match col {
        ColType::Text => text(row)?.map_or(Value::Null, Value::String),
        ColType::Int32 | ColType::Int64 => row.try_get::<Option<i64>, _>(i)?.map_or(Value::Null, Value::Int),
        ColType::Real => row.try_get::<Option<f64>, _>(i)?.map_or(Value::Null, Value::Real),
        ColType::Bool => row.try_get::<Option<bool>, _>(i)?.map_or(Value::Null, Value::Bool),
        ColType::Decimal => text(row)?.map_or(Value::Null, |s| Value::Decimal(Decimal::from_canonical(s))),
        ColType::Date => match text(row)? {
            None => Value::Null,
            Some(s) => Value::Date(NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|e| corrupt(i, e))?),
        },
        ColType::DateTime => match text(row)? {
            None => Value::Null,
            Some(s) => {
                Value::DateTime(DateTime::parse_from_rfc3339(&s).map_err(|e| corrupt(i, e))?.with_timezone(&Utc))
            }
        },
        ColType::Guid => match text(row)? {
            None => Value::Null,
            Some(s) => Value::Guid(Uuid::parse_str(&s).map_err(|e| corrupt(i, e))?),
        },
    })
}

impl Conn for SqliteConnection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn execute(&mut self, sql: &str, args: Vec<Value>) -> StoreResult<u64> {
        let mut arguments = SqliteArguments::default();
        for value in args {
            bind(&mut arguments, value)?;
        }
        let result = sqlx::query_with(AssertSqlSafe(sqlite_placeholders(sql)), arguments).execute(&mut *self).await?;
        Ok(result.rows_affected())
    }

    async fn fetch(&mut self, sql: &str, args: Vec<Value>, cols: &[ColType]) -> StoreResult<Vec<Vec<Value>>> {
        let mut arguments = SqliteArguments::default();
        for value in args {
            bind(&mut arguments, value)?;
        }
        let rows = sqlx::query_with(AssertSqlSafe(sqlite_placeholders(sql)), arguments).fetch_all(&mut *self).await?;
        rows.iter().map(|row| cols.iter().enumerate().map(|(i, &c)| decode(row, i, c)).collect()).collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rewrites_placeholders_outside_strings() {
        assert_eq!(super::sqlite_placeholders("a = $1 AND b = '$2' OR c = $10"), "a = ?1 AND b = '$2' OR c = ?10");
        assert_eq!(super::sqlite_placeholders("SET x = $2 WHERE y = $1"), "SET x = ?2 WHERE y = ?1");
        assert_eq!(super::sqlite_placeholders("VALUES ($1, '?', $2), ($3)"), "VALUES (?, '?', ?), (?)");
        assert_eq!(super::sqlite_placeholders("SELECT 1"), "SELECT 1");
    }
}
