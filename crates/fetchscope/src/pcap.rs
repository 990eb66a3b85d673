//! `--pcap FILE`: every packet of the fetch as pcapng, TLS secrets embedded.
//!
//! Packets are spooled to a temporary file while the fetch runs, because the Decryption
//! Secrets Block must come before the first packet for Wireshark to decrypt, and the
//! secrets are known only after the handshake. The file is written at the end, also when
//! the fetch failed (what was seen is kept).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use fetchscope_core::event::PacketEvent;
use fetchscope_wire::pcapng::PcapngSpool;

/// The pcapng output of one fetch.
pub struct PcapOutput {
    path: PathBuf,
    file: File,
    spool: PcapngSpool,
    epoch: SystemTime,
}

impl PcapOutput {
    /// Creates `path` now (so a bad path fails before the fetch) and a spool; packet times
    /// are `epoch` + the event time.
    pub fn new(path: &Path, epoch: SystemTime) -> Result<Self> {
        let file = File::create(path)
            .with_context(|| format!("cannot create the pcap file {}", path.display()))?;
        let spool = PcapngSpool::new().context("cannot create a temporary file for --pcap")?;
        Ok(PcapOutput {
            path: path.to_path_buf(),
            file,
            spool,
            epoch,
        })
    }

    /// Adds one packet.
    pub fn packet(&mut self, t_us: u64, pk: &PacketEvent) -> io::Result<()> {
        let t = self.epoch + Duration::from_micros(t_us);
        self.spool.push(t, pk.dir, &pk.raw)
    }

    /// Writes the file: header, secrets, packets.
    pub fn finish(self, key_log: &str) -> Result<()> {
        let mut out = BufWriter::new(self.file);
        self.spool
            .finish(key_log, &mut out)
            .and_then(|()| out.flush())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}
