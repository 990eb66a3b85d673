//! The TCP header and its options (read through smoltcp's `TcpPacket` view).

use smoltcp::wire::{IpAddress, TcpOption, TcpPacket};

use crate::error::DecodeError;
use crate::tcp::TcpOptions;

/// TCP header length without options.
const TCP_MIN_HEADER: usize = 20;

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
    /// Flag bits in header byte 13 (CWR ECE URG ACK PSH RST SYN FIN).
    pub flags: u8,
    /// Window field.
    pub win: u16,
    /// Options, with SACK blocks as sent.
    pub options: TcpOptions,
    /// Payload bytes.
    pub payload: &'a [u8],
}

/// Flag bits of header byte 13.
pub(crate) mod flag {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;
}

impl TcpHeader<'_> {
    /// True when flag bit `f` is set.
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    /// Sequence space this segment occupies: payload plus one for SYN and one for FIN.
    pub fn seg_len(&self) -> u32 {
        let len = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        len.saturating_add(u32::from(self.has(flag::SYN)) + u32::from(self.has(flag::FIN)))
    }

    /// Flag names in the contract's order.
    pub fn flag_names(&self) -> Vec<&'static str> {
        [
            (flag::SYN, "SYN"),
            (flag::ACK, "ACK"),
            (flag::FIN, "FIN"),
            (flag::RST, "RST"),
            (flag::PSH, "PSH"),
            (flag::URG, "URG"),
            (flag::ECE, "ECE"),
            (flag::CWR, "CWR"),
        ]
        .into_iter()
        .filter(|(f, _)| self.has(*f))
        .map(|(_, n)| n)
        .collect()
    }
}

/// Decodes a TCP segment; a bad checksum or malformed options go to `problems`.
pub(crate) fn parse<'a>(
    bytes: &'a [u8],
    src: &IpAddress,
    dst: &IpAddress,
    problems: &mut Vec<DecodeError>,
) -> Result<TcpHeader<'a>, DecodeError> {
    DecodeError::need("TCP header", bytes.len(), TCP_MIN_HEADER)?;
    let view = TcpPacket::new_unchecked(bytes);
    let header_len = usize::from(view.header_len());
    if header_len < TCP_MIN_HEADER {
        return Err(DecodeError::field("data offset", header_len / 4));
    }
    DecodeError::need("TCP header with options", bytes.len(), header_len)?;
    let view = TcpPacket::new_checked(bytes).map_err(|e| DecodeError::Rejected(e.to_string()))?;
    if !view.verify_checksum(src, dst) {
        problems.push(DecodeError::BadChecksum(view.checksum()));
    }
    let options = options(view.options(), problems);
    Ok(TcpHeader {
        src_port: view.src_port(),
        dst_port: view.dst_port(),
        seq: view.seq_number().0.cast_unsigned(),
        ack: view.ack_number().0.cast_unsigned(),
        flags: bytes.get(13).copied().unwrap_or(0),
        win: view.window_len(),
        options,
        payload: view.payload(),
    })
}

fn options(mut raw: &[u8], problems: &mut Vec<DecodeError>) -> TcpOptions {
    let mut out = TcpOptions::default();
    while !raw.is_empty() {
        let Ok((rest, option)) = TcpOption::parse(raw) else {
            problems.push(DecodeError::field(
                "option",
                format!("kind {}", raw.first().copied().unwrap_or(0)),
            ));
            break;
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{Ipv4Address, TcpControl, TcpRepr, TcpSeqNumber, TcpTimestampRepr};

    fn addrs() -> (IpAddress, IpAddress) {
        (
            IpAddress::Ipv4(Ipv4Address::new(10, 88, 1, 2)),
            IpAddress::Ipv4(Ipv4Address::new(10, 88, 0, 1)),
        )
    }

    fn emit(repr: &TcpRepr<'_>) -> Vec<u8> {
        let (src, dst) = addrs();
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut buf),
            &src,
            &dst,
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
        let h = parse(&buf, &src, &dst, &mut problems).expect("valid TCP");
        assert!(problems.is_empty());
        assert_eq!(h.seq, 2_714_066_832);
        assert_eq!(h.flag_names(), vec!["SYN"]);
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
        let h = parse(&buf, &src, &dst, &mut problems).expect("valid TCP");
        assert_eq!(h.flag_names(), vec!["ACK", "PSH"]);
        assert_eq!(h.options.sack, vec![[10, 20], [30, 40]]);
        assert_eq!(h.payload, b"data");
        assert!(problems.is_empty());

        buf[13] |= flag::ECE | flag::CWR | flag::URG;
        let h = parse(&buf, &src, &dst, &mut problems).expect("decodable");
        assert_eq!(h.flag_names(), vec!["ACK", "PSH", "URG", "ECE", "CWR"]);
        assert_eq!(problems.len(), 1, "checksum now wrong");

        buf[12] = 0x40; // data offset 4 words
        assert!(parse(&buf, &src, &dst, &mut problems).is_err());
        buf[12] = 0xf0; // 60 bytes of header, more than the buffer
        assert!(parse(&buf[..30], &src, &dst, &mut problems).is_err());
    }

    #[test]
    fn malformed_options_are_noted() {
        let mut problems = Vec::new();
        let o = options(&[2, 4, 5, 0xb4, 3, 1], &mut problems);
        assert_eq!(o.mss, Some(1460));
        assert_eq!(problems.len(), 1);
    }
}
