//! [`ResponseReader`]: one HTTP/1.1 response, read from bytes as they arrive (sans-IO).

use super::body::BodyOutput;
use super::chunked::ChunkedDecoder;
use super::error::HttpError;
use super::head::{Framing, ResponseHead};
use super::head_parser::{HeadParser, HeadStep, RawHead};
use super::sink::BodySink;

/// Bounds on everything the server controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest response head (status line, headers, empty line), 64 KiB by default.
    pub max_head_bytes: usize,
    /// Most header lines in one head, 100 by default (as Python's `http.client`).
    pub max_headers: usize,
    /// Longest chunk-size line including extensions, 4 KiB by default.
    pub max_chunk_line: usize,
    /// Largest trailer section of a chunked body, 16 KiB by default.
    pub max_trailer_bytes: usize,
    /// Most stacked content codings, 5 by default (as urllib3).
    pub max_encodings: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_head_bytes: 64 * 1024,
            max_headers: 100,
            max_chunk_line: 4 * 1024,
            max_trailer_bytes: 16 * 1024,
            max_encodings: 5,
        }
    }
}

/// What one [`ResponseReader::feed`] call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    /// Input bytes that belonged to this response; the rest is left for the caller.
    pub used: usize,
    /// What happened, in order.
    pub progress: Vec<HttpProgress>,
}

/// One thing that happened while reading a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpProgress {
    /// An interim 1xx response (100 Continue, 103 Early Hints, ...), skipped like requests does.
    Interim(ResponseHead),
    /// The final response head.
    Head(ResponseHead),
    /// Body bytes arrived during this call: `wire` as framed (chunk framing removed), `decoded` after content decoding.
    Body {
        /// Body bytes as framed on the wire.
        wire: usize,
        /// Decoded bytes handed to the sink.
        decoded: usize,
    },
    /// The response is complete.
    Complete,
}

/// How the body's end is being tracked.
#[derive(Debug)]
enum BodyFraming {
    /// Until `Content-Length` bytes have arrived.
    Length(u64),
    /// Until the last chunk and its trailers.
    Chunked(ChunkedDecoder),
    /// Until the peer closes.
    UntilClose,
}

/// Where the reader is.
#[derive(Debug)]
enum Phase {
    /// Reading a (possibly interim) head.
    Head,
    /// Reading the final response's body.
    Body {
        /// How its end is found.
        framing: BodyFraming,
        /// Where its bytes go.
        output: BodyOutput,
    },
    /// The response is complete.
    Complete {
        /// What its body did.
        output: Option<BodyOutput>,
    },
    /// An error was returned; the connection cannot be used any more.
    Failed {
        /// Counts up to the failure.
        output: Option<BodyOutput>,
    },
}

/// Reads one response (to one request) from the bytes of a connection.
///
/// Feed it everything received with [`feed`](Self::feed) until [`is_complete`](Self::is_complete);
/// bytes past the end of the response are not consumed (`Feed::used`). Call
/// [`finish`](Self::finish) when the peer closes the stream. After an error the reader
/// stays failed and the progress of the failing call is not returned, but
/// [`head`](Self::head) still gives the head if one was read. An unsupported content
/// coding is an error only once body bytes arrive (a HEAD or 204 answer is fine).
#[derive(Debug)]
pub struct ResponseReader {
    method: String,
    limits: Limits,
    head_parser: HeadParser,
    head: Option<ResponseHead>,
    phase: Phase,
    /// Whether any byte of any head has arrived.
    received_any: bool,
    peer_closed: bool,
}

impl ResponseReader {
    /// A reader for the response to a `method` request (`HEAD` responses have no body).
    pub fn new(method: &str, limits: Limits) -> Self {
        Self {
            method: method.to_owned(),
            limits,
            head_parser: HeadParser::new(limits.max_head_bytes, limits.max_headers),
            head: None,
            phase: Phase::Head,
            received_any: false,
            peer_closed: false,
        }
    }

    /// Feeds bytes received on the connection. Decoded body bytes go to `sink`.
    /// Returns what happened (possibly several things) and how many input bytes were used
    /// (bytes after the end of this response are left for the caller).
    pub fn feed(&mut self, input: &[u8], sink: &mut dyn BodySink) -> Result<Feed, HttpError> {
        if matches!(self.phase, Phase::Failed { .. }) {
            return Err(HttpError::AlreadyFailed);
        }
        let mut progress = Vec::new();
        let result = self.feed_inner(input, sink, &mut progress);
        if result.is_err() {
            self.fail();
        }
        let used = result?;
        Ok(Feed { used, progress })
    }

    /// The peer closed the stream (TLS close_notify or TCP FIN): ends a close-delimited
    /// body; a body shorter than its Content-Length or an unfinished chunked body is an error.
    pub fn finish(&mut self, sink: &mut dyn BodySink) -> Result<Vec<HttpProgress>, HttpError> {
        self.peer_closed = true;
        let mut progress = Vec::new();
        let result = self.finish_inner(sink, &mut progress);
        if result.is_err() {
            self.fail();
        }
        result.map(|()| progress)
    }

    /// The final response head, once read (also after a later error).
    pub fn head(&self) -> Option<&ResponseHead> {
        self.head.as_ref()
    }

    /// Whether the whole response has been read.
    pub fn is_complete(&self) -> bool {
        matches!(self.phase, Phase::Complete { .. })
    }

    /// Whether the reader has returned an error.
    pub fn is_failed(&self) -> bool {
        matches!(self.phase, Phase::Failed { .. })
    }

    /// Whether the connection may carry another request afterwards (HTTP/1.1 default keep-alive, `Connection: close`, HTTP/1.0 rules, close-delimited body).
    /// False until the response is complete, and after the peer closed.
    pub fn keep_alive(&self) -> bool {
        self.is_complete()
            && !self.peer_closed
            && self.head.as_ref().is_some_and(ResponseHead::allows_reuse)
    }

    /// Body bytes as framed on the wire (after chunk framing removed, before content decoding).
    pub fn wire_body_bytes(&self) -> u64 {
        self.output().map_or(0, |o| o.wire_total)
    }

    /// Body bytes after content decoding, as handed to the sink.
    pub fn decoded_body_bytes(&self) -> u64 {
        self.output().map_or(0, |o| o.decoded_total)
    }

    /// For a `deflate` body: whether it came zlib-wrapped (`Some(true)`) or raw (`Some(false)`).
    pub fn deflate_zlib_wrapped(&self) -> Option<bool> {
        self.output().and_then(BodyOutput::deflate_is_zlib)
    }

    /// Whether the body needed no content decoding (true before the head is read).
    pub fn is_identity_coded(&self) -> bool {
        self.output().is_none_or(BodyOutput::is_identity)
    }

    /// The body output, once the final head is known.
    fn output(&self) -> Option<&BodyOutput> {
        match &self.phase {
            Phase::Head => None,
            Phase::Body { output, .. } => Some(output),
            Phase::Complete { output } | Phase::Failed { output } => output.as_ref(),
        }
    }

    /// Moves to `Failed`, keeping the counts.
    fn fail(&mut self) {
        let output = match std::mem::replace(&mut self.phase, Phase::Failed { output: None }) {
            Phase::Head => None,
            Phase::Body { output, .. } => Some(output),
            Phase::Complete { output } | Phase::Failed { output } => output,
        };
        self.phase = Phase::Failed { output };
    }

    /// The body of [`feed`](Self::feed): returns the bytes used.
    fn feed_inner(
        &mut self,
        input: &[u8],
        sink: &mut dyn BodySink,
        progress: &mut Vec<HttpProgress>,
    ) -> Result<usize, HttpError> {
        let mut used = 0usize;
        loop {
            let rest = input.get(used..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            match &mut self.phase {
                Phase::Head => {
                    self.received_any = true;
                    match self.head_parser.push(rest)? {
                        HeadStep::NeedMore => {
                            used = input.len();
                        }
                        HeadStep::Done { head, used: n } => {
                            used = used.saturating_add(n);
                            self.accept_head(head, sink, progress)?;
                        }
                    }
                }
                Phase::Body { framing, output } => {
                    let (n, ended) = read_body(framing, output, rest, sink)?;
                    used = used.saturating_add(n);
                    if ended {
                        self.complete(sink, progress)?;
                    } else if n == 0 {
                        break;
                    }
                }
                Phase::Complete { .. } | Phase::Failed { .. } => break,
            }
        }
        if let Phase::Body { output, .. } = &mut self.phase {
            push_body_step(output, progress);
        }
        Ok(used)
    }

    /// The body of [`finish`](Self::finish).
    fn finish_inner(
        &mut self,
        sink: &mut dyn BodySink,
        progress: &mut Vec<HttpProgress>,
    ) -> Result<(), HttpError> {
        match &self.phase {
            Phase::Failed { .. } => Err(HttpError::AlreadyFailed),
            Phase::Complete { .. } => Ok(()),
            Phase::Head if !self.received_any => Err(HttpError::NoResponse),
            Phase::Head => Err(HttpError::TruncatedHead {
                received: self.head_parser.buffered(),
            }),
            Phase::Body { framing, output } => match framing {
                BodyFraming::UntilClose => self.complete(sink, progress),
                // Like http.client, a close while only trailers were missing still ends the body.
                BodyFraming::Chunked(chunked) if chunked.in_trailers() => {
                    self.complete(sink, progress)
                }
                BodyFraming::Chunked(_) => Err(HttpError::Truncated {
                    expected: None,
                    received: output.wire_total,
                }),
                BodyFraming::Length(total) => Err(HttpError::Truncated {
                    expected: Some(*total),
                    received: output.wire_total,
                }),
            },
        }
    }

    /// Handles a complete head: interim heads are reported and skipped, the final one
    /// decides the body.
    fn accept_head(
        &mut self,
        raw: RawHead,
        sink: &mut dyn BodySink,
        progress: &mut Vec<HttpProgress>,
    ) -> Result<(), HttpError> {
        let status = raw.status;
        let head = ResponseHead::new(&self.method, raw.version, status, raw.reason, raw.headers);
        let head = head?;
        if status == 101 {
            self.head = Some(head);
            return Err(HttpError::UnexpectedUpgrade);
        }
        if head.is_interim() {
            progress.push(HttpProgress::Interim(head));
            return Ok(());
        }
        let output = BodyOutput::new(&head.content_encoding, self.limits.max_encodings);
        let framing = match head.framing {
            Framing::NoBody => BodyFraming::Length(0),
            Framing::ContentLength(n) => BodyFraming::Length(n),
            Framing::Chunked => BodyFraming::Chunked(ChunkedDecoder::new(
                self.limits.max_chunk_line,
                self.limits.max_trailer_bytes,
            )),
            Framing::UntilClose => BodyFraming::UntilClose,
        };
        let empty = matches!(framing, BodyFraming::Length(0));
        progress.push(HttpProgress::Head(head.clone()));
        self.head = Some(head);
        self.phase = Phase::Body { framing, output };
        if empty {
            self.complete(sink, progress)?;
        }
        Ok(())
    }

    /// Ends the body: flushes the decoders, reports the last body bytes and `Complete`.
    fn complete(
        &mut self,
        sink: &mut dyn BodySink,
        progress: &mut Vec<HttpProgress>,
    ) -> Result<(), HttpError> {
        let Phase::Body { output, .. } = &mut self.phase else {
            return Ok(());
        };
        output.finish(sink)?;
        push_body_step(output, progress);
        progress.push(HttpProgress::Complete);
        let output = match std::mem::replace(&mut self.phase, Phase::Complete { output: None }) {
            Phase::Body { output, .. } => Some(output),
            _ => None,
        };
        self.phase = Phase::Complete { output };
        Ok(())
    }
}

/// Reads body bytes from `input`: the bytes used and whether the body has ended.
fn read_body(
    framing: &mut BodyFraming,
    output: &mut BodyOutput,
    input: &[u8],
    sink: &mut dyn BodySink,
) -> Result<(usize, bool), HttpError> {
    match framing {
        BodyFraming::Length(total) => {
            let remaining = total.saturating_sub(output.wire_total);
            let take = usize::try_from(remaining).map_or(input.len(), |r| r.min(input.len()));
            let data = input.get(..take).unwrap_or(input);
            output.deliver(data, sink)?;
            Ok((data.len(), output.wire_total >= *total))
        }
        BodyFraming::Chunked(chunked) => {
            let used = chunked.decode(input, &mut |data| output.deliver(data, sink))?;
            Ok((used, chunked.is_done()))
        }
        BodyFraming::UntilClose => {
            output.deliver(input, sink)?;
            Ok((input.len(), false))
        }
    }
}

/// Reports the body bytes of this call, if any.
fn push_body_step(output: &mut BodyOutput, progress: &mut Vec<HttpProgress>) {
    let (wire, decoded) = output.take_step();
    if wire > 0 || decoded > 0 {
        progress.push(HttpProgress::Body { wire, decoded });
    }
}
