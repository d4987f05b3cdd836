//! Trusted external issuers (e.g. Entra ID): their JWKS is fetched over HTTPS, cached by `kid`
//! and fetched again, at most every few seconds, when a token names an unknown `kid`.

use crate::AuthError;
use crate::tokens::TrustedIssuerSettings;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

const REFETCH_MIN: Duration = Duration::from_secs(5);

pub(crate) struct ExternalIssuer {
    pub(crate) settings: TrustedIssuerSettings,
    http: reqwest::Client,
    keys: RwLock<(HashMap<String, DecodingKey>, Option<Instant>)>,
}

impl ExternalIssuer {
    pub(crate) fn new(settings: TrustedIssuerSettings) -> ExternalIssuer {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("http client");
        ExternalIssuer { settings, http, keys: RwLock::new((HashMap::new(), None)) }
    }

    pub(crate) async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        let fetch_allowed = {
            let keys = self.keys.read().expect("jwks lock");
            if let Some(key) = keys.0.get(kid) {
                return Ok(key.clone());
            }
            keys.1.is_none_or(|at| at.elapsed() >= REFETCH_MIN)
        };
        if fetch_allowed {
            self.fetch().await?;
        }
        self.keys.read().expect("jwks lock").0.get(kid).cloned().ok_or_else(|| {
            AuthError::InvalidToken(format!("signing key '{kid}' is unknown to issuer {}", self.settings.issuer))
        })
    }

    async fn fetch(&self) -> Result<(), AuthError> {
        self.keys.write().expect("jwks lock").1 = Some(Instant::now());
        let unavailable = |e: String| {
            tracing::warn!(issuer = %self.settings.issuer, error = %e, "cannot fetch the issuer's JWKS");
            AuthError::InvalidToken(format!("the signing keys of issuer {} cannot be fetched", self.settings.issuer))
        };
        let response = self.http.get(&self.settings.jwks_url).send().await.map_err(|e| unavailable(e.to_string()))?;
        let set: JwkSet = response.json().await.map_err(|e| unavailable(e.to_string()))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            if let (Some(kid), Ok(key)) = (&jwk.common.key_id, DecodingKey::from_jwk(jwk)) {
                keys.insert(kid.clone(), key);
            }
        }
        self.keys.write().expect("jwks lock").0 = keys;
        Ok(())
    }
}
