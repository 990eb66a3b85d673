//! Oversized and endless input from the network: memory stays bounded and the error is
//! clear. Each case runs `fetchscope fetch` against a misbehaving built-in lab
//! (`--lab-fault`), measures the process's peak RSS (`getrusage(RUSAGE_CHILDREN)` in a
//! python3 parent, as lab.rs does) and checks the exit status, the `error` event and the
//! sentence on stderr.

use fetchscope_tests::{events, fetchscope_bin, have, of_type, require};
use serde_json::Value;

/// How much more than a healthy fetch of `/` a hostile one may use at its peak. The
/// client's own bounds are far smaller (64 KiB head, 4 KiB chunk line, one TLS record);
/// this leaves room for the lab's server side, which lives in the same process.
const RSS_SLACK_KIB: i64 = 24 * 1024;

/// What one measured run produced.
struct Measured {
    code: i32,
    rss_kib: i64,
    events: Vec<Value>,
    stderr: String,
}

/// Runs `fetchscope` with `args` under a python3 parent that reports its peak RSS.
fn measured(args: &[&str]) -> Measured {
    let script = "import json,resource,subprocess,sys\n\
        r=subprocess.run(sys.argv[1:],capture_output=True,env={'NO_COLOR':'1','PATH':'/usr/bin:/bin'})\n\
        print(json.dumps({'code':r.returncode,\
        'rss':resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,\
        'stdout':r.stdout.decode('utf-8','replace'),\
        'stderr':r.stderr.decode('utf-8','replace')}))";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(fetchscope_bin())
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the python3 wrapper failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("the wrapper prints JSON");
    Measured {
        code: v["code"].as_i64().expect("an exit code") as i32,
        rss_kib: v["rss"].as_i64().expect("a peak RSS"),
        events: events(v["stdout"].as_str().unwrap_or_default().as_bytes()),
        stderr: v["stderr"].as_str().unwrap_or_default().to_string(),
    }
}

/// Peak RSS of a healthy fetch of the lab's page, the baseline.
fn baseline_kib() -> i64 {
    let m = measured(&["fetch", "--json", "--seed", "1"]);
    assert_eq!(m.code, 0, "the healthy fetch failed: {}", m.stderr);
    m.rss_kib
}

/// What a hostile input must end in.
struct Expect {
    fault: &'static str,
    extra: &'static [&'static str],
    exit: i32,
    phase: &'static str,
    kind: &'static str,
    /// Words the error message must contain.
    words: &'static [&'static str],
}

/// Runs one case and checks exit status, error event, stderr and peak memory; returns the
/// measurement for further checks.
fn check(e: &Expect, baseline: i64) -> Measured {
    let mut args = vec!["fetch", "--json", "--seed", "1", "--lab-fault", e.fault];
    args.extend_from_slice(e.extra);
    let m = measured(&args);
    assert_eq!(
        m.code, e.exit,
        "{}: exit status; stderr: {}",
        e.fault, m.stderr
    );
    let errors = of_type(&m.events, "error");
    assert_eq!(errors.len(), 1, "{}: one error event: {errors:?}", e.fault);
    let err = errors[0];
    assert_eq!(err["phase"], e.phase, "{}: {err}", e.fault);
    assert_eq!(err["kind"], e.kind, "{}: {err}", e.fault);
    let message = err["message"].as_str().unwrap_or_default().to_lowercase();
    for w in e.words {
        assert!(message.contains(w), "{}: '{w}' not in: {message}", e.fault);
    }
    // One sentence on stderr naming the phase.
    let line = m
        .stderr
        .lines()
        .find(|l| l.starts_with("fetchscope:"))
        .unwrap_or_default();
    assert!(
        line.contains(&format!("{} failed", e.phase)),
        "{}: stderr: {}",
        e.fault,
        m.stderr
    );
    assert!(
        m.rss_kib <= baseline + RSS_SLACK_KIB,
        "{}: peak RSS {} KiB, a healthy fetch {} KiB",
        e.fault,
        m.rss_kib,
        baseline
    );
    eprintln!(
        "{}: exit {}, peak RSS {} KiB (healthy fetch {} KiB): {}",
        e.fault, m.code, m.rss_kib, baseline, message
    );
    m
}

/// Bytes the stack received over TCP in the packet events.
fn received_tcp_bytes(events: &[Value]) -> u64 {
    of_type(events, "packet")
        .iter()
        .filter(|p| p["dir"] == "rx")
        .filter_map(|p| p["tcp"]["payload_len"].as_u64())
        .sum()
}

#[test]
fn oversized_and_endless_input_keeps_memory_bounded_with_a_clear_error() {
    if !require(have("python3"), "python3 (to measure peak memory)") {
        return;
    }
    let baseline = baseline_kib();
    // Oversized: a head over the 64 KiB limit, a bad chunk-size line.
    check(
        &Expect {
            fault: "huge-headers",
            extra: &[],
            exit: 7,
            phase: "response",
            kind: "headers-too-large",
            words: &["65536"],
        },
        baseline,
    );
    check(
        &Expect {
            fault: "bad-chunk",
            extra: &[],
            exit: 7,
            phase: "response",
            kind: "bad-chunk-size",
            words: &["chunk"],
        },
        baseline,
    );
    // Endless head: the client stops at 64 KiB, although the server would go on forever.
    let m = check(
        &Expect {
            fault: "endless-headers",
            extra: &[],
            exit: 7,
            phase: "response",
            kind: "headers-too-large",
            words: &["65536"],
        },
        baseline,
    );
    let got = received_tcp_bytes(&m.events);
    assert!(
        (65_536..4 * 1024 * 1024).contains(&got),
        "endless-headers: {got} bytes received before giving up"
    );
    // Endless chunk-size line: the client stops at 4 KiB of line.
    check(
        &Expect {
            fault: "endless-chunk-line",
            extra: &[],
            exit: 7,
            phase: "response",
            kind: "bad-chunk-size",
            words: &["longer than 4096"],
        },
        baseline,
    );
    // A TLS record announcing 65535 bytes: refused at its header.
    check(
        &Expect {
            fault: "giant-tls-record",
            extra: &[],
            exit: 6,
            phase: "tls",
            kind: "protocol",
            words: &[],
        },
        baseline,
    );
}

#[test]
fn an_endless_body_streams_in_constant_memory_until_the_timeout() {
    if !require(have("python3"), "python3 (to measure peak memory)") {
        return;
    }
    let baseline = baseline_kib();
    // 4 virtual seconds at the lab's 100 Mbit/s: tens of megabytes that never end.
    let m = check(
        &Expect {
            fault: "endless-body",
            extra: &["--timeout", "4"],
            exit: 8,
            phase: "response",
            kind: "timeout",
            words: &["response"],
        },
        baseline,
    );
    let got = received_tcp_bytes(&m.events);
    assert!(
        got > 16 * 1024 * 1024,
        "endless-body: only {got} bytes arrived in 4 virtual seconds"
    );
    eprintln!(
        "endless-body: {} MiB received, peak RSS {} KiB",
        got / (1024 * 1024),
        m.rss_kib
    );
}
