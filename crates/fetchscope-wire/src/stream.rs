//! In-order reassembly of one direction of a TCP byte stream, with a bounded buffer for
//! segments that arrive ahead of a hole.

use crate::seq::diff;

/// Bytes held ahead of a hole, per direction, before the hole is declared a gap: a little
/// more than fetchscope's own receive window (1 MiB), so a trace of its fetches decodes
/// every record however the loss falls.
pub(crate) const MAX_HELD_BYTES: usize = 1024 * 1024 + 64 * 1024;
/// Segments held ahead of a hole, per direction.
const MAX_HELD_SEGMENTS: usize = 2048;

/// What the stream hands to the application decoder, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Chunk<'a> {
    /// The next bytes of the stream.
    Data(&'a [u8]),
    /// This many bytes will never be seen (the buffer ahead of a hole overflowed).
    Gap(u64),
}

/// One direction's reassembly state.
#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    /// Sequence number of the next in-order byte, once known.
    next: Option<u32>,
    /// Segments beyond `next`, as (sequence number, bytes).
    held: Vec<(u32, Vec<u8>)>,
    held_bytes: usize,
}

impl Reassembly {
    /// Starts the stream at `seq` (the byte after the SYN), unless it already started.
    pub fn start_at(&mut self, seq: u32) {
        if self.next.is_none() {
            self.next = Some(seq);
        }
    }

    /// Bytes currently held ahead of a hole.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Adds a segment's payload at `seq`; hands every byte that becomes in-order to
    /// `deliver` exactly once (retransmitted bytes are not delivered again).
    pub fn push(&mut self, seq: u32, data: &[u8], deliver: &mut impl FnMut(Chunk<'_>)) {
        if data.is_empty() {
            return;
        }
        let next = *self.next.get_or_insert(seq);
        if diff(seq, next) > 0 {
            if self.is_held(seq, data.len()) {
                return;
            }
            if self.held_bytes + data.len() > MAX_HELD_BYTES || self.held.len() >= MAX_HELD_SEGMENTS
            {
                // Give up on the hole: skip to the earliest byte held (or this segment).
                let earliest = self
                    .held
                    .iter()
                    .map(|(s, _)| *s)
                    .chain(std::iter::once(seq))
                    .min_by_key(|s| diff(*s, next))
                    .unwrap_or(seq);
                deliver(Chunk::Gap(diff(earliest, next).unsigned_abs()));
                self.next = Some(earliest);
                self.deliver_from(earliest, seq, data, deliver);
            } else {
                self.hold(seq, data);
            }
            return;
        }
        self.deliver_from(next, seq, data, deliver);
    }

    /// Delivers the part of `data` (at `seq`) beyond `next` and whatever held segments
    /// become in-order; holds `data` if it is still ahead (and fits), else drops it.
    fn deliver_from(
        &mut self,
        next: u32,
        seq: u32,
        data: &[u8],
        deliver: &mut impl FnMut(Chunk<'_>),
    ) {
        let mut next = next;
        let mut pending = Some((seq, data));
        loop {
            if let Some((s, d)) = pending
                && diff(s, next) <= 0
            {
                next = self.emit(next, s, d, deliver);
                pending = None;
            }
            let Some(i) = self.held.iter().position(|(s, _)| diff(*s, next) <= 0) else {
                break;
            };
            let (s, bytes) = self.held.swap_remove(i);
            self.held_bytes = self.held_bytes.saturating_sub(bytes.len());
            next = self.emit(next, s, &bytes, deliver);
        }
        if let Some((s, d)) = pending {
            self.hold(s, d);
        }
        self.next = Some(next);
    }

    /// True when a segment at `seq` at least `len` bytes long is already held.
    fn is_held(&self, seq: u32, len: usize) -> bool {
        self.held.iter().any(|(s, d)| *s == seq && d.len() >= len)
    }

    /// Keeps a segment that lies ahead of a hole, if it fits and is not already held.
    fn hold(&mut self, seq: u32, data: &[u8]) {
        if !self.is_held(seq, data.len())
            && self.held_bytes + data.len() <= MAX_HELD_BYTES
            && self.held.len() < MAX_HELD_SEGMENTS
        {
            self.held_bytes += data.len();
            self.held.push((seq, data.to_vec()));
        }
    }

    /// Delivers the bytes of `data` (at `seq`, not after `next`) beyond `next`; returns the
    /// new `next`.
    fn emit(
        &mut self,
        next: u32,
        seq: u32,
        data: &[u8],
        deliver: &mut impl FnMut(Chunk<'_>),
    ) -> u32 {
        let skip = usize::try_from(diff(next, seq)).unwrap_or(usize::MAX);
        match data.get(skip..) {
            Some(fresh) if !fresh.is_empty() => {
                deliver(Chunk::Data(fresh));
                next.wrapping_add(u32::try_from(fresh.len()).unwrap_or(u32::MAX))
            }
            _ => next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(r: &mut Reassembly, seq: u32, data: &[u8]) -> (Vec<u8>, u64) {
        let mut out = Vec::new();
        let mut gap = 0;
        r.push(seq, data, &mut |c| match c {
            Chunk::Data(d) => out.extend_from_slice(d),
            Chunk::Gap(n) => gap += n,
        });
        (out, gap)
    }

    #[test]
    fn in_order_retransmitted_and_overlapping() {
        let mut r = Reassembly::default();
        r.start_at(u32::MAX - 1); // wraps around zero
        assert_eq!(run(&mut r, u32::MAX - 1, b"abc").0, b"abc");
        assert_eq!(run(&mut r, u32::MAX - 1, b"abc").0, b"", "retransmission");
        assert_eq!(run(&mut r, u32::MAX, b"bcdef").0, b"def", "overlap");
        assert_eq!(run(&mut r, 4, b"g").0, b"g");
    }

    #[test]
    fn out_of_order_is_held_then_released() {
        let mut r = Reassembly::default();
        r.start_at(100);
        assert_eq!(run(&mut r, 106, b"ghi").0, b"");
        assert_eq!(run(&mut r, 103, b"def").0, b"");
        assert_eq!(r.held_bytes(), 6);
        assert_eq!(run(&mut r, 100, b"abc").0, b"abcdefghi");
        assert_eq!(r.held_bytes(), 0);
    }

    #[test]
    fn overflow_declares_a_gap_and_stays_bounded() {
        let mut r = Reassembly::default();
        r.start_at(0);
        let seg = vec![7u8; 1000];
        let mut gaps = 0;
        let mut delivered = 0;
        for i in 0..1200u32 {
            let (d, g) = run(&mut r, 1000 + i * 1000, &seg);
            delivered += d.len();
            gaps += g;
            assert!(r.held_bytes() <= MAX_HELD_BYTES);
        }
        assert_eq!(gaps, 1000);
        assert!(delivered > 0);
        // The late first segment is now old news.
        assert_eq!(run(&mut r, 0, &seg).0.len(), 0);
    }
}
