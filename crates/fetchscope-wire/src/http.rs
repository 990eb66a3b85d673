//! HTTP/1.x start lines: detection, and message framing over a cleartext TCP stream.

use std::collections::VecDeque;

use serde::Serialize;

use crate::error::DecodeError;

/// The longest start line looked at; longer ones are not recognised.
const MAX_LINE: usize = 4096;
/// A reported start line is cut to this many characters (with "…").
const MAX_REPORTED_CHARS: usize = 200;
/// A message head larger than this stops decoding of the stream.
const MAX_HEAD: usize = 64 * 1024;
/// A chunk-size or trailer line longer than this stops decoding of the stream.
const MAX_CHUNK_LINE: usize = 1024;
/// At most this many requests are remembered while waiting for their responses.
const MAX_PENDING_REQUESTS: usize = 64;
/// At most this many headers are parsed per message.
const MAX_HEADERS: usize = 128;

const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// The start line of an HTTP/1.x message seen in a cleartext TCP stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpLine {
    /// "GET / HTTP/1.1" or "HTTP/1.1 200 OK" (printable, at most 200 characters).
    pub line: String,
}

/// True when `bytes` could begin an HTTP/1.x request or response.
pub(crate) fn looks_like_start(bytes: &[u8]) -> bool {
    bytes.starts_with(b"HTTP/1.")
        || METHODS.iter().any(|m| {
            bytes.len() > m.len()
                && bytes.starts_with(m.as_bytes())
                && bytes.get(m.len()) == Some(&b' ')
        })
}

/// The first line of `bytes` if it is an HTTP/1.x request line or status line.
pub(crate) fn start_line(bytes: &[u8]) -> Option<String> {
    if !looks_like_start(bytes) {
        return None;
    }
    let window = bytes.get(..MAX_LINE).unwrap_or(bytes);
    let end = window.iter().position(|&b| b == b'\n')?;
    let line = window.get(..end)?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !line.iter().all(|b| (0x20..0x7f).contains(b)) {
        return None;
    }
    let text = std::str::from_utf8(line).ok()?;
    let valid = if let Some(rest) = text.strip_prefix("HTTP/1.") {
        // "HTTP/1.1 200 OK": a version digit, a space, three digits.
        let b = rest.as_bytes();
        b.len() >= 5
            && b[0].is_ascii_digit()
            && b[1] == b' '
            && b[2..5].iter().all(u8::is_ascii_digit)
    } else {
        // "GET / HTTP/1.1"
        let mut parts = text.split(' ');
        matches!(
            (parts.next(), parts.next(), parts.next(), parts.next()),
            (Some(_), Some(target), Some(version), None)
                if !target.is_empty() && version.starts_with("HTTP/1.")
        )
    };
    valid.then(|| {
        let mut out: String = text.chars().take(MAX_REPORTED_CHARS).collect();
        if text.len() > out.len() {
            out.push('…');
        }
        out
    })
}

/// Where one direction's stream is inside the current message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a message head.
    Head,
    /// Skipping this many body bytes.
    Body(u64),
    /// Reading a chunk-size line.
    ChunkSize,
    /// Skipping this many chunk-data bytes.
    ChunkData(u64),
    /// Skipping the CRLF after chunk data; the number says how many bytes remain.
    ChunkEnd(u8),
    /// Reading trailer lines until an empty one.
    Trailer,
    /// The body runs until the connection closes.
    UntilClose,
    /// Framing lost; nothing more is decoded.
    Lost,
}

/// One direction of a cleartext HTTP/1.x connection.
#[derive(Debug)]
struct HttpHalf {
    phase: Phase,
    buf: Vec<u8>,
}

impl Default for HttpHalf {
    fn default() -> Self {
        HttpHalf {
            phase: Phase::Head,
            buf: Vec::new(),
        }
    }
}

/// A cleartext HTTP/1.x connection: message framing for both directions.
#[derive(Debug, Default)]
pub(crate) struct HttpConn {
    halves: [HttpHalf; 2],
    /// For each request whose response has not begun: true when it was HEAD.
    pending_head: VecDeque<bool>,
}

/// What a message head says about the body that follows.
enum BodyKind {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

impl HttpConn {
    /// Adds in-order stream bytes from `side`; returns the start lines of messages whose
    /// heads complete here.
    pub fn feed(&mut self, side: usize, bytes: &[u8]) -> (Vec<HttpLine>, Vec<DecodeError>) {
        let mut lines = Vec::new();
        let mut problems = Vec::new();
        let mut rest: &[u8] = bytes;
        while let Some(half) = self.halves.get_mut(side) {
            if rest.is_empty() || half.phase == Phase::Lost {
                break;
            }
            match half.phase {
                Phase::Head => {
                    if half.buf.is_empty() {
                        // Blank lines before a message are allowed (RFC 9112 §2.2).
                        let blanks = rest
                            .iter()
                            .take_while(|&&b| b == b'\r' || b == b'\n')
                            .count();
                        rest = rest.get(blanks..).unwrap_or_default();
                        if rest.is_empty() {
                            break;
                        }
                    }
                    let old = half.buf.len();
                    half.buf.extend_from_slice(rest);
                    let Some(end) = find(&half.buf, b"\r\n\r\n", old.saturating_sub(3)) else {
                        if half.buf.len() > MAX_HEAD {
                            problems.push(DecodeError::field("header block over", MAX_HEAD));
                            self.lose(side);
                        } else if half.buf.len() >= 8 && !looks_like_start(&half.buf) {
                            problems.push(DecodeError::field("start line", "not HTTP/1.x"));
                            self.lose(side);
                        }
                        break;
                    };
                    let end = end + 4;
                    // The bytes before `old` held no complete head, so the head ends in `rest`.
                    rest = rest.get(end.saturating_sub(old)..).unwrap_or_default();
                    half.buf.truncate(end);
                    let head = std::mem::take(&mut half.buf);
                    match self.head(&head) {
                        Ok((line, next)) => {
                            lines.push(line);
                            if let Some(h) = self.halves.get_mut(side) {
                                h.phase = next;
                            }
                        }
                        Err(e) => {
                            problems.push(e);
                            self.lose(side);
                        }
                    }
                }
                Phase::Body(n) | Phase::ChunkData(n) => {
                    let take = usize::try_from(n).unwrap_or(usize::MAX).min(rest.len());
                    rest = &rest[take..];
                    let left = n.saturating_sub(take as u64);
                    half.phase = match (half.phase, left) {
                        (Phase::Body(_), 0) => Phase::Head,
                        (Phase::Body(_), l) => Phase::Body(l),
                        (_, 0) => Phase::ChunkEnd(2),
                        (_, l) => Phase::ChunkData(l),
                    };
                }
                Phase::ChunkEnd(n) => {
                    let take = usize::from(n).min(rest.len());
                    rest = &rest[take..];
                    let left = n.saturating_sub(take as u8);
                    half.phase = if left == 0 {
                        Phase::ChunkSize
                    } else {
                        Phase::ChunkEnd(left)
                    };
                }
                Phase::ChunkSize | Phase::Trailer => {
                    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                        half.buf.extend_from_slice(rest);
                        if half.buf.len() > MAX_CHUNK_LINE {
                            problems.push(DecodeError::field("chunk line over", MAX_CHUNK_LINE));
                            self.lose(side);
                        }
                        break;
                    };
                    half.buf.extend_from_slice(&rest[..nl]);
                    rest = &rest[nl + 1..];
                    let line = std::mem::take(&mut half.buf);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    if half.phase == Phase::Trailer {
                        if line.is_empty() {
                            half.phase = Phase::Head;
                        }
                        continue;
                    }
                    match chunk_size(line) {
                        Some(0) => half.phase = Phase::Trailer,
                        Some(n) => half.phase = Phase::ChunkData(n),
                        None => {
                            problems.push(DecodeError::field(
                                "chunk size",
                                String::from_utf8_lossy(line.get(..16).unwrap_or(line)),
                            ));
                            self.lose(side);
                        }
                    }
                }
                Phase::UntilClose | Phase::Lost => break,
            }
        }
        (lines, problems)
    }

    /// Bytes held in head and chunk-line buffers.
    pub fn buffered(&self) -> usize {
        self.halves.iter().map(|h| h.buf.len()).sum()
    }

    /// Stops decoding `side` after bytes went missing.
    pub fn lose(&mut self, side: usize) {
        if let Some(half) = self.halves.get_mut(side) {
            half.phase = Phase::Lost;
            half.buf = Vec::new();
        }
    }

    /// Parses a complete head; returns its start line and the phase that follows.
    fn head(&mut self, head: &[u8]) -> Result<(HttpLine, Phase), DecodeError> {
        let line =
            start_line(head).ok_or_else(|| DecodeError::field("start line", "not HTTP/1.x"))?;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let body = if head.starts_with(b"HTTP/") {
            let mut resp = httparse::Response::new(&mut headers);
            resp.parse(head)
                .map_err(|e| DecodeError::Rejected(format!("response head: {e}")))?;
            let status = resp.code.unwrap_or(0);
            if (100..200).contains(&status) {
                BodyKind::None
            } else {
                let to_head = self.pending_head.pop_front().unwrap_or(false);
                if to_head || status == 204 || status == 304 {
                    BodyKind::None
                } else {
                    body_kind(resp.headers, BodyKind::UntilClose)?
                }
            }
        } else {
            let mut req = httparse::Request::new(&mut headers);
            req.parse(head)
                .map_err(|e| DecodeError::Rejected(format!("request head: {e}")))?;
            if self.pending_head.len() < MAX_PENDING_REQUESTS {
                self.pending_head.push_back(req.method == Some("HEAD"));
            }
            body_kind(req.headers, BodyKind::None)?
        };
        let phase = match body {
            BodyKind::None | BodyKind::Length(0) => Phase::Head,
            BodyKind::Length(n) => Phase::Body(n),
            BodyKind::Chunked => Phase::ChunkSize,
            BodyKind::UntilClose => Phase::UntilClose,
        };
        Ok((HttpLine { line }, phase))
    }
}

fn body_kind(
    headers: &[httparse::Header<'_>],
    otherwise: BodyKind,
) -> Result<BodyKind, DecodeError> {
    let mut kind = otherwise;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let value = String::from_utf8_lossy(h.value).to_ascii_lowercase();
            if value.trim_end().ends_with("chunked") {
                return Ok(BodyKind::Chunked);
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value).unwrap_or("").trim();
            let n = text
                .parse::<u64>()
                .map_err(|_| DecodeError::field("content-length", text))?;
            kind = BodyKind::Length(n);
        }
    }
    Ok(kind)
}

fn chunk_size(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    let digits = text.split(';').next()?.trim();
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_lines() {
        assert_eq!(
            start_line(b"GET / HTTP/1.1\r\nHost: x\r\n").as_deref(),
            Some("GET / HTTP/1.1")
        );
        assert_eq!(
            start_line(b"HTTP/1.1 200 OK\r\n").as_deref(),
            Some("HTTP/1.1 200 OK")
        );
        assert_eq!(
            start_line(b"HTTP/1.1 404 Not Found\n").as_deref(),
            Some("HTTP/1.1 404 Not Found")
        );
        assert_eq!(start_line(b"GET / HTTP/1.1"), None, "no line end yet");
        assert_eq!(start_line(b"GET /\x01 HTTP/1.1\r\n"), None);
        assert_eq!(start_line(b"\x16\x03\x01\x00"), None);
        assert_eq!(start_line(b"GETX / HTTP/1.1\r\n"), None);
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(300));
        let line = start_line(long.as_bytes()).expect("long line");
        assert_eq!(line.chars().count(), MAX_REPORTED_CHARS + 1);
        assert!(line.ends_with('…'));
    }

    #[test]
    fn framing_content_length_and_chunked() {
        let mut conn = HttpConn::default();
        let req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
        let (lines, problems) = conn.feed(0, &req[..10]);
        assert!(lines.is_empty() && problems.is_empty());
        let (lines, _) = conn.feed(0, &req[10..]);
        let got: Vec<_> = lines.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(got, vec!["GET /a HTTP/1.1", "GET /b HTTP/1.1"]);

        // A body that looks like a status line is not mistaken for a message start.
        let resp1 = b"HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\nHTTP/1.1 999 fake\r\n";
        let resp2 = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHTTP/\r\n0\r\n\r\n";
        let resp3 = b"HTTP/1.1 204 No Content\r\n\r\n";
        let mut all = Vec::new();
        all.extend_from_slice(resp1);
        all.extend_from_slice(resp2);
        all.extend_from_slice(resp3);
        let mut seen = Vec::new();
        for chunk in all.chunks(7) {
            let (lines, problems) = conn.feed(1, chunk);
            assert!(problems.is_empty(), "{problems:?}");
            seen.extend(lines.into_iter().map(|l| l.line));
        }
        assert_eq!(
            seen,
            vec![
                "HTTP/1.1 200 OK",
                "HTTP/1.1 200 OK",
                "HTTP/1.1 204 No Content"
            ]
        );
    }

    #[test]
    fn garbage_and_oversized_heads_stop_decoding() {
        let mut conn = HttpConn::default();
        let (_, problems) = conn.feed(0, b"\x00\x01garbage garbage");
        assert_eq!(problems.len(), 1);
        let (lines, problems) = conn.feed(0, b"GET / HTTP/1.1\r\n\r\n");
        assert!(lines.is_empty() && problems.is_empty());

        let mut conn = HttpConn::default();
        let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
        head.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        let (_, problems) = conn.feed(0, &head);
        assert_eq!(problems.len(), 1);

        let mut conn = HttpConn::default();
        let (_, problems) = conn.feed(1, b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n");
        assert_eq!(problems.len(), 1);
        let (_, problems) = conn.feed(
            0,
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        );
        assert_eq!(problems.len(), 1);
    }
}
