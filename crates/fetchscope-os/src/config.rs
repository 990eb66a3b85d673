//! [`OsConfig`]: what the kernel run fetches and how.

use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use fetchscope_core::Randomness;
use fetchscope_core::ResolveOverride;
use rustls::{KeyLog, RootCertStore};
use url::Url;

/// Everything the kernel run needs to know; the same choices as the userspace run's
/// `FetchConfig`, minus what only a userspace stack has (its address, its gateway).
pub struct OsConfig {
    /// The URL (`https://` or `http://`).
    pub url: Url,
    /// `--resolve` entries.
    pub resolve: Vec<ResolveOverride>,
    /// DNS servers, tried in order.
    pub dns_servers: Vec<IpAddr>,
    /// Every random choice the run makes itself (DNS id, TLS randoms); the kernel picks
    /// its own ISN and port.
    pub randomness: Randomness,
    /// Give up after this long in total.
    pub timeout: Duration,
    /// Trust anchors for the server's certificate.
    pub roots: Arc<RootCertStore>,
    /// Where the trust anchors came from (decides the advice in certificate errors).
    pub trust: fetchscope_core::tls::TrustSource,
    /// The schemes a redirect may lead to (`--proto-redir`).
    pub redirect_protocols: fetchscope_core::redirects::RedirectProtocols,
    /// Where else to write TLS secrets.
    pub key_log: Option<Arc<dyn KeyLog>>,
    /// Where to write the decoded body; it is hashed either way.
    pub body_out: Option<Box<dyn Write>>,
    /// `User-Agent` header value.
    pub user_agent: String,
    /// Capture on this interface (`any`: all of them); `None`: the interface of the route
    /// to each peer.
    pub capture_interface: Option<String>,
}

impl std::fmt::Debug for OsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OsConfig")
            .field("url", &self.url.as_str())
            .field("resolve", &self.resolve)
            .field("dns_servers", &self.dns_servers)
            .field("randomness", &self.randomness)
            .field("timeout", &self.timeout)
            .field("capture_interface", &self.capture_interface)
            .finish_non_exhaustive()
    }
}

impl OsConfig {
    /// A configuration with fetchscope's defaults for `url`.
    pub fn new(url: Url, roots: Arc<RootCertStore>) -> Self {
        OsConfig {
            url,
            resolve: Vec::new(),
            dns_servers: Vec::new(),
            randomness: Randomness::new(None),
            timeout: Duration::from_secs(30),
            roots,
            trust: fetchscope_core::tls::TrustSource::default(),
            redirect_protocols: Default::default(),
            key_log: None,
            body_out: None,
            user_agent: fetchscope_core::default_user_agent(),
            capture_interface: None,
        }
    }
}
