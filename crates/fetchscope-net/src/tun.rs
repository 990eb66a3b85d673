//! [`TunLink`]: a [`Link`] over a real Linux TUN device.
//!
//! The kernel sees a point-to-point IP interface (for example `fsc0` with the address
//! 10.88.1.1/24); everything the kernel routes to that interface is read by us and handed
//! to fetchscope's userspace stack, and every packet the stack sends is written into the
//! kernel as if it had arrived on the interface.
//!
//! Two ways to get a device:
//!
//! - **Attach** to a device that already exists (made with
//!   `ip tuntap add dev NAME mode tun user $USER`, addressed and brought up by an
//!   administrator or by `scripts/netns-lab.sh`). The owner of such a device needs no
//!   privileges to attach; the device must be up.
//! - **Create** it ([`TunOptions::create`]), which needs `CAP_NET_ADMIN`. The kernel side is
//!   then configured here with ioctls (address, netmask, link up; IPv6 off, so the kernel
//!   sends no router solicitations into the trace). A device we create is
//!   *not persistent*: the kernel removes it, with its address and routes, as soon as our
//!   file descriptor is closed — when the [`TunLink`] is dropped, and equally on Ctrl-C,
//!   `kill` or a crash. Nothing is left behind to clean up.

use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::Ipv4Cidr;
use tun_tap::{Iface, Mode};

use crate::tun_writer::{TunWriter, WriteFailure, Written, write_packet};
use crate::{Link, LinkError, WaitOutcome, route};

/// Where the kernel's TUN driver is opened.
const TUN_DEVICE_PATH: &str = "/dev/net/tun";
/// The longest interface name Linux accepts (IFNAMSIZ - 1).
const MAX_NAME_LEN: usize = libc::IFNAMSIZ - 1;
/// How much room the receive buffer takes at a time (about 40 full-size packets).
const RX_CHUNK: usize = 64 * 1024;
/// The smallest MTU IPv4 allows; a smaller reported MTU is treated as this.
const MIN_MTU: usize = 68;
/// The largest IP packet there is; a larger reported MTU is treated as this.
const MAX_MTU: usize = 65_535;
/// How long [`TunLink::open`] waits for the kernel to start the device's queue.
const RUNNING_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// How to get hold of a TUN device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunOptions {
    /// The interface name, e.g. `fsc0` (at most 15 bytes).
    pub name: String,
    /// The kernel side's address and prefix, configured only when we create the device
    /// (e.g. 10.88.1.1/24). The userspace stack takes another address in this prefix.
    pub gateway: Option<Ipv4Cidr>,
    /// Create the device if it does not exist (needs `CAP_NET_ADMIN`). When false, a
    /// missing device is an error.
    pub create: bool,
}

impl TunOptions {
    /// Options to attach to an existing, up device called `name`.
    pub fn attach(name: impl Into<String>) -> Self {
        TunOptions {
            name: name.into(),
            gateway: None,
            create: false,
        }
    }

    /// Options to attach to `name`, or create it with the kernel side at `gateway`.
    pub fn create(name: impl Into<String>, gateway: Option<Ipv4Cidr>) -> Self {
        TunOptions {
            name: name.into(),
            gateway,
            create: true,
        }
    }
}

/// Why a TUN device could not be opened. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum TunError {
    /// The name cannot be an interface name.
    #[error("`{name}` is not a usable interface name: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The kernel's TUN driver is not available.
    #[error(
        "the kernel's TUN driver is not available ({TUN_DEVICE_PATH}: {detail}); load it with \
         `sudo modprobe tun` (in a container, pass the device in, e.g. `--device /dev/net/tun`)"
    )]
    DriverMissing {
        /// What the system said.
        detail: String,
    },
    /// This process may not create or attach to the device.
    #[error(
        "no permission to {action} TUN device {name} ({source}): let this program manage \
         TUN devices with `sudo setcap cap_net_admin+ep {exe}`, create the device once for your \
         user with `sudo ip tuntap add dev {name} mode tun user $USER && sudo ip addr add \
         10.88.1.1/24 dev {name} && sudo ip link set {name} up`, or use the namespace lab \
         (`sudo scripts/netns-lab.sh up`)"
    )]
    Permission {
        /// The device name.
        name: String,
        /// "create" or "attach to".
        action: &'static str,
        /// The path of the running program, for the `setcap` command.
        exe: String,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// `/dev/net/tun` itself may not be opened by this user: its mode, not who owns the
    /// TUN device, is the cause.
    #[error(
        "no permission to {action} TUN device {name} ({source}): {TUN_DEVICE_PATH} is mode \
         {mode:04o} (owner {owner}), so only {openers} can open it, whoever owns the TUN device; \
         make it usable as udev does on most systems with `sudo chmod 0666 {TUN_DEVICE_PATH}`, \
         or run fetchscope with sudo"
    )]
    DeviceNodeMode {
        /// The device name.
        name: String,
        /// "create" or "attach to".
        action: &'static str,
        /// The permission bits of `/dev/net/tun`.
        mode: u32,
        /// Its owner's name.
        owner: String,
        /// Who may open it, e.g. "root" or "root and the group netdev".
        openers: String,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// No device of that name exists and we were not asked to create one.
    #[error(
        "TUN device {name} does not exist; create it with `sudo ip tuntap add dev {name} mode \
         tun user $USER && sudo ip addr add 10.88.1.1/24 dev {name} && sudo ip link set {name} \
         up`, or let fetchscope create it (needs CAP_NET_ADMIN)"
    )]
    NotFound {
        /// The device name.
        name: String,
    },
    /// Another process is attached to the device.
    #[error(
        "TUN device {name} is busy: another process is attached to it (find it with `sudo \
         fuser -v /dev/net/tun`); stop that process or use another device name"
    )]
    Busy {
        /// The device name.
        name: String,
    },
    /// An interface of that name exists but is not a single-queue TUN device.
    #[error(
        "interface {name} exists but is not a single-queue TUN device (it may be a TAP, a \
         multi-queue TUN or another kind of interface); use another name, or remove it with \
         `sudo ip link del {name}`"
    )]
    NotTun {
        /// The device name.
        name: String,
    },
    /// The device exists but is administratively down.
    #[error("TUN device {name} is down; bring it up with `sudo ip link set {name} up`")]
    Down {
        /// The device name.
        name: String,
    },
    /// The gateway address is already assigned to an interface.
    #[error(
        "cannot give TUN device {name} the address {addr}: {holder} already has it; choose \
         another gateway/prefix, or remove it with `sudo ip addr del {addr} dev {holder}`"
    )]
    AddressInUse {
        /// The device name.
        name: String,
        /// The gateway address.
        addr: Ipv4Addr,
        /// The interface that already holds it.
        holder: String,
    },
    /// The kernel would not send the stack's replies back through the device.
    #[error(
        "the kernel cannot send replies for {stack} back through TUN device {name}: {why}. \
         Choose --addr inside a prefix of {name}'s kernel side{kernel_side}, or route it there \
         (`sudo ip route add {stack}/32 dev {name}`)"
    )]
    NoRouteBack {
        /// The device name.
        name: String,
        /// The stack's address.
        stack: Ipv4Addr,
        /// What the routing table says instead, e.g. "it routes 10.77.0.2 out of eth0".
        why: String,
        /// The device's own prefixes for the advice, e.g. " (10.88.1.1/24)", or empty.
        kernel_side: String,
    },
    /// Some other system call failed.
    #[error("{action} for TUN device {name} failed: {source}")]
    Io {
        /// The device name.
        name: String,
        /// What was being done.
        action: &'static str,
        /// What the system said.
        #[source]
        source: io::Error,
    },
}

impl TunError {
    /// True when the failure is a missing privilege (the CLI exits with status 3 and
    /// prints the fix).
    pub fn is_permission(&self) -> bool {
        matches!(
            self,
            TunError::Permission { .. } | TunError::DeviceNodeMode { .. }
        )
    }
}

/// A [`Link`] over a Linux TUN device in IP mode, without packet information headers.
///
/// The file descriptor is non-blocking: [`Link::recv`] never blocks, and [`Link::wait`]
/// sleeps in `ppoll(2)` until a packet arrives or the deadline passes. `ppoll` takes its
/// timeout in nanoseconds, so a sub-millisecond delay from smoltcp is slept as such rather
/// than truncated to zero (which would spin) or rounded to a whole millisecond.
///
/// [`Link::send`] queues the packet for a writer thread (`tun_writer.rs`), which
/// writes the packets in order (the kernel's work for each write happens there, off the
/// packet path); without that thread it writes the packet itself. A full device queue
/// drops the packet, as a NIC would (TCP retransmits); [`TunLink::dropped_sends`] counts
/// those drops.
#[derive(Debug)]
pub struct TunLink {
    /// The writer thread, started by the first send (`None` until then, or when it could
    /// not be started: packets are written here).
    writer: Option<TunWriter>,
    /// The writer thread was tried (it starts once, at the first send).
    writer_tried: bool,
    iface: Arc<Iface>,
    name: String,
    created: bool,
    mtu: usize,
    epoch: std::time::Instant,
    /// Where packets are read: each becomes a shared slice of it, and its space is reused
    /// once the trace is done with them.
    buffer: BytesMut,
    dropped_sends: u64,
    /// The device was seen to be gone: every later call says so at once.
    gone: bool,
}

impl TunLink {
    /// Attaches to (or, with [`TunOptions::create`], creates) the TUN device.
    ///
    /// A device we create gets the gateway address and is brought up; it disappears when
    /// the returned link is dropped or the process ends. An existing device must already be
    /// up; its addresses are left as they are.
    pub fn open(options: TunOptions) -> Result<TunLink, TunError> {
        let name = options.name;
        check_name(&name)?;
        let c_name = CString::new(name.as_str()).map_err(|_| TunError::InvalidName {
            name: name.clone(),
            reason: "it contains a NUL byte",
        })?;
        if !Path::new(TUN_DEVICE_PATH).exists() {
            return Err(TunError::DriverMissing {
                detail: "no such file".into(),
            });
        }
        let control = ControlSocket::open().map_err(io_error(&name, "opening a control socket"))?;

        let exists = interface_exists(&c_name);
        if !exists && !options.create {
            return Err(TunError::NotFound { name });
        }
        if exists {
            let flags = control
                .flags(&name)
                .map_err(io_error(&name, "reading the interface flags"))?;
            if flags & libc::IFF_UP == 0 {
                return Err(TunError::Down { name });
            }
        }

        let iface = Iface::without_packet_info(&name, Mode::Tun)
            .map_err(|e| attach_error(&name, exists, e))?;
        let created = !exists;
        if created {
            configure(&control, &name, options.gateway)?;
        }
        sync_link_state(&control, &name)
            .map_err(io_error(&name, "waiting for the device to run"))?;
        iface
            .set_non_blocking()
            .map_err(io_error(&name, "making the device non-blocking"))?;
        let mtu = control
            .mtu(&name)
            .map_err(io_error(&name, "reading the MTU"))?;
        log::debug!("TUN device {name}: attached (created: {created}, MTU {mtu})");
        let iface = Arc::new(iface);
        Ok(TunLink {
            writer: None,
            writer_tried: false,
            iface,
            name,
            created,
            mtu,
            epoch: std::time::Instant::now(),
            buffer: BytesMut::new(),
            dropped_sends: 0,
            gone: false,
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True when this link created the device (it vanishes when the link is dropped).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Packets dropped by [`Link::send`] because the device's queue was full.
    pub fn dropped_sends(&self) -> u64 {
        self.dropped_sends + self.writer.as_ref().map_or(0, TunWriter::dropped)
    }

    /// The IPv4 addresses, with their prefixes, of the device's kernel side.
    pub fn kernel_addresses(&self) -> io::Result<Vec<Ipv4Cidr>> {
        interface_addresses(&self.name)
    }

    /// Checks that the kernel routes packets for the stack's address `stack` back through
    /// this device, as its main routing table (`/proc/thread-self/net/route`) says; otherwise no reply
    /// would ever reach the stack and the fetch would only time out. Returns `Ok` when the
    /// route is there or when the table cannot be read (nothing to tell then).
    pub fn check_route_back(&self, stack: Ipv4Addr) -> Result<(), TunError> {
        let Ok(routes) = route::main_table(stack.into()) else {
            return Ok(());
        };
        let why = match route::best_route(&routes, stack.into()) {
            Some(r) if r.iface == self.name => return Ok(()),
            Some(r) => format!("it routes {stack} out of {}", r.iface),
            None => format!("it has no route to {stack}"),
        };
        let kernel_side = match self.kernel_addresses() {
            Ok(addrs) if !addrs.is_empty() => format!(
                " ({})",
                addrs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => String::new(),
        };
        Err(TunError::NoRouteBack {
            name: self.name.clone(),
            stack,
            why,
            kernel_side,
        })
    }

    fn context(&self, doing: &str) -> String {
        format!("{doing} TUN device {}", self.name)
    }

    /// The error a failed write becomes (the writer thread's or this link's own).
    fn write_error(&mut self, failure: WriteFailure) -> LinkError {
        match failure {
            WriteFailure::Removed => self.gone(),
            WriteFailure::Down(source) => self.down(source),
            WriteFailure::Other(source) => LinkError::Io {
                context: self.context("writing to"),
                source,
            },
        }
    }

    fn down(&self, source: io::Error) -> LinkError {
        LinkError::Io {
            context: format!(
                "writing to TUN device {} (is it down? `sudo ip link set {} up`)",
                self.name, self.name
            ),
            source,
        }
    }

    /// The device is gone: remembered, and said.
    fn gone(&mut self) -> LinkError {
        self.gone = true;
        self.removed()
    }

    fn removed(&self) -> LinkError {
        LinkError::Broken(format!(
            "TUN device {} was removed while in use (someone ran `ip link del {}`?)",
            self.name, self.name
        ))
    }
}

impl AsRawFd for TunLink {
    fn as_raw_fd(&self) -> RawFd {
        self.iface.as_raw_fd()
    }
}

impl Link for TunLink {
    fn now(&self) -> Instant {
        let micros = self.epoch.elapsed().as_micros();
        Instant::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
    }

    fn send(&mut self, packet: &[u8]) -> Result<(), LinkError> {
        if self.gone {
            return Err(self.removed());
        }
        if !self.writer_tried {
            // Started by the first packet, not when the device is opened: the fetch gives
            // up its privileges in between, and capabilities are per thread (a thread
            // made before the drop would keep CAP_NET_ADMIN).
            self.writer_tried = true;
            self.writer = TunWriter::start(Arc::clone(&self.iface), &self.name)
                .inspect_err(|e| log::debug!("TUN device {}: no writer thread ({e})", self.name))
                .ok();
        }
        if let Some(writer) = &mut self.writer {
            return match writer.send(packet) {
                Ok(()) => Ok(()),
                Err(f) => Err(self.write_error(f)),
            };
        }
        match write_packet(&self.iface, packet) {
            Ok(Written::Sent) => Ok(()),
            Ok(Written::Dropped) => {
                self.dropped_sends = self.dropped_sends.saturating_add(1);
                Ok(())
            }
            Err(f) => Err(self.write_error(f)),
        }
    }

    fn recv(&mut self) -> Result<Option<Bytes>, LinkError> {
        if let Some(f) = self.writer.as_ref().and_then(TunWriter::take_error) {
            return Err(self.write_error(f));
        }
        // Room for one packet of the largest size the device carries.
        let room = self.mtu.max(MIN_MTU);
        if self.buffer.capacity() < room {
            // A new chunk, or the old one again once every packet read into it is gone.
            self.buffer.reserve(RX_CHUNK.max(room));
        }
        self.buffer.resize(room, 0);
        let read = self.iface.recv(&mut self.buffer);
        if let Ok(len) = read {
            self.buffer.truncate(len.min(room));
        }
        match read {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(self.buffer.split().freeze())),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(None)
            }
            Err(e) if e.raw_os_error() == Some(libc::EBADFD) => Err(self.gone()),
            Err(source) => Err(LinkError::Io {
                context: self.context("reading from"),
                source,
            }),
        }
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Result<WaitOutcome, LinkError> {
        loop {
            let timeout = match deadline {
                None => None,
                Some(deadline) => {
                    let now = self.now();
                    Some(if deadline > now {
                        deadline - now
                    } else {
                        Duration::ZERO
                    })
                }
            };
            match poll_readable(self.iface.as_raw_fd(), timeout) {
                Ok(Readiness::Readable) => return Ok(WaitOutcome::Ready),
                Ok(Readiness::Interrupted) => return Ok(WaitOutcome::Ready),
                Ok(Readiness::Invalid) => return Err(self.gone()),
                Ok(Readiness::TimedOut) => {
                    // The kernel's timer and our clock agree to the microsecond; should the
                    // clock still be short of the deadline, sleep the rest rather than spin.
                    if deadline.is_none_or(|deadline| self.now() >= deadline) {
                        return Ok(WaitOutcome::Deadline);
                    }
                }
                Err(source) => {
                    return Err(LinkError::Io {
                        context: self.context("waiting for"),
                        source,
                    });
                }
            }
        }
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn describe(&self) -> String {
        format!("TUN device {}", self.name)
    }

    fn readiness_fd(&self) -> Option<RawFd> {
        Some(self.as_raw_fd())
    }
}

/// Rejects names the kernel would refuse, truncate or treat as a template.
fn check_name(name: &str) -> Result<(), TunError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("`.` and `..` are reserved")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c == '%' || c.is_whitespace() || c.is_control())
    {
        Some("it contains `/`, `:`, `%`, white space or a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(TunError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// A `map_err` adapter: a failed system call while `action` was being done to `name`.
fn io_error(name: &str, action: &'static str) -> impl FnOnce(io::Error) -> TunError {
    let name = name.to_owned();
    move |source| TunError::Io {
        name,
        action,
        source,
    }
}

/// Turns the error of opening `/dev/net/tun` plus `TUNSETIFF` into advice, looking at
/// `/dev/net/tun`'s mode when opening it was refused (EACCES: TUNSETIFF refuses with
/// EPERM, after the open succeeded).
fn attach_error(name: &str, existed: bool, e: io::Error) -> TunError {
    let blocked = match e.raw_os_error() {
        Some(libc::EACCES) => node_blocks_us(),
        _ => None,
    };
    attach_error_given(name, existed, e, blocked)
}

/// [`attach_error`] with the verdict on `/dev/net/tun`'s mode already made.
fn attach_error_given(
    name: &str,
    existed: bool,
    e: io::Error,
    blocked: Option<NodeAdvice>,
) -> TunError {
    let name = name.to_owned();
    let action = if existed { "attach to" } else { "create" };
    match e.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => match blocked {
            Some(advice) => TunError::DeviceNodeMode {
                name,
                action,
                mode: advice.mode,
                owner: advice.owner,
                openers: advice.openers,
                source: e,
            },
            None => TunError::Permission {
                name,
                action,
                exe: std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| "/path/to/fetchscope".into()),
                source: e,
            },
        },
        Some(libc::ENOENT | libc::ENODEV | libc::ENXIO) => TunError::DriverMissing {
            detail: e.to_string(),
        },
        Some(libc::EBUSY) => TunError::Busy { name },
        Some(libc::EINVAL) if existed => TunError::NotTun { name },
        _ => TunError::Io {
            name,
            action: "opening /dev/net/tun and attaching (TUNSETIFF)",
            source: e,
        },
    }
}

/// The owner, group and permission bits of a device node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NodeAccess {
    /// Permission bits (`st_mode & 0o7777`).
    mode: u32,
    /// Owner's uid.
    uid: u32,
    /// Group's gid.
    gid: u32,
}

/// What to tell a user whom `/dev/net/tun`'s mode keeps out.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeAdvice {
    mode: u32,
    owner: String,
    openers: String,
}

/// Whether `node`'s mode stops a process with effective uid `euid` and groups `groups`
/// (effective gid included) from opening it for reading and writing, as `/dev/net/tun`
/// must be. Root is never stopped by a mode.
fn node_mode_blocks(node: NodeAccess, euid: u32, groups: &[u32]) -> bool {
    if euid == 0 {
        return false;
    }
    let bits = if euid == node.uid {
        node.mode >> 6
    } else if groups.contains(&node.gid) {
        node.mode >> 3
    } else {
        node.mode
    } & 0o7;
    bits & 0o6 != 0o6
}

/// The advice for `node` when its mode stops this process (see [`node_mode_blocks`]);
/// `names` turns a uid and a gid into the user's and the group's names.
fn node_advice(
    node: NodeAccess,
    euid: u32,
    groups: &[u32],
    names: impl Fn(u32, u32) -> (String, String),
) -> Option<NodeAdvice> {
    if !node_mode_blocks(node, euid, groups) {
        return None;
    }
    let (owner, group) = names(node.uid, node.gid);
    let owner_may = node.mode & 0o600 == 0o600;
    let group_may = node.mode & 0o060 == 0o060;
    let mut openers = vec!["root".to_string()];
    if owner_may && node.uid != 0 {
        openers.push(owner.clone());
    }
    if group_may {
        openers.push(format!("the group {group}"));
    }
    let openers = match openers.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => "root".to_string(),
    };
    Some(NodeAdvice {
        mode: node.mode,
        owner,
        openers,
    })
}

/// The advice when `/dev/net/tun`'s mode keeps this process out; `None` when the mode lets
/// it in (the device's owner or a privilege is the problem then) or cannot be read.
fn node_blocks_us() -> Option<NodeAdvice> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(TUN_DEVICE_PATH).ok()?;
    let node = NodeAccess {
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    };
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let mut groups = vec![egid];
    groups.extend(supplementary_groups());
    node_advice(node, euid, &groups, |uid, gid| {
        (
            id_name("/etc/passwd", uid).unwrap_or_else(|| format!("uid {uid}")),
            id_name("/etc/group", gid).unwrap_or_else(|| format!("gid {gid}")),
        )
    })
}

/// This process's supplementary groups (empty when they cannot be read).
fn supplementary_groups() -> Vec<u32> {
    // SAFETY: with a size of 0, getgroups only returns the number of groups.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let Ok(len) = usize::try_from(n) else {
        return Vec::new();
    };
    let mut groups: Vec<libc::gid_t> = vec![0; len];
    // SAFETY: `groups` has room for `n` entries, as the call is told.
    let got = unsafe { libc::getgroups(n, groups.as_mut_ptr()) };
    groups.truncate(usize::try_from(got).unwrap_or(0));
    groups
}

/// The name of `id` in a passwd- or group-style file (`name:x:id:...`); root for 0.
fn id_name(file: &str, id: u32) -> Option<String> {
    if id == 0 {
        return Some("root".into());
    }
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let found = f.nth(1)?.parse::<u32>().ok()? == id;
        found.then(|| name.to_string())
    })
}

/// Gives a freshly created device its gateway address and brings it up.
fn configure(
    control: &ControlSocket,
    name: &str,
    gateway: Option<Ipv4Cidr>,
) -> Result<(), TunError> {
    if let Some(gateway) = gateway {
        let addr = gateway.address();
        if let Some(holder) = address_holder(addr).map_err(io_error(name, "listing addresses"))? {
            return Err(TunError::AddressInUse {
                name: name.to_owned(),
                addr,
                holder,
            });
        }
        control
            .set_address(name, addr)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EEXIST | libc::EADDRINUSE) => TunError::AddressInUse {
                    name: name.to_owned(),
                    addr,
                    holder: name.to_owned(),
                },
                _ => io_error(name, "setting the address (SIOCSIFADDR)")(e),
            })?;
        control
            .set_netmask(name, gateway.netmask())
            .map_err(io_error(name, "setting the netmask (SIOCSIFNETMASK)"))?;
    }
    quiet_ipv6(name);
    let flags = control
        .flags(name)
        .map_err(io_error(name, "reading the interface flags (SIOCGIFFLAGS)"))?;
    control
        .set_flags(name, flags | libc::IFF_UP)
        .map_err(io_error(name, "bringing the link up (SIOCSIFFLAGS)"))?;
    Ok(())
}

/// Turns IPv6 off on a device we created, before it goes up: the lab is IPv4, and the
/// kernel would otherwise send router solicitations and MLD reports into every trace.
/// `/proc/sys/net` shows the calling thread's network namespace, the one the device is
/// in. Best effort: without IPv6 support, or with a read-only /proc, there is no noise
/// to prevent or nothing to be done.
fn quiet_ipv6(name: &str) {
    let knob = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
    if let Err(e) = std::fs::write(&knob, "1") {
        log::debug!("TUN device {name}: could not write {knob}: {e}");
    }
}

/// Makes sure the kernel has started the device's transmit queue.
///
/// Attaching turns the device's carrier on, but the kernel applies that change (marks the
/// device running and starts its queue) a moment later, in its link-watch work; a packet
/// routed to the device before then is dropped (say, the first DNS answer of a fetch,
/// costing a retry). Asking for the link state with ethtool (ETHTOOL_GLINK, allowed to
/// anyone) makes the kernel apply a pending change for the device first, synchronously.
/// Should that request fail, poll for IFF_RUNNING every millisecond instead, for at most
/// [`RUNNING_WAIT_LIMIT`].
fn sync_link_state(control: &ControlSocket, name: &str) -> io::Result<()> {
    match control.link_detected(name) {
        Ok(true) => return Ok(()),
        Ok(false) => log::debug!("TUN device {name}: no carrier right after attaching"),
        Err(e) => log::debug!("TUN device {name}: ethtool GLINK failed ({e}); polling"),
    }
    let start = std::time::Instant::now();
    while control.flags(name)? & libc::IFF_RUNNING == 0 {
        if start.elapsed() >= RUNNING_WAIT_LIMIT {
            log::warn!("TUN device {name}: still not running after {RUNNING_WAIT_LIMIT:?}");
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(())
}

/// True when an interface called `name` exists in this thread's network namespace.
fn interface_exists(name: &CString) -> bool {
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::if_nametoindex(name.as_ptr()) != 0 }
}

/// The IPv4 addresses (with prefix lengths) of the interface `name`.
fn interface_addresses(name: &str) -> io::Result<Vec<Ipv4Cidr>> {
    let mut found = Vec::new();
    for_each_ipv4_address(|iface, addr, mask| {
        if iface == name {
            let prefix = u32::from(mask).leading_ones() as u8;
            found.push(Ipv4Cidr::new(addr, prefix));
        }
        false
    })?;
    Ok(found)
}

/// The interface that holds the IPv4 address `addr`, if any.
fn address_holder(addr: Ipv4Addr) -> io::Result<Option<String>> {
    let mut holder = None;
    for_each_ipv4_address(|iface, a, _| {
        if a == addr {
            holder = Some(iface.to_owned());
        }
        holder.is_some()
    })?;
    Ok(holder)
}

/// Calls `visit(interface, address, netmask)` for each IPv4 address of this namespace's
/// interfaces (getifaddrs), until it returns true.
fn for_each_ipv4_address(
    mut visit: impl FnMut(&str, Ipv4Addr, Ipv4Addr) -> bool,
) -> io::Result<()> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `list` is a valid out-pointer; on success it is freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned, not yet freed.
        let entry = unsafe { &*cursor };
        cursor = entry.ifa_next;
        if entry.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: `ifa_addr` is non-null and points at a sockaddr of at least its family's size.
        let family = unsafe { (*entry.ifa_addr).sa_family };
        if i32::from(family) != libc::AF_INET {
            continue;
        }
        // SAFETY: an AF_INET address is a sockaddr_in; read it without assuming alignment.
        let sin = unsafe { std::ptr::read_unaligned(entry.ifa_addr.cast::<libc::sockaddr_in>()) };
        let addr = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        let mask = if entry.ifa_netmask.is_null() {
            Ipv4Addr::BROADCAST
        } else {
            // SAFETY: a non-null netmask of an AF_INET entry is a sockaddr_in as well.
            let m =
                unsafe { std::ptr::read_unaligned(entry.ifa_netmask.cast::<libc::sockaddr_in>()) };
            Ipv4Addr::from(u32::from_be(m.sin_addr.s_addr))
        };
        // SAFETY: `ifa_name` is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(entry.ifa_name) };
        if visit(&name.to_string_lossy(), addr, mask) {
            break;
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(list) };
    Ok(())
}

/// An `AF_INET` datagram socket used only for interface ioctls.
struct ControlSocket(OwnedFd);

impl ControlSocket {
    fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(ControlSocket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// An `ifreq` naming `name` (checked by `check_name` to fit) with a zeroed payload.
    fn request(name: &str) -> libc::ifreq {
        // SAFETY: `ifreq` is plain old data; all-zero is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (slot, byte) in req.ifr_name.iter_mut().zip(name.bytes().take(MAX_NAME_LEN)) {
            *slot = byte as libc::c_char;
        }
        req
    }

    fn ioctl(&self, request: libc::Ioctl, req: &mut libc::ifreq) -> io::Result<()> {
        // SAFETY: every request used here reads or writes one `ifreq`, which `req` is.
        let rc = unsafe { libc::ioctl(self.0.as_raw_fd(), request, req as *mut libc::ifreq) };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn flags(&self, name: &str) -> io::Result<libc::c_int> {
        let mut req = Self::request(name);
        self.ioctl(libc::SIOCGIFFLAGS, &mut req)?;
        // SAFETY: SIOCGIFFLAGS filled in the flags member.
        let flags = unsafe { req.ifr_ifru.ifru_flags };
        // The kernel's flags are an unsigned short; keep the bit pattern.
        Ok(libc::c_int::from(flags as u16))
    }

    fn set_flags(&self, name: &str, flags: libc::c_int) -> io::Result<()> {
        let mut req = Self::request(name);
        // Only the low 16 bits exist in this ioctl; truncation is the ABI.
        req.ifr_ifru.ifru_flags = flags as u16 as libc::c_short;
        self.ioctl(libc::SIOCSIFFLAGS, &mut req)
    }

    fn set_address(&self, name: &str, addr: Ipv4Addr) -> io::Result<()> {
        let mut req = Self::request(name);
        req.ifr_ifru.ifru_addr = sockaddr_of(addr);
        self.ioctl(libc::SIOCSIFADDR, &mut req)
    }

    fn set_netmask(&self, name: &str, mask: Ipv4Addr) -> io::Result<()> {
        let mut req = Self::request(name);
        req.ifr_ifru.ifru_netmask = sockaddr_of(mask);
        self.ioctl(libc::SIOCSIFNETMASK, &mut req)
    }

    /// Whether the device has a carrier, by ethtool's ETHTOOL_GLINK. The kernel applies
    /// any pending link change of the device before it answers.
    fn link_detected(&self, name: &str) -> io::Result<bool> {
        const ETHTOOL_GLINK: u32 = 0x0a;
        // struct ethtool_value { u32 cmd; u32 data; }
        let mut value = [ETHTOOL_GLINK, 0u32];
        let mut req = Self::request(name);
        req.ifr_ifru.ifru_data = value.as_mut_ptr().cast::<libc::c_char>();
        self.ioctl(libc::SIOCETHTOOL, &mut req)?;
        Ok(value[1] != 0)
    }

    fn mtu(&self, name: &str) -> io::Result<usize> {
        let mut req = Self::request(name);
        self.ioctl(libc::SIOCGIFMTU, &mut req)?;
        // SAFETY: SIOCGIFMTU filled in the mtu member.
        let mtu = unsafe { req.ifr_ifru.ifru_mtu };
        Ok(usize::try_from(mtu).unwrap_or(0).clamp(MIN_MTU, MAX_MTU))
    }
}

/// `addr` as the `sockaddr` the interface ioctls take (a `sockaddr_in` in disguise).
fn sockaddr_of(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: both are 16-byte plain old data structs; every bit pattern is valid.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

/// What `ppoll` saw.
enum Readiness {
    /// Readable, or an error condition the next read reports.
    Readable,
    /// The timeout passed.
    TimedOut,
    /// A signal arrived.
    Interrupted,
    /// The descriptor is no longer valid.
    Invalid,
}

/// Sleeps in `ppoll(2)` until `fd` is readable or `timeout` passes (`None`: forever).
fn poll_readable(fd: RawFd, timeout: Option<Duration>) -> io::Result<Readiness> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let spec = timeout.map(|t| {
        let micros = t.total_micros();
        libc::timespec {
            tv_sec: libc::time_t::try_from(micros / 1_000_000).unwrap_or(libc::time_t::MAX),
            // Below 10^9, so it fits every c_long.
            tv_nsec: ((micros % 1_000_000) * 1_000) as libc::c_long,
        }
    });
    let spec_ptr = spec
        .as_ref()
        .map_or(std::ptr::null(), |s| s as *const libc::timespec);
    // SAFETY: one valid pollfd; `spec_ptr` is null or points at `spec`, alive for the call;
    // a null signal mask keeps the current one.
    let rc = unsafe { libc::ppoll(&mut pfd, 1, spec_ptr, std::ptr::null()) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(Readiness::Interrupted)
        } else {
            Err(e)
        };
    }
    if rc == 0 {
        return Ok(Readiness::TimedOut);
    }
    if pfd.revents & libc::POLLNVAL != 0 {
        return Ok(Readiness::Invalid);
    }
    Ok(Readiness::Readable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_kernel_would_mangle_are_rejected() {
        for bad in [
            "",
            "a-very-long-name0",
            "..",
            "fsc/0",
            "fsc 0",
            "fsc%d",
            "fsc:1",
        ] {
            assert!(
                matches!(check_name(bad), Err(TunError::InvalidName { .. })),
                "{bad:?} accepted"
            );
        }
        for good in ["fsc0", "tun0", "a", "fifteen-bytes-x"] {
            assert!(check_name(good).is_ok(), "{good:?} rejected");
        }
    }

    #[test]
    fn errors_map_to_advice() {
        // `None`: /dev/net/tun's mode lets the user in, so a privilege or the owner decides.
        let e = attach_error_given(
            "fsc0",
            false,
            io::Error::from_raw_os_error(libc::EPERM),
            None,
        );
        assert!(e.is_permission());
        let text = e.to_string();
        assert!(text.contains("setcap cap_net_admin+ep"), "{text}");
        assert!(
            text.contains("ip tuntap add dev fsc0 mode tun user $USER"),
            "{text}"
        );
        assert!(text.contains("to create TUN device fsc0"), "{text}");
        let e = attach_error_given(
            "fsc0",
            true,
            io::Error::from_raw_os_error(libc::EACCES),
            None,
        );
        assert!(e.to_string().contains("attach to TUN device fsc0"));
        assert!(matches!(
            attach_error("fsc0", true, io::Error::from_raw_os_error(libc::EBUSY)),
            TunError::Busy { .. }
        ));
        assert!(matches!(
            attach_error("fsc0", true, io::Error::from_raw_os_error(libc::EINVAL)),
            TunError::NotTun { .. }
        ));
        assert!(matches!(
            attach_error("fsc0", false, io::Error::from_raw_os_error(libc::ENODEV)),
            TunError::DriverMissing { .. }
        ));
        let down = TunError::Down {
            name: "fsc0".into(),
        };
        assert!(!down.is_permission());
        assert!(down.to_string().contains("ip link set fsc0 up"));
    }

    fn names(uid: u32, gid: u32) -> (String, String) {
        let n = |id: u32, what: &str| match id {
            0 => "root".to_string(),
            _ => format!("{what}{id}"),
        };
        (n(uid, "user"), n(gid, "group"))
    }

    const NOBODY: u32 = 65_534;
    const ROOT_0600: NodeAccess = NodeAccess {
        mode: 0o600,
        uid: 0,
        gid: 0,
    };

    #[test]
    fn the_mode_of_dev_net_tun_is_named_only_when_it_keeps_the_user_out() {
        // 0600 root:root keeps every user but root out, whoever owns the TUN device.
        let advice = node_advice(ROOT_0600, NOBODY, &[NOBODY], names).expect("blocked");
        assert_eq!(advice.mode, 0o600);
        assert_eq!(advice.owner, "root");
        assert_eq!(advice.openers, "root");
        // Root is never kept out by a mode.
        assert_eq!(node_advice(ROOT_0600, 0, &[0], names), None);
        // The usual 0666 lets everyone open it: then ownership or a privilege decides.
        let usual = NodeAccess {
            mode: 0o666,
            ..ROOT_0600
        };
        assert_eq!(node_advice(usual, NOBODY, &[NOBODY], names), None);
        // 0660 root:netdev: members of the group get in, others are told who may.
        let group = NodeAccess {
            mode: 0o660,
            uid: 0,
            gid: 108,
        };
        assert_eq!(node_advice(group, 1000, &[1000, 108], names), None);
        let advice = node_advice(group, 1000, &[1000], names).expect("blocked");
        assert_eq!(advice.openers, "root and the group group108");
        // A node owned by the user with the owner's bits set lets the user in.
        let mine = NodeAccess {
            mode: 0o600,
            uid: 1000,
            gid: 1000,
        };
        assert_eq!(node_advice(mine, 1000, &[1000], names), None);
        // Read without write is not enough: the device is opened read-write.
        let read_only = NodeAccess {
            mode: 0o644,
            ..ROOT_0600
        };
        assert!(node_mode_blocks(read_only, NOBODY, &[NOBODY]));
    }

    #[test]
    fn a_mode_that_keeps_the_user_out_is_the_advice() {
        let blocked = node_advice(ROOT_0600, NOBODY, &[NOBODY], names);
        let e = attach_error_given(
            "fsc0",
            true,
            io::Error::from_raw_os_error(libc::EACCES),
            blocked,
        );
        assert!(e.is_permission());
        let text = e.to_string();
        assert!(
            text.contains("no permission to attach to TUN device fsc0"),
            "{text}"
        );
        assert!(
            text.contains("/dev/net/tun is mode 0600 (owner root), so only root can open it, whoever owns the TUN device"),
            "{text}"
        );
        assert!(
            text.starts_with("no permission to "),
            "names the phase: {text}"
        );
        assert!(text.contains("`sudo chmod 0666 /dev/net/tun`"), "{text}");
        assert!(text.contains("run fetchscope with sudo"), "{text}");
        // The advice that does not fit (setcap does not open a 0600 node) is not given.
        assert!(!text.contains("setcap"), "{text}");
        assert!(!text.contains("tuntap add"), "{text}");
        // One sentence: no full stop before the end.
        assert!(!text.trim_end_matches('.').contains(". "), "{text}");
        // Without a blocking mode the old advice stands.
        let e = attach_error_given(
            "fsc0",
            true,
            io::Error::from_raw_os_error(libc::EPERM),
            None,
        );
        assert!(matches!(e, TunError::Permission { .. }), "{e:?}");
    }

    #[test]
    fn sockaddr_carries_the_address_in_network_order() {
        let sa = sockaddr_of(Ipv4Addr::new(10, 88, 1, 1));
        assert_eq!(i32::from(sa.sa_family), libc::AF_INET);
        // sa_data: 2 bytes of port, then the address.
        let bytes: Vec<u8> = sa.sa_data.iter().map(|&b| b as u8).collect();
        assert_eq!(&bytes[..6], &[0, 0, 10, 88, 1, 1]);
    }

    #[test]
    fn no_route_back_names_the_fix() {
        let e = TunError::NoRouteBack {
            name: "fsc0".into(),
            stack: Ipv4Addr::new(10, 77, 0, 2),
            why: "it routes 10.77.0.2 out of eth0".into(),
            kernel_side: " (10.88.1.1/24)".into(),
        };
        let text = e.to_string();
        assert!(
            text.contains("10.77.0.2 back through TUN device fsc0"),
            "{text}"
        );
        assert!(text.contains("(10.88.1.1/24)"), "{text}");
        assert!(
            text.contains("ip route add 10.77.0.2/32 dev fsc0"),
            "{text}"
        );
        assert!(!e.is_permission());
    }

    /// A device we create in a fresh network namespace: its kernel side is the gateway
    /// address with the prefix, the kernel routes that prefix back through it, and
    /// anything else has no route (there is no default route in a fresh namespace).
    #[test]
    fn created_device_routes_its_prefix_back_and_nothing_else() {
        if !Path::new(TUN_DEVICE_PATH).exists() {
            return prerequisite_missing("/dev/net/tun does not exist (modprobe tun)");
        }
        let outcome = std::thread::spawn(|| {
            // SAFETY: unshare only changes this thread's namespaces.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            let gateway = Ipv4Cidr::new(Ipv4Addr::new(10, 99, 0, 1), 24);
            let link = TunLink::open(TunOptions::create("fsctr0", Some(gateway)))
                .expect("create a TUN device in a private namespace");
            assert_eq!(link.kernel_addresses().expect("addresses"), vec![gateway]);
            link.check_route_back(Ipv4Addr::new(10, 99, 0, 2))
                .expect("the device's own prefix is routed back");
            let e = link
                .check_route_back(Ipv4Addr::new(10, 77, 0, 2))
                .expect_err("no route to 10.77.0.2");
            let text = e.to_string();
            assert!(text.contains("it has no route to 10.77.0.2"), "{text}");
            assert!(text.contains("(10.99.0.1/24)"), "{text}");
            Ok(())
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
        if let Err(e) = outcome {
            prerequisite_missing(&format!(
                "cannot make a network namespace ({e}); run as root"
            ));
        }
    }

    /// Fails under `CI=true`, otherwise says why the test does nothing.
    fn prerequisite_missing(why: &str) {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("prerequisite missing under CI=true: {why}");
        }
        eprintln!("skipping: {why}");
    }

    #[test]
    fn loopback_address_holder_is_found() {
        // Every namespace with a configured loopback has 127.0.0.1 on `lo`; a namespace
        // without it (fresh unshare) simply has no holder.
        let holder = address_holder(Ipv4Addr::LOCALHOST).unwrap();
        assert!(holder.is_none() || holder.as_deref() == Some("lo"));
        assert_eq!(address_holder(Ipv4Addr::new(192, 0, 2, 254)).unwrap(), None);
        if holder.is_some() {
            assert!(
                interface_addresses("lo")
                    .unwrap()
                    .contains(&Ipv4Cidr::new(Ipv4Addr::LOCALHOST, 8))
            );
        }
    }
}
