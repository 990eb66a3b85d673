//! `fetchscope step` in the built-in lab: driven key by key in tmux (a real terminal),
//! line by line through a pipe, slowly, and quit part-way.

use fetchscope_tests::tmux::Tmux;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use fetchscope_tests::{code, events, fetchscope, fetchscope_bin, have, of_type, require, run};
use serde_json::Value;

/// Runs `fetchscope step ARGS` with `script` fed to stdin, one line at a time, waiting
/// `gap` between lines; returns (exit status, stdout).
fn step_piped(args: &[&str], script: &[&str], gap: Duration) -> (i32, String) {
    let (status, stdout, _) = step_piped_all(args, script, gap);
    (status, stdout)
}

/// [`step_piped`], with stderr too.
fn step_piped_all(args: &[&str], script: &[&str], gap: Duration) -> (i32, String, String) {
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
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The panels of a piped step's text: for each, the line printed just before it and
/// everything printed before it, and the panel's own lines.
fn panels(text: &str) -> Vec<(String, String, Vec<String>)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].starts_with("── paused at") {
            i += 1;
            continue;
        }
        let before = lines[..i].join("\n");
        let prev = lines[..i]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.to_string())
            .unwrap_or_default();
        let start = i;
        while i < lines.len() && !lines[i].contains("[?] help") {
            i += 1;
        }
        out.push((
            prev,
            before,
            lines[start..=i.min(lines.len() - 1)]
                .iter()
                .map(|l| l.to_string())
                .collect(),
        ));
        i += 1;
    }
    out
}

/// The time of an event line (`      10.012 ms  tcp ...`), if it is one.
fn line_time(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let (ms, rest) = t.split_once(" ms  ")?;
    (!rest.is_empty() && ms.parse::<f64>().is_ok()).then_some(ms)
}

#[test]
fn piped_each_panel_comes_after_the_event_it_describes() {
    let script = vec!["n"; 400];
    let (status, text) = step_piped(&["--seed", "7"], &script, Duration::ZERO);
    assert_eq!(status, 0, "{text}");
    let panels = panels(&text);
    assert!(panels.len() > 40, "{text}");
    for (prev, before, panel) in &panels {
        let title = &panel[0];
        // Right after the event that caused the pause: its line (or its phase heading)
        // is the one printed last, at the panel's time.
        let at = title
            .trim_start_matches("── paused at ")
            .split(" ms")
            .next()
            .unwrap_or_default();
        match line_time(prev) {
            Some(t) => assert_eq!(t, at, "panel after {prev:?}:\n{}", panel.join("\n")),
            None => assert!(
                prev.starts_with(char::is_numeric) || prev.starts_with("                "),
                "the panel follows an event line or a phase heading, not {prev:?}"
            ),
        }
        // And it says nothing the events before it do not show yet.
        let body = panel.join("\n");
        let claims = [
            ("waiting for the DNS answer", "DNS query"),
            ("waiting for the server's SYN-ACK", "[SYN] seq=0"),
            ("ClientHello sent", "· ClientHello sni="),
            ("ServerHello received", "ServerHello TLSv1.3"),
            (
                "the HTTP request goes out next",
                "encrypted handshake (Finished)",
            ),
        ];
        for (claim, shown) in claims {
            if body.contains(claim) {
                assert!(
                    before.contains(shown),
                    "the panel says {claim:?} before {shown:?} was printed:\n{body}"
                );
            }
        }
    }
}

#[test]
fn piped_lines_are_printed_whole() {
    let (status, text) = step_piped(&["--seed", "7"], &["n"; 60], Duration::ZERO);
    assert_eq!(status, 0, "{text}");
    for l in text.lines() {
        assert!(!l.ends_with('…'), "a line was cut: {l:?}");
    }
    assert!(text.contains("round of queries sent"), "{text}");
    assert!(text.contains("retransmitted 0/0"), "{text}");
    // The key bar is laid out for 80 columns: two lines, no line cut.
    assert!(text.lines().any(|l| l == " [q] quit  [?] help"), "{text}");
}

#[test]
fn just_after_the_serverhello_the_panel_does_not_wait_for_it() {
    let (status, text) = step_piped(&["--seed", "7"], &["n"; 400], Duration::ZERO);
    assert_eq!(status, 0, "{text}");
    let after_server_hello: Vec<_> = panels(&text)
        .into_iter()
        .filter(|(_, before, _)| before.contains("· ServerHello TLSv1.3"))
        .filter(|(_, before, _)| !before.contains("4. HTTP request"))
        .collect();
    assert!(!after_server_hello.is_empty(), "{text}");
    for (prev, _, panel) in &after_server_hello {
        let body = panel.join("\n");
        assert!(
            !body.contains("waiting for the server's ServerHello")
                && !body.contains("waiting for the ServerHello"),
            "after {prev:?}:\n{body}"
        );
    }
    // The packet with the server's flight, then what rustls makes of it.
    let first = &after_server_hello[0].2.join("\n");
    assert!(
        first.contains("rustls reads the server's answer"),
        "{first}"
    );
    assert!(
        text.contains(
            "the rest of the server's flight is in: rustls checks the certificate chain next"
        ),
        "{text}"
    );
}

#[test]
fn quitting_before_the_syn_went_out_sends_nothing() {
    // p, p: the pauses at the DNS query and at the DNS answer; the same step called
    // connect(), but the SYN goes out only in the next one.
    for script in [
        &["p", "p", "q"][..],
        &["p", "p", "n", "q"],
        &["p", "p", "n", "n", "n", "q"],
    ] {
        let (status, out, err) = step_piped_all(&["--json", "--seed", "3"], script, Duration::ZERO);
        assert_eq!(status, 130, "{script:?}: {out}");
        let ev = events(out.as_bytes());
        let tcp: Vec<_> = of_type(&ev, "packet")
            .into_iter()
            .filter(|p| p["tcp"].is_object())
            .collect();
        assert!(
            tcp.is_empty(),
            "{script:?}: nothing but DNS was sent: {tcp:?}"
        );
        let error = of_type(&ev, "error");
        let msg = error[0]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("nothing was sent"), "{script:?}: {msg}");
        assert!(!msg.contains("RST"), "{script:?}: {msg}");
        assert!(err.contains("nothing was sent"), "{err}");
    }
}

#[test]
fn quitting_after_the_syn_sends_a_rst_and_says_why() {
    let (status, out) = step_piped(
        &["--json", "--seed", "3"],
        &["p", "p", "p", "q"],
        Duration::ZERO,
    );
    assert_eq!(status, 130, "{out}");
    let ev = events(out.as_bytes());
    let flags: Vec<String> = of_type(&ev, "packet")
        .into_iter()
        .filter_map(|p| p["tcp"]["flags"].as_array().map(|f| format!("{f:?}")))
        .collect();
    assert_eq!(flags.len(), 2, "the SYN, then the RST: {flags:?}");
    assert!(flags[1].contains("RST"), "{flags:?}");
    let error = of_type(&ev, "error");
    let msg = error[0]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("aborted with a RST"), "{msg}");
}

#[test]
fn an_unknown_command_is_answered_and_the_step_stays_paused() {
    // "foo" is not `f` (a phase): the step stays at the first pause, and q then quits
    // before anything was sent.
    let (status, text, _) = step_piped_all(&["--seed", "7"], &["x", "foo", "q"], Duration::ZERO);
    assert_eq!(status, 130, "{text}");
    assert_eq!(
        text.matches("unknown command 'x' — ? shows the keys")
            .count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("unknown command 'foo' — ? shows the keys"),
        "{text}"
    );
    assert_eq!(
        text.matches("── paused at").count(),
        1,
        "still the first pause: {text}"
    );
    assert!(!text.contains("→ #1"), "nothing was sent: {text}");
    // In --json mode the hint goes to stderr; stdout stays NDJSON.
    let (status, out, err) =
        step_piped_all(&["--json", "--seed", "7"], &["x", "c"], Duration::ZERO);
    assert_eq!(status, 0, "{out}");
    assert!(err.contains("unknown command 'x'"), "{err}");
    let ev = events(out.as_bytes());
    // One snapshot per pause: the unknown command did not move on, nor redraw.
    assert_eq!(of_type(&ev, "snapshot").len(), 1, "{out}");
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
    let t = Tmux::start(
        "step",
        &format!(
            "NO_COLOR=1 {} step --seed 7; echo EXIT=$?; sleep 30",
            bin.display()
        ),
        160,
    );
    t.wait_for("[Enter/n] next");
    let s = t.press_until("n", " TCP   SYN-SENT", 20);
    assert!(
        s.contains("connect() queued the SYN: it goes out next"),
        "{s}"
    );
    let s = t.press_until("n", "waiting for the server's SYN-ACK", 3);
    assert!(s.contains("[SYN] seq=0"), "{s}");
    let s = t.press_until("n", " TCP   ESTABLISHED", 20);
    assert!(s.contains("SYN-SENT → ESTABLISHED"), "{s}");
    let s = t.press_until("n", "waiting for the ServerHello", 10);
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

#[test]
fn tmux_at_80_columns_the_key_bar_fits_and_an_unknown_key_is_answered() {
    if !require(
        have("tmux"),
        "tmux is needed for the terminal test (Debian package tmux)",
    ) {
        return;
    }
    let bin = fetchscope_bin();
    let t = Tmux::start(
        "step",
        &format!(
            "NO_COLOR=1 {} step --seed 7; echo EXIT=$?; sleep 30",
            bin.display()
        ),
        80,
    );
    let s = t.wait_for("[?] help");
    // The panel and its key bar (event lines above it wrap as the terminal likes).
    let panel = &s[s.find("── paused at").expect("a panel")..];
    for l in panel.lines() {
        assert!(l.chars().count() < 80, "a line fills the row: {l:?}");
        assert!(!l.ends_with("[…"), "the key bar is cut: {l:?}");
    }
    assert!(s.contains("[Enter/n] next"), "{s}");
    assert!(s.contains("[q] quit"), "{s}");
    // An unknown key: one line, still at the same pause.
    t.keys(&["x"]);
    let s = t.wait_for("unknown key 'x' — ? shows the keys");
    assert_eq!(s.matches("── paused at").count(), 1, "{s}");
    assert!(s.contains("── paused at 0.000 ms"), "{s}");
    // The next redraw takes the hint away again.
    let s = t.press_until("n", "→ #1", 5);
    assert!(!s.contains("unknown key"), "{s}");
    t.keys(&["q"]);
    let s = t.wait_for("EXIT=");
    assert!(s.contains("EXIT=130"), "{s}");
}
