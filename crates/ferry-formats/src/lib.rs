//! ferry's file formats. Every reader streams: it holds one record (and a bounded buffer) at a
//! time, whatever the file size, and treats its input as hostile — sizes are capped by [`Limits`],
//! encodings are checked, XML may not declare a DTD, package entries may not escape the package.
//!
//! The import pipeline sees every format through one interface: [`open_reader`] gives a
//! [`RecordReader`] that yields [`SourceRecord`]s (a row number and one [`Cell`] per column).

mod error;
mod limits;
mod record;

pub mod csv;
pub mod encoding;
pub mod json;
pub mod package;
pub mod writer;
pub mod xlsx;
pub mod xml;

pub use error::{FormatError, FormatErrorKind};
pub use limits::Limits;
pub use record::{Cell, Input, RecordReader, SourceRecord, open_reader};
