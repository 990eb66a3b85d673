//! `fetchscope step` in the built-in lab: driven key by key in tmux (a real terminal),
//! line by line through a pipe, slowly, and quit part-way.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fetchscope_tests::{code, events, fetchscope, fetchscope_bin, have, of_type, require, run};
use serde_json::Value;

/// Runs `fetchscope step ARGS` with `script` fed to stdin, one line at a time, waiting
/// `gap` between lines; returns (exit status, stdout).
fn step_piped(args: &[&str], script: &[&str], gap: Duration) -> (i32, String) {
    let mut child = fetchscope(&[&["step"], args].concat())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fetchscope step");
    let mut stdin = child.stdin.take().expect("stdin");
    for line in script {
        std::thread::sleep(gap);
        // The step may have ended already (e.g. after `c`): a closed pipe is fine.
        if writeln!(stdin, "{line}").is_err() {
            break;
        }
    }
    drop(stdin);
    let out = child.wait_with_output().expect("wait for fetchscope step");
    (
        code(&out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The panel's "TCP <state>" line right after the pause that follows `event_line`.
fn state_after(text: &str, event_line: &str) -> Option<String> {
    let at = text.find(event_line)?;
    let rest = &text[at..];
    let panel = rest.find("── paused at")?;
    rest[panel..]
        .lines()
        .find(|l| l.starts_with(" TCP "))
        .map(|l| l.split_whitespace().nth(1).unwrap_or_default().to_string())
}

#[test]
fn piped_commands_step_through_states_and_phases() {
    // n×40 walks well into the TLS handshake; f jumps phase by phase to the teardown.
    let mut script: Vec<&str> = vec!["n"; 40];
    script.extend(["f", "f", "f", "s", "s", "s", "c"]);
    let (status, text) = step_piped(&["--seed", "7"], &script, Duration::ZERO);
    assert_eq!(status, 0, "{text}");
    assert!(text.contains("stepping: the fetch pauses after each event"));
    // SYN-SENT right after the SYN, ESTABLISHED right after our ACK.
    assert_eq!(
        state_after(&text, "[SYN] seq=0").as_deref(),
        Some("SYN-SENT"),
        "{text}"
    );
    assert_eq!(
        state_after(&text, "SYN-SENT → ESTABLISHED").as_deref(),
        Some("ESTABLISHED"),
        "{text}"
    );
    assert!(
        text.contains(" TLS   ClientHello sent · waiting for the ServerHello"),
        "{text}"
    );
    assert!(text.contains("waiting for the server's SYN-ACK; the SYN is resent in"));
    assert!(text.contains("derived from the packets: SND.UNA"));
    assert!(text.contains("FIN-WAIT"), "{text}");
    assert!(
        text.contains("Timings (ms)"),
        "the fetch ran to the end: {text}"
    );
}

#[test]
fn stepping_slowly_gives_the_same_packets_as_a_straight_run() {
    let straight = events(&run(&["fetch", "--json", "--seed", "11"]).stdout);
    let script = ["p", "p", "p", "s", "p", "f", "n", "c"];
    let (status, out) = step_piped(
        &["--json", "--seed", "11"],
        &script,
        Duration::from_millis(700),
    );
    assert_eq!(status, 0);
    let stepped = events(out.as_bytes());
    // The pauses show up as snapshot lines: one per command read, `c` included.
    let snaps = of_type(&stepped, "snapshot");
    assert_eq!(snaps.len(), script.len(), "{out}");
    for s in &snaps {
        assert!(s["next"].is_string() && s["phase"].is_string(), "{s}");
    }
    let packets =
        |ev: &[Value]| -> Vec<Value> { of_type(ev, "packet").into_iter().cloned().collect() };
    assert_eq!(
        packets(&stepped),
        packets(&straight),
        "pausing (several seconds in all) must not change the lab's packets: its clock stops"
    );
    // Everything but the snapshots is the same stream.
    let without_snapshots: Vec<&Value> =
        stepped.iter().filter(|e| e["type"] != "snapshot").collect();
    assert_eq!(without_snapshots.len(), straight.len());
}

#[test]
fn quitting_aborts_the_connection_with_a_rst() {
    let script = ["f", "f", "f", "q"];
    let (status, out) = step_piped(&["--json", "--seed", "3"], &script, Duration::ZERO);
    assert_eq!(status, 130, "{out}");
    let ev = events(out.as_bytes());
    let rst = of_type(&ev, "packet").into_iter().find(|p| {
        p["tcp"]["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "RST"))
    });
    assert!(rst.is_some(), "a RST went out: {out}");
    let err = of_type(&ev, "error");
    assert_eq!(err[0]["kind"], "aborted");
    assert!(err[0]["message"].as_str().unwrap().contains("RST"));
}

#[test]
fn help_and_ladder_commands_answer_at_a_pause() {
    let (status, text) = step_piped(
        &["--seed", "1"],
        &["?", "n", "n", "n", "p", "b", "c"],
        Duration::ZERO,
    );
    assert_eq!(status, 0);
    assert!(text.contains("next TCP or TLS state change"), "{text}");
    assert!(
        text.contains("|-- DNS query"),
        "the ladder of the packets so far: {text}"
    );
}

/// tmux: a real terminal, single keys, the panel redrawn in place.
struct Tmux {
    session: String,
}

impl Tmux {
    fn start(cmd: &str) -> Tmux {
        let session = format!("fsc-step-{}", std::process::id());
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-x",
                "160",
                "-y",
                "60",
                "-s",
                &session,
                cmd,
            ])
            .status()
            .expect("tmux new-session")
            .success();
        assert!(ok, "tmux new-session failed");
        Tmux { session }
    }

    fn keys(&self, keys: &[&str]) {
        let ok = Command::new("tmux")
            .args(["send-keys", "-t", &self.session])
            .args(keys)
            .status()
            .expect("tmux send-keys")
            .success();
        assert!(ok);
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (bounded) until the screen contains `needle`.
    fn wait_for(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(needle) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the screen never showed {needle:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Presses `key` until the panel shows `needle` (at most `max` presses).
    fn press_until(&self, key: &str, needle: &str, max: usize) -> String {
        for _ in 0..max {
            let before = self.screen();
            if before.contains(needle) {
                return before;
            }
            self.keys(&[key]);
            // wait for the screen to change
            let start = Instant::now();
            while self.screen() == before && start.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.wait_for(needle)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

#[test]
fn tmux_steps_key_by_key_through_syn_sent_established_tls_and_fin_wait() {
    if !require(
        have("tmux"),
        "tmux is needed for the terminal test (Debian package tmux)",
    ) {
        return;
    }
    let bin = fetchscope_bin();
    // Keep the pane after exit so the last screen can be read.
    let t = Tmux::start(&format!(
        "NO_COLOR=1 {} step --seed 7; echo EXIT=$?; sleep 30",
        bin.display()
    ));
    t.wait_for("[Enter/n] next");
    let s = t.press_until("n", " TCP   SYN-SENT", 20);
    assert!(s.contains("waiting for the server's SYN-ACK"), "{s}");
    let s = t.press_until("n", " TCP   ESTABLISHED", 20);
    assert!(s.contains("SYN-SENT → ESTABLISHED"), "{s}");
    let s = t.press_until("s", "waiting for the ServerHello", 10);
    assert!(s.contains(" TLS   ClientHello sent"), "{s}");
    let s = t.press_until("s", " TCP   FIN-WAIT-1", 40);
    assert!(
        s.contains("waiting for the server to acknowledge our FIN"),
        "{s}"
    );
    // Tidy: the panel is redrawn in place, not stacked: one panel on screen.
    assert_eq!(s.matches("── paused at").count(), 1, "{s}");
    t.keys(&["c"]);
    let s = t.wait_for("EXIT=");
    assert!(s.contains("EXIT=0"), "{s}");
}
