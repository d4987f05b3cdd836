//! Error-message shapes: every error names the key and, for environment and
//! flag values, the variable or flag that supplied it.

use std::path::Path;

use super::{env, file, load_text};
use crate::{ConfigError, Layer, Overrides, load};

fn err_text(text: &str, env_pairs: &[(&str, &str)]) -> String {
    load_text(text, env_pairs).expect_err("config should be rejected").to_string()
}

fn env_err(pairs: &[(&str, &str)]) -> String {
    load(None, &env(pairs), &Overrides::default()).expect_err("env should be rejected").to_string()
}

fn assert_contains(haystack: &str, needle: &str) {
    assert!(haystack.contains(needle), "expected {needle:?} in:\n{haystack}");
}

#[test]
fn missing_file() {
    let err = load(Some(Path::new("x.toml")), &[], &Overrides::default()).unwrap_err();
    assert!(matches!(err, ConfigError::ReadFile { .. }));
    assert_contains(&err.to_string(), "could not read config file x.toml: No such file or directory");
}

#[test]
fn toml_syntax_error_has_line_and_column() {
    let f = file("listen = \"127.0.0.1:8080\"\n[log\nformat = \"text\"\n");
    let err = load(Some(f.path()), &[], &Overrides::default()).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }));
    let text = err.to_string();
    assert_contains(&text, &format!("config file {}:", f.path().display()));
    assert_contains(&text, "line 2");
    assert_contains(&text, "column");
}

#[test]
fn unknown_top_level_key() {
    let f = file("lisen = \"127.0.0.1:8080\"\n");
    let err = load(Some(f.path()), &[], &Overrides::default()).unwrap_err();
    assert_eq!(err.key(), Some("lisen"));
    let text = err.to_string();
    assert_contains(
        &text,
        &format!(
            "config file {}: unknown key `lisen` (expected one of: listen, data_dir, database, public_url, \
             entities_dir, master_key, log, auth, odata, apps, profiles, import, export, retention, blobs, projects, jobs, throttle)",
            f.path().display()
        ),
    );
    assert_contains(&text, "at line 1, column");
}

#[test]
fn unknown_nested_keys() {
    let text = err_text("[auth]\ntenant = \"x\"\n", &[]);
    assert_contains(&text, "unknown key `auth.tenant` (expected one of: tenant_id, audiences,");
    assert_contains(&text, "at line 2");
    let text = err_text("[[apps]]\nclient_id = \"a\"\nsecret = \"$argon2id$x\"\nrole = [\"reader\"]\n", &[]);
    assert_contains(&text, "unknown key `apps[0].role` (expected one of: client_id, name, secret, roles,");
    let text =
        err_text("[[auth.trusted_issuers]]\nissuer = \"https://i\"\njwks_url = \"https://i/k\"\naud = \"x\"\n", &[]);
    assert_contains(&text, "unknown key `auth.trusted_issuers[0].aud`");
}

#[test]
fn unknown_role() {
    let text = "[[apps]]\nclient_id = \"a\"\nsecret = \"$argon2id$x\"\n\
                [[apps]]\nclient_id = \"b\"\nsecret = \"$argon2id$y\"\nroles = [\"raeder\"]\n";
    let err = err_text(text, &[]);
    assert_contains(&err, "apps[1].roles[0]: unknown role 'raeder' (known: reader, writer, admin)");
    assert_contains(&err, "at line 7");
}

#[test]
fn app_rules() {
    let app = |body: &str| format!("[[apps]]\nsecret = \"$argon2id$x\"\n{body}\n");
    assert_contains(&err_text(&app("client_id = \"a b\""), &[]), "apps[0].client_id: 'a b' contains ' '");
    assert_contains(
        &err_text(&app("client_id = \"a\"\nroles = []"), &[]),
        "apps[0].roles: must name at least one role",
    );
    assert_contains(&err_text(&app("name = \"n\""), &[]), "apps[0]: missing required key `client_id`");
    assert_contains(
        &err_text(&format!("{}{}", app("client_id = \"a\""), app("client_id = \"a\"")), &[]),
        "apps[1].client_id: duplicate client_id 'a' (also declared by apps[0])",
    );
    let plain = err_text("[[apps]]\nclient_id = \"a\"\nsecret = \"hunter2\"\n", &[]);
    assert_contains(&plain, "apps[0].secret: must be \"env:VAR\" or an argon2 hash");
    assert!(!plain.contains("hunter2"), "secret echoed: {plain}");
}

#[test]
fn unset_secret_variable() {
    let text = "[[apps]]\nclient_id = \"a\"\nsecret = \"env:MY_APP_SECRET\"\n";
    assert_contains(&err_text(text, &[]), "apps[0].secret: environment variable MY_APP_SECRET is not set");
}

#[test]
fn env_value_not_a_number() {
    let err = env_err(&[("FERRY_AUTH__TOKEN_LIFETIME_SECS", "abc")]);
    assert_eq!(err, "FERRY_AUTH__TOKEN_LIFETIME_SECS: 'abc' is not a whole number");
}

#[test]
fn out_of_range_values() {
    let err = err_text("[auth]\ntoken_lifetime_secs = 5\n", &[]);
    assert_contains(&err, "auth.token_lifetime_secs: 5 is outside 60..=86400");
    assert_contains(&err, "at line 2");
    assert_contains(&err_text("[auth]\nclock_skew_secs = 601\n", &[]), "auth.clock_skew_secs: 601 is outside 0..=600");
    assert_contains(&err_text("[odata]\nmax_page_size = 0\n", &[]), "odata.max_page_size: 0 is outside 1..=50000");
    assert_contains(&err_text("[auth]\nclock_skew_secs = -1\n", &[]), "auth.clock_skew_secs: -1 is negative");
    assert_contains(
        &err_text("[odata]\nmax_page_size = 99999999999\n", &[]),
        "odata.max_page_size: 99999999999 is too large",
    );
    assert_eq!(
        env_err(&[("FERRY_AUTH__TOKEN_LIFETIME_SECS", "5")]),
        "FERRY_AUTH__TOKEN_LIFETIME_SECS: 5 is outside 60..=86400"
    );
}

#[test]
fn wrong_types_in_file() {
    assert_contains(&err_text("listen = 8080\n", &[]), "listen: expected a string, found integer 8080");
    assert_contains(
        &err_text("[auth]\ntoken_lifetime_secs = \"abc\"\n", &[]),
        "auth.token_lifetime_secs: expected a whole number, found string 'abc'",
    );
    assert_contains(&err_text("auth = 3\n", &[]), "auth: expected a table, found integer 3");
    assert_contains(
        &err_text("[log]\nformat = \"xml\"\n", &[]),
        "log.format: unknown value 'xml' (expected one of: text, json)",
    );
    assert_contains(&err_text("[log]\nformat = 1\n", &[]), "log.format: expected text or json, found integer 1");
    assert_contains(
        &err_text("[[apps]]\nclient_id = \"a\"\nsecret = \"$argon2\"\nenabled = \"yes\"\n", &[]),
        "apps[0].enabled: expected a boolean",
    );
}

#[test]
fn bad_addresses_name_their_layer() {
    assert_eq!(env_err(&[("FERRY_LISTEN", "abc")]), "FERRY_LISTEN: 'abc' is not an address like 127.0.0.1:8080");
    let overrides = Overrides { listen: Some("abc".into()), ..Overrides::default() };
    let err = load(None, &env(&[("FERRY_LISTEN", "127.0.0.1:1")]), &overrides).unwrap_err();
    assert_eq!(err.to_string(), "--listen: 'abc' is not an address like 127.0.0.1:8080");
    assert!(matches!(err, ConfigError::Invalid { layer: Layer::Flag(ref f), .. } if f == "--listen"));
    assert_contains(
        &err_text("listen = \"localhost\"\n", &[]),
        "listen: 'localhost' is not an address like 127.0.0.1:8080",
    );
}

#[test]
fn unknown_env_variables_are_errors() {
    let err = env_err(&[("FERRY_LISTN", "127.0.0.1:1")]);
    assert_contains(&err, "FERRY_LISTN: unknown key `listn` (expected one of: listen,");
    let err = env_err(&[("FERRY_LOG_FORMAT", "json")]);
    assert_contains(&err, "FERRY_LOG_FORMAT: unknown key `log_format`");
    assert_contains(&err, "e.g. FERRY_LOG__FORMAT");
    assert_contains(&env_err(&[("FERRY_AUTH__TENANT", "x")]), "FERRY_AUTH__TENANT: unknown key `auth.tenant`");
    assert_contains(&env_err(&[("FERRY_", "x")]), "FERRY_: not a valid setting name");
    assert_eq!(env_err(&[("FERRY_LISTEN__PORT", "1")]), "FERRY_LISTEN__PORT: listen: expected a string, found a table");
    assert_contains(
        &err_text("listen = \"127.0.0.1:1\"\n", &[("FERRY_LISTEN__PORT", "1")]),
        "FERRY_LISTEN__PORT: cannot set `listen.port` because `listen` is not a table",
    );
}

#[test]
fn bad_env_and_flag_values() {
    assert_eq!(
        env_err(&[("FERRY_LOG__FORMAT", "xml")]),
        "FERRY_LOG__FORMAT: unknown value 'xml' (expected one of: text, json)"
    );
    assert_contains(&env_err(&[("FERRY_AUTH__AUDIENCES", "[1,")]), "FERRY_AUTH__AUDIENCES: not a valid TOML list");
    assert_eq!(
        env_err(&[("FERRY_AUTH__AUDIENCES", "[\"ok\", 3]")]),
        "FERRY_AUTH__AUDIENCES: auth.audiences[1]: expected a string, found integer 3"
    );
    let overrides = Overrides { public_url: Some("ferry.example.com".into()), ..Overrides::default() };
    let err = load(None, &[], &overrides).unwrap_err().to_string();
    assert_contains(&err, "--public-url: 'ferry.example.com' is not a valid URL");
    let overrides = Overrides { log_format: Some("yaml".into()), ..Overrides::default() };
    let err = load(None, &[], &overrides).unwrap_err().to_string();
    assert_eq!(err, "--log-format: unknown value 'yaml' (expected one of: text, json)");
}

#[test]
fn url_and_database_rules() {
    assert_contains(
        &err_text("public_url = \"https://x.test/?a=1\"\n", &[]),
        "public_url: 'https://x.test/?a=1' is not a valid URL: it must not have a query",
    );
    assert_contains(&err_text("public_url = \"ftp://x.test\"\n", &[]), "public_url: 'ftp://x.test' is not a valid URL");
    let err = err_text("database = \"mysql://root:pw@db/x\"\n", &[]);
    assert_contains(&err, "database: 'mysql://root:***@db/x' is not a supported database URL");
    assert!(!err.contains(":pw@"), "password echoed: {err}");
    assert_contains(
        &err_text("[[auth.trusted_issuers]]\nissuer = \"https://i\"\njwks_url = \"keys\"\n", &[]),
        "auth.trusted_issuers[0].jwks_url: 'keys' is not a valid URL",
    );
    assert_contains(
        &err_text("master_key = \"env:\"\n", &[]),
        "master_key: 'env:' does not name an environment variable",
    );
    assert_contains(
        &err_text("[odata]\ndefault_company = \"u s\"\n", &[]),
        "odata.default_company: 'u s' is not a company id",
    );
}
