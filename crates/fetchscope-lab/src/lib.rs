//! fetchscope's built-in lab: a DNS server and an HTTPS server on their own smoltcp
//! interface, reached over an in-memory wire on a virtual clock.
//!
//! Without `--tun`, every fetch runs here. It needs no root and no network, and it never
//! sleeps: time jumps to the next thing that happens, so a run is fast and, with a fixed
//! seed, repeats exactly.
//!
//! ```text
//!  client stack 10.88.1.2/24 ──wire──► router (TTL − 1) ──► server 10.88.0.1, 10.88.0.3
//!        (the caller's)     ◄──wire──                   ◄──   DNS UDP+TCP :53,
//!                                                              HTTPS :443, HTTP :80
//!                                                         ──► proxy 10.88.0.4
//!                                                         ◄──   HTTP proxy :3128, :3129
//! ```
//!
//! - [`Lab`] is a [`fetchscope_net::Link`]: put a `TapDevice<Lab>` under the client's
//!   smoltcp interface (address [`Lab::client_cidr`], gateway [`Lab::client_gateway`]) and
//!   drive it with `poll` → `link.wait(iface.poll_at(..))`.
//! - DNS (hickory-proto messages, UDP and TCP) knows [`LAB_NAMES`] (with CNAMEs and a
//!   second address for `cdn.example.test`, [`CDN_ADDR`]); any other name gets NXDOMAIN.
//! - HTTPS (rustls, TLS 1.3/1.2, ALPN `http/1.1`) with a certificate from a CA made at start
//!   ([`Lab::ca_certificate`]), and plain HTTP on port 80; HTTP/1.1 keep-alive with `GET /`
//!   (a page about the lab), `GET /bytes/N` (N bytes of [`fill_generated`]'s pattern,
//!   streamed, N ≤ 1 GiB), routes for content and transfer codings, status codes and
//!   redirects (`/gzip`, `/chunked`, `/status/N`, `/redirect/N`, …; docs/lab.md lists
//!   them) and 404 for anything else.
//! - An HTTP proxy, [`PROXY_NAME`] at [`PROXY_ADDR`], on a machine of its own: TCP port
//!   [`PROXY_PORT`] open, [`PROXY_AUTH_PORT`] with `Proxy-Authorization: Basic`
//!   ([`PROXY_USER`]:[`PROXY_PASSWORD`], else 407). `CONNECT host:443` (or `:80`) to a lab
//!   name or address opens a tunnel to the lab's own HTTPS (or HTTP) server — the real
//!   certificate, the same routes — and absolute-form `GET http://host/path` is answered
//!   from the routes with `Via: 1.1 proxy.example.test`.
//! - [`LabConfig::fault`] makes the lab misbehave in one way ([`LabFault`]: NXDOMAIN, a
//!   silent DNS server, a RST to the SYN, an expired certificate, a TLS alert, a truncated
//!   body, a redirect loop, …), so every failure mode of a fetch can be shown.
//!
//! # Time
//!
//! The clock starts at zero and moves only inside [`fetchscope_net::Link::send`] (to the
//! moment the packet's last bit has left, at the wire's rate) and
//! [`fetchscope_net::Link::wait`] (event by event: packet arrivals, server timers). The wire
//! adds [`LabConfig::wire`]'s latency each way, so a DNS answer comes one round trip
//! (10 ms by default, plus serialization) after its query. [`Lab::wall_time`] maps the
//! virtual clock to wall-clock time (`Date` headers; what a client should check the lab's
//! certificates against).
//!
//! # Repeatable runs
//!
//! With a seeded [`fetchscope_core::Randomness`] and a fixed [`LabConfig::epoch`], the
//! server's TCP sequence numbers, certificates (Ed25519 keys from the seed, fixed-length
//! serials), TLS randoms and session tickets repeat, and so do every packet's time and
//! length. TLS key shares still come from ring's own generator: those bytes (and so the
//! ciphertext) differ from run to run, their lengths don't.
//!
//! # Limits
//!
//! At most 32 TCP sockets on port 443, on port 80 and on each proxy port, 8 on TCP port 53
//! (further SYNs get RST); a connection the client never finishes closing is dropped 60 s after the server's
//! FIN; idle keep-alive connections are kept open (no idle timeout); request bodies
//! (`Content-Length` or chunked) are read whole before the answer, up to 16 MiB (more gets
//! 413 and the connection closes).

mod config;
mod dns;
mod error;
mod fault;
mod host;
mod http;
mod https;
mod lab;
mod pki;
mod proxy;
mod router;
mod stats;

pub use config::{
    CDN_ADDR, CLIENT_ADDR, CLIENT_ADDR_V6, CLIENT_GATEWAY, CLIENT_GATEWAY_V6, CLIENT_PREFIX,
    CLIENT_PREFIX_V6, CertValidity, LabConfig, PROXY_ADDR, PROXY_ADDR_V6, SERVER_ADDR,
    SERVER_ADDR_V6, SERVER_GATEWAY, SERVER_GATEWAY_V6, SERVER_PREFIX, SERVER_PREFIX_V6,
};
pub use dns::{DECOY_ADDR, DNS_TTL, Zone, ZoneRecord};
pub use error::LabError;
pub use fault::{FaultLayer, LabFault, UnknownFault};
pub use http::{MAX_GENERATED_BYTES, SERVER_HEADER, fill_generated, generated_byte};
pub use lab::{LAB_NAMES, Lab};
pub use proxy::{
    PROXY_AUTH_PORT, PROXY_NAME, PROXY_PASSWORD, PROXY_PORT, PROXY_REALM, PROXY_USER, PROXY_VIA,
};
pub use stats::ServerStats;
