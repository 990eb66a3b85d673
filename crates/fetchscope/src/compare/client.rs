//! `compare URL --client requests|curl|'COMMAND {url}'`: the real client, run through the
//! kernel in this namespace with `SSLKEYLOGFILE` set to a private file, its packets
//! captured with the `AF_PACKET` capture, and replayed into the same events a fetch gives.

use std::io::Read;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, anyhow};
use fetchscope_core::Event;
use fetchscope_core::replay::{HostFinder, Replay, ReplayOptions};
use fetchscope_os::bpf::FlowFilter;
use fetchscope_os::capture::{Capture, CapturedPacket};
use url::Url;

/// Captured bytes kept at most (the packets are replayed after the client exits).
const MAX_CAPTURED: usize = 256 * 1024 * 1024;
/// How long the capture goes on after the client exits: its FIN and the last ACKs.
const AFTER_EXIT: Duration = Duration::from_millis(400);

/// Which real client to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientChoice {
    /// `python3 -c 'requests.get(url)'`.
    Requests,
    /// `curl -L url`.
    Curl,
    /// A shell command with `{url}` in it.
    Command(String),
}

impl std::fmt::Display for ClientChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientChoice::Requests => f.write_str("requests"),
            ClientChoice::Curl => f.write_str("curl"),
            ClientChoice::Command(c) => write!(f, "`{c}`"),
        }
    }
}

impl std::str::FromStr for ClientChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "requests" => Ok(ClientChoice::Requests),
            "curl" => Ok(ClientChoice::Curl),
            c if c.contains("{url}") => Ok(ClientChoice::Command(c.to_string())),
            c => Err(format!(
                "'{c}' is not requests, curl or a command with {{url}} in it (e.g. 'wget -qO- {{url}}')"
            )),
        }
    }
}

/// What the client itself said it got (requests and curl; nothing for a command).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClientReport {
    /// The HTTP status.
    pub status: u16,
    /// SHA-256 of the body it received.
    pub body_sha256: String,
    /// Body bytes.
    pub body_bytes: u64,
    /// Redirects it followed.
    pub redirects: u64,
}

/// One run of a real client, replayed.
#[derive(Debug)]
pub struct ClientRun {
    /// How sentences name it: `requests`, `curl`, the command's first word.
    pub name: String,
    /// What ran, in one phrase (version, command, interface).
    pub path: String,
    /// The replayed events.
    pub events: Vec<Event>,
    /// The replay's time zero.
    pub epoch: SystemTime,
    /// The TLS secrets it wrote.
    pub key_log: String,
    /// What it reported itself.
    pub reported: Option<ClientReport>,
    /// Its exit status and the end of its stderr, when it failed.
    pub failure: Option<String>,
}

/// The program to run and what the run is called.
struct Program {
    name: String,
    version: String,
    command: Command,
    /// Where its own report goes (stdout).
    parse_report: bool,
    /// curl's body file, hashed after it exits.
    body_file: Option<PathBuf>,
}

/// The requests script: fetch, then report status, digest, length and redirects.
const REQUESTS_SCRIPT: &str = "import sys, hashlib, requests
r = requests.get(sys.argv[1], timeout=float(sys.argv[2]))
print(r.status_code, hashlib.sha256(r.content).hexdigest(), len(r.content), len(r.history))";

/// A Python that imports requests, and requests' version.
fn find_python() -> Result<(String, String), anyhow::Error> {
    let candidates = std::env::var("FSC_PYTHON")
        .ok()
        .into_iter()
        .chain(["python3".to_string(), "python".to_string()]);
    for py in candidates {
        let out = Command::new(&py)
            .args(["-c", "import requests; print(requests.__version__)"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        if let Ok(o) = out
            && o.status.success()
        {
            return Ok((py, String::from_utf8_lossy(&o.stdout).trim().to_string()));
        }
    }
    Err(anyhow!(
        "--client requests needs a Python with requests installed, and none of python3, python (or $FSC_PYTHON) imports it; install it with `python3 -m pip install requests` (or `apt-get install python3-requests`) and try again"
    ))
}

fn curl_version() -> Result<String, anyhow::Error> {
    let o = Command::new("curl")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|_| anyhow!("--client curl needs curl on the PATH; install it (apt-get install curl) and try again"))?;
    let text = String::from_utf8_lossy(&o.stdout);
    Ok(text
        .split_whitespace()
        .nth(1)
        .unwrap_or("(unknown version)")
        .to_string())
}

fn program(
    choice: &ClientChoice,
    url: &Url,
    cacert: Option<&Path>,
    timeout: f64,
    dir: &Path,
) -> Result<Program, anyhow::Error> {
    Ok(match choice {
        ClientChoice::Requests => {
            let (py, version) = find_python()?;
            let mut c = Command::new(&py);
            c.args(["-c", REQUESTS_SCRIPT, url.as_str(), &timeout.to_string()]);
            if let Some(ca) = cacert {
                c.env("REQUESTS_CA_BUNDLE", ca);
            }
            Program {
                name: "requests".into(),
                version: format!("requests {version} ({py})"),
                command: c,
                parse_report: true,
                body_file: None,
            }
        }
        ClientChoice::Curl => {
            let version = curl_version()?;
            let body = dir.join("body");
            let mut c = Command::new("curl");
            c.args(["-sS", "-L", "--max-redirs", "30", "-m"])
                .arg(timeout.to_string())
                .arg("-o")
                .arg(&body)
                .args(["-w", "%{http_code} - %{size_download} %{num_redirects}"]);
            if let Some(ca) = cacert {
                c.arg("--cacert").arg(ca);
            }
            c.arg(url.as_str());
            Program {
                name: "curl".into(),
                version: format!("curl {version}"),
                command: c,
                parse_report: true,
                body_file: Some(body),
            }
        }
        ClientChoice::Command(template) => {
            let quoted = format!("'{}'", url.as_str().replace('\'', "'\\''"));
            let line = template.replace("{url}", &quoted);
            let name = template
                .split_whitespace()
                .next()
                .unwrap_or("command")
                .to_string();
            let mut c = Command::new("sh");
            c.args(["-c", &line]);
            Program {
                name,
                version: format!("`{line}`"),
                command: c,
                parse_report: false,
                body_file: None,
            }
        }
    })
}

/// A private directory for the key log (mode 0700), removed when dropped.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn create() -> std::io::Result<PrivateDir> {
        let base = std::env::temp_dir();
        for i in 0..100u32 {
            let p = base.join(format!("fetchscope-client-{}-{i}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&p) {
                Ok(()) => return Ok(PrivateDir(p)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("no free temporary directory name"))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Under sudo, the client runs as the invoking user (not root), with the private
/// directory handed to it.
fn as_invoking_user(c: &mut Command, dir: &Path) {
    let id = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let (Some(uid), Some(gid), true) = (id("SUDO_UID"), id("SUDO_GID"), root) else {
        return;
    };
    if uid == 0 {
        return;
    }
    let _ = std::os::unix::fs::chown(dir, Some(uid), Some(gid));
    // SAFETY: between fork and exec only async-signal-safe calls with integer
    // arguments (setgroups with an empty list, setresgid, setresuid).
    unsafe {
        c.pre_exec(move || {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(gid, gid, gid) != 0
                || libc::setresuid(uid, uid, uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Where the capture listens: the interface of the route to the URL's host (resolved by
/// the system, as the client will) or `asked`.
fn watch(capture: &mut Capture, url: &Url, asked: Option<&str>) -> anyhow::Result<String> {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(443);
    let addr: Option<IpAddr> = (host.trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(|a: SocketAddr| a.ip());
    let Some(addr) = addr else {
        if asked.is_none() {
            return Err(anyhow!(
                "cannot resolve {host} with the system resolver, so the interface to capture on is not known; name it with --capture-iface IFACE"
            ));
        }
        capture
            .watch_route(IpAddr::from([0, 0, 0, 0]), asked)
            .map_err(|e| anyhow!(e))?;
        return Ok(asked.unwrap_or_default().to_string());
    };
    let chosen = capture.watch_route(addr, asked).map_err(|e| anyhow!(e))?;
    Ok(chosen.map_or_else(|| "the route's interface".into(), |(n, _)| n))
}

/// Runs the client on `url` and replays what it did.
pub fn run(
    choice: &ClientChoice,
    url: &Url,
    cacert: Option<&Path>,
    timeout: f64,
    capture_iface: Option<&str>,
) -> anyhow::Result<ClientRun> {
    let dir = PrivateDir::create().context("cannot create a private temporary directory")?;
    let key_log_path = dir.0.join("keys.log");
    let mut prog = program(choice, url, cacert, timeout, &dir.0)?;
    let mut capture = Capture::new().map_err(|e| anyhow!(e))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let mut ports = vec![53, 80, 443, port];
    ports.dedup();
    capture
        .set_filter(FlowFilter {
            udp_ports: vec![53],
            tcp_servers: Vec::new(),
            tcp_ports: ports,
        })
        .map_err(|e| anyhow!(e))?;
    let iface = watch(&mut capture, url, capture_iface)?;
    let stdout_path = dir.0.join("stdout");
    let stderr_path = dir.0.join("stderr");
    let out =
        std::fs::File::create(&stdout_path).context("cannot create the client's output file")?;
    let err =
        std::fs::File::create(&stderr_path).context("cannot create the client's output file")?;
    as_invoking_user(&mut prog.command, &dir.0);
    let mut child = prog
        .command
        .env("SSLKEYLOGFILE", &key_log_path)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot start {}", prog.version))?;
    let mut packets: Vec<CapturedPacket> = Vec::new();
    let mut bytes = 0usize;
    let mut cut = false;
    let deadline = Instant::now() + Duration::from_secs_f64(timeout + 5.0);
    let mut exited: Option<(Instant, std::process::ExitStatus)> = None;
    loop {
        let _ = capture.wait(Duration::from_millis(20));
        for p in capture.drain(512).map_err(|e| anyhow!(e))? {
            if bytes + p.data.len() > MAX_CAPTURED {
                cut = true;
                continue;
            }
            bytes += p.data.len();
            packets.push(p);
        }
        if exited.is_none()
            && let Some(status) = child.try_wait().context("cannot wait for the client")?
        {
            exited = Some((Instant::now(), status));
        }
        match exited {
            Some((at, _)) if at.elapsed() >= AFTER_EXIT => break,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let status = child.wait().context("cannot wait for the client")?;
                exited = Some((Instant::now(), status));
            }
            _ => {}
        }
    }
    let status = exited.map(|(_, s)| s);
    let read = |p: &Path| {
        let mut s = String::new();
        let _ = std::fs::File::open(p).and_then(|f| f.take(1 << 20).read_to_string(&mut s));
        s
    };
    let key_log = read(&key_log_path);
    let stdout = read(&stdout_path);
    let stderr = read(&stderr_path);
    let reported = if prog.parse_report {
        parse_report(&stdout, prog.body_file.as_deref())
    } else {
        None
    };
    let failure = match status {
        Some(s) if s.success() => None,
        s => Some(format!(
            "{} exited with {}{}",
            prog.name,
            s.map_or("no status".into(), |s| s.to_string()),
            stderr
                .lines()
                .last()
                .map(|l| format!(": {}", l.trim()))
                .unwrap_or_default()
        )),
    };
    // The replay: only the flows of the URL's host (and its redirects' hosts).
    let mut finder = HostFinder::new(url.host_str().unwrap_or_default());
    finder.learn_key_log(&key_log);
    for p in &packets {
        finder.packet(&p.data);
    }
    let mut replay = Replay::new(ReplayOptions {
        flows: Some(finder.finish()),
        ..ReplayOptions::default()
    });
    replay.learn_key_log(&key_log);
    let mut events = Vec::new();
    for p in &packets {
        replay.handle_packet(p.stamp, &p.data, false);
        events.extend(std::iter::from_fn(|| replay.poll_event()));
    }
    if cut {
        replay.note_damage(&format!(
            "the capture kept the first {} MiB only",
            MAX_CAPTURED >> 20
        ));
    }
    replay.finish();
    events.extend(std::iter::from_fn(|| replay.poll_event()));
    Ok(ClientRun {
        name: prog.name,
        path: format!(
            "{} through the kernel, SSLKEYLOGFILE set, captured on {iface}",
            prog.version
        ),
        events,
        epoch: SystemTime::UNIX_EPOCH + replay.epoch().unwrap_or_default(),
        key_log: replay.key_log().to_string(),
        reported,
        failure,
    })
}

/// The client's own report: `STATUS SHA256 BYTES REDIRECTS` (requests) or
/// `STATUS - BYTES REDIRECTS` with the body in `body_file` (curl).
fn parse_report(stdout: &str, body_file: Option<&Path>) -> Option<ClientReport> {
    let mut w = stdout.split_whitespace();
    let status = w.next()?.parse().ok()?;
    let mut sha = w.next()?.to_string();
    let body_bytes = w.next()?.parse().ok()?;
    let redirects = w.next()?.parse().ok()?;
    if let Some(f) = body_file {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        let mut file = std::fs::File::open(f).ok()?;
        std::io::copy(&mut file, &mut h).ok()?;
        sha = hex::encode(h.finalize());
    }
    Some(ClientReport {
        status,
        body_sha256: sha,
        body_bytes,
        redirects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_and_reports() {
        assert_eq!("requests".parse(), Ok(ClientChoice::Requests));
        assert_eq!("curl".parse(), Ok(ClientChoice::Curl));
        assert!(matches!(
            "wget -qO- {url}".parse::<ClientChoice>(),
            Ok(ClientChoice::Command(_))
        ));
        assert!("wget".parse::<ClientChoice>().is_err());
        let r = parse_report("200 abc 12 1\n", None).unwrap();
        assert_eq!((r.status, r.body_bytes, r.redirects), (200, 12, 1));
        assert!(parse_report("Traceback", None).is_none());
    }
}
