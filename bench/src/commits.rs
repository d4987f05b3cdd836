//! The reference for single-row writes: what the database itself commits durably, one row per
//! transaction, with ferry idle — `sqlite3` running INSERTs in autocommit in a fresh file (WAL,
//! `synchronous=FULL`, as ferry opens its database), `pgbench` running one-row INSERT
//! transactions from concurrent clients into a scratch table of ferry's database. Used beside
//! the one-row messages (import) and the single-row POSTs (odata).
//!
//! pgbench runs at least [`POSTGRES_REFERENCE_COMMITS`] and its own rate is taken (connections
//! excluded): 5,000 commits from 16 clients end in a third of a second, of which opening the
//! connections and the first plans are a fifth — a reference ferry's warm, seconds-long runs
//! would beat unfairly.

use anyhow::{Context as _, Result};
use std::path::Path;

use crate::databases::FerryDatabase;

/// Most one-row commits a reference run makes.
pub const REFERENCE_COMMITS: u64 = 5_000;

/// Fewest one-row commits pgbench makes (about two seconds on this machine).
pub const POSTGRES_REFERENCE_COMMITS: u64 = 40_000;

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
        let per_client = (commits.max(POSTGRES_REFERENCE_COMMITS) / u64::from(clients)).max(1);
        crate::tools::psql(&db.url, "CREATE TABLE ferry_ref_commits (id BIGSERIAL PRIMARY KEY, v TEXT)", true).await?;
        let script = dir.join("commits.pgbench");
        std::fs::write(&script, "INSERT INTO ferry_ref_commits (v) VALUES ('row');\n")?;
        let ran = crate::tools::pgbench(&db.url, &script, clients, per_client).await;
        crate::tools::psql(&db.url, "DROP TABLE ferry_ref_commits", true).await?;
        let _ = std::fs::remove_file(&script);
        let (out, _) = ran?;
        let made = per_client * u64::from(clients);
        let rate = pgbench_rate(&out).with_context(|| format!("pgbench printed no rate:\n{out}"))?;
        let shown = format!(
            "pgbench -c {clients} -t {per_client}: one-row INSERT transactions, its own rate without connecting"
        );
        Ok((made, made as f64 / rate, shown))
    }
}

/// The rate in pgbench's `tps = 12345.6 (without initial connection time)` line.
fn pgbench_rate(out: &str) -> Option<f64> {
    let line = out.lines().find(|l| l.starts_with("tps = ") && l.contains("without initial connection"))?;
    line["tps = ".len()..].split_whitespace().next()?.parse().ok().filter(|r: &f64| *r > 0.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pgbench_rate_is_read_from_its_report() {
        let out = "latency average = 0.656 ms\ninitial connection time = 44.301 ms\ntps = 24389.439276 (without initial connection time)\n";
        assert_eq!(super::pgbench_rate(out), Some(24389.439276));
        assert_eq!(super::pgbench_rate("tps = 0 (without initial connection time)"), None);
        assert_eq!(super::pgbench_rate("nothing"), None);
    }
}
