//! The UDP header.

use std::net::IpAddr;

use etherparse::{UdpHeaderSlice, UdpSlice};
use serde::Serialize;

use crate::checksum;
use crate::error::DecodeError;

/// UDP header length.
const UDP_HEADER: usize = 8;
/// The IP protocol number of UDP, for the pseudo-header.
const PROTO_UDP: u8 = 17;

/// A UDP datagram's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UdpLayer {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// The length field: header plus payload.
    pub len: u16,
}

/// Decodes a UDP datagram into its header view and payload; a bad checksum goes to
/// `problems` (a zero checksum field means "none computed" and is not checked).
pub(crate) fn parse<'a>(
    bytes: &'a [u8],
    src: IpAddr,
    dst: IpAddr,
    problems: &mut Vec<DecodeError>,
) -> Result<(UdpLayer, &'a [u8]), DecodeError> {
    let header =
        UdpHeaderSlice::from_slice(bytes).map_err(|e| DecodeError::truncated("UDP header", &e))?;
    let len = usize::from(header.length());
    if len < UDP_HEADER {
        return Err(DecodeError::field("length", len));
    }
    DecodeError::need("UDP datagram", bytes.len(), len)?;
    let view = UdpSlice::from_slice(bytes).map_err(|e| DecodeError::Rejected(e.to_string()))?;
    if view.checksum() != 0
        && !checksum::verifies_with_pseudo_header(src, dst, PROTO_UDP, view.slice())
    {
        problems.push(DecodeError::BadChecksum(view.checksum()));
    }
    let layer = UdpLayer {
        src_port: view.source_port(),
        dst_port: view.destination_port(),
        len: view.length(),
    };
    Ok((layer, view.payload()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{IpAddress, UdpPacket, UdpRepr};

    #[test]
    fn header_payload_and_checksum() {
        let (src, dst) = (IpAddr::from([10, 88, 1, 2]), IpAddr::from([10, 88, 0, 1]));
        let repr = UdpRepr {
            src_port: 53124,
            dst_port: 53,
        };
        let payload = b"hello";
        let mut buf = vec![0u8; repr.header_len() + payload.len()];
        repr.emit(
            &mut UdpPacket::new_unchecked(&mut buf),
            &IpAddress::from(src),
            &IpAddress::from(dst),
            payload.len(),
            |p| p.copy_from_slice(payload),
            &ChecksumCapabilities::default(),
        );
        let mut problems = Vec::new();
        let (layer, body) = parse(&buf, src, dst, &mut problems).expect("valid UDP");
        assert_eq!(layer.src_port, 53124);
        assert_eq!(layer.dst_port, 53);
        assert_eq!(layer.len, 13);
        assert_eq!(body, payload);
        assert!(problems.is_empty());
        assert_eq!(
            serde_json::to_string(&layer).expect("serialises"),
            r#"{"src_port":53124,"dst_port":53,"len":13}"#
        );
        buf[9] ^= 1;
        parse(&buf, src, dst, &mut problems).expect("decodable");
        assert_eq!(problems.len(), 1);
        buf[5] = 3; // length field below the header size
        assert!(parse(&buf, src, dst, &mut problems).is_err());
        assert!(parse(&buf[..4], src, dst, &mut problems).is_err());
    }
}
