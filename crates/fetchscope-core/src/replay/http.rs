//! The HTTP/1.x messages of one replayed connection: the client's requests, read from
//! its bytes with `httparse`, and the server's responses, read with the same
//! [`ResponseReader`] a live fetch uses (framing, chunked, content codings, limits).

use std::collections::VecDeque;

use crate::http::{DigestSink, HttpError, HttpProgress, Limits, ResponseReader};

/// The longest request head read (as the response head's limit).
const MAX_REQUEST_HEAD: usize = 64 * 1024;
/// Most header lines in a request head.
const MAX_REQUEST_HEADERS: usize = 100;
/// Requests waiting for their responses on one connection (pipelining is rare).
const MAX_PENDING: usize = 64;

/// A request head read from the client's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestSeen {
    /// The method.
    pub method: String,
    /// The request target as sent.
    pub target: String,
    /// Header fields in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body's length, when it has one.
    pub body_bytes: Option<u64>,
}

/// What one batch of bytes did on a connection.
#[derive(Debug, Default)]
pub(crate) struct HttpOutput {
    /// Request heads completed.
    pub requests: Vec<RequestSeen>,
    /// The request (head and body) is wholly sent.
    pub request_done: bool,
    /// The response reader's reports, in order, with the index of the request (in this
    /// connection's order) each answers.
    pub progress: Vec<(u64, HttpProgress)>,
    /// Responses completed: the request's index, decoded body bytes, wire bytes, SHA-256.
    pub completed: Vec<Completed>,
    /// What could not be read, in words.
    pub problems: Vec<String>,
}

/// A response read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Completed {
    /// Which request it answers (0 for the connection's first).
    pub index: u64,
    /// Decoded body bytes.
    pub body_bytes: u64,
    /// Body bytes as framed on the wire.
    pub wire_bytes: u64,
    /// SHA-256 of the decoded body, lower-case hex.
    pub sha256: String,
    /// The decoded body's first bytes.
    pub body_start: Vec<u8>,
}

/// The response being read.
struct Reading {
    index: u64,
    reader: ResponseReader,
    sink: DigestSink,
    wire: u64,
}

impl std::fmt::Debug for Reading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reading")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// One connection's HTTP reading.
#[derive(Debug, Default)]
pub(crate) struct HttpReplay {
    head: Vec<u8>,
    /// Request body bytes still to come before the next head.
    body_left: u64,
    /// The request body is chunked: its end is not followed (no more requests are read).
    client_lost: bool,
    server_lost: bool,
    requests: u64,
    /// Methods of requests not answered yet, with their index.
    pending: VecDeque<(u64, String)>,
    reading: Option<Reading>,
}

impl HttpReplay {
    /// Bytes the client sent, in order.
    pub fn client_bytes(&mut self, mut bytes: &[u8], out: &mut HttpOutput) {
        while !bytes.is_empty() && !self.client_lost {
            if self.body_left > 0 {
                let n = usize::try_from(self.body_left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                self.body_left -= n as u64;
                bytes = bytes.get(n..).unwrap_or_default();
                if self.body_left == 0 {
                    out.request_done = true;
                }
                continue;
            }
            let before = self.head.len();
            let room = MAX_REQUEST_HEAD.saturating_sub(before);
            self.head
                .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
            let mut headers = [httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&self.head) {
                Ok(httparse::Status::Complete(end)) => {
                    let seen = request_seen(&req);
                    let chunked = seen.headers.iter().any(|(n, v)| {
                        n.eq_ignore_ascii_case("transfer-encoding")
                            && v.to_ascii_lowercase().contains("chunked")
                    });
                    self.body_left = seen.body_bytes.unwrap_or(0);
                    if self.pending.len() < MAX_PENDING {
                        self.pending.push_back((self.requests, seen.method.clone()));
                    }
                    self.requests += 1;
                    out.requests.push(seen);
                    let used = end.saturating_sub(before);
                    bytes = bytes.get(used..).unwrap_or_default();
                    self.head.clear();
                    if chunked {
                        out.problems.push(
                            "the request body is chunked: its end is not followed, so later requests on this connection are not read".into(),
                        );
                        self.client_lost = true;
                    } else if self.body_left == 0 {
                        out.request_done = true;
                    }
                }
                Ok(httparse::Status::Partial) if self.head.len() < MAX_REQUEST_HEAD => return,
                Ok(httparse::Status::Partial) => {
                    out.problems.push(format!(
                        "the client's request head is longer than {} KiB; not read",
                        MAX_REQUEST_HEAD / 1024
                    ));
                    self.client_lost = true;
                }
                Err(e) => {
                    out.problems.push(format!(
                        "the client's bytes are not an HTTP/1.x request ({e})"
                    ));
                    self.client_lost = true;
                }
            }
        }
    }

    /// Bytes the server sent, in order.
    pub fn server_bytes(&mut self, mut bytes: &[u8], out: &mut HttpOutput) {
        while !bytes.is_empty() && !self.server_lost {
            let Some(reading) = self.reading_mut() else {
                out.problems.push(format!(
                    "{} bytes from the server answer no request seen; not read",
                    bytes.len()
                ));
                self.server_lost = true;
                return;
            };
            let index = reading.index;
            match reading.reader.feed(bytes, &mut reading.sink) {
                Ok(feed) => {
                    bytes = bytes.get(feed.used..).unwrap_or_default();
                    let complete = self.note_progress(index, feed.progress, out);
                    if !complete && feed.used == 0 {
                        return;
                    }
                }
                Err(e) => {
                    self.fail(&e, out);
                    return;
                }
            }
        }
    }

    /// The server closed its side: a response framed by the connection's end is complete.
    pub fn server_closed(&mut self, out: &mut HttpOutput) {
        let Some(reading) = self.reading.as_mut() else {
            return;
        };
        let index = reading.index;
        match reading.reader.finish(&mut reading.sink) {
            Ok(progress) => {
                self.note_progress(index, progress, out);
            }
            Err(e) => self.fail(&e, out),
        }
    }

    /// Bytes went missing from one side: its messages cannot be followed any more.
    pub fn lost(&mut self, client: bool) {
        if client {
            self.client_lost = true;
        } else {
            self.server_lost = true;
        }
    }

    fn reading_mut(&mut self) -> Option<&mut Reading> {
        if self.reading.is_none() {
            let (index, method) = self.pending.pop_front()?;
            self.reading = Some(Reading {
                index,
                reader: ResponseReader::new(&method, Limits::default()),
                sink: DigestSink::new(None),
                wire: 0,
            });
        }
        self.reading.as_mut()
    }

    /// Records the reader's progress; true when the response completed.
    fn note_progress(
        &mut self,
        index: u64,
        progress: Vec<HttpProgress>,
        out: &mut HttpOutput,
    ) -> bool {
        let mut complete = false;
        for p in progress {
            if let (HttpProgress::Body { wire, .. }, Some(r)) = (&p, self.reading.as_mut()) {
                r.wire += *wire as u64;
            }
            if p == HttpProgress::Complete {
                complete = true;
            }
            out.progress.push((index, p));
        }
        if complete && let Some(mut r) = self.reading.take() {
            out.completed.push(Completed {
                index,
                body_bytes: r.sink.bytes(),
                wire_bytes: r.wire,
                sha256: r.sink.sha256_hex(),
                body_start: r.sink.start().to_vec(),
            });
        }
        complete
    }

    fn fail(&mut self, e: &HttpError, out: &mut HttpOutput) {
        out.problems
            .push(format!("the server's response could not be read: {e}"));
        self.reading = None;
        self.server_lost = true;
    }
}

/// The parts of a parsed request head.
fn request_seen(req: &httparse::Request<'_, '_>) -> RequestSeen {
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let body_bytes = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<u64>().ok());
    RequestSeen {
        method: req.method.unwrap_or("GET").to_string(),
        target: req.path.unwrap_or("/").to_string(),
        headers,
        body_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_split_anywhere() {
        let mut h = HttpReplay::default();
        let mut out = HttpOutput::default();
        let req = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
        for b in req.chunks(5) {
            h.client_bytes(b, &mut out);
        }
        let methods: Vec<_> = out.requests.iter().map(|r| r.method.as_str()).collect();
        assert_eq!(methods, ["POST", "GET"]);
        assert_eq!(out.requests[0].body_bytes, Some(3));
        let resp = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        for b in resp.chunks(7) {
            h.server_bytes(b, &mut out);
        }
        assert_eq!(out.completed.len(), 2);
        assert_eq!(out.completed[1].body_bytes, 3);
        assert_eq!(
            out.completed[1].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(out.problems.is_empty(), "{:?}", out.problems);
    }

    #[test]
    fn garbage_and_unasked_answers_are_problems_not_panics() {
        let mut h = HttpReplay::default();
        let mut out = HttpOutput::default();
        h.server_bytes(b"HTTP/1.1 200 OK\r\n\r\n", &mut out);
        h.client_bytes(b"\x00\x01\x02 not http\r\n\r\n", &mut out);
        assert_eq!(out.problems.len(), 2, "{:?}", out.problems);
        let mut h = HttpReplay::default();
        h.client_bytes(b"GET / HTTP/1.1\r\n\r\n", &mut out);
        h.server_bytes(b"HTTP/1.1 200 OK\r\n\r\nuntil close", &mut out);
        h.server_closed(&mut out);
        assert_eq!(out.completed.last().map(|c| c.body_bytes), Some(11));
    }
}
