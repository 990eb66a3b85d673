//! The decoded view of one packet.

use serde::Serialize;

use crate::dns::DnsLayer;
use crate::http::HttpLine;
use crate::icmp::IcmpLayer;
use crate::ip::IpLayer;
use crate::tcp::TcpLayer;
use crate::tls::record::TlsRecord;
use crate::udp::UdpLayer;

/// One packet decoded layer by layer. Absent layers are `None`/empty and are left out of
/// the JSON, so the flow crate can flatten this into a packet event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dissection {
    /// The IP header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpLayer>,
    /// An ICMPv4 or ICMPv6 message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpLayer>,
    /// The UDP header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udp: Option<UdpLayer>,
    /// The TCP header, with relative numbers and analysis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpLayer>,
    /// A DNS message (over UDP, or the first one a TCP segment completes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsLayer>,
    /// The TLS records this packet completes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<TlsRecord>,
    /// The first cleartext HTTP/1.x start line this packet completes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpLine>,
    /// Notes about what could not be decoded ("malformed ...", "gap: ..."); never a panic.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}
