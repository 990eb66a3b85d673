//! The few system calls std does not wrap, each behind a small safe function.
//!
//! Every `unsafe` block here passes pointers to live, correctly sized buffers and checks
//! the return value; file descriptors are owned by [`OwnedFd`] so they are closed once.

use std::ffi::{CStr, CString};
use std::io;
use std::mem::{MaybeUninit, size_of};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Turns a `-1` return into the thread's `errno`.
fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `socket(2)` with `SOCK_CLOEXEC | SOCK_NONBLOCK`.
pub fn socket(domain: libc::c_int, ty: libc::c_int, protocol: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments.
    let fd = check(unsafe {
        libc::socket(
            domain,
            ty | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            protocol,
        )
    })?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt(2)` with a plain-old-data value.
pub fn setsockopt<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    let len = libc::socklen_t::try_from(size_of::<T>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `value` points to `len` readable bytes for the duration of the call.
    check(unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (value as *const T).cast(), len) })
        .map(|_| ())
}

/// `getsockopt(2)` into `buf`; returns the number of bytes the kernel wrote.
pub fn getsockopt_bytes(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut len = libc::socklen_t::try_from(buf.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `buf` is writable for `len` bytes; the kernel writes at most `len` and
    // stores the length written in `len`.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    })?;
    Ok(usize::try_from(len).unwrap_or(0).min(buf.len()))
}

/// `getsockopt(2)` of an `int` option.
pub fn getsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<i32> {
    let mut buf = [0u8; 4];
    let n = getsockopt_bytes(fd, level, name, &mut buf)?;
    if n != 4 {
        return Err(io::Error::from(io::ErrorKind::InvalidData));
    }
    Ok(i32::from_ne_bytes(buf))
}

/// A socket address in the kernel's layout.
struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddr {
    fn from_std(addr: SocketAddr) -> RawAddr {
        // SAFETY: all-zero bytes are a valid sockaddr_storage.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe {
                    std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin)
                };
                size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe {
                    std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6)
                };
                size_of::<libc::sockaddr_in6>()
            }
        };
        RawAddr {
            storage,
            len: len as libc::socklen_t,
        }
    }

    fn to_std(&self) -> Option<SocketAddr> {
        match i32::from(self.storage.ss_family) {
            libc::AF_INET if self.len as usize >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let sin: libc::sockaddr_in = unsafe {
                    std::ptr::read((&self.storage as *const libc::sockaddr_storage).cast())
                };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 if self.len as usize >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let sin6: libc::sockaddr_in6 = unsafe {
                    std::ptr::read((&self.storage as *const libc::sockaddr_storage).cast())
                };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// Non-blocking `connect(2)`: `Ok(true)` when connected at once, `Ok(false)` while the
/// handshake is in progress (`EINPROGRESS`).
pub fn connect(fd: BorrowedFd<'_>, addr: SocketAddr) -> io::Result<bool> {
    let raw = RawAddr::from_std(addr);
    // SAFETY: `raw.storage` holds a valid address of `raw.len` bytes.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&raw.storage as *const libc::sockaddr_storage).cast(),
            raw.len,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINPROGRESS) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// `getsockname(2)`.
pub fn local_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut raw = RawAddr {
        storage: unsafe { std::mem::zeroed() },
        len: size_of::<libc::sockaddr_storage>() as libc::socklen_t,
    };
    // SAFETY: the storage is writable for `len` bytes.
    check(unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut raw.storage as *mut libc::sockaddr_storage).cast(),
            &mut raw.len,
        )
    })?;
    raw.to_std()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))
}

/// The pending error of a socket (`SO_ERROR`), cleared by reading it.
pub fn take_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    let e = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
    Ok((e != 0).then(|| io::Error::from_raw_os_error(e)))
}

/// One descriptor for [`poll`], with the events wanted.
#[derive(Debug, Clone, Copy)]
pub struct PollFd {
    /// The descriptor.
    pub fd: RawFd,
    /// `POLLIN`, `POLLOUT`.
    pub events: libc::c_short,
    /// What happened, after [`poll`].
    pub revents: libc::c_short,
}

/// `poll(2)` for at most `timeout` (rounded up to a millisecond, capped at a minute);
/// an interrupted call counts as a timeout.
pub fn poll(fds: &mut [PollFd], timeout: Duration) -> io::Result<usize> {
    let mut raw: Vec<libc::pollfd> = fds
        .iter()
        .map(|p| libc::pollfd {
            fd: p.fd,
            events: p.events,
            revents: 0,
        })
        .collect();
    let ms = timeout
        .as_micros()
        .div_ceil(1000)
        .min(60_000)
        .try_into()
        .unwrap_or(60_000);
    // SAFETY: `raw` holds `raw.len()` initialised pollfd structures.
    let r = unsafe { libc::poll(raw.as_mut_ptr(), raw.len() as libc::nfds_t, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    for (p, r) in fds.iter_mut().zip(raw) {
        p.revents = r.revents;
    }
    Ok(r as usize)
}

/// The index of the interface called `name`.
pub fn if_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(i)
    }
}

/// The name of the interface with index `index`.
pub fn if_name(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has room for IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Some(s.to_string_lossy().into_owned())
}

/// `shutdown(fd, SHUT_WR)`: no more data from us, the kernel sends a FIN.
pub fn shutdown_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain system call.
    check(unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_WR) }).map(|_| ())
}

/// `SOL_PACKET` option and control message: per-packet status (`struct tpacket_auxdata`).
pub const PACKET_AUXDATA: libc::c_int = 8;
/// `tp_status` bit: the transport checksum is not filled in yet (checksum offload).
pub const TP_STATUS_CSUMNOTREADY: u32 = 1 << 3;

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
    pub ifindex: i32,
    /// `sll_protocol` in host order (the ethertype).
    pub protocol: u16,
    /// The kernel's receive timestamp (`SO_TIMESTAMPNS`), since the Unix epoch.
    pub stamp: Option<Duration>,
    /// `tp_status` of the `PACKET_AUXDATA` message (`TP_STATUS_CSUMNOTREADY`, ...).
    pub status: Option<u32>,
}

/// `recvmsg(2)` on an `AF_PACKET` socket with `SO_TIMESTAMPNS`: `Ok(None)` when nothing
/// is queued.
pub fn recv_packet(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<RawPacket>> {
    let mut addr = MaybeUninit::<libc::sockaddr_ll>::zeroed();
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one cmsg with a timespec (and some slack for others).
    let mut control = [0u64; 16];
    // SAFETY: all-zero bytes are a valid msghdr.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = addr.as_mut_ptr().cast();
    msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 16]>() as _;
    // SAFETY: every pointer in `msg` refers to a live buffer of the stated size.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
            _ => Err(e),
        };
    }
    let orig_len = n as usize;
    // SAFETY: recvmsg filled (at most) the sockaddr_ll it was given; it was zeroed first.
    let addr = unsafe { addr.assume_init() };
    let mut stamp = None;
    let mut status = None;
    // SAFETY: the CMSG_* macros walk the control buffer recvmsg filled in, within
    // `msg_controllen`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                if ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec) {
                    stamp = Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
                }
            } else if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == PACKET_AUXDATA {
                // struct tpacket_auxdata begins with `__u32 tp_status`.
                status = Some(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<u32>()));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(Some(RawPacket {
        len: orig_len.min(buf.len()),
        orig_len,
        pkttype: addr.sll_pkttype,
        ifindex: addr.sll_ifindex,
        protocol: u16::from_be(addr.sll_protocol),
        stamp,
        status,
    }))
}

/// `bind(2)` of an `AF_PACKET` socket to `ifindex` (0: every interface) for every
/// protocol.
pub fn bind_packet(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    // SAFETY: all-zero bytes are a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as libc::c_ushort;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex =
        i32::try_from(ifindex).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// Whether `addr` is one of this host's (this namespace's) own addresses: binding a UDP
/// socket to it succeeds only then.
pub fn is_local_address(addr: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(addr, 0)).is_ok()
}
