//! The databases and directories a run makes for itself, and their removal: ferry's own
//! database (SQLite in a temporary directory, or a fresh PostgreSQL database
//! `ferry_bench_<random>`), replication targets (fresh PostgreSQL or MariaDB databases), all
//! dropped at the end of the run — also after a failure or Ctrl-C — unless `--keep`.

use anyhow::{Context, Result};
use sqlx::{AssertSqlSafe, Connection, Row};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::tools::Tool;

/// ferry's own database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// `sqlite`, `postgres` or `both` on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Backends {
    Sqlite,
    Postgres,
    Both,
}

impl Backends {
    pub fn list(self) -> Vec<Backend> {
        match self {
            Backends::Sqlite => vec![Backend::Sqlite],
            Backends::Postgres => vec![Backend::Postgres],
            Backends::Both => vec![Backend::Sqlite, Backend::Postgres],
        }
    }

    /// `sqlite postgres`, for the header.
    pub fn names(self) -> String {
        self.list().iter().map(|b| b.name()).collect::<Vec<_>>().join(" ")
    }

    /// The reference client of each backend (`sqlite3`, `psql`), needed for `purpose`.
    pub fn reference_tools(self, purpose: &'static str) -> Vec<(Tool, &'static str)> {
        let tool = |b| match b {
            Backend::Sqlite => Tool::Sqlite3,
            Backend::Postgres => Tool::Psql,
        };
        self.list().into_iter().map(|b| (tool(b), purpose)).collect()
    }
}

/// Something made for the run, removed by [`Scratch::cleanup`].
enum Item {
    Dir(PathBuf),
    Postgres { admin: String, name: String },
    MySql { admin: String, name: String },
}

/// Everything the run made, in order.
pub struct Scratch {
    keep: bool,
    items: Mutex<Vec<Item>>,
}

impl Scratch {
    pub fn new(keep: bool) -> Scratch {
        Scratch { keep, items: Mutex::new(Vec::new()) }
    }

    fn note(&self, item: Item) {
        self.items.lock().expect("scratch lock").push(item);
    }

    /// A new directory under the system's temporary directory.
    pub fn temp_dir(&self, what: &str) -> Result<PathBuf> {
        let dir = std::env::temp_dir().join(format!("ferry-bench-{what}-{}", short_random()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        self.note(Item::Dir(dir.clone()));
        Ok(dir)
    }

    /// A new PostgreSQL database `ferry_bench_<random><suffix>` on the server of `admin`;
    /// answers its URL.
    pub async fn postgres_database(&self, admin: &str, suffix: &str) -> Result<String> {
        let name = format!("ferry_bench_{}{suffix}", short_random());
        server_sql(admin, &format!("CREATE DATABASE {name}")).await.map(drop)?;
        self.note(Item::Postgres { admin: admin.to_string(), name: name.clone() });
        Ok(database_url(admin, &name))
    }

    /// A new MariaDB/MySQL database `ferry_bench_<random>` on the server of `admin` (with
    /// `local_infile` allowed, for the reference load); answers its name and URL.
    pub async fn mysql_database(&self, admin: &str) -> Result<(String, String)> {
        let name = format!("ferry_bench_{}", short_random());
        server_sql(admin, "SET GLOBAL local_infile = 1").await.map(drop)?;
        server_sql(admin, &format!("CREATE DATABASE `{name}`")).await.map(drop)?;
        self.note(Item::MySql { admin: admin.to_string(), name: name.clone() });
        Ok((name.clone(), database_url(admin, &name)))
    }

    /// Notes a MariaDB database something else creates, so that it is dropped too.
    pub fn note_mysql_database(&self, admin: &str, name: &str) {
        self.note(Item::MySql { admin: admin.to_string(), name: name.to_string() });
    }

    /// Drops every database and removes every directory made (newest first), or says what was
    /// kept.
    pub async fn cleanup(&self) {
        let items = std::mem::take(&mut *self.items.lock().expect("scratch lock"));
        for item in items.into_iter().rev() {
            let (what, result) = match &item {
                Item::Dir(dir) if self.keep => (format!("directory {}", dir.display()), Ok(())),
                Item::Dir(dir) => {
                    (format!("directory {}", dir.display()), std::fs::remove_dir_all(dir).map_err(Into::into))
                }
                Item::Postgres { name, .. } if self.keep => (format!("PostgreSQL database {name}"), Ok(())),
                Item::Postgres { admin, name } => (
                    format!("PostgreSQL database {name}"),
                    server_sql(admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.map(drop),
                ),
                Item::MySql { name, .. } if self.keep => (format!("MariaDB database {name}"), Ok(())),
                Item::MySql { admin, name } => (
                    format!("MariaDB database {name}"),
                    server_sql(admin, &format!("DROP DATABASE IF EXISTS `{name}`")).await.map(drop),
                ),
            };
            match result {
                Ok(()) if self.keep => eprintln!("kept      {what}"),
                Ok(()) => {}
                Err(e) => eprintln!("warning: could not remove {what}: {e:#}"),
            }
        }
    }
}

/// ferry's own database for one run.
pub struct FerryDatabase {
    pub backend: Backend,
    pub url: String,
    /// The file, for SQLite.
    pub sqlite_file: Option<PathBuf>,
    /// E.g. `PostgreSQL 15.20, database ferry_bench_…`, for the output.
    pub description: String,
}

impl FerryDatabase {
    /// The description, with the `sqlite3` shell's version for SQLite (its reference client).
    pub async fn describe_with_client(&self) -> String {
        match self.backend {
            Backend::Sqlite => format!("{}  (sqlite3 {})", self.description, crate::tools::sqlite3_version().await),
            Backend::Postgres => self.description.clone(),
        }
    }
}

/// ferry's database for one run of `backend`: SQLite in `<dir>/data` (where the server keeps
/// its data), or a fresh PostgreSQL database `ferry_bench_<random><suffix>` on `postgres_admin`.
pub async fn ferry_database(
    scratch: &Scratch,
    backend: Backend,
    dir: &Path,
    postgres_admin: &str,
    suffix: &str,
) -> Result<FerryDatabase> {
    match backend {
        Backend::Sqlite => {
            let file = dir.join("data").join("ferry.db");
            std::fs::create_dir_all(dir.join("data"))?;
            Ok(FerryDatabase {
                backend,
                url: format!("sqlite://{}", file.display()),
                description: format!("SQLite at {}", file.display()),
                sqlite_file: Some(file),
            })
        }
        Backend::Postgres => {
            let url = scratch.postgres_database(postgres_admin, suffix).await?;
            let description = format!("PostgreSQL {}, database {}", postgres_version(&url).await?, database_name(&url));
            Ok(FerryDatabase { backend, url, sqlite_file: None, description })
        }
    }
}

/// URL of database `name` on the server of `admin` (same credentials, host and `?query`).
pub fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = admin.split_once('?').map_or((admin, None), |(b, q)| (b, Some(q)));
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let server = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

/// The database named in `url`.
pub fn database_name(url: &str) -> &str {
    let base = url.split('?').next().unwrap_or(url);
    base.rsplit('/').next().unwrap_or(base)
}

/// `SHOW server_version` of the PostgreSQL server of `url`.
pub async fn postgres_version(url: &str) -> Result<String> {
    server_sql(url, "SHOW server_version").await?.context("SHOW server_version answered nothing")
}

/// `SELECT VERSION()` of the MariaDB/MySQL server of `url`.
pub async fn mysql_version(url: &str) -> Result<String> {
    server_sql(url, "SELECT VERSION()").await?.context("SELECT VERSION() answered nothing")
}

/// Runs `sql` over one new connection to the PostgreSQL or MariaDB/MySQL server of `url`;
/// answers the first column of the first row, if there is one.
async fn server_sql(url: &str, sql: &str) -> Result<Option<String>> {
    let what = || format!("{sql} (on {url})");
    let text = |row: Option<Result<String, sqlx::Error>>| row.transpose().with_context(what);
    if url.starts_with("mysql:") || url.starts_with("mariadb:") {
        let mut conn =
            sqlx::MySqlConnection::connect(&url.replacen("mariadb:", "mysql:", 1)).await.with_context(what)?;
        let row = sqlx::raw_sql(AssertSqlSafe(sql)).fetch_optional(&mut conn).await.with_context(what)?;
        conn.close().await?;
        text(row.map(|r| r.try_get(0)))
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.with_context(what)?;
        let row = sqlx::raw_sql(AssertSqlSafe(sql)).fetch_optional(&mut conn).await.with_context(what)?;
        conn.close().await?;
        text(row.map(|r| r.try_get(0)))
    }
}

/// 8 random hex digits.
pub fn short_random() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_keeps_server_credentials_and_query() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(database_url("postgres://u:p@h/test?sslmode=disable", "x"), "postgres://u:p@h/x?sslmode=disable");
        assert_eq!(database_url("mysql://root@127.0.0.1:3306", "x"), "mysql://root@127.0.0.1:3306/x");
        assert_eq!(database_name("postgres://u@h/ferry_bench_1?a=b"), "ferry_bench_1");
    }
}
