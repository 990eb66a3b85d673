//! The body's way out: content decoding, delivery to the sink, and byte counts.

use super::content::ContentDecoder;
use super::error::HttpError;
use super::sink::BodySink;

/// Counts body bytes, undoes content codings and hands the result to a [`BodySink`].
#[derive(Debug)]
pub(crate) struct BodyOutput {
    decoder: ContentDecoder,
    /// An unsupported coding, reported only if body bytes actually arrive.
    coding_error: Option<HttpError>,
    /// Body bytes as framed on the wire, in total.
    pub(crate) wire_total: u64,
    /// Decoded bytes handed to the sink, in total.
    pub(crate) decoded_total: u64,
    /// Wire bytes since the last [`take_step`](Self::take_step).
    step_wire: usize,
    /// Decoded bytes since the last [`take_step`](Self::take_step).
    step_decoded: usize,
}

impl BodyOutput {
    /// An output for a body with the given content codings (lower case, in applied order).
    pub(crate) fn new(codings: &[String], max_codings: usize) -> Self {
        let (decoder, coding_error) = match ContentDecoder::new(codings, max_codings) {
            Ok(decoder) => (decoder, None),
            Err(error) => (ContentDecoder::identity(), Some(error)),
        };
        Self {
            decoder,
            coding_error,
            wire_total: 0,
            decoded_total: 0,
            step_wire: 0,
            step_decoded: 0,
        }
    }

    /// Delivers body bytes as framed on the wire.
    pub(crate) fn deliver(
        &mut self,
        wire: &[u8],
        sink: &mut dyn BodySink,
    ) -> Result<(), HttpError> {
        if wire.is_empty() {
            return Ok(());
        }
        if let Some(error) = self.coding_error.take() {
            return Err(error);
        }
        self.wire_total = self.wire_total.saturating_add(len64(wire.len()));
        self.step_wire = self.step_wire.saturating_add(wire.len());
        let mut decoded = 0usize;
        let result = self.decoder.write(wire, &mut |piece| {
            sink.body(piece).map_err(HttpError::Sink)?;
            decoded = decoded.saturating_add(piece.len());
            Ok(())
        });
        self.count_decoded(decoded);
        result
    }

    /// The body is over: flushes the decoders and checks the compressed streams ended.
    pub(crate) fn finish(&mut self, sink: &mut dyn BodySink) -> Result<(), HttpError> {
        let mut decoded = 0usize;
        let result = self.decoder.finish(&mut |piece| {
            sink.body(piece).map_err(HttpError::Sink)?;
            decoded = decoded.saturating_add(piece.len());
            Ok(())
        });
        self.count_decoded(decoded);
        result
    }

    /// Wire and decoded bytes since the last call, then resets them.
    pub(crate) fn take_step(&mut self) -> (usize, usize) {
        let step = (self.step_wire, self.step_decoded);
        self.step_wire = 0;
        self.step_decoded = 0;
        step
    }

    /// Whether the outermost deflate stream is zlib-wrapped (`None`: no deflate or not known yet).
    pub(crate) fn deflate_is_zlib(&self) -> Option<bool> {
        self.decoder.deflate_is_zlib()
    }

    /// Whether the body passes through without content decoding.
    pub(crate) fn is_identity(&self) -> bool {
        self.decoder.is_identity()
    }

    /// Adds `decoded` bytes to the counters.
    fn count_decoded(&mut self, decoded: usize) {
        self.decoded_total = self.decoded_total.saturating_add(len64(decoded));
        self.step_decoded = self.step_decoded.saturating_add(decoded);
    }
}

/// `usize` to `u64` (lossless on every supported target).
fn len64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
