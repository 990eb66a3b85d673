//! A small test-only client for the lab: a smoltcp interface over `TapDevice<Lab>` with a
//! UDP socket for DNS (hickory-proto messages) and TCP sockets carrying rustls
//! `ClientConnection`s, driven on the lab's virtual clock.

#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::Arc;

use fetchscope_core::Randomness;
use fetchscope_lab::Lab;
use fetchscope_net::{Frame, Link, TapDevice, WaitOutcome};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use rand::Rng;
use rand::rngs::StdRng;
use rustls::pki_types::{ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use sha2::{Digest, Sha256};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpEndpoint, Ipv4Address};

/// The client machine.
pub struct Client {
    pub iface: Interface,
    pub dev: TapDevice<Lab>,
    pub sockets: SocketSet<'static>,
    pub frames: Vec<Frame>,
    pub rng: StdRng,
    pub randomness: Randomness,
}

impl Client {
    pub fn new(lab: Lab, randomness: Randomness) -> Client {
        let cidr = lab.client_cidr();
        let IpAddr::V4(gw) = lab.client_gateway() else {
            panic!("IPv4 gateway expected")
        };
        let mut dev = TapDevice::new(lab);
        let mut rng = randomness.rng("client-tcp");
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = rng.random();
        let mut iface = Interface::new(config, &mut dev, Instant::ZERO);
        iface.update_ip_addrs(|a| a.push(cidr).expect("room for an address"));
        iface
            .routes_mut()
            .add_default_ipv4_route(gw)
            .expect("route");
        Client {
            iface,
            dev,
            sockets: SocketSet::new(Vec::new()),
            frames: Vec::new(),
            rng,
            randomness,
        }
    }

    pub fn lab(&self) -> &Lab {
        self.dev.link()
    }

    pub fn now(&self) -> Instant {
        self.dev.link().now()
    }

    pub fn poll(&mut self) {
        let now = self.now();
        self.iface.poll(now, &mut self.dev, &mut self.sockets);
        assert!(self.dev.take_error().is_none(), "link error");
        self.frames.extend(self.dev.take_frames());
    }

    /// Polls, asks `f`, polls again (to send what `f` queued) and waits on the lab, until
    /// `f` returns a value; panics if that takes more than `limit` of virtual time.
    pub fn run_until<T>(
        &mut self,
        limit: Duration,
        mut f: impl FnMut(&mut Client) -> Option<T>,
    ) -> T {
        let end = self.now() + limit;
        loop {
            self.poll();
            if let Some(v) = f(self) {
                self.poll();
                return v;
            }
            self.poll();
            assert!(
                self.now() < end,
                "virtual time limit {limit} reached at {}",
                self.now()
            );
            let now = self.now();
            let deadline = self
                .iface
                .poll_at(now, &self.sockets)
                .map_or(end, |t| t.min(end));
            let outcome = self.dev.link_mut().wait(Some(deadline)).expect("wait");
            assert_ne!(outcome, WaitOutcome::Idle);
        }
    }

    /// Lets the world run for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now() + d;
        self.run_until(d + Duration::from_millis(1), |c| {
            (c.now() >= end).then_some(())
        });
    }

    pub fn ephemeral_port(&mut self) -> u16 {
        self.rng.random_range(49152..=65535)
    }

    // ---- DNS ----

    pub fn udp_socket(&mut self) -> (SocketHandle, u16) {
        let buf = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 8192]);
        let mut s = udp::Socket::new(buf(), buf());
        let port = self.ephemeral_port();
        s.bind(port).expect("bind");
        (self.sockets.add(s), port)
    }

    /// Sends `payload` to the lab's DNS server from `handle`; returns when it was sent.
    pub fn send_dns(&mut self, handle: SocketHandle, payload: &[u8]) -> Instant {
        let server = IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::new(10, 88, 0, 1)), 53);
        self.sockets
            .get_mut::<udp::Socket>(handle)
            .send_slice(payload, server)
            .expect("udp send");
        let before = self.frames.len();
        self.poll();
        self.frames[before..]
            .iter()
            .find(|f| f.dir == fetchscope_net::Direction::Tx)
            .map(|f| f.t)
            .expect("query sent")
    }

    /// Waits for the next datagram on `handle`.
    pub fn recv_dns(&mut self, handle: SocketHandle, limit: Duration) -> (Vec<u8>, Instant) {
        let data = self.run_until(limit, |c| {
            let s = c.sockets.get_mut::<udp::Socket>(handle);
            s.recv().ok().map(|(d, _)| d.to_vec())
        });
        let t = self
            .frames
            .iter()
            .rev()
            .find(|f| f.dir == fetchscope_net::Direction::Rx)
            .map(|f| f.t)
            .expect("answer frame");
        (data, t)
    }

    /// Resolves `name`: the parsed answer and the virtual time from query to answer.
    pub fn resolve(&mut self, name: &str, ty: RecordType) -> (Message, u16, Duration) {
        let (handle, _) = self.udp_socket();
        let id: u16 = self.rng.random();
        let mut q = Message::new(id, MessageType::Query, OpCode::Query);
        q.metadata.recursion_desired = true;
        q.add_query(Query::query(Name::from_ascii(name).expect("name"), ty));
        let sent = self.send_dns(handle, &q.to_vec().expect("encode"));
        let (answer, received) = self.recv_dns(handle, Duration::from_secs(2));
        self.sockets.remove(handle);
        (
            Message::from_vec(&answer).expect("decodable answer"),
            id,
            received - sent,
        )
    }

    // ---- TCP + TLS ----

    pub fn tcp_connect(&mut self, port: u16) -> SocketHandle {
        self.tcp_connect_to(IpAddress::Ipv4(Ipv4Address::new(10, 88, 0, 1)), port)
    }

    /// Opens a TCP connection to `addr`:`port` (returns at once: SYN-SENT).
    pub fn tcp_connect_to(&mut self, addr: IpAddress, port: u16) -> SocketHandle {
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 64 * 1024]),
            tcp::SocketBuffer::new(vec![0; 64 * 1024]),
        );
        s.set_nagle_enabled(false);
        let local = self.ephemeral_port();
        s.connect(self.iface.context(), (addr, port), local)
            .expect("connect");
        self.sockets.add(s)
    }

    pub fn tcp(&mut self, handle: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(handle)
    }

    pub fn tls_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.lab().ca_certificate()).expect("CA");
        // The lab's certificates are valid around its epoch, not necessarily today: check
        // them against the lab's wall-clock time.
        let time = Arc::new(LabTime(UnixTime::since_unix_epoch(
            self.lab()
                .wall_time()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970"),
        )));
        let mut config =
            ClientConfig::builder_with_details(self.randomness.crypto_provider("client-tls"), time)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// Connects to port 443 and completes a TLS handshake for `www.example.test`.
    pub fn https_connect(&mut self) -> Https {
        let config = self.tls_config();
        self.https_connect_with(config)
    }

    /// Connects to port 443 and completes a TLS handshake with `config`.
    pub fn https_connect_with(&mut self, config: Arc<ClientConfig>) -> Https {
        let handle = self.tcp_connect(443);
        self.run_until(Duration::from_secs(2), |c| {
            (c.tcp(handle).state() == tcp::State::Established).then_some(())
        });
        let tls = self.tls_client(config, "www.example.test");
        let conn = Https::new(handle, tls);
        self.handshake(conn)
    }

    /// A TLS client for `name` with `config` (nothing sent yet).
    pub fn tls_client(&self, config: Arc<ClientConfig>, name: &str) -> ClientConnection {
        let name = ServerName::try_from(name.to_owned()).expect("name");
        ClientConnection::new(config, name).expect("client connection")
    }

    /// Runs `conn`'s TLS handshake on its (established) socket to the end.
    pub fn handshake(&mut self, mut conn: Https) -> Https {
        self.run_until(Duration::from_secs(2), |c| {
            c.pump(&mut conn);
            (!conn.tls.is_handshaking()).then_some(())
        });
        conn
    }

    /// Moves TLS bytes between `conn` and its socket, and plaintext out of rustls.
    pub fn pump(&mut self, conn: &mut Https) {
        let sock = self.sockets.get_mut::<tcp::Socket>(conn.handle);
        loop {
            if !conn.out.is_empty() {
                let n = sock.send_slice(&conn.out).unwrap_or(0);
                conn.out.drain(..n);
                if !conn.out.is_empty() {
                    break;
                }
            }
            if !conn.tls.wants_write() {
                break;
            }
            conn.tls.write_tls(&mut conn.out).expect("write_tls");
        }
        while sock.can_recv() && conn.tls.wants_read() {
            let tls = &mut conn.tls;
            sock.recv(|b| {
                let n = b.len().min(4096);
                let r = if n == 0 {
                    0
                } else {
                    tls.read_tls(&mut &b[..n]).expect("read_tls")
                };
                (r, ())
            })
            .expect("recv");
            conn.tls.process_new_packets().expect("client TLS");
            conn.drain_plaintext();
        }
        if !sock.may_recv() {
            conn.tcp_fin = true;
        }
    }

    /// Sends a request head and reads one response (body hashed, kept if ≤ 64 KiB).
    pub fn request(&mut self, conn: &mut Https, head: &str, head_only: bool) -> HttpResponse {
        use std::io::Write;
        conn.tls.writer().write_all(head.as_bytes()).expect("write");
        let mut reader = ResponseReader::new(head_only);
        self.run_until(Duration::from_secs(120), |c| {
            c.pump(conn);
            reader.feed(&mut conn.plain);
            reader.done().then_some(())
        });
        reader.finish()
    }

    pub fn get(&mut self, conn: &mut Https, path: &str) -> HttpResponse {
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: fetchscope-lab-test\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n"
        );
        self.request(conn, &head, false)
    }
}

/// rustls's clock for the client: the lab's wall-clock time when the config was made.
#[derive(Debug)]
struct LabTime(UnixTime);

impl rustls::time_provider::TimeProvider for LabTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(self.0)
    }
}

/// One client TLS connection.
pub struct Https {
    pub handle: SocketHandle,
    pub tls: ClientConnection,
    pub out: Vec<u8>,
    pub plain: Vec<u8>,
    /// The server sent close_notify.
    pub peer_closed: bool,
    /// The server's FIN arrived (and everything before it was read).
    pub tcp_fin: bool,
}

impl Https {
    /// A TLS client connection on the socket `handle`.
    pub fn new(handle: SocketHandle, tls: ClientConnection) -> Https {
        Https {
            handle,
            tls,
            out: Vec::new(),
            plain: Vec::new(),
            peer_closed: false,
            tcp_fin: false,
        }
    }

    fn drain_plaintext(&mut self) {
        use std::io::Read;
        let mut buf = [0u8; 16384];
        loop {
            match self.tls.reader().read(&mut buf) {
                Ok(0) => {
                    self.peer_closed = true;
                    return;
                }
                Ok(n) => self.plain.extend_from_slice(&buf[..n]),
                Err(_) => return,
            }
        }
    }
}

/// A parsed response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body_len: u64,
    pub body: Vec<u8>,
    pub sha256: [u8; 32],
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Status, header fields and Content-Length of a response head.
type Head = (u16, Vec<(String, String)>, u64);

/// Reads one Content-Length response from a plaintext stream.
struct ResponseReader {
    head_only: bool,
    head: Option<Head>,
    buf: Vec<u8>,
    got: u64,
    body: Vec<u8>,
    hasher: Sha256,
}

impl ResponseReader {
    fn new(head_only: bool) -> Self {
        ResponseReader {
            head_only,
            head: None,
            buf: Vec::new(),
            got: 0,
            body: Vec::new(),
            hasher: Sha256::new(),
        }
    }

    fn feed(&mut self, plain: &mut Vec<u8>) {
        if self.head.is_none() {
            self.buf.append(plain);
            let mut fields = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Response::new(&mut fields);
            if let httparse::Status::Complete(n) = r.parse(&self.buf).expect("response head") {
                let headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_owned(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let len = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.parse::<u64>().expect("content-length"))
                    .expect("content-length present");
                self.head = Some((r.code.expect("status"), headers, len));
                let rest = self.buf.split_off(n);
                *plain = rest;
            } else {
                return;
            }
        }
        let Some((_, _, len)) = &self.head else {
            return;
        };
        let expected = if self.head_only { 0 } else { *len };
        let take = (expected - self.got).min(plain.len() as u64) as usize;
        let chunk: Vec<u8> = plain.drain(..take).collect();
        self.hasher.update(&chunk);
        if self.body.len() + chunk.len() <= 64 * 1024 {
            self.body.extend_from_slice(&chunk);
        }
        self.got += take as u64;
    }

    fn done(&self) -> bool {
        match &self.head {
            Some((_, _, len)) => self.head_only || self.got == *len,
            None => false,
        }
    }

    fn finish(self) -> HttpResponse {
        let (status, headers, len) = self.head.expect("head");
        HttpResponse {
            status,
            headers,
            body_len: if self.head_only { 0 } else { len },
            body: self.body,
            sha256: self.hasher.finalize().into(),
        }
    }
}

/// SHA-256 of the first `n` bytes of the documented `/bytes/N` pattern (byte i = i mod 251),
/// computed here without the lab's code.
pub fn expected_pattern_digest(n: u64) -> [u8; 32] {
    let period: Vec<u8> = (0..251u32).map(|i| i as u8).collect();
    let mut h = Sha256::new();
    let mut left = n;
    while left > 0 {
        let take = left.min(251) as usize;
        h.update(&period[..take]);
        left -= take as u64;
    }
    h.finalize().into()
}

/// A response head: its length, status and fields (names in lower case).
pub type PlainHead = (usize, u16, Vec<(String, String)>);

/// The head at the start of `bytes`, once complete.
pub fn head(bytes: &[u8]) -> Option<PlainHead> {
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut r = httparse::Response::new(&mut fields);
    match r.parse(bytes).ok()? {
        httparse::Status::Complete(n) => Some((
            n,
            r.code?,
            r.headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
        )),
        httparse::Status::Partial => None,
    }
}

/// The value of the field `name` (lower case) in `fields`.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// True once a Content-Length response is complete.
pub fn length_done(bytes: &[u8], _fin: bool) -> bool {
    head(bytes).is_some_and(|(n, _, f)| {
        let len: usize = field(&f, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        bytes.len() >= n + len
    })
}
