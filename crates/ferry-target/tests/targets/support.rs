//! Shared set-up: one fresh target database per test and kind — a SQLite file always,
//! PostgreSQL from `FERRY_TEST_POSTGRES_URL`, MariaDB/MySQL from `FERRY_TEST_MYSQL_URL` (each
//! skipped loudly when its variable is unset, failing when set but unreachable) — plus a raw
//! connection to look at what the target layer wrote, and row builders.

use chrono::{DateTime, TimeZone, Utc};
use ferry_domain::{Checkpoint, FakeClock, KeyText, Phase, StoredRow, TargetKind, Tombstone};
use ferry_model::{Catalog, CatalogSource, Entity, Value, standard_sources};
use ferry_store::testing::TestDatabase;
use ferry_target::{Target, TargetSpec};
use sqlx::{AssertSqlSafe, Connection, MySqlPool, PgPool, Row, SqlitePool};
use std::future::Future;
use std::sync::Arc;
use uuid::Uuid;

pub const MYSQL_URL_VAR: &str = "FERRY_TEST_MYSQL_URL";
/// The PostgreSQL schema tests write to (not `public`, so schema creation is exercised).
const PG_SCHEMA: &str = "export";

/// A MySQL database that exists for one test and is dropped afterwards.
struct MySqlDatabase {
    admin_url: String,
    name: String,
}

impl Drop for MySqlDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside any runtime we may block; use a short-lived one on its own thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut admin = sqlx::MySqlConnection::connect(&admin_url).await.ok()?;
                sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS `{name}`"))).execute(&mut admin).await.ok()
            })
        })
        .join();
    }
}

enum Guard {
    Store(#[allow(dead_code)] TestDatabase),
    MySql(#[allow(dead_code)] MySqlDatabase),
}

/// A raw pool on the test database, for looking at tables and editing them by hand.
pub enum Raw {
    Postgres(PgPool),
    MySql(MySqlPool),
    Sqlite(SqlitePool),
}

/// One fresh target database.
pub struct Env {
    pub kind: TargetKind,
    /// The time the targets of this test write (`SinkCreatedOn`, `SinkModifiedOn`, DeleteLog).
    pub clock: Arc<FakeClock>,
    url: String,
    schema: Option<String>,
    pub raw: Raw,
    _guard: Guard,
}

/// The fresh databases of one test: SQLite always, the servers whose variables are set.
pub async fn envs(test: &str) -> Vec<Env> {
    let mut out = Vec::new();
    let db = TestDatabase::sqlite();
    let url = db.url.clone();
    let raw = Raw::Sqlite(SqlitePool::connect(&format!("{url}?mode=rwc")).await.expect("open SQLite test file"));
    out.push(Env {
        kind: TargetKind::Sqlite,
        clock: FakeClock::new(),
        url,
        schema: None,
        raw,
        _guard: Guard::Store(db),
    });

    if let Some(db) = TestDatabase::postgres(test).await {
        let url = db.url.clone();
        let raw = Raw::Postgres(PgPool::connect(&url).await.expect("connect to the PostgreSQL test database"));
        out.push(Env {
            kind: TargetKind::Postgres,
            clock: FakeClock::new(),
            url,
            schema: Some(PG_SCHEMA.into()),
            raw,
            _guard: Guard::Store(db),
        });
    }

    match std::env::var(MYSQL_URL_VAR) {
        Err(_) => eprintln!("\n*** SKIPPED (MariaDB): {test} — set {MYSQL_URL_VAR}=mysql://… to run it ***\n"),
        Ok(admin_url) => {
            let name = format!("ferry_t_{}", Uuid::new_v4().simple());
            let mut admin = sqlx::MySqlConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|e| panic!("{MYSQL_URL_VAR} is set but MariaDB/MySQL is unreachable: {e}"));
            sqlx::query(AssertSqlSafe(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4")))
                .execute(&mut admin)
                .await
                .expect("create MySQL test database");
            let guard = MySqlDatabase { admin_url: admin_url.clone(), name: name.clone() };
            let url = with_database(&admin_url, &name);
            let raw = Raw::MySql(MySqlPool::connect(&url).await.expect("connect to the MySQL test database"));
            out.push(Env {
                kind: TargetKind::MySql,
                clock: FakeClock::new(),
                url,
                schema: None,
                raw,
                _guard: Guard::MySql(guard),
            });
        }
    }
    out
}

/// Runs `body` on every target of the test, announcing each.
pub async fn on_all_targets<F, Fut>(test: &str, body: F)
where
    F: Fn(Env) -> Fut,
    Fut: Future<Output = ()>,
{
    for env in envs(test).await {
        eprintln!("--- {test} on {}", env.kind.name());
        body(env).await;
    }
}

/// Replaces the database name of a server URL.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{host}/{database}?{q}"),
        None => format!("{host}/{database}"),
    }
}

impl Env {
    pub fn spec(&self, prefix: &str, write_delete_log: bool) -> TargetSpec {
        TargetSpec {
            kind: self.kind,
            connection_string: self.url.clone(),
            schema: self.schema.clone(),
            table_prefix: prefix.into(),
            write_delete_log,
        }
    }

    pub async fn target(&self, prefix: &str, write_delete_log: bool) -> Target {
        Target::connect(&self.spec(prefix, write_delete_log), self.clock.clone()).await.expect("connect target")
    }

    pub fn quote(&self, ident: &str) -> String {
        match self.kind {
            TargetKind::MySql => format!("`{ident}`"),
            _ => format!("\"{ident}\""),
        }
    }

    /// The quoted, schema-qualified name of `table`.
    pub fn table(&self, table: &str) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", self.quote(schema), self.quote(table)),
            None => self.quote(table),
        }
    }

    /// A column read as text.
    fn as_text(&self, column: &str) -> String {
        self.cast_text(&self.quote(column))
    }

    fn cast_text(&self, expr: &str) -> String {
        match self.kind {
            TargetKind::Postgres => format!("({expr})::text"),
            TargetKind::MySql => format!("CAST({expr} AS CHAR)"),
            TargetKind::Sqlite => format!("CAST({expr} AS TEXT)"),
        }
    }

    /// Runs a statement by hand.
    pub async fn exec(&self, sql: &str) {
        let result = match &self.raw {
            Raw::Postgres(p) => sqlx::query(AssertSqlSafe(sql.to_string())).execute(p).await.map(|_| ()),
            Raw::MySql(p) => sqlx::query(AssertSqlSafe(sql.to_string())).execute(p).await.map(|_| ()),
            Raw::Sqlite(p) => sqlx::query(AssertSqlSafe(sql.to_string())).execute(p).await.map(|_| ()),
        };
        result.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Rows of a query whose columns are all text.
    pub async fn texts(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        fn read<R: Row>(rows: Vec<R>) -> Vec<Vec<Option<String>>>
        where
            for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            usize: sqlx::ColumnIndex<R>,
        {
            rows.iter()
                .map(|r| (0..r.len()).map(|i| r.try_get::<Option<String>, _>(i).expect("text")).collect())
                .collect()
        }
        let q = AssertSqlSafe(sql.to_string());
        match &self.raw {
            Raw::Postgres(p) => read(sqlx::query(q).fetch_all(p).await.unwrap_or_else(|e| panic!("{sql}: {e}"))),
            Raw::MySql(p) => read(sqlx::query(q).fetch_all(p).await.unwrap_or_else(|e| panic!("{sql}: {e}"))),
            Raw::Sqlite(p) => read(sqlx::query(q).fetch_all(p).await.unwrap_or_else(|e| panic!("{sql}: {e}"))),
        }
    }

    /// `columns` of every row of `table` as text, ordered by `order_by`.
    pub async fn select(&self, table: &str, columns: &[&str], order_by: &str) -> Vec<Vec<Option<String>>> {
        let list: Vec<String> = columns.iter().map(|c| self.as_text(c)).collect();
        let sql = format!("SELECT {} FROM {} ORDER BY {}", list.join(", "), self.table(table), self.quote(order_by));
        self.texts(&sql).await
    }

    /// Every column of every row (ordered by Id), for before/after comparisons.
    pub async fn snapshot(&self, table: &str) -> Vec<Vec<Option<String>>> {
        let columns = self.columns(table).await;
        let refs: Vec<&str> = columns.iter().map(String::as_str).collect();
        self.select(table, &refs, "Id").await
    }

    pub async fn count(&self, table: &str) -> usize {
        let sql = format!("SELECT {} FROM {}", self.cast_text("COUNT(*)"), self.table(table));
        self.texts(&sql).await[0][0].as_deref().unwrap().parse().unwrap()
    }

    /// The column names of `table`, in order, as the database spells them.
    pub async fn columns(&self, table: &str) -> Vec<String> {
        let sql = match self.kind {
            TargetKind::Postgres => format!(
                "SELECT column_name::text FROM information_schema.columns WHERE table_schema = '{PG_SCHEMA}' \
                 AND table_name = '{table}' ORDER BY ordinal_position"
            ),
            TargetKind::MySql => format!(
                "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
                 AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION"
            ),
            TargetKind::Sqlite => format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
        };
        self.texts(&sql).await.into_iter().map(|r| r[0].clone().unwrap()).collect()
    }

    /// The tables of the test schema.
    pub async fn tables(&self) -> Vec<String> {
        let sql = match self.kind {
            TargetKind::Postgres => {
                format!("SELECT table_name::text FROM information_schema.tables WHERE table_schema = '{PG_SCHEMA}'")
            }
            TargetKind::MySql => {
                "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()".into()
            }
            TargetKind::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'".into(),
        };
        let mut names: Vec<String> = self.texts(&sql).await.into_iter().map(|r| r[0].clone().unwrap()).collect();
        names.sort();
        names
    }
}

pub fn standard_catalog() -> Arc<Catalog> {
    Arc::new(Catalog::build(&standard_sources()).expect("standard catalog builds"))
}

pub fn catalog_with(extra: &str) -> Arc<Catalog> {
    let mut sources = standard_sources();
    sources.push(CatalogSource { origin: "test/extra.toml".into(), text: extra.into() });
    Arc::new(Catalog::build(&sources).expect("test catalog builds"))
}

pub fn entity(catalog: &Catalog, collection: &str) -> Arc<Entity> {
    catalog.by_collection(collection).unwrap_or_else(|| panic!("no entity {collection}")).clone()
}

pub fn s(text: &str) -> Value {
    Value::String(text.into())
}

pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

/// A stored row of `entity` with the given field values and defaults (or nulls) elsewhere.
pub fn row(entity: &Entity, id: Uuid, version: i64, company: Option<&str>, fields: &[(&str, Value)]) -> StoredRow {
    let mut values: Vec<Value> = entity.fields.iter().map(|f| f.default.clone().unwrap_or(Value::Null)).collect();
    for (name, value) in fields {
        let (i, _) = entity.field(name).unwrap_or_else(|| panic!("no field {name}"));
        values[i] = value.clone();
    }
    if let Some(primary) = entity.primary_id {
        values[primary] = Value::Guid(id);
    }
    StoredRow { id, company: company.map(str::to_string), created_at: at(0), modified_at: at(version), version, values }
}

pub fn tombstone(id: Uuid, version: i64) -> Tombstone {
    Tombstone { id, company: None, key: vec![id.to_string()], version, deleted_at: at(version) }
}

pub fn checkpoint(entity: &str, phase: Phase, last_version: i64, rows_copied: i64) -> Checkpoint {
    Checkpoint {
        profile_id: "p1".into(),
        entity: entity.into(),
        phase,
        snapshot_version: 100,
        after_key: Some(KeyText { company: None, values: vec![rows_copied.to_string()] }),
        last_version,
        rows_copied,
    }
}

/// Trailing zeros of a decimal's text removed (PostgreSQL and MySQL print the scale).
pub fn decimal_text(text: &str) -> String {
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text.to_string() }
}

pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0643_859c_0000_0000_0000_0000_0000_0000 + n)
}
