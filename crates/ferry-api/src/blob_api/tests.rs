//! [`BlobUrls`] and the endpoint's operations and refusals, against a local blob store in a
//! temporary directory and a fake clock, through `endpoint::serve` (no server, no socket; the
//! end-to-end tests in `ferry/tests/it/blob_urls.rs` add HTTP and the Azure SDK).

use super::*;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_domain::{BlobStoreConfig, Clock, FakeClock};

const BASE: &str = "https://ferry.test";

struct Fixture {
    urls: BlobUrls,
    clock: Arc<FakeClock>,
    _dir: tempfile::TempDir,
}

fn master(byte: u8) -> MasterKey {
    MasterKey::from_base64(&STANDARD.encode([byte; 32])).unwrap()
}

async fn fixture(max_blob_bytes: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(&BlobStoreConfig::Local { dir: dir.path().join("blobs") }).await.unwrap();
    let clock = FakeClock::new();
    let urls = BlobUrls::new(&format!("{BASE}/"), &master(9), blobs, clock.clone(), max_blob_bytes);
    Fixture { urls, clock, _dir: dir }
}

impl Fixture {
    fn url(&self, key: &str, permissions: BlobPermissions) -> String {
        self.urls.sign_for(key, permissions, Duration::from_secs(3600)).unwrap()
    }

    /// Runs one request (`url` absolute, as signed) and answers status, headers and body.
    async fn call(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = Request::builder().method(method).uri(url.strip_prefix(BASE).expect("a blob URL"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.into()).unwrap();
        let response = endpoint::serve(&self.urls, request).await.unwrap_or_else(IntoResponse::into_response);
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap().to_vec();
        (parts.status, parts.headers, body)
    }

    async fn put(&self, url: &str, data: &'static [u8]) -> (StatusCode, HeaderMap, Vec<u8>) {
        self.call(Method::PUT, url, &[("x-ms-blob-type", "BlockBlob")], data).await
    }
}

/// Asserts an Azure error answer: status, `x-ms-error-code` and the code in the XML body.
fn assert_error(answer: &(StatusCode, HeaderMap, Vec<u8>), status: u16, code: &str) {
    let body = String::from_utf8_lossy(&answer.2);
    assert_eq!(answer.0.as_u16(), status, "{body}");
    assert_eq!(answer.1["x-ms-error-code"], code, "{body}");
    assert!(body.contains(&format!("<Error><Code>{code}</Code><Message>")), "{body}");
}

#[tokio::test]
async fn urls_are_signed_and_resolved() {
    let f = fixture(1024).await;
    let url = f.url("dmf/x/package.zip", BlobPermissions::ReadWrite);
    assert!(url.starts_with("https://ferry.test/blobs/dmf/x/package.zip?sv=2025-01-05&sr=b&sp=rw&se="), "{url}");
    assert_eq!(f.urls.blob_key_of(&url).unwrap(), "dmf/x/package.zip");

    // Another node with the same master key accepts it; one with another key does not.
    let same = BlobUrls::new(BASE, &master(9), f.urls.blobs().clone(), f.clock.clone(), 1024);
    assert_eq!(same.blob_key_of(&url).unwrap(), "dmf/x/package.zip");
    let other = BlobUrls::new(BASE, &master(8), f.urls.blobs().clone(), f.clock.clone(), 1024);
    assert!(matches!(other.blob_key_of(&url), Err(BlobUrlError::Denied(_))));

    let elsewhere = url.replace("ferry.test", "evil.test");
    assert!(matches!(f.urls.blob_key_of(&elsewhere), Err(BlobUrlError::NotABlobUrl(_))));
    let tampered = url.replace("package.zip", "other.zip");
    assert!(matches!(f.urls.blob_key_of(&tampered), Err(BlobUrlError::Denied(_))));
    f.clock.advance(Duration::from_secs(3600));
    let expired = f.urls.blob_key_of(&url).unwrap_err();
    assert!(expired.to_string().contains("expired"), "{expired}");

    for bad in ["single", "", "staged-blocks/a/b", "dmf/../x", "dmf//x", "dmf/a b", "dmf/.hidden"] {
        let error = f.urls.sign(bad, BlobPermissions::Read, f.clock.now()).unwrap_err();
        assert!(matches!(error, BlobUrlError::InvalidKey(_)), "{bad}: {error}");
    }
}

#[test]
fn dmf_keys_are_valid_url_keys() {
    let id = uuid::Uuid::nil();
    let cases = [
        ("0d2c6b5e-1f0b-4c1c-9d62-5f2a7f6b1e3a", "0d2c6b5e-1f0b-4c1c-9d62-5f2a7f6b1e3a"),
        ("My Package (1).zip", "My_Package__1_.zip"),
        ("../../etc/passwd", "___.__etc_passwd"),
        (".hidden", "_hidden"),
        ("", "blob"),
        ("ünïcode", "_n_code"),
    ];
    for (name, expected) in cases {
        let key = dmf_blob_key(id, name);
        assert_eq!(key, format!("dmf/00000000-0000-0000-0000-000000000000/{expected}"), "{name}");
        assert!(check_url_key(&key).is_ok(), "{key}");
    }
    let long = dmf_blob_key(id, &"x".repeat(5000));
    assert!(check_url_key(&long).is_ok() && long.len() < 300);
}

#[tokio::test]
async fn put_get_head_and_ranges() {
    let f = fixture(1024).await;
    let url = f.url("dmf/a/file.zip", BlobPermissions::ReadWrite);
    let (status, headers, _) = f.put(&url, b"0123456789abcdef").await;
    assert_eq!(status, StatusCode::CREATED);
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with("\"0x"), "{etag}");
    assert!(headers["last-modified"].to_str().unwrap().ends_with(" GMT"));
    assert_eq!(headers["x-ms-request-server-encrypted"], "false");

    let read = f.url("dmf/a/file.zip", BlobPermissions::Read);
    let (status, headers, body) = f.call(Method::GET, &read, &[], Body::empty()).await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"0123456789abcdef"[..]));
    assert_eq!(headers["etag"], etag.as_str(), "stable while unchanged");
    assert_eq!(headers["content-length"], "16");
    assert_eq!(headers["x-ms-blob-type"], "BlockBlob");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert!(!headers.contains_key("content-range"));

    let (status, headers, body) = f.call(Method::HEAD, &read, &[], Body::empty()).await;
    assert_eq!((status, headers["content-length"].to_str().unwrap(), body.len()), (StatusCode::OK, "16", 0));
    assert_eq!(headers["etag"], etag.as_str());

    let (status, headers, body) = f.call(Method::GET, &read, &[("range", "bytes=2-5")], Body::empty()).await;
    assert_eq!((status, body.as_slice()), (StatusCode::PARTIAL_CONTENT, &b"2345"[..]));
    assert_eq!(headers["content-range"], "bytes 2-5/16");
    assert_eq!(headers["content-length"], "4");
    let x_ms = [("x-ms-range", "bytes=10-99"), ("range", "bytes=0-0")];
    let (status, headers, body) = f.call(Method::GET, &read, &x_ms, Body::empty()).await;
    assert_eq!((status, body.as_slice()), (StatusCode::PARTIAL_CONTENT, &b"abcdef"[..]), "x-ms-range wins");
    assert_eq!(headers["content-range"], "bytes 10-15/16");
    let (status, _, body) = f.call(Method::GET, &read, &[("range", "bytes=0-1,4-5")], Body::empty()).await;
    assert_eq!((status, body.len()), (StatusCode::OK, 16), "a multi-range Range is ignored");
    let past = f.call(Method::GET, &read, &[("x-ms-range", "bytes=16-20")], Body::empty()).await;
    assert_error(&past, 416, "InvalidRange");
    assert_eq!(past.1["content-range"], "bytes */16");
    assert_error(
        &f.call(Method::GET, &read, &[("x-ms-range", "lines=1-2")], Body::empty()).await,
        400,
        "InvalidHeaderValue",
    );

    // Conditions.
    let (status, _, body) = f.call(Method::GET, &read, &[("if-match", &etag)], Body::empty()).await;
    assert_eq!((status, body.len()), (StatusCode::OK, 16));
    assert_error(
        &f.call(Method::GET, &read, &[("if-match", "\"0xOTHER\"")], Body::empty()).await,
        412,
        "ConditionNotMet",
    );
    assert_error(
        &f.call(Method::HEAD, &read, &[("if-match", "\"0xOTHER\"")], Body::empty()).await,
        412,
        "ConditionNotMet",
    );
    let only_new = [("x-ms-blob-type", "BlockBlob"), ("if-none-match", "*")];
    assert_error(&f.call(Method::PUT, &url, &only_new, "x").await, 409, "BlobAlreadyExists");
    let wrong = [("x-ms-blob-type", "BlockBlob"), ("if-match", "\"0xOTHER\"")];
    assert_error(&f.call(Method::PUT, &url, &wrong, "x").await, 412, "ConditionNotMet");
    let right = [("x-ms-blob-type", "BlockBlob"), ("if-match", etag.as_str())];
    let (status, headers, _) = f.call(Method::PUT, &url, &right, "replaced").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(headers["etag"], etag.as_str(), "a new blob, a new ETag");

    // An empty blob reads whole but has no range.
    let empty = f.url("dmf/a/empty", BlobPermissions::ReadWrite);
    assert_eq!(f.put(&empty, b"").await.0, StatusCode::CREATED);
    assert_error(
        &f.call(Method::GET, &empty, &[("x-ms-range", "bytes=0-99")], Body::empty()).await,
        416,
        "InvalidRange",
    );
    let (status, headers, body) = f.call(Method::GET, &empty, &[], Body::empty()).await;
    assert_eq!((status, headers["content-length"].to_str().unwrap(), body.len()), (StatusCode::OK, "0", 0));
}

#[tokio::test]
async fn refusals() {
    let f = fixture(10).await;
    let write = f.url("dmf/r/file", BlobPermissions::ReadWrite);
    let read = f.url("dmf/r/file", BlobPermissions::Read);
    assert_error(&f.put(&read, b"x").await, 403, "AuthorizationPermissionMismatch");
    let block = format!("{read}&comp=block&blockid=AAAA");
    assert_error(&f.call(Method::PUT, &block, &[], "x").await, 403, "AuthorizationPermissionMismatch");
    assert_error(&f.call(Method::GET, &read, &[], Body::empty()).await, 404, "BlobNotFound");
    assert_error(&f.call(Method::HEAD, &read, &[], Body::empty()).await, 404, "BlobNotFound");

    let sig_at = write.find("sig=").unwrap() + 4;
    let flipped = if &write[sig_at..sig_at + 1] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &write[..sig_at], &write[sig_at + 1..]);
    assert_error(&f.put(&tampered, b"x").await, 403, "AuthenticationFailed");
    let other_blob = write.replace("dmf/r/file", "dmf/r/other");
    assert_error(&f.put(&other_blob, b"x").await, 403, "AuthenticationFailed");
    let unsigned = write.split('?').next().unwrap().to_owned();
    assert_error(&f.call(Method::GET, &unsigned, &[], Body::empty()).await, 403, "AuthenticationFailed");
    let past = f.urls.sign("dmf/r/file", BlobPermissions::ReadWrite, f.clock.now() - chrono::Duration::seconds(1));
    let expired = f.put(&past.unwrap(), b"x").await;
    assert_error(&expired, 403, "AuthenticationFailed");
    assert!(String::from_utf8_lossy(&expired.2).contains("expired"));
    let traversal = format!("{BASE}/blobs/dmf/../../etc/passwd?{}", write.split_once('?').unwrap().1);
    assert_error(&f.call(Method::GET, &traversal, &[], Body::empty()).await, 400, "InvalidUri");

    assert_error(&f.call(Method::PUT, &write, &[], "x").await, 400, "MissingRequiredHeader");
    assert_error(
        &f.call(Method::PUT, &write, &[("x-ms-blob-type", "AppendBlob")], "x").await,
        400,
        "InvalidHeaderValue",
    );
    let declared = [("x-ms-blob-type", "BlockBlob"), ("content-length", "11")];
    assert_error(&f.call(Method::PUT, &write, &declared, "01234567890").await, 413, "RequestBodyTooLarge");
    assert_error(&f.put(&write, b"01234567890").await, 413, "RequestBodyTooLarge");
    assert_eq!(f.urls.blobs().size("dmf/r/file").await.unwrap(), None, "nothing was kept");
    assert_error(&f.call(Method::DELETE, &write, &[], Body::empty()).await, 405, "UnsupportedHttpVerb");
    let metadata = format!("{write}&comp=metadata");
    assert_error(&f.call(Method::PUT, &metadata, &[], Body::empty()).await, 400, "InvalidQueryParameterValue");
    let twice = format!("{write}&comp=block&comp=block&blockid=AAAA");
    assert_error(&f.call(Method::PUT, &twice, &[], "x").await, 400, "InvalidQueryParameterValue");
}

#[tokio::test]
async fn blocks_and_block_lists() {
    let f = fixture(1024).await;
    let url = f.url("dmf/b/blocks.bin", BlobPermissions::ReadWrite);
    let block = |id: &[u8]| format!("{url}&comp=block&blockid={}", STANDARD.encode(id).replace('+', "%2B"));
    for (id, data) in [(&[0xfb, 0xef][..], "one-"), (b"2", "two-"), (b"3", "never")] {
        let (status, headers, _) = f.call(Method::PUT, &block(id), &[], data).await;
        assert_eq!(status, StatusCode::CREATED, "{id:?}");
        assert_eq!(headers["x-ms-request-server-encrypted"], "false");
    }
    // A '+' left unencoded (read as a space) still names the block "+++/" is base64 of.
    let raw_plus = format!("{url}&comp=block&blockid=+%2B%2B/");
    assert_eq!(f.call(Method::PUT, &raw_plus, &[], "three").await.0, StatusCode::CREATED);

    let list_url = format!("{url}&comp=blocklist");
    let list = format!(
        "<?xml version='1.0' encoding='utf-8'?>\n<BlockList><Latest>{}</Latest><Uncommitted>{}</Uncommitted><Latest>+++/</Latest></BlockList>",
        STANDARD.encode(b"2"),
        STANDARD.encode([0xfb, 0xef])
    );
    let (status, headers, _) = f.call(Method::PUT, &list_url, &[], list.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(headers.contains_key("etag") && headers.contains_key("last-modified"));
    let (_, _, body) = f.call(Method::GET, &url, &[], Body::empty()).await;
    assert_eq!(body, b"two-one-three");
    // The commit took every staged block with it.
    assert_error(&f.call(Method::PUT, &list_url, &[], list).await, 400, "InvalidBlockList");

    let committed = format!("<BlockList><Committed>{}</Committed></BlockList>", STANDARD.encode(b"2"));
    assert_error(&f.call(Method::PUT, &list_url, &[], committed).await, 400, "InvalidBlockList");
    let bomb = "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><BlockList><Latest>&a;</Latest></BlockList>";
    assert_error(&f.call(Method::PUT, &list_url, &[], bomb).await, 400, "InvalidXmlDocument");
    let huge = [("content-length", "9000000")];
    assert_error(&f.call(Method::PUT, &list_url, &huge, Body::empty()).await, 413, "RequestBodyTooLarge");
    let streamed = vec![b' '; 9_000_000];
    assert_error(&f.call(Method::PUT, &list_url, &[], streamed).await, 413, "RequestBodyTooLarge");
    assert_error(
        &f.call(Method::PUT, &format!("{url}&comp=block"), &[], "x").await,
        400,
        "MissingRequiredQueryParameter",
    );
    for bad in ["not-base64!", "", &"QUFB".repeat(30)] {
        let answer = f.call(Method::PUT, &format!("{url}&comp=block&blockid={bad}"), &[], "x").await;
        assert_error(&answer, 400, "InvalidBlockId");
    }
    let (_, _, body) = f.call(Method::GET, &url, &[], Body::empty()).await;
    assert_eq!(body, b"two-one-three", "failed lists changed nothing");
}
