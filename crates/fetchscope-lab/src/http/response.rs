//! [`Response`]: what a route answers; [`ResponseStream`]: its bytes, produced as the
//! connection drains, so a body of a gigabyte never sits in memory.

use super::SERVER_HEADER;
use super::pattern::fill_generated;

/// A response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// Bytes held in memory (pages, error messages).
    Bytes(Vec<u8>),
    /// `len` bytes of the `/bytes/N` pattern, generated on demand.
    Generated {
        /// Body length in bytes.
        len: u64,
    },
    /// `prefix`, then `unit` repeated forever (the `endless-*` faults): never ends.
    Endless {
        /// The bytes before the repetition.
        prefix: &'static [u8],
        /// The bytes repeated (not empty).
        unit: &'static [u8],
    },
}

impl Body {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::Generated { len } => *len,
            Body::Endless { .. } => u64::MAX,
        }
    }

    /// Copies body bytes from `offset` into `buf`; returns how many (0 at the end).
    fn fill(&self, offset: u64, buf: &mut [u8]) -> usize {
        let remaining = self.len().saturating_sub(offset);
        let n = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let Some(dst) = buf.get_mut(..n) else {
            return 0;
        };
        match self {
            Body::Bytes(b) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                match b.get(start..).and_then(|s| s.get(..n)) {
                    Some(src) => dst.copy_from_slice(src),
                    None => return 0,
                }
            }
            Body::Generated { .. } => fill_generated(offset, dst),
            Body::Endless { prefix, unit } => fill_endless(prefix, unit, offset, dst),
        }
        n
    }
}

/// Fills `dst` with the bytes of `prefix` followed by `unit` repeated, from `offset` on.
fn fill_endless(prefix: &[u8], unit: &[u8], offset: u64, dst: &mut [u8]) {
    if unit.is_empty() {
        dst.fill(0);
        return;
    }
    for (i, b) in dst.iter_mut().enumerate() {
        let at = offset.saturating_add(i as u64);
        *b = match usize::try_from(at).ok().and_then(|a| prefix.get(a)) {
            Some(p) => *p,
            None => {
                let k = at.saturating_sub(prefix.len() as u64) % unit.len() as u64;
                unit.get(usize::try_from(k).unwrap_or(0))
                    .copied()
                    .unwrap_or(0)
            }
        };
    }
}

/// How the end of a response body is marked on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length` with the body's length.
    Length,
    /// `Content-Length` with this value, whatever the body's length (the `truncated`
    /// fault announces more than it sends).
    DeclaredLength(u64),
    /// `Transfer-Encoding: chunked`; the body already holds the chunked bytes.
    Chunked,
    /// No length at all: the body ends when the server closes the connection.
    Close,
    /// No body and no length field (1xx, 204, 304).
    NoBody,
    /// No length field, and the head's field section is left open: the body's bytes
    /// continue it (the `endless-headers` fault).
    OpenHead,
}

/// A route's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Reason phrase, e.g. "OK".
    pub reason: &'static str,
    /// `Content-Type` value, if the response has one.
    pub content_type: Option<&'static str>,
    /// Header fields beyond the standard ones (`Server`, `Date`, `Content-Type`,
    /// `Content-Length` or `Transfer-Encoding`, `Connection`).
    pub extra_headers: Vec<(String, String)>,
    /// The body as sent (already content- and transfer-coded), also its length for `HEAD`.
    pub body: Body,
    /// How the body's end is marked.
    pub framing: Framing,
    /// Close the connection after this response, whatever the request asked.
    pub close: bool,
    /// Interim (1xx) responses sent before this one, e.g. `(103, "Early Hints")`.
    pub interim: Vec<(u16, &'static str)>,
    /// The status line as sent instead of `HTTP/1.1 {status} {reason}` (the
    /// `bad-status-line` fault).
    pub raw_status_line: Option<String>,
}

impl Response {
    /// A response with no extra headers that keeps the connection open.
    pub fn new(status: u16, reason: &'static str, content_type: &'static str, body: Body) -> Self {
        Response {
            status,
            reason,
            content_type: Some(content_type),
            extra_headers: Vec::new(),
            body,
            framing: Framing::Length,
            close: false,
            interim: Vec::new(),
            raw_status_line: None,
        }
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.extra_headers.push((name.to_owned(), value.into()));
        self
    }

    /// Sets the framing; [`Framing::Close`] and [`Framing::DeclaredLength`] also close
    /// the connection after the response (the body cannot end any other way).
    pub fn framed(mut self, framing: Framing) -> Self {
        self.framing = framing;
        if matches!(
            framing,
            Framing::Close | Framing::DeclaredLength(_) | Framing::OpenHead
        ) {
            self.close = true;
        }
        self
    }
}

/// The bytes of one response on its way out: the head, then (unless `HEAD`) the body.
#[derive(Debug)]
pub(crate) struct ResponseStream {
    head: Vec<u8>,
    head_sent: usize,
    body: Body,
    body_sent: u64,
    send_body: bool,
    close: bool,
    /// An interim (1xx) response on its own, e.g. `100 Continue`: not the request's answer.
    interim: bool,
}

impl ResponseStream {
    /// Serializes the head of `response` (after its interim responses); `close` decides
    /// the `Connection` header.
    pub fn new(response: Response, head_only: bool, close: bool, date: &str) -> Self {
        let mut head = String::new();
        for (status, reason) in &response.interim {
            head.push_str(&format!("HTTP/1.1 {status} {reason}\r\n\r\n"));
        }
        match &response.raw_status_line {
            Some(line) => head.push_str(line),
            None => head.push_str(&format!("HTTP/1.1 {} {}", response.status, response.reason)),
        }
        head.push_str(&format!("\r\nServer: {SERVER_HEADER}\r\nDate: {date}\r\n"));
        if let Some(ct) = response.content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        match response.framing {
            Framing::Length => {
                head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
            }
            Framing::DeclaredLength(n) => head.push_str(&format!("Content-Length: {n}\r\n")),
            Framing::Chunked => head.push_str("Transfer-Encoding: chunked\r\n"),
            Framing::Close | Framing::NoBody | Framing::OpenHead => {}
        }
        for (name, value) in &response.extra_headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(if close {
            "Connection: close\r\n\r\n"
        } else {
            "Connection: keep-alive\r\n\r\n"
        });
        if response.framing == Framing::OpenHead {
            // No empty line: the field section goes on in the body.
            head.truncate(head.len() - 2);
        }
        let send_body = !head_only && response.framing != Framing::NoBody;
        ResponseStream {
            head: head.into_bytes(),
            head_sent: 0,
            body: response.body,
            body_sent: 0,
            send_body,
            close,
            interim: false,
        }
    }

    /// An interim response on its own (`HTTP/1.1 100 Continue` and an empty line), sent
    /// while the request's body is still to come.
    pub fn interim(status: u16, reason: &str) -> Self {
        ResponseStream {
            interim: true,
            ..ResponseStream::status_line_only(status, reason)
        }
    }

    /// A final response that is just its status line and an empty line, no fields and no
    /// body: the proxy's `HTTP/1.1 200 Connection established`, as tinyproxy and squid
    /// send it.
    pub fn status_line_only(status: u16, reason: &str) -> Self {
        ResponseStream {
            head: format!("HTTP/1.1 {status} {reason}\r\n\r\n").into_bytes(),
            head_sent: 0,
            body: Body::Bytes(Vec::new()),
            body_sent: 0,
            send_body: false,
            close: false,
            interim: false,
        }
    }

    /// True for a stream made by [`ResponseStream::interim`]: the final answer follows.
    pub fn is_interim(&self) -> bool {
        self.interim
    }

    /// True when the connection closes after this response.
    pub fn close(&self) -> bool {
        self.close
    }

    /// Copies the next unsent bytes into `buf` without consuming them; returns how many.
    pub fn peek(&self, buf: &mut [u8]) -> usize {
        let head_rest = self.head.get(self.head_sent..).unwrap_or_default();
        let n = head_rest.len().min(buf.len());
        let (head_dst, body_dst) = buf.split_at_mut(n);
        head_dst.copy_from_slice(head_rest.get(..n).unwrap_or_default());
        if !self.send_body || n < head_rest.len() {
            return n;
        }
        n + self.body.fill(self.body_sent, body_dst)
    }

    /// Marks `n` bytes (as returned by [`ResponseStream::peek`]) as sent.
    pub fn consume(&mut self, n: usize) {
        let head_part = n.min(self.head.len().saturating_sub(self.head_sent));
        self.head_sent += head_part;
        self.body_sent = self
            .body_sent
            .saturating_add(n.saturating_sub(head_part) as u64)
            .min(self.body.len());
    }

    /// True when every byte has been sent.
    pub fn is_done(&self) -> bool {
        self.head_sent >= self.head.len() && (!self.send_body || self.body_sent >= self.body.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::generated_byte;

    fn drain(mut s: ResponseStream, chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        while !s.is_done() {
            let n = s.peek(&mut buf);
            assert!(n > 0);
            // take only part, like a writer that accepts less
            let take = n.div_ceil(2);
            out.extend_from_slice(&buf[..take]);
            s.consume(take);
        }
        out
    }

    #[test]
    fn head_then_body_in_any_chunking() {
        let r = Response::new(200, "OK", "text/plain", Body::Bytes(b"hello".to_vec()));
        let out = drain(ResponseStream::new(r, false, false, "D"), 7);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nServer: fetchscope-lab/"));
        assert!(text.contains("\r\nDate: D\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello"));
        assert!(text.ends_with("\r\n\r\nhello"));
    }

    #[test]
    fn generated_body_and_head_request() {
        let r = Response::new(200, "OK", "x", Body::Generated { len: 1000 });
        let out = drain(ResponseStream::new(r.clone(), false, true, "D"), 300);
        let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(String::from_utf8_lossy(&out[..head_end]).contains("Connection: close"));
        let body = &out[head_end..];
        assert_eq!(body.len(), 1000);
        assert!(
            body.iter()
                .enumerate()
                .all(|(i, b)| *b == generated_byte(i as u64))
        );
        let head_only = drain(ResponseStream::new(r, true, false, "D"), 300);
        assert!(head_only.ends_with(b"Content-Length: 1000\r\nConnection: keep-alive\r\n\r\n"));
    }

    fn text_of(r: Response, head_only: bool, close: bool) -> String {
        String::from_utf8(drain(ResponseStream::new(r, head_only, close, "D"), 100)).unwrap()
    }

    #[test]
    fn framings_write_the_right_fields() {
        let body = || Body::Bytes(b"abc".to_vec());
        let plain = Response::new(200, "OK", "t", body());
        assert!(text_of(plain, false, false).contains("Content-Length: 3\r\n"));

        let declared = Response::new(200, "OK", "t", body()).framed(Framing::DeclaredLength(6));
        assert!(declared.close);
        let t = text_of(declared, false, true);
        assert!(
            t.contains("Content-Length: 6\r\n") && t.ends_with("\r\n\r\nabc"),
            "{t}"
        );

        let chunked = Response::new(
            200,
            "OK",
            "t",
            Body::Bytes(b"3\r\nabc\r\n0\r\n\r\n".to_vec()),
        )
        .framed(Framing::Chunked);
        let t = text_of(chunked, false, false);
        assert!(t.contains("Transfer-Encoding: chunked\r\n") && !t.contains("Content-Length"));
        assert!(t.ends_with("\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), "{t}");

        let close = Response::new(200, "OK", "t", body()).framed(Framing::Close);
        assert!(close.close);
        let t = text_of(close, false, true);
        assert!(!t.contains("Content-Length") && !t.contains("Transfer-Encoding"));
        assert!(t.contains("Connection: close\r\n\r\nabc"), "{t}");

        let mut none = Response::new(304, "Not Modified", "t", body()).framed(Framing::NoBody);
        none.content_type = None;
        let t = text_of(none, false, false);
        assert!(t.starts_with("HTTP/1.1 304 Not Modified\r\n"));
        assert!(
            !t.contains("Content-") && t.ends_with("keep-alive\r\n\r\n"),
            "{t}"
        );
    }

    #[test]
    fn endless_bodies_and_open_heads() {
        let r = Response::new(
            200,
            "OK",
            "t",
            Body::Endless {
                prefix: b"1;x=",
                unit: b"ab",
            },
        )
        .framed(Framing::Chunked);
        let mut s = ResponseStream::new(r, false, false, "D");
        let mut buf = vec![0u8; 4096];
        let mut sent = Vec::new();
        for _ in 0..100 {
            let n = s.peek(&mut buf);
            assert_eq!(n, buf.len());
            sent.extend_from_slice(&buf[..n]);
            s.consume(n);
            assert!(!s.is_done());
        }
        let text = String::from_utf8(sent).unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        assert!(body.starts_with("1;x=ababab"), "{body:.20}");
        assert!(body[4..].bytes().all(|b| b == b'a' || b == b'b'));

        let open = Response::new(
            200,
            "OK",
            "t",
            Body::Endless {
                prefix: b"",
                unit: b"X-More: 1\r\n",
            },
        )
        .framed(Framing::OpenHead);
        assert!(open.close);
        let s = ResponseStream::new(open, false, true, "D");
        let n = s.peek(&mut buf);
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(!text.contains("\r\n\r\n"), "{text}");
        assert!(
            text.contains("Connection: close\r\nX-More: 1\r\nX-More: 1\r\n"),
            "{text}"
        );
    }

    #[test]
    fn an_interim_stream_is_just_its_status_line() {
        let s = ResponseStream::interim(100, "Continue");
        assert!(s.is_interim() && !s.close());
        assert_eq!(drain(s, 5), b"HTTP/1.1 100 Continue\r\n\r\n");
        let r = Response::new(200, "OK", "t", Body::Bytes(Vec::new()));
        assert!(!ResponseStream::new(r, false, false, "D").is_interim());
        let s = ResponseStream::status_line_only(200, "Connection established");
        assert!(!s.is_interim() && !s.close());
        assert_eq!(drain(s, 5), b"HTTP/1.1 200 Connection established\r\n\r\n");
    }

    #[test]
    fn interim_responses_and_raw_status_lines() {
        let mut r = Response::new(200, "OK", "t", Body::Bytes(b"x".to_vec()));
        r.interim.push((103, "Early Hints"));
        let t = text_of(r, false, false);
        assert!(
            t.starts_with("HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\nServer: "),
            "{t}"
        );
        let mut r = Response::new(200, "OK", "t", Body::Bytes(b"x".to_vec())).header("X-A", "1");
        r.raw_status_line = Some("HTTP/1.1 2OO OK".into());
        let t = text_of(r, false, false);
        assert!(
            t.starts_with("HTTP/1.1 2OO OK\r\nServer: ") && t.contains("\r\nX-A: 1\r\n"),
            "{t}"
        );
    }
}
