//! The real `ferry` binary: `serve` on embedded defaults with a graceful
//! SIGTERM shutdown, the `apps` commands against a data dir, `entities check`
//! on good and bad definitions, and configuration errors.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use ferry::RunningServer;
use serde_json::Value;

use crate::support::{ServeProcess, WIDGETS_FIELDS, expect_json, ferry_cmd, widgets_with};

fn run(dir: &Path, args: &[&str]) -> Output {
    ferry_cmd(dir).args(args).output().expect("run ferry")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a failed run with exit code 1 and an `error: …` message, and answers stderr.
fn expect_failure(output: &Output) -> String {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(1), "exit status; stdout: {}; stderr: {err}", stdout(output));
    assert!(err.starts_with("error: "), "stderr: {err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "stderr: {err}");
    err
}

fn expect_success(output: &Output) -> String {
    assert!(output.status.success(), "exit status {}; stderr: {}", output.status, stderr(output));
    stdout(output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_on_embedded_defaults_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = ServeProcess::start(dir.path(), &["--listen", "127.0.0.1:0"], &[]);
    let addr = serve.addr.clone();
    assert!(addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"), "address {addr}");
    assert!(dir.path().join("ferry-data/ferry.db").exists(), "the default SQLite database is in ./ferry-data");
    assert!(dir.path().join("ferry-data/master.key").exists(), "a master key was created");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("ferry-data/master.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the master key is private");
    }

    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let health = http.get(format!("http://{addr}/healthz")).send().await.expect("GET /healthz");
    assert_eq!(health.status().as_u16(), 200);

    let pid = serve.child.id().to_string();
    let kill = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = serve.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "ferry did not exit within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status} after SIGTERM; stderr: {}", serve.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_added_on_the_command_line_get_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let add = run(
        dir.path(),
        &["--data-dir", "data", "apps", "add", "--client-id", "erp-sync", "--roles", "reader,writer", "--json"],
    );
    let added: Value = serde_json::from_str(&expect_success(&add)).expect("apps add --json prints JSON");
    assert_eq!(added["client_id"], "erp-sync");
    assert_eq!(added["roles"], serde_json::json!(["reader", "writer"]));
    assert_eq!(added["default_company"], Value::Null);
    let secret = added["secret"].as_str().expect("secret").to_owned();
    assert!(secret.len() >= 32, "secret {secret}");

    let human = expect_success(&run(dir.path(), &["--data-dir", "data", "apps", "add", "--client-id", "bi"]));
    assert!(human.contains("client_id: bi") && human.contains("store it now: it cannot be shown again"), "{human}");

    let list = expect_success(&run(dir.path(), &["--data-dir", "data", "apps", "list", "--json"]));
    assert!(!list.contains(&secret) && !list.contains("argon2"), "apps list leaks secrets: {list}");
    let list: Value = serde_json::from_str(&list).expect("apps list --json prints JSON");
    let apps = list.as_array().expect("an array");
    let erp = apps.iter().find(|a| a["client_id"] == "erp-sync").expect("erp-sync listed");
    assert_eq!(erp["roles"], serde_json::json!(["reader", "writer"]));
    assert_eq!(erp["enabled"], true);
    assert_eq!(erp["origin"], "cli");
    assert_eq!(apps.len(), 2);
    let table = expect_success(&run(dir.path(), &["--data-dir", "data", "apps", "list"]));
    assert!(table.starts_with("CLIENT_ID") && table.contains("erp-sync"), "{table}");

    let again = expect_failure(&run(dir.path(), &["--data-dir", "data", "apps", "add", "--client-id", "erp-sync"]));
    assert!(again.contains("already exists") && again.contains("ferry apps rotate-secret erp-sync"), "{again}");
    let bad_role = expect_failure(&run(
        dir.path(),
        &["--data-dir", "data", "apps", "add", "--client-id", "x", "--roles", "raeder"],
    ));
    assert!(bad_role.contains("unknown role 'raeder'"), "{bad_role}");
    let bad_id = expect_failure(&run(dir.path(), &["--data-dir", "data", "apps", "add", "--client-id", "a b"]));
    assert!(bad_id.contains("client id 'a b'"), "{bad_id}");
    let missing = expect_failure(&run(dir.path(), &["--data-dir", "data", "apps", "disable", "nobody"]));
    assert!(missing.contains("no app 'nobody'"), "{missing}");

    // A server on the same data dir accepts the printed secret.
    let overrides = ferry_config::Overrides {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.path().join("data")),
        ..Default::default()
    };
    let config = ferry_config::load(None, &[], &overrides).expect("config");
    let server = RunningServer::start(config, Vec::new()).await.expect("start");
    let http = reqwest::Client::new();
    let token_url = format!("{}/oauth2/token", server.public_url);
    let form = |secret: &str| {
        vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", "erp-sync".to_owned()),
            ("client_secret", secret.to_owned()),
        ]
    };
    let ok = http.post(&token_url).form(&form(&secret)).send().await.unwrap();
    let body = expect_json(ok, 200).await;
    assert!(body["access_token"].is_string(), "{body}");

    // Rotating the secret retires the old one; disabling the app refuses tokens.
    let rotated = expect_success(&run(dir.path(), &["--data-dir", "data", "apps", "rotate-secret", "erp-sync"]));
    let new_secret = rotated
        .lines()
        .find_map(|l| l.strip_prefix("secret:"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| panic!("no secret in {rotated}"));
    let old = http.post(&token_url).form(&form(&secret)).send().await.unwrap();
    assert_eq!(old.status().as_u16(), 401);
    let new = http.post(&token_url).form(&form(&new_secret)).send().await.unwrap();
    assert_eq!(new.status().as_u16(), 200);
    expect_success(&run(dir.path(), &["--data-dir", "data", "apps", "disable", "erp-sync"]));
    let disabled = http.post(&token_url).form(&form(&new_secret)).send().await.unwrap();
    assert_eq!(disabled.status().as_u16(), 401);
    expect_success(&run(dir.path(), &["--data-dir", "data", "apps", "remove", "erp-sync"]));
    server.stop().await;

    let list: Value =
        serde_json::from_str(&expect_success(&run(dir.path(), &["--data-dir", "data", "apps", "list", "--json"])))
            .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[test]
fn entities_check_names_the_file_entity_and_field_of_a_bad_definition() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("entities")).unwrap();
    let good = widgets_with(&[r#"{ name = "Weight", type = "decimal(10,2)" }"#]);
    std::fs::write(dir.path().join("entities/widgets.toml"), &good).unwrap();
    let ok = expect_success(&run(dir.path(), &["--entities-dir", "entities", "entities", "check"]));
    assert!(ok.contains("entity catalog OK") && ok.contains("1 custom"), "{ok}");
    let list: Value = serde_json::from_str(&expect_success(&run(
        dir.path(),
        &["--entities-dir", "entities", "entities", "list", "--json"],
    )))
    .unwrap();
    let widgets = list.as_array().unwrap().iter().find(|e| e["collection"] == "Widgets").expect("Widgets listed");
    assert_eq!(widgets["key"], serde_json::json!(["WidgetId"]));
    assert_eq!(widgets["fields"], WIDGETS_FIELDS + 1);
    assert_eq!(widgets["company_specific"], true);

    let bad = good.replace("decimal(10,2)", "decimall(10,2)");
    std::fs::write(dir.path().join("entities/widgets.toml"), bad).unwrap();
    let err = expect_failure(&run(dir.path(), &["--entities-dir", "entities", "entities", "check"]));
    assert!(err.contains("widgets.toml"), "names the file: {err}");
    assert!(err.contains("entity 'Widget'"), "names the entity: {err}");
    assert!(err.contains("field 'Weight'"), "names the field: {err}");
    assert!(err.contains("unknown type 'decimall'"), "says what is wrong: {err}");

    // The same definition stops `serve` before it listens.
    let serve = expect_failure(&run(dir.path(), &["--entities-dir", "entities", "--listen", "127.0.0.1:0", "serve"]));
    assert!(serve.contains("widgets.toml") && serve.contains("field 'Weight'"), "{serve}");
}

#[test]
fn configuration_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ferry.toml"), "listen = \"127.0.0.1:0\"\nlisten_adress = \"x\"\n").unwrap();
    let err = expect_failure(&run(dir.path(), &["--config", "ferry.toml", "serve"]));
    assert!(err.contains("listen_adress"), "names the key: {err}");
    assert!(err.contains("ferry.toml"), "names the file: {err}");

    std::fs::write(dir.path().join("ferry.toml"), "[auth]\ntoken_lifetime_secs = 5\n").unwrap();
    let err = expect_failure(&run(dir.path(), &["--config", "ferry.toml", "apps", "list"]));
    assert!(err.contains("auth.token_lifetime_secs") && err.contains("line 2"), "{err}");

    let err = expect_failure(&run(dir.path(), &["--listen", "nowhere", "serve"]));
    assert!(err.contains("--listen"), "{err}");

    let err = expect_failure(&run(dir.path(), &["--config", "missing.toml", "serve"]));
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn openapi_and_keys_rotate_work_on_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let document: Value = serde_json::from_str(&expect_success(&run(dir.path(), &["openapi"]))).expect("JSON");
    assert!(document["openapi"].as_str().unwrap_or_default().starts_with("3."), "{document}");
    assert!(document["paths"]["/oauth2/token"].is_object(), "paths: {}", document["paths"]);

    let kid = |output: String| {
        output.lines().find_map(|l| l.strip_prefix("new signing key: ")).map(str::to_owned).expect("a kid")
    };
    let first = kid(expect_success(&run(dir.path(), &["keys", "rotate"])));
    let second = kid(expect_success(&run(dir.path(), &["keys", "rotate"])));
    assert_ne!(first, second);

    let empty = expect_success(&run(dir.path(), &["apps", "list"]));
    assert!(empty.contains("no apps registered"), "{empty}");
}
