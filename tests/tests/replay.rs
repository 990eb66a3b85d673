//! End-to-end tests of `fetchscope replay FILE` and `fetchscope step --replay FILE`: a
//! capture replayed into the event stream a live fetch gives.
//!
//! The oracles are independent of the replay: the live `fetch --json` that wrote the
//! capture (its packets, its digest), the lab's own files (`files.sha256`), what curl and
//! requests themselves report, and tshark's reading of the same capture file.
//!
//! The built-in-lab tests need nothing. The namespace-lab tests bring up their own lab
//! under the prefix [`PREFIX`] (namespaces `fsrpl-srv`/`fsrpl-cli`, TUN `fsrpl0`) and take
//! it down again, also when they fail; they need root, tcpdump, tshark, curl, python3 with
//! requests and nft. tmux is needed for the terminal test. A missing prerequisite skips a
//! test with the reason, or fails it under `CI=true`.

use fetchscope_tests::tmux::Tmux;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use fetchscope_tests::netns::{Background, COMMAND_LIMIT, NsLab, Scratch, kill, output_within};
use fetchscope_tests::{
    code, events, fetchscope, fetchscope_bin, have, lab_bytes, of_type, require, sha256_hex,
};
use serde_json::Value;

/// The namespace lab's name prefix for this test binary (see `FSC_LAB_PREFIX`).
const PREFIX: &str = "fsrpl";

// ------------------------------------------------------------------ running things

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// `fetchscope ARGS` (built-in lab or replay), killed after [`COMMAND_LIMIT`].
fn fsc(args: &[&str]) -> Output {
    output_within(fetchscope(args), COMMAND_LIMIT)
}

/// Runs `cmd` with `input` on its stdin (a closed pipe after it is fine: the process may
/// stop reading early); kills it and panics after `limit`.
fn run_with_input(mut cmd: Command, input: Vec<u8>, limit: Duration) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap_or_else(|e| panic!("waiting for {cmd:?}: {e}")),
        Err(_) => {
            kill(pid, "KILL");
            panic!("{cmd:?} did not finish within {limit:?} and was killed");
        }
    }
}

/// Asserts exit 0 and returns the NDJSON events.
fn completed(out: &Output, what: &str) -> Vec<Value> {
    assert_eq!(
        code(out),
        0,
        "{what}: exit status; stderr:\n{}",
        stderr_of(out)
    );
    events(&out.stdout)
}

/// The single `done` event.
fn done_of<'a>(ev: &'a [Value], what: &str) -> &'a Value {
    let done = of_type(ev, "done");
    assert_eq!(done.len(), 1, "{what}: one done event expected");
    done[0]
}

/// A lab fetch (`fetchscope fetch URL --json --pcap PCAP EXTRA`): its events.
fn live_fetch_with_pcap(url: &str, pcap: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["fetch", url, "--json", "--pcap", path_str(pcap)];
    args.extend_from_slice(extra);
    let out = fsc(&args);
    completed(&out, &format!("fetch {url} {extra:?}"))
}

/// `fetchscope replay PCAP --json EXTRA`: its events (exit 0 asserted).
fn replay_json(pcap: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["replay", path_str(pcap), "--json"];
    args.extend_from_slice(extra);
    let out = fsc(&args);
    completed(&out, &format!("replay {} {extra:?}", pcap.display()))
}

// ------------------------------------------------------------------ comparing packets

/// True for a packet the fault injection dropped on its way in: it never reached the
/// stack, nor the `--pcap` file.
fn dropped_on_the_way_in(p: &Value) -> bool {
    p["dir"] == "rx" && p["fault"]["dropped"] == true
}

/// The packet events, without the ones dropped on the way in.
fn wire_packets(ev: &[Value]) -> Vec<&Value> {
    of_type(ev, "packet")
        .into_iter()
        .filter(|p| !dropped_on_the_way_in(p))
        .collect()
}

/// What the brief says must be the same of a packet, live and replayed: direction, TCP
/// flags, relative seq and ack, payload length, TCP analysis, the TLS records' message
/// names; for UDP the ports and the DNS id.
fn packet_key(p: &Value) -> Value {
    let tls: Vec<Value> = p["tls"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .map(|r| serde_json::json!([r["record"], r["message"], r["messages"]]))
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "dir": p["dir"],
        "flags": p["tcp"]["flags"],
        "seq": p["tcp"]["seq"],
        "ack": p["tcp"]["ack"],
        "seq_raw": p["tcp"]["seq_raw"],
        "ack_raw": p["tcp"]["ack_raw"],
        "payload_len": p["tcp"]["payload_len"],
        "analysis": p["tcp"]["analysis"],
        "tls": tls,
        "udp": [p["udp"]["src_port"], p["udp"]["dst_port"]],
        "dns_id": p["dns"]["id"],
    })
}

/// A packet event without what only a live fetch can know (its phase, counted with the
/// packets dropped on the way in, the stack's recovery notes, the fault injection) and its
/// time (compared separately).
fn without_live_only(p: &Value) -> Value {
    let mut p = p.clone();
    if let Some(o) = p.as_object_mut() {
        for k in ["phase", "number", "recovery", "fault", "t_us"] {
            o.remove(k);
        }
    }
    p
}

/// The live run's packets (less the ones dropped on the way in) and the replay's are the
/// same, packet for packet; the replay's times are the live ones shifted by one constant
/// (t = 0 is the capture's first packet).
fn assert_same_packets(live: &[Value], replay: &[Value], what: &str) {
    let ours = wire_packets(live);
    let theirs = of_type(replay, "packet");
    assert!(!ours.is_empty(), "{what}: the live run has packets");
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{what}: the live run shows {} packets that reached the wire, the replay {}",
        ours.len(),
        theirs.len()
    );
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(
            packet_key(a),
            packet_key(b),
            "{what}: packet {} differs\nlive:   {a}\nreplay: {b}",
            i + 1
        );
    }
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(
            without_live_only(a),
            without_live_only(b),
            "{what}: packet {} differs beyond its phase and number\nlive:   {a}\nreplay: {b}",
            i + 1
        );
    }
    let t = |p: &Value| p["t_us"].as_i64().unwrap_or_else(|| panic!("t_us: {p}"));
    let offset = t(ours[0]) - t(theirs[0]);
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(
            t(a) - t(b),
            offset,
            "{what}: packet {} is at {} µs live and {} µs in the replay (offset {offset} µs for the first)",
            i + 1,
            t(a),
            t(b)
        );
    }
}

/// The outcome of a fetch as its `done` event states it.
fn outcome(done: &Value) -> Value {
    let exchanges: Vec<Value> = done["exchanges"]
        .as_array()
        .map(|x| {
            x.iter()
                .map(|e| {
                    serde_json::json!([
                        e["url"],
                        e["method"],
                        e["status"],
                        e["body_bytes"],
                        e["request_headers"],
                        e["response_headers"]
                    ])
                })
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "status": done["status"],
        "body_sha256": done["body_sha256"],
        "body_bytes": done["body_bytes"],
        "redirects": done["redirects"],
        "exchanges": exchanges,
    })
}

/// Packets whose TCP analysis names `what` (a substring: "retransmission" counts
/// fast retransmissions too).
fn analysed_as(packets: &[&Value], what: &str) -> usize {
    packets
        .iter()
        .filter(|p| {
            p["tcp"]["analysis"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x.as_str().is_some_and(|s| s.contains(what)))
            })
        })
        .count()
}

// ------------------------------------------------------------------ A: the built-in lab

/// A seeded lab fetch written with `--pcap`, replayed: the same packets (count, and per
/// packet direction, flags, seq, ack, payload length, TLS messages, TCP analysis, and
/// every other field but the live-only ones) and the same outcome. For the home page, 200
/// kB, and 200 kB through 5 % loss (retransmissions; the packets dropped on the way in are
/// not in the file).
#[test]
fn replay_of_a_lab_capture_gives_the_live_packets_and_digest() {
    let dir = Scratch::new("replay-lab");
    let cases: [(&str, &str, &[&str]); 3] = [
        ("home page", "https://www.example.test/", &["--seed", "1"]),
        (
            "200 kB",
            "https://www.example.test/bytes/200000",
            &["--seed", "2"],
        ),
        (
            "200 kB with 5 % loss",
            "https://www.example.test/bytes/200000",
            &["--loss", "5", "--seed", "3"],
        ),
    ];
    for (i, (what, url, extra)) in cases.iter().enumerate() {
        let pcap = dir.join(format!("lab{i}.pcapng"));
        let live = live_fetch_with_pcap(url, &pcap, extra);
        let replay = replay_json(&pcap, &[]);
        assert_same_packets(&live, &replay, what);
        let (live_done, replay_done) = (done_of(&live, what), done_of(&replay, what));
        assert_eq!(live_done["status"], 200, "{what}");
        assert_eq!(
            outcome(replay_done),
            outcome(live_done),
            "{what}: the replay's outcome"
        );
        if url.ends_with("/bytes/200000") {
            assert_eq!(
                replay_done["body_sha256"],
                sha256_hex(&lab_bytes(200_000)),
                "{what}: the lab's /bytes/200000 body"
            );
        }
        assert!(
            of_type(&replay, "error").is_empty(),
            "{what}: no error in the replay"
        );
        // The replay's TCP states are inferred and say so.
        let states = of_type(&replay, "tcp_state");
        assert!(!states.is_empty(), "{what}: tcp_state events");
        for s in &states {
            assert_eq!(s["inferred"], true, "{what}: {s}");
        }
        let to: Vec<&Value> = states.iter().map(|s| &s["to"]).collect();
        assert!(to.contains(&&Value::from("ESTABLISHED")), "{what}: {to:?}");
        if extra.contains(&"--loss") {
            let dropped_in = of_type(&live, "packet")
                .into_iter()
                .filter(|p| dropped_on_the_way_in(p))
                .count();
            assert!(
                dropped_in > 0,
                "{what}: the fault injection dropped packets on the way in"
            );
            let packets = of_type(&replay, "packet");
            assert!(
                analysed_as(&packets, "retransmission") > 0,
                "{what}: the replay shows retransmissions"
            );
        }
    }
}

/// The same file replayed twice gives the same bytes, as NDJSON and as text; `-` reads
/// the capture from stdin and gives the same events.
#[test]
fn replay_is_deterministic_and_reads_stdin() {
    let dir = Scratch::new("replay-determinism");
    let pcap = dir.join("loss.pcapng");
    live_fetch_with_pcap(
        "https://www.example.test/bytes/200000",
        &pcap,
        &["--loss", "5", "--seed", "3"],
    );
    let file = path_str(&pcap);
    for args in [
        &["replay", file, "--json"][..],
        &["replay", file, "--color", "never"],
    ] {
        let first = fsc(args);
        let second = fsc(args);
        assert_eq!(code(&first), 0, "{args:?}: {}", stderr_of(&first));
        assert!(!first.stdout.is_empty(), "{args:?}: output");
        assert!(
            first.stdout == second.stdout,
            "{args:?}: two replays of the same file differ"
        );
    }
    let bytes = fs::read(&pcap).expect("the capture");
    let from_stdin = run_with_input(fetchscope(&["replay", "-", "--json"]), bytes, COMMAND_LIMIT);
    assert_eq!(code(&from_stdin), 0, "{}", stderr_of(&from_stdin));
    let from_file = fsc(&["replay", file, "--json"]);
    assert!(
        from_stdin.stdout == from_file.stdout,
        "replay - < FILE differs from replay FILE"
    );
}

/// The arrows of a ladder diagram (one per packet), in order.
fn ladder_arrows(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains("|-- ") || l.contains("|<-- "))
        .map(str::to_string)
        .collect()
}

/// `--ladder`, `--har`, `--report`, `--pcap` and `-w` work on a replay: the ladder's
/// arrows, the HAR's entries, the report's sections and the `-w` variables are those of
/// the live fetch; the packets written with `--pcap` replay to the same events.
#[test]
fn ladder_har_report_pcap_and_write_out_work_on_a_replay() {
    let dir = Scratch::new("replay-outputs");
    // Two redirects on the way: three exchanges.
    let url = "https://www.example.test/redirect/2";
    let pcap = dir.join("redirect.pcapng");
    let (live_har, live_report) = (dir.join("live.har"), dir.join("live.html"));
    let out = fsc(&[
        "fetch",
        url,
        "--seed",
        "4",
        "--pcap",
        path_str(&pcap),
        "--har",
        path_str(&live_har),
        "--report",
        path_str(&live_report),
        "--ladder",
        "--color",
        "never",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr_of(&out));
    let live_text = stdout_of(&out);

    let (har, report) = (dir.join("replay.har"), dir.join("replay.html"));
    let out = fsc(&[
        "replay",
        path_str(&pcap),
        "--har",
        path_str(&har),
        "--report",
        path_str(&report),
        "--ladder",
        "--color",
        "never",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr_of(&out));
    let text = stdout_of(&out);

    // The ladder: one arrow per packet, the live fetch's arrows.
    let replay = replay_json(&pcap, &[]);
    let arrows = ladder_arrows(&text);
    assert_eq!(
        arrows.len(),
        of_type(&replay, "packet").len(),
        "one arrow per packet:\n{text}"
    );
    assert_eq!(arrows, ladder_arrows(&live_text), "the ladder's arrows");

    // The HAR: valid JSON, one entry per exchange, the live HAR's entries.
    let read_har = |p: &Path| -> Value {
        serde_json::from_str(&fs::read_to_string(p).expect("the HAR file"))
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
    };
    let (h, lh) = (read_har(&har), read_har(&live_har));
    assert_eq!(h["log"]["version"], "1.2");
    let entries = h["log"]["entries"].as_array().expect("log.entries");
    assert_eq!(
        entries.len(),
        done_of(&replay, "replay")["exchanges"]
            .as_array()
            .expect("exchanges")
            .len()
    );
    assert_eq!(entries.len(), 3, "two redirects, then the page");
    let summary = |e: &Value| {
        serde_json::json!([
            e["request"]["method"],
            e["request"]["url"],
            e["request"]["httpVersion"],
            e["response"]["status"],
            e["response"]["redirectURL"],
            e["response"]["content"]["size"],
        ])
    };
    let live_entries = lh["log"]["entries"].as_array().expect("live log.entries");
    assert_eq!(
        entries.iter().map(summary).collect::<Vec<_>>(),
        live_entries.iter().map(summary).collect::<Vec<_>>(),
        "the HAR entries"
    );
    assert_eq!(entries[2]["response"]["status"], 200);

    // The report: a whole HTML page with the live report's sections and the digest.
    let html = fs::read_to_string(&report).expect("the report");
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..80]);
    assert!(html.trim_end().ends_with("</html>"), "the report is whole");
    let sections = |h: &str| -> Vec<String> {
        h.split("<h2")
            .skip(1)
            .filter_map(|s| s.split_once('>'))
            .map(|(_, rest)| rest.split('<').next().unwrap_or("").to_string())
            .collect()
    };
    let live_html = fs::read_to_string(&live_report).expect("the live report");
    assert!(!sections(&html).is_empty(), "sections in the report");
    assert_eq!(
        sections(&html),
        sections(&live_html),
        "the report's sections"
    );
    let digest = done_of(&replay, "replay")["body_sha256"]
        .as_str()
        .expect("a digest")
        .to_string();
    assert!(html.contains(&digest), "the report names the digest");

    // --pcap: the replayed packets written again replay to the same events.
    let again = dir.join("again.pcapng");
    let out = fsc(&["replay", path_str(&pcap), "--pcap", path_str(&again), "-s"]);
    assert_eq!(code(&out), 0, "{}", stderr_of(&out));
    let replay_again = replay_json(&again, &[]);
    assert_eq!(
        of_type(&replay_again, "packet"),
        of_type(&replay, "packet"),
        "the --pcap copy replays to the same packets"
    );
    assert_eq!(
        outcome(done_of(&replay_again, "again")),
        outcome(done_of(&replay, "replay"))
    );

    // -w: the variables a capture can tell, as the live fetch gave them.
    let w = "%{http_code} %{size_download} %{num_redirects} %{remote_ip} %{remote_port} %{local_ip} %{local_port} %{time_namelookup} %{time_connect} %{exitcode}\n";
    let live_w = fsc(&["fetch", url, "--seed", "4", "-s", "-w", w]);
    let replay_w = fsc(&["replay", path_str(&pcap), "-s", "-w", w]);
    assert_eq!(code(&replay_w), 0, "{}", stderr_of(&replay_w));
    assert!(
        stdout_of(&replay_w).starts_with("200 2695 2 "),
        "{}",
        stdout_of(&replay_w)
    );
    assert_eq!(stdout_of(&replay_w), stdout_of(&live_w), "-w {w}");
}

/// After redirects, the replay's final URL is the last one fetched, as in the live
/// fetch: `done.url` ("the final URL", docs/events.md) and `%{url_effective}` ("the last
/// URL fetched", docs/cli.md).
#[test]
fn a_replayed_redirect_chain_reports_the_final_url() {
    let dir = Scratch::new("replay-final-url");
    let pcap = dir.join("redirect.pcapng");
    let live = live_fetch_with_pcap(
        "https://www.example.test/redirect/2",
        &pcap,
        &["--seed", "4"],
    );
    let replay = replay_json(&pcap, &[]);
    let live_url = &done_of(&live, "live")["url"];
    assert_eq!(
        live_url, "https://www.example.test/",
        "the live fetch's final URL"
    );
    assert_eq!(
        &done_of(&replay, "replay")["url"],
        live_url,
        "done.url of the replay"
    );
    let w = "%{url_effective}";
    let live_w = fsc(&[
        "fetch",
        "https://www.example.test/redirect/2",
        "--seed",
        "4",
        "-s",
        "-w",
        w,
    ]);
    let replay_w = fsc(&["replay", path_str(&pcap), "-s", "-w", w]);
    assert_eq!(stdout_of(&live_w), "https://www.example.test/");
    assert_eq!(
        stdout_of(&replay_w),
        stdout_of(&live_w),
        "%{{url_effective}} of the replay"
    );
}

/// The exit statuses of docs/replay.md: 3 for a file that is not a capture or cannot be
/// read, 7 for a capture that ends (cut short, or by `--until`) before the response is
/// complete — and then the packets shown are the first ones of the whole capture.
#[test]
fn broken_and_short_captures_exit_as_documented() {
    let dir = Scratch::new("replay-exits");
    let not_a_capture = dir.join("hello.txt");
    fs::write(&not_a_capture, "hello, world\n").expect("write");
    let out = fsc(&["replay", path_str(&not_a_capture)]);
    assert_eq!(code(&out), 3, "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("not a pcap or pcapng capture"),
        "{}",
        stderr_of(&out)
    );
    let missing = dir.join("missing.pcap");
    let out = fsc(&["replay", path_str(&missing)]);
    assert_eq!(code(&out), 3, "{}", stderr_of(&out));

    let pcap = dir.join("200k.pcapng");
    live_fetch_with_pcap(
        "https://www.example.test/bytes/200000",
        &pcap,
        &["--seed", "2"],
    );
    let whole = replay_json(&pcap, &[]);
    let all = of_type(&whole, "packet");

    // Cut in the middle of the response.
    let bytes = fs::read(&pcap).expect("the capture");
    let cut = dir.join("cut.pcapng");
    fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let out = fsc(&["replay", path_str(&cut), "--json"]);
    assert_eq!(code(&out), 7, "{}", stderr_of(&out));
    let ev = events(&out.stdout);
    let error = of_type(&ev, "error");
    assert_eq!(error.len(), 1, "{}", stdout_of(&out));
    assert_eq!(error[0]["phase"], "response", "{}", error[0]);
    let shown = of_type(&ev, "packet");
    assert!(
        !shown.is_empty() && shown.len() < all.len(),
        "{} of {}",
        shown.len(),
        all.len()
    );
    assert_eq!(
        shown[..],
        all[..shown.len()],
        "the first packets of the capture"
    );

    // --until before the first response byte.
    let first_rx_data = all
        .iter()
        .find(|p| p["dir"] == "rx" && p["tcp"]["payload_len"].as_u64() > Some(1000))
        .expect("a data segment from the server");
    let until = format!(
        "{:.6}",
        (first_rx_data["t_us"].as_u64().expect("t_us") as f64 - 1.0) / 1e6
    );
    let out = fsc(&["replay", path_str(&pcap), "--json", "--until", &until]);
    assert_eq!(code(&out), 7, "--until {until}: {}", stderr_of(&out));
    assert!(
        of_type(&events(&out.stdout), "done").is_empty(),
        "no done event"
    );
}

// ------------------------------------------------------------------ D: step --replay

/// The step's text without its pauses (the panel titles) and the line that says it steps.
fn without_pauses(text: &str) -> String {
    text.lines()
        .filter(|l| {
            // The key bar under each panel (one or two lines, wrapped between keys).
            let key_bar = l.starts_with(" [") && l.contains("] ");
            !l.starts_with("── paused at") && !l.starts_with("stepping: ") && !key_bar
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `step --replay` through a pipe: one pause per command, every pause titled as a
/// replay's, and in between exactly the trace `replay` prints.
#[test]
fn step_replay_from_a_pipe_pauses_per_command_and_prints_the_replay() {
    let dir = Scratch::new("replay-step-pipe");
    let pcap = dir.join("home.pcapng");
    live_fetch_with_pcap("https://www.example.test/", &pcap, &["--seed", "1"]);
    let out = run_with_input(
        fetchscope(&["step", "--replay", path_str(&pcap)]),
        b"n\nn\np\nc\n".to_vec(),
        COMMAND_LIMIT,
    );
    assert_eq!(code(&out), 0, "{}", stderr_of(&out));
    let text = stdout_of(&out);
    let titles: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("── paused at"))
        .collect();
    assert_eq!(titles.len(), 4, "one pause per command:\n{text}");
    for t in &titles {
        assert!(t.contains("replay: the capture waits"), "{t}");
    }
    assert!(
        text.contains("stepping: the fetch pauses after each event"),
        "{text}"
    );
    let plain = fsc(&["replay", path_str(&pcap), "--color", "never"]);
    assert_eq!(code(&plain), 0);
    assert_eq!(
        without_pauses(&text),
        stdout_of(&plain),
        "stepping prints the replay's trace, with pauses"
    );
    assert!(text.contains("Timings (ms)"), "ran to the end: {text}");
}

/// `step --replay --json`: a snapshot per command, each with its phase; the rest of the
/// stream is exactly `replay --json`'s, done event included.
#[test]
fn step_replay_json_has_snapshots_and_the_replay_stream() {
    let dir = Scratch::new("replay-step-json");
    let pcap = dir.join("home.pcapng");
    live_fetch_with_pcap("https://www.example.test/", &pcap, &["--seed", "1"]);
    let script = ["n", "n", "p", "f", "s", "c"];
    let input: String = script.iter().map(|c| format!("{c}\n")).collect();
    let out = run_with_input(
        fetchscope(&["step", "--replay", path_str(&pcap), "--json"]),
        input.into_bytes(),
        COMMAND_LIMIT,
    );
    assert_eq!(code(&out), 0, "{}", stderr_of(&out));
    let ev = events(&out.stdout);
    let snaps = of_type(&ev, "snapshot");
    assert_eq!(snaps.len(), script.len(), "one snapshot per command");
    let phases = [
        "resolve", "connect", "tls", "request", "response", "teardown", "done",
    ];
    for s in &snaps {
        assert!(
            s["phase"].as_str().is_some_and(|p| phases.contains(&p)),
            "a snapshot with a phase: {s}"
        );
    }
    // The first pause comes before any command; each command but c ends at the next:
    // p after a packet, f after a phase event, s after a state change.
    let before: Vec<&Value> = ev
        .iter()
        .enumerate()
        .filter(|(_, e)| e["type"] == "snapshot")
        .map(|(i, _)| &ev[i - 1])
        .collect();
    for (command, prev) in script.iter().zip(&before[1..]) {
        let want: &[&str] = match *command {
            "p" => &["packet"],
            "f" => &["phase"],
            "s" => &["tcp_state", "tls"],
            _ => continue,
        };
        assert!(
            want.iter().any(|w| prev["type"] == *w),
            "after {command}: the pause follows {prev}"
        );
    }
    assert_eq!(snaps[4]["phase"], "connect", "f went to the next phase");
    let rest: Vec<Value> = ev
        .iter()
        .filter(|e| e["type"] != "snapshot")
        .cloned()
        .collect();
    let replay = replay_json(&pcap, &[]);
    assert_eq!(rest, replay, "the stream around the snapshots");
    assert_eq!(done_of(&rest, "step")["status"], 200);
}

/// A pause of `step --replay` describes the capture as far as it has been shown, as a
/// live step's pause does (tests/step.rs): the TCP state in each snapshot is the one the
/// last `tcp_state` event before it reached, not one a packet still to be shown leads
/// to.
#[test]
fn step_replay_snapshots_do_not_run_ahead_of_the_events() {
    let dir = Scratch::new("replay-step-order");
    let pcap = dir.join("home.pcapng");
    live_fetch_with_pcap("https://www.example.test/", &pcap, &["--seed", "1"]);
    let out = run_with_input(
        fetchscope(&["step", "--replay", path_str(&pcap), "--json"]),
        "n\n".repeat(300).into_bytes(),
        COMMAND_LIMIT,
    );
    assert_eq!(code(&out), 0, "{}", stderr_of(&out));
    let ev = events(&out.stdout);
    let mut shown_state = Value::Null;
    let mut shown_phase = Value::Null;
    let mut ahead = Vec::new();
    let mut snapshots = 0;
    for (i, e) in ev.iter().enumerate() {
        match e["type"].as_str() {
            Some("tcp_state") => shown_state = e["to"].clone(),
            Some("phase") => shown_phase = e["phase"].clone(),
            Some("snapshot") => {
                snapshots += 1;
                if e["tcp_state"] != shown_state || e["phase"] != shown_phase {
                    let prev = &ev[i - 1];
                    ahead.push(format!(
                        "after {} {}: snapshot says {} / {}, the events shown so far {} / {}",
                        prev["type"],
                        prev["summary"].as_str().unwrap_or(""),
                        e["phase"],
                        e["tcp_state"],
                        shown_phase,
                        shown_state
                    ));
                }
            }
            _ => {}
        }
    }
    assert!(snapshots > 30, "{snapshots} snapshots");
    assert!(
        ahead.is_empty(),
        "{} of {snapshots} snapshots run ahead of the events:\n{}",
        ahead.len(),
        ahead.join("\n")
    );
}

/// `step --replay` in tmux: the replay's panel, single keys through the TCP handshake,
/// the panel redrawn in place, `c` to the end.
#[test]
fn step_replay_in_tmux_pauses_steps_and_continues() {
    if !require(
        have("tmux"),
        "tmux is needed for the terminal test (Debian package tmux)",
    ) {
        return;
    }
    let dir = Scratch::new("replay-step-tmux");
    let pcap = dir.join("home.pcapng");
    live_fetch_with_pcap("https://www.example.test/", &pcap, &["--seed", "1"]);
    let t = Tmux::start(
        "replay",
        &format!(
            "NO_COLOR=1 {} step --replay {}; echo EXIT=$?; sleep 30",
            fetchscope_bin().display(),
            pcap.display()
        ),
        160,
    );
    let s = t.wait_for("replay: the capture waits");
    assert!(s.contains("── paused at 0.000 ms · phase resolve"), "{s}");
    let s = t.press_until("n", "CLOSED → SYN-SENT", 20);
    assert!(s.contains("[SYN] seq=0"), "{s}");
    let s = t.press_until("n", "SYN-SENT → ESTABLISHED", 10);
    assert!(
        s.contains(" TCP   ESTABLISHED (inferred from the packets)"),
        "{s}"
    );
    assert_eq!(
        s.matches("── paused at").count(),
        1,
        "one panel on screen:\n{s}"
    );
    assert!(s.contains("replay: the capture waits"), "{s}");
    t.keys(&["c"]);
    let s = t.wait_for("EXIT=");
    assert!(s.contains("EXIT=0"), "{s}");
    assert!(s.contains("TCP ended in TIME-WAIT"), "{s}");
    assert!(!s.contains("── paused at"), "no panel after c:\n{s}");
}

// ------------------------------------------------------------------ B: through TUN

/// `fetch --tun ... --pcap F --json`, then `replay F`: the same packets and digest, for
/// 1 MiB and for a redirect to another host; the digest is nginx's file's.
#[test]
fn tun_fetch_capture_replays_to_the_same_packets() {
    let Some(lab) = NsLab::up(PREFIX) else { return };
    let dir = Scratch::new("replay-tun");
    for (path, file) in [
        ("/files/1M.bin", "www/files/1M.bin"),
        ("/to-cdn", "cdn/index.html"),
    ] {
        let pcap = dir.join("tun.pcapng");
        let out = output_within(
            lab.fetch(
                path,
                &["--json", "--pcap", path_str(&pcap), "-o", "/dev/null"],
            ),
            COMMAND_LIMIT,
        );
        let live = completed(&out, path);
        let replay = replay_json(&pcap, &[]);
        assert_same_packets(&live, &replay, path);
        let done = done_of(&replay, path);
        assert_eq!(done["status"], 200, "{path}");
        assert_eq!(done["body_sha256"], lab.expected_sha256(file), "{path}");
        assert_eq!(
            outcome(done),
            outcome(done_of(&live, path)),
            "{path}: outcome"
        );
    }
}

// ------------------------------------------------------------------ C: tcpdump captures

/// The number of complete records in a pcap file being written (0 before its header).
fn pcap_records(path: &Path) -> usize {
    fetchscope_tests::pcap_records(path).unwrap_or(0)
}

/// tcpdump in the client namespace, on its veth, writing ports 53 and 443 to a file.
struct Capture {
    tcpdump: Background,
    said: Arc<Mutex<String>>,
    pcap: PathBuf,
}

impl Capture {
    fn start(lab: &NsLab, pcap: &Path) -> Capture {
        let _ = fs::remove_file(pcap);
        let mut c = lab.in_cli("tcpdump");
        // -Z root: keep the permission to write the file; -U and --immediate-mode: each
        // packet is in the file as soon as it is seen.
        c.args(["-Z", "root", "-U", "--immediate-mode", "-B", "65536"])
            .args(["-s", "0", "-n", "-i", lab.var("FSC_CAPTURE_IF"), "-w"])
            .arg(pcap)
            .arg("port 53 or port 443");
        let mut tcpdump = Background::spawn(c, "tcpdump");
        let said = tcpdump.wait_for_line(true, "listening on", Duration::from_secs(30));
        // "listening on" comes once the capture is active; the file's header, too.
        let start = Instant::now();
        while fs::metadata(pcap).map_or(0, |m| m.len()) < 24 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "tcpdump wrote no file header to {}",
                pcap.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Capture {
            tcpdump,
            said,
            pcap: pcap.to_path_buf(),
        }
    }

    /// Lets tcpdump write what it has seen (until the file has not grown for 1.5 s, at
    /// most 60 s), stops it, and asserts it dropped nothing.
    fn stop(self) {
        let start = Instant::now();
        let (mut last, mut since) = (pcap_records(&self.pcap), Instant::now());
        while since.elapsed() < Duration::from_millis(1500)
            && start.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(100));
            let n = pcap_records(&self.pcap);
            if n != last {
                (last, since) = (n, Instant::now());
            }
        }
        let status = self.tcpdump.stop("INT");
        assert!(status.code().is_some(), "tcpdump: {status}");
        let text = || {
            self.said
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        };
        let start = Instant::now();
        while !text().contains("dropped by kernel") && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let said = text();
        let dropped = said.lines().find_map(|l| {
            l.trim()
                .strip_suffix("packets dropped by kernel")
                .and_then(|n| n.trim().parse::<u64>().ok())
        });
        assert_eq!(
            dropped,
            Some(0),
            "tcpdump dropped packets (or said nothing), the capture is not whole:\n{said}"
        );
        assert!(last > 0, "tcpdump captured nothing:\n{said}");
    }
}

/// `program ARGS` in the client namespace with the lab's resolv.conf over /etc's (in
/// that command's own mount namespace only), so the system resolver finds lab names.
fn with_lab_resolver(lab: &NsLab, program: &str, args: &[&str]) -> Command {
    let mut c = lab.in_cli("sh");
    c.arg("-c")
        .arg(r#"mount --bind "$1" /etc/resolv.conf || exit 1; shift; exec "$@""#)
        .arg("sh")
        .arg(format!("{}/resolv.conf", lab.var("FSC_RESOLV_DIR")))
        .arg(program)
        .args(args);
    c
}

/// tshark's fields for the frames of `file` matching `filter`, one row per frame.
fn tshark(file: &Path, extra: &[&str], filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file).args(extra);
    if !filter.is_empty() {
        cmd.args(["-Y", filter]);
    }
    cmd.args(["-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = output_within(cmd, COMMAND_LIMIT);
    assert!(out.status.success(), "tshark failed: {}", stderr_of(&out));
    stdout_of(&out)
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

/// The TCP analysis of the replay agrees with tshark's on the same file: the frames
/// tshark marks `tcp.analysis.retransmission` and `tcp.analysis.duplicate_ack`, against
/// the packets whose analysis says (fast-)retransmission and duplicate-ack; and the TCP
/// streams against the replay's distinct 4-tuples.
fn assert_tcp_analysis_agrees_with_tshark(pcap: &Path, replay: &[Value], what: &str) {
    let packets = of_type(replay, "packet");
    let frames = tshark(
        pcap,
        &[],
        "",
        &[
            "frame.number",
            "tcp.analysis.retransmission",
            "tcp.analysis.duplicate_ack",
            "tcp.stream",
            "tcp.analysis.out_of_order",
            "tcp.analysis.fast_retransmission",
        ],
    );
    let tshark_rt = frames.iter().filter(|f| !f[1].is_empty()).count();
    let tshark_dup = frames.iter().filter(|f| !f[2].is_empty()).count();
    let streams: std::collections::BTreeSet<&str> = frames
        .iter()
        .map(|f| f[3].as_str())
        .filter(|s| !s.is_empty())
        .collect();
    let tuples: std::collections::BTreeSet<(String, String)> = packets
        .iter()
        .filter(|p| p["tcp"].is_object())
        .map(|p| {
            let a = format!("{}:{}", p["ip"]["src"], p["tcp"]["src_port"]);
            let b = format!("{}:{}", p["ip"]["dst"], p["tcp"]["dst_port"]);
            if a < b { (a, b) } else { (b, a) }
        })
        .collect();
    let ours_rt = analysed_as(&packets, "retransmission");
    let ours_dup = analysed_as(&packets, "duplicate-ack");
    // Frame by frame, where the file holds only the replay's packets (for the message).
    let mut disagree = Vec::new();
    if frames.len() == packets.len() {
        for (f, p) in frames.iter().zip(&packets) {
            let ours = p["tcp"]["analysis"].clone();
            let flag = |b: bool, s: &'static str| if b { s } else { "" };
            let ours_has = |s: &str| analysed_as(&[p], s) > 0;
            if f[1].is_empty() == ours_has("retransmission")
                || f[2].is_empty() == ours_has("duplicate-ack")
            {
                disagree.push(format!(
                    "frame {}: tshark [{} {} {} {}], fetchscope {ours} ({})",
                    f[0],
                    flag(!f[1].is_empty(), "retransmission"),
                    flag(!f[5].is_empty(), "fast_retransmission"),
                    flag(!f[4].is_empty(), "out_of_order"),
                    flag(!f[2].is_empty(), "duplicate_ack"),
                    p["summary"].as_str().unwrap_or("")
                ));
            }
        }
    }
    let detail = format!(
        "{what}: tshark {tshark_rt} retransmissions, {tshark_dup} duplicate ACKs, {} streams; fetchscope {ours_rt}, {ours_dup}, {}; frames that disagree:\n{}",
        streams.len(),
        tuples.len(),
        disagree.join("\n")
    );
    eprintln!("{detail}");
    assert_eq!(streams.len(), tuples.len(), "TCP streams: {detail}");
    assert_eq!(ours_rt, tshark_rt, "retransmissions: {detail}");
    assert_eq!(ours_dup, tshark_dup, "duplicate ACKs: {detail}");
}

/// The replay's http events' statuses against tshark's decryption of the same file.
fn assert_http_agrees_with_tshark(pcap: &Path, keys: &Path, replay: &[Value], what: &str) {
    let keylog = format!("tls.keylog_file:{}", path_str(keys));
    let rows = tshark(
        pcap,
        &["-o", &keylog],
        "http.response",
        &["http.response.code", "http.location"],
    );
    let theirs: Vec<String> = rows.iter().map(|r| r[0].clone()).collect();
    let ours: Vec<String> = of_type(replay, "http")
        .iter()
        .map(|h| h["status"].to_string())
        .collect();
    assert!(!theirs.is_empty(), "{what}: tshark decrypted no response");
    assert_eq!(
        ours, theirs,
        "{what}: the HTTP statuses, fetchscope vs tshark"
    );
    let hellos = tshark(
        pcap,
        &[],
        "tls.handshake.type == 1",
        &["tls.handshake.ciphersuite"],
    );
    let our_hellos: Vec<u64> = of_type(replay, "packet")
        .iter()
        .flat_map(|p| p["tls"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["message"] == "ClientHello")
        .map(|r| r["suites"].as_u64().expect("suites"))
        .collect();
    let their_hellos: Vec<u64> = hellos
        .iter()
        .map(|r| r[0].split(',').filter(|s| !s.is_empty()).count() as u64)
        .collect();
    assert_eq!(
        our_hellos, their_hellos,
        "{what}: the ClientHellos' cipher suite counts, fetchscope vs tshark"
    );
}

/// What fetchscope replays of a capture of `curl -L` and of `requests.get()` of a
/// redirect to another host (each in a capture of its own, tcpdump on the client
/// namespace's veth, the clients' TLS secrets in a key log): the status and digest the
/// client reported (and nginx's file's), the redirect, and TCP analysis, streams, HTTP
/// statuses and ClientHellos as tshark reads the same file.
#[test]
fn tcpdump_captures_of_curl_and_requests_replay_as_the_clients_saw_them() {
    let Some(lab) = NsLab::up(PREFIX) else { return };
    let python_requests = Command::new("python3")
        .args(["-c", "import requests"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !require(
        have("tcpdump") && have("tshark") && have("curl"),
        "the capture test needs tcpdump, tshark and curl",
    ) || !require(
        python_requests,
        "python3 with requests (pip install requests)",
    ) {
        return;
    }
    let dir = Scratch::new("replay-tcpdump");
    let ca = lab.var("FSC_CACERT").to_string();
    let url = "https://www.example.test/to-cdn";
    let expected = lab.expected_sha256("cdn/index.html");

    for client in ["curl", "requests"] {
        let pcap = dir.join(format!("{client}.pcap"));
        let keys = dir.join(format!("{client}.keys"));
        let body = dir.join(format!("{client}.body"));
        let capture = Capture::start(&lab, &pcap);
        let mut cmd = if client == "curl" {
            with_lab_resolver(
                &lab,
                "curl",
                &[
                    "-sS",
                    "-L",
                    "--cacert",
                    &ca,
                    "-o",
                    path_str(&body),
                    "-w",
                    "%{http_code} %{num_redirects}",
                    url,
                ],
            )
        } else {
            with_lab_resolver(
                &lab,
                "python3",
                &[
                    "-c",
                    &format!(
                        "import requests,hashlib; r=requests.get({url:?}); print(r.status_code, hashlib.sha256(r.content).hexdigest(), len(r.history))"
                    ),
                ],
            )
        };
        cmd.env("SSLKEYLOGFILE", &keys)
            .env("REQUESTS_CA_BUNDLE", &ca);
        let out = output_within(cmd, COMMAND_LIMIT);
        capture.stop();
        assert!(
            out.status.success(),
            "{client}: {}\n{}",
            stdout_of(&out),
            stderr_of(&out)
        );
        // What the client itself reported.
        let said = stdout_of(&out);
        let words: Vec<&str> = said.split_whitespace().collect();
        let (status, sha, redirects) = if client == "curl" {
            assert_eq!(words.len(), 2, "curl -w: {said}");
            let bytes = fs::read(&body).expect("curl's body");
            (
                words[0].to_string(),
                sha256_hex(&bytes),
                words[1].to_string(),
            )
        } else {
            assert_eq!(words.len(), 3, "python3: {said}");
            (
                words[0].to_string(),
                words[1].to_string(),
                words[2].to_string(),
            )
        };
        assert_eq!(status, "200", "{client}");
        assert_eq!(sha, expected, "{client}: the body is nginx's cdn page");
        assert!(
            fs::metadata(&keys).is_ok_and(|m| m.len() > 0),
            "{client} wrote no key log"
        );

        let replay = replay_json(&pcap, &["--keylog", path_str(&keys)]);
        let what = format!("{client}'s capture");
        let done = done_of(&replay, &what);
        assert_eq!(done["status"].to_string(), status, "{what}: status");
        assert_eq!(
            done["body_sha256"],
            Value::from(sha.clone()),
            "{what}: digest"
        );
        assert_eq!(
            done["redirects"].to_string(),
            redirects,
            "{what}: redirects"
        );
        let redirect = of_type(&replay, "redirect");
        assert_eq!(redirect.len(), 1, "{what}: one redirect");
        assert_eq!(redirect[0]["status"], 302, "{what}");
        assert_eq!(redirect[0]["from"], url, "{what}");
        assert_eq!(redirect[0]["to"], "https://cdn.example.test/", "{what}");
        // The DNS lookups the system resolver made are in the capture, and replayed.
        let questions: Vec<&Value> = of_type(&replay, "packet")
            .into_iter()
            .filter(|p| p["dir"] == "tx" && p["dns"].is_object())
            .map(|p| &p["dns"]["question"])
            .collect();
        assert!(
            questions.contains(&&Value::from("www.example.test"))
                && questions.contains(&&Value::from("cdn.example.test")),
            "{what}: the lookups of both names: {questions:?}"
        );
        assert_tcp_analysis_agrees_with_tshark(&pcap, &replay, &what);
        assert_http_agrees_with_tshark(&pcap, &keys, &replay, &what);
    }
}

/// The same agreement on fetchscope's own capture of a seeded lab fetch through 5 % loss
/// (deterministic: the same file every run), where the packets dropped on the way in are
/// missing from the file as on a lossy wire.
#[test]
fn lab_capture_with_loss_agrees_with_tshark() {
    if !require(
        have("tshark"),
        "tshark reads the capture (Debian package tshark)",
    ) {
        return;
    }
    let dir = Scratch::new("replay-lab-tshark");
    let pcap = dir.join("loss.pcapng");
    live_fetch_with_pcap(
        "https://www.example.test/bytes/200000",
        &pcap,
        &["--loss", "5", "--seed", "3"],
    );
    let replay = replay_json(&pcap, &[]);
    assert!(
        analysed_as(&of_type(&replay, "packet"), "retransmission") > 0,
        "retransmissions in the file"
    );
    assert_tcp_analysis_agrees_with_tshark(&pcap, &replay, "the lab's loss capture");
}

/// An nftables table in a namespace, deleted when dropped.
struct NftTable {
    ns: String,
    family_and_name: String,
}

impl NftTable {
    fn add(ns: &str, ruleset: &str, family_and_name: &str) -> NftTable {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, "nft", "-f", "-"]);
        let out = run_with_input(c, ruleset.as_bytes().to_vec(), COMMAND_LIMIT);
        assert!(
            out.status.success(),
            "nft -f: {}\n{ruleset}",
            stderr_of(&out)
        );
        NftTable {
            ns: ns.to_string(),
            family_and_name: family_and_name.to_string(),
        }
    }

    /// The counters of the table's rules, as `nft list table` prints them.
    fn listing(&self) -> String {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, "nft", "list", "table"])
            .args(self.family_and_name.split_whitespace());
        stdout_of(&output_within(c, COMMAND_LIMIT))
    }
}

impl Drop for NftTable {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "exec", &self.ns, "nft", "delete", "table"])
            .args(self.family_and_name.split_whitespace())
            .status();
    }
}

/// A 1 MiB download by curl with 5 % of the server's segments lost, captured by tcpdump:
/// the replay's digest is nginx's file's, and its TCP analysis (retransmissions,
/// duplicate ACKs, streams) is tshark's on the same file, exactly.
///
/// The loss: this kernel has no netem, and a segment nftables drops on the server's
/// output (or egress) is one the server's own TCP learns was not sent, and sends again
/// in order (no retransmission on the wire, none in a capture). So the drop is on the
/// client's input (`tcp sport 443 numgen random mod 100 < 5 drop`), after the veth where
/// tcpdump sees the segment: the client never gets it, asks again with duplicate ACKs and
/// SACK, and the server retransmits.
#[test]
fn tcpdump_capture_with_loss_agrees_with_tshark() {
    let Some(lab) = NsLab::up(PREFIX) else { return };
    if !require(
        have("tcpdump") && have("tshark") && have("curl") && have("nft"),
        "the loss capture test needs tcpdump, tshark, curl and nft",
    ) {
        return;
    }
    let dir = Scratch::new("replay-tcpdump-loss");
    let ca = lab.var("FSC_CACERT").to_string();
    let pcap = dir.join("loss.pcap");
    let keys = dir.join("loss.keys");
    let body = dir.join("1M.bin");
    let loss = NftTable::add(
        lab.var("FSC_CLI_NS"),
        "table inet fsrpl_loss {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp sport 443 numgen random mod 100 < 5 counter drop\n  }\n}\n",
        "inet fsrpl_loss",
    );
    let capture = Capture::start(&lab, &pcap);
    let mut cmd = with_lab_resolver(
        &lab,
        "curl",
        &[
            "-sS",
            "--cacert",
            &ca,
            "-o",
            path_str(&body),
            "-w",
            "%{http_code}",
            "https://www.example.test/files/1M.bin",
        ],
    );
    cmd.env("SSLKEYLOGFILE", &keys);
    let out = output_within(cmd, COMMAND_LIMIT);
    capture.stop();
    let rules = loss.listing();
    drop(loss);
    assert!(
        out.status.success(),
        "curl: {}\n{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    assert_eq!(stdout_of(&out), "200");
    let expected = lab.expected_sha256("www/files/1M.bin");
    assert_eq!(sha256_hex(&fs::read(&body).expect("curl's body")), expected);
    eprintln!("the loss rule: {rules}");

    let retransmitted = tshark(&pcap, &[], "tcp.analysis.retransmission", &["frame.number"]);
    assert!(
        !retransmitted.is_empty(),
        "the loss made no retransmission (rules: {rules})"
    );

    let replay = replay_json(&pcap, &["--keylog", path_str(&keys)]);
    let done = done_of(&replay, "the loss capture");
    assert_eq!(done["status"], 200);
    assert_eq!(done["body_sha256"], Value::from(expected));
    assert_eq!(done["body_bytes"], 1024 * 1024);
    assert_tcp_analysis_agrees_with_tshark(&pcap, &replay, "the loss capture");
}
