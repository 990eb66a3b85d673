//! [`FetchConfig`]: what to fetch (the core's [`FetchSpec`], as the kernel run has it
//! too) and what only the userspace stack needs: its addresses, routes and buffers.

use std::sync::Arc;
use std::time::SystemTime;

use fetchscope_core::FetchSpec;
use rustls::RootCertStore;
use smoltcp::wire::IpCidr;
use url::Url;

/// Everything a fetch needs to know.
#[derive(Debug)]
pub struct FetchConfig {
    /// What to fetch and how (the same for both stacks).
    pub spec: FetchSpec,
    /// The stack's own addresses and prefixes (an IPv4 one, an IPv6 one, or both).
    pub addrs: Vec<IpCidr>,
    /// Next hops for everything off-link, at most one per IP version.
    pub gateways: Vec<std::net::IpAddr>,
    /// Wall-clock time at the link's time zero (certificate validity is checked at
    /// `epoch + link time`).
    pub epoch: SystemTime,
    /// Lab or real network, and fault injection: decides the advice in error messages.
    pub conditions: fetchscope_core::advice::Conditions,
    /// A sentence added to DNS "no such name" errors (e.g. the built-in lab's hint).
    pub nxdomain_hint: Option<String>,
    /// TCP receive buffer size (sets the window scale). 1 MiB by default: smoltcp has no
    /// SACK-based recovery, so a sender stalled at the window's edge behind a hole waits for
    /// its retransmission timer; a window that holds a whole 1 MiB body lets duplicate ACKs
    /// keep coming (docs/faults.md has the loss matrix for each size tried).
    pub tcp_rx_buffer: usize,
    /// TCP send buffer size.
    pub tcp_tx_buffer: usize,
    /// The stack's IP MTU when smaller than the link's (`--mtu`); `None`: the link's.
    pub mtu: Option<usize>,
}

impl FetchConfig {
    /// A configuration with fetchscope's defaults for `url` from the addresses `addrs`.
    pub fn new(url: Url, addrs: Vec<IpCidr>, roots: Arc<RootCertStore>) -> Self {
        FetchConfig {
            spec: FetchSpec::new(url, roots),
            addrs,
            gateways: Vec::new(),
            epoch: SystemTime::now(),
            conditions: fetchscope_core::advice::Conditions::default(),
            nxdomain_hint: None,
            tcp_rx_buffer: 1024 * 1024,
            tcp_tx_buffer: 64 * 1024,
            mtu: None,
        }
    }
}
