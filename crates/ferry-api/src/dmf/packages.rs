//! The package actions: uploading and importing packages (`GetAzureWriteUrl`,
//! `ImportFromPackage[Async]`), exporting projects to packages (`ExportToPackage[Async]`,
//! `ExportToPackagePreview[Async]`, `ExportToPackageDelta`, `GetExportedPackageUrl`), the files
//! an execution leaves (`GenerateImportTargetErrorKeysFile`, `GetImportTargetErrorKeysFileUrl`,
//! `GetImportStagingErrorFileUrl`, `GetExecutionSummaryPageUrl`) and `DeleteExecutionHistoryJob`.
//! URLs handed out are ferry's own signed blob URLs (`blob_api`), valid for
//! `export.url_lifetime`; `""` means "not (yet) there", as clients poll for it.

use super::Call;
use crate::blob_api::{BlobPermissions, BlobUrlError, dmf_blob_key};
use crate::error::{ApiError, ApiResult};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferry_domain::ExecutionParameters;
use ferry_integration::{PackageExport, PackageImport, PackageSource};
use serde_json::{Value, json};

/// The package actions.
pub(super) const ACTIONS: [&str; 14] = [
    "GetAzureWriteUrl",
    "ImportFromPackage",
    "ImportFromPackageAsync",
    "ExportToPackage",
    "ExportToPackageAsync",
    "ExportToPackagePreview",
    "ExportToPackagePreviewAsync",
    "ExportToPackageDelta",
    "GetExportedPackageUrl",
    "GetExecutionSummaryPageUrl",
    "GenerateImportTargetErrorKeysFile",
    "GetImportTargetErrorKeysFileUrl",
    "GetImportStagingErrorFileUrl",
    "DeleteExecutionHistoryJob",
];

/// The package actions that only read: the reader role is enough for them.
pub(super) const READING: [&str; 4] = [
    "GetExportedPackageUrl",
    "GetExecutionSummaryPageUrl",
    "GetImportTargetErrorKeysFileUrl",
    "GetImportStagingErrorFileUrl",
];

pub(super) async fn run(call: &Call<'_>) -> ApiResult<Response> {
    let integration = call.state.import()?;
    match call.name {
        "GetAzureWriteUrl" => {
            let name = call.optional(&["uniqueFileName"])?.unwrap_or_else(|| "package.zip".into());
            let blob_id = uuid::Uuid::new_v4();
            let key = dmf_blob_key(blob_id, &name);
            let url = sign(call, &key, BlobPermissions::ReadWrite)?;
            let value = json!({ "BlobId": format!("{{{}}}", blob_id.hyphenated()), "BlobUrl": url });
            call.string(value.to_string())
        }
        "ImportFromPackage" | "ImportFromPackageAsync" => {
            let url = call.param(&["packageUrl"])?;
            let source = match call.state.blob_urls()?.blob_key_of(&url) {
                Ok(key) => PackageSource::Blob(key),
                Err(BlobUrlError::NotABlobUrl(_)) => PackageSource::Url(url),
                Err(e) => return Err(ApiError::bad_request(format!("packageUrl: {e}")).with_target("packageUrl")),
            };
            let request = PackageImport {
                source,
                project: call.param(&["definitionGroupId"])?,
                execution_id: call.optional(&["executionId"])?,
                execute: call.flag("execute", true)?,
                company: call.optional(&["legalEntityId"])?,
                client_id: call.principal.client_id.clone(),
                app_default_company: call.principal.default_company.clone(),
            };
            call.string(integration.import_from_package(request).await?)
        }
        "ExportToPackage"
        | "ExportToPackageAsync"
        | "ExportToPackagePreview"
        | "ExportToPackagePreviewAsync"
        | "ExportToPackageDelta" => {
            let mut parameters = ExecutionParameters::default();
            if call.name.starts_with("ExportToPackagePreview") {
                let count = call.param(&["count", "exportPreviewCount"])?;
                let count = count.parse::<u64>().ok().filter(|n| (1..=1_000_000).contains(n)).ok_or_else(|| {
                    ApiError::bad_request("count must be a whole number from 1 to 1000000").with_target("count")
                })?;
                parameters.preview_rows = Some(count);
            }
            if call.name == "ExportToPackageDelta" {
                parameters.delta = true;
            }
            parameters.entities = entity_list(call)?;
            let request = PackageExport {
                project: call.param(&["definitionGroupId"])?,
                execution_id: call.optional(&["executionId"])?,
                package_name: call.optional(&["packageName"])?,
                re_execute: call.flag("reExecute", false)?,
                company: call.optional(&["legalEntityId"])?,
                parameters,
                client_id: call.principal.client_id.clone(),
                app_default_company: call.principal.default_company.clone(),
            };
            call.string(integration.export_to_package(request).await?)
        }
        "GetExportedPackageUrl" => {
            let id = call.param(&["executionId"])?;
            match integration.exported_package(&id).await? {
                Some((_, key)) => call.string(sign(call, &key, BlobPermissions::Read)?),
                None => call.string(""),
            }
        }
        "GetExecutionSummaryPageUrl" => {
            let view = super::status::execution(call).await?;
            let base = call.state.settings().public_url.trim_end_matches('/').to_owned();
            call.string(format!("{base}/api/messages/{}", view.message.id))
        }
        "GenerateImportTargetErrorKeysFile" => {
            let (id, entity) = (call.param(&["executionId"])?, call.param(&["entityName"])?);
            let any = integration.generate_target_error_keys(&id, &entity).await?;
            call.answer("Edm.Boolean", Value::Bool(any))
        }
        "GetImportTargetErrorKeysFileUrl" => {
            let (id, entity) = (call.param(&["executionId"])?, call.param(&["entityName"])?);
            let key = integration.target_error_keys_file(&id, &entity).await?;
            call.string(key.map(|k| sign(call, &k, BlobPermissions::Read)).transpose()?.unwrap_or_default())
        }
        "GetImportStagingErrorFileUrl" => {
            let (id, entity) = (call.param(&["executionId"])?, call.param(&["entityName"])?);
            let key = integration.staging_error_file(&id, &entity).await?;
            call.string(key.map(|k| sign(call, &k, BlobPermissions::Read)).transpose()?.unwrap_or_default())
        }
        "DeleteExecutionHistoryJob" => {
            integration.delete_execution(&call.param(&["executionId"])?).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        other => unreachable!("{other} is not a package action"),
    }
}

/// A signed URL of `key` valid for the configured lifetime.
fn sign(call: &Call<'_>, key: &str, permissions: BlobPermissions) -> ApiResult<String> {
    let lifetime = call.state.import()?.url_lifetime();
    call.state.blob_urls()?.sign_for(key, permissions, lifetime).map_err(|e| {
        tracing::error!(error = %e, key, "cannot sign a blob URL");
        ApiError::new(crate::error::ErrorKind::Internal, "cannot make the blob URL")
    })
}

/// `entityList`: an array of names, or one string of names separated by commas.
fn entity_list(call: &Call<'_>) -> ApiResult<Vec<String>> {
    let found = call.params.iter().find(|(k, _)| k.eq_ignore_ascii_case("entityList")).map(|(_, v)| v);
    let names: Vec<String> = match found {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::trim).map(str::to_owned).collect(),
        Some(_) => {
            return Err(ApiError::bad_request("entityList must be a list of entity names").with_target("entityList"));
        }
    };
    Ok(names)
}
