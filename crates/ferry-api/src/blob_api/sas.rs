//! The signature of a blob URL, shaped like an Azure SAS so that the Azure SDKs keep it: they keep
//! only query parameters with SAS names (`sv`, `sr`, `sp`, `se`, `sig`) and append them to every
//! request. Pure: the key and the time are passed in.
//!
//! `sig` is URL-safe base64 (no padding) of HMAC-SHA256 over
//! `"ferry-blob-url\n{sv}\n{sr}\n{sp}\n{se}\n/{blob key}"`, with `se` exactly as the URL spells
//! it. `sv` is the revision of this scheme (in Azure's date form), `sr=b` (a blob), `sp` `r` or
//! `rw`, `se` the expiry (RFC 3339, whole seconds, UTC).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use ferry_secrets::MacKey;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// `sv`: the revision of the signing scheme. A URL of another revision is refused.
pub(crate) const SIGNED_VERSION: &str = "2025-01-05";
/// `sr`: the signed resource, a blob.
const SIGNED_RESOURCE: &str = "b";
/// What a query value keeps unencoded: RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
/// The longest `sig` looked at (a real one has 43 characters).
const MAX_SIG_LEN: usize = 128;

/// What a blob URL allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobPermissions {
    /// `GET` and `HEAD` (`sp=r`).
    Read,
    /// Also every `PUT`: Put Blob, Put Block, Put Block List (`sp=rw`).
    ReadWrite,
}

impl BlobPermissions {
    pub fn allows_write(self) -> bool {
        self == BlobPermissions::ReadWrite
    }

    fn as_sp(self) -> &'static str {
        match self {
            BlobPermissions::Read => "r",
            BlobPermissions::ReadWrite => "rw",
        }
    }

    fn from_sp(sp: &str) -> Option<BlobPermissions> {
        match sp {
            "r" => Some(BlobPermissions::Read),
            "rw" => Some(BlobPermissions::ReadWrite),
            _ => None,
        }
    }
}

/// Why a URL's signature is refused. Messages never show the signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Denial {
    /// A signature parameter is missing or given twice.
    Missing(&'static str),
    /// A parameter is not one ferry writes (e.g. another `sv`, an `sp` other than `r`/`rw`).
    Malformed(&'static str),
    /// The signature does not match the key, permissions and expiry: tampered with, or made with
    /// another master key.
    BadSignature,
    /// The URL expired at this time.
    Expired(DateTime<Utc>),
}

impl Denial {
    pub(crate) fn message(&self) -> String {
        match self {
            Denial::Missing(name) => {
                format!("the URL has no single '{name}' parameter; use a blob URL exactly as ferry handed it out")
            }
            Denial::Malformed(name) => format!("the URL's '{name}' parameter is not one ferry writes"),
            Denial::BadSignature => {
                "the signature does not match the URL (changed, or signed with another master key)".to_owned()
            }
            Denial::Expired(at) => format!(
                "signed expiry time [{}] must be after the current time: the URL has expired; ask for a new one",
                at.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
        }
    }
}

/// The query string (`sv=…&sr=b&sp=…&se=…&sig=…`) of a URL for blob `key`.
pub(crate) fn signed_query(mac: &MacKey, key: &str, permissions: BlobPermissions, expires_at: DateTime<Utc>) -> String {
    let sp = permissions.as_sp();
    let se = expires_at.to_rfc3339_opts(SecondsFormat::Secs, true);
    let signed = string_to_sign(SIGNED_VERSION, SIGNED_RESOURCE, sp, &se, key);
    let sig = URL_SAFE_NO_PAD.encode(mac.sign(signed.as_bytes()));
    let se = utf8_percent_encode(&se, QUERY_VALUE);
    format!("sv={SIGNED_VERSION}&sr={SIGNED_RESOURCE}&sp={sp}&se={se}&sig={sig}")
}

/// Checks the signature parameters among `query` (decoded; other parameters are ignored) for
/// blob `key` at time `now`; answers what the URL allows.
pub(crate) fn verify(
    mac: &MacKey,
    key: &str,
    query: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<BlobPermissions, Denial> {
    let param = |name: &'static str| {
        let mut values = query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        match (values.next(), values.next()) {
            (Some(value), None) => Ok(value),
            _ => Err(Denial::Missing(name)),
        }
    };
    let (sv, sr, sp, se, sig) = (param("sv")?, param("sr")?, param("sp")?, param("se")?, param("sig")?);
    if sv != SIGNED_VERSION {
        return Err(Denial::Malformed("sv"));
    }
    if sr != SIGNED_RESOURCE {
        return Err(Denial::Malformed("sr"));
    }
    let permissions = BlobPermissions::from_sp(sp).ok_or(Denial::Malformed("sp"))?;
    let expires_at = DateTime::parse_from_rfc3339(se).map_err(|_| Denial::Malformed("se"))?.with_timezone(&Utc);
    if sig.len() > MAX_SIG_LEN {
        return Err(Denial::BadSignature);
    }
    let tag = URL_SAFE_NO_PAD.decode(sig).map_err(|_| Denial::BadSignature)?;
    if !mac.verify(string_to_sign(sv, sr, sp, se, key).as_bytes(), &tag) {
        return Err(Denial::BadSignature);
    }
    if now >= expires_at {
        return Err(Denial::Expired(expires_at));
    }
    Ok(permissions)
}

fn string_to_sign(sv: &str, sr: &str, sp: &str, se: &str, key: &str) -> String {
    format!("ferry-blob-url\n{sv}\n{sr}\n{sp}\n{se}\n/{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(query: &str) -> Vec<(String, String)> {
        let uri: axum::http::Uri = format!("/?{query}").parse().unwrap();
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri).unwrap().0
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_signed_query_verifies_until_it_expires() {
        let mac = MacKey::new(&[1; 32]);
        let query = signed_query(&mac, "dmf/a/b.zip", BlobPermissions::ReadWrite, at("2026-01-01T01:00:00.9Z"));
        assert!(query.starts_with("sv=2025-01-05&sr=b&sp=rw&se=2026-01-01T01%3A00%3A00Z&sig="), "{query}");
        let sig = query.rsplit_once("sig=").unwrap().1;
        assert_eq!(sig.len(), 43);
        assert!(sig.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "URL-safe: {sig}");

        let params = decoded(&query);
        let verify_at = |now| verify(&mac, "dmf/a/b.zip", &params, at(now));
        assert_eq!(verify_at("2026-01-01T00:59:59Z"), Ok(BlobPermissions::ReadWrite));
        assert_eq!(verify_at("2026-01-01T01:00:00Z"), Err(Denial::Expired(at("2026-01-01T01:00:00Z"))));

        let read = decoded(&signed_query(&mac, "k/x", BlobPermissions::Read, at("2030-01-01T00:00:00Z")));
        assert_eq!(verify(&mac, "k/x", &read, at("2026-01-01T00:00:00Z")), Ok(BlobPermissions::Read));
        assert!(!BlobPermissions::Read.allows_write());
    }

    #[test]
    fn anything_changed_is_refused() {
        let mac = MacKey::new(&[1; 32]);
        let now = at("2026-01-01T00:00:00Z");
        let query = signed_query(&mac, "dmf/a/b", BlobPermissions::Read, at("2026-01-02T00:00:00Z"));
        let params = decoded(&query);
        let with = |name: &str, value: &str| -> Vec<(String, String)> {
            params.iter().map(|(k, v)| (k.clone(), if k == name { value.to_owned() } else { v.clone() })).collect()
        };
        assert_eq!(verify(&mac, "dmf/a/c", &params, now), Err(Denial::BadSignature), "another blob");
        assert_eq!(verify(&MacKey::new(&[2; 32]), "dmf/a/b", &params, now), Err(Denial::BadSignature), "another key");
        assert_eq!(verify(&mac, "dmf/a/b", &with("sp", "rw"), now), Err(Denial::BadSignature), "more rights");
        let later = with("se", "2027-01-02T00:00:00Z");
        assert_eq!(verify(&mac, "dmf/a/b", &later, now), Err(Denial::BadSignature), "a later expiry");
        let sig = &params.iter().find(|(k, _)| k == "sig").unwrap().1;
        let flipped = format!("{}{}", if sig.starts_with('A') { "B" } else { "A" }, &sig[1..]);
        assert_eq!(verify(&mac, "dmf/a/b", &with("sig", &flipped), now), Err(Denial::BadSignature));
        for bad_sig in ["", "not base64!", &"A".repeat(4000)] {
            assert_eq!(verify(&mac, "dmf/a/b", &with("sig", bad_sig), now), Err(Denial::BadSignature), "{bad_sig}");
        }
        assert_eq!(verify(&mac, "dmf/a/b", &with("sv", "2020-01-01"), now), Err(Denial::Malformed("sv")));
        assert_eq!(verify(&mac, "dmf/a/b", &with("sr", "c"), now), Err(Denial::Malformed("sr")));
        assert_eq!(verify(&mac, "dmf/a/b", &with("sp", "rwd"), now), Err(Denial::Malformed("sp")));
        assert_eq!(verify(&mac, "dmf/a/b", &with("se", "tomorrow"), now), Err(Denial::Malformed("se")));

        let without: Vec<_> = params.iter().filter(|(k, _)| k != "sig").cloned().collect();
        assert_eq!(verify(&mac, "dmf/a/b", &without, now), Err(Denial::Missing("sig")));
        let mut twice = params.clone();
        twice.push(("sp".into(), "rw".into()));
        assert_eq!(verify(&mac, "dmf/a/b", &twice, now), Err(Denial::Missing("sp")));
        assert_eq!(verify(&mac, "dmf/a/b", &[], now), Err(Denial::Missing("sv")));

        // Other parameters (the SDKs' comp, blockid, timeout) are not signed and do not matter.
        let mut more = params.clone();
        more.extend([("comp".into(), "block".into()), ("timeout".into(), "30".into())]);
        assert_eq!(verify(&mac, "dmf/a/b", &more, now), Ok(BlobPermissions::Read));
        assert!(!Denial::BadSignature.message().contains(sig.as_str()));
    }
}
