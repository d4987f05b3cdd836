//! Writing data packages as Dynamics 365 exports them: a flat zip (deflate) of one data file per
//! entity, named by its `InputFilePath`, then `Manifest.xml` and `PackageHeader.xml` (UTF-16 LE,
//! DataContract order). Data files are streamed in from disk, never held whole in memory.

use super::manifest::{DEFINITION_GROUP_MANIFEST_TYPE, Manifest, PackageHeader, write_header, write_manifest};
use super::{HEADER, MANIFEST};
use crate::{FormatError, FormatErrorKind};
use std::fs::File;
use std::io::{Seek, Write};
use std::path::Path;
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

/// The package version ferry writes (the current Dynamics 365 one).
const PACKAGE_VERSION: &str = "2";

/// A data package being written.
pub struct PackageWriter<W: Write + Seek> {
    zip: zip::ZipWriter<W>,
    names: Vec<String>,
}

fn write_failed(e: impl std::fmt::Display) -> FormatError {
    FormatError::new(FormatErrorKind::Io, format!("could not write the data package: {e}"))
}

impl<W: Write + Seek> PackageWriter<W> {
    pub fn new(out: W) -> PackageWriter<W> {
        PackageWriter { zip: zip::ZipWriter::new(out), names: Vec::new() }
    }

    fn options() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(CompressionMethod::Deflated).large_file(true)
    }

    /// Adds the file at `path` as the entry `name` (a flat name, unique in the package).
    pub fn add_file(&mut self, name: &str, path: &Path) -> Result<(), FormatError> {
        if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(FormatError::new(FormatErrorKind::BadPackage, format!("'{name}' is not a flat entry name")));
        }
        if self.names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(FormatError::new(FormatErrorKind::BadPackage, format!("the package already has '{name}'")));
        }
        let mut file = File::open(path).map_err(write_failed)?;
        self.zip.start_file(name, Self::options()).map_err(write_failed)?;
        std::io::copy(&mut file, &mut self.zip).map_err(write_failed)?;
        self.names.push(name.to_owned());
        Ok(())
    }

    /// Writes `Manifest.xml` and `PackageHeader.xml` (its description is the manifest's data
    /// project) and completes the zip.
    pub fn finish(mut self, manifest: &Manifest) -> Result<W, FormatError> {
        let header = PackageHeader {
            description: manifest.definition_group.clone(),
            manifest_type: Some(DEFINITION_GROUP_MANIFEST_TYPE.to_owned()),
            package_type: Some("DefinitionGroup".to_owned()),
            package_version: Some(PACKAGE_VERSION.to_owned()),
        };
        self.zip.start_file(MANIFEST, Self::options()).map_err(write_failed)?;
        write_manifest(manifest, &mut self.zip).map_err(write_failed)?;
        self.zip.start_file(HEADER, Self::options()).map_err(write_failed)?;
        write_header(&header, &mut self.zip).map_err(write_failed)?;
        self.zip.finish().map_err(write_failed)
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
