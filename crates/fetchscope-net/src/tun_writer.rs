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
//! The packet is sent when it is queued, as far as the stack and the trace are concerned
//! (a NIC's transmit queue is no different). A write that fails is reported by the next
//! call of [`TunWriter::send`] or [`TunWriter::take_error`].

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tun_tap::Iface;

/// Packets that may wait for the thread before [`TunWriter::send`] waits for it.
const QUEUE: usize = 256;

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

/// What the thread and the owner share.
#[derive(Debug, Default)]
struct Shared {
    /// Packets dropped because the device's queue was full.
    dropped: AtomicU64,
    /// The first failed write, until the owner takes it.
    failure: Mutex<Option<WriteFailure>>,
}

/// The owner's side of the writer thread.
#[derive(Debug)]
pub(crate) struct TunWriter {
    packets: Option<SyncSender<Vec<u8>>>,
    /// Buffers the thread has written, coming back for reuse.
    free: Receiver<Vec<u8>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl TunWriter {
    /// Starts the thread over `iface`, named after the device.
    pub(crate) fn start(iface: Arc<Iface>, name: &str) -> io::Result<TunWriter> {
        let (packets, queue) = sync_channel::<Vec<u8>>(QUEUE);
        let (free_tx, free) = sync_channel::<Vec<u8>>(QUEUE + 2);
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("tun-write-{name}"))
            .spawn(move || write_loop(&iface, &queue, &free_tx, &theirs))?;
        Ok(TunWriter {
            packets: Some(packets),
            free,
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `packet` for writing; an earlier write's failure is returned instead.
    pub(crate) fn send(&mut self, packet: &[u8]) -> Result<(), WriteFailure> {
        if let Some(f) = self.take_error() {
            return Err(f);
        }
        let mut buf = self.free.try_recv().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(packet);
        let Some(packets) = &self.packets else {
            return Err(gone());
        };
        match packets.try_send(buf) {
            Ok(()) => Ok(()),
            // The thread is behind: wait for room, as a write would have waited.
            Err(TrySendError::Full(buf)) => packets.send(buf).map_err(|_| gone()),
            Err(TrySendError::Disconnected(_)) => Err(self.take_error().unwrap_or_else(gone)),
        }
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
        drop(self.packets.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The thread ended early (a panic): what [`TunWriter::send`] says then.
fn gone() -> WriteFailure {
    WriteFailure::Other(io::Error::other("the TUN writer thread ended early"))
}

/// The thread: write each packet in order, hand the buffer back; stop at the first
/// failure other than a full queue, or when the owner hangs up.
fn write_loop(
    iface: &Iface,
    queue: &Receiver<Vec<u8>>,
    free: &SyncSender<Vec<u8>>,
    shared: &Shared,
) {
    while let Ok(buf) = queue.recv() {
        let failure = match iface.send(&buf) {
            Ok(_) => None,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // A full queue drops the packet, as a NIC would; TCP retransmits.
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                log::debug!("TUN device: queue full, packet dropped");
                None
            }
            Err(e) if e.raw_os_error() == Some(libc::EBADFD) => Some(WriteFailure::Removed),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => Some(WriteFailure::Down(e)),
            Err(e) => Some(WriteFailure::Other(e)),
        };
        let _ = free.try_send(buf);
        if let Some(f) = failure {
            if let Ok(mut slot) = shared.failure.lock() {
                slot.get_or_insert(f);
            }
            return;
        }
    }
}
