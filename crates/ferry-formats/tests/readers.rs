//! The readers and the rejected-rows writer against real files: a realistic sample per format,
//! the encodings, and hostile input (invalid bytes, DTDs, oversized fields and records, broken
//! structure). One test binary; each format has a module under `readers/`.

#[path = "readers/csv.rs"]
mod csv;
#[path = "readers/json.rs"]
mod json;
#[path = "readers/rejected.rs"]
mod rejected;
#[path = "readers/xlsx.rs"]
mod xlsx;
#[path = "readers/xml.rs"]
mod xml;

use ferry_domain::DataFormat;
use ferry_formats::{Cell, FormatError, FormatErrorKind, Limits, SourceRecord, open_reader};
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Everything a reader gives for `bytes`: its final columns and every record or error.
pub fn read_all(format: &DataFormat, bytes: Vec<u8>, limits: &Limits) -> Result<Outcome, FormatError> {
    let mut reader = open_reader(format, Box::new(Cursor::new(bytes)), limits)?;
    let mut items = Vec::new();
    while let Some(item) = reader.next_record() {
        items.push(item);
        assert!(items.len() < 100_000, "the reader does not end");
    }
    assert!(reader.next_record().is_none(), "a finished reader stays finished");
    Ok(Outcome { columns: reader.columns().to_vec(), items })
}

pub struct Outcome {
    pub columns: Vec<String>,
    pub items: Vec<Result<SourceRecord, FormatError>>,
}

impl Outcome {
    /// The records, failing on any error.
    pub fn records(&self) -> Vec<SourceRecord> {
        self.items.iter().map(|i| i.clone().unwrap_or_else(|e| panic!("unexpected error: {e}"))).collect()
    }

    pub fn errors(&self) -> Vec<FormatError> {
        self.items.iter().filter_map(|i| i.clone().err()).collect()
    }
}

pub fn t(s: &str) -> Cell {
    Cell::Text(s.to_string())
}

pub fn n(s: &str) -> Cell {
    Cell::Number(s.to_string())
}

pub fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

pub fn fatal(result: Result<Outcome, FormatError>) -> FormatError {
    match result {
        Err(e) => e,
        Ok(outcome) => {
            let last = outcome.items.last().cloned().expect("no records and no error");
            last.expect_err("expected the read to end with an error")
        }
    }
}

pub fn assert_kind(error: &FormatError, kind: FormatErrorKind) {
    assert_eq!(error.kind, kind, "unexpected error: {error}");
}

/// An endless input: `head`, then `fill` repeated up to `total` bytes, counting what was read,
/// so a test can show a reader gave up early instead of buffering the whole thing.
pub struct Generated {
    head: Vec<u8>,
    fill: u8,
    total: u64,
    pos: u64,
    pub read: Arc<AtomicU64>,
}

impl Generated {
    pub fn new(head: &[u8], fill: u8, total: u64) -> Self {
        Generated { head: head.to_vec(), fill, total, pos: 0, read: Arc::new(AtomicU64::new(0)) }
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.total.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let at = self.pos + i as u64;
            *b = self.head.get(at as usize).copied().unwrap_or(self.fill);
        }
        self.pos += n as u64;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Seek for Generated {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        match to {
            SeekFrom::Start(p) => self.pos = p,
            SeekFrom::Current(d) => self.pos = self.pos.saturating_add_signed(d),
            SeekFrom::End(d) => self.pos = self.total.saturating_add_signed(d),
        }
        Ok(self.pos)
    }
}

/// UTF-16 with a byte-order mark.
pub fn utf16(text: &str, little_endian: bool) -> Vec<u8> {
    let mut out = if little_endian { vec![0xFF, 0xFE] } else { vec![0xFE, 0xFF] };
    for unit in text.encode_utf16() {
        out.extend_from_slice(&if little_endian { unit.to_le_bytes() } else { unit.to_be_bytes() });
    }
    out
}

#[test]
fn readers_and_the_writer_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<ferry_formats::csv::CsvReader>();
    send::<ferry_formats::xml::XmlReader>();
    send::<ferry_formats::json::JsonReader>();
    send::<ferry_formats::xlsx::XlsxReader>();
    send::<ferry_formats::writer::RecordWriter>();
}
