//! [`OsConfig`]: what the kernel run fetches — the core's [`FetchSpec`], the same as the
//! userspace run's — and where it captures.

use std::sync::Arc;

use fetchscope_core::FetchSpec;
use rustls::RootCertStore;
use url::Url;

/// Everything the kernel run needs to know: the userspace run's request and choices,
/// minus what only a userspace stack has (its address, its gateway).
#[derive(Debug)]
pub struct OsConfig {
    /// What to fetch and how (the same for both stacks; the kernel picks its own ISN
    /// and port).
    pub spec: FetchSpec,
    /// Capture on this interface (`any`: all of them); `None`: the interface of the route
    /// to each peer.
    pub capture_interface: Option<String>,
}

impl OsConfig {
    /// A configuration with fetchscope's defaults for `url`.
    pub fn new(url: Url, roots: Arc<RootCertStore>) -> Self {
        OsConfig {
            spec: FetchSpec::new(url, roots),
            capture_interface: None,
        }
    }
}
