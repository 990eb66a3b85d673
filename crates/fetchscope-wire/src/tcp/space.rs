//! [`TcpSpace`]: one end's view of a connection's sequence space — SND.UNA, SND.NXT,
//! RCV.NXT, the windows, the options each side announced and the retransmissions —
//! derived by the dissector's tracker from the packets it decoded.
//!
//! smoltcp exposes a socket's state, endpoints and queue sizes, but not these variables;
//! the kernel's `TCP_INFO` has its own. They follow from the segments the stack sent and
//! received, which the [`Dissector`](crate::Dissector) tracks anyway: one tracker serves
//! the decoding, the step panel and the stall analysis.

use serde::Serialize;

use crate::seq::after;

/// What the packets of one connection say about its sequence space, seen from one end
/// ("ours"); sequence numbers are absolute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TcpSpace {
    /// Our initial sequence number (from our SYN).
    pub iss: Option<u32>,
    /// The peer's initial sequence number (from its SYN).
    pub irs: Option<u32>,
    /// SND.NXT: just past the last byte (or SYN/FIN) we sent.
    pub snd_nxt: Option<u32>,
    /// SND.UNA: the oldest byte we sent that the peer has not acknowledged.
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
    /// Just past the highest byte of data received, in order or not.
    pub rx_data_end: Option<u32>,
}

impl TcpSpace {
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
