//! Parsing one HTTP/1.1 request head, bounded in size.

/// The largest request head the server reads (64 KiB); longer heads get 431.
pub(crate) const MAX_HEAD_LEN: usize = 64 * 1024;

/// The most header fields a request head may have; more get 431.
const MAX_HEADERS: usize = 100;

/// One parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target as sent, e.g. `/bytes/10?x=1`.
    pub target: String,
    /// The target's path, without the query.
    pub path: String,
    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub minor_version: u8,
    /// Header fields in order, names in lower case.
    pub headers: Vec<(String, Vec<u8>)>,
    /// True when the connection should close after this request's response.
    pub wants_close: bool,
    /// How the request's body is delimited (none, `Content-Length` or chunked).
    pub framing: BodyFraming,
    /// True when the request has `Expect: 100-continue` (HTTP/1.1 only): the client waits
    /// for `100 Continue` before it sends the body.
    pub expects_continue: bool,
    /// The body, decoded from its framing; filled in by the
    /// [`RequestReader`](super::reader::RequestReader) before the request is answered.
    pub body: Vec<u8>,
}

/// How a request's body is delimited (RFC 9112 section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// No body: neither `Content-Length` nor `Transfer-Encoding`, or `Content-Length: 0`.
    None,
    /// `Content-Length: N` with N > 0.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// The host assumed when a request has no usable `Host` field.
const DEFAULT_HOST: &str = "www.example.test";

impl Request {
    /// The value of the header field `name` (lower case) as text, if it is present and
    /// UTF-8; several fields of that name are joined with `, `.
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<String> = self
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).trim().to_owned())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    /// True for `HEAD` requests (no body in the response).
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    /// The `Host` field as sent (with its port, if any), or `www.example.test` when it
    /// is missing or not a plain host name.
    pub fn host(&self) -> &str {
        self.headers
            .iter()
            .find(|(name, _)| name == "host")
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
            .map(str::trim)
            .filter(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
            .unwrap_or(DEFAULT_HOST)
    }

    /// The host name of [`Request::host`] in lower case, without port or final dot.
    pub fn host_name(&self) -> String {
        let host = self.host();
        let name = if let Some(end) = host.starts_with('[').then(|| host.find(']')).flatten() {
            host.get(..=end).unwrap_or(host)
        } else {
            match host.split_once(':') {
                Some((name, port))
                    if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    name
                }
                _ => host,
            }
        };
        name.trim_end_matches('.').to_ascii_lowercase()
    }

    /// The query string of the target (after `?`, without a fragment), or "".
    pub fn query(&self) -> &str {
        self.target
            .split('#')
            .next()
            .and_then(|t| t.split_once('?'))
            .map_or("", |(_, q)| q)
    }
}

/// What parsing the bytes received so far gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseOutcome {
    /// A whole head, `head_len` bytes long.
    Complete {
        /// The request.
        request: Request,
        /// Bytes of the buffer the head used.
        head_len: usize,
    },
    /// The head is not complete yet; read more.
    Partial,
    /// The head is longer than [`MAX_HEAD_LEN`] or has too many fields (answer 431).
    TooLarge,
    /// Not a valid HTTP/1.x request head (answer 400).
    Invalid(String),
    /// A valid head with a transfer coding other than `chunked` (answer 501).
    Unsupported(String),
}

/// Parses the request head at the start of `buf`.
pub(crate) fn parse_request(buf: &[u8]) -> ParseOutcome {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_LEN => {
            return ParseOutcome::TooLarge;
        }
        Ok(httparse::Status::Partial) => return ParseOutcome::Partial,
        Err(httparse::Error::TooManyHeaders) => return ParseOutcome::TooLarge,
        Err(e) => return ParseOutcome::Invalid(e.to_string()),
    };
    if head_len > MAX_HEAD_LEN {
        return ParseOutcome::TooLarge;
    }
    let (Some(method), Some(target), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return ParseOutcome::Invalid("incomplete request line".to_owned());
    };
    let headers: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();

    let mut close_token = false;
    let mut keep_alive_token = false;
    let mut expects_continue = false;
    for (name, value) in &headers {
        match name.as_str() {
            "connection" => {
                for token in value.split(|b| *b == b',') {
                    let token = token.trim_ascii();
                    close_token |= token.eq_ignore_ascii_case(b"close");
                    keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            "expect" => {
                expects_continue |= value.trim_ascii().eq_ignore_ascii_case(b"100-continue")
            }
            _ => {}
        }
    }
    let framing = match body_framing(&headers) {
        Ok(f) => f,
        Err(FramingError::Invalid(why)) => return ParseOutcome::Invalid(why.to_owned()),
        Err(FramingError::Unsupported(coding)) => return ParseOutcome::Unsupported(coding),
    };
    let wants_close = if minor_version >= 1 {
        close_token
    } else {
        !keep_alive_token || close_token
    };
    let path = target
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_owned();
    ParseOutcome::Complete {
        request: Request {
            method: method.to_owned(),
            target: target.to_owned(),
            path,
            minor_version,
            headers,
            wants_close,
            framing,
            expects_continue: expects_continue
                && minor_version >= 1
                && framing != BodyFraming::None,
            body: Vec::new(),
        },
        head_len,
    }
}

/// Why a head's body framing is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FramingError {
    /// Bad or conflicting fields (400).
    Invalid(&'static str),
    /// A transfer coding this server does not decode (501).
    Unsupported(String),
}

/// The body framing the head's `Content-Length` and `Transfer-Encoding` fields announce.
/// Both at once, differing lengths, or `chunked` not last are refused, so that no two
/// readers could see different bodies (request smuggling, RFC 9112 section 6.3).
fn body_framing(headers: &[(String, Vec<u8>)]) -> Result<BodyFraming, FramingError> {
    let mut length: Option<u64> = None;
    let mut codings: Vec<String> = Vec::new();
    for (name, value) in headers {
        match name.as_str() {
            "content-length" => {
                for part in value.split(|b| *b == b',') {
                    let n = std::str::from_utf8(part)
                        .ok()
                        .map(str::trim)
                        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or(FramingError::Invalid("bad Content-Length"))?;
                    if length.is_some_and(|l| l != n) {
                        return Err(FramingError::Invalid("conflicting Content-Length fields"));
                    }
                    length = Some(n);
                }
            }
            "transfer-encoding" => codings.extend(
                String::from_utf8_lossy(value)
                    .split(',')
                    .map(|c| c.trim().to_ascii_lowercase())
                    .filter(|c| !c.is_empty()),
            ),
            _ => {}
        }
    }
    if codings.is_empty() {
        return Ok(match length {
            Some(n) if n > 0 => BodyFraming::Length(n),
            _ => BodyFraming::None,
        });
    }
    if length.is_some() {
        return Err(FramingError::Invalid(
            "both Content-Length and Transfer-Encoding",
        ));
    }
    match codings.as_slice() {
        [only] if only == "chunked" => Ok(BodyFraming::Chunked),
        [.., last] if last != "chunked" => Err(FramingError::Invalid(
            "chunked is not the last transfer coding",
        )),
        _ => Err(FramingError::Unsupported(codings.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Request, usize) {
        match parse_request(buf) {
            ParseOutcome::Complete { request, head_len } => (request, head_len),
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn requests_style_get() {
        let head = b"GET /bytes/10?x=1 HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: python-requests/2.34.2\r\nAccept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.1\r\n";
        let (r, n) = complete(head);
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/bytes/10");
        assert_eq!(r.target, "/bytes/10?x=1");
        assert_eq!(r.minor_version, 1);
        assert!(!r.wants_close && !r.expects_continue && !r.is_head());
        assert_eq!(r.framing, BodyFraming::None);
        assert_eq!(
            r.headers[0],
            ("host".to_owned(), b"www.example.test".to_vec())
        );
        assert_eq!(&head[n..], b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn connection_semantics() {
        let (r, _) = complete(b"GET / HTTP/1.1\r\nConnection: foo, Close\r\n\r\n");
        assert!(r.wants_close);
        let (r, _) = complete(b"GET / HTTP/1.0\r\n\r\n");
        assert!(r.wants_close);
        let (r, _) = complete(b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(!r.wants_close && r.is_head());
    }

    #[test]
    fn bodies_partial_invalid_and_too_large() {
        let (r, _) = complete(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
        assert_eq!(r.framing, BodyFraming::Length(3));
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nHost: x"),
            ParseOutcome::Partial
        );
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            ParseOutcome::Invalid(_)
        ));
        assert!(matches!(
            parse_request(b"\x16\x03\x01\x00\xff garbage\r\n\r\n"),
            ParseOutcome::Invalid(_)
        ));
        let mut long = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        long.resize(MAX_HEAD_LEN, b'a');
        assert_eq!(parse_request(&long), ParseOutcome::TooLarge);
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_request(&many), ParseOutcome::TooLarge);
    }

    #[test]
    fn body_framing_and_expect_continue() {
        let (r, _) = complete(
            b"PUT / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nExpect: 100-Continue\r\n\r\n",
        );
        assert_eq!(
            (r.framing, r.expects_continue),
            (BodyFraming::Chunked, true)
        );
        let (r, _) =
            complete(b"POST / HTTP/1.1\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n");
        assert_eq!((r.framing, r.expects_continue), (BodyFraming::None, false));
        let (r, _) =
            complete(b"POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
        assert_eq!(
            (r.framing, r.expects_continue),
            (BodyFraming::Length(5), false)
        );
        let (r, _) = complete(b"POST / HTTP/1.1\r\nContent-Length: 7, 7\r\n\r\n");
        assert_eq!(r.framing, BodyFraming::Length(7));
        assert_eq!(r.header("content-length").as_deref(), Some("7, 7"));
        assert!(matches!(
            parse_request(b"POST / HTTP/1.1\r\nContent-Length: 7, 8\r\n\r\n"),
            ParseOutcome::Invalid(_)
        ));
        assert!(matches!(
            parse_request(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            ParseOutcome::Unsupported(c) if c == "gzip, chunked"
        ));
    }

    #[test]
    fn host_and_query() {
        let (r, _) = complete(b"GET /a?b=1&c#frag HTTP/1.1\r\nHost: CDN.Example.TEST.:443\r\n\r\n");
        assert_eq!(r.host(), "CDN.Example.TEST.:443");
        assert_eq!(r.host_name(), "cdn.example.test");
        assert_eq!(r.query(), "b=1&c");
        let (r, _) = complete(b"GET / HTTP/1.1\r\nHost: [fd00:88::1]:443\r\n\r\n");
        assert_eq!(r.host_name(), "[fd00:88::1]");
        let (r, _) = complete(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!((r.host(), r.query()), ("www.example.test", ""));
        let (r, _) = complete(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n");
        assert_eq!(r.host(), "www.example.test");
    }
}
