//! [`Lab`]: the built-in lab as a [`Link`] — the client's end of a simulated wire, a
//! router, and the server machine, all on one virtual clock.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use fetchscope_net::{Link, LinkError, SimWire, WaitOutcome};
use rustls::pki_types::CertificateDer;
use smoltcp::time::Instant;
use smoltcp::wire::{IpAddress, IpCidr};

use crate::config::{
    CDN_ADDR, CLIENT_ADDR, CLIENT_ADDR_V6, CLIENT_GATEWAY, CLIENT_GATEWAY_V6, CLIENT_PREFIX,
    CLIENT_PREFIX_V6, CertValidity, LabConfig, PROXY_ADDR, PROXY_ADDR_V6, SERVER_ADDR,
    SERVER_ADDR_V6,
};
use crate::dns::{Zone, ZoneRecord};
use crate::error::LabError;
use crate::fault::LabFault;
use crate::host::ServerHost;
use crate::pki::{LabPki, ServerCertKind};
use crate::proxy::PROXY_NAME;
use crate::router;
use crate::stats::ServerStats;

/// The web server's names, all on the server's certificate: `www.example.test` and
/// `example.test` (A 10.88.0.1), `alias.example.test` (CNAME www.example.test),
/// `chain.example.test` (CNAME alias.example.test) and `cdn.example.test` (A 10.88.0.3,
/// the server's second address). The DNS server also knows the proxy,
/// [`PROXY_NAME`](crate::PROXY_NAME) (A 10.88.0.4, not on the certificate).
pub const LAB_NAMES: [&str; 5] = [
    "www.example.test",
    "example.test",
    "alias.example.test",
    "chain.example.test",
    "cdn.example.test",
];

/// How long before the lab's epoch the certificate of the `cert-expired` fault expired.
const EXPIRED_AGO: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// How long the certificate of the `cert-expired` fault was valid.
const EXPIRED_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Smallest and largest MTU the lab accepts.
const MTU_RANGE: std::ops::RangeInclusive<usize> = 576..=65535;

/// Server events processed per [`Link::wait`] or [`Link::send`] call at most; past it,
/// `wait` returns [`WaitOutcome::Ready`] early so the caller gets control back.
const MAX_EVENTS_PER_CALL: usize = 100_000;

/// The built-in lab: a DNS and an HTTPS server on their own smoltcp interface behind an
/// in-memory wire, on a virtual clock that never sleeps.
///
/// As a [`Link`] it is the client's end of the wire: [`Link::send`] puts a packet on the
/// client→server wire (the clock advances while it is clocked out), [`Link::wait`] runs the
/// world event by event — packet arrivals, server timers — until a packet reaches the
/// client or the deadline passes, and [`Link::recv`] hands over packets that have arrived.
pub struct Lab {
    clock: Instant,
    to_server: SimWire,
    to_client: SimWire,
    server: ServerHost,
    ca_cert: CertificateDer<'static>,
    ca_pem: String,
    mtu: usize,
    epoch: SystemTime,
    fault: Option<LabFault>,
    ipv6: bool,
    /// The router's loss of DNS answer fragments (`dns-fragment-lost`).
    fragment_loss: Option<router::SecondFragmentLoss>,
}

impl Lab {
    /// Builds the lab: makes the CA and server certificate, starts the servers.
    pub fn new(config: LabConfig) -> Result<Lab, LabError> {
        if !MTU_RANGE.contains(&config.mtu) {
            return Err(LabError::Config(format!(
                "MTU {} is outside {}..={}",
                config.mtu,
                MTU_RANGE.start(),
                MTU_RANGE.end()
            )));
        }
        let pki = LabPki::generate(
            &LAB_NAMES,
            config.validity(),
            cert_kind(&config),
            &mut config.randomness.rng("lab-pki"),
        )?;
        let server = ServerHost::new(&config, zone(config.ipv6), &pki)?;
        Ok(Lab {
            clock: Instant::ZERO,
            to_server: SimWire::new(config.wire),
            to_client: SimWire::new(config.wire),
            server,
            ca_cert: pki.ca_cert,
            ca_pem: pki.ca_pem,
            mtu: config.mtu,
            epoch: config.epoch,
            fault: config.fault,
            ipv6: config.ipv6,
            fragment_loss: (config.fault == Some(LabFault::DnsFragmentLost))
                .then(router::SecondFragmentLoss::default),
        })
    }

    /// The lab's fault, if it has one.
    pub fn fault(&self) -> Option<LabFault> {
        self.fault
    }

    /// The lab CA's certificate: in lab mode the client trusts only this.
    pub fn ca_certificate(&self) -> CertificateDer<'static> {
        self.ca_cert.clone()
    }

    /// The lab CA's certificate in PEM (e.g. for `--cacert` of another client).
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The DNS server's address, 10.88.0.1 (the HTTPS server shares it).
    pub fn dns_server(&self) -> IpAddr {
        IpAddr::V4(SERVER_ADDR)
    }

    /// The lab proxy's address, 10.88.0.4 (`proxy.example.test`, TCP ports
    /// [`PROXY_PORT`](crate::PROXY_PORT) and [`PROXY_AUTH_PORT`](crate::PROXY_AUTH_PORT)).
    pub fn proxy_addr(&self) -> IpAddr {
        IpAddr::V4(PROXY_ADDR)
    }

    /// The client stack's address and prefix, 10.88.1.2/24.
    pub fn client_cidr(&self) -> IpCidr {
        IpCidr::new(IpAddress::Ipv4(CLIENT_ADDR), CLIENT_PREFIX)
    }

    /// The client's default gateway, 10.88.1.1.
    pub fn client_gateway(&self) -> IpAddr {
        IpAddr::V4(CLIENT_GATEWAY)
    }

    /// The client stack's IPv6 address and prefix, fd00:88:1::2/64, when the lab has
    /// IPv6 ([`LabConfig::ipv6`]).
    pub fn client_cidr_v6(&self) -> Option<IpCidr> {
        self.ipv6
            .then(|| IpCidr::new(IpAddress::Ipv6(CLIENT_ADDR_V6), CLIENT_PREFIX_V6))
    }

    /// The client's IPv6 default gateway, fd00:88:1::1, when the lab has IPv6.
    pub fn client_gateway_v6(&self) -> Option<IpAddr> {
        self.ipv6.then_some(IpAddr::V6(CLIENT_GATEWAY_V6))
    }

    /// The lab's DNS names, each with its first address (following CNAMEs).
    pub fn names(&self) -> Vec<(String, IpAddr)> {
        let zone = self.server.zone();
        zone.names()
            .into_iter()
            .filter_map(|name| {
                let addr = zone.addresses(&name).first().copied()?;
                Some((name, addr))
            })
            .collect()
    }

    /// The lab's DNS zone: every name with its records.
    pub fn zone(&self) -> &Zone {
        self.server.zone()
    }

    /// The wall-clock time of virtual time zero.
    pub fn epoch(&self) -> SystemTime {
        self.epoch
    }

    /// The lab's wall-clock time now: the epoch plus the virtual time (what the server
    /// puts in `Date` headers; what a client should check certificates against).
    pub fn wall_time(&self) -> SystemTime {
        let elapsed = virtual_elapsed(self.clock);
        self.epoch.checked_add(elapsed).unwrap_or(self.epoch)
    }

    /// What the servers have done so far.
    pub fn server_stats(&self) -> ServerStats {
        self.server.stats()
    }

    /// HTTP connections the servers hold open: HTTPS, plain HTTP and the proxy's
    /// (TIME-WAIT included).
    pub fn server_connections(&self) -> usize {
        self.server.connections()
    }

    /// When the server side next has something to do: a packet arriving for it, or a
    /// timer of its interface or connections.
    fn next_server_event(&mut self) -> Option<Instant> {
        [
            self.to_server.next_arrival(),
            self.server.next_step(self.clock),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs the server at the current clock: packets that arrived pass the router and go
    /// in, the server steps, its packets pass the router onto the client-bound wire.
    fn run_server(&mut self) {
        while let Some(packet) = self.to_server.pop_arrived(self.clock) {
            match router::forward(packet) {
                Some(packet) => self.server.deliver(packet),
                None => log::debug!("lab: the router dropped a packet from the client"),
            }
        }
        self.server.step(self.clock);
        while let Some(packet) = self.server.take_outgoing() {
            if let Some(loss) = self.fragment_loss.as_mut()
                && loss.drops(&packet)
            {
                continue;
            }
            if let Some(packet) = router::forward(packet) {
                self.to_client.send(self.clock, packet);
            }
        }
    }

    /// Runs every server-side event up to `until` in order, then sets the clock to
    /// `until` (if later).
    fn advance_to(&mut self, until: Instant) {
        for _ in 0..MAX_EVENTS_PER_CALL {
            let server_event = [
                self.to_server.next_arrival(),
                self.server.next_step(self.clock),
            ]
            .into_iter()
            .flatten()
            .min();
            match server_event {
                Some(t) if t <= until => {
                    self.clock = self.clock.max(t);
                    self.run_server();
                }
                _ => break,
            }
        }
        self.clock = self.clock.max(until);
    }
}

/// The lab's DNS zone: [`LAB_NAMES`] and [`PROXY_NAME`], and AAAA records for the server's
/// names and the proxy with IPv6.
fn zone(ipv6: bool) -> Zone {
    let server = || ZoneRecord::A(SERVER_ADDR);
    let mut records = vec![
        ("www.example.test".to_owned(), server()),
        ("example.test".to_owned(), server()),
        (
            "alias.example.test".to_owned(),
            ZoneRecord::Cname("www.example.test".to_owned()),
        ),
        (
            "chain.example.test".to_owned(),
            ZoneRecord::Cname("alias.example.test".to_owned()),
        ),
        ("cdn.example.test".to_owned(), ZoneRecord::A(CDN_ADDR)),
        (PROXY_NAME.to_owned(), ZoneRecord::A(PROXY_ADDR)),
    ];
    if ipv6 {
        for name in ["www.example.test", "example.test"] {
            records.push((name.to_owned(), ZoneRecord::Aaaa(SERVER_ADDR_V6)));
        }
        records.push((PROXY_NAME.to_owned(), ZoneRecord::Aaaa(PROXY_ADDR_V6)));
    }
    Zone::new(records)
}

/// The server certificate the lab's fault asks for.
fn cert_kind(config: &LabConfig) -> ServerCertKind {
    match config.fault {
        Some(LabFault::CertUnknownCa) => ServerCertKind::UnknownCa,
        Some(LabFault::CertWrongName) => ServerCertKind::WrongName,
        Some(LabFault::CertSelfSigned) => ServerCertKind::SelfSigned,
        Some(LabFault::CertChainTooLong) => ServerCertKind::LongChain,
        Some(LabFault::CertClientAuthOnly) => ServerCertKind::ClientAuthOnly,
        Some(LabFault::CertExpired) => {
            let not_after = config
                .epoch
                .checked_sub(EXPIRED_AGO)
                .unwrap_or(config.epoch);
            ServerCertKind::Expired(CertValidity {
                not_before: not_after.checked_sub(EXPIRED_LIFETIME).unwrap_or(not_after),
                not_after,
            })
        }
        _ => ServerCertKind::Normal,
    }
}

/// The time since virtual zero as a std duration (zero for negative instants).
pub(crate) fn virtual_elapsed(t: Instant) -> std::time::Duration {
    std::time::Duration::from_micros(t.total_micros().max(0).unsigned_abs())
}

impl Link for Lab {
    fn now(&self) -> Instant {
        self.clock
    }

    fn send(&mut self, packet: &[u8]) -> Result<(), LinkError> {
        if packet.len() > self.mtu {
            log::debug!("lab: dropped a {}-byte packet over the MTU", packet.len());
            return Ok(());
        }
        // Like a NIC that blocks while it transmits: time passes until the last bit left.
        let done = self.to_server.send(self.clock, packet.to_vec());
        self.advance_to(done);
        Ok(())
    }

    fn recv(&mut self) -> Result<Option<bytes::Bytes>, LinkError> {
        Ok(self
            .to_client
            .pop_arrived(self.clock)
            .map(bytes::Bytes::from))
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Result<WaitOutcome, LinkError> {
        for _ in 0..MAX_EVENTS_PER_CALL {
            let for_client = self.to_client.next_arrival();
            if for_client.is_some_and(|t| t <= self.clock) {
                return Ok(WaitOutcome::Ready);
            }
            let for_server = self.next_server_event();
            let Some(next) = [for_client, for_server].into_iter().flatten().min() else {
                return Ok(match deadline {
                    None => WaitOutcome::Idle,
                    Some(d) => {
                        self.clock = self.clock.max(d);
                        WaitOutcome::Deadline
                    }
                });
            };
            if let Some(d) = deadline
                && next > d.max(self.clock)
            {
                self.clock = self.clock.max(d);
                return Ok(WaitOutcome::Deadline);
            }
            self.clock = self.clock.max(next);
            if for_server.is_some_and(|t| t <= self.clock) {
                self.run_server();
            }
        }
        // Work bound reached: let the caller poll (a spurious `Ready` is allowed).
        Ok(WaitOutcome::Ready)
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn describe(&self) -> String {
        "built-in lab (virtual clock)".to_owned()
    }

    fn is_virtual(&self) -> bool {
        true
    }
}

impl fmt::Debug for Lab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lab")
            .field("clock", &self.clock)
            .field("to_server_in_flight", &self.to_server.in_flight())
            .field("to_client_in_flight", &self.to_client.in_flight())
            .field("server_stats", &self.server.stats())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fetchscope_core::Randomness;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::time::Duration;
    use smoltcp::wire::{IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr};

    fn lab() -> Lab {
        Lab::new(LabConfig {
            randomness: Randomness::new(Some(1)),
            ..LabConfig::default()
        })
        .expect("lab")
    }

    /// An IPv4/UDP packet from the client to the server's port 53.
    fn udp_to_dns(payload: &[u8], ttl: u8) -> Vec<u8> {
        let src = CLIENT_ADDR;
        let dst = SERVER_ADDR;
        let udp = UdpRepr {
            src_port: 40000,
            dst_port: 53,
        };
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Udp,
            payload_len: udp.header_len() + payload.len(),
            hop_limit: ttl,
        };
        let mut buf = vec![0u8; ip.buffer_len() + ip.payload_len];
        let caps = ChecksumCapabilities::default();
        let mut packet = Ipv4Packet::new_unchecked(&mut buf[..]);
        ip.emit(&mut packet, &caps);
        let mut datagram = UdpPacket::new_unchecked(packet.payload_mut());
        udp.emit(
            &mut datagram,
            &src.into(),
            &dst.into(),
            payload.len(),
            |b| b.copy_from_slice(payload),
            &caps,
        );
        buf
    }

    /// `www.example.test A?`, id 0x1234, RD.
    const QUERY: [u8; 34] = [
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'w', b'w', b'w', 7, b'e', b'x', b'a',
        b'm', b'p', b'l', b'e', 4, b't', b'e', b's', b't', 0, 0, 1, 0, 1,
    ];

    #[test]
    fn an_idle_lab_says_so_and_deadlines_move_the_clock() {
        let mut lab = lab();
        assert_eq!(lab.now(), Instant::ZERO);
        assert_eq!(lab.wait(None).unwrap(), WaitOutcome::Idle);
        let d = Instant::from_millis(5);
        assert_eq!(lab.wait(Some(d)).unwrap(), WaitOutcome::Deadline);
        assert_eq!(lab.now(), d);
        // a deadline in the past does not turn the clock back
        assert_eq!(
            lab.wait(Some(Instant::ZERO)).unwrap(),
            WaitOutcome::Deadline
        );
        assert_eq!(lab.now(), d);
        assert_eq!(lab.recv().unwrap(), None);
    }

    #[test]
    fn a_dns_query_is_answered_one_round_trip_later_through_the_router() {
        let mut lab = lab();
        let query = udp_to_dns(&QUERY, 64);
        lab.send(&query).unwrap();
        // 62 bytes at 100 Mbit/s: 4.96 µs, rounded up to 5 µs
        assert_eq!(lab.now(), Instant::from_micros(5));
        assert_eq!(lab.wait(None).unwrap(), WaitOutcome::Ready);
        // out 5 µs + 5 ms, back 78 bytes in 7 µs (6.24 rounded up) + 5 ms
        assert_eq!(lab.now(), Instant::from_micros(10_012));
        let answer = lab.recv().unwrap().expect("an answer");
        assert_eq!(lab.recv().unwrap(), None);
        let ip = Ipv4Packet::new_checked(&answer[..]).unwrap();
        assert_eq!(ip.hop_limit(), 63);
        assert!(ip.verify_checksum());
        assert_eq!(ip.src_addr(), SERVER_ADDR);
        assert_eq!(ip.dst_addr(), CLIENT_ADDR);
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((udp.src_port(), udp.dst_port()), (53, 40000));
        assert_eq!(&udp.payload()[..2], &[0x12, 0x34]);
        assert_eq!(lab.server_stats().dns_responses, 1);
        assert_eq!(lab.wait(None).unwrap(), WaitOutcome::Idle);
    }

    #[test]
    fn back_to_back_sends_get_increasing_times_and_ttl_1_is_dropped() {
        let mut lab = lab();
        lab.send(&udp_to_dns(&QUERY, 1)).unwrap();
        let t1 = lab.now();
        lab.send(&udp_to_dns(&QUERY, 64)).unwrap();
        let t2 = lab.now();
        assert!(Instant::ZERO < t1 && t1 < t2);
        assert_eq!(
            lab.wait(Some(t2 + Duration::from_millis(50))).unwrap(),
            WaitOutcome::Ready
        );
        assert!(lab.recv().unwrap().is_some());
        assert_eq!(
            lab.wait(Some(t2 + Duration::from_millis(50))).unwrap(),
            WaitOutcome::Deadline
        );
        // only the packet with TTL 64 reached the server
        assert_eq!(lab.server_stats().dns_queries, 1);
    }

    #[test]
    fn the_lab_can_move_to_another_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<Lab>();
    }

    #[test]
    fn bad_configurations_are_errors() {
        let err = Lab::new(LabConfig {
            mtu: 100,
            ..LabConfig::default()
        })
        .unwrap_err();
        assert!(matches!(err, LabError::Config(_)), "{err}");
    }

    #[test]
    fn addresses_and_names() {
        let lab = lab();
        assert_eq!(lab.dns_server().to_string(), "10.88.0.1");
        assert_eq!(lab.client_cidr().to_string(), "10.88.1.2/24");
        assert_eq!(lab.client_gateway().to_string(), "10.88.1.1");
        let names: Vec<String> = lab.names().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names[..5], LAB_NAMES);
        assert_eq!(names[5..], ["proxy.example.test"]);
        let addrs: Vec<String> = lab.names().iter().map(|(_, a)| a.to_string()).collect();
        assert_eq!(
            addrs,
            [
                "10.88.0.1",
                "10.88.0.1",
                "10.88.0.1",
                "10.88.0.1",
                "10.88.0.3",
                "10.88.0.4"
            ]
        );
        assert_eq!(lab.proxy_addr().to_string(), "10.88.0.4");
        assert_eq!(lab.client_cidr_v6(), None);
        assert_eq!(lab.fault(), None);
        assert!(lab.ca_pem().contains("BEGIN CERTIFICATE"));
        assert_eq!(lab.mtu(), 1500);
    }
}
