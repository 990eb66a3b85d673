//! Decoding of fetchscope's packets into layers, and pcapng output.
//!
//! A [`Dissector`] turns each IP packet that crossed the client stack's device into a
//! [`Dissection`]: one optional view per layer (IP, ICMP, UDP, TCP, DNS, TLS records, HTTP
//! start line), a list of problems found on the way, and a one-line
//! [`summary`](Dissection::summary) for people. It keeps the per-connection state a dissector
//! needs: relative sequence numbers and TCP analysis, in-order stream reassembly (bounded),
//! TLS record and handshake-message reassembly per direction, and TLS 1.3 decryption (and
//! TLS 1.2's, for AEAD suites, from the CLIENT_RANDOM master secret) once the secrets are
//! known through [`Dissector::add_tls_secret`].
//!
//! Nothing here performs I/O except [`pcapng::PcapngSpool`], which spools packets to an
//! anonymous temporary file and writes a pcapng file with the TLS secrets embedded.
//!
//! No byte string makes this crate panic: malformed input becomes a [`DecodeProblem`] in
//! [`Dissection::problems`], and every buffer fed by the network is bounded.
//!
//! ```
//! use fetchscope_wire::{Direction, Dissector};
//!
//! let mut dissector = Dissector::new();
//! let d = dissector.dissect(Direction::Tx, &[0x45, 0x00]);
//! assert!(d.summary().contains("malformed"));
//! ```

use serde::Serialize;

mod app;
pub mod capture;
mod checksum;
mod dissection;
mod dissector;
mod dns;
mod error;
mod http;
mod icmp;
mod ip;
pub mod pcapng;
mod problem;
pub mod seq;
mod stream;
mod summary;
mod tcp;
mod text;
mod tls;
mod tunnel;
mod udp;

pub use checksum::complete_checksum;
pub use dissection::Dissection;
pub use dissector::Dissector;
pub use dns::{DnsAnswer, DnsFlags, DnsLayer};
pub use error::DecodeError;
pub use http::HttpLine;
pub use icmp::IcmpLayer;
pub use ip::IpLayer;
pub use problem::{DecodeProblem, Layer};
pub use tcp::{TcpAnalysis, TcpFlags, TcpLayer, TcpOptions, TcpSpace};
pub use text::{INLINE_TEXT, InlineText};
pub use tls::keylog::{DecryptedRecord, key_log_line};
pub use tls::record::TlsRecord;
pub use udp::UdpLayer;

/// Which way a packet crossed the client stack's device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Sent by the client stack.
    Tx,
    /// Received by the client stack.
    Rx,
}

/// The HTTP/1.x start line `bytes` begin with ("HTTP/1.1 200 OK", "GET / HTTP/1.1"), as a
/// packet's summary shows it; `None` when they do not begin with one.
pub fn http_start_line(bytes: &[u8]) -> Option<String> {
    http::start_line(bytes)
}
