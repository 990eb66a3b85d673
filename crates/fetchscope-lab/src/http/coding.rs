//! Content codings (gzip, deflate) and the chunked transfer coding, applied to in-memory
//! bodies. flate2's output is deterministic, so the coded bytes repeat from run to run.

use std::io::Write;

use flate2::Compression;
use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};

/// Chunk sizes of [`chunked`], used in turn: different sizes show that a client must
/// read each size line rather than assume a block size.
const CHUNK_SIZES: [usize; 4] = [1000, 257, 64, 700];

/// `data` gzip-encoded (RFC 1952).
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// `data` in the zlib format (RFC 1950), what `Content-Encoding: deflate` means.
pub(crate) fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// `data` as a raw deflate stream (RFC 1951), what some servers wrongly send as
/// `Content-Encoding: deflate`.
pub(crate) fn deflate_raw(data: &[u8]) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// `data` gzip-encoded, with 8 bytes in the middle of the compressed stream inverted:
/// the decoder either hits an invalid code or, at the latest, a CRC-32 mismatch.
pub(crate) fn corrupt_gzip(data: &[u8]) -> Vec<u8> {
    let mut out = gzip(data);
    // 10-byte header, 8-byte trailer: corrupt the middle of what lies between.
    let middle = 10 + out.len().saturating_sub(18) / 2;
    for b in out.iter_mut().skip(middle).take(8) {
        *b ^= 0xff;
    }
    out
}

/// `data` in the chunked transfer coding: chunks of [`CHUNK_SIZES`] in turn (the first
/// with a chunk extension, which a client must skip), then the last chunk.
pub(crate) fn chunked(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut rest = data;
    let mut sizes = CHUNK_SIZES.iter().cycle();
    let mut first = true;
    while !rest.is_empty() {
        let size = sizes.next().copied().unwrap_or(1000).min(rest.len());
        let (chunk, tail) = rest.split_at(size);
        let ext = if first { ";lab=first" } else { "" };
        out.extend_from_slice(format!("{size:x}{ext}\r\n").as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
        rest = tail;
        first = false;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// The `bad-chunk` fault: a valid first chunk of `data`, then a chunk-size line that is
/// not hexadecimal, then the rest of the bytes and a last chunk (never reached).
pub(crate) fn bad_chunked(data: &[u8]) -> Vec<u8> {
    let (first, rest) = data.split_at(data.len().min(CHUNK_SIZES[0]));
    let mut out = Vec::with_capacity(data.len() + 32);
    out.extend_from_slice(format!("{:x}\r\n", first.len()).as_bytes());
    out.extend_from_slice(first);
    out.extend_from_slice(b"\r\nzz\r\n");
    out.extend_from_slice(rest);
    out.extend_from_slice(b"\r\n0\r\n\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::{DeflateDecoder, GzDecoder, ZlibDecoder};
    use std::io::Read;

    const TEXT: &[u8] = include_bytes!("text.txt");

    fn read_all(mut r: impl Read) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        Ok(out)
    }

    /// Decodes a chunked body (strictly: hexadecimal sizes, CRLFs) for the tests.
    fn unchunk(mut wire: &[u8]) -> Result<(Vec<u8>, usize), String> {
        let mut out = Vec::new();
        let mut chunks = 0;
        loop {
            let line_end = wire
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("no CRLF")?;
            let line = std::str::from_utf8(&wire[..line_end]).map_err(|e| e.to_string())?;
            let size_text = line.split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size_text, 16).map_err(|e| e.to_string())?;
            wire = &wire[line_end + 2..];
            if size == 0 {
                return if wire == b"\r\n" {
                    Ok((out, chunks))
                } else {
                    Err("junk after the last chunk".into())
                };
            }
            out.extend_from_slice(&wire[..size]);
            if &wire[size..size + 2] != b"\r\n" {
                return Err("no CRLF after chunk data".into());
            }
            wire = &wire[size + 2..];
            chunks += 1;
        }
    }

    #[test]
    fn codings_round_trip_and_compress() {
        assert_eq!(read_all(GzDecoder::new(&gzip(TEXT)[..])).unwrap(), TEXT);
        assert_eq!(read_all(ZlibDecoder::new(&zlib(TEXT)[..])).unwrap(), TEXT);
        assert_eq!(
            read_all(DeflateDecoder::new(&deflate_raw(TEXT)[..])).unwrap(),
            TEXT
        );
        assert!(gzip(TEXT).len() < TEXT.len() / 2, "{}", gzip(TEXT).len());
        assert_eq!(gzip(TEXT), gzip(TEXT), "deterministic");
        // zlib's 2-byte header and Adler-32 trailer around the same raw stream
        assert_eq!(zlib(TEXT).len(), deflate_raw(TEXT).len() + 6);
    }

    #[test]
    fn chunked_has_several_chunks_and_decodes() {
        let wire = chunked(TEXT);
        let (body, chunks) = unchunk(&wire).unwrap();
        assert_eq!(body, TEXT);
        assert!(chunks >= 4, "{chunks}");
        assert!(wire.starts_with(b"3e8;lab=first\r\n"));
        assert_eq!(unchunk(&chunked(b"")).unwrap().0, b"");
    }

    #[test]
    fn corrupt_gzip_and_bad_chunks_fail_to_decode() {
        let corrupt = corrupt_gzip(TEXT);
        assert_eq!(corrupt.len(), gzip(TEXT).len());
        assert_eq!(&corrupt[..10], &gzip(TEXT)[..10], "the header is intact");
        assert!(read_all(GzDecoder::new(&corrupt[..])).is_err());
        let err = unchunk(&bad_chunked(TEXT)).unwrap_err();
        assert!(err.contains("invalid digit"), "{err}");
    }
}
