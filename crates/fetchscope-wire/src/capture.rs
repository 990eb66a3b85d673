//! Reading a capture someone already has: pcap or pcapng (from tcpdump, Wireshark,
//! fetchscope's own `--pcap`), as IP packets with their times, and the TLS secrets of a
//! pcapng Decryption Secrets Block (the start of `fetchscope replay`, issue 15).
//!
//! Link types: raw IP (`RAW`, `IPV4`, `IPV6`), Ethernet (with 802.1Q/802.1ad tags), Linux
//! cooked v1 and v2 (`tcpdump -i any`), BSD loopback (`NULL`, `LOOP`). Frames that carry no
//! IP (ARP, LLDP) are skipped and counted. The file is untrusted: it is read as a stream
//! with a fixed buffer (a block larger than it is an error, never an allocation of what
//! the file claims), and every damage is a [`CaptureError`], never a panic.

use std::borrow::Cow;
use std::io::{self, Chain, Cursor, Read};
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::PcapNgReader;
use pcap_file::pcapng::blocks::Block;

/// pcapng's Decryption Secrets Block type.
const DSB_TYPE: u32 = 0x0000_000A;
/// A DSB holding a TLS key log (`TLSK`).
const TLS_KEY_LOG: u32 = 0x544c_534b;
/// The most key log text kept from a capture's secrets blocks.
pub const MAX_KEY_LOG: usize = 4 * 1024 * 1024;
/// The read buffer: no packet or block may be larger.
const READ_BUFFER: usize = 1024 * 1024;

/// A capture file could not be read (any further).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file does not start like a pcap or pcapng file.
    #[error(
        "this is not a pcap or pcapng capture (it starts with {magic}); capture with tcpdump -w FILE or Wireshark, or use fetchscope's --pcap"
    )]
    NotACapture {
        /// The first bytes, in hex.
        magic: String,
    },
    /// A header, block or packet is damaged or cut short.
    #[error("the capture is damaged or cut short after {packets} packets: {detail}")]
    Damaged {
        /// Packets read before the damage.
        packets: u64,
        /// What the reader found.
        detail: String,
    },
    /// The link type is one this reader does not decode.
    #[error(
        "the capture's link type {0} is not one fetchscope reads (raw IP, Ethernet, Linux cooked, loopback)"
    )]
    LinkType(u32),
    /// Reading the file failed.
    #[error("could not read the capture: {0}")]
    Io(#[from] io::Error),
}

/// One IP packet of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedPacket {
    /// When it was captured, since the Unix epoch.
    pub time: Duration,
    /// Its length on the wire (more than `ip.len()` plus the link header when the capture
    /// cut it to its snap length).
    pub original_len: u32,
    /// Whether the capture cut it short.
    pub truncated: bool,
    /// The IP packet (IPv4 or IPv6), without the link-layer header.
    pub ip: Vec<u8>,
}

type Source<R> = Chain<Cursor<[u8; 4]>, R>;

enum Inner<R: Read> {
    Pcap {
        reader: PcapReader<Source<R>>,
        link: DataLink,
    },
    Ng(PcapNgReader<Source<R>>),
}

/// Reads the IP packets of a pcap or pcapng stream, in file order.
pub struct CaptureReader<R: Read> {
    inner: Inner<R>,
    key_log: String,
    packets: u64,
    skipped: u64,
    done: bool,
}

impl<R: Read> std::fmt::Debug for CaptureReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("packets", &self.packets)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

impl<R: Read> CaptureReader<R> {
    /// Opens `source`, telling pcap from pcapng by its first bytes.
    pub fn open(mut source: R) -> Result<CaptureReader<R>, CaptureError> {
        let mut magic = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match source.read(&mut magic[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        let hex = || {
            magic[..got]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let kind = match magic {
            [0x0a, 0x0d, 0x0d, 0x0a] if got == 4 => Kind::Ng,
            [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
                if got == 4 =>
            {
                Kind::Pcap
            }
            _ => {
                let magic = if got == 0 {
                    "nothing: the file is empty".to_owned()
                } else {
                    hex()
                };
                return Err(CaptureError::NotACapture { magic });
            }
        };
        let chained = Cursor::new(magic).chain(source);
        let damaged = |detail: String| CaptureError::Damaged { packets: 0, detail };
        let inner = match kind {
            Kind::Pcap => {
                let reader = PcapReader::with_capacity(chained, READ_BUFFER)
                    .map_err(|e| damaged(e.to_string()))?;
                let link = reader.header().datalink;
                check_link(link)?;
                Inner::Pcap { reader, link }
            }
            Kind::Ng => Inner::Ng(
                PcapNgReader::with_capacity(chained, READ_BUFFER)
                    .map_err(|e| damaged(e.to_string()))?,
            ),
        };
        Ok(CaptureReader {
            inner,
            key_log: String::new(),
            packets: 0,
            skipped: 0,
            done: false,
        })
    }

    /// The next IP packet; `None` at the end of the file (or after an error).
    pub fn next_packet(&mut self) -> Option<Result<CapturedPacket, CaptureError>> {
        while !self.done {
            let step = match &mut self.inner {
                Inner::Pcap { reader, link } => match reader.next_packet() {
                    None => None,
                    Some(Err(e)) => Some(Err(e.to_string())),
                    Some(Ok(p)) => Some(Ok(Frame {
                        time: p.timestamp(),
                        original_len: p.orig_len(),
                        data: Cow::Owned(p.data().to_vec()),
                        link: *link,
                    })),
                },
                Inner::Ng(reader) => next_ng(reader, &mut self.key_log),
            };
            match step {
                None => self.done = true,
                Some(Err(detail)) => {
                    self.done = true;
                    return Some(Err(CaptureError::Damaged {
                        packets: self.packets,
                        detail,
                    }));
                }
                Some(Ok(frame)) if frame.data.is_empty() && frame.original_len == 0 => {}
                Some(Ok(frame)) => match ip_payload(frame.link, &frame.data) {
                    Ok(Some(ip)) => {
                        self.packets += 1;
                        let link_header = u32::try_from(frame.data.len() - ip.len()).unwrap_or(0);
                        return Some(Ok(CapturedPacket {
                            time: frame.time,
                            original_len: frame.original_len.saturating_sub(link_header),
                            truncated: (frame.data.len() as u64) < u64::from(frame.original_len),
                            ip: ip.to_vec(),
                        }));
                    }
                    Ok(None) => self.skipped += 1,
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                },
            }
        }
        None
    }

    /// The TLS key log of the Decryption Secrets Blocks read so far (NSS format).
    pub fn key_log(&self) -> &str {
        &self.key_log
    }

    /// Frames read that carried no IP packet (ARP and the like).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// pcap or pcapng.
enum Kind {
    Pcap,
    Ng,
}

/// One frame as the file holds it.
struct Frame<'a> {
    time: Duration,
    original_len: u32,
    data: Cow<'a, [u8]>,
    link: DataLink,
}

/// The next frame of a pcapng file (other blocks read on the way; secrets kept).
fn next_ng<R: Read>(
    reader: &mut PcapNgReader<R>,
    key_log: &mut String,
) -> Option<Result<Frame<'static>, String>> {
    loop {
        let (block, state) = match reader.next_block()? {
            Ok(b) => b,
            Err(e) => return Some(Err(e.to_string())),
        };
        match block {
            Block::EnhancedPacket(p) => {
                let link = state
                    .interfaces()
                    .get(p.interface_id as usize)
                    .map(|i| i.linktype);
                let Some(link) = link else {
                    return Some(Err(format!(
                        "a packet names interface {}, which the file never described",
                        p.interface_id
                    )));
                };
                return Some(Ok(Frame {
                    time: p.timestamp,
                    original_len: p.original_len,
                    data: Cow::Owned(p.data.into_owned()),
                    link,
                }));
            }
            Block::SimplePacket(p) => {
                let link = state.interfaces().first().map(|i| i.linktype);
                let Some(link) = link else {
                    return Some(Err("a packet comes before any interface".to_owned()));
                };
                return Some(Ok(Frame {
                    time: Duration::ZERO,
                    original_len: p.original_len,
                    data: Cow::Owned(p.data.into_owned()),
                    link,
                }));
            }
            Block::Unknown(u) if u.type_ == DSB_TYPE => {
                let big = state.section().endianness == pcap_file::Endianness::Big;
                if let Some(text) = dsb_key_log(&u.value, big)
                    && key_log.len() + text.len() <= MAX_KEY_LOG
                {
                    key_log.push_str(&text);
                    if !key_log.ends_with('\n') {
                        key_log.push('\n');
                    }
                }
            }
            _ => {}
        }
    }
}

/// The key log text of a Decryption Secrets Block body (`None`: not a TLS key log, or
/// damaged).
fn dsb_key_log(body: &[u8], big_endian: bool) -> Option<String> {
    let word = |at: usize| -> Option<u32> {
        let b: [u8; 4] = body.get(at..at + 4)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    if word(0)? != TLS_KEY_LOG {
        return None;
    }
    let len = word(4)? as usize;
    let data = body.get(8..8usize.checked_add(len)?)?;
    String::from_utf8(data.to_vec()).ok()
}

/// `rest` when `ethertype` is IPv4's or IPv6's.
fn by_type(ethertype: u16, rest: &[u8]) -> Option<&[u8]> {
    matches!(ethertype, 0x0800 | 0x86dd).then_some(rest)
}

/// Whether this reader decodes `link`.
fn check_link(link: DataLink) -> Result<(), CaptureError> {
    match link {
        DataLink::RAW
        | DataLink::IPV4
        | DataLink::IPV6
        | DataLink::ETHERNET
        | DataLink::LINUX_SLL
        | DataLink::LINUX_SLL2
        | DataLink::NULL
        | DataLink::LOOP => Ok(()),
        other => Err(CaptureError::LinkType(u32::from(other))),
    }
}

/// The IP packet inside a frame of `link`: `Ok(None)` for a frame without IP.
fn ip_payload(link: DataLink, frame: &[u8]) -> Result<Option<&[u8]>, CaptureError> {
    let ip = |b: &[u8]| matches!(b.first().map(|v| v >> 4), Some(4 | 6));
    let be16 = |b: &[u8], at: usize| -> Option<u16> {
        Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
    };
    let payload = match link {
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => Some(frame),
        DataLink::ETHERNET => {
            let mut at = 12;
            let mut ethertype = be16(frame, at);
            // 802.1Q and 802.1ad tags: 4 bytes each.
            while let Some(0x8100 | 0x88a8) = ethertype {
                at += 4;
                ethertype = be16(frame, at);
            }
            ethertype.and_then(|t| by_type(t, frame.get(at + 2..)?))
        }
        DataLink::LINUX_SLL => be16(frame, 14).and_then(|t| by_type(t, frame.get(16..)?)),
        DataLink::LINUX_SLL2 => be16(frame, 0).and_then(|t| by_type(t, frame.get(20..)?)),
        // A 4-byte address family in the host's order: look at the packet itself.
        DataLink::NULL | DataLink::LOOP => frame.get(4..),
        other => return Err(CaptureError::LinkType(u32::from(other))),
    };
    Ok(payload.filter(|p| ip(p)))
}

#[cfg(test)]
mod tests;
