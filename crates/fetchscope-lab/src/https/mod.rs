//! The lab's web servers: HTTP/1.1 over TLS (rustls) on port 443 and plain HTTP/1.1 on
//! port 80, on smoltcp TCP sockets.

mod connection;
mod service;
mod session;
mod tls;

pub(crate) use service::{HTTPS_PORT, WebService};
pub(crate) use tls::server_config;
