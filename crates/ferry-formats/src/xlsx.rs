//! Excel workbooks (.xlsx): [`XlsxReader`] streams the rows of one sheet (the named one, else the
//! first worksheet); the first row is the header.
//!
//! Reading uses calamine's cell-by-cell reader, so the sheet itself is never held whole. calamine
//! does hold a few workbook parts in memory — the shared-strings table (every distinct text in the
//! workbook), the styles and the workbook part — so before calamine sees the file, [`check`]
//! inspects the zip: entry count, sizes and compression ratios against the package limits, each of
//! those parts decompressed and measured against `max_workbook_part_bytes`, and every worksheet
//! scanned for a run of text or markup longer than `max_record_bytes` (which calamine would
//! buffer). That costs one extra decompression of the sheets.
//!
//! calamine's cell reader borrows the workbook, so it runs on a thread of its own that hands rows
//! over a small bounded channel; dropping the reader stops the thread at its next row.

mod check;
mod rows;

use crate::record::Input;
use crate::{FormatError, FormatErrorKind, Limits, RecordReader, SourceRecord};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Rows in flight between the workbook thread and the reader.
const ROWS_IN_FLIGHT: usize = 16;

/// A streaming reader of one sheet of an .xlsx workbook.
pub struct XlsxReader {
    columns: Vec<String>,
    rows: Receiver<Message>,
    done: bool,
}

enum Message {
    Header(Result<Vec<String>, FormatError>),
    Row(Result<SourceRecord, FormatError>),
    End,
}

impl XlsxReader {
    /// Opens `sheet` (by name; `None` for the first worksheet) and reads its header row.
    pub fn open(mut input: Box<dyn Input>, sheet: Option<&str>, limits: &Limits) -> Result<Self, FormatError> {
        check::check(&mut input, limits)?;
        let (sender, rows) = sync_channel(ROWS_IN_FLIGHT);
        let sheet = sheet.map(str::to_string);
        let limits = limits.clone();
        std::thread::Builder::new()
            .name("ferry-xlsx".to_string())
            .spawn(move || run(input, sheet, &limits, &sender))
            .map_err(|e| FormatError::new(FormatErrorKind::Io, format!("could not start the Excel reader: {e}")))?;
        match rows.recv() {
            Ok(Message::Header(Ok(columns))) => Ok(XlsxReader { columns, rows, done: false }),
            Ok(Message::Header(Err(e))) => Err(e),
            Ok(Message::Row(_) | Message::End) | Err(_) => Err(stopped()),
        }
    }
}

fn stopped() -> FormatError {
    FormatError::new(
        FormatErrorKind::Malformed,
        "the workbook could not be read: the Excel reader stopped unexpectedly; open and save the file in Excel \
         and try again",
    )
}

impl RecordReader for XlsxReader {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next_record(&mut self) -> Option<Result<SourceRecord, FormatError>> {
        if self.done {
            return None;
        }
        match self.rows.recv() {
            Ok(Message::Row(row)) => {
                if let Err(e) = &row
                    && e.is_fatal()
                {
                    self.done = true;
                }
                Some(row)
            }
            Ok(Message::End) => {
                self.done = true;
                None
            }
            Ok(Message::Header(_)) | Err(_) => {
                self.done = true;
                Some(Err(stopped()))
            }
        }
    }
}

/// The workbook thread: opens the workbook, sends the header, then every row, then `End`. It
/// stops when the reader is dropped (a send fails).
fn run(input: Box<dyn Input>, sheet: Option<String>, limits: &Limits, sender: &SyncSender<Message>) {
    use calamine::Reader;
    let mut workbook: calamine::Xlsx<_> = match calamine::Xlsx::new(input) {
        Ok(workbook) => workbook,
        Err(e) => {
            let _ = sender.send(Message::Header(Err(workbook_error(&e))));
            return;
        }
    };
    let worksheets: Vec<String> = workbook
        .sheets_metadata()
        .iter()
        .filter(|s| s.typ == calamine::SheetType::WorkSheet)
        .map(|s| s.name.clone())
        .collect();
    let name = match pick_sheet(&worksheets, sheet.as_deref()) {
        Ok(name) => name,
        Err(e) => {
            let _ = sender.send(Message::Header(Err(e)));
            return;
        }
    };
    let cells = match workbook.worksheet_cells_reader(&name) {
        Ok(cells) => cells,
        Err(e) => {
            let _ = sender.send(Message::Header(Err(workbook_error(&e))));
            return;
        }
    };
    let mut rows = rows::Rows::new(cells, limits);
    match rows.header() {
        Ok(columns) => {
            if sender.send(Message::Header(Ok(columns))).is_err() {
                return;
            }
        }
        Err(e) => {
            let _ = sender.send(Message::Header(Err(e)));
            return;
        }
    }
    loop {
        match rows.next_row() {
            Some(row) => {
                let fatal = matches!(&row, Err(e) if e.is_fatal());
                if sender.send(Message::Row(row)).is_err() || fatal {
                    return;
                }
            }
            None => {
                let _ = sender.send(Message::End);
                return;
            }
        }
    }
}

/// The sheet to read: `wanted` by name (exact, else ignoring case), or the first worksheet.
fn pick_sheet(worksheets: &[String], wanted: Option<&str>) -> Result<String, FormatError> {
    match wanted {
        None => worksheets
            .first()
            .cloned()
            .ok_or_else(|| FormatError::new(FormatErrorKind::NoSuchSheet, "the workbook has no worksheet to read")),
        Some(wanted) => worksheets
            .iter()
            .find(|s| s.as_str() == wanted)
            .or_else(|| {
                worksheets.iter().find(|s| s.eq_ignore_ascii_case(wanted) || s.to_lowercase() == wanted.to_lowercase())
            })
            .cloned()
            .ok_or_else(|| {
                let available: Vec<String> = worksheets.iter().map(|s| format!("'{s}'")).collect();
                FormatError::new(
                    FormatErrorKind::NoSuchSheet,
                    format!(
                        "the workbook has no sheet named '{wanted}'; its sheets are {}",
                        if available.is_empty() { "none".to_string() } else { available.join(", ") }
                    ),
                )
            }),
    }
}

fn workbook_error(e: &calamine::XlsxError) -> FormatError {
    FormatError::new(
        FormatErrorKind::Malformed,
        format!("the file is not a readable Excel workbook (.xlsx): {e}; open and save it in Excel and try again"),
    )
}
