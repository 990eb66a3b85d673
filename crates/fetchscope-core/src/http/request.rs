//! The request head, byte for byte as Python requests sends it.
//!
//! requests (through urllib3 and `http.client`) sends `Host` first, then its session's
//! default headers in order: `User-Agent`, `Accept-Encoding: gzip, deflate`, `Accept: */*`,
//! `Connection: keep-alive`. A body-less GET carries no `Content-Length`; methods other
//! than GET and HEAD get `Content-Length: 0` (requests' `prepare_content_length`).

/// The codings this client can decode, as requests announces them.
pub const ACCEPT_ENCODING: &str = "gzip, deflate";

/// `fetchscope/<version>`, the User-Agent fetchscope sends by default.
pub fn default_user_agent() -> String {
    format!("fetchscope/{}", env!("CARGO_PKG_VERSION"))
}

/// A request line and its headers, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequestHead {
    /// The method, upper case (`GET`).
    pub method: String,
    /// The request target: the URL's path (never empty) and `?query`, percent-encoding as in the URL.
    pub target: String,
    /// Header lines in sending order, `(name, value)`.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// `"{method} {target} HTTP/1.1"`.
    pub fn start_line(&self) -> String {
        format!("{} {} HTTP/1.1", self.method, self.target)
    }

    /// The bytes on the wire: start line, header lines and the empty line, all ending in CRLF.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.start_line().into_bytes();
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// The value of the first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Builds the request head exactly as requests sends it for `method` on `url`.
///
/// The `Host` header carries the port only when it is not the scheme's default (the `url`
/// crate already drops default ports), IPv6 literals in brackets. The fragment is never
/// sent. Characters that cannot appear in a method token are removed from `method` (an
/// empty result becomes `GET`), and control characters in `user_agent` become spaces, so
/// the head can never be split into extra lines.
pub fn build_request(method: &str, url: &url::Url, user_agent: &str) -> RequestHead {
    let method = method_token(method);
    let mut headers = vec![
        ("Host".to_owned(), host_header(url)),
        ("User-Agent".to_owned(), without_controls(user_agent)),
        ("Accept-Encoding".to_owned(), ACCEPT_ENCODING.to_owned()),
        ("Accept".to_owned(), "*/*".to_owned()),
        ("Connection".to_owned(), "keep-alive".to_owned()),
    ];
    if method != "GET" && method != "HEAD" {
        headers.push(("Content-Length".to_owned(), "0".to_owned()));
    }
    RequestHead {
        method,
        target: request_target(url),
        headers,
    }
}

/// The origin-form target: path (`/` when empty) plus `?query` when the query is not empty.
fn request_target(url: &url::Url) -> String {
    let mut target = match url.path() {
        "" => "/".to_owned(),
        path => path.to_owned(),
    };
    if let Some(query) = url.query().filter(|q| !q.is_empty()) {
        target.push('?');
        target.push_str(query);
    }
    target
}

/// `host[:port]`, the port only when it differs from the scheme's default.
fn host_header(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// The method upper-cased (as requests does), keeping only RFC 9110 token characters.
fn method_token(method: &str) -> String {
    let token: String = method
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(*c))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if token.is_empty() {
        "GET".to_owned()
    } else {
        token
    }
}

/// `text` with every control character replaced by a space.
fn without_controls(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn target_keeps_percent_encoding_and_drops_fragment() {
        let head = build_request("get", &url("https://h.test/a%20b/c?x=%2F&y#frag"), "ua");
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "/a%20b/c?x=%2F&y");
    }

    #[test]
    fn empty_path_and_empty_query() {
        assert_eq!(
            build_request("GET", &url("https://h.test"), "ua").target,
            "/"
        );
        assert_eq!(
            build_request("GET", &url("https://h.test?"), "ua").target,
            "/"
        );
        assert_eq!(
            build_request("GET", &url("https://h.test?q=1"), "ua").target,
            "/?q=1"
        );
    }

    #[test]
    fn host_port_only_when_not_default() {
        let host = |s: &str| build_request("GET", &url(s), "ua").headers[0].1.clone();
        assert_eq!(host("https://h.test:443/"), "h.test");
        assert_eq!(host("https://h.test:8443/"), "h.test:8443");
        assert_eq!(host("http://h.test:80/"), "h.test");
        assert_eq!(host("http://h.test:443/"), "h.test:443");
        assert_eq!(host("https://[2001:db8::1]/"), "[2001:db8::1]");
        assert_eq!(host("https://[2001:db8::1]:8443/"), "[2001:db8::1]:8443");
        assert_eq!(host("https://BÜCHER.example/"), "xn--bcher-kva.example");
    }

    #[test]
    fn user_agent_cannot_inject_lines() {
        let head = build_request("GET", &url("https://h.test/"), "a\r\nX-Evil: 1");
        assert_eq!(head.header("user-agent"), Some("a  X-Evil: 1"));
        assert!(!head.to_bytes().windows(4).any(|w| w == b"\r\nX-"));
    }

    #[test]
    fn bodyless_post_gets_content_length_zero() {
        let head = build_request("post", &url("https://h.test/"), "ua");
        assert_eq!(head.method, "POST");
        assert_eq!(head.header("Content-Length"), Some("0"));
        assert_eq!(
            build_request("HEAD", &url("https://h.test/"), "ua").header("Content-Length"),
            None
        );
    }
}
