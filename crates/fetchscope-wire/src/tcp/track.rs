//! Per-connection TCP bookkeeping: relative sequence numbers, window scaling and a small,
//! Wireshark-like analysis (retransmission, out-of-order, duplicate ACK, zero window,
//! window update).

use crate::seq::{after, diff};
use crate::tcp::header::TcpHeader;
use crate::tcp::{TcpAnalysis, TcpFlags, TcpSpace};

/// At most this many holes (ranges not yet seen) are remembered per direction.
const MAX_HOLES: usize = 32;
/// Shift counts above this are treated as 14 (RFC 7323 §2.3).
const MAX_WINDOW_SHIFT: u8 = 14;

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
    /// One past the highest sequence number this side has sent.
    next_seq: Option<u32>,
    /// Ranges below `next_seq` not seen yet, as [start, end).
    holes: Vec<(u32, u32)>,
    /// Last acknowledgment number and window this side sent.
    last_ack: Option<u32>,
    last_win: Option<u16>,
    /// Duplicate ACKs this side sent in a row for `last_ack`.
    dup_acks: u32,
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

    /// Learns from one segment sent by `side` and describes it.
    pub fn track(&mut self, side: usize, h: &TcpHeader<'_>) -> Tracked {
        let side = side.min(1);
        let other = 1 - side;
        let syn = h.flags.contains(TcpFlags::SYN);
        let fin = h.flags.contains(TcpFlags::FIN);
        let rst = h.flags.contains(TcpFlags::RST);
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

        let mut analysis = Vec::new();
        let seg_len = h.seg_len();
        let end = h.seq.wrapping_add(seg_len);
        // What the other side asked for in duplicate ACKs, for fast retransmissions.
        let asked = (self.halves[other].last_ack, self.halves[other].dup_acks);
        let mut answered = false;
        let me = &mut self.halves[side];
        let expected = me.next_seq;
        if seg_len > 0 {
            match expected {
                None => me.next_seq = Some(end),
                Some(next) => {
                    let d = diff(h.seq, next);
                    if d > 0 {
                        analysis.push(TcpAnalysis::PreviousSegmentNotCaptured);
                        if me.holes.len() < MAX_HOLES {
                            me.holes.push((next, h.seq));
                        }
                        me.next_seq = Some(end);
                    } else if d == 0 {
                        me.next_seq = Some(end);
                    } else {
                        let filled = me.fill(h.seq, end);
                        // Like Wireshark's tcp.analysis.fast_retransmission: the segment the
                        // other side asked for in two or more duplicate ACKs.
                        let fast = asked.0 == Some(h.seq) && asked.1 >= 2;
                        answered = fast;
                        analysis.push(if fast {
                            TcpAnalysis::FastRetransmission
                        } else if filled {
                            TcpAnalysis::OutOfOrder
                        } else {
                            TcpAnalysis::Retransmission
                        });
                        if after(end, next) {
                            me.next_seq = Some(end);
                        }
                    }
                }
            }
        }

        let control = syn || fin || rst;
        if h.win == 0 && !control {
            analysis.push(TcpAnalysis::ZeroWindow);
        }
        if seg_len == 0
            && ackf
            && !control
            && h.win != 0
            && let (Some(last_ack), Some(last_win)) = (me.last_ack, me.last_win)
        {
            let same_ack = h.ack == last_ack;
            let at_next = expected.is_none_or(|n| n == h.seq);
            if same_ack && h.win != last_win && at_next {
                analysis.push(TcpAnalysis::WindowUpdate);
            } else if same_ack && h.win == last_win {
                let outstanding = self.halves[other].next_seq.is_some_and(|n| after(n, h.ack));
                if outstanding {
                    analysis.push(TcpAnalysis::DuplicateAck);
                }
            }
        }
        if answered {
            // A later copy needs new duplicate ACKs to count as fast.
            self.halves[other].dup_acks = 0;
        }
        let me = &mut self.halves[side];
        if analysis.contains(&TcpAnalysis::DuplicateAck) {
            me.dup_acks = me.dup_acks.saturating_add(1);
        } else if ackf && me.last_ack != Some(h.ack) {
            me.dup_acks = 0;
        }
        if !syn {
            me.last_win = Some(h.win);
            if ackf {
                me.last_ack = Some(h.ack);
            }
        }

        let win_scaled =
            if syn { None } else { self.window_scale(side) }.map(|shift| u32::from(h.win) << shift);
        let me = &mut self.halves[side];
        me.window = Some(win_scaled.unwrap_or(u32::from(h.win)));
        if ackf && me.highest_ack.is_none_or(|a| after(h.ack, a)) {
            me.highest_ack = Some(h.ack);
        }
        let payload = u32::try_from(h.payload.len()).unwrap_or(u32::MAX);
        let data_end = h.seq.wrapping_add(payload);
        if payload > 0 && me.data_end.is_none_or(|e| after(data_end, e)) {
            me.data_end = Some(data_end);
        }
        if analysis.iter().any(|a| a.is_retransmission()) {
            me.retransmissions = me.retransmissions.saturating_add(1);
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

    fn handshake(t: &mut TcpTrack) {
        let mut syn = seg(1000, 0, TcpFlags::SYN, 65535, b"");
        syn.options.ws = Some(0);
        assert_eq!(t.track(0, &syn).seq, 0);
        let mut synack = seg(5000, 1001, TcpFlags::SYN | TcpFlags::ACK, 64240, b"");
        synack.options.ws = Some(7);
        let tr = t.track(1, &synack);
        assert_eq!((tr.seq, tr.ack, tr.win_scaled), (0, 1, None));
        let tr = t.track(0, &seg(1001, 5001, TcpFlags::ACK, 65535, b""));
        assert_eq!((tr.seq, tr.ack, tr.win_scaled), (1, 1, Some(65535)));
    }

    #[test]
    fn relative_numbers_and_scaling() {
        let mut t = TcpTrack::default();
        handshake(&mut t);
        let tr = t.track(1, &seg(5001, 1001, TcpFlags::ACK, 500, b"abc"));
        assert_eq!((tr.seq, tr.win_scaled), (1, Some(500 << 7)));
        assert!(tr.analysis.is_empty());
    }

    #[test]
    fn retransmission_out_of_order_and_gaps() {
        let mut t = TcpTrack::default();
        handshake(&mut t);
        let a = t.track(1, &seg(5001, 1001, TcpFlags::ACK, 500, b"aaaa"));
        assert!(a.analysis.is_empty());
        let c = t.track(1, &seg(5009, 1001, TcpFlags::ACK, 500, b"cccc"));
        assert_eq!(c.analysis, vec![TcpAnalysis::PreviousSegmentNotCaptured]);
        let b = t.track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"));
        assert_eq!(b.analysis, vec![TcpAnalysis::OutOfOrder]);
        let again = t.track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"));
        assert_eq!(again.analysis, vec![TcpAnalysis::Retransmission]);
        let syn_again = t.track(0, &seg(1000, 0, TcpFlags::SYN, 65535, b""));
        assert_eq!(syn_again.analysis, vec![TcpAnalysis::Retransmission]);
    }

    #[test]
    fn acks_windows() {
        let mut t = TcpTrack::default();
        handshake(&mut t);
        t.track(1, &seg(5001, 1001, TcpFlags::ACK, 500, b"aaaa"));
        t.track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"));
        let first = t.track(0, &seg(1001, 5005, TcpFlags::ACK, 1000, b""));
        assert!(first.analysis.is_empty());
        let dup = t.track(0, &seg(1001, 5005, TcpFlags::ACK, 1000, b""));
        assert_eq!(dup.analysis, vec![TcpAnalysis::DuplicateAck]);
        let upd = t.track(0, &seg(1001, 5005, TcpFlags::ACK, 2000, b""));
        assert_eq!(upd.analysis, vec![TcpAnalysis::WindowUpdate]);
        let zero = t.track(0, &seg(1001, 5009, TcpFlags::ACK, 0, b""));
        assert_eq!(zero.analysis, vec![TcpAnalysis::ZeroWindow]);
        // Everything acknowledged: a repeated ACK is not a duplicate ACK.
        t.track(0, &seg(1001, 5009, TcpFlags::ACK, 1000, b""));
        let same = t.track(0, &seg(1001, 5009, TcpFlags::ACK, 1000, b""));
        assert!(same.analysis.is_empty());
    }

    #[test]
    fn fast_retransmission_after_duplicate_acks() {
        let mut t = TcpTrack::default();
        handshake(&mut t);
        t.track(1, &seg(5001, 1001, TcpFlags::ACK, 500, b"aaaa"));
        // 5005 is lost; what follows makes the client ask for 5005 again and again.
        t.track(1, &seg(5009, 1001, TcpFlags::ACK, 500, b"cccc"));
        t.track(0, &seg(1001, 5005, TcpFlags::ACK, 1000, b""));
        t.track(1, &seg(5013, 1001, TcpFlags::ACK, 500, b"dddd"));
        let d1 = t.track(0, &seg(1001, 5005, TcpFlags::ACK, 1000, b""));
        assert_eq!(d1.analysis, vec![TcpAnalysis::DuplicateAck]);
        // one duplicate ACK is not enough
        let early = t
            .clone()
            .track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"));
        assert_eq!(early.analysis, vec![TcpAnalysis::OutOfOrder]);
        let d2 = t.track(0, &seg(1001, 5005, TcpFlags::ACK, 1000, b""));
        assert_eq!(d2.analysis, vec![TcpAnalysis::DuplicateAck]);
        let fast = t.track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"));
        assert_eq!(fast.analysis, vec![TcpAnalysis::FastRetransmission]);
        // sent yet again later (after a timeout): a plain retransmission
        let again = t.track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"));
        assert_eq!(again.analysis, vec![TcpAnalysis::Retransmission]);
    }

    #[test]
    fn without_syn_numbers_start_at_zero() {
        let mut t = TcpTrack::default();
        let tr = t.track(1, &seg(777, 333, TcpFlags::ACK, 10, b"x"));
        assert_eq!((tr.seq, tr.ack, tr.win_scaled), (0, 0, None));
        let tr = t.track(0, &seg(333, 778, TcpFlags::ACK, 10, b""));
        assert_eq!((tr.seq, tr.ack), (0, 1));
        assert!(!t.syn_seen(0));
        let mut other = seg(9, 0, TcpFlags::SYN, 10, b"");
        assert!(!t.is_new_connection(0, &other));
        t.track(0, &other);
        other.seq = 10;
        assert!(t.is_new_connection(0, &other));
        assert_eq!(t.peek(0, &other).seq, 1);
    }

    #[test]
    fn the_sequence_space_follows_a_handshake_and_data() {
        let mut t = TcpTrack::default();
        let mut syn = seg(1000, 0, TcpFlags::SYN, 65535, b"");
        syn.options.mss = Some(1460);
        t.track(0, &syn);
        let s = t.space(0);
        assert_eq!(
            (s.snd_nxt, s.snd_una, s.in_flight()),
            (Some(1001), Some(1000), 1)
        );
        assert_eq!((s.iss, s.irs, s.our_mss), (Some(1000), None, Some(1460)));
        let mut synack = seg(5000, 1001, TcpFlags::SYN | TcpFlags::ACK, 64240, b"");
        synack.options.mss = Some(1400);
        t.track(1, &synack);
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
        );
        let s = t.space(0);
        assert_eq!(s.in_flight(), 100);
        assert_eq!(s.rel_local(s.snd_nxt), Some(101));
        assert_eq!(s.rel_remote(s.rcv_nxt), Some(1));
        t.track(1, &seg(5001, 1101, TcpFlags::ACK, 64000, b""));
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
        t.track(1, &seg(5001, 1001, TcpFlags::ACK, 500, b"aaaa"));
        t.track(0, &seg(1001, 5005, TcpFlags::ACK, 65535, b""));
        // A hole: 5005..5009 is missing, 5009..5013 arrives and waits.
        t.track(1, &seg(5009, 1001, TcpFlags::ACK, 500, b"cccc"));
        t.track(0, &seg(1001, 5005, TcpFlags::ACK, 65535, b""));
        assert_eq!(t.space(0).held_out_of_order(), 8);
        t.track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"));
        t.track(1, &seg(5005, 1001, TcpFlags::ACK, 500, b"bbbb"));
        t.track(0, &seg(1001, 5013, TcpFlags::ACK, 65535, b""));
        let s = t.space(0);
        assert_eq!(s.held_out_of_order(), 0);
        // The out-of-order fill is not a retransmission; the second copy is.
        assert_eq!((s.retransmissions_rx, s.retransmissions_tx), (1, 0));
    }

    #[test]
    fn the_space_wraps_and_an_old_ack_does_not_move_snd_una_back() {
        let mut t = TcpTrack::default();
        t.track(0, &seg(u32::MAX, 0, TcpFlags::SYN, 1, b""));
        assert_eq!((t.space(0).snd_nxt, t.space(0).in_flight()), (Some(0), 1));
        t.track(1, &seg(7, 0, TcpFlags::SYN | TcpFlags::ACK, 1, b""));
        t.track(1, &seg(8, u32::MAX - 5, TcpFlags::ACK, 1, b""));
        assert_eq!(t.space(0).snd_una, Some(0));
    }
}
