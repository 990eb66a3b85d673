//! Fault injection through the CLI (`--loss`, `--reorder`, `--duplicate`, `--corrupt`,
//! `--delay`, `--jitter`, `--rate`, `--faults-dir`) in the built-in lab: the options are
//! checked, every injected fault is in the trace (a dropped received packet too, with
//! its time), the recovery is named, the pcap holds what crossed the stack's device, and
//! the same seed makes the same faults.

use std::collections::BTreeMap;
use std::process::Output;

use fetchscope_tests::{code, events, lab_bytes, of_type, run, scratch_dir, sha256_hex};
use serde_json::Value;

/// Runs `fetchscope fetch --json URL` with `extra`.
fn fetch(url: &str, extra: &[&str]) -> (Output, Vec<Value>) {
    let mut args = vec!["fetch", url, "--json"];
    args.extend_from_slice(extra);
    let out = run(&args);
    let ev = events(&out.stdout);
    (out, ev)
}

/// The `done` event, or a panic with stderr and the last events.
fn done<'a>(out: &Output, ev: &'a [Value]) -> &'a Value {
    assert_eq!(
        code(out),
        0,
        "stderr: {}\nlast events: {:?}",
        String::from_utf8_lossy(&out.stderr),
        ev.iter().rev().take(3).collect::<Vec<_>>()
    );
    of_type(ev, "done").first().copied().expect("a done event")
}

fn packets(ev: &[Value]) -> Vec<&Value> {
    of_type(ev, "packet")
}

fn is_dropped(p: &Value) -> bool {
    p["fault"]["dropped"] == true
}

/// How many times each recovery kind was named.
fn recovery_kinds(ev: &[Value]) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for p in packets(ev) {
        for r in p["recovery"].as_array().into_iter().flatten() {
            let k = r["kind"].as_str().expect("kind").to_string();
            assert!(
                r["text"].as_str().is_some_and(|t| !t.is_empty()),
                "recovery without text: {r}"
            );
            *kinds.entry(k).or_insert(0) += 1;
        }
    }
    kinds
}

/// Checks the trace's bookkeeping: numbers 1..n in order, times never going back, every
/// packet the stack sent counted once, and received packets that were dropped on the way
/// not counted as received.
fn check_bookkeeping(ev: &[Value], done: &Value) {
    let ps = packets(ev);
    let mut last_t = 0;
    for (i, p) in ps.iter().enumerate() {
        assert_eq!(p["number"], i as u64 + 1, "packet numbers are 1..n: {p}");
        let t = p["t_us"].as_u64().expect("t_us");
        assert!(t >= last_t, "time went back at packet {}", i + 1);
        last_t = t;
    }
    let tx = ps.iter().filter(|p| p["dir"] == "tx").count();
    let rx_received = ps
        .iter()
        .filter(|p| p["dir"] == "rx" && !is_dropped(p))
        .count();
    assert_eq!(done["packets_tx"], tx as u64, "every sent packet once");
    assert_eq!(
        done["packets_rx"], rx_received as u64,
        "dropped ones not received"
    );
}

#[test]
fn bad_values_are_usage_errors_with_a_clear_sentence() {
    for (args, needle) in [
        (
            &["--loss", "101"][..],
            "--loss must be a percentage from 0 to 100",
        ),
        (&["--reorder=-5"][..], "--reorder must be a percentage"),
        (
            &["--duplicate", "many"][..],
            "--duplicate must be a percentage",
        ),
        (&["--corrupt", "NaN"][..], "--corrupt must be a percentage"),
        (
            &["--delay", "70000"][..],
            "--delay must be a number of milliseconds",
        ),
        (
            &["--jitter=-1"][..],
            "--jitter must be a number of milliseconds",
        ),
        (&["--rate", "fast"][..], "write it like tc: 10mbit"),
        (&["--rate", "10furlongs"][..], "unknown unit"),
        (&["--faults-dir", "up"][..], "possible values: rx, tx, both"),
    ] {
        let mut all = vec!["fetch"];
        all.extend_from_slice(args);
        let out = run(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
}

#[test]
fn help_lists_the_fault_options() {
    let out = run(&["fetch", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--loss",
        "--reorder",
        "--duplicate",
        "--corrupt",
        "--delay",
        "--jitter",
        "--rate",
        "--faults-dir",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}");
    }
}

#[test]
fn a_dropped_answer_is_in_the_trace_with_its_time_and_never_reaches_the_stack() {
    let (out, ev) = fetch(
        "https://www.example.test/",
        &[
            "--seed",
            "1",
            "--loss",
            "100",
            "--faults-dir",
            "rx",
            "--timeout",
            "4",
        ],
    );
    assert_eq!(code(&out), 8, "nothing arrives: a timeout");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("resolve"), "{stderr}");
    let ps = packets(&ev);
    let queries: Vec<_> = ps.iter().filter(|p| p["dir"] == "tx").collect();
    let answers: Vec<_> = ps.iter().filter(|p| p["dir"] == "rx").collect();
    assert!(queries.len() >= 2, "the stub asks again");
    assert_eq!(
        queries.len(),
        answers.len(),
        "the server answered every query"
    );
    for (q, a) in queries.iter().zip(&answers) {
        assert!(q.get("fault").is_none(), "sent packets untouched: {q}");
        assert!(is_dropped(a), "{a}");
        assert_eq!(a["fault"]["drop_cause"], "loss");
        // Decoded although the stack never got it, at the time it arrived (one round
        // trip after its query: 5 ms each way plus serialisation).
        assert_eq!(a["dns"]["id"], q["dns"]["id"]);
        assert_eq!(a["dns"]["response"], true);
        let rtt = a["t_us"].as_u64().unwrap() - q["t_us"].as_u64().unwrap();
        assert!(
            (10_000..11_000).contains(&rtt),
            "arrived {rtt} µs after the query"
        );
    }
    // The stub never saw an answer.
    assert!(
        of_type(&ev, "dns").iter().all(|d| d["event"] != "answer"),
        "no answer reached the DNS stub"
    );
}

#[test]
fn the_text_says_what_was_dropped_and_what_recovered() {
    let out = run(&[
        "fetch",
        "https://www.example.test/bytes/100000",
        "--seed",
        "3",
        "--loss",
        "5",
        "--timeout",
        "600",
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("faults: loss 5 %, both directions"), "header");
    assert!(text.contains("✗ dropped by fault injection: it never reached the stack"));
    assert!(text.contains("↳ out of order: the stack still waits for seq"));
    assert!(
        text.contains("↳ retransmission after timeout (RTO)")
            || text.contains("↳ fast retransmission"),
        "a retransmission is named"
    );
    assert!(text.contains(&sha256_hex(&lab_bytes(100_000))));
}

#[test]
fn loss_in_both_directions_is_recovered_and_every_recovery_is_named() {
    let url = "https://www.example.test/bytes/200000";
    let (out, ev) = fetch(
        url,
        &[
            "--seed",
            "3",
            "--loss",
            "5",
            "--reorder",
            "2",
            "--duplicate",
            "2",
            "--corrupt",
            "1",
            "--timeout",
            "3600",
        ],
    );
    let d = done(&out, &ev);
    assert_eq!(d["body_bytes"], 200_000);
    assert_eq!(d["body_sha256"], sha256_hex(&lab_bytes(200_000)));
    check_bookkeeping(&ev, d);
    let ps = packets(&ev);
    for dir in ["tx", "rx"] {
        assert!(
            ps.iter().any(|p| p["dir"] == dir && is_dropped(p)),
            "some {dir} packet was dropped"
        );
    }
    let kinds = recovery_kinds(&ev);
    for k in [
        "rto-retransmission",
        "go-back-n",
        "fast-retransmission",
        "duplicate-ack",
        "out-of-order-queued",
        "hole-filled",
        "duplicate-ignored",
    ] {
        assert!(kinds.contains_key(k), "{k} not named; named: {kinds:?}");
    }
    // A retransmission the tracker names is also one in Wireshark's terms.
    for p in &ps {
        let named = p["recovery"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["kind"] == "fast-retransmission");
        if named && !is_dropped(p) {
            let analysis = p["tcp"]["analysis"].to_string();
            assert!(
                analysis.contains("retransmission") || analysis.contains("out-of-order"),
                "{p}"
            );
        }
    }
}

#[test]
fn corrupted_packets_are_dropped_by_the_stack_and_say_so() {
    let (out, ev) = fetch(
        "https://www.example.test/bytes/50000",
        &[
            "--seed",
            "2",
            "--corrupt",
            "10",
            "--faults-dir",
            "rx",
            "--timeout",
            "3600",
        ],
    );
    let d = done(&out, &ev);
    assert_eq!(d["body_sha256"], sha256_hex(&lab_bytes(50_000)));
    check_bookkeeping(&ev, d);
    let corrupted: Vec<_> = packets(&ev)
        .into_iter()
        .filter(|p| p["fault"]["corrupted"].is_object())
        .collect();
    assert!(!corrupted.is_empty(), "10 % of the packets");
    for p in corrupted {
        assert_eq!(p["dir"], "rx");
        let problems = p["problems"].to_string();
        assert!(problems.contains("malformed"), "the decoder notices: {p}");
        let kinds: Vec<&str> = p["recovery"]
            .as_array()
            .expect("recovery")
            .iter()
            .filter_map(|r| r["kind"].as_str())
            .collect();
        assert!(
            kinds == ["bad-checksum-dropped"] || kinds == ["malformed-dropped"],
            "{kinds:?}: {p}"
        );
    }
}

#[test]
fn duplicates_are_marked_and_ignored() {
    let (out, ev) = fetch(
        "https://www.example.test/bytes/30000",
        &["--seed", "4", "--duplicate", "100", "--faults-dir", "rx"],
    );
    let d = done(&out, &ev);
    assert_eq!(d["body_sha256"], sha256_hex(&lab_bytes(30_000)));
    check_bookkeeping(&ev, d);
    let rx: Vec<_> = packets(&ev)
        .into_iter()
        .filter(|p| p["dir"] == "rx")
        .collect();
    // Every received packet is followed by its copy (the last one's may come after the
    // fetch ended).
    let originals = rx
        .iter()
        .filter(|p| p["fault"]["duplicated"] == true)
        .count();
    let copies = rx.iter().filter(|p| p["fault"]["copy"] == true).count();
    assert!(
        originals - copies <= 1,
        "{originals} originals, {copies} copies"
    );
    assert_eq!(originals + copies, rx.len());
    // A copy of a data segment is ignored by the stack.
    let ignored = rx
        .iter()
        .filter(|p| p["fault"]["copy"] == true && p["tcp"]["payload_len"].as_u64() > Some(0))
        .filter(|p| {
            p["recovery"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["kind"] == "duplicate-ignored")
        })
        .count();
    assert!(
        ignored > 10,
        "{ignored} copies of data segments named as ignored"
    );
}

#[test]
fn reordered_packets_are_marked_and_the_fetch_completes() {
    let (out, ev) = fetch(
        "https://www.example.test/bytes/100000",
        &["--seed", "5", "--reorder", "20", "--timeout", "600"],
    );
    let d = done(&out, &ev);
    assert_eq!(d["body_sha256"], sha256_hex(&lab_bytes(100_000)));
    check_bookkeeping(&ev, d);
    let ps = packets(&ev);
    let reordered: Vec<_> = ps
        .iter()
        .filter(|p| p["fault"]["reordered"] == true)
        .collect();
    assert!(reordered.len() >= 5, "{} reordered", reordered.len());
    // A received segment that was overtaken fills the hole the overtaking one left.
    let rx_overtaken = reordered
        .iter()
        .filter(|p| p["dir"] == "rx" && p["fault"]["overtaken_by"].as_u64() >= Some(1))
        .filter(|p| p["tcp"]["payload_len"].as_u64() > Some(0))
        .count();
    assert!(rx_overtaken > 0);
    assert!(recovery_kinds(&ev).contains_key("out-of-order-queued"));
}

#[test]
fn delay_and_rate_move_the_clock_by_the_right_amounts() {
    // 50 ms more on the way out: the DNS answer comes 50 ms later than without.
    let (out, ev) = fetch(
        "https://www.example.test/",
        &["--seed", "1", "--delay", "50", "--faults-dir", "tx"],
    );
    let d = done(&out, &ev);
    check_bookkeeping(&ev, d);
    let ps = packets(&ev);
    assert_eq!(ps[0]["fault"]["delay_us"], 50_000, "{}", ps[0]);
    let rtt = ps[1]["t_us"].as_u64().unwrap() - ps[0]["t_us"].as_u64().unwrap();
    assert!((60_000..61_000).contains(&rtt), "{rtt} µs");

    // Jitter stays within ± and keeps the order.
    let (out, ev) = fetch(
        "https://www.example.test/bytes/100000",
        &["--seed", "1", "--delay", "20", "--jitter", "10"],
    );
    let d = done(&out, &ev);
    check_bookkeeping(&ev, d);
    let delays: Vec<u64> = packets(&ev)
        .iter()
        .filter_map(|p| p["fault"]["delay_us"].as_u64())
        .collect();
    assert!(delays.len() > 50);
    // 20 ± 10 ms; packets keep their order, so one that drew less than the packet before
    // it waits for that one (which pushes the typical delay up, never past 30 ms).
    assert!(
        delays.iter().all(|d| (10_000..=30_000).contains(d)),
        "{delays:?}"
    );
    assert!(delays.iter().any(|d| *d < 15_000), "{delays:?}");
    assert!(delays.iter().any(|d| *d > 25_000), "{delays:?}");

    // 1 Mbit/s: 100 000 bytes (plus headers) take at least 0.8 s to come in.
    let (out, ev) = fetch(
        "https://www.example.test/bytes/100000",
        &["--seed", "1", "--rate", "1mbit", "--faults-dir", "rx"],
    );
    let d = done(&out, &ev);
    assert_eq!(d["body_sha256"], sha256_hex(&lab_bytes(100_000)));
    let total = d["timings"]["total_ms"].as_f64().expect("total_ms");
    assert!(total > 800.0, "{total} ms at 1 Mbit/s");
    let (_, fast_ev) = fetch("https://www.example.test/bytes/100000", &["--seed", "1"]);
    let fast = of_type(&fast_ev, "done")[0]["timings"]["total_ms"]
        .as_f64()
        .unwrap();
    assert!(fast < 100.0, "{fast} ms at the lab's 100 Mbit/s");
}

#[test]
fn the_same_seed_makes_the_same_faults() {
    let args = [
        "--seed",
        "11",
        "--loss",
        "10",
        "--reorder",
        "5",
        "--duplicate",
        "5",
        "--corrupt",
        "2",
        "--jitter",
        "3",
        "--timeout",
        "3600",
    ];
    let fingerprint = |ev: &[Value]| -> Vec<String> {
        packets(ev)
            .iter()
            .map(|p| {
                // Recovery kinds, not texts: a checksum in a text depends on the
                // ciphertext, whose keys come from ring's own randomness.
                let kinds: Vec<&str> = p["recovery"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["kind"].as_str())
                    .collect();
                format!(
                    "{} {} {} {} {} {kinds:?}",
                    p["number"], p["t_us"], p["dir"], p["len"], p["fault"]
                )
            })
            .collect()
    };
    let (o1, e1) = fetch("https://www.example.test/bytes/50000", &args);
    let (o2, e2) = fetch("https://www.example.test/bytes/50000", &args);
    done(&o1, &e1);
    done(&o2, &e2);
    let (f1, f2) = (fingerprint(&e1), fingerprint(&e2));
    assert!(f1.iter().any(|l| l.contains("dropped")));
    if let Some((a, b)) = f1.iter().zip(&f2).find(|(a, b)| a != b) {
        panic!("the runs differ:\n{a}\n{b}");
    }
    assert_eq!(f1.len(), f2.len());
    let mut other = args;
    other[1] = "12";
    let (o3, e3) = fetch("https://www.example.test/bytes/50000", &other);
    done(&o3, &e3);
    assert_ne!(f1, fingerprint(&e3), "another seed, other faults");
}

/// The Enhanced Packet Blocks of a pcapng file (block type 6), little- or big-endian.
fn pcapng_packets(bytes: &[u8]) -> usize {
    let le = bytes.get(8..12) == Some(&[0x4d, 0x3c, 0x2b, 0x1a]);
    let word = |at: usize| -> Option<u32> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let (mut at, mut n) = (0, 0);
    while let (Some(kind), Some(len)) = (word(at), word(at + 4)) {
        if kind == 6 {
            n += 1;
        }
        if len < 12 {
            break;
        }
        at += len as usize;
    }
    n
}

#[test]
fn the_pcap_holds_what_crossed_the_device() {
    let dir = scratch_dir("faults-pcap");
    let pcap = dir.join("loss.pcapng");
    let pcap_arg = pcap.to_string_lossy().into_owned();
    let (out, ev) = fetch(
        "https://www.example.test/bytes/100000",
        &[
            "--seed",
            "6",
            "--loss",
            "10",
            "--timeout",
            "3600",
            "--pcap",
            &pcap_arg,
        ],
    );
    let d = done(&out, &ev);
    check_bookkeeping(&ev, d);
    let ps = packets(&ev);
    let rx_dropped = ps
        .iter()
        .filter(|p| p["dir"] == "rx" && is_dropped(p))
        .count();
    let tx_dropped = ps
        .iter()
        .filter(|p| p["dir"] == "tx" && is_dropped(p))
        .count();
    assert!(rx_dropped > 0 && tx_dropped > 0);
    let bytes = std::fs::read(&pcap).expect("pcap written");
    // Sent packets are all there (the stack sent them, dropped or not); received ones
    // only when they reached the stack.
    assert_eq!(pcapng_packets(&bytes), ps.len() - rx_dropped);
    let _ = std::fs::remove_dir_all(&dir);
}
