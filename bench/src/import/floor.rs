//! Beside the reference of step `file`, the database's own tools loading the same file into a
//! table shaped like ferry's — a copy of the entity table with its column types, key and
//! indexes, ferry idle: what any loader into that table pays, which the plain table of the
//! reference (text columns, no key, no index) does not. On SQLite `sqlite3` imports the CSV into
//! a scratch table and copies it with one `INSERT … SELECT` (`.import` cannot fill a table with
//! more columns than the file); on PostgreSQL `psql \copy` goes straight into the copy, its
//! system columns filled by defaults. Both in WAL/durable mode, as ferry runs.

use anyhow::{Context, Result, bail};

use super::Run;
use super::files::CUSTOMER_COLUMNS;
use crate::tools;

/// ferry's table of Customers V3.
const TABLE: &str = "e_customerv3";

/// Loads the customers file into a copy of ferry's table; answers rows, seconds and the
/// command as shown.
pub async fn floor(run: &Run<'_>) -> Result<(u64, f64, String)> {
    let file = run.inputs.customers.as_ref().context("no customers file")?;
    let csv = file.path.to_str().filter(|p| !p.contains('\'')).context("the CSV path must be UTF-8 without quotes")?;
    let columns = CUSTOMER_COLUMNS.join(", ");
    if let Some(ferry_db) = &run.db.sqlite_file {
        let (schema, _) = tools::sqlite3(ferry_db, &[&format!(".schema {TABLE}")], false).await?;
        if !schema.contains("CREATE TABLE") {
            bail!("ferry's database has no table {TABLE}");
        }
        let db = run.dir.join("floor.db");
        let _ = std::fs::remove_file(&db);
        tools::sqlite3(&db, &["PRAGMA journal_mode=WAL", &schema], true).await?;
        // SQLite's column names ignore case: the file's header names the table's columns.
        let now = "strftime('%Y-%m-%dT%H:%M:%fZ')";
        let insert = format!(
            "INSERT INTO {TABLE} (_id, _company, _created_at, _modified_at, _version, {columns}) \
             SELECT printf('00000000-0000-7000-8000-%012d', rowid), 'usmf', {now}, {now}, rowid, {columns} FROM t"
        );
        let import = format!(".import '{csv}' t");
        let (_, took) = tools::sqlite3(&db, &["PRAGMA synchronous=FULL", ".mode csv", &import, &insert], true).await?;
        let (count, _) = tools::sqlite3(&db, &[&format!("SELECT count(*) FROM {TABLE}")], false).await?;
        for f in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{f}", db.display()));
        }
        let shown = format!(
            "sqlite3 floor.db '.import customers.csv t' 'INSERT INTO {TABLE} … SELECT … FROM t' (ferry's schema, WAL, synchronous=FULL)"
        );
        Ok((count.trim().parse().context("sqlite3 count")?, took.as_secs_f64(), shown))
    } else {
        let url = &run.db.url;
        let (names, _) = tools::psql(
            url,
            &format!("SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '{TABLE}'"),
            false,
        )
        .await?;
        let names: Vec<&str> = names.lines().map(str::trim).filter(|n| !n.is_empty()).collect();
        let mut quoted = Vec::new();
        for column in CUSTOMER_COLUMNS {
            let name = names
                .iter()
                .find(|n| n.eq_ignore_ascii_case(column))
                .with_context(|| format!("ferry's table {TABLE} has no column {column}"))?;
            quoted.push(format!("\"{name}\""));
        }
        let create = format!(
            "CREATE SCHEMA ferry_floor; CREATE SEQUENCE ferry_floor.versions; \
             CREATE TABLE ferry_floor.{TABLE} (LIKE public.{TABLE} INCLUDING ALL); \
             ALTER TABLE ferry_floor.{TABLE} ALTER _id SET DEFAULT gen_random_uuid(), \
             ALTER _company SET DEFAULT 'usmf', ALTER _created_at SET DEFAULT now(), \
             ALTER _modified_at SET DEFAULT now(), ALTER _version SET DEFAULT nextval('ferry_floor.versions')"
        );
        tools::psql(url, &create, true).await?;
        let copy = format!("\\copy ferry_floor.{TABLE} ({}) FROM '{csv}' CSV HEADER", quoted.join(", "));
        let loaded = tools::psql(url, &copy, true).await;
        let counted = tools::psql(url, &format!("SELECT count(*) FROM ferry_floor.{TABLE}"), false).await;
        tools::psql(url, "SET client_min_messages = warning; DROP SCHEMA ferry_floor CASCADE", true).await?;
        let ((_, took), (count, _)) = (loaded?, counted?);
        let shown = format!(
            "psql -c \"\\copy ferry_floor.{TABLE} (…) FROM 'customers.csv' CSV HEADER\" (a copy of ferry's table: types, key, indexes)"
        );
        Ok((count.trim().parse().context("psql count")?, took.as_secs_f64(), shown))
    }
}
