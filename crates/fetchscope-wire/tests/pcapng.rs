//! The pcapng spool: block order, contents, and (with tshark) decryption by Wireshark.

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Options, fetch_packets, tls_exchange};
use fetchscope_wire::pcapng::{DSB_BLOCK_TYPE, DSB_TLS_KEY_LOG, PcapngSpool};
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
    let mut reader = PcapNgReader::new(&file[..]).expect("valid section header");
    let mut kinds = Vec::new();
    let mut epb = 0;
    while let Some(block) = reader.next_block() {
        let (block, _) = block.expect("valid block");
        match block {
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
                assert_eq!(len, key_log.len());
                assert_eq!(&v[8..8 + len], key_log.as_bytes());
                assert!(v.len() % 4 == 0, "padded to 32 bits");
                kinds.push("DSB");
            }
            Block::EnhancedPacket(p) => {
                let (dir, data) = &packets[epb];
                assert_eq!(p.data.as_ref(), data.as_slice());
                assert_eq!(p.original_len as usize, data.len());
                assert_eq!(p.timestamp, times[epb], "nanosecond timestamps");
                let flags = match dir {
                    Direction::Tx => 2,
                    Direction::Rx => 1,
                };
                assert_eq!(p.options, vec![EnhancedPacketOption::Flags(flags)]);
                epb += 1;
                kinds.push("EPB");
            }
            other => panic!("unexpected block {other:?}"),
        }
    }
    assert_eq!(epb, packets.len());
    assert_eq!(
        kinds[..2],
        ["IDB", "DSB"],
        "secrets before the first packet"
    );
    assert!(kinds[2..].iter().all(|k| *k == "EPB"));
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
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .args([
            "-Y",
            "http",
            "-T",
            "fields",
            "-e",
            "http.request.method",
            "-e",
            "http.request.uri",
            "-e",
            "http.response.code",
        ])
        .output()
        .expect("tshark runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.contains(&"GET\t/\t"),
        "decrypted request in {lines:?}"
    );
    assert!(
        lines.contains(&"\t\t200"),
        "decrypted response in {lines:?}"
    );
}
