//! The system calls std does not wrap, each behind a small safe function.
//!
//! They come from crates made for the job: [`rustix`] (sockets, socket options, `poll`,
//! interface names), [`socket2`] (attaching the classic BPF filter) and [`nix`]
//! (`recvmsg` with its control messages, `AF_PACKET` addresses, `SO_TIMESTAMPNS`). Three
//! calls none of them offers keep a small `unsafe` block each, next to the evidence of
//! what is missing (crate versions as locked in `Cargo.lock`):
//! [`set_packet_auxdata`], [`getsockopt_bytes`] and the address in [`bind_packet`].

use std::io;
use std::io::IoSliceMut;
use std::mem::size_of;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::{
    ControlMessageOwned, LinkAddr, MsgFlags, SockaddrLike, SockaddrStorage, sockopt,
};
use rustix::event::Timespec;
use rustix::net::{AddressFamily, Protocol, SocketFlags, SocketType};

/// One descriptor for [`poll`] with the events wanted (`rustix`'s `struct pollfd`).
pub use rustix::event::PollFd;
/// `POLLIN`, `POLLOUT`, ... for [`PollFd`].
pub use rustix::event::PollFlags;

fn invalid_input() -> io::Error {
    io::Error::from(io::ErrorKind::InvalidInput)
}

/// `socket(2)` with `SOCK_CLOEXEC | SOCK_NONBLOCK`; the arguments are libc's constants
/// (`protocol` 0: the family's default).
pub fn socket(domain: libc::c_int, ty: libc::c_int, protocol: libc::c_int) -> io::Result<OwnedFd> {
    let family = u16::try_from(domain).map_err(|_| invalid_input())?;
    let ty = u32::try_from(ty).map_err(|_| invalid_input())?;
    let protocol = u32::try_from(protocol).map_err(|_| invalid_input())?;
    Ok(rustix::net::socket_with(
        AddressFamily::from_raw(family),
        SocketType::from_raw(ty),
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        NonZeroU32::new(protocol).map(Protocol::from_raw),
    )?)
}

/// `getsockopt(2)` into `buf`; returns the number of bytes the kernel wrote.
///
/// Used for `TCP_INFO` (whose length depends on the kernel) and `PACKET_STATISTICS`.
/// Neither is offered by rustix 1.1.6 (`rustix::net::sockopt` has no `tcp_info` and no
/// `SOL_PACKET` option; its TCP options are nodelay, keepcnt/keepidle/keepintvl,
/// user_timeout, quickack, congestion, thin_linear_timeouts and cork), socket2 0.6.5
/// (no `tcp_info`, no `PACKET_*` option, no raw `getsockopt`) or nix 0.32.0 (no such
/// `sockopt`; the `GetStruct` behind its `sockopt_impl!` asserts that the kernel wrote
/// exactly `size_of::<T>()` bytes, which `TCP_INFO` does not promise). Hence this one
/// raw call.
pub fn getsockopt_bytes(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut len = libc::socklen_t::try_from(buf.len()).map_err(|_| invalid_input())?;
    // SAFETY: `buf` is writable for `len` bytes; the kernel writes at most `len` bytes
    // and stores the length written in `len`. Plain bytes have no invalid values.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(len).unwrap_or(0).min(buf.len()))
}

/// `setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)`: each packet read from the socket comes
/// with a `struct tpacket_auxdata` control message (see [`RawPacket::status`]).
///
/// Not offered by rustix 1.1.6 (no `SOL_PACKET` option in `rustix::net::sockopt`),
/// socket2 0.6.5 (no `PACKET_*` option, no raw `setsockopt`) or nix 0.32.0 (no
/// `PacketAuxdata` in `nix::sys::socket::sockopt`). Hence this one raw call.
pub fn set_packet_auxdata(fd: BorrowedFd<'_>) -> io::Result<()> {
    let on: libc::c_int = 1;
    let len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `on` is a live `c_int` and `len` is its size; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_AUXDATA,
            (&raw const on).cast(),
            len,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `setsockopt(SOL_SOCKET, SO_TIMESTAMPNS, 1)`: each packet read comes with the kernel's
/// receive time (see [`RawPacket::stamp`]).
pub fn set_timestamps(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(nix::sys::socket::setsockopt(
        &fd,
        sockopt::ReceiveTimestampns,
        &true,
    )?)
}

/// Attaches the classic BPF program `prog` (`SO_ATTACH_FILTER`), replacing the one before.
pub fn attach_filter(fd: BorrowedFd<'_>, prog: &[libc::sock_filter]) -> io::Result<()> {
    // socket2 casts the length to u16 unchecked: refuse what does not fit.
    u16::try_from(prog.len()).map_err(|_| invalid_input())?;
    let prog: Vec<socket2::SockFilter> = prog
        .iter()
        .map(|i| socket2::SockFilter::new(i.code, i.jt, i.jf, i.k))
        .collect();
    socket2::SockRef::from(&fd).attach_filter(&prog)
}

/// The pending error of a socket (`SO_ERROR`), cleared by reading it.
pub fn take_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    Ok(rustix::net::sockopt::socket_error(fd)?
        .err()
        .map(io::Error::from))
}

/// `poll(2)` for at most `timeout` (rounded up to a millisecond, capped at a minute);
/// an interrupted call counts as a timeout.
pub fn poll(fds: &mut [PollFd<'_>], timeout: Duration) -> io::Result<usize> {
    let ms: u64 = timeout
        .as_micros()
        .div_ceil(1000)
        .min(60_000)
        .try_into()
        .unwrap_or(60_000);
    let timeout = Timespec::try_from(Duration::from_millis(ms)).map_err(|_| invalid_input())?;
    match rustix::event::poll(fds, Some(&timeout)) {
        Ok(n) => Ok(n),
        Err(rustix::io::Errno::INTR) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// A socket for the interface ioctls (`SIOCGIFINDEX`, `SIOCGIFNAME`), as glibc's
/// `if_nametoindex` opens one: `AF_UNIX`, else `AF_INET`.
fn ioctl_socket() -> io::Result<OwnedFd> {
    let open =
        |family| rustix::net::socket_with(family, SocketType::DGRAM, SocketFlags::CLOEXEC, None);
    Ok(open(AddressFamily::UNIX).or_else(|_| open(AddressFamily::INET))?)
}

/// The index of the interface called `name`.
pub fn if_index(name: &str) -> io::Result<u32> {
    if name.contains('\0') {
        return Err(invalid_input());
    }
    Ok(rustix::net::netdevice::name_to_index(
        ioctl_socket()?,
        name,
    )?)
}

/// The name of the interface with index `index`.
pub fn if_name(index: u32) -> Option<String> {
    rustix::net::netdevice::index_to_name(ioctl_socket().ok()?, index).ok()
}

/// `shutdown(fd, SHUT_WR)`: no more data from us, the kernel sends a FIN.
pub fn shutdown_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::net::shutdown(fd, rustix::net::Shutdown::Write)?)
}

/// One datagram read by [`recv_packet`].
#[derive(Debug)]
pub struct RawPacket {
    /// Bytes copied into the buffer.
    pub len: usize,
    /// The packet's real length (larger than `len` when it was cut).
    pub orig_len: usize,
    /// `sll_pkttype` (`PACKET_HOST`, `PACKET_OUTGOING`, ...).
    pub pkttype: u8,
    /// `sll_ifindex`.
    pub ifindex: u32,
    /// `sll_protocol` in host order (the ethertype).
    pub protocol: u16,
    /// The kernel's receive timestamp (`SO_TIMESTAMPNS`), since the Unix epoch.
    pub stamp: Option<Duration>,
    /// `tp_status` of the `PACKET_AUXDATA` message (`TP_STATUS_CSUMNOTREADY`, ...).
    pub status: Option<u32>,
}

/// `recvmsg(2)` on an `AF_PACKET` socket with `SO_TIMESTAMPNS` and `PACKET_AUXDATA` on:
/// `Ok(None)` when nothing is queued.
///
/// nix, because rustix 1.1.6's `recvmsg` decodes only `SCM_RIGHTS` and
/// `SCM_CREDENTIALS` (`RecvAncillaryMessage`) and has no packet address type, and
/// socket2 0.6.5's `recvmsg` hands back the control bytes and the address uninitialised
/// (`MaybeUninit`), to be read with `unsafe`.
pub fn recv_packet(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<RawPacket>> {
    let cap = buf.len();
    let mut iov = [IoSliceMut::new(buf)];
    let mut control = nix::cmsg_space!(libc::timespec, libc::tpacket_auxdata);
    let msg = match nix::sys::socket::recvmsg::<SockaddrStorage>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::MSG_TRUNC,
    ) {
        Ok(m) => m,
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let link = msg.address.as_ref().and_then(SockaddrStorage::as_link_addr);
    let mut stamp = None;
    let mut status = None;
    // Err only when the control buffer was too small (MSG_CTRUNC): no stamp, no status.
    for c in msg.cmsgs().into_iter().flatten() {
        match c {
            ControlMessageOwned::ScmTimestampns(ts) => {
                if let (Ok(s), Ok(ns)) = (u64::try_from(ts.tv_sec()), u32::try_from(ts.tv_nsec()))
                    && ns < 1_000_000_000
                {
                    stamp = Some(Duration::new(s, ns));
                }
            }
            ControlMessageOwned::Unknown(m)
                if m.cmsg_header.cmsg_level == libc::SOL_PACKET
                    && m.cmsg_header.cmsg_type == libc::PACKET_AUXDATA =>
            {
                // struct tpacket_auxdata begins with `__u32 tp_status`.
                status = m
                    .data_bytes
                    .get(..4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(u32::from_ne_bytes);
            }
            _ => {}
        }
    }
    Ok(Some(RawPacket {
        len: msg.bytes.min(cap),
        orig_len: msg.bytes,
        pkttype: link.map_or(0, LinkAddr::pkttype),
        ifindex: link.map_or(0, |l| u32::try_from(l.ifindex()).unwrap_or(0)),
        protocol: link.map_or(0, |l| u16::from_be(l.protocol())),
        stamp,
        status,
    }))
}

/// `bind(2)` of an `AF_PACKET` socket to `ifindex` (0: every interface) for every
/// protocol.
///
/// nix 0.32.0's `LinkAddr` is the `sockaddr_ll`, but it has no safe constructor (only
/// the `unsafe` `SockaddrLike::from_raw`); rustix 1.1.6 has no packet address type (its
/// are IPv4/IPv6, Unix, `SocketAddrNetlink` and `SocketAddrXdp`; another needs an
/// `unsafe impl SocketAddrArg`); socket2 0.6.5 builds a `SockAddr` of another family
/// only with the `unsafe` `SockAddr::new` or `try_init`. Hence one `unsafe` call.
pub fn bind_packet(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    let sll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as libc::c_ushort,
        sll_protocol: (libc::ETH_P_ALL as u16).to_be(),
        sll_ifindex: i32::try_from(ifindex).map_err(|_| invalid_input())?,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    let len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `sll` is a complete, initialised sockaddr_ll of `len` bytes, alive for the
    // call; from_raw copies it.
    let addr = unsafe { LinkAddr::from_raw((&raw const sll).cast(), Some(len)) }
        .ok_or_else(invalid_input)?;
    Ok(nix::sys::socket::bind(fd.as_raw_fd(), &addr)?)
}

/// Whether `addr` is one of this host's (this namespace's) own addresses: binding a UDP
/// socket to it succeeds only then.
pub fn is_local_address(addr: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(addr, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    use crate::bpf::{self, FlowFilter};

    #[test]
    fn sockets_are_non_blocking_and_close_on_exec() {
        let fd = socket(libc::AF_INET, libc::SOCK_STREAM, 0).unwrap();
        assert!(
            rustix::io::fcntl_getfd(&fd)
                .unwrap()
                .contains(rustix::io::FdFlags::CLOEXEC)
        );
        let fd = socket(libc::AF_INET6, libc::SOCK_DGRAM, 0).unwrap();
        let mut b = [0u8; 1];
        let e = rustix::net::recv(&fd, &mut b[..], rustix::net::RecvFlags::empty()).unwrap_err();
        assert_eq!(e, rustix::io::Errno::AGAIN);
        assert!(socket(-1, libc::SOCK_STREAM, 0).is_err());
    }

    #[test]
    fn poll_rounds_the_timeout_up_to_a_millisecond() {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut pfd = [PollFd::new(&u, PollFlags::IN)];
        let t = Instant::now();
        assert_eq!(poll(&mut pfd, Duration::from_micros(1500)).unwrap(), 0);
        assert!(t.elapsed() >= Duration::from_millis(2), "{:?}", t.elapsed());
        assert_eq!(poll(&mut [], Duration::ZERO).unwrap(), 0);
    }

    #[test]
    fn interface_names_and_indexes() {
        let lo = if_index("lo").unwrap();
        assert_eq!(if_name(lo).as_deref(), Some("lo"));
        let e = if_index("fsc-no-such0").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
        assert_eq!(
            if_index("l\0o").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(if_name(0), None);
    }

    fn since_epoch() -> Duration {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
    }

    /// The whole capture path on `lo`: filter, timestamps, auxdata, bind, recvmsg.
    #[test]
    fn a_packet_socket_on_lo_reads_filtered_stamped_packets() {
        let Ok(fd) = socket(libc::AF_PACKET, libc::SOCK_DGRAM, 0) else {
            eprintln!("skipped: opening a packet socket needs CAP_NET_RAW");
            return;
        };
        let lo = if_index("lo").unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rx.local_addr().unwrap().port();
        let filter = FlowFilter {
            udp_ports: vec![port],
            tcp_servers: Vec::new(),
            tcp_ports: Vec::new(),
        };
        attach_filter(fd.as_fd(), &bpf::drop_all()).unwrap();
        attach_filter(fd.as_fd(), &bpf::compile(&filter)).unwrap();
        set_timestamps(fd.as_fd()).unwrap();
        set_packet_auxdata(fd.as_fd()).unwrap();
        bind_packet(fd.as_fd(), lo).unwrap();
        let mut buf = [0u8; 64];
        assert!(recv_packet(fd.as_fd(), &mut buf).unwrap().is_none());

        let other = UdpSocket::bind("127.0.0.1:0").unwrap();
        other
            .send_to(&[1; 10], other.local_addr().unwrap())
            .unwrap();
        let before = since_epoch();
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .send_to(&[7; 100], ("127.0.0.1", port))
            .unwrap();
        // On lo the datagram shows up twice: leaving and arriving.
        let mut seen = Vec::new();
        for _ in 0..2 {
            let mut pfd = [PollFd::new(&fd, PollFlags::IN)];
            assert_eq!(poll(&mut pfd, Duration::from_secs(5)).unwrap(), 1);
            let p = recv_packet(fd.as_fd(), &mut buf)
                .unwrap()
                .expect("a packet");
            assert_eq!((p.len, p.orig_len), (64, 20 + 8 + 100), "cut to the buffer");
            assert_eq!((p.ifindex, p.protocol), (lo, 0x0800));
            assert_eq!(buf[9], 17);
            assert_eq!(buf[22..24], port.to_be_bytes());
            assert!(p.status.is_some(), "PACKET_AUXDATA");
            let stamp = p.stamp.expect("a kernel timestamp");
            assert!(stamp + Duration::from_secs(1) >= before && stamp <= since_epoch());
            seen.push(p.pkttype);
        }
        seen.sort_unstable();
        assert_eq!(seen, [libc::PACKET_HOST, libc::PACKET_OUTGOING]);
        assert!(
            recv_packet(fd.as_fd(), &mut buf).unwrap().is_none(),
            "only ours"
        );

        let mut stats = [0u8; 8];
        let n = getsockopt_bytes(
            fd.as_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            &mut stats,
        );
        assert_eq!(n.unwrap(), 8);
        assert_eq!(stats[0..4], 2u32.to_ne_bytes(), "tp_packets");
    }
}
