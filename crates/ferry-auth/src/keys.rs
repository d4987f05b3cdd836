//! Token signing keys (ES256), kept in the store with the private half encrypted by the master
//! key. Every node verifies with every stored public key; each node signs with the newest
//! active key it can decrypt. Retired keys keep verifying until their last tokens expire.

use crate::AuthError;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ferry_secrets::MasterKey;
use ferry_store::{SigningKey, Store};
use jsonwebtoken::{DecodingKey, EncodingKey};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

const PURPOSE: &str = "ferry-signing-key";
/// How often a node looks for keys other nodes created or retired.
const REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Least time between refreshes triggered by an unknown `kid`.
const UNKNOWN_KID_REFRESH_MIN: Duration = Duration::from_secs(2);

struct Loaded {
    signer: Option<(String, EncodingKey)>,
    verifiers: HashMap<String, DecodingKey>,
    public_jwks: Vec<serde_json::Value>,
    loaded_at: Instant,
}

pub(crate) struct KeyRing {
    store: Store,
    master: MasterKey,
    /// Retired keys verify for this long after retirement (token lifetime plus clock skew).
    verify_after_retirement: chrono::Duration,
    loaded: RwLock<Loaded>,
}

fn new_key(master: &MasterKey, now: DateTime<Utc>) -> Result<SigningKey, AuthError> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| AuthError::Crypto("cannot generate a signing key".into()))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| AuthError::Crypto("cannot read the new signing key".into()))?;
    let point = pair.public_key().as_ref();
    // Uncompressed point: 0x04 ‖ x (32 bytes) ‖ y (32 bytes).
    let (x, y) = point[1..].split_at(32);
    let kid = uuid::Uuid::now_v7().simple().to_string();
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
    });
    Ok(SigningKey {
        kid,
        algorithm: "ES256".into(),
        private_key_encrypted: master.encrypt(PURPOSE, pkcs8.as_ref()),
        public_jwk: jwk.to_string(),
        created_at: now,
        retired_at: None,
    })
}

impl KeyRing {
    pub(crate) async fn open(
        store: Store,
        master: MasterKey,
        verify_after_retirement: chrono::Duration,
    ) -> Result<KeyRing, AuthError> {
        let ring = KeyRing {
            store,
            master,
            verify_after_retirement,
            loaded: RwLock::new(Loaded {
                signer: None,
                verifiers: HashMap::new(),
                public_jwks: Vec::new(),
                loaded_at: Instant::now(),
            }),
        };
        ring.reload().await?;
        if ring.loaded.read().expect("key lock").signer.is_none() {
            // First start, or no active key this node can decrypt (another master key).
            ring.store.insert_signing_key(&new_key(&ring.master, ring.store.clock().now())?).await?;
            ring.reload().await?;
        }
        Ok(ring)
    }

    async fn reload(&self) -> Result<(), AuthError> {
        let now = self.store.clock().now();
        let keys = self.store.list_signing_keys().await?;
        let mut signer = None;
        let mut verifiers = HashMap::new();
        let mut public_jwks = Vec::new();
        for key in keys {
            if key.retired_at.is_some_and(|at| at + self.verify_after_retirement < now) {
                continue;
            }
            let Ok(jwk) = serde_json::from_str::<serde_json::Value>(&key.public_jwk) else { continue };
            let (Some(x), Some(y)) = (jwk["x"].as_str(), jwk["y"].as_str()) else { continue };
            let Ok(decoding) = DecodingKey::from_ec_components(x, y) else { continue };
            verifiers.insert(key.kid.clone(), decoding);
            public_jwks.push(jwk);
            // Keys come newest first: the first active one this node can decrypt signs.
            if signer.is_none() && key.retired_at.is_none() {
                if let Ok(pkcs8) = self.master.decrypt(PURPOSE, &key.private_key_encrypted) {
                    signer = Some((key.kid.clone(), EncodingKey::from_ec_der(&pkcs8)));
                } else {
                    tracing::warn!(kid = %key.kid, "signing key was written with another master key; configure the same master_key on every node");
                }
            }
        }
        *self.loaded.write().expect("key lock") = Loaded { signer, verifiers, public_jwks, loaded_at: Instant::now() };
        Ok(())
    }

    async fn refresh_if_older_than(&self, age: Duration) -> Result<(), AuthError> {
        let stale = self.loaded.read().expect("key lock").loaded_at.elapsed() >= age;
        if stale { self.reload().await } else { Ok(()) }
    }

    /// The key to sign with: its `kid` and the key.
    pub(crate) async fn signer(&self) -> Result<(String, EncodingKey), AuthError> {
        self.refresh_if_older_than(REFRESH_INTERVAL).await?;
        if let Some(signer) = self.loaded.read().expect("key lock").signer.clone() {
            return Ok(signer);
        }
        // Another node rotated to a key this node cannot decrypt: add one of its own.
        self.store.insert_signing_key(&new_key(&self.master, self.store.clock().now())?).await?;
        self.reload().await?;
        self.loaded.read().expect("key lock").signer.clone().ok_or_else(|| AuthError::Crypto("no signing key".into()))
    }

    /// The public key for `kid`, looking in the store again if it is not known yet.
    pub(crate) async fn verifier(&self, kid: &str) -> Result<Option<DecodingKey>, AuthError> {
        if let Some(key) = self.loaded.read().expect("key lock").verifiers.get(kid) {
            return Ok(Some(key.clone()));
        }
        self.refresh_if_older_than(UNKNOWN_KID_REFRESH_MIN).await?;
        Ok(self.loaded.read().expect("key lock").verifiers.get(kid).cloned())
    }

    pub(crate) async fn jwks(&self) -> Result<serde_json::Value, AuthError> {
        self.refresh_if_older_than(REFRESH_INTERVAL).await?;
        Ok(serde_json::json!({ "keys": self.loaded.read().expect("key lock").public_jwks }))
    }

    /// Makes a new key the signer and retires the others; drops keys whose tokens expired.
    pub(crate) async fn rotate(&self) -> Result<String, AuthError> {
        let now = self.store.clock().now();
        let key = new_key(&self.master, now)?;
        self.store.insert_signing_key(&key).await?;
        self.store.retire_signing_keys(&key.kid, now).await?;
        self.store.purge_signing_keys(now - self.verify_after_retirement).await?;
        self.reload().await?;
        Ok(key.kid)
    }
}
