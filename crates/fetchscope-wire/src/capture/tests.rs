use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

use super::*;
use crate::Direction;
use crate::pcapng::PcapngSpool;

/// A minimal IPv4 packet (header only) with `id` in its identification field.
fn ipv4(id: u8) -> Vec<u8> {
    let mut p = vec![
        0x45, 0, 0, 20, 0, id, 0, 0, 64, 6, 0, 0, 10, 88, 1, 2, 10, 88, 0, 1,
    ];
    p.truncate(20);
    p
}

fn read_all(bytes: &[u8]) -> (Vec<CapturedPacket>, Option<CaptureError>, String, u64) {
    let mut r = CaptureReader::open(bytes).expect("opens");
    let mut packets = Vec::new();
    let mut error = None;
    while let Some(p) = r.next_packet() {
        match p {
            Ok(p) => packets.push(p),
            Err(e) => error = Some(e),
        }
    }
    (packets, error, r.key_log().to_owned(), r.skipped())
}

#[test]
fn fetchscope_pcapng_round_trips_with_its_secrets() {
    let mut spool = PcapngSpool::new().expect("spool");
    let t0 = Duration::from_secs(1_767_225_600);
    for (i, dir) in [Direction::Tx, Direction::Rx, Direction::Tx]
        .into_iter()
        .enumerate()
    {
        spool
            .push(
                t0 + Duration::from_micros(10 * i as u64),
                dir,
                &ipv4(i as u8),
            )
            .expect("push");
    }
    let key_log = "CLIENT_RANDOM 00 11\n";
    let mut file = Vec::new();
    spool.finish(key_log, &mut file).expect("finish");
    let (packets, error, keys, skipped) = read_all(&file);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(packets.len(), 3);
    assert_eq!(packets[1].ip, ipv4(1));
    assert_eq!(packets[2].time, t0 + Duration::from_micros(20));
    assert!(!packets[0].truncated);
    assert_eq!(keys, key_log);
    assert_eq!(skipped, 0);
}

#[test]
fn ethernet_vlan_cooked_and_non_ip_frames() {
    let mut eth = vec![0u8; 12];
    eth.extend_from_slice(&[0x08, 0x00]);
    eth.extend(ipv4(7));
    let mut vlan = vec![0u8; 12];
    vlan.extend_from_slice(&[0x81, 0x00, 0, 5, 0x08, 0x00]);
    vlan.extend(ipv4(8));
    let mut arp = vec![0u8; 12];
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0]);
    let mut file = Vec::new();
    let mut w = PcapWriter::with_header(&mut file, PcapHeader::default()).expect("writer");
    for (i, frame) in [&eth, &vlan, &arp].iter().enumerate() {
        let p = PcapPacket::new(
            Duration::from_secs(100 + i as u64),
            frame.len() as u32,
            frame.as_slice(),
        )
        .expect("a valid packet");
        w.write_packet(&p).expect("write");
    }
    let _ = w.into_inner();
    let (packets, error, _, skipped) = read_all(&file);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        packets.iter().map(|p| p.ip.clone()).collect::<Vec<_>>(),
        [ipv4(7), ipv4(8)]
    );
    assert_eq!(
        packets[0].original_len, 20,
        "the link header is not counted"
    );
    assert_eq!(skipped, 1, "the ARP frame");

    let mut sll2 = vec![0x08, 0x00];
    sll2.extend_from_slice(&[0u8; 18]);
    sll2.extend(ipv4(9));
    assert_eq!(
        ip_payload(DataLink::LINUX_SLL2, &sll2).expect("link"),
        Some(&ipv4(9)[..])
    );
    let mut sll = vec![0u8; 14];
    sll.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    assert_eq!(
        ip_payload(DataLink::LINUX_SLL, &sll)
            .expect("link")
            .map(|p| p[0]),
        Some(0x60)
    );
}

#[test]
fn damaged_and_foreign_files_are_errors() {
    let e = CaptureReader::open(&b"GET / HTTP/1.1\r\n"[..]).expect_err("not a capture");
    assert!(e.to_string().contains("47 45 54 20"), "{e}");
    let e = CaptureReader::open(&b""[..]).expect_err("empty");
    assert!(e.to_string().contains("empty"), "{e}");

    // Cut in the middle of the last packet block: the packets before it are read.
    let mut spool = PcapngSpool::new().expect("spool");
    for i in 0..3u8 {
        spool
            .push(Duration::from_secs(1), Direction::Rx, &ipv4(i))
            .expect("push");
    }
    let mut file = Vec::new();
    spool.finish("", &mut file).expect("finish");
    file.truncate(file.len() - 10);
    let (packets, error, _, _) = read_all(&file);
    assert_eq!(packets.len(), 2);
    let e = error.expect("the cut is an error");
    assert!(e.to_string().contains("after 2 packets"), "{e}");

    // A block claiming 4 GiB: an error, not an allocation.
    let mut huge = file[..28].to_vec();
    huge.extend_from_slice(&[6, 0, 0, 0, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0]);
    let (_, error, _, _) = read_all(&huge);
    assert!(error.is_some());

    // A link type this reader does not know.
    let header = PcapHeader {
        datalink: DataLink::IEEE802_11,
        ..PcapHeader::default()
    };
    let mut wifi = Vec::new();
    let _ = PcapWriter::with_header(&mut wifi, header)
        .expect("writer")
        .into_inner();
    let e = CaptureReader::open(&wifi[..]).expect_err("link type");
    assert!(matches!(e, CaptureError::LinkType(105)), "{e}");
}
