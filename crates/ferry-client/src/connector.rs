//! The recurring-integration connector API, as RIS and d365fo.integrations call it: `enqueue`
//! (the body streamed from a file or standard input, never held whole; the external identifier
//! in `x-ms-dyn-externalidentifier`, which makes a repeated enqueue of the same file answer the
//! same message), `jobstatus`, and the export side: `dequeue` (`None` on `204`), `download` of
//! the `DownloadLocation` with the token into a file (fsync'd and renamed into place) and `ack`
//! with the dequeue's answer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use crate::error::{ClientError, ClientResult};
use crate::files::{Progress, save_response};
use crate::http::{Connection, read_json};

/// The header carrying the client's own name for an enqueued file.
pub const EXTERNAL_ID_HEADER: &str = "x-ms-dyn-externalidentifier";

/// Where an enqueued body comes from.
#[derive(Clone, Debug)]
pub enum Source {
    File(PathBuf),
    /// Standard input: sent once (it cannot be read again for a retry).
    Stdin,
}

/// One enqueue.
#[derive(Clone, Debug, Default)]
pub struct Enqueue {
    /// The recurring job's activity id.
    pub job: String,
    /// The entity (file jobs).
    pub entity: Option<String>,
    pub company: Option<String>,
    /// The external identifier (RIS sends the file name).
    pub external_id: Option<String>,
}

/// A file the export side handed out.
#[derive(Clone, Debug)]
pub struct Dequeued {
    pub correlation_id: String,
    pub pop_receipt: String,
    pub download_location: String,
    /// The answer as received (sent back with the acknowledgement).
    pub answer: Value,
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

impl Connection {
    /// Enqueues `source` to the job; answers the message id.
    pub async fn enqueue(
        &self,
        request: &Enqueue,
        source: &Source,
        progress: Arc<dyn Progress>,
    ) -> ClientResult<String> {
        let mut query = Vec::new();
        if let Some(entity) = request.entity.as_deref().filter(|e| !e.is_empty()) {
            query.push(format!("entity={}", encode(entity)));
        }
        if let Some(company) = request.company.as_deref().filter(|c| !c.is_empty()) {
            query.push(format!("company={}", encode(company)));
        }
        let mut url = self.url(&format!("/api/connector/enqueue/{}", encode(request.job.trim())));
        if !query.is_empty() {
            url = format!("{url}?{}", query.join("&"));
        }
        let name = match source {
            Source::File(path) => path.display().to_string(),
            Source::Stdin => "standard input".to_owned(),
        };
        let what = format!("enqueue {name}");
        let stdin_used = std::sync::atomic::AtomicBool::new(false);
        let response = self
            .send_with(&what, true, |http| {
                let mut builder = http.post(&url).header(reqwest::header::CONTENT_TYPE, "application/octet-stream");
                if let Some(external) = request.external_id.as_deref().filter(|x| !x.is_empty()) {
                    builder = builder.header(EXTERNAL_ID_HEADER, external);
                }
                let (source, progress, name, what, url) =
                    (source.clone(), progress.clone(), name.clone(), what.clone(), url.clone());
                let replay = stdin_used.swap(true, std::sync::atomic::Ordering::SeqCst);
                async move {
                    let body = match &source {
                        Source::File(path) => {
                            let file = tokio::fs::File::open(path)
                                .await
                                .map_err(|e| ClientError::io(format!("cannot read {}", path.display()), e))?;
                            let size = file
                                .metadata()
                                .await
                                .map_err(|e| ClientError::io(format!("cannot read {}", path.display()), e))?
                                .len();
                            builder = builder.header(reqwest::header::CONTENT_LENGTH, size);
                            progress.start(&name, Some(size));
                            counted(tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024), progress.clone())
                        }
                        Source::Stdin => {
                            if replay {
                                return Err(ClientError::Unreachable {
                                    what,
                                    url,
                                    detail: "the upload from standard input failed and cannot be sent again".into(),
                                });
                            }
                            progress.start(&name, None);
                            counted(tokio_util::io::ReaderStream::new(tokio::io::stdin()), progress.clone())
                        }
                    };
                    Ok(builder.body(body))
                }
            })
            .await;
        progress.finish();
        let response = response?;
        let url = response.url().to_string();
        let text = response.text().await.map_err(|e| ClientError::Unreachable {
            what: what.clone(),
            url: url.clone(),
            detail: e.to_string(),
        })?;
        let id = text.trim().trim_matches('"').to_owned();
        if id.is_empty() {
            return Err(ClientError::protocol(&what, &url, "the answer holds no message id"));
        }
        Ok(id)
    }

    /// The connector's `DataJobStatusDetail` of one message of the job.
    pub async fn job_status(&self, job: &str, message_id: &str) -> ClientResult<Value> {
        let path = format!("/api/connector/jobstatus/{}?jobId={}", encode(job.trim()), encode(message_id.trim()));
        self.get_json("job status", &path).await
    }

    /// The oldest file of an export job not yet acknowledged, hidden from others for the
    /// visibility timeout; `None` when there is none (`204`).
    pub async fn dequeue(&self, job: &str) -> ClientResult<Option<Dequeued>> {
        let what = "dequeue";
        let url = self.url(&format!("/api/connector/dequeue/{}", encode(job.trim())));
        let response = self.send(what, true, |http| Ok(http.get(&url))).await?;
        if response.status().as_u16() == 204 {
            return Ok(None);
        }
        let answer = read_json(what, response).await?;
        if answer.is_null() {
            return Ok(None);
        }
        let field = |name: &str| answer[name].as_str().map(str::to_owned);
        let (Some(correlation_id), Some(download_location)) = (field("CorrelationId"), field("DownloadLocation"))
        else {
            return Err(ClientError::protocol(what, &url, format!("no CorrelationId or DownloadLocation in {answer}")));
        };
        Ok(Some(Dequeued {
            correlation_id,
            pop_receipt: field("PopReceipt").unwrap_or_default(),
            download_location,
            answer,
        }))
    }

    /// Downloads a dequeued file into `dir` (with the token; fsync'd, renamed into place);
    /// answers its path: `<correlation id>-<the server's file name>`.
    pub async fn download(&self, file: &Dequeued, dir: &Path, progress: &dyn Progress) -> ClientResult<PathBuf> {
        let location = self.same_scheme(&file.download_location);
        let what = format!("download {}", file.correlation_id);
        let response = self.send(&what, true, |http| Ok(http.get(&location))).await?;
        let name = attachment_name(&response)
            .unwrap_or_else(|| if is_zip(&response) { "export.zip".into() } else { "export.dat".into() });
        let dest = dir.join(format!("{}-{}", safe_file_name(&file.correlation_id), safe_file_name(&name)));
        save_response(response, &dest, progress).await?;
        Ok(dest)
    }

    /// Acknowledges a dequeued file (sends the dequeue's answer back).
    pub async fn ack(&self, job: &str, file: &Dequeued) -> ClientResult<()> {
        let path = format!("/api/connector/ack/{}", encode(job.trim()));
        self.post_json(&format!("ack {}", file.correlation_id), &path, &file.answer).await?;
        Ok(())
    }

    /// Dynamics has handed out `http://` download locations behind its load balancer: a
    /// location on the environment's host gets the environment's scheme.
    fn same_scheme(&self, location: &str) -> String {
        let base = &self.environment().url;
        match (location.strip_prefix("http://"), base.strip_prefix("https://")) {
            (Some(rest), Some(host)) if rest.starts_with(host.split('/').next().unwrap_or(host)) => {
                format!("https://{rest}")
            }
            _ => location.to_owned(),
        }
    }
}

/// `stream` counting its bytes into `progress`.
fn counted<S>(stream: S, progress: Arc<dyn Progress>) -> reqwest::Body
where
    S: futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send + Sync + 'static,
{
    let mut done = 0u64;
    reqwest::Body::wrap_stream(stream.map(move |chunk| {
        if let Ok(bytes) = &chunk {
            done += bytes.len() as u64;
            progress.advance(done);
        }
        chunk
    }))
}

/// The file name of `Content-Disposition: attachment; filename="…"`.
pub(crate) fn attachment_name(response: &reqwest::Response) -> Option<String> {
    let value = response.headers().get(reqwest::header::CONTENT_DISPOSITION)?.to_str().ok()?;
    let name = value.split("filename=").nth(1)?.split(';').next()?.trim().trim_matches('"');
    (!name.is_empty()).then(|| name.to_owned())
}

fn is_zip(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("zip"))
}

/// `name` with characters no file system takes replaced, and no path in it.
pub fn safe_file_name(name: &str) -> String {
    let cleaned: String =
        name.chars().map(|c| if c.is_control() || "/\\:*?\"<>|".contains(c) { '_' } else { c }).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() { "file".into() } else { cleaned }
}
