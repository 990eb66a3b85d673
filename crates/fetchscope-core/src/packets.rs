//! [`PacketPipeline`]: what every packet of a run goes through, whichever stack carried
//! it — decoded by the dissector (whose one TCP tracker numbers the sequence space and
//! analyses it), numbered in the order the trace shows it, and made a [`PacketEvent`].

use std::net::SocketAddr;

use fetchscope_wire::{Direction, Dissection, Dissector, TcpSpace};

use crate::event::{PacketEvent, Phase};
use crate::fault::LinkFault;
use crate::recovery::Recovery;
use crate::tls::TlsSecret;

/// The dissector of a run and the numbering of its packets.
#[derive(Debug, Default)]
pub struct PacketPipeline {
    dissector: Dissector,
    numbered: u64,
    /// Every secret learned, as NSS key log lines (for `--keylog` and pcapng).
    key_log: String,
}

impl PacketPipeline {
    /// A pipeline that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Learns TLS secrets (the session's, as it hands them over): the records of their
    /// connection are decrypted from then on, and the key log holds them.
    pub fn learn_secrets(&mut self, secrets: Vec<TlsSecret>) {
        for s in secrets {
            self.dissector
                .add_tls_secret(&s.label, &s.client_random, &s.secret);
            self.key_log.push_str(&s.key_log_line());
            self.key_log.push('\n');
        }
    }

    /// Learns the records the TLS client decrypted, so decoding shows them without
    /// decrypting them again.
    pub fn learn_decrypted(&mut self, records: Vec<fetchscope_wire::DecryptedRecord>) {
        for r in records {
            self.dissector.add_decrypted_record(r);
        }
    }

    /// Learns NSS key log text (a key log file, a pcapng Decryption Secrets Block): the
    /// records of its connections are decrypted from then on, and the key log holds it.
    /// Returns the lines learned and the lines not understood.
    pub fn learn_key_log_text(&mut self, text: &str) -> (usize, usize) {
        let (learned, skipped) = self.dissector.add_key_log_text(text);
        if learned > 0 {
            self.key_log = self.dissector.key_log();
        }
        (learned, skipped)
    }

    /// Collects each packet's application bytes into `Dissection::app_data` (replay).
    pub fn keep_app_data(&mut self, on: bool) {
        self.dissector.keep_app_data(on);
    }

    /// The secrets learned so far, as an NSS key log.
    pub fn key_log(&self) -> &str {
        &self.key_log
    }

    /// Decodes a packet that crossed the device going `dir`, learning from it; its time
    /// not known (the TCP analysis then goes by the holes it saw, see
    /// [`PacketPipeline::decode_at`]).
    pub fn decode(&mut self, dir: Direction, packet: &[u8]) -> Dissection {
        self.dissector.dissect(dir, packet)
    }

    /// Decodes a packet that crossed the device going `dir` at `t_us` microseconds (any
    /// clock the run's packets share), learning from it: the TCP analysis follows
    /// Wireshark's, timing rules included (out of order or sent again, fast
    /// retransmission).
    pub fn decode_at(&mut self, dir: Direction, packet: &[u8], t_us: u64) -> Dissection {
        self.dissector.dissect_at(dir, packet, t_us)
    }

    /// Decodes a received packet that never reached the stack, learning nothing.
    pub fn decode_unreceived(&self, packet: &[u8]) -> Dissection {
        self.dissector.dissect_unreceived(packet)
    }

    /// The sequence space of the connection `ours` ↔ `peer` as `ours` sees it.
    pub fn tcp_space(&self, ours: SocketAddr, peer: SocketAddr) -> Option<TcpSpace> {
        self.dissector.tcp_space(ours, peer)
    }

    /// The next `packet` event: `raw` went `dir` in `phase`, decoded as `layers`, with
    /// what fault injection did to it and the recovery it shows.
    pub fn event(
        &mut self,
        dir: Direction,
        raw: impl Into<bytes::Bytes>,
        phase: Phase,
        layers: Dissection,
        fault: Option<LinkFault>,
        recovery: Vec<Recovery>,
    ) -> PacketEvent {
        self.numbered += 1;
        let raw = raw.into();
        PacketEvent {
            dir,
            len: raw.len(),
            phase,
            summary: layers.summary(),
            number: self.numbered,
            layers,
            raw,
            fault,
            recovery,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_are_numbered_in_the_order_they_are_made_events() {
        let mut p = PacketPipeline::new();
        // Not an IP packet: decoded as a problem, still shown (and numbered).
        let junk = vec![0x00, 0x01];
        let layers = p.decode(Direction::Rx, &junk);
        assert!(!layers.problems.is_empty());
        let a = p.event(
            Direction::Rx,
            junk,
            Phase::Resolve,
            layers,
            None,
            Vec::new(),
        );
        let b = p.event(
            Direction::Tx,
            vec![0x45],
            Phase::Connect,
            Dissection::default(),
            None,
            Vec::new(),
        );
        assert_eq!((a.number, a.len, a.phase), (1, 2, Phase::Resolve));
        assert_eq!((b.number, b.dir), (2, Direction::Tx));
        assert_eq!(&*a.raw, &[0x00, 0x01]);
        let ours: SocketAddr = "10.88.1.2:50000".parse().unwrap();
        let peer: SocketAddr = "10.88.0.1:443".parse().unwrap();
        assert!(p.tcp_space(ours, peer).is_none(), "no TCP seen");
    }
}
