//! The text renderer: numbered phase headings, one line per packet and state change, then
//! the timing table, the response head and the body's digest.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use fetchscope_core::event::{DnsEvent, PacketEvent, TlsEvent};
use fetchscope_core::recovery::timer_text;
use fetchscope_core::{Event, EventKind, FetchError, Phase, Summary};
use fetchscope_wire::Direction;

/// Styles for the parts of a line; all plain when colour is off.
#[derive(Debug, Clone, Copy)]
struct Palette {
    heading: Style,
    tx: Style,
    rx: Style,
    state: Style,
    tls: Style,
    dns: Style,
    http: Style,
    dim: Style,
    error: Style,
}

impl Palette {
    fn new(color: bool) -> Self {
        if !color {
            let p = Style::new();
            return Palette {
                heading: p,
                tx: p,
                rx: p,
                state: p,
                tls: p,
                dns: p,
                http: p,
                dim: p,
                error: p,
            };
        }
        let fg = |c: AnsiColor| Style::new().fg_color(Some(c.into()));
        Palette {
            heading: Style::new().bold(),
            tx: fg(AnsiColor::Cyan),
            rx: fg(AnsiColor::Green),
            state: fg(AnsiColor::Yellow),
            tls: fg(AnsiColor::Magenta),
            dns: fg(AnsiColor::Blue),
            http: fg(AnsiColor::BrightWhite).bold(),
            dim: Style::new().dimmed(),
            error: fg(AnsiColor::Red).bold(),
        }
    }
}

/// The fates fault injection counts, in the order of [`FaultTally`].
const FAULT_FATES: [&str; 5] = ["dropped", "corrupted", "duplicated", "reordered", "delayed"];

/// Packets per fate of [`FAULT_FATES`], and TCP retransmissions: each [sent, received].
#[derive(Debug, Default)]
struct FaultTally {
    fates: [[u64; 2]; 5],
    retransmissions: [u64; 2],
    /// The retransmission timeouts named, each with the timer that expired (ms) when the
    /// sender's rules are known: [sent, received].
    timeouts: [Vec<Option<u32>>; 2],
    /// Fast retransmissions, out-of-order segments kept and dropped, holes filled.
    fast: u64,
    kept: u64,
    dropped: u64,
    filled: u64,
}

/// Writes a fetch as text for people.
pub struct TextRenderer<W: Write> {
    out: W,
    palette: Palette,
    phase_no: usize,
    response_head: Option<(String, Vec<(String, String)>)>,
    /// What fault injection did, counted for the summary (boxed: the renderer enum keeps
    /// its variants of similar size).
    faults: Box<FaultTally>,
    /// The first redirect from https to http (hop, target), for the summary (boxed: the
    /// renderer enum keeps its variants of similar size).
    downgrade: Option<Box<(usize, String)>>,
    /// Whether and how the summary shows the body's start (boxed: the renderer enum
    /// keeps its variants of similar size).
    body_view: Box<BodyView>,
}

/// How the summary shows the start of the body.
#[derive(Debug, Default)]
struct BodyView {
    /// Hide it (`--no-body`).
    hidden: bool,
    /// Secrets the request sent, redacted where the body shows them (an echo).
    secrets: Vec<String>,
}

/// `value` in `style`, written without an intermediate string (for every line).
struct Painted<T>(Style, T);

impl<T: std::fmt::Display> std::fmt::Display for Painted<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Painted(style, value) = self;
        if *style == Style::new() {
            write!(f, "{value}")
        } else {
            write!(f, "{style}{value}{style:#}")
        }
    }
}

/// A time in µs as the trace shows it, `{:>10.3} ms` of the milliseconds, from integers.
struct Millis(u64);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (whole, frac) = (self.0 / 1000, self.0 % 1000);
        let digits = whole.checked_ilog10().map_or(1, |d| d as usize + 1);
        for _ in (digits + 4)..10 {
            f.write_str(" ")?;
        }
        write!(f, "{whole}.{frac:03} ms")
    }
}

fn paint(style: Style, text: &str) -> String {
    if style == Style::new() {
        text.to_string()
    } else {
        format!("{style}{text}{style:#}")
    }
}

impl<W: Write> TextRenderer<W> {
    /// A renderer writing to `out`, coloured if `color`.
    pub fn new(out: W, color: bool) -> Self {
        TextRenderer {
            out,
            palette: Palette::new(color),
            phase_no: 0,
            response_head: None,
            faults: Box::default(),
            downgrade: None,
            body_view: Box::default(),
        }
    }

    /// Secrets to redact wherever the body's start shows them.
    pub fn redact(mut self, secrets: Vec<String>) -> Self {
        self.body_view.secrets = secrets;
        self
    }

    /// Whether the summary shows the start of the body (default yes).
    pub fn show_body(mut self, show: bool) -> Self {
        self.body_view.hidden = !show;
        self
    }

    /// The opening line: what is fetched (`method` `url`), where.
    pub fn header(&mut self, method: &str, url: &str, environment: &str) -> io::Result<()> {
        let p = self.palette;
        writeln!(
            self.out,
            "{} {method} {url}  ({environment})",
            paint(
                p.heading,
                &format!("fetchscope {}", env!("CARGO_PKG_VERSION"))
            )
        )
    }

    fn line(&mut self, t_us: u64, tag: &str, style: Style, text: &str) -> io::Result<()> {
        self.line_of(t_us, format_args!("{tag:<5}"), style, text)
    }

    /// [`Self::line`] for a tag and text that display themselves (no string made first);
    /// the tag comes padded to 5 characters.
    fn line_of(
        &mut self,
        t_us: u64,
        tag: impl std::fmt::Display,
        style: Style,
        text: impl std::fmt::Display,
    ) -> io::Result<()> {
        writeln!(
            self.out,
            "  {}  {}  {}",
            Painted(self.palette.dim, Millis(t_us)),
            Painted(style, tag),
            Painted(style, text)
        )
    }

    /// Renders one event.
    pub fn event(&mut self, e: &Event) -> io::Result<()> {
        let p = self.palette;
        match &e.kind {
            EventKind::Phase { phase } => {
                if *phase == Phase::Done {
                    return Ok(());
                }
                self.phase_no += 1;
                writeln!(self.out)?;
                writeln!(
                    self.out,
                    "{}",
                    paint(p.heading, &format!("{}. {}", self.phase_no, phase.title()))
                )
            }
            EventKind::Packet(pk) => self.packet(e.t_us, pk),
            EventKind::TcpState(s) => {
                let cause = s
                    .cause
                    .as_ref()
                    .map(|c| format!("  ({c})"))
                    .unwrap_or_default();
                self.line(
                    e.t_us,
                    "tcp",
                    p.state,
                    &format!("{} → {}{cause}", s.from, s.to),
                )
            }
            EventKind::Dns(d) => self.dns(e.t_us, d),
            EventKind::Tls(t) => self.tls(e.t_us, t),
            EventKind::HttpRequest(r) => {
                self.line(
                    e.t_us,
                    "http",
                    p.http,
                    &format!("{} {} HTTP/1.1", r.method, r.target),
                )?;
                for (k, v) in &r.headers {
                    writeln!(self.out, "{:>24}{}", "", paint(p.dim, &format!("{k}: {v}")))?;
                }
                Ok(())
            }
            EventKind::Proxy(x) => {
                let text = match x.stage.as_str() {
                    "connect_sent" => format!("{}  → proxy {} ({})", x.line, x.proxy, x.source),
                    "established" => {
                        format!(
                            "{}: the tunnel to {} is open; TLS runs inside it",
                            x.line, x.target
                        )
                    }
                    _ => format!("{}: the proxy refused the tunnel to {}", x.line, x.target),
                };
                self.line(e.t_us, "proxy", p.http, &text)?;
                for (k, v) in &x.headers {
                    writeln!(self.out, "{:>24}{}", "", paint(p.dim, &format!("{k}: {v}")))?;
                }
                Ok(())
            }
            EventKind::Http(h) => {
                self.response_head = Some((
                    format!("{} {} {}", h.version, h.status, h.reason),
                    h.headers.clone(),
                ));
                self.line(
                    e.t_us,
                    "http",
                    p.http,
                    &format!(
                        "{} {} {} ({} header fields)",
                        h.version,
                        h.status,
                        h.reason,
                        h.headers.len()
                    ),
                )
            }
            EventKind::Redirect(r) => {
                if r.downgrade && self.downgrade.is_none() {
                    self.downgrade = Some(Box::new((r.hop, r.to.clone())));
                }
                writeln!(self.out)?;
                writeln!(
                    self.out,
                    "{}",
                    paint(
                        p.heading,
                        &format!(
                            "── redirect {} ({}): {} → {} {}{}",
                            r.hop,
                            r.status,
                            r.from,
                            r.to,
                            if r.reuse {
                                "on the same connection"
                            } else {
                                "on a new connection"
                            },
                            if r.downgrade {
                                "  ⚠ DOWNGRADE from https to http: not encrypted from here on"
                            } else {
                                ""
                            }
                        )
                    )
                )
            }
            EventKind::Note { text } => self.line(e.t_us, "note", p.dim, text),
            EventKind::Done(s) => self.summary(s),
            EventKind::Error(err) => self.line(
                e.t_us,
                "error",
                p.error,
                &format!("{} phase: {}", err.phase, err.message),
            ),
        }
    }

    fn packet(&mut self, t_us: u64, pk: &PacketEvent) -> io::Result<()> {
        let (arrow, style) = match pk.dir {
            Direction::Tx => ("→", self.palette.tx),
            Direction::Rx => ("←", self.palette.rx),
        };
        let proto = if pk.layers.tcp.is_some() {
            "TCP"
        } else if pk.layers.udp.is_some() {
            "UDP"
        } else if pk.layers.icmp.is_some() {
            "ICMP"
        } else {
            "IP"
        };
        let dropped = pk.fault.as_ref().is_some_and(|f| f.dropped);
        if pk
            .layers
            .tcp
            .as_ref()
            .is_some_and(|t| t.analysis.iter().any(|a| a.is_retransmission()))
        {
            self.faults.retransmissions[usize::from(pk.dir == Direction::Rx)] += 1;
        }
        for r in &pk.recovery {
            match r.kind {
                "rto-retransmission" => {
                    self.faults.timeouts[usize::from(pk.dir == Direction::Rx)].push(r.rto_ms)
                }
                "fast-retransmission" => self.faults.fast += 1,
                "out-of-order-queued" => self.faults.kept += 1,
                "out-of-order-dropped" => self.faults.dropped += 1,
                "hole-filled" => self.faults.filled += 1,
                _ => {}
            }
        }
        if let Some(f) = &pk.fault {
            let hits = [
                f.dropped,
                f.corrupted.is_some(),
                f.duplicated,
                f.reordered,
                f.delay_us > 0,
            ];
            let side = usize::from(pk.dir == Direction::Rx);
            for (count, hit) in self.faults.fates.iter_mut().zip(hits) {
                if hit {
                    count[side] += 1;
                }
            }
        }
        // `→ #N` padded to 5 characters, as `{:<5}` would: only #1–#9 need a space.
        let pad = if pk.number < 10 { " " } else { "" };
        self.line_of(
            t_us,
            format_args!("{arrow} #{}{pad}", pk.number),
            style,
            format_args!(
                "{}{proto} {} B  {}",
                if dropped { "✗ " } else { "" },
                pk.len,
                pk.summary
            ),
        )?;
        self.packet_fate(pk)
    }

    /// What fault injection did to a packet (a fact), then the recovery it shows
    /// (derived), each on its own line under the packet.
    fn packet_fate(&mut self, pk: &PacketEvent) -> io::Result<()> {
        if let Some(f) = pk.fault.as_ref().filter(|f| !f.is_empty()) {
            let text = format!("✗ {}", f.describe(pk.dir));
            writeln!(self.out, "{:>24}{}", "", paint(self.palette.error, &text))?;
        }
        for r in &pk.recovery {
            let text = format!("↳ {}", r.text);
            writeln!(self.out, "{:>24}{}", "", paint(self.palette.state, &text))?;
        }
        Ok(())
    }

    fn dns(&mut self, t_us: u64, d: &DnsEvent) -> io::Result<()> {
        let server = d.server.map(|s| format!(" @{s}")).unwrap_or_default();
        let id = d.id.map(|i| format!(" id 0x{i:04x}")).unwrap_or_default();
        let text = match d.event.as_str() {
            "answer" => {
                let addrs: Vec<String> = d.addresses.iter().map(|a| a.to_string()).collect();
                let chain = if d.cnames.is_empty() {
                    String::new()
                } else {
                    format!(" via {}", d.cnames.join(" → "))
                };
                format!(
                    "answer{id}: {} {} → {}{chain} ({}{})",
                    d.name,
                    d.qtype,
                    if addrs.is_empty() {
                        "no address".to_string()
                    } else {
                        addrs.join(", ")
                    },
                    d.rcode.clone().unwrap_or_default(),
                    d.reason
                        .as_ref()
                        .map(|r| format!(", {r}"))
                        .unwrap_or_default()
                )
            }
            other => format!(
                "{other}{id}: {} {}{server}{}",
                d.qtype,
                d.name,
                d.reason
                    .as_ref()
                    .map(|r| format!(" — {r}"))
                    .unwrap_or_default()
            ),
        };
        self.line(t_us, "dns", self.palette.dns, &text)
    }

    fn tls(&mut self, t_us: u64, t: &TlsEvent) -> io::Result<()> {
        self.line(t_us, "tls", self.palette.tls, &t.detail)?;
        for c in &t.certificates {
            let names = if c.names.is_empty() {
                String::new()
            } else {
                format!("; names {}", c.names.join(", "))
            };
            writeln!(
                self.out,
                "{:>24}{}",
                "",
                paint(
                    self.palette.dim,
                    &format!(
                        "{} (issuer {}; valid {} … {}{names})",
                        c.subject, c.issuer, c.not_before, c.not_after
                    )
                )
            )?;
        }
        Ok(())
    }

    fn summary(&mut self, s: &Summary) -> io::Result<()> {
        let p = self.palette;
        let c = &s.timings;
        let h = &s.har;
        writeln!(self.out)?;
        writeln!(self.out, "{}", paint(p.heading, "Timings (ms)"))?;
        writeln!(
            self.out,
            "  cumulative, like curl -w:  dns {:.3}  connect {:.3}  tls {:.3}  first byte {:.3}  total {:.3}",
            c.dns_ms, c.connect_ms, c.tls_ms, c.ttfb_ms, c.total_ms
        )?;
        let opt = |v: f64| {
            if v < 0.0 {
                "-".to_string()
            } else {
                format!("{v:.3}")
            }
        };
        writeln!(
            self.out,
            "  per phase, like HAR:       dns {}  connect {} (ssl {})  send {}  wait {}  receive {}",
            opt(h.dns),
            opt(h.connect),
            opt(h.ssl),
            opt(h.send),
            opt(h.wait),
            opt(h.receive)
        )?;
        if s.exchanges.len() > 1 {
            writeln!(self.out, "  per leg, from each leg's start:")?;
            for (i, e) in s.exchanges.iter().enumerate() {
                let t = &e.timings;
                let how = if e.reused_connection {
                    "  (reused connection: no DNS, TCP or TLS)"
                } else {
                    ""
                };
                writeln!(
                    self.out,
                    "    {}. {} {} {}  at {:.3}: dns {:.3}  connect {:.3}  tls {:.3}  first byte {:.3}  total {:.3}{how}",
                    i + 1,
                    e.status,
                    e.method,
                    e.url,
                    e.started_us as f64 / 1000.0,
                    t.dns_ms,
                    t.connect_ms,
                    t.tls_ms,
                    t.ttfb_ms,
                    t.total_ms
                )?;
            }
        }
        writeln!(self.out)?;
        if let Some((line, headers)) = self.response_head.take() {
            writeln!(self.out, "{}", paint(p.http, &line))?;
            for (k, v) in headers {
                writeln!(self.out, "  {k}: {v}")?;
            }
        }
        // An https → http redirect: the summary says it too, not only the trace.
        // (The redirect event said so: its `downgrade` fact, kept when it was drawn.)
        if let Some((hop, to)) = self.downgrade.take().map(|d| *d) {
            writeln!(
                self.out,
                "\n{}",
                paint(
                    self.palette.error,
                    &format!(
                        "Downgraded: redirect {hop} left https for http; {to} and what followed crossed the network unencrypted"
                    )
                )
            )?;
        }
        writeln!(
            self.out,
            "\nBody: {} bytes (decoded; {} on the wire), sha256 {}",
            s.body_bytes, s.wire_body_bytes, s.body_sha256
        )?;
        if !self.body_view.hidden {
            self.body_preview(s)?;
        }
        writeln!(
            self.out,
            "Connection: {} → {}, {} packets sent, {} received, TCP ended in {}{}",
            s.local,
            s.remote,
            s.packets_tx,
            s.packets_rx,
            s.final_tcp_state,
            match (&s.tls_version, &s.tls_suite) {
                (Some(v), Some(suite)) => format!(", {v} {suite}"),
                _ => String::new(),
            }
        )?;
        self.fault_summary()
    }

    /// The start of the body: a text body's first lines, a binary body's first bytes.
    fn body_preview(&mut self, s: &Summary) -> io::Result<()> {
        use super::body_preview::{Preview, preview};
        let content_type = s.exchanges.last().and_then(|e| {
            e.response_headers
                .iter()
                .find(|(k, _)| k == "content-type")
                .map(|(_, v)| v.as_str())
        });
        let start = super::body_preview::redact(&s.body_start, &self.body_view.secrets);
        let truncated = (s.body_start.len() as u64) < s.body_bytes;
        match preview(&start, truncated, content_type) {
            Some(Preview::Text { lines, more }) => {
                for line in &lines {
                    writeln!(self.out, "  │ {line}")?;
                }
                if more {
                    writeln!(
                        self.out,
                        "  │ … (the first {} lines are shown; -o FILE keeps the whole body, --no-body hides this)",
                        lines.len()
                    )?;
                }
            }
            Some(Preview::Binary { hex }) => writeln!(
                self.out,
                "  binary body{}: {hex} … (-o FILE keeps it)",
                content_type.map(|c| format!(" ({c})")).unwrap_or_default()
            )?,
            None => {}
        }
        Ok(())
    }

    /// One line of what fault injection did and one of the retransmissions, when there
    /// were any.
    fn fault_summary(&mut self) -> io::Result<()> {
        let [tx, rx] = self.faults.retransmissions;
        if tx + rx > 0 {
            writeln!(
                self.out,
                "Retransmissions: {tx} sent, {rx} received (TCP segments carrying bytes sent before)"
            )?;
        }
        let f = &self.faults;
        let timed_out = f.timeouts.iter().any(|t| !t.is_empty());
        if timed_out || f.fast + f.kept + f.dropped > 0 {
            let mut parts = Vec::new();
            if timed_out {
                let sides: Vec<String> = f
                    .timeouts
                    .iter()
                    .zip(["sent", "received"])
                    .filter(|(t, _)| !t.is_empty())
                    .map(|(t, side)| {
                        let timers: Vec<String> =
                            t.iter().flatten().map(|ms| timer_text(*ms)).collect();
                        if timers.is_empty() {
                            format!("{} {side}", t.len())
                        } else {
                            format!("{} {side} (RTO {})", t.len(), timers.join(", "))
                        }
                    })
                    .collect();
                parts.push(format!("retransmission timeouts {}", sides.join(", ")));
            }
            if f.fast > 0 {
                parts.push(format!(
                    "{} fast retransmission{}",
                    f.fast,
                    if f.fast == 1 { "" } else { "s" }
                ));
            }
            if f.kept + f.dropped > 0 {
                parts.push(format!(
                    "{} out-of-order segment{} kept and {} dropped, {} hole{} filled",
                    f.kept,
                    if f.kept == 1 { "" } else { "s" },
                    f.dropped,
                    f.filled,
                    if f.filled == 1 { "" } else { "s" }
                ));
            }
            writeln!(self.out, "Recovery: {} (see the ↳ lines)", parts.join(", "))?;
        }
        let parts: Vec<String> = FAULT_FATES
            .iter()
            .zip(self.faults.fates.iter())
            .filter(|(_, [tx, rx])| tx + rx > 0)
            .map(|(fate, [tx, rx])| format!("{fate} {tx} sent and {rx} received"))
            .collect();
        if parts.is_empty() {
            return Ok(());
        }
        writeln!(
            self.out,
            "Fault injection: {} (packets; see the ✗ lines)",
            parts.join(", ")
        )
    }

    /// Ends the output after a failure (the error itself was an event).
    pub fn failed(&mut self, e: &FetchError) -> io::Result<()> {
        writeln!(self.out)?;
        writeln!(
            self.out,
            "{}",
            paint(
                self.palette.error,
                &format!("Failed in the {} phase ({}).", e.phase, e.kind)
            )
        )?;
        // What the link did up to the failure: often the story of a timeout.
        self.fault_summary()
    }

    /// Writes `text` as it is and flushes (the step command's panel and prompts).
    pub fn raw(&mut self, text: &str) -> io::Result<()> {
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_float_formatting_would_print_them() {
        for t_us in [
            0u64,
            1,
            999,
            1_000,
            1_001,
            12_345,
            999_999,
            1_000_000,
            98_765_432,
            1_234_567_890_123,
        ] {
            assert_eq!(
                Millis(t_us).to_string(),
                format!("{:>10.3} ms", t_us as f64 / 1000.0),
                "{t_us} µs"
            );
        }
    }
}
