//! JSON: arrays and NDJSON, exact numbers, flat-record rules, broken structure and size caps.

use super::{Generated, assert_kind, cols, fatal, n, read_all, t, utf16};
use ferry_domain::DataFormat;
use ferry_formats::{Cell, FormatErrorKind, Limits, open_reader};
use std::sync::atomic::Ordering;

const ARRAY: &str = r#"[
  {"CUSTOMERACCOUNT": "US-001", "NAME": "Contoso, Ltd.", "CUSTOMERGROUPID": "10", "CREDITLIMIT": 5000},
  {"CUSTOMERACCOUNT": "DE-003", "NAME": "M\u00fcller & S\u00f8n \"[x]\" {y}", "CREDITLIMIT": 12345678901234567890.123456789,
   "BLOCKED": false, "EMAIL": null},
  {"name": "case-insensitive", "CREDITLIMIT": -1.5e3, "BLOCKED": true}
]
"#;

#[test]
fn reads_an_array_keeping_every_digit() {
    let out = read_all(&DataFormat::Json, ARRAY.as_bytes().to_vec(), &Limits::default()).unwrap();
    assert_eq!(out.columns, cols(&["CUSTOMERACCOUNT", "NAME", "CUSTOMERGROUPID", "CREDITLIMIT", "BLOCKED", "EMAIL"]));
    let records = out.records();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].row, 1);
    assert_eq!(records[0].cells, vec![t("US-001"), t("Contoso, Ltd."), t("10"), n("5000")]);
    assert_eq!(
        records[1].cells,
        vec![
            t("DE-003"),
            t("Müller & Søn \"[x]\" {y}"),
            Cell::Null,
            n("12345678901234567890.123456789"),
            Cell::Bool(false),
            Cell::Null
        ]
    );
    assert_eq!(records[2].row, 3);
    assert_eq!(
        records[2].cells,
        vec![Cell::Null, t("case-insensitive"), Cell::Null, n("-1.5e3"), Cell::Bool(true), Cell::Null]
    );
}

#[test]
fn reads_ndjson_with_blank_lines_and_pretty_objects() {
    let text = "{\"A\": 1, \"B\": \"x\"}\r\n\r\n{\"A\": 2}\n{\n  \"B\": \"y\",\n  \"C\": 0.1000\n}\n";
    let out = read_all(&DataFormat::Json, text.as_bytes().to_vec(), &Limits::default()).unwrap();
    assert_eq!(out.columns, cols(&["A", "B", "C"]));
    let records = out.records();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].cells, vec![n("1"), t("x")]);
    assert_eq!(records[1].cells, vec![n("2"), Cell::Null]);
    assert_eq!((records[2].row, records[2].cells.clone()), (3, vec![Cell::Null, t("y"), n("0.1000")]));
}

#[test]
fn reads_utf16_and_empty_files() {
    let out = read_all(&DataFormat::Json, utf16(ARRAY, true), &Limits::default()).unwrap();
    assert_eq!(out.records().len(), 3);
    for empty in ["", "  \n", "[]", " [ ] \n"] {
        let out = read_all(&DataFormat::Json, empty.as_bytes().to_vec(), &Limits::default()).unwrap();
        assert!(out.items.is_empty(), "{empty:?}");
    }
}

#[test]
fn nested_values_and_non_objects_are_record_errors() {
    let text = r#"[{"A": 1, "ADDRESS": {"CITY": "Oslo"}}, {"A": [1, 2]}, 42, "text", {"A": 2}, {"A": 3, "a": 4}]"#;
    let out = read_all(&DataFormat::Json, text.as_bytes().to_vec(), &Limits::default()).unwrap();
    assert_eq!(out.items.len(), 6);
    let nested = out.items[0].clone().unwrap_err();
    assert_kind(&nested, FormatErrorKind::InvalidRecord);
    assert_eq!((nested.row, nested.column.as_deref()), (Some(1), Some("ADDRESS")));
    assert!(nested.message.contains("nested object"), "{nested}");
    assert!(out.items[1].clone().unwrap_err().message.contains("nested array"));
    let number = out.items[2].clone().unwrap_err();
    assert_kind(&number, FormatErrorKind::InvalidRecord);
    assert!(number.message.contains("not an object"), "{number}");
    assert_eq!(number.row, Some(3));
    assert!(out.items[3].is_err());
    assert_eq!(out.items[4].clone().unwrap().cells, vec![n("2"), Cell::Null]);
    let twice = out.items[5].clone().unwrap_err();
    assert_kind(&twice, FormatErrorKind::InvalidRecord);
    assert!(twice.message.contains("twice"), "{twice}");
}

#[test]
fn malformed_json_is_fatal() {
    let cases = [
        r#"[{"A": 1}, {"A": 2,}]"#,
        r#"[{"A": 1} {"A": 2}]"#,
        r#"[{"A": 1},]"#,
        r#"[{"A": 1}"#,
        r#"[{"A": "unterminated}]"#,
        r#"[{"A": 1}] trailing"#,
        r#"{"A": 1}, {"A": 2}"#,
        r#"{"A": tru}"#,
        r#"{"A": 1]"#,
        "nonsense",
        r#"[{"A": 1}, }]"#,
    ];
    for case in cases {
        let error = fatal(read_all(&DataFormat::Json, case.as_bytes().to_vec(), &Limits::default()));
        assert_kind(&error, FormatErrorKind::Malformed);
        assert!(error.is_fatal());
    }
    let out = read_all(&DataFormat::Json, br#"[{"A": 1}, {"A": 2,}]"#.to_vec(), &Limits::default()).unwrap();
    assert_eq!(out.items[0].clone().unwrap().cells, vec![n("1")]);
    assert_eq!(out.items[1].clone().unwrap_err().row, Some(2));
}

#[test]
fn fields_and_records_over_the_caps() {
    let limits = Limits { max_field_bytes: 8, ..Limits::default() };
    let text = r#"[{"A": "far too long"}, {"A": "short"}]"#;
    let out = read_all(&DataFormat::Json, text.as_bytes().to_vec(), &limits).unwrap();
    let error = out.items[0].clone().unwrap_err();
    assert_kind(&error, FormatErrorKind::FieldTooLarge);
    assert_eq!(error.column.as_deref(), Some("A"));
    assert_eq!(out.items[1].clone().unwrap().cells, vec![t("short")]);

    let limits = Limits { max_record_bytes: 1 << 20, ..Limits::default() };
    let input = Generated::new(br#"[{"A": ""#, b'x', 64 << 20);
    let read = input.read.clone();
    let mut reader = open_reader(&DataFormat::Json, Box::new(input), &limits).unwrap();
    let error = reader.next_record().unwrap().unwrap_err();
    assert_kind(&error, FormatErrorKind::LimitExceeded);
    assert_eq!(error.row, Some(1));
    assert!(reader.next_record().is_none());
    assert!(read.load(Ordering::Relaxed) < 2 << 20, "read {} bytes", read.load(Ordering::Relaxed));

    let deep = format!("[{{\"A\": {}{}}}]", "[".repeat(200), "]".repeat(200));
    assert_kind(&fatal(read_all(&DataFormat::Json, deep.into_bytes(), &Limits::default())), FormatErrorKind::Malformed);
}

#[test]
fn invalid_utf8_is_fatal() {
    let error = fatal(read_all(&DataFormat::Json, b"[{\"A\": \"M\xFCller\"}]".to_vec(), &Limits::default()));
    assert_kind(&error, FormatErrorKind::InvalidEncoding);
    assert!(error.message.contains("byte offset 9"), "{error}");
}
