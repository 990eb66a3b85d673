//! [`DnsTcpService`]: the lab's [`Zone`] over TCP port 53 (RFC 1035 §4.2.2, RFC 7766):
//! each message is preceded by its length as two bytes, answers are never truncated.
//!
//! A client falls back to TCP when a UDP answer comes back with the TC bit (the
//! `dns-truncated` fault makes every UDP answer do that).

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};

use super::Zone;
use super::service::DnsBehaviour;
use super::zone::Transport;
use crate::error::LabError;
use crate::stats::ServerStats;

/// The DNS port.
const PORT: u16 = 53;
/// The most TCP sockets on port 53 at once (connections plus the listener); further SYNs
/// get RST until one closes.
const MAX_SOCKETS: usize = 8;
/// Receive buffer of each socket.
const RX_BUFFER: usize = 8 * 1024;
/// Send buffer of each socket.
const TX_BUFFER: usize = 16 * 1024;
/// The longest query accepted; a longer length prefix closes the connection.
const MAX_QUERY: usize = 4096;
/// Answers waiting for room in the send buffer at most; past it, queries wait unread.
const MAX_PENDING_OUT: usize = 64 * 1024;
/// How long a connection may stay half-closed after the server's FIN before it is
/// dropped silently.
const FIN_TIMEOUT: Duration = Duration::from_secs(60);

/// One DNS-over-TCP connection.
#[derive(Debug)]
struct DnsTcpConnection {
    handle: SocketHandle,
    /// Bytes received and not yet parsed as messages (at most 2 + [`MAX_QUERY`]).
    incoming: Vec<u8>,
    /// Length-prefixed answers waiting for room in the send buffer.
    outgoing: Vec<u8>,
    established: bool,
    fin_sent_at: Option<Instant>,
}

/// The DNS server's TCP side: a listener on port 53 and its connections.
#[derive(Debug)]
pub(crate) struct DnsTcpService {
    behaviour: DnsBehaviour,
    listener: Option<SocketHandle>,
    connections: Vec<DnsTcpConnection>,
}

impl DnsTcpService {
    /// Opens the first listening socket in `sockets`.
    pub fn new(
        behaviour: DnsBehaviour,
        sockets: &mut SocketSet<'static>,
    ) -> Result<Self, LabError> {
        Ok(DnsTcpService {
            behaviour,
            listener: Some(listen(sockets)?),
            connections: Vec::new(),
        })
    }

    /// The earliest FIN timeout of a connection.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.connections
            .iter()
            .filter_map(|c| c.fin_sent_at.map(|t| t + FIN_TIMEOUT))
            .min()
    }

    /// Accepts, reads queries, answers them, closes after the client; true when a socket
    /// was read, written or closed.
    pub fn serve(
        &mut self,
        zone: &Zone,
        sockets: &mut SocketSet<'static>,
        now: Instant,
        stats: &mut ServerStats,
    ) -> bool {
        if let Some(handle) = self.listener
            && sockets.get::<tcp::Socket>(handle).state() != tcp::State::Listen
        {
            self.listener = None;
            self.connections.push(DnsTcpConnection {
                handle,
                incoming: Vec::new(),
                outgoing: Vec::new(),
                established: false,
                fin_sent_at: None,
            });
        }
        if self.listener.is_none() && self.connections.len() < MAX_SOCKETS - 1 {
            match listen(sockets) {
                Ok(handle) => self.listener = Some(handle),
                Err(e) => log::debug!("lab DNS/TCP: cannot open a new listener: {e}"),
            }
        }
        let behaviour = self.behaviour;
        let mut progressed = false;
        self.connections.retain_mut(|conn| {
            let socket = sockets.get_mut::<tcp::Socket>(conn.handle);
            let (did, finished) = conn.serve(socket, zone, behaviour, now, stats);
            progressed |= did;
            if finished {
                sockets.remove(conn.handle);
                progressed = true;
            }
            !finished
        });
        progressed
    }
}

impl DnsTcpConnection {
    /// One round on the socket: (progressed, finished).
    fn serve(
        &mut self,
        socket: &mut tcp::Socket,
        zone: &Zone,
        behaviour: DnsBehaviour,
        now: Instant,
        stats: &mut ServerStats,
    ) -> (bool, bool) {
        match socket.state() {
            tcp::State::Closed | tcp::State::Listen => return (false, true),
            tcp::State::SynReceived | tcp::State::TimeWait => return (false, false),
            _ => {}
        }
        if self.fin_sent_at.is_some_and(|t| now >= t + FIN_TIMEOUT) {
            return (false, true);
        }
        if !self.established {
            self.established = true;
            stats.dns_tcp_connections += 1;
        }
        let mut did = false;
        // Read while there is room for a whole query and answers are not piling up.
        while socket.can_recv() && self.outgoing.len() < MAX_PENDING_OUT {
            let room = (2 + MAX_QUERY).saturating_sub(self.incoming.len());
            if room == 0 {
                break;
            }
            let incoming = &mut self.incoming;
            let n = socket
                .recv(|buf| {
                    let n = buf.len().min(room);
                    incoming.extend_from_slice(buf.get(..n).unwrap_or_default());
                    (n, n)
                })
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            did = true;
            if !self.answer_complete_messages(zone, behaviour, stats) {
                log::debug!("lab DNS/TCP: a query longer than {MAX_QUERY} bytes; closing");
                socket.abort();
                return (true, true);
            }
        }
        if !self.outgoing.is_empty() {
            match socket.send_slice(&self.outgoing) {
                Ok(n) => {
                    self.outgoing.drain(..n.min(self.outgoing.len()));
                    did |= n > 0;
                }
                Err(e) => {
                    log::debug!("lab DNS/TCP: socket no longer sends: {e}");
                    self.outgoing.clear();
                }
            }
        }
        // The client closed its side and has everything: close ours.
        if !socket.may_recv() && self.outgoing.is_empty() && self.fin_sent_at.is_none() {
            socket.close();
            self.fin_sent_at = Some(now);
            did = true;
        }
        (did, false)
    }

    /// Answers every complete message in `incoming`; false when a length prefix is over
    /// [`MAX_QUERY`].
    fn answer_complete_messages(
        &mut self,
        zone: &Zone,
        behaviour: DnsBehaviour,
        stats: &mut ServerStats,
    ) -> bool {
        let policy = behaviour.policy(Transport::Tcp);
        loop {
            let [high, low, ..] = self.incoming[..] else {
                return true;
            };
            let len = usize::from(u16::from_be_bytes([high, low]));
            if len > MAX_QUERY {
                return false;
            }
            let Some(query) = self.incoming.get(2..2 + len) else {
                return true;
            };
            stats.dns_queries += 1;
            let answer = if behaviour == DnsBehaviour::Silent {
                stats.dns_withheld += 1;
                None
            } else {
                zone.respond(query, &policy)
            };
            self.incoming.drain(..2 + len);
            match answer.and_then(|a| u16::try_from(a.len()).ok().map(|n| (n, a))) {
                Some((prefix, answer)) => {
                    self.outgoing.extend_from_slice(&prefix.to_be_bytes());
                    self.outgoing.extend_from_slice(&answer);
                    stats.dns_responses += 1;
                }
                None if behaviour == DnsBehaviour::Silent => {}
                None => stats.dns_ignored += 1,
            }
        }
    }
}

/// A new socket listening on port 53.
fn listen(sockets: &mut SocketSet<'static>) -> Result<SocketHandle, LabError> {
    let mut socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0u8; RX_BUFFER]),
        tcp::SocketBuffer::new(vec![0u8; TX_BUFFER]),
    );
    socket.set_nagle_enabled(false);
    socket.listen(PORT).map_err(LabError::DnsTcpListen)?;
    Ok(sockets.add(socket))
}
