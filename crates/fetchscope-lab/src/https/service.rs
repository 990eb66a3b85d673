//! [`WebService`]: a listening socket and its open connections — HTTPS on port 443, plain
//! HTTP on port 80, or the lab's proxy on ports 3128 and 3129.

use std::sync::Arc;

use rustls::ServerConfig;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;

use super::connection::{Activity, Connection, ServeContext};
use super::session::Session;
use crate::error::LabError;
use crate::fault::LabFault;
use crate::proxy::{ProxyConnection, ProxyPolicy};
use crate::stats::ServerStats;

/// The HTTPS port.
pub(crate) const HTTPS_PORT: u16 = 443;
/// The plain HTTP port.
pub(crate) const HTTP_PORT: u16 = 80;
/// Receive buffer of each TCP socket (64 KiB: window scale 1).
const RX_BUFFER: usize = 64 * 1024;
/// Send buffer of each TCP socket: 2 MiB, so that the server's flight is bounded by the
/// client's window, not by what it may queue (with 128 KiB a lossy 1 MiB fetch stalled at
/// the buffer's edge behind each hole until the retransmission timer fired; the loss
/// matrix in docs/faults.md has the numbers).
const TX_BUFFER: usize = 2 * 1024 * 1024;
/// The most TCP sockets on one port at once (connections, including TIME-WAIT, plus the
/// listener); further SYNs get RST until one closes.
const MAX_SOCKETS: usize = 32;

/// What a service speaks on its port.
#[derive(Debug)]
enum Kind {
    /// HTTPS with this TLS configuration.
    Https(Arc<ServerConfig>),
    /// Plain HTTP.
    Http,
    /// The lab's proxy, answering as this policy says.
    Proxy(Arc<ProxyPolicy>),
}

/// One accepted connection of a service.
#[derive(Debug)]
enum Served {
    /// A web server's connection.
    Web(Connection),
    /// A proxy's connection (and, later, its tunnel).
    Proxy(ProxyConnection),
}

impl Served {
    fn handle(&self) -> SocketHandle {
        match self {
            Served::Web(c) => c.handle(),
            Served::Proxy(c) => c.handle(),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            Served::Web(c) => c.deadline(),
            Served::Proxy(c) => c.deadline(),
        }
    }

    fn serve(&mut self, socket: &mut tcp::Socket<'static>, cx: &mut ServeContext<'_>) -> Activity {
        match self {
            Served::Web(c) => c.serve(socket, cx),
            Served::Proxy(c) => c.serve(socket, cx),
        }
    }
}

/// A web server: always one socket listening on its port while there is room, and one
/// [`Connection`] per socket that left LISTEN.
#[derive(Debug)]
pub(crate) struct WebService {
    kind: Kind,
    port: u16,
    fault: Option<LabFault>,
    /// Whether the service accepts connections at all (not with the `refused` fault).
    accepts: bool,
    listener: Option<SocketHandle>,
    connections: Vec<Served>,
}

impl WebService {
    /// HTTPS on port 443 with `config`. Opens the first listening socket in `sockets`;
    /// with the `refused` fault, none ever (every SYN to port 443 then gets a RST from the
    /// interface).
    pub fn https(
        config: Arc<ServerConfig>,
        fault: Option<LabFault>,
        sockets: &mut SocketSet<'static>,
    ) -> Result<Self, LabError> {
        let accepts = fault != Some(LabFault::Refused);
        Self::start(Kind::Https(config), HTTPS_PORT, fault, accepts, sockets)
    }

    /// Plain HTTP on port 80 (the HTTP faults apply, the TLS and port-443 ones don't).
    pub fn http(
        fault: Option<LabFault>,
        sockets: &mut SocketSet<'static>,
    ) -> Result<Self, LabError> {
        Self::start(Kind::Http, HTTP_PORT, fault, true, sockets)
    }

    /// The lab's proxy on `port`, answering as `policy` says.
    pub fn proxy(
        policy: Arc<ProxyPolicy>,
        port: u16,
        sockets: &mut SocketSet<'static>,
    ) -> Result<Self, LabError> {
        let fault = policy.fault;
        Self::start(Kind::Proxy(policy), port, fault, true, sockets)
    }

    fn start(
        kind: Kind,
        port: u16,
        fault: Option<LabFault>,
        accepts: bool,
        sockets: &mut SocketSet<'static>,
    ) -> Result<Self, LabError> {
        let listener = if accepts {
            Some(listen(sockets, port)?)
        } else {
            None
        };
        Ok(WebService {
            kind,
            port,
            fault,
            accepts,
            listener,
            connections: Vec::new(),
        })
    }

    /// Open connections (TIME-WAIT included).
    pub fn connections(&self) -> usize {
        self.connections.len()
    }

    /// The earliest connection timer (see [`Connection::deadline`]).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.connections.iter().filter_map(Served::deadline).min()
    }

    /// Moves a taken listener to the connections, opens a new listener if there is
    /// room, serves every connection and forgets closed ones; true when a socket was
    /// written, read or closed (the interface should be polled again).
    pub fn serve(
        &mut self,
        sockets: &mut SocketSet<'static>,
        now: Instant,
        date: &str,
        stats: &mut ServerStats,
    ) -> bool {
        if let Some(handle) = self.listener
            && sockets.get::<tcp::Socket>(handle).state() != tcp::State::Listen
        {
            self.listener = None;
            let connection = match &self.kind {
                Kind::Https(config) => rustls::ServerConnection::new(config.clone()).map(|c| {
                    Served::Web(Connection::new(
                        handle,
                        Session::Tls(Box::new(c)),
                        self.fault,
                    ))
                }),
                Kind::Http => Ok(Served::Web(Connection::new(
                    handle,
                    Session::plain(),
                    self.fault,
                ))),
                Kind::Proxy(policy) => {
                    Ok(Served::Proxy(ProxyConnection::new(handle, policy.clone())))
                }
            };
            match connection {
                Ok(connection) => self.connections.push(connection),
                Err(e) => {
                    log::debug!("lab HTTPS: cannot start TLS: {e}");
                    sockets.get_mut::<tcp::Socket>(handle).abort();
                    sockets.remove(handle);
                }
            }
        }
        if self.listener.is_none() && self.accepts && self.connections.len() < MAX_SOCKETS - 1 {
            match listen(sockets, self.port) {
                Ok(handle) => self.listener = Some(handle),
                Err(e) => log::debug!("lab HTTPS: cannot open a new listener: {e}"),
            }
        }

        let mut cx = ServeContext { now, date, stats };
        let mut progressed = false;
        self.connections.retain_mut(|conn| {
            let socket = sockets.get_mut::<tcp::Socket>(conn.handle());
            let activity = conn.serve(socket, &mut cx);
            progressed |= activity.progressed;
            if activity.finished {
                sockets.remove(conn.handle());
                progressed = true;
            }
            !activity.finished
        });
        progressed
    }
}

/// A new socket listening on `port`.
fn listen(sockets: &mut SocketSet<'static>, port: u16) -> Result<SocketHandle, LabError> {
    let mut socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0u8; RX_BUFFER]),
        tcp::SocketBuffer::new(vec![0u8; TX_BUFFER]),
    );
    socket.set_nagle_enabled(false);
    socket.listen(port)?;
    Ok(sockets.add(socket))
}
