//! Reading a whole entity set: server-driven paging (follow `@odata.nextLink`), client-driven
//! paging (`$top` + `$skip`), and the reference read of the same table with the database's own
//! command-line client.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::api::{Api, describe};

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
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn to_json(&self) -> serde_json::Value {
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
    let mut request = api.get(url);
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

/// Runs one statement with the database's own command-line client (`sqlite3` or `psql`),
/// output discarded. Answers how long the client took and the command line as shown.
fn run_cli(database: &str, sqlite_sql: &str, postgres_sql: &str) -> Result<(Duration, String)> {
    let (mut command, shown) = if let Some(rest) = database.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        let path = path.split('?').next().unwrap_or(path);
        let mut c = Command::new("sqlite3");
        c.arg(path).arg(sqlite_sql);
        (c, format!("sqlite3 {path} \"{sqlite_sql}\""))
    } else if database.starts_with("postgres:") || database.starts_with("postgresql:") {
        let mut c = Command::new("psql");
        c.arg("-X").arg("-q").arg("-v").arg("ON_ERROR_STOP=1").arg(database).arg("-c").arg(postgres_sql);
        (c, format!("psql <url> -c \"{postgres_sql}\""))
    } else {
        bail!("unknown database URL scheme (want sqlite:// or postgres://)");
    };
    let start = Instant::now();
    let output = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {shown} (is the client installed?)"))?;
    let elapsed = start.elapsed();
    if !output.status.success() {
        bail!("{shown} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok((elapsed, shown))
}

/// The reference read: the whole customer table through `sqlite3` or `psql`.
pub fn reference_read(database: &str) -> Result<(Duration, String)> {
    run_cli(database, "SELECT * FROM e_customerv3", "\\copy (SELECT * FROM e_customerv3) TO '/dev/null'")
}

/// Refreshes the planner statistics of the customer table (`ANALYZE`), as a database that has
/// been running a while would have them.
pub fn analyze(database: &str) -> Result<(Duration, String)> {
    run_cli(database, "ANALYZE e_customerv3", "ANALYZE e_customerv3")
}
