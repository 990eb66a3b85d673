//! The body of `GET /bytes/N`: a fixed, documented byte pattern.
//!
//! Byte number `i` (counting from 0) of the body is `i mod 251`. 251 is prime, so the
//! pattern does not line up with any power-of-two block size, and anyone can compute the
//! expected SHA-256 of N bytes without the lab.

/// The largest `N` that `/bytes/N` serves (1 GiB); larger requests get 400.
pub const MAX_GENERATED_BYTES: u64 = 1 << 30;

/// Byte number `offset` of a `/bytes/N` body.
pub fn generated_byte(offset: u64) -> u8 {
    // `offset % 251` is below 251, so the cast is exact.
    (offset % 251) as u8
}

/// Fills `buf` with the `/bytes/N` body bytes starting at `offset`.
pub fn fill_generated(offset: u64, buf: &mut [u8]) {
    // The pattern repeats every 251 bytes: copy runs of one period instead of counting
    // byte by byte (the lab serves tens of MiB this way).
    let start = (offset % 251) as usize;
    let mut rest = buf;
    let mut from = start;
    while !rest.is_empty() {
        let run = PERIOD.get(from..).unwrap_or_default();
        let n = run.len().min(rest.len());
        let (head, tail) = rest.split_at_mut(n);
        head.copy_from_slice(run.get(..n).unwrap_or_default());
        rest = tail;
        from = 0;
    }
}

/// One period of the pattern: 0, 1, …, 250.
const PERIOD: [u8; 251] = {
    let mut p = [0u8; 251];
    let mut i = 0;
    while i < 251 {
        p[i] = i as u8;
        i += 1;
    }
    p
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_matches_the_byte_function_at_any_offset() {
        for offset in [0u64, 1, 250, 251, 252, 1_000_003, u64::MAX - 600] {
            let mut buf = [0u8; 600];
            fill_generated(offset, &mut buf);
            for (i, b) in buf.iter().enumerate() {
                assert_eq!(*b, generated_byte(offset + i as u64));
            }
        }
        assert_eq!(generated_byte(250), 250);
        assert_eq!(generated_byte(251), 0);
    }
}
