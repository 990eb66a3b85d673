//! `TCP_INFO`: the kernel's view of a TCP connection (what `ss -ti` prints).
//!
//! The structure grew over kernel versions; the kernel copies as much as both sides know
//! and says how much. Fields beyond that length are `None`. Offsets follow
//! `include/uapi/linux/tcp.h`.

use std::os::fd::BorrowedFd;

use fetchscope_core::TcpState;
use serde::Serialize;

/// `tcpi_options` bits.
const TCPI_OPT_TIMESTAMPS: u8 = 1;
const TCPI_OPT_SACK: u8 = 2;
const TCPI_OPT_WSCALE: u8 = 4;
const TCPI_OPT_ECN: u8 = 8;

/// A snapshot of `struct tcp_info`, in the units the kernel uses (times in µs unless
/// the name says otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TcpInfo {
    /// The connection state, RFC 793 name (`ESTABLISHED`, `FIN-WAIT-1`, ...).
    pub state: String,
    /// The state as Linux numbers it (`TCP_ESTABLISHED` = 1, ...).
    #[serde(skip)]
    pub state_code: u8,
    /// Congestion-avoidance state (0 open, 1 disorder, 2 CWR, 3 recovery, 4 loss).
    pub ca_state: u8,
    /// Retransmissions of the current unacknowledged data (the RTO back-off count).
    pub retransmits: u8,
    /// Options negotiated in the handshake: `timestamps`, `sack`, `wscale`, `ecn`.
    pub options: Vec<&'static str>,
    /// Our send window scale (the peer's shift), when window scaling is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snd_wscale: Option<u8>,
    /// Our receive window scale (our shift), when window scaling is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcv_wscale: Option<u8>,
    /// Retransmission timeout (µs).
    pub rto_us: u32,
    /// Delayed-ACK timeout (µs).
    pub ato_us: u32,
    /// Sender maximum segment size.
    pub snd_mss: u32,
    /// Largest segment received (an estimate of the peer's MSS).
    pub rcv_mss: u32,
    /// Segments sent and not yet acknowledged.
    pub unacked: u32,
    /// Segments currently marked lost.
    pub lost: u32,
    /// Segments currently retransmitted and unacknowledged.
    pub retrans: u32,
    /// Path MTU.
    pub pmtu: u32,
    /// Smoothed round-trip time (µs).
    pub rtt_us: u32,
    /// Round-trip time variation (µs).
    pub rttvar_us: u32,
    /// Slow-start threshold (segments; very large = not set).
    pub snd_ssthresh: u32,
    /// Congestion window (segments).
    pub snd_cwnd: u32,
    /// The MSS we advertised.
    pub advmss: u32,
    /// Receiver-side RTT estimate (µs; 0 = none).
    pub rcv_rtt_us: u32,
    /// Receive-buffer space the kernel plans for (autotuning).
    pub rcv_space: u32,
    /// Retransmitted segments over the connection's life.
    pub total_retrans: u32,
    /// Bytes the peer acknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_acked: Option<u64>,
    /// Bytes received in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    /// Segments sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segs_out: Option<u32>,
    /// Segments received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segs_in: Option<u32>,
    /// Minimum RTT seen (µs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_rtt_us: Option<u32>,
    /// Segments with data received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_segs_in: Option<u32>,
    /// Segments with data sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_segs_out: Option<u32>,
    /// Data bytes sent, retransmissions included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    /// Data bytes retransmitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_retrans: Option<u64>,
    /// Duplicate segments reported by D-SACK.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dsack_dups: Option<u32>,
    /// Out-of-order packets received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcv_ooopack: Option<u32>,
    /// The peer's advertised window after scaling (bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snd_wnd: Option<u32>,
    /// Our advertised window after scaling (bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcv_wnd: Option<u32>,
    /// RTO timeouts over the connection's life (SYN included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_rto: Option<u16>,
}

/// The RFC 793 name of a Linux `TCP_*` state number ([`TcpState::from_linux`]'s
/// name), `NEW-SYN-RECEIVED` for a request socket's `TCP_NEW_SYN_RECV` (12), `UNKNOWN`
/// for any other number.
pub fn state_name(state: u8) -> &'static str {
    match TcpState::from_linux(state) {
        Some(s) => s.name(),
        None if state == 12 => "NEW-SYN-RECEIVED",
        None => "UNKNOWN",
    }
}

/// Reads `TCP_INFO` of a TCP socket.
pub fn read(fd: BorrowedFd<'_>) -> std::io::Result<TcpInfo> {
    let mut buf = [0u8; 512];
    let n = crate::sys::getsockopt_bytes(fd, libc::IPPROTO_TCP, libc::TCP_INFO, &mut buf)?;
    parse(buf.get(..n).unwrap_or_default())
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidData))
}

/// Decodes the bytes the kernel returned; `None` if even the oldest layout (104 bytes) is
/// not there.
pub fn parse(b: &[u8]) -> Option<TcpInfo> {
    let u8_at = |o: usize| b.get(o).copied();
    let u16_at = |o: usize| b.get(o..o + 2).map(|s| u16::from_ne_bytes([s[0], s[1]]));
    let u32_at = |o: usize| {
        b.get(o..o + 4)
            .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8).map(|s| {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_ne_bytes(a)
        })
    };
    if b.len() < 104 {
        return None;
    }
    let opts = u8_at(5)?;
    let wscale = u8_at(6)?;
    let mut options = Vec::new();
    for (bit, name) in [
        (TCPI_OPT_TIMESTAMPS, "timestamps"),
        (TCPI_OPT_SACK, "sack"),
        (TCPI_OPT_WSCALE, "wscale"),
        (TCPI_OPT_ECN, "ecn"),
    ] {
        if opts & bit != 0 {
            options.push(name);
        }
    }
    let ws_on = opts & TCPI_OPT_WSCALE != 0;
    Some(TcpInfo {
        state: state_name(u8_at(0)?).to_string(),
        state_code: u8_at(0)?,
        ca_state: u8_at(1)?,
        retransmits: u8_at(2)?,
        options,
        // Bit-fields: snd_wscale in the low nibble, rcv_wscale in the high one (GCC's
        // little-endian layout; the kernel is built the same way).
        snd_wscale: ws_on.then_some(wscale & 0x0f),
        rcv_wscale: ws_on.then_some(wscale >> 4),
        rto_us: u32_at(8)?,
        ato_us: u32_at(12)?,
        snd_mss: u32_at(16)?,
        rcv_mss: u32_at(20)?,
        unacked: u32_at(24)?,
        lost: u32_at(32)?,
        retrans: u32_at(36)?,
        pmtu: u32_at(60)?,
        rtt_us: u32_at(68)?,
        rttvar_us: u32_at(72)?,
        snd_ssthresh: u32_at(76)?,
        snd_cwnd: u32_at(80)?,
        advmss: u32_at(84)?,
        rcv_rtt_us: u32_at(92)?,
        rcv_space: u32_at(96)?,
        total_retrans: u32_at(100)?,
        bytes_acked: u64_at(120),
        bytes_received: u64_at(128),
        segs_out: u32_at(136),
        segs_in: u32_at(140),
        min_rtt_us: u32_at(148),
        data_segs_in: u32_at(152),
        data_segs_out: u32_at(156),
        bytes_sent: u64_at(200),
        bytes_retrans: u64_at(208),
        dsack_dups: u32_at(216),
        rcv_ooopack: u32_at(224),
        snd_wnd: u32_at(228),
        rcv_wnd: u32_at(232),
        total_rto: u16_at(240),
    })
}

impl TcpInfo {
    /// One line for people, like `ss -ti`.
    pub fn brief(&self) -> String {
        let ws = match (self.snd_wscale, self.rcv_wscale) {
            (Some(s), Some(r)) => format!(" wscale {s},{r}"),
            _ => String::new(),
        };
        format!(
            "{} rtt {:.3}/{:.3} ms rto {} ms cwnd {} mss {}/{} retrans {}/{} options [{}]{ws}",
            self.state,
            f64::from(self.rtt_us) / 1000.0,
            f64::from(self.rttvar_us) / 1000.0,
            self.rto_us / 1000,
            self.snd_cwnd,
            self.snd_mss,
            self.rcv_mss,
            self.retransmits,
            self.total_retrans,
            self.options.join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_short_is_none() {
        assert!(parse(&[0; 100]).is_none());
    }

    #[test]
    fn decodes_the_fields_at_their_offsets() {
        let mut b = vec![0u8; 160];
        b[0] = 1;
        b[5] = TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE;
        b[6] = 0x7a; // snd 10, rcv 7
        b[8..12].copy_from_slice(&204_000u32.to_ne_bytes());
        b[16..20].copy_from_slice(&1448u32.to_ne_bytes());
        b[68..72].copy_from_slice(&85u32.to_ne_bytes());
        b[80..84].copy_from_slice(&10u32.to_ne_bytes());
        b[100..104].copy_from_slice(&2u32.to_ne_bytes());
        b[136..140].copy_from_slice(&12u32.to_ne_bytes());
        let t = parse(&b).unwrap();
        assert_eq!(t.state, "ESTABLISHED");
        assert_eq!(t.options, ["timestamps", "sack", "wscale"]);
        assert_eq!((t.snd_wscale, t.rcv_wscale), (Some(10), Some(7)));
        assert_eq!(
            (t.rto_us, t.snd_mss, t.rtt_us, t.snd_cwnd),
            (204_000, 1448, 85, 10)
        );
        assert_eq!(t.total_retrans, 2);
        assert_eq!(t.segs_out, Some(12));
        assert_eq!(t.bytes_sent, None, "beyond what the kernel returned");
    }

    #[test]
    fn reads_a_real_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        use std::os::fd::AsFd;
        let t = read(c.as_fd()).unwrap();
        assert_eq!(t.state, "ESTABLISHED");
        assert!(t.snd_mss > 0);
    }
}
