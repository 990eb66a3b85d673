//! The lab's plain HTTP server on port 80, where the framing of each route can be read
//! byte for byte, and the lab's IPv6 side (`LabConfig::ipv6`).

mod support;

use std::io::Read;
use std::net::IpAddr;
use std::time::{Duration as StdDuration, UNIX_EPOCH};

use fetchscope_core::Randomness;
use fetchscope_lab::{Lab, LabConfig, LabFault};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, Ipv4Address};
use support::{Client, field, head, length_done};

const TEXT: &[u8] = include_bytes!("../src/http/text.txt");
const INDEX: &[u8] = include_bytes!("../src/http/index.html");

fn client(config: LabConfig) -> Client {
    let randomness = config.randomness;
    Client::new(Lab::new(config).expect("lab"), randomness)
}

fn config(seed: u64) -> LabConfig {
    LabConfig {
        randomness: Randomness::new(Some(seed)),
        epoch: UNIX_EPOCH + StdDuration::from_secs(1_780_272_000),
        ..LabConfig::default()
    }
}

/// Connects to `addr`:`port` and waits for ESTABLISHED.
fn connect(c: &mut Client, addr: IpAddress, port: u16) -> SocketHandle {
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 64 * 1024]),
        tcp::SocketBuffer::new(vec![0; 16 * 1024]),
    );
    let local = c.ephemeral_port();
    s.connect(c.iface.context(), (addr, port), local)
        .expect("connect");
    let h = c.sockets.add(s);
    c.run_until(Duration::from_secs(2), |c| {
        (c.tcp(h).state() == tcp::State::Established).then_some(())
    });
    h
}

/// Sends `GET path` and reads until `done(bytes so far)` says the response is complete.
fn exchange(
    c: &mut Client,
    h: SocketHandle,
    head: &str,
    mut done: impl FnMut(&[u8], bool) -> bool,
) -> Vec<u8> {
    assert_eq!(
        c.tcp(h).send_slice(head.as_bytes()).expect("send"),
        head.len()
    );
    let mut got = Vec::new();
    c.run_until(Duration::from_secs(10), |c| {
        let sock = c.tcp(h);
        let mut buf = [0u8; 8192];
        let mut fin = false;
        loop {
            match sock.recv_slice(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => {
                    fin = true;
                    break;
                }
            }
        }
        done(&got, fin).then_some(())
    });
    got
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: www.example.test\r\nAccept-Encoding: gzip\r\n\r\n")
}

const SERVER: IpAddress = IpAddress::Ipv4(Ipv4Address::new(10, 88, 0, 1));

#[test]
fn plain_http_on_port_80_serves_the_same_routes() {
    let mut c = client(config(1));
    let h = connect(&mut c, SERVER, 80);
    // gzip with a length: the body is exactly the gzip of the text page
    let r = exchange(&mut c, h, &get("/gzip"), length_done);
    let (n, status, f) = head(&r).unwrap();
    assert_eq!(status, 200);
    assert_eq!(field(&f, "content-encoding"), Some("gzip"));
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&r[n..])
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, TEXT);
    // chunked on the same connection: size lines in hexadecimal, a last chunk
    let r = exchange(&mut c, h, &get("/chunked"), |b, _| {
        b.ends_with(b"\r\n0\r\n\r\n")
    });
    let (n, _, f) = head(&r).unwrap();
    assert_eq!(field(&f, "transfer-encoding"), Some("chunked"));
    assert_eq!(field(&f, "content-length"), None);
    assert!(r[n..].starts_with(b"3e8;lab=first\r\n"));
    // 204: a head and nothing else, then the connection is still usable
    let r = exchange(&mut c, h, &get("/status/204"), |b, _| head(b).is_some());
    let (n, status, f) = head(&r).unwrap();
    assert_eq!((status, n, r.len()), (204, r.len(), n));
    assert_eq!(field(&f, "content-length"), None);
    // an interim 103, then the final 200
    let r = exchange(&mut c, h, &get("/status/103"), |b, _| {
        b.windows(4).filter(|w| w == b"\r\n\r\n").count() == 2 && b.ends_with(b"response\n")
    });
    assert!(r.starts_with(b"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\n"));
    // absolute redirects name the plain scheme
    let r = exchange(&mut c, h, &get("/redirect/2"), length_done);
    let (_, status, f) = head(&r).unwrap();
    assert_eq!(status, 302);
    assert_eq!(
        field(&f, "location"),
        Some("http://www.example.test/redirect/1")
    );
    // a body delimited by close: no length, then the server's FIN
    let r = exchange(&mut c, h, &get("/close"), |_, fin| fin);
    let (n, _, f) = head(&r).unwrap();
    assert_eq!(field(&f, "connection"), Some("close"));
    assert_eq!(field(&f, "content-length"), None);
    assert_eq!(&r[n..], TEXT);
    let stats = c.lab().server_stats();
    assert_eq!(stats.tls_handshakes, 0);
    assert_eq!(stats.requests_served, 6);
}

#[test]
fn http_faults_apply_on_port_80_too_but_refused_is_about_443() {
    let mut c = client(LabConfig {
        fault: Some(LabFault::BadStatusLine),
        ..config(2)
    });
    let h = connect(&mut c, SERVER, 80);
    let r = exchange(&mut c, h, &get("/"), |b, _| b.len() > INDEX.len());
    assert!(r.starts_with(b"HTTP/1.1 2OO OK\r\n"));
    assert!(r.ends_with(INDEX));

    let mut c = client(LabConfig {
        fault: Some(LabFault::Refused),
        ..config(3)
    });
    let h = connect(&mut c, SERVER, 80);
    let r = exchange(&mut c, h, &get("/empty"), length_done);
    assert_eq!(head(&r).map(|(_, s, _)| s), Some(200));
}

#[test]
fn ipv6_gives_aaaa_records_and_serves_over_ipv6() {
    let mut c = client(LabConfig {
        ipv6: true,
        ..config(4)
    });
    let v6 = c
        .lab()
        .client_cidr_v6()
        .expect("an IPv6 address for the client");
    let Some(IpAddr::V6(gw)) = c.lab().client_gateway_v6() else {
        panic!("no IPv6 gateway")
    };
    assert_eq!(v6.to_string(), "fd00:88:1::2/64");
    c.iface
        .update_ip_addrs(|a| a.push(v6).expect("room for an address"));
    c.iface
        .routes_mut()
        .add_default_ipv6_route(gw)
        .expect("route");
    let (m, _, _) = c.resolve("alias.example.test", RecordType::AAAA);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let addr = m
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::AAAA(a) => Some(a.0),
            _ => None,
        })
        .expect("an AAAA record");
    assert_eq!(addr.to_string(), "fd00:88::1");
    let h = connect(&mut c, IpAddress::Ipv6(addr), 80);
    let r = exchange(&mut c, h, &get("/"), length_done);
    let (n, status, _) = head(&r).unwrap();
    assert_eq!(status, 200);
    assert_eq!(&r[n..], INDEX);
    // every packet the client got over IPv6 came through the router (hop limit 63)
    let v6_frames: Vec<_> = c
        .frames
        .iter()
        .filter(|f| f.dir == fetchscope_net::Direction::Rx && f.data[0] >> 4 == 6)
        .collect();
    assert!(!v6_frames.is_empty());
    assert!(v6_frames.iter().all(|f| f.data[7] == 63));

    // without the flag: no AAAA, and no IPv6 address for the client
    let mut c = client(config(4));
    assert_eq!(c.lab().client_cidr_v6(), None);
    let (m, _, _) = c.resolve("www.example.test", RecordType::AAAA);
    assert!(m.answers.is_empty());
}
