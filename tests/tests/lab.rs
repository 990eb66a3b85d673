//! End-to-end tests of `fetchscope fetch` in the built-in lab (no root, no network).

use fetchscope_tests::{code, events, lab_bytes, of_type, run, scratch_dir, sha256_hex};
use serde_json::Value;

/// The page the lab serves at `/`, byte for byte.
const LAB_PAGE: &[u8] = include_bytes!("../../crates/fetchscope-lab/src/http/index.html");

fn packets(ev: &[Value]) -> Vec<&Value> {
    of_type(ev, "packet")
}

fn has_flag(p: &Value, flag: &str) -> bool {
    p["tcp"]["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == flag))
}

fn tls_messages(p: &Value) -> Vec<String> {
    p["tls"]
        .as_array()
        .map(|recs| {
            recs.iter()
                .flat_map(|r| {
                    r["messages"]
                        .as_array()
                        .map(|m| {
                            m.iter()
                                .filter_map(|x| x.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_else(Vec::new)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn is_app_data(r: &Value) -> bool {
    r["record"] == "application_data" && r["inner"] == "application_data"
}

#[test]
fn text_output_shows_all_six_phases_states_stages_and_timings() {
    let out = run(&["fetch"]);
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let headings = [
        "1. DNS lookup",
        "2. TCP handshake",
        "3. TLS handshake",
        "4. HTTP request",
        "5. HTTP response",
        "6. Connection teardown",
    ];
    let mut pos = 0;
    for h in headings {
        let at = text[pos..]
            .find(h)
            .unwrap_or_else(|| panic!("missing heading {h} (in order):\n{text}"));
        pos += at + h.len();
    }
    for needle in [
        "DNS query",
        "DNS answer",
        "[SYN]",
        "[SYN, ACK]",
        "CLOSED → SYN-SENT",
        "SYN-SENT → ESTABLISHED",
        "ClientHello sni=www.example.test alpn=http/1.1",
        "ServerHello TLSv1.3",
        "certificate chain",
        "handshake complete",
        "GET / HTTP/1.1",
        "HTTP/1.1 200 OK",
        "close_notify",
        "FIN-WAIT-1",
        "Timings (ms)",
        "cumulative, like curl -w",
        "per phase, like HAR",
        "sha256",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // every packet line carries a time in ms and a direction
    let packet_lines = text
        .lines()
        .filter(|l| l.contains(" → #") || l.contains(" ← #"));
    assert!(packet_lines.clone().count() >= 12, "{text}");
    for l in packet_lines {
        assert!(l.split_whitespace().nth(1) == Some("ms"), "{l}");
    }
}

#[test]
fn seeded_json_runs_are_identical_and_follow_the_contract() {
    let a = run(&["fetch", "--json", "--seed", "7"]);
    let b = run(&["fetch", "--json", "--seed", "7"]);
    assert_eq!(code(&a), 0);
    assert_eq!(a.stdout, b.stdout, "two runs with --seed 7 differ");
    let ev = events(&a.stdout);
    for e in &ev {
        assert!(e["type"].is_string() && e["t_us"].is_u64(), "{e}");
    }
    // times never go backwards
    let times: Vec<u64> = ev.iter().map(|e| e["t_us"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let phases: Vec<&str> = of_type(&ev, "phase")
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        [
            "resolve", "connect", "tls", "request", "response", "teardown", "done"
        ]
    );
    let pk = packets(&ev);
    for p in &pk {
        for f in ["dir", "len", "phase", "summary", "ip"] {
            assert!(!p[f].is_null(), "packet without {f}: {p}");
        }
        assert!(p["dir"] == "tx" || p["dir"] == "rx");
        if let Some(tcp) = p.get("tcp") {
            for f in [
                "src_port",
                "dst_port",
                "flags",
                "seq",
                "ack",
                "win",
                "payload_len",
                "seq_raw",
                "ack_raw",
            ] {
                assert!(!tcp[f].is_null(), "tcp without {f}: {p}");
            }
        }
        if let Some(dns) = p.get("dns") {
            for f in ["id", "response", "question", "answers"] {
                assert!(!dns[f].is_null(), "dns without {f}: {p}");
            }
            assert!(!p["udp"]["src_port"].is_null());
        }
    }
    // The packets include, in order: DNS query and answer, SYN, SYN-ACK, ACK, ClientHello,
    // ServerHello, the GET (first application data from the client), the response and a
    // FIN from each side.
    let find = |from: usize, pred: &dyn Fn(&Value) -> bool, what: &str| -> usize {
        pk.iter()
            .skip(from)
            .position(|p| pred(p))
            .map(|i| i + from)
            .unwrap_or_else(|| panic!("no {what} after packet index {from}"))
    };
    let q = find(
        0,
        &|p| p["dns"]["response"] == false && p["dir"] == "tx",
        "DNS query",
    );
    let a = find(
        q + 1,
        &|p| p["dns"]["response"] == true && p["dir"] == "rx",
        "DNS answer",
    );
    assert_eq!(pk[a]["dns"]["answers"][0]["data"], "10.88.0.1");
    let syn = find(a + 1, &|p| has_flag(p, "SYN") && !has_flag(p, "ACK"), "SYN");
    assert_eq!(pk[syn]["dir"], "tx");
    assert_eq!(pk[syn]["tcp"]["seq"], 0);
    let synack = find(
        syn + 1,
        &|p| has_flag(p, "SYN") && has_flag(p, "ACK"),
        "SYN-ACK",
    );
    assert_eq!(pk[synack]["dir"], "rx");
    let ack = find(
        synack + 1,
        &|p| p["dir"] == "tx" && has_flag(p, "ACK"),
        "ACK",
    );
    assert_eq!(
        pk[ack]["tcp"]["payload_len"], 0,
        "the handshake's ACK is a bare ACK"
    );
    assert_eq!(pk[ack]["tcp"]["ack"], 1);
    let ch = find(
        ack + 1,
        &|p| tls_messages(p).contains(&"ClientHello".to_string()),
        "ClientHello",
    );
    assert_eq!(pk[ch]["tls"][0]["sni"], "www.example.test");
    let sh = find(
        ch + 1,
        &|p| tls_messages(p).contains(&"ServerHello".to_string()),
        "ServerHello",
    );
    assert_eq!(pk[sh]["dir"], "rx");
    let get = find(
        sh + 1,
        &|p| {
            p["dir"] == "tx"
                && p["tls"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(is_app_data))
        },
        "client application data",
    );
    let first_app = pk[get]["tls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| is_app_data(r))
        .unwrap();
    assert_eq!(first_app["http"], "GET / HTTP/1.1", "{first_app}");
    let resp = find(
        get + 1,
        &|p| {
            p["dir"] == "rx"
                && p["tls"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|x| x["http"] == "HTTP/1.1 200 OK"))
        },
        "response",
    );
    let fin_tx = find(
        resp + 1,
        &|p| p["dir"] == "tx" && has_flag(p, "FIN"),
        "client FIN",
    );
    let fin_rx = find(
        resp + 1,
        &|p| p["dir"] == "rx" && has_flag(p, "FIN"),
        "server FIN",
    );
    assert!(fin_tx > resp && fin_rx > resp);
    // state changes and TLS stages
    let states: Vec<(String, String)> = of_type(&ev, "tcp_state")
        .iter()
        .map(|s| {
            (
                s["from"].as_str().unwrap().into(),
                s["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(states[0], ("CLOSED".into(), "SYN-SENT".into()));
    assert_eq!(states[1], ("SYN-SENT".into(), "ESTABLISHED".into()));
    let last = &states.last().unwrap().1;
    assert!(
        ["FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "CLOSED"].contains(&last.as_str()),
        "{states:?}"
    );
    let stages: Vec<&str> = of_type(&ev, "tls")
        .iter()
        .map(|t| t["stage"].as_str().unwrap())
        .collect();
    for s in [
        "client_hello_sent",
        "server_hello",
        "certificate_verified",
        "handshake_complete",
    ] {
        assert!(stages.contains(&s), "{stages:?}");
    }
    let sh_ev = of_type(&ev, "tls")
        .into_iter()
        .find(|t| t["stage"] == "server_hello")
        .unwrap();
    assert_eq!(sh_ev["version"], "TLSv1.3");
    assert!(sh_ev["suite"].as_str().unwrap().starts_with("TLS13_"));
    let http = of_type(&ev, "http");
    assert_eq!(http[0]["status"], 200);
    assert!(
        http[0]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h[0] == "content-type")
    );
    let done = of_type(&ev, "done");
    assert_eq!(done.len(), 1);
    let d = done[0];
    assert_eq!(d["status"], 200);
    assert_eq!(d["body_bytes"], LAB_PAGE.len());
    assert_eq!(d["body_sha256"], sha256_hex(LAB_PAGE));
    let t = &d["timings"];
    let keys = ["dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "total_ms"];
    let vals: Vec<f64> = keys.iter().map(|k| t[k].as_f64().unwrap()).collect();
    assert!(
        vals.windows(2).all(|w| w[0] <= w[1]),
        "curl timings are cumulative: {t}"
    );
    assert!(vals[0] > 0.0, "DNS takes a round trip in the lab: {t}");
    // the last event is the done event
    assert_eq!(ev.last().unwrap()["type"], "done");
}

#[test]
fn unseeded_runs_use_fresh_randomness() {
    let a = events(&run(&["fetch", "--json"]).stdout);
    let b = events(&run(&["fetch", "--json"]).stdout);
    let syn = |ev: &[Value]| {
        packets(ev)
            .into_iter()
            .find(|p| has_flag(p, "SYN"))
            .map(|p| (p["tcp"]["seq_raw"].clone(), p["tcp"]["src_port"].clone()))
            .unwrap()
    };
    assert_ne!(
        syn(&a),
        syn(&b),
        "ISN and port should differ between unseeded runs"
    );
}

#[test]
fn output_file_holds_exactly_the_served_page() {
    let dir = scratch_dir("page");
    let path = dir.join("out.html");
    let out = run(&["fetch", "-o", path.to_str().unwrap(), "--json"]);
    assert_eq!(code(&out), 0);
    let body = std::fs::read(&path).unwrap();
    assert_eq!(sha256_hex(&body), sha256_hex(LAB_PAGE));
    let done = events(&out.stdout)
        .into_iter()
        .find(|e| e["type"] == "done")
        .unwrap();
    assert_eq!(done["body_sha256"], sha256_hex(&body));
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(target_os = "linux")]
fn max_rss_kib_of(args: &[&str]) -> (i32, i64) {
    // Run through a shell that reports the child's peak RSS from /proc before it is
    // reaped: simplest portable way is getrusage(RUSAGE_CHILDREN) in a fresh process,
    // so use python3 if present, else /usr/bin/time.
    let bin = fetchscope_tests::fetchscope_bin();
    let script = "import resource,subprocess,sys\n\
        r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL)\n\
        print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&bin)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("python3 is needed to measure peak memory");
    let s = String::from_utf8(out.stdout).unwrap();
    let mut it = s.split_whitespace();
    let code: i32 = it.next().unwrap().parse().unwrap();
    let rss: i64 = it.next().unwrap().parse().unwrap();
    (code, rss)
}

#[test]
fn a_16_mib_body_streams_to_disk_with_the_right_digest_and_bounded_memory() {
    const N: usize = 16 * 1024 * 1024;
    let dir = scratch_dir("big");
    let path = dir.join("big.bin");
    let url = format!("https://www.example.test/bytes/{N}");
    let (code, rss_kib) = max_rss_kib_of(&["fetch", &url, "-o", path.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0);
    let body = std::fs::read(&path).unwrap();
    assert_eq!(body.len(), N);
    assert_eq!(sha256_hex(&body), sha256_hex(&lab_bytes(N)));
    // The body is streamed: peak memory does not grow with the body. Compare with a
    // 1 KB fetch of the same kind; the big one also fills the lab server's 2 MiB send
    // buffer and the client's 1 MiB window, which a 1 KB fetch leaves untouched.
    let small = dir.join("small.bin");
    let (code, small_kib) = max_rss_kib_of(&[
        "fetch",
        "https://www.example.test/bytes/1000",
        "-o",
        small.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0);
    assert!(
        rss_kib < small_kib + (4 + 3) * 1024,
        "peak RSS {rss_kib} KiB for 16 MiB vs {small_kib} KiB for 1 KB: is the body held in memory?"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn unknown_names_fail_in_dns_with_a_hint_and_exit_4() {
    let out = run(&["fetch", "https://www.example.com/", "--json"]);
    assert_eq!(code(&out), 4);
    let ev = events(&out.stdout);
    let err = of_type(&ev, "error");
    assert_eq!(err.len(), 1);
    assert_eq!(err[0]["phase"], "resolve");
    assert_eq!(err[0]["kind"], "nxdomain");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("NXDOMAIN") && stderr.contains("--tun"),
        "{stderr}"
    );
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one clear sentence: {stderr}"
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["fetch", "ftp://www.example.test/"],
        vec!["fetch", "--timeout", "-1"],
        vec!["fetch", "--resolve", "nonsense"],
        vec!["fetch", "--tun", "fsc9"],
        vec!["fetch", "--dns", "10.0.0.1"],
        vec!["nonsense"],
    ] {
        let out = run(&args);
        assert_eq!(
            code(&out),
            2,
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stderr.is_empty(), "{args:?} says nothing");
    }
}

#[test]
fn resolve_skips_dns() {
    let out = run(&[
        "fetch",
        "--json",
        "--resolve",
        "www.example.test:443:10.88.0.1",
    ]);
    assert_eq!(code(&out), 0);
    let ev = events(&out.stdout);
    assert!(packets(&ev).iter().all(|p| p["dns"].is_null()));
    let dns = of_type(&ev, "dns");
    assert_eq!(dns[0]["event"], "skipped");
}

#[test]
fn bytes_route_and_json_stdout_holds_only_json() {
    let out = run(&[
        "fetch",
        "https://www.example.test/bytes/100000",
        "--json",
        "--seed",
        "3",
    ]);
    assert_eq!(code(&out), 0);
    let ev = events(&out.stdout); // panics on any non-JSON line
    let done = ev.last().unwrap();
    assert_eq!(done["type"], "done");
    assert_eq!(done["body_sha256"], sha256_hex(&lab_bytes(100_000)));
}

#[test]
fn keylog_file_gets_nss_lines() {
    let dir = scratch_dir("keylog");
    let path = dir.join("keys.txt");
    let out = run(&["fetch", "--keylog", path.to_str().unwrap()]);
    assert_eq!(code(&out), 0);
    let text = std::fs::read_to_string(&path).unwrap();
    let labels: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    for l in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        assert!(labels.contains(&l), "{text}");
    }
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts.len(), 3, "{line}");
        assert_eq!(parts[1].len(), 64, "client random is 32 bytes: {line}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn ipv6_in_the_lab_asks_for_aaaa_and_a_and_connects_over_ipv6() {
    let out = run(&["fetch", "--ipv6", "--json", "--seed", "5"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let ev = events(&out.stdout);
    let asked: Vec<&str> = of_type(&ev, "dns")
        .iter()
        .filter(|d| d["event"] == "query")
        .map(|d| d["qtype"].as_str().unwrap())
        .collect();
    assert_eq!(asked, ["AAAA", "A"]);
    let syn = packets(&ev)
        .into_iter()
        .find(|p| has_flag(p, "SYN"))
        .unwrap();
    assert_eq!(syn["ip"]["version"], 6, "{syn}");
    assert_eq!(syn["ip"]["dst"], "fd00:88::1");
    let done = ev.last().unwrap();
    assert_eq!(done["body_sha256"], sha256_hex(LAB_PAGE));
    assert!(
        done["remote"].as_str().unwrap().contains("fd00:88::1"),
        "{done}"
    );
}
