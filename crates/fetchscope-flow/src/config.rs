//! [`FetchConfig`]: what to fetch and how.

use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fetchscope_core::http::default_user_agent;
use fetchscope_core::{Randomness, ResolveOverride};
use rustls::{KeyLog, RootCertStore};
use smoltcp::wire::IpCidr;
use url::Url;

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
    pub trust: fetchscope_core::tls::TrustSource,
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
    pub redirect_protocols: fetchscope_core::redirects::RedirectProtocols,
    /// Lab or real network, and fault injection: decides the advice in error messages.
    pub conditions: fetchscope_core::advice::Conditions,
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
            trust: fetchscope_core::tls::TrustSource::default(),
            key_log: None,
            body_out: None,
            user_agent: default_user_agent(),
            epoch: SystemTime::now(),
            redirect_protocols: fetchscope_core::redirects::RedirectProtocols::default(),
            conditions: fetchscope_core::advice::Conditions::default(),
            nxdomain_hint: None,
            tcp_rx_buffer: 256 * 1024,
            tcp_tx_buffer: 64 * 1024,
            mtu: None,
        }
    }
}
