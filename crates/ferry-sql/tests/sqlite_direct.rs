//! [`Conn::sqlite_direct`] on a real database file: rows written by direct statements inside a
//! transaction are the rows the sqlx binding reads back (every type, NULLs), in that same
//! transaction and after it; a deferred savepoint runs first, so a rollback to it undoes them;
//! a key that exists is a unique violation; a parameter left unbound is refused, not taken from
//! the row before; PostgreSQL has no direct statements.

use chrono::{NaiveDate, TimeZone as _, Utc};
use ferry_model::{Decimal, Value};
use ferry_sql::{ColType, Pool, PoolOptions, SqlError, SqlErrorKind, SqliteOptions, SqliteValue};
use std::time::Duration;

const COLS: [ColType; 9] = [
    ColType::Int64,
    ColType::Text,
    ColType::Int32,
    ColType::Real,
    ColType::Bool,
    ColType::Decimal,
    ColType::Date,
    ColType::DateTime,
    ColType::Guid,
];
const SELECT: &str = "SELECT k, s, i, r, b, d, day, at, g FROM t ORDER BY k";

async fn open(dir: &tempfile::TempDir) -> Pool {
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let options = PoolOptions { max_connections: 1, acquire_timeout: Duration::from_secs(5) };
    let pool = Pool::sqlite(&url, options, SqliteOptions::default()).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let table = "CREATE TABLE t (k INTEGER PRIMARY KEY, s TEXT, i INTEGER, r REAL, b INTEGER, d TEXT, day TEXT, \
                 at TEXT, g TEXT)";
    conn.execute(table, ()).await.unwrap();
    pool
}

fn row(n: i64) -> Vec<Value> {
    if n % 5 == 4 {
        return std::iter::once(Value::Int(n)).chain(std::iter::repeat_n(Value::Null, COLS.len() - 1)).collect();
    }
    vec![
        Value::Int(n),
        Value::String(format!("naïve ‘{n}’")),
        Value::Int(n * 3),
        Value::Real(n as f64 + 0.1),
        Value::Bool(n % 2 == 0),
        Value::Decimal(Decimal::from_canonical(format!("{n}.25"))),
        Value::Date(NaiveDate::from_ymd_opt(2026, 12, 5).unwrap()),
        Value::DateTime(Utc.timestamp_micros(1_764_950_400_123_456 + n).unwrap()),
        Value::Guid(uuid::Uuid::from_u128(n as u128)),
    ]
}

fn insert_all(db: &ferry_sql::SqliteDirect, rows: &[Vec<Value>]) -> Result<u64, SqlError> {
    let mut statement = db.prepare("INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")?;
    let mut changed = 0;
    for row in rows {
        for value in row {
            statement.bind(value)?;
        }
        changed += statement.execute()?;
    }
    Ok(changed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_written_directly_are_read_back_by_the_driver_in_the_same_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open(&dir).await;
    let rows: Vec<Vec<Value>> = (0..500).map(row).collect();
    let mut tx = pool.begin().await.unwrap();
    let changed = tx.sqlite_direct(|db| insert_all(db, &rows)).await.unwrap();
    assert_eq!(changed, 500);
    assert_eq!(tx.fetch(SELECT, (), &COLS).await.unwrap(), rows, "seen inside the transaction");
    // Direct reads see the driver's writes too.
    tx.execute("UPDATE t SET s = 'changed' WHERE k = 1", ()).await.unwrap();
    let seen = tx
        .sqlite_direct(|db| {
            let mut statement = db.prepare("SELECT k, s, i, r, b, d, day, at, g FROM t WHERE k = ?")?;
            let mut seen = Vec::new();
            for k in [1, 2, 9_999] {
                statement.bind(&Value::Int(k))?;
                statement.query(&COLS, |row| {
                    seen.push(row);
                    Ok(())
                })?;
            }
            Ok::<_, SqlError>(seen)
        })
        .await
        .unwrap();
    let mut expected = vec![row(1), row(2)];
    expected[0][1] = Value::String("changed".into());
    assert_eq!(seen, expected);
    tx.commit().await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(conn.fetch(SELECT, (), &COLS).await.unwrap().len(), 500, "committed");
}

#[tokio::test]
async fn a_deferred_savepoint_runs_first_and_a_rollback_to_it_undoes_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open(&dir).await;
    let mut tx = pool.begin().await.unwrap();
    tx.sqlite_direct(|db| insert_all(db, &[row(0)])).await.unwrap();
    tx.execute_deferred("SAVEPOINT w").await.unwrap();
    tx.sqlite_direct(|db| insert_all(db, &[row(1), row(2)])).await.unwrap();
    assert!(tx.settle_deferred(), "the savepoint ran with the direct statements");
    tx.rollback_to_savepoint("w").await.unwrap();
    tx.commit().await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(conn.fetch(SELECT, (), &COLS).await.unwrap(), vec![row(0)]);
}

#[tokio::test]
async fn an_existing_key_is_a_unique_violation_and_the_connection_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open(&dir).await;
    let mut conn = pool.acquire().await.unwrap();
    conn.sqlite_direct(|db| insert_all(db, &[row(0), row(1)])).await.unwrap();
    let err = conn.sqlite_direct(|db| insert_all(db, &[row(2), row(1)])).await.unwrap_err();
    assert_eq!(err.kind, SqlErrorKind::UniqueViolation, "{err}");
    assert!(err.message.contains("UNIQUE constraint failed"), "{err}");
    let count = conn.fetch("SELECT count(*) FROM t", (), &[ColType::Int64]).await.unwrap();
    assert_eq!(count, vec![vec![Value::Int(3)]], "the statements before the failing one stay (no transaction)");
}

#[tokio::test]
async fn a_parameter_left_unbound_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open(&dir).await;
    let mut conn = pool.acquire().await.unwrap();
    let stamp = SqliteValue::of(&Value::Date(NaiveDate::from_ymd_opt(2026, 12, 5).unwrap()));
    let err = conn
        .sqlite_direct(|db| {
            let mut statement = db.prepare("INSERT INTO t (k, day) VALUES (?, ?)")?;
            statement.bind(&Value::Int(1))?.bind_stored(&stamp)?;
            statement.execute()?;
            // The second row binds only its key: the first row's date must not be taken.
            statement.bind(&Value::Int(2))?;
            statement.execute()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, SqlErrorKind::Other);
    assert!(err.message.contains("1 parameters bound where the statement has 2"), "{err}");
    let days = conn.fetch("SELECT day FROM t", (), &[ColType::Date]).await.unwrap();
    assert_eq!(days, vec![vec![Value::Date(NaiveDate::from_ymd_opt(2026, 12, 5).unwrap())]]);
}

#[tokio::test]
async fn postgres_has_no_direct_statements() {
    let Ok(url) = std::env::var("FERRY_TEST_POSTGRES_URL") else { return };
    let options = PoolOptions { max_connections: 1, acquire_timeout: Duration::from_secs(5) };
    let pool = Pool::postgres(&url, options, "ferry-sql-test").await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let err = conn.sqlite_direct(|_| Ok::<_, SqlError>(())).await.unwrap_err();
    assert!(err.message.contains("need SQLite"), "{err}");
}
