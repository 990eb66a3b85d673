//! Request options with curl's names, in the built-in lab (no root): methods and bodies
//! echoed by the lab's `/anything`, Basic authentication, redirects limited, `-o` kept
//! safe, `-o -`, `-s`, `-w`, `--fail`, `-k`, `--connect-timeout`, secrets never printed,
//! and bad input named by its option.

use std::path::Path;

use fetchscope_tests::{code, events, of_type, run, scratch_dir, sha256_hex};
use serde_json::Value;

/// Runs a fetch with `-o FILE` in `dir` and returns (exit status, stderr, the body as JSON).
fn echo(dir: &Path, args: &[&str]) -> (i32, String, Value) {
    let body = dir.join("echo.json");
    let body_s = body.to_str().expect("utf-8 path");
    let mut all = vec!["fetch", "-s", "-o", body_s];
    all.extend_from_slice(args);
    let out = run(&all);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let text = std::fs::read(&body).unwrap_or_default();
    let v = serde_json::from_slice(&text).unwrap_or(Value::Null);
    (code(&out), stderr, v)
}

#[test]
fn methods_and_bodies_reach_the_server_as_given() {
    let dir = scratch_dir("req-bodies");
    let url = "https://www.example.test/anything?q=1";
    let (c, err, v) = echo(&dir, &[url, "--json-body", r#"{"a":1}"#]);
    assert_eq!(c, 0, "{err}");
    assert_eq!(v["method"], "POST", "{v}");
    assert_eq!(v["json"]["a"], 1, "{v}");
    assert_eq!(v["headers"]["Content-Type"], "application/json", "{v}");
    assert_eq!(v["args"]["q"], "1", "{v}");

    let (c, err, v) = echo(&dir, &[url, "-X", "PUT", "-d", "x=1", "-d", "y=2"]);
    assert_eq!(c, 0, "{err}");
    assert_eq!(v["method"], "PUT", "{v}");
    assert_eq!(v["form"]["x"], "1", "{v}");
    assert_eq!(v["form"]["y"], "2", "{v}");
    assert_eq!(
        v["headers"]["Content-Type"], "application/x-www-form-urlencoded",
        "{v}"
    );

    let (c, err, v) = echo(
        &dir,
        &[
            url,
            "-X",
            "DELETE",
            "-H",
            "X-Mine: one",
            "-H",
            "Accept:",
            "-A",
            "probe/1",
        ],
    );
    assert_eq!(c, 0, "{err}");
    assert_eq!(v["method"], "DELETE", "{v}");
    assert_eq!(v["headers"]["X-Mine"], "one", "{v}");
    assert_eq!(v["headers"]["User-Agent"], "probe/1", "{v}");
    assert!(v["headers"].get("Accept").is_none(), "Accept: removed: {v}");
    assert_eq!(v["headers"]["Content-Length"], "0", "as requests: {v}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_body_is_streamed_whole() {
    let dir = scratch_dir("req-file");
    let file = dir.join("upload.txt");
    // 3 MiB of text, so the echo's `data` holds it as a string.
    let content: String = (0..3 * 1024 * 1024 / 64)
        .map(|i| format!("{i:063}\n"))
        .collect();
    std::fs::write(&file, &content).expect("write the upload");
    let at = format!("@{}", file.display());
    let (c, err, v) = echo(
        &dir,
        &[
            "https://www.example.test/anything",
            "--data-binary",
            &at,
            "-H",
            "Content-Type: text/plain",
            "--timeout",
            "120",
        ],
    );
    assert_eq!(c, 0, "{err}");
    let data = v["data"].as_str().unwrap_or_default();
    assert_eq!(data.len(), content.len(), "the echo got every byte");
    assert_eq!(sha256_hex(data.as_bytes()), sha256_hex(content.as_bytes()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_answer_before_the_whole_body_ends_the_upload() {
    // The lab answers a body over 16 MiB with 413 at once: the rest is not sent, and the
    // fetch ends with that answer (it used to wait for --timeout).
    let dir = scratch_dir("req-413");
    let file = dir.join("big.bin");
    std::fs::write(&file, vec![b'x'; 17 * 1024 * 1024]).expect("write");
    let at = format!("@{}", file.display());
    let out = run(&[
        "fetch",
        "--json",
        "https://www.example.test/anything",
        "--data-binary",
        &at,
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let ev = events(&out.stdout);
    assert_eq!(of_type(&ev, "done")[0]["status"], 413);
    assert!(
        of_type(&ev, "note").iter().any(|n| n["text"]
            .as_str()
            .unwrap_or_default()
            .contains("before the whole request body was sent")),
        "the trace says the rest was not sent"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn head_sends_head_and_gets_no_body() {
    let out = run(&["fetch", "-I", "--json", "https://www.example.test/"]);
    assert_eq!(code(&out), 0);
    let ev = events(&out.stdout);
    let req = of_type(&ev, "http_request");
    assert_eq!(req[0]["method"], "HEAD", "{:?}", req);
    let done = of_type(&ev, "done");
    assert_eq!(done[0]["status"], 200);
    assert_eq!(done[0]["body_bytes"], 0);
}

#[test]
fn basic_auth_from_the_option_and_from_the_url() {
    let dir = scratch_dir("req-auth");
    let (c, err, v) = echo(
        &dir,
        &["https://www.example.test/basic-auth/me/pw", "-u", "me:pw"],
    );
    assert_eq!(c, 0, "{err}");
    assert_eq!(v["authenticated"], true, "{v}");
    let (c, err, v) = echo(&dir, &["https://me:pw@www.example.test/basic-auth/me/pw"]);
    assert_eq!(c, 0, "{err}");
    assert_eq!(v["user"], "me", "{v}");
    let out = run(&[
        "fetch",
        "--json",
        "-u",
        "me:wrong",
        "https://www.example.test/basic-auth/me/pw",
    ]);
    let ev = events(&out.stdout);
    assert_eq!(of_type(&ev, "done")[0]["status"], 401);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn secrets_appear_in_no_output_unless_asked() {
    let dir = scratch_dir("req-secrets");
    let har = dir.join("f.har");
    let report = dir.join("f.html");
    let url = "https://me:s3cretpass@www.example.test/anything";
    let common = [
        "-H",
        "Cookie: session=tok-abcdef",
        "-H",
        "Authorization-Note: plain",
        "--ladder",
    ];
    let basic = "bWU6czNjcmV0cGFzcw=="; // base64("me:s3cretpass")
    let secrets = ["s3cretpass", basic, "tok-abcdef"];
    let mut args = vec!["fetch", url, "--har", har.to_str().unwrap(), "--report"];
    args.push(report.to_str().unwrap());
    args.extend_from_slice(&common);
    let text = run(&args);
    assert_eq!(code(&text), 0, "{}", String::from_utf8_lossy(&text.stderr));
    let mut json_args = args.clone();
    json_args.push("--json");
    let json = run(&json_args);
    assert_eq!(code(&json), 0);
    let outputs = [
        (
            "text stdout",
            String::from_utf8_lossy(&text.stdout).into_owned(),
        ),
        (
            "text stderr",
            String::from_utf8_lossy(&text.stderr).into_owned(),
        ),
        (
            "json stdout",
            String::from_utf8_lossy(&json.stdout).into_owned(),
        ),
        (
            "json stderr",
            String::from_utf8_lossy(&json.stderr).into_owned(),
        ),
        ("har", std::fs::read_to_string(&har).expect("HAR written")),
        (
            "report",
            std::fs::read_to_string(&report).expect("report written"),
        ),
    ];
    for (name, content) in &outputs {
        for s in secrets {
            assert!(!content.contains(s), "{s} appears in the {name}");
        }
    }
    assert!(
        outputs[0].1.contains("<redacted, "),
        "the text says what was redacted"
    );
    // The echo's body shows the request: it is redacted there too.
    assert!(
        outputs[0].1.contains("\"Cookie\": \"<redacted"),
        "{}",
        outputs[0].1
    );

    let mut shown = args.clone();
    shown.push("--show-secrets");
    let out = run(&shown);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("tok-abcdef"),
        "--show-secrets shows the cookie"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn redirects_are_limited_by_max_redirs() {
    let out = run(&[
        "fetch",
        "-s",
        "--max-redirs",
        "0",
        "-w",
        "%{http_code} %{num_redirects}",
        "https://www.example.test/redirect/3",
    ]);
    assert_eq!(code(&out), 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "302 0");
    let out = run(&[
        "fetch",
        "-s",
        "--max-redirs",
        "2",
        "https://www.example.test/redirect/3",
    ]);
    assert_eq!(code(&out), 7);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("more than 2 redirects, as --max-redirs allows"),
        "{err}"
    );
    let out = run(&[
        "fetch",
        "-s",
        "-L",
        "https://www.example.test/redirect/3",
        "-w",
        "%{num_redirects}",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "3");
}

#[test]
fn output_files_are_kept_safe() {
    let dir = scratch_dir("req-output");
    let keep = dir.join("keep.txt");
    let keep_s = keep.to_str().unwrap();
    let part = dir.join("keep.txt.part");
    std::fs::write(&keep, "precious").unwrap();

    // DNS fails: nothing is touched, nothing is left.
    let out = run(&["fetch", "-s", "-o", keep_s, "--lab-fault", "nxdomain"]);
    assert_eq!(code(&out), 4);
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "precious");
    assert!(!part.exists());

    // A truncated body: the file stays, the part is removed and the message says so.
    let out = run(&["fetch", "-s", "-o", keep_s, "--lab-fault", "truncated"]);
    assert_eq!(code(&out), 7, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "precious");
    assert!(!part.exists(), "the partial body is removed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("were removed (--keep-partial keeps them)"),
        "{err}"
    );

    // --keep-partial keeps it, and says how many bytes it holds.
    let out = run(&[
        "fetch",
        "-s",
        "-o",
        keep_s,
        "--keep-partial",
        "--lab-fault",
        "truncated",
    ]);
    assert_eq!(code(&out), 7);
    let n = std::fs::metadata(&part).expect("the part is kept").len();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("the {n} body bytes")), "{err}");
    let _ = std::fs::remove_file(&part);

    // Success replaces it.
    let out = run(&[
        "fetch",
        "-s",
        "-o",
        keep_s,
        "https://www.example.test/bytes/1000",
    ]);
    assert_eq!(code(&out), 0);
    assert_eq!(
        std::fs::read(&keep).unwrap(),
        fetchscope_tests::lab_bytes(1000)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_body_can_go_to_stdout_and_the_trace_to_stderr() {
    let out = run(&["fetch", "-o", "-", "https://www.example.test/bytes/5000"]);
    assert_eq!(code(&out), 0);
    assert_eq!(
        out.stdout,
        fetchscope_tests::lab_bytes(5000),
        "stdout is the body"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Body: 5000 bytes"),
        "the trace is on stderr: {err}"
    );
}

#[test]
fn silent_fail_and_write_out() {
    let out = run(&["fetch", "-s", "https://www.example.test/"]);
    assert_eq!(code(&out), 0);
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "-s prints nothing"
    );

    let out = run(&[
        "fetch",
        "-s",
        "--fail",
        "https://www.example.test/status/404",
    ]);
    assert_eq!(code(&out), 22);
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 404"));
    let out = run(&["fetch", "-s", "https://www.example.test/status/404"]);
    assert_eq!(
        code(&out),
        0,
        "without --fail any status is a completed fetch"
    );

    // -w '%{json}' carries the done event's timings (it goes to stderr beside --json).
    let out = run(&["fetch", "--json", "--seed", "3", "-w", "%{json}"]);
    assert_eq!(code(&out), 0);
    let ev = events(&out.stdout);
    let done = of_type(&ev, "done")[0];
    let w: Value = serde_json::from_slice(&out.stderr).expect("-w %{json} is JSON");
    assert_eq!(w["http_code"], done["status"]);
    for (var, ms) in [
        ("time_namelookup", "dns_ms"),
        ("time_connect", "connect_ms"),
        ("time_appconnect", "tls_ms"),
        ("time_starttransfer", "ttfb_ms"),
        ("time_total", "total_ms"),
    ] {
        let secs = w[var].as_f64().expect(var);
        let want = done["timings"][ms].as_f64().expect(ms) / 1000.0;
        assert!((secs - want).abs() < 1e-9, "{var} {secs} vs {ms} {want}");
    }
    assert_eq!(w["size_download"], done["wire_body_bytes"]);
    assert_eq!(w["url_effective"], "https://www.example.test/");
    let remote = done["remote"].as_str().unwrap();
    assert_eq!(
        format!(
            "{}:{}",
            w["remote_ip"].as_str().unwrap(),
            w["remote_port"].as_str().unwrap()
        ),
        remote
    );
}

#[test]
fn insecure_reports_the_bad_certificate_and_goes_on() {
    let out = run(&["fetch", "--lab-fault", "cert-expired", "--json"]);
    assert_eq!(code(&out), 6, "verified by default");
    let out = run(&["fetch", "-k", "--lab-fault", "cert-expired", "--json"]);
    assert_eq!(code(&out), 0);
    let ev = events(&out.stdout);
    let tls = of_type(&ev, "tls");
    assert!(
        tls.iter().any(|t| t["stage"] == "certificate_not_verified"
            && t["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("INSECURE")),
        "{tls:?}"
    );
    let dir = scratch_dir("req-insecure");
    let har = dir.join("k.har");
    let text = run(&[
        "fetch",
        "-k",
        "--lab-fault",
        "cert-expired",
        "--ladder",
        "--har",
        har.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("INSECURE"), "{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with("certificate problems did not stop this fetch"),
        "the ladder says so too: {stdout}"
    );
    let har: Value = serde_json::from_slice(&std::fs::read(&har).unwrap()).unwrap();
    assert!(
        har["log"]["comment"]
            .as_str()
            .unwrap_or_default()
            .contains("INSECURE"),
        "{}",
        har["log"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn connect_timeout_names_itself() {
    let out = run(&["fetch", "-s", "--loss", "100", "--connect-timeout", "2"]);
    assert_eq!(code(&out), 8);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("timed out after 2 s") && err.contains("--connect-timeout"),
        "{err}"
    );
}

#[test]
fn bad_request_options_are_usage_errors_naming_the_option() {
    for (args, words) in [
        (vec!["-H", "X-A: a\nb"], "-H/--header"),
        (vec!["-H", "no colon"], "-H/--header"),
        (vec!["-X", "GE T"], "-X/--request"),
        (
            vec!["-d", "@/nonexistent/body"],
            "-d/--data @/nonexistent/body",
        ),
        (vec!["--data-binary", "@/nonexistent/body"], "--data-binary"),
        (vec!["--max-redirs", "-1"], "--max-redirs"),
        (vec!["-u", "nopassword"], "-u/--user"),
        (vec!["-I", "-d", "x"], "-I/--head"),
        (vec!["-w", "%{nope}"], "%{nope}"),
    ] {
        let mut all = vec!["fetch"];
        all.extend(args.iter().copied());
        let out = run(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 2, "{args:?}: {err}");
        assert!(err.contains(words), "{args:?}: {err}");
        assert!(err.starts_with("fetchscope: "), "{args:?}: {err}");
    }
}

#[test]
fn the_lab_proxy_tunnels_https_and_forwards_http() {
    let direct = run(&["fetch", "--json", "--seed", "4"]);
    let direct_sha = of_type(&events(&direct.stdout), "done")[0]["body_sha256"].clone();
    let out = run(&[
        "fetch",
        "--json",
        "--seed",
        "4",
        "--proxy",
        "http://proxy.example.test:3128",
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let ev = events(&out.stdout);
    let phases: Vec<&str> = of_type(&ev, "phase")
        .iter()
        .filter_map(|p| p["phase"].as_str())
        .collect();
    assert_eq!(
        phases[..4],
        ["resolve", "connect", "proxy", "tls"],
        "{phases:?}"
    );
    let px = of_type(&ev, "proxy");
    assert_eq!(px.len(), 2, "{px:?}");
    assert_eq!(px[1]["line"], "HTTP/1.1 200 Connection established");
    let done = of_type(&ev, "done")[0];
    assert_eq!(
        done["body_sha256"], direct_sha,
        "the same page through the tunnel"
    );
    assert!(
        done["remote"]
            .as_str()
            .unwrap_or_default()
            .ends_with(":3128"),
        "{done}"
    );

    // 3129 wants credentials: 407 names the phase and the way out; with them it works.
    let out = run(&["fetch", "-s", "--proxy", "http://proxy.example.test:3129"]);
    assert_eq!(code(&out), 5);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("fetchscope: proxy failed: ") && err.contains("407"),
        "{err}"
    );
    let out = run(&[
        "fetch",
        "--proxy",
        "http://proxyuser:proxypass@proxy.example.test:3129",
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("proxypass"),
        "the proxy password is never printed"
    );

    // http:// goes to the proxy in absolute form.
    let out = run(&[
        "fetch",
        "--json",
        "--proxy",
        "proxy.example.test:3128",
        "http://www.example.test/status/418",
    ]);
    assert_eq!(code(&out), 0);
    let ev = events(&out.stdout);
    assert_eq!(
        of_type(&ev, "http_request")[0]["target"],
        "http://www.example.test/status/418"
    );
    assert_eq!(of_type(&ev, "done")[0]["status"], 418);

    // The environment's proxies are for real networks: the built-in lab ignores them.
    let out = fetchscope_tests::fetchscope(&["fetch", "-s"])
        .env("HTTPS_PROXY", "http://proxy.example.test:3129")
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn per_leg_timings_of_a_redirect_chain() {
    let out = run(&[
        "fetch",
        "--json",
        "--seed",
        "2",
        "https://www.example.test/to-cdn",
    ]);
    assert_eq!(code(&out), 0);
    let ev = events(&out.stdout);
    let done = of_type(&ev, "done")[0];
    let legs = done["exchanges"].as_array().expect("exchanges");
    assert_eq!(legs.len(), 2);
    for leg in legs {
        let t = &leg["timings"];
        let v = |k: &str| t[k].as_f64().unwrap_or(-1.0);
        assert!(v("dns_ms") > 0.0, "each leg looks its host up: {leg}");
        assert!(v("dns_ms") <= v("connect_ms") && v("connect_ms") <= v("tls_ms"));
        assert!(
            v("tls_ms") <= v("ttfb_ms") && v("ttfb_ms") <= v("total_ms"),
            "{leg}"
        );
    }
    let text = run(&["fetch", "--seed", "2", "https://www.example.test/to-cdn"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("per leg, from each leg's start:"), "{text}");
    assert!(
        text.contains("2. 200 GET https://cdn.example.test/"),
        "{text}"
    );
}
