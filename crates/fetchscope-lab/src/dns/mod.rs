//! The lab's DNS server: an authoritative [`Zone`] answered on UDP and TCP port 53.

mod service;
mod tcp;
mod zone;

pub use service::DECOY_ADDR;
pub(crate) use service::{DnsBehaviour, DnsService};
pub(crate) use tcp::DnsTcpService;
pub use zone::{DNS_TTL, Zone, ZoneRecord};
