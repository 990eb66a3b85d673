//! [`TunWriter`]: the thread that writes the stack's packets into a TUN device.
//!
//! A `write(2)` to a TUN device does not return when the packet is queued: the kernel
//! routes it at once, in the writer's context, and delivers it to the receiving socket —
//! for an ACK to a server on this host, the server's whole `tcp_ack` and the transmission
//! of the segments the ACK lets it send. In issue 13's profile of a 64 MiB download that
//! was a quarter of fetchscope's time, on the thread that also has to read every packet.
//! The writer thread takes that work off the packet path: [`TunWriter::send`] copies the
//! packet into a reused buffer and queues it; the thread writes the packets in order.
//!
//! A late ACK is worse than a slow one: when both cores are busy the thread may wait for
//! a CPU, and a server that hears nothing for a few milliseconds retransmits (Linux's
//! tail loss probe), data the stack already has. So once [`INLINE_AFTER`] packets wait,
//! or the thread has not taken the oldest within [`INLINE_AGE`], the fetch's own thread
//! writes everything queued itself, in order (one lock makes sure only one thread
//! writes at a time).
//!
//! The packet is sent when it is queued, as far as the stack and the trace are concerned
//! (a NIC's transmit queue is no different). A write that fails is reported by the next
//! call of [`TunWriter::send`] or [`TunWriter::take_error`].

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tun_tap::Iface;

/// Packets that may wait for the thread before the fetch's thread writes them itself.
pub(crate) const INLINE_AFTER: usize = 16;
/// How long the oldest packet may wait for the thread before the fetch's thread writes.
pub(crate) const INLINE_AGE: Duration = Duration::from_micros(500);

/// Why a queued write failed, for the owner to turn into its error.
#[derive(Debug)]
pub(crate) enum WriteFailure {
    /// The device is gone (`EBADFD`).
    Removed,
    /// The device is down (`EIO`).
    Down(io::Error),
    /// Any other error.
    Other(io::Error),
}

/// Packets waiting to be written, and buffers to reuse.
#[derive(Debug, Default)]
struct Queue {
    packets: VecDeque<Vec<u8>>,
    /// When the oldest waiting packet was queued.
    oldest: Option<Instant>,
    free: Vec<Vec<u8>>,
    /// The owner is gone: write what is left and end.
    closed: bool,
    /// The thread sleeps on `queued` (a notification costs a system call: only then).
    sleeping: bool,
}

/// What the thread and the owner share.
#[derive(Debug)]
struct Shared {
    iface: Arc<Iface>,
    queue: Mutex<Queue>,
    /// Signalled when a packet is queued or the owner hangs up.
    queued: Condvar,
    /// Held by whoever writes, so the packets go out in order.
    writing: Mutex<()>,
    /// Packets dropped because the device's queue was full.
    dropped: AtomicU64,
    /// The first failed write, until the owner takes it.
    failure: Mutex<Option<WriteFailure>>,
}

/// The owner's side of the writer thread.
#[derive(Debug)]
pub(crate) struct TunWriter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl TunWriter {
    /// Starts the thread over `iface`, named after the device.
    pub(crate) fn start(iface: Arc<Iface>, name: &str) -> io::Result<TunWriter> {
        let shared = Arc::new(Shared {
            iface,
            queue: Mutex::new(Queue::default()),
            queued: Condvar::new(),
            writing: Mutex::new(()),
            dropped: AtomicU64::new(0),
            failure: Mutex::new(None),
        });
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("tun-write-{name}"))
            .spawn(move || write_loop(&theirs))?;
        Ok(TunWriter {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `packet` for writing (or writes it and what waits, when the thread is
    /// behind); an earlier write's failure is returned instead.
    pub(crate) fn send(&mut self, packet: &[u8]) -> Result<(), WriteFailure> {
        if let Some(f) = self.take_error() {
            return Err(f);
        }
        let (behind, sleeping) = {
            let Ok(mut q) = self.shared.queue.lock() else {
                return Err(gone());
            };
            let mut buf = q.free.pop().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(packet);
            q.packets.push_back(buf);
            let now = Instant::now();
            let oldest = *q.oldest.get_or_insert(now);
            let behind =
                q.packets.len() >= INLINE_AFTER || now.duration_since(oldest) >= INLINE_AGE;
            (behind, q.sleeping)
        };
        if behind {
            // Write them here, unless the thread is writing right now (then it will).
            if let Ok(guard) = self.shared.writing.try_lock() {
                drain(&self.shared);
                drop(guard);
            }
        } else if sleeping {
            self.shared.queued.notify_one();
        }
        self.take_error().map_or(Ok(()), Err)
    }

    /// The first write that failed since the last call, if any.
    pub(crate) fn take_error(&self) -> Option<WriteFailure> {
        self.shared.failure.lock().ok().and_then(|mut f| f.take())
    }

    /// Packets dropped because the device's queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for TunWriter {
    /// Every queued packet is written before the device may close (the last ACK of a
    /// fetch is among them).
    fn drop(&mut self) {
        if let Ok(mut q) = self.shared.queue.lock() {
            q.closed = true;
        }
        self.shared.queued.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A poisoned lock (a panic while writing): what [`TunWriter::send`] says then.
fn gone() -> WriteFailure {
    WriteFailure::Other(io::Error::other("the TUN writer thread ended early"))
}

/// The thread: wait for packets, write them in order; end when the owner hangs up.
fn write_loop(shared: &Shared) {
    loop {
        {
            let Ok(mut q) = shared.queue.lock() else {
                return;
            };
            while q.packets.is_empty() && !q.closed {
                q.sleeping = true;
                q = match shared.queued.wait(q) {
                    Ok(q) => q,
                    Err(_) => return,
                };
                q.sleeping = false;
            }
            if q.packets.is_empty() && q.closed {
                return;
            }
        }
        let Ok(guard) = shared.writing.lock() else {
            return;
        };
        drain(shared);
        drop(guard);
    }
}

/// What writing one packet did.
pub(crate) enum Written {
    /// The kernel took it.
    Sent,
    /// The device's queue was full: dropped, as a NIC would (TCP retransmits).
    Dropped,
}

/// Writes one packet to `iface` (the writer thread's and the link's own writes alike).
pub(crate) fn write_packet(iface: &Iface, packet: &[u8]) -> Result<Written, WriteFailure> {
    match iface.send(packet) {
        Ok(_) => Ok(Written::Sent),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            log::debug!("TUN device: queue full, packet dropped");
            Ok(Written::Dropped)
        }
        Err(e) if e.raw_os_error() == Some(libc::EBADFD) => Err(WriteFailure::Removed),
        Err(e) if e.raw_os_error() == Some(libc::EIO) => Err(WriteFailure::Down(e)),
        Err(e) => Err(WriteFailure::Other(e)),
    }
}

/// Writes every queued packet, in order (the caller holds `writing`). After a failure
/// other than a full queue, the rest is thrown away: the owner hears of the failure.
fn drain(shared: &Shared) {
    loop {
        let buf = {
            let Ok(mut q) = shared.queue.lock() else {
                return;
            };
            let Some(buf) = q.packets.pop_front() else {
                q.oldest = None;
                return;
            };
            q.oldest = q.packets.front().map(|_| Instant::now());
            buf
        };
        let failure = match write_packet(&shared.iface, &buf) {
            Ok(Written::Sent) => None,
            Ok(Written::Dropped) => {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(f) => Some(f),
        };
        if let Ok(mut q) = shared.queue.lock() {
            if q.free.len() < INLINE_AFTER * 2 {
                q.free.push(buf);
            }
            if failure.is_some() {
                q.packets.clear();
                q.oldest = None;
            }
        }
        if let Some(f) = failure {
            if let Ok(mut slot) = shared.failure.lock() {
                slot.get_or_insert(f);
            }
            return;
        }
    }
}
