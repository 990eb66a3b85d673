//! [`FetchConfig`]: what to fetch and how.

use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fetchscope_net::Randomness;
use rustls::{KeyLog, RootCertStore};
use smoltcp::wire::IpCidr;
use url::Url;

use crate::event::DnsEvent;
use crate::http::default_user_agent;

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

/// Everything a fetch needs to know.
pub struct FetchConfig {
    /// The URL (`https://` or `http://`).
    pub url: Url,
    /// `--resolve` entries.
    pub resolve: Vec<ResolveOverride>,
    /// DNS servers, tried in order.
    pub dns_servers: Vec<IpAddr>,
    /// The stack's own addresses and prefixes (an IPv4 one, an IPv6 one, or both).
    pub addrs: Vec<IpCidr>,
    /// Next hops for everything off-link, at most one per IP version.
    pub gateways: Vec<IpAddr>,
    /// Every random choice.
    pub randomness: Randomness,
    /// Give up after this long in total.
    pub timeout: Duration,
    /// Trust anchors for the server's certificate.
    pub roots: Arc<RootCertStore>,
    /// Where the trust anchors came from (decides the advice in certificate errors).
    pub trust: crate::tls::TrustSource,
    /// Where else to write TLS secrets (`--keylog`, `SSLKEYLOGFILE`).
    pub key_log: Option<Arc<dyn KeyLog>>,
    /// Where to write the decoded body (`-o`); the body is hashed either way.
    pub body_out: Option<Box<dyn Write>>,
    /// `User-Agent` header value.
    pub user_agent: String,
    /// Wall-clock time at the link's time zero (certificate validity is checked at
    /// `epoch + link time`).
    pub epoch: SystemTime,
    /// The schemes a redirect may lead to (`--proto-redir`).
    pub redirect_protocols: crate::redirects::RedirectProtocols,
    /// Lab or real network, and fault injection: decides the advice in error messages.
    pub conditions: crate::advice::Conditions,
    /// A sentence added to DNS "no such name" errors (e.g. the built-in lab's hint).
    pub nxdomain_hint: Option<String>,
    /// TCP receive buffer size (sets the window scale).
    pub tcp_rx_buffer: usize,
    /// TCP send buffer size.
    pub tcp_tx_buffer: usize,
    /// The stack's IP MTU when smaller than the link's (`--mtu`); `None`: the link's.
    pub mtu: Option<usize>,
}

impl std::fmt::Debug for FetchConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchConfig")
            .field("url", &self.url.as_str())
            .field("resolve", &self.resolve)
            .field("dns_servers", &self.dns_servers)
            .field("addrs", &self.addrs)
            .field("gateways", &self.gateways)
            .field("randomness", &self.randomness)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl FetchConfig {
    /// A configuration with fetchscope's defaults for `url` from the addresses `addrs`.
    pub fn new(url: Url, addrs: Vec<IpCidr>, roots: Arc<RootCertStore>) -> Self {
        FetchConfig {
            url,
            resolve: Vec::new(),
            dns_servers: Vec::new(),
            addrs,
            gateways: Vec::new(),
            randomness: Randomness::new(None),
            timeout: Duration::from_secs(30),
            roots,
            trust: crate::tls::TrustSource::default(),
            key_log: None,
            body_out: None,
            user_agent: default_user_agent(),
            epoch: SystemTime::now(),
            redirect_protocols: crate::redirects::RedirectProtocols::default(),
            conditions: crate::advice::Conditions::default(),
            nxdomain_hint: None,
            tcp_rx_buffer: 256 * 1024,
            tcp_tx_buffer: 64 * 1024,
            mtu: None,
        }
    }
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
