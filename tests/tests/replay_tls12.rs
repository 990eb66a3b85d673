//! TLS 1.2 in a replayed capture: curl forced to TLS 1.2 with each AEAD family against the
//! namespace lab's nginx, captured by tcpdump with curl's own `SSLKEYLOGFILE`
//! (`CLIENT_RANDOM` lines), replays to the suite nginx chose and the body curl saved.

use std::time::{Duration, Instant};

use fetchscope_tests::netns::{NsLab, output_within};
use fetchscope_tests::{code, events, fetchscope, have, of_type, require, scratch_dir, sha256_hex};

/// Captures `curl --tls-max 1.2 --ciphers CIPHERS https://www.example.test/` in the
/// client namespace; returns (capture, key log, body).
fn capture_curl(lab: &NsLab, ciphers: &str, tag: &str) -> (String, String, Vec<u8>) {
    let dir = scratch_dir(&format!("tls12-{tag}"));
    let pcap = dir.join("c.pcap");
    let keys = dir.join("keys.log");
    let body = dir.join("body");
    let veth = lab.var("FSC_CAPTURE_IF").to_string();
    let ca = lab.var("FSC_CACERT").to_string();
    let script = format!(
        "tcpdump --immediate-mode -U -s 0 -i {veth} -w {pcap} 'port 53 or port 443' 2>{pcap}.err & tp=$!
         for i in $(seq 1 100); do grep -q 'listening on' {pcap}.err && break; sleep 0.1; done
         sleep 0.2
         SSLKEYLOGFILE={keys} curl -sS --tls-max 1.2 --ciphers {ciphers} --cacert {ca} \
             --resolve www.example.test:443:{srv} -o {body} https://www.example.test/
         rc=$?; sleep 1; kill $tp; wait $tp; exit $rc",
        pcap = pcap.display(),
        keys = keys.display(),
        body = body.display(),
        srv = lab.var("FSC_SERVER_ADDR"),
    );
    let mut cmd = lab.in_cli("sh");
    cmd.args(["-c", &script]);
    let out = output_within(cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "curl under tcpdump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        pcap.display().to_string(),
        keys.display().to_string(),
        std::fs::read(&body).expect("curl's body"),
    )
}

#[test]
fn tls12_records_are_decrypted_with_client_random() {
    if !require(have("tcpdump") && have("curl"), "tcpdump and curl") {
        return;
    }
    let Some(lab) = NsLab::up("fsr12") else {
        return;
    };
    for (tag, ciphers, suite) in [
        (
            "gcm",
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256",
            "AES_128_GCM",
        ),
        (
            "chacha",
            "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
            "CHACHA20_POLY1305",
        ),
    ] {
        let (pcap, keys, body) = capture_curl(&lab, ciphers, tag);
        let started = Instant::now();
        let out = fetchscope(&["replay", &pcap, "--keylog", &keys, "--json"])
            .output()
            .expect("run fetchscope replay");
        assert!(started.elapsed() < Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 0, "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let ev = events(&out.stdout);
        let hello = of_type(&ev, "tls")
            .into_iter()
            .find(|t| t["stage"] == "server_hello")
            .expect("a server_hello stage");
        assert_eq!(hello["version"], "TLSv1.2", "{hello}");
        assert!(
            hello["suite"].as_str().unwrap_or_default().contains(suite),
            "{tag}: {hello}"
        );
        // Every protected record after the ChangeCipherSpecs was decrypted.
        let records: Vec<&serde_json::Value> = of_type(&ev, "packet")
            .into_iter()
            .filter_map(|p| p["tls"].as_array())
            .flatten()
            .filter(|r| r["encrypted"] == true)
            .collect();
        assert!(records.len() >= 4, "{tag}: {records:?}");
        assert!(
            records.iter().all(|r| r["decrypted"] == true),
            "{tag}: {records:?}"
        );
        assert!(
            records.iter().any(|r| r["http"] == "GET / HTTP/1.1"),
            "{tag}: the request is read from the decrypted record"
        );
        let req = of_type(&ev, "http_request");
        assert!(
            req[0]["headers"].as_array().is_some_and(|h| h
                .iter()
                .any(|kv| kv[1].as_str().unwrap_or_default().starts_with("curl/"))),
            "{req:?}"
        );
        let done = of_type(&ev, "done");
        assert_eq!(done[0]["status"], 200, "{tag}");
        assert_eq!(
            done[0]["body_sha256"],
            sha256_hex(&body).as_str(),
            "{tag}: the replay's body is curl's"
        );
        assert_eq!(
            done[0]["body_sha256"],
            lab.expected_sha256("www/index.html").as_str(),
            "{tag}: and nginx's file"
        );

        // Without the key log: everything up to the encrypted records, and a note why.
        let out = fetchscope(&["replay", &pcap, "--json"])
            .output()
            .expect("replay");
        assert_eq!(code(&out), 0);
        let ev = events(&out.stdout);
        assert!(
            of_type(&ev, "note")
                .iter()
                .any(|n| n["text"].as_str().unwrap_or_default().contains("--keylog")),
            "{tag}: the note says what the key log would add"
        );
        assert_eq!(of_type(&ev, "done")[0]["status"], 0);
    }
}
