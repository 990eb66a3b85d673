//! Proxies like requests, through the namespace lab's real tinyproxy: HTTPS through a
//! CONNECT tunnel (its own phase, the right digest), `HTTPS_PROXY` from the environment,
//! `NO_PROXY` and `--noproxy` bypassing it, proxy Basic authentication and its 407,
//! `http://` in absolute form, and a proxy URL that does not parse.

use fetchscope_tests::netns::NsLab;
use fetchscope_tests::{code, events, of_type};
use serde_json::Value;

/// Runs `cmd` and returns (exit status, NDJSON events, stderr).
fn fetch_json(mut cmd: std::process::Command) -> (i32, Vec<Value>, String) {
    let out = cmd.arg("--json").output().expect("run fetchscope");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (code(&out), events(&out.stdout), stderr)
}

/// The phases the run went through, in order.
fn phases(ev: &[Value]) -> Vec<String> {
    of_type(ev, "phase")
        .iter()
        .filter_map(|p| p["phase"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn https_goes_through_a_connect_tunnel() {
    let Some(lab) = NsLab::up("fsprx") else {
        return;
    };
    let proxy = lab.var("FSC_PROXY").to_owned();
    let want = lab.expected_sha256("www/index.html");

    // --proxy
    let (c, ev, err) = fetch_json(lab.fetch("/", &["--proxy", &proxy]));
    assert_eq!(c, 0, "{err}");
    assert_eq!(
        phases(&ev)[..4],
        ["resolve", "connect", "proxy", "tls"],
        "the tunnel is its own phase"
    );
    let px = of_type(&ev, "proxy");
    assert_eq!(px[0]["stage"], "connect_sent", "{px:?}");
    assert_eq!(px[0]["line"], "CONNECT www.example.test:443 HTTP/1.1");
    assert_eq!(px[1]["stage"], "established", "{px:?}");
    assert_eq!(px[1]["status"], 200);
    let packets = of_type(&ev, "packet");
    assert!(
        packets.iter().any(|p| p["phase"] == "proxy"
            && p["summary"]
                .as_str()
                .unwrap_or_default()
                .contains("CONNECT www.example.test:443")),
        "the CONNECT's packet is decoded"
    );
    assert!(
        packets.iter().any(|p| p["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("ClientHello sni=www.example.test")),
        "TLS inside the tunnel is decoded"
    );
    let done = of_type(&ev, "done")[0];
    assert_eq!(done["status"], 200);
    assert_eq!(done["body_sha256"], want.as_str());
    assert_eq!(
        done["remote"].as_str().unwrap_or_default(),
        format!("{}:3128", lab.var("FSC_PROXY_ADDR")),
        "the TCP connection is to the proxy"
    );

    // HTTPS_PROXY from the environment, as requests reads it; NO_PROXY bypasses it.
    let mut cmd = lab.fetch("/", &[]);
    cmd.env("HTTPS_PROXY", &proxy);
    let (c, ev, err) = fetch_json(cmd);
    assert_eq!(c, 0, "{err}");
    assert_eq!(of_type(&ev, "proxy")[0]["source"], "HTTPS_PROXY");
    let mut cmd = lab.fetch("/", &[]);
    cmd.env("HTTPS_PROXY", &proxy)
        .env("NO_PROXY", ".example.test");
    let (c, ev, err) = fetch_json(cmd);
    assert_eq!(c, 0, "{err}");
    assert!(
        of_type(&ev, "proxy").is_empty(),
        "NO_PROXY bypasses the proxy"
    );
    assert!(!phases(&ev).contains(&"proxy".to_owned()));
    assert_eq!(of_type(&ev, "done")[0]["body_sha256"], want.as_str());
    let (c, ev, _) = fetch_json(lab.fetch("/", &["--proxy", &proxy, "--noproxy", "*"]));
    assert_eq!(c, 0);
    assert!(of_type(&ev, "proxy").is_empty(), "--noproxy '*'");

    // Authentication: 407 without credentials, a tunnel with them; never printed.
    let auth = lab.var("FSC_PROXY_AUTH").to_owned();
    let (c, ev, err) = fetch_json(lab.fetch("/", &["--proxy", &auth]));
    assert_eq!(c, 5, "{err}");
    let e = of_type(&ev, "error")[0];
    assert_eq!(
        (e["phase"].as_str(), e["kind"].as_str()),
        (Some("proxy"), Some("proxy-auth"))
    );
    assert!(
        err.contains("407") && err.contains("http://user:password@"),
        "{err}"
    );
    let (user, pass) = (lab.var("FSC_PROXY_USER"), lab.var("FSC_PROXY_PASS"));
    let with = auth.replacen("http://", &format!("http://{user}:{pass}@"), 1);
    let out = lab
        .fetch("/", &["--proxy", &with, "--json"])
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(pass), "the proxy password is never printed");
    assert!(all.contains("Proxy-Authorization") && all.contains("<redacted, "));
}

#[test]
fn http_goes_in_absolute_form_and_bad_proxies_are_named() {
    let Some(lab) = NsLab::up("fsprh") else {
        return;
    };
    let proxy = lab.var("FSC_PROXY").to_owned();
    let mut cmd = lab.in_cli(fetchscope_tests::fetchscope_bin());
    cmd.arg("fetch")
        .arg("http://www.example.test/anything")
        .args(lab.tun_args())
        .env("HTTP_PROXY", &proxy);
    let (c, ev, err) = fetch_json(cmd);
    assert_eq!(c, 0, "{err}");
    let req = of_type(&ev, "http_request")[0];
    assert_eq!(
        req["target"], "http://www.example.test/anything",
        "absolute form"
    );
    assert!(
        !phases(&ev).contains(&"proxy".to_owned()),
        "no tunnel for http://"
    );
    let done = of_type(&ev, "done")[0];
    assert_eq!(done["status"], 200);
    let via = done["exchanges"][0]["response_headers"]
        .as_array()
        .and_then(|h| h.iter().find(|p| p[0] == "via"))
        .cloned();
    assert!(via.is_some(), "tinyproxy added Via: {done}");

    for (bad, words) in [
        (
            "socks5://10.88.0.7:1080",
            "socks5:// proxies are not supported",
        ),
        ("http://", "--proxy"),
    ] {
        let out = lab.fetch("/", &["--proxy", bad]).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 2, "{bad}: {err}");
        assert!(err.contains(words), "{bad}: {err}");
    }
}
