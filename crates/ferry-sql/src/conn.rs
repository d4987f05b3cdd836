//! [`Conn`]: a pooled connection or an open transaction, on any of the three drivers. The
//! store's and the targets' operations are written once against it.

use crate::args::Args;
use crate::batch::Batch;
use crate::builder::Sql;
use crate::copy::CopyData;
use crate::dialect::{ColType, Dialect};
use crate::error::SqlError;
use crate::pg_conns::PgLease;
use crate::sqlite_direct::{self, SqliteDirect};
use crate::{mysql, postgres, sqlite};
use ferry_model::Value;
use sqlx::pool::PoolConnection;
use sqlx::{MySql, Sqlite, Transaction};

/// A connection taken from a [`crate::Pool`], or a transaction begun on one. A transaction that
/// is dropped without [`Conn::commit`] rolls back.
pub struct Conn {
    inner: Inner,
    /// A statement sent in front of the next one (SQLite, [`Conn::execute_deferred`]).
    deferred: Deferred,
}

/// Where a deferred statement stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Deferred {
    #[default]
    None,
    /// Not sent yet: it goes in front of the next statement, in the same request.
    Pending(&'static str),
    /// Sent with a request whose answer was not seen (its future was dropped): it ran.
    Sent,
    /// Sent, and it ran (whatever the statements after it did).
    Ran,
}

enum Inner {
    Postgres(PgLease),
    PostgresTx(PgLease),
    MySql(PoolConnection<MySql>),
    MySqlTx(Transaction<'static, MySql>),
    Sqlite(PoolConnection<Sqlite>),
    SqliteTx(Transaction<'static, Sqlite>),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("dialect", &self.dialect()).field("transaction", &self.in_transaction()).finish()
    }
}

impl Conn {
    pub(crate) fn postgres(c: PgLease) -> Conn {
        Conn { inner: Inner::Postgres(c), deferred: Deferred::None }
    }
    pub(crate) fn postgres_tx(t: PgLease) -> Conn {
        Conn { inner: Inner::PostgresTx(t), deferred: Deferred::None }
    }
    pub(crate) fn mysql(c: PoolConnection<MySql>) -> Conn {
        Conn { inner: Inner::MySql(c), deferred: Deferred::None }
    }
    pub(crate) fn mysql_tx(t: Transaction<'static, MySql>) -> Conn {
        Conn { inner: Inner::MySqlTx(t), deferred: Deferred::None }
    }
    pub(crate) fn sqlite(c: PoolConnection<Sqlite>) -> Conn {
        Conn { inner: Inner::Sqlite(c), deferred: Deferred::None }
    }
    pub(crate) fn sqlite_tx(t: Transaction<'static, Sqlite>) -> Conn {
        Conn { inner: Inner::SqliteTx(t), deferred: Deferred::None }
    }

    pub fn dialect(&self) -> Dialect {
        match self.inner {
            Inner::Postgres(_) | Inner::PostgresTx(_) => Dialect::Postgres,
            Inner::MySql(_) | Inner::MySqlTx(_) => Dialect::MySql,
            Inner::Sqlite(_) | Inner::SqliteTx(_) => Dialect::Sqlite,
        }
    }

    pub fn in_transaction(&self) -> bool {
        matches!(self.inner, Inner::PostgresTx(_) | Inner::MySqlTx(_) | Inner::SqliteTx(_))
    }

    /// Runs a statement; answers the number of rows affected.
    pub async fn execute(&mut self, sql: &str, args: impl Into<Args>) -> Result<u64, SqlError> {
        let args = args.into();
        match &mut self.inner {
            Inner::Sqlite(c) => Ok(sqlite::run(c, sql, args, &mut self.deferred, None).await?.0),
            Inner::SqliteTx(t) => Ok(sqlite::run(t, sql, args, &mut self.deferred, None).await?.0),
            Inner::Postgres(c) | Inner::PostgresTx(c) => {
                let result = postgres::execute(c, sql, args).await;
                c.note(result)
            }
            Inner::MySql(c) => mysql::execute(c, sql, args).await,
            Inner::MySqlTx(t) => mysql::execute(t, sql, args).await,
        }
    }

    /// Runs `sql` (no arguments, no rows) — on SQLite in front of the next statement, in the
    /// same request: one hand-off to the driver's worker thread less (`SAVEPOINT` before each
    /// write of a commit group). [`Conn::settle_deferred`] says whether it ran.
    pub async fn execute_deferred(&mut self, sql: &'static str) -> Result<(), SqlError> {
        if self.dialect() != Dialect::Sqlite {
            return self.execute_unprepared(sql).await;
        }
        self.flush_deferred().await?;
        self.deferred = Deferred::Pending(sql);
        Ok(())
    }

    /// Whether the statement of [`Conn::execute_deferred`] ran; one still waiting for a statement
    /// to go in front of is dropped (it never runs). On drivers other than SQLite it ran.
    pub fn settle_deferred(&mut self) -> bool {
        match std::mem::take(&mut self.deferred) {
            Deferred::Ran | Deferred::Sent => true,
            Deferred::Pending(_) => false,
            Deferred::None => self.dialect() != Dialect::Sqlite,
        }
    }

    /// Sends a pending deferred statement on its own (before a statement that cannot carry it).
    async fn flush_deferred(&mut self) -> Result<(), SqlError> {
        if let Deferred::Pending(sql) = self.deferred {
            self.execute("SELECT 1 WHERE 0", ()).await?;
            debug_assert_eq!(self.deferred, Deferred::Ran, "{sql} went with the flush");
        }
        Ok(())
    }

    /// Runs a query and decodes each row's columns by `cols` (one entry per selected column).
    pub async fn fetch(
        &mut self,
        sql: &str,
        args: impl Into<Args>,
        cols: &[ColType],
    ) -> Result<Vec<Vec<Value>>, SqlError> {
        let args = args.into();
        match &mut self.inner {
            Inner::Sqlite(c) => Ok(sqlite::run(c, sql, args, &mut self.deferred, Some(cols)).await?.1),
            Inner::SqliteTx(t) => Ok(sqlite::run(t, sql, args, &mut self.deferred, Some(cols)).await?.1),
            Inner::Postgres(c) | Inner::PostgresTx(c) => {
                let result = postgres::fetch(c, sql, args, cols).await;
                c.note(result)
            }
            Inner::MySql(c) => mysql::fetch(c, sql, args, cols).await,
            Inner::MySqlTx(t) => mysql::fetch(t, sql, args, cols).await,
        }
    }

    /// Runs the statements of `batch` in order — on SQLite as one request, on PostgreSQL an
    /// [independent](Batch::independent) batch as one statement — and decodes the rows any of
    /// them return by `cols`. A failing statement fails the batch; the statements before it may
    /// stay done (inside a transaction, roll back to undo them).
    pub async fn fetch_batch(&mut self, batch: Batch, cols: &[ColType]) -> Result<Vec<Vec<Value>>, SqlError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        if self.dialect() == Dialect::Sqlite {
            let (text, args) = batch.joined()?;
            return self.fetch(&text, args, cols).await;
        }
        let statements = match self.dialect() {
            Dialect::Postgres => batch.fused()?,
            _ => batch.into_statements(),
        };
        let mut rows = Vec::new();
        for (sql, args) in statements {
            rows.extend(self.fetch(&sql, args, cols).await?);
        }
        Ok(rows)
    }

    /// Runs a built statement; answers the number of rows affected.
    pub async fn run(&mut self, sql: Sql) -> Result<u64, SqlError> {
        let (text, args) = sql.into_parts();
        self.execute(&text, args).await
    }

    /// Runs a built query and decodes each row's columns by `cols`.
    pub async fn query(&mut self, sql: Sql, cols: &[ColType]) -> Result<Vec<Vec<Value>>, SqlError> {
        let (text, args) = sql.into_parts();
        self.fetch(&text, args, cols).await
    }

    /// Commits a transaction (a plain connection has nothing to commit). A deferred statement
    /// no statement followed never runs.
    pub async fn commit(self) -> Result<(), SqlError> {
        match self.inner {
            Inner::PostgresTx(t) => t.commit().await?,
            Inner::MySqlTx(t) => t.commit().await?,
            Inner::SqliteTx(t) => t.commit().await?,
            Inner::Postgres(_) | Inner::MySql(_) | Inner::Sqlite(_) => {}
        }
        Ok(())
    }

    /// Starts `statement`, a `COPY … FROM STDIN` in text format (PostgreSQL only): rows are
    /// then encoded into [`CopyIn::data`] and sent in segments as they grow, so the encoded
    /// rows never pile up. On error the statement failed as a whole (in a transaction, roll
    /// back to a savepoint taken before it to go on).
    pub async fn copy_in(&mut self, statement: &str) -> Result<CopyIn<'_>, SqlError> {
        let Some(pg) = self.as_postgres() else {
            return Err(SqlError::other("COPY FROM STDIN needs PostgreSQL"));
        };
        Ok(CopyIn { copy: pg.copy_in_raw(statement).await?, data: CopyData::with_capacity(SEGMENT_BYTES * 5 / 4) })
    }

    /// Runs `work` on this SQLite connection's own handle, in its transaction: statements
    /// prepared once and stepped for each row, values bound from where they lie — the bulk path
    /// of SQLite writes ([`SqliteDirect`]). A deferred statement runs first. The work blocks the
    /// calling thread; keep it to one batch.
    pub async fn sqlite_direct<T, E: From<SqlError>>(
        &mut self,
        work: impl FnOnce(&SqliteDirect) -> Result<T, E>,
    ) -> Result<T, E> {
        let conn: &mut sqlx::SqliteConnection = match &mut self.inner {
            Inner::Sqlite(c) => c,
            Inner::SqliteTx(t) => t,
            _ => return Err(SqlError::other("direct statements need SQLite").into()),
        };
        sqlite_direct::run(conn, &mut self.deferred, work).await
    }

    /// `SAVEPOINT name` (inside a transaction): a point [`Conn::rollback_to_savepoint`] undoes
    /// the statements after, keeping the transaction usable after a failed statement.
    pub async fn savepoint(&mut self, name: &str) -> Result<(), SqlError> {
        let sql = format!("SAVEPOINT {}", self.dialect().quote(name));
        self.execute_unprepared(&sql).await
    }

    pub async fn rollback_to_savepoint(&mut self, name: &str) -> Result<(), SqlError> {
        let sql = format!("ROLLBACK TO SAVEPOINT {}", self.dialect().quote(name));
        self.execute_unprepared(&sql).await
    }

    pub async fn release_savepoint(&mut self, name: &str) -> Result<(), SqlError> {
        let sql = format!("RELEASE SAVEPOINT {}", self.dialect().quote(name));
        self.execute_unprepared(&sql).await
    }

    /// A statement without parameters over the simple protocol (transaction control, which
    /// MySQL cannot prepare).
    async fn execute_unprepared(&mut self, sql: &str) -> Result<(), SqlError> {
        use sqlx::Executor as _;
        self.flush_deferred().await?;
        let sql = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()));
        match &mut self.inner {
            Inner::Postgres(c) | Inner::PostgresTx(c) => {
                let result = (&mut **c).execute(sql).await.map(|_| ()).map_err(SqlError::from);
                return c.note(result);
            }
            Inner::MySql(c) => (&mut **c).execute(sql).await.map(|_| ()),
            Inner::MySqlTx(t) => (&mut **t).execute(sql).await.map(|_| ()),
            Inner::Sqlite(c) => (&mut **c).execute(sql).await.map(|_| ()),
            Inner::SqliteTx(t) => (&mut **t).execute(sql).await.map(|_| ()),
        }
        .map_err(SqlError::from)
    }

    /// The PostgreSQL connection underneath, for what only PostgreSQL has (`COPY`).
    pub fn as_postgres(&mut self) -> Option<&mut sqlx::PgConnection> {
        match &mut self.inner {
            Inner::Postgres(c) | Inner::PostgresTx(c) => Some(&mut **c),
            _ => None,
        }
    }
}

/// Encoded rows sent at once by [`CopyIn::send_full`].
const SEGMENT_BYTES: usize = 256 << 10;

/// A `COPY … FROM STDIN` under way ([`Conn::copy_in`]). Dropped without [`CopyIn::finish`], the
/// statement fails (and with it the transaction, up to a savepoint).
pub struct CopyIn<'c> {
    copy: sqlx::postgres::PgCopyIn<&'c mut sqlx::PgConnection>,
    data: CopyData,
}

impl std::fmt::Debug for CopyIn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyIn").field("buffered_bytes", &self.data.len()).finish_non_exhaustive()
    }
}

impl CopyIn<'_> {
    /// Where the next rows are encoded.
    pub fn data(&mut self) -> &mut CopyData {
        &mut self.data
    }

    /// Sends what is encoded once it fills a segment (call after each row).
    pub async fn send_full(&mut self) -> Result<(), SqlError> {
        if self.data.len() >= SEGMENT_BYTES { self.send().await } else { Ok(()) }
    }

    async fn send(&mut self) -> Result<(), SqlError> {
        self.copy.send(self.data.bytes()).await?;
        self.data.clear();
        Ok(())
    }

    /// Sends the rest and ends the statement; answers the number of rows copied.
    pub async fn finish(mut self) -> Result<u64, SqlError> {
        if !self.data.is_empty() {
            self.send().await?;
        }
        Ok(self.copy.finish().await?)
    }
}
