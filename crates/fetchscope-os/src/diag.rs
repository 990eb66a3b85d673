//! The kernel's state of one TCP connection by its 4-tuple, asked over `sock_diag`
//! netlink (what `ss` uses): it finds time-wait sockets too, which have no descriptor, and
//! looks up one connection instead of walking the whole table as `/proc/net/tcp` does.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rustix::net::{RecvFlags, SendFlags};

use crate::sys;

const NETLINK_SOCK_DIAG: libc::c_int = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
/// Header of a netlink message.
const NLMSG_HDRLEN: usize = 16;
/// `struct inet_diag_req_v2`.
const REQ_LEN: usize = 56;
/// `struct inet_diag_msg` up to `idiag_expires`.
const MSG_MIN: usize = 56;

/// A connection as the kernel's socket table has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiagState {
    /// The Linux `TCP_*` state number (6 = TIME-WAIT).
    pub state: u8,
    /// Time until the socket's timer fires (for TIME-WAIT: until it is gone).
    pub expires: Duration,
}

fn put_addr(out: &mut [u8], ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => out[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => out[..16].copy_from_slice(&a.octets()),
    }
}

/// The request for the connection `local` → `remote`, any state.
fn request(local: SocketAddr, remote: SocketAddr) -> Vec<u8> {
    let len = NLMSG_HDRLEN + REQ_LEN;
    let mut m = vec![0u8; len];
    m[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m[8..12].copy_from_slice(&1u32.to_ne_bytes());
    let r = &mut m[NLMSG_HDRLEN..];
    r[0] = if local.is_ipv4() {
        libc::AF_INET as u8
    } else {
        libc::AF_INET6 as u8
    };
    r[1] = libc::IPPROTO_TCP as u8;
    r[4..8].copy_from_slice(&u32::MAX.to_ne_bytes());
    // struct inet_diag_sockid at 8: ports (big-endian), src[4], dst[4], if, cookie[2].
    r[8..10].copy_from_slice(&local.port().to_be_bytes());
    r[10..12].copy_from_slice(&remote.port().to_be_bytes());
    put_addr(&mut r[12..28], local.ip());
    put_addr(&mut r[28..44], remote.ip());
    // No cookie: INET_DIAG_NOCOOKIE twice.
    r[48..56].copy_from_slice(&[0xff; 8]);
    m
}

/// Reads the answer: `Some` for a socket, `None` for "no such connection" or anything
/// unexpected.
fn parse(b: &[u8]) -> Option<DiagState> {
    let len = u32::from_ne_bytes(b.get(0..4)?.try_into().ok()?) as usize;
    let ty = u16::from_ne_bytes(b.get(4..6)?.try_into().ok()?);
    if ty == NLMSG_ERROR || ty != SOCK_DIAG_BY_FAMILY || len < NLMSG_HDRLEN + MSG_MIN {
        return None;
    }
    let msg = b.get(NLMSG_HDRLEN..len)?;
    let expires = u32::from_ne_bytes(msg.get(52..56)?.try_into().ok()?);
    Some(DiagState {
        state: *msg.get(1)?,
        expires: Duration::from_millis(u64::from(expires)),
    })
}

/// The kernel's state of the connection `local` → `remote` in this network namespace;
/// `None` if there is none or `sock_diag` is not available.
pub fn state(local: SocketAddr, remote: SocketAddr) -> Option<DiagState> {
    let fd = sys::socket(libc::AF_NETLINK, libc::SOCK_DGRAM, NETLINK_SOCK_DIAG).ok()?;
    let req = request(local, remote);
    if rustix::net::send(&fd, &req, SendFlags::empty()).ok()? != req.len() {
        return None;
    }
    let mut pfd = [sys::PollFd::new(&fd, sys::PollFlags::IN)];
    if sys::poll(&mut pfd, Duration::from_millis(200)).ok()? == 0 {
        return None;
    }
    let mut buf = [0u8; 1024];
    let (n, _) = rustix::net::recv(&fd, &mut buf[..], RecvFlags::DONTWAIT).ok()?;
    parse(buf.get(..n)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        let l: SocketAddr = "10.88.0.2:50000".parse().unwrap();
        let r: SocketAddr = "10.88.0.1:443".parse().unwrap();
        let m = request(l, r);
        assert_eq!(m.len(), 72);
        assert_eq!(&m[16..18], &[libc::AF_INET as u8, libc::IPPROTO_TCP as u8]);
        assert_eq!(&m[24..28], &[0xc3, 0x50, 0x01, 0xbb]);
        assert_eq!(&m[28..32], &[10, 88, 0, 2]);
        assert_eq!(&m[44..48], &[10, 88, 0, 1]);
    }

    #[test]
    fn finds_a_live_connection_and_not_a_missing_one() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (l, r) = (c.local_addr().unwrap(), c.peer_addr().unwrap());
        // sock_diag may be missing (a kernel without INET_DIAG): then there is nothing
        // to check here; the caller falls back to /proc/net/tcp.
        if let Some(s) = state(l, r) {
            assert_eq!(s.state, 1, "ESTABLISHED");
            let other: SocketAddr = "127.0.0.1:1".parse().unwrap();
            assert_eq!(state(other, r), None);
        }
    }

    #[test]
    fn errors_and_short_answers_are_none() {
        let mut err = vec![0u8; 36];
        err[0..4].copy_from_slice(&36u32.to_ne_bytes());
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        assert_eq!(parse(&err), None);
        assert_eq!(parse(&[0; 10]), None);
    }
}
