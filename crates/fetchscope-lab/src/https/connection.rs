//! [`Connection`]: one HTTPS connection — TCP bytes in, rustls, HTTP/1.1 requests and
//! streamed responses, rustls, TCP bytes out — and its orderly close. On port 80 the same
//! connection runs without TLS (a plain [`Session`]). The bytes come from a
//! [`ByteStream`]: the accepted TCP socket, or a tunnel through the lab's proxy, whose
//! front end (a [`Role::Proxy`] connection) is this same code answering proxy requests.
//!
//! Every buffer is bounded: the request bytes by [`MAX_HEAD_LEN`] and a request body by
//! [`MAX_BODY_LEN`] (see [`RequestReader`]), rustls's own buffers by its limits (plaintext
//! is only drained when there is room, TCP is only read while rustls wants to read), and
//! outgoing TLS bytes by producing a new response chunk only once the previous one has
//! been handed to TCP.

use std::io::ErrorKind;
use std::net::IpAddr;
use std::sync::Arc;

use super::session::Session;
use super::stream::ByteStream;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};

use crate::fault::LabFault;
use crate::http::{
    Incoming, MAX_BODY_LEN, MAX_HEAD_LEN, RequestReader, ResponseStream, RouteContext, respond,
    respond_error,
};
use crate::proxy::{ProxyAnswer, ProxyPolicy, TunnelRequest};
use crate::stats::ServerStats;

/// Largest slice of TCP bytes handed to rustls at once (rustls reads ≤ 4 KiB per call).
const READ_CHUNK: usize = 4096;
/// Plaintext bytes handed to rustls per step (one full TLS record).
const WRITE_CHUNK: usize = 16 * 1024;
/// Receive/respond/transmit rounds per [`Connection::serve`] call.
const MAX_ROUNDS: usize = 16;
/// How long a connection may stay half-closed after the server's FIN before it is
/// dropped silently (Linux's `tcp_fin_timeout`).
pub(crate) const FIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server thinks before each response with the `slow` fault.
pub(crate) const SLOW_DELAY: Duration = Duration::from_secs(5);
/// The alert the `tls-alert` fault answers a ClientHello with: a TLS record (type 21,
/// version 1.2, length 2) holding a fatal (2) `handshake_failure` (40) alert, what a
/// server without a cipher suite in common with the client sends.
pub(crate) const HANDSHAKE_FAILURE_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];
/// The record header the `giant-tls-record` fault answers a ClientHello with: a handshake
/// record (type 22, version 1.2) announcing 65535 bytes, more than any TLS version allows
/// (2^14 + 2048); the 65535 bytes follow.
pub(crate) const GIANT_RECORD_HEADER: [u8; 5] = [0x16, 0x03, 0x03, 0xff, 0xff];
/// The most bytes of a ClientHello read before answering it with the alert anyway.
const MAX_HELLO: usize = 5 + 16 * 1024;

/// What the server needs while serving connections.
#[derive(Debug)]
pub(crate) struct ServeContext<'a> {
    /// The virtual time now.
    pub now: Instant,
    /// The `Date` header value for responses started now.
    pub date: &'a str,
    /// Counters to update.
    pub stats: &'a mut ServerStats,
}

/// What one [`Connection::serve`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Activity {
    /// The socket was read, written or closed.
    pub progressed: bool,
    /// The socket is closed: forget the connection and remove the socket.
    pub finished: bool,
}

/// Why the server is closing a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseReason {
    /// The last response said `Connection: close`.
    AfterResponse,
    /// The client sent close_notify.
    PeerCloseNotify,
    /// The client sent FIN.
    PeerFin,
    /// The client broke the TLS protocol (rustls queued an alert).
    TlsError,
}

/// What a connection answers requests with.
#[derive(Debug, Clone)]
pub(crate) enum Role {
    /// The lab's web server: every request goes to the routes.
    Origin,
    /// The lab's proxy: requests are proxy requests (`CONNECT`, absolute form), answered
    /// by the policy; an accepted `CONNECT` ends the connection's own requests.
    Proxy(Arc<ProxyPolicy>),
}

/// One HTTP connection on one TCP socket: HTTPS on port 443, plain HTTP on port 80, the
/// proxy on ports 3128 and 3129, or the far end of a proxy tunnel.
#[derive(Debug)]
pub(crate) struct Connection {
    handle: SocketHandle,
    role: Role,
    /// A `CONNECT` the proxy accepted: once its `200` is sent, the connection hands its
    /// stream over to the tunnel ([`Connection::take_tunnel`]).
    tunnel: Option<TunnelRequest>,
    session: Session,
    /// Decrypted request bytes, read into whole requests (heads and bodies).
    requests: RequestReader,
    /// TLS bytes waiting for room in the TCP send buffer.
    outgoing: Vec<u8>,
    response: Option<ResponseStream>,
    established: bool,
    handshake_done: bool,
    closing: Option<CloseReason>,
    close_notify_queued: bool,
    /// When the server sent its FIN.
    fin_sent_at: Option<Instant>,
    /// The lab's fault, if any.
    fault: Option<LabFault>,
    /// The `slow` fault: the next response may not start before this time.
    hold_until: Option<Instant>,
    /// The `tls-alert` fault: the bytes of the ClientHello record read so far.
    hello: Vec<u8>,
    /// The URL scheme this connection serves (`https` or `http`), for absolute redirects.
    scheme: &'static str,
    /// The client's address, once the connection is established.
    peer: Option<IpAddr>,
}

impl Connection {
    /// A connection on the socket `handle`, which has just left LISTEN.
    pub fn new(handle: SocketHandle, session: Session, fault: Option<LabFault>) -> Self {
        Self::with_role(handle, session, fault, Role::Origin)
    }

    /// The proxy's side of a client connection on `handle` (plain HTTP; the lab's fault
    /// reaches only what it forwards and tunnels).
    pub fn proxy(handle: SocketHandle, policy: Arc<ProxyPolicy>) -> Self {
        Self::with_role(handle, Session::plain(), None, Role::Proxy(policy))
    }

    /// The far end of a tunnel through the proxy on the proxy's socket `handle`: the lab's
    /// web server, for a client whose address it sees as `via` (the proxy's).
    pub fn tunnelled(
        handle: SocketHandle,
        session: Session,
        fault: Option<LabFault>,
        via: Option<IpAddr>,
    ) -> Self {
        let mut conn = Self::with_role(handle, session, fault, Role::Origin);
        // The proxy's connection was counted when it was established.
        conn.established = true;
        conn.peer = via;
        conn
    }

    /// A connection in `role` on `handle`, not yet established.
    fn with_role(
        handle: SocketHandle,
        session: Session,
        fault: Option<LabFault>,
        role: Role,
    ) -> Self {
        let scheme = if session.is_tls() { "https" } else { "http" };
        let requests = match role {
            Role::Origin => RequestReader::default(),
            Role::Proxy(_) => RequestReader::stopping_at_connect(),
        };
        Connection {
            handle,
            role,
            tunnel: None,
            session,
            requests,
            outgoing: Vec::new(),
            response: None,
            established: false,
            handshake_done: false,
            closing: None,
            close_notify_queued: false,
            fin_sent_at: None,
            fault,
            hold_until: None,
            hello: Vec::new(),
            scheme,
            peer: None,
        }
    }

    /// The connection's socket.
    pub fn handle(&self) -> SocketHandle {
        self.handle
    }

    /// When the connection must be looked at even without traffic: the end of its
    /// FIN timeout, or of the `slow` fault's wait.
    pub fn deadline(&self) -> Option<Instant> {
        [self.fin_deadline(), self.hold_until]
            .into_iter()
            .flatten()
            .min()
    }

    /// When the server gives up on a client that never finishes closing.
    fn fin_deadline(&self) -> Option<Instant> {
        self.fin_sent_at.map(|t| t + FIN_TIMEOUT)
    }

    /// The accepted `CONNECT` and the tunnel bytes that came after its head, once its
    /// `200 Connection established` has been handed to the socket: from then on the
    /// stream is the tunnel's, and this connection must not be served again.
    pub fn take_tunnel(&mut self) -> Option<(TunnelRequest, Vec<u8>)> {
        let sent = self.response.is_none()
            && self.outgoing.is_empty()
            && !self.session.wants_write()
            && self.closing.is_none();
        if !sent {
            return None;
        }
        let tunnel = self.tunnel.take()?;
        let mut early = self.requests.take_tunnel_bytes();
        early.extend(self.session.take_plain_input());
        Some((tunnel, early))
    }

    /// Moves the connection forward as far as its stream allows.
    pub fn serve<S: ByteStream>(&mut self, socket: &mut S, cx: &mut ServeContext<'_>) -> Activity {
        match socket.state() {
            // Back in LISTEN means an RST in SYN-RECEIVED: the service has another listener.
            tcp::State::Closed | tcp::State::Listen => {
                return Activity {
                    progressed: false,
                    finished: true,
                };
            }
            tcp::State::SynReceived | tcp::State::TimeWait => return Activity::default(),
            _ => {}
        }
        if self.fin_deadline().is_some_and(|d| cx.now >= d) {
            // The client never finished closing: forget the socket without an RST, like
            // an orphaned socket after tcp_fin_timeout.
            log::debug!("lab HTTPS: FIN timeout in {}", socket.state());
            return Activity {
                progressed: false,
                finished: true,
            };
        }
        if !self.established {
            self.established = true;
            match self.role {
                Role::Origin => cx.stats.connections_accepted += 1,
                Role::Proxy(_) => cx.stats.proxy_connections += 1,
            }
            if let Some(peer) = socket.remote_addr() {
                log::debug!("lab HTTPS: connection from {peer}");
                self.peer = Some(peer);
            }
        }
        let mut progressed = false;
        for _ in 0..MAX_ROUNDS {
            let mut did = self.receive(socket, cx);
            did |= self.respond(cx);
            did |= self.transmit(socket);
            did |= self.close_if_done(socket, cx.now);
            if !did {
                break;
            }
            progressed = true;
        }
        Activity {
            progressed,
            finished: false,
        }
    }

    /// TCP → rustls → request bytes. True when the socket was read.
    fn receive<S: ByteStream>(&mut self, socket: &mut S, cx: &mut ServeContext<'_>) -> bool {
        if self.tunnel.is_some() {
            // The bytes after an accepted CONNECT are the tunnel's: leave them unread.
            return false;
        }
        let mut did = false;
        // Plaintext left in rustls when `requests` was full last time.
        self.drain_plaintext();
        while socket.can_recv() {
            if self.closing.is_some() {
                // Nothing more will be answered: keep the window open, drop the bytes.
                let dropped = socket.recv(|buf| (buf.len(), buf.len())).unwrap_or(0);
                if dropped == 0 {
                    break;
                }
                did = true;
                continue;
            }
            if matches!(
                self.fault,
                Some(LabFault::TlsAlert | LabFault::GiantTlsRecord)
            ) && self.session.is_tls()
            {
                if !self.refuse_handshake(socket, cx) {
                    break;
                }
                did = true;
                continue;
            }
            if !self.session.wants_read() {
                break;
            }
            let tls = &mut self.session;
            let read = socket.recv(|buf| {
                let chunk = buf.get(..buf.len().min(READ_CHUNK)).unwrap_or_default();
                if chunk.is_empty() {
                    // An empty read would tell rustls the peer closed TCP.
                    return (0, Ok(0));
                }
                match tls.read_tls(&mut &*chunk) {
                    Ok(n) => (n, Ok(n)),
                    Err(e) => (0, Err(e)),
                }
            });
            match read {
                Some(Ok(0)) | None => break,
                Some(Ok(_)) => did = true,
                Some(Err(e)) => {
                    log::debug!("lab HTTPS: rustls refused input: {e}");
                    self.fail(cx);
                    break;
                }
            }
            match self.session.process_new_packets() {
                Ok(peer_closed) => {
                    if peer_closed {
                        self.start_close(CloseReason::PeerCloseNotify);
                    }
                }
                Err(e) => {
                    log::debug!("lab HTTPS: TLS error from client: {e}");
                    self.fail(cx);
                }
            }
            if !self.handshake_done && !self.session.is_handshaking() {
                self.handshake_done = true;
                if self.session.is_tls() {
                    cx.stats.tls_handshakes += 1;
                }
            }
            self.drain_plaintext();
        }
        if !socket.may_recv() && self.closing.is_none() {
            // FIN received and every byte before it read.
            self.start_close(CloseReason::PeerFin);
        }
        did
    }

    /// The `tls-alert` fault: reads the first TLS record (the ClientHello), then queues a
    /// fatal `handshake_failure` alert and closes without rustls ever seeing the hello
    /// (the `giant-tls-record` fault: a 65535-byte record instead of the alert).
    /// True when bytes were read.
    fn refuse_handshake<S: ByteStream>(
        &mut self,
        socket: &mut S,
        cx: &mut ServeContext<'_>,
    ) -> bool {
        let room = MAX_HELLO.saturating_sub(self.hello.len());
        let hello = &mut self.hello;
        let n = socket
            .recv(|buf| {
                let n = buf.len().min(room);
                hello.extend_from_slice(buf.get(..n).unwrap_or_default());
                (n, n)
            })
            .unwrap_or(0);
        let record_len = match self.hello[..] {
            [_, _, _, high, low, ..] => 5 + usize::from(u16::from_be_bytes([high, low])),
            _ => usize::MAX,
        };
        if self.hello.len() >= record_len.min(MAX_HELLO) {
            if self.fault == Some(LabFault::GiantTlsRecord) {
                log::debug!("lab HTTPS: answering the ClientHello with a 65535-byte record");
                self.outgoing.extend_from_slice(&GIANT_RECORD_HEADER);
                self.outgoing
                    .resize(GIANT_RECORD_HEADER.len() + usize::from(u16::MAX), 0x42);
            } else {
                log::debug!("lab HTTPS: answering the ClientHello with a handshake_failure alert");
                self.outgoing.extend_from_slice(&HANDSHAKE_FAILURE_ALERT);
            }
            self.hello.clear();
            cx.stats.tls_alerts_sent += 1;
            self.closing = Some(CloseReason::TlsError);
            self.response = None;
        }
        n > 0
    }

    /// Moves decrypted bytes into `requests` while there is room.
    fn drain_plaintext(&mut self) {
        let mut buf = [0u8; READ_CHUNK];
        loop {
            let room = self.requests.room();
            let Some(dst) = buf
                .get_mut(..room.min(READ_CHUNK))
                .filter(|d| !d.is_empty())
            else {
                return;
            };
            match self.session.read_plaintext(dst) {
                Ok(0) => {
                    self.start_close(CloseReason::PeerCloseNotify);
                    return;
                }
                Ok(n) => self.requests.push(dst.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::debug!("lab HTTPS: reading plaintext: {e}");
                    self.start_close(CloseReason::PeerFin);
                    return;
                }
            }
        }
    }

    /// Requests → responses → plaintext into rustls. True when rustls got bytes.
    fn respond(&mut self, cx: &mut ServeContext<'_>) -> bool {
        if self.closing.is_some() {
            return false;
        }
        if self.response.is_none() {
            if !self.waited_enough(cx.now) {
                return false;
            }
            self.response = self.next_response(cx);
        }
        let Some(response) = self.response.as_mut() else {
            return false;
        };
        if !self.outgoing.is_empty() || self.session.wants_write() {
            return false;
        }
        let mut chunk = [0u8; WRITE_CHUNK];
        let n = response.peek(&mut chunk);
        let written = match self
            .session
            .write_plaintext(chunk.get(..n).unwrap_or_default())
        {
            Ok(w) => w,
            Err(e) => {
                log::debug!("lab HTTPS: rustls refused response bytes: {e}");
                self.fail(cx);
                return false;
            }
        };
        response.consume(written);
        cx.stats.bytes_sent += written as u64;
        if response.is_done() && response.is_interim() {
            self.response = None;
        } else if response.is_done() {
            cx.stats.requests_served += 1;
            if response.close() {
                self.start_close(CloseReason::AfterResponse);
            }
            self.response = None;
        }
        written > 0
    }

    /// True when the next response may start: always, except with the `slow` fault, where
    /// a complete request waits [`SLOW_DELAY`] first.
    fn waited_enough(&mut self, now: Instant) -> bool {
        if self.fault != Some(LabFault::Slow) {
            return true;
        }
        match self.hold_until {
            Some(t) if now >= t => {
                self.hold_until = None;
                true
            }
            Some(_) => false,
            None => {
                if !self.requests.request_ready() {
                    return true;
                }
                log::debug!("lab HTTPS: slow fault: waiting {SLOW_DELAY} before answering");
                self.hold_until = Some(now + SLOW_DELAY);
                false
            }
        }
    }

    /// Takes the next request, once it is all there (head and body), and starts its
    /// response; or a `100 Continue` while the client waits to send a body.
    fn next_response(&mut self, cx: &mut ServeContext<'_>) -> Option<ResponseStream> {
        let (response, head_only, close) = match self.requests.next() {
            Incoming::Pending => return None,
            Incoming::Continue => {
                log::debug!("lab HTTPS: 100 Continue");
                return Some(ResponseStream::interim(100, "Continue"));
            }
            Incoming::Request(request) if matches!(self.role, Role::Proxy(_)) => {
                let Role::Proxy(policy) = self.role.clone() else {
                    return None;
                };
                match policy.answer(request, cx.stats) {
                    ProxyAnswer::Tunnel(tunnel) => {
                        self.tunnel = Some(tunnel);
                        return Some(ResponseStream::status_line_only(
                            200,
                            "Connection established",
                        ));
                    }
                    ProxyAnswer::Respond {
                        response,
                        head_only,
                        close,
                    } => (response, head_only, close),
                }
            }
            Incoming::Request(request) => {
                let route_cx = RouteContext {
                    fault: self.fault,
                    scheme: self.scheme,
                    origin: self.peer,
                };
                let response = respond(&request, &route_cx);
                log::debug!(
                    "lab HTTPS: {} {} ({} body bytes) -> {}",
                    request.method,
                    request.target,
                    request.body.len(),
                    response.status
                );
                let close = request.wants_close || response.close;
                (response, request.is_head(), close)
            }
            Incoming::Refused { status, why } => {
                log::debug!(
                    "lab HTTPS: refusing a request ({status}): {why} (limits: head {MAX_HEAD_LEN}, body {MAX_BODY_LEN} bytes)"
                );
                cx.stats.connection_errors += 1;
                (respond_error(status), false, true)
            }
        };
        Some(ResponseStream::new(response, head_only, close, cx.date))
    }

    /// rustls → `outgoing` → TCP. True when the socket took bytes.
    fn transmit<S: ByteStream>(&mut self, socket: &mut S) -> bool {
        let mut did = false;
        loop {
            if !self.outgoing.is_empty() {
                match socket.send(&self.outgoing) {
                    Ok(n) => {
                        self.outgoing.drain(..n.min(self.outgoing.len()));
                        did |= n > 0;
                    }
                    Err(e) => {
                        log::debug!("lab HTTPS: socket no longer sends: {e}");
                        self.outgoing.clear();
                        return did;
                    }
                }
                if !self.outgoing.is_empty() {
                    return did;
                }
            }
            if !self.session.wants_write() {
                return did;
            }
            if let Err(e) = self.session.write_tls(&mut self.outgoing) {
                log::debug!("lab HTTPS: rustls output: {e}");
                return did;
            }
        }
    }

    /// Queues close_notify and then closes TCP (FIN) once everything is sent.
    fn close_if_done<S: ByteStream>(&mut self, socket: &mut S, now: Instant) -> bool {
        let Some(reason) = self.closing else {
            return false;
        };
        if self.fin_sent_at.is_some() {
            return false;
        }
        if !self.close_notify_queued && self.handshake_done && reason != CloseReason::TlsError {
            self.session.send_close_notify();
            self.close_notify_queued = true;
            return true;
        }
        if self.outgoing.is_empty() && !self.session.wants_write() {
            log::debug!("lab HTTPS: closing connection ({reason:?})");
            socket.close();
            self.fin_sent_at = Some(now);
            return true;
        }
        false
    }

    fn start_close(&mut self, reason: CloseReason) {
        if self.closing.is_none() {
            self.closing = Some(reason);
            self.response = None;
        }
    }

    fn fail(&mut self, cx: &mut ServeContext<'_>) {
        if self.closing != Some(CloseReason::TlsError) {
            cx.stats.connection_errors += 1;
        }
        self.closing = Some(CloseReason::TlsError);
        self.response = None;
    }
}
