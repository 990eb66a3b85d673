//! The TCP layer: header and options, plus per-connection sequence tracking and analysis.

mod analysis;
mod flags;
mod header;
mod space;
mod track;

pub use analysis::TcpAnalysis;
pub use flags::TcpFlags;
pub(crate) use header::{TcpHeader, parse};
pub use space::TcpSpace;
pub(crate) use track::{TcpTrack, Tracked};

use serde::Serialize;

/// A TCP segment's header as a person reads it in Wireshark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TcpLayer {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Flags set; serialised as their names in the order SYN, ACK, FIN, RST, PSH, URG,
    /// ECE, CWR.
    pub flags: TcpFlags,
    /// Sequence number relative to this direction's initial sequence number (SYN = 0).
    pub seq: u32,
    /// Acknowledgment number relative to the other direction's initial sequence number;
    /// 0 when the ACK flag is clear.
    pub ack: u32,
    /// The sequence number field as sent.
    pub seq_raw: u32,
    /// The acknowledgment number field as sent.
    pub ack_raw: u32,
    /// The window field as sent.
    pub win: u16,
    /// The window in bytes, once this direction's window scale is known from the handshake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub win_scaled: Option<u32>,
    /// Payload bytes.
    pub payload_len: usize,
    /// The options present, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<TcpOptions>,
    /// Wireshark-like analysis: retransmission, fast retransmission, out of order, previous
    /// segment not captured, duplicate ACK, zero window, window update.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub analysis: Vec<TcpAnalysis>,
}

/// The TCP options of a segment; only those present are set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TcpOptions {
    /// Maximum segment size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mss: Option<u16>,
    /// Window scale shift count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ws: Option<u8>,
    /// SACK permitted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sack_permitted: bool,
    /// Timestamp value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts_val: Option<u32>,
    /// Timestamp echo reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts_ecr: Option<u32>,
    /// SACK blocks `[left, right)`, relative to the other direction's initial sequence
    /// number when known (like Wireshark), else as sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sack: Vec<[u32; 2]>,
}

impl TcpOptions {
    /// True when no option is present.
    pub fn is_empty(&self) -> bool {
        *self == TcpOptions::default()
    }
}
