//! Client secrets: generated with the system RNG, stored only as argon2id hashes.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine;

/// A new random secret (32 bytes, URL-safe base64) to print once.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("system random");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Hashes a secret with argon2id and a random salt (PHC string). CPU-heavy: call off the
/// async executor.
pub fn hash_secret(secret: &str) -> String {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).expect("system random");
    let hash: PasswordHash =
        Argon2::default().hash_password_with_salt(secret.as_bytes(), &salt).expect("argon2 hashing");
    hash.to_string()
}

/// Checks a secret against a PHC hash in constant time. CPU-heavy: call off the executor.
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    Argon2::default().verify_password(secret.as_bytes(), hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let secret = generate_secret();
        let a = hash_secret(&secret);
        let b = hash_secret(&secret);
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "salted");
        assert!(verify_secret(&secret, &a));
        assert!(!verify_secret("wrong", &a));
        assert!(!verify_secret(&secret, "not a hash"));
    }
}
