//! The lab's router between the client's and the server's networks: it forwards IP
//! packets and decrements their TTL (hop limit), like the router in the namespace lab.

use smoltcp::wire::{IpProtocol, Ipv4Packet, Ipv6Packet};

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

/// The `dns-fragment-lost` fault's loss: the second IPv4 fragment of every UDP datagram
/// from port 53 is dropped (the first and the rest pass), so no answer can be reassembled.
#[derive(Debug, Default)]
pub(crate) struct SecondFragmentLoss {
    /// The IPv4 id of the DNS answer whose first fragment passed last, until its second
    /// fragment is dropped.
    armed: Option<u16>,
}

impl SecondFragmentLoss {
    /// Whether the router loses `packet`.
    pub fn drops(&mut self, packet: &[u8]) -> bool {
        let Ok(ip) = Ipv4Packet::new_checked(packet) else {
            return false;
        };
        if ip.next_header() != IpProtocol::Udp || !(ip.more_frags() || ip.frag_offset() != 0) {
            return false;
        }
        if ip.frag_offset() == 0 {
            // The UDP header's length covers the whole datagram, not this fragment: read
            // the source port directly.
            let from_dns = ip.payload().get(..2) == Some(&53u16.to_be_bytes()[..]);
            if from_dns {
                self.armed = Some(ip.ident());
            }
            return false;
        }
        if self.armed == Some(ip.ident()) {
            self.armed = None;
            log::debug!(
                "lab: dns-fragment-lost fault: lost fragment id {}",
                ip.ident()
            );
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{Ipv4Address, Ipv4Repr};

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

    /// A fragment of a UDP datagram from `sport` with IPv4 id `id` at `offset` bytes.
    fn fragment(id: u16, offset: u16, more: bool, sport: u16) -> Vec<u8> {
        let mut buf = ipv4(64);
        buf.resize(20 + 16, 0);
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_total_len(36);
        p.set_ident(id);
        p.set_dont_frag(false);
        p.set_more_frags(more);
        p.set_frag_offset(offset);
        p.fill_checksum();
        buf[20..22].copy_from_slice(&sport.to_be_bytes());
        buf
    }

    #[test]
    fn the_second_fragment_of_each_dns_answer_is_lost() {
        let mut loss = SecondFragmentLoss::default();
        for id in [7, 8] {
            assert!(!loss.drops(&fragment(id, 0, true, 53)));
            assert!(loss.drops(&fragment(id, 1480, true, 53)));
            assert!(!loss.drops(&fragment(id, 2960, false, 53)));
        }
        // not DNS, or not a fragment: untouched
        assert!(!loss.drops(&fragment(9, 0, true, 443)));
        assert!(!loss.drops(&fragment(9, 1480, true, 443)));
        assert!(!loss.drops(&ipv4(64)));
        assert!(!loss.drops(&[]));
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
