//! The pcapng spool: block order, contents, and (with tshark) decryption by Wireshark.

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Options, fetch_packets, tls_exchange};
use fetchscope_wire::pcapng::{
    DSB_BLOCK_TYPE, DSB_TLS_KEY_LOG, PcapngFile, PcapngSpool, SECRETS_ROOM,
};
use fetchscope_wire::{Direction, key_log_line};
use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgReader;
use pcap_file::pcapng::blocks::Block;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;

/// A written pcapng file with what went into it.
struct Written {
    file: Vec<u8>,
    packets: Vec<(Direction, Vec<u8>)>,
    times: Vec<Duration>,
    key_log: String,
}

/// Writes the pcapng file of a whole decrypted fetch.
fn fetch_pcapng() -> Written {
    let ex = tls_exchange(Options::default());
    let packets = fetch_packets(&ex, &[100, 7, 1460, 1, 300]);
    let key_log: String = ex
        .secrets
        .iter()
        .map(|(l, r, s)| key_log_line(l, r, s))
        .collect();
    let start = SystemTime::now();
    let mut spool = PcapngSpool::new().expect("spool");
    let mut times = Vec::new();
    for (i, (dir, p)) in packets.iter().enumerate() {
        // Distinct, sub-microsecond-precise times.
        let t = start + Duration::from_nanos(1_000_123 * i as u64 + 7);
        spool.push(t, *dir, p).expect("spooled");
        times.push(t.duration_since(UNIX_EPOCH).expect("after epoch"));
    }
    assert_eq!(spool.len(), packets.len() as u64);
    let mut out = Vec::new();
    spool.finish(&key_log, &mut out).expect("written");
    Written {
        file: out,
        packets,
        times,
        key_log,
    }
}

#[test]
fn blocks_in_wireshark_order() {
    let Written {
        file,
        packets,
        times,
        key_log,
    } = fetch_pcapng();
    let (kinds, secrets, got) = blocks_of(&file);
    assert_eq!(
        kinds[..2],
        ["IDB", "DSB"],
        "secrets before the first packet"
    );
    assert!(kinds[2..].iter().all(|k| *k == "EPB"));
    assert_eq!(secrets, key_log.as_bytes(), "the key log, exactly");
    assert_eq!(got.len(), packets.len());
    for ((dir, data, t, original), ((d, p), tt)) in got.iter().zip(packets.iter().zip(&times)) {
        assert_eq!((dir, data), (d, p), "direction flags and bytes");
        assert_eq!(*original as usize, p.len());
        assert_eq!(t, tt, "nanosecond timestamps");
    }
}

#[test]
fn empty_key_log_has_no_secrets_block_and_big_spools_work() {
    let mut spool = PcapngSpool::new().expect("spool");
    let big = vec![0x45u8; 300_000]; // longer than the snap length
    for i in 0..2000u64 {
        spool
            .push(
                Duration::from_micros(1_700_000_000_000_000 + i),
                Direction::Rx,
                &big[..1500],
            )
            .expect("spooled");
    }
    spool
        .push(Duration::from_secs(1_700_000_001), Direction::Tx, &big)
        .expect("spooled");
    let mut out = Vec::new();
    spool.finish("", &mut out).expect("written");
    let mut reader = PcapNgReader::new(&out[..]).expect("valid");
    let mut packets = 0;
    let mut last = None;
    while let Some(block) = reader.next_block() {
        match block.expect("valid block").0 {
            Block::Unknown(_) => panic!("no DSB without secrets"),
            Block::EnhancedPacket(p) => {
                packets += 1;
                last = Some((p.data.len(), p.original_len));
            }
            _ => {}
        }
    }
    assert_eq!(packets, 2001);
    assert_eq!(
        last,
        Some((262_144, 300_000)),
        "cut to the snap length, length kept"
    );
}

/// What tshark reads of HTTP in the pcapng file at `path`: method, URI, status per line.
fn tshark_http(path: &std::path::Path) -> Vec<String> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-Y", "http", "-T", "fields"])
        .args(["-e", "http.request.method", "-e", "http.request.uri"])
        .args(["-e", "http.response.code"])
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The fetch's request and response were decrypted.
fn assert_decrypted(lines: &[String]) {
    assert!(
        lines.iter().any(|l| l == "GET\t/\t"),
        "decrypted request in {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l == "\t\t200"),
        "decrypted response in {lines:?}"
    );
}

#[test]
fn tshark_decrypts_the_http_request() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let available = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        assert!(!ci, "tshark is required when CI=true");
        eprintln!("tshark not on PATH: skipping the Wireshark check");
        return;
    }
    let file = fetch_pcapng().file;
    let dir = std::env::temp_dir().join(format!("fetchscope-wire-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("fetch.pcapng");
    std::fs::write(&path, &file).expect("written");
    let decrypted = tshark_http(&path);
    let _ = std::fs::remove_dir_all(&dir);
    assert_decrypted(&decrypted);
}

// ------------------------------------------------------------------ the streaming file

/// A scratch directory for one test.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "fetchscope-wire-pcapng-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Writes `packets` at `times` through a [`PcapngFile`] at `path` and finishes it with
/// `key_log`; returns the file's bytes.
fn stream_file(
    path: &std::path::Path,
    packets: &[(Direction, Vec<u8>)],
    times: &[Duration],
    key_log: &str,
) -> Vec<u8> {
    let file = std::fs::File::create(path).expect("created");
    let mut out = PcapngFile::new(file).expect("headers");
    for ((dir, p), t) in packets.iter().zip(times) {
        out.push(*t, *dir, p).expect("written");
    }
    assert_eq!(out.len(), packets.len() as u64);
    out.finish(key_log, path).expect("finished");
    std::fs::read(path).expect("read back")
}

/// One packet block read back: direction, bytes, time, original length.
type ReadPacket = (Direction, Vec<u8>, Duration, u32);

/// The blocks of a pcapng file: kinds in order, the secrets of its DSB, its packets.
fn blocks_of(file: &[u8]) -> (Vec<&'static str>, Vec<u8>, Vec<ReadPacket>) {
    let mut reader = PcapNgReader::new(file).expect("valid section header");
    let (mut kinds, mut secrets, mut packets) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(block) = reader.next_block() {
        match block.expect("valid block").0 {
            Block::InterfaceDescription(idb) => {
                assert_eq!(idb.linktype, DataLink::RAW);
                kinds.push("IDB");
            }
            Block::Unknown(u) => {
                assert_eq!(u.type_, DSB_BLOCK_TYPE);
                let v = &u.value;
                assert_eq!(
                    u32::from_le_bytes(v[0..4].try_into().expect("4")),
                    DSB_TLS_KEY_LOG
                );
                let len = u32::from_le_bytes(v[4..8].try_into().expect("4")) as usize;
                secrets = v[8..8 + len].to_vec();
                kinds.push("DSB");
            }
            Block::EnhancedPacket(p) => {
                let dir = match p.options.as_slice() {
                    [EnhancedPacketOption::Flags(2)] => Direction::Tx,
                    [EnhancedPacketOption::Flags(1)] => Direction::Rx,
                    other => panic!("flags {other:?}"),
                };
                packets.push((dir, p.data.to_vec(), p.timestamp, p.original_len));
                kinds.push("EPB");
            }
            other => panic!("unexpected block {other:?}"),
        }
    }
    (kinds, secrets, packets)
}

#[test]
fn the_streaming_file_has_the_spools_blocks_with_the_secrets_first() {
    let Written {
        file: spooled,
        packets,
        times,
        key_log,
    } = fetch_pcapng();
    let dir = scratch("stream");
    let path = dir.join("fetch.pcapng");
    let streamed = stream_file(&path, &packets, &times, &key_log);
    let (kinds, secrets, got) = blocks_of(&streamed);
    assert_eq!(
        kinds[..2],
        ["IDB", "DSB"],
        "secrets before the first packet"
    );
    assert!(kinds[2..].iter().all(|k| *k == "EPB"));
    // The key log, then only comment lines in the room kept for it.
    let text = String::from_utf8(secrets).expect("text");
    assert!(text.starts_with(&key_log), "{text:.200}");
    assert!(
        text[key_log.len()..]
            .lines()
            .all(|l| l.is_empty() || l.starts_with('#'))
    );
    assert_eq!(
        streamed.len() - spooled.len(),
        SECRETS_ROOM - (20 + key_log.len().next_multiple_of(4))
    );
    // The same packets as the spool writes, with their times, lengths and directions.
    let (_, _, from_spool) = blocks_of(&spooled);
    assert_eq!(got, from_spool);
    for ((dir, data, t, orig), ((d, p), tt)) in got.iter().zip(packets.iter().zip(&times)) {
        assert_eq!((dir, data, t, *orig as usize), (d, p, tt, p.len()));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_key_log_too_long_for_its_room_rewrites_the_file_with_a_block_that_fits() {
    let dir = scratch("long");
    let path = dir.join("many.pcapng");
    let packets: Vec<(Direction, Vec<u8>)> = (0..300u32)
        .map(|i| {
            (
                if i % 2 == 0 {
                    Direction::Rx
                } else {
                    Direction::Tx
                },
                vec![0x45; 40 + i as usize],
            )
        })
        .collect();
    let times: Vec<Duration> = (0..300u64)
        .map(|i| Duration::from_nanos(1_700_000_000_000_000_000 + i))
        .collect();
    // As from dozens of redirects: more secrets than the room holds.
    let line = format!("CLIENT_RANDOM {} {}\n", "ab".repeat(32), "cd".repeat(48));
    let key_log = line.repeat(SECRETS_ROOM / line.len() + 10);
    let file = stream_file(&path, &packets, &times, &key_log);
    let (kinds, secrets, got) = blocks_of(&file);
    assert_eq!(kinds[..2], ["IDB", "DSB"]);
    // The whole key log, and at most 3 bytes of padding (empty lines or a comment).
    assert!(secrets.starts_with(key_log.as_bytes()), "the whole key log");
    let rest = &secrets[key_log.len()..];
    assert!(
        rest.len() < 4 && rest.iter().all(|b| b"# \n".contains(b)),
        "{rest:?}"
    );
    assert_eq!(got.len(), packets.len());
    assert!(
        got.iter()
            .zip(&packets)
            .all(|((d, p, _, _), (dd, pp))| d == dd && p == pp)
    );
    assert!(
        !dir.join("many.pcapng.part").exists(),
        "no temporary file left"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tshark_decrypts_the_streaming_file() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(!ci, "tshark is required when CI=true");
        eprintln!("tshark not on PATH: skipping the Wireshark check");
        return;
    }
    let Written {
        packets,
        times,
        key_log,
        ..
    } = fetch_pcapng();
    let dir = scratch("tshark");
    let path = dir.join("fetch.pcapng");
    stream_file(&path, &packets, &times, &key_log);
    let decrypted = tshark_http(&path);
    let _ = std::fs::remove_dir_all(&dir);
    assert_decrypted(&decrypted);
}
