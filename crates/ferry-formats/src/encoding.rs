//! Text encodings: [`Utf8Reader`] finds a file's encoding from its byte-order mark and hands the
//! readers checked UTF-8, transcoding UTF-16 on the fly. Bytes that are not valid in the detected
//! encoding stop the read with an `InvalidEncoding` error naming the byte offset and line: ferry
//! never guesses or replaces characters, because a silently changed name or account number is
//! worse than a file sent back.

use crate::{FormatError, FormatErrorKind};
use std::io::{self, BufRead, Read};

/// How many source bytes are read at a time.
const CHUNK_BYTES: usize = 64 * 1024;

/// The encoding a [`Utf8Reader`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8, with or without a byte-order mark.
    Utf8,
    /// UTF-16 little-endian (byte-order mark `FF FE`).
    Utf16Le,
    /// UTF-16 big-endian (byte-order mark `FE FF`).
    Utf16Be,
}

impl TextEncoding {
    pub fn name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::Utf16Le => "UTF-16 LE",
            TextEncoding::Utf16Be => "UTF-16 BE",
        }
    }
}

/// A `Read` (and `BufRead`) adapter that yields the input as UTF-8, with any byte-order mark
/// removed. Memory is bounded: two buffers of 64 KiB, whatever the input size.
pub struct Utf8Reader<R> {
    inner: R,
    encoding: TextEncoding,
    /// UTF-16 only: the streaming transcoder (it keeps a split surrogate pair between chunks).
    decoder: Option<encoding_rs::Decoder>,
    raw: Vec<u8>,
    raw_pos: usize,
    raw_len: usize,
    inner_eof: bool,
    out: Vec<u8>,
    out_pos: usize,
    /// Source offset of `raw[raw_pos]`.
    source_offset: u64,
    /// Line (from 1) of the next byte handed out.
    line: u64,
    /// An encoding error found after the bytes still in `out`; reported once they are read.
    error: Option<FormatError>,
    finished: bool,
}

impl<R: Read> Utf8Reader<R> {
    /// Detects a UTF-8, UTF-16 LE or UTF-16 BE byte-order mark; without one the input is UTF-8.
    pub fn new(inner: R) -> Result<Self, FormatError> {
        Self::detect(inner, false)
    }

    /// Like [`Utf8Reader::new`], and also recognises UTF-16 without a byte-order mark by its
    /// first character `<` (as XML allows, XML 1.0 appendix F).
    pub fn new_xml(inner: R) -> Result<Self, FormatError> {
        Self::detect(inner, true)
    }

    /// The encoding found.
    pub fn encoding(&self) -> TextEncoding {
        self.encoding
    }

    fn detect(inner: R, xml: bool) -> Result<Self, FormatError> {
        let mut reader = Utf8Reader {
            inner,
            encoding: TextEncoding::Utf8,
            decoder: None,
            raw: vec![0; CHUNK_BYTES],
            raw_pos: 0,
            raw_len: 0,
            inner_eof: false,
            out: Vec::with_capacity(CHUNK_BYTES),
            out_pos: 0,
            source_offset: 0,
            line: 1,
            error: None,
            finished: false,
        };
        while reader.raw_len < 4 && !reader.inner_eof {
            reader.fill_raw()?;
        }
        let head = &reader.raw[..reader.raw_len];
        let (encoding, bom_len) = if head.starts_with(&[0xFF, 0xFE, 0, 0]) || head.starts_with(&[0, 0, 0xFE, 0xFF]) {
            return Err(FormatError::new(
                FormatErrorKind::InvalidEncoding,
                "the file is UTF-32, which ferry does not read: save it as UTF-8 (or UTF-16) and try again",
            ));
        } else if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
            (TextEncoding::Utf8, 3)
        } else if head.starts_with(&[0xFF, 0xFE]) {
            (TextEncoding::Utf16Le, 2)
        } else if head.starts_with(&[0xFE, 0xFF]) {
            (TextEncoding::Utf16Be, 2)
        } else if xml && head.starts_with(&[b'<', 0, b'?', 0]) {
            (TextEncoding::Utf16Le, 0)
        } else if xml && head.starts_with(&[0, b'<', 0, b'?']) {
            (TextEncoding::Utf16Be, 0)
        } else {
            (TextEncoding::Utf8, 0)
        };
        reader.encoding = encoding;
        reader.raw_pos = bom_len;
        reader.source_offset = bom_len as u64;
        reader.decoder = match encoding {
            TextEncoding::Utf8 => None,
            TextEncoding::Utf16Le => Some(encoding_rs::UTF_16LE.new_decoder_without_bom_handling()),
            TextEncoding::Utf16Be => Some(encoding_rs::UTF_16BE.new_decoder_without_bom_handling()),
        };
        Ok(reader)
    }

    /// Reads more source bytes after those not yet decoded.
    fn fill_raw(&mut self) -> io::Result<()> {
        if self.raw_pos > 0 {
            self.raw.copy_within(self.raw_pos..self.raw_len, 0);
            self.raw_len -= self.raw_pos;
            self.raw_pos = 0;
        }
        if self.inner_eof || self.raw_len == self.raw.len() {
            return Ok(());
        }
        loop {
            match self.inner.read(&mut self.raw[self.raw_len..]) {
                Ok(0) => {
                    self.inner_eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.raw_len += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Decodes the next chunk into `out` (which is empty when this is called).
    fn decode_more(&mut self) -> io::Result<()> {
        self.out.clear();
        self.out_pos = 0;
        self.fill_raw()?;
        let src = &self.raw[self.raw_pos..self.raw_len];
        match &mut self.decoder {
            None => {
                let (valid, bad) = match std::str::from_utf8(src) {
                    Ok(_) => (src.len(), false),
                    // An incomplete sequence at the end of the chunk waits for the next chunk,
                    // unless the input ends there.
                    Err(e) => (e.valid_up_to(), e.error_len().is_some() || self.inner_eof),
                };
                self.out.extend_from_slice(&src[..valid]);
                let bad_byte = src.get(valid).copied();
                self.advance(valid);
                if bad {
                    let byte = bad_byte.map(|b| format!("0x{b:02X}")).unwrap_or_default();
                    self.fail(format!(
                        "the file is not valid UTF-8: byte {byte} at byte offset {}",
                        self.source_offset
                    ));
                } else if self.inner_eof && self.raw_pos == self.raw_len {
                    self.finished = true;
                }
            }
            Some(decoder) => {
                let last = self.inner_eof;
                let room = decoder
                    .max_utf8_buffer_length_without_replacement(src.len())
                    .unwrap_or(src.len().saturating_mul(3))
                    .max(4);
                self.out.resize(room, 0);
                let (result, read, written) = decoder.decode_to_utf8_without_replacement(src, &mut self.out, last);
                self.out.truncate(written);
                self.advance(read);
                match result {
                    encoding_rs::DecoderResult::InputEmpty => self.finished = last,
                    encoding_rs::DecoderResult::OutputFull => {}
                    encoding_rs::DecoderResult::Malformed(bad, after) => {
                        let at = self.source_offset.saturating_sub(u64::from(bad) + u64::from(after));
                        let name = self.encoding.name();
                        self.fail(format!(
                            "the file is not valid {name}: an unpaired surrogate or a truncated character at byte offset {at}"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Moves past `n` decoded source bytes, counting the lines of what was handed out.
    fn advance(&mut self, n: usize) {
        self.raw_pos += n;
        self.source_offset += n as u64;
    }

    fn fail(&mut self, what: String) {
        let line = self.line + self.out.iter().filter(|&&b| b == b'\n').count() as u64;
        self.error = Some(FormatError::new(
            FormatErrorKind::InvalidEncoding,
            format!(
                "{what} (line {line}); ferry reads UTF-8, or UTF-16 with a byte-order mark: save the file in one of \
                 those encodings and try again"
            ),
        ));
    }
}

impl<R: Read> Read for Utf8Reader<R> {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(dst.len());
        dst[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Utf8Reader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.out_pos >= self.out.len() {
            if let Some(error) = &self.error {
                return Err(error.clone().into());
            }
            if self.finished {
                return Ok(&[]);
            }
            self.decode_more()?;
        }
        Ok(&self.out[self.out_pos..])
    }

    fn consume(&mut self, amount: usize) {
        let end = self.out_pos.saturating_add(amount).min(self.out.len());
        self.line += self.out[self.out_pos..end].iter().filter(|&&b| b == b'\n').count() as u64;
        self.out_pos = end;
    }
}
