//! HMAC-SHA256 over short messages (blob URLs): [`MacKey`] signs and verifies in constant time.
//! Its key is usually one [`MasterKey::derive_key`](crate::MasterKey::derive_key) derived, so
//! every node that shares the master key accepts the others' signatures.

use aws_lc_rs::hmac;

/// The length of a tag, in bytes.
pub const MAC_TAG_LEN: usize = 32;

/// An HMAC-SHA256 key. `Debug` shows nothing of it.
pub struct MacKey {
    key: hmac::Key,
}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(<redacted>)")
    }
}

impl MacKey {
    pub fn new(key: &[u8; 32]) -> MacKey {
        MacKey { key: hmac::Key::new(hmac::HMAC_SHA256, key) }
    }

    /// The tag of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; MAC_TAG_LEN] {
        let tag = hmac::sign(&self.key, message);
        let mut out = [0u8; MAC_TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Whether `tag` is the tag of `message`, compared in constant time.
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.key, message, tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let key = MacKey::new(&[7u8; 32]);
        let tag = key.sign(b"message");
        assert!(key.verify(b"message", &tag));
        assert!(!key.verify(b"messagE", &tag), "another message");
        let mut tampered = tag;
        tampered[0] ^= 1;
        assert!(!key.verify(b"message", &tampered), "a changed tag");
        assert!(!key.verify(b"message", &tag[..31]), "a cut tag");
        assert!(!MacKey::new(&[8u8; 32]).verify(b"message", &tag), "another key");
        assert_eq!(format!("{key:?}"), "MacKey(<redacted>)");
    }
}
