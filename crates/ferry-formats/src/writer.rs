//! Writing records in any of the data formats: rejected rows written back in their source's
//! format (so a person can correct them and submit the file again), and exported entities.
//! [`RecordWriter`] takes records with their columns and writes CSV (the format's delimiter,
//! UTF-8 or — `CSV-Unicode` — UTF-16 LE with a byte-order mark, CRLF, a header row), XML
//! (`<Document>` of one element per record, fields as elements or attributes), JSON (an array of
//! objects) or an .xlsx workbook (a header row, then the rows; rust_xlsxwriter's constant-memory
//! mode, so rows go to a temporary file rather than memory). Reading the output with the matching
//! reader gives the same cells back.
//!
//! Columns: XML and JSON write each record with the columns it has, so columns may grow from one
//! record to the next. CSV and Excel have one header row, so their columns are fixed by the first
//! record written (their readers' columns are fixed too).

use crate::{Cell, FormatError, FormatErrorKind, SourceRecord};
use ferry_domain::DataFormat;
use std::io::{BufWriter, Write};

type Out = Box<dyn Write + Send>;

/// The XML namespace of `i:nil`.
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Excel's last row (0-based).
const XLSX_MAX_ROW: u32 = 1_048_575;

/// How a [`RecordWriter`] writes, beyond the format.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// Text formats in UTF-16 LE with a byte-order mark (Dynamics' `CSV-Unicode`), else UTF-8.
    pub utf16: bool,
    /// The element of each record in XML formats.
    pub record_name: String,
    /// Whether a failure names the file as the rejected rows file (else "the output file").
    pub what: &'static str,
}

impl Default for WriterOptions {
    /// UTF-8, `<RECORD>` elements: how rejected rows are written back.
    fn default() -> WriterOptions {
        WriterOptions { utf16: false, record_name: "RECORD".into(), what: "the rejected rows file" }
    }
}

impl WriterOptions {
    /// The options an export in the format named `format_name` (as a project names it) writes
    /// with: UTF-16 for the Unicode formats, records named `record_name`.
    pub fn export(format_name: &str, record_name: &str) -> WriterOptions {
        WriterOptions {
            utf16: format_name.to_ascii_lowercase().contains("unicode"),
            record_name: record_name.to_owned(),
            what: "the output file",
        }
    }
}

/// Writes records in one of the data formats.
pub struct RecordWriter {
    inner: Inner,
    record_name: String,
    what: &'static str,
    /// The encoding the XML declaration names.
    encoding: &'static str,
}

enum Inner {
    Csv { writer: Box<csv::Writer<Out>>, width: Option<usize> },
    Xml { out: BufWriter<Out>, attributes: bool, started: bool },
    Json { out: BufWriter<Out>, records: u64 },
    Xlsx { workbook: Box<rust_xlsxwriter::Workbook>, out: Out, width: Option<usize>, next_row: u32 },
}

impl RecordWriter {
    /// A writer of rejected rows (UTF-8, `<RECORD>` elements).
    pub fn new(format: &DataFormat, out: Box<dyn Write + Send>) -> Result<Self, FormatError> {
        Self::with_options(format, out, WriterOptions::default())
    }

    pub fn with_options(
        format: &DataFormat,
        out: Box<dyn Write + Send>,
        options: WriterOptions,
    ) -> Result<Self, FormatError> {
        xml_name(&options.record_name).map_err(|e| e.in_column(&options.record_name))?;
        let out: Out = if options.utf16 && !matches!(format, DataFormat::Xlsx { .. }) {
            Box::new(Utf16LeWriter::new(out))
        } else {
            out
        };
        let inner = match format {
            DataFormat::Csv { delimiter } => Inner::Csv {
                writer: Box::new(
                    csv::WriterBuilder::new()
                        .delimiter(*delimiter)
                        .terminator(csv::Terminator::CRLF)
                        .quote_style(csv::QuoteStyle::Necessary)
                        .flexible(false)
                        .from_writer(out),
                ),
                width: None,
            },
            DataFormat::XmlElement => Inner::Xml { out: BufWriter::new(out), attributes: false, started: false },
            DataFormat::XmlAttribute => Inner::Xml { out: BufWriter::new(out), attributes: true, started: false },
            DataFormat::Json => Inner::Json { out: BufWriter::new(out), records: 0 },
            DataFormat::Xlsx { sheet } => {
                let mut workbook = Box::new(rust_xlsxwriter::Workbook::new());
                let xlsx_error = |e| xlsx_error(options.what, e);
                let worksheet = workbook.add_worksheet_with_constant_memory().map_err(xlsx_error)?;
                if let Some(name) = sheet {
                    worksheet.set_name(name.as_str()).map_err(xlsx_error)?;
                }
                Inner::Xlsx { workbook, out, width: None, next_row: 0 }
            }
        };
        let encoding = if options.utf16 { "utf-16" } else { "utf-8" };
        Ok(RecordWriter { inner, record_name: options.record_name, what: options.what, encoding })
    }

    /// Writes one record; `columns` are the reader's columns when it gave the record.
    pub fn write_record(&mut self, columns: &[String], record: &SourceRecord) -> Result<(), FormatError> {
        let (what, record_name, encoding) = (self.what, self.record_name.as_str(), self.encoding);
        let (write_error, csv_error, xlsx_error) =
            (|e| write_error(what, e), |e| csv_error(what, e), |e| xlsx_error(what, e));
        let fields = || columns.iter().zip(record.cells.iter());
        match &mut self.inner {
            Inner::Csv { writer, width } => {
                if width.is_none() {
                    writer.write_record(columns).map_err(csv_error)?;
                }
                let width = fixed_width(width, columns)?;
                let row: Vec<&str> = (0..width)
                    .map(|i| match record.cells.get(i) {
                        None | Some(Cell::Null) => "",
                        Some(Cell::Text(s) | Cell::Number(s)) => s.as_str(),
                        Some(Cell::Bool(b)) => bool_text(*b),
                    })
                    .collect();
                writer.write_record(&row).map_err(csv_error)?;
            }
            Inner::Xml { out, attributes, started } => {
                if !*started {
                    write_xml_start(out, encoding).map_err(write_error)?;
                    *started = true;
                }
                let mut text = format!("  <{record_name}");
                if *attributes {
                    for (name, cell) in fields() {
                        let value = match cell {
                            Cell::Null => continue,
                            Cell::Text(s) | Cell::Number(s) => s.as_str(),
                            Cell::Bool(b) => bool_text(*b),
                        };
                        text.push(' ');
                        text.push_str(xml_name(name)?);
                        text.push_str("=\"");
                        escape_xml(value, true, &mut text);
                        text.push('"');
                    }
                    text.push_str(" />\r\n");
                } else {
                    text.push('>');
                    for (name, cell) in fields() {
                        let name = xml_name(name)?;
                        let value = match cell {
                            Cell::Null => {
                                text.push_str(&format!("<{name} i:nil=\"true\" />"));
                                continue;
                            }
                            Cell::Text(s) | Cell::Number(s) => s.as_str(),
                            Cell::Bool(b) => bool_text(*b),
                        };
                        text.push_str(&format!("<{name}>"));
                        escape_xml(value, false, &mut text);
                        text.push_str(&format!("</{name}>"));
                    }
                    text.push_str(&format!("</{record_name}>\r\n"));
                }
                out.write_all(text.as_bytes()).map_err(write_error)?;
            }
            Inner::Json { out, records } => {
                let mut text = String::from(if *records == 0 { "[\r\n  {" } else { ",\r\n  {" });
                for (i, (name, cell)) in fields().enumerate() {
                    if i > 0 {
                        text.push_str(", ");
                    }
                    text.push_str(&json_string(name));
                    text.push_str(": ");
                    match cell {
                        Cell::Null => text.push_str("null"),
                        Cell::Bool(b) => text.push_str(bool_text(*b)),
                        Cell::Number(n) if is_json_number(n) => text.push_str(n),
                        Cell::Text(s) | Cell::Number(s) => text.push_str(&json_string(s)),
                    }
                }
                text.push('}');
                out.write_all(text.as_bytes()).map_err(write_error)?;
                *records += 1;
            }
            Inner::Xlsx { workbook, width, next_row, .. } => {
                let sheet = workbook.worksheet_from_index(0).map_err(xlsx_error)?;
                if width.is_none() {
                    for (col, name) in columns.iter().enumerate() {
                        sheet.write_string(0, xlsx_col(col)?, name.as_str()).map_err(xlsx_error)?;
                    }
                    *next_row = 1;
                }
                let width = fixed_width(width, columns)?;
                if *next_row > XLSX_MAX_ROW {
                    return Err(FormatError::new(
                        FormatErrorKind::LimitExceeded,
                        "more rejected rows than an Excel sheet can hold (1,048,576 rows)",
                    ));
                }
                let row = *next_row;
                for (col, cell) in record.cells.iter().take(width).enumerate() {
                    let col = xlsx_col(col)?;
                    match cell {
                        Cell::Null => {}
                        Cell::Text(s) => {
                            sheet.write_string(row, col, s.as_str()).map_err(xlsx_error)?;
                        }
                        Cell::Number(n) => match n.parse::<f64>() {
                            Ok(f) if f.is_finite() && format!("{f}") == *n => {
                                sheet.write_number(row, col, f).map_err(xlsx_error)?;
                            }
                            _ => {
                                sheet.write_string(row, col, n.as_str()).map_err(xlsx_error)?;
                            }
                        },
                        Cell::Bool(b) => {
                            sheet.write_boolean(row, col, *b).map_err(xlsx_error)?;
                        }
                    }
                }
                *next_row += 1;
            }
        }
        Ok(())
    }

    /// Completes the file (closing elements, the array, the workbook) and flushes it.
    pub fn finish(self) -> Result<(), FormatError> {
        let (what, encoding) = (self.what, self.encoding);
        let write_error = |e| write_error(what, e);
        match self.inner {
            Inner::Csv { writer, .. } => {
                let mut out = writer.into_inner().map_err(|e| write_error(e.into_error()))?;
                out.flush().map_err(write_error)
            }
            Inner::Xml { mut out, started, .. } => {
                if !started {
                    write_xml_start(&mut out, encoding).map_err(write_error)?;
                }
                out.write_all(b"</Document>\r\n").map_err(write_error)?;
                out.flush().map_err(write_error)
            }
            Inner::Json { mut out, records } => {
                out.write_all(if records == 0 { b"[]\r\n" as &[u8] } else { b"\r\n]\r\n" }).map_err(write_error)?;
                out.flush().map_err(write_error)
            }
            Inner::Xlsx { mut workbook, mut out, .. } => {
                workbook.save_to_writer(&mut out).map_err(|e| xlsx_error(what, e))?;
                out.flush().map_err(write_error)
            }
        }
    }
}

/// The number of columns, fixed by the first record; a later record with more is an error.
fn fixed_width(width: &mut Option<usize>, columns: &[String]) -> Result<usize, FormatError> {
    match *width {
        None => {
            *width = Some(columns.len());
            Ok(columns.len())
        }
        Some(w) if columns.len() > w => Err(FormatError::new(
            FormatErrorKind::LimitExceeded,
            format!(
                "the rejected rows file has {w} columns from its header, but this record has {}: the columns of \
                 a CSV or Excel file are fixed by its first row",
                columns.len()
            ),
        )),
        Some(w) => Ok(w),
    }
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn json_string(s: &str) -> String {
    // Serialising a str cannot fail.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// Whether `n` is a JSON number as written (`-12.5e3`), so it can be written unquoted.
fn is_json_number(n: &str) -> bool {
    n.starts_with(|c: char| c == '-' || c.is_ascii_digit())
        && serde_json::from_str::<&serde_json::value::RawValue>(n).is_ok()
}

/// `name` if it can be an XML element or attribute name.
fn xml_name(name: &str) -> Result<&str, FormatError> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(name)
    } else {
        Err(FormatError::new(
            FormatErrorKind::InvalidRecord,
            format!("'{name}' cannot be an XML name, so this field cannot be written to the rejected rows file"),
        )
        .in_column(name))
    }
}

/// Escapes `value` for XML text or (with `attribute`) a double-quoted attribute value. Line breaks
/// and tabs in attributes, and carriage returns anywhere, become character references so a reader
/// gets them back unchanged.
fn escape_xml(value: &str, attribute: bool, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\n' | '\t' if attribute => out.push_str(&format!("&#{};", u32::from(c))),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push_str(&format!("&#x{:X};", c as u32)),
            c => out.push(c),
        }
    }
}

fn xlsx_col(col: usize) -> Result<u16, FormatError> {
    u16::try_from(col).ok().filter(|&c| c < 16_384).ok_or_else(|| {
        FormatError::new(FormatErrorKind::LimitExceeded, "more columns than an Excel sheet can hold (16,384)")
    })
}

/// The XML declaration (naming the encoding the bytes end up in) and the opening `<Document>`.
fn write_xml_start(out: &mut impl Write, encoding: &str) -> std::io::Result<()> {
    write!(out, "<?xml version=\"1.0\" encoding=\"{encoding}\"?>\r\n<Document xmlns:i=\"{XSI}\">\r\n")
}

fn write_error(what: &str, e: std::io::Error) -> FormatError {
    FormatError::new(FormatErrorKind::Io, format!("could not write {what}: {e}"))
}

fn csv_error(what: &str, e: csv::Error) -> FormatError {
    FormatError::new(FormatErrorKind::Io, format!("could not write {what}: {e}"))
}

fn xlsx_error(what: &str, e: rust_xlsxwriter::XlsxError) -> FormatError {
    FormatError::new(FormatErrorKind::Io, format!("could not write {what}: {e}"))
}

/// Re-encodes the UTF-8 written to it as UTF-16 LE, after a byte-order mark.
struct Utf16LeWriter {
    out: Out,
    /// The start of a character split between two writes.
    pending: Vec<u8>,
    started: bool,
}

impl Utf16LeWriter {
    fn new(out: Out) -> Utf16LeWriter {
        Utf16LeWriter { out, pending: Vec::new(), started: false }
    }
}

impl Write for Utf16LeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.started {
            self.out.write_all(&[0xFF, 0xFE])?;
            self.started = true;
        }
        self.pending.extend_from_slice(buf);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(text) => text.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        };
        let text = std::str::from_utf8(&self.pending[..valid]).expect("checked to be UTF-8");
        let mut encoded = Vec::with_capacity(text.len() * 2);
        for unit in text.encode_utf16() {
            encoded.extend_from_slice(&unit.to_le_bytes());
        }
        self.out.write_all(&encoded)?;
        self.pending.drain(..valid);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.started {
            self.out.write_all(&[0xFF, 0xFE])?;
            self.started = true;
        }
        self.out.flush()
    }
}
