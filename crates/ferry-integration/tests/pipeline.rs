//! The import service end to end below HTTP: a real store (SQLite and PostgreSQL), a real blob
//! directory, real files; enqueue, let the workers run, check tables, states and errors.

mod support;

use ferry_domain::{
    AuthorizedApp, EntityState, ErrorFilter, Job, MessageState, NewRow, Origin, Project, ProjectEntity,
};
use ferry_integration::EnqueueRequest;
use ferry_model::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use support::{APP, ATOMIC_PACKAGE_JOB, Harness, JOB, NO_COMPANY_JOB, PACKAGE_JOB, format_job, utf16le};

on_both!(
    csv_files_import_and_bad_rows_are_reported,
    packages_import_in_manifest_order,
    concurrent_clients_get_per_lane_order,
    every_format_imports_a_realistic_sample,
    hostile_inputs_are_rejected_clearly,
    all_or_nothing_jobs_roll_back_on_a_bad_row,
    all_or_nothing_packages_are_atomic_over_the_whole_message,
    enqueues_without_a_company_land_in_the_apps_default_company,
    all_or_nothing_imports_do_not_block_other_writers,
    a_messages_last_batch_is_recorded_with_its_end,
    rows_find_lookups_an_earlier_batch_wrote,
);

async fn csv_files_import_and_bad_rows_are_reported(h: Harness) {
    let groups = "CUSTOMERGROUPID,DESCRIPTION,EXTRA\r\n10,Wholesale,x\r\n20,Retail,y\r\n";
    let id = h.enqueue(JOB, Some("Customer groups"), groups.as_bytes().to_vec()).await;
    let view = h.wait(&id).await;
    assert_eq!(view.message.state, MessageState::Processed, "{:?}", view.reason);
    assert_eq!(view.message.counters.inserted, 2);
    assert!(view.message.warnings.as_deref().unwrap_or("").contains("EXTRA"), "{:?}", view.message.warnings);

    let mut customers = String::from("CUSTOMERACCOUNT,ORGANIZATIONNAME,CUSTOMERGROUPID,CREDITLIMIT\n");
    for n in 1..=20 {
        let group = if n == 5 { "99" } else { "10" };
        let limit = if n == 9 { "lots" } else { "1000.50" };
        customers.push_str(&format!("C{n:03},\"Müller, Söhne {n}\",{group},{limit}\n"));
    }
    customers.push_str("C001,Again,10,1\n");
    let id = h.enqueue(JOB, Some("CustomersV3"), customers.into_bytes()).await;
    let view = h.wait(&id).await;
    assert_eq!(view.message.state, MessageState::ProcessedWithErrors, "{:?}", view.reason);
    assert_eq!(view.message.counters.read, 21);
    assert_eq!(view.message.counters.rejected, 3);
    assert_eq!(view.message.counters.inserted, 18);
    let errors = h.service.errors(&id, &ErrorFilter { limit: 100, ..Default::default() }).await.unwrap();
    let summary: Vec<(Option<i64>, String, Option<String>)> =
        errors.iter().map(|e| (e.row, e.code.clone(), e.field.clone())).collect();
    assert!(summary.contains(&(Some(6), "lookup_missing".into(), Some("CustomerGroupId".into()))), "{summary:?}");
    assert!(summary.contains(&(Some(10), "not_a_number".into(), Some("CreditLimit".into()))), "{summary:?}");
    assert!(summary.iter().any(|(row, code, _)| *row == Some(22) && code == "duplicate_key"), "{summary:?}");
    assert_eq!(h.rows("CustomersV3").await.len(), 18);
    // Staging keeps every staged row with its source row number; rejected rows come back as a
    // file in the input's format.
    let key = h.service.staging_file(&view, 0).await.unwrap().expect("a staging file");
    let staging = std::fs::read_to_string(h.service.blobs().local_copy(&key).await.unwrap().path()).unwrap();
    let lines: Vec<serde_json::Value> = staging.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 19, "21 read; a bad number and a duplicate are not staged");
    assert_eq!(lines[0]["row"], 2);
    assert_eq!(lines[0]["values"]["CustomerAccount"], "C001");
    let (key, ext) = h.service.rejected_file(&view, 0).await.unwrap().expect("a rejected-rows file");
    assert_eq!(ext, "csv");
    let rejected = std::fs::read_to_string(h.service.blobs().local_copy(&key).await.unwrap().path()).unwrap();
    assert_eq!(rejected.lines().count(), 4, "header and three rejected rows: {rejected}");
    assert!(rejected.contains("C005") && rejected.contains("lots"), "{rejected}");

    h.stop().await;
}

async fn packages_import_in_manifest_order(h: Harness) {
    let bytes = support::package(
        &[("Customers V3", "Customers V3.csv", 2), ("Customer groups", "Customer groups.csv", 1)],
        &[
            ("Customer groups.csv", "CUSTOMERGROUPID,DESCRIPTION\n30,Export\n"),
            ("Customers V3.csv", "CUSTOMERACCOUNT,ORGANIZATIONNAME,CUSTOMERGROUPID\nP1,Pack,30\n"),
        ],
    );
    let id = h.enqueue(PACKAGE_JOB, None, bytes).await;
    let view = h.wait(&id).await;
    assert_eq!(view.message.state, MessageState::Processed, "{:?}", view.reason);
    assert_eq!(
        view.entities.iter().map(|e| e.entity.as_str()).collect::<Vec<_>>(),
        ["Customer groups", "Customers V3"]
    );
    assert_eq!(h.rows("CustomersV3").await.len(), 1);

    let broken = h.enqueue(PACKAGE_JOB, None, b"not a zip".to_vec()).await;
    let view = h.wait(&broken).await;
    assert_eq!(view.message.state, MessageState::PreProcessingError);
    assert!(view.reason.unwrap_or_default().to_lowercase().contains("zip"));
    h.stop().await;
}

/// The seed scenario: 8 clients enqueue 200 files at once for three entities (general journal,
/// customers, vendor groups); every message ends Processed, each lane ran one message at a time
/// in enqueue order, and the tables equal applying the files one by one in that order.
async fn concurrent_clients_get_per_lane_order(h: Harness) {
    let h = Arc::new(h);
    // Reference data the files look up (other lanes: wait until it is in).
    let currencies = h.enqueue(JOB, Some("Currencies"), b"CURRENCYCODE,NAME\nUSD,US dollar\n".to_vec()).await;
    let groups = h.enqueue(JOB, Some("Customer groups"), b"CUSTOMERGROUPID,DESCRIPTION\n10,Wholesale\n".to_vec()).await;
    for id in [currencies, groups] {
        assert_eq!(h.wait(&id).await.message.state, MessageState::Processed);
    }
    let file = |n: usize| -> (&'static str, String) {
        match n % 3 {
            0 => {
                let mut body = String::from(
                    "JOURNALBATCHNUMBER,LINENUMBER,TRANSDATE,ACCOUNTTYPE,ACCOUNTDISPLAYVALUE,CURRENCYCODE,TEXT\n",
                );
                for line in 0..(n % 7 + 3) {
                    body.push_str(&format!("B1,{},2026-11-22,Ledger,110110,USD,file {n}\n", (line * 3 + n) % 10 + 1));
                }
                ("General journal", body)
            }
            1 => {
                let mut body = String::from("CUSTOMERACCOUNT,ORGANIZATIONNAME,CUSTOMERGROUPID\n");
                for c in 0..(n % 5 + 2) {
                    body.push_str(&format!("C{},file {n},10\n", (c * 7 + n) % 12));
                }
                ("Customers V3", body)
            }
            _ => {
                let mut body = String::from("VENDORGROUPID,DESCRIPTION\n");
                for g in 0..(n % 4 + 1) {
                    body.push_str(&format!("V{},file {n}\n", (g + n) % 6));
                }
                ("Vendor groups", body)
            }
        }
    };
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..8 {
        let h = h.clone();
        clients.spawn(async move {
            let mut ids = Vec::new();
            for n in (client..200).step_by(8) {
                let (entity, body) = file(n);
                ids.push((n, h.enqueue(JOB, Some(entity), body.into_bytes()).await));
            }
            ids
        });
    }
    let mut sent = Vec::new();
    while let Some(ids) = clients.join_next().await {
        sent.extend(ids.unwrap());
    }
    let mut views = Vec::new();
    for (n, id) in &sent {
        let view = h.wait(id).await;
        assert_eq!(view.message.state, MessageState::Processed, "file {n}: {:?}", view.reason);
        views.push((*n, view));
    }
    views.sort_by_key(|(_, v)| v.message.seq);
    // Per lane: intervals never overlap and follow enqueue order.
    for lane in ["LedgerJournalLines", "CustomersV3", "VendorGroups"] {
        let in_lane: Vec<_> = views.iter().filter(|(_, v)| v.message.entity.as_deref() == Some(lane)).collect();
        assert!(in_lane.len() >= 66, "{lane}: {}", in_lane.len());
        for pair in in_lane.windows(2) {
            let (a, b) = (&pair[0].1.message, &pair[1].1.message);
            assert!(
                a.finished_at.unwrap() <= b.started_at.unwrap(),
                "{lane}: message {} (seq {}) ran before {} (seq {}) finished",
                b.id,
                b.seq,
                a.id,
                a.seq
            );
        }
    }
    // The tables equal the files applied one by one in enqueue order.
    let mut journal = BTreeMap::new();
    let mut customers = BTreeMap::new();
    let mut vendor_groups = BTreeMap::new();
    for (n, _) in &views {
        let (_, body) = file(*n);
        for line in body.lines().skip(1) {
            let cells: Vec<&str> = line.split(',').collect();
            match n % 3 {
                0 => journal.insert(cells[1].to_string(), cells[6].to_string()),
                1 => customers.insert(cells[0].to_string(), cells[1].to_string()),
                _ => vendor_groups.insert(cells[0].to_string(), cells[1].to_string()),
            };
        }
    }
    assert_eq!(h.rows_by_key("LedgerJournalLines", "LineNumber", "Text").await, journal);
    assert_eq!(h.rows_by_key("CustomersV3", "CustomerAccount", "OrganizationName").await, customers);
    assert_eq!(h.rows_by_key("VendorGroups", "VendorGroupId", "Description").await, vendor_groups);
    Arc::into_inner(h).expect("clients are done").stop().await;
}

async fn every_format_imports_a_realistic_sample(h: Harness) {
    // CSV-Unicode: UTF-16 LE with BOM and CRLF, as D365 writes it.
    let id = h
        .enqueue(
            &format_job(0),
            None,
            utf16le("CUSTOMERGROUPID,DESCRIPTION\r\nU1,Grüße aus Köln\r\nU2,\"Semi; colon, comma\"\r\n"),
        )
        .await;
    assert_eq!(h.wait(&id).await.message.state, MessageState::Processed);
    let groups = h.rows_by_key("CustomerGroups", "CustomerGroupId", "Description").await;
    assert_eq!(groups.get("U1").map(String::as_str), Some("Grüße aus Köln"));
    assert_eq!(groups.get("U2").map(String::as_str), Some("Semi; colon, comma"));

    let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<Document xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <VENDORGROUP><VENDORGROUPID>X1</VENDORGROUPID><DESCRIPTION>Tools &amp; more</DESCRIPTION></VENDORGROUP>
  <VENDORGROUP><VENDORGROUPID>X2</VENDORGROUPID><DESCRIPTION i:nil="true"/></VENDORGROUP>
</Document>"#;
    let id = h.enqueue(&format_job(1), None, xml.as_bytes().to_vec()).await;
    assert_eq!(h.wait(&id).await.message.state, MessageState::Processed);
    let vendor_groups = h.rows_by_key("VendorGroups", "VendorGroupId", "Description").await;
    assert_eq!(vendor_groups.get("X1").map(String::as_str), Some("Tools & more"));

    let xml = r#"<Document><CURRENCY CURRENCYCODE="EUR" NAME="Euro"/><CURRENCY CURRENCYCODE="CHF" NAME="Franken"/></Document>"#;
    let id = h.enqueue(&format_job(2), None, xml.as_bytes().to_vec()).await;
    assert_eq!(h.wait(&id).await.message.state, MessageState::Processed);
    assert_eq!(h.rows("Currencies").await.len(), 2);

    let json =
        r#"[{"CustomerGroupId": "J1", "Description": "from JSON"}, {"CustomerGroupId": "J2", "Description": null}]"#;
    let id = h.enqueue(&format_job(3), None, json.as_bytes().to_vec()).await;
    assert_eq!(h.wait(&id).await.message.state, MessageState::Processed);
    let ndjson = "{\"CustomerGroupId\": \"J3\", \"Description\": \"line\"}\n{\"CustomerGroupId\": \"J4\"}\n";
    let id = h.enqueue(&format_job(3), None, ndjson.as_bytes().to_vec()).await;
    assert_eq!(h.wait(&id).await.message.state, MessageState::Processed);

    let mut workbook = rust_xlsxwriter::Workbook::new();
    workbook.add_worksheet().set_name("Other").unwrap();
    let sheet = workbook.add_worksheet();
    sheet.set_name("Groups").unwrap();
    sheet.write(0, 0, "CUSTOMERGROUPID").unwrap();
    sheet.write(0, 1, "DESCRIPTION").unwrap();
    sheet.write(1, 0, "E1").unwrap();
    sheet.write(1, 1, "from Excel").unwrap();
    sheet.write(2, 0, 42).unwrap();
    sheet.write(2, 1, "numeric id").unwrap();
    let id = h.enqueue(&format_job(4), None, workbook.save_to_buffer().unwrap()).await;
    let view = h.wait(&id).await;
    assert_eq!(view.message.state, MessageState::Processed, "{:?}", view.reason);
    let groups = h.rows_by_key("CustomerGroups", "CustomerGroupId", "Description").await;
    assert_eq!(groups.get("E1").map(String::as_str), Some("from Excel"));
    assert_eq!(groups.get("42").map(String::as_str), Some("numeric id"));
    assert!(groups.contains_key("J1") && groups.contains_key("J4"));
    h.stop().await;
}

async fn hostile_inputs_are_rejected_clearly(h: Harness) {
    use std::io::Write;
    let (xml_job, json_job) = (format_job(1), format_job(3));
    let cases: Vec<(&str, Option<&str>, Vec<u8>, &str)> = vec![
        (JOB, Some("Customer groups"), b"CUSTOMERGROUPID,DESCRIPTION\n10,caf\xe9\n".to_vec(), "utf-8"),
        (
            &xml_job,
            None,
            br#"<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><Document><V><VENDORGROUPID>&x;</VENDORGROUPID></V></Document>"#.to_vec(),
            "dtd",
        ),
        (JOB, Some("Customer groups"), b"DESCRIPTION\nno key column\n".to_vec(), "customergroupid"),
        (&json_job, None, b"[{\"CustomerGroupId\": ".to_vec(), "json"),
    ];
    for (job, entity, body, needle) in cases {
        let id = h.enqueue(job, entity, body).await;
        let view = h.wait(&id).await;
        assert_eq!(view.message.state, MessageState::PreProcessingError, "{needle}: {:?}", view.reason);
        let reason = view.reason.unwrap_or_default().to_lowercase();
        assert!(reason.contains(needle), "reason should mention {needle}: {reason}");
    }
    // A field over the size cap rejects its row only.
    let long = "x".repeat(2 << 20);
    let id = h
        .enqueue(
            JOB,
            Some("Customer groups"),
            format!("CUSTOMERGROUPID,DESCRIPTION\nL1,{long}\nL2,fine\n").into_bytes(),
        )
        .await;
    let view = h.wait(&id).await;
    assert_eq!(view.message.state, MessageState::ProcessedWithErrors, "{:?}", view.reason);
    assert_eq!(view.message.counters.inserted, 1);

    // Zip bomb and path traversal in packages.
    let zip_with = |name: &str, body: Vec<u8>| {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("Manifest.xml", opts).unwrap();
        zip.write_all(b"<DataManagementPackageManifest><PackageEntityList><DataManagementPackageEntityData><EntityName>Customer groups</EntityName><InputFilePath>g.csv</InputFilePath><SourceFormat>CSV</SourceFormat></DataManagementPackageEntityData></PackageEntityList></DataManagementPackageManifest>").unwrap();
        zip.start_file(name, opts).unwrap();
        zip.write_all(&body).unwrap();
        zip.finish().unwrap().into_inner()
    };
    let bomb = zip_with("g.csv", vec![b'0'; 300 << 20]);
    let id = h.enqueue(PACKAGE_JOB, None, bomb).await;
    let view = h.wait(&id).await;
    assert_eq!(view.message.state, MessageState::PreProcessingError);
    assert!(view.reason.clone().unwrap_or_default().contains("zip bomb"), "{:?}", view.reason);
    let traversal = zip_with("../../etc/g.csv", b"CUSTOMERGROUPID\n1\n".to_vec());
    let id = h.enqueue(PACKAGE_JOB, None, traversal).await;
    let view = h.wait(&id).await;
    assert_eq!(view.message.state, MessageState::PreProcessingError);
    assert!(view.reason.clone().unwrap_or_default().contains(".."), "{:?}", view.reason);

    // The service keeps serving.
    let id = h.enqueue(JOB, Some("Customer groups"), b"CUSTOMERGROUPID\nOK\n".to_vec()).await;
    assert_eq!(h.wait(&id).await.message.state, MessageState::Processed);
    h.stop().await;
}

async fn all_or_nothing_jobs_roll_back_on_a_bad_row(h: Harness) {
    let body = utf16le(
        "CUSTOMERGROUPID,DESCRIPTION\r\nA1,fine\r\nA2,this description is far longer than the sixty characters allowed\r\n",
    );
    let id = h.enqueue(&format_job(0), None, body).await;
    let view = h.wait(&id).await;
    assert_eq!(view.message.state, MessageState::ProcessedWithErrors);
    assert!(view.reason.clone().unwrap_or_default().contains("rolled back"), "{:?}", view.reason);
    assert!(h.rows("CustomerGroups").await.is_empty(), "nothing was imported");
    let errors = h.service.errors(&id, &ErrorFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].row, errors[0].code.as_str()), (Some(3), "string_too_long"));
    let id = h.enqueue(&format_job(0), None, utf16le("CUSTOMERGROUPID,DESCRIPTION\r\nA1,fine\r\nA2,ok\r\n")).await;
    assert_eq!(h.wait(&id).await.message.state, MessageState::Processed);
    assert_eq!(h.rows("CustomerGroups").await.len(), 2);
    h.stop().await;
}

/// A package for an all-or-nothing job: its customer groups are valid, one of its customers is
/// not. Neither entity is written (the groups imported first are rolled back too), and the
/// reason says so; once the bad row is fixed, the customers' lookups find the groups the same
/// package brings.
async fn all_or_nothing_packages_are_atomic_over_the_whole_message(h: Harness) {
    let entities = [("Customer groups", "groups.csv", 1), ("Customers V3", "customers.csv", 2)];
    let groups = "CUSTOMERGROUPID,DESCRIPTION\n40,Atomic\n41,Also atomic\n";
    let bad = "CUSTOMERACCOUNT,ORGANIZATIONNAME,CUSTOMERGROUPID,CREDITLIMIT\nQ1,Fine,40,1\nQ2,Bad,41,lots\n";
    let id = h
        .enqueue(
            ATOMIC_PACKAGE_JOB,
            None,
            support::package(&entities, &[("groups.csv", groups), ("customers.csv", bad)]),
        )
        .await;
    let view = h.wait(&id).await;
    assert_eq!(view.message.state, MessageState::ProcessedWithErrors, "{:?}", view.reason);
    let reason = view.reason.clone().unwrap_or_default();
    assert!(reason.contains("rolled back") && reason.contains("nothing was imported"), "{reason}");
    assert_eq!(h.count("CustomerGroups").await, 0, "the entity before the failing one is rolled back too");
    assert_eq!(h.count("CustomersV3").await, 0);
    assert_eq!(view.message.counters.inserted, 0, "the counters say nothing was written");
    assert!(view.entities.iter().all(|e| e.target == EntityState::Error), "{:?}", view.entities);

    let good = "CUSTOMERACCOUNT,ORGANIZATIONNAME,CUSTOMERGROUPID,CREDITLIMIT\nQ1,Fine,40,1\nQ2,Good,41,2\n";
    let id = h
        .enqueue(
            ATOMIC_PACKAGE_JOB,
            None,
            support::package(&entities, &[("groups.csv", groups), ("customers.csv", good)]),
        )
        .await;
    let view = h.wait(&id).await;
    assert_eq!(view.message.state, MessageState::Processed, "{:?}", view.reason);
    assert_eq!((h.count("CustomerGroups").await, h.count("CustomersV3").await), (2, 2));
    assert_eq!(view.message.counters.inserted, 4);
    h.stop().await;
}

/// The company of an enqueue: the request's, else the job's, else the enqueuing application's
/// default company, else `import.default_company`.
async fn enqueues_without_a_company_land_in_the_apps_default_company(h: Harness) {
    let cases = [
        (JOB, Some("demf"), Some("gbsi"), "demf"),
        (JOB, None, Some("gbsi"), "usmf"),
        (NO_COMPANY_JOB, None, Some("gbsi"), "gbsi"),
        (NO_COMPANY_JOB, None, None, "dat"),
    ];
    for (n, (job, requested, app_default, expected)) in cases.into_iter().enumerate() {
        let req = EnqueueRequest {
            activity_id: job.into(),
            entity: Some("Customer groups".into()),
            company: requested.map(str::to_owned),
            external_id: None,
            client_id: support::APP.into(),
            app_default_company: app_default.map(str::to_owned),
        };
        let body = format!("CUSTOMERGROUPID,DESCRIPTION\nCO{n},Company case {n}\n");
        let id = h.enqueue_request(req, body.into_bytes()).await;
        let view = h.wait(&id).await;
        assert_eq!(view.message.company.as_deref(), Some(expected), "case {n}");
        assert_eq!(view.message.state, MessageState::Processed, "case {n}: {:?}", view.reason);
    }
    h.stop().await;
}

/// While an all-or-nothing message of many rows is read and validated, other writers go on: a
/// writer keeps committing rows of another entity, and several of its writes finish before the
/// import has written anything. (`run_logs.rs` shows the import reads nothing inside its
/// write transaction.)
async fn all_or_nothing_imports_do_not_block_other_writers(h: Harness) {
    let mut body = String::with_capacity(1_000_000);
    body.push_str("CUSTOMERGROUPID,DESCRIPTION\r\n");
    for n in 0..30_000 {
        body.push_str(&format!("G{n:06},group number {n}\r\n"));
    }
    let id = h.enqueue(&format_job(0), None, utf16le(&body)).await;
    h.wait_processing(&id).await;
    let currencies = h.catalog.by_collection("Currencies").unwrap().clone();
    let (code, _) = currencies.field("CurrencyCode").unwrap();
    let mut before_import_wrote = 0;
    for n in 0..50 {
        let mut values = vec![Value::Null; currencies.fields.len()];
        values[code] = Value::String(format!("W{n:02}"));
        h.store.insert(&currencies, vec![NewRow { company: None, values }]).await.unwrap();
        if h.count("CustomerGroups").await > 0 || h.view(&id).await.message.state.is_final() {
            break;
        }
        before_import_wrote += 1;
    }
    assert!(before_import_wrote >= 3, "only {before_import_wrote} writes finished while the import read its file");
    let view = h.wait(&id).await;
    assert_eq!(view.message.state, MessageState::Processed, "{:?}", view.reason);
    assert_eq!(h.count("CustomerGroups").await, 30_000);
    h.stop().await;
}

/// The last batch of a message goes in with its end (one transaction): the results, counts and
/// staging file are those of every batch, the first ones written on their own before.
async fn a_messages_last_batch_is_recorded_with_its_end(h: Harness) {
    let id = h.enqueue(JOB, Some("Customer groups"), b"CUSTOMERGROUPID,DESCRIPTION\n10,One\n".to_vec()).await;
    let view = h.wait(&id).await;
    assert_eq!(view.message.state, MessageState::Processed, "{:?}", view.reason);
    assert_eq!((view.message.counters.read, view.message.counters.inserted), (1, 1));
    assert_eq!(view.entities.len(), 1);
    let result = &view.entities[0];
    assert_eq!((result.rows_read, result.rows_staged, result.rows_inserted), (1, 1, 1), "{result:?}");
    assert_eq!((result.staging, result.target), (EntityState::Finished, EntityState::Finished));
    assert!(result.finished_at.is_some());
    assert!(h.service.staging_file(&view, 0).await.unwrap().is_some(), "the staging file is kept");

    // Ten rows in batches of seven: the first batch alone, the last three with the end.
    let mut groups = String::from("CUSTOMERGROUPID,DESCRIPTION\n");
    for n in 20..30 {
        groups.push_str(&format!("{n},Group {n}\n"));
    }
    for (inserted, unchanged) in [(10, 0), (0, 10)] {
        let id = h.enqueue(JOB, Some("Customer groups"), groups.clone().into_bytes()).await;
        let view = h.wait(&id).await;
        assert_eq!(view.message.state, MessageState::Processed, "{:?}", view.reason);
        let c = view.message.counters;
        assert_eq!((c.read, c.inserted, c.unchanged), (10, inserted, unchanged));
        let result = &view.entities[0];
        assert_eq!((result.rows_read, result.rows_inserted, result.rows_unchanged), (10, inserted, unchanged));
    }
    assert_eq!(h.count("CustomerGroups").await, 11);
    h.stop().await;
}

/// A row may look up another row of its own file (an account's parent account), in its own
/// batch or an earlier one — which may still be committing while the next batch's lookups are
/// read: the row is imported, not rejected. A parent that is nowhere is still a missing lookup.
async fn rows_find_lookups_an_earlier_batch_wrote(h: Harness) {
    const ACCOUNTS_JOB: &str = "b2c3d4e5-0000-4000-8000-000000000003";
    let entity = ProjectEntity { format: "CSV".into(), ..ProjectEntity::new("Account") };
    h.service.put_project(Project::new("Accounts", vec![entity]), Origin::Api).await.unwrap();
    let job = Job {
        apps: vec![AuthorizedApp { client_id: APP.into(), enabled: true }],
        ..Job::new(ACCOUNTS_JOB, "Accounts")
    };
    h.service.put_job(job, Origin::Api).await.unwrap();
    // In batches of 7 rows: each account's parent is the account before it (the first row of a
    // batch looks up the last row of the batch before); the last account's parent does not exist.
    let id = |n: u32| format!("00000000-0000-4000-8000-{n:012}");
    let mut csv = String::from("ACCOUNTID,NAME,PARENTACCOUNTID\n");
    for n in 1..=60 {
        let parent = match n {
            1 => String::new(),
            60 => id(999),
            n => id(n - 1),
        };
        csv.push_str(&format!("{},Account {n},{parent}\n", id(n)));
    }
    let message = h.enqueue(ACCOUNTS_JOB, Some("Account"), csv.into_bytes()).await;
    let view = h.wait(&message).await;
    assert_eq!(view.message.state, MessageState::ProcessedWithErrors, "{:?}", view.reason);
    assert_eq!((view.message.counters.inserted, view.message.counters.rejected), (59, 1));
    let errors = h.service.errors(&message, &ErrorFilter { limit: 10, ..Default::default() }).await.unwrap();
    let summary: Vec<(Option<i64>, &str)> = errors.iter().map(|e| (e.row, e.code.as_str())).collect();
    assert_eq!(summary, [(Some(61), "lookup_missing")]);
    assert_eq!(h.count("accounts").await, 59);
}
