//! [`OsFetch`]: the core's [`Session`] driven through the kernel's sockets — the same
//! fetch as the smoltcp driver (`fetchscope_flow::Fetch`).
//!
//! DNS goes over kernel UDP (and, after a truncated answer, TCP) sockets to the same
//! servers with the core's stub resolver; TCP is a non-blocking kernel socket with
//! `TCP_NODELAY` (as requests sets it); TLS, HTTP, redirects and the summary are the
//! session's. Packets come from [`Capture`] with the kernel's timestamps and are merged
//! with the session's events in time order by the [`Timeline`]: an item is released once
//! it is older than [`SLACK`], so a packet stamped before an event (the SYN-ACK before
//! `ESTABLISHED`) is never overtaken by it. Packets are decoded when released, after the
//! TLS secrets they need were learned.
//!
//! The kernel's TCP state is read from `TCP_INFO` after every wake-up (every captured
//! packet wakes the driver), so state changes follow the packets that caused them. Once
//! the kernel hands a closed connection to a time-wait socket, `sock_diag` (or
//! `/proc/net/tcp`) tells.
//!
//! [`Session`]: fetchscope_core::session::Session

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fetchscope_core::event::{PacketEvent, TcpStateChange};
use fetchscope_core::session::{
    ConnectionFacts, ReadOutcome, Session, SessionCommand, SessionDriver, SessionInput, Target,
};
use fetchscope_core::tcp_state::Stack;
use fetchscope_core::tls::LinkTime;
use fetchscope_core::{Event, EventKind, FailureClass, FetchError, Instant, Phase, Summary};
use fetchscope_core::{TcpState, advice::Conditions};
use fetchscope_wire::Direction;
use rand::rngs::StdRng;

use crate::bpf::FlowFilter;
use crate::capture::{Capture, CapturedPacket};
use crate::config::OsConfig;
use crate::connection::{KernelConnection, TCP_CLOSE, TCP_ESTABLISHED, connect_error};
use crate::dns::KernelDns;
use crate::error::OsError;
use crate::packets::PacketLog;
use crate::sys;
use crate::tcpinfo::TcpInfo;
use crate::timeline::{Item, Timeline};

/// How long an item waits before release, so packets stamped earlier can still be read.
pub const SLACK: Duration = Duration::from_millis(3);
/// How long the end of a run waits for packets still on their way to the capture.
const GRACE: Duration = Duration::from_millis(1);
/// Packets read per capture socket and step.
const CAPTURE_BATCH: usize = 2048;
/// Plaintext read per step when there is no TLS.
const PLAIN_CHUNK: usize = 64 * 1024;

/// The kernel twin of a fetch. Create it with [`OsFetch::new`], then pull
/// [`OsFetch::next_event`] until it returns `None`.
pub struct OsFetch {
    cfg: OsConfig,
    capture: Capture,
    rng: StdRng,
    /// Wall-clock start (the capture's clock), since the Unix epoch.
    start: Duration,
    link_time: Arc<LinkTime>,
    /// The protocol machine: TLS, HTTP, redirects, timings.
    session: Session,
    timeline: Timeline<CapturedPacket>,
    log: PacketLog,

    queue: VecDeque<Event>,
    released_phase: Phase,
    started: bool,

    /// The servers of the run, for the capture filter.
    servers: Vec<(IpAddr, u16)>,
    /// The current (or last) connection's ends, for its packets released after it.
    ends: Option<(SocketAddr, SocketAddr)>,
    dns: Option<KernelDns>,
    interfaces: Vec<String>,
    tcp: Option<KernelConnection>,
    /// The session asked to close the connection.
    closing: bool,

    info_connect: Option<TcpInfo>,
    info_end: Option<TcpInfo>,
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

fn t_us_of(t: Instant) -> u64 {
    t.micros_since(Instant::ZERO)
}

fn setup_error(phase: Phase, e: impl std::fmt::Display) -> FetchError {
    FetchError::new(FailureClass::Setup, phase, "setup", e.to_string())
}

impl OsFetch {
    /// Prepares the kernel run: checks the capture permission and the URL (as the
    /// smoltcp driver does). Nothing is sent until the first [`OsFetch::next_event`].
    pub fn new(mut cfg: OsConfig) -> Result<OsFetch, OsError> {
        let capture = Capture::new()?;
        let target = Target::new(cfg.spec.url.clone())?;
        let rng = cfg.spec.randomness.rng("kernel-client");
        let link_time = Arc::new(LinkTime::new(SystemTime::now()));
        // Another purpose than the userspace run's, so the two connections' TLS randoms
        // differ even with --seed (a shared key log keys secrets by client random).
        let tls = (cfg.spec)
            .tls_config("kernel-client-tls", link_time.clone())
            .map_err(|e| OsError::io("TLS set-up failed", std::io::Error::other(e.to_string())))?;
        let deadline = instant(micros(cfg.spec.timeout));
        // The kernel twin always runs on a real network.
        let session_config = cfg
            .spec
            .session_config(tls, deadline, Conditions::default());
        let session = Session::new(session_config, target, Instant::ZERO);
        Ok(OsFetch {
            cfg,
            capture,
            rng,
            start: Duration::ZERO,
            link_time,
            session,
            timeline: Timeline::default(),
            log: PacketLog::default(),
            queue: VecDeque::new(),
            released_phase: Phase::Resolve,
            started: false,
            servers: Vec::new(),
            ends: None,
            dns: None,
            interfaces: Vec::new(),
            tcp: None,
            closing: false,
            info_connect: None,
            info_end: None,
        })
    }

    /// The next thing that happened, or `None` once the run is over (after its `done` or
    /// `error` event).
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            if self.session.is_over() {
                return None;
            }
            let r = if self.started {
                self.check_deadline()
                    .and_then(|()| self.step())
                    .and_then(|progressed| {
                        if progressed || self.session.is_over() {
                            Ok(())
                        } else {
                            self.wait()
                        }
                    })
            } else {
                self.started = true;
                self.start = since_epoch();
                self.session.start(Instant::ZERO);
                self.run_commands()
            };
            if let Err(e) = r {
                self.fail(e);
            }
            self.release(self.session.is_over());
        }
    }

    /// The outcome, once [`OsFetch::next_event`] has returned `None`.
    pub fn result(&self) -> Option<&Result<Summary, FetchError>> {
        self.session.outcome()
    }

    /// The TLS secrets seen so far, as an NSS key log.
    pub fn key_log(&self) -> &str {
        self.log.pipeline.key_log()
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
        self.log.checksums_completed
    }

    /// When the run started (wall clock).
    pub fn started_at(&self) -> SystemTime {
        UNIX_EPOCH + self.start
    }

    // ------------------------------------------------------------------ time, session

    fn now_us(&self) -> u64 {
        micros(since_epoch().saturating_sub(self.start))
    }

    fn now(&self) -> Instant {
        instant(self.now_us())
    }

    fn note(&mut self, text: impl Into<String>) {
        let t = self.now_us();
        self.timeline
            .event(t, EventKind::Note { text: text.into() });
    }

    // ------------------------------------------------------------------ capture

    /// Starts capturing on the interface that carries packets to `addr`.
    fn watch(&mut self, addr: IpAddr) -> Result<(), FetchError> {
        let asked = self.cfg.capture_interface.as_deref();
        let watched = (self.capture.watch_route(addr, asked))
            .map_err(|e| setup_error(self.session.phase(), e))?;
        if let Some((name, why)) = watched {
            self.note(format!("capturing the kernel's packets on {name} ({why})"));
            self.interfaces.push(name);
        }
        Ok(())
    }

    fn update_filter(&mut self) -> Result<(), FetchError> {
        let filter = FlowFilter {
            udp_ports: self.log.udp_ports.clone(),
            tcp_servers: self.servers.clone(),
            tcp_ports: Vec::new(),
        };
        self.capture
            .set_filter(filter)
            .map_err(|e| setup_error(self.session.phase(), e))
    }

    fn read_capture(&mut self) -> Result<(), FetchError> {
        let packets = self
            .capture
            .drain(CAPTURE_BATCH)
            .map_err(|e| setup_error(self.session.phase(), e))?;
        for p in packets {
            let t = micros(p.stamp.saturating_sub(self.start));
            if let Some(c) = self.tcp.as_mut() {
                c.saw(t, &p.data);
            }
            self.timeline.packet(t, p);
        }
        Ok(())
    }

    // ------------------------------------------------------------------ DNS

    fn start_dns(&mut self, host: &str, port: u16) -> Result<(), FetchError> {
        let servers = self.cfg.spec.dns_servers.clone();
        let dns = KernelDns::start_for(self.now(), host, port, servers, &mut self.rng)?;
        self.log.udp_ports.extend(dns.udp_ports());
        // DNS over TCP (after a truncated answer) goes to the same servers, port 53.
        for s in &self.cfg.spec.dns_servers {
            if !self.servers.contains(&(*s, 53)) {
                self.servers.push((*s, 53));
            }
        }
        self.update_filter()?;
        for s in self.cfg.spec.dns_servers.clone() {
            self.watch(s)?;
        }
        self.dns = Some(dns);
        self.run_dns()
    }

    /// Reports the lookup's events (each before the packet it announces: a packet is
    /// stamped when it leaves), carries out its commands, and hands the session the
    /// address once there is one.
    fn run_dns(&mut self) -> Result<(), FetchError> {
        self.report_dns_events();
        let left = self
            .cfg
            .spec
            .timeout
            .saturating_sub(Duration::from_micros(self.now_us()));
        let Some(d) = self.dns.as_mut() else {
            return Ok(());
        };
        let opened = d.run_commands(left)?;
        let addr = d.lookup.outcome();
        self.log.flows.extend(opened);
        if let Some(addr) = addr {
            // The sockets close here: a late duplicate answer meets a closed port.
            self.dns = None;
            return self.tell(SessionInput::Resolved(addr));
        }
        Ok(())
    }

    fn report_dns_events(&mut self) {
        while let Some(ev) = self.dns.as_mut().and_then(|d| d.lookup.poll_event()) {
            let t = self.now_us();
            self.timeline.event(t, EventKind::Dns(ev));
        }
    }

    fn drive_dns(&mut self) -> Result<(), FetchError> {
        let now = self.now();
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

    // ------------------------------------------------------------------ step, wait

    fn step(&mut self) -> Result<bool, FetchError> {
        let before = self.timeline.len();
        self.link_time.set(self.now_us());
        self.read_capture()?;
        self.observe_tcp(None);
        match self.session.phase() {
            Phase::Resolve => self.drive_dns()?,
            Phase::Connect => self.drive_connect()?,
            Phase::Proxy | Phase::Tls | Phase::Request | Phase::Response | Phase::Teardown => {
                self.drive_transport()?;
                self.drive_teardown()?;
            }
            Phase::Done => {}
        }
        self.observe_tcp(None);
        self.take_secrets();
        Ok(self.timeline.len() > before)
    }

    fn wait(&mut self) -> Result<(), FetchError> {
        let now = Duration::from_micros(self.now_us());
        let at = |t: Instant| Duration::from_micros(t_us_of(t));
        let mut until = self.cfg.spec.timeout;
        if let Some(t) = self.dns.as_ref().and_then(|d| d.lookup.poll_timeout()) {
            until = until.min(at(t));
        }
        if let Some(t) = self.session.poll_timeout() {
            until = until.min(at(t));
        }
        if let Some(oldest) = self.timeline.oldest() {
            until = until.min(Duration::from_micros(oldest) + SLACK);
        }
        let timeout = until
            .checked_sub(now)
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_millis(1));
        let readable = |fd| sys::PollFd::from_borrowed_fd(fd, sys::PollFlags::IN);
        let mut fds: Vec<sys::PollFd> = self.capture.fds().into_iter().map(readable).collect();
        if let Some(d) = &self.dns {
            fds.extend(d.fds().into_iter().map(readable));
        }
        if let Some(s) = &self.tcp {
            let mut events = sys::PollFlags::empty();
            if self.session.phase() == Phase::Connect {
                events |= sys::PollFlags::OUT;
            } else {
                if !self.session.peer_closed() {
                    events |= sys::PollFlags::IN;
                }
                if !self.session.outgoing().is_empty() && !s.fin_sent {
                    events |= sys::PollFlags::OUT;
                }
            }
            // A socket with nothing to wait for stays out: POLLHUP would wake us at once.
            if !events.is_empty() {
                fds.push(sys::PollFd::new(&s.stream, events));
            }
        }
        sys::poll(&mut fds, timeout)
            .map(|_| ())
            .map_err(|e| setup_error(self.session.phase(), format!("poll failed: {e}")))
    }

    fn check_deadline(&mut self) -> Result<(), FetchError> {
        if let Some(e) = self.session.connect_timed_out(self.now()) {
            return Err(e);
        }
        if Duration::from_micros(self.now_us()) < self.cfg.spec.timeout {
            return Ok(());
        }
        let host = &self.session.target().host;
        let stall = self
            .dns
            .as_ref()
            .map(|d| d.lookup.stall_description(host, &Conditions::default()));
        let facts = self.session.stall_facts();
        Err(self
            .session
            .timeout_error(self.cfg.spec.timeout.as_secs_f64(), stall, &facts))
    }

    // ------------------------------------------------------------------ TCP state

    /// Reads `TCP_INFO` and reports a changed state.
    fn observe_tcp(&mut self, cause: Option<&str>) {
        self.observe_tcp_at(cause, None);
    }

    /// [`Self::observe_tcp`] for a change our own call at `called` (µs) caused.
    fn observe_tcp_at(&mut self, cause: Option<&str>, called: Option<u64>) {
        let Some(c) = self.tcp.as_mut().and_then(|t| t.poll_change(cause, called)) else {
            return;
        };
        // The segment that caused the change is in the capture by now (packet taps run
        // before TCP): read it in to date the change.
        let _ = self.read_capture();
        let now = self.now_us();
        let Some(t) = self.tcp.as_mut().map(|k| k.date(&c, now)) else {
            return;
        };
        let first_connect = self.session.marks().connect.is_none();
        let established = c.change.to == TcpState::Established;
        // A state change starts nothing by itself: no command follows it.
        let _ = self
            .session
            .handle(instant(t), SessionInput::TcpState(c.change));
        self.drain_events();
        if established && first_connect {
            self.note(format!("TCP_INFO after connect: {}", c.info.brief()));
            self.info_connect = Some(c.info);
        }
    }

    // ------------------------------------------------------------------ TCP

    fn connect(&mut self, remote: SocketAddr) -> Result<(), FetchError> {
        let addr = remote.ip();
        if !self.servers.contains(&(addr, remote.port())) {
            self.servers.push((addr, remote.port()));
        }
        self.watch(addr)?;
        self.update_filter()?;
        let change = TcpStateChange::new(
            TcpState::Closed,
            TcpState::SynSent,
            Some("connect() called: the kernel sends the SYN"),
            Stack::Kernel,
        );
        self.tell(SessionInput::TcpState(change))?;
        let conn = KernelConnection::open(remote)
            .map_err(|e| connect_error(remote, &e, false, self.session.refused_error()))?;
        if let Some(l) = conn.local {
            self.log.flows.push((l, remote));
            self.ends = Some((l, remote));
        }
        self.tcp = Some(conn);
        Ok(())
    }

    fn drive_connect(&mut self) -> Result<(), FetchError> {
        let Some(c) = &self.tcp else { return Ok(()) };
        if let Some(e) = c.take_error() {
            return Err(connect_error(
                c.remote,
                &e,
                true,
                self.session.refused_error(),
            ));
        }
        if c.state == TCP_ESTABLISHED {
            self.tell(SessionInput::Connected)?;
            return self.drive_transport();
        }
        Ok(())
    }

    /// Moves bytes between the socket and the session, in both directions.
    fn drive_transport(&mut self) -> Result<(), FetchError> {
        if self.tcp.is_none() {
            return Ok(());
        }
        self.tell(SessionInput::Ready)?;
        let eof = self.read_socket()?;
        self.tell(SessionInput::StreamRead { eof })?;
        self.tell(SessionInput::Ready)?;
        self.write_socket()
    }

    /// Reads what the socket holds (bounded by the TLS buffer); true at end of stream.
    fn read_socket(&mut self) -> Result<bool, FetchError> {
        if self.session.peer_closed() {
            return Ok(false);
        }
        let Some(s) = self.tcp.as_mut() else {
            return Ok(false);
        };
        let result = self.session.read_stream(PLAIN_CHUNK, |buf| {
            loop {
                match s.stream.read(buf) {
                    Ok(0) => break Ok(ReadOutcome::End),
                    Ok(n) => break Ok(ReadOutcome::Bytes(n)),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        break Ok(ReadOutcome::Empty);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            }
        });
        result.map_err(|e| self.session.reset_error(Some(&e.to_string())))
    }

    /// Hands what the session sends (TLS records, or the plain request) to the socket.
    fn write_socket(&mut self) -> Result<(), FetchError> {
        let Some(s) = self.tcp.as_mut().filter(|s| !s.fin_sent) else {
            return Ok(());
        };
        loop {
            let out = self.session.outgoing();
            if out.is_empty() {
                break;
            }
            match s.stream.write(out) {
                Ok(0) => return Ok(()),
                Ok(n) => self.session.consume_outgoing(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.session.reset_error(Some(&e.to_string()))),
            }
        }
        self.send_fin();
        Ok(())
    }

    // ------------------------------------------------------------------ teardown

    /// Tells the session once both sides closed, or lets it stop waiting.
    fn drive_teardown(&mut self) -> Result<(), FetchError> {
        if !self.closing {
            return Ok(());
        }
        self.send_fin();
        let peer_closed = self.session.peer_closed();
        let closed = |c: &KernelConnection| c.fin_sent && c.state == TCP_CLOSE && peer_closed;
        if self.tcp.as_ref().is_none_or(closed) {
            return self.tell(SessionInput::Closed);
        }
        self.session.handle_timeout(self.now());
        self.run_commands()
    }

    /// Once the session asked to close and everything is written (the close_notify
    /// last): `shutdown(SHUT_WR)`, right away, as a client's `close()` follows its last
    /// write.
    fn send_fin(&mut self) {
        let ready = self.closing && self.session.outgoing().is_empty();
        let called = self.now_us();
        let Some(c) = self.tcp.as_mut().filter(|c| ready && !c.fin_sent) else {
            return;
        };
        if let Err(e) = c.shutdown_write() {
            self.note(format!("shutdown(SHUT_WR) failed: {e}"));
        }
        self.observe_tcp_at(
            Some("shutdown(SHUT_WR) called: the kernel sends FIN after our last data"),
            Some(called),
        );
    }

    /// Reads the connection's `TCP_INFO` a last time and closes its socket (the
    /// redirect's next exchange, if any, opens its own).
    fn close_connection(&mut self) {
        self.closing = false;
        if let Some(c) = self.tcp.take()
            && let Some(info) = c.info()
        {
            // Dated with the connection's last state change: what it reports is how the
            // connection ended, not when this process got round to asking.
            let text = format!("TCP_INFO at the end: {}", info.brief());
            self.timeline
                .event(c.last_change_us(), EventKind::Note { text });
            self.info_end = Some(info);
        }
    }

    /// Reads `TCP_INFO` a last time, closes the socket and collects the packets still on
    /// their way to the capture (for [`GRACE`]).
    fn wind_down(&mut self) {
        self.close_connection();
        self.dns = None;
        let until = since_epoch() + GRACE;
        for _ in 0..16 {
            let Some(left) = until.checked_sub(since_epoch()).filter(|d| !d.is_zero()) else {
                break;
            };
            if self.capture.wait(left).is_err() || self.read_capture().is_err() {
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

    fn fail(&mut self, e: FetchError) {
        if self.session.is_over() {
            return;
        }
        self.wind_down();
        self.session.fail(self.now(), e);
        self.drain_events();
    }

    fn finish(&mut self) {
        let total = self.now_us();
        self.wind_down();
        // Release what came before, so the packet counts are complete; `done` comes
        // last, when the teardown ended (or just after a later packet).
        self.release(true);
        let t = self.timeline.last_released().max(total);
        let facts = ConnectionFacts {
            local: self.ends.map(|(l, _)| l),
            packets_tx: self.log.tx,
            packets_rx: self.log.rx,
        };
        self.session.finish(instant(total), facts);
        while let Some((_, kind)) = self.session.poll_event() {
            self.timeline.event(t, kind);
        }
    }

    // ------------------------------------------------------------------ release

    fn take_secrets(&mut self) {
        let secrets = self.session.take_secrets();
        self.log.pipeline.learn_secrets(secrets);
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
        for item in self.timeline.release(cutoff) {
            match item {
                Item::Event(t_us, kind) => {
                    if let EventKind::Phase { phase } = &kind {
                        self.released_phase = *phase;
                    }
                    self.queue.push_back(Event { t_us, kind });
                }
                Item::Packet(t_us, p) => {
                    let Some(ev) = self.log.event(p, self.released_phase) else {
                        continue;
                    };
                    self.account_tcp(t_us, &ev);
                    self.queue.push_back(Event {
                        t_us,
                        kind: EventKind::Packet(ev),
                    });
                }
            }
        }
    }

    /// The moment the request's last byte left, from our own segments on the current
    /// connection.
    fn account_tcp(&mut self, t_us: u64, ev: &PacketEvent) {
        let (Direction::Tx, Some(t), Some(ip), Some((l, r))) = (
            ev.dir,
            ev.layers.tcp.as_ref(),
            ev.layers.ip.as_ref(),
            self.ends,
        ) else {
            return;
        };
        if (
            SocketAddr::new(ip.src, t.src_port),
            SocketAddr::new(ip.dst, t.dst_port),
        ) != (l, r)
        {
            return;
        }
        let len = u64::try_from(t.payload_len).unwrap_or(u64::MAX);
        let end = u64::from(t.seq.saturating_sub(1)) + len;
        self.session.segment_sent(instant(t_us), end, len);
    }
}

impl SessionDriver for OsFetch {
    fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    fn clock(&self) -> Instant {
        self.now()
    }

    /// Into the timeline, to be put in order with the packets.
    fn event(&mut self, t: Instant, kind: EventKind) {
        self.timeline.event(t_us_of(t), kind);
    }

    fn command(&mut self, command: SessionCommand) -> Result<(), FetchError> {
        match command {
            SessionCommand::Lookup { host, port } => self.start_dns(&host, port)?,
            SessionCommand::Connect { remote } => self.connect(remote)?,
            // The FIN follows the last write (drive_teardown).
            SessionCommand::Close => self.closing = true,
            SessionCommand::Release => self.close_connection(),
            SessionCommand::Finish => self.finish(),
        }
        Ok(())
    }
}
