//! The decoded view of one packet.

use serde::Serialize;

use crate::dns::DnsLayer;
use crate::http::HttpLine;
use crate::icmp::IcmpLayer;
use crate::ip::IpLayer;
use crate::problem::DecodeProblem;
use crate::tcp::TcpLayer;
use crate::tls::record::TlsRecord;
use crate::udp::UdpLayer;

/// One packet decoded layer by layer. Absent layers are `None`/empty and are left out of
/// the JSON, so the flow crate can flatten this into a packet event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dissection {
    /// The IP header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpLayer>,
    /// An ICMPv4 or ICMPv6 message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpLayer>,
    /// The UDP header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udp: Option<UdpLayer>,
    /// The TCP header, with relative numbers and analysis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpLayer>,
    /// A DNS message (over UDP, or the first one a TCP segment completes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsLayer>,
    /// The TLS records this packet completes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<TlsRecord>,
    /// The first cleartext HTTP/1.x start line this packet completes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpLine>,
    /// What could not be decoded (serialised as sentences: "malformed ...", "gap: ...");
    /// never a panic.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<DecodeProblem>,
    /// The application bytes this packet delivered in stream order (cleartext HTTP,
    /// decrypted TLS application data); collected only when the dissector was asked to
    /// ([`Dissector::keep_app_data`](crate::Dissector::keep_app_data)). Not serialised.
    #[serde(skip)]
    pub app_data: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Direction, Dissector};

    /// The flow crate's packet event: its own fields, then the dissection flattened.
    #[derive(Serialize)]
    struct PacketEvent<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        t_us: u64,
        dir: Direction,
        len: usize,
        summary: String,
        #[serde(flatten)]
        dissection: &'a Dissection,
    }

    #[test]
    fn flattens_into_a_packet_event() {
        let packet = [
            0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 88, 1, 2, 10, 88, 0, 1, 0xcf, 0x84, 0,
            9, 0, 8, 0, 0,
        ];
        let mut packet = packet.to_vec();
        let sum = etherparse::checksum::Sum16BitWords::new()
            .add_slice(&packet[..20])
            .ones_complement()
            .to_be();
        packet[10..12].copy_from_slice(&sum.to_be_bytes());
        let d = Dissector::new().dissect(Direction::Tx, &packet);
        let event = PacketEvent {
            kind: "packet",
            t_us: 812,
            dir: Direction::Tx,
            len: packet.len(),
            summary: d.summary().to_string(),
            dissection: &d,
        };
        let json = serde_json::to_value(&event).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({
                "type": "packet", "t_us": 812, "dir": "tx", "len": 28,
                "summary": "UDP 53124 → 9 len=8",
                "ip": {"version": 4, "src": "10.88.1.2", "dst": "10.88.0.1", "ttl": 64,
                       "id": 0, "len": 28, "protocol": "udp", "df": true},
                "udp": {"src_port": 53124, "dst_port": 9, "len": 8}
            })
        );
    }
}
