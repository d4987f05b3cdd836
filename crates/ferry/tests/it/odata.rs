//! OData round trips over a real socket: create, read, filter, page, patch, delete and follow
//! delta links, for standard and custom entities, under `/data` and `/api/data/v9.2`; bad
//! input answered with errors that name the problem, and nothing written.

use crate::support::{Backend, TestServer, WIDGETS, expect_json, expect_status, on_both_backends};
use serde_json::{Value, json};
use std::collections::BTreeSet;

on_both_backends!(
    standard_entity_round_trip,
    paging_follows_next_links_and_host,
    change_tracking_with_delta_links,
    custom_entity_under_both_prefixes,
    bad_input_names_the_problem_and_writes_nothing,
    cross_company_reads,
    metadata_documents,
);

async fn seed_groups(server: &TestServer, token: &str) {
    let usd = json!({"CurrencyCode": "USD", "Name": "US dollar"});
    expect_json(server.post_json("/data/Currencies", token, &usd).await, 201).await;
    for id in ["10", "20"] {
        let body = json!({"CustomerGroupId": id, "Description": format!("Group {id}")});
        expect_json(server.post_json("/data/CustomerGroups", token, &body).await, 201).await;
    }
}

async fn standard_entity_round_trip(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let token = server.token().await;
    seed_groups(&server, &token).await;

    let customer = json!({"CustomerAccount": "C-0001", "OrganizationName": "Contoso", "CustomerGroupId": "10",
                          "SalesCurrencyCode": "USD", "CreditLimit": 12345.678901});
    let created = expect_json(server.post_json("/data/CustomersV3", &token, &customer).await, 201).await;
    assert_eq!(created["dataAreaId"], "usmf", "the app's default company");
    assert_eq!(created["CreditLimit"].to_string(), "12345.678901", "decimals keep every digit");
    assert!(created["@odata.context"].as_str().unwrap().ends_with("/data/$metadata#CustomersV3/$entity"));

    // Keys: dataAreaId and entity-set names match without regard to case.
    let path = "/data/customersv3(dataAreaId='USMF',CustomerAccount='C-0001')";
    let got = expect_json(server.get(path, &token).await, 200).await;
    assert_eq!(got["OrganizationName"], "Contoso");
    let got = expect_json(
        server.get("/Data/CustomersV3(CustomerAccount='C-0001')?$select=OrganizationName", &token).await,
        200,
    )
    .await;
    assert_eq!(got["OrganizationName"], "Contoso");
    assert!(got.get("CreditLimit").is_none(), "$select projects");

    // PATCH without If-Match, then read it back.
    let change = json!({"OrganizationName": "Contoso Ltd", "CreditLimit": "500"});
    expect_status(server.patch_json(path, &token, &change).await, 204).await;
    let got = expect_json(server.get(path, &token).await, 200).await;
    assert_eq!(got["OrganizationName"], "Contoso Ltd");
    assert_eq!(got["CreditLimit"], json!(500));

    let query =
        "/data/CustomersV3?$filter=CreditLimit%20ge%20100%20and%20startswith(OrganizationName,'Contoso')&$count=true";
    let filtered = expect_json(server.get(query, &token).await, 200).await;
    assert_eq!(filtered["@odata.count"], 1);
    assert_eq!(filtered["value"][0]["CustomerAccount"], "C-0001");
    let count = expect_status(server.get("/data/CustomersV3/$count", &token).await, 200).await;
    assert_eq!(count, "1");

    expect_status(server.delete(path, &token).await, 204).await;
    let gone = expect_json(server.get(path, &token).await, 404).await;
    assert!(gone["error"]["message"].as_str().unwrap().contains("C-0001"), "{gone}");
    expect_json(server.delete(path, &token).await, 404).await;
    server.stop().await;
}

async fn get_with(server: &TestServer, url: &str, token: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = server.http.get(url).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("GET")
}

async fn paging_follows_next_links_and_host(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let token = server.token().await;
    seed_groups(&server, &token).await;
    for i in 0..23 {
        let body = json!({"CustomerAccount": format!("C-{i:04}"), "OrganizationName": format!("Org {i}"),
                          "CustomerGroupId": if i % 2 == 0 { "10" } else { "20" }});
        expect_json(server.post_json("/data/CustomersV3", &token, &body).await, 201).await;
    }
    // Server-driven paging: Prefer odata.maxpagesize, follow @odata.nextLink until none.
    let mut url = server.url("/data/CustomersV3?$select=CustomerAccount&$count=true");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = expect_json(get_with(&server, &url, &token, &[("Prefer", "odata.maxpagesize=5")]).await, 200).await;
        assert_eq!(page["@odata.count"], 23);
        pages += 1;
        let rows = page["value"].as_array().unwrap();
        seen.extend(rows.iter().map(|r| r["CustomerAccount"].as_str().unwrap().to_string()));
        match page["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&server.url("/data/CustomersV3?")), "{next}");
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 5);
    let expected: Vec<String> = (0..23).map(|i| format!("C-{i:04}")).collect();
    assert_eq!(seen, expected, "every row once, in key order");

    // $top, $skip and $orderby page by offset and stop at $top.
    let url = server.url("/data/CustomersV3?$orderby=OrganizationName%20desc&$top=7&$skip=2&$select=OrganizationName");
    let small_pages = [("Prefer", "odata.maxpagesize=4")];
    let page = expect_json(get_with(&server, &url, &token, &small_pages).await, 200).await;
    assert_eq!(page["value"].as_array().unwrap().len(), 4);
    assert_eq!(page["value"][0]["OrganizationName"], "Org 7", "desc by text: Org 9, Org 8, then Org 7");
    let next = page["@odata.nextLink"].as_str().unwrap();
    let rest = expect_json(get_with(&server, next, &token, &small_pages).await, 200).await;
    assert_eq!(rest["value"].as_array().unwrap().len(), 3, "7 in all under $top");
    assert!(rest.get("@odata.nextLink").is_none());

    // Links are built from the scheme, host and path the client used.
    let headers =
        [("Host", "erp.example.test:8443"), ("X-Forwarded-Proto", "https"), ("Prefer", "odata.maxpagesize=2")];
    let page =
        expect_json(get_with(&server, &server.url("/api/data/v9.2/customersv3?$top=3"), &token, &headers).await, 200)
            .await;
    let next = page["@odata.nextLink"].as_str().unwrap();
    assert!(next.starts_with("https://erp.example.test:8443/api/data/v9.2/CustomersV3?"), "{next}");
    server.stop().await;
}

async fn post_with(server: &TestServer, path: &str, token: &str, prefer: &str, body: &Value) -> reqwest::Response {
    let request = server.http.post(server.url(path)).bearer_auth(token).header("Prefer", prefer);
    request.json(body).send().await.expect("POST")
}

async fn change_tracking_with_delta_links(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let token = server.token().await;
    let api = "/api/data/v9.2";
    let mut ids = Vec::new();
    for name in ["Alpha", "Beta", "Gamma"] {
        let response =
            post_with(&server, &format!("{api}/accounts"), &token, "return=representation", &json!({"name": name}))
                .await;
        let created = expect_json(response, 201).await;
        ids.push(created["accountid"].as_str().unwrap().to_string());
    }
    // Dataverse answers a create with 204 and the new record's address.
    let response = server.post_json(&format!("{api}/accounts"), &token, &json!({"name": "Delta"})).await;
    assert_eq!(response.status(), 204);
    let entity_id = response.headers()["odata-entityid"].to_str().unwrap().to_string();
    assert!(entity_id.contains("/api/data/v9.2/accounts("), "{entity_id}");

    let track = [("Prefer", "odata.track-changes")];
    let response = get_with(&server, &server.url(&format!("{api}/accounts?$select=name")), &token, &track).await;
    assert_eq!(response.headers()["preference-applied"], "odata.track-changes");
    let initial = expect_json(response, 200).await;
    assert_eq!(initial["value"].as_array().unwrap().len(), 4);
    let delta_link = initial["@odata.deltaLink"].as_str().expect("a delta link").to_string();
    assert!(delta_link.contains("$deltatoken="), "{delta_link}");

    // Change, delete and add after the delta link was issued.
    let path = format!("{api}/accounts({})", ids[0]);
    expect_status(server.patch_json(&path, &token, &json!({"name": "Alpha 2"})).await, 204).await;
    expect_status(server.delete(&format!("{api}/accounts({})", ids[1]), &token).await, 204).await;
    let response = server.post_json(&format!("{api}/accounts"), &token, &json!({"name": "Epsilon"})).await;
    assert_eq!(response.status(), 204);

    let delta = expect_json(get_with(&server, &delta_link, &token, &[]).await, 200).await;
    let values = delta["value"].as_array().unwrap();
    let changed: BTreeSet<&str> = values.iter().filter_map(|v| v["name"].as_str()).collect();
    assert_eq!(changed, BTreeSet::from(["Alpha 2", "Epsilon"]));
    let deleted: Vec<&Value> = values.iter().filter(|v| v["reason"] == "deleted").collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["id"], ids[1]);
    assert!(deleted[0]["@odata.context"].as_str().unwrap().ends_with("$deletedEntity"));
    let next_delta = delta["@odata.deltaLink"].as_str().unwrap();
    assert_ne!(next_delta, delta_link);
    let empty = expect_json(get_with(&server, next_delta, &token, &[]).await, 200).await;
    assert_eq!(empty["value"], json!([]));

    // F&O entities track changes the same way; their deleted ids are key addresses.
    let response = get_with(&server, &server.url("/data/CustomerGroups"), &token, &track).await;
    let link = expect_json(response, 200).await["@odata.deltaLink"].as_str().unwrap().to_string();
    expect_json(server.post_json("/data/CustomerGroups", &token, &json!({"CustomerGroupId": "X"})).await, 201).await;
    expect_status(server.delete("/data/CustomerGroups(dataAreaId='usmf',CustomerGroupId='X')", &token).await, 204)
        .await;
    let delta = expect_json(get_with(&server, &link, &token, &[]).await, 200).await;
    let deleted = delta["value"].as_array().unwrap().iter().find(|v| v["reason"] == "deleted").cloned().unwrap();
    let id = deleted["id"].as_str().unwrap();
    assert!(id.ends_with("/data/CustomerGroups(dataAreaId='usmf',CustomerGroupId='X')"), "{id}");
    server.stop().await;
}

async fn custom_entity_under_both_prefixes(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, "", &[("widgets.toml", WIDGETS)]).await else { return };
    let token = server.token().await;
    for (prefix, id) in [("/data", "W-1"), ("/api/data/v9.2", "W-2")] {
        let body =
            json!({"WidgetId": id, "Name": "Sprocket", "Price": 9.99, "Color": "Blue", "Released": "2024-05-01"});
        let response = post_with(&server, &format!("{prefix}/Widgets"), &token, "return=representation", &body).await;
        let created = expect_json(response, 201).await;
        assert_eq!(created["Color"], "Blue");
        assert_eq!(created["Released"], "2024-05-01");
        let path = format!("{prefix}/Widgets(dataAreaId='usmf',WidgetId='{id}')");
        expect_status(server.patch_json(&path, &token, &json!({"Price": 10.5, "Color": 0})).await, 204).await;
        let got = expect_json(server.get(&path, &token).await, 200).await;
        assert_eq!((got["Price"].clone(), got["Color"].clone()), (json!(10.5), json!("Red")));
        let query = format!("{prefix}/Widgets?$filter=Color%20eq%20'Red'%20and%20WidgetId%20eq%20'{id}'");
        let list = expect_json(server.get(&query, &token).await, 200).await;
        assert_eq!(list["value"].as_array().unwrap().len(), 1);
        expect_status(server.delete(&path, &token).await, 204).await;
        expect_json(server.get(&path, &token).await, 404).await;
    }
    let metadata = expect_status(server.get("/data/$metadata", &token).await, 200).await;
    assert!(metadata.contains("<EntitySet Name=\"Widgets\" EntityType=\"Microsoft.Dynamics.DataEntities.Widget\"/>"));
    assert!(metadata.contains("<EnumType Name=\"WidgetColor\""));
    // The package API's entity set, actions and status enum, for typed clients.
    assert!(metadata.contains("<EntitySet Name=\"DataManagementDefinitionGroups\""));
    assert!(metadata.contains("<Action Name=\"GetExecutionIdByMessageId\" IsBound=\"true\">"));
    assert!(metadata.contains("<Parameter Name=\"_messageId\" Type=\"Edm.String\"/>"));
    assert!(metadata.contains("<Member Name=\"PartiallySucceeded\" Value=\"4\"/>"));
    server.stop().await;
}

async fn bad_input_names_the_problem_and_writes_nothing(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let token = server.token().await;
    seed_groups(&server, &token).await;
    let count_path = "/data/CustomerGroups/$count?cross-company=true";
    let before = expect_status(server.get(count_path, &token).await, 200).await;

    let raw = server.http.post(server.url("/data/CustomerGroups")).bearer_auth(&token);
    let raw = raw.header("Content-Type", "application/json").body("{\"CustomerGroupId\": \"30\",");
    let error = expect_json(raw.send().await.unwrap(), 400).await;
    assert!(error["error"]["message"].as_str().unwrap().contains("not a JSON object"), "{error}");

    let cases = [
        (json!({"CustomerGroupId": "30", "Colour": "red"}), "Colour", "has no field 'Colour'"),
        (json!({"CustomerGroupId": "30", "Description": ["a"]}), "Description", "single value"),
        (json!({"CustomerGroupId": "X".repeat(11)}), "CustomerGroupId", "the maximum is 10"),
        (json!({"Description": "no key"}), "CustomerGroupId", "mandatory fields are missing: CustomerGroupId"),
        (json!({"CustomerGroupId": "10"}), "", "already exists"),
    ];
    for (body, target, message) in cases {
        let response = server.post_json("/data/CustomerGroups", &token, &body).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert!(status == 400 || status == 409, "{body} → {status} {text}");
        assert!(text.contains(message), "{body} → {text}");
        if !target.is_empty() {
            let error: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(error["error"]["target"], target, "{text}");
        }
        assert!(!text.to_ascii_lowercase().contains("sql") && !text.contains("panicked"), "{text}");
    }
    // Wrong type for a typed field, and a lookup to a record that does not exist.
    let customer = json!({"CustomerAccount": "C-9", "CustomerGroupId": "10", "CreditLimit": "lots"});
    let error = expect_json(server.post_json("/data/CustomersV3", &token, &customer).await, 400).await;
    assert_eq!(error["error"]["target"], "CreditLimit");
    let customer = json!({"CustomerAccount": "C-9", "CustomerGroupId": "99"});
    let error = expect_json(server.post_json("/data/CustomersV3", &token, &customer).await, 400).await;
    assert!(error["error"]["message"].as_str().unwrap().contains("'99' does not exist in CustomerGroups"), "{error}");

    let error = expect_json(server.get("/data/CustomerGroups?$filter=CustomerGroupId%20eq", &token).await, 400).await;
    assert!(error["error"]["message"].as_str().unwrap().starts_with("$filter:"), "{error}");
    let error = expect_json(server.get("/data/CustomerGroups?$filter=Nope%20eq%201", &token).await, 400).await;
    assert!(error["error"]["message"].as_str().unwrap().contains("Nope"), "{error}");
    let error = expect_json(server.get("/data/NoSuchThings", &token).await, 404).await;
    assert!(error["error"]["message"].as_str().unwrap().contains("NoSuchThings"), "{error}");
    let path = "/data/CustomerGroups(dataAreaId='usmf',CustomerGroupId='10')";
    let error = expect_json(server.patch_json(path, &token, &json!({"CustomerGroupId": "11"})).await, 400).await;
    assert!(error["error"]["message"].as_str().unwrap().contains("cannot be changed"), "{error}");
    let after = expect_status(server.get(count_path, &token).await, 200).await;
    assert_eq!(after, before, "nothing was written");
    server.stop().await;
}

async fn cross_company_reads(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let token = server.token().await;
    for company in ["usmf", "demf", "DEMF"] {
        let id = format!("G-{}", company.to_lowercase());
        let body = json!({"dataAreaId": company, "CustomerGroupId": id, "Description": company});
        let response = server.post_json("/data/CustomerGroups", &token, &body).await;
        expect_json(response, if company == "DEMF" { 409 } else { 201 }).await;
    }
    let own = expect_json(server.get("/data/CustomerGroups", &token).await, 200).await;
    assert_eq!(own["value"].as_array().unwrap().len(), 1, "the caller's default company only");
    let all = expect_json(server.get("/data/CustomerGroups?cross-company=true", &token).await, 200).await;
    assert_eq!(all["value"].as_array().unwrap().len(), 2);
    let query = "/data/CustomerGroups?cross-company=true&$filter=dataAreaId%20eq%20'DEMF'";
    let demf = expect_json(server.get(query, &token).await, 200).await;
    assert_eq!(demf["value"][0]["dataAreaId"], "demf");
    server.stop().await;
}

async fn metadata_documents(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let token = server.token().await;
    let service = expect_json(server.get("/data", &token).await, 200).await;
    assert!(service["value"].as_array().unwrap().iter().any(|s| s["name"] == "CustomersV3"));
    let csdl = expect_status(server.get("/data/$metadata", &token).await, 200).await;
    for needle in [
        "<EntityType Name=\"CustomerGroup\"><Key><PropertyRef Name=\"dataAreaId\"/><PropertyRef Name=\"CustomerGroupId\"/></Key>",
        "<EnumType Name=\"NoYes\"",
        "<EntitySet Name=\"accounts\" EntityType=\"Microsoft.Dynamics.DataEntities.account\"/>",
    ] {
        assert!(csdl.contains(needle), "missing {needle}");
    }
    let query = "/Metadata/DataEntities?$filter=contains(tolower(PublicCollectionName),'customer')&$select=Name,PublicCollectionName";
    let entities = expect_json(server.get(query, &token).await, 200).await;
    let names: BTreeSet<&str> =
        entities["value"].as_array().unwrap().iter().map(|e| e["PublicCollectionName"].as_str().unwrap()).collect();
    assert_eq!(names, BTreeSet::from(["CustomerGroups", "CustomersV3"]));
    assert!(entities["value"][0].get("LabelId").is_none(), "$select projects");
    let group = expect_json(server.get("/metadata/PublicEntities('customergroup')", &token).await, 200).await;
    assert_eq!(group["EntitySetName"], "CustomerGroups");
    let key = group["Properties"].as_array().unwrap().iter().find(|p| p["Name"] == "CustomerGroupId").unwrap();
    assert_eq!((key["IsKey"].clone(), key["DataType"].clone()), (json!(true), json!("String")));
    let no_yes = expect_json(server.get("/Metadata/PublicEnumerations('NoYes')", &token).await, 200).await;
    assert_eq!(no_yes["Members"][1]["Name"], "Yes");
    expect_json(server.get("/Metadata/PublicEnumerations('Nope')", &token).await, 404).await;
    server.stop().await;
}
