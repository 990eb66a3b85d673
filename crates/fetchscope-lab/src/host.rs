//! [`ServerHost`]: the lab's server machine — a smoltcp interface at 10.88.0.1 on a
//! [`QueueDevice`], with the DNS and HTTPS services on it — and, beside it on the same
//! network, the proxy's machine ([`ProxyHost`], 10.88.0.4).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::SystemTime;

use fetchscope_net::QueueDevice;
use rand::RngCore;
use smoltcp::iface::{Config, Interface, PollResult, SocketSet};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    HardwareAddress, IpAddress, IpCidr, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket,
};

use crate::config::{
    CDN_ADDR, LabConfig, SERVER_ADDR, SERVER_ADDR_V6, SERVER_GATEWAY, SERVER_GATEWAY_V6,
    SERVER_PREFIX, SERVER_PREFIX_V6,
};
use crate::dns::{DnsBehaviour, DnsService, DnsTcpService, Zone};
use crate::error::LabError;
use crate::fault::LabFault;
use crate::http::imf_fixdate;
use crate::https::{HTTPS_PORT, ServeContext, WebService, server_config};
use crate::lab::virtual_elapsed;
use crate::pki::LabPki;
use crate::proxy::ProxyHost;
use crate::stats::ServerStats;

/// Poll-and-serve rounds per [`ServerHost::step`] (each one bounded by the buffers).
const MAX_ROUNDS: usize = 64;

/// The server machine of the lab.
pub(crate) struct ServerHost {
    iface: Interface,
    device: QueueDevice,
    sockets: SocketSet<'static>,
    dns: DnsService,
    dns_tcp: DnsTcpService,
    https: WebService,
    http: WebService,
    /// The proxy's machine, which shares this one's wire.
    proxy: ProxyHost,
    fault: Option<LabFault>,
    stats: ServerStats,
    epoch: SystemTime,
    last_step: Option<Instant>,
}

impl std::fmt::Debug for ServerHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHost")
            .field("stats", &self.stats)
            .field("https", &self.https)
            .field("http", &self.http)
            .field("proxy", &self.proxy)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

impl ServerHost {
    /// Builds the interface (10.88.0.1 and 10.88.0.3, and fd00:88::1 with IPv6) and
    /// starts the services: DNS on UDP and TCP port 53, HTTPS on TCP port 443, plain
    /// HTTP on TCP port 80; and the proxy's machine (10.88.0.4, and fd00:88::4 with IPv6,
    /// TCP ports 3128 and 3129).
    pub fn new(config: &LabConfig, zone: Zone, pki: &LabPki) -> Result<Self, LabError> {
        let mut device = QueueDevice::new(config.mtu);
        let mut iface_config = Config::new(HardwareAddress::Ip);
        iface_config.random_seed = config.randomness.rng("lab-tcp").next_u64();
        let mut iface = Interface::new(iface_config, &mut device, Instant::ZERO);
        let mut cidrs = vec![
            IpCidr::new(IpAddress::Ipv4(SERVER_ADDR), SERVER_PREFIX),
            IpCidr::new(IpAddress::Ipv4(CDN_ADDR), SERVER_PREFIX),
        ];
        if config.ipv6 {
            cidrs.push(IpCidr::new(
                IpAddress::Ipv6(SERVER_ADDR_V6),
                SERVER_PREFIX_V6,
            ));
        }
        let mut full = false;
        iface.update_ip_addrs(|addrs| {
            // A fresh interface has room for IFACE_MAX_ADDR_COUNT (4) addresses.
            for cidr in &cidrs {
                full |= addrs.push(*cidr).is_err();
            }
        });
        let route_error = |_| LabError::Config("the server's route table is full".to_owned());
        if full {
            return Err(LabError::Config(
                "the server interface has no room for its addresses".to_owned(),
            ));
        }
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
        let behaviour = DnsBehaviour::for_fault(config.fault);
        let proxy_zone = zone.clone();
        let dns = DnsService::new(zone, behaviour, &mut sockets)?;
        let dns_tcp = DnsTcpService::new(behaviour, &mut sockets)?;
        let tls = server_config(pki, &config.randomness)?;
        let https = WebService::https(tls.clone(), config.fault, &mut sockets)?;
        let http = WebService::http(config.fault, &mut sockets)?;
        let proxy = ProxyHost::new(config, proxy_zone, tls)?;
        Ok(ServerHost {
            iface,
            device,
            sockets,
            dns,
            dns_tcp,
            https,
            http,
            proxy,
            fault: config.fault,
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

    /// Open HTTP connections: HTTPS, plain HTTP and the proxy's (TIME-WAIT included).
    pub fn connections(&self) -> usize {
        self.https.connections() + self.http.connections() + self.proxy.connections()
    }

    /// Hands a packet that arrived from the wire to the machine it is addressed to: the
    /// proxy's, or this one's interface (unless the `syn-silent` fault swallows it).
    pub fn deliver(&mut self, packet: Vec<u8>) {
        if destination(&packet).is_some_and(|dst| self.proxy.owns(dst)) {
            self.proxy.deliver(packet);
            return;
        }
        if self.fault == Some(LabFault::SynSilent) && is_syn_to(&packet, HTTPS_PORT) {
            log::debug!("lab: syn-silent fault: dropped a SYN to port {HTTPS_PORT}");
            self.stats.segments_dropped += 1;
            return;
        }
        self.device.push_rx(packet);
    }

    /// Takes the next packet the interface (then the proxy's) sent.
    pub fn take_outgoing(&mut self) -> Option<Vec<u8>> {
        self.device.pop_tx().or_else(|| self.proxy.take_outgoing())
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
                .dns_tcp
                .serve(self.dns.zone(), &mut self.sockets, now, &mut self.stats);
            served |= self
                .https
                .serve(&mut self.sockets, now, &date, &mut self.stats);
            served |= self
                .http
                .serve(&mut self.sockets, now, &date, &mut self.stats);
            served |= self.proxy.round(&mut ServeContext {
                now,
                date: &date,
                stats: &mut self.stats,
            });
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
            self.http.next_deadline(),
            self.dns_tcp.next_deadline(),
            self.proxy.next_deadline(now),
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

/// The destination address of an IPv4 or IPv6 packet.
fn destination(packet: &[u8]) -> Option<IpAddr> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => {
            let dst: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(dst)))
        }
        Some(6) => {
            let dst: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(dst)))
        }
        _ => None,
    }
}

/// True when `packet` is an IPv4 or IPv6 TCP segment to `port` with SYN and without ACK
/// (a connection attempt).
fn is_syn_to(packet: &[u8], port: u16) -> bool {
    let segment = match packet.first().map(|b| b >> 4) {
        Some(4) => Ipv4Packet::new_checked(packet)
            .ok()
            .filter(|ip| ip.next_header() == IpProtocol::Tcp)
            .and_then(|ip| {
                let header = usize::from(ip.header_len());
                let total = usize::from(ip.total_len());
                packet.get(header..total)
            }),
        Some(6) => Ipv6Packet::new_checked(packet)
            .ok()
            .filter(|ip| ip.next_header() == IpProtocol::Tcp)
            .and_then(|ip| {
                let len = usize::from(ip.payload_len());
                packet.get(40..40 + len)
            }),
        _ => None,
    };
    segment
        .and_then(|s| TcpPacket::new_checked(s).ok())
        .is_some_and(|tcp| tcp.dst_port() == port && tcp.syn() && !tcp.ack())
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{Ipv4Repr, TcpControl, TcpRepr, TcpSeqNumber};

    fn segment(dst_port: u16, control: TcpControl, ack: bool) -> Vec<u8> {
        let tcp = TcpRepr {
            src_port: 50000,
            dst_port,
            control,
            seq_number: TcpSeqNumber(1),
            ack_number: ack.then_some(TcpSeqNumber(1)),
            window_len: 1000,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: smoltcp::wire::Ipv4Address::new(10, 88, 1, 2),
            dst_addr: SERVER_ADDR,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let mut buf = vec![0u8; ip.buffer_len() + tcp.buffer_len()];
        let caps = ChecksumCapabilities::default();
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        ip.emit(&mut p, &caps);
        tcp.emit(
            &mut TcpPacket::new_unchecked(p.payload_mut()),
            &ip.src_addr.into(),
            &ip.dst_addr.into(),
            &caps,
        );
        buf
    }

    #[test]
    fn only_syns_to_the_port_match() {
        assert!(is_syn_to(&segment(443, TcpControl::Syn, false), 443));
        assert!(!is_syn_to(&segment(53, TcpControl::Syn, false), 443));
        assert!(!is_syn_to(&segment(443, TcpControl::Syn, true), 443));
        assert!(!is_syn_to(&segment(443, TcpControl::None, true), 443));
        assert!(!is_syn_to(&[], 443));
        assert!(!is_syn_to(&[0x45, 0, 0, 20], 443));
    }

    #[test]
    fn packets_are_told_apart_by_destination() {
        let to_server = segment(443, TcpControl::Syn, false);
        assert_eq!(destination(&to_server), Some(IpAddr::V4(SERVER_ADDR)));
        let mut v6 = vec![0x60; 40];
        v6[24..40].copy_from_slice(&crate::config::PROXY_ADDR_V6.octets());
        assert_eq!(
            destination(&v6),
            Some(IpAddr::V6(crate::config::PROXY_ADDR_V6))
        );
        assert_eq!(destination(&[]), None);
        assert_eq!(destination(&[0x45, 0, 0, 20]), None);
        assert_eq!(destination(&[0x15; 40]), None);
    }
}
