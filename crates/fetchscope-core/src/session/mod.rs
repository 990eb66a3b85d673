//! [`Session`]: one fetch's protocol machine — resolve, connect, TLS, the HTTP exchange,
//! redirects, teardown and the summary — with no network stack in it.
//!
//! Both drivers run it the way quinn-proto's `Connection` is run: they tell it what
//! happened with [`Session::handle`] (an address was resolved, the TCP state changed,
//! stream bytes or the end of the stream arrived, the teardown is over), ask it what to do
//! with [`Session::poll_command`] (look the host up, connect, close, release the
//! connection, finish), move the stream bytes it wants sent ([`Session::outgoing`]) and the
//! ones that arrived ([`Session::receive_buffer`]), wake it at [`Session::poll_timeout`],
//! and pass on its [`Session::poll_event`]s, each with the time it happened. The drivers
//! keep only what their stack does differently: sockets, packets and TCP state.

mod target;
#[cfg(test)]
mod tests;

pub use target::Target;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use url::Url;

use crate::advice::{Conditions, StallFacts};
use crate::error::{FailureClass, FetchError};
use crate::event::ProxyEvent;
use crate::event::{
    EventKind, ExchangeRecord, HttpRequestEvent, Phase, Summary, TcpStateChange, TlsEvent,
};
use crate::http::{
    self, BODY_CHUNK, BodyReader, DigestSink, HttpProgress, Leg, Limits, RequestBody, RequestHead,
    RequestOptions, ResponseReader,
};
use crate::proxy::Proxy;
use crate::redirects::{self, RedirectProtocols};
use crate::spec::{ResolveOverride, address_without_dns};
use crate::tcp_state::TcpState;
use crate::time::Instant;
use crate::timing::TimingMarks;
use crate::tls::{TlsClient, TlsConfig, TlsProgress, TlsSecret};

/// The longest answer head a proxy may send to `CONNECT`.
const MAX_PROXY_HEAD: usize = 64 * 1024;

/// How long teardown waits for the server to finish closing its side.
pub const TEARDOWN_LIMIT: Duration = Duration::from_secs(5);

/// A request body is read on while less than this waits to be sent.
const BODY_LOW_WATER: usize = 64 * 1024;
/// How much of a request body may wait to be sent (bounded memory for any file).
const BODY_HIGH_WATER: usize = 256 * 1024;

/// What a session needs to know before it starts.
pub struct SessionConfig {
    /// The request: method, headers, body, credentials, the client imitated.
    pub request: RequestOptions,
    /// The schemes a redirect may lead to.
    pub redirect_protocols: RedirectProtocols,
    /// TLS for `https://` (roots, ALPN, key log, randomness).
    pub tls: TlsConfig,
    /// `--resolve` entries.
    pub resolve: Vec<ResolveOverride>,
    /// When the whole fetch must be over.
    pub deadline: Instant,
    /// `--connect-timeout`: how long each new connection may take to be ready for its
    /// request (DNS, TCP and TLS).
    pub connect_timeout: Option<Duration>,
    /// Where the final response's body goes (and its digest).
    pub body: DigestSink,
    /// Where the fetch runs, for the advice in its errors.
    pub conditions: Conditions,
}

/// Where the session is: each variant carries what that stage needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// Looking the host up (or taking its address from the URL or `--resolve`).
    Resolving {
        /// The host looked up.
        host: String,
    },
    /// The TCP handshake with `remote`.
    Connecting {
        /// The server.
        remote: SocketAddr,
    },
    /// Asking the HTTP proxy at `remote` for a tunnel (`CONNECT`).
    Tunneling {
        /// The proxy.
        remote: SocketAddr,
    },
    /// The TLS handshake with `remote`.
    Handshaking {
        /// The server.
        remote: SocketAddr,
    },
    /// A request and its response on the connection to `remote`.
    Exchanging {
        /// The server.
        remote: SocketAddr,
        /// The connection carried an earlier exchange (a redirect to the same origin).
        reused: bool,
    },
    /// Closing the connection: close_notify and FIN sent, waiting for the server's.
    Closing {
        /// When the session stops waiting for the server.
        until: Instant,
        /// The exchange a redirect asked for, started once this connection is closed.
        next_hop: Option<Target>,
    },
    /// Over: [`Session::finish`] is due or done.
    Done,
}

/// What happened, as the driver tells the session.
#[derive(Debug, Clone)]
pub enum SessionInput {
    /// The lookup the session asked for ([`SessionCommand::Lookup`]) found `IpAddr`.
    Resolved(IpAddr),
    /// The connection's TCP state changed (reported in the stream as it is).
    TcpState(TcpStateChange),
    /// The connection is established and the application may use it: TLS starts, or
    /// the request is due.
    Connected,
    /// The driver is about to move stream bytes: a due request is queued now.
    Ready,
    /// Stream bytes were put in [`Session::receive_buffer`] (and `eof`: the server
    /// closed its side after them).
    StreamRead {
        /// The server's FIN arrived.
        eof: bool,
    },
    /// The teardown is over: both sides closed (or the connection is gone).
    Closed,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCommand {
    /// Look `host` up (DNS) and answer with [`SessionInput::Resolved`].
    Lookup {
        /// The host name.
        host: String,
        /// The port the connection will use.
        port: u16,
    },
    /// Open a TCP connection to `remote`.
    Connect {
        /// The server.
        remote: SocketAddr,
    },
    /// Send what [`Session::outgoing`] holds, then close the sending side (FIN).
    Close,
    /// Forget the closed connection: the next exchange opens its own.
    Release,
    /// The fetch is over: call [`Session::finish`].
    Finish,
}

/// A driver's side of the session: where its events go and how its commands are
/// carried out. [`SessionDriver::tell`] and [`SessionDriver::run_commands`] keep the one
/// rule both drivers follow: every event the session queued goes out before the next
/// command runs (a command's own events then follow in order).
pub trait SessionDriver {
    /// The session driven.
    fn session(&mut self) -> &mut Session;
    /// The driver's clock, now.
    fn clock(&self) -> Instant;
    /// Passes on an event the session queued, with its time.
    fn event(&mut self, t: Instant, kind: EventKind);
    /// Carries out one command.
    fn command(&mut self, command: SessionCommand) -> Result<(), FetchError>;

    /// Moves the session's queued events out.
    fn drain_events(&mut self) {
        while let Some((t, kind)) = self.session().poll_event() {
            self.event(t, kind);
        }
    }

    /// Carries out the session's commands, in order, each after the events before it.
    fn run_commands(&mut self) -> Result<(), FetchError> {
        loop {
            self.drain_events();
            let Some(command) = self.session().poll_command() else {
                return Ok(());
            };
            self.command(command)?;
        }
    }

    /// Tells the session what happened now, passes on its events (also those before a
    /// failure: the ServerHello before a certificate error) and runs its commands.
    fn tell(&mut self, input: SessionInput) -> Result<(), FetchError> {
        let now = self.clock();
        let r = self.session().handle(now, input);
        self.drain_events();
        r?;
        self.run_commands()
    }
}

/// What one read from the connection gave, as the driver's stack says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes were put in the buffer.
    Bytes(usize),
    /// Nothing to read now.
    Empty,
    /// The server closed its side (FIN): nothing more will come.
    End,
}

/// What only the driver knows, for the summary.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectionFacts {
    /// Our end of the last connection.
    pub local: Option<SocketAddr>,
    /// Packets sent.
    pub packets_tx: u64,
    /// Packets received.
    pub packets_rx: u64,
}

/// One TCP connection (and its TLS session) to a server.
struct Connection {
    remote: SocketAddr,
    /// The last state reported.
    tcp: TcpState,
    /// The server closed its side (TCP FIN or TLS close_notify).
    peer_eof: bool,
    tls: Option<TlsClient>,
    /// Plaintext received and not yet given to HTTP.
    plain_in: Vec<u8>,
    /// Plaintext to send (`http://`).
    plain_out: Vec<u8>,
    /// Where a plaintext read lands (`http://`).
    scratch: Vec<u8>,
    /// Bytes handed to the driver so far (TCP stream offset).
    tx_written: u64,
}

/// One request and its response.
struct Exchange {
    url: Url,
    marks: TimingMarks,
    /// The connection is ready for the request: queue it at the next
    /// [`SessionInput::Ready`].
    request_due: bool,
    request: Option<RequestHead>,
    /// This request's method (a redirect may change it).
    method: String,
    /// This request's body, if it has one.
    body: Option<Arc<RequestBody>>,
    /// The body while it is being sent.
    body_reader: Option<BodyReader>,
    /// Whether `Authorization` may be sent (not after a redirect to another host).
    auth: bool,
    /// A redirect other than 307/308 led here: no body headers (requests purges
    /// `Content-Length`, `Content-Type` and `Transfer-Encoding`).
    purged: bool,
    /// TCP stream offsets of the request's first byte and just past its last (the end
    /// moves on while a body is sent).
    request_span: Option<(u64, u64)>,
    reader: Option<ResponseReader>,
    remote: Option<SocketAddr>,
    /// The response is a redirect that will be followed: its body is dropped.
    redirecting: bool,
}

impl Exchange {
    fn new(url: Url, start: Instant, reused: bool, method: String) -> Exchange {
        Exchange {
            url,
            method,
            body: None,
            body_reader: None,
            auth: true,
            purged: false,
            marks: TimingMarks {
                start,
                reused,
                ..TimingMarks::default()
            },
            request_due: false,
            request: None,
            request_span: None,
            reader: None,
            remote: None,
            redirecting: false,
        }
    }

    fn status(&self) -> u16 {
        self.head().map(|h| h.status).unwrap_or(0)
    }

    fn head(&self) -> Option<&http::ResponseHead> {
        self.reader.as_ref().and_then(ResponseReader::head)
    }

    fn body_bytes(&self) -> u64 {
        self.reader
            .as_ref()
            .map_or(0, ResponseReader::decoded_body_bytes)
    }

    fn wire_body_bytes(&self) -> u64 {
        self.reader
            .as_ref()
            .map_or(0, ResponseReader::wire_body_bytes)
    }
}

/// One fetch's protocol machine; see the [module documentation](self).
pub struct Session {
    request: RequestOptions,
    redirect_protocols: RedirectProtocols,
    tls_config: TlsConfig,
    resolve: Vec<ResolveOverride>,
    deadline: Instant,
    connect_timeout: Option<Duration>,
    body: DigestSink,
    conditions: Conditions,

    start: Instant,
    target: Target,
    state: SessionState,
    phase: Phase,
    conn: Option<Connection>,
    exchange: Exchange,
    /// The HTTP proxy the current connection goes through, if any.
    via: Option<Proxy>,
    /// The proxy's answer to `CONNECT`, until its head is whole.
    tunnel_in: Vec<u8>,
    /// The exchange a redirect asked for, started once this connection is closed.
    next_exchange: Option<Exchange>,
    done_exchanges: Vec<ExchangeRecord>,
    redirects: usize,
    events: VecDeque<(Instant, EventKind)>,
    commands: VecDeque<SessionCommand>,
    /// How the fetch ended, once it did.
    outcome: Option<Result<Summary, FetchError>>,
}

impl Session {
    /// A session for `target` that starts at `start` (nothing happens before
    /// [`Session::start`]).
    pub fn new(config: SessionConfig, target: Target, start: Instant) -> Session {
        let mut exchange = Exchange::new(target.url.clone(), start, false, config.request.method());
        exchange.body = config.request.body.as_ref().map(|(b, _)| b.clone());
        Session {
            redirect_protocols: config.redirect_protocols,
            tls_config: config.tls,
            resolve: config.resolve,
            deadline: config.deadline,
            connect_timeout: config.connect_timeout,
            body: config.body,
            conditions: config.conditions,
            request: config.request,
            start,
            exchange,
            via: None,
            tunnel_in: Vec::new(),
            next_exchange: None,
            state: SessionState::Resolving {
                host: target.host.clone(),
            },
            target,
            phase: Phase::Resolve,
            conn: None,
            done_exchanges: Vec::new(),
            redirects: 0,
            events: VecDeque::new(),
            commands: VecDeque::new(),
            outcome: None,
        }
    }

    /// Starts the first exchange: its address from the URL or `--resolve`, or a lookup.
    pub fn start(&mut self, now: Instant) {
        if self.tls_config.insecure() {
            self.note(
                now,
                "INSECURE (--insecure): certificate problems are reported but do not stop the fetch; nothing proves who answers",
            );
        }
        self.begin_exchange(now);
    }

    // ---------------------------------------------------------------- the driver's API

    /// Tells the session what happened at `now`.
    pub fn handle(&mut self, now: Instant, input: SessionInput) -> Result<(), FetchError> {
        match input {
            SessionInput::Resolved(addr) => {
                self.exchange.marks.namelookup = Some(now);
                self.resolved(now, addr);
                Ok(())
            }
            SessionInput::TcpState(change) => {
                if let Some(conn) = self.conn.as_mut() {
                    conn.tcp = change.to;
                }
                if change.to == TcpState::Established && self.exchange.marks.connect.is_none() {
                    self.exchange.marks.connect = Some(now);
                }
                self.emit(now, EventKind::TcpState(change));
                Ok(())
            }
            SessionInput::Connected => self.connected(now),
            SessionInput::Ready => {
                let ready = self
                    .conn
                    .as_ref()
                    .is_some_and(|c| c.tls.as_ref().is_none_or(TlsClient::is_complete));
                if self.exchange.request_due && ready {
                    self.exchange.request_due = false;
                    self.queue_request(now)?;
                } else if self.exchange.body_reader.is_some()
                    && matches!(self.state, SessionState::Exchanging { .. })
                {
                    self.send_body(now)?;
                }
                Ok(())
            }
            SessionInput::StreamRead { eof } => self.stream_read(now, eof),
            SessionInput::Closed => {
                self.teardown_done(now);
                Ok(())
            }
        }
    }

    /// Gives up waiting for the server to close once the teardown's time is up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let SessionState::Closing { until, .. } = self.state
            && now >= until
        {
            let state = self.conn.as_ref().map_or(TcpState::Closed, |c| c.tcp);
            self.note(
                now,
                format!(
                    "the server did not finish closing within {} s; stopping in {state}",
                    TEARDOWN_LIMIT.as_secs()
                ),
            );
            self.teardown_done(now);
        }
    }

    /// When [`Session::handle_timeout`] (or [`Session::connect_timed_out`]) is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            SessionState::Closing { until, .. } => Some(until),
            _ => self.connect_deadline(),
        }
    }

    /// When the connection being made must be ready (`--connect-timeout`), while it is
    /// being made.
    fn connect_deadline(&self) -> Option<Instant> {
        let limit = self.connect_timeout?;
        match self.state {
            SessionState::Resolving { .. }
            | SessionState::Connecting { .. }
            | SessionState::Tunneling { .. }
            | SessionState::Handshaking { .. } => Some(self.exchange.marks.start + limit),
            _ => None,
        }
    }

    /// The `--connect-timeout` failure, once the connection being made is late at `now`.
    /// Drivers check it with their own deadline.
    pub fn connect_timed_out(&self, now: Instant) -> Option<FetchError> {
        let deadline = self.connect_deadline()?;
        if now < deadline {
            return None;
        }
        let secs = self.connect_timeout.map_or(0.0, |d| d.as_secs_f64());
        let remote = self.remote_name();
        let what = match self.phase {
            Phase::Resolve => format!("no address for {remote} yet"),
            Phase::Connect => self.conditions.no_syn_ack(&remote),
            Phase::Proxy => format!("the proxy {remote} has not answered the CONNECT request"),
            _ => format!("the TLS handshake with {remote} is not complete"),
        };
        let mut e = FetchError::timed_out(self.phase, secs, &what);
        e.message.push_str(
            " (--connect-timeout limits DNS, TCP and TLS together; raise it to wait longer)",
        );
        Some(e)
    }

    /// The next thing the driver must do.
    pub fn poll_command(&mut self) -> Option<SessionCommand> {
        self.commands.pop_front()
    }

    /// The next event, with the time it happened.
    pub fn poll_event(&mut self) -> Option<(Instant, EventKind)> {
        self.events.pop_front()
    }

    /// Where the next read from the connection goes: TLS's spare input buffer, or a
    /// plaintext buffer of `plain_chunk` bytes (`http://`). Tell the session how much was
    /// read with [`Session::bytes_received`]. Empty when nothing fits (or no connection).
    pub fn receive_buffer(&mut self, plain_chunk: usize) -> &mut [u8] {
        let Some(conn) = self.conn.as_mut() else {
            return &mut [];
        };
        match conn.tls.as_mut() {
            Some(tls) => tls.incoming_spare(),
            None => {
                conn.scratch.resize(plain_chunk, 0);
                &mut conn.scratch
            }
        }
    }

    /// Reads from the connection with `read` as much as one step takes — for TLS until
    /// its input buffer is full or nothing is left, for plaintext one `plain_chunk` —
    /// and returns whether the stream ended. Tell the session with
    /// [`SessionInput::StreamRead`] afterwards.
    pub fn read_stream<E>(
        &mut self,
        plain_chunk: usize,
        mut read: impl FnMut(&mut [u8]) -> Result<ReadOutcome, E>,
    ) -> Result<bool, E> {
        let tls = self.tls().is_some();
        loop {
            let buf = self.receive_buffer(plain_chunk);
            if buf.is_empty() {
                return Ok(false);
            }
            match read(buf)? {
                ReadOutcome::Bytes(n) => {
                    self.bytes_received(n);
                    if !tls {
                        return Ok(false);
                    }
                }
                ReadOutcome::Empty => return Ok(false),
                ReadOutcome::End => return Ok(true),
            }
        }
    }

    /// `n` bytes were read into [`Session::receive_buffer`].
    pub fn bytes_received(&mut self, n: usize) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        match conn.tls.as_mut() {
            Some(tls) => tls.incoming_filled(n),
            None => {
                let Connection {
                    scratch, plain_in, ..
                } = conn;
                plain_in.extend_from_slice(scratch.get(..n).unwrap_or_default());
            }
        }
    }

    /// The stream bytes waiting to be sent (TLS records, or the plaintext request).
    pub fn outgoing(&self) -> &[u8] {
        match self.conn.as_ref() {
            Some(Connection { tls: Some(t), .. }) => t.outgoing(),
            Some(c) => &c.plain_out,
            None => &[],
        }
    }

    /// The driver handed the first `n` bytes of [`Session::outgoing`] to the connection.
    pub fn consume_outgoing(&mut self, n: usize) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        match conn.tls.as_mut() {
            Some(t) => t.consume_outgoing(n),
            None => {
                conn.plain_out.drain(..n.min(conn.plain_out.len()));
            }
        }
        conn.tx_written += n as u64;
    }

    /// A segment of ours left at `now` carrying `len` stream bytes up to `end` (the
    /// stream offset just past its last byte): the request's last byte dates
    /// `request_sent`.
    pub fn segment_sent(&mut self, now: Instant, end: u64, len: u64) {
        if let (Some((_, request_end)), None) =
            (self.exchange.request_span, self.exchange.marks.request_sent)
            && self.exchange.body_reader.is_none()
            && len > 0
            && end >= request_end
        {
            self.exchange.marks.request_sent = Some(now);
        }
    }

    /// Takes the application-data records the TLS client decrypted since the last call.
    pub fn take_decrypted(&mut self) -> Vec<fetchscope_wire::DecryptedRecord> {
        self.conn
            .as_mut()
            .and_then(|c| c.tls.as_mut())
            .map(TlsClient::take_decrypted)
            .unwrap_or_default()
    }

    /// The TLS secrets learned since the last call (to decrypt the capture).
    pub fn take_secrets(&mut self) -> Vec<TlsSecret> {
        self.conn
            .as_mut()
            .and_then(|c| c.tls.as_mut())
            .map(TlsClient::take_secrets)
            .unwrap_or_default()
    }

    // ---------------------------------------------------------------- what it knows

    /// The phase the fetch is in.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Where the machine is.
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// The current exchange's target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The connection's TLS session, once TLS started.
    pub fn tls(&self) -> Option<&TlsClient> {
        self.conn.as_ref().and_then(|c| c.tls.as_ref())
    }

    /// The current exchange's request, once sent.
    pub fn request(&self) -> Option<&RequestHead> {
        self.exchange.request.as_ref()
    }

    /// The current exchange's response head, once read.
    pub fn response_head(&self) -> Option<&http::ResponseHead> {
        self.exchange.head()
    }

    /// The current response's status (0 before its head).
    pub fn status(&self) -> u16 {
        self.exchange.status()
    }

    /// Body bytes of the current response, decoded.
    pub fn body_bytes(&self) -> u64 {
        self.exchange.body_bytes()
    }

    /// Body bytes of the current response, as framed on the wire.
    pub fn wire_body_bytes(&self) -> u64 {
        self.exchange.wire_body_bytes()
    }

    /// The current response was read to its end.
    pub fn response_complete(&self) -> bool {
        self.exchange
            .reader
            .as_ref()
            .is_some_and(ResponseReader::is_complete)
    }

    /// The redirects followed so far.
    pub fn redirects(&self) -> usize {
        self.redirects
    }

    /// The current request's stream offsets (first byte, just past the last).
    pub fn request_span(&self) -> Option<(u64, u64)> {
        self.exchange.request_span
    }

    /// Bytes handed to the connection so far.
    pub fn tx_written(&self) -> u64 {
        self.conn.as_ref().map_or(0, |c| c.tx_written)
    }

    /// The server's endpoint, once connecting.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.conn.as_ref().map(|c| c.remote)
    }

    /// The server closed its side of the stream.
    pub fn peer_closed(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.peer_eof)
    }

    /// The current exchange's timing marks.
    pub fn marks(&self) -> &TimingMarks {
        &self.exchange.marks
    }

    /// Any byte of the response arrived.
    pub fn response_started(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| !c.plain_in.is_empty())
            || self.exchange.marks.starttransfer.is_some()
    }

    /// What the session knows of a stall, for [`Session::timeout_error`]; the driver
    /// adds what its stack knows (unacknowledged bytes, window, retransmissions).
    pub fn stall_facts(&self) -> StallFacts {
        let request_bytes = match self.exchange.request_span {
            Some((a, b)) if b >= a => b - a,
            _ => self.tx_written(),
        };
        StallFacts {
            request_bytes,
            body_bytes: self.body_bytes(),
            response_started: self.response_started(),
            ..StallFacts::default()
        }
    }

    // ---------------------------------------------------------------- errors

    /// The server reset the connection (`detail`: what the driver's call said).
    pub fn reset_error(&self, detail: Option<&str>) -> FetchError {
        let class = match self.phase {
            Phase::Resolve | Phase::Connect | Phase::Proxy => FailureClass::Connect,
            Phase::Tls => FailureClass::Tls,
            _ => FailureClass::Http,
        };
        let detail = detail.map(|d| format!(" ({d})")).unwrap_or_default();
        FetchError::new(
            class,
            self.phase,
            "reset",
            format!(
                "{} reset the connection (RST) during the {} phase{detail}",
                self.remote_name(),
                self.phase
            ),
        )
    }

    /// The server answered the SYN with a RST.
    pub fn refused_error(&self) -> FetchError {
        FetchError::new(
            FailureClass::Connect,
            Phase::Connect,
            "refused",
            format!(
                "connection refused: {} answered the SYN with a reset (RST); nothing listens on that port",
                self.remote_name()
            ),
        )
    }

    /// The fetch's `secs` ran out; `dns_stall` says what the lookup waited for (in the
    /// resolve phase), `facts` what the connection's packets show.
    pub fn timeout_error(
        &self,
        secs: f64,
        dns_stall: Option<String>,
        facts: &StallFacts,
    ) -> FetchError {
        let c = &self.conditions;
        let remote = self.remote_name();
        let what = match self.phase {
            Phase::Resolve => dns_stall.unwrap_or_else(|| format!("no DNS answer for {remote}")),
            Phase::Connect => c.no_syn_ack(&remote),
            phase => c.stall(phase, &remote, facts),
        };
        let mut e = FetchError::timed_out(self.phase, secs, &what);
        e.message.push_str(&c.after_timeout());
        e
    }

    /// A person stopped the fetch (`why`), with `consequence` for the connection.
    pub fn abort_error(&self, why: &str, consequence: &str) -> FetchError {
        FetchError::new(
            FailureClass::Aborted,
            self.phase,
            "aborted",
            format!("{why}: {consequence}"),
        )
    }

    /// The server's endpoint, or the host before there is one.
    fn remote_name(&self) -> String {
        self.remote()
            .map(|r| r.to_string())
            .unwrap_or_else(|| self.target.host.clone())
    }

    // ---------------------------------------------------------------- the end

    /// The fetch is over (after [`SessionCommand::Finish`]): the body is flushed and the
    /// summary made; the `done` phase and event are queued (or the `error`, when the body
    /// cannot be written).
    pub fn finish(&mut self, now: Instant, facts: ConnectionFacts) {
        if self.is_over() {
            return;
        }
        self.exchange.marks.total = Some(now);
        self.state = SessionState::Done;
        self.enter(now, Phase::Done);
        if let Err(e) = self.body.flush() {
            let msg = format!("could not write the body: {e}");
            let e = FetchError::new(FailureClass::Setup, Phase::Done, "output", msg);
            return self.fail(now, e);
        }
        let summary = self.summary(facts);
        self.emit(now, EventKind::Done(Box::new(summary.clone())));
        self.outcome = Some(Ok(summary));
    }

    /// The fetch failed at `now` with `e`: the `error` event is queued and the outcome
    /// kept (nothing happens once the fetch is over).
    pub fn fail(&mut self, now: Instant, e: FetchError) {
        if self.is_over() {
            return;
        }
        self.state = SessionState::Done;
        self.emit(now, EventKind::Error(e.to_event()));
        self.outcome = Some(Err(e));
    }

    /// The fetch is over: it finished or failed.
    pub fn is_over(&self) -> bool {
        self.outcome.is_some()
    }

    /// How the fetch ended, once it did.
    pub fn outcome(&self) -> Option<&Result<Summary, FetchError>> {
        self.outcome.as_ref()
    }

    fn summary(&mut self, facts: ConnectionFacts) -> Summary {
        let record = self.exchange_record();
        let mut exchanges = std::mem::take(&mut self.done_exchanges);
        exchanges.push(record);
        let conn = self.conn.as_ref();
        let tls = conn.and_then(|c| c.tls.as_ref());
        Summary {
            url: self.target.url.to_string(),
            status: self.exchange.status(),
            body_bytes: self.body.bytes(),
            wire_body_bytes: self.exchange.wire_body_bytes(),
            body_sha256: self.body.sha256_hex(),
            body_start: self.body.start().to_vec(),
            timings: self.exchange.marks.curl(self.start, self.target.tls),
            har: self.exchange.marks.har(self.target.tls),
            remote: conn.map(|c| c.remote.to_string()).unwrap_or_default(),
            local: facts.local.map(|l| l.to_string()).unwrap_or_default(),
            final_tcp_state: conn.map(|c| c.tcp.to_string()).unwrap_or_default(),
            packets_tx: facts.packets_tx,
            packets_rx: facts.packets_rx,
            tls_version: tls.and_then(TlsClient::version),
            tls_suite: tls.and_then(TlsClient::suite),
            redirects: self.redirects,
            exchanges,
        }
    }

    // ---------------------------------------------------------------- inside

    fn emit(&mut self, now: Instant, kind: EventKind) {
        self.events.push_back((now, kind));
    }

    fn note(&mut self, now: Instant, text: impl Into<String>) {
        self.emit(now, EventKind::Note { text: text.into() });
    }

    /// Moves to `phase` and reports it (the resolve phase also when a new hop starts).
    fn enter(&mut self, now: Instant, phase: Phase) {
        if self.phase != phase || phase == Phase::Resolve {
            self.phase = phase;
            self.emit(now, EventKind::Phase { phase });
        }
    }

    /// An exchange on a new connection: the address without DNS, or a lookup.
    fn begin_exchange(&mut self, now: Instant) {
        self.state = SessionState::Resolving {
            host: self.target.host.clone(),
        };
        self.enter(now, Phase::Resolve);
        self.via = self.request.proxies.for_url(&self.target.url).cloned();
        self.tunnel_in.clear();
        let (url, host, port) = match self.via.clone() {
            Some(p) => {
                let how = if self.target.tls {
                    format!(
                        "a CONNECT tunnel to {}:{}, TLS inside it",
                        self.target.host, self.target.port
                    )
                } else {
                    "the request in absolute form".to_owned()
                };
                let text = format!("through the proxy {} ({}): {how}", p.url, p.source);
                self.note(now, text);
                (p.url.clone(), p.host.clone(), p.port)
            }
            None => (
                self.target.url.clone(),
                self.target.host.clone(),
                self.target.port,
            ),
        };
        if let SessionState::Resolving { host: h } = &mut self.state {
            h.clone_from(&host);
        }
        match address_without_dns(&url, &host, port, &self.resolve) {
            Some((addr, event)) => {
                self.emit(now, EventKind::Dns(event));
                self.resolved(now, addr);
            }
            None => self
                .commands
                .push_back(SessionCommand::Lookup { host, port }),
        }
    }

    fn resolved(&mut self, now: Instant, addr: IpAddr) {
        self.enter(now, Phase::Connect);
        let port = self.via.as_ref().map_or(self.target.port, |p| p.port);
        let remote = SocketAddr::new(addr, port);
        self.state = SessionState::Connecting { remote };
        self.exchange.remote = Some(remote);
        self.conn = Some(Connection {
            remote,
            tcp: TcpState::Closed,
            peer_eof: false,
            tls: None,
            plain_in: Vec::new(),
            plain_out: Vec::new(),
            scratch: Vec::new(),
            tx_written: 0,
        });
        self.commands.push_back(SessionCommand::Connect { remote });
    }

    /// The connection is up: TLS starts, or the request is due (`http://`).
    fn connected(&mut self, now: Instant) -> Result<(), FetchError> {
        let Some(remote) = self.remote() else {
            return Ok(());
        };
        if !self.target.tls {
            self.state = SessionState::Exchanging {
                remote,
                reused: false,
            };
            self.exchange.request_due = true;
            return Ok(());
        }
        if self.via.is_some() {
            self.open_tunnel(now, remote);
            return Ok(());
        }
        self.start_tls(now, remote)
    }

    /// Sends `CONNECT host:port` to the proxy (its answer comes to
    /// [`Session::tunnel_answer`]).
    fn open_tunnel(&mut self, now: Instant, remote: SocketAddr) {
        let Some(proxy) = self.via.clone() else {
            return;
        };
        self.state = SessionState::Tunneling { remote };
        self.enter(now, Phase::Proxy);
        let authority = authority(&self.target.host, self.target.port);
        let mut headers = vec![("Host".to_owned(), authority.clone())];
        if let Some(c) = &proxy.credentials {
            headers.push(("Proxy-Authorization".to_owned(), c.basic()));
        }
        let line = format!("CONNECT {authority} HTTP/1.1");
        let mut bytes = format!("{line}\r\n").into_bytes();
        for (n, v) in &headers {
            bytes.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
        if let Some(conn) = self.conn.as_mut() {
            conn.plain_out.extend_from_slice(&bytes);
        }
        let shown = http::shown_headers(&headers, self.request.show_secrets);
        self.emit(
            now,
            EventKind::Proxy(ProxyEvent {
                stage: "connect_sent".into(),
                proxy: proxy.url.to_string(),
                source: proxy.source.clone(),
                target: authority,
                line,
                headers: shown,
                status: None,
            }),
        );
    }

    /// The proxy's answer to `CONNECT`: 2xx opens the tunnel and TLS starts inside it;
    /// anything else ends the fetch in the proxy phase.
    fn tunnel_answer(&mut self, now: Instant) -> Result<(), FetchError> {
        if let Some(conn) = self.conn.as_mut() {
            let data = std::mem::take(&mut conn.plain_in);
            self.tunnel_in.extend_from_slice(&data);
        }
        let Some(proxy) = self.via.clone() else {
            return Ok(());
        };
        let fail = |kind: &str, msg: String| {
            FetchError::new(FailureClass::Connect, Phase::Proxy, kind, msg)
        };
        let Some(end) = self.tunnel_in.windows(4).position(|w| w == b"\r\n\r\n") else {
            if self.tunnel_in.len() > MAX_PROXY_HEAD {
                return Err(fail(
                    "proxy-protocol",
                    format!(
                        "the proxy {} sent more than {} KiB without ending its answer to CONNECT",
                        proxy.url,
                        MAX_PROXY_HEAD / 1024
                    ),
                ));
            }
            return Ok(());
        };
        let head_len = end + 4;
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut fields);
        let parsed = resp.parse(self.tunnel_in.get(..head_len).unwrap_or_default());
        let (version, status, reason, headers) = match parsed {
            Ok(httparse::Status::Complete(_)) => (
                resp.version.unwrap_or(1),
                resp.code.unwrap_or(0),
                resp.reason.unwrap_or_default().to_owned(),
                resp.headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_owned(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect::<Vec<_>>(),
            ),
            _ => {
                return Err(fail(
                    "proxy-protocol",
                    format!(
                        "the proxy {} answered CONNECT with something that is not HTTP",
                        proxy.url
                    ),
                ));
            }
        };
        let leftover = self.tunnel_in.len() - head_len;
        self.tunnel_in.clear();
        let target = authority(&self.target.host, self.target.port);
        let ok = (200..300).contains(&status);
        self.emit(
            now,
            EventKind::Proxy(ProxyEvent {
                stage: if ok { "established" } else { "refused" }.into(),
                proxy: proxy.url.to_string(),
                source: proxy.source.clone(),
                target: target.clone(),
                line: format!("HTTP/1.{version} {status} {reason}"),
                headers: http::shown_headers(&headers, self.request.show_secrets),
                status: Some(status),
            }),
        );
        if !ok {
            return Err(match (status, &proxy.credentials) {
                (407 | 401, Some(_)) => fail(
                    "proxy-auth",
                    format!(
                        "the proxy {} refused the credentials in its URL (407 {reason}); check the user and password",
                        proxy.url
                    ),
                ),
                (407, None) => fail(
                    "proxy-auth",
                    format!(
                        "the proxy {} wants credentials (407 {reason}); put them in the proxy URL: http://user:password@{}:{}",
                        proxy.url, proxy.host, proxy.port
                    ),
                ),
                _ => fail(
                    "proxy-refused",
                    format!(
                        "the proxy {} would not open a tunnel to {target}: {status} {reason}",
                        proxy.url
                    ),
                ),
            });
        }
        if leftover > 0 {
            return Err(fail(
                "proxy-protocol",
                format!(
                    "the proxy {} sent {leftover} bytes after its answer, before TLS began",
                    proxy.url
                ),
            ));
        }
        let Some(remote) = self.remote() else {
            return Ok(());
        };
        self.start_tls(now, remote)?;
        self.process_tls(now);
        Ok(())
    }

    /// The TLS handshake begins on the connection (or the tunnel) to `remote`.
    fn start_tls(&mut self, now: Instant, remote: SocketAddr) -> Result<(), FetchError> {
        self.state = SessionState::Handshaking { remote };
        self.enter(now, Phase::Tls);
        let host = self.target.host.clone();
        let server_name = ServerName::try_from(host.clone()).map_err(|e| {
            FetchError::new(
                FailureClass::Tls,
                Phase::Tls,
                "bad-name",
                format!("'{host}' cannot be used as a TLS server name: {e}"),
            )
        })?;
        let tls = TlsClient::new(&self.tls_config, server_name)
            .map_err(|e| FetchError::new(FailureClass::Tls, Phase::Tls, e.kind(), e.to_string()))?;
        if let Some(conn) = self.conn.as_mut() {
            conn.tls = Some(tls);
        }
        Ok(())
    }

    /// Bytes (and perhaps the end of the stream) arrived: TLS, then HTTP.
    fn stream_read(&mut self, now: Instant, eof: bool) -> Result<(), FetchError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        if let Some(tls) = conn.tls.as_mut() {
            let plain = &mut conn.plain_in;
            let phase = self.phase.max(Phase::Tls);
            // What happened before a failure (the ServerHello before a certificate
            // error) is reported too.
            let mut progress = Vec::new();
            let r = tls.process_into(&mut |p| plain.extend_from_slice(p), &mut progress);
            self.report_tls(now, progress);
            r.map_err(|e| FetchError::new(FailureClass::Tls, phase, e.kind(), e.to_string()))?;
        }
        if self.conn.as_ref().is_some_and(|c| !c.plain_in.is_empty()) {
            self.receive_plaintext(now)?;
        }
        // The peer's end of the stream — TCP FIN, or TLS close_notify, which ends the
        // response stream like a FIN does — after the plaintext that came before it.
        let peer_closed = self.conn.as_ref().is_some_and(|c| {
            !c.peer_eof && (eof || c.tls.as_ref().is_some_and(TlsClient::peer_closed))
        });
        if peer_closed {
            self.peer_closed_stream(now)?;
        }
        Ok(())
    }

    /// Runs TLS once more (after queueing data or a close_notify) and reports it.
    fn process_tls(&mut self, now: Instant) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let Some(tls) = conn.tls.as_mut() else {
            return;
        };
        let plain = &mut conn.plain_in;
        let mut progress = Vec::new();
        // An error here shows up again, and is reported, at the next read.
        let _ = tls.process_into(&mut |d| plain.extend_from_slice(d), &mut progress);
        self.report_tls(now, progress);
    }

    fn report_tls(&mut self, now: Instant, progress: Vec<TlsProgress>) {
        for p in progress {
            if let TlsProgress::HandshakeComplete { .. } = &p {
                self.exchange.marks.appconnect = Some(now);
                self.exchange.request_due = true;
                if let Some(remote) = self.remote() {
                    self.state = SessionState::Exchanging {
                        remote,
                        reused: false,
                    };
                }
            }
            let (stage, detail, certificates) = match p.into_stage(&self.target.host) {
                Ok(s) => s,
                Err(note) => {
                    self.note(now, note);
                    continue;
                }
            };
            let tls = self.tls();
            let ev = TlsEvent {
                stage: stage.into(),
                version: tls.and_then(TlsClient::version),
                suite: tls.and_then(TlsClient::suite),
                group: tls.and_then(TlsClient::group),
                alpn: tls.and_then(TlsClient::alpn),
                detail,
                certificates,
            };
            self.emit(now, EventKind::Tls(ev));
        }
    }

    /// Queues the exchange's request on the open connection: its head, and the body's
    /// first pieces ([`Session::send_body`] sends the rest as the connection takes it).
    fn queue_request(&mut self, now: Instant) -> Result<(), FetchError> {
        self.enter(now, Phase::Request);
        let kind = self.request.body.as_ref().map(|(_, k)| *k);
        let body = self
            .exchange
            .body
            .as_ref()
            .zip(kind)
            .map(|(b, k)| (b.len(), k));
        let head = http::build_request(
            &self.request,
            Leg {
                url: &self.exchange.url,
                method: &self.exchange.method,
                body,
                auth: self.exchange.auth,
                purged: self.exchange.purged,
                proxy: match (&self.via, self.target.tls) {
                    (Some(p), false) => Some(http::ViaProxy {
                        authorization: p.credentials.as_ref().map(http::Credentials::basic),
                    }),
                    _ => None,
                },
            },
        );
        let bytes = head.to_bytes();
        self.exchange.marks.pretransfer = Some(now);
        self.emit(
            now,
            EventKind::HttpRequest(HttpRequestEvent {
                method: head.method.clone(),
                target: head.target.clone(),
                url: self.exchange.url.clone(),
                headers: http::shown_headers(&head.headers, self.request.show_secrets),
                body_bytes: body.map(|(len, _)| len),
            }),
        );
        self.exchange.reader = Some(ResponseReader::new(&head.method, Limits::default()));
        // What TLS still holds to send (its Finished) goes before the request.
        let start = self.tx_written() + self.outgoing().len() as u64;
        self.exchange.request_span = Some((start, start));
        self.exchange.request = Some(head);
        if let Some(body) = self.exchange.body.clone().filter(|b| !b.is_empty()) {
            let reader = BodyReader::open(body).map_err(|e| body_error(&e))?;
            self.exchange.body_reader = Some(reader);
        }
        self.write_request_bytes(now, &bytes);
        self.send_body(now)
    }

    /// Queues more of the request body while little waits to be sent; the request's
    /// span ends with its last byte.
    fn send_body(&mut self, now: Instant) -> Result<(), FetchError> {
        let waiting = self.outgoing().len();
        let Some(reader) = self.exchange.body_reader.as_mut() else {
            return Ok(());
        };
        if waiting >= BODY_LOW_WATER {
            return Ok(());
        }
        let mut piece = Vec::with_capacity(BODY_CHUNK);
        while !reader.is_done() && waiting + piece.len() < BODY_HIGH_WATER {
            reader
                .next_piece(&mut piece, BODY_CHUNK)
                .map_err(|e| body_error(&e))?;
        }
        if reader.is_done() {
            self.exchange.body_reader = None;
        }
        self.write_request_bytes(now, &piece);
        Ok(())
    }

    /// Hands request bytes to TLS (or the plaintext stream) and moves the request's end.
    fn write_request_bytes(&mut self, now: Instant, bytes: &[u8]) {
        let tls = self.conn.as_mut().and_then(|c| c.tls.as_mut());
        match tls {
            Some(tls) => {
                tls.send(bytes);
                self.process_tls(now);
            }
            None => {
                if let Some(conn) = self.conn.as_mut() {
                    conn.plain_out.extend_from_slice(bytes);
                }
            }
        }
        let end = self.tx_written() + self.outgoing().len() as u64;
        if let Some((_, e)) = self.exchange.request_span.as_mut() {
            *e = end;
        }
    }

    /// Gives received plaintext to the HTTP reader.
    fn receive_plaintext(&mut self, now: Instant) -> Result<(), FetchError> {
        if matches!(self.state, SessionState::Tunneling { .. }) {
            return self.tunnel_answer(now);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let data = std::mem::take(&mut conn.plain_in);
        if self.exchange.marks.starttransfer.is_none() && self.exchange.reader.is_some() {
            self.exchange.marks.starttransfer = Some(now);
            self.enter(now, Phase::Response);
        }
        let Some(reader) = self.exchange.reader.as_mut() else {
            self.note(
                now,
                format!(
                    "{} bytes arrived that no request asked for; ignored",
                    data.len()
                ),
            );
            return Ok(());
        };
        let intake = http::feed_response(
            reader,
            &data,
            &self.exchange.url,
            &mut self.exchange.redirecting,
            &mut self.body,
        );
        let leftover = intake.leftover_note();
        self.report_http(now, intake.progress);
        if let Some(e) = intake.error {
            return Err(FetchError::http(&e));
        }
        if let Some(note) = leftover {
            self.note(now, note);
        }
        if intake.complete {
            self.response_done(now)?;
        }
        Ok(())
    }

    fn report_http(&mut self, now: Instant, progress: Vec<HttpProgress>) {
        for p in progress {
            match crate::event::http_progress_event(&p, self.request.show_secrets) {
                Some(Ok(head)) => self.emit(now, EventKind::Http(head)),
                Some(Err(note)) => self.note(now, note),
                None => {}
            }
        }
    }

    /// The response is complete: follow a redirect (on this connection when it may be
    /// reused, else on a new one once this one is closed), or close the connection.
    fn response_done(&mut self, now: Instant) -> Result<(), FetchError> {
        if self.exchange.marks.body_done.is_some() {
            return Ok(());
        }
        self.exchange.marks.body_done = Some(now);
        // The server answered before the whole body was sent (a 413, say): the rest is
        // not sent, and the connection, whose request was cut short, is not reused.
        let body_cut_short = self.exchange.body_reader.take().is_some();
        if body_cut_short {
            self.note(
                now,
                "the server answered before the whole request body was sent; the rest is not sent",
            );
        }
        let Some(reader) = self.exchange.reader.as_ref() else {
            return Ok(());
        };
        let (bytes, wire) = (reader.decoded_body_bytes(), reader.wire_body_bytes());
        let connection_open = self
            .conn
            .as_ref()
            .is_some_and(|c| !c.peer_eof && c.tcp == TcpState::Established);
        let next = redirects::next_hop(
            reader.head(),
            &self.exchange.url,
            &self.exchange.method,
            &self.done_exchanges,
            redirects::HopRules {
                keep_alive: reader.keep_alive() && !body_cut_short,
                connection_open,
                allowed: self.redirect_protocols,
                limit: self.request.redirect_limit(),
            },
        )?;
        let Some(next) = next else {
            self.note(
                now,
                format!("response complete: {bytes} body bytes ({wire} on the wire)"),
            );
            self.begin_teardown(now, None);
            return Ok(());
        };
        // A reused connection is the same origin's, which picks the same proxy (or none):
        // `ProxySettings::for_url` depends on the scheme, host and port only.
        let target = Target::of_redirect(next.redirect.url.clone())?;
        let mut exchange = Exchange::new(
            next.redirect.url.clone(),
            now,
            next.reuse,
            next.redirect.method.clone(),
        );
        // As requests: 307 and 308 keep the method and body; a changed method drops the
        // body; credentials go only to the host they were given for.
        if next.redirect.method == self.exchange.method && matches!(next.redirect.status, 307 | 308)
        {
            exchange.body = self.exchange.body.clone();
        } else {
            exchange.purged = true;
        }
        exchange.auth =
            self.exchange.auth && !redirects::strips_auth(&self.exchange.url, &next.redirect.url);
        self.redirects = next.event.hop;
        self.emit(now, EventKind::Redirect(next.event));
        let record = self.exchange_record();
        self.done_exchanges.push(record);
        self.note(now, next.note);
        if next.reuse {
            self.target = target;
            self.exchange = exchange;
            self.exchange.remote = self.remote();
            self.exchange.request_due = true;
            if let Some(remote) = self.remote() {
                self.state = SessionState::Exchanging {
                    remote,
                    reused: true,
                };
            }
        } else {
            self.next_exchange = Some(exchange);
            self.begin_teardown(now, Some(target));
        }
        Ok(())
    }

    /// The server closed its side (TCP FIN or TLS close_notify).
    fn peer_closed_stream(&mut self, now: Instant) -> Result<(), FetchError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        conn.peer_eof = true;
        let remote = conn.remote;
        match self.exchange.reader.as_mut() {
            Some(reader) if !reader.is_complete() => {
                let progress =
                    http::finish_response(reader, self.exchange.redirecting, &mut self.body)
                        .map_err(|e| FetchError::http(&e))?;
                let complete = reader.is_complete();
                self.report_http(now, progress);
                if complete {
                    self.response_done(now)?;
                }
                Ok(())
            }
            Some(_) => Ok(()),
            None if self.phase < Phase::Request => Err(FetchError::new(
                if self.phase == Phase::Tls {
                    FailureClass::Tls
                } else {
                    FailureClass::Connect
                },
                self.phase,
                "closed",
                format!(
                    "{remote} closed the connection during the {} phase",
                    self.phase
                ),
            )),
            None => Ok(()),
        }
    }

    /// Sends close_notify (TLS) and asks the driver to close; `next_hop` starts once
    /// the connection is closed.
    fn begin_teardown(&mut self, now: Instant, next_hop: Option<Target>) {
        if matches!(
            self.state,
            SessionState::Closing { .. } | SessionState::Done
        ) {
            return;
        }
        self.enter(now, Phase::Teardown);
        self.exchange.body_reader = None;
        let until = (now + TEARDOWN_LIMIT).min(self.deadline);
        self.state = SessionState::Closing { until, next_hop };
        if let Some(tls) = self.conn.as_mut().and_then(|c| c.tls.as_mut()) {
            tls.close();
            self.process_tls(now);
        }
        self.commands.push_back(SessionCommand::Close);
    }

    /// The connection is closed: the redirect's next exchange starts, or the fetch ends.
    fn teardown_done(&mut self, now: Instant) {
        let SessionState::Closing { next_hop, .. } = &mut self.state else {
            return;
        };
        let next_hop = next_hop.take();
        self.state = SessionState::Done;
        match next_hop {
            Some(target) => {
                self.commands.push_back(SessionCommand::Release);
                let asked = self.next_exchange.take();
                let method = asked
                    .as_ref()
                    .map_or_else(|| "GET".to_owned(), |e| e.method.clone());
                self.exchange = Exchange::new(target.url.clone(), now, false, method);
                if let Some(asked) = asked {
                    self.exchange.body = asked.body;
                    self.exchange.auth = asked.auth;
                    self.exchange.purged = asked.purged;
                }
                self.target = target;
                self.conn = None;
                self.begin_exchange(now);
            }
            None => self.commands.push_back(SessionCommand::Finish),
        }
    }

    /// The record of the current exchange, for the summary and HAR.
    fn exchange_record(&self) -> ExchangeRecord {
        let e = &self.exchange;
        let head = e.head();
        ExchangeRecord {
            url: e.url.to_string(),
            method: e
                .request
                .as_ref()
                .map(|r| r.method.clone())
                .unwrap_or_else(|| "GET".into()),
            request_headers: e
                .request
                .as_ref()
                .map(|r| http::shown_headers(&r.headers, self.request.show_secrets))
                .unwrap_or_default(),
            status: head.map(|h| h.status).unwrap_or(0),
            reason: head.map(|h| h.reason.clone()).unwrap_or_default(),
            http_version: head.map(|h| h.version.clone()).unwrap_or_default(),
            response_headers: head
                .map(|h| {
                    let lower: Vec<(String, String)> = h
                        .headers
                        .iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                        .collect();
                    http::shown_headers(&lower, self.request.show_secrets)
                })
                .unwrap_or_default(),
            started_us: e.marks.start.micros_since(self.start),
            reused_connection: e.marks.reused,
            remote: e.remote.map(|r| r.to_string()).unwrap_or_default(),
            body_bytes: e.body_bytes(),
            wire_body_bytes: e.wire_body_bytes(),
            har: e.marks.har(self.target.tls),
            timings: e.marks.leg(e.url.scheme() == "https"),
        }
    }
}

/// A request body that could not be read is a set-up failure of the request phase.
fn body_error(e: &http::BodyReadError) -> FetchError {
    FetchError::new(
        FailureClass::Setup,
        Phase::Request,
        "request-body",
        format!("{e}; check the file given to --data-binary"),
    )
}

/// `host:port` for a CONNECT request (an IPv6 literal in brackets).
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
