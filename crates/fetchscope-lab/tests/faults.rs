//! The lab misbehaving on request (`LabConfig::fault`), seen by a real client (smoltcp,
//! hickory-proto, rustls) on the virtual clock, and the parts that stay healthy.

mod support;

use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use fetchscope_core::Randomness;
use fetchscope_lab::{CDN_ADDR, DECOY_ADDR, Lab, LabConfig, LabFault, SERVER_ADDR};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use rustls::pki_types::ServerName;
use rustls::{AlertDescription, CertificateError, ClientConnection};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Duration;
use support::Client;

/// 2026-06-01T00:00:00Z, so runs repeat.
fn epoch() -> SystemTime {
    UNIX_EPOCH + StdDuration::from_secs(1_780_272_000)
}

fn client(fault: Option<LabFault>, seed: u64) -> Client {
    let randomness = Randomness::new(Some(seed));
    let lab = Lab::new(LabConfig {
        randomness,
        epoch: epoch(),
        fault,
        ..LabConfig::default()
    })
    .expect("lab");
    Client::new(lab, randomness)
}

fn query(id: u16, name: &str, ty: RecordType) -> Vec<u8> {
    let mut q = Message::new(id, MessageType::Query, OpCode::Query);
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(Name::from_ascii(name).expect("name"), ty));
    q.to_vec().expect("encode")
}

fn first_a(m: &Message) -> Option<std::net::Ipv4Addr> {
    m.answers.iter().find_map(|r| match &r.data {
        RData::A(a) => Some(a.0),
        _ => None,
    })
}

/// Every datagram that arrives on `handle` within `d` of virtual time.
fn datagrams_within(
    c: &mut Client,
    handle: smoltcp::iface::SocketHandle,
    d: Duration,
) -> Vec<Vec<u8>> {
    let end = c.now() + d;
    let mut got = Vec::new();
    c.run_until(d + Duration::from_millis(1), |c| {
        while let Ok((data, _)) = c.sockets.get_mut::<udp::Socket>(handle).recv() {
            got.push(data.to_vec());
        }
        (c.now() >= end).then_some(())
    });
    got
}

/// One DNS exchange over TCP port 53: the answer message.
fn dns_over_tcp(c: &mut Client, query: &[u8]) -> Message {
    let h = c.tcp_connect(53);
    c.run_until(Duration::from_secs(2), |c| {
        (c.tcp(h).state() == tcp::State::Established).then_some(())
    });
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    assert_eq!(c.tcp(h).send_slice(&framed).expect("send"), framed.len());
    let mut buf = Vec::new();
    let answer = c.run_until(Duration::from_secs(2), |c| {
        let sock = c.tcp(h);
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = sock.recv_slice(&mut chunk) {
            buf.extend_from_slice(&chunk[..n]);
        }
        let len = usize::from(u16::from_be_bytes([*buf.first()?, *buf.get(1)?]));
        buf.get(2..2 + len).map(<[u8]>::to_vec)
    });
    c.tcp(h).close();
    c.run_until(Duration::from_secs(2), |c| {
        matches!(c.tcp(h).state(), tcp::State::TimeWait | tcp::State::Closed).then_some(())
    });
    Message::from_vec(&answer).expect("decodable answer")
}

/// Connects to port 443 and runs a TLS handshake for `name` until it fails; the error.
fn handshake_error(c: &mut Client, name: &str) -> rustls::Error {
    let config = c.tls_config();
    let h = c.tcp_connect(443);
    c.run_until(Duration::from_secs(2), |c| {
        (c.tcp(h).state() == tcp::State::Established).then_some(())
    });
    let mut tls = ClientConnection::new(
        config,
        ServerName::try_from(name.to_owned()).expect("server name"),
    )
    .expect("client connection");
    let mut out = Vec::new();
    c.run_until(Duration::from_secs(2), |c| {
        let sock = c.tcp(h);
        while tls.wants_write() {
            tls.write_tls(&mut out).expect("write_tls");
        }
        let n = sock.send_slice(&out).unwrap_or(0);
        out.drain(..n);
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = sock.recv_slice(&mut buf) {
            let mut slice = &buf[..n];
            while !slice.is_empty() {
                tls.read_tls(&mut slice).expect("read_tls");
                if let Err(e) = tls.process_new_packets() {
                    return Some(e);
                }
            }
        }
        assert!(tls.is_handshaking(), "the handshake succeeded");
        None
    })
}

#[test]
fn nxdomain_and_servfail_answer_every_name_with_the_question_echoed() {
    for (fault, code) in [
        (LabFault::Nxdomain, ResponseCode::NXDomain),
        (LabFault::Servfail, ResponseCode::ServFail),
    ] {
        let mut c = client(Some(fault), 1);
        for name in ["www.example.test", "nope.test"] {
            let (m, id, _) = c.resolve(name, RecordType::A);
            assert_eq!(m.metadata.id, id);
            assert_eq!(m.metadata.response_code, code, "{fault} {name}");
            assert!(m.answers.is_empty());
            assert_eq!(m.queries.len(), 1);
        }
        // over TCP too
        let m = dns_over_tcp(&mut c, &query(9, "www.example.test", RecordType::A));
        assert_eq!(m.metadata.response_code, code);
    }
}

#[test]
fn dns_silent_never_answers_udp_or_tcp() {
    let mut c = client(Some(LabFault::DnsSilent), 2);
    let (h, _) = c.udp_socket();
    c.send_dns(h, &query(7, "www.example.test", RecordType::A));
    assert!(datagrams_within(&mut c, h, Duration::from_secs(5)).is_empty());
    // TCP: the connection opens, the query is read, nothing comes back
    let t = c.tcp_connect(53);
    c.run_until(Duration::from_secs(2), |c| {
        (c.tcp(t).state() == tcp::State::Established).then_some(())
    });
    let q = query(8, "www.example.test", RecordType::A);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    c.tcp(t).send_slice(&framed).expect("send");
    c.run_for(Duration::from_secs(3));
    assert_eq!(c.tcp(t).recv_queue(), 0);
    let stats = c.lab().server_stats();
    assert_eq!(
        (stats.dns_queries, stats.dns_withheld, stats.dns_responses),
        (2, 2, 0)
    );
}

#[test]
fn dns_wrong_id_sends_a_decoy_first_then_the_answer() {
    let mut c = client(Some(LabFault::DnsWrongId), 3);
    let (h, _) = c.udp_socket();
    c.send_dns(h, &query(0x4242, "www.example.test", RecordType::A));
    let got = datagrams_within(&mut c, h, Duration::from_secs(1));
    assert_eq!(got.len(), 2);
    let decoy = Message::from_vec(&got[0]).unwrap();
    let real = Message::from_vec(&got[1]).unwrap();
    assert_ne!(decoy.metadata.id, 0x4242);
    assert_eq!(first_a(&decoy), Some(DECOY_ADDR));
    assert_eq!(real.metadata.id, 0x4242);
    assert_eq!(first_a(&real), Some(SERVER_ADDR));
}

#[test]
fn dns_truncated_over_udp_and_complete_over_tcp() {
    let mut c = client(Some(LabFault::DnsTruncated), 4);
    let (m, _, _) = c.resolve("alias.example.test", RecordType::A);
    assert!(m.metadata.truncation);
    assert!(m.answers.is_empty());
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let m = dns_over_tcp(&mut c, &query(77, "alias.example.test", RecordType::A));
    assert!(!m.metadata.truncation);
    assert_eq!(m.metadata.id, 77);
    assert_eq!(m.answers.len(), 2, "CNAME and A");
    assert_eq!(first_a(&m), Some(SERVER_ADDR));
    let stats = c.lab().server_stats();
    assert_eq!(stats.dns_tcp_connections, 1);
    // a healthy lab also answers over TCP, without truncation over UDP
    let mut healthy = client(None, 4);
    let (m, _, _) = healthy.resolve("cdn.example.test", RecordType::A);
    assert!(!m.metadata.truncation);
    assert_eq!(first_a(&m), Some(CDN_ADDR));
    let m = dns_over_tcp(&mut healthy, &query(5, "cdn.example.test", RecordType::A));
    assert_eq!(first_a(&m), Some(CDN_ADDR));
}

#[test]
fn refused_answers_the_syn_with_a_reset_but_dns_works() {
    let mut c = client(Some(LabFault::Refused), 5);
    let (m, _, _) = c.resolve("www.example.test", RecordType::A);
    assert_eq!(first_a(&m), Some(SERVER_ADDR));
    let h = c.tcp_connect(443);
    let took = c.run_until(Duration::from_secs(1), |c| {
        (c.tcp(h).state() == tcp::State::Closed).then(|| c.now())
    });
    assert!(took < smoltcp::time::Instant::from_millis(100), "{took}");
    assert_eq!(c.lab().server_stats().connections_accepted, 0);
}

#[test]
fn syn_silent_drops_every_syn() {
    let mut c = client(Some(LabFault::SynSilent), 6);
    let h = c.tcp_connect(443);
    c.run_for(Duration::from_secs(4));
    assert_eq!(c.tcp(h).state(), tcp::State::SynSent);
    // the first SYN and its retransmissions at 1 s and 3 s
    assert_eq!(c.lab().server_stats().segments_dropped, 3);
    // port 53 over TCP is not affected
    let m = dns_over_tcp(&mut c, &query(1, "www.example.test", RecordType::A));
    assert_eq!(first_a(&m), Some(SERVER_ADDR));
}

#[test]
fn certificate_faults_fail_verification_for_the_right_reason() {
    let cases = [
        (LabFault::CertUnknownCa, "UnknownIssuer"),
        (LabFault::CertWrongName, "NotValidForName"),
        (LabFault::CertExpired, "Expired"),
        (LabFault::CertSelfSigned, "UnknownIssuer"),
    ];
    let trusted = client(None, 7).lab().ca_certificate();
    for (fault, want) in cases {
        let mut c = client(Some(fault), 7);
        assert_eq!(
            c.lab().ca_certificate(),
            trusted,
            "{fault}: the trusted CA changed"
        );
        match handshake_error(&mut c, "www.example.test") {
            rustls::Error::InvalidCertificate(e) => {
                assert!(format!("{e:?}").starts_with(want), "{fault}: {e:?}");
                if fault == LabFault::CertExpired {
                    assert!(matches!(
                        e,
                        CertificateError::Expired | CertificateError::ExpiredContext { .. }
                    ));
                }
            }
            other => panic!("{fault}: {other:?}"),
        }
    }
}

#[test]
fn tls_alert_aborts_the_handshake_with_handshake_failure() {
    let mut c = client(Some(LabFault::TlsAlert), 8);
    let e = handshake_error(&mut c, "www.example.test");
    assert_eq!(
        e,
        rustls::Error::AlertReceived(AlertDescription::HandshakeFailure)
    );
    let stats = c.lab().server_stats();
    assert_eq!((stats.tls_alerts_sent, stats.tls_handshakes), (1, 0));
}

#[test]
fn slow_answers_each_request_five_seconds_late() {
    let mut c = client(Some(LabFault::Slow), 9);
    let mut conn = c.https_connect();
    for path in ["/", "/bytes/10"] {
        let before = c.now();
        let r = c.get(&mut conn, path);
        let waited = c.now() - before;
        assert_eq!(r.status, 200);
        assert!(
            waited >= Duration::from_secs(5) && waited < Duration::from_millis(5100),
            "{path}: {waited}"
        );
    }
    // a healthy lab answers within a round trip or two
    let mut fast = client(None, 9);
    let mut conn = fast.https_connect();
    let before = fast.now();
    fast.get(&mut conn, "/");
    assert!(fast.now() - before < Duration::from_millis(100));
}

#[test]
fn http_faults_leave_other_paths_alone() {
    for fault in [
        LabFault::Truncated,
        LabFault::CorruptGzip,
        LabFault::RedirectLoop,
    ] {
        let mut c = client(Some(fault), 10);
        let mut conn = c.https_connect();
        let r = c.get(&mut conn, "/bytes/1000");
        assert_eq!((r.status, r.body_len), (200, 1000), "{fault}");
    }
}

#[test]
fn faulty_labs_repeat_with_a_seed() {
    let run = |seed| {
        let mut c = client(Some(LabFault::DnsWrongId), seed);
        let (h, _) = c.udp_socket();
        c.send_dns(h, &query(1, "www.example.test", RecordType::A));
        datagrams_within(&mut c, h, Duration::from_secs(1));
        c.frames
            .iter()
            .map(|f| (f.t, f.dir, f.data.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(12), run(12));
}
