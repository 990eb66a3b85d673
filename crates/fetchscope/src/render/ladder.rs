//! `--ladder`: the fetch as a ladder (sequence) diagram, like the ones in networking books.
//!
//! The client is the left column; every peer it exchanged packets with (the DNS server,
//! the web server, a redirect's other host) gets a column of its own, so the DNS server
//! and the web server show apart when they differ. Each packet is one arrow with its time,
//! its number (the frame number in `--pcap`) and a label taken from its decoded layers:
//! `DNS query A www.example.test`, `SYN`, `SYN-ACK`, `ClientHello`, `GET /`, `200 OK`,
//! `FIN + close_notify`. Phase headings and the client's TCP states sit between the arrows.
//!
//! [`LadderRecorder`] consumes events and builds a [`Ladder`] (the model); the model is
//! drawn as ASCII text here ([`Ladder::to_text`]) and as SVG by the HTML report. A long
//! run of bulk-transfer packets (data segments and their ACKs, with nothing else in
//! between) is folded into one row that counts what it hides, so memory stays bounded and
//! the diagram stays readable for a 16 MiB body; every packet that carries a handshake,
//! an HTTP start line, a FIN, an RST, DNS or ICMP is always drawn.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::net::IpAddr;

use fetchscope_core::event::PacketEvent;
use fetchscope_core::{Event, EventKind, TcpState};
use fetchscope_wire::{Direction, TcpFlags};

/// The text diagram's width in columns.
pub const TEXT_WIDTH: usize = 80;
/// At most this many peer columns; later peers share the last one.
pub const MAX_PEER_COLUMNS: usize = 3;
/// A run of bulk packets longer than `FOLD_HEAD + FOLD_TAIL + FOLD_MIN_HIDDEN` is folded.
const FOLD_HEAD: usize = 4;
/// Bulk packets kept after a folded run.
const FOLD_TAIL: usize = 4;
/// The fewest packets a fold hides (shorter runs are drawn in full).
const FOLD_MIN_HIDDEN: usize = 4;
/// Width of the time and packet-number margin in the text diagram.
const MARGIN: usize = 16;

/// One peer column: an address the client exchanged packets with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The peer's address.
    pub addr: IpAddr,
    /// A name the fetch looked up for this address, if any (e.g. `www.example.test`).
    pub name: Option<String>,
    /// What the client used it for, by port: `DNS`, `HTTPS`, `HTTP`, `TCP 8443`, `ICMP`.
    pub roles: Vec<String>,
}

impl Peer {
    /// `DNS, HTTPS`.
    pub fn roles_text(&self) -> String {
        self.roles.join(", ")
    }
}

/// One packet drawn as an arrow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrow {
    /// Microseconds since the fetch started.
    pub t_us: u64,
    /// The packet's number in the fetch (its frame number in `--pcap`).
    pub number: u64,
    /// Sent by the client (`Tx`, arrow to the right) or received (`Rx`, to the left).
    pub dir: Direction,
    /// Index into [`Ladder::peers`].
    pub peer: usize,
    /// What the packet carries, from its decoded layers.
    pub label: String,
    /// TCP payload (or UDP payload) length in bytes.
    pub payload: usize,
}

/// Bulk-transfer packets folded into one row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fold {
    /// First hidden packet's number.
    pub first: u64,
    /// Last hidden packet's number.
    pub last: u64,
    /// Time of the first hidden packet (µs).
    pub from_us: u64,
    /// Time of the last hidden packet (µs).
    pub to_us: u64,
    /// Hidden packets sent by the client.
    pub tx: u64,
    /// Hidden packets received.
    pub rx: u64,
    /// Payload bytes in the hidden sent packets.
    pub tx_bytes: u64,
    /// Payload bytes in the hidden received packets.
    pub rx_bytes: u64,
}

impl Fold {
    /// How many packets the fold hides.
    pub fn count(&self) -> u64 {
        self.tx + self.rx
    }

    /// One sentence: what the fold hides.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.rx > 0 {
            parts.push(format!(
                "{} received ({})",
                self.rx,
                human_bytes(self.rx_bytes)
            ));
        }
        if self.tx > 0 {
            parts.push(format!("{} sent ({})", self.tx, human_bytes(self.tx_bytes)));
        }
        format!(
            "{} packets #{}-#{} not drawn, {:.3} ms: {}",
            self.count(),
            self.first,
            self.last,
            self.to_us.saturating_sub(self.from_us) as f64 / 1000.0,
            parts.join(", ")
        )
    }

    fn add(&mut self, a: &Arrow) {
        if self.count() == 0 {
            self.first = a.number;
            self.from_us = a.t_us;
        }
        self.last = a.number;
        self.to_us = a.t_us;
        match a.dir {
            Direction::Tx => {
                self.tx += 1;
                self.tx_bytes += a.payload as u64;
            }
            Direction::Rx => {
                self.rx += 1;
                self.rx_bytes += a.payload as u64;
            }
        }
    }
}

/// One row of the diagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    /// A phase began: its number (from 1) and title.
    Phase {
        /// Microseconds since the start.
        t_us: u64,
        /// 1 for the first phase.
        number: usize,
        /// "TCP handshake".
        title: String,
    },
    /// A packet.
    Packet(Arrow),
    /// Bulk packets not drawn one by one.
    Fold(Fold),
    /// The client's TCP socket entered a state.
    State {
        /// Microseconds since the start.
        t_us: u64,
        /// The new state, e.g. `ESTABLISHED`.
        state: TcpState,
    },
    /// Something to mark between arrows: a redirect, the outcome.
    Mark {
        /// Microseconds since the start.
        t_us: u64,
        /// The text.
        text: String,
    },
}

/// The ladder diagram's model: the columns and the rows, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ladder {
    /// The client's own addresses (IPv4, IPv6), in order of their first packet.
    pub clients: Vec<IpAddr>,
    /// The peers, in order of their first packet.
    pub peers: Vec<Peer>,
    /// The rows, in order.
    pub rows: Vec<Row>,
}

/// Builds a [`Ladder`] from the event stream, folding long bulk runs as it goes (memory
/// stays bounded whatever the transfer's size).
#[derive(Debug, Default)]
pub struct LadderRecorder {
    ladder: Ladder,
    phase_no: usize,
    /// Names looked up, with the addresses the answers gave.
    names: Vec<(String, Vec<IpAddr>)>,
    /// The current run of bulk packets: the first few kept, the rest folded, the last few
    /// waiting in `tail`.
    run_head: Vec<Arrow>,
    run_fold: Fold,
    run_tail: VecDeque<Arrow>,
}

impl LadderRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one event into the diagram.
    pub fn event(&mut self, e: &Event) {
        match &e.kind {
            EventKind::Phase { phase } => {
                self.flush_run();
                if *phase == fetchscope_core::Phase::Done {
                    return;
                }
                self.phase_no += 1;
                self.ladder.rows.push(Row::Phase {
                    t_us: e.t_us,
                    number: self.phase_no,
                    title: phase.title().to_string(),
                });
            }
            EventKind::Packet(p) => self.packet(e.t_us, p),
            EventKind::TcpState(s) => {
                self.flush_run();
                self.ladder.rows.push(Row::State {
                    t_us: e.t_us,
                    state: s.to,
                });
            }
            EventKind::Dns(d) if d.event == "answer" => {
                self.names.push((d.name.clone(), d.addresses.clone()));
                for peer in &mut self.ladder.peers {
                    if peer.name.is_none() && d.addresses.contains(&peer.addr) {
                        peer.name = Some(d.name.clone());
                    }
                }
            }
            EventKind::Redirect(r) => {
                self.flush_run();
                self.ladder.rows.push(Row::Mark {
                    t_us: e.t_us,
                    text: format!("redirect {} to {}", r.status, r.to),
                });
            }
            EventKind::Done(s) => {
                self.flush_run();
                self.ladder.rows.push(Row::Mark {
                    t_us: e.t_us,
                    text: format!(
                        "done: HTTP {}, {} body bytes, {:.3} ms",
                        s.status, s.body_bytes, s.timings.total_ms
                    ),
                });
            }
            EventKind::Error(err) => {
                self.flush_run();
                self.ladder.rows.push(Row::Mark {
                    t_us: e.t_us,
                    // The sentence itself is on stderr; the diagram names the failure.
                    text: format!("failed in {}: {}", err.phase, err.kind),
                });
            }
            _ => {}
        }
    }

    /// The diagram so far (complete once the stream ended).
    pub fn finish(mut self) -> Ladder {
        self.flush_run();
        self.ladder
    }

    fn packet(&mut self, t_us: u64, p: &PacketEvent) {
        let Some(ip) = &p.layers.ip else {
            // Not IP (or undecodable): still one arrow, on the first peer's column.
            self.flush_run();
            let peer = self.peer_index(None, p);
            self.ladder.rows.push(Row::Packet(Arrow {
                t_us,
                number: p.number,
                dir: p.dir,
                peer,
                label: packet_label(p),
                payload: 0,
            }));
            return;
        };
        let (local, remote) = match p.dir {
            Direction::Tx => (ip.src, ip.dst),
            Direction::Rx => (ip.dst, ip.src),
        };
        if !self.ladder.clients.contains(&local) {
            self.ladder.clients.push(local);
        }
        let peer = self.peer_index(Some(remote), p);
        let arrow = Arrow {
            t_us,
            number: p.number,
            dir: p.dir,
            peer,
            label: packet_label(p),
            payload: payload_len(p),
        };
        if is_bulk(p) {
            self.bulk(arrow);
        } else {
            self.flush_run();
            self.ladder.rows.push(Row::Packet(arrow));
        }
    }

    /// Adds a bulk packet to the current run (a different peer starts a new run).
    fn bulk(&mut self, a: Arrow) {
        let same_peer = self
            .run_head
            .first()
            .is_none_or(|first| first.peer == a.peer);
        if !same_peer {
            self.flush_run();
        }
        if self.run_head.len() < FOLD_HEAD {
            self.run_head.push(a);
            return;
        }
        self.run_tail.push_back(a);
        if self.run_tail.len() > FOLD_TAIL + FOLD_MIN_HIDDEN {
            // The oldest waiting packet will surely be hidden.
            if let Some(old) = self.run_tail.pop_front() {
                self.run_fold.add(&old);
            }
        }
    }

    /// Ends the current bulk run: draws it, folded if it is long.
    fn flush_run(&mut self) {
        let rows = &mut self.ladder.rows;
        rows.extend(self.run_head.drain(..).map(Row::Packet));
        if self.run_fold.count() > 0 {
            // Everything but the last FOLD_TAIL joins the fold.
            while self.run_tail.len() > FOLD_TAIL {
                if let Some(old) = self.run_tail.pop_front() {
                    self.run_fold.add(&old);
                }
            }
            rows.push(Row::Fold(std::mem::take(&mut self.run_fold)));
        }
        rows.extend(self.run_tail.drain(..).map(Row::Packet));
    }

    fn peer_index(&mut self, addr: Option<IpAddr>, p: &PacketEvent) -> usize {
        let role = role_of(p);
        let peers = &mut self.ladder.peers;
        let idx = match addr {
            Some(a) => match peers.iter().position(|x| x.addr == a) {
                Some(i) => i,
                None => {
                    let name = self
                        .names
                        .iter()
                        .find(|(_, addrs)| addrs.contains(&a))
                        .map(|(n, _)| n.clone());
                    peers.push(Peer {
                        addr: a,
                        name,
                        roles: Vec::new(),
                    });
                    peers.len() - 1
                }
            },
            None if peers.is_empty() => return 0,
            None => 0,
        };
        if let Some(role) = role
            && !peers[idx].roles.contains(&role)
        {
            peers[idx].roles.push(role);
        }
        idx
    }
}

/// What the client used a peer for, judged by the peer's port.
fn role_of(p: &PacketEvent) -> Option<String> {
    let remote_port = |src: u16, dst: u16| match p.dir {
        Direction::Tx => dst,
        Direction::Rx => src,
    };
    if let Some(u) = &p.layers.udp {
        return Some(match remote_port(u.src_port, u.dst_port) {
            53 => "DNS".to_string(),
            n => format!("UDP {n}"),
        });
    }
    if let Some(t) = &p.layers.tcp {
        return Some(match remote_port(t.src_port, t.dst_port) {
            443 => "HTTPS".to_string(),
            80 => "HTTP".to_string(),
            53 => "DNS".to_string(),
            n => format!("TCP {n}"),
        });
    }
    p.layers.icmp.as_ref().map(|_| "ICMP".to_string())
}

fn payload_len(p: &PacketEvent) -> usize {
    if let Some(t) = &p.layers.tcp {
        t.payload_len
    } else if let Some(u) = &p.layers.udp {
        usize::from(u.len).saturating_sub(8)
    } else {
        0
    }
}

/// True for packets that only move bytes: TCP without SYN/FIN/RST, whose TLS records (if
/// any) are plain application data with no HTTP start line, and nothing else decoded.
fn is_bulk(p: &PacketEvent) -> bool {
    let l = &p.layers;
    let Some(tcp) = &l.tcp else {
        return false;
    };
    if tcp
        .flags
        .intersects(TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST)
    {
        return false;
    }
    if l.dns.is_some() || l.icmp.is_some() || l.http.is_some() || !l.problems.is_empty() {
        return false;
    }
    if !tcp.analysis.is_empty() {
        return false;
    }
    l.tls.iter().all(|r| {
        r.record == "application_data"
            && r.inner.is_none_or(|i| i == "application_data")
            && r.http.is_none()
            && r.messages.is_empty()
    })
}

/// The short name of a handshake message, for labels.
fn short_message(m: &str) -> &str {
    match m {
        "EncryptedExtensions" => "EncryptedExt",
        "CertificateVerify" => "CertVerify",
        "NewSessionTicket" => "SessionTicket",
        "ServerHelloDone" => "HelloDone",
        "ClientKeyExchange" => "ClientKeyEx",
        "ServerKeyExchange" => "ServerKeyEx",
        other => other,
    }
}

/// `GET / HTTP/1.1` → `GET /`; `HTTP/1.1 200 OK` → `200 OK`.
fn http_label(line: &str) -> String {
    if let Some(rest) = line.strip_prefix("HTTP/") {
        rest.split_once(' ')
            .map(|(_, s)| s.to_string())
            .unwrap_or_else(|| line.to_string())
    } else {
        match line.rsplit_once(" HTTP/") {
            Some((req, _)) => req.to_string(),
            None => line.to_string(),
        }
    }
}

/// The arrow label for a packet, from its decoded layers: DNS question or answer, TCP
/// flags (`SYN`, `SYN-ACK`, `ACK`, `FIN`, `RST`), TLS handshake messages and alerts, HTTP
/// start lines, or the payload size. Repeated messages are counted (`SessionTicket x2`).
pub fn packet_label(p: &PacketEvent) -> String {
    let l = &p.layers;
    if let Some(d) = &l.dns {
        let qtype = d.qtype.as_deref().unwrap_or("?");
        let name = d.question.as_deref().unwrap_or("?");
        if !d.response {
            return format!("DNS query {qtype} {name}");
        }
        if d.rcode != "NOERROR" {
            return format!("DNS answer {} {name}", d.rcode);
        }
        let data: Vec<&str> = d
            .answers
            .iter()
            .filter(|a| a.kind == "A" || a.kind == "AAAA")
            .map(|a| a.data.as_str())
            .collect();
        return match data.as_slice() {
            [] => format!("DNS answer {qtype} {name}: no address"),
            [one] => format!("DNS answer {qtype} {one}"),
            [first, rest @ ..] => format!("DNS answer {qtype} {first} +{}", rest.len()),
        };
    }
    if let Some(i) = &l.icmp {
        return format!("ICMP {}", i.name);
    }
    let mut parts = Parts::default();
    for r in &l.tls {
        if let Some(h) = &r.http {
            parts.push(http_label(h));
        } else if !r.messages.is_empty() {
            for m in &r.messages {
                parts.push(short_message(m).to_string());
            }
        } else if let Some(a) = &r.alert {
            parts.push(a.clone());
        } else if r.record == "change_cipher_spec" {
            parts.push("CCS".to_string());
        } else if r.record == "handshake" || r.inner == Some("handshake") {
            parts.push("handshake".to_string());
        }
    }
    if let Some(h) = &l.http {
        parts.push(http_label(&h.line));
    }
    let Some(tcp) = &l.tcp else {
        if let Some(u) = &l.udp {
            return format!("UDP {} B", usize::from(u.len).saturating_sub(8));
        }
        return if parts.is_empty() {
            "packet".to_string()
        } else {
            parts.to_string()
        };
    };
    let has = |f| tcp.flags.contains(f);
    let flags = if has(TcpFlags::RST) {
        Some("RST")
    } else if has(TcpFlags::SYN | TcpFlags::ACK) {
        Some("SYN-ACK")
    } else if has(TcpFlags::SYN) {
        Some("SYN")
    } else if has(TcpFlags::FIN) {
        Some("FIN")
    } else {
        None
    };
    let mut label = match (flags, parts.is_empty()) {
        (Some(f), true) => f.to_string(),
        (Some(f), false) => format!("{f} + {parts}"),
        (None, false) => parts.to_string(),
        (None, true) if tcp.payload_len > 0 => format!("data {} B", tcp.payload_len),
        (None, true) => "ACK".to_string(),
    };
    for a in &tcp.analysis {
        let _ = write!(label, " [{a}]");
    }
    label
}

/// One item of a packet's label and how many times in a row it occurred.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counted {
    /// `SessionTicket`, `GET /`, `CCS`.
    name: String,
    /// 1 or more.
    count: usize,
}

impl fmt::Display for Counted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.count {
            1 => f.write_str(&self.name),
            n => write!(f, "{} x{n}", self.name),
        }
    }
}

/// The items of a packet's label in order, a repeat of the previous item counted on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Parts(Vec<Counted>);

impl Parts {
    /// Adds an item: one more of the last if it is the same, else a new one.
    fn push(&mut self, name: String) {
        match self.0.last_mut() {
            Some(last) if last.name == name => last.count += 1,
            _ => self.0.push(Counted { name, count: 1 }),
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `ServerHello, CCS, SessionTicket x2`.
impl fmt::Display for Parts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{part}")?;
        }
        Ok(())
    }
}

/// `1.5 KiB`, `11.7 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Printable ASCII only (the diagram is plain ASCII): anything else becomes `?`.
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Cuts `s` into pieces of at most `width` characters, at spaces where possible.
fn wrap(s: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    let mut line = String::new();
    for word in s.split(' ') {
        let mut word = word.to_string();
        loop {
            let sep = usize::from(!line.is_empty());
            if line.len() + sep + word.len() <= width {
                if sep == 1 {
                    line.push(' ');
                }
                line.push_str(&word);
                break;
            }
            if !line.is_empty() {
                out.push(std::mem::take(&mut line));
                continue;
            }
            // A word longer than the width: cut it.
            let rest = word.split_off(width);
            out.push(word);
            word = rest;
        }
    }
    if !line.is_empty() || out.is_empty() {
        out.push(line);
    }
    out
}

/// A line of the text diagram being drawn: a grid of ASCII bytes.
struct Canvas {
    cells: Vec<u8>,
}

impl Canvas {
    fn new(width: usize) -> Self {
        Canvas {
            cells: vec![b' '; width],
        }
    }

    fn put(&mut self, col: usize, s: &str) {
        for (i, b) in s.bytes().enumerate() {
            if let Some(c) = self.cells.get_mut(col + i) {
                *c = b;
            }
        }
    }

    fn finish(self) -> String {
        String::from_utf8_lossy(&self.cells).trim_end().to_string()
    }
}

impl Ladder {
    /// The number of columns after the client's: one per peer, at most
    /// [`MAX_PEER_COLUMNS`].
    pub fn columns(&self) -> usize {
        self.peers.len().clamp(1, MAX_PEER_COLUMNS)
    }

    /// The column (0-based, client excluded) a peer is drawn in.
    pub fn column_of(&self, peer: usize) -> usize {
        peer.min(self.columns() - 1)
    }

    /// Whether a peer shares its column with others (more peers than columns).
    pub fn shared_column(&self, peer: usize) -> bool {
        self.peers.len() > MAX_PEER_COLUMNS && self.column_of(peer) == MAX_PEER_COLUMNS - 1
    }

    /// How many packets the diagram stands for (drawn and folded).
    pub fn packet_count(&self) -> u64 {
        self.rows
            .iter()
            .map(|r| match r {
                Row::Packet(_) => 1,
                Row::Fold(f) => f.count(),
                _ => 0,
            })
            .sum()
    }

    /// The diagram as ASCII text, at most [`TEXT_WIDTH`] columns wide.
    pub fn to_text(&self) -> String {
        let width = TEXT_WIDTH;
        let client_col = MARGIN;
        let span = width - 1 - client_col;
        let cols = self.columns();
        let x: Vec<usize> = (1..=cols).map(|i| client_col + i * span / cols).collect();
        let lifelines = |c: &mut Canvas, glyph: &str| {
            c.put(client_col, glyph);
            for &xi in &x {
                c.put(xi, glyph);
            }
        };
        let mut out = String::new();
        let mut line = |c: Canvas| {
            out.push_str(&c.finish());
            out.push('\n');
        };

        // Column headings: client at the left, each peer right-aligned on its lifeline.
        let addr = |i: usize| {
            self.clients
                .get(i)
                .map(|a| a.to_string())
                .unwrap_or_default()
        };
        let (client_addr, client_addr2) = (addr(0), addr(1));
        let mut heads: Vec<[String; 3]> = Vec::new();
        for col in 0..cols {
            let shared = self.peers.len() > MAX_PEER_COLUMNS && col == cols - 1;
            let head = match self.peers.get(col) {
                None => ["server".into(), String::new(), String::new()],
                Some(_) if shared => [
                    "other servers".into(),
                    format!("{} peers", self.peers.len() - col),
                    String::new(),
                ],
                Some(p) => [
                    p.name.clone().unwrap_or_else(|| "server".into()),
                    p.addr.to_string(),
                    p.roles_text(),
                ],
            };
            heads.push(head);
        }
        let left_names = ["client", client_addr.as_str(), client_addr2.as_str()];
        for row in 0..3 {
            let mut c = Canvas::new(width);
            if row == 0 {
                c.put(0, "  time (ms)   #");
            }
            c.put(client_col, &ascii(left_names[row]));
            let mut prev_end = client_col + left_names[row].len();
            for (col, head) in heads.iter().enumerate() {
                let room = x[col].saturating_sub(prev_end);
                let mut text = ascii(&head[row]);
                if text.len() > room {
                    text = text
                        .chars()
                        .take(room.saturating_sub(1))
                        .collect::<String>()
                        + "~";
                }
                let start = x[col] + 1 - text.len();
                c.put(start, &text);
                prev_end = x[col] + 1;
            }
            if !heads.iter().all(|h| h[row].is_empty()) || !left_names[row].is_empty() {
                line(c);
            }
        }
        let mut c = Canvas::new(width);
        lifelines(&mut c, "|");
        line(c);

        for r in &self.rows {
            match r {
                Row::Phase { number, title, .. } => {
                    let mut c = Canvas::new(width);
                    let text = format!("~~~ {number}. {title} ");
                    let fill = "~".repeat(width.saturating_sub(text.len()));
                    c.put(0, &format!("{text}{fill}"));
                    line(c);
                }
                Row::Mark { t_us, text } => {
                    let pieces = wrap(&ascii(text), width - 14);
                    for (i, p) in pieces.iter().enumerate() {
                        let mut c = Canvas::new(width);
                        if i == 0 {
                            c.put(0, &format!("{:>9.3}", *t_us as f64 / 1000.0));
                            c.put(11, "==");
                        }
                        c.put(14, p);
                        line(c);
                    }
                }
                Row::State { t_us, state } => {
                    let mut c = Canvas::new(width);
                    c.put(0, &format!("{:>9.3}", *t_us as f64 / 1000.0));
                    lifelines(&mut c, "|");
                    c.put(client_col + 2, &format!("[{}]", ascii(state.name())));
                    line(c);
                }
                Row::Fold(f) => {
                    let room = x[cols - 1] - client_col - 3;
                    for (i, p) in wrap(&f.describe(), room).iter().enumerate() {
                        let mut c = Canvas::new(width);
                        lifelines(&mut c, ":");
                        if i == 0 {
                            c.put(0, &format!("{:>9.3}", f.from_us as f64 / 1000.0));
                        }
                        c.put(client_col + 2, p);
                        line(c);
                    }
                }
                Row::Packet(a) => {
                    let col = self.column_of(a.peer);
                    let right = x[col];
                    let inner = right - client_col - 1;
                    let mut label = ascii(&a.label);
                    if self.shared_column(a.peer)
                        && let Some(p) = self.peers.get(a.peer)
                    {
                        label = format!("[{}] {label}", p.addr);
                    }
                    // "-- label ->" or "<- label --": 4 characters of arrow around
                    // the label, at least one dash after it.
                    let room = inner.saturating_sub(6).max(1);
                    let pieces = wrap(&label, room);
                    let first = &pieces[0];
                    let body = match a.dir {
                        Direction::Tx => {
                            let mut s = format!("-- {first} ");
                            while s.len() < inner - 1 {
                                s.push('-');
                            }
                            s.push('>');
                            s
                        }
                        Direction::Rx => {
                            let mut s = format!("<-- {first} ");
                            while s.len() < inner {
                                s.push('-');
                            }
                            s
                        }
                    };
                    let mut c = Canvas::new(width);
                    c.put(
                        0,
                        &format!("{:>9.3} {:>5}", a.t_us as f64 / 1000.0, a.number),
                    );
                    lifelines(&mut c, "|");
                    c.put(client_col + 1, &body);
                    line(c);
                    for p in &pieces[1..] {
                        let mut c = Canvas::new(width);
                        lifelines(&mut c, "|");
                        c.put(client_col + 4, p);
                        line(c);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_words_and_cuts_long_ones() {
        assert_eq!(wrap("a bb ccc", 4), vec!["a bb", "ccc"]);
        assert_eq!(wrap("abcdefgh", 3), vec!["abc", "def", "gh"]);
        assert_eq!(wrap("", 5), vec![""]);
    }

    #[test]
    fn http_labels_drop_the_version() {
        assert_eq!(http_label("GET /x?y=1 HTTP/1.1"), "GET /x?y=1");
        assert_eq!(http_label("HTTP/1.1 404 Not Found"), "404 Not Found");
    }

    #[test]
    fn counts_fold_into_labels() {
        let mut parts = Parts::default();
        for name in [
            "ServerHello",
            "SessionTicket",
            "SessionTicket",
            "SessionTicket",
            "CCS",
        ] {
            parts.push(name.to_string());
        }
        assert_eq!(parts.0[1].count, 3);
        assert_eq!(parts.to_string(), "ServerHello, SessionTicket x3, CCS");
        // A name that itself ends in " x2" is not mistaken for a count.
        let mut parts = Parts::default();
        parts.push("GET /a x2".to_string());
        parts.push("GET /a".to_string());
        assert_eq!(parts.to_string(), "GET /a x2, GET /a");
    }

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(16 * 1024 * 1024), "16.0 MiB");
    }

    #[test]
    fn a_long_bulk_run_is_folded_and_counted() {
        let mut r = LadderRecorder::new();
        for n in 0..100u64 {
            r.bulk(Arrow {
                t_us: n,
                number: n + 1,
                dir: if n % 2 == 0 {
                    Direction::Rx
                } else {
                    Direction::Tx
                },
                peer: 0,
                label: "data".into(),
                payload: 10,
            });
        }
        let l = r.finish();
        assert_eq!(l.packet_count(), 100);
        let drawn = l
            .rows
            .iter()
            .filter(|x| matches!(x, Row::Packet(_)))
            .count();
        assert_eq!(drawn, FOLD_HEAD + FOLD_TAIL);
        let Some(Row::Fold(f)) = l.rows.get(FOLD_HEAD) else {
            panic!("no fold after the head: {:?}", l.rows);
        };
        assert_eq!((f.first, f.last), (5, 96));
        assert_eq!(f.rx_bytes + f.tx_bytes, 920);
    }

    #[test]
    fn a_short_bulk_run_is_drawn_in_full() {
        let mut r = LadderRecorder::new();
        for n in 0..(FOLD_HEAD + FOLD_TAIL + FOLD_MIN_HIDDEN) as u64 {
            r.bulk(Arrow {
                t_us: n,
                number: n + 1,
                dir: Direction::Rx,
                peer: 0,
                label: "data".into(),
                payload: 1,
            });
        }
        let l = r.finish();
        assert!(l.rows.iter().all(|x| matches!(x, Row::Packet(_))));
        assert_eq!(l.rows.len(), FOLD_HEAD + FOLD_TAIL + FOLD_MIN_HIDDEN);
    }
}
