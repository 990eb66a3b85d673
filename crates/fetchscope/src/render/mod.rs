//! Renderers: the same event stream as text for people or NDJSON for programs.

mod body_preview;
pub mod har;
mod json;
pub mod ladder;
pub mod report;
mod text;
pub mod write_out;

pub use json::JsonRenderer;
pub use text::TextRenderer;

use std::io::{self, Write};

use fetchscope_core::{Event, FetchError};

/// The renderer chosen on the command line.
// One per fetch, never moved in a loop: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Renderer<W: Write> {
    /// Text for people.
    Text(TextRenderer<W>),
    /// NDJSON, one event per line.
    Json(JsonRenderer<W>),
}

impl<W: Write> Renderer<W> {
    /// Renders one event.
    pub fn event(&mut self, e: &Event) -> io::Result<()> {
        match self {
            Renderer::Text(t) => t.event(e),
            Renderer::Json(j) => j.event(e),
        }
    }

    /// Ends the output after a failure.
    pub fn failed(&mut self, e: &FetchError) -> io::Result<()> {
        match self {
            Renderer::Text(t) => t.failed(e),
            Renderer::Json(_) => Ok(()),
        }
    }

    /// Writes text beside the events (text mode only; NDJSON stays pure), and flushes.
    pub fn raw(&mut self, text: &str) -> io::Result<()> {
        match self {
            Renderer::Text(t) => t.raw(text),
            Renderer::Json(_) => Ok(()),
        }
    }

    /// Writes `value` as one NDJSON line (JSON mode only).
    pub fn json_line<T: serde::Serialize>(&mut self, value: &T) -> io::Result<()> {
        match self {
            Renderer::Text(_) => Ok(()),
            Renderer::Json(j) => j.line(value),
        }
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Renderer::Text(t) => t.flush(),
            Renderer::Json(j) => j.flush(),
        }
    }
}
