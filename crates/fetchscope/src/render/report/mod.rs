//! `--report FILE.html`: one self-contained HTML page about the fetch.
//!
//! The page holds a waterfall of the phases (like the Timing view of browser devtools),
//! the ladder diagram as SVG, the TLS details (version, suite, group, the ClientHello's
//! offer, the certificate chain with subjects and validity), the HTTP heads, the
//! non-packet events, and a table with one row per packet that expands to the packet's
//! decoded layers. The events themselves are embedded as JSON (the `--json` objects, in
//! a `<script type="application/json" id="fetchscope-events">`), and a small script
//! renders a packet's layers from them when its row is clicked (or when the page is
//! opened as `report.html#p7`).
//!
//! Nothing is loaded from anywhere: CSS, script and SVG are inline, and a
//! Content-Security-Policy (`default-src 'none'`, the script allowed by its SHA-256 hash)
//! makes the browser refuse any request or any other script.
//!
//! The markup is written with [`maud`] templates, checked when the crate compiles and
//! escaping every value spliced into them. Text that came from the network or the events
//! (header values, names, reason phrases, URLs) is spliced as `Text`, which escapes
//! quotes of both kinds too and replaces control characters. Inserted unescaped are only
//! the page's own CSS and script and the embedded JSON, which `script_json` makes safe
//! inside a `<script>` element.
//! The page's script inserts what it shows as text, never as markup.
//!
//! At most [`MAX_PACKETS`] packets are kept (a 16 MiB fetch has about 12 000); later ones
//! are counted and the page says so (the pcapng has them all).

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fetchscope_core::event::{HttpRequestEvent, TlsEvent};
use fetchscope_core::timing::HarTimings;
use fetchscope_core::{Event, EventKind, Phase, Summary};
use fetchscope_wire::Direction;
use maud::{DOCTYPE, Markup, PreEscaped, Render, html};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::har::HarRecorder;
use super::ladder::LadderRecorder;

mod ladder_svg;
pub use ladder_svg::ladder_svg;

/// At most this many packets are shown in the report.
pub const MAX_PACKETS: u64 = 50_000;
/// At most this many other events are kept.
const MAX_OTHER_EVENTS: u64 = 20_000;
/// Width of the SVG drawings.
const SVG_WIDTH: f64 = 900.0;
/// fetchscope's version, for the page's header and `generator`.
const VERSION: &str = env!("CARGO_PKG_VERSION");

const CSS: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("report.js");

/// Collects the events of one fetch and writes the HTML report.
#[derive(Debug)]
pub struct ReportRecorder {
    epoch: SystemTime,
    url: String,
    world: String,
    events: Vec<Event>,
    packets_seen: u64,
    packets_dropped: u64,
    others_dropped: u64,
    ladder: LadderRecorder,
    /// Only for the timings of a fetch that ended without its `done` event: the HAR
    /// recorder rebuilds them from the events that did happen.
    har: HarRecorder,
    last_t_us: u64,
}

/// Text from the network or the events, spliced into the page: `&`, `<`, `>`, `"` and
/// `'` escaped (safe in element content and in quoted attribute values), control
/// characters other than tab and newline replaced by U+FFFD.
#[derive(Debug, Clone, Copy)]
struct Text<'a>(&'a str);

impl Render for Text<'_> {
    fn render_to(&self, out: &mut String) {
        out.reserve(self.0.len());
        for c in self.0.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
                c => out.push(c),
            }
        }
    }
}

/// A number with a fixed count of decimals (coordinates, milliseconds).
#[derive(Debug, Clone, Copy)]
struct Fixed(f64, usize);

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.*}", self.1, self.0)
    }
}

/// JSON made safe inside a `<script>` element: `<`, `>` and `&` as `\u` escapes (they
/// can only occur inside JSON strings, where the escapes mean the same).
fn script_json(v: &impl serde::Serialize) -> PreEscaped<String> {
    let s = serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    PreEscaped(
        s.replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026"),
    )
}

/// Microseconds as milliseconds with three decimals.
fn ms(t_us: u64) -> Fixed {
    Fixed(t_us as f64 / 1000.0, 3)
}

/// Cuts `s` to at most `n` characters, with `…`.
fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n.saturating_sub(1)).collect::<String>() + "…"
    }
}

/// The colour of a phase in the waterfall.
fn phase_colour(p: Phase) -> &'static str {
    match p {
        Phase::Resolve => "#2a9d8f",
        Phase::Connect => "#e9a23b",
        Phase::Proxy => "#c2793a",
        Phase::Tls => "#8e5cc2",
        Phase::Request => "#7a7f87",
        Phase::Response => "#2f7fd1",
        Phase::Teardown => "#b5495b",
        Phase::Done => "#444",
    }
}

/// The waterfall's legend: the segments of an exchange's bar, then the teardown phase.
const LEGEND: [(&str, &str); 7] = [
    ("#2a9d8f", "DNS lookup"),
    ("#e9a23b", "Initial connection"),
    ("#8e5cc2", "SSL"),
    ("#7a7f87", "Request sent"),
    ("#3fae49", "Waiting (TTFB)"),
    ("#2f7fd1", "Content download"),
    ("#b5495b", "Teardown"),
];

/// One HTTP exchange as the waterfall draws it.
struct Exchange<'a> {
    /// The request as sent.
    request: &'a HttpRequestEvent,
    /// When the exchange started (µs since the fetch started).
    started_us: u64,
    /// Its per-phase durations (ms; negative: did not happen).
    timings: HarTimings,
}

impl Exchange<'_> {
    /// `GET www.example.test/path`: the method, the `Host` the request named and its
    /// target.
    fn label(&self) -> String {
        let r = self.request;
        let host = r
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
            .map_or("", |(_, v)| v.as_str());
        format!("{} {host}{}", r.method, r.target)
    }

    /// The bar's segments, like devtools' Timing view: (name, ms, colour). HAR's
    /// `connect` includes `ssl`; the TCP segment does not.
    fn segments(&self) -> [(&'static str, f64, &'static str); 6] {
        let t = &self.timings;
        let tcp_only = if t.connect >= 0.0 && t.ssl >= 0.0 {
            t.connect - t.ssl
        } else {
            t.connect
        };
        [
            ("DNS lookup", t.dns, "#2a9d8f"),
            ("Initial connection (TCP)", tcp_only, "#e9a23b"),
            ("SSL (TLS handshake)", t.ssl, "#8e5cc2"),
            ("Request sent", t.send, "#7a7f87"),
            ("Waiting (TTFB)", t.wait, "#3fae49"),
            ("Content download", t.receive, "#2f7fd1"),
        ]
    }

    /// The segments that happened, each with where it starts (ms since the fetch
    /// started): (name, start, duration, colour), one after the other.
    fn drawn(&self) -> Vec<(&'static str, f64, f64, &'static str)> {
        let mut at = self.started_us as f64 / 1000.0 + self.timings.blocked.max(0.0);
        let mut out = Vec::new();
        for (name, dur, colour) in self.segments() {
            if dur >= 0.0 {
                out.push((name, at, dur, colour));
                at += dur;
            }
        }
        out
    }

    /// Where the bar ends (ms since the fetch started).
    fn bar_end_ms(&self) -> f64 {
        self.drawn()
            .last()
            .map_or(self.started_us as f64 / 1000.0, |(_, at, dur, _)| at + dur)
    }
}

impl ReportRecorder {
    /// A recorder for a fetch of `url` in `world` (a phrase for the header); times are
    /// shown as `epoch` + the event time.
    pub fn new(epoch: SystemTime, url: &str, world: &str) -> Self {
        ReportRecorder {
            epoch,
            url: url.to_string(),
            world: world.to_string(),
            events: Vec::new(),
            packets_seen: 0,
            packets_dropped: 0,
            others_dropped: 0,
            ladder: LadderRecorder::new(),
            har: HarRecorder::new(epoch, world),
            last_t_us: 0,
        }
    }

    /// Takes one event.
    pub fn event(&mut self, e: &Event) {
        self.last_t_us = self.last_t_us.max(e.t_us);
        self.ladder.event(e);
        self.har.event(e);
        if let EventKind::Packet(_) = e.kind {
            self.packets_seen += 1;
            if self.packets_seen > MAX_PACKETS {
                self.packets_dropped += 1;
                return;
            }
        } else if (self.events.len() as u64) >= MAX_PACKETS + MAX_OTHER_EVENTS {
            self.others_dropped += 1;
            return;
        }
        self.events.push(e.clone());
    }

    /// The whole page.
    pub fn to_html(mut self) -> String {
        let ladder = std::mem::take(&mut self.ladder).finish();
        let script_hash = STANDARD.encode(Sha256::digest(SCRIPT.as_bytes()));
        let csp = format!(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
             script-src 'sha256-{script_hash}'"
        );
        let page = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta http-equiv="Content-Security-Policy" content=(csp);
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="generator" content={ "fetchscope " (VERSION) };
                    title { "fetchscope: " (Text(&self.url)) }
                    style { "\n" (PreEscaped(CSS)) }
                }
                body {
                    (self.header())
                    main {
                        (self.waterfall())
                        section id="ladder" {
                            h2 { "Ladder diagram" }
                            p class="note" {
                                "One arrow per packet, client on the left; click an arrow \
                                 to see the packet."
                            }
                            div class="svgbox" { (ladder_svg(&ladder)) }
                        }
                        (self.tls())
                        (self.http())
                        (self.event_log())
                        (self.packets())
                    }
                    script type="application/json" id="fetchscope-events" {
                        (script_json(&self.events))
                    }
                    script { (PreEscaped(SCRIPT)) }
                }
            }
        };
        page.into_string() + "\n"
    }

    fn wall(&self, t_us: u64) -> String {
        OffsetDateTime::from(self.epoch + Duration::from_micros(t_us))
            .format(&Rfc3339)
            .unwrap_or_default()
    }

    /// The `done` event's summary, if the fetch completed.
    fn summary(&self) -> Option<&Summary> {
        self.events.iter().find_map(|e| match &e.kind {
            EventKind::Done(s) => Some(&**s),
            _ => None,
        })
    }

    /// The requests sent, in order.
    fn requests(&self) -> impl Iterator<Item = &HttpRequestEvent> {
        self.events.iter().filter_map(|e| match &e.kind {
            EventKind::HttpRequest(r) => Some(r),
            _ => None,
        })
    }

    /// The exchanges to draw: each request with the `done` event's record of its
    /// exchange (start and timings); a fetch that ended without one (or whose records do
    /// not match the requests) takes them from the events, as its HAR file does.
    fn exchanges(&self) -> Vec<Exchange<'_>> {
        let requests: Vec<&HttpRequestEvent> = self.requests().collect();
        let records = self
            .summary()
            .map(|s| s.exchanges.as_slice())
            .filter(|x| x.len() == requests.len());
        if let Some(records) = records {
            return requests
                .into_iter()
                .zip(records)
                .map(|(request, x)| Exchange {
                    request,
                    started_us: x.started_us,
                    timings: x.har,
                })
                .collect();
        }
        let har = self.har.to_har();
        requests
            .into_iter()
            .zip(har.log.entries.iter().zip(self.har.entry_starts_us()))
            .map(|(request, (entry, started_us))| {
                let t = &entry.timings;
                Exchange {
                    request,
                    started_us,
                    timings: HarTimings {
                        blocked: t.blocked,
                        dns: t.dns,
                        connect: t.connect,
                        ssl: t.ssl,
                        send: t.send,
                        wait: t.wait,
                        receive: t.receive,
                    },
                }
            })
            .collect()
    }

    fn header(&self) -> Markup {
        let method = self.requests().next().map_or("GET", |r| r.method.as_str());
        html! {
            header {
                h1 { "fetchscope report" }
                div class="url" { (Text(method)) " " (Text(&self.url)) }
                div class="meta" {
                    (Text(&self.world)) " · started " (Text(&self.wall(0)))
                    " · fetchscope " (VERSION)
                }
                @for e in &self.events {
                    @match &e.kind {
                        EventKind::Done(s) => {
                            div class="outcome ok" id="outcome" {
                                "HTTP " (s.status) " · " (s.body_bytes) " body bytes · "
                                (Fixed(s.timings.total_ms, 3)) " ms · "
                                (self.packets_seen) " packets"
                                @if let (Some(v), Some(c)) = (&s.tls_version, &s.tls_suite) {
                                    " · " (Text(v)) " " (Text(c))
                                }
                            }
                        }
                        EventKind::Error(err) => {
                            div class="outcome failed" id="outcome" {
                                "failed in " (err.phase) " (" (Text(&err.kind)) ") after "
                                (ms(e.t_us)) " ms: " (Text(&err.message))
                            }
                        }
                        _ => {}
                    }
                }
                nav class="meta" {
                    @for (i, (href, name)) in [
                        ("#waterfall", "waterfall"),
                        ("#ladder", "ladder"),
                        ("#tls", "TLS"),
                        ("#http", "HTTP"),
                        ("#events", "events"),
                        ("#packets-section", "packets"),
                    ].into_iter().enumerate() {
                        @if i > 0 { " · " }
                        a href=(href) style="color:inherit" { (name) }
                    }
                }
            }
        }
    }

    /// The phase waterfall: one bar per HTTP exchange split like devtools' Timing view,
    /// then fetchscope's own phases on one lane, then the numbers.
    fn waterfall(&self) -> Markup {
        let exchanges = self.exchanges();
        let phases: Vec<(u64, Phase)> = self
            .events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::Phase { phase } => Some((e.t_us, phase)),
                _ => None,
            })
            .collect();
        let end_ms = exchanges
            .iter()
            .map(Exchange::bar_end_ms)
            .fold(self.last_t_us as f64 / 1000.0, f64::max)
            .max(0.001);
        let (x0, x1) = (230.0, SVG_WIDTH - 20.0);
        let x = |t_ms: f64| x0 + (x1 - x0) * (t_ms / end_ms).clamp(0.0, 1.0);
        let row_h = 22.0;
        let rows = exchanges.len() + usize::from(!phases.is_empty());
        let height = 40.0 + row_h * rows as f64 + 10.0;
        let row_y = |i: usize| 30.0 + row_h * i as f64;
        let svg = html! {
            svg xmlns="http://www.w3.org/2000/svg" id="waterfall-svg" width=(SVG_WIDTH)
                height=(height) viewBox={ "0 0 " (SVG_WIDTH) " " (height) } role="img"
                aria-label="phase waterfall" {
                // Axis: five ticks.
                @for i in 0..=4 {
                    @let t = end_ms * f64::from(i) / 4.0;
                    @let xi = Fixed(x(t), 1);
                    @let anchor = match i { 0 => "start", 4 => "end", _ => "middle" };
                    line x1=(xi) y1="22" x2=(xi) y2=(Fixed(height - 6.0, 1)) stroke="#e3e3e3" {}
                    text x=(xi) y="16" font-size="11" fill="#666" text-anchor=(anchor) {
                        (Fixed(t, 3)) " ms"
                    }
                }
                @for (i, ex) in exchanges.iter().enumerate() {
                    @let y = row_y(i);
                    g class="exchange" data-entry=(i + 1) {
                        text x="8" y=(Fixed(y + 14.0, 1)) font-size="12" {
                            title { (Text(ex.request.url.as_str())) }
                            (Text(&cut(&ex.label(), 32)))
                        }
                        @for (name, at, dur, colour) in ex.drawn() {
                            @let (a, b) = (x(at), x(at + dur));
                            rect class="seg" x=(Fixed(a, 2)) y=(Fixed(y + 3.0, 1))
                                width=(Fixed((b - a).max(1.0), 2)) height="14" fill=(colour) {
                                title { (name) ": " (Fixed(dur, 3)) " ms" }
                            }
                        }
                    }
                }
                @if !phases.is_empty() {
                    @let y = row_y(exchanges.len());
                    text x="8" y=(Fixed(y + 14.0, 1)) font-size="12" { "fetchscope phases" }
                    @for (i, (t0, p)) in phases.iter().enumerate() {
                        @if *p != Phase::Done {
                            @let t1 = phases.get(i + 1).map_or(self.last_t_us, |(t, _)| *t);
                            @let (a, b) = (x(*t0 as f64 / 1000.0), x(t1 as f64 / 1000.0));
                            rect class="phase" x=(Fixed(a, 2)) y=(Fixed(y + 3.0, 1))
                                width=(Fixed((b - a).max(1.0), 2)) height="14"
                                fill=(phase_colour(*p)) {
                                title { (p.title()) ": " (ms(*t0)) " – " (ms(t1)) " ms" }
                            }
                        }
                    }
                }
            }
        };
        html! {
            section id="waterfall" {
                h2 { "Waterfall" }
                div class="svgbox" { (svg) }
                div class="legend" {
                    @for (colour, name) in LEGEND {
                        span { i style={ "background:" (colour) } {} (name) }
                    }
                }
                (self.timing_tables())
            }
        }
    }

    fn timing_tables(&self) -> Markup {
        let Some(summary) = self.summary() else {
            return html! {
                p class="note" {
                    "The fetch did not finish, so there are no summary timings; the bars \
                     above come from the events that happened."
                }
            };
        };
        let c = &summary.timings;
        let cumulative = [
            ("dns_ms", c.dns_ms, "time_namelookup"),
            ("connect_ms", c.connect_ms, "time_connect"),
            ("tls_ms", c.tls_ms, "time_appconnect"),
            ("pretransfer_ms", c.pretransfer_ms, "time_pretransfer"),
            ("ttfb_ms", c.ttfb_ms, "time_starttransfer"),
            ("total_ms", c.total_ms, "time_total"),
            ("redirect_ms", c.redirect_ms, "time_redirect"),
        ];
        let t = &summary.har;
        let per_phase = [
            ("blocked", t.blocked),
            ("dns", t.dns),
            ("connect", t.connect),
            ("ssl", t.ssl),
            ("send", t.send),
            ("wait", t.wait),
            ("receive", t.receive),
        ];
        html! {
            h3 { "Timings (ms)" }
            table class="kv" id="timings-curl" {
                tr { th { "cumulative, like curl -w" } th class="num" { "ms" } th { "curl" } }
                @for (k, v, curl) in cumulative {
                    tr {
                        td class="mono" { (k) }
                        td class="num" { (Fixed(v, 3)) }
                        td class="mono" { (curl) }
                    }
                }
            }
            table class="kv" id="timings-har" {
                tr { th { "per phase, like HAR" } th class="num" { "ms" } }
                @for (k, v) in per_phase {
                    tr { td class="mono" { (k) } td class="num" { (Fixed(v, 3)) } }
                }
            }
            p class="note" { "-1: does not apply. HAR's connect includes ssl." }
        }
    }

    fn tls(&self) -> Markup {
        let tls: Vec<(u64, &TlsEvent)> = self
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Tls(t) => Some((e.t_us, t)),
                _ => None,
            })
            .collect();
        if tls.is_empty() {
            return html! {
                section id="tls" {
                    h2 { "TLS" }
                    p class="note" { "No TLS handshake took place." }
                }
            };
        }
        let last = |f: fn(&TlsEvent) -> Option<&String>| {
            tls.iter()
                .rev()
                .find_map(|(_, t)| f(t))
                .map_or("—", String::as_str)
        };
        let summary = [
            ("version", last(|t| t.version.as_ref())),
            ("cipher suite", last(|t| t.suite.as_ref())),
            ("key exchange group", last(|t| t.group.as_ref())),
            ("ALPN", last(|t| t.alpn.as_ref())),
        ];
        // What the ClientHello offered, from its decoded record.
        let hello = self.events.iter().find_map(|e| match &e.kind {
            EventKind::Packet(p) => p
                .layers
                .tls
                .iter()
                .find(|r| r.messages.iter().any(|m| m == "ClientHello")),
            _ => None,
        });
        let offer = hello.map(|r| {
            format!(
                "SNI {} · versions {} · groups {} · key shares {} · {} cipher suites · ALPN {}",
                r.sni.as_deref().unwrap_or("none"),
                r.versions.join(", "),
                r.groups.join(", "),
                r.key_shares.join(", "),
                r.suites.unwrap_or(0),
                r.alpn.join(", ")
            )
        });
        let chain = tls
            .iter()
            .find(|(_, t)| !t.certificates.is_empty())
            .map(|(_, t)| &t.certificates);
        html! {
            section id="tls" {
                h2 { "TLS" }
                table class="kv" id="tls-summary" {
                    @for (k, v) in summary {
                        tr { th { (k) } td { (Text(v)) } }
                    }
                    @if let Some(offer) = &offer {
                        tr { th { "ClientHello offered" } td { (Text(offer)) } }
                    }
                }
                @if let Some(chain) = chain {
                    h3 { "Certificate chain (as the server sent it)" }
                    table id="certificates" {
                        tr {
                            th { "#" } th { "subject" } th { "issuer" } th { "valid from" }
                            th { "valid until" } th { "names" }
                        }
                        @for (i, c) in chain.iter().enumerate() {
                            tr class="cert" {
                                td { (i) }
                                td { (Text(&c.subject)) }
                                td { (Text(&c.issuer)) }
                                td { (Text(&c.not_before)) }
                                td { (Text(&c.not_after)) }
                                td { (Text(&c.names.join(", "))) }
                            }
                        }
                    }
                }
                h3 { "Handshake stages" }
                table id="tls-stages" {
                    tr { th class="num" { "ms" } th { "stage" } th { "detail" } }
                    @for (t, e) in &tls {
                        tr {
                            td class="num" { (ms(*t)) }
                            td class="mono" { (Text(&e.stage)) }
                            td { (Text(&e.detail)) }
                        }
                    }
                }
            }
        }
    }

    fn http(&self) -> Markup {
        let headers = |class: &str, fields: &[(String, String)]| {
            html! {
                table class={ "hdrs " (class) } {
                    @for (k, v) in fields {
                        tr { td { (Text(k)) } td { (Text(v)) } }
                    }
                }
            }
        };
        // Each event with the number of the exchange it belongs to (1 for the first).
        let numbered = self.events.iter().scan(0, |n, e| {
            if let EventKind::HttpRequest(_) = e.kind {
                *n += 1;
            }
            Some((e, *n))
        });
        html! {
            section id="http" {
                h2 { "HTTP" }
                @for (e, n) in numbered {
                    @match &e.kind {
                        EventKind::HttpRequest(r) => {
                            h3 { "Exchange " (n) ": request at " (ms(e.t_us)) " ms" }
                            div class="mono" {
                                (Text(&r.method)) " " (Text(&r.target)) " HTTP/1.1"
                            }
                            (headers("request-headers", &r.headers))
                        }
                        EventKind::Http(r) => {
                            h3 { "Response at " (ms(e.t_us)) " ms" }
                            div class="mono" {
                                (Text(&r.version)) " " (r.status) " " (Text(&r.reason))
                            }
                            (headers("response-headers", &r.headers))
                        }
                        EventKind::Redirect(r) => {
                            p class="note" {
                                "redirect " (r.status) " → " (Text(&r.to)) " ("
                                (Text(&r.method))
                                (if r.reuse { ", same connection" } else { ", new connection" })
                                ")"
                            }
                        }
                        _ => {}
                    }
                }
                @if self.requests().next().is_none() {
                    p class="note" { "No HTTP request was sent." }
                }
            }
        }
    }

    fn event_log(&self) -> Markup {
        html! {
            section id="events" {
                h2 { "Events" }
                p class="note" { "Everything but the packets, in order." }
                table id="event-log" {
                    tr { th class="num" { "ms" } th { "type" } th { "what" } }
                    @for e in &self.events {
                        @if let Some((ty, what)) = event_line(&e.kind) {
                            tr {
                                td class="num" { (ms(e.t_us)) }
                                td class="mono" { (ty) }
                                td { (Text(&what)) }
                            }
                        }
                    }
                    @if self.others_dropped > 0 {
                        tr {
                            td {} td {}
                            td class="note" { (self.others_dropped) " more events not kept" }
                        }
                    }
                }
            }
        }
    }

    fn packets(&self) -> Markup {
        html! {
            section id="packets-section" {
                h2 { "Packets" }
                p class="note" {
                    (self.packets_seen) " packets; click a row (or open "
                    span class="mono" { "report.html#pN" } ") to see its layers. "
                    button id="expand-all" type="button" { "Expand all" }
                }
                table id="packets" {
                    thead {
                        tr {
                            th class="num" { "#" } th class="num" { "ms" } th { "dir" }
                            th { "phase" } th class="num" { "bytes" } th { "summary" }
                        }
                    }
                    tbody {
                        @for e in &self.events {
                            @if let EventKind::Packet(p) = &e.kind {
                                @let (dir, arrow) = match p.dir {
                                    Direction::Tx => ("dir-tx", "→ sent"),
                                    Direction::Rx => ("dir-rx", "← received"),
                                };
                                tr class="pkt" id={ "p" (p.number) } data-n=(p.number)
                                    tabindex="0" {
                                    td class="num" { (p.number) }
                                    td class="num" { (ms(e.t_us)) }
                                    td class=(dir) { (arrow) }
                                    td { (p.phase) }
                                    td class="num" { (p.len) }
                                    td class="summary" { (Text(&p.summary)) }
                                }
                            }
                        }
                    }
                }
                @if self.packets_dropped > 0 {
                    p class="note" id="packets-dropped" {
                        (self.packets_dropped) " more packets are not in this report (it keeps \
                         the first " (MAX_PACKETS) "); the pcapng has them all."
                    }
                }
            }
        }
    }
}

/// An event's line in the event log: its type and what happened; `None` for packets
/// (they have their own table).
fn event_line(kind: &EventKind) -> Option<(&'static str, String)> {
    Some(match kind {
        EventKind::Packet(_) => return None,
        EventKind::Phase { phase } => ("phase", phase.title().to_string()),
        EventKind::TcpState(s) => (
            "tcp_state",
            match &s.cause {
                Some(c) => format!("{} → {} ({c})", s.from, s.to),
                None => format!("{} → {}", s.from, s.to),
            },
        ),
        EventKind::Dns(d) => {
            let mut what = format!("{} {} {}", d.event, d.qtype, d.name);
            if let Some(r) = &d.rcode {
                what.push(' ');
                what.push_str(r);
            }
            if !d.addresses.is_empty() {
                let addresses: Vec<String> = d.addresses.iter().map(|a| a.to_string()).collect();
                what.push_str(" → ");
                what.push_str(&addresses.join(", "));
            }
            ("dns", what)
        }
        EventKind::Tls(t) => ("tls", t.detail.clone()),
        EventKind::HttpRequest(r) => ("http_request", format!("{} {}", r.method, r.url)),
        EventKind::Http(r) => ("http", format!("{} {} {}", r.version, r.status, r.reason)),
        EventKind::Redirect(r) => ("redirect", format!("{} → {}", r.status, r.to)),
        EventKind::Proxy(x) => ("proxy", format!("{} ({} {})", x.line, x.stage, x.proxy)),
        EventKind::Note { text } => ("note", text.clone()),
        EventKind::Done(s) => (
            "done",
            format!(
                "HTTP {}, {} body bytes, sha256 {}",
                s.status, s.body_bytes, s.body_sha256
            ),
        ),
        EventKind::Error(err) => ("error", format!("{}: {}", err.kind, err.message)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a [`Text`] becomes in the page.
    fn esc(s: &str) -> String {
        Text(s).render().into_string()
    }

    #[test]
    fn base64_is_standard_with_padding() {
        // RFC 4648 §10: the CSP hash must be the standard alphabet with `=` padding.
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(STANDARD.encode(i.as_bytes()), o);
        }
        // `+` and `/`, not the URL-safe `-` and `_`.
        assert_eq!(STANDARD.encode([0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
        assert_eq!(esc("a\u{0}b\u{1b}c\td\ne"), "a\u{fffd}b\u{fffd}c\td\ne");
        let j = script_json(&vec!["</script><b>&"]).into_string();
        assert!(
            !j.contains('<') && !j.contains('>') && !j.contains('&'),
            "{j}"
        );
        let back: Vec<String> = serde_json::from_str(&j).unwrap();
        assert_eq!(back, vec!["</script><b>&".to_string()]);
    }

    /// Header values, reason phrases and URLs come from the network: none of them may
    /// become markup or end the embedded JSON early.
    #[test]
    fn hostile_network_text_stays_text() {
        use fetchscope_core::event::{HttpRequestEvent, HttpResponseEvent};
        let evil = "</script><script>alert(1)</script><img src=x onerror=alert(2)>\"'&";
        let mut r = ReportRecorder::new(SystemTime::UNIX_EPOCH, "https://a.test/?q=<b>", evil);
        r.event(&Event {
            t_us: 1,
            kind: EventKind::HttpRequest(HttpRequestEvent {
                method: "GET".into(),
                target: "/".into(),
                url: url::Url::parse("https://a.test/").unwrap(),
                headers: vec![(evil.into(), evil.into())],
                body_bytes: None,
            }),
        });
        r.event(&Event {
            t_us: 2,
            kind: EventKind::Http(HttpResponseEvent {
                status: 200,
                reason: evil.into(),
                version: "HTTP/1.1".into(),
                headers: vec![("x-evil".into(), evil.into())],
            }),
        });
        let html = r.to_html();
        assert_eq!(
            html.matches("<script").count(),
            2,
            "only the page's own scripts"
        );
        assert_eq!(html.matches("</script>").count(), 2);
        assert!(!html.contains("<img"));
        assert!(!html.contains("<b>"));
        assert!(html.contains(&esc(evil)));
        // The embedded events still parse back to the original text.
        let open = "id=\"fetchscope-events\">";
        let start = html.find(open).unwrap() + open.len();
        let end = start + html[start..].find("</script>").unwrap();
        let v: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
        assert_eq!(v[1]["reason"], evil);
    }

    #[test]
    fn an_empty_report_is_still_a_page() {
        let r = ReportRecorder::new(SystemTime::UNIX_EPOCH, "https://a.test/", "lab");
        let html = r.to_html();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("id=\"packets\""));
        assert!(html.ends_with("</html>\n"));
    }

    /// The script's CSP hash is of the script exactly as the page embeds it.
    #[test]
    fn the_csp_hash_matches_the_embedded_script() {
        let html = ReportRecorder::new(SystemTime::UNIX_EPOCH, "https://a.test/", "lab").to_html();
        let at = html.find("'sha256-").unwrap() + "'sha256-".len();
        let hash = &html[at..at + html[at..].find('\'').unwrap()];
        let open = "<script>";
        let start = html.find(open).unwrap() + open.len();
        let end = start + html[start..].find("</script>").unwrap();
        assert_eq!(hash, STANDARD.encode(Sha256::digest(&html[start..end])));
    }
}
