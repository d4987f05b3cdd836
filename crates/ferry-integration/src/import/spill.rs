//! The validated rows of one entity of an all-or-nothing import, kept in a local file between
//! validation and the final apply: the apply then reads typed rows from disk instead of the
//! source, so the one transaction that writes them holds the database's write lock only as long
//! as writing takes. Rows are written in batches: a header (rows, then the fields existing rows
//! take) and each row as its company and one tagged value per field.

use chrono::{DateTime, NaiveDate, Utc};
use ferry_domain::NewRow;
use ferry_model::{Decimal, Value};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

/// Writes batches of rows to a spill file.
pub(crate) struct SpillWriter {
    out: BufWriter<File>,
    rows: u64,
}

impl SpillWriter {
    pub fn create(path: &Path) -> io::Result<SpillWriter> {
        Ok(SpillWriter { out: BufWriter::with_capacity(256 * 1024, File::create(path)?), rows: 0 })
    }

    /// Appends one batch: its rows and the fields existing rows take from the file.
    pub fn write_batch(&mut self, update_fields: &[usize], rows: &[NewRow]) -> io::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        write_u32(&mut self.out, rows.len())?;
        write_u32(&mut self.out, update_fields.len())?;
        for &field in update_fields {
            write_u32(&mut self.out, field)?;
        }
        for row in rows {
            write_opt_text(&mut self.out, row.company.as_deref())?;
            write_u32(&mut self.out, row.values.len())?;
            for value in &row.values {
                write_value(&mut self.out, value)?;
            }
        }
        self.rows += rows.len() as u64;
        Ok(())
    }

    /// Flushes and syncs the file; answers the rows written.
    pub fn finish(mut self) -> io::Result<u64> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        Ok(self.rows)
    }
}

/// Reads the batches of a spill file back, in the order they were written.
pub(crate) struct SpillReader {
    input: BufReader<File>,
}

/// One batch read back: the fields existing rows take, and the rows.
pub(crate) struct SpillBatch {
    pub update_fields: Vec<usize>,
    pub rows: Vec<NewRow>,
}

impl SpillReader {
    pub fn open(path: &Path) -> io::Result<SpillReader> {
        Ok(SpillReader { input: BufReader::with_capacity(256 * 1024, File::open(path)?) })
    }

    /// The next batch, or `None` at the end of the file.
    pub fn next_batch(&mut self) -> io::Result<Option<SpillBatch>> {
        let Some(rows) = read_u32_or_end(&mut self.input)? else { return Ok(None) };
        let fields = read_u32(&mut self.input)?;
        let update_fields = (0..fields).map(|_| read_u32(&mut self.input)).collect::<io::Result<_>>()?;
        let mut batch = Vec::with_capacity(rows);
        for _ in 0..rows {
            let company = read_opt_text(&mut self.input)?;
            let n = read_u32(&mut self.input)?;
            let values = (0..n).map(|_| read_value(&mut self.input)).collect::<io::Result<_>>()?;
            batch.push(NewRow { company, values });
        }
        Ok(Some(SpillBatch { update_fields, rows: batch }))
    }
}

fn write_u32(out: &mut impl Write, n: usize) -> io::Result<()> {
    let n = u32::try_from(n).map_err(|_| io::Error::other("a spill count is over 4 billion"))?;
    out.write_all(&n.to_le_bytes())
}

fn write_text(out: &mut impl Write, text: &str) -> io::Result<()> {
    write_u32(out, text.len())?;
    out.write_all(text.as_bytes())
}

fn write_opt_text(out: &mut impl Write, text: Option<&str>) -> io::Result<()> {
    match text {
        None => out.write_all(&[0]),
        Some(text) => {
            out.write_all(&[1])?;
            write_text(out, text)
        }
    }
}

fn write_value(out: &mut impl Write, value: &Value) -> io::Result<()> {
    match value {
        Value::Null => out.write_all(&[0]),
        Value::String(s) => {
            out.write_all(&[1])?;
            write_text(out, s)
        }
        Value::Int(i) => {
            out.write_all(&[2])?;
            out.write_all(&i.to_le_bytes())
        }
        Value::Decimal(d) => {
            out.write_all(&[3])?;
            write_text(out, d.as_str())
        }
        Value::Real(r) => {
            out.write_all(&[4])?;
            out.write_all(&r.to_bits().to_le_bytes())
        }
        Value::Bool(b) => out.write_all(&[5, u8::from(*b)]),
        Value::Date(d) => {
            out.write_all(&[6])?;
            out.write_all(&chrono::Datelike::num_days_from_ce(d).to_le_bytes())
        }
        Value::DateTime(t) => {
            out.write_all(&[7])?;
            out.write_all(&t.timestamp_micros().to_le_bytes())
        }
        Value::Guid(g) => {
            out.write_all(&[8])?;
            out.write_all(g.as_bytes())
        }
    }
}

fn read_array<const N: usize>(input: &mut impl Read) -> io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    input.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn read_u32(input: &mut impl Read) -> io::Result<usize> {
    Ok(u32::from_le_bytes(read_array(input)?) as usize)
}

/// A count, or `None` at a clean end of the file.
fn read_u32_or_end(input: &mut impl Read) -> io::Result<Option<usize>> {
    let mut bytes = [0u8; 4];
    match input.read(&mut bytes[..1])? {
        0 => return Ok(None),
        _ => input.read_exact(&mut bytes[1..])?,
    }
    Ok(Some(u32::from_le_bytes(bytes) as usize))
}

fn read_text(input: &mut impl Read) -> io::Result<String> {
    let len = read_u32(input)?;
    let mut bytes = vec![0u8; len];
    input.read_exact(&mut bytes)?;
    String::from_utf8(bytes).map_err(|_| io::Error::other("a spilled text is not UTF-8"))
}

fn read_opt_text(input: &mut impl Read) -> io::Result<Option<String>> {
    match read_array::<1>(input)?[0] {
        0 => Ok(None),
        _ => read_text(input).map(Some),
    }
}

fn read_value(input: &mut impl Read) -> io::Result<Value> {
    let corrupt = || io::Error::other("the spill file is corrupt");
    Ok(match read_array::<1>(input)?[0] {
        0 => Value::Null,
        1 => Value::String(read_text(input)?),
        2 => Value::Int(i64::from_le_bytes(read_array(input)?)),
        3 => Value::Decimal(Decimal::from_canonical(read_text(input)?)),
        4 => Value::Real(f64::from_bits(u64::from_le_bytes(read_array(input)?))),
        5 => Value::Bool(read_array::<1>(input)?[0] != 0),
        6 => Value::Date(
            NaiveDate::from_num_days_from_ce_opt(i32::from_le_bytes(read_array(input)?)).ok_or_else(corrupt)?,
        ),
        7 => Value::DateTime(
            DateTime::<Utc>::from_timestamp_micros(i64::from_le_bytes(read_array(input)?)).ok_or_else(corrupt)?,
        ),
        8 => Value::Guid(uuid::Uuid::from_bytes(read_array(input)?)),
        _ => return Err(corrupt()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spill");
        let t = DateTime::<Utc>::from_timestamp_micros(1_767_225_600_123_456).unwrap();
        let row = NewRow {
            company: Some("usmf".into()),
            values: vec![
                Value::Null,
                Value::String("ä \u{1F600}".into()),
                Value::Int(-42),
                Value::Decimal(Decimal::from_canonical("12.500001".into())),
                Value::Real(0.25),
                Value::Bool(true),
                Value::Date(NaiveDate::from_ymd_opt(2026, 12, 5).unwrap()),
                Value::DateTime(t),
                Value::Guid(uuid::Uuid::from_u128(7)),
            ],
        };
        let other = NewRow { company: None, values: vec![Value::Int(1)] };
        let mut w = SpillWriter::create(&path).unwrap();
        w.write_batch(&[1, 2], std::slice::from_ref(&row)).unwrap();
        w.write_batch(&[], &[]).unwrap();
        w.write_batch(&[0], &[other.clone(), other.clone()]).unwrap();
        assert_eq!(w.finish().unwrap(), 3);
        let mut r = SpillReader::open(&path).unwrap();
        let first = r.next_batch().unwrap().unwrap();
        assert_eq!((first.update_fields, first.rows), (vec![1, 2], vec![row]));
        let second = r.next_batch().unwrap().unwrap();
        assert_eq!((second.update_fields, second.rows), (vec![0], vec![other.clone(), other]));
        assert!(r.next_batch().unwrap().is_none());
    }
}
