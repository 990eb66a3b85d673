//! [`ProxyConnection`]: one client connection to the lab's proxy — first the proxy's own
//! requests (a [`Connection`] in the proxy role), then, after an accepted `CONNECT`, the
//! tunnel: the lab's web-server [`Connection`] reading and writing the same socket through
//! a [`Tunnel`], so TLS ends at the lab's rustls server and the routes are the same.
//!
//! Closing follows from the far end's connection: when the client sends close_notify or
//! FIN, the far end answers with close_notify and FIN on the client's socket; when the far
//! end closes (`Connection: close`, a TLS error), the client sees close_notify and FIN.

use std::net::IpAddr;
use std::sync::Arc;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::Instant;

use super::policy::ProxyPolicy;
use crate::https::{Activity, Connection, ServeContext, Session, Tunnel};

/// A tunnel's far end and the bytes it has not read yet.
#[derive(Debug)]
struct OpenTunnel {
    /// The lab's web server for the tunnel's destination.
    far_end: Connection,
    /// Tunnel bytes that arrived with or soon after the `CONNECT` head.
    early: Vec<u8>,
    /// The proxy's address, the far end's view of its peer.
    via: IpAddr,
}

/// One client connection to the proxy, on one socket.
#[derive(Debug)]
pub(crate) struct ProxyConnection {
    policy: Arc<ProxyPolicy>,
    /// The proxy's side: reads proxy requests until a tunnel opens.
    front: Connection,
    /// The tunnel, once its `200` was sent.
    tunnel: Option<Box<OpenTunnel>>,
}

impl ProxyConnection {
    /// A connection on the socket `handle`, which has just left LISTEN.
    pub fn new(handle: SocketHandle, policy: Arc<ProxyPolicy>) -> Self {
        ProxyConnection {
            front: Connection::proxy(handle, policy.clone()),
            policy,
            tunnel: None,
        }
    }

    /// The connection's socket.
    pub fn handle(&self) -> SocketHandle {
        self.front.handle()
    }

    /// When the connection must be looked at without traffic (see
    /// [`Connection::deadline`]).
    pub fn deadline(&self) -> Option<Instant> {
        match &self.tunnel {
            Some(t) => t.far_end.deadline(),
            None => self.front.deadline(),
        }
    }

    /// Moves the connection forward as far as its socket allows.
    pub fn serve(&mut self, socket: &mut tcp::Socket, cx: &mut ServeContext<'_>) -> Activity {
        let mut progressed = false;
        if self.tunnel.is_none() {
            let front = self.front.serve(socket, cx);
            let Some((request, early)) = self.front.take_tunnel() else {
                return front;
            };
            progressed = front.progressed;
            let session = if request.port == 443 {
                match rustls::ServerConnection::new(self.policy.tls.clone()) {
                    Ok(tls) => Session::Tls(Box::new(tls)),
                    Err(e) => {
                        log::debug!("lab proxy: cannot start TLS for a tunnel: {e}");
                        socket.abort();
                        return Activity {
                            progressed: true,
                            finished: false,
                        };
                    }
                }
            } else {
                Session::plain()
            };
            log::debug!(
                "lab proxy: tunnel to {} open ({} early bytes)",
                request.authority,
                early.len()
            );
            self.tunnel = Some(Box::new(OpenTunnel {
                far_end: Connection::tunnelled(
                    self.front.handle(),
                    session,
                    self.policy.fault,
                    Some(request.via),
                ),
                early,
                via: request.via,
            }));
        }
        let Some(tunnel) = self.tunnel.as_mut() else {
            return Activity {
                progressed,
                finished: false,
            };
        };
        let mut stream = Tunnel {
            socket,
            early: &mut tunnel.early,
            via: Some(tunnel.via),
        };
        let far = tunnel.far_end.serve(&mut stream, cx);
        Activity {
            progressed: progressed || far.progressed,
            finished: far.finished,
        }
    }
}
