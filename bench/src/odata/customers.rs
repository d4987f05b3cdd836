//! The requests of the OData steps, all on `CustomersV3`: the reference data every customer
//! refers to, the probe that tells the app's company, one POST and one GET by key (the
//! throughput steps), `/healthz` (their reference) and `$count`.

use anyhow::{Context, Result, bail};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{Api, describe};
use crate::load::Outcome;

/// Creates a record unless it exists (201 or 409 are both fine).
async fn ensure(api: &Api, collection: &str, body: Value) -> Result<()> {
    let response = api.request(Method::POST, &format!("/data/{collection}")).json(&body).send().await?;
    match response.status() {
        StatusCode::CREATED | StatusCode::CONFLICT => Ok(()),
        _ => bail!("POST /data/{collection} {body} answered {}", describe(response).await),
    }
}

/// Seeds the currency and customer group every customer refers to.
pub async fn seed_reference_data(api: &Api) -> Result<()> {
    ensure(api, "Currencies", json!({"CurrencyCode": "USD", "Name": "US dollar"})).await?;
    ensure(api, "CustomerGroups", json!({"CustomerGroupId": "10", "Description": "Bench"})).await
}

/// Posts one customer outside the timed run and answers the company the server put it in
/// (the app's default company) and its key.
pub async fn probe_company(api: &Api, tag: &str) -> Result<(String, String)> {
    let account = format!("PROBE-{tag}");
    let request = api.request(Method::POST, "/data/CustomersV3").json(&customer(&account, 0));
    let body = api.call(request, "POST /data/CustomersV3 (probe)", StatusCode::CREATED).await?;
    let company = body["dataAreaId"].as_str().context("POST response has no dataAreaId")?;
    Ok((company.to_string(), account))
}

/// Posts customer `P{tag}-{task}-{n}`; keeps its account on 201.
pub async fn post_customer(api: &Api, tag: &str, task: usize, n: u64) -> Outcome {
    let account = format!("P{tag}-{task}-{n}");
    let request = api.request(Method::POST, "/data/CustomersV3").json(&customer(&account, n));
    Api::outcome(request, &format!("POST /data/CustomersV3 {account}"), StatusCode::CREATED, Some(account)).await
}

/// Gets one customer by key; 200 is success.
pub async fn get_customer(api: &Api, company: &str, account: &str) -> Outcome {
    let path = format!("/data/CustomersV3(dataAreaId='{company}',CustomerAccount='{account}')");
    Api::outcome(api.request(Method::GET, &path), &format!("GET {path}"), StatusCode::OK, None).await
}

/// The reference request: `/healthz` touches neither the database nor auth.
pub async fn healthz(api: &Api) -> Outcome {
    Api::outcome(api.http().get(api.url("/healthz")), "GET /healthz", StatusCode::OK, None).await
}

/// The number of customers in the company, as the server counts them (`$count=true`).
pub async fn count_customers(api: &Api) -> Result<u64> {
    let path = "/data/CustomersV3?$top=0&$count=true";
    let body = api.get_json(path).await?;
    body["@odata.count"].as_u64().with_context(|| format!("GET {path}: no @odata.count in the answer"))
}

/// The JSON body of a posted customer.
fn customer(account: &str, n: u64) -> Value {
    json!({
        "CustomerAccount": account,
        "OrganizationName": format!("Bench customer {account}"),
        "CustomerGroupId": "10",
        "SalesCurrencyCode": "USD",
        "CreditLimit": (n % 1000) * 100,
        "AddressCity": "Seattle",
        "AddressCountryRegionId": "USA",
    })
}
