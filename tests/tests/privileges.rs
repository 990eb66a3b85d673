//! Privileges are dropped once the TUN device is open, before the first packet is parsed,
//! and output files are created afterwards, as the invoking user.
//!
//! The proof is an observation, not a promise: fetchscope reads `/proc/self/status` when
//! the first packet is handled and reports it in a `note` event just before that packet;
//! the output files' owners and a file the user may not create say the same from outside.
//! The `sudo` case is simulated as `sudo` would leave it: root with `SUDO_UID`/`SUDO_GID`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use fetchscope_tests::netns::{COMMAND_LIMIT, NsLab, Scratch, output_within};
use fetchscope_tests::{events, fetchscope, is_root, of_type, require, sha256_hex};
use serde_json::Value;

/// This file's namespace lab prefix.
const PREFIX: &str = "fspriv";
/// The user and group `nobody`, as `sudo -u` would pass them on.
const NOBODY: &str = "65534";

/// The note about the drop, checking it comes right before the first packet.
fn drop_note(ev: &[Value]) -> String {
    let first_packet = ev
        .iter()
        .position(|e| e["type"] == "packet")
        .expect("a packet event");
    assert!(first_packet > 0, "the first event is a packet");
    let note = &ev[first_packet - 1];
    assert_eq!(
        note["type"], "note",
        "no note before the first packet: {note}"
    );
    assert_eq!(note["t_us"], ev[first_packet]["t_us"]);
    let text = note["text"].as_str().unwrap_or_default().to_string();
    assert!(
        text.starts_with("privileges dropped") && text.contains("before the first packet"),
        "{text}"
    );
    assert_eq!(
        of_type(ev, "note")
            .iter()
            .filter(|n| n["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("privileges")))
            .count(),
        1,
        "one privileges note"
    );
    text
}

/// A scratch directory anyone may write (as /tmp is), for files of the dropped user.
fn open_scratch(tag: &str) -> Scratch {
    let s = Scratch::new(tag);
    std::fs::set_permissions(&s.0, std::fs::Permissions::from_mode(0o1777))
        .expect("chmod the scratch directory");
    s
}

fn owner(path: &Path) -> (u32, u32) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.uid(), m.gid())
}

#[test]
fn through_tun_sudo_drops_to_the_invoking_user_before_the_first_packet() {
    let Some(lab) = NsLab::up(PREFIX) else { return };
    let scratch = open_scratch("priv-tun");
    let body = scratch.0.join("body.html");
    let pcap = scratch.0.join("fetch.pcapng");
    let mut cmd = lab.fetch(
        "/",
        &[
            "--json",
            "-o",
            body.to_str().expect("a UTF-8 path"),
            "--pcap",
            pcap.to_str().expect("a UTF-8 path"),
        ],
    );
    cmd.env("SUDO_UID", NOBODY).env("SUDO_GID", NOBODY);
    let out = output_within(cmd, COMMAND_LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let ev = events(&out.stdout);
    let note = drop_note(&ev);
    assert!(
        note.contains("to the invoking user (sudo)")
            && note.contains("uid 65534 gid 65534, no supplementary groups, capabilities: none")
            && note.contains("bounding set empty, no_new_privs set"),
        "{note}"
    );
    // The files were created after the drop: they belong to the user.
    assert_eq!(owner(&body), (65534, 65534), "owner of the -o file");
    assert_eq!(owner(&pcap), (65534, 65534), "owner of the pcapng file");
    let got = std::fs::read(&body).expect("the body file");
    assert_eq!(sha256_hex(&got), lab.expected_sha256("www/index.html"));
    // The whole fetch ran unprivileged and still completed.
    assert_eq!(of_type(&ev, "done").len(), 1);
}

#[test]
fn through_tun_an_output_file_the_user_may_not_create_is_a_setup_error() {
    let Some(lab) = NsLab::up(PREFIX) else { return };
    // Root's own directory, mode 0755: root could write here, the dropped user cannot.
    let scratch = Scratch::new("priv-denied");
    std::fs::set_permissions(&scratch.0, std::fs::Permissions::from_mode(0o755))
        .expect("chmod the scratch directory");
    let body = scratch.0.join("body.html");
    let mut cmd = lab.fetch("/", &["--json", "-o", body.to_str().expect("a UTF-8 path")]);
    cmd.env("SUDO_UID", NOBODY).env("SUDO_GID", NOBODY);
    let out = output_within(cmd, COMMAND_LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stderr: {stderr}");
    assert!(
        stderr.contains("cannot create the output file") && stderr.contains("ermission denied"),
        "{stderr}"
    );
    assert!(!body.exists());
}

#[test]
fn through_tun_root_without_sudo_keeps_uid_0_but_no_capability() {
    let Some(lab) = NsLab::up(PREFIX) else { return };
    let scratch = Scratch::new("priv-root");
    let body = scratch.0.join("body.html");
    let mut cmd = lab.fetch("/", &["--json", "-o", body.to_str().expect("a UTF-8 path")]);
    cmd.env_remove("SUDO_UID").env_remove("SUDO_GID");
    let out = output_within(cmd, COMMAND_LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let note = drop_note(&events(&out.stdout));
    assert!(
        note.contains("root without sudo")
            && note.contains("uid 0 gid 0")
            && note.contains("capabilities: none, bounding set empty"),
        "{note}"
    );
    assert_eq!(owner(&body).0, 0);
}

#[test]
fn the_built_in_lab_runs_as_the_sudo_user_and_needs_no_privileges() {
    if !require(is_root(), "dropping privileges can only be tested as root") {
        return;
    }
    let scratch = open_scratch("priv-lab");
    let body = scratch.0.join("page.html");
    let out = fetchscope(&[
        "fetch",
        "--json",
        "--seed",
        "1",
        "-o",
        body.to_str().expect("a UTF-8 path"),
    ])
    .env("SUDO_UID", NOBODY)
    .env("SUDO_GID", NOBODY)
    .output()
    .expect("run fetchscope");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The lab needs no privileges, so the drop is not news there: no note in the trace.
    let ev = events(&out.stdout);
    assert!(
        !of_type(&ev, "note").iter().any(|n| n["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("privileges dropped"))),
        "a privileges note in a lab run"
    );
    // It still ran as the user: the body file is theirs.
    assert_eq!(owner(&body), (65534, 65534));
}

#[test]
fn a_bad_sudo_uid_is_a_clear_setup_error() {
    if !require(is_root(), "dropping privileges can only be tested as root") {
        return;
    }
    let out = fetchscope(&["fetch", "--json"])
        .env("SUDO_UID", "bob")
        .output()
        .expect("run fetchscope");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SUDO_UID=bob is not a numeric id"),
        "{stderr}"
    );
}
