//! fetchscope's fuzz targets, as plain functions of a byte string.
//!
//! Each `fuzz_targets/NAME.rs` calls the function of the same name here; the regression
//! test (`tests/regressions.rs`) calls them too, on every file in `regressions/NAME/`, without
//! libFuzzer. Every target checks more than "no panic": the invariants named in its doc
//! comment are asserted, so a broken invariant is a finding like a crash.
//!
//! The input formats are simple enough to write by hand and to cut out of real captures
//! (`scripts/fuzz-seeds.py` does that): a sequence of frames `[kind u8][len u16 BE][bytes]`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use fetchscope_core::dns::{AnswerVerdict, DnsQuery, check_answer};
use fetchscope_core::http::{BodySink, HttpError, HttpProgress, Limits, ResponseReader};
use fetchscope_wire::{Direction, Dissector};
use hickory_proto::rr::RecordType;

/// Most TCP connections a [`Dissector`] tracks.
const MAX_CONNECTIONS: usize = 64;
/// Upper bound of `Dissector::buffered_bytes` per connection: both directions' out-of-order
/// buffers (256 KiB each) plus, per direction, a record or head and a handshake message
/// (128 KiB), plus one segment (as in crates/fetchscope-wire/tests/robustness.rs).
const PER_CONNECTION_BOUND: usize = 2 * (256 + 128 + 64 + 64) * 1024;

/// Reads `[kind u8][len u16 BE][bytes]` frames; a short last frame takes what is left.
struct Frames<'a> {
    data: &'a [u8],
}

impl<'a> Iterator for Frames<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, rest) = self.data.split_first()?;
        let (len, rest) = match rest {
            [hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
            _ => (0, &[][..]),
        };
        let n = len.min(rest.len());
        let (frame, rest) = rest.split_at(n);
        self.data = rest;
        Some((kind, frame))
    }
}

fn frames(data: &[u8]) -> Frames<'_> {
    Frames { data }
}

/// Feeds one NSS key log line (`LABEL <client random hex> <secret hex>`) to `dissector`;
/// lines that are not of that form are skipped, as a key log reader does.
fn add_secret_line(dissector: &mut Dissector, line: &[u8]) {
    let Ok(text) = std::str::from_utf8(line) else {
        return;
    };
    for line in text.lines() {
        let mut parts = line.split_ascii_whitespace();
        let (Some(label), Some(random), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if let (Ok(random), Ok(secret)) = (hex::decode(random), hex::decode(secret)) {
            dissector.add_tls_secret(label, &random, &secret);
        }
    }
}

/// Checks what every dissection must satisfy, and that the dissector stays bounded.
fn check_dissection(dissector: &Dissector, d: &fetchscope_wire::Dissection) {
    // The one-line summary and the JSON form are built for every packet shown.
    let summary = d.summary();
    assert!(
        !summary.contains('\n'),
        "a summary is one line: {summary:?}"
    );
    let json = serde_json::to_string(d).expect("a dissection always serialises");
    assert!(json.starts_with('{'));
    assert!(dissector.connections() <= MAX_CONNECTIONS);
    let bound = dissector.connections().max(1) * PER_CONNECTION_BOUND;
    assert!(
        dissector.buffered_bytes() <= bound,
        "the dissector holds {} bytes for {} connections (bound {bound})",
        dissector.buffered_bytes(),
        dissector.connections()
    );
}

/// The packet decoder: `fetchscope_wire::Dissector::dissect` over a sequence of packets.
///
/// Input: frames `[kind][len][bytes]`; kind % 3 = 0: an IP packet sent (`tx`), 1: received
/// (`rx`), 2: TLS key log text handed over at that point (as rustls does mid-handshake), so
/// runs go with and without secrets. Checked: no panic, one-line summaries, JSON output,
/// at most 64 connections and bounded reassembly buffers after every packet.
pub fn dissect(data: &[u8]) {
    let mut dissector = Dissector::new();
    for (kind, bytes) in frames(data) {
        let dir = match kind % 3 {
            0 => Direction::Tx,
            1 => Direction::Rx,
            _ => {
                add_secret_line(&mut dissector, bytes);
                continue;
            }
        };
        let d = dissector.dissect(dir, bytes);
        check_dissection(&dissector, &d);
    }
    let _ = dissector.key_log();
}

/// The client's address and port in [`tls_records`]' connection.
const CLIENT: ([u8; 4], u16) = ([10, 88, 1, 2], 50_123);
/// The server's address and port in [`tls_records`]' connection.
const SERVER: ([u8; 4], u16) = ([10, 88, 0, 1], 443);
/// The initial sequence numbers of the client and the server.
const ISN: [u32; 2] = [0x1000_0000, 0xffff_f000];

/// The Internet checksum of `parts` (ones' complement of the ones' complement sum).
fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The largest record body any TLS version allows (TLS 1.2 ciphertext: 2^14 + 2048).
const MAX_RECORD_BODY: usize = (1 << 14) + 2048;

/// TCP flag bits.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// An IPv4 packet holding one TCP segment from side `from` (0 client, 1 server), with
/// correct lengths and checksums.
fn tcp_packet(from: usize, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let (src, dst) = if from == 0 {
        (CLIENT, SERVER)
    } else {
        (SERVER, CLIENT)
    };
    let tcp_len = 20 + payload.len();
    let total = 20 + tcp_len;
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
    p.extend_from_slice(&src.0);
    p.extend_from_slice(&dst.0);
    let ip_sum = internet_checksum(&[&p[..20]]);
    p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    p.extend_from_slice(&src.1.to_be_bytes());
    p.extend_from_slice(&dst.1.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ack.to_be_bytes());
    p.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    p.extend_from_slice(payload);
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.0);
    pseudo.extend_from_slice(&dst.0);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(tcp_len as u16).to_be_bytes());
    let sum = internet_checksum(&[&pseudo, &p[20..]]);
    p[36..38].copy_from_slice(&sum.to_be_bytes());
    p
}

/// TLS record reassembly (stream → records) through the dissector's public interface.
///
/// Input: frames `[kind][len][bytes]`; kind % 5 = 0: the client sends these bytes in one
/// segment, 1: the server does, 2: key log text handed over at that point, 3: the last
/// segment of the side `len % 2` is sent again (a retransmission), 4: the next segment of
/// side `len % 2` is held back and sent after the one following it (reordering). The bytes
/// ride on a real TCP connection (handshake, sequence and acknowledgement numbers,
/// checksums) to port 443, so every split point of the TLS stream is tried. Checked: the
/// invariants of [`dissect`], and that no record is reported with a length above the
/// protocol's 2^14 + 2048 bytes ciphertext limit unless it is named as malformed.
pub fn tls_records(data: &[u8]) {
    let mut dissector = Dissector::new();
    let mut next_seq = [ISN[0].wrapping_add(1), ISN[1].wrapping_add(1)];
    let mut last: [Option<Vec<u8>>; 2] = [None, None];
    let mut held: [Option<Vec<u8>>; 2] = [None, None];
    let mut hold_next = [false, false];
    let send = |dissector: &mut Dissector, from: usize, packet: &[u8]| {
        let dir = if from == 0 {
            Direction::Tx
        } else {
            Direction::Rx
        };
        let d = dissector.dissect(dir, packet);
        check_dissection(dissector, &d);
        for r in &d.tls {
            assert!(
                usize::from(r.length) <= MAX_RECORD_BODY || !d.problems.is_empty(),
                "a record of {} bytes reported without a problem: {r:?}",
                r.length
            );
        }
    };
    // The three-way handshake.
    send(&mut dissector, 0, &tcp_packet(0, ISN[0], 0, SYN, &[]));
    send(
        &mut dissector,
        1,
        &tcp_packet(1, ISN[1], next_seq[0], SYN | ACK, &[]),
    );
    send(
        &mut dissector,
        0,
        &tcp_packet(0, next_seq[0], next_seq[1], ACK, &[]),
    );
    for (kind, bytes) in frames(data) {
        let from = match kind % 5 {
            0 => 0,
            1 => 1,
            2 => {
                add_secret_line(&mut dissector, bytes);
                continue;
            }
            3 => {
                let side = bytes.len() % 2;
                if let Some(p) = last[side].clone() {
                    send(&mut dissector, side, &p);
                }
                continue;
            }
            _ => {
                hold_next[bytes.len() % 2] = true;
                continue;
            }
        };
        let packet = tcp_packet(from, next_seq[from], next_seq[1 - from], ACK | PSH, bytes);
        next_seq[from] = next_seq[from].wrapping_add(bytes.len() as u32);
        if std::mem::take(&mut hold_next[from]) && held[from].is_none() {
            held[from] = Some(packet);
            continue;
        }
        send(&mut dissector, from, &packet);
        if let Some(p) = held[from].take() {
            send(&mut dissector, from, &p);
        }
        last[from] = Some(packet);
    }
    for (from, p) in held.iter().enumerate() {
        if let Some(p) = p {
            send(&mut dissector, from, p);
        }
    }
    // Both sides close.
    for from in [0, 1] {
        let fin = tcp_packet(from, next_seq[from], next_seq[1 - from], FIN | ACK, &[]);
        send(&mut dissector, from, &fin);
        next_seq[from] = next_seq[from].wrapping_add(1);
    }
}

/// The names a DNS query of [`dns_answer`] asks for.
const DNS_NAMES: [&str; 4] = [
    "www.example.test",
    "example.test",
    "chain.example.test",
    "a-rather-long-label-for-compression-pointers.sub.example.test",
];
/// The DNS server of [`dns_answer`].
const DNS_SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 88, 0, 1)), 53);

/// DNS answer handling: `fetchscope_core::dns::check_answer` with a real query and
/// arbitrary bytes as the answer.
///
/// Input: one selector byte, then the datagram. Selector bits 0–1: the name asked for
/// ([`DNS_NAMES`]); bit 2: AAAA instead of A; bit 3: the query's id is taken from the
/// datagram's first two bytes (else it is 0x1234, so mismatched ids are tried too); bit 4:
/// the datagram comes from another port than the query went to. Checked: no panic; a
/// datagram from the wrong address is ignored; an accepted answer carries the query's id,
/// only addresses of the asked family, at most 16 aliases, and a TTL when it has addresses.
pub fn dns_answer(data: &[u8]) {
    let Some((&selector, answer)) = data.split_first() else {
        return;
    };
    let name = DNS_NAMES[usize::from(selector & 3)];
    let qtype = if selector & 4 != 0 {
        RecordType::AAAA
    } else {
        RecordType::A
    };
    let id = match (selector & 8 != 0, answer) {
        (true, [hi, lo, ..]) => u16::from_be_bytes([*hi, *lo]),
        _ => 0x1234,
    };
    let query = DnsQuery::new(name, qtype, id).expect("the fixed names are valid");
    let from = if selector & 16 != 0 {
        SocketAddr::new(DNS_SERVER.ip(), 5353)
    } else {
        DNS_SERVER
    };
    match check_answer(&query, DNS_SERVER, from, answer) {
        AnswerVerdict::Accept(a) => {
            assert_eq!(
                from, DNS_SERVER,
                "an answer from the wrong port was accepted"
            );
            assert!(
                answer.len() >= 2 && u16::from_be_bytes([answer[0], answer[1]]) == id,
                "an answer with another id was accepted"
            );
            for addr in &a.addresses {
                assert_eq!(
                    addr.is_ipv4(),
                    qtype == RecordType::A,
                    "{addr} answers a {qtype} query"
                );
            }
            assert!(a.cnames.len() <= 16, "{} aliases followed", a.cnames.len());
            assert!(a.addresses.is_empty() || a.ttl.is_some());
            let _ = fetchscope_core::dns::rcode_name(a.rcode);
        }
        AnswerVerdict::Ignore(reason) => {
            assert!(!reason.is_empty());
        }
    }
}

/// A sink that counts and hashes the decoded body (FNV-1a), keeping nothing.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct CountingSink {
    bytes: u64,
    hash: u64,
}

impl BodySink for CountingSink {
    fn body(&mut self, decoded: &[u8]) -> std::io::Result<()> {
        let mut h = if self.bytes == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.hash
        };
        for &b in decoded {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.hash = h;
        self.bytes += decoded.len() as u64;
        Ok(())
    }
}

/// What reading one response came to, compared between split patterns.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    complete: bool,
    failed: bool,
    /// The error's kind, when reading failed.
    error: Option<&'static str>,
    status: Option<u16>,
    sink: CountingSink,
    decoded: u64,
    wire: u64,
    used: usize,
}

/// Reads `response` with `reader`, fed in pieces whose lengths come from `split`, then
/// (when `close`) tells it the peer closed. Checks the per-call invariants.
fn read_response(
    method: &str,
    limits: Limits,
    response: &[u8],
    split: &mut impl FnMut() -> usize,
    close: bool,
) -> Outcome {
    let mut reader = ResponseReader::new(method, limits);
    let mut sink = CountingSink::default();
    let mut decoded_reported = 0u64;
    let mut used_total = 0usize;
    let mut rest = response;
    let mut failed = false;
    let mut error = None;
    while !rest.is_empty() && !reader.is_complete() {
        let n = split().clamp(1, rest.len());
        let (piece, after) = rest.split_at(n);
        match reader.feed(piece, &mut sink) {
            Ok(feed) => {
                assert!(feed.used <= piece.len(), "used more than it was given");
                for p in &feed.progress {
                    if let HttpProgress::Body { decoded, .. } = p {
                        decoded_reported += *decoded as u64;
                    }
                }
                used_total += feed.used;
                if feed.used < piece.len() {
                    assert!(reader.is_complete(), "bytes left over before the end");
                    break;
                }
            }
            Err(e) => {
                assert!(reader.is_failed());
                assert!(!e.to_string().is_empty());
                error = Some(e.kind());
                failed = true;
                break;
            }
        }
        rest = after;
    }
    if failed {
        assert!(
            matches!(reader.feed(b"x", &mut sink), Err(HttpError::AlreadyFailed)),
            "a failed reader takes no more input"
        );
    } else if close && !reader.is_complete() {
        match reader.finish(&mut sink) {
            Ok(progress) => {
                for p in &progress {
                    if let HttpProgress::Body { decoded, .. } = p {
                        decoded_reported += *decoded as u64;
                    }
                }
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                error = Some(e.kind());
                failed = true;
            }
        }
    }
    if !failed {
        assert_eq!(
            decoded_reported, sink.bytes,
            "progress events and the sink disagree"
        );
    }
    assert_eq!(
        reader.decoded_body_bytes(),
        sink.bytes,
        "the reader's count and the sink disagree"
    );
    if failed {
        // How far a failed reader got depends on where its last piece ended (a corrupt
        // gzip stream is noticed when its bad bytes arrive): only the error itself and the
        // head are compared.
        return Outcome {
            complete: false,
            failed: true,
            error,
            status: reader.head().map(|h| h.status),
            sink: CountingSink::default(),
            decoded: 0,
            wire: 0,
            used: 0,
        };
    }
    Outcome {
        complete: reader.is_complete(),
        failed: reader.is_failed(),
        error,
        status: reader.head().map(|h| h.status),
        sink,
        decoded: reader.decoded_body_bytes(),
        wire: reader.wire_body_bytes(),
        // Bytes used only mean something for a complete response.
        used: if reader.is_complete() { used_total } else { 0 },
    }
}

/// The HTTP response parser: `fetchscope_core::http::ResponseReader` fed at arbitrary
/// split points, bodies in every framing and content coding the input names.
///
/// Input: a flags byte (bit 0: the request was HEAD; bit 1: the peer closes after the
/// bytes; bit 2: small limits, so every limit is reached; bits 3–7: the largest piece, in
/// 37-byte steps), a split seed byte, then the bytes the server sent. Checked: no panic;
/// `used` never exceeds the input; body progress, the sink and the reader's counters agree;
/// a failed reader refuses more input; and the outcome (complete, or failed with which error;
/// status; decoded bytes and their hash) is the same whether the bytes come in one piece or
/// in many.
pub fn http_response(data: &[u8]) {
    let [flags, seed, response @ ..] = data else {
        return;
    };
    let method = if flags & 1 != 0 { "HEAD" } else { "GET" };
    let close = flags & 2 != 0;
    let limits = if flags & 4 != 0 {
        Limits {
            max_head_bytes: 256,
            max_headers: 4,
            max_chunk_line: 16,
            max_trailer_bytes: 32,
            max_encodings: 2,
        }
    } else {
        Limits::default()
    };
    let max_piece = 1 + usize::from(flags >> 3) * 37;
    let whole = read_response(method, limits, response, &mut || usize::MAX, close);
    let mut state = u64::from(*seed) | 0x9e37_79b9_0000_0000;
    let mut split = || {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        1 + (state % max_piece as u64) as usize
    };
    let pieces = read_response(method, limits, response, &mut split, close);
    assert_eq!(
        whole, pieces,
        "the outcome depends on where the bytes were split"
    );
}

/// The capture reader: arbitrary bytes as a pcap or pcapng file. Checked: no panic; every
/// packet is an IPv4 or IPv6 packet no longer than the file; reading ends (an error ends
/// it too); the key log stays within its bound.
pub fn capture(data: &[u8]) {
    let Ok(mut reader) = fetchscope_wire::capture::CaptureReader::open(data) else {
        return;
    };
    let mut n = 0usize;
    while let Some(p) = reader.next_packet() {
        let Ok(p) = p else {
            break;
        };
        assert!(
            matches!(p.ip.first().map(|b| b >> 4), Some(4 | 6)),
            "a packet that is not IP"
        );
        assert!(p.ip.len() <= data.len(), "a packet longer than the file");
        n += 1;
        assert!(n <= data.len(), "more packets than bytes");
    }
    assert!(reader.key_log().len() <= fetchscope_wire::capture::MAX_KEY_LOG + 1);
}

/// Drains `replay`'s events, checking each: it serialises to a JSON object with a type, and
/// its time never goes back. Returns how many there were and how many were `packet` events.
fn drain_replay(
    replay: &mut fetchscope_core::replay::Replay,
    last_t: &mut u64,
    terminal: &mut Option<bool>,
) -> (usize, usize) {
    use fetchscope_core::EventKind;
    let (mut n, mut packets) = (0, 0);
    while let Some(e) = replay.poll_event() {
        assert!(
            terminal.is_none(),
            "an event after the replay's done or error: {e:?}"
        );
        assert!(
            e.t_us >= *last_t,
            "an event's time goes back from {} to {} µs: {e:?}",
            *last_t,
            e.t_us
        );
        *last_t = e.t_us;
        let json = serde_json::to_value(&e).expect("an event always serialises");
        assert!(
            json.get("type").and_then(|t| t.as_str()).is_some(),
            "an event without a type: {json}"
        );
        match &e.kind {
            EventKind::Packet(_) => packets += 1,
            EventKind::Done(_) => *terminal = Some(true),
            EventKind::Error(err) => {
                assert!(!err.message.is_empty(), "an error without a message");
                *terminal = Some(false);
            }
            EventKind::Note { text } => assert!(!text.is_empty(), "an empty note"),
            _ => {}
        }
        n += 1;
    }
    (n, packets)
}

/// The whole replay of a capture file, as `fetchscope replay FILE` runs it: the capture
/// reader (`CaptureReader`), its Decryption Secrets Blocks handed over as they come, every
/// packet into a `fetchscope_core::replay::Replay` with the default options, and beside it
/// the first pass of `--host` (`HostFinder`, for the lab's name).
///
/// Input: the bytes of a pcap or pcapng file. Checked: no panic; every event serialises to
/// JSON and the events' times never go back; a packet the machine reports `Shown` gives
/// exactly one `packet` event and any other none; the replay ends in exactly one `done` or
/// `error` event, the last one, matching the outcome; the step-mode state serialises after
/// every packet; the events stay proportional to the input (at most one per byte, plus a
/// few), the key log within its bound.
pub fn replay(data: &[u8]) {
    use fetchscope_core::replay::{Handled, HostFinder, Replay, ReplayOptions};
    let Ok(mut reader) = fetchscope_wire::capture::CaptureReader::open(std::io::Cursor::new(data))
    else {
        return;
    };
    let mut replay = Replay::new(ReplayOptions::default());
    let mut finder = HostFinder::new("www.example.test");
    let mut key_log_seen = 0;
    let mut last_t = 0;
    let mut terminal = None;
    let mut events = 0;
    let mut learn = |reader: &fetchscope_wire::capture::CaptureReader<_>,
                     replay: &mut Replay,
                     finder: &mut HostFinder| {
        let text = reader.key_log();
        if text.len() > key_log_seen {
            let new = text.get(key_log_seen..).unwrap_or_default();
            key_log_seen = text.len();
            replay.learn_key_log(new);
            finder.learn_key_log(new);
        }
    };
    learn(&reader, &mut replay, &mut finder);
    while let Some(p) = reader.next_packet() {
        let p = match p {
            Ok(p) => p,
            Err(e) => {
                replay.note_damage(&e.to_string());
                break;
            }
        };
        learn(&reader, &mut replay, &mut finder);
        finder.packet(&p.ip);
        let handled = replay.handle_packet(p.time, &p.ip, p.truncated);
        let (n, packets) = drain_replay(&mut replay, &mut last_t, &mut terminal);
        events += n;
        let expected = usize::from(handled == Handled::Shown);
        assert_eq!(
            packets, expected,
            "{handled:?} gave {packets} packet events"
        );
        let state = replay.state();
        serde_json::to_string(&state).expect("the replay's state always serialises");
    }
    if reader.skipped() > 0 {
        replay.note_skipped_blocks(reader.skipped());
    }
    assert!(reader.key_log().len() <= fetchscope_wire::capture::MAX_KEY_LOG + 1);
    replay.finish();
    let (n, _) = drain_replay(&mut replay, &mut last_t, &mut terminal);
    events += n;
    let ok = terminal.expect("the replay ends in a done or an error event");
    assert_eq!(
        ok,
        matches!(replay.outcome(), Some(Ok(_))),
        "the last event and the outcome disagree"
    );
    assert!(
        events <= data.len() + 64,
        "{events} events from a capture of {} bytes",
        data.len()
    );
    let _ = finder.finish();
    let _ = replay.key_log();
}
