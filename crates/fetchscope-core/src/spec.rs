//! What to fetch, apart from the network stack: [`FetchSpec`] (the request and the
//! choices both stacks' runs make alike), the `--resolve` overrides and the address a
//! fetch may use without asking DNS.

use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::{KeyLog, RootCertStore};
use url::Url;

use crate::advice::Conditions;
use crate::event::DnsEvent;
use crate::http::{DigestSink, RequestOptions};
use crate::random::Randomness;
use crate::redirects::RedirectProtocols;
use crate::session::SessionConfig;
use crate::time::Instant;
use crate::tls::{LinkTime, TlsConfig, TlsError, TlsSetup, TrustSource};

/// What to fetch and how, whichever stack carries it: both drivers' configurations hold
/// one, so a new request option is added once.
pub struct FetchSpec {
    /// The URL (`https://` or `http://`).
    pub url: Url,
    /// `--resolve` entries.
    pub resolve: Vec<ResolveOverride>,
    /// DNS servers, tried in order.
    pub dns_servers: Vec<IpAddr>,
    /// Every random choice (DNS id, ports, TLS randoms; ISNs on the userspace stack).
    pub randomness: Randomness,
    /// Give up after this long in total.
    pub timeout: Duration,
    /// `--connect-timeout`: each new connection must be ready for its request this soon.
    pub connect_timeout: Option<Duration>,
    /// Trust anchors for the server's certificate.
    pub roots: Arc<RootCertStore>,
    /// Where the trust anchors came from (decides the advice in certificate errors).
    pub trust: TrustSource,
    /// The schemes a redirect may lead to (`--proto-redir`).
    pub redirect_protocols: RedirectProtocols,
    /// Where else to write TLS secrets (`--keylog`, `SSLKEYLOGFILE`).
    pub key_log: Option<Arc<dyn KeyLog>>,
    /// Where to write the decoded body (`-o`); the body is hashed either way.
    pub body_out: Option<Box<dyn Write + Send>>,
    /// The request: method, headers, body, credentials, the client imitated.
    pub request: RequestOptions,
    /// `--insecure`: a certificate that fails verification is reported, not refused.
    pub insecure: bool,
}

impl std::fmt::Debug for FetchSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchSpec")
            .field("url", &self.url.as_str())
            .field("resolve", &self.resolve)
            .field("dns_servers", &self.dns_servers)
            .field("randomness", &self.randomness)
            .field("timeout", &self.timeout)
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl FetchSpec {
    /// fetchscope's defaults for `url`, trusting `roots`.
    pub fn new(url: Url, roots: Arc<RootCertStore>) -> FetchSpec {
        FetchSpec {
            url,
            resolve: Vec::new(),
            dns_servers: Vec::new(),
            randomness: Randomness::new(None),
            timeout: Duration::from_secs(30),
            connect_timeout: None,
            roots,
            trust: TrustSource::default(),
            redirect_protocols: RedirectProtocols::default(),
            key_log: None,
            body_out: None,
            request: RequestOptions::default(),
            insecure: false,
        }
    }

    /// The same request for another run (the other stack's): everything but the body's
    /// writer, which only one run may have.
    pub fn twin(&self) -> FetchSpec {
        FetchSpec {
            url: self.url.clone(),
            resolve: self.resolve.clone(),
            dns_servers: self.dns_servers.clone(),
            randomness: self.randomness,
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            roots: self.roots.clone(),
            trust: self.trust,
            redirect_protocols: self.redirect_protocols,
            key_log: self.key_log.clone(),
            body_out: None,
            request: self.request.clone(),
            insecure: self.insecure,
        }
    }

    /// The TLS client configuration, its randomness drawn for `purpose` (each run its
    /// own, so two runs' client randoms differ even with `--seed`), certificates checked
    /// at `time`.
    pub fn tls_config(&self, purpose: &str, time: Arc<LinkTime>) -> Result<TlsConfig, TlsError> {
        TlsConfig::new(TlsSetup {
            provider: self.randomness.crypto_provider(purpose),
            roots: self.roots.clone(),
            alpn: vec![b"http/1.1".to_vec()],
            key_log: self.key_log.clone(),
            time,
            trust: self.trust,
            insecure: self.insecure,
        })
    }

    /// The session's configuration (the body's writer moves into it), ending at
    /// `deadline`, with advice for `conditions`.
    pub fn session_config(
        &mut self,
        tls: TlsConfig,
        deadline: Instant,
        conditions: Conditions,
    ) -> SessionConfig {
        SessionConfig {
            request: self.request.clone(),
            redirect_protocols: self.redirect_protocols,
            tls,
            resolve: self.resolve.clone(),
            deadline,
            connect_timeout: self.connect_timeout,
            body: DigestSink::new(self.body_out.take()),
            conditions,
        }
    }
}

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
