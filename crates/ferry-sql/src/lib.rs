//! The one seam between SQL text and the three database drivers ferry talks to: its own
//! database (SQLite or PostgreSQL, in `ferry-store`) and customers' replication targets
//! (PostgreSQL, MariaDB/MySQL or SQLite, in `ferry-target`).
//!
//! - [`Pool`] opens connections and transactions; [`Conn`] is either, on any driver, and runs
//!   SQL with [`Arg`]s (values of [`ferry_model::Value`], typed where a NULL needs a type, or
//!   whole columns bound as one array) and decodes result columns by [`ColType`].
//! - Binding and decoding are written once per driver (`postgres.rs`, `mysql.rs`, `sqlite.rs`).
//! - [`SqliteDirect`] steps prepared statements straight on a SQLite connection's handle, a row
//!   at a time (the bulk path of SQLite writes, [`Conn::sqlite_direct`]).
//! - [`SqliteReader`] reads many rows of a SQLite file on blocking threads, without the sqlx
//!   driver's per-value copies and per-row hand-offs.
//! - [`Batch`] sends several statements as one request where the driver allows (SQLite: one
//!   hand-off to its worker thread instead of one per statement).
//! - [`Sql`] builds statement text and arguments together, so placeholders always line up, in the
//!   dialect's syntax; [`Dialect`] quotes identifiers.
//! - [`CopyData`] encodes rows for PostgreSQL's `COPY … FROM STDIN` ([`Conn::copy_in`], [`CopyIn`]), the
//!   bulk path of replication's initial copy.
//! - [`SqlError`] sorts driver errors into what callers act on: unavailable (retry later),
//!   a unique violation, refused by the database, bad configuration, or a corrupt value.
//!
//! Values never enter SQL text: they are bound as parameters.

mod args;
mod batch;
mod builder;
mod conn;
mod copy;
mod dialect;
mod error;
mod mysql;
mod pg_conns;
mod pool;
mod postgres;
mod row;
mod sqlite;
mod sqlite_direct;
mod sqlite_reader;

pub use args::{Arg, Args};
pub use batch::Batch;
pub use builder::Sql;
pub use conn::{Conn, CopyIn};
pub use copy::CopyData;
pub use dialect::{ColType, Dialect};
pub use error::{SqlError, SqlErrorKind};
pub use pg_conns::PgConns;
pub use pool::{Pool, PoolOptions, SqliteOptions};
pub use row::RowExt;
pub use sqlite_direct::{SqliteDirect, SqliteStatement, SqliteValue};
pub use sqlite_reader::SqliteReader;

/// Re-exported for the crates that hold a pool's driver handle (migrations, LISTEN, COPY).
pub use sqlx;
