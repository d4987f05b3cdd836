//! Rejected rows: written in each format, then read back with that format's reader.

use super::{Outcome, cols, n, read_all, t};
use ferry_domain::DataFormat;
use ferry_formats::writer::RecordWriter;
use ferry_formats::{Cell, Limits, SourceRecord};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// A `Write` whose bytes the test can take afterwards.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes `records` (with the columns each was read with) and reads the file back.
fn round_trip(format: &DataFormat, records: &[(Vec<String>, SourceRecord)]) -> Outcome {
    let out = Shared::default();
    let mut writer = RecordWriter::new(format, Box::new(out.clone())).unwrap();
    for (columns, record) in records {
        writer.write_record(columns, record).unwrap();
    }
    writer.finish().unwrap();
    let bytes = out.0.lock().unwrap().clone();
    read_all(format, bytes, &Limits::default()).unwrap()
}

fn record(cells: Vec<Cell>) -> SourceRecord {
    SourceRecord { row: 1, cells }
}

fn tricky() -> Vec<Cell> {
    vec![t("DE-003"), t("Müller & Søn, \"quoted\" <tag>\r\nsecond line\ttab"), t(""), t("  spaces kept  ")]
}

#[test]
fn csv_round_trips_with_its_delimiter() {
    let columns = cols(&["CUSTOMERACCOUNT", "NAME", "CUSTOMERGROUPID", "NOTE"]);
    for delimiter in [b',', b';', b'\t'] {
        let format = DataFormat::Csv { delimiter };
        let rows = vec![
            (columns.clone(), record(tricky())),
            (columns.clone(), record(vec![t("US-1"), t("a"), t("b"), t("c")])),
        ];
        let back = round_trip(&format, &rows);
        assert_eq!(back.columns, columns);
        let records = back.records();
        assert_eq!(records[0].cells, tricky());
        assert_eq!(records[1].cells, rows[1].1.cells);
    }
}

#[test]
fn xml_round_trips_in_both_styles_with_growing_columns() {
    let first = cols(&["CUSTOMERACCOUNT", "NAME", "CUSTOMERGROUPID", "NOTE"]);
    let mut second = first.clone();
    second.push("EMAIL".to_string());
    for format in [DataFormat::XmlElement, DataFormat::XmlAttribute] {
        let rows = vec![
            (first.clone(), record(tricky())),
            (second.clone(), record(vec![t("US-1"), Cell::Null, t("10"), t("x"), t("a@b.c")])),
        ];
        let back = round_trip(&format, &rows);
        assert_eq!(back.columns, second);
        let records = back.records();
        assert_eq!(records[0].cells[..4], tricky()[..]);
        assert_eq!(records[1].cells, rows[1].1.cells);
    }
}

#[test]
fn json_round_trips_with_exact_numbers() {
    let first = cols(&["CUSTOMERACCOUNT", "CREDITLIMIT", "BLOCKED", "EMAIL"]);
    let rows = vec![
        (first.clone(), record(vec![t("DE-003"), n("12345678901234567890.123456789"), Cell::Bool(true), Cell::Null])),
        (first.clone(), record(vec![t("US-\"1\"\n"), n("-1.5e3"), Cell::Bool(false), t("a@b.c")])),
    ];
    let back = round_trip(&DataFormat::Json, &rows);
    assert_eq!(back.columns, first);
    assert_eq!(
        back.records().iter().map(|r| r.cells.clone()).collect::<Vec<_>>(),
        vec![rows[0].1.cells.clone(), rows[1].1.cells.clone()]
    );
    assert!(round_trip(&DataFormat::Json, &[]).items.is_empty());
}

#[test]
fn xlsx_round_trips_into_the_named_sheet() {
    let columns = cols(&["CUSTOMERACCOUNT", "NAME", "CREDITLIMIT", "BLOCKED", "SINCE"]);
    let rows = vec![
        (columns.clone(), record(vec![t("US-001"), t("Müller & Søn"), n("5000"), Cell::Bool(false), t("2024-01-31")])),
        (columns.clone(), record(vec![t("US-002"), Cell::Null, n("1234.5"), Cell::Bool(true), Cell::Null])),
    ];
    let format = DataFormat::Xlsx { sheet: Some("Customers".to_string()) };
    let back = round_trip(&format, &rows);
    assert_eq!(back.columns, columns);
    let records = back.records();
    assert_eq!((records[0].row, records[0].cells.clone()), (2, rows[0].1.cells.clone()));
    assert_eq!(records[1].cells, rows[1].1.cells);
}
