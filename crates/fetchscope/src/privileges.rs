//! Giving up root once the TUN device is open, before the first packet is parsed.
//!
//! fetchscope needs privileges for one thing only: opening (or creating and configuring)
//! the TUN device. Reading and writing the open device's file descriptor needs none, and
//! everything after that parses bytes that come from the network. So right after the
//! device is set up, and before any output file is created, [`drop_privileges`] gives
//! them all up, for good:
//!
//! - started through `sudo` (`SUDO_UID`/`SUDO_GID` set): the process becomes the invoking
//!   user: supplementary groups cleared, then real, effective and saved group and user ids
//!   set. Output files (`-o`, `--pcap`, `--har`, ...) are created afterwards and so belong
//!   to that user, in directories that user may write;
//! - started as root otherwise (no user to return to): the user id stays 0, but every
//!   capability is dropped (effective, permitted, inheritable, ambient and the bounding
//!   set), so root without capabilities cannot override file permissions, configure the
//!   network or regain anything by running a program;
//! - started as a user with capabilities (file capabilities such as `cap_net_admin+ep`, or
//!   ambient ones): the capabilities are dropped the same way.
//!
//! In every case `PR_SET_NO_NEW_PRIVS` is set, and the drop is verified: a process that
//! was root must fail to become root again. A process without privileges is left alone.
//!
//! [`Observation::read`] reads what the kernel reports in `/proc/self/status` (`Uid`,
//! `Gid`, `Groups`, `CapEff`, `CapPrm`, `NoNewPrivs`), so the result is an observation,
//! not a promise.

use std::io;

/// Why privileges could not be dropped (the fetch does not start then).
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// `SUDO_UID` or `SUDO_GID` is not a user or group id.
    #[error("{name}={value} is not a numeric id, so fetchscope cannot return to the invoking user")]
    BadSudoId {
        /// The variable's name.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// A system call that gives up privileges failed.
    #[error("could not drop privileges: {call} failed: {source}")]
    Syscall {
        /// The call, e.g. `setresuid(1000)`.
        call: String,
        /// The error.
        source: io::Error,
    },
    /// The process could become root again after the drop.
    #[error("privileges were not dropped: the process could still become root")]
    StillPrivileged,
}

/// How privileges were given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    /// The process was not privileged: nothing to drop.
    NotPrivileged,
    /// Root became the invoking user (from `SUDO_UID`/`SUDO_GID`).
    ToUser {
        /// The user id now.
        uid: u32,
        /// The group id now.
        gid: u32,
    },
    /// The user id stayed; every capability was dropped.
    Capabilities {
        /// The user id (0 when started as root without sudo).
        uid: u32,
    },
}

impl Dropped {
    /// True when privileges were held and have been given up.
    pub fn dropped(&self) -> bool {
        !matches!(self, Dropped::NotPrivileged)
    }
}

/// The process's identity and capabilities as `/proc/self/status` (and each thread's
/// status) reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// Real, effective, saved and filesystem user ids.
    pub uids: [u32; 4],
    /// Real, effective, saved and filesystem group ids.
    pub gids: [u32; 4],
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Effective capabilities (bit mask).
    pub cap_eff: u64,
    /// Permitted capabilities (bit mask).
    pub cap_prm: u64,
    /// Bounding set (bit mask).
    pub cap_bnd: u64,
    /// Whether `PR_SET_NO_NEW_PRIVS` is set.
    pub no_new_privs: bool,
}

impl Observation {
    /// Reads `/proc/self/status`, and every thread's `/proc/self/task/TID/status`:
    /// capabilities, `no_new_privs` and the bounding set are per thread, so a thread made
    /// before the drop could keep what the process gave up. Capabilities are what any
    /// thread has; `no_new_privs` holds only if every thread has it; a thread whose ids
    /// differ from the process's is reported with its own.
    pub fn read() -> io::Result<Self> {
        let mut o = Self::parse(&std::fs::read_to_string("/proc/self/status")?);
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Ok(o);
        };
        for task in tasks.flatten() {
            let Ok(text) = std::fs::read_to_string(task.path().join("status")) else {
                continue; // the thread ended meanwhile
            };
            let t = Self::parse(&text);
            o.cap_eff |= t.cap_eff;
            o.cap_prm |= t.cap_prm;
            o.cap_bnd |= t.cap_bnd;
            o.no_new_privs &= t.no_new_privs;
            if (t.uids, t.gids) != (o.uids, o.gids) {
                (o.uids, o.gids) = (t.uids, t.gids);
            }
        }
        Ok(o)
    }

    /// Parses the text of a `/proc/PID/status` file (missing fields stay zero).
    pub fn parse(status: &str) -> Self {
        let mut o = Observation::default();
        for line in status.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            let ids = || -> Vec<u32> {
                value
                    .split_ascii_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect()
            };
            let mask = || u64::from_str_radix(value, 16).unwrap_or(0);
            match key {
                "Uid" => fill(&mut o.uids, &ids()),
                "Gid" => fill(&mut o.gids, &ids()),
                "Groups" => o.groups = ids(),
                "CapEff" => o.cap_eff = mask(),
                "CapPrm" => o.cap_prm = mask(),
                "CapBnd" => o.cap_bnd = mask(),
                "NoNewPrivs" => o.no_new_privs = value == "1",
                _ => {}
            }
        }
        o
    }

    /// One sentence: "uid 65534 gid 65534, no supplementary groups, capabilities: none,
    /// no_new_privs set".
    pub fn sentence(&self) -> String {
        let ids = |v: &[u32; 4]| {
            if v.iter().all(|x| *x == v[0]) {
                v[0].to_string()
            } else {
                format!("{}/{}/{}/{}", v[0], v[1], v[2], v[3])
            }
        };
        let groups = if self.groups.is_empty() {
            "no supplementary groups".to_string()
        } else {
            format!(
                "groups {}",
                self.groups
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        let caps = if self.cap_eff == 0 && self.cap_prm == 0 {
            "none".to_string()
        } else {
            format!(
                "effective {:016x}, permitted {:016x}",
                self.cap_eff, self.cap_prm
            )
        };
        format!(
            "uid {} gid {}, {groups}, capabilities: {caps}, bounding set {}, no_new_privs {}",
            ids(&self.uids),
            ids(&self.gids),
            if self.cap_bnd == 0 { "empty" } else { "kept" },
            if self.no_new_privs { "set" } else { "not set" },
        )
    }
}

fn fill(dst: &mut [u32; 4], src: &[u32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// Turns a `-1` return into the error of the call named `call`.
fn check(ret: libc::c_long, call: impl FnOnce() -> String) -> Result<(), PrivilegeError> {
    if ret == -1 {
        Err(PrivilegeError::Syscall {
            call: call(),
            source: io::Error::last_os_error(),
        })
    } else {
        Ok(())
    }
}

/// Reads a numeric id from the environment variable `name`, if set and not empty.
fn sudo_id(name: &'static str) -> Result<Option<u32>, PrivilegeError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim()
                .parse()
                .map(Some)
                .map_err(|_| PrivilegeError::BadSudoId {
                    name,
                    value: v.clone(),
                })
        }
        _ => Ok(None),
    }
}

/// The highest capability number the kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
        .min(63)
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAP_VERSION_3: u32 = 0x2008_0522;

/// Clears the ambient set and the bounding set (which needs CAP_SETPCAP, so this comes
/// before anything else is given up): no program run later could gain a capability.
fn drop_inheritable_capabilities() -> Result<(), PrivilegeError> {
    // SAFETY: prctl with integer arguments only.
    let ret = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    // Kernels before 4.3 have no ambient set (EINVAL): nothing to clear there.
    if ret == -1 && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
        check(-1, || "prctl(PR_CAP_AMBIENT_CLEAR_ALL)".into())?;
    }
    for cap in 0..=last_cap() {
        // SAFETY: prctl with integer arguments only.
        let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
        // EINVAL: a capability this kernel does not know; EPERM: no CAP_SETPCAP, then the
        // bounding set cannot matter (nothing can be gained without privileges anyway).
        if ret == -1 {
            let e = io::Error::last_os_error().raw_os_error();
            if e != Some(libc::EINVAL) && e != Some(libc::EPERM) {
                check(-1, || format!("prctl(PR_CAPBSET_DROP, {cap})"))?;
            }
        }
    }
    Ok(())
}

/// Empties the effective, permitted and inheritable capability sets.
fn drop_capabilities() -> Result<(), PrivilegeError> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: capset reads one header and two data structs, which live until it returns.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    check(ret, || "capset(none)".into())
}

/// Gives up every privilege the process holds (see the module documentation): becomes the
/// `sudo` user if there is one, else drops all capabilities; sets `PR_SET_NO_NEW_PRIVS`;
/// verifies that root cannot be regained.
pub fn drop_privileges() -> Result<Dropped, PrivilegeError> {
    let before = Observation::read().map_err(|e| PrivilegeError::Syscall {
        call: "reading /proc/self/status".into(),
        source: e,
    })?;
    // SAFETY: getuid/geteuid cannot fail.
    let (ruid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    let was_root = ruid == 0 || euid == 0 || before.uids.contains(&0);
    let privileged = was_root || before.cap_eff != 0 || before.cap_prm != 0;
    if !privileged {
        return Ok(Dropped::NotPrivileged);
    }
    let target = match (sudo_id("SUDO_UID")?, sudo_id("SUDO_GID")?) {
        (Some(uid), gid) if was_root && uid != 0 => Some((uid, gid.unwrap_or(uid))),
        _ => None,
    };
    drop_inheritable_capabilities()?;
    let dropped = match target {
        Some((uid, gid)) => {
            // Groups first (needs CAP_SETGID), then the group id, then the user id last.
            // SAFETY: setgroups with a count of 0 reads no list.
            check(
                unsafe { libc::setgroups(0, std::ptr::null()) }.into(),
                || "setgroups([])".into(),
            )?;
            // SAFETY: plain system calls with integer arguments.
            check(unsafe { libc::setresgid(gid, gid, gid) }.into(), || {
                format!("setresgid({gid})")
            })?;
            // SAFETY: as above.
            check(unsafe { libc::setresuid(uid, uid, uid) }.into(), || {
                format!("setresuid({uid})")
            })?;
            // Leaving uid 0 has cleared the capability sets; make sure of it.
            drop_capabilities()?;
            Dropped::ToUser { uid, gid }
        }
        None => {
            drop_capabilities()?;
            Dropped::Capabilities { uid: euid }
        }
    };
    // SAFETY: prctl with integer arguments only.
    check(
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }.into(),
        || "prctl(PR_SET_NO_NEW_PRIVS)".into(),
    )?;
    verify(&dropped)?;
    Ok(dropped)
}

/// Checks the drop: the kernel reports no capabilities, and a process that became a user
/// cannot become root again.
fn verify(dropped: &Dropped) -> Result<(), PrivilegeError> {
    let now = Observation::read().map_err(|e| PrivilegeError::Syscall {
        call: "reading /proc/self/status".into(),
        source: e,
    })?;
    if now.cap_eff != 0 || now.cap_prm != 0 {
        return Err(PrivilegeError::StillPrivileged);
    }
    if let Dropped::ToUser { uid, .. } = dropped {
        if now.uids.iter().any(|u| u != uid) {
            return Err(PrivilegeError::StillPrivileged);
        }
        // SAFETY: a plain system call; it must fail with EPERM.
        if unsafe { libc::setuid(0) } == 0 {
            return Err(PrivilegeError::StillPrivileged);
        }
    }
    Ok(())
}

/// The note shown with the first packet after a drop: how privileges were given up and
/// what `/proc/self/status` says now, e.g. "privileges dropped to the invoking user (sudo)
/// before the first packet: uid 65534 gid 65534, no supplementary groups, capabilities:
/// none, ...". `None` when nothing was dropped.
pub fn first_packet_note(dropped: &Dropped) -> Option<String> {
    let how = match dropped {
        Dropped::NotPrivileged => return None,
        Dropped::ToUser { .. } => "privileges dropped to the invoking user (sudo)",
        Dropped::Capabilities { uid: 0 } => {
            "privileges dropped (root without sudo: every capability given up)"
        }
        Dropped::Capabilities { .. } => "privileges dropped (every capability given up)",
    };
    let now = match Observation::read() {
        Ok(o) => o.sentence(),
        Err(e) => format!("/proc/self/status unreadable: {e}"),
    };
    Some(format!("{how} before the first packet was parsed: {now}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tfetchscope\nUmask:\t0022\nState:\tR (running)\n\
Uid:\t65534\t65534\t65534\t65534\nGid:\t100\t100\t100\t100\nGroups:\t\n\
CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n\
CapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n";

    #[test]
    fn parses_proc_status() {
        let o = Observation::parse(STATUS);
        assert_eq!(o.uids, [65534; 4]);
        assert_eq!(o.gids, [100; 4]);
        assert!(o.groups.is_empty());
        assert_eq!((o.cap_eff, o.cap_prm, o.cap_bnd), (0, 0, 0));
        assert!(o.no_new_privs);
        assert_eq!(
            o.sentence(),
            "uid 65534 gid 100, no supplementary groups, capabilities: none, bounding set empty, no_new_privs set"
        );
    }

    #[test]
    fn describes_a_privileged_process() {
        let o = Observation::parse(
            "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t0 1 \nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\nNoNewPrivs:\t0\n",
        );
        assert_eq!(o.groups, vec![0, 1]);
        assert_eq!(o.cap_eff, 0x1ff_ffff_ffff);
        let s = o.sentence();
        assert!(
            s.starts_with("uid 0 gid 0, groups 0,1, capabilities: effective 000001ffffffffff"),
            "{s}"
        );
        assert!(
            s.ends_with("bounding set kept, no_new_privs not set"),
            "{s}"
        );
    }

    #[test]
    fn reads_this_process() {
        let o = Observation::read().expect("/proc/self/status is readable");
        // SAFETY: getuid cannot fail.
        assert_eq!(o.uids[0], unsafe { libc::getuid() });
    }
}
