//! [`RequestReader`]: turns the request bytes of one connection, in pieces as they
//! arrive, into whole requests (head and body), in order, for pipelining and keep-alive.

use super::body::{BodyDecoder, BodyError, MAX_BODY_LEN};
use super::request::{MAX_HEAD_LEN, ParseOutcome, Request, parse_request};

/// What the reader has for the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// Nothing yet: read more bytes.
    Pending,
    /// Send `HTTP/1.1 100 Continue`: the client waits for it before sending the body.
    Continue,
    /// A whole request, body included.
    Request(Request),
    /// A request that cannot be served: answer with this status (400, 413, 431, 501)
    /// and close; the reader drops everything after it.
    Refused {
        /// The status to answer with.
        status: u16,
        /// Why, for the log.
        why: String,
    },
}

/// Where the reader is.
#[derive(Debug)]
enum State {
    /// Waiting for a whole request head.
    Head,
    /// Reading the body of `request`.
    Body {
        /// The request whose body this is.
        request: Box<Request>,
        /// The body's decoder.
        decoder: BodyDecoder,
        /// A `100 Continue` should be sent before more of the body is waited for.
        continue_due: bool,
    },
    /// A whole request, waiting to be taken.
    Ready(Box<Request>),
    /// A request is refused with `status`; every later byte is dropped.
    Refused(u16, String),
    /// The refusal was taken: every later byte is dropped.
    Closed,
    /// A `CONNECT` request was taken (by a reader made with
    /// [`RequestReader::stopping_at_connect`]): the bytes after its head belong to the
    /// tunnel, are not read as requests and wait in `buf` (up to [`MAX_HEAD_LEN`]) for
    /// [`RequestReader::take_tunnel_bytes`].
    Tunnel,
}

/// Reads the requests of one connection. Buffers at most [`MAX_HEAD_LEN`] bytes that are
/// not yet part of a request body, and at most [`MAX_BODY_LEN`] bytes of body.
#[derive(Debug)]
pub(crate) struct RequestReader {
    /// Bytes not yet used: a head's so far, or whatever follows a whole request.
    buf: Vec<u8>,
    state: State,
    /// A proxy's reader: a `CONNECT` request has no body and nothing after it is a
    /// request.
    stop_at_connect: bool,
}

impl Default for RequestReader {
    fn default() -> Self {
        RequestReader {
            buf: Vec::new(),
            state: State::Head,
            stop_at_connect: false,
        }
    }
}

impl RequestReader {
    /// A reader for a proxy's connection: once a `CONNECT` request has been taken it
    /// reads nothing more, and [`RequestReader::take_tunnel_bytes`] hands over what
    /// followed the request's head.
    pub fn stopping_at_connect() -> Self {
        RequestReader {
            stop_at_connect: true,
            ..RequestReader::default()
        }
    }

    /// The bytes received after a `CONNECT` head (the tunnel's first bytes), once the
    /// request was taken; empty before.
    pub fn take_tunnel_bytes(&mut self) -> Vec<u8> {
        match self.state {
            State::Tunnel => std::mem::take(&mut self.buf),
            _ => Vec::new(),
        }
    }

    /// How many more bytes [`RequestReader::push`] takes now (0: answer what is there first).
    pub fn room(&self) -> usize {
        match self.state {
            State::Refused(..) | State::Closed => MAX_HEAD_LEN,
            _ => MAX_HEAD_LEN.saturating_sub(self.buf.len()),
        }
    }

    /// Takes request bytes (at most [`RequestReader::room`] of them are kept) and reads
    /// as far as they go.
    pub fn push(&mut self, bytes: &[u8]) {
        if matches!(self.state, State::Refused(..) | State::Closed) {
            return;
        }
        let n = self.room().min(bytes.len());
        self.buf
            .extend_from_slice(bytes.get(..n).unwrap_or_default());
        self.advance();
    }

    /// True when a whole request, or one to refuse, is waiting to be taken (a
    /// `100 Continue` does not count).
    pub fn request_ready(&self) -> bool {
        matches!(self.state, State::Ready(_) | State::Refused(..))
    }

    /// What to answer next; a request or refusal is taken out of the reader.
    pub fn next(&mut self) -> Incoming {
        match std::mem::replace(&mut self.state, State::Head) {
            State::Ready(request) => {
                if self.is_tunnel(&request) {
                    self.state = State::Tunnel;
                } else {
                    self.advance();
                }
                Incoming::Request(*request)
            }
            State::Refused(status, why) => {
                self.state = State::Closed;
                self.buf.clear();
                Incoming::Refused { status, why }
            }
            State::Body {
                request,
                decoder,
                continue_due,
            } => {
                self.state = State::Body {
                    request,
                    decoder,
                    continue_due: false,
                };
                if continue_due {
                    Incoming::Continue
                } else {
                    Incoming::Pending
                }
            }
            state @ (State::Head | State::Closed | State::Tunnel) => {
                self.state = state;
                Incoming::Pending
            }
        }
    }

    /// Parses a head or decodes body bytes from `buf` as far as they go.
    fn advance(&mut self) {
        if matches!(self.state, State::Head) {
            self.read_head();
        }
        if let State::Body {
            request, decoder, ..
        } = &mut self.state
        {
            match decoder.feed(&self.buf, &mut request.body) {
                Ok(used) => {
                    self.buf.drain(..used.min(self.buf.len()));
                }
                Err(e) => {
                    self.refuse_body(e);
                    return;
                }
            }
            if decoder.is_done() {
                self.finish_body();
            }
        }
    }

    /// In [`State::Head`]: parses a whole head at the start of `buf`, if there is one.
    fn read_head(&mut self) {
        let (request, head_len) = match parse_request(&self.buf) {
            ParseOutcome::Partial => return,
            ParseOutcome::Complete { request, head_len } => (request, head_len),
            ParseOutcome::TooLarge => {
                return self.refuse(431, format!("request head over {MAX_HEAD_LEN} bytes"));
            }
            ParseOutcome::Invalid(why) => return self.refuse(400, why),
            ParseOutcome::Unsupported(coding) => {
                return self.refuse(501, format!("transfer coding {coding}"));
            }
        };
        self.buf.drain(..head_len.min(self.buf.len()));
        if self.is_tunnel(&request) {
            // A CONNECT request has no content (RFC 9110 section 9.3.6): what follows its
            // head is the tunnel's, whatever the head says.
            self.state = State::Ready(Box::new(request));
            return;
        }
        match BodyDecoder::new(request.framing) {
            Ok(decoder) if decoder.is_done() => self.state = State::Ready(Box::new(request)),
            Ok(decoder) => {
                self.state = State::Body {
                    continue_due: request.expects_continue,
                    request: Box::new(request),
                    decoder,
                }
            }
            Err(e) => self.refuse_body(e),
        }
    }

    /// True when `request` opens a tunnel and this reader stops after it.
    fn is_tunnel(&self, request: &Request) -> bool {
        self.stop_at_connect && request.method == "CONNECT"
    }

    /// The body is complete: the request is ready.
    fn finish_body(&mut self) {
        if let State::Body { request, .. } = std::mem::replace(&mut self.state, State::Head) {
            self.state = State::Ready(request);
        }
    }

    /// Refuses the request for a body that cannot be read.
    fn refuse_body(&mut self, error: BodyError) {
        match error {
            BodyError::TooLarge => {
                self.refuse(413, format!("request body over {MAX_BODY_LEN} bytes"));
            }
            BodyError::Malformed(why) => self.refuse(400, why.to_owned()),
        }
    }

    /// Refuses the request with `status`: nothing after it is read.
    fn refuse(&mut self, status: u16, why: String) {
        self.buf.clear();
        self.state = State::Refused(status, why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes `wire` in pieces of `piece` bytes, taking everything the reader has after
    /// each piece.
    fn read_all(wire: &[u8], piece: usize) -> Vec<Incoming> {
        let mut r = RequestReader::default();
        let mut out = Vec::new();
        for part in wire.chunks(piece) {
            r.push(part);
            loop {
                match r.next() {
                    Incoming::Pending => break,
                    other => out.push(other),
                }
            }
        }
        out
    }

    fn request(i: &Incoming) -> &Request {
        match i {
            Incoming::Request(r) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn bodies_in_many_pieces_and_pipelined_requests() {
        let mut wire = b"POST /anything HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789".to_vec();
        wire.extend_from_slice(
            b"PUT /anything HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
        wire.extend_from_slice(b"GET /empty HTTP/1.1\r\n\r\n");
        for piece in [1, 5, 13, 4096] {
            let got = read_all(&wire, piece);
            assert_eq!(got.len(), 3, "piece {piece}: {got:?}");
            assert_eq!(request(&got[0]).method, "POST");
            assert_eq!(request(&got[0]).body, b"0123456789");
            assert_eq!(request(&got[1]).method, "PUT");
            assert_eq!(request(&got[1]).body, b"abcde");
            assert_eq!(request(&got[2]).path, "/empty");
            assert_eq!(request(&got[2]).body, b"");
        }
    }

    #[test]
    fn a_body_is_waited_for_before_the_request_is_ready() {
        let mut r = RequestReader::default();
        r.push(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab");
        assert!(!r.request_ready());
        assert_eq!(r.next(), Incoming::Pending);
        r.push(b"c");
        assert_eq!(r.next(), Incoming::Pending);
        r.push(b"d");
        assert!(r.request_ready());
        assert_eq!(request(&r.next()).body, b"abcd");
        assert_eq!(r.next(), Incoming::Pending);
    }

    #[test]
    fn expect_100_continue_comes_once_before_the_body() {
        let mut r = RequestReader::default();
        r.push(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
        assert!(!r.request_ready());
        assert_eq!(r.next(), Incoming::Continue);
        assert_eq!(r.next(), Incoming::Pending);
        r.push(b"xyz");
        assert_eq!(request(&r.next()).body, b"xyz");
        // a body that is already there needs no 100 Continue
        let got = read_all(
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nq",
            4096,
        );
        assert_eq!(got.len(), 1);
        assert_eq!(request(&got[0]).body, b"q");
    }

    #[test]
    fn too_large_and_malformed_bodies_are_refused_and_the_rest_dropped() {
        let head = format!(
            "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_LEN + 1
        );
        let mut r = RequestReader::default();
        r.push(head.as_bytes());
        assert!(r.request_ready());
        assert!(matches!(r.next(), Incoming::Refused { status: 413, .. }));
        r.push(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(r.next(), Incoming::Pending);
        assert_eq!(r.room(), MAX_HEAD_LEN);

        let got = read_all(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            2,
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(matches!(got[0], Incoming::Refused { status: 400, .. }));

        for (wire, status) in [
            (
                &b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"[..],
                501,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
            ),
        ] {
            let got = read_all(wire, 4096);
            assert!(
                matches!(got.as_slice(), [Incoming::Refused { status: s, .. }] if *s == status),
                "{got:?}"
            );
        }
    }

    #[test]
    fn a_chunked_body_over_the_limit_is_413() {
        let mut r = RequestReader::default();
        r.push(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        let chunk = vec![b'z'; 1 << 20];
        let mut chunk_wire = format!("{:x}\r\n", chunk.len()).into_bytes();
        chunk_wire.extend_from_slice(&chunk);
        chunk_wire.extend_from_slice(b"\r\n");
        for _ in 0..16 {
            for piece in chunk_wire.chunks(MAX_HEAD_LEN) {
                r.push(piece);
            }
            assert_eq!(r.next(), Incoming::Pending);
        }
        // 16 MiB read: one more byte is one too many
        r.push(b"1\r\n");
        assert!(matches!(r.next(), Incoming::Refused { status: 413, .. }));
    }

    #[test]
    fn a_proxy_reader_stops_at_connect_and_keeps_the_tunnel_bytes() {
        let wire = b"GET http://www.example.test/ HTTP/1.1\r\n\r\nCONNECT www.example.test:443 HTTP/1.1\r\nContent-Length: 3\r\n\r\n\x16\x03\x01GET / HTTP/1.1\r\n\r\n";
        for piece in [1, 7, 4096] {
            let mut r = RequestReader::stopping_at_connect();
            let mut got = Vec::new();
            for part in wire.chunks(piece) {
                r.push(part);
                loop {
                    match r.next() {
                        Incoming::Pending => break,
                        other => got.push(other),
                    }
                }
            }
            assert_eq!(got.len(), 2, "piece {piece}: {got:?}");
            assert_eq!(request(&got[0]).method, "GET");
            assert_eq!(request(&got[1]).method, "CONNECT");
            assert_eq!(request(&got[1]).target, "www.example.test:443");
            assert_eq!(r.take_tunnel_bytes(), b"\x16\x03\x01GET / HTTP/1.1\r\n\r\n");
            assert!(r.take_tunnel_bytes().is_empty());
        }
        // a web server's reader answers a CONNECT like any request and goes on reading
        let got = read_all(
            b"CONNECT a:443 HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            4096,
        );
        assert_eq!(got.len(), 2, "{got:?}");
        let mut r = RequestReader::default();
        r.push(b"CONNECT a:443 HTTP/1.1\r\n\r\nxyz");
        assert!(matches!(r.next(), Incoming::Request(_)));
        assert!(r.take_tunnel_bytes().is_empty());
    }

    #[test]
    fn pipelined_bytes_are_bounded_while_a_request_waits() {
        let mut r = RequestReader::default();
        r.push(b"GET / HTTP/1.1\r\n\r\n");
        let filler = vec![b'a'; 2 * MAX_HEAD_LEN];
        r.push(&filler);
        assert_eq!(r.room(), 0);
        assert_eq!(request(&r.next()).path, "/");
        // the filler is now parsed as a head that is too long
        assert!(matches!(r.next(), Incoming::Refused { status: 431, .. }));
    }
}
