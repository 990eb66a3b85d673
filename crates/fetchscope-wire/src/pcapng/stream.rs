//! [`PcapngFile`]: a pcapng file written as the packets come, with room kept at its start
//! for the TLS secrets, which exist only after the handshake.
//!
//! Wireshark decrypts only with the keys it has read before the packets that need them
//! (a Decryption Secrets Block after the server's first flight decrypts nothing: see the
//! module above), so the block must come first. [`PcapngSpool`](super::PcapngSpool)
//! keeps the packets in a temporary file and copies them after the block at the end: the
//! packets are written twice and read once more. This writer instead writes the
//! Section Header, the Interface Description and a Decryption Secrets Block of
//! [`SECRETS_ROOM`] bytes filled with key-log comment lines, then each packet straight to
//! the file; [`PcapngFile::finish`] writes the key log over the comments. A key log too
//! long for the room (dozens of redirects) makes `finish` write the file again, with a
//! block of the right size, through a temporary file beside it.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::Block;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption, InterfaceTsResolution,
};
use pcap_file::{DataLink, Endianness};

use super::{CaptureTime, DSB_BLOCK_TYPE, DSB_TLS_KEY_LOG, EPB_INBOUND, EPB_OUTBOUND, SNAPLEN};
use crate::Direction;

/// Bytes the Decryption Secrets Block takes at the start of the file (a TLS 1.3
/// connection's key log is about 1 KB).
pub const SECRETS_ROOM: usize = 64 * 1024;
/// pcapng block type of an Enhanced Packet Block.
const EPB_BLOCK_TYPE: u32 = 6;
/// EPB option code of the flags word.
const EPB_OPTION_FLAGS: u16 = 2;
/// A DSB's fixed part: block type, total length, secrets type, secrets length, trailer.
const DSB_OVERHEAD: usize = 20;
/// Longest comment line the room is filled with.
const COMMENT_LINE: usize = 64;

/// A pcapng file being written while the fetch runs.
#[derive(Debug)]
pub struct PcapngFile {
    out: BufWriter<File>,
    /// Where the Decryption Secrets Block starts.
    secrets_at: u64,
    /// Where the first packet starts (after the block).
    packets_at: u64,
    packets: u64,
}

impl PcapngFile {
    /// Writes the headers and the room for the secrets to `file` (created by the caller,
    /// so a bad path fails before the fetch).
    pub fn new(file: File) -> io::Result<Self> {
        let mut head = Vec::with_capacity(256);
        let mut writer = PcapNgWriter::with_endianness(&mut head, Endianness::Little)
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
        let secrets_at = head.len() as u64;
        let room = secrets_block("", SECRETS_ROOM).ok_or_else(|| io::Error::other("no room"))?;
        let mut out = BufWriter::with_capacity(256 * 1024, file);
        out.write_all(&head)?;
        out.write_all(&room)?;
        Ok(PcapngFile {
            out,
            secrets_at,
            packets_at: secrets_at + room.len() as u64,
            packets: 0,
        })
    }

    /// Number of packets written.
    pub fn len(&self) -> u64 {
        self.packets
    }

    /// True when no packet was written.
    pub fn is_empty(&self) -> bool {
        self.packets == 0
    }

    /// Writes one IP packet seen at `time` going `dir` (`Tx`: outbound, `Rx`: inbound) as
    /// an Enhanced Packet Block with its direction flags.
    pub fn push(
        &mut self,
        time: impl CaptureTime,
        dir: Direction,
        packet: &[u8],
    ) -> io::Result<()> {
        let t = time.since_epoch();
        let nanos = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
        let original = u32::try_from(packet.len()).unwrap_or(u32::MAX);
        let stored = packet.get(..SNAPLEN as usize).unwrap_or(packet);
        let padded = stored.len().next_multiple_of(4);
        // 28 bytes of fixed fields, the data, 12 of options (flags, end), 4 of trailer.
        let total = (44 + padded) as u32;
        let flags = if dir == Direction::Tx {
            EPB_OUTBOUND
        } else {
            EPB_INBOUND
        };
        let mut head = [0u8; 28];
        head[0..4].copy_from_slice(&EPB_BLOCK_TYPE.to_le_bytes());
        head[4..8].copy_from_slice(&total.to_le_bytes());
        // interface 0 (bytes 8..12 stay zero)
        head[12..16].copy_from_slice(&((nanos >> 32) as u32).to_le_bytes());
        head[16..20].copy_from_slice(&(nanos as u32).to_le_bytes());
        head[20..24].copy_from_slice(&(stored.len() as u32).to_le_bytes());
        head[24..28].copy_from_slice(&original.to_le_bytes());
        let mut tail = [0u8; 3 + 16];
        let pad = padded - stored.len();
        let options = &mut tail[pad..pad + 16];
        options[0..2].copy_from_slice(&EPB_OPTION_FLAGS.to_le_bytes());
        options[2..4].copy_from_slice(&4u16.to_le_bytes());
        options[4..8].copy_from_slice(&flags.to_le_bytes());
        // end of options (bytes 8..12 stay zero), then the trailer
        options[12..16].copy_from_slice(&total.to_le_bytes());
        self.out.write_all(&head)?;
        self.out.write_all(stored)?;
        self.out.write_all(&tail[..pad + 16])?;
        self.packets += 1;
        Ok(())
    }

    /// Writes `key_log` (NSS key log text) into the room kept for it and flushes the
    /// file at `path` (the file given to [`PcapngFile::new`]). A key log that does not fit
    /// is written with the whole file again, through `path` + `.part`.
    pub fn finish(self, key_log: &str, path: &Path) -> io::Result<()> {
        let PcapngFile {
            out,
            secrets_at,
            packets_at,
            ..
        } = self;
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        if let Some(block) = secrets_block(key_log, SECRETS_ROOM) {
            file.seek(SeekFrom::Start(secrets_at))?;
            file.write_all(&block)?;
            return file.flush();
        }
        drop(file);
        // The caller's file may be open for writing only: read it back by its path.
        let mut file = File::open(path)?;
        // Too long for the room: headers, an exact block, then the packets copied over.
        let newline = usize::from(!key_log.ends_with('\n'));
        let exact = DSB_OVERHEAD + (key_log.len() + newline).next_multiple_of(4);
        let block = secrets_block(key_log, exact)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "key log over 4 GiB"))?;
        let mut part_name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        part_name.push(".part");
        let part = path.with_file_name(part_name);
        let written = (|| {
            let mut copy = BufWriter::new(File::create(&part)?);
            let mut head = vec![0u8; usize::try_from(secrets_at).unwrap_or(0)];
            file.seek(SeekFrom::Start(0))?;
            io::Read::read_exact(&mut file, &mut head)?;
            copy.write_all(&head)?;
            copy.write_all(&block)?;
            file.seek(SeekFrom::Start(packets_at))?;
            io::copy(&mut file, &mut copy)?;
            copy.into_inner().map_err(|e| e.into_error())?.sync_data()
        })();
        match written {
            Ok(()) => std::fs::rename(&part, path),
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                Err(e)
            }
        }
    }
}

/// A Decryption Secrets Block of exactly `size` bytes holding `key_log`, the rest of its
/// secrets filled with comment lines (`#`, which key-log readers skip); `None` when the
/// key log does not fit.
fn secrets_block(key_log: &str, size: usize) -> Option<Vec<u8>> {
    let mut secrets = key_log.as_bytes().to_vec();
    if !secrets.is_empty() && !secrets.ends_with(b"\n") {
        secrets.push(b'\n');
    }
    let room = size.checked_sub(DSB_OVERHEAD)?;
    if secrets.len() > room || !size.is_multiple_of(4) {
        return None;
    }
    let mut rest = room - secrets.len();
    if rest > 0 && secrets.is_empty() {
        let note =
            b"# fetchscope: no TLS secrets (yet); this block is rewritten when the fetch ends\n";
        if note.len() <= rest {
            secrets.extend_from_slice(note);
            rest -= note.len();
        }
    }
    while rest > 0 {
        let line = rest.min(COMMENT_LINE);
        match line {
            1 => secrets.push(b'\n'),
            n => {
                secrets.push(b'#');
                secrets.extend(std::iter::repeat_n(b' ', n - 2));
                secrets.push(b'\n');
            }
        }
        rest -= line;
    }
    let len = u32::try_from(secrets.len()).ok()?;
    let total = u32::try_from(size).ok()?;
    let mut block = Vec::with_capacity(size);
    block.extend_from_slice(&DSB_BLOCK_TYPE.to_le_bytes());
    block.extend_from_slice(&total.to_le_bytes());
    block.extend_from_slice(&DSB_TLS_KEY_LOG.to_le_bytes());
    block.extend_from_slice(&len.to_le_bytes());
    block.extend_from_slice(&secrets);
    block.extend_from_slice(&total.to_le_bytes());
    (block.len() == size).then_some(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_is_exactly_the_room_and_holds_the_key_log() {
        let log = "CLIENT_RANDOM 00 11\n";
        let b = secrets_block(log, SECRETS_ROOM).expect("fits");
        assert_eq!(b.len(), SECRETS_ROOM);
        assert_eq!(&b[16..16 + log.len()], log.as_bytes());
        let secrets = &b[16..SECRETS_ROOM - 4];
        // Every line after the key log is a comment (or empty).
        for line in secrets[log.len()..].split(|&c| c == b'\n') {
            assert!(line.is_empty() || line[0] == b'#', "{line:?}");
            assert!(line.len() < COMMENT_LINE);
        }
        assert_eq!(&b[SECRETS_ROOM - 4..], &(SECRETS_ROOM as u32).to_le_bytes());
        for size in [20, 24, 100, 104] {
            match secrets_block("", size) {
                Some(b) => assert_eq!(b.len(), size),
                None => assert!(size % 4 != 0),
            }
        }
        assert!(secrets_block(&"x".repeat(SECRETS_ROOM), SECRETS_ROOM).is_none());
    }
}
