//! Data packages: the zip files Dynamics 365 imports and exports (a `Manifest.xml` naming the
//! entities and their data files, a `PackageHeader.xml`, and one data file per entity), read by
//! [`Package`] and written by [`PackageWriter`].
//!
//! A package is hostile until proven otherwise. [`Package::open`] refuses entry names that could
//! escape a directory, symlinks, encrypted entries, too many entries, and declared sizes or
//! compression ratios over [`Limits`]; [`Package::extract`] enforces the same caps again on the
//! bytes it actually decompresses (declared sizes lie in zip bombs), stopping before it writes past
//! one. Nothing is ever written to disk by entry name: entries are copied into a writer the caller
//! chooses.

mod manifest;
mod writer;
mod zipguard;

pub use manifest::{
    DEFINITION_GROUP_MANIFEST_TYPE, FieldMapping, MAX_MANIFEST_BYTES, Manifest, ManifestEntity, NAMESPACE,
    PackageHeader, source_format_from_manifest, write_header, write_manifest,
};
pub use writer::{EntryWriter, PackageWriter, data_file_name};

use crate::{FormatError, FormatErrorKind, Limits};
use std::fs::File;
use std::io::Write;
use zip::{CompressionMethod, ZipArchive};
use zipguard::{CopyCaps, RATIO_FLOOR_BYTES, copy_capped, unsafe_name_reason};

const MANIFEST: &str = "Manifest.xml";
const HEADER: &str = "PackageHeader.xml";

/// An open data package: its archive, checked entry list, manifest and header.
#[derive(Debug)]
pub struct Package {
    archive: ZipArchive<File>,
    limits: Limits,
    /// The package file's length: no entry can hold more compressed bytes than this.
    file_bytes: u64,
    /// File entries (directories left out), in archive order.
    entries: Vec<Entry>,
    manifest: Manifest,
    header: Option<PackageHeader>,
    /// Bytes decompressed so far, counted against `max_package_bytes`.
    extracted_bytes: u64,
}

#[derive(Debug)]
struct Entry {
    index: usize,
    name: String,
    compressed_bytes: u64,
}

fn unsafe_package(message: String) -> FormatError {
    FormatError::new(FormatErrorKind::UnsafePackage, message)
}

fn bad_package(message: String) -> FormatError {
    FormatError::new(FormatErrorKind::BadPackage, message)
}

fn limit_exceeded(message: String) -> FormatError {
    FormatError::new(FormatErrorKind::LimitExceeded, message)
}

impl Package {
    /// Opens a package: checks every entry (names, count, declared sizes and compression ratios
    /// against `limits`), reads `Manifest.xml` and `PackageHeader.xml` (names matched ignoring
    /// case) and checks that every enabled entity's `InputFilePath` is in the package.
    pub fn open(file: File, limits: &Limits) -> Result<Package, FormatError> {
        let file_bytes = file.metadata()?.len();
        let archive = ZipArchive::new(file).map_err(|e| {
            FormatError::new(
                FormatErrorKind::Malformed,
                format!(
                    "the file is not a zip archive ({e}); a data package is a zip with Manifest.xml, \
                     PackageHeader.xml and one data file per entity"
                ),
            )
        })?;
        if archive.len() > limits.max_package_entries {
            return Err(limit_exceeded(format!(
                "the package has {} entries; at most {} are accepted",
                archive.len(),
                limits.max_package_entries
            )));
        }
        if archive.has_duplicate_names() {
            return Err(unsafe_package("the package names an entry twice".into()));
        }

        let mut entries = Vec::new();
        let mut declared_total: u64 = 0;
        for index in 0..archive.len() {
            let entry = archive.by_index_data(index).map_err(|e| {
                FormatError::new(
                    FormatErrorKind::Malformed,
                    format!("the package's entry {} is unreadable: {e}", index + 1),
                )
            })?;
            let name = entry
                .name()
                .map_err(|e| unsafe_package(format!("the package's entry {} has an unreadable name: {e}", index + 1)))?
                .into_owned();
            if let Some(reason) = unsafe_name_reason(&name, entry.enclosed_name().is_some()) {
                return Err(unsafe_package(format!("the package entry '{name}' is refused: {reason}")));
            }
            if entry.is_symlink() {
                return Err(unsafe_package(format!("the package entry '{name}' is a symbolic link")));
            }
            if entry.encrypted() {
                return Err(bad_package(format!(
                    "the package entry '{name}' is encrypted; packages must not be password-protected"
                )));
            }
            if entry.is_dir() {
                continue;
            }
            let method = entry.compression();
            if !matches!(method, CompressionMethod::Stored | CompressionMethod::Deflated) {
                return Err(bad_package(format!(
                    "the package entry '{name}' is compressed with {method:?}; ferry reads stored and deflated \
                     entries (what Windows, Dynamics 365 and common zip tools write)"
                )));
            }
            let size = entry.size();
            let compressed_bytes = entry.compressed_size().min(file_bytes);
            if size > limits.max_entry_bytes {
                return Err(limit_exceeded(format!(
                    "the package entry '{name}' has {size} bytes; one entry may have at most {}",
                    limits.max_entry_bytes
                )));
            }
            declared_total = declared_total.saturating_add(size);
            if declared_total > limits.max_package_bytes {
                return Err(unsafe_package(format!(
                    "the package's entries add up to more than {} bytes",
                    limits.max_package_bytes
                )));
            }
            if size > RATIO_FLOOR_BYTES && size > compressed_bytes.max(1).saturating_mul(limits.max_compression_ratio) {
                return Err(unsafe_package(format!(
                    "the package entry '{name}' expands more than {} times ({compressed_bytes} compressed bytes \
                     to {size}); this is how zip bombs look",
                    limits.max_compression_ratio
                )));
            }
            entries.push(Entry { index, name, compressed_bytes });
        }

        let mut package = Package {
            archive,
            limits: limits.clone(),
            file_bytes,
            entries,
            manifest: Manifest::default(),
            header: None,
            extracted_bytes: 0,
        };
        let Some(manifest_bytes) = package.read_small(MANIFEST)? else {
            return Err(package.missing_manifest());
        };
        package.manifest = manifest::parse_manifest(&manifest_bytes)?;
        if let Some(header_bytes) = package.read_small(HEADER)? {
            package.header = Some(manifest::parse_header(&header_bytes)?);
        }
        package.check_input_files()?;
        Ok(package)
    }

    /// The parsed `Manifest.xml`.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The parsed `PackageHeader.xml`, when the package has one.
    pub fn header(&self) -> Option<&PackageHeader> {
        self.header.as_ref()
    }

    /// The names of the package's file entries (directories left out), in archive order.
    pub fn entry_names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.name.clone()).collect()
    }

    /// Copies the entry named `name` (as in `InputFilePath`: exact match first, then ignoring
    /// case) into `out`, and returns the bytes written. The entry cap, the package's running total
    /// and the compression ratio are enforced on the bytes actually decompressed, as they come: a
    /// zip bomb stops within one 64 KiB chunk of its cap.
    pub fn extract(&mut self, name: &str, out: &mut dyn Write) -> Result<u64, FormatError> {
        let entry = self.find(name)?.ok_or_else(|| {
            bad_package(format!("the package has no entry '{name}'; its entries are: {}", self.listing()))
        })?;
        let (index, entry_name, compressed_bytes) =
            (self.entries[entry].index, self.entries[entry].name.clone(), self.entries[entry].compressed_bytes);
        self.copy(index, &entry_name, compressed_bytes, self.limits.max_entry_bytes, out)
    }

    fn copy(
        &mut self,
        index: usize,
        name: &str,
        compressed_bytes: u64,
        max_entry_bytes: u64,
        out: &mut dyn Write,
    ) -> Result<u64, FormatError> {
        let caps = CopyCaps {
            entry_name: name,
            max_entry_bytes,
            package_bytes_left: self.limits.max_package_bytes.saturating_sub(self.extracted_bytes),
            max_package_bytes: self.limits.max_package_bytes,
            compressed_bytes: compressed_bytes.min(self.file_bytes),
            max_compression_ratio: self.limits.max_compression_ratio,
        };
        let mut reader = self.archive.by_index(index).map_err(|e| {
            FormatError::new(FormatErrorKind::Malformed, format!("the package entry '{name}' is unreadable: {e}"))
        })?;
        let written = copy_capped(&mut reader, out, &caps)?;
        self.extracted_bytes += written;
        Ok(written)
    }

    /// The index in `entries` of the entry `name`: exact match, else the one match ignoring case.
    fn find(&self, name: &str) -> Result<Option<usize>, FormatError> {
        if let Some(i) = self.entries.iter().position(|e| e.name == name) {
            return Ok(Some(i));
        }
        let mut matches = self.entries.iter().enumerate().filter(|(_, e)| e.name.eq_ignore_ascii_case(name));
        let first = matches.next().map(|(i, _)| i);
        if let Some((_, other)) = matches.next() {
            return Err(bad_package(format!(
                "the package has several entries named '{name}' (ignoring case), e.g. '{}'; rename one",
                other.name
            )));
        }
        Ok(first)
    }

    /// Reads a top-level XML file of the package (manifest, header) into memory, capped.
    fn read_small(&mut self, name: &str) -> Result<Option<Vec<u8>>, FormatError> {
        let Some(entry) = self.find(name)? else { return Ok(None) };
        let (index, entry_name, compressed_bytes) =
            (self.entries[entry].index, self.entries[entry].name.clone(), self.entries[entry].compressed_bytes);
        let mut bytes = Vec::new();
        let cap = MAX_MANIFEST_BYTES.min(self.limits.max_entry_bytes);
        self.copy(index, &entry_name, compressed_bytes, cap, &mut bytes)?;
        Ok(Some(bytes))
    }

    fn missing_manifest(&self) -> FormatError {
        let nested = self
            .entries
            .iter()
            .find(|e| e.name.rsplit('/').next().is_some_and(|last| last.eq_ignore_ascii_case(MANIFEST)));
        match nested {
            Some(entry) => bad_package(format!(
                "the package has no Manifest.xml at its top level, only '{}'; zip the package's files, not the \
                 folder that holds them",
                entry.name
            )),
            None => bad_package(
                "the package has no Manifest.xml; a data package is a zip with Manifest.xml, PackageHeader.xml and \
                 one data file per entity"
                    .into(),
            ),
        }
    }

    fn check_input_files(&self) -> Result<(), FormatError> {
        for (number, entity) in self.manifest.entities.iter().enumerate() {
            if entity.disabled || self.find(&entity.input_file_path)?.is_some() {
                continue;
            }
            return Err(bad_package(format!(
                "Manifest.xml: entity {} ({}): InputFilePath '{}' is not in the package; its entries are: {}",
                number + 1,
                entity.entity_name,
                entity.input_file_path,
                self.listing()
            )));
        }
        Ok(())
    }

    /// The first entry names, for messages.
    fn listing(&self) -> String {
        const SHOWN: usize = 20;
        let mut names: Vec<String> = self.entries.iter().take(SHOWN).map(|e| format!("'{}'", e.name)).collect();
        if self.entries.len() > SHOWN {
            names.push(format!("and {} more", self.entries.len() - SHOWN));
        }
        if names.is_empty() { "none".into() } else { names.join(", ") }
    }
}
