//! Which interface carries the packets to an address: the kernel's main routing table as
//! [`fetchscope_net::route`] reads it, longest prefix first, then the lowest metric.
//! Addresses of this host itself go over the loopback interface.
//!
//! Policy routing (`ip rule`) and tables other than `main` are not consulted; pass the
//! interface by name when they matter.

use std::net::IpAddr;

/// The name of the interface the kernel sends packets for `addr` out of, if a route
/// covers it.
pub fn interface_for(addr: IpAddr) -> Option<String> {
    if addr.is_loopback() || crate::sys::is_local_address(addr) {
        return Some("lo".to_string());
    }
    fetchscope_net::route::route_to(addr).map(|r| r.iface)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_goes_over_lo() {
        assert_eq!(
            interface_for("127.0.0.1".parse().unwrap()).as_deref(),
            Some("lo")
        );
        assert_eq!(interface_for("::1".parse().unwrap()).as_deref(), Some("lo"));
    }
}
