//! Which interface carries the packets to an address: the kernel's main routing table
//! read from `/proc/net/route` and `/proc/net/ipv6_route`, longest prefix first, then the
//! lowest metric. Addresses of this host itself go over the loopback interface.
//!
//! Policy routing (`ip rule`) and tables other than `main` are not consulted; pass the
//! interface by name when they matter.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `RTF_UP`: the route is usable.
const RTF_UP: u32 = 0x0001;

/// One route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    iface: String,
    dest: IpAddr,
    prefix: u8,
    metric: u32,
}

fn parse_v4(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let hex = |i: usize| f.get(i).and_then(|s| u32::from_str_radix(s, 16).ok());
            let (iface, dest, flags, metric, mask) =
                (f.first()?, hex(1)?, hex(3)?, hex(6)?, hex(7)?);
            if flags & RTF_UP == 0 {
                return None;
            }
            // The file prints each address as the native-endian u32 of its network-order
            // bytes.
            let mask_bits = u32::from_be_bytes(mask.to_ne_bytes());
            Some(Route {
                iface: iface.to_string(),
                dest: IpAddr::V4(Ipv4Addr::from(dest.to_ne_bytes())),
                prefix: mask_bits.leading_ones() as u8,
                metric,
            })
        })
        .collect()
}

fn parse_v6(text: &str) -> Vec<Route> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let dest = u128::from_str_radix(f.first()?, 16).ok()?;
            let prefix = u8::from_str_radix(f.get(1)?, 16).ok()?;
            let metric = u32::from_str_radix(f.get(5)?, 16).ok()?;
            let flags = u32::from_str_radix(f.get(8)?, 16).ok()?;
            if flags & RTF_UP == 0 {
                return None;
            }
            Some(Route {
                iface: f.get(9)?.to_string(),
                dest: IpAddr::V6(Ipv6Addr::from(dest)),
                prefix,
                metric,
            })
        })
        .collect()
}

fn matches(r: &Route, addr: IpAddr) -> bool {
    match (r.dest, addr) {
        (IpAddr::V4(d), IpAddr::V4(a)) => {
            let m = u32::MAX
                .checked_shl(32 - u32::from(r.prefix.min(32)))
                .unwrap_or(0);
            u32::from(d) & m == u32::from(a) & m
        }
        (IpAddr::V6(d), IpAddr::V6(a)) => {
            let m = u128::MAX
                .checked_shl(128 - u32::from(r.prefix.min(128)))
                .unwrap_or(0);
            u128::from(d) & m == u128::from(a) & m
        }
        _ => false,
    }
}

/// The interface of the best route to `addr` in `routes`.
fn best(routes: &[Route], addr: IpAddr) -> Option<&str> {
    routes
        .iter()
        .filter(|r| matches(r, addr))
        .max_by(|a, b| a.prefix.cmp(&b.prefix).then(b.metric.cmp(&a.metric)))
        .map(|r| r.iface.as_str())
}

/// The name of the interface the kernel sends packets for `addr` out of, if a route
/// covers it.
pub fn interface_for(addr: IpAddr) -> Option<String> {
    if addr.is_loopback() || crate::sys::is_local_address(addr) {
        return Some("lo".to_string());
    }
    let routes = match addr {
        IpAddr::V4(_) => parse_v4(&std::fs::read_to_string("/proc/net/route").ok()?),
        IpAddr::V6(_) => parse_v6(&std::fs::read_to_string("/proc/net/ipv6_route").ok()?),
    };
    best(&routes, addr).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
fsc-cli0\t0000580A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
fsc0\t0001580A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
down0\t0002580A\t00000000\t0000\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";

    #[test]
    fn longest_prefix_wins_and_default_route_catches_the_rest() {
        let r = parse_v4(ROUTE);
        assert_eq!(r.len(), 3, "routes that are not up are skipped");
        assert_eq!(best(&r, "10.88.0.1".parse().unwrap()), Some("fsc-cli0"));
        assert_eq!(best(&r, "10.88.1.2".parse().unwrap()), Some("fsc0"));
        assert_eq!(best(&r, "10.88.2.2".parse().unwrap()), Some("eth0"));
        assert_eq!(best(&r, "1.1.1.1".parse().unwrap()), Some("eth0"));
        assert_eq!(best(&r, "::1".parse().unwrap()), None);
    }

    #[test]
    fn lower_metric_wins_on_equal_prefixes() {
        let text = "h\n\
a\t00000000\t0100A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n\
b\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";
        assert_eq!(best(&parse_v4(text), "8.8.8.8".parse().unwrap()), Some("b"));
    }

    #[test]
    fn ipv6_routes() {
        let text = "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 veth0\n\
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n";
        let r = parse_v6(text);
        assert_eq!(best(&r, "fd00::5".parse().unwrap()), Some("veth0"));
        assert_eq!(best(&r, "2001:db8::1".parse().unwrap()), Some("eth0"));
    }

    #[test]
    fn loopback_goes_over_lo() {
        assert_eq!(
            interface_for("127.0.0.1".parse().unwrap()).as_deref(),
            Some("lo")
        );
    }
}
