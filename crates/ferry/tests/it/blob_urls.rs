//! Signed blob URLs end to end, on both store backends: the real Azure Storage SDK for Python
//! (`blob_urls_sdk.py`, run with `FERRY_TEST_PYTHON`, else `python3` on PATH) uploads in blocks
//! and downloads in ranges through URLs the server's `BlobUrls` signed; plain HTTP checks what a
//! RIS-style client sends and every refusal. Without the SDK the SDK test prints a loud SKIPPED
//! line, or fails when `CI` is set.

use std::process::Command;
use std::time::Duration;

use ferry_api::BlobPermissions;

use crate::support::{Backend, TestServer, expect_status, on_both_backends, python_with_sdk};

const HOUR: Duration = Duration::from_secs(3600);

on_both_backends!(the_azure_sdk_uploads_in_blocks_and_downloads_in_ranges, plain_http_clients_and_refusals);

/// A fresh `dmf/<uuid>/<name>` key.
fn key(name: &str) -> String {
    ferry_api::dmf_blob_key(uuid::Uuid::new_v4(), name)
}

async fn the_azure_sdk_uploads_in_blocks_and_downloads_in_ranges(backend: Backend) {
    let Some(python) = python_with_sdk() else { return };
    let Some(server) = TestServer::start(backend).await else { return };
    let urls = server.blob_urls();
    let package = key("package.zip");
    let write = urls.sign_for(&package, BlobPermissions::ReadWrite, HOUR).unwrap();
    let read = urls.sign_for(&package, BlobPermissions::Read, HOUR).unwrap();
    let small = urls.sign_for(&key("small.zip"), BlobPermissions::ReadWrite, HOUR).unwrap();
    let size: u64 = 3 * 1024 * 1024 + 12_345;

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/blob_urls_sdk.py");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python).arg(script).args([&write, &read, &small, &size.to_string()]).output()
    })
    .await
    .unwrap()
    .expect("run the SDK script");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the SDK script failed ({}):\n{stdout}\n{stderr}", output.status);
    // Shown with --nocapture: what the SDK did.
    println!("{stdout}");
    let seen = |name: &str| -> String {
        let prefix = format!("{name}=");
        let line = stdout.lines().find(|l| l.starts_with(&prefix));
        line.unwrap_or_else(|| panic!("no {name} in:\n{stdout}"))[prefix.len()..].to_owned()
    };
    let count = |name: &str| seen(name).parse::<u64>().unwrap();

    // Blocks of 256 KiB: thirteen Put Blocks, one Put Block List.
    assert!(count("put_block") >= 12, "{stdout}");
    assert_eq!(count("put_block_list"), 1, "{stdout}");
    assert_eq!(count("properties_size"), size);
    assert_eq!(seen("properties_block_blob"), "True");
    assert_eq!(seen("properties_etag"), seen("upload_etag"), "the ETag of the commit is the blob's");
    // 200 KiB first, then chunks of 300 KiB, each after the first conditional on the ETag.
    assert!(count("ranged_gets") >= 10, "{stdout}");
    assert!(count("conditional_gets") >= 9, "{stdout}");
    assert_eq!((count("download_size"), seen("download_matches").as_str()), (size, "True"));
    assert_eq!(seen("download_etag"), seen("upload_etag"));
    assert_eq!(seen("overwrite_refused"), "True", "If-None-Match: * on an existing blob");
    assert_eq!(seen("small_download"), "small package");
    assert_eq!(seen("read_only_refused"), "True");
    assert_eq!(count("redirects"), 0);

    // What the SDK uploaded is in the blob store, byte for byte.
    let stored = urls.blobs().local_copy(&package).await.unwrap();
    let bytes = std::fs::read(stored.path()).unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, seen("download_sha256"));
    server.stop().await;
}

async fn plain_http_clients_and_refusals(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let urls = server.blob_urls();
    let http = &server.http;
    let package = key("ris-upload");
    let write = urls.sign_for(&package, BlobPermissions::ReadWrite, HOUR).unwrap();
    let read = urls.sign_for(&package, BlobPermissions::Read, HOUR).unwrap();
    assert!(write.starts_with(&format!("{}/blobs/dmf/", server.base)), "{write}");

    // What RIS sends: no Authorization, x-ms-date, x-ms-blob-type, Overwrite.
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let put = http
        .put(&write)
        .header("x-ms-date", "Mon, 05 Jan 2026 10:00:00 GMT")
        .header("x-ms-blob-type", "BlockBlob")
        .header("Overwrite", "T")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 201);
    for name in ["etag", "last-modified", "x-ms-request-id", "x-ms-version", "x-ms-request-server-encrypted"] {
        assert!(put.headers().contains_key(name), "Put Blob answers {name}: {:?}", put.headers());
    }
    let etag = put.headers()["etag"].to_str().unwrap().to_owned();

    let get = http.get(&read).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 200);
    assert_eq!(get.headers()["etag"], etag.as_str(), "the ETag is stable while the blob is unchanged");
    assert_eq!(get.headers()["x-ms-blob-type"], "BlockBlob");
    assert_eq!(get.bytes().await.unwrap(), data);

    let head = http.head(&read).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(head.headers()["content-length"], "100000");
    assert_eq!(head.headers()["accept-ranges"], "bytes");
    assert_eq!(head.headers()["etag"], etag.as_str());
    assert!(head.headers().contains_key("last-modified"));

    let ranged = http.get(&read).header("Range", "bytes=1000-1999").send().await.unwrap();
    assert_eq!(ranged.status().as_u16(), 206);
    assert_eq!(ranged.headers()["content-range"], "bytes 1000-1999/100000");
    assert_eq!(ranged.bytes().await.unwrap(), data[1000..2000]);

    // Refusals, each in Azure's XML shape.
    let refused = |response: reqwest::Response, status: u16, code: &'static str| async move {
        let error_code = response.headers().get("x-ms-error-code").map(|v| v.to_str().unwrap().to_owned());
        let body = expect_status(response, status).await;
        assert_eq!(error_code.as_deref(), Some(code), "{body}");
        assert!(body.contains(&format!("<Error><Code>{code}</Code>")), "{body}");
    };
    let sig_at = write.find("sig=").unwrap() + 4;
    let flipped = if &write[sig_at..sig_at + 1] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &write[..sig_at], &write[sig_at + 1..]);
    refused(http.get(&tampered).send().await.unwrap(), 403, "AuthenticationFailed").await;
    let other_blob = write.replace(&package, &key("other"));
    refused(http.get(&other_blob).send().await.unwrap(), 403, "AuthenticationFailed").await;
    let more_rights = read.replace("sp=r&", "sp=rw&");
    let upgraded = http.put(&more_rights).header("x-ms-blob-type", "BlockBlob").body("x").send().await.unwrap();
    refused(upgraded, 403, "AuthenticationFailed").await;
    let past = urls.sign(&package, BlobPermissions::ReadWrite, chrono::Utc::now() - chrono::Duration::minutes(1));
    refused(http.get(past.unwrap()).send().await.unwrap(), 403, "AuthenticationFailed").await;
    let as_writer = http.put(&read).header("x-ms-blob-type", "BlockBlob").body("overwritten").send().await.unwrap();
    refused(as_writer, 403, "AuthorizationPermissionMismatch").await;
    let unsigned = format!("{}/blobs/{package}", server.base);
    refused(http.get(&unsigned).send().await.unwrap(), 403, "AuthenticationFailed").await;
    let missing = urls.sign_for(&key("missing.zip"), BlobPermissions::Read, HOUR).unwrap();
    refused(http.get(&missing).send().await.unwrap(), 404, "BlobNotFound").await;
    let stale = http.get(&read).header("If-Match", "\"0xSTALE\"").send().await.unwrap();
    refused(stale, 412, "ConditionNotMet").await;
    let past_end = http.get(&read).header("x-ms-range", "bytes=100000-100010").send().await.unwrap();
    refused(past_end, 416, "InvalidRange").await;
    let too_many = format!("{write}&comp=blocklist");
    let list = format!("<BlockList>{}</BlockList>", "<Latest>AAAA</Latest>".repeat(50_001));
    refused(http.put(&too_many).body(list).send().await.unwrap(), 409, "BlockCountExceedsLimit").await;
    let bad_id = format!("{write}&comp=block&blockid=%2E%2E%2F%2E%2E");
    refused(http.put(&bad_id).body("x").send().await.unwrap(), 400, "InvalidBlockId").await;

    // The refusals changed nothing, and a bearer token is neither needed nor enough.
    let token = server.token().await;
    let after = http.get(&read).bearer_auth(&token).send().await.unwrap();
    assert_eq!(after.headers()["etag"], etag.as_str());
    assert_eq!(after.bytes().await.unwrap(), data);
    refused(http.get(&unsigned).bearer_auth(&token).send().await.unwrap(), 403, "AuthenticationFailed").await;
    server.stop().await;
}
