//! Token service tests against a real SQLite store.

use super::*;
use ferry_domain::{Clock, FakeClock};
use ferry_store::AppOrigin;
use std::sync::Arc;

async fn service(lifetime_secs: u64) -> (TokenService, App, Arc<FakeClock>, ferry_store::testing::TestDatabase) {
    let db = ferry_store::testing::TestDatabase::sqlite();
    let clock = FakeClock::new();
    let store = Store::open(&db.url, clock.clone()).await.unwrap();
    store.migrate().await.unwrap();
    let now = clock.now();
    let app = App {
        client_id: "erp".into(),
        name: "ERP".into(),
        secret_hash: ferry_secrets::hash_secret("s3cret"),
        roles: vec!["writer".into()],
        default_company: Some("usmf".into()),
        enabled: true,
        origin: AppOrigin::Cli,
        created_at: now,
        updated_at: now,
    };
    store.upsert_app(&app).await.unwrap();
    let settings = TokenSettings {
        issuer: "http://ferry.test".into(),
        tenant_id: "ferry".into(),
        audiences: vec!["https://usmf.operations.dynamics.com".into()],
        lifetime: Duration::from_secs(lifetime_secs),
        clock_skew: Duration::ZERO,
        trusted_issuers: vec![],
    };
    let (master, _) = MasterKey::generate();
    (TokenService::open(store, master, settings).await.unwrap(), app, clock, db)
}

#[tokio::test]
async fn issues_tokens_that_verify() {
    let (svc, app, _clock, _db) = service(3600).await;
    assert!(matches!(svc.authenticate_client("erp", "wrong").await, Err(AuthError::InvalidClient)));
    assert!(matches!(svc.authenticate_client("nobody", "s3cret").await, Err(AuthError::InvalidClient)));
    let app = svc.authenticate_client("erp", "s3cret").await.map(|_| app).unwrap();
    let aud = svc.resolve_audience(Some("https://USMF.operations.dynamics.com/")).unwrap();
    let token = svc.issue(&app, &aud).await.unwrap();
    let who = svc.verify(&token.access_token).await.unwrap();
    assert_eq!(
        who,
        Principal { client_id: "erp".into(), roles: vec![Role::Writer], default_company: Some("usmf".into()) }
    );
    assert!(matches!(svc.resolve_audience(Some("https://evil.example")), Err(AuthError::InvalidScope(_))));
}

#[tokio::test]
async fn rejects_tampered_and_expired_tokens() {
    let (svc, app, clock, _db) = service(1).await;
    let token = svc.issue(&app, "http://ferry.test").await.unwrap().access_token;
    // Verified once (and remembered): neither a tampered copy nor the token once expired passes.
    svc.verify(&token).await.expect("the genuine token");
    svc.verify(&token).await.expect("the genuine token, again");
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: serde_json::Value = serde_json::from_slice(&engine.decode(&parts[1]).unwrap()).unwrap();
    claims["roles"] = serde_json::json!(["admin"]);
    parts[1] = engine.encode(claims.to_string());
    let err = svc.verify(&parts.join(".")).await.unwrap_err().to_string();
    assert!(err.contains("signature is invalid"), "{err}");
    assert!(svc.verify("not-a-token").await.is_err());
    clock.advance(Duration::from_millis(2100));
    let err = svc.verify(&token).await.unwrap_err().to_string();
    assert!(err.contains("expired"), "{err}");
}

#[tokio::test]
async fn rotated_keys_keep_verifying_old_tokens() {
    let (svc, app, _clock, _db) = service(3600).await;
    let old = svc.issue(&app, "http://ferry.test").await.unwrap().access_token;
    let new_kid = svc.rotate_signing_key().await.unwrap();
    let new = svc.issue(&app, "http://ferry.test").await.unwrap().access_token;
    assert_eq!(jsonwebtoken::decode_header(&new).unwrap().kid.unwrap(), new_kid);
    svc.verify(&old).await.expect("old token still valid");
    svc.verify(&new).await.expect("new token valid");
    assert_eq!(svc.jwks().await.unwrap()["keys"].as_array().unwrap().len(), 2);
}
