//! Bad input from the client: garbage DNS datagrams, garbage instead of TLS, an over-long
//! request head, resets, too many connections. Nothing panics; the bad connection closes;
//! the lab keeps serving.

mod support;

use std::io::Write;

use fetchscope_core::Randomness;
use fetchscope_lab::{Lab, LabConfig};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use smoltcp::socket::tcp;
use smoltcp::time::Duration;
use support::Client;

fn client(seed: u64) -> Client {
    let randomness = Randomness::new(Some(seed));
    let lab = Lab::new(LabConfig {
        randomness,
        ..LabConfig::default()
    })
    .expect("lab");
    Client::new(lab, randomness)
}

#[test]
fn garbage_dns_gets_formerr_or_nothing_and_the_server_keeps_answering() {
    let mut c = client(11);
    let (handle, _) = c.udp_socket();

    // A header promising a question that is not there: FORMERR, same id.
    c.send_dns(handle, &[0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    let (answer, _) = c.recv_dns(handle, Duration::from_secs(1));
    let answer = Message::from_vec(&answer).expect("decodable");
    assert_eq!(answer.metadata.id, 0xbeef);
    assert_eq!(answer.metadata.response_code, ResponseCode::FormErr);

    // Too short for a header, an empty datagram, a response, pseudo-random bytes.
    let mut garbage: Vec<Vec<u8>> = vec![vec![], vec![1, 2, 3], {
        let mut r = vec![0u8; 12];
        r[2] = 0x80;
        r
    }];
    let mut x: u32 = 0x9e37_79b9;
    for len in [13usize, 40, 100, 511, 1200] {
        garbage.push(
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x >> 8) as u8
                })
                .collect(),
        );
    }
    for g in &garbage {
        c.send_dns(handle, g);
        c.run_for(Duration::from_millis(20));
        // whatever came back (if anything) is a well-formed DNS response
        while let Ok((d, _)) = c
            .sockets
            .get_mut::<smoltcp::socket::udp::Socket>(handle)
            .recv()
        {
            let m = Message::from_vec(d).expect("a well-formed answer");
            assert_ne!(m.metadata.response_code, ResponseCode::NoError, "{g:02x?}");
        }
    }
    let stats = c.lab().server_stats();
    assert!(stats.dns_ignored >= 3, "{stats:?}");

    let (ok, _, _) = c.resolve("example.test", RecordType::A);
    assert_eq!(ok.metadata.response_code, ResponseCode::NoError);
    assert_eq!(ok.answers.len(), 1);
}

/// Connects to port 443 without TLS, sends `bytes`, and returns everything the server
/// sent back before its FIN.
fn raw_exchange(c: &mut Client, bytes: &[u8]) -> Vec<u8> {
    let h = c.tcp_connect(443);
    c.run_until(Duration::from_secs(1), |c| {
        (c.tcp(h).state() == tcp::State::Established).then_some(())
    });
    c.tcp(h).send_slice(bytes).expect("send");
    let mut got = Vec::new();
    c.run_until(Duration::from_secs(1), |c| {
        let s = c.tcp(h);
        let mut buf = [0u8; 256];
        while let Ok(n) = s.recv_slice(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        (!s.may_recv()).then_some(())
    });
    got
}

/// A plaintext TLS fatal alert record: type 21, version 3.3, length 2, level 2 (fatal).
fn is_fatal_alert(record: &[u8]) -> bool {
    record.len() == 7 && record[..5] == [0x15, 0x03, 0x03, 0x00, 0x02] && record[5] == 2
}

#[test]
fn plaintext_http_instead_of_tls_gets_an_alert_and_fin() {
    let mut c = client(12);
    let got = raw_exchange(&mut c, b"GET / HTTP/1.1\r\nHost: www.example.test\r\n\r\n");
    assert!(is_fatal_alert(&got), "{got:02x?}");
    assert_eq!(c.lab().server_stats().connection_errors, 1);
    assert_eq!(c.lab().server_stats().tls_handshakes, 0);

    // The next, proper client is served.
    let mut conn = c.https_connect();
    assert_eq!(c.get(&mut conn, "/").status, 200);
}

#[test]
fn garbage_tls_records_close_the_connection() {
    let mut c = client(13);
    // A ClientHello whose body is nonsense: decode_error alert, then FIN.
    let got = raw_exchange(
        &mut c,
        &[
            0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x04, 0xff, 0xff, 0xff, 0xff,
        ],
    );
    assert!(is_fatal_alert(&got), "{got:02x?}");
    // A handshake message claiming 16 MiB: rustls gives up without an alert; FIN.
    let mut huge = vec![0x16, 0x03, 0x01, 0x00, 0x20];
    huge.extend_from_slice(&[0xff; 32]);
    let got = raw_exchange(&mut c, &huge);
    assert!(got.is_empty() || is_fatal_alert(&got), "{got:02x?}");
    // A record longer than TLS allows.
    let got = raw_exchange(&mut c, &[0x17, 0x03, 0x03, 0xff, 0xff, 0x00]);
    assert!(is_fatal_alert(&got), "{got:02x?}");
    assert_eq!(c.lab().server_stats().connection_errors, 3);
    // The client never closes its side: the server waits in FIN-WAIT-2, then forgets.
    assert_eq!(c.lab().server_connections(), 3);
    c.run_for(Duration::from_secs(59));
    assert_eq!(c.lab().server_connections(), 3);
    c.run_for(Duration::from_secs(2));
    assert_eq!(c.lab().server_connections(), 0);
}

#[test]
fn over_long_request_head_gets_431_and_close() {
    let mut c = client(14);
    let mut conn = c.https_connect();
    let mut head = b"GET / HTTP/1.1\r\nHost: www.example.test\r\nX-Long: ".to_vec();
    head.resize(70 * 1024, b'a');
    let mut written = 0;
    let mut response = Vec::new();
    c.run_until(Duration::from_secs(5), |c| {
        // rustls buffers at most 64 KiB of plaintext: hand it over as it drains
        written += conn.tls.writer().write(&head[written..]).unwrap_or(0);
        c.pump(&mut conn);
        response.append(&mut conn.plain);
        (conn.peer_closed && conn.tcp_fin).then_some(())
    });
    let text = String::from_utf8_lossy(&response);
    assert!(
        text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nConnection: close\r\n"));
    assert_eq!(c.lab().server_stats().connection_errors, 1);
}

#[test]
fn invalid_request_gets_400_and_close() {
    let mut c = client(15);
    let mut conn = c.https_connect();
    conn.tls
        .writer()
        .write_all(b"\x00\x01 nonsense\r\n\r\n")
        .expect("write");
    let mut response = Vec::new();
    c.run_until(Duration::from_secs(5), |c| {
        c.pump(&mut conn);
        response.append(&mut conn.plain);
        (conn.peer_closed && conn.tcp_fin).then_some(())
    });
    assert!(response.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
}

#[test]
fn reset_in_the_middle_of_a_big_response_frees_the_connection() {
    let mut c = client(16);
    let mut conn = c.https_connect();
    conn.tls
        .writer()
        .write_all(b"GET /bytes/1073741824 HTTP/1.1\r\nHost: www.example.test\r\n\r\n")
        .expect("write");
    c.run_until(Duration::from_secs(5), |c| {
        c.pump(&mut conn);
        let n = conn.plain.len();
        conn.plain.clear();
        (n > 0 && c.lab().server_stats().bytes_sent > 1_000_000).then_some(())
    });
    assert_eq!(c.lab().server_connections(), 1);
    c.tcp(conn.handle).abort();
    c.run_for(Duration::from_millis(100));
    assert_eq!(c.lab().server_connections(), 0);
    // and the next client is served
    let mut again = c.https_connect();
    assert_eq!(c.get(&mut again, "/bytes/3").body, vec![0, 1, 2]);
}

#[test]
fn more_connections_than_sockets_are_refused_not_a_crash() {
    let mut c = client(17);
    let handles: Vec<_> = (0..40).map(|_| c.tcp_connect(443)).collect();
    c.run_for(Duration::from_millis(100));
    let established = handles
        .iter()
        .filter(|h| c.tcp(**h).state() == tcp::State::Established)
        .count();
    let closed = handles
        .iter()
        .filter(|h| c.tcp(**h).state() == tcp::State::Closed)
        .count();
    assert!((1..40).contains(&established), "{established}");
    assert_eq!(established + closed, 40);
    for h in &handles {
        c.tcp(*h).abort();
    }
    c.run_for(Duration::from_millis(100));
    assert_eq!(c.lab().server_connections(), 0);
    let mut conn = c.https_connect();
    assert_eq!(c.get(&mut conn, "/").status, 200);
}

#[test]
fn many_pipelined_requests_are_all_answered_in_order() {
    let mut c = client(18);
    let mut conn = c.https_connect();
    // 300 requests of ~420 bytes, ~125 KB in all: more than the server's 64 KiB request
    // buffer plus rustls's 16 KiB, sent while the server is still busy with 20 KB answers,
    // so it has to hold the rest back and come back for it.
    let mut requests = Vec::new();
    for i in 0..300 {
        requests.extend_from_slice(
            format!(
                "GET /bytes/{} HTTP/1.1\r\nHost: www.example.test\r\nX-Pad: {}\r\n\r\n",
                20_000 + i,
                "p".repeat(360)
            )
            .as_bytes(),
        );
    }
    let mut written = 0;
    let mut lengths = Vec::new();
    c.run_until(Duration::from_secs(60), |c| {
        written += conn.tls.writer().write(&requests[written..]).unwrap_or(0);
        c.pump(&mut conn);
        // Cut whole responses off the front of the plaintext.
        loop {
            let mut fields = [httparse::EMPTY_HEADER; 16];
            let mut r = httparse::Response::new(&mut fields);
            let Ok(httparse::Status::Complete(head)) = r.parse(&conn.plain) else {
                break;
            };
            let len: usize = r
                .headers
                .iter()
                .find(|h| h.name == "Content-Length")
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                .expect("Content-Length");
            if conn.plain.len() < head + len {
                break;
            }
            assert_eq!(r.code, Some(200));
            conn.plain.drain(..head + len);
            lengths.push(len);
        }
        (lengths.len() == 300).then_some(())
    });
    let expected: Vec<usize> = (0..300).map(|i| 20_000 + i).collect();
    assert_eq!(lengths, expected);
    assert_eq!(written, requests.len());
    assert_eq!(c.lab().server_stats().requests_served, 300);
}
