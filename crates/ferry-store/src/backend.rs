//! Opening ferry's own database: embedded SQLite (one writer connection — SQLite has a single
//! writer, and queueing writers in the pool avoids SQLITE_BUSY — and a few readers) or
//! PostgreSQL (one pool shared by readers and writers); migrations of the system tables; and
//! PostgreSQL's change notifications, which wake every node.

use crate::error::{StoreError, StoreResult};
use ferry_sql::{Pool, PoolOptions, SqliteOptions, SqliteReader};
use std::time::Duration;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// PostgreSQL connections per node.
const POSTGRES_CONNECTIONS: u32 = 16;
/// SQLite reader connections.
const SQLITE_READERS: u32 = 4;
/// Page cache of each SQLite reader connection.
const READER_CACHE_KIB: u32 = 8_000;
/// WAL pages (64 MiB) after which the SQLite writer checkpoints by itself: a safety net for when
/// the background checkpointer (`checkpointer.rs`) falls behind; the WAL restarts from its
/// beginning only after a checkpoint that caught up with the writer.
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 16_384;

/// The pools of one database: writes go to `writer`, reads to `reader` (the same pool on
/// PostgreSQL); on SQLite, reads of entity rows to `rows`, and WAL checkpoints to `checkpoints`.
pub(crate) struct Pools {
    pub(crate) writer: Pool,
    pub(crate) reader: Pool,
    pub(crate) rows: Option<SqliteReader>,
    pub(crate) checkpoints: Option<Pool>,
}

/// Opens the database of `url`: `sqlite://path/to/file.db` or `postgres://…`.
pub(crate) async fn open(url: &str) -> StoreResult<Pools> {
    if url.starts_with("sqlite:") {
        let writer_options = PoolOptions { max_connections: 1, acquire_timeout: Duration::from_secs(60) };
        let writer_sqlite = SqliteOptions {
            cache_kib: Some(32_000),
            wal_autocheckpoint_pages: Some(WRITER_AUTOCHECKPOINT_PAGES),
            ..SqliteOptions::default()
        };
        let writer = Pool::sqlite(url, writer_options, writer_sqlite).await.map_err(|e| bad_url(url, e))?;
        // One connection that only checkpoints: it writes the database file, so it cannot be a
        // read-only reader; its small cache is never read from.
        let one = PoolOptions { max_connections: 1, acquire_timeout: Duration::from_secs(30) };
        let checkpoints = Pool::sqlite(url, one, SqliteOptions { cache_kib: Some(64), ..SqliteOptions::default() })
            .await
            .map_err(|e| bad_url(url, e))?;
        let reader_options = PoolOptions { max_connections: SQLITE_READERS, acquire_timeout: Duration::from_secs(30) };
        // Readers keep small page caches (the OS caches the file for all of them): a long read,
        // an export or a paged OData query, must not grow the process by 32 MB per connection.
        let reader = Pool::sqlite(
            url,
            reader_options,
            SqliteOptions { read_only: true, cache_kib: Some(READER_CACHE_KIB), ..SqliteOptions::default() },
        )
        .await
        .map_err(|e| bad_url(url, e))?;
        let rows = SqliteReader::new(url, SQLITE_READERS as usize, READER_CACHE_KIB).map_err(|e| bad_url(url, e))?;
        Ok(Pools { writer, reader, rows: Some(rows), checkpoints: Some(checkpoints) })
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let options = PoolOptions { max_connections: POSTGRES_CONNECTIONS, acquire_timeout: Duration::from_secs(30) };
        let pool = Pool::postgres(url, options, "ferry").await.map_err(|e| bad_url(url, e))?;
        Ok(Pools { writer: pool.clone(), reader: pool, rows: None, checkpoints: None })
    } else {
        Err(StoreError::BadUrl(format!("'{}' is neither sqlite://… nor postgres://…", redact_url(url))))
    }
}

/// A bad URL names the URL (without its password); other failures pass through.
fn bad_url(url: &str, e: ferry_sql::SqlError) -> StoreError {
    match e.kind {
        ferry_sql::SqlErrorKind::Configuration => StoreError::BadUrl(format!("{}: {}", redact_url(url), e.message)),
        _ => e.into(),
    }
}

pub(crate) async fn migrate(writer: &Pool) -> StoreResult<()> {
    match writer {
        Pool::Sqlite(p) => SQLITE_MIGRATOR.run(p).await?,
        Pool::Postgres(p, _) => POSTGRES_MIGRATOR.run(p).await?,
        Pool::MySql(_) => unreachable!("ferry's own database is SQLite or PostgreSQL"),
    }
    Ok(())
}

/// Hides the password of a database URL for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Bumps `sender` on every notification on `channel` of any node (PostgreSQL `LISTEN`),
/// reconnecting when the connection drops, until the pool closes.
pub(crate) async fn listen_for(pool: sqlx::PgPool, channel: &'static str, sender: tokio::sync::watch::Sender<u64>) {
    loop {
        if pool.is_closed() {
            return;
        }
        match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(channel).await {
                    tracing::warn!(error = %e, channel, "cannot listen for notifications");
                } else {
                    loop {
                        match listener.recv().await {
                            Ok(_) => sender.send_modify(|n| *n = n.wrapping_add(1)),
                            Err(_) if pool.is_closed() => return,
                            Err(e) => {
                                tracing::warn!(error = %e, channel, "notification listener lost its connection");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, channel, "cannot connect the notification listener"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}
