//! Entity sets: query (filter, select, order, paging, count, cross-company), change tracking
//! with delta links, and create / read / change / delete by key.

use super::json_in::{BodyValues, parse_body};
use super::json_out::{key_path, key_text, write_row, write_string};
use super::options::{Options, SkipToken, encode_value};
use super::{Ctx, Flavor};
use crate::auth::require_role;
use crate::error::{ApiError, ApiResult, ErrorKind};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_auth::Role;
use ferry_domain::{CompanyScope, KeyText, NewRow, RowKey, StoredRow};
use ferry_model::{COMPANY_FIELD, Entity, Input, Value, normalize_company};
use ferry_query::{Column, KeyPredicate, Literal, bind_filter, bind_orderby, bind_select, parse_filter};
use ferry_query::{parse_key_predicate, parse_orderby, parse_select};
use ferry_store::RowQuery;
use std::fmt::Write;
use std::sync::Arc;

const JSON: &str = "application/json; odata.metadata=minimal; odata.streaming=true";

/// The parts of a resource path below the prefix.
enum Target {
    Collection,
    Count,
    Key(String),
}

pub(crate) async fn handle(ctx: Ctx) -> ApiResult<Response> {
    let (set, target) = match ctx.resource.find(['(', '/']) {
        None => (ctx.resource.as_str(), Target::Collection),
        Some(at) => {
            let (set, rest) = ctx.resource.split_at(at);
            if rest.eq_ignore_ascii_case("/$count") {
                (set, Target::Count)
            } else if let Some(inner) = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
                (set, Target::Key(inner.to_string()))
            } else {
                return Err(ApiError::not_found(format!(
                    "'{}' is not a resource ferry serves (navigation and property paths are not supported)",
                    ctx.resource
                )));
            }
        }
    };
    let entity = ctx.state.catalog().by_collection(set).cloned().ok_or_else(|| {
        ApiError::not_found(format!("unknown entity set '{set}'; the service document lists them")).with_target(set)
    })?;
    match (target, &ctx.method) {
        (Target::Collection, &Method::GET | &Method::HEAD) => get_collection(&ctx, &entity).await,
        (Target::Collection, &Method::POST) => create(&ctx, &entity).await,
        (Target::Count, &Method::GET) => count(&ctx, &entity).await,
        (Target::Key(key), &Method::GET | &Method::HEAD) => get_one(&ctx, &entity, &key).await,
        (Target::Key(key), &Method::PATCH) => update(&ctx, &entity, &key).await,
        (Target::Key(key), &Method::DELETE) => delete(&ctx, &entity, &key).await,
        (_, method) => Err(ApiError::new(
            ErrorKind::MethodNotAllowed,
            format!(
                "{method} is not allowed on {}; collections take GET and POST, records GET, PATCH and DELETE",
                ctx.resource
            ),
        )),
    }
}

fn default_company(ctx: &Ctx) -> String {
    ctx.principal.default_company.clone().unwrap_or_else(|| ctx.state.settings().default_company.clone())
}

fn prefer(ctx: &Ctx) -> String {
    ctx.headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase()
}

fn scope(ctx: &Ctx, entity: &Entity, options: &Options) -> CompanyScope {
    if !entity.company_specific || options.cross_company {
        CompanyScope::All
    } else {
        CompanyScope::One(default_company(ctx))
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, JSON), (header::HeaderName::from_static("odata-version"), "4.0")], body)
        .into_response()
}

/// Options that travel along in next and delta links.
fn carried_options(options: &Options) -> Vec<(String, String)> {
    let mut carried = Vec::new();
    for (name, value) in [("$filter", &options.filter), ("$select", &options.select), ("$orderby", &options.orderby)] {
        if let Some(v) = value {
            carried.push((name.to_string(), v.clone()));
        }
    }
    if options.count {
        carried.push(("$count".into(), "true".into()));
    }
    if options.cross_company {
        carried.push(("cross-company".into(), "true".into()));
    }
    carried
}

fn link(ctx: &Ctx, entity: &Entity, options: &[(String, String)]) -> String {
    let query: Vec<String> = options.iter().map(|(k, v)| format!("{k}={}", encode_value(v))).collect();
    format!("{}/{}?{}", ctx.root.url, entity.collection, query.join("&"))
}

fn bound_select(entity: &Entity, options: &Options) -> ApiResult<Vec<Column>> {
    match &options.select {
        Some(s) => Ok(bind_select(&parse_select(s)?, entity)?),
        None => Ok(Vec::new()),
    }
}

fn page_size(ctx: &Ctx) -> u64 {
    let max = u64::from(ctx.state.settings().max_page_size.max(1));
    let preferred = prefer(ctx)
        .split(',')
        .filter_map(|p| p.trim().strip_prefix("odata.maxpagesize=").and_then(|n| n.trim().parse::<u64>().ok()))
        .next();
    preferred.map_or(max, |p| p.clamp(1, max))
}

async fn get_collection(ctx: &Ctx, entity: &Arc<Entity>) -> ApiResult<Response> {
    require_role(&ctx.principal, Role::Reader)?;
    let options = Options::parse(&ctx.query)?;
    if let Some(since) = options.deltatoken {
        return get_delta(ctx, entity, &options, since).await;
    }
    let track = prefer(ctx).contains("odata.track-changes");
    if track
        && (options.filter.is_some() || options.orderby.is_some() || options.top.is_some() || options.skip.is_some())
    {
        return Err(ApiError::bad_request(
            "change tracking (Prefer: odata.track-changes) does not combine with $filter, $orderby, $top or $skip",
        ));
    }
    let scope = scope(ctx, entity, &options);
    let filter = match &options.filter {
        Some(f) => Some(bind_filter(&parse_filter(f)?, entity)?),
        None => None,
    };
    let order = match &options.orderby {
        Some(o) => bind_orderby(&parse_orderby(o)?, entity)?,
        None => Vec::new(),
    };
    let select = bound_select(entity, &options)?;
    let token = options.skiptoken.clone().unwrap_or_default();
    // Change tracking: the delta link starts from the version the first page was read at.
    let base_version = match (track, token.v) {
        (true, Some(v)) => Some(v),
        (true, None) => Some(ctx.state.store().current_version().await?),
        (false, _) => None,
    };
    let remaining = token.r.or(options.top);
    let limit = remaining.map_or(page_size(ctx), |r| r.min(page_size(ctx)));
    let after = match (&token.k, order.is_empty()) {
        (Some(key), true) => Some(key_from_text(entity, token.c.clone(), key)?),
        _ => None,
    };
    let offset = match (&after, token.o) {
        (Some(_), _) => 0,
        (None, Some(o)) => o,
        (None, None) => options.skip.unwrap_or(0),
    };
    let mut rows = if limit == 0 {
        Vec::new()
    } else {
        let query = RowQuery {
            scope: scope.clone(),
            filter: filter.clone(),
            order: order.clone(),
            after,
            versions: None,
            offset,
            limit: limit + 1,
        };
        ctx.state.store().query(entity, &query).await?
    };
    // More pages only if rows remain and `$top` (if any) is not used up.
    let more = rows.len() as u64 > limit && remaining.is_none_or(|r| r > limit);
    rows.truncate(limit as usize);
    let total =
        if options.count { Some(ctx.state.store().count(entity, &scope, filter.as_ref()).await?) } else { None };

    let mut body = String::with_capacity(256 + rows.len() * 512);
    let _ = write!(body, "{{\"@odata.context\":");
    write_string(&mut body, &format!("{}/$metadata#{}", ctx.root.url, entity.collection));
    if let Some(total) = total {
        let _ = write!(body, ",\"@odata.count\":{total}");
    }
    body.push_str(",\"value\":[");
    for (n, row) in rows.iter().enumerate() {
        if n > 0 {
            body.push(',');
        }
        write_row(&mut body, entity, row, &select);
    }
    body.push(']');
    if more {
        let last = rows.last().expect("a full page has a last row");
        let next = SkipToken {
            c: if order.is_empty() { last.company.clone() } else { None },
            k: if order.is_empty() { Some(key_text(entity, last)) } else { None },
            o: if order.is_empty() { None } else { Some(offset + limit) },
            r: remaining.map(|r| r - limit),
            v: base_version,
        };
        let mut carried = carried_options(&options);
        carried.push(("$skiptoken".into(), next.encode()));
        body.push_str(",\"@odata.nextLink\":");
        write_string(&mut body, &link(ctx, entity, &carried));
    } else if let Some(version) = base_version {
        body.push_str(",\"@odata.deltaLink\":");
        write_string(&mut body, &delta_link(ctx, entity, &options, version));
    }
    body.push('}');
    let mut response = json_response(StatusCode::OK, body);
    if track {
        response.headers_mut().insert("preference-applied", HeaderValue::from_static("odata.track-changes"));
    }
    Ok(response)
}

fn delta_link(ctx: &Ctx, entity: &Entity, options: &Options, version: i64) -> String {
    let mut carried: Vec<(String, String)> = Vec::new();
    if let Some(s) = &options.select {
        carried.push(("$select".into(), s.clone()));
    }
    if options.cross_company {
        carried.push(("cross-company".into(), "true".into()));
    }
    carried.push(("$deltatoken".into(), version.to_string()));
    link(ctx, entity, &carried)
}

/// Follows a delta link: rows changed since the token's version, then deleted rows.
async fn get_delta(ctx: &Ctx, entity: &Arc<Entity>, options: &Options, since: i64) -> ApiResult<Response> {
    if options.filter.is_some() || options.orderby.is_some() || options.top.is_some() || options.skip.is_some() {
        return Err(ApiError::bad_request("a delta link does not combine with $filter, $orderby, $top or $skip"));
    }
    let scope = scope(ctx, entity, options);
    let select = bound_select(entity, options)?;
    let changes = ctx.state.store().changes_since(entity, &scope, since, page_size(ctx) as usize).await?;
    let mut body = String::with_capacity(256 + changes.rows.len() * 512);
    body.push_str("{\"@odata.context\":");
    write_string(&mut body, &format!("{}/$metadata#{}/$delta", ctx.root.url, entity.collection));
    body.push_str(",\"value\":[");
    let mut first = true;
    for row in &changes.rows {
        if !first {
            body.push(',');
        }
        first = false;
        write_row(&mut body, entity, row, &select);
    }
    let deleted_context = format!("{}/$metadata#{}/$deletedEntity", ctx.root.url, entity.collection);
    for tombstone in &changes.deleted {
        if !first {
            body.push(',');
        }
        first = false;
        let id = if entity.primary_id.is_some() {
            tombstone.id.to_string()
        } else {
            format!("{}/{}", ctx.root.url, key_path(entity, tombstone.company.as_deref(), &tombstone.key))
        };
        body.push_str("{\"@odata.context\":");
        write_string(&mut body, &deleted_context);
        body.push_str(",\"id\":");
        write_string(&mut body, &id);
        body.push_str(",\"reason\":\"deleted\"}");
    }
    body.push(']');
    let link_text = delta_link(ctx, entity, options, changes.through_version);
    body.push_str(if changes.more { ",\"@odata.nextLink\":" } else { ",\"@odata.deltaLink\":" });
    write_string(&mut body, &link_text);
    body.push('}');
    Ok(json_response(StatusCode::OK, body))
}

async fn count(ctx: &Ctx, entity: &Arc<Entity>) -> ApiResult<Response> {
    require_role(&ctx.principal, Role::Reader)?;
    let options = Options::parse(&ctx.query)?;
    let filter = match &options.filter {
        Some(f) => Some(bind_filter(&parse_filter(f)?, entity)?),
        None => None,
    };
    let total = ctx.state.store().count(entity, &scope(ctx, entity, &options), filter.as_ref()).await?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], total.to_string()).into_response())
}

/// Turns key text from a skip token back into typed key values.
fn key_from_text(entity: &Entity, company: Option<String>, texts: &[String]) -> ApiResult<RowKey> {
    let text = KeyText { company, values: texts.to_vec() };
    RowKey::from_text(entity, &text).ok_or_else(|| {
        ApiError::bad_request("$skiptoken does not fit this entity set; follow @odata.nextLink as given")
    })
}

/// Parses `dataAreaId='usmf',CustomerGroupId='10'` (or `'10'` for a single key) into a key.
fn parse_key(ctx: &Ctx, entity: &Entity, text: &str) -> ApiResult<RowKey> {
    let predicate = parse_key_predicate(text)?;
    let mut company = entity.company_specific.then(|| default_company(ctx));
    let mut values: Vec<Option<Value>> = vec![None; entity.key.len()];
    let coerce = |field_index: usize, literal: &Literal| -> ApiResult<Value> {
        let field = &entity.fields[field_index];
        let text = literal.text().unwrap_or_default();
        let input = match literal {
            Literal::Number(n) => Input::Number(n),
            _ => Input::Text(&text),
        };
        field.ty.coerce(input).map_err(|e| {
            ApiError::bad_request(format!("key {}: {}", field.name, e.message)).with_target(field.name.clone())
        })
    };
    match predicate {
        KeyPredicate::Single(literal) => {
            if entity.key.len() != 1 {
                let names: Vec<&str> = entity.key_fields().map(|f| f.name.as_str()).collect();
                return Err(ApiError::bad_request(format!(
                    "{} has a composite key: name its parts, e.g. ({}='…')",
                    entity.collection,
                    names.join("='…',")
                )));
            }
            values[0] = Some(coerce(entity.key[0], &literal)?);
        }
        KeyPredicate::Named(pairs) => {
            for (name, literal) in pairs {
                if name.eq_ignore_ascii_case(COMPANY_FIELD) && entity.company_specific {
                    company = Some(normalize_company(&literal.text().unwrap_or_default()));
                    continue;
                }
                let position =
                    entity.key.iter().position(|&i| entity.fields[i].name.eq_ignore_ascii_case(&name)).ok_or_else(
                        || {
                            ApiError::bad_request(format!("'{name}' is not part of the key of {}", entity.collection))
                                .with_target(name.clone())
                        },
                    )?;
                values[position] = Some(coerce(entity.key[position], &literal)?);
            }
        }
    }
    let missing: Vec<&str> = entity
        .key
        .iter()
        .zip(&values)
        .filter(|(_, v)| v.is_none())
        .map(|(&i, _)| entity.fields[i].name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::bad_request(format!("the key lacks {}", missing.join(", "))));
    }
    Ok(RowKey { company, values: values.into_iter().map(|v| v.expect("checked")).collect() })
}

fn not_found(entity: &Entity, key: &RowKey) -> ApiError {
    ApiError::not_found(format!("no {} record with key {}", entity.collection, key.describe(entity)))
}

async fn get_one(ctx: &Ctx, entity: &Arc<Entity>, key_text: &str) -> ApiResult<Response> {
    require_role(&ctx.principal, Role::Reader)?;
    let key = parse_key(ctx, entity, key_text)?;
    let options = Options::parse(&ctx.query)?;
    let select = bound_select(entity, &options)?;
    let row = ctx.state.store().get(entity, &key).await?.ok_or_else(|| not_found(entity, &key))?;
    Ok(json_response(StatusCode::OK, entity_body(ctx, entity, &row, &select)))
}

fn entity_body(ctx: &Ctx, entity: &Entity, row: &StoredRow, select: &[Column]) -> String {
    let mut body = String::with_capacity(1024);
    write_row(&mut body, entity, row, select);
    // Put the context annotation first, as OData requires.
    let context = format!("{}/$metadata#{}/$entity", ctx.root.url, entity.collection);
    let mut with_context = String::with_capacity(body.len() + context.len() + 24);
    with_context.push_str("{\"@odata.context\":");
    write_string(&mut with_context, &context);
    with_context.push(',');
    with_context.push_str(&body[1..]);
    with_context
}

/// The response to a write: the entity, or `204` with its address, as the caller prefers.
fn write_response(ctx: &Ctx, entity: &Entity, row: &StoredRow, created: bool) -> Response {
    let prefer = prefer(ctx);
    let wants_body = if prefer.contains("return=representation") {
        true
    } else if prefer.contains("return=minimal") {
        false
    } else {
        // F&O answers a create with the entity; Dataverse, and every update, with 204.
        created && ctx.flavor == Flavor::FinOps
    };
    let address = format!("{}/{}", ctx.root.url, key_path(entity, row.company.as_deref(), &key_text(entity, row)));
    let mut response = if wants_body {
        let status = if created { StatusCode::CREATED } else { StatusCode::OK };
        json_response(status, entity_body(ctx, entity, row, &[]))
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    if let Ok(value) = HeaderValue::from_str(&address) {
        let headers = response.headers_mut();
        if created {
            headers.insert(header::LOCATION, value.clone());
        }
        headers.insert("odata-entityid", value);
        if wants_body || !prefer.is_empty() {
            let applied = if wants_body { "return=representation" } else { "return=minimal" };
            headers.insert("preference-applied", HeaderValue::from_static(applied));
        }
    }
    response
}

fn check_content_type(ctx: &Ctx) -> ApiResult<()> {
    match ctx.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        None => Ok(()),
        Some(ct) if ct.to_ascii_lowercase().starts_with("application/json") => Ok(()),
        Some(ct) => Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!("Content-Type '{ct}' is not supported; send application/json"),
        )),
    }
}

fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

async fn create(ctx: &Ctx, entity: &Arc<Entity>) -> ApiResult<Response> {
    require_role(&ctx.principal, Role::Writer)?;
    check_content_type(ctx)?;
    let BodyValues { company, values: given } = parse_body(entity, &ctx.body)?;
    let company = entity.company_specific.then(|| normalize_company(&company.unwrap_or_else(|| default_company(ctx))));
    if let Some(c) = &company
        && (c.is_empty() || c.len() > 32)
    {
        return Err(
            ApiError::bad_request(format!("{COMPANY_FIELD} '{c}' is not a company id")).with_target(COMPANY_FIELD)
        );
    }
    let mut values: Vec<Value> = entity.fields.iter().map(|f| f.default.clone().unwrap_or(Value::Null)).collect();
    for (i, v) in given {
        values[i] = v;
    }
    let missing: Vec<&str> = entity
        .fields
        .iter()
        .enumerate()
        .filter(|(i, f)| f.mandatory && Some(*i) != entity.primary_id && is_blank(&values[*i]))
        .map(|(_, f)| f.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::bad_request(format!("mandatory fields are missing: {}", missing.join(", ")))
            .with_target(missing[0].to_string()));
    }
    let row = ctx.state.store().insert(entity, vec![NewRow { company, values }]).await?;
    let row = row.into_iter().next().ok_or_else(|| ApiError::new(ErrorKind::Internal, "the record was not stored"))?;
    Ok(write_response(ctx, entity, &row, true))
}

async fn update(ctx: &Ctx, entity: &Arc<Entity>, key_text: &str) -> ApiResult<Response> {
    require_role(&ctx.principal, Role::Writer)?;
    check_content_type(ctx)?;
    let key = parse_key(ctx, entity, key_text)?;
    let BodyValues { company, values } = parse_body(entity, &ctx.body)?;
    if let Some(company) = company
        && Some(normalize_company(&company)) != key.company
    {
        return Err(ApiError::bad_request(format!("{COMPANY_FIELD} cannot be changed")).with_target(COMPANY_FIELD));
    }
    let mut changes = Vec::new();
    for (i, value) in values {
        let field = &entity.fields[i];
        if let Some(position) = entity.key.iter().position(|&k| k == i) {
            if value != key.values[position] {
                return Err(ApiError::bad_request(format!("key field {} cannot be changed", field.name))
                    .with_target(field.name.clone()));
            }
            continue;
        }
        if field.mandatory && is_blank(&value) {
            return Err(ApiError::bad_request(format!("mandatory field {} cannot be emptied", field.name))
                .with_target(field.name.clone()));
        }
        changes.push((i, value));
    }
    let row = ctx.state.store().update(entity, &key, changes).await?.ok_or_else(|| not_found(entity, &key))?;
    Ok(write_response(ctx, entity, &row, false))
}

async fn delete(ctx: &Ctx, entity: &Arc<Entity>, key_text: &str) -> ApiResult<Response> {
    require_role(&ctx.principal, Role::Writer)?;
    let key = parse_key(ctx, entity, key_text)?;
    if ctx.state.store().delete(entity, &key).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found(entity, &key))
    }
}
