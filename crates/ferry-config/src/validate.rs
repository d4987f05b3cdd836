//! Validation rules shared by the config sections, and the [`Validate`] trait
//! each section implements. Rules return a [`Problem`] at the key path they
//! were given; the loader adds which layer supplied the value.

use std::ops::RangeInclusive;

use crate::error::{KeyPath, Problem};

/// A config section that checks (and normalizes) itself after deserialization.
pub(crate) trait Validate {
    fn validate(&mut self, at: &KeyPath) -> Result<(), Problem>;
}

/// `value` must lie in `range`.
pub(crate) fn in_range<T>(value: T, range: RangeInclusive<T>, at: &KeyPath) -> Result<(), Problem>
where
    T: PartialOrd + std::fmt::Display,
{
    if range.contains(&value) {
        Ok(())
    } else {
        Err(Problem::new(at, format!("{value} is outside {}..={}", range.start(), range.end())))
    }
}

/// `value` must not be empty or blank.
pub(crate) fn not_blank(value: &str, at: &KeyPath) -> Result<(), Problem> {
    if value.trim().is_empty() { Err(Problem::new(at, "must not be empty")) } else { Ok(()) }
}

/// An identifier of 1..=`max` characters from `[A-Za-z0-9._-]` (client ids,
/// tenant ids).
pub(crate) fn identifier(value: &str, max: usize, at: &KeyPath) -> Result<(), Problem> {
    let len = value.chars().count();
    if !(1..=max).contains(&len) {
        return Err(Problem::new(at, format!("must be 1 to {max} characters long, got {len}")));
    }
    match value.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        Some(c) => Err(Problem::new(
            at,
            format!("'{value}' contains {c:?}; only letters, digits, '.', '_' and '-' are allowed"),
        )),
        None => Ok(()),
    }
}

/// A company (data area) id: 1..=32 characters from `[A-Za-z0-9_-]`,
/// returned lower-cased.
pub(crate) fn company(value: &str, at: &KeyPath) -> Result<String, Problem> {
    let valid =
        (1..=32).contains(&value.len()) && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if valid {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(Problem::new(at, format!("'{value}' is not a company id (1 to 32 letters, digits, '_' or '-')")))
    }
}

/// An absolute `http(s)` URL without query or fragment, returned with the
/// scheme lower-cased and trailing slashes removed.
pub(crate) fn http_url(value: &str, at: &KeyPath) -> Result<String, Problem> {
    let bad = |why: &str| Problem::new(at, format!("'{value}' is not a valid URL: {why}"));
    let (scheme, rest) = value.split_once("://").ok_or_else(|| bad("expected http://… or https://…"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(bad("the scheme must be http or https"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains whitespace"));
    }
    if value.contains('?') || value.contains('#') {
        return Err(bad("it must not have a query or fragment"));
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') || host.contains('@') {
        return Err(bad("it needs a host name"));
    }
    Ok(format!("{scheme}://{}", rest.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_url_normalizes_and_rejects() {
        let at = KeyPath::root().key("public_url");
        assert_eq!(http_url("HTTPS://ferry.example.com/", &at).unwrap(), "https://ferry.example.com");
        assert_eq!(http_url("http://h:8080/base//", &at).unwrap(), "http://h:8080/base");
        for bad in ["ferry.example.com", "ftp://x", "https://", "https://x/?a=1", "https://x#f", "https://a b"] {
            assert!(http_url(bad, &at).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn identifiers_and_companies() {
        let at = KeyPath::root().key("k");
        assert!(identifier("my-app.v2_x", 100, &at).is_ok());
        assert!(identifier("", 100, &at).is_err());
        assert!(identifier("a b", 100, &at).is_err());
        assert!(identifier(&"x".repeat(101), 100, &at).is_err());
        assert_eq!(company("USMF", &at).unwrap(), "usmf");
        assert!(company("us mf", &at).is_err());
        assert!(company("'", &at).is_err());
    }

    #[test]
    fn ranges() {
        let at = KeyPath::root().key("auth").key("token_lifetime_secs");
        assert!(in_range(60u64, 60..=86400, &at).is_ok());
        let err = in_range(5u64, 60..=86400, &at).unwrap_err();
        assert_eq!(err.to_string(), "auth.token_lifetime_secs: 5 is outside 60..=86400");
    }
}
