//! [`Target`]: one connected target database and the operations the engine runs on it. Each
//! operation picks the dialect and the driver connection (or transaction) and runs the
//! dialect-independent code of `schema.rs` and `apply.rs` on it.

use crate::apply::{self, ApplyContext, CopiedBy};
use crate::dialect::Dialect;
use crate::error::{ApplyError, TargetError};
use crate::layout::{EntityLayout, Names, entity_layout};
use crate::mysql::MySql;
use crate::postgres::Postgres;
use crate::sqlite::Sqlite;
use crate::{ApplyOutcome, Batch, Check, SchemaChanges, TargetSpec, metadata, schema};
use ferry_domain::{Checkpoint, SharedClock, TargetKind, validate_identifier_part};
use ferry_model::{Catalog, Entity};
use ferry_sql::{Conn, Pool, PoolOptions, SqliteOptions};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use uuid::Uuid;

const POOL_CONNECTIONS_MAX: u32 = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest schema name or table prefix accepted here (profiles apply DES's stricter limits).
const NAME_PART_LENGTH_MAX: usize = 64;

/// A connected target database (a small pool), with the profile's schema, prefix and
/// DeleteLog setting.
pub struct Target {
    pool: Pool,
    dialect: &'static dyn Dialect,
    clock: SharedClock,
    names: Names,
    delete_log: bool,
    /// Per entity logical name: lookup field index → target logical name (from the catalog
    /// `ensure_schema` saw, else from TargetMetadata).
    lookup_targets: RwLock<HashMap<String, Arc<HashMap<usize, String>>>>,
    /// Tables whose initial copy found rows already there: their chunks skip the bulk path.
    upsert_only: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("kind", &self.kind())
            .field("schema", &self.names.schema)
            .field("table_prefix", &self.names.prefix)
            .field("write_delete_log", &self.delete_log)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Connects (pool of at most 4, 10 s to connect). SQLite files are created if missing and
    /// run in WAL mode. Checks schema and prefix, and finds MySQL's current database when no
    /// schema is given.
    pub async fn connect(spec: &TargetSpec, clock: SharedClock) -> Result<Target, TargetError> {
        if !spec.table_prefix.is_empty() {
            validate_identifier_part("TablePrefix", &spec.table_prefix, NAME_PART_LENGTH_MAX)
                .map_err(TargetError::Config)?;
        }
        if let Some(schema) = &spec.schema {
            validate_identifier_part("Schema", schema, NAME_PART_LENGTH_MAX).map_err(TargetError::Config)?;
        }
        let url = &spec.connection_string;
        let options = PoolOptions { max_connections: POOL_CONNECTIONS_MAX, acquire_timeout: CONNECT_TIMEOUT };
        let (pool, dialect, schema): (Pool, &'static dyn Dialect, String) = match spec.kind {
            TargetKind::Postgres => {
                let pool = Pool::postgres(url, options, "ferry-replicate").await?;
                (pool, &Postgres, spec.schema.clone().unwrap_or_else(|| spec.kind.default_schema().into()))
            }
            TargetKind::MySql => {
                let pool = Pool::mysql(url, options).await?;
                let schema = match &spec.schema {
                    Some(schema) => schema.clone(),
                    None => {
                        let mut conn = pool.acquire().await?;
                        let found = conn.fetch("SELECT DATABASE()", (), &[ferry_sql::ColType::Text]).await?;
                        found.first().and_then(|r| r[0].to_text()).ok_or_else(|| {
                            TargetError::Config(
                                "the MySQL connection string names no database and the profile no schema".into(),
                            )
                        })?
                    }
                };
                (pool, &MySql, schema)
            }
            TargetKind::Sqlite => {
                if spec.schema.as_deref().is_some_and(|s| s != "main") {
                    return Err(TargetError::Config("SQLite targets have one schema, main".into()));
                }
                let pool = Pool::sqlite(url, options, SqliteOptions::default()).await?;
                (pool, &Sqlite, "main".to_string())
            }
        };
        Ok(Target {
            pool,
            dialect,
            clock,
            names: Names { prefix: spec.table_prefix.clone(), schema },
            delete_log: spec.write_delete_log,
            lookup_targets: RwLock::new(HashMap::new()),
            upsert_only: Mutex::new(HashSet::new()),
        })
    }

    pub fn kind(&self) -> TargetKind {
        self.dialect().kind()
    }

    fn dialect(&self) -> &'static dyn Dialect {
        self.dialect
    }

    /// Now, to the microsecond (what all three targets keep).
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Runs `op` on a pooled connection.
    async fn with_conn<T>(&self, op: impl AsyncFnOnce(&mut Conn) -> Result<T, TargetError>) -> Result<T, TargetError> {
        let mut conn = self.pool.acquire().await?;
        op(&mut conn).await
    }

    /// Runs `op` in a transaction committed when it succeeds (SQLite takes the write lock up
    /// front, so no reader-to-writer upgrade can fail).
    async fn with_tx<T>(&self, op: impl AsyncFnOnce(&mut Conn) -> Result<T, TargetError>) -> Result<T, TargetError> {
        let started = std::time::Instant::now();
        let mut conn = self.pool.begin().await?;
        let begun = started.elapsed();
        let out = op(&mut conn).await?;
        let done = started.elapsed();
        conn.commit().await?;
        tracing::trace!(
            begin_ms = begun.as_secs_f64() * 1e3,
            work_ms = (done - begun).as_secs_f64() * 1e3,
            commit_ms = (started.elapsed() - done).as_secs_f64() * 1e3,
            "target transaction"
        );
        Ok(out)
    }

    /// `<prefix>_<logical_name>`, or `<logical_name>` without a prefix (unquoted).
    pub fn table_name(&self, entity: &Entity) -> String {
        self.names.entity_table(entity)
    }

    fn layout(&self, entity: &Entity) -> Result<EntityLayout, String> {
        entity_layout(entity, self.table_name(entity), self.dialect().max_identifier_len())
    }

    /// Readiness checks, each reported separately: "connect", "create table",
    /// "insert/update/delete", "alter table" (on a throw-away probe table), then one
    /// "table <name>" per entity: fine when absent or created by ferry for this prefix, a
    /// collision when someone else's table has the name.
    pub async fn check(&self, entities: &[Arc<Entity>]) -> Vec<Check> {
        let tables: Vec<String> = entities.iter().map(|e| self.table_name(e)).collect();
        let connected = self.with_conn(async |c| Ok(c.execute("SELECT 1", ()).await?)).await;
        let mut checks = vec![match &connected {
            Ok(_) => Check { name: "connect".into(), ok: true, detail: format!("connected ({})", self.kind().name()) },
            Err(e) => Check { name: "connect".into(), ok: false, detail: e.to_string() },
        }];
        let not_run = |name: String| Check { name, ok: false, detail: "not run: cannot connect".into() };
        let probe_names = ["create table", "insert/update/delete", "alter table"];
        if connected.is_err() {
            checks.extend(probe_names.iter().map(|n| not_run(n.to_string())));
            checks.extend(tables.iter().map(|t| not_run(format!("table {t}"))));
            return checks;
        }
        match self.with_conn(async |c| Ok(schema::probe(c, self.dialect, &self.names).await)).await {
            Ok(probe) => checks.extend(probe),
            Err(e) => checks.extend(probe_names.iter().map(|n| Check {
                name: n.to_string(),
                ok: false,
                detail: e.to_string(),
            })),
        }
        match self.with_conn(async |c| schema::entity_checks(c, self.dialect, &self.names, &tables).await).await {
            Ok(entity_checks) => checks.extend(entity_checks),
            Err(e) => checks.extend(tables.iter().map(|t| Check {
                name: format!("table {t}"),
                ok: false,
                detail: e.to_string(),
            })),
        }
        checks
    }

    /// Creates the schema, ferry's tables and the entity tables of `entities`, adds missing
    /// columns and widens grown ones (never drops or narrows), and refills the metadata tables
    /// in one transaction. Entities whose table cannot follow (a kind change, a name clash, a
    /// foreign table of the same name) are reported in `incompatible` and left alone.
    pub async fn ensure_schema(
        &self,
        catalog: &Catalog,
        entities: &[Arc<Entity>],
    ) -> Result<SchemaChanges, TargetError> {
        let layouts: Vec<Result<EntityLayout, (String, String)>> =
            entities.iter().map(|e| self.layout(e).map_err(|reason| (e.logical_name.clone(), reason))).collect();
        let changes = self
            .with_conn(async |c| {
                schema::evolve(c, self.dialect, &self.names, &layouts, self.delete_log, self.now()).await
            })
            .await?;

        let described: Vec<(&Entity, &EntityLayout)> =
            entities.iter().zip(&layouts).filter_map(|(e, l)| l.as_ref().ok().map(|l| (e.as_ref(), l))).collect();
        let rows = metadata::rows(catalog, &described);
        let tables = metadata::tables(&self.names);
        self.with_tx(async |c| schema::refill_metadata(c, self.dialect, &self.names.schema, &tables, rows).await)
            .await?;

        let mut cache = self.lookup_targets.write().unwrap_or_else(|e| e.into_inner());
        for entity in entities {
            let targets = metadata::lookup_targets(catalog, entity).into_iter().map(|(i, (t, _))| (i, t)).collect();
            cache.insert(entity.logical_name.clone(), Arc::new(targets));
        }
        Ok(changes)
    }

    /// Drops and recreates the entity's table (after an incompatible change) and deletes its
    /// checkpoints. Refuses a table of that name that ferry did not create.
    pub async fn reset_entity(&self, entity: &Entity) -> Result<(), TargetError> {
        let layout =
            self.layout(entity).map_err(|r| TargetError::Rejected(format!("entity {}: {r}", entity.logical_name)))?;
        self.with_tx(async |c| schema::reset(c, self.dialect, &self.names, &layout, self.now()).await).await
    }

    pub async fn load_checkpoints(&self, profile_id: &str) -> Result<Vec<Checkpoint>, TargetError> {
        self.with_conn(async |c| apply::load_checkpoints(c, self.dialect, &self.names, profile_id).await).await
    }

    async fn targets_of(
        &self,
        entity: &Entity,
        layout: &EntityLayout,
    ) -> Result<Arc<HashMap<usize, String>>, TargetError> {
        if entity.fields.iter().all(|f| f.lookup.is_none()) {
            return Ok(Arc::default());
        }
        if let Some(found) = self.lookup_targets.read().unwrap_or_else(|e| e.into_inner()).get(&entity.logical_name) {
            return Ok(found.clone());
        }
        let recorded = Arc::new(
            self.with_conn(async |c| {
                apply::recorded_lookup_targets(c, self.dialect, &self.names, layout, &entity.fields).await
            })
            .await?,
        );
        let mut cache = self.lookup_targets.write().unwrap_or_else(|e| e.into_inner());
        cache.insert(entity.logical_name.clone(), recorded.clone());
        Ok(recorded)
    }

    /// Writes `batch` and `checkpoint` in one target transaction: version-guarded upserts (an
    /// older version never overwrites a newer one; replays change nothing), guarded deletes with
    /// DeleteLog rows when enabled, then the checkpoint row. On error nothing was written.
    pub async fn apply(
        &self,
        entity: &Entity,
        batch: &Batch,
        checkpoint: &Checkpoint,
    ) -> Result<ApplyOutcome, ApplyError> {
        let (outcome, _) = self.write(entity, batch, checkpoint, None).await?;
        Ok(outcome)
    }

    /// Writes one chunk of the initial copy and `checkpoint` in one target transaction, as
    /// [`Target::apply`] does, but by the target's bulk path (PostgreSQL `COPY`, MySQL plain
    /// multi-row `INSERT`s without reading the table first) as long as none of the rows is in
    /// the table yet. When one is (a resync, a table an earlier profile filled), the chunk is
    /// upserted with the version guard instead, and so are the table's later chunks.
    pub async fn copy(
        &self,
        entity: &Entity,
        batch: &Batch,
        checkpoint: &Checkpoint,
    ) -> Result<ApplyOutcome, ApplyError> {
        let table = self.table_name(entity);
        let bulk = !self.upsert_only.lock().unwrap_or_else(|e| e.into_inner()).contains(&table);
        let (outcome, by) = self.write(entity, batch, checkpoint, Some(bulk)).await?;
        if by == (CopiedBy::Upsert { conflict: true }) {
            tracing::info!(table = %table, "the table already holds copied rows: the initial copy upserts from here on");
            self.upsert_only.lock().unwrap_or_else(|e| e.into_inner()).insert(table);
        }
        Ok(outcome)
    }

    /// Writes `batch` and `checkpoint` in one transaction: upserted ([`apply::apply`]), or as
    /// an initial-copy chunk ([`apply::copy`], with or without its bulk path) when `copy` says
    /// so. A refusal names the value that did not fit when it can.
    async fn write(
        &self,
        entity: &Entity,
        batch: &Batch,
        checkpoint: &Checkpoint,
        copy: Option<bool>,
    ) -> Result<(ApplyOutcome, CopiedBy), ApplyError> {
        let layout =
            self.layout(entity).map_err(|r| ApplyError::Rejected(format!("entity {}: {r}", entity.logical_name)))?;
        let targets = self.targets_of(entity, &layout).await?;
        let ctx = ApplyContext {
            names: &self.names,
            layout: &layout,
            targets: &targets,
            delete_log: self.delete_log,
            now: self.now(),
        };
        let d = self.dialect;
        let written = self
            .with_tx(async |c| match copy {
                Some(bulk) => apply::copy(c, d, &ctx, batch, checkpoint, bulk).await,
                None => Ok((apply::apply(c, d, &ctx, batch, checkpoint).await?, CopiedBy::Upsert { conflict: false })),
            })
            .await;
        match written {
            Ok(out) => Ok(out),
            Err(TargetError::Rejected(message)) => {
                let table = &layout.table.name;
                let columns = self
                    .with_conn(async |c| schema::columns(c, self.dialect, &self.names.schema, table).await)
                    .await
                    .unwrap_or_default();
                let hint =
                    apply::explain_rejection(self.dialect(), &layout, &columns, &batch.upserts).unwrap_or_default();
                Err(ApplyError::Rejected(format!("table {table} refused the batch: {message}{hint}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// (Id, versionnumber) of every row of the entity's table, sorted by Id.
    pub async fn row_versions(&self, entity: &Entity) -> Result<Vec<(Uuid, i64)>, TargetError> {
        let table = self.table_name(entity);
        self.with_conn(async |c| apply::row_versions(c, self.dialect, &self.names, &table).await).await
    }

    pub async fn row_count(&self, entity: &Entity) -> Result<u64, TargetError> {
        let table = self.table_name(entity);
        self.with_conn(async |c| apply::row_count(c, self.dialect, &self.names, &table).await).await
    }

    /// Deletes rows by Id (verify's repair of rows absent from the source); writes no DeleteLog.
    pub async fn delete_rows(&self, entity: &Entity, ids: &[Uuid]) -> Result<u64, TargetError> {
        let table = self.table_name(entity);
        self.with_tx(async |c| apply::delete_rows(c, self.dialect, &self.names, &table, ids).await).await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
