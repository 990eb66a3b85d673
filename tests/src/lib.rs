//! Helpers shared by the end-to-end tests: find (and build) the `fetchscope` binary, run
//! it, read its NDJSON, and check prerequisites the way CI wants (a missing one fails
//! under `CI=true` and skips with a reason otherwise).

pub mod netns;
pub mod tmux;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// The `fetchscope` binary, built once per test process with the same profile as the
/// tests (`cargo build -p fetchscope`), or `$FETCHSCOPE_BIN` when set.
pub fn fetchscope_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("FETCHSCOPE_BIN") {
            return PathBuf::from(p);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let release = !cfg!(debug_assertions);
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace_root()).args([
            "build",
            "--quiet",
            "-p",
            "fetchscope",
            "--bin",
            "fetchscope",
        ]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p fetchscope failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"));
        target
            .join(if release { "release" } else { "debug" })
            .join("fetchscope")
    })
    .clone()
}

/// A `fetchscope` command with `args`, colour off.
pub fn fetchscope(args: &[&str]) -> Command {
    let mut c = Command::new(fetchscope_bin());
    c.args(args)
        .env("NO_COLOR", "1")
        .env_remove("SSLKEYLOGFILE");
    c
}

/// Runs `fetchscope` with `args` and returns its output.
pub fn run(args: &[&str]) -> Output {
    fetchscope(args).output().expect("run fetchscope")
}

/// The exit status, or a panic with the output when the process was killed.
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or_else(|| {
        panic!(
            "fetchscope was killed: {:?}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Parses NDJSON: one JSON object per line; panics on a line that isn't one.
pub fn events(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {l}", i + 1));
            assert!(v.is_object(), "line {} is not an object: {l}", i + 1);
            v
        })
        .collect()
}

/// The events of one `type`.
pub fn of_type<'a>(events: &'a [Value], ty: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == ty).collect()
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Whether the environment says this is CI (`CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Checks a prerequisite: returns true when it is met; otherwise fails the test under
/// `CI=true`, or prints why the test is skipped and returns false.
pub fn require(met: bool, what: &str) -> bool {
    if met {
        return true;
    }
    if in_ci() {
        panic!("prerequisite missing in CI: {what}");
    }
    eprintln!("skipping: {what} (set CI=true to make this a failure)");
    false
}

/// True when `program` is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

/// True when running as root.
pub fn is_root() -> bool {
    // SAFETY-free: read the effective uid from /proc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The built-in lab's generated body for `/bytes/N`: byte i is `i mod 251`.
pub fn lab_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// A fresh scratch directory for one test, removed by the caller.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fetchscope-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

/// The number of complete packet records in the pcap file at `path`, which may still be
/// being written: `Some(0)` while it is missing or has no magic yet, `None` when it does
/// not start like a pcap file. Read independently of fetchscope's own capture reader.
pub fn pcap_records(path: &Path) -> Option<usize> {
    let Ok(bytes) = std::fs::read(path) else {
        return Some(0);
    };
    let Some(magic) = bytes.get(..4) else {
        return Some(0);
    };
    let big_endian = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => false,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => true,
        _ => return None,
    };
    let mut at = 24;
    let mut count = 0;
    // A record: 16 bytes of header (its third word is the captured length), then data.
    while let Some(len) = bytes.get(at + 8..at + 12) {
        let len: [u8; 4] = len.try_into().expect("4 bytes");
        let len = if big_endian {
            u32::from_be_bytes(len)
        } else {
            u32::from_le_bytes(len)
        } as usize;
        if bytes.len() < at + 16 + len {
            break;
        }
        at += 16 + len;
        count += 1;
    }
    Some(count)
}
