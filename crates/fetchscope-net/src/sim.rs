//! [`SimWire`]: one direction of the built-in lab's in-memory wire, on a virtual clock.

use std::collections::VecDeque;

use smoltcp::time::{Duration, Instant};

/// The shape of a simulated wire: how long a packet travels and how fast bits go on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireConfig {
    /// One-way propagation delay.
    pub latency: Duration,
    /// Bits per second a packet is clocked onto the wire at (0 = infinitely fast).
    pub rate_bps: u64,
}

impl Default for WireConfig {
    /// 5 ms one way (a 10 ms round trip) at 100 Mbit/s.
    fn default() -> Self {
        WireConfig {
            latency: Duration::from_millis(5),
            rate_bps: 100_000_000,
        }
    }
}

/// One direction of a simulated wire: packets leave one after another at the wire's rate
/// and arrive `latency` later, in order.
#[derive(Debug)]
pub struct SimWire {
    config: WireConfig,
    busy_until: Instant,
    in_flight: VecDeque<(Instant, Vec<u8>)>,
}

impl SimWire {
    /// An idle wire.
    pub fn new(config: WireConfig) -> Self {
        SimWire {
            config,
            busy_until: Instant::ZERO,
            in_flight: VecDeque::new(),
        }
    }

    /// The wire's shape.
    pub fn config(&self) -> WireConfig {
        self.config
    }

    /// How long `len` bytes take to be clocked onto the wire.
    pub fn serialization_time(&self, len: usize) -> Duration {
        if self.config.rate_bps == 0 {
            return Duration::ZERO;
        }
        let bits = len as u64 * 8;
        Duration::from_micros((bits * 1_000_000).div_ceil(self.config.rate_bps))
    }

    /// Puts a packet on the wire at `now`; returns when its last bit has left.
    pub fn send(&mut self, now: Instant, packet: Vec<u8>) -> Instant {
        let start = if self.busy_until > now {
            self.busy_until
        } else {
            now
        };
        let done = start + self.serialization_time(packet.len());
        self.busy_until = done;
        self.in_flight
            .push_back((done + self.config.latency, packet));
        done
    }

    /// Puts a packet on the wire that arrives exactly at `arrival` (for fault injection
    /// that reorders or delays); keeps the queue sorted by arrival time.
    pub fn send_arriving_at(&mut self, arrival: Instant, packet: Vec<u8>) {
        let pos = self
            .in_flight
            .iter()
            .position(|(t, _)| *t > arrival)
            .unwrap_or(self.in_flight.len());
        self.in_flight.insert(pos, (arrival, packet));
    }

    /// When the next packet arrives at the far end, if one is in flight.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.in_flight.front().map(|(t, _)| *t)
    }

    /// Takes the next packet that has arrived by `now`.
    pub fn pop_arrived(&mut self, now: Instant) -> Option<Vec<u8>> {
        match self.in_flight.front() {
            Some((t, _)) if *t <= now => self.in_flight.pop_front().map(|(_, p)| p),
            _ => None,
        }
    }

    /// Packets in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_arrive_in_order_after_latency_and_serialization() {
        let mut w = SimWire::new(WireConfig {
            latency: Duration::from_millis(5),
            rate_bps: 8_000_000, // 1 byte per µs
        });
        let t0 = Instant::from_millis(10);
        assert_eq!(w.send(t0, vec![0; 100]), t0 + Duration::from_micros(100));
        // the second packet queues behind the first
        assert_eq!(w.send(t0, vec![1; 50]), t0 + Duration::from_micros(150));
        assert_eq!(w.next_arrival(), Some(t0 + Duration::from_micros(5100)));
        assert_eq!(w.pop_arrived(t0 + Duration::from_micros(5099)), None);
        let first = w.pop_arrived(t0 + Duration::from_micros(5100)).unwrap();
        assert_eq!(first.len(), 100);
        assert_eq!(w.pop_arrived(t0 + Duration::from_millis(6)).unwrap()[0], 1);
        assert_eq!(w.in_flight(), 0);
    }

    #[test]
    fn zero_rate_means_no_serialization_delay() {
        let w = SimWire::new(WireConfig {
            latency: Duration::ZERO,
            rate_bps: 0,
        });
        assert_eq!(w.serialization_time(1500), Duration::ZERO);
    }

    #[test]
    fn send_arriving_at_keeps_arrival_order() {
        let mut w = SimWire::new(WireConfig::default());
        w.send_arriving_at(Instant::from_millis(20), vec![2]);
        w.send_arriving_at(Instant::from_millis(10), vec![1]);
        assert_eq!(w.pop_arrived(Instant::from_millis(30)).unwrap(), vec![1]);
        assert_eq!(w.pop_arrived(Instant::from_millis(30)).unwrap(), vec![2]);
    }
}
