//! Handshake-message reassembly: one direction's handshake byte stream cut by the 4-byte
//! message header (type, 24-bit length), across record boundaries.

use crate::error::DecodeError;

/// Handshake message header length.
const HEADER_LEN: usize = 4;
/// Handshake messages longer than this are not reassembled (certificate chains stay far
/// below it); the direction's handshake stream is then given up.
pub(crate) const MAX_MESSAGE: usize = 128 * 1024;

/// One direction's pending handshake bytes.
#[derive(Debug, Default)]
pub(crate) struct HandshakeBuffer {
    buf: Vec<u8>,
    lost: bool,
}

/// The messages completed by one record, plus any framing problem.
#[derive(Debug, Default)]
pub(crate) struct Completed {
    /// Whole messages, each with its 4-byte header.
    pub messages: Vec<Vec<u8>>,
    /// Set when the framing broke; later bytes are ignored.
    pub problem: Option<DecodeError>,
}

impl HandshakeBuffer {
    /// Adds the handshake bytes of one record; returns the messages they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Completed {
        let mut done = Completed::default();
        if self.lost {
            return done;
        }
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(h) = self.buf.get(start..start + HEADER_LEN) {
            let len = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
            if len > MAX_MESSAGE {
                done.problem = Some(DecodeError::field("handshake message length", len));
                self.lost = true;
                self.buf = Vec::new();
                return done;
            }
            let Some(msg) = self.buf.get(start..start + HEADER_LEN + len) else {
                break;
            };
            done.messages.push(msg.to_vec());
            start += HEADER_LEN + len;
        }
        self.buf.drain(..start);
        done
    }

    /// True when part of a message is waiting for the next record.
    #[cfg(test)]
    pub fn is_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Bytes held.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Forgets a partial message (at a key change, where messages may not straddle).
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_across_records_and_several_in_one() {
        let m1 = [8u8, 0, 0, 2, 0, 0];
        let m2 = [11u8, 0, 0, 3, 1, 2, 3];
        let mut stream = m1.to_vec();
        stream.extend_from_slice(&m2);
        let mut hs = HandshakeBuffer::default();
        let a = hs.push(&stream[..3]);
        assert!(a.messages.is_empty() && a.problem.is_none());
        assert!(hs.is_partial());
        let b = hs.push(&stream[3..8]);
        assert_eq!(b.messages, vec![m1.to_vec()]);
        let c = hs.push(&stream[8..]);
        assert_eq!(c.messages, vec![m2.to_vec()]);
        assert!(!hs.is_partial());
    }

    #[test]
    fn oversized_length_gives_up() {
        let mut hs = HandshakeBuffer::default();
        let r = hs.push(&[11, 0xff, 0xff, 0xff, 0]);
        assert!(r.problem.is_some());
        assert!(hs.push(&[20, 0, 0, 0]).messages.is_empty());
    }
}
