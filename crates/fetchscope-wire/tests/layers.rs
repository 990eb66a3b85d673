//! Whole packets built with smoltcp's emitters and hickory-proto messages, through the
//! dissector: DNS over UDP and TCP, ICMP, IPv6, cleartext HTTP, malformed input.

mod common;

use common::{CLIENT, SERVER, ipv4_tcp};
use fetchscope_wire::{Direction, Dissector};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv4DstUnreachable, Icmpv4Packet, Icmpv4Repr, IpAddress, IpProtocol, Ipv4Address, Ipv4Packet,
    Ipv4Repr, Ipv6Address, Ipv6Packet, Ipv6Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
    UdpPacket, UdpRepr,
};

const DNS_SERVER: Ipv4Address = Ipv4Address::new(10, 88, 0, 1);
const STACK: Ipv4Address = Ipv4Address::new(10, 88, 1, 2);

fn udp_packet(src: (Ipv4Address, u16), dst: (Ipv4Address, u16), payload: &[u8]) -> Vec<u8> {
    let udp = UdpRepr {
        src_port: src.1,
        dst_port: dst.1,
    };
    let ip = Ipv4Repr {
        src_addr: src.0,
        dst_addr: dst.0,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + payload.len(),
        hop_limit: 64,
    };
    let mut buf = vec![0u8; ip.buffer_len() + udp.header_len() + payload.len()];
    let caps = ChecksumCapabilities::default();
    let mut packet = Ipv4Packet::new_unchecked(&mut buf);
    ip.emit(&mut packet, &caps);
    udp.emit(
        &mut UdpPacket::new_unchecked(packet.payload_mut()),
        &IpAddress::Ipv4(src.0),
        &IpAddress::Ipv4(dst.0),
        payload.len(),
        |p| p.copy_from_slice(payload),
        &caps,
    );
    buf
}

fn query(id: u16, name: &str) -> Message {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(
        Name::from_ascii(name).expect("name"),
        RecordType::A,
    ));
    msg
}

#[test]
fn dns_over_udp_query_answer_nxdomain() {
    let mut d = Dissector::new();
    let q = query(0x1267, "www.example.test.")
        .to_vec()
        .expect("encodes");
    let packet = udp_packet((STACK, 53124), (DNS_SERVER, 53), &q);
    let qd = d.dissect(Direction::Tx, &packet);
    assert_eq!(qd.summary(), "DNS query 0x1267 A www.example.test");
    let json = serde_json::to_value(&qd).expect("serialises");
    assert_eq!(json["udp"]["src_port"], 53124);
    assert_eq!(json["dns"]["id"], 0x1267);
    assert_eq!(json["dns"]["response"], false);
    assert_eq!(json["dns"]["question"], "www.example.test");
    assert_eq!(json["dns"]["answers"], serde_json::json!([]));

    let mut answer = query(0x1267, "www.example.test.");
    answer.metadata.message_type = MessageType::Response;
    answer.add_answer(Record::from_rdata(
        Name::from_ascii("www.example.test.").expect("name"),
        300,
        RData::A(A::new(10, 88, 0, 1)),
    ));
    let a = answer.to_vec().expect("encodes");
    let ad = d.dissect(
        Direction::Rx,
        &udp_packet((DNS_SERVER, 53), (STACK, 53124), &a),
    );
    assert_eq!(
        ad.summary(),
        "DNS answer 0x1267 A www.example.test → 10.88.0.1 (ttl 300)"
    );
    let json = serde_json::to_value(&ad).expect("serialises");
    assert_eq!(
        json["dns"]["answers"][0],
        serde_json::json!({"name":"www.example.test","type":"A","ttl":300,"data":"10.88.0.1"})
    );

    let mut nx = query(0x1268, "nope.test.");
    nx.metadata.message_type = MessageType::Response;
    nx.metadata.response_code = ResponseCode::NXDomain;
    let nd = d.dissect(
        Direction::Rx,
        &udp_packet(
            (DNS_SERVER, 53),
            (STACK, 53124),
            &nx.to_vec().expect("encodes"),
        ),
    );
    assert_eq!(nd.summary(), "DNS answer 0x1268 NXDOMAIN nope.test");

    let other = d.dissect(
        Direction::Tx,
        &udp_packet((STACK, 4000), (DNS_SERVER, 4001), b"hi"),
    );
    assert_eq!(other.summary(), "UDP 4000 → 4001 len=10");
    assert!(other.dns.is_none());

    let bad = d.dissect(
        Direction::Rx,
        &udp_packet((DNS_SERVER, 53), (STACK, 53124), b"\x12"),
    );
    assert!(
        bad.summary().contains("(malformed DNS: "),
        "{}",
        bad.summary()
    );
}

#[test]
fn icmp_port_unreachable_for_a_late_dns_answer() {
    let header = Ipv4Repr {
        src_addr: DNS_SERVER,
        dst_addr: STACK,
        next_header: IpProtocol::Udp,
        payload_len: 8,
        hop_limit: 64,
    };
    let quoted = [0u8, 53, 0xcf, 0x84, 0, 8, 0, 0];
    let icmp = Icmpv4Repr::DstUnreachable {
        reason: Icmpv4DstUnreachable::PortUnreachable,
        header,
        data: &quoted,
    };
    let ip = Ipv4Repr {
        src_addr: STACK,
        dst_addr: DNS_SERVER,
        next_header: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        hop_limit: 64,
    };
    let mut buf = vec![0u8; ip.buffer_len() + icmp.buffer_len()];
    let caps = ChecksumCapabilities::default();
    let mut packet = Ipv4Packet::new_unchecked(&mut buf);
    ip.emit(&mut packet, &caps);
    icmp.emit(
        &mut Icmpv4Packet::new_unchecked(packet.payload_mut()),
        &caps,
    );
    let d = Dissector::new().dissect(Direction::Tx, &buf);
    assert_eq!(
        d.summary(),
        "ICMP destination unreachable (port unreachable) for UDP 10.88.0.1:53 → 10.88.1.2:53124"
    );
    let json = serde_json::to_value(&d).expect("serialises");
    assert_eq!(json["icmp"]["type"], 3);
    assert_eq!(
        json["icmp"]["name"],
        "destination unreachable (port unreachable)"
    );
    assert_eq!(json["ip"]["protocol"], "icmp");
}

#[test]
fn ipv6_syn() {
    let src = Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
    let dst = Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
    let tcp = TcpRepr {
        src_port: 40000,
        dst_port: 443,
        control: TcpControl::Syn,
        seq_number: TcpSeqNumber(99),
        ack_number: None,
        window_len: 65535,
        window_scale: Some(2),
        max_seg_size: Some(1440),
        sack_permitted: true,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let mut buf = vec![0u8; ip.buffer_len() + tcp.buffer_len()];
    let mut packet = Ipv6Packet::new_unchecked(&mut buf);
    ip.emit(&mut packet);
    tcp.emit(
        &mut TcpPacket::new_unchecked(packet.payload_mut()),
        &IpAddress::Ipv6(src),
        &IpAddress::Ipv6(dst),
        &ChecksumCapabilities::default(),
    );
    let d = Dissector::new().dissect(Direction::Tx, &buf);
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    assert_eq!(
        d.summary(),
        "[SYN] seq=0 win=65535 len=0 mss=1440 ws=2 sack_perm"
    );
    let json = serde_json::to_value(&d).expect("serialises");
    assert_eq!(json["ip"]["version"], 6);
    assert_eq!(json["ip"]["hop_limit"], 64);
    assert!(json["ip"].get("ttl").is_none());
    assert_eq!(json["tcp"]["options"]["mss"], 1440);
}

/// A connection on `port` whose client sends `client` and server sends `server`, each as
/// one segment after the handshake.
fn tcp_conversation(
    port: u16,
    client: &[u8],
    server: &[u8],
    sizes: &[usize],
) -> Vec<(Direction, Vec<u8>)> {
    let mut b = common::TcpBuilder::default();
    let mut packets = b.handshake();
    // Re-target the builder's packets to `port` by building fresh ones with its numbers.
    for (_, p) in &mut packets {
        retarget(p, port);
    }
    for (party, bytes) in [
        (common::Party::Client, client),
        (common::Party::Server, server),
    ] {
        for (dir, mut p) in b.data(party, bytes, sizes) {
            retarget(&mut p, port);
            packets.push((dir, p));
        }
    }
    packets
}

/// Moves the server end of a test packet to `port` and fixes the checksums.
fn retarget(p: &mut [u8], port: u16) {
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut *p);
        let from_server = ip.src_addr() == SERVER.0;
        let mut tcp = TcpPacket::new_unchecked(ip.payload_mut());
        if from_server {
            tcp.set_src_port(port);
        } else {
            tcp.set_dst_port(port);
        }
    }
    common::fix_checksums(p);
}

#[test]
fn cleartext_http_on_port_80() {
    let req = b"GET /index.html HTTP/1.1\r\nHost: www.example.test\r\n\r\n";
    let resp = b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found";
    let mut d = Dissector::new();
    let ds: Vec<_> = tcp_conversation(80, req, resp, &[10])
        .iter()
        .map(|(dir, p)| d.dissect(*dir, p))
        .collect();
    let lines: Vec<&str> = ds
        .iter()
        .filter_map(|d| d.http.as_ref().map(|h| h.line.as_str()))
        .collect();
    assert_eq!(
        lines,
        vec!["GET /index.html HTTP/1.1", "HTTP/1.1 404 Not Found"]
    );
    let get = ds.iter().find(|d| d.http.is_some()).expect("request");
    assert!(
        get.summary().ends_with(" · GET /index.html HTTP/1.1"),
        "{}",
        get.summary()
    );
    assert!(ds.iter().all(|d| d.problems.is_empty()));
}

#[test]
fn dns_over_tcp() {
    let q = query(7, "www.example.test.").to_vec().expect("encodes");
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    let mut d = Dissector::new();
    let ds: Vec<_> = tcp_conversation(53, &framed, b"", &[5])
        .iter()
        .map(|(dir, p)| d.dissect(*dir, p))
        .collect();
    let dns: Vec<_> = ds.iter().filter_map(|d| d.dns.as_ref()).collect();
    assert_eq!(dns.len(), 1);
    assert_eq!(dns[0].question.as_deref(), Some("www.example.test"));
    let last = ds
        .iter()
        .rev()
        .find(|d| d.dns.is_some())
        .expect("dns packet");
    assert!(
        last.summary()
            .ends_with(" · DNS query 0x0007 A www.example.test"),
        "{}",
        last.summary()
    );
}

#[test]
fn malformed_and_corrupted_packets() {
    let mut d = Dissector::new();
    let mut buf = udp_packet((STACK, 1), (DNS_SERVER, 2), b"x");
    buf[0] = 0x43;
    assert_eq!(
        d.dissect(Direction::Tx, &buf).summary(),
        "IPv4 (malformed: header length 3)"
    );
    assert_eq!(
        d.dissect(Direction::Tx, &[]).summary(),
        "IP (malformed: truncated packet: 0 bytes, 1 needed)"
    );
    assert!(
        d.dissect(Direction::Tx, &[0x60, 0, 0])
            .summary()
            .starts_with("IPv6 (malformed: truncated")
    );

    // A corrupted TCP segment: shown, flagged, and kept out of the connection's state.
    let tcp = TcpRepr {
        src_port: CLIENT.1,
        dst_port: SERVER.1,
        control: TcpControl::Syn,
        seq_number: TcpSeqNumber(5),
        ack_number: None,
        window_len: 1000,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let mut syn = ipv4_tcp(CLIENT.0, SERVER.0, &tcp, 1);
    let last = syn.len() - 1;
    syn[last - 2] ^= 0x10; // TCP checksum byte
    let bad = d.dissect(Direction::Tx, &syn);
    assert!(
        bad.summary().contains("(malformed TCP: bad checksum 0x"),
        "{}",
        bad.summary()
    );
    let good = d.dissect(Direction::Tx, &ipv4_tcp(CLIENT.0, SERVER.0, &tcp, 2));
    assert!(
        good.tcp.as_ref().is_some_and(|t| t.analysis.is_empty()),
        "the corrupted SYN was not counted"
    );
}

/// A packet the stack never got (fault injection dropped it on its way in) is decoded
/// with the connection's numbering, and teaches the dissector nothing; the dissector's
/// sequence space is the client's view of the same packets.
#[test]
fn an_unreceived_segment_is_numbered_like_the_others_and_learns_nothing() {
    use common::{CLIENT_ISN, Party, SERVER_ISN, TcpBuilder};
    use std::net::{IpAddr, SocketAddr};
    let ours = SocketAddr::new(IpAddr::from(CLIENT.0.octets()), CLIENT.1);
    let peer = SocketAddr::new(IpAddr::from(SERVER.0.octets()), SERVER.1);
    let mut b = TcpBuilder::default();
    let mut d = Dissector::new();
    let hs = b.handshake();
    // The SYN-ACK dropped before the stack saw it: the server's numbering starts there.
    d.dissect(hs[0].0, &hs[0].1);
    let lost = d.dissect_unreceived(&hs[1].1);
    let t = lost.tcp.expect("a TCP layer");
    assert_eq!((t.seq, t.ack, t.seq_raw), (0, 1, SERVER_ISN));
    assert!(t.analysis.is_empty());
    let s = d.tcp_space(ours, peer).expect("the connection");
    assert_eq!((s.iss, s.irs), (Some(CLIENT_ISN), None), "nothing learned");
    // The retransmitted SYN-ACK arrives; then data that is lost on its way in.
    d.dissect(hs[1].0, &hs[1].1);
    d.dissect(hs[2].0, &hs[2].1);
    let (_, data) = b.segment(Party::Server, b"hello");
    let lost = d.dissect_unreceived(&data);
    let t = lost.tcp.expect("a TCP layer");
    assert_eq!((t.seq, t.ack), (1, 1));
    assert_eq!(
        t.win_scaled,
        Some(u32::from(t.win) << 7),
        "scaled as the SYNs agreed"
    );
    assert!(lost.tls.is_empty() && lost.http.is_none());
    let s = d.tcp_space(ours, peer).expect("the connection");
    assert_eq!(s.rx_data_end, None, "the lost data is not counted");
    assert_eq!(s.rel_remote(s.rcv_nxt), Some(1));
    assert_eq!(
        (s.irs, s.in_flight(), s.our_mss),
        (Some(SERVER_ISN), 0, Some(1460))
    );
    // The mirror image, from the server's end.
    let p = d.tcp_space(peer, ours).expect("the connection");
    assert_eq!((p.iss, p.irs), (Some(SERVER_ISN), Some(CLIENT_ISN)));
}
