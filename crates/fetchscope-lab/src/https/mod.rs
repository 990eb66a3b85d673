//! The lab's HTTPS server: TLS (rustls) and HTTP/1.1 on smoltcp TCP sockets, port 443.

mod connection;
mod service;
mod tls;

pub(crate) use service::HttpsService;
pub(crate) use tls::server_config;
