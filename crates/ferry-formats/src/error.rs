//! The error every reader reports: what went wrong, where, and whether reading can go on.

/// A problem with the input, named so a person can find and fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct FormatError {
    pub kind: FormatErrorKind,
    /// The record's row (see [`crate::SourceRecord::row`]), when the problem is in one record.
    pub row: Option<u64>,
    /// The column, when the problem is in one field.
    pub column: Option<String>,
    /// A human message that names the problem and, where possible, the fix.
    pub message: String,
}

/// Machine-readable kinds; [`FormatErrorKind::code`] is the stable code users see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatErrorKind {
    /// Bytes that are not valid in the detected encoding.
    InvalidEncoding,
    /// The file's structure is broken (unterminated quote, malformed XML or JSON, not a workbook).
    Malformed,
    /// A record has a different number of fields than the header (record-level).
    FieldCount,
    /// A field exceeds `max_field_bytes` (record-level).
    FieldTooLarge,
    /// One record cannot be read as a flat record: a nested JSON object or array, a JSON element
    /// that is not an object, elements nested in an XML field, a field given twice, an Excel
    /// error value such as `#N/A` (record-level).
    InvalidRecord,
    /// A record, the column count, nesting or an entry exceeds its limit.
    LimitExceeded,
    /// The header row is missing, empty, or names a column twice.
    BadHeader,
    /// A DTD, external entity or entity declaration in XML.
    ForbiddenXml,
    /// A zip entry escapes the package (absolute path, `..`), or a bomb (ratio, total size).
    UnsafePackage,
    /// The package lacks a file it needs, or its manifest or header is invalid.
    BadPackage,
    /// A named sheet does not exist.
    NoSuchSheet,
    /// Reading the input failed.
    Io,
}

impl FormatErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            FormatErrorKind::InvalidEncoding => "invalid_encoding",
            FormatErrorKind::Malformed => "malformed",
            FormatErrorKind::FieldCount => "field_count",
            FormatErrorKind::FieldTooLarge => "field_too_large",
            FormatErrorKind::InvalidRecord => "invalid_record",
            FormatErrorKind::LimitExceeded => "limit_exceeded",
            FormatErrorKind::BadHeader => "bad_header",
            FormatErrorKind::ForbiddenXml => "forbidden_xml",
            FormatErrorKind::UnsafePackage => "unsafe_package",
            FormatErrorKind::BadPackage => "bad_package",
            FormatErrorKind::NoSuchSheet => "no_such_sheet",
            FormatErrorKind::Io => "io",
        }
    }
}

impl FormatError {
    pub fn new(kind: FormatErrorKind, message: impl Into<String>) -> Self {
        FormatError { kind, row: None, column: None, message: message.into() }
    }

    pub fn at_row(mut self, row: u64) -> Self {
        self.row = Some(row);
        self
    }

    pub fn in_column(mut self, column: impl Into<String>) -> Self {
        self.column = Some(column.into());
        self
    }

    /// Record-level errors leave the reader able to go on with the next record.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self.kind,
            FormatErrorKind::FieldCount | FormatErrorKind::FieldTooLarge | FormatErrorKind::InvalidRecord
        )
    }

    fn describe(&self) -> String {
        let mut out = String::new();
        if let Some(row) = self.row {
            out.push_str(&format!("row {row}: "));
        }
        if let Some(column) = &self.column {
            out.push_str(&format!("column '{column}': "));
        }
        out.push_str(&self.message);
        out
    }
}

impl From<std::io::Error> for FormatError {
    /// Readers pass their own errors (an encoding error, a size limit) up through `Read`
    /// adapters as `io::Error`s wrapping a `FormatError`; those come back out unchanged.
    fn from(e: std::io::Error) -> Self {
        match e.get_ref().and_then(|inner| inner.downcast_ref::<FormatError>()) {
            Some(inner) => inner.clone(),
            None => FormatError::new(FormatErrorKind::Io, format!("could not read the input: {e}")),
        }
    }
}

impl From<FormatError> for std::io::Error {
    /// Wraps a format error so it can travel through `Read`; `FormatError::from` unwraps it.
    fn from(e: FormatError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}
