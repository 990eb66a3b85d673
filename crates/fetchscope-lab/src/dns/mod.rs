//! The lab's DNS server: an authoritative [`Zone`] answered on UDP port 53.

mod service;
mod zone;

pub(crate) use service::DnsService;
pub use zone::{DNS_TTL, Zone};
