//! Secrets at rest. [`MasterKey`] encrypts what ferry must read back (token signing keys,
//! replication targets' connection strings) and derives keys for other purposes, such as the
//! [`MacKey`] that signs blob URLs; client secrets are generated at random and kept only as
//! argon2id hashes. Nothing here reads the store or the network, so the token service
//! and replication both use it without depending on each other.

mod client_secret;
mod mac;
mod master_key;

pub use client_secret::{generate_secret, hash_secret, verify_secret};
pub use mac::{MAC_TAG_LEN, MacKey};
pub use master_key::MasterKey;

/// A master key that cannot be read, or a value it cannot decrypt. Messages are safe to show.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(pub String);
