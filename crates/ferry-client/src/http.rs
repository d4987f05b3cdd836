//! The HTTP layer: one [`Connection`] per environment, and one retry rule for every call.
//! `429` waits as `Retry-After` says (whole seconds, capped) and does not use up the retry
//! budget, though it has a bound of its own; `408`, `500`, `502`, `503`, `504` and connection
//! failures wait by [`RetryPolicy`] (doubling, capped) and try again until the attempts run
//! out; then the call fails as "could not reach the server". A `401` fetches a new token once.
//! Anything else that is not a success is refused at once.

use std::sync::Arc;
use std::time::Duration;

use ferry_domain::{RetryPolicy, SharedClock};

use crate::error::{ClientError, ClientResult, error_message};
use crate::profile::Environment;
use crate::token::TokenSource;

/// How patient a connection is.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// The wait after each transient failure.
    pub policy: RetryPolicy,
    /// Tries per call when the answers are transient failures (`1` = no retry).
    pub attempts: u32,
    /// `429` answers accepted per call before giving up.
    pub throttled_max: u32,
    /// The longest `Retry-After` honoured as given (longer ones are cut to it).
    pub retry_after_max: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            policy: RetryPolicy::new(Duration::from_secs(1), Duration::from_secs(30)),
            attempts: 6,
            throttled_max: 30,
            retry_after_max: Duration::from_secs(300),
        }
    }
}

/// A connection to one environment: its base URL, tokens, and HTTP client.
#[derive(Clone)]
pub struct Connection {
    env: Arc<Environment>,
    http: reqwest::Client,
    tokens: Arc<TokenSource>,
    retry: Retry,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("environment", &self.env.name).field("url", &self.env.url).finish()
    }
}

impl Connection {
    /// A connection to `env`; tokens cached in `cache_dir` when given.
    pub fn new(
        env: Environment,
        cache_dir: Option<std::path::PathBuf>,
        clock: SharedClock,
        retry: Retry,
    ) -> ClientResult<Connection> {
        let http = reqwest::Client::builder()
            // Dynamics never redirects a client it wants to keep; RIS turns redirects off too.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(30))
            .user_agent(concat!("ferry-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Config(format!("cannot build the HTTP client: {e}")))?;
        let tokens = TokenSource::new(env.clone(), cache_dir, clock);
        Ok(Connection { env: Arc::new(env), http, tokens, retry })
    }

    pub fn environment(&self) -> &Environment {
        &self.env
    }

    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The absolute URL of `path` (which starts with `/`) under the environment.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.env.url)
    }

    /// Sends the request `build` makes — called again for every attempt, so a streamed body is
    /// opened again — with the bearer token when `auth`, under the retry rule. Answers the first
    /// success (2xx); `what` names the call in errors.
    pub async fn send<F>(&self, what: &str, auth: bool, mut build: F) -> ClientResult<reqwest::Response>
    where
        F: FnMut(&reqwest::Client) -> ClientResult<reqwest::RequestBuilder> + Send,
    {
        self.send_with(what, auth, |http| std::future::ready(build(http))).await
    }

    /// [`Connection::send`] with a builder that has to wait (to open a file, say); its future
    /// owns what it needs.
    pub async fn send_with<F, Fut>(&self, what: &str, auth: bool, mut build: F) -> ClientResult<reqwest::Response>
    where
        F: FnMut(&reqwest::Client) -> Fut + Send,
        Fut: std::future::Future<Output = ClientResult<reqwest::RequestBuilder>> + Send,
    {
        let mut failures = 0u32;
        let mut throttled = 0u32;
        let mut renewed = false;
        loop {
            let mut request = build(&self.http).await?;
            if auth {
                request = request.bearer_auth(self.tokens.token(&self.http).await?);
            }
            let request = request.build().map_err(|e| ClientError::Config(format!("{what}: {e}")))?;
            let url = redact_query(request.url());
            let outcome = self.http.execute(request).await;
            let (wait, detail) = match outcome {
                Err(e) => {
                    failures += 1;
                    if failures >= self.retry.attempts {
                        return Err(ClientError::Unreachable { what: what.into(), url, detail: error_chain(&e) });
                    }
                    (self.retry.policy.delay(failures), error_chain(&e))
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    if response.status().is_success() {
                        return Ok(response);
                    }
                    match status {
                        429 => {
                            throttled += 1;
                            let wait = retry_after(&response)
                                .unwrap_or_else(|| self.retry.policy.delay(throttled))
                                .min(self.retry.retry_after_max);
                            let body = response.text().await.unwrap_or_default();
                            if throttled > self.retry.throttled_max {
                                return Err(ClientError::Unreachable {
                                    what: what.into(),
                                    url,
                                    detail: format!(
                                        "still throttled (429) after {throttled} tries: {}",
                                        error_message(&body)
                                    ),
                                });
                            }
                            (wait, format!("throttled (429): {}", error_message(&body)))
                        }
                        408 | 500 | 502 | 503 | 504 => {
                            failures += 1;
                            let body = response.text().await.unwrap_or_default();
                            let detail = format!("{status}: {}", error_message(&body));
                            if failures >= self.retry.attempts {
                                return Err(ClientError::Unreachable { what: what.into(), url, detail });
                            }
                            (self.retry.policy.delay(failures), detail)
                        }
                        401 if auth && !renewed => {
                            renewed = true;
                            self.tokens.invalidate().await;
                            (Duration::ZERO, "401: fetching a new token".to_owned())
                        }
                        _ => {
                            let body = response.text().await.unwrap_or_default();
                            return Err(ClientError::Refused {
                                what: what.into(),
                                url,
                                status,
                                message: error_message(&body),
                            });
                        }
                    }
                }
            };
            if !wait.is_zero() {
                tracing::warn!(call = what, %url, wait_ms = wait.as_millis() as u64, %detail, "retrying");
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// `GET path` with the token, as JSON.
    pub async fn get_json(&self, what: &str, path: &str) -> ClientResult<serde_json::Value> {
        let url = self.url(path);
        let response = self.send(what, true, |http| Ok(http.get(&url))).await?;
        read_json(what, response).await
    }

    /// `POST path` with a JSON body and the token, as JSON (`Null` for an empty answer).
    pub async fn post_json(&self, what: &str, path: &str, body: &serde_json::Value) -> ClientResult<serde_json::Value> {
        let url = self.url(path);
        let response = self.send(what, true, |http| Ok(http.post(&url).json(body))).await?;
        read_json(what, response).await
    }
}

/// The body of a successful answer as JSON (`Null` when empty).
pub async fn read_json(what: &str, response: reqwest::Response) -> ClientResult<serde_json::Value> {
    let url = redact_query(response.url());
    let text = response.text().await.map_err(|e| ClientError::Unreachable {
        what: what.into(),
        url: url.clone(),
        detail: e.to_string(),
    })?;
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_str(&text).map_err(|e| ClientError::protocol(what, &url, format!("not JSON ({e})")))
}

/// `Retry-After` in whole seconds (what Dynamics and ferry send).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A URL for messages: signed blob URLs carry their credential in the query, so no query.
pub fn redact_query(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    if shown.query().is_some_and(|q| q.contains("sig=")) {
        shown.set_query(Some("sig=…"));
    }
    shown.to_string()
}

/// An error with its causes (reqwest's own message alone says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
