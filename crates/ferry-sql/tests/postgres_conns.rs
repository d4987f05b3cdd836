//! ferry's own PostgreSQL connections (`pg_conns.rs`) on a real server
//! (`FERRY_TEST_POSTGRES_URL`): with one connection, a transaction dropped without commit is
//! rolled back before the connection serves again, and a statement abandoned half way leaves
//! the connection usable.

use ferry_model::Value;
use ferry_sql::{ColType, Pool, PoolOptions};
use std::time::Duration;

async fn one_connection() -> Option<Pool> {
    let url = std::env::var("FERRY_TEST_POSTGRES_URL").ok()?;
    let options = PoolOptions { max_connections: 1, acquire_timeout: Duration::from_secs(10) };
    Some(Pool::postgres(&url, options, "ferry-sql-tests").await.expect("PostgreSQL reachable"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_transaction_is_rolled_back_and_an_abandoned_statement_forgotten() {
    let Some(pool) = one_connection().await else { return };
    let table = format!("ferry_sql_conns_{}", std::process::id());
    let count = format!("SELECT count(*) FROM {table}");
    let mut conn = pool.acquire().await.unwrap();
    conn.execute(&format!("CREATE TABLE {table} (n BIGINT)"), ()).await.unwrap();
    drop(conn);

    let mut tx = pool.begin().await.unwrap();
    tx.execute(&format!("INSERT INTO {table} VALUES (1)"), ()).await.unwrap();
    drop(tx); // no commit
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(conn.fetch(&count, (), &[ColType::Int64]).await.unwrap(), vec![vec![Value::Int(0)]]);
    drop(conn);

    // The same connection takes a new transaction, which commits.
    let mut tx = pool.begin().await.unwrap();
    tx.execute(&format!("INSERT INTO {table} VALUES (2)"), ()).await.unwrap();
    tx.commit().await.unwrap();

    // A statement whose caller gives up: the connection still answers the next one right.
    let mut conn = pool.acquire().await.unwrap();
    let sleep = conn.execute("SELECT pg_sleep(0.3)", ());
    assert!(tokio::time::timeout(Duration::from_millis(20), sleep).await.is_err());
    drop(conn);
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(conn.fetch(&count, (), &[ColType::Int64]).await.unwrap(), vec![vec![Value::Int(1)]]);
    conn.execute(&format!("DROP TABLE {table}"), ()).await.unwrap();
}
