//! The reference for single-row writes: what the database itself commits durably, one row per
//! transaction, with ferry idle — `sqlite3` running INSERTs in autocommit in a fresh file (WAL,
//! `synchronous=FULL`, as ferry opens its database), `pgbench` running one-row INSERT
//! transactions from concurrent clients into a scratch table of ferry's database. Used beside
//! the one-row messages (import) and the single-row POSTs (odata).

use anyhow::Result;
use std::path::Path;

use crate::databases::FerryDatabase;

/// Most one-row commits a reference run makes.
pub const REFERENCE_COMMITS: u64 = 5_000;

/// `commits` durable one-row commits (on PostgreSQL from `clients` clients, 1 to 64); answers the
/// commits made, the seconds they took and the command as shown.
pub async fn one_row_commits(db: &FerryDatabase, dir: &Path, clients: u64, commits: u64) -> Result<(u64, f64, String)> {
    if db.sqlite_file.is_some() {
        let file = dir.join("commits.db");
        let script = dir.join("commits.sql");
        let mut sql = String::from(
            "PRAGMA journal_mode=WAL;\nPRAGMA synchronous=FULL;\nCREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);\n",
        );
        for i in 0..commits {
            sql.push_str(&format!("INSERT INTO t (v) VALUES ('row {i}');\n"));
        }
        std::fs::write(&script, sql)?;
        let read = format!(".read '{}'", script.display());
        let (_, took) = crate::tools::sqlite3(&file, &[&read], true).await?;
        for f in [&file, &script] {
            let _ = std::fs::remove_file(f);
        }
        let shown = format!(
            "sqlite3 {} \".read commits.sql\": {commits} INSERTs in autocommit, WAL, synchronous=FULL",
            file.display()
        );
        Ok((commits, took.as_secs_f64(), shown))
    } else {
        let clients = u32::try_from(clients.clamp(1, 64)).expect("at most 64");
        let per_client = (commits / u64::from(clients)).max(1);
        crate::tools::psql(&db.url, "CREATE TABLE ferry_ref_commits (id BIGSERIAL PRIMARY KEY, v TEXT)", true).await?;
        let script = dir.join("commits.pgbench");
        std::fs::write(&script, "INSERT INTO ferry_ref_commits (v) VALUES ('row');\n")?;
        let ran = crate::tools::pgbench(&db.url, &script, clients, per_client).await;
        crate::tools::psql(&db.url, "DROP TABLE ferry_ref_commits", true).await?;
        let _ = std::fs::remove_file(&script);
        let (_, took) = ran?;
        let shown = format!("pgbench -c {clients} -t {per_client}: one-row INSERT transactions");
        Ok((per_client * u64::from(clients), took.as_secs_f64(), shown))
    }
}
