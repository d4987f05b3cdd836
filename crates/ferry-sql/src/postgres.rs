//! The PostgreSQL driver binding: values in their native types (uuid, timestamptz, date; exact
//! decimals as text the SQL casts), NULLs typed by their column when known, whole columns as
//! typed arrays; numerics decoded back to ferry's canonical decimal text.

use crate::args::{Arg, Args};
use crate::dialect::ColType;
use crate::error::SqlError;
use chrono::{DateTime, NaiveDate, Utc};
use ferry_model::{Decimal, Value};
use futures::TryStreamExt as _;
use sqlx::postgres::{PgArguments, PgConnection, PgRow};
use sqlx::{Arguments, AssertSqlSafe, Row};
use uuid::Uuid;

pub(crate) async fn execute(conn: &mut PgConnection, sql: &str, args: Args) -> Result<u64, SqlError> {
    let persistent = !args.has_untyped_null();
    let result = sqlx::query_with(AssertSqlSafe(sql), bind(args)?).persistent(persistent).execute(conn).await?;
    Ok(result.rows_affected())
}

pub(crate) async fn fetch(
    conn: &mut PgConnection,
    sql: &str,
    args: Args,
    cols: &[ColType],
) -> Result<Vec<Vec<Value>>, SqlError> {
    let persistent = !args.has_untyped_null();
    let mut rows = sqlx::query_with(AssertSqlSafe(sql), bind(args)?).persistent(persistent).fetch(conn);
    // Each row is decoded as it arrives, so the driver's rows never pile up.
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await? {
        out.push(cols.iter().enumerate().map(|(i, &c)| decode(&row, i, c)).collect::<Result<_, _>>()?);
    }
    Ok(out)
}

/// A NULL parameter of no declared type: PostgreSQL infers its type from where it is used.
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

fn bind(args: Args) -> Result<PgArguments, SqlError> {
    let mut out = PgArguments::default();
    for arg in args.0 {
        let result = match arg {
            Arg::Column(ty, values) => bind_column(&mut out, ty, values),
            Arg::Value(Value::Null, ty) => match ty {
                None => out.add(UntypedNull),
                Some(ColType::Text | ColType::Decimal) => out.add(None::<String>),
                Some(ColType::Int32 | ColType::Int64) => out.add(None::<i64>),
                Some(ColType::Real) => out.add(None::<f64>),
                Some(ColType::Bool) => out.add(None::<bool>),
                Some(ColType::Date) => out.add(None::<NaiveDate>),
                Some(ColType::DateTime) => out.add(None::<DateTime<Utc>>),
                Some(ColType::Guid) => out.add(None::<Uuid>),
            },
            Arg::Value(Value::String(s), _) => out.add(s),
            Arg::Value(Value::Int(i), _) => out.add(i),
            // Sent as text and cast to numeric in the SQL, so no digit is lost.
            Arg::Value(Value::Decimal(d), _) => out.add(d.as_str().to_owned()),
            Arg::Value(Value::Real(r), _) => out.add(r),
            Arg::Value(Value::Bool(b), _) => out.add(b),
            Arg::Value(Value::Date(d), _) => out.add(d),
            Arg::Value(Value::DateTime(t), _) => out.add(t),
            Arg::Value(Value::Guid(g), _) => out.add(g),
        };
        result.map_err(|e| SqlError::from(sqlx::Error::Encode(e)))?;
    }
    Ok(out)
}

/// Binds a whole column as a typed array, NULLs included; a value of another type than the
/// column's is sent as NULL (callers stage values by the column's type).
fn bind_column(out: &mut PgArguments, ty: ColType, values: Vec<Value>) -> Result<(), sqlx::error::BoxDynError> {
    fn each<T>(values: Vec<Value>, f: impl Fn(Value) -> Option<T>) -> Vec<Option<T>> {
        values.into_iter().map(f).collect()
    }
    match ty {
        ColType::Int32 | ColType::Int64 => {
            out.add(each(values, |v| if let Value::Int(i) = v { Some(i) } else { None }))
        }
        ColType::Real => out.add(each(values, |v| match v {
            Value::Real(r) => Some(r),
            Value::Int(i) => Some(i as f64),
            _ => None,
        })),
        ColType::Bool => out.add(each(values, |v| if let Value::Bool(b) = v { Some(b) } else { None })),
        ColType::Date => out.add(each(values, |v| if let Value::Date(d) = v { Some(d) } else { None })),
        ColType::DateTime => out.add(each(values, |v| if let Value::DateTime(t) = v { Some(t) } else { None })),
        ColType::Guid => out.add(each(values, |v| if let Value::Guid(g) = v { Some(g) } else { None })),
        // Text, and decimals as exact text the array cast turns into numeric.
        ColType::Text | ColType::Decimal => out.add(each(values, |v| match v {
            Value::Decimal(d) => Some(d.as_str().to_owned()),
            other => other.to_text(),
        })),
    }
}

fn decode(row: &PgRow, i: usize, col: ColType) -> Result<Value, SqlError> {
    Ok(match col {
        ColType::Text => row.try_get::<Option<String>, _>(i)?.map_or(Value::Null, Value::String),
        ColType::Int32 | ColType::Int64 => match row.try_get::<Option<i64>, _>(i) {
            Ok(v) => v.map_or(Value::Null, Value::Int),
            // An `integer` column (or a target's `smallint`) decodes only as its own width.
            Err(_) => match row.try_get::<Option<i32>, _>(i) {
                Ok(v) => v.map_or(Value::Null, |v| Value::Int(v.into())),
                Err(_) => row.try_get::<Option<i16>, _>(i)?.map_or(Value::Null, |v| Value::Int(v.into())),
            },
        },
        ColType::Real => row.try_get::<Option<f64>, _>(i)?.map_or(Value::Null, Value::Real),
        ColType::Bool => row.try_get::<Option<bool>, _>(i)?.map_or(Value::Null, Value::Bool),
        // Selected as text by the SQL, already canonical but for trailing zeros.
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
        return text.to_owned();
    }
    let trimmed = text.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" { "0".into() } else { trimmed.to_owned() }
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
}
