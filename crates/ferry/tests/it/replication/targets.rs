//! The replication tests' target databases: a fresh PostgreSQL database (from
//! `FERRY_TEST_POSTGRES_URL`), a fresh MariaDB/MySQL database `ferry_t_<random>` (from
//! `FERRY_TEST_MYSQL_URL`, dropped afterwards) or a SQLite file in a temporary directory — and
//! the few reads and hand-made DDL the tests run on them. Every value read is cast to text so
//! the three dialects answer alike.

use std::collections::BTreeMap;

use ferry_store::testing::TestDatabase;
use sqlx::{Connection, MySqlConnection, MySqlPool, PgPool, Row, SqlitePool};

/// The environment variable naming the MariaDB/MySQL server tests run against.
pub const MYSQL_URL_VAR: &str = "FERRY_TEST_MYSQL_URL";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    MySql,
    Sqlite,
}

enum Pool {
    Pg(PgPool),
    My(MySqlPool),
    Lite(SqlitePool),
}

/// A target database that exists for one test.
pub struct TargetDb {
    pub kind: Kind,
    /// The connection string a profile gets.
    pub url: String,
    pool: Pool,
    _postgres: Option<TestDatabase>,
    _dir: Option<tempfile::TempDir>,
    /// MariaDB: (admin URL, database name) to drop afterwards.
    mysql_cleanup: Option<(String, String)>,
}

/// Replaces the database (path) of a `scheme://authority/database?query` URL.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = base[scheme_end..].find('/').map_or(base, |slash| &base[..scheme_end + slash]);
    match query {
        Some(q) => format!("{host_part}/{database}?{q}"),
        None => format!("{host_part}/{database}"),
    }
}

impl TargetDb {
    /// A fresh PostgreSQL database, or `None` (after a SKIPPED line) without a server.
    pub async fn postgres(test: &str) -> Option<TargetDb> {
        let database = TestDatabase::postgres(&format!("{test} (target)")).await?;
        let pool = PgPool::connect(&database.url).await.expect("connect to the target PostgreSQL database");
        Some(TargetDb {
            kind: Kind::Postgres,
            url: database.url.clone(),
            pool: Pool::Pg(pool),
            _postgres: Some(database),
            _dir: None,
            mysql_cleanup: None,
        })
    }

    /// A fresh MariaDB/MySQL database, or `None` (after a SKIPPED line) when
    /// `FERRY_TEST_MYSQL_URL` is unset; panics when it is set but the server is unreachable.
    pub async fn mysql(test: &str) -> Option<TargetDb> {
        let Ok(admin_url) = std::env::var(MYSQL_URL_VAR) else {
            eprintln!("\n*** SKIPPED (MariaDB): {test} — set {MYSQL_URL_VAR}=mysql://… to run it ***\n");
            return None;
        };
        let name = format!("ferry_t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = MySqlConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{MYSQL_URL_VAR} is set but MariaDB/MySQL is unreachable: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4")))
            .execute(&mut admin)
            .await
            .expect("create the target MariaDB database");
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        let pool = MySqlPool::connect(&url).await.expect("connect to the target MariaDB database");
        Some(TargetDb {
            kind: Kind::MySql,
            url,
            pool: Pool::My(pool),
            _postgres: None,
            _dir: None,
            mysql_cleanup: Some((admin_url, name)),
        })
    }

    /// A SQLite file in a temporary directory (ferry creates it).
    pub async fn sqlite() -> TargetDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("target.db").display());
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().expect("sqlite url");
        // Lazy: ferry creates the file and sets it up; the test only reads it afterwards.
        let pool = SqlitePool::connect_lazy_with(options.busy_timeout(std::time::Duration::from_secs(30)));
        TargetDb {
            kind: Kind::Sqlite,
            url,
            pool: Pool::Lite(pool),
            _postgres: None,
            _dir: Some(dir),
            mysql_cleanup: None,
        }
    }

    /// The profile's `TargetType`.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Postgres => "postgres",
            Kind::MySql => "mysql",
            Kind::Sqlite => "sqlite",
        }
    }

    /// A quoted identifier.
    pub fn q(&self, ident: &str) -> String {
        match self.kind {
            Kind::MySql => format!("`{ident}`"),
            Kind::Postgres | Kind::Sqlite => format!("\"{ident}\""),
        }
    }

    /// `CAST(<quoted column> AS <text>)`.
    fn as_text(&self, column: &str) -> String {
        let ty = if self.kind == Kind::MySql { "CHAR" } else { "TEXT" };
        format!("CAST({} AS {ty})", self.q(column))
    }

    /// Runs hand-written SQL (DDL) on the target.
    pub async fn exec(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        let result = match &self.pool {
            Pool::Pg(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
            Pool::My(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
            Pool::Lite(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
        };
        result.unwrap_or_else(|e| panic!("target SQL failed: {e}"));
    }

    /// Runs a query whose every column is text (or null).
    async fn texts(&self, sql: String) -> Result<Vec<Vec<Option<String>>>, sqlx::Error> {
        fn decode<R: Row>(rows: Vec<R>) -> Result<Vec<Vec<Option<String>>>, sqlx::Error>
        where
            usize: sqlx::ColumnIndex<R>,
            for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        {
            rows.iter().map(|r| (0..r.len()).map(|i| r.try_get::<Option<String>, _>(i)).collect()).collect()
        }
        let sql = sqlx::AssertSqlSafe(sql);
        match &self.pool {
            Pool::Pg(p) => decode(sqlx::query(sql).fetch_all(p).await?),
            Pool::My(p) => decode(sqlx::query(sql).fetch_all(p).await?),
            Pool::Lite(p) => decode(sqlx::query(sql).fetch_all(p).await?),
        }
    }

    /// The names of the tables in the target's default schema.
    pub async fn tables(&self) -> Vec<String> {
        let sql = match self.kind {
            Kind::Postgres => {
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = 'public'"
                    .to_owned()
            }
            Kind::MySql => {
                "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
                    .to_owned()
            }
            Kind::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'".to_owned(),
        };
        let mut names: Vec<String> =
            self.texts(sql).await.expect("list target tables").into_iter().filter_map(|r| r[0].clone()).collect();
        names.sort();
        names
    }

    /// The column names of `table`, in order.
    pub async fn columns(&self, table: &str) -> Vec<String> {
        let sql = match self.kind {
            Kind::Postgres => format!(
                "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = '{table}' ORDER BY ordinal_position"
            ),
            Kind::MySql => format!(
                "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION"
            ),
            Kind::Sqlite => format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
        };
        self.texts(sql).await.expect("list target columns").into_iter().filter_map(|r| r[0].clone()).collect()
    }

    /// Rows of `table`, or `None` while the table does not exist (or cannot be read).
    pub async fn try_count(&self, table: &str) -> Option<u64> {
        let sql = format!(
            "SELECT CAST(COUNT(*) AS {}) FROM {}",
            if self.kind == Kind::MySql { "CHAR" } else { "TEXT" },
            self.q(table)
        );
        let rows = self.texts(sql).await.ok()?;
        rows.first()?.first()?.as_ref()?.parse().ok()
    }

    /// The phase and copied rows of the one checkpoint in `<prefix>_ferry_checkpoint`, or `None`
    /// while there is none (or the table does not exist yet).
    pub async fn checkpoint(&self, prefix: &str) -> Option<(String, u64)> {
        let ty = if self.kind == Kind::MySql { "CHAR" } else { "TEXT" };
        let sql = format!(
            "SELECT CAST(phase AS {ty}), CAST(rows_copied AS {ty}) FROM {}",
            self.q(&format!("{prefix}_ferry_checkpoint"))
        );
        let rows = self.texts(sql).await.ok()?;
        let row = rows.first()?;
        Some((row[0].clone()?, row[1].as_deref()?.parse().ok()?))
    }

    pub async fn count(&self, table: &str) -> u64 {
        self.try_count(table).await.unwrap_or_else(|| panic!("cannot count the rows of target table {table}"))
    }

    /// `Id` → the other `columns` as text, for every row of `table`.
    pub async fn rows_by_id(&self, table: &str, columns: &[&str]) -> BTreeMap<String, Vec<Option<String>>> {
        let mut select = vec![self.as_text("Id")];
        select.extend(columns.iter().map(|c| self.as_text(c)));
        let sql = format!("SELECT {} FROM {}", select.join(", "), self.q(table));
        let rows = self.texts(sql).await.unwrap_or_else(|e| panic!("cannot read target table {table}: {e}"));
        rows.into_iter()
            .map(|mut r| {
                let id = r.remove(0).expect("Id is never null").to_ascii_lowercase();
                (id, r)
            })
            .collect()
    }

    /// Every row of `table` as text, for tables without `Id` (metadata, DeleteLog columns).
    pub async fn select(&self, table: &str, columns: &[&str]) -> Vec<Vec<Option<String>>> {
        let select: Vec<String> = columns.iter().map(|c| self.as_text(c)).collect();
        let sql = format!("SELECT {} FROM {}", select.join(", "), self.q(table));
        self.texts(sql).await.unwrap_or_else(|e| panic!("cannot read target table {table}: {e}"))
    }
}

impl Drop for TargetDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.mysql_cleanup.take() else { return };
        // Drop runs outside any runtime we may block on; use a short-lived one on its own thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut admin = MySqlConnection::connect(&admin_url).await.ok()?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS `{name}`")))
                    .execute(&mut admin)
                    .await
                    .ok()
            })
        })
        .join();
    }
}

#[test]
fn database_names_are_replaced() {
    assert_eq!(with_database("mysql://root@127.0.0.1:3306/test", "x"), "mysql://root@127.0.0.1:3306/x");
    assert_eq!(with_database("mysql://root@h/test?ssl-mode=disabled", "x"), "mysql://root@h/x?ssl-mode=disabled");
    assert_eq!(with_database("mysql://root@h", "x"), "mysql://root@h/x");
}
