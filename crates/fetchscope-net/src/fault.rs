//! Fault injection on a [`Link`]: loss, reordering, duplication, corruption, delay with
//! jitter and a rate limit, per direction, seeded — and a record of what it did to each
//! packet, so the trace can say so.
//!
//! [`FaultLink`] wraps any link (the built-in lab's wire or a TUN device) and sits between
//! it and the recording [`TapDevice`](crate::TapDevice). Every packet passes through a
//! small netem-like pipeline in its direction:
//!
//! 1. **loss**: dropped with probability `loss` %;
//! 2. **corruption**: one bit of one byte flipped with probability `corrupt` %;
//! 3. **duplication**: a second copy follows with probability `duplicate` %;
//! 4. **delay**: held for `delay` ± `jitter` (uniform), first in first out (jitter never
//!    reorders on its own);
//! 5. **rate**: clocked out at `rate` bit/s behind the packets before it; a packet that
//!    finds [`LANE_LIMIT`] packets held is dropped (tail drop, like netem's `limit`);
//! 6. **reordering**: with probability `reorder` % held back until the next packet of
//!    the same direction has overtaken it, at most [`REORDER_HOLD`].
//!
//! Each decision draws from the generator whether or not its percentage is zero, so
//! turning one fault up does not reshuffle the others. Both directions have their own
//! generator, seeded from `Randomness::rng("faults")`.
//!
//! What happened to a packet is a [`LinkFault`]: the link reports it through
//! [`Link::last_fault`] right after the `send` or `recv` that moved the packet, and
//! packets dropped on their way *to* the stack through [`Link::take_dropped`] (they never
//! reach it, but the trace shows them with their time).
//!
//! Held packets are released by `send`, `recv` and `wait`; `wait` wakes for the next
//! release (a TUN link blocks until then, the lab's virtual clock jumps to it), so nothing
//! spins.

pub use fetchscope_core::recovery::{Recovery, RecoveryTracker};

use bytes::Bytes;
use std::collections::VecDeque;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use smoltcp::time::{Duration, Instant};

use fetchscope_core::Randomness;

use crate::{Direction, Link, LinkError, WaitOutcome};

pub use fetchscope_core::fault::config::{
    FaultConfig, FaultConfigError, FaultDirections, MAX_DELAY, RATE_RANGE, parse_millis,
    parse_percent, parse_rate,
};
pub use fetchscope_core::fault::{Corruption, DropCause, LANE_LIMIT, LinkFault};

/// [`fetchscope_core::fault::REORDER_HOLD`] on the link's clock.
pub const REORDER_HOLD: Duration =
    Duration::from_micros(fetchscope_core::fault::REORDER_HOLD.as_micros() as u64);
/// At most this many packets are read from the link underneath per `recv` call.
const RX_PULL_MAX: usize = 64;
/// Rounds of one `wait` call before it hands control back (a spurious `Ready`).
const MAX_WAIT_ROUNDS: usize = 10_000;

/// A received packet that fault injection dropped before it reached the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedPacket {
    /// When it arrived at the link.
    pub t: Instant,
    /// The IP packet.
    pub data: Vec<u8>,
    /// What happened (always `dropped`).
    pub fault: LinkFault,
}

/// Counts of what fault injection did, per direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FaultStats {
    /// Packets that entered the pipeline.
    pub packets: u64,
    /// Dropped (loss or queue full).
    pub dropped: u64,
    /// Corrupted.
    pub corrupted: u64,
    /// Duplicated.
    pub duplicated: u64,
    /// Reordered.
    pub reordered: u64,
    /// Delayed by `--delay`/`--jitter`.
    pub delayed: u64,
}

/// A packet held by one direction until `release`.
#[derive(Debug)]
struct Held {
    release: Instant,
    /// Arrival order, to keep equal release times first in first out.
    order: u64,
    data: Vec<u8>,
    fault: LinkFault,
    /// When the packet entered the pipeline.
    entered: Instant,
}

/// One direction's pipeline state.
#[derive(Debug)]
struct Lane {
    dir: Direction,
    active: bool,
    rng: StdRng,
    /// Packets waiting for their release time, sorted by (release, order).
    held: VecDeque<Held>,
    /// A packet held back until another overtakes it (or its deadline passes).
    reorder_wait: Option<Held>,
    /// The latest release time handed out (delay keeps first in first out).
    last_release: Instant,
    /// When the rate limiter is free again.
    busy_until: Instant,
    order: u64,
    stats: FaultStats,
}

/// What the pipeline decided for one packet.
enum Verdict {
    /// Dropped: report it.
    Dropped(LinkFault),
    /// Queued (possibly with a copy) for release; what was decided so far.
    Queued(LinkFault),
}

impl Lane {
    fn new(dir: Direction, active: bool, seed: u64) -> Self {
        Lane {
            dir,
            active,
            rng: StdRng::seed_from_u64(seed),
            held: VecDeque::new(),
            reorder_wait: None,
            last_release: Instant::ZERO,
            busy_until: Instant::ZERO,
            order: 0,
            stats: FaultStats::default(),
        }
    }

    fn held_count(&self) -> usize {
        self.held.len() + usize::from(self.reorder_wait.is_some())
    }

    /// The earliest time something held here must move.
    fn next_release(&self) -> Option<Instant> {
        let a = self.held.front().map(|h| h.release);
        let b = self.reorder_wait.as_ref().map(|h| h.release);
        [a, b].into_iter().flatten().min()
    }

    fn insert(&mut self, h: Held) {
        let pos = self
            .held
            .iter()
            .position(|x| (x.release, x.order) > (h.release, h.order))
            .unwrap_or(self.held.len());
        self.held.insert(pos, h);
    }

    fn next_order(&mut self) -> u64 {
        self.order += 1;
        self.order
    }

    /// Runs one packet through the pipeline at `now`.
    fn admit(&mut self, cfg: &FaultConfig, now: Instant, mut data: Vec<u8>) -> Verdict {
        self.stats.packets += 1;
        // Every decision draws, whatever its percentage, so changing one leaves the
        // others' choices where they were.
        let loss_draw: f64 = self.rng.random::<f64>() * 100.0;
        let corrupt_draw: f64 = self.rng.random::<f64>() * 100.0;
        let corrupt_pos: u64 = self.rng.random();
        let dup_draw: f64 = self.rng.random::<f64>() * 100.0;
        let reorder_draw: f64 = self.rng.random::<f64>() * 100.0;
        let jitter_draw: f64 = self.rng.random::<f64>() * 2.0 - 1.0;

        let mut fault = LinkFault::default();
        let jitter_us = (jitter_draw * cfg.jitter.as_micros() as f64).round() as i64;
        let delay_us = (cfg.delay.as_micros() as i64 + jitter_us).max(0) as u64;
        if loss_draw < cfg.loss {
            self.stats.dropped += 1;
            fault.dropped = true;
            fault.drop_cause = Some(DropCause::Loss);
            if self.dir == Direction::Tx || self.held_count() >= LANE_LIMIT {
                return Verdict::Dropped(fault);
            }
            // A received packet keeps its place in line and is reported when it would
            // have reached the stack, so the trace shows the packets in wire order.
            let release = (now + Duration::from_micros(delay_us)).max(self.last_release);
            self.last_release = release;
            let order = self.next_order();
            self.insert(Held {
                release,
                order,
                data,
                fault: fault.clone(),
                entered: now,
            });
            return Verdict::Queued(fault);
        }
        if self.held_count() >= LANE_LIMIT {
            self.stats.dropped += 1;
            fault.dropped = true;
            fault.drop_cause = Some(DropCause::QueueFull);
            return Verdict::Dropped(fault);
        }
        let mut wire = None;
        if corrupt_draw < cfg.corrupt && !data.is_empty() {
            self.stats.corrupted += 1;
            let bits = data.len() as u64 * 8;
            let pos = corrupt_pos % bits;
            let c = Corruption {
                byte: (pos / 8) as usize,
                bit: (pos % 8) as u8,
            };
            fault.corrupted = Some(c);
            let mut bad = data.clone();
            if let Some(b) = bad.get_mut(c.byte) {
                *b ^= 1 << c.bit;
            }
            match self.dir {
                // The stack receives the corrupted bytes.
                Direction::Rx => data = bad,
                // The wire carries them; the trace keeps what the stack sent.
                Direction::Tx => wire = Some(bad),
            }
        }
        let on_wire = wire.unwrap_or(data);
        let duplicate = dup_draw < cfg.duplicate;
        if duplicate {
            self.stats.duplicated += 1;
            fault.duplicated = true;
        }

        // Delay: fixed plus jitter, never earlier than the packet before.
        let mut release = (now + Duration::from_micros(delay_us)).max(self.last_release);
        fault.delay_us = (release - now).total_micros();
        if fault.delay_us > 0 {
            self.stats.delayed += 1;
        }
        // Rate: clocked out behind the packets before it.
        if let Some(rate) = cfg.rate_bps {
            let start = release.max(self.busy_until);
            let bits = on_wire.len() as u64 * 8;
            let done = start + Duration::from_micros((bits * 1_000_000).div_ceil(rate));
            self.busy_until = done;
            fault.queue_us = (done - release).total_micros();
            release = done;
        }
        self.last_release = release;

        let copy = duplicate.then(|| on_wire.clone());
        let order = self.next_order();
        let admitted = fault.clone();
        let mut packet = Held {
            release,
            order,
            data: on_wire,
            fault,
            entered: now,
        };

        if let Some(mut waiting) = self.reorder_wait.take() {
            // A packet is held back for reordering: this one overtakes it, and it leaves
            // right behind this one (and its copy).
            waiting.fault.overtaken_by += 1;
            let release = packet.release;
            self.queue_with_copy(packet, copy);
            waiting.release = release;
            waiting.order = self.next_order();
            self.insert(waiting);
            return Verdict::Queued(admitted);
        }
        if reorder_draw < cfg.reorder {
            // Held back until the next packet has overtaken it, at most REORDER_HOLD.
            self.stats.reordered += 1;
            packet.fault.reordered = true;
            if let Some(c) = copy {
                // The copy is not held back: it is the first to overtake its original.
                packet.fault.overtaken_by += 1;
                let order = self.next_order();
                self.insert(Held {
                    release: packet.release,
                    order,
                    data: c,
                    fault: LinkFault {
                        copy: true,
                        delay_us: packet.fault.delay_us,
                        ..LinkFault::default()
                    },
                    entered: now,
                });
            }
            packet.release += REORDER_HOLD;
            let mut admitted = packet.fault.clone();
            admitted.overtaken_by = 0;
            self.reorder_wait = Some(packet);
            return Verdict::Queued(admitted);
        }
        self.queue_with_copy(packet, copy);
        Verdict::Queued(admitted)
    }

    /// Queues `packet` (and its copy right behind it).
    fn queue_with_copy(&mut self, packet: Held, copy: Option<Vec<u8>>) {
        let release = packet.release;
        let delay_us = packet.fault.delay_us;
        let entered = packet.entered;
        self.insert(packet);
        if let Some(c) = copy {
            let order = self.next_order();
            self.insert(Held {
                release,
                order,
                data: c,
                fault: LinkFault {
                    copy: true,
                    delay_us,
                    ..LinkFault::default()
                },
                entered,
            });
        }
    }

    /// Moves a reordered packet whose wait is over into the queue.
    fn expire_reorder(&mut self, now: Instant) {
        if self.reorder_wait.as_ref().is_some_and(|w| w.release <= now)
            && let Some(w) = self.reorder_wait.take()
        {
            self.insert(w);
        }
    }

    /// Takes the next packet due at `now`.
    fn pop_due(&mut self, now: Instant) -> Option<Held> {
        self.expire_reorder(now);
        if self.held.front().is_some_and(|h| h.release <= now) {
            let mut h = self.held.pop_front()?;
            if h.fault.reordered || h.fault.queue_us > 0 {
                // Time held beyond the delay: the rate queue and the reordering wait.
                let held = (now - h.entered).total_micros();
                h.fault.queue_us = held.saturating_sub(h.fault.delay_us);
            }
            return Some(h);
        }
        None
    }
}

/// A [`Link`] with fault injection: wraps `L` and applies a [`FaultConfig`] to the
/// packets in the configured directions.
#[derive(Debug)]
pub struct FaultLink<L> {
    inner: L,
    cfg: FaultConfig,
    tx: Lane,
    rx: Lane,
    last: Option<LinkFault>,
    dropped: Vec<DroppedPacket>,
}

impl<L: Link> FaultLink<L> {
    /// Wraps `inner`; the faults' random choices come from `randomness.rng("faults")`.
    pub fn new(
        inner: L,
        cfg: FaultConfig,
        randomness: &Randomness,
    ) -> Result<Self, FaultConfigError> {
        cfg.validate()?;
        let mut rng = randomness.rng("faults");
        let tx_seed: u64 = rng.random();
        let rx_seed: u64 = rng.random();
        Ok(FaultLink {
            inner,
            tx: Lane::new(
                Direction::Tx,
                cfg.directions.applies(Direction::Tx),
                tx_seed,
            ),
            rx: Lane::new(
                Direction::Rx,
                cfg.directions.applies(Direction::Rx),
                rx_seed,
            ),
            cfg,
            last: None,
            dropped: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &FaultConfig {
        &self.cfg
    }

    /// What fault injection did so far to packets going `dir`.
    pub fn stats(&self, dir: Direction) -> FaultStats {
        match dir {
            Direction::Tx => self.tx.stats,
            Direction::Rx => self.rx.stats,
        }
    }

    /// The link underneath.
    pub fn inner(&self) -> &L {
        &self.inner
    }

    /// Packets held in each direction (sent, received), for tests and bounds.
    pub fn held(&self) -> (usize, usize) {
        (self.tx.held_count(), self.rx.held_count())
    }

    /// Hands every sent packet that is due to the link underneath.
    fn release_tx(&mut self) -> Result<(), LinkError> {
        loop {
            let now = self.inner.now();
            let Some(h) = self.tx.pop_due(now) else {
                return Ok(());
            };
            self.inner.send(&h.data)?;
        }
    }

    /// Reads what the link underneath has for the stack into the receive pipeline.
    fn pull_rx(&mut self) -> Result<(), LinkError> {
        for _ in 0..RX_PULL_MAX {
            let Some(data) = self.inner.recv()? else {
                break;
            };
            // Faults may change the bytes: the pipeline keeps its own copy.
            let data = data.to_vec();
            let now = self.inner.now();
            if let Verdict::Dropped(fault) = self.rx.admit(&self.cfg, now, data.clone()) {
                self.dropped.push(DroppedPacket {
                    t: now,
                    data,
                    fault,
                });
            }
        }
        Ok(())
    }

    /// The earliest moment a held packet must move.
    fn next_hold(&self) -> Option<Instant> {
        [self.tx.next_release(), self.rx.next_release()]
            .into_iter()
            .flatten()
            .min()
    }
}

impl<L: Link> Link for FaultLink<L> {
    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn send(&mut self, packet: &[u8]) -> Result<(), LinkError> {
        self.release_tx()?;
        if !self.tx.active {
            self.last = None;
            return self.inner.send(packet);
        }
        let now = self.inner.now();
        match self.tx.admit(&self.cfg, now, packet.to_vec()) {
            Verdict::Dropped(fault) => {
                self.last = Some(fault);
            }
            Verdict::Queued(fault) => {
                self.last = (!fault.is_empty()).then_some(fault);
                // A packet without delay leaves at once.
                self.release_tx()?;
            }
        }
        Ok(())
    }

    fn recv(&mut self) -> Result<Option<Bytes>, LinkError> {
        self.release_tx()?;
        self.last = None;
        if !self.rx.active {
            return self.inner.recv();
        }
        self.pull_rx()?;
        let now = self.inner.now();
        while let Some(h) = self.rx.pop_due(now) {
            if h.fault.dropped {
                self.dropped.push(DroppedPacket {
                    t: now,
                    data: h.data,
                    fault: h.fault,
                });
                continue;
            }
            self.last = (!h.fault.is_empty()).then_some(h.fault);
            return Ok(Some(Bytes::from(h.data)));
        }
        Ok(None)
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Result<WaitOutcome, LinkError> {
        for _ in 0..MAX_WAIT_ROUNDS {
            self.release_tx()?;
            let now = self.inner.now();
            self.rx.expire_reorder(now);
            if self.rx.held.front().is_some_and(|h| h.release <= now) {
                return Ok(WaitOutcome::Ready);
            }
            let hold = self.next_hold();
            let until = match (deadline, hold) {
                (Some(d), Some(h)) => Some(d.min(h)),
                (d, h) => d.or(h),
            };
            match self.inner.wait(until)? {
                WaitOutcome::Ready => return Ok(WaitOutcome::Ready),
                WaitOutcome::Idle => return Ok(WaitOutcome::Idle),
                WaitOutcome::Deadline => {
                    let now = self.inner.now();
                    let hold_due = hold.is_some_and(|h| h <= now);
                    if !hold_due && deadline.is_none_or(|d| now >= d) {
                        return Ok(WaitOutcome::Deadline);
                    }
                    // A held packet is due: release it and look again.
                }
            }
        }
        Ok(WaitOutcome::Ready)
    }

    fn mtu(&self) -> usize {
        self.inner.mtu()
    }

    fn describe(&self) -> String {
        format!(
            "{} with fault injection ({})",
            self.inner.describe(),
            self.cfg
        )
    }

    fn is_virtual(&self) -> bool {
        self.inner.is_virtual()
    }

    fn readiness_fd(&self) -> Option<std::os::fd::RawFd> {
        self.inner.readiness_fd()
    }

    fn last_fault(&mut self) -> Option<LinkFault> {
        self.last.take()
    }

    fn take_dropped(&mut self) -> Vec<DroppedPacket> {
        std::mem::take(&mut self.dropped)
    }
}

#[cfg(test)]
mod tests;
