//! pcapng output with the TLS secrets embedded, for the `--pcap FILE` option.
//!
//! Wireshark decrypts only with keys it has on its first pass, so the Decryption Secrets
//! Block must come before the first packet, but the keys exist only after the handshake.
//! [`PcapngSpool`] therefore collects the packets in an anonymous temporary file (memory
//! stays bounded for any transfer size) and [`PcapngSpool::finish`] writes the file in the
//! right order: Section Header, Interface Description (raw IP, nanosecond timestamps),
//! Decryption Secrets Block, then one Enhanced Packet Block per packet with its own
//! timestamp and direction flags. [`PcapngFile`] writes the same file as the packets come,
//! with room for the secrets kept at its start (what `--pcap` uses).
//!
//! ```
//! use std::time::Duration;
//! use fetchscope_wire::{Direction, pcapng::PcapngSpool};
//!
//! let mut spool = PcapngSpool::new()?;
//! spool.push(Duration::from_secs(1_700_000_000), Direction::Tx, &[0x45; 20])?;
//! let mut out = Vec::new();
//! spool.finish("CLIENT_RANDOM 00 00\n", &mut out)?;
//! assert_eq!(&out[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
//! # Ok::<(), std::io::Error>(())
//! ```

mod spool_file;
mod stream;

pub use stream::{PcapngFile, SECRETS_ROOM};

use std::borrow::Cow;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::Block;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption, InterfaceTsResolution,
};
use pcap_file::pcapng::blocks::unknown::UnknownBlock;
use pcap_file::{DataLink, Endianness};

use crate::Direction;
use spool_file::SpoolFile;

/// Packets longer than this are stored cut to it (the original length is kept).
pub const SNAPLEN: u32 = 262_144;
/// pcapng block type of a Decryption Secrets Block.
pub const DSB_BLOCK_TYPE: u32 = 0x0000_000A;
/// DSB secrets type for a TLS key log ('TLSK').
pub const DSB_TLS_KEY_LOG: u32 = 0x544c_534b;
/// EPB flags: inbound direction.
const EPB_INBOUND: u32 = 1;
/// EPB flags: outbound direction.
const EPB_OUTBOUND: u32 = 2;
/// Spool record header: seconds (8), nanoseconds (4), direction (1), original length (4),
/// stored length (4).
const RECORD_HEADER: usize = 21;

/// A time for [`PcapngSpool::push`]: a `SystemTime` or a `Duration` since the Unix epoch.
pub trait CaptureTime {
    /// The time as a duration since the Unix epoch (zero for times before it).
    fn since_epoch(&self) -> Duration;
}

impl CaptureTime for SystemTime {
    fn since_epoch(&self) -> Duration {
        self.duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

impl CaptureTime for Duration {
    fn since_epoch(&self) -> Duration {
        *self
    }
}

/// Packets collected for a pcapng file, kept in an anonymous temporary file until the
/// TLS secrets are known.
#[derive(Debug)]
pub struct PcapngSpool {
    out: BufWriter<SpoolFile>,
    packets: u64,
}

impl Write for SpoolFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl PcapngSpool {
    /// A spool in the system's temporary directory.
    pub fn new() -> io::Result<Self> {
        Self::new_in(&std::env::temp_dir())
    }

    /// A spool in `dir`.
    pub fn new_in(dir: &Path) -> io::Result<Self> {
        Ok(PcapngSpool {
            out: BufWriter::new(SpoolFile::create_in(dir)?),
            packets: 0,
        })
    }

    /// Number of packets spooled.
    pub fn len(&self) -> u64 {
        self.packets
    }

    /// True when no packet was spooled.
    pub fn is_empty(&self) -> bool {
        self.packets == 0
    }

    /// Adds one IP packet seen at `time` going `dir` (`Tx`: outbound, `Rx`: inbound).
    pub fn push(
        &mut self,
        time: impl CaptureTime,
        dir: Direction,
        packet: &[u8],
    ) -> io::Result<()> {
        let t = time.since_epoch();
        let original = u32::try_from(packet.len()).unwrap_or(u32::MAX);
        let stored = packet.get(..SNAPLEN as usize).unwrap_or(packet);
        let mut header = [0u8; RECORD_HEADER];
        header[..8].copy_from_slice(&t.as_secs().to_le_bytes());
        header[8..12].copy_from_slice(&t.subsec_nanos().to_le_bytes());
        header[12] = u8::from(dir == Direction::Tx);
        header[13..17].copy_from_slice(&original.to_le_bytes());
        header[17..21].copy_from_slice(&(stored.len() as u32).to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(stored)?;
        self.packets += 1;
        Ok(())
    }

    /// Writes the pcapng file to `out`: Section Header, Interface Description, a
    /// Decryption Secrets Block holding `key_log` (NSS key log text; left out when
    /// empty), then every spooled packet in order.
    pub fn finish(self, key_log: &str, out: impl Write) -> io::Result<()> {
        let mut spool = self.out.into_inner().map_err(|e| e.into_error())?;
        spool.file.seek(SeekFrom::Start(0))?;
        let mut input = BufReader::new(&spool.file);
        let mut writer = PcapNgWriter::with_endianness(BufWriter::new(out), Endianness::Little)
            .map_err(io::Error::other)?;
        let interface = InterfaceDescriptionBlock {
            linktype: DataLink::RAW,
            snaplen: SNAPLEN,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Borrowed("fetchscope")),
                InterfaceDescriptionOption::IfTsResol(InterfaceTsResolution::NANO),
            ],
        };
        writer
            .write_block(&Block::InterfaceDescription(interface))
            .map_err(io::Error::other)?;
        if !key_log.is_empty() {
            let len = u32::try_from(key_log.len())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "key log over 4 GiB"))?;
            let mut body = Vec::with_capacity(8 + key_log.len());
            body.extend_from_slice(&DSB_TLS_KEY_LOG.to_le_bytes());
            body.extend_from_slice(&len.to_le_bytes());
            body.extend_from_slice(key_log.as_bytes());
            writer
                .write_block(&Block::Unknown(UnknownBlock::new(DSB_BLOCK_TYPE, 0, &body)))
                .map_err(io::Error::other)?;
        }
        let mut header = [0u8; RECORD_HEADER];
        let mut data = Vec::new();
        for _ in 0..self.packets {
            input.read_exact(&mut header)?;
            let u32_at = |at: usize| {
                header
                    .get(at..at + 4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map_or(0, u32::from_le_bytes)
            };
            let secs = header
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_le_bytes);
            let nanos = u32_at(8);
            let outbound = header[12] == 1;
            let original = u32_at(13);
            let stored = u32_at(17);
            data.resize(stored as usize, 0);
            input.read_exact(&mut data)?;
            let packet = EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_secs(secs)
                    .saturating_add(Duration::from_nanos(u64::from(nanos))),
                original_len: original,
                data: Cow::Borrowed(&data),
                options: vec![EnhancedPacketOption::Flags(if outbound {
                    EPB_OUTBOUND
                } else {
                    EPB_INBOUND
                })],
            };
            writer
                .write_block(&Block::EnhancedPacket(packet))
                .map_err(io::Error::other)?;
        }
        writer.into_inner().flush()
    }
}
