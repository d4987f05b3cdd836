//! OAuth 2.0 for ferry: client secrets (argon2), the master key that encrypts secrets at rest,
//! token signing keys kept in the store (so every node of a cluster accepts every node's
//! tokens), JWT issue and verification, and trusted external issuers such as Entra ID.

mod crypto;
mod external;
mod keys;
mod principal;
mod secret;
mod tokens;

pub use crypto::MasterKey;
pub use principal::{Principal, Role};
pub use secret::{generate_secret, hash_secret, verify_secret};
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
