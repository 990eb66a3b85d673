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
//! makes the browser refuse any request or any other script. Everything that came from
//! the network (header values, names, reason phrases) is HTML-escaped on the server side
//! and inserted as text by the script.
//!
//! At most [`MAX_PACKETS`] packets are kept (a 16 MiB fetch has about 12 000); later ones
//! are counted and the page says so (the pcapng has them all).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fetchscope_core::{Event, EventKind, Phase};
use fetchscope_wire::Direction;
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
    har: HarRecorder,
    last_t_us: u64,
}

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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
    out
}

/// JSON made safe inside a `<script>` element: `<`, `>` and `&` as `\u` escapes (they
/// can only occur inside JSON strings, where the escapes mean the same).
fn script_json(v: &impl serde::Serialize) -> String {
    let s = serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn ms(t_us: u64) -> String {
    format!("{:.3}", t_us as f64 / 1000.0)
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
        Phase::Tls => "#8e5cc2",
        Phase::Request => "#7a7f87",
        Phase::Response => "#2f7fd1",
        Phase::Teardown => "#b5495b",
        Phase::Done => "#444",
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
        let mut h = String::with_capacity(64 * 1024 + self.events.len() * 1024);
        let script_hash = STANDARD.encode(Sha256::digest(SCRIPT.as_bytes()));
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{script_hash}'\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"generator\" content=\"fetchscope {}\">\n<title>fetchscope: {}</title>\n\
<style>\n{CSS}</style>\n</head>\n<body>\n",
            env!("CARGO_PKG_VERSION"),
            esc(&self.url)
        );
        self.header(&mut h);
        h.push_str("<main>\n");
        self.waterfall(&mut h);
        let _ = write!(
            h,
            "<section id=\"ladder\"><h2>Ladder diagram</h2>\n<p class=\"note\">One arrow \
per packet, client on the left; click an arrow to see the packet.</p>\n\
<div class=\"svgbox\">{}</div></section>\n",
            ladder_svg(&ladder)
        );
        self.tls(&mut h);
        self.http(&mut h);
        self.event_log(&mut h);
        self.packets(&mut h);
        h.push_str("</main>\n");
        let _ = write!(
            h,
            "<script type=\"application/json\" id=\"fetchscope-events\">{}</script>\n\
<script>{SCRIPT}</script>\n</body>\n</html>\n",
            script_json(&self.events)
        );
        h
    }

    fn wall(&self, t_us: u64) -> String {
        OffsetDateTime::from(self.epoch + Duration::from_micros(t_us))
            .format(&Rfc3339)
            .unwrap_or_default()
    }

    fn header(&self, h: &mut String) {
        let method = self
            .events
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::HttpRequest(r) => Some(r.method.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "GET".into());
        let _ = write!(
            h,
            "<header>\n<h1>fetchscope report</h1>\n<div class=\"url\">{} {}</div>\n\
<div class=\"meta\">{} · started {} · fetchscope {}</div>\n",
            esc(&method),
            esc(&self.url),
            esc(&self.world),
            esc(&self.wall(0)),
            env!("CARGO_PKG_VERSION")
        );
        for e in &self.events {
            match &e.kind {
                EventKind::Done(s) => {
                    let tls = match (&s.tls_version, &s.tls_suite) {
                        (Some(v), Some(c)) => format!(" · {v} {c}"),
                        _ => String::new(),
                    };
                    let _ = writeln!(
                        h,
                        "<div class=\"outcome ok\" id=\"outcome\">HTTP {} · {} body bytes · {} ms · \
{} packets{}</div>",
                        s.status,
                        s.body_bytes,
                        esc(&format!("{:.3}", s.timings.total_ms)),
                        self.packets_seen,
                        esc(&tls)
                    );
                }
                EventKind::Error(err) => {
                    let _ = writeln!(
                        h,
                        "<div class=\"outcome failed\" id=\"outcome\">failed in {} ({}) after {} ms: {}</div>",
                        err.phase,
                        esc(&err.kind),
                        ms(e.t_us),
                        esc(&err.message)
                    );
                }
                _ => {}
            }
        }
        h.push_str(
            "<nav class=\"meta\"><a href=\"#waterfall\" style=\"color:inherit\">waterfall</a> · \
<a href=\"#ladder\" style=\"color:inherit\">ladder</a> · <a href=\"#tls\" style=\"color:inherit\">TLS</a> · \
<a href=\"#http\" style=\"color:inherit\">HTTP</a> · <a href=\"#events\" style=\"color:inherit\">events</a> · \
<a href=\"#packets-section\" style=\"color:inherit\">packets</a></nav>\n</header>\n",
        );
    }

    /// The phase waterfall: one bar per HTTP exchange split like devtools' Timing view,
    /// then fetchscope's own phases on one lane, then the numbers.
    fn waterfall(&self, h: &mut String) {
        let har = self.har.to_har();
        let starts = self.har.entry_starts_us();
        let phases: Vec<(u64, Phase)> = self
            .events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::Phase { phase } => Some((e.t_us, phase)),
                _ => None,
            })
            .collect();
        let mut end_ms = self.last_t_us as f64 / 1000.0;
        for (entry, start) in har.log.entries.iter().zip(&starts) {
            end_ms = end_ms.max(*start as f64 / 1000.0 + entry.time);
        }
        let end_ms = end_ms.max(0.001);
        let (x0, x1) = (230.0, SVG_WIDTH - 20.0);
        let x = |t_ms: f64| x0 + (x1 - x0) * (t_ms / end_ms).clamp(0.0, 1.0);
        let row_h = 22.0;
        let rows = har.log.entries.len() + usize::from(!phases.is_empty());
        let height = 40.0 + row_h * rows as f64 + 10.0;
        let mut s = String::new();
        let _ = write!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"waterfall-svg\" width=\"{SVG_WIDTH}\" \
height=\"{height}\" viewBox=\"0 0 {SVG_WIDTH} {height}\" role=\"img\" \
aria-label=\"phase waterfall\">"
        );
        // Axis: five ticks.
        for i in 0..=4 {
            let t = end_ms * f64::from(i) / 4.0;
            let xi = x(t);
            let anchor = match i {
                0 => "start",
                4 => "end",
                _ => "middle",
            };
            let _ = write!(
                s,
                "<line x1=\"{xi:.1}\" y1=\"22\" x2=\"{xi:.1}\" y2=\"{:.1}\" stroke=\"#e3e3e3\"/>\
<text x=\"{xi:.1}\" y=\"16\" font-size=\"11\" fill=\"#666\" text-anchor=\"{anchor}\">{t:.3} ms</text>",
                height - 6.0
            );
        }
        let mut y = 30.0;
        for (i, (entry, start)) in har.log.entries.iter().zip(&starts).enumerate() {
            let label = format!(
                "{} {}",
                entry.request.method,
                url::Url::parse(&entry.request.url)
                    .map(|u| format!("{}{}", u.host_str().unwrap_or(""), u.path()))
                    .unwrap_or_else(|_| entry.request.url.clone())
            );
            let _ = write!(
                s,
                "<g class=\"exchange\" data-entry=\"{}\"><text x=\"8\" y=\"{:.1}\" font-size=\"12\">\
<title>{}</title>{}</text>",
                i + 1,
                y + 14.0,
                esc(&entry.request.url),
                esc(&cut(&label, 32))
            );
            let t = &entry.timings;
            let tcp_only = if t.connect >= 0.0 && t.ssl >= 0.0 {
                t.connect - t.ssl
            } else {
                t.connect
            };
            let segments = [
                ("DNS lookup", t.dns, "#2a9d8f"),
                ("Initial connection (TCP)", tcp_only, "#e9a23b"),
                ("SSL (TLS handshake)", t.ssl, "#8e5cc2"),
                ("Request sent", t.send, "#7a7f87"),
                ("Waiting (TTFB)", t.wait, "#3fae49"),
                ("Content download", t.receive, "#2f7fd1"),
            ];
            let mut at = *start as f64 / 1000.0 + t.blocked.max(0.0);
            for (name, dur, colour) in segments {
                if dur < 0.0 {
                    continue;
                }
                let (a, b) = (x(at), x(at + dur));
                let _ = write!(
                    s,
                    "<rect class=\"seg\" x=\"{a:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"14\" \
fill=\"{colour}\"><title>{name}: {dur:.3} ms</title></rect>",
                    y + 3.0,
                    (b - a).max(1.0)
                );
                at += dur;
            }
            s.push_str("</g>");
            y += row_h;
        }
        if !phases.is_empty() {
            let _ = write!(
                s,
                "<text x=\"8\" y=\"{:.1}\" font-size=\"12\">fetchscope phases</text>",
                y + 14.0
            );
            for (i, (t0, p)) in phases.iter().enumerate() {
                if *p == Phase::Done {
                    continue;
                }
                let t1 = phases.get(i + 1).map_or(self.last_t_us, |(t, _)| *t);
                let (a, b) = (x(*t0 as f64 / 1000.0), x(t1 as f64 / 1000.0));
                let _ = write!(
                    s,
                    "<rect class=\"phase\" x=\"{a:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"14\" \
fill=\"{}\"><title>{}: {} – {} ms</title></rect>",
                    y + 3.0,
                    (b - a).max(1.0),
                    phase_colour(*p),
                    p.title(),
                    ms(*t0),
                    ms(t1)
                );
            }
        }
        s.push_str("</svg>");
        let _ = write!(
            h,
            "<section id=\"waterfall\"><h2>Waterfall</h2>\n<div class=\"svgbox\">{s}</div>\n\
<div class=\"legend\"><span><i style=\"background:#2a9d8f\"></i>DNS lookup</span>\
<span><i style=\"background:#e9a23b\"></i>Initial connection</span>\
<span><i style=\"background:#8e5cc2\"></i>SSL</span><span><i style=\"background:#7a7f87\"></i>\
Request sent</span><span><i style=\"background:#3fae49\"></i>Waiting (TTFB)</span>\
<span><i style=\"background:#2f7fd1\"></i>Content download</span>\
<span><i style=\"background:#b5495b\"></i>Teardown</span></div>\n"
        );
        self.timing_tables(h);
        h.push_str("</section>\n");
    }

    fn timing_tables(&self, h: &mut String) {
        let Some(summary) = self.events.iter().find_map(|e| match &e.kind {
            EventKind::Done(s) => Some(s),
            _ => None,
        }) else {
            h.push_str(
                "<p class=\"note\">The fetch did not finish, so there are no summary timings; \
the bars above come from the events that happened.</p>\n",
            );
            return;
        };
        let curl_name = |k: &str| match k {
            "dns_ms" => "time_namelookup",
            "connect_ms" => "time_connect",
            "tls_ms" => "time_appconnect",
            "pretransfer_ms" => "time_pretransfer",
            "ttfb_ms" => "time_starttransfer",
            "total_ms" => "time_total",
            "redirect_ms" => "time_redirect",
            _ => "",
        };
        h.push_str(
            "<h3>Timings (ms)</h3>\n<table class=\"kv\" id=\"timings-curl\"><tr><th>cumulative, \
like curl -w</th><th class=\"num\">ms</th><th>curl</th></tr>\n",
        );
        let c = &summary.timings;
        for (k, v) in [
            ("dns_ms", c.dns_ms),
            ("connect_ms", c.connect_ms),
            ("tls_ms", c.tls_ms),
            ("pretransfer_ms", c.pretransfer_ms),
            ("ttfb_ms", c.ttfb_ms),
            ("total_ms", c.total_ms),
            ("redirect_ms", c.redirect_ms),
        ] {
            let _ = writeln!(
                h,
                "<tr><td class=\"mono\">{k}</td><td class=\"num\">{v:.3}</td><td class=\"mono\">{}</td></tr>",
                curl_name(k)
            );
        }
        h.push_str(
            "</table>\n<table class=\"kv\" id=\"timings-har\"><tr><th>per phase, like HAR</th>\
<th class=\"num\">ms</th></tr>\n",
        );
        let t = &summary.har;
        for (k, v) in [
            ("blocked", t.blocked),
            ("dns", t.dns),
            ("connect", t.connect),
            ("ssl", t.ssl),
            ("send", t.send),
            ("wait", t.wait),
            ("receive", t.receive),
        ] {
            let _ = writeln!(
                h,
                "<tr><td class=\"mono\">{k}</td><td class=\"num\">{v:.3}</td></tr>"
            );
        }
        h.push_str(
            "</table>\n<p class=\"note\">-1: does not apply. HAR's connect includes ssl.</p>\n",
        );
    }

    fn tls(&self, h: &mut String) {
        h.push_str("<section id=\"tls\"><h2>TLS</h2>\n");
        let tls: Vec<(u64, &fetchscope_core::event::TlsEvent)> = self
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Tls(t) => Some((e.t_us, t)),
                _ => None,
            })
            .collect();
        if tls.is_empty() {
            h.push_str("<p class=\"note\">No TLS handshake took place.</p></section>\n");
            return;
        }
        let last = |f: fn(&fetchscope_core::event::TlsEvent) -> Option<&String>| {
            tls.iter()
                .rev()
                .find_map(|(_, t)| f(t).cloned())
                .unwrap_or_else(|| "—".into())
        };
        let _ = write!(
            h,
            "<table class=\"kv\" id=\"tls-summary\"><tr><th>version</th><td>{}</td></tr>\
<tr><th>cipher suite</th><td>{}</td></tr><tr><th>key exchange group</th><td>{}</td></tr>\
<tr><th>ALPN</th><td>{}</td></tr>",
            esc(&last(|t| t.version.as_ref())),
            esc(&last(|t| t.suite.as_ref())),
            esc(&last(|t| t.group.as_ref())),
            esc(&last(|t| t.alpn.as_ref())),
        );
        // What the ClientHello offered, from its decoded record.
        let hello = self.events.iter().find_map(|e| match &e.kind {
            EventKind::Packet(p) => p
                .layers
                .tls
                .iter()
                .find(|r| r.messages.iter().any(|m| m == "ClientHello")),
            _ => None,
        });
        if let Some(r) = hello {
            let offer = format!(
                "SNI {} · versions {} · groups {} · key shares {} · {} cipher suites · ALPN {}",
                r.sni.as_deref().unwrap_or("none"),
                r.versions.join(", "),
                r.groups.join(", "),
                r.key_shares.join(", "),
                r.suites.unwrap_or(0),
                r.alpn.join(", ")
            );
            let _ = write!(
                h,
                "<tr><th>ClientHello offered</th><td>{}</td></tr>",
                esc(&offer)
            );
        }
        h.push_str("</table>\n");
        if let Some((_, t)) = tls.iter().find(|(_, t)| !t.certificates.is_empty()) {
            h.push_str(
                "<h3>Certificate chain (as the server sent it)</h3>\n<table id=\"certificates\">\
<tr><th>#</th><th>subject</th><th>issuer</th><th>valid from</th><th>valid until</th>\
<th>names</th></tr>\n",
            );
            for (i, c) in t.certificates.iter().enumerate() {
                let _ = writeln!(
                    h,
                    "<tr class=\"cert\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    i,
                    esc(&c.subject),
                    esc(&c.issuer),
                    esc(&c.not_before),
                    esc(&c.not_after),
                    esc(&c.names.join(", "))
                );
            }
            h.push_str("</table>\n");
        }
        h.push_str(
            "<h3>Handshake stages</h3>\n<table id=\"tls-stages\"><tr><th class=\"num\">ms</th>\
<th>stage</th><th>detail</th></tr>\n",
        );
        for (t, e) in &tls {
            let _ = writeln!(
                h,
                "<tr><td class=\"num\">{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
                ms(*t),
                esc(&e.stage),
                esc(&e.detail)
            );
        }
        h.push_str("</table></section>\n");
    }

    fn http(&self, h: &mut String) {
        h.push_str("<section id=\"http\"><h2>HTTP</h2>\n");
        let mut n = 0;
        for e in &self.events {
            match &e.kind {
                EventKind::HttpRequest(r) => {
                    n += 1;
                    let _ = write!(
                        h,
                        "<h3>Exchange {n}: request at {} ms</h3>\n<div class=\"mono\">{} {} HTTP/1.1</div>\n\
<table class=\"hdrs request-headers\">",
                        ms(e.t_us),
                        esc(&r.method),
                        esc(&r.target)
                    );
                    for (k, v) in &r.headers {
                        let _ = write!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(v));
                    }
                    h.push_str("</table>\n");
                }
                EventKind::Http(r) => {
                    let _ = write!(
                        h,
                        "<h3>Response at {} ms</h3>\n<div class=\"mono\">{} {} {}</div>\n\
<table class=\"hdrs response-headers\">",
                        ms(e.t_us),
                        esc(&r.version),
                        r.status,
                        esc(&r.reason)
                    );
                    for (k, v) in &r.headers {
                        let _ = write!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(v));
                    }
                    h.push_str("</table>\n");
                }
                EventKind::Redirect(r) => {
                    let _ = writeln!(
                        h,
                        "<p class=\"note\">redirect {} → {} ({}{})</p>",
                        r.status,
                        esc(&r.to),
                        esc(&r.method),
                        if r.reuse {
                            ", same connection"
                        } else {
                            ", new connection"
                        }
                    );
                }
                _ => {}
            }
        }
        if n == 0 {
            h.push_str("<p class=\"note\">No HTTP request was sent.</p>\n");
        }
        h.push_str("</section>\n");
    }

    fn event_log(&self, h: &mut String) {
        h.push_str(
            "<section id=\"events\"><h2>Events</h2>\n<p class=\"note\">Everything but the \
packets, in order.</p>\n<table id=\"event-log\"><tr><th class=\"num\">ms</th><th>type</th>\
<th>what</th></tr>\n",
        );
        for e in &self.events {
            let (ty, text) = match &e.kind {
                EventKind::Packet(_) => continue,
                EventKind::Phase { phase } => ("phase", phase.title().to_string()),
                EventKind::TcpState(s) => (
                    "tcp_state",
                    format!(
                        "{} → {}{}",
                        s.from,
                        s.to,
                        s.cause
                            .as_ref()
                            .map(|c| format!(" ({c})"))
                            .unwrap_or_default()
                    ),
                ),
                EventKind::Dns(d) => (
                    "dns",
                    format!(
                        "{} {} {}{}{}",
                        d.event,
                        d.qtype,
                        d.name,
                        d.rcode
                            .as_ref()
                            .map(|r| format!(" {r}"))
                            .unwrap_or_default(),
                        if d.addresses.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " → {}",
                                d.addresses
                                    .iter()
                                    .map(|a| a.to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    ),
                ),
                EventKind::Tls(t) => ("tls", t.detail.clone()),
                EventKind::HttpRequest(r) => ("http_request", format!("{} {}", r.method, r.url)),
                EventKind::Http(r) => ("http", format!("{} {} {}", r.version, r.status, r.reason)),
                EventKind::Redirect(r) => ("redirect", format!("{} → {}", r.status, r.to)),
                EventKind::Note { text } => ("note", text.clone()),
                EventKind::Done(s) => (
                    "done",
                    format!(
                        "HTTP {}, {} body bytes, sha256 {}",
                        s.status, s.body_bytes, s.body_sha256
                    ),
                ),
                EventKind::Error(err) => ("error", format!("{}: {}", err.kind, err.message)),
            };
            let _ = writeln!(
                h,
                "<tr><td class=\"num\">{}</td><td class=\"mono\">{ty}</td><td>{}</td></tr>",
                ms(e.t_us),
                esc(&text)
            );
        }
        if self.others_dropped > 0 {
            let _ = writeln!(
                h,
                "<tr><td></td><td></td><td class=\"note\">{} more events not kept</td></tr>",
                self.others_dropped
            );
        }
        h.push_str("</table></section>\n");
    }

    fn packets(&self, h: &mut String) {
        let _ = write!(
            h,
            "<section id=\"packets-section\"><h2>Packets</h2>\n<p class=\"note\">{} packets; click \
a row (or open <span class=\"mono\">report.html#pN</span>) to see its layers. \
<button id=\"expand-all\" type=\"button\">Expand all</button></p>\n<table id=\"packets\">\
<thead><tr><th class=\"num\">#</th><th class=\"num\">ms</th><th>dir</th><th>phase</th>\
<th class=\"num\">bytes</th><th>summary</th></tr></thead>\n<tbody>\n",
            self.packets_seen
        );
        for e in &self.events {
            let EventKind::Packet(p) = &e.kind else {
                continue;
            };
            let (dir, arrow) = match p.dir {
                Direction::Tx => ("tx", "→ sent"),
                Direction::Rx => ("rx", "← received"),
            };
            let _ = writeln!(
                h,
                "<tr class=\"pkt\" id=\"p{n}\" data-n=\"{n}\" tabindex=\"0\"><td class=\"num\">{n}</td>\
<td class=\"num\">{}</td><td class=\"dir-{dir}\">{arrow}</td><td>{}</td><td class=\"num\">{}</td>\
<td class=\"summary\">{}</td></tr>",
                ms(e.t_us),
                p.phase,
                p.len,
                esc(&p.summary),
                n = p.number,
            );
        }
        h.push_str("</tbody></table>\n");
        if self.packets_dropped > 0 {
            let _ = writeln!(
                h,
                "<p class=\"note\" id=\"packets-dropped\">{} more packets are not in this report \
(it keeps the first {MAX_PACKETS}); the pcapng has them all.</p>",
                self.packets_dropped
            );
        }
        h.push_str("</section>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let j = script_json(&vec!["</script><b>&"]);
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
                url: "https://a.test/".into(),
                headers: vec![(evil.into(), evil.into())],
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
}
