//! The NDJSON renderer: one event per line, nothing else (the `--json` contract).

use std::io::{self, Write};

use fetchscope_core::Event;

/// Writes each event as one JSON object per line.
pub struct JsonRenderer<W: Write> {
    out: W,
}

impl<W: Write> JsonRenderer<W> {
    /// A renderer writing to `out`.
    pub fn new(out: W) -> Self {
        JsonRenderer { out }
    }

    /// Writes one event and flushes, so a reader sees each event as it happens.
    pub fn event(&mut self, e: &Event) -> io::Result<()> {
        self.line(e)
    }

    /// Writes any serialisable value as one line (the caller flushes: a live fetch does
    /// whenever it is about to wait, and at its end).
    pub fn line<T: serde::Serialize>(&mut self, value: &T) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, value).map_err(io::Error::other)?;
        self.out.write_all(b"\n")
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
