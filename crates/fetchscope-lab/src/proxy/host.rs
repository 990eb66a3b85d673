//! [`ProxyHost`]: the proxy's machine — its own smoltcp interface at 10.88.0.4 (and
//! fd00:88::4 with IPv6) on its own [`QueueDevice`], beside the server machine on the
//! server's network, with the proxy listening on TCP ports 3128 and 3129.

use std::net::IpAddr;
use std::sync::Arc;

use fetchscope_net::QueueDevice;
use rand::RngCore;
use rustls::ServerConfig;
use smoltcp::iface::{Config, Interface, PollResult, SocketSet};
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

use super::policy::ProxyPolicy;
use super::{PROXY_AUTH_PORT, PROXY_PORT};
use crate::config::{
    CDN_ADDR, LabConfig, PROXY_ADDR, PROXY_ADDR_V6, SERVER_ADDR, SERVER_ADDR_V6, SERVER_GATEWAY,
    SERVER_GATEWAY_V6, SERVER_PREFIX, SERVER_PREFIX_V6,
};
use crate::dns::Zone;
use crate::error::LabError;
use crate::https::{ServeContext, WebService};

/// The proxy's machine.
pub(crate) struct ProxyHost {
    iface: Interface,
    device: QueueDevice,
    sockets: SocketSet<'static>,
    /// Port 3128: no credentials.
    open: WebService,
    /// Port 3129: `Proxy-Authorization` required.
    auth: WebService,
    /// The proxy's addresses (packets to these are the proxy's).
    addrs: Vec<IpAddr>,
}

impl std::fmt::Debug for ProxyHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyHost")
            .field("addrs", &self.addrs)
            .field("open", &self.open)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl ProxyHost {
    /// Builds the machine: its interface, routes and the two listeners. `zone` is what
    /// the proxy resolves names with, `tls` the lab's HTTPS configuration (the far end of
    /// its tunnels to port 443).
    pub fn new(config: &LabConfig, zone: Zone, tls: Arc<ServerConfig>) -> Result<Self, LabError> {
        let mut device = QueueDevice::new(config.mtu);
        let mut iface_config = Config::new(HardwareAddress::Ip);
        iface_config.random_seed = config.randomness.rng("lab-proxy-tcp").next_u64();
        let mut iface = Interface::new(iface_config, &mut device, Instant::ZERO);
        let mut addrs = vec![IpAddr::V4(PROXY_ADDR)];
        let mut cidrs = vec![IpCidr::new(IpAddress::Ipv4(PROXY_ADDR), SERVER_PREFIX)];
        let mut origins = vec![IpAddr::V4(SERVER_ADDR), IpAddr::V4(CDN_ADDR)];
        if config.ipv6 {
            addrs.push(IpAddr::V6(PROXY_ADDR_V6));
            cidrs.push(IpCidr::new(
                IpAddress::Ipv6(PROXY_ADDR_V6),
                SERVER_PREFIX_V6,
            ));
            origins.push(IpAddr::V6(SERVER_ADDR_V6));
        }
        let mut full = false;
        iface.update_ip_addrs(|a| {
            for cidr in &cidrs {
                full |= a.push(*cidr).is_err();
            }
        });
        if full {
            return Err(LabError::Config(
                "the proxy's interface has no room for its addresses".to_owned(),
            ));
        }
        let route_error = |_| LabError::Config("the proxy's route table is full".to_owned());
        iface
            .routes_mut()
            .add_default_ipv4_route(SERVER_GATEWAY)
            .map_err(route_error)?;
        if config.ipv6 {
            iface
                .routes_mut()
                .add_default_ipv6_route(SERVER_GATEWAY_V6)
                .map_err(route_error)?;
        }
        let mut sockets = SocketSet::new(Vec::new());
        let policy = |require_auth| {
            Arc::new(ProxyPolicy {
                require_auth,
                fault: config.fault,
                zone: zone.clone(),
                origins: origins.clone(),
                tls: tls.clone(),
            })
        };
        let open = WebService::proxy(policy(false), PROXY_PORT, &mut sockets)?;
        let auth = WebService::proxy(policy(true), PROXY_AUTH_PORT, &mut sockets)?;
        Ok(ProxyHost {
            iface,
            device,
            sockets,
            open,
            auth,
            addrs,
        })
    }

    /// True when `dst` is one of the proxy's addresses.
    pub fn owns(&self, dst: IpAddr) -> bool {
        self.addrs.contains(&dst)
    }

    /// Hands a packet for the proxy to its interface.
    pub fn deliver(&mut self, packet: Vec<u8>) {
        self.device.push_rx(packet);
    }

    /// Takes the next packet the proxy's interface sent.
    pub fn take_outgoing(&mut self) -> Option<Vec<u8>> {
        self.device.pop_tx()
    }

    /// Open connections to the proxy (TIME-WAIT included).
    pub fn connections(&self) -> usize {
        self.open.connections() + self.auth.connections()
    }

    /// One round at `now`: the interface takes delivered packets and sends what it has,
    /// the proxy serves its connections. True when anything happened.
    pub fn round(&mut self, cx: &mut ServeContext<'_>) -> bool {
        let polled = self.iface.poll(cx.now, &mut self.device, &mut self.sockets);
        let mut served = self
            .open
            .serve(&mut self.sockets, cx.now, cx.date, cx.stats);
        served |= self
            .auth
            .serve(&mut self.sockets, cx.now, cx.date, cx.stats);
        served || polled != PollResult::None
    }

    /// When the machine next needs to run without a new packet: a timer of its
    /// interface or of a connection.
    pub fn next_deadline(&mut self, now: Instant) -> Option<Instant> {
        [
            self.iface.poll_at(now, &self.sockets),
            self.open.next_deadline(),
            self.auth.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}
