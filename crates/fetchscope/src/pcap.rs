//! `--pcap FILE`: every packet of the fetch as pcapng, TLS secrets embedded.
//!
//! Packets are written to the file as they come, after a Decryption Secrets Block with
//! room for the TLS secrets (Wireshark decrypts only with secrets that come before the
//! packets, and they are known only after the handshake); the secrets are written into
//! that room at the end, also when the fetch failed (what was seen is kept).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use fetchscope_core::event::PacketEvent;
use fetchscope_wire::pcapng::PcapngFile;

/// The pcapng output of one fetch.
pub struct PcapOutput {
    path: PathBuf,
    file: PcapngFile,
    epoch: SystemTime,
}

impl PcapOutput {
    /// Creates `path` now (so a bad path fails before the fetch) with its headers; packet
    /// times are `epoch` + the event time.
    pub fn new(path: &Path, epoch: SystemTime) -> Result<Self> {
        let file = File::create(path)
            .and_then(PcapngFile::new)
            .with_context(|| format!("cannot create the pcap file {}", path.display()))?;
        Ok(PcapOutput {
            path: path.to_path_buf(),
            file,
            epoch,
        })
    }

    /// Adds one packet.
    pub fn packet(&mut self, t_us: u64, pk: &PacketEvent) -> io::Result<()> {
        let t = self.epoch + Duration::from_micros(t_us);
        self.file.push(t, pk.dir, &pk.raw)
    }

    /// Writes the secrets into their room and flushes the file.
    pub fn finish(self, key_log: &str) -> Result<()> {
        self.file
            .finish(key_log, &self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}
