//! A real TLS exchange (rustls client and server in memory), cut into TCP segments and
//! wrapped into IPv4 packets, through the dissector.

mod common;

use common::{Exchange, Options, Party, count_records, fetch_packets, tls_exchange};
use fetchscope_wire::{Direction, Dissection, Dissector, TcpAnalysis, TlsRecord};
use rustls::crypto::ring::cipher_suite;

/// Segment sizes: tiny, odd and MSS-sized, so records split across segments and several
/// records share one segment.
const SIZES: &[usize] = &[100, 7, 1460, 1, 300, 90];

fn dissect_all(d: &mut Dissector, packets: &[(Direction, Vec<u8>)]) -> Vec<Dissection> {
    packets.iter().map(|(dir, p)| d.dissect(*dir, p)).collect()
}

fn with_secrets(ex: &Exchange) -> Dissector {
    let mut d = Dissector::new();
    for (label, random, secret) in &ex.secrets {
        d.add_tls_secret(label, random, secret);
    }
    d
}

fn records(ds: &[Dissection]) -> Vec<&TlsRecord> {
    ds.iter().flat_map(|d| d.tls.iter()).collect()
}

fn all_messages(recs: &[&TlsRecord]) -> Vec<String> {
    recs.iter()
        .flat_map(|r| r.messages.iter().cloned())
        .collect()
}

fn assert_no_problems(ds: &[Dissection]) {
    for d in ds {
        assert!(d.problems.is_empty(), "{}: {:?}", d.summary(), d.problems);
    }
}

#[test]
fn decrypted_exchange() {
    let ex = tls_exchange(Options::default());
    let packets = fetch_packets(&ex, SIZES);
    let mut d = with_secrets(&ex);
    let ds = dissect_all(&mut d, &packets);
    assert_no_problems(&ds);

    // TCP handshake with relative numbers and options.
    let syn = ds[0].tcp.as_ref().expect("tcp");
    assert_eq!(
        ds[0].summary(),
        "[SYN] seq=0 win=65535 len=0 mss=1460 ws=0 sack_perm"
    );
    assert_eq!(syn.seq_raw, common::CLIENT_ISN);
    assert_eq!(
        ds[1].summary(),
        "[SYN, ACK] seq=0 ack=1 win=64240 len=0 mss=1460 ws=7 sack_perm"
    );
    assert_eq!(ds[2].summary(), "[ACK] seq=1 ack=1 win=65535 len=0");

    let recs = records(&ds);
    // Every record reported exactly once.
    assert_eq!(
        recs.len(),
        count_records(&ex, Party::Client) + count_records(&ex, Party::Server)
    );
    // Split records and packed records both happened.
    assert!(
        ds.iter().any(|d| d.tls.len() >= 2),
        "several records in one segment"
    );
    assert!(
        ds.iter()
            .any(|d| d.tcp.as_ref().is_some_and(|t| t.payload_len > 0) && d.tls.is_empty()),
        "a record split across segments"
    );

    let ch = recs
        .iter()
        .find(|r| r.message.as_deref() == Some("ClientHello"))
        .expect("ClientHello");
    assert_eq!(ch.record, "handshake");
    assert_eq!(ch.version, "TLSv1.0");
    assert_eq!(ch.sni.as_deref(), Some("www.example.test"));
    assert_eq!(ch.alpn, vec!["http/1.1"]);
    assert_eq!(ch.versions, vec!["TLSv1.3", "TLSv1.2"]);
    assert_eq!(ch.groups, vec!["x25519", "secp256r1", "secp384r1"]);
    assert_eq!(ch.key_shares, vec!["x25519"]);
    assert!(ch.suites.is_some_and(|n| n >= 9));
    assert!(!ch.encrypted);

    let sh = recs
        .iter()
        .find(|r| r.message.as_deref() == Some("ServerHello"))
        .expect("ServerHello");
    assert_eq!(sh.suite.as_deref(), Some("TLS13_AES_256_GCM_SHA384"));
    assert_eq!(sh.version_selected.as_deref(), Some("TLSv1.3"));
    assert_eq!(sh.group.as_deref(), Some("x25519"));

    let decrypted: Vec<&TlsRecord> = recs
        .iter()
        .copied()
        .filter(|r| r.encrypted && r.decrypted == Some(true))
        .collect();
    let encrypted = recs.iter().filter(|r| r.encrypted).count();
    assert_eq!(
        decrypted.len(),
        encrypted,
        "every protected record decrypted"
    );
    let messages = all_messages(&decrypted);
    for m in [
        "EncryptedExtensions",
        "Certificate",
        "CertificateVerify",
        "Finished",
        "NewSessionTicket",
    ] {
        assert!(messages.iter().any(|x| x == m), "{m} in {messages:?}");
    }
    assert_eq!(messages.iter().filter(|m| *m == "Finished").count(), 2);
    let ee = decrypted
        .iter()
        .find(|r| r.messages.iter().any(|m| m == "EncryptedExtensions"))
        .expect("EE");
    assert_eq!(
        ee.alpn,
        vec!["http/1.1"],
        "chosen ALPN from EncryptedExtensions"
    );
    let cert = decrypted
        .iter()
        .find(|r| r.messages.iter().any(|m| m == "Certificate"))
        .expect("Certificate");
    assert_eq!(cert.certificates, Some(1));

    let http: Vec<&str> = decrypted.iter().filter_map(|r| r.http.as_deref()).collect();
    assert_eq!(http, vec!["GET / HTTP/1.1", "HTTP/1.1 200 OK"]);
    let get = decrypted
        .iter()
        .find(|r| r.http.as_deref() == Some("GET / HTTP/1.1"))
        .expect("request");
    assert_eq!(get.inner, Some("application_data"));
    assert!(get.app_len.is_some_and(|n| n > 50));

    let closes: Vec<&&TlsRecord> = decrypted
        .iter()
        .filter(|r| r.alert.as_deref() == Some("close_notify"))
        .collect();
    assert_eq!(closes.len(), 2, "close_notify both ways");
    assert!(
        closes
            .iter()
            .all(|r| r.alert_level.as_deref() == Some("warning"))
    );

    // Summaries name what a person wants to see.
    let lines: Vec<String> = ds.iter().map(|d| d.summary().to_string()).collect();
    let joined = lines.join("\n");
    assert!(
        joined.contains("ClientHello sni=www.example.test alpn=http/1.1"),
        "{joined}"
    );
    assert!(
        joined.contains("ServerHello TLSv1.3 TLS13_AES_256_GCM_SHA384 x25519"),
        "{joined}"
    );
    assert!(joined.contains("ChangeCipherSpec"), "{joined}");
    assert!(joined.contains("application data"), "{joined}");
    assert!(joined.contains("(GET / HTTP/1.1)"), "{joined}");
    assert!(joined.contains("(HTTP/1.1 200 OK)"), "{joined}");
    assert!(joined.contains("alert close_notify"), "{joined}");

    // JSON shape of the ClientHello packet.
    let ch_packet = ds
        .iter()
        .find(|d| {
            d.tls
                .iter()
                .any(|r| r.message.as_deref() == Some("ClientHello"))
        })
        .expect("ClientHello packet");
    let json = serde_json::to_value(ch_packet).expect("serialises");
    assert_eq!(json["ip"]["src"], "10.88.1.2");
    assert_eq!(json["ip"]["protocol"], "tcp");
    assert_eq!(json["tcp"]["dst_port"], 443);
    // The ClientHello is reported on the segment that completes it.
    let tcp = ch_packet.tcp.as_ref().expect("tcp");
    assert_eq!(
        tcp.seq as usize + tcp.payload_len,
        1 + 5 + usize::from(ch.length)
    );
    assert_eq!(json["tls"][0]["record"], "handshake");
    assert_eq!(json["tls"][0]["messages"][0], "ClientHello");
    assert_eq!(json["tls"][0]["encrypted"], false);
    assert!(json.get("problems").is_none());
}

#[test]
fn whole_flights_in_one_segment_summary() {
    let ex = tls_exchange(Options::default());
    let packets = fetch_packets(&ex, &[65000]);
    let mut d = with_secrets(&ex);
    let ds = dissect_all(&mut d, &packets);
    assert_no_problems(&ds);
    let flight = ds
        .iter()
        .find(|d| {
            d.tls
                .iter()
                .any(|r| r.message.as_deref() == Some("ServerHello"))
        })
        .expect("server flight");
    let summary = flight.summary();
    assert!(
        summary.ends_with(
            " · ServerHello TLSv1.3 TLS13_AES_256_GCM_SHA384 x25519, ChangeCipherSpec, encrypted handshake (EncryptedExtensions, Certificate, CertificateVerify, Finished)"
        ),
        "{summary}"
    );
    assert!(summary.starts_with("[PSH, ACK] seq=1 ack="), "{summary}");
}

#[test]
fn fallback_labels_without_secrets() {
    let ex = tls_exchange(Options::default());
    let packets = fetch_packets(&ex, SIZES);
    let mut d = Dissector::new();
    let ds = dissect_all(&mut d, &packets);
    assert_no_problems(&ds);
    let recs = records(&ds);
    let server_side: Vec<&TlsRecord> = ds
        .iter()
        .filter(|d| d.tcp.as_ref().is_some_and(|t| t.src_port == 443))
        .flat_map(|d| d.tls.iter())
        .collect();
    let client_side: Vec<&TlsRecord> = ds
        .iter()
        .filter(|d| d.tcp.as_ref().is_some_and(|t| t.dst_port == 443))
        .flat_map(|d| d.tls.iter())
        .collect();

    // Server: ServerHello, CCS, then its encrypted flight labelled "handshake".
    assert_eq!(server_side[0].message.as_deref(), Some("ServerHello"));
    assert_eq!(server_side[1].record, "change_cipher_spec");
    let server_enc: Vec<&&TlsRecord> = server_side.iter().filter(|r| r.encrypted).collect();
    assert_eq!(server_enc[0].inner, Some("handshake"));
    assert_eq!(server_enc[0].decrypted, Some(false));
    assert_eq!(
        server_enc.last().and_then(|r| r.inner),
        Some("application_data"),
        "after the client's Finished the server sends application data"
    );

    // Client: ClientHello, CCS, Finished ("handshake"), then application data.
    let client_enc: Vec<&&TlsRecord> = client_side.iter().filter(|r| r.encrypted).collect();
    assert_eq!(client_enc[0].inner, Some("handshake"));
    assert!(
        client_enc[1..]
            .iter()
            .all(|r| r.inner == Some("application_data"))
    );
    assert!(recs.iter().all(|r| r.http.is_none() && r.app_len.is_none()));
    let joined: String = ds.iter().map(|d| d.summary().to_string() + "\n").collect();
    assert!(joined.contains("encrypted handshake"), "{joined}");
    assert!(joined.contains("B (encrypted)"), "{joined}");
}

#[test]
fn secrets_learned_mid_connection() {
    // The flow dissects a packet before rustls has logged the secrets it carries keys for;
    // records after that must still decrypt.
    let ex = tls_exchange(Options::default());
    let packets = fetch_packets(&ex, SIZES);
    let mut d = Dissector::new();
    let mut ds = Vec::new();
    let mut added = false;
    for (dir, p) in &packets {
        let one = d.dissect(*dir, p);
        let server_flight_done = one.tls.iter().any(|r| r.encrypted && *dir == Direction::Rx);
        ds.push(one);
        if server_flight_done && !added {
            for (label, random, secret) in &ex.secrets {
                d.add_tls_secret(label, random, secret);
            }
            added = true;
        }
    }
    assert!(added);
    assert_no_problems(&ds);
    let http: Vec<String> = records(&ds).iter().filter_map(|r| r.http.clone()).collect();
    assert_eq!(http, vec!["GET / HTTP/1.1", "HTTP/1.1 200 OK"]);
    assert!(
        records(&ds)
            .iter()
            .filter(|r| r.alert.as_deref() == Some("close_notify"))
            .count()
            == 2
    );
    assert!(d.key_log().contains("SERVER_TRAFFIC_SECRET_0 "));
}

#[test]
fn every_tls13_suite_decrypts() {
    for (suite, name) in [
        (
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            "TLS13_AES_128_GCM_SHA256",
        ),
        (
            cipher_suite::TLS13_AES_256_GCM_SHA384,
            "TLS13_AES_256_GCM_SHA384",
        ),
        (
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
            "TLS13_CHACHA20_POLY1305_SHA256",
        ),
    ] {
        let ex = tls_exchange(Options::suite(suite));
        let mut d = with_secrets(&ex);
        let ds = dissect_all(&mut d, &fetch_packets(&ex, &[536]));
        assert_no_problems(&ds);
        let recs = records(&ds);
        assert!(
            recs.iter().any(|r| r.suite.as_deref() == Some(name)),
            "{name}"
        );
        assert!(
            recs.iter()
                .filter(|r| r.encrypted)
                .all(|r| r.decrypted == Some(true)),
            "{name}"
        );
        assert!(
            recs.iter()
                .any(|r| r.http.as_deref() == Some("HTTP/1.1 200 OK"))
        );
    }
}

#[test]
fn key_update_moves_to_the_next_epoch() {
    let ex = tls_exchange(Options {
        key_update: true,
        ..Options::default()
    });
    let mut d = with_secrets(&ex);
    let ds = dissect_all(&mut d, &fetch_packets(&ex, SIZES));
    assert_no_problems(&ds);
    let recs = records(&ds);
    assert!(all_messages(&recs).iter().any(|m| m == "KeyUpdate"));
    assert!(
        recs.iter()
            .filter(|r| r.encrypted)
            .all(|r| r.decrypted == Some(true))
    );
    assert!(
        recs.iter()
            .any(|r| r.http.as_deref() == Some("HTTP/1.1 200 OK"))
    );
}

#[test]
fn hello_retry_request() {
    // The server only accepts secp384r1; the client's first key share is x25519.
    let mut server = rustls::crypto::ring::default_provider();
    server.kx_groups = vec![rustls::crypto::ring::kx_group::SECP384R1];
    let ex = tls_exchange(Options {
        server_provider: server,
        ..Options::default()
    });
    let mut d = with_secrets(&ex);
    let ds = dissect_all(&mut d, &fetch_packets(&ex, SIZES));
    assert_no_problems(&ds);
    let recs = records(&ds);
    let hrr = recs
        .iter()
        .find(|r| r.message.as_deref() == Some("HelloRetryRequest"))
        .expect("HelloRetryRequest");
    assert_eq!(hrr.group.as_deref(), Some("secp384r1"));
    assert_eq!(
        recs.iter()
            .filter(|r| r.message.as_deref() == Some("ClientHello"))
            .count(),
        2
    );
    let sh = recs
        .iter()
        .find(|r| r.message.as_deref() == Some("ServerHello"))
        .expect("ServerHello");
    assert_eq!(sh.group.as_deref(), Some("secp384r1"));
    assert!(
        recs.iter()
            .filter(|r| r.encrypted)
            .all(|r| r.decrypted == Some(true))
    );
}

#[test]
fn tls12_exchange() {
    let ex = tls_exchange(Options {
        tls12_only: true,
        ..Options::default()
    });
    let mut d = with_secrets(&ex);
    let ds = dissect_all(&mut d, &fetch_packets(&ex, SIZES));
    assert_no_problems(&ds);
    let recs = records(&ds);
    let sh = recs
        .iter()
        .find(|r| r.message.as_deref() == Some("ServerHello"))
        .expect("ServerHello");
    assert_eq!(sh.version_selected.as_deref(), Some("TLSv1.2"));
    let messages = all_messages(&recs);
    for m in [
        "Certificate",
        "ServerKeyExchange",
        "ServerHelloDone",
        "ClientKeyExchange",
    ] {
        assert!(messages.iter().any(|x| x == m), "{m} in {messages:?}");
    }
    // Both Finished messages are the first protected record after each ChangeCipherSpec.
    let finished: Vec<&&TlsRecord> = recs
        .iter()
        .filter(|r| r.encrypted && r.message.as_deref() == Some("Finished"))
        .collect();
    assert_eq!(finished.len(), 2);
    assert!(recs.iter().any(|r| r.encrypted
        && r.record == "application_data"
        && r.inner == Some("application_data")));
    assert!(recs.iter().any(|r| r.record == "alert" && r.encrypted));
}

#[test]
fn retransmitted_segment_is_flagged_and_not_reported_twice() {
    let ex = tls_exchange(Options::default());
    let mut packets = fetch_packets(&ex, SIZES);
    // Repeat a server segment that completes records, right after it.
    let at = {
        let mut probe = with_secrets(&ex);
        let ds = dissect_all(&mut probe, &packets);
        ds.iter()
            .position(|d| d.tls.len() >= 2 && d.tcp.as_ref().is_some_and(|t| t.src_port == 443))
            .expect("a server segment with records")
    };
    let again = packets[at].clone();
    packets.insert(at + 1, again);

    let mut d = with_secrets(&ex);
    let ds = dissect_all(&mut d, &packets);
    let repeat = &ds[at + 1];
    assert_eq!(
        repeat.tcp.as_ref().expect("tcp").analysis,
        vec![TcpAnalysis::Retransmission]
    );
    assert!(repeat.tls.is_empty(), "no duplicate records");
    assert!(
        repeat.summary().ends_with("(retransmission)"),
        "{}",
        repeat.summary()
    );
    assert_eq!(
        records(&ds).len(),
        count_records(&ex, Party::Client) + count_records(&ex, Party::Server)
    );
    assert_no_problems(&ds);
}

#[test]
fn reordered_segments_are_reassembled() {
    let ex = tls_exchange(Options::default());
    let mut packets = fetch_packets(&ex, &[200]);
    // Swap two consecutive server segments in the middle of the server's first flight.
    let first_server_data = packets
        .iter()
        .position(|(dir, p)| *dir == Direction::Rx && p.len() > 100)
        .expect("server data");
    packets.swap(first_server_data + 1, first_server_data + 2);
    let mut d = with_secrets(&ex);
    let ds = dissect_all(&mut d, &packets);
    assert_no_problems(&ds);
    let early = ds[first_server_data + 1].tcp.as_ref().expect("tcp");
    assert_eq!(
        early.analysis,
        vec![TcpAnalysis::PreviousSegmentNotCaptured]
    );
    let late = ds[first_server_data + 2].tcp.as_ref().expect("tcp");
    assert_eq!(late.analysis, vec![TcpAnalysis::OutOfOrder]);
    assert_eq!(
        records(&ds).len(),
        count_records(&ex, Party::Client) + count_records(&ex, Party::Server)
    );
    assert!(
        records(&ds)
            .iter()
            .filter(|r| r.encrypted)
            .all(|r| r.decrypted == Some(true))
    );
}

#[test]
fn handshake_message_fragmented_across_records() {
    let ex = tls_exchange(Options::default());
    // Re-frame the ClientHello message into three records of the same flight.
    let (party, first) = &ex.flights[0];
    assert_eq!(*party, Party::Client);
    let len = u16::from_be_bytes([first[3], first[4]]) as usize;
    let message = &first[5..5 + len];
    let mut reframed = Vec::new();
    for part in [&message[..3], &message[3..100], &message[100..]] {
        reframed.extend_from_slice(&[22, 3, 1]);
        reframed.extend_from_slice(&(part.len() as u16).to_be_bytes());
        reframed.extend_from_slice(part);
    }
    let mut b = common::TcpBuilder::default();
    let mut packets = b.handshake();
    packets.extend(b.data(Party::Client, &reframed, &[1460]));
    let mut d = Dissector::new();
    let ds = dissect_all(&mut d, &packets);
    assert_no_problems(&ds);
    let recs = records(&ds);
    assert_eq!(recs.len(), 3);
    assert!(recs[0].messages.is_empty() && recs[1].messages.is_empty());
    assert_eq!(recs[2].message.as_deref(), Some("ClientHello"));
    assert_eq!(recs[2].sni.as_deref(), Some("www.example.test"));
    let summary = ds.last().expect("packet").summary();
    assert!(
        summary.ends_with(
            " · handshake fragment, handshake fragment, ClientHello sni=www.example.test alpn=http/1.1"
        ),
        "{summary}"
    );
}

#[test]
fn a_record_the_tls_client_already_decrypted_is_shown_from_its_report() {
    let ex = tls_exchange(Options::default());
    let packets = fetch_packets(&ex, SIZES);
    // Where the server's "200 OK" record is in its stream (records counted from its
    // first, the ServerHello's).
    let mut plain = with_secrets(&ex);
    let mut index = 0u64;
    let mut found = None;
    for (dir, p) in &packets {
        let d = plain.dissect(*dir, p);
        if *dir == Direction::Rx {
            for r in &d.tls {
                if r.http.as_deref() == Some("HTTP/1.1 200 OK") {
                    found = Some((index, r.app_len));
                }
                index += 1;
            }
        }
    }
    let (index, app_len) = found.expect("the response record");
    assert!(app_len.is_some_and(|n| n > 7));
    // Told what the client found in that record (here made different, so the output
    // shows which was used), the dissector shows that instead of decrypting it.
    let random: [u8; 32] = ex.secrets[0].1.as_slice().try_into().expect("32 bytes");
    let mut told = with_secrets(&ex);
    told.add_decrypted_record(fetchscope_wire::DecryptedRecord {
        client_random: random,
        index,
        len: 7,
        http: Some("HTTP/1.1 299 Told".into()),
    });
    let ds = dissect_all(&mut told, &packets);
    assert_no_problems(&ds);
    let recs = records(&ds);
    let shown = recs
        .iter()
        .find(|r| r.http.as_deref() == Some("HTTP/1.1 299 Told"))
        .expect("the record as reported");
    assert_eq!(shown.app_len, Some(7));
    assert_eq!(shown.decrypted, Some(true));
    assert_eq!(shown.inner, Some("application_data"));
    // Every other record is decrypted as before, the request among them.
    assert!(
        recs.iter()
            .any(|r| r.http.as_deref() == Some("GET / HTTP/1.1"))
    );
    assert!(
        !recs
            .iter()
            .any(|r| r.http.as_deref() == Some("HTTP/1.1 200 OK"))
    );
    let closes = recs
        .iter()
        .filter(|r| r.alert.as_deref() == Some("close_notify"))
        .count();
    assert_eq!(
        closes, 2,
        "later records still decrypt: the sequence numbers kept count"
    );
}
