//! What can go wrong while reading an HTTP/1.1 response.

/// Why a response could not be read. Every message is one sentence a person understands.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The first line of the response is not `HTTP/1.x NNN reason`.
    #[error("the server's status line is not valid HTTP/1.x: `{0}`")]
    MalformedStatusLine(String),
    /// A header line could not be parsed.
    #[error("the server sent a malformed header line: {0}")]
    MalformedHeader(String),
    /// The response head did not end within the limit.
    #[error("the server's response head is larger than {limit} bytes")]
    HeadersTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The response head had more header lines than allowed.
    #[error("the server sent more than {limit} header lines")]
    TooManyHeaders {
        /// The configured number of header lines.
        limit: usize,
    },
    /// The server closed the connection before sending anything.
    #[error("the server closed the connection without sending a response")]
    NoResponse,
    /// The server closed the connection in the middle of the response head.
    #[error("the server closed the connection after {received} bytes of the response head")]
    TruncatedHead {
        /// Head bytes received before the close.
        received: usize,
    },
    /// The server answered `101 Switching Protocols` although no upgrade was asked for.
    #[error("the server switched protocols (status 101) although the request asked for no upgrade")]
    UnexpectedUpgrade,
    /// A `Content-Length` value is not a plain decimal number.
    #[error("the server's Content-Length is not a valid length: `{0}`")]
    InvalidContentLength(String),
    /// Several `Content-Length` values disagree.
    #[error("the server sent Content-Length values that disagree: {0}")]
    ConflictingLength(String),
    /// A chunk-size line of a chunked body is not valid.
    #[error("the server's chunked body has a bad chunk-size line: {0}")]
    BadChunkSize(String),
    /// Chunk framing other than the size line is wrong (missing CRLF after the data).
    #[error("the server's chunked body is malformed: {0}")]
    MalformedChunk(String),
    /// The trailer section of a chunked body is larger than allowed.
    #[error("the trailer section of the server's chunked body is larger than {limit} bytes")]
    TrailersTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The body ended (connection closed) before its framing said it would.
    #[error("{}", truncated_message(*expected, *received))]
    Truncated {
        /// The announced length (`Content-Length`), or `None` for a chunked body.
        expected: Option<u64>,
        /// Body bytes received before the close.
        received: u64,
    },
    /// A compressed body could not be decoded.
    #[error("the server's {coding} body could not be decoded: {detail}")]
    CorruptEncoding {
        /// The content coding that failed (`gzip`, `deflate`).
        coding: String,
        /// What the decoder found.
        detail: String,
    },
    /// The body uses a content coding this client does not implement.
    #[error(
        "the server used the content coding `{0}`, which fetchscope cannot decode (it asked for gzip or deflate only)"
    )]
    UnsupportedEncoding(String),
    /// More content codings were stacked than allowed.
    #[error("the server stacked {count} content codings; at most {limit} are accepted")]
    TooManyEncodings {
        /// Codings announced by the server.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A redirect's `Location` cannot be followed.
    #[error("the server redirected to {0}")]
    BadRedirect(String),
    /// The body sink refused the decoded bytes.
    #[error("could not store the response body: {0}")]
    Sink(#[source] std::io::Error),
    /// The reader was used again after it had already failed.
    #[error("this response already failed with an earlier error")]
    AlreadyFailed,
}

impl HttpError {
    /// A short machine name for the error, stable for scripts and JSON (`"truncated-body"`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MalformedStatusLine(_) => "malformed-status-line",
            Self::MalformedHeader(_) => "malformed-header",
            Self::HeadersTooLarge { .. } => "headers-too-large",
            Self::TooManyHeaders { .. } => "too-many-headers",
            Self::NoResponse => "no-response",
            Self::TruncatedHead { .. } => "truncated-head",
            Self::UnexpectedUpgrade => "unexpected-upgrade",
            Self::InvalidContentLength(_) => "invalid-content-length",
            Self::ConflictingLength(_) => "conflicting-length",
            Self::BadChunkSize(_) => "bad-chunk-size",
            Self::MalformedChunk(_) => "malformed-chunk",
            Self::TrailersTooLarge { .. } => "trailers-too-large",
            Self::Truncated { .. } => "truncated-body",
            Self::CorruptEncoding { .. } => "corrupt-encoding",
            Self::UnsupportedEncoding(_) => "unsupported-encoding",
            Self::TooManyEncodings { .. } => "too-many-encodings",
            Self::BadRedirect(_) => "bad-redirect",
            Self::Sink(_) => "sink",
            Self::AlreadyFailed => "already-failed",
        }
    }
}

/// The sentence for [`HttpError::Truncated`].
fn truncated_message(expected: Option<u64>, received: u64) -> String {
    match expected {
        Some(total) => format!(
            "the server's response ended after {received} of {total} bytes (Content-Length)"
        ),
        None => format!(
            "the server's chunked response ended after {received} body bytes, before the last chunk"
        ),
    }
}

/// Quotes untrusted bytes for an error message: printable ASCII as is, the rest escaped,
/// at most `max` input bytes (an ellipsis marks the cut).
pub(crate) fn quote(bytes: &[u8], max: usize) -> String {
    let shown = bytes.get(..max).unwrap_or(bytes);
    let mut text = shown.escape_ascii().to_string();
    if shown.len() < bytes.len() {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_message_names_both_numbers() {
        let e = HttpError::Truncated {
            expected: Some(5000),
            received: 1200,
        };
        assert_eq!(
            e.to_string(),
            "the server's response ended after 1200 of 5000 bytes (Content-Length)"
        );
        assert_eq!(e.kind(), "truncated-body");
    }

    #[test]
    fn quote_escapes_and_cuts() {
        assert_eq!(quote(b"HTTP/1.1 \x00\r\n", 64), "HTTP/1.1 \\x00\\r\\n");
        assert_eq!(quote(b"abcdef", 3), "abc…");
    }
}
