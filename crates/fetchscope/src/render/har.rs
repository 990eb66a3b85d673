//! `--har FILE`: the fetch as an HTTP Archive (HAR 1.2), for browser devtools and HAR
//! viewers.
//!
//! One entry per HTTP exchange: a fetch that follows redirects has one entry per hop, in
//! order, the final response last. Everything comes from the event stream:
//!
//! - `request`: the `http_request` event (method, URL, header fields as sent; the client
//!   always speaks HTTP/1.1 and sends no body, so `bodySize` is 0 and `headersSize` is the
//!   exact size of the request head);
//! - `response`: the `http` event (status, reason, version, header fields as received;
//!   `headersSize` is the size of the head rebuilt as `Name: value` lines, exact for
//!   servers that write headers that way, as nginx does); `content.size` and `bodySize`
//!   come from the `done` event (decoded and wire body bytes);
//! - `timings`: the `done` event's `har` values (per exchange from its `exchanges`), so
//!   they equal what the text output and `--json` report; `connect` includes `ssl`, as
//!   HAR defines. `time` is the sum of the non-negative timings other than `ssl`.
//! - `serverIPAddress` and `connection` (the client's TCP port) from the packets.
//!
//! When the fetch fails, the file is still written: exchanges whose request was sent are
//! kept, a missing response has status 0, and the timings are taken from the events that
//! did happen (times of the DNS answer, ESTABLISHED, handshake completion, request,
//! response head and last packet received); the error goes in the entry's `comment`.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use fetchscope_core::event::{ExchangeRecord, HttpRequestEvent, HttpResponseEvent};
use fetchscope_core::timing::HarTimings;
use fetchscope_core::{Event, EventKind, Summary, TcpState};
use fetchscope_wire::{Direction, TcpFlags};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The HTTP version the client speaks.
const CLIENT_HTTP_VERSION: &str = "HTTP/1.1";

/// Collects the events of one fetch and writes them as HAR 1.2.
#[derive(Debug)]
pub struct HarRecorder {
    epoch: SystemTime,
    comment: String,
    entries: Vec<Draft>,
    /// When the current exchange began (µs): 0, or the time of the last redirect.
    exchange_start_us: u64,
    /// Marks of the current exchange, for timings when there is no `done` event.
    marks: Marks,
    /// The client port of the current TCP connection.
    connection: Option<u16>,
    /// The server address of the current TCP connection.
    server: Option<IpAddr>,
    summary: Option<Summary>,
    error: Option<String>,
    last_t_us: u64,
}

/// Moments of the current exchange seen in the events (µs since the start).
#[derive(Debug, Clone, Copy, Default)]
struct Marks {
    dns: Option<u64>,
    established: Option<u64>,
    tls_done: Option<u64>,
}

/// One exchange as it is being recorded.
#[derive(Debug, Clone)]
struct Draft {
    started_us: u64,
    marks: Marks,
    request: HttpRequestEvent,
    request_us: u64,
    response: Option<(HttpResponseEvent, u64)>,
    last_rx_us: Option<u64>,
    server: Option<IpAddr>,
    connection: Option<u16>,
}

impl HarRecorder {
    /// A recorder; packet times are `epoch` + the event time. `comment` describes where
    /// the fetch ran (it becomes `log.comment`).
    pub fn new(epoch: SystemTime, comment: impl Into<String>) -> Self {
        HarRecorder {
            epoch,
            comment: comment.into(),
            entries: Vec::new(),
            exchange_start_us: 0,
            marks: Marks::default(),
            connection: None,
            server: None,
            summary: None,
            error: None,
            last_t_us: 0,
        }
    }

    /// Takes one event.
    pub fn event(&mut self, e: &Event) {
        self.last_t_us = self.last_t_us.max(e.t_us);
        match &e.kind {
            EventKind::Packet(p) => {
                if let (Some(tcp), Some(ip)) = (&p.layers.tcp, &p.layers.ip) {
                    if p.dir == Direction::Tx && tcp.flags == TcpFlags::SYN {
                        self.connection = Some(tcp.src_port);
                        self.server = Some(ip.dst);
                    }
                    if p.dir == Direction::Rx
                        && tcp.payload_len > 0
                        && let Some(d) = self.entries.last_mut()
                        && d.connection == Some(tcp.dst_port)
                    {
                        d.last_rx_us = Some(e.t_us);
                    }
                }
            }
            EventKind::Dns(d) if d.event == "answer" => {
                self.marks.dns.get_or_insert(e.t_us);
            }
            EventKind::Dns(d) if d.event == "skipped" => {
                self.marks.dns.get_or_insert(e.t_us);
            }
            EventKind::TcpState(s) if s.to == TcpState::Established => {
                self.marks.established.get_or_insert(e.t_us);
            }
            EventKind::Tls(t) if t.stage == "handshake_complete" => {
                self.marks.tls_done.get_or_insert(e.t_us);
            }
            EventKind::HttpRequest(r) => {
                self.entries.push(Draft {
                    started_us: self.exchange_start_us,
                    marks: self.marks,
                    request: r.clone(),
                    request_us: e.t_us,
                    response: None,
                    last_rx_us: None,
                    server: self.server,
                    connection: self.connection,
                });
            }
            EventKind::Http(h) => {
                if let Some(d) = self.entries.last_mut()
                    && d.response.is_none()
                {
                    d.response = Some((h.clone(), e.t_us));
                }
            }
            EventKind::Redirect(_) => {
                self.exchange_start_us = e.t_us;
                self.marks = Marks::default();
            }
            EventKind::Done(s) => self.summary = Some((**s).clone()),
            EventKind::Error(err) => {
                self.error = Some(format!("{} failed: {}", err.phase, err.message));
            }
            _ => {}
        }
    }

    /// The HAR document for what was recorded.
    pub fn to_har(&self) -> Har {
        let exchanges = self.records();
        let n = self.entries.len();
        let mut entries = Vec::with_capacity(n);
        for (i, d) in self.entries.iter().enumerate() {
            let last = i + 1 == n;
            let record = exchanges.and_then(|x| x.get(i));
            let timings = match (record, &self.summary) {
                (Some(r), _) => Timings::from_har(&r.har),
                (None, Some(s)) if last => Timings::from_har(&s.har),
                _ => self.fallback_timings(d),
            };
            let (body, wire) = match (record, &self.summary) {
                (Some(r), _) => (Some(r.body_bytes), Some(r.wire_body_bytes)),
                (None, Some(s)) if last => (Some(s.body_bytes), Some(s.wire_body_bytes)),
                _ => (None, None),
            };
            let comment = if last && self.summary.is_none() {
                self.error.clone()
            } else {
                None
            };
            let started_us = record.map_or(d.started_us, |r| r.started_us);
            entries.push(self.entry(d, started_us, timings, body, wire, comment));
        }
        let started = self.time_of(0);
        let on_load = self
            .summary
            .as_ref()
            .map(|s| round3(s.timings.total_ms))
            .unwrap_or(-1.0);
        let pages = self
            .entries
            .first()
            .map(|d| {
                vec![Page {
                    started_date_time: started.clone(),
                    id: "page_1".into(),
                    title: d.request.url.to_string(),
                    page_timings: PageTimings {
                        on_content_load: -1.0,
                        on_load,
                    },
                }]
            })
            .unwrap_or_default();
        Har {
            log: Log {
                version: "1.2".into(),
                creator: Creator {
                    name: "fetchscope".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                },
                pages,
                entries,
                comment: self.comment.clone(),
            },
        }
    }

    /// When each entry's exchange started (µs since the fetch started), in entry order.
    pub fn entry_starts_us(&self) -> Vec<u64> {
        let records = self.records();
        self.entries
            .iter()
            .enumerate()
            .map(|(i, d)| {
                records
                    .and_then(|x| x.get(i))
                    .map_or(d.started_us, |r| r.started_us)
            })
            .collect()
    }

    /// The `done` event's per-exchange records, when they match the recorded exchanges.
    fn records(&self) -> Option<&[ExchangeRecord]> {
        self.summary
            .as_ref()
            .map(|s| s.exchanges.as_slice())
            .filter(|x| x.len() == self.entries.len())
    }

    /// The HAR document as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain structs of strings and numbers cannot fail.
        serde_json::to_string_pretty(&self.to_har()).unwrap_or_default() + "\n"
    }

    fn time_of(&self, t_us: u64) -> String {
        let t = self.epoch + Duration::from_micros(t_us);
        OffsetDateTime::from(t)
            .format(&Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
    }

    /// Timings from the events alone (a fetch that failed before its `done` event).
    fn fallback_timings(&self, d: &Draft) -> Timings {
        let ms = |a: u64, b: u64| round3(b.saturating_sub(a) as f64 / 1000.0);
        let start = d.started_us;
        let dns_end = d.marks.dns.unwrap_or(start);
        let tls = d.request.url.scheme() == "https";
        let connect_end = if tls {
            d.marks.tls_done
        } else {
            d.marks.established
        };
        let (dns, connect, ssl) = match d.marks.established {
            None => (-1.0, -1.0, -1.0),
            Some(est) => (
                d.marks.dns.map_or(0.0, |t| ms(start, t)),
                connect_end.map_or(-1.0, |t| ms(dns_end, t)),
                match (tls, d.marks.tls_done) {
                    (true, Some(t)) => ms(est, t),
                    _ => -1.0,
                },
            ),
        };
        let end = self.last_t_us;
        let (wait, receive) = match &d.response {
            Some((_, head_us)) => (
                ms(d.request_us, *head_us),
                ms(*head_us, d.last_rx_us.unwrap_or(*head_us).max(*head_us)),
            ),
            None => (ms(d.request_us, end), 0.0),
        };
        Timings {
            blocked: 0.0,
            dns,
            connect,
            send: 0.0,
            wait,
            receive,
            ssl,
        }
    }

    fn entry(
        &self,
        d: &Draft,
        started_us: u64,
        timings: Timings,
        body: Option<u64>,
        wire: Option<u64>,
        comment: Option<String>,
    ) -> Entry {
        let req = &d.request;
        let request = Request {
            method: req.method.clone(),
            url: req.url.to_string(),
            http_version: CLIENT_HTTP_VERSION.into(),
            cookies: request_cookies(&req.headers),
            headers: name_values(&req.headers),
            query_string: query_string(&req.url),
            headers_size: head_size(
                &format!("{} {} {CLIENT_HTTP_VERSION}", req.method, req.target),
                &req.headers,
            ),
            body_size: 0,
        };
        let response = match &d.response {
            Some((r, _)) => {
                let header = |name: &str| {
                    r.headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone())
                };
                let size = body.map_or(-1, |b| b as i64);
                let wire_size = wire.map_or(-1, |b| b as i64);
                Response {
                    status: r.status,
                    status_text: r.reason.clone(),
                    http_version: r.version.clone(),
                    cookies: response_cookies(&r.headers),
                    headers: name_values(&r.headers),
                    content: Content {
                        size: size.max(0),
                        compression: (size > wire_size && wire_size >= 0)
                            .then_some(size - wire_size),
                        mime_type: header("content-type").unwrap_or_else(|| "x-unknown".into()),
                    },
                    redirect_url: header("location").unwrap_or_default(),
                    headers_size: head_size(
                        &format!("{} {} {}", r.version, r.status, r.reason),
                        &r.headers,
                    ),
                    body_size: wire_size,
                }
            }
            None => Response {
                status: 0,
                status_text: String::new(),
                http_version: String::new(),
                cookies: Vec::new(),
                headers: Vec::new(),
                content: Content {
                    size: 0,
                    compression: None,
                    mime_type: "x-unknown".into(),
                },
                redirect_url: String::new(),
                headers_size: -1,
                body_size: -1,
            },
        };
        Entry {
            pageref: "page_1".into(),
            started_date_time: self.time_of(started_us),
            time: timings.total(),
            request,
            response,
            cache: Cache {},
            timings,
            server_ip_address: d.server.map(|a| a.to_string()),
            connection: d.connection.map(|p| p.to_string()),
            comment,
        }
    }
}

/// Rounds to microseconds (three decimals of a millisecond).
fn round3(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// The size of a message head: start line, `Name: value` lines, blank line.
fn head_size(start_line: &str, headers: &[(String, String)]) -> i64 {
    let fields: usize = headers.iter().map(|(n, v)| n.len() + 2 + v.len() + 2).sum();
    (start_line.len() + 2 + fields + 2) as i64
}

fn name_values(headers: &[(String, String)]) -> Vec<NameValue> {
    headers
        .iter()
        .map(|(n, v)| NameValue {
            name: n.clone(),
            value: v.clone(),
        })
        .collect()
}

/// The URL's query as decoded name/value pairs.
fn query_string(url: &url::Url) -> Vec<NameValue> {
    url.query_pairs()
        .map(|(n, v)| NameValue {
            name: n.into_owned(),
            value: v.into_owned(),
        })
        .collect()
}

/// Cookies of the `Cookie` request header(s): `a=1; b=2`.
fn request_cookies(headers: &[(String, String)]) -> Vec<Cookie> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            Some(Cookie {
                name: name.trim().to_string(),
                value: value.trim().to_string(),
                ..Cookie::default()
            })
        })
        .collect()
}

/// Cookies set by `Set-Cookie` response headers, with their attributes.
fn response_cookies(headers: &[(String, String)]) -> Vec<Cookie> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| {
            let mut parts = v.split(';');
            let (name, value) = parts.next()?.trim().split_once('=')?;
            let mut c = Cookie {
                name: name.trim().to_string(),
                value: value.trim().to_string(),
                ..Cookie::default()
            };
            for attr in parts {
                let (k, val) = attr.trim().split_once('=').unwrap_or((attr.trim(), ""));
                match k.to_ascii_lowercase().as_str() {
                    "path" => c.path = Some(val.to_string()),
                    "domain" => c.domain = Some(val.to_string()),
                    "expires" => c.expires = Some(val.to_string()),
                    "httponly" => c.http_only = Some(true),
                    "secure" => c.secure = Some(true),
                    _ => {}
                }
            }
            Some(c)
        })
        .collect()
}

/// A HAR document (`{"log": ...}`).
#[derive(Debug, Clone, Serialize)]
pub struct Har {
    /// The log.
    pub log: Log,
}

/// HAR `log`.
#[derive(Debug, Clone, Serialize)]
pub struct Log {
    /// Always `1.2`.
    pub version: String,
    /// fetchscope and its version.
    pub creator: Creator,
    /// One page: the fetch.
    pub pages: Vec<Page>,
    /// One entry per HTTP exchange.
    pub entries: Vec<Entry>,
    /// Where the fetch ran.
    pub comment: String,
}

/// HAR `creator`.
#[derive(Debug, Clone, Serialize)]
pub struct Creator {
    /// `fetchscope`.
    pub name: String,
    /// The version.
    pub version: String,
}

/// HAR `page`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    /// When the fetch started.
    pub started_date_time: String,
    /// `page_1`.
    pub id: String,
    /// The URL first requested.
    pub title: String,
    /// Page timings.
    pub page_timings: PageTimings,
}

/// HAR `pageTimings`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageTimings {
    /// Not applicable (-1).
    pub on_content_load: f64,
    /// The whole fetch (curl's `time_total`), -1 if it failed.
    pub on_load: f64,
}

/// HAR `entry`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// `page_1`.
    pub pageref: String,
    /// When the exchange started (its DNS lookup, or the redirect for a reused connection).
    pub started_date_time: String,
    /// Sum of the non-negative timings except `ssl` (which `connect` includes).
    pub time: f64,
    /// The request.
    pub request: Request,
    /// The response.
    pub response: Response,
    /// No cache is used.
    pub cache: Cache,
    /// Per-phase durations.
    pub timings: Timings,
    /// The server's IP address.
    #[serde(rename = "serverIPAddress", skip_serializing_if = "Option::is_none")]
    pub server_ip_address: Option<String>,
    /// The client's TCP port, naming the connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// Why the exchange is incomplete, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// HAR `request`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// `GET`.
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// `HTTP/1.1`.
    pub http_version: String,
    /// From the `Cookie` header.
    pub cookies: Vec<Cookie>,
    /// Header fields as sent.
    pub headers: Vec<NameValue>,
    /// The URL's query, decoded.
    pub query_string: Vec<NameValue>,
    /// Bytes of the request head.
    pub headers_size: i64,
    /// Bytes of the request body (0: GET).
    pub body_size: i64,
}

/// HAR `response`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// Status code (0 when no response arrived).
    pub status: u16,
    /// Reason phrase.
    pub status_text: String,
    /// `HTTP/1.1`.
    pub http_version: String,
    /// From `Set-Cookie` headers.
    pub cookies: Vec<Cookie>,
    /// Header fields as received.
    pub headers: Vec<NameValue>,
    /// The body.
    pub content: Content,
    /// The `Location` header.
    #[serde(rename = "redirectURL")]
    pub redirect_url: String,
    /// Bytes of the response head.
    pub headers_size: i64,
    /// Body bytes as transferred (after chunked framing, before decoding); -1 unknown.
    pub body_size: i64,
}

/// HAR `content`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    /// Decoded body bytes.
    pub size: i64,
    /// Bytes saved by Content-Encoding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<i64>,
    /// The `Content-Type`, or `x-unknown`.
    pub mime_type: String,
}

/// HAR `cache` (empty: no cache is used).
#[derive(Debug, Clone, Serialize)]
pub struct Cache {}

/// HAR `timings`, milliseconds (`-1`: does not apply).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timings {
    /// Queueing before the fetch (0).
    pub blocked: f64,
    /// DNS.
    pub dns: f64,
    /// TCP connect, including `ssl`.
    pub connect: f64,
    /// Sending the request.
    pub send: f64,
    /// Waiting for the first response byte.
    pub wait: f64,
    /// Receiving the response.
    pub receive: f64,
    /// TLS handshake.
    pub ssl: f64,
}

impl Timings {
    /// From the flow's HAR timings; `send`, `wait` and `receive` must not be negative in
    /// HAR, so a phase that did not happen counts 0 there.
    fn from_har(h: &HarTimings) -> Self {
        Timings {
            blocked: h.blocked,
            dns: h.dns,
            connect: h.connect,
            send: h.send.max(0.0),
            wait: h.wait.max(0.0),
            receive: h.receive.max(0.0),
            ssl: h.ssl,
        }
    }

    /// The entry's `time`.
    fn total(&self) -> f64 {
        let t = [
            self.blocked,
            self.dns,
            self.connect,
            self.send,
            self.wait,
            self.receive,
        ];
        round3(t.iter().filter(|v| **v >= 0.0).sum())
    }
}

/// A HAR name/value pair (headers, query string).
#[derive(Debug, Clone, Serialize)]
pub struct NameValue {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// A HAR cookie.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cookie {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
    /// `Path` attribute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `Domain` attribute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// `Expires` attribute, as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `HttpOnly`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_only: Option<bool>,
    /// `Secure`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_size_counts_crlf() {
        let h = vec![("Host".to_string(), "a".to_string())];
        // "GET / HTTP/1.1\r\n" 16 + "Host: a\r\n" 9 + "\r\n" 2
        assert_eq!(head_size("GET / HTTP/1.1", &h), 27);
    }

    #[test]
    fn cookies_are_parsed_with_attributes() {
        let h = vec![(
            "set-cookie".to_string(),
            "id=7; Path=/; HttpOnly; Secure; Domain=example.test".to_string(),
        )];
        let c = &response_cookies(&h)[0];
        assert_eq!((c.name.as_str(), c.value.as_str()), ("id", "7"));
        assert_eq!(c.path.as_deref(), Some("/"));
        assert_eq!(c.domain.as_deref(), Some("example.test"));
        assert_eq!((c.http_only, c.secure), (Some(true), Some(true)));
        let r = request_cookies(&[("Cookie".into(), "a=1; b=2".into())]);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].value, "2");
    }

    #[test]
    fn query_strings_are_decoded() {
        let q = query_string(&url::Url::parse("https://a.test/x?q=a%20b&n=1").unwrap());
        assert_eq!(q.len(), 2);
        assert_eq!((q[0].name.as_str(), q[0].value.as_str()), ("q", "a b"));
    }

    fn ev(t_ms: u64, kind: EventKind) -> Event {
        Event {
            t_us: t_ms * 1000,
            kind,
        }
    }

    /// A fetch that followed one redirect on the same connection, then timed out while
    /// receiving the second body: no `done` event, so the timings come from the events.
    #[test]
    fn a_failed_fetch_keeps_every_exchange_with_timings_from_the_events() {
        use fetchscope_core::Phase;
        use fetchscope_core::event::{
            DnsEvent, ErrorEvent, RedirectEvent, TcpStateChange, TlsEvent,
        };
        let request = |url: &str, target: &str| HttpRequestEvent {
            method: "GET".into(),
            target: target.into(),
            url: url::Url::parse(url).unwrap(),
            headers: vec![("Host".into(), "a.test".into())],
            body_bytes: None,
        };
        let response = |status: u16| HttpResponseEvent {
            status,
            reason: "X".into(),
            version: "HTTP/1.1".into(),
            headers: vec![("location".into(), "/b".into())],
        };
        let events = vec![
            ev(
                10,
                EventKind::Dns(DnsEvent {
                    event: "answer".into(),
                    name: "a.test".into(),
                    qtype: "A".into(),
                    server: None,
                    id: None,
                    rcode: None,
                    addresses: Vec::new(),
                    cnames: Vec::new(),
                    reason: None,
                }),
            ),
            ev(
                20,
                EventKind::TcpState(TcpStateChange {
                    from: TcpState::SynSent,
                    to: TcpState::Established,
                    cause: None,
                    inferred: false,
                }),
            ),
            ev(
                30,
                EventKind::Tls(TlsEvent {
                    stage: "handshake_complete".into(),
                    version: None,
                    suite: None,
                    group: None,
                    alpn: None,
                    detail: String::new(),
                    certificates: Vec::new(),
                }),
            ),
            ev(
                31,
                EventKind::HttpRequest(request("https://a.test/a?x=1", "/a?x=1")),
            ),
            ev(41, EventKind::Http(response(302))),
            ev(
                41,
                EventKind::Redirect(RedirectEvent {
                    hop: 1,
                    status: 302,
                    from: "https://a.test/a?x=1".into(),
                    to: "https://a.test/b".into(),
                    method: "GET".into(),
                    reuse: true,
                    downgrade: false,
                }),
            ),
            ev(
                42,
                EventKind::HttpRequest(request("https://a.test/b", "/b")),
            ),
            ev(52, EventKind::Http(response(200))),
            ev(
                60,
                EventKind::Error(ErrorEvent {
                    phase: Phase::Response,
                    kind: "timeout".into(),
                    message: "timed out".into(),
                }),
            ),
        ];
        let mut r = HarRecorder::new(SystemTime::UNIX_EPOCH, "test");
        for e in &events {
            r.event(e);
        }
        let har = r.to_har();
        let e = &har.log.entries;
        assert_eq!(e.len(), 2);
        let t0 = e[0].timings;
        assert_eq!(
            (t0.dns, t0.connect, t0.ssl, t0.wait),
            (10.0, 20.0, 10.0, 10.0)
        );
        assert_eq!(e[0].response.redirect_url, "/b");
        assert_eq!(e[0].request.query_string[0].value, "1");
        assert!(e[0].comment.is_none());
        let t1 = e[1].timings;
        assert_eq!(
            (t1.dns, t1.connect, t1.ssl, t1.wait),
            (-1.0, -1.0, -1.0, 10.0)
        );
        assert_eq!(e[1].started_date_time, "1970-01-01T00:00:00.041Z");
        assert_eq!(e[1].response.status, 200);
        assert!(
            e[1].comment
                .as_deref()
                .is_some_and(|c| c.contains("timed out"))
        );
        assert_eq!(har.log.pages[0].page_timings.on_load, -1.0);
    }

    #[test]
    fn time_skips_ssl_and_not_applicable_phases() {
        let t = Timings {
            blocked: 0.0,
            dns: -1.0,
            connect: 20.0,
            send: 1.0,
            wait: 10.0,
            receive: 2.5,
            ssl: 10.0,
        };
        assert_eq!(t.total(), 33.5);
    }
}
