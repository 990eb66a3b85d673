//! The lab's routes: a small table from request path to handler, and the HTTP faults,
//! which change the answer to `/` and leave every other path alone.

use std::net::IpAddr;

use super::body::MAX_BODY_LEN;
use super::coding;
use super::echo::{anything, basic_auth};
use super::pattern::MAX_GENERATED_BYTES;
use super::request::Request;
use super::response::{Body, Framing, Response};
use super::urlencoded::query_pairs;
use crate::fault::LabFault;

/// The page served at `/`.
const INDEX_PAGE: &str = include_str!("index.html");
/// The page served at `/` on `cdn.example.test`.
const CDN_PAGE: &str = include_str!("cdn.html");
/// The text behind `/gzip`, `/deflate`, `/deflate-raw`, `/chunked`, `/gzip-chunked` and
/// `/close`: every one of them decodes to exactly these bytes.
const TEXT_PAGE: &str = include_str!("text.txt");

/// The host that serves [`CDN_PAGE`] at `/`.
const CDN_HOST: &str = "cdn.example.test";
/// Where `/to-cdn` leads.
const CDN_URL: &str = "https://cdn.example.test/";
/// The longest chain `/redirect/N` makes.
const MAX_REDIRECT_CHAIN: u32 = 100;
/// Redirects of the `too-many-redirects` chain after the first (`/` → `/hop/30`).
const TOO_MANY_HOPS: u32 = 30;
/// Header fields of the `huge-headers` fault and the length of each value: 80 KiB.
const HUGE_FIELDS: usize = 80;
const HUGE_FIELD_LEN: usize = 1024;
/// The header field the `endless-headers` fault repeats forever.
const ENDLESS_FIELD: &[u8] = b"X-Endless: the head of this response never ends\r\n";
/// The status line of the `bad-status-line` fault: letters O where the digits 0 belong.
const BAD_STATUS_LINE: &str = "HTTP/1.1 2OO OK";
/// Where `/status/N` points for N = 301, 302, 303 and 307 (as httpbin's).
const STATUS_REDIRECT: &str = "/redirect/1";
/// The longest `url` that `/redirect-to` puts in a `Location` field.
const MAX_LOCATION_LEN: usize = 2048;

/// What the routes need besides the request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RouteContext {
    /// The lab's fault, if any.
    pub fault: Option<LabFault>,
    /// The URL scheme the request came over (`https`), for absolute `Location`s.
    pub scheme: &'static str,
    /// The client's address, if known (`origin` in `/anything`).
    pub origin: Option<IpAddr>,
}

/// How a route matches a request path.
#[derive(Debug, Clone, Copy)]
enum PathPattern {
    /// The path is exactly this.
    Exact(&'static str),
    /// The path starts with this; the handler gets the rest.
    Prefix(&'static str),
}

impl PathPattern {
    /// The part of `path` after the pattern, if it matches.
    fn matches<'p>(&self, path: &'p str) -> Option<&'p str> {
        match self {
            PathPattern::Exact(p) => (path == *p).then_some(""),
            PathPattern::Prefix(p) => path.strip_prefix(p),
        }
    }
}

/// A handler gets the request, the part of the path after a prefix pattern, and the
/// context.
type Handler = fn(&Request, &str, &RouteContext) -> Response;

/// One row of the route table.
#[derive(Debug, Clone, Copy)]
struct Route {
    pattern: PathPattern,
    handler: Handler,
    /// True when the route answers every method; otherwise only `GET` and `HEAD`
    /// (others get 405).
    any_method: bool,
}

impl Route {
    /// The same route, answering every method.
    const fn any_method(self) -> Route {
        Route {
            any_method: true,
            ..self
        }
    }
}

/// A `GET`/`HEAD` route for exactly `path`.
const fn exact(path: &'static str, handler: Handler) -> Route {
    Route {
        pattern: PathPattern::Exact(path),
        handler,
        any_method: false,
    }
}

/// A `GET`/`HEAD` route for every path starting with `path`.
const fn prefix(path: &'static str, handler: Handler) -> Route {
    Route {
        pattern: PathPattern::Prefix(path),
        handler,
        any_method: false,
    }
}

/// The route table, tried in order; no match is 404.
const ROUTES: &[Route] = &[
    exact("/", index),
    prefix("/bytes/", bytes),
    exact("/gzip", |_, _, _| text_coded("gzip", coding::gzip)),
    exact("/deflate", |_, _, _| text_coded("deflate", coding::zlib)),
    exact("/deflate-raw", |_, _, _| {
        text_coded("deflate", coding::deflate_raw)
    }),
    exact("/chunked", |_, _, _| {
        text(Body::Bytes(coding::chunked(TEXT_PAGE.as_bytes()))).framed(Framing::Chunked)
    }),
    exact("/gzip-chunked", |_, _, _| {
        let gz = coding::gzip(TEXT_PAGE.as_bytes());
        text(Body::Bytes(coding::chunked(&gz)))
            .header("Content-Encoding", "gzip")
            .framed(Framing::Chunked)
    }),
    exact("/close", |_, _, _| {
        text(Body::Bytes(TEXT_PAGE.as_bytes().to_vec())).framed(Framing::Close)
    }),
    exact("/empty", |_, _, _| text(Body::Bytes(Vec::new()))),
    prefix("/status/", status).any_method(),
    exact("/anything", anything).any_method(),
    prefix("/anything/", anything).any_method(),
    prefix("/basic-auth/", basic_auth),
    prefix("/redirect/", redirect_chain),
    exact("/redirect-to", redirect_to),
    exact("/loop", |_, _, _| redirect(302, "/loop")),
    exact("/to-cdn", |_, _, _| redirect(302, CDN_URL)),
    prefix("/hop/", hop),
];

/// The response to `request`.
pub(crate) fn respond(request: &Request, cx: &RouteContext) -> Response {
    let get_or_head = request.method == "GET" || request.method == "HEAD";
    let Some((route, rest)) = ROUTES.iter().find_map(|route| {
        route
            .pattern
            .matches(&request.path)
            .map(|rest| (route, rest))
    }) else {
        return if get_or_head {
            not_found()
        } else {
            method_not_allowed()
        };
    };
    if !get_or_head && !route.any_method {
        return method_not_allowed();
    }
    if request.path == "/"
        && let Some(r) = cx.fault.and_then(|f| faulty_index(f, request))
    {
        return r;
    }
    (route.handler)(request, rest, cx)
}

/// 405 for a method other than `GET` and `HEAD` on a route that answers only those.
fn method_not_allowed() -> Response {
    html_error(
        405,
        "Method Not Allowed",
        "This path answers only GET and HEAD; /anything and /status/N answer any method.",
    )
    .header("Allow", "GET, HEAD")
}

/// The response for a request that could not be handled at all (400, 413, 431, 501);
/// it closes the connection.
pub(crate) fn respond_error(status: u16) -> Response {
    let mut r = match status {
        413 => html_error(
            413,
            "Content Too Large",
            &format!("The request body is longer than {MAX_BODY_LEN} bytes."),
        ),
        431 => html_error(
            431,
            "Request Header Fields Too Large",
            "The request head is longer than 64 KiB or has too many fields.",
        ),
        501 => html_error(
            501,
            "Not Implemented",
            "The only transfer coding this server reads is chunked.",
        ),
        _ => html_error(400, "Bad Request", "The request is not valid HTTP/1.1."),
    };
    r.close = true;
    r
}

/// The answer to `/` under an HTTP fault (`None`: this fault leaves `/` alone).
fn faulty_index(fault: LabFault, request: &Request) -> Option<Response> {
    let page = || Body::Bytes(INDEX_PAGE.as_bytes().to_vec());
    Some(match fault {
        LabFault::BadStatusLine => {
            let mut r = html(page());
            r.raw_status_line = Some(BAD_STATUS_LINE.to_owned());
            r
        }
        LabFault::HugeHeaders => {
            let mut r = html(page());
            for i in 0..HUGE_FIELDS {
                r = r.header(&format!("X-Filler-{i:02}"), "a".repeat(HUGE_FIELD_LEN));
            }
            r
        }
        LabFault::BadChunk => {
            html(Body::Bytes(coding::bad_chunked(INDEX_PAGE.as_bytes()))).framed(Framing::Chunked)
        }
        LabFault::Truncated => {
            let len = INDEX_PAGE.len() as u64;
            html(page()).framed(Framing::DeclaredLength(2 * len.max(1)))
        }
        LabFault::CorruptGzip => html(Body::Bytes(coding::corrupt_gzip(INDEX_PAGE.as_bytes())))
            .header("Content-Encoding", "gzip"),
        LabFault::RedirectLoop => redirect(302, &request.target),
        LabFault::TooManyRedirects => redirect(302, &format!("/hop/{TOO_MANY_HOPS}")),
        LabFault::EndlessHeaders => html(Body::Endless {
            prefix: b"",
            unit: ENDLESS_FIELD,
        })
        .framed(Framing::OpenHead),
        LabFault::EndlessChunkLine => html(Body::Endless {
            prefix: b"1;ext=",
            unit: b"a",
        })
        .framed(Framing::Chunked),
        LabFault::EndlessBody => html(Body::Endless {
            prefix: b"<!doctype html><title>endless</title>\n",
            unit: b"This body never ends, and the server never closes the connection.\n",
        })
        .framed(Framing::Close),
        _ => return None,
    })
}

fn index(request: &Request, _: &str, _: &RouteContext) -> Response {
    let page = if request.host_name() == CDN_HOST {
        CDN_PAGE
    } else {
        INDEX_PAGE
    };
    html(Body::Bytes(page.as_bytes().to_vec()))
}

/// `/bytes/N`: N generated bytes (see [`crate::fill_generated`]).
fn bytes(_: &Request, rest: &str, _: &RouteContext) -> Response {
    match decimal(rest).filter(|n| *n <= MAX_GENERATED_BYTES) {
        Some(len) => Response::new(
            200,
            "OK",
            "application/octet-stream",
            Body::Generated { len },
        ),
        None => html_error(
            400,
            "Bad Request",
            "Use /bytes/N with N a decimal number of bytes, at most 1073741824.",
        ),
    }
}

/// The text page with a content coding.
fn text_coded(coding: &str, encode: fn(&[u8]) -> Vec<u8>) -> Response {
    text(Body::Bytes(encode(TEXT_PAGE.as_bytes()))).header("Content-Encoding", coding)
}

/// `/status/N` (any method): status N (100–599) with a short body; no body for 204 and
/// 304, an empty one for 205; a 1xx is sent as an interim response before a 200; 301,
/// 302, 303 and 307 carry `Location: /redirect/1`, as httpbin's do.
fn status(_: &Request, rest: &str, _: &RouteContext) -> Response {
    let Some(code) = decimal(rest)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| (100..=599).contains(n))
    else {
        return html_error(
            400,
            "Bad Request",
            "Use /status/N with N a status code from 100 to 599.",
        );
    };
    let reason = reason_phrase(code);
    if code < 200 {
        let mut r = text(Body::Bytes(
            format!("200 OK, after an interim {code} {reason} response\n").into_bytes(),
        ));
        r.interim.push((code, reason));
        return r;
    }
    match code {
        204 | 304 => {
            let mut r = Response::new(code, reason, "text/plain", Body::Bytes(Vec::new()))
                .framed(Framing::NoBody);
            r.content_type = None;
            r
        }
        205 => Response::new(code, reason, "text/plain", Body::Bytes(Vec::new())),
        301 | 302 | 303 | 307 => Response::new(
            code,
            reason,
            "text/plain; charset=utf-8",
            Body::Bytes(format!("{code} {reason}\n").into_bytes()),
        )
        .header("Location", STATUS_REDIRECT),
        _ => Response::new(
            code,
            reason,
            "text/plain; charset=utf-8",
            Body::Bytes(format!("{code} {reason}\n").into_bytes()),
        ),
    }
}

/// `/redirect/N`: N redirects (302) ending at `/`, the `Location` alternately relative
/// (odd N) and absolute (even N).
fn redirect_chain(request: &Request, rest: &str, cx: &RouteContext) -> Response {
    let Some(n) = decimal(rest)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| (1..=MAX_REDIRECT_CHAIN).contains(n))
    else {
        return html_error(
            400,
            "Bad Request",
            "Use /redirect/N with N from 1 to 100: N redirects, then /.",
        );
    };
    let next = if n == 1 {
        "/".to_owned()
    } else {
        format!("/redirect/{}", n - 1)
    };
    redirect(302, &alternate(request, cx, n, &next))
}

/// `/hop/N` (only with the `too-many-redirects` fault): a redirect to `/hop/N-1`, and
/// `/hop/0` is the page at the end of the chain.
fn hop(request: &Request, rest: &str, cx: &RouteContext) -> Response {
    if cx.fault != Some(LabFault::TooManyRedirects) {
        return not_found();
    }
    match decimal(rest).and_then(|n| u32::try_from(n).ok()) {
        Some(0) => text(Body::Bytes(
            format!(
                "The end of a chain of {} redirects: one more than requests follows.\n",
                TOO_MANY_HOPS + 1
            )
            .into_bytes(),
        )),
        Some(n) if n <= TOO_MANY_HOPS => {
            redirect(302, &alternate(request, cx, n, &format!("/hop/{}", n - 1)))
        }
        _ => not_found(),
    }
}

/// `path` as a relative `Location` for odd `n`, as an absolute URL on the request's
/// host for even `n`.
fn alternate(request: &Request, cx: &RouteContext, n: u32, path: &str) -> String {
    if n.is_multiple_of(2) {
        format!("{}://{}{path}", cx.scheme, request.host())
    } else {
        path.to_owned()
    }
}

/// `/redirect-to?url=U&status=S`: a redirect to U (percent-decoded) with status S (301,
/// 302, 303, 307 or 308; 302 when absent).
fn redirect_to(request: &Request, _: &str, _: &RouteContext) -> Response {
    let mut url = None;
    let mut code = 302;
    for (key, value) in query_pairs(request.query()) {
        match key.as_str() {
            "url" => url = Some(value),
            "status" => match value.parse::<u16>() {
                Ok(c @ (301 | 302 | 303 | 307 | 308)) => code = c,
                _ => {
                    return html_error(
                        400,
                        "Bad Request",
                        "status must be 301, 302, 303, 307 or 308.",
                    );
                }
            },
            _ => {}
        }
    }
    match url {
        Some(u)
            if !u.is_empty()
                && u.len() <= MAX_LOCATION_LEN
                && !u.chars().any(|c| c.is_control()) =>
        {
            redirect(code, &u)
        }
        _ => html_error(
            400,
            "Bad Request",
            "Use /redirect-to?url=URL&amp;status=30x with a percent-encoded URL without control characters.",
        ),
    }
}

/// A redirect to `location` with a short HTML body, as servers send.
fn redirect(code: u16, location: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html>\n<html><head><title>{code} {reason}</title></head>\n<body><p>Moved to <a href=\"{href}\">{href}</a>.</p></body></html>\n",
        reason = reason_phrase(code),
        href = html_escape(location)
    );
    Response::new(
        code,
        reason_phrase(code),
        "text/html; charset=utf-8",
        Body::Bytes(body.into_bytes()),
    )
    .header("Location", location)
}

/// 404 with a short page.
pub(super) fn not_found() -> Response {
    html_error(
        404,
        "Not Found",
        "Nothing here: see / for the list of what the lab serves.",
    )
}

/// A 200 HTML page.
fn html(body: Body) -> Response {
    Response::new(200, "OK", "text/html; charset=utf-8", body)
}

/// A 200 text page.
fn text(body: Body) -> Response {
    Response::new(200, "OK", "text/plain; charset=utf-8", body)
}

/// A short HTML page for an error status.
pub(crate) fn html_error(status: u16, reason: &'static str, message: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\n<body><h1>{status} {reason}</h1>\n<p>{message}</p>\n<hr><p>fetchscope lab</p></body></html>\n"
    );
    Response::new(
        status,
        reason,
        "text/html; charset=utf-8",
        Body::Bytes(page.into_bytes()),
    )
}

/// A plain decimal number (digits only, at most 20 of them).
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `s` with `&`, `<`, `>` and `"` escaped for HTML.
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The standard reason phrase of `code` (RFC 9110 and friends), or "Unknown".
fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        511 => "Network Authentication Required",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Incoming, RequestReader};

    const LAB: RouteContext = RouteContext {
        fault: None,
        scheme: "https",
        origin: None,
    };

    /// The answer to the whole request `wire` (head and body).
    fn ask(wire: &[u8], cx: &RouteContext) -> Response {
        let mut reader = RequestReader::default();
        reader.push(wire);
        match reader.next() {
            Incoming::Request(request) => respond(&request, cx),
            other => panic!("{other:?}"),
        }
    }

    fn get_with(line: &str, host: &str, cx: &RouteContext) -> Response {
        ask(format!("{line}\r\nHost: {host}\r\n\r\n").as_bytes(), cx)
    }

    fn get(line: &str) -> Response {
        get_with(line, "www.example.test", &LAB)
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.extra_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn endless_faults_never_end() {
        let cx = |f| RouteContext {
            fault: Some(f),
            ..LAB
        };
        for fault in [
            LabFault::EndlessHeaders,
            LabFault::EndlessChunkLine,
            LabFault::EndlessBody,
        ] {
            let r = get_with("GET / HTTP/1.1", "www.example.test", &cx(fault));
            assert!(matches!(r.body, Body::Endless { .. }), "{fault}");
            assert_eq!(r.body.len(), u64::MAX, "{fault}");
            // Without a length, the end of the body would be the server's close.
            assert!(r.close || r.framing == Framing::Chunked, "{fault}");
        }
        let r = get_with(
            "GET / HTTP/1.1",
            "www.example.test",
            &cx(LabFault::EndlessHeaders),
        );
        assert_eq!(r.framing, Framing::OpenHead);
        // Other paths are served as usual.
        let r = get_with(
            "GET /gzip HTTP/1.1",
            "www.example.test",
            &cx(LabFault::EndlessBody),
        );
        assert!(matches!(r.body, Body::Bytes(_)));
    }

    fn body(r: &Response) -> &[u8] {
        match &r.body {
            Body::Bytes(b) => b,
            Body::Generated { .. } => panic!("generated body"),
            Body::Endless { .. } => panic!("endless body"),
        }
    }

    #[test]
    fn index_is_a_page_about_the_lab_and_cdn_has_its_own() {
        let r = get("GET / HTTP/1.1");
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, Some("text/html; charset=utf-8"));
        assert!((1000..=6000).contains(&r.body.len()));
        assert!(String::from_utf8_lossy(body(&r)).contains("fetchscope lab"));
        assert_eq!(get("HEAD /?q=1 HTTP/1.1").status, 200);
        let cdn = get_with("GET / HTTP/1.1", "CDN.example.test:443", &LAB);
        assert_eq!(body(&cdn), CDN_PAGE.as_bytes());
        let alias = get_with("GET / HTTP/1.1", "alias.example.test", &LAB);
        assert_eq!(body(&alias), INDEX_PAGE.as_bytes());
    }

    #[test]
    fn bytes_route_limits() {
        assert_eq!(
            get("GET /bytes/0 HTTP/1.1").body,
            Body::Generated { len: 0 }
        );
        assert_eq!(
            get("GET /bytes/1073741824 HTTP/1.1").body,
            Body::Generated { len: 1 << 30 }
        );
        for bad in [
            "/bytes/1073741825",
            "/bytes/",
            "/bytes/-1",
            "/bytes/1e3",
            "/bytes/99999999999999999999999",
        ] {
            assert_eq!(get(&format!("GET {bad} HTTP/1.1")).status, 400, "{bad}");
        }
    }

    #[test]
    fn not_found_and_method_not_allowed() {
        let r = get("GET /nope HTTP/1.1");
        assert_eq!(r.status, 404);
        assert!(r.body.len() < 400);
        let r = get("DELETE / HTTP/1.1");
        assert_eq!(r.status, 405);
        assert_eq!(header(&r, "allow"), Some("GET, HEAD"));
        assert!(respond_error(431).close);
        assert_eq!(respond_error(400).status, 400);
        // /hop/N exists only with the too-many-redirects fault
        assert_eq!(get("GET /hop/3 HTTP/1.1").status, 404);
    }

    #[test]
    fn coded_routes_carry_the_text_page() {
        let text = TEXT_PAGE.as_bytes();
        let r = get("GET /gzip HTTP/1.1");
        assert_eq!(header(&r, "content-encoding"), Some("gzip"));
        assert_eq!(body(&r), coding::gzip(text));
        assert_eq!(r.framing, Framing::Length);
        let r = get("GET /deflate HTTP/1.1");
        assert_eq!(body(&r), coding::zlib(text));
        assert_eq!(header(&r, "content-encoding"), Some("deflate"));
        let r = get("GET /deflate-raw HTTP/1.1");
        assert_eq!(body(&r), coding::deflate_raw(text));
        assert_eq!(header(&r, "content-encoding"), Some("deflate"));
        let r = get("GET /chunked HTTP/1.1");
        assert_eq!(
            (r.framing, body(&r)),
            (Framing::Chunked, &coding::chunked(text)[..])
        );
        assert_eq!(header(&r, "content-encoding"), None);
        let r = get("GET /gzip-chunked HTTP/1.1");
        assert_eq!(body(&r), coding::chunked(&coding::gzip(text)));
        assert_eq!(header(&r, "content-encoding"), Some("gzip"));
        let r = get("GET /close HTTP/1.1");
        assert_eq!((r.framing, r.close, body(&r)), (Framing::Close, true, text));
        let r = get("GET /empty HTTP/1.1");
        assert_eq!(
            (r.status, r.body.len(), r.framing),
            (200, 0, Framing::Length)
        );
    }

    #[test]
    fn status_route() {
        let r = get("GET /status/418 HTTP/1.1");
        assert_eq!((r.status, r.reason), (418, "I'm a teapot"));
        assert_eq!(body(&r), b"418 I'm a teapot\n");
        for code in [204, 304] {
            let r = get(&format!("GET /status/{code} HTTP/1.1"));
            assert_eq!((r.status, r.framing), (code, Framing::NoBody));
            assert_eq!(r.content_type, None);
        }
        let r = get("GET /status/103 HTTP/1.1");
        assert_eq!(
            (r.status, r.interim.clone()),
            (200, vec![(103, "Early Hints")])
        );
        assert_eq!(get("GET /status/599 HTTP/1.1").reason, "Unknown");
        for bad in ["99", "600", "", "2x0", "000200000000000000000000"] {
            assert_eq!(get(&format!("GET /status/{bad} HTTP/1.1")).status, 400);
        }
    }

    /// The answer to `method target` with `fields` and `body` (a `Content-Length` is added).
    fn send(method: &str, target: &str, fields: &str, body: &[u8]) -> Response {
        let mut wire = format!(
            "{method} {target} HTTP/1.1\r\nHost: www.example.test\r\n{fields}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        wire.extend_from_slice(body);
        let cx = RouteContext {
            origin: Some(IpAddr::from([10, 88, 1, 2])),
            ..LAB
        };
        ask(&wire, &cx)
    }

    fn json_of(r: &Response) -> serde_json::Value {
        assert_eq!(r.content_type, Some("application/json"));
        serde_json::from_slice(body(r)).expect("JSON")
    }

    #[test]
    fn anything_echoes_a_json_post() {
        let r = send(
            "POST",
            "/anything?x=1&y=a+b",
            "Content-Type: application/json\r\nX-Custom-HEADER: v\r\n",
            br#"{"a": [1, 2], "b": null}"#,
        );
        assert_eq!(r.status, 200);
        let echo = json_of(&r);
        assert_eq!(
            echo,
            serde_json::json!({
                "args": {"x": "1", "y": "a b"},
                "data": r#"{"a": [1, 2], "b": null}"#,
                "files": {},
                "form": {},
                "headers": {
                    "Host": "www.example.test",
                    "Content-Type": "application/json",
                    "X-Custom-Header": "v",
                    "Content-Length": "24",
                },
                "json": {"a": [1, 2], "b": null},
                "method": "POST",
                "origin": "10.88.1.2",
                "url": "https://www.example.test/anything?x=1&y=a+b",
            })
        );
        assert!(body(&r).ends_with(b"}\n"));
    }

    #[test]
    fn anything_parses_form_bodies() {
        let r = send(
            "POST",
            "/anything",
            "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n",
            b"name=Ada+Lovelace&lang=en&lang=fr&note=%E2%86%92",
        );
        let echo = json_of(&r);
        assert_eq!(
            echo["form"],
            serde_json::json!({"name": "Ada Lovelace", "lang": ["en", "fr"], "note": "→"})
        );
        assert_eq!(
            (echo["data"].as_str(), &echo["json"]),
            (Some(""), &serde_json::Value::Null)
        );
    }

    #[test]
    fn anything_shows_binary_bodies_as_base64_and_takes_any_method() {
        let r = send(
            "PATCH",
            "/anything/deep/path",
            "",
            &[0x00, 0xff, 0xfe, b'a'],
        );
        let echo = json_of(&r);
        assert_eq!(
            echo["data"],
            "data:application/octet-stream;base64,AP/+YQ=="
        );
        assert_eq!(echo["json"], serde_json::Value::Null);
        assert_eq!(echo["method"], "PATCH");
        assert_eq!(echo["url"], "https://www.example.test/anything/deep/path");
        for method in ["GET", "PUT", "DELETE", "OPTIONS", "PURGE"] {
            let r = send(method, "/anything", "", b"");
            assert_eq!(
                (r.status, json_of(&r)["method"].as_str()),
                (200, Some(method))
            );
        }
        // HEAD gets the GET-shaped answer; the connection leaves its body out
        let r = get("HEAD /anything HTTP/1.1");
        assert_eq!(json_of(&r)["method"], "HEAD");
        assert!(r.body.len() > 100);
        // not /anythingelse
        assert_eq!(get("GET /anythingelse HTTP/1.1").status, 404);
    }

    #[test]
    fn basic_auth_checks_the_credentials() {
        // "user:pass wörd" in base64
        let ok = get_with(
            "GET /basic-auth/user/pass%20w%C3%B6rd HTTP/1.1\r\nAuthorization: Basic dXNlcjpwYXNzIHfDtnJk",
            "www.example.test",
            &LAB,
        );
        assert_eq!(ok.status, 200);
        assert_eq!(
            json_of(&ok),
            serde_json::json!({"authenticated": true, "user": "user"})
        );
        for auth in [
            "\r\nAuthorization: Basic dXNlcjp3cm9uZw==",
            "\r\nAuthorization: Bearer dXNlcjpwYXNzIHfDtnJk",
            "\r\nAuthorization: Basic !!!",
            "",
        ] {
            let r = get_with(
                &format!("GET /basic-auth/user/pass%20w%C3%B6rd HTTP/1.1{auth}"),
                "www.example.test",
                &LAB,
            );
            assert_eq!(r.status, 401, "{auth}");
            assert_eq!(
                header(&r, "www-authenticate"),
                Some("Basic realm=\"Fake Realm\"")
            );
            assert_eq!((r.body.len(), r.content_type), (0, None));
        }
        assert_eq!(get("GET /basic-auth/user HTTP/1.1").status, 404);
        assert_eq!(get("GET /basic-auth/user/a/b HTTP/1.1").status, 404);
        assert_eq!(send("POST", "/basic-auth/u/p", "", b"").status, 405);
    }

    #[test]
    fn status_takes_any_method_and_3xx_point_to_a_redirect() {
        let r = send("POST", "/status/418", "", b"tea");
        assert_eq!((r.status, r.reason), (418, "I'm a teapot"));
        assert_eq!(body(&r), b"418 I'm a teapot\n");
        assert_eq!(send("DELETE", "/status/500", "", b"").status, 500);
        for code in [301, 302, 303, 307] {
            let r = get(&format!("GET /status/{code} HTTP/1.1"));
            assert_eq!(
                (r.status, header(&r, "location")),
                (code, Some("/redirect/1"))
            );
        }
        assert_eq!(header(&get("GET /status/308 HTTP/1.1"), "location"), None);
        assert_eq!(send("PUT", "/status/600", "", b"").status, 400);
    }

    #[test]
    fn other_routes_still_refuse_other_methods_after_reading_the_body() {
        for (method, path) in [("POST", "/"), ("PUT", "/bytes/10"), ("POST", "/nope")] {
            let r = send(method, path, "", b"some body");
            assert_eq!(
                (r.status, header(&r, "allow")),
                (405, Some("GET, HEAD")),
                "{method} {path}"
            );
            assert!(!r.close);
        }
        assert_eq!(respond_error(413).status, 413);
        assert!(respond_error(501).close);
    }

    #[test]
    fn redirect_chains_alternate_relative_and_absolute() {
        let loc = |line: &str| header(&get(line), "location").map(str::to_owned);
        assert_eq!(
            loc("GET /redirect/3 HTTP/1.1").as_deref(),
            Some("/redirect/2")
        );
        assert_eq!(
            loc("GET /redirect/2 HTTP/1.1").as_deref(),
            Some("https://www.example.test/redirect/1")
        );
        assert_eq!(loc("GET /redirect/1 HTTP/1.1").as_deref(), Some("/"));
        assert_eq!(get("GET /redirect/1 HTTP/1.1").status, 302);
        assert_eq!(get("GET /redirect/0 HTTP/1.1").status, 400);
        assert_eq!(get("GET /redirect/101 HTTP/1.1").status, 400);
        let r = get_with("GET /redirect/2 HTTP/1.1", "alias.example.test", &LAB);
        assert_eq!(
            header(&r, "location"),
            Some("https://alias.example.test/redirect/1")
        );
        assert_eq!(loc("GET /loop HTTP/1.1").as_deref(), Some("/loop"));
        assert_eq!(loc("GET /to-cdn HTTP/1.1").as_deref(), Some(CDN_URL));
    }

    #[test]
    fn redirect_to_decodes_and_checks() {
        let r = get(
            "GET /redirect-to?url=https%3A%2F%2Fcdn.example.test%2Fx%3Fa%3D1&status=307 HTTP/1.1",
        );
        assert_eq!(r.status, 307);
        assert_eq!(
            header(&r, "location"),
            Some("https://cdn.example.test/x?a=1")
        );
        let r = get("GET /redirect-to?url=/bytes/5 HTTP/1.1");
        assert_eq!((r.status, header(&r, "location")), (302, Some("/bytes/5")));
        for bad in [
            "/redirect-to",
            "/redirect-to?url=",
            "/redirect-to?url=/x&status=200",
            "/redirect-to?url=/x%0d%0aSet-Cookie:%20a=b",
        ] {
            assert_eq!(get(&format!("GET {bad} HTTP/1.1")).status, 400, "{bad}");
        }
    }

    #[test]
    fn http_faults_change_only_the_index() {
        let cx = |f| RouteContext {
            fault: Some(f),
            ..LAB
        };
        let r = get_with(
            "GET / HTTP/1.1",
            "www.example.test",
            &cx(LabFault::BadStatusLine),
        );
        assert_eq!(r.raw_status_line.as_deref(), Some(BAD_STATUS_LINE));
        let r = get_with(
            "GET / HTTP/1.1",
            "www.example.test",
            &cx(LabFault::HugeHeaders),
        );
        let size: usize = r
            .extra_headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum();
        assert!(size > 64 * 1024 && r.extra_headers.len() < 100, "{size}");
        let r = get_with(
            "GET / HTTP/1.1",
            "www.example.test",
            &cx(LabFault::Truncated),
        );
        assert_eq!(
            r.framing,
            Framing::DeclaredLength(2 * INDEX_PAGE.len() as u64)
        );
        assert!(r.close);
        let r = get_with(
            "GET / HTTP/1.1",
            "www.example.test",
            &cx(LabFault::RedirectLoop),
        );
        assert_eq!(header(&r, "location"), Some("/"));
        let r = get_with(
            "GET /?x=1 HTTP/1.1",
            "www.example.test",
            &cx(LabFault::RedirectLoop),
        );
        assert_eq!(header(&r, "location"), Some("/?x=1"));
        // other paths, and faults of other layers, leave things alone
        let r = get_with(
            "GET /gzip HTTP/1.1",
            "www.example.test",
            &cx(LabFault::CorruptGzip),
        );
        assert_eq!(body(&r), coding::gzip(TEXT_PAGE.as_bytes()));
        let r = get_with("GET / HTTP/1.1", "www.example.test", &cx(LabFault::Slow));
        assert_eq!(body(&r), INDEX_PAGE.as_bytes());
    }

    #[test]
    fn too_many_redirects_is_31_hops_to_a_page() {
        let cx = RouteContext {
            fault: Some(LabFault::TooManyRedirects),
            ..LAB
        };
        let mut path = "/".to_owned();
        let mut redirects = 0;
        loop {
            let r = get_with(&format!("GET {path} HTTP/1.1"), "www.example.test", &cx);
            match header(&r, "location") {
                Some(loc) => {
                    redirects += 1;
                    path = loc
                        .trim_start_matches("https://www.example.test")
                        .to_owned();
                }
                None => {
                    assert_eq!(r.status, 200);
                    break;
                }
            }
            assert!(redirects < 100);
        }
        assert_eq!(redirects, 31);
    }
}
