//! [`TunLink`] against the real kernel, each test in a private network namespace.
//!
//! Network namespaces belong to threads: every test spawns a thread that calls
//! `unshare(CLONE_NEWNET)`, so its TUN devices, addresses and ioctls live in a fresh
//! namespace that disappears with the thread. Nothing is left to clean up.
//!
//! These tests need root (CAP_SYS_ADMIN for `unshare`, CAP_NET_ADMIN for TUN) and
//! `/dev/net/tun`. Without them they print why and pass, unless `CI=true`, where a missing
//! prerequisite fails the test.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::time::Duration as StdDuration;

use fetchscope_net::{Link, LinkError, TunError, TunLink, TunOptions, WaitOutcome};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    Icmpv4Packet, Icmpv4Repr, IpAddress, IpProtocol, Ipv4Cidr, Ipv4Packet, Ipv4Repr, UdpPacket,
    UdpRepr,
};

const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
const DEVICE: &str = "fsct0";

fn gateway_cidr() -> Ipv4Cidr {
    Ipv4Cidr::new(GATEWAY, 24)
}

/// Runs `body` on a thread of its own inside a fresh network namespace. Returns false
/// (after printing why, or panicking under `CI=true`) when that is impossible here.
fn in_private_netns(test: &str, body: impl FnOnce() + Send + 'static) -> bool {
    in_fresh_netns(test, true, body)
}

/// [`in_private_netns`], optionally leaving the namespace's IPv6 defaults alone.
fn in_fresh_netns(test: &str, quiet: bool, body: impl FnOnce() + Send + 'static) -> bool {
    if !std::path::Path::new("/dev/net/tun").exists() {
        prerequisite_missing(test, "/dev/net/tun does not exist (modprobe tun)");
        return false;
    }
    let outcome = std::thread::spawn(move || {
        // SAFETY: unshare only changes this thread's namespaces.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if quiet {
            quiet_ipv6();
        }
        body();
        Ok(())
    })
    .join();
    match outcome {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            prerequisite_missing(
                test,
                &format!("cannot make a network namespace ({e}); run as root"),
            );
            false
        }
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn prerequisite_missing(test: &str, reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: prerequisite missing under CI=true: {reason}");
    }
    eprintln!("skipping {test}: {reason}");
}

/// Keeps the kernel from sending IPv6 router solicitations and MLD reports on new
/// devices, so "no traffic" really means none. `/proc/sys/net` shows the calling
/// thread's namespace. Best effort: the tests cope with stray packets anyway.
fn quiet_ipv6() {
    for knob in ["all", "default"] {
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{knob}/disable_ipv6"), "1");
    }
}

fn echo_request(ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    echo_request_between(STACK, GATEWAY, ident, seq_no, data)
}

fn echo_request_between(
    src_addr: Ipv4Addr,
    dst_addr: Ipv4Addr,
    ident: u16,
    seq_no: u16,
    data: &[u8],
) -> Vec<u8> {
    let icmp = Icmpv4Repr::EchoRequest {
        ident,
        seq_no,
        data,
    };
    let ip = Ipv4Repr {
        src_addr,
        dst_addr,
        next_header: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        hop_limit: 64,
    };
    let caps = ChecksumCapabilities::default();
    let mut buffer = vec![0u8; ip.buffer_len() + icmp.buffer_len()];
    let mut packet = Ipv4Packet::new_unchecked(&mut buffer[..]);
    ip.emit(&mut packet, &caps);
    icmp.emit(
        &mut Icmpv4Packet::new_unchecked(packet.payload_mut()),
        &caps,
    );
    buffer
}

/// The (ident, seq, data) of an ICMP echo reply from the gateway to the stack, if `packet`
/// is one.
fn echo_reply(packet: &[u8]) -> Option<(u16, u16, Vec<u8>)> {
    echo_reply_between(packet, GATEWAY, STACK)
}

/// The (ident, seq, data) of an ICMP echo reply from `from` to `to`, if `packet` is one.
fn echo_reply_between(packet: &[u8], from: Ipv4Addr, to: Ipv4Addr) -> Option<(u16, u16, Vec<u8>)> {
    let caps = ChecksumCapabilities::default();
    let ip_packet = Ipv4Packet::new_checked(packet).ok()?;
    let ip = Ipv4Repr::parse(&ip_packet, &caps).ok()?;
    if ip.next_header != IpProtocol::Icmp || ip.src_addr != from || ip.dst_addr != to {
        return None;
    }
    let icmp_packet = Icmpv4Packet::new_checked(ip_packet.payload()).ok()?;
    match Icmpv4Repr::parse(&icmp_packet, &caps).ok()? {
        Icmpv4Repr::EchoReply {
            ident,
            seq_no,
            data,
        } => Some((ident, seq_no, data.to_vec())),
        _ => None,
    }
}

/// User plus system CPU time of the calling thread.
fn thread_cpu_time() -> StdDuration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    assert_eq!(rc, 0, "getrusage: {}", io::Error::last_os_error());
    let tv = |t: libc::timeval| {
        StdDuration::from_secs(t.tv_sec as u64) + StdDuration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Creates a persistent TUN device (no process attached), owned by `owner` if given.
fn make_persistent_tun(name: &str, owner: Option<libc::uid_t>) {
    make_persistent(name, owner, tun_tap::Mode::Tun);
}

/// Creates a persistent TUN or TAP device, owned by `owner` if given.
fn make_persistent(name: &str, owner: Option<libc::uid_t>, mode: tun_tap::Mode) {
    let iface = tun_tap::Iface::without_packet_info(name, mode)
        .expect("creating a TUN/TAP device for the test");
    let fd = iface.as_raw_fd();
    // SAFETY: TUNSETPERSIST and TUNSETOWNER take their argument by value.
    unsafe {
        assert_eq!(libc::ioctl(fd, libc::TUNSETPERSIST, 1 as libc::c_ulong), 0);
        if let Some(uid) = owner {
            assert_eq!(libc::ioctl(fd, libc::TUNSETOWNER, uid as libc::c_ulong), 0);
        }
    }
}

/// Sets IPv4 addresses with ioctls, for devices the tests make by hand.
struct ControlAddr(libc::c_int);

impl ControlAddr {
    fn new() -> Self {
        // SAFETY: plain socket(2).
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
        assert!(fd >= 0);
        ControlAddr(fd)
    }

    fn set(&self, name: &str, addr: Ipv4Addr, prefix: u8) {
        let mask = Ipv4Addr::from(u32::MAX << (32 - u32::from(prefix)));
        for (request, value) in [(libc::SIOCSIFADDR, addr), (libc::SIOCSIFNETMASK, mask)] {
            // SAFETY: a zeroed ifreq with a sockaddr_in written into its address member.
            unsafe {
                let mut req: libc::ifreq = std::mem::zeroed();
                for (slot, byte) in req.ifr_name.iter_mut().zip(name.bytes()) {
                    *slot = byte as libc::c_char;
                }
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: 0,
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(value).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                std::ptr::write_unaligned(
                    std::ptr::addr_of_mut!(req.ifr_ifru).cast::<libc::sockaddr_in>(),
                    sin,
                );
                assert_eq!(libc::ioctl(self.0, request, &mut req), 0);
            }
        }
    }
}

impl Drop for ControlAddr {
    fn drop(&mut self) {
        // SAFETY: closing the descriptor this value owns.
        unsafe { libc::close(self.0) };
    }
}

/// Sets or clears IFF_UP on `name`.
fn set_link_up(name: &str, up: bool) {
    // SAFETY: an AF_INET datagram socket and two ioctls on a zero-initialised ifreq.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        assert!(sock >= 0);
        let mut req: libc::ifreq = std::mem::zeroed();
        for (slot, byte) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *slot = byte as libc::c_char;
        }
        assert_eq!(libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req), 0);
        let flags = req.ifr_ifru.ifru_flags;
        let up_bit = libc::IFF_UP as libc::c_short;
        req.ifr_ifru.ifru_flags = if up { flags | up_bit } else { flags & !up_bit };
        assert_eq!(libc::ioctl(sock, libc::SIOCSIFFLAGS, &mut req), 0);
        libc::close(sock);
    }
}

/// Removes CAP_NET_ADMIN from the calling thread's effective capabilities.
fn drop_cap_net_admin() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_ADMIN: u32 = 12;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a version-3 header and two data words, for this thread.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
            0
        );
        data[0].effective &= !(1 << CAP_NET_ADMIN);
        assert_eq!(libc::syscall(libc::SYS_capset, &header, data.as_ptr()), 0);
    }
}

#[test]
fn echo_request_gets_the_kernels_reply() {
    in_private_netns("echo_request_gets_the_kernels_reply", || {
        let mut link = TunLink::open(TunOptions::create(DEVICE, Some(gateway_cidr()))).unwrap();
        assert!(link.created());
        assert_eq!(link.name(), DEVICE);
        assert_eq!(link.describe(), "TUN device fsct0");
        assert_eq!(link.mtu(), 1500, "the kernel's default TUN MTU");

        let payload = b"fetchscope says hello through TUN";
        link.send(&echo_request(0x4711, 7, payload)).unwrap();
        assert_eq!(link.dropped_sends(), 0);

        let deadline = link.now() + Duration::from_secs(2);
        let reply = loop {
            match link.wait(Some(deadline)).unwrap() {
                WaitOutcome::Ready => {
                    while let Some(packet) = link.recv().unwrap() {
                        assert!(packet.len() <= link.mtu());
                        if let Some(reply) = echo_reply(&packet) {
                            return check_reply(reply, payload);
                        }
                    }
                }
                outcome => break outcome,
            }
        };
        panic!("no echo reply within 2 s (wait ended with {reply:?})");
    });
}

#[test]
fn packets_sent_in_a_burst_reach_the_kernel_in_order() {
    // Sends queue for the writer thread; a burst makes the fetch's thread write what waits
    // itself (the writer's INLINE_AFTER). Either way the kernel must see them in order:
    // its echo replies come back in the order of the requests.
    in_private_netns("packets_sent_in_a_burst_reach_the_kernel_in_order", || {
        let mut link = TunLink::open(TunOptions::create(DEVICE, Some(gateway_cidr()))).unwrap();
        const N: u16 = 300;
        let mut seen = Vec::new();
        for seq in 0..N {
            link.send(&echo_request(0x5150, seq, b"burst")).unwrap();
            // Read as we go, so the device's queue to us never fills.
            while let Some(packet) = link.recv().unwrap() {
                seen.extend(echo_reply(&packet).map(|(_, s, _)| s));
            }
        }
        let deadline = link.now() + Duration::from_secs(5);
        while seen.len() < usize::from(N) {
            match link.wait(Some(deadline)).unwrap() {
                WaitOutcome::Ready => {
                    while let Some(packet) = link.recv().unwrap() {
                        seen.extend(echo_reply(&packet).map(|(_, s, _)| s));
                    }
                }
                outcome => panic!("{} of {N} replies, then {outcome:?}", seen.len()),
            }
        }
        assert_eq!(
            seen,
            (0..N).collect::<Vec<_>>(),
            "replies in the order sent"
        );
        assert_eq!(link.dropped_sends(), 0);
    });
}

fn check_reply((ident, seq_no, data): (u16, u16, Vec<u8>), payload: &[u8]) {
    assert_eq!(ident, 0x4711);
    assert_eq!(seq_no, 7);
    assert_eq!(data, payload);
}

#[test]
fn wait_sleeps_until_the_deadline_without_spinning() {
    in_private_netns("wait_sleeps_until_the_deadline_without_spinning", || {
        let mut link = TunLink::open(TunOptions::create(DEVICE, Some(gateway_cidr()))).unwrap();
        // Nothing readable and a deadline in the past: an immediate Deadline.
        while link.recv().unwrap().is_some() {}
        assert_eq!(
            link.wait(Some(Instant::ZERO)).unwrap(),
            WaitOutcome::Deadline
        );

        let cpu_before = thread_cpu_time();
        let wall_before = std::time::Instant::now();
        let deadline = link.now() + Duration::from_millis(200);
        let mut stray = 0;
        loop {
            match link.wait(Some(deadline)).unwrap() {
                WaitOutcome::Deadline => break,
                // Stray kernel packets are real traffic: drain them and wait on.
                _ => {
                    while link.recv().unwrap().is_some() {
                        stray += 1;
                    }
                }
            }
        }
        let wall = wall_before.elapsed();
        let cpu = thread_cpu_time() - cpu_before;
        assert!(link.now() >= deadline);
        assert!(wall >= StdDuration::from_millis(200), "woke after {wall:?}");
        assert!(wall < StdDuration::from_secs(2), "slept {wall:?}");
        assert!(cpu < StdDuration::from_millis(20), "used {cpu:?} of CPU");
        eprintln!("waited {wall:?} using {cpu:?} of CPU ({stray} stray packets)");
    });
}

#[test]
fn first_packets_after_attaching_are_answered() {
    // Attaching turns a device's carrier on; the kernel starts its queue a moment later.
    // `open` must not return before that, or the first replies are dropped. Each round
    // uses a fresh device that has never had a carrier, to meet that moment every time.
    in_private_netns("first_packets_after_attaching_are_answered", || {
        let control = ControlAddr::new();
        for round in 0..20u16 {
            let name = format!("fsca{round}");
            let gateway = Ipv4Addr::new(10, 99, round as u8, 1);
            let stack = Ipv4Addr::new(10, 99, round as u8, 2);
            make_persistent_tun(&name, None);
            set_link_up(&name, true);
            control.set(&name, gateway, 24);

            let mut link = TunLink::open(TunOptions::attach(name.as_str())).unwrap();
            link.send(&echo_request_between(stack, gateway, 0x77, round, b"first"))
                .unwrap();
            let deadline = link.now() + Duration::from_secs(1);
            let mut answered = false;
            while !answered && link.wait(Some(deadline)).unwrap() == WaitOutcome::Ready {
                while let Some(packet) = link.recv().unwrap() {
                    answered |= echo_reply_between(&packet, gateway, stack)
                        == Some((0x77, round, b"first".to_vec()));
                }
            }
            assert!(answered, "{name}: the first echo request got no reply");
        }
    });
}

#[test]
fn created_device_sends_no_ipv6_chatter() {
    // IPv6 left on in the namespace: the link itself must keep the kernel quiet.
    in_fresh_netns("created_device_sends_no_ipv6_chatter", false, || {
        let mut link = TunLink::open(TunOptions::create(DEVICE, Some(gateway_cidr()))).unwrap();
        let disabled =
            std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{DEVICE}/disable_ipv6"));
        if disabled.is_err() {
            eprintln!("skipping created_device_sends_no_ipv6_chatter: no IPv6 in this kernel");
            return;
        }
        assert_eq!(disabled.unwrap().trim(), "1");
        // The kernel sends MLD reports at once and a router solicitation within ~1 s.
        let deadline = link.now() + Duration::from_millis(1500);
        let mut seen = Vec::new();
        while link.wait(Some(deadline)).unwrap() == WaitOutcome::Ready {
            while let Some(packet) = link.recv().unwrap() {
                seen.push(packet);
            }
        }
        assert!(seen.is_empty(), "unexpected packets: {seen:02x?}");
    });
}

#[test]
fn wait_without_deadline_returns_when_a_packet_arrives() {
    in_private_netns(
        "wait_without_deadline_returns_when_a_packet_arrives",
        || {
            let mut link = TunLink::open(TunOptions::create(DEVICE, Some(gateway_cidr()))).unwrap();
            link.send(&echo_request(1, 1, b"x")).unwrap();
            // The kernel's reply makes the fd readable; an indefinite wait must end.
            assert_eq!(link.wait(None).unwrap(), WaitOutcome::Ready);
            let mut got = Vec::new();
            let deadline = link.now() + Duration::from_secs(2);
            while got.is_empty() && link.now() < deadline {
                while let Some(packet) = link.recv().unwrap() {
                    got.extend(echo_reply(&packet));
                }
                if got.is_empty() {
                    link.wait(Some(deadline)).unwrap();
                }
            }
            assert_eq!(got, vec![(1, 1, b"x".to_vec())]);
        },
    );
}

#[test]
fn missing_device_is_not_found() {
    in_private_netns("missing_device_is_not_found", || {
        let err = TunLink::open(TunOptions::attach("fscnothere")).unwrap_err();
        assert!(matches!(err, TunError::NotFound { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("ip tuntap add dev fscnothere mode tun"),
            "{text}"
        );
        assert!(!err.is_permission());
    });
}

#[test]
fn down_device_says_how_to_bring_it_up() {
    in_private_netns("down_device_says_how_to_bring_it_up", || {
        make_persistent_tun(DEVICE, None);
        for options in [
            TunOptions::attach(DEVICE),
            TunOptions::create(DEVICE, Some(gateway_cidr())),
        ] {
            let err = TunLink::open(options).unwrap_err();
            assert!(matches!(err, TunError::Down { .. }), "{err:?}");
            assert!(err.to_string().contains("ip link set fsct0 up"), "{err}");
        }
        // Once up, attaching works and leaves the device as it was (not "created").
        set_link_up(DEVICE, true);
        let link = TunLink::open(TunOptions::attach(DEVICE)).unwrap();
        assert!(!link.created());
    });
}

#[test]
fn tap_device_is_not_a_tun() {
    in_private_netns("tap_device_is_not_a_tun", || {
        make_persistent("fsctap0", None, tun_tap::Mode::Tap);
        set_link_up("fsctap0", true);
        for options in [
            TunOptions::attach("fsctap0"),
            TunOptions::create("fsctap0", None),
        ] {
            let err = TunLink::open(options).unwrap_err();
            assert!(matches!(err, TunError::NotTun { .. }), "{err:?}");
        }
    });
}

#[test]
fn second_process_on_a_device_is_busy() {
    in_private_netns("second_process_on_a_device_is_busy", || {
        let _first = TunLink::open(TunOptions::create(DEVICE, Some(gateway_cidr()))).unwrap();
        let err = TunLink::open(TunOptions::attach(DEVICE)).unwrap_err();
        assert!(matches!(err, TunError::Busy { .. }), "{err:?}");
    });
}

#[test]
fn gateway_address_already_held_is_reported() {
    in_private_netns("gateway_address_already_held_is_reported", || {
        let _first = TunLink::open(TunOptions::create(DEVICE, Some(gateway_cidr()))).unwrap();
        let err = TunLink::open(TunOptions::create("fsct1", Some(gateway_cidr()))).unwrap_err();
        match &err {
            TunError::AddressInUse { addr, holder, .. } => {
                assert_eq!(*addr, GATEWAY);
                assert_eq!(holder, DEVICE);
            }
            other => panic!("expected AddressInUse, got {other:?}"),
        }
        // The failed attempt's device was ours and non-persistent: it is gone again.
        let again = TunLink::open(TunOptions::attach("fsct1")).unwrap_err();
        assert!(matches!(again, TunError::NotFound { .. }), "{again:?}");
    });
}

#[test]
fn created_device_vanishes_when_the_link_is_dropped() {
    in_private_netns("created_device_vanishes_when_the_link_is_dropped", || {
        let link = TunLink::open(TunOptions::create(DEVICE, None)).unwrap();
        drop(link);
        let err = TunLink::open(TunOptions::attach(DEVICE)).unwrap_err();
        assert!(matches!(err, TunError::NotFound { .. }), "{err:?}");
    });
}

#[test]
fn without_cap_net_admin_only_the_owner_attaches() {
    in_private_netns("without_cap_net_admin_only_the_owner_attaches", || {
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        make_persistent_tun("fscmine", Some(me));
        make_persistent_tun("fscnobody", Some(65_534));
        set_link_up("fscmine", true);
        set_link_up("fscnobody", true);
        drop_cap_net_admin();

        let err = TunLink::open(TunOptions::attach("fscnobody")).unwrap_err();
        assert!(err.is_permission(), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("attach to TUN device fscnobody"), "{text}");
        assert!(text.contains("sudo setcap cap_net_admin+ep "), "{text}");
        assert!(text.contains("mode tun user $USER"), "{text}");

        let err = TunLink::open(TunOptions::create("fscnew", Some(gateway_cidr()))).unwrap_err();
        assert!(err.is_permission(), "{err:?}");
        assert!(
            err.to_string().contains("create TUN device fscnew"),
            "{err}"
        );

        let link = TunLink::open(TunOptions::attach("fscmine")).unwrap();
        assert!(!link.created());
    });
}

/// Deletes the test's device under the link's feet with `ip link del`; false (the
/// prerequisite reported) when `ip` cannot run.
fn delete_device(test: &str) -> bool {
    // `ip` runs in this thread's namespace: a child inherits the spawning thread's.
    match std::process::Command::new("ip")
        .args(["link", "del", DEVICE])
        .status()
    {
        Ok(status) => {
            assert!(status.success(), "ip link del {DEVICE}: {status}");
            true
        }
        Err(e) => {
            prerequisite_missing(test, &format!("`ip`: {e}"));
            false
        }
    }
}

#[test]
fn removed_device_breaks_the_link_without_panicking() {
    in_private_netns("removed_device_breaks_the_link_without_panicking", || {
        let mut link = TunLink::open(TunOptions::create(DEVICE, Some(gateway_cidr()))).unwrap();
        if !delete_device("removed_device_breaks_the_link") {
            return;
        }
        assert!(matches!(link.recv(), Err(LinkError::Broken(_))));
        assert!(matches!(
            link.send(&echo_request(2, 2, b"y")),
            Err(LinkError::Broken(_))
        ));
        let waited = link.wait(Some(link.now() + Duration::from_millis(50)));
        assert!(
            matches!(waited, Ok(WaitOutcome::Ready) | Err(LinkError::Broken(_))),
            "{waited:?}"
        );
    });
}

#[test]
fn a_write_that_failed_on_the_writer_thread_is_reported_by_a_later_send() {
    in_private_netns("a_write_that_failed_on_the_writer_thread", || {
        let mut link = TunLink::open(TunOptions::create(DEVICE, Some(gateway_cidr()))).unwrap();
        if !delete_device("a_write_that_failed") {
            return;
        }
        // Sends are queued for the writer thread: the first may be accepted; the thread's
        // failed write is what a later send reports (bounded: 2 s).
        let mut seen = None;
        for i in 0..200u16 {
            match link.send(&echo_request(3, i, b"z")) {
                Ok(()) => std::thread::sleep(std::time::Duration::from_millis(10)),
                Err(e) => {
                    seen = Some(e);
                    break;
                }
            }
        }
        let e = seen.expect("a send reports the removed device");
        assert!(matches!(e, LinkError::Broken(_)), "{e:?}");
        assert!(e.to_string().contains("was removed while in use"), "{e}");
    });
}

/// The namespace lab (`scripts/netns-lab.sh up`), when it is up: attach to its TUN device
/// `fsc0` inside `fsc-cli` as the stack at 10.88.1.2, ping nginx's host 10.88.0.1 through
/// the forwarding namespace, and ask its dnsmasq for www.example.test.
#[test]
fn namespace_lab_answers_through_fsc0() {
    const LAB_STACK: Ipv4Addr = Ipv4Addr::new(10, 88, 1, 2);
    const LAB_SERVER: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
    let netns = std::path::Path::new("/run/netns/fsc-cli");
    if !netns.exists() {
        eprintln!(
            "skipping namespace_lab_answers_through_fsc0: the lab is not up (scripts/netns-lab.sh up)"
        );
        return;
    }
    let netns = std::fs::File::open(netns).unwrap();
    std::thread::spawn(move || {
        // SAFETY: setns only changes this thread's network namespace.
        assert_eq!(
            unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) },
            0,
            "setns: {}",
            io::Error::last_os_error()
        );
        let mut link = match TunLink::open(TunOptions::attach("fsc0")) {
            Ok(link) => link,
            Err(TunError::Busy { .. }) => {
                eprintln!("skipping namespace_lab_answers_through_fsc0: fsc0 is in use");
                return;
            }
            Err(e) => panic!("attaching to the lab's fsc0: {e}"),
        };
        assert!(!link.created(), "the lab's device is persistent, not ours");

        link.send(&echo_request_between(LAB_STACK, LAB_SERVER, 9, 1, b"lab"))
            .unwrap();
        link.send(&dns_query(
            LAB_STACK,
            LAB_SERVER,
            0x5eed,
            "www.example.test",
        ))
        .unwrap();
        let (mut pinged, mut resolved) = (false, None);
        let deadline = link.now() + Duration::from_secs(3);
        while !(pinged && resolved.is_some())
            && link.wait(Some(deadline)).unwrap() == WaitOutcome::Ready
        {
            while let Some(packet) = link.recv().unwrap() {
                if echo_reply_between(&packet, LAB_SERVER, LAB_STACK)
                    == Some((9, 1, b"lab".to_vec()))
                {
                    pinged = true;
                }
                if let Some(answer) = dns_answer(&packet, LAB_SERVER, LAB_STACK, 0x5eed) {
                    resolved = Some(answer);
                }
            }
        }
        assert!(pinged, "no echo reply from 10.88.0.1");
        assert_eq!(
            resolved,
            Some(LAB_SERVER),
            "dnsmasq's answer for www.example.test"
        );
    })
    .join()
    .unwrap();
}

/// A UDP/IPv4 packet carrying a DNS query for the A record of `name`.
fn dns_query(src: Ipv4Addr, dst: Ipv4Addr, id: u16, name: &str) -> Vec<u8> {
    let mut dns = Vec::new();
    dns.extend_from_slice(&id.to_be_bytes());
    dns.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, one question
    for label in name.split('.') {
        dns.push(label.len() as u8);
        dns.extend_from_slice(label.as_bytes());
    }
    dns.extend_from_slice(&[0, 0, 1, 0, 1]); // root, type A, class IN
    let udp = UdpRepr {
        src_port: 40053,
        dst_port: 53,
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + dns.len(),
        hop_limit: 64,
    };
    let caps = ChecksumCapabilities::default();
    let mut buffer = vec![0u8; ip.buffer_len() + ip.payload_len];
    let mut packet = Ipv4Packet::new_unchecked(&mut buffer[..]);
    ip.emit(&mut packet, &caps);
    udp.emit(
        &mut UdpPacket::new_unchecked(packet.payload_mut()),
        &IpAddress::Ipv4(src),
        &IpAddress::Ipv4(dst),
        dns.len(),
        |payload| payload.copy_from_slice(&dns),
        &caps,
    );
    buffer
}

/// The address in a one-answer DNS reply with `id` from `from` to `to`, if `packet` is one.
fn dns_answer(packet: &[u8], from: Ipv4Addr, to: Ipv4Addr, id: u16) -> Option<Ipv4Addr> {
    let caps = ChecksumCapabilities::default();
    let ip_packet = Ipv4Packet::new_checked(packet).ok()?;
    let ip = Ipv4Repr::parse(&ip_packet, &caps).ok()?;
    if ip.next_header != IpProtocol::Udp || ip.src_addr != from || ip.dst_addr != to {
        return None;
    }
    let udp_packet = UdpPacket::new_checked(ip_packet.payload()).ok()?;
    let udp = UdpRepr::parse(
        &udp_packet,
        &IpAddress::Ipv4(from),
        &IpAddress::Ipv4(to),
        &caps,
    )
    .ok()?;
    let dns = udp_packet.payload();
    if udp.src_port != 53 || dns.get(..2)? != id.to_be_bytes() {
        return None;
    }
    let rcode = dns.get(3)? & 0x0f;
    let answers = u16::from_be_bytes([*dns.get(6)?, *dns.get(7)?]);
    if rcode != 0 || answers != 1 {
        return None;
    }
    // The only answer is an A record, so the reply ends with its four address bytes.
    let tail: [u8; 4] = dns.get(dns.len().checked_sub(4)?..)?.try_into().ok()?;
    Some(Ipv4Addr::from(tail))
}
