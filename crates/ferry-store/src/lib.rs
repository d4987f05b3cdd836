//! ferry's storage: one interface ([`Store`]) over two backends, embedded SQLite and
//! PostgreSQL. All SQL against ferry's own database lives in this crate, written once over the
//! driver seam of `ferry-sql`.
//!
//! Layout: `backend.rs` opens the pools and migrates (`migrations/<backend>/`); `sql.rs` writes
//! entity SQL for both dialects; `rows.rs` (reads and writes of entity rows), `upsert.rs`
//! (set-based import by natural key), `schema.rs` (entity tables), `apps.rs` (client apps and
//! signing keys), `definitions.rs` (data projects and recurring jobs), `queue.rs` (the import
//! queue's state transitions), `messages.rs` (messages, entity results, errors), and
//! `replication.rs` (profiles, status, retry set, leases, settings) hold the operations. On
//! SQLite, `commit_group.rs` commits concurrent writes together and `checkpointer.rs` copies the
//! WAL into the database file off the writer's path.
//! `literals.rs` spells enumerations as SQL literals and `persisted.rs` writes the versioned
//! JSON of definitions. The façade is split by area: this file (rows, apps, keys),
//! `imports_facade.rs` and `replication_facade.rs`. The conformance suite in
//! `tests/conformance` runs the same tests on both backends.

mod apps;
mod backend;
mod checkpointer;
mod commit_group;
mod definitions;
mod delivery;
mod error;
mod exports;
mod exports_facade;
mod imports_facade;
mod inline_files;
mod literals;
mod messages;
mod model;
mod peers;
mod persisted;
mod queue;
mod replication;
mod replication_facade;
mod retention;
mod rows;
mod schema;
mod sql;
#[cfg(feature = "testing")]
pub mod testing;
mod upsert;
mod upsert_sqlite;

pub use backend::redact_url;
pub use delivery::AckOutcome;
pub use error::{StoreError, StoreResult};
pub use imports_facade::{AtomicBatch, AtomicRefusal, Enqueued};
pub use inline_files::{INLINE_FILE_MAX, InlineFile};
pub use model::{App, AppOrigin, RowQuery, RunRecords, SigningKey};
pub use queue::ClaimLimits;
pub use replication::StoredProfile;
pub use schema::SchemaReport;
pub use upsert::{BatchCounts, Fence, LookupMiss};

use chrono::{DateTime, Utc};
use ferry_domain::{Changes, CompanyScope, NewRow, RowKey, SharedClock, StoredRow};
use ferry_model::{Catalog, Entity, Value};
use ferry_query::BoundExpr;
use ferry_sql::{Conn, Dialect, Pool};
use std::sync::{Arc, RwLock};

/// Most changes one [`Store::changes_since`] call returns.
pub const CHANGES_LIMIT_MAX: usize = 50_000;

struct Inner {
    writer: Pool,
    /// SQLite: concurrent writes share one transaction and one commit (PostgreSQL commits each
    /// write on its own and groups the WAL flushes itself).
    group: Option<commit_group::CommitGroup>,
    reader: Pool,
    /// SQLite: reads of entity rows, stepped on blocking threads (see [`ferry_sql::SqliteReader`]).
    rows_reader: Option<ferry_sql::SqliteReader>,
    catalog: RwLock<Arc<Catalog>>,
    clock: SharedClock,
    /// Bumped after every committed entity write (and, on PostgreSQL, every write of any node).
    changes: tokio::sync::watch::Sender<u64>,
    listener_started: std::sync::Once,
    /// Bumped when the import queue may have runnable work (PostgreSQL: by any node).
    queue_events: tokio::sync::watch::Sender<u64>,
    queue_listener_started: std::sync::Once,
    /// PostgreSQL: notifies the other nodes of entity writes and of queue changes after commit.
    peers: Option<(peers::PeerNotifier, peers::PeerNotifier)>,
    /// Per table: rows inserted since the last statistics refresh, and how many the next waits for.
    inserted_since_analyze: std::sync::Mutex<std::collections::HashMap<String, (u64, u64)>>,
}

/// After this many inserted rows a table's planner statistics are refreshed (PostgreSQL), so
/// that keyset paging uses the key index right after a bulk load instead of waiting for
/// autovacuum; each refresh doubles the rows the next one waits for, so a table loaded from
/// empty is analysed a few times (statistics within a factor of two of its size), not once per
/// 100,000 rows (each `ANALYZE` of a wide table costs about half a second).
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

/// A write whose work is done and whose commit may still be under way (SQLite commits writes in
/// groups): [`durable`](Self::durable) answers its value once it is durable. A writer with more
/// to write prepares it meanwhile. On PostgreSQL the write is durable when this is handed out.
#[must_use = "a write is not known to be durable until `durable` answers"]
pub struct Committing<T> {
    value: T,
    commit: Option<commit_group::CommitWait>,
    /// Told of the change once it is durable (replication waits for that).
    changed: Option<Store>,
}

impl<T> Committing<T> {
    /// A value whose write is durable already.
    pub fn settled(value: T) -> Committing<T> {
        Committing { value, commit: None, changed: None }
    }

    /// Waits until the write is durable; an error means it was rolled back.
    pub async fn durable(self) -> StoreResult<T> {
        if let Some(commit) = self.commit {
            commit.wait().await?;
        }
        if let Some(store) = self.changed {
            store.changed();
        }
        Ok(self.value)
    }
}

impl Store {
    /// Opens a store from a URL: `sqlite://path/to/file.db` or `postgres://…`. Does not migrate.
    /// Every time the store writes or compares against comes from `clock`.
    pub async fn open(url: &str, clock: SharedClock) -> StoreResult<Store> {
        let pools = backend::open(url).await?;
        let group =
            pools.checkpoints.map(|checkpoints| commit_group::CommitGroup::new(pools.writer.clone(), checkpoints));
        let peers = match &pools.writer {
            Pool::Postgres(pool, _) => Some((
                peers::PeerNotifier::start(pool.clone(), "ferry_changes"),
                peers::PeerNotifier::start(pool.clone(), "ferry_queue"),
            )),
            _ => None,
        };
        Ok(Store {
            inner: Arc::new(Inner {
                group,
                writer: pools.writer,
                reader: pools.reader,
                rows_reader: pools.rows,
                catalog: RwLock::new(Arc::new(Catalog::default())),
                clock,
                changes: tokio::sync::watch::channel(0).0,
                listener_started: std::sync::Once::new(),
                queue_events: tokio::sync::watch::channel(0).0,
                queue_listener_started: std::sync::Once::new(),
                peers,
                inserted_since_analyze: std::sync::Mutex::new(std::collections::HashMap::new()),
            }),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.inner.writer.dialect()
    }

    /// The clock the store stamps rows with.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    fn catalog(&self) -> Arc<Catalog> {
        self.inner.catalog.read().expect("catalog lock").clone()
    }

    /// Runs `op` in a write transaction, committed when it succeeds (on SQLite, in a savepoint of
    /// a group of writes that commit together); answers once the commit is durable.
    async fn write<T>(&self, op: impl AsyncFnOnce(&mut Conn) -> StoreResult<T>) -> StoreResult<T> {
        if let Some(group) = &self.inner.group {
            return group.write(op).await;
        }
        let mut conn = self.inner.writer.begin().await?;
        let out = op(&mut conn).await?;
        conn.commit().await?;
        Ok(out)
    }

    /// Runs `op` like [`write`](Self::write), answering as soon as its work is done: on SQLite
    /// with the group's commit still under way (the wait for it is the answer's second half).
    async fn write_committing<T>(
        &self,
        op: impl AsyncFnOnce(&mut Conn) -> StoreResult<T>,
    ) -> StoreResult<(T, Option<commit_group::CommitWait>)> {
        match &self.inner.group {
            Some(group) => group.write_committing(op).await.map(|(value, commit)| (value, Some(commit))),
            None => Ok((self.write(op).await?, None)),
        }
    }

    /// Runs `op`, each of whose statements is a complete write on its own (it may commit alone;
    /// a failure leaves the statements before it done): on SQLite in the commit group like every
    /// write; on PostgreSQL outside a transaction block, every statement committing by itself —
    /// no `BEGIN` and `COMMIT` round trips.
    async fn write_autocommit<T>(&self, op: impl AsyncFnOnce(&mut Conn) -> StoreResult<T>) -> StoreResult<T> {
        if let Some(group) = &self.inner.group {
            return group.write(op).await;
        }
        let mut conn = self.inner.writer.acquire().await?;
        op(&mut conn).await
    }

    /// Runs `op` on a read connection.
    async fn read<T>(&self, op: impl AsyncFnOnce(&mut Conn) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.inner.reader.acquire().await?;
        op(&mut conn).await
    }

    /// Applies the system-table migrations of this backend.
    pub async fn migrate(&self) -> StoreResult<()> {
        backend::migrate(&self.inner.writer).await
    }

    /// Creates or evolves the table of every catalog entity, and makes the catalog the one
    /// lookups are checked against.
    pub async fn prepare_entities(&self, catalog: Arc<Catalog>) -> StoreResult<SchemaReport> {
        let report = self.write(async |conn| schema::prepare(conn, &catalog).await).await?;
        *self.inner.catalog.write().expect("catalog lock") = catalog;
        Ok(report)
    }

    /// Answers when the database answers a trivial query.
    pub async fn ping(&self) -> StoreResult<()> {
        self.read(async |conn| conn.execute("SELECT CAST(1 AS BIGINT)", ()).await.map_err(StoreError::from))
            .await
            .map(|_| ())
    }

    pub async fn close(&self) {
        if let Some(group) = &self.inner.group {
            group.close().await;
        }
        self.inner.reader.close().await;
        self.inner.writer.close().await;
    }

    /// The newest committed change version.
    pub async fn current_version(&self) -> StoreResult<i64> {
        self.read(async |conn| rows::current_version(conn).await).await
    }

    /// Inserts rows in one transaction; fails as a whole if any key exists already or any
    /// lookup names a missing record.
    pub async fn insert(&self, entity: &Entity, rows: Vec<NewRow>) -> StoreResult<Vec<StoredRow>> {
        let catalog = self.catalog();
        let now = self.now();
        let one_row = rows.len() == 1;
        let insert = async |conn: &mut Conn| rows::insert(conn, &catalog, entity, rows, now).await;
        // One row is one writing statement after the lookup reads: it commits by itself.
        let stored = if one_row { self.write_autocommit(insert).await? } else { self.write(insert).await? };
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
        let updated = self.write(async |conn| rows::update(conn, &catalog, entity, key, changes, now).await).await?;
        self.changed();
        Ok(updated)
    }

    /// Deletes one row, leaving a tombstone; answers whether the key existed.
    pub async fn delete(&self, entity: &Entity, key: &RowKey) -> StoreResult<bool> {
        let now = self.now();
        let deleted = self.write(async |conn| rows::delete(conn, entity, key, now).await).await?;
        self.changed();
        Ok(deleted)
    }

    /// Reads one row by its GUID `Id`.
    pub async fn get_by_id(&self, entity: &Entity, id: uuid::Uuid) -> StoreResult<Option<StoredRow>> {
        self.read(async |conn| rows::get_by_id(conn, entity, id).await).await
    }

    /// `(Id, version)` of every row of `entity`, ordered by `Id`.
    pub async fn row_versions(&self, entity: &Entity) -> StoreResult<Vec<(uuid::Uuid, i64)>> {
        self.read(async |conn| rows::row_versions(conn, entity).await).await
    }

    /// Refreshes a PostgreSQL table's statistics in the background once enough rows arrived.
    fn count_inserts(&self, entity: &Entity, rows: u64) {
        let Pool::Postgres(pool, _) = &self.inner.writer else { return };
        let table = sql::table_name(entity);
        let due = {
            let mut counts = self.inner.inserted_since_analyze.lock().expect("insert counts");
            let (count, threshold) = counts.entry(table.clone()).or_insert((0, ANALYZE_AFTER_INSERTED_ROWS));
            *count += rows;
            let due = *count >= *threshold;
            if due {
                *count = 0;
                *threshold = threshold.saturating_mul(2);
            }
            due
        };
        if due {
            let pool = pool.clone();
            tokio::spawn(async move {
                let statement = format!("ANALYZE {}", Dialect::Postgres.quote(&table));
                if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await {
                    tracing::warn!(error = %e, table = %table, "cannot refresh table statistics");
                }
            });
        }
    }

    /// After a committed entity write: wakes local subscribers, and those of other nodes.
    fn changed(&self) {
        if let Some((changes, _)) = &self.inner.peers {
            changes.poke();
        }
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees a new value after each committed entity write — on PostgreSQL,
    /// by any node (LISTEN/NOTIFY). Replication waits on it instead of polling.
    pub fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        if let Pool::Postgres(pool, _) = &self.inner.writer {
            let pool = pool.clone();
            let sender = self.inner.changes.clone();
            self.inner.listener_started.call_once(|| {
                tokio::spawn(backend::listen_for(pool, "ferry_changes", sender));
            });
        }
        self.inner.changes.subscribe()
    }

    pub async fn get(&self, entity: &Entity, key: &RowKey) -> StoreResult<Option<StoredRow>> {
        self.read(async |conn| rows::get(conn, entity, key).await).await
    }

    pub async fn query(&self, entity: &Entity, query: &RowQuery) -> StoreResult<Vec<StoredRow>> {
        let (table, sql, types) = rows::select(entity, self.dialect(), query);
        let rows = match &self.inner.rows_reader {
            Some(reader) => reader.query(sql, &types).await?,
            None => self.read(async |conn| Ok(conn.query(sql, &types).await?)).await?,
        };
        rows.into_iter().map(|r| table.decode(r)).collect()
    }

    pub async fn count(&self, entity: &Entity, scope: &CompanyScope, filter: Option<&BoundExpr>) -> StoreResult<u64> {
        self.read(async |conn| rows::count(conn, entity, scope, filter).await).await
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
        self.read(async |conn| rows::changes_since(conn, entity, scope, since, limit).await).await
    }

    /// Up to `limit` deletes of `entity` in `scope` with versions above `since` and at most
    /// `upto`, in version order (an export's delete list).
    pub async fn deleted_between(
        &self,
        entity: &Entity,
        scope: &CompanyScope,
        since: i64,
        upto: i64,
        limit: usize,
    ) -> StoreResult<Vec<ferry_domain::Tombstone>> {
        let company = match (scope, entity.company_specific) {
            (CompanyScope::One(c), true) => Some(c.clone()),
            _ => None,
        };
        self.read(async |conn| rows::deleted_between(conn, entity, company.as_deref(), since, upto, limit).await).await
    }

    pub async fn upsert_app(&self, app: &App) -> StoreResult<()> {
        self.write(async |conn| apps::upsert_app(conn, app).await).await
    }

    pub async fn get_app(&self, client_id: &str) -> StoreResult<Option<App>> {
        self.read(async |conn| apps::get_app(conn, client_id).await).await
    }

    pub async fn list_apps(&self) -> StoreResult<Vec<App>> {
        self.read(async |conn| apps::list_apps(conn).await).await
    }

    pub async fn delete_app(&self, client_id: &str) -> StoreResult<bool> {
        self.write(async |conn| apps::delete_app(conn, client_id).await).await
    }

    pub async fn insert_signing_key(&self, key: &SigningKey) -> StoreResult<()> {
        self.write(async |conn| apps::insert_signing_key(conn, key).await).await
    }

    /// All signing keys, newest first.
    pub async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        self.read(async |conn| apps::list_signing_keys(conn).await).await
    }

    /// Retires every active signing key except `keep_kid`.
    pub async fn retire_signing_keys(&self, keep_kid: &str, at: DateTime<Utc>) -> StoreResult<u64> {
        self.write(async |conn| apps::retire_signing_keys(conn, keep_kid, at).await).await
    }

    /// Deletes keys retired before `retired_before` (their tokens have all expired).
    pub async fn purge_signing_keys(&self, retired_before: DateTime<Utc>) -> StoreResult<u64> {
        self.write(async |conn| apps::purge_signing_keys(conn, retired_before).await).await
    }
}
