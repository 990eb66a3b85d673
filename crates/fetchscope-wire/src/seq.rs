//! TCP sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4).

/// `a - b` as a signed distance, correct while the two are less than 2^31 apart.
pub fn diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b).cast_signed())
}

/// True when `a` comes after `b`.
pub fn after(a: u32, b: u32) -> bool {
    diff(a, b) > 0
}

/// True when `a` is `b` or comes after it.
pub fn at_or_after(a: u32, b: u32) -> bool {
    diff(a, b) >= 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_order() {
        assert_eq!(diff(5, 3), 2);
        assert_eq!(diff(3, 5), -2);
        assert_eq!(diff(2, u32::MAX - 1), 4);
        assert!(after(1, u32::MAX));
        assert!(!after(7, 7));
        assert!(at_or_after(7, 7) && at_or_after(1, u32::MAX) && !at_or_after(u32::MAX, 1));
    }
}
