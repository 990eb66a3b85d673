use super::*;

fn url(s: &str) -> url::Url {
    url::Url::parse(s).unwrap()
}

fn get(options: &RequestOptions, u: &str) -> RequestHead {
    let u = url(u);
    build_request(
        options,
        Leg {
            url: &u,
            method: &options.method(),
            body: options.body.as_ref().map(|(b, k)| (b.len(), *k)),
            auth: true,
            purged: false,
            proxy: None,
        },
    )
}

fn names(head: &RequestHead) -> Vec<&str> {
    head.headers.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn target_keeps_percent_encoding_and_drops_fragment() {
    let o = RequestOptions {
        method: Some("get".into()),
        ..RequestOptions::default()
    };
    let head = get(&o, "https://h.test/a%20b/c?x=%2F&y#frag");
    assert_eq!(head.method, "GET");
    assert_eq!(head.target, "/a%20b/c?x=%2F&y");
}

#[test]
fn empty_path_and_empty_query() {
    let o = RequestOptions::default();
    assert_eq!(get(&o, "https://h.test").target, "/");
    assert_eq!(get(&o, "https://h.test?").target, "/");
    assert_eq!(get(&o, "https://h.test?q=1").target, "/?q=1");
}

#[test]
fn host_port_only_when_not_default() {
    let o = RequestOptions::default();
    let host = |s: &str| get(&o, s).headers[0].1.clone();
    assert_eq!(host("https://h.test:443/"), "h.test");
    assert_eq!(host("https://h.test:8443/"), "h.test:8443");
    assert_eq!(host("http://h.test:80/"), "h.test");
    assert_eq!(host("http://h.test:443/"), "h.test:443");
    assert_eq!(host("https://[2001:db8::1]/"), "[2001:db8::1]");
    assert_eq!(host("https://[2001:db8::1]:8443/"), "[2001:db8::1]:8443");
    assert_eq!(host("https://BÜCHER.example/"), "xn--bcher-kva.example");
}

#[test]
fn header_values_cannot_inject_lines() {
    let o = RequestOptions {
        user_agent: Some("a\r\nX-Evil: 1".into()),
        headers: vec![HeaderEdit::Set("X-Mine".into(), "b\nX-Evil: 2".into())],
        ..RequestOptions::default()
    };
    let head = get(&o, "https://h.test/");
    assert_eq!(head.header("user-agent"), Some("a  X-Evil: 1"));
    assert_eq!(head.header("x-mine"), Some("b X-Evil: 2"));
    assert!(!head.to_bytes().windows(4).any(|w| w == b"\r\nX-E"));
}

#[test]
fn bodyless_post_gets_content_length_zero() {
    let post = RequestOptions {
        method: Some("post".into()),
        ..RequestOptions::default()
    };
    let head = get(&post, "https://h.test/");
    assert_eq!(head.method, "POST");
    assert_eq!(head.header("Content-Length"), Some("0"));
    let head_only = RequestOptions {
        method: Some("HEAD".into()),
        ..RequestOptions::default()
    };
    assert_eq!(
        get(&head_only, "https://h.test/").header("Content-Length"),
        None
    );
}

#[test]
fn requests_order_with_headers_body_and_auth() {
    let o = RequestOptions {
        profile: ClientProfile::Requests,
        headers: vec![
            HeaderEdit::Set("accept".into(), "text/plain".into()),
            HeaderEdit::Set("X-Token".into(), "t".into()),
            HeaderEdit::Remove("Connection".into()),
        ],
        body: Some((Arc::new(RequestBody::Bytes(b"{}".to_vec())), BodyKind::Json)),
        credentials: Some(Credentials {
            user: "u".into(),
            password: "p".into(),
        }),
        ..RequestOptions::default()
    };
    let head = get(&o, "https://h.test/post");
    assert_eq!(head.method, "POST");
    assert_eq!(
        names(&head),
        [
            "Host",
            "User-Agent",
            "Accept-Encoding",
            "accept",
            "X-Token",
            "Content-Length",
            "Content-Type",
            "Authorization"
        ]
    );
    assert_eq!(head.header("user-agent"), Some("python-requests/2.34.2"));
    assert_eq!(head.header("content-length"), Some("2"));
    assert_eq!(head.header("content-type"), Some("application/json"));
    assert_eq!(head.header("authorization"), Some("Basic dTpw"));
}

#[test]
fn curl_order() {
    let o = RequestOptions {
        profile: ClientProfile::Curl,
        body: Some((
            Arc::new(RequestBody::Bytes(b"a=1".to_vec())),
            BodyKind::Data,
        )),
        credentials: Some(Credentials {
            user: "u".into(),
            password: "p".into(),
        }),
        headers: vec![HeaderEdit::Set("X-A".into(), "1".into())],
        ..RequestOptions::default()
    };
    let head = get(&o, "http://h.test/");
    assert_eq!(
        String::from_utf8(head.to_bytes()).unwrap(),
        "POST / HTTP/1.1\r\nHost: h.test\r\nAuthorization: Basic dTpw\r\nUser-Agent: curl/7.88.1\r\n\
         Accept: */*\r\nX-A: 1\r\nContent-Length: 3\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n"
    );
}

#[test]
fn requests_sends_no_content_type_for_plain_data_and_auth_can_be_withheld() {
    let o = RequestOptions {
        profile: ClientProfile::Requests,
        body: Some((Arc::new(RequestBody::Bytes(b"x".to_vec())), BodyKind::Data)),
        credentials: Some(Credentials {
            user: "u".into(),
            password: "p".into(),
        }),
        ..RequestOptions::default()
    };
    let u = url("https://other.test/");
    let head = build_request(
        &o,
        Leg {
            url: &u,
            method: "PUT",
            body: Some((1, BodyKind::Data)),
            auth: false,
            purged: false,
            proxy: None,
        },
    );
    assert_eq!(head.method, "PUT");
    assert_eq!(head.header("content-type"), None);
    assert_eq!(head.header("authorization"), None);
}

#[test]
fn credentials_never_debug_print_the_password() {
    let c = Credentials {
        user: "me".into(),
        password: "hunter2".into(),
    };
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn secret_values_cover_passwords_tokens_and_basic_credentials() {
    let o = RequestOptions {
        credentials: Some(Credentials {
            user: "me".into(),
            password: "hunter2".into(),
        }),
        headers: vec![
            HeaderEdit::Set("Authorization".into(), "Bearer tok-123".into()),
            HeaderEdit::Set("X-Other".into(), "visible".into()),
        ],
        ..RequestOptions::default()
    };
    let secrets = o.secret_values();
    for s in ["hunter2", "bWU6aHVudGVyMg==", "Bearer tok-123", "tok-123"] {
        assert!(secrets.iter().any(|v| v == s), "{s} in {secrets:?}");
    }
    assert!(!secrets.iter().any(|v| v == "visible"));
}

/// What curl 7.88.1 sent to a loopback listener for `curl --json '{}' URL` and
/// `curl -u u:p -H 'X-A: 1' URL/x`, and requests 2.34.2 for
/// `requests.post(url, json=..., auth=('u','p'), headers={'X-A': '1'})` (request heads
/// captured byte for byte, 2026-12-03).
#[test]
fn heads_match_what_curl_and_requests_sent() {
    let curl_json = RequestOptions {
        profile: ClientProfile::Curl,
        body: Some((Arc::new(RequestBody::Bytes(b"{}".to_vec())), BodyKind::Json)),
        ..RequestOptions::default()
    };
    assert_eq!(
        String::from_utf8(get(&curl_json, "http://127.0.0.1:18080/").to_bytes()).unwrap(),
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nUser-Agent: curl/7.88.1\r\n\
         Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: 2\r\n\r\n"
    );
    let curl_auth = RequestOptions {
        profile: ClientProfile::Curl,
        credentials: Some(Credentials {
            user: "u".into(),
            password: "p".into(),
        }),
        headers: vec![HeaderEdit::Set("X-A".into(), "1".into())],
        ..RequestOptions::default()
    };
    assert_eq!(
        String::from_utf8(get(&curl_auth, "http://127.0.0.1:18080/x").to_bytes()).unwrap(),
        "GET /x HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nAuthorization: Basic dTpw\r\n\
         User-Agent: curl/7.88.1\r\nAccept: */*\r\nX-A: 1\r\n\r\n"
    );
    let requests_post = RequestOptions {
        profile: ClientProfile::Requests,
        credentials: Some(Credentials {
            user: "u".into(),
            password: "p".into(),
        }),
        headers: vec![HeaderEdit::Set("X-A".into(), "1".into())],
        body: Some((
            Arc::new(RequestBody::Bytes(b"{\"a\": 1}".to_vec())),
            BodyKind::Json,
        )),
        ..RequestOptions::default()
    };
    assert_eq!(
        String::from_utf8(get(&requests_post, "http://127.0.0.1:18080/p").to_bytes()).unwrap(),
        "POST /p HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nUser-Agent: python-requests/2.34.2\r\n\
         Accept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\nX-A: 1\r\n\
         Content-Length: 8\r\nContent-Type: application/json\r\nAuthorization: Basic dTpw\r\n\r\n"
    );
}

#[test]
fn another_host_gets_no_credentials_and_a_purged_hop_no_body_headers() {
    let o = RequestOptions {
        headers: vec![
            HeaderEdit::Set("Authorization".into(), "Bearer t".into()),
            HeaderEdit::Set("Cookie".into(), "s=1".into()),
            HeaderEdit::Set("Content-Type".into(), "text/plain".into()),
            HeaderEdit::Set("X-Keep".into(), "1".into()),
        ],
        ..RequestOptions::default()
    };
    let u = url("https://other.test/");
    let head = build_request(
        &o,
        Leg {
            url: &u,
            method: "PUT",
            body: None,
            auth: false,
            purged: true,
            proxy: None,
        },
    );
    assert_eq!(head.header("authorization"), None);
    assert_eq!(head.header("cookie"), None);
    assert_eq!(head.header("content-type"), None);
    assert_eq!(head.header("content-length"), None, "requests purges it");
    assert_eq!(head.header("x-keep"), Some("1"));
    let kept = build_request(
        &o,
        Leg {
            url: &u,
            method: "GET",
            body: None,
            auth: true,
            purged: false,
            proxy: None,
        },
    );
    assert_eq!(kept.header("authorization"), Some("Bearer t"));
    assert!(
        !format!("{:?}", o.headers).contains("Bearer t"),
        "Debug hides it"
    );
}
