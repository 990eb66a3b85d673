//! The kernel's sockets for the core's stub resolver ([`DnsLookup`]): one UDP socket per
//! address family of the servers (bound to the same port where the kernel allows), and a
//! TCP connection per question the lookup asks again over TCP.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use fetchscope_core::dns::{
    DnsCommand, DnsLookup, DnsStream, LookupSpec, StreamCondition, send_error, stream_open_error,
};
use fetchscope_core::{FailureClass, FetchError, Instant, Phase};
use rand::Rng;

/// Most datagrams read from one UDP socket per step.
const DATAGRAMS_PER_STEP: usize = 16;
/// Most bytes read from a DNS-over-TCP connection per step: a whole message and its length.
const STREAM_READ_MAX: usize = 65535 + 2;

/// The lookup in progress and the kernel sockets it uses.
pub(crate) struct KernelDns {
    /// The sans-IO lookup.
    pub lookup: DnsLookup,
    udp: Vec<UdpSocket>,
    streams: BTreeMap<DnsStream, TcpStream>,
}

fn setup(message: String) -> FetchError {
    FetchError::new(FailureClass::Setup, Phase::Resolve, "setup", message)
}

/// UDP sockets for `servers`: one per address family they use, non-blocking, the second
/// bound to the first one's port when that is free (so every query goes from one port).
fn open_udp(servers: &[IpAddr]) -> Result<Vec<UdpSocket>, FetchError> {
    let mut sockets: Vec<UdpSocket> = Vec::new();
    for v4 in [true, false] {
        if !servers.iter().any(|s| s.is_ipv4() == v4) {
            continue;
        }
        let ip: IpAddr = if v4 {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        let port = sockets
            .first()
            .and_then(|s| s.local_addr().ok())
            .map(|a| a.port());
        let bound = match port {
            Some(p) => UdpSocket::bind((ip, p)).or_else(|_| UdpSocket::bind((ip, 0))),
            None => UdpSocket::bind((ip, 0)),
        };
        let sock = bound
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| setup(format!("could not open a UDP socket for DNS: {e}")))?;
        sockets.push(sock);
    }
    Ok(sockets)
}

impl KernelDns {
    /// Opens the sockets and starts the lookup `spec` describes (its servers decide the
    /// sockets; its port is the kernel's).
    pub(crate) fn start(
        now: Instant,
        mut spec: LookupSpec<'_>,
        rng: &mut impl Rng,
    ) -> Result<KernelDns, FetchError> {
        let udp = open_udp(&spec.servers)?;
        spec.local_port = udp
            .first()
            .and_then(|s| s.local_addr().ok())
            .map(|a| a.port());
        let lookup = DnsLookup::start(now, spec, rng)?;
        Ok(KernelDns {
            lookup,
            udp,
            streams: BTreeMap::new(),
        })
    }

    /// The local ports of the UDP sockets (for the capture filter).
    pub(crate) fn udp_ports(&self) -> Vec<u16> {
        self.udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .map(|a| a.port())
            .collect()
    }

    /// The sockets to wait on.
    pub(crate) fn fds(&self) -> Vec<BorrowedFd<'_>> {
        self.udp
            .iter()
            .map(|s| s.as_fd())
            .chain(self.streams.values().map(|s| s.as_fd()))
            .collect()
    }

    /// Starts looking `host` up (for port `port`) at `servers`, asking for the address
    /// families this host has, as getaddrinfo does.
    pub(crate) fn start_for(
        now: Instant,
        host: &str,
        port: u16,
        servers: Vec<IpAddr>,
        rng: &mut impl Rng,
    ) -> Result<KernelDns, FetchError> {
        let (v4, v6) = host_families();
        let qtypes = fetchscope_core::dns::question_types(v4, v6);
        let spec = LookupSpec {
            host,
            port,
            qtypes: &qtypes,
            servers,
            nxdomain_hint: None,
            // The kernel twin always runs on a real network.
            conditions: Default::default(),
            local_port: None,
        };
        KernelDns::start(now, spec, rng)
    }

    /// Carries out what the lookup asked; returns the TCP connections it opened (local,
    /// remote), for the capture. A connection is opened within `connect_limit`.
    pub(crate) fn run_commands(
        &mut self,
        connect_limit: Duration,
    ) -> Result<Vec<(SocketAddr, SocketAddr)>, FetchError> {
        let mut opened = Vec::new();
        while let Some(cmd) = self.lookup.poll_command() {
            match cmd {
                DnsCommand::SendDatagram { to, bytes } => {
                    let sock = self
                        .udp
                        .iter()
                        .find(|s| s.local_addr().is_ok_and(|l| l.is_ipv4() == to.is_ipv4()))
                        .ok_or_else(|| {
                            setup(format!("no socket for the DNS server {}", to.ip()))
                        })?;
                    let from = sock
                        .local_addr()
                        .ok()
                        .map(|l| l.ip())
                        .filter(|ip| !ip.is_unspecified());
                    sock.send_to(&bytes, to)
                        .map_err(|e| send_error(to, from, e))?;
                }
                DnsCommand::OpenStream { stream, to, .. } => {
                    let limit = connect_limit.max(Duration::from_millis(1));
                    let tcp = TcpStream::connect_timeout(&to, limit)
                        .and_then(|s| s.set_nodelay(true).map(|()| s))
                        .and_then(|s| s.set_nonblocking(true).map(|()| s))
                        .map_err(|e| stream_open_error(to, e))?;
                    if let Ok(local) = tcp.local_addr() {
                        opened.push((local, to));
                    }
                    self.streams.insert(stream, tcp);
                }
                DnsCommand::Write { stream, bytes } => {
                    if let Some(s) = self.streams.get_mut(&stream) {
                        // A few dozen bytes on a fresh connection: the kernel takes them.
                        let _ = s.write_all(&bytes);
                    }
                }
                DnsCommand::CloseStream { stream } => {
                    if let Some(s) = self.streams.get(&stream) {
                        let _ = s.shutdown(std::net::Shutdown::Write);
                    }
                }
                DnsCommand::CloseDatagrams => self.udp.clear(),
            }
        }
        Ok(opened)
    }

    /// Hands the lookup what arrived on its sockets, and wakes it for its timers.
    pub(crate) fn read(&mut self, now: Instant, rng: &mut impl Rng) -> Result<(), FetchError> {
        let mut datagrams = Vec::new();
        let mut buf = [0u8; 4096];
        for s in &self.udp {
            for _ in 0..DATAGRAMS_PER_STEP {
                match s.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        datagrams.push((from, buf.get(..n).unwrap_or_default().to_vec()))
                    }
                    // An ICMP port unreachable on an unconnected socket: retry on
                    // schedule, as a stub resolver does.
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::WouldBlock | ErrorKind::ConnectionRefused
                        ) =>
                    {
                        break;
                    }
                    Err(e) => {
                        return Err(setup(format!("reading the DNS answer failed: {e}")));
                    }
                }
            }
        }
        self.lookup.handle_datagrams(now, rng, &datagrams)?;
        let mut reads = Vec::new();
        for stream in self.lookup.streams().collect::<Vec<_>>() {
            let Some(s) = self.streams.get_mut(&stream) else {
                continue;
            };
            let mut data = Vec::new();
            let mut condition = StreamCondition::Open;
            let mut chunk = [0u8; 2048];
            while data.len() < STREAM_READ_MAX {
                match s.read(&mut chunk) {
                    Ok(0) => {
                        condition = StreamCondition::Ended;
                        break;
                    }
                    Ok(n) => data.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        condition = StreamCondition::Ended;
                        break;
                    }
                }
            }
            // The connection was made before the question went out: it can take it.
            reads.push((stream, true, data, condition));
        }
        self.lookup.handle_streams(now, rng, &reads)?;
        self.lookup.handle_timeout(now, rng)
    }
}

/// Which address families this host has, as getaddrinfo's `AI_ADDRCONFIG` judges them:
/// IPv4 when the main routing table has a route (every configured IPv4 address adds
/// one), IPv6 when an interface other than loopback has an address that is not
/// link-local. The lookup asks A, AAAA or both accordingly.
pub(crate) fn host_families() -> (bool, bool) {
    let v4 = std::fs::read_to_string("/proc/net/route")
        .map(|t| has_ipv4_route(&t))
        .unwrap_or(true);
    let v6 = std::fs::read_to_string("/proc/net/if_inet6")
        .map(|t| has_ipv6_address(&t))
        .unwrap_or(false);
    (v4, v6)
}

/// True when the `/proc/net/route` text `table` lists a route.
fn has_ipv4_route(table: &str) -> bool {
    table.lines().skip(1).any(|l| !l.trim().is_empty())
}

/// True when the `/proc/net/if_inet6` text `list` has an address outside loopback with a
/// scope other than link or host.
fn has_ipv6_address(list: &str) -> bool {
    list.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        match (f.get(3), f.get(5)) {
            (Some(scope), Some(name)) => *name != "lo" && !matches!(*scope, "20" | "10"),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_follow_the_kernel_tables() {
        let route = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\nveth0\t0000580A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert!(has_ipv4_route(route));
        assert!(!has_ipv4_route("Iface\tDestination\n"));
        let link_local_only = "fe80000000000000000000000000000201 02 40 20 80 veth0\n00000000000000000000000000000001 01 80 10 80 lo\n";
        assert!(!has_ipv6_address(link_local_only));
        let ula = "fd000088000100000000000000000002 02 40 00 80 veth0\n";
        assert!(has_ipv6_address(&format!("{link_local_only}{ula}")));
        assert!(!has_ipv6_address("garbage\n"));
    }

    #[test]
    fn udp_sockets_share_one_port_per_family() {
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let socks = open_udp(&[v4]).unwrap();
        assert_eq!(socks.len(), 1);
        assert!(open_udp(&[]).unwrap().is_empty());
    }
}
