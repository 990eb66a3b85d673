//! A parsed response head and the decisions it carries: how the body is framed
//! (RFC 9112 §6.3) and whether the connection may be reused.

use super::error::{HttpError, quote};

/// How the end of a response body is found (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// Exactly this many body bytes follow the head.
    ContentLength(u64),
    /// `Transfer-Encoding: chunked` (the last transfer coding).
    Chunked,
    /// The body runs until the server closes the connection.
    UntilClose,
    /// No body at all: a HEAD request, a 1xx, 204 or 304 status.
    NoBody,
}

/// A response's status line and headers, with the framing and content codings derived from them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResponseHead {
    /// The protocol version as sent: `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// The status code (100–999).
    pub status: u16,
    /// The reason phrase (bytes beyond ASCII read as Latin-1, as Python does).
    pub reason: String,
    /// Header lines in arrival order, names as received; values read as Latin-1.
    pub headers: Vec<(String, String)>,
    /// How the body is delimited.
    pub framing: Framing,
    /// The content codings named by `Content-Encoding`, lower case, in the order applied by the server.
    pub content_encoding: Vec<String>,
}

impl ResponseHead {
    /// Builds a head from its parts, deciding the framing for a request made with `method`.
    pub fn new(
        method: &str,
        version: &str,
        status: u16,
        reason: String,
        headers: Vec<(String, String)>,
    ) -> Result<Self, HttpError> {
        let framing = decide_framing(method.eq_ignore_ascii_case("HEAD"), status, &headers)?;
        let content_encoding = tokens(&headers, "content-encoding")
            .map(str::to_ascii_lowercase)
            .collect();
        Ok(Self {
            version: version.to_owned(),
            status,
            reason,
            headers,
            framing,
            content_encoding,
        })
    }

    /// The value of the first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is an interim (1xx) response.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status)
    }

    /// `HTTP/1.1 200 OK` (no trailing space when the reason is empty).
    pub fn status_line(&self) -> String {
        if self.reason.is_empty() {
            format!("{} {}", self.version, self.status)
        } else {
            format!("{} {} {}", self.version, self.status, self.reason)
        }
    }

    /// Whether the head allows another request on the connection once this response is
    /// complete: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with
    /// `Connection: keep-alive`, never for a body delimited by the close, and never when the
    /// framing is suspect (Transfer-Encoding together with Content-Length, or in HTTP/1.0).
    pub fn allows_reuse(&self) -> bool {
        let mut close = false;
        let mut keep_alive = false;
        for token in tokens(&self.headers, "connection") {
            close |= token.eq_ignore_ascii_case("close");
            keep_alive |= token.eq_ignore_ascii_case("keep-alive");
        }
        let persistent = if self.version == "HTTP/1.1" {
            !close
        } else {
            keep_alive && !close
        };
        let has_te = tokens(&self.headers, "transfer-encoding").next().is_some();
        let has_cl = self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        let suspect = has_te && (has_cl || self.version != "HTTP/1.1");
        match self.framing {
            Framing::NoBody => persistent,
            Framing::ContentLength(_) | Framing::Chunked => persistent && !suspect,
            Framing::UntilClose => false,
        }
    }
}

/// The comma-separated tokens of every header called `name`, trimmed, empty ones skipped.
pub(crate) fn tokens<'a>(
    headers: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim_matches([' ', '\t']))
        .filter(|t| !t.is_empty())
}

/// RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304; chunked when it is the last
/// transfer coding; until close for any other transfer coding; else Content-Length
/// (all values must agree); else until close.
fn decide_framing(
    head_request: bool,
    status: u16,
    headers: &[(String, String)],
) -> Result<Framing, HttpError> {
    if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Framing::NoBody);
    }
    if let Some(last) = tokens(headers, "transfer-encoding").last() {
        return Ok(if last.eq_ignore_ascii_case("chunked") {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    match content_length(headers)? {
        Some(length) => Ok(Framing::ContentLength(length)),
        None => Ok(Framing::UntilClose),
    }
}

/// The agreed value of all `Content-Length` headers (each may hold a comma-separated list).
fn content_length(headers: &[(String, String)]) -> Result<Option<u64>, HttpError> {
    let mut found: Option<u64> = None;
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        for part in value.split(',') {
            let length = parse_length(part.trim_matches([' ', '\t']))
                .ok_or_else(|| HttpError::InvalidContentLength(quote(value.as_bytes(), 64)))?;
            match found {
                Some(earlier) if earlier != length => {
                    return Err(HttpError::ConflictingLength(format!(
                        "{earlier} and {length}"
                    )));
                }
                _ => found = Some(length),
            }
        }
    }
    Ok(found)
}

/// A plain decimal number (digits only, no sign), without overflow.
fn parse_length(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.bytes().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, version: &str, status: u16, headers: &[(&str, &str)]) -> ResponseHead {
        try_head(method, version, status, headers).unwrap()
    }

    fn try_head(
        method: &str,
        version: &str,
        status: u16,
        headers: &[(&str, &str)],
    ) -> Result<ResponseHead, HttpError> {
        let headers = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        ResponseHead::new(method, version, status, String::new(), headers)
    }

    #[test]
    fn framing_rules() {
        let cl = [("Content-Length", "5")];
        assert_eq!(
            head("GET", "HTTP/1.1", 200, &cl).framing,
            Framing::ContentLength(5)
        );
        assert_eq!(head("HEAD", "HTTP/1.1", 200, &cl).framing, Framing::NoBody);
        for status in [100, 103, 204, 304] {
            assert_eq!(
                head("GET", "HTTP/1.1", status, &cl).framing,
                Framing::NoBody
            );
        }
        assert_eq!(
            head("GET", "HTTP/1.1", 200, &[]).framing,
            Framing::UntilClose
        );
        let both = [
            ("Content-Length", "5"),
            ("Transfer-Encoding", "gzip, Chunked"),
        ];
        assert_eq!(
            head("GET", "HTTP/1.1", 200, &both).framing,
            Framing::Chunked
        );
        let not_last = [("Transfer-Encoding", "chunked, gzip")];
        assert_eq!(
            head("GET", "HTTP/1.1", 200, &not_last).framing,
            Framing::UntilClose
        );
    }

    #[test]
    fn content_length_values() {
        let same = [("Content-Length", "7, 7"), ("content-length", "7")];
        assert_eq!(
            head("GET", "HTTP/1.1", 200, &same).framing,
            Framing::ContentLength(7)
        );
        let differ = [("Content-Length", "7"), ("Content-Length", "8")];
        assert_eq!(
            try_head("GET", "HTTP/1.1", 200, &differ)
                .unwrap_err()
                .kind(),
            "conflicting-length"
        );
        for bad in ["", "+5", "-1", "0x10", "5 5", "99999999999999999999"] {
            let e = try_head("GET", "HTTP/1.1", 200, &[("Content-Length", bad)]).unwrap_err();
            assert_eq!(e.kind(), "invalid-content-length", "{bad:?}");
        }
        // A chunked body ignores Content-Length entirely, even a bad one.
        let te = [("Content-Length", "x"), ("Transfer-Encoding", "chunked")];
        assert_eq!(head("GET", "HTTP/1.1", 200, &te).framing, Framing::Chunked);
    }

    #[test]
    fn reuse_rules() {
        let cl = ("Content-Length", "1");
        assert!(head("GET", "HTTP/1.1", 200, &[cl]).allows_reuse());
        assert!(!head("GET", "HTTP/1.1", 200, &[cl, ("Connection", "Close")]).allows_reuse());
        assert!(!head("GET", "HTTP/1.0", 200, &[cl]).allows_reuse());
        assert!(head("GET", "HTTP/1.0", 200, &[cl, ("Connection", "Keep-Alive")]).allows_reuse());
        assert!(!head("GET", "HTTP/1.1", 200, &[]).allows_reuse());
        assert!(head("GET", "HTTP/1.1", 204, &[]).allows_reuse());
        assert!(head("HEAD", "HTTP/1.1", 200, &[]).allows_reuse());
        let smuggle = [cl, ("Transfer-Encoding", "chunked")];
        assert!(!head("GET", "HTTP/1.1", 200, &smuggle).allows_reuse());
        let te10 = [
            ("Transfer-Encoding", "chunked"),
            ("Connection", "keep-alive"),
        ];
        assert!(!head("GET", "HTTP/1.0", 200, &te10).allows_reuse());
    }

    #[test]
    fn content_codings_in_order() {
        let h = head(
            "GET",
            "HTTP/1.1",
            200,
            &[
                ("Content-Encoding", "GZIP, deflate"),
                ("Content-Encoding", "br"),
            ],
        );
        assert_eq!(h.content_encoding, ["gzip", "deflate", "br"]);
    }
}
