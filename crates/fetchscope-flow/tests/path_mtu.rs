//! Path-MTU discovery in the built-in lab: a router between the stack and the lab whose
//! next hop carries at most 1280 bytes answers every larger IPv4 packet with
//! don't-fragment set with ICMP "fragmentation needed (mtu 1280)" instead of forwarding
//! it. A request of over 5 KB still arrives: the stack lowers its segment size and says
//! so in the trace.

use std::collections::VecDeque;
use std::sync::Arc;

use fetchscope_core::EventKind;

use fetchscope_core::Randomness;
use fetchscope_flow::{Fetch, FetchConfig};
use fetchscope_lab::{Lab, LabConfig};
use fetchscope_net::{Link, LinkError, WaitOutcome};
use smoltcp::time::Instant;
use smoltcp::wire::{Icmpv4Packet, Ipv4Packet};

/// The narrow hop's MTU.
const PATH_MTU: usize = 1280;
/// The router's address (the lab's gateway for the stack).
const ROUTER: [u8; 4] = [10, 88, 1, 1];

/// A [`Link`] that stands for a router with a narrow next hop in front of `inner`.
struct NarrowPath<L> {
    inner: L,
    /// ICMP messages for the stack, handed out before the inner link's packets.
    icmp: VecDeque<Vec<u8>>,
    /// Packets the router refused.
    refused: usize,
}

/// The ICMP "fragmentation needed" a router sends about `packet` (RFC 792: the IP header
/// and the first 8 bytes of its payload quoted), from [`ROUTER`] to its source.
fn fragmentation_needed(packet: &[u8]) -> Vec<u8> {
    let header = usize::from(packet[0] & 0x0f) * 4;
    let quoted = &packet[..(header + 8).min(packet.len())];
    let mut icmp = vec![3u8, 4, 0, 0, 0, 0];
    icmp.extend_from_slice(&(PATH_MTU as u16).to_be_bytes());
    icmp.extend_from_slice(quoted);
    Icmpv4Packet::new_unchecked(&mut icmp[..]).fill_checksum();
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
    ip.extend_from_slice(&ROUTER);
    ip.extend_from_slice(&packet[12..16]);
    let total = (ip.len() + icmp.len()) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&icmp);
    Ipv4Packet::new_unchecked(&mut ip[..]).fill_checksum();
    ip
}

impl<L: Link> Link for NarrowPath<L> {
    fn now(&self) -> Instant {
        self.inner.now()
    }
    fn send(&mut self, packet: &[u8]) -> Result<(), LinkError> {
        let ipv4_df = packet.first().is_some_and(|b| b >> 4 == 4)
            && packet.get(6).is_some_and(|b| b & 0x40 != 0);
        if ipv4_df && packet.len() > PATH_MTU {
            self.refused += 1;
            self.icmp.push_back(fragmentation_needed(packet));
            return Ok(());
        }
        self.inner.send(packet)
    }
    fn recv(&mut self) -> Result<Option<fetchscope_net::Bytes>, LinkError> {
        match self.icmp.pop_front() {
            Some(p) => Ok(Some(fetchscope_net::Bytes::from(p))),
            None => self.inner.recv(),
        }
    }
    fn wait(&mut self, deadline: Option<Instant>) -> Result<WaitOutcome, LinkError> {
        if !self.icmp.is_empty() {
            return Ok(WaitOutcome::Ready);
        }
        self.inner.wait(deadline)
    }
    fn mtu(&self) -> usize {
        self.inner.mtu()
    }
    fn describe(&self) -> String {
        format!("{} behind a {PATH_MTU}-byte hop", self.inner.describe())
    }
    fn is_virtual(&self) -> bool {
        self.inner.is_virtual()
    }
}

#[test]
fn a_large_request_arrives_over_a_narrow_path() {
    let randomness = Randomness::new(Some(11));
    let lab = Lab::new(LabConfig {
        randomness,
        ..LabConfig::default()
    })
    .expect("lab");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(lab.ca_certificate()).expect("lab CA");
    let url =
        url::Url::parse(&format!("https://www.example.test/?x={}", "a".repeat(5000))).expect("url");
    let mut cfg = FetchConfig::new(url, vec![lab.client_cidr()], Arc::new(roots));
    cfg.gateways = vec![lab.client_gateway()];
    cfg.spec.dns_servers = vec![lab.dns_server()];
    cfg.spec.randomness = randomness;
    cfg.epoch = lab.epoch();
    let link = NarrowPath {
        inner: lab,
        icmp: VecDeque::new(),
        refused: 0,
    };
    let mut fetch = Fetch::new(cfg, link).expect("fetch");
    let mut notes = Vec::new();
    let mut too_big_after_note = Vec::new();
    let mut icmp_seen = 0;
    while let Some(event) = fetch.next_event() {
        match &event.kind {
            EventKind::Note { text } if text.starts_with("path MTU") => notes.push(text.clone()),
            EventKind::Packet(p) => {
                if p.layers.icmp.as_ref().is_some_and(|i| i.mtu == Some(1280)) {
                    icmp_seen += 1;
                }
                if !notes.is_empty() && p.dir == fetchscope_net::Direction::Tx && p.len > PATH_MTU {
                    too_big_after_note.push(p.number);
                }
            }
            _ => {}
        }
    }
    let result = fetch.result().expect("finished");
    let summary = match result {
        Ok(s) => s,
        Err(e) => panic!("the fetch failed: {e}"),
    };
    assert!(summary.status > 0, "an HTTP response arrived");
    assert!(fetch.link().refused >= 1, "the router refused a packet");
    assert!(icmp_seen >= 1, "the ICMP is in the trace");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("path MTU to 10.88.0.1 is 1280 bytes")
            && notes[0].contains("segments now at most 1240 bytes"),
        "{}",
        notes[0]
    );
    assert!(
        too_big_after_note.is_empty(),
        "packets over {PATH_MTU} bytes after the note: {too_big_after_note:?}"
    );
}
