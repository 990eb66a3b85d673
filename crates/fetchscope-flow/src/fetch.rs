//! [`Fetch`]: the hand-driven machine. Resolve → Connect → TLS → Request → Response →
//! Teardown → Done, one [`Event`] at a time.
//!
//! Each step handles at most one incoming packet, lets the protocol layers react, and
//! sends what they produced, so every packet is followed by its consequences in the
//! stream: a SYN-ACK, then the state change to ESTABLISHED, then the ACK and the
//! ClientHello. When nothing can happen until a packet arrives or a timer fires, the
//! machine waits on the link — blocking on the device's file descriptor, or moving the
//! built-in lab's virtual clock — never spinning.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

use fetchscope_net::{Direction, Frame, Link, TapDevice, WaitOutcome};
use fetchscope_wire::{Dissection, Dissector};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use rand::Rng;
use rand::rngs::StdRng;
use rustls::pki_types::ServerName;
use sha2::{Digest, Sha256};
use smoltcp::iface::{Config, Interface, PollIngressSingleResult, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpEndpoint};
use url::Host;

use crate::config::FetchConfig;
use crate::dns::{AnswerVerdict, DnsQuery, check_answer, rcode_name};
use crate::error::{FailureClass, FetchError};
use crate::event::{
    DnsEvent, Event, EventKind, HttpRequestEvent, HttpResponseEvent, PacketEvent, Phase, Summary,
    TcpStateChange, TlsEvent,
};
use crate::http::{self, BodySink, HttpProgress, Limits, RequestHead, ResponseReader};
use crate::timing::TimingMarks;
use crate::tls::{LinkTime, TlsClient, TlsConfig, TlsProgress, TlsSetup};

/// How long teardown may wait for the server to close its side.
const TEARDOWN_LIMIT: Duration = Duration::from_secs(5);
/// First DNS retransmission timeout; doubles per try up to [`DNS_RETRY_MAX`].
const DNS_RETRY_FIRST: Duration = Duration::from_secs(1);
/// Largest DNS retransmission timeout.
const DNS_RETRY_MAX: Duration = Duration::from_secs(8);
/// Tries per DNS server before moving to the next one.
const DNS_TRIES_PER_SERVER: u32 = 3;
/// Plaintext read from TCP per step when there is no TLS.
const PLAIN_CHUNK: usize = 16 * 1024;

/// The decoded body's destination: a SHA-256, a byte count and maybe a file.
struct BodyOutput {
    hasher: Sha256,
    bytes: u64,
    out: Option<Box<dyn std::io::Write>>,
}

impl BodySink for BodyOutput {
    fn body(&mut self, decoded: &[u8]) -> std::io::Result<()> {
        self.hasher.update(decoded);
        self.bytes += decoded.len() as u64;
        if let Some(out) = &mut self.out {
            out.write_all(decoded)?;
        }
        Ok(())
    }
}

/// The DNS lookup in progress.
struct DnsLookup {
    query: DnsQuery,
    udp: SocketHandle,
    local_port: u16,
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
}

/// Something that happened in this step, in order; packets are decoded at the end of
/// the step, once the TLS secrets they need are known.
enum Pending {
    Frame(Frame, Phase),
    Event(Instant, EventKind),
}

/// What the TCP bookkeeping needs from a decoded packet.
struct TcpFacts {
    fin: bool,
    ack: Option<u32>,
    seq_raw: u32,
    seq_rel: u32,
    len: u32,
}

/// The fetch machine. Create it with [`Fetch::new`], then pull [`Fetch::next_event`]
/// until it returns `None`.
pub struct Fetch<L: Link> {
    cfg: FetchConfig,
    dev: TapDevice<L>,
    iface: Interface,
    sockets: SocketSet<'static>,
    dissector: Dissector,
    rng: StdRng,
    start: Instant,
    deadline: Instant,
    link_time: Arc<LinkTime>,

    queue: VecDeque<Event>,
    pending: Vec<Pending>,
    phase: Phase,
    started: bool,
    finished: bool,
    result: Option<Result<Summary, FetchError>>,

    host: String,
    port: u16,
    tls_used: bool,
    remote: Option<IpEndpoint>,
    dns: Option<DnsLookup>,

    tcp: Option<SocketHandle>,
    tcp_state: tcp::State,
    local_port: u16,

    tls_config: TlsConfig,
    tls: Option<TlsClient>,
    session_due: bool,
    request_due: bool,
    request: Option<RequestHead>,
    request_end: Option<u64>,
    tx_written: u64,
    response: Option<ResponseReader>,
    body: BodyOutput,
    plain: Vec<u8>,
    status: Option<u16>,
    peer_eof: bool,

    teardown_until: Option<Instant>,
    peer_fin_end: Option<u32>,
    last_tx_ack: Option<u32>,

    marks: TimingMarks,
    packets: u64,
    packets_tx: u64,
    packets_rx: u64,
    key_log: String,
}

impl<L: Link> Fetch<L> {
    /// Prepares a fetch over `link`. Nothing is sent until the first
    /// [`Fetch::next_event`].
    pub fn new(mut cfg: FetchConfig, link: L) -> Result<Self, FetchError> {
        let setup =
            |msg: String| FetchError::new(FailureClass::Setup, Phase::Resolve, "setup", msg);
        let scheme = cfg.url.scheme().to_ascii_lowercase();
        let tls_used = match scheme.as_str() {
            "https" => true,
            "http" => false,
            other => {
                return Err(setup(format!(
                    "fetchscope fetches http:// and https:// URLs, not {other}://"
                )));
            }
        };
        let host = match cfg.url.host() {
            Some(Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(Host::Ipv4(a)) => a.to_string(),
            Some(Host::Ipv6(a)) => a.to_string(),
            None => return Err(setup(format!("the URL {} has no host", cfg.url))),
        };
        let port = cfg
            .url
            .port_or_known_default()
            .unwrap_or(if tls_used { 443 } else { 80 });
        let mut rng = cfg.randomness.rng("client");
        let mut dev = TapDevice::new(link);
        let start = dev.link().now();
        let mut iface_cfg = Config::new(HardwareAddress::Ip);
        iface_cfg.random_seed = rng.random();
        let mut iface = Interface::new(iface_cfg, &mut dev, start);
        let local = cfg.local;
        let mut pushed = Ok(());
        iface.update_ip_addrs(|addrs| pushed = addrs.push(local).map_err(|_| ()));
        if pushed.is_err() {
            return Err(setup(format!(
                "could not give the stack the address {local}"
            )));
        }
        if let Some(gw) = cfg.gateway {
            let r = match gw {
                IpAddr::V4(a) => iface.routes_mut().add_default_ipv4_route(a).map(|_| ()),
                IpAddr::V6(a) => iface.routes_mut().add_default_ipv6_route(a).map(|_| ()),
            };
            if r.is_err() {
                return Err(setup(format!("could not add a default route via {gw}")));
            }
        }
        let timeout = Duration::from_micros(cfg.timeout.as_micros().min(u64::MAX as u128) as u64);
        let link_time = Arc::new(LinkTime::new(cfg.epoch));
        let tls_config = TlsConfig::new(TlsSetup {
            provider: cfg.randomness.crypto_provider("client-tls"),
            roots: cfg.roots.clone(),
            alpn: vec![b"http/1.1".to_vec()],
            key_log: cfg.key_log.clone(),
            time: link_time.clone(),
        })
        .map_err(|e| setup(e.to_string()))?;
        let body = BodyOutput {
            hasher: Sha256::new(),
            bytes: 0,
            out: cfg.body_out.take(),
        };
        Ok(Fetch {
            dev,
            iface,
            sockets: SocketSet::new(Vec::new()),
            dissector: Dissector::new(),
            rng,
            start,
            deadline: start + timeout,
            link_time,
            queue: VecDeque::new(),
            pending: Vec::new(),
            phase: Phase::Resolve,
            started: false,
            finished: false,
            result: None,
            host,
            port,
            tls_used,
            remote: None,
            dns: None,
            tcp: None,
            tcp_state: tcp::State::Closed,
            local_port: 0,
            tls_config,
            tls: None,
            session_due: false,
            request_due: false,
            request: None,
            request_end: None,
            tx_written: 0,
            response: None,
            body,
            plain: Vec::new(),
            status: None,
            peer_eof: false,
            teardown_until: None,
            peer_fin_end: None,
            last_tx_ack: None,
            marks: TimingMarks::default(),
            packets: 0,
            packets_tx: 0,
            packets_rx: 0,
            key_log: String::new(),
            cfg,
        })
    }

    /// The next thing that happened, or `None` once the fetch is over (after its `done`
    /// or `error` event).
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            if self.finished {
                return None;
            }
            let r = if self.started {
                self.check_deadline()
                    .and_then(|()| self.step())
                    .and_then(|progressed| if progressed { Ok(()) } else { self.wait() })
            } else {
                self.started = true;
                self.begin()
            };
            if let Err(e) = r {
                self.fail(e);
            }
            self.flush();
        }
    }

    /// The outcome, once [`Fetch::next_event`] has returned `None`.
    pub fn result(&self) -> Option<&Result<Summary, FetchError>> {
        self.result.as_ref()
    }

    /// The TLS secrets seen so far, as an NSS key log (for pcapng and `--keylog`).
    pub fn key_log(&self) -> &str {
        &self.key_log
    }

    /// The link the stack runs on.
    pub fn link(&self) -> &L {
        self.dev.link()
    }

    /// The phase the fetch is in.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    fn now(&self) -> Instant {
        self.dev.link().now()
    }

    fn t_us(&self, t: Instant) -> u64 {
        (t - self.start).total_micros()
    }

    fn emit(&mut self, kind: EventKind) {
        let now = self.now();
        self.pending.push(Pending::Event(now, kind));
    }

    fn note(&mut self, text: impl Into<String>) {
        self.emit(EventKind::Note { text: text.into() });
    }

    fn enter(&mut self, phase: Phase) {
        if self.phase != phase || !self.started_phase_reported(phase) {
            self.phase = phase;
            self.emit(EventKind::Phase { phase });
        }
    }

    fn started_phase_reported(&self, phase: Phase) -> bool {
        // Resolve is entered before anything was emitted; report it once.
        phase != Phase::Resolve
            || self.pending.iter().any(|p| {
                matches!(
                    p,
                    Pending::Event(
                        _,
                        EventKind::Phase {
                            phase: Phase::Resolve
                        }
                    )
                )
            })
    }

    // ---------------------------------------------------------------- start

    fn begin(&mut self) -> Result<(), FetchError> {
        self.link_time.set(0);
        self.enter(Phase::Resolve);
        let literal: Option<IpAddr> = match self.cfg.url.host() {
            Some(Host::Ipv4(a)) => Some(IpAddr::V4(a)),
            Some(Host::Ipv6(a)) => Some(IpAddr::V6(a)),
            _ => None,
        };
        let over = self
            .cfg
            .resolve
            .iter()
            .find(|r| r.host == self.host && r.port == self.port)
            .map(|r| r.addr);
        if let Some(addr) = literal.or(over) {
            let why = if literal.is_some() {
                "the URL names an IP address"
            } else {
                "--resolve gives the address"
            };
            self.emit(EventKind::Dns(DnsEvent {
                event: "skipped".into(),
                name: self.host.clone(),
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
        let servers = self.cfg.dns_servers.clone();
        if servers.is_empty() {
            return Err(FetchError::new(
                FailureClass::Setup,
                Phase::Resolve,
                "no-dns-server",
                format!(
                    "there is no DNS server to ask for {}: pass --dns IP, or --resolve {}:{}:ADDR",
                    self.host, self.host, self.port
                ),
            ));
        }
        let id: u16 = self.rng.random();
        let query = DnsQuery::new(&self.host, RecordType::A, id).map_err(|e| {
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
        let udp = self.sockets.add(sock);
        let now = self.now();
        self.dns = Some(DnsLookup {
            query,
            udp,
            local_port,
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
        let Some(d) = self.dns.as_mut() else {
            return Ok(());
        };
        if d.tries_here >= DNS_TRIES_PER_SERVER && d.servers.len() > 1 {
            d.server_idx = (d.server_idx + 1) % d.servers.len();
            d.tries_here = 0;
        }
        let server = d.server();
        let sock = self.sockets.get_mut::<udp::Socket>(d.udp);
        sock.send_slice(&d.query.bytes, (IpAddress::from(server), 53))
            .map_err(|e| {
                FetchError::new(
                    FailureClass::Setup,
                    Phase::Resolve,
                    "setup",
                    format!("could not send the DNS query to {server}: {e} (is the address reachable from {}?)", self.cfg.local),
                )
            })?;
        d.tries_here += 1;
        d.sent += 1;
        let timeout = d.timeout;
        d.retry_at = now + timeout;
        d.waited = timeout;
        d.timeout = (timeout * 2).min(DNS_RETRY_MAX);
        let ev = DnsEvent {
            event: if retry_reason.is_some() {
                "retry"
            } else {
                "query"
            }
            .into(),
            name: d.query.display_name(),
            qtype: d.query.qtype.to_string(),
            server: Some(server),
            id: Some(d.query.id),
            rcode: None,
            addresses: Vec::new(),
            cnames: Vec::new(),
            reason: retry_reason.or_else(|| {
                Some(format!(
                    "from port {}; resent after {} ms if no answer",
                    d.local_port,
                    timeout.total_millis()
                ))
            }),
        };
        self.emit(EventKind::Dns(ev));
        Ok(())
    }

    // ---------------------------------------------------------------- step

    fn step(&mut self) -> Result<bool, FetchError> {
        let now = self.now();
        self.link_time.set(self.t_us(now));
        let before = self.pending.len();
        let ingress = self
            .iface
            .poll_ingress_single(now, &mut self.dev, &mut self.sockets);
        self.collect_frames()?;
        self.observe_tcp(None);
        self.drive()?;
        let now = self.now();
        self.iface
            .poll_egress(now, &mut self.dev, &mut self.sockets);
        self.collect_frames()?;
        self.observe_tcp(None);
        let progressed = ingress != PollIngressSingleResult::None || self.pending.len() > before;
        Ok(progressed)
    }

    fn wait(&mut self) -> Result<(), FetchError> {
        let now = self.now();
        let mut until = self.deadline;
        if let Some(t) = self.iface.poll_at(now, &self.sockets) {
            until = until.min(t);
        }
        if let Some(d) = &self.dns {
            until = until.min(d.retry_at);
        }
        if let Some(t) = self.teardown_until {
            until = until.min(t);
        }
        if until <= now {
            // Something is due but the last step could not do it (e.g. a full device
            // queue): give it a millisecond instead of spinning.
            until = now + Duration::from_millis(1);
        }
        match self.dev.link_mut().wait(Some(until)) {
            Ok(WaitOutcome::Ready | WaitOutcome::Deadline) => Ok(()),
            Ok(WaitOutcome::Idle) => Err(self.timeout_error()),
            Err(e) => Err(FetchError::new(
                FailureClass::Setup,
                self.phase,
                "link",
                e.to_string(),
            )),
        }
    }

    fn check_deadline(&mut self) -> Result<(), FetchError> {
        if self.now() >= self.deadline {
            Err(self.timeout_error())
        } else {
            Ok(())
        }
    }

    fn timeout_error(&self) -> FetchError {
        let secs = (self.deadline - self.start).total_millis() as f64 / 1000.0;
        let remote = self
            .remote
            .map(|r| r.to_string())
            .unwrap_or_else(|| self.host.clone());
        let what = match self.phase {
            Phase::Resolve => {
                let (server, sent) = self
                    .dns
                    .as_ref()
                    .map(|d| (d.server().to_string(), d.sent))
                    .unwrap_or_default();
                format!(
                    "no DNS answer for {} from {server} after {sent} queries; check --dns and that the server is reachable",
                    self.host
                )
            }
            Phase::Connect => format!(
                "no SYN-ACK from {remote}: the server or the path to it is not answering (is --gateway right? is the port open?)"
            ),
            Phase::Tls => format!("the TLS handshake with {remote} did not finish"),
            Phase::Request => format!("the request to {remote} could not be delivered"),
            Phase::Response => format!(
                "the response from {remote} did not complete ({} body bytes received)",
                self.body.bytes
            ),
            Phase::Teardown | Phase::Done => format!("closing the connection to {remote} stalled"),
        };
        FetchError::new(
            FailureClass::Timeout,
            self.phase,
            "timeout",
            format!(
                "timed out after {secs} s in the {} phase: {what}",
                self.phase
            ),
        )
    }

    fn collect_frames(&mut self) -> Result<(), FetchError> {
        for f in self.dev.take_frames() {
            match f.dir {
                Direction::Tx => self.packets_tx += 1,
                Direction::Rx => self.packets_rx += 1,
            }
            self.pending.push(Pending::Frame(f, self.phase));
        }
        if let Some(e) = self.dev.take_error() {
            return Err(FetchError::new(
                FailureClass::Setup,
                self.phase,
                "link",
                e.to_string(),
            ));
        }
        Ok(())
    }

    /// Reports a TCP state change, with `cause` or one derived from the transition.
    fn observe_tcp(&mut self, cause: Option<&str>) {
        let Some(h) = self.tcp else { return };
        let state = self.sockets.get::<tcp::Socket>(h).state();
        if state == self.tcp_state {
            return;
        }
        let from = self.tcp_state;
        self.tcp_state = state;
        let cause = cause
            .map(str::to_string)
            .or_else(|| transition_cause(from, state).map(str::to_string));
        self.emit(EventKind::TcpState(TcpStateChange {
            from: from.to_string(),
            to: state.to_string(),
            cause,
        }));
        if state == tcp::State::Established && self.marks.connect.is_none() {
            self.marks.connect = Some(self.now());
        }
    }

    // ---------------------------------------------------------------- drive

    fn drive(&mut self) -> Result<(), FetchError> {
        match self.phase {
            Phase::Resolve => self.drive_dns(),
            Phase::Connect => self.drive_connect(),
            Phase::Tls | Phase::Request | Phase::Response | Phase::Teardown => {
                self.drive_transport()?;
                self.drive_teardown()
            }
            Phase::Done => Ok(()),
        }
    }

    fn drive_dns(&mut self) -> Result<(), FetchError> {
        let Some(d) = self.dns.as_ref() else {
            return Ok(());
        };
        let server = std::net::SocketAddr::new(d.server(), 53);
        let handle = d.udp;
        // Judge everything that arrived (bounded by the socket's buffer).
        loop {
            let sock = self.sockets.get_mut::<udp::Socket>(handle);
            let (verdict, from) = match sock.recv() {
                Ok((data, meta)) => {
                    let from = std::net::SocketAddr::new(
                        IpAddr::from(meta.endpoint.addr),
                        meta.endpoint.port,
                    );
                    let Some(d) = self.dns.as_ref() else {
                        return Ok(());
                    };
                    (check_answer(&d.query, server, from, data), from)
                }
                Err(_) => break,
            };
            match verdict {
                AnswerVerdict::Ignore(reason) => {
                    let Some(d) = self.dns.as_ref() else {
                        return Ok(());
                    };
                    let ev = DnsEvent {
                        event: "ignored".into(),
                        name: d.query.display_name(),
                        qtype: d.query.qtype.to_string(),
                        server: Some(from.ip()),
                        id: None,
                        rcode: None,
                        addresses: Vec::new(),
                        cnames: Vec::new(),
                        reason: Some(format!("answer ignored: {reason}")),
                    };
                    self.emit(EventKind::Dns(ev));
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

    fn dns_answered(
        &mut self,
        answer: crate::dns::DnsAnswer,
        server: IpAddr,
    ) -> Result<(), FetchError> {
        let Some(d) = self.dns.take() else {
            return Ok(());
        };
        // Close the socket: a late duplicate answer now meets a closed port, as with
        // any stub resolver.
        self.sockets.remove(d.udp);
        let name = d.query.display_name();
        self.emit(EventKind::Dns(DnsEvent {
            event: "answer".into(),
            name: name.clone(),
            qtype: d.query.qtype.to_string(),
            server: Some(server),
            id: Some(d.query.id),
            rcode: Some(rcode_name(answer.rcode)),
            addresses: answer.addresses.clone(),
            cnames: answer.cnames.clone(),
            reason: answer.ttl.map(|t| format!("ttl {t} s")),
        }));
        let hint = self
            .cfg
            .nxdomain_hint
            .as_ref()
            .map(|h| format!(" {h}"))
            .unwrap_or_default();
        match answer.rcode {
            ResponseCode::NoError => {}
            ResponseCode::NXDomain => {
                return Err(FetchError::new(
                    FailureClass::Dns,
                    Phase::Resolve,
                    "nxdomain",
                    format!(
                        "{name} does not exist: the DNS server {server} answered NXDOMAIN.{hint}"
                    ),
                ));
            }
            ResponseCode::ServFail => {
                return Err(FetchError::new(
                    FailureClass::Dns,
                    Phase::Resolve,
                    "servfail",
                    format!(
                        "the DNS server {server} could not resolve {name} (SERVFAIL); try again later or another --dns"
                    ),
                ));
            }
            other => {
                return Err(FetchError::new(
                    FailureClass::Dns,
                    Phase::Resolve,
                    "rcode",
                    format!(
                        "the DNS server {server} refused to resolve {name} ({})",
                        rcode_name(other)
                    ),
                ));
            }
        }
        let Some(addr) = answer.addresses.first().copied() else {
            return Err(FetchError::new(
                FailureClass::Dns,
                Phase::Resolve,
                "no-address",
                format!("{name} exists but has no IPv4 address (no A record) at {server}.{hint}"),
            ));
        };
        self.marks.namelookup = Some(self.now());
        self.connect(addr)
    }

    fn connect(&mut self, addr: IpAddr) -> Result<(), FetchError> {
        self.enter(Phase::Connect);
        let remote = IpEndpoint::new(IpAddress::from(addr), self.port);
        self.remote = Some(remote);
        let rx = tcp::SocketBuffer::new(vec![0; self.cfg.tcp_rx_buffer]);
        let tx = tcp::SocketBuffer::new(vec![0; self.cfg.tcp_tx_buffer]);
        let mut sock = tcp::Socket::new(rx, tx);
        sock.set_nagle_enabled(false);
        let local_port: u16 = self.rng.random_range(49152..=65535);
        self.local_port = local_port;
        sock.connect(self.iface.context(), remote, local_port)
            .map_err(|e| {
                FetchError::new(
                    FailureClass::Setup,
                    Phase::Connect,
                    "setup",
                    format!("cannot connect to {remote} from {}: {e} (is there a route? check --addr and --gateway)", self.cfg.local),
                )
            })?;
        let h = self.sockets.add(sock);
        self.tcp = Some(h);
        self.observe_tcp(Some("connect() called: the SYN is queued"));
        Ok(())
    }

    fn drive_connect(&mut self) -> Result<(), FetchError> {
        match self.tcp_state {
            // The step that saw the SYN-ACK sent the bare ACK; start the session in the
            // next step, so the three-way handshake shows as three packets, as with a
            // kernel stack (connect() returns, then the application writes).
            tcp::State::Established if self.session_due => self.start_session(),
            tcp::State::Established => {
                self.session_due = true;
                Ok(())
            }
            tcp::State::Closed => {
                let remote = self.remote.map(|r| r.to_string()).unwrap_or_default();
                Err(FetchError::new(
                    FailureClass::Connect,
                    Phase::Connect,
                    "refused",
                    format!(
                        "connection refused: {remote} answered the SYN with a reset (RST); nothing listens on that port"
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The connection is up: start TLS, or go straight to the request for `http://`.
    fn start_session(&mut self) -> Result<(), FetchError> {
        if !self.tls_used {
            self.request_due = true;
            return self.drive_transport();
        }
        self.enter(Phase::Tls);
        let server_name = ServerName::try_from(self.host.clone()).map_err(|e| {
            FetchError::new(
                FailureClass::Tls,
                Phase::Tls,
                "bad-name",
                format!("'{}' cannot be used as a TLS server name: {e}", self.host),
            )
        })?;
        let tls = TlsClient::new(&self.tls_config, server_name)
            .map_err(|e| FetchError::new(FailureClass::Tls, Phase::Tls, e.kind(), e.to_string()))?;
        self.tls = Some(tls);
        self.drive_transport()
    }

    /// Moves bytes between the TCP socket, TLS and HTTP, in both directions.
    fn drive_transport(&mut self) -> Result<(), FetchError> {
        let Some(h) = self.tcp else { return Ok(()) };
        if self.request_due && self.tls.as_ref().is_none_or(|t| t.is_complete()) {
            self.request_due = false;
            self.queue_request();
        }
        // Incoming: socket → TLS (or straight to HTTP).
        let mut eof = false;
        {
            let sock = self.sockets.get_mut::<tcp::Socket>(h);
            match &mut self.tls {
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
                        Ok(n) => self
                            .plain
                            .extend_from_slice(buf.get(..n).unwrap_or_default()),
                        Err(tcp::RecvError::Finished) => eof = true,
                        Err(tcp::RecvError::InvalidState) => {}
                    }
                }
            }
        }
        if let Some(tls) = &mut self.tls {
            let plain = &mut self.plain;
            let progress = tls
                .process(&mut |p| plain.extend_from_slice(p))
                .map_err(|e| {
                    let (class, phase) = if self.phase <= Phase::Tls {
                        (FailureClass::Tls, Phase::Tls)
                    } else {
                        (FailureClass::Tls, self.phase)
                    };
                    FetchError::new(class, phase, e.kind(), e.to_string())
                })?;
            self.report_tls(progress);
        }
        if !self.plain.is_empty() {
            self.receive_plaintext()?;
        }
        if eof && !self.peer_eof {
            self.peer_eof = true;
            self.peer_closed_stream()?;
        }
        self.write_tls_outgoing();
        if self.tcp_state == tcp::State::Closed && self.phase < Phase::Teardown {
            let remote = self.remote.map(|r| r.to_string()).unwrap_or_default();
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
                    "{remote} reset the connection (RST) during the {} phase",
                    self.phase
                ),
            ));
        }
        Ok(())
    }

    /// Hands TLS's pending ciphertext to the TCP socket, as much as it takes.
    fn write_tls_outgoing(&mut self) {
        let (Some(h), Some(tls)) = (self.tcp, self.tls.as_mut()) else {
            return;
        };
        let sock = self.sockets.get_mut::<tcp::Socket>(h);
        if !tls.outgoing().is_empty()
            && sock.may_send()
            && let Ok(n) = sock.send_slice(tls.outgoing())
        {
            tls.consume_outgoing(n);
            self.tx_written += n as u64;
        }
    }

    fn report_tls(&mut self, progress: Vec<TlsProgress>) {
        for p in progress {
            let (stage, detail, certs) = match p {
                TlsProgress::ClientHelloQueued => (
                    "client_hello_sent",
                    format!(
                        "ClientHello for {} offering TLS 1.3 and 1.2, ALPN http/1.1",
                        self.host
                    ),
                    Vec::new(),
                ),
                TlsProgress::ServerHello {
                    version,
                    suite,
                    group,
                } => (
                    "server_hello",
                    format!(
                        "the server chose {version} with {suite}{}",
                        group
                            .map(|g| format!(" and key exchange {g}"))
                            .unwrap_or_default()
                    ),
                    Vec::new(),
                ),
                TlsProgress::ChainVerified { chain } => (
                    "certificate_verified",
                    format!(
                        "certificate chain ({} certificate{}) verified for {}",
                        chain.len(),
                        if chain.len() == 1 { "" } else { "s" },
                        self.host
                    ),
                    chain
                        .iter()
                        .filter_map(|c| crate::certinfo::describe(c))
                        .collect(),
                ),
                TlsProgress::SignatureVerified => (
                    "certificate_verify_ok",
                    "the server proved it holds the certificate's private key (CertificateVerify)"
                        .to_string(),
                    Vec::new(),
                ),
                TlsProgress::ServerFinished => (
                    "server_finished",
                    "the server's Finished checked out: the handshake was not tampered with"
                        .to_string(),
                    Vec::new(),
                ),
                TlsProgress::HandshakeComplete { alpn } => {
                    self.marks.appconnect = Some(self.now());
                    self.request_due = true;
                    (
                        "handshake_complete",
                        format!(
                            "client Finished sent; handshake complete{}",
                            alpn.map(|a| format!(", ALPN {a}")).unwrap_or_default()
                        ),
                        Vec::new(),
                    )
                }
                TlsProgress::TicketsReceived(n) => (
                    "session_ticket",
                    format!("the server sent a session ticket ({n} so far), for resuming later"),
                    Vec::new(),
                ),
                TlsProgress::AppDataQueued(n) => {
                    self.note(format!(
                        "{n} bytes of HTTP encrypted into TLS application data"
                    ));
                    continue;
                }
                TlsProgress::CloseNotifyQueued => (
                    "close_notify_sent",
                    "close_notify alert sent: no more data from us".to_string(),
                    Vec::new(),
                ),
                TlsProgress::PeerClosed => (
                    "close_notify_received",
                    "the server sent close_notify: no more data from it".to_string(),
                    Vec::new(),
                ),
            };
            let tls = self.tls.as_ref();
            let ev = TlsEvent {
                stage: stage.into(),
                version: tls.and_then(|t| t.version()),
                suite: tls.and_then(|t| t.suite()),
                group: tls.and_then(|t| t.group()),
                alpn: tls.and_then(|t| t.alpn()),
                detail,
                certificates: certs,
            };
            self.emit(EventKind::Tls(ev));
        }
        if self.tls.as_ref().is_some_and(|t| t.peer_closed()) && !self.peer_eof {
            // close_notify ends the response stream like a FIN does.
            self.peer_eof = true;
            if let Err(e) = self.peer_closed_stream() {
                self.fail(e);
            }
        }
    }

    fn queue_request(&mut self) {
        self.enter(Phase::Request);
        let head = http::build_request("GET", &self.cfg.url, &self.cfg.user_agent);
        let bytes = head.to_bytes();
        self.marks.pretransfer = Some(self.now());
        self.emit(EventKind::HttpRequest(HttpRequestEvent {
            method: head.method.clone(),
            target: head.target.clone(),
            url: self.cfg.url.to_string(),
            headers: head.headers.clone(),
        }));
        self.response = Some(ResponseReader::new("GET", Limits::default()));
        match &mut self.tls {
            Some(tls) => {
                tls.send(&bytes);
                let plain = &mut self.plain;
                if let Ok(p) = tls.process(&mut |d| plain.extend_from_slice(d)) {
                    self.report_tls(p);
                }
                let encrypted = self.tls.as_ref().map(|t| t.outgoing().len()).unwrap_or(0);
                self.request_end = Some(self.tx_written + encrypted as u64);
            }
            None => {
                if let Some(h) = self.tcp {
                    let sock = self.sockets.get_mut::<tcp::Socket>(h);
                    let n = sock.send_slice(&bytes).unwrap_or(0);
                    self.tx_written += n as u64;
                    self.request_end = Some(self.tx_written);
                }
            }
        }
        self.request = Some(head);
    }

    fn receive_plaintext(&mut self) -> Result<(), FetchError> {
        let data = std::mem::take(&mut self.plain);
        if self.marks.starttransfer.is_none() {
            self.marks.starttransfer = Some(self.now());
            self.enter(Phase::Response);
        }
        let Some(reader) = self.response.as_mut() else {
            self.note(format!(
                "{} bytes arrived that no request asked for; ignored",
                data.len()
            ));
            return Ok(());
        };
        let mut offset = 0;
        let mut events = Vec::new();
        let mut complete = false;
        while offset < data.len() && !reader.is_complete() {
            let input = data.get(offset..).unwrap_or_default();
            let feed = reader
                .feed(input, &mut self.body)
                .map_err(|e| http_error(&e))?;
            offset += feed.used;
            events.extend(feed.progress);
            if feed.used == 0 {
                break;
            }
        }
        if reader.is_complete() {
            complete = true;
        }
        let extra = data.len().saturating_sub(offset);
        self.report_http(events);
        if extra > 0 {
            self.note(format!(
                "{extra} bytes arrived after the end of the response; ignored"
            ));
        }
        if complete {
            self.response_done();
        }
        Ok(())
    }

    fn report_http(&mut self, progress: Vec<HttpProgress>) {
        for p in progress {
            match p {
                HttpProgress::Interim(h) => {
                    self.note(format!(
                        "interim response {} {} skipped, as requests does",
                        h.status, h.reason
                    ));
                }
                HttpProgress::Head(h) => {
                    self.status = Some(h.status);
                    self.emit(EventKind::Http(HttpResponseEvent {
                        status: h.status,
                        reason: h.reason.clone(),
                        version: h.version.clone(),
                        headers: h
                            .headers
                            .iter()
                            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                            .collect(),
                    }));
                }
                HttpProgress::Body { .. } | HttpProgress::Complete => {}
            }
        }
    }

    fn response_done(&mut self) {
        if self.marks.body_done.is_none() {
            self.marks.body_done = Some(self.now());
            let (bytes, wire) = self
                .response
                .as_ref()
                .map(|r| (r.decoded_body_bytes(), r.wire_body_bytes()))
                .unwrap_or_default();
            self.note(format!(
                "response complete: {bytes} body bytes ({wire} on the wire)"
            ));
            self.begin_teardown();
        }
    }

    /// The server closed its side (TCP FIN or TLS close_notify).
    fn peer_closed_stream(&mut self) -> Result<(), FetchError> {
        if let Some(reader) = self.response.as_mut() {
            if !reader.is_complete() {
                let progress = reader.finish(&mut self.body).map_err(|e| http_error(&e))?;
                self.report_http(progress);
                if self.response.as_ref().is_some_and(|r| r.is_complete()) {
                    self.response_done();
                }
                return Ok(());
            }
        } else if self.phase < Phase::Request {
            let remote = self.remote.map(|r| r.to_string()).unwrap_or_default();
            return Err(FetchError::new(
                if self.phase == Phase::Tls {
                    FailureClass::Tls
                } else {
                    FailureClass::Connect
                },
                self.phase,
                "closed",
                format!(
                    "{remote} closed the connection during the {} phase",
                    self.phase
                ),
            ));
        }
        Ok(())
    }

    fn begin_teardown(&mut self) {
        if self.phase == Phase::Teardown || self.phase == Phase::Done {
            return;
        }
        self.enter(Phase::Teardown);
        self.teardown_until = Some((self.now() + TEARDOWN_LIMIT).min(self.deadline));
        if let Some(tls) = &mut self.tls {
            tls.close();
            let plain = &mut self.plain;
            if let Ok(p) = tls.process(&mut |d| plain.extend_from_slice(d)) {
                self.report_tls(p);
            }
            // close() below queues the FIN after what the socket holds: hand it the
            // close_notify first.
            self.write_tls_outgoing();
        }
        if let Some(h) = self.tcp {
            self.sockets.get_mut::<tcp::Socket>(h).close();
            self.observe_tcp(Some("close() called: FIN queued after our last data"));
        }
    }

    fn drive_teardown(&mut self) -> Result<(), FetchError> {
        if self.phase != Phase::Teardown {
            return Ok(());
        }
        // Don't close while ciphertext (close_notify) is still queued for the socket.
        if self.tls.as_ref().is_some_and(|t| !t.outgoing().is_empty()) {
            return Ok(());
        }
        let done = match self.tcp_state {
            tcp::State::Closed => true,
            tcp::State::TimeWait => match (self.peer_fin_end, self.last_tx_ack) {
                (Some(fin), Some(ack)) => ack == fin,
                _ => false,
            },
            _ => false,
        };
        if done {
            self.finish();
            return Ok(());
        }
        if self.teardown_until.is_some_and(|t| self.now() >= t) {
            self.note(format!(
                "the server did not finish closing within {} s; stopping in {}",
                TEARDOWN_LIMIT.total_millis() / 1000,
                self.tcp_state
            ));
            self.finish();
        }
        Ok(())
    }

    fn finish(&mut self) {
        let now = self.now();
        self.marks.total = Some(now);
        self.teardown_until = None;
        self.enter(Phase::Done);
        let status = self.status.unwrap_or(0);
        let tls = self.tls.as_ref();
        let summary = Summary {
            url: self.cfg.url.to_string(),
            status,
            body_bytes: self.body.bytes,
            wire_body_bytes: self
                .response
                .as_ref()
                .map(|r| r.wire_body_bytes())
                .unwrap_or(0),
            body_sha256: hex::encode(self.body.hasher.clone().finalize()),
            timings: self.marks.curl(self.start, self.tls_used),
            har: self.marks.har(self.start, self.tls_used),
            remote: self.remote.map(|r| r.to_string()).unwrap_or_default(),
            local: format!("{}:{}", self.cfg.local.address(), self.local_port),
            final_tcp_state: self.tcp_state.to_string(),
            packets_tx: self.packets_tx,
            packets_rx: self.packets_rx,
            tls_version: tls.and_then(|t| t.version()),
            tls_suite: tls.and_then(|t| t.suite()),
        };
        if let Some(out) = &mut self.body.out
            && let Err(e) = out.flush()
        {
            self.fail(FetchError::new(
                FailureClass::Setup,
                Phase::Done,
                "output",
                format!("could not write the body: {e}"),
            ));
            return;
        }
        self.emit(EventKind::Done(Box::new(summary.clone())));
        self.result = Some(Ok(summary));
        self.finished = true;
    }

    fn fail(&mut self, e: FetchError) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.dns = None;
        self.teardown_until = None;
        // Close politely so the trace shows how the connection ended, then stop.
        if let Some(h) = self.tcp {
            let sock = self.sockets.get_mut::<tcp::Socket>(h);
            if sock.is_open() {
                sock.close();
                self.observe_tcp(Some("close() called after the error"));
                let now = self.now();
                self.iface
                    .poll_egress(now, &mut self.dev, &mut self.sockets);
                let _ = self.collect_frames();
                self.observe_tcp(None);
            }
        }
        self.emit(EventKind::Error(e.to_event()));
        self.result = Some(Err(e));
    }

    // ---------------------------------------------------------------- flush

    /// Decodes this step's packets (now that the TLS secrets they need are known) and
    /// moves everything into the event queue, in order.
    fn flush(&mut self) {
        if let Some(tls) = &mut self.tls {
            for s in tls.take_secrets() {
                self.dissector
                    .add_tls_secret(&s.label, &s.client_random, &s.secret);
                self.key_log.push_str(&s.key_log_line());
                self.key_log.push('\n');
            }
        }
        for p in std::mem::take(&mut self.pending) {
            match p {
                Pending::Event(t, kind) => {
                    let t_us = self.t_us(t);
                    self.queue.push_back(Event { t_us, kind });
                }
                Pending::Frame(f, phase) => {
                    let layers = self.dissector.dissect(f.dir, &f.data);
                    self.account_tcp(&f, &layers);
                    self.packets += 1;
                    let ev = PacketEvent {
                        dir: f.dir,
                        len: f.data.len(),
                        phase,
                        summary: layers.summary(),
                        number: self.packets,
                        layers,
                        raw: Arc::from(f.data.into_boxed_slice()),
                    };
                    let t_us = self.t_us(f.t);
                    self.queue.push_back(Event {
                        t_us,
                        kind: EventKind::Packet(Box::new(ev)),
                    });
                }
            }
        }
    }

    /// Teardown and timing bookkeeping from the fetch's own TCP segments.
    fn account_tcp(&mut self, f: &Frame, d: &Dissection) {
        let Some(facts) = tcp_facts(d) else { return };
        let ours = self.local_port != 0
            && d.tcp.as_ref().is_some_and(|t| match f.dir {
                Direction::Tx => t.src_port == self.local_port,
                Direction::Rx => t.dst_port == self.local_port,
            });
        if !ours {
            return;
        }
        match f.dir {
            Direction::Rx => {
                if facts.fin {
                    self.peer_fin_end = Some(facts.seq_raw.wrapping_add(facts.len).wrapping_add(1));
                }
            }
            Direction::Tx => {
                if let Some(a) = facts.ack {
                    self.last_tx_ack = Some(a);
                }
                if let (Some(end), None) = (self.request_end, self.marks.request_sent) {
                    let last = u64::from(facts.seq_rel.saturating_sub(1)) + u64::from(facts.len);
                    if facts.len > 0 && last >= end {
                        self.marks.request_sent = Some(f.t);
                    }
                }
            }
        }
    }
}

/// What the TCP bookkeeping needs, read from the decoded packet.
fn tcp_facts(d: &Dissection) -> Option<TcpFacts> {
    let t = d.tcp.as_ref()?;
    let has = |name: &str| t.flags.contains(&name);
    Some(TcpFacts {
        fin: has("FIN"),
        ack: has("ACK").then_some(t.ack_raw),
        seq_raw: t.seq_raw,
        seq_rel: t.seq,
        len: u32::try_from(t.payload_len).unwrap_or(u32::MAX),
    })
}

fn http_error(e: &http::HttpError) -> FetchError {
    FetchError::new(FailureClass::Http, Phase::Response, e.kind(), e.to_string())
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
