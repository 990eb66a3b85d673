//! Where decoded body bytes go.

use std::io::Write;

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
