//! ferry's storage: one interface ([`Store`]) over two backends, embedded SQLite and
//! PostgreSQL. All SQL of the project lives in this crate.
//!
//! Layout: `engine.rs` is the seam to the drivers (a connection that runs SQL with
//! [`ferry_model::Value`] arguments), `sqlite.rs` and `postgres.rs` implement it, `sql.rs` writes
//! entity SQL for both dialects, and `rows.rs`, `schema.rs`, `apps.rs` hold the operations. The
//! conformance suite in `tests/conformance` runs the same tests on both backends.

mod apps;
mod engine;
mod error;
mod imports;
mod model;
mod postgres;
mod queue;
mod replication;
mod rows;
mod schema;
mod sql;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
mod upsert;

pub use engine::Dialect;
pub use error::{StoreError, StoreResult};
pub use imports::{
    ErrorFilter, ImportErrorRecord, JobRecord, LanePosition, MessageEntityRecord, MessageFilter, MessageRecord,
    ProjectRecord, QueueStats, RowCounters,
};
pub use model::{App, AppOrigin, Changes, CompanyScope, NewRow, RowKey, RowQuery, SigningKey, StoredRow, Tombstone};
pub use postgres::redact_url;
pub use queue::{Enqueued, MessageOutcome, NewMessage};
pub use replication::{EntityStatusRecord, FailureLogLine, FailureRecord, ProfileRecord};
pub use schema::SchemaReport;
pub use upsert::{BatchCounts, Fence, LookupMiss};

use chrono::{DateTime, Utc};
use ferry_model::{Catalog, Entity, Value};
use ferry_query::BoundExpr;
use postgres::PgBackend;
use sqlite::SqliteBackend;
use std::sync::{Arc, RwLock};

/// Most changes one [`Store::changes_since`] call returns.
pub const CHANGES_LIMIT_MAX: usize = 50_000;

enum Backend {
    Sqlite(SqliteBackend),
    Postgres(PgBackend),
}

struct Inner {
    backend: Backend,
    catalog: RwLock<Arc<Catalog>>,
    now: Box<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// Bumped after every committed entity write (and, on PostgreSQL, every write of any node).
    changes: tokio::sync::watch::Sender<u64>,
    listener_started: std::sync::Once,
    /// Bumped when the import queue may have runnable work (PostgreSQL: by any node).
    queue_events: tokio::sync::watch::Sender<u64>,
    queue_listener_started: std::sync::Once,
    /// Rows inserted per entity table since its statistics were last refreshed (PostgreSQL).
    inserted_since_analyze: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

/// After this many inserted rows a table's planner statistics are refreshed (PostgreSQL), so
/// that keyset paging uses the key index right after a bulk load instead of waiting for
/// autovacuum.
const ANALYZE_AFTER_INSERTED_ROWS: u64 = 100_000;

/// The store. Cheap to clone; all clones share one connection pool.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dialect", &self.dialect()).finish_non_exhaustive()
    }
}

/// Runs `$body` (an operation taking `$conn: &mut impl Conn`) in a write transaction.
macro_rules! write_tx {
    ($self:ident, |$conn:ident| $body:expr) => {
        match &$self.inner.backend {
            Backend::Sqlite(b) => {
                // IMMEDIATE takes the write lock up front, so no reader-to-writer upgrade can fail.
                let mut tx = b.writer.begin_with("BEGIN IMMEDIATE").await?;
                let $conn = &mut *tx;
                let out = $body.await?;
                tx.commit().await?;
                out
            }
            Backend::Postgres(b) => {
                let mut tx = b.pool.begin().await?;
                let $conn = &mut *tx;
                let out = $body.await?;
                tx.commit().await?;
                out
            }
        }
    };
}

/// Runs `$body` on a read connection.
macro_rules! read_conn {
    ($self:ident, |$conn:ident| $body:expr) => {
        match &$self.inner.backend {
            Backend::Sqlite(b) => {
                let mut c = b.readers.acquire().await?;
                let $conn = &mut *c;
                $body.await
            }
            Backend::Postgres(b) => {
                let mut c = b.pool.acquire().await?;
                let $conn = &mut *c;
                $body.await
            }
        }
    };
}

mod imports_facade;

impl Store {
    /// Opens a store from a URL: `sqlite://path/to/file.db` or `postgres://…`. Does not migrate.
    pub async fn open(url: &str) -> StoreResult<Store> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite(SqliteBackend::open(url).await?)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres(PgBackend::open(url, 16).await?)
        } else {
            return Err(StoreError::BadUrl(format!("'{}' is neither sqlite://… nor postgres://…", redact_url(url))));
        };
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                catalog: RwLock::new(Arc::new(Catalog::default())),
                now: Box::new(Utc::now),
                changes: tokio::sync::watch::channel(0).0,
                listener_started: std::sync::Once::new(),
                queue_events: tokio::sync::watch::channel(0).0,
                queue_listener_started: std::sync::Once::new(),
                inserted_since_analyze: std::sync::Mutex::new(std::collections::HashMap::new()),
            }),
        })
    }

    pub fn dialect(&self) -> Dialect {
        match self.inner.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The current time at the precision both databases keep (microseconds).
    fn now(&self) -> DateTime<Utc> {
        use chrono::SubsecRound;
        (self.inner.now)().trunc_subsecs(6)
    }

    fn catalog(&self) -> Arc<Catalog> {
        self.inner.catalog.read().expect("catalog lock").clone()
    }

    /// Applies the system-table migrations of this backend.
    pub async fn migrate(&self) -> StoreResult<()> {
        match &self.inner.backend {
            Backend::Sqlite(b) => b.migrate().await,
            Backend::Postgres(b) => b.migrate().await,
        }
    }

    /// Creates or evolves the table of every catalog entity, and makes the catalog the one
    /// lookups are checked against.
    pub async fn prepare_entities(&self, catalog: Arc<Catalog>) -> StoreResult<SchemaReport> {
        let report = write_tx!(self, |conn| schema::prepare(conn, &catalog));
        *self.inner.catalog.write().expect("catalog lock") = catalog;
        Ok(report)
    }

    /// Answers when the database answers a trivial query.
    pub async fn ping(&self) -> StoreResult<()> {
        read_conn!(self, |conn| rows::current_version(conn)).map(|_| ())
    }

    pub async fn close(&self) {
        match &self.inner.backend {
            Backend::Sqlite(b) => b.close().await,
            Backend::Postgres(b) => b.pool.close().await,
        }
    }

    /// The newest committed change version.
    pub async fn current_version(&self) -> StoreResult<i64> {
        read_conn!(self, |conn| rows::current_version(conn))
    }

    /// Inserts rows in one transaction; fails as a whole if any key exists already or any
    /// lookup names a missing record.
    pub async fn insert(&self, entity: &Entity, rows: Vec<NewRow>) -> StoreResult<Vec<StoredRow>> {
        let catalog = self.catalog();
        let now = self.now();
        let stored = write_tx!(self, |conn| rows::insert(conn, &catalog, entity, rows, now));
        self.changed();
        self.count_inserts(entity, stored.len() as u64);
        Ok(stored)
    }

    /// Changes fields of one row; answers the row as updated, or `None` if the key is unknown.
    pub async fn update(
        &self,
        entity: &Entity,
        key: &RowKey,
        changes: Vec<(usize, Value)>,
    ) -> StoreResult<Option<StoredRow>> {
        let catalog = self.catalog();
        let now = self.now();
        let updated = write_tx!(self, |conn| rows::update(conn, &catalog, entity, key, changes, now));
        self.changed();
        Ok(updated)
    }

    /// Deletes one row, leaving a tombstone; answers whether the key existed.
    pub async fn delete(&self, entity: &Entity, key: &RowKey) -> StoreResult<bool> {
        let now = self.now();
        let deleted = write_tx!(self, |conn| rows::delete(conn, entity, key, now));
        self.changed();
        Ok(deleted)
    }

    /// Reads one row by its GUID `Id`.
    pub async fn get_by_id(&self, entity: &Entity, id: uuid::Uuid) -> StoreResult<Option<StoredRow>> {
        read_conn!(self, |conn| rows::get_by_id(conn, entity, id))
    }

    /// `(Id, version)` of every row of `entity`, ordered by `Id`.
    pub async fn row_versions(&self, entity: &Entity) -> StoreResult<Vec<(uuid::Uuid, i64)>> {
        read_conn!(self, |conn| rows::row_versions(conn, entity))
    }

    /// Refreshes a PostgreSQL table's statistics in the background once enough rows arrived.
    fn count_inserts(&self, entity: &Entity, rows: u64) {
        let Backend::Postgres(b) = &self.inner.backend else { return };
        let table = sql::table_name(entity);
        let due = {
            let mut counts = self.inner.inserted_since_analyze.lock().expect("insert counts");
            let count = counts.entry(table.clone()).or_default();
            *count += rows;
            let due = *count >= ANALYZE_AFTER_INSERTED_ROWS;
            if due {
                *count = 0;
            }
            due
        };
        if due {
            let pool = b.pool.clone();
            tokio::spawn(async move {
                let statement = format!("ANALYZE {}", sql::quote(&table));
                if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await {
                    tracing::warn!(error = %e, table = %table, "cannot refresh table statistics");
                }
            });
        }
    }

    fn changed(&self) {
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees a new value after each committed entity write — on PostgreSQL,
    /// by any node (LISTEN/NOTIFY). Replication waits on it instead of polling.
    pub fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        if let Backend::Postgres(b) = &self.inner.backend {
            let pool = b.pool.clone();
            let sender = self.inner.changes.clone();
            self.inner.listener_started.call_once(|| {
                tokio::spawn(postgres::listen_for(pool, "ferry_changes", sender));
            });
        }
        self.inner.changes.subscribe()
    }

    pub async fn get(&self, entity: &Entity, key: &RowKey) -> StoreResult<Option<StoredRow>> {
        read_conn!(self, |conn| rows::get(conn, entity, key))
    }

    pub async fn query(&self, entity: &Entity, query: &RowQuery) -> StoreResult<Vec<StoredRow>> {
        read_conn!(self, |conn| rows::query(conn, entity, query))
    }

    pub async fn count(&self, entity: &Entity, scope: &CompanyScope, filter: Option<&BoundExpr>) -> StoreResult<u64> {
        read_conn!(self, |conn| rows::count(conn, entity, scope, filter))
    }

    /// Everything that changed in `entity` after version `since` (deletes included), at most
    /// `limit` changes (capped at [`CHANGES_LIMIT_MAX`]).
    pub async fn changes_since(
        &self,
        entity: &Entity,
        scope: &CompanyScope,
        since: i64,
        limit: usize,
    ) -> StoreResult<Changes> {
        let limit = limit.clamp(1, CHANGES_LIMIT_MAX);
        read_conn!(self, |conn| rows::changes_since(conn, entity, scope, since, limit))
    }

    pub async fn upsert_app(&self, app: &App) -> StoreResult<()> {
        write_tx!(self, |conn| apps::upsert_app(conn, app));
        Ok(())
    }

    pub async fn get_app(&self, client_id: &str) -> StoreResult<Option<App>> {
        read_conn!(self, |conn| apps::get_app(conn, client_id))
    }

    pub async fn list_apps(&self) -> StoreResult<Vec<App>> {
        read_conn!(self, |conn| apps::list_apps(conn))
    }

    pub async fn delete_app(&self, client_id: &str) -> StoreResult<bool> {
        Ok(write_tx!(self, |conn| apps::delete_app(conn, client_id)))
    }

    pub async fn insert_signing_key(&self, key: &SigningKey) -> StoreResult<()> {
        write_tx!(self, |conn| apps::insert_signing_key(conn, key));
        Ok(())
    }

    /// All signing keys, newest first.
    pub async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        read_conn!(self, |conn| apps::list_signing_keys(conn))
    }

    /// Retires every active signing key except `keep_kid`.
    pub async fn retire_signing_keys(&self, keep_kid: &str, at: DateTime<Utc>) -> StoreResult<u64> {
        Ok(write_tx!(self, |conn| apps::retire_signing_keys(conn, keep_kid, at)))
    }

    /// Deletes keys retired before `retired_before` (their tokens have all expired).
    pub async fn purge_signing_keys(&self, retired_before: DateTime<Utc>) -> StoreResult<u64> {
        Ok(write_tx!(self, |conn| apps::purge_signing_keys(conn, retired_before)))
    }

    pub async fn upsert_profile(&self, profile: &ProfileRecord) -> StoreResult<()> {
        write_tx!(self, |conn| replication::upsert_profile(conn, profile));
        Ok(())
    }

    pub async fn get_profile(&self, id: &str) -> StoreResult<Option<ProfileRecord>> {
        read_conn!(self, |conn| replication::get_profile(conn, id))
    }

    pub async fn list_profiles(&self) -> StoreResult<Vec<ProfileRecord>> {
        read_conn!(self, |conn| replication::list_profiles(conn))
    }

    /// Deletes a profile with its status, retry set and failure log.
    pub async fn delete_profile(&self, id: &str) -> StoreResult<bool> {
        Ok(write_tx!(self, |conn| replication::delete_profile(conn, id)))
    }

    pub async fn put_replication_status(&self, status: &EntityStatusRecord) -> StoreResult<()> {
        write_tx!(self, |conn| replication::put_status(conn, status));
        Ok(())
    }

    pub async fn replication_status(&self, profile_id: &str) -> StoreResult<Vec<EntityStatusRecord>> {
        read_conn!(self, |conn| replication::list_status(conn, profile_id))
    }

    /// Puts a record into the retry set and appends a failure-log line.
    pub async fn record_replication_failure(&self, failure: &FailureRecord) -> StoreResult<()> {
        let now = self.now();
        write_tx!(self, |conn| replication::record_failure(conn, failure, now));
        Ok(())
    }

    /// Unresolved failures of a profile (only those due by `due_by`, when given).
    pub async fn pending_replication_failures(
        &self,
        profile_id: &str,
        due_by: Option<DateTime<Utc>>,
        limit: u64,
    ) -> StoreResult<Vec<FailureRecord>> {
        read_conn!(self, |conn| replication::pending_failures(conn, profile_id, due_by, limit))
    }

    pub async fn resolve_replication_failure(
        &self,
        profile_id: &str,
        entity: &str,
        record_id: uuid::Uuid,
    ) -> StoreResult<()> {
        let now = self.now();
        write_tx!(self, |conn| replication::resolve_failure(conn, profile_id, entity, record_id, now));
        Ok(())
    }

    /// Makes every unresolved failure of a profile due now; answers how many there are.
    pub async fn retry_replication_failures_now(&self, profile_id: &str) -> StoreResult<u64> {
        let now = self.now();
        Ok(write_tx!(self, |conn| replication::retry_failures_now(conn, profile_id, now)))
    }

    /// The newest `limit` failure-log lines of a profile, newest first.
    pub async fn replication_failure_log(&self, profile_id: &str, limit: u64) -> StoreResult<Vec<FailureLogLine>> {
        read_conn!(self, |conn| replication::failure_log(conn, profile_id, limit))
    }

    /// Takes or renews a lease; answers whether `holder` holds it until `expires_at`.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(write_tx!(self, |conn| replication::acquire_lease(conn, name, holder, now, expires_at)))
    }

    pub async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        write_tx!(self, |conn| replication::release_lease(conn, name, holder));
        Ok(())
    }

    pub async fn get_setting(&self, name: &str) -> StoreResult<Option<String>> {
        read_conn!(self, |conn| replication::get_setting(conn, name))
    }

    pub async fn put_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        write_tx!(self, |conn| replication::put_setting(conn, name, value));
        Ok(())
    }
}
