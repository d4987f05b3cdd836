//! Every documented endpoint, called as clients call it — with and without a trailing slash,
//! without a token and with an admin's, plus spellings the route table does not document (other
//! cases, a culture segment before the connector, braces around an activity id): none answers a
//! redirect (RIS sets `AllowAutoRedirect = false`, so a 3xx is a failed call) or a server error.
//! And the auth sweep: every secured endpoint answers 401 without a token, every public one
//! answers without one.

use std::time::Duration;

use reqwest::header::{LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, redirect};

use crate::support::{Backend, TestServer, on_both_backends};

on_both_backends!(no_endpoint_redirects_and_every_secured_one_needs_a_token);

const JOB: &str = "6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d";

/// Paths clients use that the route table does not document as such.
fn undocumented_spellings() -> Vec<(Method, String)> {
    let get = |path: &str| (Method::GET, path.to_owned());
    vec![
        get("/"),
        get("/no/such/endpoint/"),
        get("/DATA"),
        get("/Data/CustomerGroups"),
        get("/data/customergroups/"),
        get("/data/CustomerGroups(dataAreaId='usmf',CustomerGroupId='10')/"),
        get("/api/data/v9.2/"),
        get("/metadata/dataentities"),
        get("/Metadata/DataEntities/"),
        get(&format!("/en/api/connector/jobstatus/{JOB}?jobId=11111111-2222-3333-4444-555555555555")),
        get(&format!("/API/Connector/JobStatus/{JOB}")),
        get(&format!("/api/connector/jobstatus/%7B{}%7D", JOB.to_uppercase())),
        (Method::POST, format!("/en/api/connector/enqueue/{JOB}?entity=Customer%20groups")),
        (Method::POST, format!("/api/connector/enqueue/%7B{JOB}%7D/")),
        (Method::POST, "/data/datamanagementdefinitiongroups/Microsoft.Dynamics.DataEntities.GetMessageStatus".into()),
    ]
}

async fn no_endpoint_redirects_and_every_secured_one_needs_a_token(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let http = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    let admin = server.admin_token().await;
    let routes = server.documented_routes().await;

    let mut calls: Vec<(Method, String)> = Vec::new();
    for route in &routes {
        calls.push((route.method.clone(), route.path.clone()));
        calls.push((route.method.clone(), format!("{}/", route.path)));
    }
    calls.extend(undocumented_spellings());
    let mut problems = Vec::new();
    for (method, path) in &calls {
        for token in [None, Some(admin.as_str())] {
            let mut request = http.request(method.clone(), server.url(path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            let status = response.status();
            if status.is_redirection() || status.is_server_error() {
                let caller = if token.is_some() { "admin" } else { "no token" };
                let location = response.headers().get(LOCATION).cloned();
                problems.push(format!("{method} {path} ({caller}): {status}, Location {location:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "{} calls, these answered a redirect or a server error: {problems:#?}", calls.len());

    let mut wrong = Vec::new();
    for route in &routes {
        let response = http.request(route.method.clone(), server.url(&route.path)).send().await.expect("request");
        let status = response.status().as_u16();
        let challenged = response.headers().contains_key(WWW_AUTHENTICATE);
        match (route.secured, status) {
            (true, 401) if challenged => {}
            (true, _) => wrong.push(format!("{} {} answered {status} without a token", route.method, route.path)),
            (false, 401) => wrong.push(format!("{} {} is public but answered 401", route.method, route.path)),
            (false, _) => {}
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    let secured = routes.iter().filter(|r| r.secured).count();
    assert!(secured > 40 && secured < routes.len(), "{secured} of {} routes secured", routes.len());
    server.stop().await;
}
