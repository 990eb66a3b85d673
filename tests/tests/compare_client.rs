//! End-to-end tests of `fetchscope compare URL --client requests|curl` (a real client
//! through the kernel, captured and replayed beside fetchscope's own run) and of
//! `fetchscope compare --replay A B` (two captures, no network).
//!
//! The oracles: what the real client is (requests' and curl's own version strings), the
//! lab's files (`files.sha256`), the packets of each side's own events, and the replay of
//! each capture on its own.
//!
//! The `--client` tests bring up a namespace lab under the prefix [`PREFIX`] (namespaces
//! `fscmc-srv`/`fscmc-cli`, TUN `fscmc0`) and take it down again, also when they fail;
//! they need root, curl, and python3 with requests. A missing prerequisite skips a test
//! with the reason, or fails it under `CI=true`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use fetchscope_tests::netns::{COMMAND_LIMIT, FETCH_TIMEOUT_SECS, NsLab, Scratch, output_within};
use fetchscope_tests::{
    code, events, fetchscope, fetchscope_bin, have, lab_bytes, of_type, require, sha256_hex,
};
use serde_json::Value;

/// The namespace lab's name prefix for this test binary (see `FSC_LAB_PREFIX`).
const PREFIX: &str = "fscmc";

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// The first line `program ARGS` prints, when it succeeds.
fn version_of(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = text.lines().next()?.trim().to_string();
    (!v.is_empty()).then_some(v)
}

/// requests' version, as python3 imports it (`None`: no python3 with requests).
fn requests_version() -> Option<String> {
    version_of(
        "python3",
        &["-c", "import requests; print(requests.__version__)"],
    )
}

/// curl's version, from `curl --version` ("curl 7.88.1 (x86_64-...) ...").
fn curl_version() -> Option<String> {
    version_of("curl", &["--version"])?
        .split_whitespace()
        .nth(1)
        .map(str::to_string)
}

/// `fetchscope compare URL --client CLIENT <tun options> --json` in the client
/// namespace, with the lab's resolv.conf over /etc's (for that command only), so the
/// real client resolves lab names with the system resolver.
fn compare_with_client(lab: &NsLab, url: &str, client: &str) -> Output {
    let mut c = lab.in_cli("sh");
    c.arg("-c")
        .arg(r#"mount --bind "$1" /etc/resolv.conf || exit 1; shift; exec "$@""#)
        .arg("sh")
        .arg(format!("{}/resolv.conf", lab.var("FSC_RESOLV_DIR")))
        .arg(fetchscope_bin())
        .args(["compare", url, "--client", client])
        .args(lab.tun_args())
        .args(["--timeout", FETCH_TIMEOUT_SECS, "--json"]);
    output_within(c, COMMAND_LIMIT)
}

/// The events of one side (`stack` tag) of a compare.
fn side<'a>(ev: &'a [Value], stack: &str) -> Vec<&'a Value> {
    ev.iter().filter(|e| e["stack"] == stack).collect()
}

/// Checks the stream's shape: every line but the last is tagged `first` or `second`, all
/// of `first`'s before `second`'s, each side ends with a `done`; the last line is the
/// `compare` line, returned.
fn final_compare_line<'a>(ev: &'a [Value], first: &str, second: &str) -> &'a Value {
    let (last, rest) = ev.split_last().expect("some output");
    assert_eq!(last["type"], "compare", "the last line: {last}");
    let tags: Vec<&str> = rest
        .iter()
        .map(|e| {
            e["stack"]
                .as_str()
                .unwrap_or_else(|| panic!("an untagged line: {e}"))
        })
        .collect();
    let switch = tags
        .iter()
        .position(|t| *t == second)
        .unwrap_or_else(|| panic!("no line tagged {second}"));
    assert!(switch > 0, "no line tagged {first}");
    assert!(
        tags[..switch].iter().all(|t| *t == first) && tags[switch..].iter().all(|t| *t == second),
        "all {first} lines, then all {second} lines: {tags:?}"
    );
    for s in [first, second] {
        let done = side(ev, s)
            .into_iter()
            .filter(|e| e["type"] == "done")
            .count();
        assert_eq!(done, 1, "{s}: one done event");
    }
    last
}

/// The JA4 of the ClientHello among one side's packet events.
fn ja4_in_packets(ev: &[Value], stack: &str) -> Vec<String> {
    side(ev, stack)
        .iter()
        .filter(|e| e["type"] == "packet" && e["dir"] == "tx")
        .flat_map(|p| p["tls"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["message"] == "ClientHello")
        .map(|r| r["ja4"].as_str().expect("a ClientHello's ja4").to_string())
        .collect()
}

/// A JA4 fingerprint's shape: `t13d1011h1_61a7ad8aa9b6_3fcd1a44f3e3`.
fn looks_like_ja4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('_').collect();
    parts.len() == 3
        && parts[0].len() == 10
        && parts[0].starts_with('t')
        && parts[1..]
            .iter()
            .all(|p| p.len() == 12 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The texts of the differences of `topic`.
fn texts<'a>(compare: &'a Value, topic: &str) -> Vec<&'a str> {
    compare["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .filter(|d| d["topic"] == topic)
        .filter_map(|d| d["text"].as_str())
        .collect()
}

/// One `compare --client` run against the lab's home page, checked: the stream (the
/// userspace run, then the client's), the differences (the request head naming the
/// client's own User-Agent, the ClientHello with both JA4s, the teardown), and the body
/// the client reported, the replay of its capture saw, and nginx served.
fn check_compare_with(client: &str, user_agent: &str) {
    let Some(lab) = NsLab::up(PREFIX) else { return };
    let url = "https://www.example.test/";
    let out = compare_with_client(&lab, url, client);
    assert_eq!(
        code(&out),
        0,
        "compare --client {client}: {}",
        stderr_of(&out)
    );
    let ev = events(&out.stdout);
    let cmp = final_compare_line(&ev, "userspace", "client");
    assert_eq!(cmp["url"], url);
    let (ours, theirs) = (&cmp["userspace"], &cmp["client"]);
    assert_eq!(theirs["name"], client, "{theirs}");

    // The differences the brief names.
    let head = texts(cmp, "request_head");
    assert!(
        head.iter().any(|t| t.contains(user_agent)),
        "a request_head difference names {user_agent}: {head:?}"
    );
    let hello = texts(cmp, "client_hello");
    assert!(!hello.is_empty(), "client_hello differences: {cmp}");
    let (our_ja4, their_ja4) = (
        ours["client_hello"]["ja4"].as_str().expect("userspace ja4"),
        theirs["client_hello"]["ja4"].as_str().expect("client ja4"),
    );
    assert!(looks_like_ja4(our_ja4), "{our_ja4}");
    assert!(looks_like_ja4(their_ja4), "{their_ja4}");
    assert_ne!(our_ja4, their_ja4, "two different TLS stacks");
    assert!(
        hello
            .iter()
            .any(|t| t.contains(our_ja4) && t.contains(their_ja4)),
        "a client_hello difference names both JA4s: {hello:?}"
    );
    // ...and each report's JA4 is the one of its own side's ClientHello packet.
    assert_eq!(ja4_in_packets(&ev, "userspace"), [our_ja4]);
    assert_eq!(ja4_in_packets(&ev, "client"), [their_ja4]);
    assert!(
        !texts(cmp, "teardown").is_empty(),
        "teardown differences: {cmp}"
    );

    // The body: what the client reported, what the replay of its capture saw, what the
    // userspace run got, and nginx's file.
    let expected = lab.expected_sha256("www/index.html");
    let reported = &cmp["client_reported"];
    assert_eq!(reported["status"], 200, "{reported}");
    assert_eq!(reported["redirects"], 0, "{reported}");
    assert_eq!(
        reported["body_sha256"], theirs["body_sha256"],
        "the client's report vs the replay of its capture"
    );
    assert_eq!(theirs["body_sha256"], Value::from(expected.clone()));
    assert_eq!(ours["body_sha256"], Value::from(expected.clone()));
    assert_eq!(reported["body_bytes"], lab.file_len("www/index.html"));
    let client_done = side(&ev, "client")
        .into_iter()
        .find(|e| e["type"] == "done")
        .expect("the client's done");
    assert_eq!(client_done["status"], 200);
    assert_eq!(client_done["body_sha256"], Value::from(expected));
    // The client's packets went through the kernel (the veth's address), ours through
    // the TUN device.
    let stack_addr = lab.var("FSC_STACK_ADDR").split('/').next().unwrap_or("");
    for (tag, must_be_stack) in [("userspace", true), ("client", false)] {
        let sent: Vec<&Value> = side(&ev, tag)
            .into_iter()
            .filter(|e| e["type"] == "packet" && e["dir"] == "tx")
            .collect();
        assert!(!sent.is_empty(), "{tag}: packets");
        for p in sent {
            assert_eq!(
                p["ip"]["src"] == stack_addr,
                must_be_stack,
                "{tag}: sent from {}",
                p["ip"]["src"]
            );
        }
    }
}

/// `compare URL --client requests`: requests.get() beside fetchscope's stack.
#[test]
fn compare_client_requests_names_its_differences_and_its_body() {
    let version = requests_version();
    if !require(
        version.is_some(),
        "python3 with requests (pip install requests)",
    ) {
        return;
    }
    check_compare_with(
        "requests",
        &format!("python-requests/{}", version.unwrap_or_default()),
    );
}

/// `compare URL --client curl`: curl beside fetchscope's stack.
#[test]
fn compare_client_curl_names_its_differences_and_its_body() {
    let version = curl_version();
    if !require(
        have("curl") && version.is_some(),
        "curl (Debian package curl)",
    ) {
        return;
    }
    check_compare_with("curl", &format!("curl/{}", version.unwrap_or_default()));
}

/// `compare --replay A B` on two lab captures: A's events then B's, each the replay of
/// its file; the final line has `a` and `b` with their digests, and names the
/// differences in the request and the body. The same capture twice differs in nothing.
#[test]
fn compare_replay_of_two_lab_captures() {
    let dir = Scratch::new("compare-replay");
    let (a, b) = (dir.join("a.pcapng"), dir.join("b.pcapng"));
    for (url, seed, pcap) in [
        ("https://www.example.test/", "1", &a),
        ("https://www.example.test/bytes/200000", "2", &b),
    ] {
        let out = output_within(
            fetchscope(&["fetch", url, "--seed", seed, "--pcap", path_str(pcap), "-s"]),
            COMMAND_LIMIT,
        );
        assert_eq!(code(&out), 0, "fetch {url}: {}", stderr_of(&out));
    }
    let replay = |p: &Path| -> Vec<Value> {
        let out = output_within(
            fetchscope(&["replay", path_str(p), "--json"]),
            COMMAND_LIMIT,
        );
        assert_eq!(code(&out), 0, "{}", stderr_of(&out));
        events(&out.stdout)
    };
    let (alone_a, alone_b) = (replay(&a), replay(&b));

    let out = output_within(
        fetchscope(&["compare", "--replay", path_str(&a), path_str(&b), "--json"]),
        COMMAND_LIMIT,
    );
    assert_eq!(code(&out), 0, "{}", stderr_of(&out));
    let ev = events(&out.stdout);
    let cmp = final_compare_line(&ev, "a", "b");
    for (tag, alone) in [("a", &alone_a), ("b", &alone_b)] {
        let untagged: Vec<Value> = side(&ev, tag)
            .into_iter()
            .map(|e| {
                let mut e = e.clone();
                e.as_object_mut().expect("an object").remove("stack");
                e
            })
            .collect();
        assert_eq!(
            untagged
                .iter()
                .filter(|e| e["type"] == "packet")
                .collect::<Vec<_>>(),
            of_type(alone, "packet"),
            "{tag}: the packets of the capture's own replay"
        );
        let done = of_type(alone, "done");
        assert_eq!(cmp[tag]["body_sha256"], done[0]["body_sha256"], "{tag}");
        assert_eq!(cmp[tag]["status"], 200, "{tag}");
    }
    assert_eq!(
        cmp["b"]["body_sha256"],
        Value::from(sha256_hex(&lab_bytes(200_000)))
    );
    assert_ne!(cmp["a"]["body_sha256"], cmp["b"]["body_sha256"]);
    let body = texts(cmp, "body");
    assert!(!body.is_empty(), "the bodies differ: {cmp}");
    let head = texts(cmp, "request_head");
    assert!(
        head.iter().any(|t| t.contains("/bytes/200000")),
        "the requests differ in their target: {head:?}"
    );

    // A capture compared with itself: no difference at all.
    let out = output_within(
        fetchscope(&["compare", "--replay", path_str(&a), path_str(&a), "--json"]),
        COMMAND_LIMIT,
    );
    assert_eq!(code(&out), 0, "{}", stderr_of(&out));
    let ev = events(&out.stdout);
    let same = final_compare_line(&ev, "a", "b");
    assert_eq!(same["differences"], serde_json::json!([]), "{same}");
    assert_eq!(same["a"]["body_sha256"], same["b"]["body_sha256"]);
}
