//! [`PacketLog`]: which captured packets are the kernel run's, in which direction, and
//! their `packet` events (through the core's [`PacketPipeline`], counted).

use std::net::SocketAddr;

use fetchscope_core::event::{PacketEvent, Phase};
use fetchscope_core::packets::PacketPipeline;
use fetchscope_wire::Direction;

use crate::capture::{CapturedPacket, flow_key};

/// The run's flows and the packets seen on them.
#[derive(Default)]
pub struct PacketLog {
    /// Decoding and numbering, as on the other stack (and the key log).
    pub pipeline: PacketPipeline,
    /// Every TCP connection of the run (ours, the server's).
    pub flows: Vec<(SocketAddr, SocketAddr)>,
    /// The UDP ports the run's DNS queries leave from.
    pub udp_ports: Vec<u16>,
    /// Packets sent.
    pub tx: u64,
    /// Packets received.
    pub rx: u64,
    /// Packets whose checksum the kernel left to the device (offload) and the capture
    /// computed.
    pub checksums_completed: u64,
}

impl PacketLog {
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
        let t_us = u64::try_from(p.stamp.as_micros()).unwrap_or(u64::MAX);
        let layers = self.pipeline.decode_at(dir, &p.data, t_us);
        match dir {
            Direction::Tx => self.tx += 1,
            Direction::Rx => self.rx += 1,
        }
        if p.checksum_completed {
            self.checksums_completed += 1;
        }
        let captured = p.data.len();
        let mut ev = self
            .pipeline
            .event(dir, p.data, phase, layers, None, Vec::new());
        if let Some(orig) = p.cut_from {
            ev.len = orig;
            ev.summary
                .push_str(&format!(" (captured {captured} of {orig} bytes)"));
        }
        Some(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// An IPv4 packet from `src` to `dst` carrying protocol `proto` with these ports and
    /// `payload` bytes after an 8-byte (UDP) or 20-byte (TCP) header, checksums left 0.
    fn packet(proto: u8, src: SocketAddr, dst: SocketAddr, dir: Direction) -> CapturedPacket {
        let l4 = if proto == 6 { 20 } else { 8 };
        let mut p = vec![0u8; 20 + l4];
        p[0] = 0x45;
        let total = u16::try_from(p.len()).unwrap();
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[8] = 64;
        p[9] = proto;
        let (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
            panic!("IPv4 only here");
        };
        p[12..16].copy_from_slice(&s.octets());
        p[16..20].copy_from_slice(&d.octets());
        p[20..22].copy_from_slice(&src.port().to_be_bytes());
        p[22..24].copy_from_slice(&dst.port().to_be_bytes());
        if proto == 6 {
            p[32] = 0x50; // data offset: 5 words
            p[33] = 0x10; // ACK
        } else {
            p[24..26].copy_from_slice(&8u16.to_be_bytes());
        }
        CapturedPacket {
            stamp: Duration::ZERO,
            dir,
            ifindex: 1,
            data: p,
            cut_from: None,
            checksum_completed: false,
        }
    }

    #[test]
    fn only_the_runs_own_flows_are_kept_each_with_its_direction() {
        let us: SocketAddr = "10.88.1.2:50000".parse().unwrap();
        let server: SocketAddr = "10.88.0.1:443".parse().unwrap();
        let dns_server: SocketAddr = "10.88.0.1:53".parse().unwrap();
        let dns_port: SocketAddr = "10.88.1.2:40000".parse().unwrap();
        let mut log = PacketLog {
            flows: vec![(us, server)],
            udp_ports: vec![40000],
            ..PacketLog::default()
        };
        // The capture's own idea of the direction is not trusted for TCP and UDP.
        let out = packet(6, us, server, Direction::Rx);
        assert_eq!(log.direction(&out), Some(Direction::Tx));
        let back = packet(6, server, us, Direction::Tx);
        assert_eq!(log.direction(&back), Some(Direction::Rx));
        let query = packet(17, dns_port, dns_server, Direction::Rx);
        assert_eq!(log.direction(&query), Some(Direction::Tx));
        let answer = packet(17, dns_server, dns_port, Direction::Tx);
        assert_eq!(log.direction(&answer), Some(Direction::Rx));
        // Another process's connection to the same server is not the run's.
        let other: SocketAddr = "10.88.1.2:50001".parse().unwrap();
        assert_eq!(
            log.direction(&packet(6, other, server, Direction::Tx)),
            None
        );
        assert!(
            log.event(packet(6, other, server, Direction::Tx), Phase::Connect)
                .is_none()
        );
        // Events are numbered in the order released, and counted by direction.
        let a = log.event(out, Phase::Connect).expect("ours");
        let b = log.event(back, Phase::Tls).expect("ours");
        assert_eq!(
            (a.number, a.dir, a.phase),
            (1, Direction::Tx, Phase::Connect)
        );
        assert_eq!((b.number, b.dir, b.phase), (2, Direction::Rx, Phase::Tls));
        assert_eq!((log.tx, log.rx), (1, 1));
        assert_eq!(a.layers.tcp.map(|t| t.src_port), Some(50000));
    }
}
