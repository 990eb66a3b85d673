//! [`LabConfig`]: how the built-in lab is set up, and its fixed addresses.

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use fetchscope_net::{Randomness, WireConfig};

/// The server's address: DNS (UDP 53) and HTTPS (TCP 443) both live here.
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
/// Prefix length of the server's network, 10.88.0.0/24.
pub const SERVER_PREFIX: u8 = 24;
/// The router's address on the server's network (the server's default route).
pub const SERVER_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 2);
/// The address the client stack should use.
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 88, 1, 2);
/// Prefix length of the client's network, 10.88.1.0/24.
pub const CLIENT_PREFIX: u8 = 24;
/// The router's address on the client's network (the client's default route).
pub const CLIENT_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 88, 1, 1);

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
}

impl Default for LabConfig {
    /// Fresh randomness, a 5 ms / 100 Mbit/s wire, MTU 1500, epoch = now.
    fn default() -> Self {
        LabConfig {
            randomness: Randomness::new(None),
            wire: WireConfig::default(),
            mtu: 1500,
            epoch: SystemTime::now(),
            cert_validity: None,
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
