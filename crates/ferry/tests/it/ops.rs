//! Operability: liveness and readiness probes without a token, Prometheus
//! metrics behind a token, the OpenAPI document, and restarts (declared apps
//! are applied idempotently; signing keys survive). Graceful shutdown on
//! SIGTERM is covered in `cli.rs`.

use ferry_store::testing::TestDatabase;

use crate::support::{Backend, TestServer, expect_json, expect_status, on_both_backends, toml_string};

on_both_backends!(probes_answer_without_a_token, metrics_need_a_token_and_count_requests, openapi_describes_the_api);

async fn probes_answer_without_a_token(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    expect_status(server.http.get(server.url("/healthz")).send().await.unwrap(), 200).await;
    expect_status(server.http.get(server.url("/readyz")).send().await.unwrap(), 200).await;
    server.stop().await;
}

async fn metrics_need_a_token_and_count_requests(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let anonymous = server.http.get(server.url("/metrics")).send().await.unwrap();
    expect_status(anonymous, 401).await;
    let token = server.token().await;
    expect_status(server.get("/data/CustomerGroups", &token).await, 200).await;
    let response = server.get("/metrics", &token).await;
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let text = expect_status(response, 200).await;
    assert!(content_type.unwrap_or_default().starts_with("text/plain"), "Prometheus text format");
    assert!(text.contains("ferry_http_requests_total"), "metrics:\n{text}");
    server.stop().await;
}

async fn openapi_describes_the_api(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let document = expect_json(server.http.get(server.url("/openapi.json")).send().await.unwrap(), 200).await;
    let version = document["openapi"].as_str().unwrap_or_else(|| panic!("no openapi version in {document}"));
    assert!(version.starts_with("3."), "openapi {version}");
    let paths = document["paths"].as_object().unwrap_or_else(|| panic!("no paths in {document}"));
    for path in ["/oauth2/token", "/data/{entitySet}"] {
        assert!(paths.contains_key(path), "{path} missing from {:?}", paths.keys().collect::<Vec<_>>());
    }
    server.stop().await;
}

on_both_backends!(restarts_keep_declared_apps_and_signing_keys);

/// Starts a server on `config_path` with `SVC_SECRET=secret` and answers it.
async fn start_from(config_path: &std::path::Path, secret: &str) -> ferry::RunningServer {
    let env = vec![("SVC_SECRET".to_owned(), secret.to_owned())];
    let config = ferry_config::load(Some(config_path), &env, &ferry_config::Overrides::default()).expect("config");
    ferry::RunningServer::start(config, env).await.expect("start")
}

async fn restarts_keep_declared_apps_and_signing_keys(backend: Backend) {
    let database = match backend {
        Backend::Sqlite => TestDatabase::sqlite(),
        Backend::Postgres => match TestDatabase::postgres("ops::restarts_keep_declared_apps_and_signing_keys").await {
            Some(database) => database,
            None => return,
        },
    };
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("ferry.toml");
    let write_config = |roles: &str| {
        let text = format!(
            "listen = \"127.0.0.1:0\"\npublic_url = \"http://ferry.local\"\ndata_dir = {}\ndatabase = {}\n\n\
             [[apps]]\nclient_id = \"svc\"\nsecret = \"env:SVC_SECRET\"\nroles = {roles}\n",
            toml_string(&dir.path().join("data").display().to_string()),
            toml_string(&database.url),
        );
        std::fs::write(&config_path, text).unwrap();
    };
    let http = reqwest::Client::new();
    let secret = ferry_secrets::generate_secret();
    let app = || async {
        let store = ferry_store::Store::open(&database.url, ferry_domain::SystemClock::shared()).await.unwrap();
        let app = store.get_app("svc").await.unwrap().expect("svc is stored");
        store.close().await;
        app
    };

    write_config("[\"reader\"]");
    let first = start_from(&config_path, &secret).await;
    let form = [("grant_type", "client_credentials"), ("client_id", "svc"), ("client_secret", secret.as_str())];
    let issued = http.post(format!("http://{}/oauth2/token", first.addr)).form(&form).send().await.unwrap();
    let token = expect_json(issued, 200).await["access_token"].as_str().unwrap().to_owned();
    first.stop().await;
    let stored = app().await;

    // Same config again: nothing is rewritten, and tokens from before the restart still verify
    // (the signing key and the master key that protects it survive; the fixed public URL keeps
    // the issuer stable although the port changes).
    let second = start_from(&config_path, &secret).await;
    let response = http.get(format!("http://{}/data/CustomerGroups", second.addr)).bearer_auth(&token).send().await;
    expect_status(response.unwrap(), 200).await;
    second.stop().await;
    assert_eq!(app().await, stored, "a restart with the same config rewrites nothing");

    // A changed declaration updates the app but keeps its hash (same secret) and creation time.
    write_config("[\"writer\"]");
    start_from(&config_path, &secret).await.stop().await;
    let updated = app().await;
    assert_eq!(updated.roles, ["writer"]);
    assert_eq!(updated.secret_hash, stored.secret_hash);
    assert_eq!(updated.created_at, stored.created_at);
    assert!(updated.updated_at > stored.updated_at);
}
