//! The plain config sections — `[log]`, `[auth]`, `[odata]` — which
//! deserialize directly into their public types and then validate themselves.
//!
//! To add a section: define its struct here (or in its own module) with
//! `#[serde(default, deny_unknown_fields)]`, a `Default` and a [`Validate`]
//! impl, then add one field to `Document` and `Config` in `config.rs`.

use serde::Deserialize;

use crate::error::{KeyPath, Problem};
use crate::validate::{Validate, company, http_url, identifier, in_range, not_blank};

/// `[log]`: how ferry logs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct LogConfig {
    /// `text` (human-readable) or `json` (one object per line).
    pub format: LogFormat,
    /// A `tracing` env-filter directive, e.g. `info,ferry_api=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Text, level: "info".to_owned() }
    }
}

impl Validate for LogConfig {
    fn validate(&mut self, at: &KeyPath) -> Result<(), Problem> {
        let at = at.key("level");
        not_blank(&self.level, &at)?;
        self.level = self.level.trim().to_owned();
        if self.level.chars().any(char::is_whitespace) {
            return Err(Problem::new(&at, format!("'{}' must not contain whitespace", self.level)));
        }
        Ok(())
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase", expecting = "text or json")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

/// `[auth]`: ferry's own token issuer and the external issuers it trusts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct AuthConfig {
    /// Tenant id shown in `tid` claims and Entra-shaped paths.
    pub tenant_id: String,
    /// Extra accepted token audiences; `public_url` is always accepted.
    pub audiences: Vec<String>,
    /// Lifetime of issued access tokens, 60..=86400.
    pub token_lifetime_secs: u64,
    /// Tolerated clock difference when checking `exp`/`nbf`, 0..=600.
    pub clock_skew_secs: u64,
    /// External issuers (e.g. Entra ID) whose tokens are accepted.
    pub trusted_issuers: Vec<TrustedIssuer>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            tenant_id: "ferry".to_owned(),
            audiences: Vec::new(),
            token_lifetime_secs: 3600,
            clock_skew_secs: 60,
            trusted_issuers: Vec::new(),
        }
    }
}

impl Validate for AuthConfig {
    fn validate(&mut self, at: &KeyPath) -> Result<(), Problem> {
        identifier(&self.tenant_id, 100, &at.key("tenant_id"))?;
        in_range(self.token_lifetime_secs, 60..=86400, &at.key("token_lifetime_secs"))?;
        in_range(self.clock_skew_secs, 0..=600, &at.key("clock_skew_secs"))?;
        for (i, audience) in self.audiences.iter().enumerate() {
            let at = at.key("audiences").index(i);
            not_blank(audience, &at)?;
            if audience.chars().any(char::is_whitespace) {
                return Err(Problem::new(&at, format!("'{audience}' must not contain whitespace")));
            }
        }
        for (i, issuer) in self.trusted_issuers.iter_mut().enumerate() {
            issuer.validate(&at.key("trusted_issuers").index(i))?;
        }
        Ok(())
    }
}

/// An external token issuer, `[[auth.trusted_issuers]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct TrustedIssuer {
    /// The `iss` claim value, e.g. `https://login.microsoftonline.com/<tid>/v2.0`.
    pub issuer: String,
    /// Where the issuer's signing keys are published.
    pub jwks_url: String,
    /// The `aud` the issuer's tokens must carry; defaults to `public_url`.
    #[serde(default)]
    pub audience: String,
}

impl Validate for TrustedIssuer {
    fn validate(&mut self, at: &KeyPath) -> Result<(), Problem> {
        not_blank(&self.issuer, &at.key("issuer"))?;
        // Only check; the issuer is compared verbatim with `iss`.
        http_url(&self.issuer, &at.key("issuer"))?;
        self.jwks_url = http_url(&self.jwks_url, &at.key("jwks_url"))?;
        if self.audience.chars().any(char::is_whitespace) {
            return Err(Problem::new(&at.key("audience"), "must not contain whitespace"));
        }
        Ok(())
    }
}

/// `[odata]`: the OData endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct ODataConfig {
    /// Largest page a client may request (`$top`, `odata.maxpagesize`), 1..=50000.
    pub max_page_size: u32,
    /// Company for apps that declare none; lower-case.
    pub default_company: String,
}

impl Default for ODataConfig {
    fn default() -> Self {
        Self { max_page_size: 10_000, default_company: "dat".to_owned() }
    }
}

impl Validate for ODataConfig {
    fn validate(&mut self, at: &KeyPath) -> Result<(), Problem> {
        in_range(self.max_page_size, 1..=50_000, &at.key("max_page_size"))?;
        self.default_company = company(&self.default_company, &at.key("default_company"))?;
        Ok(())
    }
}
