//! The HTTP/1.1 client: request bytes out, response head and decoded body in (sans-IO).
//!
//! It knows nothing about sockets, TLS or time: the fetch machine (and the OS-stack twin)
//! writes [`RequestHead::to_bytes`] to its stream and feeds every received byte to a
//! [`ResponseReader`], which reports [`HttpProgress`] and hands the decoded body to a
//! [`BodySink`]. Behaviour follows Python requests / urllib3 / `http.client`:
//!
//! - the request is byte-for-byte what `requests.get()` (or curl) sends ([`build_request`]);
//! - 1xx responses are skipped (reported as [`HttpProgress::Interim`]), 101 is an error;
//! - framing per RFC 9112 §6.3 ([`Framing`]), chunked bodies with bounded lines and trailers;
//! - `Content-Encoding: gzip`/`x-gzip`/`deflate` (zlib or raw) and stacks of them are
//!   decoded while streaming, never holding the whole body;
//! - redirects resolve and change method as in requests ([`redirect`]);
//! - everything the server controls is bounded by [`Limits`], and bad input is an
//!   [`HttpError`], never a panic.
//!
//! ```
//! use fetchscope_core::http::{build_request, HttpProgress, Leg, Limits, RequestOptions, ResponseReader};
//!
//! let url = url::Url::parse("https://www.example.test/").unwrap();
//! let leg = Leg { url: &url, method: "GET", body: None, auth: true, purged: false, proxy: None };
//! let request = build_request(&RequestOptions::default(), leg);
//! assert_eq!(request.start_line(), "GET / HTTP/1.1");
//!
//! let mut reader = ResponseReader::new("GET", Limits::default());
//! let mut body = Vec::new();
//! let feed = reader
//!     .feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", &mut body)
//!     .unwrap();
//! assert_eq!(feed.progress.last(), Some(&HttpProgress::Complete));
//! assert_eq!(body, b"hello");
//! assert!(reader.keep_alive());
//! ```

mod body;
mod body_worker;
mod chunked;
mod content;
mod error;
mod head;
mod head_parser;
mod intake;
mod redirect;
mod request;
mod request_body;
mod response;
mod secrets;
mod sink;

pub use error::HttpError;
pub use head::{Framing, ResponseHead};
pub use intake::{Intake, feed_response, finish_response};
pub use redirect::{MAX_REDIRECTS, Redirect, redirect};
pub use request::{
    ACCEPT_ENCODING, BodyKind, CURL_VERSION, ClientProfile, Credentials, HeaderEdit, Leg,
    REQUESTS_VERSION, RequestHead, RequestOptions, ViaProxy, build_request, default_user_agent,
    is_token_char, method_token,
};
pub use request_body::{BODY_CHUNK, BodyReadError, BodyReader, RequestBody};
pub use response::{Feed, HttpProgress, Limits, ResponseReader};
pub use secrets::{
    SECRET_HEADERS, is_secret_header, redacted, shown_headers, text_without_password,
};
pub use sink::{BODY_START_LEN, BodySink, DigestSink, Discard, WriteSink};
