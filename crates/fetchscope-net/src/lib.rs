//! Devices for fetchscope's userspace stack.
//!
//! The client stack never talks to the outside world directly: it talks to a [`Link`]
//! (the built-in lab's in-memory wire, or a TUN device) through a [`TapDevice`], which is
//! the smoltcp [`Device`](smoltcp::phy::Device) that records every packet with its own
//! timestamp. Servers inside the built-in lab use the plain [`QueueDevice`].

pub mod fault;
mod link;
mod queue;
pub mod route;
mod sim;
mod tap;
mod tun;
mod tun_writer;

/// The shared bytes of a packet, as [`Link::recv`] hands them out.
pub use bytes::Bytes;
pub use fault::{DroppedPacket, FaultConfig, FaultDirections, FaultLink, LinkFault};
pub use link::{Link, LinkError, WaitOutcome};
pub use queue::QueueDevice;
pub use sim::{SimWire, WireConfig};
pub use tap::{Frame, TapDevice};
pub use tun::{TunError, TunLink, TunOptions};

pub use fetchscope_wire::Direction;
