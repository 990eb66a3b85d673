//! [`TcpTrack`]: the connection's sequence-space variables, derived from the packets.
//!
//! smoltcp exposes a socket's state, endpoints and queue sizes, but not SND.UNA, SND.NXT,
//! RCV.NXT or the windows (see the notes on smoltcp). They follow from the segments the
//! stack sent and received, which fetchscope records anyway: this is what it derives.

use fetchscope_net::Direction;
use fetchscope_wire::{TcpFlags, TcpLayer};
use serde::Serialize;

/// What the packets of one connection say about its sequence space.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TcpTrack {
    /// Our initial sequence number (from our SYN).
    pub iss: Option<u32>,
    /// The peer's initial sequence number (from its SYN-ACK).
    pub irs: Option<u32>,
    /// SND.NXT: just past the last byte (or SYN/FIN) we sent, absolute.
    pub snd_nxt: Option<u32>,
    /// SND.UNA: the oldest byte we sent that the peer has not acknowledged, absolute.
    pub snd_una: Option<u32>,
    /// RCV.NXT: the next byte we expect, i.e. the acknowledgement number we last sent.
    pub rcv_nxt: Option<u32>,
    /// The peer's receive window as it last advertised it, scaled.
    pub snd_wnd: Option<u32>,
    /// Our receive window as we last advertised it, scaled.
    pub rcv_wnd: Option<u32>,
    /// Window scale shift we announced.
    pub our_ws: Option<u8>,
    /// Window scale shift the peer announced.
    pub peer_ws: Option<u8>,
    /// MSS we announced.
    pub our_mss: Option<u16>,
    /// MSS the peer announced.
    pub peer_mss: Option<u16>,
    /// Segments we sent that repeat data already sent.
    pub retransmissions_tx: u32,
    /// Segments the peer sent again.
    pub retransmissions_rx: u32,
    /// Just past the highest byte of data received, in order or not (raw).
    pub rx_data_end: Option<u32>,
}

/// True when `a` is after `b` in sequence space (RFC 1982 arithmetic).
fn after(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

impl TcpTrack {
    /// Takes in one segment of the connection.
    pub fn segment(&mut self, dir: Direction, t: &TcpLayer) {
        let syn = t.flags.contains(TcpFlags::SYN);
        let fin = t.flags.contains(TcpFlags::FIN);
        let ack = t.flags.contains(TcpFlags::ACK);
        let len = u32::try_from(t.payload_len).unwrap_or(u32::MAX);
        let end = t
            .seq_raw
            .wrapping_add(len)
            .wrapping_add(u32::from(syn) + u32::from(fin));
        let retransmission = t.analysis.iter().any(|a| a.is_retransmission());
        match dir {
            Direction::Tx => {
                if syn {
                    self.iss = Some(t.seq_raw);
                    if let Some(o) = &t.options {
                        self.our_ws = o.ws.or(self.our_ws);
                        self.our_mss = o.mss.or(self.our_mss);
                    }
                }
                if self.snd_nxt.is_none_or(|n| after(end, n)) {
                    self.snd_nxt = Some(end);
                }
                if self.snd_una.is_none() {
                    self.snd_una = Some(t.seq_raw);
                }
                if ack {
                    self.rcv_nxt = Some(t.ack_raw);
                }
                self.rcv_wnd = Some(t.win_scaled.unwrap_or(u32::from(t.win)));
                if retransmission {
                    self.retransmissions_tx += 1;
                }
            }
            Direction::Rx => {
                if syn {
                    self.irs = Some(t.seq_raw);
                    // RFC 9293: on the peer's SYN, RCV.NXT = IRS + 1.
                    self.rcv_nxt.get_or_insert(t.seq_raw.wrapping_add(1));
                    if let Some(o) = &t.options {
                        self.peer_ws = o.ws.or(self.peer_ws);
                        self.peer_mss = o.mss.or(self.peer_mss);
                    }
                }
                if ack && self.snd_una.is_none_or(|u| after(t.ack_raw, u)) {
                    self.snd_una = Some(t.ack_raw);
                }
                self.snd_wnd = Some(t.win_scaled.unwrap_or(u32::from(t.win)));
                if retransmission {
                    self.retransmissions_rx += 1;
                }
                let data_end = t.seq_raw.wrapping_add(len);
                if len > 0 && self.rx_data_end.is_none_or(|e| after(data_end, e)) {
                    self.rx_data_end = Some(data_end);
                }
            }
        }
    }

    /// Bytes received beyond what was acknowledged: held out of order behind a hole.
    pub fn held_out_of_order(&self) -> u32 {
        match (self.rx_data_end, self.rcv_nxt) {
            (Some(e), Some(n)) if after(e, n) => e.wrapping_sub(n),
            _ => 0,
        }
    }

    /// Bytes sent and not yet acknowledged (SYN and FIN count one each).
    pub fn in_flight(&self) -> u32 {
        match (self.snd_nxt, self.snd_una) {
            (Some(n), Some(u)) if !after(u, n) => n.wrapping_sub(u),
            _ => 0,
        }
    }

    /// `value` relative to our initial sequence number.
    pub fn rel_local(&self, value: Option<u32>) -> Option<u32> {
        Some(value?.wrapping_sub(self.iss?))
    }

    /// `value` relative to the peer's initial sequence number.
    pub fn rel_remote(&self, value: Option<u32>) -> Option<u32> {
        Some(value?.wrapping_sub(self.irs?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(flags: TcpFlags, seq: u32, ack: u32, len: usize, win: u16) -> TcpLayer {
        TcpLayer {
            src_port: 1,
            dst_port: 2,
            flags,
            seq: 0,
            ack: 0,
            seq_raw: seq,
            ack_raw: ack,
            win,
            win_scaled: None,
            payload_len: len,
            options: None,
            analysis: Vec::new(),
        }
    }

    #[test]
    fn follows_a_handshake_and_data() {
        let mut t = TcpTrack::default();
        t.segment(Direction::Tx, &seg(TcpFlags::SYN, 1000, 0, 0, 65535));
        assert_eq!(
            (t.snd_nxt, t.snd_una, t.in_flight()),
            (Some(1001), Some(1000), 1)
        );
        t.segment(
            Direction::Rx,
            &seg(TcpFlags::SYN | TcpFlags::ACK, 5000, 1001, 0, 64240),
        );
        assert_eq!(
            (t.irs, t.snd_una, t.in_flight()),
            (Some(5000), Some(1001), 0)
        );
        t.segment(
            Direction::Tx,
            &seg(TcpFlags::ACK | TcpFlags::PSH, 1001, 5001, 100, 65535),
        );
        assert_eq!(t.in_flight(), 100);
        assert_eq!(t.rel_local(t.snd_nxt), Some(101));
        assert_eq!(t.rel_remote(t.rcv_nxt), Some(1));
        t.segment(Direction::Rx, &seg(TcpFlags::ACK, 5001, 1101, 0, 64000));
        assert_eq!((t.in_flight(), t.snd_wnd), (0, Some(64000)));
    }

    #[test]
    fn sequence_space_wraps() {
        let mut t = TcpTrack::default();
        t.segment(Direction::Tx, &seg(TcpFlags::SYN, u32::MAX, 0, 0, 1));
        assert_eq!(t.snd_nxt, Some(0));
        assert_eq!(t.in_flight(), 1);
        // an old ACK does not move SND.UNA backwards
        t.segment(
            Direction::Rx,
            &seg(TcpFlags::SYN | TcpFlags::ACK, 7, 0, 0, 1),
        );
        t.segment(Direction::Rx, &seg(TcpFlags::ACK, 8, u32::MAX - 5, 0, 1));
        assert_eq!(t.snd_una, Some(0));
    }
}
