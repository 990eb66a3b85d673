//! Tests of request bodies through the whole server: a smoltcp client on the lab's wire
//! sends requests in many TCP segments (plain HTTP on port 80, and HTTPS on 443), and the
//! answers are read back byte for byte.

use std::io::{Read, Write as _};
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fetchscope_core::Randomness;
use fetchscope_net::{Link, TapDevice, WaitOutcome};
use rand::Rng;
use rustls::pki_types::{ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use serde_json::Value;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpAddress, Ipv4Address};

use super::MAX_BODY_LEN;
use crate::{Lab, LabConfig};

/// The lab's web server.
const SERVER: IpAddress = IpAddress::Ipv4(Ipv4Address::new(10, 88, 0, 1));

/// A client machine on the lab's wire with one connection.
struct Client {
    iface: Interface,
    dev: TapDevice<Lab>,
    sockets: SocketSet<'static>,
    handle: SocketHandle,
    /// TLS on port 443, none on port 80.
    tls: Option<ClientConnection>,
    /// Request bytes not yet taken by the socket (after TLS, if any).
    out: Vec<u8>,
    /// Response bytes received (after TLS, if any).
    got: Vec<u8>,
    /// The server's FIN arrived.
    fin: bool,
}

/// rustls's clock: the lab's wall-clock time.
#[derive(Debug)]
struct LabTime(UnixTime);

impl rustls::time_provider::TimeProvider for LabTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(self.0)
    }
}

impl Client {
    /// Connects to `port` (80: plain HTTP, 443: HTTPS with a finished handshake).
    fn connect(port: u16) -> Client {
        let randomness = Randomness::new(Some(11));
        let lab = Lab::new(LabConfig {
            randomness,
            ..LabConfig::default()
        })
        .expect("lab");
        let IpAddr::V4(gw) = lab.client_gateway() else {
            panic!("IPv4 gateway expected")
        };
        let cidr = lab.client_cidr();
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
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 64 * 1024]),
            tcp::SocketBuffer::new(vec![0; 32 * 1024]),
        );
        socket
            .connect(
                iface.context(),
                (SERVER, port),
                rng.random_range(49152..=65535),
            )
            .expect("connect");
        let mut sockets = SocketSet::new(Vec::new());
        let handle = sockets.add(socket);
        let tls = (port == 443).then(|| client_tls(dev.link(), randomness));
        let mut c = Client {
            iface,
            dev,
            sockets,
            handle,
            tls,
            out: Vec::new(),
            got: Vec::new(),
            fin: false,
        };
        c.run_until(|c| {
            let up = c.socket().state() == tcp::State::Established;
            (up && !c.tls.as_ref().is_some_and(|t| t.is_handshaking())).then_some(())
        });
        c
    }

    fn socket(&mut self) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(self.handle)
    }

    /// Polls the interface and moves bytes between the socket and TLS.
    fn poll(&mut self) {
        let now = self.dev.link().now();
        self.iface.poll(now, &mut self.dev, &mut self.sockets);
        self.pump();
        let now = self.dev.link().now();
        self.iface.poll(now, &mut self.dev, &mut self.sockets);
    }

    /// Request bytes to the socket, response bytes from it, through TLS if any.
    fn pump(&mut self) {
        if let Some(tls) = &mut self.tls {
            while tls.wants_write() {
                tls.write_tls(&mut self.out).expect("write_tls");
            }
        }
        let sock = self.sockets.get_mut::<tcp::Socket>(self.handle);
        let n = sock.send_slice(&self.out).unwrap_or(0);
        self.out.drain(..n);
        while sock.can_recv() {
            let mut buf = [0u8; 4096];
            let n = sock.recv_slice(&mut buf).expect("recv");
            match &mut self.tls {
                Some(tls) => {
                    let mut input = &buf[..n];
                    while !input.is_empty() {
                        tls.read_tls(&mut input).expect("read_tls");
                        tls.process_new_packets().expect("client TLS");
                    }
                    let mut plain = [0u8; 16384];
                    while let Ok(k) = tls.reader().read(&mut plain) {
                        if k == 0 {
                            break;
                        }
                        self.got.extend_from_slice(&plain[..k]);
                    }
                }
                None => self.got.extend_from_slice(&buf[..n]),
            }
        }
        // (a socket still connecting cannot receive either)
        self.fin |= !sock.may_recv() && sock.state() != tcp::State::SynSent;
    }

    /// Runs the world until `f` gives a value (at most 60 s of virtual time).
    fn run_until<T>(&mut self, mut f: impl FnMut(&mut Client) -> Option<T>) -> T {
        let end = self.dev.link().now() + Duration::from_secs(60);
        loop {
            self.poll();
            if let Some(v) = f(self) {
                self.poll();
                return v;
            }
            // send what `f` queued before waiting
            self.poll();
            let now = self.dev.link().now();
            assert!(
                now < end,
                "nothing after 60 s: {:?}",
                String::from_utf8_lossy(&self.got)
            );
            let deadline = self
                .iface
                .poll_at(now, &self.sockets)
                .map_or(end, |t| t.min(end));
            let outcome = self.dev.link_mut().wait(Some(deadline)).expect("wait");
            assert_ne!(outcome, WaitOutcome::Idle);
        }
    }

    /// Queues request bytes and runs until they are all handed to TCP.
    fn send(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        self.run_until(|c| {
            let taken = match &mut c.tls {
                Some(tls) => tls.writer().write(rest).expect("write"),
                None => {
                    c.out.extend_from_slice(rest);
                    rest.len()
                }
            };
            rest = &rest[taken..];
            let queued = c.tls.as_ref().is_some_and(|t| t.wants_write());
            (rest.is_empty() && c.out.is_empty() && !queued).then_some(())
        });
    }

    /// Lets `ms` milliseconds of virtual time pass (so the next bytes go in new segments).
    fn pause(&mut self, ms: u64) {
        let end = self.dev.link().now() + Duration::from_millis(ms);
        self.run_until(|c| (c.dev.link().now() >= end).then_some(()));
    }

    /// Runs until a whole response (after any 100 Continue) has arrived, and takes it.
    fn response(&mut self) -> Answer {
        let answer = self.run_until(|c| parse_answer(&c.got));
        self.got.drain(..answer.wire_len);
        answer
    }
}

/// A TLS client that trusts the lab's CA at the lab's time.
fn client_tls(lab: &Lab, randomness: Randomness) -> ClientConnection {
    let mut roots = RootCertStore::empty();
    roots.add(lab.ca_certificate()).expect("CA");
    let since_epoch = lab
        .wall_time()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    let time = Arc::new(LabTime(UnixTime::since_unix_epoch(since_epoch)));
    let config = ClientConfig::builder_with_details(randomness.crypto_provider("client-tls"), time)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("www.example.test").expect("name");
    ClientConnection::new(Arc::new(config), name).expect("client")
}

/// One response read from the wire.
#[derive(Debug)]
struct Answer {
    /// The interim responses before it (e.g. 100).
    interim: Vec<u16>,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Bytes of the wire it used.
    wire_len: usize,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A whole `Content-Length` response at the start of `wire`, after its interim ones.
fn parse_answer(wire: &[u8]) -> Option<Answer> {
    let mut at = 0;
    let mut interim = Vec::new();
    loop {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut fields);
        let httparse::Status::Complete(n) = r.parse(&wire[at..]).expect("a response") else {
            return None;
        };
        let status = r.code?;
        if status < 200 {
            interim.push(status);
            at += n;
            continue;
        }
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
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let body = wire.get(at + n..at + n + len)?.to_vec();
        return Some(Answer {
            interim,
            status,
            headers,
            body,
            wire_len: at + n + len,
        });
    }
}

/// A request head for `/anything` with `fields` (each ending in CRLF).
fn head(method: &str, target: &str, fields: &str) -> String {
    format!("{method} {target} HTTP/1.1\r\nHost: www.example.test\r\n{fields}\r\n")
}

#[test]
fn a_body_in_many_segments_is_read_whole_and_the_connection_stays_alive() {
    let mut c = Client::connect(80);
    // 100 KB of JSON: more than one TCP window, about 70 segments
    let text = "x".repeat(100_000);
    let body = format!("{{\"text\": \"{text}\", \"n\": 7}}");
    let fields = format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    c.send(head("POST", "/anything?a=1&a=2&b=%20", &fields).as_bytes());
    // the head alone is not answered: the server waits for the body
    c.pause(50);
    assert!(c.got.is_empty(), "{:?}", String::from_utf8_lossy(&c.got));
    c.send(&body.as_bytes()[..30_000]);
    c.pause(50);
    assert!(c.got.is_empty());
    c.send(&body.as_bytes()[30_000..]);
    let r = c.response();
    assert_eq!(
        (r.status, r.header("connection")),
        (200, Some("keep-alive"))
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let echo = r.json();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["data"].as_str().map(str::len), Some(body.len()));
    assert_eq!(echo["json"]["n"], 7);
    assert_eq!(echo["json"]["text"].as_str(), Some(text.as_str()));
    assert_eq!(echo["args"], serde_json::json!({"a": ["1", "2"], "b": " "}));
    assert_eq!(echo["headers"]["Content-Length"], body.len().to_string());
    assert_eq!(echo["origin"], "10.88.1.2");
    assert_eq!(
        echo["url"],
        "http://www.example.test/anything?a=1&a=2&b=%20"
    );

    // a chunked body in three pieces, some tens of milliseconds apart, on the same
    // connection
    c.send(head("PUT", "/anything/x/y", "Transfer-Encoding: chunked\r\n").as_bytes());
    c.send(b"6;ext=1\r\nchunk-\r\n");
    c.pause(30);
    c.send(b"7\r\nchunked\r\n0\r\n");
    c.pause(30);
    assert!(c.got.is_empty());
    c.send(b"X-Trailer: t\r\n\r\n");
    let echo = c.response().json();
    assert_eq!(
        (echo["method"].as_str(), echo["data"].as_str()),
        (Some("PUT"), Some("chunk-chunked"))
    );
    assert_eq!(echo["json"], Value::Null);
    assert_eq!(echo["url"], "http://www.example.test/anything/x/y");

    // and a GET after both
    c.send(head("GET", "/anything", "").as_bytes());
    let echo = c.response().json();
    assert_eq!(
        (echo["method"].as_str(), echo["data"].as_str()),
        (Some("GET"), Some(""))
    );
    assert!(!c.fin);
    let stats = c.dev.link().server_stats();
    assert_eq!((stats.connections_accepted, stats.requests_served), (1, 3));
}

#[test]
fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let mut c = Client::connect(80);
    let body = vec![b'b'; 5000];
    let fields = "Expect: 100-continue\r\nContent-Type: text/plain\r\nContent-Length: 5000\r\n";
    c.send(head("POST", "/anything", fields).as_bytes());
    c.run_until(|c| (!c.got.is_empty()).then_some(()));
    c.pause(20);
    assert_eq!(c.got, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(&body);
    let r = c.response();
    assert_eq!((r.interim.clone(), r.status), (vec![100], 200));
    assert_eq!(r.json()["data"].as_str().map(str::len), Some(5000));
    // the interim response is not counted as a request served
    assert_eq!(c.dev.link().server_stats().requests_served, 1);
}

#[test]
fn a_body_over_the_limit_gets_413_and_the_connection_closes() {
    let mut c = Client::connect(80);
    let fields = format!(
        "Expect: 100-continue\r\nContent-Length: {}\r\n",
        MAX_BODY_LEN + 1
    );
    c.send(head("POST", "/anything", &fields).as_bytes());
    let r = c.response();
    assert_eq!((r.interim.clone(), r.status), (vec![], 413));
    assert_eq!(r.header("connection"), Some("close"));
    c.run_until(|c| c.fin.then_some(()));
}

#[test]
fn malformed_chunking_gets_400_and_the_connection_closes() {
    let mut c = Client::connect(80);
    c.send(head("POST", "/anything", "Transfer-Encoding: chunked\r\n").as_bytes());
    c.send(b"3\r\nabc\r\nnot-hex\r\n");
    let r = c.response();
    assert_eq!((r.status, r.header("connection")), (400, Some("close")));
    c.run_until(|c| c.fin.then_some(()));
}

#[test]
fn a_binary_body_over_https_comes_back_as_a_base64_data_url() {
    let mut c = Client::connect(443);
    // 300 KB in many TLS records and TCP segments; not UTF-8
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 256) as u8).collect();
    let fields = format!(
        "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n",
        body.len()
    );
    c.send(head("POST", "/anything", &fields).as_bytes());
    c.send(&body);
    let r = c.response();
    assert_eq!(r.status, 200);
    let echo = r.json();
    let data = echo["data"].as_str().expect("data");
    let b64 = data
        .strip_prefix("data:application/octet-stream;base64,")
        .expect("a data URL");
    assert_eq!(STANDARD.decode(b64).expect("base64"), body);
    assert_eq!(echo["url"], "https://www.example.test/anything");
    // keep-alive over TLS too
    c.send(head("GET", "/status/418", "").as_bytes());
    assert_eq!(c.response().status, 418);
}
