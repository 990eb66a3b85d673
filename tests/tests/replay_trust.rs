//! `fetchscope replay` on untrusted captures: files that are not captures, captures cut
//! anywhere, lengths that lie, packets cut to a snap length, nothing but unrelated traffic,
//! key logs that do not match or are garbage, selections that keep nothing, and captures
//! of a gigabyte streamed through stdin. Each must end in the documented exit status, one
//! clear sentence on stderr (naming only options that exist), no panic, within a bounded
//! time and in bounded memory (the replay's peak RSS: getrusage of a python3 parent, as in
//! limits.rs, and its VmHWM sampled from /proc while it runs). No root needed: the captures are the built-in lab's
//! (`fetchscope fetch --pcap`), cut, rewritten or built here.
//!
//! Measured on the 2-core test machine, debug builds of fetchscope and of this test: the
//! 1 GiB capture through stdin (40,488 other flows, 1.34 M packets) is generated at ~430
//! MiB/s and replayed in 3.4 s, peak 11.8 MiB; the 100 MiB pcapng of the client's own 3,953
//! other flows with `--host` (two passes) in ~6 s, peak 12.5 MiB. So the full sizes run
//! in every build ([`STREAM_MIB`]); [`STREAM_RUN`] leaves a wide margin for a busy machine.

use std::collections::BTreeSet;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fetchscope_tests::{
    code, events, fetchscope, fetchscope_bin, have, lab_bytes, of_type, scratch_dir, sha256_hex,
};
use serde_json::Value;

/// Longest a replay of a small capture may take (debug build, a busy machine).
const SMALL_RUN: Duration = Duration::from_secs(60);
/// Longest a replay of a big capture may take: some 50 times what it took here.
const STREAM_RUN: Duration = Duration::from_secs(300);
/// The most a replay may hold at its peak (VmHWM), whatever the capture's size.
const MEMORY_BOUND_KIB: u64 = 64 * 1024;
/// The lab's client address.
const LAB_CLIENT: [u8; 4] = [10, 88, 1, 2];

// ------------------------------------------------------------------ findings

/// What a test found wrong, collected so that one product bug does not hide the next:
/// the test fails at its end with every finding listed.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    /// Records `message()` unless `ok`.
    fn check(&mut self, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            let m = message();
            eprintln!("FINDING: {m}");
            self.0.push(m);
        }
    }

    /// Fails the test if anything was found.
    fn done(self, test: &str) {
        assert!(
            self.0.is_empty(),
            "{test}: {} findings:\n- {}",
            self.0.len(),
            self.0.join("\n- ")
        );
    }
}

// ------------------------------------------------------------------ running a replay

/// A writer of a capture, run while the replay reads it.
type Generator = Box<dyn FnOnce(&mut dyn Write) -> io::Result<()> + Send>;

/// What to give the replay on stdin.
enum Input {
    /// Nothing (`/dev/null`).
    Null,
    /// These bytes.
    Bytes(Vec<u8>),
    /// Bytes a generator writes while the replay runs (so they need not fit anywhere).
    Stream(Generator),
}

/// One finished run.
struct Run {
    what: String,
    out: Output,
    elapsed: Duration,
    /// Peak resident memory of the replay (VmHWM), KiB, as last sampled.
    peak_kib: u64,
    /// The stdin writer's own failure (the replay stopped reading).
    input_error: Option<io::Error>,
}

impl Run {
    fn code(&self) -> i32 {
        code(&self.out)
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    /// The NDJSON events (for runs with `--json`).
    fn events(&self) -> Vec<Value> {
        events(&self.out.stdout)
    }
}

/// The peak resident set (VmHWM) of process `pid`, KiB; `None` before it runs fetchscope
/// (between fork and exec it is a copy of this test process) and once it is gone.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let name = status.lines().find_map(|l| l.strip_prefix("Name:"))?;
    if name.trim() != "fetchscope" {
        return None;
    }
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A python3 parent for the replay that writes its exit status and peak RSS
/// (`getrusage(RUSAGE_CHILDREN).ru_maxrss`, exact where sampling /proc can miss a short
/// run's peak) to the file `argv[1]`; stdin, stdout and stderr are the replay's own.
const RUSAGE_PARENT: &str = "import json,resource,subprocess,sys\n\
r=subprocess.run(sys.argv[2:])\n\
open(sys.argv[1],'w').write(json.dumps({'code':r.returncode,\
'rss':resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))";

/// The first child of process `pid`.
fn child_of(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs `fetchscope replay ARGS` with `input` on stdin; fails the test if it runs longer
/// than `limit` (a hang). Its peak memory comes from a python3 parent's getrusage when
/// python3 is there, and from sampling its VmHWM in /proc all along in any case.
fn replay(f: &mut Findings, what: &str, args: &[&str], input: Input, limit: Duration) -> Run {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static PYTHON: OnceLock<bool> = OnceLock::new();
    let python = *PYTHON.get_or_init(|| have("python3"));
    let report = std::env::temp_dir().join(format!(
        "fetchscope-replay-trust-{}-{}.json",
        std::process::id(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let replay_args = [&["replay"], args].concat();
    let mut cmd = if python {
        let mut c = Command::new("python3");
        c.arg("-c")
            .arg(RUSAGE_PARENT)
            .arg(&report)
            .arg(fetchscope_bin())
            .args(&replay_args)
            .env("NO_COLOR", "1")
            .env_remove("SSLKEYLOGFILE");
        c
    } else {
        fetchscope(&replay_args)
    };
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(match input {
        Input::Null => Stdio::null(),
        _ => Stdio::piped(),
    });
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start fetchscope replay");
    let parent = child.id();
    let writer = child.stdin.take().map(|stdin| {
        std::thread::spawn(move || -> Option<io::Error> {
            let mut w = BufWriter::with_capacity(1 << 20, stdin);
            let result = match input {
                Input::Null => Ok(()),
                Input::Bytes(b) => w.write_all(&b),
                Input::Stream(f) => f(&mut w),
            };
            result.and_then(|()| w.flush()).err()
        })
    });
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let mut peak_kib = 0;
    let mut pid = (!python).then_some(parent);
    let status = loop {
        if pid.is_none() {
            pid = child_of(parent);
        }
        if let Some(kib) = pid.and_then(vm_hwm_kib) {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait for fetchscope replay") {
            break status;
        }
        if started.elapsed() > limit {
            if let Some(pid) = pid.filter(|p| *p != parent) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
            let _ = child.kill();
            let _ = child.wait();
            let err = stderr.join().unwrap_or_default();
            panic!(
                "{what}: fetchscope replay {args:?} still running after {limit:?} (a hang?); stderr:\n{}",
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let input_error = writer.and_then(|w| w.join().expect("the stdin writer"));
    let status = if python {
        use std::os::unix::process::ExitStatusExt;
        assert!(
            status.success(),
            "{what}: the python3 parent failed: {status:?}"
        );
        let text = std::fs::read_to_string(&report).expect("the python3 parent's report");
        let _ = std::fs::remove_file(&report);
        let v: Value = serde_json::from_str(&text).expect("the report is JSON");
        peak_kib = peak_kib.max(v["rss"].as_u64().expect("a peak RSS"));
        let code = v["code"].as_i64().expect("an exit status");
        // A negative code is the signal that killed it.
        std::process::ExitStatus::from_raw(if code < 0 {
            (-code) as i32
        } else {
            (code as i32) << 8
        })
    } else {
        status
    };
    let out = Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    let run = Run {
        what: what.to_string(),
        out,
        elapsed,
        peak_kib,
        input_error,
    };
    sane(f, &run);
    run
}

/// Replays the file `path` with `args` after it, in `--json` mode and in text mode; the
/// text run must end with the same status. Returns the `--json` run.
fn replay_file(f: &mut Findings, what: &str, path: &Path, args: &[&str]) -> Run {
    let p = path.to_str().expect("a UTF-8 path");
    let json = replay(
        f,
        what,
        &[&[p, "--json"], args].concat(),
        Input::Null,
        SMALL_RUN,
    );
    let text = replay(
        f,
        &format!("{what} (text)"),
        &[&[p], args].concat(),
        Input::Null,
        SMALL_RUN,
    );
    f.check(json.code() == text.code(), || {
        format!(
            "{what}: --json exits {} and text mode {}; text stderr: {}",
            json.code(),
            text.code(),
            text.stderr()
        )
    });
    json
}

/// Every option `fetchscope replay` and `fetchscope fetch` take (a message may send the
/// user from one to the other).
fn known_options() -> &'static BTreeSet<String> {
    static OPTIONS: OnceLock<BTreeSet<String>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let mut set = BTreeSet::new();
        for sub in ["replay", "fetch", "step"] {
            let out = fetchscope(&[sub, "--help"]).output().expect("help");
            set.extend(long_options(&String::from_utf8_lossy(&out.stdout)));
        }
        assert!(set.contains("--client-addr"), "replay --help: {set:?}");
        set
    })
}

/// The `--long-option` words of `text`.
fn long_options(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("--") {
        let start = i + at;
        let mut end = start + 2;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'-') {
            end += 1;
        }
        let before_ok =
            start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'-');
        if before_ok && end > start + 2 && b[start + 2].is_ascii_alphabetic() {
            found.push(text[start..end].trim_end_matches('-').to_string());
        }
        i = end;
    }
    found
}

/// What every run must satisfy: no panic anywhere; memory under the bound; a failure is
/// one sentence on stderr that names only options which exist; a success prints nothing
/// on stderr.
fn sane(f: &mut Findings, r: &Run) {
    let (out, err) = (r.stdout(), r.stderr());
    for (name, text) in [("stdout", &out), ("stderr", &err)] {
        f.check(
            !text.contains("panicked") && !text.contains("RUST_BACKTRACE"),
            || format!("{}: a panic on {name}:\n{text}", r.what),
        );
    }
    f.check(r.peak_kib < MEMORY_BOUND_KIB, || {
        format!(
            "{}: peak memory {} KiB (bound {MEMORY_BOUND_KIB} KiB)",
            r.what, r.peak_kib
        )
    });
    let code = r.code();
    if code == 0 {
        // A success says nothing on stderr but notes (`fetchscope: note: ...`).
        let unexpected = err
            .lines()
            .any(|l| !l.trim().is_empty() && !l.starts_with("fetchscope: note: "));
        f.check(!unexpected, || {
            format!("{}: exit 0 but stderr says: {err}", r.what)
        });
        return;
    }
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    f.check(lines.len() == 1, || {
        format!(
            "{}: exit {code} with not one sentence on stderr:\n{err}",
            r.what
        )
    });
    let Some(line) = lines.first() else { return };
    f.check(line.starts_with("fetchscope: ") && line.len() > 30, || {
        format!(
            "{}: stderr is not a sentence of fetchscope's: {err}",
            r.what
        )
    });
    for option in long_options(line) {
        f.check(known_options().contains(&option), || {
            format!(
                "{}: the message names {option}, which is not an option of fetchscope replay: {line}",
                r.what
            )
        });
    }
}

/// The one sentence on stderr.
fn sentence(r: &Run) -> String {
    r.stderr().trim().to_string()
}

/// The run's last event, which must be its `done` or `error`, and the only one (`Null`
/// and a finding when not).
fn terminal(f: &mut Findings, r: &Run) -> Value {
    let ev = r.events();
    let ends = ev
        .iter()
        .filter(|e| e["type"] == "done" || e["type"] == "error")
        .count();
    f.check(ends == 1, || {
        format!("{}: {ends} done/error events, not one", r.what)
    });
    match ev.last() {
        Some(last) if last["type"] == "done" || last["type"] == "error" => last.clone(),
        last => {
            f.check(false, || {
                format!("{}: the last event is not done/error: {last:?}", r.what)
            });
            Value::Null
        }
    }
}

/// The texts of the `note` events.
fn notes(r: &Run) -> Vec<String> {
    of_type(&r.events(), "note")
        .iter()
        .map(|n| n["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Whether a note has all of `words` (lower case).
fn has_note(r: &Run, words: &[&str]) -> bool {
    notes(r)
        .iter()
        .any(|n| words.iter().all(|w| n.to_lowercase().contains(w)))
}

/// Whether a note, or the run's error, says the capture is damaged or cut short.
fn damage_said(r: &Run) -> bool {
    let said = |t: &str| t.to_lowercase().contains("damaged or cut short");
    notes(r).iter().any(|n| said(n))
        || of_type(&r.events(), "error")
            .iter()
            .any(|e| said(e["message"].as_str().unwrap_or_default()))
}

/// Exit 3 (nothing to replay) with one sentence; returns the sentence.
fn exit_3(f: &mut Findings, r: &Run) -> String {
    f.check(r.code() == 3, || {
        format!(
            "{}: exit {}, not 3; stderr: {}",
            r.what,
            r.code(),
            r.stderr()
        )
    });
    sentence(r)
}
// ------------------------------------------------------------------ lab captures

/// A lab fetch captured with `--pcap`.
struct Lab {
    pcapng: PathBuf,
    /// Its `done` event, as the live fetch reported it.
    done: Value,
}

/// `fetchscope fetch URL --seed SEED EXTRA --pcap DIR/NAME.pcapng` in the built-in lab.
fn lab_capture(dir: &Path, name: &str, url: &str, seed: u64, extra: &[&str]) -> Lab {
    let pcapng = dir.join(format!("{name}.pcapng"));
    let seed = seed.to_string();
    let args = [
        &["fetch", url, "--json", "--seed", &seed, "--pcap"],
        &[pcapng.to_str().expect("a UTF-8 path")][..],
        extra,
    ]
    .concat();
    let out = fetchscope(&args).output().expect("run fetchscope fetch");
    assert_eq!(
        code(&out),
        0,
        "the lab fetch {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out.stdout);
    let done = (*of_type(&ev, "done").first().expect("a done event")).clone();
    Lab { pcapng, done }
}

/// One packet of a capture: time in µs since the Unix epoch, and the IP packet.
#[derive(Clone)]
struct Packet {
    t_us: u64,
    ip: Vec<u8>,
}

/// The blocks of a little-endian pcapng file, as (offset, type, length).
fn pcapng_blocks(data: &[u8]) -> Vec<(usize, u32, usize)> {
    let mut blocks = Vec::new();
    let mut at = 0;
    while at + 12 <= data.len() {
        let kind = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(data[at + 4..at + 8].try_into().unwrap()) as usize;
        assert!(len >= 12 && at + len <= data.len(), "a damaged lab pcapng");
        blocks.push((at, kind, len));
        at += len;
    }
    blocks
}

/// The packets (raw IP, as the lab writes them) and the key log of a fetchscope pcapng.
fn read_pcapng(data: &[u8]) -> (Vec<Packet>, String) {
    let mut packets = Vec::new();
    let mut key_log = String::new();
    let mut units_per_sec = 1_000_000u64;
    let word = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
    for (at, kind, len) in pcapng_blocks(data) {
        match kind {
            1 => {
                assert_eq!(
                    u16::from_le_bytes([data[at + 8], data[at + 9]]),
                    101,
                    "raw IP"
                );
                // Options after linktype, reserved, snaplen: look for if_tsresol (9).
                let mut o = at + 16;
                while o + 4 <= at + len - 4 {
                    let code = u16::from_le_bytes([data[o], data[o + 1]]);
                    let olen = usize::from(u16::from_le_bytes([data[o + 2], data[o + 3]]));
                    if code == 0 {
                        break;
                    }
                    if code == 9 && olen == 1 {
                        let v = data[o + 4];
                        assert!(v & 0x80 == 0, "a decimal time resolution");
                        units_per_sec = 10u64.pow(u32::from(v));
                    }
                    o += 4 + olen.div_ceil(4) * 4;
                }
            }
            6 => {
                let ts = (u64::from(word(at + 12)) << 32) | u64::from(word(at + 16));
                let caplen = word(at + 20) as usize;
                let ip = data[at + 28..at + 28 + caplen].to_vec();
                let t_us = (u128::from(ts) * 1_000_000 / u128::from(units_per_sec)) as u64;
                packets.push(Packet { t_us, ip });
            }
            0xA => {
                let n = word(at + 12) as usize;
                let text = String::from_utf8_lossy(&data[at + 16..at + 16 + n]);
                for line in text
                    .lines()
                    .filter(|l| !l.starts_with('#') && !l.is_empty())
                {
                    key_log.push_str(line);
                    key_log.push('\n');
                }
            }
            _ => {}
        }
    }
    (packets, key_log)
}

// ------------------------------------------------------------------ writing captures

/// A pcap file header (µs timestamps) for `linktype` (101: raw IP, 1: Ethernet).
fn pcap_header(linktype: u32, snaplen: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&0i32.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&snaplen.to_le_bytes());
    h.extend_from_slice(&linktype.to_le_bytes());
    h
}

/// A pcap record header: time, bytes kept, length on the wire.
fn pcap_record_header(out: &mut Vec<u8>, t_us: u64, incl: u32, orig: u32) {
    out.extend_from_slice(&((t_us / 1_000_000) as u32).to_le_bytes());
    out.extend_from_slice(&((t_us % 1_000_000) as u32).to_le_bytes());
    out.extend_from_slice(&incl.to_le_bytes());
    out.extend_from_slice(&orig.to_le_bytes());
}

/// A pcap record holding `data` whole.
fn pcap_record(out: &mut Vec<u8>, t_us: u64, data: &[u8]) {
    pcap_record_header(out, t_us, data.len() as u32, data.len() as u32);
    out.extend_from_slice(data);
}

/// A raw-IP pcap of `packets`.
fn pcap_of(packets: &[Packet]) -> Vec<u8> {
    let mut out = pcap_header(101, 262_144);
    for p in packets {
        pcap_record(&mut out, p.t_us, &p.ip);
    }
    out
}

/// A pcapng section header and one raw-IP interface (µs timestamps).
fn pcapng_header() -> Vec<u8> {
    let mut out = Vec::new();
    for w in [0x0A0D_0D0Au32, 28, 0x1A2B_3C4D] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(-1i64).to_le_bytes());
    out.extend_from_slice(&28u32.to_le_bytes());
    for w in [1u32, 20, 101, 0, 20] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out
}

/// A pcapng Decryption Secrets Block holding the TLS key log `text`.
fn pcapng_secrets(out: &mut Vec<u8>, text: &str) {
    let pad = text.len().div_ceil(4) * 4;
    let total = (16 + pad + 4) as u32;
    for w in [0xAu32, total, 0x544c_534b, text.len() as u32] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(text.as_bytes());
    out.resize(out.len() + pad - text.len(), 0);
    out.extend_from_slice(&total.to_le_bytes());
}

/// A pcapng Enhanced Packet Block holding `ip`.
fn pcapng_packet(out: &mut Vec<u8>, t_us: u64, ip: &[u8]) {
    let pad = ip.len().div_ceil(4) * 4;
    let total = (28 + pad + 4) as u32;
    for w in [
        6u32,
        total,
        0,
        (t_us >> 32) as u32,
        t_us as u32,
        ip.len() as u32,
        ip.len() as u32,
    ] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(ip);
    out.resize(out.len() + pad - ip.len(), 0);
    out.extend_from_slice(&total.to_le_bytes());
}

/// The ones' complement sum of `bytes` as 16-bit words (not folded, not inverted).
fn sum16(bytes: &[u8]) -> u64 {
    let mut sum = 0u64;
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u64::from(*b) << 8;
    }
    sum
}

fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// Writes an IPv4/TCP packet with correct checksums into `out` (cleared first); the
/// payload's [`sum16`] is given, so a repeated payload is summed once.
#[allow(clippy::too_many_arguments)]
fn tcp_packet(
    out: &mut Vec<u8>,
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
    payload_sum: u64,
) {
    out.clear();
    let tcp_len = 20 + payload.len();
    let total = 20 + tcp_len;
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&(total as u16).to_be_bytes());
    out.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
    out.extend_from_slice(&src.0);
    out.extend_from_slice(&dst.0);
    let ip_sum = fold(sum16(&out[..20]));
    out[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    out.extend_from_slice(&src.1.to_be_bytes());
    out.extend_from_slice(&dst.1.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&ack.to_be_bytes());
    out.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    let pseudo = sum16(&src.0) + sum16(&dst.0) + 6 + tcp_len as u64;
    let sum = fold(pseudo + sum16(&out[20..40]) + payload_sum);
    out[36..38].copy_from_slice(&sum.to_be_bytes());
    out.extend_from_slice(payload);
}

/// A UDP/IPv4 packet with a correct checksum.
fn udp_packet(src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
    p.extend_from_slice(&src.0);
    p.extend_from_slice(&dst.0);
    let ip_sum = fold(sum16(&p[..20]));
    p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    p.extend_from_slice(&src.1.to_be_bytes());
    p.extend_from_slice(&dst.1.to_be_bytes());
    p.extend_from_slice(&(udp_len as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    let pseudo = sum16(&src.0) + sum16(&dst.0) + 17 + udp_len as u64;
    let sum = fold(pseudo + sum16(&p[20..]));
    p[26..28].copy_from_slice(&sum.to_be_bytes());
    p
}

/// Synthetic TCP flows that have nothing to do with the fetch: each a handshake, then
/// `DATA_SEGMENTS` segments of 1400 bytes from the server (one TLS application-data
/// record each) with an ACK after every second, then both FINs. [`CONCURRENT`] flows are
/// open at a time, their packets interleaved, so the capture holds far more connections
/// at once than the replay follows.
struct Bulk {
    /// Every flow's client address (`None`: a different one per flow).
    client: Option<[u8; 4]>,
    open: std::collections::VecDeque<Flow>,
    started: u32,
    flows: u32,
    payload: Vec<u8>,
    payload_sum: u64,
    buf: Vec<u8>,
    packets: u64,
    bytes: u64,
}

struct Flow {
    c: ([u8; 4], u16),
    s: ([u8; 4], u16),
    step: u32,
    c_seq: u32,
    s_seq: u32,
}

const DATA_SEGMENTS: u32 = 18;
const SEGMENT: usize = 1400;
const CONCURRENT: usize = 256;
/// Packets of one flow: SYN, SYN-ACK, ACK, the data with an ACK every second segment,
/// FIN, FIN, ACK.
const FLOW_PACKETS: u32 = 3 + DATA_SEGMENTS + DATA_SEGMENTS / 2 + 3;
/// Bytes of one flow's IP packets.
const FLOW_BYTES: u64 =
    (FLOW_PACKETS - DATA_SEGMENTS) as u64 * 40 + DATA_SEGMENTS as u64 * (40 + SEGMENT as u64);

impl Bulk {
    /// `flows` flows, [`CONCURRENT`] at a time; from `client` (each on its own port) or each
    /// from its own address.
    fn new(flows: u32, client: Option<[u8; 4]>) -> Bulk {
        Bulk::with_concurrency(flows, client, CONCURRENT)
    }

    /// [`Bulk::new`] with `concurrent` flows open at a time.
    fn with_concurrency(flows: u32, client: Option<[u8; 4]>, concurrent: usize) -> Bulk {
        let mut payload = vec![0x17, 0x03, 0x03];
        payload.extend_from_slice(&((SEGMENT - 5) as u16).to_be_bytes());
        payload.extend((0..SEGMENT - 5).map(|i| (i * 7 % 256) as u8));
        let payload_sum = sum16(&payload);
        let mut b = Bulk {
            client,
            open: Default::default(),
            started: 0,
            flows,
            payload,
            payload_sum,
            buf: Vec::with_capacity(2048),
            packets: 0,
            bytes: 0,
        };
        while b.open.len() < concurrent && b.start_flow() {}
        b
    }

    fn start_flow(&mut self) -> bool {
        if self.started >= self.flows {
            return false;
        }
        let i = self.started;
        self.started += 1;
        let (c, s) = match self.client {
            // The client's own other connections: ports below the lab's ephemeral ones,
            // servers the lab's DNS never named.
            Some(addr) => (
                (addr, 1024 + (i % 30_000) as u16),
                ([198, 51, 100, 1 + (i % 250) as u8], 443),
            ),
            None => (
                (
                    [10, 77, (i >> 8) as u8, 1 + (i % 250) as u8],
                    40_000 + (i % 20_000) as u16,
                ),
                ([192, 0, 2, 1 + (i % 250) as u8], 443),
            ),
        };
        self.open.push_back(Flow {
            c,
            s,
            step: 0,
            c_seq: i.wrapping_mul(2_654_435_761),
            s_seq: i.wrapping_mul(40_503).wrapping_add(0x8000_0000),
        });
        true
    }

    /// The next packet of the next open flow, or `None` when every flow has ended.
    fn next_packet(&mut self) -> Option<&[u8]> {
        let mut f = self.open.pop_front()?;
        let empty: &[u8] = &[];
        let data_end = 3 + DATA_SEGMENTS + DATA_SEGMENTS / 2;
        let (c, s) = (f.c, f.s);
        match f.step {
            0 => {
                tcp_packet(&mut self.buf, c, s, f.c_seq, 0, SYN, empty, 0);
                f.c_seq = f.c_seq.wrapping_add(1);
            }
            1 => {
                tcp_packet(&mut self.buf, s, c, f.s_seq, f.c_seq, SYN | ACK, empty, 0);
                f.s_seq = f.s_seq.wrapping_add(1);
            }
            2 => tcp_packet(&mut self.buf, c, s, f.c_seq, f.s_seq, ACK, empty, 0),
            k if k < data_end => {
                if (k - 3) % 3 == 2 {
                    tcp_packet(&mut self.buf, c, s, f.c_seq, f.s_seq, ACK, empty, 0);
                } else {
                    tcp_packet(
                        &mut self.buf,
                        s,
                        c,
                        f.s_seq,
                        f.c_seq,
                        ACK | PSH,
                        &self.payload,
                        self.payload_sum,
                    );
                    f.s_seq = f.s_seq.wrapping_add(SEGMENT as u32);
                }
            }
            k if k == data_end => {
                tcp_packet(&mut self.buf, s, c, f.s_seq, f.c_seq, FIN | ACK, empty, 0);
                f.s_seq = f.s_seq.wrapping_add(1);
            }
            k if k == data_end + 1 => {
                tcp_packet(&mut self.buf, c, s, f.c_seq, f.s_seq, FIN | ACK, empty, 0);
                f.c_seq = f.c_seq.wrapping_add(1);
            }
            _ => tcp_packet(&mut self.buf, s, c, f.s_seq, f.c_seq, ACK, empty, 0),
        }
        f.step += 1;
        if f.step < FLOW_PACKETS {
            self.open.push_back(f);
        } else {
            self.start_flow();
        }
        self.packets += 1;
        self.bytes += self.buf.len() as u64;
        Some(&self.buf)
    }
}

/// The capture format of a generated capture.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Pcap,
    /// pcapng, with the key log in a Decryption Secrets Block.
    Pcapng,
}

/// Writes a capture of `bulk`'s flows with the lab fetch's `packets` in the middle of
/// them: half the flows' packets, then the fetch's packets with bulk packets between
/// each two, then the rest. Timestamps never go back. Returns (bulk packets, bytes).
fn write_mixed(
    w: &mut dyn Write,
    format: Format,
    packets: &[Packet],
    key_log: &str,
    mut bulk: Bulk,
) -> io::Result<(u64, u64)> {
    let total_bulk = u64::from(bulk.flows) * u64::from(FLOW_PACKETS);
    let first = packets.first().map_or(0, |p| p.t_us);
    let last = packets.last().map_or(0, |p| p.t_us);
    let mut rec = Vec::with_capacity(2048);
    let mut emit = |w: &mut dyn Write, t_us: u64, ip: &[u8]| -> io::Result<()> {
        rec.clear();
        match format {
            Format::Pcap => pcap_record(&mut rec, t_us, ip),
            Format::Pcapng => pcapng_packet(&mut rec, t_us, ip),
        }
        w.write_all(&rec)
    };
    match format {
        Format::Pcap => w.write_all(&pcap_header(101, 262_144))?,
        Format::Pcapng => {
            let mut h = pcapng_header();
            pcapng_secrets(&mut h, key_log);
            w.write_all(&h)?;
        }
    }
    // Before the fetch: 30 s of other traffic.
    let before = total_bulk / 2;
    let step = 30_000_000 / before.max(1);
    let start = first.saturating_sub(30_000_000);
    for i in 0..before {
        let Some(ip) = bulk.next_packet() else { break };
        emit(w, start + i * step, ip)?;
    }
    // The fetch, 64 other packets between each two of its own.
    for p in packets {
        emit(w, p.t_us, &p.ip)?;
        for _ in 0..64 {
            let Some(ip) = bulk.next_packet() else { break };
            emit(w, p.t_us, ip)?;
        }
    }
    // After it: the rest, over 30 s.
    let mut t = last;
    while let Some(ip) = bulk.next_packet() {
        t += step;
        emit(w, t, ip)?;
    }
    Ok((bulk.packets, bulk.bytes))
}

// ------------------------------------------------------------------ the tests

/// xorshift64 bytes.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn a_file_that_is_not_a_capture_is_one_sentence_and_exit_3() {
    let mut f = Findings::default();
    let dir = scratch_dir("replay-not-capture");
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "text",
            b"GET / HTTP/1.1\r\nHost: www.example.test\r\n\r\n".to_vec(),
        ),
        ("empty", Vec::new()),
        ("3 bytes", b"\xd4\xc3\xb2".to_vec()),
        ("a pcap magic only", 0xa1b2_c3d4u32.to_le_bytes().to_vec()),
        ("a pcapng magic only", 0x0A0D_0D0Au32.to_le_bytes().to_vec()),
        ("random bytes", noise(200_000, 0x2545_f491_4f6c_dd1d)),
    ];
    // A pcap of a link type the reader does not decode (USB: 189).
    let mut usb = pcap_header(189, 65_535);
    pcap_record(&mut usb, 1_000_000, &[0u8; 64]);
    cases.push(("an unknown link type", usb));
    for (what, bytes) in &cases {
        let path = dir.join("input");
        std::fs::write(&path, bytes).unwrap();
        let r = replay_file(&mut f, what, &path, &[]);
        let s = exit_3(&mut f, &r);
        f.check(s.contains("capture") && r.out.stdout.is_empty(), || {
            format!("{what}: {s}; stdout: {}", r.stdout())
        });
        // The same through stdin.
        let r = replay(
            &mut f,
            &format!("{what} on stdin"),
            &["-", "--json"],
            Input::Bytes(bytes.clone()),
            SMALL_RUN,
        );
        exit_3(&mut f, &r);
        eprintln!("{what}: {s}");
    }
    let missing = dir.join("missing.pcap");
    let r = replay(
        &mut f,
        "a file that does not exist",
        &[missing.to_str().unwrap(), "--json"],
        Input::Null,
        SMALL_RUN,
    );
    let s = exit_3(&mut f, &r);
    f.check(s.contains("missing.pcap"), || format!("missing file: {s}"));
    let _ = std::fs::remove_dir_all(&dir);
    f.done("not a capture");
}

/// Whether an error message says the capture ended or was cut, not (only) that the fetch
/// failed.
fn says_the_capture_ends(message: &str) -> bool {
    let m = message.to_lowercase();
    [
        "capture ends",
        "cut short",
        "damaged",
        "capture stopped",
        "truncated",
    ]
    .iter()
    .any(|w| m.contains(w))
}

#[test]
fn a_pcapng_cut_anywhere_shows_what_came_before() {
    let mut f = Findings::default();
    let dir = scratch_dir("replay-cut");
    let lab = lab_capture(&dir, "page", "https://www.example.test/", 7, &[]);
    let data = std::fs::read(&lab.pcapng).unwrap();
    let blocks = pcapng_blocks(&data);
    let epbs: Vec<(usize, usize)> = blocks
        .iter()
        .filter(|b| b.1 == 6)
        .map(|b| (b.0, b.2))
        .collect();
    let first_packet = epbs[0].0;
    let path = dir.join("cut.pcapng");
    // A cut inside the section header: nothing to read at all.
    for cut in [9, 20] {
        std::fs::write(&path, &data[..cut]).unwrap();
        let what = format!("cut at {cut} (section header)");
        let r = replay_file(&mut f, &what, &path, &[]);
        let s = exit_3(&mut f, &r);
        f.check(s.contains("damaged or cut short"), || {
            format!("{what}: {s}")
        });
    }
    // Cuts in the interface and secrets blocks, and at four places in every packet block.
    let mut cuts: Vec<(usize, usize)> = Vec::new(); // (offset, whole packets before it)
    for &(at, kind, len) in &blocks {
        if kind != 6 && at > 0 {
            cuts.push((at + 6, 0));
            cuts.push((at + len / 2, 0));
        }
    }
    for (i, &(at, len)) in epbs.iter().enumerate() {
        for cut in [at + 6, at + 30, at + len / 2, at + len - 1] {
            cuts.push((cut, i));
        }
    }
    // What each cut gives must be what the packets before it give in a file that ends
    // cleanly there, plus a note that the capture is damaged; where that is a failure (the
    // fetch cut mid-way) the error must say the capture ends, not blame the client or the
    // server.
    let clean_path = dir.join("clean.pcapng");
    let mut failures = BTreeSet::new();
    for (cut, before) in cuts {
        std::fs::write(&path, &data[..cut]).unwrap();
        let what = format!(
            "cut at byte {cut} of {} (after {before} whole packets)",
            data.len()
        );
        let r = replay_file(&mut f, &what, &path, &[]);
        f.check(damage_said(&r), || {
            format!(
                "{what}: neither a note nor the error says the capture is damaged: {:?}",
                r.events().last()
            )
        });
        let shown = of_type(&r.events(), "packet").len();
        f.check(shown == before, || {
            format!("{what}: {shown} packets shown, not {before}")
        });
        let end = terminal(&mut f, &r);
        if before == 0 {
            exit_3(&mut f, &r);
        } else {
            let clean_end = epbs[before - 1].0 + epbs[before - 1].1;
            std::fs::write(&clean_path, &data[..clean_end.max(first_packet)]).unwrap();
            let clean = replay_file(
                &mut f,
                &format!("a clean end after {before} packets"),
                &clean_path,
                &[],
            );
            let ce = terminal(&mut f, &clean);
            let got = (r.code(), &end["type"], &end["phase"], &end["status"]);
            let want = (clean.code(), &ce["type"], &ce["phase"], &ce["status"]);
            f.check(got == want, || {
                format!("{what}: ends in {got:?}, the packets before the cut in {want:?}")
            });
        }
        if end["type"] == "error" {
            let message = end["message"].as_str().unwrap_or_default().to_string();
            failures.insert((r.code(), message.clone()));
            f.check(says_the_capture_ends(&message), || {
                format!(
                    "{what}: exit {}: the error does not say the capture is cut: {message}",
                    r.code()
                )
            });
            f.check([3, 4, 5, 6, 7].contains(&r.code()), || {
                format!("{what}: exit {}", r.code())
            });
        } else if end["type"] == "done" {
            f.check(r.code() == 0, || format!("{what}: done, exit {}", r.code()));
            f.check(end["body_sha256"] == lab.done["body_sha256"], || {
                format!("{what}: done with another digest: {end}")
            });
        }
    }
    eprintln!("what cut captures end in: {failures:#?}");
    let _ = std::fs::remove_dir_all(&dir);
    f.done("cut pcapng");
}

#[test]
fn lengths_that_lie_are_errors_not_allocations() {
    let mut f = Findings::default();
    let dir = scratch_dir("replay-lengths");
    let lab = lab_capture(&dir, "page", "https://www.example.test/", 8, &[]);
    let data = std::fs::read(&lab.pcapng).unwrap();
    let (packets, key_log) = read_pcapng(&data);
    let keys = dir.join("keys.log");
    std::fs::write(&keys, &key_log).unwrap();
    let keys = keys.to_str().unwrap().to_string();
    let path = dir.join("lies.pcap");
    // pcap: a record claiming 0xFFFFFFF0 (or 16 Mi) bytes, first or after the whole fetch.
    for (what, len, after_fetch) in [
        (
            "pcap: the first record claims 0xFFFFFFF0 bytes",
            0xFFFF_FFF0u32,
            false,
        ),
        ("pcap: the first record claims 16 MiB", 16 << 20, false),
        (
            "pcap: a record after the fetch claims 0xFFFFFFF0 bytes",
            0xFFFF_FFF0,
            true,
        ),
    ] {
        let mut file = if after_fetch {
            pcap_of(&packets)
        } else {
            pcap_header(101, 262_144)
        };
        let t = packets.last().map_or(0, |p| p.t_us + 1);
        pcap_record_header(&mut file, t, len, len);
        file.extend_from_slice(&[0x45; 100]);
        std::fs::write(&path, &file).unwrap();
        let r = replay_file(&mut f, what, &path, &["--keylog", &keys]);
        f.check(r.peak_kib < MEMORY_BOUND_KIB, || {
            format!("{what}: peak memory {} KiB", r.peak_kib)
        });
        f.check(damage_said(&r), || {
            format!(
                "{what}: neither a note nor the error says the capture is damaged: {:?}",
                r.events().last()
            )
        });
        let end = terminal(&mut f, &r);
        if after_fetch {
            f.check(r.code() == 0, || format!("{what}: exit {}", r.code()));
            f.check(end["body_sha256"] == lab.done["body_sha256"], || {
                format!("{what}: {end}")
            });
        } else {
            let s = exit_3(&mut f, &r);
            let message = end["message"].as_str().unwrap_or_default();
            f.check(
                says_the_capture_ends(message) || says_the_capture_ends(&s),
                || format!("{what}: neither the error nor stderr says the capture is damaged: {s}"),
            );
            eprintln!("{what}: {s}; peak {} KiB", r.peak_kib);
        }
    }
    // pcapng: the fifth packet block's length, captured length or interface lies.
    let epbs: Vec<usize> = pcapng_blocks(&data)
        .iter()
        .filter(|b| b.1 == 6)
        .map(|b| b.0)
        .collect();
    let path = dir.join("lies.pcapng");
    for (what, field, value) in [
        ("pcapng: block length 0", 4, 0u32),
        ("pcapng: block length 8", 4, 8),
        ("pcapng: block length 13", 4, 13),
        ("pcapng: block length 0xFFFFFFF0", 4, 0xFFFF_FFF0),
        ("pcapng: block length 2 MiB", 4, 2 << 20),
        ("pcapng: captured length 0xFFFFFFF0", 20, 0xFFFF_FFF0),
        ("pcapng: interface 7 of 1", 8, 7),
    ] {
        let mut file = data.clone();
        let at = epbs[4] + field;
        file[at..at + 4].copy_from_slice(&value.to_le_bytes());
        std::fs::write(&path, &file).unwrap();
        let r = replay_file(&mut f, what, &path, &[]);
        f.check(r.peak_kib < MEMORY_BOUND_KIB, || {
            format!("{what}: peak memory {} KiB", r.peak_kib)
        });
        f.check(damage_said(&r), || {
            format!(
                "{what}: neither a note nor the error says the capture is damaged: {:?}",
                r.events().last()
            )
        });
        let shown = of_type(&r.events(), "packet").len();
        f.check(shown == 4, || {
            format!("{what}: {shown} packets shown, not 4")
        });
        let end = terminal(&mut f, &r);
        let message = end["message"].as_str().unwrap_or_default();
        f.check(
            end["type"] == "error" && says_the_capture_ends(message),
            || {
                format!(
                    "{what}: exit {}: the error does not say the capture is cut: {end}",
                    r.code()
                )
            },
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    f.done("lengths that lie");
}

#[test]
fn a_capture_cut_to_its_snap_length_says_so() {
    let mut f = Findings::default();
    let dir = scratch_dir("replay-snaplen");
    let lab = lab_capture(&dir, "page", "https://www.example.test/", 9, &[]);
    let data = std::fs::read(&lab.pcapng).unwrap();
    let (packets, _) = read_pcapng(&data);
    let mut files = Vec::new();
    // Built here: every record keeps its first 64 bytes and says how long it was.
    let mut cut = pcap_header(101, 64);
    for p in &packets {
        let keep = p.ip.len().min(64);
        pcap_record_header(&mut cut, p.t_us, keep as u32, p.ip.len() as u32);
        cut.extend_from_slice(&p.ip[..keep]);
    }
    let built = dir.join("snap64-built.pcap");
    std::fs::write(&built, &cut).unwrap();
    files.push(("built: incl_len 64 < orig_len", built));
    if have("editcap") {
        let out = dir.join("snap64-editcap.pcapng");
        let status = Command::new("editcap")
            .args(["-s", "64"])
            .arg(&lab.pcapng)
            .arg(&out)
            .status()
            .expect("run editcap");
        assert!(status.success(), "editcap -s 64");
        files.push(("editcap -s 64", out));
    } else {
        eprintln!("editcap not found: only the capture built here is cut to 64 bytes");
    }
    for (what, path) in files {
        let r = replay_file(&mut f, what, &path, &[]);
        f.check(has_note(&r, &["snap length"]), || {
            format!("{what}: no note says packets were cut: {:?}", notes(&r))
        });
        let shown = of_type(&r.events(), "packet").len();
        f.check(shown == packets.len(), || {
            format!("{what}: {shown} of {} packets shown", packets.len())
        });
        let end = terminal(&mut f, &r);
        // The response is not in 64-byte packets: no digest may be claimed.
        f.check(end["type"] == "error", || format!("{what}: {end}"));
        f.check([3, 6, 7].contains(&r.code()), || {
            format!("{what}: exit {}: {}", r.code(), r.stderr())
        });
        eprintln!("{what}: exit {}: {}", r.code(), sentence(&r));
    }
    let _ = std::fs::remove_dir_all(&dir);
    f.done("snap length");
}

#[test]
fn a_capture_of_only_unrelated_traffic_holds_no_fetch() {
    let mut f = Findings::default();
    let dir = scratch_dir("replay-unrelated");
    let t0 = 1_700_000_000_000_000u64;
    // UDP to the discard port.
    let mut udp = pcap_header(101, 65_535);
    for i in 0..500u64 {
        let p = udp_packet(([10, 1, 0, 1], 40_000), ([10, 1, 0, 2], 9), &[i as u8; 200]);
        pcap_record(&mut udp, t0 + i * 1000, &p);
    }
    // Ethernet: ARP frames and UDP to port 9.
    let mut eth = pcap_header(1, 65_535);
    for i in 0..100u64 {
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        arp.extend_from_slice(&[0u8; 28]);
        pcap_record(&mut eth, t0 + i * 1000, &arp);
        let mut frame = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        frame.extend(udp_packet(
            ([10, 1, 0, 1], 40_000),
            ([10, 1, 0, 2], 9),
            b"discard",
        ));
        pcap_record(&mut eth, t0 + 500 + i * 1000, &frame);
    }
    // TCP segments of a connection whose start is not in the capture.
    let mut mid = pcap_header(101, 65_535);
    let mut buf = Vec::new();
    for i in 0..50u32 {
        let payload = b"0123456789";
        tcp_packet(
            &mut buf,
            ([10, 1, 0, 1], 40_001),
            ([10, 1, 0, 2], 8080),
            1000 + i * 10,
            5,
            ACK | PSH,
            payload,
            sum16(payload),
        );
        pcap_record(&mut mid, t0 + u64::from(i) * 1000, &buf);
    }
    for (what, bytes) in [
        ("UDP to port 9", udp),
        ("Ethernet: ARP and UDP to port 9", eth),
        ("the middle of a TCP connection", mid),
    ] {
        let path = dir.join("unrelated.pcap");
        std::fs::write(&path, &bytes).unwrap();
        let r = replay_file(&mut f, what, &path, &[]);
        let s = exit_3(&mut f, &r);
        f.check(s.contains("no fetch"), || format!("{what}: {s}"));
        let shown = of_type(&r.events(), "packet").len();
        f.check(shown == 0, || format!("{what}: {shown} packets shown"));
        eprintln!("{what}: {s}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    f.done("unrelated traffic");
}

/// `n` NSS key log lines of every label, with random client randoms and secrets.
fn random_key_log(n: usize, seed: u64) -> String {
    let bytes = noise(n * 80, seed);
    let labels = [
        "CLIENT_RANDOM",
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
        "EXPORTER_SECRET",
    ];
    let mut out = String::new();
    for (i, chunk) in bytes.chunks_exact(80).enumerate() {
        let label = labels[i % labels.len()];
        out.push_str(&format!(
            "{label} {} {}\n",
            hex::encode(&chunk[..32]),
            hex::encode(&chunk[32..])
        ));
    }
    out
}

#[test]
fn a_key_log_that_does_not_match_completes_with_status_unknown() {
    let mut f = Findings::default();
    let dir = scratch_dir("replay-wrong-keys");
    let lab = lab_capture(&dir, "page", "https://www.example.test/", 10, &[]);
    let (packets, _) = read_pcapng(&std::fs::read(&lab.pcapng).unwrap());
    let pcap = dir.join("nokeys.pcap");
    std::fs::write(&pcap, pcap_of(&packets)).unwrap();
    let keys = dir.join("random.log");
    std::fs::write(&keys, random_key_log(60, 0x1234_5678)).unwrap();
    let keys = keys.to_str().unwrap();
    let r = replay_file(&mut f, "random secrets", &pcap, &["--keylog", keys]);
    f.check(r.code() == 0, || {
        format!("random secrets: exit {}: {}", r.code(), r.stderr())
    });
    let end = terminal(&mut f, &r);
    f.check(
        end["type"] == "done" && end["status"] == 0 && end["body_sha256"] == "",
        || format!("random secrets: not done with status unknown and no digest: {end}"),
    );
    f.check(has_note(&r, &["encrypted", "no key log", "match"]), || {
        format!(
            "random secrets: no note says the records cannot be decrypted: {:?}",
            notes(&r)
        )
    });
    // The same keys beside the right ones (the capture's secrets block): decrypted.
    let r = replay_file(
        &mut f,
        "random secrets and the right ones",
        &lab.pcapng,
        &["--keylog", keys],
    );
    let end = terminal(&mut f, &r);
    f.check(
        r.code() == 0 && end["body_sha256"] == lab.done["body_sha256"],
        || format!("random secrets and the right ones: {end}"),
    );
    let _ = std::fs::remove_dir_all(&dir);
    f.done("key log that does not match");
}

#[test]
fn a_key_log_full_of_garbage_is_skipped_or_one_sentence() {
    let mut f = Findings::default();
    let dir = scratch_dir("replay-garbage-keys");
    let lab = lab_capture(&dir, "page", "https://www.example.test/", 11, &[]);
    let (packets, _) = read_pcapng(&std::fs::read(&lab.pcapng).unwrap());
    let pcap = dir.join("nokeys.pcap");
    std::fs::write(&pcap, pcap_of(&packets)).unwrap();
    // Text that is not a key log: labels without secrets, bad hex, secrets of odd
    // lengths, long lines, the fields swapped, non-ASCII; 6 MiB, over the 4 MiB kept.
    let mut text = String::new();
    let mut i = 0usize;
    while text.len() < 6 << 20 {
        let line = match i % 8 {
            0 => "CLIENT_RANDOM".to_string(),
            1 => format!("CLIENT_RANDOM {} zz", "ab".repeat(i % 40)),
            2 => format!(
                "SERVER_TRAFFIC_SECRET_0 {} {}",
                "0".repeat(63),
                "f".repeat(95)
            ),
            3 => "# a comment\t\t with tabs".to_string(),
            4 => "x".repeat(5000 + i % 3000),
            5 => format!(
                "{} CLIENT_TRAFFIC_SECRET_0 {}",
                "00".repeat(32),
                "11".repeat(48)
            ),
            6 => "\u{feff}CLIENT_RANDOM ü ß ∞".to_string(),
            _ => "   ".to_string(),
        };
        text.push_str(&line);
        text.push_str(if i.is_multiple_of(3) { "\r\n" } else { "\n" });
        i += 1;
    }
    let garbage = dir.join("garbage.log");
    std::fs::write(&garbage, &text).unwrap();
    let garbage = garbage.to_str().unwrap().to_string();
    let what = "a garbage key log, no keys in the capture";
    let r = replay_file(&mut f, what, &pcap, &["--keylog", &garbage]);
    let end = terminal(&mut f, &r);
    f.check(r.code() == 0 && end["status"] == 0, || {
        format!("{what}: exit {}: {end} {}", r.code(), r.stderr())
    });
    f.check(has_note(&r, &["no key log"]), || {
        format!("{what}: {:?}", notes(&r))
    });
    let what = "a garbage key log, the keys in the capture";
    let r = replay_file(&mut f, what, &lab.pcapng, &["--keylog", &garbage]);
    let end = terminal(&mut f, &r);
    f.check(
        r.code() == 0 && end["body_sha256"] == lab.done["body_sha256"],
        || format!("{what}: exit {}: {end} {}", r.code(), r.stderr()),
    );
    // Bytes that are not even text: skipped, or one sentence saying so.
    let bin = dir.join("binary.log");
    std::fs::write(&bin, noise(300_000, 0x9e37_79b9_7f4a_7c15)).unwrap();
    let what = "a binary key log";
    let r = replay_file(
        &mut f,
        what,
        &lab.pcapng,
        &["--keylog", bin.to_str().unwrap()],
    );
    match r.code() {
        0 => {
            let end = terminal(&mut f, &r);
            f.check(end["body_sha256"] == lab.done["body_sha256"], || {
                format!("{what}: {end}")
            });
        }
        3 => {
            let s = sentence(&r);
            f.check(s.contains("key log") && s.contains("binary.log"), || {
                format!("{what}: {s}")
            });
            eprintln!("{what}: {s}");
        }
        other => f.check(false, || format!("{what}: exit {other}: {}", r.stderr())),
    }
    let _ = std::fs::remove_dir_all(&dir);
    f.done("garbage key log");
}

#[test]
fn selections_that_keep_nothing_are_exit_3_naming_the_option() {
    let mut f = Findings::default();
    let dir = scratch_dir("replay-select");
    let lab = lab_capture(&dir, "page", "https://www.example.test/", 12, &[]);
    let digest = lab.done["body_sha256"].clone();

    for addr in ["192.0.2.77", "2001:db8::1"] {
        let what = format!("--client-addr {addr}, not in the capture");
        let r = replay_file(&mut f, &what, &lab.pcapng, &["--client-addr", addr]);
        let s = exit_3(&mut f, &r);
        f.check(s.contains("--client-addr") && s.contains(addr), || {
            format!("{what}: the sentence does not name --client-addr and {addr}: {s}")
        });
        let shown = of_type(&r.events(), "packet").len();
        f.check(shown == 0, || format!("{what}: {shown} packets shown"));
    }

    let what = "--host not in the capture";
    let r = replay_file(
        &mut f,
        what,
        &lab.pcapng,
        &["--host", "nowhere.example.test"],
    );
    let s = exit_3(&mut f, &r);
    f.check(
        s.contains("nowhere.example.test") && s.contains("--host"),
        || format!("{what}: {s}"),
    );

    for (what, window) in [
        ("--from after the end", vec!["--from", "100"]),
        ("--until 0", vec!["--until", "0"]),
        (
            "--from = --until",
            vec!["--from", "0.01", "--until", "0.01"],
        ),
        ("--from after --until", vec!["--from", "5", "--until", "1"]),
    ] {
        let r = replay_file(&mut f, what, &lab.pcapng, &window);
        // A window that ends before it begins may be refused as a usage error.
        let s = if r.code() == 2 && window.contains(&"5") {
            sentence(&r)
        } else {
            exit_3(&mut f, &r)
        };
        f.check(
            s.contains("--from") || s.contains("--until") || s.contains("time range"),
            || format!("{what}: the sentence does not say the time window kept nothing: {s}"),
        );
        let shown = of_type(&r.events(), "packet").len();
        f.check(shown == 0, || format!("{what}: {shown} packets shown"));
    }

    // A window around the whole fetch, the right client, the right host: the fetch.
    for (what, args) in [
        ("--from 0 --until 60", vec!["--from", "0", "--until", "60"]),
        (
            "--client-addr the lab's client",
            vec!["--client-addr", "10.88.1.2"],
        ),
        ("--host the lab's", vec!["--host", "www.example.test"]),
        (
            "--host in other case, --client-addr and --until",
            vec![
                "--host",
                "WWW.Example.Test.",
                "--client-addr",
                "10.88.1.2",
                "--until",
                "60",
            ],
        ),
    ] {
        let r = replay_file(&mut f, what, &lab.pcapng, &args);
        let end = terminal(&mut f, &r);
        f.check(
            r.code() == 0 && end["status"] == 200 && end["body_sha256"] == digest,
            || format!("{what}: exit {}: {end} {}", r.code(), r.stderr()),
        );
    }

    // --host reads the file twice: not stdin.
    let r = replay(
        &mut f,
        "--host with stdin",
        &["-", "--host", "www.example.test", "--json"],
        Input::Bytes(std::fs::read(&lab.pcapng).unwrap()),
        SMALL_RUN,
    );
    let s = sentence(&r);
    f.check(
        r.code() == 2 && s.contains("--host") && s.contains("stdin"),
        || format!("--host with stdin: exit {}: {s}", r.code()),
    );
    let _ = std::fs::remove_dir_all(&dir);
    f.done("selections");
}

/// The size of the capture streamed through stdin, MiB. Generating and replaying it is
/// quick even in a debug build (measured on the 2-core test machine: 1 GiB, 40,488 other
/// flows, 1.34 M packets, written at ~430 MiB/s and replayed at ~300 MiB/s — 3.4 s — with
/// a peak of 11.8 MiB), so it is always the full gigabyte, never a smaller stand-in.
const STREAM_MIB: u64 = 1024;

/// A lab fetch of `/bytes/30000`: the capture, its packets and key log.
fn bytes_fetch(dir: &Path, seed: u64) -> (Lab, Vec<Packet>, String) {
    let lab = lab_capture(
        dir,
        "bytes",
        "https://www.example.test/bytes/30000",
        seed,
        &[],
    );
    assert_eq!(
        lab.done["body_sha256"].as_str(),
        Some(sha256_hex(&lab_bytes(30_000)).as_str())
    );
    let (packets, key_log) = read_pcapng(&std::fs::read(&lab.pcapng).unwrap());
    assert!(!key_log.is_empty(), "the lab's capture carries its secrets");
    (lab, packets, key_log)
}

/// Checks a big replay: the fetch, found among the other flows, in bounded memory.
fn check_found(f: &mut Findings, r: &Run, lab: &Lab, fetch_packets: usize, left_out: u64) {
    let what = &r.what;
    f.check(r.input_error.is_none(), || {
        format!("{what}: the replay stopped reading: {:?}", r.input_error)
    });
    let end = terminal(f, r);
    let digest = sha256_hex(&lab_bytes(30_000));
    f.check(
        r.code() == 0 && end["status"] == 200 && end["body_sha256"] == digest.as_str(),
        || format!("{what}: exit {}: {end} {}", r.code(), r.stderr()),
    );
    f.check(
        end["packets_tx"] == lab.done["packets_tx"] && end["packets_rx"] == lab.done["packets_rx"],
        || format!("{what}: the packet counts differ from the live fetch's: {end}"),
    );
    let shown = of_type(&r.events(), "packet").len();
    f.check(shown == fetch_packets, || {
        format!("{what}: {shown} packets shown, the fetch has {fetch_packets}")
    });
    let left = format!("{left_out} packets of other");
    f.check(left_out == 0 || has_note(r, &[&left]), || {
        format!(
            "{what}: no note says {left_out} packets were left out: {:?}",
            notes(r)
        )
    });
    f.check(r.peak_kib > 0 && r.peak_kib < MEMORY_BOUND_KIB, || {
        format!(
            "{what}: peak memory {} KiB (bound {MEMORY_BOUND_KIB} KiB)",
            r.peak_kib
        )
    });
}

#[test]
fn a_gigabyte_through_stdin_streams_in_bounded_memory() {
    let mut f = Findings::default();
    let dir = scratch_dir("replay-stream");
    let (lab, packets, key_log) = bytes_fetch(&dir, 13);
    let keys = dir.join("keys.log");
    std::fs::write(&keys, &key_log).unwrap();
    let mib = STREAM_MIB;
    let flows = ((mib << 20) / FLOW_BYTES) as u32;
    let bulk_packets = u64::from(flows) * u64::from(FLOW_PACKETS);
    // How fast this machine writes the capture with no replay reading it (a tenth of it).
    let t = Instant::now();
    let (_, written) = write_mixed(
        &mut io::sink(),
        Format::Pcap,
        &packets,
        &key_log,
        Bulk::new(flows / 10, None),
    )
    .unwrap();
    let gen_rate = written as f64 / t.elapsed().as_secs_f64() / f64::from(1 << 20);
    let fetch = packets.clone();
    let log = key_log.clone();
    let generated = std::sync::Arc::new(std::sync::Mutex::new((0u64, 0u64)));
    let counts = generated.clone();
    let r = replay(
        &mut f,
        &format!("{mib} MiB of pcap, {flows} other clients' flows, through stdin"),
        &[
            "-",
            "--client-addr",
            "10.88.1.2",
            "--keylog",
            keys.to_str().unwrap(),
            "--json",
        ],
        Input::Stream(Box::new(move |w| {
            let n = write_mixed(w, Format::Pcap, &fetch, &log, Bulk::new(flows, None))?;
            *counts.lock().unwrap() = n;
            Ok(())
        })),
        STREAM_RUN,
    );
    let (sent, bytes) = *generated.lock().unwrap();
    eprintln!(
        "{}: {} MiB ({sent} other packets) replayed in {:.1} s ({:.0} MiB/s; writing alone {gen_rate:.0} MiB/s), peak memory {} KiB",
        r.what,
        bytes >> 20,
        r.elapsed.as_secs_f64(),
        bytes as f64 / r.elapsed.as_secs_f64() / f64::from(1 << 20),
        r.peak_kib
    );
    f.check(sent == bulk_packets, || {
        format!("{sent} of {bulk_packets} other packets written")
    });
    check_found(&mut f, &r, &lab, packets.len(), bulk_packets);
    let _ = std::fs::remove_dir_all(&dir);
    f.done("a gigabyte through stdin");
}

#[test]
fn the_clients_own_other_flows_with_host_stay_bounded() {
    let mut f = Findings::default();
    let dir = scratch_dir("replay-host-flows");
    let (lab, packets, key_log) = bytes_fetch(&dir, 14);
    // Small ones first: the fetch alone in a pcapng written here (the writer is right),
    // then among 500 of the client's other flows, 8 and then 256 of them open at a time
    // (the replay follows at most 64 connections: does it lose the fetch's?).
    for (flows, concurrent) in [(0, 1), (500, 8), (500, CONCURRENT)] {
        let path = dir.join("small.pcapng");
        let mut file = Vec::new();
        let (sent, _) = write_mixed(
            &mut file,
            Format::Pcapng,
            &packets,
            &key_log,
            Bulk::with_concurrency(flows, Some(LAB_CLIENT), concurrent),
        )
        .unwrap();
        std::fs::write(&path, &file).unwrap();
        let r = replay(
            &mut f,
            &format!(
                "the fetch among {flows} more flows of the client, {concurrent} at a time, --host"
            ),
            &[
                path.to_str().unwrap(),
                "--host",
                "www.example.test",
                "--json",
            ],
            Input::Null,
            SMALL_RUN,
        );
        check_found(&mut f, &r, &lab, packets.len(), sent);
    }
    // ~100 MiB in a file (--host reads it twice), pcapng with the secrets inside; every
    // other flow is the lab client's own, to servers its lookups never named.
    let flows = ((100u64 << 20) / FLOW_BYTES) as u32;
    let path = dir.join("busy-client.pcapng");
    let mut w = BufWriter::new(std::fs::File::create(&path).unwrap());
    let (sent, bytes) = write_mixed(
        &mut w,
        Format::Pcapng,
        &packets,
        &key_log,
        Bulk::new(flows, Some(LAB_CLIENT)),
    )
    .unwrap();
    w.flush().unwrap();
    drop(w);
    let file = path.to_str().unwrap();
    let r = replay(
        &mut f,
        &format!(
            "{} MiB pcapng, {flows} more flows of the client, --host",
            bytes >> 20
        ),
        &[file, "--host", "www.example.test", "--json"],
        Input::Null,
        STREAM_RUN,
    );
    eprintln!(
        "{}: replayed in {:.1} s, peak memory {} KiB",
        r.what,
        r.elapsed.as_secs_f64(),
        r.peak_kib
    );
    check_found(&mut f, &r, &lab, packets.len(), sent);
    // Without --host every connection of the client is followed (the trace not printed):
    // still bounded.
    let r = replay(
        &mut f,
        &format!(
            "{} MiB pcapng, {flows} more flows of the client, all followed",
            bytes >> 20
        ),
        &[file, "-s"],
        Input::Null,
        STREAM_RUN,
    );
    eprintln!(
        "{}: exit {} in {:.1} s, peak memory {} KiB: {}",
        r.what,
        r.code(),
        r.elapsed.as_secs_f64(),
        r.peak_kib,
        r.stderr().trim()
    );
    f.check(r.peak_kib > 0 && r.peak_kib < MEMORY_BOUND_KIB, || {
        format!("{}: peak memory {} KiB", r.what, r.peak_kib)
    });
    let _ = std::fs::remove_dir_all(&dir);
    f.done("the client's own flows");
}
