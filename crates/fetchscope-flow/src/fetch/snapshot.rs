//! [`Snapshot`]: the whole state of a fetch between two events, for `fetchscope step` and
//! for library users — what smoltcp exposes, what fetchscope derives from the packets
//! (kept apart and labelled), TLS and HTTP progress, and one sentence on what happens next.

use fetchscope_net::Link;
use serde::Serialize;
use smoltcp::socket::tcp;

use super::Fetch;
use fetchscope_core::event::{Phase, TcpState};
use fetchscope_core::session::SessionDriver;

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
    pub tcp: Option<TcpState>,
    /// The last TLS stage reported (`client_hello_sent`, `server_hello`, ...).
    pub tls_stage: Option<String>,
    /// What the TLS events so far negotiated: version, suite, group, ALPN.
    pub tls_params: [Option<String>; 4],
    /// Our TLS message of the last stage (ClientHello, Finished, close_notify) is reported
    /// but its packet not shown yet.
    pub tls_unsent: bool,
    /// A packet with the server's TLS records is shown but rustls has not reported on it.
    pub tls_unread: bool,
    /// A DNS query is reported but its packet not shown yet.
    pub dns_unsent: bool,
}

impl AsOf {
    /// Before the first event.
    pub fn start() -> AsOf {
        AsOf {
            t_us: 0,
            phase: Phase::Resolve,
            tcp: None,
            tls_stage: None,
            tls_params: Default::default(),
            tls_unsent: false,
            tls_unread: false,
            dns_unsent: false,
        }
    }

    /// Takes in one event.
    pub fn event(&mut self, e: &fetchscope_core::event::Event) {
        use fetchscope_core::event::EventKind;
        self.t_us = e.t_us;
        match &e.kind {
            EventKind::Phase { phase } => {
                self.phase = *phase;
                // A lookup starts: its queries go out in the machine's next step.
                if *phase == Phase::Resolve {
                    self.dns_unsent = true;
                }
            }
            EventKind::Packet(p) => {
                self.phase = p.phase;
                let tx = p.dir == fetchscope_wire::Direction::Tx;
                if tx && p.layers.dns.is_some() {
                    self.dns_unsent = false;
                }
                if !p.layers.tls.is_empty() {
                    if tx {
                        self.tls_unsent = false;
                    } else {
                        self.tls_unread = true;
                    }
                }
            }
            EventKind::Dns(d) if d.event == "query" => self.dns_unsent = true,
            EventKind::TcpState(c) => self.tcp = Some(c.to),
            EventKind::Tls(t) => {
                self.tls_stage = Some(t.stage.clone());
                for (have, new) in self
                    .tls_params
                    .iter_mut()
                    .zip([&t.version, &t.suite, &t.group, &t.alpn])
                {
                    if new.is_some() {
                        have.clone_from(new);
                    }
                }
                self.tls_unsent = matches!(
                    t.stage.as_str(),
                    "client_hello_sent" | "handshake_complete" | "close_notify_sent"
                );
                self.tls_unread = false;
            }
            EventKind::Redirect(_) => {
                self.tls_stage = None;
                self.tls_params = Default::default();
                self.tls_unsent = false;
                self.tls_unread = false;
            }
            _ => {}
        }
    }
}

/// How far a TLS stage is into the handshake, to tell whether rustls is already past the
/// stage a pause shows (the rest of the server's flight came in the same packets).
fn tls_rank(stage: Option<&str>) -> u8 {
    match stage {
        None => 0,
        Some("client_hello_sent") => 1,
        Some("server_hello") => 2,
        Some("certificate_verified") => 3,
        Some("certificate_verify_ok") => 4,
        Some("server_finished") => 5,
        Some("handshake_complete") => 6,
        Some(_) => 7,
    }
}

/// The TLS handshake in words as of one event: the stage, what it waits for from the
/// server, and what happens next. `ahead`: rustls has already processed more of what the
/// server sent than the events up to this one show.
pub(super) struct TlsWords {
    pub stage: &'static str,
    pub waiting_for: Option<&'static str>,
    pub next: &'static str,
}

/// [`TlsWords`] for `as_of` (see there for `ahead`).
pub(super) fn tls_words(as_of: &AsOf, ahead: bool) -> TlsWords {
    let w = |stage, waiting_for, next| TlsWords {
        stage,
        waiting_for,
        next,
    };
    match as_of.tls_stage.as_deref() {
        None => w("starting", None, "the TLS ClientHello goes out next"),
        Some("client_hello_sent") if as_of.tls_unsent => {
            w("ClientHello queued", None, "our ClientHello goes out next")
        }
        Some("client_hello_sent") if as_of.tls_unread => w(
            "ClientHello sent; the server's answer is in",
            None,
            "rustls reads the server's answer (ServerHello and what came with it) next",
        ),
        Some("client_hello_sent") => w(
            "ClientHello sent",
            Some("the ServerHello"),
            "waiting for the server's ServerHello and the rest of its handshake flight",
        ),
        Some("server_hello") if ahead || as_of.tls_unread => w(
            "ServerHello received",
            None,
            "the rest of the server's flight is in: rustls checks the certificate chain next",
        ),
        Some("server_hello") => w(
            "ServerHello received",
            Some("the rest of the server's flight (Certificate, CertificateVerify, Finished)"),
            "waiting for the rest of the server's flight (EncryptedExtensions, Certificate, CertificateVerify, Finished)",
        ),
        Some("certificate_verified") if ahead || as_of.tls_unread => w(
            "certificate chain verified",
            None,
            "rustls checks the server's CertificateVerify signature next",
        ),
        Some("certificate_verified") => w(
            "certificate chain verified",
            Some("the server's CertificateVerify and Finished"),
            "waiting for the server's CertificateVerify and Finished",
        ),
        Some("certificate_verify_ok") if ahead || as_of.tls_unread => w(
            "CertificateVerify checked",
            None,
            "rustls checks the server's Finished next",
        ),
        Some("certificate_verify_ok") => w(
            "CertificateVerify checked",
            Some("the server's Finished"),
            "waiting for the server's Finished",
        ),
        Some("server_finished") => w(
            "server's flight verified",
            None,
            "our Finished goes out next",
        ),
        Some("handshake_complete") if as_of.tls_unsent => w(
            "established (our Finished queued)",
            None,
            "our Finished goes out next, then the HTTP request",
        ),
        Some("handshake_complete" | "session_ticket") => w(
            "established",
            None,
            "the handshake is complete: the HTTP request goes out next",
        ),
        Some("close_notify_sent") => w(
            "closing",
            Some("the server's close_notify"),
            "closing the TLS session",
        ),
        Some("close_notify_received") => w("closed by the server", None, "closing the TLS session"),
        Some(_) => w("in progress", None, "the handshake goes on"),
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
        let tls = self.session.tls();
        AsOf {
            t_us: self.t_us(self.now()),
            phase: self.session.phase(),
            tcp: self.conn.as_ref().map(|c| c.state),
            tls_params: tls
                .map(|t| [t.version(), t.suite(), t.group(), t.alpn()])
                .unwrap_or_default(),
            tls_unsent: false,
            tls_unread: false,
            dns_unsent: false,
            tls_stage: tls.map(|t| {
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
        let space = self.tcp_space();
        let tcp = self.conn.as_ref().filter(|_| as_of.tcp.is_some()).map(|c| {
            let sock = self.sockets.get::<tcp::Socket>(c.tcp);
            let k = &space;
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
        let tls_ahead = self.tls_ahead(as_of);
        let tls = self.session.tls().map(|_| {
            let words = tls_words(as_of, tls_ahead);
            let [version, suite, group, alpn] = as_of.tls_params.clone();
            TlsSnapshot {
                stage: words.stage.into(),
                version,
                suite,
                group,
                alpn,
                waiting_for: words.waiting_for.map(str::to_string),
            }
        });
        let session = &self.session;
        let http = session.request().map(|r| HttpSnapshot {
            request: Some(format!("{} HTTP/1.1", r.start_line())),
            status: match session.status() {
                0 => None,
                s => Some(s),
            },
            body_bytes: session.body_bytes(),
            wire_body_bytes: session.wire_body_bytes(),
            complete: session.response_complete(),
            redirects: session.redirects(),
        });
        let dns = self
            .dns
            .as_ref()
            .map(|d| d.lookup.describe(as_of.dns_unsent));
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

    /// Whether rustls is already further into the handshake than the events up to
    /// `as_of` show (the rest of the server's flight came with the packets shown).
    fn tls_ahead(&self, as_of: &AsOf) -> bool {
        let live = self.live_as_of();
        tls_rank(live.tls_stage.as_deref()) > tls_rank(as_of.tls_stage.as_deref())
    }

    /// One sentence on what happens next, from the phase and the TCP state.
    fn next_sentence(&self, as_of: &AsOf, timer_ms: Option<f64>) -> String {
        let timer = |what: &str| match timer_ms {
            Some(ms) if ms > 0.0 => format!("; {what} in {:.1} s if nothing arrives", ms / 1000.0),
            _ => String::new(),
        };
        if self.session.is_over() {
            return "nothing: the fetch is over".into();
        }
        match (as_of.phase, as_of.tcp) {
            (Phase::Resolve, _) => match &self.dns {
                Some(_) if as_of.dns_unsent => "the DNS query goes out next".into(),
                Some(d) => d.lookup.next_sentence(super::at(self.now())),
                None if self.conn.is_some() => {
                    "the address is known: the TCP connection starts next".into()
                }
                None => "the DNS query goes out next (or the address is known already)".into(),
            },
            (Phase::Connect, Some(TcpState::SynSent))
                if self.conn.is_some() && self.tcp_space().irs.is_some() =>
            {
                "the SYN-ACK is in: smoltcp moves to ESTABLISHED and acknowledges it".into()
            }
            (Phase::Connect, Some(TcpState::SynSent))
                if self.conn.is_some() && self.tcp_space().iss.is_none() =>
            {
                "connect() queued the SYN: it goes out next".into()
            }
            (Phase::Connect, Some(TcpState::SynSent)) => format!(
                "waiting for the server's SYN-ACK{}",
                timer("the SYN is resent")
            ),
            (Phase::Connect, Some(TcpState::Established)) => {
                if self.session.target().tls {
                    "the TCP handshake is done: the TLS ClientHello goes out next".into()
                } else {
                    "the TCP handshake is done: the HTTP request goes out next".into()
                }
            }
            (Phase::Proxy, _) => {
                "the CONNECT request is with the proxy: its answer opens the tunnel (or refuses it)"
                    .into()
            }
            (Phase::Tls, _) => {
                let words = tls_words(as_of, self.tls_ahead(as_of));
                if as_of.tls_stage.as_deref() == Some("client_hello_sent")
                    && words.waiting_for.is_some()
                {
                    format!("{}{}", words.next, timer("our ClientHello is resent"))
                } else {
                    words.next.to_string()
                }
            }
            (Phase::Request, _) => format!(
                "waiting for the server to acknowledge the request and answer{}",
                timer("unacknowledged data is resent")
            ),
            (Phase::Response, _) => {
                let got = self.session.body_bytes();
                format!("receiving the response ({got} body bytes so far); more segments and our ACKs follow")
            }
            (Phase::Teardown, Some(TcpState::FinWait1)) => {
                "waiting for the server to acknowledge our FIN (and send its own)".into()
            }
            (Phase::Teardown, Some(TcpState::FinWait2)) => {
                "our FIN was acknowledged; waiting for the server's FIN".into()
            }
            (Phase::Teardown, Some(TcpState::TimeWait)) => {
                "both FINs are through; our last ACK finishes the teardown (TIME-WAIT keeps the port for 10 s)".into()
            }
            (Phase::Teardown, Some(TcpState::LastAck)) => {
                "waiting for the server to acknowledge our FIN".into()
            }
            (Phase::Teardown, _) => "closing the connection".into(),
            (Phase::Connect, _) => "connecting".into(),
            (Phase::Done, _) => "nothing: the fetch is over".into(),
        }
    }

    /// Ends the fetch now, sending nothing new but what it takes to tell the server: a
    /// connection whose SYN went out is aborted with a RST (smoltcp's `abort()`); one whose
    /// SYN was only queued is dropped silently, and a DNS lookup in flight is left. An
    /// `error` event gives `why` and what was sent. For a person quitting `fetchscope step`.
    pub fn abort(&mut self, why: &str) {
        if self.session.is_over() {
            return;
        }
        let mut consequence = "nothing more was sent";
        let syn_out = self.tcp_space().iss.is_some();
        if let Some(h) = self.conn.as_ref().map(|c| c.tcp) {
            let sock = self.sockets.get_mut::<tcp::Socket>(h);
            if sock.is_open() {
                sock.abort();
                if syn_out {
                    consequence = "the connection was aborted with a RST, so the server forgets it";
                    self.observe_tcp(Some("abort() called: a RST tells the server"));
                    let now = self.now();
                    self.iface
                        .poll_egress(now, &mut self.dev, &mut self.sockets);
                    let _ = self.collect_frames();
                } else {
                    // smoltcp would send a RST for the aborted socket at the next poll:
                    // there is none, so the queued SYN never leaves.
                    consequence = "the SYN had not gone out yet, so nothing was sent";
                    self.observe_tcp(Some(
                        "abort() called before the SYN went out: nothing is sent",
                    ));
                }
            }
        }
        self.dns = None;
        let e = self.session.abort_error(why, consequence);
        self.session.fail(super::at(self.now()), e);
        self.drain_events();
        self.flush();
    }

    /// While a person pauses over a real link, packets keep arriving: read them now (the
    /// stack processes them when the fetch resumes) so they show with their arrival times.
    /// Nothing happens on a virtual link, whose clock stands still.
    pub fn observe_while_paused(&mut self) {
        if self.session.is_over() || self.dev.link().is_virtual() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(stage: Option<&str>) -> AsOf {
        AsOf {
            phase: Phase::Tls,
            tcp: Some(TcpState::Established),
            tls_stage: stage.map(str::to_string),
            ..AsOf::start()
        }
    }

    #[test]
    fn the_tls_words_follow_the_events_shown() {
        let mut a = at(Some("client_hello_sent"));
        a.tls_unsent = true;
        assert_eq!(tls_words(&a, false).next, "our ClientHello goes out next");
        a.tls_unsent = false;
        assert_eq!(tls_words(&a, false).waiting_for, Some("the ServerHello"));
        // The packet with the ServerHello is shown; rustls has not reported on it yet.
        a.tls_unread = true;
        let w = tls_words(&a, false);
        assert!(w.waiting_for.is_none(), "{:?}", w.waiting_for);
        assert!(!w.next.contains("waiting"), "{}", w.next);
        // After the ServerHello: the rest of the flight, whether in already or not.
        let w = tls_words(&at(Some("server_hello")), true);
        assert!(w.next.contains("rustls checks the certificate chain next"));
        let w = tls_words(&at(Some("server_hello")), false);
        assert!(
            w.next
                .starts_with("waiting for the rest of the server's flight")
        );
        assert!(!w.next.contains("ServerHello"));
        let w = tls_words(&at(Some("certificate_verify_ok")), false);
        assert_eq!(w.next, "waiting for the server's Finished");
        let w = tls_words(&at(Some("server_finished")), false);
        assert_eq!(w.next, "our Finished goes out next");
    }

    #[test]
    fn tls_parameters_come_from_the_events_not_the_end_of_the_step() {
        let mut a = at(Some("client_hello_sent"));
        let tls = |stage: &str, version: Option<&str>| fetchscope_core::event::Event {
            t_us: 1,
            kind: fetchscope_core::event::EventKind::Tls(fetchscope_core::event::TlsEvent {
                stage: stage.into(),
                version: version.map(str::to_string),
                suite: None,
                group: None,
                alpn: None,
                detail: String::new(),
                certificates: Vec::new(),
            }),
        };
        a.event(&tls("client_hello_sent", None));
        assert_eq!(a.tls_params[0], None);
        assert!(a.tls_unsent);
        a.event(&tls("server_hello", Some("TLSv1.3")));
        assert_eq!(a.tls_params[0].as_deref(), Some("TLSv1.3"));
        assert!(!a.tls_unsent && !a.tls_unread);
    }
}
