//! The HTTP side: a token, reference data seeded through the API, and the three request kinds
//! the throughput steps send (POST a customer, GET a customer by key, GET /healthz).

use anyhow::{Context, Result, bail};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

use crate::load::Outcome;

/// Longest a single request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Most characters of an error body kept for the report.
const BODY_SNIPPET_MAX: usize = 400;

/// A connection to one ferry server with a bearer token.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    auth: String,
}

/// Status and (truncated) body of a response, for messages.
pub async fn describe(response: reqwest::Response) -> String {
    let status = response.status();
    let body = response.text().await.unwrap_or_else(|e| format!("<unreadable body: {e}>"));
    let body: String = body.chars().take(BODY_SNIPPET_MAX).collect();
    format!("{status} {body}")
}

impl Api {
    /// Obtains a token with the client-credentials grant.
    pub async fn connect(base: &str, client_id: &str, secret: &str, pool: usize) -> Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(pool.max(1) * 2)
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        let base = base.trim_end_matches('/').to_string();
        let response = http
            .post(format!("{base}/oauth2/token"))
            .form(&[("grant_type", "client_credentials"), ("client_id", client_id), ("client_secret", secret)])
            .send()
            .await
            .with_context(|| format!("POST {base}/oauth2/token"))?;
        if response.status() != StatusCode::OK {
            bail!("POST /oauth2/token answered {}", describe(response).await);
        }
        let body: Value = response.json().await.context("token response is not JSON")?;
        let token = body["access_token"].as_str().context("token response has no access_token")?;
        Ok(Api { http, base, auth: format!("Bearer {token}") })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.http.get(url).header("Authorization", &self.auth).header("Accept", "application/json")
    }

    pub fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).header("Authorization", &self.auth).json(body)
    }

    /// Creates a record unless it exists (201 or 409 are both fine).
    pub async fn ensure(&self, collection: &str, body: Value) -> Result<()> {
        let response = self.post(&format!("/data/{collection}"), &body).send().await?;
        match response.status() {
            StatusCode::CREATED | StatusCode::CONFLICT => Ok(()),
            _ => bail!("POST /data/{collection} {body} answered {}", describe(response).await),
        }
    }

    /// Seeds the currency and customer group every customer refers to.
    pub async fn seed_reference_data(&self) -> Result<()> {
        self.ensure("Currencies", json!({"CurrencyCode": "USD", "Name": "US dollar"})).await?;
        self.ensure("CustomerGroups", json!({"CustomerGroupId": "10", "Description": "Bench"})).await
    }

    /// Posts one customer outside the timed run and answers the company the server put it in
    /// (the app's default company) and its key.
    pub async fn probe_company(&self, tag: &str) -> Result<(String, String)> {
        let account = format!("PROBE-{tag}");
        let response = self.post("/data/CustomersV3", &customer(&account, 0)).send().await?;
        if response.status() != StatusCode::CREATED {
            bail!("POST /data/CustomersV3 (probe) answered {}", describe(response).await);
        }
        let body: Value = response.json().await.context("POST response is not JSON")?;
        let company = body["dataAreaId"].as_str().context("POST response has no dataAreaId")?;
        Ok((company.to_string(), account))
    }

    /// Posts customer `P{tag}-{task}-{n}`; keeps its account on 201.
    pub async fn post_customer(&self, tag: &str, task: usize, n: u64) -> Outcome {
        let account = format!("P{tag}-{task}-{n}");
        let body = customer(&account, n);
        match self.post("/data/CustomersV3", &body).send().await {
            Ok(r) if r.status() == StatusCode::CREATED => {
                // Read the body so the connection goes back to the pool.
                match r.bytes().await {
                    Ok(_) => Outcome::ok(Some(account)),
                    Err(e) => Outcome::failed(format!("reading the POST body: {e}")),
                }
            }
            Ok(r) => Outcome::failed(format!("POST /data/CustomersV3 {account}: {}", describe(r).await)),
            Err(e) => Outcome::failed(format!("POST /data/CustomersV3 {account}: {e}")),
        }
    }

    /// Gets one customer by key; 200 is success.
    pub async fn get_customer(&self, company: &str, account: &str) -> Outcome {
        let url = self.url(&format!("/data/CustomersV3(dataAreaId='{company}',CustomerAccount='{account}')"));
        match self.get(&url).send().await {
            Ok(r) if r.status() == StatusCode::OK => match r.bytes().await {
                Ok(_) => Outcome::ok(None),
                Err(e) => Outcome::failed(format!("reading the GET body: {e}")),
            },
            Ok(r) => Outcome::failed(format!("GET {url}: {}", describe(r).await)),
            Err(e) => Outcome::failed(format!("GET {url}: {e}")),
        }
    }

    /// The reference request: `/healthz` touches neither the database nor auth.
    pub async fn healthz(&self) -> Outcome {
        match self.http.get(self.url("/healthz")).send().await {
            Ok(r) if r.status() == StatusCode::OK => match r.bytes().await {
                Ok(_) => Outcome::ok(None),
                Err(e) => Outcome::failed(format!("reading the /healthz body: {e}")),
            },
            Ok(r) => Outcome::failed(format!("GET /healthz: {}", describe(r).await)),
            Err(e) => Outcome::failed(format!("GET /healthz: {e}")),
        }
    }

    /// The number of customers in the company, as the server counts them (`$count=true`).
    pub async fn count_customers(&self) -> Result<u64> {
        let url = self.url("/data/CustomersV3?$top=0&$count=true");
        let response = self.get(&url).send().await?;
        if response.status() != StatusCode::OK {
            bail!("GET {url} answered {}", describe(response).await);
        }
        let body: Value = response.json().await?;
        body["@odata.count"].as_u64().with_context(|| format!("GET {url}: no @odata.count in the answer"))
    }
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
