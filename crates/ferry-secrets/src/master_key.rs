//! The master key: AES-256-GCM encryption of secrets kept at rest (signing keys now, target
//! connection strings later). Ciphertext is `v1:` + base64(nonce ‖ ciphertext ‖ tag), and the
//! purpose of a value is bound in as associated data, so a ciphertext cannot be moved to
//! another purpose.
//!
//! The master key also derives keys for other purposes ([`MasterKey::derive_key`], HKDF-SHA256
//! with a fixed salt and the purpose as info), so every node sharing the master key derives the
//! same keys (e.g. the one that signs blob URLs) without storing them anywhere.

use crate::SecretError;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Prk, Salt};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// HKDF's salt for derived keys. Changing it changes every derived key (and so invalidates every
/// blob URL handed out), so it carries a version.
const DERIVATION_SALT: &[u8] = b"ferry master key derivation v1";

pub struct MasterKey {
    key: LessSafeKey,
    /// HKDF's pseudorandom key, extracted from the master key once.
    derivation: Prk,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A new random key and its base64 text (to be kept by the operator or in a key file).
    pub fn generate() -> (MasterKey, String) {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).expect("system random");
        let text = STANDARD.encode(bytes);
        (MasterKey::from_bytes(&bytes).expect("32 bytes"), text)
    }

    /// Parses a key written as base64 of 32 bytes.
    pub fn from_base64(text: &str) -> Result<MasterKey, SecretError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| SecretError("the master key is not base64".into()))?;
        MasterKey::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<MasterKey, SecretError> {
        if bytes.len() != 32 {
            return Err(SecretError(format!("the master key must be 32 bytes, not {}", bytes.len())));
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SecretError("bad master key".into()))?;
        let derivation = Salt::new(HKDF_SHA256, DERIVATION_SALT).extract(bytes);
        Ok(MasterKey { key: LessSafeKey::new(key), derivation })
    }

    /// A 32-byte key for `purpose` (e.g. `"blob-urls"`): HKDF-SHA256 of the master key, so the
    /// same master key gives the same key on every node and in every version, and different
    /// purposes get independent keys. Keep the result out of logs like the master key itself.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        let info = [purpose.as_bytes()];
        self.derivation
            .expand(&info, HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut out))
            .expect("HKDF-SHA256 expands to one hash length");
        out
    }

    pub fn encrypt(&self, purpose: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("system random");
        let mut data = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(purpose.as_bytes()), &mut data)
            .expect("AES-GCM sealing");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        format!("v1:{}", STANDARD.encode(out))
    }

    pub fn decrypt(&self, purpose: &str, ciphertext: &str) -> Result<Vec<u8>, SecretError> {
        let undecryptable =
            || SecretError(format!("{purpose}: cannot decrypt (was it written with another master key?)"));
        let encoded = ciphertext.strip_prefix("v1:").ok_or_else(undecryptable)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| undecryptable())?;
        if bytes.len() < NONCE_LEN {
            return Err(undecryptable());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| undecryptable())?;
        let mut data = sealed.to_vec();
        let plain =
            self.key.open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut data).map_err(|_| undecryptable())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_purpose() {
        let (key, text) = MasterKey::generate();
        let sealed = key.encrypt("signing-key", b"secret");
        assert!(!sealed.contains("secret"));
        assert_eq!(key.decrypt("signing-key", &sealed).unwrap(), b"secret");
        assert!(key.decrypt("other", &sealed).is_err());
        let same = MasterKey::from_base64(&text).unwrap();
        assert_eq!(same.decrypt("signing-key", &sealed).unwrap(), b"secret");
        let (other, _) = MasterKey::generate();
        assert!(other.decrypt("signing-key", &sealed).unwrap_err().to_string().contains("another master key"));
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn derived_keys_are_stable_and_separate() {
        // RFC 5869 with SHA-256, salt DERIVATION_SALT, info "blob-urls", over 32 zero bytes
        // (checked against Python's hmac): nodes and versions must keep agreeing on it.
        let zero = MasterKey::from_base64(&STANDARD.encode([0u8; 32])).unwrap();
        let expected = "800f019184ca1a9884e4cec5fbb020c4608a79fe2064f2633c4f930b5b6be3ef";
        let hex: String = zero.derive_key("blob-urls").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);

        let (key, text) = MasterKey::generate();
        let same = MasterKey::from_base64(&text).unwrap();
        assert_eq!(key.derive_key("blob-urls"), same.derive_key("blob-urls"), "same master key, same derived key");
        assert_ne!(key.derive_key("blob-urls"), key.derive_key("other"), "purposes are separate");
        assert_ne!(key.derive_key("blob-urls"), zero.derive_key("blob-urls"), "master keys are separate");
        assert!(!format!("{key:?}").contains(&text));
    }
}
