//! A file written in memory while it is small and on disk once it grows: the staging file of a
//! small message stays in memory (and goes into the database with the message's end), that of a
//! large one streams into a scratch file, so memory stays bounded either way.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// Bytes written so far: in memory up to `limit`, then in a scratch file in `dir`.
pub(crate) struct Spool {
    dir: PathBuf,
    limit: usize,
    memory: Vec<u8>,
    file: Option<(tempfile::TempPath, BufWriter<File>)>,
}

/// Where a spool's bytes ended up.
pub(crate) enum Spooled {
    Memory(Vec<u8>),
    File(tempfile::TempPath),
}

impl Spool {
    pub fn new(dir: PathBuf, limit: usize) -> Spool {
        Spool { dir, limit, memory: Vec::new(), file: None }
    }

    /// Flushes and answers where the bytes are.
    pub fn finish(self) -> std::io::Result<Spooled> {
        match self.file {
            None => Ok(Spooled::Memory(self.memory)),
            Some((path, mut writer)) => {
                writer.flush()?;
                Ok(Spooled::File(path))
            }
        }
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.file.is_none() {
            if self.memory.len() + buf.len() <= self.limit {
                self.memory.extend_from_slice(buf);
                return Ok(buf.len());
            }
            let (file, path) = tempfile::NamedTempFile::new_in(&self.dir)?.into_parts();
            let mut writer = BufWriter::with_capacity(256 * 1024, file);
            writer.write_all(&std::mem::take(&mut self.memory))?;
            self.file = Some((path, writer));
        }
        let (_, writer) = self.file.as_mut().expect("a spool file");
        writer.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some((_, writer)) => writer.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_stays_in_memory_and_large_moves_to_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut small = Spool::new(dir.path().to_path_buf(), 8);
        small.write_all(b"abcd").unwrap();
        small.write_all(b"efgh").unwrap();
        assert!(matches!(small.finish().unwrap(), Spooled::Memory(m) if m == b"abcdefgh"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file for a small spool");

        let mut large = Spool::new(dir.path().to_path_buf(), 8);
        large.write_all(b"abcd").unwrap();
        large.write_all(b"efghi").unwrap();
        large.write_all(b"jk").unwrap();
        match large.finish().unwrap() {
            Spooled::File(path) => assert_eq!(std::fs::read(&path).unwrap(), b"abcdefghijk"),
            Spooled::Memory(_) => panic!("a large spool goes to a file"),
        }
    }
}
