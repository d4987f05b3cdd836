//! Certificate credentials for Entra ID: instead of a client secret, the token request carries a
//! *client assertion* — a short-lived JWT signed (RS256) with the app's private key, naming the
//! certificate by its thumbprints (`x5t`: SHA-1, `x5t#S256`: SHA-256, both base64url of the DER
//! certificate), with the token endpoint as audience and the client id as issuer and subject.

use crate::error::{ClientError, ClientResult};
use crate::profile::Secret;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::Digest as _;

/// How long an assertion is valid.
const LIFETIME_SECS: i64 = 600;

/// An app's certificate and private key, read from one PEM file.
#[derive(Clone)]
pub struct Certificate {
    /// The PKCS#1 private key, DER in base64.
    key_der: Secret,
    x5t: String,
    x5t_s256: String,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate").field("x5t", &self.x5t).finish_non_exhaustive()
    }
}

/// The base64 body of the first PEM block whose label is one of `labels`, with its label.
fn pem_block<'a>(pem: &'a str, labels: &[&'a str]) -> Option<(&'a str, String)> {
    labels.iter().find_map(|label| {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let start = pem.find(&begin)? + begin.len();
        let stop = start + pem[start..].find(&end)?;
        Some((*label, pem[start..stop].split_whitespace().collect()))
    })
}

/// The contents of the DER element at the start of `der` with tag `tag`, and what follows it.
fn der_element(der: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = der.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (rest[..n].iter().fold(0usize, |len, &b| (len << 8) | usize::from(b)), &rest[n..])
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// The `privateKey` of a PKCS#8 `PrivateKeyInfo`: SEQUENCE { INTEGER, SEQUENCE, OCTET STRING }.
fn pkcs8_inner_key(der: &[u8]) -> Option<Vec<u8>> {
    let (info, _) = der_element(der, 0x30)?;
    let (_, rest) = der_element(info, 0x02)?;
    let (_, rest) = der_element(rest, 0x30)?;
    let (key, _) = der_element(rest, 0x04)?;
    Some(key.to_vec())
}

impl Certificate {
    /// Reads the PEM text of a certificate (`CERTIFICATE`) and its RSA private key
    /// (`PRIVATE KEY` or `RSA PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<Certificate, String> {
        let (_, cert) = pem_block(pem, &["CERTIFICATE"]).ok_or("the PEM file holds no CERTIFICATE block")?;
        let der = STANDARD.decode(cert.as_bytes()).map_err(|e| format!("the CERTIFICATE block is not base64: {e}"))?;
        let (label, key) = pem_block(pem, &["PRIVATE KEY", "RSA PRIVATE KEY"]).ok_or(
            "the PEM file holds no PRIVATE KEY (or RSA PRIVATE KEY) block: put the key beside the certificate",
        )?;
        let key = STANDARD.decode(key.as_bytes()).map_err(|e| format!("the private key is not base64: {e}"))?;
        // PKCS#8 wraps the PKCS#1 `RSAPrivateKey` the signer takes.
        let rsa = if label == "PRIVATE KEY" {
            pkcs8_inner_key(&key).ok_or("the PRIVATE KEY block is not PKCS#8")?
        } else {
            key
        };
        let certificate = Certificate {
            key_der: Secret::new(STANDARD.encode(&rsa)),
            x5t: URL_SAFE_NO_PAD.encode(<sha1::Sha1 as sha1::Digest>::digest(&der)),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&der)),
        };
        certificate
            .assertion("check", "https://check", 0)
            .map_err(|_| "the private key is not an RSA key ferry can sign with".to_string())?;
        Ok(certificate)
    }

    /// A client assertion for `client_id` at `token_url`, issued at `now` (Unix seconds).
    pub fn assertion(&self, client_id: &str, token_url: &str, now: i64) -> ClientResult<String> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.x5t = Some(self.x5t.clone());
        header.x5t_s256 = Some(self.x5t_s256.clone());
        let claims = serde_json::json!({
            "aud": token_url,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + LIFETIME_SECS,
        });
        let der = STANDARD
            .decode(self.key_der.expose())
            .map_err(|e| ClientError::Config(format!("the certificate's private key cannot be read: {e}")))?;
        let key = jsonwebtoken::EncodingKey::from_rsa_der(&der);
        jsonwebtoken::encode(&header, &claims, &key)
            .map_err(|e| ClientError::Config(format!("cannot sign the client assertion: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway self-signed test certificate and its key (never used anywhere else).
    const PEM: &str = include_str!("../tests/data/test-app.pem");
    const PUBLIC: &str = include_str!("../tests/data/test-app.pub.pem");

    #[test]
    fn the_assertion_is_signed_by_the_key_and_names_the_certificate() {
        let cert = Certificate::from_pem(PEM).unwrap();
        assert!(!format!("{cert:?}").contains(cert.key_der.expose()), "Debug never shows the key");
        let url = "https://login.microsoftonline.com/contoso/oauth2/v2.0/token";
        let jwt = cert.assertion("app-1", url, 1_800_000_000).unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
        assert_eq!(header.x5t.as_deref(), Some(cert.x5t.as_str()));
        assert_eq!(cert.x5t.len(), 27, "base64url of 20 bytes");
        assert_eq!(cert.x5t_s256.len(), 43, "base64url of 32 bytes");
        let mut check = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        check.set_audience(&[url]);
        check.set_issuer(&["app-1"]);
        check.validate_exp = false;
        check.validate_nbf = false;
        let (_, public) = pem_block(PUBLIC, &["PUBLIC KEY"]).unwrap();
        let key = jsonwebtoken::DecodingKey::from_rsa_der(&STANDARD.decode(public.as_bytes()).unwrap());
        let claims = jsonwebtoken::decode::<serde_json::Value>(&jwt, &key, &check).unwrap().claims;
        assert_eq!((claims["sub"].as_str(), claims["exp"].as_i64()), (Some("app-1"), Some(1_800_000_600)));
    }

    #[test]
    fn a_pem_without_key_or_certificate_is_refused_clearly() {
        let cert_only = PEM.split("-----BEGIN PRIVATE KEY-----").next().unwrap();
        assert!(Certificate::from_pem(cert_only).unwrap_err().contains("PRIVATE KEY"));
        assert!(Certificate::from_pem("nothing").unwrap_err().contains("CERTIFICATE"));
    }
}
