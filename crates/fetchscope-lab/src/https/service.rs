//! [`HttpsService`]: the listening socket and the open HTTPS connections.

use std::sync::Arc;

use rustls::ServerConfig;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;

use super::connection::{Connection, ServeContext};
use crate::error::LabError;
use crate::fault::LabFault;
use crate::stats::ServerStats;

/// The HTTPS port.
const PORT: u16 = 443;
/// Receive buffer of each TCP socket (64 KiB: window scale 1).
const RX_BUFFER: usize = 64 * 1024;
/// Send buffer of each TCP socket.
const TX_BUFFER: usize = 128 * 1024;
/// The most TCP sockets on port 443 at once (connections, including TIME-WAIT, plus the
/// listener); further SYNs get RST until one closes.
const MAX_SOCKETS: usize = 32;

/// The HTTPS server: always one socket listening on port 443 while there is room, and
/// one [`Connection`] per socket that left LISTEN.
#[derive(Debug)]
pub(crate) struct HttpsService {
    config: Arc<ServerConfig>,
    fault: Option<LabFault>,
    listener: Option<SocketHandle>,
    connections: Vec<Connection>,
}

impl HttpsService {
    /// Opens the first listening socket in `sockets`; with the `refused` fault, none
    /// ever (every SYN to port 443 then gets a RST from the interface).
    pub fn new(
        config: Arc<ServerConfig>,
        fault: Option<LabFault>,
        sockets: &mut SocketSet<'static>,
    ) -> Result<Self, LabError> {
        let listener = match fault {
            Some(LabFault::Refused) => None,
            _ => Some(listen(sockets)?),
        };
        Ok(HttpsService {
            config,
            fault,
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
        self.connections
            .iter()
            .filter_map(Connection::deadline)
            .min()
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
            match Connection::new(handle, self.config.clone(), self.fault) {
                Ok(conn) => self.connections.push(conn),
                Err(e) => {
                    log::debug!("lab HTTPS: cannot start TLS: {e}");
                    sockets.get_mut::<tcp::Socket>(handle).abort();
                    sockets.remove(handle);
                }
            }
        }
        if self.listener.is_none()
            && self.fault != Some(LabFault::Refused)
            && self.connections.len() < MAX_SOCKETS - 1
        {
            match listen(sockets) {
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

/// A new socket listening on port 443.
fn listen(sockets: &mut SocketSet<'static>) -> Result<SocketHandle, LabError> {
    let mut socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0u8; RX_BUFFER]),
        tcp::SocketBuffer::new(vec![0u8; TX_BUFFER]),
    );
    socket.set_nagle_enabled(false);
    socket.listen(PORT)?;
    Ok(sockets.add(socket))
}
