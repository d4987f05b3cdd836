//! The HTTP side: client-credentials tokens, the data-export profile API
//! (`/crm/exporter/profiles…`) and the one write the delta step sends (`PATCH` a customer).

use anyhow::{Context, Result, bail};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// Longest a single request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Most characters of an error body kept for messages.
const BODY_SNIPPET_MAX: usize = 400;

/// A connection to one ferry server with a bearer token.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    auth: String,
}

/// Status and (truncated) body of a response, for messages.
async fn describe(response: reqwest::Response) -> String {
    let status = response.status();
    let body = response.text().await.unwrap_or_else(|e| format!("<unreadable body: {e}>"));
    let body: String = body.chars().take(BODY_SNIPPET_MAX).collect();
    format!("{status} {body}")
}

impl Api {
    /// Obtains a token with the client-credentials grant; `pool` is the number of concurrent
    /// requests the caller will make.
    pub async fn connect(base: &str, client_id: &str, secret: &str, pool: usize) -> Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(pool.max(1) * 2)
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        let base = base.trim_end_matches('/').to_string();
        let response = http
            .post(format!("{base}/oauth2/token"))
            .form(&[("grant_type", "client_credentials"), ("client_id", client_id), ("client_secret", secret)])
            .send()
            .await
            .with_context(|| format!("POST {base}/oauth2/token"))?;
        if response.status() != StatusCode::OK {
            bail!("POST /oauth2/token ({client_id}) answered {}", describe(response).await);
        }
        let body: Value = response.json().await.context("token response is not JSON")?;
        let token = body["access_token"].as_str().context("token response has no access_token")?;
        Ok(Api { http, base, auth: format!("Bearer {token}") })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .header("Accept", "application/json")
    }

    /// Sends a request and answers its JSON body when the status is `expected`.
    async fn call(&self, request: reqwest::RequestBuilder, what: &str, expected: StatusCode) -> Result<Value> {
        let response = request.send().await.with_context(|| what.to_string())?;
        if response.status() != expected {
            bail!("{what} answered {}", describe(response).await);
        }
        if expected == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        response.json().await.with_context(|| format!("{what}: the answer is not JSON"))
    }

    /// Deletes every profile (the source database is the benchmark's own; a profile left by an
    /// earlier failed step would otherwise keep replicating into its target). Answers how many.
    pub async fn delete_all_profiles(&self) -> Result<usize> {
        let list = self
            .call(self.request(reqwest::Method::GET, "/crm/exporter/profiles"), "GET profiles", StatusCode::OK)
            .await?;
        let ids: Vec<String> =
            list.as_array().into_iter().flatten().filter_map(|p| p["Id"].as_str().map(String::from)).collect();
        for id in &ids {
            self.delete_profile(id).await?;
        }
        Ok(ids.len())
    }

    /// Creates an inactive profile over `customerv3` and answers its id.
    pub async fn create_profile(
        &self,
        name: &str,
        target_type: &str,
        connection: &str,
        prefix: &str,
    ) -> Result<String> {
        let body = json!({
            "Name": name, "TargetType": target_type, "ConnectionString": connection, "TablePrefix": prefix,
            "Entities": ["customerv3"], "RetryCount": 0, "RetryInterval": 1, "WriteDeleteLog": false,
        });
        let request = self.request(reqwest::Method::POST, "/crm/exporter/profiles").json(&body);
        let created = self.call(request, "POST /crm/exporter/profiles", StatusCode::CREATED).await?;
        created["Id"].as_str().map(String::from).context("the created profile has no Id")
    }

    pub async fn activate(&self, id: &str) -> Result<()> {
        let path = format!("/crm/exporter/profiles/{id}/activate");
        self.call(self.request(reqwest::Method::POST, &path), &format!("POST {path}"), StatusCode::OK).await?;
        Ok(())
    }

    /// The profile with its `EntityStatus`.
    pub async fn profile(&self, id: &str) -> Result<Value> {
        let path = format!("/crm/exporter/profiles/{id}");
        self.call(self.request(reqwest::Method::GET, &path), &format!("GET {path}"), StatusCode::OK).await
    }

    pub async fn delete_profile(&self, id: &str) -> Result<()> {
        let path = format!("/crm/exporter/profiles/{id}");
        self.call(self.request(reqwest::Method::DELETE, &path), &format!("DELETE {path}"), StatusCode::NO_CONTENT)
            .await?;
        Ok(())
    }

    /// Sets `PrimaryContactPhone` of one customer; 204 is success, anything else is the error.
    pub async fn patch_phone(&self, company: &str, account: &str, phone: &str) -> Result<(), String> {
        let path = format!("/data/CustomersV3(dataAreaId='{company}',CustomerAccount='{account}')");
        let request = self.request(reqwest::Method::PATCH, &path).json(&json!({ "PrimaryContactPhone": phone }));
        match request.send().await {
            Ok(r) if r.status() == StatusCode::NO_CONTENT => {
                // Read the (empty) body so the connection goes back to the pool.
                r.bytes().await.map(|_| ()).map_err(|e| format!("PATCH {path}: reading the body: {e}"))
            }
            Ok(r) => Err(format!("PATCH {path}: {}", describe(r).await)),
            Err(e) => Err(format!("PATCH {path}: {e}")),
        }
    }
}
