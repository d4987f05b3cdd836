//! [`SqliteReader`] on a real database file, beside the sqlx connection that wrote it: it reads
//! every type back as the sqlx binding does, sees each commit once it is made, binds arguments
//! in order, and names the column of a value that does not fit its type.

use chrono::{NaiveDate, TimeZone as _, Utc};
use ferry_model::{Decimal, Value};
use ferry_sql::{ColType, Conn, Pool, PoolOptions, Sql, SqlErrorKind, SqliteOptions, SqliteReader};
use std::time::Duration;

const COLS: [ColType; 9] = [
    ColType::Text,
    ColType::Int32,
    ColType::Int64,
    ColType::Real,
    ColType::Bool,
    ColType::Decimal,
    ColType::Date,
    ColType::DateTime,
    ColType::Guid,
];

async fn open(dir: &tempfile::TempDir) -> (Pool, SqliteReader) {
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let options = PoolOptions { max_connections: 1, acquire_timeout: Duration::from_secs(5) };
    let pool = Pool::sqlite(&url, options, SqliteOptions::default()).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    conn.execute(
        "CREATE TABLE t (s TEXT, i INTEGER, l INTEGER, r REAL, b INTEGER, d TEXT, day TEXT, at TEXT, g TEXT)",
        (),
    )
    .await
    .unwrap();
    (pool, SqliteReader::new(&url, 2, 1_000).unwrap())
}

fn row(n: i64) -> Vec<Value> {
    vec![
        Value::String(format!("naïve ‘{n}’")),
        Value::Int(n),
        Value::Int(i64::MAX - n),
        Value::Real(n as f64 + 0.1),
        Value::Bool(n % 2 == 0),
        Value::Decimal(Decimal::from_canonical(format!("{n}.25"))),
        Value::Date(NaiveDate::from_ymd_opt(2026, 12, 5).unwrap()),
        Value::DateTime(Utc.timestamp_micros(1_764_950_400_123_456 + n).unwrap()),
        Value::Guid(uuid::Uuid::from_u128(n as u128)),
    ]
}

async fn insert(conn: &mut Conn, values: Vec<Value>) {
    let mut sql = Sql::new(ferry_sql::Dialect::Sqlite);
    sql.push("INSERT INTO t VALUES (");
    for (i, (value, ty)) in values.into_iter().zip(COLS).enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.param_typed(value, ty);
    }
    sql.push(")");
    conn.run(sql).await.unwrap();
}

fn select(filter: &str, args: Vec<Value>) -> Sql {
    let text = format!("SELECT s, i, l, r, b, d, day, at, g FROM t {filter} ORDER BY i");
    Sql::with_args(ferry_sql::Dialect::Sqlite, &text, args)
}

#[tokio::test]
async fn reads_every_type_as_the_sqlx_binding_does() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, reader) = open(&dir).await;
    let mut conn = pool.acquire().await.unwrap();
    for n in 0..3 {
        insert(&mut conn, row(n)).await;
    }
    insert(&mut conn, vec![Value::Null; COLS.len()]).await;
    let by_reader = reader.query(select("", vec![]), &COLS).await.unwrap();
    let by_sqlx = conn.query(select("", vec![]), &COLS).await.unwrap();
    assert_eq!(by_reader, by_sqlx);
    assert_eq!(by_reader.len(), 4);
    assert_eq!(by_reader[0], vec![Value::Null; COLS.len()], "NULLs sort first");
    assert_eq!(by_reader[1..], [row(0), row(1), row(2)]);
}

#[tokio::test]
async fn binds_arguments_in_order_and_sees_each_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, reader) = open(&dir).await;
    let mut conn = pool.acquire().await.unwrap();
    let between = |low: i64, high: i64| select("WHERE i >= $1 AND i < $2", vec![Value::Int(low), Value::Int(high)]);
    assert!(reader.query(between(0, 10), &COLS).await.unwrap().is_empty());
    for n in 0..10 {
        insert(&mut conn, row(n)).await;
        // Each read after a commit sees it (same statement text: a cached statement re-bound).
        let rows = reader.query(between(0, 10), &COLS).await.unwrap();
        assert_eq!(rows.len() as i64, n + 1);
    }
    let rows = reader.query(between(3, 5), &COLS).await.unwrap();
    assert_eq!(rows, vec![row(3), row(4)]);
}

#[tokio::test]
async fn a_value_that_does_not_fit_names_its_column() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, reader) = open(&dir).await;
    let mut conn = pool.acquire().await.unwrap();
    let mut values = row(1);
    values[6] = Value::String("not a date".into());
    let mut sql = Sql::new(ferry_sql::Dialect::Sqlite);
    sql.push("INSERT INTO t VALUES (").param_list(values).push(")");
    conn.run(sql).await.unwrap();
    let e = reader.query(select("", vec![]), &COLS).await.unwrap_err();
    assert_eq!(e.kind, SqlErrorKind::Corrupt);
    assert!(e.message.starts_with("column #6:"), "{e}");
    let e = reader.query(Sql::with_args(ferry_sql::Dialect::Sqlite, "SELECT * FROM missing", ()), &COLS).await;
    assert_eq!(e.unwrap_err().kind, SqlErrorKind::Rejected);
}
