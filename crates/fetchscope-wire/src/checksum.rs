//! Verification of the Internet checksum (RFC 1071) of IPv4 headers and of UDP, TCP and
//! ICMP messages, summed with etherparse's `checksum` module.
//!
//! A checksum verifies when the ones' complement sum of everything it covers, the checksum
//! field included, is all ones (what a receiving stack checks). Under `--cfg fuzzing`
//! every checksum verifies, so fuzzed inputs reach the layers above (as smoltcp did).

use std::net::IpAddr;

use etherparse::checksum::Sum16BitWords;

/// True when `data` (an IPv4 header or an ICMPv4 message) carries a correct checksum.
pub(crate) fn verifies(data: &[u8]) -> bool {
    cfg!(fuzzing) || Sum16BitWords::new().add_slice(data).ones_complement() == 0
}

/// True when `segment` (a whole UDP datagram, TCP segment or ICMPv6 message carried with
/// IP protocol number `protocol` from `src` to `dst`) carries a correct checksum, the
/// pseudo-header included.
pub(crate) fn verifies_with_pseudo_header(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    segment: &[u8],
) -> bool {
    if cfg!(fuzzing) {
        return true;
    }
    let Ok(len) = u32::try_from(segment.len()) else {
        return false;
    };
    let mut sum = Sum16BitWords::new();
    sum = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            // IPv4 pseudo-header: addresses, zero, protocol, 16-bit length.
            let Ok(len) = u16::try_from(len) else {
                return false;
            };
            sum.add_4bytes(s.octets())
                .add_4bytes(d.octets())
                .add_2bytes([0, protocol])
                .add_2bytes(len.to_be_bytes())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            // IPv6 pseudo-header: addresses, 32-bit length, three zeros, next header.
            sum.add_16bytes(s.octets())
                .add_16bytes(d.octets())
                .add_4bytes(len.to_be_bytes())
                .add_4bytes([0, 0, 0, protocol])
        }
        _ => return false,
    };
    sum.add_slice(segment).ones_complement() == 0
}

/// The 16-bit one's-complement sum of `data` added to `acc`.
fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
    }
    if let [b] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*b) << 8);
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Computes the UDP or TCP checksum of an IPv4/IPv6 packet in place; false when the
/// packet is not whole UDP or TCP.
pub fn complete_checksum(p: &mut [u8]) -> bool {
    let Some(first) = p.first() else {
        return false;
    };
    let (proto, l4_start, pseudo) = match first >> 4 {
        4 => {
            let ihl = usize::from(first & 0x0f) * 4;
            let total = p
                .get(2..4)
                .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
            let (Some(proto), Some(addrs)) = (p.get(9).copied(), p.get(12..20)) else {
                return false;
            };
            if total != p.len() || ihl < 20 || total < ihl {
                return false;
            }
            let len = (total - ihl) as u32;
            (proto, ihl, sum16(addrs, u32::from(proto) + len))
        }
        6 => {
            let (Some(proto), Some(addrs)) = (p.get(6).copied(), p.get(8..40)) else {
                return false;
            };
            let plen = p
                .get(4..6)
                .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
            if plen + 40 != p.len() {
                return false;
            }
            (proto, 40, sum16(addrs, u32::from(proto) + plen as u32))
        }
        _ => return false,
    };
    let field = match proto {
        6 => 16,
        17 => 6,
        _ => return false,
    };
    let Some(l4) = p.get_mut(l4_start..) else {
        return false;
    };
    if l4.len() < field + 2 || (proto == 6 && l4.len() < 20) || (proto == 17 && l4.len() < 8) {
        return false;
    }
    l4[field] = 0;
    l4[field + 1] = 0;
    let mut sum = !fold(sum16(l4, pseudo));
    if proto == 17 && sum == 0 {
        sum = 0xffff;
    }
    l4[field..field + 2].copy_from_slice(&sum.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_checksums_that_verify() {
        // A UDP datagram 10.0.0.2:40000 -> 10.0.0.1:53 with a zero checksum field.
        let mut p = vec![
            0x45, 0, 0, 31, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
        ];
        p.extend_from_slice(&[0x9c, 0x40, 0, 53, 0, 11, 0, 0, 1, 2, 3]);
        assert!(complete_checksum(&mut p));
        // Verifying: the sum over pseudo-header and datagram folds to 0xffff.
        let pseudo = sum16(&p[12..20], 17 + 11);
        assert_eq!(fold(sum16(&p[20..], pseudo)), 0xffff);
        // A TCP segment in IPv6.
        let mut t = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
        t.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        t.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        t.extend_from_slice(&[
            0xc3, 0x50, 1, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 2, 0xff, 0xff, 0xaa, 0xbb, 0, 0,
        ]);
        assert!(complete_checksum(&mut t));
        let pseudo = sum16(&t[8..40], 6 + 20);
        assert_eq!(fold(sum16(&t[40..], pseudo)), 0xffff);
        // Not whole: left alone.
        let mut short = p[..25].to_vec();
        assert!(!complete_checksum(&mut short));
    }

    #[test]
    fn rfc1071_example_and_a_pseudo_header() {
        // RFC 1071 §3's example words sum to 0xddf2; with their complement 0x220d appended
        // the sum is all ones.
        let words = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert!(!verifies(&words));
        let mut with_sum = words.to_vec();
        with_sum.extend_from_slice(&[0x22, 0x0d]);
        assert!(verifies(&with_sum));

        // A UDP datagram 10.0.0.1:1 → 10.0.0.2:2 with 1 payload byte (odd length).
        let (src, dst) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let mut udp = [0, 1, 0, 2, 0, 9, 0, 0, 0x61];
        let sum: u32 = [0x0a00, 0x0001, 0x0a00, 0x0002, 17, 9, 1, 2, 9, 0x6100]
            .iter()
            .sum();
        let folded = (sum & 0xffff) + (sum >> 16);
        let check = !u16::try_from(folded).unwrap_or(0);
        udp[6..8].copy_from_slice(&check.to_be_bytes());
        assert!(verifies_with_pseudo_header(src, dst, 17, &udp));
        assert!(!verifies_with_pseudo_header(dst, src, 6, &udp));
        assert!(!verifies_with_pseudo_header(
            src,
            IpAddr::from([0u16; 8]),
            17,
            &udp
        ));
    }

    #[test]
    fn agrees_with_smoltcp_on_random_segments() {
        use smoltcp::wire::{IpAddress, Ipv6Address, TcpPacket, UdpPacket, checksum::data};
        let mut state = 0x9e37_79b9_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        let v4 = (IpAddr::from([10, 88, 1, 2]), IpAddr::from([10, 88, 0, 1]));
        let v6 = (
            IpAddr::from(Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
            IpAddr::from(Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
        );
        for round in 0..20_000 {
            let len = 20 + (next() % 60) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let (src, dst) = if round % 2 == 0 { v4 } else { v6 };
            // Half of the time, make the TCP checksum right (with smoltcp's own sum).
            if round % 4 < 2 {
                TcpPacket::new_unchecked(&mut bytes)
                    .fill_checksum(&IpAddress::from(src), &IpAddress::from(dst));
            }
            let tcp = TcpPacket::new_unchecked(&bytes[..]);
            assert_eq!(
                verifies_with_pseudo_header(src, dst, 6, &bytes),
                tcp.verify_checksum(&IpAddress::from(src), &IpAddress::from(dst)),
                "{bytes:?}"
            );
            let udp = UdpPacket::new_unchecked(&bytes[..]);
            let udp_len = usize::from(udp.len());
            if (8..=bytes.len()).contains(&udp_len) && udp.checksum() != 0 {
                assert_eq!(
                    verifies_with_pseudo_header(src, dst, 17, &bytes[..udp_len]),
                    udp.verify_checksum(&IpAddress::from(src), &IpAddress::from(dst)),
                );
            }
            let header = &bytes[..20];
            assert_eq!(verifies(header), data(header) == !0);
        }
    }
}
