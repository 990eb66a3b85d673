//! The request head, byte for byte as the client it imitates sends it.
//!
//! [`RequestOptions`] is what the user asked for (method, headers, body, credentials,
//! the client to imitate); [`build_request`] turns it into a [`RequestHead`] for one URL.
//!
//! Python requests (through urllib3 and `http.client`), which fetchscope imitates by
//! default, sends `Host` first, then its session's default headers in order:
//! `User-Agent`, `Accept-Encoding: gzip, deflate`, `Accept: */*`, `Connection:
//! keep-alive`; the user's own headers replace a default in its place or follow the
//! defaults; then `Content-Length` (`0` for a body-less method other than GET and HEAD,
//! as `prepare_content_length` does), the body's `Content-Type` and `Authorization`.
//! curl sends `Host`, `Authorization`, `User-Agent`, `Accept: */*` (for `--json`:
//! `Content-Type: application/json` and `Accept: application/json`), the user's headers,
//! then `Content-Length` and `Content-Type`.

use std::sync::Arc;

use base64::Engine as _;

use super::request_body::RequestBody;

/// The codings this client can decode, as requests announces them.
pub const ACCEPT_ENCODING: &str = "gzip, deflate";

/// The requests release whose request head `--as requests` sends.
pub const REQUESTS_VERSION: &str = "2.34.2";

/// The curl release whose request head `--as curl` sends.
pub const CURL_VERSION: &str = "7.88.1";

/// `fetchscope/<version>`, the User-Agent fetchscope sends by default.
pub fn default_user_agent() -> String {
    format!("fetchscope/{}", env!("CARGO_PKG_VERSION"))
}

/// Which client's request head to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientProfile {
    /// requests' head with fetchscope's own `User-Agent` (the default).
    #[default]
    Fetchscope,
    /// `requests.get()` exactly, `User-Agent: python-requests/…` included.
    Requests,
    /// curl's head: `Host`, `User-Agent: curl/…`, `Accept: */*`.
    Curl,
}

impl ClientProfile {
    /// The `User-Agent` this client sends.
    pub fn user_agent(self) -> String {
        match self {
            ClientProfile::Fetchscope => default_user_agent(),
            ClientProfile::Requests => format!("python-requests/{REQUESTS_VERSION}"),
            ClientProfile::Curl => format!("curl/{CURL_VERSION}"),
        }
    }
}

/// What the body is, for the `Content-Type` the client adds when the user gave none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `-d`/`--data-binary`: curl says `application/x-www-form-urlencoded`; requests,
    /// given bytes, says nothing.
    Data,
    /// `--json`: `application/json` (curl also asks for `Accept: application/json`).
    Json,
}

/// One `-H` edit of the request head (its `Debug` hides secret values).
#[derive(Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    /// `Name: value`: replaces the default header of that name, or is added.
    Set(String, String),
    /// `Name:`: the default header of that name is not sent.
    Remove(String),
}

impl std::fmt::Debug for HeaderEdit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderEdit::Set(n, v) if super::is_secret_header(n) => {
                write!(f, "Set({n:?}, {:?})", super::redacted(v))
            }
            HeaderEdit::Set(n, v) => write!(f, "Set({n:?}, {v:?})"),
            HeaderEdit::Remove(n) => write!(f, "Remove({n:?})"),
        }
    }
}

/// User name and password for HTTP Basic authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// `Basic base64(user:password)`.
    pub fn basic(&self) -> String {
        format!("Basic {}", self.token())
    }

    /// The base64 token of [`Credentials::basic`]: `base64(user:password)`.
    pub fn token(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.user, self.password))
    }

    /// The credentials in `url` (`https://user:secret@host/`), percent-decoded as requests
    /// does, moved out of it; `Ok(None)` when it has none.
    pub fn take_from_url(url: &mut url::Url) -> Result<Option<Credentials>, std::str::Utf8Error> {
        if url.username().is_empty() && url.password().is_none() {
            return Ok(None);
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
        };
        let creds = Credentials {
            user: decode(url.username())?,
            password: decode(url.password().unwrap_or_default())?,
        };
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Ok(Some(creds))
    }
}

/// The request the user asked for, before it meets a URL.
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    /// `-X`: the method (`None`: GET, or POST with a body).
    pub method: Option<String>,
    /// The client whose head to send (`--as`).
    pub profile: ClientProfile,
    /// The proxies and the hosts that bypass them.
    pub proxies: crate::proxy::ProxySettings,
    /// `-A`: the `User-Agent` (`None`: the profile's).
    pub user_agent: Option<String>,
    /// `-H` edits, in order.
    pub headers: Vec<HeaderEdit>,
    /// The body and what kind it is (`-d`, `--data-binary`, `--json`).
    pub body: Option<(Arc<RequestBody>, BodyKind)>,
    /// `-u`, or the credentials in the URL.
    pub credentials: Option<Credentials>,
    /// `--max-redirs` (`None`: requests' 30).
    pub max_redirects: Option<usize>,
    /// `--show-secrets`: show credentials, tokens and cookies in the outputs.
    pub show_secrets: bool,
}

impl RequestOptions {
    /// The method of the first request: `-X`, else POST with a body, else GET.
    pub fn method(&self) -> String {
        match &self.method {
            Some(m) => method_token(m),
            None if self.body.is_some() => "POST".to_owned(),
            None => "GET".to_owned(),
        }
    }

    /// The most redirects followed.
    pub fn redirect_limit(&self) -> usize {
        self.max_redirects.unwrap_or(super::MAX_REDIRECTS)
    }

    /// The secrets this request sends — the password, the Basic credentials, the values
    /// of secret headers given with `-H` (and a token after its scheme) — for outputs
    /// that show what a server sent back (an echo of the request) to redact.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out = Vec::new();
        let proxies = [&self.proxies.https, &self.proxies.http];
        let proxy_credentials = proxies
            .into_iter()
            .flatten()
            .filter_map(|p| p.credentials.as_ref());
        for c in self.credentials.iter().chain(proxy_credentials) {
            out.push(c.password.clone());
            out.push(c.token());
        }
        for edit in &self.headers {
            if let HeaderEdit::Set(name, value) = edit
                && super::is_secret_header(name)
            {
                out.push(value.clone());
                if let Some((_, token)) = value.split_once(' ') {
                    out.push(token.trim().to_owned());
                }
            }
        }
        // Short values would redact ordinary text; the longest go first.
        out.retain(|v| v.len() >= 4);
        out.sort_by_key(|v| std::cmp::Reverse(v.len()));
        out.dedup();
        out
    }
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

/// One request of a fetch: what [`build_request`] needs besides the options.
#[derive(Debug, Clone)]
pub struct Leg<'a> {
    /// The URL asked for.
    pub url: &'a url::Url,
    /// This request's method (a redirect may have changed it).
    pub method: &'a str,
    /// The body's length and kind, when this request carries one.
    pub body: Option<(u64, BodyKind)>,
    /// Whether credentials may be sent: `-u`/URL credentials and the user's `Authorization`
    /// and `Cookie` headers (requests and curl drop them on a redirect to another host).
    pub auth: bool,
    /// A redirect other than 307/308 led here: no `Content-Length`, `Content-Type` or
    /// `Transfer-Encoding`, as requests purges them.
    pub purged: bool,
    /// An `http://` request sent to a proxy: absolute-form target, and the proxy's
    /// credentials.
    pub proxy: Option<ViaProxy>,
}

/// How an `http://` request goes to a proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViaProxy {
    /// `Proxy-Authorization` (Basic), when the proxy URL has credentials.
    pub authorization: Option<String>,
}

/// Builds the request head for `leg` as `options.profile`'s client sends it.
///
/// The `Host` header carries the port only when it is not the scheme's default (the `url`
/// crate already drops default ports), IPv6 literals in brackets. The fragment is never
/// sent. Characters that cannot appear in a method token are removed from the method (an
/// empty result becomes `GET`), and control characters in header values become spaces, so
/// the head can never be split into extra lines.
pub fn build_request(options: &RequestOptions, leg: Leg<'_>) -> RequestHead {
    let method = method_token(leg.method);
    let ua = options
        .user_agent
        .clone()
        .unwrap_or_else(|| options.profile.user_agent());
    let auth = leg
        .auth
        .then(|| options.credentials.as_ref().map(Credentials::basic))
        .flatten();
    let mut headers: Vec<(String, String)> = vec![("Host".to_owned(), host_header(leg.url))];
    let curl = options.profile == ClientProfile::Curl;
    if curl {
        if let Some(auth) = &auth {
            headers.push(("Authorization".to_owned(), auth.clone()));
        }
        headers.push(("User-Agent".to_owned(), ua));
        // curl's --json adds its two headers as custom ones, before the user's.
        if let Some((_, BodyKind::Json)) = leg.body {
            headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
            headers.push(("Accept".to_owned(), "application/json".to_owned()));
        } else {
            headers.push(("Accept".to_owned(), "*/*".to_owned()));
        }
    } else {
        headers.push(("User-Agent".to_owned(), ua));
        headers.push(("Accept-Encoding".to_owned(), ACCEPT_ENCODING.to_owned()));
        headers.push(("Accept".to_owned(), "*/*".to_owned()));
        headers.push(("Connection".to_owned(), "keep-alive".to_owned()));
    }
    let edits: Vec<HeaderEdit> = options
        .headers
        .iter()
        .filter(|e| {
            let name = match e {
                HeaderEdit::Set(n, _) | HeaderEdit::Remove(n) => n.as_str(),
            };
            let credential = ["authorization", "cookie"]
                .iter()
                .any(|c| c.eq_ignore_ascii_case(name));
            let body_header = ["content-length", "content-type", "transfer-encoding"]
                .iter()
                .any(|c| c.eq_ignore_ascii_case(name));
            let withheld = credential && !leg.auth;
            let purged = body_header && leg.purged;
            !(withheld || purged)
        })
        .cloned()
        .collect();
    apply_edits(&mut headers, &edits);
    let has = |headers: &[(String, String)], name: &str| {
        headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) || removed(&options.headers, name)
    };
    let content_length = match leg.body {
        Some((len, _)) => Some(len.to_string()),
        None if !curl && !leg.purged && method != "GET" && method != "HEAD" => Some("0".to_owned()),
        None => None,
    };
    if let Some(len) = content_length
        && !has(&headers, "Content-Length")
    {
        headers.push(("Content-Length".to_owned(), len));
    }
    if let Some((_, kind)) = leg.body {
        let content_type = match (kind, options.profile) {
            (BodyKind::Json, _) => Some("application/json"),
            (BodyKind::Data, ClientProfile::Requests) => None,
            (BodyKind::Data, _) => Some("application/x-www-form-urlencoded"),
        };
        if let Some(ct) = content_type
            && !has(&headers, "Content-Type")
        {
            headers.push(("Content-Type".to_owned(), ct.to_owned()));
        }
    }
    if !curl
        && let Some(auth) = auth
        && !has(&headers, "Authorization")
    {
        headers.push(("Authorization".to_owned(), auth));
    }
    if let Some(ViaProxy {
        authorization: Some(a),
    }) = &leg.proxy
    {
        headers.push(("Proxy-Authorization".to_owned(), a.clone()));
    }
    for (_, value) in headers.iter_mut() {
        *value = without_controls(value);
    }
    let target = match leg.proxy {
        Some(_) => absolute_target(leg.url),
        None => request_target(leg.url),
    };
    RequestHead {
        method,
        target,
        headers,
    }
}

/// Applies the `-H` edits: a name already present is replaced in place (or removed), a
/// new one is appended.
fn apply_edits(headers: &mut Vec<(String, String)>, edits: &[HeaderEdit]) {
    for edit in edits {
        match edit {
            HeaderEdit::Set(name, value) => {
                match headers
                    .iter_mut()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                {
                    Some(slot) => *slot = (name.clone(), value.clone()),
                    None => headers.push((name.clone(), value.clone())),
                }
            }
            HeaderEdit::Remove(name) => headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name)),
        }
    }
}

/// Whether the user removed the header `name` (`-H 'Name:'`).
fn removed(edits: &[HeaderEdit], name: &str) -> bool {
    edits
        .iter()
        .any(|e| matches!(e, HeaderEdit::Remove(n) if n.eq_ignore_ascii_case(name)))
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

/// The absolute-form target for a proxy: the URL without fragment and credentials.
fn absolute_target(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_fragment(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    if u.query() == Some("") {
        u.set_query(None);
    }
    u.to_string()
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
pub fn method_token(method: &str) -> String {
    let token: String = method
        .chars()
        .filter(|c| is_token_char(*c))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if token.is_empty() {
        "GET".to_owned()
    } else {
        token
    }
}

/// Whether `c` may appear in an RFC 9110 token (a method or a header name).
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// `text` with every control character replaced by a space.
fn without_controls(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests;
