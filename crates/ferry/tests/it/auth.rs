//! OAuth 2.0 end to end: every token endpoint shape and client authentication
//! method, OAuth error codes, verification of issued tokens against the
//! published JWKS, rejection of missing, garbage, tampered and foreign-signed
//! tokens, trusted external issuers, and role checks.
//!
//! Expiry of ferry's own tokens cannot be provoked from outside (the shortest
//! lifetime is 60 s and the signing key never leaves the server); it is covered
//! by ferry-auth's unit tests. Expiry of external tokens is tested here.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

use crate::support::{
    AUDIENCE, Backend, READER, SCOPE, TestServer, WRITER, expect_json, expect_status, on_both_backends,
};

on_both_backends!(
    every_token_endpoint_issues_working_tokens,
    oauth_errors_use_oauth_codes,
    issued_tokens_verify_against_the_published_jwks,
    bad_tokens_are_refused,
    trusted_external_issuers,
    readers_cannot_write,
);

/// The tenant of the Entra-shaped paths (`[auth] tenant_id` default).
const TENANT: &str = "ferry";

/// The claims of a JWT, read without verifying it.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload")).expect("JSON claims")
}

async fn every_token_endpoint_issues_working_tokens(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let form = |extra: (&'static str, &'static str)| {
        vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", WRITER.to_owned()),
            ("client_secret", server.secret.clone()),
            (extra.0, extra.1.to_owned()),
        ]
    };
    let mut tokens = Vec::new();

    // ferry's own endpoint with a v2-style scope (what TestServer::token does).
    tokens.push(server.token().await);

    // Entra v2 shape: scope.
    let v2 = server
        .http
        .post(server.url(&format!("/{TENANT}/oauth2/v2.0/token")))
        .form(&form(("scope", SCOPE)))
        .send()
        .await
        .unwrap();
    let v2 = expect_json(v2, 200).await;
    assert_eq!(v2["token_type"], "Bearer", "{v2}");
    tokens.push(v2["access_token"].as_str().expect("access_token").to_owned());

    // Entra v1 shape: resource.
    let v1 = server
        .http
        .post(server.url(&format!("/{TENANT}/oauth2/token")))
        .form(&form(("resource", AUDIENCE)))
        .send()
        .await
        .unwrap();
    let v1 = expect_json(v1, 200).await;
    assert_eq!(v1["resource"], AUDIENCE, "{v1}");
    tokens.push(v1["access_token"].as_str().expect("access_token").to_owned());

    // Client credentials in HTTP Basic instead of the form.
    let basic = STANDARD.encode(format!("{WRITER}:{}", server.secret));
    let via_basic = server
        .http
        .post(server.url("/oauth2/token"))
        .header("Authorization", format!("Basic {basic}"))
        .form(&[("grant_type", "client_credentials"), ("scope", SCOPE)])
        .send()
        .await
        .unwrap();
    tokens.push(expect_json(via_basic, 200).await["access_token"].as_str().expect("access_token").to_owned());

    for token in &tokens {
        let claims = claims(token);
        assert_eq!(claims["aud"], AUDIENCE, "{claims}");
        assert_eq!(claims["appid"], WRITER, "{claims}");
        expect_status(server.get("/data/CustomerGroups", token).await, 200).await;
    }
    server.stop().await;
}

async fn oauth_errors_use_oauth_codes(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let token_request = |pairs: Vec<(&'static str, String)>| {
        let request = server.http.post(server.url("/oauth2/token")).form(&pairs);
        async move { request.send().await.expect("token request") }
    };
    let creds = |secret: &str, extra: Vec<(&'static str, String)>| {
        let mut pairs = vec![("client_id", WRITER.to_owned()), ("client_secret", secret.to_owned())];
        pairs.extend(extra);
        pairs
    };
    let client_credentials = ("grant_type", "client_credentials".to_owned());

    let wrong_secret = token_request(creds("not-the-secret", vec![client_credentials.clone()])).await;
    assert_eq!(expect_json(wrong_secret, 401).await["error"], "invalid_client");

    let unknown_app = token_request(vec![
        client_credentials.clone(),
        ("client_id", "nobody".to_owned()),
        ("client_secret", "x".to_owned()),
    ])
    .await;
    assert_eq!(expect_json(unknown_app, 401).await["error"], "invalid_client");

    let password_grant = token_request(creds(&server.secret, vec![("grant_type", "password".to_owned())])).await;
    assert_eq!(expect_json(password_grant, 400).await["error"], "unsupported_grant_type");

    let foreign_scope = token_request(creds(
        &server.secret,
        vec![client_credentials.clone(), ("scope", "https://other.test/.default".to_owned())],
    ))
    .await;
    let body = expect_json(foreign_scope, 400).await;
    assert_eq!(body["error"], "invalid_scope", "{body}");

    let not_default = token_request(creds(
        &server.secret,
        vec![client_credentials.clone(), ("scope", "https://ferry.test/read".to_owned())],
    ))
    .await;
    let body = expect_json(not_default, 400).await;
    assert_eq!(body["error"], "invalid_scope", "{body}");

    let foreign_resource = server
        .http
        .post(server.url(&format!("/{TENANT}/oauth2/token")))
        .form(&creds(&server.secret, vec![client_credentials, ("resource", "https://other.test".to_owned())]))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(foreign_resource, 400).await["error"], "invalid_scope");
    server.stop().await;
}

async fn issued_tokens_verify_against_the_published_jwks(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let token = server.token().await;

    let discovery =
        expect_json(server.http.get(server.url("/.well-known/openid-configuration")).send().await.unwrap(), 200).await;
    assert_eq!(discovery["issuer"], server.base, "{discovery}");
    let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri");
    let jwks = expect_json(server.http.get(jwks_uri).send().await.unwrap(), 200).await;

    let header = jsonwebtoken::decode_header(&token).expect("JWT header");
    assert_eq!(header.alg, Algorithm::ES256);
    let kid = header.kid.expect("kid");
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} is not published in {jwks}"));
    let jwk: Jwk = serde_json::from_value(jwk.clone()).expect("a valid JWK");
    let key = DecodingKey::from_jwk(&jwk).expect("a usable JWK");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[server.base.as_str()]);
    let verified = jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("the token verifies");
    let verified = verified.claims;
    assert_eq!(verified["aud"], AUDIENCE);
    assert_eq!(verified["iss"], server.base);
    assert_eq!(verified["appid"], WRITER);
    assert_eq!(verified["roles"], json!(["writer"]));

    let reader = claims(&server.token_for(READER, server.reader_secret()).await);
    assert_eq!(reader["appid"], READER);
    assert_eq!(reader["roles"], json!(["reader"]));
    server.stop().await;
}

/// Asserts a 401 with a bearer challenge.
async fn expect_unauthorized(response: reqwest::Response, what: &str) {
    let status = response.status().as_u16();
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap_or_default().to_owned());
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, 401, "{what}: body {body}");
    let challenge = challenge.unwrap_or_else(|| panic!("{what}: no WWW-Authenticate header"));
    assert!(challenge.starts_with("Bearer"), "{what}: challenge {challenge}");
}

/// A P-256 key pair: its PKCS#8 (for signing) and its public JWK with `kid`.
fn es256_key(kid: &str) -> (EncodingKey, Value) {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("generate key");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).expect("read key");
    let (x, y) = pair.public_key().as_ref()[1..].split_at(32);
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
    });
    (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
}

fn sign(key: &EncodingKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn bad_tokens_are_refused(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let path = "/data/CustomerGroups";

    let no_token = server.http.get(server.url(path)).send().await.unwrap();
    expect_unauthorized(no_token, "no token").await;
    expect_unauthorized(server.get(path, "garbage").await, "garbage token").await;

    // A real token with a claim changed and the signature kept.
    let token = server.token().await;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut tampered = claims(&token);
    tampered["roles"] = json!(["admin"]);
    parts[1] = URL_SAFE_NO_PAD.encode(tampered.to_string());
    expect_unauthorized(server.get(path, &parts.join(".")).await, "tampered token").await;

    // Well-formed tokens signed with a key ferry never made: an unknown kid, and ferry's own kid.
    let own_kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    let forged_claims = json!({
        "iss": server.base, "aud": AUDIENCE, "appid": WRITER, "azp": WRITER, "sub": WRITER,
        "roles": ["admin"], "tid": TENANT, "iat": now(), "nbf": now(), "exp": now() + 600,
    });
    let (foreign_key, _) = es256_key("forged");
    expect_unauthorized(server.get(path, &sign(&foreign_key, "forged", &forged_claims)).await, "unknown kid").await;
    expect_unauthorized(server.get(path, &sign(&foreign_key, &own_kid, &forged_claims)).await, "forged signature")
        .await;

    // The untouched token still works.
    expect_status(server.get(path, &token).await, 200).await;
    server.stop().await;
}

/// Serves `jwks` at `http://127.0.0.1:PORT/keys` until the runtime ends; answers the URL.
async fn serve_jwks(jwks: Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind JWKS server");
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/keys", axum::routing::get(move || async move { axum::Json(jwks) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/keys")
}

async fn trusted_external_issuers(backend: Backend) {
    const ISSUER: &str = "https://issuer.test";
    let (key, jwk) = es256_key("ext-1");
    let jwks_url = serve_jwks(json!({ "keys": [jwk] })).await;
    let extra = format!(
        "[[auth.trusted_issuers]]\nissuer = \"{ISSUER}\"\njwks_url = \"{jwks_url}\"\naudience = \"{AUDIENCE}\"\n"
    );
    let Some(server) = TestServer::start_with(backend, &extra, &[]).await else { return };
    let external = |aud: &str, appid: &str, exp: i64| {
        sign(
            &key,
            "ext-1",
            &json!({ "iss": ISSUER, "aud": aud, "appid": appid, "iat": now() - 60, "nbf": now() - 60, "exp": exp }),
        )
    };
    let path = "/data/CustomerGroups";

    let good = external(AUDIENCE, WRITER, now() + 600);
    expect_status(server.get(path, &good).await, 200).await;
    let other_audience = external("https://other.test", WRITER, now() + 600);
    expect_unauthorized(server.get(path, &other_audience).await, "wrong audience").await;
    let expired = external(AUDIENCE, WRITER, now() - 30);
    expect_unauthorized(server.get(path, &expired).await, "expired external token").await;
    let unregistered = external(AUDIENCE, "not-registered", now() + 600);
    expect_unauthorized(server.get(path, &unregistered).await, "unregistered app").await;
    let untrusted = sign(
        &key,
        "ext-1",
        &json!({ "iss": "https://elsewhere.test", "aud": AUDIENCE, "appid": WRITER, "exp": now() + 600 }),
    );
    expect_unauthorized(server.get(path, &untrusted).await, "untrusted issuer").await;
    server.stop().await;
}

async fn readers_cannot_write(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let reader = server.token_for(READER, server.reader_secret()).await;
    let path = "/data/CustomerGroups";
    expect_status(server.get(path, &reader).await, 200).await;
    let body = json!({ "dataAreaId": "usmf", "CustomerGroupId": "IT-R", "Description": "reader write" });
    let refused = server.post_json(path, &reader, &body).await;
    expect_status(refused, 403).await;
    let writer = server.token().await;
    expect_status(server.post_json(path, &writer, &body).await, 201).await;
    server.stop().await;
}
