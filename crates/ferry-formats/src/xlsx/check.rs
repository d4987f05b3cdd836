//! The zip-level checks an .xlsx passes before calamine opens it: no zip bomb (entry count, sizes,
//! compression ratio — declared and actual), no in-memory part (shared strings, styles, workbook)
//! over `max_workbook_part_bytes`, and no run of sheet text or markup without a `<` longer than
//! `max_record_bytes`, since calamine buffers each XML event whole.

use crate::record::Input;
use crate::{FormatError, FormatErrorKind, Limits};
use std::io::{Read, Seek, SeekFrom};

/// Below this many unpacked bytes an entry's compression ratio does not matter.
const RATIO_FLOOR_BYTES: u64 = 1 << 20;

/// Checks the workbook in `input` and rewinds it.
pub(super) fn check(input: &mut Box<dyn Input>, limits: &Limits) -> Result<(), FormatError> {
    input.seek(SeekFrom::Start(0))?;
    {
        let mut zip = zip::ZipArchive::new(&mut *input).map_err(|e| not_a_workbook(&e))?;
        if zip.len() > limits.max_package_entries {
            return Err(unsafe_package(format!(
                "the workbook holds {} files; the limit is {} (max_package_entries)",
                zip.len(),
                limits.max_package_entries
            )));
        }
        let mut total = 0u64;
        let mut parts = Vec::new();
        let mut sheets = Vec::new();
        for index in 0..zip.len() {
            let entry = zip.by_index_raw(index).map_err(|e| not_a_workbook(&e))?;
            let name = entry.name().map_err(|e| not_a_workbook(&e))?.into_owned();
            let (size, packed) = (entry.size(), entry.compressed_size());
            total = total.saturating_add(size);
            if size > limits.max_entry_bytes {
                return Err(unsafe_package(format!(
                    "the workbook part {name} unpacks to {size} bytes; the limit is {} (max_entry_bytes)",
                    limits.max_entry_bytes
                )));
            }
            if total > limits.max_package_bytes {
                return Err(unsafe_package(format!(
                    "the workbook unpacks to more than {} bytes (max_package_bytes)",
                    limits.max_package_bytes
                )));
            }
            if too_compressed(size, packed, limits) {
                return Err(bomb(&name, limits));
            }
            let lower = name.to_ascii_lowercase();
            if lower.ends_with(".xml") || lower.ends_with(".rels") {
                if lower.starts_with("xl/worksheets/") && !lower.contains("_rels/") {
                    sheets.push((index, packed));
                } else {
                    parts.push((index, packed));
                }
            }
        }
        for (index, packed) in parts {
            measure(&mut zip, index, packed, limits, Part::InMemory)?;
        }
        for (index, packed) in sheets {
            measure(&mut zip, index, packed, limits, Part::Sheet)?;
        }
    }
    input.seek(SeekFrom::Start(0))?;
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// calamine reads it whole into memory.
    InMemory,
    /// calamine streams it, one XML event at a time.
    Sheet,
}

/// Decompresses one entry, counting, and stops at the first broken limit.
fn measure<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    index: usize,
    packed: u64,
    limits: &Limits,
    part: Part,
) -> Result<(), FormatError> {
    let mut entry = zip.by_index(index).map_err(|e| not_a_workbook(&e))?;
    let name = entry.name().map_err(|e| not_a_workbook(&e))?.into_owned();
    let cap = match part {
        Part::InMemory => limits.max_workbook_part_bytes,
        Part::Sheet => limits.max_entry_bytes,
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    let mut run = 0usize;
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(not_a_workbook(&e)),
        };
        total += n as u64;
        if total > cap {
            return Err(match part {
                Part::InMemory => FormatError::new(
                    FormatErrorKind::LimitExceeded,
                    format!(
                        "the workbook part {name} is larger than {cap} bytes (max_workbook_part_bytes), and it would \
                         have to be held in memory whole; split the workbook"
                    ),
                ),
                Part::Sheet => unsafe_package(format!(
                    "the workbook part {name} unpacks to more than {cap} bytes (max_entry_bytes)"
                )),
            });
        }
        if too_compressed(total, packed, limits) {
            return Err(bomb(&name, limits));
        }
        if part == Part::Sheet {
            let mut segments = buf[..n].split(|&b| b == b'<');
            if let Some(first) = segments.next() {
                run += first.len();
            }
            for segment in segments {
                if run > limits.max_record_bytes {
                    break;
                }
                run = segment.len();
            }
            if run > limits.max_record_bytes {
                return Err(FormatError::new(
                    FormatErrorKind::LimitExceeded,
                    format!(
                        "the sheet part {name} holds a single cell or tag longer than {} bytes (max_record_bytes)",
                        limits.max_record_bytes
                    ),
                ));
            }
        }
    }
}

fn too_compressed(size: u64, packed: u64, limits: &Limits) -> bool {
    size > RATIO_FLOOR_BYTES && size > packed.saturating_mul(limits.max_compression_ratio)
}

fn bomb(name: &str, limits: &Limits) -> FormatError {
    unsafe_package(format!(
        "the workbook part {name} is compressed more than {}:1 (max_compression_ratio), as zip bombs are; ferry \
         does not open it",
        limits.max_compression_ratio
    ))
}

fn unsafe_package(message: String) -> FormatError {
    FormatError::new(FormatErrorKind::UnsafePackage, message)
}

fn not_a_workbook(e: &dyn std::fmt::Display) -> FormatError {
    FormatError::new(
        FormatErrorKind::Malformed,
        format!(
            "the file is not a readable Excel workbook (.xlsx): {e}; if it is password-protected, remove the \
             password, and if it is an older .xls, save it as .xlsx"
        ),
    )
}
