//! [`Instant`]: a moment on the fetch's own clock. The core never reads a clock: the
//! driver says what time it is (the built-in lab's virtual time, or the time on a real
//! link), in microseconds from the link's time zero.

use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// A moment on the link's clock, in microseconds from its time zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    micros: i64,
}

impl Instant {
    /// The link's time zero.
    pub const ZERO: Instant = Instant { micros: 0 };

    /// `micros` microseconds after time zero.
    pub const fn from_micros(micros: i64) -> Instant {
        Instant { micros }
    }

    /// `millis` milliseconds after time zero.
    pub const fn from_millis(millis: i64) -> Instant {
        Instant {
            micros: millis.saturating_mul(1000),
        }
    }

    /// Microseconds since time zero.
    pub const fn total_micros(self) -> i64 {
        self.micros
    }

    /// Microseconds from `earlier` to `self`; 0 when `earlier` is later.
    pub fn micros_since(self, earlier: Instant) -> u64 {
        u64::try_from(self.micros.saturating_sub(earlier.micros)).unwrap_or(0)
    }
}

fn micros_of(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant {
            micros: self.micros.saturating_add(micros_of(d)),
        }
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant {
            micros: self.micros.saturating_sub(micros_of(d)),
        }
    }
}

impl Sub for Instant {
    type Output = Duration;
    /// The time from `earlier` to `self`; zero when `earlier` is later.
    fn sub(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.micros_since(earlier))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_never_goes_negative() {
        let a = Instant::from_millis(10);
        let b = a + Duration::from_micros(1500);
        assert_eq!(b.total_micros(), 11_500);
        assert_eq!(b - a, Duration::from_micros(1500));
        assert_eq!(a - b, Duration::ZERO);
        assert_eq!(b.micros_since(a), 1500);
        assert_eq!((b - Duration::from_millis(2)).total_micros(), 9_500);
        assert_eq!(
            Instant::from_micros(i64::MAX) + Duration::MAX,
            Instant::from_micros(i64::MAX)
        );
    }
}
