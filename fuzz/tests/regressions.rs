//! Replays every input in `fuzz/regressions/TARGET/` through its target, without libFuzzer:
//! each file is an input a fuzzer once found failing, kept after the fix.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut n = 0;
    for entry in entries {
        let path = entry.expect("a readable directory entry").path();
        let data = std::fs::read(&path).expect("a readable regression input");
        eprintln!("{target}: {}", path.display());
        run(&data);
        n += 1;
    }
    n
}

#[test]
fn dissect_regressions() {
    replay("dissect", fetchscope_fuzz::dissect);
}

#[test]
fn tls_records_regressions() {
    replay("tls_records", fetchscope_fuzz::tls_records);
}

#[test]
fn dns_answer_regressions() {
    replay("dns_answer", fetchscope_fuzz::dns_answer);
}

#[test]
fn capture_regressions() {
    replay("capture", fetchscope_fuzz::capture);
}

#[test]
fn replay_regressions() {
    replay("replay", fetchscope_fuzz::replay);
}

#[test]
fn http_response_regressions() {
    replay("http_response", fetchscope_fuzz::http_response);
}

/// Hand-written inputs in each format, so the targets themselves are exercised even where
/// no regression was ever recorded.
#[test]
fn formats_work_on_hand_written_inputs() {
    let response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let mut input = vec![0x02 | (3 << 3), 9];
    input.extend_from_slice(response);
    fetchscope_fuzz::http_response(&input);

    // A ClientHello-looking record split over two segments, and a reply.
    let mut tls = Vec::new();
    for (kind, bytes) in [
        (0u8, &[0x16, 0x03, 0x01, 0x00, 0x04][..]),
        (4, &[0][..]),
        (0, &[0x01, 0x00, 0x00, 0x00][..]),
        (1, &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28][..]),
        (3, &[1][..]),
    ] {
        tls.push(kind);
        tls.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        tls.extend_from_slice(bytes);
    }
    fetchscope_fuzz::tls_records(&tls);
    fetchscope_fuzz::dissect(&tls);

    // A DNS answer for www.example.test A with id 0x1234.
    let query = fetchscope_core::dns::DnsQuery::new(
        "www.example.test",
        hickory_proto::rr::RecordType::A,
        0x1234,
    )
    .expect("a valid name");
    let mut answer = query.bytes.clone();
    answer[2] |= 0x80;
    let mut input = vec![0];
    input.extend_from_slice(&answer);
    fetchscope_fuzz::dns_answer(&input);

    // A pcapng file as fetchscope writes it, whole and cut short.
    let mut spool = fetchscope_wire::pcapng::PcapngSpool::new().expect("spool");
    let ip = [0x45, 0, 0, 20, 0, 1, 0, 0, 64, 6, 0, 0, 10, 88, 1, 2, 10, 88, 0, 1];
    spool
        .push(std::time::Duration::from_secs(1), fetchscope_wire::Direction::Tx, &ip)
        .expect("push");
    let mut file = Vec::new();
    spool.finish("CLIENT_RANDOM 00 11\n", &mut file).expect("finish");
    fetchscope_fuzz::capture(&file);
    fetchscope_fuzz::capture(file.get(..file.len() / 2).unwrap_or_default());
    fetchscope_fuzz::replay(&file);
    fetchscope_fuzz::replay(file.get(..file.len() / 2).unwrap_or_default());
}
