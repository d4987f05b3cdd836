//! Writing data packages as Dynamics 365 exports them: a flat zip (deflate) of one data file per
//! entity, named by its `InputFilePath`, then `Manifest.xml` and `PackageHeader.xml` (UTF-16 LE,
//! DataContract order). Data files are streamed into their entries as they are written (from
//! another thread, through an [`EntryWriter`]), never held whole in memory.

use super::manifest::{DEFINITION_GROUP_MANIFEST_TYPE, Manifest, PackageHeader, write_header, write_manifest};
use super::{HEADER, MANIFEST};
use crate::{FormatError, FormatErrorKind};
use std::io::{Seek, Write};
use std::sync::{Arc, Mutex};
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

/// The package version ferry writes (the current Dynamics 365 one).
const PACKAGE_VERSION: &str = "2";
/// Deflate's fastest level: exports are written at the rate rows are read, and level 1 keeps up
/// (the default level took a quarter of an export's time for a few percent smaller packages).
const DEFLATE_LEVEL: i64 = 1;

/// A data package being written.
pub struct PackageWriter<W: Write + Seek> {
    zip: Arc<Mutex<zip::ZipWriter<W>>>,
    names: Vec<String>,
}

/// Writes into the entry a [`PackageWriter`] started last (until it starts the next one).
pub struct EntryWriter<W: Write + Seek> {
    zip: Arc<Mutex<zip::ZipWriter<W>>>,
}

impl<W: Write + Seek> Write for EntryWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.zip.lock().map_err(|_| std::io::Error::other("the package writer failed"))?.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.zip.lock().map_err(|_| std::io::Error::other("the package writer failed"))?.flush()
    }
}

fn write_failed(e: impl std::fmt::Display) -> FormatError {
    FormatError::new(FormatErrorKind::Io, format!("could not write the data package: {e}"))
}

impl<W: Write + Seek> PackageWriter<W> {
    pub fn new(out: W) -> PackageWriter<W> {
        PackageWriter { zip: Arc::new(Mutex::new(zip::ZipWriter::new(out))), names: Vec::new() }
    }

    fn options() -> SimpleFileOptions {
        SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(DEFLATE_LEVEL))
            .large_file(true)
    }

    /// Starts the entry `name` (a flat name, unique in the package); what the answered writer
    /// gets goes into it.
    pub fn start_entry(&mut self, name: &str) -> Result<EntryWriter<W>, FormatError> {
        if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(FormatError::new(FormatErrorKind::BadPackage, format!("'{name}' is not a flat entry name")));
        }
        if self.names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(FormatError::new(FormatErrorKind::BadPackage, format!("the package already has '{name}'")));
        }
        self.zip.lock().map_err(write_failed)?.start_file(name, Self::options()).map_err(write_failed)?;
        self.names.push(name.to_owned());
        Ok(EntryWriter { zip: self.zip.clone() })
    }

    /// Writes `Manifest.xml` and `PackageHeader.xml` (its description is the manifest's data
    /// project) and completes the zip.
    pub fn finish(self, manifest: &Manifest) -> Result<W, FormatError> {
        let header = PackageHeader {
            description: manifest.definition_group.clone(),
            manifest_type: Some(DEFINITION_GROUP_MANIFEST_TYPE.to_owned()),
            package_type: Some("DefinitionGroup".to_owned()),
            package_version: Some(PACKAGE_VERSION.to_owned()),
        };
        let zip = Arc::try_unwrap(self.zip)
            .map_err(|_| write_failed("an entry is still being written"))?
            .into_inner()
            .map_err(write_failed)?;
        let mut zip = zip;
        zip.start_file(MANIFEST, Self::options()).map_err(write_failed)?;
        write_manifest(manifest, &mut zip).map_err(write_failed)?;
        zip.start_file(HEADER, Self::options()).map_err(write_failed)?;
        write_header(&header, &mut zip).map_err(write_failed)?;
        zip.finish().map_err(write_failed)
    }
}

/// The entry name of an entity's data file, as Dynamics 365 names it: the entity's label, with
/// the characters a file name may not hold dropped (`Country/regions` → `Countryregions`), and
/// the format's extension.
pub fn data_file_name(label: &str, extension: &str) -> String {
    let base: String = label
        .chars()
        .filter(|c| !matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') && !c.is_control())
        .collect();
    let base = base.trim().trim_matches('.');
    format!("{}.{extension}", if base.is_empty() { "data" } else { base })
}
