//! OAuth 2.0 for ferry: client authentication (secrets hashed by `ferry-secrets`), token
//! signing keys kept in the store (so every node of a cluster accepts every node's tokens; their
//! private halves encrypted with the master key), JWT issue and verification, and trusted
//! external issuers such as Entra ID.

mod external;
mod keys;
mod principal;
mod tokens;

pub use principal::{Principal, Role};
pub use tokens::{IssuedToken, TokenService, TokenSettings, TrustedIssuerSettings};

/// What went wrong while authenticating a client or a token. Messages are safe to show.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown client, wrong secret, or disabled app (deliberately not told apart).
    #[error("invalid client credentials")]
    InvalidClient,
    #[error("{0}")]
    InvalidRequest(String),
    #[error("unsupported grant_type '{0}': ferry supports client_credentials")]
    UnsupportedGrantType(String),
    /// The requested resource or scope is not served by this ferry.
    #[error("{0}")]
    InvalidScope(String),
    /// A bearer token that cannot be accepted; the text says why.
    #[error("{0}")]
    InvalidToken(String),
    #[error("key storage failed")]
    Store(#[from] ferry_store::StoreError),
    #[error("cryptography failed: {0}")]
    Crypto(String),
}

impl From<ferry_secrets::SecretError> for AuthError {
    fn from(e: ferry_secrets::SecretError) -> Self {
        AuthError::Crypto(e.0)
    }
}
