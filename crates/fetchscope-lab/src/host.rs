//! [`ServerHost`]: the lab's server machine — a smoltcp interface at 10.88.0.1 on a
//! [`QueueDevice`], with the DNS and HTTPS services on it.

use std::time::SystemTime;

use fetchscope_net::QueueDevice;
use rand::RngCore;
use smoltcp::iface::{Config, Interface, PollResult, SocketSet};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

use crate::config::{LabConfig, SERVER_ADDR, SERVER_GATEWAY, SERVER_PREFIX};
use crate::dns::{DnsService, Zone};
use crate::error::LabError;
use crate::http::imf_fixdate;
use crate::https::{HttpsService, server_config};
use crate::lab::virtual_elapsed;
use crate::pki::LabPki;
use crate::stats::ServerStats;

/// Poll-and-serve rounds per [`ServerHost::step`] (each one bounded by the buffers).
const MAX_ROUNDS: usize = 64;

/// The server machine of the lab.
pub(crate) struct ServerHost {
    iface: Interface,
    device: QueueDevice,
    sockets: SocketSet<'static>,
    dns: DnsService,
    https: HttpsService,
    stats: ServerStats,
    epoch: SystemTime,
    last_step: Option<Instant>,
}

impl std::fmt::Debug for ServerHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHost")
            .field("stats", &self.stats)
            .field("https", &self.https)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

impl ServerHost {
    /// Builds the interface and starts both services.
    pub fn new(config: &LabConfig, zone: Zone, pki: &LabPki) -> Result<Self, LabError> {
        let mut device = QueueDevice::new(config.mtu);
        let mut iface_config = Config::new(HardwareAddress::Ip);
        iface_config.random_seed = config.randomness.rng("lab-tcp").next_u64();
        let mut iface = Interface::new(iface_config, &mut device, Instant::ZERO);
        iface.update_ip_addrs(|addrs| {
            // A fresh interface has room for IFACE_MAX_ADDR_COUNT (4) addresses.
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(SERVER_ADDR), SERVER_PREFIX));
        });
        iface
            .routes_mut()
            .add_default_ipv4_route(SERVER_GATEWAY)
            .map_err(|_| LabError::Config("the server's route table is full".to_owned()))?;

        let mut sockets = SocketSet::new(Vec::new());
        let dns = DnsService::new(zone, &mut sockets)?;
        let https = HttpsService::new(server_config(pki, &config.randomness)?, &mut sockets)?;
        Ok(ServerHost {
            iface,
            device,
            sockets,
            dns,
            https,
            stats: ServerStats::default(),
            epoch: config.epoch,
            last_step: None,
        })
    }

    /// The DNS zone served.
    pub fn zone(&self) -> &Zone {
        self.dns.zone()
    }

    /// What the servers have done so far.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Open HTTPS connections.
    pub fn connections(&self) -> usize {
        self.https.connections()
    }

    /// Hands a packet that arrived from the wire to the interface.
    pub fn deliver(&mut self, packet: Vec<u8>) {
        self.device.push_rx(packet);
    }

    /// Takes the next packet the interface sent.
    pub fn take_outgoing(&mut self) -> Option<Vec<u8>> {
        self.device.pop_tx()
    }

    /// Runs the machine at `now`: the interface takes every delivered packet and sends
    /// what it has, the services answer, until nothing more happens at this instant.
    pub fn step(&mut self, now: Instant) {
        let wall = self.epoch.checked_add(virtual_elapsed(now));
        let date = imf_fixdate(wall.unwrap_or(self.epoch));
        for _ in 0..MAX_ROUNDS {
            let polled = self.iface.poll(now, &mut self.device, &mut self.sockets);
            let mut served = self.dns.serve(&mut self.sockets, &mut self.stats);
            served |= self
                .https
                .serve(&mut self.sockets, now, &date, &mut self.stats);
            if !served && polled == PollResult::None {
                break;
            }
        }
        self.last_step = Some(now);
    }

    /// When the machine next needs to run (a timer of the interface or of a connection),
    /// if ever without a new packet. Always later than the last step, so the clock never
    /// stands still.
    pub fn next_step(&mut self, now: Instant) -> Option<Instant> {
        let at = [
            self.iface.poll_at(now, &self.sockets),
            self.https.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()?;
        match self.last_step {
            Some(last) if at <= last => Some(last + Duration::from_micros(1)),
            _ => Some(at),
        }
    }
}
