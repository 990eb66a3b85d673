//! What to fetch, apart from the network stack: the `--resolve` overrides and the
//! address a fetch may use without asking DNS.

use std::net::IpAddr;

use url::Url;

use crate::event::DnsEvent;

/// A `--resolve HOST:PORT:ADDR` entry: skip DNS for HOST on PORT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveOverride {
    /// Host name as in the URL (compared case-insensitively).
    pub host: String,
    /// Port it applies to.
    pub port: u16,
    /// Address to use.
    pub addr: IpAddr,
}

impl std::str::FromStr for ResolveOverride {
    type Err = String;

    /// Parses `HOST:PORT:ADDR` (ADDR may be an IPv6 address, with or without brackets).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.splitn(3, ':');
        let (Some(host), Some(port), Some(addr)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "'{s}' is not HOST:PORT:ADDR (e.g. www.example.test:443:10.88.0.1)"
            ));
        };
        if host.is_empty() {
            return Err(format!("'{s}' has an empty host"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| format!("'{port}' in '{s}' is not a port number"))?;
        let addr: IpAddr = addr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("'{addr}' in '{s}' is not an IP address"))?;
        Ok(ResolveOverride {
            host: host.to_ascii_lowercase(),
            port,
            addr,
        })
    }
}

/// The address to use without asking DNS — the URL's own IP literal, or a `--resolve`
/// entry for `host` and `port` — with the `skipped` DNS event that says why.
pub fn address_without_dns(
    url: &Url,
    host: &str,
    port: u16,
    overrides: &[ResolveOverride],
) -> Option<(IpAddr, DnsEvent)> {
    let literal: Option<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
        _ => None,
    };
    let over = overrides
        .iter()
        .find(|r| r.host == host && r.port == port)
        .map(|r| r.addr);
    let addr = literal.or(over)?;
    let why = if literal.is_some() {
        "the URL names an IP address"
    } else {
        "--resolve gives the address"
    };
    let event = DnsEvent {
        event: "skipped".into(),
        name: host.to_string(),
        qtype: if addr.is_ipv4() { "A" } else { "AAAA" }.into(),
        server: None,
        id: None,
        rcode: None,
        addresses: vec![addr],
        cnames: Vec::new(),
        reason: Some(format!("no DNS query: {why}")),
    };
    Some((addr, event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resolve_entries() {
        let r: ResolveOverride = "WWW.example.test:443:10.88.0.1".parse().unwrap();
        assert_eq!(r.host, "www.example.test");
        assert_eq!(r.port, 443);
        assert_eq!(r.addr, "10.88.0.1".parse::<IpAddr>().unwrap());
        let v6: ResolveOverride = "h:80:[fd00::1]".parse().unwrap();
        assert_eq!(v6.addr, "fd00::1".parse::<IpAddr>().unwrap());
        let v6bare: ResolveOverride = "h:80:fd00::1".parse().unwrap();
        assert_eq!(v6bare.addr, v6.addr);
        assert!("h:443".parse::<ResolveOverride>().is_err());
        assert!("h:x:1.2.3.4".parse::<ResolveOverride>().is_err());
        assert!(":1:1.2.3.4".parse::<ResolveOverride>().is_err());
        assert!("h:1:nope".parse::<ResolveOverride>().is_err());
    }
}
