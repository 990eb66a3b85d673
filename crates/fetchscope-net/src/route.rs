//! The kernel's main routing table, as `/proc/net/route` (IPv4) and `/proc/net/ipv6_route`
//! (IPv6) print it, and the route the kernel would take to an address: the longest
//! matching prefix, then the lowest metric, among the routes that are up.
//!
//! The parsers are pure functions over the files' text; [`main_table`] and [`route_to`]
//! read the files of the calling thread's network namespace
//! (`/proc/thread-self/net/...`; `/proc/net` would show the main thread's, which may be
//! another one). Policy routing (`ip rule`) and tables other than `main`
//! are not consulted.
//!
//! The two files print differently:
//! - `/proc/net/route`: a header line, then tab-separated fields. Destination, gateway and
//!   mask are 8 hex digits of the native-endian `u32` that holds the address's
//!   network-order bytes (`0001580A` for 10.88.1.0 on a little-endian host); Flags is hex;
//!   Metric is **decimal** (the kernel's `fib_route_seq_show` prints it with `%d`).
//! - `/proc/net/ipv6_route`: no header, space-separated fields, all in hex: destination
//!   (32 digits, network order), prefix length, source and its prefix length, next hop,
//!   metric, reference count, use count, flags, interface name.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The calling thread's IPv4 main routing table.
pub const IPV4_TABLE: &str = "/proc/thread-self/net/route";

/// The calling thread's IPv6 routing table.
pub const IPV6_TABLE: &str = "/proc/thread-self/net/ipv6_route";

/// `RTF_UP`: the route is usable.
const RTF_UP: u32 = 0x0001;

/// One route of the kernel's main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The interface the route sends packets out of, e.g. `eth0`.
    pub iface: String,
    /// The destination network's address (the unspecified address for a default route).
    pub dest: IpAddr,
    /// The destination's prefix length (0 for a default route).
    pub prefix: u8,
    /// The route's metric (priority); lower wins among equal prefixes.
    pub metric: u32,
    /// `RTF_UP` is set; routes that are not up are never chosen.
    pub up: bool,
}

impl Route {
    /// Whether `addr` lies in this route's destination prefix (of the same family).
    pub fn matches(&self, addr: IpAddr) -> bool {
        match (self.dest, addr) {
            (IpAddr::V4(d), IpAddr::V4(a)) => {
                let m = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix.min(32)))
                    .unwrap_or(0);
                u32::from(d) & m == u32::from(a) & m
            }
            (IpAddr::V6(d), IpAddr::V6(a)) => {
                let m = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix.min(128)))
                    .unwrap_or(0);
                u128::from(d) & m == u128::from(a) & m
            }
            _ => false,
        }
    }
}

/// A routing table that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The table's file could not be read.
    #[error("cannot read the routing table {path}: {source}")]
    Read {
        /// The file, e.g. `/proc/thread-self/net/route`.
        path: &'static str,
        /// Why not.
        #[source]
        source: io::Error,
    },
}

/// Parses the text of `/proc/net/route`. Lines that do not parse (the header among them)
/// are skipped.
pub fn parse_v4(text: &str) -> Vec<Route> {
    text.lines().filter_map(parse_v4_line).collect()
}

/// One line of `/proc/net/route`.
fn parse_v4_line(line: &str) -> Option<Route> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let hex = |i: usize| f.get(i).and_then(|s| u32::from_str_radix(s, 16).ok());
    let iface = *f.first()?;
    let (dest, flags, mask) = (hex(1)?, hex(3)?, hex(7)?);
    let metric = f.get(6)?.parse().ok()?;
    // Each address is the native-endian u32 of its network-order bytes.
    let mask_bits = u32::from_be_bytes(mask.to_ne_bytes());
    Some(Route {
        iface: iface.to_owned(),
        dest: IpAddr::V4(Ipv4Addr::from(dest.to_ne_bytes())),
        prefix: u8::try_from(mask_bits.leading_ones()).ok()?,
        metric,
        up: flags & RTF_UP != 0,
    })
}

/// Parses the text of `/proc/net/ipv6_route`. Lines that do not parse are skipped.
pub fn parse_v6(text: &str) -> Vec<Route> {
    text.lines().filter_map(parse_v6_line).collect()
}

/// One line of `/proc/net/ipv6_route`.
fn parse_v6_line(line: &str) -> Option<Route> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() != 10 {
        return None;
    }
    let dest = u128::from_str_radix(f[0], 16).ok()?;
    let prefix = u8::from_str_radix(f[1], 16).ok().filter(|&p| p <= 128)?;
    let metric = u32::from_str_radix(f[5], 16).ok()?;
    let flags = u32::from_str_radix(f[8], 16).ok()?;
    Some(Route {
        iface: f[9].to_owned(),
        dest: IpAddr::V6(Ipv6Addr::from(dest)),
        prefix,
        metric,
        up: flags & RTF_UP != 0,
    })
}

/// The route the kernel would take to `addr` among `routes`: of the up routes whose prefix
/// covers it, the longest prefix, then the lowest metric.
pub fn best_route(routes: &[Route], addr: IpAddr) -> Option<&Route> {
    routes
        .iter()
        .filter(|r| r.up && r.matches(addr))
        .max_by(|a, b| a.prefix.cmp(&b.prefix).then(b.metric.cmp(&a.metric)))
}

/// Reads and parses the calling thread's main table for `addr`'s family
/// ([`IPV4_TABLE`] or [`IPV6_TABLE`]).
pub fn main_table(addr: IpAddr) -> Result<Vec<Route>, RouteError> {
    let (path, parse): (&'static str, fn(&str) -> Vec<Route>) = match addr {
        IpAddr::V4(_) => (IPV4_TABLE, parse_v4),
        IpAddr::V6(_) => (IPV6_TABLE, parse_v6),
    };
    let text = std::fs::read_to_string(path).map_err(|source| RouteError::Read { path, source })?;
    Ok(parse(&text))
}

/// The route the kernel would take to `addr`, or `None` when no route covers it or the
/// table cannot be read.
pub fn route_to(addr: IpAddr) -> Option<Route> {
    best_route(&main_table(addr).ok()?, addr).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT                                                       ";

    /// Captured in a fresh network namespace after
    /// `ip route add 10.99.0.0/24 dev lo metric 300` and `ip route add default dev lo metric 1000`
    /// (lines padded with trailing spaces as the kernel prints them).
    const PROBE: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT                                                       \n\
lo\t00000000\t00000000\t0001\t0\t0\t1000\t00000000\t0\t0\t0                                                                              \n\
lo\t0000630A\t00000000\t0001\t0\t0\t300\t00FFFFFF\t0\t0\t0                                                                               \n";

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn via<'a>(routes: &'a [Route], addr: &str) -> Option<&'a str> {
        best_route(routes, ip(addr)).map(|r| r.iface.as_str())
    }

    #[test]
    fn the_probe_line_has_a_decimal_metric() {
        let r = parse_v4(PROBE);
        assert_eq!(r.len(), 2, "the header is skipped");
        assert_eq!(
            r[1],
            Route {
                iface: "lo".into(),
                dest: ip("10.99.0.0"),
                prefix: 24,
                metric: 300,
                up: true,
            }
        );
        assert_eq!(r[0].dest, ip("0.0.0.0"));
        assert_eq!((r[0].prefix, r[0].metric), (0, 1000));
    }

    #[test]
    fn longest_prefix_wins_and_default_route_catches_the_rest() {
        let table = format!(
            "{HEADER}\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
fsc-cli0\t0000580A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
fsc0\t0001580A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
slow\t0001580A\t00000000\t0001\t0\t0\t50\t00FFFFFF\t0\t0\t0\n\
down\t0201580A\t00000000\t0000\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n\
down0\t0002580A\t00000000\t0000\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
garbage line\n\
eth1\tnothex\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
eth2\t0003580A\t00000000\t0001\t0\t0\t1f\t00FFFFFF\t0\t0\t0\n\
\n"
        );
        let r = parse_v4(&table);
        assert_eq!(r.len(), 7, "garbage and a hex metric are skipped");
        assert_eq!(r[3].dest, ip("10.88.1.0"));
        assert_eq!(r[3].prefix, 24);
        assert_eq!(r[1].dest, ip("192.0.2.0"));
        assert!(!r[5].up && r[5].prefix == 32);
        // The /24 beats the default route, the lower metric beats the higher one, and a
        // route that is not up (the /32 and down0's /24) is ignored.
        assert_eq!(via(&r, "10.88.1.2"), Some("fsc0"));
        assert_eq!(via(&r, "10.88.0.1"), Some("fsc-cli0"));
        assert_eq!(via(&r, "10.88.2.2"), Some("eth0"));
        assert_eq!(via(&r, "1.1.1.1"), Some("eth0"));
        assert_eq!(via(&r, "::1"), None, "IPv4 routes never match IPv6");
        let no_default: Vec<Route> = r.iter().skip(1).cloned().collect();
        assert_eq!(via(&no_default, "10.77.0.2"), None);
    }

    #[test]
    fn lower_metric_wins_on_equal_prefixes() {
        let text = format!(
            "{HEADER}\n\
a\t00000000\t0100A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n\
b\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
c\t00000000\t0100A8C0\t0003\t0\t0\t99\t00000000\t0\t0\t0\n"
        );
        let r = parse_v4(&text);
        assert_eq!(
            r.iter().map(|r| r.metric).collect::<Vec<_>>(),
            [600, 100, 99]
        );
        assert_eq!(via(&r, "8.8.8.8"), Some("c"), "99 < 100 in decimal");
    }

    /// Lines of this machine's `/proc/net/ipv6_route` and of the probe namespace, where a
    /// route over `lo` (`fd00:99::/64 metric 300`) became a reject route that is not up.
    const IPV6: &str = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
fd000099000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 0000012c 00000001 00000000 00200200       lo
fd000000000000000000000000000000 zz 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     bad0
fd000000000000000000000000000000 81 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     bad1
not a route
";

    #[test]
    fn ipv6_routes_are_hex_throughout() {
        let r = parse_v6(IPV6);
        assert_eq!(r.len(), 5, "garbage and a prefix over 128 are skipped");
        assert_eq!(
            r[4],
            Route {
                iface: "lo".into(),
                dest: ip("fd00:99::"),
                prefix: 64,
                metric: 300,
                up: false,
            }
        );
        assert_eq!((r[2].prefix, r[2].metric), (0, 0x400));
        assert_eq!(via(&r, "fd00::5"), Some("eth0"));
        assert_eq!(
            via(&r, "fd00:99::1"),
            Some("eth0"),
            "the reject route is down"
        );
        assert_eq!(via(&r, "2001:db8::1"), Some("eth0"));
        assert_eq!(via(&r, "::1"), Some("lo"));
        assert_eq!(via(&r, "10.0.0.1"), None, "IPv6 routes never match IPv4");
    }

    #[test]
    fn ipv6_lower_metric_wins_on_equal_prefixes() {
        let text = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00000001 slow0
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 fast0
";
        assert_eq!(via(&parse_v6(text), "fd00::1"), Some("fast0"));
    }

    #[test]
    fn the_thread_tables_are_readable() {
        // Both files exist on Linux (the IPv6 one unless IPv6 is disabled).
        assert!(main_table(ip("127.0.0.1")).is_ok());
        if let Some(r) = route_to(ip("10.0.0.1")) {
            assert!(r.up && r.matches(ip("10.0.0.1")));
        }
    }
}
