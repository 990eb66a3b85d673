//! [`BodyWorker`]: a thread that hashes the body and writes it out, beside the fetch.
//!
//! The SHA-256 of a large body and the writes of `-o FILE` took about a third of the
//! CPU of a 64 MiB download over TUN (issue 13's profile), on the thread that also has to
//! read every packet. The fetch hands the decoded body over in batches of
//! [`BATCH`] bytes; the worker hashes and writes each, and hands the emptied buffer back,
//! so the steady state allocates nothing. At most [`IN_FLIGHT`] batches wait, so memory
//! stays bounded whatever the body's size.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

/// Bytes collected before a batch goes to the worker.
pub const BATCH: usize = 256 * 1024;
/// Batches that may wait for the worker before the fetch waits for it.
pub const IN_FLIGHT: usize = 3;

/// What the fetch asks of the worker.
enum Job {
    /// Hash and write these bytes, then hand the buffer back.
    Data(Vec<u8>),
    /// Flush the output and report the digest of everything so far, or the first error.
    Sync(SyncSender<Synced>),
}

/// The worker's answer to [`Job::Sync`].
struct Synced {
    /// SHA-256 of every byte handed over so far.
    digest: [u8; 32],
    /// The first write or flush error, if any (every later sync reports it again).
    error: Option<io::Error>,
}

/// The fetch's side of the worker thread.
pub(crate) struct BodyWorker {
    jobs: Option<SyncSender<Job>>,
    /// Emptied buffers coming back, for reuse.
    free: Receiver<Vec<u8>>,
    /// The batch being filled.
    batch: Vec<u8>,
    thread: Option<JoinHandle<()>>,
    /// Set by the worker when a write failed, so the fetch stops at its next piece.
    failed: Arc<AtomicBool>,
}

impl BodyWorker {
    /// Starts the worker over `out` (or over nothing: it only hashes). `None` when no
    /// thread can be started; the caller then hashes and writes on its own thread.
    pub(crate) fn start(
        out: Option<Box<dyn Write + Send>>,
    ) -> Result<Self, Option<Box<dyn Write + Send>>> {
        let (jobs, job_rx) = sync_channel::<Job>(IN_FLIGHT);
        let (free_tx, free) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
        // The output moves into the thread; should spawning fail, it comes back here.
        let slot = Arc::new(std::sync::Mutex::new(Some(out)));
        let theirs = Arc::clone(&slot);
        let failed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failed);
        let spawned = std::thread::Builder::new()
            .name("fetchscope-body".into())
            .spawn(move || {
                let out = theirs.lock().ok().and_then(|mut s| s.take()).flatten();
                drop(theirs);
                run(out, &job_rx, &free_tx, &flag);
            });
        match spawned {
            Ok(thread) => Ok(BodyWorker {
                jobs: Some(jobs),
                free,
                batch: Vec::with_capacity(BATCH),
                thread: Some(thread),
                failed,
            }),
            Err(e) => {
                log::debug!("no body worker thread ({e}): hashing on the fetch's thread");
                Err(slot.lock().ok().and_then(|mut s| s.take()).flatten())
            }
        }
    }

    /// Takes the next piece of the body; an error is a write error the worker saw earlier.
    pub(crate) fn body(&mut self, decoded: &[u8]) -> io::Result<()> {
        if self.failed.load(Ordering::Relaxed) {
            return self.sync().map(|_| ());
        }
        let mut rest = decoded;
        while !rest.is_empty() {
            let room = BATCH - self.batch.len().min(BATCH);
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.batch.extend_from_slice(now);
            rest = later;
            if self.batch.len() >= BATCH {
                self.send_batch()?;
            }
        }
        Ok(())
    }

    /// Hands the batch being filled to the worker and starts a new one (a buffer it
    /// handed back, when there is one).
    fn send_batch(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let next = self
            .free
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let full = std::mem::replace(&mut self.batch, next);
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|j| j.send(Job::Data(full)).is_ok());
        if sent { Ok(()) } else { Err(lost()) }
    }

    /// Everything handed over so far is written and flushed; returns its SHA-256.
    pub(crate) fn sync(&mut self) -> io::Result<[u8; 32]> {
        match self.ask()? {
            Synced { error: Some(e), .. } => Err(e),
            Synced { digest, .. } => Ok(digest),
        }
    }

    /// The SHA-256 of everything handed over so far, whether or not it could be written.
    pub(crate) fn digest(&mut self) -> io::Result<[u8; 32]> {
        self.ask().map(|s| s.digest)
    }

    /// Hands over the batch being filled and waits for the worker's answer.
    fn ask(&mut self) -> io::Result<Synced> {
        self.send_batch()?;
        let (reply, answer) = sync_channel(1);
        let asked = self
            .jobs
            .as_ref()
            .is_some_and(|j| j.send(Job::Sync(reply)).is_ok());
        match answer.recv() {
            Ok(synced) if asked => Ok(synced),
            _ => Err(lost()),
        }
    }
}

/// The worker cannot be reached: it ended early (a panic).
fn lost() -> io::Error {
    io::Error::other("the body writer thread ended early")
}

impl Drop for BodyWorker {
    /// The worker writes what it was handed, flushes and ends; this waits for it, so a
    /// caller that drops the fetch finds every byte in the file.
    fn drop(&mut self) {
        let _ = self.send_batch();
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The worker's loop: hash, write, hand back; answer syncs; end when the fetch hangs up.
fn run(
    mut out: Option<Box<dyn Write + Send>>,
    jobs: &Receiver<Job>,
    free: &SyncSender<Vec<u8>>,
    failed: &AtomicBool,
) {
    let mut hasher = Sha256::new();
    // The first error, kept as its kind and text so every sync can report it.
    let mut error: Option<(io::ErrorKind, String)> = None;
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Data(mut buf) => {
                hasher.update(&buf);
                if error.is_none()
                    && let Some(o) = &mut out
                    && let Err(e) = o.write_all(&buf)
                {
                    error = Some((e.kind(), e.to_string()));
                    failed.store(true, Ordering::Relaxed);
                }
                buf.clear();
                // A full return queue only means the fetch has buffers enough.
                let _ = free.try_send(buf);
            }
            Job::Sync(reply) => {
                if error.is_none()
                    && let Some(o) = &mut out
                    && let Err(e) = o.flush()
                {
                    error = Some((e.kind(), e.to_string()));
                }
                let digest = hasher.clone().finalize().into();
                let _ = reply.send(Synced {
                    digest,
                    error: error.as_ref().map(|(k, m)| io::Error::new(*k, m.clone())),
                });
            }
        }
    }
    if let Some(o) = &mut out {
        let _ = o.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A `Write` whose bytes the test can look at after the worker is gone.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Fails every write.
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_byte_is_hashed_and_written_in_order() {
        let out = Shared::default();
        let mut w = BodyWorker::start(Some(Box::new(out.clone())))
            .ok()
            .expect("thread");
        let body: Vec<u8> = (0..3 * BATCH + 1234).map(|i| (i % 251) as u8).collect();
        for piece in body.chunks(16_401) {
            w.body(piece).expect("body");
        }
        let digest = w.sync().expect("sync");
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&body)));
        drop(w);
        assert_eq!(*out.0.lock().expect("lock"), body);
    }

    #[test]
    fn dropping_the_worker_writes_what_it_was_given() {
        let out = Shared::default();
        let mut w = BodyWorker::start(Some(Box::new(out.clone())))
            .ok()
            .expect("thread");
        w.body(b"partial").expect("body");
        drop(w);
        assert_eq!(&*out.0.lock().expect("lock"), b"partial");
    }

    #[test]
    fn a_write_error_is_reported() {
        let mut w = BodyWorker::start(Some(Box::new(Full)))
            .ok()
            .expect("thread");
        w.body(&vec![7; BATCH]).expect("handed over");
        let mut seen = None;
        // The next piece after the worker saw the error reports it.
        for _ in 0..1000 {
            if let Err(e) = w.body(b"more") {
                seen = Some(e);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(seen.expect("the write failed").to_string(), "disk full");
    }
}
