//! The data-export profile API (`/crm/exporter/profiles…`) as the replication steps use it:
//! clear leftovers, create a profile over `customerv3`, activate it, read its status, delete it.

use anyhow::{Context, Result};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::Api;

/// Deletes every profile (the source database is the benchmark's own; a profile left by an
/// earlier failed step would otherwise keep replicating into its target). Answers how many.
pub async fn delete_all(api: &Api) -> Result<usize> {
    let list = api.call(api.request(Method::GET, "/crm/exporter/profiles"), "GET profiles", StatusCode::OK).await?;
    let ids: Vec<String> =
        list.as_array().into_iter().flatten().filter_map(|p| p["Id"].as_str().map(String::from)).collect();
    for id in &ids {
        delete(api, id).await?;
    }
    Ok(ids.len())
}

/// Creates an inactive profile over `customerv3` and answers its id.
pub async fn create(api: &Api, name: &str, target_type: &str, connection: &str, prefix: &str) -> Result<String> {
    let body = json!({
        "Name": name, "TargetType": target_type, "ConnectionString": connection, "TablePrefix": prefix,
        "Entities": ["customerv3"], "RetryCount": 0, "RetryInterval": 1, "WriteDeleteLog": false,
    });
    let request = api.request(Method::POST, "/crm/exporter/profiles").json(&body);
    let created = api.call(request, "POST /crm/exporter/profiles", StatusCode::CREATED).await?;
    created["Id"].as_str().map(String::from).context("the created profile has no Id")
}

pub async fn activate(api: &Api, id: &str) -> Result<()> {
    let path = format!("/crm/exporter/profiles/{id}/activate");
    api.call(api.request(Method::POST, &path), &format!("POST {path}"), StatusCode::OK).await?;
    Ok(())
}

/// The profile with its `EntityStatus`.
pub async fn get(api: &Api, id: &str) -> Result<Value> {
    api.get_json(&format!("/crm/exporter/profiles/{id}")).await
}

pub async fn delete(api: &Api, id: &str) -> Result<()> {
    let path = format!("/crm/exporter/profiles/{id}");
    api.call(api.request(Method::DELETE, &path), &format!("DELETE {path}"), StatusCode::NO_CONTENT).await?;
    Ok(())
}
