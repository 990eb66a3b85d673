//! The lab's HTTP proxy, `proxy.example.test` ([`crate::PROXY_ADDR`]): a machine of its
//! own on the server's network with two listeners, TCP port 3128 (open) and 3129
//! (`Proxy-Authorization: Basic` with [`PROXY_USER`]:[`PROXY_PASSWORD`] required).
//!
//! - `CONNECT host:port` (port 443 or 80, a lab name or address) is answered
//!   `HTTP/1.1 200 Connection established` and the connection then carries a tunnel to
//!   the lab's own HTTPS (or HTTP) service: the tunnel's bytes go to the same
//!   [`Connection`](crate::https::Connection) code a directly accepted socket gets, so TLS
//!   ends at the lab's rustls server with the real certificate and the same routes.
//! - `GET http://host/path` (absolute form) is answered as the lab's HTTP server on port
//!   80 answers it, with `Via: 1.1 proxy.example.test`.
//!
//! [`ProxyPolicy`] decides what each request gets; [`ProxyConnection`] runs one client
//! connection, first as a proxy, then (after a `CONNECT`) as the tunnel's far end;
//! [`ProxyHost`] is the machine.

mod connection;
mod host;
mod policy;

pub(crate) use connection::ProxyConnection;
pub(crate) use host::ProxyHost;
pub(crate) use policy::{ProxyAnswer, ProxyPolicy, TunnelRequest};

/// The proxy's DNS name.
pub const PROXY_NAME: &str = "proxy.example.test";
/// The proxy's open port (no credentials needed).
pub const PROXY_PORT: u16 = 3128;
/// The proxy's port that requires `Proxy-Authorization: Basic` credentials
/// ([`PROXY_USER`]:[`PROXY_PASSWORD`]).
pub const PROXY_AUTH_PORT: u16 = 3129;
/// The user name the proxy on [`PROXY_AUTH_PORT`] accepts.
pub const PROXY_USER: &str = "proxyuser";
/// The password the proxy on [`PROXY_AUTH_PORT`] accepts.
pub const PROXY_PASSWORD: &str = "proxypass";
/// The realm of the proxy's `Proxy-Authenticate: Basic` challenge.
pub const PROXY_REALM: &str = "fetchscope lab proxy";
/// The `Via` field the proxy adds to what it forwards (RFC 9110 section 7.6.3).
pub const PROXY_VIA: &str = "1.1 proxy.example.test";
