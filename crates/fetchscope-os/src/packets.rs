//! [`PacketLog`]: which captured packets are the kernel run's, in which direction, and
//! their `packet` events (decoded, numbered, counted).

use std::net::SocketAddr;
use std::sync::Arc;

use fetchscope_core::event::{PacketEvent, Phase};
use fetchscope_wire::{Direction, Dissector};

use crate::capture::{CapturedPacket, flow_key};

/// The run's flows and the packets seen on them.
#[derive(Default)]
pub struct PacketLog {
    dissector: Dissector,
    /// Every TCP connection of the run (ours, the server's).
    pub flows: Vec<(SocketAddr, SocketAddr)>,
    /// The UDP ports the run's DNS queries leave from.
    pub udp_ports: Vec<u16>,
    numbered: u64,
    /// Packets sent.
    pub tx: u64,
    /// Packets received.
    pub rx: u64,
    /// Packets whose checksum the kernel left to the device (offload) and the capture
    /// computed.
    pub checksums_completed: u64,
}

impl PacketLog {
    /// Learns a TLS secret, to decrypt the packets released after it.
    pub fn add_tls_secret(&mut self, label: &str, client_random: &[u8], secret: &[u8]) {
        self.dissector.add_tls_secret(label, client_random, secret);
    }

    /// The direction of `p` when it belongs to the run (its DNS, its connections, an
    /// ICMP error to this host), else `None`.
    pub fn direction(&self, p: &CapturedPacket) -> Option<Direction> {
        let key = flow_key(&p.data)?;
        let (src, dst) = (
            SocketAddr::new(key.src, key.sport),
            SocketAddr::new(key.dst, key.dport),
        );
        match key.protocol {
            17 if self.udp_ports.contains(&key.sport) => Some(Direction::Tx),
            17 if self.udp_ports.contains(&key.dport) => Some(Direction::Rx),
            6 if self.flows.contains(&(src, dst)) => Some(Direction::Tx),
            6 if self.flows.contains(&(dst, src)) => Some(Direction::Rx),
            1 | 58 => Some(p.dir),
            _ => None,
        }
    }

    /// The `packet` event for `p`, seen in `phase`; `None` when it is not the run's.
    pub fn event(&mut self, p: CapturedPacket, phase: Phase) -> Option<PacketEvent> {
        let dir = self.direction(&p)?;
        let layers = self.dissector.dissect(dir, &p.data);
        match dir {
            Direction::Tx => self.tx += 1,
            Direction::Rx => self.rx += 1,
        }
        if p.checksum_completed {
            self.checksums_completed += 1;
        }
        self.numbered += 1;
        let mut summary = layers.summary();
        if let Some(orig) = p.cut_from {
            summary.push_str(&format!(" (captured {} of {orig} bytes)", p.data.len()));
        }
        Some(PacketEvent {
            dir,
            len: p.cut_from.unwrap_or(p.data.len()),
            phase,
            summary,
            number: self.numbered,
            layers,
            raw: Arc::from(p.data.into_boxed_slice()),
            fault: None,
            recovery: Vec::new(),
        })
    }
}
