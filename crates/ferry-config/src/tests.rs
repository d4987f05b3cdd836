//! Tests for [`load`]: defaults, a full file, layering of file < environment
//! < flags, secrets and redaction. Error-message shapes live in `tests/errors.rs`.

mod errors;
mod imports;
mod profiles;
mod throttle;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::{AppSecret, Config, ConfigError, LogFormat, Overrides, SecretRef, load};

/// A config file with `text` (kept alive by the returned handle).
pub(crate) fn file(text: &str) -> NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().expect("temp file");
    file.write_all(text.as_bytes()).expect("write config");
    file
}

pub(crate) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

pub(crate) fn load_text(text: &str, env_pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let f = file(text);
    load(Some(f.path()), &env(env_pairs), &Overrides::default())
}

const FULL: &str = r#"
listen = "0.0.0.0:9090"
data_dir = "/var/lib/ferry"
database = "postgres://ferry:hunter2@db.internal:5432/ferry"
public_url = "https://ferry.example.com/"
entities_dir = "./entities"
master_key = "env:FERRY_MASTER_KEY"

[log]
format = "json"
level = "info,ferry_api=debug"

[auth]
tenant_id = "contoso"
audiences = ["api://ferry"]
token_lifetime_secs = 1800
clock_skew_secs = 30

[[auth.trusted_issuers]]
issuer = "https://login.microsoftonline.com/tid/v2.0"
jwks_url = "https://login.microsoftonline.com/tid/discovery/v2.0/keys"
audience = "https://ferry.example.com"

[[auth.trusted_issuers]]
issuer = "https://issuer.test"
jwks_url = "http://issuer.test/keys"

[odata]
max_page_size = 5000
default_company = "USMF"

[[apps]]
client_id = "erp-connector"
name = "ERP connector"
secret = "env:ERP_SECRET"
roles = ["reader", "writer", "reader"]
default_company = "USMF"

[[apps]]
client_id = "reporting"
secret = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
enabled = false
"#;

#[test]
fn no_file_gives_defaults() {
    let config = load(None, &[], &Overrides::default()).unwrap();
    assert_eq!(config.listen, "127.0.0.1:8080".parse::<SocketAddr>().unwrap());
    assert_eq!(config.data_dir, PathBuf::from("./ferry-data"));
    assert_eq!(config.database, "sqlite://./ferry-data/ferry.db");
    assert!(config.database_is_sqlite());
    assert_eq!(config.public_url, "http://127.0.0.1:8080");
    assert_eq!(config.entities_dir, None);
    assert_eq!(config.master_key, None);
    assert_eq!(config.log.format, LogFormat::Text);
    assert_eq!(config.log.level, "info");
    assert_eq!(config.auth.tenant_id, "ferry");
    assert!(config.auth.audiences.is_empty());
    assert_eq!((config.auth.token_lifetime_secs, config.auth.clock_skew_secs), (3600, 60));
    assert!(config.auth.trusted_issuers.is_empty());
    assert_eq!((config.odata.max_page_size, config.odata.default_company.as_str()), (10_000, "dat"));
    assert!(config.apps.is_empty());
    assert!(config.profiles.is_empty());
}

#[test]
fn empty_file_equals_no_file() {
    let from_file = load_text("# nothing here\n", &[]).unwrap();
    assert_eq!(from_file, load(None, &[], &Overrides::default()).unwrap());
}

#[test]
fn full_file() {
    let config = load_text(FULL, &[("ERP_SECRET", "s3cret-value")]).unwrap();
    assert_eq!(config.listen.to_string(), "0.0.0.0:9090");
    assert_eq!(config.data_dir, Path::new("/var/lib/ferry"));
    assert_eq!(config.database, "postgres://ferry:hunter2@db.internal:5432/ferry");
    assert!(!config.database_is_sqlite());
    assert_eq!(config.public_url, "https://ferry.example.com");
    assert_eq!(config.entities_dir.as_deref(), Some(Path::new("./entities")));
    assert_eq!(config.master_key, Some(SecretRef::Env("FERRY_MASTER_KEY".into())));
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.log.level, "info,ferry_api=debug");
    assert_eq!(config.auth.tenant_id, "contoso");
    assert_eq!(config.auth.audiences, ["api://ferry"]);
    assert_eq!((config.auth.token_lifetime_secs, config.auth.clock_skew_secs), (1800, 30));
    let issuers = &config.auth.trusted_issuers;
    assert_eq!(issuers.len(), 2);
    assert_eq!(issuers[0].jwks_url, "https://login.microsoftonline.com/tid/discovery/v2.0/keys");
    assert_eq!(issuers[0].audience, "https://ferry.example.com");
    assert_eq!(issuers[1].audience, config.public_url, "audience defaults to public_url");
    assert_eq!((config.odata.max_page_size, config.odata.default_company.as_str()), (5000, "usmf"));

    let [erp, reporting] = &config.apps[..] else { panic!("two apps: {:?}", config.apps) };
    assert_eq!(erp.client_id, "erp-connector");
    assert_eq!(erp.name, "ERP connector");
    assert_eq!(erp.secret, AppSecret::Plain("s3cret-value".into()));
    assert_eq!(erp.roles, ["reader", "writer"], "duplicates dropped, order kept");
    assert_eq!(erp.default_company.as_deref(), Some("usmf"));
    assert!(erp.enabled);
    assert_eq!(reporting.name, "reporting", "name defaults to client_id");
    assert!(matches!(&reporting.secret, AppSecret::Hash(h) if h.starts_with("$argon2id$")));
    assert_eq!(reporting.roles, ["writer"]);
    assert_eq!(reporting.default_company, None);
    assert!(!reporting.enabled);
}

#[test]
fn env_overrides_file() {
    let config = load_text(
        FULL,
        &[
            ("ERP_SECRET", "x"),
            ("FERRY_LISTEN", "127.0.0.1:9"),
            ("FERRY_LOG__FORMAT", "text"),
            ("FERRY_AUTH__TOKEN_LIFETIME_SECS", "120"),
            ("FERRY_AUTH__TENANT_ID", "12345"),
            ("FERRY_AUTH__AUDIENCES", "https://a.test, https://b.test"),
            ("FERRY_ODATA__MAX_PAGE_SIZE", " 42 "),
            ("FERRY_DATABASE", ""),
            ("FERRY_TEST_ANYTHING", "ignored"),
            ("PATH", "/usr/bin"),
        ],
    )
    .unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:9");
    assert_eq!(config.log.format, LogFormat::Text);
    assert_eq!(config.log.level, "info,ferry_api=debug", "untouched keys keep file values");
    assert_eq!(config.auth.token_lifetime_secs, 120);
    assert_eq!(config.auth.tenant_id, "12345", "numeric-looking text stays a string for string keys");
    assert_eq!(config.auth.audiences, ["https://a.test", "https://b.test"]);
    assert_eq!(config.odata.max_page_size, 42);
    assert_eq!(config.database, "sqlite:///var/lib/ferry/ferry.db", "empty env value means default");
}

#[test]
fn env_creates_sections_and_accepts_toml_lists() {
    let pairs = [
        ("FERRY_AUTH__AUDIENCES", r#"["api://one", "api://two"]"#),
        ("FERRY_LOG__LEVEL", "debug"),
        ("FERRY_DATA_DIR", "/srv/ferry"),
    ];
    let config = load(None, &env(&pairs), &Overrides::default()).unwrap();
    assert_eq!(config.auth.audiences, ["api://one", "api://two"]);
    assert_eq!(config.log.level, "debug");
    assert_eq!(config.database, "sqlite:///srv/ferry/ferry.db");
}

#[test]
fn flags_override_env() {
    let overrides = Overrides {
        listen: Some("[::1]:7000".into()),
        data_dir: Some("/flag/data".into()),
        public_url: Some("https://flag.example.com/ferry/".into()),
        entities_dir: Some("/flag/entities".into()),
        log_format: Some("json".into()),
        log_level: Some("warn".into()),
        database: None,
    };
    let pairs = [
        ("FERRY_LISTEN", "127.0.0.1:9"),
        ("FERRY_DATA_DIR", "/env/data"),
        ("FERRY_PUBLIC_URL", "https://env.example.com"),
        ("FERRY_LOG__FORMAT", "text"),
        ("FERRY_LOG__LEVEL", "trace"),
        ("FERRY_DATABASE", "postgresql://env-db/ferry"),
    ];
    let config = load(None, &env(&pairs), &overrides).unwrap();
    assert_eq!(config.listen.to_string(), "[::1]:7000");
    assert_eq!(config.data_dir, Path::new("/flag/data"));
    assert_eq!(config.public_url, "https://flag.example.com/ferry");
    assert_eq!(config.entities_dir.as_deref(), Some(Path::new("/flag/entities")));
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.log.level, "warn");
    assert_eq!(config.database, "postgresql://env-db/ferry", "env still beats the default");
}

#[test]
fn flag_database_beats_env_and_file() {
    let f = file("database = \"postgres://file/db\"\n");
    let overrides = Overrides { database: Some("sqlite:///tmp/x.db".into()), ..Overrides::default() };
    let config = load(Some(f.path()), &env(&[("FERRY_DATABASE", "postgres://env/db")]), &overrides).unwrap();
    assert_eq!(config.database, "sqlite:///tmp/x.db");
    assert!(config.database_is_sqlite());
}

#[test]
fn database_default_follows_data_dir() {
    let config = load_text("data_dir = \"/data/ferry\"\n", &[]).unwrap();
    assert_eq!(config.database, "sqlite:///data/ferry/ferry.db");
    let config = load_text("data_dir = \"rel\"\ndatabase = \"postgres://h/db\"\n", &[]).unwrap();
    assert_eq!(config.database, "postgres://h/db", "an explicit database wins");
}

#[test]
fn public_url_default_and_trailing_slash() {
    let config = load_text("listen = \"0.0.0.0:8181\"\n", &[]).unwrap();
    assert_eq!(config.public_url, "http://0.0.0.0:8181");
    let config = load_text("public_url = \"https://ferry.example.com///\"\n", &[]).unwrap();
    assert_eq!(config.public_url, "https://ferry.example.com");
}

#[test]
fn master_key_forms() {
    let config = load_text("master_key = \"file:/run/secrets/ferry\"\n", &[]).unwrap();
    assert_eq!(config.master_key, Some(SecretRef::File("/run/secrets/ferry".into())));
    let config = load(None, &env(&[("FERRY_MASTER_KEY", "inline-master-key")]), &Overrides::default()).unwrap();
    assert_eq!(config.master_key, Some(SecretRef::Inline("inline-master-key".into())));
    assert!(!format!("{config:?}").contains("inline-master-key"));
}

#[test]
fn referenced_ferry_variables_are_secrets_not_settings() {
    let text = "master_key = \"env:FERRY_MASTER_KEY\"\n[[apps]]\nclient_id = \"a\"\nsecret = \"env:FERRY_APP_A\"\n";
    let config = load_text(text, &[("FERRY_MASTER_KEY", "mk"), ("FERRY_APP_A", "app-secret")]).unwrap();
    assert_eq!(config.master_key, Some(SecretRef::Env("FERRY_MASTER_KEY".into())));
    assert_eq!(config.apps[0].secret, AppSecret::Plain("app-secret".into()));
}

#[test]
fn env_secret_resolution() {
    let text = "[[apps]]\nclient_id = \"a\"\nsecret = \"env:MY_APP_SECRET\"\n";
    let config = load_text(text, &[("MY_APP_SECRET", "first"), ("MY_APP_SECRET", "last")]).unwrap();
    assert_eq!(config.apps[0].secret, AppSecret::Plain("last".into()), "the last entry wins, like a shell");
}

#[test]
fn secrets_never_debug_printed() {
    let config = load_text(FULL, &[("ERP_SECRET", "s3cret-value")]).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("s3cret-value"), "{debug}");
    assert!(!debug.contains("hunter2"), "database password leaked: {debug}");
    assert!(!debug.contains("aGFzaGhhc2hoYXNo"), "{debug}");
    assert!(debug.contains("<redacted>"));
}

#[test]
fn summary_redacts_database_password() {
    let config = load_text(FULL, &[("ERP_SECRET", "s3cret-value")]).unwrap();
    let summary = config.redacted_summary();
    assert!(summary.contains("listen: 0.0.0.0:9090"), "{summary}");
    assert!(summary.contains("data_dir: /var/lib/ferry"), "{summary}");
    assert!(summary.contains("database: postgres://ferry:***@db.internal:5432/ferry"), "{summary}");
    assert!(summary.contains("public_url: https://ferry.example.com"), "{summary}");
    assert!(summary.contains("apps: 2 (1 enabled)"), "{summary}");
    assert!(!summary.contains("hunter2") && !summary.contains("s3cret-value"), "{summary}");
}
