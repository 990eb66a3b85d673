//! [`FaultConfig`]: what fault injection is asked to do (`--loss`, `--reorder`,
//! `--duplicate`, `--corrupt`, `--delay`, `--jitter`, `--rate`, `--faults-dir`), how the
//! options are read and checked, and the words a trace uses for it. The device that does
//! it is `fetchscope_net::FaultLink`.

use std::fmt;
use std::time::Duration;

use fetchscope_wire::Direction;

use super::ms;

/// The largest `--delay` and `--jitter`.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// The slowest and fastest `--rate`, in bit/s.
pub const RATE_RANGE: std::ops::RangeInclusive<u64> = 1_000..=100_000_000_000;
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Which directions fault injection applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaultDirections {
    /// Only packets on their way to the stack.
    Rx,
    /// Only packets the stack sends.
    Tx,
    /// Both (the default).
    #[default]
    Both,
}

impl FaultDirections {
    /// True when faults apply to packets going `dir`.
    pub fn applies(self, dir: Direction) -> bool {
        matches!(
            (self, dir),
            (FaultDirections::Both, _)
                | (FaultDirections::Rx, Direction::Rx)
                | (FaultDirections::Tx, Direction::Tx)
        )
    }

    /// `rx`, `tx` or `both`.
    pub fn name(self) -> &'static str {
        match self {
            FaultDirections::Rx => "rx",
            FaultDirections::Tx => "tx",
            FaultDirections::Both => "both",
        }
    }
}

/// A fault configuration that cannot be used, with the option to fix in the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultConfigError {
    /// A percentage outside 0–100 (or not a number).
    #[error("--{option} must be a percentage from 0 to 100, not {value}")]
    Percent {
        /// The option, e.g. "loss".
        option: &'static str,
        /// What was given.
        value: String,
    },
    /// A delay or jitter that is negative, not a number or over [`MAX_DELAY`].
    #[error("--{option} must be a number of milliseconds from 0 to 60000, not {value}")]
    Delay {
        /// The option, e.g. "delay".
        option: &'static str,
        /// What was given.
        value: String,
    },
    /// A rate that could not be read or is outside [`RATE_RANGE`].
    #[error(
        "--rate {value}: {reason} (write it like tc: 10mbit, 512kbit, 1gbit, or bytes per second as 100kbps; 1kbit to 100gbit)"
    )]
    Rate {
        /// What was given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// What to inflict on the packets of a link.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultConfig {
    /// Percentage of packets dropped.
    pub loss: f64,
    /// Percentage of packets held back so the next one overtakes them.
    pub reorder: f64,
    /// Percentage of packets sent twice.
    pub duplicate: f64,
    /// Percentage of packets with one bit flipped.
    pub corrupt: f64,
    /// Fixed extra delay.
    pub delay: Duration,
    /// Uniform variation of the delay, ± this much (never below zero, never reordering).
    pub jitter: Duration,
    /// Bandwidth limit in bit/s (`None`: no limit beyond the link's own).
    pub rate_bps: Option<u64>,
    /// The directions the faults apply to.
    pub directions: FaultDirections,
}

impl FaultConfig {
    /// Checks every value (percentages 0–100, delays up to a minute, rates 1 kbit/s to
    /// 100 Gbit/s).
    pub fn validate(&self) -> Result<(), FaultConfigError> {
        for (option, v) in [
            ("loss", self.loss),
            ("reorder", self.reorder),
            ("duplicate", self.duplicate),
            ("corrupt", self.corrupt),
        ] {
            check_percent(option, v)?;
        }
        for (option, d) in [("delay", self.delay), ("jitter", self.jitter)] {
            if d > MAX_DELAY {
                return Err(FaultConfigError::Delay {
                    option,
                    value: format!("{}", d.as_millis()),
                });
            }
        }
        if let Some(r) = self.rate_bps
            && !RATE_RANGE.contains(&r)
        {
            return Err(FaultConfigError::Rate {
                value: format!("{r}bit"),
                reason: "out of range".to_string(),
            });
        }
        Ok(())
    }

    /// True when the configuration would do anything at all.
    pub fn is_active(&self) -> bool {
        self.loss > 0.0
            || self.reorder > 0.0
            || self.duplicate > 0.0
            || self.corrupt > 0.0
            || self.delay > Duration::ZERO
            || self.jitter > Duration::ZERO
            || self.rate_bps.is_some()
    }
}

impl fmt::Display for FaultConfig {
    /// E.g. "loss 5 %, reorder 1 %, delay 20 ms ± 5 ms, rate 10 Mbit/s, both directions".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (name, v) in [
            ("loss", self.loss),
            ("reorder", self.reorder),
            ("duplicate", self.duplicate),
            ("corrupt", self.corrupt),
        ] {
            if v > 0.0 {
                parts.push(format!("{name} {v} %"));
            }
        }
        if self.delay > Duration::ZERO || self.jitter > Duration::ZERO {
            let mut d = format!("delay {}", ms(micros(self.delay)));
            if self.jitter > Duration::ZERO {
                d.push_str(&format!(" ± {}", ms(micros(self.jitter))));
            }
            parts.push(d);
        }
        if let Some(r) = self.rate_bps {
            parts.push(format!("rate {}", rate_words(r)));
        }
        if parts.is_empty() {
            return f.write_str("none");
        }
        let dirs = match self.directions {
            FaultDirections::Both => "both directions",
            FaultDirections::Rx => "received packets only",
            FaultDirections::Tx => "sent packets only",
        };
        write!(f, "{}, {dirs}", parts.join(", "))
    }
}

fn check_percent(option: &'static str, v: f64) -> Result<(), FaultConfigError> {
    if v.is_finite() && (0.0..=100.0).contains(&v) {
        Ok(())
    } else {
        Err(FaultConfigError::Percent {
            option,
            value: v.to_string(),
        })
    }
}

/// Reads a percentage option such as `--loss 5` or `--loss 2.5%`.
pub fn parse_percent(option: &'static str, s: &str) -> Result<f64, FaultConfigError> {
    let t = s.trim();
    let t = t.strip_suffix('%').unwrap_or(t).trim();
    let v: f64 = t.parse().map_err(|_| FaultConfigError::Percent {
        option,
        value: s.to_string(),
    })?;
    check_percent(option, v).map_err(|_| FaultConfigError::Percent {
        option,
        value: s.to_string(),
    })?;
    Ok(v)
}

/// Reads a delay option in milliseconds, such as `--delay 20` or `--jitter 0.5ms`.
pub fn parse_millis(option: &'static str, s: &str) -> Result<Duration, FaultConfigError> {
    let bad = || FaultConfigError::Delay {
        option,
        value: s.to_string(),
    };
    let t = s.trim();
    let t = t.strip_suffix("ms").unwrap_or(t).trim();
    let v: f64 = t.parse().map_err(|_| bad())?;
    if !(v.is_finite() && v >= 0.0 && v <= MAX_DELAY.as_millis() as f64) {
        return Err(bad());
    }
    Ok(Duration::from_micros((v * 1000.0).round() as u64))
}

/// Reads a rate the way `tc` writes it: `10mbit`, `512kbit`, `1gbit`, `9600bit` or a bare
/// number (bit/s); `kbps`/`mbps`/`gbps`/`bps` are *bytes* per second, as in tc. Prefixes
/// are decimal (k = 1000).
pub fn parse_rate(s: &str) -> Result<u64, FaultConfigError> {
    let err = |reason: &str| FaultConfigError::Rate {
        value: s.to_string(),
        reason: reason.to_string(),
    };
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| err("not a number"))?;
    let mult = match unit.trim() {
        "" | "bit" => 1.0,
        "k" | "kbit" => 1e3,
        "m" | "mbit" => 1e6,
        "g" | "gbit" => 1e9,
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        _ => return Err(err("unknown unit")),
    };
    let bps = v * mult;
    if !bps.is_finite() || bps < *RATE_RANGE.start() as f64 || bps > *RATE_RANGE.end() as f64 {
        return Err(err("out of range"));
    }
    Ok(bps.round() as u64)
}

/// `10 Mbit/s`, `512 kbit/s`.
fn rate_words(bps: u64) -> String {
    let (v, unit) = if bps >= 1_000_000_000 {
        (bps as f64 / 1e9, "Gbit/s")
    } else if bps >= 1_000_000 {
        (bps as f64 / 1e6, "Mbit/s")
    } else if bps >= 1_000 {
        (bps as f64 / 1e3, "kbit/s")
    } else {
        (bps as f64, "bit/s")
    };
    let text = format!("{v:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_like_tc_and_are_checked() {
        assert_eq!(parse_rate("10mbit"), Ok(10_000_000));
        assert_eq!(parse_rate("512kbit"), Ok(512_000));
        assert_eq!(parse_rate("1.5Mbit"), Ok(1_500_000));
        assert_eq!(parse_rate("100kbps"), Ok(800_000));
        assert_eq!(parse_rate("9600"), Ok(9_600));
        assert!(parse_rate("10 furlongs").is_err());
        assert!(parse_rate("999bit").is_err());
        assert!(parse_rate("-5mbit").is_err());
        assert!(parse_rate("200gbit").is_err());
        let e = parse_rate("fast").unwrap_err().to_string();
        assert!(e.contains("10mbit"), "{e}");

        assert_eq!(parse_percent("loss", "5"), Ok(5.0));
        assert_eq!(parse_percent("loss", "2.5%"), Ok(2.5));
        assert!(parse_percent("loss", "101").is_err());
        assert!(parse_percent("loss", "-1").is_err());
        assert!(parse_percent("loss", "NaN").is_err());
        let e = parse_percent("corrupt", "x").unwrap_err().to_string();
        assert_eq!(e, "--corrupt must be a percentage from 0 to 100, not x");

        assert_eq!(parse_millis("delay", "20"), Ok(Duration::from_millis(20)));
        assert_eq!(
            parse_millis("jitter", "0.5ms"),
            Ok(Duration::from_micros(500))
        );
        assert!(parse_millis("delay", "60001").is_err());
        assert!(parse_millis("delay", "-3").is_err());

        let bad = FaultConfig {
            loss: 150.0,
            ..FaultConfig::default()
        };
        assert!(bad.validate().is_err());
        assert!(!FaultConfig::default().is_active());
        let cfg = FaultConfig {
            loss: 5.0,
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(5),
            rate_bps: Some(10_000_000),
            ..FaultConfig::default()
        };
        assert!(cfg.is_active());
        assert_eq!(
            cfg.to_string(),
            "loss 5 %, delay 20 ms ± 5 ms, rate 10 Mbit/s, both directions"
        );
    }
}
