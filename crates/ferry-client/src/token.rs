//! Bearer tokens by the client-credentials grant, from ferry's `/oauth2/token` or an Entra ID
//! (or Entra-shaped) endpoint, kept in memory and in a per-environment cache file (mode 0600)
//! and fetched again before they expire: a token is renewed once less than a quarter of its
//! lifetime (at most five minutes) is left. A `401` drops it ([`TokenSource::invalidate`]).
//! Neither secrets nor tokens are logged.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_domain::SharedClock;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::error::{ClientError, ClientResult, error_message};
use crate::profile::{Audience, Environment};

/// The longest margin before expiry at which a token is renewed.
const RENEW_MARGIN_MAX_SECS: i64 = 300;

#[derive(Clone, Serialize, Deserialize)]
struct CachedToken {
    token_url: String,
    client_id: String,
    audience: String,
    access_token: String,
    /// Unix seconds.
    expires_at: i64,
    /// Unix seconds: renew from then on.
    renew_at: i64,
}

/// What `ferry login` shows about a token: never the token.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// Whether it came from the cache rather than the token endpoint.
    pub cached: bool,
}

/// The tokens of one environment.
pub struct TokenSource {
    env: Environment,
    cache_file: Option<PathBuf>,
    clock: SharedClock,
    current: Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource").field("token_url", &self.env.token_url).finish_non_exhaustive()
    }
}

fn audience_text(audience: &Audience) -> String {
    match audience {
        Audience::Scope(s) => format!("scope:{s}"),
        Audience::Resource(r) => format!("resource:{r}"),
    }
}

impl TokenSource {
    /// Tokens for `env`, cached in `cache_dir/<environment>.json` when a directory is given.
    pub fn new(env: Environment, cache_dir: Option<PathBuf>, clock: SharedClock) -> Arc<TokenSource> {
        let cache_file = cache_dir.map(|d| d.join(format!("{}.json", sanitize(&env.name))));
        Arc::new(TokenSource { env, cache_file, clock, current: Mutex::new(None) })
    }

    /// A token valid for a while yet: the one held, the cached one, or a new one.
    pub async fn token(&self, http: &reqwest::Client) -> ClientResult<String> {
        Ok(self.token_info(http).await?.0)
    }

    /// The token and when it expires.
    pub async fn token_info(&self, http: &reqwest::Client) -> ClientResult<(String, TokenInfo)> {
        let now = self.clock.now().timestamp();
        let mut current = self.current.lock().await;
        let usable = |t: &CachedToken| {
            t.renew_at > now
                && t.token_url == self.env.token_url
                && t.client_id == self.env.client_id
                && t.audience == audience_text(&self.env.audience)
        };
        let info = |t: &CachedToken, cached| TokenInfo {
            expires_at: chrono::DateTime::from_timestamp(t.expires_at, 0).unwrap_or_default(),
            cached,
        };
        if let Some(t) = current.as_ref().filter(|t| usable(t)) {
            return Ok((t.access_token.clone(), info(t, true)));
        }
        if let Some(t) = self.read_cache().filter(|t| usable(t)) {
            let answer = (t.access_token.clone(), info(&t, true));
            *current = Some(t);
            return Ok(answer);
        }
        let fresh = self.fetch(http, now).await?;
        self.write_cache(&fresh);
        let answer = (fresh.access_token.clone(), info(&fresh, false));
        *current = Some(fresh);
        Ok(answer)
    }

    /// Forgets the token (the server refused it): the next call fetches a new one.
    pub async fn invalidate(&self) {
        *self.current.lock().await = None;
        if let Some(path) = &self.cache_file {
            let _ = std::fs::remove_file(path);
        }
    }

    async fn fetch(&self, http: &reqwest::Client, now: i64) -> ClientResult<CachedToken> {
        let what = format!("token for environment '{}'", self.env.name);
        let url = self.env.token_url.clone();
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", self.env.client_id.clone()),
            ("client_secret", self.env.secret.expose().to_owned()),
        ];
        match &self.env.audience {
            Audience::Scope(s) => form.push(("scope", s.clone())),
            Audience::Resource(r) => form.push(("resource", r.clone())),
        }
        // The token endpoint gets the same patience as every other call, but only for
        // transient answers.
        let mut attempt = 0u32;
        let response = loop {
            attempt += 1;
            let result = http.post(&url).form(&form).timeout(Duration::from_secs(60)).send().await;
            let transient = match &result {
                Ok(r) => r.status().as_u16() == 429 || r.status().is_server_error(),
                Err(_) => true,
            };
            if !transient || attempt >= 5 {
                break result;
            }
            let detail = match &result {
                Ok(r) => format!("{}", r.status().as_u16()),
                Err(e) => e.to_string(),
            };
            let wait = Duration::from_millis(500) * attempt;
            tracing::warn!(call = %what, url = %url, wait_ms = wait.as_millis() as u64, %detail, "retrying");
            tokio::time::sleep(wait).await;
        };
        let response = response.map_err(|e| ClientError::Unreachable {
            what: what.clone(),
            url: url.clone(),
            detail: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| ClientError::Unreachable {
            what: what.clone(),
            url: url.clone(),
            detail: e.to_string(),
        })?;
        if status == 429 || status >= 500 {
            return Err(ClientError::Unreachable { what, url, detail: format!("{status}: {}", error_message(&body)) });
        }
        if status != 200 {
            return Err(ClientError::Refused { what, url, status, message: error_message(&body) });
        }
        let value: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| ClientError::protocol(&what, &url, e))?;
        let access_token = value["access_token"]
            .as_str()
            .ok_or_else(|| ClientError::protocol(&what, &url, "no access_token in the answer"))?
            .to_owned();
        // Entra v1 answers numbers as strings.
        let expires_in = match &value["expires_in"] {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(3600)
        .max(1);
        let margin = (expires_in / 4).min(RENEW_MARGIN_MAX_SECS);
        tracing::debug!(environment = %self.env.name, expires_in, "obtained a token");
        Ok(CachedToken {
            token_url: self.env.token_url.clone(),
            client_id: self.env.client_id.clone(),
            audience: audience_text(&self.env.audience),
            access_token,
            expires_at: now + expires_in,
            renew_at: now + expires_in - margin,
        })
    }

    fn read_cache(&self) -> Option<CachedToken> {
        let text = std::fs::read_to_string(self.cache_file.as_ref()?).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn write_cache(&self, token: &CachedToken) {
        let Some(path) = &self.cache_file else { return };
        let Ok(text) = serde_json::to_vec(token) else { return };
        if let Err(e) = crate::files::write_private(path, &text) {
            tracing::warn!(error = %e, "cannot cache the token; the next command fetches a new one");
        }
    }
}

/// An environment name as a file name.
fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}
