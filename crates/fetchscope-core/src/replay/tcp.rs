//! The client's TCP states, inferred from the packets of a capture (RFC 9293 §3.3.2).
//!
//! A capture shows segments, not the socket: the state is what the client's stack must
//! have been in after sending or receiving each one, as every stack following the RFC is.

use fetchscope_wire::{Direction, TcpFlags, TcpLayer};

use crate::tcp_state::TcpState;

/// One connection's inferred client state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InferredTcp {
    /// The state the client is in now.
    pub state: TcpState,
    /// The raw sequence number just after the client's FIN, once sent.
    our_fin_end: Option<u32>,
    /// A change was inferred (a connection that only exists, `CLOSED`, has none).
    pub changed: bool,
}

impl Default for InferredTcp {
    fn default() -> Self {
        InferredTcp {
            state: TcpState::Closed,
            our_fin_end: None,
            changed: false,
        }
    }
}

/// A change the segment caused, and why in words.
pub(crate) type Change = (TcpState, TcpState, &'static str);

impl InferredTcp {
    /// Moves the state for one segment going `dir` (tx: sent by the client); returns the
    /// change, if any.
    pub fn segment(&mut self, dir: Direction, tcp: &TcpLayer) -> Option<Change> {
        use TcpState::*;
        let f = tcp.flags;
        let from = self.state;
        let tx = dir == Direction::Tx;
        let (to, why) = if f.contains(TcpFlags::RST) {
            if from == Closed {
                return None;
            }
            (
                Closed,
                if tx {
                    "inferred: the client sent RST"
                } else {
                    "inferred: RST received"
                },
            )
        } else if tx && f.contains(TcpFlags::SYN) && !f.contains(TcpFlags::ACK) {
            if from != Closed && from != SynSent && from != TimeWait {
                return None;
            }
            if from == SynSent {
                return None; // a retransmitted SYN
            }
            (SynSent, "inferred: the client sent SYN (connect())")
        } else if !tx && f.contains(TcpFlags::SYN) && f.contains(TcpFlags::ACK) && from == SynSent {
            (Established, "inferred: SYN-ACK received")
        } else {
            let ours_acked = !tx
                && f.contains(TcpFlags::ACK)
                && self
                    .our_fin_end
                    .is_some_and(|end| fetchscope_wire::seq::at_or_after(tcp.ack_raw, end));
            let fin = f.contains(TcpFlags::FIN);
            match (from, tx, fin) {
                (Established, true, true) => {
                    self.fin_sent(tcp);
                    (FinWait1, "inferred: the client sent FIN (close())")
                }
                (CloseWait, true, true) => {
                    self.fin_sent(tcp);
                    (
                        LastAck,
                        "inferred: the client sent its FIN after the server's",
                    )
                }
                (Established, false, true) => (CloseWait, "inferred: the server's FIN received"),
                (FinWait1, false, true) if ours_acked => (
                    TimeWait,
                    "inferred: the server's FIN acknowledged the client's",
                ),
                (FinWait1, false, true) => (Closing, "inferred: the FINs crossed"),
                (FinWait2, false, true) => (TimeWait, "inferred: the server's FIN received"),
                (FinWait1, false, false) if ours_acked => {
                    (FinWait2, "inferred: the client's FIN acknowledged")
                }
                (Closing, false, _) if ours_acked => {
                    (TimeWait, "inferred: the client's FIN acknowledged")
                }
                (LastAck, false, _) if ours_acked => {
                    (Closed, "inferred: the client's FIN acknowledged")
                }
                _ => return None,
            }
        };
        (to != from).then(|| {
            self.state = to;
            self.changed = true;
            (from, to, why)
        })
    }

    fn fin_sent(&mut self, tcp: &TcpLayer) {
        let len = u32::try_from(tcp.payload_len).unwrap_or(u32::MAX);
        self.our_fin_end = Some(tcp.seq_raw.wrapping_add(len).wrapping_add(1));
    }
}
