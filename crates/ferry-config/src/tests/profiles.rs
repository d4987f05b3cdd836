//! `[[profiles]]`: defaults, every setting, connection-string references and redaction, and
//! errors that name the key.

use super::load_text;
use ferry_domain::{ConnectionString, ProfileState, TargetKind};

const TWO_PROFILES: &str = r#"
[[profiles]]
name = "Reporting"
description = "BI copy"
target_type = "MariaDB"
connection_string = "env:REPORTING_DB"
schema_name = "crm"
table_prefix = "rep2024"
retry_count = 3
retry_interval = 60
write_delete_log = true
entities = ["CustomersV3", "account"]
state = "MetadataOnly"

[[profiles]]
name = "Local"
target_type = "sqlite"
connection_string = "sqlite:///var/lib/copy.db"
entities = ["VendorsV2"]
"#;

fn err_text(text: &str, env: &[(&str, &str)]) -> String {
    load_text(text, env).expect_err("config should be rejected").to_string()
}

fn assert_contains(haystack: &str, needle: &str) {
    assert!(haystack.contains(needle), "expected {needle:?} in:\n{haystack}");
}

/// One profile with `line` added to a valid minimal body.
fn profile_with(line: &str) -> String {
    format!(
        "[[profiles]]\nname = \"p\"\ntarget_type = \"postgres\"\nconnection_string = \"postgres://u:pw@h/db\"\n\
         entities = [\"account\"]\n{line}\n"
    )
}

#[test]
fn profiles_resolve_with_defaults() {
    let config = load_text(TWO_PROFILES, &[("REPORTING_DB", "mysql://u:s3cret@db/crm")]).unwrap();
    let [reporting_decl, local_decl] = &config.profiles[..] else { panic!("two profiles: {:?}", config.profiles) };
    let (reporting, local) = (&reporting_decl.definition, &local_decl.definition);
    assert_eq!(reporting.name, "Reporting");
    assert_eq!(reporting.description, "BI copy");
    assert_eq!(reporting.target_kind, TargetKind::MySql);
    assert_eq!(reporting_decl.connection, ConnectionString::Env("REPORTING_DB".into()));
    assert_eq!(reporting_decl.connection.as_reference(), "env:REPORTING_DB", "the reference is kept, not the value");
    assert_eq!(reporting.schema_name.as_deref(), Some("crm"));
    assert_eq!(reporting.table_prefix, "rep2024");
    assert_eq!((reporting.retry_count, reporting.retry_interval_secs), (3, 60));
    assert!(reporting.write_delete_log);
    assert_eq!(reporting.entities, ["CustomersV3", "account"]);
    assert_eq!(reporting_decl.state, ProfileState::MetadataOnly);

    assert_eq!(local.target_kind, TargetKind::Sqlite);
    assert_eq!(local_decl.connection.as_reference(), "sqlite:///var/lib/copy.db");
    assert_eq!(local.description, "");
    assert_eq!(local.schema_name, None);
    assert_eq!(local.table_prefix, "");
    assert_eq!((local.retry_count, local.retry_interval_secs), (12, 5), "the Data Export Service's defaults");
    assert!(!local.write_delete_log);
    assert_eq!(local_decl.state, ProfileState::Active, "declared profiles run unless told otherwise");
    assert!(config.redacted_summary().contains("profiles: 2"));
}

#[test]
fn connection_strings_never_debug_printed() {
    let config = load_text(&profile_with(""), &[]).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("pw@h"), "{debug}");
    assert!(debug.contains("Literal(<redacted>)"), "{debug}");
}

#[test]
fn bad_profiles_name_the_key() {
    let cases = [
        ("table_prefix = \"x; DROP TABLE y\"", "profiles[0].table_prefix: 'x; DROP TABLE y' contains ';'"),
        (
            "table_prefix = \"abcdefghijklmno\"",
            "profiles[0].table_prefix: 'abcdefghijklmno' is 15 characters long; it must be shorter than 15",
        ),
        ("schema_name = \"dbo\\\"\"", "profiles[0].schema_name: 'dbo\"' contains '\"'"),
        ("retry_count = 21", "profiles[0].retry_count: 21 is outside 0..=20"),
        ("retry_interval = 3601", "profiles[0].retry_interval: 3601 is outside 0..=3600"),
        ("retry_count = -1", "profiles[0].retry_count: -1 is negative"),
        (
            "state = \"running\"",
            "profiles[0].state: unknown state 'running' (known: inactive, active, metadataonly, dataonly)",
        ),
        ("write_delete_log = \"yes\"", "profiles[0].write_delete_log: expected a boolean"),
        ("prefix = \"x\"", "unknown key `profiles[0].prefix`"),
    ];
    for (line, expected) in cases {
        assert_contains(&err_text(&profile_with(line), &[]), expected);
    }
    let bad_kind = profile_with("").replace("\"postgres\"", "\"mssql\"");
    assert_contains(
        &err_text(&bad_kind, &[]),
        "profiles[0].target_type: unknown target type 'mssql' (known: postgres, mysql, mariadb, sqlite)",
    );
    let no_entities = profile_with("").replace("[\"account\"]", "[]");
    assert_contains(&err_text(&no_entities, &[]), "profiles[0].entities: must name at least one entity");
    let blank_name = profile_with("").replace("name = \"p\"", "name = \" \"");
    assert_contains(&err_text(&blank_name, &[]), "profiles[0].name: must not be empty");
    let missing = "[[profiles]]\nname = \"p\"\ntarget_type = \"sqlite\"\nentities = [\"account\"]\n";
    assert_contains(&err_text(missing, &[]), "profiles[0]: missing required key `connection_string`");
    let twice = format!("{}{}", profile_with(""), profile_with("").replace("name = \"p\"", "name = \"P\""));
    assert_contains(
        &err_text(&twice, &[]),
        "profiles[1].name: duplicate profile name 'P' (also declared by profiles[0])",
    );
}

#[test]
fn env_connection_strings_must_be_set() {
    let text = profile_with("").replace("\"postgres://u:pw@h/db\"", "\"env:TARGET_DB\"");
    assert_contains(&err_text(&text, &[]), "profiles[0].connection_string: environment variable TARGET_DB is not set");
    assert_contains(&err_text(&text, &[("TARGET_DB", "")]), "environment variable TARGET_DB is empty");
    let config = load_text(&text, &[("TARGET_DB", "postgres://u:pw@h/db")]).unwrap();
    assert_eq!(config.profiles[0].connection, ConnectionString::Env("TARGET_DB".into()));
    let bad = profile_with("").replace("\"postgres://u:pw@h/db\"", "\"env:A B\"");
    assert_contains(
        &err_text(&bad, &[]),
        "profiles[0].connection_string: 'env:A B' does not name an environment variable",
    );
    let empty = profile_with("").replace("\"postgres://u:pw@h/db\"", "\"\"");
    assert_contains(&err_text(&empty, &[]), "profiles[0].connection_string: must not be empty");
}
