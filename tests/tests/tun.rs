//! End-to-end tests of `fetchscope fetch --tun` in the namespace lab (`scripts/netns-lab.sh`):
//! real nginx and dnsmasq in one network namespace, the TUN device and IP forwarding in
//! another, and fetchscope's own stack on the far side of the TUN device.
//!
//! Every test brings a lab up with its own state directory and takes it down with
//! `down --purge` when it ends, also when it panics (a drop guard). The lab's names come
//! from the prefix [`PREFIX`] (namespaces `fstun-srv`/`fstun-cli`, TUN `fstun0`), which no
//! other test binary uses, and a global mutex runs this file's tests one at a time: so the
//! tests never meet another lab, not even one a person has up (`fsc-*`) while they run.
//!
//! They need root, `/dev/net/tun`, iproute2, nginx, dnsmasq and openssl, and some of them
//! tcpdump, tshark, python3 and setpriv. Without them a test says why and skips, except
//! under `CI=true`, where a missing prerequisite fails it (`scripts/test.sh` installs them
//! when run as root).

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use fetchscope_tests::netns::{
    Background, COMMAND_LIMIT, FETCH_TIMEOUT_SECS, NsLab, Scratch, lab_prerequisites, output_within,
};
use fetchscope_tests::{code, events, fetchscope_bin, have, in_ci, is_root, of_type, require};
use serde_json::Value;

/// The lab's name prefix for this test binary (see `FSC_LAB_PREFIX` in netns-lab.sh).
const PREFIX: &str = "fstun";

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a completed fetch (exit 0) and returns its NDJSON events.
fn completed(out: &Output, what: &str) -> Vec<Value> {
    assert_eq!(code(out), 0, "{what}: stderr:\n{}", stderr_of(out));
    events(&out.stdout)
}

/// The single `done` event.
fn done_event(ev: &[Value]) -> &Value {
    let done = of_type(ev, "done");
    assert_eq!(done.len(), 1, "one done event expected");
    done[0]
}

/// SHA-256 of a file, lower-case hex, read in pieces.
fn file_sha256(path: &Path) -> String {
    use sha2::Digest;
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

/// The phases in the order the `phase` events name them.
fn phases(ev: &[Value]) -> Vec<String> {
    of_type(ev, "phase")
        .iter()
        .filter_map(|e| e["phase"].as_str().map(String::from))
        .collect()
}

// ------------------------------------------------------------------ body digests

/// The lab's home page through TUN: every phase, the address dnsmasq gave, and a body
/// whose digest is the one of the file nginx served; then the same fetch as text, the
/// way a person runs the command `netns-lab.sh up` prints.
#[test]
fn page_through_tun_is_the_file_nginx_served() {
    let Some(lab) = NsLab::up(PREFIX) else { return };
    let out = output_within(lab.fetch("/", &["--json"]), COMMAND_LIMIT);
    let ev = completed(&out, "fetch of /");
    assert_eq!(
        phases(&ev),
        [
            "resolve", "connect", "tls", "request", "response", "teardown", "done"
        ]
    );
    let answers: Vec<&Value> = of_type(&ev, "dns")
        .into_iter()
        .filter(|e| e["event"] == "answer")
        .collect();
    assert_eq!(answers.len(), 1, "one DNS answer");
    assert_eq!(answers[0]["addresses"][0], lab.var("FSC_SERVER_ADDR"));
    assert_eq!(answers[0]["server"], lab.var("FSC_DNS"));
    let done = done_event(&ev);
    assert_eq!(done["status"], 200);
    assert_eq!(done["body_bytes"], lab.file_len("www/index.html"));
    assert_eq!(done["body_sha256"], lab.expected_sha256("www/index.html"));
    let states: Vec<&str> = of_type(&ev, "tcp_state")
        .iter()
        .filter_map(|e| e["to"].as_str())
        .collect();
    assert!(states.contains(&"ESTABLISHED"), "{states:?}");
    assert_eq!(states.last(), Some(&"TIME-WAIT"), "{states:?}");
    let stack = lab.var("FSC_STACK_ADDR").split('/').next().unwrap_or("");
    for p in of_type(&ev, "packet") {
        let (src, dst) = (&p["ip"]["src"], &p["ip"]["dst"]);
        assert!(
            src == stack || dst == stack,
            "a packet not to or from the stack: {p}"
        );
    }

    let out = output_within(lab.fetch("/", &[]), COMMAND_LIMIT);
    assert_eq!(code(&out), 0, "text fetch: {}", stderr_of(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for heading in [
        "1. DNS lookup",
        "2. TCP handshake",
        "3. TLS handshake",
        "4. HTTP request",
        "5. HTTP response",
        "6. Connection teardown",
    ] {
        assert!(text.contains(heading), "no '{heading}' in:\n{text}");
    }
    assert!(
        text.contains(&lab.expected_sha256("www/index.html")),
        "{text}"
    );
}

/// 16 MiB through TUN with `-o`: the file written and the digest reported both match
/// nginx's file.
#[test]
fn sixteen_mib_through_tun_match_nginx_file() {
    let Some(lab) = NsLab::up(PREFIX) else { return };
    let dir = Scratch::new("tun-16m");
    let body = dir.join("16M.bin");
    let out = output_within(
        lab.fetch(
            "/files/16M.bin",
            &["--json", "-o", body.to_str().expect("utf-8 path")],
        ),
        COMMAND_LIMIT,
    );
    let ev = completed(&out, "fetch of /files/16M.bin");
    let expected = lab.expected_sha256("www/files/16M.bin");
    let done = done_event(&ev);
    assert_eq!(done["status"], 200);
    assert_eq!(done["body_bytes"], 16 * 1024 * 1024);
    assert_eq!(done["body_sha256"], expected);
    assert_eq!(file_sha256(&body), expected, "the -o file");
}

/// 64 MiB written to a file through TUN (text output, as a person would run it).
#[test]
fn sixty_four_mib_download_to_a_file_has_the_right_digest() {
    let Some(lab) = NsLab::up(PREFIX) else { return };
    let dir = Scratch::new("tun-64m");
    let body = dir.join("64M.bin");
    let mut cmd = lab.fetch(
        "/files/64M.bin",
        &["-o", body.to_str().expect("utf-8 path")],
    );
    // Every packet is a line of text: keep only the end.
    cmd.arg("--color").arg("never");
    let out = output_within(cmd, COMMAND_LIMIT);
    assert_eq!(code(&out), 0, "stderr:\n{}", stderr_of(&out));
    assert_eq!(
        fs::metadata(&body).expect("the -o file").len(),
        64 * 1024 * 1024
    );
    let expected = lab.expected_sha256("www/files/64M.bin");
    assert_eq!(file_sha256(&body), expected, "the -o file");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("sha256 {expected}")),
        "the summary names the digest"
    );
}

// ------------------------------------------------------------------ kernel capture

/// One packet as both sides describe it, for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    /// Sent by fetchscope's stack (source address = the stack's).
    tx: bool,
    proto: Proto,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Proto {
    Tcp {
        src_port: u16,
        flags: Vec<String>,
        seq: u32,
        ack: u32,
        len: u32,
    },
    Udp {
        src_port: u16,
        dns_id: Option<u16>,
    },
    Other,
}

/// TCP flag names in one fixed order, so both sides compare equal.
const FLAG_ORDER: [&str; 8] = ["CWR", "ECE", "URG", "ACK", "PSH", "RST", "SYN", "FIN"];

fn sorted_flags(mut flags: Vec<String>) -> Vec<String> {
    flags.sort_by_key(|f| FLAG_ORDER.iter().position(|x| x == f).unwrap_or(99));
    flags
}

/// fetchscope's packet events as [`Seen`]s.
fn seen_by_fetchscope(ev: &[Value]) -> Vec<Seen> {
    of_type(ev, "packet")
        .iter()
        .map(|p| {
            let tx = p["dir"] == "tx";
            let num = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("not a number: {p}"));
            let proto = if p["tcp"].is_object() {
                let t = &p["tcp"];
                Proto::Tcp {
                    src_port: num(&t["src_port"]) as u16,
                    flags: sorted_flags(
                        t["flags"]
                            .as_array()
                            .expect("tcp.flags")
                            .iter()
                            .filter_map(|f| f.as_str().map(String::from))
                            .collect(),
                    ),
                    seq: num(&t["seq_raw"]) as u32,
                    ack: num(&t["ack_raw"]) as u32,
                    len: num(&t["payload_len"]) as u32,
                }
            } else if p["udp"].is_object() {
                Proto::Udp {
                    src_port: num(&p["udp"]["src_port"]) as u16,
                    dns_id: p["dns"]["id"].as_u64().map(|i| i as u16),
                }
            } else {
                Proto::Other
            };
            Seen { tx, proto }
        })
        .collect()
}

/// The number of complete packet records in a pcap file being written (0 while it has
/// no header yet).
fn pcap_records(path: &Path) -> usize {
    fetchscope_tests::pcap_records(path)
        .unwrap_or_else(|| panic!("{} is not a pcap file", path.display()))
}

/// The first of a tshark field's comma-separated values (an ICMP error quotes headers).
fn first(field: &str) -> &str {
    field.split(',').next().unwrap_or("")
}

fn parse_u32(field: &str, line: &str) -> u32 {
    let f = first(field);
    let parsed = match f.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => f.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("bad number '{field}' in tshark line: {line}"))
}

/// tshark's `tcp.flags.str` (e.g. `·······AP···`) as flag names.
fn flags_from_str(s: &str) -> Vec<String> {
    let letters = [
        ('C', "CWR"),
        ('E', "ECE"),
        ('U', "URG"),
        ('A', "ACK"),
        ('P', "PSH"),
        ('R', "RST"),
        ('S', "SYN"),
        ('F', "FIN"),
    ];
    // The last eight positions are CWR ECE URG ACK PSH RST SYN FIN; earlier ones are the
    // reserved bits and AccECN.
    let chars: Vec<char> = s.chars().collect();
    let tail = &chars[chars.len().saturating_sub(8)..];
    tail.iter()
        .filter_map(|c| {
            letters
                .iter()
                .find(|(l, _)| l == c)
                .map(|(_, n)| n.to_string())
        })
        .collect()
}

/// The capture's packets as [`Seen`]s, read with tshark, in capture order.
fn seen_by_kernel(pcap: &Path, stack_addr: &str) -> Vec<Seen> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(pcap)
        .args(["-T", "fields", "-E", "separator=/t"])
        .args([
            "-e",
            "frame.time_epoch",
            "-e",
            "ip.src",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.flags.str",
            "-e",
            "tcp.seq_raw",
            "-e",
            "tcp.ack_raw",
            "-e",
            "tcp.len",
            "-e",
            "udp.srcport",
            "-e",
            "dns.id",
            "-e",
            "ip.proto",
        ]);
    let out = output_within(cmd, COMMAND_LIMIT);
    assert!(out.status.success(), "tshark: {}", stderr_of(&out));
    let mut times = Vec::new();
    let seen: Vec<Seen> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert!(f.len() >= 10, "short tshark line: {line}");
            times.push(first(f[0]).parse::<f64>().unwrap_or(0.0));
            let tx = first(f[1]) == stack_addr;
            let proto = match first(f[9]) {
                "6" => Proto::Tcp {
                    src_port: parse_u32(f[2], line) as u16,
                    flags: sorted_flags(flags_from_str(first(f[3]))),
                    seq: parse_u32(f[4], line),
                    ack: parse_u32(f[5], line),
                    len: parse_u32(f[6], line),
                },
                "17" => Proto::Udp {
                    src_port: parse_u32(f[7], line) as u16,
                    dns_id: (!f[8].is_empty()).then(|| parse_u32(f[8], line) as u16),
                },
                _ => Proto::Other,
            };
            Seen { tx, proto }
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "capture timestamps go backwards"
    );
    seen
}

/// Compares every packet of the two records, where the capture lacks exactly `dropped`
/// packets (tcpdump's own count of what it dropped); returns what [`compare_packets`]
/// returns, or panics with the mismatch.
fn assert_same_packets(fetchscope: &[Seen], kernel: &[Seen], dropped: usize, what: &str) -> usize {
    compare_packets(fetchscope, kernel, dropped)
        .unwrap_or_else(|e| panic!("{what}: {e}\nfetchscope: {fetchscope:#?}\nkernel: {kernel:#?}"))
}

/// Compares every packet of the two records.
///
/// With `dropped == 0`, each direction must match packet for packet (same flags, absolute
/// sequence and acknowledgement numbers, lengths, ports, DNS ids) and in the same order.
/// Across the two directions the kernel may legitimately see a packet for the stack
/// *before* one the stack sent, while fetchscope records the other order: the kernel
/// captures a packet for the stack when it queues it on the TUN device, and fetchscope
/// records it when it reads it, maybe after writing a packet of its own. The reverse can
/// never happen: a packet fetchscope read before it wrote another was queued (and
/// captured) before that one was written. That is checked for every pair. Returns how
/// many received packets the kernel queued before a packet fetchscope wrote ahead of
/// reading them (information for people).
///
/// With `dropped > 0` (tcpdump said it dropped that many), fetchscope must show exactly
/// `dropped` packets more than the capture holds, and every captured packet must be one
/// fetchscope showed, in order in its direction; the cross-direction check needs every
/// packet placed with certainty, so it is left out then (and 0 returned).
fn compare_packets(fetchscope: &[Seen], kernel: &[Seen], dropped: usize) -> Result<usize, String> {
    let split = |v: &[Seen], tx: bool| -> Vec<(usize, Seen)> {
        v.iter()
            .enumerate()
            .filter(|(_, s)| s.tx == tx)
            .map(|(i, s)| (i, s.clone()))
            .collect()
    };
    if fetchscope.len() != kernel.len() + dropped {
        return Err(format!(
            "fetchscope shows {} packets, the kernel captured {} and tcpdump says it dropped {dropped}",
            fetchscope.len(),
            kernel.len()
        ));
    }
    let way = |tx: bool| if tx { "sent" } else { "received" };
    if dropped > 0 {
        for tx in [true, false] {
            let mut ours = split(fetchscope, tx).into_iter();
            for (j, b) in split(kernel, tx) {
                if !ours.any(|(_, a)| a == b) {
                    return Err(format!(
                        "the capture's frame {} ({} by the stack) is not one of fetchscope's packets, in order: {b:?}",
                        j + 1,
                        way(tx)
                    ));
                }
            }
        }
        return Ok(0);
    }
    // Position in the kernel's capture of each of fetchscope's packets.
    let mut kernel_pos = vec![0usize; fetchscope.len()];
    for tx in [true, false] {
        let ours = split(fetchscope, tx);
        let theirs = split(kernel, tx);
        if ours.len() != theirs.len() {
            return Err(format!(
                "the number of packets {} the stack differs: fetchscope {}, the capture {}",
                if tx { "from" } else { "to" },
                ours.len(),
                theirs.len()
            ));
        }
        for (n, ((i, a), (j, b))) in ours.iter().zip(theirs.iter()).enumerate() {
            if a != b {
                return Err(format!(
                    "{} packet #{} differs (fetchscope's packet {} vs the capture's frame {}): {a:?} vs {b:?}",
                    way(tx),
                    n + 1,
                    i + 1,
                    j + 1
                ));
            }
            kernel_pos[*i] = *j;
        }
    }
    // Cross-direction order.
    let mut latest_rx: Option<usize> = None;
    let mut latest_tx: Option<usize> = None;
    let mut reordered = 0;
    for (i, s) in fetchscope.iter().enumerate() {
        let k = kernel_pos[i];
        if s.tx {
            if let Some(rx) = latest_rx
                && k <= rx
            {
                return Err(format!(
                    "fetchscope read frame {} before writing its packet {}, but the kernel saw them the other way round",
                    rx + 1,
                    i + 1
                ));
            }
            latest_tx = Some(latest_tx.map_or(k, |t| t.max(k)));
        } else {
            if latest_tx.is_some_and(|t| t > k) {
                reordered += 1;
            }
            latest_rx = Some(latest_rx.map_or(k, |r| r.max(k)));
        }
    }
    Ok(reordered)
}

/// The packets tcpdump says it lost, from the statistics it prints when it stops: "N
/// packets dropped by kernel" (its capture buffer overflowed) plus "N packets dropped by
/// interface"; `None` when it printed no statistics.
fn tcpdump_drops(stderr: &str) -> Option<usize> {
    let count = |what: &str| {
        stderr.lines().find_map(|l| {
            l.trim()
                .strip_suffix(what)
                .and_then(|n| n.trim().parse::<usize>().ok())
        })
    };
    let kernel = count("packets dropped by kernel")?;
    Some(kernel + count("packets dropped by interface").unwrap_or(0))
}

/// How many times a fetch and its capture are made when tcpdump reports drops.
const CAPTURE_TRIES: usize = 3;

/// One fetch of `path` with tcpdump on the kernel's side of the TUN device: fetchscope's
/// packets, the capture's, the number tcpdump says it dropped, and what tcpdump said.
fn fetch_with_capture(
    lab: &NsLab,
    path: &str,
    pcap: &Path,
    stack_addr: &str,
) -> (Vec<Seen>, Vec<Seen>, usize, String) {
    let _ = fs::remove_file(pcap);
    let mut capture = lab.in_cli("tcpdump");
    // -Z root: keep the permission to write the file; --immediate-mode and -U: every
    // packet reaches the file before the capture is stopped; -B: 64 MiB of buffer, and
    // -s 512 (headers, a DNS message's id) so the buffer holds many packets.
    capture
        .args([
            "-Z",
            "root",
            "-U",
            "--immediate-mode",
            "-B",
            "65536",
            "-s",
            "512",
        ])
        .args(["-n", "-i", lab.var("FSC_TUN"), "-w"])
        .arg(pcap);
    let mut tcpdump = Background::spawn(capture, "tcpdump");
    let said = tcpdump.wait_for_line(true, "listening on", Duration::from_secs(20));
    let out = output_within(
        lab.fetch(path, &["--json", "-o", "/dev/null"]),
        COMMAND_LIMIT,
    );
    let ev = completed(&out, path);
    let ours = seen_by_fetchscope(&ev);
    // On a busy machine tcpdump may lag behind the fetch, and it stops at once on
    // SIGINT, dropping what it has not yet written: let it catch up first (every packet
    // is flushed to the file as it is written, -U) until it has them all or has written
    // nothing new for 2 s, then give a packet that should not be there a moment to show
    // up.
    let start = Instant::now();
    let (mut last, mut since) = (0, Instant::now());
    loop {
        let n = pcap_records(pcap);
        if n != last {
            (last, since) = (n, Instant::now());
        }
        if n >= ours.len()
            || since.elapsed() > Duration::from_secs(2)
            || start.elapsed() > Duration::from_secs(60)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let status = tcpdump.stop("INT");
    assert!(status.code().is_some(), "tcpdump: {status}");
    // Its statistics are its last words: wait (briefly) for the reader to have them.
    let text = || said.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let start = Instant::now();
    while tcpdump_drops(&text()).is_none() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let tcpdump_said = text();
    let dropped = tcpdump_drops(&tcpdump_said)
        .unwrap_or_else(|| panic!("tcpdump printed no statistics:\n{tcpdump_said}"));
    let theirs = seen_by_kernel(pcap, stack_addr);
    (ours, theirs, dropped, tcpdump_said)
}

/// A capture on the kernel's side of the TUN device (tcpdump on `fstun0`, started before
/// the fetch and stopped after it) shows exactly the packets fetchscope's `--json` shows:
/// the same number, each with the same flags and absolute sequence and acknowledgement
/// numbers, in the same order. For the home page and for a 1 MiB file. When tcpdump says
/// it dropped packets (a busy machine), the fetch is made again, up to
/// [`CAPTURE_TRIES`] times; should drops persist, the capture must lack exactly the
/// packets tcpdump says it dropped, and hold nothing else.
#[test]
fn kernel_capture_shows_the_same_packets_as_fetchscope() {
    let Some(lab) = NsLab::up(PREFIX) else { return };
    if !require(
        have("tcpdump") && have("tshark"),
        "the capture test needs tcpdump and tshark",
    ) {
        return;
    }
    let dir = Scratch::new("tun-capture");
    let stack_addr = lab
        .var("FSC_STACK_ADDR")
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    for path in ["/", "/files/1M.bin"] {
        let pcap = dir.join("kernel.pcap");
        let mut tries = 0;
        let (ours, theirs, dropped, tcpdump_said) = loop {
            tries += 1;
            let got = fetch_with_capture(&lab, path, &pcap, &stack_addr);
            if got.2 == 0 || tries == CAPTURE_TRIES {
                break got;
            }
            eprintln!(
                "{path}: try {tries}: tcpdump dropped {} packets; fetching again",
                got.2
            );
        };
        assert!(
            ours.iter().any(|s| matches!(
                &s.proto,
                Proto::Udp {
                    dns_id: Some(_),
                    ..
                }
            )),
            "the DNS query is among the packets"
        );
        assert!(ours.len() > 10, "{path}: only {} packets", ours.len());
        let reordered = assert_same_packets(
            &ours,
            &theirs,
            dropped,
            &format!("{path} (try {tries}; tcpdump said:\n{tcpdump_said})"),
        );
        if dropped == 0 {
            eprintln!(
                "{path}: {} packets identical on both sides (try {tries}); {reordered} received packets were queued by the kernel before a write fetchscope made ahead of reading them",
                ours.len()
            );
        } else {
            eprintln!(
                "{path}: after {tries} tries tcpdump still dropped {dropped}: the other {} packets are fetchscope's, in order",
                theirs.len()
            );
        }
    }
}

/// The comparison catches a real difference, with or without drops reported: a changed
/// field, a packet too many or too few, and a wrong order across directions.
#[test]
fn packet_comparison_catches_mismatches() {
    let tcp = |tx: bool, seq: u32, len: u32| Seen {
        tx,
        proto: Proto::Tcp {
            src_port: if tx { 40000 } else { 443 },
            flags: vec!["ACK".into()],
            seq,
            ack: 1,
            len,
        },
    };
    let ours = vec![
        tcp(true, 1, 100),
        tcp(false, 1, 0),
        tcp(true, 101, 100),
        tcp(false, 1, 1000),
        tcp(false, 1001, 1000),
        tcp(true, 201, 0),
    ];
    assert_eq!(compare_packets(&ours, &ours, 0), Ok(0));
    // A changed sequence number.
    let mut changed = ours.clone();
    changed[2] = tcp(true, 102, 100);
    assert!(compare_packets(&ours, &changed, 0).is_err());
    // One packet fewer, with no drop reported, or reported with the wrong number.
    let mut fewer = ours.clone();
    fewer.remove(4);
    assert!(compare_packets(&ours, &fewer, 0).is_err());
    assert!(compare_packets(&ours, &fewer, 2).is_err());
    // ... and with exactly that drop reported.
    assert_eq!(compare_packets(&ours, &fewer, 1), Ok(0));
    // A drop reported, but the rest holds a packet fetchscope never showed.
    let mut foreign = fewer.clone();
    foreign[1] = tcp(false, 7, 0);
    assert!(compare_packets(&ours, &foreign, 1).is_err());
    // A drop reported, but the rest is out of order within a direction.
    let swapped: Vec<Seen> = vec![
        ours[0].clone(),
        ours[1].clone(),
        ours[4].clone(),
        ours[3].clone(),
        ours[5].clone(),
    ];
    assert!(compare_packets(&ours, &swapped, 1).is_err());
    // A packet sent after one was read, seen before it by the kernel.
    let mut crossed = ours.clone();
    crossed.swap(1, 2);
    assert!(compare_packets(&ours, &crossed, 0).is_err());
    // The legitimate crossing: a received packet the kernel queued before a write.
    let mut early_rx = ours.clone();
    early_rx.swap(2, 3);
    assert_eq!(compare_packets(&ours, &early_rx, 0), Ok(1));
}

/// tcpdump's statistics, as it prints them on SIGINT.
#[test]
fn tcpdump_statistics_are_read() {
    let said = "listening on fstun0, link-type RAW (Raw IP), snapshot length 512 bytes\n\
                1071 packets captured\n1095 packets received by filter\n24 packets dropped by kernel\n";
    assert_eq!(tcpdump_drops(said), Some(24));
    let with_interface = format!("{said}3 packets dropped by interface\n");
    assert_eq!(tcpdump_drops(&with_interface), Some(27));
    assert_eq!(tcpdump_drops("0 packets dropped by kernel"), Some(0));
    assert_eq!(tcpdump_drops("listening on fstun0"), None);
}

// ------------------------------------------------------------------ permissions

/// The test's fetchscope binary copied where an unprivileged user can run it.
fn binary_for_everyone(dir: &Path) -> PathBuf {
    let bin = dir.join("fetchscope");
    fs::copy(fetchscope_bin(), &bin).expect("copy the binary");
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod dir");
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).expect("chmod binary");
    bin
}

/// `cmd` (an `ip netns exec NS PROGRAM ...` command) with PROGRAM run as `nobody`, with no
/// groups and no capabilities.
fn as_nobody(lab: &NsLab, bin: &Path, path: &str, tun: &str) -> Command {
    let mut c = lab.in_cli("setpriv");
    c.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
    ])
    .arg(bin)
    .arg("fetch")
    .arg(format!("https://www.example.test{path}"))
    .args(["--tun", tun])
    .args(["--addr", lab.var("FSC_STACK_ADDR")])
    .args(["--gateway", lab.var("FSC_GATEWAY")])
    .args(["--dns", lab.var("FSC_DNS")])
    .args(["--cacert", lab.var("FSC_CACERT")])
    .args(["--timeout", FETCH_TIMEOUT_SECS]);
    c
}

fn nobody_prerequisites() -> bool {
    require(
        have("setpriv")
            && Command::new("id")
                .arg("nobody")
                .output()
                .is_ok_and(|o| o.status.success()),
        "the permission tests need setpriv (util-linux) and the user nobody",
    )
}

// ------------------------------------------------------------------ /dev/net/tun's mode

/// Where the kernel's TUN driver is opened.
const TUN_NODE: &str = "/dev/net/tun";
/// Held (an exclusive lock) while a test has changed `/dev/net/tun`'s mode, by any test
/// process on the machine (other worktrees' test binaries too).
const NODE_LOCK: &str = "fetchscope-dev-net-tun.lock";
/// The mode `/dev/net/tun` had before a test changed it, while changed: a process killed
/// before it restored the mode leaves it behind, and the next test restores that mode.
const NODE_SAVED: &str = "fetchscope-dev-net-tun.mode";

/// The permission bits of `/dev/net/tun`.
fn tun_node_mode() -> u32 {
    fs::metadata(TUN_NODE)
        .unwrap_or_else(|e| panic!("{TUN_NODE}: {e}"))
        .permissions()
        .mode()
        & 0o7777
}

/// True when a mode lets every user open the node for reading and writing.
fn world_rw(mode: u32) -> bool {
    mode & 0o006 == 0o006
}

/// The guards alive in this process, and the lock and the original mode they share: the
/// first one changes the mode, the last one restores it, so a test that ends never takes
/// the mode away from one still running.
struct NodeState {
    holders: usize,
    lock: Option<fs::File>,
    original: u32,
}

static NODE_STATE: Mutex<NodeState> = Mutex::new(NodeState {
    holders: 0,
    lock: None,
    original: 0,
});

/// `/dev/net/tun` at mode 0666 (what udev gives it on most systems) for as long as this
/// guard lives; dropping the last one in the process restores the original mode, also
/// when the test panics. Other tests run as root and open the node whatever its mode.
struct WorldTunNode;

impl WorldTunNode {
    /// Sets mode 0666, waiting (at most a minute) for another process's guard to end.
    fn acquire() -> WorldTunNode {
        let mut state = NODE_STATE.lock().unwrap_or_else(PoisonError::into_inner);
        if state.holders == 0 {
            let tmp = std::env::temp_dir();
            let lock = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(tmp.join(NODE_LOCK))
                .unwrap_or_else(|e| panic!("{NODE_LOCK}: {e}"));
            let start = Instant::now();
            while lock.try_lock().is_err() {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "another test process has held {TUN_NODE}'s mode for a minute"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            let saved = tmp.join(NODE_SAVED);
            let original = fs::read_to_string(&saved)
                .ok()
                .and_then(|t| u32::from_str_radix(t.trim(), 8).ok())
                .unwrap_or_else(tun_node_mode);
            fs::write(&saved, format!("{original:o}\n")).expect("save the mode");
            set_tun_node_mode(0o666);
            eprintln!(
                "{TUN_NODE}: mode {original:04o} → 0666 for this test (as udev would set it)"
            );
            state.lock = Some(lock);
            state.original = original;
        }
        state.holders += 1;
        WorldTunNode
    }
}

impl Drop for WorldTunNode {
    fn drop(&mut self) {
        let mut state = NODE_STATE.lock().unwrap_or_else(PoisonError::into_inner);
        state.holders -= 1;
        if state.holders == 0 {
            set_tun_node_mode(state.original);
            let _ = fs::remove_file(std::env::temp_dir().join(NODE_SAVED));
            eprintln!("{TUN_NODE}: mode restored to {:04o}", state.original);
            // Closing the file releases the lock.
            state.lock = None;
        }
    }
}

fn set_tun_node_mode(mode: u32) {
    if let Err(e) = fs::set_permissions(TUN_NODE, fs::Permissions::from_mode(mode)) {
        eprintln!("cannot set {TUN_NODE} to mode {mode:04o}: {e}");
    }
}

/// Makes sure an unprivileged user can open `/dev/net/tun` for `what`: `Some(None)` when
/// its mode allows that already; `Some(guard)` when, under `CI=true` as root, the mode was
/// set to 0666 until the guard is dropped; `None` when the test must skip (it fails
/// instead under `CI=true`).
fn tun_node_for_everyone(what: &str) -> Option<Option<WorldTunNode>> {
    let mode = tun_node_mode();
    if world_rw(mode) {
        return Some(None);
    }
    eprintln!(
        "{TUN_NODE} is mode {mode:04o}: no user but root can open it, whoever owns the TUN device"
    );
    if in_ci() && is_root() {
        return Some(Some(WorldTunNode::acquire()));
    }
    require(
        false,
        &format!(
            "{what} needs {TUN_NODE} at mode 0666, as udev sets it on most systems (`sudo chmod 0666 {TUN_NODE}`; under CI=true as root the test sets it itself)"
        ),
    );
    None
}

/// An unprivileged user may neither attach to a TUN device someone else owns nor create
/// one: exit 3, and a sentence that names the fixes. Where `/dev/net/tun` itself keeps
/// the user out (mode 0600), the sentence names that mode first.
#[test]
fn unprivileged_user_gets_exit_3_and_the_fix() {
    let Some(lab) = NsLab::up(PREFIX) else { return };
    if !nobody_prerequisites() {
        return;
    }
    let dir = Scratch::new("tun-perm");
    let bin = binary_for_everyone(&dir);
    let tun = lab.var("FSC_TUN").to_string();

    let mode = tun_node_mode();
    if !world_rw(mode) {
        let out = output_within(as_nobody(&lab, &bin, "/", &tun), COMMAND_LIMIT);
        let err = stderr_of(&out);
        assert_eq!(
            code(&out),
            3,
            "attach through a mode-{mode:04o} node: {err}"
        );
        assert!(
            err.contains(&format!(
                "no permission to attach to TUN device {tun} (Permission denied (os error 13)): /dev/net/tun is mode {mode:04o} (owner root), so only root can open it, whoever owns the TUN device"
            )),
            "{err}"
        );
        assert!(err.contains("sudo chmod 0666 /dev/net/tun"), "{err}");
        assert!(
            !err.contains("setcap"),
            "setcap cannot open the node: {err}"
        );
    }
    let Some(_node) = tun_node_for_everyone("the ownership half of the permission test") else {
        return;
    };

    let out = output_within(as_nobody(&lab, &bin, "/", &tun), COMMAND_LIMIT);
    let err = stderr_of(&out);
    assert_eq!(code(&out), 3, "attach without permission: {err}");
    assert!(
        err.contains(&format!("no permission to attach to TUN device {tun}")),
        "{err}"
    );
    assert!(err.contains("setcap cap_net_admin+ep"), "{err}");
    assert!(
        err.contains(&format!("ip tuntap add dev {tun} mode tun user $USER")),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");

    let missing = format!("{PREFIX}x9");
    let out = output_within(as_nobody(&lab, &bin, "/", &missing), COMMAND_LIMIT);
    let err = stderr_of(&out);
    assert_eq!(code(&out), 3, "create without permission: {err}");
    assert!(
        err.contains(&format!("no permission to create TUN device {missing}")),
        "{err}"
    );
    assert!(err.contains("setcap cap_net_admin+ep"), "{err}");
    let still_missing = output_within(
        {
            let mut c = Command::new("ip");
            c.args(["-n", lab.var("FSC_CLI_NS"), "link", "show", &missing]);
            c
        },
        COMMAND_LIMIT,
    );
    assert!(
        !still_missing.status.success(),
        "no device may have been created"
    );
}

/// The owner of a persistent TUN device (`ip tuntap add ... user OWNER`) attaches to it
/// without any privilege and fetches, where `/dev/net/tun` lets every user open it (mode
/// 0666, as udev sets it; see [`tun_node_for_everyone`]).
#[test]
fn owner_of_the_device_fetches_without_privileges() {
    if !lab_prerequisites() || !nobody_prerequisites() {
        return;
    }
    let Some(lab) = NsLab::up_with_owner(PREFIX, "nobody") else {
        return;
    };
    let Some(_node) = tun_node_for_everyone("the owner test") else {
        return;
    };
    let dir = Scratch::new("tun-owner");
    let bin = binary_for_everyone(&dir);
    let mut cmd = as_nobody(&lab, &bin, "/", lab.var("FSC_TUN"));
    cmd.arg("--json");
    let out = output_within(cmd, COMMAND_LIMIT);
    let ev = completed(&out, "fetch as the device's owner");
    assert_eq!(
        done_event(&ev)["body_sha256"],
        lab.expected_sha256("www/index.html")
    );
}

// ------------------------------------------------------------------ errors that say which

/// A device that is down: exit 3 and the command that brings it up.
#[test]
fn device_down_is_named_with_the_fix() {
    let Some(lab) = NsLab::up(PREFIX) else { return };
    let tun = lab.var("FSC_TUN").to_string();
    let mut down = Command::new("ip");
    down.args(["-n", lab.var("FSC_CLI_NS"), "link", "set", &tun, "down"]);
    assert!(output_within(down, COMMAND_LIMIT).status.success());
    let out = output_within(lab.fetch("/", &[]), COMMAND_LIMIT);
    let err = stderr_of(&out);
    assert_eq!(code(&out), 3, "{err}");
    assert!(err.contains(&format!("TUN device {tun} is down")), "{err}");
    assert!(err.contains(&format!("ip link set {tun} up")), "{err}");
}

/// A server the kernel has no route to (the kernel answers with ICMP network
/// unreachable) and a stack address the kernel cannot route replies back to: the fetch
/// fails with the phase, the reason and a hint, and the exit status of that phase.
#[test]
fn unreachable_server_and_unroutable_stack_say_which() {
    let Some(lab) = NsLab::up(PREFIX) else { return };

    // No route from the client namespace to 10.77.0.1.
    let cmd = lab.fetch(
        "/",
        &[
            "--resolve",
            "www.example.test:443:10.77.0.1",
            "--json",
            "--timeout",
            "3",
        ],
    );
    let out = output_within(cmd, COMMAND_LIMIT);
    let err = stderr_of(&out);
    let status = code(&out);
    assert!(
        status == 5 || status == 8,
        "a connect failure (5) or a connect timeout (8), got {status}: {err}"
    );
    assert!(err.contains("connect failed"), "{err}");
    assert!(err.contains("10.77.0.1"), "{err}");
    let ev = events(&out.stdout);
    assert!(
        of_type(&ev, "packet").iter().any(|p| p["icmp"]["name"]
            .as_str()
            .is_some_and(|n| n.contains("unreachable"))),
        "the kernel's ICMP unreachable is shown"
    );
    let error = of_type(&ev, "error");
    assert_eq!(error.len(), 1);
    assert_eq!(error[0]["phase"], "connect");

    // A stack address outside the TUN device's prefix: nothing comes back.
    let mut c = lab.in_cli(fetchscope_bin());
    c.args(["fetch", "https://www.example.test/"])
        .args(["--tun", lab.var("FSC_TUN")])
        .args(["--addr", "10.77.0.2/24", "--gateway", "10.77.0.1"])
        .args([
            "--dns",
            lab.var("FSC_DNS"),
            "--cacert",
            lab.var("FSC_CACERT"),
        ])
        .args(["--timeout", "3"]);
    let out = output_within(c, COMMAND_LIMIT);
    let err = stderr_of(&out);
    let status = code(&out);
    assert!(
        [3, 4, 8].contains(&status),
        "set-up (3), DNS (4) or timeout (8), got {status}: {err}"
    );
    assert!(
        err.contains("resolve failed") || status == 3,
        "names the phase: {err}"
    );
    assert!(
        err.contains("10.88.0.1") || err.contains("10.77.0.2"),
        "{err}"
    );
}

// ------------------------------------------------------------------ path MTU

/// Gives the router's route to the server's network (in the client namespace, out of
/// its veth) the MTU `mtu`: the kernel forwards nothing larger that way and answers a
/// larger packet with don't-fragment set with ICMP "fragmentation needed", as a router
/// in front of a tunnel does. Its own link stays at 1500 bytes, so the server still
/// offers an MSS of 1460 and sends full-size segments back.
fn narrow_the_path(lab: &NsLab, mtu: u32) {
    let net = format!(
        "{}.0/24",
        lab.var("FSC_SERVER_ADDR")
            .rsplit_once('.')
            .map_or("10.88.0", |(net, _)| net)
    );
    let mut c = Command::new("ip");
    c.args(["-n", lab.var("FSC_CLI_NS"), "route", "replace", &net])
        .args(["dev", lab.var("FSC_CAPTURE_IF")])
        .args(["proto", "kernel", "scope", "link", "mtu", &mtu.to_string()]);
    let out = output_within(c, COMMAND_LIMIT);
    assert!(
        out.status.success(),
        "ip route replace {net} ... mtu {mtu}: {}",
        stderr_of(&out)
    );
}

/// A path whose MTU is smaller than the TUN link's (the router's route to the server
/// allows 1280 bytes, as through a tunnel): a request of over 5 KB still arrives. The router
/// answers our first full-size segment with ICMP "fragmentation needed (mtu 1280)"; the
/// stack lowers the connection's segment size, says so, and sends no packet larger than
/// 1280 bytes after that. (Before path-MTU discovery the request never arrived: every
/// retransmission was 1500 bytes again.)
#[test]
fn icmp_fragmentation_needed_lowers_the_segment_size() {
    let Some(lab) = NsLab::up(PREFIX) else { return };
    narrow_the_path(&lab, 1280);
    let path = format!("/?x={}", "a".repeat(5000));
    let out = output_within(
        lab.fetch(&path, &["--json", "--timeout", "60"]),
        COMMAND_LIMIT,
    );
    let ev = completed(&out, "a 5 KB request over a 1280-byte path");
    assert_eq!(done_event(&ev)["status"], 200);
    let server = lab.var("FSC_SERVER_ADDR");
    let packets = of_type(&ev, "packet");
    let frag_needed = packets
        .iter()
        .position(|p| p["dir"] == "rx" && p["icmp"]["mtu"] == 1280)
        .unwrap_or_else(|| panic!("no ICMP fragmentation needed (mtu 1280) in the trace"));
    assert!(
        packets[frag_needed]["icmp"]["name"]
            .as_str()
            .is_some_and(|n| n.contains("fragmentation needed")),
        "{}",
        packets[frag_needed]
    );
    let note = format!("path MTU to {server} is 1280 bytes");
    let notes: Vec<&str> = of_type(&ev, "note")
        .iter()
        .filter_map(|n| n["text"].as_str())
        .filter(|t| t.contains(&note))
        .collect();
    assert_eq!(notes.len(), 1, "one note '{note}…' expected: {notes:?}");
    assert!(
        notes[0].contains("segments now at most 1240 bytes"),
        "{}",
        notes[0]
    );
    // After the router's answer, nothing the stack sends is larger than the path allows.
    let frag_at = packets[frag_needed]["number"].as_u64().expect("number");
    let too_big: Vec<u64> = packets
        .iter()
        .filter(|p| p["dir"] == "tx" && p["number"].as_u64() > Some(frag_at))
        .filter(|p| p["len"].as_u64().is_some_and(|l| l > 1280))
        .filter_map(|p| p["number"].as_u64())
        .collect();
    assert!(
        too_big.is_empty(),
        "packets over 1280 bytes after the ICMP: {too_big:?}"
    );
}

// ------------------------------------------------------------------ idle CPU

/// CPU time of process `pid` so far (user + system), from `/proc/PID/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    // The command name (field 2) may hold spaces: count fields after its ')'.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let ticks: u64 = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(100);
    Duration::from_micros(ticks * 1_000_000 / hz)
}

/// A TCP server in the server namespace that accepts one connection and then says
/// nothing for `silent_secs` before closing it.
const SILENT_SERVER: &str = r#"
import socket, sys, time
addr, port, silent = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(1)
s.settimeout(60)
print("listening", flush=True)
c, _ = s.accept()
print("accepted", flush=True)
time.sleep(silent)
c.close()
"#;

/// While the server is silent for 5 s (TCP connected, ClientHello sent, no answer),
/// fetchscope sleeps: its CPU time is at most 2 % of the wall time.
#[test]
fn silent_server_costs_under_two_percent_cpu() {
    let Some(lab) = NsLab::up(PREFIX) else { return };
    if !require(have("python3"), "the idle test needs python3") {
        return;
    }
    let server_addr = lab.var("FSC_SERVER_ADDR").to_string();
    let mut srv = lab.in_srv("python3");
    srv.args(["-c", SILENT_SERVER, &server_addr, "8443", "8"]);
    let mut server = Background::spawn(srv, "the silent server");
    // Its stdout: "listening", then "accepted".
    let stdout = server.take_stdout();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let limit = Duration::from_secs(20);
    assert_eq!(rx.recv_timeout(limit).as_deref(), Ok("listening"));

    // A few KiB of output before the silence: the pipes never fill.
    let cmd = lab.fetch(":8443/", &["--json", "--timeout", "30"]);
    let fetch = Background::spawn(cmd, "fetchscope");
    assert_eq!(
        rx.recv_timeout(limit).as_deref(),
        Ok("accepted"),
        "fetchscope connected"
    );
    // Let the ClientHello go out and settle, then measure 5 s of silence.
    std::thread::sleep(Duration::from_millis(500));
    let (cpu0, t0) = (cpu_time(fetch.pid()), Instant::now());
    std::thread::sleep(Duration::from_secs(5));
    let (cpu1, wall) = (cpu_time(fetch.pid()), t0.elapsed());
    let cpu = cpu1.saturating_sub(cpu0);
    let share = cpu.as_secs_f64() / wall.as_secs_f64();
    eprintln!(
        "silent server: fetchscope used {:.1} ms of CPU in {:.2} s ({:.3} %)",
        cpu.as_secs_f64() * 1e3,
        wall.as_secs_f64(),
        share * 100.0
    );
    assert!(
        share <= 0.02,
        "fetchscope used {cpu:?} of CPU in {wall:?} while the server was silent"
    );
    let _ = fetch.stop("TERM");
    let _ = server.stop("TERM");
}
