//! The request bytes, compared with what Python requests puts on the wire.

use fetchscope_core::http::{Leg, RequestHead, RequestOptions, build_request, default_user_agent};

/// The head of a body-less `method` request of `url` with `User-Agent: ua`.
fn build(method: &str, url: &url::Url, ua: &str) -> RequestHead {
    let options = RequestOptions {
        user_agent: Some(ua.to_owned()),
        ..RequestOptions::default()
    };
    build_request(
        &options,
        Leg {
            url,
            method,
            body: None,
            auth: true,
            purged: false,
            proxy: None,
        },
    )
}

fn url(s: &str) -> url::Url {
    url::Url::parse(s).expect("a valid test URL")
}

/// requests 2.34.2 `requests.get("http://h/path")`, as decoded by tshark (notes §5.1).
const REQUESTS_GET: &str = "GET /path HTTP/1.1\r\nHost: h\r\nUser-Agent: python-requests/2.34.2\r\nAccept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n";

#[test]
fn same_bytes_as_python_requests() {
    let head = build("GET", &url("http://h/path"), "python-requests/2.34.2");
    assert_eq!(String::from_utf8(head.to_bytes()).unwrap(), REQUESTS_GET);
}

#[test]
fn default_fetch_of_the_lab_page() {
    let ua = default_user_agent();
    assert_eq!(ua, format!("fetchscope/{}", env!("CARGO_PKG_VERSION")));
    let head = build("GET", &url("https://www.example.test/"), &ua);
    let expected = format!(
        "GET / HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: {ua}\r\n\
         Accept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n"
    );
    assert_eq!(String::from_utf8(head.to_bytes()).unwrap(), expected);
    assert_eq!(head.start_line(), "GET / HTTP/1.1");
    let names: Vec<&str> = head.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Host",
            "User-Agent",
            "Accept-Encoding",
            "Accept",
            "Connection"
        ]
    );
}

#[test]
fn query_port_and_ipv6() {
    let ua = "ua";
    let head = build(
        "GET",
        &url("https://www.example.test:8443/bytes/5?a=%20b&c"),
        ua,
    );
    let text = String::from_utf8(head.to_bytes()).unwrap();
    assert!(
        text.starts_with("GET /bytes/5?a=%20b&c HTTP/1.1\r\nHost: www.example.test:8443\r\n"),
        "{text}"
    );
    let head = build("GET", &url("http://[fd00::1]:8080"), ua);
    assert_eq!(head.target, "/");
    assert_eq!(head.header("host"), Some("[fd00::1]:8080"));
}

#[test]
fn head_request_has_no_content_length() {
    let head = build("HEAD", &url("https://h.test/x"), "ua");
    assert_eq!(head.start_line(), "HEAD /x HTTP/1.1");
    assert_eq!(head.headers.len(), 5);
}
