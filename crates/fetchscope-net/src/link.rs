//! The [`Link`] trait: what the client stack's device sits on.

use bytes::Bytes;
use smoltcp::time::Instant;

/// Why a link failed. Every variant says what to do next in its message.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Reading from or writing to the device failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. "reading from TUN device fsc0".
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The link cannot go on (e.g. the device disappeared).
    #[error("{0}")]
    Broken(String),
}

/// What a [`Link::wait`] call ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// A packet may be waiting for the stack (call [`Link::recv`]).
    Ready,
    /// The deadline passed without a packet.
    Deadline,
    /// Nothing will ever happen again on this link (a virtual link with no pending
    /// packets and no deadline to advance to).
    Idle,
}

/// One side of an IP link for the client stack: the built-in lab or a TUN device.
///
/// Times are [`Instant`]s on the link's own clock, which starts at zero when the fetch
/// starts. Real links follow the monotonic wall clock; the built-in lab has a virtual
/// clock that only moves inside [`Link::wait`] and [`Link::send`].
pub trait Link {
    /// The current time on this link's clock.
    fn now(&self) -> Instant;
    /// Hands one IP packet from the stack to the link.
    fn send(&mut self, packet: &[u8]) -> Result<(), LinkError>;
    /// Takes the next IP packet for the stack, if one has arrived. The bytes are shared
    /// (the trace keeps them), so a link can hand out slices of one reused buffer.
    fn recv(&mut self) -> Result<Option<Bytes>, LinkError>;
    /// Waits until a packet may have arrived or `deadline` has passed, without spinning:
    /// real links block on their file descriptor, virtual links advance their clock.
    fn wait(&mut self, deadline: Option<Instant>) -> Result<WaitOutcome, LinkError>;
    /// The largest IP packet the link carries.
    fn mtu(&self) -> usize;
    /// A short description for people, e.g. "built-in lab" or "TUN device fsc0".
    fn describe(&self) -> String;
    /// True when the link's clock is virtual: it stands still while nobody waits on the
    /// link (the built-in lab), so a paused fetch never times out.
    fn is_virtual(&self) -> bool {
        false
    }
    /// A file descriptor that becomes readable when a packet arrives, for callers that
    /// wait on other things too (a person's key press while a fetch is paused).
    fn readiness_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
    /// What fault injection did to the packet of the last `send` or `recv` call, if
    /// anything (see [`FaultLink`](crate::FaultLink)); plain links never report one.
    fn last_fault(&mut self) -> Option<crate::LinkFault> {
        None
    }
    /// Packets fault injection dropped on their way to the stack since the last call,
    /// each with the time it arrived; plain links never drop one.
    fn take_dropped(&mut self) -> Vec<crate::DroppedPacket> {
        Vec::new()
    }
}

impl<L: Link + ?Sized> Link for Box<L> {
    fn now(&self) -> Instant {
        (**self).now()
    }
    fn send(&mut self, packet: &[u8]) -> Result<(), LinkError> {
        (**self).send(packet)
    }
    fn recv(&mut self) -> Result<Option<Bytes>, LinkError> {
        (**self).recv()
    }
    fn wait(&mut self, deadline: Option<Instant>) -> Result<WaitOutcome, LinkError> {
        (**self).wait(deadline)
    }
    fn mtu(&self) -> usize {
        (**self).mtu()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn is_virtual(&self) -> bool {
        (**self).is_virtual()
    }
    fn readiness_fd(&self) -> Option<std::os::fd::RawFd> {
        (**self).readiness_fd()
    }
    fn last_fault(&mut self) -> Option<crate::LinkFault> {
        (**self).last_fault()
    }
    fn take_dropped(&mut self) -> Vec<crate::DroppedPacket> {
        (**self).take_dropped()
    }
}
