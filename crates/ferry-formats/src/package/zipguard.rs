//! What keeps a hostile zip harmless: entry names that stay inside the package, and a copy that
//! counts the bytes it actually decompresses (declared sizes are whatever the attacker wrote).

use crate::{FormatError, FormatErrorKind};
use std::io::{ErrorKind, Read, Write};

/// Entries smaller than this are not held to the compression ratio: short, repetitive files
/// (a header row, a manifest) legitimately compress far better than bulk data, and a bomb has to
/// produce much more than this to hurt.
pub(super) const RATIO_FLOOR_BYTES: u64 = 1 << 20;

/// Why an entry name is refused, or `None` when it is a plain relative path. Names must be
/// relative (`/x`, `C:x`, `\\server\x` are refused), use `/` only (a backslash is a separator
/// on Windows), and have no `.`/`..` or empty components, colons (drive letters, alternate data
/// streams), or control characters. `zip`'s `enclosed_name` must agree as well.
pub(super) fn unsafe_name_reason(name: &str, enclosed: bool) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.chars().any(char::is_control) {
        return Some("it contains a control character");
    }
    if name.contains('\\') {
        return Some("it contains a backslash");
    }
    if name.starts_with('/') {
        return Some("it is an absolute path");
    }
    if name.contains(':') {
        return Some("it contains a colon (a drive letter or stream name)");
    }
    // A trailing slash marks a directory entry; every other component must be a plain name.
    let components = name.strip_suffix('/').unwrap_or(name);
    for component in components.split('/') {
        match component {
            "" => return Some("it has an empty path component"),
            "." | ".." => return Some("it has a '.' or '..' path component"),
            _ => {}
        }
    }
    if !enclosed {
        return Some("it escapes the package");
    }
    None
}

/// Caps for copying one entry.
pub(super) struct CopyCaps<'a> {
    pub entry_name: &'a str,
    pub max_entry_bytes: u64,
    /// What the package-wide decompressed budget has left.
    pub package_bytes_left: u64,
    pub max_package_bytes: u64,
    /// The entry's compressed size as the file can actually hold it (declared size, at most the
    /// file's length).
    pub compressed_bytes: u64,
    pub max_compression_ratio: u64,
}

/// Copies `reader` to `out`, checking the caps against the bytes actually decompressed before each
/// chunk is written, so at most one chunk past a cap is ever read and nothing past it is written.
/// Returns the bytes written.
pub(super) fn copy_capped(reader: &mut dyn Read, out: &mut dyn Write, caps: &CopyCaps<'_>) -> Result<u64, FormatError> {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut written: u64 = 0;
    let ratio_limit = caps.compressed_bytes.max(1).saturating_mul(caps.max_compression_ratio).max(RATIO_FLOOR_BYTES);
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => return Ok(written),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(FormatError::new(
                    FormatErrorKind::Malformed,
                    format!("the package entry '{}' is corrupt: {e}", caps.entry_name),
                ));
            }
        };
        let total = written + n as u64;
        if total > caps.max_entry_bytes {
            return Err(FormatError::new(
                FormatErrorKind::LimitExceeded,
                format!(
                    "the package entry '{}' decompresses to more than {} bytes, its limit",
                    caps.entry_name, caps.max_entry_bytes
                ),
            ));
        }
        if total > caps.package_bytes_left {
            return Err(FormatError::new(
                FormatErrorKind::UnsafePackage,
                format!(
                    "the package decompresses to more than {} bytes in all (at entry '{}')",
                    caps.max_package_bytes, caps.entry_name
                ),
            ));
        }
        if total > ratio_limit {
            return Err(FormatError::new(
                FormatErrorKind::UnsafePackage,
                format!(
                    "the package entry '{}' expands more than {} times ({} compressed bytes give over {total}); \
                     this is how zip bombs look",
                    caps.entry_name, caps.max_compression_ratio, caps.compressed_bytes
                ),
            ));
        }
        out.write_all(&buffer[..n]).map_err(|e| {
            FormatError::new(
                FormatErrorKind::Io,
                format!("could not write the package entry '{}' out: {e}", caps.entry_name),
            )
        })?;
        written = total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(compressed_bytes: u64) -> CopyCaps<'static> {
        CopyCaps {
            entry_name: "bomb.csv",
            max_entry_bytes: u64::MAX,
            package_bytes_left: u64::MAX,
            max_package_bytes: u64::MAX,
            compressed_bytes,
            max_compression_ratio: 200,
        }
    }

    /// Whatever the headers claimed, the ratio is checked on the bytes that come out, before they
    /// are written: 1,000 compressed bytes may give at most 1 MiB (the floor), never 1 GiB.
    #[test]
    fn the_ratio_is_enforced_on_the_bytes_actually_decompressed() {
        let mut zeros = std::io::repeat(0).take(1 << 30);
        let mut out = Vec::new();
        let error = copy_capped(&mut zeros, &mut out, &caps(1_000)).unwrap_err();
        assert_eq!(error.kind, FormatErrorKind::UnsafePackage);
        assert!(out.len() as u64 <= RATIO_FLOOR_BYTES, "wrote {}", out.len());

        let mut zeros = std::io::repeat(0).take(4 << 20);
        let written = copy_capped(&mut zeros, &mut std::io::sink(), &caps(1 << 20)).unwrap();
        assert_eq!(written, 4 << 20);
    }

    #[test]
    fn entry_and_package_caps_stop_the_copy_before_writing_past_them() {
        let mut data = std::io::repeat(b'a').take(10_000);
        let mut out = Vec::new();
        let error = copy_capped(&mut data, &mut out, &CopyCaps { max_entry_bytes: 100, ..caps(1 << 20) }).unwrap_err();
        assert_eq!(error.kind, FormatErrorKind::LimitExceeded);
        assert!(out.len() <= 100);

        let mut data = std::io::repeat(b'a').take(10_000);
        let mut out = Vec::new();
        let error =
            copy_capped(&mut data, &mut out, &CopyCaps { package_bytes_left: 10, ..caps(1 << 20) }).unwrap_err();
        assert_eq!(error.kind, FormatErrorKind::UnsafePackage);
        assert!(out.is_empty());
    }

    #[test]
    fn names_are_checked() {
        for ok in ["Manifest.xml", "Customer groups.csv", "Resources/t.xslt", "Resources/", "ÆØÅ.csv"] {
            assert_eq!(unsafe_name_reason(ok, true), None, "{ok}");
        }
        for bad in ["", "/x", "../x", "a/../../x", "a\\b", "C:x", "a//b", "./a", "a\u{7}b"] {
            assert!(unsafe_name_reason(bad, true).is_some(), "{bad}");
        }
        assert!(unsafe_name_reason("x", false).is_some());
    }
}
