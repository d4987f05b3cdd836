//! The reference load: the rows ferry copied, written to a CSV file, loaded by the database's
//! own bulk loader into an empty table of the same definition (`LIKE` the target table, so the
//! same column types and primary key) in a schema of its own. Only the load is timed:
//! `psql -c "\copy … FROM 'file' CSV"` or `mysql --local-infile=1 -e "LOAD DATA LOCAL INFILE …"`.
//! The CSV comes from the target table itself (`\copy (SELECT * …) TO` on PostgreSQL; on
//! MariaDB every column read as text with sqlx), so it holds exactly the rows and values ferry
//! wrote.

use anyhow::{Context, Result, bail};
use futures::TryStreamExt;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Row};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use super::target::TargetDb;
use crate::stats::per_second;
use crate::tools;

/// Figures of one reference load.
pub struct ReferenceLoad {
    pub rows: i64,
    pub export: Duration,
    pub load: Duration,
    pub command: String,
    pub warnings: Option<String>,
}

impl ReferenceLoad {
    pub fn rate(&self) -> f64 {
        per_second(self.rows as f64, self.load.as_secs_f64())
    }

    pub fn to_json(&self) -> Value {
        json!({
            "rows": self.rows, "export_seconds": self.export.as_secs_f64(), "seconds": self.load.as_secs_f64(),
            "rows_per_second": self.rate(), "command": self.command, "warnings": self.warnings,
        })
    }
}

/// Exports `table` of the target at `url` to `csv` and loads it into `<schema>.<table>`.
pub async fn run(target: &TargetDb, url: &str, table: &str, schema: &str, csv: &Path) -> Result<ReferenceLoad> {
    let file = csv.to_str().filter(|p| !p.contains('\'')).context("the CSV path must be UTF-8 without quotes")?;
    anyhow::ensure!(schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "bad reference schema {schema}");
    if let Some(pool) = target.postgres() {
        for sql in [
            format!("CREATE SCHEMA IF NOT EXISTS {schema}"),
            format!("DROP TABLE IF EXISTS {schema}.\"{table}\""),
            format!("CREATE TABLE {schema}.\"{table}\" (LIKE public.\"{table}\" INCLUDING ALL)"),
        ] {
            sqlx::query(AssertSqlSafe(sql.as_str())).execute(pool).await.with_context(|| sql.clone())?;
        }
        let (_, export) =
            tools::psql(url, &format!("\\copy (SELECT * FROM public.\"{table}\") TO '{file}' CSV"), true).await?;
        let copy = format!("\\copy {schema}.\"{table}\" FROM '{file}' CSV");
        let (_, load) = tools::psql(url, &copy, true).await?;
        let rows: i64 = sqlx::query(AssertSqlSafe(format!("SELECT count(*) FROM {schema}.\"{table}\"")))
            .fetch_one(pool)
            .await?
            .try_get(0)?;
        Ok(ReferenceLoad { rows, export, load, command: format!("psql -c \"{copy}\""), warnings: None })
    } else if let Some(pool) = target.mysql() {
        for sql in [
            format!("CREATE DATABASE IF NOT EXISTS `{schema}`"),
            format!("DROP TABLE IF EXISTS `{schema}`.`{table}`"),
            format!("CREATE TABLE `{schema}`.`{table}` LIKE `{table}`"),
        ] {
            sqlx::query(AssertSqlSafe(sql.as_str())).execute(pool).await.with_context(|| sql.clone())?;
        }
        let started = Instant::now();
        export_mysql(pool, table, csv).await?;
        let export = started.elapsed();
        let load_sql = format!(
            "LOAD DATA LOCAL INFILE '{file}' INTO TABLE `{table}` FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"'"
        );
        let (output, load) = tools::mysql(url, schema, &format!("{load_sql}; SHOW COUNT(*) WARNINGS")).await?;
        let warnings = output.lines().last().map(str::trim).filter(|w| *w != "0").map(|w| format!("{w} warnings"));
        let rows: i64 = sqlx::query(AssertSqlSafe(format!("SELECT count(*) FROM `{schema}`.`{table}`")))
            .fetch_one(pool)
            .await?
            .try_get(0)?;
        Ok(ReferenceLoad { rows, export, load, command: format!("mysql --local-infile=1 -e \"{load_sql}\""), warnings })
    } else {
        bail!("no target pool")
    }
}

/// Writes every row of `table` as CSV for `LOAD DATA … FIELDS TERMINATED BY ','
/// OPTIONALLY ENCLOSED BY '"'` (default escape `\`): values quoted, `"` doubled, `\` escaped,
/// NULL as `\N`.
async fn export_mysql(pool: &sqlx::MySqlPool, table: &str, csv: &Path) -> Result<()> {
    let columns: Vec<String> = sqlx::query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? \
         ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>(0))
    .collect::<Result<_, _>>()?;
    anyhow::ensure!(!columns.is_empty(), "table {table} has no columns");
    let select: Vec<String> = columns.iter().map(|c| format!("CAST(`{c}` AS CHAR)")).collect();
    let sql = format!("SELECT {} FROM `{table}`", select.join(", "));
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(csv)?);
    let mut rows = sqlx::query(AssertSqlSafe(sql.as_str())).fetch(pool);
    let mut line = String::new();
    while let Some(row) = rows.try_next().await? {
        line.clear();
        for i in 0..columns.len() {
            if i > 0 {
                line.push(',');
            }
            match row.try_get::<Option<String>, _>(i)? {
                None => line.push_str("\\N"),
                Some(v) => {
                    line.push('"');
                    for ch in v.chars() {
                        match ch {
                            '"' => line.push_str("\"\""),
                            '\\' => line.push_str("\\\\"),
                            _ => line.push(ch),
                        }
                    }
                    line.push('"');
                }
            }
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    Ok(())
}
