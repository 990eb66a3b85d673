//! [`OsFetch`]: the same fetch as the smoltcp machine (`fetchscope_flow::Fetch`), through the kernel's sockets.
//!
//! DNS goes over a kernel UDP socket to the same servers with the same query and the same
//! answer checks; TCP is a non-blocking kernel socket with `TCP_NODELAY` (as requests
//! sets it); TLS and HTTP are fetchscope's own sans-IO code, fed with what the socket
//! reads. Packets come from [`Capture`] with the kernel's timestamps and are merged with
//! the machine's own events in time order: an item is released once it is older than
//! [`SLACK`], so a packet stamped before an event (the SYN-ACK before `ESTABLISHED`) is
//! never overtaken by it. Packets are decoded when released, after the TLS secrets they
//! need were learned.
//!
//! The kernel's TCP state is read from `TCP_INFO` after every wake-up (every captured
//! packet wakes the machine), so state changes follow the packets that caused them. Once
//! the kernel hands a closed connection to a time-wait socket, `/proc/net/tcp` tells.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fetchscope_core::Instant;
use fetchscope_core::dns::{LookupSpec, question_types};
use fetchscope_core::event::{ExchangeRecord, HttpRequestEvent, PacketEvent, TlsEvent};
use fetchscope_core::http::{self, DigestSink, HttpProgress, Limits, RequestHead, ResponseReader};
use fetchscope_core::redirects;
use fetchscope_core::timing::TimingMarks;
use fetchscope_core::tls::{LinkTime, TlsClient, TlsConfig, TlsSetup};
use fetchscope_core::{Event, EventKind, FailureClass, FetchError, Phase, Summary, TcpState};
use fetchscope_wire::{Direction, Dissection, Dissector};
use rand::rngs::StdRng;
use rustls::pki_types::ServerName;
use url::{Host, Url};

use crate::bpf::FlowFilter;
use crate::capture::{Capture, CapturedPacket, flow_key};
use crate::config::OsConfig;
use crate::dns::KernelDns;
use crate::error::OsError;
use crate::tcpinfo::{self, TcpInfo};
use crate::{diag, proc_tcp, report, route, sys};

/// How long an item waits before release, so packets stamped earlier can still be read.
pub const SLACK: Duration = Duration::from_millis(3);
/// How long the end of a run waits for packets still on their way to the capture.
const GRACE: Duration = Duration::from_millis(1);
/// How long teardown may wait for the server to close its side.
const TEARDOWN_LIMIT: Duration = Duration::from_secs(5);
/// Packets read per capture socket and step.
const CAPTURE_BATCH: usize = 2048;
/// Plaintext read per step when there is no TLS.
const PLAIN_CHUNK: usize = 64 * 1024;

/// Linux TCP states used here.
const TCP_ESTABLISHED: u8 = 1;
const TCP_SYN_SENT: u8 = 2;
const TCP_FIN_WAIT1: u8 = 4;
const TCP_FIN_WAIT2: u8 = 5;
const TCP_TIME_WAIT: u8 = 6;
const TCP_CLOSE: u8 = 7;
const TCP_CLOSE_WAIT: u8 = 8;
const TCP_LAST_ACK: u8 = 9;
const TCP_CLOSING: u8 = 11;

/// Something that happened, waiting for its turn in the stream.
enum Item {
    Packet(u64, CapturedPacket),
    Event(u64, EventKind),
}

impl Item {
    fn t_us(&self) -> u64 {
        match self {
            Item::Packet(t, _) | Item::Event(t, _) => *t,
        }
    }
}

/// The kernel twin of a fetch. Create it with [`OsFetch::new`], then pull
/// [`OsFetch::next_event`] until it returns `None`.
pub struct OsFetch {
    cfg: OsConfig,
    capture: Capture,
    dissector: Dissector,
    rng: StdRng,
    /// Wall-clock start (the capture's clock), since the Unix epoch.
    start: Duration,
    deadline: Duration,
    link_time: Arc<LinkTime>,

    queue: VecDeque<Event>,
    pending: Vec<Item>,
    released_phase: Phase,
    last_released: u64,
    phase: Phase,
    started: bool,
    finished: bool,
    result: Option<Result<Summary, FetchError>>,

    /// The URL of the exchange in progress (a redirect changes it).
    url: Url,
    host: String,
    port: u16,
    tls_used: bool,
    redirects: usize,
    done_exchanges: Vec<ExchangeRecord>,
    /// The response being read is a redirect: its body is dropped.
    redirecting: bool,
    /// Where the redirect leads once this connection is closed.
    next_hop: Option<Url>,
    /// Every TCP connection of the run (local, remote), and the servers for the filter.
    flows: Vec<(SocketAddr, SocketAddr)>,
    servers: Vec<(IpAddr, u16)>,
    remote: Option<SocketAddr>,
    local: Option<SocketAddr>,
    dns: Option<KernelDns>,
    udp_ports: Vec<u16>,
    interfaces: Vec<String>,

    tcp: Option<TcpStream>,
    tcp_state: u8,
    tcp_state_shown: TcpState,
    fin_sent: bool,
    last_rx_tcp_us: u64,
    last_state_us: u64,

    tls_config: TlsConfig,
    tls: Option<TlsClient>,
    request_due: bool,
    request: Option<RequestHead>,
    request_end: Option<u64>,
    tx_written: u64,
    plain_out: Vec<u8>,
    response: Option<ResponseReader>,
    response_head: Option<HttpResponseHead>,
    body: DigestSink,
    plain: Vec<u8>,
    status: Option<u16>,
    peer_eof: bool,
    teardown_until: Option<Duration>,

    marks: TimingMarks,
    packets: u64,
    packets_tx: u64,
    packets_rx: u64,
    key_log: String,
    info_connect: Option<TcpInfo>,
    info_end: Option<TcpInfo>,
    checksums_completed: u64,
}

/// The response head as the exchange record wants it.
#[derive(Debug, Clone, Default)]
struct HttpResponseHead {
    status: u16,
    reason: String,
    version: String,
    headers: Vec<(String, String)>,
}

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn instant(t_us: u64) -> Instant {
    Instant::from_micros(i64::try_from(t_us).unwrap_or(i64::MAX))
}

fn setup_error(phase: Phase, e: impl std::fmt::Display) -> FetchError {
    FetchError::new(FailureClass::Setup, phase, "setup", e.to_string())
}

impl OsFetch {
    /// Prepares the kernel run: checks the capture permission and the URL. Nothing is
    /// sent until the first [`OsFetch::next_event`].
    pub fn new(mut cfg: OsConfig) -> Result<OsFetch, OsError> {
        let capture = Capture::new()?;
        let scheme = cfg.url.scheme().to_ascii_lowercase();
        let tls_used = scheme == "https";
        let host = match cfg.url.host() {
            Some(Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(Host::Ipv4(a)) => a.to_string(),
            Some(Host::Ipv6(a)) => a.to_string(),
            None => String::new(),
        };
        let port = cfg
            .url
            .port_or_known_default()
            .unwrap_or(if tls_used { 443 } else { 80 });
        let rng = cfg.randomness.rng("kernel-client");
        let url = cfg.url.clone();
        let link_time = Arc::new(LinkTime::new(SystemTime::now()));
        // Another purpose than the userspace run's, so the two connections' TLS randoms
        // differ even with --seed (a shared key log keys secrets by client random).
        let tls_config = TlsConfig::new(TlsSetup {
            provider: cfg.randomness.crypto_provider("kernel-client-tls"),
            roots: cfg.roots.clone(),
            alpn: vec![b"http/1.1".to_vec()],
            key_log: cfg.key_log.clone(),
            time: link_time.clone(),
            trust: cfg.trust,
        })
        .map_err(|e| OsError::io("TLS set-up failed", std::io::Error::other(e.to_string())))?;
        let body = DigestSink::new(cfg.body_out.take());
        Ok(OsFetch {
            cfg,
            capture,
            dissector: Dissector::new(),
            rng,
            start: Duration::ZERO,
            deadline: Duration::ZERO,
            link_time,
            queue: VecDeque::new(),
            pending: Vec::new(),
            released_phase: Phase::Resolve,
            last_released: 0,
            phase: Phase::Resolve,
            started: false,
            finished: false,
            result: None,
            url,
            host,
            port,
            tls_used,
            redirects: 0,
            done_exchanges: Vec::new(),
            redirecting: false,
            next_hop: None,
            flows: Vec::new(),
            servers: Vec::new(),
            remote: None,
            local: None,
            dns: None,
            udp_ports: Vec::new(),
            interfaces: Vec::new(),
            tcp: None,
            tcp_state: TCP_CLOSE,
            tcp_state_shown: TcpState::Closed,
            fin_sent: false,
            last_rx_tcp_us: 0,
            last_state_us: 0,
            tls_config,
            tls: None,
            request_due: false,
            request: None,
            request_end: None,
            tx_written: 0,
            plain_out: Vec::new(),
            response: None,
            response_head: None,
            body,
            plain: Vec::new(),
            status: None,
            peer_eof: false,
            teardown_until: None,
            marks: TimingMarks::default(),
            packets: 0,
            packets_tx: 0,
            packets_rx: 0,
            key_log: String::new(),
            info_connect: None,
            info_end: None,
            checksums_completed: 0,
        })
    }

    /// The next thing that happened, or `None` once the run is over (after its `done` or
    /// `error` event).
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
                    .and_then(|progressed| {
                        if progressed || self.finished {
                            Ok(())
                        } else {
                            self.wait()
                        }
                    })
            } else {
                self.started = true;
                self.begin()
            };
            if let Err(e) = r {
                self.fail(e);
            }
            self.release(self.finished);
        }
    }

    /// The outcome, once [`OsFetch::next_event`] has returned `None`.
    pub fn result(&self) -> Option<&Result<Summary, FetchError>> {
        self.result.as_ref()
    }

    /// The TLS secrets seen so far, as an NSS key log.
    pub fn key_log(&self) -> &str {
        &self.key_log
    }

    /// `TCP_INFO` right after the handshake.
    pub fn tcp_info_after_connect(&self) -> Option<&TcpInfo> {
        self.info_connect.as_ref()
    }

    /// `TCP_INFO` at the end, before the socket was closed.
    pub fn tcp_info_at_end(&self) -> Option<&TcpInfo> {
        self.info_end.as_ref()
    }

    /// The interfaces the run's packets were captured on.
    pub fn interfaces(&self) -> &[String] {
        &self.interfaces
    }

    /// Packets whose UDP/TCP checksum the kernel had left to the device (checksum
    /// offload) and the capture computed.
    pub fn checksums_completed(&self) -> u64 {
        self.checksums_completed
    }

    /// When the run started (wall clock).
    pub fn started_at(&self) -> SystemTime {
        UNIX_EPOCH + self.start
    }

    // ------------------------------------------------------------------ time, events

    fn now_us(&self) -> u64 {
        micros(since_epoch().saturating_sub(self.start))
    }

    fn emit(&mut self, kind: EventKind) {
        let t = self.now_us();
        self.pending.push(Item::Event(t, kind));
    }

    fn note(&mut self, text: impl Into<String>) {
        self.emit(EventKind::Note { text: text.into() });
    }

    fn enter(&mut self, phase: Phase) {
        if self.phase != phase || phase == Phase::Resolve {
            self.phase = phase;
            self.emit(EventKind::Phase { phase });
        }
    }

    // ------------------------------------------------------------------ start

    fn begin(&mut self) -> Result<(), FetchError> {
        self.start = since_epoch();
        self.deadline = self.cfg.timeout;
        self.link_time = Arc::new(LinkTime::new(UNIX_EPOCH + self.start));
        self.start_exchange()
    }

    /// Starts the exchange with `self.url` on a new connection: DNS (or not), then TCP.
    fn start_exchange(&mut self) -> Result<(), FetchError> {
        self.enter(Phase::Resolve);
        if let Some((addr, event)) = fetchscope_core::address_without_dns(
            &self.url,
            &self.host,
            self.port,
            &self.cfg.resolve,
        ) {
            self.emit(EventKind::Dns(event));
            return self.connect(addr);
        }
        self.start_dns()
    }

    /// Starts capturing on the interface that carries packets to `addr`.
    fn watch(&mut self, addr: IpAddr) -> Result<(), FetchError> {
        let (ifindex, name, why) = match self.cfg.capture_interface.as_deref() {
            Some("any") => (0, "any".to_string(), "as asked".to_string()),
            Some(name) => {
                let i = sys::if_index(name).map_err(|e| {
                    setup_error(
                        self.phase,
                        OsError::NoInterface {
                            name: name.to_string(),
                            source: e,
                        },
                    )
                })?;
                (i, name.to_string(), "as asked".to_string())
            }
            None => {
                match route::interface_for(addr).and_then(|n| Some((sys::if_index(&n).ok()?, n))) {
                    Some((i, n)) => (i, n, format!("the route to {addr}")),
                    None => (
                        0,
                        "any".to_string(),
                        format!("no route to {addr} found in the main table"),
                    ),
                }
            }
        };
        let before = self.capture.interfaces();
        self.capture
            .watch(ifindex)
            .map_err(|e| setup_error(self.phase, e))?;
        if self.capture.interfaces() != before {
            self.note(format!("capturing the kernel's packets on {name} ({why})"));
            self.interfaces.push(name);
        }
        Ok(())
    }

    fn update_filter(&mut self) -> Result<(), FetchError> {
        let filter = FlowFilter {
            udp_ports: self.udp_ports.clone(),
            tcp_servers: self.servers.clone(),
        };
        self.capture
            .set_filter(filter)
            .map_err(|e| setup_error(self.phase, e))
    }

    fn start_dns(&mut self) -> Result<(), FetchError> {
        let (v4, v6) = crate::dns::host_families();
        let qtypes = question_types(v4, v6);
        let now = instant(self.now_us());
        let dns = KernelDns::start(
            now,
            LookupSpec {
                host: &self.host,
                port: self.port,
                qtypes: &qtypes,
                servers: self.cfg.dns_servers.clone(),
                nxdomain_hint: None,
                // The kernel twin always runs on a real network.
                conditions: Default::default(),
                local_port: None,
            },
            &mut self.rng,
        )?;
        self.udp_ports.extend(dns.udp_ports());
        // DNS over TCP (after a truncated answer) goes to the same servers, port 53.
        for s in &self.cfg.dns_servers {
            if !self.servers.contains(&(*s, 53)) {
                self.servers.push((*s, 53));
            }
        }
        self.update_filter()?;
        for s in self.cfg.dns_servers.clone() {
            self.watch(s)?;
        }
        self.dns = Some(dns);
        self.run_dns()
    }

    /// Reports the lookup's events (each before the packet it announces: a packet is
    /// stamped when it leaves), carries out its commands, and connects once it has the
    /// address.
    fn run_dns(&mut self) -> Result<(), FetchError> {
        self.report_dns_events();
        let left = self
            .deadline
            .saturating_sub(Duration::from_micros(self.now_us()));
        let Some(d) = self.dns.as_mut() else {
            return Ok(());
        };
        let opened = d.run_commands(left)?;
        let addr = d.lookup.outcome();
        self.flows.extend(opened);
        if let Some(addr) = addr {
            // The sockets close here: a late duplicate answer meets a closed port.
            self.dns = None;
            self.marks.namelookup = Some(instant(self.now_us()));
            return self.connect(addr);
        }
        Ok(())
    }

    fn report_dns_events(&mut self) {
        while let Some(ev) = self.dns.as_mut().and_then(|d| d.lookup.poll_event()) {
            self.emit(EventKind::Dns(ev));
        }
    }

    // ------------------------------------------------------------------ step, wait

    fn step(&mut self) -> Result<bool, FetchError> {
        let before = self.pending.len();
        self.link_time.set(self.now_us());
        self.read_capture()?;
        self.observe_tcp(None);
        match self.phase {
            Phase::Resolve => self.drive_dns()?,
            Phase::Connect => self.drive_connect()?,
            Phase::Tls | Phase::Request | Phase::Response | Phase::Teardown => {
                self.drive_transport()?;
                self.drive_teardown()?;
            }
            Phase::Done => {}
        }
        self.observe_tcp(None);
        self.take_secrets();
        Ok(self.pending.len() > before)
    }

    fn read_capture(&mut self) -> Result<(), FetchError> {
        let packets = self
            .capture
            .drain(CAPTURE_BATCH)
            .map_err(|e| setup_error(self.phase, e))?;
        for p in packets {
            let t = micros(p.stamp.saturating_sub(self.start));
            // The server's segments change the socket's state: remember when the latest
            // one arrived, to date the change.
            if let (Some(k), Some(r), Some(l)) = (flow_key(&p.data), self.remote, self.local)
                && k.protocol == 6
                && SocketAddr::new(k.src, k.sport) == r
                && SocketAddr::new(k.dst, k.dport) == l
            {
                self.last_rx_tcp_us = self.last_rx_tcp_us.max(t);
            }
            self.pending.push(Item::Packet(t, p));
        }
        Ok(())
    }

    fn wait(&mut self) -> Result<(), FetchError> {
        let now = Duration::from_micros(self.now_us());
        let mut until = self.deadline;
        if let Some(t) = self.dns.as_ref().and_then(|d| d.lookup.poll_timeout()) {
            until = until.min(Duration::from_micros(t.micros_since(Instant::ZERO)));
        }
        if let Some(t) = self.teardown_until {
            until = until.min(t);
        }
        if let Some(oldest) = self.pending.iter().map(Item::t_us).min() {
            until = until.min(Duration::from_micros(oldest) + SLACK);
        }
        let timeout = until
            .checked_sub(now)
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_millis(1));
        let mut fds: Vec<sys::PollFd> = self
            .capture
            .fds()
            .into_iter()
            .map(|fd| sys::PollFd::from_borrowed_fd(fd, sys::PollFlags::IN))
            .collect();
        if let Some(d) = &self.dns {
            fds.extend(
                d.fds()
                    .into_iter()
                    .map(|fd| sys::PollFd::from_borrowed_fd(fd, sys::PollFlags::IN)),
            );
        }
        if let Some(s) = &self.tcp {
            let mut events = sys::PollFlags::empty();
            if self.phase == Phase::Connect {
                events |= sys::PollFlags::OUT;
            } else {
                if !self.peer_eof {
                    events |= sys::PollFlags::IN;
                }
                let pending_out = self.tls.as_ref().is_some_and(|t| !t.outgoing().is_empty())
                    || !self.plain_out.is_empty();
                if pending_out && !self.fin_sent {
                    events |= sys::PollFlags::OUT;
                }
            }
            // A socket with nothing to wait for stays out: POLLHUP would wake us at once.
            if !events.is_empty() {
                fds.push(sys::PollFd::new(s, events));
            }
        }
        sys::poll(&mut fds, timeout)
            .map(|_| ())
            .map_err(|e| setup_error(self.phase, format!("poll failed: {e}")))
    }

    fn check_deadline(&mut self) -> Result<(), FetchError> {
        if Duration::from_micros(self.now_us()) >= self.deadline {
            Err(self.timeout_error())
        } else {
            Ok(())
        }
    }

    fn timeout_error(&self) -> FetchError {
        let secs = self.deadline.as_secs_f64();
        // The kernel twin always runs on a real network.
        let conditions = fetchscope_core::advice::Conditions::default();
        let remote = self
            .remote
            .map(|r| r.to_string())
            .unwrap_or_else(|| self.host.clone());
        let what = match self.phase {
            Phase::Resolve => match &self.dns {
                Some(d) => d.lookup.stall_description(&self.host, &conditions),
                None => conditions.no_dns_answer(&self.host, "", 0),
            },
            Phase::Connect => conditions.no_syn_ack(&remote),
            phase => conditions.stall(
                phase,
                &remote,
                &fetchscope_core::advice::StallFacts {
                    body_bytes: self.body.bytes(),
                    response_started: self.body.bytes() > 0,
                    ..Default::default()
                },
            ),
        };
        FetchError::timed_out(self.phase, secs, &what)
    }

    // ------------------------------------------------------------------ TCP state

    /// Reads `TCP_INFO` and reports a changed state.
    fn observe_tcp(&mut self, cause: Option<&str>) {
        self.observe_tcp_at(cause, None);
    }

    /// [`Self::observe_tcp`] for a change our own call at `called` (µs) caused.
    fn observe_tcp_at(&mut self, cause: Option<&str>, called: Option<u64>) {
        let Some(s) = &self.tcp else { return };
        let Ok(info) = tcpinfo::read(s.as_fd()) else {
            return;
        };
        let state = info.state_code;
        if state == self.tcp_state {
            return;
        }
        let from_state = self.tcp_state;
        // A client socket never reads `TCP_NEW_SYN_RECV` (a listener's request socket's
        // state) or a number outside `TCP_*`: nothing to report for those.
        let Some(mut to) = TcpState::from_linux(state) else {
            return;
        };
        let from = self.tcp_state_shown;
        let cause_is_none = cause.is_none();
        let mut cause = cause.map(str::to_string);
        // A connection that closes from FIN-WAIT/CLOSING lives on in a time-wait socket;
        // ours then reads CLOSED. The kernel's table says which.
        if state == TCP_CLOSE
            && (self.fin_sent || matches!(from_state, TCP_FIN_WAIT1 | TCP_FIN_WAIT2 | TCP_CLOSING))
            && let (Some(l), Some(r)) = (self.local, self.remote)
            && let Some(left) = time_wait_left(l, r)
        {
            to = TcpState::TimeWait;
            let how_long = match left {
                Some(d) => format!("for another {:.1} s", d.as_secs_f64()),
                None => "(60 s on Linux)".to_string(),
            };
            cause = Some(format!(
                "both FINs were exchanged and acknowledged; the kernel keeps the connection in a time-wait socket {how_long}, and our socket now reads CLOSED"
            ));
        }
        self.tcp_state = state;
        self.tcp_state_shown = to;
        let change = report::tcp_change(from, to, cause.as_deref());
        // The kernel changed state when it processed the segment that caused it, which
        // may be well before this process got to run and look: date changes caused by a
        // server segment just after that segment, others (our own calls) now.
        // The segment that caused the change is in the capture by now (packet taps run
        // before TCP): read it in to date the change.
        let _ = self.read_capture();
        let now = self.now_us();
        let by_segment = matches!(
            (from_state, state),
            (TCP_SYN_SENT, _)
                | (TCP_ESTABLISHED, TCP_CLOSE_WAIT | TCP_CLOSE)
                | (TCP_FIN_WAIT1, _)
                | (TCP_FIN_WAIT2, _)
                | (TCP_CLOSING, _)
                | (TCP_LAST_ACK, _)
        ) && cause_is_none;
        let t = if by_segment && self.last_rx_tcp_us > self.last_state_us {
            (self.last_rx_tcp_us + 1).min(now)
        } else {
            called.unwrap_or(now)
        };
        self.last_state_us = t;
        self.pending
            .push(Item::Event(t, EventKind::TcpState(change)));
        if state == TCP_ESTABLISHED && self.marks.connect.is_none() {
            self.marks.connect = Some(instant(self.now_us()));
            self.note(format!("TCP_INFO after connect: {}", info.brief()));
            self.info_connect = Some(info);
        }
    }

    // ------------------------------------------------------------------ DNS

    fn drive_dns(&mut self) -> Result<(), FetchError> {
        let now = instant(self.now_us());
        let Some(d) = self.dns.as_mut() else {
            return Ok(());
        };
        if let Err(e) = d.read(now, &mut self.rng) {
            // What arrived before the failure is still shown.
            self.report_dns_events();
            return Err(e);
        }
        self.run_dns()
    }

    // ------------------------------------------------------------------ TCP

    fn connect(&mut self, addr: IpAddr) -> Result<(), FetchError> {
        self.enter(Phase::Connect);
        let remote = SocketAddr::new(addr, self.port);
        self.remote = Some(remote);
        self.local = None;
        if !self.servers.contains(&(addr, self.port)) {
            self.servers.push((addr, self.port));
        }
        self.watch(addr)?;
        self.update_filter()?;
        let domain = if addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let fd = sys::socket(domain, libc::SOCK_STREAM, 0).map_err(|e| {
            setup_error(Phase::Connect, format!("could not open a TCP socket: {e}"))
        })?;
        rustix::net::sockopt::set_tcp_nodelay(&fd, true)
            .map_err(|e| setup_error(Phase::Connect, format!("could not set TCP_NODELAY: {e}")))?;
        self.emit(EventKind::TcpState(report::tcp_change(
            TcpState::Closed,
            TcpState::SynSent,
            Some("connect() called: the kernel sends the SYN"),
        )));
        self.tcp_state = TCP_SYN_SENT;
        self.tcp_state_shown = TcpState::SynSent;
        match sys::connect(fd.as_fd(), remote) {
            Ok(_) => {}
            Err(e) => {
                let (class, kind) = match e.raw_os_error() {
                    Some(libc::ECONNREFUSED) => (FailureClass::Connect, "refused"),
                    Some(libc::ENETUNREACH) | Some(libc::EHOSTUNREACH) => {
                        (FailureClass::Connect, "unreachable")
                    }
                    _ => (FailureClass::Setup, "setup"),
                };
                return Err(FetchError::new(
                    class,
                    Phase::Connect,
                    kind,
                    format!("connect() to {remote} failed: {e}"),
                ));
            }
        }
        self.local = sys::local_addr(fd.as_fd()).ok();
        if let Some(l) = self.local {
            self.flows.push((l, remote));
        }
        self.tcp = Some(TcpStream::from(fd));
        Ok(())
    }

    fn drive_connect(&mut self) -> Result<(), FetchError> {
        let Some(s) = &self.tcp else { return Ok(()) };
        if let Ok(Some(e)) = sys::take_error(s.as_fd()) {
            let remote = self.remote.map(|r| r.to_string()).unwrap_or_default();
            let (kind, msg) = match e.raw_os_error() {
                Some(libc::ECONNREFUSED) => (
                    "refused",
                    format!(
                        "connection refused: {remote} answered the SYN with a reset (RST); nothing listens on that port"
                    ),
                ),
                Some(libc::ETIMEDOUT) => (
                    "timeout",
                    format!("the kernel gave up connecting to {remote}: {e}"),
                ),
                _ => ("unreachable", format!("connecting to {remote} failed: {e}")),
            };
            return Err(FetchError::new(
                FailureClass::Connect,
                Phase::Connect,
                kind,
                msg,
            ));
        }
        if self.tcp_state == TCP_ESTABLISHED {
            self.start_session()?;
        }
        Ok(())
    }

    fn start_session(&mut self) -> Result<(), FetchError> {
        if !self.tls_used {
            self.enter(Phase::Request);
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

    /// Moves bytes between the socket, TLS and HTTP, in both directions.
    fn drive_transport(&mut self) -> Result<(), FetchError> {
        if self.tcp.is_none() {
            return Ok(());
        }
        if self.request_due && self.tls.as_ref().is_none_or(|t| t.is_complete()) {
            self.request_due = false;
            self.queue_request();
        }
        let eof = self.read_socket()?;
        if let Some(tls) = &mut self.tls {
            let plain = &mut self.plain;
            // What happened before a failure (the ServerHello before a certificate error)
            // is reported too.
            let mut progress = Vec::new();
            let r = tls.process_into(&mut |p| plain.extend_from_slice(p), &mut progress);
            self.report_tls(progress);
            r.map_err(|e| {
                let phase = if self.phase <= Phase::Tls {
                    Phase::Tls
                } else {
                    self.phase
                };
                FetchError::new(FailureClass::Tls, phase, e.kind(), e.to_string())
            })?;
        }
        if !self.plain.is_empty() {
            self.receive_plaintext()?;
        }
        if eof && !self.peer_eof {
            self.peer_eof = true;
            self.peer_closed_stream()?;
        }
        if self.request_due && self.tls.as_ref().is_none_or(|t| t.is_complete()) {
            self.request_due = false;
            self.queue_request();
        }
        self.write_socket()
    }

    /// Reads what the socket holds (bounded by the TLS buffer); true at end of stream.
    fn read_socket(&mut self) -> Result<bool, FetchError> {
        if self.peer_eof {
            return Ok(false);
        }
        let Some(s) = self.tcp.as_mut() else {
            return Ok(false);
        };
        let result = match &mut self.tls {
            Some(tls) => loop {
                let spare = tls.incoming_spare();
                if spare.is_empty() {
                    break Ok(false);
                }
                match s.read(spare) {
                    Ok(0) => break Ok(true),
                    Ok(n) => tls.incoming_filled(n),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break Ok(false),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            },
            None => {
                let mut buf = vec![0u8; PLAIN_CHUNK];
                match s.read(&mut buf) {
                    Ok(0) => Ok(true),
                    Ok(n) => {
                        self.plain
                            .extend_from_slice(buf.get(..n).unwrap_or_default());
                        Ok(false)
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                        ) =>
                    {
                        Ok(false)
                    }
                    Err(e) => Err(e),
                }
            }
        };
        result.map_err(|e| self.reset_error(&e))
    }

    fn reset_error(&self, e: &std::io::Error) -> FetchError {
        let remote = self.remote.map(|r| r.to_string()).unwrap_or_default();
        let class = if self.phase <= Phase::Tls {
            FailureClass::Tls
        } else {
            FailureClass::Http
        };
        FetchError::new(
            class,
            self.phase,
            "reset",
            format!(
                "{remote} reset the connection during the {} phase ({e})",
                self.phase
            ),
        )
    }

    /// Hands pending ciphertext (or plain request bytes) to the socket.
    fn write_socket(&mut self) -> Result<(), FetchError> {
        if self.fin_sent {
            return Ok(());
        }
        let Some(s) = self.tcp.as_mut() else {
            return Ok(());
        };
        loop {
            let out: &[u8] = match &self.tls {
                Some(t) => t.outgoing(),
                None => &self.plain_out,
            };
            if out.is_empty() {
                self.send_fin();
                return Ok(());
            }
            match s.write(out) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    self.tx_written += n as u64;
                    match &mut self.tls {
                        Some(t) => t.consume_outgoing(n),
                        None => {
                            self.plain_out.drain(..n.min(self.plain_out.len()));
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.reset_error(&e)),
            }
        }
    }

    fn report_tls(&mut self, progress: Vec<fetchscope_core::tls::TlsProgress>) {
        for p in progress {
            if let fetchscope_core::tls::TlsProgress::HandshakeComplete { .. } = &p {
                self.marks.appconnect = Some(instant(self.now_us()));
                self.request_due = true;
            }
            match p.into_stage(&self.host) {
                Ok((stage, detail, certificates)) => {
                    let tls = self.tls.as_ref();
                    let ev = TlsEvent {
                        stage: stage.into(),
                        version: tls.and_then(|t| t.version()),
                        suite: tls.and_then(|t| t.suite()),
                        group: tls.and_then(|t| t.group()),
                        alpn: tls.and_then(|t| t.alpn()),
                        detail,
                        certificates,
                    };
                    self.emit(EventKind::Tls(ev));
                }
                Err(note) => self.note(note),
            }
        }
        if self.tls.as_ref().is_some_and(|t| t.peer_closed()) && !self.peer_eof {
            // close_notify ends the response stream like a FIN does.
            self.peer_eof = true;
            if let Err(e) = self.peer_closed_stream() {
                self.fail(e);
            }
        }
    }

    // ------------------------------------------------------------------ HTTP

    fn queue_request(&mut self) {
        self.enter(Phase::Request);
        let head = http::build_request("GET", &self.url, &self.cfg.user_agent);
        let bytes = head.to_bytes();
        self.marks.pretransfer = Some(instant(self.now_us()));
        self.emit(EventKind::HttpRequest(HttpRequestEvent {
            method: head.method.clone(),
            target: head.target.clone(),
            url: self.url.to_string(),
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
                self.plain_out.extend_from_slice(&bytes);
                self.request_end = Some(self.tx_written + self.plain_out.len() as u64);
            }
        }
        self.request = Some(head);
    }

    fn receive_plaintext(&mut self) -> Result<(), FetchError> {
        let data = std::mem::take(&mut self.plain);
        if self.marks.starttransfer.is_none() {
            self.marks.starttransfer = Some(instant(self.now_us()));
            self.enter(Phase::Response);
        }
        let Some(reader) = self.response.as_mut() else {
            self.note(format!(
                "{} bytes arrived that no request asked for; ignored",
                data.len()
            ));
            return Ok(());
        };
        let intake = http::feed_response(
            reader,
            &data,
            &self.url,
            &mut self.redirecting,
            &mut self.body,
        );
        let leftover = intake.leftover_note();
        self.report_http(intake.progress);
        if let Some(e) = intake.error {
            return Err(FetchError::http(&e));
        }
        if let Some(note) = leftover {
            self.note(note);
        }
        if intake.complete {
            self.response_done()?;
        }
        Ok(())
    }

    fn report_http(&mut self, progress: Vec<HttpProgress>) {
        for p in progress {
            match fetchscope_core::event::http_progress_event(&p) {
                Some(Ok(h)) => {
                    self.status = Some(h.status);
                    self.response_head = Some(HttpResponseHead {
                        status: h.status,
                        reason: h.reason.clone(),
                        version: h.version.clone(),
                        headers: h.headers.clone(),
                    });
                    self.emit(EventKind::Http(h));
                }
                Some(Err(note)) => self.note(note),
                None => {}
            }
        }
    }

    /// The response is complete: follow a redirect (on this connection if it may be
    /// reused, else on a new one once this one is closed), or close the connection.
    fn response_done(&mut self) -> Result<(), FetchError> {
        if self.marks.body_done.is_some() {
            return Ok(());
        }
        self.marks.body_done = Some(instant(self.now_us()));
        let Some(reader) = self.response.as_ref() else {
            return Ok(());
        };
        let (bytes, wire) = (reader.decoded_body_bytes(), reader.wire_body_bytes());
        let next = redirects::next_hop(
            reader.head(),
            &self.url,
            &self.done_exchanges,
            reader.keep_alive(),
            !self.peer_eof && self.tcp_state == TCP_ESTABLISHED,
            self.cfg.redirect_protocols,
        )?;
        let Some(next) = next else {
            self.note(format!(
                "response complete: {bytes} body bytes ({wire} on the wire)"
            ));
            self.begin_teardown();
            return Ok(());
        };
        self.redirects = next.event.hop;
        self.emit(EventKind::Redirect(next.event));
        let record = self.exchange_record();
        self.done_exchanges.push(record);
        self.note(next.note);
        if next.reuse {
            self.set_url(next.redirect.url);
            self.new_exchange(true);
            self.request_due = true;
        } else {
            self.next_hop = Some(next.redirect.url);
            self.begin_teardown();
        }
        Ok(())
    }

    /// Makes `url` the current one (host, port, TLS).
    fn set_url(&mut self, url: Url) {
        self.tls_used = url.scheme().eq_ignore_ascii_case("https");
        self.host = match url.host() {
            Some(Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(Host::Ipv4(a)) => a.to_string(),
            Some(Host::Ipv6(a)) => a.to_string(),
            None => String::new(),
        };
        self.port = url
            .port_or_known_default()
            .unwrap_or(if self.tls_used { 443 } else { 80 });
        self.url = url;
    }

    /// Forgets the previous exchange's response; its marks start now.
    fn new_exchange(&mut self, reused: bool) {
        self.marks = TimingMarks {
            start: instant(self.now_us()),
            reused,
            ..TimingMarks::default()
        };
        self.response = None;
        self.response_head = None;
        self.request = None;
        self.request_end = None;
        self.redirecting = false;
        self.status = None;
    }

    /// The record of the current exchange, for the summary.
    fn exchange_record(&self) -> ExchangeRecord {
        let head = self.response_head.clone().unwrap_or_default();
        let request = self.request.as_ref();
        let mut marks = self.marks;
        if self.done_exchanges.is_empty() {
            marks.start = Instant::ZERO;
        }
        ExchangeRecord {
            url: self.url.to_string(),
            method: request
                .map(|r| r.method.clone())
                .unwrap_or_else(|| "GET".into()),
            request_headers: request.map(|r| r.headers.clone()).unwrap_or_default(),
            status: head.status,
            reason: head.reason,
            http_version: head.version,
            response_headers: head.headers,
            started_us: u64::try_from(marks.start.total_micros()).unwrap_or(0),
            reused_connection: marks.reused,
            remote: self.remote.map(|r| r.to_string()).unwrap_or_default(),
            body_bytes: self
                .response
                .as_ref()
                .map_or(0, ResponseReader::decoded_body_bytes),
            wire_body_bytes: self
                .response
                .as_ref()
                .map_or(0, ResponseReader::wire_body_bytes),
            har: marks.har(self.tls_used),
        }
    }

    /// The previous connection is closed: the redirect's exchange starts on a new one.
    fn start_next_hop(&mut self, url: Url) -> Result<(), FetchError> {
        self.close_connection();
        self.set_url(url);
        self.new_exchange(false);
        self.tcp_state = TCP_CLOSE;
        self.tcp_state_shown = TcpState::Closed;
        self.fin_sent = false;
        self.peer_eof = false;
        self.tls = None;
        self.tx_written = 0;
        self.plain_out.clear();
        self.plain.clear();
        self.teardown_until = None;
        self.start_exchange()
    }

    /// The server closed its side (TCP FIN or TLS close_notify).
    fn peer_closed_stream(&mut self) -> Result<(), FetchError> {
        if let Some(reader) = self.response.as_mut() {
            if !reader.is_complete() {
                let progress = http::finish_response(reader, self.redirecting, &mut self.body)
                    .map_err(|e| FetchError::http(&e))?;
                self.report_http(progress);
                if self.response.as_ref().is_some_and(|r| r.is_complete()) {
                    self.response_done()?;
                }
            }
            return Ok(());
        }
        if self.phase < Phase::Request {
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

    // ------------------------------------------------------------------ teardown

    fn begin_teardown(&mut self) {
        if self.phase == Phase::Teardown || self.phase == Phase::Done {
            return;
        }
        self.enter(Phase::Teardown);
        let now = Duration::from_micros(self.now_us());
        self.teardown_until = Some((now + TEARDOWN_LIMIT).min(self.deadline));
        if let Some(tls) = &mut self.tls {
            tls.close();
            let plain = &mut self.plain;
            if let Ok(p) = tls.process(&mut |d| plain.extend_from_slice(d)) {
                self.report_tls(p);
            }
        }
    }

    fn drive_teardown(&mut self) -> Result<(), FetchError> {
        if self.phase != Phase::Teardown {
            return Ok(());
        }
        self.send_fin();
        let closed = self.tcp_state == TCP_CLOSE;
        let mut done = self.fin_sent && (closed && self.peer_eof || self.tcp.is_none());
        if !done
            && self
                .teardown_until
                .is_some_and(|t| Duration::from_micros(self.now_us()) >= t)
        {
            self.note(format!(
                "the server did not finish closing within {} s; stopping in {}",
                TEARDOWN_LIMIT.as_secs(),
                self.tcp_state_shown
            ));
            done = true;
        }
        if done {
            match self.next_hop.take() {
                Some(url) => return self.start_next_hop(url),
                None => self.finish(),
            }
        }
        Ok(())
    }

    /// In teardown, once everything is written (the close_notify last): `shutdown(SHUT_WR)`,
    /// right away, as a client's `close()` follows its last write.
    fn send_fin(&mut self) {
        if self.phase != Phase::Teardown || self.fin_sent {
            return;
        }
        let unsent = self.tls.as_ref().is_some_and(|t| !t.outgoing().is_empty())
            || !self.plain_out.is_empty();
        if unsent {
            return;
        }
        let called = self.now_us();
        if let Some(s) = &self.tcp {
            // As close() would, but the socket stays ours, so TCP_INFO can follow the rest
            // of the close.
            if let Err(e) = sys::shutdown_write(s.as_fd()) {
                self.note(format!("shutdown(SHUT_WR) failed: {e}"));
            }
        }
        self.fin_sent = true;
        self.observe_tcp_at(
            Some("shutdown(SHUT_WR) called: the kernel sends FIN after our last data"),
            Some(called),
        );
    }

    /// Reads the connection's `TCP_INFO` a last time and closes its socket.
    fn close_connection(&mut self) {
        if let Some(s) = &self.tcp
            && let Ok(info) = tcpinfo::read(s.as_fd())
        {
            // Dated with the connection's last state change: what it reports is how the
            // connection ended, not when this process got round to asking.
            let t = self.last_state_us.max(self.last_rx_tcp_us);
            self.pending.push(Item::Event(
                t,
                EventKind::Note {
                    text: format!("TCP_INFO at the end: {}", info.brief()),
                },
            ));
            self.info_end = Some(info);
        }
        self.tcp = None;
    }

    /// Reads `TCP_INFO` a last time, closes the socket and collects the packets still on
    /// their way to the capture (for [`GRACE`]).
    fn wind_down(&mut self) {
        self.close_connection();
        self.dns = None;
        let until = since_epoch() + GRACE;
        for _ in 0..16 {
            let now = since_epoch();
            let Some(left) = until.checked_sub(now).filter(|d| !d.is_zero()) else {
                break;
            };
            let mut fds: Vec<sys::PollFd> = self
                .capture
                .fds()
                .into_iter()
                .map(|fd| sys::PollFd::from_borrowed_fd(fd, sys::PollFlags::IN))
                .collect();
            if sys::poll(&mut fds, left).is_err() {
                break;
            }
            if self.read_capture().is_err() {
                break;
            }
        }
        let _ = self.read_capture();
        let drops = self.capture.take_drops();
        if drops > 0 {
            self.note(format!(
                "the capture lost {drops} packets (its buffer was full); the packet list is incomplete"
            ));
        }
        self.take_secrets();
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        let total = self.now_us();
        self.marks.total = Some(instant(total));
        self.teardown_until = None;
        self.wind_down();
        if let Err(e) = self.body.flush() {
            self.fail(FetchError::new(
                FailureClass::Setup,
                Phase::Done,
                "output",
                format!("could not write the body: {e}"),
            ));
            return;
        }
        // Release what came before, so the packet counts are complete; `done` comes
        // last, when the teardown ended (or just after a later packet).
        self.release(true);
        let t = self.last_released.max(total);
        self.phase = Phase::Done;
        self.pending
            .push(Item::Event(t, EventKind::Phase { phase: Phase::Done }));
        let summary = self.summary();
        self.pending
            .push(Item::Event(t, EventKind::Done(Box::new(summary.clone()))));
        self.result = Some(Ok(summary));
        self.finished = true;
    }

    fn summary(&self) -> Summary {
        let tls = self.tls.as_ref();
        let mut exchanges = self.done_exchanges.clone();
        let last = self.exchange_record();
        let (body_bytes, wire, har) = (self.body.bytes(), last.wire_body_bytes, last.har);
        exchanges.push(last);
        let marks = if self.done_exchanges.is_empty() {
            TimingMarks {
                start: Instant::ZERO,
                ..self.marks
            }
        } else {
            self.marks
        };
        Summary {
            url: self.url.to_string(),
            status: self.status.unwrap_or(0),
            body_bytes,
            wire_body_bytes: wire,
            body_sha256: self.body.sha256_hex(),
            timings: marks.curl(Instant::ZERO, self.tls_used),
            har,
            remote: self.remote.map(|r| r.to_string()).unwrap_or_default(),
            local: self.local.map(|l| l.to_string()).unwrap_or_default(),
            final_tcp_state: self.tcp_state_shown.to_string(),
            packets_tx: self.packets_tx,
            packets_rx: self.packets_rx,
            tls_version: tls.and_then(|t| t.version()),
            tls_suite: tls.and_then(|t| t.suite()),
            redirects: self.redirects,
            exchanges,
        }
    }

    fn fail(&mut self, e: FetchError) {
        if self.finished {
            return;
        }
        self.teardown_until = None;
        self.wind_down();
        self.emit(EventKind::Error(e.to_event()));
        self.result = Some(Err(e));
        self.finished = true;
    }

    // ------------------------------------------------------------------ release

    fn take_secrets(&mut self) {
        if let Some(tls) = &mut self.tls {
            for s in tls.take_secrets() {
                self.dissector
                    .add_tls_secret(&s.label, &s.client_random, &s.secret);
                self.key_log.push_str(&s.key_log_line());
                self.key_log.push('\n');
            }
        }
    }

    /// Moves items older than [`SLACK`] (all of them if `all`) into the event queue, in
    /// time order, decoding packets on the way.
    fn release(&mut self, all: bool) {
        self.take_secrets();
        let cutoff = if all {
            u64::MAX
        } else {
            self.now_us().saturating_sub(micros(SLACK))
        };
        self.pending.sort_by_key(Item::t_us);
        let n = self.pending.partition_point(|i| i.t_us() <= cutoff);
        let ready: Vec<Item> = self.pending.drain(..n).collect();
        for item in ready {
            match item {
                Item::Event(t_us, kind) => {
                    self.last_released = self.last_released.max(t_us);
                    if let EventKind::Phase { phase } = &kind {
                        self.released_phase = *phase;
                    }
                    self.queue.push_back(Event { t_us, kind });
                }
                Item::Packet(t_us, p) => {
                    self.last_released = self.last_released.max(t_us);
                    self.release_packet(t_us, p);
                }
            }
        }
    }

    fn release_packet(&mut self, t_us: u64, p: CapturedPacket) {
        let Some(key) = flow_key(&p.data) else {
            return;
        };
        let dir = match key.protocol {
            17 if self.udp_ports.contains(&key.sport) => Direction::Tx,
            17 if self.udp_ports.contains(&key.dport) => Direction::Rx,
            6 => {
                let (src, dst) = (
                    SocketAddr::new(key.src, key.sport),
                    SocketAddr::new(key.dst, key.dport),
                );
                if self.flows.contains(&(src, dst)) {
                    Direction::Tx
                } else if self.flows.contains(&(dst, src)) {
                    Direction::Rx
                } else {
                    return;
                }
            }
            1 | 58 => p.dir,
            _ => return,
        };
        let layers = self.dissector.dissect(dir, &p.data);
        match dir {
            Direction::Tx => self.packets_tx += 1,
            Direction::Rx => self.packets_rx += 1,
        }
        // The request's last byte is looked for on the current connection only.
        let current = match (self.local, self.remote) {
            (Some(l), Some(r)) => {
                let (src, dst) = (
                    SocketAddr::new(key.src, key.sport),
                    SocketAddr::new(key.dst, key.dport),
                );
                (src, dst) == (l, r)
            }
            _ => false,
        };
        if current {
            self.account_tcp(dir, t_us, &layers);
        }
        self.packets += 1;
        let mut summary = layers.summary();
        if let Some(orig) = p.cut_from {
            summary.push_str(&format!(" (captured {} of {orig} bytes)", p.data.len()));
        }
        if p.checksum_completed {
            self.checksums_completed += 1;
        }
        let ev = PacketEvent {
            dir,
            len: p.cut_from.unwrap_or(p.data.len()),
            phase: self.released_phase,
            summary,
            number: self.packets,
            layers,
            raw: Arc::from(p.data.into_boxed_slice()),
            fault: None,
            recovery: Vec::new(),
        };
        self.queue.push_back(Event {
            t_us,
            kind: EventKind::Packet(Box::new(ev)),
        });
    }

    /// The moment the request's last byte left, from our own segments.
    fn account_tcp(&mut self, dir: Direction, t_us: u64, d: &Dissection) {
        let (Direction::Tx, Some(t), Some(end), None) = (
            dir,
            d.tcp.as_ref(),
            self.request_end,
            self.marks.request_sent,
        ) else {
            return;
        };
        let len = u64::try_from(t.payload_len).unwrap_or(u64::MAX);
        let last = u64::from(t.seq.saturating_sub(1)) + len;
        if len > 0 && last >= end {
            self.marks.request_sent = Some(instant(t_us));
        }
    }
}

/// How long the connection `l` → `r` stays in TIME-WAIT, if it is there: asked over
/// `sock_diag`, else read from `/proc/net/tcp` (slow on big hosts, no remaining time).
fn time_wait_left(l: SocketAddr, r: SocketAddr) -> Option<Option<Duration>> {
    match diag::state(l, r) {
        Some(d) => (d.state == TCP_TIME_WAIT).then_some(Some(d.expires)),
        None => (proc_tcp::state(l, r) == Some(TCP_TIME_WAIT)).then_some(None),
    }
}
