//! Shared test helpers: a real in-memory rustls exchange, and IPv4/TCP packets built with
//! smoltcp's emitters.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr,
    TcpSeqNumber,
};

use fetchscope_wire::Direction;

/// Which party sent some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Client,
    Server,
}

/// A key log entry as rustls's `KeyLog::log` hands it over.
pub type Secret = (String, Vec<u8>, Vec<u8>);

#[derive(Debug, Default)]
struct CaptureKeyLog(Mutex<Vec<Secret>>);

impl rustls::KeyLog for CaptureKeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        if let Ok(mut v) = self.0.lock() {
            v.push((label.to_string(), client_random.to_vec(), secret.to_vec()));
        }
    }
}

/// A finished TLS exchange: who sent which bytes, in the order they were sent.
#[derive(Debug, Default)]
pub struct Exchange {
    pub flights: Vec<(Party, Vec<u8>)>,
    pub secrets: Vec<Secret>,
    pub response_body: Vec<u8>,
}

/// Options of a TLS exchange.
#[derive(Clone)]
pub struct Options {
    pub client_provider: CryptoProvider,
    pub server_provider: CryptoProvider,
    pub tls12_only: bool,
    pub key_update: bool,
    pub body_len: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            client_provider: ring::default_provider(),
            server_provider: ring::default_provider(),
            tls12_only: false,
            key_update: false,
            body_len: 20,
        }
    }
}

impl Options {
    /// Both sides restricted to one TLS 1.3 suite.
    pub fn suite(suite: rustls::SupportedCipherSuite) -> Self {
        let mut p = ring::default_provider();
        p.cipher_suites = vec![suite];
        Options {
            client_provider: p.clone(),
            server_provider: p,
            ..Options::default()
        }
    }
}

static TLS12_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];

fn versions(opts: &Options) -> &'static [&'static rustls::SupportedProtocolVersion] {
    if opts.tls12_only {
        &TLS12_ONLY
    } else {
        rustls::DEFAULT_VERSIONS
    }
}

/// Runs a real handshake between an in-memory rustls client and server, a
/// `GET / HTTP/1.1` request, a response and close_notify both ways.
pub fn tls_exchange(opts: Options) -> Exchange {
    let cert = rcgen::generate_simple_self_signed(vec!["www.example.test".to_string()])
        .expect("certificate");
    let cert_der: CertificateDer<'static> = cert.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));

    let mut roots = RootCertStore::empty();
    roots.add(cert_der.clone()).expect("root");
    let log = Arc::new(CaptureKeyLog::default());
    let mut client_config =
        ClientConfig::builder_with_provider(Arc::new(opts.client_provider.clone()))
            .with_protocol_versions(versions(&opts))
            .expect("client versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    client_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    client_config.key_log = log.clone();
    let mut server_config =
        ServerConfig::builder_with_provider(Arc::new(opts.server_provider.clone()))
            .with_protocol_versions(versions(&opts))
            .expect("server versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert_der], key)
            .expect("server cert");
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];

    let name = ServerName::try_from("www.example.test").expect("name");
    let mut client = ClientConnection::new(Arc::new(client_config), name).expect("client");
    let mut server = ServerConnection::new(Arc::new(server_config)).expect("server");
    let mut ex = Exchange::default();

    let request = b"GET / HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: fetchscope-test\r\nAccept: */*\r\nConnection: close\r\n\r\n";
    client.writer().write_all(request).expect("request queued");
    let body: Vec<u8> = (0..opts.body_len).map(|i| b'a' + (i % 26) as u8).collect();
    let mut sent_head = false;
    let mut body_sent = 0;
    let mut expected_len = usize::MAX;
    let mut got_request = Vec::new();
    let mut got_response = Vec::new();

    for _ in 0..(20 + opts.body_len / 1024) {
        let c = flight(&mut client);
        if !c.is_empty() {
            feed(&mut server, &c, &mut got_request);
            ex.flights.push((Party::Client, c));
        }
        drain(&mut server.reader(), &mut got_request);
        if !sent_head && got_request.windows(4).any(|w| w == b"\r\n\r\n") {
            if opts.key_update {
                server.refresh_traffic_keys().expect("key update");
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            server.writer().write_all(head.as_bytes()).expect("head");
            expected_len = head.len() + body.len();
            sent_head = true;
        }
        if sent_head && body_sent < body.len() {
            body_sent += server.writer().write(&body[body_sent..]).expect("body");
        }
        let s = flight(&mut server);
        if !s.is_empty() {
            feed(&mut client, &s, &mut got_response);
            ex.flights.push((Party::Server, s));
        }
        drain(&mut client.reader(), &mut got_response);
        if got_response.len() >= expected_len {
            break;
        }
    }
    assert!(
        got_request.starts_with(b"GET / HTTP/1.1"),
        "request delivered"
    );
    assert!(got_response.ends_with(&body), "response delivered");

    client.send_close_notify();
    let c = flight(&mut client);
    feed(&mut server, &c, &mut got_request);
    ex.flights.push((Party::Client, c));
    server.send_close_notify();
    let s = flight(&mut server);
    feed(&mut client, &s, &mut got_response);
    ex.flights.push((Party::Server, s));

    ex.response_body = got_response;
    ex.secrets = log.0.lock().expect("log").clone();
    ex
}

fn flight<C: std::ops::DerefMut<Target = rustls::ConnectionCommon<D>>, D>(conn: &mut C) -> Vec<u8> {
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("write_tls");
    }
    out
}

fn feed<C: std::ops::DerefMut<Target = rustls::ConnectionCommon<D>>, D>(
    conn: &mut C,
    mut bytes: &[u8],
    plaintext: &mut Vec<u8>,
) {
    while !bytes.is_empty() {
        conn.read_tls(&mut bytes).expect("read_tls");
        conn.process_new_packets().expect("process");
        drain(&mut conn.reader(), plaintext);
    }
}

fn drain(reader: &mut rustls::Reader<'_>, into: &mut Vec<u8>) {
    let mut buf = [0u8; 4096];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
}

/// The endpoints of the test connection.
pub const CLIENT: (Ipv4Address, u16) = (Ipv4Address::new(10, 88, 1, 2), 50123);
pub const SERVER: (Ipv4Address, u16) = (Ipv4Address::new(10, 88, 0, 1), 443);
pub const CLIENT_ISN: u32 = 2_714_066_832;
pub const SERVER_ISN: u32 = 4_294_967_000; // wraps around zero during the exchange

/// Builds the IPv4/TCP packets of one connection as they cross the client's device.
#[derive(Debug)]
pub struct TcpBuilder {
    pub client_next: u32,
    pub server_next: u32,
    pub ident: u16,
}

impl Default for TcpBuilder {
    fn default() -> Self {
        TcpBuilder {
            client_next: CLIENT_ISN,
            server_next: SERVER_ISN,
            ident: 0,
        }
    }
}

impl TcpBuilder {
    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&mut self) -> Vec<(Direction, Vec<u8>)> {
        let syn = self.packet(Party::Client, TcpControl::Syn, None, &[], |r| {
            r.max_seg_size = Some(1460);
            r.window_scale = Some(0);
            r.sack_permitted = true;
        });
        self.client_next = self.client_next.wrapping_add(1);
        let ack = self.client_next;
        let synack = self.packet(Party::Server, TcpControl::Syn, Some(ack), &[], |r| {
            r.max_seg_size = Some(1460);
            r.window_scale = Some(7);
            r.sack_permitted = true;
            r.window_len = 64240;
        });
        self.server_next = self.server_next.wrapping_add(1);
        let ack = self.packet(
            Party::Client,
            TcpControl::None,
            Some(self.server_next),
            &[],
            |_| {},
        );
        vec![syn, synack, ack]
    }

    /// Data from `party`, cut into segments whose sizes cycle through `sizes`.
    pub fn data(
        &mut self,
        party: Party,
        bytes: &[u8],
        sizes: &[usize],
    ) -> Vec<(Direction, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rest = bytes;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len()).max(1);
            i += 1;
            let (seg, tail) = rest.split_at(n);
            out.push(self.segment(party, seg));
            rest = tail;
        }
        out
    }

    /// One data segment with PSH, ACK.
    pub fn segment(&mut self, party: Party, seg: &[u8]) -> (Direction, Vec<u8>) {
        let ack = match party {
            Party::Client => self.server_next,
            Party::Server => self.client_next,
        };
        let p = self.packet(party, TcpControl::Psh, Some(ack), seg, |_| {});
        let len = seg.len() as u32;
        match party {
            Party::Client => self.client_next = self.client_next.wrapping_add(len),
            Party::Server => self.server_next = self.server_next.wrapping_add(len),
        }
        p
    }

    /// A pure ACK from `party`.
    pub fn ack(&mut self, party: Party) -> (Direction, Vec<u8>) {
        let ack = match party {
            Party::Client => self.server_next,
            Party::Server => self.client_next,
        };
        self.packet(party, TcpControl::None, Some(ack), &[], |_| {})
    }

    /// FIN from `party`.
    pub fn fin(&mut self, party: Party) -> (Direction, Vec<u8>) {
        let ack = match party {
            Party::Client => self.server_next,
            Party::Server => self.client_next,
        };
        let p = self.packet(party, TcpControl::Fin, Some(ack), &[], |_| {});
        match party {
            Party::Client => self.client_next = self.client_next.wrapping_add(1),
            Party::Server => self.server_next = self.server_next.wrapping_add(1),
        }
        p
    }

    fn packet(
        &mut self,
        party: Party,
        control: TcpControl,
        ack: Option<u32>,
        payload: &[u8],
        tweak: impl FnOnce(&mut TcpRepr<'_>),
    ) -> (Direction, Vec<u8>) {
        let (src, dst, seq, dir) = match party {
            Party::Client => (CLIENT, SERVER, self.client_next, Direction::Tx),
            Party::Server => (SERVER, CLIENT, self.server_next, Direction::Rx),
        };
        let mut tcp = TcpRepr {
            src_port: src.1,
            dst_port: dst.1,
            control,
            seq_number: TcpSeqNumber(seq as i32),
            ack_number: ack.map(|a| TcpSeqNumber(a as i32)),
            window_len: 65535,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        tweak(&mut tcp);
        self.ident = self.ident.wrapping_add(1);
        (dir, ipv4_tcp(src.0, dst.0, &tcp, self.ident))
    }
}

/// An IPv4 packet carrying `tcp`, with correct checksums.
pub fn ipv4_tcp(src: Ipv4Address, dst: Ipv4Address, tcp: &TcpRepr<'_>, ident: u16) -> Vec<u8> {
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let mut buf = vec![0u8; ip.buffer_len() + tcp.buffer_len()];
    let caps = ChecksumCapabilities::default();
    let mut packet = Ipv4Packet::new_unchecked(&mut buf);
    ip.emit(&mut packet, &caps);
    packet.set_ident(ident);
    packet.set_dont_frag(true);
    packet.fill_checksum();
    tcp.emit(
        &mut TcpPacket::new_unchecked(packet.payload_mut()),
        &IpAddress::Ipv4(src),
        &IpAddress::Ipv4(dst),
        &caps,
    );
    buf
}

/// Recomputes the IPv4 header checksum and the TCP/UDP checksum of a (mutated) packet,
/// when its headers are well-formed enough; otherwise leaves it alone.
pub fn fix_checksums(buf: &mut [u8]) {
    let Ok(mut ip) = Ipv4Packet::new_checked(&mut *buf) else {
        return;
    };
    ip.fill_checksum();
    let (src, dst) = (
        IpAddress::Ipv4(ip.src_addr()),
        IpAddress::Ipv4(ip.dst_addr()),
    );
    let proto = ip.next_header();
    let payload = ip.payload_mut();
    match proto {
        IpProtocol::Tcp => {
            if let Ok(mut tcp) = TcpPacket::new_checked(payload) {
                tcp.fill_checksum(&src, &dst);
            }
        }
        IpProtocol::Udp => {
            if let Ok(mut udp) = smoltcp::wire::UdpPacket::new_checked(payload) {
                udp.fill_checksum(&src, &dst);
            }
        }
        _ => {}
    }
}

/// The packets of a whole fetch: handshake, the exchange's flights cut into segments
/// (sizes cycling through `sizes`), ACKs after each flight, FIN teardown.
pub fn fetch_packets(ex: &Exchange, sizes: &[usize]) -> Vec<(Direction, Vec<u8>)> {
    let mut b = TcpBuilder::default();
    let mut out = b.handshake();
    for (party, bytes) in &ex.flights {
        out.extend(b.data(*party, bytes, sizes));
        let other = match party {
            Party::Client => Party::Server,
            Party::Server => Party::Client,
        };
        out.push(b.ack(other));
    }
    out.push(b.fin(Party::Client));
    out.push(b.fin(Party::Server));
    out.push(b.ack(Party::Client));
    out
}

/// Counts the TLS records in the bytes one party sent.
pub fn count_records(ex: &Exchange, party: Party) -> usize {
    let stream: Vec<u8> = ex
        .flights
        .iter()
        .filter(|(p, _)| *p == party)
        .flat_map(|(_, b)| b.iter().copied())
        .collect();
    let mut n = 0;
    let mut at = 0;
    while at + 5 <= stream.len() {
        let len = u16::from_be_bytes([stream[at + 3], stream[at + 4]]) as usize;
        at += 5 + len;
        n += 1;
    }
    n
}
