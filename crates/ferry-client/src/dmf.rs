//! The data management package API as RIS's Import and Export jobs and the Logic Apps call it:
//! `GetAzureWriteUrl` (its value a string holding JSON), the upload to that signed URL in
//! blocks (Put Block, then Put Block List; one Put Blob for a small file), `ImportFromPackage`,
//! `ExportToPackage`, `GetExportedPackageUrl` (`""` until ready) and the download of a signed
//! URL without a token, and the error actions. Blob URLs carry their credential: they are sent
//! without a token and never logged with their query.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::error::{ClientError, ClientResult};
use crate::files::{Progress, save_response};
use crate::http::Connection;

/// The actions' path prefix.
const ACTIONS: &str = "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.";
/// The block size of uploads (Azure's SDKs use 4 MiB and up).
pub const BLOCK_BYTES: usize = 4 * 1024 * 1024;

/// An `ImportFromPackage` call.
#[derive(Clone, Debug, Default)]
pub struct PackageImport {
    pub project: String,
    pub company: Option<String>,
    /// The caller's execution id (a retried call with the same one is answered `409`, which
    /// means it was taken the first time), or `None` for a new one.
    pub execution_id: Option<String>,
    /// `false` stages and validates only.
    pub execute: bool,
}

/// An `ExportToPackage` call.
#[derive(Clone, Debug, Default)]
pub struct PackageExport {
    pub project: String,
    pub company: Option<String>,
    pub execution_id: Option<String>,
    pub package_name: Option<String>,
}

impl Connection {
    /// Calls a package action; answers its flat `value`.
    pub async fn dmf_action(&self, action: &str, body: &Value) -> ClientResult<Value> {
        let answer = self.post_json(action, &format!("{ACTIONS}{action}"), body).await?;
        Ok(answer.get("value").cloned().unwrap_or(Value::Null))
    }

    /// A signed URL to upload a package to.
    pub async fn write_url(&self, unique_name: &str) -> ClientResult<String> {
        let value = self.dmf_action("GetAzureWriteUrl", &json!({ "uniqueFileName": unique_name })).await?;
        let inner: Value = value
            .as_str()
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| ClientError::protocol("GetAzureWriteUrl", &self.url(ACTIONS), "value holds no JSON"))?;
        inner["BlobUrl"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClientError::protocol("GetAzureWriteUrl", &self.url(ACTIONS), "no BlobUrl"))
    }

    /// Uploads `path` to a signed blob URL: one Put Blob when it fits in a block, else Put Block
    /// for each block (read one at a time) and Put Block List.
    pub async fn upload_blob(&self, url: &str, path: &Path, progress: Arc<dyn Progress>) -> ClientResult<()> {
        let what = format!("upload {}", path.display());
        let io = |e| ClientError::io(format!("cannot read {}", path.display()), e);
        let mut file = tokio::fs::File::open(path).await.map_err(io)?;
        let size = file.metadata().await.map_err(io)?.len();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        progress.start(&name, Some(size));
        let result = async {
            let mut ids = Vec::new();
            let mut done = 0u64;
            loop {
                let mut block = Vec::with_capacity(BLOCK_BYTES.min(size as usize + 1));
                (&mut file).take(BLOCK_BYTES as u64).read_to_end(&mut block).await.map_err(io)?;
                let single = ids.is_empty() && (block.len() as u64) == size;
                if block.is_empty() && !ids.is_empty() {
                    break;
                }
                let block = bytes::Bytes::from(block);
                if single {
                    self.send(&what, false, |http| {
                        Ok(http.put(url).header("x-ms-blob-type", "BlockBlob").body(block.clone()))
                    })
                    .await?;
                    progress.advance(size);
                    return Ok(());
                }
                let id = base64::engine::general_purpose::STANDARD.encode(format!("block-{:08}", ids.len()));
                let block_url = format!("{url}&comp=block&blockid={}", crate::status::encode(&id));
                self.send(&what, false, |http| Ok(http.put(&block_url).body(block.clone()))).await?;
                done += block.len() as u64;
                progress.advance(done);
                ids.push(id);
            }
            let mut list = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
            for id in &ids {
                list.push_str(&format!("<Latest>{id}</Latest>"));
            }
            list.push_str("</BlockList>");
            let list_url = format!("{url}&comp=blocklist");
            self.send(&what, false, |http| Ok(http.put(&list_url).body(list.clone()))).await?;
            Ok(())
        }
        .await;
        progress.finish();
        result
    }

    /// Queues the import of an uploaded package; answers the execution id.
    pub async fn import_from_package(&self, package_url: &str, request: &PackageImport) -> ClientResult<String> {
        let body = json!({
            "packageUrl": package_url,
            "definitionGroupId": request.project,
            "executionId": request.execution_id.clone().unwrap_or_default(),
            "execute": request.execute,
            "overwrite": false,
            "legalEntityId": request.company.clone().unwrap_or_default(),
        });
        self.execution_call("ImportFromPackage", &body, request.execution_id.as_deref()).await
    }

    /// Queues an export of a project to a package; answers the execution id.
    pub async fn export_to_package(&self, request: &PackageExport) -> ClientResult<String> {
        let execution_id = request.execution_id.clone().unwrap_or_default();
        let body = json!({
            "definitionGroupId": request.project,
            "packageName": request.package_name.clone().unwrap_or_else(|| execution_id.clone()),
            "executionId": execution_id,
            "reExecute": false,
            "legalEntityId": request.company.clone().unwrap_or_default(),
        });
        self.execution_call("ExportToPackage", &body, request.execution_id.as_deref()).await
    }

    /// An action that answers an execution id. With the caller's own id, `409` means the id is
    /// taken — by this very call when an earlier attempt's answer was lost — so it answers the id.
    async fn execution_call(&self, action: &str, body: &Value, execution_id: Option<&str>) -> ClientResult<String> {
        match self.dmf_action(action, body).await {
            Ok(value) => value
                .as_str()
                .filter(|v| !v.is_empty() && *v != "00000000-0000-0000-0000-000000000000")
                .map(str::to_owned)
                .ok_or_else(|| {
                    ClientError::protocol(action, &self.url(ACTIONS), format!("no execution id in {value}"))
                }),
            Err(e) if e.status() == Some(409) && execution_id.is_some_and(|id| !id.is_empty()) => {
                tracing::info!(action, execution_id, "the execution id is taken: the call was accepted before");
                Ok(execution_id.unwrap_or_default().to_owned())
            }
            Err(e) => Err(e),
        }
    }

    /// The signed URL of an exported package, `None` until it is ready.
    pub async fn exported_package_url(&self, execution_id: &str) -> ClientResult<Option<String>> {
        let value = self.dmf_action("GetExportedPackageUrl", &json!({ "executionId": execution_id })).await?;
        Ok(value.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
    }

    /// Downloads a signed URL (no token) into `dest`.
    pub async fn download_signed(&self, url: &str, dest: &Path, progress: &dyn Progress) -> ClientResult<u64> {
        let what = format!("download {}", dest.display());
        let response = self.send(&what, false, |http| Ok(http.get(url))).await?;
        save_response(response, dest, progress).await
    }

    /// GetAzureWriteUrl, the upload of `zip`, ImportFromPackage: answers the execution id.
    pub async fn import_package(
        &self,
        zip: &Path,
        request: &PackageImport,
        progress: Arc<dyn Progress>,
    ) -> ClientResult<String> {
        let name = format!("{}.zip", uuid::Uuid::new_v4());
        let url = self.write_url(&name).await?;
        self.upload_blob(&url, zip, progress).await?;
        self.import_from_package(&url, request).await
    }

    /// Polls GetExecutionSummaryStatus every `interval` until the execution finishes or
    /// `deadline` passes; answers the last status.
    pub async fn wait_execution(
        &self,
        execution_id: &str,
        deadline: std::time::Instant,
        interval: std::time::Duration,
    ) -> ClientResult<(String, crate::Outcome)> {
        loop {
            let (status, outcome) = self.execution_status(execution_id).await?;
            if outcome.is_final() || std::time::Instant::now() >= deadline {
                return Ok((status, outcome));
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Polls GetExportedPackageUrl until the package is there (or `deadline`), then downloads
    /// it into `dest`. Answers `false` when it never appeared.
    pub async fn download_exported_package(
        &self,
        execution_id: &str,
        dest: &Path,
        deadline: std::time::Instant,
        progress: &dyn Progress,
    ) -> ClientResult<bool> {
        loop {
            if let Some(url) = self.exported_package_url(execution_id).await? {
                self.download_signed(&url, dest, progress).await?;
                return Ok(true);
            }
            if std::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    /// `GetExecutionErrors`: the rows `{RecordId, Field, ErrorMessage}` (its value is a string
    /// holding a JSON array).
    pub async fn execution_errors(&self, execution_id: &str) -> ClientResult<Vec<Value>> {
        let value = self.dmf_action("GetExecutionErrors", &json!({ "executionId": execution_id })).await?;
        let text = value.as_str().unwrap_or("[]");
        Ok(serde_json::from_str::<Value>(text).ok().and_then(|v| v.as_array().cloned()).unwrap_or_default())
    }

    /// `GetImportStagingErrorFileUrl`: the signed URL of an entity's rejected records, if any.
    pub async fn staging_error_file_url(&self, execution_id: &str, entity: &str) -> ClientResult<Option<String>> {
        let body = json!({ "executionId": execution_id, "entityName": entity });
        let value = self.dmf_action("GetImportStagingErrorFileUrl", &body).await?;
        Ok(value.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
    }
}
