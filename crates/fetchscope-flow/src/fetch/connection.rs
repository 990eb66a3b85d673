//! The connection: a smoltcp TCP socket, the stream bytes moved between it and the
//! session (which runs TLS and HTTP), and the TCP state changes as they happen.

use std::net::{IpAddr, SocketAddr};

use fetchscope_net::{Direction, Frame, Link};
use fetchscope_wire::{Dissection, TcpFlags, TcpSpace};
use rand::Rng;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, IpEndpoint};

use super::Fetch;
use super::at;
use fetchscope_core::TcpState;
use fetchscope_core::error::{FailureClass, FetchError};
use fetchscope_core::event::{Phase, TcpStateChange};
use fetchscope_core::session::SessionDriver;
use fetchscope_core::session::{ReadOutcome, SessionInput};
use fetchscope_core::tcp_state::Stack;

/// Plaintext read from TCP per step when there is no TLS.
const PLAIN_CHUNK: usize = 16 * 1024;

/// One TCP connection to a server (its TLS session and stream bytes are the session's).
pub(super) struct Conn {
    /// The smoltcp socket.
    pub tcp: SocketHandle,
    /// The last state reported.
    pub state: TcpState,
    /// The server's endpoint.
    pub remote: IpEndpoint,
    /// Our port.
    pub local_port: u16,
    /// ESTABLISHED was seen; the session starts in the next step.
    session_due: bool,
    /// Sequence number just past the peer's FIN, once seen.
    pub peer_fin_end: Option<u32>,
    /// The last acknowledgement number we sent.
    pub last_tx_ack: Option<u32>,
    /// Retransmissions we had sent on the connection when the request was queued.
    pub retransmissions_before: u32,
}

impl<L: Link> Fetch<L> {
    /// Opens a TCP connection to `remote`.
    pub(super) fn connect(&mut self, remote: SocketAddr) -> Result<(), FetchError> {
        let addr = remote.ip();
        let remote = IpEndpoint::new(IpAddress::from(addr), remote.port());
        // No address of the server's IP version: nothing can be sent (smoltcp would
        // answer its own SYN with a RST, which would read like a refusal).
        if !self
            .cfg
            .addrs
            .iter()
            .any(|a| a.address().version() == remote.addr.version())
        {
            let (version, have) = if addr.is_ipv6() {
                ("IPv6", "IPv4")
            } else {
                ("IPv4", "IPv6")
            };
            let advice = match (addr.is_ipv6(), self.cfg.conditions.is_lab()) {
                (true, true) => "run with --ipv6 to give the lab's stack an IPv6 address".to_string(),
                (true, false) => {
                    "give the stack an IPv6 address with a second --addr (e.g. --addr fd00:88:1::2/64)".to_string()
                }
                (false, _) => "give the stack an IPv4 address with --addr".to_string(),
            };
            return Err(FetchError::new(
                FailureClass::Connect,
                Phase::Connect,
                "no-address-family",
                format!(
                    "cannot connect to {remote}: it is an {version} address and the stack has only {have} addresses, so nothing was sent; {advice}"
                ),
            ));
        }
        let rx = tcp::SocketBuffer::new(vec![0; self.cfg.tcp_rx_buffer]);
        let tx = tcp::SocketBuffer::new(vec![0; self.cfg.tcp_tx_buffer]);
        let mut sock = tcp::Socket::new(rx, tx);
        // Like requests (urllib3 sets TCP_NODELAY): small writes leave at once.
        sock.set_nagle_enabled(false);
        let local_port: u16 = self.rng.random_range(49152..=65535);
        let local = self.local_address_for(remote.addr);
        sock.connect(self.iface.context(), remote, local_port)
            .map_err(|e| {
                FetchError::new(
                    FailureClass::Setup,
                    Phase::Connect,
                    "setup",
                    format!(
                        "cannot connect to {remote} from {local}: {e} (is there a route? check --addr and --gateway)"
                    ),
                )
            })?;
        let tcp = self.sockets.add(sock);
        self.conn = Some(Conn {
            tcp,
            state: TcpState::Closed,
            remote,
            local_port,
            session_due: false,
            peer_fin_end: None,
            last_tx_ack: None,
            retransmissions_before: 0,
        });
        self.observe_tcp(Some("connect() called: the SYN is queued"));
        Ok(())
    }

    /// Reports a TCP state change, with `cause` or one derived from the transition.
    pub(super) fn observe_tcp(&mut self, cause: Option<&str>) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let state =
            crate::stack_state::tcp_state(self.sockets.get::<tcp::Socket>(conn.tcp).state());
        if state == conn.state {
            return;
        }
        let from = conn.state;
        conn.state = state;
        let change = TcpStateChange::new(from, state, cause, Stack::Userspace);
        // A state change starts nothing by itself: no command follows it.
        let _ = self.tell(SessionInput::TcpState(change));
    }

    pub(super) fn drive_connect(&mut self) -> Result<(), FetchError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        match conn.state {
            // The step that saw the SYN-ACK sent the bare ACK; start the session in the
            // next step, so the three-way handshake shows as three packets, as with a
            // kernel stack (connect() returns, then the application writes).
            TcpState::Established if conn.session_due => {
                self.tell(SessionInput::Connected)?;
                self.drive_transport()
            }
            TcpState::Established => {
                conn.session_due = true;
                Ok(())
            }
            TcpState::Closed => Err(self.session.refused_error()),
            _ => Ok(()),
        }
    }

    /// Moves bytes between the TCP socket and the session, in both directions.
    pub(super) fn drive_transport(&mut self) -> Result<(), FetchError> {
        self.tell(SessionInput::Ready)?;
        let Some(conn) = self.conn.as_ref() else {
            return Ok(());
        };
        // Incoming: as much as TLS takes (or one chunk of plaintext).
        let sock = self.sockets.get_mut::<tcp::Socket>(conn.tcp);
        let eof = self
            .session
            .read_stream(PLAIN_CHUNK, |buf| {
                Ok::<_, std::convert::Infallible>(match sock.recv_slice(buf) {
                    Ok(0) | Err(tcp::RecvError::InvalidState) => ReadOutcome::Empty,
                    Ok(n) => ReadOutcome::Bytes(n),
                    Err(tcp::RecvError::Finished) => ReadOutcome::End,
                })
            })
            .unwrap_or_else(|never| match never {});
        self.tell(SessionInput::StreamRead { eof })?;
        self.write_outgoing();
        let Some(conn) = self.conn.as_ref() else {
            return Ok(());
        };
        if conn.state == TcpState::Closed && self.session.phase() < Phase::Teardown {
            return Err(self.session.reset_error(None));
        }
        Ok(())
    }

    /// Hands the session's pending stream bytes to the TCP socket, as much as it takes.
    pub(super) fn write_outgoing(&mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let sock = self.sockets.get_mut::<tcp::Socket>(conn.tcp);
        let out = self.session.outgoing();
        if !out.is_empty()
            && sock.may_send()
            && let Ok(n) = sock.send_slice(out)
        {
            self.session.consume_outgoing(n);
        }
    }

    /// An ICMP "destination unreachable" about our SYN ends the connect at once (the
    /// kernel's connect() fails the same way); one about our DNS query to a server
    /// means nothing listens there. ("Fragmentation needed" is no unreachability: see
    /// [`Fetch::account_too_big`].)
    /// `packet` is the received IP packet the dissection `d` decodes.
    pub(super) fn account_icmp(&mut self, packet: &[u8], d: &Dissection) {
        let (Some(icmp), Some(ip)) = (d.icmp.as_ref(), d.ip.as_ref()) else {
            return;
        };
        let unreachable = matches!((ip.version, icmp.kind), (4, 3) | (6, 1))
            && !too_big(ip.version, icmp.kind, icmp.code);
        if !unreachable {
            return;
        }
        let router = ip.src;
        if let Some(conn) = self.conn.as_ref()
            && conn.state == TcpState::SynSent
        {
            let (local, remote) = self.endpoints(conn);
            if icmp_quote(packet)
                .and_then(quoted_tcp_of)
                .is_some_and(|q| q.src == local && q.dst == remote)
            {
                self.pending_error.get_or_insert(FetchError::new(
                    FailureClass::Connect,
                    Phase::Connect,
                    "unreachable",
                    format!(
                        "{remote} is unreachable: {router} answered our SYN with ICMP {} (check the address, --gateway and the routes)",
                        icmp.name
                    ),
                ));
            }
        }
        if let Some(e) = icmp_quote(packet)
            .and_then(quoted_udp_of)
            .and_then(|q| self.dns_unreachable(q, router, &icmp.name))
        {
            self.pending_error.get_or_insert(e);
        }
    }

    /// The connection's sequence space, as the dissector's tracker has it from the
    /// packets decoded so far (empty before the connection).
    pub(super) fn tcp_space(&self) -> TcpSpace {
        self.conn
            .as_ref()
            .and_then(|c| {
                let (local, remote) = self.endpoints(c);
                self.packets.tcp_space(local, remote)
            })
            .unwrap_or_default()
    }

    /// The connection's own endpoints: ours, then the server's.
    fn endpoints(&self, conn: &Conn) -> (std::net::SocketAddr, std::net::SocketAddr) {
        (
            std::net::SocketAddr::new(
                IpAddr::from(self.local_address_for(conn.remote.addr)),
                conn.local_port,
            ),
            std::net::SocketAddr::new(IpAddr::from(conn.remote.addr), conn.remote.port),
        )
    }

    /// An ICMP "fragmentation needed" (ICMPv6 "packet too big") in the received IP
    /// packet `packet` that quotes one of the connection's own segments lowers the
    /// stack's MTU to the path MTU it names, at once (before the stack sends anything
    /// more); the returned note says so, for the trace right after the packet.
    pub(super) fn account_too_big(&mut self, packet: &[u8]) -> Option<String> {
        let report = too_big_report(packet)?;
        let conn = self.conn.as_ref()?;
        let (local, remote) = self.endpoints(conn);
        if report.quoted.src != local || report.quoted.dst != remote {
            return None;
        }
        let mtu = next_path_mtu(
            report.version,
            report.reported,
            report.quoted.ip_len,
            self.dev.mtu(),
        )?;
        Some(self.lower_path_mtu(mtu, remote.ip(), report.router))
    }

    /// Lowers the stack's MTU to `mtu`, the path MTU to `remote` that `router` reported,
    /// and returns the note that says so.
    ///
    /// smoltcp sizes each TCP segment it sends, a retransmission included, from its
    /// interface's MTU (and the peer's MSS) at that moment, but reads the MTU only when
    /// the interface is made: so the interface is made anew over the device, which now
    /// reports `mtu`, with the same addresses and routes; the sockets keep their state.
    /// The MTU belongs to the whole interface: fine while the fetch has one connection
    /// at a time (a redirect to another host keeps the lower MTU).
    fn lower_path_mtu(&mut self, mtu: usize, remote: IpAddr, router: IpAddr) -> String {
        self.dev.limit_mtu(Some(mtu));
        let seed = self.rng.random();
        let now = self.now();
        match super::new_interface(&mut self.dev, &self.cfg, seed, now) {
            Ok(iface) => self.iface = iface,
            Err(e) => {
                self.pending_error.get_or_insert(e);
            }
        }
        let headers = if remote.is_ipv4() { 40 } else { 60 };
        format!(
            "path MTU to {remote} is {mtu} bytes ({router} said so with ICMP): segments now at most {} bytes, and what the router dropped goes again at that size when the retransmission timer runs out",
            mtu.saturating_sub(headers)
        )
    }

    /// Teardown and timing bookkeeping from the connection's own TCP segments.
    pub(super) fn account_tcp(&mut self, f: &Frame, d: &Dissection) {
        let Some(t) = d.tcp.as_ref() else { return };
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let ours = match f.dir {
            Direction::Tx => t.src_port == conn.local_port,
            Direction::Rx => t.dst_port == conn.local_port,
        };
        if !ours {
            return;
        }
        let len = u32::try_from(t.payload_len).unwrap_or(u32::MAX);
        match f.dir {
            Direction::Rx => {
                if t.flags.contains(TcpFlags::FIN) {
                    conn.peer_fin_end = Some(t.seq_raw.wrapping_add(len).wrapping_add(1));
                }
            }
            Direction::Tx => {
                if t.flags.contains(TcpFlags::ACK) {
                    conn.last_tx_ack = Some(t.ack_raw);
                }
                let end = u64::from(t.seq.saturating_sub(1)) + u64::from(len);
                self.session.segment_sent(at(f.t), end, u64::from(len));
            }
        }
    }
}

/// True for ICMP "fragmentation needed" (type 3 code 4) and ICMPv6 "packet too big"
/// (type 2).
fn too_big(version: u8, kind: u8, code: u8) -> bool {
    matches!((version, kind, code), (4, 3, 4) | (6, 2, _))
}

/// The smallest path MTU fetchscope accepts from ICMP: 576 bytes for IPv4 (every host
/// must take datagrams that large; smaller reports are a known attack), 1280 for IPv6
/// (RFC 8201).
fn min_path_mtu(version: u8) -> usize {
    if version == 6 { 1280 } else { 576 }
}

/// The MTU plateaus of RFC 1191, for a router that reports no next-hop MTU (zero).
const MTU_PLATEAUS: [usize; 10] = [32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

/// The MTU to use after an ICMP "too big" for a packet of `quoted_len` bytes reporting
/// `reported` (IPv4 routers before RFC 1191 report 0: then the next plateau below the
/// packet's size), or `None` when it changes nothing: not below `current`, or a report
/// that the quoted packet would have fit (not believable). Never below
/// [`min_path_mtu`].
fn next_path_mtu(
    version: u8,
    reported: Option<u32>,
    quoted_len: usize,
    current: usize,
) -> Option<usize> {
    let reported = reported.and_then(|m| usize::try_from(m).ok()).unwrap_or(0);
    let mtu = if reported == 0 && version == 4 {
        MTU_PLATEAUS.into_iter().find(|&p| p < quoted_len)?
    } else {
        if quoted_len > 0 && reported >= quoted_len {
            return None;
        }
        reported
    };
    let mtu = mtu.max(min_path_mtu(version));
    (mtu < current).then_some(mtu)
}

/// The TCP segment or UDP datagram an ICMP error quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct QuotedTcp {
    /// Its source endpoint (ours, for a segment we sent).
    pub src: std::net::SocketAddr,
    /// Its destination.
    pub dst: std::net::SocketAddr,
    /// The length of its IP packet, as its header says.
    ip_len: usize,
}

/// An ICMP "fragmentation needed" or ICMPv6 "packet too big" about a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TooBig {
    /// 4 or 6.
    version: u8,
    /// Who sent it.
    router: IpAddr,
    /// The next-hop MTU it reports (0 from IPv4 routers before RFC 1191).
    reported: Option<u32>,
    /// The segment it quotes.
    quoted: QuotedTcp,
}

/// The "too big" report in the received IP packet `packet`, when it is one (with good IP
/// and ICMP checksums: a corrupted one is dropped by the stack too) quoting a TCP
/// segment.
fn too_big_report(packet: &[u8]) -> Option<TooBig> {
    use smoltcp::wire::{Icmpv4Packet, Icmpv6Packet, Ipv4Packet, Ipv6Packet};
    match packet.first()? >> 4 {
        4 => {
            let ip = Ipv4Packet::new_checked(packet).ok()?;
            if ip.next_header() != smoltcp::wire::IpProtocol::Icmp || !ip.verify_checksum() {
                return None;
            }
            let icmp = Icmpv4Packet::new_checked(ip.payload()).ok()?;
            if !icmp.verify_checksum() || !too_big(4, icmp.msg_type().into(), icmp.msg_code()) {
                return None;
            }
            let body = ip.payload();
            Some(TooBig {
                version: 4,
                router: IpAddr::V4(ip.src_addr()),
                reported: Some(u32::from(u16::from_be_bytes([
                    *body.get(6)?,
                    *body.get(7)?,
                ]))),
                quoted: quoted_tcp_of(body.get(8..)?)?,
            })
        }
        6 => {
            let ip = Ipv6Packet::new_checked(packet).ok()?;
            if ip.next_header() != smoltcp::wire::IpProtocol::Icmpv6 {
                return None;
            }
            let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
            if !icmp.verify_checksum(&ip.src_addr(), &ip.dst_addr())
                || !too_big(6, icmp.msg_type().into(), icmp.msg_code())
            {
                return None;
            }
            let body = ip.payload();
            Some(TooBig {
                version: 6,
                router: IpAddr::V6(ip.src_addr()),
                reported: Some(u32::from_be_bytes(body.get(4..8)?.try_into().ok()?)),
                quoted: quoted_tcp_of(body.get(8..)?)?,
            })
        }
        _ => None,
    }
}

/// The packet quoted by the ICMP or ICMPv6 message that the IP packet `packet` carries
/// (the bytes after the 8-byte ICMP header).
pub(super) fn icmp_quote(packet: &[u8]) -> Option<&[u8]> {
    match packet.first()? >> 4 {
        4 if *packet.get(9)? == 1 => packet.get(usize::from(packet.first()? & 0x0f) * 4 + 8..),
        6 if *packet.get(6)? == 58 => packet.get(48..),
        _ => None,
    }
}

/// The TCP segment whose start `inner` (the packet an ICMP error quotes) holds, when it
/// is long enough to name the ports.
fn quoted_tcp_of(inner: &[u8]) -> Option<QuotedTcp> {
    quoted_flow_of(inner, 6)
}

/// The UDP datagram whose start `inner` (the packet an ICMP error quotes) holds.
pub(super) fn quoted_udp_of(inner: &[u8]) -> Option<QuotedTcp> {
    quoted_flow_of(inner, 17)
}

/// The endpoints of the quoted packet `inner` when it carries IP protocol `proto` (6 TCP,
/// 17 UDP: both start with the two ports).
fn quoted_flow_of(inner: &[u8], proto: u8) -> Option<QuotedTcp> {
    let word = |b: &[u8], at: usize| Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]));
    let (src, dst, ip_len, tcp): (IpAddr, IpAddr, usize, &[u8]) = match inner.first()? >> 4 {
        4 => {
            let header = usize::from(inner.first()? & 0x0f) * 4;
            if header < 20 || *inner.get(9)? != proto {
                return None;
            }
            let src: [u8; 4] = inner.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = inner.get(16..20)?.try_into().ok()?;
            (
                src.into(),
                dst.into(),
                usize::from(word(inner, 2)?),
                inner.get(header..)?,
            )
        }
        6 => {
            if *inner.get(6)? != proto {
                return None;
            }
            let src: [u8; 16] = inner.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = inner.get(24..40)?.try_into().ok()?;
            (
                src.into(),
                dst.into(),
                40 + usize::from(word(inner, 4)?),
                inner.get(40..)?,
            )
        }
        _ => return None,
    };
    Some(QuotedTcp {
        src: std::net::SocketAddr::new(src, word(tcp, 0)?),
        dst: std::net::SocketAddr::new(dst, word(tcp, 2)?),
        ip_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{Icmpv4Packet, Icmpv6Packet, Ipv4Packet, Ipv6Address};

    /// The first 28 bytes of a 1500-byte TCP segment from 10.88.1.2:50000 to
    /// 10.88.0.1:443, as a router quotes it.
    fn quoted_v4() -> Vec<u8> {
        let mut q = vec![0u8; 28];
        q[0] = 0x45;
        q[2..4].copy_from_slice(&1500u16.to_be_bytes());
        q[6] = 0x40; // DF
        q[8] = 64;
        q[9] = 6;
        q[12..16].copy_from_slice(&[10, 88, 1, 2]);
        q[16..20].copy_from_slice(&[10, 88, 0, 1]);
        q[20..22].copy_from_slice(&50000u16.to_be_bytes());
        q[22..24].copy_from_slice(&443u16.to_be_bytes());
        q
    }

    /// An IPv4 packet from the router 10.88.1.1 carrying ICMP type/code with `mtu`,
    /// quoting `quoted`, checksums filled in.
    fn icmp_v4(kind: u8, code: u8, mtu: u16, quoted: &[u8]) -> Vec<u8> {
        let mut icmp = vec![0u8; 8];
        icmp[0] = kind;
        icmp[1] = code;
        icmp[6..8].copy_from_slice(&mtu.to_be_bytes());
        icmp.extend_from_slice(quoted);
        Icmpv4Packet::new_unchecked(&mut icmp[..]).fill_checksum();
        let mut ip = vec![0u8; 20];
        ip[0] = 0x45;
        let total = u16::try_from(20 + icmp.len()).unwrap();
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[8] = 64;
        ip[9] = 1;
        ip[12..16].copy_from_slice(&[10, 88, 1, 1]);
        ip[16..20].copy_from_slice(&[10, 88, 1, 2]);
        ip.extend_from_slice(&icmp);
        Ipv4Packet::new_unchecked(&mut ip[..]).fill_checksum();
        ip
    }

    #[test]
    fn fragmentation_needed_quoting_our_segment_is_read() {
        let packet = icmp_v4(3, 4, 1280, &quoted_v4());
        let report = too_big_report(&packet).expect("a too-big report");
        assert_eq!(report.version, 4);
        assert_eq!(report.router, "10.88.1.1".parse::<IpAddr>().unwrap());
        assert_eq!(report.reported, Some(1280));
        assert_eq!(
            report.quoted,
            QuotedTcp {
                src: "10.88.1.2:50000".parse().unwrap(),
                dst: "10.88.0.1:443".parse().unwrap(),
                ip_len: 1500,
            }
        );
        // The same bytes as a quote for the unreachable check.
        let q = icmp_quote(&packet).and_then(quoted_tcp_of);
        assert_eq!(q, Some(report.quoted));
    }

    #[test]
    fn a_quoted_udp_datagram_is_read_as_endpoints() {
        // A port unreachable quoting our DNS query (10.88.1.2:50000 → 10.88.0.1:443 with
        // the protocol set to UDP): the DNS stub compares these endpoints, not text.
        let mut udp = quoted_v4();
        udp[9] = 17;
        let packet = icmp_v4(3, 3, 0, &udp);
        let q = icmp_quote(&packet)
            .and_then(quoted_udp_of)
            .expect("a UDP quote");
        assert_eq!(q.src, "10.88.1.2:50000".parse().unwrap());
        assert_eq!(q.dst, "10.88.0.1:443".parse().unwrap());
        assert_eq!(icmp_quote(&packet).and_then(quoted_tcp_of), None);
        assert_eq!(
            icmp_quote(&icmp_v4(3, 3, 0, &quoted_v4())).and_then(quoted_udp_of),
            None
        );
    }

    #[test]
    fn other_icmp_and_damaged_reports_are_not_too_big() {
        // Port unreachable is not "too big".
        assert_eq!(too_big_report(&icmp_v4(3, 3, 0, &quoted_v4())), None);
        // A corrupted ICMP checksum: the stack drops it, and so does this.
        let mut bad = icmp_v4(3, 4, 1280, &quoted_v4());
        bad[30] ^= 0xff;
        assert_eq!(too_big_report(&bad), None);
        // A quote that is not TCP, or too short to name the ports.
        let mut udp = quoted_v4();
        udp[9] = 17;
        assert_eq!(too_big_report(&icmp_v4(3, 4, 1280, &udp)), None);
        assert_eq!(
            too_big_report(&icmp_v4(3, 4, 1280, &quoted_v4()[..22])),
            None
        );
        assert_eq!(too_big_report(&[]), None);
        assert_eq!(too_big_report(&[0x45]), None);
    }

    #[test]
    fn packet_too_big_over_ipv6_is_read() {
        let (router, us, server) = (
            Ipv6Address::new(0xfd00, 0x88, 1, 0, 0, 0, 0, 1),
            Ipv6Address::new(0xfd00, 0x88, 1, 0, 0, 0, 0, 2),
            Ipv6Address::new(0xfd00, 0x88, 0, 0, 0, 0, 0, 1),
        );
        let mut quoted = vec![0u8; 44];
        quoted[0] = 0x60;
        quoted[4..6].copy_from_slice(&1460u16.to_be_bytes());
        quoted[6] = 6;
        quoted[7] = 64;
        quoted[8..24].copy_from_slice(&us.octets());
        quoted[24..40].copy_from_slice(&server.octets());
        quoted[40..42].copy_from_slice(&50000u16.to_be_bytes());
        quoted[42..44].copy_from_slice(&443u16.to_be_bytes());
        let mut icmp = vec![0u8; 8];
        icmp[0] = 2;
        icmp[4..8].copy_from_slice(&1280u32.to_be_bytes());
        icmp.extend_from_slice(&quoted);
        Icmpv6Packet::new_unchecked(&mut icmp[..]).fill_checksum(&router, &us);
        let mut ip = vec![0u8; 40];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&u16::try_from(icmp.len()).unwrap().to_be_bytes());
        ip[6] = 58;
        ip[7] = 64;
        ip[8..24].copy_from_slice(&router.octets());
        ip[24..40].copy_from_slice(&us.octets());
        ip.extend_from_slice(&icmp);
        let report = too_big_report(&ip).expect("a too-big report");
        assert_eq!(report.version, 6);
        assert_eq!(report.reported, Some(1280));
        assert_eq!(report.quoted.ip_len, 1500);
        assert_eq!(
            report.quoted.src,
            std::net::SocketAddr::new(IpAddr::V6(us), 50000)
        );
    }

    #[test]
    fn the_path_mtu_only_goes_down_and_never_below_the_minimum() {
        assert_eq!(next_path_mtu(4, Some(1280), 1500, 1500), Some(1280));
        // Not lower than what the stack uses already.
        assert_eq!(next_path_mtu(4, Some(1280), 1500, 1280), None);
        assert_eq!(next_path_mtu(4, Some(1400), 1500, 1280), None);
        // A report the quoted packet would have fit is not believed.
        assert_eq!(next_path_mtu(4, Some(1500), 1500, 1500), None);
        // Tiny reports stop at 576 (IPv4) and 1280 (IPv6).
        assert_eq!(next_path_mtu(4, Some(68), 1500, 1500), Some(576));
        assert_eq!(next_path_mtu(6, Some(1000), 1500, 1500), Some(1280));
        // A router before RFC 1191 says 0: the next plateau below the packet's size.
        assert_eq!(next_path_mtu(4, Some(0), 1500, 1500), Some(1492));
        assert_eq!(next_path_mtu(4, Some(0), 1492, 1492), Some(1006));
    }
}
