//! Collects a response head from arbitrarily split input and parses it with `httparse`.
//!
//! Bytes are buffered (at most `max_bytes`) and httparse runs only when an empty line
//! may have arrived, so trickled input costs linear time. Like `http.client`, header
//! values and the reason phrase are read as Latin-1, obsolete line folding is joined
//! with a space and whitespace between a header name and its colon is tolerated.

use super::error::{HttpError, quote};

/// How many bytes of an offending line an error message quotes.
const QUOTE_LEN: usize = 80;

/// A parsed head before its framing is decided.
#[derive(Debug)]
pub(crate) struct RawHead {
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub(crate) version: &'static str,
    /// The status code.
    pub(crate) status: u16,
    /// The reason phrase as Latin-1 text.
    pub(crate) reason: String,
    /// Header lines, names as received, values as Latin-1 text.
    pub(crate) headers: Vec<(String, String)>,
}

/// The result of offering input to a [`HeadParser`].
#[derive(Debug)]
pub(crate) enum HeadStep {
    /// All input was taken; the head is not complete yet.
    NeedMore,
    /// The head is complete; `used` bytes of this input belonged to it.
    Done {
        /// The parsed head.
        head: RawHead,
        /// Input bytes consumed by this call.
        used: usize,
    },
}

/// Accumulates and parses one response head.
#[derive(Debug)]
pub(crate) struct HeadParser {
    buf: Vec<u8>,
    /// Leading empty lines skipped before the status line (counted against the limit).
    skipped: usize,
    /// Bytes of `buf` already searched for the end of the head.
    scanned: usize,
    status_checked: bool,
    max_bytes: usize,
    max_headers: usize,
}

impl HeadParser {
    /// A parser accepting heads of at most `max_bytes` bytes and `max_headers` header lines.
    pub(crate) fn new(max_bytes: usize, max_headers: usize) -> Self {
        Self {
            buf: Vec::new(),
            skipped: 0,
            scanned: 0,
            status_checked: false,
            max_bytes,
            max_headers,
        }
    }

    /// Bytes of an unfinished head received so far (leading empty lines not counted).
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Offers `input`; returns the head once its empty line has arrived.
    pub(crate) fn push(&mut self, input: &[u8]) -> Result<HeadStep, HttpError> {
        let mut used = 0;
        if self.buf.is_empty() {
            // Empty lines before the status line are skipped, as httparse would.
            let blank = input
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            self.skipped = self.skipped.saturating_add(blank);
            used = blank;
        }
        let rest = input.get(used..).unwrap_or_default();
        let room = self
            .max_bytes
            .saturating_sub(self.skipped)
            .saturating_sub(self.buf.len());
        let new = rest.get(..room.min(rest.len())).unwrap_or(rest);
        self.buf.extend_from_slice(new);
        used = used.saturating_add(new.len());

        if !self.status_checked && new.contains(&b'\n') {
            self.check_status_line()?;
        }
        let mut from = self.scanned.saturating_sub(2);
        while let Some((lf, _end)) = find_blank_line(&self.buf, from) {
            if let Some((head, head_len)) = self.parse()? {
                let leftover = self.buf.len().saturating_sub(head_len);
                let used_here = used.saturating_sub(leftover);
                *self = Self::new(self.max_bytes, self.max_headers);
                return Ok(HeadStep::Done {
                    head,
                    used: used_here,
                });
            }
            from = lf.saturating_add(1);
        }
        self.scanned = self.buf.len();
        if self.skipped.saturating_add(self.buf.len()) >= self.max_bytes {
            return Err(HttpError::HeadersTooLarge {
                limit: self.max_bytes,
            });
        }
        Ok(HeadStep::NeedMore)
    }

    /// Rejects a bad status line as soon as its line end arrives.
    fn check_status_line(&mut self) -> Result<(), HttpError> {
        let Some(lf) = self.buf.iter().position(|&b| b == b'\n') else {
            return Ok(());
        };
        let line = self.buf.get(..=lf).unwrap_or_default();
        parse_status_line(line)?;
        self.status_checked = true;
        Ok(())
    }

    /// Runs httparse over the buffer: the head and its length, or `None` if incomplete.
    fn parse(&self) -> Result<Option<(RawHead, usize)>, HttpError> {
        let mut slots = vec![httparse::EMPTY_HEADER; self.max_headers];
        let mut response = httparse::Response::new(&mut slots);
        let mut config = httparse::ParserConfig::default();
        config
            .allow_spaces_after_header_name_in_responses(true)
            .allow_obsolete_multiline_headers_in_responses(true);
        match config.parse_response(&mut response, &self.buf) {
            Ok(httparse::Status::Complete(len)) => {
                let (version, status, reason) = parse_status_line(first_line(&self.buf))?;
                let headers = response
                    .headers
                    .iter()
                    .map(|h| (h.name.to_owned(), header_value(h.value)))
                    .collect();
                let head = RawHead {
                    version,
                    status,
                    reason,
                    headers,
                };
                Ok(Some((head, len)))
            }
            Ok(httparse::Status::Partial) => Ok(None),
            Err(httparse::Error::TooManyHeaders) => Err(HttpError::TooManyHeaders {
                limit: self.max_headers,
            }),
            Err(error) => {
                parse_status_line(first_line(&self.buf))?;
                Err(HttpError::MalformedHeader(describe_bad_header(
                    &self.buf, error,
                )))
            }
        }
    }
}

/// The position of the next line feed at or after `from` that starts an empty line
/// (`\n\n` or `\n\r\n`), or that is followed by `\r` and some other byte (an error httparse
/// will report), with the end of that marker.
fn find_blank_line(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let tail = buf.get(from..)?;
    for (offset, _) in tail.iter().enumerate().filter(|(_, b)| **b == b'\n') {
        let lf = from.checked_add(offset)?;
        let next = |k: usize| lf.checked_add(k).and_then(|i| buf.get(i));
        match (next(1), next(2)) {
            (Some(b'\n'), _) => return Some((lf, lf.saturating_add(2))),
            (Some(b'\r'), Some(_)) => return Some((lf, lf.saturating_add(3))),
            _ => {}
        }
    }
    None
}

/// The first line of `buf`, including its line feed when present.
fn first_line(buf: &[u8]) -> &[u8] {
    match buf.iter().position(|&b| b == b'\n') {
        Some(lf) => buf.get(..=lf).unwrap_or(buf),
        None => buf,
    }
}

/// Parses `HTTP/1.x NNN reason` (with its line end) into version, status and reason.
fn parse_status_line(line: &[u8]) -> Result<(&'static str, u16, String), HttpError> {
    let text = line
        .strip_suffix(b"\n")
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .unwrap_or(line);
    let malformed = || HttpError::MalformedStatusLine(quote(text, QUOTE_LEN));
    let mut slots = [httparse::EMPTY_HEADER; 0];
    let mut response = httparse::Response::new(&mut slots);
    let mut probe = line.to_vec();
    probe.extend_from_slice(b"\r\n");
    match response.parse(&probe) {
        Ok(_) => {}
        Err(_) => return Err(malformed()),
    }
    let version = match response.version {
        Some(0) => "HTTP/1.0",
        Some(1) => "HTTP/1.1",
        _ => return Err(malformed()),
    };
    let status = response.code.filter(|c| *c >= 100).ok_or_else(malformed)?;
    // httparse fixed the layout: "HTTP/1.x NNN" then optionally " reason".
    let reason = text.get(13..).map(latin1).unwrap_or_default();
    Ok((version, status, reason))
}

/// A header value as Latin-1 text, obsolete line folds replaced by one space.
fn header_value(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut bytes = raw.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        if b == b'\r' || b == b'\n' {
            while bytes
                .next_if(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
                .is_some()
            {}
            out.push(' ');
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// Bytes read as Latin-1 (every byte one character), as Python's `http.client` does.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Names the first header line that is not `token [spaces] ":" value`, quoted.
fn describe_bad_header(buf: &[u8], error: httparse::Error) -> String {
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let is_value = |b: u8| b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80;
    for line in buf.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) && line.iter().all(|&b| is_value(b)) {
            continue;
        }
        let good = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let name = line.get(..colon).unwrap_or_default();
                let name = name.trim_ascii_end();
                let value = line.get(colon.saturating_add(1)..).unwrap_or_default();
                !name.is_empty()
                    && name.iter().all(|&b| is_tchar(b))
                    && value.iter().all(|&b| is_value(b))
            }
            None => false,
        };
        if !good {
            return format!("`{}` ({error})", quote(line, QUOTE_LEN));
        }
    }
    error.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<(RawHead, usize), HttpError> {
        let mut parser = HeadParser::new(64 * 1024, 100);
        match parser.push(input)? {
            HeadStep::Done { head, used } => Ok((head, used)),
            HeadStep::NeedMore => panic!("head incomplete"),
        }
    }

    #[test]
    fn parses_a_head_and_stops_at_its_end() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX: a\xe9\r\n\r\nBODY";
        let (head, used) = parse_all(input).unwrap();
        assert_eq!(used, input.len() - 4);
        assert_eq!(head.version, "HTTP/1.1");
        assert_eq!(head.status, 200);
        assert_eq!(head.reason, "OK");
        assert_eq!(
            head.headers[0],
            ("Content-Type".into(), "text/plain".into())
        );
        assert_eq!(head.headers[1].1, "aé");
    }

    #[test]
    fn bare_line_feeds_leading_blank_lines_and_latin1_reason() {
        let input = b"\r\n\nHTTP/1.0 404 Nicht gefunden \xfc\nA: b\n\nrest";
        let (head, used) = parse_all(input).unwrap();
        assert_eq!(used, input.len() - 4);
        assert_eq!(head.version, "HTTP/1.0");
        assert_eq!(head.reason, "Nicht gefunden ü");
    }

    #[test]
    fn obsolete_folding_becomes_one_space() {
        let input = b"HTTP/1.1 200 OK\r\nX-Fold: hello\r\n  there\r\nY : z\r\n\r\n";
        let (head, _) = parse_all(input).unwrap();
        assert_eq!(head.headers[0].1, "hello there");
        assert_eq!(head.headers[1], ("Y".into(), "z".into()));
    }

    #[test]
    fn one_byte_at_a_time() {
        let input = b"HTTP/1.1 204 No Content\r\nA: 1\r\n\r\nNEXT";
        let mut parser = HeadParser::new(1024, 10);
        for (i, byte) in input.iter().enumerate() {
            match parser.push(std::slice::from_ref(byte)).unwrap() {
                HeadStep::NeedMore => assert!(i < input.len() - 5),
                HeadStep::Done { head, used } => {
                    assert_eq!(i, input.len() - 5);
                    assert_eq!(used, 1);
                    assert_eq!(head.status, 204);
                    return;
                }
            }
        }
        panic!("never completed");
    }

    #[test]
    fn bad_status_lines() {
        for line in [
            &b"HTTP/2 200 OK\r\n"[..],
            b"HTTP/1.1 20 OK\r\n",
            b"HTTP/1.1 099 Low\r\n",
            b"ICY 200 OK\r\n",
            b"HTTP/1.1 200OK\r\n",
            b"HTTP/1.1 200 O\x01K\r\n",
        ] {
            let mut parser = HeadParser::new(1024, 10);
            let err = parser.push(line).unwrap_err();
            assert_eq!(err.kind(), "malformed-status-line", "{line:?}");
        }
        let err = HeadParser::new(1024, 10)
            .push(b"HTTP/1.1 200 O\x01K\r\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the server's status line is not valid HTTP/1.x: `HTTP/1.1 200 O\\x01K`"
        );
    }

    #[test]
    fn bad_header_line_is_quoted() {
        let err = parse_all(b"HTTP/1.1 200 OK\r\nGood: 1\r\nBad Name: 2\r\n\r\n").unwrap_err();
        assert_eq!(err.kind(), "malformed-header");
        assert!(err.to_string().contains("`Bad Name: 2`"), "{err}");
        let err = parse_all(b"HTTP/1.1 200 OK\r\nA: 1\r\n\rX\r\n\r\n").unwrap_err();
        assert_eq!(err.kind(), "malformed-header");
    }

    #[test]
    fn limits() {
        let mut parser = HeadParser::new(32, 10);
        let err = parser
            .push(b"HTTP/1.1 200 OK\r\nX: 0123456789abcdef\r\n")
            .unwrap_err();
        assert_eq!(err.kind(), "headers-too-large");

        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..4 {
            many.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let err = HeadParser::new(1024, 3).push(&many).unwrap_err();
        assert_eq!(err.kind(), "too-many-headers");
    }

    #[test]
    fn head_exactly_at_the_limit_fits() {
        let input = b"HTTP/1.1 200 OK\r\n\r\n";
        let mut parser = HeadParser::new(input.len(), 1);
        assert!(matches!(
            parser.push(input).unwrap(),
            HeadStep::Done { used: 19, .. }
        ));
    }
}
