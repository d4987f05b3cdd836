//! [`SqliteReader`]: read-only connections to a SQLite file, stepped on tokio's blocking
//! threads — for reads of many rows (replication's initial copy, exports, OData pages).
//!
//! sqlx's SQLite driver steps statements on a worker thread of its own, copies every value of
//! every row (`sqlite3_value_dup`) and hands each row over to the async side: for a wide table,
//! more work than SQLite's own. Here a read's rows are decoded straight from the statement on
//! one blocking thread and handed over once, as a whole. Values are bound and decoded in the
//! same canonical forms as the sqlx binding (`sqlite.rs`, by the functions of `sqlite_direct.rs`), so
//! either reads what the other wrote.

use crate::args::{Arg, Args};
use crate::builder::Sql;
use crate::dialect::{ColType, Dialect};
use crate::error::{SqlError, SqlErrorKind};
use crate::sqlite::placeholders;
use crate::sqlite_direct::{bind_value, decode, error};
use ferry_model::Value;
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Compiled statements each connection keeps (a read's text differs per entity and filter).
const STATEMENT_CACHE: usize = 64;

/// Read-only connections to one SQLite file, opened as needed, at most `connections` at once.
#[derive(Clone)]
pub struct SqliteReader {
    shared: Arc<Shared>,
    /// One per connection; held until the read's thread is done, even if its caller left.
    permits: Arc<Semaphore>,
}

struct Shared {
    path: PathBuf,
    cache_kib: u32,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for SqliteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReader").field("path", &self.shared.path).finish_non_exhaustive()
    }
}

impl SqliteReader {
    /// Readers of the file of the SQLite URL `url` (opened at their first read), each with a
    /// page cache of `cache_kib`.
    pub fn new(url: &str, connections: usize, cache_kib: u32) -> Result<SqliteReader, SqlError> {
        use std::str::FromStr as _;
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).map_err(|e| SqlError {
            kind: SqlErrorKind::Configuration,
            message: format!("invalid SQLite connection string: {e}"),
            source: None,
        })?;
        Ok(SqliteReader {
            shared: Arc::new(Shared {
                path: options.get_filename().to_owned(),
                cache_kib,
                idle: Mutex::new(Vec::new()),
            }),
            permits: Arc::new(Semaphore::new(connections.max(1))),
        })
    }

    /// Runs the query `sql` (built for SQLite) and decodes its rows by `cols`.
    pub async fn query(&self, sql: Sql, cols: &[ColType]) -> Result<Vec<Vec<Value>>, SqlError> {
        debug_assert_eq!(sql.dialect(), Dialect::Sqlite);
        let (text, args) = sql.into_parts();
        let permit = self.permits.clone().acquire_owned().await;
        let permit = permit.map_err(|_| SqlError::other("the SQLite readers are closed"))?;
        let (shared, cols) = (self.shared.clone(), cols.to_vec());
        let read = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            shared.run(&text, args, &cols)
        });
        read.await.map_err(|e| SqlError::other(format!("a SQLite read failed: {e}")))?
    }
}

impl Shared {
    fn run(&self, text: &str, args: Args, cols: &[ColType]) -> Result<Vec<Vec<Value>>, SqlError> {
        let conn = match self.idle.lock().expect("reader pool").pop() {
            Some(conn) => conn,
            None => self.open()?,
        };
        // A connection whose read failed is closed (dropped here), not kept.
        let rows = read(&conn, text, args, cols)?;
        self.idle.lock().expect("reader pool").push(conn);
        Ok(rows)
    }

    fn open(&self) -> Result<Connection, SqlError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(error)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(error)?;
        conn.execute_batch(&format!("PRAGMA cache_size = -{}", self.cache_kib)).map_err(error)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }
}

fn read(conn: &Connection, text: &str, args: Args, cols: &[ColType]) -> Result<Vec<Vec<Value>>, SqlError> {
    let mut statement = conn.prepare_cached(&placeholders(text)).map_err(error)?;
    for (i, arg) in args.0.iter().enumerate() {
        match arg {
            Arg::Value(value, _) => bind_value(&mut statement, i + 1, value).map_err(error)?,
            Arg::Column(..) => return Err(SqlError::other("array parameters need PostgreSQL")),
        }
    }
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(error)? {
        let mut values = Vec::with_capacity(cols.len());
        for (i, &col) in cols.iter().enumerate() {
            values.push(decode(row.get_ref(i).map_err(error)?, i, col)?);
        }
        out.push(values);
    }
    Ok(out)
}
