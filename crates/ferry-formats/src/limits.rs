//! Caps that keep hostile input from exhausting memory or disk.

/// Size caps applied by every reader and by package extraction.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest single field, in bytes of UTF-8 (default 1 MiB). Longer fields are a record error.
    pub max_field_bytes: usize,
    /// Longest record, in bytes (default 16 MiB). Longer records are a fatal error.
    pub max_record_bytes: usize,
    /// Most columns in a file (default 1,024).
    pub max_columns: usize,
    /// Deepest XML nesting (default 32).
    pub max_xml_depth: usize,
    /// Package (zip) caps: entries, bytes per entry and in all after decompression, and the largest
    /// compression ratio an entry may have (zip bombs exceed it).
    pub max_package_entries: usize,
    pub max_entry_bytes: u64,
    pub max_package_bytes: u64,
    pub max_compression_ratio: u64,
    /// Largest part of an Excel workbook the reader holds in memory whole (default 256 MiB of XML):
    /// the shared-strings table, the styles and the workbook part. Sheets themselves stream.
    pub max_workbook_part_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_field_bytes: 1 << 20,
            max_record_bytes: 16 << 20,
            max_columns: 1024,
            max_xml_depth: 32,
            max_package_entries: 1000,
            max_entry_bytes: 4 << 30,
            max_package_bytes: 8 << 30,
            max_compression_ratio: 200,
            max_workbook_part_bytes: 256 << 20,
        }
    }
}
