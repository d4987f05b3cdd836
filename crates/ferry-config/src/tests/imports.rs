//! `[import]`, `[blobs]`, `[[projects]]` and `[[jobs]]`: defaults, every setting, environment
//! overrides, the S3 secret's redaction, stylesheets read from `xslt_file`, and errors that name
//! the key and the layer.

use std::path::{Path, PathBuf};

use super::{env, load_text};
use crate::{Overrides, load};
use ferry_domain::{AuthorizedApp, BlobStoreConfig, ImportSettings, JobKind, Operation, S3Config, Secret};
use std::time::Duration;

const STYLESHEET: &str = r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"/>"#;

fn err_text(text: &str, env: &[(&str, &str)]) -> String {
    load_text(text, env).expect_err("config should be rejected").to_string()
}

fn env_err(pairs: &[(&str, &str)]) -> String {
    load(None, &env(pairs), &Overrides::default()).expect_err("env should be rejected").to_string()
}

fn assert_contains(haystack: &str, needle: &str) {
    assert!(haystack.contains(needle), "expected {needle:?} in:\n{haystack}");
}

/// A job with `line` added to a valid minimal body.
fn job_with(line: &str) -> String {
    format!("[[jobs]]\nactivity_id = \"6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d\"\nproject = \"Customers\"\n{line}\n")
}

/// A project with `line` added to its one entity.
fn project_with(line: &str) -> String {
    format!("[[projects]]\nname = \"Customers\"\n[[projects.entities]]\nentity = \"CustomersV3\"\n{line}\n")
}

#[test]
fn defaults() {
    let config = load(None, &[], &Overrides::default()).unwrap();
    assert_eq!(config.import, ImportSettings::default());
    let import = &config.import;
    let (lease, poll) = (import.lease.as_secs(), import.poll_interval.as_millis());
    assert_eq!((import.workers, lease, poll, import.max_attempts), (8, 30, 1000, 5));
    assert_eq!(import.max_enqueue_bytes, 2 * 1024 * 1024 * 1024);
    assert_eq!((import.dedupe_window.as_secs() / 3600, import.batch_rows), (168, 5000));
    assert_eq!(import.default_company, "dat");
    assert!(import.xslt);
    assert_eq!(import.max_field_bytes, 1024 * 1024);
    assert_eq!(config.blobs, BlobStoreConfig::Local { dir: PathBuf::from("./ferry-data/blobs") });
    assert!(config.projects.is_empty() && config.jobs.is_empty());
    let summary = config.redacted_summary();
    assert_contains(&summary, "blobs: local dir ./ferry-data/blobs");
    assert_contains(&summary, "import workers: 8");
}

#[test]
fn blobs_dir_follows_data_dir_unless_set() {
    let config = load_text("data_dir = \"/srv/ferry\"\n", &[]).unwrap();
    assert_eq!(config.blobs, BlobStoreConfig::Local { dir: PathBuf::from("/srv/ferry/blobs") });
    let config =
        load_text("data_dir = \"/srv/ferry\"\n[blobs]\nkind = \"local\"\ndir = \"/mnt/files\"\n", &[]).unwrap();
    assert_eq!(config.blobs, BlobStoreConfig::Local { dir: PathBuf::from("/mnt/files") });
}

#[test]
fn every_import_setting() {
    let text = "[import]\nworkers = 8\nlease_secs = 60\npoll_interval_ms = 250\nmax_attempts = 3\n\
                max_enqueue_bytes = 1048576\ndedupe_window_hours = 0\nbatch_rows = 100\n\
                default_company = \"USMF\"\nxslt = false\nmax_field_bytes = 4096\n\
                package_url_hosts = [\"Files.Example.com\", \"*.blob.core.windows.net\"]\n";
    let import = load_text(text, &[]).unwrap().import;
    let expected = ImportSettings {
        workers: 8,
        lease: Duration::from_secs(60),
        poll_interval: Duration::from_millis(250),
        max_attempts: 3,
        max_enqueue_bytes: 1_048_576,
        dedupe_window: Duration::ZERO,
        batch_rows: 100,
        default_company: "usmf".into(),
        xslt: false,
        max_field_bytes: 4096,
        package_url_hosts: vec!["files.example.com".into(), "*.blob.core.windows.net".into()],
    };
    assert_eq!(import, expected);
}

#[test]
fn export_and_retention_settings() {
    let config = load_text("", &[]).unwrap();
    assert_eq!(config.export, ferry_domain::ExportSettings::default());
    assert_eq!(config.export.visibility_timeout, Duration::from_secs(1800), "Dynamics' 30 minutes");
    assert_eq!(config.retention.keep, Duration::from_secs(7 * 24 * 3600), "Dynamics' 7 days");
    let text = "[export]\nvisibility_timeout_secs = 60\nurl_lifetime_secs = 600\n\
                [retention]\nkeep_days = 30\nsweep_interval_secs = 300\n";
    let config = load_text(text, &[]).unwrap();
    assert_eq!(config.export.visibility_timeout, Duration::from_secs(60));
    assert_eq!(config.export.url_lifetime, Duration::from_secs(600));
    assert_eq!(config.retention.keep, Duration::from_secs(30 * 24 * 3600));
    assert_eq!(config.retention.sweep_interval, Duration::from_secs(300));
    let err = load_text("[retention]\nkeep_days = 0\n", &[]).unwrap_err().to_string();
    assert!(err.contains("retention.keep_days"), "{err}");
    let err = load_text("[import]\npackage_url_hosts = [\"http://x\"]\n", &[]).unwrap_err().to_string();
    assert!(err.contains("import.package_url_hosts[0]") && err.contains("not a host name"), "{err}");
}

#[test]
fn env_overrides_import_and_blobs() {
    let pairs = [
        ("FERRY_IMPORT__WORKERS", "16"),
        ("FERRY_IMPORT__XSLT", "false"),
        ("FERRY_IMPORT__MAX_ENQUEUE_BYTES", "10485760"),
        ("FERRY_BLOBS__KIND", "s3"),
        ("FERRY_BLOBS__BUCKET", "ferry-files"),
        ("FERRY_BLOBS__ENDPOINT", "http://127.0.0.1:9000/"),
        ("FERRY_BLOBS__ALLOW_HTTP", "true"),
        ("FERRY_BLOBS__ACCESS_KEY_ID", "minio"),
        ("FERRY_BLOBS__SECRET_ACCESS_KEY", "minio-s3cret"),
    ];
    let config = load_text("[import]\nworkers = 2\nbatch_rows = 200\n", &pairs).unwrap();
    assert_eq!(config.import.workers, 16, "the environment beats the file");
    assert_eq!(config.import.batch_rows, 200, "untouched keys keep file values");
    assert!(!config.import.xslt);
    assert_eq!(config.import.max_enqueue_bytes, 10 << 20);
    let expected = S3Config {
        bucket: "ferry-files".into(),
        endpoint: Some("http://127.0.0.1:9000".into()),
        region: "us-east-1".into(),
        access_key_id: Some("minio".into()),
        secret_access_key: Some(Secret::new("minio-s3cret")),
        prefix: None,
        allow_http: true,
    };
    assert_eq!(config.blobs, BlobStoreConfig::S3(expected));
    let debug = format!("{config:?}");
    assert!(!debug.contains("minio-s3cret"), "secret key leaked: {debug}");
    assert!(!config.redacted_summary().contains("minio-s3cret"));
    assert_contains(&config.redacted_summary(), "blobs: s3 bucket ferry-files at http://127.0.0.1:9000");
}

#[test]
fn s3_blobs_from_the_file() {
    let text = "[blobs]\nkind = \"S3\"\nbucket = \"b\"\nregion = \"eu-west-1\"\nprefix = \"/prod/ferry/\"\n\
                access_key_id = \"AKID\"\nsecret_access_key = \"env:FERRY_S3_SECRET\"\n";
    // A FERRY_* variable the config points at is a secret, not a setting.
    let config = load_text(text, &[("FERRY_S3_SECRET", "s3cret")]).unwrap();
    let BlobStoreConfig::S3(s3) = &config.blobs else { panic!("s3: {:?}", config.blobs) };
    assert_eq!((s3.bucket.as_str(), s3.region.as_str(), s3.endpoint.as_deref()), ("b", "eu-west-1", None));
    assert_eq!(s3.prefix.as_deref(), Some("prod/ferry"));
    assert_eq!(s3.secret_access_key, Some(Secret::new("s3cret")), "read from the variable");
    assert!(!s3.allow_http);
    assert_contains(&err_text(text, &[]), "blobs.secret_access_key: environment variable FERRY_S3_SECRET is not set");
}

#[test]
fn bad_import_values_name_key_and_layer() {
    let err = err_text("[import]\nworkers = 0\n", &[]);
    assert_contains(&err, "import.workers: 0 is outside 1..=64");
    assert_contains(&err, "at line 2");
    let cases = [
        ("workers = 65", "import.workers: 65 is outside 1..=64"),
        ("lease_secs = 4", "import.lease_secs: 4 is outside 5..=3600"),
        ("poll_interval_ms = 60001", "import.poll_interval_ms: 60001 is outside 10..=60000"),
        ("max_attempts = 0", "import.max_attempts: 0 is outside 1..=100"),
        ("max_enqueue_bytes = 0", "import.max_enqueue_bytes: must be at least 1 byte"),
        ("max_enqueue_bytes = -1", "import.max_enqueue_bytes: -1 is negative"),
        ("max_enqueue_bytes = \"2GiB\"", "import.max_enqueue_bytes: expected a whole number, found string '2GiB'"),
        ("dedupe_window_hours = 8761", "import.dedupe_window_hours: 8761 is outside 0..=8760"),
        ("batch_rows = 99", "import.batch_rows: 99 is outside 100..=100000"),
        ("default_company = \"u s\"", "import.default_company: 'u s' is not a company id"),
        ("xslt = \"yes\"", "import.xslt: expected a boolean"),
        ("max_field_bytes = 16777217", "import.max_field_bytes: 16777217 is outside 1..=16777216"),
        ("worker = 1", "unknown key `import.worker` (expected one of: workers, lease_secs,"),
    ];
    for (line, expected) in cases {
        assert_contains(&err_text(&format!("[import]\n{line}\n"), &[]), expected);
    }
    assert_eq!(env_err(&[("FERRY_IMPORT__LEASE_SECS", "1")]), "FERRY_IMPORT__LEASE_SECS: 1 is outside 5..=3600");
    assert_eq!(env_err(&[("FERRY_IMPORT__WORKERS", "many")]), "FERRY_IMPORT__WORKERS: 'many' is not a whole number");
    assert_contains(&env_err(&[("FERRY_IMPORT_WORKERS", "2")]), "e.g. FERRY_IMPORT__WORKERS");
}

#[test]
fn bad_blobs_name_the_key() {
    let cases = [
        ("kind = \"ftp\"", "blobs.kind: unknown kind 'ftp' (known: local, s3)"),
        ("bucket = \"b\"", "blobs.bucket: only applies to kind = \"s3\""),
        ("dir = \" \"", "blobs.dir: must not be empty"),
        ("kind = \"s3\"", "blobs.bucket: kind = \"s3\" needs the bucket"),
        ("kind = \"s3\"\nbucket = \"b\"\ndir = \"/x\"", "blobs.dir: only applies to kind = \"local\""),
        (
            "kind = \"s3\"\nbucket = \"b\"\nendpoint = \"http://minio:9000\"",
            "blobs.endpoint: 'http://minio:9000' is plain http; use https or set blobs.allow_http = true",
        ),
        ("kind = \"s3\"\nbucket = \"b\"\nendpoint = \"minio:9000\"", "blobs.endpoint: 'minio:9000' is not a valid URL"),
        (
            "kind = \"s3\"\nbucket = \"b\"\naccess_key_id = \"AKID\"",
            "blobs.access_key_id: set secret_access_key with it",
        ),
        (
            "kind = \"s3\"\nbucket = \"b\"\nsecret_access_key = \"x\"",
            "blobs.secret_access_key: set access_key_id with it",
        ),
        ("kind = \"s3\"\nbucket = \"b\"\nsecret = \"x\"", "unknown key `blobs.secret`"),
    ];
    for (lines, expected) in cases {
        assert_contains(&err_text(&format!("[blobs]\n{lines}\n"), &[]), expected);
    }
    let leaked = err_text("[blobs]\nkind = \"s3\"\nbucket = \"b\"\nsecret_access_key = \"hunter2\"\n", &[]);
    assert!(!leaked.contains("hunter2"), "secret echoed: {leaked}");
    assert_eq!(
        env_err(&[("FERRY_BLOBS__BUCKET", "b")]),
        "FERRY_BLOBS__BUCKET: only applies to kind = \"s3\"; set blobs.kind = \"s3\" or remove the key"
    );
}

#[test]
fn the_xslt_worker_variable_is_not_a_setting() {
    let config = load(None, &env(&[("FERRY_XSLT_WORKER", "/usr/bin/ferry")]), &Overrides::default()).unwrap();
    assert!(config.import.xslt);
}

#[test]
fn projects_resolve_with_defaults_and_stylesheet_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("xslt")).unwrap();
    std::fs::write(dir.path().join("xslt/vendors.xsl"), STYLESHEET).unwrap();
    let text = r#"
[[projects]]
name = " Customers "
description = "nightly customers"
[[projects.entities]]
entity = "CustomersV3"

[[projects]]
name = "Vendors"
operation = "Import"
[[projects.entities]]
entity = "Vendors V2"
format = "XML-Element"
xslt_file = "xslt/vendors.xsl"
mapping = { VENDORACCOUNT = "VendorAccountNumber" }
execution_unit = 2
level = 3
sequence = 4
[[projects.entities]]
entity = "VendorGroups"
format = "EXCEL"
sheet = "Groups"
xslt = "<xsl:stylesheet/>"
"#;
    let config = load_in(dir.path(), text).unwrap();
    let [customers, vendors] = &config.projects[..] else { panic!("two projects: {:?}", config.projects) };
    assert_eq!(customers.name, "Customers", "names are trimmed");
    assert_eq!(customers.description, "nightly customers");
    assert_eq!(customers.operation, Operation::Import);
    let entity = &customers.entities[0];
    assert_eq!((entity.entity.as_str(), entity.format.as_str(), entity.sheet.as_deref()), ("CustomersV3", "CSV", None));
    assert!(entity.mapping.is_empty() && entity.xslt.is_none());
    assert_eq!((entity.execution_unit, entity.level, entity.sequence), (1, 1, 1));

    let [xml, excel] = &vendors.entities[..] else { panic!("two entities: {:?}", vendors.entities) };
    assert_eq!(xml.xslt.as_deref(), Some(STYLESHEET), "xslt_file is read relative to the config file");
    assert_eq!(xml.mapping.get("VENDORACCOUNT").map(String::as_str), Some("VendorAccountNumber"));
    assert_eq!((xml.execution_unit, xml.level, xml.sequence), (2, 3, 4));
    assert_eq!(excel.sheet.as_deref(), Some("Groups"));
    assert_eq!(excel.xslt.as_deref(), Some("<xsl:stylesheet/>"));
    assert_contains(&config.redacted_summary(), "projects: 2");
}

/// Loads `text` from `ferry.toml` in `dir`.
fn load_in(dir: &Path, text: &str) -> Result<crate::Config, crate::ConfigError> {
    let path = dir.join("ferry.toml");
    std::fs::write(&path, text).unwrap();
    load(Some(&path), &[], &Overrides::default())
}

#[test]
fn bad_projects_name_the_key() {
    let cases = [
        ("format = \" \"", "projects[0].entities[0].format: must not be empty"),
        ("mapping = { ACCOUNTNUM = \"\" }", "projects[0].entities[0].mapping.ACCOUNTNUM: must not be empty"),
        ("fromat = \"CSV\"", "unknown key `projects[0].entities[0].fromat` (expected one of: entity, format,"),
        ("xslt = \"<x/>\"\nxslt_file = \"a.xsl\"", "projects[0].entities[0].xslt_file: set either xslt"),
        ("xslt_file = \"missing.xsl\"", "projects[0].entities[0].xslt_file: cannot read the stylesheet"),
        ("level = \"one\"", "projects[0].entities[0].level: expected a whole number"),
    ];
    for (line, expected) in cases {
        assert_contains(&err_text(&project_with(line), &[]), expected);
    }
    let blank = project_with("").replace("name = \"Customers\"", "name = \"  \"");
    assert_contains(&err_text(&blank, &[]), "projects[0].name: must not be empty");
    let long = project_with("").replace("Customers", &"x".repeat(101));
    assert_contains(&err_text(&long, &[]), "projects[0].name: must be at most 100 characters long");
    let bad_operation = project_with("").replace("name = \"Customers\"", "name = \"C\"\noperation = \"sync\"");
    assert_contains(
        &err_text(&bad_operation, &[]),
        "projects[0].operation: unknown operation 'sync' (known: import, export)",
    );
    assert_contains(
        &err_text("[[projects]]\nname = \"C\"\nentities = []\n", &[]),
        "projects[0].entities: must name at least one entity",
    );
    assert_contains(&err_text("[[projects]]\nname = \"C\"\n", &[]), "projects[0]: missing required key `entities`");
    let blank_entity = project_with("").replace("\"CustomersV3\"", "\"\"");
    assert_contains(&err_text(&blank_entity, &[]), "projects[0].entities[0].entity: must not be empty");
    let twice = format!("{}{}", project_with(""), project_with("").replace("\"Customers\"", "\"CUSTOMERS\""));
    let err = err_text(&twice, &[]);
    assert_contains(&err, "projects[1].name: duplicate project name 'CUSTOMERS' (also declared by projects[0])");
    assert_contains(&err, "at line 7");
}

#[test]
fn jobs_resolve_with_defaults() {
    let text = format!(
        "{}{}",
        job_with(""),
        "[[jobs]]\nactivity_id = \"{0A0B0C0D-1111-2222-3333-444455556666}\"\nproject = \"Vendors\"\n\
         description = \"vendor packages\"\nkind = \"Package\"\nrecurrence = \"0 */15 * * * *\"\nenabled = false\n\
         company = \"USMF\"\nall_or_nothing = true\n\
         apps = [{ client_id = \"erp\" }, { client_id = \"legacy\", enabled = false }]\n"
    );
    let config = load_text(&text, &[]).unwrap();
    let [first, second] = &config.jobs[..] else { panic!("two jobs: {:?}", config.jobs) };
    assert_eq!(first.activity_id, "6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d");
    assert_eq!((first.project.as_str(), first.kind, first.description.as_str()), ("Customers", JobKind::File, ""));
    assert!(first.apps.is_empty() && first.recurrence.is_none() && first.company.is_none());
    assert!(first.enabled && !first.all_or_nothing);

    assert_eq!(second.activity_id, "0a0b0c0d-1111-2222-3333-444455556666", "braces dropped, lower case");
    assert_eq!(second.kind, JobKind::Package);
    assert_eq!(second.recurrence.as_deref(), Some("0 */15 * * * *"));
    assert_eq!(second.company.as_deref(), Some("usmf"));
    assert!(!second.enabled && second.all_or_nothing);
    assert_eq!(
        second.apps,
        [
            AuthorizedApp { client_id: "erp".into(), enabled: true },
            AuthorizedApp { client_id: "legacy".into(), enabled: false }
        ]
    );
    assert_contains(&config.redacted_summary(), "jobs: 2");
}

#[test]
fn duplicate_jobs_are_rejected_in_any_spelling() {
    let second = job_with("").replace("6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d", "{6D31E09F-4A4B-4E2B-9C1E-0C5F0A0B1C2D}");
    let err = err_text(&format!("{}{second}", job_with("")), &[]);
    assert_contains(
        &err,
        "jobs[1].activity_id: duplicate activity id '6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d' (also declared by jobs[0])",
    );
    assert_contains(&err, "at line 6");
}

#[test]
fn bad_jobs_name_the_key() {
    let cases = [
        ("kind = \"stream\"", "jobs[0].kind: unknown kind 'stream' (known: file, package)"),
        ("company = \"u s\"", "jobs[0].company: 'u s' is not a company id"),
        ("apps = [{ client_id = \"a b\" }]", "jobs[0].apps[0].client_id: 'a b' contains ' '"),
        (
            "apps = [{ client_id = \"erp\" }, { client_id = \"ERP\" }]",
            "jobs[0].apps[1].client_id: app 'ERP' is listed twice",
        ),
        ("apps = [\"erp\"]", "jobs[0].apps[0]: expected a table like { client_id = \"erp\" }, found string 'erp'"),
        ("enabled = 1", "jobs[0].enabled: expected a boolean"),
        ("schedule = \"daily\"", "unknown key `jobs[0].schedule`"),
    ];
    for (line, expected) in cases {
        assert_contains(&err_text(&job_with(line), &[]), expected);
    }
    let bad_id = job_with("").replace("6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d", "job-1");
    assert_contains(&err_text(&bad_id, &[]), "jobs[0].activity_id: 'job-1' is not a GUID");
    let blank_id = job_with("").replace("6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d", " ");
    assert_contains(&err_text(&blank_id, &[]), "jobs[0].activity_id: must not be empty");
    let blank_project = job_with("").replace("\"Customers\"", "\"\"");
    assert_contains(&err_text(&blank_project, &[]), "jobs[0].project: must not be empty");
    assert_contains(
        &err_text("[[jobs]]\nproject = \"Customers\"\n", &[]),
        "jobs[0]: missing required key `activity_id`",
    );
}
