//! The export as a client of ferry drives it: an export data project created through the admin
//! API, then the package API's calls — `ExportToPackage`, `GetExecutionSummaryStatus` polled
//! until the execution is no longer `NotRun`/`Executing` (sampling the server's RSS and the rows
//! written so far at every poll), `GetExportedPackageUrl`, and the download of the package from that signed URL without
//! a token. The server's own times of the execution come from `GET /api/messages/{id}`.

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::api::{Api, describe};
use crate::server::Server;

/// The entity set the package API's actions are bound to, with the actions' namespace.
const ACTIONS: &str = "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.";
/// Execution states that are not final yet.
const RUNNING: &[&str] = &["NotRun", "Executing"];
/// Longest a package download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(3600);

fn action(name: &str) -> String {
    format!("{ACTIONS}{name}")
}

/// `PUT /api/admin/projects/{name}`: an export project of Customers V3 as CSV (admin role).
pub async fn create_project(admin: &Api, name: &str) -> Result<()> {
    let body = json!({"operation": "export", "entities": [{"entity": "CustomersV3", "format": "CSV"}]});
    let path = format!("/api/admin/projects/{name}");
    let request = admin.request(Method::PUT, &path).json(&body);
    admin.call(request, &format!("PUT {path}"), StatusCode::CREATED).await.map(drop)
}

/// How the export is watched: the server whose RSS is sampled, the trace file, the pause
/// between two polls and the longest wait.
pub struct Watch<'a> {
    pub server: &'a Server,
    pub trace: &'a Path,
    pub poll: Duration,
    pub timeout: Duration,
}

/// One export as the client saw it.
pub struct Execution {
    pub id: String,
    /// The execution status the last poll answered (`Succeeded` when all went well).
    pub status: String,
    /// The wall clock just before the `ExportToPackage` call (the server's times compare to it).
    pub called_at: DateTime<Utc>,
    /// From just before the call until the poll that saw a final status.
    pub seen_final: Duration,
    pub polls: u64,
    pub timed_out: bool,
    /// The highest `VmRSS` of the server at the polls.
    pub rss_max_mib: Option<f64>,
}

/// Calls `ExportToPackage` for `project` and company `company` (writer role) and polls the
/// execution's summary status until it is final; writes `seconds,rows_written,rss_mib` at
/// every poll to the trace file (the rows from `GET /api/messages/{id}`).
pub async fn export(writer: &Api, project: &str, company: &str, watch: &Watch<'_>) -> Result<Execution> {
    let mut trace =
        std::fs::File::create(watch.trace).with_context(|| format!("creating {}", watch.trace.display()))?;
    writeln!(trace, "seconds,rows_written,rss_mib")?;
    let body = json!({
        "definitionGroupId": project, "packageName": "bench", "executionId": "", "reExecute": false,
        "legalEntityId": company,
    });
    let (called_at, start) = (Utc::now(), Instant::now());
    let request = writer.request(Method::POST, &action("ExportToPackage")).json(&body);
    let answer = writer.call(request, "ExportToPackage", StatusCode::OK).await?;
    let id =
        answer["value"].as_str().filter(|id| !id.is_empty()).context("ExportToPackage answered no execution id")?;
    let mut execution = Execution {
        id: id.to_string(),
        status: String::new(),
        called_at,
        seen_final: Duration::ZERO,
        polls: 0,
        timed_out: false,
        rss_max_mib: None,
    };
    loop {
        let answer =
            writer.post_json_retrying(&action("GetExecutionSummaryStatus"), &json!({"executionId": id})).await?;
        execution.polls += 1;
        execution.status = answer["value"].as_str().unwrap_or_default().to_string();
        let seconds = start.elapsed().as_secs_f64();
        if let Some(rss) = watch.server.rss_mib() {
            execution.rss_max_mib = Some(execution.rss_max_mib.map_or(rss, |m| m.max(rss)));
            let rows = writer.get_json(&format!("/api/messages/{id}")).await?["counters"]["read"].clone();
            writeln!(trace, "{seconds:.2},{rows},{rss:.1}")?;
        }
        if !RUNNING.contains(&execution.status.as_str()) {
            break;
        }
        if start.elapsed() > watch.timeout {
            execution.timed_out = true;
            break;
        }
        tokio::time::sleep(watch.poll).await;
    }
    execution.seen_final = start.elapsed();
    Ok(execution)
}

/// `GetExportedPackageUrl` of a finished execution: the signed URL of its package.
pub async fn package_url(writer: &Api, execution_id: &str) -> Result<String> {
    let answer =
        writer.post_json_retrying(&action("GetExportedPackageUrl"), &json!({"executionId": execution_id})).await?;
    match answer["value"].as_str() {
        Some(url) if !url.is_empty() => Ok(url.to_string()),
        _ => bail!("GetExportedPackageUrl answered no URL for execution {execution_id}: {answer}"),
    }
}

/// Downloads `url` to `file` with no token (the signature is the only credential), streaming;
/// answers the bytes written and how long it took.
pub async fn download(api: &Api, url: &str, file: &Path) -> Result<(u64, Duration)> {
    use futures::StreamExt;
    let start = Instant::now();
    let response = api.http().get(url).timeout(DOWNLOAD_TIMEOUT).send().await.context("downloading the package")?;
    if response.status() != StatusCode::OK {
        bail!("GET of the package URL without a token answered {}", describe(response).await);
    }
    let mut out = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(file).with_context(|| format!("creating {}", file.display()))?,
    );
    let mut bytes = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("reading the package")?;
        bytes += chunk.len() as u64;
        out.write_all(&chunk)?;
    }
    out.flush()?;
    Ok((bytes, start.elapsed()))
}

/// The URL without its query (the signature), for the output.
pub fn without_signature(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// The server's own record of an execution (`GET /api/messages/{executionId}`).
pub struct ServerTimes {
    /// From the call (the tool's wall clock) to `finished_at`.
    pub call_to_finished_s: Option<f64>,
    /// `started_at − enqueued_at`.
    pub queue_wait_s: Option<f64>,
    /// `finished_at − started_at`: reading, writing the CSV, zipping and storing the package.
    pub processing_s: Option<f64>,
    /// The entity's `finished_at − started_at`: reading the rows and writing the CSV.
    pub entity_s: Option<f64>,
    /// Rows the server says it exported (`counters.read`).
    pub rows: Option<u64>,
    /// Why the message is where it is (for an execution that did not succeed).
    pub reason: Value,
}

pub async fn server_times(api: &Api, execution: &Execution) -> Result<ServerTimes> {
    let m = api.get_json(&format!("/api/messages/{}", execution.id)).await?;
    let entity = &m["entities"][0];
    Ok(ServerTimes {
        call_to_finished_s: seconds(Some(execution.called_at), time(&m["finished_at"])),
        queue_wait_s: seconds(time(&m["enqueued_at"]), time(&m["started_at"])),
        processing_s: seconds(time(&m["started_at"]), time(&m["finished_at"])),
        entity_s: seconds(time(&entity["started_at"]), time(&entity["finished_at"])),
        rows: m["counters"]["read"].as_u64(),
        reason: m["reason"].clone(),
    })
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc))
}

/// `to − from` in seconds, when both are known.
fn seconds(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<f64> {
    let (from, to) = (from?, to?);
    Some((to - from).num_microseconds()? as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_left_out_and_times_subtract() {
        assert_eq!(without_signature("http://h/blobs/k.zip?sv=1&sig=x"), "http://h/blobs/k.zip");
        assert_eq!(without_signature("http://h/blobs/k.zip"), "http://h/blobs/k.zip");
        let (a, b) = (time(&json!("2026-01-01T00:00:00Z")), time(&json!("2026-01-01T00:00:01.5Z")));
        assert_eq!(seconds(a, b), Some(1.5));
        assert_eq!(seconds(a, time(&Value::Null)), None);
    }
}
