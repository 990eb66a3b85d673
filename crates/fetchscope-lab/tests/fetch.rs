//! A real client (smoltcp + hickory-proto + rustls) against the lab, on the virtual clock.

mod support;

use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use fetchscope_core::Randomness;
use fetchscope_lab::{Lab, LabConfig};
use fetchscope_net::Direction;
use hickory_proto::op::{MessageType, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use smoltcp::socket::tcp;
use smoltcp::time::Duration;
use smoltcp::wire::{IpProtocol, Ipv4Packet, TcpPacket, UdpPacket};
use support::{Client, expected_pattern_digest};

/// 2026-06-01T00:00:00Z: a fixed epoch so runs repeat.
fn epoch() -> SystemTime {
    UNIX_EPOCH + StdDuration::from_secs(1_780_272_000)
}

fn lab(seed: u64) -> (Lab, Randomness) {
    let randomness = Randomness::new(Some(seed));
    let lab = Lab::new(LabConfig {
        randomness,
        epoch: epoch(),
        ..LabConfig::default()
    })
    .expect("lab");
    (lab, randomness)
}

/// The whole scenario of the brief; returns the client's frames.
fn scenario(seed: u64) -> Client {
    let (lab, randomness) = lab(seed);
    let mut c = Client::new(lab, randomness);

    // DNS: an A answer one round trip (10 ms plus serialization) after the query.
    let (answer, id, rtt) = c.resolve("www.example.test", RecordType::A);
    assert_eq!(answer.metadata.id, id);
    assert_eq!(answer.metadata.message_type, MessageType::Response);
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.metadata.authoritative);
    assert!(answer.metadata.recursion_available);
    assert_eq!(answer.queries.len(), 1);
    assert_eq!(answer.answers.len(), 1);
    assert_eq!(answer.answers[0].ttl, 300);
    match &answer.answers[0].data {
        RData::A(a) => assert_eq!(a.0.to_string(), "10.88.0.1"),
        other => panic!("not an A record: {other:?}"),
    }
    assert!(
        rtt >= Duration::from_millis(10) && rtt < Duration::from_micros(10_100),
        "DNS round trip {rtt}"
    );

    let (nx, _, _) = c.resolve("nope.test", RecordType::A);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert!(nx.answers.is_empty());
    let (aaaa, _, _) = c.resolve("www.example.test", RecordType::AAAA);
    assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
    assert!(aaaa.answers.is_empty());

    // TCP + TLS.
    let t0 = c.now();
    let mut conn = c.https_connect();
    let handshake = c.now() - t0;
    assert!(
        handshake >= Duration::from_millis(20) && handshake < Duration::from_millis(40),
        "TCP + TLS took {handshake}"
    );
    assert_eq!(
        conn.tls.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(conn.tls.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(conn.tls.peer_certificates().map(<[_]>::len), Some(1));

    // GET / : the page about the lab.
    let page = c.get(&mut conn, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        page.header("content-length"),
        Some(page.body.len().to_string().as_str())
    );
    assert_eq!(page.header("connection"), Some("keep-alive"));
    assert!(
        page.header("server")
            .is_some_and(|s| s.starts_with("fetchscope-lab/"))
    );
    let date = page.header("date").expect("Date");
    assert!(
        date.starts_with("Mon, 01 Jun 2026 00:00:00") && date.ends_with(" GMT"),
        "{date}"
    );
    assert!(
        (1000..=3000).contains(&page.body.len()),
        "page is {} bytes",
        page.body.len()
    );
    let html = String::from_utf8(page.body.clone()).expect("UTF-8");
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("fetchscope lab"));

    // GET /bytes/1000000 on the same connection.
    let t1 = c.now();
    let bytes = c.get(&mut conn, "/bytes/1000000");
    assert_eq!(bytes.status, 200);
    assert_eq!(
        bytes.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(bytes.header("content-length"), Some("1000000"));
    assert_eq!(bytes.body_len, 1_000_000);
    assert_eq!(bytes.sha256, expected_pattern_digest(1_000_000));
    let transfer = c.now() - t1;
    // 1 MB needs at least 80 ms at 100 Mbit/s; a 64 KiB window over 10 ms RTT allows ~52 Mbit/s.
    assert!(
        transfer > Duration::from_millis(80) && transfer < Duration::from_millis(400),
        "1 MB took {transfer}"
    );

    // HEAD, then a 404, still on the same connection.
    let head = c.request(
        &mut conn,
        "HEAD /bytes/5 HTTP/1.1\r\nHost: www.example.test\r\n\r\n",
        true,
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("5"));
    let missing = c.get(&mut conn, "/nope");
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(String::from_utf8_lossy(&missing.body).contains("404"));
    assert!(conn.plain.is_empty(), "nothing after the last response");

    // close_notify → the server answers with close_notify and FIN.
    conn.tls.send_close_notify();
    c.run_until(Duration::from_secs(2), |c| {
        c.pump(&mut conn);
        (conn.peer_closed && conn.tcp_fin).then_some(())
    });
    assert_eq!(c.tcp(conn.handle).state(), tcp::State::CloseWait);
    c.tcp(conn.handle).close();
    c.run_until(Duration::from_secs(2), |c| {
        (c.tcp(conn.handle).state() == tcp::State::Closed).then_some(())
    });

    let stats = c.lab().server_stats();
    assert_eq!(stats.dns_queries, 3);
    assert_eq!(stats.dns_responses, 3);
    assert_eq!(stats.connections_accepted, 1);
    assert_eq!(stats.tls_handshakes, 1);
    assert_eq!(stats.requests_served, 4);
    assert_eq!(stats.connection_errors, 0);
    assert!(stats.bytes_sent > 1_000_000);
    c
}

#[test]
fn a_fetch_against_the_lab() {
    let wall = std::time::Instant::now();
    let c = scenario(1);
    let took = wall.elapsed();
    assert!(took < StdDuration::from_secs(20), "wall time {took:?}");
    // virtual time: well under a second for all of it
    assert!(
        c.now() < smoltcp::time::Instant::from_millis(1000),
        "virtual {}",
        c.now()
    );
    // the router lowered every TTL the client saw by one
    for f in c.frames.iter().filter(|f| f.dir == Direction::Rx) {
        assert_eq!(
            Ipv4Packet::new_checked(&f.data[..])
                .expect("IPv4")
                .hop_limit(),
            63
        );
    }
    // frame times never go back, and back-to-back sends get distinct times
    assert!(c.frames.windows(2).all(|w| w[0].t <= w[1].t));
    let tx: Vec<_> = c.frames.iter().filter(|f| f.dir == Direction::Tx).collect();
    assert!(tx.windows(2).all(|w| w[0].t < w[1].t));
}

/// What must repeat with a seed: times, directions, lengths, addresses, ports, TCP
/// sequence and acknowledgment numbers, flags and windows, and whole DNS datagrams.
fn trace(c: &Client) -> Vec<String> {
    c.frames
        .iter()
        .map(|f| {
            let ip = Ipv4Packet::new_checked(&f.data[..]).expect("IPv4");
            let head = format!(
                "{} {:?} {} {}>{} ttl {}",
                f.t,
                f.dir,
                f.data.len(),
                ip.src_addr(),
                ip.dst_addr(),
                ip.hop_limit()
            );
            match ip.next_header() {
                IpProtocol::Tcp => {
                    let t = TcpPacket::new_checked(ip.payload()).expect("TCP");
                    format!(
                        "{head} tcp {}>{} seq {} ack {} syn {} fin {} rst {} psh {} win {} len {}",
                        t.src_port(),
                        t.dst_port(),
                        t.seq_number(),
                        t.ack_number(),
                        t.syn(),
                        t.fin(),
                        t.rst(),
                        t.psh(),
                        t.window_len(),
                        t.payload().len()
                    )
                }
                IpProtocol::Udp => {
                    let u = UdpPacket::new_checked(ip.payload()).expect("UDP");
                    format!(
                        "{head} udp {}>{} {:02x?}",
                        u.src_port(),
                        u.dst_port(),
                        u.payload()
                    )
                }
                other => format!("{head} {other}"),
            }
        })
        .collect()
}

#[test]
fn same_seed_same_trace_other_seed_differs() {
    let a = trace(&scenario(7));
    let b = trace(&scenario(7));
    assert!(a.len() > 100);
    assert_eq!(a, b);
    let c = trace(&scenario(8));
    assert_ne!(a, c);
}

#[test]
fn connection_close_from_the_client_closes_after_the_response() {
    let (lab, randomness) = lab(3);
    let mut c = Client::new(lab, randomness);
    let mut conn = c.https_connect();
    let r = c.request(
        &mut conn,
        "GET / HTTP/1.1\r\nHost: www.example.test\r\nConnection: close\r\n\r\n",
        false,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    c.run_until(Duration::from_secs(2), |c| {
        c.pump(&mut conn);
        (conn.peer_closed && conn.tcp_fin).then_some(())
    });
}

#[test]
fn client_fin_closes_the_server_side_too() {
    let (lab, randomness) = lab(4);
    let mut c = Client::new(lab, randomness);
    let mut conn = c.https_connect();
    assert_eq!(
        c.get(&mut conn, "/bytes/10").sha256,
        expected_pattern_digest(10)
    );
    c.tcp(conn.handle).close(); // FIN without close_notify
    c.run_until(Duration::from_secs(2), |c| {
        c.pump(&mut conn);
        conn.tcp_fin.then_some(())
    });
    c.run_for(Duration::from_secs(15)); // past TIME-WAIT
    assert_eq!(c.lab().server_connections(), 0);
}

#[test]
fn sixteen_mebibytes_with_the_right_digest() {
    let wall = std::time::Instant::now();
    let (lab, randomness) = lab(5);
    let mut c = Client::new(lab, randomness);
    let mut conn = c.https_connect();
    let t0 = c.now();
    let r = c.get(&mut conn, "/bytes/16777216");
    assert_eq!(r.status, 200);
    assert_eq!(r.body_len, 16 * 1024 * 1024);
    assert_eq!(r.sha256, expected_pattern_digest(16 * 1024 * 1024));
    let virtual_time = c.now() - t0;
    // At least 16 MiB / 100 Mbit/s ≈ 1.34 s of virtual time.
    assert!(virtual_time > Duration::from_millis(1340), "{virtual_time}");
    eprintln!("16 MiB: {virtual_time} virtual, {:?} wall", wall.elapsed());
}

#[test]
fn tls_1_2_clients_are_served_too() {
    // epoch = now, so a client checking certificates against the real clock accepts them
    let randomness = Randomness::new(Some(6));
    let lab = Lab::new(LabConfig {
        randomness,
        ..LabConfig::default()
    })
    .expect("lab");
    let mut c = Client::new(lab, randomness);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(c.lab().ca_certificate()).expect("CA");
    let mut config =
        rustls::ClientConfig::builder_with_provider(randomness.crypto_provider("client-tls"))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .expect("TLS 1.2")
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut conn = c.https_connect_with(std::sync::Arc::new(config));
    assert_eq!(
        conn.tls.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(
        c.get(&mut conn, "/bytes/100").sha256,
        expected_pattern_digest(100)
    );
}
