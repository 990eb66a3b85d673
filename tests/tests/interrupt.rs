//! Ctrl-C (SIGINT) and SIGTERM end a fetch gracefully: the trace is complete up to the
//! stop, it ends with an `error` event of kind `aborted`, the exit status is 130, and the
//! body received so far stays in `FILE.part` (`--keep-partial`) while `FILE` is left alone.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fetchscope_tests::{fetchscope, scratch_dir};
use serde_json::Value;

/// Sends `signal` to a long built-in-lab download once it is under way; returns the exit
/// status, the NDJSON lines and the scratch directory.
fn stop_a_download(signal: &str, tag: &str) -> (Option<i32>, Vec<Value>, std::path::PathBuf) {
    let dir = scratch_dir(tag);
    let body = dir.join("big.bin");
    let trace = dir.join("trace.ndjson");
    let mut child = fetchscope(&[
        "fetch",
        "https://www.example.test/bytes/1073741824",
        "--json",
        "--keep-partial",
    ])
    .arg("-o")
    .arg(&body)
    .stdout(fs::File::create(&trace).expect("trace file"))
    .stderr(Stdio::null())
    .spawn()
    .expect("fetchscope starts");
    // Under way: the body has started to arrive (bounded wait: 60 s).
    let part = dir.join("big.bin.part");
    let started = Instant::now();
    while fs::metadata(&part).map_or(true, |m| m.len() < 1_000_000) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the download did not start"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "fetchscope ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    // It ends soon after (bounded: 30 s), on its own.
    let stopped = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s.code();
        }
        if stopped.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("fetchscope did not stop within 30 s of {signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let lines = fs::read_to_string(&trace)
        .expect("trace")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a whole JSON line ({e}): {l}")))
        .collect();
    (code, lines, dir)
}

fn check(signal: &str, tag: &str) {
    let (code, lines, dir) = stop_a_download(signal, tag);
    assert_eq!(code, Some(130), "exit status after {signal}");
    let last = lines.last().expect("a trace");
    assert_eq!(last["type"], "error", "{last}");
    assert_eq!(last["kind"], "aborted", "{last}");
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains("stopped by a signal")),
        "{last}"
    );
    // The RST that ends the connection is in the trace, before the error.
    let rst = lines.iter().rev().skip(1).find(|e| e["type"] == "packet");
    let flags = rst
        .map(|p| p["tcp"]["flags"].to_string())
        .unwrap_or_default();
    assert!(flags.contains("RST"), "the last packet is the RST: {flags}");
    assert!(!dir.join("big.bin").exists(), "FILE is left alone");
    let kept = fs::metadata(dir.join("big.bin.part")).map_or(0, |m| m.len());
    assert!(
        kept >= 1_000_000,
        "the body so far is kept in FILE.part ({kept} bytes)"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_ends_the_fetch_with_a_whole_trace_and_the_body_so_far() {
    check("-INT", "sigint");
}

#[test]
fn sigterm_ends_the_fetch_the_same_way() {
    check("-TERM", "sigterm");
}
