//! What fault injection did to a packet, as facts ([`LinkFault`]) and in words: the
//! device (`fetchscope_net::FaultLink`) decides, the trace tells.

pub mod config;

use std::time::Duration;

use fetchscope_wire::Direction;
use serde::Serialize;

/// The most packets a direction holds (delayed, rate-limited or reordered); one more is
/// dropped, like netem's default `limit 1000`.
pub const LANE_LIMIT: usize = 1000;
/// The longest a reordered packet waits for another to overtake it.
pub const REORDER_HOLD: Duration = Duration::from_millis(10);

/// `12.345 ms`, `1 ms`: a time in microseconds as fault injection words it.
pub fn ms(us: u64) -> String {
    if us.is_multiple_of(1000) {
        format!("{} ms", us / 1000)
    } else {
        format!("{:.3} ms", us as f64 / 1000.0)
    }
}

/// Why fault injection dropped a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropCause {
    /// `--loss`.
    Loss,
    /// The direction already held [`LANE_LIMIT`] packets (tail drop behind `--rate` or
    /// `--delay`).
    QueueFull,
}

/// Which bit of which byte fault injection flipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Corruption {
    /// Offset of the byte in the IP packet, from 0.
    pub byte: usize,
    /// The bit flipped, 0 = least significant.
    pub bit: u8,
}

/// What fault injection did to one packet. Empty (`Default`) means nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LinkFault {
    /// Never delivered: a sent packet never reached the far end, a received one never
    /// reached the stack.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dropped: bool,
    /// Why it was dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_cause: Option<DropCause>,
    /// One bit flipped: in what travelled on (sent packets; the trace shows the bytes
    /// the stack sent) or in what the stack received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrupted: Option<Corruption>,
    /// A second copy travelled too (sent packets), or follows this one (received).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicated: bool,
    /// This received packet is the injected copy of the one before it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub copy: bool,
    /// Held back so that a later packet overtook it (or, when none came, for
    /// [`REORDER_HOLD`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reordered: bool,
    /// How many later packets overtook it.
    #[serde(skip_serializing_if = "is_zero_usize")]
    pub overtaken_by: usize,
    /// Extra delay from `--delay`/`--jitter`, in microseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub delay_us: u64,
    /// Time spent queued behind `--rate` (and held for reordering), in microseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub queue_us: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_usize(v: &usize) -> bool {
    *v == 0
}

impl LinkFault {
    /// True when fault injection did nothing to the packet.
    pub fn is_empty(&self) -> bool {
        *self == LinkFault::default()
    }

    /// One phrase for people, e.g. "dropped by fault injection: never reached the stack".
    pub fn describe(&self, dir: Direction) -> String {
        if self.dropped {
            let cause = match self.drop_cause {
                Some(DropCause::QueueFull) => format!(
                    " (its queue already held {LANE_LIMIT} packets: tail drop behind --rate/--delay)"
                ),
                _ => String::new(),
            };
            return match dir {
                Direction::Tx => {
                    format!("dropped by fault injection{cause}: the peer never sees it")
                }
                Direction::Rx => {
                    format!("dropped by fault injection{cause}: it never reached the stack")
                }
            };
        }
        let mut parts = Vec::new();
        if self.copy {
            parts.push(
                "duplicate injected by fault injection (a copy of the packet before)".to_string(),
            );
        }
        if let Some(c) = self.corrupted {
            parts.push(match dir {
                Direction::Tx => format!(
                    "corrupted on the wire by fault injection (bit {} of byte {} flipped; the bytes shown are the stack's)",
                    c.bit, c.byte
                ),
                Direction::Rx => format!(
                    "corrupted by fault injection (bit {} of byte {} flipped before the stack got it)",
                    c.bit, c.byte
                ),
            });
        }
        if self.duplicated {
            parts.push(match dir {
                Direction::Tx => {
                    "duplicated by fault injection: a second copy went out".to_string()
                }
                Direction::Rx => "duplicated by fault injection: a copy follows".to_string(),
            });
        }
        if self.reordered {
            parts.push(match self.overtaken_by {
                0 => format!(
                    "held back by fault injection so that the next packet overtakes it (at most {})",
                    ms(REORDER_HOLD.as_micros() as u64)
                ),
                1 => "reordered by fault injection: the next packet overtook it".to_string(),
                n => format!("reordered by fault injection: {n} later packets overtook it"),
            });
        }
        if self.delay_us > 0 {
            parts.push(format!("delayed {} by fault injection", ms(self.delay_us)));
        }
        if self.queue_us > 0 && !self.reordered {
            parts.push(format!(
                "queued {} behind the rate limit",
                ms(self.queue_us)
            ));
        }
        parts.join("; ")
    }
}
