//! [`Fetch`]: the hand-driven machine. Resolve → Connect → TLS → Request → Response →
//! Teardown → Done, one [`Event`] at a time (with redirects, Request → Response repeats
//! on a reused connection, or the whole sequence repeats for another host).
//!
//! Each step handles at most one incoming packet, lets the protocol layers react, and
//! sends what they produced, so every packet is followed by its consequences in the
//! stream: a SYN-ACK, then the state change to ESTABLISHED, then the ACK and the
//! ClientHello. When nothing can happen until a packet arrives or a timer fires, the
//! machine waits on the link — blocking on the device's file descriptor, or moving the
//! built-in lab's virtual clock — never spinning.
//!
//! What the fetch does at each stage — TLS, HTTP, redirects, timings, the summary — is
//! the core's [`Session`]; this driver gives it smoltcp's sockets and the packets. It is
//! split by concern into private modules: `resolve` (the DNS stub's sockets),
//! `connection` (the TCP socket and the stream bytes), `exchange` (the session's commands)
//! and `teardown`.

mod connection;
mod exchange;
mod resolve;
mod snapshot;
mod teardown;

pub use snapshot::{HttpSnapshot, Snapshot, TcpDerived, TcpExposed, TcpSnapshot, TlsSnapshot};

/// What [`Fetch::poll_event`] found. (An event is large, a packet held inline: see
/// [`EventKind`].)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Poll {
    /// The next event.
    Event(Event),
    /// Every event so far has been returned; the next call waits for the link or a timer.
    Waiting,
    /// The fetch is over (its `done` or `error` event was returned).
    Over,
}

use std::collections::VecDeque;
use std::sync::Arc;

use fetchscope_core::packets::PacketPipeline;
use fetchscope_core::recovery::RecoveryTracker;
use fetchscope_core::session::SessionDriver;
use fetchscope_net::{Direction, Frame, Link, TapDevice, WaitOutcome};
use fetchscope_wire::TcpAnalysis;
use rand::Rng;
use rand::rngs::StdRng;
use smoltcp::iface::{Config, Interface, PollIngressSingleResult, SocketSet};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpAddress};

use crate::config::FetchConfig;
use fetchscope_core::error::{FailureClass, FetchError};
use fetchscope_core::event::{Event, EventKind, Phase, Summary};
use fetchscope_core::session::{ConnectionFacts, Session, Target};
use fetchscope_core::tls::LinkTime;

use connection::Conn;
use resolve::DnsSockets;

/// `t` on the core's clock (both count microseconds from the link's time zero).
fn at(t: Instant) -> fetchscope_core::Instant {
    fetchscope_core::Instant::from_micros(t.total_micros())
}

/// `t` on smoltcp's clock.
fn stack_time(t: fetchscope_core::Instant) -> Instant {
    Instant::from_micros(t.total_micros())
}

/// Something that happened in this step, in order; packets are decoded at the end of
/// the step, once the TLS secrets they need are known.
enum Pending {
    Frame(Frame, Phase),
    /// An event other than a packet's (rare: boxed, so the many frames stay small).
    Event(Instant, Box<EventKind>),
}

/// The fetch machine. Create it with [`Fetch::new`], then pull [`Fetch::next_event`]
/// until it returns `None`.
pub struct Fetch<L: Link> {
    cfg: FetchConfig,
    dev: TapDevice<L>,
    iface: Interface,
    sockets: SocketSet<'static>,
    rng: StdRng,
    start: Instant,
    deadline: Instant,
    link_time: Arc<LinkTime>,

    queue: VecDeque<Event>,
    pending: Vec<Pending>,
    /// The device's frames of the step being collected (kept for its room).
    frames: Vec<fetchscope_net::Frame>,
    started: bool,
    /// The last step could do nothing: the next one waits on the link first.
    must_wait: bool,

    /// The protocol machine: TLS, HTTP, redirects, timings.
    session: Session,
    dns: Option<DnsSockets>,
    conn: Option<Conn>,

    /// A failure found while decoding packets (an ICMP error about our own packets),
    /// raised before the next step.
    pending_error: Option<FetchError>,
    /// Names the recovery each packet shows (and decodes packets fault injection
    /// dropped on their way in).
    recovery: RecoveryTracker,
    /// A person paused the fetch while the connection was open on a real link.
    paused_while_open: bool,
    /// Step mode: a snapshot is kept for every event, as of that event.
    step_snapshots: bool,
    /// The state as the events flushed so far tell it.
    as_of: snapshot::AsOf,
    /// Snapshots of the queued events, in step mode.
    snapshots: VecDeque<Snapshot>,
    /// The snapshot of the last event returned, in step mode.
    last_snapshot: Option<Snapshot>,
    /// Decoding (the one TCP tracker) and numbering of every packet.
    packets: PacketPipeline,
    packets_tx: u64,
    packets_rx: u64,
}

/// The stack's interface over `dev` (which reports its MTU), with the addresses and
/// default routes of `cfg`. Made again, with the same addresses and routes, when the
/// path MTU drops: smoltcp reads the device's MTU only when an interface is made.
fn new_interface<L: Link>(
    dev: &mut TapDevice<L>,
    cfg: &FetchConfig,
    seed: u64,
    now: Instant,
) -> Result<Interface, FetchError> {
    let setup = |msg: String| FetchError::new(FailureClass::Setup, Phase::Resolve, "setup", msg);
    let mut iface_cfg = Config::new(HardwareAddress::Ip);
    iface_cfg.random_seed = seed;
    let mut iface = Interface::new(iface_cfg, dev, now);
    let mut pushed = Ok(());
    iface.update_ip_addrs(|list| {
        for a in &cfg.addrs {
            if list.push(*a).is_err() {
                pushed = Err(*a);
            }
        }
    });
    if let Err(a) = pushed {
        return Err(setup(format!("could not give the stack the address {a}")));
    }
    for gw in &cfg.gateways {
        let r = match *gw {
            std::net::IpAddr::V4(a) => iface.routes_mut().add_default_ipv4_route(a).map(|_| ()),
            std::net::IpAddr::V6(a) => iface.routes_mut().add_default_ipv6_route(a).map(|_| ()),
        };
        if r.is_err() {
            return Err(setup(format!("could not add a default route via {gw}")));
        }
    }
    Ok(iface)
}

impl<L: Link> Fetch<L> {
    /// Prepares a fetch over `link`. Nothing is sent until the first
    /// [`Fetch::next_event`].
    pub fn new(mut cfg: FetchConfig, link: L) -> Result<Self, FetchError> {
        let setup =
            |msg: String| FetchError::new(FailureClass::Setup, Phase::Resolve, "setup", msg);
        let target = Target::new(cfg.spec.url.clone())?;
        let mut rng = cfg.spec.randomness.rng("client");
        let mut dev = TapDevice::new(link);
        // A virtual link is the built-in lab, whose servers run smoltcp too.
        let peer_is_smoltcp = dev.link().is_virtual();
        let start = dev.link().now();
        if cfg.addrs.is_empty() {
            return Err(setup("the stack needs an address (--addr)".to_string()));
        }
        if let Some(mtu) = cfg.mtu {
            let link_mtu = dev.link().mtu();
            if mtu > link_mtu {
                return Err(setup(format!(
                    "--mtu {mtu} is larger than the stack's link allows ({}: MTU {link_mtu}): give --mtu {link_mtu} or less",
                    dev.link().describe()
                )));
            }
            dev.limit_mtu(Some(mtu));
        }
        let iface = new_interface(&mut dev, &cfg, rng.random(), start)?;
        let timeout =
            Duration::from_micros(cfg.spec.timeout.as_micros().min(u64::MAX as u128) as u64);
        let link_time = Arc::new(LinkTime::new(cfg.epoch));
        let tls = (cfg.spec)
            .tls_config("client-tls", link_time.clone())
            .map_err(|e| setup(e.to_string()))?;
        let conditions = cfg.conditions.clone();
        let session_config = cfg
            .spec
            .session_config(tls, at(start + timeout), conditions);
        let session = Session::new(session_config, target, at(start));
        Ok(Fetch {
            dev,
            iface,
            sockets: SocketSet::new(Vec::new()),
            rng,
            start,
            deadline: start + timeout,
            link_time,
            queue: VecDeque::new(),
            pending: Vec::new(),
            frames: Vec::new(),
            started: false,
            must_wait: false,
            session,
            dns: None,
            conn: None,
            pending_error: None,
            recovery: RecoveryTracker::new(
                peer_is_smoltcp,
                smoltcp::config::ASSEMBLER_MAX_SEGMENT_COUNT,
            ),
            paused_while_open: false,
            step_snapshots: false,
            as_of: snapshot::AsOf::start(),
            snapshots: VecDeque::new(),
            last_snapshot: None,
            packets: PacketPipeline::new(),
            packets_tx: 0,
            packets_rx: 0,
            cfg,
        })
    }

    /// The next thing that happened, or `None` once the fetch is over (after its `done`
    /// or `error` event).
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            match self.poll_event() {
                Poll::Event(e) => return Some(e),
                Poll::Waiting => {}
                Poll::Over => return None,
            }
        }
    }

    /// Like [`Fetch::next_event`], but says [`Poll::Waiting`] instead of waiting when
    /// every event so far has been returned and nothing can happen until a packet arrives
    /// or a timer fires: the moment to flush buffered output, so what a person watches is
    /// never behind what happened. The next call waits. (Never on a virtual link, whose
    /// waits take no time.)
    pub fn poll_event(&mut self) -> Poll {
        loop {
            if let Some(e) = self.queue.pop_front() {
                self.last_snapshot = self.snapshots.pop_front();
                return Poll::Event(e);
            }
            if self.session.is_over() {
                return Poll::Over;
            }
            let r = if let Some(e) = self.pending_error.take() {
                Err(e)
            } else if std::mem::take(&mut self.must_wait) {
                self.wait()
            } else if self.started {
                self.check_deadline()
                    .and_then(|()| self.step())
                    .map(|progressed| self.must_wait = !progressed)
            } else {
                self.started = true;
                self.link_time.set(0);
                self.session.start(at(self.now()));
                self.run_commands()
            };
            if let Err(e) = r {
                self.must_wait = false;
                self.fail(e);
            }
            self.flush();
            // A virtual link's wait takes no time (the lab moves its clock): no moment to
            // flush there, or the lab would flush after every packet.
            if self.must_wait
                && self.queue.is_empty()
                && !self.session.is_over()
                && !self.dev.link().is_virtual()
            {
                return Poll::Waiting;
            }
        }
    }

    /// The next event already decided (e.g. packets [`Fetch::observe_while_paused`] read),
    /// without letting the fetch go on.
    pub fn next_queued_event(&mut self) -> Option<Event> {
        let e = self.queue.pop_front()?;
        self.last_snapshot = self.snapshots.pop_front();
        Some(e)
    }

    /// Keeps a [`Snapshot`] for every event, as of that event (for stepping): then
    /// [`Fetch::snapshot`] describes the moment of the last event returned, not the end of
    /// the step that produced it.
    pub fn keep_snapshots(&mut self, on: bool) {
        self.step_snapshots = on;
    }

    /// The outcome, once [`Fetch::next_event`] has returned `None`.
    pub fn result(&self) -> Option<&Result<Summary, FetchError>> {
        self.session.outcome()
    }

    /// The TLS secrets seen so far, as an NSS key log (for pcapng and `--keylog`).
    pub fn key_log(&self) -> &str {
        self.packets.key_log()
    }

    /// The link the stack runs on.
    pub fn link(&self) -> &L {
        self.dev.link()
    }

    /// The phase the fetch is in.
    pub fn phase(&self) -> Phase {
        self.session.phase()
    }

    /// The stack's address of the same IP version as `remote`.
    fn local_address_for(&self, remote: IpAddress) -> IpAddress {
        self.cfg
            .addrs
            .iter()
            .map(|c| c.address())
            .find(|a| a.version() == remote.version())
            .or_else(|| self.cfg.addrs.first().map(|c| c.address()))
            .unwrap_or(IpAddress::v4(0, 0, 0, 0))
    }

    fn now(&self) -> Instant {
        self.dev.link().now()
    }

    fn t_us(&self, t: Instant) -> u64 {
        (t - self.start).total_micros()
    }

    fn emit(&mut self, kind: EventKind) {
        let now = self.now();
        self.pending.push(Pending::Event(now, Box::new(kind)));
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
        let queued = self.rx_queued();
        let phase = self.session.phase();
        self.drive()?;
        // The DNS answer called connect(): the SYN goes out in the next step (at the same
        // moment), so a person who quits at the answer (fetchscope step) sends nothing.
        if phase == Phase::Resolve && self.session.phase() == Phase::Connect {
            return Ok(true);
        }
        // The transport reads a bounded amount per step (two TLS records): when it took
        // some and more is waiting in the socket (a retransmission just filled a hole), the
        // next step goes on at once instead of waiting for a packet that may never come.
        let left = self.rx_queued();
        let more_to_read = left > 0 && left < queued;
        let now = self.now();
        self.iface
            .poll_egress(now, &mut self.dev, &mut self.sockets);
        self.collect_frames()?;
        self.observe_tcp(None);
        Ok(ingress != PollIngressSingleResult::None || self.pending.len() > before || more_to_read)
    }

    /// Bytes received on the fetch's TCP connection and not yet read from the socket.
    fn rx_queued(&self) -> usize {
        self.conn
            .as_ref()
            .map(|c| {
                self.sockets
                    .get::<smoltcp::socket::tcp::Socket>(c.tcp)
                    .recv_queue()
            })
            .unwrap_or(0)
    }

    fn drive(&mut self) -> Result<(), FetchError> {
        match self.session.phase() {
            Phase::Resolve => self.drive_dns(),
            Phase::Connect => self.drive_connect(),
            Phase::Proxy | Phase::Tls | Phase::Request | Phase::Response | Phase::Teardown => {
                self.drive_transport()?;
                self.drive_teardown()
            }
            Phase::Done => Ok(()),
        }
    }

    fn wait(&mut self) -> Result<(), FetchError> {
        let now = self.now();
        let mut until = self.deadline;
        if let Some(t) = self.iface.poll_at(now, &self.sockets) {
            until = until.min(t);
        }
        if let Some(t) = self.dns.as_ref().and_then(DnsSockets::wake_at) {
            until = until.min(t);
        }
        if let Some(t) = self.session.poll_timeout() {
            until = until.min(stack_time(t));
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
                self.session.phase(),
                "link",
                e.to_string(),
            )),
        }
    }

    fn check_deadline(&mut self) -> Result<(), FetchError> {
        if let Some(e) = self.session.connect_timed_out(at(self.now())) {
            return Err(e);
        }
        if self.now() >= self.deadline {
            Err(self.timeout_error())
        } else {
            Ok(())
        }
    }

    fn timeout_error(&self) -> FetchError {
        let secs = (self.deadline - self.start).total_millis() as f64 / 1000.0;
        let host = &self.session.target().host;
        let dns_stall = self
            .dns
            .as_ref()
            .map(|d| d.lookup.stall_description(host, &self.cfg.conditions));
        self.session
            .timeout_error(secs, dns_stall, &self.stall_facts())
    }

    /// What the packets of the current connection show, for a timeout message.
    fn stall_facts(&self) -> fetchscope_core::advice::StallFacts {
        let mut facts = self.session.stall_facts();
        let Some(conn) = self.conn.as_ref() else {
            return facts;
        };
        let sock = self.sockets.get::<smoltcp::socket::tcp::Socket>(conn.tcp);
        // Bytes still in the socket's send buffer: queued, or sent and not acknowledged.
        // In the request phase they are the request's (nothing is queued after it).
        facts.unacknowledged = Some((sock.send_queue() as u64).min(facts.request_bytes));
        let space = self.tcp_space();
        facts.zero_window = space.snd_wnd == Some(0);
        facts.retransmissions = space
            .retransmissions_tx
            .saturating_sub(conn.retransmissions_before);
        facts.held_out_of_order = u64::from(space.held_out_of_order());
        facts
    }

    fn collect_frames(&mut self) -> Result<(), FetchError> {
        // Empty (drained last step), with its room: the device records into it next.
        let mut frames = std::mem::take(&mut self.frames);
        self.dev.swap_frames(&mut frames);
        for f in frames.drain(..) {
            // A received packet fault injection dropped never reached the stack.
            let unreceived = f.dir == Direction::Rx && f.fault.as_ref().is_some_and(|x| x.dropped);
            match f.dir {
                Direction::Tx => self.packets_tx += 1,
                Direction::Rx if !unreceived => self.packets_rx += 1,
                Direction::Rx => {}
            }
            // A path MTU learned from ICMP applies before the stack sends anything more
            // (this step's egress); its note follows the packet in the trace.
            let too_big = (f.dir == Direction::Rx && !unreceived)
                .then(|| self.account_too_big(&f.data))
                .flatten();
            let t = f.t;
            self.pending.push(Pending::Frame(f, self.session.phase()));
            if let Some(text) = too_big {
                self.pending
                    .push(Pending::Event(t, Box::new(EventKind::Note { text })));
            }
        }
        self.frames = frames;
        if let Some(e) = self.dev.take_error() {
            return Err(FetchError::new(
                FailureClass::Setup,
                self.session.phase(),
                "link",
                e.to_string(),
            ));
        }
        Ok(())
    }

    // ---------------------------------------------------------------- end

    fn finish(&mut self) {
        let now = self.now();
        let facts = ConnectionFacts {
            local: self.conn.as_ref().map(|c| {
                std::net::SocketAddr::new(
                    self.local_address_for(c.remote.addr).into(),
                    c.local_port,
                )
            }),
            packets_tx: self.packets_tx,
            packets_rx: self.packets_rx,
        };
        self.session.finish(at(now), facts);
        self.drain_events();
    }

    fn fail(&mut self, e: FetchError) {
        if self.session.is_over() {
            return;
        }
        self.dns = None;
        // Close politely so the trace shows how the connection ended, then stop.
        if let Some(h) = self.conn.as_ref().map(|c| c.tcp) {
            let sock = self.sockets.get_mut::<smoltcp::socket::tcp::Socket>(h);
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
        self.session.fail(at(self.now()), e);
        self.drain_events();
    }

    // ---------------------------------------------------------------- flush

    /// Decodes this step's packets (now that the TLS secrets they need are known) and
    /// moves everything into the event queue, in order.
    fn flush(&mut self) {
        let secrets = self.session.take_secrets();
        self.packets.learn_secrets(secrets);
        let decrypted = self.session.take_decrypted();
        self.packets.learn_decrypted(decrypted);
        let mut pending = std::mem::take(&mut self.pending);
        for p in pending.drain(..) {
            match p {
                Pending::Event(t, kind) => {
                    let kind = *kind;
                    let t_us = self.t_us(t);
                    self.queue_event(Event { t_us, kind });
                }
                Pending::Frame(f, phase) => {
                    // A received packet that fault injection dropped never reached the
                    // stack: decoded on the side, so the dissector learns nothing from it.
                    let unreceived =
                        f.dir == Direction::Rx && f.fault.as_ref().is_some_and(|x| x.dropped);
                    let layers = if unreceived {
                        self.packets.decode_unreceived(&f.data)
                    } else {
                        self.packets.decode_at(f.dir, &f.data, self.t_us(f.t))
                    };
                    let recovery = self
                        .recovery
                        .observe(at(f.t), f.dir, &layers, f.fault.as_ref());
                    // Nor does one the stack drops for a bad checksum (e.g. corrupted by
                    // fault injection) count for the connection's bookkeeping.
                    let dropped_by_stack = recovery
                        .iter()
                        .any(|r| matches!(r.kind, "bad-checksum-dropped" | "malformed-dropped"));
                    if !unreceived && !dropped_by_stack {
                        self.account_tcp(&f, &layers);
                        if f.dir == Direction::Rx {
                            self.account_icmp(&f.data, &layers);
                            self.account_dns_fragment(&layers);
                        }
                    }
                    let ev = (self.packets).event(f.dir, f.data, phase, layers, f.fault, recovery);
                    let t_us = self.t_us(f.t);
                    // The recovery names a retransmission already, unless a pause is
                    // the reason for it.
                    let resent_by_peer = f.dir == Direction::Rx
                        && (ev.recovery.is_empty() || self.paused_while_open)
                        && ev
                            .layers
                            .tcp
                            .as_ref()
                            .is_some_and(|t| t.analysis.contains(&TcpAnalysis::Retransmission));
                    self.queue_event(Event {
                        t_us,
                        kind: EventKind::Packet(ev),
                    });
                    if resent_by_peer {
                        let why = if self.paused_while_open {
                            "the fetch was paused (fetchscope step), so the stack did not acknowledge in time"
                        } else {
                            "its retransmission timer ran out before our acknowledgement arrived, or the copies crossed"
                        };
                        self.queue_event(Event {
                            t_us,
                            kind: EventKind::Note {
                                text: format!("the server sent this segment again: {why}"),
                            },
                        });
                    }
                }
            }
        }
        // The emptied buffer keeps its room for the next step (unless something was
        // pending meanwhile).
        if self.pending.is_empty() {
            self.pending = pending;
        }
    }

    /// Queues an event, with its snapshot in step mode.
    fn queue_event(&mut self, e: Event) {
        self.as_of.event(&e);
        if self.step_snapshots {
            let as_of = self.as_of.clone();
            let snap = self.snapshot_as_of(&as_of);
            self.snapshots.push_back(snap);
        }
        self.queue.push_back(e);
    }
}
