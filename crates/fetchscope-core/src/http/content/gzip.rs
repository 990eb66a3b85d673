//! `gzip` / `x-gzip` (RFC 1952), one member after another.
//!
//! Like urllib3's `GzipDecoder`, members are decoded one after another, and bytes after
//! a complete member that do not start a new gzip header are ignored (some servers pad
//! responses). A member that starts properly and then breaks or ends early is an error.

use std::io::Write as _;

use flate2::write::GzDecoder;

use super::describe;

/// A streaming gzip decoder with bounded buffers.
#[derive(Debug)]
pub(crate) struct GzipStage {
    decoder: GzDecoder<Vec<u8>>,
    /// Output of finished members not yet taken.
    pending: Vec<u8>,
    /// Whether the current member has received any byte.
    member_fed: bool,
    /// Members completed (checksum verified).
    members: u32,
    /// Set once garbage after a member was found: everything else is ignored.
    ignoring: bool,
}

impl GzipStage {
    /// A decoder waiting for the first member's header.
    pub(crate) fn new() -> Self {
        Self {
            decoder: GzDecoder::new(Vec::new()),
            pending: Vec::new(),
            member_fed: false,
            members: 0,
            ignoring: false,
        }
    }

    /// Consumes part of non-empty `input` (at least one byte unless an error is returned).
    pub(crate) fn write(&mut self, input: &[u8]) -> Result<usize, String> {
        loop {
            if self.ignoring {
                return Ok(input.len());
            }
            let started = self.decoder.header().is_some();
            match self.decoder.write(input) {
                Ok(0) if !input.is_empty() => self.end_member()?,
                Ok(used) => {
                    self.member_fed |= used > 0;
                    return Ok(used);
                }
                Err(_) if self.members > 0 && !started => {
                    self.ignoring = true;
                }
                Err(error) => return Err(describe(&error)),
            }
        }
    }

    /// Moves decoded bytes held inside the decoder to the output.
    pub(crate) fn flush(&mut self) -> Result<(), String> {
        self.decoder.flush().map_err(|e| describe(&e))
    }

    /// Checks that the last member was complete; an empty body is fine.
    pub(crate) fn finish(&mut self) -> Result<(), String> {
        if self.ignoring || !self.member_fed {
            return Ok(());
        }
        self.decoder.try_finish().map_err(|e| describe(&e))
    }

    /// Takes the decoded bytes produced so far.
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.pending);
        out.append(self.decoder.get_mut());
        out
    }

    /// Verifies the finished member's checksum and starts a new member.
    fn end_member(&mut self) -> Result<(), String> {
        let done = std::mem::replace(&mut self.decoder, GzDecoder::new(Vec::new()));
        let out = done.finish().map_err(|e| describe(&e))?;
        self.pending.extend_from_slice(&out);
        self.members = self.members.saturating_add(1);
        self.member_fed = false;
        Ok(())
    }
}
