//! [`RecoveryTracker`]: names the recovery a packet shows — retransmission after a
//! timeout, fast retransmission after duplicate ACKs, go-back-N, duplicate ACKs,
//! out-of-order segments queued or dropped, duplicates ignored, corrupted packets dropped.
//!
//! Everything here is **derived**: from the packets (including those fault injection
//! dropped, which the tracker sees too) and from what smoltcp 0.14 is known to do with
//! them (see the notes on smoltcp, §9): it keeps at most as many out-of-order ranges as
//! its assembler is built with (`ASSEMBLER_MAX_SEGMENT_COUNT`, given to
//! [`RecoveryTracker::new`]) and drops a segment that would need one more, sends an ACK at
//! once for an out-of-order segment,
//! ignores data it already has and ACKs again, drops a packet with a bad checksum
//! silently, fast-retransmits one segment on the third duplicate ACK, and after a
//! retransmission timeout sends everything again from the first unacknowledged byte
//! (go-back-N; no SACK). Its retransmission timer is modelled as smoltcp's `RttEstimator`
//! computes it (RFC 6298 with a 1 s floor, doubled on each timeout, reset only by a new RTT
//! sample, which a retransmission cancels), from the packets as this link sees them. The
//! link's [`LinkFault`] records are facts; these are inferences.

use std::collections::VecDeque;
use std::net::IpAddr;

use crate::time::Instant;
use fetchscope_wire::{DecodeProblem, Dissection, TcpFlags, TcpLayer};
use serde::Serialize;

use crate::fault::LinkFault;
use fetchscope_wire::Direction;
use fetchscope_wire::seq::{after, at_or_after};

/// At most this many connections are followed; the least recently used is forgotten.
const MAX_CONNS: usize = 16;
/// At most this many sent ranges are remembered per direction (for the time since a
/// segment was last sent).
const MAX_SENT: usize = 1024;
/// smoltcp fast-retransmits on this duplicate ACK.
const FAST_RETRANSMIT_DUPS: u32 = 3;
/// smoltcp's first retransmission timeout (`RTTE_INITIAL_RTO`), in milliseconds.
const SMOLTCP_INITIAL_RTO_MS: u32 = 1_000;
/// smoltcp's shortest retransmission timeout (`RTTE_MIN_RTO`), in milliseconds.
const SMOLTCP_MIN_RTO_MS: u32 = 1_000;
/// The same, in microseconds.
const SMOLTCP_MIN_RTO_US: u64 = SMOLTCP_MIN_RTO_MS as u64 * 1000;
/// smoltcp's longest retransmission timeout (`RTTE_MAX_RTO`), in milliseconds.
const SMOLTCP_MAX_RTO_MS: u32 = 60_000;
/// smoltcp's least margin over the smoothed RTT (`RTTE_MIN_MARGIN`), in milliseconds.
const SMOLTCP_MIN_MARGIN_MS: u32 = 5;

/// One piece of recovery a packet shows, derived from the packets and the stack's rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recovery {
    /// `rto-retransmission`, `go-back-n`, `fast-retransmission`, `retransmission`,
    /// `duplicate-ack`, `out-of-order-queued`, `out-of-order-dropped`, `hole-filled`,
    /// `duplicate-ignored`, `bad-checksum-dropped` or `malformed-dropped`.
    pub kind: &'static str,
    /// One sentence for people.
    pub text: String,
    /// For a retransmission after a timeout by a smoltcp sender: the timeout that expired,
    /// in milliseconds, as smoltcp's timer had it (1000 × 2^backoff, normally).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rto_ms: Option<u32>,
}

impl Recovery {
    fn new(kind: &'static str, text: String) -> Self {
        Recovery {
            kind,
            text,
            rto_ms: None,
        }
    }
}

/// smoltcp's retransmission timer (`RttEstimator` in its `socket/tcp.rs`), run on one
/// sender's packets as the link sees them: RFC 6298's smoothed RTT with a 1 s floor,
/// doubled on every timeout and reset only by a new RTT sample; a sample is taken on one
/// segment of new data at a time and cancelled by any retransmission (Karn's rule).
#[derive(Debug, Clone)]
struct RtoModel {
    have_measurement: bool,
    srtt_ms: u32,
    rttvar_ms: u32,
    rto_ms: u32,
    /// The segment being timed: when it was sent and the sequence number just past it.
    sample: Option<(Instant, u32)>,
    max_sent: Option<u32>,
    /// Timeouts since the timer was last computed from a sample.
    backoffs: u32,
    /// The timer as last computed (from a sample, or the initial 1 s), before doubling.
    base_ms: u32,
    rto_count: u8,
}

impl Default for RtoModel {
    fn default() -> Self {
        RtoModel {
            have_measurement: false,
            srtt_ms: 0,
            rttvar_ms: 0,
            rto_ms: SMOLTCP_INITIAL_RTO_MS,
            sample: None,
            max_sent: None,
            backoffs: 0,
            base_ms: SMOLTCP_INITIAL_RTO_MS,
            rto_count: 0,
        }
    }
}

impl RtoModel {
    fn on_send(&mut self, t: Instant, end: u32) {
        if self.max_sent.is_none_or(|m| after(end, m)) {
            self.max_sent = Some(end);
            if self.sample.is_none() {
                self.sample = Some((t, end));
            }
        }
    }

    fn on_ack(&mut self, t: Instant, ack: u32) {
        if let Some((sent, end)) = self.sample
            && at_or_after(ack, end)
        {
            let rtt = u32::try_from(t.micros_since(sent) / 1000).unwrap_or(u32::MAX);
            if self.have_measurement {
                let diff = self.srtt_ms.abs_diff(rtt);
                self.rttvar_ms =
                    (self.rttvar_ms.saturating_mul(3).saturating_add(diff)).div_ceil(4);
                self.srtt_ms = (self.srtt_ms.saturating_mul(7).saturating_add(rtt)).div_ceil(8);
            } else {
                self.have_measurement = true;
                self.srtt_ms = rtt;
                self.rttvar_ms = rtt / 2;
            }
            let margin = SMOLTCP_MIN_MARGIN_MS.max(self.rttvar_ms.saturating_mul(4));
            self.rto_ms = self
                .srtt_ms
                .saturating_add(margin)
                .clamp(SMOLTCP_MIN_RTO_MS, SMOLTCP_MAX_RTO_MS);
            self.rto_count = 0;
            self.backoffs = 0;
            self.base_ms = self.rto_ms;
            self.sample = None;
        }
    }

    /// A timeout: the timer that expired, as it came about, and the next one (doubled).
    fn on_timeout(&mut self) -> Timeout {
        let expired = self.rto_ms;
        let backoffs = self.backoffs;
        let base = self.base_ms;
        self.rto_ms = self.rto_ms.saturating_mul(2).min(SMOLTCP_MAX_RTO_MS);
        self.backoffs += 1;
        self.rto_count += 1;
        if self.rto_count >= 3 {
            self.rto_count = 0;
            self.have_measurement = false;
        }
        self.sample = None;
        Timeout {
            expired,
            base,
            backoffs,
            next: self.rto_ms,
        }
    }

    fn on_retransmit(&mut self) {
        self.sample = None;
    }
}

/// A retransmission timer in milliseconds for people: `1 s`, `1.5 s`, `1.25 s` (the trace's
/// recovery lines and the text summary's `Recovery:` line).
pub fn timer_text(ms: u32) -> String {
    let s = format!("{:.3}", f64::from(ms) / 1000.0);
    format!("{} s", s.trim_end_matches('0').trim_end_matches('.'))
}

/// A timeout of a smoltcp sender's timer, in milliseconds.
struct Timeout {
    /// The timer that expired.
    expired: u32,
    /// What it was before the doublings (from the last RTT sample, or the initial 1 s).
    base: u32,
    /// Timeouts before this one since the last sample.
    backoffs: u32,
    /// The timer after this timeout (doubled, at most 60 s).
    next: u32,
}

/// How a timer came to expire: `RTO 1 s; the next one would be 2 s`, `RTO 4 s (1 s doubled 2
/// times: …)`.
fn rto_story(t: &Timeout) -> String {
    let capped = if t.expired == SMOLTCP_MAX_RTO_MS && t.backoffs > 0 {
        ", at most 60 s"
    } else {
        ""
    };
    let how = match t.backoffs {
        0 => String::new(),
        1 => format!(
            " ({} doubled once{capped}: no new RTT sample since the last timeout)",
            timer_text(t.base)
        ),
        n => format!(
            " ({} doubled {n} times{capped}: no new RTT sample since the timeouts began)",
            timer_text(t.base)
        ),
    };
    format!(
        "RTO {}{how}; the next one would be {}",
        timer_text(t.expired),
        timer_text(t.next)
    )
}

/// The ACKs one side sent that reached the other side, as the other side counts them.
#[derive(Debug, Default, Clone)]
struct AckSeen {
    last_ack: Option<u32>,
    last_win: Option<u16>,
    dups: u32,
    /// The duplicate-ACK run at `last_ack` already triggered a fast retransmission.
    fast_done: bool,
    /// When the last ACK of new data crossed this link (smoltcp restarts its
    /// retransmission timer when such an ACK arrives).
    last_new_t: Option<Instant>,
}

/// One sender's side of a connection as seen on the link.
#[derive(Debug, Default, Clone)]
struct Sender {
    /// Where the trace's relative numbers of this sender start (the dissector's base).
    isn: Option<u32>,
    /// Just past the highest sequence number sent.
    max_end: Option<u32>,
    /// Recently sent ranges with the time each was last sent.
    sent: VecDeque<(u32, u32, Instant)>,
    /// Where a go-back-N burst continues.
    gbn_next: Option<u32>,
    /// ACKs this side sent that reached the other side.
    acks: AckSeen,
    /// Its retransmission timer, as smoltcp computes it.
    rto: RtoModel,
    /// When it last retransmitted after a timeout (smoltcp's timer starts again then).
    last_timeout_t: Option<Instant>,
}

impl Sender {
    fn last_sent(&self, seq: u32) -> Option<Instant> {
        self.sent
            .iter()
            .rev()
            .find(|(s, e, _)| at_or_after(seq, *s) && after(*e, seq))
            .map(|(_, _, t)| *t)
    }

    /// New data (beyond everything sent before): no earlier send of it to find.
    fn note_new(&mut self, seq: u32, end: u32, t: Instant) {
        if self.sent.len() >= MAX_SENT {
            self.sent.pop_front();
        }
        self.sent.push_back((seq, end, t));
    }

    fn note_sent(&mut self, seq: u32, end: u32, t: Instant) {
        if let Some(entry) = self
            .sent
            .iter_mut()
            .find(|(s, e, _)| *s == seq && *e == end)
        {
            entry.2 = t;
            return;
        }
        if self.sent.len() >= MAX_SENT {
            self.sent.pop_front();
        }
        self.sent.push_back((seq, end, t));
    }
}

/// The stack as a receiver: the next byte it expects and the ranges it keeps ahead of a
/// hole (a model of smoltcp's assembler).
#[derive(Debug, Default, Clone)]
struct Receiver {
    rcv_nxt: Option<u32>,
    /// Out-of-order ranges [start, end), sorted, disjoint, not touching.
    ranges: Vec<(u32, u32)>,
    /// The right edge of the window the stack last advertised.
    window_end: Option<u32>,
    /// The most out-of-order ranges kept (smoltcp's `ASSEMBLER_MAX_SEGMENT_COUNT`).
    max_ranges: usize,
}

enum Arrival {
    Duplicate,
    AlreadyHeld,
    InOrder { filled: Option<(u32, u32)> },
    Queued { hole: u32, ranges: usize },
    NoRoom,
    BeyondWindow,
}

impl Receiver {
    fn max_ranges(&self) -> usize {
        self.max_ranges.max(1)
    }

    /// Moves `rcv_nxt` to `ack` (the stack's own ACK tells where it is).
    fn sync(&mut self, ack: u32) {
        if self.rcv_nxt.is_none_or(|n| after(ack, n)) {
            self.rcv_nxt = Some(ack);
            self.ranges.retain(|&(_, e)| after(e, ack));
            for r in &mut self.ranges {
                if after(ack, r.0) {
                    r.0 = ack;
                }
            }
        }
    }

    /// What smoltcp does with `[seq, end)`, and the model updated accordingly.
    fn arrive(&mut self, seq: u32, end: u32) -> Option<Arrival> {
        let nxt = self.rcv_nxt?;
        if !after(end, nxt) {
            return Some(Arrival::Duplicate);
        }
        if at_or_after(nxt, seq) {
            // In order: everything up to `end` is readable, and so are ranges it reaches.
            let mut new_nxt = end;
            let mut filled: Option<(u32, u32)> = None;
            while let Some(i) = self
                .ranges
                .iter()
                .position(|&(s, _)| at_or_after(new_nxt, s))
            {
                let (s, e) = self.ranges.remove(i);
                if after(e, new_nxt) {
                    filled = Some((filled.map_or(s, |f| f.0), e));
                    new_nxt = e;
                }
            }
            self.rcv_nxt = Some(new_nxt);
            return Some(Arrival::InOrder { filled });
        }
        if self.window_end.is_some_and(|w| at_or_after(seq, w)) {
            return Some(Arrival::BeyondWindow);
        }
        if self
            .ranges
            .iter()
            .any(|&(s, e)| at_or_after(seq, s) && at_or_after(e, end))
        {
            return Some(Arrival::AlreadyHeld);
        }
        // Ahead of a hole: merge with ranges it touches, or take a new one.
        let mut start = seq;
        let mut stop = end;
        let mut keep = Vec::with_capacity(self.ranges.len() + 1);
        for &(s, e) in &self.ranges {
            if at_or_after(stop, s) && at_or_after(e, start) {
                if after(start, s) {
                    start = s;
                }
                if after(e, stop) {
                    stop = e;
                }
            } else {
                keep.push((s, e));
            }
        }
        if keep.len() + 1 > self.max_ranges() {
            return Some(Arrival::NoRoom);
        }
        keep.push((start, stop));
        keep.sort_by_key(|&(s, _)| s.wrapping_sub(nxt));
        self.ranges = keep;
        Some(Arrival::Queued {
            hole: nxt,
            ranges: self.ranges.len(),
        })
    }
}

/// Everything followed about one TCP connection of the stack.
#[derive(Debug, Clone)]
struct Conn {
    local: (IpAddr, u16),
    remote: (IpAddr, u16),
    /// The stack's segments.
    ours: Sender,
    /// The peer's segments.
    theirs: Sender,
    /// The stack receiving the peer's segments.
    rcv: Receiver,
    last_used: u64,
}

/// Follows the stack's TCP connections packet by packet and names the recovery each
/// packet shows. Feed it every packet in order, with what fault injection did to it.
#[derive(Debug)]
pub struct RecoveryTracker {
    conns: Vec<Conn>,
    tick: u64,
    /// The peer is a smoltcp stack too (the built-in lab), so its rules are known.
    peer_is_smoltcp: bool,
    /// The out-of-order ranges the stack's assembler keeps.
    assembler_ranges: usize,
}

impl RecoveryTracker {
    /// A tracker; `peer_is_smoltcp` when the peer is the built-in lab (whose TCP is
    /// smoltcp too), so the peer's retransmissions can be named by smoltcp's rules;
    /// `assembler_ranges`: how many out-of-order ranges the stack's smoltcp keeps
    /// (`smoltcp::config::ASSEMBLER_MAX_SEGMENT_COUNT` of the build).
    pub fn new(peer_is_smoltcp: bool, assembler_ranges: usize) -> Self {
        RecoveryTracker {
            conns: Vec::new(),
            tick: 0,
            peer_is_smoltcp,
            assembler_ranges,
        }
    }

    /// Learns from one packet that crossed the link at `t` going `dir` (sent by the
    /// stack, or on its way to it) and names the recovery it shows.
    pub fn observe(
        &mut self,
        t: Instant,
        dir: Direction,
        d: &Dissection,
        fault: Option<&LinkFault>,
    ) -> Vec<Recovery> {
        let mut out = Vec::new();
        let dropped = fault.is_some_and(|f| f.dropped);
        let corrupted = fault.is_some_and(|f| f.corrupted.is_some());
        // A received packet the stack drops because it is damaged.
        if dir == Direction::Rx && !dropped {
            if let Some(p) = d.problems.iter().find(|p| p.bad_checksum().is_some()) {
                out.push(Recovery::new(
                    "bad-checksum-dropped",
                    format!(
                        "the stack dropped it ({p}): smoltcp discards a damaged packet silently, without an ACK; the sender has to send it again"
                    ),
                ));
                return out;
            }
            if corrupted && let Some(p) = d.problems.iter().find(|p| p.is_network()) {
                out.push(Recovery::new(
                    "malformed-dropped",
                    format!("the stack dropped it ({p}); the sender has to send it again"),
                ));
                return out;
            }
        }
        let (Some(ip), Some(tcp)) = (d.ip.as_ref(), d.tcp.as_ref()) else {
            return out;
        };
        if d.problems.iter().any(DecodeProblem::is_network) {
            // A damaged sent packet (no fault injection involved): nothing to learn.
            return out;
        }
        let (local, remote) = match dir {
            Direction::Tx => ((ip.src, tcp.src_port), (ip.dst, tcp.dst_port)),
            Direction::Rx => ((ip.dst, tcp.dst_port), (ip.src, tcp.src_port)),
        };
        self.tick += 1;
        let tick = self.tick;
        let peer_smoltcp = self.peer_is_smoltcp;
        let conn = self.conn(local, remote, tcp, dir);
        conn.last_used = tick;
        // Whether the packet reaches the other end intact (a sent one corrupted on the
        // way does not).
        let delivered = !dropped && !corrupted;

        let (sender, receiver) = match dir {
            Direction::Tx => (&mut conn.ours, &mut conn.theirs),
            Direction::Rx => (&mut conn.theirs, &mut conn.ours),
        };
        let syn = tcp.flags.contains(TcpFlags::SYN);
        let fin = tcp.flags.contains(TcpFlags::FIN);
        let rst = tcp.flags.contains(TcpFlags::RST);
        // Numbers in the words are relative as the dissector's tracker numbers the
        // trace: from the sender's first segment it saw (its SYN, normally).
        sender.isn.get_or_insert(tcp.seq_raw.wrapping_sub(tcp.seq));
        // A packet fault injection reordered or copied on its way in left the sender in
        // another order, or once: it says nothing about the sender's retransmissions.
        let resequenced = dir == Direction::Rx && fault.is_some_and(|f| f.reordered || f.copy);
        let seg_len = u32::try_from(tcp.payload_len)
            .unwrap_or(u32::MAX)
            .saturating_add(u32::from(syn) + u32::from(fin));
        let seq = tcp.seq_raw;
        let end = seq.wrapping_add(seg_len);

        // The sender's view: new data or a retransmission, and which kind.
        if seg_len > 0 && !rst && !resequenced {
            match sender.max_end {
                Some(max) if after(max, seq) => {
                    out.push(name_retransmission(
                        sender,
                        &mut receiver.acks,
                        t,
                        dir,
                        seq,
                        end,
                        syn,
                        peer_smoltcp,
                    ));
                    sender.note_sent(seq, end, t);
                }
                _ => {
                    sender.max_end = Some(end);
                    sender.gbn_next = None;
                    // The common case, in-order new data, needs no search.
                    sender.note_new(seq, end, t);
                    sender.rto.on_send(t, end);
                }
            }
        }

        // Duplicate ACKs, counted as the receiving side counts them.
        if tcp.flags.contains(TcpFlags::ACK) && !syn && !rst {
            let outstanding = receiver.max_end.is_some_and(|m| after(m, tcp.ack_raw));
            let acks = &mut sender.acks;
            let dup = tcp.payload_len == 0
                && !fin
                && acks.last_ack == Some(tcp.ack_raw)
                && acks.last_win == Some(tcp.win)
                && outstanding;
            if dup {
                let n = if delivered { acks.dups + 1 } else { acks.dups };
                out.push(name_dup_ack(
                    dir,
                    n,
                    tcp,
                    delivered,
                    peer_smoltcp,
                    conn_base(receiver),
                ));
                if delivered {
                    acks.dups = n;
                }
            } else if delivered {
                if acks.last_ack.is_none_or(|a| after(tcp.ack_raw, a)) {
                    acks.last_new_t = Some(t);
                }
                receiver.rto.on_ack(t, tcp.ack_raw);
                if acks.last_ack != Some(tcp.ack_raw) {
                    acks.fast_done = false;
                }
                acks.last_ack = Some(tcp.ack_raw);
                acks.last_win = Some(tcp.win);
                acks.dups = 0;
            }
        }

        // The stack as a receiver.
        match dir {
            Direction::Tx => {
                if tcp.flags.contains(TcpFlags::ACK) {
                    conn.rcv.sync(tcp.ack_raw);
                    let win = tcp.win_scaled.unwrap_or(u32::from(tcp.win));
                    conn.rcv.window_end = Some(tcp.ack_raw.wrapping_add(win));
                }
            }
            Direction::Rx if !dropped => {
                if syn {
                    conn.rcv.rcv_nxt = Some(seq.wrapping_add(1));
                } else if seg_len > 0 && !rst {
                    let base = conn.theirs.isn;
                    if let Some(r) = name_arrival(&mut conn.rcv, seq, end, fault, base) {
                        out.push(r);
                    }
                }
            }
            Direction::Rx => {}
        }
        out
    }

    /// The connection `local`–`remote`, created when a packet starts one.
    fn conn(
        &mut self,
        local: (IpAddr, u16),
        remote: (IpAddr, u16),
        tcp: &TcpLayer,
        dir: Direction,
    ) -> &mut Conn {
        let pos = self
            .conns
            .iter()
            .position(|c| c.local == local && c.remote == remote);
        // A new SYN from the stack on the same ports is a new connection.
        let restart = dir == Direction::Tx
            && tcp.flags.contains(TcpFlags::SYN)
            && !tcp.flags.contains(TcpFlags::ACK)
            && pos.is_some_and(|i| {
                self.conns
                    .get(i)
                    .is_some_and(|c| c.ours.isn.is_some_and(|isn| isn != tcp.seq_raw))
            });
        let fresh = Conn {
            local,
            remote,
            ours: Sender::default(),
            theirs: Sender::default(),
            rcv: Receiver {
                max_ranges: self.assembler_ranges,
                ..Receiver::default()
            },
            last_used: self.tick,
        };
        let i = match pos {
            Some(i) => {
                if restart && let Some(c) = self.conns.get_mut(i) {
                    *c = fresh;
                }
                i
            }
            None => {
                if self.conns.len() >= MAX_CONNS
                    && let Some(oldest) = self
                        .conns
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, c)| c.last_used)
                        .map(|(i, _)| i)
                {
                    self.conns.swap_remove(oldest);
                }
                self.conns.push(fresh);
                self.conns.len() - 1
            }
        };
        &mut self.conns[i]
    }
}

/// The base for relative numbers in `sender`'s sequence space.
fn conn_base(sender: &Sender) -> Option<u32> {
    sender.isn
}

fn rel(v: u32, base: Option<u32>) -> u32 {
    base.map_or(v, |b| v.wrapping_sub(b))
}

/// `1.000 s`, `250.0 ms`.
fn span(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.3} s", us as f64 / 1e6)
    } else {
        format!("{:.1} ms", us as f64 / 1e3)
    }
}

#[allow(clippy::too_many_arguments)]
fn name_retransmission(
    sender: &mut Sender,
    acks_received: &mut AckSeen,
    t: Instant,
    dir: Direction,
    seq: u32,
    end: u32,
    syn: bool,
    peer_smoltcp: bool,
) -> Recovery {
    let who = match dir {
        Direction::Tx => "the stack",
        Direction::Rx => "the server",
    };
    let base = sender.isn;
    let since = sender.last_sent(seq).map(|prev| span(t.micros_since(prev)));
    let known_rules = dir == Direction::Tx || peer_smoltcp;
    if syn {
        let timeout = sender.rto.on_timeout();
        sender.last_timeout_t = Some(t);
        let mut r = Recovery::new(
            "rto-retransmission",
            format!(
                "{} sends its {} again: no answer{}{}",
                who,
                if dir == Direction::Tx {
                    "SYN"
                } else {
                    "SYN-ACK"
                },
                since
                    .map(|s| format!(" {s} after the last one"))
                    .unwrap_or_default(),
                if known_rules {
                    format!(" (smoltcp's retransmission timer: {})", rto_story(&timeout))
                } else {
                    String::new()
                }
            ),
        );
        if known_rules {
            r.rto_ms = Some(timeout.expired);
        }
        return r;
    }
    // Fast retransmission: the first unacknowledged segment, right after the third
    // duplicate ACK reached the sender.
    if acks_received.last_ack == Some(seq) && acks_received.dups >= FAST_RETRANSMIT_DUPS {
        let first = !acks_received.fast_done;
        sender.gbn_next = None;
        sender.rto.on_retransmit();
        if first {
            acks_received.fast_done = true;
            let asker = match dir {
                Direction::Tx => "the server's",
                Direction::Rx => "the stack's",
            };
            return Recovery::new(
                "fast-retransmission",
                format!(
                    "fast retransmission: {asker} duplicate ACKs asking for seq {} reached {who}, which resends that segment without waiting for its timer{}",
                    rel(seq, base),
                    if known_rules {
                        " (smoltcp: on the 3rd duplicate ACK, one segment)"
                    } else {
                        ""
                    }
                ),
            );
        }
    }
    if known_rules && sender.gbn_next.is_some_and(|g| at_or_after(seq, g)) {
        sender.gbn_next = sender.max_end.filter(|m| after(*m, end)).map(|_| end);
        return Recovery::new(
            "go-back-n",
            "resent as part of the recovery after the timeout: smoltcp sends everything from the first unacknowledged byte again (go-back-N, no SACK)"
                .to_string(),
        );
    }
    sender.gbn_next = sender.max_end.filter(|m| after(*m, end)).map(|_| end);
    sender.rto.on_retransmit();
    if since.is_none() && dir == Direction::Rx {
        return Recovery::new(
            "retransmission",
            format!(
                "the server sends seq {}, behind data it sent already, and no earlier copy was seen: a retransmission of a segment lost before it reached this link, or a segment that arrived late (reordered on the way)",
                rel(seq, base)
            ),
        );
    }
    let since = since
        .map(|s| format!(" {s} after it was last sent"))
        .unwrap_or_default();
    // smoltcp restarts its timer on each ACK of new data, and the timer runs at least
    // 1 s: sooner than that after such an ACK crossed this link, it was no timeout.
    let since_ack = acks_received.last_new_t.map(|a| {
        t.total_micros()
            .saturating_sub(a.total_micros())
            .unsigned_abs()
    });
    if known_rules && since_ack.is_some_and(|us| us < SMOLTCP_MIN_RTO_US) {
        return Recovery::new(
            "retransmission",
            format!(
                "{who} sends seq {} again{since}, sooner after the last ACK of new data than smoltcp's retransmission timer allows (1 s at least): in answer to duplicate ACKs",
                rel(seq, base)
            ),
        );
    }
    if known_rules {
        let timeout = sender.rto.on_timeout();
        // The timer last started on an ACK of new data, or on the previous timeout's
        // retransmission, whichever came later.
        let since_timeout = sender.last_timeout_t.map(|p| t.micros_since(p));
        let waited = match (since_ack, since_timeout) {
            (_, Some(st)) if since_ack.is_none_or(|sa| st < sa) => {
                format!(
                    " ({} after the previous timeout's retransmission)",
                    span(st)
                )
            }
            (Some(sa), _) => format!(" ({} after the last ACK of new data)", span(sa)),
            _ => String::new(),
        };
        sender.last_timeout_t = Some(t);
        let mut r = Recovery::new(
            "rto-retransmission",
            format!(
                "retransmission after timeout: {who} had no ACK for seq {}{since}; its timer expired{waited}: {}. smoltcp then resends everything from the first unacknowledged byte, as fast as the window allows (smoltcp is built here without a congestion window: measured, it recovers slower with one; see docs/faults.md)",
                rel(seq, base),
                rto_story(&timeout)
            ),
        );
        r.rto_ms = Some(timeout.expired);
        r
    } else {
        Recovery::new(
            "retransmission",
            format!(
                "{who} sends seq {} again{since}, without 3 duplicate ACKs before it: its retransmission timer, or its own loss detection (SACK, RACK/TLP on Linux)",
                rel(seq, base)
            ),
        )
    }
}

fn name_dup_ack(
    dir: Direction,
    n: u32,
    tcp: &TcpLayer,
    delivered: bool,
    peer_smoltcp: bool,
    base: Option<u32>,
) -> Recovery {
    let ack = rel(tcp.ack_raw, base);
    let text = match dir {
        Direction::Tx => {
            let count = if delivered {
                format!("duplicate ACK #{n}")
            } else {
                "duplicate ACK (lost, so the server does not count it)".to_string()
            };
            let then = if delivered && n == FAST_RETRANSMIT_DUPS && peer_smoltcp {
                "; on this third one the server's smoltcp fast-retransmits the segment"
            } else {
                ""
            };
            format!(
                "{count}: the stack still waits for seq {ack}{}{then}",
                sack_story(tcp, peer_smoltcp, n <= 1)
            )
        }
        Direction::Rx => {
            let count = if delivered {
                format!("duplicate ACK #{n}")
            } else {
                "duplicate ACK (it does not reach the stack)".to_string()
            };
            let then = if delivered && n == FAST_RETRANSMIT_DUPS {
                "; on this third one smoltcp fast-retransmits that segment"
            } else {
                ""
            };
            format!("{count}: the server still waits for seq {ack}{then}")
        }
    };
    Recovery::new("duplicate-ack", text)
}

/// What the SACK blocks of one of the stack's ACKs say (explained in full on the first
/// duplicate ACK of a run, `explain`), or nothing.
fn sack_story(tcp: &TcpLayer, peer_smoltcp: bool, explain: bool) -> String {
    let Some(blocks) = tcp
        .options
        .as_ref()
        .map(|o| &o.sack)
        .filter(|b| !b.is_empty())
    else {
        return String::new();
    };
    let ranges: Vec<String> = blocks
        .iter()
        .map(|[l, r]| format!("{l}–{r} ({} bytes)", r.wrapping_sub(*l)))
        .collect();
    if !explain {
        return format!("; SACK {}", ranges.join(", "));
    }
    format!(
        "; its SACK block{} says it holds {} beyond the hole (smoltcp sends one block, the range the last segment joined{})",
        if blocks.len() == 1 { "" } else { "s" },
        ranges.join(", "),
        if peer_smoltcp {
            "; the lab's smoltcp ignores SACK and resends by the first unacknowledged byte only"
        } else {
            ""
        }
    )
}

fn name_arrival(
    rcv: &mut Receiver,
    seq: u32,
    end: u32,
    fault: Option<&LinkFault>,
    base: Option<u32>,
) -> Option<Recovery> {
    let copy = fault.is_some_and(|f| f.copy);
    let max = rcv.max_ranges();
    let r = match rcv.arrive(seq, end)? {
        Arrival::Duplicate => Recovery::new(
            "duplicate-ignored",
            format!(
                "{}: the stack has all of it already, ignores the data and ACKs again",
                if copy {
                    "a duplicate"
                } else {
                    "data received before"
                }
            ),
        ),
        Arrival::AlreadyHeld => Recovery::new(
            "duplicate-ignored",
            format!(
                "{}: the stack already keeps these bytes out of order; nothing changes, and it ACKs seq {} again",
                if copy { "a duplicate" } else { "data received before" },
                rcv.rcv_nxt.map_or(0, |n| rel(n, base))
            ),
        ),
        Arrival::InOrder { filled: None } => return None,
        Arrival::InOrder {
            filled: Some((s, e)),
        } => Recovery::new(
            "hole-filled",
            format!(
                "fills the hole: the {} bytes kept out of order (seq {} to {}) become readable, and the stack ACKs them all at once",
                e.wrapping_sub(s),
                rel(s, base),
                rel(e, base)
            ),
        ),
        Arrival::Queued { hole, ranges } => Recovery::new(
            "out-of-order-queued",
            format!(
                "out of order: the stack still waits for seq {}, {} bytes before this one; smoltcp keeps it ({ranges} of at most {max} out-of-order ranges now held) and ACKs seq {} at once",
                rel(hole, base),
                seq.wrapping_sub(hole),
                rel(hole, base)
            ),
        ),
        Arrival::NoRoom => Recovery::new(
            "out-of-order-dropped",
            format!(
                "out of order, and smoltcp already keeps {max} out-of-order ranges: dropped without an ACK; the server has to send it again"
            ),
        ),
        Arrival::BeyondWindow => Recovery::new(
            "out-of-order-dropped",
            "beyond the receive window the stack advertised: dropped, and the stack ACKs what it has".to_string(),
        ),
    };
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_model_follows_smoltcp_assembler() {
        let mut r = Receiver {
            rcv_nxt: Some(1000),
            max_ranges: 4,
            ..Receiver::default()
        };
        assert!(matches!(
            r.arrive(1000, 1100),
            Some(Arrival::InOrder { filled: None })
        ));
        assert!(matches!(r.arrive(1000, 1100), Some(Arrival::Duplicate)));
        // holes at 1100..1200, 1300..1400, 1500..1600, 1700..1800
        for s in [1200, 1400, 1600, 1800] {
            assert!(matches!(
                r.arrive(s, s + 100),
                Some(Arrival::Queued { hole: 1100, .. })
            ));
        }
        assert_eq!(r.ranges.len(), 4);
        assert!(matches!(r.arrive(1200, 1300), Some(Arrival::AlreadyHeld)));
        // touching an existing range merges: no new range needed
        assert!(matches!(
            r.arrive(1900, 2000),
            Some(Arrival::Queued { ranges: 4, .. })
        ));
        // a fifth range does not fit
        assert!(matches!(r.arrive(2100, 2200), Some(Arrival::NoRoom)));
        // filling the first hole makes the first range readable
        assert!(matches!(
            r.arrive(1100, 1200),
            Some(Arrival::InOrder {
                filled: Some((1200, 1300))
            })
        ));
        assert_eq!(r.rcv_nxt, Some(1300));
        // the stack's own ACK moves the model on
        r.sync(1700);
        assert_eq!(r.ranges, vec![(1800, 2000)]);
        r.window_end = Some(5000);
        assert!(matches!(r.arrive(5000, 5100), Some(Arrival::BeyondWindow)));
    }

    #[test]
    fn the_timer_model_doubles_until_a_sample_and_caps_at_60_s() {
        let t0 = Instant::from_micros(0);
        let mut m = RtoModel::default();
        let mut seen = Vec::new();
        for _ in 0..8 {
            let t = m.on_timeout();
            seen.push((t.expired, t.base, t.backoffs));
        }
        assert_eq!(seen[0], (1000, 1000, 0));
        assert_eq!(seen[3], (8000, 1000, 3));
        assert_eq!(seen[7].0, 60_000);
        let story = rto_story(&Timeout {
            expired: 60_000,
            base: 1000,
            backoffs: 7,
            next: 60_000,
        });
        assert!(
            story.starts_with("RTO 60 s (1 s doubled 7 times, at most 60 s:"),
            "{story}"
        );
        // A sample on new data resets it; a retransmission before the ACK cancels it.
        m.on_send(t0, 100);
        m.on_retransmit();
        m.on_ack(Instant::from_micros(20_000), 100);
        assert_eq!(m.rto_ms, 60_000);
        m.on_send(Instant::from_micros(30_000), 200);
        m.on_ack(Instant::from_micros(50_000), 200);
        assert_eq!((m.rto_ms, m.backoffs, m.base_ms), (1000, 0, 1000));
    }

    #[test]
    fn sequence_helpers_wrap() {
        assert!(after(5, u32::MAX));
        assert!(at_or_after(7, 7));
        assert!(!after(u32::MAX, 5));
    }
}
