//! The TCP header (read through etherparse's `TcpSlice` view) and its options.

use std::net::IpAddr;

use etherparse::TcpSlice;

use crate::checksum;
use crate::error::DecodeError;
use crate::tcp::{TcpFlags, TcpOptions};

/// TCP header length without options.
const TCP_MIN_HEADER: usize = 20;
/// The IP protocol number of TCP, for the pseudo-header.
const PROTO_TCP: u8 = 6;

/// A decoded TCP header with its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TcpHeader<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number field (meaningful with ACK).
    pub ack: u32,
    /// The flags (header byte 13).
    pub flags: TcpFlags,
    /// Window field.
    pub win: u16,
    /// Options, with SACK blocks as sent.
    pub options: TcpOptions,
    /// Payload bytes.
    pub payload: &'a [u8],
}

impl TcpHeader<'_> {
    /// Sequence space this segment occupies as Wireshark's analysis counts it: the
    /// payload, plus one for a SYN or a FIN (once, should both be set).
    pub fn seg_len(&self) -> u32 {
        let len = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        let control = self.flags.intersects(TcpFlags::SYN | TcpFlags::FIN);
        len.saturating_add(u32::from(control))
    }
}

/// Decodes a TCP segment; a bad checksum or malformed options go to `problems`.
pub(crate) fn parse<'a>(
    bytes: &'a [u8],
    src: IpAddr,
    dst: IpAddr,
    problems: &mut Vec<DecodeError>,
) -> Result<TcpHeader<'a>, DecodeError> {
    DecodeError::need("TCP header", bytes.len(), TCP_MIN_HEADER)?;
    let header_len = usize::from(bytes.get(12).map_or(0, |b| b >> 4)) * 4;
    if header_len < TCP_MIN_HEADER {
        return Err(DecodeError::field("data offset", header_len / 4));
    }
    DecodeError::need("TCP header with options", bytes.len(), header_len)?;
    let view = TcpSlice::from_slice(bytes).map_err(|e| DecodeError::Rejected(e.to_string()))?;
    if !checksum::verifies_with_pseudo_header(src, dst, PROTO_TCP, view.slice()) {
        problems.push(DecodeError::BadChecksum(view.checksum()));
    }
    let options = options(view.options(), problems);
    Ok(TcpHeader {
        src_port: view.source_port(),
        dst_port: view.destination_port(),
        seq: view.sequence_number(),
        ack: view.acknowledgment_number(),
        flags: TcpFlags::from_header_byte(bytes.get(13).copied().unwrap_or(0)),
        win: view.window_size(),
        options,
        payload: view.payload(),
    })
}

/// Option kinds (RFC 9293 §3.2, RFC 7323, RFC 2018).
mod kind {
    /// End of option list.
    pub const END: u8 = 0;
    /// No operation (padding).
    pub const NOP: u8 = 1;
    /// Maximum segment size.
    pub const MSS: u8 = 2;
    /// Window scale.
    pub const WS: u8 = 3;
    /// SACK permitted.
    pub const SACK_PERMITTED: u8 = 4;
    /// SACK blocks.
    pub const SACK: u8 = 5;
    /// Timestamps.
    pub const TIMESTAMP: u8 = 8;
}

/// At most this many SACK blocks are kept (a fourth one is rare and dropped).
const MAX_SACK_BLOCKS: usize = 3;

/// Walks the options. Written here rather than with etherparse's options iterator, which
/// stops at the first kind it does not know (TCP Fast Open, MPTCP, MD5 signatures, ...):
/// an unknown kind is skipped by its length, a timestamp option of another length is
/// ignored, and only an option whose length does not fit is malformed.
fn options(mut raw: &[u8], problems: &mut Vec<DecodeError>) -> TcpOptions {
    let mut out = TcpOptions::default();
    while let Some(&kind) = raw.first() {
        match kind {
            kind::END => break,
            kind::NOP => {
                raw = raw.get(1..).unwrap_or_default();
                continue;
            }
            _ => {}
        }
        let len = raw.get(1).map(|&l| usize::from(l));
        let Some(data) = len.and_then(|len| raw.get(2..len)) else {
            problems.push(DecodeError::field("option", format!("kind {kind}")));
            break;
        };
        let known_length = match (kind, data) {
            (kind::MSS, &[hi, lo]) => {
                out.mss = Some(u16::from_be_bytes([hi, lo]));
                true
            }
            (kind::WS, &[shift]) => {
                out.ws = Some(shift);
                true
            }
            (kind::SACK_PERMITTED, []) => {
                out.sack_permitted = true;
                true
            }
            (kind::SACK, blocks) if !blocks.is_empty() && blocks.len() % 8 == 0 => {
                out.sack = blocks
                    .chunks_exact(8)
                    .take(MAX_SACK_BLOCKS)
                    .map(|b| [be32(b, 0), be32(b, 4)])
                    .collect();
                true
            }
            (kind::TIMESTAMP, ts) if ts.len() == 8 => {
                out.ts_val = Some(be32(ts, 0));
                out.ts_ecr = Some(be32(ts, 4));
                true
            }
            (kind::MSS | kind::WS | kind::SACK_PERMITTED | kind::SACK, _) => false,
            // Unknown kinds, and a timestamp option of another length, are skipped.
            _ => true,
        };
        if !known_length {
            problems.push(DecodeError::field("option", format!("kind {kind}")));
            break;
        }
        raw = raw.get(2 + data.len()..).unwrap_or_default();
    }
    out
}

/// A 32-bit big-endian number at `at` in `bytes` (0 past the end).
fn be32(bytes: &[u8], at: usize) -> u32 {
    match bytes.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        IpAddress, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, TcpTimestampRepr,
    };

    fn addrs() -> (IpAddr, IpAddr) {
        (IpAddr::from([10, 88, 1, 2]), IpAddr::from([10, 88, 0, 1]))
    }

    fn emit(repr: &TcpRepr<'_>) -> Vec<u8> {
        let (src, dst) = addrs();
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut buf),
            &IpAddress::from(src),
            &IpAddress::from(dst),
            &ChecksumCapabilities::default(),
        );
        buf
    }

    #[test]
    fn syn_with_options() {
        let repr = TcpRepr {
            src_port: 50123,
            dst_port: 443,
            control: TcpControl::Syn,
            seq_number: TcpSeqNumber(2_714_066_832_u32.cast_signed()),
            ack_number: None,
            window_len: 65535,
            window_scale: Some(7),
            max_seg_size: Some(1460),
            sack_permitted: true,
            sack_ranges: [None; 3],
            timestamp: Some(TcpTimestampRepr::new(11, 0)),
            payload: &[],
        };
        let buf = emit(&repr);
        let (src, dst) = addrs();
        let mut problems = Vec::new();
        let h = parse(&buf, src, dst, &mut problems).expect("valid TCP");
        assert!(problems.is_empty());
        assert_eq!(h.seq, 2_714_066_832);
        assert_eq!(h.flags, TcpFlags::SYN);
        assert_eq!(h.seg_len(), 1);
        assert_eq!(h.options.mss, Some(1460));
        assert_eq!(h.options.ws, Some(7));
        assert!(h.options.sack_permitted);
        assert_eq!((h.options.ts_val, h.options.ts_ecr), (Some(11), Some(0)));
    }

    #[test]
    fn sack_blocks_flags_and_bad_input() {
        let repr = TcpRepr {
            src_port: 443,
            dst_port: 50123,
            control: TcpControl::Psh,
            seq_number: TcpSeqNumber(1),
            ack_number: Some(TcpSeqNumber(2)),
            window_len: 100,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [Some((10, 20)), Some((30, 40)), None],
            timestamp: None,
            payload: b"data",
        };
        let mut buf = emit(&repr);
        let (src, dst) = addrs();
        let mut problems = Vec::new();
        let h = parse(&buf, src, dst, &mut problems).expect("valid TCP");
        assert_eq!(h.flags, TcpFlags::ACK | TcpFlags::PSH);
        assert_eq!(h.options.sack, vec![[10, 20], [30, 40]]);
        assert_eq!(h.payload, b"data");
        assert!(problems.is_empty());

        buf[13] |= (TcpFlags::ECE | TcpFlags::CWR | TcpFlags::URG).bits();
        let h = parse(&buf, src, dst, &mut problems).expect("decodable");
        assert_eq!(
            h.flags.names().collect::<Vec<_>>(),
            ["ACK", "PSH", "URG", "ECE", "CWR"]
        );
        assert_eq!(problems.len(), 1, "checksum now wrong");

        buf[12] = 0x40; // data offset 4 words
        assert!(parse(&buf, src, dst, &mut problems).is_err());
        buf[12] = 0xf0; // 60 bytes of header, more than the buffer
        assert!(parse(&buf[..30], src, dst, &mut problems).is_err());
    }

    #[test]
    fn malformed_options_are_noted() {
        let mut problems = Vec::new();
        let o = options(&[2, 4, 5, 0xb4, 3, 1], &mut problems);
        assert_eq!(o.mss, Some(1460));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].to_string(), "option kind 3");
    }

    #[test]
    fn unknown_kinds_are_skipped() {
        let mut problems = Vec::new();
        // A TCP Fast Open cookie (kind 34), an odd-length timestamp option (ignored), an
        // MPTCP option (kind 30), then a timestamp.
        let raw = [
            34, 6, 1, 2, 3, 4, 8, 6, 0, 0, 0, 0, 30, 3, 0, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9,
        ];
        let o = options(&raw, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!((o.ts_val, o.ts_ecr), (Some(7), Some(9)));

        // Four SACK blocks: the first three are kept.
        let mut sack = vec![5, 34];
        for n in 1..=8u32 {
            sack.extend_from_slice(&n.to_be_bytes());
        }
        let o = options(&sack, &mut problems);
        assert_eq!(o.sack, vec![[1, 2], [3, 4], [5, 6]]);
        assert!(problems.is_empty());

        for bad in [
            &[7, 1][..],
            &[9, 0],
            &[5, 9, 0],
            &[4, 3, 0],
            &[2, 6, 0, 0, 0, 0],
        ] {
            let mut problems = Vec::new();
            options(bad, &mut problems);
            assert_eq!(problems.len(), 1, "{bad:?}");
        }
    }

    /// The options as the dissector read them through smoltcp's `TcpOption::parse`
    /// before it moved to etherparse: the walk above must agree with it on any input.
    fn smoltcp_options(mut raw: &[u8]) -> (TcpOptions, bool) {
        use smoltcp::wire::TcpOption;
        let mut out = TcpOptions::default();
        while !raw.is_empty() {
            let Ok((rest, option)) = TcpOption::parse(raw) else {
                return (out, true);
            };
            match option {
                TcpOption::EndOfList => break,
                TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
                TcpOption::MaxSegmentSize(v) => out.mss = Some(v),
                TcpOption::WindowScale(v) => out.ws = Some(v),
                TcpOption::SackPermitted => out.sack_permitted = true,
                TcpOption::SackRange(ranges) => {
                    out.sack = ranges.iter().flatten().map(|&(l, r)| [l, r]).collect();
                }
                TcpOption::TimeStamp { tsval, tsecr } => {
                    out.ts_val = Some(tsval);
                    out.ts_ecr = Some(tsecr);
                }
            }
            raw = rest;
        }
        (out, false)
    }

    #[test]
    fn options_agree_with_smoltcp_on_random_input() {
        let mut state = 0x2545_f491_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for _ in 0..200_000 {
            let len = (next() % 41) as usize;
            // Mostly small kinds and lengths, so that known options come up often.
            let raw: Vec<u8> = (0..len)
                .map(|_| match next() % 4 {
                    0 => (next() % 10) as u8,
                    1 => [2, 3, 4, 5, 8, 10, 18, 26, 34][(next() % 9) as usize],
                    _ => next() as u8,
                })
                .collect();
            let mut problems = Vec::new();
            let ours = options(&raw, &mut problems);
            let (theirs, failed) = smoltcp_options(&raw);
            assert_eq!(ours, theirs, "{raw:?}");
            assert_eq!(!problems.is_empty(), failed, "{raw:?}");
        }
    }
}
