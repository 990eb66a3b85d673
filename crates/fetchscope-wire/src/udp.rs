//! The UDP header.

use serde::Serialize;
use smoltcp::wire::{IpAddress, UdpPacket};

use crate::error::DecodeError;

/// UDP header length.
const UDP_HEADER: usize = 8;

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
/// `problems`.
pub(crate) fn parse<'a>(
    bytes: &'a [u8],
    src: &IpAddress,
    dst: &IpAddress,
    problems: &mut Vec<DecodeError>,
) -> Result<(UdpLayer, &'a [u8]), DecodeError> {
    DecodeError::need("UDP header", bytes.len(), UDP_HEADER)?;
    let view = UdpPacket::new_unchecked(bytes);
    let len = usize::from(view.len());
    if len < UDP_HEADER {
        return Err(DecodeError::field("length", len));
    }
    DecodeError::need("UDP datagram", bytes.len(), len)?;
    let bytes = bytes.get(..len).unwrap_or(bytes);
    let view = UdpPacket::new_checked(bytes).map_err(|e| DecodeError::Rejected(e.to_string()))?;
    if !view.verify_checksum(src, dst) {
        problems.push(DecodeError::BadChecksum(view.checksum()));
    }
    let layer = UdpLayer {
        src_port: view.src_port(),
        dst_port: view.dst_port(),
        len: view.len(),
    };
    Ok((layer, bytes.get(UDP_HEADER..).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{Ipv4Address, UdpRepr};

    #[test]
    fn header_payload_and_checksum() {
        let src = IpAddress::Ipv4(Ipv4Address::new(10, 88, 1, 2));
        let dst = IpAddress::Ipv4(Ipv4Address::new(10, 88, 0, 1));
        let repr = UdpRepr {
            src_port: 53124,
            dst_port: 53,
        };
        let payload = b"hello";
        let mut buf = vec![0u8; repr.header_len() + payload.len()];
        repr.emit(
            &mut UdpPacket::new_unchecked(&mut buf),
            &src,
            &dst,
            payload.len(),
            |p| p.copy_from_slice(payload),
            &ChecksumCapabilities::default(),
        );
        let mut problems = Vec::new();
        let (layer, body) = parse(&buf, &src, &dst, &mut problems).expect("valid UDP");
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
        parse(&buf, &src, &dst, &mut problems).expect("decodable");
        assert_eq!(problems.len(), 1);
        buf[5] = 3; // length field below the header size
        assert!(parse(&buf, &src, &dst, &mut problems).is_err());
        assert!(parse(&buf[..4], &src, &dst, &mut problems).is_err());
    }
}
