//! [`KernelConnection`]: the fetch's kernel TCP socket, and its state as `TCP_INFO` (and,
//! once the kernel hands the connection to a time-wait socket, `sock_diag` or
//! `/proc/net/tcp`) tells it, each change dated by the segment that caused it.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

use fetchscope_core::event::TcpStateChange;
use fetchscope_core::tcp_state::Stack;
use fetchscope_core::{FailureClass, FetchError, Phase, TcpState};

use crate::capture::flow_key;
use crate::tcpinfo::{self, TcpInfo};
use crate::{diag, proc_tcp, sys};

/// Linux TCP states used here.
pub(crate) const TCP_ESTABLISHED: u8 = 1;
const TCP_SYN_SENT: u8 = 2;
const TCP_FIN_WAIT1: u8 = 4;
const TCP_FIN_WAIT2: u8 = 5;
const TCP_TIME_WAIT: u8 = 6;
pub(crate) const TCP_CLOSE: u8 = 7;
const TCP_CLOSE_WAIT: u8 = 8;
const TCP_LAST_ACK: u8 = 9;
const TCP_CLOSING: u8 = 11;

/// The fetch's TCP connection through the kernel.
pub(crate) struct KernelConnection {
    /// The non-blocking socket.
    pub stream: TcpStream,
    /// The server.
    pub remote: SocketAddr,
    /// Our end, once the kernel picked it.
    pub local: Option<SocketAddr>,
    /// The last `TCP_*` state read.
    pub state: u8,
    /// `shutdown(SHUT_WR)` was called: the kernel sends FIN after our last data.
    pub fin_sent: bool,
    /// When the server's latest segment arrived (µs since the run's start).
    last_rx_us: u64,
    /// When the last state change was dated.
    last_state_us: u64,
}

/// A state change read from the kernel, not yet dated.
pub(crate) struct StateChange {
    /// The change, with its cause.
    pub change: TcpStateChange,
    /// `TCP_INFO` when it was read.
    pub info: TcpInfo,
    /// A server segment caused it (not our own call).
    by_segment: bool,
    /// When our own call that caused it was made (µs since the run's start).
    called: Option<u64>,
}

impl KernelConnection {
    /// Opens a non-blocking socket with `TCP_NODELAY` (as requests sets it) and starts
    /// connecting to `remote`.
    pub fn open(remote: SocketAddr) -> io::Result<KernelConnection> {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::for_address(remote), Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        socket.set_tcp_nodelay(true)?;
        match socket.connect(&remote.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        Ok(KernelConnection {
            local: socket.local_addr().ok().and_then(|a| a.as_socket()),
            stream: TcpStream::from(socket),
            remote,
            state: TCP_SYN_SENT,
            fin_sent: false,
            last_rx_us: 0,
            last_state_us: 0,
        })
    }

    /// A captured packet at `t_us`: the server's segments date the changes they cause.
    pub fn saw(&mut self, t_us: u64, packet: &[u8]) {
        if let (Some(k), Some(l)) = (flow_key(packet), self.local)
            && k.protocol == 6
            && SocketAddr::new(k.src, k.sport) == self.remote
            && SocketAddr::new(k.dst, k.dport) == l
        {
            self.last_rx_us = self.last_rx_us.max(t_us);
        }
    }

    /// The connection failed to connect (the kernel's pending error).
    pub fn take_error(&self) -> Option<io::Error> {
        sys::take_error(self.stream.as_fd()).ok().flatten()
    }

    /// `TCP_INFO` now.
    pub fn info(&self) -> Option<TcpInfo> {
        tcpinfo::read(self.stream.as_fd()).ok()
    }

    /// `shutdown(SHUT_WR)`: as close() would, but the socket stays ours, so `TCP_INFO`
    /// can follow the rest of the close.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        self.fin_sent = true;
        sys::shutdown_write(self.stream.as_fd())
    }

    /// When what `TCP_INFO` says at the end happened: the last change, or the last
    /// segment from the server.
    pub fn last_change_us(&self) -> u64 {
        self.last_state_us.max(self.last_rx_us)
    }

    /// Reads `TCP_INFO`: the change since the last read, if any (`cause`: our own call
    /// made at `called`, else the transition's own words).
    pub fn poll_change(&mut self, cause: Option<&str>, called: Option<u64>) -> Option<StateChange> {
        let info = self.info()?;
        let state = info.state_code;
        if state == self.state {
            return None;
        }
        // A client socket never reads `TCP_NEW_SYN_RECV` (a listener's request socket's
        // state) or a number outside `TCP_*`: nothing to report for those.
        let mut to = TcpState::from_linux(state)?;
        let from_state = self.state;
        let from = TcpState::from_linux(from_state).unwrap_or(TcpState::Closed);
        let mut cause = cause.map(str::to_string);
        let by_segment = cause.is_none()
            && matches!(
                (from_state, state),
                (TCP_SYN_SENT, _)
                    | (TCP_ESTABLISHED, TCP_CLOSE_WAIT | TCP_CLOSE)
                    | (TCP_FIN_WAIT1, _)
                    | (TCP_FIN_WAIT2, _)
                    | (TCP_CLOSING, _)
                    | (TCP_LAST_ACK, _)
            );
        // A connection that closes from FIN-WAIT/CLOSING lives on in a time-wait socket;
        // ours then reads CLOSED. The kernel's table says which.
        if state == TCP_CLOSE
            && (self.fin_sent || matches!(from_state, TCP_FIN_WAIT1 | TCP_FIN_WAIT2 | TCP_CLOSING))
            && let Some(l) = self.local
            && let Some(left) = time_wait_left(l, self.remote)
        {
            to = TcpState::TimeWait;
            let how_long = match left {
                Some(d) => format!("for another {:.1} s", d.as_secs_f64()),
                None => "(60 s on Linux)".to_string(),
            };
            cause = Some(format!(
                "both FINs were exchanged and acknowledged; the kernel keeps the connection in a time-wait socket {how_long}, and our socket now reads CLOSED"
            ));
        }
        self.state = state;
        Some(StateChange {
            change: TcpStateChange::new(from, to, cause.as_deref(), Stack::Kernel),
            info,
            by_segment,
            called,
        })
    }

    /// When `c` happened, with the capture read up to `now_us`: the kernel changed state
    /// when it processed the segment that caused it, which may be well before this
    /// process got to run and look, so a change a server segment caused is dated just
    /// after that segment; one our own call caused, when the call was made.
    pub fn date(&mut self, c: &StateChange, now_us: u64) -> u64 {
        let t = if c.by_segment && self.last_rx_us > self.last_state_us {
            (self.last_rx_us + 1).min(now_us)
        } else {
            c.called.unwrap_or(now_us)
        };
        self.last_state_us = t;
        t
    }
}

/// Why connecting to `remote` failed, from the kernel's error `e` (`pending`: the
/// socket's error after connect() returned); `refused` is the session's refusal.
pub(crate) fn connect_error(
    remote: SocketAddr,
    e: &io::Error,
    pending: bool,
    refused: FetchError,
) -> FetchError {
    let (kind, msg) = match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => return refused,
        Some(libc::ETIMEDOUT) => (
            "timeout",
            format!("the kernel gave up connecting to {remote}: {e}"),
        ),
        Some(libc::ENETUNREACH | libc::EHOSTUNREACH) => {
            ("unreachable", format!("connecting to {remote} failed: {e}"))
        }
        _ if !pending => {
            let msg = format!("connect() to {remote} failed: {e}");
            return FetchError::new(FailureClass::Setup, Phase::Connect, "setup", msg);
        }
        _ => ("unreachable", format!("connecting to {remote} failed: {e}")),
    };
    FetchError::new(FailureClass::Connect, Phase::Connect, kind, msg)
}

/// How long the connection `l` → `r` stays in TIME-WAIT, if it is there: asked over
/// `sock_diag`, else read from `/proc/net/tcp` (slow on big hosts, no remaining time).
fn time_wait_left(l: SocketAddr, r: SocketAddr) -> Option<Option<Duration>> {
    match diag::state(l, r) {
        Some(d) => (d.state == TCP_TIME_WAIT).then_some(Some(d.expires)),
        None => (proc_tcp::state(l, r) == Some(TCP_TIME_WAIT)).then_some(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{Ipv4Addr, TcpListener};

    /// Waits until `c`'s socket is writable (connected, or failed).
    fn wait_writable(c: &KernelConnection) {
        let mut pfd = [sys::PollFd::new(&c.stream, sys::PollFlags::OUT)];
        assert_eq!(sys::poll(&mut pfd, Duration::from_secs(5)).unwrap(), 1);
    }

    #[test]
    fn a_connection_opens_without_blocking_and_its_fin_reaches_the_server() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = KernelConnection::open(l.local_addr().unwrap()).unwrap();
        wait_writable(&c);
        assert!(c.take_error().is_none());
        let local = c.local.expect("the kernel picked our end");
        assert_eq!(local.ip(), std::net::IpAddr::V4(Ipv4Addr::LOCALHOST));
        // SYN-SENT → ESTABLISHED, read from TCP_INFO with the kernel's words.
        let change = c.poll_change(None, None).expect("a state change");
        assert_eq!(
            (change.change.from, change.change.to),
            (TcpState::SynSent, TcpState::Established)
        );
        assert!(change.change.cause.unwrap().contains("connect() returns"));
        assert!(c.poll_change(None, None).is_none(), "no change twice");
        c.shutdown_write().unwrap();
        assert!(c.fin_sent);
        let (mut conn, peer) = l.accept().unwrap();
        assert_eq!(peer, local);
        let mut b = [0u8; 1];
        assert_eq!(conn.read(&mut b).unwrap(), 0, "our FIN");
    }

    #[test]
    fn a_refused_connection_is_the_sessions_refusal() {
        // A port nothing listens on any more.
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let refused = FetchError::new(FailureClass::Connect, Phase::Connect, "refused", "x");
        let e = match KernelConnection::open(closed) {
            Ok(c) => {
                wait_writable(&c);
                let e = c.take_error().expect("a pending error");
                assert!(c.take_error().is_none(), "cleared by reading");
                connect_error(closed, &e, true, refused.clone())
            }
            Err(e) => connect_error(closed, &e, false, refused.clone()),
        };
        assert_eq!(e, refused);
        let other = io::Error::from_raw_os_error(libc::EHOSTUNREACH);
        let e = connect_error(closed, &other, true, refused.clone());
        assert_eq!(
            (e.class, e.kind.as_str()),
            (FailureClass::Connect, "unreachable")
        );
        let odd = io::Error::from_raw_os_error(libc::EINVAL);
        let e = connect_error(closed, &odd, false, refused);
        assert_eq!(e.class, FailureClass::Setup);
    }
}
