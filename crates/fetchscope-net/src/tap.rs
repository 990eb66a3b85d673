//! [`TapDevice`]: the smoltcp device over a [`Link`] that records every packet.

use bytes::{Bytes, BytesMut};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::{Direction, Link, LinkError};

/// How much room the send buffer takes at a time (about 40 full-size packets).
const TX_CHUNK: usize = 64 * 1024;

/// One packet as the stack sent or received it, with the link's time at that moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// When the packet was read from or written to the link.
    pub t: Instant,
    /// Sent by the stack (`Tx`) or received by it (`Rx`).
    pub dir: Direction,
    /// The IP packet, byte for byte (shared with the stack's receive, not copied).
    pub data: Bytes,
    /// What fault injection did to it (see [`FaultLink`](crate::FaultLink)); a received
    /// frame that was `dropped` never reached the stack.
    pub fault: Option<crate::LinkFault>,
}

/// A smoltcp [`Device`] over a [`Link`], recording each packet exactly once.
///
/// The owner drains the record with [`TapDevice::take_frames`] after each poll step and
/// checks [`TapDevice::take_error`], since smoltcp's device API has no error channel.
#[derive(Debug)]
pub struct TapDevice<L> {
    link: L,
    frames: Vec<Frame>,
    error: Option<LinkError>,
    /// Packets read (and recorded) ahead of the stack, handed to it first.
    held: std::collections::VecDeque<Bytes>,
    /// Where sent packets are built: slices of it become the frames, and its space is
    /// reused once they are gone.
    tx: BytesMut,
    /// An MTU below the link's (`--mtu`, or a path MTU learned from ICMP).
    mtu_limit: Option<usize>,
}

impl<L: Link> TapDevice<L> {
    /// Wraps `link`.
    pub fn new(link: L) -> Self {
        TapDevice {
            link,
            frames: Vec::new(),
            error: None,
            held: std::collections::VecDeque::new(),
            tx: BytesMut::new(),
            mtu_limit: None,
        }
    }

    /// The IP MTU the stack is told: the link's, or the limit set with
    /// [`TapDevice::limit_mtu`] when that is smaller.
    pub fn mtu(&self) -> usize {
        let link = self.link.mtu();
        self.mtu_limit.map_or(link, |m| m.min(link))
    }

    /// Reports at most `mtu` bytes as the IP MTU from now on (`None`: the link's own).
    ///
    /// smoltcp reads a device's capabilities once, when its `Interface` is made: the
    /// owner makes a new `Interface` over this device for the change to take effect (its
    /// sockets keep their state; a TCP socket sizes every segment it sends or resends
    /// from the interface's MTU at that moment).
    pub fn limit_mtu(&mut self, mtu: Option<usize>) {
        self.mtu_limit = mtu;
    }

    /// The link underneath.
    pub fn link(&self) -> &L {
        &self.link
    }

    /// The link underneath, for waiting on it.
    pub fn link_mut(&mut self) -> &mut L {
        &mut self.link
    }

    /// Takes the packets recorded since the last call, in the order they crossed the device.
    pub fn take_frames(&mut self) -> Vec<Frame> {
        std::mem::take(&mut self.frames)
    }

    /// Swaps the packets recorded since the last call into `into` (which should be empty;
    /// the device records into it from now on, reusing its room).
    pub fn swap_frames(&mut self, into: &mut Vec<Frame>) {
        std::mem::swap(&mut self.frames, into);
    }

    /// True when packets were recorded since the last [`TapDevice::take_frames`].
    pub fn has_frames(&self) -> bool {
        !self.frames.is_empty()
    }

    /// Reads up to `max` waiting packets off the link now, recording each with its
    /// arrival time, and keeps them for the stack's next receives (which don't record them
    /// again). For watching a real link while the stack is paused.
    pub fn prefetch(&mut self, max: usize) -> Result<usize, LinkError> {
        let mut n = 0;
        while n < max {
            match self.link.recv()? {
                Some(data) => {
                    self.record_dropped();
                    self.frames.push(Frame {
                        t: self.link.now(),
                        dir: Direction::Rx,
                        data: data.clone(),
                        fault: self.link.last_fault(),
                    });
                    self.held.push_back(data);
                    n += 1;
                }
                None => {
                    self.record_dropped();
                    break;
                }
            }
        }
        Ok(n)
    }

    /// Records the packets fault injection dropped on their way in, with their times.
    fn record_dropped(&mut self) {
        for d in self.link.take_dropped() {
            self.frames.push(Frame {
                t: d.t,
                dir: Direction::Rx,
                data: Bytes::from(d.data),
                fault: Some(d.fault),
            });
        }
    }

    /// Takes the first link error seen since the last call.
    pub fn take_error(&mut self) -> Option<LinkError> {
        self.error.take()
    }
}

impl<L: Link> Device for TapDevice<L> {
    type RxToken<'a>
        = TapRxToken
    where
        Self: 'a;
    type TxToken<'a>
        = TapTxToken<'a, L>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        if self.error.is_some() {
            return None;
        }
        if let Some(data) = self.held.pop_front() {
            return Some((TapRxToken { data }, TapTxToken { dev: self }));
        }
        match self.link.recv() {
            Ok(Some(data)) => {
                self.record_dropped();
                self.frames.push(Frame {
                    t: self.link.now(),
                    dir: Direction::Rx,
                    data: data.clone(),
                    fault: self.link.last_fault(),
                });
                Some((TapRxToken { data }, TapTxToken { dev: self }))
            }
            Ok(None) => {
                self.record_dropped();
                None
            }
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        if self.error.is_some() {
            return None;
        }
        Some(TapTxToken { dev: self })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu();
        caps
    }
}

/// Receive token of a [`TapDevice`].
#[doc(hidden)]
pub struct TapRxToken {
    data: Bytes,
}

impl phy::RxToken for TapRxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.data)
    }
}

/// Transmit token of a [`TapDevice`].
#[doc(hidden)]
pub struct TapTxToken<'a, L> {
    dev: &'a mut TapDevice<L>,
}

impl<L: Link> phy::TxToken for TapTxToken<'_, L> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let tx = &mut self.dev.tx;
        if tx.capacity() < len {
            // A new chunk, or the old one again once every frame built in it is gone.
            tx.reserve(TX_CHUNK.max(len));
        }
        tx.resize(len, 0);
        let r = f(&mut tx[..]);
        let data = tx.split().freeze();
        let t = self.dev.link.now();
        match self.dev.link.send(&data) {
            Ok(()) => self.dev.frames.push(Frame {
                t,
                dir: Direction::Tx,
                data,
                fault: self.dev.link.last_fault(),
            }),
            Err(e) => {
                if self.dev.error.is_none() {
                    self.dev.error = Some(e);
                }
            }
        }
        r
    }
}
