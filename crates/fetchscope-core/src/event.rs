//! The [`Event`] stream: everything a fetch does, in order, each with its own time.

use std::fmt;
use std::net::IpAddr;

use fetchscope_wire::{Direction, Dissection};
use serde::Serialize;

pub use crate::tcp_state::TcpState;
use crate::timing::{CurlTimings, HarTimings};

/// One thing that happened during a fetch, with the time it happened.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Microseconds since the fetch started, on the link's clock.
    pub t_us: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The phases of a fetch, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Finding the server's address (DNS).
    Resolve,
    /// The TCP three-way handshake.
    Connect,
    /// Opening a tunnel through an HTTP proxy (`CONNECT`).
    Proxy,
    /// The TLS handshake.
    Tls,
    /// Sending the HTTP request.
    Request,
    /// Receiving the HTTP response.
    Response,
    /// Closing TLS and TCP.
    Teardown,
    /// Finished.
    Done,
}

impl Phase {
    /// The phase's contract name (`resolve`, `connect`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::Proxy => "proxy",
            Phase::Tls => "tls",
            Phase::Request => "request",
            Phase::Response => "response",
            Phase::Teardown => "teardown",
            Phase::Done => "done",
        }
    }

    /// A heading for people ("DNS lookup", "TCP handshake", ...).
    pub fn title(self) -> &'static str {
        match self {
            Phase::Resolve => "DNS lookup",
            Phase::Connect => "TCP handshake",
            Phase::Proxy => "Proxy tunnel (CONNECT)",
            Phase::Tls => "TLS handshake",
            Phase::Request => "HTTP request",
            Phase::Response => "HTTP response",
            Phase::Teardown => "Connection teardown",
            Phase::Done => "Done",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an [`Event`] reports. Serialised with a `type` field as in the `--json` contract.
///
/// The packet variant is held inline although it is the largest (about 800 bytes): it is
/// by far the most common event, and a box would be a heap allocation for every packet
/// (issue 13). An event is moved a few times between the stack and a renderer.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum EventKind {
    /// A new phase began.
    Phase {
        /// The phase.
        phase: Phase,
    },
    /// A packet crossed the stack's device.
    Packet(PacketEvent),
    /// The TCP socket changed state.
    TcpState(TcpStateChange),
    /// A DNS query was sent, answered, retried or an answer ignored.
    Dns(DnsEvent),
    /// A TLS handshake stage was reached.
    Tls(TlsEvent),
    /// The HTTP request was sent.
    HttpRequest(HttpRequestEvent),
    /// The HTTP response head arrived.
    Http(HttpResponseEvent),
    /// A redirect is followed: a new exchange begins.
    Redirect(RedirectEvent),
    /// The fetch goes through an HTTP proxy: the tunnel asked for and the proxy's answer.
    Proxy(ProxyEvent),
    /// An explanation for people: what the machine decided and why.
    Note {
        /// The sentence.
        text: String,
    },
    /// The fetch finished.
    Done(Box<Summary>),
    /// The fetch failed.
    Error(ErrorEvent),
}

/// A packet event: direction, size, phase, decoded layers.
#[derive(Debug, Clone, Serialize)]
pub struct PacketEvent {
    /// Sent (`tx`) or received (`rx`) by the stack.
    pub dir: Direction,
    /// IP packet length in bytes.
    pub len: usize,
    /// The phase the fetch was in when the packet crossed the device.
    pub phase: Phase,
    /// One line for people.
    pub summary: fetchscope_wire::InlineText,
    /// Sequence number of the packet in this fetch, from 1.
    pub number: u64,
    /// The decoded layers.
    #[serde(flatten)]
    pub layers: Dissection,
    /// The packet's bytes, for pcap output (shared, never copied: the device's buffer).
    #[serde(skip)]
    pub raw: bytes::Bytes,
    /// What fault injection (`--loss`, `--delay`, ...) did to the packet; absent without
    /// it. A received packet marked `dropped` never reached the stack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<crate::fault::LinkFault>,
    /// The recovery the packet shows (retransmission after timeout, fast retransmission,
    /// out-of-order segment queued, duplicate ignored, ...), derived from the packets and
    /// the stack's known rules.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recovery: Vec<crate::recovery::Recovery>,
}

/// A TCP state change of the fetch's socket.
#[derive(Debug, Clone, Serialize)]
pub struct TcpStateChange {
    /// The old state (serialized as its RFC 793 name, e.g. `SYN-SENT`).
    pub from: TcpState,
    /// The new state.
    pub to: TcpState,
    /// Why, in a few words (e.g. "connect() called", "SYN-ACK received").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The change was inferred from a capture's packets (`fetchscope replay`), not read
    /// from a socket.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inferred: bool,
}

impl TcpStateChange {
    /// The change `from` → `to` in `stack`, with `cause`, or the one the transition
    /// itself says.
    pub fn new(
        from: TcpState,
        to: TcpState,
        cause: Option<&str>,
        stack: crate::tcp_state::Stack,
    ) -> TcpStateChange {
        let cause = cause.or_else(|| crate::tcp_state::transition_cause(from, to, stack));
        TcpStateChange {
            from,
            to,
            cause: cause.map(str::to_string),
            inferred: false,
        }
    }
}

/// A DNS step.
#[derive(Debug, Clone, Serialize)]
pub struct DnsEvent {
    /// `query`, `answer`, `retry`, `ignored` or `skipped`.
    pub event: String,
    /// The name asked for.
    pub name: String,
    /// Record type asked for (`A`, `AAAA`).
    pub qtype: String,
    /// The server asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<IpAddr>,
    /// The DNS message id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u16>,
    /// The response code of an answer (`NOERROR`, `NXDOMAIN`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    /// Addresses in an accepted answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<IpAddr>,
    /// Aliases followed (CNAME chain).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cnames: Vec<String>,
    /// Why (for `retry` and `ignored`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A TLS handshake stage.
#[derive(Debug, Clone, Serialize)]
pub struct TlsEvent {
    /// The stage, e.g. `client_hello_sent`, `server_hello`, `certificate_verified`.
    pub stage: String,
    /// Negotiated protocol version, once known (`TLSv1.3`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Negotiated cipher suite, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// Negotiated key exchange group, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Negotiated ALPN protocol, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    /// A sentence for people.
    pub detail: String,
    /// Certificate chain, for `certificate_verified`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateInfo>,
}

/// What a person wants to know about one certificate of the server's chain.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateInfo {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Start of validity (RFC 3339).
    pub not_before: String,
    /// End of validity (RFC 3339).
    pub not_after: String,
    /// DNS names and IP addresses in the subject alternative name extension.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

/// The HTTP request as sent.
#[derive(Debug, Clone, Serialize)]
pub struct HttpRequestEvent {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Request target, e.g. `/index.html?x=1`.
    pub target: String,
    /// The full URL (serialized as text).
    pub url: url::Url,
    /// Header fields in the order sent (secret values redacted unless `--show-secrets`).
    pub headers: Vec<(String, String)>,
    /// The body's length, when the request carries one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_bytes: Option<u64>,
}

/// The HTTP response head as received.
#[derive(Debug, Clone, Serialize)]
pub struct HttpResponseEvent {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Protocol version, e.g. `HTTP/1.1`.
    pub version: String,
    /// Header fields in the order received, names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl HttpResponseEvent {
    /// The event for a response head (header names lower-cased, secret values such as
    /// `Set-Cookie` redacted unless `show_secrets`).
    pub fn from_head(h: &crate::http::ResponseHead, show_secrets: bool) -> Self {
        let headers: Vec<(String, String)> = h
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        HttpResponseEvent {
            status: h.status,
            reason: h.reason.clone(),
            version: h.version.clone(),
            headers: crate::http::shown_headers(&headers, show_secrets),
        }
    }
}

/// What an HTTP progress report becomes in the event stream: the response head's event,
/// `Err(note)` for an interim (1xx) response, nothing for body progress. The userspace
/// fetch and the kernel twin share these words.
pub fn http_progress_event(
    p: &crate::http::HttpProgress,
    show_secrets: bool,
) -> Option<Result<HttpResponseEvent, String>> {
    match p {
        crate::http::HttpProgress::Interim(h) => Some(Err(format!(
            "interim response {} {} skipped, as requests does",
            h.status, h.reason
        ))),
        crate::http::HttpProgress::Head(h) => {
            Some(Ok(HttpResponseEvent::from_head(h, show_secrets)))
        }
        _ => None,
    }
}

/// A step of going through an HTTP proxy.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyEvent {
    /// `connect_sent` (the CONNECT request), `established` (2xx: the tunnel is open) or
    /// `refused` (any other answer).
    pub stage: String,
    /// The proxy's URL (without credentials).
    pub proxy: String,
    /// Where the setting came from: `--proxy`, `https_proxy`, `HTTPS_PROXY`, ...
    pub source: String,
    /// The tunnel's target, `host:port`.
    pub target: String,
    /// The request or response line (`CONNECT host:443 HTTP/1.1`, `HTTP/1.1 200 ...`).
    pub line: String,
    /// Header fields (secret values redacted unless `--show-secrets`).
    pub headers: Vec<(String, String)>,
    /// The proxy's status code, on an answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// A redirect being followed.
#[derive(Debug, Clone, Serialize)]
pub struct RedirectEvent {
    /// Which redirect this is (1 for the first).
    pub hop: usize,
    /// The redirect status (301, 302, 303, 307, 308).
    pub status: u16,
    /// The URL that answered with the redirect.
    pub from: String,
    /// The URL requested next.
    pub to: String,
    /// The method of the next request.
    pub method: String,
    /// Whether the open connection carries the next request (same host, kept alive).
    pub reuse: bool,
    /// The redirect leaves https for http: the rest of the fetch is not encrypted.
    pub downgrade: bool,
}

/// One HTTP request/response exchange of the fetch (one per redirect hop).
#[derive(Debug, Clone, Serialize)]
pub struct ExchangeRecord {
    /// The URL requested.
    pub url: String,
    /// The method.
    pub method: String,
    /// Request header fields as sent.
    pub request_headers: Vec<(String, String)>,
    /// Response status (0 if no response head arrived).
    pub status: u16,
    /// Response reason phrase.
    pub reason: String,
    /// Response protocol version.
    pub http_version: String,
    /// Response header fields as received, names lower-cased.
    pub response_headers: Vec<(String, String)>,
    /// When the exchange started (µs since the fetch started): DNS for a new connection,
    /// the request for a reused one.
    pub started_us: u64,
    /// Whether the exchange reused the previous exchange's connection.
    pub reused_connection: bool,
    /// The server address.
    pub remote: String,
    /// Body bytes after decoding.
    pub body_bytes: u64,
    /// Body bytes as framed on the wire.
    pub wire_body_bytes: u64,
    /// Per-phase durations of this exchange, like HAR (`-1` = not applicable).
    pub har: HarTimings,
    /// This exchange's own times from its start (a leg of a redirect chain).
    pub timings: crate::timing::LegTimings,
}

/// What the fetch achieved and how long each part took.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The URL fetched.
    pub url: String,
    /// Final HTTP status.
    pub status: u16,
    /// Decoded body length (after chunked and Content-Encoding decoding).
    pub body_bytes: u64,
    /// Body length as framed on the wire (after removing chunked framing, before decoding).
    pub wire_body_bytes: u64,
    /// SHA-256 of the decoded body, lower-case hex.
    pub body_sha256: String,
    /// The decoded body's first bytes (up to 8 KiB), for the text output; not in `--json`.
    #[serde(skip)]
    pub body_start: Vec<u8>,
    /// Cumulative times like curl's `-w` variables (the final exchange's, measured from
    /// the start of the whole fetch, as curl adds redirect steps together).
    pub timings: CurlTimings,
    /// Per-phase durations of the final exchange, like HAR's `timings`.
    pub har: HarTimings,
    /// The server address connected to.
    pub remote: String,
    /// The stack's own endpoint.
    pub local: String,
    /// The TCP state the socket ended in.
    pub final_tcp_state: String,
    /// Packets sent by the stack.
    pub packets_tx: u64,
    /// Packets received by the stack.
    pub packets_rx: u64,
    /// Negotiated TLS version, if TLS was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    /// Negotiated TLS cipher suite.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_suite: Option<String>,
    /// Redirects followed.
    pub redirects: usize,
    /// Every exchange, redirect hops first, the final one last.
    pub exchanges: Vec<ExchangeRecord>,
}

/// A failed fetch: which phase, what kind of failure, in one sentence.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorEvent {
    /// The phase that failed.
    pub phase: Phase,
    /// A short machine name, e.g. `nxdomain`, `refused`, `certificate`, `timeout`.
    pub kind: String,
    /// One sentence for people: what happened and what to do next.
    pub message: String,
}

impl Event {
    /// The phase this event belongs to, for events that carry one.
    pub fn phase(&self) -> Option<Phase> {
        match &self.kind {
            EventKind::Phase { phase } => Some(*phase),
            EventKind::Packet(p) => Some(p.phase),
            EventKind::Error(e) => Some(e.phase),
            _ => None,
        }
    }

    /// The time as milliseconds, for display.
    pub fn t_ms(&self) -> f64 {
        self.t_us as f64 / 1000.0
    }
}
