//! The DNS stub over smoltcp: the lookup itself is the core's sans-IO
//! [`DnsLookup`] (A and AAAA, retries across servers, TCP after TC or lost fragments,
//! alias chains); this module gives it one smoltcp UDP socket and a TCP socket per
//! question asked again over TCP, and carries out its commands.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use fetchscope_core::dns::{
    DnsCommand, DnsLookup, DnsStream, LookupSpec, StreamCondition, question_types, send_error,
    stream_open_error,
};
use fetchscope_core::error::{FailureClass, FetchError};
use fetchscope_core::event::{EventKind, Phase};
use fetchscope_core::session::SessionDriver;
use fetchscope_core::session::SessionInput;
use fetchscope_net::Link;
use fetchscope_wire::Dissection;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::IpAddress;

use super::{Fetch, at, stack_time};

/// Most bytes read from a DNS-over-TCP socket per step: a whole message and its length.
const DNS_TCP_READ_MAX: usize = 65535 + 2;

/// The lookup in progress and the sockets it uses.
pub(super) struct DnsSockets {
    /// The sans-IO lookup.
    pub lookup: DnsLookup,
    udp: SocketHandle,
    streams: BTreeMap<DnsStream, SocketHandle>,
}

impl DnsSockets {
    /// When the lookup wants to run again by itself (a UDP retransmission).
    pub(super) fn wake_at(&self) -> Option<smoltcp::time::Instant> {
        self.lookup.poll_timeout().map(stack_time)
    }
}

impl<L: Link> Fetch<L> {
    /// Starts looking `host` up (for a connection to `port`).
    pub(super) fn start_dns(&mut self, host: &str, port: u16) -> Result<(), FetchError> {
        let has = |v6: bool| {
            self.cfg.addrs.iter().any(|a| {
                a.address().version()
                    == if v6 {
                        smoltcp::wire::IpVersion::Ipv6
                    } else {
                        smoltcp::wire::IpVersion::Ipv4
                    }
            })
        };
        let qtypes = question_types(has(false), has(true));
        let now = at(self.now());
        let lookup = DnsLookup::start(
            now,
            LookupSpec {
                host,
                port,
                qtypes: &qtypes,
                servers: self.cfg.spec.dns_servers.clone(),
                nxdomain_hint: self.cfg.nxdomain_hint.clone(),
                conditions: self.cfg.conditions.clone(),
                local_port: None,
            },
            &mut self.rng,
        )?;
        let local_port = lookup.local_port();
        let rx = udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 8 * 1024]);
        let tx = udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 2 * 1024]);
        let mut sock = udp::Socket::new(rx, tx);
        sock.bind(local_port).map_err(|e| {
            FetchError::new(
                FailureClass::Setup,
                Phase::Resolve,
                "setup",
                format!("could not bind the DNS socket to port {local_port}: {e}"),
            )
        })?;
        let udp = self.sockets.add(sock);
        self.dns = Some(DnsSockets {
            lookup,
            udp,
            streams: BTreeMap::new(),
        });
        self.run_dns_commands()
    }

    /// Carries out what the lookup asked, then reports its events, in order; once it
    /// has the address, connects.
    fn run_dns_commands(&mut self) -> Result<(), FetchError> {
        let local = self.cfg.addrs.first().copied();
        let Some(d) = self.dns.as_mut() else {
            return Ok(());
        };
        while let Some(cmd) = d.lookup.poll_command() {
            match cmd {
                DnsCommand::SendDatagram { to, bytes } => {
                    let sock = self.sockets.get_mut::<udp::Socket>(d.udp);
                    sock.send_slice(&bytes, (IpAddress::from(to.ip()), to.port()))
                        .map_err(|e| send_error(to, local.map(|l| l.address().into()), e))?;
                }
                DnsCommand::OpenStream {
                    stream,
                    to,
                    local_port,
                } => {
                    let mut sock = tcp::Socket::new(
                        tcp::SocketBuffer::new(vec![0; 8 * 1024]),
                        tcp::SocketBuffer::new(vec![0; 2 * 1024]),
                    );
                    sock.set_nagle_enabled(false);
                    sock.connect(
                        self.iface.context(),
                        (IpAddress::from(to.ip()), to.port()),
                        local_port,
                    )
                    .map_err(|e| stream_open_error(to, e))?;
                    d.streams.insert(stream, self.sockets.add(sock));
                }
                DnsCommand::Write { stream, bytes } => {
                    if let Some(&h) = d.streams.get(&stream) {
                        let _ = self.sockets.get_mut::<tcp::Socket>(h).send_slice(&bytes);
                    }
                }
                DnsCommand::CloseStream { stream } => {
                    if let Some(&h) = d.streams.get(&stream) {
                        self.sockets.get_mut::<tcp::Socket>(h).close();
                    }
                }
                DnsCommand::CloseDatagrams => {
                    self.sockets.remove(d.udp);
                }
            }
        }
        self.report_dns_events();
        if let Some(addr) = self.dns.as_ref().and_then(|d| d.lookup.outcome()) {
            self.dns = None;
            return self.tell(SessionInput::Resolved(addr));
        }
        Ok(())
    }

    /// Reports the lookup's events, in order.
    fn report_dns_events(&mut self) {
        while let Some(ev) = self.dns.as_mut().and_then(|d| d.lookup.poll_event()) {
            self.emit(EventKind::Dns(ev));
        }
    }

    /// An ICMP error whose quoted datagram (`quoted`, as endpoints) may be our DNS query:
    /// the lookup decides (the next server, or a failure).
    pub(super) fn dns_unreachable(
        &mut self,
        quoted: super::connection::QuotedTcp,
        router: IpAddr,
        what: &str,
    ) -> Option<FetchError> {
        let local = IpAddr::from(self.cfg.addrs.first().map(|a| a.address())?);
        let now = at(self.now());
        let d = self.dns.as_mut()?;
        d.lookup
            .handle_unreachable(now, local, (quoted.src, quoted.dst), router, what)
    }

    /// Hands the lookup what arrived on its sockets, and wakes it for its timers.
    pub(super) fn drive_dns(&mut self) -> Result<(), FetchError> {
        let now = at(self.now());
        let Some(d) = self.dns.as_mut() else {
            return Ok(());
        };
        // Everything that arrived on the UDP socket (bounded by its buffer).
        let mut datagrams = Vec::new();
        let sock = self.sockets.get_mut::<udp::Socket>(d.udp);
        while let Ok((data, meta)) = sock.recv() {
            let from = SocketAddr::new(IpAddr::from(meta.endpoint.addr), meta.endpoint.port);
            datagrams.push((from, data.to_vec()));
        }
        if let Err(e) = d.lookup.handle_datagrams(now, &mut self.rng, &datagrams) {
            self.report_dns_events();
            return Err(e);
        }
        // The TCP connections of questions asked again over TCP.
        let mut reads = Vec::new();
        for stream in d.lookup.streams().collect::<Vec<_>>() {
            let Some(&h) = d.streams.get(&stream) else {
                continue;
            };
            let sock = self.sockets.get_mut::<tcp::Socket>(h);
            let writable = sock.may_send();
            let mut data = Vec::new();
            let mut buf = [0u8; 2048];
            while sock.can_recv() && data.len() < DNS_TCP_READ_MAX {
                match sock.recv_slice(&mut buf) {
                    Ok(n) if n > 0 => data.extend_from_slice(buf.get(..n).unwrap_or_default()),
                    _ => break,
                }
            }
            let connecting = matches!(sock.state(), tcp::State::SynSent | tcp::State::SynReceived);
            let condition = if connecting {
                StreamCondition::Connecting
            } else if !sock.is_active() || (!sock.may_recv() && !sock.can_recv()) {
                StreamCondition::Ended
            } else {
                StreamCondition::Open
            };
            reads.push((stream, writable, data, condition));
        }
        let judged = d
            .lookup
            .handle_streams(now, &mut self.rng, &reads)
            .and_then(|()| d.lookup.handle_timeout(now, &mut self.rng));
        if let Err(e) = judged {
            // What arrived before the failure is still shown.
            self.report_dns_events();
            return Err(e);
        }
        self.run_dns_commands()
    }

    /// A received packet: an IP fragment of a UDP datagram is counted by the lookup
    /// (smoltcp reassembles what it can; the count decides the TCP retry).
    pub(super) fn account_dns_fragment(&mut self, d: &Dissection) {
        let Some(ip) = d.ip.as_ref().filter(|ip| ip.fragment.is_some()) else {
            return;
        };
        if ip.protocol == "udp"
            && let Some(lookup) = self.dns.as_mut()
        {
            lookup.lookup.handle_fragment(ip.src);
        }
    }
}
