//! [`Pool`]: connections to one database, on any of the three drivers, with the session settings
//! ferry relies on (SQLite in WAL mode with full fsync, MySQL in strict mode and UTC). A
//! connection is checked (pinged) before it is handed out only when it sat idle for a while.

use crate::conn::Conn;
use crate::dialect::Dialect;
use crate::error::{SqlError, SqlErrorKind};
use crate::pg_conns::PgConns;
use sqlx::Executor;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

/// How many connections a pool keeps and how long a caller waits for one.
#[derive(Clone, Copy, Debug)]
pub struct PoolOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

/// What a SQLite pool is for.
#[derive(Clone, Copy, Debug, Default)]
pub struct SqliteOptions {
    /// Readers never write; a writer pool of one connection queues writers (SQLite has one).
    pub read_only: bool,
    /// Page cache per connection, in KiB.
    pub cache_kib: Option<u32>,
    /// WAL pages after which a commit also checkpoints (SQLite's default: 1,000).
    pub wal_autocheckpoint_pages: Option<u32>,
}

/// Connections to one database.
#[derive(Clone, Debug)]
pub enum Pool {
    /// On PostgreSQL, statements and transactions run on ferry's own connections (see
    /// `pg_conns.rs`); sqlx's pool serves migrations, `LISTEN` and background statements.
    Postgres(PgPool, PgConns),
    MySql(MySqlPool),
    Sqlite(SqlitePool),
}

/// A connection idle for at least this long is pinged before it is handed out; one used more
/// recently is handed out as it is. sqlx's default pings on every acquire — a round trip per
/// transaction or read, a large share of a small one. A connection that broke since its last
/// use fails its first statement instead, with an error callers treat as transient.
pub(crate) const PING_AFTER_IDLE: Duration = Duration::from_secs(5);

/// Pings `conn` if it was idle for [`PING_AFTER_IDLE`] (sqlx's `before_acquire` hook; an error
/// discards the connection and the pool tries another).
fn ping_if_idle<C: sqlx::Connection>(
    conn: &mut C,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> futures::future::BoxFuture<'_, Result<bool, sqlx::Error>> {
    Box::pin(async move {
        if meta.idle_for >= PING_AFTER_IDLE {
            conn.ping().await?;
        }
        Ok(true)
    })
}

/// Prepared statements a PostgreSQL connection keeps (sqlx keeps 100). A statement not kept is
/// prepared again at its next use, one more round trip, and an import over fifty entities already
/// uses more than a hundred shapes (each entity's read of existing rows, its upsert).
const STATEMENT_CACHE: usize = 400;

/// Connections of sqlx's PostgreSQL pool (migrations, `LISTEN`, background statements); the
/// statements of `Conn`s run on [`PgConns`].
const SQLX_POSTGRES_CONNECTIONS_MAX: u32 = 6;

/// The same for SQLite, smaller: its batch statements bind thousands of parameters each, and
/// every batch size kept holds its compiled program (up to ~1 MiB), so this bounds that memory.
const SQLITE_STATEMENT_CACHE: usize = 200;

fn bad_url(what: &str, e: impl std::fmt::Display) -> SqlError {
    SqlError {
        kind: SqlErrorKind::Configuration,
        message: format!("invalid {what} connection string: {e}"),
        source: None,
    }
}

impl Pool {
    /// A PostgreSQL pool; `application_name` shows in `pg_stat_activity`.
    pub async fn postgres(url: &str, options: PoolOptions, application_name: &str) -> Result<Pool, SqlError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| bad_url("PostgreSQL", e))?
            .application_name(application_name)
            .statement_cache_capacity(STATEMENT_CACHE);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.min(SQLX_POSTGRES_CONNECTIONS_MAX))
            .test_before_acquire(false)
            .before_acquire(ping_if_idle)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await?;
        let conns = PgConns::new(connect, options.max_connections, options.acquire_timeout);
        Ok(Pool::Postgres(pool, conns))
    }

    /// A MySQL or MariaDB pool whose sessions run in strict mode (a value that does not fit is
    /// refused instead of cut) and UTC.
    pub async fn mysql(url: &str, options: PoolOptions) -> Result<Pool, SqlError> {
        let connect =
            MySqlConnectOptions::from_str(url).map_err(|e| bad_url("MySQL", e))?.timezone(Some("+00:00".to_owned()));
        let pool = MySqlPoolOptions::new()
            .max_connections(options.max_connections)
            .test_before_acquire(false)
            .before_acquire(ping_if_idle)
            .acquire_timeout(options.acquire_timeout)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')").await?;
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        Ok(Pool::MySql(pool))
    }

    /// A SQLite pool on the file of `url` (created if missing), in WAL mode with full fsync,
    /// waiting up to 30 s for the write lock.
    pub async fn sqlite(url: &str, options: PoolOptions, sqlite: SqliteOptions) -> Result<Pool, SqlError> {
        let mut connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| bad_url("SQLite", e))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(false)
            .read_only(sqlite.read_only)
            .statement_cache_capacity(SQLITE_STATEMENT_CACHE);
        if let Some(kib) = sqlite.cache_kib {
            connect = connect.pragma("cache_size", format!("-{kib}"));
        }
        if let Some(pages) = sqlite.wal_autocheckpoint_pages {
            connect = connect.pragma("wal_autocheckpoint", pages.to_string());
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .test_before_acquire(false)
            .before_acquire(ping_if_idle)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        Ok(Pool::Sqlite(pool))
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Pool::Postgres(..) => Dialect::Postgres,
            Pool::MySql(_) => Dialect::MySql,
            Pool::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// A connection for reads (and single statements).
    pub async fn acquire(&self) -> Result<Conn, SqlError> {
        Ok(match self {
            Pool::Postgres(_, conns) => Conn::postgres(conns.acquire().await?),
            Pool::MySql(p) => Conn::mysql(p.acquire().await?),
            Pool::Sqlite(p) => Conn::sqlite(p.acquire().await?),
        })
    }

    /// A transaction. SQLite's takes the write lock up front (`BEGIN IMMEDIATE`), so no
    /// reader-to-writer upgrade can fail half way.
    pub async fn begin(&self) -> Result<Conn, SqlError> {
        Ok(match self {
            Pool::Postgres(_, conns) => Conn::postgres_tx(conns.begin().await?),
            Pool::MySql(p) => Conn::mysql_tx(p.begin().await?),
            Pool::Sqlite(p) => Conn::sqlite_tx(p.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    pub async fn close(&self) {
        match self {
            Pool::Postgres(p, conns) => {
                conns.close();
                p.close().await
            }
            Pool::MySql(p) => p.close().await,
            Pool::Sqlite(p) => p.close().await,
        }
    }

    pub fn is_closed(&self) -> bool {
        match self {
            Pool::Postgres(p, _) => p.is_closed(),
            Pool::MySql(p) => p.is_closed(),
            Pool::Sqlite(p) => p.is_closed(),
        }
    }
}
