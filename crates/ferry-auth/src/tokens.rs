//! The token service: authenticates client apps, issues ES256 JWTs shaped like Entra ID's
//! (`aud`, `appid`/`azp`, `roles`, `tid`), and verifies bearer tokens from ferry itself or from
//! a trusted external issuer.

use crate::AuthError;
use crate::external::ExternalIssuer;
use crate::keys::KeyRing;
use crate::principal::{Principal, Role};
use base64::Engine;
use ferry_secrets::{MasterKey, verify_secret};
use ferry_store::{App, Store};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct TrustedIssuerSettings {
    pub issuer: String,
    pub jwks_url: String,
    pub audience: String,
}

#[derive(Clone, Debug)]
pub struct TokenSettings {
    /// `iss` of tokens ferry issues (its public URL).
    pub issuer: String,
    pub tenant_id: String,
    /// Audiences accepted besides the issuer URL itself.
    pub audiences: Vec<String>,
    pub lifetime: Duration,
    pub clock_skew: Duration,
    pub trusted_issuers: Vec<TrustedIssuerSettings>,
}

#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: u64,
    /// Unix seconds.
    pub expires_on: i64,
    pub not_before: i64,
    pub audience: String,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    aud: String,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    sub: String,
    appid: String,
    azp: String,
    tid: String,
    roles: Vec<String>,
    idtyp: String,
    ver: String,
    jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ferry_company: Option<String>,
}

/// Claims read from an external token: only what ferry needs.
#[derive(Deserialize)]
struct ExternalClaims {
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    appid: Option<String>,
    #[serde(default)]
    azp: Option<String>,
}

/// How long a looked-up app (for external tokens) is trusted before it is read again.
const APP_CACHE_TTL: Duration = Duration::from_secs(30);
/// Most of ferry's own tokens remembered as verified (see [`VerifiedToken`]).
const VERIFIED_TOKENS_MAX: usize = 4096;

/// One of ferry's own tokens whose signature, issuer and audience were verified: clients send
/// the same token with every request for its whole lifetime, and checking its ES256 signature
/// each time was a tenth of the server's CPU under small writes. Kept by the token's whole
/// text, so any other token (a tampered one included) is verified in full; its times are
/// checked against the clock at every use, and its signing key must still be known.
#[derive(Clone)]
struct VerifiedToken {
    kid: String,
    exp: i64,
    nbf: i64,
    principal: Principal,
}

pub struct TokenService {
    store: Store,
    settings: TokenSettings,
    keys: KeyRing,
    external: Vec<ExternalIssuer>,
    app_cache: RwLock<HashMap<String, (Option<App>, Instant)>>,
    verified: RwLock<HashMap<String, VerifiedToken>>,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService").field("issuer", &self.settings.issuer).finish_non_exhaustive()
    }
}

/// Audiences compare without regard to case or a trailing slash.
fn normalize_audience(aud: &str) -> String {
    aud.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl TokenService {
    pub async fn open(store: Store, master: MasterKey, settings: TokenSettings) -> Result<TokenService, AuthError> {
        let retirement = chrono::Duration::from_std(settings.lifetime + settings.clock_skew).unwrap_or_default();
        let keys = KeyRing::open(store.clone(), master, retirement).await?;
        let external = settings.trusted_issuers.iter().cloned().map(ExternalIssuer::new).collect();
        Ok(TokenService {
            store,
            settings,
            keys,
            external,
            app_cache: RwLock::new(HashMap::new()),
            verified: RwLock::new(HashMap::new()),
        })
    }

    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// Checks client credentials. Unknown, disabled and wrong-secret answers look the same.
    pub async fn authenticate_client(&self, client_id: &str, client_secret: &str) -> Result<App, AuthError> {
        let app = self.store.get_app(client_id).await?;
        let (hash, app) = match app {
            Some(app) if app.enabled => (app.secret_hash.clone(), Some(app)),
            // Still hash, so a missing app takes as long as a wrong secret.
            _ => (
                "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                    .into(),
                None,
            ),
        };
        let secret = client_secret.to_string();
        let ok = tokio::task::spawn_blocking(move || verify_secret(&secret, &hash))
            .await
            .map_err(|_| AuthError::Crypto("secret check failed".into()))?;
        match app {
            Some(app) if ok => Ok(app),
            _ => Err(AuthError::InvalidClient),
        }
    }

    fn accepted_audiences(&self) -> Vec<String> {
        let mut accepted = vec![normalize_audience(&self.settings.issuer)];
        accepted.extend(self.settings.audiences.iter().map(|a| normalize_audience(a)));
        accepted
    }

    /// Picks the audience of a new token: the requested resource (checked) or ferry's own URL.
    pub fn resolve_audience(&self, requested: Option<&str>) -> Result<String, AuthError> {
        let Some(requested) = requested.filter(|r| !r.trim().is_empty()) else {
            return Ok(self.settings.issuer.clone());
        };
        if self.accepted_audiences().contains(&normalize_audience(requested)) {
            Ok(requested.trim().to_string())
        } else {
            Err(AuthError::InvalidScope(format!(
                "resource '{requested}' is not served by this ferry; accepted: {} (add it to auth.audiences)",
                self.accepted_audiences().join(", ")
            )))
        }
    }

    pub async fn issue(&self, app: &App, audience: &str) -> Result<IssuedToken, AuthError> {
        let (kid, key) = self.keys.signer().await?;
        let now = self.store.clock().now().timestamp();
        let lifetime = self.settings.lifetime.as_secs() as i64;
        let claims = Claims {
            aud: audience.to_string(),
            iss: self.settings.issuer.clone(),
            iat: now,
            nbf: now,
            exp: now + lifetime,
            sub: app.client_id.clone(),
            appid: app.client_id.clone(),
            azp: app.client_id.clone(),
            tid: self.settings.tenant_id.clone(),
            roles: app.roles.clone(),
            idtyp: "app".into(),
            ver: "2.0".into(),
            jti: uuid::Uuid::new_v4().to_string(),
            ferry_company: app.default_company.clone(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid);
        let access_token = jsonwebtoken::encode(&header, &claims, &key)
            .map_err(|e| AuthError::Crypto(format!("cannot sign a token: {e}")))?;
        Ok(IssuedToken {
            access_token,
            expires_in: lifetime as u64,
            expires_on: now + lifetime,
            not_before: now,
            audience: audience.to_string(),
        })
    }

    /// Verifies a bearer token and answers who is calling.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let remembered = self.verified.read().expect("verified tokens").get(token).cloned();
        if let Some(known) = remembered
            && self.keys.verifier(&known.kid).await?.is_some()
        {
            self.check_times(known.exp, Some(known.nbf))?;
            return Ok(known.principal);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::InvalidToken("the bearer token is not a JWT".into()))?;
        let kid =
            header.kid.clone().ok_or_else(|| AuthError::InvalidToken("the token names no signing key (kid)".into()))?;
        let issuer = unverified_issuer(token)?;
        if issuer == self.settings.issuer {
            self.verify_own(token, &kid).await
        } else if let Some(external) = self.external.iter().find(|e| e.settings.issuer == issuer) {
            self.verify_external(token, &kid, header.alg, external).await
        } else {
            Err(AuthError::InvalidToken(format!("tokens from issuer '{issuer}' are not trusted")))
        }
    }

    fn validation(&self, alg: Algorithm, issuer: &str) -> Validation {
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[issuer]);
        // Times are checked against ferry's clock (see `check_times`), not the wall clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        // Audiences are compared below, without regard to case or a trailing slash.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation
    }

    async fn verify_own(&self, token: &str, kid: &str) -> Result<Principal, AuthError> {
        let key = self
            .keys
            .verifier(kid)
            .await?
            .ok_or_else(|| AuthError::InvalidToken("the token's signing key is unknown or expired".into()))?;
        let data =
            jsonwebtoken::decode::<Claims>(token, &key, &self.validation(Algorithm::ES256, &self.settings.issuer))
                .map_err(token_error)?;
        let claims = data.claims;
        self.check_times(claims.exp, Some(claims.nbf))?;
        if !self.accepted_audiences().contains(&normalize_audience(&claims.aud)) {
            return Err(AuthError::InvalidToken(format!("the token's audience '{}' is not this ferry", claims.aud)));
        }
        let principal = Principal {
            client_id: claims.appid,
            roles: claims.roles.iter().filter_map(|r| Role::parse(r)).collect(),
            default_company: claims.ferry_company,
        };
        let known =
            VerifiedToken { kid: kid.to_owned(), exp: claims.exp, nbf: claims.nbf, principal: principal.clone() };
        let mut verified = self.verified.write().expect("verified tokens");
        if verified.len() >= VERIFIED_TOKENS_MAX {
            verified.clear();
        }
        verified.insert(token.to_owned(), known);
        Ok(principal)
    }

    async fn verify_external(
        &self,
        token: &str,
        kid: &str,
        alg: Algorithm,
        external: &ExternalIssuer,
    ) -> Result<Principal, AuthError> {
        let allowed = [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::PS256,
        ];
        if !allowed.contains(&alg) {
            return Err(AuthError::InvalidToken(format!("signature algorithm {alg:?} is not accepted")));
        }
        let key = external.key(kid).await?;
        let mut validation = self.validation(alg, &external.settings.issuer);
        validation.validate_aud = true;
        let audience = &external.settings.audience;
        validation.set_audience(&[
            audience.clone(),
            format!("{}/", audience.trim_end_matches('/')),
            audience.trim_end_matches('/').to_string(),
        ]);
        let data = jsonwebtoken::decode::<ExternalClaims>(token, &key, &validation).map_err(token_error)?;
        self.check_times(data.claims.exp, data.claims.nbf)?;
        let client_id = data
            .claims
            .appid
            .or(data.claims.azp)
            .ok_or_else(|| AuthError::InvalidToken("the token names no application (appid/azp)".into()))?;
        let app = self.cached_app(&client_id).await?.filter(|a| a.enabled).ok_or_else(|| {
            AuthError::InvalidToken(format!("application '{client_id}' is not registered in ferry (ferry apps add)"))
        })?;
        Ok(Principal {
            client_id: app.client_id,
            roles: app.roles.iter().filter_map(|r| Role::parse(r)).collect(),
            default_company: app.default_company,
        })
    }

    /// A token is valid from `nbf` until `exp` (Unix seconds), give or take the allowed clock skew.
    fn check_times(&self, exp: i64, nbf: Option<i64>) -> Result<(), AuthError> {
        let now = self.store.clock().now().timestamp();
        let skew = i64::try_from(self.settings.clock_skew.as_secs()).unwrap_or(i64::MAX);
        if now > exp.saturating_add(skew) {
            return Err(AuthError::InvalidToken("the token has expired".into()));
        }
        if nbf.is_some_and(|nbf| now < nbf.saturating_sub(skew)) {
            return Err(AuthError::InvalidToken("the token is not valid yet".into()));
        }
        Ok(())
    }

    async fn cached_app(&self, client_id: &str) -> Result<Option<App>, AuthError> {
        if let Some((app, at)) = self.app_cache.read().expect("app cache").get(client_id)
            && at.elapsed() < APP_CACHE_TTL
        {
            return Ok(app.clone());
        }
        let app = self.store.get_app(client_id).await?;
        let mut cache = self.app_cache.write().expect("app cache");
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(client_id.to_string(), (app.clone(), Instant::now()));
        Ok(app)
    }

    /// The public signing keys, as a JWKS document.
    pub async fn jwks(&self) -> Result<serde_json::Value, AuthError> {
        self.keys.jwks().await
    }

    /// Starts signing with a new key; older keys keep verifying until their tokens expire.
    pub async fn rotate_signing_key(&self) -> Result<String, AuthError> {
        self.keys.rotate().await
    }
}

/// Reads `iss` without verifying, only to choose which keys verify the token.
fn unverified_issuer(token: &str) -> Result<String, AuthError> {
    let bad = || AuthError::InvalidToken("the bearer token is not a JWT".into());
    let payload = token.split('.').nth(1).ok_or_else(bad)?;
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).map_err(|_| bad())?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    value["iss"].as_str().map(str::to_string).ok_or_else(|| AuthError::InvalidToken("the token has no issuer".into()))
}

fn token_error(e: jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind as K;
    AuthError::InvalidToken(
        match e.kind() {
            K::ExpiredSignature => "the token has expired",
            K::ImmatureSignature => "the token is not valid yet",
            K::InvalidSignature => "the token's signature is invalid",
            K::InvalidIssuer => "the token's issuer is not accepted",
            K::InvalidAudience => "the token's audience is not accepted",
            K::InvalidAlgorithm => "the token's algorithm is not accepted",
            K::MissingRequiredClaim(_) => "the token lacks a required claim",
            _ => "the token is malformed",
        }
        .to_string(),
    )
}

#[cfg(test)]
mod tests;
