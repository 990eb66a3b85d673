//! `--addr` and `--gateway`: the stack's own addresses (at most one IPv4 and one IPv6) and
//! the next hop for each IP version.

use std::net::IpAddr;

use smoltcp::wire::{IpCidr, Ipv4Address, Ipv4Cidr, Ipv6Address};

/// The stack's addressing on a TUN link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressing {
    /// The stack's addresses with their prefixes.
    pub addrs: Vec<IpCidr>,
    /// One next hop per IP version the stack has an address of.
    pub gateways: Vec<IpAddr>,
}

impl Addressing {
    /// The IPv4 address and prefix, if any.
    pub fn ipv4(&self) -> Option<Ipv4Cidr> {
        self.addrs.iter().find_map(|a| match a {
            IpCidr::Ipv4(c) => Some(*c),
            _ => None,
        })
    }

    /// The IPv4 gateway, if any.
    pub fn gateway4(&self) -> Option<Ipv4Address> {
        self.gateways.iter().find_map(|g| match g {
            IpAddr::V4(a) => Some(*a),
            _ => None,
        })
    }
}

/// Parses `--addr` values and picks the gateways: a `--gateway` of the same IP version,
/// else the first host of the address's prefix.
pub fn parse(addrs: &[String], gateways: &[IpAddr]) -> Result<Addressing, String> {
    if addrs.is_empty() {
        return Err(
            "--tun needs the stack's own address: add --addr CIDR, e.g. --addr 10.88.1.2/24".into(),
        );
    }
    let mut out = Addressing {
        addrs: Vec::new(),
        gateways: Vec::new(),
    };
    for a in addrs {
        let cidr: IpCidr = a.parse().map_err(|_| {
            format!("--addr {a} is not an address with a prefix length, e.g. 10.88.1.2/24 or fd00:88:1::2/64")
        })?;
        if out
            .addrs
            .iter()
            .any(|c| c.address().version() == cidr.address().version())
        {
            return Err(format!(
                "--addr {a}: give at most one IPv4 and one IPv6 address"
            ));
        }
        let gateway = match cidr {
            IpCidr::Ipv4(c) => {
                if c.prefix_len() == 0 || c.prefix_len() >= 31 {
                    return Err(format!(
                        "--addr {a}: the prefix must leave room for the stack and its gateway (e.g. /24)"
                    ));
                }
                match gateways.iter().find(|g| g.is_ipv4()) {
                    Some(IpAddr::V4(g)) if !c.contains_addr(g) => {
                        return Err(format!(
                            "--gateway {g} is not on the link of --addr {a}: the next hop must be inside {}",
                            c.network()
                        ));
                    }
                    Some(g) => *g,
                    None => {
                        let first =
                            Ipv4Address::from_bits(c.network().address().to_bits().wrapping_add(1));
                        if first == c.address() {
                            return Err(format!(
                                "--addr {a} is the first host of its prefix, the default gateway: pass --gateway IP"
                            ));
                        }
                        IpAddr::V4(first)
                    }
                }
            }
            IpCidr::Ipv6(c) => {
                if c.prefix_len() == 0 || c.prefix_len() >= 127 {
                    return Err(format!(
                        "--addr {a}: the prefix must leave room for the stack and its gateway (e.g. /64)"
                    ));
                }
                match gateways.iter().find(|g| g.is_ipv6()) {
                    Some(IpAddr::V6(g)) if !c.contains_addr(g) => {
                        return Err(format!(
                            "--gateway {g} is not on the link of --addr {a}: the next hop must be inside its /{} prefix",
                            c.prefix_len()
                        ));
                    }
                    Some(g) => *g,
                    None => {
                        let mask = u128::MAX
                            .checked_shl(128 - u32::from(c.prefix_len()))
                            .unwrap_or(0);
                        let first =
                            Ipv6Address::from_bits((c.address().to_bits() & mask).wrapping_add(1));
                        if first == c.address() {
                            return Err(format!(
                                "--addr {a} is the first host of its prefix, the default gateway: pass --gateway IP"
                            ));
                        }
                        IpAddr::V6(first)
                    }
                }
            }
        };
        out.addrs.push(cidr);
        out.gateways.push(gateway);
    }
    for g in gateways {
        if !out.gateways.contains(g) {
            return Err(format!(
                "--gateway {g}: the stack has no {} address for it (add --addr)",
                if g.is_ipv4() { "IPv4" } else { "IPv6" }
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn default_gateway_is_the_first_host() {
        let a = parse(&s(&["10.88.1.2/24"]), &[]).unwrap();
        assert_eq!(a.gateways, vec!["10.88.1.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(a.ipv4().unwrap().prefix_len(), 24);
        let b = parse(&s(&["10.88.1.2/24", "fd00:88:1::2/64"]), &[]).unwrap();
        assert_eq!(b.gateways[1], "fd00:88:1::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn explicit_gateways_per_version() {
        let gw: IpAddr = "10.88.1.254".parse().unwrap();
        let a = parse(&s(&["10.88.1.2/24"]), &[gw]).unwrap();
        assert_eq!(a.gateway4().unwrap().to_string(), "10.88.1.254");
        let off_link: IpAddr = "10.99.0.1".parse().unwrap();
        assert!(
            parse(&s(&["10.88.1.2/24"]), &[off_link])
                .unwrap_err()
                .contains("not on the link")
        );
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert!(
            parse(&s(&["10.88.1.2/24"]), &[v6])
                .unwrap_err()
                .contains("no IPv6")
        );
    }

    #[test]
    fn bad_addresses_are_explained() {
        assert!(parse(&[], &[]).unwrap_err().contains("--addr"));
        assert!(parse(&s(&["10.88.1.2"]), &[]).is_err());
        assert!(
            parse(&s(&["10.88.1.1/24"]), &[])
                .unwrap_err()
                .contains("first host")
        );
        assert!(parse(&s(&["10.0.0.2/31"]), &[]).is_err());
        assert!(
            parse(&s(&["10.0.0.2/24", "10.0.1.2/24"]), &[])
                .unwrap_err()
                .contains("at most one")
        );
    }
}
