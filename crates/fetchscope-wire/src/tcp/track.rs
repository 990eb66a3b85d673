//! Per-connection TCP bookkeeping: relative sequence numbers, window scaling, and the
//! analysis of each segment by Wireshark's rules (its `tcp.analysis.*` flags; see
//! [`TcpAnalysis`] for each flag's conditions).
//!
//! The analysis follows what Wireshark keeps per direction: the next expected sequence
//! number (just past the highest one sent) and when it last moved, the acknowledgement
//! number, window and time of the direction's last segment, and its duplicate-ACK count.
//! Whether a segment below the next expected sequence number is *out of order* or *sent
//! again* depends on time: out of order when it arrives within the connection's initial
//! round trip (SYN to the ACK that completes the handshake; 3 ms when the handshake was
//! not seen) of the segment that carried the highest sequence number. Without packet
//! times ([`TcpTrack::track`] given `None`), a segment that fills a hole left earlier is
//! out of order, any other one below the next expected sequence number sent again.

use crate::seq::after;
use crate::tcp::header::TcpHeader;
use crate::tcp::{TcpAnalysis, TcpFlags, TcpSpace};

/// At most this many holes (ranges not yet seen) are remembered per direction.
const MAX_HOLES: usize = 32;
/// Shift counts above this are treated as 14 (RFC 7323 §2.3).
const MAX_WINDOW_SHIFT: u8 = 14;
/// The out-of-order threshold when the handshake's round trip is not known (µs), as
/// Wireshark's.
const OUT_OF_ORDER_DEFAULT_US: u64 = 3_000;
/// A copy of what the other side asked for in duplicate ACKs is a fast retransmission
/// only within this long of the other side's last segment (µs), as Wireshark's.
const FAST_RETRANSMISSION_US: u64 = 20_000;

/// What tracking says about one segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tracked {
    /// Relative sequence number.
    pub seq: u32,
    /// Relative acknowledgment number (0 without ACK).
    pub ack: u32,
    /// Window in bytes, when the scale is known.
    pub win_scaled: Option<u32>,
    /// SACK blocks made relative to the other direction's base.
    pub sack: Vec<[u32; 2]>,
    /// What the analysis noticed.
    pub analysis: Vec<TcpAnalysis>,
}

/// One direction (one sender) of a connection.
#[derive(Debug, Default, Clone)]
struct Half {
    /// Initial sequence number (SYN) or the first sequence number seen.
    base: Option<u32>,
    /// This side's SYN was seen.
    syn_seen: bool,
    /// The window scale this side's SYN announced (`None`: no option).
    syn_ws: Option<u8>,
    /// The MSS this side's SYN announced.
    syn_mss: Option<u16>,
    /// The highest acknowledgement number this side sent.
    highest_ack: Option<u32>,
    /// Just past the highest data byte this side sent (no SYN or FIN).
    data_end: Option<u32>,
    /// The window of this side's last segment, scaled (a SYN's as it stands).
    window: Option<u32>,
    /// Segments this side sent again (retransmissions of any kind).
    retransmissions: u32,
    /// The acknowledgement number of this side's last segment with ACK (not a SYN).
    last_ack: Option<u32>,

    // Wireshark's per-direction analysis state.
    /// The next expected sequence number: just past the highest sequence number this
    /// side has sent (payload, plus one for SYN or FIN).
    next_seq: Option<u32>,
    /// When `next_seq` last moved, µs (`None`: not known).
    next_seq_at: Option<u64>,
    /// Just past the data seen without a hole from the start ("max seq to be acked").
    contiguous_end: Option<u32>,
    /// Ranges below `next_seq` not seen yet, as [start, end) (for the analysis without
    /// packet times).
    holes: Vec<(u32, u32)>,
    /// The acknowledgement number field of this side's last segment (whatever its flags).
    seen_ack: Option<u32>,
    /// The window of this side's last segment as the analysis compares it: scaled once
    /// the scale is known.
    seen_win: Option<u32>,
    /// When this side's last segment was seen, µs.
    seen_at: Option<u64>,
    /// Duplicate ACKs this side sent in a row for `seen_ack` (-1: reset by an ACK of data
    /// the trace did not show, as Wireshark's count).
    dup_acks: i32,
    /// This side's last segment was a keep-alive (an ACK answering it is no duplicate).
    last_keep_alive: bool,
}

impl Half {
    /// Marks [start, end) as seen; true when it filled (part of) a hole.
    fn fill(&mut self, start: u32, end: u32) -> bool {
        let mut filled = false;
        let mut kept = Vec::with_capacity(self.holes.len());
        for &(hs, he) in &self.holes {
            if after(end, hs) && after(he, start) {
                filled = true;
                if after(start, hs) {
                    kept.push((hs, start));
                }
                if after(he, end) {
                    kept.push((end, he));
                }
            } else {
                kept.push((hs, he));
            }
        }
        kept.truncate(MAX_HOLES);
        self.holes = kept;
        filled
    }
}

/// The sequence-space view of one TCP connection; sides are 0 and 1 (sender index).
#[derive(Debug, Default, Clone)]
pub(crate) struct TcpTrack {
    halves: [Half; 2],
    /// When the most recent SYN (without ACK) was seen, µs.
    syn_at: Option<u64>,
    /// The initial round trip: from the most recent SYN to the first segment with ACK
    /// and without SYN after it, µs (never 0), as Wireshark's `tcp.analysis.initial_rtt`.
    first_rtt: Option<u64>,
}

/// Both halves, the one of `side` first.
fn halves_mut(halves: &mut [Half; 2], side: usize) -> (&mut Half, &mut Half) {
    let [a, b] = halves;
    if side == 0 { (a, b) } else { (b, a) }
}

impl TcpTrack {
    /// True when `side`'s SYN was seen (the stream starts at a known point).
    pub fn syn_seen(&self, side: usize) -> bool {
        self.halves.get(side).is_some_and(|h| h.syn_seen)
    }

    /// True when this SYN starts a new connection on the same ports (new ISN).
    pub fn is_new_connection(&self, side: usize, h: &TcpHeader<'_>) -> bool {
        h.flags.contains(TcpFlags::SYN)
            && !h.flags.contains(TcpFlags::ACK)
            && self
                .halves
                .get(side)
                .is_some_and(|half| half.syn_seen && half.base != Some(h.seq))
    }

    /// Relative numbers only, without learning anything (for packets the stack drops).
    pub fn peek(&self, side: usize, h: &TcpHeader<'_>) -> Tracked {
        let base = self.halves.get(side).and_then(|s| s.base);
        let other = self.halves.get(1 - side.min(1)).and_then(|s| s.base);
        Tracked {
            seq: base.map_or(h.seq, |b| h.seq.wrapping_sub(b)),
            ack: if h.flags.contains(TcpFlags::ACK) {
                other.map_or(h.ack, |b| h.ack.wrapping_sub(b))
            } else {
                0
            },
            win_scaled: None,
            sack: relative_sack(h, other),
            analysis: Vec::new(),
        }
    }

    /// As [`TcpTrack::peek`], with the window scaled as the connection's SYNs agreed and
    /// a side not heard from yet numbered from this segment (for a packet the stack never
    /// got: its numbers read as the trace's others do).
    pub fn peek_scaled(&self, side: usize, h: &TcpHeader<'_>) -> Tracked {
        let win_scaled = if h.flags.contains(TcpFlags::SYN) {
            None
        } else {
            self.window_scale(side.min(1))
                .map(|shift| u32::from(h.win) << shift)
        };
        let mut t = Tracked {
            win_scaled,
            ..self.peek(side, h)
        };
        // A side not heard from yet starts its numbering here (its SYN-ACK, say).
        let side = side.min(1);
        if self.halves[side].base.is_none() {
            t.seq = 0;
        }
        if h.flags.contains(TcpFlags::ACK) && self.halves[1 - side].base.is_none() {
            t.ack = 0;
        }
        t
    }

    /// Learns from one segment sent by `side`, seen at `at` µs (on any clock; only
    /// differences count; `None`: not known), and describes it.
    pub fn track(&mut self, side: usize, h: &TcpHeader<'_>, at: Option<u64>) -> Tracked {
        let side = side.min(1);
        let other = 1 - side;
        let syn = h.flags.contains(TcpFlags::SYN);
        let ackf = h.flags.contains(TcpFlags::ACK);

        if syn
            && let Some(me) = self.halves.get_mut(side)
            && !me.syn_seen
        {
            *me = Half {
                base: Some(h.seq),
                syn_seen: true,
                syn_ws: h.options.ws,
                syn_mss: h.options.mss,
                ..Half::default()
            };
        }
        let base = *self.halves[side].base.get_or_insert(h.seq);
        let other_base = if ackf {
            Some(*self.halves[other].base.get_or_insert(h.ack))
        } else {
            self.halves[other].base
        };

        let win_scaled =
            if syn { None } else { self.window_scale(side) }.map(|shift| u32::from(h.win) << shift);
        let win = win_scaled.unwrap_or(u32::from(h.win));
        let analysis = self.analyse(side, h, win, at);

        let me = &mut self.halves[side];
        me.window = Some(win);
        if ackf && me.highest_ack.is_none_or(|a| after(h.ack, a)) {
            me.highest_ack = Some(h.ack);
        }
        if ackf && !syn {
            me.last_ack = Some(h.ack);
        }
        let payload = u32::try_from(h.payload.len()).unwrap_or(u32::MAX);
        let data_end = h.seq.wrapping_add(payload);
        if payload > 0 && me.data_end.is_none_or(|e| after(data_end, e)) {
            me.data_end = Some(data_end);
        }
        if analysis.iter().any(|a| a.is_retransmission()) {
            me.retransmissions = me.retransmissions.saturating_add(1);
        }
        // The handshake's round trip, after the analysis (as Wireshark takes it).
        if syn && !ackf {
            self.syn_at = at;
        } else if ackf
            && !syn
            && self.first_rtt.is_none()
            && let Some(rtt) = at.zip(self.syn_at).and_then(|(now, s)| now.checked_sub(s))
            && rtt > 0
        {
            self.first_rtt = Some(rtt);
        }
        Tracked {
            seq: h.seq.wrapping_sub(base),
            ack: match (ackf, other_base) {
                (true, Some(b)) => h.ack.wrapping_sub(b),
                _ => 0,
            },
            win_scaled,
            sack: relative_sack(h, other_base),
            analysis,
        }
    }

    /// Wireshark's analysis of one segment from `side` with window `win` (scaled when
    /// known), seen at `at`; updates the per-direction state it keeps.
    fn analyse(
        &mut self,
        side: usize,
        h: &TcpHeader<'_>,
        win: u32,
        at: Option<u64>,
    ) -> Vec<TcpAnalysis> {
        let syn = h.flags.contains(TcpFlags::SYN);
        let fin = h.flags.contains(TcpFlags::FIN);
        let rst = h.flags.contains(TcpFlags::RST);
        let ackf = h.flags.contains(TcpFlags::ACK);
        let control = syn || fin || rst;
        let (seq, ack) = (h.seq, h.ack);
        let seglen = u32::try_from(h.payload.len()).unwrap_or(u32::MAX);
        let out_of_order_us = self.first_rtt.unwrap_or(OUT_OF_ORDER_DEFAULT_US);
        // Whether `at` is less than `limit` after `then`; `None` when a time is unknown.
        let within = |then: Option<u64>, limit: u64| -> Option<bool> {
            let (now, then) = (at?, then?);
            // A packet stamped before the reference one is not "within" (as Wireshark's
            // unsigned difference).
            Some(now.checked_sub(then).is_some_and(|d| d < limit))
        };
        let (me, peer) = halves_mut(&mut self.halves, side);
        let next = me.next_seq;

        let mut lost = false;
        let mut zero_window = false;
        let mut keep_alive = false;
        let mut window_update = false;
        let mut duplicate_ack = false;
        let zero_window_probe = seglen == 1 && next == Some(seq) && peer.seen_win == Some(0);
        if !zero_window_probe {
            zero_window = win == 0 && !control;
            lost = next.is_some_and(|n| after(seq, n)) && !rst;
            keep_alive = seglen <= 1 && next.is_some_and(|n| seq == n.wrapping_sub(1)) && !control;
            // A segment without data that repeats the last acknowledgement number at the
            // next expected sequence number: a window update when only the window
            // changed, else a duplicate ACK (unless it answers a keep-alive).
            let repeats = seglen == 0
                && win != 0
                && !control
                && next == Some(seq)
                && me.seen_ack == Some(ack);
            if repeats && me.seen_win != Some(win) {
                window_update = true;
            } else if repeats && !peer.last_keep_alive {
                duplicate_ack = true;
                me.dup_acks = if me.dup_acks == -1 {
                    1
                } else {
                    me.dup_acks + 1
                };
            }
        }
        if me.seen_ack != Some(ack) {
            me.dup_acks = 0;
        }
        // An acknowledgement of data the trace did not show from the peer.
        if ackf && peer.contiguous_end.is_some_and(|m| after(ack, m)) {
            let n = peer.next_seq.unwrap_or(0);
            if peer.contiguous_end.is_some_and(|m| m > n) {
                peer.contiguous_end = peer.next_seq;
            } else {
                peer.dup_acks = -1;
            }
        }

        let end = seq.wrapping_add(seglen);
        let next_after = seq.wrapping_add(h.seg_len());
        if lost
            && let Some(n) = next
            && seglen > 0
            && me.holes.len() < MAX_HOLES
        {
            me.holes.push((n, seq));
        }
        let below_next = next.is_some_and(|n| after(n, seq));
        let filled = seglen > 0 && below_next && me.fill(seq, end);

        // Data (or SYN, FIN) that does not advance the sequence number.
        let mut again = None;
        if (seglen > 0 || syn || fin) && !keep_alive {
            // Not sent again: new data just after a (zero window) probe's byte.
            let after_probe = seglen > 1 && next.is_some_and(|n| n.wrapping_sub(1) == seq);
            let not_advanced = below_next && !after_probe;
            let peer_ack = peer.seen_ack.filter(|&a| a != 0);
            if seglen > 0 && peer_ack.is_some_and(|a| !after(end, a)) {
                // Data the peer acknowledged already (a spurious retransmission).
                again = Some(TcpAnalysis::Retransmission);
            } else if not_advanced {
                let fast = peer.dup_acks >= 2
                    && peer.seen_ack == Some(seq)
                    && within(peer.seen_at, FAST_RETRANSMISSION_US).unwrap_or(true);
                let out_of_order = next != Some(next_after)
                    && within(me.next_seq_at, out_of_order_us).unwrap_or(filled);
                again = Some(if fast {
                    TcpAnalysis::FastRetransmission
                } else if out_of_order {
                    TcpAnalysis::OutOfOrder
                } else {
                    TcpAnalysis::Retransmission
                });
            }
        }

        // The next expected sequence number, and the end of what was seen without a hole.
        if !zero_window_probe {
            if next.is_none_or(|n| after(next_after, n)) {
                me.next_seq = Some(next_after);
                me.next_seq_at = at;
            }
            if me.contiguous_end.is_none_or(|m| m == seq) {
                me.contiguous_end = me.next_seq;
            }
        }
        me.seen_win = Some(win);
        me.seen_ack = Some(ack);
        me.seen_at = at;
        me.last_keep_alive = keep_alive;

        let mut analysis = Vec::new();
        if lost {
            analysis.push(TcpAnalysis::PreviousSegmentNotCaptured);
        }
        analysis.extend(again);
        if zero_window {
            analysis.push(TcpAnalysis::ZeroWindow);
        }
        if window_update {
            analysis.push(TcpAnalysis::WindowUpdate);
        }
        if duplicate_ack {
            analysis.push(TcpAnalysis::DuplicateAck);
        }
        analysis
    }

    /// The sequence space as side `ours` sees it.
    pub fn space(&self, ours: usize) -> TcpSpace {
        let ours = ours.min(1);
        let (me, peer) = (&self.halves[ours], &self.halves[1 - ours]);
        let iss = me.syn_seen.then_some(me.base).flatten();
        let irs = peer.syn_seen.then_some(peer.base).flatten();
        // SND.UNA: what the peer acknowledged, else where our sending started.
        let snd_una = match (peer.highest_ack, me.base) {
            (Some(a), Some(b)) if after(b, a) => Some(b),
            (Some(a), _) => Some(a),
            (None, b) => b,
        };
        TcpSpace {
            iss,
            irs,
            snd_nxt: me.next_seq,
            snd_una,
            // RFC 9293: on the peer's SYN, RCV.NXT = IRS + 1, until we acknowledge more.
            rcv_nxt: me.last_ack.or(irs.map(|i| i.wrapping_add(1))),
            snd_wnd: peer.window,
            rcv_wnd: me.window,
            our_ws: me.syn_ws,
            peer_ws: peer.syn_ws,
            our_mss: me.syn_mss,
            peer_mss: peer.syn_mss,
            retransmissions_tx: me.retransmissions,
            retransmissions_rx: peer.retransmissions,
            rx_data_end: peer.data_end,
        }
    }

    /// The shift applying to windows sent by `side`: known once both SYNs were seen
    /// (scaling is on only when both sent the option).
    fn window_scale(&self, side: usize) -> Option<u8> {
        let [a, b] = &self.halves;
        if !(a.syn_seen && b.syn_seen) {
            return None;
        }
        match (a.syn_ws, b.syn_ws) {
            (Some(_), Some(_)) => self
                .halves
                .get(side)
                .and_then(|h| h.syn_ws)
                .map(|s| s.min(MAX_WINDOW_SHIFT)),
            _ => Some(0),
        }
    }
}

fn relative_sack(h: &TcpHeader<'_>, base: Option<u32>) -> Vec<[u32; 2]> {
    h.options
        .sack
        .iter()
        .map(|&[l, r]| match base {
            Some(b) => [l.wrapping_sub(b), r.wrapping_sub(b)],
            None => [l, r],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::TcpOptions;

    fn seg(
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        win: u16,
        payload: &'static [u8],
    ) -> TcpHeader<'static> {
        TcpHeader {
            src_port: 1,
            dst_port: 2,
            seq,
            ack,
            flags,
            win,
            options: TcpOptions::default(),
            payload,
        }
    }

    /// The handshake of [`handshake`], SYN at `syn_at` µs and the ACK completing it at
    /// `ack_at`.
    fn handshake_at(t: &mut TcpTrack, syn_at: u64, ack_at: u64) {
        let mut syn = seg(1000, 0, TcpFlags::SYN, 65535, b"");
        syn.options.ws = Some(0);
        t.track(0, &syn, Some(syn_at));
        let mut synack = seg(5000, 1001, TcpFlags::SYN | TcpFlags::ACK, 64240, b"");
        synack.options.ws = Some(7);
        t.track(1, &synack, Some((syn_at + ack_at) / 2));
        t.track(0, &seg(1001, 5001, TcpFlags::ACK, 65535, b""), Some(ack_at));
        assert_eq!(t.first_rtt, Some(ack_at - syn_at));
    }

    fn handshake(t: &mut TcpTrack) {
        let mut syn = seg(1000, 0, TcpFlags::SYN, 65535, b"");
        syn.options.ws = Some(0);
        assert_eq!(t.track(0, &syn, None).seq, 0);
        let mut synack = seg(5000, 1001, TcpFlags::SYN | TcpFlags::ACK, 64240, b"");
        synack.options.ws = Some(7);
        let tr = t.track(1, &synack, None);
        assert_eq!((tr.seq, tr.ack, tr.win_scaled), (0, 1, None));
        let tr = t.track(0, &seg(1001, 5001, TcpFlags::ACK, 65535, b""), None);
        assert_eq!((tr.seq, tr.ack, tr.win_scaled), (1, 1, Some(65535)));
    }

    #[test]
    fn relative_numbers_and_scaling() {
        let mut t = TcpTrack::default();
        handshake(&mut t);
        let tr = t.track(1, &seg(5001, 1001, TcpFlags::ACK, 500, b"abc"), None);
        assert_eq!((tr.seq, tr.win_scaled), (1, Some(500 << 7)));
        assert!(tr.analysis.is_empty());
    }

    #[test]
    fn retransmission_out_of_order_and_gaps() {
        let mut t = TcpTrack::default();
        handshake(&mut t);
        let a = t.track(1, &seg(5001, 1001, TcpFlags::ACK, 500, b"aaaa"), None);
        assert!(a.analysis.is_empty());
        let c = t.track(1, &seg(5009, 1001, TcpFlags::ACK, 500, b"cccc"), None);
        assert_eq!(c.analysis, vec![TcpAnalysis::PreviousSegmentNotCaptured]);
        let b = t.track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"), None);
        assert_eq!(b.analysis, vec![TcpAnalysis::OutOfOrder]);
        let again = t.track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"), None);
        assert_eq!(again.analysis, vec![TcpAnalysis::Retransmission]);
        let syn_again = t.track(0, &seg(1000, 0, TcpFlags::SYN, 65535, b""), None);
        assert_eq!(syn_again.analysis, vec![TcpAnalysis::Retransmission]);
    }

    #[test]
    fn acks_windows() {
        let mut t = TcpTrack::default();
        handshake(&mut t);
        t.track(1, &seg(5001, 1001, TcpFlags::ACK, 500, b"aaaa"), None);
        t.track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"), None);
        let first = t.track(0, &seg(1001, 5005, TcpFlags::ACK, 1000, b""), None);
        assert!(first.analysis.is_empty());
        let dup = t.track(0, &seg(1001, 5005, TcpFlags::ACK, 1000, b""), None);
        assert_eq!(dup.analysis, vec![TcpAnalysis::DuplicateAck]);
        let upd = t.track(0, &seg(1001, 5005, TcpFlags::ACK, 2000, b""), None);
        assert_eq!(upd.analysis, vec![TcpAnalysis::WindowUpdate]);
        let zero = t.track(0, &seg(1001, 5009, TcpFlags::ACK, 0, b""), None);
        assert_eq!(zero.analysis, vec![TcpAnalysis::ZeroWindow]);
        let reopened = t.track(0, &seg(1001, 5009, TcpFlags::ACK, 1000, b""), None);
        assert_eq!(reopened.analysis, vec![TcpAnalysis::WindowUpdate]);
        // Everything acknowledged: a repeated ACK is a duplicate ACK all the same, as
        // Wireshark counts them (same acknowledgement, window and sequence number).
        let same = t.track(0, &seg(1001, 5009, TcpFlags::ACK, 1000, b""), None);
        assert_eq!(same.analysis, vec![TcpAnalysis::DuplicateAck]);
        // Not at the next expected sequence number: no duplicate.
        let off = t.track(0, &seg(1000, 5009, TcpFlags::ACK, 1000, b""), None);
        assert!(off.analysis.is_empty(), "{:?}", off.analysis);
    }

    #[test]
    fn fast_retransmission_after_duplicate_acks() {
        let mut t = TcpTrack::default();
        handshake_at(&mut t, 0, 10_000);
        let at = Some;
        t.track(1, &seg(5001, 1001, TcpFlags::ACK, 500, b"aaaa"), at(20_000));
        // 5005 is lost; what follows makes the client ask for 5005 again and again.
        t.track(1, &seg(5009, 1001, TcpFlags::ACK, 500, b"cccc"), at(20_100));
        t.track(0, &seg(1001, 5005, TcpFlags::ACK, 1000, b""), at(30_000));
        t.track(1, &seg(5013, 1001, TcpFlags::ACK, 500, b"dddd"), at(30_100));
        let d1 = t.track(0, &seg(1001, 5005, TcpFlags::ACK, 1000, b""), at(40_000));
        assert_eq!(d1.analysis, vec![TcpAnalysis::DuplicateAck]);
        // One duplicate ACK is not enough: long after the highest segment, sent again.
        let early = t
            .clone()
            .track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"), at(45_000));
        assert_eq!(early.analysis, vec![TcpAnalysis::Retransmission]);
        let d2 = t.track(0, &seg(1001, 5005, TcpFlags::ACK, 1000, b""), at(50_000));
        assert_eq!(d2.analysis, vec![TcpAnalysis::DuplicateAck]);
        // Within 20 ms of the second duplicate ACK: fast.
        let fast = t
            .clone()
            .track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"), at(69_999));
        assert_eq!(fast.analysis, vec![TcpAnalysis::FastRetransmission]);
        // Later (after a timeout): a plain retransmission.
        let late = t.track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"), at(70_000));
        assert_eq!(late.analysis, vec![TcpAnalysis::Retransmission]);
        assert_eq!(t.space(0).retransmissions_rx, 1);
    }

    #[test]
    fn without_times_duplicate_acks_still_make_a_fast_retransmission() {
        let mut t = TcpTrack::default();
        handshake(&mut t);
        t.track(1, &seg(5001, 1001, TcpFlags::ACK, 500, b"aaaa"), None);
        t.track(1, &seg(5009, 1001, TcpFlags::ACK, 500, b"cccc"), None);
        t.track(0, &seg(1001, 5005, TcpFlags::ACK, 1000, b""), None);
        t.track(1, &seg(5013, 1001, TcpFlags::ACK, 500, b"dddd"), None);
        t.track(0, &seg(1001, 5005, TcpFlags::ACK, 1000, b""), None);
        // One duplicate ACK: the copy fills the hole, out of order.
        let early = t
            .clone()
            .track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"), None);
        assert_eq!(early.analysis, vec![TcpAnalysis::OutOfOrder]);
        t.track(0, &seg(1001, 5005, TcpFlags::ACK, 1000, b""), None);
        let fast = t.track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"), None);
        assert_eq!(fast.analysis, vec![TcpAnalysis::FastRetransmission]);
    }

    #[test]
    fn out_of_order_or_sent_again_by_the_initial_round_trip() {
        let mut t = TcpTrack::default();
        // SYN at 0, the ACK completing the handshake 10 ms later: the threshold.
        handshake_at(&mut t, 0, 10_000);
        let at = Some;
        t.track(1, &seg(5001, 1001, TcpFlags::ACK, 500, b"aaaa"), at(20_000));
        let c = t.track(1, &seg(5009, 1001, TcpFlags::ACK, 500, b"cccc"), at(20_100));
        assert_eq!(c.analysis, vec![TcpAnalysis::PreviousSegmentNotCaptured]);
        // Within 10 ms of the segment that carried the highest sequence number.
        let soon = t
            .clone()
            .track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"), at(30_099));
        assert_eq!(soon.analysis, vec![TcpAnalysis::OutOfOrder]);
        // 10 ms or more: sent again, though it fills the hole.
        let late = t
            .clone()
            .track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"), at(30_100));
        assert_eq!(late.analysis, vec![TcpAnalysis::Retransmission]);
        // A copy that ends at the next expected sequence number is sent again, however soon.
        let copy = t
            .clone()
            .track(1, &seg(5009, 1001, TcpFlags::ACK, 500, b"cccc"), at(20_200));
        assert_eq!(copy.analysis, vec![TcpAnalysis::Retransmission]);
        // Data the client acknowledged already: sent again (Wireshark's spurious
        // retransmission), however soon.
        t.track(0, &seg(1001, 5005, TcpFlags::ACK, 1000, b""), at(20_300));
        let acked = t.track(1, &seg(5001, 1001, TcpFlags::ACK, 500, b"aaaa"), at(20_400));
        assert_eq!(acked.analysis, vec![TcpAnalysis::Retransmission]);
    }

    #[test]
    fn without_the_handshake_the_threshold_is_three_milliseconds() {
        let mut t = TcpTrack::default();
        let at = Some;
        t.track(1, &seg(5001, 1001, TcpFlags::ACK, 500, b"aaaa"), at(0));
        t.track(1, &seg(5009, 1001, TcpFlags::ACK, 500, b"cccc"), at(100));
        let soon = t
            .clone()
            .track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"), at(3_099));
        assert_eq!(soon.analysis, vec![TcpAnalysis::OutOfOrder]);
        let late = t.track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"), at(3_100));
        assert_eq!(late.analysis, vec![TcpAnalysis::Retransmission]);
    }

    #[test]
    fn the_initial_round_trip_runs_from_the_last_syn() {
        let mut t = TcpTrack::default();
        t.track(0, &seg(1000, 0, TcpFlags::SYN, 65535, b""), Some(0));
        // The SYN sent again: the round trip counts from this one.
        t.track(0, &seg(1000, 0, TcpFlags::SYN, 65535, b""), Some(1_000_000));
        let sa = seg(5000, 1001, TcpFlags::SYN | TcpFlags::ACK, 64240, b"");
        t.track(1, &sa, Some(1_001_000));
        assert_eq!(t.first_rtt, None);
        t.track(
            0,
            &seg(1001, 5001, TcpFlags::ACK, 65535, b""),
            Some(1_002_000),
        );
        assert_eq!(t.first_rtt, Some(2_000));
        // Only the first ACK counts.
        t.track(
            0,
            &seg(1001, 5001, TcpFlags::ACK, 65535, b"x"),
            Some(1_900_000),
        );
        assert_eq!(t.first_rtt, Some(2_000));
    }

    #[test]
    fn keep_alives_are_not_sent_again_nor_their_answers_duplicates() {
        let mut t = TcpTrack::default();
        handshake(&mut t);
        t.track(1, &seg(5001, 1001, TcpFlags::ACK, 500, b"aaaa"), Some(0));
        t.track(0, &seg(1001, 5005, TcpFlags::ACK, 1000, b""), Some(100));
        // One byte before the next expected sequence number, long after.
        let probe = t.track(
            1,
            &seg(5004, 1001, TcpFlags::ACK, 500, b"a"),
            Some(60_000_000),
        );
        assert!(probe.analysis.is_empty(), "{:?}", probe.analysis);
        let answer = t.track(
            0,
            &seg(1001, 5005, TcpFlags::ACK, 1000, b""),
            Some(60_000_100),
        );
        assert!(answer.analysis.is_empty(), "{:?}", answer.analysis);
        // Nor is another answer to the same keep-alive; once the peer sent something
        // else, a repeat is a duplicate again.
        let twice = t.track(
            0,
            &seg(1001, 5005, TcpFlags::ACK, 1000, b""),
            Some(60_000_200),
        );
        assert!(twice.analysis.is_empty(), "{:?}", twice.analysis);
        t.track(
            1,
            &seg(5005, 1001, TcpFlags::ACK, 500, b""),
            Some(60_000_300),
        );
        let dup = t.track(
            0,
            &seg(1001, 5005, TcpFlags::ACK, 1000, b""),
            Some(60_000_400),
        );
        assert_eq!(dup.analysis, vec![TcpAnalysis::DuplicateAck]);
    }

    #[test]
    fn without_syn_numbers_start_at_zero() {
        let mut t = TcpTrack::default();
        let tr = t.track(1, &seg(777, 333, TcpFlags::ACK, 10, b"x"), None);
        assert_eq!((tr.seq, tr.ack, tr.win_scaled), (0, 0, None));
        let tr = t.track(0, &seg(333, 778, TcpFlags::ACK, 10, b""), None);
        assert_eq!((tr.seq, tr.ack), (0, 1));
        assert!(!t.syn_seen(0));
        let mut other = seg(9, 0, TcpFlags::SYN, 10, b"");
        assert!(!t.is_new_connection(0, &other));
        t.track(0, &other, None);
        other.seq = 10;
        assert!(t.is_new_connection(0, &other));
        assert_eq!(t.peek(0, &other).seq, 1);
    }

    #[test]
    fn the_sequence_space_follows_a_handshake_and_data() {
        let mut t = TcpTrack::default();
        let mut syn = seg(1000, 0, TcpFlags::SYN, 65535, b"");
        syn.options.mss = Some(1460);
        t.track(0, &syn, None);
        let s = t.space(0);
        assert_eq!(
            (s.snd_nxt, s.snd_una, s.in_flight()),
            (Some(1001), Some(1000), 1)
        );
        assert_eq!((s.iss, s.irs, s.our_mss), (Some(1000), None, Some(1460)));
        let mut synack = seg(5000, 1001, TcpFlags::SYN | TcpFlags::ACK, 64240, b"");
        synack.options.mss = Some(1400);
        t.track(1, &synack, None);
        let s = t.space(0);
        assert_eq!(
            (s.irs, s.snd_una, s.in_flight()),
            (Some(5000), Some(1001), 0)
        );
        assert_eq!(
            (s.rcv_nxt, s.peer_mss, s.snd_wnd),
            (Some(5001), Some(1400), Some(64240))
        );
        t.track(
            0,
            &seg(1001, 5001, TcpFlags::ACK | TcpFlags::PSH, 65535, &[7; 100]),
            None,
        );
        let s = t.space(0);
        assert_eq!(s.in_flight(), 100);
        assert_eq!(s.rel_local(s.snd_nxt), Some(101));
        assert_eq!(s.rel_remote(s.rcv_nxt), Some(1));
        t.track(1, &seg(5001, 1101, TcpFlags::ACK, 64000, b""), None);
        let s = t.space(0);
        assert_eq!((s.in_flight(), s.snd_wnd), (0, Some(64000)));
        // The peer's view is the mirror image.
        let p = t.space(1);
        assert_eq!(
            (p.iss, p.irs, p.snd_una, p.rcv_nxt),
            (Some(5000), Some(1000), Some(5001), Some(1101))
        );
    }

    #[test]
    fn held_bytes_and_retransmissions_are_counted_per_side() {
        let mut t = TcpTrack::default();
        handshake(&mut t);
        t.track(1, &seg(5001, 1001, TcpFlags::ACK, 500, b"aaaa"), None);
        t.track(0, &seg(1001, 5005, TcpFlags::ACK, 65535, b""), None);
        // A hole: 5005..5009 is missing, 5009..5013 arrives and waits.
        t.track(1, &seg(5009, 1001, TcpFlags::ACK, 500, b"cccc"), None);
        t.track(0, &seg(1001, 5005, TcpFlags::ACK, 65535, b""), None);
        assert_eq!(t.space(0).held_out_of_order(), 8);
        t.track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"), None);
        t.track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"), None);
        t.track(0, &seg(1001, 5013, TcpFlags::ACK, 65535, b""), None);
        let s = t.space(0);
        assert_eq!(s.held_out_of_order(), 0);
        // The out-of-order fill is not a retransmission; the second copy is.
        assert_eq!((s.retransmissions_rx, s.retransmissions_tx), (1, 0));
    }

    #[test]
    fn the_space_wraps_and_an_old_ack_does_not_move_snd_una_back() {
        let mut t = TcpTrack::default();
        t.track(0, &seg(u32::MAX, 0, TcpFlags::SYN, 1, b""), None);
        assert_eq!((t.space(0).snd_nxt, t.space(0).in_flight()), (Some(0), 1));
        t.track(1, &seg(7, 0, TcpFlags::SYN | TcpFlags::ACK, 1, b""), None);
        t.track(1, &seg(8, u32::MAX - 5, TcpFlags::ACK, 1, b""), None);
        assert_eq!(t.space(0).snd_una, Some(0));
    }
}
