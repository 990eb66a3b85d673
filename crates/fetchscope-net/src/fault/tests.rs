//! Tests of [`FaultLink`] over a small virtual link.

use std::collections::VecDeque;

use super::*;

/// A virtual link: what is sent comes back (as if echoed by a peer) after `latency`, and
/// packets can be injected for the stack at given times. The clock moves only in `wait`.
#[derive(Debug)]
struct Echo {
    clock: Instant,
    latency: Duration,
    /// Packets in flight to the stack, by arrival time.
    to_stack: VecDeque<(Instant, Vec<u8>)>,
    /// Everything that left towards the peer, with its time.
    sent: Vec<(Instant, Vec<u8>)>,
    echo: bool,
}

impl Echo {
    fn new(latency_ms: u64, echo: bool) -> Self {
        Echo {
            clock: Instant::ZERO,
            latency: Duration::from_millis(latency_ms),
            to_stack: VecDeque::new(),
            sent: Vec::new(),
            echo,
        }
    }

    fn inject(&mut self, at: Instant, data: Vec<u8>) {
        let pos = self
            .to_stack
            .iter()
            .position(|(t, _)| *t > at)
            .unwrap_or(self.to_stack.len());
        self.to_stack.insert(pos, (at, data));
    }
}

impl Link for Echo {
    fn now(&self) -> Instant {
        self.clock
    }
    fn send(&mut self, packet: &[u8]) -> Result<(), LinkError> {
        self.sent.push((self.clock, packet.to_vec()));
        if self.echo {
            let at = self.clock + self.latency;
            self.inject(at, packet.to_vec());
        }
        Ok(())
    }
    fn recv(&mut self) -> Result<Option<bytes::Bytes>, LinkError> {
        match self.to_stack.front() {
            Some((t, _)) if *t <= self.clock => Ok(self
                .to_stack
                .pop_front()
                .map(|(_, p)| bytes::Bytes::from(p))),
            _ => Ok(None),
        }
    }
    fn wait(&mut self, deadline: Option<Instant>) -> Result<WaitOutcome, LinkError> {
        let next = self.to_stack.front().map(|(t, _)| *t);
        match (next, deadline) {
            (Some(n), d) if d.is_none_or(|d| n <= d) => {
                self.clock = self.clock.max(n);
                Ok(WaitOutcome::Ready)
            }
            (_, Some(d)) => {
                self.clock = self.clock.max(d);
                Ok(WaitOutcome::Deadline)
            }
            (None, None) => Ok(WaitOutcome::Idle),
            (Some(_), None) => unreachable!("covered above"),
        }
    }
    fn mtu(&self) -> usize {
        1500
    }
    fn describe(&self) -> String {
        "echo".to_string()
    }
    fn is_virtual(&self) -> bool {
        true
    }
}

fn link(cfg: FaultConfig, inner: Echo) -> FaultLink<Echo> {
    FaultLink::new(inner, cfg, &Randomness::new(Some(7))).expect("valid config")
}

fn packet(n: u8) -> Vec<u8> {
    vec![n; 100]
}

/// Waits and receives until the link is idle or `limit` is reached; every packet with
/// its time and fault.
fn drain(l: &mut FaultLink<Echo>, limit: Instant) -> Vec<(Instant, Vec<u8>, Option<LinkFault>)> {
    let mut out = Vec::new();
    for _ in 0..10_000 {
        while let Some(p) = l.recv().expect("recv") {
            out.push((l.now(), p.to_vec(), l.last_fault()));
        }
        match l.wait(Some(limit)).expect("wait") {
            WaitOutcome::Ready => {}
            WaitOutcome::Deadline | WaitOutcome::Idle => {
                while let Some(p) = l.recv().expect("recv") {
                    out.push((l.now(), p.to_vec(), l.last_fault()));
                }
                if l.now() >= limit {
                    break;
                }
            }
        }
    }
    out
}

#[test]
fn a_configuration_out_of_range_is_refused() {
    let bad = FaultConfig {
        loss: 150.0,
        ..FaultConfig::default()
    };
    assert!(FaultLink::new(Echo::new(0, false), bad, &Randomness::new(None)).is_err());
}

#[test]
fn a_plain_link_passes_everything_untouched() {
    let mut l = link(FaultConfig::default(), Echo::new(5, true));
    l.send(&packet(1)).unwrap();
    assert_eq!(l.last_fault(), None);
    let got = drain(&mut l, Instant::from_millis(100));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, Instant::from_millis(5));
    assert_eq!(got[0].2, None);
    assert!(l.take_dropped().is_empty());
}

#[test]
fn sent_packets_lost_are_reported_and_never_leave() {
    let cfg = FaultConfig {
        loss: 100.0,
        directions: FaultDirections::Tx,
        ..FaultConfig::default()
    };
    let mut l = link(cfg, Echo::new(5, true));
    l.send(&packet(1)).unwrap();
    let f = l.last_fault().expect("a fault");
    assert!(f.dropped);
    assert_eq!(f.drop_cause, Some(DropCause::Loss));
    assert!(
        f.describe(Direction::Tx)
            .contains("dropped by fault injection")
    );
    assert!(l.inner().sent.is_empty());
    assert_eq!(l.wait(None).unwrap(), WaitOutcome::Idle);
    assert_eq!(l.stats(Direction::Tx).dropped, 1);
}

#[test]
fn received_packets_lost_are_reported_with_their_time() {
    let cfg = FaultConfig {
        loss: 100.0,
        directions: FaultDirections::Rx,
        ..FaultConfig::default()
    };
    let mut l = link(cfg, Echo::new(5, true));
    l.send(&packet(1)).unwrap();
    assert_eq!(l.last_fault(), None, "sent packets are not touched");
    assert_eq!(l.wait(None).unwrap(), WaitOutcome::Ready);
    assert_eq!(l.recv().unwrap(), None);
    let dropped = l.take_dropped();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].t, Instant::from_millis(5));
    assert_eq!(dropped[0].data, packet(1));
    assert!(dropped[0].fault.dropped);
    assert!(l.take_dropped().is_empty(), "reported once");
}

#[test]
fn received_packets_lost_behind_delayed_ones_keep_their_place() {
    let cfg = FaultConfig {
        loss: 50.0,
        delay: std::time::Duration::from_millis(10),
        jitter: std::time::Duration::from_millis(10),
        directions: FaultDirections::Rx,
        ..FaultConfig::default()
    };
    let mut echo = Echo::new(0, false);
    for i in 0..40u8 {
        echo.inject(Instant::from_micros(i64::from(i) * 200), packet(i));
    }
    let mut l = link(cfg, echo);
    let mut seen = Vec::new();
    for _ in 0..1000 {
        while let Some(p) = l.recv().unwrap() {
            seen.push((l.now(), p[0], false));
        }
        for d in l.take_dropped() {
            seen.push((d.t, d.data[0], true));
        }
        if l.wait(Some(Instant::from_millis(100))).unwrap() == WaitOutcome::Deadline {
            break;
        }
    }
    seen.sort_by_key(|(t, n, _)| (*t, *n));
    let order: Vec<u8> = seen.iter().map(|(_, n, _)| *n).collect();
    assert_eq!(
        order,
        (0..40).collect::<Vec<u8>>(),
        "wire order, dropped ones included"
    );
    assert!(seen.iter().any(|(_, _, d)| *d) && seen.iter().any(|(_, _, d)| !*d));
}

#[test]
fn delay_holds_packets_and_wait_wakes_for_them() {
    let cfg = FaultConfig {
        delay: std::time::Duration::from_millis(20),
        directions: FaultDirections::Tx,
        ..FaultConfig::default()
    };
    let mut l = link(cfg, Echo::new(5, true));
    l.send(&packet(1)).unwrap();
    let f = l.last_fault().expect("delayed");
    assert_eq!(f.delay_us, 20_000);
    assert!(l.inner().sent.is_empty(), "held");
    assert_eq!(l.held(), (1, 0));
    // Nothing is pending underneath, but a packet is held: not idle.
    assert_eq!(l.wait(None).unwrap(), WaitOutcome::Ready);
    assert_eq!(l.inner().sent.len(), 1);
    assert_eq!(l.inner().sent[0].0, Instant::from_millis(20));
    assert_eq!(l.recv().unwrap().map(|p| p.to_vec()), Some(packet(1)));
    assert_eq!(l.now(), Instant::from_millis(25));
    // A deadline before the release is honoured.
    l.send(&packet(2)).unwrap();
    assert_eq!(
        l.wait(Some(Instant::from_millis(30))).unwrap(),
        WaitOutcome::Deadline
    );
    assert_eq!(l.now(), Instant::from_millis(30));
    assert_eq!(l.inner().sent.len(), 1);
}

#[test]
fn jitter_never_reorders() {
    let cfg = FaultConfig {
        delay: std::time::Duration::from_millis(10),
        jitter: std::time::Duration::from_millis(10),
        directions: FaultDirections::Rx,
        ..FaultConfig::default()
    };
    let mut echo = Echo::new(0, false);
    for i in 0..50u8 {
        echo.inject(Instant::from_micros(i64::from(i) * 100), packet(i));
    }
    let mut l = link(cfg, echo);
    let got = drain(&mut l, Instant::from_millis(200));
    let order: Vec<u8> = got.iter().map(|(_, p, _)| p[0]).collect();
    assert_eq!(order, (0..50).collect::<Vec<u8>>());
    let delays: Vec<u64> = got
        .iter()
        .map(|(_, _, f)| f.as_ref().map_or(0, |f| f.delay_us))
        .collect();
    assert!(delays.iter().all(|d| *d <= 20_000));
    assert!(delays.iter().any(|d| *d != delays[0]), "{delays:?}");
}

#[test]
fn duplicates_and_corruption_are_marked() {
    let cfg = FaultConfig {
        duplicate: 100.0,
        corrupt: 100.0,
        ..FaultConfig::default()
    };
    let mut l = link(cfg, Echo::new(5, false));
    l.send(&packet(9)).unwrap();
    let f = l.last_fault().expect("fault");
    assert!(f.duplicated);
    let c = f.corrupted.expect("corrupted");
    let sent = &l.inner().sent;
    assert_eq!(sent.len(), 2, "two copies on the wire");
    for (_, p) in sent {
        let diff: u32 = p
            .iter()
            .zip(packet(9))
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert_eq!(diff, 1, "exactly one bit flipped");
        assert_eq!(p[c.byte] ^ 9, 1 << c.bit);
    }

    // Received: the stack gets the corrupted original, then the copy.
    l.inner.inject(Instant::from_millis(1), packet(3));
    let got = drain(&mut l, Instant::from_millis(50));
    assert_eq!(got.len(), 2);
    let (first, second) = (got[0].2.clone().unwrap(), got[1].2.clone().unwrap());
    assert!(first.duplicated && !first.copy && first.corrupted.is_some());
    assert!(second.copy);
    assert_ne!(got[0].1, packet(3));
    assert!(second.describe(Direction::Rx).contains("duplicate"));
}

#[test]
fn reordering_lets_the_next_packet_overtake() {
    let cfg = FaultConfig {
        reorder: 100.0,
        directions: FaultDirections::Rx,
        ..FaultConfig::default()
    };
    let mut echo = Echo::new(0, false);
    for i in 0..4u8 {
        echo.inject(Instant::from_millis(i64::from(i)), packet(i));
    }
    // A lone last packet waits REORDER_HOLD, then goes.
    echo.inject(Instant::from_millis(100), packet(9));
    let mut l = link(cfg, echo);
    let got = drain(&mut l, Instant::from_millis(300));
    let order: Vec<u8> = got.iter().map(|(_, p, _)| p[0]).collect();
    assert_eq!(order, vec![1, 0, 3, 2, 9]);
    let f0 = got[1].2.clone().unwrap();
    assert!(f0.reordered);
    assert_eq!(f0.overtaken_by, 1);
    assert!(f0.describe(Direction::Rx).contains("overtook"));
    let last = &got[4];
    assert_eq!(last.0, Instant::from_millis(100) + REORDER_HOLD);
    assert_eq!(last.2.as_ref().unwrap().overtaken_by, 0);
}

#[test]
fn rate_clocks_packets_out_and_the_queue_is_bounded() {
    let cfg = FaultConfig {
        rate_bps: Some(8_000), // 100 bytes take 100 ms
        directions: FaultDirections::Tx,
        ..FaultConfig::default()
    };
    let mut l = link(cfg, Echo::new(0, false));
    for i in 0..3 {
        l.send(&packet(i)).unwrap();
    }
    let _ = drain(&mut l, Instant::from_millis(1000));
    let times: Vec<i64> = l
        .inner()
        .sent
        .iter()
        .map(|(t, _)| t.total_millis())
        .collect();
    assert_eq!(times, vec![100, 200, 300]);

    let cfg = FaultConfig {
        delay: std::time::Duration::from_secs(1),
        directions: FaultDirections::Tx,
        ..FaultConfig::default()
    };
    let mut l = link(cfg, Echo::new(0, false));
    for _ in 0..LANE_LIMIT {
        l.send(&packet(0)).unwrap();
        assert!(!l.last_fault().unwrap().dropped);
    }
    l.send(&packet(0)).unwrap();
    let f = l.last_fault().unwrap();
    assert!(f.dropped);
    assert_eq!(f.drop_cause, Some(DropCause::QueueFull));
    assert_eq!(l.held().0, LANE_LIMIT);
}

#[test]
fn the_same_seed_makes_the_same_choices() {
    let cfg = FaultConfig {
        loss: 30.0,
        duplicate: 10.0,
        ..FaultConfig::default()
    };
    let run = |seed: u64| {
        let mut l = FaultLink::new(Echo::new(1, false), cfg, &Randomness::new(Some(seed))).unwrap();
        (0..200u8)
            .map(|i| {
                l.send(&packet(i)).unwrap();
                l.last_fault()
            })
            .collect::<Vec<_>>()
    };
    let a = run(1);
    assert_eq!(a, run(1));
    assert_ne!(a, run(2));
    let lost = a.iter().flatten().filter(|f| f.dropped).count();
    assert!((30..=90).contains(&lost), "{lost} of 200 lost at 30 %");
}

#[test]
fn turning_one_fault_up_keeps_the_others_choices() {
    let run = |duplicate: f64| {
        let cfg = FaultConfig {
            loss: 20.0,
            duplicate,
            ..FaultConfig::default()
        };
        let mut l = FaultLink::new(Echo::new(1, false), cfg, &Randomness::new(Some(3))).unwrap();
        (0..100u8)
            .map(|i| {
                l.send(&packet(i)).unwrap();
                l.last_fault().is_some_and(|f| f.dropped)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(0.0), run(50.0));
}
