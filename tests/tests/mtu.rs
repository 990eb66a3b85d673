//! `--mtu BYTES`: checked (usage errors, exit 2; more than the link carries, exit 3) and
//! applied (the SYN's MSS, no larger packet sent), in the built-in lab.

use fetchscope_tests::{code, events, of_type, run};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn out_of_range_mtus_are_usage_errors() {
    for (args, says) in [
        (vec!["fetch", "--mtu", "575"], "give 576 to 65535 bytes"),
        (vec!["fetch", "--mtu", "65536"], "give 576 to 65535 bytes"),
        (
            vec!["fetch", "--ipv6", "--mtu", "1279"],
            "give 1280 to 65535 bytes: IPv6",
        ),
    ] {
        let out = run(&args);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(err.contains("--mtu"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
    let out = run(&["fetch", "--mtu", "9000"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 3, "{err}");
    assert!(err.contains("give --mtu 1500 or less"), "{err}");
}

#[test]
fn a_lower_mtu_sets_the_mss_and_caps_every_packet_sent() {
    let url = format!("https://www.example.test/?x={}", "a".repeat(800));
    let out = run(&["fetch", &url, "--mtu", "600", "--json", "--seed", "3"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ev = events(&out.stdout);
    let packets = of_type(&ev, "packet");
    let syn = packets
        .iter()
        .find(|p| p["dir"] == "tx" && p["summary"].as_str().is_some_and(|s| s.contains("[SYN]")))
        .expect("our SYN");
    assert!(
        syn["summary"]
            .as_str()
            .is_some_and(|s| s.contains("mss=560")),
        "{}",
        syn["summary"]
    );
    let sent: Vec<u64> = packets
        .iter()
        .filter(|p| p["dir"] == "tx")
        .filter_map(|p| p["len"].as_u64())
        .collect();
    assert!(sent.iter().all(|&l| l <= 600), "{sent:?}");
    assert!(sent.contains(&600), "the request filled segments: {sent:?}");
}
