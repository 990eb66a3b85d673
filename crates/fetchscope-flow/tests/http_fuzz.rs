//! Random and mutated responses, fed at random split points: never a panic, never a hang,
//! and the reader's invariants hold. Seeded, bounded in count and time.

use std::io::Write as _;
use std::time::{Duration, Instant};

use fetchscope_core::http::{HttpProgress, Limits, ResponseReader};
use flate2::Compression;
use flate2::write::{GzEncoder, ZlibEncoder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ROUNDS: usize = 10_000;
const TIME_LIMIT: Duration = Duration::from_secs(60);

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).expect("compressing into memory");
    e.finish().expect("compressing into memory")
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).expect("compressing into memory");
    e.finish().expect("compressing into memory")
}

fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in body.chunks(size) {
        out.extend_from_slice(format!("{:x};x=y\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\nTrailer: t\r\n\r\n");
    out
}

/// Well-formed responses of every shape, the seeds for mutation.
fn corpus() -> Vec<Vec<u8>> {
    let body: Vec<u8> = (0..400u32)
        .flat_map(|i| format!("{i},").into_bytes())
        .collect();
    let gz = gzip(&body);
    let stacked = zlib(&gz);
    let mut out = vec![
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes(),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
        format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            gz.len()
        )
        .into_bytes(),
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
        b"HTTP/1.0 200 OK\r\nContent-Encoding: gzip, deflate\r\n\r\n".to_vec(),
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n".to_vec(),
        b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n".to_vec(),
        b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nplain until close".to_vec(),
    ];
    out[0].extend_from_slice(&body);
    out[1].extend(chunked(&body, 64));
    out[2].extend_from_slice(&gz);
    out[3].extend(chunked(&gz, 50));
    out[4].extend_from_slice(&stacked);
    out
}

/// Damages `input` in one of several ways.
fn mutate(rng: &mut StdRng, input: &mut Vec<u8>) {
    const TOKENS: [&[u8]; 12] = [
        b"\r\n",
        b"\n",
        b"\r",
        b":",
        b";",
        b" ",
        b"0",
        b"ffffffffffffffffffff",
        b"\r\n\r\n",
        b"Content-Length: 3\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
    ];
    for _ in 0..rng.random_range(1..4) {
        let len = input.len();
        let at = if len == 0 {
            0
        } else {
            rng.random_range(0..len)
        };
        match rng.random_range(0..6) {
            0 if len > 0 => input[at] = rng.random(),
            1 if len > 0 => input[at] ^= 1 << rng.random_range(0..8),
            2 => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                input.splice(at..at, token.iter().copied());
            }
            3 if len > 0 => {
                let end = (at + rng.random_range(1..16)).min(len);
                input.drain(at..end);
            }
            4 => input.truncate(at),
            _ => {
                let end = (at + rng.random_range(1..32)).min(len);
                let copy = input[at..end].to_vec();
                input.splice(at..at, copy);
            }
        }
    }
}

/// Feeds `input` cut at random points, checks the invariants, then closes the stream.
fn feed_randomly(rng: &mut StdRng, input: &[u8], limits: Limits) -> &'static str {
    let method = if rng.random_bool(0.1) { "HEAD" } else { "GET" };
    let mut reader = ResponseReader::new(method, limits);
    let mut body = Vec::new();
    let mut rest = input;
    let mut completes = 0;
    let mut calls = 0;
    while !rest.is_empty() {
        calls += 1;
        assert!(
            calls <= input.len() + 1,
            "the reader stopped consuming input"
        );
        let take = rng.random_range(1..=rest.len().min(64));
        let piece = &rest[..take];
        match reader.feed(piece, &mut body) {
            Ok(feed) => {
                assert!(feed.used <= piece.len());
                assert!(feed.used == piece.len() || reader.is_complete());
                completes += feed
                    .progress
                    .iter()
                    .filter(|p| **p == HttpProgress::Complete)
                    .count();
                if reader.is_complete() {
                    break;
                }
                rest = &rest[take..];
            }
            Err(error) => {
                assert!(!error.kind().is_empty());
                assert!(!error.to_string().is_empty());
                assert!(!reader.keep_alive());
                return error.kind();
            }
        }
    }
    match reader.finish(&mut body) {
        Ok(progress) => {
            completes += progress
                .iter()
                .filter(|p| **p == HttpProgress::Complete)
                .count();
            assert!(reader.is_complete());
            assert_eq!(completes, 1);
            assert_eq!(reader.decoded_body_bytes(), body.len() as u64);
            "complete"
        }
        Err(error) => error.kind(),
    }
}

#[test]
fn mutated_responses_never_panic() {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(0x5eed_4477);
    let corpus = corpus();
    let mut outcomes = std::collections::BTreeMap::new();
    for round in 0..ROUNDS {
        assert!(started.elapsed() < TIME_LIMIT, "too slow at round {round}");
        let mut input = corpus[rng.random_range(0..corpus.len())].clone();
        if rng.random_bool(0.9) {
            mutate(&mut rng, &mut input);
        }
        let limits = if rng.random_bool(0.3) {
            Limits {
                max_head_bytes: rng.random_range(1..200),
                max_headers: rng.random_range(0..4),
                max_chunk_line: rng.random_range(1..16),
                max_trailer_bytes: rng.random_range(0..16),
                max_encodings: rng.random_range(0..3),
            }
        } else {
            Limits::default()
        };
        *outcomes
            .entry(feed_randomly(&mut rng, &input, limits))
            .or_insert(0) += 1;
    }
    eprintln!("outcomes: {outcomes:?}");
    // The mutations reach deep: complete responses and many different failures.
    assert!(
        outcomes.get("complete").copied().unwrap_or(0) > ROUNDS / 20,
        "{outcomes:?}"
    );
    assert!(outcomes.len() >= 12, "{outcomes:?}");
}

#[test]
fn random_bytes_never_panic() {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(42);
    for _ in 0..2000 {
        assert!(started.elapsed() < TIME_LIMIT);
        let len = rng.random_range(0..600);
        let mut input: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if rng.random_bool(0.5) {
            let prefix: &[u8] = match rng.random_range(0..3) {
                0 => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                1 => b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n\x1f\x8b\x08\x00",
                _ => b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\n\r\n\x78\x9c",
            };
            input.splice(0..0, prefix.iter().copied());
        }
        feed_randomly(&mut rng, &input, Limits::default());
    }
}

#[test]
fn trickled_huge_head_stays_linear() {
    // 64 KiB of header lines, one byte per feed: must finish quickly (no re-parsing per byte).
    let started = Instant::now();
    let mut wire = b"HTTP/1.1 200 OK\r\n".to_vec();
    while wire.len() < 60_000 {
        wire.extend_from_slice(b"a:\r\n");
    }
    wire.extend_from_slice(b"\r\n");
    let limits = Limits {
        max_headers: 20_000,
        ..Limits::default()
    };
    let mut reader = ResponseReader::new("GET", limits);
    let mut body = Vec::new();
    for byte in &wire {
        reader.feed(std::slice::from_ref(byte), &mut body).unwrap();
    }
    assert!(reader.head().is_some());
    // Blank lines before the status line are skipped, but count against the limit.
    let mut reader = ResponseReader::new("GET", Limits::default());
    let blanks = vec![b'\n'; 70_000];
    let err = reader.feed(&blanks, &mut body).unwrap_err();
    assert_eq!(err.kind(), "headers-too-large");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}
