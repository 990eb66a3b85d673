//! Where decoded body bytes go.

use std::io::Write;

use sha2::{Digest, Sha256};

use super::body_worker::BodyWorker;

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
///
/// The hashing and the writing happen on a worker thread (`http/body_worker.rs`) beside the
/// fetch, so they cost the packet path nothing but a copy; when no thread can be started
/// they happen inline.
pub struct DigestSink {
    bytes: u64,
    /// The body's first [`BODY_START_LEN`] bytes, for the text output to show.
    start: Vec<u8>,
    engine: Engine,
}

/// How much of the body's start [`DigestSink::start`] keeps.
pub const BODY_START_LEN: usize = 8 * 1024;

/// Who hashes and writes.
enum Engine {
    /// The worker thread.
    Worker(BodyWorker),
    /// This thread (no worker could be started).
    Inline {
        hasher: Sha256,
        out: Option<Box<dyn Write + Send>>,
    },
}

impl std::fmt::Debug for DigestSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestSink")
            .field("bytes", &self.bytes)
            .field("worker", &matches!(self.engine, Engine::Worker(_)))
            .finish_non_exhaustive()
    }
}

impl DigestSink {
    /// A sink that hashes and counts, and writes to `out` when given.
    pub fn new(out: Option<Box<dyn Write + Send>>) -> Self {
        let engine = match BodyWorker::start(out) {
            Ok(worker) => Engine::Worker(worker),
            Err(out) => Engine::Inline {
                hasher: Sha256::new(),
                out,
            },
        };
        DigestSink {
            bytes: 0,
            start: Vec::new(),
            engine,
        }
    }

    /// Decoded body bytes so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The body's first bytes (at most [`BODY_START_LEN`]).
    pub fn start(&self) -> &[u8] {
        &self.start
    }

    /// Writes and flushes every byte so far to the output file, if any.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.engine {
            Engine::Worker(w) => w.sync().map(|_| ()),
            Engine::Inline { out: Some(out), .. } => out.flush(),
            Engine::Inline { out: None, .. } => Ok(()),
        }
    }

    /// The SHA-256 of the decoded body so far, in lowercase hex (empty when the body
    /// writer thread was lost).
    pub fn sha256_hex(&mut self) -> String {
        match &mut self.engine {
            Engine::Worker(w) => w.digest().map(hex::encode).unwrap_or_default(),
            Engine::Inline { hasher, .. } => hex::encode(hasher.clone().finalize()),
        }
    }
}

impl BodySink for DigestSink {
    fn body(&mut self, decoded: &[u8]) -> std::io::Result<()> {
        self.bytes += decoded.len() as u64;
        if self.start.len() < BODY_START_LEN {
            let room = BODY_START_LEN - self.start.len();
            self.start
                .extend_from_slice(decoded.get(..room.min(decoded.len())).unwrap_or_default());
        }
        match &mut self.engine {
            Engine::Worker(w) => w.body(decoded),
            Engine::Inline { hasher, out } => {
                hasher.update(decoded);
                match out {
                    Some(out) => out.write_all(decoded),
                    None => Ok(()),
                }
            }
        }
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
        assert_eq!(sink.start(), b"hello");
        assert_eq!(
            sink.sha256_hex(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }
}
