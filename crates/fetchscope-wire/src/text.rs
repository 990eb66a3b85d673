//! [`InlineText`]: a short line of text that lives inside its owner, not on the heap.

use std::fmt;
use std::ops::Deref;

use smallvec::SmallVec;

/// Bytes an [`InlineText`] holds without a heap allocation: a packet's summary line
/// (`[ACK] seq=19332308 ack=515 win=64512 len=1460`) is about 50 to 90.
pub const INLINE_TEXT: usize = 128;

/// Text of up to [`INLINE_TEXT`] bytes kept inline (longer text moves to the heap),
/// written with [`fmt::Write`]. A packet event's summary is one: made for every packet,
/// it would otherwise be a heap allocation each time. Reads as a `str`; serialised as a
/// JSON string.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct InlineText(SmallVec<[u8; INLINE_TEXT]>);

impl InlineText {
    /// An empty text.
    pub fn new() -> Self {
        InlineText(SmallVec::new())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only `str`s are ever written into it, so this never fails.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Appends `s`.
    pub fn push_str(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    /// Appends `c`.
    pub fn push(&mut self, c: char) {
        self.push_str(c.encode_utf8(&mut [0; 4]));
    }

    /// True when the text had to move to the heap.
    pub fn spilled(&self) -> bool {
        self.0.spilled()
    }
}

impl fmt::Write for InlineText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

impl Deref for InlineText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for InlineText {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for InlineText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for InlineText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<&str> for InlineText {
    fn from(s: &str) -> Self {
        let mut t = InlineText::new();
        t.push_str(s);
        t
    }
}

impl From<String> for InlineText {
    fn from(s: String) -> Self {
        InlineText::from(s.as_str())
    }
}

impl PartialEq<str> for InlineText {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for InlineText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for InlineText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    #[test]
    fn short_text_stays_inline_and_long_text_moves() {
        let mut t = InlineText::new();
        let _ = write!(t, "[ACK] seq={} ack={}", 19_332_308u32, 515);
        t.push('·');
        assert_eq!(t, "[ACK] seq=19332308 ack=515·");
        assert!(!t.spilled());
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"[ACK] seq=19332308 ack=515·\""
        );
        let long = "x".repeat(INLINE_TEXT + 1);
        let t = InlineText::from(long.as_str());
        assert!(t.spilled());
        assert_eq!(t.as_str(), long);
        assert_eq!(format!("{t}|{t:?}"), format!("{long}|{long:?}"));
    }
}
