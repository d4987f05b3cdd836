//! The replication tests' workload: mixed inserts, updates and deletes of customers, vendors
//! and accounts through the OData API, by concurrent workers on disjoint keys.

use std::collections::BTreeMap;

use serde_json::json;

use super::STANDARD;
use crate::support::TestServer;

/// What a run of [`mixed_changes`] did.
#[derive(Debug, Default)]
pub struct Changes {
    pub inserts: usize,
    pub updates: usize,
    pub deletes: BTreeMap<&'static str, usize>,
}

/// `total` mixed inserts, updates and deletes of customers, vendors and accounts through the
/// OData API, by 8 concurrent workers on disjoint keys (`tag` makes keys unique per call).
pub async fn mixed_changes(server: &TestServer, token: &str, total: usize, tag: &str) -> Changes {
    const WORKERS: usize = 8;
    let http = server.http.clone();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..WORKERS {
        let (http, base, token) = (http.clone(), server.base.clone(), token.to_owned());
        let ops = total / WORKERS + usize::from(worker < total % WORKERS);
        let tag = format!("{tag}{worker}");
        tasks.spawn(async move { worker_changes(&http, &base, &token, &tag, ops, worker as u64 + 1).await });
    }
    let mut all = Changes::default();
    while let Some(done) = tasks.join_next().await {
        let changes = done.expect("worker");
        all.inserts += changes.inserts;
        all.updates += changes.updates;
        for (entity, n) in changes.deletes {
            *all.deletes.entry(entity).or_default() += n;
        }
    }
    all
}

async fn send(request: reqwest::RequestBuilder, what: &str) {
    let response = request.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = response.status().as_u16();
    if !matches!(status, 200 | 201 | 204) {
        panic!("{what}: status {status}: {}", response.text().await.unwrap_or_default());
    }
}

async fn worker_changes(http: &reqwest::Client, base: &str, token: &str, tag: &str, ops: usize, seed: u64) -> Changes {
    let mut live: [Vec<String>; 3] = Default::default();
    let mut changes = Changes::default();
    let mut random = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = move |n: u64| {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random % n
    };
    for op in 0..ops {
        let which = op % 3;
        let roll = next(100);
        let keys = &mut live[which];
        if keys.is_empty() || roll < 50 {
            let key = format!("{tag}-{op}");
            let (path, body) = match which {
                0 => (
                    "/data/CustomersV3",
                    json!({"CustomerAccount": key, "OrganizationName": format!("Org {key}"),
                        "CustomerGroupId": if op % 2 == 0 { "10" } else { "20" }, "SalesCurrencyCode": "USD"}),
                ),
                1 => (
                    "/data/VendorsV2",
                    json!({"VendorAccountNumber": key, "VendorOrganizationName": format!("Vendor {key}"),
                        "VendorGroupId": "V1", "CurrencyCode": "USD"}),
                ),
                _ => {
                    let id = uuid::Uuid::new_v4().to_string();
                    let body = json!({"accountid": id, "name": format!("Account {key}"), "accountnumber": key});
                    keys.push(id);
                    ("/data/accounts", body)
                }
            };
            send(http.post(format!("{base}{path}")).bearer_auth(token).json(&body), &format!("create {key}")).await;
            if which != 2 {
                keys.push(key);
            }
            changes.inserts += 1;
            continue;
        }
        let at = next(keys.len() as u64) as usize;
        let path = match which {
            0 => format!("/data/CustomersV3(dataAreaId='usmf',CustomerAccount='{}')", keys[at]),
            1 => format!("/data/VendorsV2(dataAreaId='usmf',VendorAccountNumber='{}')", keys[at]),
            _ => format!("/data/accounts({})", keys[at]),
        };
        if roll < 80 {
            let body = match which {
                0 => json!({"OrganizationName": format!("Org {} v{op}", keys[at]), "CustomerGroupId": "20"}),
                1 => json!({"VendorOrganizationName": format!("Vendor {} v{op}", keys[at]), "VendorGroupId": "V2"}),
                _ => json!({"name": format!("Account v{op}"), "telephone1": format!("555-{op:04}")}),
            };
            send(http.patch(format!("{base}{path}")).bearer_auth(token).json(&body), &format!("update {path}")).await;
            changes.updates += 1;
        } else {
            send(http.delete(format!("{base}{path}")).bearer_auth(token), &format!("delete {path}")).await;
            keys.swap_remove(at);
            *changes.deletes.entry(STANDARD[which].1).or_default() += 1;
        }
    }
    changes
}
