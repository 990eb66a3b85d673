//! [`Replay`]: a recorded fetch — the packets of a capture — made into the same
//! [`Event`] stream a live fetch gives, so every renderer (text, NDJSON, ladder, HAR,
//! report, step) works on it.
//!
//! A sans-IO machine like [`Session`](crate::session::Session): the caller reads the
//! capture and hands over each IP packet with its time ([`Replay::handle_packet`]), then
//! says the capture ended ([`Replay::finish`]); [`Replay::poll_event`] gives the events.
//! Nothing is kept per packet: a capture of any size is streamed, the dissector's state is
//! bounded (64 connections) and so is this machine's (64 connections, 1,000 exchanges).
//!
//! What a capture cannot show is inferred and said so: the client's TCP states (from the
//! segments, RFC 9293's rules, marked `inferred`), the TLS stages (from the handshake
//! messages; whether the client verified the certificate is not visible). Without the TLS
//! secrets (a key log or the pcapng's Decryption Secrets Block) the replay shows
//! everything up to the encrypted records and a note says what the key log would add.

mod http;
mod tcp;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use fetchscope_wire::{Direction, Dissection, TcpFlags, TlsRecord};
use url::Url;

use crate::error::{FailureClass, FetchError};
use crate::event::{
    DnsEvent, Event, EventKind, ExchangeRecord, HttpRequestEvent, Phase, RedirectEvent, Summary,
    TcpStateChange, TlsEvent,
};
use crate::http::{HttpProgress, ResponseHead};
use crate::packets::PacketPipeline;
use crate::tcp_state::TcpState;
use crate::time::Instant;
use crate::timing::TimingMarks;

use self::http::{HttpOutput, HttpReplay};
use self::tcp::InferredTcp;

/// At most this many connections are followed at once; the least recently used goes.
const MAX_CONNS: usize = 64;
/// At most this many exchanges are recorded (a capture of a long session has more).
const MAX_EXCHANGES: usize = 1000;
/// At most this many DNS answers are remembered (address → name).
const MAX_NAMES: usize = 4096;
/// The DNS port.
const DNS_PORT: u16 = 53;

/// What to replay of a capture.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// The client's address; without it, the sender of the first DNS query or TCP SYN.
    pub client: Option<IpAddr>,
    /// Only packets at or after this long since the capture's first packet.
    pub from: Option<Duration>,
    /// Only packets before this long since the capture's first packet.
    pub until: Option<Duration>,
    /// Only these connections and lookups (from [`FlowFilter`]); `None`: all of the client's.
    pub flows: Option<FlowFilter>,
    /// Show secret header values (`Authorization`, `Cookie`, ...) instead of redacting them.
    pub show_secrets: bool,
}

/// The flows of one host, found in a first pass over the capture ([`HostFinder`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowFilter {
    /// TCP connections, as (client, server) endpoints.
    pub conns: Vec<(SocketAddr, SocketAddr)>,
    /// DNS names whose lookups are kept (lower case, no trailing dot).
    pub names: Vec<String>,
}

impl FlowFilter {
    fn keeps_conn(&self, client: SocketAddr, server: SocketAddr) -> bool {
        self.conns.contains(&(client, server))
    }
    fn keeps_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.names.contains(&name)
    }
}

/// A first pass over a capture that finds the flows of one host: the lookups of its name
/// and the TCP connections whose TLS server name or HTTP `Host` is that name, or whose
/// server address a lookup of it answered — and of the hosts its redirects lead to.
#[derive(Debug)]
pub struct HostFinder {
    names: Vec<String>,
    addrs: HashMap<IpAddr, String>,
    dissector: fetchscope_wire::Dissector,
    conns: Vec<(SocketAddr, SocketAddr)>,
}

impl HostFinder {
    /// A finder for `host` (a name; case and a trailing dot do not matter).
    pub fn new(host: &str) -> HostFinder {
        let mut dissector = fetchscope_wire::Dissector::new();
        dissector.keep_app_data(true);
        HostFinder {
            names: vec![host.trim_end_matches('.').to_ascii_lowercase()],
            addrs: HashMap::new(),
            dissector,
            conns: Vec::new(),
        }
    }

    /// Learns TLS secrets, so a redirect inside TLS can be followed to its host.
    pub fn learn_key_log(&mut self, text: &str) {
        self.dissector.add_key_log_text(text);
    }

    /// Looks at one packet.
    pub fn packet(&mut self, ip: &[u8]) {
        let d = self.dissector.dissect(Direction::Tx, ip);
        let Some(ipl) = &d.ip else { return };
        if let Some(dns) = &d.dns
            && dns.response
            && dns.question.as_deref().is_some_and(|q| self.wanted(q))
        {
            for a in &dns.answers {
                if let Ok(addr) = a.data.parse::<IpAddr>()
                    && self.addrs.len() < MAX_NAMES
                {
                    self.addrs.insert(addr, a.name.to_ascii_lowercase());
                } else if a.kind == "CNAME" && self.names.len() < 64 {
                    self.names
                        .push(a.data.trim_end_matches('.').to_ascii_lowercase());
                }
            }
        }
        let Some(t) = &d.tcp else { return };
        let src = SocketAddr::new(ipl.src, t.src_port);
        let dst = SocketAddr::new(ipl.dst, t.dst_port);
        let syn = t.flags.contains(TcpFlags::SYN) && !t.flags.contains(TcpFlags::ACK);
        let named = d
            .tls
            .iter()
            .find_map(|r| r.sni.clone())
            .or_else(|| host_header(&d.app_data));
        let by_name = named.as_deref().is_some_and(|n| self.wanted(n));
        if ((syn && self.addrs.contains_key(&ipl.dst)) || by_name)
            && !self.conns.contains(&(src, dst))
            && self.conns.len() < MAX_EXCHANGES
        {
            self.conns.push((src, dst));
        }
        // A redirect to another host: follow it.
        if self.conns.contains(&(dst, src)) {
            for line in String::from_utf8_lossy(&d.app_data).lines() {
                if let Some(v) = line
                    .split_once(':')
                    .filter(|(n, _)| n.eq_ignore_ascii_case("location"))
                    .map(|(_, v)| v.trim())
                    && let Ok(u) = Url::parse(v)
                    && let Some(h) = u.host_str()
                    && self.names.len() < 64
                    && !self.wanted(h)
                {
                    self.names.push(h.to_ascii_lowercase());
                }
            }
        }
    }

    fn wanted(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let bare = name.split(':').next().unwrap_or_default();
        self.names.iter().any(|n| *n == name || n == bare)
    }

    /// The flows found.
    pub fn finish(self) -> FlowFilter {
        FlowFilter {
            conns: self.conns,
            names: self.names,
        }
    }
}

/// The `Host` header's value in bytes that begin with a request head.
fn host_header(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes.get(..bytes.len().min(8192))?);
    let mut lines = text.split("\r\n");
    let first = lines.next()?;
    if !first.ends_with("HTTP/1.1") && !first.ends_with("HTTP/1.0") {
        return None;
    }
    lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.trim().to_string())
}

/// The TLS stages one connection has shown.
#[derive(Debug, Default)]
struct TlsSeen {
    hello: bool,
    server_hello: bool,
    certificate: bool,
    server_finished: bool,
    complete: bool,
    close_sent: bool,
    close_received: bool,
    no_keys_noted: bool,
    version: Option<String>,
    suite: Option<String>,
    alpn: Option<String>,
}

/// One followed TCP connection.
#[derive(Debug)]
struct Conn {
    client: SocketAddr,
    server: SocketAddr,
    tcp: InferredTcp,
    http: HttpReplay,
    tls: TlsSeen,
    /// Whether its records are TLS (the scheme of its URLs).
    is_tls: bool,
    /// The TLS server name.
    sni: Option<String>,
    /// The last DNS answer before its SYN.
    dns_at: Option<Instant>,
    connect_at: Option<Instant>,
    appconnect_at: Option<Instant>,
    /// Request index on this connection → exchange index.
    exchanges: VecDeque<(u64, usize)>,
    requests: u64,
    /// Whether this connection carried an HTTP request (a fetch's connection).
    used: bool,
    /// The `CONNECT` target, when this is a proxy tunnel.
    tunnel: Option<String>,
    tunnel_answered: bool,
    last_used: u64,
}

/// One request and its response.
#[derive(Debug)]
struct Exchange {
    marks: TimingMarks,
    url: Url,
    method: String,
    request_headers: Vec<(String, String)>,
    remote: SocketAddr,
    local: SocketAddr,
    conn: (SocketAddr, SocketAddr),
    tls: bool,
    head: Option<ResponseHead>,
    body_bytes: u64,
    wire_body_bytes: u64,
    sha256: String,
    body_start: Vec<u8>,
    complete: bool,
}

/// A redirect seen, announced when the next exchange begins.
#[derive(Debug)]
struct PendingRedirect {
    status: u16,
    from: Url,
    to: Url,
    method: String,
    conn: (SocketAddr, SocketAddr),
}

/// A failure the capture shows.
#[derive(Debug, Clone)]
struct Seen {
    class: FailureClass,
    phase: Phase,
    kind: &'static str,
    message: String,
}

/// What [`Replay::handle_packet`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// It is part of the replayed fetch: a `packet` event.
    Shown,
    /// It belongs to another host or client, or is outside the time range.
    Unrelated,
    /// It is not an IP packet this machine can place (not decodable, a fragment).
    Undecodable,
}

/// The replay of one capture.
#[derive(Debug)]
pub struct Replay {
    options: ReplayOptions,
    pipeline: PacketPipeline,
    /// Events not handed out yet, each with the state after it (step mode only).
    events: VecDeque<(Event, Option<ReplayState>)>,
    /// The capture's first packet's time (for `--from`/`--until`).
    capture_start: Option<Duration>,
    /// The first replayed packet's time: t = 0.
    start: Option<Duration>,
    client: Option<IpAddr>,
    phase: Option<Phase>,
    now: Instant,
    conns: HashMap<(SocketAddr, SocketAddr), Conn>,
    tick: u64,
    exchanges: Vec<Exchange>,
    exchanges_dropped: u64,
    /// When the next exchange starts (the previous one's end).
    next_start: Instant,
    /// The last DNS answer's time.
    dns_answer_at: Option<Instant>,
    redirect: Option<PendingRedirect>,
    redirects: usize,
    failure: Option<Seen>,
    packets_tx: u64,
    packets_rx: u64,
    unrelated: u64,
    undecodable: u64,
    truncated: u64,
    /// Packets of the client whose checksums were completed (offload).
    offloaded: u64,
    outcome: Option<Result<Summary, FetchError>>,
    key_log_lines: usize,
    /// The capture's damage, when it came before the first packet of the fetch.
    damage: Option<String>,
    /// Step mode: keep the state after each queued event, so a pause shows what the
    /// events shown so far say.
    keep_states: bool,
    /// The state after the last event handed out (step mode).
    shown: Option<ReplayState>,
}

impl Replay {
    /// A replay that has seen nothing yet.
    pub fn new(options: ReplayOptions) -> Replay {
        let mut pipeline = PacketPipeline::new();
        pipeline.keep_app_data(true);
        Replay {
            client: options.client,
            options,
            pipeline,
            events: VecDeque::new(),
            capture_start: None,
            start: None,
            phase: None,
            now: Instant::ZERO,
            conns: HashMap::new(),
            tick: 0,
            exchanges: Vec::new(),
            exchanges_dropped: 0,
            next_start: Instant::ZERO,
            dns_answer_at: None,
            redirect: None,
            redirects: 0,
            failure: None,
            packets_tx: 0,
            packets_rx: 0,
            unrelated: 0,
            undecodable: 0,
            truncated: 0,
            offloaded: 0,
            outcome: None,
            key_log_lines: 0,
            damage: None,
            keep_states: false,
            shown: None,
        }
    }

    /// Learns NSS key log text (a key log file, a pcapng's Decryption Secrets Block);
    /// returns how many lines were learned and how many not understood.
    pub fn learn_key_log(&mut self, text: &str) -> (usize, usize) {
        let (learned, skipped) = self.pipeline.learn_key_log_text(text);
        self.key_log_lines += learned;
        (learned, skipped)
    }

    /// Every secret learned, as an NSS key log (for `--keylog` and `--pcap`).
    pub fn key_log(&self) -> &str {
        self.pipeline.key_log()
    }

    /// The capture time of the replay's t = 0 (its first replayed packet), since the Unix
    /// epoch; `None` before the first.
    pub fn epoch(&self) -> Option<Duration> {
        self.start
    }

    /// The client whose fetch is replayed, once known.
    pub fn client(&self) -> Option<IpAddr> {
        self.client
    }

    /// Packets left out (another client or host, outside the time range), packets that
    /// could not be placed (not IP), and packets the capture cut short.
    pub fn counts(&self) -> (u64, u64, u64) {
        (self.unrelated, self.undecodable, self.truncated)
    }

    /// The phase the replay is in.
    pub fn phase(&self) -> Phase {
        self.phase.unwrap_or(Phase::Resolve)
    }

    /// The next event, in the order they happened.
    pub fn poll_event(&mut self) -> Option<Event> {
        let (e, state) = self.events.pop_front()?;
        if state.is_some() {
            self.shown = state;
        }
        Some(e)
    }

    /// Step mode: from now on [`state`](Self::state) says what the events handed out so
    /// far show (one packet's several events are paused between), not what the machine
    /// has read ahead.
    pub fn keep_states(&mut self, on: bool) {
        self.keep_states = on;
    }

    /// The summary or the failure, once [`finish`](Self::finish) ran.
    pub fn outcome(&self) -> Option<&Result<Summary, FetchError>> {
        self.outcome.as_ref()
    }

    /// A state panel for step mode: what the packets so far show.
    pub fn state(&self) -> ReplayState {
        match &self.shown {
            Some(s) => s.clone(),
            None => self.current_state(),
        }
    }

    /// The state after everything read so far.
    fn current_state(&self) -> ReplayState {
        let conn = self
            .conns
            .values()
            .filter(|c| c.used || c.server.port() != DNS_PORT)
            .max_by_key(|c| c.last_used);
        let last = self.exchanges.last();
        ReplayState {
            t_us: self.now.micros_since(Instant::ZERO),
            phase: self.phase(),
            client: conn.map(|c| c.client),
            server: conn.map(|c| c.server),
            tcp_state: conn.filter(|c| c.tcp.changed).map(|c| c.tcp.state),
            tcp: conn.and_then(|c| self.pipeline.tcp_space(c.client, c.server)),
            tls_version: conn.and_then(|c| c.tls.version.clone()),
            tls_suite: conn.and_then(|c| c.tls.suite.clone()),
            tls_stage: conn.map(|c| tls_stage_name(&c.tls)),
            request: last.map(|e| format!("{} {}", e.method, e.url)),
            status: last.and_then(|e| e.head.as_ref().map(|h| h.status)),
            body_bytes: last.map_or(0, |e| e.body_bytes),
            complete: last.is_some_and(|e| e.complete),
            redirects: self.redirects,
        }
    }

    /// Hands over one captured IP packet (no link header) with its capture time since the
    /// Unix epoch; `truncated` when the capture cut it to its snap length.
    pub fn handle_packet(&mut self, time: Duration, ip: &[u8], truncated: bool) -> Handled {
        let capture_start = *self.capture_start.get_or_insert(time);
        let since = time.saturating_sub(capture_start);
        if self.options.from.is_some_and(|f| since < f)
            || self.options.until.is_some_and(|u| since >= u)
        {
            self.unrelated += 1;
            return Handled::Unrelated;
        }
        let Some((src, dst)) = addresses(ip) else {
            self.undecodable += 1;
            return Handled::Undecodable;
        };
        if self.client.is_none() {
            match first_client(ip) {
                Some(c) => self.client = Some(c),
                None => {
                    self.unrelated += 1;
                    return Handled::Unrelated;
                }
            }
        }
        let client = self.client;
        let dir = if Some(src) == client {
            Direction::Tx
        } else if Some(dst) == client {
            Direction::Rx
        } else {
            self.unrelated += 1;
            return Handled::Unrelated;
        };
        let start = *self.start.get_or_insert(time);
        let t = Instant::from_micros(
            i64::try_from(time.saturating_sub(start).as_micros()).unwrap_or(i64::MAX),
        );
        self.now = self.now.max(t);
        // Packets captured on a host before its network card (or a veth's peer) filled in
        // their checksums (checksum offload) are decoded as if complete, as Wireshark
        // does by default: a capture's checksums say little about what was on the wire.
        // One copy of the packet: it becomes the event's bytes unless its checksums were
        // completed, when the event keeps the bytes as captured.
        let mut copy = ip.to_vec();
        let offloaded = fetchscope_wire::complete_checksum(&mut copy) && copy != ip;
        let decoded: &[u8] = if offloaded { &copy } else { ip };
        // Packets of other flows are left out before the dissector learns from them: a
        // capture with thousands of them would push the fetch's connection (and its TLS
        // state) out of the dissector's bounded table.
        if self.options.flows.is_some() {
            let seen = self.pipeline.decode_unreceived(decoded);
            if !self.keeps(&seen, dir) {
                self.unrelated += 1;
                return Handled::Unrelated;
            }
        }
        let mut d = self
            .pipeline
            .decode_at(dir, decoded, t.micros_since(Instant::ZERO));
        if truncated {
            self.truncated += 1;
        }
        if offloaded {
            self.offloaded += 1;
        }
        match dir {
            Direction::Tx => self.packets_tx += 1,
            Direction::Rx => self.packets_rx += 1,
        }
        let app = std::mem::take(&mut d.app_data);
        let key = self.endpoints(&d, dir);
        if let Some(key) = key {
            self.touch_conn(key, &d);
        }
        // The phase this packet begins, then the packet, then what it means.
        if let Some(p) = self.phase_of(&d, dir, key, !app.is_empty()) {
            self.enter(p);
        }
        let phase = self.phase();
        let raw = if offloaded { ip.to_vec() } else { copy };
        let event = self
            .pipeline
            .event(dir, raw, phase, d.clone(), None, Vec::new());
        self.emit(EventKind::Packet(event));
        if offloaded && self.offloaded == 1 {
            self.note("this capture's packets carry TCP/UDP checksums not filled in yet (checksum offload: the capture saw them before a network card or a veth peer would have); they are decoded as if complete, as Wireshark does by default, and the end of the replay says how many".into());
        }
        if truncated && self.truncated == 1 {
            self.note("the capture cut this packet short (its snap length): what it carried past the cut is not shown; capture with -s 0 to keep whole packets".into());
        }
        self.dns(&d, dir);
        if let Some(key) = key {
            self.proxy(key, &d, dir);
            self.tcp(key, &d, dir);
            self.tls(key, &d.tls, dir);
            self.app_data(key, &d, dir, &app);
        }
        Handled::Shown
    }

    /// The capture is damaged from here on (`detail` says how): what came before is
    /// replayed, and a note says the rest is lost.
    pub fn note_damage(&mut self, detail: &str) {
        // The error at the end (if the fetch is not complete) says it too.
        self.damage = Some(detail.to_string());
        if self.start.is_some() {
            self.note(format!("{detail}; the replay ends here"));
        }
    }

    /// The capture held `n` blocks or packets that are not IP packets (another link
    /// type's interface, an unknown block).
    pub fn note_skipped_blocks(&mut self, n: u64) {
        self.note(format!(
            "{n} blocks of the capture are not IP packets fetchscope reads (another interface's link type, statistics, unknown blocks); skipped"
        ));
    }

    /// Stops the replay early (`why`: who stopped it): an `error` event, no summary.
    pub fn abort(&mut self, why: &str) {
        if self.outcome.is_some() {
            return;
        }
        let e = FetchError::new(FailureClass::Aborted, self.phase(), "aborted", why);
        self.emit(EventKind::Error(crate::event::ErrorEvent {
            phase: e.phase,
            kind: e.kind.clone(),
            message: e.message.clone(),
        }));
        self.outcome = Some(Err(e));
    }

    /// The capture ended: the fetch's summary or failure, and the `done` or `error` event.
    pub fn finish(&mut self) {
        if self.outcome.is_some() {
            return;
        }
        if self.start.is_none() {
            let e = FetchError::new(
                FailureClass::Setup,
                Phase::Resolve,
                "no_fetch",
                match (&self.damage, self.options.client) {
                    (Some(d), _) => format!("{d}, before any packet of a fetch"),
                    (None, _) if self.options.from.is_some() || self.options.until.is_some() => format!(
                        "no packet of a fetch falls in the time range asked for (--from {} --until {}, seconds after the capture's first packet); widen it or leave it out",
                        self.options.from.map_or("0".to_string(), |f| format!("{}", f.as_secs_f64())),
                        self.options.until.map_or("the end".to_string(), |u| format!("{}", u.as_secs_f64())),
                    ),
                    (None, Some(c)) => format!(
                        "the capture holds no packet to or from {c} (in the time range asked for); check --client-addr, --host, --from and --until"
                    ),
                    (None, None) => "the capture holds no fetch: no DNS query and no TCP SYN from any client; a capture that starts mid-connection needs --client-addr ADDR".to_string(),
                },
            );
            self.emit(EventKind::Error(crate::event::ErrorEvent {
                phase: e.phase,
                kind: e.kind.clone(),
                message: e.message.clone(),
            }));
            self.outcome = Some(Err(e));
            return;
        }
        let (unrelated, undecodable, _) = self.counts();
        if unrelated + undecodable > 0 {
            self.note(format!(
                "{unrelated} packets of other clients, hosts or times and {undecodable} undecodable packets were left out of this replay"
            ));
        }
        if self.offloaded > 0 {
            self.note(format!(
                "{} packets had their TCP/UDP checksums completed before decoding (checksum offload on the capture host)",
                self.offloaded
            ));
        }
        if self.exchanges_dropped > 0 {
            self.note(format!(
                "{} more exchanges were replayed but not recorded in the summary (it keeps {MAX_EXCHANGES})",
                self.exchanges_dropped
            ));
        }
        self.enter(Phase::Done);
        let mut outcome = self.summary();
        if let (Err(e), Some(d)) = (&mut outcome, &self.damage) {
            // What the capture lacks is the file's fault, not the fetch's.
            e.message = format!("{d}, so the replay ends early: {}", e.message);
        }
        match &outcome {
            Ok(s) => self.emit(EventKind::Done(Box::new(s.clone()))),
            Err(e) => self.emit(EventKind::Error(crate::event::ErrorEvent {
                phase: e.phase,
                kind: e.kind.clone(),
                message: e.message.clone(),
            })),
        }
        self.outcome = Some(outcome);
    }

    // ------------------------------------------------------------ inside

    fn emit(&mut self, kind: EventKind) {
        let state = self.keep_states.then(|| self.current_state());
        let event = Event {
            t_us: self.now.micros_since(Instant::ZERO),
            kind,
        };
        self.events.push_back((event, state));
    }

    fn note(&mut self, text: String) {
        self.emit(EventKind::Note { text });
    }

    fn enter(&mut self, phase: Phase) {
        if self.phase != Some(phase) {
            self.phase = Some(phase);
            self.emit(EventKind::Phase { phase });
        }
    }

    /// Whether the packet belongs to the flows asked for.
    fn keeps(&self, d: &Dissection, dir: Direction) -> bool {
        let Some(filter) = &self.options.flows else {
            return true;
        };
        if let Some(dns) = &d.dns {
            return dns
                .question
                .as_deref()
                .is_some_and(|q| filter.keeps_name(q));
        }
        match self.endpoints(d, dir) {
            Some((c, s)) => filter.keeps_conn(c, s),
            None => false,
        }
    }

    /// The packet's (client, server) TCP endpoints.
    fn endpoints(&self, d: &Dissection, dir: Direction) -> Option<(SocketAddr, SocketAddr)> {
        let ip = d.ip.as_ref()?;
        let t = d.tcp.as_ref()?;
        let src = SocketAddr::new(ip.src, t.src_port);
        let dst = SocketAddr::new(ip.dst, t.dst_port);
        Some(match dir {
            Direction::Tx => (src, dst),
            Direction::Rx => (dst, src),
        })
    }

    fn touch_conn(&mut self, key: (SocketAddr, SocketAddr), d: &Dissection) {
        self.tick += 1;
        let tick = self.tick;
        let syn = d
            .tcp
            .as_ref()
            .is_some_and(|t| t.flags.contains(TcpFlags::SYN) && !t.flags.contains(TcpFlags::ACK));
        if syn
            && let Some(c) = self.conns.get(&key)
            && matches!(c.tcp.state, TcpState::Closed | TcpState::TimeWait)
        {
            // A new connection on the same ports.
            self.conns.remove(&key);
        }
        if !self.conns.contains_key(&key) && self.conns.len() >= MAX_CONNS {
            let oldest = self
                .conns
                .iter()
                .min_by_key(|(_, c)| c.last_used)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.conns.remove(&k);
            }
        }
        let dns_at = self.dns_answer_at;
        let conn = self.conns.entry(key).or_insert_with(|| Conn {
            client: key.0,
            server: key.1,
            tcp: InferredTcp::default(),
            http: HttpReplay::default(),
            tls: TlsSeen::default(),
            is_tls: false,
            sni: None,
            dns_at,
            connect_at: None,
            appconnect_at: None,
            exchanges: VecDeque::new(),
            requests: 0,
            used: false,
            tunnel: None,
            tunnel_answered: false,
            last_used: tick,
        });
        conn.last_used = tick;
    }

    /// The phase a packet starts, if it starts one.
    fn phase_of(
        &self,
        d: &Dissection,
        dir: Direction,
        key: Option<(SocketAddr, SocketAddr)>,
        has_app: bool,
    ) -> Option<Phase> {
        let current = self.phase;
        let tx = dir == Direction::Tx;
        if let Some(dns) = &d.dns {
            let new_lookup = tx
                && !dns.response
                && current.is_none_or(|p| p >= Phase::Response || p == Phase::Resolve);
            return (new_lookup || current.is_none()).then_some(Phase::Resolve);
        }
        let t = d.tcp.as_ref()?;
        if key.is_some_and(|k| k.1.port() == DNS_PORT) {
            return current.is_none().then_some(Phase::Resolve);
        }
        let f = t.flags;
        if tx && f.contains(TcpFlags::SYN) && !f.contains(TcpFlags::ACK) {
            return Some(Phase::Connect);
        }
        let line = d.http.as_ref().map(|h| h.line.as_str()).unwrap_or_default();
        if tx && line.starts_with("CONNECT ") {
            return Some(Phase::Proxy);
        }
        let records = &d.tls;
        if tx && records.iter().any(|r| is_message(r, "ClientHello")) {
            return Some(Phase::Tls);
        }
        let app_record = |r: &TlsRecord| r.inner == Some("application_data");
        let request_bytes = has_app || records.iter().any(app_record);
        if request_bytes
            && tx
            && current.is_some_and(|p| p < Phase::Request || p >= Phase::Response)
        {
            return Some(Phase::Request);
        }
        // The server's bytes after the request are the response's, from its first
        // segment on (not only from the record or head it completes), unless they are
        // all handshake records (a TLS 1.3 session ticket).
        let only_handshake =
            !records.is_empty() && records.iter().all(|r| r.inner == Some("handshake"));
        let server_bytes = request_bytes || (t.payload_len > 0 && !only_handshake);
        if server_bytes && !tx && current == Some(Phase::Request) {
            return Some(Phase::Response);
        }
        let closing = f.contains(TcpFlags::FIN)
            || f.contains(TcpFlags::RST)
            || records
                .iter()
                .any(|r| r.alert.as_deref() == Some("close_notify"));
        let fetch_conn = key
            .and_then(|k| self.conns.get(&k))
            .is_some_and(|c| c.used || c.connect_at.is_none() || c.tls.hello);
        if closing
            && fetch_conn
            && current.is_some_and(|p| p >= Phase::Connect && p < Phase::Teardown)
        {
            return Some(Phase::Teardown);
        }
        current.is_none().then_some(Phase::Connect)
    }

    fn dns(&mut self, d: &Dissection, dir: Direction) {
        let Some(dns) = &d.dns else { return };
        let server = d.ip.as_ref().map(|ip| match dir {
            Direction::Tx => ip.dst,
            Direction::Rx => ip.src,
        });
        let name = dns.question.clone().unwrap_or_default();
        let qtype = dns.qtype.clone().unwrap_or_default();
        if !dns.response {
            if dir == Direction::Tx {
                self.announce_redirect(None, Next::Lookup(&name));
            }
            self.emit(EventKind::Dns(DnsEvent {
                event: "query".into(),
                name,
                qtype,
                server,
                id: Some(dns.id),
                rcode: None,
                addresses: Vec::new(),
                cnames: Vec::new(),
                reason: None,
            }));
            return;
        }
        let addresses: Vec<IpAddr> = dns
            .answers
            .iter()
            .filter(|a| a.kind == "A" || a.kind == "AAAA")
            .filter_map(|a| a.data.parse().ok())
            .collect();
        let cnames = dns
            .answers
            .iter()
            .filter(|a| a.kind == "CNAME")
            .map(|a| a.data.clone())
            .collect();
        if dir == Direction::Rx {
            self.dns_answer_at = Some(self.now);
        }
        if dns.rcode == "NXDOMAIN" && self.exchanges.is_empty() {
            self.failure.get_or_insert(Seen {
                class: FailureClass::Dns,
                phase: Phase::Resolve,
                kind: "nxdomain",
                message: format!("the DNS server answered that {name} does not exist (NXDOMAIN)"),
            });
        }
        self.emit(EventKind::Dns(DnsEvent {
            event: "answer".into(),
            name,
            qtype,
            server,
            id: Some(dns.id),
            rcode: Some(dns.rcode.clone()),
            addresses,
            cnames,
            reason: None,
        }));
    }

    /// An HTTP proxy's `CONNECT` tunnel: the request and the proxy's answer.
    fn proxy(&mut self, key: (SocketAddr, SocketAddr), d: &Dissection, dir: Direction) {
        let Some(line) = d.http.as_ref().map(|h| h.line.clone()) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        let (stage, status) = match dir {
            Direction::Tx if line.starts_with("CONNECT ") => {
                conn.tunnel = line.split_whitespace().nth(1).map(str::to_string);
                ("connect_sent", None)
            }
            Direction::Rx if conn.tunnel.is_some() && !conn.tunnel_answered => {
                conn.tunnel_answered = true;
                let status: Option<u16> =
                    line.split_whitespace().nth(1).and_then(|s| s.parse().ok());
                let ok = status.is_some_and(|s| (200..300).contains(&s));
                (if ok { "established" } else { "refused" }, status)
            }
            _ => return,
        };
        let target = conn.tunnel.clone().unwrap_or_default();
        let proxy = format!("http://{}", key.1);
        if stage == "refused" {
            self.failure.get_or_insert(Seen {
                class: FailureClass::Connect,
                phase: Phase::Proxy,
                kind: "proxy_refused",
                message: format!("the proxy {proxy} refused the tunnel to {target}: {line}"),
            });
        }
        self.emit(EventKind::Proxy(crate::event::ProxyEvent {
            stage: stage.into(),
            proxy,
            source: "the capture".into(),
            target,
            line,
            headers: Vec::new(),
            status,
        }));
    }

    fn tcp(&mut self, key: (SocketAddr, SocketAddr), d: &Dissection, dir: Direction) {
        let Some(t) = &d.tcp else { return };
        let now = self.now;
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        let syn = t.flags.contains(TcpFlags::SYN) && !t.flags.contains(TcpFlags::ACK);
        if syn && dir == Direction::Tx && conn.connect_at.is_none() {
            conn.dns_at = self.dns_answer_at;
        }
        let Some((from, to, why)) = conn.tcp.segment(dir, t) else {
            return;
        };
        let dns_conn = key.1.port() == DNS_PORT;
        if to == TcpState::Established && conn.connect_at.is_none() {
            conn.connect_at = Some(now);
        }
        if to == TcpState::Closed && from == TcpState::SynSent && !dns_conn {
            self.failure.get_or_insert(Seen {
                class: FailureClass::Connect,
                phase: Phase::Connect,
                kind: "refused",
                message: format!(
                    "{} refused the connection: it answered the SYN with RST (nothing listens on that port)",
                    key.1
                ),
            });
        }
        if dns_conn {
            return;
        }
        let mut change = TcpStateChange::new(from, to, Some(why), crate::tcp_state::Stack::Kernel);
        change.inferred = true;
        self.emit(EventKind::TcpState(change));
        let server_fin = dir == Direction::Rx && t.flags.contains(TcpFlags::FIN);
        if server_fin && let Some(conn) = self.conns.get_mut(&key) {
            let mut out = HttpOutput::default();
            conn.http.server_closed(&mut out);
            self.http_output(key, out);
        }
    }

    fn tls(&mut self, key: (SocketAddr, SocketAddr), records: &[TlsRecord], dir: Direction) {
        let now = self.now;
        let mut stages: Vec<TlsEvent> = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        let mut alert_failure = None;
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        let tx = dir == Direction::Tx;
        for r in records {
            conn.is_tls = true;
            let t = &mut conn.tls;
            if tx && is_message(r, "ClientHello") && !t.hello {
                t.hello = true;
                conn.sni.clone_from(&r.sni);
                let offered = if r.versions.is_empty() {
                    r.version.to_string()
                } else {
                    r.versions.join(", ")
                };
                stages.push(stage(
                    "client_hello_sent",
                    format!(
                        "ClientHello for {} offering {offered}{}{}",
                        r.sni.as_deref().unwrap_or("(no server name)"),
                        if r.alpn.is_empty() {
                            String::new()
                        } else {
                            format!(", ALPN {}", r.alpn.join(","))
                        },
                        r.suites
                            .map(|n| format!(", {n} cipher suites"))
                            .unwrap_or_default()
                    ),
                ));
            }
            if !tx && is_message(r, "ServerHello") && !t.server_hello {
                t.server_hello = true;
                t.version.clone_from(&r.version_selected);
                t.suite.clone_from(&r.suite);
                if let Some(a) = r.alpn.first() {
                    t.alpn = Some(a.clone());
                }
                let mut e = stage(
                    "server_hello",
                    format!(
                        "the server chose {} with {}{}",
                        r.version_selected.as_deref().unwrap_or("?"),
                        r.suite.as_deref().unwrap_or("?"),
                        r.group
                            .as_deref()
                            .map(|g| format!(" and key exchange {g}"))
                            .unwrap_or_default()
                    ),
                );
                e.version.clone_from(&r.version_selected);
                e.suite.clone_from(&r.suite);
                e.group.clone_from(&r.group);
                stages.push(e);
            }
            if !tx
                && is_message(r, "EncryptedExtensions")
                && let Some(a) = r.alpn.first()
            {
                t.alpn = Some(a.clone());
            }
            if !tx && is_message(r, "Certificate") && !t.certificate {
                t.certificate = true;
                let n = r.certificates.unwrap_or(0);
                stages.push(stage(
                    "certificate_received",
                    format!(
                        "the server sent its certificate chain ({n} certificate{}); a capture does not show whether the client verified it",
                        if n == 1 { "" } else { "s" }
                    ),
                ));
            }
            if !tx && is_message(r, "Finished") && !t.server_finished {
                t.server_finished = true;
                stages.push(stage(
                    "server_finished",
                    "the server's Finished: its side of the handshake is done".into(),
                ));
            }
            let client_finished = is_message(r, "Finished")
                || (r.encrypted
                    && r.decrypted == Some(false)
                    && r.inner == Some("handshake")
                    && t.server_hello);
            if tx && client_finished && !t.complete {
                t.complete = true;
                conn.appconnect_at = Some(now);
                let mut e = stage(
                    "handshake_complete",
                    format!(
                        "client Finished sent; handshake complete{}",
                        t.alpn
                            .as_deref()
                            .map(|a| format!(", ALPN {a}"))
                            .unwrap_or_default()
                    ),
                );
                e.alpn.clone_from(&t.alpn);
                stages.push(e);
            }
            if !tx && is_message(r, "NewSessionTicket") {
                stages.push(stage(
                    "session_ticket",
                    "the server sent a session ticket, for resuming later".into(),
                ));
            }
            if let Some(alert) = r.alert.as_deref() {
                if alert == "close_notify" {
                    let (name, seen, who) = if tx {
                        ("close_notify_sent", &mut t.close_sent, "us")
                    } else {
                        ("close_notify_received", &mut t.close_received, "the server")
                    };
                    if !*seen {
                        *seen = true;
                        let detail = if tx {
                            "close_notify alert sent: no more data from the client".to_string()
                        } else {
                            format!("close_notify alert received: no more data from {who}")
                        };
                        stages.push(stage(name, detail));
                    }
                } else if !t.complete {
                    alert_failure = Some(format!(
                        "{} sent the TLS alert {alert} during the handshake",
                        if tx { "the client" } else { "the server" }
                    ));
                }
            }
            if r.decrypted == Some(false) && r.inner == Some("application_data") && !t.no_keys_noted
            {
                t.no_keys_noted = true;
                notes.push(
                    "the TLS records from here on are encrypted and no key log in hand matches this connection, so the HTTP request and response cannot be shown; capture with SSLKEYLOGFILE=keys.log set for the client and replay with --keylog keys.log (or embed the keys: editcap --inject-secrets tls,keys.log in.pcap out.pcapng)".into(),
                );
            }
        }
        for e in stages {
            self.emit(EventKind::Tls(e));
        }
        for n in notes {
            self.note(n);
        }
        if let Some(message) = alert_failure {
            self.failure.get_or_insert(Seen {
                class: FailureClass::Tls,
                phase: Phase::Tls,
                kind: "alert",
                message,
            });
        }
        // Timing marks of encrypted application data when it cannot be read.
        let Some(conn) = self.conns.get(&key) else {
            return;
        };
        let undecrypted_app = records
            .iter()
            .any(|r| r.inner == Some("application_data") && r.decrypted == Some(false));
        if undecrypted_app && conn.tls.no_keys_noted {
            self.unreadable_app(key, dir);
        }
    }

    /// Encrypted application data that cannot be read still marks the exchange's times.
    fn unreadable_app(&mut self, key: (SocketAddr, SocketAddr), dir: Direction) {
        let now = self.now;
        match dir {
            Direction::Tx => {
                let open = self
                    .exchanges
                    .last()
                    .is_some_and(|e| e.conn == key && e.head.is_none() && !e.complete);
                if !open {
                    let url = self
                        .conns
                        .get(&key)
                        .map(|c| conn_url(c, None, "/"))
                        .unwrap_or_else(|| fallback_url(key.1));
                    self.start_exchange(key, "GET".into(), url, Vec::new());
                }
            }
            Direction::Rx => {
                if let Some(e) = self.exchanges.last_mut()
                    && e.conn == key
                {
                    e.marks.starttransfer.get_or_insert(now);
                    e.marks.body_done = Some(now);
                }
            }
        }
    }

    fn app_data(
        &mut self,
        key: (SocketAddr, SocketAddr),
        d: &Dissection,
        dir: Direction,
        app: &[u8],
    ) {
        let gap = d
            .problems
            .iter()
            .any(|p| matches!(p, fetchscope_wire::DecodeProblem::StreamGap { .. }));
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        if key.1.port() == DNS_PORT {
            return;
        }
        if gap {
            conn.http.lost(dir == Direction::Tx);
        }
        if app.is_empty() {
            return;
        }
        if !conn.is_tls && d.tls.is_empty() && conn.server.port() == 443 {
            conn.is_tls = true;
        }
        let mut out = HttpOutput::default();
        match dir {
            Direction::Tx => conn.http.client_bytes(app, &mut out),
            Direction::Rx => {
                if let Some(e) = self
                    .exchanges
                    .iter_mut()
                    .rev()
                    .find(|e| e.conn == key && !e.complete)
                {
                    e.marks.starttransfer.get_or_insert(self.now);
                }
                if let Some(conn) = self.conns.get_mut(&key) {
                    conn.http.server_bytes(app, &mut out);
                }
            }
        }
        self.http_output(key, out);
    }

    /// Turns what the HTTP reading found into events and exchange records.
    fn http_output(&mut self, key: (SocketAddr, SocketAddr), out: HttpOutput) {
        let now = self.now;
        for req in out.requests {
            let Some(conn) = self.conns.get(&key) else {
                return;
            };
            let url = conn_url(conn, Some(&req.headers), &req.target);
            self.announce_redirect(Some(key), Next::Request(&url));
            let shown = crate::http::shown_headers(&req.headers, self.options.show_secrets);
            self.emit(EventKind::HttpRequest(HttpRequestEvent {
                method: req.method.clone(),
                target: req.target.clone(),
                url: url.clone(),
                headers: shown,
                body_bytes: req.body_bytes,
            }));
            self.start_exchange(key, req.method, url, req.headers);
        }
        if out.request_done
            && let Some(e) = self.exchanges.iter_mut().rev().find(|e| e.conn == key)
        {
            e.marks.request_sent.get_or_insert(now);
        }
        for (index, p) in out.progress {
            let ex = self.exchange_for(key, index);
            match &p {
                HttpProgress::Head(h) => {
                    if let Some(e) = ex.and_then(|i| self.exchanges.get_mut(i)) {
                        e.head = Some(h.clone());
                    }
                }
                HttpProgress::Body { wire, decoded } => {
                    if let Some(e) = ex.and_then(|i| self.exchanges.get_mut(i)) {
                        e.wire_body_bytes += *wire as u64;
                        e.body_bytes += *decoded as u64;
                        e.marks.body_done = Some(now);
                    }
                }
                _ => {}
            }
            match crate::event::http_progress_event(&p, self.options.show_secrets) {
                Some(Ok(ev)) => {
                    self.enter(Phase::Response);
                    self.emit(EventKind::Http(ev));
                }
                Some(Err(note)) => self.note(note),
                None => {}
            }
        }
        for c in out.completed {
            let Some(i) = self.exchange_for(key, c.index) else {
                continue;
            };
            let Some(e) = self.exchanges.get_mut(i) else {
                continue;
            };
            e.complete = true;
            e.body_bytes = c.body_bytes;
            e.wire_body_bytes = c.wire_bytes;
            e.sha256 = c.sha256;
            e.body_start = c.body_start;
            e.marks.body_done.get_or_insert(now);
            e.marks.starttransfer.get_or_insert(now);
            e.marks.total = Some(now);
            self.next_start = now;
            if let Some(head) = &e.head
                && let Ok(Some(r)) = crate::http::redirect(head, &e.url, &e.method)
            {
                self.redirect = Some(PendingRedirect {
                    status: head.status,
                    from: e.url.clone(),
                    to: r.url,
                    method: r.method,
                    conn: key,
                });
            }
        }
        for p in out.problems {
            self.note(p);
        }
    }

    fn exchange_for(&self, key: (SocketAddr, SocketAddr), index: u64) -> Option<usize> {
        self.conns
            .get(&key)?
            .exchanges
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, e)| *e)
    }

    fn start_exchange(
        &mut self,
        key: (SocketAddr, SocketAddr),
        method: String,
        url: Url,
        headers: Vec<(String, String)>,
    ) {
        let now = self.now;
        let start = self.next_start;
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        let reused = conn.used;
        conn.used = true;
        let index = conn.requests;
        conn.requests += 1;
        let marks = TimingMarks {
            start,
            reused,
            namelookup: if reused {
                None
            } else {
                conn.dns_at.filter(|t| *t >= start)
            },
            connect: if reused { None } else { conn.connect_at },
            appconnect: if reused { None } else { conn.appconnect_at },
            pretransfer: Some(now),
            ..TimingMarks::default()
        };
        let tls = conn.is_tls;
        if self.exchanges.len() >= MAX_EXCHANGES {
            self.exchanges_dropped += 1;
            // The oldest after the first goes: the summary keeps the first and the latest.
            self.exchanges.remove(1.min(self.exchanges.len() - 1));
            for c in self.conns.values_mut() {
                c.exchanges.retain(|(_, e)| *e != 1);
                for (_, e) in c.exchanges.iter_mut() {
                    if *e > 1 {
                        *e -= 1;
                    }
                }
            }
        }
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        if conn.exchanges.len() >= 64 {
            conn.exchanges.pop_front();
        }
        conn.exchanges.push_back((index, self.exchanges.len()));
        self.exchanges.push(Exchange {
            marks,
            url,
            method,
            request_headers: headers,
            remote: key.1,
            local: key.0,
            conn: key,
            tls,
            head: None,
            body_bytes: 0,
            wire_body_bytes: 0,
            sha256: String::new(),
            body_start: Vec::new(),
            complete: false,
        });
    }

    /// A redirect was seen and the next exchange may begin (a lookup, or a request on
    /// `key`): the `redirect` event when it is the redirect's (a lookup of its host, a
    /// request for its URL). A request for anything else is another fetch: the redirect
    /// was not followed.
    fn announce_redirect(&mut self, key: Option<(SocketAddr, SocketAddr)>, next: Next<'_>) {
        let Some(r) = self.redirect.take() else {
            return;
        };
        let follows = match next {
            Next::Lookup(name) => {
                r.to.host_str()
                    .is_some_and(|h| h.eq_ignore_ascii_case(name.trim_end_matches('.')))
            }
            Next::Request(url) => {
                let (mut a, mut b) = (url.clone(), r.to.clone());
                a.set_fragment(None);
                b.set_fragment(None);
                if a != b {
                    return; // another fetch: the redirect is dropped
                }
                true
            }
        };
        if !follows {
            self.redirect = Some(r);
            return;
        }
        self.redirects += 1;
        let downgrade = r.from.scheme() == "https" && r.to.scheme() == "http";
        self.emit(EventKind::Redirect(RedirectEvent {
            hop: self.redirects,
            status: r.status,
            from: r.from.to_string(),
            to: r.to.to_string(),
            method: r.method,
            reuse: key == Some(r.conn),
            downgrade,
        }));
    }

    fn summary(&mut self) -> Result<Summary, FetchError> {
        let now = self.now;
        let records: Vec<ExchangeRecord> = self
            .exchanges
            .iter()
            .map(|e| {
                let mut marks = e.marks;
                marks.total.get_or_insert(now);
                ExchangeRecord {
                    url: e.url.to_string(),
                    method: e.method.clone(),
                    request_headers: crate::http::shown_headers(
                        &e.request_headers,
                        self.options.show_secrets,
                    ),
                    status: e.head.as_ref().map_or(0, |h| h.status),
                    reason: e
                        .head
                        .as_ref()
                        .map(|h| h.reason.clone())
                        .unwrap_or_default(),
                    http_version: e
                        .head
                        .as_ref()
                        .map(|h| h.version.clone())
                        .unwrap_or_default(),
                    response_headers: e
                        .head
                        .as_ref()
                        .map(|h| {
                            crate::event::HttpResponseEvent::from_head(h, self.options.show_secrets)
                                .headers
                        })
                        .unwrap_or_default(),
                    started_us: marks.start.micros_since(Instant::ZERO),
                    reused_connection: marks.reused,
                    remote: e.remote.to_string(),
                    body_bytes: e.body_bytes,
                    wire_body_bytes: e.wire_body_bytes,
                    har: marks.har(e.tls),
                    timings: marks.leg(e.tls),
                }
            })
            .collect();
        let Some(last) = self.exchanges.last() else {
            return Err(self.no_exchange());
        };
        let readable =
            last.head.is_some() || !self.conn_of(last).is_some_and(|c| c.tls.no_keys_noted);
        if readable && !last.complete {
            let got = last.body_bytes;
            let (class, phase, kind, message) = match &last.head {
                Some(h) => (
                    FailureClass::Http,
                    Phase::Response,
                    "incomplete",
                    format!(
                        "the capture ends before the response to {} {} was complete ({} body bytes seen{}); the fetch may have gone on after the capture stopped",
                        last.method,
                        last.url,
                        got,
                        match h.framing {
                            crate::http::Framing::ContentLength(n) => format!(" of {n}"),
                            _ => String::new(),
                        }
                    ),
                ),
                None => (
                    FailureClass::Http,
                    Phase::Request,
                    "no_response",
                    format!(
                        "the capture holds no response to {} {}",
                        last.method, last.url
                    ),
                ),
            };
            return Err(FetchError::new(class, phase, kind, message));
        }
        let mut marks = last.marks;
        marks.total = Some(now);
        let conn = self.conn_of(last);
        Ok(Summary {
            // The last URL fetched, as a live fetch's summary and curl's url_effective.
            url: last.url.to_string(),
            status: last.head.as_ref().map_or(0, |h| h.status),
            body_bytes: last.body_bytes,
            wire_body_bytes: last.wire_body_bytes,
            body_sha256: last.sha256.clone(),
            body_start: last.body_start.clone(),
            timings: marks.curl(Instant::ZERO, last.tls),
            har: marks.har(last.tls),
            remote: last.remote.to_string(),
            local: last.local.to_string(),
            final_tcp_state: conn.map(|c| c.tcp.state.to_string()).unwrap_or_default(),
            packets_tx: self.packets_tx,
            packets_rx: self.packets_rx,
            tls_version: conn.and_then(|c| c.tls.version.clone()),
            tls_suite: conn.and_then(|c| c.tls.suite.clone()),
            redirects: self.redirects,
            exchanges: records,
        })
    }

    fn conn_of(&self, e: &Exchange) -> Option<&Conn> {
        self.conns.get(&e.conn)
    }

    /// The failure when no request was seen: what the capture shows, or that it ends.
    fn no_exchange(&self) -> FetchError {
        if let Some(f) = &self.failure {
            return FetchError::new(f.class, f.phase, f.kind, f.message.clone());
        }
        let conn = self
            .conns
            .values()
            .filter(|c| c.server.port() != DNS_PORT)
            .max_by_key(|c| c.last_used);
        let (phase, what) = match conn {
            None => (
                Phase::Resolve,
                "the capture ends before the client opened a connection".to_string(),
            ),
            Some(c) if c.connect_at.is_none() => (
                Phase::Connect,
                format!(
                    "the capture holds no answer to the client's SYN to {}",
                    c.server
                ),
            ),
            Some(c) if c.is_tls && !c.tls.complete => (
                Phase::Tls,
                format!(
                    "the capture ends during the TLS handshake with {}",
                    c.server
                ),
            ),
            Some(c) => (
                Phase::Request,
                format!(
                    "the capture holds no HTTP request on the connection to {}",
                    c.server
                ),
            ),
        };
        let class = match phase {
            Phase::Resolve => FailureClass::Dns,
            Phase::Connect => FailureClass::Connect,
            Phase::Tls => FailureClass::Tls,
            _ => FailureClass::Http,
        };
        FetchError::new(class, phase, "capture_ended", what)
    }
}

/// What begins after a redirect: a lookup of a name, or a request for a URL.
#[derive(Debug, Clone, Copy)]
enum Next<'a> {
    Lookup(&'a str),
    Request(&'a Url),
}

/// What step mode shows at a pause of a replay.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplayState {
    /// Time of the last event, µs since the replay's start.
    pub t_us: u64,
    /// The phase.
    pub phase: Phase,
    /// The client's endpoint of the connection most recently active.
    pub client: Option<SocketAddr>,
    /// The server's endpoint of it.
    pub server: Option<SocketAddr>,
    /// The client's TCP state, inferred from the packets.
    pub tcp_state: Option<TcpState>,
    /// The sequence space as the client sees it.
    #[serde(skip)]
    pub tcp: Option<fetchscope_wire::TcpSpace>,
    /// The negotiated TLS version.
    pub tls_version: Option<String>,
    /// The negotiated cipher suite.
    pub tls_suite: Option<String>,
    /// The last TLS stage reached.
    pub tls_stage: Option<String>,
    /// The latest request (method and URL).
    pub request: Option<String>,
    /// Its response's status, once the head is read.
    pub status: Option<u16>,
    /// Body bytes of that response so far.
    pub body_bytes: u64,
    /// The response is complete.
    pub complete: bool,
    /// Redirects seen.
    pub redirects: usize,
}

fn stage(name: &str, detail: String) -> TlsEvent {
    TlsEvent {
        stage: name.to_string(),
        version: None,
        suite: None,
        group: None,
        alpn: None,
        detail,
        certificates: Vec::new(),
    }
}

fn tls_stage_name(t: &TlsSeen) -> String {
    let name = if t.close_sent || t.close_received {
        "closing"
    } else if t.complete {
        "handshake complete"
    } else if t.server_finished {
        "server Finished seen"
    } else if t.server_hello {
        "ServerHello seen"
    } else if t.hello {
        "ClientHello sent"
    } else {
        "none"
    };
    name.to_string()
}

fn is_message(r: &TlsRecord, name: &str) -> bool {
    r.messages.iter().any(|m| m == name)
}

/// The URL of a request on `conn`: its scheme, the `Host` header (else the TLS server
/// name, else the address) and the target.
fn conn_url(conn: &Conn, headers: Option<&[(String, String)]>, target: &str) -> Url {
    if let Ok(u) = Url::parse(target)
        && matches!(u.scheme(), "http" | "https")
    {
        return u;
    }
    let scheme = if conn.is_tls { "https" } else { "http" };
    let host = headers
        .and_then(|h| h.iter().find(|(n, _)| n.eq_ignore_ascii_case("host")))
        .map(|(_, v)| v.trim().to_string())
        .or_else(|| conn.sni.clone())
        .unwrap_or_else(|| match conn.server {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        });
    let default_port = if conn.is_tls { 443 } else { 80 };
    // `Host` names the port when it is not the default (and through a proxy the
    // connection's port is the proxy's); a server name or an address does not.
    let from_header =
        headers.is_some_and(|h| h.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")));
    let has_port = host.rsplit_once(':').is_some_and(|(_, p)| !p.contains(']'));
    let port = if !from_header && !has_port && conn.server.port() != default_port {
        format!(":{}", conn.server.port())
    } else {
        String::new()
    };
    let target = if target.starts_with('/') { target } else { "/" };
    Url::parse(&format!("{scheme}://{host}{port}{target}"))
        .unwrap_or_else(|_| fallback_url(conn.server))
}

fn fallback_url(server: SocketAddr) -> Url {
    // `SocketAddr` prints `a.b.c.d:port` or `[v6]:port`: always a valid authority.
    Url::parse(&format!("https://{server}/")).expect("a socket address makes a valid URL")
}

/// The source and destination addresses of an IPv4 or IPv6 packet.
fn addresses(ip: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match ip.first()? >> 4 {
        4 => {
            let s: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            Some((IpAddr::from(s), IpAddr::from(d)))
        }
        6 => {
            let s: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            Some((IpAddr::from(s), IpAddr::from(d)))
        }
        _ => None,
    }
}

/// The client a packet shows, if it is a DNS query or a TCP SYN: its sender.
fn first_client(ip: &[u8]) -> Option<IpAddr> {
    let (src, _) = addresses(ip)?;
    let (proto, l4) = match ip.first()? >> 4 {
        4 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            (*ip.get(9)?, ip.get(ihl..)?)
        }
        6 => (*ip.get(6)?, ip.get(40..)?),
        _ => return None,
    };
    let dst_port = u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]);
    match proto {
        17 if dst_port == DNS_PORT => {
            // QR bit clear: a query.
            let flags = *l4.get(8 + 2)?;
            (flags & 0x80 == 0).then_some(src)
        }
        6 => {
            let flags = *l4.get(13)?;
            (flags & 0x02 != 0 && flags & 0x10 == 0).then_some(src)
        }
        _ => None,
    }
}
