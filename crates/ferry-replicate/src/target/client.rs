//! [`Target`]: one connected target database and the operations the engine runs on it. Each
//! operation picks the dialect and the driver connection (or transaction) and runs the
//! dialect-independent code of `schema.rs` and `apply.rs` on it.

use super::apply::{self, ApplyContext};
use super::dialect::Dialect;
use super::error::{ApplyError, TargetError};
use super::layout::{EntityLayout, Names, entity_layout};
use super::mysql::{self, MySql};
use super::postgres::{self, Postgres};
use super::sqlite::{self, Sqlite};
use super::{ApplyOutcome, Batch, Check, Checkpoint, SchemaChanges, TargetKind, TargetSpec, metadata, schema};
use super::{conn::run, validate_identifier_part};
use chrono::{DateTime, Utc};
use ferry_model::{Catalog, Entity};
use sqlx::{MySqlPool, PgPool, SqlitePool};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use uuid::Uuid;

const POOL_CONNECTIONS_MAX: u32 = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest schema name or table prefix accepted here (profiles apply DES's stricter limits).
const NAME_PART_LENGTH_MAX: usize = 64;

enum Pool {
    Postgres(PgPool),
    MySql(MySqlPool),
    Sqlite(SqlitePool),
}

/// A connected target database (a small pool), with the profile's schema, prefix and
/// DeleteLog setting.
pub struct Target {
    pool: Pool,
    names: Names,
    delete_log: bool,
    /// Per entity logical name: lookup field index → target logical name (from the catalog
    /// `ensure_schema` saw, else from TargetMetadata).
    lookup_targets: RwLock<HashMap<String, Arc<HashMap<usize, String>>>>,
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

/// Runs `$body` (a future using `$c: &mut <driver connection>` and `$d: &dyn Dialect`) on a
/// pooled connection; evaluates to its `Result<_, TargetError>`.
macro_rules! with_conn {
    ($self:ident, |$c:ident, $d:ident| $body:expr) => {
        match &$self.pool {
            Pool::Postgres(pool) => {
                async {
                    let mut conn = pool.acquire().await?;
                    let ($c, $d): (_, &dyn Dialect) = (&mut *conn, &Postgres);
                    $body.await
                }
                .await
            }
            Pool::MySql(pool) => {
                async {
                    let mut conn = pool.acquire().await?;
                    let ($c, $d): (_, &dyn Dialect) = (&mut *conn, &MySql);
                    $body.await
                }
                .await
            }
            Pool::Sqlite(pool) => {
                async {
                    let mut conn = pool.acquire().await?;
                    let ($c, $d): (_, &dyn Dialect) = (&mut *conn, &Sqlite);
                    $body.await
                }
                .await
            }
        }
    };
}

/// Like `with_conn!`, in a transaction committed when `$body` succeeds (SQLite takes the
/// write lock up front, so no reader-to-writer upgrade can fail).
macro_rules! with_tx {
    ($self:ident, |$c:ident, $d:ident| $body:expr) => {
        match &$self.pool {
            Pool::Postgres(pool) => {
                async {
                    let mut tx = pool.begin().await?;
                    let ($c, $d): (_, &dyn Dialect) = (&mut *tx, &Postgres);
                    let out = $body.await?;
                    tx.commit().await?;
                    Ok::<_, TargetError>(out)
                }
                .await
            }
            Pool::MySql(pool) => {
                async {
                    let mut tx = pool.begin().await?;
                    let ($c, $d): (_, &dyn Dialect) = (&mut *tx, &MySql);
                    let out = $body.await?;
                    tx.commit().await?;
                    Ok::<_, TargetError>(out)
                }
                .await
            }
            Pool::Sqlite(pool) => {
                async {
                    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                    let ($c, $d): (_, &dyn Dialect) = (&mut *tx, &Sqlite);
                    let out = $body.await?;
                    tx.commit().await?;
                    Ok::<_, TargetError>(out)
                }
                .await
            }
        }
    };
}

/// Now, to the microsecond (what all three targets keep).
fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

impl Target {
    /// Connects (pool of at most 4, 10 s to connect). SQLite files are created if missing and
    /// run in WAL mode. Checks schema and prefix, and finds MySQL's current database when no
    /// schema is given.
    pub async fn connect(spec: &TargetSpec) -> Result<Target, TargetError> {
        if !spec.table_prefix.is_empty() {
            validate_identifier_part("TablePrefix", &spec.table_prefix, NAME_PART_LENGTH_MAX)
                .map_err(TargetError::Config)?;
        }
        if let Some(schema) = &spec.schema {
            validate_identifier_part("Schema", schema, NAME_PART_LENGTH_MAX).map_err(TargetError::Config)?;
        }
        let url = &spec.connection_string;
        let (pool, schema) = match spec.kind {
            TargetKind::Postgres => {
                let pool = postgres::connect(url, POOL_CONNECTIONS_MAX, CONNECT_TIMEOUT).await?;
                (Pool::Postgres(pool), spec.schema.clone().unwrap_or_else(|| spec.kind.default_schema().into()))
            }
            TargetKind::MySql => {
                let pool = mysql::connect(url, POOL_CONNECTIONS_MAX, CONNECT_TIMEOUT).await?;
                let schema = match &spec.schema {
                    Some(schema) => schema.clone(),
                    None => sqlx::query_scalar::<_, Option<String>>("SELECT DATABASE()")
                        .fetch_one(&pool)
                        .await?
                        .ok_or_else(|| {
                            TargetError::Config(
                                "the MySQL connection string names no database and the profile no schema".into(),
                            )
                        })?,
                };
                (Pool::MySql(pool), schema)
            }
            TargetKind::Sqlite => {
                if spec.schema.as_deref().is_some_and(|s| s != "main") {
                    return Err(TargetError::Config("SQLite targets have one schema, main".into()));
                }
                let pool = sqlite::connect(url, POOL_CONNECTIONS_MAX, CONNECT_TIMEOUT).await?;
                (Pool::Sqlite(pool), "main".to_string())
            }
        };
        Ok(Target {
            pool,
            names: Names { prefix: spec.table_prefix.clone(), schema },
            delete_log: spec.write_delete_log,
            lookup_targets: RwLock::new(HashMap::new()),
        })
    }

    pub fn kind(&self) -> TargetKind {
        self.dialect().kind()
    }

    fn dialect(&self) -> &'static dyn Dialect {
        match self.pool {
            Pool::Postgres(_) => &Postgres,
            Pool::MySql(_) => &MySql,
            Pool::Sqlite(_) => &Sqlite,
        }
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
        let connected = with_conn!(self, |c, _d| run(c, "SELECT 1"));
        let mut checks = vec![match &connected {
            Ok(_) => {
                Check { name: "connect".into(), ok: true, detail: format!("connected ({})", self.kind().as_str()) }
            }
            Err(e) => Check { name: "connect".into(), ok: false, detail: e.to_string() },
        }];
        let not_run = |name: String| Check { name, ok: false, detail: "not run: cannot connect".into() };
        let probe_names = ["create table", "insert/update/delete", "alter table"];
        if connected.is_err() {
            checks.extend(probe_names.iter().map(|n| not_run(n.to_string())));
            checks.extend(tables.iter().map(|t| not_run(format!("table {t}"))));
            return checks;
        }
        match with_conn!(self, |c, d| async { Ok::<_, TargetError>(schema::probe(c, d, &self.names).await) }) {
            Ok(probe) => checks.extend(probe),
            Err(e) => checks.extend(probe_names.iter().map(|n| Check {
                name: n.to_string(),
                ok: false,
                detail: e.to_string(),
            })),
        }
        match with_conn!(self, |c, d| schema::entity_checks(c, d, &self.names, &tables)) {
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
        let changes = with_conn!(self, |c, d| schema::evolve(c, d, &self.names, &layouts, self.delete_log, now()))?;

        let described: Vec<(&Entity, &EntityLayout)> =
            entities.iter().zip(&layouts).filter_map(|(e, l)| l.as_ref().ok().map(|l| (e.as_ref(), l))).collect();
        let rows = metadata::rows(catalog, &described);
        let tables = metadata::tables(&self.names);
        with_tx!(self, |c, d| schema::refill_metadata(c, d, &self.names.schema, &tables, rows))?;

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
        with_tx!(self, |c, d| schema::reset(c, d, &self.names, &layout, now()))
    }

    pub async fn load_checkpoints(&self, profile_id: &str) -> Result<Vec<Checkpoint>, TargetError> {
        with_conn!(self, |c, d| apply::load_checkpoints(c, d, &self.names, profile_id))
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
        let recorded = Arc::new(with_conn!(self, |c, d| apply::recorded_lookup_targets(
            c,
            d,
            &self.names,
            layout,
            &entity.fields
        ))?);
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
        let layout =
            self.layout(entity).map_err(|r| ApplyError::Rejected(format!("entity {}: {r}", entity.logical_name)))?;
        let targets = self.targets_of(entity, &layout).await?;
        let ctx = ApplyContext {
            names: &self.names,
            layout: &layout,
            targets: &targets,
            delete_log: self.delete_log,
            now: now(),
        };
        match with_tx!(self, |c, d| apply::apply(c, d, &ctx, batch, checkpoint)) {
            Ok(outcome) => Ok(outcome),
            Err(TargetError::Rejected(message)) => {
                let table = &layout.table.name;
                let columns =
                    with_conn!(self, |c, d| schema::columns(c, d, &self.names.schema, table)).unwrap_or_default();
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
        with_conn!(self, |c, d| apply::row_versions(c, d, &self.names, &table))
    }

    pub async fn row_count(&self, entity: &Entity) -> Result<u64, TargetError> {
        let table = self.table_name(entity);
        with_conn!(self, |c, d| apply::row_count(c, d, &self.names, &table))
    }

    /// Deletes rows by Id (verify's repair of rows absent from the source); writes no DeleteLog.
    pub async fn delete_rows(&self, entity: &Entity, ids: &[Uuid]) -> Result<u64, TargetError> {
        let table = self.table_name(entity);
        with_tx!(self, |c, d| apply::delete_rows(c, d, &self.names, &table, ids))
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Postgres(pool) => pool.close().await,
            Pool::MySql(pool) => pool.close().await,
            Pool::Sqlite(pool) => pool.close().await,
        }
    }
}
