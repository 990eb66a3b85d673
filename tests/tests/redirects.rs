//! Redirects a newcomer trips over, through the real binary in the built-in lab: an
//! https → http downgrade named in the trace and the summary, refused with
//! `--proto-redir =https`, and a redirect to a scheme fetchscope cannot follow.

use fetchscope_tests::{code, events, fetchscope, of_type};

/// The lab's `/redirect-to` sends a 302 to `target`.
fn redirect_to(target: &str) -> String {
    format!("https://www.example.test/redirect-to?url={target}")
}

#[test]
fn an_https_to_http_redirect_is_named_a_downgrade() {
    let url = redirect_to("http://www.example.test/");
    // --json: the redirect event says so
    let out = fetchscope(&["fetch", "--json", "--seed", "1", &url])
        .output()
        .expect("run fetchscope");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let ev = events(&out.stdout);
    let redirects = of_type(&ev, "redirect");
    assert_eq!(redirects.len(), 1);
    assert_eq!(redirects[0]["downgrade"], true);
    let notes: Vec<&str> = of_type(&ev, "note")
        .iter()
        .filter_map(|n| n["text"].as_str())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("same host over http://") && n.contains("DNS and TCP anew")),
        "{notes:?}"
    );
    assert!(
        !notes.iter().any(|n| n.contains("another host")),
        "the same host is not another host: {notes:?}"
    );
    // the second exchange really went in clear text: no TLS after the redirect
    let second_syn = of_type(&ev, "packet")
        .into_iter()
        .filter(|p| p["tcp"]["flags"] == serde_json::json!(["SYN"]))
        .nth(1)
        .expect("a second connection");
    assert_eq!(second_syn["tcp"]["dst_port"], 80);
    // text: the heading and the summary
    let out = fetchscope(&["fetch", "--seed", "1", "--color", "never", &url])
        .output()
        .expect("run fetchscope");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DOWNGRADE from https to http"), "{text}");
    assert!(
        text.contains("Downgraded: redirect 1 left https for http"),
        "{text}"
    );
    // https → https is no downgrade
    let out = fetchscope(&[
        "fetch",
        "--json",
        "--seed",
        "1",
        &redirect_to("https://example.test/"),
    ])
    .output()
    .expect("run fetchscope");
    assert_eq!(code(&out), 0);
    let ev = events(&out.stdout);
    assert_eq!(of_type(&ev, "redirect")[0]["downgrade"], false);
}

#[test]
fn proto_redir_refuses_the_downgrade() {
    let url = redirect_to("http://www.example.test/");
    let out = fetchscope(&["fetch", "--json", "--proto-redir", "=https", &url])
        .output()
        .expect("run fetchscope");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 7, "{stderr}");
    let ev = events(&out.stdout);
    let err = of_type(&ev, "error");
    assert_eq!(err[0]["kind"], "redirect-refused");
    assert!(
        stderr.contains("--proto-redir https does not follow http:// redirects"),
        "{stderr}"
    );
    // nothing was sent to port 80
    assert!(
        !of_type(&ev, "packet")
            .iter()
            .any(|p| p["tcp"]["dst_port"] == 80),
        "a packet to port 80 after the refusal"
    );
    // a bad list is a usage error
    let out = fetchscope(&["fetch", "--proto-redir", "ftp"])
        .output()
        .expect("run fetchscope");
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("fetchscope: "));
}

#[test]
fn a_redirect_to_another_scheme_reads_as_one_sentence() {
    let out = fetchscope(&["fetch", "--json", &redirect_to("ftp://x")])
        .output()
        .expect("run fetchscope");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 7, "{stderr}");
    assert!(
        stderr.contains(
            "the server redirected to `ftp://x`: fetchscope follows only http:// and https:// redirects, not ftp://"
        ),
        "{stderr}"
    );
}
