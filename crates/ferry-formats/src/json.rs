//! JSON: [`JsonReader`] streams records from a top-level array of objects (`[{…}, {…}]`) or from
//! objects one after another (NDJSON: one per line; blank lines and pretty-printed objects are
//! fine too). The first non-blank byte tells which.
//!
//! The file is never parsed whole: a small scanner (strings, escapes and bracket nesting) cuts out
//! one element at a time, at most `max_record_bytes` of it, and only that element goes to
//! serde_json. Values keep their source text where it matters: a number stays exactly as written
//! (`12345678901234567890.123456789` keeps every digit), because each value is taken as a raw
//! slice and classified by its first character.

use crate::encoding::Utf8Reader;
use crate::record::{DiscoveredColumns, Input};
use crate::{Cell, FormatError, FormatErrorKind, Limits, RecordReader, SourceRecord};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::io::BufRead;

/// Deepest nesting the scanner follows inside one element (nested values are refused anyway).
const MAX_DEPTH: usize = 128;

/// A streaming reader of JSON records.
pub struct JsonReader {
    src: Utf8Reader<Box<dyn Input>>,
    /// Bytes of the (UTF-8) text consumed so far, for messages.
    offset: u64,
    state: State,
    max_field_bytes: usize,
    max_record_bytes: usize,
    columns: DiscoveredColumns,
    record: u64,
    element: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Inside `[`, before the first element.
    ArrayStart,
    /// Inside `[`, after an element.
    ArrayNext,
    /// Objects one after another.
    Stream,
    Done,
}

impl JsonReader {
    pub fn open(input: Box<dyn Input>, limits: &Limits) -> Result<Self, FormatError> {
        let mut reader = JsonReader {
            src: Utf8Reader::new(input)?,
            offset: 0,
            state: State::Stream,
            max_field_bytes: limits.max_field_bytes,
            max_record_bytes: limits.max_record_bytes,
            columns: DiscoveredColumns::new(limits.max_columns),
            record: 0,
            element: Vec::new(),
        };
        reader.state = match reader.peek()? {
            None => State::Done,
            Some(b'[') => {
                reader.bump();
                State::ArrayStart
            }
            Some(b'{') => State::Stream,
            Some(b) => {
                return Err(reader.malformed(&format!(
                    "a JSON file must hold an array of objects ([{{…}}, {{…}}]) or one object per line, but it \
                     starts with '{}'",
                    char::from(b).escape_default()
                )));
            }
        };
        Ok(reader)
    }

    /// The next byte that is not white space, left unread; `None` at the end of the input.
    fn peek(&mut self) -> Result<Option<u8>, FormatError> {
        loop {
            let chunk = self.src.fill_buf().map_err(FormatError::from)?;
            if chunk.is_empty() {
                return Ok(None);
            }
            match chunk.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n')) {
                Some(i) => {
                    let b = chunk[i];
                    self.src.consume(i);
                    self.offset += i as u64;
                    return Ok(Some(b));
                }
                None => {
                    let n = chunk.len();
                    self.src.consume(n);
                    self.offset += n as u64;
                }
            }
        }
    }

    /// Consumes the byte [`JsonReader::peek`] returned.
    fn bump(&mut self) {
        self.src.consume(1);
        self.offset += 1;
    }

    fn malformed(&self, what: &str) -> FormatError {
        FormatError::new(FormatErrorKind::Malformed, format!("the JSON is malformed at byte {}: {what}", self.offset))
    }

    /// Finds the next element, or the end; fatal errors for broken structure between elements.
    fn advance(&mut self) -> Result<bool, FormatError> {
        loop {
            if self.state == State::Done {
                return Ok(false);
            }
            match (self.state, self.peek()?) {
                (State::Done, _) => return Ok(false),
                (State::Stream, None) => {
                    self.state = State::Done;
                    return Ok(false);
                }
                (State::Stream, Some(b',')) => {
                    return Err(self.malformed(&format!(
                        "a ',' after record {}: records one per line are not separated by commas (or wrap them \
                         all in [ ])",
                        self.record
                    )));
                }
                (State::Stream, Some(_)) => return Ok(true),
                (State::ArrayStart | State::ArrayNext, None) => {
                    return Err(self.malformed("the file ends before the array's closing ']'; it may be truncated"));
                }
                (State::ArrayStart | State::ArrayNext, Some(b']')) => {
                    self.bump();
                    return match self.peek()? {
                        None => {
                            self.state = State::Done;
                            Ok(false)
                        }
                        Some(_) => Err(self.malformed("there is more after the array's closing ']'")),
                    };
                }
                (State::ArrayStart, Some(_)) => return Ok(true),
                (State::ArrayNext, Some(b',')) => {
                    self.bump();
                    match self.peek()? {
                        Some(b']') => return Err(self.malformed("a ',' before the closing ']' (a trailing comma)")),
                        Some(_) => return Ok(true),
                        None => self.state = State::ArrayNext,
                    }
                }
                (State::ArrayNext, Some(b)) => {
                    return Err(self.malformed(&format!(
                        "expected ',' or ']' after record {} but found '{}'",
                        self.record,
                        char::from(b).escape_default()
                    )));
                }
            }
        }
    }

    /// Cuts one element (starting at the next byte, which is not white space) into `self.element`.
    fn cut(&mut self) -> Result<(), FormatError> {
        self.element.clear();
        let mut stack: Vec<u8> = Vec::new();
        let mut in_string = false;
        let mut escaped = false;
        let mut scalar = false;
        let mut first = true;
        loop {
            let chunk = self.src.fill_buf().map_err(FormatError::from)?;
            if chunk.is_empty() {
                if scalar {
                    return Ok(());
                }
                return Err(
                    self.malformed(&format!("the file ends inside record {}; it may be truncated", self.record))
                );
            }
            let mut used = 0;
            let mut complete = false;
            let mut error: Option<String> = None;
            for &b in chunk {
                if first {
                    first = false;
                    scalar = !matches!(b, b'{' | b'[' | b'"');
                }
                if scalar {
                    if matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b',' | b']' | b'}' | b'[' | b'{' | b'"') {
                        complete = true;
                        break;
                    }
                    used += 1;
                    continue;
                }
                used += 1;
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                        if stack.is_empty() {
                            complete = true;
                            break;
                        }
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'{' => stack.push(b'}'),
                    b'[' => stack.push(b']'),
                    b'}' | b']' => {
                        if stack.pop() != Some(b) {
                            error = Some(format!("a '{}' that closes nothing open", char::from(b)));
                            break;
                        }
                        if stack.is_empty() {
                            complete = true;
                            break;
                        }
                    }
                    _ => {}
                }
                if stack.len() > MAX_DEPTH {
                    error = Some(format!("values nested more than {MAX_DEPTH} deep"));
                    break;
                }
            }
            self.element.extend_from_slice(&chunk[..used]);
            self.src.consume(used);
            self.offset += used as u64;
            if let Some(error) = error {
                return Err(self.malformed(&format!("in record {}: {error}", self.record)));
            }
            if self.element.len() > self.max_record_bytes {
                return Err(FormatError::new(
                    FormatErrorKind::LimitExceeded,
                    format!(
                        "the record is longer than {} bytes (max_record_bytes); if that is not expected, look for a \
                         string whose closing quote is missing",
                        self.max_record_bytes
                    ),
                )
                .at_row(self.record));
            }
            if complete {
                return Ok(());
            }
        }
    }

    /// Turns the element cut out into a record.
    fn parse(&mut self) -> Result<SourceRecord, FormatError> {
        let row = self.record;
        let text = std::str::from_utf8(&self.element)
            .map_err(|_| FormatError::new(FormatErrorKind::InvalidEncoding, "the record is not valid UTF-8"))?;
        if !text.starts_with('{') {
            if let Err(e) = serde_json::from_str::<&RawValue>(text) {
                return Err(self.malformed(&format!("in record {row}: {e}")));
            }
            let kind = match text.as_bytes().first() {
                Some(b'[') => "an array",
                Some(b'"') => "a string",
                Some(b't' | b'f') => "a boolean",
                Some(b'n') => "null",
                _ => "a number",
            };
            return Err(FormatError::new(
                FormatErrorKind::InvalidRecord,
                format!(
                    "the record is {kind}, not an object: every record must be a JSON object {{\"FIELD\": value, …}}"
                ),
            ));
        }
        let fields = match serde_json::from_str::<Fields<'_>>(text) {
            Ok(fields) => fields.0,
            Err(e) => return Err(self.malformed(&format!("in record {row}: {e}"))),
        };
        let mut cells: Vec<Option<Cell>> = Vec::new();
        let mut problem: Option<FormatError> = None;
        for (name, raw) in fields {
            let index = self.columns.index_of(&name)?;
            if cells.len() <= index {
                cells.resize(index + 1, None);
            }
            if problem.is_some() {
                continue;
            }
            if cells[index].is_some() {
                problem = Some(
                    FormatError::new(
                        FormatErrorKind::InvalidRecord,
                        "the field appears twice in the object (names are compared ignoring case)",
                    )
                    .in_column(name),
                );
                continue;
            }
            match self.cell(raw) {
                Ok(cell) => cells[index] = Some(cell),
                Err(e) => problem = Some(e.in_column(name)),
            }
        }
        if let Some(problem) = problem {
            return Err(problem);
        }
        let mut cells: Vec<Cell> = cells.into_iter().map(|c| c.unwrap_or(Cell::Null)).collect();
        cells.resize(self.columns.names().len(), Cell::Null);
        Ok(SourceRecord { row, cells })
    }

    fn cell(&self, raw: &RawValue) -> Result<Cell, FormatError> {
        let text = raw.get();
        let cell = match text.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<String>(text).map(Cell::Text).map_err(|e| {
                FormatError::new(FormatErrorKind::Malformed, format!("a string that cannot be read: {e}"))
            })?,
            Some(b't') => Cell::Bool(true),
            Some(b'f') => Cell::Bool(false),
            Some(b'n') => Cell::Null,
            Some(b'{' | b'[') => {
                return Err(FormatError::new(
                    FormatErrorKind::InvalidRecord,
                    format!(
                        "the field holds a nested {}: ferry reads flat records, so give each value a field of its own",
                        if text.starts_with('{') { "object" } else { "array" }
                    ),
                ));
            }
            _ => Cell::Number(text.to_string()),
        };
        if let Cell::Text(value) | Cell::Number(value) = &cell
            && value.len() > self.max_field_bytes
        {
            return Err(FormatError::new(
                FormatErrorKind::FieldTooLarge,
                format!(
                    "the value is {} bytes long; the limit is {} bytes (max_field_bytes)",
                    value.len(),
                    self.max_field_bytes
                ),
            ));
        }
        Ok(cell)
    }
}

impl RecordReader for JsonReader {
    fn columns(&self) -> &[String] {
        self.columns.names()
    }

    fn next_record(&mut self) -> Option<Result<SourceRecord, FormatError>> {
        if self.state == State::Done {
            return None;
        }
        let result = match self.advance() {
            Ok(false) => return None,
            Ok(true) => {
                self.record += 1;
                if self.state == State::ArrayStart {
                    self.state = State::ArrayNext;
                }
                let row = self.record;
                self.cut().and_then(|()| self.parse()).map_err(|e| if e.row.is_none() { e.at_row(row) } else { e })
            }
            Err(e) => Err(e),
        };
        if let Err(e) = &result
            && e.is_fatal()
        {
            self.state = State::Done;
        }
        Some(result)
    }
}

/// An object's members in source order, each value as its raw text.
struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: &'de RawValue = map.next_value()?;
            fields.push((key, value));
        }
        Ok(Fields(fields))
    }
}
