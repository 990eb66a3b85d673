//! [`LabConfig`]: how the built-in lab is set up, and its fixed addresses.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime};

use fetchscope_core::Randomness;
use fetchscope_net::WireConfig;

use crate::fault::LabFault;

/// The server's address: DNS (UDP 53) and HTTPS (TCP 443) both live here.
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
/// Prefix length of the server's network, 10.88.0.0/24.
pub const SERVER_PREFIX: u8 = 24;
/// The router's address on the server's network (the server's default route).
pub const SERVER_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 2);
/// The server's second address, for `cdn.example.test`: a redirect there is a redirect to
/// another host, so the client opens a new connection.
pub const CDN_ADDR: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 3);
/// The address of the lab's HTTP proxy, `proxy.example.test` (a machine of its own on the
/// server's network: TCP ports 3128 and 3129, see [`crate::PROXY_PORT`]).
pub const PROXY_ADDR: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 4);
/// The proxy's IPv6 address (only with [`LabConfig::ipv6`]).
pub const PROXY_ADDR_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x88, 0, 0, 0, 0, 0, 4);
/// The server's IPv6 address (only with [`LabConfig::ipv6`]).
pub const SERVER_ADDR_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x88, 0, 0, 0, 0, 0, 1);
/// The router's IPv6 address on the server's network.
pub const SERVER_GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x88, 0, 0, 0, 0, 0, 2);
/// Prefix length of the server's IPv6 network, fd00:88::/64.
pub const SERVER_PREFIX_V6: u8 = 64;
/// The address the client stack should use.
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 88, 1, 2);
/// Prefix length of the client's network, 10.88.1.0/24.
pub const CLIENT_PREFIX: u8 = 24;
/// The router's address on the client's network (the client's default route).
pub const CLIENT_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 88, 1, 1);
/// The IPv6 address the client stack should use (only with [`LabConfig::ipv6`]).
pub const CLIENT_ADDR_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x88, 1, 0, 0, 0, 0, 2);
/// The router's IPv6 address on the client's network (the client's IPv6 default route).
pub const CLIENT_GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x88, 1, 0, 0, 0, 0, 1);
/// Prefix length of the client's IPv6 network, fd00:88:1::/64.
pub const CLIENT_PREFIX_V6: u8 = 64;

/// How the built-in lab is set up.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// Every random choice of the lab's servers: TCP ISNs (`rng("lab-tcp")`), certificate
    /// keys and serials (`rng("lab-pki")`), TLS randoms (`crypto_provider("lab-tls")`).
    pub randomness: Randomness,
    /// Latency and rate of the wire, the same in both directions.
    pub wire: WireConfig,
    /// The largest IP packet on the wire (1500).
    pub mtu: usize,
    /// The wall-clock time of virtual time zero, for `Date` headers and certificates.
    pub epoch: SystemTime,
    /// Validity of the lab's certificates; `None` = one day before `epoch` to 365 days after.
    pub cert_validity: Option<CertValidity>,
    /// The one way the lab misbehaves, if any (`--lab-fault NAME`).
    pub fault: Option<LabFault>,
    /// Give the server the IPv6 address [`SERVER_ADDR_V6`] and `www.example.test` an AAAA
    /// record. Off by default: with it, a client that asks for AAAA sees an answer.
    pub ipv6: bool,
}

impl Default for LabConfig {
    /// Fresh randomness, a 5 ms / 100 Mbit/s wire, MTU 1500, epoch = now, no fault, no
    /// IPv6.
    fn default() -> Self {
        LabConfig {
            randomness: Randomness::new(None),
            wire: WireConfig::default(),
            mtu: 1500,
            epoch: SystemTime::now(),
            cert_validity: None,
            fault: None,
            ipv6: false,
        }
    }
}

impl LabConfig {
    /// The certificates' validity: the configured one, or the default around `epoch`.
    pub fn validity(&self) -> CertValidity {
        self.cert_validity
            .unwrap_or_else(|| CertValidity::around(self.epoch))
    }
}

/// The period in which the lab's CA and server certificates are valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertValidity {
    /// The certificates are not valid before this time.
    pub not_before: SystemTime,
    /// The certificates are not valid after this time.
    pub not_after: SystemTime,
}

impl CertValidity {
    /// One day before `epoch` to 365 days after it (saturating at the representable range).
    pub fn around(epoch: SystemTime) -> Self {
        const DAY: Duration = Duration::from_secs(24 * 60 * 60);
        CertValidity {
            not_before: epoch.checked_sub(DAY).unwrap_or(epoch),
            not_after: epoch.checked_add(DAY * 365).unwrap_or(epoch),
        }
    }
}
