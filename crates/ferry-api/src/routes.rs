//! The route table: every endpoint is registered here once, which both builds the axum router
//! and records the documentation `/openapi.json` is generated from (`routes/openapi.rs`), so
//! the two cannot drift.

mod dispatch;
mod openapi;
pub(crate) use openapi::openapi;

use crate::error::ApiError;
use crate::{ApiState, auth, connector, delivery, dmf, exporter, import_admin, messages, oauth, odata, ops};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get, post};
use tower_http::catch_panic::CatchPanicLayer;

/// Largest request body accepted by the entity API.
const BODY_LIMIT_BYTES: usize = 4 * 1024 * 1024;

/// One documented endpoint.
#[derive(Clone, Debug)]
pub(crate) struct RouteDoc {
    pub method: &'static str,
    /// OpenAPI path (`/data/{entitySet}`).
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub secured: bool,
}

struct Table {
    public: Router<ApiState>,
    secured: Router<ApiState>,
    docs: Vec<RouteDoc>,
}

impl Table {
    /// Registers `handler` at `axum_path`, documented under `doc_path` for each of `methods`.
    fn add(
        &mut self,
        secured: bool,
        axum_path: &str,
        handler: MethodRouter<ApiState>,
        docs: &[(&'static str, &'static str, &'static str, &'static str)],
    ) {
        for (method, doc_path, summary, tag) in docs {
            self.docs.push(RouteDoc { method, path: doc_path, summary, tag, secured });
        }
        if secured {
            self.secured = std::mem::take(&mut self.secured).route(axum_path, handler);
        } else {
            self.public = std::mem::take(&mut self.public).route(axum_path, handler);
        }
    }
}

pub(crate) fn build(state: ApiState) -> (Router, Vec<RouteDoc>) {
    let mut t = Table { public: Router::new(), secured: Router::new(), docs: Vec::new() };
    const AUTH: &str = "OAuth 2.0";
    const OPS: &str = "Operations";
    const ODATA: &str = "OData entities";
    const META: &str = "F&O metadata service";

    t.add(
        false,
        "/oauth2/token",
        post(oauth::token_ferry),
        &[("post", "/oauth2/token", "Issue an access token (client credentials; `scope` or `resource`)", AUTH)],
    );
    t.add(
        false,
        "/{tenant}/oauth2/token",
        post(oauth::token_v1),
        &[("post", "/{tenant}/oauth2/token", "Issue an access token, Entra ID v1 shape (`resource`)", AUTH)],
    );
    t.add(
        false,
        "/{tenant}/oauth2/v2.0/token",
        post(oauth::token_v2),
        &[(
            "post",
            "/{tenant}/oauth2/v2.0/token",
            "Issue an access token, Entra ID v2 shape (`scope=<url>/.default`)",
            AUTH,
        )],
    );
    t.add(
        false,
        "/.well-known/openid-configuration",
        get(oauth::openid_configuration),
        &[("get", "/.well-known/openid-configuration", "OpenID Connect discovery document", AUTH)],
    );
    t.add(
        false,
        "/{tenant}/v2.0/.well-known/openid-configuration",
        get(oauth::openid_configuration),
        &[(
            "get",
            "/{tenant}/v2.0/.well-known/openid-configuration",
            "OpenID Connect discovery document (Entra-shaped path)",
            AUTH,
        )],
    );
    t.add(false, "/discovery/keys", get(oauth::jwks), &[("get", "/discovery/keys", "Token signing keys (JWKS)", AUTH)]);
    t.add(
        false,
        "/{tenant}/discovery/v2.0/keys",
        get(oauth::jwks),
        &[("get", "/{tenant}/discovery/v2.0/keys", "Token signing keys (JWKS, Entra-shaped path)", AUTH)],
    );
    t.add(false, "/healthz", get(ops::healthz), &[("get", "/healthz", "Liveness: the process answers", OPS)]);
    t.add(false, "/readyz", get(ops::readyz), &[("get", "/readyz", "Readiness: the database answers", OPS)]);
    t.add(false, "/openapi.json", get(openapi_json), &[("get", "/openapi.json", "This document", OPS)]);
    t.add(true, "/metrics", get(ops::metrics), &[("get", "/metrics", "Prometheus metrics", OPS)]);

    // Signed blob URLs: the signature in the query is the credential (no bearer token); the
    // handler streams bodies with its own caps.
    const BLOBS: &str = "Blob URLs (Azure Blob REST)";
    t.add(
        false,
        "/blobs/{*key}",
        any(crate::blob_api::handle).layer(DefaultBodyLimit::disable()),
        &[
            (
                "put",
                "/blobs/{key}",
                "Put Blob (x-ms-blob-type: BlockBlob), Put Block (?comp=block&blockid=) or Put Block List (?comp=blocklist) on a signed read/write URL; 201",
                BLOBS,
            ),
            ("get", "/blobs/{key}", "Get Blob, whole (200) or a range (x-ms-range / Range: 206)", BLOBS),
            ("head", "/blobs/{key}", "Get Blob Properties: size, ETag, Last-Modified", BLOBS),
        ],
    );

    let entity_docs: &[(&str, &str, &str, &str)] = &[
        ("get", "/data", "Service document: the entity sets", ODATA),
        ("get", "/data/$metadata", "CSDL metadata of all entities and enums", ODATA),
        (
            "get",
            "/data/{entitySet}",
            "Query an entity set ($filter, $select, $orderby, $top, $skip, $count, cross-company, change tracking with Prefer: odata.track-changes)",
            ODATA,
        ),
        ("post", "/data/{entitySet}", "Create a record", ODATA),
        ("get", "/data/{entitySet}({key})", "Read one record by key", ODATA),
        ("patch", "/data/{entitySet}({key})", "Change fields of one record", ODATA),
        ("delete", "/data/{entitySet}({key})", "Delete one record", ODATA),
        ("get", "/data/{entitySet}/$count", "Count records", ODATA),
    ];
    let dataverse_docs: &[(&str, &str, &str, &str)] = &[
        (
            "get",
            "/api/data/v9.2/{entitySet}",
            "The entity API under the Dataverse Web API prefix (same operations as /data)",
            ODATA,
        ),
        ("post", "/api/data/v9.2/{entitySet}", "Create a record (Dataverse prefix)", ODATA),
        ("patch", "/api/data/v9.2/{entitySet}({key})", "Change a record (Dataverse prefix)", ODATA),
        ("delete", "/api/data/v9.2/{entitySet}({key})", "Delete a record (Dataverse prefix)", ODATA),
    ];
    let metadata_docs: &[(&str, &str, &str, &str)] = &[
        ("get", "/Metadata/DataEntities", "Data entities (Name, PublicEntityName, PublicCollectionName, …)", META),
        ("get", "/Metadata/PublicEntities", "Public entities with their properties (DataType, IsKey, …)", META),
        ("get", "/Metadata/PublicEnumerations", "Enumerations with their members", META),
    ];
    const DMF: &str = "DMF package API";
    // Before `/data/{*path}` in matching (a static segment wins): not a catalog entity set.
    t.add(
        true,
        "/data/DataManagementDefinitionGroups",
        get(dmf::definition_groups),
        &[("get", "/data/DataManagementDefinitionGroups", "The data projects (read-only)", DMF)],
    );
    t.add(
        true,
        "/data/DataManagementDefinitionGroups/{action}",
        any(dmf::action),
        &[
            (
                "post",
                "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.GetMessageStatus",
                "Status of a recurring-import message (`messageId`): Enqueued, Processing, Processed, ProcessedWithErrors, PreProcessingError",
                DMF,
            ),
            (
                "post",
                "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.GetExecutionIdByMessageId",
                "Execution id of a message (`_messageId`); the empty GUID for an unknown message",
                DMF,
            ),
            (
                "post",
                "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.GetExecutionSummaryStatus",
                "DMF execution summary status (`executionId`): NotRun, Executing, Succeeded, PartiallySucceeded, Failed",
                DMF,
            ),
            (
                "post",
                "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.GetEntityExecutionSummaryStatusList",
                "Per-entity status and record counts of an execution (`executionId`)",
                DMF,
            ),
            (
                "post",
                "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.GetExecutionErrors",
                "Rejected rows of an execution (`executionId`, or a message id) as a string holding a JSON array of {RecordId, Field, ErrorMessage}",
                DMF,
            ),
            (
                "post",
                "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.InitializeDataManagement",
                "Accepted for compatibility; nothing to initialize (204)",
                DMF,
            ),
            (
                "post",
                "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.GetAzureWriteUrl",
                "A signed URL to upload a package to (`uniqueFileName`): a string holding {BlobId, BlobUrl}",
                DMF,
            ),
            (
                "post",
                "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.ImportFromPackage",
                "Import an uploaded package into a project (`packageUrl`, `definitionGroupId`, `executionId`, `execute`, `overwrite`, `legalEntityId`); also ImportFromPackageAsync",
                DMF,
            ),
            (
                "post",
                "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.ExportToPackage",
                "Export a project to a package (`definitionGroupId`, `packageName`, `executionId`, `reExecute`, `legalEntityId`); also ExportToPackageAsync, ExportToPackagePreview[Async] (`count`), ExportToPackageDelta (`entityList`)",
                DMF,
            ),
            (
                "post",
                "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.GetExportedPackageUrl",
                "A signed URL of an export's package (`executionId`); \"\" until it is ready",
                DMF,
            ),
            (
                "post",
                "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.GenerateImportTargetErrorKeysFile",
                "Write the keys of the records an entity failed to write (`executionId`, `entityName`); true when there are any. Then GetImportTargetErrorKeysFileUrl; also GetImportStagingErrorFileUrl, GetExecutionSummaryPageUrl",
                DMF,
            ),
            (
                "post",
                "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.DeleteExecutionHistoryJob",
                "Delete a finished execution with its errors and files (`executionId`)",
                DMF,
            ),
        ],
    );
    t.add(true, "/data", any(odata::handle), &entity_docs[..1]);
    t.add(true, "/data/{*path}", any(dispatch::data_path), &entity_docs[1..]);
    t.add(true, "/api/data/v9.2", any(odata::handle), &[]);
    t.add(true, "/api/data/v9.2/{*path}", any(odata::handle), dataverse_docs);
    t.add(true, "/Metadata/{*path}", any(odata::handle), metadata_docs);

    const EXPORT: &str = "Data export (replication)";
    let metadata: [(&'static str, MethodRouter<ApiState>, &'static str, &'static str); 7] = [
        (
            "/crm/exporter/metadata/organizations",
            get(exporter::organizations),
            "get",
            "Organizations the caller can export from",
        ),
        ("/crm/exporter/metadata/discover", get(exporter::discover), "get", "Details of this organization"),
        (
            "/crm/exporter/metadata/connector",
            get(exporter::connector),
            "get",
            "The connector URL profile operations use",
        ),
        (
            "/crm/exporter/metadata/entities",
            get(exporter::entities),
            "get",
            "Exportable entities with their attributes",
        ),
        (
            "/crm/exporter/metadata/relationships",
            get(exporter::relationships),
            "get",
            "Exportable many-to-many relationships",
        ),
        (
            "/crm/exporter/metadata/hasorgacceptedprivacyterms",
            get(exporter::has_accepted_privacy),
            "get",
            "Whether the privacy terms were accepted",
        ),
        (
            "/crm/exporter/metadata/acceptprivacyterms",
            post(exporter::accept_privacy),
            "post",
            "Accept the privacy terms",
        ),
    ];
    for (path, handler, method, summary) in metadata {
        t.add(true, path, handler, &[(method, path, summary, EXPORT)]);
    }
    t.add(
        true,
        "/crm/exporter/profiles",
        get(exporter::list_profiles).post(exporter::create_profile),
        &[
            ("get", "/crm/exporter/profiles", "List export profiles", EXPORT),
            ("post", "/crm/exporter/profiles", "Create an export profile (inactive)", EXPORT),
        ],
    );
    t.add(
        true,
        "/crm/exporter/profiles/validate",
        post(exporter::validate_profile),
        &[(
            "post",
            "/crm/exporter/profiles/validate",
            "Check a profile before creating it: settings, connection, permissions, name collisions",
            EXPORT,
        )],
    );
    t.add(
        true,
        "/crm/exporter/profiles/{id}",
        get(exporter::get_profile).put(exporter::update_profile).delete(exporter::delete_profile),
        &[
            ("get", "/crm/exporter/profiles/{id}", "Read a profile with per-entity status", EXPORT),
            ("put", "/crm/exporter/profiles/{id}", "Update a profile", EXPORT),
            ("delete", "/crm/exporter/profiles/{id}", "Delete a profile (target tables stay)", EXPORT),
        ],
    );
    t.add(
        true,
        "/crm/exporter/profiles/{id}/test",
        get(exporter::test_profile),
        &[("get", "/crm/exporter/profiles/{id}/test", "Run every check against the profile's target", EXPORT)],
    );
    t.add(
        true,
        "/crm/exporter/profiles/{id}/failures",
        get(exporter::failures),
        &[(
            "get",
            "/crm/exporter/profiles/{id}/failures",
            "The failure log (JSON, or text lines with ?format=text)",
            EXPORT,
        )],
    );
    t.add(
        true,
        "/crm/exporter/profiles/{id}/{action}",
        post(exporter::profile_action),
        &[
            ("post", "/crm/exporter/profiles/{id}/activate", "Start schema and data replication", EXPORT),
            ("post", "/crm/exporter/profiles/{id}/activatemetadata", "Start schema replication only", EXPORT),
            ("post", "/crm/exporter/profiles/{id}/activatedata", "Start data replication only", EXPORT),
            ("post", "/crm/exporter/profiles/{id}/deactivate", "Stop replication", EXPORT),
            ("post", "/crm/exporter/profiles/{id}/resync", "Retry every failed record now", EXPORT),
        ],
    );

    const CONNECTOR: &str = "Recurring integrations (connector)";
    // The import service enforces its own limit while streaming (and answers 413).
    t.add(
        true,
        "/api/connector/enqueue/{activityId}",
        post(connector::enqueue).layer(DefaultBodyLimit::disable()),
        &[(
            "post",
            "/api/connector/enqueue/{activityId}",
            "Enqueue a file (`?entity=`, `&company=`) or data package; header x-ms-dyn-externalidentifier; answers the message id as a JSON string",
            CONNECTOR,
        )],
    );
    t.add(
        true,
        "/{tenant}/api/connector/enqueue/{activityId}",
        post(connector::enqueue_with_culture).layer(DefaultBodyLimit::disable()),
        &[],
    );
    t.add(
        true,
        "/api/connector/jobstatus/{activityId}",
        get(connector::job_status),
        &[(
            "get",
            "/api/connector/jobstatus/{activityId}",
            "DataJobStatusDetail of a message (`?jobId=<message id>`)",
            CONNECTOR,
        )],
    );
    t.add(true, "/{tenant}/api/connector/jobstatus/{activityId}", get(connector::job_status_with_culture), &[]);
    t.add(
        true,
        "/api/connector/dequeue/{activityId}",
        get(delivery::dequeue),
        &[(
            "get",
            "/api/connector/dequeue/{activityId}",
            "The oldest exported file not yet acknowledged (204 when none): CorrelationId, PopReceipt, DownloadLocation…; hidden for the visibility timeout",
            CONNECTOR,
        )],
    );
    t.add(true, "/{tenant}/api/connector/dequeue/{activityId}", get(delivery::dequeue_with_culture), &[]);
    t.add(
        true,
        "/api/connector/download/{activityId}",
        get(delivery::download),
        &[(
            "get",
            "/api/connector/download/{activityId}",
            "Download a dequeued file (`?correlation-id=`; Range supported)",
            CONNECTOR,
        )],
    );
    t.add(true, "/{tenant}/api/connector/download/{activityId}", get(delivery::download_with_culture), &[]);
    t.add(
        true,
        "/api/connector/ack/{activityId}",
        post(delivery::ack),
        &[(
            "post",
            "/api/connector/ack/{activityId}",
            "Acknowledge a dequeued file (body: the dequeue answer, at least CorrelationId and PopReceipt)",
            CONNECTOR,
        )],
    );
    t.add(true, "/{tenant}/api/connector/ack/{activityId}", post(delivery::ack_with_culture), &[]);

    const MESSAGES: &str = "Import messages";
    t.add(
        true,
        "/api/messages",
        get(messages::list),
        &[("get", "/api/messages", "Messages, newest first (`activity`, `state`, `before`, `limit`)", MESSAGES)],
    );
    t.add(
        true,
        "/api/messages/{id}",
        get(messages::get),
        &[(
            "get",
            "/api/messages/{id}",
            "One message (by message or execution id): state and why, timings, attempts, counters, warnings, entities",
            MESSAGES,
        )],
    );
    t.add(
        true,
        "/api/messages/{id}/errors",
        get(messages::errors),
        &[(
            "get",
            "/api/messages/{id}/errors",
            "Rejected rows of a message (`stage`, `entity`, `after`, `limit`; `next` pages on)",
            MESSAGES,
        )],
    );
    t.add(
        true,
        "/api/messages/{id}/rejected/{position}",
        get(messages::rejected),
        &[(
            "get",
            "/api/messages/{id}/rejected/{position}",
            "Download the rejected-rows file of one entity of a message",
            MESSAGES,
        )],
    );
    t.add(
        true,
        "/api/messages/{id}/staging/{position}",
        get(messages::staging),
        &[(
            "get",
            "/api/messages/{id}/staging/{position}",
            "Download the staged rows of one entity of a message (JSON lines with source row numbers)",
            MESSAGES,
        )],
    );
    t.add(
        true,
        "/api/messages/{id}/cancel",
        post(messages::cancel),
        &[("post", "/api/messages/{id}/cancel", "Cancel a message that has not started (writer role)", MESSAGES)],
    );
    t.add(
        true,
        "/api/messages/{id}/rerun",
        post(messages::rerun),
        &[(
            "post",
            "/api/messages/{id}/rerun",
            "Run a finished message again as a new message on the same file (writer role)",
            MESSAGES,
        )],
    );

    const IMPORT_ADMIN: &str = "Import administration";
    t.add(
        true,
        "/api/admin/projects",
        get(import_admin::list_projects),
        &[("get", "/api/admin/projects", "List data projects", IMPORT_ADMIN)],
    );
    t.add(
        true,
        "/api/admin/projects/{name}",
        get(import_admin::get_project).put(import_admin::put_project).delete(import_admin::delete_project),
        &[
            ("get", "/api/admin/projects/{name}", "Read a data project", IMPORT_ADMIN),
            ("put", "/api/admin/projects/{name}", "Create or replace a data project", IMPORT_ADMIN),
            ("delete", "/api/admin/projects/{name}", "Delete a data project no job uses", IMPORT_ADMIN),
        ],
    );
    t.add(
        true,
        "/api/admin/jobs",
        get(import_admin::list_jobs),
        &[("get", "/api/admin/jobs", "List recurring jobs", IMPORT_ADMIN)],
    );
    t.add(
        true,
        "/api/admin/jobs/{activityId}",
        get(import_admin::get_job).put(import_admin::put_job).delete(import_admin::delete_job),
        &[
            ("get", "/api/admin/jobs/{activityId}", "Read a recurring job", IMPORT_ADMIN),
            ("put", "/api/admin/jobs/{activityId}", "Create or replace a recurring job", IMPORT_ADMIN),
            ("delete", "/api/admin/jobs/{activityId}", "Delete a recurring job", IMPORT_ADMIN),
        ],
    );
    t.add(
        true,
        "/api/admin/jobs/{activityId}/{action}",
        post(import_admin::job_action),
        &[
            ("post", "/api/admin/jobs/{activityId}/enable", "Enable a recurring job", IMPORT_ADMIN),
            (
                "post",
                "/api/admin/jobs/{activityId}/disable",
                "Disable a recurring job (enqueue answers 409)",
                IMPORT_ADMIN,
            ),
        ],
    );

    let Table { public, secured, docs } = t;
    let secured = secured
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token));
    let router = public
        .merge(secured)
        .fallback(dispatch::case_insensitive_fallback)
        .layer(axum::middleware::from_fn(ops::record_metrics))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::new(crate::error::ErrorKind::Internal, "an internal error occurred").into_response()
        }))
        .with_state(state);
    (router, docs)
}

async fn openapi_json(State(state): State<ApiState>) -> Response {
    axum::Json(crate::openapi_document(state)).into_response()
}
