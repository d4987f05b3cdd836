//! The PostgreSQL backend: one pool, native types (uuid, timestamptz, numeric, date), and a
//! transaction-scoped advisory lock to serialise schema changes between nodes.

use crate::engine::{ColType, Conn, Dialect};
use crate::error::{StoreError, StoreResult};
use chrono::{DateTime, NaiveDate, Utc};
use ferry_model::{Decimal, Value};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Arguments, AssertSqlSafe, Row};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

pub(crate) struct PgBackend {
    pub(crate) pool: PgPool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PgBackend {
    pub(crate) async fn open(url: &str, max_connections: u32) -> StoreResult<PgBackend> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::BadUrl(format!("{}: {e}", redact_url(url))))?
            .application_name("ferry");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(PgBackend { pool })
    }

    pub(crate) async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }
}

/// Hides the password of a database URL for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A NULL parameter of no declared type: PostgreSQL infers its type from where it is used
/// (a typed NULL would clash with columns of other types).
struct UntypedNull;

impl sqlx::Type<sqlx::Postgres> for UntypedNull {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        sqlx::postgres::PgTypeInfo::with_oid(sqlx::postgres::types::Oid(0))
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for UntypedNull {
    fn encode_by_ref(
        &self,
        _buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        Ok(sqlx::encode::IsNull::Yes)
    }
}

fn bind(args: &mut PgArguments, value: Value) -> StoreResult<()> {
    let result = match value {
        Value::Null => args.add(UntypedNull),
        Value::String(s) => args.add(s),
        Value::Int(i) => args.add(i),
        // Bound as text and cast to numeric in the SQL, so no precision is lost.
        Value::Decimal(d) => args.add(d.as_str().to_string()),
        Value::Real(r) => args.add(r),
        Value::Bool(b) => args.add(b),
        Value::Date(d) => args.add(d),
        Value::DateTime(t) => args.add(t),
        Value::Guid(g) => args.add(g),
    };
    result.map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))
}

fn decode(row: &PgRow, i: usize, col: ColType) -> StoreResult<Value> {
    Ok(match col {
        ColType::Text => row.try_get::<Option<String>, _>(i)?.map_or(Value::Null, Value::String),
        ColType::Int32 => row.try_get::<Option<i32>, _>(i)?.map_or(Value::Null, |v| Value::Int(v.into())),
        ColType::Int64 => row.try_get::<Option<i64>, _>(i)?.map_or(Value::Null, Value::Int),
        ColType::Real => row.try_get::<Option<f64>, _>(i)?.map_or(Value::Null, Value::Real),
        ColType::Bool => row.try_get::<Option<bool>, _>(i)?.map_or(Value::Null, Value::Bool),
        // Selected as text (see `select_column`), already canonical but for trailing zeros.
        ColType::Decimal => row
            .try_get::<Option<String>, _>(i)?
            .map_or(Value::Null, |s| Value::Decimal(Decimal::from_canonical(canonical_numeric(&s)))),
        ColType::Date => row.try_get::<Option<NaiveDate>, _>(i)?.map_or(Value::Null, Value::Date),
        ColType::DateTime => row.try_get::<Option<DateTime<Utc>>, _>(i)?.map_or(Value::Null, Value::DateTime),
        ColType::Guid => row.try_get::<Option<Uuid>, _>(i)?.map_or(Value::Null, Value::Guid),
    })
}

/// PostgreSQL prints numeric(p,s) with `s` fraction digits (`12.500000`); ferry's canonical
/// form has no trailing zeros.
fn canonical_numeric(text: &str) -> String {
    if !text.contains('.') {
        return text.to_string();
    }
    let trimmed = text.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" { "0".into() } else { trimmed.to_string() }
}

/// A statement run with an untyped NULL gets its parameter types inferred by PostgreSQL
/// (`integer` for an int column), which would clash with the `bigint` a cached statement is
/// later run with. Such statements are therefore not cached.
fn cacheable(args: &[Value]) -> bool {
    !args.iter().any(Value::is_null)
}

impl Conn for PgConnection {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn execute(&mut self, sql: &str, args: Vec<Value>) -> StoreResult<u64> {
        let persistent = cacheable(&args);
        let mut arguments = PgArguments::default();
        for value in args {
            bind(&mut arguments, value)?;
        }
        let result = sqlx::query_with(AssertSqlSafe(sql), arguments).persistent(persistent).execute(&mut *self).await?;
        Ok(result.rows_affected())
    }

    async fn fetch(&mut self, sql: &str, args: Vec<Value>, cols: &[ColType]) -> StoreResult<Vec<Vec<Value>>> {
        let persistent = cacheable(&args);
        let mut arguments = PgArguments::default();
        for value in args {
            bind(&mut arguments, value)?;
        }
        let rows = sqlx::query_with(AssertSqlSafe(sql), arguments).persistent(persistent).fetch_all(&mut *self).await?;
        rows.iter().map(|row| cols.iter().enumerate().map(|(i, &c)| decode(row, i, c)).collect()).collect()
    }

    async fn fetch_columns(
        &mut self,
        sql: &str,
        columns: Vec<(ColType, Vec<Value>)>,
        cols: &[ColType],
    ) -> StoreResult<Vec<Vec<Value>>> {
        let mut arguments = PgArguments::default();
        for (col, values) in columns {
            bind_column(&mut arguments, col, values)?;
        }
        // Typed arrays: the statement's text and parameter types never vary, so it is cached.
        let rows = sqlx::query_with(AssertSqlSafe(sql), arguments).fetch_all(&mut *self).await?;
        rows.iter().map(|row| cols.iter().enumerate().map(|(i, &c)| decode(row, i, c)).collect()).collect()
    }
}

/// Binds one column of values as a typed array.
fn bind_column(args: &mut PgArguments, col: ColType, values: Vec<Value>) -> StoreResult<()> {
    fn text(v: Value) -> Option<String> {
        match v {
            Value::Decimal(d) => Some(d.as_str().to_string()),
            other => other.to_text(),
        }
    }
    let result = match col {
        ColType::Text | ColType::Decimal => args.add(values.into_iter().map(text).collect::<Vec<_>>()),
        ColType::Int32 | ColType::Int64 => args.add(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Int(i) => Some(i),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        ColType::Real => args.add(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Real(r) => Some(r),
                    Value::Int(i) => Some(i as f64),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        ColType::Bool => args.add(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Bool(b) => Some(b),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        ColType::Date => args.add(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Date(d) => Some(d),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        ColType::DateTime => args.add(
            values
                .into_iter()
                .map(|v| match v {
                    Value::DateTime(t) => Some(t),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        ColType::Guid => args.add(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Guid(g) => Some(g),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
    };
    result.map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))
}

/// Re-broadcasts `ferry_changes` notifications of every node to this process's listeners,
/// reconnecting after errors.
/// Bumps `sender` on every notification on `channel` (reconnecting when the connection drops).
pub(crate) async fn listen_for(pool: PgPool, channel: &'static str, sender: tokio::sync::watch::Sender<u64>) {
    loop {
        if pool.is_closed() {
            return;
        }
        match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(channel).await {
                    tracing::warn!(error = %e, "cannot listen for changes");
                } else {
                    loop {
                        match listener.recv().await {
                            Ok(_) => sender.send_modify(|n| *n = n.wrapping_add(1)),
                            Err(_) if pool.is_closed() => return,
                            Err(e) => {
                                tracing::warn!(error = %e, "change listener lost its connection");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot connect the change listener"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_text_is_made_canonical() {
        assert_eq!(canonical_numeric("12.500000"), "12.5");
        assert_eq!(canonical_numeric("12.000000"), "12");
        assert_eq!(canonical_numeric("-0.000"), "0");
        assert_eq!(canonical_numeric("100"), "100");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}
