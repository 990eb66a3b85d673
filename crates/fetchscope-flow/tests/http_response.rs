//! Reading responses: framing, interim responses, content codings, errors, keep-alive.

use std::io::Write as _;

use fetchscope_core::http::{BodySink, Framing, HttpError, HttpProgress, Limits, ResponseReader};
use flate2::Compression;
use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};

/// Everything one response produced.
struct Run {
    reader: ResponseReader,
    body: Vec<u8>,
    progress: Vec<HttpProgress>,
    used: usize,
}

/// Feeds `pieces` in order (stopping at completion), then signals the close if `close`.
fn run(method: &str, pieces: &[&[u8]], close: bool) -> Result<Run, HttpError> {
    run_with(method, Limits::default(), pieces, close)
}

fn run_with(method: &str, limits: Limits, pieces: &[&[u8]], close: bool) -> Result<Run, HttpError> {
    let mut reader = ResponseReader::new(method, limits);
    let mut body = Vec::new();
    let mut progress = Vec::new();
    let mut used = 0;
    for piece in pieces {
        let feed = reader.feed(piece, &mut body)?;
        assert!(feed.used <= piece.len());
        assert!(feed.used == piece.len() || reader.is_complete());
        used += feed.used;
        progress.extend(feed.progress);
    }
    if close {
        progress.extend(reader.finish(&mut body)?);
    }
    Ok(Run {
        reader,
        body,
        progress,
        used,
    })
}

fn kind(result: Result<Run, HttpError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.kind(),
    }
}

/// The progress without details: "interim 100", "head 200", "body", "complete"
/// (consecutive body reports from several feeds merged).
fn shape(progress: &[HttpProgress]) -> Vec<String> {
    let mut shape: Vec<String> = progress
        .iter()
        .map(|p| match p {
            HttpProgress::Interim(h) => format!("interim {}", h.status),
            HttpProgress::Head(h) => format!("head {}", h.status),
            HttpProgress::Body { .. } => "body".to_owned(),
            HttpProgress::Complete => "complete".to_owned(),
        })
        .collect();
    shape.dedup_by(|a, b| a == "body" && b == "body");
    shape
}

fn body_totals(progress: &[HttpProgress]) -> (usize, usize) {
    progress.iter().fold((0, 0), |(w, d), p| match p {
        HttpProgress::Body { wire, decoded } => (w + wire, d + decoded),
        _ => (w, d),
    })
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).expect("compressing into memory");
    e.finish().expect("compressing into memory")
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).expect("compressing into memory");
    e.finish().expect("compressing into memory")
}

fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).expect("compressing into memory");
    e.finish().expect("compressing into memory")
}

/// A response head with `headers`, then `body`.
fn response(status_line: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{status_line}\r\n").into_bytes();
    for (n, v) in headers {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// `body` in chunked framing, cut into chunks of `size` bytes.
fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn page() -> Vec<u8> {
    (0..3000u32)
        .flat_map(|i| format!("<p>{i}</p>\n").into_bytes())
        .collect()
}

#[test]
fn content_length_body() {
    let wire = response(
        "HTTP/1.1 200 OK",
        &[("Content-Length", "5"), ("Content-Type", "text/plain")],
        b"hello",
    );
    let r = run("GET", &[&wire], false).unwrap();
    assert_eq!(shape(&r.progress), ["head 200", "body", "complete"]);
    assert_eq!(
        r.progress[1],
        HttpProgress::Body {
            wire: 5,
            decoded: 5
        }
    );
    assert_eq!(r.body, b"hello");
    assert_eq!(r.used, wire.len());
    let head = r.reader.head().unwrap();
    assert_eq!(head.framing, Framing::ContentLength(5));
    assert_eq!(head.header("content-type"), Some("text/plain"));
    assert_eq!(head.status_line(), "HTTP/1.1 200 OK");
    assert!(r.reader.is_complete());
    assert!(r.reader.keep_alive());
    assert_eq!(
        (r.reader.wire_body_bytes(), r.reader.decoded_body_bytes()),
        (5, 5)
    );
}

#[test]
fn every_split_point_content_length_and_chunked() {
    let body = b"The quick brown fox jumps over the lazy dog";
    let cl = response(
        "HTTP/1.1 200 OK",
        &[("Content-Length", &body.len().to_string())],
        body,
    );
    let ch = response(
        "HTTP/1.1 200 OK",
        &[("Transfer-Encoding", "chunked")],
        &chunked(body, 7),
    );
    for wire in [cl, ch] {
        for split in 0..=wire.len() {
            let (a, b) = wire.split_at(split);
            let r = run("GET", &[a, b], false).unwrap();
            assert_eq!(r.body, body, "split at {split}");
            assert_eq!(r.used, wire.len());
            assert_eq!(r.progress.last(), Some(&HttpProgress::Complete));
            assert_eq!(body_totals(&r.progress), (body.len(), body.len()));
        }
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        let r = run("GET", &bytes, false).unwrap();
        assert_eq!(r.body, body);
        assert!(r.reader.keep_alive());
    }
}

#[test]
fn chunked_with_extensions_and_trailers() {
    let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;a=b\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n";
    let r = run("GET", &[wire], false).unwrap();
    assert_eq!(r.body, b"Wikipedia");
    assert_eq!(r.reader.head().unwrap().framing, Framing::Chunked);
    assert_eq!(r.reader.wire_body_bytes(), 9);
    assert!(r.reader.keep_alive());
}

#[test]
fn close_delimited_body() {
    let wire = response("HTTP/1.1 200 OK", &[], b"until the end");
    let r = run("GET", &[&wire[..20], &wire[20..]], false).unwrap();
    assert!(!r.reader.is_complete());
    assert_eq!(r.body, b"until the end");
    let mut r = r;
    let rest = r.reader.finish(&mut r.body).unwrap();
    assert_eq!(rest, [HttpProgress::Complete]);
    assert!(r.reader.is_complete());
    assert!(!r.reader.keep_alive());
    assert_eq!(r.reader.head().unwrap().framing, Framing::UntilClose);
}

#[test]
fn empty_bodies_complete_at_once() {
    for wire in [
        response("HTTP/1.1 200 OK", &[("Content-Length", "0")], b""),
        response(
            "HTTP/1.1 200 OK",
            &[("Transfer-Encoding", "chunked")],
            b"0\r\n\r\n",
        ),
        response("HTTP/1.1 204 No Content", &[("Content-Length", "10")], b""),
        response(
            "HTTP/1.1 304 Not Modified",
            &[("Transfer-Encoding", "chunked")],
            b"",
        ),
    ] {
        let r = run("GET", &[&wire], false).unwrap();
        assert_eq!(shape(&r.progress)[1..], ["complete"]);
        assert!(r.body.is_empty());
        assert_eq!(r.used, wire.len());
        assert!(r.reader.keep_alive());
    }
    // A close-delimited empty body ends with the close.
    let wire = response("HTTP/1.0 200 OK", &[], b"");
    let r = run("GET", &[&wire], true).unwrap();
    assert_eq!(shape(&r.progress), ["head 200", "complete"]);
}

#[test]
fn head_request_leaves_the_next_response_alone() {
    let first = response(
        "HTTP/1.1 200 OK",
        &[("Content-Length", "1234"), ("Content-Encoding", "br")],
        b"",
    );
    let second = response("HTTP/1.1 200 OK", &[("Content-Length", "2")], b"ok");
    let wire = [first.clone(), second.clone()].concat();
    let r = run("HEAD", &[&wire], false).unwrap();
    assert_eq!(r.used, first.len());
    assert_eq!(r.reader.head().unwrap().framing, Framing::NoBody);
    assert!(r.reader.keep_alive());
    let next = run("GET", &[&wire[r.used..]], false).unwrap();
    assert_eq!(next.body, b"ok");
}

#[test]
fn pipelined_responses_are_split_exactly() {
    let body = page();
    let first = response(
        "HTTP/1.1 200 OK",
        &[("Transfer-Encoding", "chunked")],
        &chunked(&body, 1000),
    );
    let second = response("HTTP/1.1 404 Not Found", &[("Content-Length", "3")], b"no!");
    let wire = [first.clone(), second].concat();
    for split in [1, first.len() - 1, first.len(), first.len() + 5] {
        let mut reader = ResponseReader::new("GET", Limits::default());
        let mut out = Vec::new();
        let a = reader.feed(&wire[..split], &mut out).unwrap();
        let b = reader.feed(&wire[a.used..], &mut out).unwrap();
        assert_eq!(a.used + b.used, first.len(), "split {split}");
        assert_eq!(out, body);
        let next = run("GET", &[&wire[first.len()..]], false).unwrap();
        assert_eq!(next.reader.head().unwrap().status, 404);
        assert_eq!(next.body, b"no!");
    }
    // Feeding after completion uses nothing.
    let mut r = run("GET", &[&wire], false).unwrap();
    let again = r.reader.feed(b"more", &mut r.body).unwrap();
    assert_eq!(again.used, 0);
    assert!(again.progress.is_empty());
}

#[test]
fn interim_responses_are_skipped() {
    let wire = [
        &b"HTTP/1.1 100 Continue\r\n\r\n"[..],
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    ]
    .concat();
    for split in 0..=wire.len() {
        let r = run("GET", &[&wire[..split], &wire[split..]], false).unwrap();
        assert_eq!(
            shape(&r.progress),
            ["interim 100", "interim 103", "head 200", "body", "complete"],
            "split {split}"
        );
        assert_eq!(r.body, b"hi");
    }
    let r = run("GET", &[&wire], false).unwrap();
    let HttpProgress::Interim(hints) = &r.progress[1] else {
        panic!("not interim")
    };
    assert_eq!(hints.header("link"), Some("</style.css>; rel=preload"));
    assert_eq!(r.reader.head().unwrap().status, 200);
}

#[test]
fn switching_protocols_is_an_error() {
    let wire = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
    let mut reader = ResponseReader::new("GET", Limits::default());
    let err = reader.feed(wire, &mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), "unexpected-upgrade");
    assert_eq!(reader.head().unwrap().status, 101);
    assert!(reader.is_failed());
    assert!(!reader.keep_alive());
}

#[test]
fn gzip_deflate_and_stacked_codings() {
    let body = page();
    let cases: [(&str, Vec<u8>, Option<bool>); 5] = [
        ("gzip", gzip(&body), None),
        ("x-gzip", gzip(&body), None),
        ("deflate", zlib(&body), Some(true)),
        ("deflate", raw_deflate(&body), Some(false)),
        ("gzip, deflate", zlib(&gzip(&body)), Some(true)),
    ];
    for (coding, encoded, zlib_wrapped) in cases {
        for framing in ["length", "chunked"] {
            let wire = if framing == "length" {
                response(
                    "HTTP/1.1 200 OK",
                    &[
                        ("Content-Encoding", coding),
                        ("Content-Length", &encoded.len().to_string()),
                    ],
                    &encoded,
                )
            } else {
                response(
                    "HTTP/1.1 200 OK",
                    &[
                        ("Content-Encoding", coding),
                        ("Transfer-Encoding", "chunked"),
                    ],
                    &chunked(&encoded, 300),
                )
            };
            let pieces: Vec<&[u8]> = wire.chunks(97).collect();
            let r = run("GET", &pieces, false).unwrap();
            assert_eq!(r.body, body, "{coding} {framing}");
            assert_eq!(r.reader.wire_body_bytes(), encoded.len() as u64);
            assert_eq!(r.reader.decoded_body_bytes(), body.len() as u64);
            assert_eq!(body_totals(&r.progress), (encoded.len(), body.len()));
            assert_eq!(r.reader.deflate_zlib_wrapped(), zlib_wrapped, "{coding}");
            assert!(!r.reader.is_identity_coded());
            assert!(r.reader.keep_alive());
        }
    }
}

#[test]
fn gzip_chunked_at_every_split_point() {
    let body = b"compressed and chunked, split everywhere";
    let wire = response(
        "HTTP/1.1 200 OK",
        &[
            ("Content-Encoding", "gzip"),
            ("Transfer-Encoding", "chunked"),
        ],
        &chunked(&gzip(body), 10),
    );
    for split in 0..=wire.len() {
        let r = run("GET", &[&wire[..split], &wire[split..]], false).unwrap();
        assert_eq!(r.body, body, "split {split}");
        assert!(r.reader.is_complete());
    }
}

#[test]
fn gzip_until_close() {
    let body = page();
    let wire = response(
        "HTTP/1.0 200 OK",
        &[("Content-Encoding", "gzip")],
        &gzip(&body),
    );
    let r = run("GET", &[&wire], true).unwrap();
    assert_eq!(r.body, body);
    assert!(r.reader.is_complete());
    // Cut short: the close reveals the unfinished gzip stream.
    let cut = &wire[..wire.len() - 10];
    assert_eq!(kind(run("GET", &[cut], true)), "corrupt-encoding");
}

/// A status line, headers, and whether the connection may be reused.
type KeepAliveCase = (&'static str, &'static [(&'static str, &'static str)], bool);

#[test]
fn keep_alive_decisions() {
    let cases: [KeepAliveCase; 8] = [
        ("HTTP/1.1 200 OK", &[("Content-Length", "0")], true),
        (
            "HTTP/1.1 200 OK",
            &[("Content-Length", "0"), ("Connection", "close")],
            false,
        ),
        (
            "HTTP/1.1 200 OK",
            &[("Content-Length", "0"), ("Connection", "keep-alive, Close")],
            false,
        ),
        ("HTTP/1.0 200 OK", &[("Content-Length", "0")], false),
        (
            "HTTP/1.0 200 OK",
            &[("Content-Length", "0"), ("Connection", "Keep-Alive")],
            true,
        ),
        ("HTTP/1.1 204 No Content", &[], true),
        (
            "HTTP/1.1 200 OK",
            &[("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
            false,
        ),
        ("HTTP/1.1 200 OK", &[("Transfer-Encoding", "gzip")], false),
    ];
    for (status, headers, expected) in cases {
        let mut wire = response(status, headers, b"");
        if headers.iter().any(|(_, v)| *v == "chunked") {
            wire.extend_from_slice(b"0\r\n\r\n");
        }
        let close = headers.iter().any(|(_, v)| *v == "gzip");
        let r = run("GET", &[&wire], close).unwrap();
        assert!(r.reader.is_complete(), "{status} {headers:?}");
        assert_eq!(
            r.reader.keep_alive(),
            expected && !close,
            "{status} {headers:?}"
        );
    }
    // Not complete yet: no reuse; the peer closing afterwards: no reuse either.
    let wire = response("HTTP/1.1 200 OK", &[("Content-Length", "4")], b"ab");
    assert!(!run("GET", &[&wire], false).unwrap().reader.keep_alive());
    let wire = response("HTTP/1.1 200 OK", &[("Content-Length", "2")], b"ab");
    assert!(!run("GET", &[&wire], true).unwrap().reader.keep_alive());
}

#[test]
fn unsupported_coding_only_matters_with_a_body() {
    let with_body = response(
        "HTTP/1.1 200 OK",
        &[("Content-Encoding", "br"), ("Content-Length", "3")],
        b"xyz",
    );
    let mut reader = ResponseReader::new("GET", Limits::default());
    let err = reader.feed(&with_body, &mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), "unsupported-encoding");
    assert!(err.to_string().contains("`br`"), "{err}");
    assert_eq!(reader.head().unwrap().content_encoding, ["br"]);
    let empty = response(
        "HTTP/1.1 200 OK",
        &[("Content-Encoding", "br"), ("Content-Length", "0")],
        b"",
    );
    assert!(run("GET", &[&empty], false).unwrap().reader.is_complete());
}

/// A gzip body whose Content-Length ends before the gzip stream does.
fn truncated_gzip_with_length() -> Vec<u8> {
    let encoded = gzip(&page());
    let cut = &encoded[..encoded.len() - 4];
    response(
        "HTTP/1.1 200 OK",
        &[
            ("Content-Encoding", "gzip"),
            ("Content-Length", &cut.len().to_string()),
        ],
        cut,
    )
}

/// A sink that refuses everything.
struct Full;

impl BodySink for Full {
    fn body(&mut self, _decoded: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::other("disk full"))
    }
}

#[test]
fn every_error_kind() {
    let huge_head = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(70_000));
    let many_headers = format!("HTTP/1.1 200 OK\r\n{}\r\n", "A: b\r\n".repeat(101));
    let long_chunk_line = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;{}\r\n",
        "e".repeat(5000)
    );
    let big_trailers = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n{}",
        "T: v\r\n".repeat(3000)
    );
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("malformed-status-line", b"HTTP/1.1 2000 OK\r\n\r\n".to_vec(), false),
        ("malformed-status-line", b"SSH-2.0-OpenSSH_9.6\r\n".to_vec(), false),
        ("malformed-header", b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n".to_vec(), false),
        ("headers-too-large", huge_head.into_bytes(), false),
        ("too-many-headers", many_headers.into_bytes(), false),
        ("no-response", Vec::new(), true),
        ("truncated-head", b"HTTP/1.1 200 OK\r\nContent-Le".to_vec(), true),
        ("unexpected-upgrade", b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec(), false),
        ("invalid-content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n".to_vec(), false),
        ("conflicting-length", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n".to_vec(), false),
        ("bad-chunk-size", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(), false),
        ("bad-chunk-size", long_chunk_line.into_bytes(), false),
        ("malformed-chunk", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n".to_vec(), false),
        ("trailers-too-large", big_trailers.into_bytes(), false),
        ("truncated-body", b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\nabc".to_vec(), true),
        ("truncated-body", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab".to_vec(), true),
        ("corrupt-encoding", b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope".to_vec(), false),
        ("corrupt-encoding", truncated_gzip_with_length(), false),
        ("unsupported-encoding", b"HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nContent-Length: 1\r\n\r\nx".to_vec(), false),
        ("too-many-encodings", b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip,gzip,gzip,gzip,gzip,gzip\r\nContent-Length: 1\r\n\r\nx".to_vec(), false),
    ];
    for (expected, wire, close) in cases {
        assert_eq!(
            kind(run("GET", &[&wire], close)),
            expected,
            "{}",
            String::from_utf8_lossy(&wire[..wire.len().min(60)])
        );
    }

    let wire = response("HTTP/1.1 200 OK", &[("Content-Length", "3")], b"abc");
    let mut reader = ResponseReader::new("GET", Limits::default());
    let err = reader.feed(&wire, &mut Full).unwrap_err();
    assert_eq!(err.kind(), "sink");
    assert_eq!(
        err.to_string(),
        "could not store the response body: disk full"
    );
    let again = reader.feed(b"", &mut Vec::new()).unwrap_err();
    assert_eq!(again.kind(), "already-failed");
    assert_eq!(
        reader.finish(&mut Vec::new()).unwrap_err().kind(),
        "already-failed"
    );
}

#[test]
fn error_messages_are_sentences() {
    let err = run(
        "GET",
        &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n".as_slice(),
            &[b'x'; 1200],
        ],
        true,
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        "the server's response ended after 1200 of 5000 bytes (Content-Length)"
    );
    let err = run(
        "GET",
        &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n".as_slice()],
        true,
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        "the server's chunked response ended after 4 body bytes, before the last chunk"
    );
    let err = run("GET", &[b"hello\r\n".as_slice()], false).err().unwrap();
    assert_eq!(
        err.to_string(),
        "the server's status line is not valid HTTP/1.x: `hello`"
    );
}

#[test]
fn close_during_trailers_still_completes() {
    let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Tr";
    let r = run("GET", &[wire], true).unwrap();
    assert_eq!(r.body, b"ok");
    assert!(r.reader.is_complete());
    assert!(!r.reader.keep_alive());
}

#[test]
fn small_limits_apply() {
    let limits = Limits {
        max_head_bytes: 40,
        ..Limits::default()
    };
    let wire = response(
        "HTTP/1.1 200 OK",
        &[("Content-Length", "0"), ("X-Long", "0123456789")],
        b"",
    );
    assert_eq!(
        kind(run_with("GET", limits, &[&wire], false)),
        "headers-too-large"
    );
    let short = response("HTTP/1.1 200 OK", &[("Content-Length", "0")], b"");
    assert_eq!(kind(run_with("GET", limits, &[&short], false)), "ok");
}
