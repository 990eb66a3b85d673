//! `deflate`: zlib-wrapped (RFC 1950) as the standard says, or raw (RFC 1951) as some
//! servers send it.
//!
//! urllib3's `DeflateDecoder` tries zlib first and falls back to raw deflate when zlib
//! rejects the start of the data. That rejection can only come from the two-byte zlib
//! header, so this decoder reads those two bytes and decides: a valid header (method 8,
//! window ≤ 32 KiB, check bits right, no preset dictionary) means zlib, anything else raw.
//! No real raw stream starts with a valid zlib header: its first three bits name the block
//! type and the next are zero padding or Huffman codes, never the nibble 8 with padding set.

use std::io::Write as _;

use flate2::write::{DeflateDecoder, ZlibDecoder};

use super::describe;

/// Which decoder the first bytes chose.
#[derive(Debug)]
enum Mode {
    /// Waiting for the first two bytes.
    Sniffing(Vec<u8>),
    /// RFC 1950 zlib wrapper.
    Zlib(ZlibDecoder<Vec<u8>>),
    /// RFC 1951 raw deflate.
    Raw(DeflateDecoder<Vec<u8>>),
}

/// A streaming deflate decoder with bounded buffers.
#[derive(Debug)]
pub(crate) struct DeflateStage {
    mode: Mode,
}

impl DeflateStage {
    /// A decoder that has seen no bytes yet.
    pub(crate) fn new() -> Self {
        Self {
            mode: Mode::Sniffing(Vec::with_capacity(2)),
        }
    }

    /// Whether the stream was recognised as zlib-wrapped (`None` before two bytes arrived).
    pub(crate) fn is_zlib(&self) -> Option<bool> {
        match self.mode {
            Mode::Sniffing(_) => None,
            Mode::Zlib(_) => Some(true),
            Mode::Raw(_) => Some(false),
        }
    }

    /// Consumes part of `input`; 0 with non-empty input means the stream has ended.
    pub(crate) fn write(&mut self, input: &[u8]) -> Result<usize, String> {
        match &mut self.mode {
            Mode::Sniffing(first) => {
                let take = 2usize.saturating_sub(first.len()).min(input.len());
                first.extend_from_slice(input.get(..take).unwrap_or_default());
                if first.len() == 2 {
                    let first = std::mem::take(first);
                    self.mode = if is_zlib_header(&first) {
                        Mode::Zlib(ZlibDecoder::new(Vec::new()))
                    } else {
                        Mode::Raw(DeflateDecoder::new(Vec::new()))
                    };
                    let mut rest = first.as_slice();
                    while !rest.is_empty() {
                        let used = self.write_decoder(rest)?;
                        if used == 0 {
                            break;
                        }
                        rest = rest.get(used..).unwrap_or_default();
                    }
                }
                Ok(take)
            }
            Mode::Zlib(_) | Mode::Raw(_) => self.write_decoder(input),
        }
    }

    /// Moves decoded bytes held inside the decoder to the output.
    pub(crate) fn flush(&mut self) -> Result<(), String> {
        match &mut self.mode {
            Mode::Sniffing(_) => Ok(()),
            Mode::Zlib(d) => d.flush(),
            Mode::Raw(d) => d.flush(),
        }
        .map_err(|e| describe(&e))
    }

    /// Checks that the stream reached its end; an empty body is fine.
    pub(crate) fn finish(&mut self) -> Result<(), String> {
        match &mut self.mode {
            Mode::Sniffing(first) if first.is_empty() => Ok(()),
            Mode::Sniffing(_) => Err("the compressed data ends after one byte".to_owned()),
            Mode::Zlib(d) => d.try_finish().map_err(|e| describe(&e)),
            Mode::Raw(d) => d.try_finish().map_err(|e| describe(&e)),
        }
    }

    /// Takes the decoded bytes produced so far.
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        match &mut self.mode {
            Mode::Sniffing(_) => Vec::new(),
            Mode::Zlib(d) => std::mem::take(d.get_mut()),
            Mode::Raw(d) => std::mem::take(d.get_mut()),
        }
    }

    /// Writes into the chosen decoder.
    fn write_decoder(&mut self, input: &[u8]) -> Result<usize, String> {
        match &mut self.mode {
            Mode::Sniffing(_) => Ok(0),
            Mode::Zlib(d) => d.write(input),
            Mode::Raw(d) => d.write(input),
        }
        .map_err(|e| describe(&e))
    }
}

/// RFC 1950 §2.2: CM = 8, CINFO ≤ 7, (CMF·256 + FLG) divisible by 31, FDICT clear.
fn is_zlib_header(first: &[u8]) -> bool {
    let [cmf, flg] = first else {
        return false;
    };
    let check = (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0;
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && check && flg & 0x20 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zlib_headers_are_recognised() {
        for header in [[0x78, 0x9c], [0x78, 0x01], [0x78, 0xda], [0x48, 0x89]] {
            assert!(is_zlib_header(&header), "{header:x?}");
        }
        // raw deflate starts: stored, fixed and dynamic blocks
        for header in [
            [0x01, 0x00],
            [0x03, 0x00],
            [0xcb, 0x48],
            [0xed, 0xbd],
            [0x78, 0xbb],
        ] {
            assert!(!is_zlib_header(&header), "{header:x?}");
        }
    }
}
