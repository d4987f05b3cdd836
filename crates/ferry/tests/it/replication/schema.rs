//! Schema evolution and bad input: a field added to a custom entity (ferry restarted with the
//! new definition) becomes a new target column without a reload — existing rows keep their
//! data and their `SinkCreatedOn` — and new values flow; bad profile input (unknown entity,
//! injection-looking or too-long names, out-of-range numbers, an unreachable target) is
//! answered with an error naming the field, and nothing is created.

use serde_json::{Value, json};

use super::targets::TargetDb;
use super::{Harness, assert_target_equals_source};
use crate::support::{Backend, WIDGETS, expect_json, expect_status, ferry_cmd, toml_string, widgets_with};

/// Version 2 of Widgets adds two fields.
fn widgets_v2() -> String {
    widgets_with(&[r#"{ name = "Notes", type = "string(200)" }"#, r#"{ name = "Weight", type = "int" }"#])
}

async fn new_field(target: TargetDb) {
    let Some(mut h) = Harness::start(Backend::Sqlite, &[("widgets.toml", WIDGETS)]).await else { return };
    for i in 0..20 {
        let body = json!({"WidgetId": format!("W{i:02}"), "Name": format!("Widget {i}"), "Price": i});
        expect_json(h.server.post_json("/data/Widgets", &h.writer, &body).await, 201).await;
    }
    let body = json!({"Name": "Widgets", "TargetType": target.type_name(), "ConnectionString": target.url,
                      "TablePrefix": "w", "Entities": ["Widgets"]});
    let id = h.create_profile(&body).await;
    h.action(&id, "activate").await;
    h.wait_converged(&id, &target, "w", &["widget"]).await;
    let before = target.rows_by_id("w_widget", &["SinkCreatedOn", "name"]).await;
    assert_eq!(before.len(), 20);

    // Restart ferry with two new fields.
    let v2 = widgets_v2();
    let restarted_at = chrono::Utc::now();
    h.restart(&[("widgets.toml", &v2)]).await;
    // The first status reported after the restart comes after the schema was evolved.
    let profile = h
        .wait_for(&id, "delta sync after the restart", |p| {
            let status = &p["EntityStatus"][0];
            let updated = status["UpdatedOn"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            status["Phase"] == "DeltaSync" && status["State"] == "Running" && updated.is_some_and(|t| t > restarted_at)
        })
        .await;
    let columns = target.columns("w_widget").await;
    for column in ["notes", "weight"] {
        assert!(columns.iter().any(|c| c == column), "{column} was not added: {columns:?}");
    }
    assert_eq!(profile["EntityStatus"][0]["RowsCopied"], 20, "no reload: {profile}");
    let after = target.rows_by_id("w_widget", &["SinkCreatedOn", "name"]).await;
    assert_eq!(after, before, "existing rows keep their data (and were not copied again)");

    // New values flow into the new columns.
    let path = "/data/Widgets(dataAreaId='usmf',WidgetId='W03')";
    expect_status(h.server.patch_json(path, &h.writer, &json!({"Notes": "fragile", "Weight": 7})).await, 204).await;
    let body = json!({"WidgetId": "W99", "Name": "New widget", "Notes": "brand new", "Weight": 1});
    expect_json(h.server.post_json("/data/Widgets", &h.writer, &body).await, 201).await;
    h.wait_converged(&id, &target, "w", &["widget"]).await;
    assert_target_equals_source(&h.source, &h.catalog, &target, "w", "widget").await;
    let weights = target.select("w_widget", &["widgetid", "weight"]).await;
    assert!(weights.contains(&vec![Some("W03".into()), Some("7".into())]), "{weights:?}");
    let profile = h.profile(&id).await;
    assert_eq!(profile["EntityStatus"][0]["RowsCopied"], 20, "still no reload: {profile}");
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_custom_field_becomes_a_column_without_reload_in_sqlite() {
    new_field(TargetDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_custom_field_becomes_a_column_without_reload_in_postgres() {
    let Some(target) = TargetDb::postgres("a_new_custom_field_becomes_a_column_without_reload_in_postgres").await
    else {
        return;
    };
    new_field(target).await;
}

/// Posts a bad profile and checks the 400 names `field` and says `says`.
async fn refused(h: &Harness, body: &Value, field: &str, says: &str) {
    let answer = expect_json(h.server.post_json("/crm/exporter/profiles", &h.admin, body).await, 400).await;
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(field) && message.contains(says), "expected {field}: {says}; got {answer}");
    assert_eq!(answer["error"]["target"], field, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_profile_input_is_refused_and_changes_nothing() {
    let Some(h) = Harness::start(Backend::Sqlite, &[]).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let target_file = dir.path().join("never.db");
    let url = format!("sqlite://{}", target_file.display());
    let good = json!({"Name": "Good", "TargetType": "sqlite", "ConnectionString": url, "TablePrefix": "rep",
                      "Entities": ["CustomersV3", "account"]});
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    refused(&h, &with("Entities", json!(["CustomersV3", "Nope"])), "Entities", "unknown entity 'Nope'").await;
    refused(&h, &with("TablePrefix", json!("x; DROP TABLE y")), "TablePrefix", "may contain only the letters").await;
    refused(&h, &with("TablePrefix", json!("abcdefghijklmno")), "TablePrefix", "shorter than 15").await;
    refused(&h, &with("RetryCount", json!(21)), "RetryCount", "outside 0..=20").await;
    refused(&h, &with("RetryInterval", json!(3601)), "RetryInterval", "outside 0..=3600").await;
    refused(&h, &with("SchemaName", json!("public\"; DROP SCHEMA public; --")), "SchemaName", "may contain only").await;
    refused(&h, &with("SchemaName", json!("x`y")), "SchemaName", "may contain only").await;
    refused(&h, &with("TargetType", json!("mssql")), "TargetType", "not one of").await;
    refused(&h, &with("ConnectionString", Value::Null), "ConnectionString", "required").await;
    refused(&h, &with("Entities", json!([])), "Entities", "at least one entity").await;

    // validate reports each check; an unreachable target fails the connect check.
    let mut unreachable = with("ConnectionString", json!("postgres://nobody@127.0.0.1:1/nowhere"));
    unreachable["TargetType"] = json!("postgres");
    let checks = validate(&h, &unreachable).await;
    assert_eq!(checks["Result"], "Failed", "{checks}");
    let connect = check(&checks, "connect");
    assert_eq!(connect["Result"], "Failed", "{checks}");
    assert!(connect["Details"].as_str().is_some_and(|d| !d.is_empty()), "{checks}");
    assert_eq!(check(&checks, "profile")["Result"], "Passed", "{checks}");
    let checks = validate(&h, &with("TablePrefix", json!("x; DROP TABLE y"))).await;
    assert_eq!(check(&checks, "profile TablePrefix")["Result"], "Failed", "{checks}");

    // Nothing was created: no profile, no target database.
    let list = expect_json(h.server.get("/crm/exporter/profiles", &h.admin).await, 200).await;
    assert_eq!(list, json!([]));
    assert!(!target_file.exists(), "a refused profile never touches the target");

    // A bad update changes nothing either; writers may not manage profiles at all.
    let id = h.create_profile(&good).await;
    let url_of = h.server.url(&format!("/crm/exporter/profiles/{id}"));
    let bad = with("TablePrefix", json!("rep; DROP TABLE rep_account"));
    let response = h.server.http.put(&url_of).bearer_auth(&h.admin).json(&bad).send().await.unwrap();
    let answer = expect_json(response, 400).await;
    assert_eq!(answer["error"]["target"], "TablePrefix", "{answer}");
    assert_eq!(h.profile(&id).await["TablePrefix"], "rep");
    expect_status(h.server.post_json("/crm/exporter/profiles", &h.writer, &good).await, 403).await;
    h.server.stop().await;

    // A declared profile with an unknown entity stops start-up, naming the profile.
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {}\n[[profiles]]\nname = \"Bad\"\ntarget_type = \"sqlite\"\n\
         connection_string = {}\nentities = [\"CustomersV3\", \"Nope\"]\n",
        toml_string(&dir.path().join("data").display().to_string()),
        toml_string(&url),
    );
    std::fs::write(dir.path().join("bad.toml"), config).unwrap();
    let mut command = ferry_cmd(dir.path());
    command.args(["serve", "--config", "bad.toml"]);
    let output = tokio::task::spawn_blocking(move || command.output().expect("run ferry")).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("profiles[0] ('Bad')") && stderr.contains("unknown entity 'Nope'"), "{stderr}");
    assert!(!target_file.exists(), "a refused profile never touches the target");
}

async fn validate(h: &Harness, body: &Value) -> Value {
    expect_json(h.server.post_json("/crm/exporter/profiles/validate", &h.admin, body).await, 200).await
}

fn check<'a>(checks: &'a Value, name: &str) -> &'a Value {
    checks["Checks"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["Name"] == name))
        .unwrap_or_else(|| panic!("no check {name:?} in {checks}"))
}
