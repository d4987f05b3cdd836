//! Reads of the replication target (PostgreSQL or MariaDB/MySQL), straight with sqlx and not
//! through ferry: row counts, a sample of customers to change, and the marker column plus
//! `SinkModifiedOn` of given rows, which is how the delta step sees a change arrive.

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

/// The column the delta step writes its markers into (`PrimaryContactPhone`, lower-cased).
const MARKER: &str = "primarycontactphone";

/// One customer row of the target: its `Id`, company and account.
pub struct Customer {
    pub id: Uuid,
    pub company: String,
    pub account: String,
}

/// What the target holds for one row: the marker column and `SinkModifiedOn`.
pub struct Seen {
    pub id: Uuid,
    pub marker: Option<String>,
    pub modified: Option<DateTime<Utc>>,
}

/// A connection pool to the target database with the qualified names of the entity table and
/// of ferry's checkpoint table.
pub enum TargetDb {
    Postgres { pool: PgPool, table: String, checkpoints: String },
    MySql { pool: MySqlPool, table: String, checkpoints: String },
}

impl TargetDb {
    /// Connects to `url` (`postgres://…` or `mysql://…`); the tables are those of a profile
    /// with table prefix `prefix`, in the default schema of the connection.
    pub async fn connect(url: &str, prefix: &str, connections: u32) -> Result<TargetDb> {
        let (table, checkpoints) = (format!("{prefix}_customerv3"), format!("{prefix}_ferry_checkpoint"));
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(connections)
                .connect(url)
                .await
                .context("connecting to PostgreSQL")?;
            let (table, checkpoints) = (format!("public.\"{table}\""), format!("public.\"{checkpoints}\""));
            Ok(TargetDb::Postgres { pool, table, checkpoints })
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            let url = url.replacen("mariadb:", "mysql:", 1);
            let pool = MySqlPoolOptions::new()
                .max_connections(connections)
                .connect(&url)
                .await
                .context("connecting to MariaDB")?;
            Ok(TargetDb::MySql { pool, table: format!("`{table}`"), checkpoints: format!("`{checkpoints}`") })
        } else {
            bail!("target URL must be postgres://… or mysql://…");
        }
    }

    pub fn postgres(&self) -> Option<&PgPool> {
        match self {
            TargetDb::Postgres { pool, .. } => Some(pool),
            TargetDb::MySql { .. } => None,
        }
    }

    pub fn mysql(&self) -> Option<&MySqlPool> {
        match self {
            TargetDb::MySql { pool, .. } => Some(pool),
            TargetDb::Postgres { .. } => None,
        }
    }

    /// Rows in the entity table, or `None` while it does not exist yet.
    pub async fn count(&self) -> Result<Option<i64>> {
        let result = match self {
            TargetDb::Postgres { pool, table, .. } => {
                sqlx::query(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                    .fetch_one(pool)
                    .await
                    .and_then(|r| r.try_get(0))
            }
            TargetDb::MySql { pool, table, .. } => sqlx::query(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(pool)
                .await
                .and_then(|r| r.try_get(0)),
        };
        match result {
            Ok(n) => Ok(Some(n)),
            Err(sqlx::Error::Database(e)) if is_missing_table(e.code().as_deref()) => Ok(None),
            Err(e) => Err(e).context("counting the target rows"),
        }
    }

    /// `(phase, rows_copied)` of the checkpoint ferry keeps in the target (written in the same
    /// transaction as each batch), or `None` while there is none.
    pub async fn checkpoint(&self) -> Result<Option<(String, i64)>> {
        let result = match self {
            TargetDb::Postgres { pool, checkpoints, .. } => {
                let sql = format!("SELECT phase, rows_copied FROM {checkpoints}");
                sqlx::query(AssertSqlSafe(sql))
                    .fetch_optional(pool)
                    .await
                    .and_then(|r| r.map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?))).transpose())
            }
            TargetDb::MySql { pool, checkpoints, .. } => {
                let sql = format!("SELECT phase, rows_copied FROM {checkpoints}");
                sqlx::query(AssertSqlSafe(sql))
                    .fetch_optional(pool)
                    .await
                    .and_then(|r| r.map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?))).transpose())
            }
        };
        match result {
            Ok(c) => Ok(c),
            Err(sqlx::Error::Database(e)) if is_missing_table(e.code().as_deref()) => Ok(None),
            Err(e) => Err(e).context("reading ferry's checkpoint in the target"),
        }
    }

    /// Up to `n` customers, in `Id` order (the primary key, so no sort of the whole table).
    pub async fn sample(&self, n: usize) -> Result<Vec<Customer>> {
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        let customers = match self {
            TargetDb::Postgres { pool, table, .. } => {
                let sql = format!("SELECT \"Id\", dataareaid, customeraccount FROM {table} ORDER BY \"Id\" LIMIT $1");
                sqlx::query(AssertSqlSafe(sql.as_str()))
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| Ok(Customer { id: r.try_get(0)?, company: r.try_get(1)?, account: r.try_get(2)? }))
                    .collect::<Result<Vec<_>, sqlx::Error>>()?
            }
            TargetDb::MySql { pool, table, .. } => {
                let sql = format!("SELECT Id, dataareaid, customeraccount FROM {table} ORDER BY Id LIMIT ?");
                let rows = sqlx::query(AssertSqlSafe(sql.as_str())).bind(limit).fetch_all(pool).await?;
                let mut customers = Vec::with_capacity(rows.len());
                for r in rows {
                    let id: String = r.try_get(0)?;
                    customers.push(Customer {
                        id: Uuid::parse_str(&id).with_context(|| format!("target Id {id} is not a GUID"))?,
                        company: r.try_get(1)?,
                        account: r.try_get(2)?,
                    });
                }
                customers
            }
        };
        Ok(customers)
    }

    /// The marker column and `SinkModifiedOn` of the rows with these ids (rows not found are
    /// left out).
    pub async fn look_up(&self, ids: &[Uuid]) -> Result<Vec<Seen>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut seen = Vec::with_capacity(ids.len());
        match self {
            TargetDb::Postgres { pool, table, .. } => {
                let sql = format!("SELECT \"Id\", {MARKER}, \"SinkModifiedOn\" FROM {table} WHERE \"Id\" = ANY($1)");
                for r in sqlx::query(AssertSqlSafe(sql.as_str())).bind(ids).fetch_all(pool).await? {
                    seen.push(Seen { id: r.try_get(0)?, marker: r.try_get(1)?, modified: r.try_get(2)? });
                }
            }
            TargetDb::MySql { pool, table, .. } => {
                let marks = vec!["?"; ids.len()].join(",");
                let sql = format!("SELECT Id, {MARKER}, SinkModifiedOn FROM {table} WHERE Id IN ({marks})");
                let mut query = sqlx::query(AssertSqlSafe(sql.as_str()));
                for id in ids {
                    query = query.bind(id.hyphenated().to_string());
                }
                for r in query.fetch_all(pool).await? {
                    let id: String = r.try_get(0)?;
                    // sqlx sets the session time zone to UTC, so DATETIME values are UTC.
                    let modified: Option<NaiveDateTime> = r.try_get(2)?;
                    seen.push(Seen {
                        id: Uuid::parse_str(&id).with_context(|| format!("target Id {id} is not a GUID"))?,
                        marker: r.try_get(1)?,
                        modified: modified.map(|t| t.and_utc()),
                    });
                }
            }
        }
        Ok(seen)
    }

    pub async fn close(&self) {
        match self {
            TargetDb::Postgres { pool, .. } => pool.close().await,
            TargetDb::MySql { pool, .. } => pool.close().await,
        }
    }
}

/// PostgreSQL `undefined_table` or MariaDB `ER_NO_SUCH_TABLE`.
fn is_missing_table(code: Option<&str>) -> bool {
    matches!(code, Some("42P01") | Some("42S02"))
}
