//! Reading a whole entity set: server-driven paging (follow `@odata.nextLink`), client-driven
//! paging (`$top` + `$skip`), and the reference read of the same table with the database's own
//! command-line client.

use anyhow::{Context, Result, bail};
use reqwest::Method;
use serde_json::Value;
use std::time::{Duration, Instant};

use crate::api::{Api, describe};
use crate::databases::FerryDatabase;
use crate::stats::per_second;
use crate::tools;

const SELECT: &str = "$select=CustomerAccount,OrganizationName,CreditLimit";

/// Figures of one paging run.
pub struct Paged {
    pub rows: u64,
    pub pages: u64,
    pub elapsed: Duration,
    /// Set when the run stopped before the end (time limit).
    pub note: Option<String>,
}

impl Paged {
    pub fn rate(&self) -> f64 {
        per_second(self.rows as f64, self.elapsed.as_secs_f64())
    }

    /// `1000000 rows  201 pages of 5000  … s  … rows/s`, and the note if any.
    pub fn describe(&self, page_size: u64) -> String {
        let note = self.note.as_deref().map(|n| format!("  NOTE: {n}")).unwrap_or_default();
        format!(
            "{} rows  {} pages of {page_size}  {:.2} s  {:.0} rows/s{note}",
            self.rows,
            self.pages,
            self.elapsed.as_secs_f64(),
            self.rate()
        )
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "rows": self.rows,
            "pages": self.pages,
            "seconds": self.elapsed.as_secs_f64(),
            "rows_per_second": self.rate(),
            "complete": self.note.is_none(),
            "note": self.note,
        })
    }
}

/// Gets one page and answers its rows and next link.
async fn page(api: &Api, url: &str, prefer: Option<&str>) -> Result<(u64, Option<String>)> {
    let mut request = api.request(Method::GET, url);
    if let Some(prefer) = prefer {
        request = request.header("Prefer", prefer);
    }
    let response = request.send().await.with_context(|| format!("GET {url}"))?;
    if !response.status().is_success() {
        bail!("GET {url} answered {}", describe(response).await);
    }
    let bytes = response.bytes().await.with_context(|| format!("reading GET {url}"))?;
    let body: Value = serde_json::from_slice(&bytes).with_context(|| format!("GET {url}: body is not JSON"))?;
    let rows = body["value"].as_array().with_context(|| format!("GET {url}: no value array"))?.len() as u64;
    let next = body["@odata.nextLink"].as_str().map(str::to_string);
    Ok((rows, next))
}

/// Follows `@odata.nextLink` from the first page until it is absent, with
/// `Prefer: odata.maxpagesize=<page_size>`. Stops after `limit` (or `max_pages`).
pub async fn server_driven(api: &Api, page_size: u64, limit: Duration, max_pages: u64) -> Result<Paged> {
    let prefer = format!("odata.maxpagesize={page_size}");
    let mut url = api.url(&format!("/data/CustomersV3?{SELECT}"));
    let start = Instant::now();
    let mut paged = Paged { rows: 0, pages: 0, elapsed: Duration::ZERO, note: None };
    loop {
        let (rows, next) = page(api, &url, Some(&prefer)).await?;
        paged.rows += rows;
        paged.pages += 1;
        match next {
            None => break,
            Some(next) => url = next,
        }
        if start.elapsed() > limit || paged.pages >= max_pages {
            paged.note = Some(format!(
                "stopped after {:.0} s / {} pages; incomplete",
                start.elapsed().as_secs_f64(),
                paged.pages
            ));
            break;
        }
    }
    paged.elapsed = start.elapsed();
    Ok(paged)
}

/// Pages with `$top=<page_size>&$skip=k*<page_size>` (no `$orderby`) until a page comes back
/// short. Stops after `limit`, reporting what it read.
pub async fn client_driven(api: &Api, page_size: u64, limit: Duration, max_pages: u64) -> Result<Paged> {
    let start = Instant::now();
    let mut paged = Paged { rows: 0, pages: 0, elapsed: Duration::ZERO, note: None };
    loop {
        let skip = paged.pages * page_size;
        let url = api.url(&format!("/data/CustomersV3?{SELECT}&$top={page_size}&$skip={skip}"));
        let (rows, _) = page(api, &url, None).await?;
        paged.rows += rows;
        paged.pages += 1;
        if rows < page_size {
            break;
        }
        if start.elapsed() > limit || paged.pages >= max_pages {
            paged.note = Some(format!(
                "stopped after {:.0} s at $skip={}; incomplete",
                start.elapsed().as_secs_f64(),
                skip + page_size
            ));
            break;
        }
    }
    paged.elapsed = start.elapsed();
    Ok(paged)
}

/// Runs one statement with the database's own client (`sqlite3` or `psql`), output discarded;
/// answers how long the client took and the command line as shown.
async fn run_cli(db: &FerryDatabase, sqlite_sql: &str, postgres_sql: &str) -> Result<(Duration, String)> {
    match &db.sqlite_file {
        Some(file) => {
            let (_, took) = tools::sqlite3(file, &[sqlite_sql], true).await?;
            Ok((took, format!("sqlite3 {} \"{sqlite_sql}\"", file.display())))
        }
        None => {
            let (_, took) = tools::psql(&db.url, postgres_sql, true).await?;
            Ok((took, format!("psql <url> -c \"{postgres_sql}\"")))
        }
    }
}

/// The reference read: the whole customer table through `sqlite3` or `psql`.
pub async fn reference_read(db: &FerryDatabase) -> Result<(Duration, String)> {
    run_cli(db, "SELECT * FROM e_customerv3", "\\copy (SELECT * FROM e_customerv3) TO '/dev/null'").await
}

/// Refreshes the planner statistics of the customer table (`ANALYZE`), as a database that has
/// been running a while would have them.
pub async fn analyze(db: &FerryDatabase) -> Result<(Duration, String)> {
    run_cli(db, "ANALYZE e_customerv3", "ANALYZE e_customerv3").await
}
