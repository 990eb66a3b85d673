//! The lab's HTTP proxy (`proxy.example.test`, 10.88.0.4, ports 3128 and 3129) driven by a
//! real client on the virtual clock: CONNECT tunnels carrying a rustls session to the
//! lab's HTTPS server, absolute-form requests, Basic proxy authentication, refusals, and
//! the teardown of a tunnel from either end.

mod support;

use std::net::IpAddr;
use std::time::{Duration as StdDuration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fetchscope_core::Randomness;
use fetchscope_lab::{
    Lab, LabConfig, PROXY_ADDR, PROXY_AUTH_PORT, PROXY_NAME, PROXY_PASSWORD, PROXY_PORT, PROXY_USER,
};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, Ipv4Address};
use support::{Client, Https, field, head, length_done};

const INDEX: &[u8] = include_bytes!("../src/http/index.html");
const PROXY: IpAddress = IpAddress::Ipv4(Ipv4Address::new(10, 88, 0, 4));
const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

fn client(seed: u64) -> Client {
    let randomness = Randomness::new(Some(seed));
    let lab = Lab::new(LabConfig {
        randomness,
        epoch: UNIX_EPOCH + StdDuration::from_secs(1_780_272_000),
        ..LabConfig::default()
    })
    .expect("lab");
    Client::new(lab, randomness)
}

/// Connects to the proxy's `port` and waits for ESTABLISHED.
fn connect(c: &mut Client, addr: IpAddress, port: u16) -> SocketHandle {
    let h = c.tcp_connect_to(addr, port);
    c.run_until(Duration::from_secs(2), |c| {
        (c.tcp(h).state() == tcp::State::Established).then_some(())
    });
    h
}

/// Everything the socket has received so far, and whether the peer's FIN came.
fn drain(c: &mut Client, h: SocketHandle, got: &mut Vec<u8>) -> bool {
    let sock = c.tcp(h);
    let mut buf = [0u8; 8192];
    while let Ok(n) = sock.recv_slice(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    !sock.may_recv()
}

/// Sends `bytes` on the plain socket and reads until `done(received, fin)`.
fn exchange(
    c: &mut Client,
    h: SocketHandle,
    bytes: &[u8],
    mut done: impl FnMut(&[u8], bool) -> bool,
) -> Vec<u8> {
    assert_eq!(c.tcp(h).send_slice(bytes).expect("send"), bytes.len());
    let mut got = Vec::new();
    c.run_until(Duration::from_secs(10), |c| {
        let fin = drain(c, h, &mut got);
        done(&got, fin).then_some(())
    });
    got
}

/// True once a whole Content-Length response and the server's FIN have arrived.
fn length_and_fin(bytes: &[u8], fin: bool) -> bool {
    fin && length_done(bytes, fin)
}

fn connect_head(target: &str, fields: &str) -> String {
    format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{fields}\r\n")
}

fn credentials(user: &str, password: &str) -> String {
    format!(
        "Proxy-Authorization: Basic {}\r\n",
        STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Sends a CONNECT for `www.example.test:443` (with `fields`), expects exactly the `200`,
/// and completes a TLS handshake with www.example.test through the tunnel.
fn open_tunnel(c: &mut Client, port: u16, fields: &str) -> Https {
    let h = connect(c, PROXY, port);
    let got = exchange(
        c,
        h,
        connect_head("www.example.test:443", fields).as_bytes(),
        |b, _| b.len() >= ESTABLISHED.len(),
    );
    // Nothing after the empty line: the server waits for the ClientHello.
    assert_eq!(got, ESTABLISHED, "{}", String::from_utf8_lossy(&got));
    let tls = c.tls_client(c.tls_config(), "www.example.test");
    c.handshake(Https::new(h, tls))
}

/// Runs until the server's close_notify and FIN have come.
fn wait_for_close(c: &mut Client, conn: &mut Https) {
    c.run_until(Duration::from_secs(2), |c| {
        c.pump(conn);
        (conn.peer_closed && conn.tcp_fin).then_some(())
    });
}

#[test]
fn connect_tunnel_carries_a_real_tls_session_to_www_and_closes_cleanly() {
    let mut c = client(21);
    let (m, _, _) = c.resolve(PROXY_NAME, RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let addrs: Vec<IpAddr> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect();
    assert_eq!(addrs, [IpAddr::V4(PROXY_ADDR)]);

    let mut conn = open_tunnel(&mut c, PROXY_PORT, "");
    assert_eq!(
        conn.tls.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(conn.tls.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(conn.tls.peer_certificates().map(<[_]>::len), Some(1));

    let page = c.get(&mut conn, "/");
    assert_eq!(page.status, 200);
    assert_eq!(page.body_len, INDEX.len() as u64);
    assert_eq!(page.body, INDEX);
    assert!(page.header("via").is_none(), "the tunnel is opaque");
    // keep-alive in the tunnel; the origin sees the proxy as its peer
    let echo = c.get(&mut conn, "/anything");
    let echo: serde_json::Value = serde_json::from_slice(&echo.body).expect("JSON");
    assert_eq!(echo["origin"], "10.88.0.4");
    assert_eq!(echo["url"], "https://www.example.test/anything");
    let stats = c.lab().server_stats();
    assert_eq!(
        (
            stats.proxy_connections,
            stats.proxy_tunnels,
            stats.tls_handshakes,
            stats.connections_accepted,
            stats.requests_served,
        ),
        (1, 1, 1, 0, 3)
    );
    assert_eq!(c.lab().server_connections(), 1);

    // The client closes: close_notify and FIN; the far end answers with both, and the
    // proxy's socket goes away.
    conn.tls.send_close_notify();
    c.pump(&mut conn);
    c.tcp(conn.handle).close();
    wait_for_close(&mut c, &mut conn);
    c.run_until(Duration::from_secs(2), |c| {
        (c.tcp(conn.handle).state() == tcp::State::TimeWait && c.lab().server_connections() == 0)
            .then_some(())
    });
    assert_eq!(c.lab().server_stats().connection_errors, 0);
}

#[test]
fn tunnel_bytes_in_the_connect_segment_belong_to_the_tunnel_and_the_server_may_close_first() {
    let mut c = client(22);
    let h = connect(&mut c, PROXY, PROXY_PORT);
    // The ClientHello right behind the CONNECT head, in the same segment.
    let mut tls = c.tls_client(c.tls_config(), "www.example.test");
    let mut wire = connect_head("www.example.test:443", "").into_bytes();
    let head_len = wire.len();
    tls.write_tls(&mut wire).expect("ClientHello");
    assert!(wire.len() > head_len + 100);
    let got = exchange(&mut c, h, &wire, |b, _| b.len() > ESTABLISHED.len());
    assert!(got.starts_with(ESTABLISHED));
    // The server's flight follows the 200: hand it to the TLS client.
    let mut rest = &got[ESTABLISHED.len()..];
    assert_eq!(rest.first(), Some(&0x16), "a TLS handshake record");
    while !rest.is_empty() {
        tls.read_tls(&mut rest).expect("read_tls");
        tls.process_new_packets().expect("client TLS");
    }
    let mut conn = c.handshake(Https::new(h, tls));
    assert!(!conn.tls.is_handshaking());
    let teapot = c.get(&mut conn, "/status/418");
    assert_eq!(teapot.status, 418);
    assert_eq!(teapot.body, b"418 I'm a teapot\n");

    // The far end closes after `Connection: close`: close_notify, then FIN.
    let r = c.request(
        &mut conn,
        "GET /empty HTTP/1.1\r\nHost: www.example.test\r\nConnection: close\r\n\r\n",
        false,
    );
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    wait_for_close(&mut c, &mut conn);
    conn.tls.send_close_notify();
    c.pump(&mut conn);
    c.tcp(conn.handle).close();
    c.run_until(Duration::from_secs(2), |c| {
        (c.tcp(conn.handle).state() == tcp::State::Closed).then_some(())
    });
    // The proxy's socket closed first, so it waits in TIME-WAIT, then goes away.
    assert_eq!(c.lab().server_connections(), 1);
    c.run_until(Duration::from_secs(30), |c| {
        (c.lab().server_connections() == 0).then_some(())
    });
    assert_eq!(c.lab().server_stats().connection_errors, 0);
}

#[test]
fn the_auth_port_wants_credentials_407_then_close() {
    let mut c = client(23);
    for fields in [
        String::new(),
        credentials(PROXY_USER, "wrong"),
        credentials("someone", PROXY_PASSWORD),
    ] {
        let h = connect(&mut c, PROXY, PROXY_AUTH_PORT);
        let r = exchange(
            &mut c,
            h,
            connect_head("www.example.test:443", &fields).as_bytes(),
            length_and_fin,
        );
        let (_, status, f) = head(&r).expect("a response");
        assert_eq!(status, 407, "{}", String::from_utf8_lossy(&r));
        assert!(r.starts_with(b"HTTP/1.1 407 Proxy Authentication Required\r\n"));
        assert_eq!(
            field(&f, "proxy-authenticate"),
            Some("Basic realm=\"fetchscope lab proxy\"")
        );
        assert_eq!(field(&f, "connection"), Some("close"));
        c.tcp(h).close();
    }
    // An absolute-form request without credentials: 407 too.
    let h = connect(&mut c, PROXY, PROXY_AUTH_PORT);
    let r = exchange(
        &mut c,
        h,
        b"GET http://www.example.test/ HTTP/1.1\r\nHost: www.example.test\r\n\r\n",
        length_and_fin,
    );
    assert_eq!(head(&r).map(|h| h.1), Some(407));
    c.tcp(h).close();

    // The right credentials: a tunnel, and the page through it.
    let mut conn = open_tunnel(
        &mut c,
        PROXY_AUTH_PORT,
        &credentials(PROXY_USER, PROXY_PASSWORD),
    );
    let page = c.get(&mut conn, "/");
    assert_eq!((page.status, page.body_len), (200, INDEX.len() as u64));
    let stats = c.lab().server_stats();
    assert_eq!((stats.proxy_refused, stats.proxy_tunnels), (4, 1));
}

#[test]
fn connect_refusals_forbidden_ports_unknown_names_and_other_addresses() {
    let mut c = client(24);
    for (target, status, reason) in [
        ("www.example.test:22", 403, "Forbidden"),
        ("10.88.0.1:8443", 403, "Forbidden"),
        ("192.0.2.1:443", 403, "Forbidden"),
        ("nope.example.test:443", 502, "Bad Gateway"),
        ("www.example.test", 400, "Bad Request"),
    ] {
        let h = connect(&mut c, PROXY, PROXY_PORT);
        // Tunnel bytes sent optimistically after the head are dropped with the connection.
        let mut wire = connect_head(target, "").into_bytes();
        wire.extend_from_slice(b"\x16\x03\x01\x00\x05hello");
        let r = exchange(&mut c, h, &wire, length_and_fin);
        let (_, got, f) = head(&r).expect("a response");
        assert_eq!(got, status, "{target}: {}", String::from_utf8_lossy(&r));
        assert!(r.starts_with(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes()));
        assert_eq!(field(&f, "connection"), Some("close"));
        c.tcp(h).close();
    }
    assert_eq!(c.lab().server_stats().proxy_tunnels, 0);
}

#[test]
fn a_connect_to_port_80_tunnels_plain_http() {
    let mut c = client(25);
    let h = connect(&mut c, PROXY, PROXY_PORT);
    let got = exchange(
        &mut c,
        h,
        connect_head("cdn.example.test:80", "").as_bytes(),
        |b, _| b.len() >= ESTABLISHED.len(),
    );
    assert_eq!(got, ESTABLISHED);
    let r = exchange(
        &mut c,
        h,
        b"GET /anything HTTP/1.1\r\nHost: cdn.example.test\r\n\r\n",
        length_done,
    );
    let (n, status, f) = head(&r).expect("a response");
    assert_eq!(status, 200);
    assert_eq!(field(&f, "via"), None);
    let echo: serde_json::Value = serde_json::from_slice(&r[n..]).expect("JSON");
    assert_eq!(echo["url"], "http://cdn.example.test/anything");
    assert_eq!(c.lab().server_stats().tls_handshakes, 0);
}

#[test]
fn absolute_form_requests_are_answered_with_via_and_keep_alive() {
    let mut c = client(26);
    let h = connect(&mut c, PROXY, PROXY_PORT);
    let r = exchange(
        &mut c,
        h,
        b"GET http://www.example.test/status/418 HTTP/1.1\r\nHost: www.example.test\r\n\r\n",
        length_done,
    );
    let (n, status, f) = head(&r).expect("a response");
    assert!(r.starts_with(b"HTTP/1.1 418 I'm a teapot\r\n"));
    assert_eq!(status, 418);
    assert_eq!(field(&f, "via"), Some("1.1 proxy.example.test"));
    assert_eq!(field(&f, "connection"), Some("keep-alive"));
    assert_eq!(&r[n..], b"418 I'm a teapot\n");

    // the same connection: the page, then a POST echoed with the forwarded head
    let r = exchange(
        &mut c,
        h,
        b"GET http://www.example.test/ HTTP/1.1\r\nHost: www.example.test\r\n\r\n",
        length_done,
    );
    let (n, status, _) = head(&r).expect("a response");
    assert_eq!((status, &r[n..]), (200, INDEX));
    let r = exchange(
        &mut c,
        h,
        b"POST http://alias.example.test/anything?a=1 HTTP/1.1\r\nHost: alias.example.test\r\nProxy-Connection: keep-alive\r\nContent-Length: 5\r\n\r\nhello",
        length_done,
    );
    let (n, status, _) = head(&r).expect("a response");
    assert_eq!(status, 200);
    let echo: serde_json::Value = serde_json::from_slice(&r[n..]).expect("JSON");
    assert_eq!(echo["url"], "http://alias.example.test/anything?a=1");
    assert_eq!(echo["data"], "hello");
    assert_eq!(echo["origin"], "10.88.0.4");
    assert_eq!(echo["headers"]["Via"], "1.1 proxy.example.test");
    assert_eq!(echo["headers"].get("Proxy-Connection"), None);

    // an https:// URL in absolute form: 400, and the connection closes
    let r = exchange(
        &mut c,
        h,
        b"GET https://www.example.test/ HTTP/1.1\r\nHost: www.example.test\r\n\r\n",
        length_and_fin,
    );
    let (_, status, f) = head(&r).expect("a response");
    assert_eq!((status, field(&f, "connection")), (400, Some("close")));
    let stats = c.lab().server_stats();
    assert_eq!(
        (
            stats.proxy_forwarded,
            stats.proxy_refused,
            stats.connections_accepted
        ),
        (3, 1, 0)
    );
}

#[test]
fn malformed_and_oversized_proxy_requests_get_400_and_431_and_close() {
    let mut c = client(27);
    for (wire, status) in [
        (b"\x16\x03\x01\x00\x05hello\r\n\r\n".to_vec(), 400),
        (
            b"GET / HTTP/1.1\r\nHost: www.example.test\r\n\r\n".to_vec(),
            400,
        ),
        (b"CONNECT [::1 HTTP/1.1\r\n\r\n".to_vec(), 400),
        (
            {
                let mut long = b"GET http://www.example.test/ HTTP/1.1\r\nX-Long: ".to_vec();
                long.resize(70 * 1024, b'a');
                long
            },
            431,
        ),
    ] {
        let h = connect(&mut c, PROXY, PROXY_PORT);
        let mut sent = 0;
        let mut got = Vec::new();
        c.run_until(Duration::from_secs(10), |c| {
            if sent < wire.len() {
                sent += c.tcp(h).send_slice(&wire[sent..]).unwrap_or(0);
            }
            let fin = drain(c, h, &mut got);
            length_and_fin(&got, fin).then_some(())
        });
        let (_, got_status, f) = head(&got).expect("a response");
        assert_eq!(got_status, status, "{}", String::from_utf8_lossy(&got));
        assert_eq!(field(&f, "connection"), Some("close"));
        c.tcp(h).close();
    }
    // the proxy still serves
    let h = connect(&mut c, PROXY, PROXY_PORT);
    let r = exchange(
        &mut c,
        h,
        b"GET http://www.example.test/empty HTTP/1.1\r\n\r\n",
        length_done,
    );
    assert_eq!(head(&r).map(|h| h.1), Some(200));
}

#[test]
fn the_proxy_is_its_own_host_and_has_an_ipv6_address_with_ipv6() {
    // Nothing but the proxy listens on 10.88.0.4, and the proxy nowhere else.
    let mut c = client(28);
    for (addr, port) in [(PROXY, 443), (PROXY, 80), (support_server(), PROXY_PORT)] {
        let h = c.tcp_connect_to(addr, port);
        c.run_until(Duration::from_secs(2), |c| {
            (c.tcp(h).state() == tcp::State::Closed).then_some(())
        });
    }

    let randomness = Randomness::new(Some(29));
    let lab = Lab::new(LabConfig {
        randomness,
        ipv6: true,
        ..LabConfig::default()
    })
    .expect("lab");
    let mut c = Client::new(lab, randomness);
    let v6 = c.lab().client_cidr_v6().expect("IPv6");
    let Some(IpAddr::V6(gw)) = c.lab().client_gateway_v6() else {
        panic!("no IPv6 gateway")
    };
    c.iface.update_ip_addrs(|a| a.push(v6).expect("room"));
    c.iface
        .routes_mut()
        .add_default_ipv6_route(gw)
        .expect("route");
    let (m, _, _) = c.resolve(PROXY_NAME, RecordType::AAAA);
    let addr = m
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::AAAA(a) => Some(a.0),
            _ => None,
        })
        .expect("an AAAA record");
    assert_eq!(addr.to_string(), "fd00:88::4");
    let h = connect(&mut c, IpAddress::Ipv6(addr), PROXY_PORT);
    let r = exchange(
        &mut c,
        h,
        b"GET http://[fd00:88::1]/anything HTTP/1.1\r\n\r\n",
        length_done,
    );
    let (n, status, _) = head(&r).expect("a response");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&r));
    let echo: serde_json::Value = serde_json::from_slice(&r[n..]).expect("JSON");
    assert_eq!(echo["origin"], "fd00:88::4");
    // keep-alive, then a CONNECT on the same connection
    let r = exchange(
        &mut c,
        h,
        connect_head("www.example.test:443", "").as_bytes(),
        |b, _| b.len() >= ESTABLISHED.len(),
    );
    assert_eq!(r, ESTABLISHED);
    let tls = c.tls_client(c.tls_config(), "www.example.test");
    let mut conn = c.handshake(Https::new(h, tls));
    let page = c.get(&mut conn, "/");
    assert_eq!((page.status, page.body_len), (200, INDEX.len() as u64));
}

/// The web server's address (where nothing listens on the proxy's ports).
fn support_server() -> IpAddress {
    IpAddress::Ipv4(Ipv4Address::new(10, 88, 0, 1))
}

#[test]
fn garbage_to_the_proxy_or_into_a_tunnel_closes_that_connection_only() {
    let mut c = client(30);
    let mut x: u32 = 0x2545_f491;
    let mut noise = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 8) as u8
            })
            .collect()
    };
    for len in [1, 40, 1000, 20_000] {
        let h = connect(&mut c, PROXY, PROXY_PORT);
        let mut wire = noise(len);
        wire[0] = 0x16; // not a token character: the head is invalid at once
        let r = exchange(&mut c, h, &wire, length_and_fin);
        assert_eq!(head(&r).map(|h| h.1), Some(400));
        c.tcp(h).close();
    }
    // Garbage instead of a ClientHello inside a tunnel: the far end's rustls refuses it
    // (an alert), and the proxy's socket closes.
    let h = connect(&mut c, PROXY, PROXY_PORT);
    let got = exchange(
        &mut c,
        h,
        connect_head("www.example.test:443", "").as_bytes(),
        |b, _| b.len() >= ESTABLISHED.len(),
    );
    assert_eq!(got, ESTABLISHED);
    // (a ClientHello whose body is nonsense, as in robustness.rs: decode_error)
    let wire = [
        0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x04, 0xff, 0xff, 0xff, 0xff,
    ];
    let r = exchange(&mut c, h, &wire, |_, fin| fin);
    assert_eq!(
        r.get(..2),
        Some(&[0x15, 0x03][..]),
        "a TLS alert record: {r:?}"
    );
    c.tcp(h).close();
    assert!(c.lab().server_stats().connection_errors >= 5);
    // and the proxy still opens tunnels
    let mut conn = open_tunnel(&mut c, PROXY_PORT, "");
    assert_eq!(c.get(&mut conn, "/empty").status, 200);
}

/// Packet times and lengths of a tunnelled fetch of `/bytes/5000` with `seed`.
fn tunnel_trace(seed: u64) -> Vec<(smoltcp::time::Instant, usize)> {
    let mut c = client(seed);
    let mut conn = open_tunnel(&mut c, PROXY_PORT, "");
    assert_eq!(c.get(&mut conn, "/bytes/5000").body_len, 5000);
    c.frames.iter().map(|f| (f.t, f.data.len())).collect()
}

#[test]
fn a_tunnelled_fetch_repeats_under_a_seed() {
    let first = tunnel_trace(31);
    assert!(first.len() > 10);
    assert_eq!(first, tunnel_trace(31));
}
