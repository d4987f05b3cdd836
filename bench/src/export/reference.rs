//! The reference: the same customer table dumped to a CSV file by the database's own client,
//! timed around the client process only — `sqlite3 <file> -csv "SELECT * FROM e_customerv3" >
//! dump.csv` (no header) or `psql <url> -c "\copy (SELECT * FROM e_customerv3) TO 'dump.csv'
//! WITH CSV HEADER"` — and its rows counted.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

use super::check;
use crate::databases::FerryDatabase;
use crate::stats::per_second;
use crate::tools::{self, Stdout};

/// The entity table of Customers V3 (`e_<logical name>`).
const TABLE: &str = "e_customerv3";

/// Figures of one reference dump.
pub struct Dump {
    pub rows: u64,
    pub elapsed: Duration,
    pub bytes: u64,
    pub command: String,
}

impl Dump {
    pub fn rate(&self) -> f64 {
        per_second(self.rows as f64, self.elapsed.as_secs_f64())
    }

    pub fn to_json(&self) -> Value {
        json!({
            "rows": self.rows, "seconds": self.elapsed.as_secs_f64(), "rows_per_second": self.rate(),
            "bytes": self.bytes, "command": self.command,
        })
    }
}

/// Dumps the customer table of `db` to `out` with `sqlite3` or `psql`; counts the rows written.
pub async fn dump(db: &FerryDatabase, out: &Path) -> Result<Dump> {
    let file = out.to_str().filter(|p| !p.contains('\'')).context("the dump path must be UTF-8 without quotes")?;
    let select = format!("SELECT * FROM {TABLE}");
    let (elapsed, command, header) = match &db.sqlite_file {
        Some(db_file) => {
            let (_, took) = tools::sqlite3_to(db_file, &["-csv", &select], Stdout::File(out)).await?;
            (took, format!("sqlite3 {} -csv \"{select}\" > {file}", db_file.display()), false)
        }
        None => {
            let copy = format!("\\copy ({select}) TO '{file}' WITH CSV HEADER");
            let (_, took) = tools::psql(&db.url, &copy, true).await?;
            (took, format!("psql <url> -c \"{copy}\""), true)
        }
    };
    let bytes = std::fs::metadata(out).with_context(|| format!("reading the size of {file}"))?.len();
    let counted = tokio::task::spawn_blocking({
        let out = out.to_path_buf();
        move || check::file(&out, header)
    })
    .await??;
    Ok(Dump { rows: counted.rows, elapsed, bytes, command })
}
