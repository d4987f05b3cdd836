//! Connection profiles: the client config file (TOML) with named environments — base URL, token
//! endpoint (ferry's own, or Entra ID by tenant), client id, secret, scope or resource, default
//! company — and where it lives: `FERRY_CLIENT_CONFIG`, else the OS config directory
//! (`$XDG_CONFIG_HOME/ferry/client.toml` or `~/.config/ferry/client.toml`,
//! `~/Library/Application Support/ferry/client.toml`, `%APPDATA%\ferry\client.toml`). The file
//! is written with mode 0600 (it may hold a secret); the token cache sits beside it in `tokens/`.
//!
//! A secret is `env:VAR` (read from the environment when needed), `file:PATH`, or the secret
//! itself. Secrets never appear in `Debug` output or logs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{ClientError, ClientResult};

/// The variable naming the client config file.
pub const CONFIG_VAR: &str = "FERRY_CLIENT_CONFIG";
/// The variable naming the environment to use when no `--env` is given.
pub const ENV_VAR: &str = "FERRY_ENV";
/// Entra ID's authority, used with `tenant` unless `authority` says otherwise.
pub const ENTRA_AUTHORITY: &str = "https://login.microsoftonline.com";

/// The client config file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The environment used when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentConfig>,
}

/// One named environment as the file holds it.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// The environment's base URL, e.g. `https://usmf.operations.dynamics.com` or ferry's.
    pub url: String,
    /// The token endpoint itself (wins over `tenant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// Entra ID tenant (id or domain): tokens from `<authority>/<tenant>/oauth2/v2.0/token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The authority with `tenant` (default `https://login.microsoftonline.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    pub client_id: String,
    /// `env:VAR`, `file:PATH`, or the secret itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The scope requested (default `<url>/.default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// A resource instead of a scope (Entra ID v1 endpoints: `<authority>/<tenant>/oauth2/token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The company (legal entity) used when a command names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// `ferry` (default) or `dynamics`: which status and error calls the server answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Tries per call when the server is unreachable or answers 5xx (default 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

impl fmt::Debug for EnvironmentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvironmentConfig")
            .field("url", &self.url)
            .field("token_url", &self.token_url)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|s| redacted_source(s)))
            .field("scope", &self.scope)
            .field("resource", &self.resource)
            .field("company", &self.company)
            .finish()
    }
}

/// How a secret is shown: where it comes from, never its value.
fn redacted_source(secret: &str) -> String {
    if secret.starts_with("env:") || secret.starts_with("file:") { secret.to_owned() } else { "<redacted>".into() }
}

/// A secret value; `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Which protocol family answers status and error questions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// ferry: `/api/messages` besides the Dynamics protocols.
    Ferry,
    /// Dynamics 365 itself: only the connector and package API.
    Dynamics,
}

/// What the token request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    Scope(String),
    Resource(String),
}

/// A resolved environment: everything a connection needs.
#[derive(Clone, Debug)]
pub struct Environment {
    pub name: String,
    /// Base URL without a trailing slash.
    pub url: String,
    pub token_url: String,
    pub client_id: String,
    pub secret: Secret,
    pub audience: Audience,
    pub company: Option<String>,
    pub server: ServerKind,
    /// Tries per call (the profile's `attempts`), if it sets them.
    pub attempts: Option<u32>,
}

impl EnvironmentConfig {
    /// Resolves the endpoint, audience and secret (`env` is the process environment).
    pub fn resolve(&self, name: &str, env: &[(String, String)]) -> ClientResult<Environment> {
        let bad = |m: String| ClientError::Config(format!("environment '{name}': {m}"));
        let url = self.url.trim().trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad(format!("url '{url}' must start with http:// or https://")));
        }
        if self.client_id.trim().is_empty() {
            return Err(bad("client_id is empty".into()));
        }
        if self.scope.is_some() && self.resource.is_some() {
            return Err(bad("give scope or resource, not both".into()));
        }
        let audience = match (&self.scope, &self.resource) {
            (_, Some(resource)) => Audience::Resource(resource.trim().to_owned()),
            (Some(scope), None) => Audience::Scope(scope.trim().to_owned()),
            (None, None) => Audience::Scope(format!("{url}/.default")),
        };
        let token_url = match (&self.token_url, &self.tenant) {
            (Some(t), _) => t.trim().to_owned(),
            (None, Some(tenant)) => {
                let authority = self.authority.as_deref().unwrap_or(ENTRA_AUTHORITY).trim().trim_end_matches('/');
                let version = if matches!(audience, Audience::Resource(_)) { "" } else { "/v2.0" };
                format!("{authority}/{}/oauth2{version}/token", tenant.trim())
            }
            (None, None) => format!("{url}/oauth2/token"),
        };
        let secret = match self.secret.as_deref().map(str::trim) {
            None | Some("") => {
                return Err(bad(
                    "no secret: set secret = \"env:VAR\" (or file:PATH, or the secret) with `ferry login`".into(),
                ));
            }
            Some(s) => read_secret(s, env).map_err(bad)?,
        };
        let server = match self.server.as_deref().map(str::trim) {
            None | Some("") => {
                if url.contains(".dynamics.com") {
                    ServerKind::Dynamics
                } else {
                    ServerKind::Ferry
                }
            }
            Some(s) if s.eq_ignore_ascii_case("ferry") => ServerKind::Ferry,
            Some(s) if s.eq_ignore_ascii_case("dynamics") => ServerKind::Dynamics,
            Some(s) => return Err(bad(format!("server '{s}' is neither ferry nor dynamics"))),
        };
        Ok(Environment {
            name: name.to_owned(),
            url,
            token_url,
            client_id: self.client_id.trim().to_owned(),
            secret,
            audience,
            company: self.company.clone().filter(|c| !c.trim().is_empty()),
            server,
            attempts: self.attempts.map(|a| a.clamp(1, 100)),
        })
    }
}

/// The secret `spec` names: `env:VAR`, `file:PATH` or the secret itself.
fn read_secret(spec: &str, env: &[(String, String)]) -> Result<Secret, String> {
    if let Some(var) = spec.strip_prefix("env:") {
        let var = var.trim();
        return env
            .iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| Secret(v.trim().to_owned()))
            .filter(|s| !s.0.is_empty())
            .ok_or_else(|| format!("the secret comes from environment variable {var}, which is not set"));
    }
    if let Some(path) = spec.strip_prefix("file:") {
        return std::fs::read_to_string(path.trim())
            .map(|s| Secret(s.trim().to_owned()))
            .map_err(|e| format!("cannot read the secret file {}: {e}", path.trim()));
    }
    Ok(Secret(spec.to_owned()))
}

/// The default config file path: `FERRY_CLIENT_CONFIG`, else the OS config directory.
pub fn default_config_path(env: &[(String, String)]) -> ClientResult<PathBuf> {
    let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    if let Some(path) = var(CONFIG_VAR) {
        return Ok(PathBuf::from(path));
    }
    let dir = if cfg!(windows) {
        var("APPDATA").map(PathBuf::from)
    } else if cfg!(target_os = "macos") {
        var("HOME").map(|h| Path::new(&h).join("Library/Application Support"))
    } else {
        var("XDG_CONFIG_HOME").map(PathBuf::from).or_else(|| var("HOME").map(|h| Path::new(&h).join(".config")))
    };
    let dir = dir.ok_or_else(|| {
        ClientError::Config(format!(
            "no config directory (HOME is not set); set {CONFIG_VAR} to the client config file"
        ))
    })?;
    Ok(dir.join("ferry").join("client.toml"))
}

impl ClientConfig {
    /// Reads the file; a missing file is an empty config.
    pub fn load(path: &Path) -> ClientResult<ClientConfig> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ClientConfig::default()),
            Err(e) => return Err(ClientError::io(format!("cannot read {}", path.display()), e)),
        };
        toml::from_str(&text).map_err(|e| ClientError::Config(format!("{}: {e}", path.display())))
    }

    /// Writes the file with mode 0600 (temp file, fsync, rename), creating its directory.
    pub fn save(&self, path: &Path) -> ClientResult<()> {
        let text = toml::to_string(self).map_err(|e| ClientError::Config(format!("cannot write the config: {e}")))?;
        let header = "# ferry client config: named environments (`ferry login` writes it).\n";
        crate::files::write_private(path, format!("{header}{text}").as_bytes())
    }

    /// The environment named `name`, else `FERRY_ENV`, else the default, else the only one.
    pub fn select(&self, name: Option<&str>, env: &[(String, String)]) -> ClientResult<(String, &EnvironmentConfig)> {
        let from_env = env.iter().find(|(k, _)| k == ENV_VAR).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        let chosen = name
            .or(from_env)
            .or(self.default.as_deref())
            .map(str::to_owned)
            .or_else(|| (self.environments.len() == 1).then(|| self.environments.keys().next().cloned()).flatten());
        let Some(chosen) = chosen else {
            return Err(ClientError::Config(if self.environments.is_empty() {
                "no environment is configured: run `ferry login --env NAME --url URL --client-id ID …` first".into()
            } else {
                let names: Vec<&str> = self.environments.keys().map(String::as_str).collect();
                format!("name an environment with --env (configured: {})", names.join(", "))
            }));
        };
        let config = self.environments.get(&chosen).ok_or_else(|| {
            let names: Vec<&str> = self.environments.keys().map(String::as_str).collect();
            ClientError::Config(format!(
                "no environment named '{chosen}' (configured: {}); `ferry login --env {chosen} …` adds it",
                if names.is_empty() { "none".to_owned() } else { names.join(", ") }
            ))
        })?;
        Ok((chosen, config))
    }
}

/// The token cache directory of the config file at `config_path`.
pub fn token_cache_dir(config_path: &Path) -> PathBuf {
    config_path.parent().map_or_else(|| PathBuf::from("tokens"), |p| p.join("tokens"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_config() -> EnvironmentConfig {
        EnvironmentConfig {
            url: "https://usmf.operations.dynamics.com/".into(),
            client_id: "app".into(),
            secret: Some("env:APP_SECRET".into()),
            ..EnvironmentConfig::default()
        }
    }

    #[test]
    fn entra_endpoints_and_scopes_are_derived() {
        let env = vec![("APP_SECRET".to_owned(), "s3cret".to_owned())];
        let mut config = env_config();
        config.tenant = Some("contoso.onmicrosoft.com".into());
        let resolved = config.resolve("prod", &env).unwrap();
        assert_eq!(resolved.token_url, "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
        assert_eq!(resolved.audience, Audience::Scope("https://usmf.operations.dynamics.com/.default".into()));
        assert_eq!(resolved.server, ServerKind::Dynamics);
        assert_eq!(resolved.secret.expose(), "s3cret");
        assert!(!format!("{resolved:?}").contains("s3cret"), "Debug never shows the secret");
        config.resource = Some("https://usmf.operations.dynamics.com".into());
        let v1 = config.resolve("prod", &env).unwrap();
        assert_eq!(v1.token_url, "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/token");
        let mut literal = env_config();
        literal.secret = Some("plain-secret".into());
        assert!(!format!("{literal:?}").contains("plain-secret"));
        assert!(env_config().resolve("prod", &[]).unwrap_err().to_string().contains("APP_SECRET"));
    }

    #[test]
    fn an_environment_is_chosen_by_flag_variable_default_or_being_alone() {
        let mut config = ClientConfig::default();
        assert!(config.select(None, &[]).is_err());
        config.environments.insert("a".into(), env_config());
        assert_eq!(config.select(None, &[]).unwrap().0, "a");
        config.environments.insert("b".into(), env_config());
        assert!(config.select(None, &[]).is_err());
        config.default = Some("b".into());
        assert_eq!(config.select(None, &[]).unwrap().0, "b");
        assert_eq!(config.select(None, &[(ENV_VAR.into(), "a".into())]).unwrap().0, "a");
        assert_eq!(config.select(Some("b"), &[(ENV_VAR.into(), "a".into())]).unwrap().0, "b");
        assert!(config.select(Some("c"), &[]).unwrap_err().to_string().contains("no environment named 'c'"));
    }
}
