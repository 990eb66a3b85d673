//! The error type of every decoder in this crate.

/// Why some bytes could not be decoded as the layer they claim to be.
///
/// The dissector never returns these: it records them as
/// [`DecodeProblem::Malformed`](crate::DecodeProblem::Malformed) in
/// [`Dissection::problems`](crate::Dissection::problems).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the layer needs.
    #[error("truncated {what}: {have} bytes, {need} needed")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes available.
        have: usize,
        /// Bytes needed.
        need: usize,
    },
    /// A field holds a value the layer does not allow.
    #[error("{field} {value}")]
    BadField {
        /// The field's name.
        field: &'static str,
        /// The offending value, as shown to a person.
        value: String,
    },
    /// The checksum does not match the contents.
    #[error("bad checksum 0x{0:04x}")]
    BadChecksum(u16),
    /// A parser for the layer rejected the bytes.
    #[error("{0}")]
    Rejected(String),
}

impl DecodeError {
    /// Shorthand for [`DecodeError::BadField`].
    pub(crate) fn field(field: &'static str, value: impl std::fmt::Display) -> Self {
        DecodeError::BadField {
            field,
            value: value.to_string(),
        }
    }

    /// [`DecodeError::Truncated`] from etherparse's length error while reading `what`.
    pub(crate) fn truncated(what: &'static str, e: &etherparse::err::LenError) -> Self {
        DecodeError::Truncated {
            what,
            have: e.len,
            need: e.required_len,
        }
    }

    /// Checks that `have` bytes are at least `need`.
    pub(crate) fn need(what: &'static str, have: usize, need: usize) -> Result<(), Self> {
        if have < need {
            Err(DecodeError::Truncated { what, have, need })
        } else {
            Ok(())
        }
    }
}
