//! The data management package API: OData actions bound to the entity set
//! `DataManagementDefinitionGroups`,
//! `POST /data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.<Action>`.
//!
//! The status actions (`status.rs`: `GetMessageStatus`, `GetExecutionIdByMessageId`,
//! `GetExecutionSummaryStatus`, `GetEntityExecutionSummaryStatusList`, `GetExecutionErrors`,
//! `InitializeDataManagement`) need the reader role; the package actions (`packages.rs`:
//! `GetAzureWriteUrl`, `ImportFromPackage[Async]`, `ExportToPackage[Async|Preview|Delta]`,
//! `GetExportedPackageUrl`, the error-file actions, `DeleteExecutionHistoryJob`…) the writer
//! role. Bodies are read leniently (d365fo.integrations sends single-quoted JSON) and parameter
//! names match without regard to case. Answers are `{"@odata.context": "<base>/data/$metadata#<type>",
//! "value": <flat value>}`; an unknown message or execution is the `400` D365 gives ("… were not
//! found for … id: …").

mod packages;
mod status;

use crate::ApiState;
use crate::auth::require_role;
use crate::error::{ApiError, ApiResult, ErrorKind};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_auth::{Principal, Role};
use serde_json::{Map, Value, json};

/// The entity set the actions are bound to.
pub(crate) const ENTITY_SET: &str = "DataManagementDefinitionGroups";
/// The namespace qualifying the action names.
const NAMESPACE: &str = "Microsoft.Dynamics.DataEntities.";
const JSON: &str = "application/json; odata.metadata=minimal";
/// Largest action body (parameters only).
const BODY_LIMIT_BYTES: usize = 1024 * 1024;

/// Every action served, for the "no such action" message.
fn actions() -> impl Iterator<Item = &'static str> {
    status::ACTIONS.iter().chain(packages::ACTIONS.iter()).copied()
}

/// `/data/DataManagementDefinitionGroups/{action}`, any method (anything but POST is a 405 in
/// the OData envelope).
pub(crate) async fn action(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    method: Method,
    Path(action): Path<String>,
    body: Bytes,
) -> Response {
    run(&state, &principal, &method, &action, &body).await.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /data/DataManagementDefinitionGroups`: the data projects as the entity set declares
/// them (`Name`, `Description`, `OperationType`), read-only.
pub(crate) async fn definition_groups(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
) -> ApiResult<Response> {
    require_role(&principal, Role::Reader)?;
    let projects = state.import()?.list_projects().await?;
    let value: Vec<Value> = projects
        .iter()
        .map(|(p, _)| {
            let operation = match p.operation {
                ferry_domain::Operation::Import => "Import",
                ferry_domain::Operation::Export => "Export",
            };
            json!({ "Name": p.name, "Description": p.description, "OperationType": operation })
        })
        .collect();
    let context = format!("{}/data/$metadata#{ENTITY_SET}", state.settings().public_url.trim_end_matches('/'));
    Ok(envelope(&context, Value::Array(value)))
}

/// The action a path addresses when it is `/data/DataManagementDefinitionGroups/<action>` in
/// any letter case (percent-decoded), else `None`.
pub(crate) fn action_in_path(path: &str) -> Option<String> {
    let rest = strip_prefix_ignore_case(path, "/data/")?;
    let action = strip_prefix_ignore_case(rest, ENTITY_SET)?.strip_prefix('/')?;
    if action.is_empty() || action.contains('/') {
        return None;
    }
    Some(percent_encoding::percent_decode_str(action).decode_utf8_lossy().into_owned())
}

/// Runs the action of a request that reached the entity API's routes (another letter case
/// than the exact route's).
pub(crate) async fn handle_request(state: ApiState, action: &str, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(principal) = parts.extensions.get::<Principal>().cloned() else {
        return ApiError::unauthorized(None, "a bearer token is required").into_response();
    };
    let body = match axum::body::to_bytes(body, BODY_LIMIT_BYTES).await {
        Ok(b) => b,
        Err(_) => return ApiError::new(ErrorKind::PayloadTooLarge, "the request body is too large").into_response(),
    };
    run(&state, &principal, &parts.method, action, &body).await.unwrap_or_else(IntoResponse::into_response)
}

/// One call of an action: the server, the caller, the action's name and its parameters.
pub(crate) struct Call<'a> {
    pub state: &'a ApiState,
    pub principal: &'a Principal,
    pub name: &'static str,
    pub params: Map<String, Value>,
}

impl Call<'_> {
    /// `{"@odata.context": …#<ty>, "value": value}`.
    fn answer(&self, ty: &str, value: Value) -> ApiResult<Response> {
        let context = format!("{}/data/$metadata#{ty}", self.state.settings().public_url.trim_end_matches('/'));
        Ok(envelope(&context, value))
    }

    fn string(&self, value: impl Into<String>) -> ApiResult<Response> {
        self.answer("Edm.String", Value::String(value.into()))
    }

    /// The text of the first of `names` the body has (names match without regard to case).
    fn param(&self, names: &[&str]) -> ApiResult<String> {
        param(&self.params, names)
    }

    /// Like [`Call::param`], `None` when absent or empty.
    fn optional(&self, names: &[&str]) -> ApiResult<Option<String>> {
        let present = names.iter().any(|n| self.params.keys().any(|k| k.eq_ignore_ascii_case(n)));
        if !present {
            return Ok(None);
        }
        let value = self.param(names)?;
        Ok((!value.is_empty()).then_some(value))
    }

    /// A boolean parameter (`true`/`false`, or their text), `default` when absent.
    fn flag(&self, name: &str, default: bool) -> ApiResult<bool> {
        match self.params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(ApiError::bad_request(format!("parameter {name} must be true or false")).with_target(name)),
        }
    }

    /// The 400 D365 answers for something this action cannot find.
    fn not_found(&self, detail: &str) -> ApiError {
        not_found_error(self.name, detail)
    }
}

/// Runs `action` (with or without its namespace) with the parameters in `body`.
pub(crate) async fn run(
    state: &ApiState,
    principal: &Principal,
    method: &Method,
    action: &str,
    body: &[u8],
) -> ApiResult<Response> {
    let name = strip_prefix_ignore_case(action, NAMESPACE).unwrap_or(action);
    let Some(name) = actions().find(|a| a.eq_ignore_ascii_case(name)) else {
        let served: Vec<String> = actions().map(|a| format!("{NAMESPACE}{a}")).collect();
        return Err(ApiError::not_found(format!(
            "{ENTITY_SET} has no action '{action}'; ferry serves {}",
            served.join(", ")
        )));
    };
    if method != Method::POST {
        return Err(ApiError::new(
            ErrorKind::MethodNotAllowed,
            format!("{method} is not allowed on action {name}; use POST with a JSON body"),
        ));
    }
    let params = parse_lenient_object(body)?;
    let call = Call { state, principal, name, params };
    let reading = status::ACTIONS.contains(&name) || packages::READING.contains(&name);
    require_role(principal, if reading { Role::Reader } else { Role::Writer })?;
    if status::ACTIONS.contains(&name) { status::run(&call).await } else { packages::run(&call).await }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

fn envelope(context: &str, value: Value) -> Response {
    let body = json!({ "@odata.context": context, "value": value }).to_string();
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    headers.insert("odata-version", HeaderValue::from_static("4.0"));
    response
}

/// The 400 D365 answers for an unknown message or execution, in the OData error envelope.
fn not_found_error(action: &str, detail: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Exception occurred while executing action {action} on Entity DataManagementDefinitionGroup: {detail}"
    ))
}

/// The text of the first of `names` the body has (names match without regard to case).
fn param(params: &Map<String, Value>, names: &[&str]) -> ApiResult<String> {
    let found = names.iter().find_map(|n| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)));
    match found {
        Some((_, Value::String(s))) => Ok(s.trim().to_string()),
        Some((_, Value::Number(n))) => Ok(n.to_string()),
        Some((k, _)) => Err(ApiError::bad_request(format!("parameter {k} must be a string")).with_target(k.clone())),
        None => Err(ApiError::bad_request(format!("the body needs the parameter {}", names[0])).with_target(names[0])),
    }
}

/// Parses an action body: JSON, or the single-quoted near-JSON PowerShell clients send
/// (`{'messageId':'…'}`). An empty body is an empty object.
pub(crate) fn parse_lenient_object(body: &[u8]) -> ApiResult<Map<String, Value>> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the request body is not valid UTF-8"))?;
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Ok(Map::new());
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(strict) => serde_json::from_str(&double_quoted(text))
            .map_err(|_| ApiError::bad_request(format!("the request body is not a JSON object: {strict}")))?,
    };
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request("the request body must be a JSON object of the action's parameters")),
    }
}

/// Rewrites single-quoted strings as double-quoted ones; double-quoted strings pass unchanged.
fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                while let Some(c) = chars.next() {
                    out.push(c);
                    match c {
                        '\\' => out.extend(chars.next()),
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '\'' => {
                out.push('"');
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some('\'') => out.push('\''),
                            Some(next) => {
                                out.push('\\');
                                out.push(next);
                            }
                            None => {}
                        },
                        '\'' => break,
                        '"' => out.push_str("\\\""),
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_single_quoted_bodies() {
        let map = parse_lenient_object(b"{'messageId':'6d31e09f-4a4b'}").unwrap();
        assert_eq!(map["messageId"], "6d31e09f-4a4b");
        let map = parse_lenient_object(br#"{ 'a' : 'it\'s "x"', "b": "y'z", 'n': 3 }"#).unwrap();
        assert_eq!(map["a"], "it's \"x\"");
        assert_eq!(map["b"], "y'z");
        assert_eq!(map["n"], 3);
        assert!(parse_lenient_object(b"").unwrap().is_empty());
        assert!(parse_lenient_object(b"[1]").is_err());
        assert!(parse_lenient_object(b"{'a':").is_err());
    }

    #[test]
    fn metadata_declares_exactly_the_actions_served() {
        let mut declared: Vec<&str> = crate::odata::csdl::DMF_ACTIONS.iter().map(|(name, _, _)| *name).collect();
        let mut served: Vec<&str> = actions().collect();
        declared.sort_unstable();
        served.sort_unstable();
        assert_eq!(declared, served);
    }
}
