//! The DNS stub: a query over a smoltcp UDP socket, retries with backoff across the
//! servers, answers judged by id, port and question, and a retry over TCP when the
//! answer is truncated (TC bit).

use std::net::{IpAddr, SocketAddr};

use fetchscope_net::Link;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use rand::Rng;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpAddress;

use super::Fetch;
use crate::dns::{AnswerVerdict, DnsAnswer, DnsQuery, check_answer, rcode_name};
use crate::error::{FailureClass, FetchError};
use crate::event::{DnsEvent, EventKind, Phase};

/// First DNS retransmission timeout; doubles per try up to [`DNS_RETRY_MAX`].
const DNS_RETRY_FIRST: Duration = Duration::from_secs(1);
/// Largest DNS retransmission timeout.
const DNS_RETRY_MAX: Duration = Duration::from_secs(8);
/// Tries per DNS server before moving to the next one.
const DNS_TRIES_PER_SERVER: u32 = 3;
/// Largest DNS message accepted over TCP (the length prefix allows 65535).
const DNS_TCP_MAX: usize = 65535;

/// How the query travels.
enum DnsTransport {
    /// Over UDP, from `local_port`.
    Udp {
        handle: SocketHandle,
        local_port: u16,
    },
    /// Over TCP (after a truncated UDP answer): length-prefixed query and answer.
    Tcp {
        handle: SocketHandle,
        server: IpAddr,
        sent: bool,
        answer: Vec<u8>,
    },
}

/// The DNS lookup in progress.
pub(super) struct DnsLookup {
    query: DnsQuery,
    transport: DnsTransport,
    servers: Vec<IpAddr>,
    server_idx: usize,
    tries_here: u32,
    sent: u32,
    /// Retransmission timeout for the next try.
    timeout: Duration,
    /// Retransmission timeout of the try in flight.
    waited: Duration,
    retry_at: Instant,
}

impl DnsLookup {
    fn server(&self) -> IpAddr {
        self.servers
            .get(self.server_idx)
            .copied()
            .unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    /// When the lookup wants to run again by itself (a UDP retransmission).
    pub(super) fn wake_at(&self) -> Option<Instant> {
        match self.transport {
            DnsTransport::Udp { .. } => Some(self.retry_at),
            DnsTransport::Tcp { .. } => None,
        }
    }

    /// What the lookup was waiting for, for a timeout message.
    pub(super) fn stall_description(&self, host: &str) -> String {
        match self.transport {
            DnsTransport::Udp { .. } => format!(
                "no DNS answer for {host} from {} after {} queries; check --dns and that the server is reachable",
                self.server(),
                self.sent
            ),
            DnsTransport::Tcp { server, .. } => format!(
                "no DNS answer for {host} from {server} over TCP (the UDP answer was truncated)"
            ),
        }
    }

    fn event(&self, event: &str, server: Option<IpAddr>, reason: Option<String>) -> DnsEvent {
        DnsEvent {
            event: event.into(),
            name: self.query.display_name(),
            qtype: self.query.qtype.to_string(),
            server,
            id: Some(self.query.id),
            rcode: None,
            addresses: Vec::new(),
            cnames: Vec::new(),
            reason,
        }
    }
}

impl<L: Link> Fetch<L> {
    /// Starts an exchange that needs its own connection: resolve the target's host (or
    /// take its address from the URL or `--resolve`), then connect.
    pub(super) fn start_exchange(&mut self) -> Result<(), FetchError> {
        self.enter(Phase::Resolve);
        let host = self.target.host.clone();
        let literal: Option<IpAddr> = match self.target.url.host() {
            Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
            Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
            _ => None,
        };
        let over = self
            .cfg
            .resolve
            .iter()
            .find(|r| r.host == host && r.port == self.target.port)
            .map(|r| r.addr);
        if let Some(addr) = literal.or(over) {
            let why = if literal.is_some() {
                "the URL names an IP address"
            } else {
                "--resolve gives the address"
            };
            self.emit(EventKind::Dns(DnsEvent {
                event: "skipped".into(),
                name: host,
                qtype: if addr.is_ipv4() { "A" } else { "AAAA" }.into(),
                server: None,
                id: None,
                rcode: None,
                addresses: vec![addr],
                cnames: Vec::new(),
                reason: Some(format!("no DNS query: {why}")),
            }));
            return self.connect(addr);
        }
        self.start_dns()
    }

    fn start_dns(&mut self) -> Result<(), FetchError> {
        let host = self.target.host.clone();
        let servers = self.cfg.dns_servers.clone();
        if servers.is_empty() {
            return Err(FetchError::new(
                FailureClass::Setup,
                Phase::Resolve,
                "no-dns-server",
                format!(
                    "there is no DNS server to ask for {host}: pass --dns IP, or --resolve {host}:{}:ADDR",
                    self.target.port
                ),
            ));
        }
        let id: u16 = self.rng.random();
        let query = DnsQuery::new(&host, RecordType::A, id).map_err(|e| {
            FetchError::new(FailureClass::Dns, Phase::Resolve, "bad-name", e.to_string())
        })?;
        let local_port: u16 = self.rng.random_range(49152..=65535);
        let rx = udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 8 * 1024]);
        let tx = udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 2 * 1024]);
        let mut sock = udp::Socket::new(rx, tx);
        sock.bind(local_port).map_err(|e| {
            FetchError::new(
                FailureClass::Setup,
                Phase::Resolve,
                "setup",
                format!("could not bind the DNS socket to port {local_port}: {e}"),
            )
        })?;
        let handle = self.sockets.add(sock);
        let now = self.now();
        self.dns = Some(DnsLookup {
            query,
            transport: DnsTransport::Udp { handle, local_port },
            servers,
            server_idx: 0,
            tries_here: 0,
            sent: 0,
            timeout: DNS_RETRY_FIRST,
            waited: DNS_RETRY_FIRST,
            retry_at: now,
        });
        self.send_dns_query(None)
    }

    fn send_dns_query(&mut self, retry_reason: Option<String>) -> Result<(), FetchError> {
        let now = self.now();
        let local = self.cfg.local;
        let Some(d) = self.dns.as_mut() else {
            return Ok(());
        };
        let DnsTransport::Udp { handle, local_port } = d.transport else {
            return Ok(());
        };
        if d.tries_here >= DNS_TRIES_PER_SERVER && d.servers.len() > 1 {
            d.server_idx = (d.server_idx + 1) % d.servers.len();
            d.tries_here = 0;
        }
        let server = d.server();
        let sock = self.sockets.get_mut::<udp::Socket>(handle);
        sock.send_slice(&d.query.bytes, (IpAddress::from(server), 53))
            .map_err(|e| {
                FetchError::new(
                    FailureClass::Setup,
                    Phase::Resolve,
                    "setup",
                    format!(
                        "could not send the DNS query to {server}: {e} (is it reachable from {local}?)"
                    ),
                )
            })?;
        d.tries_here += 1;
        d.sent += 1;
        let timeout = d.timeout;
        d.retry_at = now + timeout;
        d.waited = timeout;
        d.timeout = (timeout * 2).min(DNS_RETRY_MAX);
        let (kind, reason) = match retry_reason {
            Some(r) => ("retry", r),
            None => (
                "query",
                format!(
                    "from port {local_port}; resent after {} ms if no answer",
                    timeout.total_millis()
                ),
            ),
        };
        let ev = d.event(kind, Some(server), Some(reason));
        self.emit(EventKind::Dns(ev));
        Ok(())
    }

    /// Judges what arrived; resends when the retransmission timer ran out.
    pub(super) fn drive_dns(&mut self) -> Result<(), FetchError> {
        let Some(d) = self.dns.as_ref() else {
            return Ok(());
        };
        match d.transport {
            DnsTransport::Udp { handle, .. } => self.drive_dns_udp(handle),
            DnsTransport::Tcp { handle, server, .. } => self.drive_dns_tcp(handle, server),
        }
    }

    fn drive_dns_udp(&mut self, handle: SocketHandle) -> Result<(), FetchError> {
        let Some(server) = self.dns.as_ref().map(|d| SocketAddr::new(d.server(), 53)) else {
            return Ok(());
        };
        // Judge everything that arrived (bounded by the socket's buffer).
        loop {
            let sock = self.sockets.get_mut::<udp::Socket>(handle);
            let Some(d) = self.dns.as_ref() else {
                return Ok(());
            };
            let (verdict, from) = match sock.recv() {
                Ok((data, meta)) => {
                    let from =
                        SocketAddr::new(IpAddr::from(meta.endpoint.addr), meta.endpoint.port);
                    (check_answer(&d.query, server, from, data), from)
                }
                Err(_) => break,
            };
            match verdict {
                AnswerVerdict::Ignore(reason) => {
                    let mut ev = d.event(
                        "ignored",
                        Some(from.ip()),
                        Some(format!("answer ignored: {reason}")),
                    );
                    ev.id = None;
                    self.emit(EventKind::Dns(ev));
                }
                AnswerVerdict::Accept(answer) if answer.truncated => {
                    return self.dns_over_tcp(server.ip());
                }
                AnswerVerdict::Accept(answer) => return self.dns_answered(answer, server.ip()),
            }
        }
        let now = self.now();
        if let Some(d) = self.dns.as_ref().filter(|d| now >= d.retry_at) {
            let reason = format!(
                "no answer within {} ms; asking again",
                d.waited.total_millis()
            );
            self.send_dns_query(Some(reason))?;
        }
        Ok(())
    }

    /// The UDP answer was truncated: ask again over TCP, as RFC 7766 wants.
    fn dns_over_tcp(&mut self, server: IpAddr) -> Result<(), FetchError> {
        let Some(d) = self.dns.as_mut() else {
            return Ok(());
        };
        if let DnsTransport::Udp { handle, .. } = d.transport {
            self.sockets.remove(handle);
        }
        let ev = d.event(
            "truncated",
            Some(server),
            Some(
                "the answer did not fit in UDP (TC bit set): asking again over TCP port 53".into(),
            ),
        );
        let local_port: u16 = self.rng.random_range(49152..=65535);
        let mut sock = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 8 * 1024]),
            tcp::SocketBuffer::new(vec![0; 2 * 1024]),
        );
        sock.set_nagle_enabled(false);
        sock.connect(
            self.iface.context(),
            (IpAddress::from(server), 53),
            local_port,
        )
        .map_err(|e| {
            FetchError::new(
                FailureClass::Dns,
                Phase::Resolve,
                "dns-tcp",
                format!("cannot open a TCP connection to the DNS server {server}: {e}"),
            )
        })?;
        let handle = self.sockets.add(sock);
        if let Some(d) = self.dns.as_mut() {
            d.transport = DnsTransport::Tcp {
                handle,
                server,
                sent: false,
                answer: Vec::new(),
            };
        }
        self.emit(EventKind::Dns(ev));
        Ok(())
    }

    fn drive_dns_tcp(&mut self, handle: SocketHandle, server: IpAddr) -> Result<(), FetchError> {
        let sock = self.sockets.get_mut::<tcp::Socket>(handle);
        let Some(d) = self.dns.as_mut() else {
            return Ok(());
        };
        let DnsTransport::Tcp { sent, answer, .. } = &mut d.transport else {
            return Ok(());
        };
        if !*sent && sock.may_send() {
            let len = u16::try_from(d.query.bytes.len()).unwrap_or(u16::MAX);
            let mut msg = len.to_be_bytes().to_vec();
            msg.extend_from_slice(&d.query.bytes);
            if sock.send_slice(&msg).is_ok_and(|n| n == msg.len()) {
                *sent = true;
            }
        }
        let mut buf = [0u8; 2048];
        while sock.can_recv() && answer.len() < DNS_TCP_MAX + 2 {
            match sock.recv_slice(&mut buf) {
                Ok(n) if n > 0 => {
                    let room = DNS_TCP_MAX + 2 - answer.len();
                    answer.extend_from_slice(buf.get(..n.min(room)).unwrap_or_default());
                }
                _ => break,
            }
        }
        let need = answer
            .get(..2)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])) + 2);
        let complete = need.is_some_and(|n| answer.len() >= n);
        if !complete {
            if !sock.is_active() || (!sock.may_recv() && !sock.can_recv()) {
                return Err(FetchError::new(
                    FailureClass::Dns,
                    Phase::Resolve,
                    "dns-tcp",
                    format!(
                        "the DNS server {server} closed the TCP connection without a full answer"
                    ),
                ));
            }
            return Ok(());
        }
        let end = need.unwrap_or(2);
        let message = answer.get(2..end).unwrap_or_default().to_vec();
        let verdict = check_answer(
            &d.query,
            SocketAddr::new(server, 53),
            SocketAddr::new(server, 53),
            &message,
        );
        // Done with this connection: close it (its FIN exchange still shows in the trace).
        sock.close();
        match verdict {
            AnswerVerdict::Accept(a) => self.dns_answered(a, server),
            AnswerVerdict::Ignore(reason) => Err(FetchError::new(
                FailureClass::Dns,
                Phase::Resolve,
                "bad-answer",
                format!("the DNS server {server} sent an unusable answer over TCP: {reason}"),
            )),
        }
    }

    fn dns_answered(&mut self, answer: DnsAnswer, server: IpAddr) -> Result<(), FetchError> {
        let Some(d) = self.dns.take() else {
            return Ok(());
        };
        // A UDP socket is closed now: a late duplicate answer meets a closed port, as with
        // any stub resolver. A TCP one was closed and finishes its FIN exchange.
        if let DnsTransport::Udp { handle, .. } = d.transport {
            self.sockets.remove(handle);
        }
        let name = d.query.display_name();
        let mut ev = d.event(
            "answer",
            Some(server),
            answer.ttl.map(|t| format!("ttl {t} s")),
        );
        ev.rcode = Some(rcode_name(answer.rcode));
        ev.addresses = answer.addresses.clone();
        ev.cnames = answer.cnames.clone();
        self.emit(EventKind::Dns(ev));
        let hint = self
            .cfg
            .nxdomain_hint
            .as_ref()
            .map(|h| format!(" {h}"))
            .unwrap_or_default();
        let dns_error = |kind: &str, message: String| {
            FetchError::new(FailureClass::Dns, Phase::Resolve, kind, message)
        };
        match answer.rcode {
            ResponseCode::NoError => {}
            ResponseCode::NXDomain => {
                return Err(dns_error(
                    "nxdomain",
                    format!(
                        "{name} does not exist: the DNS server {server} answered NXDOMAIN.{hint}"
                    ),
                ));
            }
            ResponseCode::ServFail => {
                return Err(dns_error(
                    "servfail",
                    format!(
                        "the DNS server {server} could not resolve {name} (SERVFAIL); try again later or another --dns"
                    ),
                ));
            }
            other => {
                return Err(dns_error(
                    "rcode",
                    format!(
                        "the DNS server {server} refused to resolve {name} ({})",
                        rcode_name(other)
                    ),
                ));
            }
        }
        let Some(addr) = answer.addresses.first().copied() else {
            return Err(dns_error(
                "no-address",
                format!("{name} exists but has no IPv4 address (no A record) at {server}.{hint}"),
            ));
        };
        self.exchange.marks.namelookup = Some(self.now());
        self.connect(addr)
    }
}
