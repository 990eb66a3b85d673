//! What the TCP analysis notices about a segment, like Wireshark's `tcp.analysis.*`.

use std::fmt;

use serde::{Serialize, Serializer};

/// One thing the dissector noticed about a TCP segment. Serialised (and shown by
/// [`Display`](fmt::Display)) as its name in the event stream, e.g. `duplicate-ack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpAnalysis {
    /// Data sent again (`retransmission`).
    Retransmission,
    /// Data sent again that the other side asked for in two or more duplicate ACKs
    /// (`fast-retransmission`).
    FastRetransmission,
    /// Data that fills a hole left earlier: it arrived late, not again (`out-of-order`).
    OutOfOrder,
    /// Data after a hole: the segment before it was not seen
    /// (`previous-segment-not-captured`).
    PreviousSegmentNotCaptured,
    /// The same acknowledgment and window again while data is outstanding
    /// (`duplicate-ack`).
    DuplicateAck,
    /// The receive window is zero (`zero-window`).
    ZeroWindow,
    /// Only the window changed (`window-update`).
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
