//! SQLite requests on a real database file: a [`Batch`] runs its statements in order with each
//! one's own arguments, and a deferred statement goes with the next statement without changing
//! what that statement answers.

use ferry_model::Value;
use ferry_sql::{Batch, ColType, Conn, Pool, PoolOptions, SqliteOptions};
use std::time::Duration;

async fn writer(dir: &tempfile::TempDir) -> Conn {
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let options = PoolOptions { max_connections: 1, acquire_timeout: Duration::from_secs(5) };
    let pool = Pool::sqlite(&url, options, SqliteOptions::default()).await.unwrap();
    let mut conn = pool.begin().await.unwrap();
    conn.execute("CREATE TABLE t (a TEXT, b TEXT)", ()).await.unwrap();
    conn
}

fn text(s: &str) -> Value {
    Value::String(s.into())
}

async fn count(conn: &mut Conn) -> i64 {
    match conn.fetch("SELECT COUNT(*) FROM t", (), &[ColType::Int64]).await.unwrap()[0][0] {
        Value::Int(n) => n,
        ref other => panic!("count is {other:?}"),
    }
}

#[tokio::test]
async fn a_batch_binds_each_statement_its_own_numbered_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = writer(&dir).await;
    let mut batch = Batch::new();
    batch.push("INSERT INTO t (a, b) VALUES ($2, $1)", vec![text("x"), text("y")]);
    batch.push("INSERT INTO t (a, b) VALUES ($3, $3)", vec![text("unused"), text("unused"), text("z")]);
    batch.push("SELECT a, b FROM t WHERE a <> '$1' ORDER BY rowid", ());
    let rows = conn.fetch_batch(batch, &[ColType::Text, ColType::Text]).await.unwrap();
    assert_eq!(rows, vec![vec![text("y"), text("x")], vec![text("z"), text("z")]]);
}

#[tokio::test]
async fn a_failing_statement_fails_its_batch_after_the_statements_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = writer(&dir).await;
    let mut batch = Batch::new();
    batch.push("INSERT INTO t (a, b) VALUES ($1, $1)", vec![text("kept")]);
    batch.push("INSERT INTO missing (a) VALUES ($1)", vec![text("x")]);
    batch.push("INSERT INTO t (a, b) VALUES ($1, $1)", vec![text("never")]);
    assert!(conn.fetch_batch(batch, &[]).await.is_err());
    assert_eq!(count(&mut conn).await, 1);
}

#[tokio::test]
async fn a_deferred_savepoint_runs_with_the_next_statement_and_hides_from_its_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = writer(&dir).await;
    assert_eq!(conn.execute("INSERT INTO t (a, b) VALUES ('1', '1'), ('2', '2'), ('3', '3')", ()).await.unwrap(), 3);

    // Not sent until a statement follows; one that never gets one never runs.
    conn.execute_deferred("SAVEPOINT lone").await.unwrap();
    assert!(!conn.settle_deferred());
    assert!(conn.rollback_to_savepoint("lone").await.is_err(), "no savepoint was made");

    // Sent with the next statement, whose count is its own (a SAVEPOINT reports the last
    // statement's changes as its own).
    conn.execute_deferred("SAVEPOINT w").await.unwrap();
    assert_eq!(conn.execute("UPDATE t SET b = 'x' WHERE a = 'none'", ()).await.unwrap(), 0);
    assert!(conn.settle_deferred());
    assert_eq!(conn.execute("DELETE FROM t", ()).await.unwrap(), 3);
    conn.rollback_to_savepoint("w").await.unwrap();
    assert_eq!(count(&mut conn).await, 3);

    // A statement that fails after the savepoint ran: it ran, and undoes the failed work.
    conn.execute_deferred("SAVEPOINT f").await.unwrap();
    assert!(conn.execute("INSERT INTO missing (a) VALUES ('1')", ()).await.is_err());
    assert!(conn.settle_deferred());
    conn.rollback_to_savepoint("f").await.unwrap();

    // Statements that cannot carry it (transaction control) send it on its own first.
    conn.execute_deferred("SAVEPOINT s").await.unwrap();
    conn.savepoint("inner").await.unwrap();
    assert!(conn.settle_deferred());
    conn.execute("DELETE FROM t", ()).await.unwrap();
    conn.rollback_to_savepoint("s").await.unwrap();
    assert_eq!(count(&mut conn).await, 3);
}
