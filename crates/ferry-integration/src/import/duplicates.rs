//! Natural keys seen so far in one file, to reject a key's second appearance — in bounded
//! memory whatever the file's size. Keys are 64-bit hashes (`validate::key_hash`) with the row
//! that had each. The newest [`RECENT_MAX`] live in a hash map; when it fills, they are sorted
//! and written to a run file in the scratch directory, with a Bloom filter (10 bits a key) kept
//! in memory. A key not in the map is looked up only in the runs whose filter may hold it (about
//! 1 % of the time), by binary search over the file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Keys kept in memory before they are written to a run (16 bytes each in the map).
pub(crate) const RECENT_MAX: usize = 1 << 20;
/// Bloom-filter bits per key and probes per lookup (about 1 % false positives).
const BITS_PER_KEY: usize = 10;
const PROBES: u64 = 7;
/// One entry of a run file: the key hash and its row, little-endian.
const ENTRY: u64 = 16;

pub(crate) struct DuplicateKeys {
    dir: PathBuf,
    recent_max: usize,
    recent: HashMap<u64, u64>,
    runs: Vec<Run>,
}

/// Keys written out: a sorted file and the Bloom filter of its keys.
struct Run {
    file: File,
    _path: tempfile::TempPath,
    entries: u64,
    bloom: Vec<u64>,
}

impl Run {
    fn may_hold(&self, hash: u64) -> bool {
        let bits = self.bloom.len() as u64 * 64;
        probes(hash, bits).all(|bit| self.bloom[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    /// The row of `hash` in this run, by binary search over the file.
    fn find(&self, hash: u64) -> std::io::Result<Option<u64>> {
        let (mut low, mut high) = (0u64, self.entries);
        let mut entry = [0u8; ENTRY as usize];
        while low < high {
            let mid = low + (high - low) / 2;
            self.file.read_exact_at(&mut entry, mid * ENTRY)?;
            let found = u64::from_le_bytes(entry[..8].try_into().expect("8 bytes"));
            match found.cmp(&hash) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => {
                    return Ok(Some(u64::from_le_bytes(entry[8..].try_into().expect("8 bytes"))));
                }
            }
        }
        Ok(None)
    }
}

/// The filter bits of `hash` (double hashing).
fn probes(hash: u64, bits: u64) -> impl Iterator<Item = u64> {
    let step = hash.rotate_left(32) | 1;
    (0..PROBES).map(move |i| hash.wrapping_add(i.wrapping_mul(step)) % bits)
}

impl DuplicateKeys {
    /// Run files go to `dir`.
    pub fn new(dir: PathBuf) -> DuplicateKeys {
        DuplicateKeys::with_limit(dir, RECENT_MAX)
    }

    fn with_limit(dir: PathBuf, recent_max: usize) -> DuplicateKeys {
        DuplicateKeys { dir, recent_max, recent: HashMap::new(), runs: Vec::new() }
    }

    /// The row that had `hash` before, if any; else remembers it for `row`.
    pub fn check(&mut self, hash: u64, row: u64) -> std::io::Result<Option<u64>> {
        if let Some(&first) = self.recent.get(&hash) {
            return Ok(Some(first));
        }
        for run in &self.runs {
            if run.may_hold(hash)
                && let Some(first) = run.find(hash)?
            {
                return Ok(Some(first));
            }
        }
        if self.recent.len() >= self.recent_max {
            self.spill()?;
        }
        self.recent.insert(hash, row);
        Ok(None)
    }

    /// Writes the map out as a sorted run (keeping the map's allocation for the next keys).
    fn spill(&mut self) -> std::io::Result<()> {
        let mut entries: Vec<(u64, u64)> = self.recent.drain().collect();
        entries.sort_unstable();
        let words = (entries.len() * BITS_PER_KEY).div_ceil(64).max(1);
        let mut bloom = vec![0u64; words];
        let bits = words as u64 * 64;
        let (file, path) = tempfile::NamedTempFile::new_in(&self.dir)?.into_parts();
        let mut out = BufWriter::with_capacity(1 << 16, &file);
        for &(hash, row) in &entries {
            out.write_all(&hash.to_le_bytes())?;
            out.write_all(&row.to_le_bytes())?;
            for bit in probes(hash, bits) {
                bloom[(bit / 64) as usize] |= 1 << (bit % 64);
            }
        }
        out.flush()?;
        drop(out);
        self.runs.push(Run { file, _path: path, entries: entries.len() as u64, bloom });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_in_memory_and_in_runs_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = DuplicateKeys::with_limit(dir.path().to_path_buf(), 100);
        // Spread-out hashes, as real ones are; 1,000 keys make ten runs.
        let hash = |n: u64| n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for n in 0..1_000 {
            assert_eq!(keys.check(hash(n), n + 2).unwrap(), None, "key {n} is new");
        }
        assert_eq!(keys.runs.len(), 9, "nine runs written, the tenth hundred in memory");
        for n in 0..1_000 {
            assert_eq!(keys.check(hash(n), 5_000).unwrap(), Some(n + 2), "key {n} seen at its row");
        }
        for n in 1_000..3_000 {
            assert_eq!(keys.check(hash(n), n).unwrap(), None, "key {n} was never seen");
        }
        assert!(keys.recent.capacity() < 1_000, "memory stays at the limit: {}", keys.recent.capacity());
    }
}
