//! Content-Encoding decoding as the body streams in (urllib3's `_get_decoder`).
//!
//! Codings are undone in reverse order of `Content-Encoding`. Each stage is a flate2
//! `write` decoder whose output is taken after every call, so no stage holds more than
//! flate2's 32 KiB window of output: the whole body is never buffered.

mod deflate;
mod gzip;

use self::{deflate::DeflateStage, gzip::GzipStage};
use super::error::HttpError;

/// One decoding step in the chain.
#[derive(Debug)]
enum Stage {
    /// `gzip` / `x-gzip`.
    Gzip(GzipStage),
    /// `deflate`.
    Deflate(DeflateStage),
}

impl Stage {
    /// The coding's name for error messages.
    fn name(&self) -> &'static str {
        match self {
            Self::Gzip(_) => "gzip",
            Self::Deflate(_) => "deflate",
        }
    }

    /// Consumes part of `input`; 0 with non-empty input means the stream has ended.
    fn write(&mut self, input: &[u8]) -> Result<usize, HttpError> {
        match self {
            Self::Gzip(s) => s.write(input),
            Self::Deflate(s) => s.write(input),
        }
        .map_err(|detail| self.corrupt(detail))
    }

    /// Makes decoded bytes held inside the decoder available.
    fn flush(&mut self) -> Result<(), HttpError> {
        match self {
            Self::Gzip(s) => s.flush(),
            Self::Deflate(s) => s.flush(),
        }
        .map_err(|detail| self.corrupt(detail))
    }

    /// Checks that the compressed stream ended properly.
    fn finish(&mut self) -> Result<(), HttpError> {
        match self {
            Self::Gzip(s) => s.finish(),
            Self::Deflate(s) => s.finish(),
        }
        .map_err(|detail| self.corrupt(detail))
    }

    /// Takes the decoded bytes produced so far.
    fn take_output(&mut self) -> Vec<u8> {
        match self {
            Self::Gzip(s) => s.take_output(),
            Self::Deflate(s) => s.take_output(),
        }
    }

    /// A [`HttpError::CorruptEncoding`] for this stage.
    fn corrupt(&self, detail: String) -> HttpError {
        HttpError::CorruptEncoding {
            coding: self.name().to_owned(),
            detail,
        }
    }
}

/// Undoes a response's content codings, streaming.
#[derive(Debug)]
pub(crate) struct ContentDecoder {
    /// Stages in decoding order (the last coding applied comes first).
    stages: Vec<Stage>,
}

impl ContentDecoder {
    /// A decoder for the codings named by `Content-Encoding` (lower case, in the order the
    /// server applied them). `identity` is skipped; an unknown coding is an error; more
    /// than `max_codings` real codings are refused, as urllib3 does.
    pub(crate) fn new(codings: &[String], max_codings: usize) -> Result<Self, HttpError> {
        let mut stages = Vec::new();
        for coding in codings.iter().rev() {
            let stage = match coding.as_str() {
                "identity" => continue,
                "gzip" | "x-gzip" => Stage::Gzip(GzipStage::new()),
                "deflate" => Stage::Deflate(DeflateStage::new()),
                other => return Err(HttpError::UnsupportedEncoding(other.to_owned())),
            };
            if stages.len() >= max_codings {
                let count = codings.iter().filter(|c| *c != "identity").count();
                return Err(HttpError::TooManyEncodings {
                    count,
                    limit: max_codings,
                });
            }
            stages.push(stage);
        }
        Ok(Self { stages })
    }

    /// A decoder that passes the body through unchanged.
    pub(crate) fn identity() -> Self {
        Self { stages: Vec::new() }
    }

    /// Whether the body passes through unchanged.
    pub(crate) fn is_identity(&self) -> bool {
        self.stages.is_empty()
    }

    /// Whether the outermost `deflate` stage found a zlib wrapper (`None`: no deflate, or not known yet).
    pub(crate) fn deflate_is_zlib(&self) -> Option<bool> {
        self.stages.iter().find_map(|s| match s {
            Stage::Deflate(d) => d.is_zlib(),
            Stage::Gzip(_) => None,
        })
    }

    /// Decodes `data` (body bytes as framed on the wire), passing decoded bytes to `out`.
    pub(crate) fn write(
        &mut self,
        data: &[u8],
        out: &mut dyn FnMut(&[u8]) -> Result<(), HttpError>,
    ) -> Result<(), HttpError> {
        push(&mut self.stages, data, out)
    }

    /// The body has ended: drains every stage and checks each stream was complete.
    pub(crate) fn finish(
        &mut self,
        out: &mut dyn FnMut(&[u8]) -> Result<(), HttpError>,
    ) -> Result<(), HttpError> {
        let mut stages = self.stages.as_mut_slice();
        while let Some((stage, rest)) = stages.split_first_mut() {
            stage.finish()?;
            forward(stage, rest, out)?;
            stages = rest;
        }
        Ok(())
    }
}

/// Feeds `data` through `stages` (first stage first) and the result to `out`.
fn push(
    stages: &mut [Stage],
    data: &[u8],
    out: &mut dyn FnMut(&[u8]) -> Result<(), HttpError>,
) -> Result<(), HttpError> {
    let Some((stage, rest)) = stages.split_first_mut() else {
        return if data.is_empty() { Ok(()) } else { out(data) };
    };
    let mut data = data;
    while !data.is_empty() {
        let used = stage.write(data)?;
        forward(stage, rest, out)?;
        if used == 0 {
            // The compressed stream ended; like zlib's `unused_data`, the rest is ignored.
            break;
        }
        data = data.get(used..).unwrap_or_default();
    }
    stage.flush()?;
    forward(stage, rest, out)
}

/// Passes what `stage` has decoded on to the `rest` of the chain.
fn forward(
    stage: &mut Stage,
    rest: &mut [Stage],
    out: &mut dyn FnMut(&[u8]) -> Result<(), HttpError>,
) -> Result<(), HttpError> {
    let decoded = stage.take_output();
    if decoded.is_empty() {
        return Ok(());
    }
    push(rest, &decoded, out)
}

/// A decoder error in words; early ends are named as such.
fn describe(error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::UnexpectedEof {
        "the compressed data ends before the end of its stream".to_owned()
    } else {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw(data: &[u8]) -> Vec<u8> {
        let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Decodes `wire` fed in pieces of `step` bytes; returns the output and the largest piece handed out.
    fn decode(codings: &[&str], wire: &[u8], step: usize) -> Result<(Vec<u8>, usize), HttpError> {
        let codings: Vec<String> = codings.iter().map(|c| (*c).to_owned()).collect();
        let mut decoder = ContentDecoder::new(&codings, 5)?;
        let mut out = Vec::new();
        let mut largest = 0;
        let mut sink = |d: &[u8]| {
            largest = largest.max(d.len());
            out.extend_from_slice(d);
            Ok(())
        };
        for piece in wire.chunks(step.max(1)) {
            decoder.write(piece, &mut sink)?;
        }
        decoder.finish(&mut sink)?;
        Ok((out, largest))
    }

    fn sample() -> Vec<u8> {
        (0..20_000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect()
    }

    #[test]
    fn gzip_zlib_raw_at_several_step_sizes() {
        let body = sample();
        for step in [1, 7, 512, 1 << 20] {
            assert_eq!(decode(&["gzip"], &gzip(&body), step).unwrap().0, body);
            assert_eq!(decode(&["x-gzip"], &gzip(&body), step).unwrap().0, body);
            assert_eq!(decode(&["deflate"], &zlib(&body), step).unwrap().0, body);
            assert_eq!(decode(&["deflate"], &raw(&body), step).unwrap().0, body);
        }
    }

    #[test]
    fn stacked_codings_are_undone_in_reverse() {
        let body = sample();
        let wire = zlib(&gzip(&body));
        assert_eq!(decode(&["gzip", "deflate"], &wire, 333).unwrap().0, body);
        let wire = gzip(&raw(&body));
        assert_eq!(
            decode(&["deflate", "identity", "gzip"], &wire, 1000)
                .unwrap()
                .0,
            body
        );
    }

    #[test]
    fn output_is_streamed_in_bounded_pieces() {
        let body = vec![b'a'; 8 << 20];
        let wire = gzip(&body);
        assert!(wire.len() < 64 << 10);
        let (out, largest) = decode(&["gzip"], &wire, wire.len()).unwrap();
        assert_eq!(out.len(), body.len());
        assert!(largest <= 64 << 10, "largest piece {largest}");
    }

    #[test]
    fn multi_member_gzip_and_trailing_garbage() {
        let mut wire = gzip(b"hello, ");
        wire.extend(gzip(b"world"));
        wire.extend([0u8; 16]);
        assert_eq!(decode(&["gzip"], &wire, 5).unwrap().0, b"hello, world");
    }

    /// The error kind of a decode, or "ok".
    fn outcome(codings: &[&str], wire: &[u8]) -> &'static str {
        decode(codings, wire, 100).map_or_else(|e| e.kind(), |_| "ok")
    }

    #[test]
    fn truncated_streams_are_errors() {
        let body = sample();
        for (coding, wire) in [
            ("gzip", gzip(&body)),
            ("deflate", zlib(&body)),
            ("deflate", raw(&body)),
        ] {
            let err = decode(&[coding], &wire[..wire.len() - 3], 100).unwrap_err();
            assert_eq!(err.kind(), "corrupt-encoding", "{coding}");
            assert!(err.to_string().contains(coding), "{err}");
        }
        assert_eq!(outcome(&["gzip"], b"not gzip at all"), "corrupt-encoding");
        assert_eq!(outcome(&["deflate"], b"x"), "corrupt-encoding");
    }

    #[test]
    fn corrupt_checksummed_streams_are_errors() {
        // gzip (CRC-32) and zlib (Adler-32) detect damage; raw deflate has no checksum.
        let body = sample();
        for (coding, wire) in [("gzip", gzip(&body)), ("deflate", zlib(&body))] {
            for at in [wire.len() / 3, wire.len() / 2, wire.len() - 6] {
                let mut bad = wire.clone();
                bad[at] ^= 0x5a;
                assert_eq!(
                    outcome(&[coding], &bad),
                    "corrupt-encoding",
                    "{coding} at {at}"
                );
            }
        }
    }

    #[test]
    fn empty_bodies_decode_to_nothing() {
        assert_eq!(decode(&["gzip"], b"", 1).unwrap().0, b"");
        assert_eq!(decode(&["deflate"], b"", 1).unwrap().0, b"");
    }

    #[test]
    fn unknown_and_too_many_codings() {
        let err = decode(&["br"], b"", 1).unwrap_err();
        assert_eq!(err.kind(), "unsupported-encoding");
        let err = decode(&["gzip"; 6], b"", 1).unwrap_err();
        assert_eq!(err.kind(), "too-many-encodings");
        assert!(decode(&["identity"; 9], b"abc", 1).unwrap().0 == b"abc");
    }
}
