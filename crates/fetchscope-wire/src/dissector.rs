//! The per-run decoder: packets in, [`Dissection`]s out, with connection state in between.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use crate::Direction;
use crate::app::{App, AppOutput};
use crate::dissection::Dissection;
use crate::dns::DnsLayer;
use crate::icmp;
use crate::ip::{self, IpPacket};
use crate::problem::{DecodeProblem, Layer, malformed};
use crate::stream::{Chunk, Reassembly};
use crate::tcp::{self, TcpFlags, TcpHeader, TcpLayer, TcpOptions, TcpSpace, TcpTrack};
use crate::tls::keylog::SecretStore;
use crate::udp;

/// At most this many TCP connections are tracked; the least recently used is forgotten.
const MAX_CONNECTIONS: usize = 64;
/// UDP ports carrying DNS-format messages (DNS, mDNS).
const DNS_PORTS: [u16; 2] = [53, 5353];
/// IP protocol numbers.
const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;

/// One end of a TCP connection.
type Endpoint = (IpAddr, u16);

/// A connection's two endpoints in a fixed order; a packet's side is 0 when it was sent
/// from the first endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ConnKey(Endpoint, Endpoint);

impl ConnKey {
    /// The key of a packet from `src` to `dst`, and the packet's side.
    fn of(src: Endpoint, dst: Endpoint) -> (Self, usize) {
        if src <= dst {
            (ConnKey(src, dst), 0)
        } else {
            (ConnKey(dst, src), 1)
        }
    }
}

/// Everything remembered about one TCP connection.
#[derive(Debug, Default)]
struct Conn {
    track: TcpTrack,
    streams: [Reassembly; 2],
    app: App,
    /// The side that opened the connection (the TCP client), once known.
    client: Option<usize>,
    last_used: u64,
}

/// Decodes the packets of one run, keeping the state a dissector needs between them:
/// relative sequence numbers, stream reassembly, TLS state and secrets.
#[derive(Debug, Default)]
pub struct Dissector {
    conns: HashMap<ConnKey, Conn>,
    tick: u64,
    secrets: SecretStore,
    /// Collect each packet's application bytes into [`Dissection::app_data`].
    keep_app_data: bool,
}

impl Dissector {
    /// A dissector that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Learns one TLS secret, as rustls's `KeyLog::log` hands it over: a label such as
    /// "CLIENT_HANDSHAKE_TRAFFIC_SECRET", the 32-byte client random and the secret.
    /// TLS 1.3 records of the connection with that client random are decrypted from then on.
    pub fn add_tls_secret(&mut self, label: &str, client_random: &[u8], secret: &[u8]) {
        self.secrets.add(label, client_random, secret);
    }

    /// Learns every line of NSS key log text (an `SSLKEYLOGFILE`, a pcapng Decryption
    /// Secrets Block); returns how many lines were learned and how many were not
    /// understood (malformed, or beyond the store's bound).
    pub fn add_key_log_text(&mut self, text: &str) -> (usize, usize) {
        self.secrets.add_text(text)
    }

    /// Learns that the TLS client already decrypted a record: it is shown from what the
    /// client found, not decrypted a second time (when it is not known in time, the
    /// dissector decrypts it itself).
    pub fn add_decrypted_record(&mut self, record: crate::DecryptedRecord) {
        self.secrets.add_decrypted(record);
    }

    /// Collects, from now on, the application bytes each packet delivers in order
    /// (cleartext HTTP, decrypted TLS application data) into [`Dissection::app_data`], for
    /// a reader of the HTTP messages (replay). Off by default: a live fetch's client has
    /// the bytes already.
    pub fn keep_app_data(&mut self, on: bool) {
        self.keep_app_data = on;
    }

    /// Every secret learned so far, as NSS key log text (for `--keylog` and the pcapng
    /// Decryption Secrets Block).
    pub fn key_log(&self) -> String {
        self.secrets.key_log()
    }

    /// Bytes currently held for reassembly over all tracked connections (segments
    /// ahead of a hole, incomplete records, messages and heads). Bounded: at most 64
    /// connections, each direction at most 256 KiB ahead of a hole plus one record and one
    /// handshake message (128 KiB).
    pub fn buffered_bytes(&self) -> usize {
        self.conns
            .values()
            .map(|c| c.streams.iter().map(Reassembly::held_bytes).sum::<usize>() + c.app.buffered())
            .sum()
    }

    /// The sequence space of the TCP connection between `ours` and `peer`, as `ours`
    /// sees it, from the packets decoded so far (`None`: none seen).
    pub fn tcp_space(&self, ours: SocketAddr, peer: SocketAddr) -> Option<TcpSpace> {
        let (key, side) = ConnKey::of((ours.ip(), ours.port()), (peer.ip(), peer.port()));
        self.conns.get(&key).map(|c| c.track.space(side))
    }

    /// Number of TCP connections currently tracked (at most 64).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Decodes one IP packet (IPv4 or IPv6, no link header) that crossed the client's
    /// device in direction `dir`, its time not known: the TCP analysis then tells a
    /// segment out of order from one sent again by whether it fills a hole it saw (see
    /// [`Dissector::dissect_at`]).
    pub fn dissect(&mut self, dir: Direction, packet: &[u8]) -> Dissection {
        self.dissect_timed(dir, packet, None)
    }

    /// As [`Dissector::dissect`], for a packet seen at `t_us` microseconds (on any clock
    /// that the run's packets share; only differences count). The TCP analysis then
    /// follows Wireshark's timing rules: a segment below the highest sequence number seen
    /// is out of order when it arrives within the connection's initial round trip (3 ms
    /// when the handshake was not seen) of the segment that carried that number, else a
    /// retransmission; a fast retransmission only within 20 ms of the duplicate ACKs.
    pub fn dissect_at(&mut self, dir: Direction, packet: &[u8], t_us: u64) -> Dissection {
        self.dissect_timed(dir, packet, Some(t_us))
    }

    fn dissect_timed(&mut self, dir: Direction, packet: &[u8], at: Option<u64>) -> Dissection {
        let mut d = Dissection::default();
        let Some(ip) = ip_layer(packet, &mut d) else {
            return d;
        };
        let intact = ip.problems.is_empty();
        match (ip.protocol, ip.layer.version) {
            (PROTO_ICMP, 4) | (PROTO_ICMPV6, 6) => icmp_layer(&ip, &mut d),
            (PROTO_UDP, _) => udp_layer(&ip, &mut d),
            (PROTO_TCP, _) => self.tcp_layer(dir, &ip, intact, at, &mut d),
            _ => {}
        }
        d
    }

    /// Decodes a received packet that never reached the stack (fault injection dropped
    /// it on its way in) without learning anything from it: the IP, ICMP, UDP (and DNS)
    /// and TCP layers, TCP numbers made relative (and windows scaled) with what the
    /// connection's earlier packets taught; no stream contents, no analysis.
    pub fn dissect_unreceived(&self, packet: &[u8]) -> Dissection {
        let mut d = Dissection::default();
        let Some(ip) = ip_layer(packet, &mut d) else {
            return d;
        };
        match (ip.protocol, ip.layer.version) {
            (PROTO_ICMP, 4) | (PROTO_ICMPV6, 6) => icmp_layer(&ip, &mut d),
            (PROTO_UDP, _) => udp_layer(&ip, &mut d),
            (PROTO_TCP, _) => {
                let Some(h) = tcp_header(&ip, &mut d) else {
                    return d;
                };
                let (key, side) =
                    ConnKey::of((ip.layer.src, h.src_port), (ip.layer.dst, h.dst_port));
                let tracked = match self.conns.get(&key) {
                    Some(c) => c.track.peek_scaled(side, &h),
                    None => TcpTrack::default().peek_scaled(side, &h),
                };
                d.tcp = Some(tcp_layer_of(&h, tracked));
            }
            _ => {}
        }
        d
    }

    fn tcp_layer(
        &mut self,
        dir: Direction,
        ip: &IpPacket<'_>,
        ip_intact: bool,
        at: Option<u64>,
        d: &mut Dissection,
    ) {
        let problems_before = d.problems.len();
        let Some(h) = tcp_header(ip, d) else {
            return;
        };
        // A segment the receiving stack would drop teaches nothing about the connection.
        let intact = ip_intact && d.problems.len() == problems_before;
        let (key, side) = ConnKey::of((ip.layer.src, h.src_port), (ip.layer.dst, h.dst_port));
        self.tick += 1;
        let tick = self.tick;
        let secrets = &self.secrets;
        let keep_app_data = self.keep_app_data;
        let conn = conn_entry(&mut self.conns, key, tick);
        if intact && conn.track.is_new_connection(side, &h) {
            *conn = Conn {
                last_used: tick,
                ..Conn::default()
            };
        }
        let tracked = if intact {
            conn.track.track(side, &h, at)
        } else {
            conn.track.peek(side, &h)
        };
        d.tcp = Some(tcp_layer_of(&h, tracked));
        if !intact {
            return;
        }
        learn_roles(conn, side, dir, &h);
        let out = feed_stream(conn, side, &h, secrets, keep_app_data);
        d.app_data = out.app_data;
        d.tls = out.tls;
        d.dns = out.dns;
        d.http = out.http;
        d.problems.extend(out.problems);
    }
}

/// The IP layer of `packet` into `d` (with its problems); `None` when nothing more can
/// be decoded (malformed, or a fragment).
fn ip_layer<'a>(packet: &'a [u8], d: &mut Dissection) -> Option<IpPacket<'a>> {
    let ip = match ip::parse(packet) {
        Ok(ip) => ip,
        Err((layer, e)) => {
            d.problems.push(malformed(layer, &e));
            return None;
        }
    };
    let ip_name = if ip.layer.version == 4 {
        Layer::Ipv4
    } else {
        Layer::Ipv6
    };
    d.problems
        .extend(ip.problems.iter().map(|e| malformed(ip_name, e)));
    d.ip = Some(ip.layer.clone());
    ip.is_whole().then_some(ip)
}

/// The TCP header `ip` carries, its problems into `d`.
fn tcp_header<'a>(ip: &IpPacket<'a>, d: &mut Dissection) -> Option<TcpHeader<'a>> {
    let mut problems = Vec::new();
    match tcp::parse(ip.payload, ip.src(), ip.dst(), &mut problems) {
        Ok(h) => {
            d.problems
                .extend(problems.iter().map(|e| malformed(Layer::Tcp, e)));
            Some(h)
        }
        Err(e) => {
            d.problems.push(malformed(Layer::Tcp, &e));
            None
        }
    }
}

/// The TCP layer of header `h`, with what tracking said about it.
fn tcp_layer_of(h: &TcpHeader<'_>, tracked: tcp::Tracked) -> TcpLayer {
    TcpLayer {
        src_port: h.src_port,
        dst_port: h.dst_port,
        flags: h.flags,
        seq: tracked.seq,
        ack: tracked.ack,
        seq_raw: h.seq,
        ack_raw: h.ack,
        win: h.win,
        win_scaled: tracked.win_scaled,
        payload_len: h.payload.len(),
        options: Some(TcpOptions {
            sack: tracked.sack,
            ..h.options.clone()
        })
        .filter(|o| !o.is_empty()),
        analysis: tracked.analysis,
    }
}

/// The connection for `key`, created if new; the least recently used one is forgotten
/// when the table is full.
fn conn_entry(conns: &mut HashMap<ConnKey, Conn>, key: ConnKey, tick: u64) -> &mut Conn {
    if !conns.contains_key(&key) && conns.len() >= MAX_CONNECTIONS {
        let oldest = conns
            .iter()
            .min_by_key(|(_, c)| c.last_used)
            .map(|(k, _)| *k);
        if let Some(oldest) = oldest {
            conns.remove(&oldest);
        }
    }
    let conn = conns.entry(key).or_default();
    conn.last_used = tick;
    conn
}

/// Learns which side is the TCP client: the SYN sender, else the device's own side.
fn learn_roles(conn: &mut Conn, side: usize, dir: Direction, h: &TcpHeader<'_>) {
    let other = 1 - side.min(1);
    if h.flags.contains(TcpFlags::SYN) {
        conn.client = Some(if h.flags.contains(TcpFlags::ACK) {
            other
        } else {
            side
        });
        if let Some(stream) = conn.streams.get_mut(side) {
            stream.start_at(h.seq.wrapping_add(1));
        }
    } else if conn.client.is_none() {
        conn.client = Some(if dir == Direction::Tx { side } else { other });
    }
}

/// Reassembles the segment's payload and feeds the in-order bytes to the connection's
/// application decoder.
fn feed_stream(
    conn: &mut Conn,
    side: usize,
    h: &TcpHeader<'_>,
    secrets: &SecretStore,
    keep_app_data: bool,
) -> AppOutput {
    let mut out = AppOutput {
        keep_app_data,
        ..AppOutput::default()
    };
    if h.payload.is_empty() || h.flags.contains(TcpFlags::RST) {
        return out;
    }
    let seq = h
        .seq
        .wrapping_add(u32::from(h.flags.contains(TcpFlags::SYN)));
    let ports = (h.src_port, h.dst_port);
    let from_start = conn.track.syn_seen(side);
    let client = conn.client;
    let Conn { streams, app, .. } = conn;
    let Some(stream) = streams.get_mut(side) else {
        return out;
    };
    stream.push(seq, h.payload, &mut |chunk| match chunk {
        Chunk::Data(bytes) => {
            if matches!(app, App::Undecided) {
                *app = App::choose(ports, bytes, from_start, client, side);
            }
            app.data(side, bytes, secrets, &mut out);
        }
        Chunk::Gap(missing) => {
            out.problems.push(DecodeProblem::StreamGap { missing });
            app.gap(side);
        }
    });
    out
}

fn icmp_layer(ip: &IpPacket<'_>, d: &mut Dissection) {
    let mut problems = Vec::new();
    let (name, layer) = match (ip.src(), ip.dst()) {
        (IpAddr::V6(src), IpAddr::V6(dst)) => (
            Layer::Icmpv6,
            icmp::parse_v6(ip.payload, src, dst, &mut problems),
        ),
        _ => (Layer::Icmp, icmp::parse_v4(ip.payload, &mut problems)),
    };
    d.problems
        .extend(problems.iter().map(|e| malformed(name, e)));
    match layer {
        Ok(l) => d.icmp = Some(l),
        Err(e) => d.problems.push(malformed(name, &e)),
    }
}

fn udp_layer(ip: &IpPacket<'_>, d: &mut Dissection) {
    let mut problems = Vec::new();
    let parsed = udp::parse(ip.payload, ip.src(), ip.dst(), &mut problems);
    d.problems
        .extend(problems.iter().map(|e| malformed(Layer::Udp, e)));
    let (layer, payload) = match parsed {
        Ok(p) => p,
        Err(e) => {
            d.problems.push(malformed(Layer::Udp, &e));
            return;
        }
    };
    d.udp = Some(layer);
    if DNS_PORTS.contains(&layer.src_port) || DNS_PORTS.contains(&layer.dst_port) {
        match DnsLayer::decode(payload) {
            Ok(dns) => d.dns = Some(dns),
            Err(e) => d.problems.push(malformed(Layer::Dns, &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dissector_can_move_between_threads() {
        fn is_send<T: Send + Sync>() {}
        is_send::<Dissector>();
        is_send::<Dissection>();
    }

    #[test]
    fn connection_key_is_symmetric() {
        let a = (IpAddr::from([10, 88, 1, 2]), 50123);
        let b = (IpAddr::from([10, 88, 0, 1]), 443);
        let (k1, s1) = ConnKey::of(a, b);
        let (k2, s2) = ConnKey::of(b, a);
        assert_eq!(k1, k2);
        assert_ne!(s1, s2);
    }
}
