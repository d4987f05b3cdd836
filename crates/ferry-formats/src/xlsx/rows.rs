//! Rows of one sheet, put together from calamine's stream of cells (which come in row order), and
//! the conversion of Excel values to cells: numbers keep their shortest exact text (`12`, not
//! `12.0`), dates become ISO 8601 text, error values (`#N/A`) make the row a record error.

use crate::record::Input;
use crate::{Cell, FormatError, FormatErrorKind, Limits, SourceRecord};
use calamine::{DataRef, ExcelDateTime, XlsxCellReader};
use std::collections::HashMap;

type CellReader<'a> = XlsxCellReader<'a, Box<dyn Input>>;

pub(super) struct Rows<'a> {
    cells: CellReader<'a>,
    /// The first cell of the next row, read while looking for the end of the current one.
    pending: Option<calamine::Cell<DataRef<'a>>>,
    finished: bool,
    last_row: Option<u32>,
    columns: Vec<String>,
    max_field_bytes: usize,
    max_record_bytes: usize,
    max_columns: usize,
}

impl<'a> Rows<'a> {
    pub(super) fn new(cells: CellReader<'a>, limits: &Limits) -> Self {
        Rows {
            cells,
            pending: None,
            finished: false,
            last_row: None,
            columns: Vec::new(),
            max_field_bytes: limits.max_field_bytes,
            max_record_bytes: limits.max_record_bytes,
            max_columns: limits.max_columns,
        }
    }

    fn next_cell(&mut self) -> Result<Option<calamine::Cell<DataRef<'a>>>, FormatError> {
        if let Some(cell) = self.pending.take() {
            return Ok(Some(cell));
        }
        if self.finished {
            return Ok(None);
        }
        match self.cells.next_cell() {
            Ok(Some(cell)) => Ok(Some(cell)),
            Ok(None) => {
                self.finished = true;
                Ok(None)
            }
            Err(e) => Err(FormatError::new(
                FormatErrorKind::Malformed,
                format!("the sheet cannot be read: {e}; open and save the workbook in Excel and try again"),
            )),
        }
    }

    /// Hands the cells of the next row to `sink` (column, value); the row's index from 0, `None`
    /// at the end of the sheet.
    fn read_row(
        &mut self,
        mut sink: impl FnMut(usize, DataRef<'a>) -> Result<(), FormatError>,
    ) -> Result<Option<u32>, FormatError> {
        let Some(first) = self.next_cell()? else { return Ok(None) };
        let (row, col) = first.get_position();
        if self.last_row.is_some_and(|last| row <= last) {
            return Err(FormatError::new(
                FormatErrorKind::Malformed,
                format!("the sheet's rows are out of order at row {}; open and save it in Excel", row as u64 + 1),
            ));
        }
        self.last_row = Some(row);
        sink(col as usize, first.get_value().clone())?;
        while let Some(cell) = self.next_cell()? {
            let (r, col) = cell.get_position();
            if r != row {
                self.pending = Some(cell);
                break;
            }
            sink(col as usize, cell.get_value().clone())?;
        }
        Ok(Some(row))
    }

    /// Reads the header row: the first row with a value.
    pub(super) fn header(&mut self) -> Result<Vec<String>, FormatError> {
        let max_columns = self.max_columns;
        let mut names: Vec<String> = Vec::new();
        let row = loop {
            let row = self.read_row(|col, value| {
                let name = header_text(&value);
                if name.is_empty() {
                    return Ok(());
                }
                if col >= max_columns {
                    return Err(FormatError::new(
                        FormatErrorKind::LimitExceeded,
                        format!("the header row has more than {max_columns} columns (max_columns)"),
                    ));
                }
                if names.len() <= col {
                    names.resize(col + 1, String::new());
                }
                names[col] = name;
                Ok(())
            })?;
            match row {
                None => {
                    return Err(FormatError::new(
                        FormatErrorKind::BadHeader,
                        "the sheet is empty: its first row must be a header naming the columns",
                    ));
                }
                // Rows of formatted but empty cells before the header are skipped.
                Some(_) if names.is_empty() => {}
                Some(row) => break row,
            }
        };
        let header_row = row as u64 + 1;
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (col, name) in names.iter().enumerate() {
            let cell = format!("{}{header_row}", column_letters(col));
            if name.is_empty() {
                return Err(FormatError::new(
                    FormatErrorKind::BadHeader,
                    format!("cell {cell} of the header row is empty: every column needs a name"),
                )
                .at_row(header_row));
            }
            if let Some(first) = seen.insert(name.to_lowercase(), col) {
                return Err(FormatError::new(
                    FormatErrorKind::BadHeader,
                    format!(
                        "the header row names this column twice (cells {}{header_row} and {cell}; names are compared \
                         ignoring case): rename or remove one of them",
                        column_letters(first)
                    ),
                )
                .at_row(header_row)
                .in_column(name.clone()));
            }
        }
        self.columns = names.clone();
        Ok(names)
    }

    /// The next row with data (rows whose cells are all empty are skipped).
    pub(super) fn next_row(&mut self) -> Option<Result<SourceRecord, FormatError>> {
        let width = self.columns.len();
        let (max_field, max_record) = (self.max_field_bytes, self.max_record_bytes);
        loop {
            let mut cells = vec![Cell::Null; width];
            let mut problem: Option<(FormatError, Option<usize>)> = None;
            let mut bytes = 0usize;
            let mut any = false;
            let row = self.read_row(|col, value| {
                if matches!(value, DataRef::Empty) {
                    return Ok(());
                }
                any = true;
                if col >= width {
                    problem.get_or_insert_with(|| {
                        let message = format!(
                            "the row has a value in column {}, which has no header: add a header or clear the cell",
                            column_letters(col)
                        );
                        (FormatError::new(FormatErrorKind::FieldCount, message), None)
                    });
                    return Ok(());
                }
                match convert(value, max_field) {
                    Ok(cell) => {
                        bytes += match &cell {
                            Cell::Text(s) | Cell::Number(s) => s.len(),
                            Cell::Null | Cell::Bool(_) => 1,
                        };
                        if bytes > max_record {
                            return Err(FormatError::new(
                                FormatErrorKind::LimitExceeded,
                                format!("the row is longer than {max_record} bytes (max_record_bytes)"),
                            ));
                        }
                        cells[col] = cell;
                    }
                    Err(e) => {
                        problem.get_or_insert((e, Some(col)));
                    }
                }
                Ok(())
            });
            let row = match row {
                Ok(Some(row)) => row as u64 + 1,
                Ok(None) => return None,
                Err(e) => {
                    let e = match self.last_row {
                        Some(last) if e.row.is_none() => e.at_row(last as u64 + 1),
                        _ => e,
                    };
                    return Some(Err(e));
                }
            };
            if let Some((error, col)) = problem {
                let error = error.at_row(row);
                return Some(Err(match col.and_then(|c| self.columns.get(c)) {
                    Some(name) => error.in_column(name.clone()),
                    None => error,
                }));
            }
            if any {
                return Some(Ok(SourceRecord { row, cells }));
            }
        }
    }
}

/// A header cell's text: the value as Excel shows it, trimmed.
fn header_text(value: &DataRef<'_>) -> String {
    match convert(value.clone(), usize::MAX) {
        Ok(Cell::Text(s)) | Ok(Cell::Number(s)) => s.trim().to_string(),
        Ok(Cell::Bool(b)) => if b { "TRUE" } else { "FALSE" }.to_string(),
        Ok(Cell::Null) | Err(_) => String::new(),
    }
}

fn convert(value: DataRef<'_>, max_field_bytes: usize) -> Result<Cell, FormatError> {
    let text = |s: String| {
        if s.len() > max_field_bytes {
            Err(FormatError::new(
                FormatErrorKind::FieldTooLarge,
                format!("the value is {} bytes long; the limit is {max_field_bytes} bytes (max_field_bytes)", s.len()),
            ))
        } else {
            Ok(Cell::Text(s))
        }
    };
    match value {
        DataRef::Empty => Ok(Cell::Null),
        DataRef::Int(i) => Ok(Cell::Number(i.to_string())),
        // `Display` of an f64 is its shortest exact decimal form, never with an exponent.
        DataRef::Float(f) if f.is_finite() => Ok(Cell::Number(format!("{f}"))),
        DataRef::Float(_) => Err(invalid("the cell holds a number Excel cannot show (infinite or not a number)")),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => text(s),
        DataRef::SharedString(s) => text(s.to_string()),
        DataRef::Bool(b) => Ok(Cell::Bool(b)),
        DataRef::DateTime(d) => date_text(&d).map(Cell::Text),
        DataRef::Error(e) => Err(invalid(&format!(
            "the cell holds the Excel error {e}: correct the formula or enter a value, and try again"
        ))),
    }
}

/// An Excel date as ISO 8601: `2024-01-31`, `2024-01-31T13:45:00`, or `13:45:00` for a time of
/// day; a duration as `hours:mm:ss`.
fn date_text(date: &ExcelDateTime) -> Result<String, FormatError> {
    let serial = date.as_f64();
    if !serial.is_finite() || !(0.0..2_958_466.0).contains(&serial) {
        return Err(invalid(&format!("the cell holds {serial}, which is not a date Excel can show")));
    }
    if date.is_duration() {
        let ms = (serial * 86_400_000.0).round() as u64;
        let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        return Ok(if milli > 0 { format!("{h}:{m:02}:{s:02}.{milli:03}") } else { format!("{h}:{m:02}:{s:02}") });
    }
    let (year, month, day, h, m, s, milli) = date.to_ymd_hms_milli();
    let time = if milli > 0 { format!("{h:02}:{m:02}:{s:02}.{milli:03}") } else { format!("{h:02}:{m:02}:{s:02}") };
    Ok(if serial < 1.0 {
        time
    } else if (h, m, s, milli) == (0, 0, 0, 0) {
        format!("{year:04}-{month:02}-{day:02}")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{time}")
    })
}

fn invalid(message: &str) -> FormatError {
    FormatError::new(FormatErrorKind::InvalidRecord, message)
}

/// `0` → `A`, `25` → `Z`, `26` → `AA`.
pub(crate) fn column_letters(col: usize) -> String {
    let mut n = col + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(char::from(b'A' + rem as u8));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}
