//! Checking what an export produced, independently of ferry's own package reader: the
//! downloaded package is opened with the `zip` crate, its CSV read with the `csv` crate, and
//! its data rows counted and matched against the company of the export (`DATAAREAID`); the
//! reference dumps are counted the same way.

use anyhow::{Context, Result, bail};
use std::io::Read;
use std::path::Path;

/// The company column of a company-specific entity's file.
const COMPANY_COLUMN: &str = "DATAAREAID";

/// What a CSV holds.
#[derive(Debug, PartialEq, Eq)]
pub struct CsvRows {
    /// Data rows (records after the header, if there is one).
    pub rows: u64,
    pub columns: usize,
    /// Rows of another company than the one asked for (0 unless a company was given).
    pub other_company: u64,
}

/// What the package holds.
pub struct PackageContents {
    /// Every entry's name and uncompressed size, in the archive's order.
    pub entries: Vec<(String, u64)>,
    /// The one CSV entry.
    pub csv_name: String,
    pub csv: CsvRows,
}

impl PackageContents {
    /// `Manifest.xml 1.2 kB, …`
    pub fn describe_entries(&self) -> String {
        let entries: Vec<String> = self.entries.iter().map(|(n, size)| format!("{n} {}", size_text(*size))).collect();
        entries.join(", ")
    }
}

/// A size in B, kB or MB (decimal units).
pub fn size_text(bytes: u64) -> String {
    match bytes {
        b if b < 1_000 => format!("{b} B"),
        b if b < 1_000_000 => format!("{:.1} kB", b as f64 / 1e3),
        b => format!("{:.1} MB", b as f64 / 1e6),
    }
}

/// Opens the package at `path`, finds its one CSV and counts its data rows, checking each
/// row's `DATAAREAID` against `company`.
pub fn package(path: &Path, company: &str) -> Result<PackageContents> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut archive = zip::ZipArchive::new(file).with_context(|| format!("{} is not a zip archive", path.display()))?;
    let mut entries = Vec::new();
    for i in 0..archive.len() {
        let entry = archive.by_index(i).with_context(|| format!("reading entry {i} of the package"))?;
        let name = entry.name().with_context(|| format!("entry {i} of the package has no readable name"))?;
        entries.push((name.into_owned(), entry.size()));
    }
    let csvs: Vec<&String> =
        entries.iter().map(|(n, _)| n).filter(|n| n.to_ascii_lowercase().ends_with(".csv")).collect();
    let [csv_name] = csvs[..] else {
        bail!("the package should hold one CSV; its entries: {entries:?}");
    };
    let csv_name = csv_name.clone();
    let entry = archive.by_name(&csv_name).with_context(|| format!("opening {csv_name} in the package"))?;
    let csv = count(entry, true, Some(company)).with_context(|| format!("reading {csv_name} of the package"))?;
    Ok(PackageContents { entries, csv_name, csv })
}

/// Counts the records of the CSV file at `path` (`header`: its first record is a header).
pub fn file(path: &Path, header: bool) -> Result<CsvRows> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    count(std::io::BufReader::with_capacity(1 << 20, file), header, None)
        .with_context(|| format!("reading {}", path.display()))
}

/// Counts the records of a CSV (quoted fields may hold commas and line breaks; every record
/// must have the header's width). With `company`, the header must name `DATAAREAID` and rows
/// of other companies are counted apart.
pub fn count(reader: impl Read, header: bool, company: Option<&str>) -> Result<CsvRows> {
    let mut csv = csv::ReaderBuilder::new().has_headers(header).from_reader(reader);
    let company_column = match company {
        Some(_) => {
            let headers = csv.byte_headers()?;
            let at = headers.iter().position(|h| h.eq_ignore_ascii_case(COMPANY_COLUMN.as_bytes()));
            Some(at.with_context(|| format!("the header has no {COMPANY_COLUMN} column"))?)
        }
        None => None,
    };
    let mut counted = CsvRows { rows: 0, columns: 0, other_company: 0 };
    let mut record = csv::ByteRecord::new();
    while csv.read_byte_record(&mut record)? {
        counted.rows += 1;
        counted.columns = record.len();
        if let (Some(at), Some(company)) = (company_column, company)
            && !record.get(at).is_some_and(|c| c.eq_ignore_ascii_case(company.as_bytes()))
        {
            counted.other_company += 1;
        }
    }
    if counted.rows == 0 && header {
        counted.columns = csv.byte_headers()?.len();
    }
    Ok(counted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_line_breaks_are_one_row_and_other_companies_are_counted() {
        let text = "DATAAREAID,CUSTOMERACCOUNT,NAME\r\nusmf,S1,\"A, \"\"B\"\"\r\nC\"\r\nUSMF,S2,x\r\ndemf,S3,y\r\n";
        let rows = count(text.as_bytes(), true, Some("usmf")).unwrap();
        assert_eq!(rows, CsvRows { rows: 3, columns: 3, other_company: 1 });
    }

    #[test]
    fn without_a_header_every_record_counts() {
        let rows = count("1,a\n2,b\n".as_bytes(), false, None).unwrap();
        assert_eq!((rows.rows, rows.columns), (2, 2));
        assert_eq!(count("A,B\r\n".as_bytes(), true, None).unwrap(), CsvRows { rows: 0, columns: 2, other_company: 0 });
    }

    #[test]
    fn a_missing_company_column_or_a_ragged_row_fails() {
        assert!(count("A,B\n1,2\n".as_bytes(), true, Some("usmf")).is_err());
        assert!(count("A,B\n1,2\n3\n".as_bytes(), true, None).is_err());
    }

    #[test]
    fn sizes_in_decimal_units() {
        assert_eq!(size_text(999), "999 B");
        assert_eq!(size_text(1_234), "1.2 kB");
        assert_eq!(size_text(45_600_000), "45.6 MB");
    }
}
