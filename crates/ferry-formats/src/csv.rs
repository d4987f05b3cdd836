//! Delimited text (CSV): [`CsvReader`] streams records from a file with a header row, in UTF-8
//! or UTF-16 (found from the byte-order mark), with fields quoted the RFC 4180 way (doubled quotes,
//! embedded delimiters and line breaks), CRLF or LF line ends.
//!
//! The parser is a small state machine of its own rather than the `csv` crate's, for two reasons:
//! it never holds more than `max_field_bytes` of one field or `max_record_bytes` of one record
//! (a single 10 GB line fails after its first 16 MiB), and it notices a quote that is never
//! closed instead of silently swallowing the rest of the file into one field.

use crate::encoding::Utf8Reader;
use crate::record::Input;
use crate::{Cell, FormatError, FormatErrorKind, Limits, RecordReader, SourceRecord};
use std::collections::HashMap;
use std::io::BufRead;

/// The delimiters a CSV file may use.
pub const DELIMITERS: [u8; 5] = [b',', b';', b'\t', b'|', b':'];

/// The delimiter that occurs most often outside quotes in `first_line` (a header row), `,` if none.
pub fn sniff_delimiter(first_line: &str) -> u8 {
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    for b in first_line.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(i) = DELIMITERS.iter().position(|&d| d == b) {
            counts[i] += 1;
        }
    }
    let mut best = 0;
    for i in 1..DELIMITERS.len() {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    if counts[best] == 0 { b',' } else { DELIMITERS[best] }
}

/// A streaming reader of delimited text with a header row.
pub struct CsvReader {
    src: Utf8Reader<Box<dyn Input>>,
    parser: Parser,
    columns: Vec<String>,
    done: bool,
}

impl CsvReader {
    /// Reads the header row. `delimiter` must be one of [`DELIMITERS`].
    pub fn open(input: Box<dyn Input>, delimiter: u8, limits: &Limits) -> Result<Self, FormatError> {
        if !DELIMITERS.contains(&delimiter) {
            return Err(FormatError::new(
                FormatErrorKind::Malformed,
                format!(
                    "'{}' cannot be a CSV delimiter: use one of , ; tab | :",
                    char::from(delimiter).escape_default()
                ),
            ));
        }
        let mut src = Utf8Reader::new(input)?;
        let mut parser = Parser::new(delimiter, limits);
        let header = parser.read(&mut src, limits.max_columns.saturating_add(1))?.ok_or_else(|| {
            FormatError::new(
                FormatErrorKind::BadHeader,
                "the file is empty: its first line must be a header row naming the columns",
            )
        })?;
        let columns = header_columns(header, limits)?;
        Ok(CsvReader { src, parser, columns, done: false })
    }
}

/// Checks the header row: not too wide, every column named, no name twice (ignoring case).
fn header_columns(header: RawRecord, limits: &Limits) -> Result<Vec<String>, FormatError> {
    if header.field_count > limits.max_columns {
        return Err(FormatError::new(
            FormatErrorKind::LimitExceeded,
            format!("the header has {} columns; the limit is {} (max_columns)", header.field_count, limits.max_columns),
        )
        .at_row(header.start_line));
    }
    if let Some((index, len)) = header.oversized {
        return Err(FormatError::new(
            FormatErrorKind::BadHeader,
            format!(
                "header column {} is {len} bytes long; a column name may be at most {} bytes",
                index + 1,
                limits.max_field_bytes
            ),
        )
        .at_row(header.start_line));
    }
    let mut columns = Vec::with_capacity(header.ends.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, raw) in header.texts()?.enumerate() {
        let name = raw.trim().to_string();
        if name.is_empty() {
            return Err(FormatError::new(
                FormatErrorKind::BadHeader,
                format!("column {} of the header row is empty: every column needs a name", index + 1),
            )
            .at_row(header.start_line));
        }
        if let Some(first) = seen.insert(name.to_lowercase(), index) {
            return Err(FormatError::new(
                FormatErrorKind::BadHeader,
                format!(
                    "the header row names this column twice (columns {} and {}; names are compared ignoring \
                     case): rename or remove one of them",
                    first + 1,
                    index + 1
                ),
            )
            .at_row(header.start_line)
            .in_column(name));
        }
        columns.push(name);
    }
    Ok(columns)
}

impl RawRecord {
    /// The kept fields' text.
    fn texts(&self) -> Result<impl Iterator<Item = &str>, FormatError> {
        // The input was checked to be UTF-8 and fields split only at ASCII bytes, so this holds,
        // and every field end is a character boundary (a field cut at `max_field_bytes` is
        // refused before its text is taken).
        let text = std::str::from_utf8(&self.bytes).map_err(|_| {
            FormatError::new(FormatErrorKind::InvalidEncoding, "a field is not valid UTF-8").at_row(self.start_line)
        })?;
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        Ok(starts.zip(&self.ends).map(move |(start, &end)| text.get(start..end).unwrap_or_default()))
    }
}

impl RecordReader for CsvReader {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next_record(&mut self) -> Option<Result<SourceRecord, FormatError>> {
        if self.done {
            return None;
        }
        let raw = match self.parser.read(&mut self.src, self.columns.len()) {
            Ok(Some(raw)) => raw,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        let row = raw.start_line;
        if raw.field_count != self.columns.len() {
            return Some(Err(FormatError::new(
                FormatErrorKind::FieldCount,
                format!(
                    "the record has {} field{}, the header has {}: check for an unquoted delimiter, a missing \
                     quote or a missing field",
                    raw.field_count,
                    if raw.field_count == 1 { "" } else { "s" },
                    self.columns.len()
                ),
            )
            .at_row(row)));
        }
        if let Some((index, len)) = raw.oversized {
            let column = self.columns.get(index).cloned().unwrap_or_default();
            return Some(Err(FormatError::new(
                FormatErrorKind::FieldTooLarge,
                format!(
                    "the value is {len} bytes long; the limit is {} bytes (max_field_bytes)",
                    self.parser.max_field_bytes
                ),
            )
            .at_row(row)
            .in_column(column)));
        }
        let cells: Result<Vec<Cell>, FormatError> =
            raw.texts().map(|texts| texts.map(|t| Cell::Text(t.to_owned())).collect());
        self.parser.reuse(raw);
        Some(cells.map(|cells| SourceRecord { row, cells }))
    }
}

/// One record as parsed: the first `keep` fields' bytes, one after the other, and how many
/// fields there were.
struct RawRecord {
    start_line: u64,
    bytes: Vec<u8>,
    /// Where each kept field ends in `bytes` (it starts where the one before ends).
    ends: Vec<usize>,
    field_count: usize,
    /// The first field longer than `max_field_bytes`: its index and full length.
    oversized: Option<(usize, usize)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between records (blank lines are skipped here).
    RecordStart,
    FieldStart,
    Unquoted,
    Quoted,
    /// Just read a quote inside a quoted field: a second quote is a literal quote.
    QuoteInQuoted,
}

struct Parser {
    delimiter: u8,
    max_field_bytes: usize,
    max_record_bytes: usize,
    state: State,
    /// The line of the next byte.
    line: u64,
    after_cr: bool,
    start_line: u64,
    record_bytes: usize,
    /// The kept fields of the record so far ([`RawRecord`]).
    bytes: Vec<u8>,
    ends: Vec<usize>,
    /// Where the field being read starts in `bytes`.
    field_start: usize,
    field_len: usize,
    field_count: usize,
    oversized: Option<(usize, usize)>,
    keep: usize,
}

/// What one byte did to the record.
enum Step {
    Continue,
    RecordEnd,
}

impl Parser {
    fn new(delimiter: u8, limits: &Limits) -> Self {
        Parser {
            delimiter,
            max_field_bytes: limits.max_field_bytes,
            max_record_bytes: limits.max_record_bytes,
            state: State::RecordStart,
            line: 1,
            after_cr: false,
            start_line: 1,
            record_bytes: 0,
            bytes: Vec::new(),
            ends: Vec::new(),
            field_start: 0,
            field_len: 0,
            field_count: 0,
            oversized: None,
            keep: 0,
        }
    }

    /// Parses the next record, keeping at most `keep` fields (the rest are only counted).
    fn read(&mut self, src: &mut impl BufRead, keep: usize) -> Result<Option<RawRecord>, FormatError> {
        self.keep = keep;
        loop {
            let chunk = match src.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) => {
                    let error = FormatError::from(e);
                    let row = if self.state == State::RecordStart { self.line } else { self.start_line };
                    return Err(if error.row.is_none() { error.at_row(row) } else { error });
                }
            };
            if chunk.is_empty() {
                return self.finish();
            }
            let mut used = 0;
            let mut ended = false;
            while used < chunk.len() {
                // Fast path: a run of ordinary bytes inside a field is taken whole.
                let run = self.ordinary_run(&chunk[used..]);
                if run > 0 {
                    self.push_run(&chunk[used..used + run])?;
                    used += run;
                    continue;
                }
                let b = chunk[used];
                used += 1;
                if let Step::RecordEnd = self.step(b)? {
                    ended = true;
                    break;
                }
            }
            src.consume(used);
            if ended {
                return Ok(Some(self.take()));
            }
        }
    }

    /// How many bytes at the start of `bytes` only extend the current field: no delimiter, quote
    /// or line break (outside a field, none).
    fn ordinary_run(&self, bytes: &[u8]) -> usize {
        let delimiter = self.delimiter;
        let special = |b: &u8| *b == delimiter || matches!(*b, b'"' | b'\r' | b'\n');
        match self.state {
            State::Unquoted | State::Quoted => bytes.iter().position(special).unwrap_or(bytes.len()),
            State::RecordStart | State::FieldStart | State::QuoteInQuoted => 0,
        }
    }

    /// Adds a run of ordinary bytes to the current field, as [`Parser::step`] would one by one.
    fn push_run(&mut self, run: &[u8]) -> Result<(), FormatError> {
        self.after_cr = false;
        self.record_bytes = self.record_bytes.saturating_add(run.len());
        if self.record_bytes > self.max_record_bytes {
            return Err(self.record_too_long());
        }
        self.field_len += run.len();
        if self.field_count < self.keep {
            let room = self.max_field_bytes.saturating_sub(self.bytes.len() - self.field_start);
            self.bytes.extend_from_slice(&run[..run.len().min(room)]);
        }
        Ok(())
    }

    fn record_too_long(&self) -> FormatError {
        FormatError::new(
            FormatErrorKind::LimitExceeded,
            format!(
                "the record is longer than {} bytes (max_record_bytes); if that is not expected, look for a quote \
                 that is never closed",
                self.max_record_bytes
            ),
        )
        .at_row(self.start_line)
    }

    fn step(&mut self, b: u8) -> Result<Step, FormatError> {
        let line = self.line;
        match b {
            b'\n' if self.after_cr => self.after_cr = false,
            b'\n' => self.line += 1,
            b'\r' => {
                self.line += 1;
                self.after_cr = true;
            }
            _ => self.after_cr = false,
        }
        let newline = b == b'\n' || b == b'\r';
        if self.state == State::RecordStart {
            if newline {
                return Ok(Step::Continue);
            }
            self.start_line = line;
            self.record_bytes = 0;
            self.state = State::FieldStart;
        }
        self.record_bytes += 1;
        if self.record_bytes > self.max_record_bytes {
            return Err(self.record_too_long());
        }
        match self.state {
            State::RecordStart | State::FieldStart => {
                if b == b'"' {
                    self.state = State::Quoted;
                } else {
                    return Ok(self.unquoted(b));
                }
            }
            State::Unquoted => return Ok(self.unquoted(b)),
            State::Quoted => {
                if b == b'"' {
                    self.state = State::QuoteInQuoted;
                } else {
                    self.push(b);
                }
            }
            State::QuoteInQuoted => {
                if b == b'"' {
                    self.push(b);
                    self.state = State::Quoted;
                } else {
                    // Text after a closing quote (`"ab"cd`) is kept, as spreadsheets do.
                    return Ok(self.unquoted(b));
                }
            }
        }
        Ok(Step::Continue)
    }

    /// A byte outside quotes.
    fn unquoted(&mut self, b: u8) -> Step {
        if b == self.delimiter {
            self.end_field();
            self.state = State::FieldStart;
            Step::Continue
        } else if b == b'\n' || b == b'\r' {
            self.end_field();
            self.state = State::RecordStart;
            Step::RecordEnd
        } else {
            self.push(b);
            self.state = State::Unquoted;
            Step::Continue
        }
    }

    fn push(&mut self, b: u8) {
        self.field_len += 1;
        if self.field_count < self.keep && self.bytes.len() - self.field_start < self.max_field_bytes {
            self.bytes.push(b);
        }
    }

    fn end_field(&mut self) {
        if self.field_len > self.max_field_bytes && self.oversized.is_none() && self.field_count < self.keep {
            self.oversized = Some((self.field_count, self.field_len));
        }
        if self.field_count < self.keep {
            self.ends.push(self.bytes.len());
        }
        self.field_start = self.bytes.len();
        self.field_len = 0;
        self.field_count += 1;
    }

    fn finish(&mut self) -> Result<Option<RawRecord>, FormatError> {
        match self.state {
            State::RecordStart => Ok(None),
            State::Quoted => Err(FormatError::new(
                FormatErrorKind::Malformed,
                format!(
                    "a quoted field that starts in the record on line {} is never closed: the file ends inside it; \
                     add the closing quote (a quote inside a field is written twice: \"\")",
                    self.start_line
                ),
            )
            .at_row(self.start_line)),
            State::FieldStart | State::Unquoted | State::QuoteInQuoted => {
                self.end_field();
                self.state = State::RecordStart;
                Ok(Some(self.take()))
            }
        }
    }

    /// Takes back a record's buffers once its fields were read, so the next record fills them
    /// without growing new ones.
    fn reuse(&mut self, mut record: RawRecord) {
        if self.bytes.is_empty() && self.ends.is_empty() {
            record.bytes.clear();
            record.ends.clear();
            (self.bytes, self.ends) = (record.bytes, record.ends);
        }
    }

    fn take(&mut self) -> RawRecord {
        let record = RawRecord {
            start_line: self.start_line,
            bytes: std::mem::take(&mut self.bytes),
            ends: std::mem::take(&mut self.ends),
            field_count: self.field_count,
            oversized: self.oversized.take(),
        };
        self.field_count = 0;
        self.field_start = 0;
        record
    }
}
