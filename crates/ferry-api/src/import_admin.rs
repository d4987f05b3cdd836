//! Administration of the recurring import: data projects (`/api/admin/projects[/{name}]`) and
//! recurring jobs (`/api/admin/jobs[/{activityId}]`, `…/enable`, `…/disable`). Bodies are the
//! definitions as the configuration file spells them (`wire::definitions`); answers add
//! `origin` (`config` or `api`). Every call needs the admin role. Invalid definitions are 400 with the service's message; deleting a
//! project a job uses is 409.

use crate::ApiState;
use crate::auth::require_role;
use crate::error::{ApiError, ApiResult};
use crate::wire::{job_from_json, job_json, project_from_json, project_json};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferry_auth::{Principal, Role};
use ferry_domain::{Origin, normalize_activity_id};
use ferry_integration::IntegrationService;
use serde_json::{Map, Value};

fn service<'a>(state: &'a ApiState, principal: &Principal) -> ApiResult<&'a IntegrationService> {
    require_role(principal, Role::Admin)?;
    state.import()
}

/// The body as a JSON object; `key` set from the path when the body leaves it out, and a 400
/// when it names a different one (`same` compares the two).
fn body_object(body: &[u8], key: &str, path_value: &str, same: impl Fn(&str) -> bool) -> ApiResult<Map<String, Value>> {
    let mut map = match crate::dmf::parse_lenient_object(body)? {
        map if !map.is_empty() => map,
        _ => return Err(ApiError::bad_request("the body must be a JSON object with the definition")),
    };
    // Whatever the body says, it does not carry the origin.
    map.remove("origin");
    match map.get(key) {
        None | Some(Value::Null) => {
            map.insert(key.into(), Value::String(path_value.into()));
        }
        Some(Value::String(s)) if same(s) => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "the body's {key} ({other}) differs from the one in the path ('{path_value}')"
            ))
            .with_target(key));
        }
    }
    Ok(map)
}

/// A definition from the body, or a 400 naming what is wrong.
fn decode<T>(map: Map<String, Value>, what: &str, read: fn(Map<String, Value>) -> Result<T, String>) -> ApiResult<T> {
    read(map).map_err(|e| ApiError::bad_request(format!("invalid {what}: {e}")))
}

pub(crate) async fn list_projects(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
) -> ApiResult<Response> {
    let import = service(&state, &principal)?;
    let items = import.list_projects().await?.iter().map(|(p, o)| project_json(p, *o)).collect::<Vec<_>>();
    Ok(axum::Json(Value::Array(items)).into_response())
}

pub(crate) async fn get_project(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let import = service(&state, &principal)?;
    let (project, origin) = import
        .get_project(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no data project is named '{name}'")))?;
    Ok(axum::Json(project_json(&project, origin)).into_response())
}

/// `PUT /api/admin/projects/{name}`: creates (201) or replaces (200) a project.
pub(crate) async fn put_project(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let import = service(&state, &principal)?;
    let map = body_object(&body, "name", &name, |s| s.trim().eq_ignore_ascii_case(name.trim()))?;
    let project = decode(map, "data project", project_from_json)?;
    let existed = import.get_project(&name).await?.is_some();
    let stored = import.put_project(project, Origin::Api).await?;
    let status = if existed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, axum::Json(project_json(&stored, Origin::Api))).into_response())
}

pub(crate) async fn delete_project(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let import = service(&state, &principal)?;
    if !import.delete_project(&name).await? {
        return Err(ApiError::not_found(format!("no data project is named '{name}'")));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn list_jobs(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
) -> ApiResult<Response> {
    let import = service(&state, &principal)?;
    let items = import.list_jobs().await?.iter().map(|(j, o)| job_json(j, *o)).collect::<Vec<_>>();
    Ok(axum::Json(Value::Array(items)).into_response())
}

fn no_job(activity_id: &str) -> ApiError {
    ApiError::not_found(format!("no recurring job has activity id {activity_id}"))
}

pub(crate) async fn get_job(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path(activity_id): Path<String>,
) -> ApiResult<Response> {
    let import = service(&state, &principal)?;
    let (job, origin) = import.get_job(&activity_id).await?.ok_or_else(|| no_job(&activity_id))?;
    Ok(axum::Json(job_json(&job, origin)).into_response())
}

/// `PUT /api/admin/jobs/{activityId}`: creates (201) or replaces (200) a recurring job.
pub(crate) async fn put_job(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path(activity_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let import = service(&state, &principal)?;
    let Some(normalized) = normalize_activity_id(&activity_id) else {
        return Err(ApiError::bad_request(format!(
            "activity id '{activity_id}' is not a GUID (e.g. 6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d)"
        )));
    };
    let map =
        body_object(&body, "activity_id", &normalized, |s| normalize_activity_id(s).as_ref() == Some(&normalized))?;
    let job = decode(map, "recurring job", job_from_json)?;
    let existed = import.get_job(&normalized).await?.is_some();
    let stored = import.put_job(job, Origin::Api).await?;
    let status = if existed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, axum::Json(job_json(&stored, Origin::Api))).into_response())
}

pub(crate) async fn delete_job(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path(activity_id): Path<String>,
) -> ApiResult<Response> {
    let import = service(&state, &principal)?;
    if !import.delete_job(&activity_id).await? {
        return Err(no_job(&activity_id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/admin/jobs/{activityId}/{enable|disable}`.
pub(crate) async fn job_action(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path((activity_id, action)): Path<(String, String)>,
) -> ApiResult<Response> {
    let import = service(&state, &principal)?;
    let enabled = match action.to_ascii_lowercase().as_str() {
        "enable" => true,
        "disable" => false,
        other => return Err(ApiError::not_found(format!("unknown job action '{other}' (enable, disable)"))),
    };
    let job = import.set_job_enabled(&activity_id, enabled).await?.ok_or_else(|| no_job(&activity_id))?;
    let origin = import.get_job(&job.activity_id).await?.map_or(Origin::Api, |(_, o)| o);
    Ok(axum::Json(job_json(&job, origin)).into_response())
}
