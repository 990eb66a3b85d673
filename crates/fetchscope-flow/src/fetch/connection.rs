//! The connection: a smoltcp TCP socket, TLS on top for `https://`, and the bytes moved
//! between them; TCP state changes and the TLS stages are reported as they happen.

use std::net::IpAddr;

use fetchscope_net::{Direction, Frame, Link};
use fetchscope_wire::Dissection;
use rand::Rng;
use rustls::pki_types::ServerName;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, IpEndpoint};

use super::Fetch;
use crate::error::{FailureClass, FetchError};
use crate::event::{EventKind, Phase, TcpStateChange, TlsEvent};
use crate::tls::{TlsClient, TlsProgress};

/// Plaintext read from TCP per step when there is no TLS.
const PLAIN_CHUNK: usize = 16 * 1024;

/// One TCP connection (and its TLS session) to a server.
pub(super) struct Conn {
    /// The smoltcp socket.
    pub tcp: SocketHandle,
    /// The last state reported.
    pub state: tcp::State,
    /// The server's endpoint.
    pub remote: IpEndpoint,
    /// Our port.
    pub local_port: u16,
    /// TLS, for `https://`.
    pub tls: Option<TlsClient>,
    /// ESTABLISHED was seen; the session starts in the next step.
    session_due: bool,
    /// Bytes handed to the socket so far (TCP stream offset).
    pub tx_written: u64,
    /// The peer's FIN arrived (TCP) or its close_notify (TLS).
    pub peer_eof: bool,
    /// Sequence number just past the peer's FIN, once seen.
    pub peer_fin_end: Option<u32>,
    /// The last acknowledgement number we sent.
    pub last_tx_ack: Option<u32>,
    /// Plaintext received and not yet given to HTTP.
    pub plain: Vec<u8>,
    /// The sequence space, derived from the packets.
    pub track: super::track::TcpTrack,
}

impl<L: Link> Fetch<L> {
    /// Opens a TCP connection to `addr` on the target's port.
    pub(super) fn connect(&mut self, addr: IpAddr) -> Result<(), FetchError> {
        self.enter(Phase::Connect);
        let remote = IpEndpoint::new(IpAddress::from(addr), self.target.port);
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
        self.exchange.remote = Some(remote);
        self.conn = Some(Conn {
            tcp,
            state: tcp::State::Closed,
            remote,
            local_port,
            tls: None,
            session_due: false,
            tx_written: 0,
            peer_eof: false,
            peer_fin_end: None,
            last_tx_ack: None,
            plain: Vec::new(),
            track: super::track::TcpTrack::default(),
        });
        self.observe_tcp(Some("connect() called: the SYN is queued"));
        Ok(())
    }

    /// Reports a TCP state change, with `cause` or one derived from the transition.
    pub(super) fn observe_tcp(&mut self, cause: Option<&str>) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let state = self.sockets.get::<tcp::Socket>(conn.tcp).state();
        if state == conn.state {
            return;
        }
        let from = conn.state;
        conn.state = state;
        let cause = cause
            .map(str::to_string)
            .or_else(|| transition_cause(from, state).map(str::to_string));
        self.emit(EventKind::TcpState(TcpStateChange {
            from: from.to_string(),
            to: state.to_string(),
            cause,
        }));
        if state == tcp::State::Established && self.exchange.marks.connect.is_none() {
            self.exchange.marks.connect = Some(self.now());
        }
    }

    pub(super) fn drive_connect(&mut self) -> Result<(), FetchError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        match conn.state {
            // The step that saw the SYN-ACK sent the bare ACK; start the session in the
            // next step, so the three-way handshake shows as three packets, as with a
            // kernel stack (connect() returns, then the application writes).
            tcp::State::Established if conn.session_due => self.start_session(),
            tcp::State::Established => {
                conn.session_due = true;
                Ok(())
            }
            tcp::State::Closed => Err(FetchError::new(
                FailureClass::Connect,
                Phase::Connect,
                "refused",
                format!(
                    "connection refused: {} answered the SYN with a reset (RST); nothing listens on that port",
                    conn.remote
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The connection is up: start TLS, or go straight to the request for `http://`.
    fn start_session(&mut self) -> Result<(), FetchError> {
        if !self.target.tls {
            self.exchange.request_due = true;
            return self.drive_transport();
        }
        self.enter(Phase::Tls);
        let host = self.target.host.clone();
        let server_name = ServerName::try_from(host.clone()).map_err(|e| {
            FetchError::new(
                FailureClass::Tls,
                Phase::Tls,
                "bad-name",
                format!("'{host}' cannot be used as a TLS server name: {e}"),
            )
        })?;
        let tls = TlsClient::new(&self.tls_config, server_name)
            .map_err(|e| FetchError::new(FailureClass::Tls, Phase::Tls, e.kind(), e.to_string()))?;
        if let Some(conn) = self.conn.as_mut() {
            conn.tls = Some(tls);
        }
        self.drive_transport()
    }

    /// Moves bytes between the TCP socket, TLS and HTTP, in both directions.
    pub(super) fn drive_transport(&mut self) -> Result<(), FetchError> {
        if self.exchange.request_due
            && self
                .conn
                .as_ref()
                .is_some_and(|c| c.tls.as_ref().is_none_or(TlsClient::is_complete))
        {
            self.exchange.request_due = false;
            self.queue_request();
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        // Incoming: socket → TLS (or straight to HTTP).
        let mut eof = false;
        let sock = self.sockets.get_mut::<tcp::Socket>(conn.tcp);
        match &mut conn.tls {
            Some(tls) => loop {
                let spare = tls.incoming_spare();
                if spare.is_empty() {
                    break;
                }
                match sock.recv_slice(spare) {
                    Ok(0) => break,
                    Ok(n) => tls.incoming_filled(n),
                    Err(tcp::RecvError::Finished) => {
                        eof = true;
                        break;
                    }
                    Err(tcp::RecvError::InvalidState) => break,
                }
            },
            None => {
                let mut buf = [0u8; PLAIN_CHUNK];
                match sock.recv_slice(&mut buf) {
                    Ok(n) => conn
                        .plain
                        .extend_from_slice(buf.get(..n).unwrap_or_default()),
                    Err(tcp::RecvError::Finished) => eof = true,
                    Err(tcp::RecvError::InvalidState) => {}
                }
            }
        }
        if let Some(tls) = &mut conn.tls {
            let plain = &mut conn.plain;
            let phase = self.phase.max(Phase::Tls);
            let mut progress = Vec::new();
            let r = tls.process_into(&mut |p| plain.extend_from_slice(p), &mut progress);
            self.report_tls(progress);
            r.map_err(|e| FetchError::new(FailureClass::Tls, phase, e.kind(), e.to_string()))?;
        }
        if self.conn.as_ref().is_some_and(|c| !c.plain.is_empty()) {
            self.receive_plaintext()?;
        }
        // The peer's end of the stream — TCP FIN, or TLS close_notify, which ends the
        // response stream like a FIN does — after the plaintext that came before it.
        let peer_closed = self.conn.as_ref().is_some_and(|c| {
            !c.peer_eof && (eof || c.tls.as_ref().is_some_and(TlsClient::peer_closed))
        });
        if peer_closed {
            self.peer_closed_stream()?;
        }
        self.write_tls_outgoing();
        let Some(conn) = self.conn.as_ref() else {
            return Ok(());
        };
        if conn.state == tcp::State::Closed && self.phase < Phase::Teardown {
            let class = if self.phase == Phase::Tls {
                FailureClass::Tls
            } else {
                FailureClass::Http
            };
            return Err(FetchError::new(
                class,
                self.phase,
                "reset",
                format!(
                    "{} reset the connection (RST) during the {} phase",
                    conn.remote, self.phase
                ),
            ));
        }
        Ok(())
    }

    /// Hands TLS's pending ciphertext to the TCP socket, as much as it takes.
    pub(super) fn write_tls_outgoing(&mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let sock = self.sockets.get_mut::<tcp::Socket>(conn.tcp);
        if let Some(tls) = conn.tls.as_mut()
            && !tls.outgoing().is_empty()
            && sock.may_send()
            && let Ok(n) = sock.send_slice(tls.outgoing())
        {
            tls.consume_outgoing(n);
            conn.tx_written += n as u64;
        }
    }

    /// Writes plaintext (for `http://`) straight to the socket.
    pub(super) fn write_plain(&mut self, bytes: &[u8]) -> usize {
        let Some(conn) = self.conn.as_mut() else {
            return 0;
        };
        let sock = self.sockets.get_mut::<tcp::Socket>(conn.tcp);
        let n = sock.send_slice(bytes).unwrap_or(0);
        conn.tx_written += n as u64;
        n
    }

    /// Runs TLS once more (after queueing data or a close_notify) and reports it.
    pub(super) fn process_tls(&mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let Some(tls) = conn.tls.as_mut() else {
            return;
        };
        let plain = &mut conn.plain;
        let mut progress = Vec::new();
        // An error here shows up again, and is reported, in the next drive_transport.
        let _ = tls.process_into(&mut |d| plain.extend_from_slice(d), &mut progress);
        self.report_tls(progress);
    }

    fn report_tls(&mut self, progress: Vec<TlsProgress>) {
        let host = self.target.host.clone();
        for p in progress {
            if let TlsProgress::HandshakeComplete { .. } = &p {
                self.exchange.marks.appconnect = Some(self.now());
                self.exchange.request_due = true;
            }
            let (stage, detail, certs) = match p.into_stage(&host) {
                Ok(s) => s,
                Err(note) => {
                    self.note(note);
                    continue;
                }
            };
            let tls = self.conn.as_ref().and_then(|c| c.tls.as_ref());
            let ev = TlsEvent {
                stage: stage.into(),
                version: tls.and_then(TlsClient::version),
                suite: tls.and_then(TlsClient::suite),
                group: tls.and_then(TlsClient::group),
                alpn: tls.and_then(TlsClient::alpn),
                detail,
                certificates: certs,
            };
            self.emit(EventKind::Tls(ev));
        }
    }

    /// An ICMP "destination unreachable" about our SYN ends the connect at once (the
    /// kernel's connect() fails the same way); one about our DNS query to a server
    /// means nothing listens there.
    pub(super) fn account_icmp(&mut self, d: &Dissection) {
        let (Some(icmp), Some(ip)) = (d.icmp.as_ref(), d.ip.as_ref()) else {
            return;
        };
        let unreachable = matches!((ip.version, icmp.kind), (4, 3) | (6, 1));
        let Some(quoted) = icmp.quoted.as_deref().filter(|_| unreachable) else {
            return;
        };
        let router = ip.src;
        if let Some(conn) = self.conn.as_ref()
            && conn.state == tcp::State::SynSent
        {
            let local = std::net::SocketAddr::new(
                IpAddr::from(self.local_address_for(conn.remote.addr)),
                conn.local_port,
            );
            let remote =
                std::net::SocketAddr::new(IpAddr::from(conn.remote.addr), conn.remote.port);
            if quoted == format!("TCP {local} → {remote}") {
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
        if let Some(e) = self.dns_unreachable(quoted, router, &icmp.name) {
            self.pending_error.get_or_insert(e);
        }
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
        conn.track.segment(f.dir, t);
        let len = u32::try_from(t.payload_len).unwrap_or(u32::MAX);
        match f.dir {
            Direction::Rx => {
                if t.flags.contains(&"FIN") {
                    conn.peer_fin_end = Some(t.seq_raw.wrapping_add(len).wrapping_add(1));
                }
            }
            Direction::Tx => {
                if t.flags.contains(&"ACK") {
                    conn.last_tx_ack = Some(t.ack_raw);
                }
                if let Some(end) = self.exchange.request_end
                    && self.exchange.marks.request_sent.is_none()
                {
                    let last = u64::from(t.seq.saturating_sub(1)) + u64::from(len);
                    if len > 0 && last >= end {
                        self.exchange.marks.request_sent = Some(f.t);
                    }
                }
            }
        }
    }
}

/// Why a TCP state changed, when the transition itself says it.
fn transition_cause(from: tcp::State, to: tcp::State) -> Option<&'static str> {
    use tcp::State::*;
    Some(match (from, to) {
        (SynSent, Established) => "SYN-ACK received; our ACK completes the handshake",
        (SynSent, Closed) => "RST received: connection refused",
        (Established, CloseWait) => "the server's FIN arrived",
        (FinWait1, FinWait2) => "our FIN was acknowledged",
        (FinWait1, Closing) => "the server's FIN crossed ours",
        (FinWait1, TimeWait) => "the server acknowledged our FIN and sent its own",
        (FinWait2, TimeWait) => "the server's FIN arrived; we acknowledge it",
        (Closing, TimeWait) => "our FIN was acknowledged",
        (LastAck, Closed) => "our FIN was acknowledged",
        (_, Closed) => "the connection was reset or aborted",
        _ => return None,
    })
}
