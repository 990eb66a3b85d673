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
}

impl Body {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::Generated { len } => *len,
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
        }
        n
    }
}

/// A route's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Reason phrase, e.g. "OK".
    pub reason: &'static str,
    /// `Content-Type` value.
    pub content_type: &'static str,
    /// Header fields beyond the standard ones (`Server`, `Date`, `Content-Type`,
    /// `Content-Length`, `Connection`).
    pub extra_headers: Vec<(&'static str, String)>,
    /// The body (also its length for `HEAD`).
    pub body: Body,
    /// Close the connection after this response, whatever the request asked.
    pub close: bool,
}

impl Response {
    /// A response with no extra headers that keeps the connection open.
    pub fn new(status: u16, reason: &'static str, content_type: &'static str, body: Body) -> Self {
        Response {
            status,
            reason,
            content_type,
            extra_headers: Vec::new(),
            body,
            close: false,
        }
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
}

impl ResponseStream {
    /// Serializes the head of `response`; `close` decides the `Connection` header.
    pub fn new(response: Response, head_only: bool, close: bool, date: &str) -> Self {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nServer: {SERVER_HEADER}\r\nDate: {date}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            response.status,
            response.reason,
            response.content_type,
            response.body.len()
        );
        for (name, value) in &response.extra_headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(if close {
            "Connection: close\r\n\r\n"
        } else {
            "Connection: keep-alive\r\n\r\n"
        });
        ResponseStream {
            head: head.into_bytes(),
            head_sent: 0,
            body: response.body,
            body_sent: 0,
            send_body: !head_only,
            close,
        }
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
}
