//! The one shape every reader yields, and the dispatch from a source format to its reader.

use crate::{FormatError, Limits};
use ferry_domain::DataFormat;
use std::io::{Read, Seek};

/// Where a reader reads from: a local file (or anything seekable; Excel needs to seek).
pub trait Input: Read + Seek + Send {}
impl<T: Read + Seek + Send> Input for T {}

/// One value as the source gave it; the import maps it to a typed value with the field's type.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Absent or explicitly null (`i:nil="true"`, JSON `null`). An empty CSV field is `Text("")`.
    Null,
    Text(String),
    /// A number as written in the source (JSON numbers, Excel numeric cells), never rounded.
    Number(String),
    Bool(bool),
}

/// One record of a source file.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceRecord {
    /// Where a person finds the record: the line the record starts on for CSV (the header is
    /// line 1), the sheet row for Excel (header row 1), the record's ordinal (from 1) for XML and JSON.
    pub row: u64,
    /// One cell per column of [`RecordReader::columns`] as it stood when the record was read
    /// (JSON and XML discover columns as they go, so earlier records may have fewer cells;
    /// missing trailing cells are absent, not null).
    pub cells: Vec<Cell>,
}

/// A streaming reader of records. Errors are either about one record (`error.is_fatal()` is false:
/// skip it, report it, read on) or about the whole input (fatal: stop).
pub trait RecordReader: Send {
    /// The column names in source order. Fixed after the header for CSV and Excel; grows as new
    /// names appear for XML and JSON.
    fn columns(&self) -> &[String];
    fn next_record(&mut self) -> Option<Result<SourceRecord, FormatError>>;
}

/// The reader for `format` over `input`.
pub fn open_reader(
    format: &DataFormat,
    input: Box<dyn Input>,
    limits: &Limits,
) -> Result<Box<dyn RecordReader>, FormatError> {
    match format {
        DataFormat::Csv { delimiter } => Ok(Box::new(crate::csv::CsvReader::open(input, *delimiter, limits)?)),
        DataFormat::XmlElement => Ok(Box::new(crate::xml::XmlReader::open(input, crate::xml::Style::Element, limits)?)),
        DataFormat::XmlAttribute => {
            Ok(Box::new(crate::xml::XmlReader::open(input, crate::xml::Style::Attribute, limits)?))
        }
        DataFormat::Json => Ok(Box::new(crate::json::JsonReader::open(input, limits)?)),
        DataFormat::Xlsx { sheet } => Ok(Box::new(crate::xlsx::XlsxReader::open(input, sheet.as_deref(), limits)?)),
    }
}

/// Columns found as records are read (XML, JSON): names in order of first appearance, matched
/// ignoring case as Dynamics field names are; the first spelling seen is kept.
pub(crate) struct DiscoveredColumns {
    names: Vec<String>,
    /// Lower-cased names.
    index: std::collections::HashMap<String, usize>,
    /// Names as first spelled.
    exact: std::collections::HashMap<String, usize>,
    max_columns: usize,
}

impl DiscoveredColumns {
    pub(crate) fn new(max_columns: usize) -> Self {
        DiscoveredColumns {
            names: Vec::new(),
            index: std::collections::HashMap::new(),
            exact: std::collections::HashMap::new(),
            max_columns,
        }
    }

    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// The index of column `name`, added at the end if new (a fatal error past `max_columns`).
    pub(crate) fn index_of(&mut self, name: &str) -> Result<usize, FormatError> {
        // Most records spell their fields as the first did: try the name as given first.
        if let Some(&i) = self.exact.get(name) {
            return Ok(i);
        }
        let key = name.to_lowercase();
        if let Some(&i) = self.index.get(&key) {
            return Ok(i);
        }
        if self.names.len() >= self.max_columns {
            return Err(FormatError::new(
                crate::FormatErrorKind::LimitExceeded,
                format!(
                    "the file has more than {} different fields (max_columns); '{name}' is one too many",
                    self.max_columns
                ),
            ));
        }
        self.index.insert(key, self.names.len());
        self.exact.insert(name.to_string(), self.names.len());
        self.names.push(name.to_string());
        Ok(self.names.len() - 1)
    }
}
