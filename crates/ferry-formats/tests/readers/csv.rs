//! CSV: quoting, encodings, delimiters, header rules, record errors and size caps.

use super::{Generated, assert_kind, cols, fatal, read_all, t, utf16};
use ferry_domain::DataFormat;
use ferry_formats::csv::sniff_delimiter;
use ferry_formats::{Cell, FormatErrorKind, Limits, open_reader};
use std::sync::atomic::Ordering;

const CUSTOMERS: &str = "CUSTOMERACCOUNT,NAME,CUSTOMERGROUPID,CREDITLIMIT\r\n\
US-001,\"Contoso, Ltd.\",10,5000\r\n\
US-002,\"Fabrikam\r\nNorth\",20,\r\n\
DE-003,Müller & Søn,30,12345678901234567890.123456789\r\n\
US-004,\"She said \"\"hi\"\"\",10,0\r\n\
\r\n";

fn csv(delimiter: u8) -> DataFormat {
    DataFormat::Csv { delimiter }
}

#[test]
fn reads_a_customers_file_with_quotes_newlines_and_non_ascii() {
    let out = read_all(&csv(b','), CUSTOMERS.as_bytes().to_vec(), &Limits::default()).unwrap();
    assert_eq!(out.columns, cols(&["CUSTOMERACCOUNT", "NAME", "CUSTOMERGROUPID", "CREDITLIMIT"]));
    let records = out.records();
    assert_eq!(records.len(), 4);
    assert_eq!(records[0].row, 2);
    assert_eq!(records[0].cells, vec![t("US-001"), t("Contoso, Ltd."), t("10"), t("5000")]);
    assert_eq!(records[1].row, 3);
    assert_eq!(records[1].cells, vec![t("US-002"), t("Fabrikam\r\nNorth"), t("20"), t("")]);
    // The quoted line break moves the next record to line 5.
    assert_eq!(records[2].row, 5);
    assert_eq!(records[2].cells[1], t("Müller & Søn"));
    assert_eq!(records[2].cells[3], t("12345678901234567890.123456789"));
    assert_eq!(records[3].cells[1], t("She said \"hi\""));
}

#[test]
fn reads_lf_files_without_a_final_line_break() {
    let out = read_all(&csv(b','), b"A,B\n1,2\n3,4".to_vec(), &Limits::default()).unwrap();
    let records = out.records();
    assert_eq!(records.len(), 2);
    assert_eq!((records[1].row, records[1].cells.clone()), (3, vec![t("3"), t("4")]));
}

#[test]
fn reads_utf8_with_bom_and_utf16_both_ways() {
    let text = CUSTOMERS;
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(text.as_bytes());
    let expected = read_all(&csv(b','), text.as_bytes().to_vec(), &Limits::default()).unwrap().records();
    for bytes in [bom, utf16(text, true), utf16(text, false)] {
        let out = read_all(&csv(b','), bytes, &Limits::default()).unwrap();
        assert_eq!(out.columns[0], "CUSTOMERACCOUNT", "the byte-order mark is not part of the first name");
        assert_eq!(out.records(), expected);
    }
}

#[test]
fn reads_every_delimiter() {
    for delimiter in [b';', b'\t', b'|', b':'] {
        let d = char::from(delimiter);
        let text = format!("ACCOUNT{d}NAME{d}LIMIT\r\nUS-001{d}\"Contoso{d} Ltd.\"{d}5000\r\nUS-002{d}Fabrikam{d}\r\n");
        let out = read_all(&csv(delimiter), text.into_bytes(), &Limits::default()).unwrap();
        assert_eq!(out.columns, cols(&["ACCOUNT", "NAME", "LIMIT"]));
        let records = out.records();
        assert_eq!(records[0].cells, vec![t("US-001"), t(&format!("Contoso{d} Ltd.")), t("5000")]);
        assert_eq!(records[1].cells, vec![t("US-002"), t("Fabrikam"), t("")]);
    }
    assert!(read_all(&csv(b'x'), b"A\n".to_vec(), &Limits::default()).is_err());
}

#[test]
fn sniffs_the_delimiter_from_the_header() {
    assert_eq!(sniff_delimiter("A;B;C"), b';');
    assert_eq!(sniff_delimiter("A\tB\tC"), b'\t');
    assert_eq!(sniff_delimiter("\"A;B\",C"), b',');
    assert_eq!(sniff_delimiter("A|B"), b'|');
    assert_eq!(sniff_delimiter("ONLY"), b',');
}

#[test]
fn a_record_with_the_wrong_field_count_is_reported_and_reading_goes_on() {
    let text = "A,B,C\n1,2,3\n1,2\n\"multi\nline\",2,3,4\n7,8,9\n";
    let out = read_all(&csv(b','), text.as_bytes().to_vec(), &Limits::default()).unwrap();
    assert_eq!(out.items.len(), 4);
    let short = out.items[1].clone().unwrap_err();
    assert_kind(&short, FormatErrorKind::FieldCount);
    assert!(!short.is_fatal());
    assert_eq!(short.row, Some(3));
    assert!(short.to_string().starts_with("row 3: the record has 2 fields, the header has 3"), "{short}");
    let long = out.items[2].clone().unwrap_err();
    assert_eq!(long.row, Some(4));
    assert!(long.to_string().contains("has 4 fields, the header has 3"), "{long}");
    assert_eq!(out.items[3].clone().unwrap().row, 6);
}

#[test]
fn the_header_must_name_every_column_once() {
    let duplicate = fatal(read_all(&csv(b','), b"ACCOUNT,Name,NAME\n1,2,3\n".to_vec(), &Limits::default()));
    assert_kind(&duplicate, FormatErrorKind::BadHeader);
    assert_eq!(duplicate.column.as_deref(), Some("NAME"));
    assert!(duplicate.message.contains("columns 2 and 3"), "{duplicate}");

    let empty_name = fatal(read_all(&csv(b','), b"A,,C\n".to_vec(), &Limits::default()));
    assert_kind(&empty_name, FormatErrorKind::BadHeader);
    assert!(empty_name.message.contains("column 2"), "{empty_name}");

    let empty_file = fatal(read_all(&csv(b','), Vec::new(), &Limits::default()));
    assert_kind(&empty_file, FormatErrorKind::BadHeader);

    let limits = Limits { max_columns: 2, ..Limits::default() };
    assert_kind(&fatal(read_all(&csv(b','), b"A,B,C\n".to_vec(), &limits)), FormatErrorKind::LimitExceeded);
}

#[test]
fn invalid_utf8_stops_the_read_naming_offset_and_line() {
    let mut bytes = b"A,B\n1,ok\n2,M\xFCller\n3,x\n".to_vec();
    let offset = bytes.iter().position(|&b| b == 0xFC).unwrap();
    let out = read_all(&csv(b','), std::mem::take(&mut bytes), &Limits::default()).unwrap();
    assert_eq!(out.items.len(), 2, "the good record comes first, then the error, then nothing");
    assert_eq!(out.items[0].clone().unwrap().cells, vec![t("1"), t("ok")]);
    let error = out.items[1].clone().unwrap_err();
    assert_kind(&error, FormatErrorKind::InvalidEncoding);
    assert!(error.is_fatal());
    assert!(error.message.contains(&format!("byte offset {offset}")), "{error}");
    assert!(error.message.contains("line 3"), "{error}");
    assert_eq!(error.row, Some(3));

    // A sequence cut off by the end of the file is invalid too.
    let truncated = fatal(read_all(&csv(b','), b"A\n\xE2\x82".to_vec(), &Limits::default()));
    assert_kind(&truncated, FormatErrorKind::InvalidEncoding);
}

#[test]
fn an_unpaired_utf16_surrogate_is_an_encoding_error() {
    let mut bytes = utf16("A,B\r\n1,", true);
    bytes.extend_from_slice(&0xD800u16.to_le_bytes());
    bytes.extend_from_slice(&u16::from(b'x').to_le_bytes());
    bytes.extend_from_slice(&utf16("\r\n", true)[2..]);
    let error = fatal(read_all(&csv(b','), bytes, &Limits::default()));
    assert_kind(&error, FormatErrorKind::InvalidEncoding);
    assert!(error.message.contains("UTF-16 LE"), "{error}");
}

#[test]
fn an_unclosed_quote_is_malformed() {
    let error = fatal(read_all(&csv(b','), b"A,B\n1,\"open\n2,3\n".to_vec(), &Limits::default()));
    assert_kind(&error, FormatErrorKind::Malformed);
    assert_eq!(error.row, Some(2));
    assert!(error.message.contains("never closed"), "{error}");
}

#[test]
fn a_field_over_the_cap_is_a_record_error() {
    let limits = Limits { max_field_bytes: 10, ..Limits::default() };
    let text = "ACCOUNT,NAME\nUS-001,short\nUS-002,\"far too long a name\"\nUS-003,ok\n";
    let out = read_all(&csv(b','), text.as_bytes().to_vec(), &limits).unwrap();
    let error = out.items[1].clone().unwrap_err();
    assert_kind(&error, FormatErrorKind::FieldTooLarge);
    assert_eq!((error.row, error.column.as_deref()), (Some(3), Some("NAME")));
    assert!(error.message.contains("19 bytes"), "{error}");
    assert_eq!(out.items[2].clone().unwrap().cells, vec![t("US-003"), t("ok")]);
}

#[test]
fn a_64_mib_field_fails_after_about_one_mib() {
    let limits = Limits { max_record_bytes: 1 << 20, ..Limits::default() };
    // One record whose single quoted field is 64 MiB long.
    let input = Generated::new(b"A,B\n1,\"", b'x', 64 << 20);
    let read = input.read.clone();
    let mut reader = open_reader(&csv(b','), Box::new(input), &limits).unwrap();
    let error = reader.next_record().unwrap().unwrap_err();
    assert_kind(&error, FormatErrorKind::LimitExceeded);
    assert_eq!(error.row, Some(2));
    assert!(reader.next_record().is_none());
    assert!(read.load(Ordering::Relaxed) < 2 << 20, "read {} bytes", read.load(Ordering::Relaxed));

    // With only the field cap, the whole line is read but never held: a record error.
    let limits = Limits { max_field_bytes: 1 << 20, max_record_bytes: 128 << 20, ..Limits::default() };
    let input = Generated::new(b"A,B\n1,", b'x', 8 << 20);
    let mut reader = open_reader(&csv(b','), Box::new(input), &limits).unwrap();
    let error = reader.next_record().unwrap().unwrap_err();
    assert_kind(&error, FormatErrorKind::FieldTooLarge);
    assert_eq!(error.column.as_deref(), Some("B"));
    assert!(reader.next_record().is_none());
}

#[test]
fn cells_are_text_and_empty_fields_are_empty_text() {
    let out = read_all(&csv(b','), b"A,B,C\n,,\n".to_vec(), &Limits::default()).unwrap();
    assert_eq!(out.records()[0].cells, vec![Cell::Text(String::new()); 3]);
}
