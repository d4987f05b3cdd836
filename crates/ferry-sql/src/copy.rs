//! [`CopyData`]: rows encoded in PostgreSQL's `COPY … FROM STDIN` text format as they are
//! added, for [`crate::Conn::copy_in`] — the bulk path that skips statement parsing and
//! parameter binding altogether. Values never enter SQL text here either: they travel in the
//! COPY data stream, escaped, and the server parses each by its column's type.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use ferry_model::Value;
use std::io::Write as _;

/// Rows in COPY text format: columns separated by tabs, rows ended by newlines, `\N` for NULL,
/// backslash, tab, newline and carriage return escaped.
#[derive(Debug, Default)]
pub struct CopyData {
    buf: Vec<u8>,
    rows: u64,
    /// Whether the current row has a value yet (the next one needs a tab before it).
    in_row: bool,
}

impl CopyData {
    pub fn new() -> CopyData {
        CopyData::default()
    }

    /// A buffer with room for about `bytes` bytes.
    pub fn with_capacity(bytes: usize) -> CopyData {
        CopyData { buf: Vec::with_capacity(bytes), rows: 0, in_row: false }
    }

    /// Adds the next value of the current row.
    pub fn value(&mut self, value: &Value) {
        self.separate();
        let buf = &mut self.buf;
        match value {
            Value::Null => buf.extend_from_slice(b"\\N"),
            Value::String(s) => escape(buf, s),
            Value::Int(i) => {
                let _ = write!(buf, "{i}");
            }
            Value::Decimal(d) => buf.extend_from_slice(d.as_str().as_bytes()),
            Value::Real(r) if r.is_nan() => buf.extend_from_slice(b"NaN"),
            Value::Real(r) if r.is_infinite() => {
                buf.extend_from_slice(if *r > 0.0 { b"Infinity" } else { b"-Infinity" })
            }
            // Rust prints the shortest text that reads back as the same double.
            Value::Real(r) => {
                let _ = write!(buf, "{r}");
            }
            Value::Bool(b) => buf.push(if *b { b't' } else { b'f' }),
            Value::Date(d) => date(buf, d),
            Value::DateTime(t) => datetime(buf, t),
            Value::Guid(g) => {
                buf.extend_from_slice(g.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).as_bytes())
            }
        }
    }

    /// Adds a text value to the current row (as [`CopyData::value`] of a `Value::String`).
    pub fn text(&mut self, text: &str) {
        self.separate();
        escape(&mut self.buf, text);
    }

    /// A tab before every value of a row but its first.
    fn separate(&mut self) {
        if self.in_row {
            self.buf.push(b'\t');
        }
        self.in_row = true;
    }

    /// Ends the current row.
    pub fn end_row(&mut self) {
        self.buf.push(b'\n');
        self.rows += 1;
        self.in_row = false;
    }

    /// Rows ended so far (sent or not).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes encoded and not sent yet.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Forgets what was encoded (after sending it), keeping the buffer.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.in_row = false;
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

fn escape(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        buf.extend_from_slice(escaped);
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// `YYYY-MM-DD`; years outside 1–9999 in PostgreSQL's own spelling (`0044-03-15 BC`).
fn date(buf: &mut Vec<u8>, d: &NaiveDate) {
    let year = d.year();
    let (shown, bc) = if year <= 0 { (1 - year, true) } else { (year, false) };
    let _ = write!(buf, "{shown:04}-{:02}-{:02}", d.month(), d.day());
    if bc {
        buf.extend_from_slice(b" BC");
    }
}

/// `YYYY-MM-DD HH:MM:SS.ffffff+00` (UTC, to the microsecond).
fn datetime(buf: &mut Vec<u8>, t: &DateTime<Utc>) {
    let d = t.date_naive();
    let year = d.year();
    let (shown, bc) = if year <= 0 { (1 - year, true) } else { (year, false) };
    let micros = t.nanosecond() % 1_000_000_000 / 1_000;
    let _ = write!(
        buf,
        "{shown:04}-{:02}-{:02} {:02}:{:02}:{:02}.{micros:06}+00",
        d.month(),
        d.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if bc {
        buf.extend_from_slice(b" BC");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use ferry_model::Decimal;

    #[test]
    fn rows_are_tab_separated_and_escaped() {
        let mut data = CopyData::new();
        data.value(&Value::String("a\tb\\c\nd\re".into()));
        data.value(&Value::Null);
        data.text("x\ty");
        data.value(&Value::Int(-42));
        data.value(&Value::Decimal(Decimal::from_canonical("12.5".into())));
        data.end_row();
        data.value(&Value::Bool(true));
        data.value(&Value::Real(0.1));
        data.value(&Value::Real(f64::NEG_INFINITY));
        data.value(&Value::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()));
        data.value(&Value::DateTime(Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap()));
        data.value(&Value::Guid(uuid::Uuid::from_u128(1)));
        data.end_row();
        let text = String::from_utf8(data.bytes().to_vec()).unwrap();
        assert_eq!(
            text,
            "a\\tb\\\\c\\nd\\re\t\\N\tx\\ty\t-42\t12.5\n\
             t\t0.1\t-Infinity\t2024-02-29\t2024-01-02 03:04:05.000000+00\t00000000-0000-0000-0000-000000000001\n"
        );
        assert_eq!(data.rows(), 2);
    }

    #[test]
    fn years_before_christ_use_postgres_spelling() {
        let mut data = CopyData::new();
        data.value(&Value::Date(NaiveDate::from_ymd_opt(-43, 3, 15).unwrap()));
        data.end_row();
        assert_eq!(data.bytes(), b"0044-03-15 BC\n");
    }
}
