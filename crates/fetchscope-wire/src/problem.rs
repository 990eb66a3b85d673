//! What could not be decoded in a packet, as typed values.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::error::DecodeError;

/// The protocol layer a [`DecodeProblem`] was found in. Shown by
/// [`Display`](fmt::Display) as in the problem's text, e.g. `IPv4`, `TLS record`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// An IP packet whose version is neither 4 nor 6 (or an empty one).
    Ip,
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// ICMPv4.
    Icmp,
    /// ICMPv6.
    Icmpv6,
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// DNS, over UDP or TCP.
    Dns,
    /// Cleartext HTTP/1.x.
    Http,
    /// The TLS record layer.
    TlsRecord,
    /// A TLS handshake message.
    TlsHandshake,
    /// A TLS alert.
    TlsAlert,
}

impl Layer {
    /// The layer's name in problem texts, e.g. `ICMPv6`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Ip => "IP",
            Layer::Ipv4 => "IPv4",
            Layer::Ipv6 => "IPv6",
            Layer::Icmp => "ICMP",
            Layer::Icmpv6 => "ICMPv6",
            Layer::Udp => "UDP",
            Layer::Tcp => "TCP",
            Layer::Dns => "DNS",
            Layer::Http => "HTTP",
            Layer::TlsRecord => "TLS record",
            Layer::TlsHandshake => "TLS handshake",
            Layer::TlsAlert => "TLS alert",
        }
    }

    /// True for the layers a receiving IP stack checks itself (IP, ICMP, UDP, TCP): a
    /// packet malformed there is dropped before any application sees it.
    pub fn is_network(self) -> bool {
        matches!(
            self,
            Layer::Ip
                | Layer::Ipv4
                | Layer::Ipv6
                | Layer::Icmp
                | Layer::Icmpv6
                | Layer::Udp
                | Layer::Tcp
        )
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something in a packet that could not be decoded; decoding goes on with what could be.
///
/// Serialised (and shown by [`Display`](fmt::Display)) as one sentence, e.g.
/// `malformed TCP: bad checksum 0x1c46`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeProblem {
    /// Bytes that are not what `layer` allows: `malformed <layer>: <error>`.
    Malformed {
        /// Where.
        layer: Layer,
        /// What is wrong.
        error: DecodeError,
    },
    /// A TLS record header that makes no sense, so the records of this direction can no
    /// longer be found: `malformed TLS record: <error>; decoding of this direction stops`.
    TlsFramingLost {
        /// What is wrong with the record header.
        error: DecodeError,
    },
    /// Stream bytes that never arrived while the reassembly buffer filled up: the stream
    /// is decoded no further in this direction.
    StreamGap {
        /// How many bytes are missing.
        missing: u64,
    },
    /// A TLS 1.3 protected record that no known key opens.
    NotDecrypted {
        /// The key epoch the record was expected in (it was tried with the next one too).
        epoch: u8,
    },
}

impl DecodeProblem {
    /// The layer the problem was found in; `None` for a [`DecodeProblem::StreamGap`]
    /// (missing bytes, not wrong ones).
    pub fn layer(&self) -> Option<Layer> {
        match self {
            DecodeProblem::Malformed { layer, .. } => Some(*layer),
            DecodeProblem::TlsFramingLost { .. } | DecodeProblem::NotDecrypted { .. } => {
                Some(Layer::TlsRecord)
            }
            DecodeProblem::StreamGap { .. } => None,
        }
    }

    /// True when the packet is malformed at a layer the receiving stack checks itself (see
    /// [`Layer::is_network`]).
    pub fn is_network(&self) -> bool {
        matches!(self, DecodeProblem::Malformed { layer, .. } if layer.is_network())
    }

    /// The checksum field of a message whose checksum does not match its contents.
    pub fn bad_checksum(&self) -> Option<u16> {
        match self {
            DecodeProblem::Malformed {
                error: DecodeError::BadChecksum(sum),
                ..
            } => Some(*sum),
            _ => None,
        }
    }
}

impl fmt::Display for DecodeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeProblem::Malformed { layer, error } => write!(f, "malformed {layer}: {error}"),
            DecodeProblem::TlsFramingLost { error } => write!(
                f,
                "malformed {}: {error}; decoding of this direction stops",
                Layer::TlsRecord
            ),
            DecodeProblem::StreamGap { missing } => write!(
                f,
                "gap: {missing} stream bytes never arrived and the reassembly buffer is full; decoding of this direction stops"
            ),
            DecodeProblem::NotDecrypted { epoch } => write!(
                f,
                "TLS record not decrypted: no known key of epoch {epoch} or {} authenticates it",
                epoch.saturating_add(1)
            ),
        }
    }
}

impl Serialize for DecodeProblem {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The problem for `err` found while decoding `layer`.
pub(crate) fn malformed(layer: Layer, err: &DecodeError) -> DecodeProblem {
    DecodeProblem::Malformed {
        layer,
        error: err.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        let bad = malformed(Layer::Tcp, &DecodeError::BadChecksum(0x1c46));
        assert_eq!(bad.to_string(), "malformed TCP: bad checksum 0x1c46");
        assert_eq!(bad.bad_checksum(), Some(0x1c46));
        assert!(bad.is_network());
        assert_eq!(
            serde_json::to_string(&[bad]).expect("serialises"),
            r#"["malformed TCP: bad checksum 0x1c46"]"#
        );
        let lost = DecodeProblem::TlsFramingLost {
            error: DecodeError::field("record type", "0x47"),
        };
        assert_eq!(
            lost.to_string(),
            "malformed TLS record: record type 0x47; decoding of this direction stops"
        );
        assert!(!lost.is_network());
        assert_eq!(lost.layer(), Some(Layer::TlsRecord));
        assert_eq!(
            DecodeProblem::StreamGap { missing: 7 }.to_string(),
            "gap: 7 stream bytes never arrived and the reassembly buffer is full; decoding of this direction stops"
        );
        assert_eq!(
            DecodeProblem::NotDecrypted { epoch: 255 }.to_string(),
            "TLS record not decrypted: no known key of epoch 255 or 255 authenticates it"
        );
        let dns = malformed(Layer::Dns, &DecodeError::Rejected("bad label".into()));
        assert!(!dns.is_network() && dns.bad_checksum().is_none());
        assert_eq!(Layer::Icmpv6.to_string(), "ICMPv6");
    }
}
