//! The IP layer: IPv4 and IPv6 headers (with IPv6 extension headers skipped).

use std::net::IpAddr;

use etherparse::{
    Ipv4HeaderSlice, Ipv6FragmentHeaderSlice, Ipv6HeaderSlice, Ipv6RawExtHeaderSlice,
};
use serde::Serialize;

use crate::checksum;
use crate::error::DecodeError;
use crate::problem::Layer;

/// IPv4 header length without options.
const IPV4_MIN_HEADER: usize = 20;
/// IPv6 fixed header length.
const IPV6_HEADER: usize = 40;
/// At most this many IPv6 extension headers are walked before giving up.
const MAX_IPV6_EXT_HEADERS: usize = 8;

/// The IP header of a packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpLayer {
    /// 4 or 6.
    pub version: u8,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IPv4 time to live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
    /// IPv4 identification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u16>,
    /// IPv6 hop limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hop_limit: Option<u8>,
    /// Length of the whole IP packet (IPv4 total length; IPv6 40 + payload length).
    pub len: usize,
    /// The upper-layer protocol: "tcp", "udp", "icmp", "icmpv6" or another name or number.
    pub protocol: std::borrow::Cow<'static, str>,
    /// IPv4 don't-fragment flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub df: Option<bool>,
    /// Set when this packet is a fragment of a larger one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fragment: Option<IpFragment>,
}

/// Where a fragment sits in the original packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IpFragment {
    /// Offset of this fragment's data in bytes.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
}

/// An IP packet cut into its header view and its upper-layer payload.
#[derive(Debug)]
pub(crate) struct IpPacket<'a> {
    /// The serialisable header view.
    pub layer: IpLayer,
    /// The upper-layer protocol number (after IPv6 extension headers).
    pub protocol: u8,
    /// The upper-layer bytes (bounded by the IP length fields).
    pub payload: &'a [u8],
    /// Problems that did not stop decoding (e.g. a bad IPv4 header checksum).
    pub problems: Vec<DecodeError>,
}

impl IpPacket<'_> {
    /// True when the payload is a whole upper-layer message (not a fragment).
    pub fn is_whole(&self) -> bool {
        self.layer.fragment.is_none()
    }

    /// Source address, for upper-layer checksums.
    pub fn src(&self) -> IpAddr {
        self.layer.src
    }

    /// Destination address, for upper-layer checksums.
    pub fn dst(&self) -> IpAddr {
        self.layer.dst
    }
}

/// Decodes an IP packet; the error names the layer (IPv4, IPv6, or IP for another version).
pub(crate) fn parse(packet: &[u8]) -> Result<IpPacket<'_>, (Layer, DecodeError)> {
    let first = packet.first().ok_or((
        Layer::Ip,
        DecodeError::Truncated {
            what: "packet",
            have: 0,
            need: 1,
        },
    ))?;
    match first >> 4 {
        4 => parse_v4(packet).map_err(|e| (Layer::Ipv4, e)),
        6 => parse_v6(packet).map_err(|e| (Layer::Ipv6, e)),
        v => Err((Layer::Ip, DecodeError::field("version", v))),
    }
}

/// A 16-bit big-endian field at `at`, 0 past the end (callers check lengths first).
fn be16(bytes: &[u8], at: usize) -> u16 {
    match bytes.get(at..at + 2) {
        Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
        _ => 0,
    }
}

fn parse_v4(packet: &[u8]) -> Result<IpPacket<'_>, DecodeError> {
    DecodeError::need("IPv4 header", packet.len(), IPV4_MIN_HEADER)?;
    // Checked here rather than by etherparse, to name the field that is wrong first.
    let ihl = packet.first().map_or(0, |b| b & 0x0f);
    let header_len = usize::from(ihl) * 4;
    if header_len < IPV4_MIN_HEADER {
        return Err(DecodeError::field("header length", ihl));
    }
    let total = usize::from(be16(packet, 2));
    if total < header_len {
        return Err(DecodeError::field("total length", total));
    }
    DecodeError::need("IPv4 packet", packet.len(), total)?;
    let bytes = packet.get(..total).unwrap_or(packet);
    let view =
        Ipv4HeaderSlice::from_slice(bytes).map_err(|e| DecodeError::Rejected(e.to_string()))?;
    let mut problems = Vec::new();
    if !checksum::verifies(view.slice()) {
        problems.push(DecodeError::BadChecksum(view.header_checksum()));
    }
    let protocol = view.protocol().0;
    let offset = u32::from(view.fragments_offset().value()) * 8;
    let fragment = (view.more_fragments() || offset != 0).then_some(IpFragment {
        offset,
        more: view.more_fragments(),
    });
    Ok(IpPacket {
        layer: IpLayer {
            version: 4,
            src: IpAddr::V4(view.source_addr()),
            dst: IpAddr::V4(view.destination_addr()),
            ttl: Some(view.ttl()),
            id: Some(view.identification()),
            hop_limit: None,
            len: total,
            protocol: protocol_name(protocol),
            df: Some(view.dont_fragment()),
            fragment,
        },
        protocol,
        payload: bytes.get(header_len..).unwrap_or_default(),
        problems,
    })
}

fn parse_v6(packet: &[u8]) -> Result<IpPacket<'_>, DecodeError> {
    DecodeError::need("IPv6 header", packet.len(), IPV6_HEADER)?;
    let total = IPV6_HEADER + usize::from(be16(packet, 4));
    DecodeError::need("IPv6 packet", packet.len(), total)?;
    let bytes = packet.get(..total).unwrap_or(packet);
    let view =
        Ipv6HeaderSlice::from_slice(bytes).map_err(|e| DecodeError::Rejected(e.to_string()))?;
    let mut next = view.next_header().0;
    let mut rest = bytes.get(IPV6_HEADER..).unwrap_or_default();
    let mut fragment = None;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        match next {
            // Hop-by-hop, routing, destination options: next header, length in 8-byte units.
            0 | 43 | 60 => {
                let ext = Ipv6RawExtHeaderSlice::from_slice(rest)
                    .map_err(|e| DecodeError::truncated("IPv6 extension header", &e))?;
                next = ext.next_header().0;
                rest = rest.get(ext.slice().len()..).unwrap_or_default();
            }
            // Fragment header: fixed 8 bytes.
            44 => {
                let ext = Ipv6FragmentHeaderSlice::from_slice(rest)
                    .map_err(|e| DecodeError::truncated("IPv6 fragment header", &e))?;
                let offset = u32::from(ext.fragment_offset().value()) * 8;
                let more = ext.more_fragments();
                if offset != 0 || more {
                    fragment = Some(IpFragment { offset, more });
                }
                next = ext.next_header().0;
                rest = rest.get(ext.slice().len()..).unwrap_or_default();
            }
            _ => break,
        }
    }
    Ok(IpPacket {
        layer: IpLayer {
            version: 6,
            src: IpAddr::V6(view.source_addr()),
            dst: IpAddr::V6(view.destination_addr()),
            ttl: None,
            id: None,
            hop_limit: Some(view.hop_limit()),
            len: total,
            protocol: protocol_name(next),
            df: None,
            fragment,
        },
        protocol: next,
        payload: rest,
        problems: Vec::new(),
    })
}

/// A readable name for an IP protocol number, as used in the JSON `protocol` field.
pub(crate) fn protocol_name(protocol: u8) -> std::borrow::Cow<'static, str> {
    match protocol {
        1 => "icmp".into(),
        2 => "igmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        41 => "ipv6".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        51 => "ah".into(),
        58 => "icmpv6".into(),
        59 => "none".into(),
        132 => "sctp".into(),
        n => n.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, Ipv6Address, Ipv6Packet, Ipv6Repr,
    };

    fn v4_packet(payload: &[u8]) -> Vec<u8> {
        let repr = Ipv4Repr {
            src_addr: Ipv4Address::new(10, 88, 1, 2),
            dst_addr: Ipv4Address::new(10, 88, 0, 1),
            next_header: IpProtocol::Udp,
            payload_len: payload.len(),
            hop_limit: 64,
        };
        let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
        let mut packet = Ipv4Packet::new_unchecked(&mut buf);
        repr.emit(&mut packet, &ChecksumCapabilities::default());
        packet.payload_mut().copy_from_slice(payload);
        buf
    }

    #[test]
    fn ipv4_header_fields() {
        let buf = v4_packet(&[1, 2, 3, 4]);
        let p = parse(&buf).expect("valid IPv4");
        assert_eq!(p.layer.version, 4);
        assert_eq!(p.layer.src.to_string(), "10.88.1.2");
        assert_eq!(p.layer.dst.to_string(), "10.88.0.1");
        assert_eq!(p.layer.ttl, Some(64));
        assert_eq!(p.layer.len, 24);
        assert_eq!(p.layer.protocol, "udp");
        assert_eq!(p.payload, &[1, 2, 3, 4]);
        assert!(p.problems.is_empty());
        assert!(p.is_whole());
        let json = serde_json::to_value(&p.layer).expect("serialises");
        assert_eq!(json["src"], "10.88.1.2");
        assert_eq!(json["ttl"], 64);
        assert!(json.get("hop_limit").is_none());
    }

    #[test]
    fn ipv4_bad_header_length_and_checksum() {
        let mut buf = v4_packet(&[0; 8]);
        buf[0] = 0x43;
        let (layer, err) = parse(&buf).expect_err("IHL 3 is invalid");
        assert_eq!(layer, Layer::Ipv4);
        assert_eq!(err.to_string(), "header length 3");

        let mut buf = v4_packet(&[0; 8]);
        buf[8] ^= 0x01; // TTL changed, checksum now wrong
        let p = parse(&buf).expect("still decodable");
        assert!(matches!(p.problems[..], [DecodeError::BadChecksum(_)]));
    }

    #[test]
    fn ipv4_truncated_and_trailing_padding() {
        let buf = v4_packet(&[9; 10]);
        let (_, err) = parse(&buf[..25]).expect_err("truncated");
        assert!(err.to_string().contains("truncated"));
        let mut padded = buf.clone();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(parse(&padded).expect("padded").payload, &[9; 10]);
    }

    #[test]
    fn ipv6_with_extension_header() {
        // A destination-options header (8 bytes) in front of 4 bytes of UDP-ish payload.
        let ext = [17u8, 0, 1, 4, 0, 0, 0, 0];
        let payload = [0xaa, 0xbb, 0xcc, 0xdd];
        let repr = Ipv6Repr {
            src_addr: Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 2),
            dst_addr: Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 1),
            next_header: IpProtocol::Ipv6Opts,
            payload_len: ext.len() + payload.len(),
            hop_limit: 63,
        };
        let mut buf = vec![0u8; repr.buffer_len() + ext.len() + payload.len()];
        let mut packet = Ipv6Packet::new_unchecked(&mut buf);
        repr.emit(&mut packet);
        buf[40..48].copy_from_slice(&ext);
        buf[48..].copy_from_slice(&payload);
        let p = parse(&buf).expect("valid IPv6");
        assert_eq!(p.layer.version, 6);
        assert_eq!(p.layer.hop_limit, Some(63));
        assert_eq!(p.layer.src.to_string(), "fd00::2");
        assert_eq!(p.protocol, 17);
        assert_eq!(p.layer.protocol, "udp");
        assert_eq!(p.payload, &payload);
        assert_eq!(p.layer.len, 52);
    }

    #[test]
    fn garbage_versions() {
        assert_eq!(parse(&[]).expect_err("empty").0, Layer::Ip);
        assert_eq!(
            parse(&[0x20, 0, 0]).expect_err("v2").1.to_string(),
            "version 2"
        );
        assert!(parse(&[0x60; 39]).is_err());
    }
}
