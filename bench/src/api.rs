//! The HTTP side every subcommand shares: a client for one ferry server with a
//! client-credentials token (renewed on a 401), requests with the bearer token, JSON calls
//! that check the status, and error descriptions with the answer's body.

use anyhow::{Context, Result, bail};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::App;
use crate::load::Outcome;

/// Longest a single request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Most characters of an error body kept for messages.
const BODY_SNIPPET_MAX: usize = 400;
/// Tries of a GET (or a read-only POST) that fails with a transport error or a 5xx before the step fails.
const GET_TRIES: u32 = 5;

/// A connection to one ferry server as one app.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    pub base: String,
    client_id: String,
    secret: String,
    auth: Arc<RwLock<String>>,
}

/// Status and (truncated) body of a response, for messages.
pub async fn describe(response: reqwest::Response) -> String {
    let status = response.status();
    let body = response.text().await.unwrap_or_else(|e| format!("<unreadable body: {e}>"));
    let body: String = body.chars().take(BODY_SNIPPET_MAX).collect();
    format!("{status} {body}")
}

impl Api {
    /// Obtains a token for `app`; `pool` is the number of concurrent requests the caller makes.
    pub async fn connect(base: &str, app: &App, pool: usize) -> Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(pool.max(1) * 2)
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        let api = Api {
            http,
            base: base.trim_end_matches('/').to_string(),
            client_id: app.client_id.clone(),
            secret: app.secret.clone(),
            auth: Arc::new(RwLock::new(String::new())),
        };
        api.renew().await?;
        Ok(api)
    }

    /// Gets a new token (client-credentials grant).
    pub async fn renew(&self) -> Result<()> {
        let response = self
            .http
            .post(format!("{}/oauth2/token", self.base))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                ("client_secret", &self.secret),
            ])
            .send()
            .await
            .with_context(|| format!("POST {}/oauth2/token", self.base))?;
        if response.status() != StatusCode::OK {
            bail!("POST /oauth2/token ({}) answered {}", self.client_id, describe(response).await);
        }
        let body: Value = response.json().await.context("token response is not JSON")?;
        let token = body["access_token"].as_str().context("token response has no access_token")?;
        *self.auth.write().expect("token lock") = format!("Bearer {token}");
        Ok(())
    }

    /// The HTTP client without the token (for `/healthz`).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `path` under the server's base, or `path` itself when it is a whole URL (a next link).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// A request with the bearer token, asking for JSON.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let auth = self.auth.read().expect("token lock").clone();
        self.http.request(method, self.url(path)).header("Authorization", auth).header("Accept", "application/json")
    }

    /// Sends `request` and answers its JSON body (`null` for 204) when the status is `expected`.
    pub async fn call(&self, request: RequestBuilder, what: &str, expected: StatusCode) -> Result<Value> {
        let response = request.send().await.with_context(|| what.to_string())?;
        if response.status() != expected {
            bail!("{what} answered {}", describe(response).await);
        }
        if expected == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        response.json().await.with_context(|| format!("{what}: the answer is not JSON"))
    }

    /// Sends one request of a load step: success is status `expected` (the body is read, so
    /// the connection goes back to the pool); anything else is a failure with status and body.
    pub async fn outcome(request: RequestBuilder, what: &str, expected: StatusCode, keep: Option<String>) -> Outcome {
        match request.send().await {
            Ok(r) if r.status() == expected => match r.bytes().await {
                Ok(_) => Outcome::ok(keep),
                Err(e) => Outcome::failed(format!("{what}: reading the body: {e}")),
            },
            Ok(r) => Outcome::failed(format!("{what}: {}", describe(r).await)),
            Err(e) => Outcome::failed(format!("{what}: {e}")),
        }
    }

    /// GETs `path` as JSON, renewing the token on a 401 and trying again after transport
    /// errors and 5xx answers (pollers must outlive a busy server and an expired token).
    pub async fn get_json(&self, path: &str) -> Result<Value> {
        self.json_retrying(Method::GET, path, None).await
    }

    /// POSTs `body` to `path` and answers the JSON of a 200, retrying like
    /// [`Api::get_json`]; only for actions that change nothing (status polls, URL look-ups).
    pub async fn post_json_retrying(&self, path: &str, body: &Value) -> Result<Value> {
        self.json_retrying(Method::POST, path, Some(body)).await
    }

    async fn json_retrying(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let mut last = String::new();
        for _ in 0..GET_TRIES {
            let mut request = self.request(method.clone(), path);
            if let Some(body) = body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(r) if r.status() == StatusCode::OK => {
                    return r.json().await.with_context(|| format!("{method} {path}: the answer is not JSON"));
                }
                Ok(r) if r.status() == StatusCode::UNAUTHORIZED => {
                    last = describe(r).await;
                    self.renew().await?;
                    continue;
                }
                Ok(r) if r.status().is_server_error() => last = describe(r).await,
                Ok(r) => bail!("{method} {path} answered {}", describe(r).await),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        bail!("{method} {path}: no answer after {GET_TRIES} tries; last: {last}")
    }
}
