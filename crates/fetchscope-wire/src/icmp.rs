//! ICMPv4 and ICMPv6 messages, with the quoted packet of error messages.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::Icmpv6Slice;
use serde::Serialize;

use crate::checksum;
use crate::error::DecodeError;

/// ICMP header length (type, code, checksum, 4 bytes of rest-of-header).
const ICMP_HEADER: usize = 8;
/// The IP protocol number of ICMPv6, for the pseudo-header.
const PROTO_ICMPV6: u8 = 58;

/// An ICMPv4 or ICMPv6 message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IcmpLayer {
    /// The type field.
    #[serde(rename = "type")]
    pub kind: u8,
    /// The code field.
    pub code: u8,
    /// Type and code in words, e.g. "destination unreachable (port unreachable)".
    pub name: String,
    /// For error messages: the offending packet's protocol and endpoints,
    /// e.g. "UDP 10.88.0.1:53 → 10.88.1.2:51000".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted: Option<String>,
    /// The next-hop MTU of "fragmentation needed" / "packet too big".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

/// Decodes an ICMPv4 message; checksum problems go to `problems`.
///
/// Read from the bytes themselves: etherparse's `Icmpv4Slice` refuses timestamp messages of
/// another length than 20 bytes, which are still worth showing.
pub(crate) fn parse_v4(
    bytes: &[u8],
    problems: &mut Vec<DecodeError>,
) -> Result<IcmpLayer, DecodeError> {
    let Some(&[kind, code, c0, c1, _, _, m0, m1]) = bytes.get(..ICMP_HEADER) else {
        return Err(DecodeError::Truncated {
            what: "ICMP header",
            have: bytes.len(),
            need: ICMP_HEADER,
        });
    };
    if !checksum::verifies(bytes) {
        problems.push(DecodeError::BadChecksum(u16::from_be_bytes([c0, c1])));
    }
    let is_error = matches!(kind, 3 | 4 | 5 | 11 | 12);
    let mtu = (kind == 3 && code == 4).then(|| u32::from(u16::from_be_bytes([m0, m1])));
    Ok(IcmpLayer {
        kind,
        code,
        name: v4_name(kind, code),
        quoted: is_error
            .then(|| quote(bytes.get(ICMP_HEADER..).unwrap_or_default()))
            .flatten(),
        mtu,
    })
}

/// Decodes an ICMPv6 message; checksum problems go to `problems`.
pub(crate) fn parse_v6(
    bytes: &[u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    problems: &mut Vec<DecodeError>,
) -> Result<IcmpLayer, DecodeError> {
    let view =
        Icmpv6Slice::from_slice(bytes).map_err(|e| DecodeError::truncated("ICMPv6 header", &e))?;
    if !checksum::verifies_with_pseudo_header(src.into(), dst.into(), PROTO_ICMPV6, bytes) {
        problems.push(DecodeError::BadChecksum(view.checksum()));
    }
    let (kind, code) = (view.type_u8(), view.code_u8());
    let is_error = kind < 128;
    let mtu = (kind == 2).then(|| u32::from_be_bytes(view.bytes5to8()));
    Ok(IcmpLayer {
        kind,
        code,
        name: v6_name(kind, code),
        quoted: is_error
            .then(|| quote(bytes.get(ICMP_HEADER..).unwrap_or_default()))
            .flatten(),
        mtu,
    })
}

fn v4_name(kind: u8, code: u8) -> String {
    let detail = match (kind, code) {
        (3, 0) => Some("network unreachable"),
        (3, 1) => Some("host unreachable"),
        (3, 2) => Some("protocol unreachable"),
        (3, 3) => Some("port unreachable"),
        (3, 4) => Some("fragmentation needed"),
        (3, 9) | (3, 10) | (3, 13) => Some("administratively prohibited"),
        (5, 0) => Some("for network"),
        (5, 1) => Some("for host"),
        (11, 0) => Some("TTL exceeded in transit"),
        (11, 1) => Some("fragment reassembly time exceeded"),
        _ => None,
    };
    let base = match kind {
        0 => "echo reply",
        3 => "destination unreachable",
        4 => "source quench",
        5 => "redirect",
        8 => "echo request",
        11 => "time exceeded",
        12 => "parameter problem",
        13 => "timestamp request",
        14 => "timestamp reply",
        _ => return format!("type {kind} code {code}"),
    };
    with_detail(base, detail, code)
}

fn v6_name(kind: u8, code: u8) -> String {
    let detail = match (kind, code) {
        (1, 0) => Some("no route to destination"),
        (1, 1) => Some("administratively prohibited"),
        (1, 3) => Some("address unreachable"),
        (1, 4) => Some("port unreachable"),
        (3, 0) => Some("hop limit exceeded in transit"),
        (3, 1) => Some("fragment reassembly time exceeded"),
        _ => None,
    };
    let base = match kind {
        1 => "destination unreachable",
        2 => "packet too big",
        3 => "time exceeded",
        4 => "parameter problem",
        128 => "echo request",
        129 => "echo reply",
        133 => "router solicitation",
        134 => "router advertisement",
        135 => "neighbor solicitation",
        136 => "neighbor advertisement",
        137 => "redirect",
        143 => "multicast listener report v2",
        _ => return format!("type {kind} code {code}"),
    };
    with_detail(base, detail, code)
}

fn with_detail(base: &str, detail: Option<&str>, code: u8) -> String {
    match detail {
        Some(d) => format!("{base} ({d})"),
        None if code == 0 => base.to_string(),
        None => format!("{base} (code {code})"),
    }
}

/// Describes the packet quoted inside an ICMP error: protocol and endpoints.
fn quote(inner: &[u8]) -> Option<String> {
    let version = inner.first()? >> 4;
    let (src, dst, protocol, transport): (IpAddr, IpAddr, u8, &[u8]) = match version {
        4 => {
            let header_len = usize::from(inner.first()? & 0x0f) * 4;
            if header_len < 20 {
                return None;
            }
            let src: [u8; 4] = inner.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = inner.get(16..20)?.try_into().ok()?;
            (
                Ipv4Addr::from(src).into(),
                Ipv4Addr::from(dst).into(),
                *inner.get(9)?,
                inner.get(header_len..).unwrap_or_default(),
            )
        }
        6 => {
            let src: [u8; 16] = inner.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = inner.get(24..40)?.try_into().ok()?;
            (
                Ipv6Addr::from(src).into(),
                Ipv6Addr::from(dst).into(),
                *inner.get(6)?,
                inner.get(40..).unwrap_or_default(),
            )
        }
        _ => return None,
    };
    let name = match protocol {
        6 => "TCP",
        17 => "UDP",
        _ => return Some(format!("protocol {protocol} {src} → {dst}")),
    };
    match (transport.get(0..2), transport.get(2..4)) {
        (Some(s), Some(d)) => {
            let sport = u16::from_be_bytes([s[0], s[1]]);
            let dport = u16::from_be_bytes([d[0], d[1]]);
            Some(format!(
                "{name} {} → {}",
                endpoint(src, sport),
                endpoint(dst, dport)
            ))
        }
        _ => Some(format!("{name} {src} → {dst}")),
    }
}

fn endpoint(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        Icmpv4DstUnreachable, Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpProtocol,
        Ipv4Address, Ipv4Repr, Ipv6Address,
    };

    #[test]
    fn port_unreachable_quotes_the_udp_packet() {
        let header = Ipv4Repr {
            src_addr: Ipv4Address::new(10, 88, 0, 1),
            dst_addr: Ipv4Address::new(10, 88, 1, 2),
            next_header: IpProtocol::Udp,
            payload_len: 8,
            hop_limit: 64,
        };
        let udp = [0u8, 53, 0xc7, 0x38, 0, 8, 0, 0];
        let repr = Icmpv4Repr::DstUnreachable {
            reason: Icmpv4DstUnreachable::PortUnreachable,
            header,
            data: &udp,
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(
            &mut Icmpv4Packet::new_unchecked(&mut buf),
            &ChecksumCapabilities::default(),
        );
        let mut problems = Vec::new();
        let layer = parse_v4(&buf, &mut problems).expect("valid ICMP");
        assert!(problems.is_empty());
        assert_eq!((layer.kind, layer.code), (3, 3));
        assert_eq!(layer.name, "destination unreachable (port unreachable)");
        assert_eq!(
            layer.quoted.as_deref(),
            Some("UDP 10.88.0.1:53 → 10.88.1.2:51000")
        );
        let json = serde_json::to_value(&layer).expect("serialises");
        assert_eq!(json["type"], 3);
        assert_eq!(json["code"], 3);
    }

    #[test]
    fn icmpv6_echo_request_and_bad_checksum() {
        let src = Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
        let dst = Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
        let repr = Icmpv6Repr::EchoRequest {
            ident: 7,
            seq_no: 1,
            data: b"ping",
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(
            &src,
            &dst,
            &mut Icmpv6Packet::new_unchecked(&mut buf),
            &ChecksumCapabilities::default(),
        );
        let (s, d) = (src, dst);
        let mut problems = Vec::new();
        let layer = parse_v6(&buf, s, d, &mut problems).expect("valid ICMPv6");
        assert!(problems.is_empty());
        assert_eq!(layer.name, "echo request");
        assert_eq!(layer.quoted, None);
        buf[9] ^= 0xff;
        parse_v6(&buf, s, d, &mut problems).expect("still decodable");
        assert!(matches!(problems[..], [DecodeError::BadChecksum(_)]));
    }

    #[test]
    fn short_and_odd_messages() {
        let mut problems = Vec::new();
        assert!(parse_v4(&[3, 3, 0], &mut problems).is_err());
        let layer = parse_v4(&[3, 3, 0, 0, 0, 0, 0, 0, 0x45], &mut problems).expect("header ok");
        assert_eq!(layer.quoted, None);
        assert_eq!(v4_name(200, 1), "type 200 code 1");
        assert_eq!(v4_name(3, 7), "destination unreachable (code 7)");
        // A timestamp request of another length than 20 bytes is still shown.
        let mut ts = [13u8, 0, 0, 0, 0, 1, 0, 1, 0, 0];
        let sum = etherparse::checksum::Sum16BitWords::new()
            .add_slice(&ts)
            .ones_complement()
            .to_be();
        ts[2..4].copy_from_slice(&sum.to_be_bytes());
        let mut problems = Vec::new();
        let layer = parse_v4(&ts, &mut problems).expect("header ok");
        assert!(problems.is_empty());
        assert_eq!(layer.name, "timestamp request");
        assert!(
            parse_v6(
                &[128, 0, 0],
                Ipv6Addr::LOCALHOST,
                Ipv6Addr::LOCALHOST,
                &mut problems
            )
            .is_err_and(|e| e.to_string() == "truncated ICMPv6 header: 3 bytes, 8 needed")
        );
    }
}
