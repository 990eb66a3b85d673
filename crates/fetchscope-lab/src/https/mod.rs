//! The lab's web servers: HTTP/1.1 over TLS (rustls) on port 443 and plain HTTP/1.1 on
//! port 80, on smoltcp TCP sockets; the same connection code serves the lab's proxy and
//! the far end of its tunnels.

mod connection;
mod service;
mod session;
mod stream;
mod tls;

pub(crate) use connection::{Activity, Connection, ServeContext};
pub(crate) use service::{HTTPS_PORT, WebService};
pub(crate) use session::Session;
pub(crate) use stream::Tunnel;
pub(crate) use tls::server_config;
