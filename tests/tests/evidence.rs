//! End-to-end tests of the evidence a fetch leaves behind: `--pcap` (opened with tshark),
//! `--keylog`/`SSLKEYLOGFILE`, `--har` (checked against a HAR 1.2 JSON schema),
//! `--ladder` and `--report` (loaded in headless Chromium). Every check compares the file
//! with the `--json` event stream of the same run, never with a stored copy.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fetchscope_tests::{
    code, events, fetchscope, have, in_ci, is_root, of_type, require, run, scratch_dir,
    workspace_root,
};
use serde_json::Value;

/// The lab's virtual clock starts here in seeded runs (2026-01-01T00:00:00Z).
const SEEDED_EPOCH_SECS: u64 = 1_767_225_600;

/// A scratch directory removed when the test ends, passed or failed.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        Scratch(scratch_dir(&format!("evidence-{tag}")))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs fetchscope and returns (exit status, events from stdout, stderr).
fn fetch_json(args: &[&str]) -> (i32, Vec<Value>, String) {
    let out = run(args);
    (code(&out), events(&out.stdout), stderr(&out))
}

fn packets(ev: &[Value]) -> Vec<&Value> {
    of_type(ev, "packet")
}

fn has_flag(p: &Value, flag: &str) -> bool {
    p["tcp"]["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == flag))
}

/// Every TLS handshake message a packet completes.
fn tls_messages(p: &Value) -> Vec<String> {
    p["tls"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["messages"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_str().map(String::from))
        .collect()
}

/// The HTTP start lines a packet completes (inside decrypted TLS records).
fn http_lines(p: &Value) -> Vec<String> {
    p["tls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["http"].as_str().map(String::from))
        .collect()
}

fn numbers(ps: &[&Value]) -> Vec<u64> {
    ps.iter().map(|p| p["number"].as_u64().unwrap()).collect()
}

/// `tshark -r file` with extra arguments; stdout lines.
fn tshark(file: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(args)
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark {args:?} failed: {}",
        stderr(&out)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect()
}

/// Frame numbers tshark shows for a display filter.
fn frames_matching(file: &Path, filter: &str) -> Vec<u64> {
    tshark(file, &["-Y", filter, "-T", "fields", "-e", "frame.number"])
        .iter()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// Packet-event numbers whose packet satisfies `pred`.
fn events_matching(ev: &[Value], pred: impl Fn(&Value) -> bool) -> Vec<u64> {
    numbers(
        &packets(ev)
            .into_iter()
            .filter(|p| pred(p))
            .collect::<Vec<_>>(),
    )
}

fn done(ev: &[Value]) -> &Value {
    of_type(ev, "done")
        .into_iter()
        .next()
        .expect("a done event")
}

// --- pcapng --------------------------------------------------------------------------

#[test]
fn pcap_opens_decrypted_in_tshark_and_matches_the_event_stream() {
    if !require(have("tshark"), "tshark is needed to read the pcapng") {
        return;
    }
    let dir = Scratch::new("pcap");
    let pcap = dir.arg("fetch.pcapng");
    let (status, ev, err) = fetch_json(&["fetch", "--json", "--seed", "7", "--pcap", &pcap]);
    assert_eq!(status, 0, "{err}");
    let pk = packets(&ev);
    let file = dir.path("fetch.pcapng");

    // One frame per packet event, same order, same length, same time (µs), same direction.
    let rows = tshark(
        &file,
        &[
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "frame.number",
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.len",
            "-e",
            "frame.packet_flags_direction",
        ],
    );
    assert_eq!(rows.len(), pk.len(), "frames vs packet events:\n{rows:#?}");
    let mut distinct_times = BTreeSet::new();
    for (row, p) in rows.iter().zip(&pk) {
        let f: Vec<&str> = row.split('|').collect();
        assert_eq!(f[0].parse::<u64>().unwrap(), p["number"].as_u64().unwrap());
        let (secs, frac) = f[1].split_once('.').expect("epoch with a fraction");
        let us = secs.parse::<u64>().unwrap() * 1_000_000 + frac[..6].parse::<u64>().unwrap();
        let t_us = p["t_us"].as_u64().unwrap();
        assert_eq!(us, SEEDED_EPOCH_SECS * 1_000_000 + t_us, "frame {row}");
        distinct_times.insert(t_us);
        assert_eq!(f[2].parse::<u64>().unwrap(), p["len"].as_u64().unwrap());
        let dir_flag = u32::from_str_radix(f[3].trim_start_matches("0x"), 16).unwrap();
        let expected = if p["dir"] == "tx" { 2 } else { 1 }; // outbound 2, inbound 1
        assert_eq!(dir_flag, expected, "direction of frame {row}");
    }
    // Per-packet timestamps, not one per poll: the lab's fetch spans many distinct times,
    // some of them not whole milliseconds.
    assert!(distinct_times.len() >= 8, "{distinct_times:?}");
    assert!(distinct_times.iter().any(|t| t % 1000 != 0));

    // No key option: the embedded secrets decrypt HTTP.
    let http = frames_matching(&file, "http");
    let want_http = events_matching(&ev, |p| !http_lines(p).is_empty());
    assert_eq!(http, want_http);
    assert_eq!(
        tshark(
            &file,
            &[
                "-Y",
                "http.request",
                "-T",
                "fields",
                "-e",
                "http.request.method",
                "-e",
                "http.request.uri"
            ]
        ),
        vec!["GET\t/".to_string()]
    );
    let req = of_type(&ev, "http")[0];
    assert_eq!(
        tshark(
            &file,
            &[
                "-Y",
                "http.response",
                "-T",
                "fields",
                "-e",
                "http.response.code"
            ]
        ),
        vec![req["status"].to_string()]
    );
    assert_eq!(
        frames_matching(&file, "dns"),
        events_matching(&ev, |p| p.get("dns").is_some())
    );
    assert_eq!(
        frames_matching(&file, "tcp.flags.fin==1"),
        events_matching(&ev, |p| has_flag(p, "FIN"))
    );
    assert_eq!(
        frames_matching(&file, "tcp.flags.syn==1"),
        events_matching(&ev, |p| has_flag(p, "SYN"))
    );
    let hs = frames_matching(&file, "tls.handshake");
    let with_hs = events_matching(&ev, |p| !tls_messages(p).is_empty());
    assert_eq!(
        hs, with_hs,
        "tls.handshake frames vs packets with handshake messages"
    );
    assert_eq!(
        frames_matching(&file, "tls.handshake.type==1"),
        events_matching(&ev, |p| tls_messages(p).iter().any(|m| m == "ClientHello"))
    );
    // Decrypted handshake messages (TLS 1.3 Certificate) are visible too.
    assert_eq!(
        frames_matching(&file, "tls.handshake.type==11"),
        events_matching(&ev, |p| tls_messages(p).iter().any(|m| m == "Certificate"))
    );
}

#[test]
fn pcap_is_complete_when_dns_fails() {
    if !require(have("tshark"), "tshark is needed to read the pcapng") {
        return;
    }
    let dir = Scratch::new("pcap-nx");
    let pcap = dir.arg("nx.pcapng");
    let (status, ev, err) = fetch_json(&[
        "fetch",
        "https://no-such-name.test/",
        "--json",
        "--seed",
        "3",
        "--pcap",
        &pcap,
    ]);
    assert_eq!(status, 4, "{err}");
    let pk = packets(&ev);
    assert!(!pk.is_empty());
    let file = dir.path("nx.pcapng");
    assert_eq!(
        frames_matching(&file, "frame"),
        numbers(&pk),
        "every packet seen before the failure is in the file"
    );
    let rcodes = tshark(
        &file,
        &[
            "-Y",
            "dns.flags.response==1",
            "-T",
            "fields",
            "-e",
            "dns.flags.rcode",
        ],
    );
    assert!(
        rcodes.iter().all(|r| r == "3"),
        "NXDOMAIN answers: {rcodes:?}"
    );
    assert!(!rcodes.is_empty());
}

#[test]
fn pcap_is_complete_when_the_fetch_times_out_mid_transfer() {
    if !require(have("tshark"), "tshark is needed to read the pcapng") {
        return;
    }
    let dir = Scratch::new("pcap-timeout");
    let pcap = dir.arg("cut.pcapng");
    // 16 MiB at 100 Mbit/s takes well over a virtual second; stop after 0.3 s.
    let (status, ev, err) = fetch_json(&[
        "fetch",
        "https://www.example.test/bytes/16777216",
        "--json",
        "--seed",
        "5",
        "--timeout",
        "0.3",
        "--pcap",
        &pcap,
    ]);
    assert_eq!(status, 8, "{err}");
    let error = of_type(&ev, "error")[0];
    assert_eq!(error["kind"], "timeout", "{error}");
    let pk = packets(&ev);
    assert!(
        pk.len() > 100,
        "the transfer had started: {} packets",
        pk.len()
    );
    let file = dir.path("cut.pcapng");
    let frames = frames_matching(&file, "frame");
    assert_eq!(frames, numbers(&pk));
    // The secrets are embedded although the fetch failed: the GET is readable.
    assert_eq!(
        tshark(
            &file,
            &[
                "-Y",
                "http.request",
                "-T",
                "fields",
                "-e",
                "http.request.uri"
            ]
        ),
        vec!["/bytes/16777216".to_string()]
    );
}

// --- key log -------------------------------------------------------------------------

#[test]
fn sslkeylogfile_is_honoured_private_and_decrypts_a_capture_without_secrets() {
    if !require(
        have("tshark") && have("editcap"),
        "tshark and editcap are needed",
    ) {
        return;
    }
    let dir = Scratch::new("keylog");
    let keys = dir.path("keys.log");
    let pcap = dir.arg("with-dsb.pcapng");
    let out = fetchscope(&["fetch", "--json", "--seed", "9", "--pcap", &pcap])
        .env("SSLKEYLOGFILE", &keys)
        .output()
        .expect("run fetchscope");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ev = events(&out.stdout);

    let text = std::fs::read_to_string(&keys).expect("SSLKEYLOGFILE was written");
    let labels: BTreeSet<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    for l in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        assert!(labels.contains(l), "{l} missing in:\n{text}");
    }
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 3, "{line}");
        assert_eq!(f[1].len(), 64, "client random is 32 bytes hex: {line}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the key log must be private");
    }

    // Strip the embedded secrets: then only the key log can decrypt.
    let stripped = dir.path("stripped.pcapng");
    let st = Command::new("editcap")
        .arg("--discard-all-secrets")
        .arg(dir.path("with-dsb.pcapng"))
        .arg(&stripped)
        .status()
        .expect("run editcap");
    assert!(st.success());
    assert!(
        frames_matching(&stripped, "http").is_empty(),
        "without secrets nothing decrypts"
    );
    let keyopt = format!("tls.keylog_file:{}", keys.display());
    let decrypted: Vec<u64> = tshark(
        &stripped,
        &[
            "-o",
            &keyopt,
            "-Y",
            "http",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
    )
    .iter()
    .map(|l| l.parse().unwrap())
    .collect();
    assert_eq!(
        decrypted,
        events_matching(&ev, |p| !http_lines(p).is_empty())
    );
}

// --- HAR -----------------------------------------------------------------------------

fn har_validator() -> jsonschema::Validator {
    let path = workspace_root().join("tests/schema/har-1.2.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the HAR schema compiles")
}

fn assert_valid_har(har: &Value) {
    let v = har_validator();
    let errors: Vec<String> = v
        .iter_errors(har)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "HAR schema errors: {errors:#?}\n{har:#}");
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn name_values(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().to_string(),
                h["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn har_is_valid_har_1_2_and_matches_the_event_stream() {
    let dir = Scratch::new("har");
    let har_path = dir.arg("fetch.har");
    let (status, ev, err) = fetch_json(&["fetch", "--json", "--seed", "7", "--har", &har_path]);
    assert_eq!(status, 0, "{err}");
    let har = read_json(&dir.path("fetch.har"));
    assert_valid_har(&har);
    let log = &har["log"];
    assert_eq!(log["version"], "1.2");
    assert_eq!(log["creator"]["name"], "fetchscope");

    let requests = of_type(&ev, "http_request");
    let responses = of_type(&ev, "http");
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), requests.len(), "one entry per exchange");
    let d = done(&ev);
    let e = &entries[0];
    let (req, resp) = (requests[0], responses[0]);

    assert_eq!(e["request"]["method"], req["method"]);
    assert_eq!(e["request"]["url"], req["url"]);
    assert_eq!(e["request"]["httpVersion"], "HTTP/1.1");
    assert_eq!(
        name_values(&e["request"]["headers"]),
        pairs(&req["headers"])
    );
    assert_eq!(e["response"]["status"], resp["status"]);
    assert_eq!(e["response"]["statusText"], resp["reason"]);
    assert_eq!(e["response"]["httpVersion"], resp["version"]);
    assert_eq!(
        name_values(&e["response"]["headers"]),
        pairs(&resp["headers"])
    );
    assert_eq!(e["response"]["content"]["size"], d["body_bytes"]);
    assert_eq!(e["response"]["bodySize"], d["wire_body_bytes"]);
    let ctype = pairs(&resp["headers"])
        .into_iter()
        .find(|(n, _)| n == "content-type")
        .unwrap()
        .1;
    assert_eq!(e["response"]["content"]["mimeType"], ctype.as_str());

    // The timings are the done event's HAR timings.
    for k in [
        "blocked", "dns", "connect", "ssl", "send", "wait", "receive",
    ] {
        let want = d["har"][k].as_f64().unwrap();
        let want = if matches!(k, "send" | "wait" | "receive") {
            want.max(0.0)
        } else {
            want
        };
        assert_eq!(e["timings"][k].as_f64().unwrap(), want, "timings.{k}");
    }
    let t = &e["timings"];
    let sum: f64 = ["blocked", "dns", "connect", "send", "wait", "receive"]
        .iter()
        .map(|k| t[k].as_f64().unwrap())
        .filter(|v| *v >= 0.0)
        .sum();
    assert!((e["time"].as_f64().unwrap() - sum).abs() < 1e-6);
    assert!(
        t["connect"].as_f64().unwrap() >= t["ssl"].as_f64().unwrap(),
        "connect includes ssl"
    );
    assert_eq!(e["startedDateTime"], "2026-01-01T00:00:00Z");

    // Server and connection as in the packets.
    let remote = d["remote"].as_str().unwrap();
    let local = d["local"].as_str().unwrap();
    assert_eq!(
        e["serverIPAddress"].as_str().unwrap(),
        remote.rsplit_once(':').unwrap().0
    );
    assert_eq!(
        e["connection"].as_str().unwrap(),
        local.rsplit_once(':').unwrap().1
    );

    // Head sizes equal what crossed the wire: the TLS record carrying the request holds
    // exactly its head; the response's record holds head and body.
    let app_len = |line: &str| {
        packets(&ev)
            .iter()
            .flat_map(|p| p["tls"].as_array().cloned().unwrap_or_default())
            .find(|r| r["http"].as_str().is_some_and(|h| h.starts_with(line)))
            .map(|r| r["app_len"].as_i64().unwrap())
            .unwrap()
    };
    assert_eq!(
        e["request"]["headersSize"].as_i64().unwrap(),
        app_len("GET ")
    );
    assert_eq!(
        e["response"]["headersSize"].as_i64().unwrap() + d["wire_body_bytes"].as_i64().unwrap(),
        app_len("HTTP/1.1 ")
    );
}

#[test]
fn har_is_written_and_valid_when_the_fetch_fails() {
    let dir = Scratch::new("har-fail");
    // DNS failure: no exchange, an empty but valid log.
    let nx = dir.arg("nx.har");
    let (status, _, err) = fetch_json(&["fetch", "https://nope.test/", "--json", "--har", &nx]);
    assert_eq!(status, 4, "{err}");
    let har = read_json(&dir.path("nx.har"));
    assert_valid_har(&har);
    assert!(har["log"]["entries"].as_array().unwrap().is_empty());

    // Timeout mid-body: one entry with the response head, timings from the events.
    let cut = dir.arg("cut.har");
    let (status, ev, err) = fetch_json(&[
        "fetch",
        "https://www.example.test/bytes/16777216",
        "--json",
        "--seed",
        "5",
        "--timeout",
        "0.3",
        "--har",
        &cut,
    ]);
    assert_eq!(status, 8, "{err}");
    let har = read_json(&dir.path("cut.har"));
    assert_valid_har(&har);
    let entries = har["log"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    let head = of_type(&ev, "http")[0];
    assert_eq!(e["response"]["status"], head["status"]);
    assert!(
        e["comment"].as_str().unwrap().contains("timed out")
            || e["comment"].as_str().unwrap().contains("timeout"),
        "{e:#}"
    );
    // wait = head time - request time, from the events.
    let t_req = of_type(&ev, "http_request")[0]["t_us"].as_u64().unwrap();
    let t_head = head["t_us"].as_u64().unwrap();
    let wait = e["timings"]["wait"].as_f64().unwrap();
    assert!(
        (wait - (t_head - t_req) as f64 / 1000.0).abs() < 1e-6,
        "{wait}"
    );
    assert!(e["timings"]["receive"].as_f64().unwrap() > 0.0);
}

#[test]
fn har_has_one_entry_per_redirect_hop_with_each_exchange_timings() {
    let dir = Scratch::new("har-redirect");
    // /redirect/3: three 302s on one kept-alive connection, then /.
    // /to-cdn: a 302 to another host: a second lookup, connection and TLS session.
    for (url, hops, reuse) in [
        ("https://www.example.test/redirect/3", 3, true),
        ("https://www.example.test/to-cdn", 1, false),
    ] {
        let path = dir.arg("r.har");
        let report = dir.arg("r.html");
        let (status, ev, err) = fetch_json(&[
            "fetch", url, "--json", "--seed", "7", "--har", &path, "--report", &report,
        ]);
        assert_eq!(status, 0, "{url}: {err}");
        let har = read_json(&dir.path("r.har"));
        assert_valid_har(&har);
        let entries = har["log"]["entries"].as_array().unwrap();
        let d = done(&ev);
        let exchanges = d["exchanges"].as_array().unwrap();
        assert_eq!(entries.len(), hops + 1, "{url}");
        assert_eq!(entries.len(), exchanges.len());
        assert_eq!(of_type(&ev, "redirect").len(), hops);
        let requests = of_type(&ev, "http_request");
        let responses = of_type(&ev, "http");
        for (i, (e, x)) in entries.iter().zip(exchanges).enumerate() {
            assert_eq!(e["request"]["url"], requests[i]["url"], "{url} entry {i}");
            assert_eq!(e["request"]["url"], x["url"]);
            assert_eq!(e["response"]["status"], responses[i]["status"]);
            let location = pairs(&responses[i]["headers"])
                .into_iter()
                .find(|(n, _)| n == "location")
                .map(|(_, v)| v)
                .unwrap_or_default();
            assert_eq!(e["response"]["redirectURL"], location.as_str());
            for k in ["blocked", "dns", "connect", "ssl"] {
                assert_eq!(e["timings"][k], x["har"][k], "{url} entry {i} {k}");
            }
            // startedDateTime = the epoch + the exchange's start on the fetch's clock.
            let us = x["started_us"].as_u64().unwrap();
            let started = e["startedDateTime"].as_str().unwrap();
            let rest = started
                .strip_prefix("2026-01-01T00:00:00")
                .and_then(|r| r.strip_suffix('Z'))
                .unwrap_or_else(|| panic!("{started}"));
            let frac = rest.strip_prefix('.').unwrap_or("");
            let got_us: u64 = format!("{frac:0<6}").parse().unwrap();
            assert_eq!(got_us, us, "{started}");
            if i > 0 {
                let same = e["connection"] == entries[i - 1]["connection"];
                assert_eq!(same, reuse, "{url}: connection of entry {i}");
                assert_eq!(x["reused_connection"], reuse);
                if reuse {
                    assert_eq!(e["timings"]["dns"], -1.0, "a reused connection has no DNS");
                }
            }
        }
        assert_eq!(entries.last().unwrap()["response"]["status"], d["status"]);
        if !reuse {
            assert_ne!(entries[0]["serverIPAddress"], entries[1]["serverIPAddress"]);
        }
        let html = std::fs::read_to_string(dir.path("r.html")).unwrap();
        assert_eq!(
            html.matches("<tr class=\"pkt\"").count(),
            packets(&ev).len()
        );
        assert_eq!(html.matches("<g class=\"exchange\"").count(), hops + 1);
    }
}

// --- ladder --------------------------------------------------------------------------

/// The arrows of a text ladder: (packet number, sent?, label). A label wrapped onto
/// continuation lines (blank margin, `|   text`) is joined back.
fn arrows(text: &str) -> Vec<(u64, bool, String)> {
    let mut out: Vec<(u64, bool, String)> = Vec::new();
    let mut last_was_arrow = false;
    for l in text.lines() {
        let Some((head, rest)) = l.split_at_checked(16) else {
            last_was_arrow = false;
            continue;
        };
        let Some(rest) = rest.strip_prefix('|') else {
            last_was_arrow = false;
            continue;
        };
        if head.trim().is_empty() {
            // A continuation line of the previous arrow's label.
            if last_was_arrow && let Some(more) = rest.strip_prefix("   ") {
                let more = more.split('|').next().unwrap().trim();
                if let Some(a) = out.last_mut() {
                    a.2.push(' ');
                    a.2.push_str(more);
                }
                continue;
            }
            last_was_arrow = false;
            continue;
        }
        let mut f = head.split_whitespace();
        let parsed = f
            .next()
            .and_then(|t| t.parse::<f64>().ok())
            .and_then(|_| f.next()?.parse::<u64>().ok());
        let Some(n) = parsed else {
            last_was_arrow = false;
            continue;
        };
        if let Some(body) = rest.strip_prefix("<-- ") {
            let end = body
                .find("-|")
                .unwrap_or_else(|| panic!("a received arrow ends at the server: {l}"));
            out.push((
                n,
                false,
                body[..end].trim_end_matches('-').trim().to_string(),
            ));
        } else if let Some(body) = rest.strip_prefix("-- ") {
            let end = body
                .find("->|")
                .unwrap_or_else(|| panic!("a sent arrow points right: {l}"));
            out.push((
                n,
                true,
                body[..end].trim_end_matches('-').trim().to_string(),
            ));
        } else {
            panic!("a packet line without an arrow: {l}");
        }
        last_was_arrow = true;
    }
    out
}

/// The label a packet must carry, derived here from its decoded layers.
fn expected_label_part(p: &Value) -> Option<String> {
    if p["dns"].is_object() {
        return Some(if p["dns"]["response"] == true {
            "DNS answer".into()
        } else {
            format!(
                "DNS query {} {}",
                p["dns"]["qtype"].as_str().unwrap(),
                p["dns"]["question"].as_str().unwrap()
            )
        });
    }
    let cleartext = p["http"]["line"].as_str().map(String::from);
    if let Some(l) = http_lines(p).first().or(cleartext.as_ref()) {
        return Some(if l.starts_with("HTTP/") {
            l.split_once(' ').unwrap().1.to_string()
        } else {
            l.rsplit_once(" HTTP/").unwrap().0.to_string()
        });
    }
    if tls_messages(p).iter().any(|m| m == "ClientHello") {
        return Some("ClientHello".into());
    }
    if tls_messages(p).iter().any(|m| m == "ServerHello") {
        return Some("ServerHello".into());
    }
    if has_flag(p, "SYN") {
        return Some(if has_flag(p, "ACK") { "SYN-ACK" } else { "SYN" }.into());
    }
    if has_flag(p, "FIN") {
        return Some("FIN".into());
    }
    None
}

fn assert_fits_80(text: &str) {
    for l in text.lines() {
        assert!(l.chars().count() <= 80, "wider than 80 columns: {l:?}");
        assert!(l.is_ascii(), "not ASCII: {l:?}");
    }
}

#[test]
fn ladder_has_one_arrow_per_packet_in_order_with_labels_from_the_layers() {
    let (status, ev, err) = fetch_json(&["fetch", "--json", "--seed", "7"]);
    assert_eq!(status, 0, "{err}");
    let out = run(&["fetch", "--seed", "7", "--ladder"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let ladder = &text[text.find("time (ms)").expect("a ladder after the fetch")..];
    assert_fits_80(ladder);

    let got = arrows(ladder);
    let pk = packets(&ev);
    assert_eq!(
        got.iter().map(|a| a.0).collect::<Vec<_>>(),
        numbers(&pk),
        "one arrow per packet, in order:\n{ladder}"
    );
    for ((n, tx, label), p) in got.iter().zip(&pk) {
        assert_eq!(*tx, p["dir"] == "tx", "direction of #{n}:\n{ladder}");
        if let Some(want) = expected_label_part(p) {
            assert!(
                label.contains(&want),
                "#{n}: {label:?} lacks {want:?}\n{ladder}"
            );
        }
    }
    // Phases are marked, in order.
    let mut pos = 0;
    for title in [
        "1. DNS lookup",
        "2. TCP handshake",
        "3. TLS handshake",
        "4. HTTP request",
    ] {
        let at = ladder[pos..]
            .find(title)
            .unwrap_or_else(|| panic!("{title} missing or out of order:\n{ladder}"));
        pos += at;
    }
    // The server column is named after the looked-up host, with its address.
    let d = done(&ev);
    let server_ip = d["remote"].as_str().unwrap().rsplit_once(':').unwrap().0;
    let head: String = ladder.lines().take(4).collect::<Vec<_>>().join("\n");
    assert!(
        head.contains("www.example.test") && head.contains(server_ip),
        "{head}"
    );
    // The client's TCP states are shown.
    for s in of_type(&ev, "tcp_state") {
        assert!(ladder.contains(&format!("[{}]", s["to"].as_str().unwrap())));
    }
}

#[test]
fn ladder_gives_each_server_its_column() {
    let out = run(&[
        "fetch",
        "https://www.example.test/to-cdn",
        "--json",
        "--seed",
        "7",
        "--ladder",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ev = events(&out.stdout);
    let text = stderr(&out);
    assert_fits_80(&text);
    let text = &text[text.find("time (ms)").expect("a ladder on stderr")..];
    let head: String = text.lines().take(4).collect::<Vec<_>>().join("\n");
    for name in [
        "www.example.test",
        "cdn.example.test",
        "10.88.0.1",
        "10.88.0.3",
    ] {
        assert!(head.contains(name), "{name} missing in:\n{head}");
    }
    // Arrows to the second server reach the last column, the others stop before it.
    let last_col = text.lines().nth(3).unwrap().rfind('|').unwrap();
    let pk = packets(&ev);
    let lines: Vec<&str> = text.lines().collect();
    for p in &pk {
        let n = p["number"].as_u64().unwrap();
        let line = lines
            .iter()
            .find(|l| {
                l.get(10..15)
                    .is_some_and(|f| f.trim().parse::<u64>().ok() == Some(n))
            })
            .unwrap_or_else(|| panic!("no arrow for #{n}:\n{text}"));
        let peer = if p["dir"] == "tx" {
            &p["ip"]["dst"]
        } else {
            &p["ip"]["src"]
        };
        let to_cdn = peer == "10.88.0.3";
        let reach = line.trim_end().len() - 1;
        let arrow_end = line[..=reach].rfind(['>', '-']).unwrap();
        assert_eq!(arrow_end + 1 == last_col, to_cdn, "#{n}: {line}");
    }
    let got = arrows(text);
    assert_eq!(got.len(), pk.len());
    // Labels wrapped in the narrower columns still carry what the layers say.
    for ((n, _, label), p) in got.iter().zip(&pk) {
        if let Some(want) = expected_label_part(p) {
            assert!(
                label.contains(&want),
                "#{n}: {label:?} lacks {want:?}\n{text}"
            );
        }
    }
}

#[test]
fn ladder_with_json_goes_to_stderr_and_stdout_stays_ndjson() {
    let out = run(&["fetch", "--json", "--seed", "7", "--ladder"]);
    assert_eq!(code(&out), 0);
    let ev = events(&out.stdout); // panics on a non-JSON line
    let err = stderr(&out);
    assert_eq!(arrows(&err).len(), packets(&ev).len(), "{err}");
}

#[test]
fn ladder_folds_a_long_transfer_and_still_accounts_for_every_packet() {
    let out = run(&[
        "fetch",
        "https://www.example.test/bytes/4194304",
        "--json",
        "--seed",
        "11",
        "--ladder",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ev = events(&out.stdout);
    let text = stderr(&out);
    assert_fits_80(&text);
    let drawn = arrows(&text);
    // "N packets #a-#b not drawn": the folds hide exactly the packets not drawn.
    let mut hidden = BTreeSet::new();
    for l in text.lines() {
        if let Some(i) = l.find(" packets #") {
            let words: Vec<&str> = l[..i].split_whitespace().collect();
            let n: u64 = words.last().unwrap().parse().unwrap();
            let range = l[i + 10..].split_whitespace().next().unwrap();
            let (a, b) = range.split_once("-#").unwrap();
            let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
            assert_eq!(n, b - a + 1, "{l}");
            hidden.extend(a..=b);
        }
    }
    assert!(!hidden.is_empty(), "a 4 MiB body is folded:\n{text}");
    let mut all: BTreeSet<u64> = drawn.iter().map(|a| a.0).collect();
    assert!(all.is_disjoint(&hidden));
    all.extend(hidden);
    assert_eq!(
        all.into_iter().collect::<Vec<_>>(),
        numbers(&packets(&ev)),
        "drawn + folded = every packet"
    );
    assert!(text.lines().count() < 200, "{} lines", text.lines().count());
}

#[test]
fn outputs_work_for_plain_http_and_ipv6() {
    let dir = Scratch::new("http-v6");
    for (url, v6) in [
        ("http://www.example.test/", false),
        ("https://www.example.test/", true),
    ] {
        let har = dir.arg("x.har");
        let pcap = dir.arg("x.pcapng");
        let mut args = vec![
            "fetch", url, "--json", "--seed", "7", "--ladder", "--har", &har, "--pcap", &pcap,
        ];
        if v6 {
            args.push("--ipv6");
        }
        let out = run(&args);
        assert_eq!(code(&out), 0, "{url}: {}", stderr(&out));
        let ev = events(&out.stdout);
        let pk = packets(&ev);
        let text = stderr(&out);
        assert_fits_80(&text);
        let got = arrows(&text);
        assert_eq!(got.iter().map(|a| a.0).collect::<Vec<_>>(), numbers(&pk));
        for ((n, _, label), p) in got.iter().zip(&pk) {
            if let Some(want) = expected_label_part(p) {
                assert!(
                    label.contains(&want),
                    "{url} #{n}: {label:?} lacks {want:?}\n{text}"
                );
            }
        }
        let h = read_json(&dir.path("x.har"));
        assert_valid_har(&h);
        let e = &h["log"]["entries"][0];
        let d = done(&ev);
        for k in ["dns", "connect", "ssl"] {
            assert_eq!(e["timings"][k], d["har"][k], "{url} {k}");
        }
        let server = d["remote"].as_str().unwrap();
        let server_ip = server.rsplit_once(':').unwrap().0.trim_matches(['[', ']']);
        assert_eq!(e["serverIPAddress"], server_ip, "{url}");
        if v6 {
            assert!(server_ip.contains(':'), "an IPv6 server: {server}");
            let head: String = text.lines().take(5).collect::<Vec<_>>().join("\n");
            assert!(head.contains(server_ip), "{head}");
        } else {
            assert_eq!(e["timings"]["ssl"], -1.0, "no TLS on http://");
        }
        if require(have("tshark"), "tshark is needed to read the pcapng") {
            let file = dir.path("x.pcapng");
            assert_eq!(frames_matching(&file, "frame"), numbers(&pk), "{url}");
            // tshark dates a response by its last segment, fetchscope by the one with the
            // start line: compare the requests, and the response's status.
            let is_request = |p: &Value| {
                let line = p["http"]["line"]
                    .as_str()
                    .map(String::from)
                    .or_else(|| http_lines(p).first().cloned())
                    .unwrap_or_default();
                line.starts_with("GET ")
            };
            assert_eq!(
                frames_matching(&file, "http.request"),
                events_matching(&ev, is_request),
                "{url}"
            );
            assert_eq!(
                tshark(
                    &file,
                    &[
                        "-Y",
                        "http.response",
                        "-T",
                        "fields",
                        "-e",
                        "http.response.code"
                    ]
                ),
                vec![d["status"].to_string()],
                "{url}"
            );
        }
    }
}

// --- HTML report ---------------------------------------------------------------------

/// Loads `file#fragment` in headless Chromium; returns (DOM, console lines).
fn chromium_dom(file: &Path, fragment: &str, profile: &Path) -> (String, Vec<String>) {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}{fragment}", file.display()))
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {}", stderr(&out));
    let console = stderr(&out)
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .map(String::from)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

#[test]
fn report_is_self_contained_and_shows_everything_from_the_events() {
    let dir = Scratch::new("report-static");
    let report = dir.arg("r.html");
    let (status, ev, err) = fetch_json(&[
        "fetch",
        "https://www.example.test/?a=1&b=<2>",
        "--json",
        "--seed",
        "7",
        "--report",
        &report,
    ]);
    assert_eq!(status, 0, "{err}");
    let html = std::fs::read_to_string(dir.path("r.html")).unwrap();
    // Self-contained: no external resource of any kind.
    for needle in ["src=\"http", "href=\"http", "@import", "url(http", "<link"] {
        assert!(!html.contains(needle), "external reference {needle:?}");
    }
    assert!(html.contains("default-src 'none'"));
    // One table row per packet.
    assert_eq!(
        html.matches("<tr class=\"pkt\"").count(),
        packets(&ev).len()
    );
    // TLS details and the certificate chain from the tls events.
    let tls = of_type(&ev, "tls");
    let last = tls.iter().rev().find(|t| t["suite"].is_string()).unwrap();
    for k in ["version", "suite", "group"] {
        assert!(html.contains(last[k].as_str().unwrap()), "TLS {k}");
    }
    let chain = tls
        .iter()
        .find_map(|t| t["certificates"].as_array())
        .unwrap();
    for c in chain {
        for k in ["subject", "issuer", "not_before", "not_after"] {
            assert!(
                html.contains(&esc(c[k].as_str().unwrap())),
                "certificate {k}"
            );
        }
    }
    // HTTP heads, escaped.
    for e in of_type(&ev, "http")
        .iter()
        .chain(&of_type(&ev, "http_request"))
    {
        for (n, v) in pairs(&e["headers"]) {
            assert!(
                html.contains(&format!("<td>{}</td><td>{}</td>", esc(&n), esc(&v))),
                "{n}: {v}"
            );
        }
    }
    let url = of_type(&ev, "http_request")[0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(url.contains('&'), "{url}");
    assert!(html.contains(&esc(&url)) && !html.contains(&format!(">{url}<")));
    // The ladder SVG has one arrow per packet.
    assert_eq!(
        html.matches("<g class=\"arrow\"").count(),
        packets(&ev).len()
    );
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[test]
fn report_loads_in_chromium_without_console_errors_and_expands_packets() {
    if !require(have("chromium"), "chromium is needed to load the report") {
        return;
    }
    let dir = Scratch::new("report");
    let report = dir.arg("report.html");
    let (status, ev, err) = fetch_json(&["fetch", "--json", "--seed", "7", "--report", &report]);
    assert_eq!(status, 0, "{err}");
    let pk = packets(&ev);
    let hello = pk
        .iter()
        .find(|p| tls_messages(p).iter().any(|m| m == "ServerHello"))
        .unwrap();
    let n = hello["number"].as_u64().unwrap();
    let (dom, console) = chromium_dom(
        &dir.path("report.html"),
        &format!("#p{n}"),
        &dir.path("profile"),
    );
    assert!(console.is_empty(), "console output: {console:#?}");
    // One row per packet in the rendered DOM; the one named in the URL is expanded by the
    // page's script into its layers.
    let rows =
        dom.matches("<tr class=\"pkt\"").count() + dom.matches("<tr class=\"pkt open\"").count();
    assert_eq!(rows, pk.len());
    assert_eq!(dom.matches("<tr class=\"pkt open\"").count(), 1);
    let detail_at = dom
        .find("<tr class=\"pkt-detail\"")
        .expect("an expanded row");
    // The detail row ends where the next packet row (or the table) begins.
    let rest = &dom[detail_at..];
    let end = rest
        .find("<tr class=\"pkt\"")
        .or_else(|| rest.find("</tbody>"))
        .unwrap();
    let detail = &rest[..end];
    for m in tls_messages(hello) {
        assert!(detail.contains(&m), "{m} missing from the expanded row");
    }
    assert!(detail.contains(hello["tls"][0]["suite"].as_str().unwrap()));
}

#[test]
fn report_of_a_failed_fetch_loads_and_names_the_failure() {
    if !require(have("chromium"), "chromium is needed to load the report") {
        return;
    }
    let dir = Scratch::new("report-fail");
    let report = dir.arg("fail.html");
    let (status, ev, _) = fetch_json(&[
        "fetch",
        "https://nothing-here.test/",
        "--json",
        "--report",
        &report,
    ]);
    assert_eq!(status, 4);
    let (dom, console) = chromium_dom(&dir.path("fail.html"), "", &dir.path("profile"));
    assert!(console.is_empty(), "console output: {console:#?}");
    assert_eq!(dom.matches("<tr class=\"pkt\"").count(), packets(&ev).len());
    assert!(dom.contains("class=\"outcome failed\""));
}

// --- through a TUN device --------------------------------------------------------------

/// The namespace lab (scripts/netns-lab.sh) under its own prefix, taken down on drop.
struct NetnsLab {
    env: Vec<(String, String)>,
}

impl NetnsLab {
    const PREFIX: &'static str = "fscev";

    fn script() -> PathBuf {
        workspace_root().join("scripts/netns-lab.sh")
    }

    fn up() -> Option<Self> {
        let out = Command::new("bash")
            .arg(Self::script())
            .arg("up")
            .env("FSC_LAB_PREFIX", Self::PREFIX)
            .output()
            .expect("run netns-lab.sh");
        let lab = NetnsLab { env: Vec::new() };
        if !out.status.success() {
            let msg = format!(
                "netns-lab.sh up failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                stderr(&out)
            );
            drop(lab);
            assert!(!in_ci(), "{msg}");
            eprintln!("skipping: {msg}");
            return None;
        }
        let env_file = format!("/tmp/fetchscope-lab-{}/lab.env", Self::PREFIX);
        let env = std::fs::read_to_string(env_file)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut lab = lab;
        lab.env = env;
        Some(lab)
    }

    fn var(&self, k: &str) -> &str {
        &self.env.iter().find(|(n, _)| n == k).unwrap().1
    }
}

impl Drop for NetnsLab {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .args(["down", "--purge"])
            .env("FSC_LAB_PREFIX", Self::PREFIX)
            .output();
    }
}

#[test]
fn evidence_outputs_work_through_a_tun_device() {
    if !require(is_root(), "root is needed for network namespaces and TUN")
        || !require(
            have("nginx") && have("dnsmasq") && have("ip") && have("openssl"),
            "nginx, dnsmasq, iproute2 and openssl are needed for the namespace lab",
        )
    {
        return;
    }
    let Some(lab) = NetnsLab::up() else {
        return;
    };
    let dir = Scratch::new("tun");
    let (har, report, pcap) = (dir.arg("t.har"), dir.arg("t.html"), dir.arg("t.pcapng"));
    let bin = fetchscope_tests::fetchscope_bin();
    let out = Command::new("ip")
        .args(["netns", "exec", lab.var("FSC_CLI_NS")])
        .arg(&bin)
        .args([
            "fetch",
            lab.var("FSC_URL"),
            "--tun",
            lab.var("FSC_TUN"),
            "--addr",
            lab.var("FSC_STACK_ADDR"),
            "--gateway",
            lab.var("FSC_GATEWAY"),
            "--dns",
            lab.var("FSC_DNS"),
            "--cacert",
            lab.var("FSC_CACERT"),
            "--timeout",
            "20",
            "--json",
            "--ladder",
            "--har",
            &har,
            "--report",
            &report,
            "--pcap",
            &pcap,
        ])
        .env("NO_COLOR", "1")
        .env_remove("SSLKEYLOGFILE")
        .output()
        .expect("run fetchscope in the namespace");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ev = events(&out.stdout);
    let pk = packets(&ev);

    // Ladder (on stderr with --json): every packet accounted for.
    let ladder = stderr(&out);
    assert_fits_80(&ladder);
    assert_eq!(
        arrows(&ladder).iter().map(|a| a.0).collect::<Vec<_>>(),
        numbers(&pk)
    );
    // HAR: valid, one entry, timings from the done event.
    let h = read_json(&dir.path("t.har"));
    assert_valid_har(&h);
    let entries = h["log"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), of_type(&ev, "http_request").len());
    let d = done(&ev);
    assert_eq!(entries[0]["timings"]["dns"], d["har"]["dns"]);
    assert_eq!(entries[0]["timings"]["ssl"], d["har"]["ssl"]);
    assert_eq!(entries[0]["response"]["status"], d["status"]);
    // Report: one row per packet.
    let html = std::fs::read_to_string(dir.path("t.html")).unwrap();
    assert_eq!(html.matches("<tr class=\"pkt\"").count(), pk.len());
    // pcapng: one frame per packet, decrypted without options.
    if require(have("tshark"), "tshark is needed to read the pcapng") {
        let file = dir.path("t.pcapng");
        assert_eq!(frames_matching(&file, "frame"), numbers(&pk));
        assert_eq!(
            frames_matching(&file, "http"),
            events_matching(&ev, |p| !http_lines(p).is_empty())
        );
    }
}
