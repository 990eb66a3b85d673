//! [`Capture`]: the kernel run's packets, read from `AF_PACKET` sockets.
//!
//! No libpcap: a `SOCK_DGRAM` packet socket per interface hands over each packet from its
//! network header on, with the kernel's timestamp (`SO_TIMESTAMPNS`, the same clock as
//! `SystemTime`) and its direction (`PACKET_OUTGOING` or not). A classic BPF filter
//! ([`crate::bpf`]) keeps the run's own flows in the kernel. The socket is created bound
//! to no protocol, so nothing is queued before the filter is attached; it then is bound to
//! the interface for every protocol.
//!
//! Opening a packet socket needs `CAP_NET_RAW`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use fetchscope_wire::Direction;

use crate::bpf::{self, FlowFilter};
use crate::error::OsError;
use crate::sys;

/// `PACKET_OUTGOING`: a packet this host sent.
const PACKET_OUTGOING: u8 = 4;
/// `SOL_PACKET` / `PACKET_STATISTICS`.
const PACKET_STATISTICS: libc::c_int = 6;
/// Receive buffer asked for (root may exceed `rmem_max` with `SO_RCVBUFFORCE`).
const RCVBUF: usize = 8 * 1024 * 1024;
/// Largest packet read whole; longer ones (GRO/GSO bundles) are cut.
const SNAP: usize = 65_536;

/// One captured packet.
#[derive(Debug, Clone)]
pub struct CapturedPacket {
    /// When the kernel saw it (since the Unix epoch).
    pub stamp: Duration,
    /// Sent by this host (`Tx`) or received (`Rx`).
    pub dir: Direction,
    /// The interface it crossed.
    pub ifindex: u32,
    /// The IP packet (cut to 64 KiB).
    pub data: Vec<u8>,
    /// Its length on the wire, when larger than `data`.
    pub cut_from: Option<usize>,
    /// The kernel left the UDP/TCP checksum to the device (offload) and it was computed
    /// here.
    pub checksum_completed: bool,
}

/// One packet socket bound to one interface.
#[derive(Debug)]
struct Tap {
    fd: OwnedFd,
    ifindex: u32,
    loopback: bool,
}

/// The capture of one run: a packet socket per interface the run's packets cross.
#[derive(Debug)]
pub struct Capture {
    taps: Vec<Tap>,
    filter: FlowFilter,
    buf: Vec<u8>,
    dropped: u64,
}

/// Opens an unbound packet socket: the permission check and the first step of a tap.
fn open_socket() -> Result<OwnedFd, OsError> {
    sys::socket(libc::AF_PACKET, libc::SOCK_DGRAM, 0).map_err(|e| {
        if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
            OsError::Permission
        } else {
            OsError::io("could not open a packet capture socket (AF_PACKET)", e)
        }
    })
}

/// Checks that this process may capture packets (`CAP_NET_RAW`).
pub fn check_permission() -> Result<(), OsError> {
    open_socket().map(drop)
}

impl Capture {
    /// A capture with no interface yet; checks the permission.
    pub fn new() -> Result<Capture, OsError> {
        check_permission()?;
        Ok(Capture {
            taps: Vec::new(),
            filter: FlowFilter::default(),
            buf: vec![0; SNAP],
            dropped: 0,
        })
    }

    /// Starts capturing on interface `ifindex` (0: every interface), unless already.
    pub fn watch(&mut self, ifindex: u32) -> Result<(), OsError> {
        if self
            .taps
            .iter()
            .any(|t| t.ifindex == ifindex || t.ifindex == 0)
        {
            return Ok(());
        }
        let fd = open_socket()?;
        let io = |what: &'static str| move |e| OsError::io(what, e);
        sys::attach_filter(fd.as_fd(), &bpf::compile(&self.filter))
            .map_err(io("could not attach the capture filter"))?;
        sys::set_timestamps(fd.as_fd()).map_err(io("could not ask for packet timestamps"))?;
        sys::set_packet_auxdata(fd.as_fd())
            .map_err(io("could not ask for packet status (PACKET_AUXDATA)"))?;
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(&fd, RCVBUF).is_err() {
            // Without CAP_NET_ADMIN: as much as rmem_max allows.
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&fd, RCVBUF);
        }
        sys::bind_packet(fd.as_fd(), ifindex)
            .map_err(io("could not bind the capture socket to the interface"))?;
        let loopback = sys::if_name(ifindex).is_some_and(|n| n == "lo");
        self.taps.push(Tap {
            fd,
            ifindex,
            loopback,
        });
        Ok(())
    }

    /// Captures on the interface that carries packets to `addr` (or on `asked`, with
    /// `any` for every interface); returns the interface's name and why it was chosen
    /// when it is a new one.
    pub fn watch_route(
        &mut self,
        addr: std::net::IpAddr,
        asked: Option<&str>,
    ) -> Result<Option<(String, String)>, OsError> {
        let (ifindex, name, why) = match asked {
            Some("any") => (0, "any".to_string(), "as asked".to_string()),
            Some(name) => {
                let i = sys::if_index(name).map_err(|e| OsError::NoInterface {
                    name: name.to_string(),
                    source: e,
                })?;
                (i, name.to_string(), "as asked".to_string())
            }
            None => match crate::route::interface_for(addr)
                .and_then(|n| Some((sys::if_index(&n).ok()?, n)))
            {
                Some((i, n)) => (i, n, format!("the route to {addr}")),
                None => (
                    0,
                    "any".to_string(),
                    format!("no route to {addr} found in the main table"),
                ),
            },
        };
        let before = self.interfaces();
        self.watch(ifindex)?;
        Ok((self.interfaces() != before).then_some((name, why)))
    }

    /// Waits at most `timeout` for a packet on any capture socket.
    pub fn wait(&self, timeout: std::time::Duration) -> std::io::Result<()> {
        let mut fds: Vec<sys::PollFd> = self
            .fds()
            .into_iter()
            .map(|fd| sys::PollFd::from_borrowed_fd(fd, sys::PollFlags::IN))
            .collect();
        sys::poll(&mut fds, timeout).map(|_| ())
    }

    /// Replaces the filter on every socket (and on those opened later).
    pub fn set_filter(&mut self, filter: FlowFilter) -> Result<(), OsError> {
        if filter == self.filter {
            return Ok(());
        }
        let prog = bpf::compile(&filter);
        for t in &self.taps {
            sys::attach_filter(t.fd.as_fd(), &prog)
                .map_err(|e| OsError::io("could not update the capture filter", e))?;
        }
        self.filter = filter;
        Ok(())
    }

    /// The filter in force.
    pub fn filter(&self) -> &FlowFilter {
        &self.filter
    }

    /// The interfaces captured on.
    pub fn interfaces(&self) -> Vec<u32> {
        self.taps.iter().map(|t| t.ifindex).collect()
    }

    /// The descriptors to wait on for readability.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        self.taps.iter().map(|t| t.fd.as_fd()).collect()
    }

    /// Reads what is queued, at most `limit` packets per socket; returns them in the
    /// order read.
    pub fn drain(&mut self, limit: usize) -> Result<Vec<CapturedPacket>, OsError> {
        let mut out = Vec::new();
        for t in &self.taps {
            for _ in 0..limit {
                let Some(raw) = sys::recv_packet(t.fd.as_fd(), &mut self.buf)
                    .map_err(|e| OsError::io("could not read from the capture socket", e))?
                else {
                    break;
                };
                // On the loopback interface each packet shows up twice, leaving and
                // arriving: keep the arrival.
                if t.loopback && raw.pkttype == PACKET_OUTGOING {
                    continue;
                }
                let stamp = raw.stamp.unwrap_or_else(|| {
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                });
                let mut data = self.buf.get(..raw.len).unwrap_or_default().to_vec();
                let cut = raw.orig_len > raw.len;
                // With checksum offload the kernel hands the packet over before the
                // checksum is computed (the NIC or the veth peer does without it): fill it
                // in as it goes on the wire. Packets whose checksum was final stay as
                // they are, bad or not.
                let completed = !cut
                    && raw
                        .status
                        .is_some_and(|s| s & libc::TP_STATUS_CSUMNOTREADY != 0)
                    && complete_checksum(&mut data);
                out.push(CapturedPacket {
                    stamp,
                    dir: if raw.pkttype == PACKET_OUTGOING {
                        Direction::Tx
                    } else {
                        Direction::Rx
                    },
                    ifindex: raw.ifindex,
                    data,
                    cut_from: cut.then_some(raw.orig_len),
                    checksum_completed: completed,
                });
            }
        }
        Ok(out)
    }

    /// Packets the kernel dropped because a capture socket's buffer was full, since the
    /// last call (`PACKET_STATISTICS` resets on read).
    pub fn take_drops(&mut self) -> u64 {
        for t in &self.taps {
            // struct tpacket_stats { unsigned int tp_packets, tp_drops; }
            let mut b = [0u8; 8];
            if let Ok(8) =
                sys::getsockopt_bytes(t.fd.as_fd(), libc::SOL_PACKET, PACKET_STATISTICS, &mut b)
            {
                self.dropped += u64::from(u32::from_ne_bytes([b[4], b[5], b[6], b[7]]));
            }
        }
        std::mem::take(&mut self.dropped)
    }
}

pub use fetchscope_wire::complete_checksum;

/// The addresses and ports of an IP packet carrying UDP or TCP, for matching flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    /// 6 (TCP), 17 (UDP), 1 or 58 (ICMP).
    pub protocol: u8,
    /// Source address.
    pub src: std::net::IpAddr,
    /// Destination address.
    pub dst: std::net::IpAddr,
    /// Source port (0 for ICMP).
    pub sport: u16,
    /// Destination port (0 for ICMP).
    pub dport: u16,
}

/// Reads the flow key of an IP packet (no extension headers, first fragments only).
pub fn flow_key(p: &[u8]) -> Option<FlowKey> {
    let version = p.first()? >> 4;
    let (protocol, src, dst, l4): (u8, std::net::IpAddr, std::net::IpAddr, &[u8]) = match version {
        4 => {
            let ihl = usize::from(p.first()? & 0x0f) * 4;
            let frag = u16::from_be_bytes([*p.get(6)?, *p.get(7)?]) & 0x1fff;
            if frag != 0 || ihl < 20 {
                return None;
            }
            let a: [u8; 4] = p.get(12..16)?.try_into().ok()?;
            let b: [u8; 4] = p.get(16..20)?.try_into().ok()?;
            (*p.get(9)?, a.into(), b.into(), p.get(ihl..)?)
        }
        6 => {
            let a: [u8; 16] = p.get(8..24)?.try_into().ok()?;
            let b: [u8; 16] = p.get(24..40)?.try_into().ok()?;
            (*p.get(6)?, a.into(), b.into(), p.get(40..)?)
        }
        _ => return None,
    };
    let (sport, dport) = match protocol {
        6 | 17 => (
            u16::from_be_bytes([*l4.first()?, *l4.get(1)?]),
            u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]),
        ),
        _ => (0, 0),
    };
    Some(FlowKey {
        protocol,
        src,
        dst,
        sport,
        dport,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_keys() {
        let mut p = vec![
            0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
        ];
        p.extend_from_slice(&[0x9c, 0x40, 0, 53, 0, 8, 0, 0]);
        let k = flow_key(&p).unwrap();
        assert_eq!((k.protocol, k.sport, k.dport), (17, 40000, 53));
        assert_eq!(k.src.to_string(), "10.0.0.2");
        p[7] = 1; // a later fragment
        assert!(flow_key(&p).is_none());
        assert!(flow_key(&[0x45]).is_none());
        assert!(flow_key(&[]).is_none());
    }
}
