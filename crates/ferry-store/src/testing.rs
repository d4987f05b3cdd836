//! Test support (feature `testing`): a fresh database per test, on SQLite (a temporary file)
//! or PostgreSQL (a new database on the server named by `FERRY_TEST_POSTGRES_URL`).
//!
//! When `FERRY_TEST_POSTGRES_URL` is unset, PostgreSQL tests print a loud SKIPPED line and
//! pass; when it is set, an unreachable server fails the test.

use sqlx::{Connection, PgConnection};

/// The environment variable naming the PostgreSQL server tests run against.
pub const POSTGRES_URL_VAR: &str = "FERRY_TEST_POSTGRES_URL";

/// A database that exists for one test and is removed afterwards.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    cleanup: Option<(String, String)>,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase").field("url", &crate::redact_url(&self.url)).finish()
    }
}

impl TestDatabase {
    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("ferry.db").display());
        TestDatabase { url, _dir: Some(dir), cleanup: None }
    }

    /// A fresh PostgreSQL database, or `None` (after printing why) when no server is configured.
    pub async fn postgres(test_name: &str) -> Option<TestDatabase> {
        let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
            eprintln!("\n*** SKIPPED (PostgreSQL): {test_name} — set {POSTGRES_URL_VAR}=postgres://… to run it ***\n");
            return None;
        };
        let name = format!("ferry_t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is set but PostgreSQL is unreachable: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let url = with_database(&admin_url, &name);
        Some(TestDatabase { url, _dir: None, cleanup: Some((admin_url, name)) })
    }
}

/// Replaces the database name of a PostgreSQL URL.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{database}?{q}"),
        None => format!("{host_part}/{database}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.cleanup.take() else { return };
        // Drop runs outside any runtime we may block; use a short-lived one on its own thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut admin)
                    .await
                    .ok()
            })
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_database_name() {
        assert_eq!(super::with_database("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
        assert_eq!(
            super::with_database("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
