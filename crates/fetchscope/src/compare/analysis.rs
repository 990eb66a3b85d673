//! [`Analyzer`]: what one run's event stream shows about its stack, accumulated event by
//! event (memory stays bounded whatever the transfer size) into a [`StackReport`].

use std::collections::BTreeMap;

use fetchscope_core::event::PacketEvent;
use fetchscope_core::timing::{CurlTimings, HarTimings};
use fetchscope_core::{Event, EventKind, Phase};
use fetchscope_os::TcpInfo;
use fetchscope_wire::{Direction, TcpAnalysis, TcpFlags, TlsRecord};
use serde::Serialize;

/// ACKs sent later than this after the data they acknowledge count as delayed.
pub const DELAYED_ACK_US: u64 = 2_000;
/// Packet lines kept per phase for the side-by-side view.
pub const LADDER_LINES: usize = 24;
/// Server segments remembered while waiting for their ACK.
const MAX_UNACKED: usize = 100_000;
/// ACK delays remembered for the median.
const MAX_DELAYS: usize = 1_000_000;

/// The options and window of a SYN or SYN-ACK.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SynInfo {
    /// Packet number in its run.
    pub number: u64,
    /// µs since the run started.
    pub t_us: u64,
    /// IP packet length.
    pub len: usize,
    /// The window field.
    pub win: u16,
    /// Maximum segment size offered.
    pub mss: Option<u16>,
    /// Window scale shift offered.
    pub ws: Option<u8>,
    /// SACK permitted.
    pub sack_permitted: bool,
    /// Timestamp value, when the timestamp option is present.
    pub ts_val: Option<u32>,
    /// IP time to live.
    pub ttl: Option<u8>,
}

impl SynInfo {
    /// The options as one phrase (`mss 1460, ws 7, sack, ts`).
    pub fn options(&self) -> String {
        let mut v = Vec::new();
        if let Some(m) = self.mss {
            v.push(format!("mss {m}"));
        }
        if let Some(w) = self.ws {
            v.push(format!("ws {w}"));
        }
        if self.sack_permitted {
            v.push("sack".to_string());
        }
        if self.ts_val.is_some() {
            v.push("timestamps".to_string());
        }
        if v.is_empty() {
            "no options".to_string()
        } else {
            v.join(", ")
        }
    }
}

/// Packets and payload bytes of one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PhaseCount {
    /// Packets sent.
    pub tx: u64,
    /// Packets received.
    pub rx: u64,
    /// Payload bytes sent (TCP or UDP).
    pub tx_payload: u64,
    /// Payload bytes received.
    pub rx_payload: u64,
}

/// How the client acknowledged the server's data segments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AckPattern {
    /// Server segments with data.
    pub data_segments: u64,
    /// Client segments that acknowledged at least one of them.
    pub acks: u64,
    /// Of those, without data of their own.
    pub pure_acks: u64,
    /// How many ACKs acknowledged 1, 2, 3, ... segments.
    pub segments_per_ack: BTreeMap<u64, u64>,
    /// ACKs sent at least [`DELAYED_ACK_US`] after the newest segment they acknowledge.
    pub delayed: u64,
    /// Median delay from the newest acknowledged segment's arrival to the ACK (µs).
    pub median_delay_us: Option<u64>,
    /// Longest such delay (µs).
    pub max_delay_us: Option<u64>,
    /// Duplicate ACKs sent.
    pub duplicate_acks: u64,
}

impl AckPattern {
    /// The most common number of segments per ACK.
    pub fn usual(&self) -> Option<u64> {
        self.segments_per_ack
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(k, _)| *k)
    }

    /// A short phrase for a table: "18 ACKs / 35 segments, mostly 1 per 2".
    pub fn brief(&self) -> String {
        match self.usual() {
            None => format!("no ACKs / {} segments", self.data_segments),
            Some(n) => format!(
                "{} ACKs / {} segments, mostly 1 per {n}",
                self.acks, self.data_segments
            ),
        }
    }

    /// One phrase: "18 ACKs for 35 segments, usually one per 2 segments".
    pub fn describe(&self) -> String {
        match self.usual() {
            None => format!("{} data segments, none acknowledged", self.data_segments),
            Some(n) => format!(
                "{} ACK{} for {} segment{}, usually one per {}",
                self.acks,
                plural(self.acks),
                self.data_segments,
                plural(self.data_segments),
                if n == 1 {
                    "segment".to_string()
                } else {
                    format!("{n} segments")
                }
            ),
        }
    }
}

/// One segment of the server's first flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlightSegment {
    /// Packet number.
    pub number: u64,
    /// TCP payload bytes.
    pub payload: usize,
    /// What the TLS records it completes carry.
    pub records: Vec<String>,
}

/// The server's first data flight after the client's first data (the TLS server flight
/// for HTTPS).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Flight {
    /// Its segments, in arrival order.
    pub segments: Vec<FlightSegment>,
    /// Payload bytes in all.
    pub bytes: u64,
    /// From the first segment's arrival to the last's (µs).
    pub span_us: u64,
    /// ACKs the client sent while it arrived.
    pub acks_sent: u64,
}

/// A FIN segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FinInfo {
    /// `client` or `server`.
    pub by: &'static str,
    /// Packet number.
    pub number: u64,
    /// µs since the run started.
    pub t_us: u64,
    /// TCP flags of the segment.
    pub flags: TcpFlags,
    /// Payload bytes the FIN rode on.
    pub payload: usize,
    /// TLS records in it (e.g. an alert).
    pub records: Vec<String>,
}

/// How the connection ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Teardown {
    /// The first FIN.
    pub first_fin: Option<FinInfo>,
    /// The other side's FIN.
    pub second_fin: Option<FinInfo>,
    /// The two FINs crossed (each sent before the other arrived).
    pub crossed: bool,
    /// Who keeps the connection in TIME-WAIT: `client`, `server`, `both` or `nobody`.
    pub time_wait: &'static str,
    /// Resets: `client`/`server` and packet number.
    pub resets: Vec<(&'static str, u64)>,
    /// The client's TCP state at the end, as its stack reported it.
    pub final_state: Option<String>,
    /// The first FIN or RST of the connection, whichever came first.
    pub first_close: Option<CloseStart>,
}

/// The first segment that began closing a connection (a FIN or a RST).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloseStart {
    /// `client` or `server`.
    pub by: &'static str,
    /// `FIN` or `RST`.
    pub how: &'static str,
    /// Packet number.
    pub number: u64,
    /// µs since the run started.
    pub t_us: u64,
    /// µs since the last segment with data before it (either direction), if any.
    pub after_data_us: Option<u64>,
}

/// What a ClientHello offered, from the record that carried it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HelloInfo {
    /// Packet number.
    pub number: u64,
    /// The record-layer version, e.g. "TLSv1.0".
    pub record_version: String,
    /// supported_versions, in order ("GREASE" included).
    pub versions: Vec<String>,
    /// Cipher suites, in order ("GREASE" included).
    pub cipher_suites: Vec<String>,
    /// Extensions, in order ("GREASE" included).
    pub extensions: Vec<String>,
    /// supported_groups, in order.
    pub groups: Vec<String>,
    /// The groups of the key shares sent.
    pub key_shares: Vec<String>,
    /// ALPN protocols offered.
    pub alpn: Vec<String>,
    /// Server name indication.
    pub sni: Option<String>,
    /// signature_algorithms, in order.
    pub signature_algorithms: Vec<String>,
    /// The JA4 fingerprint.
    pub ja4: Option<String>,
}

impl HelloInfo {
    fn from_record(number: u64, r: &TlsRecord) -> Self {
        HelloInfo {
            number,
            record_version: r.version.to_string(),
            versions: r.versions.clone(),
            cipher_suites: r.cipher_suites.clone(),
            extensions: r.extensions.clone(),
            groups: r.groups.clone(),
            key_shares: r.key_shares.clone(),
            alpn: r.alpn.clone(),
            sni: r.sni.clone(),
            signature_algorithms: r.signature_algorithms.clone(),
            ja4: r.ja4.clone(),
        }
    }

    /// True if any list holds a GREASE value (RFC 8701).
    pub fn sends_grease(&self) -> bool {
        [
            &self.versions,
            &self.cipher_suites,
            &self.extensions,
            &self.groups,
            &self.key_shares,
            &self.signature_algorithms,
        ]
        .into_iter()
        .any(|v| v.iter().any(|x| is_grease(x)))
    }
}

/// True for the name the dissector gives a GREASE value.
pub fn is_grease(name: &str) -> bool {
    name == "GREASE"
}

/// `v` without GREASE values.
pub fn without_grease(v: &[String]) -> Vec<&str> {
    v.iter()
        .map(String::as_str)
        .filter(|x| !is_grease(x))
        .collect()
}

/// What the server chose in its ServerHello.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServerHelloInfo {
    /// Packet number.
    pub number: u64,
    /// The negotiated version.
    pub version_selected: Option<String>,
    /// The chosen cipher suite.
    pub suite: Option<String>,
    /// The key-exchange group.
    pub group: Option<String>,
    /// The chosen ALPN protocol (from the ServerHello, or a readable EncryptedExtensions).
    pub alpn: Option<String>,
    /// The JA4S fingerprint.
    pub ja4s: Option<String>,
}

/// The first HTTP request head, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequestInfo {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Request target, e.g. `/index.html`.
    pub target: String,
    /// Header fields in the order sent.
    pub headers: Vec<(String, String)>,
}

impl RequestInfo {
    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Retransmissions and other TCP analysis marks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Retransmissions {
    /// Segments the client sent again.
    pub client: u64,
    /// Segments the server sent again.
    pub server: u64,
    /// Packet numbers of the retransmissions (first 20).
    pub packets: Vec<u64>,
    /// Segments seen out of order.
    pub out_of_order: u64,
}

/// IP header habits of the client's packets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IpHabits {
    /// IPv4 IDs of the client's first TCP packets.
    pub first_ids: Vec<u16>,
    /// Client packets whose ID was one more than the previous one's.
    pub incrementing: u64,
    /// Client packets with ID 0.
    pub zero_ids: u64,
    /// IPv4 client packets seen.
    pub packets: u64,
    /// TTLs (or hop limits) used.
    pub ttls: Vec<u8>,
    /// Client packets with Don't Fragment set.
    pub df: u64,
}

impl IpHabits {
    /// One phrase on how the IDs were chosen.
    pub fn id_pattern(&self) -> String {
        if self.packets == 0 {
            return "no IPv4 packets".to_string();
        }
        if self.zero_ids == self.packets {
            return "IP ID 0 on every packet".to_string();
        }
        if self.incrementing + 1 >= self.packets {
            return "IP IDs increasing by one per packet".to_string();
        }
        "IP IDs varying".to_string()
    }
}

/// What the stack itself can be seen to do in its trace: the values `TCP_INFO` holds for
/// the kernel, derived from the packets for any stack.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TraceTcp {
    /// SYN to SYN-ACK (ms): the handshake round trip.
    pub handshake_rtt_ms: Option<f64>,
    /// The MSS the client may send: the server's MSS option (or 536), less the
    /// timestamp option when both use it.
    pub snd_mss: Option<u32>,
    /// Largest server segment payload received.
    pub max_rx_payload: usize,
    /// Largest client segment payload sent.
    pub max_tx_payload: usize,
    /// Options both sides agreed on in the handshake.
    pub options: Vec<&'static str>,
    /// Window scale the client asked the server to apply (its receive shift).
    pub rcv_wscale: Option<u8>,
    /// Window scale of the server (the client's send shift).
    pub snd_wscale: Option<u8>,
    /// The client's receive window after the handshake (bytes, scaled).
    pub rcv_window: Option<u32>,
    /// The server's window after the handshake (bytes, scaled).
    pub snd_window: Option<u32>,
    /// Segments the client retransmitted.
    pub retransmits: u64,
    /// TCP segments the client sent.
    pub segments_out: u64,
    /// TCP segments the client received.
    pub segments_in: u64,
}

/// Everything `compare` knows about one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StackReport {
    /// `userspace`, `kernel`, `client` or `capture`.
    pub stack: &'static str,
    /// How sentences name the run: "fetchscope's stack", "the kernel", "curl", ...
    pub name: String,
    /// Where the run went through (one phrase).
    pub path: String,
    /// The run completed.
    pub ok: bool,
    /// Its error, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// HTTP status.
    pub status: Option<u16>,
    /// SHA-256 of the decoded body.
    pub body_sha256: Option<String>,
    /// Decoded body bytes.
    pub body_bytes: Option<u64>,
    /// Local endpoint.
    pub local: Option<String>,
    /// Remote endpoint.
    pub remote: Option<String>,
    /// curl-like cumulative timings.
    pub timings: Option<CurlTimings>,
    /// HAR-like per-phase timings.
    pub har: Option<HarTimings>,
    /// When each phase began (µs).
    pub phase_starts: Vec<(Phase, u64)>,
    /// Packets per phase.
    pub phases: BTreeMap<Phase, PhaseCount>,
    /// Packets sent.
    pub packets_tx: u64,
    /// Packets received.
    pub packets_rx: u64,
    /// TCP connections the run made (a redirect to another host needs a new one).
    pub connections: usize,
    /// Which connection the TCP details below describe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analyzed_connection: Option<String>,
    /// The client's SYN.
    pub syn: Option<SynInfo>,
    /// The server's SYN-ACK.
    pub syn_ack: Option<SynInfo>,
    /// ACKs of the server's data.
    pub acks: AckPattern,
    /// The server's first flight.
    pub server_flight: Option<Flight>,
    /// The end of the connection.
    pub teardown: Teardown,
    /// Retransmissions.
    pub retransmissions: Retransmissions,
    /// IP header habits.
    pub ip: IpHabits,
    /// TCP as the trace shows it.
    pub tcp: TraceTcp,
    /// The first ClientHello sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_hello: Option<HelloInfo>,
    /// The first ServerHello received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_hello: Option<ServerHelloInfo>,
    /// The first HTTP request head sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestInfo>,
    /// The kernel's `TCP_INFO` after the handshake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_info_after_connect: Option<TcpInfo>,
    /// The kernel's `TCP_INFO` at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_info_at_end: Option<TcpInfo>,
    /// Packet lines per phase for the side-by-side view (bounded), and how many more.
    #[serde(skip)]
    pub ladder: BTreeMap<Phase, (Vec<String>, u64)>,
}

/// Builds a [`StackReport`] from a run's events.
#[derive(Debug, Default)]
pub struct Analyzer {
    report: StackReport,
    /// One per TCP connection (a redirect may open another), by the client's port.
    conns: Vec<Conn>,
}

/// Connections analysed at most.
const MAX_CONNS: usize = 64;

/// What one TCP connection shows: the connection fields of a [`StackReport`], and what
/// the analysis needs to remember between packets.
#[derive(Debug, Default)]
struct Conn {
    port: u16,
    report: StackReport,
    unacked: std::collections::VecDeque<(u32, u64)>,
    max_rx_end: Option<u32>,
    delays: Vec<u64>,
    flight_state: FlightState,
    flight: Flight,
    flight_first_t: u64,
    flight_last_t: u64,
    last_ip_id: Option<u16>,
    client_fin_end: Option<u32>,
    server_fin_end: Option<u32>,
    handshake_ack_seen: bool,
    server_ts: bool,
    last_data_t: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum FlightState {
    #[default]
    BeforeClientData,
    AwaitingServer,
    InFlight,
    Done,
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The TLS content of a packet as short names.
fn record_names(p: &PacketEvent) -> Vec<String> {
    p.layers
        .tls
        .iter()
        .flat_map(|r| {
            if !r.messages.is_empty() {
                r.messages.clone()
            } else if let Some(a) = &r.alert {
                vec![format!("Alert({a})")]
            } else if r.encrypted && r.decrypted != Some(true) {
                vec![format!("encrypted {}", r.inner.unwrap_or(r.record))]
            } else if let Some(h) = &r.http {
                vec![h.clone()]
            } else {
                vec![match r.record {
                    "change_cipher_spec" => "ChangeCipherSpec".to_string(),
                    "application_data" => match r.app_len {
                        Some(n) => format!("application data ({n} B)"),
                        None => "application data".to_string(),
                    },
                    other => other.to_string(),
                }]
            }
        })
        .collect()
}

/// Flag names in the event stream's order, joined by `sep` (`SYN,ACK`).
pub(crate) fn flag_list(flags: TcpFlags, sep: &str) -> String {
    flags.names().collect::<Vec<_>>().join(sep)
}

/// A short line for the side-by-side view.
pub fn compact(p: &PacketEvent) -> String {
    let arrow = match p.dir {
        Direction::Tx => "→",
        Direction::Rx => "←",
    };
    if let Some(t) = &p.layers.tcp {
        let mut s = format!("{arrow} [{}]", flag_list(t.flags, ","));
        if t.payload_len > 0 {
            s.push_str(&format!(" {}B", t.payload_len));
        }
        if let Some(o) = &t.options {
            if let Some(m) = o.mss {
                s.push_str(&format!(" mss={m}"));
            }
            if let Some(w) = o.ws {
                s.push_str(&format!(" ws={w}"));
            }
            if o.sack_permitted {
                s.push_str(" sack");
            }
            if o.ts_val.is_some() && t.flags.contains(TcpFlags::SYN) {
                s.push_str(" ts");
            }
        }
        if t.flags.contains(TcpFlags::SYN) || t.payload_len == 0 {
            s.push_str(&format!(
                " win={}",
                t.win_scaled.unwrap_or(u32::from(t.win))
            ));
        }
        let recs = record_names(p);
        if !recs.is_empty() {
            s.push_str(&format!(" {}", recs.join(", ")));
        }
        for a in &t.analysis {
            s.push_str(&format!(" <{a}>"));
        }
        return s;
    }
    if let Some(d) = &p.layers.dns {
        let q = format!(
            "{} {}",
            d.qtype.as_deref().unwrap_or("?"),
            d.question.as_deref().unwrap_or("?")
        );
        let what = if d.response {
            let answers: Vec<&str> = d.answers.iter().map(|a| a.data.as_str()).collect();
            format!("DNS answer {q} → {} ({})", answers.join(", "), d.rcode)
        } else {
            format!("DNS query {q}")
        };
        return format!("{arrow} {what} ({} B)", p.len);
    }
    if let Some(i) = &p.layers.icmp {
        return format!("{arrow} ICMP {}", i.name);
    }
    format!("{arrow} {}", p.summary)
}

/// The name sentences give a run of `stack` by default: "fetchscope's stack" for
/// `userspace`, "the kernel" for `kernel`, else `stack` itself.
pub fn default_name(stack: &str) -> String {
    match stack {
        "userspace" => "fetchscope's stack".to_string(),
        "kernel" => "the kernel".to_string(),
        other => other.to_string(),
    }
}

impl Analyzer {
    /// An analyzer for the run of `stack` that went through `path`, named by
    /// [`default_name`].
    pub fn new(stack: &'static str, path: impl Into<String>) -> Self {
        Analyzer::named(stack, default_name(stack), path)
    }

    /// An analyzer for the run of `stack` that sentences call `name` ("requests",
    /// "capture a.pcap"), which went through `path`.
    pub fn named(stack: &'static str, name: impl Into<String>, path: impl Into<String>) -> Self {
        Analyzer {
            report: StackReport {
                stack,
                name: name.into(),
                path: path.into(),
                teardown: Teardown {
                    time_wait: "nobody",
                    ..Teardown::default()
                },
                ..StackReport::default()
            },
            ..Analyzer::default()
        }
    }

    /// Takes one event into account.
    pub fn observe(&mut self, e: &Event) {
        match &e.kind {
            EventKind::Phase { phase } => self.report.phase_starts.push((*phase, e.t_us)),
            EventKind::Packet(p) => self.packet(e.t_us, p),
            EventKind::HttpRequest(h) if self.report.request.is_none() => {
                self.report.request = Some(RequestInfo {
                    method: h.method.clone(),
                    target: h.target.clone(),
                    headers: h.headers.clone(),
                });
            }
            EventKind::Done(s) => {
                let r = &mut self.report;
                r.ok = true;
                r.status = Some(s.status);
                r.body_sha256 = Some(s.body_sha256.clone());
                r.body_bytes = Some(s.body_bytes);
                r.local = Some(s.local.clone());
                r.remote = Some(s.remote.clone());
                r.timings = Some(s.timings);
                r.har = Some(s.har);
                r.teardown.final_state = Some(s.final_tcp_state.clone());
            }
            EventKind::Error(err) => {
                self.report.ok = false;
                self.report.error = Some(format!("{} phase: {}", err.phase, err.message));
            }
            _ => {}
        }
    }

    fn packet(&mut self, t_us: u64, p: &PacketEvent) {
        let r = &mut self.report;
        let (tx, payload) = (
            p.dir == Direction::Tx,
            p.layers
                .tcp
                .as_ref()
                .map(|t| t.payload_len)
                .or_else(|| {
                    p.layers
                        .udp
                        .as_ref()
                        .map(|u| usize::from(u.len).saturating_sub(8))
                })
                .unwrap_or(0) as u64,
        );
        let c = r.phases.entry(p.phase).or_default();
        if tx {
            r.packets_tx += 1;
            c.tx += 1;
            c.tx_payload += payload;
        } else {
            r.packets_rx += 1;
            c.rx += 1;
            c.rx_payload += payload;
        }
        let lines = r.ladder.entry(p.phase).or_default();
        if lines.0.len() < LADDER_LINES {
            lines.0.push(compact(p));
        } else {
            lines.1 += 1;
        }
        for rec in &p.layers.tls {
            hellos(r, tx, p.number, rec);
        }
        let Some(t) = &p.layers.tcp else { return };
        let port = if tx { t.src_port } else { t.dst_port };
        let i = match self.conns.iter().position(|c| c.port == port) {
            Some(i) => i,
            None if self.conns.len() < MAX_CONNS => {
                self.conns.push(Conn {
                    port,
                    report: StackReport {
                        teardown: Teardown {
                            time_wait: "nobody",
                            ..Teardown::default()
                        },
                        ..StackReport::default()
                    },
                    ..Conn::default()
                });
                self.conns.len() - 1
            }
            None => return,
        };
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        // The client's TCP packets: a stack numbers IP IDs per connection or globally,
        // so the DNS datagram says nothing about the pattern.
        if tx && let Some(ip) = &p.layers.ip {
            conn.ip(ip);
        }
        conn.tcp(t_us, p);
    }
}

/// Records the first ClientHello sent and the first ServerHello received (with the
/// ALPN a readable EncryptedExtensions names).
fn hellos(r: &mut StackReport, tx: bool, number: u64, rec: &TlsRecord) {
    let has = |m: &str| rec.messages.iter().any(|x| x == m);
    if tx {
        if r.client_hello.is_none() && has("ClientHello") {
            r.client_hello = Some(HelloInfo::from_record(number, rec));
        }
        return;
    }
    match &mut r.server_hello {
        None if has("ServerHello") => {
            r.server_hello = Some(ServerHelloInfo {
                number,
                version_selected: rec.version_selected.clone(),
                suite: rec.suite.clone(),
                group: rec.group.clone(),
                alpn: rec.alpn.first().cloned(),
                ja4s: rec.ja4s.clone(),
            });
        }
        Some(sh) if sh.alpn.is_none() && has("EncryptedExtensions") => {
            sh.alpn = rec.alpn.first().cloned();
        }
        _ => {}
    }
}

impl Conn {
    fn ip(&mut self, ip: &fetchscope_wire::IpLayer) {
        let h = &mut self.report.ip;
        if let Some(ttl) = ip.ttl.or(ip.hop_limit)
            && !h.ttls.contains(&ttl)
        {
            h.ttls.push(ttl);
        }
        if ip.df == Some(true) {
            h.df += 1;
        }
        if let Some(id) = ip.id {
            h.packets += 1;
            if id == 0 {
                h.zero_ids += 1;
            }
            if self
                .last_ip_id
                .is_some_and(|last| last.wrapping_add(1) == id)
            {
                h.incrementing += 1;
            }
            self.last_ip_id = Some(id);
            if h.first_ids.len() < 6 {
                h.first_ids.push(id);
            }
        }
    }

    fn tcp(&mut self, t_us: u64, p: &PacketEvent) {
        let Some(t) = &p.layers.tcp else { return };
        let tx = p.dir == Direction::Tx;
        let has = |f| t.flags.contains(f);
        let (syn, ack, fin, rst) = (
            has(TcpFlags::SYN),
            has(TcpFlags::ACK),
            has(TcpFlags::FIN),
            has(TcpFlags::RST),
        );
        let who = if tx { "client" } else { "server" };
        let r = &mut self.report;
        if tx {
            r.tcp.segments_out += 1;
        } else {
            r.tcp.segments_in += 1;
        }

        for a in &t.analysis {
            match a {
                TcpAnalysis::Retransmission => {
                    if tx {
                        r.retransmissions.client += 1;
                        r.tcp.retransmits += 1;
                    } else {
                        r.retransmissions.server += 1;
                    }
                    if r.retransmissions.packets.len() < 20 {
                        r.retransmissions.packets.push(p.number);
                    }
                }
                TcpAnalysis::OutOfOrder => r.retransmissions.out_of_order += 1,
                TcpAnalysis::DuplicateAck if tx => r.acks.duplicate_acks += 1,
                _ => {}
            }
        }

        // Handshake.
        if syn {
            let o = t.options.clone().unwrap_or_default();
            let info = SynInfo {
                number: p.number,
                t_us,
                len: p.len,
                win: t.win,
                mss: o.mss,
                ws: o.ws,
                sack_permitted: o.sack_permitted,
                ts_val: o.ts_val,
                ttl: p.layers.ip.as_ref().and_then(|i| i.ttl.or(i.hop_limit)),
            };
            if tx && !ack && r.syn.is_none() {
                r.syn = Some(info);
            } else if !tx && ack && r.syn_ack.is_none() {
                self.server_ts = info.ts_val.is_some();
                r.syn_ack = Some(info);
                self.derive_handshake();
            }
            return;
        }
        if tx && ack && !self.handshake_ack_seen && self.report.syn_ack.is_some() {
            self.handshake_ack_seen = true;
            self.report.tcp.rcv_window = t.win_scaled;
        }
        if !tx && self.report.tcp.snd_window.is_none() && self.report.syn_ack.is_some() {
            self.report.tcp.snd_window = t.win_scaled;
        }
        let r = &mut self.report;
        if tx {
            r.tcp.max_tx_payload = r.tcp.max_tx_payload.max(t.payload_len);
        } else {
            r.tcp.max_rx_payload = r.tcp.max_rx_payload.max(t.payload_len);
        }

        // Server data and the client's ACKs of it.
        let len = u32::try_from(t.payload_len).unwrap_or(u32::MAX);
        if !tx && len > 0 {
            let end = t.seq.wrapping_add(len);
            if self.max_rx_end.is_none_or(|m| end > m) {
                self.max_rx_end = Some(end);
                if self.unacked.len() < MAX_UNACKED {
                    self.unacked.push_back((end, t_us));
                }
                self.report.acks.data_segments += 1;
            }
        }
        if tx && ack {
            let mut n = 0u64;
            let mut newest = None;
            while let Some(&(end, at)) = self.unacked.front() {
                if end <= t.ack {
                    n += 1;
                    newest = Some(at);
                    self.unacked.pop_front();
                } else {
                    break;
                }
            }
            if n > 0 {
                let a = &mut self.report.acks;
                a.acks += 1;
                if t.payload_len == 0 && !fin {
                    a.pure_acks += 1;
                }
                *a.segments_per_ack.entry(n).or_default() += 1;
                let delay = newest.map(|at| t_us.saturating_sub(at)).unwrap_or(0);
                if delay >= DELAYED_ACK_US {
                    a.delayed += 1;
                }
                a.max_delay_us = Some(a.max_delay_us.unwrap_or(0).max(delay));
                if self.delays.len() < MAX_DELAYS {
                    self.delays.push(delay);
                }
                if self.flight_state == FlightState::InFlight {
                    self.flight.acks_sent += 1;
                }
            }
        }

        // The server's first flight: its data after the client's first data, until the
        // client sends data again.
        match self.flight_state {
            FlightState::BeforeClientData if tx && len > 0 => {
                self.flight_state = FlightState::AwaitingServer;
            }
            FlightState::AwaitingServer | FlightState::InFlight if !tx && len > 0 => {
                if self.flight_state == FlightState::AwaitingServer {
                    self.flight_first_t = t_us;
                }
                self.flight_state = FlightState::InFlight;
                self.flight_last_t = t_us;
                self.flight.bytes += u64::from(len);
                if self.flight.segments.len() < 64 {
                    self.flight.segments.push(FlightSegment {
                        number: p.number,
                        payload: t.payload_len,
                        records: record_names(p),
                    });
                }
            }
            FlightState::InFlight if tx && len > 0 => {
                self.flight_state = FlightState::Done;
            }
            _ => {}
        }

        // Teardown.
        if (rst || fin) && self.report.teardown.first_close.is_none() {
            self.report.teardown.first_close = Some(CloseStart {
                by: who,
                how: if rst { "RST" } else { "FIN" },
                number: p.number,
                t_us,
                after_data_us: self.last_data_t.map(|d| t_us.saturating_sub(d)),
            });
        }
        if len > 0 && !rst && !fin {
            self.last_data_t = Some(t_us);
        }
        if rst {
            self.report.teardown.resets.push((who, p.number));
        }
        if fin {
            let end = t.seq.wrapping_add(len).wrapping_add(1);
            let already = if tx {
                self.client_fin_end.replace(end).is_some()
            } else {
                self.server_fin_end.replace(end).is_some()
            };
            if !already {
                let info = FinInfo {
                    by: who,
                    number: p.number,
                    t_us,
                    flags: t.flags,
                    payload: t.payload_len,
                    records: record_names(p),
                };
                let td = &mut self.report.teardown;
                if td.first_fin.is_none() {
                    td.first_fin = Some(info);
                } else if td.second_fin.is_none() {
                    // Crossed if this FIN does not acknowledge the first one.
                    let first_end = if tx {
                        self.server_fin_end
                    } else {
                        self.client_fin_end
                    };
                    td.crossed = !(ack && first_end.is_some_and(|e| t.ack >= e));
                    td.second_fin = Some(info);
                }
            }
        }
    }

    fn derive_handshake(&mut self) {
        let r = &mut self.report;
        let (Some(syn), Some(sa)) = (&r.syn, &r.syn_ack) else {
            return;
        };
        r.tcp.handshake_rtt_ms = Some(sa.t_us.saturating_sub(syn.t_us) as f64 / 1000.0);
        let mut opts = Vec::new();
        let ts = syn.ts_val.is_some() && sa.ts_val.is_some();
        if ts {
            opts.push("timestamps");
        }
        if syn.sack_permitted && sa.sack_permitted {
            opts.push("sack");
        }
        if syn.ws.is_some() && sa.ws.is_some() {
            opts.push("wscale");
            r.tcp.rcv_wscale = syn.ws;
            r.tcp.snd_wscale = sa.ws;
        }
        r.tcp.options = opts;
        let peer_mss = u32::from(sa.mss.unwrap_or(536));
        r.tcp.snd_mss = Some(peer_mss.saturating_sub(if ts { 12 } else { 0 }));
    }

    /// The connection's part of the report, with what only the end can tell.
    fn finish(mut self) -> StackReport {
        let flight_done = matches!(self.flight_state, FlightState::InFlight | FlightState::Done);
        if flight_done {
            self.flight.span_us = self.flight_last_t.saturating_sub(self.flight_first_t);
            self.report.server_flight = Some(self.flight);
        }
        self.delays.sort_unstable();
        self.report.acks.median_delay_us = self.delays.get(self.delays.len() / 2).copied();
        let td = &mut self.report.teardown;
        td.time_wait = match (&td.first_fin, &td.second_fin) {
            (Some(_), Some(_)) if td.crossed => "both",
            (Some(f), Some(_)) => f.by,
            _ => "nobody",
        };
        self.report
    }
}

impl Analyzer {
    /// The report, with what only the end can tell. With several connections (after a
    /// redirect) the TCP details are those of the one that carried the most server
    /// data (the last of equals).
    pub fn finish(self) -> StackReport {
        let mut report = self.report;
        let n = self.conns.len();
        report.connections = n;
        let last_port = self.conns.last().map(|c| c.port);
        let best = self
            .conns
            .into_iter()
            .enumerate()
            .max_by(|(ia, a), (ib, b)| {
                a.report
                    .acks
                    .data_segments
                    .cmp(&b.report.acks.data_segments)
                    .then(ia.cmp(ib))
            });
        if let Some((i, c)) = best {
            let port = c.port;
            let part = c.finish();
            report.analyzed_connection =
                Some(format!("connection {} of {n} (client port {port})", i + 1));
            let final_state = report.teardown.final_state.take();
            report.syn = part.syn;
            report.syn_ack = part.syn_ack;
            report.acks = part.acks;
            report.server_flight = part.server_flight;
            report.teardown = part.teardown;
            report.retransmissions = part.retransmissions;
            report.ip = part.ip;
            report.tcp = part.tcp;
            // The stack's final state is its last connection's.
            if Some(port) == last_port {
                report.teardown.final_state = final_state;
            }
        }
        report
    }
}

/// Synthetic event streams for the compare tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use fetchscope_core::event::HttpRequestEvent;
    use fetchscope_wire::{Dissection, InlineText, TcpLayer, TcpOptions};

    /// A TCP segment from the client's `port` (tx) or to it (rx).
    pub fn seg(port: u16, tx: bool, flags: TcpFlags, seq: u32, ack: u32, len: usize) -> TcpLayer {
        let (src_port, dst_port) = if tx { (port, 443) } else { (443, port) };
        TcpLayer {
            src_port,
            dst_port,
            flags,
            seq,
            ack,
            seq_raw: seq,
            ack_raw: ack,
            win: 64240,
            win_scaled: Some(64240),
            payload_len: len,
            options: None,
            analysis: Vec::new(),
        }
    }

    /// A packet event carrying `tcp` and `tls`.
    pub fn packet(
        number: u64,
        t_us: u64,
        phase: Phase,
        tcp: TcpLayer,
        tls: Vec<TlsRecord>,
    ) -> Event {
        let dir = if tcp.dst_port == 443 {
            Direction::Tx
        } else {
            Direction::Rx
        };
        Event {
            t_us,
            kind: EventKind::Packet(PacketEvent {
                dir,
                len: 40 + tcp.payload_len,
                phase,
                summary: InlineText::new(),
                number,
                layers: Dissection {
                    tcp: Some(tcp),
                    tls,
                    ..Dissection::default()
                },
                raw: bytes::Bytes::new(),
                fault: None,
                recovery: Vec::new(),
            }),
        }
    }

    /// A ClientHello record.
    pub fn client_hello(suites: &[&str], extensions: &[&str], ja4: &str) -> TlsRecord {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        TlsRecord {
            record: "handshake",
            version: "TLSv1.0".into(),
            message: Some("ClientHello".into()),
            messages: v(&["ClientHello"]),
            sni: Some("www.example.test".into()),
            alpn: v(&["http/1.1"]),
            versions: v(&["TLSv1.3", "TLSv1.2"]),
            groups: v(&["x25519", "secp256r1", "secp384r1"]),
            key_shares: v(&["x25519"]),
            suites: Some(suites.len()),
            cipher_suites: v(suites),
            extensions: v(extensions),
            signature_algorithms: v(&["ecdsa_secp256r1_sha256", "rsa_pss_rsae_sha256"]),
            ja4: Some(ja4.into()),
            ..TlsRecord::default()
        }
    }

    /// A ServerHello record.
    pub fn server_hello(suite: &str, group: &str) -> TlsRecord {
        TlsRecord {
            record: "handshake",
            version: "TLSv1.2".into(),
            message: Some("ServerHello".into()),
            messages: vec!["ServerHello".into()],
            suite: Some(suite.into()),
            version_selected: Some("TLSv1.3".into()),
            group: Some(group.into()),
            ja4s: Some("t130200_1301_234ea6891581".into()),
            ..TlsRecord::default()
        }
    }

    /// How a scripted run ends.
    #[derive(Clone, Copy)]
    pub struct Close {
        /// The client closes first (else the server).
        pub by_client: bool,
        /// With a RST (else a FIN).
        pub rst: bool,
        /// µs after the last data.
        pub delay_us: u64,
    }

    /// One HTTPS fetch from client port `port`: handshake, `hello`, `server`, the request
    /// with `headers`, one response segment, then the close.
    pub fn fetch(
        port: u16,
        hello: TlsRecord,
        server: TlsRecord,
        headers: &[(&str, &str)],
        close: Close,
    ) -> Vec<Event> {
        let f = |names: &[TcpFlags]| names.iter().fold(TcpFlags::empty(), |a, b| a | *b);
        let (syn, ack, psh, fin, rst) = (
            TcpFlags::SYN,
            TcpFlags::ACK,
            TcpFlags::PSH,
            TcpFlags::FIN,
            TcpFlags::RST,
        );
        let mut syn_seg = seg(port, true, syn, 0, 0, 0);
        syn_seg.options = Some(TcpOptions {
            mss: Some(1460),
            ws: Some(7),
            sack_permitted: true,
            ..TcpOptions::default()
        });
        let mut v = vec![
            Event {
                t_us: 0,
                kind: EventKind::Phase {
                    phase: Phase::Connect,
                },
            },
            packet(1, 0, Phase::Connect, syn_seg, vec![]),
            packet(
                2,
                1000,
                Phase::Connect,
                seg(port, false, f(&[syn, ack]), 0, 1, 0),
                vec![],
            ),
            packet(
                3,
                1100,
                Phase::Connect,
                seg(port, true, ack, 1, 1, 0),
                vec![],
            ),
            packet(
                4,
                1200,
                Phase::Tls,
                seg(port, true, f(&[psh, ack]), 1, 1, 517),
                vec![hello],
            ),
            packet(
                5,
                2500,
                Phase::Tls,
                seg(port, false, f(&[psh, ack]), 1, 518, 1400),
                vec![server],
            ),
            packet(
                6,
                2600,
                Phase::Tls,
                seg(port, true, ack, 518, 1401, 0),
                vec![],
            ),
            Event {
                t_us: 3000,
                kind: EventKind::HttpRequest(HttpRequestEvent {
                    method: "GET".into(),
                    target: "/".into(),
                    url: url::Url::parse("https://www.example.test/").expect("url"),
                    headers: headers
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.to_string()))
                        .collect(),
                    body_bytes: None,
                }),
            },
            packet(
                7,
                3000,
                Phase::Request,
                seg(port, true, f(&[psh, ack]), 518, 1401, 100),
                vec![],
            ),
            packet(
                8,
                4000,
                Phase::Response,
                seg(port, false, f(&[psh, ack]), 1401, 618, 1000),
                vec![],
            ),
            packet(
                9,
                4100,
                Phase::Response,
                seg(port, true, ack, 618, 2401, 0),
                vec![],
            ),
        ];
        let t = 4000 + close.delay_us;
        let how = if close.rst {
            f(&[rst, ack])
        } else {
            f(&[fin, ack])
        };
        if close.by_client {
            v.push(packet(
                10,
                t,
                Phase::Teardown,
                seg(port, true, how, 618, 2401, 0),
                vec![],
            ));
            if !close.rst {
                v.push(packet(
                    11,
                    t + 500,
                    Phase::Teardown,
                    seg(port, false, f(&[fin, ack]), 2401, 619, 0),
                    vec![],
                ));
                v.push(packet(
                    12,
                    t + 600,
                    Phase::Teardown,
                    seg(port, true, ack, 619, 2402, 0),
                    vec![],
                ));
            }
        } else {
            v.push(packet(
                10,
                t,
                Phase::Teardown,
                seg(port, false, how, 2401, 618, 0),
                vec![],
            ));
            if !close.rst {
                v.push(packet(
                    11,
                    t + 500,
                    Phase::Teardown,
                    seg(port, true, f(&[fin, ack]), 618, 2402, 0),
                    vec![],
                ));
                v.push(packet(
                    12,
                    t + 600,
                    Phase::Teardown,
                    seg(port, false, ack, 2402, 619, 0),
                    vec![],
                ));
            }
        }
        v
    }

    /// The report of `events` through an analyzer named `name`.
    pub fn report(stack: &'static str, name: &str, events: &[Event]) -> StackReport {
        let mut a = Analyzer::named(stack, name, "a test path");
        for e in events {
            a.observe(e);
        }
        a.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::fixtures::*;

    const SUITES: [&str; 4] = [
        "GREASE",
        "TLS13_AES_128_GCM_SHA256",
        "TLS13_AES_256_GCM_SHA384",
        "TLS13_CHACHA20_POLY1305_SHA256",
    ];
    const EXTS: [&str; 4] = ["GREASE", "server_name", "supported_groups", "key_share"];
    const JA4: &str = "t13d0303h1_55b375c5d22e_1234567890ab";

    fn close() -> Close {
        Close {
            by_client: true,
            rst: false,
            delay_us: 300,
        }
    }

    #[test]
    fn names_default_by_stack_and_can_be_given() {
        assert_eq!(
            Analyzer::new("userspace", "p").finish().name,
            "fetchscope's stack"
        );
        assert_eq!(Analyzer::new("kernel", "p").finish().name, "the kernel");
        assert_eq!(Analyzer::new("client", "p").finish().name, "client");
        let r = Analyzer::named("client", "requests", "p").finish();
        assert_eq!(
            (r.stack, r.name.as_str(), r.path.as_str()),
            ("client", "requests", "p")
        );
    }

    #[test]
    fn hellos_and_request_are_recorded_from_the_events() {
        let mut hello = client_hello(&SUITES, &EXTS, JA4);
        hello.alpn = vec!["h2".into(), "http/1.1".into()];
        let mut events = fetch(
            40000,
            hello,
            server_hello("TLS13_AES_256_GCM_SHA384", "x25519"),
            &[
                ("Host", "www.example.test"),
                ("User-Agent", "curl/8.5.0"),
                ("Accept", "*/*"),
            ],
            close(),
        );
        // A second ClientHello (after a HelloRetryRequest, say) and a second request
        // do not replace the first ones.
        let mut again = events.clone();
        for e in &mut again {
            if let EventKind::Packet(p) = &mut e.kind {
                for r in &mut p.layers.tls {
                    r.ja4 = Some("t13d_second".into());
                    r.suite = Some("second".into());
                }
            }
            if let EventKind::HttpRequest(h) = &mut e.kind {
                h.target = "/second".into();
            }
        }
        events.extend(again);
        let r = report("client", "curl", &events);
        let h = r.client_hello.as_ref().expect("ClientHello recorded");
        assert_eq!(h.number, 4);
        assert_eq!(h.record_version, "TLSv1.0");
        assert_eq!(h.cipher_suites, SUITES);
        assert_eq!(h.extensions, EXTS);
        assert_eq!(h.versions, ["TLSv1.3", "TLSv1.2"]);
        assert_eq!(h.groups, ["x25519", "secp256r1", "secp384r1"]);
        assert_eq!(h.key_shares, ["x25519"]);
        assert_eq!(h.alpn, ["h2", "http/1.1"]);
        assert_eq!(h.sni.as_deref(), Some("www.example.test"));
        assert_eq!(h.signature_algorithms.len(), 2);
        assert_eq!(h.ja4.as_deref(), Some(JA4));
        assert!(h.sends_grease());
        let s = r.server_hello.as_ref().expect("ServerHello recorded");
        assert_eq!(s.number, 5);
        assert_eq!(s.suite.as_deref(), Some("TLS13_AES_256_GCM_SHA384"));
        assert_eq!(s.version_selected.as_deref(), Some("TLSv1.3"));
        assert_eq!(s.group.as_deref(), Some("x25519"));
        assert_eq!(s.ja4s.as_deref(), Some("t130200_1301_234ea6891581"));
        assert_eq!(s.alpn, None);
        let q = r.request.as_ref().expect("request recorded");
        assert_eq!((q.method.as_str(), q.target.as_str()), ("GET", "/"));
        assert_eq!(q.headers.len(), 3);
        assert_eq!(q.header("user-agent"), Some("curl/8.5.0"));
        assert_eq!(q.header("Accept-Encoding"), None);

        // In the --json compare object.
        let json = serde_json::to_value(&r).expect("serialises");
        assert_eq!(json["name"], "curl");
        assert_eq!(json["client_hello"]["ja4"], JA4);
        assert_eq!(
            json["client_hello"]["cipher_suites"][1],
            "TLS13_AES_128_GCM_SHA256"
        );
        assert_eq!(json["server_hello"]["suite"], "TLS13_AES_256_GCM_SHA384");
        assert_eq!(json["request"]["headers"][1][0], "User-Agent");
        assert_eq!(json["teardown"]["first_close"]["how"], "FIN");
    }

    #[test]
    fn the_server_alpn_comes_from_a_readable_encrypted_extensions() {
        let mut ee = TlsRecord {
            record: "application_data",
            messages: vec!["EncryptedExtensions".into()],
            alpn: vec!["h2".into()],
            ..TlsRecord::default()
        };
        let mut events = fetch(
            40000,
            client_hello(&SUITES, &EXTS, JA4),
            server_hello("TLS13_AES_128_GCM_SHA256", "x25519"),
            &[],
            close(),
        );
        events.push(packet(
            20,
            2550,
            Phase::Tls,
            seg(40000, false, TcpFlags::ACK, 1401, 518, 100),
            vec![ee.clone()],
        ));
        ee.alpn = vec!["http/1.1".into()];
        events.push(packet(
            21,
            2560,
            Phase::Tls,
            seg(40000, false, TcpFlags::ACK, 1501, 518, 100),
            vec![ee],
        ));
        let r = report("client", "curl", &events);
        assert_eq!(r.server_hello.and_then(|s| s.alpn).as_deref(), Some("h2"));
    }

    #[test]
    fn the_first_close_and_its_delay_after_the_last_data() {
        let run = |c: Close| {
            report(
                "client",
                "curl",
                &fetch(
                    40000,
                    client_hello(&SUITES, &EXTS, JA4),
                    server_hello("TLS13_AES_128_GCM_SHA256", "x25519"),
                    &[],
                    c,
                ),
            )
            .teardown
        };
        let t = run(close());
        let c = t.first_close.expect("closed");
        assert_eq!((c.by, c.how, c.number), ("client", "FIN", 10));
        // The last data is the response segment at 4000 µs; the ACK after it has none.
        assert_eq!(c.after_data_us, Some(300));
        assert_eq!(t.time_wait, "client");
        let t = run(Close {
            by_client: false,
            rst: true,
            delay_us: 5000,
        });
        let c = t.first_close.expect("closed");
        assert_eq!(
            (c.by, c.how, c.after_data_us),
            ("server", "RST", Some(5000))
        );
        assert_eq!(t.resets, [("server", 10)]);
    }

    #[test]
    fn ack_pattern_phrases() {
        let mut a = AckPattern {
            data_segments: 4,
            acks: 2,
            ..AckPattern::default()
        };
        a.segments_per_ack.insert(2, 2);
        assert_eq!(a.usual(), Some(2));
        assert_eq!(
            a.describe(),
            "2 ACKs for 4 segments, usually one per 2 segments"
        );
        let none = AckPattern::default();
        assert_eq!(none.describe(), "0 data segments, none acknowledged");
    }

    #[test]
    fn ip_id_patterns() {
        let mut h = IpHabits {
            packets: 3,
            zero_ids: 3,
            ..IpHabits::default()
        };
        assert_eq!(h.id_pattern(), "IP ID 0 on every packet");
        h.zero_ids = 0;
        h.incrementing = 2;
        assert_eq!(h.id_pattern(), "IP IDs increasing by one per packet");
        h.incrementing = 0;
        assert_eq!(h.id_pattern(), "IP IDs varying");
    }
}
