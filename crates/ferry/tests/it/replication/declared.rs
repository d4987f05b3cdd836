//! `[[profiles]]` in the config: created at start-up, left alone when a restart declares the
//! same profile (not even its modification time changes), updated in place (same Id) when the
//! declaration changes, and put in the declared state — an active one replicates.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::targets::TargetDb;
use crate::support::{Backend, TestServer, expect_json, toml_string};

async fn profiles(server: &TestServer) -> Vec<Value> {
    let token = server.admin_token().await;
    let list = expect_json(server.get("/crm/exporter/profiles", &token).await, 200).await;
    list.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_profiles_are_applied_idempotently() {
    let target = TargetDb::sqlite().await;
    let declared = format!(
        "[[profiles]]\nname = \"Declared\"\ntarget_type = \"sqlite\"\nconnection_string = {}\n\
         entities = [\"CustomerGroups\"]\nretry_count = 3\nstate = \"inactive\"\n",
        toml_string(&target.url)
    );
    let Some(mut server) = TestServer::start_with(Backend::Sqlite, &declared, &[]).await else { return };
    let first = profiles(&server).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let profile = &first[0];
    assert_eq!(
        (profile["Name"].as_str(), profile["State"].as_str()),
        (Some("Declared"), Some("Inactive")),
        "{profile}"
    );
    assert_eq!(profile["RetryCount"], 3);
    assert_eq!(profile["Entities"], json!(["customergroup"]));

    // The same declaration again: nothing is written.
    server.restart_with_entities(&[]).await;
    let again = profiles(&server).await;
    assert_eq!(again, first, "an unchanged declaration leaves the profile alone");

    // A changed declaration updates the same profile and activates it.
    let config_path = server.dir().join("ferry.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let config = config
        .replace("retry_count = 3", "retry_count = 4\ntable_prefix = \"dec\"")
        .replace("\"inactive\"", "\"active\"");
    std::fs::write(&config_path, config).unwrap();
    server.restart_with_entities(&[]).await;
    let changed = profiles(&server).await;
    assert_eq!(changed.len(), 1, "{changed:?}");
    let profile = &changed[0];
    assert_eq!(profile["Id"], first[0]["Id"], "updated in place");
    assert_eq!((profile["RetryCount"].as_u64(), profile["TablePrefix"].as_str()), (Some(4), Some("dec")), "{profile}");
    assert_eq!(profile["State"], "Active");
    assert_ne!(profile["ModifiedOn"], first[0]["ModifiedOn"]);

    let token = server.token().await;
    let body = json!({"CustomerGroupId": "10", "Description": "Wholesale"});
    expect_json(server.post_json("/data/CustomerGroups", &token, &body).await, 201).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while target.try_count("dec_customergroup").await != Some(1) {
        assert!(Instant::now() < deadline, "the declared profile did not replicate");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    server.stop().await;
}
