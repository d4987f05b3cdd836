//! The MySQL and MariaDB driver binding: GUIDs as `char(36)` text, exact decimals as text,
//! times as UTC `datetime(6)`; decoded back the same way.

use crate::args::{Arg, Args};
use crate::dialect::ColType;
use crate::error::SqlError;
use chrono::{NaiveDate, NaiveDateTime};
use ferry_model::{Decimal, Value};
use sqlx::mysql::{MySqlArguments, MySqlConnection, MySqlRow};
use sqlx::{Arguments, AssertSqlSafe, Row};
use uuid::Uuid;

pub(crate) async fn execute(conn: &mut MySqlConnection, sql: &str, args: Args) -> Result<u64, SqlError> {
    let result = sqlx::query_with(AssertSqlSafe(sql), bind(args)?).execute(conn).await?;
    Ok(result.rows_affected())
}

pub(crate) async fn fetch(
    conn: &mut MySqlConnection,
    sql: &str,
    args: Args,
    cols: &[ColType],
) -> Result<Vec<Vec<Value>>, SqlError> {
    let rows = sqlx::query_with(AssertSqlSafe(sql), bind(args)?).fetch_all(conn).await?;
    rows.iter().map(|row| cols.iter().enumerate().map(|(i, &c)| decode(row, i, c)).collect()).collect()
}

fn bind(args: Args) -> Result<MySqlArguments, SqlError> {
    let mut out = MySqlArguments::default();
    for arg in args.0 {
        let value = match arg {
            Arg::Value(value, _) => value,
            Arg::Column(..) => return Err(SqlError::other("array parameters need PostgreSQL")),
        };
        let result = match value {
            Value::Null => out.add(None::<String>),
            Value::String(s) => out.add(s),
            Value::Int(i) => out.add(i),
            Value::Decimal(d) => out.add(d.as_str().to_owned()),
            Value::Real(r) => out.add(r),
            Value::Bool(b) => out.add(b),
            Value::Date(d) => out.add(d),
            Value::DateTime(t) => out.add(t),
            Value::Guid(g) => out.add(g.hyphenated().to_string()),
        };
        result.map_err(|e| SqlError::from(sqlx::Error::Encode(e)))?;
    }
    Ok(out)
}

fn decode(row: &MySqlRow, i: usize, col: ColType) -> Result<Value, SqlError> {
    let text = |row: &MySqlRow| row.try_get::<Option<String>, _>(i);
    Ok(match col {
        ColType::Text => text(row)?.map_or(Value::Null, Value::String),
        ColType::Int32 | ColType::Int64 => row.try_get::<Option<i64>, _>(i)?.map_or(Value::Null, Value::Int),
        ColType::Real => row.try_get::<Option<f64>, _>(i)?.map_or(Value::Null, Value::Real),
        ColType::Bool => row.try_get::<Option<bool>, _>(i)?.map_or(Value::Null, Value::Bool),
        ColType::Decimal => text(row)?.map_or(Value::Null, |s| Value::Decimal(Decimal::from_canonical(s))),
        ColType::Date => row.try_get::<Option<NaiveDate>, _>(i)?.map_or(Value::Null, Value::Date),
        ColType::DateTime => {
            row.try_get::<Option<NaiveDateTime>, _>(i)?.map_or(Value::Null, |t| Value::DateTime(t.and_utc()))
        }
        ColType::Guid => match text(row)? {
            None => Value::Null,
            Some(s) => Value::Guid(Uuid::parse_str(&s).map_err(|e| SqlError::corrupt(i, e))?),
        },
    })
}
