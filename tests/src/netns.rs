//! The namespace lab (`scripts/netns-lab.sh`) as a test fixture: real nginx and dnsmasq
//! in one network namespace, the TUN device and IP forwarding in another.
//!
//! [`NsLab::up`] brings a lab up under a name prefix (`FSC_LAB_PREFIX`) with its own state
//! directory, and dropping it takes it down with `down --purge`, also when the test
//! panics. Each test binary uses its own prefix and runs its lab tests one at a time
//! ([`SERIAL`]), so labs never meet — not even one a person has up (`fsc-*`).

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::{fetchscope_bin, have, is_root, require, scratch_dir, workspace_root};

/// The longest any one command of these tests may take before it is killed.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(240);
/// fetchscope's own `--timeout` in these tests, well under [`COMMAND_LIMIT`].
pub const FETCH_TIMEOUT_SECS: &str = "120";

/// One lab at a time in a test binary: its names are fixed by its prefix.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// The prerequisites every test here shares; false (after saying why) when a test
/// should skip.
pub fn lab_prerequisites() -> bool {
    let tools = [
        "ip",
        "nginx",
        "dnsmasq",
        "openssl",
        "sha256sum",
        "tinyproxy",
        "python3",
    ];
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    require(
        is_root(),
        "the namespace lab needs root (network namespaces, TUN)",
    ) && require(
        Path::new("/dev/net/tun").exists(),
        "/dev/net/tun is missing (modprobe tun)",
    ) && require(
        missing.is_empty(),
        &format!(
            "the namespace lab needs {} (scripts/test.sh installs them as root)",
            missing.join(", ")
        ),
    )
}

/// A namespace lab that is up; dropping it takes it down (`down --purge`).
pub struct NsLab {
    /// The lab's state directory.
    pub dir: PathBuf,
    env: HashMap<String, String>,
    prefix: &'static str,
    // Declared last: released only after `drop` has taken the lab down.
    _serial: MutexGuard<'static, ()>,
}

impl NsLab {
    /// Brings the lab up with the TUN device owned by root; `None` when the test skips.
    pub fn up(prefix: &'static str) -> Option<NsLab> {
        NsLab::up_with_owner(prefix, "root")
    }

    /// Brings the lab up with the TUN device owned by `owner` (who may then attach to it
    /// without privileges).
    pub fn up_with_owner(prefix: &'static str, owner: &str) -> Option<NsLab> {
        if !lab_prerequisites() {
            return None;
        }
        let serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let dir =
            std::env::temp_dir().join(format!("fetchscope-{prefix}-test-{}", std::process::id()));
        // The guard exists before `up` runs, so a half-made lab is taken down too.
        let mut lab = NsLab {
            dir,
            env: HashMap::new(),
            prefix,
            _serial: serial,
        };
        let out = lab.script(&["up"], owner);
        assert!(
            out.status.success(),
            "netns-lab.sh up failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env_file = lab.dir.join("lab.env");
        let text = fs::read_to_string(&env_file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", env_file.display()));
        lab.env = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(lab)
    }

    /// Runs `netns-lab.sh ARGS` for this lab.
    pub fn script(&self, args: &[&str], owner: &str) -> Output {
        let mut cmd = Command::new("bash");
        cmd.arg(workspace_root().join("scripts/netns-lab.sh"))
            .args(args)
            .env("FSC_LAB_PREFIX", self.prefix)
            .env("FSC_LAB_DIR", &self.dir)
            .env("FSC_LAB_TUN_USER", owner)
            .env_remove("SUDO_USER")
            .env_remove("FETCHSCOPE_INSTALL");
        output_within(cmd, COMMAND_LIMIT)
    }

    /// A variable of the lab's `lab.env`.
    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("lab.env has no {key}"))
    }

    /// `program` run inside the client namespace (where the TUN device is).
    pub fn in_cli(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.var("FSC_CLI_NS")])
            .arg(program)
            .env("NO_COLOR", "1")
            .env_remove("SSLKEYLOGFILE");
        c
    }

    /// `program` run inside the server namespace (where nginx and dnsmasq are).
    pub fn in_srv(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.var("FSC_SRV_NS")])
            .arg(program);
        c
    }

    /// The options that point fetchscope at the lab through its TUN device.
    pub fn tun_args(&self) -> Vec<String> {
        [
            ("--tun", "FSC_TUN"),
            ("--addr", "FSC_STACK_ADDR"),
            ("--gateway", "FSC_GATEWAY"),
            ("--dns", "FSC_DNS"),
            ("--cacert", "FSC_CACERT"),
        ]
        .iter()
        .flat_map(|(opt, key)| [opt.to_string(), self.var(key).to_string()])
        .collect()
    }

    /// `fetchscope fetch https://www.example.test{path} <tun options> <extra>` in the
    /// client namespace; `--timeout` [`FETCH_TIMEOUT_SECS`] unless `extra` has its own.
    pub fn fetch(&self, path: &str, extra: &[&str]) -> Command {
        let mut c = self.in_cli(fetchscope_bin());
        c.arg("fetch")
            .arg(format!("https://www.example.test{path}"))
            .args(self.tun_args())
            .args(extra);
        if !extra.contains(&"--timeout") {
            c.args(["--timeout", FETCH_TIMEOUT_SECS]);
        }
        c
    }

    /// The SHA-256 nginx's file `rel` (e.g. `www/index.html`) has, from `files.sha256`.
    pub fn expected_sha256(&self, rel: &str) -> String {
        let list = fs::read_to_string(self.dir.join("files.sha256")).expect("files.sha256");
        list.lines()
            .filter_map(|l| l.split_once("  "))
            .find(|(_, f)| *f == rel)
            .map(|(sum, _)| sum.to_string())
            .unwrap_or_else(|| panic!("files.sha256 does not list {rel}"))
    }

    /// The size of nginx's file `rel`.
    pub fn file_len(&self, rel: &str) -> u64 {
        fs::metadata(self.dir.join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
            .len()
    }
}

impl Drop for NsLab {
    fn drop(&mut self) {
        let out = self.script(&["down", "--purge"], "root");
        if !out.status.success() {
            eprintln!(
                "netns-lab.sh down --purge failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

// ------------------------------------------------------------------ processes

/// Runs `cmd` to the end with its output captured; kills it and panics after `limit`.
pub fn output_within(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap_or_else(|e| panic!("waiting for {cmd:?}: {e}")),
        Err(_) => {
            kill(pid, "KILL");
            let out = rx.recv_timeout(Duration::from_secs(10));
            panic!(
                "{cmd:?} did not finish within {limit:?} and was killed; stderr:\n{}",
                out.ok()
                    .and_then(Result::ok)
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default()
            );
        }
    }
}

/// Sends signal `sig` (a name such as `INT`) to `pid`.
pub fn kill(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// A process that runs beside a fetch (a capture, a server); killed when dropped.
pub struct Background {
    child: Child,
    what: &'static str,
}

impl Background {
    /// Starts `cmd` with its output piped; `what` names it in messages.
    pub fn spawn(mut cmd: Command, what: &'static str) -> Background {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Background { child, what }
    }

    /// Waits (at most `limit`) for a line of stdout or stderr containing `needle`. The rest
    /// of that stream is read on in the background (so the process never blocks on a full
    /// pipe) and kept: the returned handle holds everything the stream said.
    pub fn wait_for_line(
        &mut self,
        stderr: bool,
        needle: &str,
        limit: Duration,
    ) -> Arc<Mutex<String>> {
        let stream: Box<dyn Read + Send> = if stderr {
            Box::new(self.child.stderr.take().expect("stderr is piped"))
        } else {
            Box::new(self.child.stdout.take().expect("stdout is piped"))
        };
        let said = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let needle_owned = needle.to_string();
        let said_by_thread = Arc::clone(&said);
        std::thread::spawn(move || {
            let mut found = false;
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                {
                    let mut said = said_by_thread
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    // Bounded: a chatty process cannot fill the memory.
                    if said.len() < 64 * 1024 {
                        said.push_str(&line);
                        said.push('\n');
                    }
                }
                if !found && line.contains(&needle_owned) {
                    found = true;
                    let _ = tx.send(true);
                }
            }
            if !found {
                let _ = tx.send(false);
            }
        });
        let text = || said.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match rx.recv_timeout(limit) {
            Ok(true) => {}
            Ok(false) => panic!("{} ended without saying '{needle}':\n{}", self.what, text()),
            Err(_) => panic!("{} did not say '{needle}' within {limit:?}", self.what),
        }
        said
    }

    /// Takes the process's stdout to read it directly.
    pub fn take_stdout(&mut self) -> std::process::ChildStdout {
        self.child.stdout.take().expect("stdout is piped")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` and waits (at most 10 s, then KILL) for the process to end.
    pub fn stop(mut self, sig: &str) -> ExitStatus {
        kill(self.pid(), sig);
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                return self.child.wait().expect("wait after KILL");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A scratch directory, removed when dropped (also when the test panics).
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh scratch directory for `tag`.
    pub fn new(tag: &str) -> Scratch {
        Scratch(scratch_dir(tag))
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
