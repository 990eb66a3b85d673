//! fetchscope ends where `requests.get()` ends: in the namespace lab (real nginx, real
//! dnsmasq), the final status, the decoded body's digest and the number of redirects
//! equal what Python's requests returns for the same URLs — a redirect chain, a cross-host
//! redirect, a gzip + chunked page, CNAME names — and both refuse nginx's wrong-name and
//! unknown-CA certificates.
//!
//! Needs root and the namespace lab's tools, plus python3 with requests (scripts/test.sh
//! installs python3-requests); skips with a reason otherwise, fails under `CI=true`.

use fetchscope_tests::netns::{COMMAND_LIMIT, NsLab, output_within};
use fetchscope_tests::{code, events, fetchscope_bin, have, of_type, require, workspace_root};
use serde_json::Value;

/// The lab's name prefix for this test binary.
const PREFIX: &str = "fspar";

fn python_requests() -> bool {
    require(
        have("python3")
            && std::process::Command::new("python3")
                .args(["-c", "import requests"])
                .status()
                .is_ok_and(|s| s.success()),
        "python3 with requests is needed (Debian package python3-requests)",
    )
}

/// `fetchscope fetch URL --json` through the lab's TUN device.
fn fetchscope_json(lab: &NsLab, url: &str) -> (i32, Vec<Value>, String) {
    let mut cmd = lab.in_cli(fetchscope_bin());
    cmd.args(["fetch", url, "--json", "--timeout", "60"])
        .args(lab.tun_args());
    let out = output_within(cmd, COMMAND_LIMIT);
    (
        code(&out),
        events(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What requests says for `url`, run in the client namespace.
fn requests_json(lab: &NsLab, url: &str) -> Value {
    let mut cmd = lab.in_cli("python3");
    cmd.arg(workspace_root().join("tests/support/requests_get.py"))
        .args([url, lab.var("FSC_CACERT"), lab.var("FSC_DNS")]);
    let out = output_within(cmd, COMMAND_LIMIT);
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "requests_get.py said something that is not JSON ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn final_status_body_and_redirects_equal_requests() {
    if !python_requests() {
        return;
    }
    let Some(lab) = NsLab::up(PREFIX) else { return };
    let urls = [
        "https://www.example.test/redirect/3",
        "https://www.example.test/to-cdn",
        "https://www.example.test/gzip/",
        "https://alias.example.test/",
        "https://chain.example.test/",
        "http://www.example.test/",
    ];
    for url in urls {
        let theirs = requests_json(&lab, url);
        assert!(
            theirs["error"].is_null(),
            "requests failed on {url}: {theirs}"
        );
        let (status, ev, stderr) = fetchscope_json(&lab, url);
        assert_eq!(status, 0, "fetchscope failed on {url}: {stderr}");
        let done = of_type(&ev, "done");
        assert_eq!(done.len(), 1, "{url}");
        let d = done[0];
        assert_eq!(d["status"], theirs["status"], "{url}: status");
        assert_eq!(d["body_sha256"], theirs["sha256"], "{url}: body digest");
        assert_eq!(d["body_bytes"], theirs["body_bytes"], "{url}: body size");
        let hops = theirs["history"].as_array().unwrap().len();
        assert_eq!(d["redirects"], hops, "{url}: redirects");
        assert_eq!(of_type(&ev, "redirect").len(), hops, "{url}");
        assert_eq!(d["url"], theirs["url"], "{url}: final URL");
    }
    // The gzip page really was gzip and chunked on the wire.
    let (_, ev, _) = fetchscope_json(&lab, "https://www.example.test/gzip/");
    let head = of_type(&ev, "http")[0];
    let header = |name: &str| {
        head["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == name)
            .map(|h| h[1].as_str().unwrap().to_string())
    };
    assert_eq!(header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(header("transfer-encoding").as_deref(), Some("chunked"));
    let done = of_type(&ev, "done")[0];
    assert!(done["wire_body_bytes"].as_u64() < done["body_bytes"].as_u64());
    // The CNAME chain shows in the DNS answer.
    let (_, ev, _) = fetchscope_json(&lab, "https://chain.example.test/");
    let answer = of_type(&ev, "dns")
        .into_iter()
        .find(|d| d["event"] == "answer")
        .unwrap();
    assert_eq!(
        answer["cnames"],
        serde_json::json!(["alias.example.test", "www.example.test"])
    );
}

#[test]
fn wrong_name_and_unknown_ca_certificates_fail_like_requests() {
    if !python_requests() {
        return;
    }
    let Some(lab) = NsLab::up(PREFIX) else { return };
    for (url, why) in [
        ("https://wrong.example.test/", "not valid for the name"),
        ("https://untrusted.example.test/", "unknown issuer"),
        ("https://expired.example.test/", "expired"),
        ("https://self-signed.example.test/", "unknown issuer"),
    ] {
        let theirs = requests_json(&lab, url);
        assert_eq!(theirs["error"], "SSLError", "requests on {url}: {theirs}");
        let (status, ev, stderr) = fetchscope_json(&lab, url);
        assert_eq!(status, 6, "{url}: {stderr}");
        let err = of_type(&ev, "error");
        assert_eq!(err.len(), 1, "{url}");
        assert_eq!(err[0]["phase"], "tls");
        assert_eq!(err[0]["kind"], "certificate");
        assert!(
            err[0]["message"].as_str().unwrap().contains(why),
            "{url}: {}",
            err[0]["message"]
        );
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        // The handshake got as far as the ServerHello before the certificate was refused.
        assert!(
            of_type(&ev, "tls")
                .iter()
                .any(|t| t["stage"] == "server_hello"),
            "{url}"
        );
    }
}

#[test]
fn several_dns_servers_move_on_when_one_is_unreachable() {
    let Some(lab) = NsLab::up(PREFIX) else { return };
    // 10.88.0.9 is on the server network but nobody has it: the kernel's ARP fails and
    // it answers our queries with ICMP host unreachable.
    let mut cmd = lab.in_cli(fetchscope_bin());
    cmd.args([
        "fetch",
        "https://www.example.test/",
        "--json",
        "--timeout",
        "60",
    ])
    .args([
        "--tun",
        lab.var("FSC_TUN"),
        "--addr",
        lab.var("FSC_STACK_ADDR"),
    ])
    .args(["--cacert", lab.var("FSC_CACERT")])
    .args(["--dns", "10.88.0.9", "--dns", lab.var("FSC_DNS")]);
    let out = output_within(cmd, COMMAND_LIMIT);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let ev = events(&out.stdout);
    let dns = of_type(&ev, "dns");
    let asked: Vec<&str> = dns
        .iter()
        .filter(|d| d["event"] == "query" || d["event"] == "retry")
        .map(|d| d["server"].as_str().unwrap())
        .collect();
    assert_eq!(asked.first(), Some(&"10.88.0.9"), "{asked:?}");
    assert_eq!(asked.last(), Some(&lab.var("FSC_DNS")), "{asked:?}");
    let answer = dns.iter().find(|d| d["event"] == "answer").unwrap();
    assert_eq!(answer["server"], lab.var("FSC_DNS"));
    let unreachable = of_type(&ev, "packet").into_iter().any(|p| {
        p["icmp"]["name"]
            .as_str()
            .is_some_and(|n| n.contains("unreachable"))
    });
    assert!(unreachable, "the kernel's ICMP error is in the trace");
    // ... and it is why the next server was asked (the ICMP's quoted query matched ours).
    assert!(
        dns.iter().any(|d| d["reason"].as_str().is_some_and(|r| r
            .contains("10.88.0.9 is unreachable")
            && r.contains("asking the next server"))),
        "no switch because of the ICMP error: {dns:?}"
    );
}
