//! fetchscope's request options (`-X`, `-H`, `-d`, `--json-body`, `-I`, `-u`, `--as`,
//! `-w`, `--show-secrets`) against Python's requests, through the TUN device in the
//! namespace lab: nginx passes `/anything`, `/basic-auth/USER/PASS` and `/status/N` to the
//! lab's echo service (scripts/lab/echo.py), which answers with what it received. The same
//! request made by fetchscope and by `requests.request(...)` (run in the client namespace,
//! with the lab's resolv.conf bind-mounted over /etc's in that command only) must reach the
//! echo the same way: the same status, method, body and headers — with `--as requests`
//! every header line, in order. Secrets never appear in any output unless
//! `--show-secrets` asks, and `-w '%{json}'` reports the `done` event's numbers.
//!
//! Needs root and the namespace lab's tools, plus python3 with requests (scripts/test.sh
//! installs python3-requests); skips with a reason otherwise, fails under `CI=true`.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use fetchscope_tests::netns::{COMMAND_LIMIT, NsLab, Scratch, output_within};
use fetchscope_tests::{code, events, have, of_type, require, sha256_hex};
use serde_json::{Value, json};

/// The lab's name prefix for this test binary (see `FSC_LAB_PREFIX` in netns-lab.sh).
const PREFIX: &str = "fsreq";

/// The echo's URL (the path every `/anything` request here uses).
const ECHO: &str = "https://www.example.test/anything";

fn python_requests() -> bool {
    require(
        have("python3")
            && std::process::Command::new("python3")
                .args(["-c", "import requests"])
                .status()
                .is_ok_and(|s| s.success()),
        "python3 with requests is needed (Debian package python3-requests)",
    )
}

// ------------------------------------------------------------------ requests

/// Runs inside the client namespace: `$1` is the lab's resolver directory, bind-mounted
/// over /etc's files as netns-lab.sh does for its own programs (the mounts live in this
/// command's mount namespace only), then `python3 -c SCRIPT ARGS...`.
const WITH_LAB_RESOLVER: &str = r#"mount --bind "$1/resolv.conf" /etc/resolv.conf || exit 1
if [ -e /etc/nsswitch.conf ]; then mount --bind "$1/nsswitch.conf" /etc/nsswitch.conf || exit 1; fi
if [ -e /etc/hosts ]; then mount --bind "$1/hosts" /etc/hosts || exit 1; fi
shift
exec python3 -c "$@""#;

/// `requests.request(method, url, verify=CA, **kwargs)` for each spec of argv[2] (a JSON
/// list of `{"method", "url", "kwargs"}`; `auth` given as a list becomes a tuple); prints
/// one JSON list: per request the status, the decoded body, its digest, and the head and
/// body requests prepared (`r.request`; http.client puts `Host` before these headers).
const REQUESTS_PY: &str = r#"
import hashlib, json, sys
import requests

ca, specs = sys.argv[1], json.loads(sys.argv[2])
out = []
for s in specs:
    kw = dict(s.get("kwargs") or {})
    if "auth" in kw:
        kw["auth"] = tuple(kw["auth"])
    try:
        r = requests.request(s["method"], s["url"], verify=ca, timeout=60, **kw)
    except requests.RequestException as e:
        out.append({"error": type(e).__name__, "message": str(e)})
        continue
    body = r.request.body
    if isinstance(body, str):
        body = body.encode()
    out.append({
        "status": r.status_code,
        "sha256": hashlib.sha256(r.content).hexdigest(),
        "body_bytes": len(r.content),
        "body": r.content.decode("utf-8", "replace"),
        "sent_headers": [[k, v] for k, v in r.request.headers.items()],
        "sent_body": None if body is None else body.decode("utf-8", "replace"),
        "requests_version": requests.__version__,
    })
print(json.dumps(out))
"#;

/// What requests says for each of `specs`, in one Python run in the client namespace.
fn requests_batch(lab: &NsLab, specs: &[Value]) -> Vec<Value> {
    let list = Value::Array(specs.to_vec()).to_string();
    let mut cmd = lab.in_cli("sh");
    cmd.args(["-c", WITH_LAB_RESOLVER, "sh"])
        .arg(lab.var("FSC_RESOLV_DIR"))
        .arg(REQUESTS_PY)
        .arg(lab.var("FSC_CACERT"))
        .arg(&list);
    let out = output_within(cmd, COMMAND_LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the requests script failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("the requests script said something that is not JSON ({e}): {stdout}\n{stderr}")
    });
    let results = v.as_array().cloned().unwrap_or_default();
    assert_eq!(
        results.len(),
        specs.len(),
        "the requests script answered {} of {} requests: {v}",
        results.len(),
        specs.len()
    );
    for (spec, r) in specs.iter().zip(&results) {
        assert!(r["error"].is_null(), "requests failed on {spec}: {r}");
    }
    results
}

/// A spec for [`requests_batch`].
fn spec(method: &str, url: &str, kwargs: Value) -> Value {
    json!({"method": method, "url": url, "kwargs": kwargs})
}

// ------------------------------------------------------------------ fetchscope

/// One completed fetchscope run: its NDJSON events, the `-o` body and stderr.
struct Ours {
    events: Vec<Value>,
    body: Vec<u8>,
    stderr: String,
    what: String,
}

impl Ours {
    /// The single `done` event.
    fn done(&self) -> &Value {
        let done = of_type(&self.events, "done");
        assert_eq!(
            done.len(),
            1,
            "{}: {} done events instead of one; stderr:\n{}",
            self.what,
            done.len(),
            self.stderr
        );
        done[0]
    }

    /// The body parsed as the echo's JSON.
    fn echo(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: the body is not the echo's JSON ({e}): {}",
                self.what,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// The requests release `--as requests` imitates (`fetchscope_core::http::REQUESTS_VERSION`,
/// pinned by that crate's byte-for-byte head test).
const IMITATED_REQUESTS: &str = "2.34.2";

/// [`ours_plain`], and when `extra` asks for `--as requests` while another requests release is
/// installed, with that release's `User-Agent` (`-A`): the rest of the head must still be
/// requests' byte for byte. Says so on stderr.
fn ours_as(lab: &NsLab, dir: &Path, path: &str, extra: &[&str], installed: Option<&str>) -> Ours {
    let imitates = extra.windows(2).any(|w| w == ["--as", "requests"]);
    match installed {
        Some(v) if imitates && v != IMITATED_REQUESTS => {
            eprintln!(
                "note: requests {v} is installed, fetchscope imitates {IMITATED_REQUESTS}: comparing with -A python-requests/{v}"
            );
            let ua = format!("python-requests/{v}");
            let mut with: Vec<&str> = extra.to_vec();
            with.extend_from_slice(&["-A", &ua]);
            ours_plain(lab, dir, path, &with)
        }
        _ => ours_plain(lab, dir, path, extra),
    }
}

/// `fetchscope fetch https://www.example.test{path} --json -o FILE EXTRA` through the lab's
/// TUN device; asserts it completed (exit 0) and that the `-o` file is the body the `done`
/// event describes.
fn ours_plain(lab: &NsLab, dir: &Path, path: &str, extra: &[&str]) -> Ours {
    static N: AtomicUsize = AtomicUsize::new(0);
    let file = dir.join(format!("body-{}", N.fetch_add(1, Ordering::Relaxed)));
    let file_s = file.to_str().expect("utf-8 path");
    let mut args = vec!["--json", "-o", file_s];
    args.extend_from_slice(extra);
    let what = format!("fetchscope fetch https://www.example.test{path} {extra:?}");
    let out = output_within(lab.fetch(path, &args), COMMAND_LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(code(&out), 0, "{what}: exit status; stderr:\n{stderr}");
    let body = fs::read(&file).unwrap_or_else(|e| panic!("{what}: the -o file {file_s}: {e}"));
    let o = Ours {
        events: events(&out.stdout),
        body,
        stderr,
        what,
    };
    let done = o.done();
    assert_eq!(
        done["body_sha256"],
        sha256_hex(&o.body),
        "{}: the done event's body_sha256 is not the digest of the -o file",
        o.what
    );
    assert_eq!(
        done["body_bytes"],
        o.body.len(),
        "{}: the done event's body_bytes is not the size of the -o file",
        o.what
    );
    o
}

/// Asserts that the echo saw the same `method`, `data`, `json`, `form`, `args` and `url`
/// from both clients.
fn assert_same_request(what: &str, mine: &Value, theirs: &Value) {
    for field in ["method", "data", "json", "form", "args", "url"] {
        assert_eq!(
            mine[field], theirs[field],
            "{what}: the echo's {field:?} differs (left fetchscope, right requests)\n\
             fetchscope's echo: {mine}\nrequests' echo:   {theirs}"
        );
    }
}

/// The echo's `raw_headers` as `name: value` lines, for messages.
fn raw_lines(echo: &Value) -> String {
    echo["raw_headers"]
        .as_array()
        .map(|hs| {
            hs.iter()
                .map(|h| format!("  {}: {}", h[0].as_str().unwrap_or("?"), h[1]))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_else(|| format!("  (no raw_headers: {echo})"))
}

/// Asserts that the echo received the very same header lines (names, values, order) from
/// both clients.
fn assert_same_raw_headers(what: &str, mine: &Value, theirs: &Value) {
    assert!(
        mine["raw_headers"].is_array(),
        "{what}: fetchscope's echo has no raw_headers: {mine}"
    );
    assert_eq!(
        mine["raw_headers"],
        theirs["raw_headers"],
        "{what}: the header lines the echo received differ\n\
         from fetchscope:\n{}\nfrom requests:\n{}",
        raw_lines(mine),
        raw_lines(theirs)
    );
}

// ------------------------------------------------------------------ 1. same request

/// Each request option gives what the same `requests.request(...)` call gives: the same
/// status, and at the echo the same method, body (`data`, `json`, `form`) and the header
/// fields the test set; a HEAD and the Basic-auth answers have the same (digest of the)
/// body. With `--as requests` the echo's whole `headers` and `raw_headers` are equal too.
#[test]
fn request_options_reach_the_echo_as_requests_sends_them() {
    if !python_requests() {
        return;
    }
    let Some(lab) = NsLab::up(PREFIX) else { return };
    let dir = Scratch::new("reqpar-options");

    struct Case {
        what: &'static str,
        path: &'static str,
        ours: &'static [&'static str],
        method: &'static str,
        kwargs: Value,
        status: u16,
        /// Compare the echo's request fields (else the body's digest).
        echo: bool,
        /// Header fields the test set, as the echo's `headers` spells them.
        set: &'static [&'static str],
        /// `--as requests`: compare every header line too.
        whole_head: bool,
    }
    let cases = [
        Case {
            what: "POST --json-body '{\"a\":1}' vs data='{\"a\":1}' + Content-Type",
            path: "/anything",
            ours: &["--json-body", r#"{"a":1}"#],
            method: "POST",
            // requests' json= would send '{"a": 1}' (json.dumps' separators): the same
            // bytes as the literal body are data= with the Content-Type --json-body sets.
            kwargs: json!({"data": r#"{"a":1}"#, "headers": {"Content-Type": "application/json"}}),
            status: 200,
            echo: true,
            set: &["Content-Type", "Content-Length"],
            whole_head: false,
        },
        Case {
            what: "PUT -X PUT -d x=1 vs data={'x': '1'}",
            path: "/anything",
            ours: &["-X", "PUT", "-d", "x=1"],
            method: "PUT",
            kwargs: json!({"data": {"x": "1"}}),
            status: 200,
            echo: true,
            set: &["Content-Type", "Content-Length"],
            whole_head: false,
        },
        Case {
            what: "HEAD -I",
            path: "/anything",
            ours: &["-I"],
            method: "HEAD",
            kwargs: json!({}),
            status: 200,
            echo: false,
            set: &[],
            whole_head: false,
        },
        Case {
            what: "GET with -H 'X-One: 1' -H 'x-two: zwei'",
            path: "/anything",
            ours: &["-H", "X-One: 1", "-H", "x-two: zwei"],
            method: "GET",
            kwargs: json!({"headers": {"X-One": "1", "x-two": "zwei"}}),
            status: 200,
            echo: true,
            set: &["X-One", "X-Two"],
            whole_head: false,
        },
        Case {
            what: "GET --as requests -H 'X-One: 1' -H 'x-two: zwei'",
            path: "/anything",
            ours: &["--as", "requests", "-H", "X-One: 1", "-H", "x-two: zwei"],
            method: "GET",
            kwargs: json!({"headers": {"X-One": "1", "x-two": "zwei"}}),
            status: 200,
            echo: true,
            set: &["X-One", "X-Two"],
            whole_head: true,
        },
        Case {
            what: "GET --as requests -u u:p to the echo vs auth=('u', 'p')",
            path: "/anything",
            ours: &["--as", "requests", "-u", "u:p"],
            method: "GET",
            kwargs: json!({"auth": ["u", "p"]}),
            status: 200,
            echo: true,
            set: &["Authorization"],
            whole_head: true,
        },
        Case {
            what: "GET /basic-auth/u/p -u u:p vs auth=('u', 'p')",
            path: "/basic-auth/u/p",
            ours: &["-u", "u:p"],
            method: "GET",
            kwargs: json!({"auth": ["u", "p"]}),
            status: 200,
            echo: false,
            set: &[],
            whole_head: false,
        },
        Case {
            what: "GET /basic-auth/u/p -u u:wrong vs auth=('u', 'wrong')",
            path: "/basic-auth/u/p",
            ours: &["-u", "u:wrong"],
            method: "GET",
            kwargs: json!({"auth": ["u", "wrong"]}),
            status: 401,
            echo: false,
            set: &[],
            whole_head: false,
        },
    ];

    let specs: Vec<Value> = cases
        .iter()
        .map(|c| {
            spec(
                c.method,
                &format!("https://www.example.test{}", c.path),
                c.kwargs.clone(),
            )
        })
        .collect();
    let theirs_all = requests_batch(&lab, &specs);

    for (c, theirs) in cases.iter().zip(&theirs_all) {
        // The version matters for `--as requests`: fetchscope sends the User-Agent of the
        // requests it imitates (docs/cli.md), the installed one sends its own.
        let what = &format!(
            "{} [installed requests {}]",
            c.what, theirs["requests_version"]
        );
        let mine = ours_as(
            &lab,
            &dir,
            c.path,
            c.ours,
            theirs["requests_version"].as_str(),
        );
        let done = mine.done();
        assert_eq!(
            theirs["status"], c.status,
            "{what}: requests' status is not the expected one: {theirs}"
        );
        assert_eq!(
            done["status"], theirs["status"],
            "{what}: status (left fetchscope's done event, right requests)"
        );
        assert_eq!(
            done["exchanges"][0]["method"], c.method,
            "{what}: the method fetchscope says it sent: {done}"
        );
        if !c.echo {
            assert_eq!(
                done["body_sha256"],
                theirs["sha256"],
                "{what}: the body's digest differs (left fetchscope, right requests); \
                 fetchscope's body: {:?}, requests' body: {:?}",
                String::from_utf8_lossy(&mine.body),
                theirs["body"]
            );
            assert_eq!(
                done["body_bytes"], theirs["body_bytes"],
                "{what}: body size (left fetchscope, right requests)"
            );
            continue;
        }
        let mine_echo = mine.echo();
        let theirs_echo: Value = serde_json::from_str(theirs["body"].as_str().unwrap_or(""))
            .unwrap_or_else(|e| {
                panic!("{what}: requests' body is not the echo's JSON ({e}): {theirs}")
            });
        assert_same_request(what, &mine_echo, &theirs_echo);
        for name in c.set {
            assert!(
                !theirs_echo["headers"][name].is_null(),
                "{what}: requests did not send {name}: {theirs_echo}"
            );
            assert_eq!(
                mine_echo["headers"][name],
                theirs_echo["headers"][name],
                "{what}: header {name} at the echo (left fetchscope, right requests)\n\
                 from fetchscope:\n{}\nfrom requests:\n{}",
                raw_lines(&mine_echo),
                raw_lines(&theirs_echo)
            );
        }
        if c.whole_head {
            assert_eq!(
                mine_echo["headers"], theirs_echo["headers"],
                "{what}: the echo's headers differ (left fetchscope, right requests)"
            );
            assert_same_raw_headers(what, &mine_echo, &theirs_echo);
        }
    }

    // --fail turns the 401 into curl's exit status 22.
    let out = output_within(
        lab.fetch("/basic-auth/u/p", &["-s", "--fail", "-u", "u:wrong"]),
        COMMAND_LIMIT,
    );
    assert_eq!(
        code(&out),
        22,
        "--fail with a 401: exit status; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ------------------------------------------------------------------ 2. byte for byte

/// `--as requests` sends exactly requests' head: the echo receives the same header lines
/// (names, values, order) from `requests.get(url)` and `fetchscope fetch --as requests
/// URL`, from `requests.post(url, json={"a": 1})` and `--as requests --json-body` with
/// the bytes json= makes, and from `requests.put(url, data="x=1")` and `--as requests
/// -X PUT -d x=1`; fetchscope's own record of its head is requests' prepared head after
/// http.client's `Host`; and the echo's whole answer is the same (digest).
#[test]
fn as_requests_sends_requests_head_byte_for_byte() {
    if !python_requests() {
        return;
    }
    let Some(lab) = NsLab::up(PREFIX) else { return };
    let dir = Scratch::new("reqpar-bytes");
    let cases: [(&str, &[&str], Value); 3] = [
        (
            "requests.get(url) vs --as requests",
            &["--as", "requests"],
            spec("GET", ECHO, json!({})),
        ),
        (
            "requests.post(url, json={'a': 1}) vs --as requests --json-body '{\"a\": 1}'",
            // json.dumps' default separators: the bytes requests sends for json=.
            &["--as", "requests", "--json-body", r#"{"a": 1}"#],
            spec("POST", ECHO, json!({"json": {"a": 1}})),
        ),
        (
            "requests.put(url, data='x=1') vs --as requests -X PUT -d x=1",
            &["--as", "requests", "-X", "PUT", "-d", "x=1"],
            spec("PUT", ECHO, json!({"data": "x=1"})),
        ),
    ];
    let specs: Vec<Value> = cases.iter().map(|c| c.2.clone()).collect();
    let theirs_all = requests_batch(&lab, &specs);
    for ((what, extra, _), theirs) in cases.iter().zip(&theirs_all) {
        // fetchscope sends the User-Agent of the requests it imitates (docs/cli.md); a
        // different installed version sends its own, which shows in the messages.
        let what = &format!("{what} [installed requests {}]", theirs["requests_version"]);
        let mine = ours_as(
            &lab,
            &dir,
            "/anything",
            extra,
            theirs["requests_version"].as_str(),
        );
        let done = mine.done();
        assert_eq!(
            done["status"], theirs["status"],
            "{what}: status (left fetchscope, right requests)"
        );
        let mine_echo = mine.echo();
        let theirs_echo: Value = serde_json::from_str(theirs["body"].as_str().unwrap_or(""))
            .unwrap_or_else(|e| {
                panic!("{what}: requests' body is not the echo's JSON ({e}): {theirs}")
            });
        assert_same_raw_headers(what, &mine_echo, &theirs_echo);
        assert_same_request(what, &mine_echo, &theirs_echo);
        assert_eq!(
            mine_echo["data"],
            theirs["sent_body"].as_str().unwrap_or(""),
            "{what}: the body the echo got from fetchscope (left) is not the one requests \
             prepared (right)"
        );
        // Before nginx: fetchscope's record of its head vs requests' prepared head (which
        // http.client sends after its own Host line).
        let mut expected = vec![json!(["Host", "www.example.test"])];
        expected.extend(
            theirs["sent_headers"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        assert_eq!(
            done["exchanges"][0]["request_headers"],
            Value::Array(expected),
            "{what}: the head fetchscope says it sent (left) is not requests' Host + \
             prepared headers (right)"
        );
        assert_eq!(
            done["body_sha256"],
            theirs["sha256"],
            "{what}: the echo's whole answer differs (digest; left fetchscope, right \
             requests)\nfetchscope's: {}\nrequests':   {}",
            String::from_utf8_lossy(&mine.body),
            theirs["body"]
        );
    }
}

// ------------------------------------------------------------------ 3. secrets

/// The password of the secrets test, its Basic credentials in base64
/// (`user:s3cretpass`), and the cookie's value.
const PASSWORD: &str = "s3cretpass";
const BASIC_B64: &str = "dXNlcjpzM2NyZXRwYXNz";
const COOKIE_VALUE: &str = "tok-abcdef";

/// Asserts that none of the secrets is in `text` (`what` names the output).
fn assert_no_secret(what: &str, text: &str) {
    for secret in [PASSWORD, BASIC_B64, COOKIE_VALUE] {
        if let Some(at) = text.find(secret) {
            let start = text[..at]
                .char_indices()
                .rev()
                .nth(80)
                .map_or(0, |(i, _)| i);
            let end = (at + secret.len() + 80).min(text.len());
            let end = (end..=text.len())
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(text.len());
            panic!(
                "{what} shows the secret {secret:?}: ...{}...",
                &text[start..end]
            );
        }
    }
}

/// `-u user:s3cretpass`, `Authorization-Test` and `Cookie` headers, and credentials in the
/// URL: the password, the base64 of the credentials and the cookie's value are in none of
/// stdout, stderr, the HAR file or the HTML report (with `--json`, `--ladder`, `-w`, and as
/// text) — although the echo shows they were sent; `--show-secrets` shows them in the
/// text output.
#[test]
fn secrets_are_in_no_output_unless_show_secrets() {
    let Some(lab) = NsLab::up(PREFIX) else { return };
    let dir = Scratch::new("reqpar-secrets");
    let headers = [
        "-H",
        "Authorization-Test: x",
        "-H",
        "Cookie: session=tok-abcdef",
    ];
    let with_u: Vec<&str> = ["-u", "user:s3cretpass"]
        .into_iter()
        .chain(headers)
        .collect();
    let url = "https://www.example.test/anything".to_string();
    let url_with_creds = format!("https://user:{PASSWORD}@www.example.test/anything");
    for (what, url, creds) in [
        ("-u user:s3cretpass", url, &with_u[..]),
        ("credentials in the URL", url_with_creds, &headers[..]),
    ] {
        let har = dir.join("fetch.har");
        let report = dir.join("fetch.html");
        let body = dir.join("body.json");
        let mut args: Vec<String> = [
            "--json",
            "--ladder",
            "-w",
            "%{json}",
            "--har",
            har.to_str().expect("utf-8 path"),
            "--report",
            report.to_str().expect("utf-8 path"),
            "-o",
            body.to_str().expect("utf-8 path"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(creds.iter().map(|s| s.to_string()));
        let run = |args: &[String]| {
            let mut cmd = lab.in_cli(fetchscope_tests::fetchscope_bin());
            cmd.arg("fetch")
                .arg(&url)
                .args(lab.tun_args())
                .args(["--timeout", "60"])
                .args(args);
            output_within(cmd, COMMAND_LIMIT)
        };

        let out = run(&args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(code(&out), 0, "{what}: --json fetch; stderr:\n{stderr}");
        // The echo got the credentials and the cookie: the test is about showing them.
        let echoed = fs::read_to_string(&body).expect("the -o body");
        assert!(
            echoed.contains(BASIC_B64) && echoed.contains(COOKIE_VALUE),
            "{what}: the echo did not receive Authorization: Basic {BASIC_B64} and the \
             cookie:\n{echoed}"
        );
        assert_no_secret(&format!("{what}: --json stdout"), &stdout);
        assert_no_secret(&format!("{what}: --json stderr (ladder, -w)"), &stderr);
        for file in [&har, &report] {
            let text = fs::read_to_string(file)
                .unwrap_or_else(|e| panic!("{what}: {}: {e}", file.display()));
            assert_no_secret(&format!("{what}: {}", file.display()), &text);
        }
        // The redaction is there (and says how long the value was).
        assert!(
            stdout.contains(r#"["Cookie","<redacted, 18 bytes>"]"#),
            "{what}: no redacted Cookie in the done event's request headers:\n{stdout}"
        );

        // As text, with the ladder.
        let with = |more: &[&str]| -> Vec<String> {
            more.iter()
                .chain(creds.iter())
                .map(|s| s.to_string())
                .collect()
        };
        let out = run(&with(&["--ladder"]));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(code(&out), 0, "{what}: text fetch; stderr:\n{stderr}");
        assert_no_secret(&format!("{what}: text stdout"), &stdout);
        assert_no_secret(&format!("{what}: text stderr"), &stderr);
        for shown in [
            "Authorization-Test: x",
            "Cookie: <redacted, 18 bytes>",
            "Authorization: <redacted, 26 bytes>",
        ] {
            assert!(
                stdout.contains(shown),
                "{what}: the text output has no '{shown}':\n{stdout}"
            );
        }

        // --show-secrets shows them.
        let out = run(&with(&["--show-secrets"]));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            code(&out),
            0,
            "{what}: --show-secrets fetch; stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for shown in [
            "Cookie: session=tok-abcdef".to_string(),
            format!("Authorization: Basic {BASIC_B64}"),
        ] {
            assert!(
                stdout.contains(&shown),
                "{what}: with --show-secrets the text output has no '{shown}':\n{stdout}"
            );
        }
    }
}

// ------------------------------------------------------------------ 4. -w

/// `-w '%{json}'` with `--json` goes to stderr, parses as JSON, and its numbers are the
/// `done` event's of the same run: the times (seconds = milliseconds / 1000), the status,
/// the redirects, the wire body size and the final URL — for the echo and for a chain of
/// three redirects.
#[test]
fn write_out_json_matches_the_done_event() {
    let Some(lab) = NsLab::up(PREFIX) else { return };
    for path in ["/anything", "/redirect/3"] {
        let what = format!("--json -w '%{{json}}' {path}");
        let out = output_within(lab.fetch(path, &["--json", "-w", "%{json}"]), COMMAND_LIMIT);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(code(&out), 0, "{what}: exit status; stderr:\n{stderr}");
        let ev = events(&out.stdout);
        let done = of_type(&ev, "done");
        assert_eq!(done.len(), 1, "{what}: one done event expected");
        let done = done[0];
        let w: Value = serde_json::from_str(stderr.trim())
            .unwrap_or_else(|e| panic!("{what}: stderr is not the -w JSON alone ({e}):\n{stderr}"));
        let t = &done["timings"];
        for (var, field) in [
            ("time_namelookup", "dns_ms"),
            ("time_connect", "connect_ms"),
            ("time_appconnect", "tls_ms"),
            ("time_pretransfer", "pretransfer_ms"),
            ("time_starttransfer", "ttfb_ms"),
            ("time_total", "total_ms"),
            ("time_redirect", "redirect_ms"),
        ] {
            let secs = w[var]
                .as_f64()
                .unwrap_or_else(|| panic!("{what}: -w's {var} is not a number: {w}"));
            let ms = t[field]
                .as_f64()
                .unwrap_or_else(|| panic!("{what}: done's timings.{field} is not a number: {t}"));
            // Both are whole microseconds; allow only for float rounding.
            assert!(
                (secs - ms / 1000.0).abs() < 1e-9,
                "{what}: -w {var} = {secs} s but the done event's {field} = {ms} ms"
            );
        }
        assert!(
            w["time_total"].as_f64() > Some(0.0),
            "{what}: time_total is not positive: {w}"
        );
        assert_eq!(
            w["http_code"], done["status"],
            "{what}: -w http_code (left) vs done status (right)"
        );
        assert_eq!(
            w["num_redirects"], done["redirects"],
            "{what}: -w num_redirects (left) vs done redirects (right)"
        );
        assert_eq!(
            w["size_download"], done["wire_body_bytes"],
            "{what}: -w size_download (left) vs done wire_body_bytes (right)"
        );
        assert_eq!(
            w["url_effective"], done["url"],
            "{what}: -w url_effective (left) vs done url (right)"
        );
        assert_eq!(
            format!(
                "{}:{}",
                w["remote_ip"].as_str().unwrap_or("?"),
                w["remote_port"].as_str().unwrap_or("?")
            ),
            done["remote"].as_str().unwrap_or(""),
            "{what}: -w remote_ip:remote_port (left) vs done remote (right)"
        );
        assert_eq!(w["exitcode"], 0, "{what}: -w exitcode: {w}");
    }
}
