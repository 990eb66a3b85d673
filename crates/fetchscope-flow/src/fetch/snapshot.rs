//! [`Snapshot`]: the whole state of a fetch between two events, for `fetchscope step` and
//! for library users — what smoltcp exposes, what fetchscope derives from the packets
//! (kept apart and labelled), TLS and HTTP progress, and one sentence on what happens next.

use fetchscope_net::Link;
use serde::Serialize;
use smoltcp::socket::tcp;

use super::Fetch;
use crate::event::Phase;

/// The state of a fetch at a pause.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Microseconds since the fetch started.
    pub t_us: u64,
    /// The phase the fetch is in.
    pub phase: Phase,
    /// Whether the clock stands still while nobody pulls events (the built-in lab).
    pub clock_paused: bool,
    /// The DNS lookup, while one runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<String>,
    /// The TCP connection, once there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpSnapshot>,
    /// The TLS session, once there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSnapshot>,
    /// The HTTP exchange, once the request was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSnapshot>,
    /// What happens next, in one sentence.
    pub next: String,
}

/// The TCP connection: what smoltcp's socket exposes, and what the packets say.
#[derive(Debug, Clone, Serialize)]
pub struct TcpSnapshot {
    /// Exposed by smoltcp.
    pub smoltcp: TcpExposed,
    /// Derived by fetchscope from the connection's packets.
    pub derived: TcpDerived,
}

/// What smoltcp's `tcp::Socket` exposes.
#[derive(Debug, Clone, Serialize)]
pub struct TcpExposed {
    /// The RFC 793 state.
    pub state: String,
    /// Our endpoint.
    pub local: String,
    /// The server's endpoint.
    pub remote: String,
    /// Bytes queued for sending (not yet acknowledged).
    pub send_queue: usize,
    /// Bytes received and not yet read by fetchscope.
    pub recv_queue: usize,
    /// Size of the send buffer.
    pub send_capacity: usize,
    /// Size of the receive buffer.
    pub recv_capacity: usize,
    /// Nagle's algorithm (off, like requests' TCP_NODELAY).
    pub nagle: bool,
    /// Delayed-ACK timeout in milliseconds.
    pub ack_delay_ms: Option<u64>,
    /// Milliseconds until the interface wants to be polled again (a timer: retransmission,
    /// delayed ACK, TIME-WAIT), if it has one; `0` means now.
    pub timer_ms: Option<f64>,
}

/// The sequence-space view derived from the packets (smoltcp keeps these private).
#[derive(Debug, Clone, Serialize)]
pub struct TcpDerived {
    /// SND.UNA relative / absolute.
    pub snd_una: Option<(u32, u32)>,
    /// SND.NXT relative / absolute.
    pub snd_nxt: Option<(u32, u32)>,
    /// RCV.NXT relative / absolute.
    pub rcv_nxt: Option<(u32, u32)>,
    /// The peer's advertised window (scaled).
    pub snd_wnd: Option<u32>,
    /// Our advertised window (scaled).
    pub rcv_wnd: Option<u32>,
    /// Bytes in flight: sent, not yet acknowledged.
    pub in_flight: u32,
    /// MSS we announced and the peer announced.
    pub mss: (Option<u16>, Option<u16>),
    /// Window scale shifts we and the peer announced.
    pub window_scale: (Option<u8>, Option<u8>),
    /// Our segments that repeated data, and the peer's.
    pub retransmissions: (u32, u32),
    /// Whether a retransmission timer runs (data or SYN/FIN in flight) and when smoltcp
    /// will look at it next.
    pub retransmission_timer: Option<String>,
}

/// The TLS session.
#[derive(Debug, Clone, Serialize)]
pub struct TlsSnapshot {
    /// Where the handshake is.
    pub stage: String,
    /// Negotiated version.
    pub version: Option<String>,
    /// Negotiated cipher suite.
    pub suite: Option<String>,
    /// Negotiated group.
    pub group: Option<String>,
    /// Negotiated ALPN protocol.
    pub alpn: Option<String>,
    /// What the handshake waits for.
    pub waiting_for: Option<String>,
}

/// The HTTP exchange.
#[derive(Debug, Clone, Serialize)]
pub struct HttpSnapshot {
    /// The request line.
    pub request: Option<String>,
    /// The response status, once the head arrived.
    pub status: Option<u16>,
    /// Decoded body bytes so far.
    pub body_bytes: u64,
    /// Body bytes on the wire so far.
    pub wire_body_bytes: u64,
    /// Whether the response is complete.
    pub complete: bool,
    /// Redirects followed so far.
    pub redirects: usize,
}

fn rel_abs(rel: Option<u32>, abs: Option<u32>) -> Option<(u32, u32)> {
    Some((rel?, abs?))
}

/// The state as the events so far tell it: the phase, the TCP state and the TLS stage as
/// of one event. A step of the machine can produce several events (a packet, the state
/// change it caused, the reply); a pause after the first of them shows this, not the
/// state at the end of the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AsOf {
    pub t_us: u64,
    pub phase: Phase,
    pub tcp: Option<tcp::State>,
    /// The last TLS stage reported (`client_hello_sent`, `server_hello`, ...).
    pub tls_stage: Option<String>,
}

impl AsOf {
    /// Takes in one event.
    pub fn event(&mut self, e: &crate::event::Event) {
        use crate::event::EventKind;
        self.t_us = e.t_us;
        match &e.kind {
            EventKind::Phase { phase } => self.phase = *phase,
            EventKind::Packet(p) => self.phase = p.phase,
            EventKind::TcpState(c) => self.tcp = parse_state(&c.to),
            EventKind::Tls(t) => self.tls_stage = Some(t.stage.clone()),
            EventKind::Redirect(_) => self.tls_stage = None,
            _ => {}
        }
    }
}

/// The smoltcp state a `tcp_state` event names.
fn parse_state(s: &str) -> Option<tcp::State> {
    use tcp::State::*;
    [
        Closed,
        Listen,
        SynSent,
        SynReceived,
        Established,
        FinWait1,
        FinWait2,
        CloseWait,
        Closing,
        LastAck,
        TimeWait,
    ]
    .into_iter()
    .find(|st| st.to_string() == s)
}

/// A TLS stage name in words, and what the handshake waits for then.
fn tls_stage_words(stage: Option<&str>) -> (&'static str, Option<&'static str>) {
    match stage {
        None | Some("client_hello_sent") => ("ClientHello sent", Some("the ServerHello")),
        Some("server_hello") => (
            "ServerHello received",
            Some("the rest of the server's flight (Certificate, CertificateVerify, Finished)"),
        ),
        Some("certificate_verified" | "certificate_verify_ok" | "server_finished") => {
            ("server's flight verified", Some("our Finished to be sent"))
        }
        Some("handshake_complete" | "session_ticket") => ("established", None),
        Some("close_notify_sent") => ("closing", Some("the server's close_notify")),
        Some("close_notify_received") => ("closed by the server", None),
        Some(_) => ("in progress", None),
    }
}

impl<L: Link> Fetch<L> {
    /// The whole state: TCP (exposed and derived), TLS, HTTP, and what comes next — as of
    /// the last event [`Fetch::next_event`] returned (smoltcp's queues and timer as of the
    /// end of the machine's step that produced it).
    pub fn snapshot(&mut self) -> Snapshot {
        if let Some(s) = &self.last_snapshot {
            return s.clone();
        }
        let as_of = self.live_as_of();
        self.snapshot_as_of(&as_of)
    }

    /// The state as the machine itself has it now (the end of the last step).
    pub(super) fn live_as_of(&self) -> AsOf {
        AsOf {
            t_us: self.t_us(self.now()),
            phase: self.phase,
            tcp: self.conn.as_ref().map(|c| c.state),
            tls_stage: self.conn.as_ref().and_then(|c| c.tls.as_ref()).map(|t| {
                if t.peer_closed() {
                    "close_notify_received"
                } else if t.close_queued() {
                    "close_notify_sent"
                } else if t.is_complete() {
                    "handshake_complete"
                } else if t.version().is_some() {
                    "server_hello"
                } else {
                    "client_hello_sent"
                }
                .to_string()
            }),
        }
    }

    /// The state as of `as_of`, with smoltcp's live queues and timer.
    pub(super) fn snapshot_as_of(&mut self, as_of: &AsOf) -> Snapshot {
        let now = self.now();
        let poll_at = self.iface.poll_at(now, &self.sockets);
        let timer_ms = poll_at.map(|t| {
            if t > now {
                (t - now).total_micros() as f64 / 1000.0
            } else {
                0.0
            }
        });
        // No TCP view before the events reached connect() (later in the same step).
        let tcp = self.conn.as_ref().filter(|_| as_of.tcp.is_some()).map(|c| {
            let sock = self.sockets.get::<tcp::Socket>(c.tcp);
            let k = &c.track;
            let in_flight = k.in_flight();
            TcpSnapshot {
                smoltcp: TcpExposed {
                    state: as_of.tcp.unwrap_or(c.state).to_string(),
                    local: sock
                        .local_endpoint()
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| format!("*:{}", c.local_port)),
                    remote: c.remote.to_string(),
                    send_queue: sock.send_queue(),
                    recv_queue: sock.recv_queue(),
                    send_capacity: sock.send_capacity(),
                    recv_capacity: sock.recv_capacity(),
                    nagle: sock.nagle_enabled(),
                    ack_delay_ms: sock.ack_delay().map(|d| d.total_millis()),
                    timer_ms,
                },
                derived: TcpDerived {
                    snd_una: rel_abs(k.rel_local(k.snd_una), k.snd_una),
                    snd_nxt: rel_abs(k.rel_local(k.snd_nxt), k.snd_nxt),
                    rcv_nxt: rel_abs(k.rel_remote(k.rcv_nxt), k.rcv_nxt),
                    snd_wnd: k.snd_wnd,
                    rcv_wnd: k.rcv_wnd,
                    in_flight,
                    mss: (k.our_mss, k.peer_mss),
                    window_scale: (k.our_ws, k.peer_ws),
                    retransmissions: (k.retransmissions_tx, k.retransmissions_rx),
                    retransmission_timer: (in_flight > 0).then(|| match timer_ms {
                        Some(ms) => format!(
                            "running: {in_flight} byte(s) unacknowledged; smoltcp looks at its timers again in {ms:.1} ms"
                        ),
                        None => format!("running: {in_flight} byte(s) unacknowledged"),
                    }),
                },
            }
        });
        let tls = self.conn.as_ref().and_then(|c| c.tls.as_ref()).map(|t| {
            let (stage, waiting) = tls_stage_words(as_of.tls_stage.as_deref());
            TlsSnapshot {
                stage: stage.into(),
                version: t.version(),
                suite: t.suite(),
                group: t.group(),
                alpn: t.alpn(),
                waiting_for: waiting.map(str::to_string),
            }
        });
        let http = self.exchange.request.as_ref().map(|r| HttpSnapshot {
            request: Some(format!("{} HTTP/1.1", r.start_line())),
            status: match self.exchange.status() {
                0 => None,
                s => Some(s),
            },
            body_bytes: self.exchange.reader_decoded_bytes(),
            wire_body_bytes: self.exchange.wire_body_bytes(),
            complete: self
                .exchange
                .reader
                .as_ref()
                .is_some_and(crate::http::ResponseReader::is_complete),
            redirects: self.redirects,
        });
        let dns = self.dns.as_ref().map(|d| d.describe());
        let next = self.next_sentence(as_of, timer_ms);
        Snapshot {
            t_us: as_of.t_us,
            phase: as_of.phase,
            clock_paused: self.dev.link().is_virtual(),
            dns,
            tcp,
            tls,
            http,
            next,
        }
    }

    /// One sentence on what happens next, from the phase and the TCP state.
    fn next_sentence(&self, as_of: &AsOf, timer_ms: Option<f64>) -> String {
        let timer = |what: &str| match timer_ms {
            Some(ms) if ms > 0.0 => format!("; {what} in {:.1} s if nothing arrives", ms / 1000.0),
            _ => String::new(),
        };
        if self.finished {
            return "nothing: the fetch is over".into();
        }
        match (as_of.phase, as_of.tcp) {
            (Phase::Resolve, _) => match &self.dns {
                Some(d) => d.next_sentence(self.now()),
                None if self.conn.is_some() => {
                    "the address is known: the TCP connection starts next".into()
                }
                None => "the DNS query goes out next (or the address is known already)".into(),
            },
            (Phase::Connect, Some(tcp::State::SynSent))
                if self.conn.as_ref().is_some_and(|c| c.track.irs.is_some()) =>
            {
                "the SYN-ACK is in: smoltcp moves to ESTABLISHED and acknowledges it".into()
            }
            (Phase::Connect, Some(tcp::State::SynSent)) => format!(
                "waiting for the server's SYN-ACK{}",
                timer("the SYN is resent")
            ),
            (Phase::Connect, Some(tcp::State::Established)) => {
                if self.target.tls {
                    "the TCP handshake is done: the TLS ClientHello goes out next".into()
                } else {
                    "the TCP handshake is done: the HTTP request goes out next".into()
                }
            }
            (Phase::Tls, _) => match as_of.tls_stage.as_deref() {
                None => "the TLS ClientHello goes out next".into(),
                Some("client_hello_sent") => format!(
                    "waiting for the server's ServerHello and the rest of its handshake flight{}",
                    timer("our ClientHello is resent")
                ),
                Some("handshake_complete" | "session_ticket") => {
                    "the handshake is complete: the HTTP request goes out next".into()
                }
                Some(_) => {
                    "checking the server's handshake flight; our Finished goes out next".into()
                }
            },
            (Phase::Request, _) => format!(
                "waiting for the server to acknowledge the request and answer{}",
                timer("unacknowledged data is resent")
            ),
            (Phase::Response, _) => {
                let got = self.exchange.reader_decoded_bytes();
                format!("receiving the response ({got} body bytes so far); more segments and our ACKs follow")
            }
            (Phase::Teardown, Some(tcp::State::FinWait1)) => {
                "waiting for the server to acknowledge our FIN (and send its own)".into()
            }
            (Phase::Teardown, Some(tcp::State::FinWait2)) => {
                "our FIN was acknowledged; waiting for the server's FIN".into()
            }
            (Phase::Teardown, Some(tcp::State::TimeWait)) => {
                "both FINs are through; our last ACK finishes the teardown (TIME-WAIT keeps the port for 10 s)".into()
            }
            (Phase::Teardown, Some(tcp::State::LastAck)) => {
                "waiting for the server to acknowledge our FIN".into()
            }
            (Phase::Teardown, _) => "closing the connection".into(),
            (Phase::Connect, _) => "connecting".into(),
            (Phase::Done, _) => "nothing: the fetch is over".into(),
        }
    }

    /// Ends the fetch now: the connection is aborted with a RST (smoltcp's `abort()`) and
    /// an `error` event says so. For a person quitting `fetchscope step`.
    pub fn abort(&mut self, why: &str) {
        if self.finished {
            return;
        }
        if let Some(h) = self.conn.as_ref().map(|c| c.tcp) {
            let sock = self.sockets.get_mut::<tcp::Socket>(h);
            if sock.is_open() {
                sock.abort();
                self.observe_tcp(Some("abort() called: a RST tells the server"));
                let now = self.now();
                self.iface
                    .poll_egress(now, &mut self.dev, &mut self.sockets);
                let _ = self.collect_frames();
            }
        }
        self.finished = true;
        let e = crate::error::FetchError::new(
            crate::error::FailureClass::Aborted,
            self.phase,
            "aborted",
            why.to_string(),
        );
        self.emit(crate::event::EventKind::Error(e.to_event()));
        self.result = Some(Err(e));
        self.flush();
    }

    /// While a person pauses over a real link, packets keep arriving: read them now (the
    /// stack processes them when the fetch resumes) so they show with their arrival times.
    /// Nothing happens on a virtual link, whose clock stands still.
    pub fn observe_while_paused(&mut self) {
        if self.finished || self.dev.link().is_virtual() {
            return;
        }
        if self.conn.is_some() {
            self.paused_while_open = true;
        }
        if self.dev.prefetch(256).is_err() {
            return;
        }
        if self.collect_frames().is_err() {
            return;
        }
        self.flush();
    }
}
