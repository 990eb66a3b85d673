//! The lab's router between the client's and the server's networks: it forwards IP
//! packets and decrements their TTL (hop limit), like the router in the namespace lab.

use smoltcp::wire::{Ipv4Packet, Ipv6Packet};

/// Forwards one IP packet: returns it with the TTL (IPv4) or hop limit (IPv6) one lower
/// and the IPv4 header checksum fixed, or `None` when a router would drop it (malformed,
/// bad IPv4 header checksum, or the TTL would reach zero).
pub(crate) fn forward(mut packet: Vec<u8>) -> Option<Vec<u8>> {
    match packet.first()? >> 4 {
        4 => {
            let mut ip = Ipv4Packet::new_checked(&mut packet[..]).ok()?;
            if !ip.verify_checksum() {
                return None;
            }
            let ttl = ip.hop_limit().checked_sub(1).filter(|t| *t > 0)?;
            ip.set_hop_limit(ttl);
            ip.fill_checksum();
        }
        6 => {
            let mut ip = Ipv6Packet::new_checked(&mut packet[..]).ok()?;
            let hops = ip.hop_limit().checked_sub(1).filter(|h| *h > 0)?;
            ip.set_hop_limit(hops);
        }
        _ => return None,
    }
    Some(packet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{IpProtocol, Ipv4Address, Ipv4Repr};

    fn ipv4(ttl: u8) -> Vec<u8> {
        let repr = Ipv4Repr {
            src_addr: Ipv4Address::new(10, 88, 1, 2),
            dst_addr: Ipv4Address::new(10, 88, 0, 1),
            next_header: IpProtocol::Udp,
            payload_len: 4,
            hop_limit: ttl,
        };
        let mut buf = vec![0u8; repr.buffer_len() + 4];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut p, &smoltcp::phy::ChecksumCapabilities::default());
        buf
    }

    #[test]
    fn decrements_ttl_and_keeps_the_checksum_valid() {
        let out = forward(ipv4(64)).expect("forwarded");
        let p = Ipv4Packet::new_checked(&out[..]).expect("valid");
        assert_eq!(p.hop_limit(), 63);
        assert!(p.verify_checksum());
    }

    #[test]
    fn drops_when_ttl_would_reach_zero() {
        assert!(forward(ipv4(1)).is_none());
        assert!(forward(ipv4(0)).is_none());
        assert!(forward(ipv4(2)).is_some());
    }

    #[test]
    fn drops_malformed_and_corrupted_packets() {
        assert!(forward(Vec::new()).is_none());
        assert!(forward(vec![0x45, 0, 0]).is_none());
        assert!(forward(vec![0x15; 40]).is_none());
        let mut bad = ipv4(64);
        bad[12] ^= 0xff; // source address changed, checksum now wrong
        assert!(forward(bad).is_none());
    }
}
