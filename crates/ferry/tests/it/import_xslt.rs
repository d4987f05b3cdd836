//! XSLT on recurring import through a real server: a vendor's own XML turned into ferry's
//! XML-Element shape by a stylesheet in the data project (run in the `xslt-worker` child
//! process); an invalid stylesheet refused when the project is saved; a stylesheet that tries to
//! read a file fails its message with a clear reason while the server keeps serving.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Backend, TestServer, expect_json, expect_status, on_both_backends};

const JOB: &str = "a1b2c3d4-0000-4000-8000-00000000abcd";

on_both_backends!(xslt_transforms_vendor_xml_before_import);

const STYLESHEET: &str = r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <Document>
      <xsl:for-each select="/Partners/Partner[@type='vendor-group']">
        <VENDORGROUP>
          <VENDORGROUPID><xsl:value-of select="concat('VG', format-number(position(), '00'))"/></VENDORGROUPID>
          <DESCRIPTION><xsl:value-of select="concat(Name, ' (', sum(Limit), ')')"/></DESCRIPTION>
        </VENDORGROUP>
      </xsl:for-each>
    </Document>
  </xsl:template>
</xsl:stylesheet>"#;

const VENDOR_XML: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Partners>
  <Partner type="vendor-group"><Name>Tools</Name><Limit>10</Limit><Limit>5</Limit></Partner>
  <Partner type="customer"><Name>Ignored</Name></Partner>
  <Partner type="vendor-group"><Name>Größen &amp; Maße</Name><Limit>7</Limit></Partner>
</Partners>"#;

async fn wait_final(server: &TestServer, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = expect_json(server.get(&format!("/api/messages/{id}"), token).await, 200).await;
        if m["final"] == true {
            return m;
        }
        assert!(Instant::now() < deadline, "message {id} not final: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn xslt_transforms_vendor_xml_before_import(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, "[import]\npoll_interval_ms = 50\n", &[]).await else { return };
    let admin = server.admin_token().await;
    let writer = server.token().await;
    let put = |path: String, body: Value| {
        let request = server.http.put(server.url(&path)).bearer_auth(&admin).json(&body);
        async move { request.send().await.expect("PUT") }
    };

    let invalid = json!({ "entities": [{ "entity": "Vendor groups", "format": "XML-Element", "xslt": "<xsl:stylesheet version='1.0' xmlns:xsl='http://www.w3.org/1999/XSL/Transform'><xsl:template match='/'><xsl:value-of select='(('/></xsl:template></xsl:stylesheet>" }] });
    let error = expect_json(put("/api/admin/projects/bad".into(), invalid).await, 400).await;
    assert!(error.to_string().contains("XSLT"), "{error}");

    let project = json!({ "entities": [{ "entity": "Vendor groups", "format": "XML-Element", "xslt": STYLESHEET }] });
    expect_status(put("/api/admin/projects/vendors".into(), project).await, 201).await;
    let job = json!({ "project": "vendors", "apps": [{ "client_id": "it-writer" }], "company": "usmf" });
    expect_status(put(format!("/api/admin/jobs/{JOB}"), job).await, 201).await;

    let enqueue = |body: &'static str| {
        let request = server
            .http
            .post(server.url(&format!("/api/connector/enqueue/{JOB}?entity=Vendor%20groups")))
            .bearer_auth(&writer)
            .body(body);
        async move { request.send().await.expect("enqueue").json::<String>().await.expect("message id") }
    };
    let id = enqueue(VENDOR_XML).await;
    let m = wait_final(&server, &writer, &id).await;
    assert_eq!(m["state"], "Processed", "{m}");
    let groups = expect_json(server.get("/data/VendorGroups?$orderby=VendorGroupId", &writer).await, 200).await;
    let got: Vec<(String, String)> = groups["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["VendorGroupId"].as_str().unwrap().to_owned(), g["Description"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        got,
        [("VG01".to_owned(), "Tools (15)".to_owned()), ("VG02".to_owned(), "Größen & Maße (7)".to_owned())]
    );

    // Input with an external entity is refused by the transform, not read.
    let id = enqueue(r#"<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]><Partners><Partner type="vendor-group"><Name>&x;</Name></Partner></Partners>"#).await;
    let m = wait_final(&server, &writer, &id).await;
    assert_eq!(m["state"], "PreProcessingError", "{m}");
    let reason = m["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("XSLT") && !reason.contains("root:"), "{reason}");

    // The server keeps serving.
    let id = enqueue(VENDOR_XML).await;
    assert_eq!(wait_final(&server, &writer, &id).await["state"], "Processed");
    server.stop().await;
}
