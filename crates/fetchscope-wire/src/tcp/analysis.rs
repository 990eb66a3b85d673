//! What the TCP analysis notices about a segment, like Wireshark's `tcp.analysis.*`.

use std::fmt;

use serde::{Serialize, Serializer};

/// One thing the dissector noticed about a TCP segment, by Wireshark's rules (its TCP
/// analysis flags of the same names). Serialised (and shown by
/// [`Display`](fmt::Display)) as its name in the event stream, e.g. `duplicate-ack`.
///
/// "The next expected sequence number" is just past the highest sequence number the
/// segment's sender has sent (payload, plus one for SYN or FIN); "the last
/// acknowledgement number" and "the last window" are those of the sender's previous
/// segment. Segments that carry data (or SYN, or FIN) and begin below the next expected
/// sequence number are one of the first three, unless they are a keep-alive (one byte or
/// none, one byte before the next expected sequence number), which is none of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpAnalysis {
    /// Data sent again (`retransmission`): below the next expected sequence number and
    /// neither a fast retransmission nor out of order; also data that the other side
    /// acknowledged already (Wireshark's spurious retransmission, which it counts as a
    /// retransmission too).
    Retransmission,
    /// Data sent again that the other side asked for (`fast-retransmission`): it begins at
    /// the acknowledgement number of the other side's two or more duplicate ACKs, within
    /// 20 ms of the other side's last segment. Wireshark counts it as a retransmission too.
    FastRetransmission,
    /// Data that arrived late, not again (`out-of-order`): below the next expected
    /// sequence number, not ending at it, and within the connection's initial round trip
    /// (SYN to the ACK completing the handshake; 3 ms when the handshake was not seen) of
    /// the segment that carried the highest sequence number. When packet times are not
    /// known, a segment that fills a hole the dissector saw.
    OutOfOrder,
    /// Data after a hole: the segment begins beyond the next expected sequence number, the
    /// one before it was not seen (`previous-segment-not-captured`).
    PreviousSegmentNotCaptured,
    /// A segment without data, SYN, FIN or RST that repeats the sender's last
    /// acknowledgement number and non-zero window at the next expected sequence number
    /// (`duplicate-ack`), whether data is outstanding or not; not the answer to a
    /// keep-alive.
    DuplicateAck,
    /// The receive window is zero, and none of SYN, FIN and RST is set (`zero-window`).
    ZeroWindow,
    /// As a duplicate ACK, but the non-zero window changed (`window-update`).
    WindowUpdate,
}

impl TcpAnalysis {
    /// The name in the event stream, e.g. `out-of-order`.
    pub fn as_str(self) -> &'static str {
        match self {
            TcpAnalysis::Retransmission => "retransmission",
            TcpAnalysis::FastRetransmission => "fast-retransmission",
            TcpAnalysis::OutOfOrder => "out-of-order",
            TcpAnalysis::PreviousSegmentNotCaptured => "previous-segment-not-captured",
            TcpAnalysis::DuplicateAck => "duplicate-ack",
            TcpAnalysis::ZeroWindow => "zero-window",
            TcpAnalysis::WindowUpdate => "window-update",
        }
    }

    /// True for both kinds of retransmission.
    pub fn is_retransmission(self) -> bool {
        matches!(
            self,
            TcpAnalysis::Retransmission | TcpAnalysis::FastRetransmission
        )
    }
}

impl fmt::Display for TcpAnalysis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TcpAnalysis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let all = [
            TcpAnalysis::Retransmission,
            TcpAnalysis::FastRetransmission,
            TcpAnalysis::OutOfOrder,
            TcpAnalysis::PreviousSegmentNotCaptured,
            TcpAnalysis::DuplicateAck,
            TcpAnalysis::ZeroWindow,
            TcpAnalysis::WindowUpdate,
        ];
        assert_eq!(
            serde_json::to_string(&all).expect("serialises"),
            r#"["retransmission","fast-retransmission","out-of-order","previous-segment-not-captured","duplicate-ack","zero-window","window-update"]"#
        );
        assert_eq!(TcpAnalysis::DuplicateAck.to_string(), "duplicate-ack");
        let resent: Vec<_> = all.into_iter().filter(|a| a.is_retransmission()).collect();
        assert_eq!(
            resent,
            [TcpAnalysis::Retransmission, TcpAnalysis::FastRetransmission]
        );
    }
}
