//! Excel: workbooks made with rust_xlsxwriter, sheet choice, value conversion, and refused files.

use super::{assert_kind, cols, fatal, n, read_all, t};
use ferry_domain::DataFormat;
use ferry_formats::{Cell, FormatErrorKind, Limits};
use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};
use std::io::Write;

fn xlsx(sheet: Option<&str>) -> DataFormat {
    DataFormat::Xlsx { sheet: sheet.map(str::to_string) }
}

/// A workbook with a "Groups" sheet first and a "Customers" sheet second.
fn workbook() -> Vec<u8> {
    let mut book = Workbook::new();
    let groups = book.add_worksheet();
    groups.set_name("Groups").unwrap();
    groups.write_string(0, 0, "CUSTOMERGROUPID").unwrap();
    groups.write_string(0, 1, "DESCRIPTION").unwrap();
    groups.write_number(1, 0, 10).unwrap();
    groups.write_string(1, 1, "Wholesale").unwrap();

    let customers = book.add_worksheet();
    customers.set_name("Customers").unwrap();
    for (col, name) in ["CUSTOMERACCOUNT", "NAME", "CREDITLIMIT", "BLOCKED", "SINCE", "LASTCONTACT"].iter().enumerate()
    {
        customers.write_string(0, col as u16, *name).unwrap();
    }
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let datetime = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    customers.write_string(1, 0, "US-001").unwrap();
    customers.write_string(1, 1, "Contoso, Ltd.").unwrap();
    customers.write_number(1, 2, 5000).unwrap();
    customers.write_boolean(1, 3, false).unwrap();
    customers.write_datetime_with_format(1, 4, ExcelDateTime::from_ymd(2024, 1, 31).unwrap(), &date).unwrap();
    let contact = ExcelDateTime::from_ymd(2024, 2, 29).unwrap().and_hms(13, 45, 30).unwrap();
    customers.write_datetime_with_format(1, 5, contact, &datetime).unwrap();
    // Row 3 is left empty (skipped); row 4 has gaps and a fraction.
    customers.write_string(3, 0, "DE-003").unwrap();
    customers.write_string(3, 1, "Müller & Søn").unwrap();
    customers.write_number(3, 2, 1234.5).unwrap();
    // Row 5: an error value.
    customers.write_string(4, 0, "US-005").unwrap();
    customers.write_formula(4, 2, Formula::new("=NA()").set_result("#N/A")).unwrap();
    // Row 6: a value without a header.
    customers.write_string(5, 0, "US-006").unwrap();
    customers.write_string(5, 7, "stray").unwrap();
    customers.write_string(6, 0, "US-007").unwrap();
    book.save_to_buffer().unwrap()
}

#[test]
fn reads_the_first_sheet_by_default() {
    let out = read_all(&xlsx(None), workbook(), &Limits::default()).unwrap();
    assert_eq!(out.columns, cols(&["CUSTOMERGROUPID", "DESCRIPTION"]));
    let records = out.records();
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].row, records[0].cells.clone()), (2, vec![n("10"), t("Wholesale")]));
}

#[test]
fn reads_a_named_sheet_with_numbers_dates_and_record_errors() {
    let out = read_all(&xlsx(Some("Customers")), workbook(), &Limits::default()).unwrap();
    assert_eq!(out.columns, cols(&["CUSTOMERACCOUNT", "NAME", "CREDITLIMIT", "BLOCKED", "SINCE", "LASTCONTACT"]));
    assert_eq!(out.items.len(), 5);
    let first = out.items[0].clone().unwrap();
    assert_eq!(first.row, 2);
    assert_eq!(
        first.cells,
        vec![t("US-001"), t("Contoso, Ltd."), n("5000"), Cell::Bool(false), t("2024-01-31"), t("2024-02-29T13:45:30")]
    );
    let second = out.items[1].clone().unwrap();
    assert_eq!(second.row, 4, "the empty row 3 is skipped, rows keep their sheet numbers");
    assert_eq!(second.cells, vec![t("DE-003"), t("Müller & Søn"), n("1234.5"), Cell::Null, Cell::Null, Cell::Null]);

    let na = out.items[2].clone().unwrap_err();
    assert_kind(&na, FormatErrorKind::InvalidRecord);
    assert_eq!((na.row, na.column.as_deref()), (Some(5), Some("CREDITLIMIT")));
    assert!(na.message.contains("#N/A"), "{na}");

    let stray = out.items[3].clone().unwrap_err();
    assert_kind(&stray, FormatErrorKind::FieldCount);
    assert_eq!(stray.row, Some(6));
    assert!(stray.message.contains("column H"), "{stray}");
    assert_eq!(out.items[4].clone().unwrap().row, 7);

    // Sheet names match ignoring case when there is no exact match.
    assert_eq!(read_all(&xlsx(Some("customers")), workbook(), &Limits::default()).unwrap().items.len(), 5);
}

#[test]
fn a_missing_sheet_lists_the_sheets() {
    let error = fatal(read_all(&xlsx(Some("Vendors")), workbook(), &Limits::default()));
    assert_kind(&error, FormatErrorKind::NoSuchSheet);
    assert!(error.message.contains("'Groups', 'Customers'"), "{error}");
}

#[test]
fn the_header_must_name_every_column_once() {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "NAME").unwrap();
    sheet.write_string(0, 1, "name").unwrap();
    let error = fatal(read_all(&xlsx(None), book.save_to_buffer().unwrap(), &Limits::default()));
    assert_kind(&error, FormatErrorKind::BadHeader);
    assert!(error.message.contains("A1 and B1"), "{error}");

    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "A").unwrap();
    sheet.write_string(0, 2, "C").unwrap();
    let error = fatal(read_all(&xlsx(None), book.save_to_buffer().unwrap(), &Limits::default()));
    assert_kind(&error, FormatErrorKind::BadHeader);
    assert!(error.message.contains("B1"), "{error}");

    let mut book = Workbook::new();
    book.add_worksheet();
    let error = fatal(read_all(&xlsx(None), book.save_to_buffer().unwrap(), &Limits::default()));
    assert_kind(&error, FormatErrorKind::BadHeader);
}

#[test]
fn files_that_are_not_workbooks_are_malformed() {
    for bytes in [b"CUSTOMERACCOUNT,NAME\n".to_vec(), Vec::new(), b"PK\x03\x04broken".to_vec()] {
        let error = fatal(read_all(&xlsx(None), bytes, &Limits::default()));
        assert_kind(&error, FormatErrorKind::Malformed);
    }
}

#[test]
fn oversized_parts_and_zip_bombs_are_refused() {
    let limits = Limits { max_workbook_part_bytes: 200, ..Limits::default() };
    let error = fatal(read_all(&xlsx(None), workbook(), &limits));
    assert_kind(&error, FormatErrorKind::LimitExceeded);
    assert!(error.message.contains("max_workbook_part_bytes"), "{error}");

    // A part that unpacks 8 MiB of zeros from a few KiB.
    let mut bomb = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut bomb);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("xl/sharedStrings.xml", options).unwrap();
    zip.write_all(&vec![b' '; 8 << 20]).unwrap();
    zip.finish().unwrap();
    let error = fatal(read_all(&xlsx(None), bomb.into_inner(), &Limits::default()));
    assert_kind(&error, FormatErrorKind::UnsafePackage);
    assert!(error.message.contains("max_compression_ratio"), "{error}");
}

#[test]
fn cells_over_the_caps() {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet_with_constant_memory().unwrap();
    sheet.write_string(0, 0, "NAME").unwrap();
    sheet.write_string(1, 0, "x".repeat(300)).unwrap();
    sheet.write_string(2, 0, "short").unwrap();
    let bytes = book.save_to_buffer().unwrap();

    let limits = Limits { max_field_bytes: 100, ..Limits::default() };
    let out = read_all(&xlsx(None), bytes.clone(), &limits).unwrap();
    let error = out.items[0].clone().unwrap_err();
    assert_kind(&error, FormatErrorKind::FieldTooLarge);
    assert_eq!((error.row, error.column.as_deref()), (Some(2), Some("NAME")));
    assert_eq!(out.items[1].clone().unwrap().cells, vec![t("short")]);

    // The sheet stores that text inline: a run calamine would buffer whole, refused up front.
    let limits = Limits { max_record_bytes: 200, ..Limits::default() };
    let error = fatal(read_all(&xlsx(None), bytes, &limits));
    assert_kind(&error, FormatErrorKind::LimitExceeded);
    assert!(error.message.contains("max_record_bytes"), "{error}");
}
