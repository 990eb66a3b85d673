//! No byte string makes the dissector panic or grow without bound.

mod common;

use std::time::{Duration, Instant};

use common::{Options, Party, TcpBuilder, fetch_packets, fix_checksums, tls_exchange};
use fetchscope_wire::{DecodeProblem, Direction, Dissector};

/// Upper bound of `Dissector::buffered_bytes` for one connection: both directions'
/// out-of-order buffers (256 KiB each) plus, per direction, a record or head and a
/// handshake message (128 KiB), plus one segment.
const PER_CONNECTION_BOUND: usize = 2 * (256 + 128 + 64 + 64) * 1024;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn mutate(rng: &mut Rng, packet: &[u8]) -> Vec<u8> {
    let mut p = packet.to_vec();
    match rng.below(7) {
        0 => {
            for _ in 0..=rng.below(8) {
                if !p.is_empty() {
                    let i = rng.below(p.len());
                    p[i] ^= 1 << rng.below(8);
                }
            }
        }
        1 => p.truncate(rng.below(p.len() + 1)),
        2 => {
            let at = rng.below(p.len() + 1);
            let n = rng.below(64);
            let extra = rng.bytes(n);
            p.splice(at..at, extra);
        }
        3 => {
            // Overwrite a header byte (IP or transport) with anything.
            if !p.is_empty() {
                let i = rng.below(p.len().min(60));
                p[i] = rng.next() as u8;
            }
        }
        4 => {
            // Scribble over the payload, keeping the headers valid.
            if p.len() > 60 {
                let from = 40 + rng.below(p.len() - 40);
                let to = (from + rng.below(32)).min(p.len());
                let noise = rng.bytes(to - from);
                p[from..to].copy_from_slice(&noise);
            }
        }
        5 => {
            let at = rng.below(p.len() + 1);
            let len = rng.below(p.len() - at + 1);
            p.drain(at..at + len);
        }
        _ => {
            let n = rng.below(1600);
            p = rng.bytes(n);
            if let Some(b) = p.first_mut() {
                *b = if rng.below(2) == 0 { 0x45 } else { 0x60 };
            }
        }
    }
    if rng.below(2) == 0 {
        fix_checksums(&mut p);
    }
    p
}

#[test]
fn mutated_and_random_packets_never_panic() {
    let ex = tls_exchange(Options::default());
    let mut corpus: Vec<(Direction, Vec<u8>)> = fetch_packets(&ex, &[100, 7, 1460, 1, 300]);
    corpus.extend(fetch_packets(&ex, &[65000]));
    let mut d = Dissector::new();
    for (label, random, secret) in &ex.secrets {
        d.add_tls_secret(label, random, secret);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut done = 0;
    while done < 40_000 && Instant::now() < deadline {
        let (dir, base) = &corpus[rng.below(corpus.len())];
        let packet = mutate(&mut rng, base);
        let dissection = d.dissect(*dir, &packet);
        let summary = dissection.summary();
        assert!(!summary.is_empty());
        serde_json::to_string(&dissection).expect("always serialisable");
        // Interleave untouched packets so connections keep state worth breaking.
        if rng.below(3) == 0 {
            let (dir, p) = &corpus[rng.below(corpus.len())];
            d.dissect(*dir, p);
        }
        done += 1;
        assert!(d.connections() <= 64);
        assert!(d.buffered_bytes() <= 64 * PER_CONNECTION_BOUND);
    }
    assert!(done >= 1_000, "only {done} packets in the time budget");
}

#[test]
fn every_prefix_of_every_packet() {
    let ex = tls_exchange(Options::default());
    let corpus = fetch_packets(&ex, &[65000]);
    let mut d = Dissector::new();
    for (dir, p) in &corpus {
        for len in 0..=p.len() {
            let _ = d.dissect(*dir, &p[..len]).summary();
        }
    }
}

/// A connection to `port` after a real handshake, then `chunks` from the server, in order.
fn endless(port: u16, mut chunk: impl FnMut(usize) -> Vec<u8>, total: usize) -> Dissector {
    let mut d = Dissector::new();
    let mut b = TcpBuilder::default();
    for (dir, mut p) in b.handshake() {
        set_server_port(&mut p, port);
        d.dissect(dir, &p);
    }
    let mut sent = 0;
    let mut i = 0;
    let mut peak = 0;
    while sent < total {
        let bytes = chunk(i);
        i += 1;
        sent += bytes.len();
        let (dir, mut p) = b.segment(Party::Server, &bytes);
        set_server_port(&mut p, port);
        let _ = d.dissect(dir, &p).summary();
        peak = peak.max(d.buffered_bytes());
    }
    assert!(peak <= PER_CONNECTION_BOUND, "peak {peak}");
    d
}

fn set_server_port(p: &mut [u8], port: u16) {
    use smoltcp::wire::{Ipv4Packet, TcpPacket};
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut *p);
        let from_server = ip.src_addr() == common::SERVER.0;
        let mut tcp = TcpPacket::new_unchecked(ip.payload_mut());
        if from_server {
            tcp.set_src_port(port);
        } else {
            tcp.set_dst_port(port);
        }
    }
    fix_checksums(p);
}

#[test]
fn endless_garbage_stays_bounded() {
    let mut rng = Rng(42);
    // Random bytes on a TLS port.
    let d = endless(443, |_| rng.bytes(1400), 8 << 20);
    assert!(d.buffered_bytes() < 20_000);

    // Well-formed record headers with endless random bodies.
    let d = endless(
        443,
        |_| {
            let mut r = vec![23, 3, 3, 0x40, 0x00];
            r.extend(std::iter::repeat_n(0xab, 0x4000));
            r
        },
        8 << 20,
    );
    assert!(d.buffered_bytes() < 40_000);

    // A handshake message that never ends.
    let d = endless(
        443,
        |i| {
            let mut body = if i == 0 {
                vec![11, 0x01, 0xff, 0x00]
            } else {
                vec![]
            };
            body.extend(std::iter::repeat_n(0, 16_000));
            let mut r = vec![22, 3, 3];
            r.extend_from_slice(&(body.len() as u16).to_be_bytes());
            r.extend(body);
            r
        },
        4 << 20,
    );
    assert!(d.buffered_bytes() <= 128 * 1024 + 40_000);

    // An HTTP head that never ends.
    let d = endless(
        80,
        |i| {
            if i == 0 {
                b"HTTP/1.1 200 OK\r\nX: ".to_vec()
            } else {
                vec![b'a'; 1400]
            }
        },
        4 << 20,
    );
    assert!(d.buffered_bytes() < 80_000);

    // DNS over TCP announcing maximal messages forever.
    let d = endless(53, |_| vec![0xff; 1400], 4 << 20);
    assert!(d.buffered_bytes() < 70_000);
}

#[test]
fn segments_far_ahead_are_bounded_and_reported_as_a_gap() {
    let mut d = Dissector::new();
    let mut b = TcpBuilder::default();
    for (dir, p) in b.handshake() {
        d.dissect(dir, &p);
    }
    // The first server byte never arrives; everything after it does.
    b.server_next = b.server_next.wrapping_add(1);
    let mut gaps = 0;
    // More than the 1 MiB + 64 KiB (or 2048 segments) held ahead of a hole.
    for _ in 0..2400 {
        let (dir, p) = b.segment(Party::Server, &[0x17; 1000]);
        let one = d.dissect(dir, &p);
        gaps += one
            .problems
            .iter()
            .filter(|p| matches!(p, DecodeProblem::StreamGap { .. }))
            .count();
        assert!(d.buffered_bytes() <= 1024 * 1024 + 64 * 1024 + 20_000);
    }
    assert_eq!(gaps, 1, "one gap note, then the direction stops decoding");
}

#[test]
fn many_connections_are_bounded() {
    let mut d = Dissector::new();
    let mut rng = Rng(7);
    for i in 0..1000u16 {
        let mut b = TcpBuilder::default();
        for (dir, mut p) in b.handshake() {
            set_server_port(&mut p, 1000 + i);
            d.dissect(dir, &p);
        }
        let (dir, mut p) = b.segment(Party::Server, &rng.bytes(500));
        set_server_port(&mut p, 1000 + i);
        d.dissect(dir, &p);
    }
    assert_eq!(d.connections(), 64);
}
