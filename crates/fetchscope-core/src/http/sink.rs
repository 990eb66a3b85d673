//! Where decoded body bytes go.

use std::io::Write;

use sha2::{Digest, Sha256};

/// Receives the decoded body (after chunked framing and content codings are removed), piece by piece.
pub trait BodySink {
    /// Takes the next piece of the decoded body; an error stops the response.
    fn body(&mut self, decoded: &[u8]) -> std::io::Result<()>;
}

/// Collects the whole body in memory (the caller decides whether that is bounded).
impl BodySink for Vec<u8> {
    fn body(&mut self, decoded: &[u8]) -> std::io::Result<()> {
        self.extend_from_slice(decoded);
        Ok(())
    }
}

impl<S: BodySink + ?Sized> BodySink for &mut S {
    fn body(&mut self, decoded: &[u8]) -> std::io::Result<()> {
        (**self).body(decoded)
    }
}

/// Throws the body away (counts still come from the reader).
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl BodySink for Discard {
    fn body(&mut self, _decoded: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes the body to any [`Write`] (a file for `--output`, a hasher adapter, ...).
#[derive(Debug)]
pub struct WriteSink<W: Write>(pub W);

impl<W: Write> BodySink for WriteSink<W> {
    fn body(&mut self, decoded: &[u8]) -> std::io::Result<()> {
        self.0.write_all(decoded)
    }
}

/// The fetch's body destination: a SHA-256 and a byte count of the decoded body, and
/// maybe a file (`-o`) it is streamed to.
pub struct DigestSink {
    hasher: Sha256,
    bytes: u64,
    out: Option<Box<dyn Write>>,
}

impl std::fmt::Debug for DigestSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestSink")
            .field("bytes", &self.bytes)
            .field("out", &self.out.is_some())
            .finish_non_exhaustive()
    }
}

impl DigestSink {
    /// A sink that hashes and counts, and writes to `out` when given.
    pub fn new(out: Option<Box<dyn Write>>) -> Self {
        DigestSink {
            hasher: Sha256::new(),
            bytes: 0,
            out,
        }
    }

    /// Decoded body bytes so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Flushes the output file, if any.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.out {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }

    /// The SHA-256 of the decoded body so far, in lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

impl BodySink for DigestSink {
    fn body(&mut self, decoded: &[u8]) -> std::io::Result<()> {
        self.hasher.update(decoded);
        self.bytes += decoded.len() as u64;
        if let Some(out) = &mut self.out {
            out.write_all(decoded)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_sink_hashes_counts_and_writes() {
        let mut sink = DigestSink::new(Some(Box::new(Vec::new())));
        sink.body(b"hel").unwrap();
        sink.body(b"lo").unwrap();
        sink.flush().unwrap();
        assert_eq!(sink.bytes(), 5);
        assert_eq!(
            sink.sha256_hex(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }
}
