//! Secrets in the configuration: [`SecretRef`] (a pointer to a secret, e.g. the
//! master key) and [`AppSecret`] (a client app's credential). Neither prints
//! secret material through `Debug`.

use std::fmt;
use std::path::PathBuf;

/// A reference to a secret, resolved by whoever needs the value.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `env:VAR` — read environment variable `VAR`.
    Env(String),
    /// `file:/path` — read the file.
    File(PathBuf),
    /// Anything else — the secret itself.
    Inline(String),
}

impl SecretRef {
    /// Parse `env:VAR`, `file:/path` or an inline secret. The error message
    /// never contains the secret.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(var) = text.strip_prefix("env:") {
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("'env:{var}' does not name an environment variable"));
            }
            Ok(Self::Env(var.to_owned()))
        } else if let Some(path) = text.strip_prefix("file:") {
            if path.trim().is_empty() {
                return Err("'file:' needs a path".to_owned());
            }
            Ok(Self::File(PathBuf::from(path)))
        } else if text.is_empty() {
            Err("must not be empty".to_owned())
        } else {
            Ok(Self::Inline(text.to_owned()))
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(var) => f.debug_tuple("Env").field(var).finish(),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Inline(_) => f.write_str("Inline(<redacted>)"),
        }
    }
}

/// A client app's secret.
#[derive(Clone, PartialEq, Eq)]
pub enum AppSecret {
    /// A plain secret read from an environment variable at load time.
    Plain(String),
    /// An argon2 PHC hash given in the file (`$argon2id$...`).
    Hash(String),
}

impl AppSecret {
    /// Parse an app's `secret` setting: `env:VAR` (looked up in `env`; it must
    /// be set) or an argon2 PHC hash. The error message never contains the secret.
    pub(crate) fn parse(text: &str, env: &[(String, String)]) -> Result<Self, String> {
        if text.starts_with("$argon2") {
            return Ok(Self::Hash(text.to_owned()));
        }
        let Some(var) = text.strip_prefix("env:") else {
            return Err("must be \"env:VAR\" or an argon2 hash (\"$argon2id$...\"); \
                        plain secrets are not accepted in the config"
                .to_owned());
        };
        if var.is_empty() {
            return Err("'env:' needs a variable name".to_owned());
        }
        match env.iter().rev().find(|(name, _)| name == var) {
            None => Err(format!("environment variable {var} is not set")),
            Some((_, value)) if value.is_empty() => Err(format!("environment variable {var} is empty")),
            Some((_, value)) => Ok(Self::Plain(value.clone())),
        }
    }
}

impl fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(_) => f.write_str("Plain(<redacted>)"),
            Self::Hash(_) => f.write_str("Hash(<redacted>)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_refs_parse_and_redact() {
        assert_eq!(SecretRef::parse("env:FERRY_MASTER_KEY"), Ok(SecretRef::Env("FERRY_MASTER_KEY".into())));
        assert_eq!(SecretRef::parse("file:/run/key"), Ok(SecretRef::File("/run/key".into())));
        assert_eq!(SecretRef::parse("hunter2"), Ok(SecretRef::Inline("hunter2".into())));
        assert!(SecretRef::parse("env:").is_err());
        assert!(SecretRef::parse("env:A B").is_err());
        assert!(SecretRef::parse("").is_err());
        assert_eq!(format!("{:?}", SecretRef::Inline("hunter2".into())), "Inline(<redacted>)");
        assert_eq!(format!("{:?}", SecretRef::Env("K".into())), "Env(\"K\")");
    }

    #[test]
    fn app_secrets_parse_and_redact() {
        let env = vec![("S".to_owned(), "s3cret".to_owned()), ("E".to_owned(), String::new())];
        assert_eq!(AppSecret::parse("env:S", &env), Ok(AppSecret::Plain("s3cret".into())));
        assert_eq!(AppSecret::parse("$argon2id$v=19$x", &env), Ok(AppSecret::Hash("$argon2id$v=19$x".into())));
        assert_eq!(AppSecret::parse("env:MISSING", &env), Err("environment variable MISSING is not set".into()));
        assert!(AppSecret::parse("env:E", &env).unwrap_err().contains("is empty"));
        let plain = AppSecret::parse("hunter2", &env).unwrap_err();
        assert!(!plain.contains("hunter2"), "{plain}");
        assert_eq!(format!("{:?}", AppSecret::Plain("s3cret".into())), "Plain(<redacted>)");
    }
}
