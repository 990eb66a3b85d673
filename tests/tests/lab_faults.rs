//! `fetchscope fetch --lab-fault NAME` for every failure mode of the built-in lab: the
//! exit status, the one sentence on stderr naming the phase, the `error` event; the faults
//! a client copes with end in success with the detour visible in the events. Then the
//! lab's routes for the normal HTTP features (codings, chunked, status codes, redirects,
//! names), each checked against an independent computation of what must arrive.
//!
//! Every fault is its own `#[test]`, so a failure names the fault.

use std::process::Output;

use fetchscope_tests::{code, events, lab_bytes, of_type, run, sha256_hex};
use serde_json::Value;

/// The page the lab serves at `/`, byte for byte.
const LAB_PAGE: &[u8] = include_bytes!("../../crates/fetchscope-lab/src/http/index.html");
/// The page of `cdn.example.test`.
const CDN_PAGE: &[u8] = include_bytes!("../../crates/fetchscope-lab/src/http/cdn.html");
/// The text behind the coding routes (`/gzip`, `/chunked`, `/close`, ...).
const TEXT_PAGE: &[u8] = include_bytes!("../../crates/fetchscope-lab/src/http/text.txt");

/// Every fault this file tests; `--lab-fault help` must list exactly these.
/// (giant-tls-record and the endless-* faults are tested in limits.rs.)
const TESTED_FAULTS: &[&str] = &[
    "nxdomain",
    "servfail",
    "dns-silent",
    "dns-wrong-id",
    "dns-truncated",
    "dns-cname-only",
    "dns-cname-loop",
    "dns-big-answer",
    "dns-fragment-lost",
    "refused",
    "syn-silent",
    "cert-unknown-ca",
    "cert-wrong-name",
    "cert-expired",
    "cert-self-signed",
    "cert-chain-too-long",
    "cert-client-auth-only",
    "tls-alert",
    "giant-tls-record",
    "bad-status-line",
    "huge-headers",
    "bad-chunk",
    "truncated",
    "corrupt-gzip",
    "redirect-loop",
    "too-many-redirects",
    "slow",
    "endless-headers",
    "endless-chunk-line",
    "endless-body",
];

/// Runs `fetchscope fetch --json --seed 1 --lab-fault NAME [extra]`.
fn fetch_with_fault(fault: &str, extra: &[&str]) -> (Output, Vec<Value>) {
    let mut args = vec!["fetch", "--json", "--seed", "1", "--lab-fault", fault];
    args.extend_from_slice(extra);
    let out = run(&args);
    let ev = events(&out.stdout);
    (out, ev)
}

/// Runs `fetchscope fetch --json --seed 1 URL` and expects success.
fn fetch_ok(url: &str) -> (Vec<Value>, Value) {
    let out = run(&["fetch", "--json", "--seed", "1", url]);
    assert_eq!(
        code(&out),
        0,
        "{url}: stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out.stdout);
    let done = single(&ev, "done");
    (ev, done)
}

/// The only event of type `ty`.
fn single(ev: &[Value], ty: &str) -> Value {
    let found = of_type(ev, ty);
    assert_eq!(found.len(), 1, "expected one {ty} event, got {found:?}");
    found[0].clone()
}

/// What a failing fault must produce.
struct Failure {
    exit: i32,
    phase: &'static str,
    kind: &'static str,
    /// Words the message must contain (compared in lower case).
    words: &'static [&'static str],
}

/// Runs `fault` and checks the exit status, stderr, the `error` event and the phases.
fn expect_failure(fault: &str, extra: &[&str], want: Failure) -> Vec<Value> {
    let (out, ev) = fetch_with_fault(fault, extra);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(code(&out), want.exit, "{fault}: stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{fault}: {stderr}");
    assert_no_debug_text(fault, &stderr);
    // one sentence on stderr, naming the phase
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{fault}: stderr is not one line: {stderr}");
    assert!(
        lines[0].starts_with(&format!("fetchscope: {} failed: ", want.phase)),
        "{fault}: {stderr}"
    );
    // the error event, last of the stream, and no done event
    let error = single(&ev, "error");
    assert_eq!(
        ev.last(),
        Some(&error),
        "{fault}: the error is not the last event"
    );
    assert!(of_type(&ev, "done").is_empty(), "{fault}");
    assert_eq!(error["phase"], want.phase, "{fault}: {error}");
    assert_eq!(error["kind"], want.kind, "{fault}: {error}");
    let message = error["message"].as_str().unwrap_or_default().to_lowercase();
    assert!(lines[0].ends_with(error["message"].as_str().unwrap_or("?")));
    for w in want.words {
        assert!(message.contains(w), "{fault}: {w:?} not in {message:?}");
    }
    // the phase that failed was entered, and none after it
    let phases: Vec<&str> = of_type(&ev, "phase")
        .iter()
        .filter_map(|p| p["phase"].as_str())
        .collect();
    assert!(phases.contains(&want.phase), "{fault}: {phases:?}");
    assert!(!phases.contains(&"done"), "{fault}: {phases:?}");
    ev
}

/// A Rust `Debug` representation (`Struct { field: … }`, `Tuple([…])`) must never reach a
/// person.
fn assert_no_debug_text(what: &str, text: &str) {
    for pattern in ["{ ", "(["] {
        assert!(
            !text.contains(pattern),
            "{what}: {pattern:?} (Debug text) in: {text}"
        );
    }
}

/// Every fault `--lab-fault help` lists, run once: whatever happens, stderr holds words,
/// never the `Debug` text of a library type, and the exit status is a documented one.
#[test]
fn no_lab_fault_prints_debug_text() {
    let help = run(&["fetch", "--lab-fault", "help"]);
    assert_eq!(code(&help), 0);
    let text = String::from_utf8_lossy(&help.stdout).into_owned();
    let names: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.len() >= 24, "too few faults listed: {text}");
    for name in names {
        let out = run(&["fetch", "--seed", "1", "--lab-fault", name]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            [0, 4, 5, 6, 7, 8].contains(&code(&out)),
            "{name}: exit {} {stderr}",
            code(&out)
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert_no_debug_text(name, &stderr);
    }
}

/// The packets sent (`tx`) or received (`rx`) with `dst_port` (tx) or `src_port` (rx).
fn tcp_packets<'a>(ev: &'a [Value], dir: &str, port: u16) -> Vec<&'a Value> {
    let key = if dir == "tx" { "dst_port" } else { "src_port" };
    of_type(ev, "packet")
        .into_iter()
        .filter(|p| p["dir"] == dir && p["tcp"][key] == port)
        .collect()
}

fn has_flag(p: &Value, flag: &str) -> bool {
    p["tcp"]["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == flag))
}

fn dns_events<'a>(ev: &'a [Value], kind: &str) -> Vec<&'a Value> {
    of_type(ev, "dns")
        .into_iter()
        .filter(|d| d["event"] == kind)
        .collect()
}

// ---------------------------------------------------------------- the switch itself

#[test]
fn lab_fault_help_lists_every_fault_with_a_sentence_and_exits_0() {
    let out = run(&["fetch", "--lab-fault", "help"]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8(out.stdout).unwrap();
    let listed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(listed, TESTED_FAULTS, "{text}");
    for line in text.lines().filter(|l| l.starts_with("  ")) {
        assert!(
            line.split_whitespace().count() > 4,
            "no explanation: {line}"
        );
    }
}

#[test]
fn unknown_faults_and_faults_with_tun_are_usage_errors() {
    let out = run(&["fetch", "--lab-fault", "gremlins"]);
    assert_eq!(code(&out), 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("gremlins") && stderr.contains("nxdomain"),
        "{stderr}"
    );
    let out = run(&[
        "fetch",
        "--lab-fault",
        "refused",
        "--tun",
        "fsc-none0",
        "--addr",
        "10.88.1.2/24",
        "--dns",
        "10.88.0.1",
    ]);
    assert_eq!(code(&out), 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--lab-fault"), "{stderr}");
}

#[test]
fn the_text_header_names_the_fault() {
    let out = run(&["fetch", "--seed", "1", "--lab-fault", "dns-wrong-id"]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8(out.stdout).unwrap();
    let first = text.lines().next().unwrap_or_default();
    assert!(first.contains("lab fault dns-wrong-id"), "{first}");
}

#[test]
fn faulty_runs_repeat_with_a_seed() {
    let a = fetch_with_fault("bad-chunk", &[]).0;
    let b = fetch_with_fault("bad-chunk", &[]).0;
    assert_eq!(code(&a), 7);
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(a.stderr, b.stderr);
}

// ---------------------------------------------------------------- DNS

#[test]
fn nxdomain() {
    let ev = expect_failure(
        "nxdomain",
        &[],
        Failure {
            exit: 4,
            phase: "resolve",
            kind: "nxdomain",
            words: &["www.example.test", "nxdomain"],
        },
    );
    assert_eq!(dns_events(&ev, "answer")[0]["rcode"], "NXDOMAIN");
}

#[test]
fn servfail() {
    let ev = expect_failure(
        "servfail",
        &[],
        Failure {
            exit: 4,
            phase: "resolve",
            kind: "servfail",
            words: &["servfail"],
        },
    );
    assert_eq!(dns_events(&ev, "answer")[0]["rcode"], "SERVFAIL");
}

#[test]
fn dns_silent() {
    let ev = expect_failure(
        "dns-silent",
        &["--timeout", "3"],
        Failure {
            exit: 8,
            phase: "resolve",
            kind: "timeout",
            words: &["timed out", "dns"],
        },
    );
    // the query went out and was retried, no answer ever came
    assert!(!dns_events(&ev, "retry").is_empty(), "no retry");
    assert!(dns_events(&ev, "answer").is_empty());
    let error = single(&ev, "error");
    assert_eq!(error["t_us"], 3_000_000);
}

#[test]
fn dns_wrong_id() {
    let (out, ev) = fetch_with_fault("dns-wrong-id", &[]);
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let query = &dns_events(&ev, "query")[0];
    let ignored = dns_events(&ev, "ignored");
    let answer = &dns_events(&ev, "answer")[0];
    assert_eq!(ignored.len(), 1, "{ignored:?}");
    assert!(
        ignored[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("id")),
        "{}",
        ignored[0]
    );
    // the decoy came first and was ignored; the answer with the right id was used
    assert!(ignored[0]["t_us"].as_u64() <= answer["t_us"].as_u64());
    assert_eq!(answer["id"], query["id"]);
    assert_eq!(answer["addresses"][0], "10.88.0.1");
    // both answers crossed the wire: two DNS packets from the server
    let dns_rx: Vec<&Value> = of_type(&ev, "packet")
        .into_iter()
        .filter(|p| p["dir"] == "rx" && p["udp"]["src_port"] == 53)
        .collect();
    assert_eq!(dns_rx.len(), 2);
    assert_ne!(dns_rx[0]["dns"]["id"], query["id"]);
    assert_eq!(single(&ev, "done")["status"], 200);
}

#[test]
fn dns_truncated() {
    let (out, ev) = fetch_with_fault("dns-truncated", &[]);
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the UDP answer had TC set; the question was asked again over TCP port 53
    let udp_answer = of_type(&ev, "packet")
        .into_iter()
        .find(|p| p["dir"] == "rx" && p["udp"]["src_port"] == 53)
        .cloned()
        .expect("a UDP answer");
    assert!(
        udp_answer["summary"]
            .as_str()
            .is_some_and(|s| s.contains("truncated")),
        "{udp_answer}"
    );
    let syn53 = tcp_packets(&ev, "tx", 53);
    assert!(
        syn53.first().is_some_and(|p| has_flag(p, "SYN")),
        "no TCP to port 53"
    );
    assert!(!tcp_packets(&ev, "rx", 53).is_empty());
    let answer = &dns_events(&ev, "answer")[0];
    assert_eq!(answer["addresses"][0], "10.88.0.1");
    let done = single(&ev, "done");
    assert_eq!(done["status"], 200);
    assert_eq!(done["body_sha256"], sha256_hex(LAB_PAGE));
}

/// The DNS queries the client sent over UDP, as packets.
fn udp_dns_queries(ev: &[Value]) -> Vec<&Value> {
    of_type(ev, "packet")
        .into_iter()
        .filter(|p| p["dir"] == "tx" && p["udp"]["dst_port"] == 53)
        .collect()
}

/// The IPv4 fragments that arrived, as `(IPv4 id, offset)`.
fn rx_fragments(ev: &[Value]) -> Vec<(u64, u64)> {
    of_type(ev, "packet")
        .into_iter()
        .filter(|p| p["dir"] == "rx" && p["ip"]["fragment"].is_object())
        .map(|p| {
            (
                p["ip"]["id"].as_u64().unwrap_or(u64::MAX),
                p["ip"]["fragment"]["offset"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect()
}

#[test]
fn dns_cname_only() {
    let (out, ev) = fetch_with_fault("dns-cname-only", &[]);
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the answer named only the alias; the target was asked for with its own query
    let queries = dns_events(&ev, "query");
    let answers = dns_events(&ev, "answer");
    assert_eq!(queries.len(), 2, "{queries:?}");
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(queries[0]["name"], "www.example.test");
    assert_eq!(answers[0]["id"], queries[0]["id"]);
    assert_eq!(answers[0]["cnames"][0], "example.test");
    assert!(answers[0]["addresses"].as_array().is_none_or(Vec::is_empty));
    assert_eq!(queries[1]["name"], "example.test");
    assert_ne!(
        queries[1]["id"], queries[0]["id"],
        "the second query needs its own id"
    );
    assert!(
        queries[1]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("alias www.example.test → example.test")),
        "{}",
        queries[1]
    );
    assert!(queries[1]["t_us"].as_u64() >= answers[0]["t_us"].as_u64());
    assert_eq!(answers[1]["id"], queries[1]["id"]);
    assert_eq!(answers[1]["name"], "example.test");
    assert_eq!(answers[1]["addresses"][0], "10.88.0.1");
    // both queries crossed the wire, each with its own id
    let sent: Vec<&Value> = udp_dns_queries(&ev)
        .into_iter()
        .map(|p| &p["dns"]["id"])
        .collect();
    assert_eq!(sent, [&queries[0]["id"], &queries[1]["id"]]);
    let done = single(&ev, "done");
    assert_eq!(done["status"], 200);
    assert_eq!(done["body_sha256"], sha256_hex(LAB_PAGE));
}

#[test]
fn dns_cname_loop() {
    let ev = expect_failure(
        "dns-cname-loop",
        &[],
        Failure {
            exit: 4,
            phase: "resolve",
            kind: "cname-loop",
            words: &[
                "alias loop",
                "www.example.test → loop.example.test → www.example.test",
                "--resolve www.example.test:443:addr",
            ],
        },
    );
    let queries = dns_events(&ev, "query");
    assert_eq!(queries.len(), 2, "{queries:?}");
    assert_eq!(queries[1]["name"], "loop.example.test");
    assert_ne!(queries[1]["id"], queries[0]["id"]);
    assert_eq!(udp_dns_queries(&ev).len(), 2);
    // no connection was tried
    assert!(tcp_packets(&ev, "tx", 443).is_empty());
}

#[test]
fn dns_big_answer() {
    let (out, ev) = fetch_with_fault("dns-big-answer", &[]);
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // one answer in three IP fragments, each shown once, reassembled by the stack
    let frags = rx_fragments(&ev);
    assert_eq!(frags.len(), 3, "{frags:?}");
    assert!(frags.iter().all(|(id, _)| *id == frags[0].0), "{frags:?}");
    let offsets: Vec<u64> = frags.iter().map(|(_, o)| *o).collect();
    assert_eq!(offsets, [0, 1480, 2960]);
    assert_eq!(udp_dns_queries(&ev).len(), 1, "no retry was needed");
    assert!(dns_events(&ev, "fragmented").is_empty());
    assert!(tcp_packets(&ev, "tx", 53).is_empty(), "no TCP fallback");
    let answer = &dns_events(&ev, "answer")[0];
    assert_eq!(answer["addresses"][0], "10.88.0.1");
    let done = single(&ev, "done");
    assert_eq!(done["status"], 200);
    assert_eq!(done["body_sha256"], sha256_hex(LAB_PAGE));
}

#[test]
fn dns_fragment_lost() {
    let (out, ev) = fetch_with_fault("dns-fragment-lost", &[]);
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the first and last fragments came, the second was lost: no whole answer
    let offsets: Vec<u64> = rx_fragments(&ev).iter().map(|(_, o)| *o).collect();
    assert_eq!(offsets, [0, 2960]);
    // at the retransmission timeout the question went over TCP, saying why
    let fragmented = dns_events(&ev, "fragmented");
    assert_eq!(fragmented.len(), 1, "{fragmented:?}");
    let reason = fragmented[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("IP fragments that could not be reassembled") && reason.contains("TCP"),
        "{reason}"
    );
    assert_eq!(fragmented[0]["t_us"], 1_000_000);
    assert!(dns_events(&ev, "retry").is_empty(), "no UDP retry");
    let syn53 = tcp_packets(&ev, "tx", 53);
    assert!(syn53.first().is_some_and(|p| has_flag(p, "SYN")));
    let answer = &dns_events(&ev, "answer")[0];
    assert_eq!(answer["id"], dns_events(&ev, "query")[0]["id"]);
    assert!(
        answer["reason"]
            .as_str()
            .is_some_and(|r| r.contains("over TCP")),
        "{answer}"
    );
    assert_eq!(answer["addresses"][0], "10.88.0.1");
    let done = single(&ev, "done");
    assert_eq!(done["status"], 200);
    assert_eq!(done["body_sha256"], sha256_hex(LAB_PAGE));
}

// ---------------------------------------------------------------- TCP

#[test]
fn refused() {
    let ev = expect_failure(
        "refused",
        &[],
        Failure {
            exit: 5,
            phase: "connect",
            kind: "refused",
            words: &["refused", "rst"],
        },
    );
    let rx = tcp_packets(&ev, "rx", 443);
    assert_eq!(rx.len(), 1);
    assert!(has_flag(rx[0], "RST"), "{}", rx[0]);
}

#[test]
fn syn_silent() {
    let ev = expect_failure(
        "syn-silent",
        &["--timeout", "3"],
        Failure {
            exit: 8,
            phase: "connect",
            kind: "timeout",
            words: &["timed out", "syn-ack"],
        },
    );
    let syns: Vec<&Value> = tcp_packets(&ev, "tx", 443)
        .into_iter()
        .filter(|p| has_flag(p, "SYN"))
        .collect();
    assert!(
        syns.len() >= 2,
        "the SYN was not retransmitted: {}",
        syns.len()
    );
    assert!(tcp_packets(&ev, "rx", 443).is_empty());
}

// ---------------------------------------------------------------- TLS

fn certificate_failure(fault: &str, words: &'static [&'static str]) {
    let ev = expect_failure(
        fault,
        &[],
        Failure {
            exit: 6,
            phase: "tls",
            kind: "certificate",
            words,
        },
    );
    // the handshake got as far as the server's flight, and no request left
    assert!(
        tcp_packets(&ev, "rx", 443).iter().any(|p| p["summary"]
            .as_str()
            .is_some_and(|s| s.contains("ServerHello"))),
        "{fault}: no ServerHello arrived"
    );
    assert!(of_type(&ev, "http_request").is_empty());
}

#[test]
fn cert_unknown_ca() {
    certificate_failure("cert-unknown-ca", &["www.example.test", "not trusted"]);
}

#[test]
fn cert_wrong_name() {
    certificate_failure("cert-wrong-name", &["not valid for the name", "other.test"]);
}

#[test]
fn cert_expired() {
    // Two dates in words, not rustls's `ExpiredContext { time: UnixTime(…) }`.
    let ev = expect_failure(
        "cert-expired",
        &[],
        Failure {
            exit: 6,
            phase: "tls",
            kind: "certificate",
            words: &["expired on 2025-12-02", "it is now 2026-01-01", "utc"],
        },
    );
    assert!(!of_type(&ev, "error").is_empty());
}

#[test]
fn cert_chain_too_long() {
    // The lab CA is passed (it is the lab's only trust anchor): the cause is the chain's
    // depth, and the advice must not send the user to --cacert.
    certificate_failure(
        "cert-chain-too-long",
        &["chain of www.example.test is too long", "intermediate"],
    );
}

#[test]
fn cert_client_auth_only() {
    certificate_failure(
        "cert-client-auth-only",
        &["not allowed for tls servers", "clientauth", "serverauth"],
    );
}

#[test]
fn cert_self_signed() {
    certificate_failure("cert-self-signed", &["not trusted"]);
}

#[test]
fn tls_alert() {
    let ev = expect_failure(
        "tls-alert",
        &[],
        Failure {
            exit: 6,
            phase: "tls",
            kind: "alert",
            words: &["alert"],
        },
    );
    let message = single(&ev, "error")["message"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase()
        .replace(['_', ' '], "");
    assert!(message.contains("handshakefailure"), "{message}");
    // the alert is on the wire, in the server's only data segment
    let data: Vec<&Value> = tcp_packets(&ev, "rx", 443)
        .into_iter()
        .filter(|p| p["tcp"]["payload_len"].as_u64() > Some(0))
        .collect();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["tcp"]["payload_len"], 7);
}

// ---------------------------------------------------------------- HTTP

fn http_failure(fault: &str, kind: &'static str, words: &'static [&'static str]) -> Vec<Value> {
    expect_failure(
        fault,
        &[],
        Failure {
            exit: 7,
            phase: "response",
            kind,
            words,
        },
    )
}

#[test]
fn bad_status_line() {
    http_failure("bad-status-line", "malformed-status-line", &["2oo"]);
}

#[test]
fn huge_headers() {
    let ev = http_failure("huge-headers", "headers-too-large", &["65536"]);
    // more than 64 KiB arrived before the client gave up
    let received: u64 = tcp_packets(&ev, "rx", 443)
        .iter()
        .filter_map(|p| p["tcp"]["payload_len"].as_u64())
        .sum();
    assert!(received > 64 * 1024, "{received}");
}

#[test]
fn bad_chunk() {
    let ev = http_failure("bad-chunk", "bad-chunk-size", &["zz"]);
    // the first chunk (1000 bytes of the page) and the bad size line arrived
    let received: u64 = tcp_packets(&ev, "rx", 443)
        .iter()
        .filter_map(|p| p["tcp"]["payload_len"].as_u64())
        .sum();
    assert!(received > 1000, "{received}");
}

#[test]
fn truncated() {
    let len = LAB_PAGE.len();
    let ev = http_failure("truncated", "truncated-body", &[]);
    let message = single(&ev, "error")["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains(&len.to_string()) && message.contains(&(2 * len).to_string()),
        "{message}"
    );
}

#[test]
fn corrupt_gzip() {
    http_failure("corrupt-gzip", "corrupt-encoding", &["gzip"]);
}

#[test]
fn redirect_loop() {
    let ev = http_failure(
        "redirect-loop",
        "redirect-loop",
        &["30", "https://www.example.test/"],
    );
    // requests gives up after 30 redirects: 31 requests were made
    assert_eq!(of_type(&ev, "http_request").len(), 31);
}

#[test]
fn too_many_redirects() {
    let ev = http_failure(
        "too-many-redirects",
        "too-many-redirects",
        &["30", "/hop/0"],
    );
    assert_eq!(of_type(&ev, "http_request").len(), 31);
    // every response was a redirect
    assert!(of_type(&ev, "http").iter().all(|h| h["status"] == 302));
}

#[test]
fn slow() {
    let (out, ev) = fetch_with_fault("slow", &[]);
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done = single(&ev, "done");
    let t = &done["timings"];
    let wait = t["ttfb_ms"].as_f64().unwrap() - t["pretransfer_ms"].as_f64().unwrap();
    assert!((5000.0..5100.0).contains(&wait), "server wait {wait} ms");
    assert!(done["har"]["wait"].as_f64().unwrap() >= 5000.0);
    assert_eq!(done["body_sha256"], sha256_hex(LAB_PAGE));
    // and with a timeout shorter than the wait, it times out in the response's wait
    let (out, ev) = fetch_with_fault("slow", &["--timeout", "2"]);
    assert_eq!(code(&out), 8);
    let error = single(&ev, "error");
    assert_eq!(error["kind"], "timeout");
}

#[test]
fn every_fault_above_is_listed() {
    // a fault added to the lab without a test here fails the help test; this keeps the
    // list itself honest (no duplicates)
    let mut names = TESTED_FAULTS.to_vec();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), TESTED_FAULTS.len());
}

// ---------------------------------------------------------------- routes

/// The value of header `name` in an `http` event.
fn header(http: &Value, name: &str) -> Option<String> {
    http["headers"].as_array()?.iter().find_map(|f| {
        (f[0].as_str()?.eq_ignore_ascii_case(name)).then(|| f[1].as_str().map(str::to_owned))?
    })
}

#[test]
fn content_and_transfer_codings_decode_to_the_text_page() {
    let text_len = TEXT_PAGE.len() as u64;
    let mut wire_sizes = Vec::new();
    for (path, coding, chunked) in [
        ("/gzip", Some("gzip"), false),
        ("/deflate", Some("deflate"), false),
        ("/deflate-raw", Some("deflate"), false),
        ("/chunked", None, true),
        ("/gzip-chunked", Some("gzip"), true),
    ] {
        let (ev, done) = fetch_ok(&format!("https://www.example.test{path}"));
        assert_eq!(done["status"], 200, "{path}");
        assert_eq!(done["body_sha256"], sha256_hex(TEXT_PAGE), "{path}");
        assert_eq!(done["body_bytes"], text_len, "{path}");
        let http = single(&ev, "http");
        assert_eq!(
            header(&http, "content-encoding").as_deref(),
            coding,
            "{path}"
        );
        assert_eq!(
            header(&http, "transfer-encoding").as_deref() == Some("chunked"),
            chunked,
            "{path}"
        );
        let wire = done["wire_body_bytes"].as_u64().unwrap();
        match (coding, header(&http, "content-length")) {
            (Some(_), Some(cl)) => {
                // compressed: what crossed the wire is what Content-Length announced
                assert_eq!(cl.parse::<u64>().ok(), Some(wire), "{path}");
                assert!(wire < text_len / 2, "{path}: {wire} of {text_len}");
            }
            (Some(_), None) => assert!(wire < text_len / 2, "{path}"),
            (None, _) => assert_eq!(wire, text_len, "{path}"),
        }
        wire_sizes.push((path, wire));
    }
    // zlib adds a 2-byte header and a 4-byte Adler-32 around the raw deflate stream
    let size = |p: &str| wire_sizes.iter().find(|(q, _)| *q == p).map(|(_, w)| *w);
    assert_eq!(
        size("/deflate")
            .zip(size("/deflate-raw"))
            .map(|(z, r)| z - r),
        Some(6)
    );
    // gzip's 10-byte header and 8-byte trailer, same stream inside
    assert_eq!(
        size("/gzip").zip(size("/deflate-raw")).map(|(g, r)| g - r),
        Some(18)
    );
}

#[test]
fn a_body_delimited_by_close() {
    let (ev, done) = fetch_ok("https://www.example.test/close");
    assert_eq!(done["status"], 200);
    assert_eq!(done["body_sha256"], sha256_hex(TEXT_PAGE));
    assert_eq!(done["wire_body_bytes"], TEXT_PAGE.len() as u64);
    let http = single(&ev, "http");
    assert_eq!(header(&http, "content-length"), None);
    assert_eq!(header(&http, "transfer-encoding"), None);
    assert_eq!(header(&http, "connection").as_deref(), Some("close"));
    // the server closed first: its FIN arrived before ours left
    let fin_rx = tcp_packets(&ev, "rx", 443)
        .into_iter()
        .find(|p| has_flag(p, "FIN"))
        .and_then(|p| p["t_us"].as_u64());
    let fin_tx = tcp_packets(&ev, "tx", 443)
        .into_iter()
        .find(|p| has_flag(p, "FIN"))
        .and_then(|p| p["t_us"].as_u64());
    assert!(
        fin_rx.is_some() && fin_rx <= fin_tx,
        "{fin_rx:?} {fin_tx:?}"
    );
}

#[test]
fn empty_and_status_routes() {
    let (_, done) = fetch_ok("https://www.example.test/empty");
    assert_eq!(
        (done["status"].as_u64(), done["body_bytes"].as_u64()),
        (Some(200), Some(0))
    );
    assert_eq!(done["body_sha256"], sha256_hex(b""));
    for status in [201u64, 204, 304, 404, 418, 500, 503] {
        let (ev, done) = fetch_ok(&format!("https://www.example.test/status/{status}"));
        assert_eq!(done["status"], status);
        let http = single(&ev, "http");
        let expected: Vec<u8> = match status {
            204 | 304 => Vec::new(),
            _ => format!("{status} {}\n", http["reason"].as_str().unwrap()).into_bytes(),
        };
        assert_eq!(done["body_sha256"], sha256_hex(&expected), "{status}");
    }
    // an interim response is skipped, the final one counts
    let (ev, done) = fetch_ok("https://www.example.test/status/103");
    assert_eq!(done["status"], 200);
    assert!(
        of_type(&ev, "note")
            .iter()
            .any(|n| n["text"].as_str().is_some_and(|t| t.contains("103"))),
        "no note about the interim response"
    );
}

#[test]
fn redirect_chains_end_at_the_page() {
    let (ev, done) = fetch_ok("https://www.example.test/redirect/3");
    assert_eq!(done["status"], 200);
    assert_eq!(done["redirects"], 3);
    assert_eq!(done["url"], "https://www.example.test/");
    assert_eq!(done["body_sha256"], sha256_hex(LAB_PAGE));
    let statuses: Vec<u64> = of_type(&ev, "http")
        .iter()
        .filter_map(|h| h["status"].as_u64())
        .collect();
    assert_eq!(statuses, [302, 302, 302, 200]);
    // same host, kept alive: one TCP connection for all four requests
    let syns = tcp_packets(&ev, "tx", 443)
        .into_iter()
        .filter(|p| has_flag(p, "SYN"))
        .count();
    assert_eq!(syns, 1);
}

#[test]
fn a_redirect_to_another_host_opens_a_new_connection() {
    let (ev, done) = fetch_ok("https://www.example.test/to-cdn");
    assert_eq!(done["status"], 200);
    assert_eq!(done["body_sha256"], sha256_hex(CDN_PAGE));
    assert_eq!(done["remote"], "10.88.0.3:443");
    let answers: Vec<(&str, &str)> = dns_events(&ev, "answer")
        .iter()
        .filter_map(|a| Some((a["name"].as_str()?, a["addresses"][0].as_str()?)))
        .collect();
    assert_eq!(
        answers,
        [
            ("www.example.test", "10.88.0.1"),
            ("cdn.example.test", "10.88.0.3")
        ]
    );
    let syn_targets: Vec<&str> = tcp_packets(&ev, "tx", 443)
        .into_iter()
        .filter(|p| has_flag(p, "SYN"))
        .filter_map(|p| p["ip"]["dst"].as_str())
        .collect();
    assert_eq!(syn_targets, ["10.88.0.1", "10.88.0.3"]);
}

#[test]
fn redirect_to_with_a_status_and_an_encoded_url() {
    let (ev, done) = fetch_ok(
        "https://www.example.test/redirect-to?url=https%3A%2F%2Fcdn.example.test%2Fbytes%2F100&status=307",
    );
    assert_eq!(done["status"], 200);
    assert_eq!(done["body_sha256"], sha256_hex(&lab_bytes(100)));
    assert_eq!(of_type(&ev, "http")[0]["status"], 307);
}

#[test]
fn cname_names_resolve_through_the_chain() {
    for (name, cnames) in [
        ("alias.example.test", vec!["www.example.test"]),
        (
            "chain.example.test",
            vec!["alias.example.test", "www.example.test"],
        ),
    ] {
        let (ev, done) = fetch_ok(&format!("https://{name}/"));
        assert_eq!(done["status"], 200);
        assert_eq!(done["body_sha256"], sha256_hex(LAB_PAGE));
        let answer = &dns_events(&ev, "answer")[0];
        let got: Vec<&str> = answer["cnames"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(got, cnames, "{name}");
        assert_eq!(answer["addresses"][0], "10.88.0.1");
    }
}

#[test]
fn plain_http_urls_are_served_on_port_80() {
    let (ev, done) = fetch_ok("http://www.example.test/gzip-chunked");
    assert_eq!(done["status"], 200);
    assert_eq!(done["body_sha256"], sha256_hex(TEXT_PAGE));
    assert_eq!(done["remote"], "10.88.0.1:80");
    assert!(
        of_type(&ev, "tls").is_empty(),
        "TLS on a plain http:// fetch"
    );
    assert!(!tcp_packets(&ev, "tx", 80).is_empty());
    // absolute redirects keep the plain scheme
    let (ev, done) = fetch_ok("http://www.example.test/redirect/2");
    assert_eq!(done["url"], "http://www.example.test/");
    let first = of_type(&ev, "http")[0].clone();
    assert_eq!(
        header(&first, "location").as_deref(),
        Some("http://www.example.test/redirect/1")
    );
}

#[test]
fn http_faults_change_only_the_answer_to_the_default_path() {
    for fault in ["truncated", "bad-status-line", "redirect-loop"] {
        let (out, ev) = fetch_with_fault(fault, &["https://www.example.test/bytes/1000"]);
        assert_eq!(
            code(&out),
            0,
            "{fault}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let done = single(&ev, "done");
        assert_eq!(done["body_sha256"], sha256_hex(&lab_bytes(1000)), "{fault}");
    }
}
